package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.Map;
import org.bouncycastle.asn1.ASN1Sequence;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pki's CSR, issuing, key-file and Go-chain rules, in process; certificates made with BC or openssl. */
class PkiTest {
    @TempDir Path tmp;
    static final Date NOW = new Date();

    static KeyPair ec() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    /** A certificate made with BC: `ca` pathLen (-1 = not a CA, MAX = no limit), optional EKU. */
    static X509Certificate cert(String subject, KeyPair key, String issuer, KeyPair issuerKey, int ca, KeyPurposeId eku,
                                Instant from, Instant to) throws Exception {
        var b = new JcaX509v3CertificateBuilder(new X500Name(issuer), BigInteger.valueOf(System.nanoTime()), Date.from(from), Date.from(to),
                new X500Name(subject), key.getPublic());
        if (ca >= 0) b.addExtension(Extension.basicConstraints, true, ca == Integer.MAX_VALUE ? new BasicConstraints(true) : new BasicConstraints(ca));
        else b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.digitalSignature));
        if (eku != null) b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(eku));
        String alg = issuerKey.getPrivate().getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder(alg).build(issuerKey.getPrivate())));
    }

    static X509Certificate cert(String subject, KeyPair key, String issuer, KeyPair issuerKey, int ca, KeyPurposeId eku) throws Exception {
        Instant now = Instant.now();
        return cert(subject, key, issuer, issuerKey, ca, eku, now.minus(Duration.ofHours(1)), now.plus(Duration.ofDays(30)));
    }

    /** A path (leaf first, root last) judged as istiod judges it. */
    static String goChain(List<X509Certificate> path, Date now) {
        return Pki.chainProblem(Pki.ChainRules.ISTIOD, path, path.get(path.size() - 1), now, "the chain");
    }

    /** One checker, two modes: both take a chain with or without its root; each says what is wrong in its own words. */
    @Test
    void bothModesJudgeTheSameLinks() throws Exception {
        KeyPair rk = ec(), ck = ec(), ok = ec();
        X509Certificate root = cert("CN=Root", rk, "CN=Root", rk, Integer.MAX_VALUE, null);
        X509Certificate ca = cert("O=cluster.local", ck, "CN=Root", rk, 0, null);
        X509Certificate stranger = cert("O=stranger", ck, "CN=Other", ok, 0, null);
        for (Pki.ChainRules rules : Pki.ChainRules.values()) {
            assertThat(Pki.chainProblem(rules, List.of(ca, root), root, NOW, "c")).as(rules.name()).isNull();
            assertThat(Pki.chainProblem(rules, List.of(ca), root, NOW, "c")).as(rules.name()).isNull();
            assertThat(Pki.chainProblem(rules, List.of(), root, NOW, "c")).as(rules.name()).isEqualTo("c holds no certificate");
        }
        assertThat(Pki.chainProblem(Pki.ChainRules.ISTIOD, List.of(stranger), root, NOW, "c"))
                .isEqualTo("x509: certificate signed by unknown authority: 'O=stranger' is issued by 'CN=Other', not by 'CN=Root'");
        assertThat(Pki.chainProblem(Pki.ChainRules.STRICT, List.of(stranger), root, NOW, "c"))
                .isEqualTo("c certificate #1 'O=stranger' was issued by 'CN=Other', not by the root 'CN=Root'");
        // only the strict rules ask that the root may sign certificates; Go trusts its root as given
        X509Certificate notCaRoot = cert("CN=Root", rk, "CN=Root", rk, -1, null);
        X509Certificate underIt = cert("O=cluster.local", ck, "CN=Root", rk, 0, null);
        assertThat(Pki.chainProblem(Pki.ChainRules.ISTIOD, List.of(underIt), notCaRoot, NOW, "c")).isNull();
        assertThat(Pki.chainProblem(Pki.ChainRules.STRICT, List.of(underIt), notCaRoot, NOW, "c"))
                .isEqualTo("The root 'CN=Root' is not a CA that may sign certificates, yet it issued c certificate #1 'O=cluster.local'");
    }

    @Test
    void goChainRulesAsIstiodAppliesThem() throws Exception {
        KeyPair rk = ec(), ik = ec(), ck = ec();
        X509Certificate root = cert("CN=Root", rk, "CN=Root", rk, Integer.MAX_VALUE, null);
        X509Certificate ca = cert("O=cluster.local", ck, "CN=Root", rk, 0, null);
        assertThat(goChain(List.of(ca, root), NOW)).isNull();
        // EKU: none or one allowing serverAuth passes; clientAuth alone is refused (also on the root)
        assertThat(goChain(List.of(cert("O=td", ck, "CN=Root", rk, 0, KeyPurposeId.id_kp_serverAuth), root), NOW)).isNull();
        assertThat(goChain(List.of(cert("O=td", ck, "CN=Root", rk, 0, KeyPurposeId.anyExtendedKeyUsage), root), NOW)).isNull();
        assertThat(goChain(List.of(cert("O=td", ck, "CN=Root", rk, 0, KeyPurposeId.id_kp_clientAuth), root), NOW))
                .startsWith("x509: certificate specifies an incompatible key usage: 'O=td'");
        X509Certificate clientRoot = cert("CN=Root", rk, "CN=Root", rk, Integer.MAX_VALUE, KeyPurposeId.id_kp_clientAuth);
        assertThat(goChain(List.of(ca, clientRoot), NOW)).contains("incompatible key usage: 'CN=Root'");
        // issued by an intermediate: not by the root alone
        X509Certificate inter = cert("CN=Inter", ik, "CN=Root", rk, Integer.MAX_VALUE, null);
        X509Certificate underInter = cert("O=cluster.local", ck, "CN=Inter", ik, 0, null);
        assertThat(goChain(List.of(underInter, root), NOW)).isEqualTo(
                "x509: certificate signed by unknown authority: 'O=cluster.local' is issued by 'CN=Inter', not by 'CN=Root'");
        assertThat(goChain(List.of(underInter, inter, root), NOW)).isNull();
        // same name, other key
        X509Certificate otherRoot = cert("CN=Root", ik, "CN=Root", ik, Integer.MAX_VALUE, null);
        assertThat(goChain(List.of(ca, otherRoot), NOW)).contains("does not verify with the key of 'CN=Root'");
        // an intermediate that is not a CA; path length
        X509Certificate notCa = cert("CN=Inter", ik, "CN=Root", rk, -1, null);
        assertThat(goChain(List.of(underInter, notCa, root), NOW)).contains("'CN=Inter' is not authorized to sign");
        X509Certificate rootLen0 = cert("CN=Root", rk, "CN=Root", rk, 0, null);
        assertThat(goChain(List.of(underInter, inter, rootLen0), NOW)).startsWith("x509: too many intermediates");
        // dates, of every certificate
        Instant now = Instant.now();
        X509Certificate oldRoot = cert("CN=Root", rk, "CN=Root", rk, Integer.MAX_VALUE, null, now.minus(Duration.ofDays(9)), now.minus(Duration.ofDays(1)));
        assertThat(goChain(List.of(ca, oldRoot), NOW)).contains("'CN=Root' expired on");
        X509Certificate future = cert("O=td", ck, "CN=Root", rk, 0, null, now.plus(Duration.ofDays(1)), now.plus(Duration.ofDays(9)));
        assertThat(goChain(List.of(future, root), NOW)).contains("'O=td' is not valid before");
    }

    @Test
    void issuesTheIstioCaCertificateDirectlyUnderTheRoot() throws Exception {
        KeyPair rk = ec(), ik = SignCsrTest.rsa();
        // an openssl root: its subject's string types must be copied byte for byte into the issuer
        Path rootPem = SignCsrTest.opensslRoot(tmp, "root", "/C=US/O=Istio/CN=Root CA", "ec", 30);
        X509Certificate root = Pki.single(rootPem, "root");
        Pki.Csr csr = Pki.csr(IstiodStandIn.csr("cluster.local", ik), "csr");
        assertThat(Pki.csrSignatureValid(csr)).isTrue();
        assertThat(Pki.trustDomain(csr)).isEqualTo("cluster.local");
        var key = Pki.privateKey(Files.readAllBytes(tmp.resolve("root.key")), null, "root.key");
        Instant now = Instant.now();
        X509Certificate ca = Pki.issueIstioCa(csr, root, Pki.signer(key), now, now.plus(Duration.ofDays(1)), Pki.randomSerial());
        ca.verify(root.getPublicKey());
        assertThat(Pki.issuerDer(ca)).isEqualTo(Pki.subjectDer(root));
        assertThat(ca.getBasicConstraints()).isZero();
        assertThat(ca.getCriticalExtensionOIDs()).containsExactlyInAnyOrder(Extension.basicConstraints.getId(), Extension.keyUsage.getId());
        assertThat(ca.getKeyUsage()).startsWith(true, false, false, false, false, true, true);
        assertThat(ca.getExtendedKeyUsage()).isNull();
        assertThat(ca.getSigAlgName()).isEqualTo("SHA256withECDSA");
        assertThat(ca.getSerialNumber().bitLength()).isEqualTo(128);
        assertThat(Pki.sameKey(ca.getPublicKey(), ik.getPublic())).isTrue();
        assertThat(Pki.sameKey(ca.getPublicKey(), rk.getPublic())).isFalse();
        // the authority key identifier is the root's own subject key identifier
        byte[] aki = org.bouncycastle.asn1.x509.AuthorityKeyIdentifier.getInstance(
                org.bouncycastle.asn1.ASN1OctetString.getInstance(ca.getExtensionValue(Extension.authorityKeyIdentifier.getId())).getOctets()).getKeyIdentifier();
        byte[] ski = org.bouncycastle.asn1.ASN1OctetString.getInstance(org.bouncycastle.asn1.ASN1OctetString.getInstance(
                root.getExtensionValue(Extension.subjectKeyIdentifier.getId())).getOctets()).getOctets();
        assertThat(aki).isEqualTo(ski);
        assertThat(goChain(List.of(ca, root), new Date())).isNull();
    }

    @Test
    void trustDomainSubjectsOnly() throws Exception {
        assertThat(Pki.trustDomain(csrNamed(new X500Name("O=cluster.local")))).isEqualTo("cluster.local");
        assertThat(Pki.trustDomain(csrNamed(new X500Name("O=td_1.example-mesh")))).isEqualTo("td_1.example-mesh");
        assertThat(Pki.trustDomain(csrNamed(new X500Name("CN=cluster.local")))).isNull();
        assertThat(Pki.trustDomain(csrNamed(new X500Name("O=cluster.local,CN=x")))).isNull();
        assertThat(Pki.trustDomain(csrNamed(new X500Name("O=two words")))).isNull();
        assertThat(Pki.trustDomain(csrNamed(new X500Name("O=.local")))).isNull();
        assertThat(Pki.trustDomain(csrNamed(new X500Name(new org.bouncycastle.asn1.x500.RDN[]{new org.bouncycastle.asn1.x500.RDN(
                new org.bouncycastle.asn1.x500.AttributeTypeAndValue[]{
                        new org.bouncycastle.asn1.x500.AttributeTypeAndValue(org.bouncycastle.asn1.x500.style.BCStyle.O, new org.bouncycastle.asn1.DERUTF8String("cluster.local")),
                        new org.bouncycastle.asn1.x500.AttributeTypeAndValue(org.bouncycastle.asn1.x500.style.BCStyle.OU, new org.bouncycastle.asn1.DERUTF8String("x"))})}))))
                .as("one multi-valued RDN").isNull();
        assertThat(Pki.trustDomain(csrNamed(new X500Name(new org.bouncycastle.asn1.x500.RDN[]{new org.bouncycastle.asn1.x500.RDN(
                org.bouncycastle.asn1.x500.style.BCStyle.O, new org.bouncycastle.asn1.ASN1Integer(7))})))).as("an O that is no string").isNull();
    }

    private static org.bouncycastle.operator.ContentSigner signer(String algorithm, KeyPair k) throws Exception {
        var b = new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder(algorithm);
        if (algorithm.contains("MGF1")) b.setProvider(new org.bouncycastle.jce.provider.BouncyCastleProvider());
        return b.build(k.getPrivate());
    }

    static Pki.Csr csrNamed(X500Name subject) throws Exception {
        KeyPair k = ec();
        var req = new org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder(subject, k.getPublic())
                .build(new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withECDSA").build(k.getPrivate()));
        return Pki.csr(Pki.pem("CERTIFICATE REQUEST", req.getEncoded()), "csr");
    }

    /**
     * Requests are read and checked with the JDK (Pki.Csr): their keys and signatures as Bouncy
     * Castle reads and checks them, for the key types and signatures istiod, openssl and Go make,
     * a signature Bouncy Castle alone checks (RSASSA-PSS), and damaged ones.
     */
    @Test
    void requestsReadAndCheckedAsBouncyCastleDoes() throws Exception {
        List<String[]> kinds = List.of(new String[]{"RSA", "SHA256withRSA"}, new String[]{"RSA", "SHA384withRSA"},
                new String[]{"EC", "SHA256withECDSA"}, new String[]{"EC", "SHA384withECDSA"}, new String[]{"Ed25519", "Ed25519"},
                new String[]{"RSA", "SHA256withRSAandMGF1"});
        java.util.Random random = new java.util.Random(5);
        for (String[] kind : kinds) {
            KeyPairGenerator g = KeyPairGenerator.getInstance(kind[0]);
            if (kind[0].equals("RSA")) g.initialize(2048);
            KeyPair k = g.generateKeyPair();
            byte[] der = new org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder(new X500Name("O=cluster.local"), k.getPublic())
                    .build(signer(kind[1], k)).getEncoded();
            for (int i = 0; i < 40; i++) {
                byte[] d = i == 0 ? der : der.clone();
                if (i > 0) d[random.nextInt(d.length)] ^= (byte) (1 << random.nextInt(8));
                Pki.Csr ours;
                try {
                    ours = Pki.csr(Pki.pem("CERTIFICATE REQUEST", d), "csr");
                } catch (Fail f) {
                    continue;   // Bouncy Castle's reading refused it too (it is the fallback)
                }
                org.bouncycastle.pkcs.PKCS10CertificationRequest theirs;
                try {
                    theirs = Pki.WithBc.request(ours);
                } catch (Fail f) {
                    // damage in a part the JDK side does not read (attributes, parameters): the signature shows it
                    assertThat(Pki.csrSignatureValid(ours)).as(kind[1] + " #" + i + " Bouncy Castle refuses").isFalse();
                    continue;
                }
                boolean bcValid = Pki.WithBc.csrSignatureValid(theirs);
                assertThat(Pki.csrSignatureValid(ours)).as(kind[1] + " #" + i).isEqualTo(bcValid);
                if (i == 0) {
                    // RSASSA-PSS: Bouncy Castle's verifier on the JDK's providers cannot check it, so it was refused before too
                    assertThat(bcValid).as(kind[1]).isEqualTo(!kind[1].contains("MGF1"));
                    assertThat(Pki.publicKey(ours)).isEqualTo(k.getPublic());
                    assertThat(Pki.publicKey(ours).getEncoded()).isEqualTo(Pki.WithBc.publicKey(theirs).getEncoded());
                    assertThat(Pki.subject(ours)).isEqualTo("O=cluster.local");
                }
            }
        }
    }

    @Test
    void ecdsaSignaturesFromPkcs11BecomeDer() throws Exception {
        KeyPair k = ec();
        Signature s = Signature.getInstance("SHA256withECDSAinP1363Format"); // r || s, as CKM_ECDSA returns it
        s.initSign(k.getPrivate());
        s.update("tbs".getBytes(StandardCharsets.US_ASCII));
        byte[] der = Pki.ecdsaDer(s.sign());
        assertThat(ASN1Sequence.getInstance(der).size()).isEqualTo(2);
        Signature v = Signature.getInstance("SHA256withECDSA");
        v.initVerify(k.getPublic());
        v.update("tbs".getBytes(StandardCharsets.US_ASCII));
        assertThat(v.verify(der)).isTrue();
    }

    @Test
    void readsRootKeysInTheFormatsOperatorsHave() throws Exception {
        SignCsrTest.opensslRoot(tmp, "r", "/CN=R", "rsa", 30);
        Path pkcs8 = tmp.resolve("r.key");
        Path pkcs1 = tmp.resolve("r1.key"), enc = tmp.resolve("renc.key"), pass = tmp.resolve("pass");
        Files.writeString(pass, "pw");
        SignCsrTest.run(tmp, "openssl", "rsa", "-in", pkcs8.toString(), "-out", pkcs1.toString(), "-traditional");
        SignCsrTest.run(tmp, "openssl", "pkcs8", "-topk8", "-in", pkcs8.toString(), "-out", enc.toString(), "-v2", "aes-256-cbc", "-passout", "file:" + pass);
        Path legacy = tmp.resolve("rlegacy.key");
        SignCsrTest.run(tmp, "openssl", "rsa", "-in", pkcs8.toString(), "-out", legacy.toString(), "-traditional", "-aes256", "-passout", "file:" + pass);
        var a = Pki.privateKey(Files.readAllBytes(pkcs8), null, "pkcs8");
        assertThat(Files.readString(legacy)).contains("Proc-Type: 4,ENCRYPTED");
        assertThat(Pki.privateKey(Files.readAllBytes(legacy), "pw".toCharArray(), "legacy").getEncoded()).isEqualTo(a.getEncoded());
        assertThat(Files.readString(pkcs1)).contains("BEGIN RSA PRIVATE KEY");
        assertThat(Pki.privateKey(Files.readAllBytes(pkcs1), null, "pkcs1").getEncoded()).isEqualTo(a.getEncoded());
        assertThat(Pki.privateKey(Files.readAllBytes(enc), "pw".toCharArray(), "enc").getEncoded()).isEqualTo(a.getEncoded());
        Fail noPass = KmsPluginTest.fail(() -> Pki.privateKey(readAll(enc), null, "enc"));
        assertThat(noPass.exitCode).isEqualTo(2);
        assertThat(noPass.getMessage()).isEqualTo("enc is encrypted");
        assertThat(KmsPluginTest.fail(() -> Pki.privateKey(readAll(enc), "wrong".toCharArray(), "enc")).getMessage())
                .startsWith("cannot read the private key in enc");
        assertThat(KmsPluginTest.fail(() -> Pki.privateKey(readAll(tmp.resolve("r.pem")), null, "cert")).getMessage()).isEqualTo("cert holds no private key");
        assertThat(KmsPluginTest.fail(() -> Pki.privateKey(new byte[]{1, 2, 3}, null, "junk")).getMessage()).startsWith("cannot open junk as PEM or PKCS#12");
    }

    static byte[] readAll(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void keysAreNamedAsOperatorsReadThem() throws Exception {
        assertThat(Pki.keyDescription(ec().getPublic())).isEqualTo("EC P-256");
        assertThat(Pki.keyDescription(SignCsrTest.rsa().getPublic())).isEqualTo("RSA 2048");
        assertThat(Map.of("bits", Pki.keyBits(ec().getPublic()))).containsEntry("bits", 256);
    }
}
