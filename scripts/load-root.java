///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "load-root", mixinStandardHelpOptions = true,
        description = "Load the root CA into the HSM plugin of each istiod pod (guide: 'Firma del certificado para Istio'). The plugin"
                + " verifies istiod's CA certificate only against a root imported in its own process; istiod never imports one, so"
                + " without this it aborts with 'no loaded CA cert for verification'. Asks the plugin first (its verify-cert) and"
                + " imports (its import-ca) only where the root is not loaded. --wait waits until istiod's pods run their hsm-plugin"
                + " container (after install-asm or a rollout).")
class LoadRoot extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.IstioNamespace ns;
    @Mixin Opts.CaId ca;
    @Mixin Opts.Wait wait;

    @Option(names = "--revision", paramLabel = "REV", converter = Opts.RevisionConverter.class, description = "Only the istiod pods of this revision (default: every istiod pod).")
    String revision;

    @Option(names = "--root-cert", paramLabel = "ROOT_PEM", description = "The root certificate to load (default: the HSM's, by --ca-id).")
    Path rootFile;

    @Override
    protected void run() throws Exception {
        X509Certificate root = Hsm.trustedRoot(rootFile, this::hsm, ca.id);
        if (!Pki.selfSigned(root))
            throw Fail.badInput("'" + Pki.name(root) + "' is not a self-signed root", "give the root CA certificate (import-ca stored it)");
        Kube k = kube();
        out.say("cluster %s (%s), namespace %s: root '%s', CA ID %s", k.context, k.server(), ns.name, Pki.name(root), ca.id);
        out.put("root", Pki.name(root)).put("caId", ca.id).put("namespace", ns.name);
        List<Pod> pods = Rollout.pluginPods(k, out, ns.name, revision, wait);
        CaSecret chain = CaSecret.read(k, ns.name);
        // the plugin verifies what istiod hands it, the chain's CA certificate; before there is a chain, the root itself
        String verify = Pki.pem(chain.chain() != null ? chain.ca() : root);
        String checked = chain.chain() != null ? "the CA certificate of Secret " + Istio.CA_CERT_SECRET : "the root itself (no " + Istio.CA_CERT_SECRET + " yet)";
        List<Map<String, Object>> report = new ArrayList<>();
        for (Pod pod : pods) report.add(load(k, pod.getMetadata().getName(), verify, Pki.pem(root), checked));
        out.put("pods", report);
        if (out.changed() && !out.dryRun())
            out.next("istiod's discovery container restarts by itself after an abort (back-off up to 5 min): istiod-status --wait running"
                    + out.given(Opts.Kube.class, Opts.IstioNamespace.class));
    }

    /** One pod: ask the plugin, import only if it lacks the root, ask again. */
    private Map<String, Object> load(Kube k, String pod, String verifyPem, String rootPem, String checked) {
        KmsPlugin.RootState before = KmsPlugin.loadRootInPod(k, ns.name, pod, verifyPem, rootPem, ca.id, checked, out.dryRun());
        Map<String, Object> m = new LinkedHashMap<>(Map.of("pod", pod));
        m.put("before", before.name().toLowerCase().replace('_', '-'));
        if (before == KmsPlugin.RootState.LOADED) out.say("pod %s: the root is already loaded in its %s (it verifies %s)", pod, Istio.HSM_PLUGIN_CONTAINER, checked);
        else if (out.dryRun()) out.change("load the root into pod " + pod + "'s " + Istio.HSM_PLUGIN_CONTAINER + " (the plugin's import-ca)");
        else out.change("loaded the root into pod " + pod + "'s " + Istio.HSM_PLUGIN_CONTAINER + "; it now verifies " + checked);
        m.put("action", before == KmsPlugin.RootState.LOADED ? "none" : out.dryRun() ? "would-import" : "imported");
        return m;
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new LoadRoot()).execute(args));
    }
}
