///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "control-plane-prep", mixinStandardHelpOptions = true,
        description = "Namespace istio-system and ConfigMap vault-tls-cert (key cert: the CA istiod's Vault client trusts) "
                + "(guide: 'Configura el recurso en el plano de control').")
class ControlPlanePrep extends Step {
    @Mixin Opts.Kube kube;

    @Option(names = "--vault-cacert", defaultValue = "${env:VAULT_CACERT}", paramLabel = "FILE",
            description = "PEM certificate that authenticates the Vault server: its CA (env VAULT_CACERT).")
    Path vaultCa;

    /** The old spelling, still read; --vault-cacert, as the Vault CLI and the other steps spell it, wins. */
    @Option(names = "--vault-ca", hidden = true, paramLabel = "FILE")
    Path vaultCaOldName;

    @Mixin Opts.IstioNamespace ns;

    @Override
    protected void run() throws Exception {
        if (vaultCaOldName != null && !spec.commandLine().getParseResult().hasMatchedOption("--vault-cacert")) vaultCa = vaultCaOldName;
        if (vaultCa == null)
            throw Fail.badInput("no Vault CA certificate given", "pass --vault-cacert FILE or export VAULT_CACERT=FILE");
        if (!Files.isRegularFile(vaultCa))
            throw Fail.badInput("Vault CA certificate " + vaultCa + " does not exist", "check --vault-cacert / VAULT_CACERT");
        String pem = Env.readPem(vaultCa, "Vault CA certificate", "give the PEM file of Vault's CA");
        List<X509Certificate> certs = Pki.certificates(Pki.pemBlocks(pem, "Vault CA certificate " + vaultCa), "Vault CA certificate " + vaultCa);
        for (X509Certificate c : certs) Pki.requireValidNow(c, "Vault CA certificate");
        out.put("configMap", ns.name + "/" + KubeLayout.VAULT_CA_CONFIGMAP)
                .put("subjects", certs.stream().map(c -> Pki.goName(c.getSubjectX500Principal().getEncoded())).toList());

        // The file goes in as it is, like `kubectl create configmap --from-file=./cert`; an old one is patched in place.
        KubeLayout layout = new KubeLayout(KubeLayout.VAULT_NAMESPACE, KubeLayout.TOKENREVIEW_BINDING, ns.name);
        kube().apply(layout.istioNs(), out);
        kube().apply(layout.vaultCa(pem), out);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new ControlPlanePrep()).execute(args));
    }
}
