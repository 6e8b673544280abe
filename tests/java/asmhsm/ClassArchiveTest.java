package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * JBang's //CDS archive is recorded by the first run after a build, whatever step that is, and kept
 * until the next build. A run that records it also does the warm-up's work after the step, so the
 * archive serves every step, not only the one that happened to run first; the step's own output
 * and exit code stay as they are. Run as JBang runs asm: a jar (CDS takes no class directories).
 */
class ClassArchiveTest {
    @TempDir Path tmp;

    @Test
    void aRecordingRunOfOneStepArchivesWhatTheClusterStepsLoad() throws Exception {
        String cp = jarClasspath();
        Path jsa = tmp.resolve("asm.jsa");
        Cli.Result plain = Cli.run(java(cp, List.of(), "version"), Map.of(), tmp, null);
        Cli.Result recording = Cli.run(java(cp, List.of("-XX:ArchiveClassesAtExit=" + jsa), "version"), Map.of(), tmp, null);
        assertThat(recording.exit()).as(recording.toString()).isZero();
        assertThat(recording.stdout()).as("the step's output is its own").isEqualTo(plain.stdout());
        assertThat(Files.size(jsa)).isPositive();

        // a warm-up run on that archive: the classes the cluster and Vault steps load come from it, not the jars
        Path log = tmp.resolve("class-load.log");
        Cli.Result using = Cli.run(java(cp, List.of("-XX:SharedArchiveFile=" + jsa, "-Xlog:class+load=info:file=" + log), "warm-up"),
                Map.of(), tmp, null);
        assertThat(using.exit()).as(using.toString()).isZero();
        List<String> lines = Files.readAllLines(log);
        for (String pkg : List.of("io.fabric8.kubernetes.client.", "tools.jackson.databind.", "io.github.jopenlibs.vault.")) {
            long fromArchive = lines.stream().filter(l -> l.contains(" " + pkg) && l.contains("shared objects file (top)")).count();
            long fromJars = lines.stream().filter(l -> l.contains(" " + pkg) && l.matches(".* source: (jar:)?file:.*")).count();
            assertThat(fromArchive).as(pkg + " classes from the archive (" + fromJars + " from jars)").isGreaterThan(20)
                    .isGreaterThan(9 * fromJars);
        }
        try (Stream<Path> left = Files.list(Path.of(System.getProperty("java.io.tmpdir")))) {
            // the warm-up's own folder is gone (it names no other session's: only one is made per run, and deleted)
            assertThat(left.filter(p -> p.getFileName().toString().startsWith("asm-warm-up"))
                    .filter(p -> modifiedAfter(p, jsa))).isEmpty();
        }
    }

    /** A run that is not recording adds nothing: `version` on its own loads no Kubernetes client. */
    @Test
    void anOrdinaryRunDoesNoWarmUp() throws Exception {
        String cp = jarClasspath();
        Path log = tmp.resolve("class-load.log");
        Cli.Result r = Cli.run(java(cp, List.of("-Xlog:class+load=info:file=" + log), "version"), Map.of(), tmp, null);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(Files.readString(log)).contains("asmhsm.Asm ").doesNotContain("io.fabric8.kubernetes.client.");
    }

    private static boolean modifiedAfter(Path p, Path than) {
        try {
            return Files.getLastModifiedTime(p).compareTo(Files.getLastModifiedTime(than)) >= 0;
        } catch (IOException e) {
            return false;
        }
    }

    private List<String> java(String cp, List<String> vmOptions, String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xlog:disable", "-Xlog:all=error:stderr",
                "--add-exports=jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED"));
        cmd.addAll(vmOptions);
        cmd.addAll(List.of("-cp", cp, "asmhsm.Asm"));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** The main classes as one jar, and the dependency jars: the class path as JBang gives it. */
    private String jarClasspath() throws IOException {
        List<String> entries = new ArrayList<>();
        Path jar = tmp.resolve("asm.jar");
        for (String e : Cli.classpath().split(java.io.File.pathSeparator)) {
            Path p = Path.of(e);
            if (Files.isRegularFile(p.resolve("asmhsm/Asm.class"))) jarUp(p, jar);
            else if (Files.isRegularFile(p) && e.endsWith(".jar")) entries.add(e);
        }
        assertThat(jar).as("the main classes are on the test class path").exists();
        entries.add(0, jar.toString());
        return String.join(java.io.File.pathSeparator, entries);
    }

    private static void jarUp(Path classes, Path jar) throws IOException {
        try (JarOutputStream out = new JarOutputStream(Files.newOutputStream(jar)); Stream<Path> files = Files.walk(classes)) {
            for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
                out.putNextEntry(new JarEntry(classes.relativize(f).toString().replace('\\', '/')));
                Files.copy(f, out);
                out.closeEntry();
            }
        }
    }
}
