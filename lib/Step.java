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
// Which JDK runs a step is JBang's choice (//JAVA 17+; docs/startup.md says how to pick another).
// JDK 25's AOT cache was measured and not adopted (docs/startup.md), so //CDS is the archive.
package asmhsm;

import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * The base of every step: runs it, turns failures into one or two lines (what is wrong,
 * what to do) and an exit code (0 done, 1 failed, 2 bad usage or input). Stack traces
 * only with --verbose. Every step inherits its -V/--version text from here.
 */
@Command(versionProvider = Version.class)
public abstract class Step implements Callable<Integer> {
    @Mixin
    public Opts.Common common;

    @Spec
    public CommandSpec spec;

    protected Out out;

    /** Clients shared with other steps of this process (asm run, asm session, a test); null: its own. */
    private Startup.Clients clients;

    /** This run's clients, made on first use from the step's own option mixins, closed when it ends. */
    private Kube kubeClient;
    /** Clients for other kube contexts than the step's own (see #kube(Opts.Kube)), by kubeconfig and context. */
    private final java.util.Map<String, Kube> otherKubes = new java.util.LinkedHashMap<>();
    private Vault vaultClient;
    private Hsm hsmClient;
    private boolean hsmOpened;
    private java.net.http.HttpClient httpClient;

    static {
        // fabric8 and the Vault driver log through SLF4J; with no backend it prints three
        // warnings on every run, which would bury the one or two lines a failure gets.
        System.setProperty("slf4j.internal.verbosity", "ERROR");
        // picocli colours --help on a terminal and honours NO_COLOR, but not TERM=dumb
        if ("dumb".equals(System.getenv("TERM")) && System.getProperty("picocli.ansi") == null) System.setProperty("picocli.ansi", "false");
    }

    /** The step's work. Throw {@link Fail} for anything the operator must act on. */
    protected abstract void run() throws Exception;

    @Override
    public final Integer call() {
        Set<Thread> before = Startup.selectorThreads();
        Interrupt.Run interruptible = Interrupt.begin(this);     // Ctrl-C and SIGTERM now stop this step (see Interrupt)
        try {
            return callOnce();
        } finally {
            closeClients();
            interruptible.end();
            // The JDK HttpClients this step made (the Vault driver makes some of its own) keep a
            // selector thread in native code after their last use, and the JVM waits up to 0.3 s
            // at exit for such threads. Only the shared clients (asm run, asm session) outlive a
            // step; every other client it made is done with now.
            Startup.endStepThreads(before, clients == null ? Set.of() : clients.threads());
        }
    }

    private int callOnce() {
        out = new Out(name(spec), common.format(), common.dryRun, System.out, System.err);
        out.manifestStep(Usage.MANIFEST_STEPS.contains(name(spec)));
        out.givenOptions(givenOptions(spec));
        Fail failure;
        try {
            actingOn();
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

    /**
     * The cluster this step's {@code Opts.Kube} options name, connected on first use (refusing
     * another cluster than the suffix was prepared on, see {@link Kube#connect}); closed when the
     * step ends. Steps call this instead of {@code Kube.connect}, so that a run of several steps
     * can hand them one client and a test can hand them another (see {@link #with}).
     */
    protected Kube kube() {
        if (kubeClient == null) kubeClient = clients != null ? clients.kube(mixin(Opts.Kube.class)) : Kube.connect(mixin(Opts.Kube.class));
        return kubeClient;
    }

    /**
     * A client for another kube context than the step's own options name (status --all-suffixes
     * reads every prepared cluster), made on first use, one per kubeconfig and context, and closed
     * when the step ends, as {@link #kube()}. Not checked against a cluster suffix: options made in
     * code belong to no step, so the caller checks the cluster it expects (Kube#requireCluster).
     */
    protected Kube kube(Opts.Kube other) {
        String key = Kube.key(other);
        Kube k = otherKubes.get(key);
        if (k == null) {
            k = clients != null ? clients.kube(other) : Kube.connect(other);
            otherKubes.put(key, k);
        }
        return k;
    }

    /** Has this step take its clients from `shared` (and leave them open) instead of making its own. */
    public Step with(Startup.Clients shared) {
        this.clients = shared;
        return this;
    }

    /** Vault at this step's {@code Opts.Vault} address, with the operator's token; made on first use, closed when the step ends. */
    protected Vault vault() {
        if (vaultClient == null) vaultClient = Vault.connect(mixin(Opts.Vault.class));
        return vaultClient;
    }

    /**
     * Vault at this step's address with another token than the operator's: null for none (to log
     * in, or to read what needs no token, such as the seal status), or one a login returned.
     */
    protected Vault vaultAs(String token) {
        return Vault.connect(mixin(Opts.Vault.class), token);
    }

    /**
     * The HSM token this step's {@code Opts.Pkcs11} options name, logged in on first use, closed
     * when the step ends. Null only under --dry-run when the embedded token does not exist yet
     * (see {@link Hsm#open}).
     */
    protected Hsm hsm() {
        return hsm(out);
    }

    /**
     * The same HSM, with what opening it says (that the embedded token was created) told to `to`
     * instead of the step's output: a step that reports in its own form (status) passes a quiet Out.
     */
    protected Hsm hsm(Out to) {
        if (!hsmOpened) {
            hsmClient = Hsm.open(mixin(Opts.Pkcs11.class), to);
            hsmOpened = true;
        }
        return hsmClient;
    }

    /** An HTTP client for downloads (redirects and proxy variables as curl), made on first use. */
    protected java.net.http.HttpClient http() {
        if (httpClient == null) httpClient = Release.httpClient();
        return httpClient;
    }

    /** The step's option group of this type; a step asking for a client whose options it does not take is a programming error. */
    protected <T> T mixin(Class<T> type) {
        for (CommandSpec m : spec.mixins().values())
            if (type.isInstance(m.userObject())) return type.cast(m.userObject());
        throw new IllegalStateException(spec.name() + " has no " + type.getSimpleName() + " options");
    }

    private void closeClients() {
        if (hsmClient != null) hsmClient.close();
        java.util.List<Kube> kubes = new java.util.ArrayList<>(otherKubes.values());
        if (kubeClient != null) kubes.add(kubeClient);
        for (Kube k : kubes) if (clients == null || !clients.holds(k)) k.close();
        otherKubes.clear();
        hsmClient = null;
        kubeClient = null;
        vaultClient = null;
        httpClient = null;
        hsmOpened = false;
    }

    /**
     * Says where the step acts, before anything else: the kube context and its API server, the
     * Vault address. Read from the options only; a kubeconfig that cannot be read is left to the
     * step, whose own refusal names it.
     */
    void actingOn() {
        if (printsForAProgram()) return;
        java.util.List<String> parts = new java.util.ArrayList<>();
        java.util.Map<String, Object> fields = new java.util.LinkedHashMap<>();
        for (CommandSpec m : spec.mixins().values()) {
            if (m.userObject() instanceof Opts.Kube kube) {
                try {
                    var config = Kube.resolve(kube);
                    String context = config.getCurrentContext() == null ? null : config.getCurrentContext().getName();
                    String server = config.getMasterUrl().replaceAll("/+$", "");
                    parts.add("cluster " + (context == null ? "" : "'" + context + "' at ") + server);
                    fields.put("context", context);
                    fields.put("server", server);
                } catch (RuntimeException unreadable) {
                    // the step refuses it when it connects
                }
            } else if (m.userObject() instanceof Opts.Vault vault && vault.addr != null && !vault.addr.isBlank()) {
                String namespace = null;
                try {
                    namespace = vault.namespace();
                } catch (RuntimeException malformed) {
                    // the step refuses it when it connects
                }
                parts.add("Vault " + vault.addr + (namespace == null ? "" : " (namespace " + namespace + ")"));
                fields.put("vaultAddr", vault.addr);
                if (namespace != null) fields.put("vaultNamespace", namespace);
            }
        }
        out.actingOn(parts, fields);
    }

    /** The step's name as the operator types it after asm: "gen-kek", "session status". */
    static String name(CommandSpec spec) {
        String q = spec.qualifiedName(" ");
        return q.startsWith("asm ") ? q.substring(4) : q;
    }

    private static final Set<CommandSpec> SHARED = java.util.Collections.newSetFromMap(new java.util.WeakHashMap<>());

    /**
     * What every step's command gets besides its own annotations: -o FORMAT, and its examples as
     * the footer of --help; for {@code cl} and every subcommand it holds now (asm adds its steps
     * after {@link #commandLine}, and calls this again). Once per command.
     */
    public static CommandLine shared(CommandLine cl) {
        CommandSpec spec = cl.getCommandSpec();
        synchronized (SHARED) {
            if (SHARED.add(spec)) {
                Opts.Common.addOutputOption(spec);
                Usage.addExamples(spec);
            }
        }
        for (CommandLine sub : cl.getSubcommands().values()) shared(sub);
        return cl;
    }

    /** Whether this run's stdout is for a program to read (install-asm --print): then it says nothing else. */
    protected boolean printsForAProgram() {
        return false;
    }

    /** The options given on the command line (not from the environment), by Opts group, as words. */
    static java.util.Map<Class<?>, java.util.List<String>> givenOptions(CommandSpec spec) {
        CommandLine.ParseResult parsed = spec.commandLine() == null ? null : spec.commandLine().getParseResult();
        if (parsed == null) return java.util.Map.of();
        java.util.Map<Class<?>, java.util.List<String>> given = new java.util.LinkedHashMap<>();
        for (CommandSpec m : spec.mixins().values()) {
            if (m.userObject() == null || m.userObject() instanceof Opts.Common) continue;
            java.util.List<String> words = new java.util.ArrayList<>();
            for (CommandLine.Model.OptionSpec o : m.options()) {
                CommandLine.Model.OptionSpec matched = parsed.matchedOption(o.longestName());
                if (matched == null) continue;
                if (matched.arity().max() == 0) {
                    words.add(o.longestName());
                } else {
                    java.util.List<String> values = matched.originalStringValues();
                    if (!values.isEmpty()) words.addAll(java.util.List.of(o.longestName(), values.get(values.size() - 1)));
                }
            }
            if (!words.isEmpty()) given.put(m.userObject().getClass(), words);
        }
        return given;
    }

    /** The output format these words ask for (--json, -o json, --output=yaml ...), read without picocli, which refused them. */
    static Out.Format format(java.util.List<String> words) {
        Out.Format f = words.contains("--json") ? Out.Format.json : Out.Format.text;
        for (int i = 0; i < words.size(); i++) {
            String w = words.get(i), value = null;
            if (w.matches("-o|--output|--output-format") && i + 1 < words.size()) value = words.get(i + 1);
            else if (w.matches("(-o=?|--output=|--output-format=).+")) value = w.replaceFirst("^(-o=?|--output=|--output-format=)", "");
            if ("json".equals(value)) f = Out.Format.json;
            if ("yaml".equals(value)) f = Out.Format.yaml;
        }
        return f;
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
        cl.setExecutionStrategy(Step::refuseWordsBesideHelp);
        return shared(cl);
    }

    /**
     * picocli prints -h or -V and ignores any word it did not match beside them; here such a word
     * is bad usage, so that `fetch-release --version 1.9.9-asm.1` (the old spelling of --asm-version)
     * is refused instead of printing the toolkit's version and exiting 0.
     */
    static int refuseWordsBesideHelp(CommandLine.ParseResult parsed) {
        for (CommandLine.ParseResult p = parsed; p != null; p = p.subcommand())
            if ((p.isUsageHelpRequested() || p.isVersionHelpRequested()) && !p.unmatched().isEmpty()
                    && p.commandSpec().unmatchedArgsBindings().isEmpty())
                throw new CommandLine.UnmatchedArgumentException(p.commandSpec().commandLine(), p.unmatched());
        return new CommandLine.RunLast().execute(parsed);
    }

    static int badUsage(CommandLine.ParameterException e, String[] args) {
        CommandLine cmd = e.getCommandLine();
        java.util.List<String> options = new java.util.ArrayList<>();
        for (String a : args) {
            if (a.equals("--")) break;
            options.add(a);
        }
        java.util.List<String> suggestions = new java.util.ArrayList<>(
                e instanceof CommandLine.UnmatchedArgumentException u ? u.getSuggestions() : java.util.List.of());
        // fetch-release's release option was --version, now -V/--version of every step: name the new one
        int old = options.indexOf("--version");
        if (old >= 0 && old + 1 < options.size() && !options.get(old + 1).startsWith("-") && cmd.getCommandSpec().findOption("--asm-version") != null)
            suggestions.add(0, "--asm-version " + options.get(old + 1));
        Fail failure = Fail.badInput(e.getMessage().strip(),
                (suggestions.isEmpty() ? "" : "did you mean " + String.join(" or ", suggestions) + "? ") + "see --help", e);
        System.err.println("error: " + failure.getMessage());
        System.err.println("  -> " + failure.hint);
        new Out(name(cmd.getCommandSpec()), format(options), options.contains("--dry-run"), System.out, System.err)
                .finish(failure.exitCode, failure);
        return failure.exitCode;
    }

}
