package asmhsm;

import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.json;
import static org.assertj.core.api.Assertions.assertThat;

import tools.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * `asm session` reached through tests/jbang-launcher with no JVM on the caller's side
 * (lib/SessionPipe.java): the launcher as tests/install makes it, real JBang, this checkout's
 * catalog, the lab. A call through the pipe answers as the caller's own JVM would (lines, exit
 * codes, files, Ctrl-C); a call the session must not take (another folder or environment) and a
 * session that was killed leave the call to its own JVM.
 */
@ExtendWith(LabExtension.class)
class SessionPipeTest {
    @TempDir
    Path tmp;
    Path work;
    Path sessions;
    Path launcher;
    String alias;
    Map<String, String> env;

    @BeforeEach
    void setUp() throws IOException {
        work = Files.createDirectories(tmp.resolve("work"));
        sessions = Files.createDirectories(tmp.resolve("sessions"), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        launcher = JbangLauncherTest.fromTemplate(tmp.resolve("jbang"));
        alias = "asm@" + Cli.repo().resolve("jbang-catalog.json");
    }

    @AfterEach
    void stop() {
        if (env != null) launch("session", "stop");
    }

    private List<String> command(String... args) {
        List<String> cmd = new ArrayList<>(List.of(launcher.toString(), alias));
        cmd.addAll(List.of(args));
        return cmd;
    }

    private Cli.Result launch(String... args) {
        return Cli.run(command(args), env, work, null);
    }

    private Cli.Running started(String... args) {
        return Cli.start(command(args), env, work, tmp.resolve("outputs"));
    }

    private JsonNode status() {
        Cli.Result s = launch("session", "status", "--json");
        assertThat(s.exit()).as(s.toString()).isZero();
        try {
            ResultSchemaTest.valid(s, "session status");      // with its pipe field too
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        return json(s);
    }

    /** Starts the session through the launcher (after the two runs that keep JBang's answer); its status. */
    private JsonNode startSession(Lab lab) {
        env = env(lab, "ASM_SESSION_DIR", sessions.toString(), "JBANG_LAUNCH_CACHE", tmp.resolve("launch-cache").toString());
        for (int i = 0; i < 2; i++) {
            Cli.Result v = launch("version");
            assertThat(v.exit()).as(v.toString()).isZero();
        }
        Cli.Result start = launch("session", "start", "--idle", "10m");
        assertThat(start.exit()).as(start.toString()).isZero();
        return status();
    }

    private static String[] prep(String ns, String... more) {
        List<String> a = new ArrayList<>(List.of("k8s-vault-prep", "--namespace", ns, "--binding", "tokenreview-" + ns, "--cluster-suffix", "c1"));
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    private static long pipeCalls(Path log) throws IOException {
        return Files.readAllLines(log).stream().filter(l -> l.endsWith("(launcher's pipe)")).count();
    }

    private List<Path> callFolders() throws IOException {
        try (var files = Files.list(sessions)) {
            return files.filter(f -> f.getFileName().toString().startsWith("call.")).toList();
        }
    }

    @Test
    void callsThroughTheLauncherAreAnsweredOverThePipeAsTheirOwnJvmWould(Lab lab) throws Exception {
        // left by a caller killed before it wrote its request (pid 999999999 is none): removed at the start
        Path stale = Files.createDirectories(sessions.resolve("call.999999999.AbCdEf"));
        Files.writeString(stale.resolve("args"), "1\0version\0");
        JsonNode up = startSession(lab);
        assertThat(stale).doesNotExist();
        Path pipe = Path.of(up.get("pipe").asText());
        Path log = Session.log(Path.of(up.get("socket").asText()));
        assertThat(pipe.getParent()).isEqualTo(sessions);
        assertThat(Files.isRegularFile(pipe) || Files.isDirectory(pipe)).as("a named pipe").isFalse();
        assertThat(Files.getPosixFilePermissions(pipe)).isEqualTo(PosixFilePermissions.fromString("rw-------"));

        String ns = "pipe-" + lab.freshMount();
        Cli.Result first = launch(prep(ns));
        assertThat(first.exit()).as(first.toString()).isZero();
        assertThat(first.stdout()).contains("created Namespace " + ns, "wrote c1/c1-tokenreview_jwt (mode 0600)");
        assertThat(first.stderr()).doesNotContain("created Namespace");
        K8sVaultPrepTest.checkClusterAndFiles(lab, ns, work.resolve("c1"));
        assertThat(Files.getPosixFilePermissions(work.resolve("c1/c1-tokenreview_jwt"))).isEqualTo(PosixFilePermissions.fromString("rw-------"));
        Cli.Result again = launch(prep(ns, "--json"));
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(json(again).get("changed").asBoolean()).isFalse();

        // failures keep their exit codes, and their lines stay on stderr
        Cli.Result bad = launch("k8s-vault-prep", "--cluster-suffix", "c1", "--no-such-option");
        assertThat(bad.exit()).as(bad.toString()).isEqualTo(2);
        assertThat(bad.stderr()).contains("--no-such-option");
        assertThat(bad.stdout()).doesNotContain("--no-such-option");
        Cli.Result failed = launch("istiod-service", "--namespace", "no-such-ns-" + ns);
        assertThat(failed.exit()).as(failed.toString()).isEqualTo(1);
        assertThat(failed.stderr()).startsWith("error: namespace no-such-ns-" + ns + " does not exist");
        // stdout and stderr one file (2>&1, a terminal): the lines in the order the step wrote them
        Cli.Result merged = Cli.run(List.of("bash", "-c", "\"$0\" \"$1\" istiod-service --namespace \"$2\" 2>&1",
                launcher.toString(), alias, "no-such-ns-" + ns), env, work, null);
        assertThat(merged.exit()).as(merged.toString()).isEqualTo(1);
        assertThat(merged.stdout()).containsSubsequence("acting on cluster", "error: namespace no-such-ns-" + ns, "-> run control-plane-prep first");
        assertThat(pipeCalls(log)).as(Files.readString(log)).isEqualTo(5);
        assertThat(status().get("served").asLong()).isEqualTo(5);
        assertThat(callFolders()).as("each caller removes its folder").isEmpty();

        // another variable, another folder: not the session's call; the step runs in its own JVM, and right
        Map<String, String> changed = new HashMap<>(env);
        changed.put("CLUSTER_SUFFIX", "c9");
        Cli.Result otherEnv = Cli.run(command("k8s-vault-prep", "--namespace", ns, "--binding", "tokenreview-" + ns), changed, work, null);
        assertThat(otherEnv.exit()).as(otherEnv.toString()).isZero();
        assertThat(work.resolve("c9/c9-tokenreview_jwt")).exists();
        Path elsewhere = Files.createDirectories(tmp.resolve("elsewhere"));
        Cli.Result there = Cli.run(command(prep(ns)), env, elsewhere, null);
        assertThat(there.exit()).as(there.toString()).isZero();
        assertThat(elsewhere.resolve("c1/c1-tokenreview_jwt")).exists();
        assertThat(status().get("served").asLong()).as("neither call went to the session").isEqualTo(5);

        Cli.Result stop = launch("session", "stop");
        assertThat(stop.stdout()).contains("stopped the session");
        Cli.waitFor("the pipe gone with the session", () -> !Files.exists(pipe));
    }

    @Test
    void ctrlCOrAGoneCallerStopsTheStepAndAKilledSessionIsPassedBy(Lab lab) throws Exception {
        JsonNode up = startSession(lab);
        Path pipe = Path.of(up.get("pipe").asText());
        Path log = Session.log(Path.of(up.get("socket").asText()));
        String ns = lab.freshNamespace();      // no istiod there: --wait polls until it is stopped

        Cli.Running caller = started("istiod-status", "-n", ns, "--wait", "--timeout", "10m");
        Cli.waitFor("the step running in the session", () -> caller.stderrSoFar().contains("istiod"));
        caller.signal("INT");
        Cli.Result r = caller.await();
        assertThat(r.exit()).as(r.toString()).isEqualTo(130);
        assertThat(r.stderr()).contains("error: interrupted by SIGINT; nothing was changed");
        assertThat(Files.readString(log)).contains("istiod-status exit 130");

        // SIGTERM to the caller's whole process group (timeout does that): the step's answer still comes through
        Cli.Result timedOut = Cli.run(List.of("timeout", "-s", "TERM", "5", launcher.toString(), alias,
                "istiod-status", "-n", ns, "--wait", "--timeout", "10m"), env, work, null);
        assertThat(timedOut.exit()).as(timedOut.toString()).isEqualTo(124);
        assertThat(timedOut.stderr()).contains("error: interrupted by SIGTERM; nothing was changed");

        // the session stuck (stopped here): the same signal sent twice at once is one; a second one later ends the caller
        long sessionPid = status().get("pid").asLong();
        Cli.Running stuck = started("istiod-status", "-n", ns, "--wait", "--timeout", "10m");
        Cli.waitFor("the step running in the session", () -> stuck.stderrSoFar().contains("istiod"));
        Cli.kill("STOP", sessionPid);
        try {
            stuck.signalTwiceAtOnce("TERM");
            assertThat(stuck.process().waitFor(2, TimeUnit.SECONDS)).as("SIGTERM twice at once: still waiting for the step's answer").isFalse();
            stuck.signal("INT");
            Cli.Result given = stuck.await();
            assertThat(given.exit()).as(given.toString()).isEqualTo(130);
            assertThat(given.stderr()).contains("error: interrupted by SIGINT again; the step in the asm session was told to stop and may still be stopping\n"
                    + "  -> check what it changed (asm status) before running it again").doesNotContain("Killed", "nothing was changed");
        } finally {
            Cli.kill("CONT", sessionPid);
        }
        Cli.waitFor("the step of the caller that gave up stopped too", () -> read(log).split("istiod-status exit 130", -1).length == 4);

        Cli.Running killed = started("istiod-status", "-n", ns, "--wait", "--timeout", "10m");
        Cli.waitFor("the step running in the session", () -> killed.stderrSoFar().contains("istiod"));
        killed.signal("KILL");
        assertThat(killed.process().waitFor(30, TimeUnit.SECONDS)).isTrue();
        Cli.waitFor("the step stopped once its caller is gone", () -> read(log).split("istiod-status exit 130", -1).length == 5);
        Cli.waitFor("the gone caller's folder removed", () -> {
            try {
                return callFolders().isEmpty();
            } catch (IOException e) {
                return false;
            }
        });
        assertThat(pipeCalls(log)).isEqualTo(4);

        // the session killed during a step: its caller says so, and the next call runs in its own JVM
        long pid = status().get("pid").asLong();
        Cli.Running orphan = started("istiod-status", "-n", ns, "--wait", "--timeout", "10m");
        Cli.waitFor("the step running in the session", () -> orphan.stderrSoFar().contains("istiod"));
        Cli.kill("KILL", pid);
        Cli.Result lost = orphan.await();
        assertThat(lost.exit()).as(lost.toString()).isEqualTo(1);
        assertThat(lost.stderr()).contains("error: the asm session ended before the step did\n  -> check what the step changed (asm status), then run it again");
        Cli.waitFor("the session process gone", () -> ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true)
                && !Files.exists(Path.of("/proc/" + pid)));
        assertThat(pipe).as("a killed session leaves its pipe").exists();
        Cli.Result alone = launch("version");
        assertThat(alone.exit()).as(alone.toString()).isZero();
        assertThat(alone.stdout()).contains("asm-hsm");
        assertThat(pipe).as("removed by the caller that found its session gone").doesNotExist();
        assertThat(status().get("up").asBoolean()).isFalse();
    }

    /**
     * The session answers only what it checked itself: a line that names no call, a call folder
     * outside the sessions' folder, a caller in another folder or with another environment get no
     * step run; a caller of its own folder and environment does.
     */
    @Test
    void theSessionChecksEveryRequestItselfAndRunsOnlyItsOwnCallers(Lab lab) throws Exception {
        JsonNode up = startSession(lab);
        Path pipe = Path.of(up.get("pipe").asText());
        Path elsewhere = Files.createDirectories(tmp.resolve("elsewhere"));
        Map<String, String> more = new HashMap<>(env);
        more.put("ONE_MORE", "1");
        List<Process> callers = new ArrayList<>();
        try {
            Process inWork = sleeper(work, env), inElsewhere = sleeper(elsewhere, env), otherEnv = sleeper(work, more);
            callers.addAll(List.of(inWork, inElsewhere, otherEnv));

            request(pipe, "not a request at all");
            Path outside = Files.createDirectories(tmp.resolve("call.outside"), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            try (FifoCall c = new FifoCall(outside)) {
                request(pipe, inWork.pid() + " " + outside + " 0");
                assertThat(c.line(3)).as("a folder outside the sessions' one: no answer").isNull();
            }
            try (FifoCall c = new FifoCall(Files.createTempDirectory(sessions, "call."))) {
                request(pipe, inElsewhere.pid() + " " + c.dir + " 0");
                assertThat(c.line(30)).as("a caller in another folder").isEqualTo("n");
            }
            try (FifoCall c = new FifoCall(Files.createTempDirectory(sessions, "call."))) {
                request(pipe, otherEnv.pid() + " " + c.dir + " 0");
                assertThat(c.line(30)).as("a caller with another variable").isEqualTo("n");
            }
            assertThat(status().get("served").asLong()).isZero();
            try (FifoCall c = new FifoCall(Files.createTempDirectory(sessions, "call."))) {
                request(pipe, inWork.pid() + " " + c.dir + " 1");
                assertThat(c.line(30)).isEqualTo("w");
                assertThat(c.line(30)).isEqualTo("t");
                assertThat(c.line(30)).isEqualTo("x 0");
                assertThat(c.out()).contains("asm-hsm");
            }
            assertThat(status().get("served").asLong()).as("only the caller of its own folder and environment").isEqualTo(1);
        } finally {
            callers.forEach(Process::destroyForcibly);
        }
    }

    /** A process that stands for a caller: its folder and environment are what the session compares. */
    private static Process sleeper(Path cwd, Map<String, String> env) throws IOException {
        ProcessBuilder pb = new ProcessBuilder("sleep", "120").directory(cwd.toFile());
        pb.environment().clear();
        pb.environment().putAll(Cli.environment(env));
        return pb.start();
    }

    private static void request(Path pipe, String line) throws IOException {
        try (var ch = java.nio.channels.FileChannel.open(pipe, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap((line + "\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
        }
    }

    /** A call's folder as the launcher makes it (arguments: version), with its pipes held open as the launcher holds them. */
    private static final class FifoCall implements AutoCloseable {
        final Path dir;
        final java.nio.channels.FileChannel ctl, out;

        FifoCall(Path dir) throws IOException {
            this.dir = dir;
            Cli.Result made = Cli.run(List.of("mkfifo", "-m", "600", dir.resolve("out").toString(), dir.resolve("err").toString(),
                    dir.resolve("ctl").toString()), Map.of(), dir, null);
            assertThat(made.exit()).as(made.toString()).isZero();
            Files.write(dir.resolve("args"), "1\0version\0".getBytes(java.nio.charset.StandardCharsets.UTF_8));
            var rw = new java.nio.file.OpenOption[] {java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE};
            ctl = java.nio.channels.FileChannel.open(dir.resolve("ctl"), rw);
            out = java.nio.channels.FileChannel.open(dir.resolve("out"), rw);
        }

        /** The session's next line on ctl, or null if none came within `seconds`. */
        String line(int seconds) throws Exception {
            var f = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                StringBuilder b = new StringBuilder();
                var one = java.nio.ByteBuffer.allocate(1);
                try {
                    while (ctl.read(one.clear()) == 1 && one.get(0) != '\n') b.append((char) one.get(0));
                } catch (IOException e) {
                    return null;
                }
                return b.toString();
            });
            try {
                return f.get(seconds, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                return null;
            }
        }

        /** What the step wrote on out (the session has closed it: only this call holds it now). */
        String out() throws IOException {
            var b = java.nio.ByteBuffer.allocate(1 << 16);
            out.read(b);
            return new String(b.array(), 0, b.position(), java.nio.charset.StandardCharsets.UTF_8);
        }

        @Override
        public void close() throws IOException {
            ctl.close();
            out.close();
        }
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            return "";
        }
    }
}
