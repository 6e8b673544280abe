package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import picocli.CommandLine;

/**
 * The verbs and flags operators know from kubectl and the Vault CLI: `asm version` and -V on
 * every step, `asm help <step>`, `asm completion bash|zsh`, and one spelling per option.
 */
class UsualVerbsTest {
    @TempDir Path tmp;

    static final String VERSION_LINES = String.join("\n", Version.lines()) + "\n";

    @Test
    void asmVersionSaysTheToolkitTheReleaseItInstallsAndTheJava() throws Exception {
        Cli.Result r = Cli.asm(Map.of(), tmp, "version");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout().lines().toList()).containsExactly("asm-hsm " + Version.TOOLKIT,
                "ASM 1.9.8-asm.6 (revision asm-198-6)", "Java " + Runtime.version() + " (" + System.getProperty("java.vendor") + ")");
        assertThat(Version.TOOLKIT).matches("\\d+\\.\\d+\\.\\d+");
        // the pom says the same version (Maven runs the tests; JBang runs the scripts)
        assertThat(Files.readString(Cli.repo().resolve("pom.xml")))
                .containsPattern("<artifactId>asm-hsm</artifactId>\\s*<version>" + Version.TOOLKIT.replace(".", "\\.") + "(-SNAPSHOT)?</version>");
        Cli.Result json = Cli.asm(Map.of(), tmp, "version", "--json");
        assertThat(json.exit()).as(json.toString()).isZero();
        JsonNode doc = JsonMapper.builder().build().readTree(json.stdout());
        assertThat(doc.get("step").asString()).isEqualTo("version");
        assertThat(doc.get("version").asString()).isEqualTo(Version.TOOLKIT);
        assertThat(doc.get("asmVersion").asString()).isEqualTo("1.9.8-asm.6");
        assertThat(doc.get("revision").asString()).isEqualTo("asm-198-6");
        assertThat(doc.get("java").asString()).isEqualTo(Runtime.version().toString());
    }

    /** -V and --version of asm, every step and every session subcommand print the lines of `asm version`. */
    @Test
    void dashVOnEveryCommandPrintsTheToolkitsVersion() {
        Deque<CommandLine> todo = new ArrayDeque<>(List.of(Asm.commandLine()));
        int checked = 0;
        while (!todo.isEmpty()) {
            CommandLine cl = todo.pop();
            todo.addAll(cl.getSubcommands().values());
            Object command = cl.getCommand();
            // run reads its words as steps, help is picocli's; hidden ones are not the operator's
            if (command instanceof AsmCommands.Run || command instanceof CommandLine.HelpCommand || cl.getCommandSpec().usageMessage().hidden()) continue;
            for (String flag : List.of("-V", "--version")) {
                StringWriter printed = new StringWriter();
                List<String> path = new java.util.ArrayList<>();
                for (CommandLine c = cl; c.getParent() != null; c = c.getParent()) path.add(0, c.getCommandName());
                path.add(flag);
                CommandLine top = Asm.commandLine(path.toArray(String[]::new));
                top.setOut(new PrintWriter(printed, true));
                int rc = top.execute(path.toArray(String[]::new));
                assertThat(rc).as(String.join(" ", path)).isZero();
                assertThat(printed.toString()).as(String.join(" ", path)).isEqualTo(VERSION_LINES);
            }
            checked++;
        }
        assertThat(checked).isGreaterThanOrEqualTo(LayoutTest.steps().size() + 4);   // + asm, version, session start|status|stop
        // and in a JVM of its own, as operators run it
        for (String[] args : new String[][] {{"gen-kek", "-V"}, {"fetch-release", "--version"}, {"-V"}}) {
            Cli.Result r = Cli.asm(Map.of(), tmp, args);
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).as(r.toString()).isEqualTo(VERSION_LINES);
        }
    }

    @Test
    void fetchReleasesOldVersionOptionNamesItsNewName() throws Exception {
        Cli.Result r = Cli.asm(Map.of(), tmp, "fetch-release", "--dir", tmp.toString(), "--version", "1.9.9-asm.1");
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stderr().strip().lines().toList()).containsExactly("error: Unmatched argument at index 4: '1.9.9-asm.1'",
                "  -> did you mean --asm-version 1.9.9-asm.1? see --help");
        assertThat(BadUsageTest.files(tmp)).isEmpty();
    }

    @Test
    void asmHelpStepIsTheStepsHelp() {
        Cli.Result help = Cli.asm(Map.of(), tmp, "help", "gen-kek");
        Cli.Result dashH = Cli.asm(Map.of(), tmp, "gen-kek", "--help");
        assertThat(help.exit()).as(help.toString()).isZero();
        assertThat(help.stdout()).contains("Usage: asm gen-kek").contains("--kek-id=ID").isEqualTo(dashH.stdout());
        Cli.Result top = Cli.asm(Map.of(), tmp, "help");
        assertThat(top.exit()).as(top.toString()).isZero();
        assertThat(top.stdout()).contains("Usage: asm").contains("  version ").contains("  completion ").contains("  gen-kek ");
    }

    /**
     * tests/install-completion (which tests/install runs) puts `asm` on the user's PATH and picocli's
     * completion script where bash-completion looks, no root needed; loaded in bash, it completes
     * steps and options as an operator types them.
     */
    @Test
    void theInstalledBashCompletionCompletesStepsAndOptions() throws Exception {
        Path bin = tmp.resolve("bin"), userDir = tmp.resolve("bash-completion");
        Cli.Result install = Cli.run(List.of(Cli.repo().resolve("tests/install-completion").toString(), bin.toString()),
                Map.of("ASM_COMMAND", String.join(" ", Cli.asmCommand()), "BASH_COMPLETION_USER_DIR", userDir.toString()), tmp, null);
        assertThat(install.exit()).as(install.toString()).isZero();
        Cli.Result version = Cli.run(List.of(bin.resolve("asm").toString(), "version"), Map.of(), tmp, null);
        assertThat(version.stdout()).as(version.toString()).isEqualTo(VERSION_LINES);
        Path script = userDir.resolve("completions/asm");
        Cli.Result bash = Cli.asm(Map.of(), tmp, "completion", "bash");
        assertThat(Files.readString(script)).isEqualTo(bash.stdout());
        assertThat(complete(script, "asm", "gen-")).containsExactly("gen-kek");
        assertThat(complete(script, "asm", "ver")).containsExactlyInAnyOrder("version", "verify-ca", "verify-mtls");
        assertThat(complete(script, "asm", "fetch-release", "--asm-")).containsExactly("--asm-version");
        assertThat(complete(script, "asm", "control-plane-prep", "--vault-c")).containsExactly("--vault-cacert");
        assertThat(complete(script, "asm", "completion", "")).containsExactlyInAnyOrder("bash", "zsh");
        assertThat(complete(script, "asm", "session", "st")).containsExactlyInAnyOrder("start", "status", "stop");
        assertThat(complete(script, "asm", "warm")).isEmpty();      // hidden
        // zsh reads the same script through bashcompinit
        Cli.Result zsh = Cli.asm(Map.of(), tmp, "completion", "zsh");
        assertThat(zsh.exit()).isZero();
        assertThat(zsh.stdout()).isEqualTo(bash.stdout()).contains("ZSH_VERSION").contains("bashcompinit");
    }

    /** What bash offers for the last word after `source script`, as its completion function fills COMPREPLY. */
    static List<String> complete(Path script, String... words) {
        StringBuilder array = new StringBuilder();
        for (String w : words) array.append('\'').append(w).append("' ");
        String line = String.join(" ", words);
        Cli.Result r = Cli.run(List.of("bash", "-c", "source \"$0\"; COMP_WORDS=(" + array + "); COMP_CWORD=" + (words.length - 1)
                + "; COMP_LINE='" + line + "'; COMP_POINT=" + line.length() + "; _complete_asm; printf '%s\\n' \"${COMPREPLY[@]}\"",
                script.toString()), Map.of(), null, null);
        assertThat(r.exit()).as(r.toString()).isZero();
        return r.stdout().lines().map(String::strip).filter(s -> !s.isEmpty()).toList();
    }

    /** On a terminal --help is in colour, unless NO_COLOR is set or TERM=dumb (script(1) gives the pseudo-terminal). */
    @Test
    void helpHasNoColourUnderNoColorOrADumbTerminal() {
        String help = String.join(" ", Cli.asmCommand("gen-kek", "--help"));
        for (Map<String, String> env : List.of(Cli.env("TERM", "xterm", "NO_COLOR", null), Cli.env("TERM", "dumb", "NO_COLOR", null),
                Cli.env("TERM", "xterm", "NO_COLOR", "1"))) {
            Cli.Result r = Cli.run(List.of("script", "-qec", help, "/dev/null"), env, tmp, null);
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).as(env.toString()).contains("--kek-id");
            if (env.get("TERM").equals("xterm") && env.get("NO_COLOR") == null) assertThat(r.stdout()).as(env.toString()).contains("\u001b[");
            else assertThat(r.stdout()).as(env.toString()).doesNotContain("\u001b");
        }
    }

    /** One spelling per concept, and each PIN file says whose PIN it is. */
    @Test
    void optionsAreSpelledAsTheEcosystemSpellsThem() {
        String prep = usage("control-plane-prep");
        assertThat(prep).contains("--vault-cacert=FILE").doesNotContain("--vault-ca=").doesNotContain("--vault-ca,");
        assertThat(usage("vault-verify")).contains("--vault-cacert=FILE");
        assertThat(usage("gen-kek")).contains("--p11-pin-file=FILE").contains("logs in to the HSM with");
        assertThat(usage("vault-setup")).contains("--pin-file=FILE").contains("to store in Vault")
                .contains("does not log in to the HSM");
        assertThat(usage("fetch-release")).contains("--asm-version=VERSION").contains("-V, --version");
    }

    static String usage(String step) {
        return Asm.commandLine(step).getSubcommands().get(step).getUsageMessage(CommandLine.Help.Ansi.OFF).replaceAll("\\s+", " ");
    }
}
