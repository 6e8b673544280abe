///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "install-asm", mixinStandardHelpOptions = true,
        description = "Run the guide's istioctl install (profile asm-multicloud, the HSM and Vault settings), then apply the"
                + " istiod Service (guide: 'Instale Anthos Service Mesh').")
class InstallAsm extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Vault vault;
    @Mixin IstioInstall.Variables guide;
    @Mixin Opts.Kek kek;
    @Mixin IstioInstall.RootHook rootHook;
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.CaId ca;
    @Mixin Istioctl istioctl;

    @Option(names = "--revision", defaultValue = Istio.GUIDE_REVISION, paramLabel = "REV", converter = Opts.RevisionConverter.class, description = "Revision (default ${DEFAULT-VALUE}).")
    String revision;

    @Option(names = {"-f", "--filename"}, paramLabel = "FILE", description = "Extra IstioOperator YAML for optional features, passed to istioctl.")
    List<Path> extraFiles = new ArrayList<>();

    @Option(names = "--uninstall", description = "Remove the control plane of --revision (istioctl x uninstall --revision REV), once no"
            + " namespace is labelled for it, no sidecar of it runs and the istiod Service points at another revision.")
    boolean uninstall;

    @Option(names = "--print", description = "Print the istioctl command instead of running it.")
    boolean print;

    @Option(names = "--overlay", paramLabel = "FILE", description = "Write the settings as an IstioOperator YAML file instead of running istioctl.")
    Path overlay;

    @Override
    protected boolean printsForAProgram() {
        return print;
    }

    @Override
    protected void run() throws Exception {
        if (uninstall) {
            uninstall();
            return;
        }
        Istio.InstallSettings settings = guide.settings(revision, kek, vault, overlay == null || print, out);
        for (Path f : extraFiles)
            if (!Files.isRegularFile(f)) throw Fail.badInput("-f " + f + " does not exist or is not a file", "check the path");
        if (!print && overlay == null)
            istioctl.require("bin/istioctl here or in ./" + Release.topDir(Release.DEFAULT_VERSION) + "/",
                    "run fetch-release first and run install-asm from where it extracted, or pass --istioctl");
        String rootPem = rootHook.rootPem(p11, ca.id, out);
        String hookCaId = rootHook.off ? null : ca.id;
        if (overlay != null) {
            IstioInstall.writeOverlay(overlay, settings, hookCaId, out);
            if (!print) return;
        }
        List<String> files = new ArrayList<>(extraFiles.stream().map(Path::toString).toList());
        if (hookCaId != null) files.add(IstioInstall.writeRootHook(revision, hookCaId, out).toString());
        List<String> cmd = istioctl.command(settings.istioctlArgs(files), kube);
        String shown = "WAIT_FOR_RESOURCES_TIMEOUT=" + Istioctl.quote(guide.waitTimeout) + " " + Istioctl.shown(cmd);
        out.put("command", cmd).put("environment", Map.of("WAIT_FOR_RESOURCES_TIMEOUT", guide.waitTimeout));
        if (print) { if (!out.json()) System.out.println(shown); return; }
        Kube k = kube();
        if (rootPem != null) k.apply(PluginRootHook.rootConfigMap(rootPem), out);
        if (out.dryRun()) {
            out.change("run " + shown);
        } else {
            Istioctl.install(cmd, shown, guide.waitTimeout, kube, out);
            out.change("ran istioctl install (revision " + revision + ")");
        }
        k.apply(Kube.istiodService(revision), out);
        if (!out.dryRun())
            out.next("istiod-status --wait" + out.given(Opts.Kube.class, Opts.Kek.class) + " (the guide expects istiod 2/3 ready, waiting for its CA certificate)");
    }

    /** Removes one revision's control plane after a canary upgrade: istioctl x uninstall --revision leaves the others and istiod's Secrets. */
    private void uninstall() throws Exception {
        if (!spec.commandLine().getParseResult().hasMatchedOption("--revision"))
            throw Fail.badInput("--uninstall needs the revision to remove, given as --revision", "e.g. install-asm --uninstall --revision " + Istio.GUIDE_REVISION);
        List<String> cmd = istioctl.command(Istio.uninstallArgs(revision), kube);
        out.put("revision", revision).put("command", cmd);
        if (print) { if (!out.json()) System.out.println(Istioctl.shown(cmd)); return; }
        if (!out.dryRun()) istioctl.require("bin/istioctl here", "run install-asm from the new release's folder, or pass --istioctl");
        List<String> left = IstioInstall.revisionsLeft(kube(), revision);
        if (left.isEmpty()) {
            out.say("no istiod of revision %s in %s: nothing to remove", revision, KubeLayout.ISTIO_NAMESPACE);
            out.put("removed", false);
        } else if (out.dryRun()) {
            out.change("run " + Istioctl.shown(cmd));
        } else {
            Istioctl.uninstall(cmd, guide.waitTimeout, kube, out);
            out.put("removed", true);
            out.change("removed the control plane of revision " + revision + " (" + String.join(", ", left) + " stays)");
            out.next("status" + out.given(Opts.Kube.class) + " (one istiod revision left)");
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new InstallAsm()).execute(args));
    }
}
