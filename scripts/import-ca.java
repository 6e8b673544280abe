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

    @Option(names = {"-f", "--file"}, required = true, paramLabel = "ROOT_PEM", description = "Root CA certificate, PEM.")
    Path file;

    @Mixin Opts.CaId ca;

    @Option(names = "--replace", description = "Replace a different certificate already stored under this CA ID.")
    boolean replace;

    @Override
    protected void run() throws Exception {
        X509Certificate root = Pki.single(file, "root certificate");
        Pki.requireRootCa(root, "root certificate");
        byte[] der = root.getEncoded();
        String label = Pki.goName(Pki.subjectDer(root));
        out.put("caId", ca.id).put("subject", label).put("sha256", Pki.sha256Hex(der));
        try (Hsm hsm = Hsm.open(p11, out)) {
            if (hsm == null) { out.change("import '" + label + "' as CA " + ca.id); return; }
            out.put("token", hsm.tokenLabel);
            List<Hsm.Obj> same = hsm.byId(Hsm.ascii(ca.id));
            List<Hsm.Obj> certs = hsm.certificates(ca.id);
            if (same.size() == 1 && certs.size() == 1 && Arrays.equals(hsm.bytes(certs.get(0).handle(), 0x11 /* CKA_VALUE */), der)) {
                out.say("root '%s' is already stored as CA %s on token '%s'", label, ca.id, hsm.tokenLabel);
                return;
            }
            if (same.size() != certs.size())
                throw Fail.failed("token '" + hsm.tokenLabel + "' holds a non-certificate object with ID " + ca.id,
                        "choose another --ca-id; see hsm-info");
            if (!certs.isEmpty() && !replace)
                throw Fail.failed("a different certificate ('" + certs.get(0).label() + "') is stored as CA " + ca.id,
                        "pass --replace to replace it, or --ca-id to store this one under another ID");
            if (out.dryRun()) {
                out.change((certs.isEmpty() ? "import" : "replace with") + " root '" + label + "' as CA " + ca.id);
                return;
            }
            // create first, then remove the old one: a failure never leaves the token without a root
            long created = hsm.importCertificate(ca.id, label, der, Pki.subjectDer(root), Pki.issuerDer(root),
                    Pki.serialDer(root.getSerialNumber()));
            for (Hsm.Obj old : certs) if (old.handle() != created) hsm.destroy(old.handle());
            out.change((certs.isEmpty() ? "imported" : "replaced") + " root '" + label + "' as CA " + ca.id
                    + " on token '" + hsm.tokenLabel + "'");
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new ImportCa()).execute(args));
    }
}
