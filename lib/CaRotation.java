package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Supplier;

/**
 * A rotation of istiod's CA key in one namespace (rotate-ca): started (the three Secrets backed up and removed,
 * istiod restarted or reinstalled under a new KEK), resumed when a run stopped before the key went, finished once
 * istiod loaded its new chain. The state between runs is the backup Secret ({@link CaBackup}).
 */
public final class CaRotation {
    private final Kube k;
    private final Out out;
    private final String ns, revision;
    private final Supplier<Hsm> hsm;

    /** `revision`: restart only istiod of it (null: every istiod Deployment); `hsm`: the HSM token, opened on first use. */
    public CaRotation(Kube k, Out out, String ns, String revision, Supplier<Hsm> hsm) {
        this.k = k;
        this.out = out;
        this.ns = ns;
        this.revision = revision;
        this.hsm = hsm;
    }

    /**
     * Backs up and removes istiod's CA Secrets, then restarts istiod, or with `newKek` generates a new KEK (`kekId`
     * when given and not the old one, else a random UUID) and says to reinstall istiod under it. A key rotate-ca
     * made already is rotated again only when `again`.
     */
    public void start(boolean again, boolean newKek, String kekId) throws Exception {
        Map<String, Secret> held = CaBackup.held(k, ns);
        Secret key = CaBackup.requireRunningCa(held, ns);
        String rotatedAt = CaBackup.rotatedAt(key);
        if (rotatedAt != null && !again) {
            out.put("rotated", false).put("rotatedAt", rotatedAt);
            out.say("istiod's CA key was made by rotate-ca at %s: nothing to do (--again rotates it once more)", rotatedAt);
            return;
        }
        String oldKek = CaBackup.value(key, "kek-id");
        // a rotation under a new KEK restarts istiod through install-asm, not here
        List<Deployment> deployments = newKek ? List.of() : Rollout.deployments(k, ns, revision);
        String newKekId = newKek ? (kekId != null && !kekId.equals(oldKek) ? kekId : UUID.randomUUID().toString()) : null;
        out.put("oldKekId", oldKek);
        String backup = CaBackup.newName();
        if (out.dryRun()) {
            if (newKek) out.change("generate a new AES-256 KEK on the HSM");
            out.change("copy Secrets " + String.join(", ", CaBackup.SECRETS) + " into Secret " + ns + "/" + backup);
            out.change("delete " + String.join(", then ", CaBackup.SECRETS) + " in " + ns);
            out.change(newKek ? "tell you to run install-asm with the new KEK ID (it restarts istiod)" : "restart istiod (rollout): it makes a new key and CSR");
            return;
        }
        if (newKek) generateKek(newKekId);
        CaBackup.moveAside(k, out, ns, backup, held, oldKek, newKekId);
        restartOrReinstall(deployments, newKekId);
    }

    private void generateKek(String id) throws Exception {
        Hsm token = hsm.get();
        if (token == null) throw Fail.failed("the embedded HSM token does not exist yet", "run gen-kek first");
        if (!token.byId(Hsm.ascii(id)).isEmpty()) throw Fail.badInput("token '" + token.tokenLabel + "' already holds an object with ID " + id, "give another --kek-id, or none");
        token.generateKek(id);
        out.put("newKekId", id);
        out.change("generated the new KEK " + id + " on token '" + token.tokenLabel + "'");
    }

    /** After the Secrets went: a rollout (new pods make a new key and CSR), or under a new KEK, install-asm with it. */
    private void restartOrReinstall(List<Deployment> deployments, String newKekId) {
        if (newKekId != null) {
            out.next("install-asm --kek-id " + newKekId + " (istiod restarts under the new KEK and writes a new CSR), then decrypt-csr --from-secret,"
                    + " sign-csr, upload-chain, and rotate-ca again to finish");
            return;
        }
        Rollout.restart(k, deployments);
        out.change("restarted istiod (rollout; the old pods keep serving with the old key until the new ones are ready)");
        out.next("the security administrator signs the new CSR: decrypt-csr --from-secret, sign-csr, upload-chain; then rotate-ca again to finish");
    }

    /**
     * Goes on with the rotation of `backup`: resumes it when a run stopped before the key went, says what istiod
     * has still to do, or once every pod loaded the new chain ends it (the backup deleted; with `deleteOldKek`,
     * the old KEK destroyed unless a cluster of `kube`'s kubeconfig still names it).
     */
    public void goOn(Secret backup, boolean deleteOldKek, Opts.Kube kube) throws Exception {
        String name = backup.getMetadata().getName(), oldKek = CaBackup.oldKek(backup);
        Map<String, Secret> now = CaBackup.held(k, ns);
        if (CaBackup.oldKeyStill(backup, now)) {
            resume(name, CaBackup.newKek(backup), now);
            return;
        }
        if (CaBackup.Waiting.told(out, CaBackup.waiting(k, ns, revision, name, now))) return;
        String kekId = CaBackup.value(now.get(Istio.ENCRYPTED_KEY_SECRET), "kek-id"), wanted = CaBackup.newKek(backup);
        out.put("kekId", kekId);
        if (wanted != null) out.put("newKekId", wanted);
        // istiod makes a key under the KEK of its environment, and reads it back under the Secret's kek-id:
        // one that restarted before install-asm --kek-id NEW made its new key under the old KEK, and keeps it
        String underOld = wanted == null || wanted.equals(kekId) ? null
                : "istiod's new CA key is under the old KEK " + kekId + ", not the new KEK " + wanted + ": istiod restarted before install-asm --kek-id " + wanted;
        String moveIt = "install-asm --kek-id " + wanted + ", then rotate-ca --again: istiod makes its next key under the new KEK";
        if (deleteOldKek && underOld != null) throw Fail.failed(underOld, "finish without --delete-old-kek; then " + moveIt);
        if (deleteOldKek) CaBackup.requireKekUnused(kube, oldKek, kekId, name);
        if (underOld != null) out.warn(underOld);
        if (out.dryRun()) {
            out.change("delete the backup Secret " + ns + "/" + name + (deleteOldKek ? " and the old KEK " + oldKek : ""));
            return;
        }
        CaBackup.finish(k, out, ns, name, kekId);
        if (underOld != null) out.next(moveIt);
        if (deleteOldKek) {
            Hsm token = hsm.get();
            token.destroy(token.kek(oldKek).handle());
            out.change("destroyed the old KEK " + oldKek + " on token '" + token.tokenLabel + "'");
        }
    }

    /** A run stopped after the backup but before the key went: the rest is deleted and istiod restarted now (under a new KEK, by install-asm). */
    private void resume(String name, String newKekId, Map<String, Secret> held) {
        out.say("rotation pending (backup %s) was cut short: istiod still has its old CA key", name);
        List<Deployment> deployments = newKekId != null ? List.of() : Rollout.deployments(k, ns, revision);
        if (out.dryRun()) {
            out.change("delete " + String.join(", then ", CaBackup.SECRETS.stream().filter(s -> held.get(s) != null).toList()) + " in " + ns);
            if (newKekId == null) out.change("restart istiod (rollout): it makes a new key and CSR");
            return;
        }
        CaBackup.removeInOrder(k, out, ns, held);
        restartOrReinstall(deployments, newKekId);
    }
}
