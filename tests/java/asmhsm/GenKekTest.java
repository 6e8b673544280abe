package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** gen-kek against a real SoftHSM2 token, looked at afterwards with OpenSC's pkcs11-tool. */
class GenKekTest {
    @TempDir Path tmp;

    static String hex(String s) { return HexFormat.of().formatHex(s.getBytes()); }

    @Test
    void makesExactlyOneKekAsThePluginFindsIt() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result r = Cli.asm(t.env(), "gen-kek", "--kek-id", "7651a4ea-eeb7-4c1f-927b-8c871c2127aa");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("7651a4ea-eeb7-4c1f-927b-8c871c2127aa");
        String objects = t.objects();
        assertThat(t.objectCount()).as(objects).isEqualTo(1);
        assertThat(objects).contains("Secret Key Object; AES length 32")
                .contains("label:      k8s-kms-plugin-kek")
                .contains("ID:         " + hex("7651a4ea-eeb7-4c1f-927b-8c871c2127aa"))
                .contains("sensitive, always sensitive, never extractable")
                .contains("encrypt, decrypt")
                .doesNotContain("sign");
        // the plugin's lookup: class + CKA_ID + CKA_LABEL, and the key works for AES-GCM in the token
        String found = t.tool("--token-label", t.label, "--login", "--pin", "env:USER_PIN", "--list-objects",
                "--type", "secrkey", "--id", hex("7651a4ea-eeb7-4c1f-927b-8c871c2127aa"));
        assertThat(found).contains("k8s-kms-plugin-kek");
    }

    @Test
    void randomUuidWhenNoIdAndJsonResult() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result r = Cli.asm(t.env(), "gen-kek", "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).containsPattern("\"kekId\" : \"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\"")
                .contains("\"changed\" : true");
        String id = r.stdout().replaceAll("(?s).*\"kekId\" : \"([^\"]+)\".*", "$1");
        assertThat(t.objects()).contains("ID:         " + hex(id));
    }

    @Test
    void kekIdFromTheGuidesVariable() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Map<String, String> env = new HashMap<>(t.env());
        env.put("KEK_ID", "from-env-1");
        assertThat(Cli.asm(env, "gen-kek").exit()).isZero();
        assertThat(t.objects()).contains("ID:         " + hex("from-env-1"));
    }

    @Test
    void sameIdAgainChangesNothing() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        assertThat(Cli.asm(t.env(), "gen-kek", "--kek-id", "k1").exit()).isZero();
        Cli.Result again = Cli.asm(t.env(), "gen-kek", "--kek-id", "k1", "--json");
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("\"changed\" : false").contains("\"created\" : false");
        assertThat(t.objectCount()).isEqualTo(1);
    }

    static String lastLine(Cli.Result r) {
        List<String> lines = r.stdout().lines().toList();
        return lines.isEmpty() ? "" : lines.get(lines.size() - 1);
    }

    static JsonNode json(Cli.Result r) {
        return JsonMapper.builder().build().readTree(r.stdout());
    }

    /** Without --kek-id: a KEK when there is none, then that one KEK reported, never a second. */
    @Test
    void noIdMakesOneKekThenReportsThatOne() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result first = Cli.asm(t.env(), "gen-kek");
        assertThat(first.exit()).as(first.toString()).isZero();
        assertThat(first.stdout()).contains("generated AES-256 KEK");
        String id = lastLine(first);
        assertThat(id).matches("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
        assertThat(t.objectCount()).isEqualTo(1);

        for (int i = 0; i < 2; i++) {
            Cli.Result again = Cli.asm(t.env(), "gen-kek");
            assertThat(again.exit()).as(again.toString()).isZero();
            assertThat(again.stdout()).contains("KEK " + id + " already exists on token '" + t.label + "'")
                    .doesNotContain("generated");
            assertThat(lastLine(again)).isEqualTo(id);
            assertThat(t.objectCount()).isEqualTo(1);
        }
        Cli.Result json = Cli.asm(t.env(), "gen-kek", "--json");
        assertThat(json.exit()).as(json.toString()).isZero();
        JsonNode doc = json(json);
        assertThat(doc.get("kekId").asString()).isEqualTo(id);
        assertThat(doc.get("created").asBoolean()).isFalse();
        assertThat(doc.get("changed").asBoolean()).isFalse();
        assertThat(doc.get("embedded").asBoolean()).isFalse();
        assertThat(doc.get("existingKeks").toString()).isEqualTo("[\"" + id + "\"]");
        assertThat(json.stderr()).doesNotContain("NOT AN HSM");
        assertThat(t.objectCount()).isEqualTo(1);
    }

    /** Several KEKs: gen-kek lists them and refuses to guess (exit 2), in a dry run too; nothing is made. */
    @Test
    void severalKeksAreListedAndRefused() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        assertThat(Cli.asm(t.env(), "gen-kek", "--kek-id", "kek-a").exit()).isZero();
        assertThat(Cli.asm(t.env(), "gen-kek", "--kek-id", "kek-b").exit()).isZero();
        for (String[] args : List.of(new String[] {"gen-kek"}, new String[] {"gen-kek", "--dry-run"})) {
            Cli.Result r = Cli.asm(t.env(), args);
            assertThat(r.exit()).as(r.toString()).isEqualTo(2);
            assertThat(r.stderr()).contains("already holds 2 KEKs").contains("kek-a").contains("kek-b")
                    .contains("export KEK_ID=").contains("--new");
            assertThat(r.stdout()).isEmpty();
            assertThat(t.objectCount()).isEqualTo(2);
        }
        Cli.Result json = Cli.asm(t.env(), "gen-kek", "--json");
        assertThat(json.exit()).as(json.toString()).isEqualTo(2);
        JsonNode doc = json(json);
        assertThat(doc.get("ok").asBoolean()).isFalse();
        assertThat(doc.get("changed").asBoolean()).isFalse();
        assertThat(doc.get("existingKeks").toString()).contains("\"kek-a\"").contains("\"kek-b\"");
        assertThat(doc.get("error").asString()).contains("kek-a").contains("kek-b");
        assertThat(t.objectCount()).isEqualTo(2);
        // the one istiod uses, named, is still found as before
        Cli.Result named = Cli.asm(t.env(), "gen-kek", "--kek-id", "kek-b");
        assertThat(named.exit()).as(named.toString()).isZero();
        assertThat(lastLine(named)).isEqualTo("kek-b");
        assertThat(t.objectCount()).isEqualTo(2);
    }

    /** --new: another KEK, whatever the token holds; never with a KEK ID given. */
    @Test
    void newMakesAnotherKek() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        assertThat(Cli.asm(t.env(), "gen-kek", "--kek-id", "kek-a").exit()).isZero();
        Cli.Result dry = Cli.asm(t.env(), "gen-kek", "--new", "--dry-run");
        assertThat(dry.exit()).as(dry.toString()).isZero();
        assertThat(dry.stdout()).contains("would generate AES-256 KEK with a new random ID");
        assertThat(t.objectCount()).isEqualTo(1);

        Cli.Result second = Cli.asm(t.env(), "gen-kek", "--new", "--json");
        assertThat(second.exit()).as(second.toString()).isZero();
        JsonNode doc = json(second);
        assertThat(doc.get("created").asBoolean()).isTrue();
        assertThat(doc.get("kekId").asString()).isNotEqualTo("kek-a").matches("[0-9a-f-]{36}");
        assertThat(t.objectCount()).isEqualTo(2);
        Cli.Result third = Cli.asm(t.env(), "gen-kek", "--new");
        assertThat(third.exit()).as(third.toString()).isZero();
        assertThat(lastLine(third)).isNotIn("kek-a", doc.get("kekId").asString());
        assertThat(t.objectCount()).isEqualTo(3);

        Cli.Result both = Cli.asm(t.env(), "gen-kek", "--new", "--kek-id", "kek-c");
        assertThat(both.exit()).as(both.toString()).isEqualTo(2);
        assertThat(both.stderr()).contains("--new").contains("kek-c");
        Map<String, String> env = new HashMap<>(t.env());
        env.put("KEK_ID", "kek-c");
        assertThat(Cli.asm(env, "gen-kek", "--new").exit()).isEqualTo(2);
        assertThat(t.objectCount()).isEqualTo(3);
    }

    /** A dry run without --kek-id: would make one on an empty token, reports the one there, makes nothing. */
    @Test
    void dryRunWithoutIdChangesNothing() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result none = Cli.asm(t.env(), "gen-kek", "--dry-run", "--json");
        assertThat(none.exit()).as(none.toString()).isZero();
        assertThat(json(none).get("changed").asBoolean()).isTrue();
        assertThat(json(none).has("kekId")).as("no made-up ID in a dry run").isFalse();
        assertThat(t.objectCount()).isZero();
        assertThat(Cli.asm(t.env(), "gen-kek", "--kek-id", "kek-a").exit()).isZero();
        Cli.Result one = Cli.asm(t.env(), "gen-kek", "--dry-run");
        assertThat(one.exit()).as(one.toString()).isZero();
        assertThat(one.stdout()).contains("KEK kek-a already exists").doesNotContain("would");
        assertThat(t.objectCount()).isEqualTo(1);
    }

    /** The one key with the plugin's label is weak: never reported as the KEK to use. */
    @Test
    void aLoneWeakKekIsRefusedWithoutAnId() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        t.tool("--token-label", t.label, "--login", "--pin", "env:USER_PIN", "--keygen", "--key-type", "AES:32", "--extractable",
                "--id", hex("weak-one"), "--label", Hsm.KEK_LABEL);
        Cli.Result r = Cli.asm(t.env(), "gen-kek");
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("weak-one").contains("is weak");
        assertThat(r.stdout()).doesNotContain("weak-one");
        assertThat(t.objectCount()).isEqualTo(1);
    }

    @Test
    void dryRunCreatesNothing() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result r = Cli.asm(t.env(), "gen-kek", "--kek-id", "k1", "--dry-run");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("would generate");
        assertThat(t.objectCount()).isZero();
    }

    @Test
    void refusesAnIdHeldByAnotherKindOfObject() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        t.tool("--token-label", t.label, "--login", "--pin", "env:USER_PIN", "--keygen", "--key-type", "GENERIC:32",
                "--id", hex("taken"), "--label", "something-else");
        Cli.Result r = Cli.asm(t.env(), "gen-kek", "--kek-id", "taken");
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("already holds").contains("taken").contains("choose another --kek-id");
        assertThat(t.objectCount()).isEqualTo(1);
    }

    @Test
    void wrongPinFailsAndLeavesNothing() throws Exception {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Path bad = tmp.resolve("badpin");
        Files.createFile(bad, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(bad, "not-the-pin\n");
        Map<String, String> env = new HashMap<>(t.env());
        env.put("P11_PIN_FILE", bad.toString());
        Cli.Result r = Cli.asm(env, "gen-kek", "--kek-id", "k1");
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("refused the PIN").doesNotContain("not-the-pin").doesNotContain("Exception");
        assertThat(t.objectCount()).isZero();
    }

    @Test
    void missingPinFile() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Map<String, String> env = new HashMap<>(t.env());
        env.put("P11_PIN_FILE", tmp.resolve("nope").toString());
        Cli.Result r = Cli.asm(env, "gen-kek");
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stderr()).contains("does not exist").contains("P11_PIN_FILE");
        assertThat(t.objectCount()).isZero();
    }

    @Test
    void pinFileReadableByOthersIsRefusedLikeSsh() throws Exception {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Files.setPosixFilePermissions(t.pinFile, PosixFilePermissions.fromString("rw-r--r--"));
        Cli.Result r = Cli.asm(t.env(), "gen-kek");
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stderr()).contains("accessible by others").contains("chmod 600");
        Files.setPosixFilePermissions(t.pinFile, PosixFilePermissions.fromString("rw-------"));
        assertThat(t.objectCount()).isZero();
    }

    @Test
    void unknownTokenLabelListsTheLabelsThatExist() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Map<String, String> env = new HashMap<>(t.env());
        env.put("P11_TOKEN", "no-such-slot");
        Cli.Result r = Cli.asm(env, "gen-kek");
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stderr()).contains("no token labelled 'no-such-slot'").contains(t.label);
        assertThat(t.objectCount()).isZero();
    }

    @Test
    void missingOrNonPkcs11Library() throws Exception {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Map<String, String> env = new HashMap<>(t.env());
        env.put("P11_LIB", tmp.resolve("libCryptoki2.so").toString());
        Cli.Result missing = Cli.asm(env, "gen-kek");
        assertThat(missing.exit()).as(missing.toString()).isEqualTo(2);
        assertThat(missing.stderr()).contains("does not exist").contains("P11_LIB");

        Path notALib = tmp.resolve("fake.so");
        Files.writeString(notALib, "this is not a shared library");
        env.put("P11_LIB", notALib.toString());
        Cli.Result garbage = Cli.asm(env, "gen-kek");
        assertThat(garbage.exit()).as(garbage.toString()).isEqualTo(2);
        assertThat(garbage.stderr()).contains("not a usable PKCS#11 library");

        // a real shared library that is not PKCS#11
        env.put("P11_LIB", Files.isRegularFile(Path.of("/lib/x86_64-linux-gnu/libz.so.1")) ? "/lib/x86_64-linux-gnu/libz.so.1"
                : Path.of(System.getProperty("java.home"), "lib", "libzip.so").toString());
        Cli.Result other = Cli.asm(env, "gen-kek");
        assertThat(other.exit()).as(other.toString()).isEqualTo(2);
        assertThat(other.stderr()).contains("not a usable PKCS#11 library");
        assertThat(t.objectCount()).isZero();
    }

    @Test
    void badKekIdIsBadInput() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result r = Cli.asm(t.env(), "gen-kek", "--kek-id", "has space");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(t.objectCount()).isZero();
    }

    @Test
    void unknownOptionIsUsageError() {
        Cli.Result r = Cli.asm(Map.of(), "gen-kek", "--no-such-option");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("Unknown option");
    }

    /** The README's main job: no P11_* at all gives the embedded SoftHSM2 token, made once. */
    @Test
    void embeddedDefaultTokenIsMadeOnFirstUseWithAPrivatePinFile() throws Exception {
        Path home = tmp.resolve("home");
        Files.createDirectories(home);
        Map<String, String> env = Map.of("HOME", home.toString());
        Cli.Result first = Cli.asm(env, "gen-kek");
        assertThat(first.exit()).as(first.toString()).isZero();
        assertThat(first.stderr()).contains("created the embedded SoftHSM2 token")
                .contains("warning: token 'asm-hsm' is the embedded SoftHSM2 token").contains("NOT AN HSM");
        String id = lastLine(first);
        Cli.Result again = Cli.asm(env, "gen-kek", "--json");
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(json(again).get("embedded").asBoolean()).isTrue();
        assertThat(json(again).get("kekId").asString()).isEqualTo(id);
        assertThat(json(again).get("warnings").toString()).contains("NOT AN HSM");
        assertThat(again.stderr()).contains("NOT AN HSM");
        Path pin = home.resolve(".asm-hsm/softhsm/pin");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(pin))).isEqualTo("rw-------");
        assertThat(first.all()).doesNotContain(Files.readString(pin).trim());

        Cli.Result second = Cli.asm(env, "gen-kek", "--kek-id", "second");
        assertThat(second.exit()).as(second.toString()).isZero();
        assertThat(second.stderr()).doesNotContain("created the embedded");
        Cli.Result info = Cli.asm(env, "hsm-info", "--json");
        assertThat(info.exit()).as(info.toString()).isZero();
        assertThat(info.stdout()).contains("\"embedded\" : true").contains("\"id\" : \"second\"")
                .contains("\"label\" : \"asm-hsm\"");
    }
}
