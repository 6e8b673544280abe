///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "enable-injection", mixinStandardHelpOptions = true,
        description = "Turn on sidecar injection for a namespace with istiod's revision label, optionally restart its "
                + "Deployments, and show which pods still lack the sidecar (guide: 'Inserta proxies de sidecar').")
class EnableInjection extends Step {
    static final String RESTARTED_AT = "kubectl.kubernetes.io/restartedAt";

    @Mixin Opts.Kube kube;

    @Option(names = {"-n", "--namespace"}, required = true, paramLabel = "NAMESPACE", description = "Namespace to inject.")
    String namespace;

    @Option(names = "--revision", paramLabel = "REVISION", converter = Opts.RevisionConverter.class,
            description = "istiod revision (default: the istio.io/rev label of the running istiod, e.g. " + Istio.GUIDE_REVISION + ").")
    String revision;

    @Option(names = "--restart", description = "Restart every Deployment whose pods lack the revision, as `kubectl rollout restart` does.")
    boolean restart;

    @Option(names = "--wait", description = "Wait until every pod of the namespace carries the revision.")
    boolean await;

    @Option(names = "--timeout", defaultValue = "5m", paramLabel = "DURATION", converter = Opts.DurationConverter.class,
            description = "How long --wait waits, e.g. 90s, 5m, 1h (default ${DEFAULT-VALUE}).")
    Duration timeout;

    @Override
    protected void run() throws Exception {
        if (!namespace.matches("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"))
            throw Fail.badInput("'" + namespace + "' is not a namespace name", "give the namespace as kubectl get ns shows it");
        if (Istio.SYSTEM_NAMESPACES.contains(namespace) || namespace.equals(Kube.ISTIO_NAMESPACE))
            throw Fail.badInput("namespace " + namespace + " is never injected", "label the namespaces of your workloads instead");
        out.put("namespace", namespace);
        try (Kube k = Kube.connect(kube)) {
            Namespace ns = k.call(() -> k.client.namespaces().withName(namespace).get(), "read namespace " + namespace);
            if (ns == null)
                throw Fail.badInput("namespace " + namespace + " does not exist", "list the namespaces with: kubectl get ns");
            String rev = chooseRevision(k);
            out.put("revision", rev);
            label(k, ns, rev);
            if (restart) restartDeployments(k, rev);
            List<String> lacking = lacking(k, rev);
            if (await && !lacking.isEmpty() && !out.dryRun()) lacking = waitForPods(k, rev, timeout);
            out.put("podsWithoutRevision", lacking);
            if (lacking.isEmpty()) {
                out.say("every pod in %s carries %s=%s", namespace, Istio.REV_LABEL, rev);
            } else if (await && !out.dryRun()) {
                throw Fail.failed(lacking.size() + " pod(s) in " + namespace + " still lack " + Istio.REV_LABEL + "=" + rev
                        + " after " + Opts.text(timeout) + ": " + String.join(", ", lacking),
                        "check their Deployments roll (kubectl rollout status -n " + namespace + ") and that istiod's webhook answers");
            } else {
                out.say("%d pod(s) do not carry %s=%s yet: %s", lacking.size(), Istio.REV_LABEL, rev, String.join(", ", lacking));
                if (!restart) out.say("Restart their workloads to inject the sidecar: re-run with --restart (or kubectl rollout restart deployment -n %s)", namespace);
            }
        }
    }

    /** The revision asked for, or the only one istiod runs under; refuses to guess between several. */
    private String chooseRevision(Kube k) {
        Set<String> revs = k.call(() -> Istio.revisions(k.client), "list istiod in " + Kube.ISTIO_NAMESPACE);
        if (revision != null) {
            if (!revs.contains(revision))
                throw Fail.failed("no istiod runs with revision " + revision + (revs.isEmpty() ? " (no istiod found)" : " (istiod revisions: " + String.join(", ", revs) + ")"),
                        revs.isEmpty() ? "install the mesh first (install-asm)" : "pass one of: --revision " + String.join(" | --revision ", revs));
            return revision;
        }
        if (revs.isEmpty())
            throw Fail.failed("no istiod with an " + Istio.REV_LABEL + " label in " + Kube.ISTIO_NAMESPACE,
                    "install the mesh first (install-asm), or pass --revision if istiod runs elsewhere");
        if (revs.size() > 1)
            throw Fail.badInput("istiod runs under several revisions: " + String.join(", ", revs),
                    "choose one with --revision (e.g. --revision " + revs.iterator().next() + ")");
        return revs.iterator().next();
    }

    /** kubectl label namespace N istio-injection- istio.io/rev=R --overwrite, as one merge patch. */
    private void label(Kube k, Namespace ns, String rev) {
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
        out.manifest(k.manifest(new io.fabric8.kubernetes.api.model.NamespaceBuilder(ns).editMetadata()
                .removeFromLabels(Istio.INJECTION_LABEL).addToLabels(Istio.REV_LABEL, rev).endMetadata().build()));
        if (out.dryRun()) { out.change(what); return; }
        String patch = "{\"metadata\":{\"labels\":{\"" + Istio.INJECTION_LABEL + "\":null,\"" + Istio.REV_LABEL + "\":\"" + rev + "\"}}}";
        k.call(() -> k.client.namespaces().withName(namespace).patch(PatchContext.of(PatchType.JSON_MERGE), patch),
                "label namespace " + namespace);
        out.change(what.replaceFirst("^label", "labelled"));
    }

    /** Restarts (rollout restart) each Deployment that has pods without the revision; one whose pods all have it is left alone. */
    private void restartDeployments(Kube k, String rev) {
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
            List<Pod> live = pods.stream().filter(EnableInjection::live).toList();
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
        out.put("restarted", restarted);
    }

    /** Live pods of the namespace that do not carry the revision label. */
    private List<String> lacking(Kube k, String rev) {
        List<Pod> pods = k.call(() -> k.client.pods().inNamespace(namespace).list().getItems(), "list the pods in " + namespace);
        List<String> names = new ArrayList<>();
        for (Pod p : pods) if (live(p) && !rev.equals(Istio.revisionOf(p))) names.add(p.getMetadata().getName());
        return names;
    }

    private List<String> waitForPods(Kube k, String rev, Duration limit) throws InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        List<String> lacking = lacking(k, rev);
        while (!lacking.isEmpty() && System.nanoTime() < deadline) {
            out.progress("waiting for " + lacking.size() + " pod(s) to carry " + Istio.REV_LABEL + "=" + rev + ": " + String.join(", ", lacking));
            Thread.sleep(2000);
            lacking = lacking(k, rev);
        }
        out.endProgress();
        return lacking;
    }

    /** Pods that run or will run: finished and terminating pods are not restarted. */
    static boolean live(Pod p) {
        String phase = p.getStatus() == null ? null : p.getStatus().getPhase();
        return p.getMetadata().getDeletionTimestamp() == null && !"Succeeded".equals(phase) && !"Failed".equals(phase);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new EnableInjection()).execute(args));
    }
}
