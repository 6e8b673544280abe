///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "verify-ca", mixinStandardHelpOptions = true,
        description = "Check istiod loaded the CA chain of Secret istio-ca-cert, that the chain ends at the root in the HSM, "
                + "and that the istiod pods are 3/3 (guide: `kubectl logs ISTIOD_POD -c discovery | grep \"CA cert:\"`).")
class VerifyCa extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Pkcs11 p11;

    @Mixin Opts.CaId ca;

    @Option(names = "--root-cert", paramLabel = "ROOT_PEM",
            description = "Compare with this root certificate instead of reading it from the HSM.")
    Path rootFile;

    @Option(names = "--pod", paramLabel = "ISTIOD_POD", description = "Check only this istiod pod (default: all of them).")
    String podName;

    @Override
    protected void run() throws Exception {
        if (rootFile != null) Pki.single(rootFile, "root certificate"); // a bad file is bad input, before anything is read
        Kube k = kube();
        List<X509Certificate> chain = IstiodCaCheck.secretChain(k);
        X509Certificate root = Hsm.trustedRoot(rootFile, this::hsm, ca.id);
        out.put("root", Pki.name(root)).put("chain", chain.stream().map(Pki::name).toList());
        IstiodCaCheck.requireEndsAt(chain, root, rootFile == null ? " on the HSM" : " of " + rootFile);
        out.say("Secret %s holds %d certificate(s), CA '%s', ending at the root '%s'", Istio.CA_CERT_SECRET, chain.size(),
                Pki.name(chain.get(0)), Pki.name(root));

        List<Pod> pods = IstiodCaCheck.pods(k, podName);
        IstiodCaCheck.Result result = IstiodCaCheck.check(k, out, pods, chain);
        out.put("pods", result.pods());
        result.requireNone();
        out.say("istiod loaded the chain of %s in %d pod(s), all %d/%d ready: the CA key is the one in the HSM", Istio.CA_CERT_SECRET,
                pods.size(), Istio.ISTIOD_CONTAINERS, Istio.ISTIOD_CONTAINERS);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new VerifyCa()).execute(args));
    }
}
