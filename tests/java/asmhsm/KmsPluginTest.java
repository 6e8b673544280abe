package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The plugin's formats: what the guide's kubectl saves, the compact JWEs, and a KEK whose bytes the test knows. */
class KmsPluginTest {
    @TempDir Path tmp;

    static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    static final String DATA_JSON = "{\"csr-id\":\"" + b64("cluster.local") + "\",\"encrypted-csr\":\"" + b64("c.c.c.c.c")
            + "\",\"encrypted-dek\":\"" + b64("d.d.d.d.d") + "\",\"kek-id\":\"" + b64("kek-1") + "\"}";

    static Fail fail(Runnable r) {
        try {
            r.run();
        } catch (Fail f) {
            return f;
        }
        throw new AssertionError("no failure");
    }

    @Test
    void readsWhatKubectlJsonpathPrints() {
        var e = KmsPlugin.EncryptedCsr.fromKubectl(DATA_JSON + "\n", "f.json");
        assertThat(e.kekId()).isEqualTo("kek-1");
        assertThat(e.csrId()).isEqualTo("cluster.local");
        assertThat(e.encryptedDek()).isEqualTo("d.d.d.d.d");
        assertThat(e.encryptedCsr()).isEqualTo("c.c.c.c.c");
        // kubectl before 1.19 printed Go's map syntax; a whole `kubectl get secret -o json` also works
        var old = KmsPlugin.EncryptedCsr.fromKubectl("map[csr-id:" + b64("cluster.local") + " encrypted-csr:" + b64("c.c.c.c.c")
                + " encrypted-dek:" + b64("d.d.d.d.d") + " kek-id:" + b64("kek-1") + "]", "f.txt");
        assertThat(old).isEqualTo(new KmsPlugin.EncryptedCsr("kek-1", "d.d.d.d.d", "cluster.local", "c.c.c.c.c", "f.txt"));
        var whole = KmsPlugin.EncryptedCsr.fromKubectl("{\"kind\":\"Secret\",\"data\":" + DATA_JSON + "}", "s.json");
        assertThat(whole.kekId()).isEqualTo("kek-1");
    }

    @Test
    void brokenInputIsAFailureOfTheStepWithOneClearLine() {
        Fail cut = fail(() -> KmsPlugin.EncryptedCsr.fromKubectl(DATA_JSON.substring(0, 40), "f.json"));
        assertThat(cut.exitCode).isEqualTo(1);
        assertThat(cut.getMessage()).isEqualTo("f.json is not complete JSON (it is cut short)");
        assertThat(fail(() -> KmsPlugin.EncryptedCsr.fromKubectl("{\"a\": x}", "f.json")).getMessage()).isEqualTo("f.json is not complete JSON (error at line 1, column 7)");
        assertThat(fail(() -> KmsPlugin.EncryptedCsr.fromKubectl("map[csr-id:abc", "f.txt")).getMessage()).contains("cut short");
        assertThat(fail(() -> KmsPlugin.EncryptedCsr.fromKubectl("[1,2]", "f.json")).getMessage()).contains("not a JSON object");
        Fail notB64 = fail(() -> KmsPlugin.EncryptedCsr.fromData(Map.of("kek-id", "***", "encrypted-dek", "a", "csr-id", "a",
                "encrypted-csr", "a"), "Secret x"));
        assertThat(notB64.exitCode).isEqualTo(1);
        assertThat(notB64.getMessage()).startsWith("'kek-id' in Secret x is not base64");
        assertThat(fail(() -> KmsPlugin.EncryptedCsr.fromData(Map.of(), "Secret x")).getMessage()).isEqualTo("Secret x has no 'kek-id'");
    }

    @Test
    void parsesACompactJweAndRefusesOtherShapes() {
        String header = IstiodStandIn.b64u("{\"alg\":\"dir\",\"kid\":\"k\",\"_thales_aad\":\"" + IstiodStandIn.b64u("td") + "\",\"enc\":\"A256GCM\"}");
        String iv = IstiodStandIn.b64u(new byte[12]), ct = IstiodStandIn.b64u(new byte[5]), tag = IstiodStandIn.b64u(new byte[16]);
        var jwe = KmsPlugin.Jwe.parse(header + ".." + iv + "." + ct + "." + tag, "blob");
        assertThat(jwe.header("kid")).isEqualTo("k");
        assertThat(jwe.aad()).isEqualTo(header.getBytes(StandardCharsets.US_ASCII));
        assertThat(jwe.ciphertextAndTag()).hasSize(21);
        assertThat(fail(() -> KmsPlugin.Jwe.parse(header + ".." + iv + "." + ct, "blob")).getMessage()).contains("4 parts, not 5");
        assertThat(fail(() -> KmsPlugin.Jwe.parse(header + ".AAAA." + iv + "." + ct + "." + tag, "blob")).getMessage()).contains("encrypted key");
        assertThat(fail(() -> KmsPlugin.Jwe.parse(header + ".." + iv + "." + ct + "." + IstiodStandIn.b64u(new byte[12]), "blob")).getMessage())
                .contains("12-byte tag");
        String rsa = IstiodStandIn.b64u("{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\"}");
        assertThat(fail(() -> KmsPlugin.Jwe.parse(rsa + ".." + iv + "." + ct + "." + tag, "blob")).getMessage()).contains("not dir / A256GCM");
        assertThat(fail(() -> KmsPlugin.Jwe.parse("e30.." + iv + ".*." + tag, "blob")).getMessage()).contains("not base64url");
    }

    /**
     * Interoperability without the PKCS#11 wrapper on the writing side: a KEK whose bytes we
     * know is written into the token by pkcs11-tool; the DEK blob is made with javax.crypto
     * (16-byte IV, as crypto11 does); the toolkit's decryption opens it inside the HSM. A key
     * whose bytes were known outside the HSM is weak, so decrypt-csr itself refuses it: the
     * decryption is driven past that check by {@link #main}, in a process of its own.
     */
    @Test
    void opensADekBlobMadeOutsideTheHsm() throws Exception {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        String kekId = "0b9c1f2e-6a55-4f0e-9c3f-2d1e8a7b6c5d";
        byte[] kek = IstiodStandIn.random(32);
        Path kekFile = tmp.resolve("kek.bin");
        Files.write(kekFile, kek);
        t.tool("--token-label", t.label, "--login", "--pin", "env:USER_PIN", "--write-object", kekFile.toString(), "--type", "secrkey",
                "--key-type", "AES:32", "--id", HexFormat.of().formatHex(kekId.getBytes(StandardCharsets.US_ASCII)),
                "--label", "k8s-kms-plugin-kek", "--usage-decrypt");
        Files.delete(kekFile);

        byte[] dek = IstiodStandIn.random(32);
        String k = IstiodStandIn.b64u(dek);
        String kid = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(("v1.jwk.oct." + k).getBytes(StandardCharsets.US_ASCII)));
        String jwk = "{\"key_ops\":[\"encrypt\",\"decrypt\",\"sign\",\"verify\"],\"alg\":\"A256GCM\",\"kid\":\"" + kid + "\",\"k\":\"" + k + "\",\"kty\":\"oct\"}";
        String dekHeader = IstiodStandIn.b64u("{\"alg\":\"dir\",\"kid\":\"" + kekId + "\",\"enc\":\"A256GCM\"}");
        byte[] iv16 = IstiodStandIn.random(16);
        String encryptedDek = dekHeader + ".." + IstiodStandIn.b64u(iv16) + "." + IstiodStandIn.gcm(kek, iv16, dekHeader, jwk);
        String csrPem = IstiodStandIn.csr("mesh.example", SignCsrTest.rsa());
        String csrHeader = IstiodStandIn.b64u("{\"alg\":\"dir\",\"kid\":\"" + kid + "\",\"_thales_aad\":\"" + IstiodStandIn.b64u("mesh.example") + "\",\"enc\":\"A256GCM\"}");
        byte[] iv12 = IstiodStandIn.random(12);
        String encryptedCsr = csrHeader + ".." + IstiodStandIn.b64u(iv12) + "." + IstiodStandIn.gcm(dek, iv12, csrHeader, csrPem);
        Path json = tmp.resolve("encrypted_csr.json");
        Files.writeString(json, "{\"csr-id\":\"" + b64("mesh.example") + "\",\"encrypted-csr\":\"" + b64(encryptedCsr)
                + "\",\"encrypted-dek\":\"" + b64(encryptedDek) + "\",\"kek-id\":\"" + b64(kekId) + "\"}");

        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-exports=jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED",
                "-cp", Cli.classpath(), KmsPluginTest.class.getName(), json.toString());
        Cli.Result r = Cli.run(cmd, t.env(), tmp, null);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout().replace("\n", "")).isEqualTo(csrPem.replace("\n", ""));

        Cli.Result refused = Cli.asm(t.env(), tmp, "decrypt-csr", "-f", json.toString(), "-o", tmp.resolve("csr.pem").toString());
        assertThat(refused.exit()).as(refused.toString()).isEqualTo(1);
        assertThat(refused.stderr()).contains("the key with KEK ID " + kekId + " on token '" + t.label + "' is weak (not sensitive, once extractable)");
        assertThat(tmp.resolve("csr.pem")).doesNotExist();
        assertThat(List.of(t.objectCount())).containsExactly(1); // decrypting made nothing on the token
    }

    /** The toolkit's decryption of a saved Secret (args[0]) under the key with its kek-id, whatever that key is; prints the CSR. */
    public static void main(String[] args) throws Exception {
        KmsPlugin.EncryptedCsr e = KmsPlugin.EncryptedCsr.fromKubectl(Files.readString(Path.of(args[0])), args[0]);
        try (Hsm hsm = Hsm.open(System.getenv("P11_LIB"), System.getenv("P11_TOKEN"), Path.of(System.getenv("P11_PIN_FILE")), false, "(P11_PIN_FILE)")) {
            long key = hsm.keks(e.kekId()).get(0).handle();
            System.out.print(KmsPlugin.decryptWith(hsm, key, e, KmsPlugin.Jwe.parse(e.encryptedDek(), "encrypted-dek"),
                    KmsPlugin.Jwe.parse(e.encryptedCsr(), "encrypted-csr")).pem());
        }
    }
}
