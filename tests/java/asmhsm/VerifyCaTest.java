package asmhsm;

import static asmhsm.MeshTestKit.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * verify-ca: istiod's discovery log against Secret istio-ca-cert and the HSM's root.
 * Pod logs come from the fabric8 mock server (the lab has no kubelet); the Secret, the
 * HSM and RBAC are also checked against the lab.
 */
class VerifyCaTest {
    @TempDir Path tmp;
    MockKube mock;
    Issued root, ca;

    @BeforeEach
    void setUp() {
        mock = new MockKube(tmp);
        root = root("CN=Root CA,O=Example");
        ca = ca(root, "O=cluster.local");
    }

    @AfterEach
    void tearDown() {
        mock.close();
    }

    /** The discovery log as istiod prints it: one entry per section, PEM on the lines after. */
    static String discoveryLog(Issued ca, Issued... rest) {
        StringBuilder s = new StringBuilder("2026-11-26T10:00:00.000000Z\tinfo\tpkica\tUse KMS backed CA\n"
                + "2026-11-26T10:00:01.000000Z\tinfo\tpkica\tWait until the CA certificate secret istio-system.istio-ca-cert can be loaded...\n"
                + "2026-11-26T10:00:05.000000Z\tinfo\tpkica\tSuccessfully loaded the secret.\n"
                + "2026-11-26T10:00:05.100000Z\tinfo\tpkica\tCA cert:\n" + ca.pem());
        s.append("2026-11-26T10:00:05.100001Z\tinfo\tpkica\tintermediate certs:\n");
        for (int i = 0; i < rest.length - 1; i++) s.append(rest[i].pem());
        s.append("2026-11-26T10:00:05.100002Z\tinfo\tpkica\troot cert:\n").append(rest[rest.length - 1].pem());
        s.append("2026-11-26T10:00:05.2Z\tinfo\tads\tStarting ADS server\n");
        return s.toString();
    }

    void chainSecret(KubernetesClient c, String pem) {
        c.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(new SecretBuilder().withNewMetadata().withName("istio-ca-cert")
                .withNamespace(KubeLayout.ISTIO_NAMESPACE).endMetadata()
                .addToData("cert-chain.pem", Base64.getEncoder().encodeToString(pem.getBytes(StandardCharsets.UTF_8))).build()).create();
    }

    void istiod(String name, int ready, String log) {
        mock.client.pods().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(istiodPod(name, "asm-198-6", ready)).create();
        mock.server.expect().get().withPath("/api/v1/namespaces/istio-system/pods/" + name + "/log?pretty=false&container=discovery&tailLines=5000")
                .andReturn(200, log).always();
    }

    Path rootFile() {
        return write(tmp.resolve("root.pem"), root.pem());
    }

    Cli.Result verify(String... extra) {
        String[] args = new String[4 + extra.length];
        args[0] = "--kubeconfig"; args[1] = mock.kubeconfig.toString(); args[2] = "--root-cert"; args[3] = rootFile().toString();
        System.arraycopy(extra, 0, args, 4, extra.length);
        return run(new VerifyCa(), args);
    }

    @Test
    void passesWhenEveryIstiodLoggedTheSecretsChainAndIs3of3() {
        chainSecret(mock.client, pems(ca, root));
        istiod("istiod-asm-198-6-a", 3, discoveryLog(ca, root));
        istiod("istiod-asm-198-6-b", 3, discoveryLog(ca, root));
        Cli.Result r = verify();
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("pod istiod-asm-198-6-a: 3/3 ready", "pod istiod-asm-198-6-b: 3/3 ready",
                "ending at the root 'CN=Root CA,O=Example'");
    }

    @Test
    void anIntermediateBetweenCaAndRootIsPartOfTheComparedChain() {
        Issued mid = ca(root, "CN=Intermediate,O=Example");
        Issued ca2 = ca(mid, "O=cluster.local");
        chainSecret(mock.client, pems(ca2, mid, root));
        istiod("istiod-a", 3, discoveryLog(ca2, mid, root));
        Cli.Result r = run(new VerifyCa(), "--kubeconfig", mock.kubeconfig.toString(), "--root-cert", rootFile().toString(), "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("\"loggedChain\" : [ \"O=cluster.local\", \"CN=Intermediate,O=Example\", \"CN=Root CA,O=Example\" ]");
    }

    @Test
    void namesThePodAndTheCertificateWhenTheLoggedChainIsAnother() {
        Issued old = ca(root, "O=cluster.local");
        chainSecret(mock.client, pems(ca, root));
        istiod("istiod-a", 3, discoveryLog(ca, root));
        istiod("istiod-b", 3, discoveryLog(old, root));
        Cli.Result r = verify();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("pod istiod-b loaded another chain than Secret istio-ca-cert: certificate #1")
                .doesNotContain("pod istiod-a loaded");
    }

    @Test
    void aPodThatIsNot3of3Fails() {
        chainSecret(mock.client, pems(ca, root));
        istiod("istiod-a", 2, discoveryLog(ca, root));
        Cli.Result r = verify();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("pod istiod-a is 2/3 ready, not 3/3");
    }

    @Test
    void saysWhenIstiodRefusedTheChainOrHasNotLoadedItYet() {
        chainSecret(mock.client, pems(ca, root));
        istiod("istiod-a", 2, "2026-11-26T10:00:01Z\tinfo\tpkica\tWait until the CA certificate secret istio-system.istio-ca-cert can be loaded...\n");
        istiod("istiod-b", 2, "2026-11-26T10:00:05Z\terror\tpkica\tFailed to verify certificate chain (error: x509: certificate signed by unknown authority). Abort.\n");
        Cli.Result r = verify();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("pod istiod-a has not logged 'CA cert:' yet",
                "pod istiod-b: istiod refused the CA chain: 2026-11-26T10:00:05Z\terror\tpkica\tFailed to verify certificate chain");
    }

    static final String NOT_LOADED_ABORT = "2026-11-26T10:00:05Z\terror\tpkica\tFailed to verify certificate chain (error: rpc error: code = Unknown "
            + "desc = no loaded CA cert for verification). Abort.\n";

    /** The real plugin knows a root only after an import in its own process: signing again cannot help, load-root does. */
    @Test
    void anAbortForwantOfALoadedRootNamesLoadRootNotSigningAgain() {
        chainSecret(mock.client, pems(ca, root));
        istiod("istiod-a", 2, NOT_LOADED_ABORT);
        Cli.Result r = verify();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("pod istiod-a: istiod aborted: its HSM plugin has no root loaded", "run load-root")
                .doesNotContain("sign-csr and upload-chain again");
    }

    /** A crash-looping istiod: its current run has barely started, the abort is in the run before, which the kubelet keeps. */
    @Test
    void readsTheAbortOfTheRunBeforeWhenDiscoveryRestarted() {
        chainSecret(mock.client, pems(ca, root));
        istiod("istiod-a", 2, "2026-11-26T10:01:00Z\tinfo\tpkica\tUse KMS backed CA\n");
        restartedOnce("istiod-a", discoveryLog(ca, root) + NOT_LOADED_ABORT);
        Cli.Result r = verify("--json");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stdout()).contains("\"aborted\" : \"istiod aborted: its HSM plugin has no root loaded");
        assertThat(r.stdout()).as("the chain logged before the abort does not count").contains("\"logged\" : false");
    }

    void restartedOnce(String pod, String previousLog) {
        mock.client.pods().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(pod).editStatus(p -> {
            p.getStatus().getContainerStatuses().stream().filter(c -> c.getName().equals("discovery")).forEach(c -> c.setRestartCount(1));
            return p;
        });
        mock.server.expect().get().withPath("/api/v1/namespaces/istio-system/pods/" + pod + "/log?pretty=false&container=discovery&previous=true&tailLines=5000")
                .andReturn(200, previousLog).always();
    }

    @Test
    void aChainThatDoesNotEndAtTheRootFailsBeforeAnyLogIsRead() {
        Issued other = root("CN=Other Root");
        chainSecret(mock.client, pems(ca(other, "O=cluster.local"), other));
        Cli.Result r = verify();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("the chain in Secret istio-ca-cert ends at 'CN=Other Root', not at the root 'CN=Root CA,O=Example'");
    }

    @Test
    void noIstiodAndNoSecretAreFailuresThatNameTheStepToRun() {
        Cli.Result r = verify();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("Secret istio-system/istio-ca-cert does not exist", "upload-chain");
        chainSecret(mock.client, pems(ca, root));
        r = verify();
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("no istiod pod in istio-system", "install-asm");
        r = verify("--pod", "istiod-zzz");
        assertThat(r.exit()).isEqualTo(2);
    }

    @Test
    void readsTheRootFromTheHsmWhenNoFileIsGiven() throws Exception {
        SoftHsmToken token = SoftHsmToken.create(tmp);
        Map<String, String> env = token.env();
        Path rootPem = rootFile();
        Cli.Result imp = Cli.asm(env, "import-ca", "-f", rootPem.toString());
        assertThat(imp.exit()).as(imp.toString()).isZero();
        chainSecret(mock.client, pems(ca, root));
        istiod("istiod-a", 3, discoveryLog(ca, root));
        Cli.Result r = Cli.asm(env, "verify-ca", "--kubeconfig", mock.kubeconfig.toString());
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("ending at the root 'CN=Root CA,O=Example'");
        // another CA ID: nothing there
        r = Cli.asm(env, "verify-ca", "--kubeconfig", mock.kubeconfig.toString(), "--ca-id", "no-such-ca");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("no root certificate with CA ID no-such-ca", "import-ca");
    }

    @Test
    void aSecretIstiodCannotSplitFailsBeforeAnyLogIsReadAndAFormItAcceptsPasses() throws Exception {
        istiod("istiod-a", 3, discoveryLog(ca, root));
        for (var form : ChainFormsTest.refused(ca.pem(), root.pem()).entrySet()) {
            chainSecret(mock.client, form.getValue()[0]);
            Cli.Result r = verify();
            assertThat(r.exit()).as(form.getKey()).isEqualTo(1);
            assertThat(r.stderr()).as(form.getKey()).contains("istiod refuses the cert-chain.pem of Secret istio-ca-cert (error spliting the cert chain): ")
                    .contains(form.getValue()[1]).contains("upload-chain -f cert-chain.pem rewrites it");
            mock.client.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName("istio-ca-cert").delete();
        }
        for (var form : ChainFormsTest.accepted(ca.pem(), root.pem(), ChainFormsTest.opensslText(tmp, ca.pem())).entrySet()) {
            if (form.getKey().equals("the CA certificate alone")) continue; // verify-ca wants the chain to end at the root
            chainSecret(mock.client, form.getValue());
            Cli.Result r = verify();
            assertThat(r.exit()).as(form.getKey() + "\n" + r).isZero();
            mock.client.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName("istio-ca-cert").delete();
        }
    }

    @Test
    void readsTheRootFromIdenticalCopiesOnTheHsmButNotFromCopiesThatDiffer() throws Exception {
        SoftHsmToken token = SoftHsmToken.create(tmp);
        Map<String, String> env = token.env();
        assertThat(Cli.asm(env, "import-ca", "-f", rootFile().toString()).exit()).isZero();
        token.writeCertificate(root.cert(), Hsm.DEFAULT_CA_ID);
        token.writeCertificate(root.cert(), Hsm.DEFAULT_CA_ID);
        chainSecret(mock.client, pems(ca, root));
        istiod("istiod-a", 3, discoveryLog(ca, root));
        Cli.Result r = Cli.asm(env, "verify-ca", "--kubeconfig", mock.kubeconfig.toString());
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("ending at the root 'CN=Root CA,O=Example'");
        token.writeCertificate(root("CN=Another Root").cert(), Hsm.DEFAULT_CA_ID);
        r = Cli.asm(env, "verify-ca", "--kubeconfig", mock.kubeconfig.toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("4 certificates that differ (2 different values) share CA ID " + Hsm.DEFAULT_CA_ID)
                .contains("import-ca -f ROOT_PEM --replace");
    }

    // ---------------------------------------------------------------- the log block parser

    @Test
    void parsesTheBlockInOneEntryOrOneEntryPerSectionAndTakesTheLast() {
        Issued mid = ca(root, "CN=Mid");
        String oneEntry = "2026-11-26T10:00:05Z\tinfo\tpkica\tCA cert: " + ca.pem() + "intermediate certs: " + mid.pem()
                + "root cert: " + root.pem() + "2026-11-26T10:00:06Z\tinfo\tads\tdone\n";
        IstiodLog.LoggedChain c = IstiodLog.caCertBlock(oneEntry);
        assertThat(c).isNotNull();
        assertThat(c.all().stream().map(Pki::name)).containsExactly("O=cluster.local", "CN=Mid", "CN=Root CA,O=Example");

        Issued newer = ca(root, "O=newer");
        IstiodLog.LoggedChain last = IstiodLog.caCertBlock(discoveryLog(ca, root) + discoveryLog(newer, root));
        assertThat(Pki.name(last.ca())).isEqualTo("O=newer");
        assertThat(last.intermediates()).isEmpty();
        assertThat(IstiodLog.caCertBlock("2026-11-26T10:00:01Z\tinfo\tpkica\tWait until ...\n")).isNull();
    }

    // ---------------------------------------------------------------- the lab: Secret, HSM, RBAC

    @Test
    @ExtendWith(LabExtension.class)
    void againstTheLabTheSecretIsReadAndComparedWithTheRootOnTheHsm(Lab lab) throws Exception {
        Map<String, String> token = lab.freshToken();
        Path rootPem = rootFile();
        assertThat(Cli.asm(token, "import-ca", "-f", rootPem.toString()).exit()).isZero();
        Map<String, String> env = new java.util.HashMap<>(token);
        env.put("KUBECONFIG", lab.kubeconfig().toString());
        KubernetesClient admin = lab.admin();
        LabIstioSystem.ensure(admin);
        try {
            Cli.Result r = Cli.asm(env, "verify-ca");
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            assertThat(r.stderr()).contains("Secret istio-system/istio-ca-cert does not exist");

            Issued other = root("CN=Not Our Root");
            chainSecret(admin, pems(ca(other, "O=cluster.local"), other));
            r = Cli.asm(env, "verify-ca");
            assertThat(r.exit()).isEqualTo(1);
            assertThat(r.stderr()).contains("ends at 'CN=Not Our Root', not at the root 'CN=Root CA,O=Example' on the HSM");

            admin.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName("istio-ca-cert").withTimeout(30, TimeUnit.SECONDS).delete();
            chainSecret(admin, pems(ca, root));
            r = Cli.asm(env, "verify-ca");
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            assertThat(r.stderr()).contains("no istiod pod in istio-system");

            env.put("KUBECONFIG", lab.nobodyKubeconfig().toString());
            r = Cli.asm(env, "verify-ca");
            assertThat(r.exit()).isEqualTo(1);
            assertThat(r.stderr()).contains("not allowed to read Secret istio-ca-cert");
        } finally {
            admin.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName("istio-ca-cert").delete();
        }
    }

    /** istio-system in the lab: shared by tests of several steps, so made when missing and left in place. */
    static final class LabIstioSystem {
        static void ensure(KubernetesClient admin) {
            if (admin.namespaces().withName(KubeLayout.ISTIO_NAMESPACE).get() == null)
                admin.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(KubeLayout.ISTIO_NAMESPACE).endMetadata().build()).create();
        }
    }
}
