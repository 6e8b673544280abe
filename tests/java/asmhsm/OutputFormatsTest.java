package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.dataformat.yaml.YAMLMapper;

/** -o json|yaml beside --json, asm run's one array, the name of a subcommand's result, and the examples of every --help. */
class OutputFormatsTest {
    static final JsonMapper JSON = new JsonMapper();
    static final YAMLMapper YAML = new YAMLMapper();

    @TempDir Path tmp;

    @Test
    void dashOJsonIsJsonAndYamlIsTheSameResult() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result json = Cli.asm(t.env(), "hsm-info", "--json");
        Cli.Result o = Cli.asm(t.env(), "hsm-info", "-o", "json");
        Cli.Result yaml = Cli.asm(t.env(), "hsm-info", "--output=yaml");
        assertThat(json.exit()).as(json.toString()).isZero();
        assertThat(o.exit()).as(o.toString()).isZero();
        assertThat(yaml.exit()).as(yaml.toString()).isZero();
        assertThat(o.stdout()).isEqualTo(json.stdout());
        assertThat(yaml.stdout()).doesNotContain("{");
        assertThat(YAML.readTree(yaml.stdout())).isEqualTo(JSON.readTree(json.stdout()));
        assertThat(JSON.readTree(json.stdout()).get("schemaVersion").asInt()).isEqualTo(Out.SCHEMA_VERSION);
    }

    @Test
    void aFormatOtherThanJsonOrYamlIsBadUsageAndAFileOptionKeepsItsDashO() {
        Cli.Result bad = Cli.asm(Map.of(), "hsm-info", "-o", "xml");
        assertThat(bad.exit()).isEqualTo(2);
        assertThat(bad.stderr()).contains("'xml' is not an output format: json or yaml");
        // bad usage under -o yaml is still a YAML result
        Cli.Result badYaml = Cli.asm(Map.of(), "hsm-info", "--nope", "-o", "yaml");
        assertThat(badYaml.exit()).isEqualTo(2);
        assertThat(YAML.readTree(badYaml.stdout()).get("ok").asBoolean()).isFalse();
        // decrypt-csr's -o is the CSR file it writes (as openssl's -out): its format option is --output-format
        CommandLine decrypt = Asm.commandLine("decrypt-csr").getSubcommands().get("decrypt-csr");
        assertThat(decrypt.getCommandSpec().findOption("-o").paramLabel()).isEqualTo("CSR_PEM");
        assertThat(decrypt.getCommandSpec().findOption("--output-format")).isNotNull();
        // and its help names that option, not -o, as the one that takes json
        assertThat(String.join(" ", decrypt.getCommandSpec().findOption("--output-format").description()))
                .contains("--output-format json is --json").doesNotContain("-o json");
        assertThat(String.join(" ", Asm.commandLine("hsm-info").getSubcommands().get("hsm-info").getCommandSpec()
                .findOption("-o").description())).contains("(-o json is --json)");
    }

    @Test
    void asmRunWithJsonPrintsOneArrayOfTheStepsResults() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result r = Cli.asm(t.env(), "run", "--json", "gen-kek", "--kek-id", "first", "+", "hsm-info");
        assertThat(r.exit()).as(r.toString()).isZero();
        JsonNode all = JSON.readTree(r.stdout());
        assertThat(all.isArray()).isTrue();
        assertThat(all.size()).isEqualTo(2);
        assertThat(all.get(0).get("step").asString()).isEqualTo("gen-kek");
        assertThat(all.get(1).get("step").asString()).isEqualTo("hsm-info");

        Cli.Result failed = Cli.asm(t.env(), "run", "-o", "yaml", "gen-kek", "--kek-id", "ok", "+", "gen-kek", "--kek-id", "bad id", "+", "hsm-info");
        assertThat(failed.exit()).isEqualTo(2);
        JsonNode both = YAML.readTree(failed.stdout());
        assertThat(both.size()).as("the run stops at the failed step, its result last").isEqualTo(2);
        assertThat(both.get(1).get("ok").asBoolean()).isFalse();
        assertThat(both.get(1).get("exitCode").asInt()).isEqualTo(2);
    }

    @Test
    void sessionStatusNamesItselfNotTheStatusStep() {
        Cli.Result r = Cli.asm(Map.of(), tmp, "session", "status", "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(JSON.readTree(r.stdout()).get("step").asString()).isEqualTo("session status");
    }

    /** Every step and verb (all but run, warm-up, help and completion, whose --help is its own text). */
    static List<String> commands() {
        List<String> all = new ArrayList<>();
        CommandLine asm = Asm.commandLine();
        for (var e : asm.getSubcommands().entrySet()) {
            if (List.of("run", "warm-up", "help", "completion").contains(e.getKey())) continue;
            if (e.getValue().getSubcommands().isEmpty()) all.add(e.getKey());
            for (var sub : e.getValue().getSubcommands().entrySet())
                if (!sub.getValue().getCommandSpec().usageMessage().hidden()) all.add(e.getKey() + " " + sub.getKey());
        }
        return all;
    }

    @Test
    void everyStepsHelpEndsWithExamplesThatParse() {
        List<String> commands = commands();
        assertThat(commands).contains("gen-kek", "istiod-service", "status", "session status", "version");
        for (String command : commands) {
            String[] words = command.split(" ");
            CommandLine cl = Asm.commandLine(words);
            for (String w : words) cl = cl.getSubcommands().get(w);
            String help = cl.getUsageMessage(CommandLine.Help.Ansi.OFF);
            assertThat(help).as(command).contains("\nExamples:\n");
            List<String> examples = help.substring(help.indexOf("\nExamples:\n")).lines().filter(l -> l.startsWith("  asm ")).toList();
            assertThat(examples).as(command + " has an example").isNotEmpty();
            for (String example : examples) {
                assertThat(Usage.EXAMPLES.get(command)).as("%s: --help shows the table's line whole", command).contains(example.strip());
                String line = example.strip().replaceFirst("\\s+#.*$", "").replaceFirst("\\s*[|>].*$", "");
                List<String> args = new ArrayList<>(List.of(line.split("\\s+")));
                assertThat(args.remove(0)).isEqualTo("asm");
                assertThat(String.join(" ", args)).as(example).startsWith(command);
                try {
                    String[] a = args.toArray(String[]::new);
                    Asm.commandLine(a).parseArgs(a);
                } catch (CommandLine.ParameterException e) {
                    throw new AssertionError(command + ": the example `" + example.strip() + "` does not parse: " + e.getMessage(), e);
                }
            }
        }
    }

    @Test
    void aSecretsValuesNeverReachTheManifest() {
        ByteArrayOutputStream stdout = new ByteArrayOutputStream(), stderr = new ByteArrayOutputStream();
        Out out = new Out("upload-chain", Out.Format.text, true, new PrintStream(stdout, true, StandardCharsets.UTF_8),
                new PrintStream(stderr, true, StandardCharsets.UTF_8), false);
        out.manifestStep(true);
        Map<String, Object> secret = new LinkedHashMap<>();
        secret.put("apiVersion", "v1");
        secret.put("kind", "Secret");
        secret.put("metadata", Map.of("name", "s", "namespace", "n"));
        secret.put("data", Map.of("cert-chain.pem", "c2VjcmV0"));
        secret.put("stringData", Map.of("pin", "1234"));
        out.manifest(secret);
        out.manifest(Map.of("apiVersion", "v1", "kind", "ConfigMap", "metadata", Map.of("name", "c"), "data", Map.of("k", "visible")));
        out.change("create Secret n/s");
        out.finish(0, null);
        String printed = stdout.toString(StandardCharsets.UTF_8);
        assertThat(printed).doesNotContain("c2VjcmV0", "1234", "stringData", "would create").contains("cert-chain.pem", "visible", "\n---\n");
        assertThat(stderr.toString(StandardCharsets.UTF_8)).contains("would create Secret n/s");
        assertThat(YAML.readTree(printed.substring(0, printed.indexOf("---"))).get("data").get("cert-chain.pem").asString()).isEmpty();
    }
}
