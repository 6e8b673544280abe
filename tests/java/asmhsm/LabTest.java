package asmhsm;

import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBindingBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLHandshakeException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The lab itself: each server is real, reachable as documented, and behaves as the guide needs. */
@ExtendWith(LabExtension.class)
class LabTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void apiServerAnswersVersionOverTls(Lab lab) throws Exception {
        assertThat(lab.k8sAddr()).startsWith("https://127.0.0.1:");
        // HTTP/1.1: for an anonymous HTTP/2 client the API server sends GOAWAY right after
        // the first request, which Java 17's HttpClient takes as a failure of that request.
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .sslContext(Lab.trusting(lab.k8sCaCert())).build();
        HttpResponse<String> response = http.send(
                HttpRequest.newBuilder(URI.create(lab.k8sAddr() + "/version")).build(),
                HttpResponse.BodyHandlers.ofString());

        assertThat(response.statusCode()).isEqualTo(200);
        JsonNode version = JSON.readTree(response.body());
        assertThat(version.path("major").asString()).isEqualTo("1");
        assertThat(version.path("gitVersion").asString()).matches("v1\\.\\d+\\.\\d+");
        assertThat(lab.admin().getKubernetesVersion().getGitVersion())
                .isEqualTo(version.path("gitVersion").asString());
    }

    @Test
    void rbacRefusesAUserWithoutRights(Lab lab) {
        String ns = lab.freshNamespace();
        try (KubernetesClient nobody = lab.client(lab.nobodyKubeconfig())) {
            // authenticated (403, not 401) but authorized for nothing
            assertThatThrownBy(() -> nobody.secrets().inNamespace(ns).list())
                    .isInstanceOfSatisfying(KubernetesClientException.class, e -> {
                        assertThat(e.getCode()).isEqualTo(403);
                        assertThat(e.getMessage()).contains("asm-lab-nobody");
                    });
            assertThatThrownBy(() -> nobody.rbac().clusterRoleBindings().resource(
                    authDelegator("nobody-" + ns, ns, "default")).create())
                    .isInstanceOfSatisfying(KubernetesClientException.class, e -> assertThat(e.getCode()).isEqualTo(403));
        }
        assertThat(lab.admin().secrets().inNamespace(ns).list().getItems()).isNotNull();
    }

    @Test
    void serviceAccountTokenSecretGetsItsTokenAndCa(Lab lab) throws Exception {
        String ns = lab.freshNamespace();
        Secret secret = tokenSecret(lab, ns, "default-token", "default");

        String token = decode(secret, "token");
        assertThat(token.split("\\.")).hasSize(3);
        JsonNode claims = JSON.readTree(Base64.getUrlDecoder().decode(token.split("\\.")[1]));
        assertThat(claims.path("sub").asString()).isEqualTo("system:serviceaccount:" + ns + ":default");
        assertThat(decode(secret, "ca.crt")).isEqualTo(Files.readString(lab.k8sCaCert()));
        assertThat(decode(secret, "namespace")).isEqualTo(ns);
    }

    @Test
    void openBaoIsUnsealedOverTlsWithTheLabsCa(Lab lab) throws Exception {
        assertThat(lab.vaultAddr()).startsWith("https://127.0.0.1:");
        assertThat(lab.env()).doesNotContainKey("VAULT_SKIP_VERIFY");
        HttpRequest health = HttpRequest.newBuilder(URI.create(lab.vaultAddr() + "/v1/sys/health")).build();

        HttpResponse<String> response = HttpClient.newBuilder().sslContext(Lab.trusting(lab.vaultCaCert())).build()
                .send(health, HttpResponse.BodyHandlers.ofString());
        assertThat(response.statusCode()).isEqualTo(200);
        JsonNode body = JSON.readTree(response.body());
        assertThat(body.path("initialized").asBoolean()).isTrue();
        assertThat(body.path("sealed").asBoolean(true)).isFalse();

        // The certificate really is checked: the JDK's own trust store does not know the lab CA.
        assertThatThrownBy(() -> HttpClient.newHttpClient().send(health, HttpResponse.BodyHandlers.ofString()))
                .isInstanceOf(SSLHandshakeException.class);
        // and the Vault client the toolkit uses works with the same CA file and token
        assertThat(lab.vault().seal().sealStatus().getSealed()).isFalse();
    }

    /**
     * The guide's Vault side, set up by hand: kubernetes auth whose reviewer is a
     * service account bound to system:auth-delegator; istiod's account logs in, and
     * Vault asks the API server (TokenReview) whether the token is genuine.
     */
    @Test
    void vaultKubernetesLoginGoesThroughARealTokenReview(Lab lab) throws Exception {
        String ns = lab.freshNamespace();
        String mount = lab.freshMount() + "/hsm";
        KubernetesClient k = lab.admin();

        String binding = "tokenreview-" + ns;
        k.rbac().clusterRoleBindings().resource(authDelegator(binding, ns, "default")).create();
        String reviewerJwt = decode(tokenSecret(lab, ns, "default-token", "default"), "token");
        k.serviceAccounts().inNamespace(ns).resource(new ServiceAccountBuilder()
                .withNewMetadata().withName("istiod-service-account").endMetadata().build()).create();
        String istiodJwt = k.serviceAccounts().inNamespace(ns).withName("istiod-service-account")
                .tokenRequest(new TokenRequestBuilder().withNewSpec().withExpirationSeconds(600L).endSpec().build())
                .getStatus().getToken();

        VaultApi vault = new VaultApi(lab);
        vault.call("POST", "sys/auth/" + mount, Map.of("type", "kubernetes")).expect(204);
        vault.call("POST", "auth/" + mount + "/config", Map.of(
                "kubernetes_host", lab.k8sAddr(),
                "kubernetes_ca_cert", Files.readString(lab.k8sCaCert()),
                "token_reviewer_jwt", reviewerJwt)).expect(204);
        vault.call("POST", "auth/" + mount + "/role/istiod", Map.of(
                "bound_service_account_names", List.of("istiod-service-account"),
                "bound_service_account_namespaces", List.of(ns),
                "policies", List.of("default"),
                "ttl", "1h")).expect(204);

        JsonNode auth = vault.call("POST", "auth/" + mount + "/login", Map.of("role", "istiod", "jwt", istiodJwt))
                .expect(200).json().path("auth");
        assertThat(auth.path("client_token").asString()).isNotBlank();
        assertThat(auth.path("metadata").path("service_account_name").asString()).isEqualTo("istiod-service-account");
        assertThat(auth.path("metadata").path("service_account_namespace").asString()).isEqualTo(ns);

        // The API server, not Vault, judges the token: a forged signature is refused ...
        String[] parts = istiodJwt.split("\\.");
        String forged = parts[0] + "." + parts[1] + "." + new StringBuilder(parts[2]).reverse();
        vault.call("POST", "auth/" + mount + "/login", Map.of("role", "istiod", "jwt", forged))
                .expect(403).expectBody("permission denied");
        // ... and so is the reviewer itself once RBAC no longer lets it create TokenReviews.
        k.rbac().clusterRoleBindings().withName(binding).delete();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        Reply refused;
        do {
            Thread.sleep(200);
            refused = vault.call("POST", "auth/" + mount + "/login", Map.of("role", "istiod", "jwt", istiodJwt));
        } while (refused.status == 200 && System.nanoTime() < deadline);
        refused.expect(403).expectBody("permission denied");
    }

    @Test
    void hsmTokensLogInWithThePinFromTheirFile(Lab lab) throws Exception {
        Map<String, String> fresh = lab.freshToken();
        assertThat(fresh).containsOnlyKeys("SOFTHSM2_CONF", "P11_LIB", "P11_TOKEN", "P11_PIN_FILE");
        assertThat(fresh.get("P11_TOKEN")).isNotEqualTo(lab.env("P11_TOKEN"));
        assertThat(Path.of(fresh.get("SOFTHSM2_CONF")).getParent())
                .isNotEqualTo(Path.of(lab.env("SOFTHSM2_CONF")).getParent());

        for (Map<String, String> token : List.of(lab.hsmEnv(), fresh)) {
            Path pin = Path.of(token.get("P11_PIN_FILE"));
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(pin))).isEqualTo("rw-------");
            assertThat(login(token, Files.readString(pin))).as("login to %s", token.get("P11_TOKEN")).isZero();
            assertThat(login(token, "not-the-pin")).isNotZero();
        }
    }

    // ------------------------------------------------------------------ helpers

    /** A ClusterRoleBinding of system:auth-delegator (may create TokenReviews) to a service account. */
    private static ClusterRoleBinding authDelegator(String name, String ns, String account) {
        return new ClusterRoleBindingBuilder()
                .withNewMetadata().withName(name).endMetadata()
                .withNewRoleRef().withApiGroup("rbac.authorization.k8s.io").withKind("ClusterRole")
                .withName("system:auth-delegator").endRoleRef()
                .addNewSubject().withKind("ServiceAccount").withName(account).withNamespace(ns).endSubject()
                .build();
    }

    /** Creates a kubernetes.io/service-account-token Secret, as the guide does, and waits for the controller to fill it. */
    private static Secret tokenSecret(Lab lab, String ns, String name, String account) {
        KubernetesClient k = lab.admin();
        k.secrets().inNamespace(ns).resource(new SecretBuilder()
                .withMetadata(new ObjectMetaBuilder().withName(name)
                        .addToAnnotations("kubernetes.io/service-account.name", account).build())
                .withType("kubernetes.io/service-account-token")
                .build()).create();
        return k.secrets().inNamespace(ns).withName(name).waitUntilCondition(
                s -> s != null && s.getData() != null && s.getData().containsKey("token") && s.getData().containsKey("ca.crt"),
                60, TimeUnit.SECONDS);
    }

    private static String decode(Secret secret, String key) {
        return new String(Base64.getDecoder().decode(secret.getData().get(key)), StandardCharsets.UTF_8);
    }

    /** pkcs11-tool login; the PIN travels in its environment, not on its command line. */
    private static int login(Map<String, String> token, String pin) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("pkcs11-tool", "--module", token.get("P11_LIB"),
                "--token-label", token.get("P11_TOKEN"), "--login", "--pin", "env:LAB_TEST_PIN", "--list-objects")
                .redirectErrorStream(true);
        pb.environment().put("SOFTHSM2_CONF", token.get("SOFTHSM2_CONF"));
        pb.environment().put("LAB_TEST_PIN", pin);
        Process p = pb.start();
        p.getInputStream().readAllBytes();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        return p.exitValue();
    }

    /** The Vault HTTP API, over TLS checked against the lab's Vault CA, with the root token. */
    private static final class VaultApi {
        private final Lab lab;
        private final HttpClient http;

        VaultApi(Lab lab) {
            this.lab = lab;
            this.http = HttpClient.newBuilder().sslContext(Lab.trusting(lab.vaultCaCert()))
                    .connectTimeout(Duration.ofSeconds(10)).build();
        }

        Reply call(String method, String path, Map<String, ?> body) throws Exception {
            HttpRequest request = HttpRequest.newBuilder(URI.create(lab.vaultAddr() + "/v1/" + path))
                    .header("X-Vault-Token", lab.vaultToken())
                    .method(method, HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)))
                    .build();
            HttpResponse<String> r = http.send(request, HttpResponse.BodyHandlers.ofString());
            return new Reply(method + " " + path, r.statusCode(), r.body());
        }
    }

    private record Reply(String what, int status, String body) {
        Reply expect(int expected) {
            assertThat(status).as("%s: %s", what, body).isEqualTo(expected);
            return this;
        }

        Reply expectBody(String text) {
            assertThat(body).as("%s", what).contains(text);
            return this;
        }

        JsonNode json() { return JSON.readTree(body); }
    }
}
