package asmhsm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * istioctl, the release's installer, as install-asm runs it (its options --istioctl and -y are this
 * mixin's): which one, its command line as a shell shows it, and a run that streams its output to the
 * operator and keeps a copy, from which the step reads istioctl's verdict.
 */
final class Istioctl {
    @Option(names = "--istioctl", paramLabel = "FILE", description = "istioctl to run (default: bin/istioctl of the extracted release).")
    Path given;

    @Option(names = {"-y", "--skip-confirmation"}, description = "Pass -y: istioctl does not ask before installing.")
    boolean yes;

    /** --istioctl, else bin/istioctl when run from the release (as the guide: cd istio-1.9.8-asm.6), else ./istio-VERSION/bin/istioctl; null when none is there. */
    Path find() {
        if (given != null) return given;
        Path here = Path.of("").toAbsolutePath();
        Path p = Release.istioctl(here);
        return p != null ? p : Release.istioctl(here.resolve(Release.topDir(Release.DEFAULT_VERSION)));
    }

    /** Refuses a missing or not executable istioctl; `lookedIn` says where {@link #find} looked. */
    void require(String lookedIn, String hint) {
        Path found = find();
        if (found == null || !Files.isExecutable(found))
            throw Fail.badInput(found == null ? "no istioctl found (" + lookedIn + ")" : found + " is not an executable file", hint);
    }

    /** The program (plain istioctl when none was found, as --print shows it), its arguments, then --context and -y when given. */
    List<String> command(List<String> args, Opts.Kube kube) {
        Path program = find();
        List<String> cmd = new ArrayList<>();
        cmd.add(program == null ? "istioctl" : program.toString());
        cmd.addAll(args);
        if (kube.context != null) cmd.addAll(List.of("--context", kube.context));
        if (yes) cmd.add("-y");
        return cmd;
    }

    /** The command as one shell line, each word quoted where a shell needs it. */
    static String shown(List<String> cmd) {
        return String.join(" ", cmd.stream().map(Istioctl::quote).toList());
    }

    static String quote(String s) {
        return s.matches("[A-Za-z0-9_./:=@%+,-]+") ? s : "'" + s.replace("'", "'\\''") + "'";
    }

    /** The install command as one shell line, with the WAIT_FOR_RESOURCES_TIMEOUT istioctl gets in its environment. */
    static String shown(List<String> cmd, String waitTimeout) {
        return "WAIT_FOR_RESOURCES_TIMEOUT=" + quote(waitTimeout) + " " + shown(cmd);
    }

    /**
     * Runs `istioctl install` of `revision` (with --dry-run, says what it would run): a failure fails the step, except
     * istioctl giving up its short wait for resources (the guide's WAIT_FOR_RESOURCES_TIMEOUT=10s), which is expected:
     * istiod waits for its CA.
     */
    static void install(List<String> cmd, String waitTimeout, String revision, Opts.Kube kube, Out out) throws IOException, InterruptedException {
        String shown = shown(cmd, waitTimeout);
        if (out.dryRun()) {
            out.change("run " + shown);
            return;
        }
        StringBuilder output = new StringBuilder();
        int exit = run(cmd, shown, waitTimeout, kube, out, output);
        if (exit != 0 && !Istio.onlyWaitTimedOut(output.toString()))
            throw Fail.failed("istioctl install failed (exit " + exit + ")", "see istioctl's output above; fix the cause and run install-asm again");
        if (exit != 0)
            out.warn("istioctl stopped waiting after WAIT_FOR_RESOURCES_TIMEOUT=" + waitTimeout
                    + ": expected, as istiod waits for its CA certificate (the guide shortens this wait on purpose)");
        out.change("ran istioctl install (revision " + revision + ")");
    }

    /** Refuses to install without an istioctl: the release's (run from where fetch-release extracted it) or --istioctl. */
    void requireForInstall() {
        require("bin/istioctl here or in ./" + Release.topDir(Release.DEFAULT_VERSION) + "/",
                "run fetch-release first and run install-asm from where it extracted, or pass --istioctl");
    }

    /** Runs `istioctl x uninstall`: any failure fails the step. */
    static void uninstall(List<String> cmd, String waitTimeout, Opts.Kube kube, Out out) throws IOException, InterruptedException {
        int exit = run(cmd, shown(cmd), waitTimeout, kube, out, new StringBuilder());
        if (exit != 0) throw Fail.failed("istioctl x uninstall failed (exit " + exit + ")", "see istioctl's output above; fix the cause and run it again");
    }

    /**
     * Says it runs `shown`, then runs istioctl with the operator's terminal for input, streaming its output
     * (to stderr under --json, where stdout is the result) and keeping a copy of its first MiB from each
     * stream; WAIT_FOR_RESOURCES_TIMEOUT and the kubeconfig in its environment, not the Vault token.
     */
    private static int run(List<String> cmd, String shown, String waitTimeout, Opts.Kube kube, Out out, StringBuilder copy)
            throws IOException, InterruptedException {
        out.say("Running: %s", shown);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.INHERIT);
        if (waitTimeout != null) pb.environment().put("WAIT_FOR_RESOURCES_TIMEOUT", waitTimeout);
        pb.environment().remove("VAULT_TOKEN");   // istioctl has no use for it
        if (kube.kubeconfig != null && !kube.kubeconfig.isBlank()) pb.environment().put("KUBECONFIG", kube.kubeconfig);
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw Fail.failed("cannot run " + cmd.get(0) + ": " + e.getMessage(), "check --istioctl");
        }
        Thread stop = new Thread(p::destroy);
        Runtime.getRuntime().addShutdownHook(stop);
        Thread o = pump(p.getInputStream(), out.json() ? System.err : System.out, copy);
        Thread e = pump(p.getErrorStream(), System.err, copy);
        int exit;
        try (var ctrlC = Interrupt.closeOnStop(p::destroy)) {     // Ctrl-C stops istioctl too, also in asm session
            exit = p.waitFor();
            o.join();
            e.join();
        }
        Runtime.getRuntime().removeShutdownHook(stop);
        return exit;
    }

    private static Thread pump(InputStream in, PrintStream to, StringBuilder copy) {
        Thread t = new Thread(() -> {
            byte[] buf = new byte[8192];
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            try (in) {
                for (int n; (n = in.read(buf)) > 0; ) {
                    to.write(buf, 0, n);
                    to.flush();
                    if (all.size() < (1 << 20)) all.write(buf, 0, n);
                }
            } catch (IOException ignored) {
                // the process ended; its exit code tells the rest
            }
            synchronized (copy) {
                copy.append(all.toString(StandardCharsets.UTF_8));
            }
        });
        t.start();
        return t;
    }
}
