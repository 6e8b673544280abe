///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "k8s-vault-prep", mixinStandardHelpOptions = true,
        description = "Prepare Kubernetes for Vault's TokenReview (guide: 'Configura Kubernetes para la autenticacion de Vault'): "
                + "namespace, auth-delegator binding, token Secret, and the files <suffix>-tokenreview_jwt, -k8s_addr, -k8s_cert; "
                + "<suffix>-cluster.json records the cluster (context, server, CA fingerprint) the suffix belongs to.")
class K8sVaultPrep extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Cluster cluster;

    @Mixin Opts.ReviewerDir dir;

    @Option(names = "--namespace", defaultValue = KubeLayout.VAULT_NAMESPACE, paramLabel = "NS",
            description = "Namespace of the service account Vault reviews tokens with (default: ${DEFAULT-VALUE}).")
    String namespace;

    @Option(names = "--binding", defaultValue = KubeLayout.TOKENREVIEW_BINDING, paramLabel = "NAME",
            description = "ClusterRoleBinding to system:auth-delegator (default: ${DEFAULT-VALUE}).")
    String binding;

    @Option(names = "--rebind", description = "Prepare the suffix on the current cluster although it was prepared on another one "
            + "(moves the suffix: Vault's auth/asm-<suffix>/hsm must then get the new files, vault-setup --rewrite-reviewer-jwt).")
    boolean rebind;

    @Option(names = "--timeout", defaultValue = "2m", paramLabel = "DURATION", converter = Opts.DurationConverter.class,
            description = "How long to wait for the service account and its token, e.g. 90s, 5m; a bare number is seconds (default: ${DEFAULT-VALUE}).")
    Duration timeout;

    @Override
    protected void run() throws Exception {
        String suffix = cluster.require();
        KubeLayout layout = new KubeLayout(namespace, binding, KubeLayout.ISTIO_NAMESPACE).requireReviewerNames();
        Path outDir = dir.of(suffix);
        if (Env.exists(outDir) && !Files.isDirectory(outDir))
            throw Fail.badInput(outDir + " exists and is not a directory", "pass --dir or move it away");
        Vault.ReviewerFiles files = Vault.ReviewerFiles.in(outDir, suffix);
        Path record = ClusterId.file(outDir, suffix);
        out.put("namespace", namespace).put("binding", binding).put("secret", namespace + "/" + KubeLayout.TOKENREVIEW_SECRET);

        kube.anyCluster = true;     // the suffix's cluster is checked here, where --rebind may move it
        Kube k = kube();
        if (!rebind)
            k.requireCluster(new ClusterId.Expected(suffix, outDir), "pass the --context of the cluster of " + suffix
                    + ", or --rebind to move suffix " + suffix + " to this cluster");
        TokenReviewer reviewer = new TokenReviewer(k, layout, out);
        reviewer.refuseUnpatchable();
        Secret filled = reviewer.apply(Opts.seconds(timeout));
        if (filled == null) {   // --dry-run before the token exists
            out.change("write " + files.jwt() + ", " + files.addr() + ", " + files.cert() + " once the token is issued");
            return;
        }
        if (reviewer.writeFiles(filled, files, record) && !out.dryRun())
            out.say("The token reviewer JWT is new: give it to Vault with vault-setup --cluster-suffix %s%s --rewrite-reviewer-jwt", suffix,
                    out.given(Opts.Vault.class, Opts.ReviewerDir.class));
        out.put("cluster", k.identity().json());
        out.put("k8sAddr", k.server()).put("files", List.of(files.jwt().toString(), files.addr().toString(), files.cert().toString(),
                record.toString()));
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new K8sVaultPrep()).execute(args));
    }
}
