///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

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
            if (!spec.commandLine().getParseResult().hasMatchedOption("--revision"))
                throw Fail.badInput("--uninstall needs the revision to remove, given as --revision", "e.g. install-asm --uninstall --revision " + Istio.GUIDE_REVISION);
            IstioInstall.uninstall(istioctl, kube, this::kube, revision, guide.waitTimeout, print, out);
            return;
        }
        Istio.InstallSettings settings = guide.settings(revision, kek, vault, overlay == null || print, out);
        IstioInstall.requireFiles(extraFiles);
        if (!print && overlay == null) istioctl.requireForInstall();
        String rootPem = rootHook.rootPem(p11, ca.id, out);
        String hookCaId = rootHook.off ? null : ca.id;
        if (overlay != null) {
            IstioInstall.writeOverlay(overlay, settings, hookCaId, out);
            if (!print) return;
        }
        List<String> files = new ArrayList<>(extraFiles.stream().map(Path::toString).toList());
        if (hookCaId != null) files.add(IstioInstall.writeRootHook(revision, hookCaId, out).toString());
        List<String> cmd = istioctl.command(settings.istioctlArgs(files), kube);
        out.put("command", cmd).put("environment", Map.of("WAIT_FOR_RESOURCES_TIMEOUT", guide.waitTimeout));
        if (print) { if (!out.json()) System.out.println(Istioctl.shown(cmd, guide.waitTimeout)); return; }
        Kube k = kube();
        if (rootPem != null) k.apply(PluginRootHook.rootConfigMap(rootPem), out);
        Istioctl.install(cmd, guide.waitTimeout, revision, kube, out);
        k.apply(KubeLayout.GUIDE.istiodService(revision), out);
        if (!out.dryRun())
            out.next("istiod-status --wait" + out.given(Opts.Kube.class, Opts.Kek.class) + " (the guide expects istiod 2/3 ready, waiting for its CA certificate)");
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new InstallAsm()).execute(args));
    }
}
