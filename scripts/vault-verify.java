///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "vault-verify", mixinStandardHelpOptions = true,
        description = "Before anything is installed, do what istiod's Vault client will do: log in at auth/asm-<suffix>/hsm/login "
                + "with a token of istio-system/istiod-service-account, role istiod, and read the HSM secret (its values are never shown).")
class VaultVerify extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Vault vault;
    @Mixin Opts.Cluster cluster;

    @Mixin Opts.ReviewerDir dir; // only read to explain a failed TokenReview

    @Option(names = "--create-sa", description = "Create namespace istio-system and service account istiod-service-account if missing.")
    boolean createSa;

    @Override
    protected void run() {
        String suffix = cluster.require();
        new IstiodVaultLogin(this, suffix, dir.of(suffix)).verify(createSa);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new VaultVerify()).execute(args));
    }
}
