///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "renew-ca", mixinStandardHelpOptions = true,
        description = "Renew the Istio CA certificate with the same key: sign istiod's CSR (Secret istio-ca-cert-csr) again with the"
                + " root's key in the HSM, replace Secret istio-ca-cert, roll istiod's pods (as kubectl rollout restart: new pods"
                + " before the old go), load the root into each new pod's plugin when it has no root hook, and wait until each new"
                + " istiod loaded the new chain. Does nothing while the certificate has longer left than --renew-before.")
class RenewCa extends Step {
    @Mixin Opts.Kube kube;
    /** istiod's slot: the KEK that opens its CSR, and the root under the CA ID. */
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.IstioNamespace ns;
    @Mixin Opts.CaId ca;
    @Mixin Opts.Kek kek;

    @Option(names = "--root-key-label", required = true, paramLabel = "LABEL", description = "Label of the root's private key in the HSM.")
    String rootKeyLabel;

    @Option(names = "--root-p11-token", paramLabel = "LABEL", description = "The slot holding the root's key (default: --p11-token's).")
    String rootToken;

    @Option(names = "--root-p11-pin-file", paramLabel = "FILE", description = "That slot's PIN file, mode 0600 (default: --p11-pin-file).")
    Path rootPinFile;

    @Option(names = "--days", defaultValue = "365", paramLabel = "N", description = "Validity of the new certificate in days (default ${DEFAULT-VALUE}; never past the root's).")
    int days;

    @Option(names = "--renew-before", defaultValue = "30d", paramLabel = "DURATION", converter = DaysOrDuration.class,
            description = "Renew only when the certificate has less than this left, e.g. 30d, 720h (default ${DEFAULT-VALUE}).")
    Duration renewBefore;

    @Option(names = "--force", description = "Renew now, however long the certificate has left.")
    boolean force;

    @Option(names = "--revision", paramLabel = "REV", converter = Opts.RevisionConverter.class, description = "Restart only istiod of this revision (default: every istiod Deployment).")
    String revision;

    @Option(names = "--timeout", defaultValue = "10m", paramLabel = "DURATION", converter = Opts.DurationConverter.class,
            description = "How long to wait for the new istiod pods to load the chain (default ${DEFAULT-VALUE}).")
    Duration timeout;

    @Option(names = {"-o", "--output"}, paramLabel = "CHAIN_PEM",
            description = "Also write the new chain here, as sign-csr does (the file later signing steps compare with).")
    Path output;

    static final Duration PLUGIN_CALL = Duration.ofSeconds(60);

    @Override
    protected void run() throws Exception {
        if (days < 1 || days > 36500) throw Fail.badInput("--days " + days + " is out of range", "give 1 to 36500 days");
        if (revision != null) Istio.requireRevision(revision);
        Kube k = kube();
        Secret secret = k.call(() -> k.client.secrets().inNamespace(ns.name).withName(Istio.CA_CERT_SECRET).get(), "read Secret " + Istio.CA_CERT_SECRET);
        List<X509Certificate> current = chainOf(secret);
        X509Certificate old = current.get(0);
        Instant now = Instant.now(), expires = old.getNotAfter().toInstant();
        Duration left = Duration.between(now, expires);
        out.put("namespace", ns.name).put("notAfter", expires.toString()).put("daysLeft", left.toDays());
        out.say("Secret %s/%s: CA '%s' (%s), valid until %s (%d days left)", ns.name, Istio.CA_CERT_SECRET, Pki.name(old),
                Pki.identity(old).text(), expires, left.toDays());
        List<Deployment> deployments = k.call(() -> Istio.istiodDeployments(k.client, ns.name, revision), "list istiod's Deployments");
        if (deployments.isEmpty())
            throw Fail.failed("no istiod Deployment in " + ns.name + (revision == null ? "" : " for revision " + revision), "install istiod first (install-asm)");
        if (!force && left.compareTo(renewBefore) > 0) {
            out.put("renewed", false);
            String renewedAt = secret.getMetadata().getAnnotations() == null ? null : secret.getMetadata().getAnnotations().get(RENEWED_AT);
            List<Deployment> behind = renewedAt == null ? List.of() : deployments.stream().filter(d -> restartedBefore(d, renewedAt)).toList();
            if (behind.isEmpty()) {
                out.say("more than --renew-before %s left: nothing to do (--force renews now)", text(renewBefore));
                return;
            }
            // an earlier run replaced the chain but did not restart istiod: finish that
            out.say("renew-ca replaced the chain at %s, but istiod was not restarted since: restarting it now", renewedAt);
            if (out.dryRun()) {
                out.change("restart Deployment(s) " + behind.stream().map(d -> d.getMetadata().getName()).toList() + " and wait for '" + Istio.LOG_CA_LOADED + "'");
                return;
            }
            restartAndWait(k, behind, secret, current);
            return;
        }

        Hsm hsm = hsm();
        if (hsm == null) throw Fail.failed("the embedded HSM token does not exist yet, so it holds no KEK", "run gen-kek and import-ca first");
        PKCS10CertificationRequest csr = KmsPlugin.decrypt(hsm, KmsPlugin.EncryptedCsr.fromCluster(k, ns.name), kek.id).request();
        if (!Pki.sameKey(old.getPublicKey(), Pki.publicKey(csr)))
            throw Fail.failed("istiod's CSR in " + Istio.CSR_SECRET + " is for another key than the certificate in " + Istio.CA_CERT_SECRET,
                    "istiod made a new CA key: finish that with decrypt-csr, sign-csr and upload-chain --replace (rotate-ca), not renew-ca");
        X509Certificate root = Pki.certificate(hsm.rootCertificate(ca.id), "the root with CA ID " + ca.id + " in the HSM");
        if (!Pki.sameCert(current.get(current.size() - 1), root))
            throw Fail.failed("the chain in " + Istio.CA_CERT_SECRET + " ends at '" + Pki.name(current.get(current.size() - 1))
                    + "', not at the HSM's root '" + Pki.name(root) + "'", "sign-csr with the HSM's root, then upload-chain --replace");
        Pki.Validity validity = Pki.istioCaValidity(root, days, now);
        if (validity.clamped()) out.warn("the root expires on " + validity.notAfter() + ": the CA certificate is valid until then, not " + days + " days");
        if (!validity.notAfter().isAfter(expires))
            throw Fail.failed("a new certificate would end on " + validity.notAfter() + ", no later than the current one",
                    "the root itself expires then: renew the root first");

        List<String> names = deployments.stream().map(d -> d.getMetadata().getName()).toList();
        if (out.dryRun()) {
            out.change("sign istiod's CSR again with key '" + rootKeyLabel + "' (" + days + " days, until " + validity.notAfter() + ")");
            out.change("replace the chain in Secret " + ns.name + "/" + Istio.CA_CERT_SECRET);
            out.change("restart Deployment(s) " + String.join(", ", names) + " (rollout), load the root into new pods without the root hook,"
                    + " and wait for '" + Istio.LOG_CA_LOADED + "'");
            return;
        }
        X509Certificate renewed = sign(hsm, csr, root, validity);
        List<X509Certificate> chain = List.of(renewed, root);
        String problem = Pki.chainProblem(Pki.ChainRules.ISTIOD, chain, root, new Date(), "the new chain");
        if (problem != null) throw Fail.failed("istiod would refuse the new chain: " + problem, "report this as a bug");
        Pki.Identity id = Pki.identity(renewed);
        out.put("renewed", true).put("newNotAfter", renewed.getNotAfter().toInstant().toString()).put("identity", id.json());
        out.change("signed a new CA certificate for istiod's key: " + id.text());

        if (output != null) Pki.writePem(out, output, Pki.chainPem(chain), true, "CA certificate and root");
        Secret replaced = replaceChain(k, secret, Pki.chainPem(chain));
        restartAndWait(k, deployments, replaced, chain);
    }

    /** The annotation renew-ca leaves on Secret istio-ca-cert: when it replaced the chain, so that a run stopped before the restart is finished by the next. */
    static final String RENEWED_AT = "asm-hsm/renewed-at";

    static boolean restartedBefore(Deployment d, String renewedAt) {
        var a = d.getSpec().getTemplate().getMetadata() == null ? null : d.getSpec().getTemplate().getMetadata().getAnnotations();
        String at = a == null ? null : a.get(Istio.RESTARTED_AT);
        return at == null || Instant.parse(at).isBefore(Instant.parse(renewedAt));
    }

    private void restartAndWait(Kube k, List<Deployment> deployments, Secret secret, List<X509Certificate> chain) throws InterruptedException {
        List<String> names = deployments.stream().map(d -> d.getMetadata().getName()).toList();
        String at = Instant.now().toString();
        for (Deployment d : deployments) Istio.rolloutRestart(k, d, Instant.parse(at));
        out.change("restarted Deployment(s) " + String.join(", ", names) + " (rollout: new pods first, the old ones serve until then)");
        X509Certificate root = chain.get(chain.size() - 1);
        out.put("pods", waitForNewPods(k, names, at, secret, chain, root));
        out.say("every new istiod pod loaded the chain; workloads keep trusting the same root '%s', so their certificates still verify",
                Pki.name(root));
        out.next("verify-ca" + out.given(Opts.Kube.class) + " (and verify-mtls from a workload)");
    }

    /** The new CA certificate, signed in the root's slot (istiod's own slot when no other is named). */
    private X509Certificate sign(Hsm istiodSlot, PKCS10CertificationRequest csr, X509Certificate root, Pki.Validity validity) throws Exception {
        if (rootToken == null || rootToken.equals(p11.token)) return istiodSlot.issueIstioCa(rootKeyLabel, csr, root, validity);
        Opts.Pkcs11 slot = new Opts.Pkcs11();
        slot.lib = p11.lib;
        slot.token = rootToken;
        slot.pinFile = rootPinFile != null ? rootPinFile : p11.pinFile;
        try (Hsm rootSlot = Hsm.open(slot, out)) {
            return rootSlot.issueIstioCa(rootKeyLabel, csr, root, validity);
        }
    }

    private Secret replaceChain(Kube k, Secret secret, String pem) {
        Map<String, String> data = Map.of(Istio.CA_CERT_KEY, Base64.getEncoder().encodeToString(pem.getBytes(StandardCharsets.US_ASCII)));
        Secret updated = k.call(() -> k.client.secrets().inNamespace(ns.name).resource(new SecretBuilder(secret).editMetadata()
                        .addToAnnotations(RENEWED_AT, Instant.now().toString()).endMetadata().withData(data).build()).update(),
                "replace Secret " + Istio.CA_CERT_SECRET);
        out.change("replaced the chain in Secret " + ns.name + "/" + Istio.CA_CERT_SECRET);
        return updated;
    }

    /**
     * Until every Deployment rolled out and each of its new pods loaded the chain. A new pod whose
     * plugin has no root hook gets the root as load-root gives it (the plugin knows a root only
     * after import-ca in its own process); an abort is a failure at once.
     */
    private List<Map<String, Object>> waitForNewPods(Kube k, List<String> names, String at, Secret secret, List<X509Certificate> chain,
                                                     X509Certificate root) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Map<String, Map<String, Object>> report = new LinkedHashMap<>();
        while (true) {
            List<Pod> fresh = k.call(() -> Istio.istiodPods(k.client, ns.name), "list the istiod pods").stream()
                    .filter(p -> Istio.restartedAt(p, at)).toList();
            int loaded = 0;
            for (Pod p : fresh) {
                String name = p.getMetadata().getName();
                Map<String, Object> r = report.computeIfAbsent(name, x -> new LinkedHashMap<>(Map.of("pod", name)));
                if (!r.containsKey("root") && Istio.containerRunning(p, Istio.HSM_PLUGIN_CONTAINER)) r.put("root", loadRoot(k, p, chain.get(0), root));
                Istio.CaLoad load = Istio.caLoad(k, p, secret, chain);
                if (load.abort() != null) throw Fail.failed("new istiod pod " + name + ": " + load.abort().what(), load.abort().hint());
                if (load.loaded()) {
                    loaded++;
                    if (r.put("caLoaded", load.how()) == null) out.say("pod %s: %s", name, load.how());
                }
            }
            boolean rolled = true;
            for (String d : names) {
                Deployment now = k.call(() -> k.client.apps().deployments().inNamespace(ns.name).withName(d).get(), "read Deployment " + d);
                if (now == null || !Istio.rolloutDone(now)) rolled = false;
            }
            if (rolled && !fresh.isEmpty() && loaded == fresh.size()) return new ArrayList<>(report.values());
            if (System.nanoTime() > deadline)
                throw Fail.failed("istiod's new pods did not all load the renewed chain within " + Opts.text(timeout) + " (" + loaded + " of "
                                + fresh.size() + " loaded" + (rolled ? "" : ", rollout not finished") + "); the old pods keep serving with the old certificate",
                        "look at istiod-status and kubectl rollout status deployment -n " + ns.name + "; then renew-ca again (it goes on from here)");
            out.progress("waiting for istiod's new pods to load the renewed chain", "(" + loaded + " of " + fresh.size() + " loaded)");
            Thread.sleep(2000);
        }
    }

    /** The root in a new pod's plugin: its postStart hook's work, or load-root's (the plugin's import-ca) when it has no hook. */
    private String loadRoot(Kube k, Pod p, X509Certificate caCert, X509Certificate root) {
        String name = p.getMetadata().getName();
        if (Istio.rootHookProblem(p, ca.id) == null) return "postStart hook";
        KmsPlugin.RootCheck before = KmsPlugin.verifyInPod(k, ns.name, name, Pki.pem(caCert), PLUGIN_CALL);
        if (before.state() == KmsPlugin.RootState.LOADED) return "already loaded";
        if (before.state() == KmsPlugin.RootState.REJECTED)
            throw Fail.failed("the plugin in " + name + " does not verify the renewed certificate: " + before.run().lastError(),
                    "the CA certificate must be issued directly by the HSM's root (CA ID " + ca.id + ")");
        KmsPlugin.importInPod(k, ns.name, name, Pki.pem(root), ca.id, PLUGIN_CALL);
        out.change("loaded the root into pod " + name + "'s " + Istio.HSM_PLUGIN_CONTAINER + " (it has no root hook)");
        return "import-ca";
    }

    private List<X509Certificate> chainOf(Secret s) {
        String b64 = s == null || s.getData() == null ? null : s.getData().get(Istio.CA_CERT_KEY);
        if (b64 == null)
            throw Fail.failed("Secret " + ns.name + "/" + Istio.CA_CERT_SECRET + (s == null ? " does not exist" : " has no " + Istio.CA_CERT_KEY)
                    + ": there is no CA certificate to renew", "sign istiod's first CSR: decrypt-csr, sign-csr, upload-chain");
        String where = "Secret " + Istio.CA_CERT_SECRET;
        return Pki.certificates(Pki.pemBlocks(new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8), where), where);
    }

    static String text(Duration d) {
        return d.toHours() % 24 == 0 && d.toDays() > 0 ? d.toDays() + "d" : Opts.text(d);
    }

    /** "30d" as 30 days, else a duration as the other options take it. */
    static final class DaysOrDuration implements picocli.CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String value) {
            if (value != null && value.strip().matches("\\d{1,5}d")) return Duration.ofDays(Long.parseLong(value.strip().replace("d", "")));
            return new Opts.DurationConverter().convert(value);
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new RenewCa()).execute(args));
    }
}
