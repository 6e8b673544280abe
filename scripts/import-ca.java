///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.List;
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
        List<Hsm.Obj> same = hsm.byId(Hsm.ascii(ca.id));
        Hsm.CaCertificates certs = hsm.caCertificates(ca.id);
        out.put("copies", certs.copies());
        if (same.size() != certs.copies())
            throw Fail.failed("token '" + hsm.tokenLabel + "' holds a non-certificate object with ID " + ca.id,
                    "choose another --ca-id; see hsm-info");
        if (certs.identical() && (der == null || Arrays.equals(certs.der(), der))) {
            stored(hsm, certs);
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
        // create first, then remove the old ones: a failure never leaves the token without a root
        long created = hsm.importCertificate(ca.id, label, der, Pki.subjectDer(root), Pki.issuerDer(root),
                Pki.serialDer(root.getSerialNumber()));
        for (Hsm.Obj old : certs.objects()) if (old.handle() != created) hsm.destroy(old.handle());
        out.change((certs.isEmpty() ? "imported" : "replaced") + " root '" + label + "' as CA " + ca.id
                + " on token '" + hsm.tokenLabel + "'");
    }

    /** The root is stored, in one or more identical copies: nothing to import; --dedupe keeps one. */
    private void stored(Hsm hsm, Hsm.CaCertificates certs) throws Exception {
        String name = Pki.goName(Pki.subjectDer(Pki.certificate(certs.der(), "the root stored as CA " + ca.id)));
        out.put("subject", name).put("sha256", Pki.sha256Hex(certs.der()));
        List<Hsm.Obj> extra = certs.extraCopies();
        if (!dedupe || extra.isEmpty()) {
            out.say("root '%s' is already stored as CA %s on token '%s'%s", name, ca.id, hsm.tokenLabel, certs.copiesNote());
            if (!extra.isEmpty())
                out.say("  the plugin's import-ca adds a copy per call; import-ca --dedupe keeps one (the plugin works with either)");
            else if (dedupe) out.say("no extra copies: nothing to dedupe");
            out.put("removed", 0);
            return;
        }
        if (!out.dryRun()) for (Hsm.Obj o : extra) hsm.destroy(o.handle());
        out.put("removed", extra.size());
        out.change((out.dryRun() ? "remove " : "removed ") + extra.size() + " extra identical cop" + (extra.size() == 1 ? "y" : "ies")
                + " of root '" + name + "' under CA " + ca.id + " on token '" + hsm.tokenLabel + "'; one remains");
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new ImportCa()).execute(args));
    }
}
