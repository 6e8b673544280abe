///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
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

    static final String BACKUP_PREFIX = "istio-ca-backup-", BACKUP_LABEL = "asm-hsm/ca-backup", ROTATED_AT = "asm-hsm/rotated-at";
    /** The Secrets istiod reads at start-up, in the order they are removed: the chain first, the key it certifies last. */
    static final List<String> SECRETS = List.of(Istio.CA_CERT_SECRET, Istio.CSR_SECRET, Istio.ENCRYPTED_KEY_SECRET);

    @Override
    protected void run() throws Exception {
        if (revision != null) Istio.requireRevision(revision);
        Kube k = kube();
        var secrets = k.client.secrets().inNamespace(ns.name);
        List<Secret> backups = k.call(() -> secrets.withLabel(BACKUP_LABEL).list().getItems(), "list the backup Secrets in " + ns.name);
        out.put("namespace", ns.name);
        if (backups.size() > 1)
            throw Fail.failed(backups.size() + " rotations are pending in " + ns.name + ": " + backups.stream().map(s -> s.getMetadata().getName()).toList(),
                    "keep the one of the key istiod ran with; delete the others (kubectl delete secret -n " + ns.name + ")");
        if (backups.isEmpty()) start(k);
        else finish(k, backups.get(0));
    }

    /** Backs up and removes istiod's CA Secrets, then restarts istiod (or says to reinstall it under a new KEK). */
    private void start(Kube k) throws Exception {
        if (deleteOldKek) throw Fail.badInput("--delete-old-kek goes with finishing a rotation", "start it without; give --delete-old-kek to the run that finishes it");
        Map<String, Secret> held = new LinkedHashMap<>();
        for (String name : SECRETS) held.put(name, k.call(() -> k.client.secrets().inNamespace(ns.name).withName(name).get(), "read Secret " + name));
        Secret key = held.get(Istio.ENCRYPTED_KEY_SECRET);
        if (key == null || held.get(Istio.CA_CERT_SECRET) == null)
            throw Fail.failed("istiod in " + ns.name + " has no CA key and chain to rotate (Secrets " + Istio.ENCRYPTED_KEY_SECRET + " and "
                    + Istio.CA_CERT_SECRET + ")", "finish the first signing (decrypt-csr, sign-csr, upload-chain); rotate-ca is for a running CA");
        String rotatedAt = key.getMetadata().getAnnotations() == null ? null : key.getMetadata().getAnnotations().get(ROTATED_AT);
        if (rotatedAt != null && !again) {
            out.put("rotated", false).put("rotatedAt", rotatedAt);
            out.say("istiod's CA key was made by rotate-ca at %s: nothing to do (--again rotates it once more)", rotatedAt);
            return;
        }
        String oldKek = value(key, "kek-id");
        List<Deployment> deployments = k.call(() -> Istio.istiodDeployments(k.client, ns.name, revision), "list istiod's Deployments");
        if (deployments.isEmpty()) throw Fail.failed("no istiod Deployment in " + ns.name, "install istiod first (install-asm)");
        String newKekId = newKek ? (kek.id != null && !kek.id.equals(oldKek) ? kek.id : UUID.randomUUID().toString()) : null;
        out.put("oldKekId", oldKek);
        String backup = BACKUP_PREFIX + DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC).format(Instant.now());
        if (out.dryRun()) {
            if (newKek) out.change("generate a new AES-256 KEK on the HSM");
            out.change("copy Secrets " + String.join(", ", SECRETS) + " into Secret " + ns.name + "/" + backup);
            out.change("delete " + String.join(", then ", SECRETS) + " in " + ns.name);
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
        Map<String, String> data = new LinkedHashMap<>();
        for (var e : held.entrySet())
            if (e.getValue() != null && e.getValue().getData() != null)
                e.getValue().getData().forEach((field, v) -> data.put(e.getKey() + "." + field, v));
        Secret copy = new SecretBuilder().withNewMetadata().withName(backup).withNamespace(ns.name).addToLabels(BACKUP_LABEL, "pending")
                .addToAnnotations("asm-hsm/old-kek-id", oldKek).addToAnnotations("asm-hsm/backed-up-at", Instant.now().toString()).endMetadata()
                .withType("Opaque").withData(data).build();
        k.call(() -> k.client.secrets().inNamespace(ns.name).resource(copy).create(), "create the backup Secret " + backup);
        out.put("backup", backup);
        out.change("kept Secrets " + String.join(", ", SECRETS) + " in Secret " + ns.name + "/" + backup + " until the new chain is loaded");
        for (String name : SECRETS) {
            if (held.get(name) == null) continue;
            k.call(() -> k.client.secrets().inNamespace(ns.name).withName(name).delete(), "delete Secret " + name);
            out.change("deleted Secret " + ns.name + "/" + name);
        }
        if (newKek) {
            out.next("install-asm --kek-id " + newKekId + " (istiod restarts under the new KEK and writes a new CSR), then decrypt-csr --from-secret,"
                    + " sign-csr, upload-chain, and rotate-ca again to finish");
            return;
        }
        String at = Instant.now().toString();
        for (Deployment d : deployments) Istio.rolloutRestart(k, d, Instant.parse(at));
        out.change("restarted istiod (rollout; the old pods keep serving with the old key until the new ones are ready)");
        out.next("the security administrator signs the new CSR: decrypt-csr --from-secret, sign-csr, upload-chain; then rotate-ca again to finish");
    }

    /** A rotation is pending: done once istiod's new chain is loaded in every pod; then the backup (and, if asked, the old KEK) goes. */
    private void finish(Kube k, Secret backup) throws Exception {
        String name = backup.getMetadata().getName();
        String oldKek = backup.getMetadata().getAnnotations() == null ? null : backup.getMetadata().getAnnotations().get("asm-hsm/old-kek-id");
        out.put("backup", name).put("oldKekId", oldKek);
        if (newKek) throw Fail.badInput("a rotation is pending (backup " + name + "): --new-kek starts one", "finish it first: rotate-ca");
        Secret key = k.call(() -> k.client.secrets().inNamespace(ns.name).withName(Istio.ENCRYPTED_KEY_SECRET).get(), "read " + Istio.ENCRYPTED_KEY_SECRET);
        Secret chainSecret = k.call(() -> k.client.secrets().inNamespace(ns.name).withName(Istio.CA_CERT_SECRET).get(), "read " + Istio.CA_CERT_SECRET);
        if (key == null || k.call(() -> k.client.secrets().inNamespace(ns.name).withName(Istio.CSR_SECRET).get(), "read " + Istio.CSR_SECRET) == null) {
            out.say("rotation pending (backup %s): istiod has not written its new key and CSR yet", name);
            out.next("wait for istiod (istiod-status --wait waiting-for-ca), then decrypt-csr --from-secret, sign-csr, upload-chain; then rotate-ca again");
            return;
        }
        if (chainSecret == null) {
            out.say("rotation pending (backup %s): istiod wrote its new CSR (KEK %s); it waits for its signed chain", name, value(key, "kek-id"));
            out.next("decrypt-csr --from-secret, sign-csr, upload-chain; then rotate-ca again to finish");
            return;
        }
        List<java.security.cert.X509Certificate> chain = Pki.certificates(Pki.pemBlocks(new String(Base64.getDecoder().decode(
                chainSecret.getData().get(Istio.CA_CERT_KEY)), StandardCharsets.UTF_8), "Secret " + Istio.CA_CERT_SECRET), "Secret " + Istio.CA_CERT_SECRET);
        List<String> waiting = new ArrayList<>();
        for (var p : k.call(() -> Istio.istiodPods(k.client, ns.name), "list the istiod pods")) {
            if (revision != null && !revision.equals(Istio.revisionOf(p))) continue;
            Istio.CaLoad load = Istio.caLoad(k, p, chainSecret, chain);
            if (load.abort() != null) throw Fail.failed("istiod pod " + p.getMetadata().getName() + ": " + load.abort().what(), load.abort().hint());
            if (!load.loaded()) waiting.add(p.getMetadata().getName());
        }
        if (!waiting.isEmpty()) {
            out.say("rotation pending (backup %s): istiod pod(s) %s have not loaded the new chain yet", name, String.join(", ", waiting));
            out.next("load-root --wait if the pods have no root hook; istiod-status --wait running; then rotate-ca again");
            return;
        }
        String newKekId = value(key, "kek-id");
        if (deleteOldKek) requireKekUnused(oldKek, newKekId, name);
        if (out.dryRun()) {
            out.change("delete the backup Secret " + ns.name + "/" + name + (deleteOldKek ? " and the old KEK " + oldKek : ""));
            return;
        }
        k.call(() -> k.client.secrets().inNamespace(ns.name).withName(Istio.ENCRYPTED_KEY_SECRET).edit(s -> new SecretBuilder(s).editMetadata()
                .addToAnnotations(ROTATED_AT, Instant.now().toString()).endMetadata().build()), "mark " + Istio.ENCRYPTED_KEY_SECRET);
        k.call(() -> k.client.secrets().inNamespace(ns.name).withName(name).delete(), "delete the backup Secret " + name);
        out.put("rotated", true);
        out.change("istiod runs with its new CA key (KEK " + newKekId + "): deleted the backup Secret " + ns.name + "/" + name);
        if (deleteOldKek) {
            Hsm hsm = hsm();
            Hsm.Obj old = hsm.kek(oldKek);
            hsm.destroy(old.handle());
            out.change("destroyed the old KEK " + oldKek + " on token '" + hsm.tokenLabel + "'");
        }
    }

    /**
     * Refuses to destroy a KEK while anything still needs it to open a CA key: istiod's current key here, or
     * an istio-ca-encrypted-key or pending backup in any namespace of any cluster of the kubeconfig (every
     * context; one that cannot be read counts as naming it: nothing proves it does not).
     */
    private void requireKekUnused(String oldKek, String newKekId, String backup) {
        if (oldKek == null) throw Fail.failed("backup " + backup + " does not say which KEK the old key used", "delete the old KEK yourself once sure (hsm-info lists them)");
        if (oldKek.equals(newKekId))
            throw Fail.failed("the old KEK " + oldKek + " is istiod's KEK still: its new key is encrypted under it", "a KEK is retired by rotate-ca --new-kek; keep this one");
        var config = Kube.resolve(kube);
        List<String> contexts = config.getContexts() == null ? List.of() : config.getContexts().stream().map(c -> c.getName()).toList();
        for (String context : contexts) {
            Opts.Kube other = new Opts.Kube();
            other.kubeconfig = kube.kubeconfig;
            other.context = context;
            other.anyCluster = true;
            String where = null;
            try (Kube k = Kube.connect(other)) {
                for (Secret s : k.client.secrets().inAnyNamespace().withField("metadata.name", Istio.ENCRYPTED_KEY_SECRET).list().getItems())
                    if (oldKek.equals(value(s, "kek-id"))) where = s.getMetadata().getNamespace() + "/" + Istio.ENCRYPTED_KEY_SECRET;
                for (Secret b : k.client.secrets().inAnyNamespace().withLabel(BACKUP_LABEL).list().getItems())
                    if (!b.getMetadata().getName().equals(backup) && b.getData() != null
                            && oldKek.equals(decode(b.getData().get(Istio.ENCRYPTED_KEY_SECRET + ".kek-id"))))
                        where = b.getMetadata().getNamespace() + "/" + b.getMetadata().getName();
            } catch (RuntimeException e) {
                throw Fail.failed("cannot read the Secrets of context " + context + " (" + Step.describe(e) + "), so the old KEK " + oldKek
                        + " may still be in use there", "keep the KEK; delete it once every cluster is reachable and rotated");
            }
            if (where != null)
                throw Fail.failed("the old KEK " + oldKek + " still encrypts a CA key in context " + context + " (" + where + ")",
                        "rotate that istiod too (rotate-ca --new-kek --context " + context + "); then delete the KEK");
        }
    }

    static String value(Secret s, String field) {
        return s.getData() == null ? null : decode(s.getData().get(field));
    }

    static String decode(String b64) {
        return b64 == null ? null : new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new RotateCa()).execute(args));
    }
}
