package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * decrypt-csr -f on real SoftHSM2 tokens, against the blobs of {@link IstiodStandIn}
 * (written independently of lib/KmsPlugin); the CSR checked with openssl.
 */
class DecryptCsrTest {
    static final String KEK = "7651a4ea-eeb7-4c1f-927b-8c871c2127aa";
    @TempDir Path tmp;
    SoftHsmToken t;
    IstiodStandIn istiod;

    @BeforeEach
    void setUp() throws Exception {
        t = SoftHsmToken.create(tmp);
        Cli.Result kek = Cli.asm(t.env(), "gen-kek", "--kek-id", KEK);
        assertThat(kek.exit()).as(kek.toString()).isZero();
        istiod = IstiodStandIn.start(t, KEK, "cluster.local");
    }

    Cli.Result decrypt(Map<String, String> env, Path json, String... more) {
        List<String> args = new java.util.ArrayList<>(List.of("decrypt-csr", "-f", json.toString(), "-o", tmp.resolve("csr.pem").toString()));
        args.addAll(List.of(more));
        return Cli.asm(env, tmp, args.toArray(String[]::new));
    }

    @Test
    void decryptsTheCsrIstiodWrote() throws Exception {
        Path json = istiod.writeJson(tmp);
        Cli.Result r = decrypt(t.env(), json);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("subject O=cluster.local").contains("key RSA 2048").contains("trust domain cluster.local")
                .contains("KEK " + KEK).contains("wrote " + tmp.resolve("csr.pem"));
        Path csr = tmp.resolve("csr.pem");
        assertThat(Pki.csr(csr, "csr").der()).isEqualTo(Pki.csr(istiod.csrPem, "stand-in CSR").der());
        assertThat(Files.getPosixFilePermissions(csr)).isEqualTo(PosixFilePermissions.fromString("rw-r--r--"));
        Cli.Result o = Cli.run(List.of("openssl", "req", "-in", csr.toString(), "-verify", "-noout", "-subject"), Map.of(), tmp, null);
        assertThat(o.all()).contains("verify OK").contains("O = cluster.local");

        // again: the same CSR, nothing written
        long modified = Files.getLastModifiedTime(csr).toMillis();
        Cli.Result again = decrypt(t.env(), json, "--json");
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("\"changed\" : false").contains("\"subject\" : \"O=cluster.local\"")
                .contains("\"keyBits\" : 2048").contains("\"csrId\" : \"cluster.local\"");
        assertThat(Files.getLastModifiedTime(csr).toMillis()).isEqualTo(modified);
    }

    /** Both DEK formats of the plugin, made by the stand-in under the token's KEK with raw PKCS#11, opened by decrypt-csr in SoftHSM2. */
    @ParameterizedTest
    @ValueSource(ints = {IstiodStandIn.DEK_IV_2020, IstiodStandIn.DEK_IV_LATER})
    void decryptsBothDekFormatsOfThePlugin(int ivBytes) throws Exception {
        IstiodStandIn s = IstiodStandIn.start(t, KEK, "cluster.local", ivBytes);
        assertThat(java.util.Base64.getUrlDecoder().decode(s.values.get("encrypted-dek").split("\\.", -1)[2])).hasSize(ivBytes);
        Path json = s.writeJson(tmp);
        Cli.Result r = decrypt(t.env(), json);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("encrypted-dek: " + ivBytes + "-byte IV, plugin builds "
                + (ivBytes == 12 ? "up to 2020-10-15" : "after 2020-10-15"));
        assertThat(Pki.csr(tmp.resolve("csr.pem"), "csr").der()).isEqualTo(Pki.csr(s.csrPem, "stand-in CSR").der());
        Cli.Result again = decrypt(t.env(), json, "--json");
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("\"changed\" : false").contains("\"dekIvBytes\" : " + ivBytes);
        // the tag authenticates the IV too: another IV of the same size fails in the HSM
        String[] p = s.values.get("encrypted-dek").split("\\.", -1);
        p[2] = IstiodStandIn.b64u(new byte[ivBytes]);
        Files.delete(tmp.resolve("csr.pem"));
        refused(decrypt(t.env(), json(s.with("encrypted-dek", String.join(".", p)))), "the HSM could not decrypt encrypted-dek with KEK " + KEK);
    }

    @Test
    void refusesADekIvNoPluginBuildWrites() throws Exception {
        for (int ivBytes : new int[]{8, 32}) {
            IstiodStandIn s = IstiodStandIn.start(t, KEK, "cluster.local", ivBytes);
            refused(decrypt(t.env(), json(s)), "encrypted-dek has a " + ivBytes + "-byte IV; the plugin's builds write 12 (up to 2020-10-15) or 16 bytes");
        }
    }

    @Test
    void readsTheMapFormatOfOlderKubectl() throws Exception {
        StringBuilder s = new StringBuilder("map[");
        istiod.data().forEach((k, v) -> s.append(s.length() > 4 ? " " : "").append(k).append(':').append(v));
        Path json = tmp.resolve("encrypted_csr.txt");
        Files.writeString(json, s.append("]").toString());
        Cli.Result r = decrypt(t.env(), json);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(tmp.resolve("csr.pem")).exists();
    }

    @Test
    void keepsAnotherCsrUnlessReplace() throws Exception {
        Path csr = tmp.resolve("csr.pem");
        Files.writeString(csr, IstiodStandIn.csr("other.local", SignCsrTest.rsa()));
        String before = Files.readString(csr);
        Cli.Result r = decrypt(t.env(), istiod.writeJson(tmp));
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("already exists").contains("--replace");
        assertThat(Files.readString(csr)).isEqualTo(before);
        assertThat(decrypt(t.env(), istiod.writeJson(tmp), "--replace").exit()).isZero();
        assertThat(Pki.subject(Pki.csr(csr, "csr"))).isEqualTo("O=cluster.local");
    }

    // ------------------------------------------------------------ refusals: one line, exit 1, no file

    void refused(Cli.Result r, String expected) {
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).as(r.toString()).startsWith("error: ").contains(expected)
                .doesNotContain("Exception").doesNotContain("\tat ");
        assertThat(r.stderr().lines().filter(l -> l.startsWith("error: "))).hasSize(1);
        assertThat(tmp.resolve("csr.pem")).doesNotExist();
    }

    Path json(IstiodStandIn s) throws Exception {
        return s.writeJson(tmp);
    }

    @Test
    void refusesAKekTheTokenDoesNotHave() throws Exception {
        SoftHsmToken other = SoftHsmToken.create(tmp);
        refused(decrypt(other.env(), json(istiod)), "no KEK with ID " + KEK + " on token '" + other.label + "'");
    }

    @Test
    void refusesAKekWithTheSameIdButAnotherKey() throws Exception {
        SoftHsmToken other = SoftHsmToken.create(tmp);
        assertThat(Cli.asm(other.env(), "gen-kek", "--kek-id", KEK).exit()).isZero();
        refused(decrypt(other.env(), json(istiod)), "the HSM could not decrypt encrypted-dek with KEK " + KEK);
    }

    @Test
    void refusesACsrUnderAnotherKekThanKekId() throws Exception {
        Map<String, String> env = new HashMap<>(t.env());
        env.put("KEK_ID", "11111111-2222-4333-8444-555555555555");
        refused(decrypt(env, json(istiod)), "not under KEK_ID 11111111-2222-4333-8444-555555555555");
    }

    @Test
    void refusesATamperedCsrBlob() throws Exception {
        String[] p = istiod.values.get("encrypted-csr").split("\\.", -1);
        char c = p[3].charAt(10);
        p[3] = p[3].substring(0, 10) + (c == 'A' ? 'B' : 'A') + p[3].substring(11);
        refused(decrypt(t.env(), json(istiod.with("encrypted-csr", String.join(".", p)))), "encrypted-csr fails authentication");
    }

    @Test
    void refusesATamperedDekBlob() throws Exception {
        String[] p = istiod.values.get("encrypted-dek").split("\\.", -1);
        p[4] = IstiodStandIn.b64u(new byte[16]);
        refused(decrypt(t.env(), json(istiod.with("encrypted-dek", String.join(".", p)))), "could not decrypt encrypted-dek");
    }

    @Test
    void refusesACsrOfAnotherTrustDomain() throws Exception {
        refused(decrypt(t.env(), json(istiod.with("csr-id", "other.local"))),
                "the CSR was encrypted for trust domain 'cluster.local' but csr-id says 'other.local'");
    }

    @Test
    void refusesBlobsOfTwoDifferentSecrets() throws Exception {
        IstiodStandIn second = IstiodStandIn.start(t, KEK, "cluster.local");
        refused(decrypt(t.env(), json(istiod.with("encrypted-csr", second.values.get("encrypted-csr")))),
                "encrypted-csr names DEK");
    }

    @Test
    void refusesTruncatedJson() throws Exception {
        String whole = istiod.kubectlJson();
        Path json = tmp.resolve("encrypted_csr.json");
        Files.writeString(json, whole.substring(0, whole.length() / 2));
        refused(decrypt(t.env(), json), "is not complete JSON");
    }

    @Test
    void refusesAValueThatIsNotBase64() throws Exception {
        Path json = tmp.resolve("encrypted_csr.json");
        Files.writeString(json, istiod.kubectlJson().replaceFirst("\"encrypted-dek\":\"", "\"encrypted-dek\":\"%%"));
        refused(decrypt(t.env(), json), "'encrypted-dek' in " + json + " is not base64");
    }

    @Test
    void refusesAMissingValue() throws Exception {
        Path json = tmp.resolve("encrypted_csr.json");
        Files.writeString(json, istiod.kubectlJson().replaceFirst("\"csr-id\":\"[^\"]*\",", ""));
        refused(decrypt(t.env(), json), "has no 'csr-id'");
    }

    @Test
    void aMissingFileIsBadUsage() {
        Cli.Result r = decrypt(t.env(), tmp.resolve("nope.json"));
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stderr()).contains("cannot read").contains("kubectl get secret istio-ca-cert-csr");
    }
}
