//DEPS info.picocli:picocli:4.7.7
//DEPS org.bouncycastle:bcpkix-jdk18on:1.87
//DEPS org.bouncycastle:bcprov-jdk18on:1.87
//DEPS io.github.jopenlibs:vault-java-driver:6.2.1
//DEPS io.fabric8:kubernetes-client-api:8.0.0
//DEPS io.fabric8:kubernetes-client:8.0.0
//DEPS io.fabric8:kubernetes-httpclient-jdk:8.0.0
//DEPS tools.jackson.dataformat:jackson-dataformat-yaml:3.2.3
//DEPS org.apache.commons:commons-compress:1.28.0
//JAVA 17+
//COMPILE_OPTIONS --add-modules=jdk.crypto.cryptoki --add-exports=jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED
//RUNTIME_OPTIONS --add-exports=jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED
//JAVA_OPTIONS -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto -Xlog:disable -Xlog:all=error:stderr
//CDS
// The directives above are the whole toolkit's dependencies, once for every script
// (JBang reads them from this file through each script's //SOURCES). Keep them in step
// with pom.xml; LayoutTest compares the two. A step is a short-lived process: the C1
// compiler, the serial GC and a class-data-sharing archive (//CDS) cut its start-up;
// JVM logging is errors only, on stderr: a first CDS run warns about hundreds of classes,
// on stdout by default, which would break --json and bury the step's own lines.
package asmhsm;

import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The base of every step: runs it, turns failures into one or two lines (what is wrong,
 * what to do) and an exit code (0 done, 1 failed, 2 bad usage or input). Stack traces
 * only with --verbose.
 */
public abstract class Step implements Callable<Integer> {
    @Mixin
    public Opts.Common common;

    @Spec
    public CommandSpec spec;

    protected Out out;

    static {
        // fabric8 and the Vault driver log through SLF4J; with no backend it prints three
        // warnings on every run, which would bury the one or two lines a failure gets.
        System.setProperty("slf4j.internal.verbosity", "ERROR");
    }

    /** The step's work. Throw {@link Fail} for anything the operator must act on. */
    protected abstract void run() throws Exception;

    @Override
    public final Integer call() {
        Set<Thread> before = Http.selectorThreads();
        Interrupt.Run interruptible = Interrupt.begin(this);     // Ctrl-C and SIGTERM now stop this step (see Interrupt)
        try {
            return callOnce();
        } finally {
            interruptible.end();
            // The JDK HttpClients this step made (the Vault driver makes some of its own) keep a
            // selector thread in native code after their last use, and the JVM waits up to 0.3 s
            // at exit for such threads. Only shared Kubernetes clients (asm run, asm session)
            // outlive a step; every other client it made is done with now.
            Http.endStepThreads(before);
        }
    }

    private int callOnce() {
        out = new Out(spec.name(), common.json, common.dryRun, System.out, System.err);
        Fail failure;
        try {
            run();
            Interrupt.check();      // stopped after its last change: still an interrupted run
            out.finish(0, null);
            return 0;
        } catch (Fail f) {
            failure = f;
        } catch (CommandLine.ParameterException e) {
            failure = Fail.badInput(e.getMessage(), "see --help", e);
        } catch (Exception | LinkageError e) {
            failure = Fail.failed(describe(e), common.verbose ? null : "re-run with --verbose for the details", e);
        }
        failure = Interrupt.outcome(failure, out);     // a stopped step ends as interrupted, whatever it threw on the way
        out.endProgress();
        System.err.println("error: " + failure.getMessage());
        if (failure.hint != null) System.err.println("  -> " + failure.hint);
        if (common.verbose && failure.getCause() != null) failure.getCause().printStackTrace();
        out.finish(failure.exitCode, failure);
        return failure.exitCode;
    }

    static String describe(Throwable e) {
        String msg = e.getMessage();
        String name = e.getClass().getSimpleName();
        return msg == null || msg.isBlank() ? name : name + ": " + msg;
    }

    /**
     * The command line of a step, or of asm itself: every CommandLine that runs steps is made
     * here. Bad usage (an unknown option, a missing one, a value of the wrong type) is then one
     * line and "see --help", exit 2, and under --json a JSON result, as any other failure is,
     * instead of picocli's whole usage. No @file expansion: picocli would read a file named
     * @FILE as arguments and could echo its contents (a PIN file) in "Unknown option".
     */
    public static CommandLine commandLine(Object command) {
        CommandLine cl = new CommandLine(command);
        cl.setExpandAtFiles(false);
        cl.setParameterExceptionHandler(Step::badUsage);
        return cl;
    }

    static int badUsage(CommandLine.ParameterException e, String[] args) {
        CommandLine cmd = e.getCommandLine();
        java.util.List<String> options = new java.util.ArrayList<>();
        for (String a : args) {
            if (a.equals("--")) break;
            options.add(a);
        }
        java.util.List<String> suggestions = e instanceof CommandLine.UnmatchedArgumentException u ? u.getSuggestions() : java.util.List.of();
        Fail failure = Fail.badInput(e.getMessage().strip(),
                (suggestions.isEmpty() ? "" : "did you mean " + String.join(" or ", suggestions) + "? ") + "see --help", e);
        System.err.println("error: " + failure.getMessage());
        System.err.println("  -> " + failure.hint);
        new Out(cmd.getCommandName(), options.contains("--json"), options.contains("--dry-run"), System.out, System.err)
                .finish(failure.exitCode, failure);
        return failure.exitCode;
    }

}
