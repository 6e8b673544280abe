package asmhsm;

import static asmhsm.MeshTestKit.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.ServicePortBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** external-ip against the lab's API server: the patch, the refusals, and the NodePort plan from real Node objects. */
@ExtendWith(LabExtension.class)
class ExternalIpTest {
    Lab lab;
    KubernetesClient k;
    Map<String, String> env;
    List<String> nodes = new java.util.ArrayList<>();

    @BeforeEach
    void setUp(Lab lab) {
        this.lab = lab;
        k = lab.admin();
        env = Map.of("KUBECONFIG", lab.kubeconfig().toString());
        VerifyCaTest.LabIstioSystem.ensure(k);
        k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).withTimeout(30, java.util.concurrent.TimeUnit.SECONDS).delete();
    }

    @AfterEach
    void tearDown() {
        k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).withTimeout(30, java.util.concurrent.TimeUnit.SECONDS).delete();
        deleteNodes(k, nodes);
    }

    /** The gateway as the asm-multicloud profile makes it, with nodePorts from the guide's listing. */
    Service gateway(String type) {
        ServiceBuilder b = new ServiceBuilder().withNewMetadata().withName(Istio.INGRESS_GATEWAY).withNamespace(KubeLayout.ISTIO_NAMESPACE)
                .addToLabels("app", "istio-ingressgateway").addToLabels("istio", "ingressgateway").endMetadata()
                .withNewSpec().withType(type).addToSelector("app", "istio-ingressgateway").endSpec();
        int[][] ports = {{15020, 30391}, {80, 31380}, {443, 31390}, {15443, 30158}};
        String[] names = {"status-port", "http2", "https", "tls"};
        for (int i = 0; i < ports.length; i++) {
            var p = new ServicePortBuilder().withName(names[i]).withPort(ports[i][0]).withProtocol("TCP")
                    .withNewTargetPort(ports[i][0]);
            if (!type.equals("ClusterIP")) p.withNodePort(ports[i][1] + offset);
            b.editSpec().addToPorts(p.build()).endSpec();
        }
        return k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(b.build()).create();
    }

    /** Another lab run could hold the guide's nodePorts: shift them by a per-test amount inside the range. */
    final int offset = (int) (Math.random() * 300);

    String lbIpByKubectl() {
        return kubectl(lab.kubeconfig(), "get", "svc", "-n", "istio-system", "istio-ingressgateway", "-o", "jsonpath={.spec.loadBalancerIP}");
    }

    @Test
    void integratedModeSetsLoadBalancerIpOnceWithAPatch() {
        gateway("LoadBalancer");
        Cli.Result dry = Cli.asm(env, "external-ip", "--mode", "integrated", "--ip", "203.0.113.1", "--dry-run");
        assertThat(dry.exit()).as(dry.toString()).isZero();
        assertThat(dry.stderr()).contains("would set loadBalancerIP of istio-ingressgateway to 203.0.113.1");
        assertThat(lbIpByKubectl()).isEmpty();

        Cli.Result r = Cli.asm(env, "external-ip", "--mode", "integrated", "--ip", "203.0.113.1");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("set loadBalancerIP of istio-ingressgateway to 203.0.113.1", "no address yet");
        assertThat(lbIpByKubectl()).isEqualTo("203.0.113.1");
        String version = k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).get().getMetadata().getResourceVersion();

        Cli.Result again = Cli.asm(env, "external-ip", "--mode", "integrated", "--ip", "203.0.113.1", "--json");
        assertThat(again.exit()).isZero();
        assertThat(again.stdout()).contains("\"changed\" : false", "\"loadBalancerIP\" : \"203.0.113.1\"");
        assertThat(k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).get().getMetadata().getResourceVersion())
                .isEqualTo(version);

        r = Cli.asm(env, "external-ip", "--mode", "integrated", "--ip", "203.0.113.7");
        assertThat(r.exit()).isZero();
        assertThat(r.stdout()).contains("to 203.0.113.7 (was 203.0.113.1)");
        assertThat(lbIpByKubectl()).isEqualTo("203.0.113.7");
        // the rest of the Service is untouched by the patch
        assertThat(k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).get().getSpec().getPorts()).hasSize(4);
    }

    @Test
    void anAddressThatDoesNotParseOrCannotServeIsRefusedAndNothingChanges() {
        gateway("LoadBalancer");
        for (String bad : List.of("203.0.113.256", "203.0.113", "example.com", "", " ", "1.2.3.4.5", "127.0.0.1", "0.0.0.0", "::1", "224.0.0.1", "2001:db8::g"))
            assertThat(Cli.asm(env, "external-ip", "--mode", "integrated", "--ip", bad).exit()).as("'%s'", bad).isEqualTo(2);
        assertThat(Cli.asm(env, "external-ip", "--mode", "integrated").exit()).isEqualTo(2);
        assertThat(Cli.asm(env, "external-ip", "--mode", "dynamic", "--ip", "203.0.113.1").exit()).isEqualTo(2);
        Cli.Result r = Cli.asm(env, "external-ip", "--mode", "integrated", "--ip", "example.com");
        assertThat(r.stderr()).contains("'example.com' is not an IP address");
        assertThat(lbIpByKubectl()).isEmpty();

        r = Cli.asm(env, "external-ip", "--mode", "integrated", "--ip", "2001:db8::1");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(lbIpByKubectl()).isEqualTo("2001:db8::1");
    }

    @Test
    void integratedModeNeedsALoadBalancerServiceAndTheServiceAtAll() {
        Cli.Result r = Cli.asm(env, "external-ip", "--mode", "integrated", "--ip", "203.0.113.1");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("Service istio-system/istio-ingressgateway does not exist", "install-asm");
        gateway("NodePort");
        r = Cli.asm(env, "external-ip", "--mode", "integrated", "--ip", "203.0.113.1");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("is of type NodePort", "--mode manual");
        r = Cli.asm(Map.of("KUBECONFIG", lab.nobodyKubeconfig().toString()), "external-ip", "--mode", "integrated", "--ip", "203.0.113.1");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("not allowed to read Service istio-ingressgateway");
    }

    @Test
    void manualModePrintsThePortTableAndTheForwardingPlanOverEveryNode() {
        gateway("NodePort");
        String tag = UUID.randomUUID().toString().substring(0, 6);
        for (int i = 0; i < 3; i++) {
            nodes.add("ext-" + tag + "-" + i);
            node(k, nodes.get(i), "4", "8Gi", "192.168.0." + (10 + i));
        }
        Cli.Result r = Cli.asm(env, "external-ip", "--mode", "manual", "--ip", "203.0.113.1");
        assertThat(r.exit()).as(r.toString()).isZero();
        int http2 = 31380 + offset;
        assertThat(r.stdout()).containsPattern("http2\\s+80\\s+" + http2 + "\\s+TCP")
                .contains(nodes.get(0), "192.168.0.10")
                .containsPattern("203\\.0\\.113\\.1:80/TCP -> .*192\\.168\\.0\\.10:" + http2 + ".*192\\.168\\.0\\.11:" + http2 + ".*192\\.168\\.0\\.12:" + http2);

        Cli.Result json = Cli.asm(env, "external-ip", "--mode", "manual", "--json");
        assertThat(json.exit()).isZero();
        assertThat(json.stdout()).contains("\"nodePort\" : " + http2, "\"internalIP\" : \"192.168.0.11\"", "<VIP>:443/TCP -> ");
        assertThat(k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).get().getSpec().getLoadBalancerIP()).isNull();
    }

    @Test
    void manualModeOnAClusterIpServiceSaysThereAreNoNodePorts() {
        gateway("ClusterIP");
        Cli.Result r = Cli.asm(env, "external-ip", "--mode", "manual");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("(type ClusterIP) has no nodePorts");
    }
}
