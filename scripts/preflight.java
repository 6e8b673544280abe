///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
//FILES supported-versions.txt=../lib/supported-versions.txt
package asmhsm;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "preflight", mixinStandardHelpOptions = true,
        description = "Check the cluster, HSM and Vault meet the guide's requirements (guide: 'Requisitos'). "
                + "Runs every check, prints a checklist, exits 1 when a required check fails.")
class Preflight extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.Vault vault;

    @Option(names = "--versions-file", defaultValue = "${env:ASM_SUPPORTED_VERSIONS}", paramLabel = "FILE",
            description = "Supported Kubernetes versions, one prefix a line (env ASM_SUPPORTED_VERSIONS; default: the toolkit's list).")
    Path versionsFile;

    @Option(names = "--upgrade-to", paramLabel = "VERSION",
            description = "Also check a canary upgrade to this ASM release (e.g. 1.10.6-asm.2) is supported from --upgrade-from and the cluster runs that one's revision.")
    String upgradeTo;

    @Option(names = "--upgrade-from", defaultValue = Release.DEFAULT_VERSION, paramLabel = "VERSION",
            description = "The ASM release installed now (default ${DEFAULT-VALUE}, revision asm-198-6).")
    String upgradeFrom;

    @Option(names = "--warn-only", description = "Badly named Service ports are a warning, not a failure.")
    boolean warnOnly;

    @Option(names = "--skip", split = ",", paramLabel = "CHECK",
            description = "Checks not to run: nodes, version, permissions, ports, hsm, vault (e.g. --skip hsm when the HSM is another team's).")
    List<String> skip = new ArrayList<>();

    @Override
    protected void run() {
        Requirements checks = new Requirements(out, skip, common.verbose);
        boolean upgrade = upgradeTo != null;
        if (upgrade) {
            Release.requireVersion(upgradeTo);
            Release.requireVersion(upgradeFrom);
        }
        Release.Supported supported = Release.Supported.read(versionsFile);
        List<String> onCluster = checks.clusterChecks(upgrade);
        Kube k = onCluster.isEmpty() ? null : checks.connect(this::kube, onCluster);
        if (k != null) {
            checks.run("nodes", () -> checks.nodes(k));
            checks.run("version", () -> checks.version(k, supported));
            checks.run("permissions", () -> checks.permissions(k));
            checks.run("ports", () -> checks.ports(k, warnOnly));
            if (upgrade) checks.run("upgrade", () -> checks.upgrade(k, upgradeFrom, upgradeTo, supported.upgrades()));
        }
        checks.run("hsm", () -> checks.hsm(p11));
        checks.run("vault", () -> checks.vault(vaultAs(null)));
        checks.finish(upgrade);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new Preflight()).execute(args));
    }
}
