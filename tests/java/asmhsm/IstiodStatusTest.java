package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodStatus;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * istiod-status against the lab's real API server: istiod pods created in a namespace of
 * their own, their statuses set through the status subresource as a kubelet would (no
 * kubelet runs there). The lab cannot serve container logs, so the step must fall back to
 * readiness and say so; the log lines themselves are covered by IstiodStatusLogsTest.
 */
@ExtendWith(LabExtension.class)
class IstiodStatusTest {

    /** A pod as the API server first stores it: Pending, no container status. */
    static Pod create(Lab lab, String ns, String name) {
        Pod p = IstiodStatusLogsTest.istiod(ns, name, false, false, false);
        p.setStatus(null);
        return lab.admin().pods().inNamespace(ns).resource(p).create();
    }

    /** Sets the pod's status as a kubelet would report it. */
    static void setStatus(Lab lab, String ns, String name, ContainerStatus... containers) {
        lab.admin().pods().inNamespace(ns).withName(name).editStatus(p -> {
            PodStatus s = new PodStatus();
            s.setPhase("Running");
            s.setContainerStatuses(new ArrayList<>(List.of(containers)));
            p.setStatus(s);
            return p;
        });
    }

    static ContainerStatus ready(String c) { return IstiodStatusLogsTest.running(c, true); }

    static ContainerStatus notReady(String c) { return IstiodStatusLogsTest.running(c, false); }

    static Cli.Result status(Lab lab, String ns, String... args) {
        List<String> a = new ArrayList<>(List.of("istiod-status", "--kubeconfig", lab.kubeconfig().toString(), "-n", ns));
        a.addAll(List.of(args));
        return Cli.asm(Map.of(), a.toArray(String[]::new));
    }

    @Test
    void noIstiodIsNotStartedAndSaysToInstall(Lab lab) {
        String ns = lab.freshNamespace();
        Cli.Result r = status(lab, ns);
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stdout()).contains("istiod in " + ns + ": not started (no pods)");
        assertThat(r.stderr()).contains("error: no istiod pods (app=istiod) in namespace " + ns).contains("-> install istiod with install-asm");
    }

    @Test
    void stagesFollowThePodStatuses(Lab lab) {
        String ns = lab.freshNamespace();
        String pod = "istiod-asm-198-6-66ff56d76c-f9p5l";
        create(lab, ns, pod);

        Cli.Result pending = status(lab, ns);
        assertThat(pending.exit()).as(pending.toString()).isZero();
        assertThat(pending.stdout()).contains("istiod in " + ns + ": not started").contains("0/3  Pending").contains("note: pod is Pending");

        // the guide's picture: 2/3, discovery blocked waiting for the CA certificate
        setStatus(lab, ns, pod, notReady("discovery"), ready("hsm-plugin"), ready("vaultclient"));
        assertThat(lab.admin().pods().inNamespace(ns).withName(pod).get().getStatus().getPhase()).isEqualTo("Running");
        Cli.Result waiting = status(lab, ns);
        assertThat(waiting.exit()).as(waiting.toString()).isZero();
        assertThat(waiting.stdout()).contains("istiod in " + ns + ": waiting for the CA")
                .contains("pod " + pod + "  2/3  Running  revision asm-198-6")
                .contains("inferred from readiness (2/3, only discovery not ready): no discovery log to read")
                .contains("Next: istiod waits for its CA certificate: run decrypt-csr --kubeconfig " + lab.kubeconfig() + " --namespace " + ns
                        + ", sign-csr, then upload-chain --kubeconfig " + lab.kubeconfig() + " --namespace " + ns);
        assertThat(waiting.stderr()).as("the lab has no kubelet: the API server serves empty logs")
                .contains("warning: the log of " + pod + "/discovery is empty").contains("warning: the log of " + pod + "/hsm-plugin is empty");

        setStatus(lab, ns, pod, ready("discovery"), ready("hsm-plugin"), ready("vaultclient"));
        Cli.Result running = status(lab, ns, "--json");
        assertThat(running.exit()).as(running.toString()).isZero();
        assertThat(running.stdout()).contains("\"stage\" : \"running\"").contains("\"ready\" : \"3/3\"");
    }

    @Test
    void aCrashLoopingPluginIsAProblem(Lab lab) {
        String ns = lab.freshNamespace();
        create(lab, ns, "istiod-x");
        setStatus(lab, ns, "istiod-x", notReady("discovery"), IstiodStatusLogsTest.crashLooping("hsm-plugin", 7), ready("vaultclient"));
        Cli.Result r = status(lab, ns);
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stdout()).contains("not started").contains("problem: container hsm-plugin: CrashLoopBackOff (7 restarts)");
        assertThat(r.stderr()).contains("error: container hsm-plugin: CrashLoopBackOff (7 restarts): back-off 5m0s")
                .contains("-> the HSM plugin cannot start: check the HSM is reachable");
    }

    @Test
    void waitPollsUntilIstiodWaitsForTheCa(Lab lab) throws Exception {
        String ns = lab.freshNamespace();
        create(lab, ns, "istiod-w");
        setStatus(lab, ns, "istiod-w", notReady("discovery"), notReady("hsm-plugin"), ready("vaultclient"));
        Path outputs = java.nio.file.Files.createTempDirectory("istiod-status-wait");
        Cli.Running run = Cli.start(Map.of(), null, outputs, "istiod-status", "--kubeconfig", lab.kubeconfig().toString(), "-n", ns,
                "--wait", "--timeout", "60s");
        // the kubelet starts hsm-plugin only once the step has reported the earlier state: no race with the JVM's start
        Cli.waitFor("istiod-status's progress line", () -> run.stderrSoFar().contains("istiod: not started (1/3 ready)"));
        setStatus(lab, ns, "istiod-w", notReady("discovery"), ready("hsm-plugin"), ready("vaultclient"));
        Cli.Result r = run.await();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stderr()).as("warned once, not at every poll").containsOnlyOnce("the log of istiod-w/discovery is empty");
        assertThat(r.stdout()).contains("istiod in " + ns + ": waiting for the CA");
    }

    @Test
    void waitGivesUpAtTheTimeoutSayingWhereIstiodIs(Lab lab) {
        String ns = lab.freshNamespace();
        create(lab, ns, "istiod-t");
        setStatus(lab, ns, "istiod-t", notReady("discovery"), ready("hsm-plugin"), ready("vaultclient"));
        Cli.Result r = status(lab, ns, "--wait=running", "--timeout", "3s");
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("error: istiod did not reach 'running' within 3s: it is waiting for the CA")
                .contains("-> istiod waits for its CA certificate: run decrypt-csr, sign-csr, then upload-chain");
        Cli.Result bad = status(lab, ns, "--wait=ready");
        assertThat(bad.exit()).isEqualTo(2);
        assertThat(bad.stderr()).contains("unknown stage 'ready'");
    }

    // ------------------------------------------------------------------ the Secrets and the pod's history, on the real API server

    static void secret(Lab lab, String ns, String name) {
        lab.admin().secrets().inNamespace(ns).resource(new io.fabric8.kubernetes.api.model.SecretBuilder().withNewMetadata().withName(name)
                .withNamespace(ns).endMetadata().addToData("x", "eA==").build()).create();
    }

    /** A container status as the kubelet reports a container that never restarted. */
    static ContainerStatus firstRun(String c, boolean ready) {
        ContainerStatus s = IstiodStatusLogsTest.running(c, ready);
        s.setRestartCount(0);
        return s;
    }

    @Test
    void eachStateOfTheSecretsIsOneLineWithWhatToDo(Lab lab) {
        String ns = lab.freshNamespace();
        create(lab, ns, "istiod-s");
        setStatus(lab, ns, "istiod-s", firstRun("discovery", false), firstRun("hsm-plugin", true), firstRun("vaultclient", true));
        assertThat(status(lab, ns).stdout()).as("no Secret yet").contains("state: istiod has not written its CSR yet (no Secret istio-ca-cert-csr)")
                .doesNotContain("restarted container").doesNotContain("new pod (made");

        secret(lab, ns, Istio.ENCRYPTED_KEY_SECRET);
        secret(lab, ns, Istio.CSR_SECRET);
        assertThat(status(lab, ns).stdout()).contains("state: istiod wrote its CSR (Secret istio-ca-cert-csr) and polls every 2 s for Secret istio-ca-cert"
                + " -> decrypt-csr, sign-csr, then upload-chain");

        secret(lab, ns, Istio.CA_CERT_SECRET);
        assertThat(status(lab, ns).stdout()).contains("state: Secret istio-ca-cert is there; istiod polls for it every 2 s while it waits"
                + " -> wait (istiod-status --wait running)");
        // the real istiod loads a chain without its CSR (it writes one only when both are missing): no fault
        lab.admin().secrets().inNamespace(ns).withName(Istio.CSR_SECRET).delete();
        assertThat(status(lab, ns).stdout()).contains("state: Secret istio-ca-cert is there; istiod polls for it every 2 s while it waits"
                + " (it needs no CSR beside it").doesNotContain("is missing while");
        secret(lab, ns, Istio.CSR_SECRET);

        setStatus(lab, ns, "istiod-s", firstRun("discovery", true), firstRun("hsm-plugin", true), firstRun("vaultclient", true));
        assertThat(status(lab, ns).stdout()).contains("state: istiod loaded its CA key and the chain of istio-ca-cert and serves certificates -> verify-ca");

        lab.admin().secrets().inNamespace(ns).withName(Istio.ENCRYPTED_KEY_SECRET).delete();
        Cli.Result r = status(lab, ns, "--json");
        assertThat(r.stdout()).contains("\"state\" : \"secrets-missing\"").contains("istiod's next start makes a new CA key, keeps any CSR, and aborts");
    }

    @Test
    void aNewPodAfterTheChainNeedsTheRootWhileARestartedContainerKeepsIt(Lab lab) throws Exception {
        String ns = lab.freshNamespace();
        secret(lab, ns, Istio.ENCRYPTED_KEY_SECRET);
        secret(lab, ns, Istio.CSR_SECRET);
        secret(lab, ns, Istio.CA_CERT_SECRET);
        Thread.sleep(1100);     // creation times are in seconds: the pod is made a second after the chain
        create(lab, ns, "istiod-new");
        setStatus(lab, ns, "istiod-new", firstRun("discovery", false), firstRun("hsm-plugin", true), firstRun("vaultclient", true));
        Cli.Result fresh = status(lab, ns);
        assertThat(fresh.stdout()).as(fresh.toString()).contains("new pod (made ").contains(", after istio-ca-cert was written): its hsm-plugin started with no root loaded"
                + " and its hsm-plugin has no postStart hook (install-asm's root hook) -> load-root");

        // the same pod, its discovery container restarted: the plugin process, and the root in it, stayed
        setStatus(lab, ns, "istiod-new", IstiodStatusLogsTest.running("discovery", true), firstRun("hsm-plugin", true), firstRun("vaultclient", true));
        Cli.Result restarted = status(lab, ns);
        assertThat(restarted.stdout()).as(restarted.toString()).contains("restarted container: discovery restarted 2 time(s) in this pod;"
                + " each start read the Secrets again and wrote no new CSR (istio-ca-cert-csr exists)").doesNotContain("new pod (made");
    }
}
