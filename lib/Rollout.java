package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Restarting istiod the way that keeps serving, as `kubectl rollout restart` does (new pods first, the old
 * ones serve until then), and waiting for its pods: until their hsm-plugin runs (load-root), until each new
 * pod loaded the chain (renew-ca, rotate-ca). What a restart does to istiod: {@link Istio#RESTART_TO_RELOAD}.
 */
public final class Rollout {
    private Rollout() {}

    /** The annotation `kubectl rollout restart` sets on a Deployment's pod template: new pods, made before the old ones go. */
    public static final String RESTARTED_AT = "kubectl.kubernetes.io/restartedAt";

    static final long POLL_MILLIS = 2000;

    /** istiod's Deployments in a namespace (label app=istiod), only those of `revision` when it is given; fails when there is none. */
    public static List<Deployment> deployments(Kube k, String ns, String revision) {
        List<Deployment> found = new ArrayList<>();
        for (Deployment d : k.call(() -> k.client.apps().deployments().inNamespace(ns).withLabel("app", Istio.ISTIOD_APP).list().getItems(),
                "list istiod's Deployments"))
            if (revision == null || revision.equals(Istio.revisionOf(d))) found.add(d);
        if (found.isEmpty())
            throw Fail.failed("no istiod Deployment in " + ns + (revision == null ? "" : " for revision " + revision), "install istiod first (install-asm)");
        return found;
    }

    public static List<String> names(List<Deployment> deployments) {
        return deployments.stream().map(d -> d.getMetadata().getName()).toList();
    }

    /** `kubectl rollout restart` of each Deployment, at one time for all: the time its new pods carry ({@link #madeAt}). */
    public static String restart(Kube k, List<Deployment> deployments) {
        String at = Instant.now().toString();
        for (Deployment d : deployments) {
            String name = d.getMetadata().getName(), ns = d.getMetadata().getNamespace();
            k.call(() -> k.client.apps().deployments().inNamespace(ns).withName(name).edit(x -> new DeploymentBuilder(x)
                    .editSpec().editTemplate().editOrNewMetadata().addToAnnotations(RESTARTED_AT, at).endMetadata().endTemplate().endSpec()
                    .build()), "restart Deployment " + ns + "/" + name);
        }
        return at;
    }

    /** Whether a Deployment's rollout is over, as `kubectl rollout status` says it: every replica updated and available, no old one left. */
    public static boolean done(Deployment d) {
        var st = d.getStatus();
        if (st == null || st.getObservedGeneration() == null || st.getObservedGeneration() < d.getMetadata().getGeneration()) return false;
        int want = d.getSpec().getReplicas() == null ? 1 : d.getSpec().getReplicas();
        return n(st.getUpdatedReplicas()) >= want && n(st.getReplicas()) == n(st.getUpdatedReplicas()) && n(st.getAvailableReplicas()) >= want;
    }

    private static int n(Integer i) {
        return i == null ? 0 : i;
    }

    /** Whether a pod was made by the restart at `at` (its restartedAt annotation is that time). */
    public static boolean madeAt(Pod p, String at) {
        Map<String, String> a = p.getMetadata().getAnnotations();
        return a != null && at.equals(a.get(RESTARTED_AT));
    }

    /** Whether a Deployment was last restarted before `when`, or never by a rollout restart. */
    public static boolean restartedBefore(Deployment d, Instant when) {
        var a = d.getSpec().getTemplate().getMetadata() == null ? null : d.getSpec().getTemplate().getMetadata().getAnnotations();
        String at = a == null ? null : a.get(RESTARTED_AT);
        return at == null || Instant.parse(at).isBefore(when);
    }

    /**
     * Whether this istiod pod loaded `chain` (its log's load line, or inferred as {@link Istio#caLoad} says);
     * the abort that ended its run fails at once (exit 1), naming the pod as `which` ("new istiod pod").
     */
    public static IstiodLog.CaLoad caLoad(Kube k, Pod p, CaSecret chain, String which) {
        IstiodLog.CaLoad load = IstiodLog.caLoad(k, p, chain.secret(), chain.chain());
        if (load.abort() != null) throw Fail.failed(which + " " + p.getMetadata().getName() + ": " + load.abort().what(), load.abort().hint());
        return load;
    }

    /** The istiod pods (of `revision`, when given) that have not loaded `chain` yet; an abort fails at once. */
    public static List<String> notLoaded(Kube k, String revision, CaSecret chain) {
        List<String> waiting = new ArrayList<>();
        for (Pod p : k.call(() -> Istio.istiodPods(k.client, chain.namespace()), "list the istiod pods")) {
            if (revision != null && !revision.equals(Istio.revisionOf(p))) continue;
            if (!caLoad(k, p, chain, "istiod pod").loaded()) waiting.add(p.getMetadata().getName());
        }
        return waiting;
    }

    /**
     * Until every Deployment rolled out and each pod of the restart at `at` loaded `chain`; `root` is asked once
     * for each new pod whose hsm-plugin runs (the root in its plugin: the hook's work, or load-root's) and its
     * answer kept as that pod's "root". One line per pod that loaded; its report, one map per new pod.
     */
    public static List<Map<String, Object>> awaitLoaded(Kube k, Out out, List<String> names, String at, CaSecret chain,
                                                        Function<Pod, String> root, Duration timeout) throws InterruptedException {
        String ns = chain.namespace();
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<String, Map<String, Object>> report = new LinkedHashMap<>();
        while (true) {
            List<Pod> fresh = k.call(() -> Istio.istiodPods(k.client, ns), "list the istiod pods").stream().filter(p -> madeAt(p, at)).toList();
            int loaded = 0;
            for (Pod p : fresh) {
                String name = p.getMetadata().getName();
                Map<String, Object> r = report.computeIfAbsent(name, x -> new LinkedHashMap<>(Map.of("pod", name)));
                if (!r.containsKey("root") && Pods.containerRunning(p, Istio.HSM_PLUGIN_CONTAINER)) r.put("root", root.apply(p));
                IstiodLog.CaLoad load = caLoad(k, p, chain, "new istiod pod");
                if (load.loaded()) {
                    loaded++;
                    if (r.put("caLoaded", load.how()) == null) out.say("pod %s: %s", name, load.how());
                }
            }
            boolean rolled = true;
            for (String d : names) {
                Deployment now = k.call(() -> k.client.apps().deployments().inNamespace(ns).withName(d).get(), "read Deployment " + d);
                if (now == null || !done(now)) rolled = false;
            }
            if (rolled && !fresh.isEmpty() && loaded == fresh.size()) return new ArrayList<>(report.values());
            if (System.nanoTime() > deadline)
                throw Fail.failed("istiod's new pods did not all load the renewed chain within " + Opts.text(timeout) + " (" + loaded + " of "
                                + fresh.size() + " loaded" + (rolled ? "" : ", rollout not finished") + "); the old pods keep serving with the old certificate",
                        "look at istiod-status and kubectl rollout status deployment -n " + ns + "; then renew-ca again (it goes on from here)");
            out.progress("waiting for istiod's new pods to load the renewed chain", "(" + loaded + " of " + fresh.size() + " loaded)");
            Thread.sleep(POLL_MILLIS);
        }
    }

    /**
     * Restarts `deployments` and waits until each new pod loaded `chain` (renew-ca), loading the root (CA ID
     * `caId`) into each new pod's plugin that has no root hook; the pods' report is the result's "pods".
     */
    public static void restartUntilLoaded(Kube k, Out out, List<Deployment> deployments, CaSecret chain, String caId, Duration timeout)
            throws InterruptedException {
        String at = restart(k, deployments);
        out.change("restarted Deployment(s) " + String.join(", ", names(deployments)) + " (rollout: new pods first, the old ones serve until then)");
        out.put("pods", awaitLoaded(k, out, names(deployments), at, chain, p -> rootInPlugin(k, out, p, chain, caId), timeout));
        out.say("every new istiod pod loaded the chain; workloads keep trusting the same root '%s', so their certificates still verify", Pki.name(chain.root()));
    }

    /** The root in a new pod's plugin: its postStart hook's work, or load-root's (the plugin's import-ca) when it has no hook. */
    private static String rootInPlugin(Kube k, Out out, Pod p, CaSecret chain, String caId) {
        if (PluginRootHook.rootHookProblem(p, caId) == null) return "postStart hook";
        String name = p.getMetadata().getName();
        if (KmsPlugin.loadRootInPod(k, chain.namespace(), name, Pki.pem(chain.ca()), Pki.pem(chain.root()), caId, "the renewed certificate", false)
                == KmsPlugin.RootState.LOADED) return "already loaded";
        out.change("loaded the root into pod " + name + "'s " + Istio.HSM_PLUGIN_CONTAINER + " (it has no root hook)");
        return "import-ca";
    }

    /**
     * The istiod pods (of `revision`, when given) whose hsm-plugin container runs. With `wait`, until there is at
     * least one and none is still starting, up to its timeout; without, those that run now (a warning for each
     * still starting), failing when none does.
     */
    public static List<Pod> pluginPods(Kube k, Out out, String ns, String revision, Opts.Wait wait) throws InterruptedException {
        long deadline = System.nanoTime() + wait.timeout.toNanos();
        while (true) {
            List<Pod> running = new ArrayList<>(), starting = new ArrayList<>();
            List<Pod> all = k.call(() -> Istio.istiodPods(k.client, ns), "list the istiod pods in " + ns);
            for (Pod p : all)
                if (revision == null || revision.equals(Istio.revisionOf(p)))
                    (Pods.containerRunning(p, Istio.HSM_PLUGIN_CONTAINER) ? running : starting).add(p);
            if ((!running.isEmpty() && starting.isEmpty()) || (!wait.await && !running.isEmpty())) {
                for (Pod p : starting) out.warn("pod " + p.getMetadata().getName() + " does not run its " + Istio.HSM_PLUGIN_CONTAINER + " yet: load-root again once it does");
                return running;
            }
            if (!wait.await || System.nanoTime() > deadline)
                throw Fail.failed((all.isEmpty() ? "no istiod pods" : "no istiod pod runs its " + Istio.HSM_PLUGIN_CONTAINER + " container")
                                + " in " + ns + (revision == null ? "" : " for revision " + revision) + (wait.await ? " within " + Opts.text(wait.timeout) : ""),
                        all.isEmpty() ? "install istiod first (install-asm), or check --context / --namespace" : "wait for the pods (load-root --wait), or look at istiod-status");
            out.progress("waiting for istiod's " + Istio.HSM_PLUGIN_CONTAINER + " containers", "(" + running.size() + " running, " + starting.size() + " starting)");
            Thread.sleep(POLL_MILLIS);
        }
    }
}
