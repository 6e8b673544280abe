package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/** The project's shape: every step is a script, an `asm` subcommand and a catalog alias, and nothing is a stub. */
class LayoutTest {
    static List<String> steps() {
        try (Stream<Path> s = Files.list(Cli.repo().resolve("scripts"))) {
            List<String> names = new ArrayList<>();
            s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".java") && !n.equals("asm.java"))
                    .forEach(n -> names.add(n.substring(0, n.length() - 5)));
            names.sort(null);
            return names;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** Asm.COMMANDS's steps that are scripts of their own (scripts/NAME.java), in its order. */
    static List<String> scriptSteps() {
        return Asm.SUBCOMMANDS.stream().filter(n -> Files.isRegularFile(Cli.repo().resolve("scripts/" + n + ".java"))).toList();
    }

    @Test
    void everyScriptIsAnAsmSubcommandAndACatalogAlias() throws Exception {
        assertThat(steps()).hasSizeGreaterThanOrEqualTo(20);
        assertThat(new TreeSet<>(scriptSteps())).as("every script is in Asm.COMMANDS").containsExactlyElementsOf(steps());
        for (String name : Asm.SUBCOMMANDS) {
            if (scriptSteps().contains(name)) continue;
            // the others (run, session, version ...) are asm's own, written in lib/AsmCommands.java, or picocli's help
            Class<?> c = Asm.step(name).getClass();
            assertThat(c.getEnclosingClass() == AsmCommands.class || c == CommandLine.HelpCommand.class).as(name + " is asm's own").isTrue();
        }
        for (String step : steps()) {
            String src = Files.readString(Cli.repo().resolve("scripts/" + step + ".java"));
            assertThat(src).as(step).startsWith("///usr/bin/env jbang \"$0\" \"$@\" ; exit $?\n")
                    .contains("//SOURCES ../lib/*.java").contains("@Command(name = \"" + step + "\"");
            assertThat(src).as(step + " has -h/--help and -V/--version").contains("mixinStandardHelpOptions = true");
            assertThat(Files.isExecutable(Cli.repo().resolve("scripts/" + step + ".java"))).as(step + " executable").isTrue();
        }
    }

    /**
     * The README's layout tour names every class in lib/, and every class its lib/ entry names is
     * there: a class added, renamed or removed without the tour fails here.
     */
    @Test
    void readmeLayoutNamesEveryLibClass() throws Exception {
        String readme = Files.readString(Cli.repo().resolve("README.md"));
        Matcher block = Pattern.compile("(?s)## Layout\n.*?\nlib/(.*?)\nrunbooks/").matcher(readme);
        assertThat(block.find()).as("README's Layout block has a lib/ entry followed by runbooks/").isTrue();
        Set<String> named = new TreeSet<>();
        // class names as the tour writes them: CamelCase with a lower-case letter (not IDs, TTL or the prose's words)
        Matcher word = Pattern.compile("\\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*\\b").matcher(block.group(1));
        while (word.find()) named.add(word.group());
        Set<String> lib = new TreeSet<>();
        try (Stream<Path> s = Files.list(Cli.repo().resolve("lib"))) {
            s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".java")).forEach(n -> lib.add(n.substring(0, n.length() - 5)));
        }
        assertThat(lib).hasSizeGreaterThan(30);
        assertThat(named).as("classes the README's lib/ entry names").containsAll(lib);
        Set<String> words = new TreeSet<>(named);
        words.removeAll(lib);
        // what remains are the tour's prose words; each must be one, not a class that is gone
        assertThat(words).as("names in the lib/ entry that are no class in lib/").allMatch(w -> Set.of(
                "The", "Kubernetes", "Secrets", "Helm").contains(w));
    }

    /** JBang compiles `asm` from the scripts its //SOURCES line names: exactly the table's, in its order. */
    @Test
    void asmSourcesLineIsTheTablesSteps() throws Exception {
        String expected = "//SOURCES " + String.join(" ", scriptSteps().stream().map(n -> n + ".java").toList());
        List<String> lines = Files.readAllLines(Cli.repo().resolve("scripts/asm.java")).stream()
                .filter(l -> l.startsWith("//SOURCES ") && !l.equals("//SOURCES ../lib/*.java")).toList();
        assertThat(lines).as("scripts/asm.java's //SOURCES line, from Asm.COMMANDS").containsExactly(expected);
    }

    /** The catalog: asm, then one alias per script step, in the table's order, each naming its script. */
    @Test
    void catalogAliasesAreTheTablesSteps() throws Exception {
        JsonNode aliases = JsonMapper.builder().build().readTree(Files.readString(Cli.repo().resolve("jbang-catalog.json"))).get("aliases");
        List<String> expected = new ArrayList<>(List.of("asm"));
        expected.addAll(scriptSteps());
        assertThat(new ArrayList<>(aliases.propertyNames())).as("jbang-catalog.json's aliases, from Asm.COMMANDS").containsExactlyElementsOf(expected);
        for (String alias : expected) {
            assertThat(aliases.get(alias).get("script-ref").asString()).as(alias).isEqualTo("scripts/" + alias + ".java");
            assertThat(aliases.get(alias).get("description").asString()).as(alias).isNotBlank();
        }
    }

    /** asm adds only the subcommand it runs (see Asm.commandLine): each name must build that very one. */
    @Test
    void asmBuildsOnlyTheNamedStepUnderItsOwnName() {
        for (String name : Asm.SUBCOMMANDS) {
            CommandLine one = Asm.commandLine(name, "--help");
            if (Asm.NEED_ALL.contains(name)) {
                assertThat(one.getSubcommands().keySet()).as(name).containsExactlyElementsOf(Asm.SUBCOMMANDS);
                continue;
            }
            assertThat(one.getSubcommands()).as(name).containsOnlyKeys(name);
            assertThat(one.getSubcommands().get(name).getCommandSpec().name()).as(name).isEqualTo(name);
        }
        assertThat(Asm.commandLine("no-such-step").getSubcommands()).hasSize(Asm.SUBCOMMANDS.size());
        assertThat(Asm.commandLine().getSubcommands().keySet()).containsExactlyElementsOf(Asm.SUBCOMMANDS);
    }

    @Test
    void noStepIsAPlaceholder() throws Exception {
        for (String step : steps())
            assertThat(Files.readString(Cli.repo().resolve("scripts/" + step + ".java"))).as(step)
                    .doesNotContain("not implemented yet").doesNotContain("PLACEHOLDER");
    }

    /** JBang reads //DEPS, Maven reads the pom: the same versions, or tests prove nothing about what operators run. */
    @Test
    void jbangDepsMatchThePom() throws Exception {
        String pom = Files.readString(Cli.repo().resolve("pom.xml"));
        String deps = Files.readString(Cli.repo().resolve("lib/Step.java"));
        Matcher m = Pattern.compile("//DEPS ([^:\\s]+):([^:\\s]+):([^\\s]+)").matcher(deps);
        int n = 0;
        while (m.find()) {
            n++;
            String group = m.group(1), artifact = m.group(2), version = m.group(3);
            if (group.equals("io.fabric8")) {
                assertThat(pom).contains("<fabric8.version>" + version + "</fabric8.version>");
            } else if (group.startsWith("tools.jackson")) {
                assertThat(pom).contains("<jackson.version>" + version + "</jackson.version>");
            } else {
                assertThat(pom).as(group + ":" + artifact).containsPattern(
                        "<artifactId>" + Pattern.quote(artifact) + "</artifactId>\\s*<version>" + Pattern.quote(version) + "</version>");
            }
        }
        assertThat(n).isGreaterThanOrEqualTo(5);
    }
}
