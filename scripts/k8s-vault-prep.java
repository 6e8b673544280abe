///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
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
        if (!namespace.matches("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"))
            throw Fail.badInput("namespace '" + namespace + "' is not a valid Kubernetes name", "use lower-case letters, digits and dashes");
        if (!binding.matches("[a-z0-9:]([-a-z0-9.:]{0,251}[a-z0-9])?"))
            throw Fail.badInput("binding name '" + binding + "' is not a valid Kubernetes name", "use lower-case letters, digits, dashes, dots");
        Path outDir = dir.of(suffix);
        if (Env.exists(outDir) && !Files.isDirectory(outDir))
            throw Fail.badInput(outDir + " exists and is not a directory", "pass --dir or move it away");
        Vault.ReviewerFiles files = Vault.ReviewerFiles.in(outDir, suffix);
        out.put("namespace", namespace).put("binding", binding).put("secret", namespace + "/" + KubeLayout.TOKENREVIEW_SECRET);

        KubeLayout layout = new KubeLayout(namespace, binding, KubeLayout.ISTIO_NAMESPACE);
        ClusterRoleBinding crb = layout.reviewerBindingObject();
        Secret secret = layout.reviewerSecret();

        kube.anyCluster = true;     // the suffix's cluster is checked here, where --rebind may move it
        Kube k = kube();
        if (!rebind)
            k.requireCluster(new ClusterId.Expected(suffix, outDir), "pass the --context of the cluster of " + suffix
                    + ", or --rebind to move suffix " + suffix + " to this cluster");
        // What a patch cannot fix is refused before anything changes.
        ClusterRoleBinding liveCrb = k.live(crb);
        if (liveCrb != null && !crb.getRoleRef().getName().equals(liveCrb.getRoleRef().getName()))
            throw Fail.failed("ClusterRoleBinding " + binding + " exists and binds " + liveCrb.getRoleRef().getKind() + " "
                    + liveCrb.getRoleRef().getName() + "; the role of a binding cannot be changed",
                    "check who uses it, then: kubectl delete clusterrolebinding " + binding + " (or pass --binding NAME)");
        Secret live = k.live(secret);
        if (live != null && (!KubeLayout.TOKEN_TYPE.equals(live.getType()) || !KubeLayout.TOKENREVIEW_SA.equals(annotation(live))))
            throw Fail.failed("Secret " + namespace + "/" + KubeLayout.TOKENREVIEW_SECRET + " exists but is not a token of service account "
                    + KubeLayout.TOKENREVIEW_SA + " (type " + live.getType() + ", account " + annotation(live) + ")",
                    "check who uses it, then: kubectl -n " + namespace + " delete secret " + KubeLayout.TOKENREVIEW_SECRET);

        k.apply(layout.vaultNs(), out);
        k.apply(crb, out);
        if (!out.dryRun())
            k.await("service account " + namespace + "/" + KubeLayout.TOKENREVIEW_SA, Opts.seconds(timeout),
                    "is kube-controller-manager running? (it creates every namespace's default service account)",
                    () -> k.client.serviceAccounts().inNamespace(namespace).withName(KubeLayout.TOKENREVIEW_SA).get(), out);
        k.apply(secret, out);
        Secret filled = out.dryRun() ? issued(live)
                : k.await("the token in Secret " + namespace + "/" + KubeLayout.TOKENREVIEW_SECRET, Opts.seconds(timeout),
                    "is kube-controller-manager running with --service-account-private-key-file? It fills service-account-token Secrets",
                    () -> issued(k.client.secrets().inNamespace(namespace).withName(KubeLayout.TOKENREVIEW_SECRET).get()), out);
        if (filled == null) {   // --dry-run before the token exists
            out.change("write " + files.jwt() + ", " + files.addr() + ", " + files.cert() + " once the token is issued");
            return;
        }
        byte[] jwt = Base64.getDecoder().decode(filled.getData().get("token"));
        byte[] ca = Base64.getDecoder().decode(filled.getData().get("ca.crt"));
        // The Secret holds the PEM as it is; written byte for byte it needs none of the guide's sed repairs.
        Pki.certificates(Pki.pemBlocks(new String(ca, StandardCharsets.UTF_8), "ca.crt of Secret " + KubeLayout.TOKENREVIEW_SECRET),
                "ca.crt of Secret " + namespace + "/" + KubeLayout.TOKENREVIEW_SECRET);
        if (write(files.jwt(), concat(jwt, "\n"), true) && !out.dryRun())
            out.say("The token reviewer JWT is new: give it to Vault with vault-setup --cluster-suffix %s%s --rewrite-reviewer-jwt", suffix,
                    out.given(Opts.Vault.class, Opts.ReviewerDir.class));
        write(files.addr(), (k.server() + "\n").getBytes(StandardCharsets.UTF_8), false);
        write(files.cert(), ca, false);
        Arrays.fill(jwt, (byte) 0);
        // no secret: mode 0644, as the other two; what every later step for this suffix checks its cluster against
        write(ClusterId.file(outDir, suffix), (Out.toJson(k.identity().json()) + "\n").getBytes(StandardCharsets.UTF_8), false);
        out.put("cluster", k.identity().json());
        out.put("k8sAddr", k.server()).put("files", List.of(files.jwt().toString(), files.addr().toString(), files.cert().toString(),
                ClusterId.file(outDir, suffix).toString()));
    }

    private static String annotation(Secret s) {
        var a = s.getMetadata().getAnnotations();
        return a == null ? null : a.get(KubeLayout.SA_ANNOTATION);
    }

    /** The Secret once the token controller has filled in its token and CA, else null. */
    private static Secret issued(Secret s) {
        if (s == null || s.getData() == null) return null;
        String token = s.getData().get("token"), ca = s.getData().get("ca.crt");
        return token != null && !token.isEmpty() && ca != null && !ca.isEmpty() ? s : null;
    }

    private static byte[] concat(byte[] a, String b) {
        byte[] t = b.getBytes(StandardCharsets.UTF_8);
        byte[] r = Arrays.copyOf(a, a.length + t.length);
        System.arraycopy(t, 0, r, a.length, t.length);
        return r;
    }

    /** Writes a file unless it already holds these bytes (and, for a secret, is private); true if it replaced one. */
    private boolean write(Path file, byte[] content, boolean secret) throws Exception {
        boolean exists = Files.isRegularFile(file);
        boolean same = exists && Arrays.equals(Files.readAllBytes(file), content);
        boolean privateEnough = !secret || !exists
                || Files.getPosixFilePermissions(file).equals(java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        if (same && privateEnough) {
            out.say("%s already up to date", file);
            return false;
        }
        if (!out.dryRun()) {
            if (secret) Env.writeSecret(file, content);
            else Env.writeFile(file, content, "rw-r--r--");
        }
        out.change((exists ? (out.dryRun() ? "update " : "updated ") : (out.dryRun() ? "write " : "wrote ")) + file
                + (secret ? " (mode 0600)" : ""));
        return exists && !same;
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new K8sVaultPrep()).execute(args));
    }
}
