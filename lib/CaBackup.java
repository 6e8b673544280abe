package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The Secret rotate-ca keeps istiod's three CA Secrets in while a rotation is pending (istio-ca-backup-<time>,
 * label asm-hsm/ca-backup): each value under "<Secret>.<key>", and the KEK the old key was under. It goes once
 * istiod loaded its new chain; until then it is what an operator restores from.
 */
public final class CaBackup {
    private CaBackup() {}

    public static final String PREFIX = "istio-ca-backup-", LABEL = "asm-hsm/ca-backup", OLD_KEK = "asm-hsm/old-kek-id", NEW_KEK = "asm-hsm/new-kek-id";

    /** The annotation a finished rotation leaves on istio-ca-encrypted-key: its key was made by a rotation, at that time. */
    public static final String ROTATED_AT = "asm-hsm/rotated-at";

    /** The Secrets istiod reads at start-up, in the order they are removed: the chain first, the key it certifies last. */
    public static final List<String> SECRETS = List.of(Istio.CA_CERT_SECRET, Istio.CSR_SECRET, Istio.ENCRYPTED_KEY_SECRET);

    /** The backup of the rotation pending in a namespace, or null when none is; more than one fails (exit 1): which to keep is the operator's call. */
    public static Secret pending(Kube k, String ns) {
        List<Secret> backups = k.call(() -> k.client.secrets().inNamespace(ns).withLabel(LABEL).list().getItems(), "list the backup Secrets in " + ns);
        if (backups.size() > 1)
            throw Fail.failed(backups.size() + " rotations are pending in " + ns + ": " + backups.stream().map(s -> s.getMetadata().getName()).toList(),
                    "keep the one of the key istiod ran with; delete the others (kubectl delete secret -n " + ns + ")");
        return backups.isEmpty() ? null : backups.get(0);
    }

    /** istiod's three Secrets as they are now, in {@link #SECRETS}' order (null for one that is not there). */
    public static Map<String, Secret> held(Kube k, String ns) {
        Map<String, Secret> held = new LinkedHashMap<>();
        for (String name : SECRETS) held.put(name, k.call(() -> k.client.secrets().inNamespace(ns).withName(name).get(), "read Secret " + name));
        return held;
    }

    /** istio-ca-encrypted-key of a running CA, the key to rotate; fails (exit 1) when istiod has no key and chain yet. */
    public static Secret requireRunningCa(Map<String, Secret> held, String ns) {
        Secret key = held.get(Istio.ENCRYPTED_KEY_SECRET);
        if (key == null || held.get(Istio.CA_CERT_SECRET) == null)
            throw Fail.failed("istiod in " + ns + " has no CA key and chain to rotate (Secrets " + Istio.ENCRYPTED_KEY_SECRET + " and "
                    + Istio.CA_CERT_SECRET + ")", "finish the first signing (decrypt-csr, sign-csr, upload-chain); rotate-ca is for a running CA");
        return key;
    }

    /** A backup's name for a rotation started now. */
    public static String newName() {
        return PREFIX + DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC).format(Instant.now());
    }

    /**
     * Copies `held` into the backup `name` (with the new KEK a --new-kek rotation generated, else null), then
     * deletes them from the namespace in {@link #SECRETS}' order.
     */
    public static void moveAside(Kube k, Out out, String ns, String name, Map<String, Secret> held, String oldKek, String newKek) {
        Map<String, String> data = new LinkedHashMap<>();
        for (var e : held.entrySet())
            if (e.getValue() != null && e.getValue().getData() != null)
                e.getValue().getData().forEach((field, v) -> data.put(e.getKey() + "." + field, v));
        SecretBuilder copy = new SecretBuilder().withNewMetadata().withName(name).withNamespace(ns).addToLabels(LABEL, "pending")
                .addToAnnotations(OLD_KEK, oldKek).addToAnnotations("asm-hsm/backed-up-at", Instant.now().toString()).endMetadata()
                .withType("Opaque").withData(data);
        if (newKek != null) copy.editMetadata().addToAnnotations(NEW_KEK, newKek).endMetadata();
        k.call(() -> k.client.secrets().inNamespace(ns).resource(copy.build()).create(), "create the backup Secret " + name);
        out.put("backup", name);
        out.change("kept Secrets " + String.join(", ", SECRETS) + " in Secret " + ns + "/" + name + " until the new chain is loaded");
        removeInOrder(k, out, ns, held);
    }

    /**
     * Deletes those of `held` that are there, chain first and key last: istiod makes a new key only without
     * istio-ca-encrypted-key, and a CSR only without both istio-ca-cert and istio-ca-cert-csr; with the key
     * gone and an old chain or CSR left, it aborts on the chain or waits on a CSR for the lost key.
     */
    public static void removeInOrder(Kube k, Out out, String ns, Map<String, Secret> held) {
        for (String s : SECRETS) {
            if (held.get(s) == null) continue;
            k.call(() -> k.client.secrets().inNamespace(ns).withName(s).delete(), "delete Secret " + s);
            out.change("deleted Secret " + ns + "/" + s);
        }
    }

    /**
     * Whether istiod's key is still the one the backup holds: the run that made the backup stopped before it
     * deleted istio-ca-encrypted-key. A restart then gives a CSR for the old key, not a new key.
     */
    public static boolean oldKeyStill(Secret backup, Map<String, Secret> held) {
        Secret key = held.get(Istio.ENCRYPTED_KEY_SECRET);
        String kept = backup.getData() == null ? null : backup.getData().get(Istio.ENCRYPTED_KEY_SECRET + ".encrypted-skey");
        return key != null && key.getData() != null && kept != null && kept.equals(key.getData().get("encrypted-skey"));
    }

    /** The new KEK of a --new-kek rotation (null for a rotation under the same KEK). */
    public static String newKek(Secret backup) {
        return backup.getMetadata().getAnnotations() == null ? null : backup.getMetadata().getAnnotations().get(NEW_KEK);
    }

    /** When rotate-ca made this istio-ca-encrypted-key's key (null: it did not). */
    public static String rotatedAt(Secret key) {
        return key.getMetadata().getAnnotations() == null ? null : key.getMetadata().getAnnotations().get(ROTATED_AT);
    }

    /** What istiod has still to do before a pending rotation can finish: a line and what to do next. */
    public record Waiting(String line, String next) {
        /** Says where the rotation is and what to do next; true when it has to wait (null: it does not). */
        public static boolean told(Out out, Waiting w) {
            if (w == null) return false;
            out.say(w.line());
            out.next(w.next());
            return true;
        }
    }

    /**
     * Where the rotation of backup `name` is, from istiod's Secrets now (`held`) and its pods (of `revision`,
     * when given): null once every pod loaded the new chain.
     */
    public static Waiting waiting(Kube k, String ns, String revision, String name, Map<String, Secret> held) {
        Secret key = held.get(Istio.ENCRYPTED_KEY_SECRET);
        if (key == null || held.get(Istio.CSR_SECRET) == null)
            return new Waiting("rotation pending (backup " + name + "): istiod has not written its new key and CSR yet",
                    "wait for istiod (istiod-status --wait waiting-for-ca), then decrypt-csr --from-secret, sign-csr, upload-chain; then rotate-ca again");
        CaSecret chain = CaSecret.of(ns, held.get(Istio.CA_CERT_SECRET));
        if (chain.chain() == null)
            return new Waiting("rotation pending (backup " + name + "): istiod wrote its new CSR (KEK " + value(key, "kek-id") + "); it waits for its signed chain",
                    "decrypt-csr --from-secret, sign-csr, upload-chain; then rotate-ca again to finish");
        List<String> pods = Rollout.notLoaded(k, revision, chain);
        if (pods.isEmpty()) return null;
        return new Waiting("rotation pending (backup " + name + "): istiod pod(s) " + String.join(", ", pods) + " have not loaded the new chain yet",
                "load-root --wait if the pods have no root hook; istiod-status --wait running; then rotate-ca again");
    }

    /** Ends a rotation: istio-ca-encrypted-key marked {@link #ROTATED_AT}, the backup deleted. */
    public static void finish(Kube k, Out out, String ns, String name, String newKekId) {
        k.call(() -> k.client.secrets().inNamespace(ns).withName(Istio.ENCRYPTED_KEY_SECRET).edit(s -> new SecretBuilder(s).editMetadata()
                .addToAnnotations(ROTATED_AT, Instant.now().toString()).endMetadata().build()), "mark " + Istio.ENCRYPTED_KEY_SECRET);
        k.call(() -> k.client.secrets().inNamespace(ns).withName(name).delete(), "delete the backup Secret " + name);
        out.put("rotated", true);
        out.change("istiod runs with its new CA key (KEK " + newKekId + "): deleted the backup Secret " + ns + "/" + name);
    }

    /** The KEK a backup's old key was under (null when it does not say). */
    public static String oldKek(Secret backup) {
        return backup.getMetadata().getAnnotations() == null ? null : backup.getMetadata().getAnnotations().get(OLD_KEK);
    }

    /**
     * Refuses to destroy a KEK while anything still needs it to open a CA key: istiod's current key here, or
     * an istio-ca-encrypted-key or pending backup (other than `backup`) in any namespace of any cluster of the
     * kubeconfig (every context; one that cannot be read counts as naming it: nothing proves it does not).
     */
    public static void requireKekUnused(Opts.Kube kube, String oldKek, String newKekId, String backup) {
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
                for (Secret b : k.client.secrets().inAnyNamespace().withLabel(LABEL).list().getItems())
                    if (!b.getMetadata().getName().equals(backup) && oldKek.equals(value(b, Istio.ENCRYPTED_KEY_SECRET + ".kek-id")))
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

    /** A Secret's value in clear, or null when it has no such key. */
    public static String value(Secret s, String field) {
        String b64 = s == null || s.getData() == null ? null : s.getData().get(field);
        return b64 == null ? null : new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8);
    }
}
