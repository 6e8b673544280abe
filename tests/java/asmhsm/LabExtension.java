package asmhsm;

import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolutionException;
import org.junit.jupiter.api.extension.ParameterResolver;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Gives tests the running lab: {@code @ExtendWith(LabExtension.class)} and a {@link Lab}
 * parameter (test method, constructor or lifecycle method).
 *
 * <p>One lab per test run. If env {@code ASM_LAB_ENV} names the env file of a lab
 * that is already up ({@code $ASM_LAB_DIR/env}), that lab is used and left running.
 * Otherwise the first test that asks runs {@code tests/lab/up} once; the lab lives in
 * the root context's store and {@code tests/lab/down} runs when the whole run ends,
 * whether tests passed or not. If {@code up} fails, every test that needs the lab
 * fails with the same message, without starting it again.
 */
public final class LabExtension implements ParameterResolver {

    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(LabExtension.class);
    private static final long UP_TIMEOUT_MINUTES = 120;   // a cold build of kube-apiserver on 2 cores is slow

    @Override
    public boolean supportsParameter(ParameterContext parameter, ExtensionContext context) {
        return parameter.getParameter().getType() == Lab.class;
    }

    @Override
    public Object resolveParameter(ParameterContext parameter, ExtensionContext context) {
        return lab(context);
    }

    /** The run's lab, started on first use. */
    public static Lab lab(ExtensionContext context) {
        Running running = context.getRoot().getStore(NS)
                .getOrComputeIfAbsent(Running.class, k -> Running.start(), Running.class);
        if (running.failure != null) {
            throw new ParameterResolutionException("the lab is not available: " + running.failure.getMessage(),
                    running.failure);
        }
        return running.lab;
    }

    static Path repo() {
        return Path.of(System.getProperty("asm.repo", ".")).toAbsolutePath().normalize();
    }

    /** The store value: closing it (end of the run) stops a lab this run started. */
    static final class Running implements AutoCloseable {
        final Lab lab;
        final Path ownedDir;          // null when the lab was already up (ASM_LAB_ENV)
        final RuntimeException failure;

        private final AtomicBoolean closed = new AtomicBoolean();
        private final Thread shutdownHook;

        private Running(Lab lab, Path ownedDir, RuntimeException failure) {
            this.lab = lab;
            this.ownedDir = ownedDir;
            this.failure = failure;
            // The store is closed when the run ends; this covers a JVM stopped early (Ctrl-C, kill).
            this.shutdownHook = ownedDir == null ? null : new Thread(this::close, "lab-down");
            if (shutdownHook != null) Runtime.getRuntime().addShutdownHook(shutdownHook);
        }

        static Running start() {
            Path repo = repo();
            String given = System.getenv("ASM_LAB_ENV");
            if (given != null && !given.isBlank()) {
                Path envFile = Path.of(given);
                try {
                    if (!Files.isRegularFile(envFile)) {
                        throw new IllegalStateException("ASM_LAB_ENV=" + given + " is not a file");
                    }
                    return new Running(new Lab(repo, Lab.parseEnv(Files.readString(envFile))), null, null);
                } catch (IOException | RuntimeException e) {
                    return new Running(null, null, new IllegalStateException(
                            "cannot use the lab in ASM_LAB_ENV=" + given + ": " + e.getMessage(), e));
                }
            }
            Path dir = null;
            try {
                dir = Files.createTempDirectory("asm-lab");
                return new Running(new Lab(repo, Lab.parseEnv(up(repo, dir))), dir, null);
            } catch (IOException | RuntimeException e) {
                // up has stopped its processes already; the directory stays for its logs.
                if (dir != null) {
                    down(repo, dir, Map.of("LAB_KEEP_DIR", "1"));
                    try {
                        Files.deleteIfExists(dir);   // only if up failed before writing anything
                    } catch (IOException notEmpty) {
                        // keep it: the logs are there
                    }
                }
                return new Running(null, null, new IllegalStateException("tests/lab/up failed: " + e.getMessage()
                        + (dir == null ? "" : "; server logs kept in " + dir.resolve("logs")
                            + " (remove with tests/lab/down " + dir + ")"), e));
            }
        }

        /** Runs tests/lab/up into dir; its log lines go to System.err as they come. */
        private static String up(Path repo, Path dir) throws IOException {
            ProcessBuilder pb = new ProcessBuilder(repo.resolve("tests/lab/up").toString());
            pb.environment().put("ASM_LAB_DIR", dir.toString());
            pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            Process p = pb.start();
            Thread pump = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getErrorStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) System.err.println(line);
                } catch (IOException ignored) {
                    // the process is gone; its exit code tells the rest
                }
            }, "lab-up-stderr");
            pump.setDaemon(true);
            pump.start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            try {
                if (!p.waitFor(UP_TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                    p.destroyForcibly();
                    throw new IllegalStateException("tests/lab/up did not finish in " + UP_TIMEOUT_MINUTES + " minutes");
                }
                pump.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while the lab started", e);
            }
            if (p.exitValue() != 0) {
                throw new IllegalStateException("exit " + p.exitValue() + " (its log is above)");
            }
            return out;
        }

        private static void down(Path repo, Path dir, Map<String, String> env) {
            try {
                Lab.run(List.of(repo.resolve("tests/lab/down").toString(), dir.toString()), env);
            } catch (RuntimeException e) {
                System.err.println("tests/lab/down " + dir + " failed: " + e.getMessage());
            }
        }

        @Override
        public void close() {
            if (!closed.compareAndSet(false, true)) return;
            if (lab != null) lab.close();
            if (ownedDir != null) down(repo(), ownedDir, Map.of());
            if (shutdownHook != null && Thread.currentThread() != shutdownHook) {
                try {
                    Runtime.getRuntime().removeShutdownHook(shutdownHook);
                } catch (IllegalStateException shuttingDown) {
                    // the hook is running or about to; close() is idempotent
                }
            }
        }
    }
}
