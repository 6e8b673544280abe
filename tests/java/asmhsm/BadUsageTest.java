package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Bad usage is one line: whatever picocli refuses (an unknown option, a missing one, a value of
 * the wrong type), in any step and through `asm run`, is "error: ..." and "  -> see --help", exit 2,
 * and under --json one JSON result on stdout; never picocli's whole usage. A binary file where PEM
 * belongs, and a garbage kubeconfig, are bad input named by file. Nothing is left behind.
 * (Vault and the cluster: NoSecretInMessagesTest, against the lab.)
 */
class BadUsageTest {
    @TempDir Path tmp;

    static final JsonMapper JSON = JsonMapper.builder().build();

    record Usage(String message, String... args) {}

    static final List<Usage> BAD_USAGES = List.of(
            new Usage("Unknown option: '--no-such-option'", "gen-kek", "--no-such-option"),
            new Usage("Unknown option: '--bogus=1'", "istiod-service", "--bogus=1"),
            new Usage("Missing required options: '--client-cert=FILE', '--client-key=FILE', '--server-cert=FILE'",
                    "vault-setup", "--cluster-suffix", "c1", "--pin-file", "pin"),
            new Usage("Missing required option: '--pod=POD'", "verify-mtls", "--target", "details:9080"),
            new Usage("Missing required option: '--namespace=NAMESPACE'", "enable-injection", "--revision", "asm-198-6"),
            new Usage("Invalid value for option '--days': 'abc' is not an int", "sign-csr", "--days", "abc"),
            new Usage("Invalid value for option '--timeout': 'soon' is not a duration (e.g. 30s, 5m, 1h; a bare number is seconds)", "k8s-vault-prep", "--cluster-suffix", "c1", "--timeout", "soon"),
            new Usage("Missing required parameter for option '--kek-id' (ID)", "gen-kek", "--kek-id"),
            new Usage("Invalid value for option '--namespace': namespace '../kube-system' is not a valid Kubernetes name: a DNS label of lower-case "
                    + "letters, digits and inner dashes, at most 63", "upload-chain", "-n", "../kube-system", "-f", "chain.pem"),
            new Usage("Invalid value for option '--namespace': namespace 'Istio-System' is not a valid Kubernetes name: a DNS label of lower-case "
                    + "letters, digits and inner dashes, at most 63", "verify-mtls", "--pod", "p", "--target", "details:9080", "-n", "Istio-System"),
            new Usage("Unmatched argument at index 0: 'gen-kekk'", "gen-kekk"),
            new Usage("Unknown option: '--bogus'", "run", "hsm-info", "--bogus", "+", "gen-kek"),
            new Usage("Unknown option: '--bogus'", "gen-kek", "--bogus", "--help"),    // not swallowed by the help it asks for
            new Usage("Unknown subcommand 'gen-kekk'.", "help", "gen-kekk"),
            new Usage("Invalid value for positional parameter at index 0 (SHELL): expected one of [bash, zsh] (case-sensitive) but was 'fish'",
                    "completion", "fish"));

    /** Every file under dir (the working folder of the runs): a refused call writes nothing there. */
    static List<Path> files(Path dir) throws Exception {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> !p.equals(dir)).toList();
        }
    }

    @Test
    void eachBadUsageIsOneLineAndExit2() throws Exception {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Path cwd = Files.createDirectories(tmp.resolve("cwd"));
        for (Usage u : BAD_USAGES) {
            Cli.Result r = Cli.asm(t.env(), cwd, u.args());
            assertThat(r.exit()).as(r.toString()).isEqualTo(2);
            assertThat(r.stdout()).as(r.toString()).isEmpty();
            List<String> lines = r.stderr().strip().lines().toList();
            assertThat(lines).as(r.toString()).hasSize(2);
            assertThat(lines.get(0)).isEqualTo("error: " + u.message());
            assertThat(lines.get(1)).startsWith("  -> ").endsWith("see --help");
            assertThat(r.stderr()).doesNotContain("Usage:");
        }
        assertThat(Cli.asm(t.env(), cwd, "gen-kekk").stderr()).contains("did you mean gen-kek");
        assertThat(files(cwd)).isEmpty();
        assertThat(t.objectCount()).isZero();
    }

    @Test
    void underJsonABadUsageIsOneJsonResult() throws Exception {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Path cwd = Files.createDirectories(tmp.resolve("cwd"));
        for (Usage u : BAD_USAGES) {
            if (!(Asm.COMMANDS.containsKey(u.args()[0]) && Asm.step(u.args()[0]) instanceof Step) && !u.args()[0].equals("run"))
                continue;   // no step (gen-kekk, help, completion): nothing takes --json
            List<String> args = new ArrayList<>(List.of(u.args()));
            // --json before the bad word too: picocli stops at the first problem, the JSON result must still come
            args.add(args.get(0).equals("run") ? 2 : 1, "--json");
            Cli.Result r = Cli.asm(t.env(), cwd, args.toArray(String[]::new));
            assertThat(r.exit()).as(r.toString()).isEqualTo(2);
            JsonNode doc = JSON.readTree(r.stdout());
            assertThat(doc.get("ok").asBoolean()).as(r.toString()).isFalse();
            assertThat(doc.get("exitCode").asInt()).isEqualTo(2);
            assertThat(doc.get("changed").asBoolean()).isFalse();
            assertThat(doc.get("step").asString()).isEqualTo(args.get(0).equals("run") ? args.get(1) : args.get(0));
            assertThat(doc.get("error").asString()).isEqualTo(u.message());
            assertThat(doc.get("hint").asString()).endsWith("see --help");
            assertThat(r.stderr().strip().lines().toList()).as(r.toString()).hasSize(2);
        }
        assertThat(files(cwd)).isEmpty();
        assertThat(t.objectCount()).isZero();
    }

    /** picocli's @FILE expansion would read a file as arguments and quote its words in the refusal. */
    @Test
    void anArgumentFileIsNotRead() throws Exception {
        Path pin = Files.writeString(tmp.resolve("pin"), "--pin-" + System.nanoTime() + "\n");
        Cli.Result r = Cli.asm(Map.of(), tmp, "gen-kek", "@" + pin);
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.all()).doesNotContain(Files.readString(pin).strip());
        assertThat(r.stderr().strip().lines().toList()).hasSize(2);
    }

    @Test
    void aBinaryFileWherePemBelongsIsBadInputNamedByFile() throws Exception {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Path cwd = Files.createDirectories(tmp.resolve("cwd"));
        byte[] bytes = new byte[300];
        new java.util.Random(7).nextBytes(bytes);
        bytes[0] = (byte) 0xC3;         // never valid UTF-8: a lone lead byte before an ASCII one
        bytes[1] = 'A';
        Path bin = tmp.resolve("blob.bin");
        Files.write(bin, bytes);
        String notPem = " " + bin + " is not PEM text (300 bytes, binary)";
        record Case(String expect, Map<String, String> env, String... args) {}
        Map<String, String> hsm = t.env();
        List<Case> cases = List.of(
                new Case("root certificate" + notPem, hsm, "import-ca", "-f", bin.toString()),
                new Case("certificate chain" + notPem, hsm, "upload-chain", "-f", bin.toString()),
                new Case("Vault CA certificate" + notPem, Map.of(), "control-plane-prep", "--vault-cacert", bin.toString()),
                new Case("Vault CA file" + notPem, Map.of("VAULT_ADDR", "https://127.0.0.1:1", "VAULT_TOKEN", "t", "VAULT_CACERT", bin.toString()),
                        "vault-verify", "--cluster-suffix", "c1"),
                new Case("kubeconfig " + bin + " is not a kubeconfig (300 bytes, binary)", Map.of("KUBECONFIG", bin.toString()),
                        "istiod-service"));
        for (Case c : cases) {
            for (boolean json : new boolean[] {false, true}) {
                List<String> args = new ArrayList<>(List.of(c.args()));
                if (json) args.add("--json");
                Cli.Result r = Cli.asm(c.env(), cwd, args.toArray(String[]::new));
                assertThat(r.exit()).as(r.toString()).isEqualTo(2);
                List<String> lines = r.stderr().strip().lines().toList();
                assertThat(lines).as(r.toString()).hasSize(2);
                assertThat(lines.get(0)).as(r.toString()).contains(c.expect());
                if (json) assertThat(JSON.readTree(r.stdout()).get("error").asString()).contains(c.expect());
                assertThat(r.all()).doesNotContain("MalformedInput");
            }
        }
        assertThat(files(cwd)).isEmpty();
        assertThat(t.objectCount()).isZero();
    }

    @Test
    void aGarbageKubeconfigIsOneLineThatNamesTheFile() throws Exception {
        Path cwd = Files.createDirectories(tmp.resolve("cwd"));
        Map<String, String> garbage = Map.of(
                "not-yaml", "::: not yaml :::\n  - [\n",
                "a-list", "- clusters:\n- b\n",
                "no-clusters", "apiVersion: v1\nkind: Config\nusers: []\n",
                "broken-yaml", "clusters:\n  - name: [a\n");
        for (var g : garbage.entrySet()) {
            Path file = Files.writeString(tmp.resolve(g.getKey()), g.getValue());
            Cli.Result r = Cli.asm(Map.of("KUBECONFIG", file.toString()), cwd, "enable-injection", "-n", "default", "--revision", "asm-198-6");
            assertThat(r.exit()).as(r.toString()).isEqualTo(2);
            List<String> lines = r.stderr().strip().lines().toList();
            assertThat(lines).as(r.toString()).hasSize(2);
            assertThat(lines.get(0)).as(r.toString()).startsWith("error: kubeconfig " + file + " is not a kubeconfig ("
                    + g.getValue().length() + " bytes, ");
        }
        assertThat(files(cwd)).isEmpty();
    }
}
