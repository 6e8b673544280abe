package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The runbooks against the toolkit itself: every `jbang asm@org` command in them (run or not,
 * English or Spanish) parses with the steps' picocli model, every step has a section, every
 * block carries a mark the runbook test understands, and no secret is typed into a command.
 */
class RunbookLintTest {
    static final List<String> LANGUAGES = List.of("", "es");

    static List<Runbook.Block> blocks(String language) {
        List<Runbook.Block> all = new ArrayList<>();
        for (Runbook r : Runbook.all(language)) all.addAll(r.blocks);
        return all;
    }

    @Test
    void everyAsmCommandParsesWithTheStepsOwnOptions() {
        List<String> problems = new ArrayList<>();
        int commands = 0;
        for (String language : LANGUAGES)
            for (Runbook.Block b : blocks(language)) {
                if (!b.shell()) continue;
                for (Runbook.Command c : b.commands()) {
                    commands++;
                    String p = Runbook.parseProblem(c);
                    if (p != null) problems.add(c.where() + ": " + c + "\n    " + p);
                }
            }
        assertThat(problems).as("commands the toolkit would refuse").isEmpty();
        assertThat(commands).isGreaterThan(2 * LayoutTest.steps().size());
    }

    /**
     * Options the text tells the reader to use ("pass `--replace`", "`vault-setup ... --rewrite-reviewer-jwt`")
     * exist too: on the step the span names, else on a step the section's heading names.
     */
    @Test
    void optionsNamedInTheTextExist() {
        var asm = Asm.commandLine().getSubcommands();
        List<String> problems = new ArrayList<>();
        for (String language : LANGUAGES)
            for (Runbook r : Runbook.all(language)) {
                List<String> fileSteps = new ArrayList<>(), sectionSteps = List.of();
                for (String h : r.headings) {
                    Matcher m = Pattern.compile("`([a-z0-9-]+)[^`]*`").matcher(h);
                    while (m.find()) if (asm.containsKey(m.group(1))) fileSteps.add(m.group(1));
                }
                boolean fenced = false;
                String[] lines = r.text.split("\n");
                for (int i = 0; i < lines.length; i++) {
                    String line = lines[i];
                    if (line.startsWith("```")) { fenced = !fenced; continue; }
                    if (fenced) continue;
                    if (line.startsWith("#")) {
                        sectionSteps = new ArrayList<>();
                        Matcher m = Pattern.compile("`([a-z0-9-]+)[^`]*`").matcher(line);
                        while (m.find()) if (asm.containsKey(m.group(1))) sectionSteps.add(m.group(1));
                        continue;
                    }
                    Matcher span = Pattern.compile("`([^`]+)`").matcher(line);
                    while (span.find()) {
                        String[] words = span.group(1).split("\\s+");
                        if (!asm.containsKey(words[0]) && !words[0].startsWith("-")) continue; // another tool's command
                        List<String> steps = asm.containsKey(words[0]) ? List.of(words[0]) : sectionSteps.isEmpty() ? fileSteps : sectionSteps;
                        for (String w : words) {
                            if (!w.matches("--?[a-z][a-z0-9-]*(=.*)?")) continue;
                            String option = w.replaceFirst("=.*", "");
                            if (steps.stream().noneMatch(st -> asm.get(st).getCommandSpec().findOption(option) != null))
                                problems.add(r.file + ":" + (i + 1) + ": `" + span.group(1) + "`: " + option + " is not an option of "
                                        + String.join(" or ", steps));
                        }
                    }
                }
            }
        assertThat(problems).isEmpty();
    }

    /** A heading that names the step in backticks, e.g. "## Generate the KEK: `gen-kek`". */
    @Test
    void everyStepHasARunbookSectionThatRunsIt() {
        for (String language : LANGUAGES) {
            Set<String> sections = new TreeSet<>(), used = new TreeSet<>();
            for (Runbook r : Runbook.all(language)) {
                for (String h : r.headings) {
                    Matcher m = Pattern.compile("`([a-z0-9-]+)[^`]*`").matcher(h);
                    while (m.find()) sections.add(m.group(1));
                }
                for (Runbook.Block b : r.blocks) if (b.shell()) b.commands().forEach(c -> used.add(c.step()));
            }
            assertThat(sections).as("steps with a section in runbooks/" + language).containsAll(LayoutTest.steps());
            assertThat(used).as("steps with a command in runbooks/" + language).containsAll(LayoutTest.steps());
        }
    }

    @Test
    void everyShellBlockIsMarkedAndEveryOutputFollowsACommand() {
        List<String> problems = new ArrayList<>();
        for (String language : LANGUAGES)
            for (Runbook r : Runbook.all(language))
                for (int i = 0; i < r.blocks.size(); i++) {
                    Runbook.Block b = r.blocks.get(i);
                    if (b.lang().equals("sh") || b.lang().equals("bash") || b.lang().equals("shell") || b.lang().isEmpty()) {
                        if (!b.lang().equals("sh"))
                            problems.add(b.where() + ": shell blocks are ```sh <mark>, not ```" + b.info());
                        else if (!Set.of(Runbook.RUN, Runbook.CLUSTER_ONLY, Runbook.MANUAL).contains(b.mark()))
                            problems.add(b.where() + ": ```sh needs a mark: run, cluster-only reason=\"...\" or manual reason=\"...\" (has '" + b.info() + "')");
                        else if (b.run() != (b.reason() == null))
                            problems.add(b.where() + ": " + (b.run() ? "a run block has no reason" : "a " + b.mark() + " block needs reason=\"...\""));
                    } else if (b.lang().equals("text") && b.mark() != null && !b.output()) {
                        problems.add(b.where() + ": unknown mark in ```" + b.info());
                    } else if (b.output() && (i == 0 || !r.blocks.get(i - 1).shell())) {
                        problems.add(b.where() + ": ```text output must follow the ```sh block whose output it shows");
                    }
                }
        assertThat(problems).isEmpty();
    }

    /** PINs, keys and tokens are read from files: no literal secret in a command, no token typed in. */
    @Test
    void noSecretIsTypedIntoACommand() {
        Pattern literalSecret = Pattern.compile("(?i)\\b(VAULT_TOKEN|[A-Z_]*PIN|[A-Z_]*PASSWORD|[A-Z_]*JWT[A-Z_]*)=(?![\"']?\\$)(\\S+)");
        List<String> problems = new ArrayList<>();
        for (String language : LANGUAGES)
            for (Runbook.Block b : blocks(language)) {
                if (!b.shell()) continue;
                Matcher m = literalSecret.matcher(b.text());
                while (m.find()) if (!m.group(1).toUpperCase().endsWith("_FILE")) problems.add(b.where() + ": " + m.group());
                if (b.text().matches("(?s).*\\bvault login[ \\t]+[^\\s-].*"))
                    problems.add(b.where() + ": a Vault token typed on the command line");
                // pkcs11-tool's --pin env:NAME reads the PIN from the environment; any other value is the PIN typed in
                Matcher pin = Pattern.compile("--(so-)?pin[ =](?!env:)\\S*").matcher(b.text());
                while (pin.find()) problems.add(b.where() + ": shows or types a secret: " + pin.group());
                for (String forbidden : List.of("echo $VAULT_SA_JWT_TOKEN", "cat \"${CLUSTER_SUFFIX}-tokenreview_jwt\"",
                        "vault kv get"))
                    if (b.text().contains(forbidden)) problems.add(b.where() + ": shows or types a secret: " + forbidden);
            }
        assertThat(problems).isEmpty();
    }

    /** The index links every runbook of its language in the guide's order, and documents the marks. */
    @Test
    void indexLinksTheRunbooksInTheGuidesOrder() throws Exception {
        for (String language : LANGUAGES) {
            String index = Files.readString((language.isEmpty() ? Runbook.dir() : Runbook.dir().resolve(language)).resolve("README.md"));
            int last = -1;
            for (String f : Runbook.FILES) {
                int at = index.indexOf("](" + f + ")");
                assertThat(at).as("runbooks/%s README.md links %s after the previous one", language, f).isGreaterThan(last);
                last = at;
            }
            for (String mark : List.of("```sh run", "```sh cluster-only reason=", "```sh manual reason=", "```text output"))
                assertThat(index).as("runbooks/%s README.md explains %s", language, mark).contains(mark);
        }
    }

    /** The checks above can fail: a made-up runbook with each kind of mistake. */
    @Test
    void theLintCatchesMistakes() {
        Runbook r = Runbook.parse("bad.md", String.join("\n",
                "# Bad", "```sh run",
                "jbang asm@org gen-kek --kek-name x",
                "jbang asm@org no-such-step",
                "jbang asm@org upload-chain",
                "jbang asm@org external-ip --mode sideways --ip \"$INGRESS_IP\"",
                "jbang asm@org decrypt-csr -f a.json --from-secret",
                "jbang asm@org vault-setup --client-cert \"$C\" --client-key \"$K\" \\",
                "  --server-cert \"$S\" --pin-file=\"$P11_PIN_FILE\"",
                "```", "```sh",
                "echo unmarked", "```"));
        List<String> problems = new ArrayList<>();
        for (Runbook.Command c : r.blocks.get(0).commands()) problems.add(c.step() + ": " + Runbook.parseProblem(c));
        assertThat(problems).hasSize(6);
        assertThat(problems.get(0)).contains("Unknown option").contains("'--kek-name'");
        assertThat(problems.get(1)).contains("no asm subcommand 'no-such-step'");
        assertThat(problems.get(2)).contains("Missing required option: '--file=CHAIN_PEM'");
        assertThat(problems.get(3)).contains("Invalid value for option '--mode'").contains("sideways");
        assertThat(problems.get(4)).contains("mutually exclusive");
        assertThat(problems.get(5)).isEqualTo("vault-setup: null"); // a continued line and --opt=$VALUE parse
        assertThat(r.blocks.get(1).mark()).isNull();
    }

    @Test
    void shellWordsAreSplitAsTheShellSplitsThem() {
        List<Runbook.Command> cs = Runbook.commands(String.join("\n",
                "export KEK_ID=${KEK_ID:-$(jbang asm@org gen-kek | tail -n 1)}",
                "P11_TOKEN=x jbang asm@org hsm-info --json 2>&1 > out.json # a comment: jbang asm@org",
                "kubectl get x && jbang asm@org sign-csr --csr 'a b.pem' --root-cert \"$ROOT_CERT\"; echo done"), "t");
        assertThat(cs).extracting(Runbook.Command::step).containsExactly("gen-kek", "hsm-info", "sign-csr");
        assertThat(cs.get(0).args()).isEmpty();
        assertThat(cs.get(1).args()).containsExactly("--json");
        assertThat(cs.get(2).args()).containsExactly("--csr", "a b.pem", "--root-cert", "$ROOT_CERT");
        assertThat(cs.get(2).dynamic()).containsExactly(false, false, false, true);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Runbook.commands("X=\"$(jbang asm@org gen-kek)\"", "t"))
                .hasMessageContaining("outside \"$(...)\"");
    }

    @Test
    void expectedOutputIsMatchedLineByLine() {
        String printed = "created Namespace vault\r\u001b[Kwaiting 3s\rwrote c1/c1-k8s_addr\nPORT NAME    PORT  NODEPORT\n";
        assertThat(RunbookTest.outputMismatch("wrote <suffix>/<suffix>-k8s_addr\n...\nPORT NAME <...> NODEPORT", printed)).isNull();
        assertThat(RunbookTest.outputMismatch("created Namespace vault", printed)).isEqualTo("not printed: created Namespace vault");
        assertThat(RunbookTest.outputMismatch("wrote c1/c1-k8s_cert", printed)).isNotNull();
        assertThat(RunbookTest.outputMismatch("PORT NAME <...>\nPORT NAME <...>", printed)).as("one printed line per expected line").isNotNull();
    }
}
