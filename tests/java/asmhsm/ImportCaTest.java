package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Date;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** import-ca against a real SoftHSM2 token; roots made with openssl, odd certificates with Bouncy Castle. */
class ImportCaTest {
    @TempDir Path tmp;
    SoftHsmToken t;
    static final String CA_ID_HEX = HexFormat.of().formatHex(Hsm.DEFAULT_CA_ID.getBytes());

    @BeforeEach
    void token() {
        t = SoftHsmToken.create(tmp);
    }

    Path opensslRoot(String name, String subj) {
        Path key = tmp.resolve(name + ".key"), crt = tmp.resolve(name + ".pem");
        Cli.Result r = Cli.run(List.of("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key.toString(),
                "-out", crt.toString(), "-days", "30", "-subj", subj,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"), null, tmp, null);
        assertThat(r.exit()).as(r.toString()).isZero();
        return crt;
    }

    @Test
    void storesTheRootAsThePluginDoes() throws Exception {
        Path root = opensslRoot("root", "/O=Istio/CN=Root CA");
        Cli.Result r = Cli.asm(t.env(), "import-ca", "-f", root.toString());
        assertThat(r.exit()).as(r.toString()).isZero();
        String objects = t.objects();
        assertThat(t.objectCount()).isEqualTo(1);
        assertThat(objects).contains("Certificate Object; type = X.509 cert")
                .contains("label:      CN=Root CA,O=Istio")
                .contains("ID:         " + CA_ID_HEX);
        // the stored value is the certificate's own DER, byte for byte (openssl converts the PEM independently)
        Path stored = tmp.resolve("stored.der"), expected = tmp.resolve("expected.der");
        t.tool("--token-label", t.label, "--read-object", "--type", "cert", "--id", CA_ID_HEX, "--output-file", stored.toString());
        Cli.run(List.of("openssl", "x509", "-in", root.toString(), "-outform", "DER", "-out", expected.toString()), null, tmp, null);
        assertThat(Files.readAllBytes(stored)).isEqualTo(Files.readAllBytes(expected));
    }

    @Test
    void sameCertificateAgainIsANoOpAndADifferentOneNeedsReplace() {
        Path a = opensslRoot("a", "/O=Istio/CN=Root A");
        Path b = opensslRoot("b", "/O=Istio/CN=Root B");
        assertThat(Cli.asm(t.env(), "import-ca", "-f", a.toString()).exit()).isZero();
        Cli.Result again = Cli.asm(t.env(), "import-ca", "-f", a.toString(), "--json");
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("\"changed\" : false");
        Cli.Result other = Cli.asm(t.env(), "import-ca", "-f", b.toString());
        assertThat(other.exit()).as(other.toString()).isEqualTo(1);
        assertThat(other.stderr()).contains("CN=Root A,O=Istio").contains("--replace");
        assertThat(t.objects()).contains("CN=Root A,O=Istio").doesNotContain("Root B");
        Cli.Result replaced = Cli.asm(t.env(), "import-ca", "-f", b.toString(), "--replace");
        assertThat(replaced.exit()).as(replaced.toString()).isZero();
        assertThat(t.objectCount()).isEqualTo(1);
        assertThat(t.objects()).contains("CN=Root B,O=Istio").doesNotContain("Root A");
    }

    @Test
    void otherCaIdAndDryRun() {
        Path a = opensslRoot("a", "/CN=Mesh Root");
        Cli.Result dry = Cli.asm(t.env(), "import-ca", "-f", a.toString(), "--ca-id", "my-ca", "--dry-run");
        assertThat(dry.exit()).as(dry.toString()).isZero();
        assertThat(t.objectCount()).isZero();
        assertThat(Cli.asm(t.env(), "import-ca", "-f", a.toString(), "--ca-id", "my-ca").exit()).isZero();
        assertThat(t.objects()).contains("ID:         " + HexFormat.of().formatHex("my-ca".getBytes()));
    }

    void refused(Path file, String... messages) {
        Cli.Result r = Cli.asm(t.env(), "import-ca", "-f", file.toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        for (String m : messages) assertThat(r.stderr()).contains(m);
        assertThat(r.stderr().strip().lines().count()).as(r.stderr()).isLessThanOrEqualTo(2);
        assertThat(t.objectCount()).isZero();
    }

    @Test
    void garbageAndNonCertificatePem() throws Exception {
        Path garbage = tmp.resolve("garbage.pem");
        Files.writeString(garbage, "hello, not a certificate\n");
        refused(garbage, "is not PEM (25 bytes, no -----BEGIN line)");
        Path broken = tmp.resolve("broken.pem");
        Files.writeString(broken, "-----BEGIN CERTIFICATE-----\nAAAA%%%%\n-----END CERTIFICATE-----\n");
        Cli.Result r = Cli.asm(t.env(), "import-ca", "-f", broken.toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        Path key = tmp.resolve("k.pem");
        Cli.run(List.of("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.toString()), null, tmp, null);
        refused(key, "not a certificate");
        refused(tmp.resolve("missing.pem"), "cannot read");
    }

    @Test
    void severalCertificatesAreRefusedNotSilentlyTruncated() throws Exception {
        Path a = opensslRoot("a", "/CN=A"), b = opensslRoot("b", "/CN=B");
        Path both = tmp.resolve("both.pem");
        Files.writeString(both, Files.readString(a) + Files.readString(b));
        refused(both, "holds 2 certificates");
    }

    @Test
    void leafNotSelfSignedNoKeyCertSignExpiredNotYetValid() throws Exception {
        KeyPair rootKey = rsa(), leafKey = rsa();
        Instant now = Instant.now();
        refused(write("leaf", cert("CN=leaf", leafKey, "CN=leaf", leafKey, false, true, now.minus(1, ChronoUnit.DAYS), now.plus(9, ChronoUnit.DAYS))),
                "not a CA certificate");
        refused(write("inter", cert("CN=Intermediate", leafKey, "CN=Root", rootKey, true, true, now.minus(1, ChronoUnit.DAYS), now.plus(9, ChronoUnit.DAYS))),
                "not self-signed");
        refused(write("noku", cert("CN=NoSign", rootKey, "CN=NoSign", rootKey, true, false, now.minus(1, ChronoUnit.DAYS), now.plus(9, ChronoUnit.DAYS))),
                "keyCertSign");
        refused(write("expired", cert("CN=Old", rootKey, "CN=Old", rootKey, true, true, now.minus(30, ChronoUnit.DAYS), now.minus(1, ChronoUnit.DAYS))),
                "expired");
        refused(write("future", cert("CN=Later", rootKey, "CN=Later", rootKey, true, true, now.plus(2, ChronoUnit.DAYS), now.plus(30, ChronoUnit.DAYS))),
                "not valid before");
    }

    /** sign-csr would refuse a root with pathLen 0 (the Istio CA is a CA below it): import-ca refuses it first, by the same rule. */
    @Test
    void refusesARootWithPathLenZeroAndTakesOneWithRoomForTheIstioCa() throws Exception {
        KeyPair k = rsa();
        Instant now = Instant.now();
        for (String how : List.of("bc", "openssl")) {
            Path root;
            if (how.equals("bc")) {
                var b = new JcaX509v3CertificateBuilder(new X500Name("CN=Path Zero"), BigInteger.TEN, Date.from(now.minus(1, ChronoUnit.DAYS)),
                        Date.from(now.plus(9, ChronoUnit.DAYS)), new X500Name("CN=Path Zero"), k.getPublic());
                b.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
                b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
                root = write("pl0", new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withRSA").build(k.getPrivate()))));
            } else {
                root = tmp.resolve("pl0-openssl.pem");
                Cli.Result r = Cli.run(List.of("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp.resolve("pl0.key").toString(),
                        "-out", root.toString(), "-days", "30", "-subj", "/CN=Path Zero", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                        "-addext", "keyUsage=critical,keyCertSign,cRLSign"), null, tmp, null);
                assertThat(r.exit()).as(r.toString()).isZero();
            }
            refused(root, "root certificate 'CN=Path Zero' has basicConstraints pathLen 0: it may not issue a CA",
                    "the Istio CA certificate must be issued by it directly", "use a root without that path length limit");
        }
        Path pathLen1 = tmp.resolve("pl1.pem");
        Cli.Result r = Cli.run(List.of("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp.resolve("pl1.key").toString(),
                "-out", pathLen1.toString(), "-days", "30", "-subj", "/CN=Path One", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:1",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign"), null, tmp, null);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(Cli.asm(t.env(), "import-ca", "-f", pathLen1.toString()).exit()).isZero();
        assertThat(t.objects()).contains("CN=Path One");
    }

    @Test
    void hsmInfoShowsTheRootAndTheKekButNoSecret() throws Exception {
        Path root = opensslRoot("root", "/O=Istio/CN=Root CA");
        assertThat(Cli.asm(t.env(), "import-ca", "-f", root.toString()).exit()).isZero();
        assertThat(Cli.asm(t.env(), "gen-kek", "--kek-id", "kek-1").exit()).isZero();
        Cli.Result info = Cli.asm(t.env(), "hsm-info");
        assertThat(info.exit()).as(info.toString()).isZero();
        assertThat(info.stdout()).contains("2 object(s)").contains("role=kek").contains("id=kek-1")
                .contains("keyType=AES").contains("bits=256").contains("neverExtractable=true")
                .contains("subject=CN=Root CA,O=Istio").contains("id=" + Hsm.DEFAULT_CA_ID)
                .contains("model SoftHSM");
        assertThat(info.all()).doesNotContain(t.userPinForTests());
        Cli.Result json = Cli.asm(t.env(), "hsm-info", "--json");
        assertThat(json.stdout()).contains("\"role\" : \"kek\"").contains("\"sensitive\" : true").contains("\"extractable\" : false");
        assertThat(json.all()).doesNotContain(t.userPinForTests());
    }

    // ------------------------------------------------------------ copies, as the plugin's import-ca leaves them

    /** The plugin's import-ca, called `n` more times: one more object under the CA ID each time (written by pkcs11-tool). */
    void pluginImports(Path root, int n) {
        for (int i = 0; i < n; i++) t.writeCertificate(Pki.single(root, "root"), Hsm.DEFAULT_CA_ID);
    }

    @Test
    void identicalCopiesAreAlreadyStoredWithTheirCount() {
        Path root = opensslRoot("root", "/O=Istio/CN=Root CA");
        assertThat(Cli.asm(t.env(), "import-ca", "-f", root.toString()).exit()).isZero();
        for (int copies = 2; copies <= 3; copies++) {
            pluginImports(root, 1);
            Cli.Result r = Cli.asm(t.env(), "import-ca", "-f", root.toString());
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).contains("root 'CN=Root CA,O=Istio' is already stored as CA " + Hsm.DEFAULT_CA_ID
                    + " on token '" + t.label + "' (" + copies + " copies)").contains("import-ca --dedupe keeps one");
            assertThat(r.stderr()).doesNotContain("different");
            Cli.Result json = Cli.asm(t.env(), "import-ca", "-f", root.toString(), "--json");
            assertThat(json.exit()).as(json.toString()).isZero();
            assertThat(json.stdout()).contains("\"changed\" : false").contains("\"copies\" : " + copies);
            assertThat(t.objectCount()).isEqualTo(copies);
            Cli.Result info = Cli.asm(t.env(), "hsm-info");
            assertThat(info.exit()).as(info.toString()).isZero();
            assertThat(info.stdout()).contains("copies=" + copies + " identical")
                    .contains("CA ID " + Hsm.DEFAULT_CA_ID + ": root stored in " + copies + " identical copies");
            assertThat(info.stderr()).doesNotContain("differ");
            Cli.Result infoJson = Cli.asm(t.env(), "hsm-info", "--json");
            assertThat(infoJson.stdout()).contains("\"copies\" : " + copies).contains("\"copiesIdentical\" : true");
        }
    }

    @Test
    void dedupeKeepsOneCopyUnderDryRunChangesNothingAndIsIdempotent() throws Exception {
        Path root = opensslRoot("root", "/O=Istio/CN=Root CA");
        assertThat(Cli.asm(t.env(), "import-ca", "-f", root.toString()).exit()).isZero();
        pluginImports(root, 2);
        Cli.Result dry = Cli.asm(t.env(), "import-ca", "--dedupe", "--dry-run");
        assertThat(dry.exit()).as(dry.toString()).isZero();
        assertThat(dry.stdout()).contains("would remove 2 extra identical copies of root 'CN=Root CA,O=Istio' under CA " + Hsm.DEFAULT_CA_ID);
        assertThat(t.objectCount()).isEqualTo(3);

        Cli.Result done = Cli.asm(t.env(), "import-ca", "--dedupe", "--json");
        assertThat(done.exit()).as(done.toString()).isZero();
        assertThat(done.stdout()).contains("\"changed\" : true").contains("\"copies\" : 3").contains("\"removed\" : 2");
        assertThat(t.objectCount()).isEqualTo(1);
        Path stored = tmp.resolve("stored.der");
        t.tool("--token-label", t.label, "--read-object", "--type", "cert", "--id", CA_ID_HEX, "--output-file", stored.toString());
        assertThat(Files.readAllBytes(stored)).isEqualTo(Pki.single(root, "root").getEncoded());

        Cli.Result again = Cli.asm(t.env(), "import-ca", "--dedupe", "--json");
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("\"changed\" : false").contains("\"removed\" : 0");
        assertThat(Cli.asm(t.env(), "import-ca", "--dedupe").stdout()).contains("nothing to dedupe");

        // with the file: the same, one copy removed; then a plain import-ca sees one copy
        pluginImports(root, 1);
        Cli.Result withFile = Cli.asm(t.env(), "import-ca", "-f", root.toString(), "--dedupe");
        assertThat(withFile.exit()).as(withFile.toString()).isZero();
        assertThat(withFile.stdout()).contains("removed 1 extra identical copy of root");
        assertThat(t.objectCount()).isEqualTo(1);
        assertThat(Cli.asm(t.env(), "import-ca", "-f", root.toString()).stdout()).contains("is already stored").doesNotContain("copies");
    }

    @Test
    void copiesThatDifferStayAnErrorAndDedupeChangesNothing() {
        Path a = opensslRoot("a", "/O=Istio/CN=Root A"), b = opensslRoot("b", "/O=Istio/CN=Root B");
        assertThat(Cli.asm(t.env(), "import-ca", "-f", a.toString()).exit()).isZero();
        pluginImports(b, 1);
        Cli.Result r = Cli.asm(t.env(), "import-ca", "-f", a.toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("2 different certificates are stored as CA " + Hsm.DEFAULT_CA_ID).contains("--replace");
        for (String[] args : List.of(new String[]{"--dedupe"}, new String[]{"--dedupe", "--dry-run"}, new String[]{"--dedupe", "-f", a.toString()})) {
            List<String> cmd = new java.util.ArrayList<>(List.of("import-ca"));
            cmd.addAll(List.of(args));
            Cli.Result d = Cli.asm(t.env(), cmd.toArray(String[]::new));
            assertThat(d.exit()).as(d.toString()).isEqualTo(1);
            assertThat(d.stderr()).contains("2 certificates under CA ID " + Hsm.DEFAULT_CA_ID + " on token '" + t.label
                    + "' differ (2 different values): --dedupe removes only identical copies, so nothing was changed");
            assertThat(t.objectCount()).isEqualTo(2);
        }
        // two identical and one that differs: still refused, all three kept
        pluginImports(a, 1);
        Cli.Result three = Cli.asm(t.env(), "import-ca", "--dedupe");
        assertThat(three.exit()).as(three.toString()).isEqualTo(1);
        assertThat(three.stderr()).contains("3 certificates under CA ID").contains("(2 different values)");
        assertThat(t.objectCount()).isEqualTo(3);
        Cli.Result info = Cli.asm(t.env(), "hsm-info");
        assertThat(info.exit()).as(info.toString()).isZero();
        assertThat(info.stdout()).contains("copies=3 differing");
        assertThat(info.stderr()).contains("CA ID " + Hsm.DEFAULT_CA_ID + ": 3 certificates that differ (2 different values)")
                .contains("import-ca -f ROOT_PEM --replace");
        // --replace keeps exactly the given one
        Cli.Result replaced = Cli.asm(t.env(), "import-ca", "-f", a.toString(), "--replace");
        assertThat(replaced.exit()).as(replaced.toString()).isZero();
        assertThat(t.objectCount()).isEqualTo(1);
        assertThat(t.objects()).contains("CN=Root A,O=Istio").doesNotContain("Root B");
    }

    @Test
    void dedupeAloneNeedsNoFileButImportNeedsOne() {
        Cli.Result none = Cli.asm(t.env(), "import-ca");
        assertThat(none.exit()).as(none.toString()).isEqualTo(2);
        assertThat(none.stderr()).contains("no root certificate given").contains("--dedupe");
        Cli.Result empty = Cli.asm(t.env(), "import-ca", "--dedupe");
        assertThat(empty.exit()).as(empty.toString()).isZero();
        assertThat(empty.stdout()).contains("no certificate is stored as CA " + Hsm.DEFAULT_CA_ID).contains("nothing to dedupe");
        Path a = opensslRoot("a", "/CN=A");
        assertThat(Cli.asm(t.env(), "import-ca", "-f", a.toString(), "--dedupe", "--replace").exit()).isEqualTo(2);
        assertThat(t.objectCount()).isZero();
    }

    static KeyPair rsa() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(2048);
        return g.generateKeyPair();
    }

    static java.security.cert.X509Certificate cert(String subject, KeyPair subjectKey, String issuer, KeyPair issuerKey,
            boolean ca, boolean keyCertSign, Instant from, Instant to) throws Exception {
        var b = new JcaX509v3CertificateBuilder(new X500Name(issuer), BigInteger.valueOf(System.nanoTime()),
                Date.from(from), Date.from(to), new X500Name(subject), subjectKey.getPublic());
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(ca));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(keyCertSign ? KeyUsage.keyCertSign | KeyUsage.cRLSign : KeyUsage.digitalSignature));
        return new JcaX509CertificateConverter().getCertificate(
                b.build(new JcaContentSignerBuilder("SHA256withRSA").build(issuerKey.getPrivate())));
    }

    Path write(String name, java.security.cert.X509Certificate c) throws Exception {
        Path p = tmp.resolve(name + ".pem");
        Files.writeString(p, Pki.pem(c));
        return p;
    }

}
