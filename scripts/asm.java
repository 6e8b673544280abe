///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//SOURCES preflight.java grant-admin.java gen-kek.java import-ca.java hsm-info.java k8s-vault-prep.java vault-setup.java vault-verify.java fetch-release.java control-plane-prep.java istiod-service.java install-asm.java istiod-status.java decrypt-csr.java sign-csr.java upload-chain.java load-root.java verify-ca.java renew-ca.java rotate-ca.java verify-mtls.java enable-injection.java external-ip.java status.java teardown.java
//MAIN asmhsm.Asm
//CDS
package asmhsm;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.LinkedHashMap;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Every step as a subcommand: `jbang asm@org gen-kek ...`. Subcommands are added in code,
 * not in the annotation: picocli reads every subcommand's options (and loads the types they
 * mention) when it is added, which costs a one-step run about 0.1-0.2 s for 20 steps it will
 * not run; so a run adds only the step it names, and help (or a typo) adds them all.
 */
@Command(name = "asm", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "Anthos Service Mesh 1.9 with the Istiod CA key in a Luna HSM and HSM credentials in Vault: the guide's steps.")
class Asm implements Runnable {
    /**
     * Every subcommand, in the guide's order (`asm --help` lists them so): the one list of them.
     * A step here with a script of its own (scripts/NAME.java) is also on this file's //SOURCES
     * line and a jbang-catalog.json alias, which JBang needs spelled out; LayoutTest checks they
     * agree with this table. Classes, not objects: only the step that runs is made and added.
     */
    static final Map<String, Class<?>> COMMANDS = table(
            sub("run", Run.class),
            sub("warm-up", WarmUp.class),
            sub("preflight", Preflight.class),
            sub("grant-admin", GrantAdmin.class),
            sub("gen-kek", GenKek.class),
            sub("import-ca", ImportCa.class),
            sub("hsm-info", HsmInfo.class),
            sub("k8s-vault-prep", K8sVaultPrep.class),
            sub("vault-setup", VaultSetup.class),
            sub("vault-verify", VaultVerify.class),
            sub("fetch-release", FetchRelease.class),
            sub("control-plane-prep", ControlPlanePrep.class),
            sub("istiod-service", IstiodService.class),
            sub("install-asm", InstallAsm.class),
            sub("istiod-status", IstiodStatus.class),
            sub("decrypt-csr", DecryptCsr.class),
            sub("sign-csr", SignCsr.class),
            sub("upload-chain", UploadChain.class),
            sub("load-root", LoadRoot.class),
            sub("verify-ca", VerifyCa.class),
            sub("renew-ca", RenewCa.class),
            sub("rotate-ca", RotateCa.class),
            sub("verify-mtls", VerifyMtls.class),
            sub("enable-injection", EnableInjection.class),
            sub("external-ip", ExternalIp.class),
            sub("status", Status.class),
            sub("teardown", Teardown.class),
            sub("session", SessionCommand.class),
            sub("version", VersionCommand.class),
            sub("completion", Completion.class),
            sub("help", CommandLine.HelpCommand.class));

    /** The subcommands' names, in order. */
    static final List<String> SUBCOMMANDS = List.copyOf(COMMANDS.keySet());

    /** Subcommands that read every other one (the help of a step, the completion of all). */
    static final Set<String> NEED_ALL = Set.of("help", "completion");

    private static Map.Entry<String, Class<?>> sub(String name, Class<?> command) {
        return Map.entry(name, command);
    }

    @SafeVarargs
    private static Map<String, Class<?>> table(Map.Entry<String, Class<?>>... subs) {
        Map<String, Class<?>> t = new LinkedHashMap<>();
        for (var sub : subs)
            if (t.put(sub.getKey(), sub.getValue()) != null) throw new IllegalStateException("twice in the table: " + sub.getKey());
        return java.util.Collections.unmodifiableMap(t);
    }

    /** One subcommand's object. */
    static Object step(String name) {
        Class<?> command = COMMANDS.get(name);
        if (command == null) throw new IllegalArgumentException(name);
        try {
            return command.getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot make " + name, e);
        }
    }

    /** The asm command for these arguments: only the named step, or every step when none is named. */
    static CommandLine commandLine(String... args) {
        return commandLine(null, args);
    }

    /** The same, its steps taking their clients from `shared` (null: each its own). */
    static CommandLine commandLine(Startup.Clients shared, String... args) {
        CommandLine cl = Step.commandLine(new Asm());
        String first = args.length == 0 ? null : args[0];
        boolean one = first != null && COMMANDS.containsKey(first) && !NEED_ALL.contains(first);
        for (String name : one ? List.of(first) : SUBCOMMANDS) {
            Object command = step(name);
            if (command instanceof Step s) s.with(shared);
            if (command instanceof Run r) r.shared = shared;
            cl.addSubcommand(name, command);
        }
        return Step.shared(cl);
    }

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String... args) {
        System.exit(Startup.main(args, () -> commandLine(args).execute(args)));
    }

    /** A training run for the class-data archive: see {@link Startup.WarmUp}. */
    @Command(name = "warm-up", hidden = true, description = "A training run for the class-data archive (no real server is touched).")
    static class WarmUp implements Callable<Integer> {
        @Override
        public Integer call() throws Exception {
            Startup.WarmUp.run(Asm.commandLine());
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
    static class SessionCommand implements Runnable {
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

            @Override
            public Integer call() throws Exception {
                // start checked --idle before it ran this
                return Session.serve(Opts.duration(idle), (shared, args) -> commandLine(shared, args).execute(args), new WarmUp());
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
    static class Run implements Callable<Integer> {
        @CommandLine.Unmatched
        List<String> words = new ArrayList<>();

        /** The session's clients when it runs in one; else the chain shares its own. */
        Startup.Clients shared;

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
                    int rc = commandLine(clients, args).execute(args);
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
    static class Completion implements Callable<Integer> {
        enum Shell { bash, zsh }

        @CommandLine.Parameters(paramLabel = "SHELL", description = "bash or zsh.")
        Shell shell;

        @Override
        public Integer call() {
            System.out.print(picocli.AutoComplete.bash("asm", Asm.commandLine()));
            return 0;
        }
    }
}
