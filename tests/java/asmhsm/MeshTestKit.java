package asmhsm;

import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMixedDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.ServerRequest;
import io.fabric8.mockwebserver.ServerResponse;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Date;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.atomic.AtomicLong;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import picocli.CommandLine;

/**
 * Test helpers for the mesh steps (preflight ... status): a fabric8 mock API server with a
 * kubeconfig file (for pod logs and exec, which the lab cannot serve), steps run
 * in-process with their output captured, certificates made with Bouncy Castle, and pods
 * in the shape istiod and sidecar pods have.
 */
final class MeshTestKit {
    private MeshTestKit() {}

    // ---------------------------------------------------------------- mock API server

    /** A mock API server in CRUD mode that also answers set expectations (logs, exec). */
    static final class MockKube implements AutoCloseable {
        final KubernetesMockServer server;
        final KubernetesClient client;
        final Path kubeconfig;

        MockKube(Path dir) {
            this(dir, d -> d);
        }

        /** With `wrap` in front of the mock's own dispatcher (for what it cannot play, e.g. a plugin behind exec). */
        MockKube(Path dir, java.util.function.UnaryOperator<io.fabric8.mockwebserver.http.Dispatcher> wrap) {
            Map<ServerRequest, Queue<ServerResponse>> responses = new HashMap<>();
            server = new KubernetesMockServer(new Context(), new MockWebServer(), responses, wrap.apply(new KubernetesMixedDispatcher(responses)), false);
            server.init();
            client = server.createClient();
            kubeconfig = dir.resolve("mock-kubeconfig");
            write(kubeconfig, """
                    apiVersion: v1
                    kind: Config
                    clusters:
                    - name: mock
                      cluster: {server: "%s"}
                    contexts:
                    - name: mock
                      context: {cluster: mock, user: mock, namespace: default}
                    current-context: mock
                    users:
                    - name: mock
                      user: {token: mock-token}
                    """.formatted(server.url("/").replaceAll("/$", "")));
        }

        @Override
        public void close() {
            client.close();
            server.destroy();
        }
    }

    // ---------------------------------------------------------------- running steps in-process

    /** Runs a step in this JVM as `asm <step> args` would, capturing what it prints. */
    static Cli.Result run(Object step, String... args) {
        PrintStream out = System.out, err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream(), e = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
            int exit = new CommandLine(step).execute(args);
            return new Cli.Result(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    // ---------------------------------------------------------------- certificates

    record Issued(X509Certificate cert, KeyPair key) {
        String pem() { return Pki.pem(cert); }
    }

    private static final AtomicLong SERIAL = new AtomicLong(System.currentTimeMillis());

    static KeyPair ecKey() {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            return g.generateKeyPair();
        } catch (Exception ex) {
            throw new IllegalStateException(ex);
        }
    }

    static Issued root(String subject) {
        KeyPair k = ecKey();
        return new Issued(cert(subject, new X500Name(subject), k.getPublic(), k, true, null, 0), k);
    }

    /** A CA issued by `issuer` (an intermediate, or istiod's CA). */
    static Issued ca(Issued issuer, String subject) {
        KeyPair k = ecKey();
        return new Issued(cert(subject, issuerName(issuer), k.getPublic(), issuer.key, true, null, 0), k);
    }

    /** A workload certificate with a SPIFFE URI SAN, as istiod issues them (subject O=cluster.local to be readable). */
    static Issued leaf(Issued issuer, String spiffe) {
        KeyPair k = ecKey();
        return new Issued(cert("O=cluster.local", issuerName(issuer), k.getPublic(), issuer.key, false, spiffe, 0), k);
    }

    static Issued expiredCa(Issued issuer, String subject) {
        KeyPair k = ecKey();
        return new Issued(cert(subject, issuerName(issuer), k.getPublic(), issuer.key, true, null, -400), k);
    }

    /** The issuer's subject as encoded (a string round trip would reverse RFC 2253's order). */
    private static X500Name issuerName(Issued issuer) {
        return X500Name.getInstance(issuer.cert.getSubjectX500Principal().getEncoded());
    }

    private static X509Certificate cert(String subject, X500Name issuer, java.security.PublicKey pub, KeyPair signer, boolean ca,
                                        String uri, int shiftDays) {
        try {
            Instant now = Instant.now().plus(shiftDays, ChronoUnit.DAYS);
            var b = new JcaX509v3CertificateBuilder(issuer, BigInteger.valueOf(SERIAL.incrementAndGet()),
                    Date.from(now.minus(1, ChronoUnit.HOURS)), Date.from(now.plus(30, ChronoUnit.DAYS)), new X500Name(subject), pub);
            b.addExtension(Extension.basicConstraints, true, ca ? new BasicConstraints(true) : new BasicConstraints(false));
            b.addExtension(Extension.keyUsage, true, ca ? new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign | KeyUsage.digitalSignature)
                    : new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment));
            if (uri != null) b.addExtension(Extension.subjectAlternativeName, false,
                    new GeneralNames(new GeneralName(GeneralName.uniformResourceIdentifier, uri)));
            return new JcaX509CertificateConverter().getCertificate(b.build(new JcaContentSignerBuilder("SHA256withECDSA").build(signer.getPrivate())));
        } catch (Exception ex) {
            throw new IllegalStateException(ex);
        }
    }

    static String pems(Issued... certs) {
        StringBuilder s = new StringBuilder();
        for (Issued c : certs) s.append(c.pem());
        return s.toString();
    }

    // ---------------------------------------------------------------- pods

    /** A pod with the given containers; `ready` of them report ready (in order), phase Running. */
    static Pod pod(String ns, String name, Map<String, String> labels, int ready, String... containers) {
        PodBuilder b = new PodBuilder().withNewMetadata().withNamespace(ns).withName(name).withLabels(labels).endMetadata()
                .withNewSpec().endSpec();
        List<io.fabric8.kubernetes.api.model.ContainerStatus> statuses = new ArrayList<>();
        for (int i = 0; i < containers.length; i++) {
            b.editSpec().addNewContainer().withName(containers[i]).withImage("example.invalid/" + containers[i] + ":1").endContainer().endSpec();
            statuses.add(new ContainerStatusBuilder().withName(containers[i]).withImage("example.invalid/" + containers[i] + ":1")
                    .withImageID("").withReady(i < ready).withRestartCount(0).withStarted(true)
                    .withNewState().withNewRunning().withStartedAt("2026-01-01T00:00:00Z").endRunning().endState().build());
        }
        return b.withNewStatus().withPhase("Running").withContainerStatuses(statuses).endStatus().build();
    }

    /** istiod of the HSM install; with ready 2 it is the guide's 2/3: discovery waits for its CA, the others run. */
    static Pod istiodPod(String name, String revision, int ready) {
        return pod(KubeLayout.ISTIO_NAMESPACE, name, Map.of("app", "istiod", "istio.io/rev", revision), ready,
                "hsm-plugin", "vaultclient", "discovery");
    }

    // ---------------------------------------------------------------- nodes (the lab has no kubelet: tests make them)

    /** A Node with capacity = allocatable = cpu / memory and an InternalIP, status set through the status subresource. */
    static io.fabric8.kubernetes.api.model.Node node(KubernetesClient k, String name, String cpu, String memory, String internalIp) {
        var node = k.nodes().resource(new io.fabric8.kubernetes.api.model.NodeBuilder().withNewMetadata().withName(name)
                .addToLabels("asm-hsm-test", "true").endMetadata().build()).create();
        Map<String, io.fabric8.kubernetes.api.model.Quantity> res = Map.of("cpu", new io.fabric8.kubernetes.api.model.Quantity(cpu),
                "memory", new io.fabric8.kubernetes.api.model.Quantity(memory), "pods", new io.fabric8.kubernetes.api.model.Quantity("110"));
        node.setStatus(new io.fabric8.kubernetes.api.model.NodeStatusBuilder().withCapacity(res).withAllocatable(res)
                .addNewAddress().withType("InternalIP").withAddress(internalIp).endAddress()
                .addNewAddress().withType("Hostname").withAddress(name).endAddress().build());
        return k.nodes().resource(node).updateStatus();
    }

    static void deleteNodes(KubernetesClient k, List<String> names) {
        for (String n : names) k.nodes().withName(n).delete();
    }

    /** kubectl with the given kubeconfig: the independent reading of what a step did. */
    static String kubectl(Path kubeconfig, String... args) {
        List<String> cmd = new ArrayList<>(List.of("kubectl", "--kubeconfig", kubeconfig.toString()));
        cmd.addAll(List.of(args));
        Cli.Result r = Cli.run(cmd, Map.of(), null, null);
        if (r.exit() != 0) throw new AssertionError("kubectl " + String.join(" ", args) + " failed:\n" + r);
        return r.stdout();
    }

    // ---------------------------------------------------------------- files

    static Path write(Path file, String text) {
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            Files.writeString(file, text);
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
