package asmhsm;

import static asmhsm.KubeVaultStepsSupport.concat;
import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.errorLines;
import static asmhsm.KubeVaultStepsSupport.json;
import static asmhsm.KubeVaultStepsSupport.kubectlJson;
import static asmhsm.KubeVaultStepsSupport.tool;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.List;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import tools.jackson.databind.JsonNode;

/**
 * k8s-vault-prep against the lab's API server and controller manager. Each test takes its own namespace
 * (--namespace) and binding name (--binding) so tests never share state; kubectl, openssl and a
 * kubeconfig made from the written files check the result independently.
 */
@ExtendWith(LabExtension.class)
class K8sVaultPrepTest {
    @TempDir Path tmp;

    static String[] prep(String ns, String... more) {
        List<String> a = new java.util.ArrayList<>(List.of("k8s-vault-prep", "--namespace", ns, "--binding", "tokenreview-" + ns));
        a.addAll(List.of(more));
        return a.toArray(String[]::new);
    }

    @Test
    void makesTheGuidesObjectsAndFilesThenChangesNothing(Lab lab) throws Exception {
        String ns = "kvp-" + lab.freshMount();
        Cli.Result first = Cli.asm(env(lab), tmp, prep(ns, "--cluster-suffix", "c1"));
        assertThat(first.exit()).as(first.toString()).isZero();
        assertThat(first.stdout()).contains("created Namespace " + ns, "created ClusterRoleBinding tokenreview-" + ns,
                "created Secret " + ns + "/default-token", "wrote c1/c1-tokenreview_jwt (mode 0600)", "wrote c1/c1-k8s_addr",
                "wrote c1/c1-k8s_cert");
        checkClusterAndFiles(lab, ns, tmp.resolve("c1"));

        Cli.Result again = Cli.asm(env(lab), tmp, prep(ns, "--cluster-suffix", "c1", "--json"));
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(json(again).get("changed").asBoolean()).as(again.toString()).isFalse();
        checkClusterAndFiles(lab, ns, tmp.resolve("c1"));

        // a copied file loses its private mode: the next run puts it back, content unchanged
        Path jwt = tmp.resolve("c1/c1-tokenreview_jwt");
        Files.setPosixFilePermissions(jwt, PosixFilePermissions.fromString("rw-r--r--"));
        Cli.Result fix = Cli.asm(env(lab), tmp, prep(ns, "--cluster-suffix", "c1"));
        assertThat(fix.stdout()).contains("updated c1/c1-tokenreview_jwt (mode 0600)").doesNotContain("new: give it to Vault");
        assertThat(Files.getPosixFilePermissions(jwt)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
    }

    static void checkClusterAndFiles(Lab lab, String ns, Path dir) throws Exception {
        checkClusterAndFiles(lab, ns, "tokenreview-" + ns, dir, "c1");
    }

    /** The guide's objects in the cluster and its three files, checked with kubectl, openssl and a TokenReview-capable kubeconfig. */
    static void checkClusterAndFiles(Lab lab, String ns, String binding, Path dir, String suffix) throws Exception {
        JsonNode crb = kubectlJson(lab, "get", "clusterrolebinding", binding);
        assertThat(crb.at("/roleRef/kind").asString()).isEqualTo("ClusterRole");
        assertThat(crb.at("/roleRef/name").asString()).isEqualTo("system:auth-delegator");
        assertThat(crb.at("/subjects")).hasSize(1);
        assertThat(crb.at("/subjects/0/kind").asString()).isEqualTo("ServiceAccount");
        assertThat(crb.at("/subjects/0/name").asString()).isEqualTo("default");
        assertThat(crb.at("/subjects/0/namespace").asString()).isEqualTo(ns);
        JsonNode secret = kubectlJson(lab, "-n", ns, "get", "secret", "default-token");
        assertThat(secret.at("/type").asString()).isEqualTo("kubernetes.io/service-account-token");
        assertThat(secret.at("/metadata/annotations/kubernetes.io~1service-account.name").asString()).isEqualTo("default");

        // the files hold what the guide's kubectl/jsonpath/base64 pipeline extracts, without its sed repairs
        Path jwt = dir.resolve(suffix + "-tokenreview_jwt"), addr = dir.resolve(suffix + "-k8s_addr"), cert = dir.resolve(suffix + "-k8s_cert");
        String token = new String(Base64.getDecoder().decode(secret.at("/data/token").asString()), StandardCharsets.UTF_8);
        assertThat(Files.readString(jwt)).isEqualTo(token + "\n");
        assertThat(Files.getPosixFilePermissions(jwt)).isEqualTo(PosixFilePermissions.fromString("rw-------"));
        assertThat(Files.readString(addr)).isEqualTo(lab.k8sAddr() + "\n");
        assertThat(Files.readAllBytes(cert)).isEqualTo(Base64.getDecoder().decode(secret.at("/data/ca.crt").asString()));
        String fp = "-fingerprint";
        assertThat(tool(lab, dir, "openssl", "x509", "-in", cert.toString(), "-noout", fp, "-sha256"))
                .isEqualTo(tool(lab, dir, "openssl", "x509", "-in", lab.k8sCaCert().toString(), "-noout", fp, "-sha256"));

        // what Vault will do with the three files: call TokenReview as that account, trusting that CA
        Path kc = dir.resolve("reviewer.kubeconfig");
        Files.writeString(kc, """
                apiVersion: v1
                kind: Config
                clusters: [{name: c, cluster: {server: "%s", certificate-authority: "%s"}}]
                users: [{name: u, user: {tokenFile: "%s"}}]
                contexts: [{name: x, context: {cluster: c, user: u}}]
                current-context: x
                """.formatted(Files.readString(addr).strip(), cert, jwt));
        Cli.Result canI = Cli.run(List.of("kubectl", "--kubeconfig", kc.toString(), "auth", "can-i", "create",
                "tokenreviews.authentication.k8s.io"), java.util.Map.of(), dir, null);
        assertThat(canI.stdout().strip()).as(canI.toString()).isEqualTo("yes");
        Files.delete(kc);
    }

    /**
     * The waits, on the fabric8 mock server: it has no controllers, so the service account and the
     * token never come, and the step must give up after --timeout with a progress line and a hint.
     */
    @Nested
    @EnableKubernetesMockClient(crud = true)
    class WaitsOnTheMockServer {
        KubernetesClient client;

        Cli.Result prepInProcess(Path kubeconfig, String... args) {
            var out = new java.io.ByteArrayOutputStream();
            var err = new java.io.ByteArrayOutputStream();
            java.io.PrintStream o = System.out, e = System.err;
            try {
                System.setOut(new java.io.PrintStream(out, true, StandardCharsets.UTF_8));
                System.setErr(new java.io.PrintStream(err, true, StandardCharsets.UTF_8));
                int exit = new picocli.CommandLine(new K8sVaultPrep()).execute(concat(List.of("--kubeconfig", kubeconfig.toString()), args));
                return new Cli.Result(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
            } finally {
                System.setOut(o);
                System.setErr(e);
            }
        }

        Path kubeconfig() throws Exception {
            return Files.writeString(tmp.resolve("mock.kubeconfig"), """
                    apiVersion: v1
                    kind: Config
                    clusters: [{name: m, cluster: {server: "%s", insecure-skip-tls-verify: true}}]
                    users: [{name: u, user: {token: mock}}]
                    contexts: [{name: m, context: {cluster: m, user: u, namespace: default}}]
                    current-context: m
                    """.formatted(client.getConfiguration().getMasterUrl()));
        }

        /** 2 as before (seconds), 2s as a duration, 1500ms rounded up to the whole seconds the wait counts in. */
        @ParameterizedTest
        @ValueSource(strings = {"2", "2s", "1500ms"})
        void givesUpWaitingForTheServiceAccount(String timeout) throws Exception {
            Cli.Result r = prepInProcess(kubeconfig(), "--cluster-suffix", "c1", "--dir", tmp.resolve("c1").toString(), "--timeout", timeout);
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            // stderr is not a terminal here: the wait is one plain line, not one per second
            assertThat(r.stderr()).contains("waiting for service account vault/default\n").doesNotContain("\r").doesNotContain("(1s of 2s)")
                    .contains("error: timed out after 2s waiting for service account vault/default")
                    .contains("-> is kube-controller-manager running?");
            assertThat(tmp.resolve("c1")).doesNotExist();
        }

        @Test
        void givesUpWaitingForTheToken() throws Exception {
            client.serviceAccounts().inNamespace("vault").resource(new ServiceAccountBuilder().withNewMetadata().withName("default")
                    .withNamespace("vault").endMetadata().build()).create();
            Cli.Result r = prepInProcess(kubeconfig(), "--cluster-suffix", "c1", "--dir", tmp.resolve("c1").toString(), "--timeout", "1");
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            assertThat(r.stdout()).contains("created Secret vault/default-token");
            assertThat(r.stderr()).contains("waiting for the token in Secret vault/default-token\n").doesNotContain("\r")
                    .contains("error: timed out after 1s waiting for the token in Secret vault/default-token")
                    .contains("service-account-token Secrets");
            assertThat(tmp.resolve("c1")).doesNotExist();
        }
    }

    @Test
    void worksWithAnyKubeconfigContext(Lab lab) throws Exception {
        // a kubeconfig whose current context is a cluster that is down; --context picks the lab's
        Path kc = tmp.resolve("two.kubeconfig");
        Files.copy(lab.kubeconfig(), kc);
        String labContext = tool(lab, tmp, "kubectl", "--kubeconfig", kc.toString(), "config", "current-context").strip();
        String user = kubectlJson(lab, "--kubeconfig", kc.toString(), "config", "view").at("/contexts/0/context/user").asString();
        tool(lab, tmp, "kubectl", "--kubeconfig", kc.toString(), "config", "set-cluster", "down", "--server=https://127.0.0.1:1");
        tool(lab, tmp, "kubectl", "--kubeconfig", kc.toString(), "config", "set-context", "down", "--cluster=down", "--user=" + user);
        tool(lab, tmp, "kubectl", "--kubeconfig", kc.toString(), "config", "use-context", "down");
        String ns = "kvp-" + lab.freshMount();

        Cli.Result down = Cli.asm(env(lab, "KUBECONFIG", kc.toString()), tmp, prep(ns, "--cluster-suffix", "c2"));
        assertThat(down.exit()).as(down.toString()).isEqualTo(1);
        assertThat(errorLines(down)).hasSize(2);
        assertThat(errorLines(down).get(0)).contains("cannot reach the API server").contains("https://127.0.0.1:1", "context down");
        assertThat(tmp.resolve("c2")).doesNotExist();

        Cli.Result chosen = Cli.asm(env(lab, "KUBECONFIG", kc.toString()), tmp,
                prep(ns, "--cluster-suffix", "c2", "--context", labContext));
        assertThat(chosen.exit()).as(chosen.toString()).isZero();
        assertThat(Files.readString(tmp.resolve("c2/c2-k8s_addr"))).isEqualTo(lab.k8sAddr() + "\n");

        Cli.Result unknown = Cli.asm(env(lab, "KUBECONFIG", kc.toString()), tmp, prep(ns, "--cluster-suffix", "c2", "--context", "nope"));
        assertThat(unknown.exit()).isEqualTo(2);
        assertThat(unknown.stderr()).contains("context 'nope'");
    }

    @Test
    void dryRunChangesNothing(Lab lab) {
        String ns = "kvp-" + lab.freshMount();
        Cli.Result r = Cli.asm(env(lab), tmp, prep(ns, "--cluster-suffix", "c1", "--dry-run"));
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stderr()).contains("would create Namespace " + ns, "would create ClusterRoleBinding tokenreview-" + ns,
                "would create Secret " + ns + "/default-token", "would write c1/c1-tokenreview_jwt");
        assertThat(Cli.run(List.of("kubectl", "get", "namespace", ns), lab.env(), tmp, null).exit()).isNotZero();
        assertThat(Cli.run(List.of("kubectl", "get", "clusterrolebinding", "tokenreview-" + ns), lab.env(), tmp, null).exit()).isNotZero();
        assertThat(tmp.resolve("c1")).doesNotExist();
    }

    @Test
    void whatAPatchCannotFixIsRefusedBeforeAnyChange(Lab lab) {
        String ns = "kvp-" + lab.freshMount();
        // a binding of that name to another role: its roleRef cannot change
        tool(lab, tmp, "kubectl", "create", "clusterrolebinding", "tokenreview-" + ns, "--clusterrole=view", "--serviceaccount=x:y");
        Cli.Result r = Cli.asm(env(lab), tmp, prep(ns, "--cluster-suffix", "c1"));
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(errorLines(r).get(0)).contains("ClusterRoleBinding tokenreview-" + ns + " exists and binds ClusterRole view");
        assertThat(errorLines(r).get(1)).contains("kubectl delete clusterrolebinding tokenreview-" + ns);
        assertThat(Cli.run(List.of("kubectl", "get", "namespace", ns), lab.env(), tmp, null).exit()).isNotZero();
        tool(lab, tmp, "kubectl", "delete", "clusterrolebinding", "tokenreview-" + ns);

        // a Secret of that name that is no service-account token
        tool(lab, tmp, "kubectl", "create", "namespace", ns);
        tool(lab, tmp, "kubectl", "-n", ns, "create", "secret", "generic", "default-token", "--from-literal=a=b");
        Cli.Result s = Cli.asm(env(lab), tmp, prep(ns, "--cluster-suffix", "c1"));
        assertThat(s.exit()).as(s.toString()).isEqualTo(1);
        assertThat(errorLines(s).get(0)).contains("Secret " + ns + "/default-token exists but is not a token of service account default");
        assertThat(Cli.run(List.of("kubectl", "get", "clusterrolebinding", "tokenreview-" + ns), lab.env(), tmp, null).exit()).isNotZero();
        assertThat(tmp.resolve("c1")).doesNotExist();
    }

    @Test
    void badInputAndMissingRightsGetOneClearLine(Lab lab) throws Exception {
        String ns = "kvp-" + lab.freshMount();
        for (String suffix : List.of("../c1", "C1", "c1/x", "-c1", "")) {
            Cli.Result r = Cli.asm(env(lab), tmp, prep(ns, "--cluster-suffix", suffix));
            assertThat(r.exit()).as(suffix + ": " + r).isEqualTo(2);
            assertThat(errorLines(r)).hasSize(2);
        }
        Cli.Result noSuffix = Cli.asm(env(lab), tmp, prep(ns));
        assertThat(noSuffix.exit()).isEqualTo(2);
        assertThat(noSuffix.stderr()).contains("no cluster suffix given");
        Files.writeString(tmp.resolve("c3"), "a file where the directory goes");
        Cli.Result notDir = Cli.asm(env(lab), tmp, prep(ns, "--cluster-suffix", "c3"));
        assertThat(notDir.exit()).isEqualTo(2);
        assertThat(notDir.stderr()).contains("c3 exists and is not a directory");

        Cli.Result nobody = Cli.asm(env(lab, "KUBECONFIG", lab.nobodyKubeconfig().toString()), tmp, prep(ns, "--cluster-suffix", "c1"));
        assertThat(nobody.exit()).as(nobody.toString()).isEqualTo(1);
        assertThat(errorLines(nobody)).hasSize(2);
        assertThat(errorLines(nobody).get(0)).contains("not allowed to").contains("forbidden");
        assertThat(tmp.resolve("c1")).doesNotExist();
        assertThat(Cli.run(List.of("kubectl", "get", "namespace", ns), lab.env(), tmp, null).exit()).isNotZero();

        Cli.Result noConfig = Cli.asm(env(lab, "KUBECONFIG", tmp.resolve("none").toString()), tmp, prep(ns, "--cluster-suffix", "c1"));
        assertThat(noConfig.exit()).isEqualTo(2);
        assertThat(noConfig.stderr()).contains("kubeconfig").contains("does not exist");
    }
}
