package asmhsm;

import static asmhsm.MeshTestKit.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBindingBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * status against a lab of its own (the guide's names are cluster-wide: namespaces vault and
 * istio-system, one ClusterRoleBinding): the world is built step by step with the admin
 * client, OpenBao's HTTP API and pkcs11-tool/import-ca, never with the steps status judges,
 * and each line must follow.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class StatusTest {
    static final JsonMapper JSON = JsonMapper.builder().build();
    static final String SUFFIX = "s1", REV = "asm-198-6", KEK = "status-kek-1";
    static Path dir, labDir;
    static Lab lab;
    static KubernetesClient k;
    static Map<String, String> token;
    static Issued root, ca;

    @BeforeAll
    static void ownLab() throws Exception {
        dir = Files.createTempDirectory("asm-status");
        labDir = dir.resolve("lab");
        lab = new Lab(Cli.repo(), Lab.parseEnv(Lab.run(List.of(Cli.repo().resolve("tests/lab/up").toString()),
                Map.of("ASM_LAB_DIR", labDir.toString()))));
        k = lab.admin();
        token = lab.freshToken();
        root = root("CN=Status Root,O=Example");
        ca = ca(root, "O=cluster.local");
    }

    @AfterAll
    static void down() {
        if (lab != null) lab.close();
        if (labDir != null) Lab.run(List.of(Cli.repo().resolve("tests/lab/down").toString(), labDir.toString()), Map.of());
    }

    static Map<String, String> env() {
        Map<String, String> env = new HashMap<>(token);
        env.put("KUBECONFIG", lab.kubeconfig().toString());
        env.put("VAULT_ADDR", lab.vaultAddr());
        env.put("VAULT_CACERT", lab.vaultCaCert().toString());
        env.put("VAULT_TOKEN", lab.vaultToken());
        env.put("CLUSTER_SUFFIX", SUFFIX);
        env.put("KEK_ID", KEK);
        return env;
    }

    /** name -> {state, detail, fix} of `status --json`. */
    static Map<String, JsonNode> lines(Cli.Result r) {
        Map<String, JsonNode> m = new LinkedHashMap<>();
        for (JsonNode c : JSON.readTree(r.stdout()).get("checks")) m.put(c.get("name").asString(), c);
        return m;
    }

    static Cli.Result status(Map<String, String> env) {
        return Cli.asm(env, "status", "--json");
    }

    static String state(Map<String, JsonNode> lines, String name) {
        assertThat(lines).as("line %s", name).containsKey(name);
        return lines.get(name).get("state").asString();
    }

    // ---------------------------------------------------------------- Vault through its HTTP API

    static int vault(String method, String path, Map<String, ?> body) throws Exception {
        HttpClient http = HttpClient.newBuilder().sslContext(Lab.trusting(lab.vaultCaCert())).build();
        HttpRequest req = HttpRequest.newBuilder(URI.create(lab.vaultAddr() + "/v1/" + path)).header("X-Vault-Token", lab.vaultToken())
                .method(method, HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body))).build();
        HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as("%s %s: %s", method, path, r.body()).isLessThan(300);
        return r.statusCode();
    }

    static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    // ---------------------------------------------------------------- the tests, in the guide's order

    @Test
    @Order(1)
    void anEmptyWorldIsMissingEverythingAndEachLineNamesItsStep() {
        Cli.Result r = status(env());
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        Map<String, JsonNode> l = lines(r);
        assertThat(l.keySet()).containsExactly("hsm: KEK", "hsm: root CA", "expiry: root CA", "vault: mount asm-s1", "vault: secret asm-s1/hsm",
                "vault: policy asm-s1-hsm-policy", "vault: auth asm-s1/hsm", "vault: auth config", "vault: role istiod", "vault: HSM PIN",
                "namespace vault", "binding role-tokenreview-binding", "secret vault/default-token", "namespace istio-system",
                "configmap vault-tls-cert", "service istiod", "istiod pods", "secret istio-ca-cert-csr", "secret istio-ca-cert",
                "expiry: Istio CA", "istiod: chain logged", "istiod: root loaded", "injection", "sidecars", "ingress address");
        assertThat(l.values()).allSatisfy(c -> assertThat(c.get("state").asString()).isEqualTo("missing"));
        assertThat(l.get("hsm: KEK").get("fix").asString()).isEqualTo("gen-kek --kek-id " + KEK);
        assertThat(l.get("hsm: root CA").get("fix").asString()).startsWith("import-ca");
        assertThat(l.get("vault: mount asm-s1").get("fix").asString()).isEqualTo("vault-setup");
        assertThat(l.get("namespace vault").get("fix").asString()).isEqualTo("k8s-vault-prep");
        assertThat(l.get("configmap vault-tls-cert").get("fix").asString()).isEqualTo("control-plane-prep");
        assertThat(l.get("service istiod").get("fix").asString()).isEqualTo("istiod-service");
        assertThat(l.get("istiod pods").get("fix").asString()).isEqualTo("install-asm");
        assertThat(l.get("injection").get("fix").asString()).startsWith("enable-injection");
        assertThat(l.get("ingress address").get("fix").asString()).startsWith("install-asm");
        assertThat(l.get("vault: HSM PIN").get("fix").asString()).isEqualTo("vault-setup");
        assertThat(l.get("istiod: root loaded").get("fix").asString()).isEqualTo("install-asm");
        assertThat(JSON.readTree(r.stdout()).get("error").asString()).startsWith("25 of 25 not done");
        // the human checklist says the same
        Cli.Result human = Cli.asm(env(), "status");
        assertThat(human.stdout()).containsPattern("missing\\s+hsm: KEK\\s+no KEK status-kek-1 on token 't").contains("-> gen-kek --kek-id status-kek-1");
    }

    @Test
    @Order(2)
    void aWorldBuiltAsTheGuideSaysIsAllDone() throws Exception {
        // HSM: the KEK and the root (pkcs11-tool and import-ca)
        assertThat(Cli.asm(token, "gen-kek", "--kek-id", KEK).exit()).isZero();
        assertThat(Cli.asm(token, "import-ca", "-f", write(dir.resolve("root.pem"), root.pem()).toString()).exit()).isZero();

        // Kubernetes for Vault
        k.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("vault").endMetadata().build()).create();
        k.serviceAccounts().inNamespace("vault").withName("default").waitUntilCondition(sa -> sa != null, 60, TimeUnit.SECONDS);
        k.rbac().clusterRoleBindings().resource(new ClusterRoleBindingBuilder().withNewMetadata().withName("role-tokenreview-binding").endMetadata()
                .withNewRoleRef().withApiGroup("rbac.authorization.k8s.io").withKind("ClusterRole").withName("system:auth-delegator").endRoleRef()
                .addNewSubject().withKind("ServiceAccount").withName("default").withNamespace("vault").endSubject().build()).create();
        k.secrets().inNamespace("vault").resource(new SecretBuilder().withNewMetadata().withName("default-token")
                .addToAnnotations("kubernetes.io/service-account.name", "default").endMetadata()
                .withType("kubernetes.io/service-account-token").build()).create();
        String jwt = new String(Base64.getDecoder().decode(k.secrets().inNamespace("vault").withName("default-token").waitUntilCondition(
                s -> s != null && s.getData() != null && s.getData().containsKey("token"), 60, TimeUnit.SECONDS).getData().get("token")), StandardCharsets.UTF_8);

        // Vault, as the guide's vault commands do
        String mount = "asm-" + SUFFIX, path = mount + "/hsm", policy = mount + "-hsm-policy";
        vault("POST", "sys/mounts/" + mount, Map.of("type", "kv", "config", Map.of("max_lease_ttl", "87600h")));
        vault("POST", path, Map.of("clientcert", "CERT", "clientkey", "KEY", "servercert", "SERVER", "PIN", pin()));
        vault("PUT", "sys/policy/" + policy, Map.of("policy", "path \"" + path + "\" { capabilities = [\"read\"] }"));
        vault("POST", "sys/auth/" + path, Map.of("type", "kubernetes"));
        vault("POST", "auth/" + path + "/config", Map.of("kubernetes_host", lab.k8sAddr(), "kubernetes_ca_cert",
                Files.readString(lab.k8sCaCert()), "token_reviewer_jwt", jwt));
        vault("POST", "auth/" + path + "/role/istiod", Map.of("bound_service_account_names", "istiod-service-account",
                "bound_service_account_namespaces", "istio-system", "policies", policy, "ttl", "768h"));

        // the control plane
        k.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("istio-system").endMetadata().build()).create();
        k.configMaps().inNamespace("istio-system").resource(new ConfigMapBuilder().withNewMetadata().withName("vault-tls-cert").endMetadata()
                .addToData("cert", Files.readString(lab.vaultCaCert())).build()).create();
        k.services().inNamespace("istio-system").resource(KubeLayout.GUIDE.istiodService(REV)).create();
        k.secrets().inNamespace("istio-system").resource(new SecretBuilder().withNewMetadata().withName("istio-ca-cert-csr").endMetadata()
                .withType("istio.io/intermediate-ca").addToData(Map.of("kek-id", b64(KEK), "encrypted-dek", b64("x.y"),
                        "csr-id", b64("cluster.local"), "encrypted-csr", b64("x.y"))).build()).create();
        k.secrets().inNamespace("istio-system").resource(new SecretBuilder().withNewMetadata().withName("istio-ca-cert").endMetadata()
                .addToData("cert-chain.pem", b64(pems(ca, root))).build()).create();
        // istiod with install-asm's root hook, started after the chain was uploaded (no kubelet: neither its log nor its plugin
        // can be reached, so status goes by the pod spec, the ConfigMap and the start times)
        k.configMaps().inNamespace("istio-system").resource(PluginRootHook.rootConfigMap(root.pem())).create();
        Thread.sleep(1100);   // API times are whole seconds: the pods start strictly after the Secret
        for (String name : List.of("istiod-asm-198-6-a", "istiod-asm-198-6-b")) runningPod(startedNow(StatusMeshTest.withRootHook(istiodPod(name, REV, 3), Hsm.DEFAULT_CA_ID)));
        k.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("bookinfo").addToLabels("istio.io/rev", REV).endMetadata().build()).create();
        k.pods().inNamespace("bookinfo").resource(pod("bookinfo", "details-v1-1", Map.of("app", "details"), 2, "details", "istio-proxy")).create();
        k.services().inNamespace("istio-system").resource(new ServiceBuilder().withNewMetadata().withName("istio-ingressgateway").endMetadata()
                .withNewSpec().withType("LoadBalancer").withLoadBalancerIP("203.0.113.1").addToSelector("app", "istio-ingressgateway")
                .addNewPort().withName("http2").withPort(80).endPort().endSpec().build()).create();

        Cli.Result r = status(env());
        Map<String, JsonNode> l = lines(r);
        assertThat(l.values()).allSatisfy(c -> assertThat(c.get("state").asString()).as(c.toString()).isEqualTo("done"));
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(l.get("hsm: root CA").get("detail").asString()).contains("'CN=Status Root,O=Example'");
        assertThat(l.get("secret istio-ca-cert").get("detail").asString()).contains("ending at the HSM root");
        assertThat(l.get("istiod pods").get("detail").asString()).contains("istiod-asm-198-6-a 3/3");
        assertThat(l.get("vault: secret asm-s1/hsm").get("detail").asString()).doesNotContain(pin(), "KEY");
        // the HSM lines logged in with P11_PIN_FILE's PIN, and the session stays open: Vault's, the same, is not tried again
        assertThat(l.get("vault: HSM PIN").get("detail").asString()).isEqualTo("the PIN in Vault's asm-s1/hsm opens token '" + token.get("P11_TOKEN")
                + "' (the same as the PIN in " + token.get("P11_PIN_FILE") + ", which this run logged in with)");
        assertThat(l.get("istiod: chain logged").get("detail").asString()).contains("istiod-asm-198-6-a: discovery ready, started ",
                "(inferred; its log was not read: ", "the API server serves its discovery log empty");
        assertThat(l.get("istiod: root loaded").get("detail").asString()).contains("istiod-asm-198-6-a: loaded by the postStart hook, not asked (");
        assertThat(l.get("sidecars").get("detail").asString()).isEqualTo("1 pod(s) in bookinfo, each with istio-proxy");
        assertThat(l.get("expiry: Istio CA").get("cluster").asString()).isEqualTo(SUFFIX);
        Cli.Result human = Cli.asm(env(), "status");
        assertThat(human.exit()).isZero();
        assertThat(human.stdout()).contains("all 25 done").doesNotContain(pin());
        assertThat(human.stderr()).doesNotContain(pin());

        // --context names the cluster; a context the kubeconfig lacks is bad input
        assertThat(Cli.asm(env(), "status", "--context", contextName()).exit()).isZero();
        assertThat(Cli.asm(env(), "status", "--context", "no-such-context").exit()).isEqualTo(2);

        // the plugin's own import-ca, run twice more on this token: identical copies are still the root, counted
        SoftHsmToken.writeCertificate(token, root.cert(), Hsm.DEFAULT_CA_ID);
        SoftHsmToken.writeCertificate(token, root.cert(), Hsm.DEFAULT_CA_ID);
        Cli.Result copies = status(env());
        assertThat(copies.exit()).as(copies.toString()).isZero();
        assertThat(lines(copies).get("hsm: root CA").get("detail").asString()).contains("'CN=Status Root,O=Example'").endsWith("(3 copies)");
        assertThat(state(lines(copies), "secret istio-ca-cert")).isEqualTo("done");
    }

    static String pin() {
        try {
            return Files.readString(Path.of(token.get("P11_PIN_FILE"))).strip();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static String contextName() {
        return io.fabric8.kubernetes.client.Config.fromKubeconfig(lab.kubeconfig().toFile()).getCurrentContext().getName();
    }

    /** The pod's containers as started now (MeshTestKit's pods started long ago). */
    static Pod startedNow(Pod p) {
        String now = java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.SECONDS).toString();
        p.getStatus().getContainerStatuses().forEach(cs -> cs.getState().getRunning().setStartedAt(now));
        return p;
    }

    /** A pod as the kubelet would report it: created, then its status set through the status subresource. */
    static void runningPod(Pod p) {
        Pod created = k.pods().inNamespace(p.getMetadata().getNamespace()).resource(new io.fabric8.kubernetes.api.model.PodBuilder(p)
                .withStatus(null).build()).create();
        created.setStatus(p.getStatus());
        k.pods().inNamespace(p.getMetadata().getNamespace()).resource(created).updateStatus();
    }

    @Test
    @Order(3)
    void whatIsThereButWrongIsWrongAndNamesItsFix() throws Exception {
        // istiod restarted and waits for its CA (2/3), the chain was signed by another root, a namespace has both labels,
        // the role lost its TTL, another KEK_ID is asked for, the gateway lost its address
        k.pods().inNamespace("istio-system").withName("istiod-asm-198-6-b").delete();
        k.pods().inNamespace("istio-system").withName("istiod-asm-198-6-b").waitUntilCondition(p -> p == null, 30, TimeUnit.SECONDS);
        runningPod(istiodPod("istiod-asm-198-6-b", REV, 2));
        Issued other = root("CN=Other Root");
        k.secrets().inNamespace("istio-system").withName("istio-ca-cert").edit(s -> {
            s.getData().put("cert-chain.pem", b64(pems(ca(other, "O=cluster.local"), other)));
            return s;
        });
        k.namespaces().withName("bookinfo").edit(n -> { n.getMetadata().getLabels().put("istio-injection", "enabled"); return n; });
        vault("POST", "auth/asm-" + SUFFIX + "/hsm/role/istiod", Map.of("bound_service_account_names", "istiod-service-account",
                "bound_service_account_namespaces", "istio-system", "policies", "asm-" + SUFFIX + "-hsm-policy", "ttl", "1h"));
        k.services().inNamespace("istio-system").withName("istio-ingressgateway").edit(s -> { s.getSpec().setLoadBalancerIP(null); return s; });

        Map<String, String> env = env();
        env.put("KEK_ID", "another-kek");
        Cli.Result r = status(env);
        assertThat(r.exit()).isEqualTo(1);
        Map<String, JsonNode> l = lines(r);
        assertThat(state(l, "hsm: KEK")).isEqualTo("missing");
        assertThat(state(l, "istiod pods")).isEqualTo("wrong");
        assertThat(l.get("istiod pods").get("detail").asString()).contains("istiod-asm-198-6-b 2/3", "waiting for the CA");
        assertThat(l.get("istiod pods").get("fix").asString()).contains("decrypt-csr, sign-csr, then upload-chain");
        assertThat(state(l, "secret istio-ca-cert-csr")).isEqualTo("wrong");
        assertThat(l.get("secret istio-ca-cert-csr").get("detail").asString()).isEqualTo("CSR encrypted with KEK " + KEK + ", not KEK_ID another-kek");
        assertThat(state(l, "secret istio-ca-cert")).isEqualTo("wrong");
        assertThat(l.get("secret istio-ca-cert").get("detail").asString()).contains("issued by 'CN=Other Root', not by the root 'CN=Status Root,O=Example'");
        assertThat(state(l, "injection")).isEqualTo("wrong");
        assertThat(l.get("injection").get("detail").asString()).isEqualTo("bookinfo also has istio-injection");
        assertThat(state(l, "vault: role istiod")).isEqualTo("wrong");
        assertThat(l.get("vault: role istiod").get("detail").asString()).contains("ttl 3600s, not 768h");
        assertThat(state(l, "ingress address")).isEqualTo("missing");
        assertThat(l.get("ingress address").get("fix").asString()).isEqualTo("external-ip --mode integrated --ip ADDRESS");
        assertThat(state(l, "vault: mount asm-s1")).isEqualTo("done");
        assertThat(state(l, "service istiod")).isEqualTo("done");
        // the Secret changed after istiod-a started, and the new b runs no root hook: neither can be told without a kubelet
        assertThat(state(l, "istiod: chain logged")).isEqualTo("unknown");
        assertThat(l.get("istiod: chain logged").get("detail").asString()).contains("istiod-asm-198-6-a: its log cannot be read: ");
        assertThat(state(l, "istiod: root loaded")).isEqualTo("unknown");
        assertThat(l.get("istiod: root loaded").get("detail").asString()).contains("istiod-asm-198-6-b: its plugin cannot be asked (",
                "its hsm-plugin has no postStart hook");

        // a pod that started before injection was on
        k.pods().inNamespace("bookinfo").resource(pod("bookinfo", "ratings-v1-1", Map.of("app", "ratings"), 1, "ratings")).create();
        assertThat(lines(status(env())).get("sidecars").get("detail").asString()).isEqualTo("1 pod(s) without istio-proxy: bookinfo/ratings-v1-1");
        k.pods().inNamespace("bookinfo").withName("ratings-v1-1").delete();
    }

    /** The PIN in Vault, the one istiod's plugin will log in with: checked by logging in with it, never when it cannot be right. */
    @Test
    @Order(3)   // after the world of test 2, independent of the other order-3 test: it puts the PIN back
    void aPinInVaultThatDoesNotOpenTheSlotIsWrong() throws Exception {
        String path = "asm-" + SUFFIX + "/hsm";
        try {
            vault("POST", path, Map.of("clientcert", "CERT", "clientkey", "KEY", "servercert", "SERVER", "PIN", "0000"));
            JsonNode p = lines(status(env())).get("vault: HSM PIN");
            assertThat(p.get("state").asString()).isEqualTo("wrong");
            assertThat(p.get("detail").asString()).isEqualTo("the PIN in Vault's " + path + " differs from the PIN in " + token.get("P11_PIN_FILE")
                    + ", which opens token '" + token.get("P11_TOKEN") + "'; not tried, as each refused login counts toward the slot's lock-out");
            assertThat(p.get("fix").asString()).startsWith("vault-setup --pin-file");

            // the operator's PIN file is no help: the stored PIN is tried, and the token refuses it
            Path wrongPin = dir.resolve("wrong-pin");
            Files.writeString(wrongPin, "0000\n");
            Files.setPosixFilePermissions(wrongPin, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
            Map<String, String> env = env();
            env.put("P11_PIN_FILE", wrongPin.toString());
            Map<String, JsonNode> l = lines(status(env));
            assertThat(state(l, "hsm: KEK")).isEqualTo("unknown");
            assertThat(l.get("vault: HSM PIN").get("detail").asString()).isEqualTo("token '" + token.get("P11_TOKEN") + "' refused the PIN in Vault's "
                    + path + " (CKR_PIN_INCORRECT): the plugin cannot log in");
            assertThat(state(l, "vault: HSM PIN")).isEqualTo("wrong");

            // the right PIN with a newline after it: the 2020 plugin does not trim it
            vault("POST", path, Map.of("clientcert", "CERT", "clientkey", "KEY", "servercert", "SERVER", "PIN", pin() + "\n"));
            p = lines(status(env())).get("vault: HSM PIN");
            assertThat(p.get("state").asString()).isEqualTo("wrong");
            assertThat(p.get("detail").asString()).contains("has white space at its start or end (a newline?)").doesNotContain(pin());
        } finally {
            vault("POST", path, Map.of("clientcert", "CERT", "clientkey", "KEY", "servercert", "SERVER", "PIN", pin()));
        }
        assertThat(state(lines(status(env())), "vault: HSM PIN")).isEqualTo("done");
        // no PIN file to open the HSM with: no session of status is open, and Vault's PIN is tried in one of its own
        Map<String, String> noFile = env();
        noFile.put("P11_PIN_FILE", dir.resolve("no-such-pin").toString());
        Map<String, JsonNode> l = lines(status(noFile));
        assertThat(state(l, "hsm: KEK")).isEqualTo("unknown");
        assertThat(l.get("vault: HSM PIN").get("detail").asString()).isEqualTo("the PIN in Vault's " + path + " opens token '" + token.get("P11_TOKEN")
                + "' (logged in with it)");
    }

    @Test
    @Order(4)
    void whatCannotBeReadIsUnknownWithTheReason() throws Exception {
        Map<String, String> env = env();
        env.put("KUBECONFIG", lab.nobodyKubeconfig().toString());
        env.put("VAULT_TOKEN", "not-a-token-" + UUID.randomUUID());
        env.put("P11_TOKEN", "no-such-token");
        Cli.Result r = status(env);
        assertThat(r.exit()).isEqualTo(1);
        Map<String, JsonNode> l = lines(r);
        assertThat(l.values()).allSatisfy(c -> assertThat(c.get("state").asString()).as(c.toString()).isEqualTo("unknown"));
        assertThat(l.get("hsm: KEK").get("detail").asString()).contains("no token labelled 'no-such-token'");
        assertThat(l.get("vault: mount asm-s1").get("detail").asString()).contains("refused to list the secrets engines (403");
        assertThat(l.get("namespace vault").get("detail").asString()).contains("not allowed to read namespace vault");

        // one right more (read namespaces): those lines are read, the others stay unknown one by one
        String user = Pki.certificate(Base64.getDecoder().decode(io.fabric8.kubernetes.client.Config.fromKubeconfig(
                lab.nobodyKubeconfig().toFile()).getClientCertData()), "nobody").getSubjectX500Principal().getName().replaceFirst("^CN=([^,]+).*", "$1");
        k.rbac().clusterRoles().resource(new io.fabric8.kubernetes.api.model.rbac.ClusterRoleBuilder().withNewMetadata().withName("read-namespaces").endMetadata()
                .addNewRule().withApiGroups("").withResources("namespaces").withVerbs("get", "list").endRule().build()).create();
        k.rbac().clusterRoleBindings().resource(new ClusterRoleBindingBuilder().withNewMetadata().withName("nobody-reads-namespaces").endMetadata()
                .withNewRoleRef().withApiGroup("rbac.authorization.k8s.io").withKind("ClusterRole").withName("read-namespaces").endRoleRef()
                .addNewSubject().withKind("User").withApiGroup("rbac.authorization.k8s.io").withName(user).endSubject().build()).create();
        Map<String, JsonNode> some = lines(status(env));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);   // RBAC takes a moment to apply
        while (!state(some, "namespace vault").equals("done") && System.nanoTime() < deadline) {
            Thread.sleep(500);
            some = lines(status(env));
        }
        assertThat(state(some, "namespace vault")).isEqualTo("done");
        assertThat(state(some, "namespace istio-system")).isEqualTo("done");
        assertThat(state(some, "injection")).isEqualTo("wrong");          // bookinfo still has both labels
        assertThat(state(some, "binding role-tokenreview-binding")).isEqualTo("unknown");
        assertThat(state(some, "secret istio-ca-cert")).isEqualTo("unknown");
        assertThat(some.get("secret istio-ca-cert").get("detail").asString()).contains("not allowed to read Secret istio-ca-cert");

        assertThat(Cli.asm(env(), "status", "--cluster-suffix", "Bad Suffix").exit()).isEqualTo(2);
        Map<String, String> noSuffix = env();
        noSuffix.remove("CLUSTER_SUFFIX");
        assertThat(Cli.asm(noSuffix, "status").exit()).isEqualTo(2);
    }

    @Test
    @Order(5)
    void aChainIstiodCannotSplitAndRootCopiesThatDifferAreWrong() throws Exception {
        // the right chain, in forms istiod refuses (error spliting the cert chain) and one it accepts
        for (var form : ChainFormsTest.refused(ca.pem(), root.pem()).entrySet()) {
            k.secrets().inNamespace("istio-system").withName("istio-ca-cert").edit(s -> {
                s.getData().put("cert-chain.pem", b64(form.getValue()[0]));
                return s;
            });
            Map<String, JsonNode> l = lines(status(env()));
            assertThat(state(l, "secret istio-ca-cert")).as(form.getKey()).isEqualTo("wrong");
            assertThat(l.get("secret istio-ca-cert").get("detail").asString()).as(form.getKey())
                    .startsWith("istiod refuses its cert-chain.pem (error spliting the cert chain): ").contains(form.getValue()[1]);
            assertThat(l.get("secret istio-ca-cert").get("fix").asString()).startsWith("upload-chain -f cert-chain.pem").endsWith(Istio.RESTART_TO_RELOAD);
        }
        k.secrets().inNamespace("istio-system").withName("istio-ca-cert").edit(s -> {
            s.getData().put("cert-chain.pem", b64(pems(ca, root).replace("\n", "\r\n")));
            return s;
        });
        assertThat(state(lines(status(env())), "secret istio-ca-cert")).isEqualTo("done");

        // a CSR Secret altered by hand: istiod writes no new CSR while it exists, so the fix removes it before the restart
        var csrSecret = k.secrets().inNamespace("istio-system").withName("istio-ca-cert-csr");
        String kekId = csrSecret.get().getData().get("kek-id");
        csrSecret.edit(s -> { s.getData().remove("kek-id"); return s; });
        try {
            JsonNode csr = lines(status(env())).get("secret istio-ca-cert-csr");
            assertThat(csr.get("state").asString()).isEqualTo("wrong");
            // the real istiod keeps its key and writes a CSR for it at a start without chain and CSR: the key stays
            assertThat(csr.get("fix").asString()).isEqualTo("istiod writes no new CSR while the Secret exists: " + Istio.NEW_CSR_FOR_ITS_KEY)
                    .doesNotContain(Istio.ENCRYPTED_KEY_SECRET);
        } finally {
            csrSecret.edit(s -> { s.getData().put("kek-id", kekId); return s; });
        }

        // a certificate that differs under the CA ID: wrong, with the fix; the chain is then not compared
        SoftHsmToken.writeCertificate(token, root("CN=Stray Root").cert(), Hsm.DEFAULT_CA_ID);
        Map<String, JsonNode> l = lines(status(env()));
        assertThat(state(l, "hsm: root CA")).isEqualTo("wrong");
        assertThat(l.get("hsm: root CA").get("detail").asString())
                .isEqualTo("4 certificates that differ (2 different values) share CA ID " + Hsm.DEFAULT_CA_ID + " on token '" + token.get("P11_TOKEN") + "'");
        assertThat(l.get("hsm: root CA").get("fix").asString()).contains("import-ca -f ROOT_PEM --replace");
        assertThat(state(l, "hsm: KEK")).isEqualTo("done");
        assertThat(l.get("secret istio-ca-cert").get("detail").asString()).contains("HSM root not read");
        assertThat(Cli.asm(token, "import-ca", "-f", dir.resolve("root.pem").toString(), "--replace").exit()).isZero();
        assertThat(lines(status(env())).get("hsm: root CA").get("detail").asString()).doesNotContain("copies");
    }

    /** --all-suffixes: a block per <suffix>/ folder, each against the context whose server k8s-vault-prep recorded there. */
    @Test
    @Order(7)
    void allSuffixesCheckEachPreparedClusterInItsOwnBlock() throws Exception {
        Path folder = dir.resolve("suffixes");
        write(folder.resolve(SUFFIX + "/" + SUFFIX + "-k8s_addr"), lab.k8sAddr() + "\n");
        write(folder.resolve("z9/z9-k8s_addr"), "https://127.0.0.1:1\n");
        // t7 was prepared on another cluster now behind the same address (another CA): its lines would describe this one
        write(folder.resolve("t7/t7-k8s_addr"), lab.k8sAddr() + "\n");
        write(folder.resolve("t7/t7-cluster.json"), "{\"context\": \"" + contextName() + "\", \"server\": \"" + lab.k8sAddr() + "\", \"caSha256\": \""
                + ClusterBindingTest.OTHER_CA + "\", \"caFrom\": \"kubeconfig\"}\n");
        Files.createDirectories(folder.resolve("notes"));
        Cli.Result r = Cli.asm(env(), "status", "--all-suffixes", "--dir", folder.toString(), "--json");
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        JsonNode clusters = JSON.readTree(r.stdout()).get("clusters");
        assertThat(clusters.size()).isEqualTo(3);
        assertThat(clusters.get(0).get("clusterSuffix").asString()).isEqualTo(SUFFIX);
        assertThat(clusters.get(0).get("context").asString()).isEqualTo(contextName());
        Map<String, String> s1 = new LinkedHashMap<>();
        for (JsonNode c : clusters.get(0).get("checks")) s1.put(c.get("name").asString(), c.get("state").asString());
        assertThat(s1).containsEntry("namespace vault", "done").containsEntry("vault: mount asm-s1", "done").hasSize(25);
        JsonNode t7 = clusters.get(1);
        assertThat(t7.get("clusterSuffix").asString()).isEqualTo("t7");
        for (JsonNode c : t7.get("checks"))
            if (StatusReport.CLUSTER_LINES.contains(c.get("name").asString()))
                assertThat(c.get("state").asString() + ": " + c.get("detail").asString()).as(c.toString())
                        .startsWith("unknown: cluster suffix t7 belongs to another cluster");
        JsonNode z9 = clusters.get(2);
        assertThat(z9.get("clusterSuffix").asString()).isEqualTo("z9");
        assertThat(z9.get("contextProblem").asString()).startsWith("no context of ").contains("points at https://127.0.0.1:1");
        for (JsonNode c : z9.get("checks"))
            if (StatusReport.CLUSTER_LINES.contains(c.get("name").asString())) assertThat(c.get("state").asString()).as(c.toString()).isEqualTo("unknown");
        assertThat(JSON.readTree(r.stdout()).get("error").asString()).contains(SUFFIX + ": ", "; t7: ", "; z9: ");

        Cli.Result human = Cli.asm(env(), "status", "--all-suffixes", "--dir", folder.toString());
        assertThat(human.stdout()).contains("== cluster s1 (context " + contextName() + ")", "== cluster z9 (context unknown: no context of ");
        assertThat(Cli.asm(env(), "status", "--all-suffixes", "--dir", folder.toString(), "--context", contextName()).exit()).isEqualTo(2);
        assertThat(Cli.asm(env(), "status", "--all-suffixes", "--dir", folder.resolve("notes").toString()).exit()).isEqualTo(2);
    }

    /**
     * A vault-setup cut short (Ctrl-C, a lost connection) leaves some of its parts: each absent part is
     * then wrong, with vault-setup as the fix, not missing as in a world where nothing was begun.
     */
    @Test
    @Order(6)
    void aHalfSetUpVaultPathIsWrongNotMissing() throws Exception {
        Map<String, String> env = env();
        env.put("CLUSTER_SUFFIX", "h1");
        String mount = "asm-h1", path = mount + "/hsm";
        vault("POST", "sys/mounts/" + mount, Map.of("type", "kv", "config", Map.of("max_lease_ttl", "87600h")));
        Map<String, JsonNode> l = lines(status(env));
        assertThat(state(l, "vault: mount " + mount)).isEqualTo("done");
        for (String name : List.of("vault: secret " + path, "vault: policy asm-h1-hsm-policy", "vault: auth " + path, "vault: auth config", "vault: role istiod")) {
            assertThat(state(l, name)).as(name + ": " + l.get(name)).isEqualTo("wrong");
            assertThat(l.get(name).get("fix").asString()).isEqualTo("vault-setup");
            assertThat(l.get(name).get("detail").asString()).endsWith(", though mount " + mount + " is there: vault-setup did not finish");
        }
        assertThat(l.get("vault: policy asm-h1-hsm-policy").get("detail").asString()).startsWith("no policy asm-h1-hsm-policy, though");

        vault("POST", path, Map.of("clientcert", "CERT", "clientkey", "KEY", "servercert", "SERVER", "PIN", "1234"));
        vault("POST", "sys/auth/" + path, Map.of("type", "kubernetes"));
        l = lines(status(env));
        assertThat(state(l, "vault: secret " + path)).isEqualTo("done");
        assertThat(state(l, "vault: auth " + path)).isEqualTo("done");
        for (String name : List.of("vault: policy asm-h1-hsm-policy", "vault: auth config", "vault: role istiod")) {
            assertThat(state(l, name)).as(name + ": " + l.get(name)).isEqualTo("wrong");
            assertThat(l.get(name).get("detail").asString())
                    .endsWith(", though mount " + mount + ", secret " + path + ", auth " + path + " are there: vault-setup did not finish");
        }
        Cli.Result human = Cli.asm(env, "status");
        assertThat(human.stdout()).containsPattern("wrong\\s+vault: role istiod\\s+no role istiod at auth/" + path + ", though");
    }

    /** In one process (asm run, asm session) status reads the cluster through the client the steps' context gives, not its own. */
    @Test
    @Order(8)
    void inOneProcessStatusReadsTheClusterTheContextGives() {
        java.io.ByteArrayOutputStream stdout = new java.io.ByteArrayOutputStream();
        java.io.PrintStream was = System.out;
        int exit;
        try (Startup.Clients clients = Startup.Clients.of(Kube.of(k))) {
            System.setOut(new java.io.PrintStream(stdout, true, StandardCharsets.UTF_8));
            exit = Step.commandLine(new Status().with(clients)).execute("--cluster-suffix", SUFFIX, "--kubeconfig", "/nonexistent/kubeconfig", "--json");
        } finally {
            System.setOut(was);
        }
        Cli.Result r = new Cli.Result(exit, stdout.toString(StandardCharsets.UTF_8), "");
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);     // no Vault token in this JVM: the Vault lines are unknown
        Map<String, JsonNode> l = lines(r);
        assertThat(state(l, "namespace vault")).as(l.toString()).isEqualTo("done");
        assertThat(state(l, "namespace istio-system")).isEqualTo("done");
        assertThat(k.getHttpClient().isClosed()).as("the context's client outlives the step").isFalse();
    }
}
