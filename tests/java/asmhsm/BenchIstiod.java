package asmhsm;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.io.File;
import java.security.KeyPairGenerator;
import java.util.HashMap;
import java.util.Map;

/**
 * istiod's start-up for bench/procedure: the test stand-in writes Secret istio-ca-cert-csr
 * under KEK_ID in the token P11_* names, into istio-system of the cluster KUBECONFIG names.
 */
public final class BenchIstiod {
    public static void main(String[] args) throws Exception {
        System.setProperty("slf4j.internal.verbosity", "ERROR");
        Map<String, String> hsm = new HashMap<>();
        for (String k : new String[]{"SOFTHSM2_CONF", "P11_LIB", "P11_TOKEN", "P11_PIN_FILE"}) hsm.put(k, System.getenv(k));
        KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
        g.initialize(2048);
        IstiodStandIn istiod = IstiodStandIn.start(hsm, System.getenv("KEK_ID"), "cluster.local", g.generateKeyPair());
        try (KubernetesClient k = new KubernetesClientBuilder()
                .withConfig(Config.fromKubeconfig(null, new File(System.getenv("KUBECONFIG")))).build()) {
            istiod.writeSecret(k, "istio-system");
        }
    }
}
