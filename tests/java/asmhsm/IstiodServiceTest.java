package asmhsm;

import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.errorLines;
import static asmhsm.KubeVaultStepsSupport.json;
import static asmhsm.KubeVaultStepsSupport.kubectlJson;
import static asmhsm.KubeVaultStepsSupport.tool;
import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.yaml.YAMLMapper;

/** istiod-service, and Kube.apply which it shares with install-asm and the other steps. */
class IstiodServiceTest {
    /** The guide's istiod-service.yaml ("Configura el webhook de validación"), comments dropped. */
    static final String GUIDE_YAML = """
            apiVersion: v1
            kind: Service
            metadata:
              name: istiod
              namespace: istio-system
              labels:
                istio.io/rev: asm-198-6
                app: istiod
                istio: pilot
                release: istio
            spec:
              ports:
              - port: 15010
                name: grpc-xds
                protocol: TCP
              - port: 15012
                name: https-dns
                protocol: TCP
              - port: 443
                name: https-webhook
                targetPort: 15017
                protocol: TCP
              - port: 15014
                name: http-monitoring
                protocol: TCP
              selector:
                app: istiod
                istio.io/rev: asm-198-6
            """;
    static final YAMLMapper YAML = YAMLMapper.builder().build();

    @Test
    void theServiceIsTheGuidesYaml() {
        JsonNode ours = YAML.valueToTree(KubeLayout.GUIDE.istiodService("asm-198-6"));
        assertThat(ours).isEqualTo(YAML.readTree(GUIDE_YAML));
    }

    /** Kube.apply's corners, on the fabric8 mock server (quick); the lab tests below do the same against a real API server. */
    @Nested
    @EnableKubernetesMockClient(crud = true)
    class ApplyOnMockServer {
        KubernetesClient client;

        String apply(Kube k, io.fabric8.kubernetes.api.model.HasMetadata o, boolean dryRun) {
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            Out out = new Out("test", false, dryRun, new PrintStream(buf, true, StandardCharsets.UTF_8), System.err);
            k.apply(o, out);
            return buf.toString(StandardCharsets.UTF_8);
        }

        Kube kube() {
            return Kube.of(client);
        }



        @Test
        void createsThenSaysUpToDateThenPatchesOnlyWhatDiffers() {
            Kube k = kube();
            Service svc = KubeLayout.GUIDE.istiodService("asm-198-6");
            assertThat(apply(k, svc, true)).isEqualTo("would create Service istio-system/istiod\n");
            assertThat(client.services().inNamespace("istio-system").withName("istiod").get()).isNull();
            assertThat(apply(k, svc, false)).isEqualTo("created Service istio-system/istiod\n");
            // what the API server adds by itself is not a difference
            client.services().inNamespace("istio-system").withName("istiod").edit(s -> new ServiceBuilder(s)
                    .editSpec().withClusterIP("10.0.0.7").withType("ClusterIP").endSpec()
                    .editMetadata().addToLabels("owner", "someone-else").endMetadata().build());
            assertThat(apply(k, svc, false)).isEqualTo("Service istio-system/istiod already up to date\n");

            // another revision: label, selector and nothing else change; others' labels stay
            assertThat(apply(k, KubeLayout.GUIDE.istiodService("asm-199-1"), true)).startsWith("would update Service istio-system/istiod (");
            assertThat(client.services().inNamespace("istio-system").withName("istiod").get().getSpec().getSelector())
                    .containsEntry("istio.io/rev", "asm-198-6");
            assertThat(apply(k, KubeLayout.GUIDE.istiodService("asm-199-1"), false))
                    .isEqualTo("updated Service istio-system/istiod (metadata.labels.istio.io/rev, spec.selector.istio.io/rev)\n");
            Service live = client.services().inNamespace("istio-system").withName("istiod").get();
            assertThat(live.getSpec().getSelector()).isEqualTo(Map.of("app", "istiod", "istio.io/rev", "asm-199-1"));
            assertThat(live.getMetadata().getLabels()).containsEntry("owner", "someone-else").containsEntry("istio.io/rev", "asm-199-1");
            assertThat(live.getSpec().getClusterIP()).isEqualTo("10.0.0.7");
        }

        // The mock server applies merge patches loosely (keeps nulled keys, appends to lists) and does not
        // record their bodies: what apply sends is checked on Kube.compare below, what a real API server
        // makes of it in the lab tests.
        @Test
        void aSelectorKeyOrPortTooManyIsADifference() {
            Kube k = kube();
            Service svc = KubeLayout.GUIDE.istiodService("asm-198-6");
            apply(k, svc, false);
            client.services().inNamespace("istio-system").withName("istiod").edit(s -> new ServiceBuilder(s)
                    .editSpec().addToSelector("extra", "x").addNewPort().withName("tcp-extra").withPort(9999).endPort().endSpec().build());
            assertThat(apply(k, svc, true)).isEqualTo("would update Service istio-system/istiod (spec.ports, spec.selector.extra)\n");
        }
    }

    @Test
    void thePatchReplacesListsAndExactMapsAndLeavesMetadataAndServerFieldsAlone() {
        JsonNode want = YAML.valueToTree(KubeLayout.GUIDE.istiodService("asm-198-6"));
        JsonNode have = YAML.readTree(GUIDE_YAML.replace("asm-198-6", "old") + """
                  clusterIP: 10.0.0.7
                  type: ClusterIP
                """).deepCopy();
        ((tools.jackson.databind.node.ObjectNode) have.get("spec").get("selector")).put("extra", "x");
        ((tools.jackson.databind.node.ObjectNode) have.get("metadata").get("labels")).put("owner", "someone");
        ((tools.jackson.databind.node.ArrayNode) have.get("spec").get("ports")).addObject().put("name", "tcp-x").put("port", 9);
        JsonNode patch = want.deepCopy();
        java.util.List<String> differs = new java.util.ArrayList<>();
        Kube.compare(want, have, patch, "", differs);
        assertThat(differs).containsExactly("metadata.labels.istio.io/rev", "spec.ports", "spec.selector.istio.io/rev", "spec.selector.extra");
        assertThat(patch.at("/spec/selector").toString()).isEqualTo("{\"app\":\"istiod\",\"istio.io/rev\":\"asm-198-6\",\"extra\":null}");
        assertThat(patch.at("/spec/ports")).isEqualTo(want.at("/spec/ports"));
        assertThat(patch.at("/metadata/labels")).isEqualTo(want.at("/metadata/labels"));   // "owner" is not touched
        assertThat(patch.at("/spec").has("clusterIP")).isFalse();

        // what the server added (clusterIP, type, a port's targetPort default) is no difference
        JsonNode served = YAML.readTree(GUIDE_YAML + """
                  clusterIP: 10.0.0.7
                  type: ClusterIP
                """);
        ((tools.jackson.databind.node.ObjectNode) served.at("/spec/ports/0")).put("targetPort", 15010);
        differs.clear();
        Kube.compare(want, served, want.deepCopy(), "", differs);
        assertThat(differs).isEmpty();
    }

    // ------------------------------------------------------------------ against the lab

    @Nested
    @ExtendWith(LabExtension.class)
    class OnTheLab {
        @TempDir Path tmp;

        @Test
        void appliesTheServiceIdempotentlyAndRepairsItInPlace(Lab lab) {
            String ns = lab.freshNamespace();
            Cli.Result first = Cli.asm(env(lab), tmp, "istiod-service", "-n", ns, "--json");
            assertThat(first.exit()).as(first.toString()).isZero();
            assertThat(json(first).get("changed").asBoolean()).isTrue();

            // kubectl, not fabric8, reads what is there
            JsonNode svc = kubectlJson(lab, "-n", ns, "get", "service", "istiod");
            assertThat(svc.at("/metadata/labels")).isEqualTo(YAML.readTree("{istio.io/rev: asm-198-6, app: istiod, istio: pilot, release: istio}"));
            assertThat(svc.at("/spec/selector")).isEqualTo(YAML.readTree("{app: istiod, istio.io/rev: asm-198-6}"));
            assertThat(svc.at("/spec/ports").toString()).contains("\"name\":\"https-webhook\"", "\"port\":443", "\"targetPort\":15017");
            assertThat(svc.at("/spec/ports")).hasSize(4);
            String uid = svc.at("/metadata/uid").asString(), clusterIp = svc.at("/spec/clusterIP").asString();

            Cli.Result again = Cli.asm(env(lab), tmp, "istiod-service", "-n", ns, "--json");
            assertThat(again.exit()).as(again.toString()).isZero();
            assertThat(json(again).get("changed").asBoolean()).as(again.toString()).isFalse();
            assertThat(kubectlJson(lab, "-n", ns, "get", "service", "istiod").at("/metadata/resourceVersion"))
                    .isEqualTo(svc.at("/metadata/resourceVersion"));

            // someone relabels it and adds a port: the step puts it back, as a patch (same object, same cluster IP)
            tool(lab, tmp, "kubectl", "-n", ns, "label", "--overwrite", "service", "istiod", "istio.io/rev=old", "extra=kept");
            tool(lab, tmp, "kubectl", "-n", ns, "patch", "service", "istiod", "--type=json", "-p=[{\"op\":\"add\",\"path\":"
                    + "\"/spec/ports/-\",\"value\":{\"name\":\"tcp-x\",\"port\":9999}},{\"op\":\"add\",\"path\":\"/spec/selector/extra\",\"value\":\"x\"}]");
            Cli.Result fix = Cli.asm(env(lab), tmp, "istiod-service", "-n", ns);
            assertThat(fix.exit()).as(fix.toString()).isZero();
            assertThat(fix.stdout()).contains("updated Service " + ns + "/istiod (metadata.labels.istio.io/rev, spec.ports, spec.selector.extra)");
            JsonNode fixed = kubectlJson(lab, "-n", ns, "get", "service", "istiod");
            assertThat(fixed.at("/metadata/uid").asString()).isEqualTo(uid);
            assertThat(fixed.at("/spec/clusterIP").asString()).isEqualTo(clusterIp);
            assertThat(fixed.at("/metadata/labels/istio.io~1rev").asString()).isEqualTo("asm-198-6");
            assertThat(fixed.at("/metadata/labels/extra").asString()).isEqualTo("kept");
            assertThat(fixed.at("/spec/ports")).hasSize(4);
            assertThat(fixed.at("/spec/selector")).isEqualTo(YAML.readTree("{app: istiod, istio.io/rev: asm-198-6}"));
        }

        @Test
        void dryRunPrintsTheGuidesYamlAndCreatesNothing(Lab lab) {
            String ns = lab.freshNamespace();
            Cli.Result r = Cli.asm(env(lab), tmp, "istiod-service", "-n", ns, "--dry-run");
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(YAML.readTree(r.stdout())).isEqualTo(YAML.readTree(GUIDE_YAML.replace("namespace: istio-system", "namespace: " + ns)));
            assertThat(r.stderr()).contains("would create Service " + ns + "/istiod");
            assertThat(Cli.run(java.util.List.of("kubectl", "-n", ns, "get", "service", "istiod"), lab.env(), tmp, null).exit()).isNotZero();
        }

        @Test
        void refusesABadRevisionAMissingNamespaceAndAUserWithoutRights(Lab lab) {
            Cli.Result bad = Cli.asm(env(lab), tmp, "istiod-service", "--revision", "ASM 1.9");
            assertThat(bad.exit()).isEqualTo(2);
            assertThat(bad.stderr()).contains("revision 'ASM 1.9' is not a valid label value");

            Cli.Result missing = Cli.asm(env(lab), tmp, "istiod-service", "-n", "no-such-ns-here");
            assertThat(missing.exit()).isEqualTo(1);
            assertThat(missing.stderr()).contains("namespace no-such-ns-here does not exist").contains("control-plane-prep");

            String ns = lab.freshNamespace();
            Cli.Result nobody = Cli.asm(env(lab, "KUBECONFIG", lab.nobodyKubeconfig().toString()), tmp, "istiod-service", "-n", ns);
            assertThat(nobody.exit()).isEqualTo(1);
            assertThat(nobody.stderr()).contains("not allowed to").contains("forbidden");
            assertThat(errorLines(nobody)).hasSize(2);
        }
    }
}
