package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import java.util.Map;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.DefaultSignatureAlgorithmIdentifierFinder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * sign-csr on real SoftHSM2 tokens: root keys made by pkcs11-tool (not by the toolkit),
 * results checked with openssl (verify -partial_chain, x509 -text).
 */
class SignCsrTest {
    @TempDir Path tmp;
    SoftHsmToken t;
    KeyPair istiodKey;
    Path csr;

    @BeforeEach
    void setUp() throws Exception {
        t = SoftHsmToken.create(tmp);
        istiodKey = rsa();
        csr = tmp.resolve("csr.pem");
        Files.writeString(csr, IstiodStandIn.csr("cluster.local", istiodKey));
    }

    // ------------------------------------------------------------ roots, made independently of the toolkit

    /** A root whose RSA key pkcs11-tool generated in the token; its self-signature made by pkcs11-tool too. */
    static Path hsmRsaRoot(SoftHsmToken t, Path dir, String label, String subject, Duration life) throws Exception {
        t.tool("--token-label", t.label, "--login", "--pin", "env:USER_PIN", "--keypairgen", "--key-type", "rsa:2048",
                "--label", label, "--id", "0a01", "--usage-sign");
        Path pub = dir.resolve(label + ".pub.der");
        t.tool("--token-label", t.label, "--read-object", "--type", "pubkey", "--label", label, "--output-file", pub.toString());
        SubjectPublicKeyInfo spki = SubjectPublicKeyInfo.getInstance(Files.readAllBytes(pub));
        ContentSigner bySoftHsm = new ContentSigner() {
            final ByteArrayOutputStream tbs = new ByteArrayOutputStream();
            public AlgorithmIdentifier getAlgorithmIdentifier() { return new DefaultSignatureAlgorithmIdentifierFinder().find("SHA256withRSA"); }
            public OutputStream getOutputStream() { return tbs; }
            public byte[] getSignature() {
                try {
                    Path in = dir.resolve(label + ".tbs"), sig = dir.resolve(label + ".sig");
                    Files.write(in, tbs.toByteArray());
                    t.tool("--token-label", t.label, "--login", "--pin", "env:USER_PIN", "--sign", "--mechanism", "SHA256-RSA-PKCS",
                            "--label", label, "--input-file", in.toString(), "--output-file", sig.toString());
                    return Files.readAllBytes(sig);
                } catch (java.io.IOException e) {
                    throw new IllegalStateException(e);
                }
            }
        };
        X500Name name = new X500Name(subject);
        Instant now = Instant.now();
        X509v3CertificateBuilder b = new X509v3CertificateBuilder(name, BigInteger.valueOf(now.toEpochMilli()),
                Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(life)), name, spki);
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        b.addExtension(Extension.subjectKeyIdentifier, false, new org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils().createSubjectKeyIdentifier(spki));
        X509Certificate root = new JcaX509CertificateConverter().getCertificate(b.build(bySoftHsm));
        root.verify(root.getPublicKey()); // pkcs11-tool signed what BC built
        Path pem = dir.resolve(label + ".pem");
        Files.writeString(pem, Pki.pem(root));
        return pem;
    }

    /** An EC P-256 root made by openssl, its key then written into the token by pkcs11-tool. */
    static Path hsmEcRoot(SoftHsmToken t, Path dir, String label, String subject) {
        Path root = opensslRoot(dir, label, subject, "ec", 30);
        t.tool("--token-label", t.label, "--login", "--pin", "env:USER_PIN", "--write-object", dir.resolve(label + ".key").toString(),
                "--type", "privkey", "--label", label, "--id", "0b01", "--usage-sign");
        return root;
    }

    /** A root CA by openssl: `dir/name.pem` and its key `dir/name.key` (mode 0600). */
    static Path opensslRoot(Path dir, String name, String subject, String keyType, int days) {
        Path key = dir.resolve(name + ".key"), crt = dir.resolve(name + ".pem");
        List<String> cmd = new ArrayList<>(List.of("openssl", "req", "-x509", "-newkey", keyType.equals("ec") ? "ec" : "rsa:2048"));
        if (keyType.equals("ec")) cmd.addAll(List.of("-pkeyopt", "ec_paramgen_curve:P-256"));
        cmd.addAll(List.of("-nodes", "-keyout", key.toString(), "-out", crt.toString(), "-days", String.valueOf(days), "-subj", subject,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"));
        run(dir, cmd.toArray(String[]::new));
        return crt;
    }

    /** An openssl root whose key file is private (0600), as sign-csr requires of a key file. */
    Path fileRoot(String name, String subject, String keyType, int days) throws Exception {
        Path root = opensslRoot(tmp, name, subject, keyType, days);
        Files.setPosixFilePermissions(tmp.resolve(name + ".key"), PosixFilePermissions.fromString("rw-------"));
        return root;
    }

    /** sign-csr with the root's key file (dir/name.key next to dir/name.pem). */
    Cli.Result signWithFile(Path root, Path out, String... more) {
        String key = root.toString().replaceFirst("\\.pem$", ".key");
        List<String> args = new ArrayList<>(List.of("sign-csr", "--csr", csr.toString(), "--root-cert", root.toString(),
                "--root-key", key, "-o", out.toString()));
        args.addAll(List.of(more));
        return Cli.asm(Map.of(), tmp, args.toArray(String[]::new));
    }

    static Cli.Result run(Path dir, String... cmd) {
        Cli.Result r = Cli.run(List.of(cmd), Map.of(), dir, null);
        assertThat(r.exit()).as(r.toString()).isZero();
        return r;
    }

    static KeyPair rsa() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(2048);
        return g.generateKeyPair();
    }

    static List<X509Certificate> chain(Path file) throws Exception {
        List<X509Certificate> certs = new ArrayList<>();
        for (var c : CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(Files.readAllBytes(file))))
            certs.add((X509Certificate) c);
        return certs;
    }

    /** The chain's first certificate, alone, for openssl. */
    static Path first(Path chain, Path dir) throws Exception {
        Path f = dir.resolve("first.pem");
        Files.writeString(f, Pki.pem(chain(chain).get(0)));
        return f;
    }

    // ------------------------------------------------------------ signing

    @Test
    void signsWithAnRsaRootKeyInTheHsmAsIstiodNeeds() throws Exception {
        Path root = hsmRsaRoot(t, tmp, "root-key", "CN=Root CA,O=Istio", Duration.ofDays(3650));
        Path out = tmp.resolve("cert-chain.pem");
        Map<String, String> env = new java.util.HashMap<>(t.env());
        env.put("CLUSTER_SUFFIX", "c7");
        Cli.Result r = Cli.asm(env, tmp, "sign-csr", "--csr", csr.toString(), "--root-cert", root.toString(),
                "--root-key-label", "root-key", "-o", out.toString());
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("O=cluster.local").contains("CN=Root CA,O=Istio").contains("upload-chain");
        assertThat(r.stderr()).doesNotContain("warning");

        List<X509Certificate> certs = chain(out);
        assertThat(certs).hasSize(2);
        assertThat(certs.get(1)).isEqualTo(chain(root).get(0));
        X509Certificate ca = certs.get(0);
        assertThat(ca.getPublicKey()).isEqualTo(istiodKey.getPublic());
        assertThat(ca.getIssuerX500Principal().getEncoded()).isEqualTo(certs.get(1).getSubjectX500Principal().getEncoded());
        long days = Duration.between(ca.getNotBefore().toInstant(), ca.getNotAfter().toInstant()).toDays();
        assertThat(days).isBetween(365L, 366L);
        assertThat(Files.getPosixFilePermissions(out)).isEqualTo(PosixFilePermissions.fromString("rw-r--r--"));

        // openssl, independently: the CA certificate chains to the root alone, and has what istiod's plugin needs
        Path ca1 = first(out, tmp);
        assertThat(run(tmp, "openssl", "verify", "-CAfile", root.toString(), "-partial_chain", ca1.toString()).stdout()).contains(": OK");
        String text = run(tmp, "openssl", "x509", "-in", ca1.toString(), "-noout", "-text").stdout();
        assertThat(text).contains("Signature Algorithm: sha256WithRSAEncryption")
                .contains("Issuer: CN = Root CA, O = Istio")
                .containsPattern("Subject: O ?= ?cluster.local\n")
                .containsPattern("X509v3 Basic Constraints: critical\\s+CA:TRUE, pathlen:0")
                .containsPattern("X509v3 Key Usage: critical\\s+Digital Signature, Certificate Sign, CRL Sign")
                .contains("X509v3 Subject Key Identifier").contains("X509v3 Authority Key Identifier")
                .doesNotContain("Extended Key Usage")
                .contains("Public-Key: (2048 bit)");
        // what tells this CA from another cluster's of the same subject, as openssl reads it
        String serial = run(tmp, "openssl", "x509", "-in", ca1.toString(), "-noout", "-serial").stdout().strip().replaceFirst("^serial=", "")
                .toLowerCase().replaceFirst("^0+", "");
        java.util.regex.Matcher ski = java.util.regex.Pattern.compile("X509v3 Subject Key Identifier:\\s*\n\\s*([0-9A-F:]+)").matcher(text);
        assertThat(ski.find()).isTrue();
        assertThat(r.stdout()).contains("for cluster c7: serial " + serial + ", SKI " + ski.group(1).toLowerCase() + ", not after "
                + ca.getNotAfter().toInstant());
        // the root's private key never left the token: pkcs11-tool still sees it sensitive and not extractable
        assertThat(t.objects()).contains("root-key").contains("never extractable");

        // second run: nothing changes
        byte[] before = Files.readAllBytes(out);
        Cli.Result again = Cli.asm(env, tmp, "sign-csr", "--csr", csr.toString(), "--root-cert", root.toString(),
                "--root-key-label", "root-key", "-o", out.toString(), "--json");
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("\"changed\" : false");
        var identity = tools.jackson.databind.json.JsonMapper.builder().build().readTree(again.stdout()).get("identity");
        assertThat(identity.get("serial").asString()).isEqualTo(serial);
        assertThat(identity.get("ski").asString()).isEqualTo(ski.group(1).toLowerCase());
        assertThat(identity.get("cluster").asString()).isEqualTo("c7");
        assertThat(Files.readAllBytes(out)).isEqualTo(before);
    }

    @Test
    void signsWithAnEcRootKeyInTheHsm() throws Exception {
        Path root = hsmEcRoot(t, tmp, "root-ec", "/O=Istio/CN=EC Root");
        Path out = tmp.resolve("cert-chain.pem");
        Cli.Result r = Cli.asm(t.env(), tmp, "sign-csr", "--csr", csr.toString(), "--root-cert", root.toString(),
                "--root-key-label", "root-ec", "-o", out.toString());
        assertThat(r.exit()).as(r.toString()).isZero();
        Path ca1 = first(out, tmp);
        assertThat(run(tmp, "openssl", "verify", "-CAfile", root.toString(), "-partial_chain", ca1.toString()).stdout()).contains(": OK");
        assertThat(run(tmp, "openssl", "x509", "-in", ca1.toString(), "-noout", "-text").stdout())
                .contains("Signature Algorithm: ecdsa-with-SHA256");
        // the root cert ends the chain, so the whole file also verifies against it
        List<X509Certificate> signed = chain(out);
        assertThat(Pki.chainProblem(Pki.ChainRules.ISTIOD, signed, signed.get(signed.size() - 1), new Date(), "the chain")).isNull();
    }

    @Test
    void signsWithARootKeyFileAndWarnsAboutIt() throws Exception {
        Path root = fileRoot("fileroot", "/O=Istio/CN=File Root", "rsa", 3650);
        Path out = tmp.resolve("chain.pem");
        Cli.Result r = signWithFile(root, out, "--days", "30");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stderr()).contains("warning: the root's private key is read from a file");
        X509Certificate ca = chain(out).get(0);
        assertThat(Duration.between(ca.getNotBefore().toInstant(), ca.getNotAfter().toInstant()).toDays()).isBetween(30L, 31L);
        assertThat(run(tmp, "openssl", "verify", "-CAfile", root.toString(), "-partial_chain", first(out, tmp).toString()).stdout()).contains(": OK");
    }

    /** The root key's password in a private file, as --root-key-pass-file wants it. */
    Path passwordFile() throws Exception {
        Path pass = tmp.resolve("pass");
        Files.writeString(pass, "s3cret\n");
        Files.setPosixFilePermissions(pass, PosixFilePermissions.fromString("rw-------"));
        return pass;
    }

    /** openssl's two encrypted PEM forms: PKCS#8 (BEGIN ENCRYPTED PRIVATE KEY) and the traditional Proc-Type one. */
    @Test
    void readsPasswordProtectedPemRootKeys() throws Exception {
        Path root = opensslRoot(tmp, "pemroot", "/CN=PEM Root", "rsa", 3650);
        Path pass = passwordFile();
        Path pkcs8 = tmp.resolve("root.p8.pem"), traditional = tmp.resolve("root.trad.pem");
        run(tmp, "openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", tmp.resolve("pemroot.key").toString(),
                "-out", pkcs8.toString(), "-passout", "file:" + pass);
        run(tmp, "openssl", "rsa", "-aes256", "-traditional", "-in", tmp.resolve("pemroot.key").toString(),
                "-out", traditional.toString(), "-passout", "file:" + pass);
        assertThat(Files.readString(pkcs8)).contains("BEGIN ENCRYPTED PRIVATE KEY");
        assertThat(Files.readString(traditional)).contains("Proc-Type: 4,ENCRYPTED");
        for (Path key : List.of(pkcs8, traditional)) {
            Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
            Path out = tmp.resolve(key.getFileName() + ".chain.pem");
            Cli.Result noPass = Cli.asm(Map.of(), tmp, "sign-csr", "--csr", csr.toString(), "--root-cert", root.toString(),
                    "--root-key", key.toString(), "-o", out.toString());
            assertThat(noPass.exit()).as(noPass.toString()).isEqualTo(2);
            assertThat(noPass.stderr()).contains("is encrypted").contains("--root-key-pass-file");
            Cli.Result r = Cli.asm(Map.of(), tmp, "sign-csr", "--csr", csr.toString(), "--root-cert", root.toString(),
                    "--root-key", key.toString(), "--root-key-pass-file", pass.toString(), "-o", out.toString());
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(run(tmp, "openssl", "verify", "-CAfile", root.toString(), "-partial_chain", first(out, tmp).toString())
                    .stdout()).contains(": OK");
        }
    }

    @Test
    void readsAPasswordProtectedPkcs12RootKey() throws Exception {
        Path root = opensslRoot(tmp, "p12root", "/CN=P12 Root", "ec", 3650);
        Path pass = passwordFile();
        Path p12 = tmp.resolve("root.p12");
        run(tmp, "openssl", "pkcs12", "-export", "-inkey", tmp.resolve("p12root.key").toString(), "-in", root.toString(),
                "-out", p12.toString(), "-passout", "file:" + pass);
        Files.setPosixFilePermissions(p12, PosixFilePermissions.fromString("rw-------"));
        Path out = tmp.resolve("chain.pem");
        Cli.Result noPass = Cli.asm(Map.of(), tmp, "sign-csr", "--csr", csr.toString(), "--root-cert", root.toString(),
                "--root-key", p12.toString(), "-o", out.toString());
        assertThat(noPass.exit()).as(noPass.toString()).isEqualTo(2);
        assertThat(noPass.stderr()).contains("--root-key-pass-file");
        assertThat(out).doesNotExist();
        Cli.Result r = Cli.asm(Map.of(), tmp, "sign-csr", "--csr", csr.toString(), "--root-cert", root.toString(),
                "--root-key", p12.toString(), "--root-key-pass-file", pass.toString(), "-o", out.toString());
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(run(tmp, "openssl", "verify", "-CAfile", root.toString(), "-partial_chain", first(out, tmp).toString()).stdout()).contains(": OK");
    }

    @Test
    void neverOutlivesTheRoot() throws Exception {
        Path root = fileRoot("short", "/CN=Short Root", "rsa", 10);
        Path out = tmp.resolve("chain.pem");
        Cli.Result r = signWithFile(root, out);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stderr()).contains("the root expires on");
        List<X509Certificate> certs = chain(out);
        assertThat(certs.get(0).getNotAfter()).isEqualTo(certs.get(1).getNotAfter());
    }

    // ------------------------------------------------------------ refusals: exit 2, nothing written

    Cli.Result refused(Map<String, String> env, String... args) {
        Path out = tmp.resolve("refused.pem");
        List<String> all = new ArrayList<>(List.of("sign-csr", "-o", out.toString()));
        all.addAll(List.of(args));
        Cli.Result r = Cli.asm(env, tmp, all.toArray(String[]::new));
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stderr().lines().filter(l -> l.startsWith("error: "))).as(r.toString()).hasSize(1);
        assertThat(r.stderr()).doesNotContain("Exception").doesNotContain("\tat ");
        assertThat(out).doesNotExist();
        return r;
    }

    @Test
    void refusesACsrWhoseSignatureFails() throws Exception {
        Path root = hsmRsaRoot(t, tmp, "root-key", "CN=Root CA", Duration.ofDays(30));
        KeyPair other = rsa();
        var forged = new JcaPKCS10CertificationRequestBuilder(new X500Name("O=cluster.local"), istiodKey.getPublic())
                .build(new JcaContentSignerBuilder("SHA256withRSA").build(other.getPrivate()));
        Path bad = tmp.resolve("forged.pem");
        Files.writeString(bad, csrPem(forged));
        // openssl agrees that this request does not verify (OpenSSL 3.0 still exits 0 then)
        Cli.Result o = Cli.run(List.of("openssl", "req", "-in", bad.toString(), "-verify", "-noout"), Map.of(), tmp, null);
        assertThat(o.all()).as(o.toString()).contains("verify failure").doesNotContain("verify OK");
        assertThat(refused(t.env(), "--csr", bad.toString(), "--root-cert", root.toString(), "--root-key-label", "root-key").stderr())
                .contains("signature of the CSR 'O=cluster.local' does not verify");
    }

    /** A CSR for O=cluster.local made by openssl with a key of its own (`openssl req -newkey <spec>`), which openssl verifies. */
    Path opensslCsr(String name, String... newkey) {
        Path out = tmp.resolve(name + ".csr.pem");
        List<String> cmd = new ArrayList<>(List.of("openssl", "req", "-new", "-newkey"));
        cmd.addAll(List.of(newkey));
        cmd.addAll(List.of("-nodes", "-keyout", tmp.resolve(name + ".csr.key").toString(), "-subj", "/O=cluster.local", "-out", out.toString()));
        run(tmp, cmd.toArray(String[]::new));
        assertThat(run(tmp, "openssl", "req", "-in", out.toString(), "-verify", "-noout").all()).contains("verify OK");
        return out;
    }

    /** Only RSA of 2048 bits or more, as istiod makes its CA key; the signature of the others is checked right first. */
    @Test
    void refusesCsrKeysIstiodNeverMakesAfterCheckingTheirSignature() throws Exception {
        Path root = fileRoot("root", "/CN=Root", "rsa", 30);
        String key = tmp.resolve("root.key").toString();
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(1024);
        KeyPair short1024 = g.generateKeyPair();
        Path rsa1024 = tmp.resolve("rsa1024.csr.pem");
        Files.writeString(rsa1024, IstiodStandIn.csr("cluster.local", short1024));
        g = KeyPairGenerator.getInstance("EC");
        g.initialize(new java.security.spec.ECGenParameterSpec("secp384r1"));
        KeyPair p384 = g.generateKeyPair();
        Path ec384 = tmp.resolve("ec384.csr.pem");
        Files.writeString(ec384, csrPem(new JcaPKCS10CertificationRequestBuilder(new X500Name("O=cluster.local"), p384.getPublic())
                .build(new JcaContentSignerBuilder("SHA384withECDSA").build(p384.getPrivate()))));
        Map<Path, String> cases = Map.of(
                opensslCsr("ec256", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"), "EC P-256 is not RSA",
                opensslCsr("ed25519", "ed25519"), "Ed25519 is not RSA",
                ec384, "EC P-384 is not RSA",
                rsa1024, "RSA 1024 is shorter than the 2048 bits istiod makes");
        for (var c : cases.entrySet()) {
            Cli.Result r = refused(Map.of(), "--csr", c.getKey().toString(), "--root-cert", root.toString(), "--root-key", key);
            assertThat(r.stderr()).as(r.toString()).contains("error: the CSR 'O=cluster.local' has a key the Istio CA may not have: " + c.getValue())
                    .contains("only RSA keys of 2048 bits or more are signed").doesNotContain("does not verify");
        }
        // an EC CSR whose signature is broken is refused for that, as openssl does
        var forged = new JcaPKCS10CertificationRequestBuilder(new X500Name("O=cluster.local"), p384.getPublic())
                .build(new JcaContentSignerBuilder("SHA384withECDSA").build(g.generateKeyPair().getPrivate()));
        Path bad = tmp.resolve("forged-ec.pem");
        Files.writeString(bad, csrPem(forged));
        assertThat(Cli.run(List.of("openssl", "req", "-in", bad.toString(), "-verify", "-noout"), Map.of(), tmp, null).all()).contains("verify failure");
        assertThat(refused(Map.of(), "--csr", bad.toString(), "--root-cert", root.toString(), "--root-key", key).stderr())
                .contains("signature of the CSR 'O=cluster.local' does not verify");
        // RSA longer than istiod's is a key the CA may have
        g = KeyPairGenerator.getInstance("RSA");
        g.initialize(3072);
        Files.writeString(csr, IstiodStandIn.csr("cluster.local", g.generateKeyPair()));
        Cli.Result ok = signWithFile(root, tmp.resolve("rsa3072-chain.pem"));
        assertThat(ok.exit()).as(ok.toString()).isZero();
    }

    /** A root with pathLen 0 may not issue the Istio CA, which the plugin needs issued by the root itself. */
    @Test
    void refusesARootWithPathLenZero() throws Exception {
        Path root = tmp.resolve("pl0.pem");
        run(tmp, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp.resolve("pl0.key").toString(),
                "-out", root.toString(), "-days", "30", "-subj", "/CN=Path Zero Root", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign");
        Files.setPosixFilePermissions(tmp.resolve("pl0.key"), PosixFilePermissions.fromString("rw-------"));
        assertThat(refused(Map.of(), "--csr", csr.toString(), "--root-cert", root.toString(), "--root-key", tmp.resolve("pl0.key").toString()).stderr())
                .contains("root certificate 'CN=Path Zero Root' has basicConstraints pathLen 0: it may not issue a CA")
                .contains("use a root without that path length limit");
    }

    @Test
    void refusesARootThatIsNotACa() {
        Path leaf = tmp.resolve("leaf.pem");
        run(tmp, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp.resolve("leaf.key").toString(),
                "-out", leaf.toString(), "-days", "30", "-subj", "/CN=leaf.example", "-addext", "basicConstraints=critical,CA:FALSE");
        assertThat(refused(Map.of(), "--csr", csr.toString(), "--root-cert", leaf.toString(), "--root-key", tmp.resolve("leaf.key").toString()).stderr())
                .contains("'CN=leaf.example' is not a CA certificate");
    }

    @Test
    void refusesAnExpiredRoot() throws Exception {
        KeyPair k = rsa();
        X500Name n = new X500Name("CN=Old Root");
        Instant now = Instant.now();
        var b = new JcaX509v3CertificateBuilder(n, BigInteger.TEN, Date.from(now.minus(Duration.ofDays(400))),
                Date.from(now.minus(Duration.ofDays(35))), n, k.getPublic());
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        Path root = tmp.resolve("old.pem"), key = tmp.resolve("old.key");
        Files.writeString(root, Pki.pem(new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withRSA").build(k.getPrivate())))));
        Files.writeString(key, Pki.pem("PRIVATE KEY", k.getPrivate().getEncoded()));
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
        assertThat(refused(Map.of(), "--csr", csr.toString(), "--root-cert", root.toString(), "--root-key", key.toString()).stderr())
                .contains("'CN=Old Root' expired on");
    }

    @Test
    void refusesARootKeyThatDoesNotMatchTheRoot() throws Exception {
        Path root = hsmRsaRoot(t, tmp, "root-key", "CN=Root CA", Duration.ofDays(30));
        t.tool("--token-label", t.label, "--login", "--pin", "env:USER_PIN", "--keypairgen", "--key-type", "rsa:2048",
                "--label", "other-key", "--id", "0c01", "--usage-sign");
        assertThat(refused(t.env(), "--csr", csr.toString(), "--root-cert", root.toString(), "--root-key-label", "other-key").stderr())
                .contains("the root key does not match the root certificate 'CN=Root CA'");
        Path other = fileRoot("other", "/CN=Other", "rsa", 30);
        assertThat(refused(Map.of(), "--csr", csr.toString(), "--root-cert", root.toString(), "--root-key", tmp.resolve("other.key").toString()).stderr())
                .contains("the root key does not match the root certificate");
        assertThat(refused(t.env(), "--csr", csr.toString(), "--root-cert", root.toString(), "--root-key-label", "no-such-key").stderr())
                .contains("no private key labelled 'no-such-key'");
        assertThat(other).exists();
    }

    @Test
    void refusesASubjectThatIsNotATrustDomainUnlessAllowed() throws Exception {
        Path root = fileRoot("root", "/CN=Root", "rsa", 30);
        Path key = tmp.resolve("root.key");
        var req = new JcaPKCS10CertificationRequestBuilder(new X500Name("CN=www.example.com,O=cluster.local"), istiodKey.getPublic())
                .build(new JcaContentSignerBuilder("SHA256withRSA").build(istiodKey.getPrivate()));
        Path web = tmp.resolve("web.pem");
        Files.writeString(web, csrPem(req));
        assertThat(refused(Map.of(), "--csr", web.toString(), "--root-cert", root.toString(), "--root-key", key.toString()).stderr())
                .contains("is not O=<trust domain>").contains("--allow-any-subject");
        Cli.Result ok = Cli.asm(Map.of(), tmp, "sign-csr", "--csr", web.toString(), "--root-cert", root.toString(),
                "--root-key", key.toString(), "--allow-any-subject", "-o", tmp.resolve("any.pem").toString());
        assertThat(ok.exit()).as(ok.toString()).isZero();
    }

    @Test
    void refusesAKeyFileOthersCanRead() {
        Path root = opensslRoot(tmp, "root", "/CN=Root", "rsa", 30);
        assertThat(tmp.resolve("root.key").toFile().setReadable(true, false)).isTrue();
        assertThat(refused(Map.of(), "--csr", csr.toString(), "--root-cert", root.toString(), "--root-key", tmp.resolve("root.key").toString()).stderr())
                .contains("accessible by others");
    }

    @Test
    void keepsAnOutputThatHoldsAnotherChainUnlessReplace() throws Exception {
        Path root = fileRoot("root", "/CN=Root", "rsa", 30);
        Path out = tmp.resolve("cert-chain.pem");
        Files.writeString(out, Pki.pem(chain(root).get(0)));
        Cli.Result r = signWithFile(root, out);
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("already exists").contains("--replace");
        assertThat(chain(out)).hasSize(1);
        Cli.Result replaced = signWithFile(root, out, "--replace");
        assertThat(replaced.exit()).as(replaced.toString()).isZero();
        assertThat(chain(out)).hasSize(2);
    }

    @Test
    void writesTheCanonicalFormAndRewritesTheSameChainInAnyOtherForm() throws Exception {
        Path root = fileRoot("root", "/O=Istio/CN=Root", "rsa", 30);
        Path out = tmp.resolve("cert-chain.pem");
        Cli.Result first = signWithFile(root, out);
        assertThat(first.exit()).as(first.toString()).isZero();
        String canonical = Files.readString(out);
        assertThat(canonical).matches(ChainFormsTest.CANONICAL);
        List<X509Certificate> certs = chain(out);
        assertThat(certs).hasSize(2);
        Map<String, String> forms = new java.util.LinkedHashMap<>();
        forms.put(canonical + "\n", " (istiod would refuse it: a blank line follows the last certificate)");
        forms.put(canonical.replace("\n", "\r\n"), "\n");
        forms.put(ChainFormsTest.opensslText(tmp, Pki.pem(certs.get(0))) + Pki.pem(certs.get(1)), "\n");
        forms.put("\n" + canonical.stripTrailing(), "\n");
        for (var form : forms.entrySet()) {
            Files.writeString(out, form.getKey());
            Cli.Result dry = signWithFile(root, out, "--dry-run");
            assertThat(dry.exit()).as(dry.toString()).isZero();
            assertThat(Files.readString(out)).isEqualTo(form.getKey());
            Cli.Result r = signWithFile(root, out);
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).contains(out + " holds this CSR's chain, but not in canonical form" + form.getValue())
                    .contains("replaced " + out);
            assertThat(Files.readString(out)).isEqualTo(canonical);
            assertThat(chain(out)).isEqualTo(certs);
        }
    }

    @Test
    void dryRunSignsNothingToDisk() throws Exception {
        Path root = hsmRsaRoot(t, tmp, "root-key", "CN=Root CA", Duration.ofDays(30));
        Path out = tmp.resolve("cert-chain.pem");
        Cli.Result r = Cli.asm(t.env(), tmp, "sign-csr", "--csr", csr.toString(), "--root-cert", root.toString(),
                "--root-key-label", "root-key", "-o", out.toString(), "--dry-run");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("would write " + out);
        assertThat(out).doesNotExist();
    }

    static String csrPem(org.bouncycastle.pkcs.PKCS10CertificationRequest request) throws java.io.IOException {
        return Pki.pem("CERTIFICATE REQUEST", request.getEncoded());
    }
}
