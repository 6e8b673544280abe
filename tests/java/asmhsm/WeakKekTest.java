package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Keys with the plugin's KEK label and an ID, made by pkcs11-tool on a real SoftHSM2 token, that are
 * weak (readable, exportable, short, not AES): no step takes one for the KEK. gen-kek and decrypt-csr
 * refuse them, status calls them wrong, hsm-info warns; the token keeps exactly what it held.
 */
class WeakKekTest {
    static final JsonMapper JSON = JsonMapper.builder().build();
    /** KEK ID -> {pkcs11-tool --keygen options, what the step must say is weak}. */
    static final Map<String, String[]> WEAK = new LinkedHashMap<>();

    static {
        // the key: extractable and not sensitive
        WEAK.put("weak-extractable", new String[]{"AES:32 --extractable", "not sensitive, extractable"});
        WEAK.put("weak-readable", new String[]{"AES:32", "not sensitive"});
        WEAK.put("weak-exportable", new String[]{"AES:32 --sensitive --extractable", "(extractable)"});
        WEAK.put("weak-aes128", new String[]{"AES:16 --sensitive", "(AES-128, not AES-256)"});
        WEAK.put("weak-generic", new String[]{"GENERIC:32 --sensitive", "(GENERIC_SECRET, not AES)"});
    }

    /** A KEK pkcs11-tool makes as the plugin does (sensitive, never extractable, AES-256): fit for use. */
    static final String STRONG = "strong-by-pkcs11-tool";

    @TempDir Path tmp;
    SoftHsmToken t;

    @BeforeEach
    void setUp() {
        t = SoftHsmToken.create(tmp);
    }

    void keygen(String id, String options) {
        List<String> args = new java.util.ArrayList<>(List.of("--token-label", t.label, "--login", "--pin", "env:USER_PIN",
                "--keygen", "--key-type"));
        args.addAll(List.of(options.split(" ")));
        args.addAll(List.of("--id", GenKekTest.hex(id), "--label", Hsm.KEK_LABEL));
        t.tool(args.toArray(String[]::new));
    }

    void allKeys() {
        WEAK.forEach((id, spec) -> keygen(id, spec[0]));
        keygen(STRONG, "AES:32 --sensitive");
    }

    static void oneErrorLine(Cli.Result r) {
        assertThat(r.stderr().lines().filter(l -> l.startsWith("error: "))).as(r.toString()).hasSize(1);
        assertThat(r.stderr()).doesNotContain("Exception").doesNotContain("\tat ");
    }

    @Test
    void genKekRefusesEachWeakKeyWithItsIdAndSaysWhatToDo() {
        allKeys();
        String before = t.objects();
        for (var e : WEAK.entrySet()) {
            Cli.Result r = Cli.asm(t.env(), "gen-kek", "--kek-id", e.getKey());
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            oneErrorLine(r);
            assertThat(r.stderr()).contains("error: the key with KEK ID " + e.getKey() + " on token '" + t.label + "' is weak (")
                    .contains(e.getValue()[1])
                    .contains("a KEK must be a sensitive, never-extractable AES-256 key")
                    .contains("delete it with the HSM's tooling").contains("--id " + GenKekTest.hex(e.getKey()))
                    .contains("run gen-kek --kek-id " + e.getKey() + " again, or choose another KEK ID");
            assertThat(r.stdout()).doesNotContain("already exists");
            // --json says the same, and a dry run too
            Cli.Result json = Cli.asm(t.env(), "gen-kek", "--kek-id", e.getKey(), "--json", "--dry-run");
            assertThat(json.exit()).as(json.toString()).isEqualTo(1);
            assertThat(JSON.readTree(json.stdout()).get("ok").asBoolean()).isFalse();
            assertThat(JSON.readTree(json.stdout()).get("error").asString()).contains("is weak (");
        }
        // the sensitive, never-extractable AES-256 key pkcs11-tool made is a KEK as the plugin makes them
        Cli.Result strong = Cli.asm(t.env(), "gen-kek", "--kek-id", STRONG);
        assertThat(strong.exit()).as(strong.toString()).isZero();
        assertThat(strong.all()).contains("already exists");
        assertThat(t.objects()).isEqualTo(before);
    }

    @Test
    void hsmInfoWarnsOfEachWeakKekAndMarksItInJson() {
        allKeys();
        assertThat(Cli.asm(t.env(), "gen-kek", "--kek-id", "made-by-gen-kek").exit()).isZero();
        Cli.Result r = Cli.asm(t.env(), "hsm-info", "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        Map<String, JsonNode> byId = new HashMap<>();
        for (JsonNode o : JSON.readTree(r.stdout()).get("objects")) byId.put(o.get("id").asString(), o);
        for (var e : WEAK.entrySet()) {
            assertThat(byId.get(e.getKey()).get("weak").asBoolean()).as(e.getKey()).isTrue();
            assertThat(byId.get(e.getKey()).get("weakness").asString()).as(e.getKey()).contains(e.getValue()[1].replaceAll("[()]", ""));
            assertThat(r.stderr()).contains("warning: the key with KEK ID " + e.getKey() + " on token '" + t.label + "' is weak (");
        }
        for (String good : List.of(STRONG, "made-by-gen-kek")) {
            assertThat(byId.get(good).get("weak").asBoolean()).as(good).isFalse();
            assertThat(byId.get(good).has("weakness")).isFalse();
            assertThat(r.stderr()).doesNotContain("KEK ID " + good + " ");
        }
        assertThat(JSON.readTree(r.stdout()).get("warnings")).hasSize(WEAK.size());
        // the human listing says which and why
        Cli.Result human = Cli.asm(t.env(), "hsm-info");
        assertThat(human.stdout()).contains("id=weak-extractable").contains("weakness=not sensitive, extractable");
        assertThat(human.stderr()).contains("warning: the key with KEK ID weak-aes128");
    }

    /** status with only the HSM to read: the cluster and Vault lines are unknown, the KEK line is judged. */
    Map<String, JsonNode> statusLines(String kekId) {
        Map<String, String> env = new HashMap<>(t.env());
        env.put("CLUSTER_SUFFIX", "c1");
        env.put("KUBECONFIG", tmp.resolve("no-kubeconfig").toString());
        if (kekId != null) env.put("KEK_ID", kekId);
        Cli.Result r = Cli.asm(env, "status", "--json");
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        Map<String, JsonNode> m = new LinkedHashMap<>();
        for (JsonNode c : JSON.readTree(r.stdout()).get("checks")) m.put(c.get("name").asString(), c);
        return m;
    }

    @Test
    void statusCallsAWeakKekWrongAndSaysWhatToDo() {
        allKeys();
        for (var e : WEAK.entrySet()) {
            JsonNode line = statusLines(e.getKey()).get("hsm: KEK");
            assertThat(line.get("state").asString()).as(line.toString()).isEqualTo("wrong");
            assertThat(line.get("detail").asString()).contains("KEK ID " + e.getKey()).contains(e.getValue()[1]);
            assertThat(line.get("fix").asString()).contains("delete it with the HSM's tooling").contains("gen-kek --kek-id " + e.getKey());
        }
        assertThat(statusLines(STRONG).get("hsm: KEK").get("state").asString()).isEqualTo("done");
        // without KEK_ID every KEK of the plugin is looked at: one weak one is enough to be wrong
        JsonNode all = statusLines(null).get("hsm: KEK");
        assertThat(all.get("state").asString()).isEqualTo("wrong");
        for (String id : WEAK.keySet()) assertThat(all.get("detail").asString()).contains("KEK ID " + id + " ");
        assertThat(all.get("detail").asString()).doesNotContain(STRONG);
    }

    @Test
    void decryptCsrRefusesACsrEncryptedUnderAWeakKek() throws Exception {
        for (String id : List.of("weak-extractable", "weak-readable", "weak-exportable")) {
            keygen(id, WEAK.get(id)[0]);
            // the plugin would use it: it finds a KEK by label and ID only
            IstiodStandIn istiod = IstiodStandIn.start(t, id, "cluster.local");
            Path out = tmp.resolve(id + ".csr.pem");
            Cli.Result r = Cli.asm(t.env(), tmp, "decrypt-csr", "-f", istiod.writeJson(tmp).toString(), "-o", out.toString());
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            oneErrorLine(r);
            assertThat(r.stderr()).contains("the key with KEK ID " + id + " on token '" + t.label + "' is weak (")
                    .contains(WEAK.get(id)[1]).contains("do not use it");
            assertThat(out).doesNotExist();
        }
        assertThat(t.objectCount()).isEqualTo(3);
    }
}
