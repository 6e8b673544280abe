package asmhsm;

import static asmhsm.MeshTestKit.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * status's lines on the running mesh, which need pod logs and exec (the lab has no kubelet):
 * the chain istiod logged, the root loaded in each istiod pod's own plugin ({@link PluginStandIn}
 * behind the mock server's exec), sidecars in the labelled namespaces, and the Istio CA
 * certificate's expiry and identity. The root is on a real SoftHSM2 token, put there with
 * pkcs11-tool; Vault is not set up here, so its lines are unknown and not looked at.
 */
class StatusMeshTest {
    static final String REV = "asm-198-6";
    @TempDir Path tmp;
    PluginStandIn plugin;
    MockKube mock;
    SoftHsmToken token;
    Issued root, ca;

    @BeforeEach
    void setUp() {
        mock = new MockKube(tmp, d -> plugin = new PluginStandIn(d));
        token = SoftHsmToken.create(tmp);
        root = root("CN=Mesh Root,O=Example");
        ca = ca(root, "O=cluster.local");
        token.writeCertificate(root.cert(), Hsm.DEFAULT_CA_ID);
        mock.client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(KubeLayout.ISTIO_NAMESPACE).endMetadata().build()).create();
        mock.client.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(KubeLayout.GUIDE.istiodService(REV)).create();
    }

    @AfterEach
    void tearDown() {
        mock.close();
    }

    Map<String, JsonNode> status(String... extra) {
        Map<String, String> env = new HashMap<>(token.env());
        env.put("CLUSTER_SUFFIX", "m1");
        List<String> args = new ArrayList<>(List.of("status", "--json", "--kubeconfig", mock.kubeconfig.toString()));
        args.addAll(List.of(extra));
        Cli.Result r = Cli.asm(env, args.toArray(String[]::new));
        if (System.getenv("DEBUG_STATUS") != null) System.out.println("STDERR>>" + r.stderr());
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);   // Vault is not there: never all done
        Map<String, JsonNode> m = new java.util.LinkedHashMap<>();
        for (JsonNode c : JsonMapper.builder().build().readTree(r.stdout()).get("checks")) m.put(c.get("name").asString(), c);
        return m;
    }

    void chain(Issued... certs) {
        mock.client.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(new SecretBuilder().withNewMetadata().withName(Istio.CA_CERT_SECRET)
                .endMetadata().addToData(Istio.CA_CERT_KEY, Base64.getEncoder().encodeToString(pems(certs).getBytes(StandardCharsets.UTF_8))).build())
                .createOr(o -> o.update());
    }

    void istiod(Pod p, String log) {
        mock.client.pods().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(p).create();
        if (log != null)
            mock.server.expect().get().withPath("/api/v1/namespaces/istio-system/pods/" + p.getMetadata().getName() + "/log?pretty=false&container=discovery&tailLines=5000")
                    .andReturn(200, log).always();
    }

    /** istiod's pod as install-asm's root hook makes it: ConfigMap istio-hsm-root mounted into hsm-plugin, the postStart import. */
    static Pod withRootHook(Pod p, String caId) {
        return new PodBuilder(p).editSpec()
                .editMatchingContainer(c -> c.getName().equals(Istio.HSM_PLUGIN_CONTAINER))
                .withNewLifecycle().withNewPostStart().withNewExec().withCommand(KmsPlugin.postStartImportCommand(PluginRootHook.ROOT_MOUNT + "/" + PluginRootHook.ROOT_KEY, caId))
                .endExec().endPostStart().endLifecycle()
                .addNewVolumeMount().withName(PluginRootHook.ROOT_VOLUME).withMountPath(PluginRootHook.ROOT_MOUNT).withReadOnly(true).endVolumeMount().endContainer()
                .addNewVolume().withName(PluginRootHook.ROOT_VOLUME).withNewConfigMap().withName(PluginRootHook.ROOT_CONFIGMAP).endConfigMap().endVolume()
                .endSpec().build();
    }

    @Test
    void eachIstiodPodIsAskedAndItsLogReadAndOneThatDiffersIsNamed() {
        chain(ca, root);
        istiod(istiodPod("istiod-a", REV, 3), VerifyCaTest.discoveryLog(ca, ca, root));
        Issued old = ca(root, "O=cluster.local");
        istiod(istiodPod("istiod-b", REV, 3), VerifyCaTest.discoveryLog(old, old, root));
        istiod(istiodPod("istiod-other-rev", "asm-197-2", 3), null);
        plugin.loaded.put("istiod-a", root.cert());

        Map<String, JsonNode> l = status();
        assertThat(l.get("hsm: root CA").get("state").asString()).isEqualTo("done");
        JsonNode logged = l.get("istiod: chain logged"), loaded = l.get("istiod: root loaded");
        assertThat(logged.get("state").asString()).as(logged.toString()).isEqualTo("wrong");
        assertThat(logged.get("detail").asString()).contains("istiod-a logged the Secret's 2 certificate(s)", "istiod-b loaded another chain than Secret istio-ca-cert");
        assertThat(logged.get("fix").asString()).contains("rollout restart");
        assertThat(loaded.get("state").asString()).as(loaded.toString()).isEqualTo("wrong");
        assertThat(loaded.get("detail").asString()).contains("istiod-a: its plugin verifies the HSM root (asked with verify-cert)",
                "istiod-b: its plugin has no root loaded (no loaded CA cert for verification)");
        assertThat(loaded.get("fix").asString()).isEqualTo("load-root");
        assertThat(plugin.calls).as("only the revision's pods, only asked").containsExactly("istiod-a: verify-cert", "istiod-b: verify-cert");

        plugin.loaded.put("istiod-b", root.cert());
        mock.client.pods().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName("istiod-b").delete();
        istiod(istiodPod("istiod-c", REV, 3), VerifyCaTest.discoveryLog(ca, ca, root));
        plugin.loaded.put("istiod-c", root.cert());
        l = status();
        assertThat(l.get("istiod: chain logged").get("state").asString()).as(l.get("istiod: chain logged").toString()).isEqualTo("done");
        assertThat(l.get("istiod: root loaded").get("state").asString()).as(l.get("istiod: root loaded").toString()).isEqualTo("done");
        assertThat(l.get("istiod: root loaded").get("evidence").toString()).isEqualTo("[\"asked\",\"asked\"]");

        // a plugin that holds another root verifies the chain of that root, not the HSM's
        plugin.loaded.put("istiod-c", root("CN=Stray Root").cert());
        l = status();
        assertThat(l.get("istiod: root loaded").get("state").asString()).isEqualTo("wrong");
        assertThat(l.get("istiod: root loaded").get("detail").asString()).contains("istiod-c: its plugin does not verify the HSM root 'CN=Mesh Root,O=Example'");
    }

    @Test
    void anAbortedIstiodNamesTheStepThatFixesIt() {
        chain(ca, root);
        istiod(istiodPod("istiod-a", REV, 2), "2026-11-26T10:00:05Z\terror\tpkica\tFailed to verify certificate chain (error: rpc error: code = Unknown desc = "
                + KmsPlugin.NOT_LOADED + "). Abort.\n");
        JsonNode logged = status().get("istiod: chain logged");
        assertThat(logged.get("state").asString()).isEqualTo("wrong");
        assertThat(logged.get("detail").asString()).contains("istiod-a: istiod aborted: its HSM plugin has no root loaded", "Failed to verify certificate chain");
        assertThat(logged.get("fix").asString()).startsWith("run load-root");
    }

    @Test
    void wherePluginsCannotBeAskedOnlyTheRootHookWithTheHsmRootCountsAsEvidence() {
        chain(ca, root);
        plugin.noShell = true;        // exec cannot run the plugin's client
        istiod(istiodPod("istiod-a", REV, 3), null);   // and no log to read
        JsonNode loaded = status().get("istiod: root loaded");
        assertThat(loaded.get("state").asString()).as(loaded.toString()).isEqualTo("unknown");
        // the stand-in ends the exec at once: the client reports either the missing shell or the stream it could not send on
        assertThat(loaded.get("detail").asString())
                .containsPattern("istiod-a: its plugin cannot be asked \\((the hsm-plugin container of istiod-a cannot run sh|.*exec in istiod-a/hsm-plugin)")
                .contains("has no postStart hook");

        mock.client.pods().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName("istiod-a").delete();
        istiod(withRootHook(istiodPod("istiod-h", REV, 3), Hsm.DEFAULT_CA_ID), "");   // served empty, as for a pod no kubelet runs
        loaded = status().get("istiod: root loaded");
        assertThat(loaded.get("state").asString()).as("no ConfigMap yet: " + loaded).isEqualTo("unknown");
        assertThat(loaded.get("detail").asString()).contains("there is no ConfigMap istio-hsm-root");

        mock.client.configMaps().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(PluginRootHook.rootConfigMap(root("CN=Other").pem())).create();
        loaded = status().get("istiod: root loaded");
        assertThat(loaded.get("state").asString()).isEqualTo("unknown");
        assertThat(loaded.get("detail").asString()).contains("ConfigMap istio-hsm-root holds 'CN=Other', not the HSM root");

        mock.client.configMaps().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(PluginRootHook.ROOT_CONFIGMAP).edit(c -> new ConfigMapBuilder(c)
                .withData(Map.of(PluginRootHook.ROOT_KEY, root.pem())).build());
        Map<String, JsonNode> l = status();
        loaded = l.get("istiod: root loaded");
        assertThat(loaded.get("state").asString()).as(loaded.toString()).isEqualTo("done");
        assertThat(loaded.get("detail").asString()).contains("istiod-h: loaded by the postStart hook, not asked");
        assertThat(loaded.get("evidence").toString()).isEqualTo("[\"postStart-hook\"]");
        assertThat(plugin.calls).isEmpty();
        // the log served empty, with nothing to infer from (the mock sets no start times): unknown, with why
        assertThat(l.get("istiod: chain logged").get("state").asString()).as(l.get("istiod: chain logged").toString()).isEqualTo("unknown");
        assertThat(l.get("istiod: chain logged").get("detail").asString())
                .isEqualTo("istiod-h: its log cannot be read: the API server serves its discovery log empty");

        // a hook for another CA ID is no evidence for this one
        token.writeCertificate(root.cert(), "another-ca");
        loaded = status("--ca-id", "another-ca").get("istiod: root loaded");
        assertThat(loaded.get("state").asString()).as(loaded.toString()).isEqualTo("unknown");
        assertThat(loaded.get("detail").asString()).contains("postStart hook is not install-asm's root hook for CA ID another-ca");
    }

    @Test
    void everyPodOfALabelledNamespaceNeedsItsSidecar() {
        mock.client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("shop").addToLabels(Istio.REV_LABEL, REV).endMetadata().build()).create();
        mock.client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("old").addToLabels(Istio.REV_LABEL, "asm-197-2").endMetadata().build()).create();
        Map<String, JsonNode> l = status();
        assertThat(l.get("sidecars").get("state").asString()).isEqualTo("done");
        assertThat(l.get("sidecars").get("detail").asString()).isEqualTo("no pods yet in shop");

        mock.client.pods().inNamespace("shop").resource(pod("shop", "cart-1", Map.of("app", "cart"), 2, "cart", "istio-proxy")).create();
        mock.client.pods().inNamespace("shop").resource(pod("shop", "pay-1", Map.of("app", "pay"), 1, "pay")).create();
        mock.client.pods().inNamespace("shop").resource(new PodBuilder(pod("shop", "job-1", Map.of("app", "job"), 1, "job")).editMetadata()
                .addToAnnotations("sidecar.istio.io/inject", "false").endMetadata().build()).create();
        mock.client.pods().inNamespace("old").resource(pod("old", "legacy-1", Map.of("app", "legacy"), 1, "legacy")).create();
        l = status();
        JsonNode s = l.get("sidecars");
        assertThat(s.get("state").asString()).as(s.toString()).isEqualTo("wrong");
        assertThat(s.get("detail").asString()).isEqualTo("1 pod(s) without istio-proxy: shop/pay-1; left out (sidecar.istio.io/inject=false): shop/job-1");
        assertThat(s.get("fix").asString()).contains("rollout restart");
        assertThat(s.get("withoutSidecar").toString()).isEqualTo("[\"shop/pay-1\"]");

        mock.client.pods().inNamespace("shop").withName("pay-1").delete();
        s = status().get("sidecars");
        assertThat(s.get("state").asString()).isEqualTo("done");
        assertThat(s.get("detail").asString()).startsWith("1 pod(s) in shop, each with istio-proxy");
    }

    @Test
    void theIstioCaCertificateSaysHowLongItHasAndWhichOneItIs() {
        chain(ca, root);   // valid for 30 days from now
        Map<String, JsonNode> l = status();
        JsonNode e = l.get("expiry: Istio CA");
        assertThat(e.get("state").asString()).isEqualTo("done");
        assertThat(e.get("daysLeft").asInt()).isBetween(29, 30);
        assertThat(e.get("warning").asBoolean()).as("under the default 30 days").isEqualTo(e.get("daysLeft").asInt() < 30);
        Pki.Identity id = Pki.identity(ca.cert());
        assertThat(e.get("serial").asString()).isEqualTo(ca.cert().getSerialNumber().toString(16));
        assertThat(e.get("ski").asString()).isEqualTo(id.ski()).matches("([0-9a-f]{2}:)+[0-9a-f]{2}( \\(computed\\))?");
        assertThat(e.get("cluster").asString()).isEqualTo("m1");
        assertThat(e.get("detail").asString()).contains("Istio CA of cluster m1 'O=cluster.local' (serial " + id.serial() + ", SKI " + id.ski()
                + ", not after " + id.notAfter() + ")");
        assertThat(l.get("expiry: root CA").get("state").asString()).isEqualTo("done");
        assertThat(l.get("expiry: root CA").get("detail").asString()).startsWith("root 'CN=Mesh Root,O=Example' (serial ");

        // another cluster's CA of the same subject: told apart by serial and SKI
        Issued other = ca(root, "O=cluster.local");
        assertThat(Pki.identity(other.cert()).serial()).isNotEqualTo(id.serial());
        assertThat(Pki.identity(other.cert()).ski()).isNotEqualTo(id.ski());

        e = status("--warn-days", "60").get("expiry: Istio CA");
        assertThat(e.get("state").asString()).isEqualTo("done");
        assertThat(e.get("warning").asBoolean()).isTrue();
        assertThat(e.get("detail").asString()).contains("day(s) left, under 60: renew it soon (sign-csr");
        e = status("--wrong-days", "40", "--warn-days", "60").get("expiry: Istio CA");
        assertThat(e.get("state").asString()).isEqualTo("wrong");
        assertThat(e.get("detail").asString()).contains("day(s), under 40");

        chain(expiredCa(root, "O=cluster.local"), root);
        e = status().get("expiry: Istio CA");
        assertThat(e.get("state").asString()).isEqualTo("wrong");
        assertThat(e.get("detail").asString()).contains("expired");
        assertThat(e.get("daysLeft").asInt()).isNegative();
        assertThat(e.get("fix").asString()).startsWith("sign-csr").contains(Istio.RESTART_TO_RELOAD);
    }
}
