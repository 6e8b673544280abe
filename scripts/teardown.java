///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "teardown", mixinStandardHelpOptions = true,
        description = "Remove what the steps made for one cluster suffix, in reverse order: Vault's auth method, policy and mount "
                + "(VaultLayout), the Kubernetes objects of istiod-service, control-plane-prep and k8s-vault-prep (KubeLayout), then "
                + "the <suffix>/ files. Lists the plan first; --dry-run stops there. HSM objects only with --hsm, and never a KEK or "
                + "root another cluster may still use. grant-admin's binding stays (the operator's own access).")
class Teardown extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Vault vault;
    @Mixin Opts.Cluster cluster;
    @Mixin Opts.ReviewerDir dir;
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.Kek kek;
    @Mixin Opts.CaId ca;

    @Option(names = "--hsm", description = "Also destroy the cluster's KEK (--kek-id) and, when no other cluster is prepared here, the root "
            + "certificate (--ca-id), unless another cluster's istio-ca-encrypted-key names the KEK or cannot be read.")
    boolean withHsm;

    @Override
    protected void run() throws Exception {
        String suffix = cluster.require();
        Path folder = dir.of(suffix);
        Teardowns plan = new Teardowns(out, suffix, folder);
        plan.vault(VaultLayout.of(suffix), vault());
        if (ClusterId.recorded(new ClusterId.Expected(suffix, folder)) != null) plan.kube(KubeLayout.GUIDE, kube());
        else if (java.nio.file.Files.isDirectory(folder))
            out.say("no record of suffix %s's cluster in %s: its Kubernetes objects are left (their names are not the suffix's)", suffix, folder);
        else out.say("no folder %s: a teardown removes it last, so suffix %s's Kubernetes objects went then or were never made here", folder, suffix);
        if (withHsm) plan.hsm(hsm(), kek.id, ca.id, kube);
        plan.files();
        plan.run();
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new Teardown()).execute(args));
    }
}
