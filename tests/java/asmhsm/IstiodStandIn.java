package asmhsm;

import static sun.security.pkcs11.wrapper.PKCS11Constants.*;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import sun.security.pkcs11.wrapper.CK_ATTRIBUTE;
import sun.security.pkcs11.wrapper.CK_C_INITIALIZE_ARGS;
import sun.security.pkcs11.wrapper.CK_GCM_PARAMS;
import sun.security.pkcs11.wrapper.CK_MECHANISM;
import sun.security.pkcs11.wrapper.PKCS11;

/**
 * What istiod does at start-up with the Thales HSM plugin, for tests (istiod cannot run
 * here: no kubelet). Written from reference/hsm-formats.md independently of lib/KmsPlugin,
 * so that a bug in one is not cancelled by the same bug in the other: the JWE text is
 * assembled by hand, the CSR blob encrypted with javax.crypto, and the DEK blob encrypted
 * under the KEK by {@link #main} in a process of its own, with raw PKCS#11 calls.
 *
 * <p>Start-up: a DEK (random AES-256, as a JWK) encrypted under the KEK in the token
 * (compact JWE, a 16-byte IV, or 12 bytes as plugin builds up to 2020-10-15), an RSA 2048 CA key, the CSR {@code O=<trust domain>}, the
 * CSR encrypted with the DEK (compact JWE with {@code _thales_aad}, 12-byte IV), all in
 * Secret istio-ca-cert-csr. After upload-chain: {@link #loadChain} checks Secret
 * istio-ca-cert as istiod and its plugin would.
 */
final class IstiodStandIn {
    final String kekId;
    final String trustDomain;
    final KeyPair caKey;
    final String csrPem;
    /** The four values of Secret istio-ca-cert-csr, in clear (the Secret holds them base64-encoded). */
    final Map<String, String> values;
    /** The DEK (AES-256), which also encrypts the CA key in istio-ca-encrypted-key; null in a tampered copy ({@link #with}). */
    byte[] dek;

    private IstiodStandIn(String kekId, String trustDomain, KeyPair caKey, String csrPem, Map<String, String> values) {
        this.kekId = kekId;
        this.trustDomain = trustDomain;
        this.caKey = caKey;
        this.csrPem = csrPem;
        this.values = values;
    }

    /** The IV sizes of encrypted-dek: plugin builds up to 2020-10-15 (the guide's image era), and later ones. */
    static final int DEK_IV_2020 = 12, DEK_IV_LATER = 16;

    /** istiod's start-up against the KEK `kekId` in the token, with a later plugin (16-byte DEK IV). */
    static IstiodStandIn start(SoftHsmToken token, String kekId, String trustDomain) throws Exception {
        return start(token, kekId, trustDomain, DEK_IV_LATER);
    }

    /** The same with a plugin whose encrypted-dek has a `dekIvBytes` IV ({@link #DEK_IV_2020} or {@link #DEK_IV_LATER}). */
    static IstiodStandIn start(SoftHsmToken token, String kekId, String trustDomain, int dekIvBytes) throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(2048);
        return start(token.env(), kekId, trustDomain, g.generateKeyPair(), dekIvBytes);
    }

    static IstiodStandIn start(Map<String, String> hsmEnv, String kekId, String trustDomain, KeyPair caKey) throws Exception {
        return start(hsmEnv, kekId, trustDomain, caKey, DEK_IV_LATER);
    }

    static IstiodStandIn start(Map<String, String> hsmEnv, String kekId, String trustDomain, KeyPair caKey, int dekIvBytes) throws Exception {
        String csrPem = csr(trustDomain, caKey);
        // the DEK, as the plugin's JWK
        byte[] k = random(32);
        String kB64 = b64u(k);
        String dekKid = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                .digest(("v1.jwk.oct." + kB64).getBytes(StandardCharsets.US_ASCII)));
        String jwk = "{\"key_ops\":[\"encrypt\",\"decrypt\",\"sign\",\"verify\"],\"alg\":\"A256GCM\",\"kid\":\"" + dekKid
                + "\",\"k\":\"" + kB64 + "\",\"kty\":\"oct\"}";
        // encrypted-dek: under the KEK, inside the HSM, 12- or 16-byte IV as the plugin build
        String dekHeader = b64u("{\"alg\":\"dir\",\"kid\":\"" + kekId + "\",\"enc\":\"A256GCM\"}");
        byte[] dekIv = random(dekIvBytes);
        String encryptedDek = dekHeader + ".." + b64u(dekIv) + "." + encryptUnderKek(hsmEnv, kekId, dekIv, dekHeader, jwk);
        // encrypted-csr: under the DEK, in software, 12-byte IV, bound to the trust domain
        String csrHeader = b64u("{\"alg\":\"dir\",\"kid\":\"" + dekKid + "\",\"_thales_aad\":\"" + b64u(trustDomain) + "\",\"enc\":\"A256GCM\"}");
        byte[] csrIv = random(12);
        String encryptedCsr = csrHeader + ".." + b64u(csrIv) + "." + gcm(k, csrIv, csrHeader, csrPem);
        Map<String, String> v = new LinkedHashMap<>();
        v.put("kek-id", kekId);
        v.put("encrypted-dek", encryptedDek);
        v.put("csr-id", trustDomain);
        v.put("encrypted-csr", encryptedCsr);
        IstiodStandIn istiod = new IstiodStandIn(kekId, trustDomain, caKey, csrPem, v);
        istiod.dek = k;
        return istiod;
    }

    /** The same istiod, with one value of its Secret replaced (to tamper with it). */
    IstiodStandIn with(String key, String value) {
        Map<String, String> v = new LinkedHashMap<>(values);
        v.put(key, value);
        return new IstiodStandIn(kekId, trustDomain, caKey, csrPem, v);
    }

    /** Go's x509.CreateCertificateRequest as istiod calls it: subject O=<trust domain>, no extensions, SHA256withRSA. */
    static String csr(String trustDomain, KeyPair key) throws Exception {
        var req = new JcaPKCS10CertificationRequestBuilder(new X500Name("O=" + trustDomain), key.getPublic())
                .build(new JcaContentSignerBuilder("SHA256withRSA").build(key.getPrivate()));
        return "-----BEGIN CERTIFICATE REQUEST-----\n"
                + Base64.getMimeEncoder(64, new byte[]{'\n'}).encodeToString(req.getEncoded())
                + "\n-----END CERTIFICATE REQUEST-----\n";
    }

    /** ciphertext "." tag, both base64url, of AES-256-GCM with the JWE's protected header as AAD. */
    static String gcm(byte[] key, byte[] iv, String protectedHeader, String plain) throws Exception {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
        c.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"), new GCMParameterSpec(128, iv));
        c.updateAAD(protectedHeader.getBytes(StandardCharsets.US_ASCII));
        byte[] out = c.doFinal(plain.getBytes(StandardCharsets.UTF_8));
        return b64u(Arrays.copyOf(out, out.length - 16)) + "." + b64u(Arrays.copyOfRange(out, out.length - 16, out.length));
    }

    // ------------------------------------------------------------ the Secret, as istiod writes it and kubectl shows it

    /** The Secret's data: standard base64 of each value. */
    Map<String, String> data() {
        Map<String, String> d = new TreeMap<>();
        values.forEach((key, v) -> d.put(key, Base64.getEncoder().encodeToString(v.getBytes(StandardCharsets.UTF_8))));
        return d;
    }

    /** What `kubectl get secret istio-ca-cert-csr -o jsonpath={.data}` prints (keys sorted, no spaces). */
    String kubectlJson() {
        StringBuilder s = new StringBuilder("{");
        data().forEach((key, v) -> s.append(s.length() > 1 ? "," : "").append('"').append(key).append("\":\"").append(v).append('"'));
        return s.append('}').toString();
    }

    Path writeJson(Path dir) throws Exception {
        Path f = dir.resolve("encrypted_csr.json");
        Files.writeString(f, kubectlJson());
        return f;
    }

    Secret secret(String namespace) {
        return new SecretBuilder().withNewMetadata().withName("istio-ca-cert-csr").withNamespace(namespace).endMetadata()
                .withType("istio.io/intermediate-ca").withData(data()).build();
    }

    /**
     * Writes istio-ca-encrypted-key as istiod does beside its CSR, unless there is one: kek-id, the same
     * encrypted-dek, and encrypted-skey, the CA key (PKCS#1 PEM) under the DEK with no AAD binding.
     */
    void writeKeySecret(KubernetesClient k, String namespace) throws Exception {
        if (k.secrets().inNamespace(namespace).withName("istio-ca-encrypted-key").get() != null) return;
        String pkcs1 = "-----BEGIN RSA PRIVATE KEY-----\n" + Base64.getMimeEncoder(64, new byte[]{'\n'}).encodeToString(
                org.bouncycastle.asn1.pkcs.PrivateKeyInfo.getInstance(caKey.getPrivate().getEncoded()).parsePrivateKey().toASN1Primitive().getEncoded())
                + "\n-----END RSA PRIVATE KEY-----\n";
        String header = b64u("{\"alg\":\"dir\",\"enc\":\"A256GCM\"}");
        byte[] iv = random(12);
        Map<String, String> d = new TreeMap<>();
        d.put("kek-id", kekId);
        d.put("encrypted-dek", values.get("encrypted-dek"));
        d.put("encrypted-skey", header + ".." + b64u(iv) + "." + gcm(dek, iv, header, pkcs1));
        d.replaceAll((key, v) -> Base64.getEncoder().encodeToString(v.getBytes(StandardCharsets.UTF_8)));
        k.secrets().inNamespace(namespace).resource(new SecretBuilder().withNewMetadata().withName("istio-ca-encrypted-key").withNamespace(namespace)
                .endMetadata().withType("istio.io/intermediate-ca").withData(d).build()).create();
    }

    /** Writes istio-ca-cert-csr, unless there is one already (istiod: "CSR exists in secret istio-ca-cert-csr."). */
    void writeSecret(KubernetesClient k, String namespace) {
        if (k.secrets().inNamespace(namespace).withName("istio-ca-cert-csr").get() == null)
            k.secrets().inNamespace(namespace).resource(secret(namespace)).create();
    }

    // ------------------------------------------------------------ loading istio-ca-cert, as istiod does

    /**
     * Loads Secret istio-ca-cert as istiod does after upload-chain and checks it: the first
     * certificate verifies against the token's root (read with pkcs11-tool) as the only
     * trust anchor, no intermediates, ExtKeyUsage serverAuth allowed; it is a CA; it
     * certifies this istiod's key. Returns the CA certificate; throws AssertionError otherwise.
     */
    X509Certificate loadChain(KubernetesClient k, String namespace, SoftHsmToken token, String caId) throws Exception {
        Secret s = k.secrets().inNamespace(namespace).withName("istio-ca-cert").get();
        if (s == null) throw new AssertionError("no Secret " + namespace + "/istio-ca-cert");
        String chain = new String(Base64.getDecoder().decode(s.getData().get("cert-chain.pem")), StandardCharsets.UTF_8);
        List<X509Certificate> certs = new ArrayList<>();
        Matcher m = Pattern.compile("-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----").matcher(chain);
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        while (m.find()) certs.add((X509Certificate) cf.generateCertificate(new ByteArrayInputStream(m.group().getBytes(StandardCharsets.US_ASCII))));
        if (certs.size() < 2) throw new AssertionError("cert-chain.pem holds " + certs.size() + " certificates");
        X509Certificate ca = certs.get(0);
        X509Certificate hsmRoot = hsmRoot(token, caId);
        PKIXParameters p = new PKIXParameters(Set.of(new TrustAnchor(hsmRoot, null)));
        p.setRevocationEnabled(false);
        X509CertSelector target = new X509CertSelector();
        target.setExtendedKeyUsage(Set.of("1.3.6.1.5.5.7.3.1")); // Go's default: serverAuth (no EKU passes too)
        p.setTargetCertConstraints(target);
        CertPathValidator.getInstance("PKIX").validate(cf.generateCertPath(List.of(ca)), p);
        if (ca.getBasicConstraints() < 0) throw new AssertionError("the CA certificate is not a CA");
        if (!certs.get(certs.size() - 1).equals(hsmRoot)) throw new AssertionError("the last certificate is not the HSM's root");
        // istiod: "the cert does not match the key" otherwise
        byte[] probe = random(32);
        Signature sig = Signature.getInstance("SHA256withRSA");
        sig.initSign(caKey.getPrivate());
        sig.update(probe);
        byte[] signed = sig.sign();
        sig.initVerify(ca.getPublicKey());
        sig.update(probe);
        if (!sig.verify(signed)) throw new AssertionError(IstiodKubelet.KEY_MISMATCH);
        return ca;
    }

    /** The root the plugin verifies against, read from the token by pkcs11-tool (not by the toolkit). */
    static X509Certificate hsmRoot(SoftHsmToken token, String caId) throws Exception {
        Path der = Files.createTempFile(token.dir, "root", ".der");
        token.tool("--token-label", token.label, "--read-object", "--type", "cert",
                "--id", HexFormat.of().formatHex(caId.getBytes(StandardCharsets.US_ASCII)), "--output-file", der.toString());
        return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(Files.readAllBytes(der)));
    }

    // ------------------------------------------------------------ the plugin's KEK side, in a process of its own

    /** Runs {@link #main} with the token's settings: returns "ciphertext.tag" (base64url). */
    static String encryptUnderKek(Map<String, String> hsmEnv, String kekId, byte[] iv, String protectedHeader, String plain) {
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-exports=jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED",
                "-cp", Cli.classpath(), IstiodStandIn.class.getName(), kekId, HexFormat.of().formatHex(iv), protectedHeader);
        Cli.Result r = Cli.run(cmd, hsmEnv, null, plain);
        if (r.exit() != 0) throw new AssertionError("the stand-in's KEK encryption failed:\n" + r);
        return r.stdout().strip();
    }

    /**
     * The plugin's half: AES-GCM under the KEK {CKO_SECRET_KEY, CKA_ID=id, CKA_LABEL=k8s-kms-plugin-kek}
     * of token P11_TOKEN, 128-bit tag, AAD = the protected header. Args: KEK ID, IV (hex),
     * protected header; the plaintext on stdin; prints ciphertext "." tag (base64url).
     */
    public static void main(String[] args) throws Exception {
        String kekId = args[0];
        byte[] iv = HexFormat.of().parseHex(args[1]);
        byte[] aad = args[2].getBytes(StandardCharsets.US_ASCII);
        byte[] plain = System.in.readAllBytes();
        CK_C_INITIALIZE_ARGS init = new CK_C_INITIALIZE_ARGS();
        init.flags = CKF_OS_LOCKING_OK;
        PKCS11 p11 = PKCS11.getInstance(System.getenv("P11_LIB"), "C_GetFunctionList", init, false);
        long slot = -1;
        for (long s : p11.C_GetSlotList(true))
            if (new String(p11.C_GetTokenInfo(s).label).trim().equals(System.getenv("P11_TOKEN"))) slot = s;
        if (slot < 0) throw new IllegalStateException("no token " + System.getenv("P11_TOKEN"));
        long session = p11.C_OpenSession(slot, CKF_SERIAL_SESSION, null, null);
        p11.C_Login(session, CKU_USER, Files.readString(Path.of(System.getenv("P11_PIN_FILE"))).strip().toCharArray());
        p11.C_FindObjectsInit(session, new CK_ATTRIBUTE[]{new CK_ATTRIBUTE(CKA_CLASS, CKO_SECRET_KEY),
                new CK_ATTRIBUTE(CKA_ID, kekId.getBytes(StandardCharsets.US_ASCII)), new CK_ATTRIBUTE(CKA_LABEL, "k8s-kms-plugin-kek")});
        long[] found = p11.C_FindObjects(session, 2);
        p11.C_FindObjectsFinal(session);
        if (found.length != 1) throw new IllegalStateException(found.length + " KEKs with ID " + kekId);
        p11.C_EncryptInit(session, new CK_MECHANISM(CKM_AES_GCM, new CK_GCM_PARAMS(128, iv, aad)), found[0]);
        byte[] out = new byte[plain.length + 16];
        int n = p11.C_Encrypt(session, 0, plain, 0, plain.length, 0, out, 0, out.length);
        if (n != plain.length + 16) throw new IllegalStateException("GCM output of " + n + " bytes");
        System.out.println(b64u(Arrays.copyOf(out, n - 16)) + "." + b64u(Arrays.copyOfRange(out, n - 16, n)));
        p11.C_Logout(session);
        p11.C_CloseSession(session);
    }

    // ------------------------------------------------------------ helpers

    static String b64u(byte[] b) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    static String b64u(String s) {
        return b64u(s.getBytes(StandardCharsets.UTF_8));
    }

    static byte[] random(int n) {
        byte[] b = new byte[n];
        new SecureRandom().nextBytes(b);
        return b;
    }
}
