package asmhsm;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.Pod;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * install-asm's root hook, the toolkit's own addition to istiod's pod: the real plugin verifies istiod's
 * chain only against a root imported in its own process, so every new hsm-plugin container imports the
 * root from a ConfigMap at start.
 */
public final class PluginRootHook {
    private PluginRootHook() {}

    /** The root CA, for the root hook: a ConfigMap in istio-system, mounted read-only into hsm-plugin. */
    public static final String ROOT_CONFIGMAP = "istio-hsm-root", ROOT_KEY = "root.pem", ROOT_VOLUME = "hsm-root", ROOT_MOUNT = "/etc/hsm-root";

    /** The root hook's ConfigMap. */
    public static ConfigMap rootConfigMap(String rootPem) {
        return new ConfigMapBuilder().withNewMetadata().withName(ROOT_CONFIGMAP).withNamespace(KubeLayout.ISTIO_NAMESPACE)
                .addToLabels("app.kubernetes.io/managed-by", "asm-hsm").endMetadata().addToData(ROOT_KEY, rootPem).build();
    }

    /**
     * The root hook as an IstioOperator overlay of istiod's Deployment (istioctl's k8s.overlays;
     * a value at a list's path replaces the whole list, so the volume and the mount go to `[-1]`,
     * which appends): the ConfigMap as a volume, mounted into hsm-plugin, and a
     * postStart hook that runs the plugin's import-ca in every new hsm-plugin container, since the
     * plugin verifies istiod's chain only against a root imported in its own process.
     */
    public static Map<String, Object> rootHookOverlay(String revision, String caId) {
        String container = "spec.template.spec.containers.[name:" + Istio.HSM_PLUGIN_CONTAINER + "]";
        List<Map<String, Object>> patches = List.of(
                ordered("path", "spec.template.spec.volumes.[-1]", "value", ordered("name", ROOT_VOLUME, "configMap", ordered("name", ROOT_CONFIGMAP))),
                ordered("path", container + ".volumeMounts.[-1]", "value", ordered("name", ROOT_VOLUME, "mountPath", ROOT_MOUNT, "readOnly", true)),
                ordered("path", container + ".lifecycle", "value", ordered("postStart", ordered("exec", ordered("command",
                        KmsPlugin.postStartImportCommand(ROOT_MOUNT + "/" + ROOT_KEY, caId))))));
        Map<String, Object> overlay = new LinkedHashMap<>();
        overlay.put("kind", "Deployment");
        overlay.put("name", Istio.istiodDeployment(revision));
        overlay.put("patches", patches);
        Map<String, Object> iop = new LinkedHashMap<>();
        iop.put("apiVersion", "install.istio.io/v1alpha1");
        iop.put("kind", "IstioOperator");
        iop.put("spec", ordered("components", ordered("pilot", ordered("k8s", ordered("overlays", List.of(overlay))))));
        return iop;
    }

    /** A map that keeps the order it was given (a file written twice must be the same bytes). */
    private static Map<String, Object> ordered(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    /**
     * The root hook in a pod's spec, as install-asm's overlay puts it (rootHookOverlay): the
     * hsm-plugin container's postStart runs the plugin's import-ca of the mounted ConfigMap
     * istio-hsm-root for this CA ID (any CA ID when null). Null when it is there; else what is missing.
     */
    public static String rootHookProblem(Pod p, String caId) {
        Container plugin = null;
        if (p.getSpec() != null && p.getSpec().getContainers() != null)
            for (Container c : p.getSpec().getContainers()) if (Istio.HSM_PLUGIN_CONTAINER.equals(c.getName())) plugin = c;
        if (plugin == null) return "it has no " + Istio.HSM_PLUGIN_CONTAINER + " container";
        var hook = plugin.getLifecycle() == null || plugin.getLifecycle().getPostStart() == null ? null : plugin.getLifecycle().getPostStart().getExec();
        if (hook == null) return "its " + Istio.HSM_PLUGIN_CONTAINER + " has no postStart hook (install-asm's root hook)";
        if (caId != null && !KmsPlugin.postStartImportCommand(ROOT_MOUNT + "/" + ROOT_KEY, caId).equals(hook.getCommand()))
            return "its " + Istio.HSM_PLUGIN_CONTAINER + "'s postStart hook is not install-asm's root hook for CA ID " + caId;
        boolean mounted = plugin.getVolumeMounts() != null && plugin.getVolumeMounts().stream()
                .anyMatch(m -> ROOT_VOLUME.equals(m.getName()) && ROOT_MOUNT.equals(m.getMountPath()));
        boolean volume = p.getSpec().getVolumes() != null && p.getSpec().getVolumes().stream()
                .anyMatch(v -> ROOT_VOLUME.equals(v.getName()) && v.getConfigMap() != null && ROOT_CONFIGMAP.equals(v.getConfigMap().getName()));
        if (!mounted || !volume) return "ConfigMap " + ROOT_CONFIGMAP + " is not mounted at " + ROOT_MOUNT + " in its " + Istio.HSM_PLUGIN_CONTAINER;
        return null;
    }
}
