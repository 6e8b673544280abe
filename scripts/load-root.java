///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "load-root", mixinStandardHelpOptions = true,
        description = "Load the root CA into the HSM plugin of each istiod pod (guide: 'Firma del certificado para Istio'). The plugin"
                + " verifies istiod's CA certificate only against a root imported in its own process; istiod never imports one, so"
                + " without this it aborts with 'no loaded CA cert for verification'. Asks the plugin first (its verify-cert) and"
                + " imports (its import-ca) only where the root is not loaded.")
class LoadRoot extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.IstioNamespace ns;
    @Mixin Opts.CaId ca;

    @Option(names = "--revision", paramLabel = "REV", converter = Opts.RevisionConverter.class, description = "Only the istiod pods of this revision (default: every istiod pod).")
    String revision;

    @Option(names = "--root-cert", paramLabel = "ROOT_PEM", description = "The root certificate to load (default: the HSM's, by --ca-id).")
    Path rootFile;

    @Option(names = "--wait", description = "Wait until istiod's pods run their hsm-plugin container (after install-asm or a rollout).")
    boolean waitForPods;

    @Option(names = "--timeout", defaultValue = "5m", paramLabel = "DURATION", converter = Opts.DurationConverter.class,
            description = "How long --wait waits, e.g. 90s, 5m (default ${DEFAULT-VALUE}).")
    Duration limit;

    static final Duration PLUGIN_CALL = Duration.ofSeconds(60);

    @Override
    protected void run() throws Exception {
        if (revision != null) Istio.requireRevision(revision);
        X509Certificate root = Hsm.trustedRoot(rootFile, this::hsm, ca.id);
        if (!Pki.selfSigned(root))
            throw Fail.badInput("'" + Pki.name(root) + "' is not a self-signed root", "give the root CA certificate (import-ca stored it)");
        String rootPem = Pki.pem(root);
        Kube k = kube();
        out.say("cluster %s (%s), namespace %s: root '%s', CA ID %s", k.context, k.server(), ns.name, Pki.name(root), ca.id);
        out.put("root", Pki.name(root)).put("caId", ca.id).put("namespace", ns.name);
        List<Pod> pods = pluginPods(k, limit);
        String caPem = chainCa(k);
        String checked = caPem != null ? "the CA certificate of Secret " + Istio.CA_CERT_SECRET : "the root itself (no " + Istio.CA_CERT_SECRET + " yet)";
        List<Map<String, Object>> report = new ArrayList<>();
        for (Pod pod : pods) report.add(load(k, pod.getMetadata().getName(), caPem != null ? caPem : rootPem, rootPem, checked));
        out.put("pods", report);
        if (out.changed() && !out.dryRun())
            out.next("istiod's discovery container restarts by itself after an abort (back-off up to 5 min): istiod-status --wait running"
                    + out.given(Opts.Kube.class, Opts.IstioNamespace.class));
    }

    /** One pod: ask the plugin, import only if it lacks the root, ask again. */
    private Map<String, Object> load(Kube k, String pod, String verifyPem, String rootPem, String checked) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("pod", pod);
        KmsPlugin.RootCheck before = KmsPlugin.verifyInPod(k, ns.name, pod, verifyPem, PLUGIN_CALL);
        m.put("before", before.state().name().toLowerCase().replace('_', '-'));
        if (before.state() == KmsPlugin.RootState.REJECTED)
            throw Fail.failed("the plugin in " + pod + " does not verify " + checked + ": " + before.run().lastError(),
                    "the CA certificate must be issued directly by this root: sign-csr with the HSM's root, then upload-chain --replace");
        if (before.state() == KmsPlugin.RootState.LOADED) {
            out.say("pod %s: the root is already loaded in its %s (it verifies %s)", pod, Istio.HSM_PLUGIN_CONTAINER, checked);
            m.put("action", "none");
            return m;
        }
        if (out.dryRun()) {
            out.change("load the root into pod " + pod + "'s " + Istio.HSM_PLUGIN_CONTAINER + " (the plugin's import-ca)");
            m.put("action", "would-import");
            return m;
        }
        KmsPlugin.importInPod(k, ns.name, pod, rootPem, ca.id, PLUGIN_CALL);
        KmsPlugin.RootCheck after = KmsPlugin.verifyInPod(k, ns.name, pod, verifyPem, PLUGIN_CALL);
        if (after.state() != KmsPlugin.RootState.LOADED)
            throw Fail.failed("the plugin in " + pod + " took the root but still does not verify " + checked + ": " + after.run().lastError(),
                    "check the hsm-plugin log (kubectl logs -c " + Istio.HSM_PLUGIN_CONTAINER + " " + pod + " -n " + ns.name + ")");
        out.change("loaded the root into pod " + pod + "'s " + Istio.HSM_PLUGIN_CONTAINER + "; it now verifies " + checked);
        m.put("action", "imported");
        return m;
    }

    /** The istiod pods whose hsm-plugin container runs; with --wait, until there is at least one and none is still starting. */
    private List<Pod> pluginPods(Kube k, Duration limit) throws InterruptedException {
        long deadline = System.nanoTime() + limit.toNanos();
        while (true) {
            List<Pod> all = k.call(() -> Istio.istiodPods(k.client, ns.name), "list the istiod pods in " + ns.name);
            List<Pod> running = new ArrayList<>(), starting = new ArrayList<>();
            for (Pod p : all) {
                if (revision != null && !revision.equals(Istio.revisionOf(p))) continue;
                (Istio.containerRunning(p, Istio.HSM_PLUGIN_CONTAINER) ? running : starting).add(p);
            }
            boolean settled = !running.isEmpty() && starting.isEmpty();
            if (settled || (!waitForPods && !running.isEmpty())) {
                for (Pod p : starting) out.warn("pod " + p.getMetadata().getName() + " does not run its " + Istio.HSM_PLUGIN_CONTAINER + " yet: load-root again once it does");
                return running;
            }
            if (!waitForPods || System.nanoTime() > deadline)
                throw Fail.failed((all.isEmpty() ? "no istiod pods" : "no istiod pod runs its " + Istio.HSM_PLUGIN_CONTAINER + " container")
                                + " in " + ns.name + (revision == null ? "" : " for revision " + revision) + (waitForPods ? " within " + Opts.text(limit) : ""),
                        all.isEmpty() ? "install istiod first (install-asm), or check --context / --namespace" : "wait for the pods (load-root --wait), or look at istiod-status");
            out.progress("waiting for istiod's " + Istio.HSM_PLUGIN_CONTAINER + " containers",
                    "(" + running.size() + " running, " + starting.size() + " starting)");
            Thread.sleep(2000);
        }
    }

    /** The first certificate of Secret istio-ca-cert (what istiod hands the plugin), or null when there is none yet. */
    private String chainCa(Kube k) {
        var s = k.call(() -> k.client.secrets().inNamespace(ns.name).withName(Istio.CA_CERT_SECRET).get(), "read Secret " + Istio.CA_CERT_SECRET);
        String b64 = s == null || s.getData() == null ? null : s.getData().get(Istio.CA_CERT_KEY);
        if (b64 == null) return null;
        String where = "Secret " + Istio.CA_CERT_SECRET;
        var blocks = Pki.pemBlocks(new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8), where);
        return Pki.pem(Pki.certificates(blocks, where).get(0));
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new LoadRoot()).execute(args));
    }
}
