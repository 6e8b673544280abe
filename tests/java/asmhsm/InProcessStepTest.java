package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * A cluster step run in this JVM with a context that hands it a client (as istioctl's fake
 * context): no JVM start, no kubeconfig, and the step leaves the client open for the next one.
 */
@ExtendWith(LabExtension.class)
class InProcessStepTest {
    KubernetesClient k;

    @BeforeEach
    void setUp(Lab lab) {
        k = lab.admin();
        VerifyCaTest.LabIstioSystem.ensure(k);
        deleteGateway();
        k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(new ServiceBuilder().withNewMetadata()
                .withName(Istio.INGRESS_GATEWAY).withNamespace(KubeLayout.ISTIO_NAMESPACE).endMetadata()
                .withNewSpec().withType("LoadBalancer").addToSelector("app", "istio-ingressgateway")
                .addNewPort().withName("http2").withPort(80).withProtocol("TCP").endPort().endSpec().build()).create();
    }

    @AfterEach
    void deleteGateway() {
        k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).withTimeout(30, TimeUnit.SECONDS).delete();
    }

    @Test
    void aClusterStepRunsInProcessWithTheClientItsContextGives() {
        Kube given = Kube.of(k);
        try (Startup.Clients clients = Startup.Clients.of(given)) {
            String[] args = {"--mode", "integrated", "--ip", "203.0.113.7", "--kubeconfig", "/nonexistent/kubeconfig"};
            assertThat(Step.commandLine(new ExternalIp().with(clients)).execute(args)).isZero();
            assertThat(k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).get()
                    .getSpec().getLoadBalancerIP()).isEqualTo("203.0.113.7");
            assertThat(k.getHttpClient().isClosed()).as("the context's client outlives the step").isFalse();
            // the next step of the same context gets the same client, and finds its work done
            assertThat(Step.commandLine(new ExternalIp().with(clients)).execute(args)).isZero();
        }
        assertThat(k.getHttpClient().isClosed()).as("a given client is its owner's to close").isFalse();
    }
}
