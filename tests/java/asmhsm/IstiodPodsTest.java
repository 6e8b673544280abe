package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.json.JsonMapper;

/**
 * install-asm's root hook as istioctl and the kubelet would apply it, against the stand-ins the
 * runbook test uses: the overlay patched into a chart-like Deployment by {@link IstioOverlay}
 * (other code than the code that wrote it), the pod's postStart hook run by a real shell against
 * the stand-in plugin over the lab's SoftHSM2 token.
 */
@ExtendWith(LabExtension.class)
class IstiodPodsTest {
    static final JsonMapper JSON = JsonMapper.builder().build();

    /** The chart's istiod Deployment, reduced to what the overlay touches: hsm-plugin with its socket volume. */
    @SuppressWarnings("unchecked")
    static Map<String, Object> chartDeployment(String revision) {
        String yaml = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: istiod-%s, namespace: istio-system}
                spec:
                  template:
                    metadata: {labels: {app: istiod}}
                    spec:
                      volumes:
                      - {name: hsm-socket, emptyDir: {}}
                      containers:
                      - name: discovery
                        image: pilot
                      - name: hsm-plugin
                        image: plugin
                        env: [{name: SOCKET, value: /var/run/hsm-socket/.sock}]
                        volumeMounts: [{name: hsm-socket, mountPath: /var/run/hsm-socket}]
                """.formatted(revision);
        return tools.jackson.dataformat.yaml.YAMLMapper.builder().build().readValue(yaml, Map.class);
    }

    @SuppressWarnings("unchecked")
    static PodSpec hookedSpec(String caId) {
        Map<String, Object> deployment = chartDeployment(Istio.GUIDE_REVISION);
        List<Map<String, Object>> objects = new ArrayList<>(List.of(deployment));
        Map<String, Object> overlay = JSON.readValue(JSON.writeValueAsString(PluginRootHook.rootHookOverlay(Istio.GUIDE_REVISION, caId)), Map.class);
        IstioOverlay.apply(objects, List.of(overlay));
        Map<String, Object> spec = (Map<String, Object>) ((Map<String, Object>) ((Map<String, Object>) deployment.get("spec")).get("template")).get("spec");
        return JSON.convertValue(spec, PodSpec.class);
    }

    @Test
    void theOverlayAddsTheRootVolumeTheMountAndTheHookBesideWhatTheChartHas() {
        PodSpec spec = hookedSpec(Hsm.DEFAULT_CA_ID);
        assertThat(spec.getVolumes()).extracting(v -> v.getName()).containsExactly("hsm-socket", PluginRootHook.ROOT_VOLUME);
        assertThat(spec.getVolumes().get(1).getConfigMap().getName()).isEqualTo(PluginRootHook.ROOT_CONFIGMAP);
        var plugin = spec.getContainers().get(1);
        assertThat(plugin.getVolumeMounts()).extracting(m -> m.getMountPath()).containsExactly("/var/run/hsm-socket", PluginRootHook.ROOT_MOUNT);
        assertThat(plugin.getLifecycle().getPostStart().getExec().getCommand()).startsWith("sh", "-c").endsWith(Hsm.DEFAULT_CA_ID);
        assertThat(spec.getContainers().get(0).getLifecycle()).as("discovery is not touched").isNull();
    }

    @Test
    void aPodWithTheHookLoadsTheRootIntoItsFreshPluginAndOneMoreCopyLandsOnTheToken(Lab lab, @TempDir Path tmp) throws Exception {
        KubernetesClient k = lab.admin();
        String ns = lab.freshNamespace();
        Map<String, String> hsm = lab.freshToken();
        Path root = SignCsrTest.opensslRoot(tmp, "root", "/O=Pods Test/CN=Pods Root", "rsa", 30);
        k.configMaps().inNamespace(ns).resource(new io.fabric8.kubernetes.api.model.ConfigMapBuilder().withNewMetadata()
                .withName(PluginRootHook.ROOT_CONFIGMAP).endMetadata().withData(Map.of(PluginRootHook.ROOT_KEY, Files.readString(root))).build()).create();
        IstiodPods pods = new IstiodPods(k, tmp.resolve("pods"), hsm);

        Pod hooked = create(k, ns, "istiod-hooked", hookedSpec(Hsm.DEFAULT_CA_ID));
        int before = copies(hsm);
        assertThat(pods.start(hooked)).contains("postStart hook exit 0").contains("root loaded");
        assertThat(pods.rootLoaded(hooked)).isTrue();
        assertThat(copies(hsm)).isEqualTo(before + 1);
        assertThat(pods.start(hooked)).as("the same pod's containers started again: a fresh plugin, the hook again").contains("root loaded");
        assertThat(copies(hsm)).as("the plugin's import-ca is not idempotent").isEqualTo(before + 2);

        PodSpec bare = hookedSpec(Hsm.DEFAULT_CA_ID);
        bare.getContainers().get(1).setLifecycle(null);
        Pod plain = create(k, ns, "istiod-plain", bare);
        assertThat(pods.start(plain)).contains("no postStart hook");
        assertThat(pods.rootLoaded(plain)).as("a root on the token is not loaded in a fresh plugin").isFalse();
        pods.crashLoop(plain);
        var status = k.pods().inNamespace(ns).withName("istiod-plain").get().getStatus().getContainerStatuses().stream()
                .filter(s -> s.getName().equals("discovery")).findFirst().orElseThrow();
        assertThat(status.getState().getWaiting().getReason()).isEqualTo("CrashLoopBackOff");
        assertThat(status.getRestartCount()).isEqualTo(1);

        PodSpec otherId = hookedSpec("another-ca-id");
        Pod other = create(k, ns, "istiod-other-id", otherId);
        assertThat(pods.start(other)).contains("root loaded");
        assertThat(copies(hsm)).as("a hook with another CA ID stores under that ID").isEqualTo(before + 2);
    }

    static Pod create(KubernetesClient k, String ns, String name, PodSpec spec) {
        return k.pods().inNamespace(ns).resource(new PodBuilder().withNewMetadata().withName(name).endMetadata().withSpec(spec).build()).create();
    }

    static int copies(Map<String, String> hsm) {
        return IstiodPods.copies(hsm, Hsm.DEFAULT_CA_ID);
    }
}
