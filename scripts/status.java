///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "status", mixinStandardHelpOptions = true,
        description = {"One checklist of the whole procedure, read live from the HSM, Vault and the cluster: each line done, "
                + "missing, wrong or unknown (it could not be checked, with why), with the step that fixes it. Exits 0 only when "
                + "everything is done.",
                "",
                "One cluster: CLUSTER_SUFFIX (--cluster-suffix) and the kubeconfig context (--context, default the current one).",
                "Every cluster: --all-suffixes checks each <suffix>/ folder k8s-vault-prep wrote in --dir (default .), against the"
                        + " kubeconfig context whose server is the one k8s-vault-prep recorded in <suffix>/<suffix>-k8s_addr; one block"
                        + " per cluster, and under --json {\"clusters\": [{\"clusterSuffix\", \"context\", \"checks\", ...}, ...]}.",
                "",
                "Certificates: days left until the root and the Istio CA certificate expire (--json: daysLeft), wrong once fewer than"
                        + " --wrong-days are left, a warning under --warn-days; each Istio CA named by serial, SKI, end of validity and cluster."})
class Status extends Step {
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.Vault vault;
    @Mixin Opts.Kube kube;
    @Mixin Opts.Cluster cluster;

    @Mixin Opts.Kek kek;

    @Mixin Opts.CaId ca;

    @Option(names = "--warn-days", defaultValue = "30", paramLabel = "N",
            description = "Warn when the root or the Istio CA certificate has fewer than N days left (default ${DEFAULT-VALUE}).")
    int warnDays;

    @Option(names = "--wrong-days", defaultValue = "0", paramLabel = "N",
            description = "Call a certificate wrong when it has fewer than N days left (default ${DEFAULT-VALUE}: once it has expired).")
    int wrongDays;

    @Option(names = "--all-suffixes", description = "Check every cluster: each <suffix>/ folder of k8s-vault-prep in --dir, one block each.")
    boolean allSuffixes;

    @Option(names = "--dir", defaultValue = ".", paramLabel = "DIR",
            description = "With --all-suffixes: the folder holding the <suffix>/ folders (default: the current one).")
    java.nio.file.Path dir;

    @Override
    protected void run() {
        new StatusReport(this, warnDays, wrongDays, allSuffixes, dir).run();
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new Status()).execute(args));
    }
}
