package asmhsm;

import static asmhsm.MeshTestKit.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * load-root: the root into each istiod pod's own plugin process, asked first with the plugin's
 * verify-cert. The plugin in the pod is {@link PluginStandIn} behind the mock server's exec (the
 * lab has no kubelet); what exec needs (RBAC, the pods) is also tried against the lab.
 */
class LoadRootTest {
    @TempDir Path tmp;
    PluginStandIn plugin;
    MockKube mock;
    Issued root, ca;
    Path rootPem;

    @BeforeEach
    void setUp() {
        mock = new MockKube(tmp, d -> plugin = new PluginStandIn(d));
        root = root("CN=Root CA,O=Example");
        ca = ca(root, "O=cluster.local");
        rootPem = write(tmp.resolve("root.pem"), root.pem());
        mock.client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(KubeLayout.ISTIO_NAMESPACE).endMetadata().build()).create();
    }

    @AfterEach
    void tearDown() {
        mock.close();
    }

    void istiod(String name, String revision) {
        mock.client.pods().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(istiodPod(name, revision, 2)).create();
    }

    void chain(Issued... certs) {
        mock.client.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(new SecretBuilder().withNewMetadata().withName(Istio.CA_CERT_SECRET)
                .endMetadata().addToData(Istio.CA_CERT_KEY, Base64.getEncoder().encodeToString(pems(certs).getBytes(StandardCharsets.UTF_8))).build()).create();
    }

    Cli.Result loadRoot(String... extra) {
        List<String> args = new ArrayList<>(List.of("--kubeconfig", mock.kubeconfig.toString(), "--root-cert", rootPem.toString()));
        args.addAll(List.of(extra));
        return run(new LoadRoot(), args.toArray(String[]::new));
    }

    @Test
    void aFreshPluginGetsTheRootOnceAndASecondRunChangesNothing() {
        istiod("istiod-asm-198-6-abc", "asm-198-6");
        chain(ca, root);
        Cli.Result r = loadRoot();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("loaded the root into pod istiod-asm-198-6-abc's hsm-plugin; it now verifies the CA certificate of Secret istio-ca-cert");
        assertThat(plugin.calls).containsExactly("istiod-asm-198-6-abc: verify-cert", "istiod-asm-198-6-abc: import-ca", "istiod-asm-198-6-abc: verify-cert");
        assertThat(plugin.imports).containsExactly(Hsm.DEFAULT_CA_ID);
        assertThat(plugin.loaded.get("istiod-asm-198-6-abc")).isEqualTo(root.cert());

        r = loadRoot("--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        JsonNode j = JsonMapper.builder().build().readTree(r.stdout());
        assertThat(j.path("changed").asBoolean()).isFalse();
        assertThat(j.path("pods").get(0).path("before").asString()).isEqualTo("loaded");
        assertThat(j.path("pods").get(0).path("action").asString()).isEqualTo("none");
        assertThat(plugin.imports).as("no second copy on the token").hasSize(1);
    }

    @Test
    void beforeUploadTheRootItselfIsWhatThePluginIsAsked() {
        istiod("istiod-1", "asm-198-6");
        Cli.Result r = loadRoot("--ca-id", "my-ca");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("it now verifies the root itself (no istio-ca-cert yet)");
        assertThat(plugin.caIds.get("istiod-1")).isEqualTo("my-ca");
    }

    @Test
    void eachPodIsJudgedOnItsOwnAndARestartedPluginIsLoadedAgain() {
        istiod("istiod-a", "asm-198-6");
        istiod("istiod-b", "asm-198-6");
        chain(ca, root);
        assertThat(loadRoot().exit()).isZero();
        plugin.restartPlugin("istiod-b"); // a new pod's (or a restarted container's) fresh plugin
        plugin.calls.clear();
        Cli.Result r = loadRoot();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("pod istiod-a: the root is already loaded", "loaded the root into pod istiod-b's hsm-plugin");
        assertThat(plugin.calls).containsExactly("istiod-a: verify-cert", "istiod-b: verify-cert", "istiod-b: import-ca", "istiod-b: verify-cert");
    }

    @Test
    void dryRunAsksButImportsNothing() {
        istiod("istiod-1", "asm-198-6");
        Cli.Result r = loadRoot("--dry-run", "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        JsonNode j = JsonMapper.builder().build().readTree(r.stdout());
        assertThat(j.path("changed").asBoolean()).isTrue();
        assertThat(j.path("pods").get(0).path("action").asString()).isEqualTo("would-import");
        assertThat(plugin.imports).isEmpty();
        assertThat(plugin.calls).containsExactly("istiod-1: verify-cert");
    }

    @Test
    void aChainOfAnotherRootIsRefusedAndNothingIsImported() {
        istiod("istiod-1", "asm-198-6");
        plugin.loaded.put("istiod-1", root.cert());
        Issued other = root("CN=Other Root");
        chain(ca(other, "O=cluster.local"), other);
        Cli.Result r = loadRoot();
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("does not verify the CA certificate of Secret istio-ca-cert", "x509: certificate signed by unknown authority",
                "sign-csr with the HSM's root, then upload-chain --replace");
        assertThat(plugin.imports).isEmpty();
    }

    @Test
    void onlyTheGivenRevisionAndOnlyRunningPluginsAreTouched() {
        istiod("istiod-old", "asm-197-2");
        istiod("istiod-new", "asm-198-6");
        Pod starting = new PodBuilder(istiodPod("istiod-starting", "asm-198-6", 0)).editStatus().withContainerStatuses().endStatus().build();
        mock.client.pods().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(starting).create();
        Cli.Result r = loadRoot("--revision", "asm-198-6");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stderr()).contains("pod istiod-starting does not run its hsm-plugin yet: load-root again once it does");
        assertThat(plugin.loaded).containsOnlyKeys("istiod-new");
    }

    @Test
    void noPodsNoShellAndBadInputAreClearFailures() {
        Cli.Result r = loadRoot();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("no istiod pods in istio-system", "install istiod first (install-asm)");

        istiod("istiod-1", "asm-198-6");
        plugin.noShell = true;
        r = loadRoot();
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("the hsm-plugin container of istiod-1 cannot run sh, head or /k8s-kms-plugin");

        assertThat(loadRoot("--revision", "no such revision!").exit()).isEqualTo(2);
        assertThat(loadRoot("--timeout", "soon").exit()).isEqualTo(2);
        write(tmp.resolve("not-root.pem"), ca.pem());
        r = run(new LoadRoot(), "--kubeconfig", mock.kubeconfig.toString(), "--root-cert", tmp.resolve("not-root.pem").toString());
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("is not a self-signed root");
        assertThat(plugin.imports).isEmpty();
    }

    /** Against the lab's kube-apiserver: pods are listed with the operator's rights; one who may not list them is told so. */
    @Test
    @ExtendWith(LabExtension.class)
    void onTheLabANamespaceWithoutIstiodAndAUserWithoutRightsFailClearly(Lab lab) {
        Map<String, String> env = Map.of("KUBECONFIG", lab.kubeconfig().toString());
        String ns = lab.freshNamespace();
        {
            Cli.Result r = Cli.asm(env, "load-root", "-n", ns, "--root-cert", rootPem.toString());
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            assertThat(r.stderr()).contains("no istiod pods in " + ns);
            r = Cli.asm(Map.of("KUBECONFIG", lab.nobodyKubeconfig().toString()), "load-root", "-n", ns, "--root-cert", rootPem.toString());
            assertThat(r.exit()).as(r.toString()).isNotZero();
            assertThat(r.stderr()).containsIgnoringCase("forbidden").doesNotContain("Exception");
        }
    }
}
