package asmhsm;

import static asmhsm.MeshTestKit.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Status;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.ErrorStreamMessage;
import io.fabric8.kubernetes.client.server.mock.OutputStreamMessage;
import io.fabric8.kubernetes.client.server.mock.StatusMessage;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * verify-mtls: the guide's openssl s_client in the pod's istio-proxy container (exec on the
 * fabric8 mock server, which the lab cannot serve), the served chain judged link by link.
 */
class VerifyMtlsTest {
    static final String EXEC = "/api/v1/namespaces/bookinfo/pods/productpage-1/exec?command=openssl&command=s_client&command=-alpn"
            + "&command=istio&command=-showcerts&command=-connect&command=details%3A9080&container=istio-proxy&stdout=true&stderr=true";

    @TempDir Path tmp;
    MockKube mock;
    Issued root, ca;

    @BeforeEach
    void setUp() {
        mock = new MockKube(tmp);
        root = root("CN=Root CA,O=Example");
        ca = ca(root, "O=cluster.local");
        mock.client.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("bookinfo").endMetadata().build()).create();
        mock.client.pods().inNamespace("bookinfo").resource(pod("bookinfo", "productpage-1", Map.of("app", "productpage"), 2,
                "productpage", "istio-proxy")).create();
    }

    @AfterEach
    void tearDown() {
        mock.close();
    }

    /** What openssl s_client -showcerts prints, with the served certificates in the chain section. */
    static String sClientOutput(Issued... served) {
        StringBuilder s = new StringBuilder("CONNECTED(00000003)\n---\nCertificate chain\n");
        for (int i = 0; i < served.length; i++)
            s.append(' ').append(i).append(" s:").append(Pki.name(served[i].cert())).append("\n   i:x\n").append(served[i].pem());
        s.append("---\nServer certificate\nsubject=\nissuer=O = cluster.local\n---\nNo client certificate CA names sent\n");
        s.append("ALPN protocol: istio\n---\nDONE\n");
        return s.toString();
    }

    void serve(String stdout, String stderr, int exit) {
        // the mixed (CRUD + expectations) server matches an expectation only with its HTTP method
        var open = mock.server.expect().get().withPath(EXEC).andUpgradeToWebSocket();
        // the kubelet's last word: Success, or NonZeroExitCode with the code as cause ExitCode
        Status status = exit == 0 ? new StatusBuilder().withStatus("Success").build()
                : new StatusBuilder().withStatus("Failure").withReason("NonZeroExitCode").withMessage("command terminated with non-zero exit code")
                .withNewDetails().addNewCause().withReason("ExitCode").withMessage(String.valueOf(exit)).endCause().endDetails().build();
        Object[] msgs = stderr == null ? new Object[]{new OutputStreamMessage(stdout), new StatusMessage(status)}
                : new Object[]{new OutputStreamMessage(stdout), new ErrorStreamMessage(stderr), new StatusMessage(status)};
        open.open(msgs).done().always();
    }

    Cli.Result verify(String... extra) {
        List<String> args = new java.util.ArrayList<>(List.of("--kubeconfig", mock.kubeconfig.toString(),
                "--root-cert", write(tmp.resolve("root.pem"), root.pem()).toString()));
        args.addAll(List.of(extra));
        return run(new VerifyMtls(), args.toArray(String[]::new));
    }

    Cli.Result verifyProductpage() {
        return verify("--pod", "productpage-1", "-n", "bookinfo", "--target", "details:9080");
    }

    @Test
    void aServedChainIssuedByOurCaUnderOurRootPasses() {
        Issued leaf = leaf(ca, "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-details");
        serve(sClientOutput(leaf, ca), "depth=1 O = cluster.local\nverify error:num=19:self signed certificate in certificate chain\n", 0);
        Cli.Result r = verifyProductpage();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("details:9080 served 2 certificate(s) to bookinfo/productpage-1",
                "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-details", "the chain leads to the root 'CN=Root CA,O=Example'");
    }

    @Test
    void aChainThatIncludesTheRootAndAHandshakeThatEndsInAnAlertStillCount() {
        // strict mTLS: the server sends its chain, then refuses openssl (no client certificate): exit 1
        serve(sClientOutput(leaf(ca, "spiffe://x"), ca, root), "140:error:14094410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure\n", 1);
        Cli.Result r = verifyProductpage();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("served 3 certificate(s)");
    }

    @Test
    void saysWhichLinkFails() {
        Issued other = root("CN=Other Root");
        Issued otherCa = ca(other, "O=cluster.local");
        serve(sClientOutput(leaf(otherCa, "spiffe://x"), otherCa), null, 0);
        Cli.Result r = verifyProductpage();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("does not lead to the root 'CN=Root CA,O=Example': the served certificate #2 'O=cluster.local' "
                + "was issued by 'CN=Other Root', not by the root 'CN=Root CA,O=Example'");

        mock.server.clearExpectations();
        Issued stranger = ca(root, "O=stranger");
        serve(sClientOutput(leaf(stranger, "spiffe://x"), ca), null, 0);
        r = verifyProductpage();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("the served certificate #1 'O=cluster.local' was issued by 'O=stranger', not by certificate #2 'O=cluster.local'");

        mock.server.clearExpectations();
        Issued expired = expiredCa(root, "O=cluster.local");
        serve(sClientOutput(leaf(expired, "spiffe://x"), expired), null, 0);
        r = verifyProductpage();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("the served certificate #2 'O=cluster.local' is outside its validity period");
    }

    @Test
    void aSameNamedImpostorIsCaughtByItsSignature() {
        Issued impostor = root("CN=Root CA,O=Example"); // same name as our root, another key
        Issued fakeCa = ca(impostor, "O=cluster.local");
        serve(sClientOutput(leaf(fakeCa, "spiffe://x"), fakeCa), null, 0);
        Cli.Result r = verifyProductpage();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("certificate #2 'O=cluster.local' names the root 'CN=Root CA,O=Example' as issuer but its signature does not verify");
    }

    @Test
    void noCertificateServedShowsOpensslsReason() {
        serve("CONNECTED(00000003)\n", "140:error:0200206F:system library:connect:Connection refused\nconnect:errno=111\n", 1);
        Cli.Result r = verifyProductpage();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("details:9080 served no certificate to productpage-1", "connect:errno=111");
    }

    @Test
    void opensslMissingInTheImageIsNamed() {
        serve("", "exec: \"openssl\": executable file not found in $PATH\n", 127);
        Cli.Result r = verifyProductpage();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("openssl cannot run in the istio-proxy container of productpage-1 (exit 127)");
    }

    @Test
    void badInputIsRefusedBeforeAnyExec() {
        mock.client.pods().inNamespace("bookinfo").resource(pod("bookinfo", "plain-1", Map.of(), 1, "app")).create();
        Cli.Result r = verify("--pod", "plain-1", "-n", "bookinfo", "--target", "details:9080");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("pod plain-1 has no istio-proxy container (containers: app): it has no sidecar");
        r = verify("--pod", "productpage-1", "-n", "nowhere", "--target", "details:9080");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("namespace nowhere does not exist");
        r = verify("--pod", "ghost", "-n", "bookinfo", "--target", "details:9080");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("no pod ghost in namespace bookinfo");
        for (String bad : List.of("details", "details:0", "details:70000", "det ails:80", "-x:80"))
            assertThat(verify("--pod", "productpage-1", "-n", "bookinfo", "--target", bad).exit()).as(bad).isEqualTo(2);
    }

    @Test
    @ExtendWith(LabExtension.class)
    void againstTheLabPodsWithoutSidecarsUnknownNamespacesAndRbacAreRefused(Lab lab) {
        KubernetesClient admin = lab.admin();
        String ns = lab.freshNamespace();
        admin.pods().inNamespace(ns).resource(pod(ns, "plain-1", Map.of("app", "plain"), 0, "app")).create();
        Map<String, String> env = Map.of("KUBECONFIG", lab.kubeconfig().toString());
        Path rootPem = write(tmp.resolve("root.pem"), root.pem());
        Cli.Result r = Cli.asm(env, "verify-mtls", "--pod", "plain-1", "-n", ns, "--target", "details:9080", "--root-cert", rootPem.toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stderr()).contains("pod plain-1 has no istio-proxy container (containers: app)");
        r = Cli.asm(env, "verify-mtls", "--pod", "plain-1", "-n", ns + "-gone", "--target", "details:9080", "--root-cert", rootPem.toString());
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("namespace " + ns + "-gone does not exist");
        r = Cli.asm(Map.of("KUBECONFIG", lab.nobodyKubeconfig().toString()), "verify-mtls", "--pod", "plain-1", "-n", ns,
                "--target", "details:9080", "--root-cert", rootPem.toString());
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("not allowed to read namespace " + ns);
    }
}
