///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "rotate-ca", mixinStandardHelpOptions = true,
        description = "Rotate the Istio CA key: keep istiod's three CA Secrets in a backup Secret istio-ca-backup-<time>, remove them"
                + " (istio-ca-cert, then istio-ca-cert-csr, then istio-ca-encrypted-key), and restart istiod, which makes a new"
                + " key and CSR. The security administrator then signs it (decrypt-csr, sign-csr, upload-chain); run rotate-ca"
                + " again to finish: once istiod loaded the new chain, the backup goes. --new-kek makes a new KEK first.")
class RotateCa extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.IstioNamespace ns;
    @Mixin Opts.Kek kek;

    @Option(names = "--new-kek", description = "Make a new KEK first (as gen-kek --new); install-asm with its ID then restarts istiod under it.")
    boolean newKek;

    @Option(names = "--delete-old-kek", description = "When finishing, destroy the old KEK in the HSM, unless a cluster of the kubeconfig still names it.")
    boolean deleteOldKek;

    @Option(names = "--again", description = "Rotate a key that rotate-ca made already.")
    boolean again;

    @Option(names = "--revision", paramLabel = "REV", converter = Opts.RevisionConverter.class, description = "Restart only istiod of this revision (default: every istiod Deployment).")
    String revision;

    @Override
    protected void run() throws Exception {
        Kube k = kube();
        out.put("namespace", ns.name);
        Secret backup = CaBackup.pending(k, ns.name);
        if (backup == null) start(k);
        else finish(k, backup);
    }

    /** Backs up and removes istiod's CA Secrets, then restarts istiod (or says to reinstall it under a new KEK). */
    private void start(Kube k) throws Exception {
        if (deleteOldKek) throw Fail.badInput("--delete-old-kek goes with finishing a rotation", "start it without; give --delete-old-kek to the run that finishes it");
        Map<String, Secret> held = CaBackup.held(k, ns.name);
        Secret key = CaBackup.requireRunningCa(held, ns.name);
        String rotatedAt = CaBackup.rotatedAt(key);
        if (rotatedAt != null && !again) {
            out.put("rotated", false).put("rotatedAt", rotatedAt);
            out.say("istiod's CA key was made by rotate-ca at %s: nothing to do (--again rotates it once more)", rotatedAt);
            return;
        }
        String oldKek = CaBackup.value(key, "kek-id");
        List<Deployment> deployments = Rollout.deployments(k, ns.name, revision);
        String newKekId = newKek ? (kek.id != null && !kek.id.equals(oldKek) ? kek.id : UUID.randomUUID().toString()) : null;
        out.put("oldKekId", oldKek);
        String backup = CaBackup.newName();
        if (out.dryRun()) {
            if (newKek) out.change("generate a new AES-256 KEK on the HSM");
            out.change("copy Secrets " + String.join(", ", CaBackup.SECRETS) + " into Secret " + ns.name + "/" + backup);
            out.change("delete " + String.join(", then ", CaBackup.SECRETS) + " in " + ns.name);
            out.change(newKek ? "tell you to run install-asm with the new KEK ID (it restarts istiod)" : "restart istiod (rollout): it makes a new key and CSR");
            return;
        }
        if (newKek) {
            Hsm hsm = hsm();
            if (hsm == null) throw Fail.failed("the embedded HSM token does not exist yet", "run gen-kek first");
            if (!hsm.byId(Hsm.ascii(newKekId)).isEmpty()) throw Fail.badInput("token '" + hsm.tokenLabel + "' already holds an object with ID " + newKekId, "give another --kek-id, or none");
            hsm.generateKek(newKekId);
            out.put("newKekId", newKekId);
            out.change("generated the new KEK " + newKekId + " on token '" + hsm.tokenLabel + "'");
        }
        CaBackup.moveAside(k, out, ns.name, backup, held, oldKek, newKekId);
        restartOrReinstall(k, deployments, newKekId);
    }

    /** After the Secrets went: a rollout (new pods make a new key and CSR), or under a new KEK, install-asm with it. */
    private void restartOrReinstall(Kube k, List<Deployment> deployments, String newKekId) {
        if (newKekId != null) {
            out.next("install-asm --kek-id " + newKekId + " (istiod restarts under the new KEK and writes a new CSR), then decrypt-csr --from-secret,"
                    + " sign-csr, upload-chain, and rotate-ca again to finish");
            return;
        }
        Rollout.restart(k, deployments);
        out.change("restarted istiod (rollout; the old pods keep serving with the old key until the new ones are ready)");
        out.next("the security administrator signs the new CSR: decrypt-csr --from-secret, sign-csr, upload-chain; then rotate-ca again to finish");
    }

    /** A run stopped after the backup but before the key went: the rest is deleted and istiod restarted now. */
    private void resume(Kube k, String name, Secret backup, Map<String, Secret> held) {
        out.say("rotation pending (backup %s) was cut short: istiod still has its old CA key", name);
        List<Deployment> deployments = Rollout.deployments(k, ns.name, revision);
        if (out.dryRun()) {
            out.change("delete " + String.join(", then ", CaBackup.SECRETS.stream().filter(s -> held.get(s) != null).toList()) + " in " + ns.name);
            if (CaBackup.newKek(backup) == null) out.change("restart istiod (rollout): it makes a new key and CSR");
            return;
        }
        CaBackup.removeInOrder(k, out, ns.name, held);
        restartOrReinstall(k, deployments, CaBackup.newKek(backup));
    }

    /** A rotation is pending: done once istiod's new chain is loaded in every pod; then the backup (and, if asked, the old KEK) goes. */
    private void finish(Kube k, Secret backup) throws Exception {
        String name = backup.getMetadata().getName(), oldKek = CaBackup.oldKek(backup);
        out.put("backup", name).put("oldKekId", oldKek);
        if (newKek) throw Fail.badInput("a rotation is pending (backup " + name + "): --new-kek starts one", "finish it first: rotate-ca");
        Map<String, Secret> now = CaBackup.held(k, ns.name);
        if (CaBackup.oldKeyStill(backup, now)) {
            resume(k, name, backup, now);
            return;
        }
        if (CaBackup.Waiting.told(out, CaBackup.waiting(k, ns.name, revision, name, now))) return;
        String newKekId = CaBackup.value(now.get(Istio.ENCRYPTED_KEY_SECRET), "kek-id");
        if (deleteOldKek) CaBackup.requireKekUnused(kube, oldKek, newKekId, name);
        if (out.dryRun()) {
            out.change("delete the backup Secret " + ns.name + "/" + name + (deleteOldKek ? " and the old KEK " + oldKek : ""));
            return;
        }
        CaBackup.finish(k, out, ns.name, name, newKekId);
        if (deleteOldKek) {
            Hsm hsm = hsm();
            hsm.destroy(hsm.kek(oldKek).handle());
            out.change("destroyed the old KEK " + oldKek + " on token '" + hsm.tokenLabel + "'");
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new RotateCa()).execute(args));
    }
}
