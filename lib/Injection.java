package asmhsm;

import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Sidecar injection of one namespace by an istiod revision (guide: 'Inserta proxies de sidecar'): the
 * namespace's istio.io/rev label, the rollout restart of its Deployments whose pods lack the revision,
 * and which of its pods still do.
 */
final class Injection {
    private Injection() {}

    /** A namespace name that may be injected: a DNS label, and not one the injector leaves alone. */
    static String requireInjectable(String namespace) {
        if (!namespace.matches(Opts.DNS_LABEL))
            throw Fail.badInput("'" + namespace + "' is not a namespace name", "give the namespace as kubectl get ns shows it");
        if (Istio.SYSTEM_NAMESPACES.contains(namespace) || namespace.equals(KubeLayout.ISTIO_NAMESPACE))
            throw Fail.badInput("namespace " + namespace + " is never injected", "label the namespaces of your workloads instead");
        return namespace;
    }

    /** The namespace as it is now; refuses one that does not exist. */
    static Namespace read(Kube k, String namespace) {
        Namespace ns = k.call(() -> k.client.namespaces().withName(namespace).get(), "read namespace " + namespace);
        if (ns == null) throw Fail.badInput("namespace " + namespace + " does not exist", "list the namespaces with: kubectl get ns");
        return ns;
    }

    /** The revision asked for (null: none), or the only one istiod runs under; refuses to guess between several. */
    static String revision(Kube k, String asked) {
        Set<String> revs = k.call(() -> Istio.revisions(k.client), "list istiod in " + KubeLayout.ISTIO_NAMESPACE);
        if (asked != null) {
            if (!revs.contains(asked))
                throw Fail.failed("no istiod runs with revision " + asked + (revs.isEmpty() ? " (no istiod found)" : " (istiod revisions: " + String.join(", ", revs) + ")"),
                        revs.isEmpty() ? "install the mesh first (install-asm)" : "pass one of: --revision " + String.join(" | --revision ", revs));
            return asked;
        }
        if (revs.isEmpty())
            throw Fail.failed("no istiod with an " + Istio.REV_LABEL + " label in " + KubeLayout.ISTIO_NAMESPACE,
                    "install the mesh first (install-asm), or pass --revision if istiod runs elsewhere");
        if (revs.size() > 1)
            throw Fail.badInput("istiod runs under several revisions: " + String.join(", ", revs),
                    "choose one with --revision (e.g. --revision " + revs.iterator().next() + ")");
        return revs.iterator().next();
    }

    /** kubectl label namespace N istio-injection- istio.io/rev=R --overwrite, as one merge patch. */
    static void label(Kube k, Namespace ns, String rev, Out out) {
        String namespace = ns.getMetadata().getName();
        Map<String, String> labels = ns.getMetadata().getLabels() == null ? Map.of() : ns.getMetadata().getLabels();
        boolean hasOld = labels.containsKey(Istio.INJECTION_LABEL);
        String current = labels.get(Istio.REV_LABEL);
        if (!hasOld && rev.equals(current)) {
            out.say("namespace %s is already labelled %s=%s", namespace, Istio.REV_LABEL, rev);
            return;
        }
        String what = "label namespace " + namespace + " " + Istio.REV_LABEL + "=" + rev
                + (current != null && !current.equals(rev) ? " (was " + current + ")" : "")
                + (hasOld ? ", removing " + Istio.INJECTION_LABEL + "=" + labels.get(Istio.INJECTION_LABEL) : "");
        out.manifest(k.manifest(new NamespaceBuilder(ns).editMetadata()
                .removeFromLabels(Istio.INJECTION_LABEL).addToLabels(Istio.REV_LABEL, rev).endMetadata().build()));
        if (out.dryRun()) { out.change(what); return; }
        String patch = "{\"metadata\":{\"labels\":{\"" + Istio.INJECTION_LABEL + "\":null,\"" + Istio.REV_LABEL + "\":\"" + rev + "\"}}}";
        k.call(() -> k.client.namespaces().withName(namespace).patch(PatchContext.of(PatchType.JSON_MERGE), patch),
                "label namespace " + namespace);
        out.change(what.replaceFirst("^label", "labelled"));
    }

    /**
     * Restarts (rollout restart) each Deployment that has pods without the revision; one whose pods all have
     * it, or that is paused, is left alone. The names of those restarted.
     */
    static List<String> restartDeployments(Kube k, String namespace, String rev, Out out) {
        List<Deployment> deps = k.call(() -> k.client.apps().deployments().inNamespace(namespace).list().getItems(),
                "list the Deployments in " + namespace);
        List<String> restarted = new ArrayList<>();
        for (Deployment d : deps) {
            String name = d.getMetadata().getName();
            if (Boolean.TRUE.equals(d.getSpec().getPaused())) {
                out.warn("Deployment " + name + " is paused: not restarted (kubectl rollout resume deployment/" + name + " -n " + namespace + ")");
                continue;
            }
            List<Pod> pods = k.call(() -> k.client.pods().inNamespace(namespace).withLabelSelector(d.getSpec().getSelector()).list().getItems(),
                    "list the pods of Deployment " + name);
            List<Pod> live = pods.stream().filter(Injection::live).toList();
            if (!live.isEmpty() && live.stream().allMatch(p -> rev.equals(Istio.revisionOf(p)))) {
                out.say("Deployment %s: its pods already carry the revision", name);
                continue;
            }
            if (out.dryRun()) { out.change("restart Deployment " + name); restarted.add(name); continue; }
            k.call(() -> k.client.apps().deployments().inNamespace(namespace).withName(name).rolling().restart(),
                    "restart Deployment " + name);
            out.change("restarted Deployment " + name);
            restarted.add(name);
        }
        if (deps.isEmpty()) out.say("no Deployments in %s to restart", namespace);
        return restarted;
    }

    /** Live pods of the namespace that do not carry the revision label. */
    static List<String> lacking(Kube k, String namespace, String rev) {
        List<Pod> pods = k.call(() -> k.client.pods().inNamespace(namespace).list().getItems(), "list the pods in " + namespace);
        List<String> names = new ArrayList<>();
        for (Pod p : pods) if (live(p) && !rev.equals(Istio.revisionOf(p))) names.add(p.getMetadata().getName());
        return names;
    }

    /** Waits up to `limit` until every live pod carries the revision: those that still lack it then. */
    static List<String> awaitPods(Kube k, String namespace, String rev, Duration limit, Out out) throws InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        List<String> lacking = lacking(k, namespace, rev);
        while (!lacking.isEmpty() && System.nanoTime() < deadline) {
            out.progress("waiting for " + lacking.size() + " pod(s) to carry " + Istio.REV_LABEL + "=" + rev + ": " + String.join(", ", lacking));
            Thread.sleep(2000);
            lacking = lacking(k, namespace, rev);
        }
        out.endProgress();
        return lacking;
    }

    /** Pods that run or will run: finished and terminating pods are not restarted. */
    private static boolean live(Pod p) {
        String phase = p.getStatus() == null ? null : p.getStatus().getPhase();
        return p.getMetadata().getDeletionTimestamp() == null && !"Succeeded".equals(phase) && !"Failed".equals(phase);
    }
}
