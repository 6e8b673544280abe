package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * tests/jbang-launcher, the `jbang` that tests/install puts on PATH, keeps JBang's answer for
 * `jbang alias@catalog` and reuses it. Checked here with real JBang, a throwaway JBang home
 * (JBANG_DIR) and catalog: arguments pass through untouched, the kept answer is really used,
 * and any change to a source or the catalog makes JBang answer again.
 */
class JbangLauncherTest {
    @TempDir Path tmp;
    Path launcher;
    Path cache;
    Path catalogDir;
    Map<String, String> env = new HashMap<>();

    @BeforeEach
    void setUp() throws IOException {
        launcher = fromTemplate(tmp.resolve("jbang"));
        cache = tmp.resolve("launch-cache");
        catalogDir = tmp.resolve("catalog");
        Files.createDirectories(catalogDir);
        script("hi.java", "v1");
        catalog("hi.java");
        env.put("JBANG_DIR", tmp.resolve("jbang-home").toString());
        env.put("JBANG_LAUNCH_CACHE", cache.toString());
        Cli.Result add = run("catalog", "add", "--global", "--name", "t", catalogDir.resolve("jbang-catalog.json").toString());
        assertThat(add.exit()).as(add.toString()).isZero();
    }

    /** This checkout's launcher, with the JBang jar the installed one uses (tests/install put both there). */
    static Path fromTemplate(Path launcher) throws IOException {
        Path installed = Path.of(Cli.run(List.of("bash", "-c", "command -v jbang"), null, null, null).stdout().trim());
        String installedText = Files.readString(installed);
        String template = Files.readString(Cli.repo().resolve("tests/jbang-launcher"));
        Files.writeString(launcher, template.replace("@JAR@", value(installedText, "jar"))
                .replace("@JSA@", value(installedText, "jsa")).replace("@VERSION@", "test"));
        assertThat(launcher.toFile().setExecutable(true)).isTrue();
        return launcher;
    }

    static String value(String launcherText, String name) {
        Matcher m = Pattern.compile("(?m)^" + name + "=\"([^\"]+)\"$").matcher(launcherText);
        assertThat(m.find()).as(name + "= in the installed launcher").isTrue();
        return m.group(1);
    }

    void script(String file, String version) throws IOException {
        Files.writeString(catalogDir.resolve(file), "class hi { public static void main(String... a) {\n"
                + "  System.out.println(\"" + version + " \" + System.getProperty(\"marker\", \"-\") + \" \" + String.join(\"|\", a)); } }\n");
    }

    void catalog(String scriptRef) throws IOException {
        Files.writeString(catalogDir.resolve("jbang-catalog.json"),
                "{\"aliases\": {\"hi\": {\"script-ref\": \"" + scriptRef + "\"}}}\n");
    }

    Cli.Result run(String... args) {
        List<String> cmd = new ArrayList<>(List.of(launcher.toString()));
        cmd.addAll(List.of(args));
        return Cli.run(cmd, env, tmp, null);
    }

    List<Path> entries(String suffix) throws IOException {
        if (!Files.isDirectory(cache)) return List.of();
        try (Stream<Path> s = Files.list(cache)) {
            return s.filter(p -> p.toString().endsWith(suffix)).toList();
        }
    }

    /** Marks the kept command: a run that prints the marker ran from it, not from JBang's fresh answer. */
    void markKeptCommand() throws IOException {
        List<Path> cmds = entries(".cmd");
        assertThat(cmds).hasSize(1);
        String cmd = Files.readString(cmds.get(0));
        assertThat(cmd).contains(" hi");
        Files.writeString(cmds.get(0), cmd.replaceFirst(" hi$", " -Dmarker=kept hi"));
    }

    @Test
    void keepsJBangsAnswerAndPassesArgumentsThrough() throws IOException {
        Cli.Result first = run("hi@t", "a", "b c", "d\"e", "$HOME", "*");
        assertThat(first.exit()).as(first.toString()).isZero();
        assertThat(first.stdout()).isEqualTo("v1 - a|b c|d\"e|$HOME|*\n");
        assertThat(entries(".cmd")).hasSize(1);
        assertThat(Files.readString(entries(".watch").get(0))).contains(catalogDir.resolve("hi.java").toString())
                .contains(catalogDir.resolve("jbang-catalog.json").toString());

        markKeptCommand();
        Cli.Result kept = run("hi@t", "x y");
        assertThat(kept.exit()).as(kept.toString()).isZero();
        assertThat(kept.stdout()).isEqualTo("v1 kept x y\n");
        assertThat(run("--quiet", "hi@t").stdout()).isEqualTo("v1 kept \n");
    }

    @Test
    void aChangedSourceOrCatalogIsSeen() throws IOException, InterruptedException {
        assertThat(run("hi@t").stdout()).isEqualTo("v1 - \n");
        markKeptCommand();
        assertThat(run("hi@t").stdout()).isEqualTo("v1 kept \n");

        Thread.sleep(20);
        script("hi.java", "v2");
        assertThat(run("hi@t").stdout()).as("edited source").isEqualTo("v2 - \n");

        markKeptCommand();
        Thread.sleep(20);
        script("other.java", "v3");
        catalog("other.java");
        assertThat(run("hi@t").stdout()).as("alias pointed elsewhere").isEqualTo("v3 - \n");
    }

    /**
     * A //CDS build: its recording run lists its classes, and the kept command line names a static
     * archive dumped from that list (Java 17 leaves picocli's old classes out of JBang's dynamic one).
     */
    @Test
    void aClassArchiveBuildGetsAStaticArchive() throws IOException {
        Files.writeString(catalogDir.resolve("hi.java"), "//CDS\n" + Files.readString(catalogDir.resolve("hi.java")));
        Cli.Result recording = run("hi@t", "r");
        assertThat(recording.exit()).as(recording.toString()).isZero();
        assertThat(recording.stdout()).isEqualTo("v1 - r\n");
        assertThat(entries(".cmd")).as("a recording run is not kept").isEmpty();
        Path jbangArchive;
        try (Stream<Path> s = Files.walk(tmp.resolve("jbang-home"))) {
            jbangArchive = s.filter(p -> p.getFileName().toString().equals("hi.jsa")).findFirst().orElseThrow();
        }
        Path classes = jbangArchive.resolveSibling("hi.classes");
        assertThat(Files.readAllLines(classes)).as("the recording run's class list").contains("hi");

        Cli.Result kept = run("hi@t", "k");
        assertThat(kept.stdout()).isEqualTo("v1 - k\n");
        Path staticArchive = jbangArchive.resolveSibling("hi.static.jsa");
        assertThat(staticArchive).isNotEmptyFile();
        String cmd = Files.readString(entries(".cmd").get(0));
        assertThat(cmd).contains("-XX:SharedArchiveFile=" + staticArchive).doesNotContain(jbangArchive + " ");

        // the kept command line, made to fail unless the archive maps, shows the script's class from it
        Files.writeString(entries(".cmd").get(0), cmd.replaceFirst(" hi$", " -Xshare:on -Xlog:class+load=info:stdout hi"));
        Cli.Result shared = run("hi@t", "s");
        assertThat(shared.exit()).as(shared.toString()).isZero();
        assertThat(shared.stdout()).contains("hi source: shared objects file").contains("\nv1 - s\n");
    }

    @Test
    void offAndFailuresGoThroughJBangOnly() {
        env.put("JBANG_LAUNCH_CACHE", "off");
        Cli.Result off = run("hi@t", "z");
        assertThat(off.stdout()).isEqualTo("v1 - z\n");
        assertThat(cache).doesNotExist();

        env.put("JBANG_LAUNCH_CACHE", cache.toString());
        Cli.Result missing = run("nope@t");
        assertThat(missing.exit()).isNotZero();
        assertThat(missing.stderr()).contains("nope");
        assertThat(missing.stderr().split("nope", -1)).as("JBang's error, once:\n" + missing.stderr()).hasSize(2);
        assertThat(cache).doesNotExist();
    }
}
