package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * upload-chain against the lab's real kube-apiserver and a SoftHSM2 token: istiod's side
 * played by {@link IstiodStandIn}, odd chains made with openssl and Bouncy Castle.
 */
@ExtendWith(LabExtension.class)
class UploadChainTest {
    static final String KEK = "2b0e7d59-8d43-4c55-a1f7-6a4c3e1f9d20";
    @TempDir Path tmp;
    Lab lab;
    SoftHsmToken t;
    String ns;
    Map<String, String> env;
    IstiodStandIn istiod;
    Path root, rootKey;

    @BeforeEach
    void setUp(Lab lab) throws Exception {
        this.lab = lab;
        t = SoftHsmToken.create(tmp);
        ns = lab.freshNamespace();
        env = new HashMap<>(t.env());
        env.put("KUBECONFIG", lab.kubeconfig().toString());
        ok(Cli.asm(env, "gen-kek", "--kek-id", KEK));
        root = SignCsrTest.opensslRoot(tmp, "root", "/O=Istio/CN=Root CA", "rsa", 365);
        rootKey = tmp.resolve("root.key");
        Files.setPosixFilePermissions(rootKey, PosixFilePermissions.fromString("rw-------"));
        ok(Cli.asm(env, "import-ca", "-f", root.toString()));
        istiod = IstiodStandIn.start(t, KEK, "cluster.local");
        istiod.writeSecret(lab.admin(), ns);
    }

    static Cli.Result ok(Cli.Result r) {
        assertThat(r.exit()).as(r.toString()).isZero();
        return r;
    }

    /** sign-csr (root key file) on a CSR for `key`; returns the chain file. */
    Path signed(KeyPair key, String name) throws Exception {
        Path csr = tmp.resolve(name + ".csr");
        Files.writeString(csr, IstiodStandIn.csr("cluster.local", key));
        Path chain = tmp.resolve(name + ".pem");
        ok(Cli.asm(env, tmp, "sign-csr", "--csr", csr.toString(), "--root-cert", root.toString(), "--root-key", rootKey.toString(), "-o", chain.toString()));
        return chain;
    }

    Cli.Result upload(Path chain, String... more) {
        List<String> args = new ArrayList<>(List.of("upload-chain", "-f", chain.toString(), "-n", ns));
        args.addAll(List.of(more));
        return Cli.asm(env, tmp, args.toArray(String[]::new));
    }

    Secret chainSecret() {
        return lab.admin().secrets().inNamespace(ns).withName("istio-ca-cert").get();
    }

    void refused(Cli.Result r, int exit, String expected) {
        assertThat(r.exit()).as(r.toString()).isEqualTo(exit);
        assertThat(r.stderr().lines().filter(l -> l.startsWith("error: "))).as(r.toString()).hasSize(1);
        assertThat(r.stderr()).contains(expected).doesNotContain("Exception").doesNotContain("\tat ");
        assertThat(chainSecret()).isNull();
    }

    @Test
    void uploadsWhatIstiodAcceptsThenChangesNothing() throws Exception {
        Path chain = signed(istiod.caKey, "chain");
        Cli.Result r = ok(upload(chain, "--cluster-suffix", "c7"));
        assertThat(r.stdout()).contains("created Secret " + ns + "/istio-ca-cert (key cert-chain.pem)");
        X509Certificate ca = istiod.loadChain(lab.admin(), ns, t, Hsm.DEFAULT_CA_ID);
        // what tells it from another cluster's CA of the same subject
        Pki.Identity id = Pki.identity(ca);
        assertThat(id.serial()).isEqualTo(ca.getSerialNumber().toString(16));
        assertThat(r.stdout()).contains("Istio CA 'O=cluster.local' (serial " + id.serial() + ", SKI " + id.ski() + ", not after " + ca.getNotAfter().toInstant()
                + ") for cluster c7, context ");
        assertThat(ca.getSubjectX500Principal().getName()).isEqualTo("O=cluster.local");
        Secret s = chainSecret();
        assertThat(s.getType()).isEqualTo("Opaque");
        assertThat(s.getData()).containsOnlyKeys("cert-chain.pem");
        // kubectl, as the guide would read it back
        Cli.Result k = Cli.run(List.of("kubectl", "get", "secret", "istio-ca-cert", "-n", ns, "-o", "jsonpath={.data.cert-chain\\.pem}"),
                Map.of("KUBECONFIG", lab.kubeconfig().toString()), tmp, null);
        assertThat(Base64.getDecoder().decode(k.stdout().strip())).isEqualTo(Files.readAllBytes(chain));

        Cli.Result again = ok(upload(chain, "--json"));
        assertThat(again.stdout()).contains("\"changed\" : false");
        var identity = tools.jackson.databind.json.JsonMapper.builder().build().readTree(again.stdout()).get("identity");
        assertThat(identity.get("serial").asString()).isEqualTo(id.serial());
        assertThat(identity.get("ski").asString()).isEqualTo(id.ski()).doesNotContain("computed");
        assertThat(identity.has("cluster")).as("no suffix given").isFalse();
        assertThat(chainSecret().getMetadata().getResourceVersion()).isEqualTo(s.getMetadata().getResourceVersion());
    }

    @Test
    void refusesAChainWithAnExtraIntermediate() throws Exception {
        // root -> intermediate -> CA: a valid chain, but the plugin checks the CA against the HSM root alone
        Path interKey = tmp.resolve("inter.key"), interCsr = tmp.resolve("inter.csr"), inter = tmp.resolve("inter.pem"), ext = tmp.resolve("ext.cnf");
        Files.writeString(ext, "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n");
        SignCsrTest.run(tmp, "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", interKey.toString(), "-out", interCsr.toString(), "-subj", "/CN=Intermediate");
        SignCsrTest.run(tmp, "openssl", "x509", "-req", "-in", interCsr.toString(), "-CA", root.toString(), "-CAkey", rootKey.toString(),
                "-CAcreateserial", "-days", "30", "-extfile", ext.toString(), "-out", inter.toString());
        Path csr = tmp.resolve("istiod.csr"), ca = tmp.resolve("ca.pem");
        Files.writeString(csr, istiod.csrPem);
        Files.writeString(ext, "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n");
        SignCsrTest.run(tmp, "openssl", "x509", "-req", "-in", csr.toString(), "-CA", inter.toString(), "-CAkey", interKey.toString(),
                "-CAcreateserial", "-days", "30", "-extfile", ext.toString(), "-out", ca.toString());
        Path chain = tmp.resolve("cert-chain.pem");
        Files.writeString(chain, Files.readString(ca) + Files.readString(inter) + Files.readString(root));
        // openssl: the file itself holds together
        SignCsrTest.run(tmp, "openssl", "verify", "-CAfile", root.toString(), "-untrusted", inter.toString(), ca.toString());
        Cli.Result r = upload(chain);
        refused(r, 2, "istiod's HSM plugin would refuse 'O=cluster.local': x509: certificate signed by unknown authority: "
                + "'O=cluster.local' is issued by 'CN=Intermediate', not by 'CN=Root CA,O=Istio'");
        assertThat(r.stderr()).contains("no intermediates");
    }

    @Test
    void refusesACertificateForAnotherKeyThanIstiods() throws Exception {
        Path chain = signed(SignCsrTest.rsa(), "other");
        refused(upload(chain), 2, "certifies another key than istiod's CSR in " + ns + "/istio-ca-cert-csr");
    }

    @Test
    void refusesACaCertificateThatForbidsServerAuth() throws Exception {
        var rootCert = Pki.single(root, "root");
        var key = Pki.privateKey(Files.readAllBytes(rootKey), null, "root.key");
        Instant now = Instant.now();
        var b = new JcaX509v3CertificateBuilder(rootCert, BigInteger.TWO, Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(Duration.ofDays(9))),
                new X500Name("O=cluster.local"), istiod.caKey.getPublic());
        b.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
        b.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        b.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_clientAuth));
        X509Certificate ca = new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withRSA").build(key)));
        Path chain = tmp.resolve("chain.pem");
        Files.writeString(chain, Pki.pem(ca) + Pki.pem(rootCert));
        refused(upload(chain), 2, "incompatible key usage: 'O=cluster.local' allows only ExtKeyUsage [1.3.6.1.5.5.7.3.2], not serverAuth");
    }

    @Test
    void refusesAnExpiredRoot() throws Exception {
        // an expired root put into the token by pkcs11-tool (import-ca refuses it), and a CA certificate it signed
        KeyPair rk = SignCsrTest.rsa();
        X500Name n = new X500Name("CN=Old Root");
        Instant now = Instant.now();
        var rb = new JcaX509v3CertificateBuilder(n, BigInteger.ONE, Date.from(now.minus(Duration.ofDays(400))), Date.from(now.minus(Duration.ofDays(1))), n, rk.getPublic());
        rb.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
        var signer = new JcaContentSignerBuilder("SHA256withRSA");
        X509Certificate old = new JcaX509CertificateConverter().getCertificate(rb.build(signer.build(rk.getPrivate())));
        var cb = new JcaX509v3CertificateBuilder(old, BigInteger.TWO, Date.from(now.minus(Duration.ofDays(30))), Date.from(now.plus(Duration.ofDays(30))),
                new X500Name("O=cluster.local"), istiod.caKey.getPublic());
        cb.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
        X509Certificate ca = new JcaX509CertificateConverter().getCertificate(cb.build(signer.build(rk.getPrivate())));
        Path der = tmp.resolve("old.der"), chain = tmp.resolve("chain.pem");
        Files.write(der, old.getEncoded());
        String caIdHex = HexFormat.of().formatHex("old-root".getBytes(StandardCharsets.US_ASCII));
        t.tool("--token-label", t.label, "--login", "--pin", "env:USER_PIN", "--write-object", der.toString(), "--type", "cert",
                "--id", caIdHex, "--label", "CN=Old Root");
        Files.writeString(chain, Pki.pem(ca) + Pki.pem(old));
        refused(upload(chain, "--ca-id", "old-root"), 2, "x509: certificate has expired or is not yet valid: 'CN=Old Root' expired on");
    }

    void deleteChainSecret() {
        lab.admin().secrets().inNamespace(ns).withName("istio-ca-cert").delete();
        lab.admin().secrets().inNamespace(ns).withName("istio-ca-cert").waitUntilCondition(s -> s == null, 30, java.util.concurrent.TimeUnit.SECONDS);
    }

    String uploaded() {
        return new String(Base64.getDecoder().decode(chainSecret().getData().get("cert-chain.pem")), StandardCharsets.US_ASCII);
    }

    @Test
    void uploadsEachFormIstiodAcceptsInCanonicalForm() throws Exception {
        Path chain = signed(istiod.caKey, "chain");
        String canonical = Files.readString(chain);
        assertThat(canonical).matches(ChainFormsTest.CANONICAL);
        List<X509Certificate> certs = SignCsrTest.chain(chain);
        String ca = Pki.pem(certs.get(0)), root = Pki.pem(certs.get(1));
        for (var form : ChainFormsTest.accepted(ca, root, ChainFormsTest.opensslText(tmp, ca)).entrySet()) {
            Path f = Files.writeString(tmp.resolve("form.pem"), form.getValue());
            Cli.Result r = ok(upload(f));
            assertThat(uploaded()).as(form.getKey()).isEqualTo(canonical);
            istiod.loadChain(lab.admin(), ns, t, Hsm.DEFAULT_CA_ID);
            if (form.getKey().equals("the CA certificate alone"))
                assertThat(r.stdout()).contains("holds the CA certificate alone: uploading it with the HSM's root (CA ID " + Hsm.DEFAULT_CA_ID + ") after it");
            else if (!form.getKey().equals("CA then root"))
                assertThat(r.stdout()).as(form.getKey()).contains("uploading " + f + " in canonical form");
            assertThat(r.stderr()).as(form.getKey()).doesNotContain("warning");
            deleteChainSecret();
        }
    }

    @Test
    void uploadsWhatIstiodWouldRefuseInTheFormItAcceptsAndSaysWhy() throws Exception {
        Path chain = signed(istiod.caKey, "chain");
        String canonical = Files.readString(chain);
        List<X509Certificate> certs = SignCsrTest.chain(chain);
        for (var form : ChainFormsTest.refused(Pki.pem(certs.get(0)), Pki.pem(certs.get(1))).entrySet()) {
            Path f = Files.writeString(tmp.resolve("form.pem"), form.getValue()[0]);
            Cli.Result r = ok(upload(f, "--json"));
            assertThat(r.stderr()).as(form.getKey()).contains("warning: ").contains("error spliting the cert chain")
                    .contains(form.getKey().equals("root first") ? "has the root first" : form.getValue()[1]);
            assertThat(r.stdout()).contains("\"canonicalised\" : true");
            assertThat(uploaded()).as(form.getKey()).isEqualTo(canonical);
            istiod.loadChain(lab.admin(), ns, t, Hsm.DEFAULT_CA_ID);
            deleteChainSecret();
        }
        Path rootAlone = Files.writeString(tmp.resolve("root-alone.pem"), Pki.pem(certs.get(1)));
        refused(upload(rootAlone), 2, "holds only the root 'CN=Root CA,O=Istio'; istiod needs its CA certificate first");
    }

    @Test
    void rewritesASecretIstiodRefusesWhenItHoldsTheSameChain() throws Exception {
        Path chain = signed(istiod.caKey, "chain");
        String canonical = Files.readString(chain);
        List<X509Certificate> certs = SignCsrTest.chain(chain);
        for (String held : List.of(canonical + "\n", Pki.pem(certs.get(1)) + Pki.pem(certs.get(0)))) {
            lab.admin().secrets().inNamespace(ns).resource(new SecretBuilder().withNewMetadata().withName("istio-ca-cert").endMetadata()
                    .addToData("cert-chain.pem", Base64.getEncoder().encodeToString(held.getBytes(StandardCharsets.US_ASCII))).build()).create();
            Cli.Result r = ok(upload(chain));
            assertThat(r.stdout()).contains("rewrote the chain in Secret " + ns + "/istio-ca-cert in the form istiod accepts (it held "
                    + (held.endsWith("\n\n") ? "a blank line follows the last certificate" : "the root 'CN=Root CA,O=Istio' comes first"));
            assertThat(uploaded()).isEqualTo(canonical);
            deleteChainSecret();
        }
        // a form istiod accepts is left alone
        String crlf = canonical.replace("\n", "\r\n");
        lab.admin().secrets().inNamespace(ns).resource(new SecretBuilder().withNewMetadata().withName("istio-ca-cert").endMetadata()
                .addToData("cert-chain.pem", Base64.getEncoder().encodeToString(crlf.getBytes(StandardCharsets.US_ASCII))).build()).create();
        String version = chainSecret().getMetadata().getResourceVersion();
        Cli.Result same = ok(upload(chain, "--json"));
        assertThat(same.stdout()).contains("\"changed\" : false");
        assertThat(chainSecret().getMetadata().getResourceVersion()).isEqualTo(version);
        assertThat(uploaded()).isEqualTo(crlf);
    }

    @Test
    void readsTheRootFromIdenticalCopiesButNotFromCopiesThatDiffer() throws Exception {
        Path chain = signed(istiod.caKey, "chain");
        t.writeCertificate(Pki.single(root, "root"), Hsm.DEFAULT_CA_ID);
        t.writeCertificate(Pki.single(root, "root"), Hsm.DEFAULT_CA_ID);
        ok(upload(chain));
        istiod.loadChain(lab.admin(), ns, t, Hsm.DEFAULT_CA_ID);
        deleteChainSecret();
        t.writeCertificate(Pki.single(SignCsrTest.opensslRoot(tmp, "other", "/CN=Other Root", "ec", 30), "other"), Hsm.DEFAULT_CA_ID);
        refused(upload(chain), 1, "4 certificates that differ (2 different values) share CA ID " + Hsm.DEFAULT_CA_ID + " on token '" + t.label + "'");
    }

    @Test
    void keepsAnotherChainUnlessReplaceThenIstiodLoadsTheNewOne() throws Exception {
        Path chain = signed(istiod.caKey, "chain");
        lab.admin().secrets().inNamespace(ns).resource(new SecretBuilder().withNewMetadata().withName("istio-ca-cert").endMetadata()
                .addToData("cert-chain.pem", Base64.getEncoder().encodeToString("old".getBytes(StandardCharsets.US_ASCII))).build()).create();
        Cli.Result r = upload(chain);
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("already exists with another chain").contains("--replace");
        assertThat(chainSecret().getData().get("cert-chain.pem")).isEqualTo(Base64.getEncoder().encodeToString("old".getBytes(StandardCharsets.US_ASCII)));
        Cli.Result dry = ok(upload(chain, "--replace", "--dry-run"));
        assertThat(dry.stderr()).contains("would replace the chain");
        serverTakes(dry, "secret/istio-ca-cert configured (server dry run)");
        assertThat(chainSecret().getData().get("cert-chain.pem")).isEqualTo(Base64.getEncoder().encodeToString("old".getBytes(StandardCharsets.US_ASCII)));
        ok(upload(chain, "--replace"));
        istiod.loadChain(lab.admin(), ns, t, Hsm.DEFAULT_CA_ID);
    }

    @Test
    void dryRunCreatesNothing() throws Exception {
        Cli.Result r = ok(upload(signed(istiod.caKey, "chain"), "--dry-run"));
        assertThat(r.stderr()).contains("would create Secret " + ns + "/istio-ca-cert");
        serverTakes(r, "secret/istio-ca-cert created (server dry run)");
        assertThat(chainSecret()).isNull();
    }

    /** A dry run's stdout is the Secret alone, its value left out, and the API server takes it as kubectl apply --dry-run=server does. */
    void serverTakes(Cli.Result dry, String said) {
        assertThat(dry.stdout()).as(dry.toString()).contains("kind: Secret", "cert-chain.pem")
                .doesNotContain("would ", "acting on", "BEGIN CERTIFICATE", "LS0t");
        Cli.Result applied = Cli.run(List.of("kubectl", "apply", "--dry-run=server", "-n", ns, "-f", "-"), lab.env(), tmp, dry.stdout());
        assertThat(applied.exit()).as("kubectl apply --dry-run=server of:%n%s%n%s", dry.stdout(), applied).isZero();
        assertThat(applied.stdout()).contains(said);
    }

    @Test
    void needsIstiodsCsrAndTheRightToWriteSecrets() throws Exception {
        Path chain = signed(istiod.caKey, "chain");
        lab.admin().secrets().inNamespace(ns).withName("istio-ca-cert-csr").delete();
        lab.admin().secrets().inNamespace(ns).withName("istio-ca-cert-csr").waitUntilCondition(s -> s == null, 30, java.util.concurrent.TimeUnit.SECONDS);
        refused(upload(chain), 1, "Secret " + ns + "/istio-ca-cert-csr does not exist (yet)");
        istiod.writeSecret(lab.admin(), ns);
        env.put("KUBECONFIG", lab.nobodyKubeconfig().toString());
        refused(upload(chain), 1, "not allowed to read Secret " + ns + "/istio-ca-cert-csr");
    }
}
