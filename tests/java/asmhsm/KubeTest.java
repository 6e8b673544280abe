package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Kube.connect against the lab's API server: it reads the kubeconfig and sets up TLS itself
 * (see Kube.readKubeconfig and Kube.build), so these check it does what kubectl does.
 */
@ExtendWith(LabExtension.class)
class KubeTest {
    @TempDir
    Path tmp;

    /** A kubeconfig naming its TLS files by paths relative to its own folder, as kubectl allows. */
    private Path kubeconfig(Lab lab, Path dir, String ca, String extraClusterLine) throws Exception {
        Files.createDirectories(dir);
        Files.copy(lab.dir().resolve("pki/" + ca), dir.resolve("ca.crt"));
        Files.copy(lab.dir().resolve("pki/admin.crt"), dir.resolve("client.crt"));
        Files.copy(lab.dir().resolve("pki/admin.key"), dir.resolve("client.key"));
        Path file = dir.resolve("config");
        Files.writeString(file, String.join("\n", "apiVersion: v1", "kind: Config", "current-context: lab",
                "clusters:", "- name: lab", "  cluster:", "    server: " + lab.k8sAddr(),
                "    certificate-authority: ca.crt", extraClusterLine,
                "contexts:", "- name: lab", "  context: {cluster: lab, user: admin}",
                "- name: other", "  context: {cluster: lab, user: admin, namespace: elsewhere}",
                "users:", "- name: admin", "  user: {client-certificate: client.crt, client-key: client.key}", ""));
        return file;
    }

    private static Opts.Kube opts(Path kubeconfig, String context) {
        Opts.Kube o = new Opts.Kube();
        o.kubeconfig = kubeconfig.toString();
        o.context = context;
        return o;
    }

    @Test
    void relativePathsResolveAgainstTheKubeconfigsFolderAndTheConfigKeepsItsTlsSettings(Lab lab) throws Exception {
        Path file = kubeconfig(lab, tmp.resolve("elsewhere"), "k8s-ca.crt", "");
        try (Kube k = Kube.connect(opts(file, null))) {
            assertThat(k.client.namespaces().withName("default").get()).isNotNull();
            assertThat(k.context).isEqualTo("lab");
            // what was set aside while the client was built is back
            assertThat(k.config).isSameAs(k.client.getConfiguration());
            assertThat(k.config.isTrustCerts()).isFalse();
            assertThat(k.config.getCaCertFile()).isEqualTo(tmp.resolve("elsewhere/ca.crt").toString());
            assertThat(k.config.getClientCertFile()).isEqualTo(tmp.resolve("elsewhere/client.crt").toString());
            assertThat(k.config.getClientKeyFile()).isEqualTo(tmp.resolve("elsewhere/client.key").toString());
        }
        try (Kube k = Kube.connect(opts(file, "other"))) {
            assertThat(k.context).isEqualTo("other");
            assertThat(k.config.getNamespace()).isEqualTo("elsewhere");
        }
        assertThatThrownBy(() -> Kube.connect(opts(file, "nope")))
                .isInstanceOf(Fail.class).hasMessageContaining("context 'nope' is not in " + file);
    }

    @Test
    void anApiServerWhoseCertificateTheKubeconfigsCaDidNotSignIsRefused(Lab lab) throws Exception {
        // the Vault CA did not sign the API server's certificate: TLS must fail, not fall back
        Path file = kubeconfig(lab, tmp.resolve("wrong-ca"), "vault-ca.crt", "");
        try (Kube k = Kube.connect(opts(file, null))) {
            assertThatThrownBy(() -> k.call(() -> k.client.namespaces().withName("default").get(), "read namespace default"))
                    .isInstanceOf(Fail.class).hasMessageContaining("cannot reach the API server")
                    .hasMessageContaining("unable to find valid certification path");
        }
        // insecure-skip-tls-verify in the kubeconfig is honoured, as kubectl honours it
        Path insecure = kubeconfig(lab, tmp.resolve("insecure"), "vault-ca.crt", "    insecure-skip-tls-verify: true");
        try (Kube k = Kube.connect(opts(insecure, null))) {
            assertThat(k.client.namespaces().withName("default").get()).isNotNull();
        }
    }

    /**
     * Bouncy Castle's jars are signed, and the JVM checks the signature when it first opens them
     * (~0.1 s, and no class-data archive holds their classes): a cluster step that reads no PEM
     * key or CSR must not load any of it.
     */
    @Test
    void aClusterStepLoadsNothingFromBouncyCastle(Lab lab) throws Exception {
        String ns = lab.freshNamespace();
        Path log = tmp.resolve("classes.log");
        Cli.Result r = Cli.run(java.util.List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-exports=jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED", "-Xlog:class+load:file=" + log,
                "-cp", Cli.classpath(), "asmhsm.Asm", "istiod-service", "-n", ns), KubeVaultStepsSupport.env(lab), tmp, null);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(Files.readString(log)).contains("io.fabric8.kubernetes.client.KubernetesClient ")
                .doesNotContain("org.bouncycastle");
    }

    /**
     * An object still being deleted (a namespace a teardown just removed, here held by a finalizer) is
     * waited for and created anew: the API server would refuse anything inside it ("being terminated").
     */
    @Test
    void anObjectStillBeingDeletedIsWaitedForAndCreatedAnew(Lab lab) throws Exception {
        String ns = lab.freshNamespace();
        io.fabric8.kubernetes.client.KubernetesClient admin = lab.admin();
        admin.namespaces().withName(ns).edit(n -> { n.getMetadata().setFinalizers(List.of("asm-hsm.test/hold")); return n; });
        admin.namespaces().withName(ns).delete();
        assertThat(admin.namespaces().withName(ns).get().getMetadata().getDeletionTimestamp()).isNotNull();
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Out out = new Out("test", false, false, new PrintStream(buf, true, StandardCharsets.UTF_8), System.err);
        Path file = kubeconfig(lab, tmp.resolve("deleting"), "k8s-ca.crt", "");
        Kube k = Kube.connect(opts(file, null));
        // inside it, the API server's 403 is no missing right, and the error says so
        assertThatThrownBy(() -> k.apply(new io.fabric8.kubernetes.api.model.SecretBuilder()
                .withNewMetadata().withName("s").withNamespace(ns).endMetadata().build(), out))
                .isInstanceOf(Fail.class).hasMessageStartingWith("cannot create Secret " + ns + "/s")
                .hasMessageContaining("being terminated").hasMessageNotContaining("not allowed")
                .satisfies(e -> assertThat(((Fail) e).hint).contains("wait until the namespace is gone"));
        // --dry-run neither waits nor calls it up to date: the run would create it anew
        ByteArrayOutputStream dryBuf = new ByteArrayOutputStream();
        Out dry = new Out("test", false, true, new PrintStream(dryBuf, true, StandardCharsets.UTF_8), System.err);
        assertThat(k.apply(Kube.namespace(ns), dry)).isTrue();
        assertThat(dryBuf.toString(StandardCharsets.UTF_8)).contains("create Namespace " + ns).doesNotContain("up to date");
        assertThat(admin.namespaces().withName(ns).get().getMetadata().getDeletionTimestamp()).as("still being deleted").isNotNull();
        Thread release = new Thread(() -> {
            try {
                Thread.sleep(1500);
                admin.namespaces().withName(ns).edit(n -> { n.getMetadata().setFinalizers(List.of()); return n; });
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        release.start();
        try (k) {
            assertThat(k.apply(Kube.namespace(ns), out)).isTrue();
        }
        release.join();
        assertThat(buf.toString(StandardCharsets.UTF_8)).contains("created Namespace " + ns);
        assertThat(admin.namespaces().withName(ns).get().getMetadata().getDeletionTimestamp()).as("a new namespace").isNull();
    }

    /** An object that stays being deleted (a finalizer no one removes): the wait ends, saying where to look. */
    @Test
    void anObjectThatStaysBeingDeletedEndsTheWaitWithWhereToLook(Lab lab) throws Exception {
        String ns = lab.freshNamespace();
        io.fabric8.kubernetes.client.KubernetesClient admin = lab.admin();
        admin.namespaces().withName(ns).edit(n -> { n.getMetadata().setFinalizers(List.of("asm-hsm.test/hold")); return n; });
        admin.namespaces().withName(ns).delete();
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        Out out = new Out("test", false, false, new PrintStream(buf, true, StandardCharsets.UTF_8), System.err);
        try (Kube k = Kube.connect(opts(kubeconfig(lab, tmp.resolve("stays"), "k8s-ca.crt", ""), null))) {
            k.deletionWaitSeconds = 2;
            assertThatThrownBy(() -> k.apply(Kube.namespace(ns), out)).isInstanceOf(Fail.class)
                    .hasMessage("timed out after 2s waiting for Namespace " + ns + " to finish being deleted")
                    .satisfies(e -> assertThat(((Fail) e).hint)
                            .isEqualTo("see what holds it (kubectl get namespace " + ns + " -o yaml: its finalizers), then run this step again"));
        } finally {
            admin.namespaces().withName(ns).edit(n -> { n.getMetadata().setFinalizers(List.of()); return n; });
        }
        assertThat(buf.toString(StandardCharsets.UTF_8)).doesNotContain("created");
    }

    @Test
    void aCertificateAuthorityFileWithoutACertificateIsBadInput(Lab lab) throws Exception {
        Path file = kubeconfig(lab, tmp.resolve("empty-ca"), "k8s-ca.crt", "");
        Files.writeString(tmp.resolve("empty-ca/ca.crt"), "not a certificate\n");
        assertThatThrownBy(() -> Kube.connect(opts(file, null)))
                .isInstanceOf(Fail.class).hasMessageContaining("ca.crt is not PEM (18 bytes, no -----BEGIN line)")
                .satisfies(e -> assertThat(((Fail) e).exitCode).isEqualTo(2));
        Path garbage = tmp.resolve("garbage");
        Files.writeString(garbage, "::: not yaml :::\n  - [");
        assertThatThrownBy(() -> Kube.connect(opts(garbage, null)))
                .isInstanceOf(Fail.class).hasMessageContaining("kubeconfig " + garbage + " is not a kubeconfig");
    }

    /**
     * KUBECONFIG as a list, merged as kubectl merges it: the first file that names a context, cluster
     * or user wins, the current context is the first file's that sets one, missing files are skipped.
     */
    @Test
    void aKubeconfigListIsMergedAsKubectlMergesIt(Lab lab) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("list"));
        Files.copy(lab.dir().resolve("pki/k8s-ca.crt"), dir.resolve("ca.crt"));
        Files.copy(lab.dir().resolve("pki/admin.crt"), dir.resolve("client.crt"));
        Files.copy(lab.dir().resolve("pki/admin.key"), dir.resolve("client.key"));
        Path c1 = Files.writeString(dir.resolve("c1.yaml"), String.join("\n", "apiVersion: v1", "kind: Config", "current-context: c1",
                "clusters:", "- name: c1", "  cluster: {server: \"" + lab.k8sAddr() + "\", certificate-authority: ca.crt}",
                "contexts:", "- name: c1", "  context: {cluster: c1, user: admin, namespace: from-c1}",
                "users:", "- name: admin", "  user: {client-certificate: client.crt, client-key: client.key}", ""));
        // c2.yaml also names c1 (a cluster that is down): the first file's c1 must win; its current context must not
        Path c2 = Files.writeString(dir.resolve("c2.yaml"), String.join("\n", "apiVersion: v1", "kind: Config", "current-context: c2",
                "clusters:", "- name: c2", "  cluster: {server: \"" + lab.k8sAddr() + "\", certificate-authority: ca.crt}",
                "- name: c1", "  cluster: {server: \"https://127.0.0.1:1\"}",
                "contexts:", "- name: c2", "  context: {cluster: c2, user: admin, namespace: from-c2}",
                "- name: c1", "  context: {cluster: c1, user: admin, namespace: from-c2}", ""));
        String list = c1 + ":" + dir.resolve("missing.yaml") + ":" + c2;
        try (Kube k = Kube.connect(opts(Path.of(list), null))) {
            assertThat(k.context).isEqualTo("c1");
            assertThat(k.config.getNamespace()).isEqualTo("from-c1");
            assertThat(k.server()).isEqualTo(lab.k8sAddr());
        }
        try (Kube k = Kube.connect(opts(Path.of(list), "c2"))) {
            assertThat(k.context).isEqualTo("c2");
            assertThat(k.config.getNamespace()).isEqualTo("from-c2");
            // c2's user is the first file's: the client certificate resolves against c1.yaml's folder
            assertThat(k.client.namespaces().withName("default").get()).isNotNull();
        }
        // a real step, as the issue ran it: KUBECONFIG=c1.yaml:c2.yaml ... --context c2
        String ns = lab.freshNamespace();
        Cli.Result r = Cli.asm(KubeVaultStepsSupport.env(lab, "KUBECONFIG", c1 + ":" + c2), tmp, "istiod-service", "-n", ns, "--context", "c2");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).startsWith("acting on cluster 'c2' at " + lab.k8sAddr()).contains("created Service " + ns + "/istiod");

        // a file of the list that is no kubeconfig is refused by name, in one line
        Path pin = Files.writeString(dir.resolve("pin"), "123456\n");
        Cli.Result bad = Cli.asm(KubeVaultStepsSupport.env(lab, "KUBECONFIG", c1 + ":" + pin), tmp, "istiod-service", "-n", ns, "--context", "c1");
        assertThat(bad.exit()).as(bad.toString()).isEqualTo(2);
        assertThat(KubeVaultStepsSupport.errorLines(bad)).hasSize(2);
        assertThat(KubeVaultStepsSupport.errorLines(bad).get(0)).contains("kubeconfig " + pin + " is not a kubeconfig").doesNotContain("123456");
        Cli.Result none = Cli.asm(KubeVaultStepsSupport.env(lab, "KUBECONFIG", dir.resolve("a") + ":" + dir.resolve("b")), tmp, "istiod-service", "-n", ns);
        assertThat(none.exit()).isEqualTo(2);
        assertThat(none.stderr()).contains("does not exist");
        Cli.Result unknown = Cli.asm(KubeVaultStepsSupport.env(lab, "KUBECONFIG", c1 + ":" + c2), tmp, "istiod-service", "-n", ns, "--context", "c3");
        assertThat(unknown.exit()).isEqualTo(2);
        assertThat(unknown.stderr()).contains("context 'c3' is not in " + c1 + ":" + c2);
    }

    /** Without a CA in the kubeconfig, the cluster is known by the last certificate its API server presents. */
    @Test
    void aKubeconfigWithoutACaIdentifiesTheClusterByThePresentedChain(Lab lab) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("no-ca"));
        Files.copy(lab.dir().resolve("pki/admin.crt"), dir.resolve("client.crt"));
        Files.copy(lab.dir().resolve("pki/admin.key"), dir.resolve("client.key"));
        Path file = Files.writeString(dir.resolve("config"), String.join("\n", "apiVersion: v1", "kind: Config", "current-context: lab",
                "clusters:", "- name: lab", "  cluster: {server: \"" + lab.k8sAddr() + "\", insecure-skip-tls-verify: true}",
                "contexts:", "- name: lab", "  context: {cluster: lab, user: admin}",
                "users:", "- name: admin", "  user: {client-certificate: client.crt, client-key: client.key}", ""));
        String hostPort = lab.k8sAddr().replaceFirst("^https://", "");
        Cli.Result shown = Cli.run(java.util.List.of("openssl", "s_client", "-connect", hostPort, "-showcerts"), java.util.Map.of(), dir, "");
        String chain = shown.stdout();
        String last = chain.substring(chain.lastIndexOf("-----BEGIN CERTIFICATE-----"), chain.lastIndexOf("-----END CERTIFICATE-----") + 25);
        Path lastPem = Files.writeString(dir.resolve("last.pem"), last + "\n");
        String expected = KubeVaultStepsSupport.tool(lab, dir, "openssl", "x509", "-in", lastPem.toString(), "-noout", "-fingerprint", "-sha256")
                .strip().replaceFirst("^(?i)sha256 Fingerprint=", "");
        try (Kube k = Kube.connect(opts(file, null))) {
            ClusterId id = k.identity();
            assertThat(id.caFrom()).isEqualTo(ClusterId.FROM_SERVER);
            assertThat(id.caSha256()).isEqualTo(expected);
            assertThat(id.server()).isEqualTo(lab.k8sAddr());
            assertThat(id.context()).isEqualTo("lab");
        }
        try (Kube k = Kube.connect(opts(kubeconfig(lab, tmp.resolve("with-ca"), "k8s-ca.crt", ""), null))) {
            assertThat(k.identity().caFrom()).isEqualTo(ClusterId.FROM_KUBECONFIG);
            assertThat(k.identity().caSha256()).isEqualTo(KubeVaultStepsSupport.tool(lab, dir, "openssl", "x509", "-in",
                    lab.k8sCaCert().toString(), "-noout", "-fingerprint", "-sha256").strip().replaceFirst("^(?i)sha256 Fingerprint=", ""));
        }
    }
}
