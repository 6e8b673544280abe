///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "vault-setup", mixinStandardHelpOptions = true,
        description = "Store the HSM credentials in Vault behind Kubernetes auth (guide: 'Configura Vault para almacenar "
                + "credenciales de HSM'): kv mount asm-<suffix>, secret asm-<suffix>/hsm, policy, kubernetes auth and role istiod.")
class VaultSetup extends Step {
    @Mixin Opts.Vault vault;
    @Mixin Opts.Cluster cluster;

    @Option(names = "--client-cert", required = true, paramLabel = "FILE", description = "HSM client certificate (PEM).")
    Path clientCert;

    @Option(names = "--client-key", required = true, paramLabel = "FILE", description = "HSM client key (PEM, mode 0600).")
    Path clientKey;

    @Option(names = "--server-cert", required = true, paramLabel = "FILE", description = "HSM server certificate (PEM).")
    Path serverCert;

    @Option(names = "--pin-file", defaultValue = "${env:P11_PIN_FILE}", paramLabel = "FILE",
            description = "File holding the HSM slot PIN to store in Vault (secret asm-<suffix>/hsm, key PIN) for istiod's "
                    + "HSM plugin to log in with; mode 0600 (env P11_PIN_FILE). vault-setup itself does not log in to the HSM.")
    Path pinFile;

    @Mixin Opts.ReviewerDir dir;

    @Option(names = "--rewrite-reviewer-jwt", description = "Write the auth config even if it looks current: Vault never "
            + "shows the token reviewer JWT it holds, so a new one (k8s-vault-prep after its Secret was re-created) needs this.")
    boolean rewriteJwt;

    @Override
    protected void run() throws Exception {
        String suffix = cluster.require();
        VaultLayout layout = VaultLayout.of(suffix);
        out.put("mount", layout.mount()).put("secretPath", layout.secretPath()).put("policy", layout.policy())
                .put("authPath", layout.authPath()).put("role", VaultLayout.ROLE);
        VaultPlan.Inputs given = VaultPlan.read(Vault.ReviewerFiles.in(dir.of(suffix), suffix), suffix, clientCert, clientKey, serverCert, pinFile);
        Vault v = vault();
        v.requireUnsealed("configure " + layout.mount());
        VaultPlan.apply(layout, v, VaultPlan.plan(layout, v, given, rewriteJwt, out), out);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new VaultSetup()).execute(args));
    }
}
