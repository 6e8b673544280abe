package asmhsm;

import static asmhsm.MeshTestKit.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * enable-injection against the lab: namespace labels, istiod's revision from its Deployment
 * and pods, and `rollout restart` as the restartedAt annotation on the Deployment's template
 * (the lab rolls no pods and runs no injector: tests make and label pods themselves).
 */
@ExtendWith(LabExtension.class)
class EnableInjectionTest {
    static final String REV = "asm-198-6";
    Lab lab;
    KubernetesClient k;
    Map<String, String> env;
    final List<String> namespaces = new ArrayList<>();
    final List<String> istiods = new ArrayList<>();

    @BeforeEach
    void setUp(Lab lab) {
        this.lab = lab;
        k = lab.admin();
        env = Map.of("KUBECONFIG", lab.kubeconfig().toString());
        VerifyCaTest.LabIstioSystem.ensure(k);
    }

    @AfterEach
    void tearDown() {
        for (String d : istiods) k.apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(d).delete();
        // unlabelled first: a namespace may stay Terminating a while, and status counts labelled ones
        for (String n : namespaces) {
            k.namespaces().withName(n).edit(x -> { x.getMetadata().getLabels().remove(Istio.REV_LABEL); return x; });
            k.namespaces().withName(n).delete();
        }
    }

    String namespace(Map<String, String> labels) {
        String ns = lab.freshNamespace();
        namespaces.add(ns);
        if (!labels.isEmpty()) k.namespaces().withName(ns).edit(n -> { n.getMetadata().getLabels().putAll(labels); return n; });
        return ns;
    }

    /** istiod of a revision, as install-asm leaves it: a Deployment labelled app=istiod, istio.io/rev=REV. */
    void istiod(String rev) {
        String name = "istiod-" + rev;
        istiods.add(name);
        k.apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(deployment(KubeLayout.ISTIO_NAMESPACE, name,
                Map.of("app", "istiod", "istio.io/rev", rev))).create();
    }

    static Deployment deployment(String ns, String name, Map<String, String> labels) {
        return new DeploymentBuilder().withNewMetadata().withName(name).withNamespace(ns).withLabels(labels).endMetadata()
                .withNewSpec().withReplicas(0).withNewSelector().withMatchLabels(labels).endSelector()
                .withNewTemplate().withNewMetadata().withLabels(labels).endMetadata()
                .withNewSpec().addNewContainer().withName("app").withImage("example.invalid/app:1").endContainer().endSpec()
                .endTemplate().endSpec().build();
    }

    List<Pod> podsOf(String ns, String app) {
        return k.pods().inNamespace(ns).withLabel("app", app).list().getItems();
    }

    /**
     * The Deployment's running pod, made by the test: the lab's controllers do not roll pods.
     * The Deployment has 0 replicas and the pod lacks pod-template-hash, so no ReplicaSet
     * adopts or removes it; the Deployment's selector still matches it.
     */
    void runningPod(String ns, String app) {
        k.pods().inNamespace(ns).resource(pod(ns, app + "-" + java.util.UUID.randomUUID().toString().substring(0, 5),
                Map.of("app", app), 1, "app")).create();
    }

    /** What the sidecar injector does to a pod it injects: the revision label (and a sidecar). */
    void inject(String ns, String app) {
        for (Pod p : podsOf(ns, app))
            k.pods().inNamespace(ns).withName(p.getMetadata().getName()).edit(x -> { x.getMetadata().getLabels().put(Istio.REV_LABEL, REV); return x; });
    }

    String restartedAt(String ns, String name) {
        var a = k.apps().deployments().inNamespace(ns).withName(name).get().getSpec().getTemplate().getMetadata().getAnnotations();
        return a == null ? null : a.get("kubectl.kubernetes.io/restartedAt");
    }

    @Test
    void relabelsTheNamespaceWithIstiodsRevisionOnce() {
        istiod(REV);
        String ns = namespace(Map.of("istio-injection", "enabled"));
        Cli.Result dry = Cli.asm(env, "enable-injection", "-n", ns, "--dry-run");
        assertThat(dry.exit()).as(dry.toString()).isZero();
        assertThat(dry.stderr()).contains("would label namespace " + ns + " istio.io/rev=" + REV + ", removing istio-injection=enabled");
        assertThat(k.namespaces().withName(ns).get().getMetadata().getLabels()).containsEntry("istio-injection", "enabled");

        Cli.Result r = Cli.asm(env, "enable-injection", "-n", ns);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("labelled namespace " + ns + " istio.io/rev=" + REV + ", removing istio-injection=enabled");
        String labels = kubectl(lab.kubeconfig(), "get", "ns", ns, "-o", "jsonpath={.metadata.labels}");
        assertThat(labels).contains("\"istio.io/rev\":\"" + REV + "\"").doesNotContain("istio-injection");

        String version = k.namespaces().withName(ns).get().getMetadata().getResourceVersion();
        Cli.Result again = Cli.asm(env, "enable-injection", "-n", ns, "--json");
        assertThat(again.exit()).isZero();
        assertThat(again.stdout()).contains("\"changed\" : false", "\"revision\" : \"" + REV + "\"");
        assertThat(k.namespaces().withName(ns).get().getMetadata().getResourceVersion()).isEqualTo(version);
    }

    @Test
    void restartsEachDeploymentAsRolloutRestartDoesAndReportsPodsWithoutTheRevision() throws Exception {
        istiod(REV);
        String ns = namespace(Map.of());
        k.apps().deployments().inNamespace(ns).resource(deployment(ns, "web", Map.of("app", "web"))).create();
        runningPod(ns, "web");

        Cli.Result r = Cli.asm(env, "enable-injection", "-n", ns);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("1 pod(s) do not carry istio.io/rev=" + REV + " yet: web-", "re-run with --restart");
        assertThat(restartedAt(ns, "web")).isNull();

        r = Cli.asm(env, "enable-injection", "-n", ns, "--restart", "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("\"restarted\" : [ \"web\" ]", "\"podsWithoutRevision\" : [ \"web-");
        String first = restartedAt(ns, "web");
        assertThat(first).isNotNull();
        assertThat(kubectl(lab.kubeconfig(), "get", "deploy", "web", "-n", ns, "-o",
                "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}")).isEqualTo(first);

        // once the rollout has made pods the injector labelled, a second run restarts nothing
        inject(ns, "web");
        r = Cli.asm(env, "enable-injection", "-n", ns, "--restart");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("Deployment web: its pods already carry the revision", "every pod in " + ns + " carries istio.io/rev=" + REV);
        assertThat(restartedAt(ns, "web")).isEqualTo(first);
    }

    @Test
    void waitWaitsForThePodsAndFailsNamingThoseThatNeverGetTheRevision() throws Exception {
        istiod(REV);
        String ns = namespace(Map.of());
        k.apps().deployments().inNamespace(ns).resource(deployment(ns, "api", Map.of("app", "api"))).create();
        runningPod(ns, "api");

        Cli.Result r = Cli.asm(env, "enable-injection", "-n", ns, "--wait", "--timeout", "3s");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("pod(s) in " + ns + " still lack istio.io/rev=" + REV + " after 3s: api-");

        Thread injector = new Thread(() -> {
            try {
                Thread.sleep(3000);
                inject(ns, "api");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        injector.start();
        long start = System.nanoTime();
        r = Cli.asm(env, "enable-injection", "-n", ns, "--wait", "--timeout", "60s");
        injector.join();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("every pod in " + ns + " carries istio.io/rev=" + REV);
        assertThat(System.nanoTime() - start).isGreaterThan(TimeUnit.SECONDS.toNanos(2));
    }

    @Test
    void refusesToGuessBetweenTwoRevisionsAndChecksTheOneGiven() {
        istiod(REV);
        istiod("asm-199-1");
        String ns = namespace(Map.of());
        Cli.Result r = Cli.asm(env, "enable-injection", "-n", ns);
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("istiod runs under several revisions: asm-198-6, asm-199-1", "--revision");
        assertThat(k.namespaces().withName(ns).get().getMetadata().getLabels()).doesNotContainKey(Istio.REV_LABEL);

        r = Cli.asm(env, "enable-injection", "-n", ns, "--revision", "asm-199-1");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(k.namespaces().withName(ns).get().getMetadata().getLabels()).containsEntry(Istio.REV_LABEL, "asm-199-1");

        r = Cli.asm(env, "enable-injection", "-n", ns, "--revision", "asm-200-0");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("no istiod runs with revision asm-200-0 (istiod revisions: asm-198-6, asm-199-1)");
        assertThat(Cli.asm(env, "enable-injection", "-n", ns, "--revision", "Bad Rev").exit()).isEqualTo(2);
    }

    @Test
    void noIstiodUnknownNamespaceSystemNamespaceAndNoPermissionAreRefused() {
        String ns = namespace(Map.of());
        Cli.Result r = Cli.asm(env, "enable-injection", "-n", ns);
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("no istiod with an istio.io/rev label in istio-system", "install-asm");

        istiod(REV);
        r = Cli.asm(env, "enable-injection", "-n", ns + "-nope");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("namespace " + ns + "-nope does not exist");
        r = Cli.asm(env, "enable-injection", "-n", "kube-system");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("namespace kube-system is never injected");
        assertThat(Cli.asm(env, "enable-injection", "-n", "Not_A_Name").exit()).isEqualTo(2);
        assertThat(Cli.asm(env, "enable-injection", "-n", ns, "--wait", "--timeout", "soon").exit()).isEqualTo(2);

        r = Cli.asm(Map.of("KUBECONFIG", lab.nobodyKubeconfig().toString()), "enable-injection", "-n", ns);
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("not allowed to read namespace " + ns);
        assertThat(k.namespaces().withName(ns).get().getMetadata().getLabels()).doesNotContainKey(Istio.REV_LABEL);
    }
}
