package asmhsm;

import static asmhsm.MeshTestKit.*;
import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.ServicePortBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * preflight: every check runs and reports, against the lab's API server (Nodes made by the
 * test with capacity set), its SoftHSM2 token and its OpenBao.
 */
class PreflightTest {
    static final JsonMapper JSON = JsonMapper.builder().build();
    @TempDir Path tmp;

    // ---------------------------------------------------------------- the port-name rule

    static Service service(String ns, String name, Map<String, String> labels, ServicePort... ports) {
        return new ServiceBuilder().withNewMetadata().withNamespace(ns).withName(name).withLabels(labels).endMetadata()
                .withNewSpec().withPorts(ports).endSpec().build();
    }

    static ServicePort port(String name, int port) {
        return new ServicePortBuilder().withName(name).withPort(port).withProtocol("TCP").withTargetPort(new IntOrString(port)).build();
    }

    @Test
    void portNamesFollowIstiosProtocolSelection() {
        for (String good : List.of("http", "HTTP-web", "http2", "https-admin", "tcp-db", "tls", "grpc", "grpc-web", "GRPC-Web-ui",
                "mongo", "mysql-primary", "redis", "udp", "http_proxy", "thrift-rpc", "Tcp"))
            assertThat(Istio.portProtocol(good, null, "TCP", 8080)).as(good).isNotNull();
        for (String bad : List.of("", "web", "admin-http", "grpcweb", "h2c", "https_admin", "-http", "httpx"))
            assertThat(Istio.portProtocol(bad, null, "TCP", 8080)).as("'%s'", bad).isNull();
        assertThat(Istio.portProtocol("grpc-web", null, "TCP", 1)).isEqualTo("grpc-web");
        assertThat(Istio.portProtocol("dns", null, "UDP", 53)).isEqualTo("udp");          // UDP needs no name
        assertThat(Istio.portProtocol("db", null, "TCP", 3306)).isEqualTo("tcp");         // a well-known port
        assertThat(Istio.portProtocol(null, null, "TCP", 27017)).isEqualTo("tcp");
        assertThat(Istio.portProtocol("web", "http", "TCP", 80)).isEqualTo("http");       // appProtocol counts ...
        assertThat(Istio.portProtocol("http", "kubernetes.io/h2c", "TCP", 80)).isNull();  // ... instead of the name
    }

    @Test
    void offendersAreListedAsIstioctlAnalyzeWordsThemSkippingSystemNamespacesAndTheControlPlane() {
        List<Service> services = List.of(
                service("shop", "payments", Map.of(), port("http", 80), port("", 8080), port("metrics", 9090)),
                service("kube-system", "kube-dns", Map.of(), port("dns-tcp", 5353)),
                service("istio-system", "istiod", Map.of("istio", "pilot"), port("grpc-xds", 15010), port("foo", 15011)),
                service("istio-system", "promsd", Map.of("release", "istio"), port("metrics", 9090)));
        List<Istio.PortProblem> p = Istio.portNameProblems(services);
        assertThat(p).extracting(Istio.PortProblem::message).containsExactly(
                "IST0118 (Service shop/payments) Port name  (port: 8080, targetPort: 8080) doesn't follow the naming convention of Istio port.",
                "IST0118 (Service shop/payments) Port name metrics (port: 9090, targetPort: 9090) doesn't follow the naming convention of Istio port.");
    }

    @Test
    void versionPrefixesMatchWholeComponents() {
        Release.Supported supported = new Release.Supported(List.of("1.19", "1.20.5"), List.of());
        assertThat(supported.kubernetesSupported("v1.19.7-gke.2400")).isTrue();
        assertThat(supported.kubernetesSupported("v1.19")).isTrue();
        assertThat(supported.kubernetesSupported("v1.190.1")).isFalse();
        assertThat(supported.kubernetesSupported("v1.20.5+k3s1")).isTrue();
        assertThat(supported.kubernetesSupported("v1.20.50")).isFalse();
        assertThat(supported.kubernetesSupported("v1.18.20")).isFalse();
    }

    // ---------------------------------------------------------------- against the lab

    /** Settings an operator has for the lab (fresh HSM token, OpenBao, admin kubeconfig) and a versions list naming the lab's. */
    Map<String, String> env(Lab lab) throws Exception {
        Map<String, String> env = new HashMap<>(lab.freshToken());
        env.put("KUBECONFIG", lab.kubeconfig().toString());
        env.put("VAULT_ADDR", lab.vaultAddr());
        env.put("VAULT_CACERT", lab.vaultCaCert().toString());
        String v = lab.admin().getKubernetesVersion().getGitVersion();
        Path versions = write(tmp.resolve("versions.txt"), "# the lab\n" + v.replaceFirst("^v(\\d+\\.\\d+).*", "$1") + "\n");
        env.put("ASM_SUPPORTED_VERSIONS", versions.toString());
        return env;
    }

    static JsonNode check(Cli.Result r, String name) {
        JsonNode checks;
        try {
            checks = JSON.readTree(r.stdout()).get("checks");
        } catch (RuntimeException e) {
            throw new AssertionError("not one JSON result: " + r, e);
        }
        if (checks != null) for (JsonNode c : checks) if (c.get("name").asString().equals(name)) return c;
        throw new AssertionError("no check " + name + " in " + r);
    }

    List<String> nodes(KubernetesClient k, int n, String cpu, String memory) {
        String tag = UUID.randomUUID().toString().substring(0, 6);
        List<String> names = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            names.add("pf-" + tag + "-" + i);
            node(k, names.get(i), cpu, memory, "10.0.0." + (i + 1));
        }
        return names;
    }

    @Test
    @ExtendWith(LabExtension.class)
    void aClusterThatMeetsTheGuidePassesEveryCheckWithPerNodeFigures(Lab lab) throws Exception {
        KubernetesClient k = lab.admin();
        List<String> made = nodes(k, 4, "2", "4Gi");
        try {
            Cli.Result r = Cli.asm(env(lab), "preflight", "--warn-only");
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).containsPattern("ok\\s+nodes\\s+\\d+ nodes \\(need 4\\)")
                    .containsPattern(made.get(0) + "\\s+2 vCPU\\s+4\\.3 GB allocatable")
                    .containsPattern("ok\\s+version\\s+server v1\\.")
                    .containsPattern("ok\\s+permissions\\s+may do all \\d+ things the steps do")
                    .containsPattern("ok\\s+hsm\\s+token 't")
                    .containsPattern("ok\\s+vault\\s+Vault at https://127\\.0\\.0\\.1:\\d+ answers and is unsealed")
                    .contains("all checks passed");

            Cli.Result json = Cli.asm(env(lab), "preflight", "--warn-only", "--json");
            assertThat(json.exit()).isZero();
            JsonNode nodes = check(json, "nodes");
            assertThat(nodes.get("state").asString()).isEqualTo("done");
            assertThat(nodes.get("nodes").valueStream().map(n -> n.get("name").asString())).containsAll(made);
            assertThat(nodes.get("nodes").valueStream().filter(n -> made.contains(n.get("name").asString()))
                    .map(n -> n.get("memoryBytes").asLong())).containsOnly(4L << 30);
            assertThat(check(json, "memory").get("memoryBytes").asLong()).isGreaterThanOrEqualTo(16L << 30);
        } finally {
            deleteNodes(k, made);
        }
    }

    @Test
    @ExtendWith(LabExtension.class)
    void everyProblemIsReportedNotJustTheFirst(Lab lab) throws Exception {
        KubernetesClient k = lab.admin();
        Assumptions.assumeTrue(k.nodes().list().getItems().isEmpty(), "the lab has nodes of another test: cannot make it too small");
        List<String> made = nodes(k, 3, "1", "2Gi");
        String ns = lab.freshNamespace();
        k.services().inNamespace(ns).resource(service(ns, "legacy", Map.of(), port("web", 8080), port("http-ok", 8081))).create();
        Map<String, String> env = env(lab);
        env.remove("ASM_SUPPORTED_VERSIONS");                 // the toolkit's own list: ASM 1.9 knows no lab version
        Path badPin = tmp.resolve("bad-pin");
        Files.writeString(badPin, "not-the-pin");
        Files.setPosixFilePermissions(badPin, PosixFilePermissions.fromString("rw-------"));
        env.put("P11_PIN_FILE", badPin.toString());
        env.put("VAULT_ADDR", "https://127.0.0.1:1");       // nothing listens there
        try {
            Cli.Result r = Cli.asm(env, "preflight", "--versions-file", Cli.repo().resolve("lib/supported-versions.txt").toString(), "--json");
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            assertThat(check(r, "nodes").get("state").asString()).isEqualTo("wrong");
            assertThat(check(r, "nodes").get("detail").asString()).isEqualTo("3 nodes, need at least 4");
            assertThat(check(r, "cpu").get("detail").asString()).isEqualTo("3 vCPU allocatable (need 4)");
            assertThat(check(r, "memory").get("detail").asString()).isEqualTo("6.4 GB allocatable (need 15 GB)");
            assertThat(check(r, "version").get("detail").asString()).contains("is not in the supported list (1.18, 1.19, 1.20)");
            assertThat(check(r, "permissions").get("state").asString()).isEqualTo("done");
            JsonNode ports = check(r, "ports");
            assertThat(ports.get("state").asString()).isEqualTo("wrong");
            assertThat(ports.get("details").valueStream().map(JsonNode::asString))
                    .contains("IST0118 (Service " + ns + "/legacy) Port name web (port: 8080, targetPort: 8080) doesn't follow the naming convention of Istio port.")
                    .noneMatch(l -> l.contains("http-ok"));
            assertThat(ports.get("offenders").valueStream().filter(o -> o.get("namespace").asString().equals(ns)))
                    .singleElement().satisfies(o -> assertThat(o.get("name").asString()).isEqualTo("web"));
            assertThat(check(r, "hsm").get("detail").asString()).contains("refused the PIN");
            assertThat(check(r, "vault").get("detail").asString()).contains("cannot reach Vault at https://127.0.0.1:1");
            assertThat(JSON.readTree(r.stdout()).get("error").asString()).startsWith("7 of 8 checks failed: nodes, cpu, memory, version, ports, hsm, vault");

            // --warn-only makes the ports a warning; the rest still fails
            Cli.Result w = Cli.asm(env, "preflight", "--warn-only", "--skip", "hsm,vault");
            assertThat(w.exit()).isEqualTo(1);
            assertThat(w.stdout()).containsPattern("warn\\s+ports").containsPattern("skip\\s+hsm");
            assertThat(w.stderr()).contains("warning: ").contains("4 of 8 checks failed: nodes, cpu, memory, version");
        } finally {
            deleteNodes(k, made);
            k.namespaces().withName(ns).delete();
        }
    }

    @Test
    @ExtendWith(LabExtension.class)
    void aUserWithoutRightsIsToldWhatTheStepsCannotDo(Lab lab) throws Exception {
        Map<String, String> env = env(lab);
        env.put("KUBECONFIG", lab.nobodyKubeconfig().toString());
        Cli.Result r = Cli.asm(env, "preflight", "--skip", "hsm,vault", "--json");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(check(r, "nodes").get("detail").asString()).contains("not allowed to list the nodes");
        JsonNode perms = check(r, "permissions");
        assertThat(perms.get("state").asString()).isEqualTo("wrong");
        assertThat(perms.get("fix").asString()).contains("grant-admin --user");
        assertThat(perms.get("denied").valueStream().map(JsonNode::asString))
                .contains("create clusterrolebindings.rbac.authorization.k8s.io  (grant-admin, k8s-vault-prep)",
                        "create secrets in istio-system  (upload-chain)", "create pods/exec (all namespaces)  (verify-mtls)");
        assertThat(Cli.asm(env, "preflight", "--skip", "everything").exit()).isEqualTo(2);
    }

    /** JBang ships lib/supported-versions.txt with the scripts (//FILES): both ways operators run preflight read it. */
    @Test
    @ExtendWith(LabExtension.class)
    void underJbangTheToolkitsOwnVersionListIsUsed(Lab lab) {
        Map<String, String> env = Map.of("KUBECONFIG", lab.kubeconfig().toString());
        String skip = "nodes,permissions,ports,hsm,vault";
        Cli.Result script = Cli.run(List.of("jbang", "--quiet", Cli.repo().resolve("scripts/preflight.java").toString(),
                "--skip", skip, "--json"), env, tmp, null);
        assertThat(script.exit()).as(script.toString()).isEqualTo(1);
        assertThat(check(script, "version").get("detail").asString()).contains("is not in the supported list (1.18, 1.19, 1.20)");
        Cli.Result asm = Cli.run(List.of("jbang", "--quiet", "asm@org", "preflight", "--skip", skip), env, tmp, null);
        assertThat(asm.exit()).as(asm.toString()).isEqualTo(1);
        assertThat(asm.stdout()).containsPattern("FAIL\\s+version\\s+server v\\S+ is not in the supported list \\(1\\.18, 1\\.19, 1\\.20\\)");
    }

    @Test
    void aSealedVaultAndAMissingHsmLibraryFailTheirChecks() throws Exception {
        HttpServer vault = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        vault.createContext("/v1/sys/seal-status", x -> {
            byte[] body = "{\"type\":\"shamir\",\"initialized\":true,\"sealed\":true,\"t\":1,\"n\":1,\"progress\":0}".getBytes(StandardCharsets.UTF_8);
            x.getResponseHeaders().add("Content-Type", "application/json");
            x.sendResponseHeaders(200, body.length);
            x.getResponseBody().write(body);
            x.close();
        });
        vault.start();
        try {
            Cli.Result r = Cli.asm(Map.of("VAULT_ADDR", "http://127.0.0.1:" + vault.getAddress().getPort()),
                    "preflight", "--skip", "nodes,version,permissions,ports", "--json");
            assertThat(r.exit()).isEqualTo(1);
            assertThat(check(r, "vault").get("detail").asString()).contains("answers but is sealed");
            assertThat(check(r, "hsm").get("detail").asString()).isEqualTo("no PKCS#11 library set: the Luna HSM is not configured");
        } finally {
            vault.stop(0);
        }
    }
}
