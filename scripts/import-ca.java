///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "import-ca", mixinStandardHelpOptions = true,
        description = "Import the root CA certificate into the HSM slot as istiod's HSM plugin stores it (guide: 'import-ca').")
class ImportCa extends Step {
    @Mixin Opts.Pkcs11 p11;

    @Option(names = {"-f", "--file"}, paramLabel = "ROOT_PEM", description = "Root CA certificate, PEM (may be left out with --dedupe).")
    Path file;

    @Mixin Opts.CaId ca;

    @Option(names = "--replace", description = "Replace a different certificate already stored under this CA ID.")
    boolean replace;

    @Option(names = "--dedupe", description = "Remove the extra identical copies stored under this CA ID (the plugin's own "
            + "import-ca adds one per call), keeping one; never removes a copy that differs.")
    boolean dedupe;

    @Override
    protected void run() throws Exception {
        if (file == null && !dedupe)
            throw Fail.badInput("no root certificate given", "pass -f ROOT_PEM (or --dedupe alone to remove extra copies of the stored root)");
        if (dedupe && replace)
            throw Fail.badInput("--dedupe and --replace do not go together", "--replace already leaves exactly one certificate under the CA ID");
        X509Certificate root = file == null ? null : Pki.single(file, "root certificate");
        if (root != null) Pki.requireIstioRoot(root, "root certificate");
        byte[] der = root == null ? null : root.getEncoded();
        String label = root == null ? null : Pki.goName(Pki.subjectDer(root));
        out.put("caId", ca.id);
        if (root != null) out.put("subject", label).put("sha256", Pki.sha256Hex(der));
        Hsm hsm = hsm();
        if (hsm == null) {
            if (root != null) out.change("import '" + label + "' as CA " + ca.id);
            else out.say("the embedded token does not exist yet: nothing to dedupe");
            return;
        }
        out.put("token", hsm.tokenLabel);
        Hsm.CaCertificates certs = RootOnToken.certificates(hsm, ca.id, out);
        if (certs.identical() && (der == null || Arrays.equals(certs.der(), der))) {
            RootOnToken.stored(hsm, certs, dedupe, out);
            return;
        }
        if (dedupe && !certs.isEmpty())
            throw Fail.failed(certs.copies() + " certificates under CA ID " + ca.id + " on token '" + hsm.tokenLabel + "' differ ("
                            + certs.distinct() + " different values): --dedupe removes only identical copies, so nothing was changed",
                    "keep one root with import-ca -f ROOT_PEM --replace (hsm-info lists them)");
        if (root == null) {
            out.say("no certificate is stored as CA %s on token '%s': nothing to dedupe", ca.id, hsm.tokenLabel);
            return;
        }
        if (!certs.isEmpty() && !replace)
            throw Fail.failed(certs.identical()
                            ? "a different certificate ('" + certs.objects().get(0).label() + "') is stored as CA " + ca.id + certs.copiesNote()
                            : certs.copies() + " different certificates are stored as CA " + ca.id,
                    "pass --replace to replace it, or --ca-id to store this one under another ID");
        if (out.dryRun()) {
            out.change((certs.isEmpty() ? "import" : "replace with") + " root '" + label + "' as CA " + ca.id);
            return;
        }
        RootOnToken.put(hsm, ca.id, root, certs);
        out.change((certs.isEmpty() ? "imported" : "replaced") + " root '" + label + "' as CA " + ca.id
                + " on token '" + hsm.tokenLabel + "'");
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new ImportCa()).execute(args));
    }
}
