package asmhsm;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Secret;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * teardown's plan for one cluster suffix, from the layouts: each removal named, then made in order
 * (Vault's parts, the Kubernetes objects, the HSM objects when asked, the suffix's files, its cluster
 * record last so a run cut short can still check its cluster). What is not there is not planned, so a
 * second run plans nothing. Every refusal is made while planning, before the first removal.
 */
final class Teardowns {
    /** The Secret istiod keeps its encrypted CA key in; its kek-id names the KEK the cluster uses. */
    static final String ENCRYPTED_KEY_SECRET = "istio-ca-encrypted-key";

    private record Removal(String doing, Action action) {}

    private interface Action {
        void run() throws Exception;
    }

    private final Out out;
    private final String suffix;
    private final Path folder;
    private final List<Removal> plan = new ArrayList<>();

    Teardowns(Out out, String suffix, Path folder) {
        this.out = out;
        this.suffix = suffix;
        this.folder = folder;
    }

    void vault(VaultLayout layout, Vault v) {
        v.requireUnsealed("read " + layout.mount() + "'s setup");
        for (VaultLayout.Removal r : layout.removals(layout.read(v)))
            plan.add(new Removal(r.doing(), () -> v.delete(r.path(), r.doing())));
    }

    void kube(KubeLayout layout, Kube k) {
        var istiod = k.call(() -> Istio.istiodPods(k.client, layout.istioNamespace()), "list the istiod pods");
        var deployments = k.call(() -> k.client.apps().deployments().inNamespace(layout.istioNamespace()).withLabel("app", "istiod")
                .list().getItems(), "list istiod's Deployments");
        if (!istiod.isEmpty() || !deployments.isEmpty())
            throw Fail.failed("istiod is installed in " + layout.istioNamespace() + " (" + (deployments.isEmpty() ? istiod.size() + " pod(s)"
                    : String.join(", ", deployments.stream().map(d -> "Deployment " + d.getMetadata().getName()).toList()))
                    + "): removing what it reads would break it; nothing was removed",
                    "uninstall it first (istioctl x uninstall --revision REV), then re-run teardown");
        for (HasMetadata o : layout.removals(k)) {
            String what = Kube.describe(o);
            plan.add(new Removal("delete " + what, () -> k.call(() -> k.client.resource(o).delete(), "delete " + what)));
        }
    }

    /**
     * The KEK the cluster's istiod encrypts with, and the root, unless another cluster may use them: every
     * other suffix prepared beside this one is asked for its istio-ca-encrypted-key; one that names the KEK,
     * or cannot be read, keeps it. The root signs every cluster's CA: it stays while another suffix is prepared.
     */
    void hsm(Hsm token, String kekId, String caId, Opts.Kube kubeOpts) throws Exception {
        if (token == null) throw Fail.failed("no HSM to remove objects from (P11_LIB unset and no embedded token)", "set P11_LIB, P11_TOKEN and P11_PIN_FILE");
        if (kekId == null) throw Fail.badInput("--hsm needs the KEK's ID", "pass --kek-id (or export KEK_ID) with the KEK this cluster uses");
        Path parent = folder.toAbsolutePath().getParent();
        List<String> others = new ArrayList<>(Kube.preparedSuffixes(parent));
        others.remove(suffix);
        for (String other : others) {
            String named;
            Opts.Kube one = new Opts.Kube();
            one.kubeconfig = kubeOpts.kubeconfig;
            try {
                one.context = Kube.contextFor(kubeOpts, Vault.ReviewerFiles.in(parent.resolve(other), other).addr());
                try (Kube k = Kube.connect(one)) {
                    Secret s = k.call(() -> k.client.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(ENCRYPTED_KEY_SECRET).get(),
                            "read Secret " + ENCRYPTED_KEY_SECRET);
                    String b64 = s == null || s.getData() == null ? null : s.getData().get("kek-id");
                    named = b64 == null ? null : new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8);
                }
            } catch (Fail cannotTell) {
                throw Fail.failed("cannot tell whether cluster " + other + " uses KEK " + kekId + " (" + cannotTell.getMessage() + "); nothing was removed",
                        "make cluster " + other + "'s context reachable, or leave out --hsm");
            }
            if (kekId.equals(named))
                throw Fail.failed("KEK " + kekId + " is still used by cluster " + other + " (its " + ENCRYPTED_KEY_SECRET + " names it); nothing was removed",
                        "leave out --hsm, or tear down " + other + " first");
        }
        for (Hsm.Obj o : token.keks(kekId))
            plan.add(new Removal("destroy KEK " + kekId + " on token '" + token.tokenLabel + "'", () -> token.destroy(o.handle())));
        Hsm.CaCertificates roots = token.caCertificates(caId);
        if (!roots.isEmpty() && !others.isEmpty())
            out.say("root certificate %s stays on the HSM: cluster(s) %s are prepared beside %s", caId, String.join(", ", others), suffix);
        else for (Hsm.Obj o : roots.objects())
            plan.add(new Removal("destroy root certificate " + caId + " on token '" + token.tokenLabel + "'", () -> token.destroy(o.handle())));
    }

    /** k8s-vault-prep's files, the cluster record last, and the folder when nothing else is in it. */
    void files() {
        Vault.ReviewerFiles f = Vault.ReviewerFiles.in(folder, suffix);
        for (Path p : List.of(f.jwt(), f.addr(), f.cert(), ClusterId.file(folder, suffix)))
            if (Files.isRegularFile(p)) plan.add(new Removal("delete " + p, () -> Files.delete(p)));
        if (Files.isDirectory(folder))
            plan.add(new Removal("remove folder " + folder + " if empty", () -> {
                try (var left = Files.list(folder)) {
                    List<String> names = left.map(p -> p.getFileName().toString()).sorted().toList();
                    if (names.isEmpty()) Files.delete(folder);
                    else out.say("%s stays: it also holds %s", folder, String.join(", ", names));
                }
            }));
    }

    /** Lists the plan, then (unless --dry-run) makes it; an empty plan is success. */
    void run() throws Exception {
        boolean onlyFolder = plan.size() == 1 && plan.get(0).doing().startsWith("remove folder");
        out.put("changes", plan.stream().map(Removal::doing).toList());
        if (plan.isEmpty() || onlyFolder && folderHoldsOthers()) {
            out.put("changes", List.of());
            out.say("nothing to remove for cluster suffix %s", suffix);
            return;
        }
        if (!out.dryRun()) {
            out.say("teardown of cluster suffix %s, in this order:", suffix);
            for (Removal r : plan) out.say("  %s", r.doing());
        }
        for (Removal r : plan) {
            if (!out.dryRun()) r.action().run();
            out.change(out.dryRun() ? r.doing() : "done: " + r.doing());
        }
    }

    private boolean folderHoldsOthers() throws java.io.IOException {
        try (var left = Files.list(folder)) {
            return left.findAny().isPresent();
        }
    }
}
