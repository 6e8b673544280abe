package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Base64;

/**
 * The account Vault calls TokenReview as, in one cluster (k8s-vault-prep): the layout's namespace,
 * auth-delegator binding and token Secret, and the files vault-setup gives Vault (the reviewer JWT,
 * the API address and its CA), written from the Secret once the token controller has filled it.
 */
record TokenReviewer(Kube k, KubeLayout layout, Out out) {
    private String secretName() {
        return layout.vaultNamespace() + "/" + KubeLayout.TOKENREVIEW_SECRET;
    }

    /** What a patch cannot fix, refused before anything changes: a binding of another role, a Secret that is not the account's token. */
    void refuseUnpatchable() {
        ClusterRoleBinding want = layout.reviewerBindingObject(), crb = k.live(want);
        String binding = layout.reviewerBinding();
        if (crb != null && !want.getRoleRef().getName().equals(crb.getRoleRef().getName()))
            throw Fail.failed("ClusterRoleBinding " + binding + " exists and binds " + crb.getRoleRef().getKind() + " "
                    + crb.getRoleRef().getName() + "; the role of a binding cannot be changed",
                    "check who uses it, then: kubectl delete clusterrolebinding " + binding + " (or pass --binding NAME)");
        Secret live = k.live(layout.reviewerSecret());
        if (live != null && !KubeLayout.isReviewerToken(live))
            throw Fail.failed("Secret " + secretName() + " exists but is not a token of service account " + KubeLayout.TOKENREVIEW_SA
                    + " (type " + live.getType() + ", account " + KubeLayout.accountOf(live) + ")",
                    "check who uses it, then: kubectl -n " + layout.vaultNamespace() + " delete secret " + KubeLayout.TOKENREVIEW_SECRET);
    }

    /**
     * Applies the namespace, the binding and the token Secret, waiting up to `seconds` for the
     * service account and then the token; the filled Secret, or null under --dry-run before it exists.
     */
    Secret apply(int seconds) {
        String ns = layout.vaultNamespace();
        k.apply(layout.vaultNs(), out);
        k.apply(layout.reviewerBindingObject(), out);
        if (!out.dryRun())
            k.await("service account " + ns + "/" + KubeLayout.TOKENREVIEW_SA, seconds,
                    "is kube-controller-manager running? (it creates every namespace's default service account)",
                    () -> k.client.serviceAccounts().inNamespace(ns).withName(KubeLayout.TOKENREVIEW_SA).get(), out);
        k.apply(layout.reviewerSecret(), out);
        if (out.dryRun()) return issued(k.live(layout.reviewerSecret()));
        return k.await("the token in Secret " + secretName(), seconds,
                "is kube-controller-manager running with --service-account-private-key-file? It fills service-account-token Secrets",
                () -> issued(k.client.secrets().inNamespace(ns).withName(KubeLayout.TOKENREVIEW_SECRET).get()), out);
    }

    /** The Secret once the token controller has filled in its token and CA, else null. */
    private static Secret issued(Secret s) {
        if (s == null || s.getData() == null) return null;
        String token = s.getData().get("token"), ca = s.getData().get("ca.crt");
        return token != null && !token.isEmpty() && ca != null && !ca.isEmpty() ? s : null;
    }

    /**
     * Writes the three files and the cluster record from the filled Secret, each only when it
     * differs; true when it replaced a reviewer JWT (Vault must then get the new one).
     */
    boolean writeFiles(Secret filled, Vault.ReviewerFiles files, Path clusterRecord) throws IOException {
        byte[] token = Base64.getDecoder().decode(filled.getData().get("token"));
        byte[] ca = Base64.getDecoder().decode(filled.getData().get("ca.crt"));
        // The Secret holds the PEM as it is; written byte for byte it needs none of the guide's sed repairs.
        Pki.certificates(Pki.pemBlocks(new String(ca, StandardCharsets.UTF_8), "ca.crt of Secret " + KubeLayout.TOKENREVIEW_SECRET),
                "ca.crt of Secret " + secretName());
        byte[] jwt = Arrays.copyOf(token, token.length + 1);
        jwt[token.length] = '\n';
        boolean newJwt;
        try {
            newJwt = write(files.jwt(), jwt, true);
        } finally {
            Arrays.fill(token, (byte) 0);
            Arrays.fill(jwt, (byte) 0);
        }
        write(files.addr(), (k.server() + "\n").getBytes(StandardCharsets.UTF_8), false);
        write(files.cert(), ca, false);
        // no secret: mode 0644, as the other two; what every later step for this suffix checks its cluster against
        write(clusterRecord, (Out.toJson(k.identity().json()) + "\n").getBytes(StandardCharsets.UTF_8), false);
        return newJwt;
    }

    /** Writes a file unless it already holds these bytes (and, for a secret, is private); true if it replaced one. */
    private boolean write(Path file, byte[] content, boolean secret) throws IOException {
        boolean exists = Files.isRegularFile(file);
        boolean same = exists && Arrays.equals(Files.readAllBytes(file), content);
        boolean privateEnough = !secret || !exists || Files.getPosixFilePermissions(file).equals(PosixFilePermissions.fromString("rw-------"));
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
}
