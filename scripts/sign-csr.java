///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "sign-csr", mixinStandardHelpOptions = true,
        description = "Sign istiod's CSR as the Istio CA certificate, directly by the root, and write cert-chain.pem "
                + "(the security administrator's step of 'Firma del certificado para Istio').")
class SignCsr extends Step {
    @Mixin Opts.Pkcs11 p11;

    /** Only named in the output: each cluster's CA has the same subject, so serial, SKI and cluster tell them apart. */
    @Mixin Opts.Cluster cluster;

    @Option(names = "--csr", required = true, paramLabel = "CSR_PEM", description = "istiod's CSR, as decrypt-csr wrote it.")
    Path csrFile;

    @Option(names = "--root-cert", required = true, paramLabel = "ROOT_PEM", description = "The root CA certificate (the one imported in the HSM).")
    Path rootFile;

    @ArgGroup(exclusive = true, multiplicity = "1")
    RootKey rootKey;

    static class RootKey {
        @Option(names = "--root-key-label", paramLabel = "LABEL",
                description = "Label of the root's private key in the HSM (P11_LIB, P11_TOKEN, P11_PIN_FILE name its slot).")
        String label;

        @Option(names = "--root-key", paramLabel = "FILE", description = "The root's private key in a PEM or PKCS#12 file, mode 0600 (discouraged).")
        Path file;
    }

    @Option(names = "--root-key-pass-file", paramLabel = "FILE", description = "File holding the password of an encrypted --root-key, mode 0600.")
    Path passFile;

    @Mixin Opts.CaDays validity;

    @Option(names = {"-o", "--output"}, defaultValue = "cert-chain.pem", paramLabel = "CHAIN_PEM",
            description = "Where to write the CA certificate followed by the root (default ${DEFAULT-VALUE}).")
    Path output;

    @Option(names = "--allow-any-subject", description = "Sign a CSR whose subject is not O=<trust domain> as istiod writes it.")
    boolean anySubject;

    @Option(names = "--replace", description = "Overwrite an output file that holds another chain (one that holds this CSR's is kept).")
    boolean replace;

    @Override
    protected void run() throws Exception {
        if (passFile != null && rootKey.file == null)
            throw Fail.badInput("--root-key-pass-file goes with --root-key only", "a key in the HSM needs no password file");
        Pki.Csr csr = CaSigning.csr(csrFile, anySubject);
        String subject = Pki.subject(csr);
        X509Certificate root = CaSigning.root(rootFile);
        String rootName = Pki.goName(Pki.subjectDer(root));
        Pki.Validity validity = CaSigning.validity(out, root, this.validity.days);
        out.put("subject", subject).put("key", Pki.keyDescription(Pki.publicKey(csr))).put("root", rootName).put("output", output.toString());
        if (ChainFile.holdsAlready(out, output, csr, root, replace, cluster)) return;
        X509Certificate ca = CaSigning.issue(out, this::hsm, rootKey.label, rootKey.file, passFile, csr, root, validity);
        if (ca == null) return; // --dry-run without an HSM token
        CaSigning.requireIssued(ca, root, rootFile);
        Pki.Identity id = Pki.identity(ca);
        out.put("notAfter", ca.getNotAfter().toInstant().toString()).put("serial", id.serial()).put("identity", cluster.identity(id));
        Pki.writePem(out, output, Pki.chainPem(List.of(ca, root)), true, "CA certificate and root");
        out.say("CA certificate '%s' issued by '%s'%s: %s.", subject, rootName, cluster.forCluster(), id.text());
        // sign-csr's HSM options are the root's slot, not the plugin's: upload-chain does not get them
        out.next("upload-chain -f " + Out.shellWord(output.toString()));
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new SignCsr()).execute(args));
    }
}
