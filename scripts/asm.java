///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//SOURCES preflight.java grant-admin.java gen-kek.java import-ca.java hsm-info.java k8s-vault-prep.java vault-setup.java vault-verify.java fetch-release.java control-plane-prep.java istiod-service.java install-asm.java istiod-status.java decrypt-csr.java sign-csr.java upload-chain.java load-root.java verify-ca.java renew-ca.java rotate-ca.java verify-mtls.java enable-injection.java external-ip.java status.java teardown.java
//MAIN asmhsm.Asm
//CDS
package asmhsm;

import static asmhsm.AsmCommands.sub;

import java.util.List;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Every step as a subcommand: `jbang asm@org gen-kek ...`. Subcommands are added in code,
 * not in the annotation: picocli reads every subcommand's options (and loads the types they
 * mention) when it is added, which a one-step run would pay for steps it will
 * not run; so a run adds only the step it names, and help (or a typo) adds them all.
 * asm's own subcommands (run, session ...) live in lib/AsmCommands.java, beside the start-up machinery.
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
    static final Map<String, Class<?>> COMMANDS = AsmCommands.table(
            sub("run", AsmCommands.Run.class),
            sub("warm-up", AsmCommands.WarmUp.class),
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
            sub("session", AsmCommands.SessionCommand.class),
            sub("version", AsmCommands.VersionCommand.class),
            sub("completion", AsmCommands.Completion.class),
            sub("help", CommandLine.HelpCommand.class));

    /** The subcommands' names, in order. */
    static final List<String> SUBCOMMANDS = List.copyOf(COMMANDS.keySet());

    /** Subcommands that read every other one (the help of a step, the completion of all). */
    static final Set<String> NEED_ALL = Set.of("help", "completion");

    /** One subcommand's object. */
    static Object step(String name) {
        Class<?> command = COMMANDS.get(name);
        if (command == null) throw new IllegalArgumentException(name);
        return AsmCommands.make(name, command);
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
            if (command instanceof AsmCommands.RunsOthers r) r.use(Asm::commandLine, shared);
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
        System.exit(Startup.main(args, () -> commandLine(args).execute(args), () -> commandLine()));
    }
}
