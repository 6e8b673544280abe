package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * renew-ca against the lab: SoftHSM2 (KEK, root and the root's key), the real kube-apiserver and
 * controller-manager (the rollout makes the new pod; the old one goes only once the new is
 * available), and the kubelet/istiod/plugin stand-ins ({@link IstiodKubelet}: each new pod's postStart
 * hook runs for real, its istiod loads the chain only when its Secrets and plugin allow).
 */
@ExtendWith(LabExtension.class)
class RenewCaTest {
    static final String ROOT_KEY = "mesh-root";
    @TempDir Path tmp;

    /** A running mesh in a namespace of the lab: istiod's Deployment (with the root hook), its Secrets, a signed chain, 3/3. */
    static final class Mesh implements AutoCloseable {
        final Lab lab;
        final Path dir;
        final SoftHsmToken token;
        final String ns;
        final Map<String, String> env = new HashMap<>();
        final Path root;
        final IstiodPods pods;
        final IstiodKubelet kubelet;
        /** A KEK of its own: rotate-ca looks for its ID in every namespace of the cluster. */
        final String kek = java.util.UUID.randomUUID().toString();

        Mesh(Lab lab, Path dir, int days) throws Exception {
            this.lab = lab;
            this.dir = dir;
            token = SoftHsmToken.create(dir);
            ns = lab.freshNamespace();
            env.putAll(token.env());
            env.put("KUBECONFIG", lab.kubeconfig().toString());
            env.put("KEK_ID", kek);
            root = SignCsrTest.hsmRsaRoot(token, dir, ROOT_KEY, "CN=Mesh Root CA,O=Example", Duration.ofDays(3650));
            ok("gen-kek");
            ok("import-ca", "-f", root.toString());
            KubernetesClient k = lab.admin();
            k.configMaps().inNamespace(ns).resource(new ConfigMapBuilder(PluginRootHook.rootConfigMap(Files.readString(root))).editMetadata()
                    .withNamespace(ns).endMetadata().build()).create();
            IstiodStandIn istiod = IstiodStandIn.start(token, kek, IstiodKubelet.TRUST_DOMAIN);
            istiod.writeSecret(k, ns);
            istiod.writeKeySecret(k, ns);
            pods = new IstiodPods(k, dir.resolve("pods"), token.env());
            kubelet = new IstiodKubelet(k, ns, pods, token, istiod, Hsm.DEFAULT_CA_ID).start();
            k.apps().deployments().inNamespace(ns).resource(deployment(ns, kek)).create();
            awaitPods(1);
            ok("decrypt-csr", "--from-secret", "-n", ns, "-o", "csr.pem");
            ok("sign-csr", "--csr", "csr.pem", "--root-cert", root.toString(), "--root-key-label", ROOT_KEY, "--days", String.valueOf(days), "-o", "cert-chain.pem");
            ok("upload-chain", "-f", "cert-chain.pem", "-n", ns);
            awaitRolledOut();
        }

        /** istiod's Deployment as the chart and install-asm's root hook make it, trimmed to what the steps look at. */
        static Deployment deployment(String ns, String kek) {
            Map<String, String> labels = Map.of("app", "istiod", Istio.REV_LABEL, Istio.GUIDE_REVISION);
            return new DeploymentBuilder().withNewMetadata().withName(Istio.istiodDeployment(Istio.GUIDE_REVISION)).withNamespace(ns).withLabels(labels)
                    .endMetadata().withNewSpec().withReplicas(1).withNewSelector().withMatchLabels(labels).endSelector()
                    .withNewStrategy().withType("RollingUpdate").withNewRollingUpdate().withNewMaxSurge("100%").withNewMaxUnavailable("25%")
                    .endRollingUpdate().endStrategy()
                    .withNewTemplate().withNewMetadata().withLabels(labels).endMetadata().withNewSpec()
                    .addNewVolume().withName(PluginRootHook.ROOT_VOLUME).withNewConfigMap().withName(PluginRootHook.ROOT_CONFIGMAP).endConfigMap().endVolume()
                    .addNewContainer().withName("discovery").withImage("gcr.io/gke-release/asm/pilot:1.9.8-asm.6").endContainer()
                    .addNewContainer().withName("hsm-plugin").withImage("thales/k8s-kms-plugin:lab").addNewEnv().withName("KEK_ID").withValue(kek).endEnv()
                    .addNewVolumeMount().withName(PluginRootHook.ROOT_VOLUME).withMountPath(PluginRootHook.ROOT_MOUNT).withReadOnly(true).endVolumeMount()
                    .withNewLifecycle().withNewPostStart().withNewExec().withCommand(KmsPlugin.postStartImportCommand(
                            PluginRootHook.ROOT_MOUNT + "/" + PluginRootHook.ROOT_KEY, Hsm.DEFAULT_CA_ID)).endExec().endPostStart().endLifecycle().endContainer()
                    .addNewContainer().withName("vaultclient").withImage("vaultclient:lab").endContainer()
                    .endSpec().endTemplate().endSpec().build();
        }

        Cli.Result asm(String... args) {
            return Cli.asm(env, dir, args);
        }

        Cli.Result ok(String... args) {
            Cli.Result r = asm(args);
            assertThat(r.exit()).as(String.join(" ", args) + "\n" + r).isZero();
            return r;
        }

        List<Pod> istiodPods() {
            return Istio.istiodPods(lab.admin(), ns);
        }

        void awaitPods(int n) throws InterruptedException {
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (istiodPods().size() < n && System.nanoTime() < deadline) Thread.sleep(200);
            assertThat(istiodPods()).as("pods the controller-manager made").hasSizeGreaterThanOrEqualTo(n);
        }

        void awaitRolledOut() throws InterruptedException {
            long deadline = System.nanoTime() + 90_000_000_000L;
            while (System.nanoTime() < deadline) {
                Deployment d = lab.admin().apps().deployments().inNamespace(ns).withName(Istio.istiodDeployment(Istio.GUIDE_REVISION)).get();
                if (Rollout.done(d) && istiodPods().size() == 1) return;
                Thread.sleep(250);
            }
            throw new AssertionError("istiod did not roll out; the stand-ins said: " + kubelet.said);
        }

        List<X509Certificate> chain() {
            var s = lab.admin().secrets().inNamespace(ns).withName(Istio.CA_CERT_SECRET).get();
            return Pki.certificates(Pki.pemBlocks(new String(Base64.getDecoder().decode(s.getData().get(Istio.CA_CERT_KEY)), StandardCharsets.UTF_8), "s"), "s");
        }

        @Override
        public void close() throws Exception {
            kubelet.close();
        }
    }

    @Test
    void renewsOnlyInsideTheWindowRollsIstiodAndASecondRunDoesNothing(Lab lab) throws Exception {
        try (Mesh m = new Mesh(lab, tmp, 20)) {
            X509Certificate before = m.chain().get(0);
            String oldPod = m.istiodPods().get(0).getMetadata().getName();
            int copies = IstiodPods.copies(m.token.env(), Hsm.DEFAULT_CA_ID);

            Cli.Result outside = m.ok("renew-ca", "-n", m.ns, "--root-key-label", ROOT_KEY, "--renew-before", "10d", "--json");
            assertThat(outside.stdout()).contains("\"changed\" : false").contains("\"renewed\" : false");
            Cli.Result dry = m.ok("renew-ca", "-n", m.ns, "--root-key-label", ROOT_KEY, "--dry-run");
            assertThat(dry.stdout()).contains("would sign istiod's CSR again").contains("would restart Deployment(s) istiod-asm-198-6");
            assertThat(m.chain().get(0)).as("--dry-run changes nothing").isEqualTo(before);
            assertThat(m.istiodPods().get(0).getMetadata().getName()).isEqualTo(oldPod);

            Cli.Result renewed = m.ok("renew-ca", "-n", m.ns, "--root-key-label", ROOT_KEY);
            X509Certificate after = m.chain().get(0);
            assertThat(after).isNotEqualTo(before);
            assertThat(after.getPublicKey()).as("the same key").isEqualTo(before.getPublicKey());
            assertThat(after.getNotAfter().toInstant()).isAfter(Instant.now().plus(Duration.ofDays(360)));
            assertThat(m.chain().get(1)).as("the same root").isEqualTo(Pki.single(m.root, "root"));
            m.awaitRolledOut();
            Pod now = m.istiodPods().get(0);
            assertThat(now.getMetadata().getName()).as("a new pod, made by the rollout").isNotEqualTo(oldPod);
            assertThat(m.kubelet.state(now)).isEqualTo("loaded");
            assertThat(IstiodPods.copies(m.token.env(), Hsm.DEFAULT_CA_ID)).as("the new pod's hook imported the root").isEqualTo(copies + 1);
            assertThat(renewed.stdout()).contains("replaced the chain in Secret " + m.ns + "/istio-ca-cert")
                    .contains("pod " + now.getMetadata().getName() + ": discovery ready");

            Cli.Result again = m.ok("renew-ca", "-n", m.ns, "--root-key-label", ROOT_KEY, "--json");
            assertThat(again.stdout()).contains("\"changed\" : false");
            assertThat(m.chain().get(0)).isEqualTo(after);
            assertThat(m.istiodPods().get(0).getMetadata().getName()).isEqualTo(now.getMetadata().getName());
        }
    }

    @Test
    void aCsrOfAnotherKeyIsRefusedAndNothingChanges(Lab lab) throws Exception {
        try (Mesh m = new Mesh(lab, tmp, 20)) {
            X509Certificate before = m.chain().get(0);
            KubernetesClient k = lab.admin();
            k.secrets().inNamespace(m.ns).withName(Istio.CSR_SECRET).delete();
            k.secrets().inNamespace(m.ns).withName(Istio.CSR_SECRET).waitUntilCondition(s -> s == null, 30, java.util.concurrent.TimeUnit.SECONDS);
            IstiodStandIn.start(m.token, m.kek, IstiodKubelet.TRUST_DOMAIN).writeSecret(k, m.ns);
            Cli.Result r = m.asm("renew-ca", "-n", m.ns, "--root-key-label", ROOT_KEY, "--force");
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            assertThat(r.stderr()).contains("is for another key than the certificate in istio-ca-cert").contains("rotate-ca");
            assertThat(m.chain().get(0)).isEqualTo(before);

            Cli.Result none = m.asm("renew-ca", "-n", m.ns, "--root-key-label", "no-such-key", "--days", "0");
            assertThat(none.exit()).isEqualTo(2);
        }
    }
}
