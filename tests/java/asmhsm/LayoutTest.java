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

    @Test
    void everyScriptIsAnAsmSubcommandAndACatalogAlias() throws Exception {
        Set<String> subcommands = new TreeSet<>(Asm.commandLine().getSubcommands().keySet());
        subcommands.remove("run"); // runs several steps in one process; not a step of its own
        subcommands.remove("warm-up"); // hidden: loads the classes once for the CDS archive
        subcommands.remove("session"); // keeps a warm JVM for the other subcommands; not a step of its own
        String catalog = Files.readString(Cli.repo().resolve("jbang-catalog.json"));
        assertThat(steps()).hasSizeGreaterThanOrEqualTo(20);
        for (String step : steps()) {
            assertThat(subcommands).as("asm subcommand " + step).contains(step);
            assertThat(catalog).as("catalog alias " + step).contains("\"" + step + "\": {")
                    .contains("\"script-ref\": \"scripts/" + step + ".java\"");
            String src = Files.readString(Cli.repo().resolve("scripts/" + step + ".java"));
            assertThat(src).as(step).startsWith("///usr/bin/env jbang \"$0\" \"$@\" ; exit $?\n")
                    .contains("//SOURCES ../lib/*.java").contains("@Command(name = \"" + step + "\"");
            // the standard help options, or (fetch-release, whose --version is the release's) an explicit --help
            assertThat(src.contains("mixinStandardHelpOptions = true") || src.contains("usageHelp = true")).as(step + " has --help").isTrue();
            assertThat(Files.isExecutable(Cli.repo().resolve("scripts/" + step + ".java"))).as(step + " executable").isTrue();
        }
        assertThat(new TreeSet<>(subcommands)).containsExactlyElementsOf(new TreeSet<>(steps()));
    }

    /** asm adds only the step it runs (see Asm.commandLine): each name must build that very step. */
    @Test
    void asmBuildsOnlyTheNamedStepUnderItsOwnName() {
        for (String name : Asm.STEPS) {
            CommandLine one = Asm.commandLine(name, "--help");
            assertThat(one.getSubcommands()).as(name).containsOnlyKeys(name);
            assertThat(one.getSubcommands().get(name).getCommandSpec().name()).as(name).isEqualTo(name);
        }
        assertThat(Asm.commandLine("no-such-step").getSubcommands()).hasSize(Asm.STEPS.size());
        assertThat(Asm.commandLine().getSubcommands().keySet()).containsExactlyElementsOf(Asm.STEPS);
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
