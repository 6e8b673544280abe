package asmhsm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * A terminal into which runbook blocks are pasted one after another: each block runs in bash
 * with what the blocks before it left (exported variables, current directory), as in one
 * interactive session. Stricter than a terminal: a block stops at its first failing command,
 * at a failing pipe stage and at an unset variable (set -euo pipefail), so a runbook cannot
 * carry on past a mistake unnoticed. Standard input is empty: nothing may wait for typing.
 */
final class RunbookShell {
    /** Sources the state, runs the block, writes the state back, even when the block fails. */
    private static final String DRIVER = """
            source "$1"
            trap 'rc=$?; { export -p; printf "cd %q\\n" "$PWD"; } > "$3.tmp" && mv "$3.tmp" "$3"; exit $rc' EXIT
            set -euo pipefail
            source "$2"
            """;

    record Result(int exit, String output, long millis) {}

    private final Path dir;
    private final Path state;
    private int count;

    /** A session starting in {@code cwd} with exactly the variables of {@code env}. */
    RunbookShell(Path dir, Map<String, String> env, Path cwd) {
        this.dir = dir;
        this.state = dir.resolve("state.sh");
        StringBuilder s = new StringBuilder();
        new TreeMap<>(env).forEach((k, v) -> s.append("export ").append(k).append('=').append(quote(v)).append('\n'));
        s.append("cd ").append(quote(cwd.toString())).append('\n');
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("driver.sh"), DRIVER);
            Env.writeSecret(state, s.toString().getBytes(StandardCharsets.UTF_8)); // holds the lab's Vault token
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Pastes one block; its stdout and stderr interleaved as a terminal shows them. */
    Result run(String block, long timeoutSeconds) {
        try {
            Path file = dir.resolve(String.format("block-%02d.sh", ++count));
            Files.writeString(file, block);
            ProcessBuilder pb = new ProcessBuilder(List.of("bash", "--noprofile", "--norc", dir.resolve("driver.sh").toString(),
                    state.toString(), file.toString(), state.toString()))
                    .redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
            pb.environment().clear();
            pb.environment().put("PATH", "/usr/local/bin:/usr/bin:/bin"); // the state file sets the real PATH
            long start = System.nanoTime();
            Process p = pb.start();
            var out = new java.util.concurrent.CompletableFuture<String>();
            new Thread(() -> {
                try {
                    out.complete(new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
                } catch (IOException e) {
                    out.complete("(output unreadable: " + e + ")");
                }
            }).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                return new Result(-1, out.getNow("") + "\n(timed out after " + timeoutSeconds + " s)", (System.nanoTime() - start) / 1_000_000);
            }
            return new Result(p.exitValue(), out.get(), (System.nanoTime() - start) / 1_000_000);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException | java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A variable as the session has it now (empty when unset). */
    String variable(String name) {
        Result r = run("printf '%s' \"${" + name + ":-}\"", 30);
        if (r.exit() != 0) throw new IllegalStateException("cannot read $" + name + ": " + r.output());
        count--;
        return r.output();
    }

    static String quote(String s) {
        return "'" + s.replace("'", "'\\''") + "'";
    }
}
