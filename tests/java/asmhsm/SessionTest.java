package asmhsm;

import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.json;
import static org.assertj.core.api.Assertions.assertThat;

import tools.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * `asm session` in real processes against the lab: a session started in one folder and
 * environment answers the `asm` calls made from there, as the caller's own JVM would have; every
 * other call runs on its own. Its socket folder is a temporary one (ASM_SESSION_DIR).
 */
@ExtendWith(LabExtension.class)
class SessionTest {
    @TempDir
    Path tmp;
    Path work;
    Map<String, String> env;

    @BeforeEach
    void folders() throws Exception {
        work = Files.createDirectories(tmp.resolve("work"));
        Files.createDirectories(tmp.resolve("sessions"), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }

    @AfterEach
    void stop() {
        if (env != null) Cli.asm(env, work, "session", "stop");
    }

    private Map<String, String> sessionEnv(Lab lab) {
        return env(lab, "ASM_SESSION_DIR", tmp.resolve("sessions").toString());
    }

    /** Starts a session with the lab's environment; its status. */
    private JsonNode startSession(Lab lab) {
        env = sessionEnv(lab);
        Cli.Result start = Cli.asm(env, work, "session", "start");
        assertThat(start.exit()).as(start.toString()).isZero();
        Cli.Result up = Cli.asm(env, work, "session", "status", "--json");
        assertThat(up.exit()).as(up.toString()).isZero();
        return json(up);
    }

    private long served() {
        Cli.Result status = Cli.asm(env, work, "session", "status", "--json");
        assertThat(status.exit()).as(status.toString()).isZero();
        return json(status).get("up").asBoolean() ? Long.parseLong(json(status).get("served").asText()) : -1;
    }

    private static String[] prep(String ns, String... more) {
        java.util.List<String> a = new java.util.ArrayList<>(java.util.List.of("k8s-vault-prep", "--namespace", ns,
                "--binding", "tokenreview-" + ns, "--cluster-suffix", "c1"));
        a.addAll(java.util.List.of(more));
        return a.toArray(String[]::new);
    }

    @Test
    void answersCallsFromItsFolderAndEnvironmentAsTheCallersOwnJvmWould(Lab lab) throws Exception {
        env = sessionEnv(lab);
        assertThat(served()).as("no session yet").isEqualTo(-1);
        Cli.Result start = Cli.asm(env, work, "session", "start", "--idle", "10m");
        assertThat(start.exit()).as(start.toString()).isZero();
        assertThat(start.stdout()).contains("started a session for " + work);
        assertThat(Cli.asm(env, work, "session", "start").stdout()).contains("already up");
        // its socket: private to the user, in the folder it was told
        Path socket = Path.of(json(Cli.asm(env, work, "session", "status", "--json")).get("socket").asText());
        assertThat(socket.getParent()).isEqualTo(tmp.resolve("sessions"));
        assertThat(Files.getPosixFilePermissions(socket)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
        assertThat(served()).isZero();

        // a step through the session: its lines, exit code and files (relative to the caller's folder) as without one
        String ns = "sess-" + lab.freshMount();
        Cli.Result first = Cli.asm(env, work, prep(ns));
        assertThat(first.exit()).as(first.toString()).isZero();
        assertThat(first.stdout()).contains("created Namespace " + ns, "wrote c1/c1-tokenreview_jwt (mode 0600)");
        assertThat(served()).isEqualTo(1);
        K8sVaultPrepTest.checkClusterAndFiles(lab, ns, work.resolve("c1"));
        assertThat(Files.getPosixFilePermissions(work.resolve("c1/c1-tokenreview_jwt"))).isEqualTo(PosixFilePermissions.fromString("rw-------"));
        Cli.Result again = Cli.asm(env, work, prep(ns, "--json"));
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(json(again).get("changed").asBoolean()).isFalse();
        assertThat(served()).isEqualTo(2);

        // failures keep their exit codes and their one or two lines on stderr
        Cli.Result bad = Cli.asm(env, work, "k8s-vault-prep", "--cluster-suffix", "c1", "--no-such-option");
        assertThat(bad.exit()).as(bad.toString()).isEqualTo(2);
        assertThat(bad.stderr()).contains("--no-such-option");
        Cli.Result failed = Cli.asm(env, work, "istiod-service", "--namespace", "no-such-ns-" + ns);
        assertThat(failed.exit()).as(failed.toString()).isEqualTo(1);
        assertThat(failed.stderr()).startsWith("error: namespace no-such-ns-" + ns + " does not exist");
        assertThat(served()).isEqualTo(4);

        // another folder, or any variable changed: not this session's call, run on its own (and still right)
        Path elsewhere = Files.createDirectories(tmp.resolve("elsewhere"));
        Cli.Result there = Cli.asm(env, elsewhere, prep(ns));
        assertThat(there.exit()).as(there.toString()).isZero();
        assertThat(elsewhere.resolve("c1/c1-tokenreview_jwt")).exists();
        Map<String, String> changed = new HashMap<>(env);
        changed.put("CLUSTER_SUFFIX", "c9");
        Cli.Result otherEnv = Cli.asm(changed, work, "k8s-vault-prep", "--namespace", ns, "--binding", "tokenreview-" + ns);
        assertThat(otherEnv.exit()).as(otherEnv.toString()).isZero();
        assertThat(work.resolve("c9/c9-tokenreview_jwt")).exists();
        assertThat(served()).as("neither call went to the session").isEqualTo(4);

        Cli.Result stop = Cli.asm(env, work, "session", "stop");
        assertThat(stop.stdout()).contains("stopped the session");
        assertThat(socket).doesNotExist();
        assertThat(served()).isEqualTo(-1);
        Cli.Result alone = Cli.asm(env, work, prep(ns));
        assertThat(alone.exit()).as(alone.toString()).isZero();
        assertThat(alone.stdout()).doesNotContain("created Namespace");
    }

    /** A caller that goes away (Ctrl-C) interrupts its step in the session, which then serves the next call. */
    @Test
    void aCallerThatGoesAwayInterruptsItsStep(Lab lab) throws Exception {
        Path log = Session.log(Path.of(startSession(lab).get("socket").asText()));
        String ns = lab.freshNamespace();      // no istiod there: --wait would poll for its whole timeout
        java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-exports=jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED", "-cp", Cli.classpath(), "asmhsm.Asm",
                "istiod-status", "-n", ns, "--wait", "--timeout", "10m"));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(work.toFile()).redirectErrorStream(true)
                .redirectOutput(tmp.resolve("caller.out").toFile());
        pb.environment().clear();
        pb.environment().putAll(Cli.environment(env));
        Process caller = pb.start();
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (!Files.readString(tmp.resolve("caller.out")).contains("istiod") && System.nanoTime() < deadline) Thread.sleep(100);
        assertThat(Files.readString(tmp.resolve("caller.out"))).as("the session is running the step").contains("istiod");
        caller.destroy();
        assertThat(caller.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
        while (!Files.readString(log).contains("istiod-status exit") && System.nanoTime() < deadline) Thread.sleep(100);
        assertThat(Files.readString(log)).as("interrupted long before its 10 min").contains("istiod-status exit 130");
        assertThat(served()).isEqualTo(1);
    }

    /**
     * The session stuck (stopped here): the same SIGTERM twice at once (timeout sends it to its child,
     * then to its process group) is one, and the caller waits for the step's answer; a second signal
     * later ends the caller at once, saying so, and the step in the session still stops.
     */
    @Test
    void aSignalSentTwiceAtOnceIsOneAndASecondOneLaterEndsTheCaller(Lab lab) throws Exception {
        JsonNode up = startSession(lab);
        long sessionPid = up.get("pid").asLong();
        Path log = Session.log(Path.of(up.get("socket").asText()));
        Cli.Running caller = Cli.start(env, work, tmp.resolve("outputs"), "istiod-status", "-n", lab.freshNamespace(), "--wait", "--timeout", "10m");
        Cli.waitFor("the step running in the session", () -> caller.stderrSoFar().contains("istiod"));
        Cli.kill("STOP", sessionPid);
        try {
            caller.signalTwiceAtOnce("TERM");
            assertThat(caller.process().waitFor(2, java.util.concurrent.TimeUnit.SECONDS)).as("SIGTERM twice at once: still waiting for the answer").isFalse();
            caller.signal("INT");
            Cli.Result r = caller.await();
            assertThat(r.exit()).as(r.toString()).isEqualTo(130);
            assertThat(r.stderr()).contains("error: interrupted by SIGINT again; the step in the asm session was told to stop and may still be stopping\n"
                    + "  -> check what it changed (asm status) before running it again").doesNotContain("nothing was changed");
        } finally {
            Cli.kill("CONT", sessionPid);
        }
        Cli.waitFor("the step stopped in the session", () -> {
            try {
                return Files.readString(log).contains("istiod-status exit 130");
            } catch (java.io.IOException e) {
                return false;
            }
        });
        assertThat(served()).as("the session goes on").isEqualTo(1);
    }

    /**
     * Ctrl-C in a caller stops its step in the session as it would in the step's own JVM: the download's
     * part files are removed, and the caller gets the step's state and exit 130; the session goes on.
     */
    @Test
    void ctrlCInTheCallerStopsItsStepThereWhichCleansUpAndAnswers(Lab lab) throws Exception {
        JsonNode up = startSession(lab);
        long sessionPid = up.get("pid").asLong();
        Path log = Session.log(Path.of(up.get("socket").asText()));
        String name = Release.archiveName(Release.DEFAULT_VERSION, Release.Platform.LINUX_AMD64);
        var key = ReleaseTest.p256();
        Path pub = ReleaseTest.pubPem(key, tmp.resolve("release-key.pem"));
        ReleaseTest.releaseTree(Files.createDirectories(tmp.resolve("src")), false);
        Path archive = tmp.resolve("release.tar.gz");
        assertThat(Cli.run(java.util.List.of("tar", "-C", tmp.resolve("src").toString(), "-czf", archive.toString(), ReleaseTest.TOP),
                Map.of(), tmp, null).exit()).isZero();
        try (ReleaseMirror mirror = new ReleaseMirror()) {
            mirror.publish(name, Files.readAllBytes(archive), ReleaseTest.sign(key.getPrivate(), archive));
            mirror.stallOnce.add(name);
            String[] fetch = {"fetch-release", "--base-url", mirror.baseUrl(), "--dir", "rel", "--platform", "linux-amd64", "--public-key", pub.toString()};
            Cli.Running caller = Cli.start(env, work, tmp.resolve("outputs"), fetch);
            Path part = work.resolve("rel/" + name + "." + sessionPid + ".part");     // the session's download, not the caller's
            Cli.waitFor("half of " + part, () -> {
                try {
                    return Files.size(part) >= mirror.files.get(name).length / 2;
                } catch (java.io.IOException notYet) {
                    return false;
                }
            });
            caller.signal("INT");
            Cli.Result r = caller.await();

            assertThat(r.exit()).as(r.toString()).isEqualTo(130);
            assertThat(r.stderr()).contains("error: interrupted by SIGINT; nothing was changed; removed its temporary files "
                    + name + "." + sessionPid + ".part, " + name + ".1.sig." + sessionPid + ".part\n  -> run fetch-release again");
            try (var left = Files.list(work.resolve("rel"))) {
                assertThat(left.toList()).as("nothing left behind").isEmpty();
            }
            assertThat(Files.readString(log)).contains("fetch-release exit 130");
            assertThat(served()).as("the session goes on").isEqualTo(1);

            Cli.Result again = Cli.asm(env, work, fetch);
            assertThat(again.exit()).as(again.toString()).isZero();
            assertThat(Release.complete(work.resolve("rel/" + ReleaseTest.TOP))).isTrue();
            assertThat(served()).isEqualTo(2);
        }
    }

    /**
     * A PKCS#11 library lists its tokens when the JVM loads it: a token made after the session
     * loaded the library is one a new JVM sees and the session does not. Such a call runs on its
     * own, and the session ends.
     */
    @Test
    void aTokenMadeAfterTheSessionLoadedTheLibraryIsLeftToTheCallersOwnJvm(Lab lab) throws Exception {
        env = new HashMap<>(lab.freshToken());
        env.put("ASM_SESSION_DIR", tmp.resolve("sessions").toString());
        assertThat(Cli.asm(env, work, "session", "start").exit()).isZero();
        Cli.Result before = Cli.asm(env, work, "hsm-info");
        assertThat(before.exit()).as(before.toString()).isZero();
        assertThat(served()).isEqualTo(1);

        Path pin = Files.writeString(work.resolve("late.pin"), "4321", java.nio.charset.StandardCharsets.US_ASCII);
        Files.setPosixFilePermissions(pin, PosixFilePermissions.fromString("rw-------"));
        Cli.Result made = Cli.run(java.util.List.of("softhsm2-util", "--init-token", "--free", "--label", "late",
                "--pin", "4321", "--so-pin", "87654321"), env, work, null);
        assertThat(made.exit()).as(made.toString()).isZero();
        Cli.Result late = Cli.asm(env, work, "hsm-info", "--p11-token", "late", "--p11-pin-file", pin.toString());
        assertThat(late.exit()).as(late.toString()).isZero();
        assertThat(late.stdout()).contains("token    'late'");
        assertThat(served()).as("the session ended").isEqualTo(-1);
    }

    @Test
    void endsWhenIdleAndRefusesAFolderOthersCanOpen(Lab lab) throws Exception {
        env = sessionEnv(lab);
        // its socket from start's own answer: a status call, a JVM of its own, may come after the 2 s under load
        Cli.Result start = Cli.asm(env, work, "session", "start", "--idle", "2s", "--json");
        assertThat(start.exit()).as(start.toString()).isZero();
        Path socket = Path.of(json(start).get("socket").asText());
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (Files.exists(socket) && System.nanoTime() < deadline) Thread.sleep(200);
        assertThat(socket).as("gone after 2 s without a call").doesNotExist();
        long pause = System.nanoTime() + 10_000_000_000L;
        while (Files.exists(Session.log(socket)) && System.nanoTime() < pause) Thread.sleep(100);
        assertThat(Session.log(socket)).as("its log goes with it").doesNotExist();
        assertThat(served()).isEqualTo(-1);

        Path open = Files.createDirectories(tmp.resolve("open"));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxr-xr-x"));
        env = env(lab, "ASM_SESSION_DIR", open.toString());
        Cli.Result refused = Cli.asm(env, work, "session", "start");
        assertThat(refused.exit()).as(refused.toString()).isEqualTo(2);
        assertThat(refused.stderr()).contains("is not yours alone", "chmod 700 " + open);
        assertThat(Cli.asm(env, work, "session", "start", "--idle", "soon").stderr()).contains("--idle soon is not a duration");
        try (var files = Files.list(open)) {
            assertThat(files).as("nothing started, nothing left").isEmpty();
        }
    }
}
