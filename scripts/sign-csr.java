///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
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
        PKCS10CertificationRequest csr = Pki.csr(csrFile, "CSR");
        String subject = Pki.subject(csr);
        if (!Pki.csrSignatureValid(csr))
            throw Fail.badInput("the signature of the CSR '" + subject + "' does not verify with its own key",
                    "do not sign it: decrypt istiod's CSR again with decrypt-csr");
        Pki.requireIstioCaKey(csr);
        if (Pki.trustDomain(csr.getSubject()) == null && !anySubject)
            throw Fail.badInput("the CSR's subject '" + subject + "' is not O=<trust domain>, as istiod writes it",
                    "sign only istiod's CSR (decrypt-csr); --allow-any-subject overrides this check");
        X509Certificate root = Pki.single(rootFile, "root certificate");
        Pki.requireIstioRoot(root, "root certificate");
        String rootName = Pki.goName(Pki.subjectDer(root));
        Pki.Validity validity = Pki.istioCaValidity(root, this.validity.days, Instant.now());
        if (validity.clamped())
            out.warn("the root expires on " + validity.notAfter() + ": the CA certificate is valid until then, not " + this.validity.days + " days");
        out.put("subject", subject).put("key", Pki.keyDescription(Pki.publicKey(csr))).put("root", rootName).put("output", output.toString());
        if (Files.exists(output)) {
            String why = ChainFile.whyNot(output, csr, root);
            if (why == null) {
                if (ChainFile.canonicalise(out, output)) return;
                Pki.Identity held = Pki.identity(Pki.certificates(output, "existing chain").get(0));
                out.put("identity", cluster.identity(held));
                out.say("%s already holds a CA certificate for this CSR issued by '%s' (%s%s); nothing to do (renew-ca renews it)", output, rootName,
                        held.text(), cluster.forCluster());
                return;
            }
            if (!replace)
                throw Fail.failed(output + " already exists and is not this CSR's chain (" + why + ")", "pass --replace to overwrite it, or -o to write elsewhere");
        }
        X509Certificate ca = rootKey.file != null ? RootKeyFile.issueIstioCa(out, rootKey.file, passFile, csr, root, validity) : signInHsm(csr, root, validity);
        if (ca == null) return; // --dry-run without an HSM token
        try {
            ca.verify(root.getPublicKey());
        } catch (Exception e) {
            throw Fail.badInput("the root key does not match the root certificate '" + rootName + "'",
                    "give the private key of " + rootFile + " (check --root-key-label / --root-key)");
        }
        String problem = Pki.chainProblem(Pki.ChainRules.ISTIOD, List.of(ca), root, new Date(), "the new chain");
        if (problem != null) throw Fail.failed("the new CA certificate would be refused by istiod: " + problem, "report this as a bug");
        Pki.Identity id = Pki.identity(ca);
        out.put("notAfter", ca.getNotAfter().toInstant().toString()).put("serial", id.serial()).put("identity", cluster.identity(id));
        Pki.writePem(out, output, Pki.chainPem(List.of(ca, root)), true, "CA certificate and root");
        out.say("CA certificate '%s' issued by '%s'%s: %s.", subject, rootName, cluster.forCluster(), id.text());
        // sign-csr's HSM options are the root's slot, not the plugin's: upload-chain does not get them
        out.next("upload-chain -f " + Out.shellWord(output.toString()));
    }

    X509Certificate signInHsm(PKCS10CertificationRequest csr, X509Certificate root, Pki.Validity validity) throws Exception {
        Hsm hsm = hsm();
        if (hsm == null) {
            out.change("sign with key '" + rootKey.label + "' of the embedded token (it does not exist yet)");
            return null;
        }
        out.put("token", hsm.tokenLabel);
        return hsm.issueIstioCa(rootKey.label, csr, root, validity);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new SignCsr()).execute(args));
    }
}
