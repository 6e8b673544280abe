package asmhsm;

import static asmhsm.KubeVaultStepsSupport.env;
import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A dry run of a step that makes Kubernetes objects is the manifest: stdout is a YAML stream of
 * the objects, nothing else, which the lab's kube-apiserver accepts as
 * `kubectl apply --dry-run=server -f -` does; the step's lines are on stderr.
 */
@ExtendWith(LabExtension.class)
class DryRunManifestTest {
    @TempDir Path tmp;
    Lab lab;
    KubernetesClient k;
    final List<Runnable> cleanUp = new ArrayList<>();

    @BeforeEach
    void setUp(Lab lab) {
        this.lab = lab;
        k = lab.admin();
        VerifyCaTest.LabIstioSystem.ensure(k);
    }

    @AfterEach
    void tearDown() {
        for (Runnable r : cleanUp) r.run();
    }

    /** Runs the dry run; checks its stdout is objects only and the API server takes them; returns them. */
    List<HasMetadata> manifest(String... args) {
        Cli.Result r = Cli.asm(env(lab), tmp, args);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stderr()).as("the step's lines go to stderr").contains("would ");
        assertThat(r.stdout()).as("no prose on stdout").doesNotContain("would ", "acting on", "Next:");
        List<HasMetadata> objects = k.load(new ByteArrayInputStream(r.stdout().getBytes(StandardCharsets.UTF_8))).items();
        assertThat(objects).as(r.stdout()).isNotEmpty();
        Cli.Result applied = Cli.run(List.of("kubectl", "apply", "--dry-run=server", "-f", "-"), lab.env(), tmp, r.stdout());
        assertThat(applied.exit()).as("kubectl apply --dry-run=server of:%n%s%n%s", r.stdout(), applied).isZero();
        assertThat(applied.stdout().lines().filter(l -> l.endsWith("(server dry run)")).count()).as(applied.stdout()).isEqualTo(objects.size());
        return objects;
    }

    static List<String> kinds(List<HasMetadata> objects) {
        return objects.stream().map(o -> o.getKind() + " " + o.getMetadata().getName()).toList();
    }

    @Test
    void istiodServiceControlPlanePrepAndK8sVaultPrep() {
        String ns = lab.freshNamespace();
        cleanUp.add(() -> k.namespaces().withName(ns).delete());
        assertThat(kinds(manifest("istiod-service", "-n", ns, "--dry-run"))).containsExactly("Service istiod");

        // the namespace exists: a server-side dry run cannot create objects in a namespace it only pretends to create
        assertThat(kinds(manifest("control-plane-prep", "-n", ns, "--dry-run")))
                .containsExactly("Namespace " + ns, "ConfigMap vault-tls-cert");
        assertThat(kinds(manifest("k8s-vault-prep", "--namespace", ns, "--binding", "tokenreview-" + ns, "--cluster-suffix", "c1", "--dry-run")))
                .containsExactly("Namespace " + ns, "ClusterRoleBinding tokenreview-" + ns, "Secret default-token");
        assertThat(k.configMaps().inNamespace(ns).withName("vault-tls-cert").get()).as("a dry run makes nothing").isNull();
        assertThat(k.services().inNamespace(ns).withName("istiod").get()).isNull();
    }

    @Test
    void grantAdminEnableInjectionAndExternalIp() {
        String binding = "dr-admin-" + lab.freshMount();
        assertThat(kinds(manifest("grant-admin", "--user", "someone@example.com", "--name", binding, "--dry-run")))
                .containsExactly("ClusterRoleBinding " + binding);

        String rev = "dr-" + lab.freshMount();
        String istiod = "istiod-" + rev;
        k.apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(EnableInjectionTest.deployment(KubeLayout.ISTIO_NAMESPACE, istiod,
                Map.of("app", "istiod", "istio.io/rev", rev))).create();
        cleanUp.add(() -> k.apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(istiod).delete());
        String ns = lab.freshNamespace();
        cleanUp.add(() -> k.namespaces().withName(ns).delete());
        List<HasMetadata> labelled = manifest("enable-injection", "-n", ns, "--revision", rev, "--dry-run");
        assertThat(kinds(labelled)).containsExactly("Namespace " + ns);
        assertThat(labelled.get(0).getMetadata().getLabels()).containsEntry("istio.io/rev", rev);
        assertThat(k.namespaces().withName(ns).get().getMetadata().getLabels()).doesNotContainKey("istio.io/rev");

        if (k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).get() == null) {
            k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(new ServiceBuilder().withNewMetadata().withName(Istio.INGRESS_GATEWAY)
                    .withNamespace(KubeLayout.ISTIO_NAMESPACE).endMetadata().withNewSpec().withType("LoadBalancer")
                    .addToSelector("app", "istio-ingressgateway").addNewPort().withName("http2").withPort(80).endPort().endSpec().build()).create();
            cleanUp.add(() -> k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).delete());
        }
        List<HasMetadata> gateway = manifest("external-ip", "--mode", "integrated", "--ip", "203.0.113.7", "--dry-run");
        assertThat(kinds(gateway)).containsExactly("Service " + Istio.INGRESS_GATEWAY);
        assertThat(((io.fabric8.kubernetes.api.model.Service) gateway.get(0)).getSpec().getLoadBalancerIP()).isEqualTo("203.0.113.7");
    }

    @Test
    void underJsonTheObjectsAreTheResultsManifestsField() throws Exception {
        String ns = lab.freshNamespace();
        cleanUp.add(() -> k.namespaces().withName(ns).delete());
        Cli.Result r = Cli.asm(env(lab), tmp, "istiod-service", "-n", ns, "--dry-run", "-o", "json");
        assertThat(r.exit()).as(r.toString()).isZero();
        var doc = KubeVaultStepsSupport.json(r);
        assertThat(doc.get("manifests").get(0).get("kind").asString()).isEqualTo("Service");
        assertThat(doc.get("step").asString()).isEqualTo("istiod-service");
    }
}
