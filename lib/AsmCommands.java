package asmhsm;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * asm's own subcommands, beside the guide's steps: run, warm-up, session, version, completion; and
 * the table helpers scripts/asm.java lists every subcommand with. Like {@link Startup} and
 * {@link Session}, nothing here changes what a step does.
 */
final class AsmCommands {
    private AsmCommands() {}

    /** asm's command line for some arguments, its steps taking their clients from `shared` (null: each its own): Asm.commandLine. */
    interface Dispatcher {
        CommandLine commandLine(Startup.Clients shared, String... args);
    }

    /** A subcommand that runs or reads the others: asm hands it itself (and the clients its steps share) as it adds it. */
    abstract static class RunsOthers {
        Dispatcher asm;
        /** The session's clients when it runs in one; else null. */
        Startup.Clients shared;

        void use(Dispatcher asm, Startup.Clients shared) {
            this.asm = asm;
            this.shared = shared;
        }
    }

    /** One table entry: a subcommand's name and class. */
    static Map.Entry<String, Class<?>> sub(String name, Class<?> command) {
        return Map.entry(name, command);
    }

    /** The subcommands in the order given, refusing a name given twice. */
    @SafeVarargs
    static Map<String, Class<?>> table(Map.Entry<String, Class<?>>... subs) {
        Map<String, Class<?>> t = new LinkedHashMap<>();
        for (var sub : subs)
            if (t.put(sub.getKey(), sub.getValue()) != null) throw new IllegalStateException("twice in the table: " + sub.getKey());
        return Collections.unmodifiableMap(t);
    }

    /** A subcommand's object, from its class. */
    static Object make(String name, Class<?> command) {
        try {
            return command.getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot make " + name, e);
        }
    }

    /** A training run for the class-data archive: see {@link Startup.WarmUp}. */
    @Command(name = "warm-up", hidden = true, description = "A training run for the class-data archive (no real server is touched).")
    static class WarmUp extends RunsOthers implements Callable<Integer> {
        @Override
        public Integer call() throws Exception {
            Startup.WarmUp.run(asm.commandLine(null));
            return 0;
        }
    }

    /** `asm session start|status|stop`: see {@link Session}. */
    @Command(name = "session", mixinStandardHelpOptions = true, versionProvider = Version.class, description = {
            "Keep one warm JVM for this shell's asm calls, as ssh-agent keeps keys: start it once, then every",
            "`asm <step>` from this folder with this same environment runs in it, without a JVM start of its own.",
            "A call from another folder, or with any variable changed, runs on its own as usual."},
            subcommands = {SessionCommand.Start.class, SessionCommand.Show.class, SessionCommand.Stop.class,
                    SessionCommand.Serve.class})
    static class SessionCommand extends RunsOthers implements Runnable {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public void run() {
            spec.commandLine().usage(System.out);
        }

        @Command(name = "start", mixinStandardHelpOptions = true, description = "Start the session for this folder and environment (nothing if it is up).")
        static class Start extends Step {
            @CommandLine.Option(names = "--idle", defaultValue = Session.DEFAULT_IDLE, paramLabel = "DURATION",
                    description = "End the session after this long without a call, e.g. 30m, 2h (0: never). Default: ${DEFAULT-VALUE}.")
            String idle;

            @Override
            protected void run() {
                java.time.Duration d = Opts.duration(idle);
                if (d == null || d.isNegative()) throw Fail.badInput("--idle " + idle + " is not a duration", "e.g. --idle 30m or --idle 2h");
                boolean up = Session.ask(Session.STATUS) != null;
                out.put("socket", Session.socket(Session.key()).toString());
                if (up) {
                    out.say("a session for this folder and environment is already up");
                    return;
                }
                if (out.dryRun()) {
                    out.change("start a session for " + Path.of("").toAbsolutePath());
                    return;
                }
                Path socket = Session.start(d);
                out.change("started a session for " + Path.of("").toAbsolutePath() + " (socket " + socket + ")");
                out.say("asm calls from this folder with this environment now run in it; it ends after "
                        + (d.isZero() ? "asm session stop" : idle + " without a call, or with asm session stop"));
            }
        }

        @Command(name = "status", mixinStandardHelpOptions = true, description = "Say whether a session serves this folder and environment.")
        static class Show extends Step {
            @Override
            protected void run() {
                String status = Session.ask(Session.STATUS);
                out.put("up", status != null);
                if (status == null) {
                    out.say("no session for this folder and environment: asm calls run on their own");
                    return;
                }
                Session.parseStatus(status).forEach((k, v) -> out.put(k, v.matches("\\d{1,18}") ? (Object) Long.valueOf(v) : v));   // numbers as numbers
                out.say(status.strip());
            }
        }

        @Command(name = "stop", mixinStandardHelpOptions = true, description = "Stop the session of this folder and environment.")
        static class Stop extends Step {
            @Override
            protected void run() {
                if (Session.ask(Session.STATUS) == null) {
                    out.say("no session for this folder and environment");
                    return;
                }
                if (out.dryRun()) {
                    out.change("stop the session");
                    return;
                }
                Session.ask(Session.STOP);
                out.change("stopped the session");
            }
        }

        @Command(name = "serve", hidden = true, description = "The session itself (asm session start runs it in the background).")
        static class Serve implements Callable<Integer> {
            @CommandLine.Option(names = "--idle", defaultValue = Session.DEFAULT_IDLE)
            String idle;

            @CommandLine.ParentCommand
            SessionCommand session;

            @Override
            public Integer call() throws Exception {
                Dispatcher asm = session.asm;
                // start checked --idle before it ran this
                return Session.serve(Opts.duration(idle), (shared, args) -> asm.commandLine(shared, args).execute(args),
                        () -> { Startup.WarmUp.run(asm.commandLine(null)); return 0; });
            }
        }
    }

    /**
     * Several steps in one process, for chains operators run together: one JVM start,
     * one class loading and one Kubernetes client, instead of one per step.
     */
    @Command(name = "run", description = {
            "Run several steps in one process, in order, stopping at the first that fails.",
            "Steps are separated by a lone '+', e.g.:",
            "  asm run k8s-vault-prep --cluster-suffix c1 + vault-setup --cluster-suffix c1 ... + vault-verify --cluster-suffix c1",
            "--json (or -o json|yaml) before the first step: every step's result in one JSON array (YAML sequence), in order."})
    static class Run extends RunsOthers implements Callable<Integer> {
        @CommandLine.Unmatched
        List<String> words = new ArrayList<>();

        @Override
        public Integer call() {
            Out.Format format = Out.Format.text;
            while (!words.isEmpty() && words.get(0).startsWith("-")) {
                Out.Format f = Step.format(words.subList(0, Math.min(2, words.size())));
                if (f == Out.Format.text) break;
                words = new ArrayList<>(words.subList(words.get(0).matches("--json|-o.+|--output=.+") ? 1 : 2, words.size()));
                format = f;
            }
            if (format != Out.Format.text) {
                List<String> each = new ArrayList<>();
                for (String w : words) {
                    if (w.equals("+")) each.add("--json");
                    each.add(w);
                }
                each.add("--json");
                words = each;
                return Out.gathered(format, System.out, this::steps);
            }
            return steps();
        }

        private int steps() {
            List<List<String>> steps = new ArrayList<>();
            List<String> current = new ArrayList<>();
            for (String w : words) {
                if (w.equals("+")) { steps.add(current); current = new ArrayList<>(); } else current.add(w);
            }
            steps.add(current);
            for (List<String> step : steps)
                if (step.isEmpty() || step.get(0).startsWith("-") || step.get(0).equals("run")) {
                    System.err.println("error: 'asm run' takes steps separated by '+', each starting with the step's name");
                    System.err.println("  -> e.g. asm run gen-kek + import-ca -f root.pem");
                    return 2;
                }
            Startup.Clients clients = shared != null ? shared : new Startup.Clients(null);
            try {
                for (List<String> step : steps) {
                    String[] args = step.toArray(String[]::new);
                    int rc = asm.commandLine(clients, args).execute(args);
                    if (rc != 0) return rc;
                }
                return 0;
            } finally {
                if (clients != shared) clients.close();
            }
        }
    }

    /** `asm version`, the same lines as every step's -V: see {@link Version}. */
    @Command(name = "version", mixinStandardHelpOptions = true,
            description = "Print the toolkit's version, the ASM release and revision it installs, and the Java it runs on.")
    static class VersionCommand extends Step {
        @Override
        protected void run() {
            Version.facts().forEach(out::put);
            for (String line : Version.lines()) out.say(line);
        }
    }

    /** `asm completion bash|zsh`: picocli's generated script, for every subcommand and option. */
    @Command(name = "completion", mixinStandardHelpOptions = true, versionProvider = Version.class, description = {
            "Print the shell completion script of asm (tests/install installs it for bash), e.g.:",
            "  asm completion bash > ~/.local/share/bash-completion/completions/asm",
            "  source <(asm completion zsh)     # in ~/.zshrc: the same script, read through zsh's bashcompinit"})
    static class Completion extends RunsOthers implements Callable<Integer> {
        enum Shell { bash, zsh }

        @CommandLine.Parameters(paramLabel = "SHELL", description = "bash or zsh.")
        Shell shell;

        @Override
        public Integer call() {
            System.out.print(picocli.AutoComplete.bash("asm", asm.commandLine(null)));
            return 0;
        }
    }
}
