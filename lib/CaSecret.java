package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * Secret istio-ca-cert as the day-2 steps read and replace it: the chain istiod loads at start-up (the CA
 * certificate first, the root last). `chain` is null when there is no such Secret, or it has no cert-chain.pem.
 */
public record CaSecret(String namespace, Secret secret, List<X509Certificate> chain) {
    public static CaSecret read(Kube k, String ns) {
        return of(ns, k.call(() -> k.client.secrets().inNamespace(ns).withName(Istio.CA_CERT_SECRET).get(), "read Secret " + Istio.CA_CERT_SECRET));
    }

    /** The Secret as read (null: there is none). */
    public static CaSecret of(String ns, Secret s) {
        String b64 = s == null || s.getData() == null ? null : s.getData().get(Istio.CA_CERT_KEY);
        if (b64 == null) return new CaSecret(ns, s, null);
        String where = "Secret " + Istio.CA_CERT_SECRET;
        return new CaSecret(ns, s, Pki.certificates(Pki.pemBlocks(new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8), where), where));
    }

    /** The chain; fails (exit 1) when there is none, saying `why` it is needed ("there is no CA certificate to renew") and `todo`. */
    public List<X509Certificate> require(String why, String todo) {
        if (chain == null)
            throw Fail.failed("Secret " + namespace + "/" + Istio.CA_CERT_SECRET + (secret == null ? " does not exist" : " has no " + Istio.CA_CERT_KEY)
                    + ": " + why, todo);
        return chain;
    }

    public X509Certificate ca() { return chain.get(0); }

    public X509Certificate root() { return chain.get(chain.size() - 1); }

    public String annotation(String key) {
        var a = secret == null ? null : secret.getMetadata().getAnnotations();
        return a == null ? null : a.get(key);
    }

    /**
     * Uploads `content` (cert-chain.pem in canonical form, holding `chain`) as Secret istio-ca-cert: creates it,
     * or replaces one holding another chain when `replace`, or rewrites one holding this chain in a form istiod
     * refuses; one holding this chain as istiod accepts it is left as it is. The manifest is shown (--dry-run).
     */
    public static void upload(Kube k, Out out, String ns, byte[] content, List<X509Certificate> chain, boolean replace) {
        String secretName = ns + "/" + Istio.CA_CERT_SECRET;
        try {
            var secrets = k.client.secrets().inNamespace(ns);
            Secret existing = secrets.withName(Istio.CA_CERT_SECRET).get();
            Map<String, String> data = Map.of(Istio.CA_CERT_KEY, Base64.getEncoder().encodeToString(content));
            if (existing != null) {
                String b64 = existing.getData() == null ? null : existing.getData().get(Istio.CA_CERT_KEY);
                byte[] current = b64 == null ? null : Base64.getDecoder().decode(b64);
                if (current != null && java.util.Arrays.equals(current, content)) {
                    out.say("Secret %s already holds this chain", secretName);
                    return;
                }
                String currentRefusal = current == null ? null : Istio.splitProblem(current);
                boolean sameChain = current != null && ChainFile.sameCertificates(current, chain);
                if (sameChain && currentRefusal == null) {
                    out.say("Secret %s already holds this chain (in a form istiod accepts)", secretName);
                    return;
                }
                if (!sameChain && !replace)
                    throw Fail.failed("Secret " + secretName + " already exists with another chain", "pass --replace to replace it; " + Istio.RESTART_TO_RELOAD);
                Secret replaced = new SecretBuilder(existing).withData(data).build();
                out.manifest(k.manifest(replaced));
                if (!out.dryRun()) secrets.resource(replaced).update();
                if (sameChain)
                    out.change((out.dryRun() ? "rewrite" : "rewrote") + " the chain in Secret " + secretName + " in the form istiod accepts (it held "
                            + currentRefusal + "); " + Istio.RESTART_TO_RELOAD);
                else out.change((out.dryRun() ? "replace" : "replaced") + " the chain in Secret " + secretName + "; " + Istio.RESTART_TO_RELOAD);
                return;
            }
            Secret created = new SecretBuilder().withNewMetadata().withName(Istio.CA_CERT_SECRET).withNamespace(ns)
                    .endMetadata().withType("Opaque").withData(data).build();
            out.manifest(k.manifest(created));
            if (!out.dryRun()) secrets.resource(created).create();
            out.change((out.dryRun() ? "create" : "created") + " Secret " + secretName + " (key " + Istio.CA_CERT_KEY + ")");
            out.say("istiod polls for it every 2 s; then check its log with verify-ca");
        } catch (io.fabric8.kubernetes.client.KubernetesClientException e) {
            throw k.explain(e, "write Secret " + secretName);
        }
    }

    /** What signing istiod's CSR again needs: the CSR, the HSM's root, and a validity that ends later than the current certificate's. */
    public record Renewal(Pki.Csr csr, X509Certificate root, Pki.Validity validity) {
        /**
         * The CSR signed again with the root's key (`rootSlot`'s label, in its slot, or in `hsm` when that is `own`):
         * the new chain, checked as istiod will check it, and told.
         */
        public List<X509Certificate> sign(Out out, Hsm hsm, Opts.RootSlot rootSlot, Opts.Pkcs11 own) throws Exception {
            Opts.Pkcs11 other = rootSlot.slot(own);
            List<X509Certificate> chain;
            try (Hsm rootHsm = other == null ? null : Hsm.open(other, out)) {
                chain = List.of((other == null ? hsm : rootHsm).issueIstioCa(rootSlot.keyLabel, csr, root, validity), root);
            }
            String problem = Pki.chainProblem(Pki.ChainRules.ISTIOD, chain, root, new java.util.Date(), "the new chain");
            if (problem != null) throw Fail.failed("istiod would refuse the new chain: " + problem, "report this as a bug");
            Pki.Identity id = Pki.identity(chain.get(0));
            out.put("renewed", true).put("newNotAfter", chain.get(0).getNotAfter().toInstant().toString()).put("identity", id.json());
            out.change("signed a new CA certificate for istiod's key: " + id.text());
            return chain;
        }

        /** What a run would do (--dry-run): sign with `keyLabel`, replace the chain, restart `deployments` and wait. */
        public void plan(Out out, String namespace, String keyLabel, int days, List<Deployment> deployments) {
            out.change("sign istiod's CSR again with key '" + keyLabel + "' (" + days + " days, until " + validity.notAfter() + ")");
            out.change("replace the chain in Secret " + namespace + "/" + Istio.CA_CERT_SECRET);
            out.change("restart Deployment(s) " + String.join(", ", Rollout.names(deployments)) + " (rollout), load the root into new pods without the root hook,"
                    + " and wait for '" + IstiodLog.LOG_CA_LOADED + "'");
        }
    }

    /**
     * Checks that this chain can be renewed with the same key (renew-ca): istiod's CSR (opened with the KEK in
     * `hsm`) is for the CA certificate's key, the chain ends at the HSM's root under `caId`, and `days` from now
     * (never past the root's end, warned) ends later than the certificate does. Fails (exit 1) otherwise.
     */
    public Renewal renewal(Kube k, Out out, Hsm hsm, String kekId, String caId, int days) throws Exception {
        if (hsm == null) throw Fail.failed("the embedded HSM token does not exist yet, so it holds no KEK", "run gen-kek and import-ca first");
        Pki.Csr csr = KmsPlugin.decrypt(hsm, KmsPlugin.EncryptedCsr.fromCluster(k, namespace), kekId).request();
        if (!Pki.sameKey(ca().getPublicKey(), Pki.publicKey(csr)))
            throw Fail.failed("istiod's CSR in " + Istio.CSR_SECRET + " is for another key than the certificate in " + Istio.CA_CERT_SECRET,
                    "istiod made a new CA key: finish that with decrypt-csr, sign-csr and upload-chain --replace (rotate-ca), not renew-ca");
        X509Certificate hsmRoot = Pki.certificate(hsm.rootCertificate(caId), "the root with CA ID " + caId + " in the HSM");
        if (!Pki.sameCert(root(), hsmRoot))
            throw Fail.failed("the chain in " + Istio.CA_CERT_SECRET + " ends at '" + Pki.name(root()) + "', not at the HSM's root '" + Pki.name(hsmRoot) + "'",
                    "sign-csr with the HSM's root, then upload-chain --replace");
        Pki.Validity validity = CaSigning.validity(out, hsmRoot, days);
        if (!validity.notAfter().isAfter(ca().getNotAfter().toInstant()))
            throw Fail.failed("a new certificate would end on " + validity.notAfter() + ", no later than the current one", "the root itself expires then: renew the root first");
        return new Renewal(csr, hsmRoot, validity);
    }

    /** The annotation renew-ca leaves on this Secret: when it replaced the chain, so that a run stopped before the restart is finished by the next. */
    public static final String RENEWED_AT = "asm-hsm/renewed-at";

    /** How long the CA certificate has left, told with its identity and end (the result's namespace, notAfter, daysLeft). */
    public Duration validFor(Out out) {
        Instant expires = ca().getNotAfter().toInstant();
        Duration left = Duration.between(Instant.now(), expires);
        out.put("namespace", namespace).put("notAfter", expires.toString()).put("daysLeft", left.toDays());
        out.say("Secret %s/%s: CA '%s' (%s), valid until %s (%d days left)", namespace, Istio.CA_CERT_SECRET, Pki.name(ca()), Pki.identity(ca()).text(),
                expires, left.toDays());
        return left;
    }

    /**
     * Those of `deployments` not restarted since renew-ca replaced this chain ({@link #RENEWED_AT}): a run that
     * stopped before its restart, told; none when there was no such run.
     */
    public List<Deployment> restartOwed(Out out, List<Deployment> deployments) {
        String at = annotation(RENEWED_AT);
        List<Deployment> behind = at == null ? List.of() : deployments.stream().filter(d -> Rollout.restartedBefore(d, Instant.parse(at))).toList();
        if (!behind.isEmpty()) out.say("renew-ca replaced the chain at %s, but istiod was not restarted since: restarting it now", at);
        return behind;
    }

    /** Replaces the chain (as cert-chain.pem in canonical form), marking the Secret with `stamp` = now. */
    public CaSecret replace(Kube k, Out out, List<X509Certificate> with, String stamp) {
        Map<String, String> data = Map.of(Istio.CA_CERT_KEY, Base64.getEncoder().encodeToString(Pki.chainPem(with).getBytes(StandardCharsets.US_ASCII)));
        Secret updated = k.call(() -> k.client.secrets().inNamespace(namespace).resource(new SecretBuilder(secret).editMetadata()
                .addToAnnotations(stamp, Instant.now().toString()).endMetadata().withData(data).build()).update(), "replace Secret " + Istio.CA_CERT_SECRET);
        out.change("replaced the chain in Secret " + namespace + "/" + Istio.CA_CERT_SECRET);
        return new CaSecret(namespace, updated, with);
    }
}
