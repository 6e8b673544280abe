package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * rotate-ca against the lab (SoftHSM2, kube-apiserver and controller-manager, the istiod stand-ins of
 * {@link IstiodKubelet}): the old Secrets are kept in a backup until the new chain is loaded, the old
 * pod serves until the new one is ready, a second run goes on where the first stopped, and each unsafe
 * case is refused with nothing changed.
 */
@ExtendWith(LabExtension.class)
class RotateCaTest {
    @TempDir Path tmp;

    @Test
    void aNewKeyIsMadeSignedAndLoadedAndTheBackupGoesOnlyThen(Lab lab) throws Exception {
        try (RenewCaTest.Mesh m = new RenewCaTest.Mesh(lab, tmp, 365)) {
            KubernetesClient k = lab.admin();
            X509Certificate oldCa = m.chain().get(0);
            String oldPod = m.istiodPods().get(0).getMetadata().getName();

            Cli.Result dry = m.ok("rotate-ca", "-n", m.ns, "--dry-run");
            assertThat(dry.stdout()).contains("would delete istio-ca-cert, then istio-ca-cert-csr, then istio-ca-encrypted-key");
            assertThat(backups(k, m.ns)).isEmpty();

            Cli.Result started = m.ok("rotate-ca", "-n", m.ns);
            assertThat(started.stdout()).contains("Next: the security administrator signs the new CSR");
            List<Secret> backups = backups(k, m.ns);
            assertThat(backups).hasSize(1);
            assertThat(backups.get(0).getData()).containsKeys("istio-ca-cert.cert-chain.pem", "istio-ca-cert-csr.encrypted-csr",
                    "istio-ca-encrypted-key.encrypted-skey");
            // the new pod makes a new key and waits for its chain; the old one keeps serving meanwhile
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (k.secrets().inNamespace(m.ns).withName(Istio.ENCRYPTED_KEY_SECRET).get() == null && System.nanoTime() < deadline) Thread.sleep(250);
            assertThat(m.istiodPods().stream().map(p -> p.getMetadata().getName())).contains(oldPod);

            // unsafe while pending: deleting the KEK the new key is under, starting another rotation
            Cli.Result pending = m.ok("rotate-ca", "-n", m.ns, "--json");
            assertThat(pending.stdout()).contains("\"changed\" : false");
            Cli.Result again = m.asm("rotate-ca", "-n", m.ns, "--new-kek");
            assertThat(again.exit()).as(again.toString()).isEqualTo(2);
            assertThat(again.stderr()).contains("a rotation is pending");

            m.ok("decrypt-csr", "--from-secret", "-n", m.ns, "-o", "csr.pem", "--replace");
            m.ok("sign-csr", "--csr", "csr.pem", "--root-cert", m.root.toString(), "--root-key-label", RenewCaTest.ROOT_KEY, "-o", "cert-chain.pem", "--replace");
            m.ok("upload-chain", "-f", "cert-chain.pem", "-n", m.ns);
            m.awaitRolledOut();
            X509Certificate newCa = m.chain().get(0);
            assertThat(newCa.getPublicKey()).as("a new CA key").isNotEqualTo(oldCa.getPublicKey());

            Cli.Result keep = m.asm("rotate-ca", "-n", m.ns, "--delete-old-kek");
            assertThat(keep.exit()).as(keep.toString()).isEqualTo(1);
            assertThat(keep.stderr()).contains("is istiod's KEK still");
            assertThat(backups(k, m.ns)).as("a refusal changes nothing").hasSize(1);
            assertThat(IstiodPods.copies(m.token.env(), Hsm.DEFAULT_CA_ID)).isPositive();

            Cli.Result finished = m.ok("rotate-ca", "-n", m.ns);
            assertThat(finished.stdout()).contains("deleted the backup Secret");
            assertThat(backups(k, m.ns)).isEmpty();
            Cli.Result nothing = m.ok("rotate-ca", "-n", m.ns, "--json");
            assertThat(nothing.stdout()).contains("\"changed\" : false").contains("\"rotated\" : false");
            assertThat(m.chain().get(0)).isEqualTo(newCa);
        }
    }

    @Test
    void nothingToRotateIsRefusedAndAKekStillNamedSomewhereIsKept(Lab lab) throws Exception {
        try (RenewCaTest.Mesh m = new RenewCaTest.Mesh(lab, tmp, 365)) {
            KubernetesClient k = lab.admin();
            String empty = lab.freshNamespace();
            Cli.Result none = m.asm("rotate-ca", "-n", empty);
            assertThat(none.exit()).as(none.toString()).isEqualTo(1);
            assertThat(none.stderr()).contains("has no CA key and chain to rotate");

            Cli.Result start = m.asm("rotate-ca", "-n", m.ns, "--delete-old-kek");
            assertThat(start.exit()).isEqualTo(2);
            assertThat(backups(k, m.ns)).isEmpty();

            // --new-kek: install-asm with the new KEK ID rolls istiod, whose new pod makes its key under it
            Cli.Result started = m.ok("rotate-ca", "-n", m.ns, "--new-kek", "--json");
            String newKek = tools.jackson.databind.json.JsonMapper.builder().build().readTree(started.stdout()).path("newKekId").asString();
            assertThat(newKek).isNotBlank().isNotEqualTo(m.kek);
            assertThat(started.stdout()).contains("install-asm --kek-id " + newKek);
            k.apps().deployments().inNamespace(m.ns).withName(Istio.istiodDeployment(Istio.GUIDE_REVISION)).edit(d -> new io.fabric8.kubernetes.api.model.apps.DeploymentBuilder(d)
                    .editSpec().editTemplate().editSpec().editMatchingContainer(c -> c.getName().equals("hsm-plugin")).editMatchingEnv(e -> e.getName().equals("KEK_ID"))
                    .withValue(newKek).endEnv().endContainer().endSpec().endTemplate().endSpec().build());
            m.ok("decrypt-csr", "--from-secret", "-n", m.ns, "--kek-id", newKek, "-o", "csr.pem", "--replace");
            m.ok("sign-csr", "--csr", "csr.pem", "--root-cert", m.root.toString(), "--root-key-label", RenewCaTest.ROOT_KEY, "-o", "cert-chain.pem", "--replace");
            m.ok("upload-chain", "-f", "cert-chain.pem", "-n", m.ns, "--kek-id", newKek);
            m.awaitRolledOut();

            // another istiod of the kubeconfig's clusters still has its key under the old KEK: it stays
            String other = lab.freshNamespace();
            k.secrets().inNamespace(other).resource(new io.fabric8.kubernetes.api.model.SecretBuilder().withNewMetadata().withName(Istio.ENCRYPTED_KEY_SECRET)
                    .endMetadata().addToStringData("kek-id", m.kek).build()).create();
            Cli.Result refused = m.asm("rotate-ca", "-n", m.ns, "--delete-old-kek");
            assertThat(refused.exit()).as(refused + "\n" + m.kubelet.said + "\n" + m.istiodPods().stream().map(p -> p.getStatus().toString()).toList()).isEqualTo(1);
            assertThat(refused.stderr()).contains("the old KEK " + m.kek + " still encrypts a CA key").contains(other + "/" + Istio.ENCRYPTED_KEY_SECRET);
            assertThat(backups(k, m.ns)).hasSize(1);
            assertThat(keks(m)).contains(hex(m.kek));

            k.secrets().inNamespace(other).withName(Istio.ENCRYPTED_KEY_SECRET).delete();
            k.secrets().inNamespace(other).withName(Istio.ENCRYPTED_KEY_SECRET).waitUntilCondition(s -> s == null, 30, java.util.concurrent.TimeUnit.SECONDS);
            Cli.Result done = m.ok("rotate-ca", "-n", m.ns, "--delete-old-kek");
            assertThat(done.stdout()).contains("destroyed the old KEK " + m.kek);
            assertThat(backups(k, m.ns)).isEmpty();
            assertThat(keks(m)).doesNotContain(hex(m.kek)).contains(hex(newKek));
        }
    }

    /**
     * A rotate-ca run stopped after its backup and the deletion of chain and CSR, before the key: the real istiod
     * would then write a CSR for the old key, so the next run must finish the removal and restart, not wait.
     */
    @Test
    void aRotationCutShortBeforeTheKeyWentIsFinishedWithANewKey(Lab lab) throws Exception {
        try (RenewCaTest.Mesh m = new RenewCaTest.Mesh(lab, tmp, 365)) {
            KubernetesClient k = lab.admin();
            X509Certificate oldCa = m.chain().get(0);
            String oldSkey = k.secrets().inNamespace(m.ns).withName(Istio.ENCRYPTED_KEY_SECRET).get().getData().get("encrypted-skey");
            cutShortBeforeTheKey(m, null);

            Cli.Result dry = m.ok("rotate-ca", "-n", m.ns, "--dry-run");
            assertThat(dry.stdout()).contains("was cut short").contains("would delete " + Istio.ENCRYPTED_KEY_SECRET);
            assertThat(k.secrets().inNamespace(m.ns).withName(Istio.ENCRYPTED_KEY_SECRET).get()).isNotNull();
            Cli.Result resumed = m.ok("rotate-ca", "-n", m.ns);
            assertThat(resumed.stdout()).contains("was cut short").contains("deleted Secret " + m.ns + "/" + Istio.ENCRYPTED_KEY_SECRET)
                    .contains("restarted istiod");
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (k.secrets().inNamespace(m.ns).withName(Istio.CSR_SECRET).get() == null && System.nanoTime() < deadline) Thread.sleep(250);
            assertThat(k.secrets().inNamespace(m.ns).withName(Istio.ENCRYPTED_KEY_SECRET).get().getData().get("encrypted-skey"))
                    .as("a new key, not a CSR for the old one").isNotEqualTo(oldSkey);

            m.ok("decrypt-csr", "--from-secret", "-n", m.ns, "-o", "csr.pem", "--replace");
            m.ok("sign-csr", "--csr", "csr.pem", "--root-cert", m.root.toString(), "--root-key-label", RenewCaTest.ROOT_KEY, "-o", "cert-chain.pem", "--replace");
            m.ok("upload-chain", "-f", "cert-chain.pem", "-n", m.ns);
            m.awaitRolledOut();
            assertThat(m.chain().get(0).getPublicKey()).isNotEqualTo(oldCa.getPublicKey());
            assertThat(m.ok("rotate-ca", "-n", m.ns).stdout()).contains("deleted the backup Secret");
            assertThat(backups(k, m.ns)).isEmpty();
        }
    }

    /**
     * What a rotate-ca run stopped after its backup and the deletion of chain and CSR leaves: the backup (naming
     * `newKek` when it is a --new-kek rotation), and istio-ca-encrypted-key still there.
     */
    static void cutShortBeforeTheKey(RenewCaTest.Mesh m, String newKek) {
        KubernetesClient k = m.lab.admin();
        java.util.Map<String, String> data = new java.util.LinkedHashMap<>();
        for (String name : List.of(Istio.CA_CERT_SECRET, Istio.CSR_SECRET, Istio.ENCRYPTED_KEY_SECRET))
            k.secrets().inNamespace(m.ns).withName(name).get().getData().forEach((f, v) -> data.put(name + "." + f, v));
        var backup = new io.fabric8.kubernetes.api.model.SecretBuilder().withNewMetadata().withName(CaBackup.PREFIX + "20261201-000000")
                .addToLabels(CaBackup.LABEL, "pending").addToAnnotations(CaBackup.OLD_KEK, m.kek).endMetadata().withData(data);
        if (newKek != null) backup.editMetadata().addToAnnotations(CaBackup.NEW_KEK, newKek).endMetadata();
        k.secrets().inNamespace(m.ns).resource(backup.build()).create();
        for (String name : List.of(Istio.CA_CERT_SECRET, Istio.CSR_SECRET)) {
            k.secrets().inNamespace(m.ns).withName(name).delete();
            k.secrets().inNamespace(m.ns).withName(name).waitUntilCondition(s -> s == null, 30, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    /**
     * A --new-kek rotation cut short before the key went: istiod is restarted by install-asm --kek-id NEW, not
     * here, so the resume needs no istiod Deployment (here there is none: it is being reinstalled).
     */
    @Test
    void aNewKekRotationCutShortIsResumedWithoutLookingForIstiod(Lab lab) throws Exception {
        try (RenewCaTest.Mesh m = new RenewCaTest.Mesh(lab, tmp, 365)) {
            KubernetesClient k = lab.admin();
            String newKek = java.util.UUID.randomUUID().toString();
            cutShortBeforeTheKey(m, newKek);
            k.apps().deployments().inNamespace(m.ns).withName(Istio.istiodDeployment(Istio.GUIDE_REVISION)).delete();
            k.apps().deployments().inNamespace(m.ns).withName(Istio.istiodDeployment(Istio.GUIDE_REVISION))
                    .waitUntilCondition(d -> d == null, 30, java.util.concurrent.TimeUnit.SECONDS);

            Cli.Result dry = m.ok("rotate-ca", "-n", m.ns, "--dry-run");
            assertThat(dry.stdout()).contains("was cut short").contains("would delete " + Istio.ENCRYPTED_KEY_SECRET).doesNotContain("restart istiod");
            Cli.Result resumed = m.ok("rotate-ca", "-n", m.ns);
            assertThat(resumed.stdout()).contains("deleted Secret " + m.ns + "/" + Istio.ENCRYPTED_KEY_SECRET)
                    .contains("Next: install-asm --kek-id " + newKek).doesNotContain("restarted istiod");
            assertThat(k.secrets().inNamespace(m.ns).withName(Istio.ENCRYPTED_KEY_SECRET).get()).isNull();
            assertThat(backups(k, m.ns)).hasSize(1);
        }
    }

    /**
     * A --new-kek rotation whose istiod restarted (an eviction, a drain) before install-asm --kek-id NEW: that pod
     * still had the old KEK in its environment and made its new key under it, and istiod keeps reading it under the
     * Secret's kek-id. The finish says so (text, warnings, --json) instead of a plain "rotated", and keeps the old KEK.
     */
    @Test
    void aNewKekRotationWhoseIstiodRestartedTooEarlySaysTheKeyStayedUnderTheOldKek(Lab lab) throws Exception {
        try (RenewCaTest.Mesh m = new RenewCaTest.Mesh(lab, tmp, 365)) {
            KubernetesClient k = lab.admin();
            var json = tools.jackson.databind.json.JsonMapper.builder().build();
            String newKek = json.readTree(m.ok("rotate-ca", "-n", m.ns, "--new-kek", "--json").stdout()).path("newKekId").asString();
            k.apps().deployments().inNamespace(m.ns).withName(Istio.istiodDeployment(Istio.GUIDE_REVISION)).edit(d -> new io.fabric8.kubernetes.api.model.apps.DeploymentBuilder(d)
                    .editSpec().editTemplate().editOrNewMetadata().addToAnnotations(Rollout.RESTARTED_AT, java.time.Instant.now().toString()).endMetadata()
                    .endTemplate().endSpec().build());
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (k.secrets().inNamespace(m.ns).withName(Istio.CSR_SECRET).get() == null && System.nanoTime() < deadline) Thread.sleep(250);
            assertThat(CaBackup.value(k.secrets().inNamespace(m.ns).withName(Istio.ENCRYPTED_KEY_SECRET).get(), "kek-id")).isEqualTo(m.kek);
            m.ok("decrypt-csr", "--from-secret", "-n", m.ns, "-o", "csr.pem", "--replace");
            m.ok("sign-csr", "--csr", "csr.pem", "--root-cert", m.root.toString(), "--root-key-label", RenewCaTest.ROOT_KEY, "-o", "cert-chain.pem", "--replace");
            m.ok("upload-chain", "-f", "cert-chain.pem", "-n", m.ns);
            m.awaitRolledOut();

            String underOld = "istiod's new CA key is under the old KEK " + m.kek + ", not the new KEK " + newKek;
            Cli.Result refused = m.asm("rotate-ca", "-n", m.ns, "--delete-old-kek");
            assertThat(refused.exit()).as(refused.toString()).isEqualTo(1);
            assertThat(refused.stderr()).contains(underOld).contains("finish without --delete-old-kek");
            assertThat(keks(m)).contains(hex(m.kek));
            assertThat(m.ok("rotate-ca", "-n", m.ns, "--dry-run").stderr()).contains("warning: " + underOld);
            assertThat(backups(k, m.ns)).hasSize(1);

            var finished = json.readTree(m.ok("rotate-ca", "-n", m.ns, "--json").stdout());
            assertThat(finished.path("rotated").asBoolean()).isTrue();
            assertThat(finished.path("kekId").asString()).isEqualTo(m.kek);
            assertThat(finished.path("newKekId").asString()).isEqualTo(newKek);
            assertThat(finished.path("warnings").toString()).contains(underOld);
            assertThat(finished.path("next").asString()).startsWith("install-asm --kek-id " + newKek + ", then rotate-ca --again");
            assertThat(backups(k, m.ns)).isEmpty();
        }
    }

    static String keks(RenewCaTest.Mesh m) {
        return m.token.tool("--token-label", m.token.label, "--login", "--pin", "env:USER_PIN", "--list-objects", "--type", "secrkey");
    }

    static String hex(String id) {
        return java.util.HexFormat.of().formatHex(id.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    }

    static List<Secret> backups(KubernetesClient k, String ns) {
        return k.secrets().inNamespace(ns).withLabel(CaBackup.LABEL).list().getItems();
    }
}
