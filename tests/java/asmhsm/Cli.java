package asmhsm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs the toolkit as an operator does, in its own process: `java asmhsm.Asm <step> ...`
 * with the test classpath, or `jbang ...`. A PKCS#11 library reads its configuration
 * (SOFTHSM2_CONF) once per process, so every HSM test needs its own process anyway.
 */
public final class Cli {
    public record Result(int exit, String stdout, String stderr) {
        public String all() { return stdout + stderr; }

        @Override
        public String toString() {
            return "exit " + exit + "\n--- stdout\n" + stdout + "--- stderr\n" + stderr;
        }
    }

    public static Path repo() {
        return Path.of(System.getProperty("asm.repo", ".")).toAbsolutePath().normalize();
    }

    static String classpath() {
        String cp = System.getProperty("surefire.test.class.path");
        return cp != null && !cp.isBlank() ? cp : System.getProperty("java.class.path");
    }

    /** `asm <args>` in a fresh JVM with exactly the given extra environment (null values unset a variable). */
    public static Result asm(Map<String, String> env, Path cwd, String... args) {
        return run(asmCommand(args), env, cwd, null);
    }

    static List<String> asmCommand(String... args) {
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto",
                "--add-exports=jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED",
                "-cp", classpath(), "asmhsm.Asm"));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Sends signal `name` (INT, TERM, KILL, STOP, CONT) to process `pid`. */
    public static void kill(String name, long pid) {
        Result kill = run(List.of("kill", "-" + name, Long.toString(pid)), Map.of(), null, null);
        if (kill.exit() != 0) throw new AssertionError("kill -" + name + " " + pid + ": " + kill);
    }

    /** A running `asm <args>`, for a test that signals it half-way; its output goes to two files. */
    public record Running(Process process, Path stdout, Path stderr) {
        public long pid() { return process.pid(); }

        /** Sends a signal as Ctrl-C (INT), kill (TERM) or kill -9 (KILL) would. */
        public void signal(String name) {
            kill(name, pid());
        }

        /** Sends a signal twice, 10 ms apart, as timeout does (to its command, then to its process group). */
        public void signalTwiceAtOnce(String name) {
            Result twice = run(List.of("bash", "-c", "kill -" + name + " $0 && sleep 0.01 && kill -" + name + " $0", Long.toString(pid())), Map.of(), null, null);
            if (twice.exit() != 0) throw new AssertionError("kill -" + name + " " + pid() + " twice: " + twice);
        }

        /** Waits for its end (at most 60 s): its exit code and output. */
        public Result await() {
            try {
                if (!process.waitFor(60, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    throw new AssertionError("still running 60 s later: " + process.info().commandLine().orElse("asm"));
                }
                return new Result(process.exitValue(), java.nio.file.Files.readString(stdout), java.nio.file.Files.readString(stderr));
            } catch (IOException | InterruptedException e) {
                throw new AssertionError(e);
            }
        }

        /** Its stderr so far. */
        public String stderrSoFar() {
            try {
                return java.nio.file.Files.readString(stderr);
            } catch (IOException e) {
                return "";
            }
        }
    }

    /**
     * Starts `asm <args>` as {@link #asm} runs it. Ctrl-C and SIGTERM are reset to their defaults
     * first (env --default-signal): a shell without job control starts a background job with SIGINT
     * ignored, and the test must not depend on how its own JVM was started.
     */
    public static Running start(Map<String, String> env, Path cwd, Path outputs, String... args) {
        return start(asmCommand(args), env, cwd, outputs);
    }

    /** Starts any command as {@link #start(Map, Path, Path, String...)} starts asm (e.g. through the launcher). */
    public static Running start(List<String> command, Map<String, String> env, Path cwd, Path outputs) {
        List<String> cmd = new ArrayList<>(List.of("env", "--default-signal=INT,TERM"));
        cmd.addAll(command);
        ProcessBuilder pb = new ProcessBuilder(cmd).directory((cwd == null ? repo() : cwd).toFile());
        pb.environment().clear();
        pb.environment().putAll(environment(env));
        try {
            java.nio.file.Files.createDirectories(outputs);
            Path out = java.nio.file.Files.createTempFile(outputs, "stdout", ".txt"), err = java.nio.file.Files.createTempFile(outputs, "stderr", ".txt");
            pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .redirectOutput(out.toFile()).redirectError(err.toFile());
            return new Running(pb.start(), out, err);
        } catch (IOException e) {
            throw new AssertionError("cannot start " + cmd + ": " + e, e);
        }
    }

    /** Polls `condition` every 20 ms for at most 60 s; fails with `what` if it never holds. */
    public static void waitFor(String what, java.util.function.BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("waited 60 s for " + what);
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    public static Result asm(Map<String, String> env, String... args) {
        return asm(env, repo(), args);
    }

    /** The environment a command gets from {@link #run}: this JVM's, without the toolkit's settings, plus `env` (null values unset). */
    public static Map<String, String> environment(Map<String, String> env) {
        Map<String, String> e = new HashMap<>(System.getenv());
        // a test states every setting it depends on: none leaks in from the developer's shell
        for (String k : List.of("P11_LIB", "P11_TOKEN", "P11_PIN_FILE", "SOFTHSM2_CONF", "KEK_ID", "CLUSTER_SUFFIX",
                "VAULT_ADDR", "VAULT_TOKEN", "VAULT_CACERT", "KUBECONFIG", "HSM_SLOT_LABEL", "HSM_SECRET_PATH",
                "ASM_HSM_HOME", "ChrystokiConfigurationPath"))
            e.remove(k);
        if (env != null) env.forEach((k, v) -> { if (v == null) e.remove(k); else e.put(k, v); });
        return e;
    }

    public static Result run(List<String> cmd, Map<String, String> env, Path cwd, String stdin) {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory((cwd == null ? repo() : cwd).toFile());
        pb.environment().clear();
        pb.environment().putAll(environment(env));
        try {
            Process p = pb.start();
            if (stdin != null) p.getOutputStream().write(stdin.getBytes(StandardCharsets.UTF_8));
            p.getOutputStream().close();
            var out = new java.util.concurrent.CompletableFuture<String>();
            var err = new java.util.concurrent.CompletableFuture<String>();
            Thread t1 = new Thread(() -> out.complete(read(p.getInputStream())));
            Thread t2 = new Thread(() -> err.complete(read(p.getErrorStream())));
            t1.start();
            t2.start();
            if (!p.waitFor(300, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + cmd);
            }
            return new Result(p.exitValue(), out.get(), err.get());
        } catch (IOException | InterruptedException | java.util.concurrent.ExecutionException ex) {
            throw new AssertionError("cannot run " + cmd + ": " + ex, ex);
        }
    }

    private static String read(java.io.InputStream in) {
        try {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    public static Map<String, String> env(String... kv) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put(kv[i], kv[i + 1]);
        return m;
    }
}
