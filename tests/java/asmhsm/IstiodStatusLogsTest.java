package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * istiod-status reading the hsm-plugin and discovery logs. The lab has no kubelet to serve
 * container logs, so these run against the fabric8 mock server; the log texts are the
 * guide's own samples. IstiodStatusTest covers pods and statuses on the real API server.
 */
class IstiodStatusLogsTest {
    static final String NS = KubeLayout.ISTIO_NAMESPACE;
    static final String KEK = "7651a4ea-eeb7-4c1f-927b-8c871c2127aa";
    /** The guide's expected `kubectl logs -c hsm-plugin` output, as it prints it. */
    static final String PLUGIN_LOG = """
            The token has been initialized and is reassigned to slot 412789065
            INFO Loaded P11 PIN from file: /var/run/hsm-credential/pin line="cmd/serve.go:93"
            INFO KMS Plugin Listening on : /var/run/hsm-socket/.sock line="cmd/serve.go:119"
            INFO Serving on socket: /var/run/hsm-socket/.sock line="cmd/serve.go:198"
            KEK ID: 7651a4ea-eeb7-4c1f-927b-8c871c2127aa
            """;
    static final String WAIT_LINE =
            "2020-10-15T21:56:56.918931Z\tinfo\tpkica\tWait until the CA certificate secret istio-system.istio-ca-cert can be loaded...";
    static final String DISCOVERY_WAITING = """
            2020-10-15T21:56:55.101010Z\tinfo\tpkica\tUse KMS backed CA
            2020-10-15T21:56:56.817277Z\tinfo\tpkica\tNewly generated CSR is successfully written into secret istio-ca-cert-csr.
            """ + WAIT_LINE + "\n";

    @TempDir Path tmp;
    MeshTestKit.MockKube kube;

    @BeforeEach
    void start() {
        kube = new MeshTestKit.MockKube(tmp);
    }

    @AfterEach
    void stop() {
        kube.close();
    }

    /** An istiod pod of the guide's shape: discovery, hsm-plugin, vaultclient, readiness per container. */
    static Pod istiod(String ns, String name, boolean discoveryReady, boolean pluginReady, boolean vaultReady) {
        return istiod(ns, name, running("discovery", discoveryReady), running("hsm-plugin", pluginReady), running("vaultclient", vaultReady));
    }

    static Pod istiod(String ns, String name, ContainerStatus... statuses) {
        PodBuilder b = new PodBuilder().withNewMetadata().withNamespace(ns).withName(name)
                .withLabels(Map.of("app", "istiod", "istio.io/rev", Istio.GUIDE_REVISION, "istio", "istiod")).endMetadata()
                .withNewSpec().endSpec();
        for (String c : List.of("discovery", "hsm-plugin", "vaultclient"))
            b.editSpec().addNewContainer().withName(c).withImage("example.invalid/" + c + ":1").endContainer().endSpec();
        return b.withNewStatus().withPhase("Running").withContainerStatuses(new ArrayList<>(List.of(statuses))).endStatus().build();
    }

    static ContainerStatus running(String name, boolean ready) {
        return new ContainerStatusBuilder().withName(name).withImage("example.invalid/" + name + ":1").withImageID("")
                .withReady(ready).withRestartCount(name.equals("discovery") ? 2 : 0).withStarted(true)
                .withNewState().withNewRunning().withStartedAt("2026-01-01T00:00:00Z").endRunning().endState().build();
    }

    static ContainerStatus crashLooping(String name, int restarts) {
        return new ContainerStatusBuilder().withName(name).withImage("example.invalid/" + name + ":1").withImageID("")
                .withReady(false).withRestartCount(restarts).withStarted(false)
                .withNewState().withNewWaiting().withReason("CrashLoopBackOff")
                .withMessage("back-off 5m0s restarting failed container").endWaiting().endState().build();
    }

    void logs(String pod, String container, String text) {
        kube.server.expect().get()
                .withPath("/api/v1/namespaces/" + NS + "/pods/" + pod + "/log?pretty=false&container=" + container + "&tailLines=5000")
                .andReturn(200, text).always();
    }

    Cli.Result status(String... args) {
        List<String> a = new ArrayList<>(List.of("--kubeconfig", kube.kubeconfig.toString()));
        a.addAll(List.of(args));
        return MeshTestKit.run(new IstiodStatus(), a.toArray(String[]::new));
    }

    @Test
    void waitingForTheCaAsTheGuideShowsIt() {
        kube.client.pods().resource(istiod(NS, "istiod-asm-198-6-66ff56d76c-f9p5l", false, true, true)).create();
        logs("istiod-asm-198-6-66ff56d76c-f9p5l", "hsm-plugin", PLUGIN_LOG);
        logs("istiod-asm-198-6-66ff56d76c-f9p5l", "discovery", DISCOVERY_WAITING);

        Cli.Result r = status("--kek-id", KEK);

        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("istiod in istio-system: waiting for the CA")
                .contains("pod istiod-asm-198-6-66ff56d76c-f9p5l  2/3  Running  revision asm-198-6")
                .containsPattern("discovery +not ready +running \\(2 restarts\\)")
                .contains("hsm-plugin log: KEK ID: " + KEK)
                .contains("discovery log: " + WAIT_LINE.strip())
                .contains("Next: istiod waits for its CA certificate: run decrypt-csr --kubeconfig " + kube.kubeconfig + " --kek-id " + KEK
                        + ", sign-csr, then upload-chain --kubeconfig " + kube.kubeconfig + " --kek-id " + KEK);
        assertThat(r.stdout()).as("nothing else of the logs is echoed").doesNotContain("Loaded P11 PIN").doesNotContain("Use KMS backed CA");
        assertThat(r.stderr()).doesNotContain("warning");
    }

    @Test
    void jsonSaysTheStageAndTheLogFacts() {
        kube.client.pods().resource(istiod(NS, "istiod-a", false, true, true)).create();
        logs("istiod-a", "hsm-plugin", PLUGIN_LOG);
        logs("istiod-a", "discovery", DISCOVERY_WAITING);
        Cli.Result r = status("--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        JsonNode j = JsonMapper.builder().build().readTree(r.stdout());
        assertThat(j.path("stage").asString()).isEqualTo("waiting-for-ca");
        JsonNode pod = j.path("pods").get(0);
        assertThat(pod.path("ready").asString()).isEqualTo("2/3");
        assertThat(pod.path("kekId").asString()).isEqualTo(KEK);
        assertThat(pod.path("waitingForCaLogged").asBoolean()).isTrue();
        assertThat(pod.path("containers").get(0).path("name").asString()).isEqualTo("discovery");
        assertThat(pod.path("containers").get(0).path("ready").asBoolean()).isFalse();
    }

    @Test
    void aPluginUsingAnotherKekIsAProblem() {
        kube.client.pods().resource(istiod(NS, "istiod-b", false, true, true)).create();
        logs("istiod-b", "hsm-plugin", PLUGIN_LOG);
        logs("istiod-b", "discovery", DISCOVERY_WAITING);
        Cli.Result r = status("--kek-id", "0b5c9c3e-1111-4222-8333-944455556666");
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("error: hsm-plugin uses KEK " + KEK + ", not KEK_ID 0b5c9c3e-1111-4222-8333-944455556666")
                .contains("-> install-asm again with the KEK generated by gen-kek");
    }

    @Test
    void aRejectedChainIsAProblemWithWhatToDo() {
        kube.client.pods().resource(istiod(NS, "istiod-c", crashLooping("discovery", 4), running("hsm-plugin", true),
                running("vaultclient", true))).create();
        logs("istiod-c", "hsm-plugin", PLUGIN_LOG);
        logs("istiod-c", "discovery", DISCOVERY_WAITING + "2020-10-24T18:58:14.354254Z\tinfo\tpkica\tSuccessfully loaded the secret.\n"
                + "2020-10-24T18:58:14.360000Z\terror\tpkica\tFailed to verify certificate chain (error: x509: certificate signed by unknown authority). Abort.\n");
        Cli.Result r = status();
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stdout()).contains("istiod in istio-system: crash-looping (istiod aborts at start-up)")
                .contains("note: discovery has restarted 4 time(s)")
                .contains("problem: istiod refused the CA chain:").contains("x509: certificate signed by unknown authority")
                .as("the abort names the cause: no generic crash-loop problem beside it").doesNotContain("problem: container discovery");
        assertThat(r.stderr()).contains("error: istiod refused the CA chain:").contains("-> the CA certificate must be issued directly by the root");
    }

    @Test
    void runningOnceTheChainIsLoaded() {
        kube.client.pods().resource(istiod(NS, "istiod-d", true, true, true)).create();
        logs("istiod-d", "hsm-plugin", PLUGIN_LOG);
        logs("istiod-d", "discovery", DISCOVERY_WAITING + "2020-10-24T18:58:14.354254Z\tinfo\tpkica\tSuccessfully loaded the secret.\n"
                + "2020-10-24T18:58:14.360000Z\tinfo\tpkica\tLoaded decrypted CA key and CA certificate into memory.\n");
        Cli.Result r = status("--wait=running", "--timeout", "10s");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("istiod in istio-system: running").contains("3/3")
                .contains("Next: istiod runs with its CA: check the chain it loaded with verify-ca --kubeconfig " + kube.kubeconfig
                        + ", then enable-injection --kubeconfig " + kube.kubeconfig);
    }

    @Test
    void discoveryNotYetWaitingIsNotStarted() {
        kube.client.pods().resource(istiod(NS, "istiod-e", false, true, true)).create();
        logs("istiod-e", "hsm-plugin", "The token has been initialized and is reassigned to slot 412789065\n");
        logs("istiod-e", "discovery", "2020-10-15T21:56:55.101010Z\tinfo\tpkica\tUse KMS backed CA\n");
        Cli.Result r = status();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("istiod in istio-system: not started")
                .contains("note: not ready: discovery; discovery has not started waiting for the CA yet")
                .as("the real plugin's serve never prints the guide's KEK ID line: nothing waits for it").doesNotContain("KEK ID");
    }

    @Test
    void unreadableLogsFallBackToReadinessWithAWarning() {
        kube.client.pods().resource(istiod(NS, "istiod-f", false, true, true)).create();
        for (String c : List.of("discovery", "hsm-plugin"))
            kube.server.expect().get().withPath("/api/v1/namespaces/" + NS + "/pods/istiod-f/log?pretty=false&container=" + c + "&tailLines=5000")
                    .andReturn(403, "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"pods \\\"istiod-f\\\" is forbidden: cannot get pods/log\",\"code\":403}").always();
        Cli.Result r = status();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("waiting for the CA").contains("inferred from readiness (2/3, only discovery not ready): no discovery log to read");
        assertThat(r.stderr()).contains("warning: cannot read the log of istiod-f/discovery: pods \"istiod-f\" is forbidden")
                .contains("warning: cannot read the log of istiod-f/hsm-plugin");
    }

    /** What the real plugin's serve prints (e1e1c76): no "KEK ID:" line, unlike the guide's sample. */
    static final String REAL_PLUGIN_LOG = """
            time="2026-12-01T10:00:00Z" level=info msg="Loaded P11 PIN from file: /var/run/hsm-credential/pin"
            time="2026-12-01T10:00:00Z" level=info msg="KMS Plugin Listening on : /var/run/hsm-socket/.sock\\n"
            """;

    void previousLogs(String pod, String container, String text) {
        kube.server.expect().get()
                .withPath("/api/v1/namespaces/" + NS + "/pods/" + pod + "/log?pretty=false&container=" + container + "&previous=true&tailLines=5000")
                .andReturn(200, text).always();
    }

    static final String ABORT_NOT_LOADED = "2026-12-01T10:00:07.000000Z\terror\tpkica\tFailed to verify certificate chain (error: rpc error: "
            + "code = Unknown desc = no loaded CA cert for verification). Abort.\n";

    @Test
    void theRealPluginsLogWithoutAKekIdLineIsNoProblem() {
        kube.client.pods().resource(istiod(NS, "istiod-g", false, true, true)).create();
        logs("istiod-g", "hsm-plugin", REAL_PLUGIN_LOG);
        logs("istiod-g", "discovery", DISCOVERY_WAITING);
        Cli.Result r = status("--kek-id", KEK, "--wait", "--timeout", "5s");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("waiting for the CA").doesNotContain("KEK ID");
    }

    @Test
    void aRootNotLoadedInThePluginIsACrashLoopThatLoadRootFixesNotSigning() {
        kube.client.pods().resource(istiod(NS, "istiod-h", crashLooping("discovery", 3), running("hsm-plugin", true),
                running("vaultclient", true))).create();
        logs("istiod-h", "hsm-plugin", REAL_PLUGIN_LOG);
        logs("istiod-h", "discovery", "");
        previousLogs("istiod-h", "discovery", "2026-12-01T10:00:00.000000Z\tinfo\tpkica\tUse KMS backed CA\n"
                + "2026-12-01T10:00:01.000000Z\tinfo\tpkica\tCSR exists in secret istio-ca-cert-csr.\n" + ABORT_NOT_LOADED);
        Cli.Result r = status("--wait=running", "--timeout", "5m", "--json");
        assertThat(r.exit()).as("it does not wait 5 minutes for what waiting cannot fix:\n" + r).isEqualTo(1);
        JsonNode j = JsonMapper.builder().build().readTree(r.stdout());
        assertThat(j.path("stage").asString()).isEqualTo("crash-looping");
        assertThat(j.path("error").asString()).contains("istiod aborted: its HSM plugin has no root loaded (no loaded CA cert for verification)");
        assertThat(j.path("hint").asString()).startsWith("run load-root").doesNotContain("sign-csr again");
    }

    @Test
    void aChainIstiodCannotSplitNamesUploadChain() {
        kube.client.pods().resource(istiod(NS, "istiod-i", crashLooping("discovery", 1), running("hsm-plugin", true),
                running("vaultclient", true))).create();
        logs("istiod-i", "hsm-plugin", REAL_PLUGIN_LOG);
        logs("istiod-i", "discovery", DISCOVERY_WAITING + "2026-12-01T10:00:09.000000Z\terror\tpkica\tfailed to create CA KeyCertBundle "
                + "(error spliting the cert chain)\n");
        Cli.Result r = status();
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stdout()).contains("crash-looping");
        assertThat(r.stderr()).contains("istiod cannot split cert-chain.pem", "upload-chain --replace");
    }

    @Test
    void misleadingFailureLinesWhileASecretIsMissingAreNotFailures() {
        kube.client.pods().resource(istiod(NS, "istiod-j", false, true, true)).create();
        logs("istiod-j", "hsm-plugin", REAL_PLUGIN_LOG);
        logs("istiod-j", "discovery", DISCOVERY_WAITING.replace(WAIT_LINE, "2026-12-01T10:00:02.000000Z\terror\tpkica\tFailed to read CA cert CSR "
                + "from secret (error: secrets \"istio-ca-cert\" not found)\n2026-12-01T10:00:02.100000Z\terror\tsecretcontroller\tFailed on loading CA secret\n"
                + WAIT_LINE));
        Cli.Result r = status();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("waiting for the CA").doesNotContain("problem:");
    }

    // ------------------------------------------------------------------ one line per state, with what to do

    void secret(String name) {
        kube.client.secrets().inNamespace(NS).resource(new io.fabric8.kubernetes.api.model.SecretBuilder().withNewMetadata().withName(name)
                .withNamespace(NS).endMetadata().addToData("x", "eA==").build()).create();
    }

    @Test
    void waitingForTheChainOnceTheCsrIsWrittenSaysToSignAndUpload() {
        secret(Istio.CSR_SECRET);
        secret(Istio.ENCRYPTED_KEY_SECRET);
        kube.client.pods().resource(istiod(NS, "istiod-k", false, true, true)).create();
        logs("istiod-k", "hsm-plugin", REAL_PLUGIN_LOG);
        logs("istiod-k", "discovery", DISCOVERY_WAITING);
        Cli.Result r = status("--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        JsonNode pod = JsonMapper.builder().build().readTree(r.stdout()).path("pods").get(0);
        assertThat(pod.path("state").asString()).isEqualTo("waiting-for-chain");
        assertThat(pod.path("todo").asString()).isEqualTo("decrypt-csr, sign-csr, then upload-chain");
        assertThat(pod.path("restart").asString()).as("discovery restarted twice in this pod")
                .startsWith("restarted container: discovery restarted 2 time(s) in this pod").contains("wrote no new CSR (istio-ca-cert-csr exists)")
                .contains("the hsm-plugin process is the same, so a root loaded into it stays loaded");
    }

    @Test
    void noCsrSecretYetIsWaitingForTheCsr() {
        kube.client.pods().resource(istiod(NS, "istiod-l", false, true, true)).create();
        logs("istiod-l", "hsm-plugin", REAL_PLUGIN_LOG);
        logs("istiod-l", "discovery", "2020-10-15T21:56:55.101010Z\tinfo\tpkica\tUse KMS backed CA\n" + WAIT_LINE + "\n");
        Cli.Result r = status();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("state: istiod has not written its CSR yet (no Secret istio-ca-cert-csr): it does about 6 s after it starts,"
                + " with a new CA key (no Secret istio-ca-encrypted-key) -> wait: istiod-status --wait");
    }

    @Test
    void aCrashLoopWithNoRootLoadedSaysLoadRootInOneLine() {
        secret(Istio.CSR_SECRET);
        secret(Istio.ENCRYPTED_KEY_SECRET);
        secret(Istio.CA_CERT_SECRET);
        kube.client.pods().resource(istiod(NS, "istiod-m", crashLooping("discovery", 3), running("hsm-plugin", true),
                running("vaultclient", true))).create();
        logs("istiod-m", "hsm-plugin", REAL_PLUGIN_LOG);
        logs("istiod-m", "discovery", "");
        previousLogs("istiod-m", "discovery", "2026-12-01T10:00:01.000000Z\tinfo\tpkica\tCSR exists in secret istio-ca-cert-csr.\n" + ABORT_NOT_LOADED);
        Cli.Result r = status();
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stdout()).contains("state: crash loop: this pod's HSM plugin has no root loaded, so istiod aborts at every start -> load-root")
                .contains("restarted container: discovery restarted 3 time(s) in this pod");
    }

    @Test
    void loadedSaysVerifyCaAndHowAChangedChainIsLoaded() {
        secret(Istio.CSR_SECRET);
        secret(Istio.ENCRYPTED_KEY_SECRET);
        secret(Istio.CA_CERT_SECRET);
        kube.client.pods().resource(istiod(NS, "istiod-n", true, true, true)).create();
        logs("istiod-n", "hsm-plugin", REAL_PLUGIN_LOG);
        logs("istiod-n", "discovery", "2020-10-24T18:58:14.360000Z\tinfo\tpkica\tLoaded decrypted CA key and CA certificate into memory.\n");
        Cli.Result r = status();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("state: istiod loaded its CA key and the chain of istio-ca-cert and serves certificates -> verify-ca;"
                + " a changed chain needs a restart: " + Istio.RESTART_TO_RELOAD);
    }

    @Test
    void aMissingEncryptedKeyBesideAChainSaysTheNextStartMakesANewKeyAndAborts() {
        secret(Istio.CSR_SECRET);
        secret(Istio.CA_CERT_SECRET);
        kube.client.pods().resource(istiod(NS, "istiod-o", true, true, true)).create();
        logs("istiod-o", "hsm-plugin", REAL_PLUGIN_LOG);
        logs("istiod-o", "discovery", "2020-10-24T18:58:14.360000Z\tinfo\tpkica\tLoaded decrypted CA key and CA certificate into memory.\n");
        Cli.Result r = status("--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        JsonNode j = JsonMapper.builder().build().readTree(r.stdout());
        assertThat(j.path("secrets").path(Istio.ENCRYPTED_KEY_SECRET).asBoolean()).isFalse();
        JsonNode pod = j.path("pods").get(0);
        assertThat(pod.path("state").asString()).isEqualTo("secrets-missing");
        assertThat(pod.path("explanation").asString()).contains("istiod's next start makes a new CA key, keeps any CSR, and aborts");
        assertThat(pod.path("todo").asString()).startsWith("restore " + Istio.ENCRYPTED_KEY_SECRET + " from a backup").endsWith(Istio.NEW_CSR_FOR_ITS_KEY);
    }
}
