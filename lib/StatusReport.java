package asmhsm;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.JsonNode;

/**
 * status's checklist: each line read live from the HSM, Vault or the cluster and compared with what the
 * steps make (VaultLayout, KubeLayout); one block per cluster with --all-suffixes. A system that cannot
 * be read leaves its lines unknown, with why, and the other lines standing.
 */
final class StatusReport {
    static final String DONE = "done", MISSING = "missing", WRONG = "wrong", UNKNOWN = "unknown";
    /** How long status waits for the plugin's verify-cert in one pod. */
    static final java.time.Duration PLUGIN_CALL = java.time.Duration.ofSeconds(20);

    /** The step whose clients status reads through (Step#kube, #vault, #hsm): asm run and asm session share them. */
    private final Step step;
    private final Out out;
    private final Opts.Pkcs11 p11;
    private final Opts.Vault vault;
    private final Opts.Kube kube;
    private final Opts.Cluster cluster;
    private final Opts.Kek kek;
    private final Opts.CaId ca;
    private final int warnDays, wrongDays;
    private final boolean allSuffixes;
    private final java.nio.file.Path dir;

    /** status's checklist for `step`, which takes the Pkcs11, Vault, Kube, Cluster, Kek and CaId options. */
    StatusReport(Step step, int warnDays, int wrongDays, boolean allSuffixes, java.nio.file.Path dir) {
        this.step = step;
        this.out = step.out;
        this.p11 = step.mixin(Opts.Pkcs11.class);
        this.vault = step.mixin(Opts.Vault.class);
        this.kube = step.mixin(Opts.Kube.class);
        this.cluster = step.mixin(Opts.Cluster.class);
        this.kek = step.mixin(Opts.Kek.class);
        this.ca = step.mixin(Opts.CaId.class);
        this.warnDays = warnDays;
        this.wrongDays = wrongDays;
        this.allSuffixes = allSuffixes;
        this.dir = dir;
    }

    private Checklist list;
    private X509Certificate hsmRoot;
    /** The step's HSM is open, logged in with P11_PIN_FILE's PIN (it stays open until the step ends). */
    private boolean hsmOpened;
    private String k8sServer, suffix;

    void run() {
        if (warnDays < 0 || wrongDays < 0 || wrongDays > warnDays)
            throw Fail.badInput("--wrong-days " + wrongDays + " and --warn-days " + warnDays + " must be 0 or more, wrong-days not above warn-days",
                    "e.g. --wrong-days 7 --warn-days 30");
        if (allSuffixes) {
            allClusters();
            return;
        }
        String suffix = cluster.require();
        out.put("clusterSuffix", suffix);
        check(suffix, null, null);
        out.put("checks", list.json());
        List<Checklist.Line> open = list.notGood();
        if (!open.isEmpty()) throw Fail.failed(notDone(list), "run the steps named above (->), in the guide's order");
        out.say("all %d done", list.lines().size());
    }

    /**
     * One cluster's checklist, in `list`: the step's own cluster, or (--all-suffixes) the one of
     * `other`'s context (the step's client for it, see Step#kube(Opts.Kube)); with `noCluster`, its
     * cluster lines are unknown for that reason.
     */
    private void check(String suffix, Opts.Kube other, Fail noCluster) {
        this.suffix = suffix;
        list = new Checklist(out);
        hsmRoot = null;
        k8sServer = null;
        hsmLines();
        Kube k = null;
        try {
            if (noCluster != null) throw noCluster;
            Kube connected = other == null ? step.kube() : step.kube(other);
            // another cluster behind the recorded server address (re-created): the suffix's lines would describe it
            if (other != null) connected.requireCluster(new ClusterId.Expected(suffix, dir.resolve(suffix)));
            k8sServer = connected.server();
            k = connected;
        } catch (ClusterId.Mismatch another) {
            if (other == null) throw another;      // the suffix's lines would describe another cluster
            clusterUnknown(another);
        } catch (Fail f) {
            if (f.exitCode == 2 && noCluster == null && (other == null ? kube : other).context != null) throw f;   // a context the kubeconfig lacks
            clusterUnknown(f);
        }
        vault(suffix);
        pin(suffix);
        if (k != null) cluster(k);
    }

    private static String notDone(Checklist checklist) {
        List<Checklist.Line> open = checklist.notGood();
        return open.size() + " of " + checklist.lines().size() + " not done: " + String.join(", ", open.stream().map(Checklist.Line::name).toList());
    }

    /** --all-suffixes: a block per <suffix>/ folder, each against the context whose server k8s-vault-prep recorded there. */
    private void allClusters() {
        if (kube.context != null)
            throw Fail.badInput("--all-suffixes finds each cluster's context itself; --context names one cluster", "drop --context, or --all-suffixes");
        List<String> suffixes = Kube.preparedSuffixes(dir);
        if (suffixes.isEmpty())
            throw Fail.badInput("no <suffix>/ folder of k8s-vault-prep in " + dir.toAbsolutePath(), "run k8s-vault-prep --cluster-suffix c1 first, or pass --dir");
        List<Map<String, Object>> blocks = new ArrayList<>();
        List<String> open = new ArrayList<>();
        for (String each : suffixes) {
            Opts.Kube one = new Opts.Kube();
            one.kubeconfig = kube.kubeconfig;
            Fail noContext = null;
            try {
                one.context = Kube.contextFor(kube, Vault.ReviewerFiles.in(dir.resolve(each), each).addr());
            } catch (Fail f) {
                noContext = f;
            }
            out.say("");
            out.say("== cluster %s (context %s)", each, noContext == null ? one.context : "unknown: " + noContext.getMessage());
            check(each, one, noContext);
            Map<String, Object> block = new java.util.LinkedHashMap<>();
            block.put("clusterSuffix", each);
            block.put("context", one.context);
            if (noContext != null) block.put("contextProblem", noContext.getMessage());
            block.put("checks", list.json());
            block.put("done", list.notGood().isEmpty());
            blocks.add(block);
            if (!list.notGood().isEmpty()) open.add(each + ": " + notDone(list));
        }
        out.put("clusters", blocks);
        if (!open.isEmpty()) throw Fail.failed(String.join("; ", open), "run the steps named above (->) with each cluster's --cluster-suffix and --context");
        out.say("all done in %d cluster(s): %s", suffixes.size(), String.join(", ", suffixes));
    }

    private void line(String name, String state, String detail, String fix) {
        list.add(name, state, DONE.equals(state), detail, fix);
    }

    private void line(String name, Checklist.Check c) {
        list.add(name, c);
        if (Boolean.TRUE.equals(c.data().get("warning"))) out.warn(name + ": " + c.detail());
    }

    /** Runs one group of lines; if its system cannot be read, each of its lines is "unknown" with the reason. */
    private void group(List<String> names, Runnable body) {
        int before = list.lines().size();
        try {
            body.run();
        } catch (Fail f) {
            List<String> done = list.lines().subList(before, list.lines().size()).stream().map(Checklist.Line::name).toList();
            for (String n : names) if (!done.contains(n)) line(n, UNKNOWN, f.getMessage(), f.hint);
        } catch (RuntimeException e) {
            List<String> done = list.lines().subList(before, list.lines().size()).stream().map(Checklist.Line::name).toList();
            for (String n : names) if (!done.contains(n)) line(n, UNKNOWN, Step.describe(e), "re-run with --verbose for the details");
            if (step.common.verbose) e.printStackTrace();
        }
    }

    // ---------------------------------------------------------------- HSM

    /** What opening the HSM says, for no one: status never creates the embedded token (an Out under --dry-run). */
    private final Out quiet = new Out("status", true, true, new PrintStream(OutputStream.nullOutputStream()), new PrintStream(OutputStream.nullOutputStream()));

    private void hsmLines() {
        group(List.of("hsm: KEK", "hsm: root CA", "expiry: root CA"), () -> {
            try {
                Hsm hsm = step.hsm(quiet);
                if (hsm == null)
                    throw Fail.failed("no HSM configured (P11_LIB unset) and no embedded token", "set P11_LIB, P11_TOKEN and P11_PIN_FILE");
                hsmOpened = true;
                List<Hsm.Obj> keks = hsm.keks(kek.id);
                String on = " on token '" + hsm.tokenLabel + "'";
                List<String> weak = new ArrayList<>();
                String weakId = null;
                for (Hsm.Obj o : keks) {
                    String why = hsm.kekWeakness(o.handle());
                    if (why == null) continue;
                    weak.add(hsm.weakKekMessage(o.idText(), why));
                    if (weakId == null) weakId = o.idText();
                }
                if (!weak.isEmpty()) line("hsm: KEK", WRONG, String.join("; ", weak), Hsm.weakKekHint(weakId));
                else if (kek.id == null && !keks.isEmpty())
                    line("hsm: KEK", DONE, keks.size() + " KEK(s) of the plugin" + on + " (set KEK_ID to check the one istiod uses)", null);
                else if (keks.size() == 1) line("hsm: KEK", DONE, "KEK " + kek.id + on, null);
                else if (keks.isEmpty()) line("hsm: KEK", MISSING, (kek.id == null ? "no KEK" : "no KEK " + kek.id) + on, "gen-kek" + (kek.id == null ? "" : " --kek-id " + kek.id));
                else line("hsm: KEK", WRONG, keks.size() + " KEKs share ID " + kek.id + on + ": the plugin cannot choose", "remove the extra ones (hsm-info lists them)");
                Hsm.CaCertificates roots = hsm.caCertificates(ca.id);
                if (roots.isEmpty()) {
                    line("hsm: root CA", MISSING, "no root certificate with CA ID " + ca.id + on, "import-ca -f ROOT_PEM");
                    line("expiry: root CA", MISSING, "no root to read", "import-ca -f ROOT_PEM");
                } else if (!roots.identical()) {
                    Fail differ = hsm.differingCertificates(roots);
                    line("hsm: root CA", WRONG, differ.getMessage(), differ.hint);
                    line("expiry: root CA", UNKNOWN, "certificates that differ share CA ID " + ca.id + ": which one is the root is not known", differ.hint);
                } else {
                    hsmRoot = Pki.certificate(roots.der(), "the root on the HSM");
                    line("hsm: root CA", DONE, "'" + Pki.name(hsmRoot) + "' as CA " + ca.id + on + roots.copiesNote(), null);
                    line("expiry: root CA", Pki.validity(hsmRoot, "root", java.time.Instant.now(), warnDays, wrongDays,
                            "a new root: import-ca -f NEW_ROOT_PEM --replace, then sign-csr and upload-chain --replace in every cluster"));
                }
            } catch (Fail f) {
                throw f;
            } catch (Exception e) {
                throw Fail.failed("cannot read the HSM token: " + Step.describe(e), "check the HSM connection (hsm-info)");
            }
        });
    }

    // ---------------------------------------------------------------- Vault

    private void vault(String suffix) {
        String mount = VaultLayout.of(suffix).mount(), secret = VaultLayout.of(suffix).secretPath();
        group(List.of("vault: mount " + mount, "vault: secret " + secret, "vault: policy " + VaultLayout.of(suffix).policy(),
                "vault: auth " + secret, "vault: auth config", "vault: role " + VaultLayout.ROLE), () -> {
            VaultLines lines = new VaultLines();
            try {
                vaultLines(lines, suffix);
            } finally {
                lines.emit();
            }
        });
    }

    /** The HSM PIN stored in Vault opens the slot: checked by logging in with it (never shown). */
    private void pin(String suffix) {
        String name = "vault: HSM PIN", secret = VaultLayout.of(suffix).secretPath();
        group(List.of(name), () -> {
            char[] pin = step.vault().hsmPin(suffix);
            if (pin == null) {
                line(name, MISSING, "no PIN in " + secret, "vault-setup");
                return;
            }
            try {
                line(name, Hsm.pinOpens(p11, pin, "Vault's " + secret, hsmOpened));
            } finally {
                java.util.Arrays.fill(pin, '\0');
            }
        });
    }

    /**
     * The Vault lines, held until all are read: where some of vault-setup's parts are done and others
     * are absent, its run was cut short (Ctrl-C, a lost connection), and each absent part is wrong
     * (a half-configured path) with vault-setup as the fix, not merely missing.
     */
    private final class VaultLines {
        final List<String[]> held = new ArrayList<>();

        void add(String name, String state, String detail, String fix) {
            held.add(new String[] {name, state, detail, fix});
        }

        void emit() {
            List<String> done = held.stream().filter(l -> DONE.equals(l[1])).map(l -> l[0].replaceFirst("^vault: ", "")).toList();
            for (String[] l : held) {
                if (!done.isEmpty() && MISSING.equals(l[1]))
                    StatusReport.this.line(l[0], WRONG, l[2] + ", though " + String.join(", ", done) + (done.size() == 1 ? " is" : " are")
                            + " there: vault-setup did not finish", "vault-setup");
                else StatusReport.this.line(l[0], l[1], l[2], l[3]);
            }
        }
    }

    /** The Vault lines: what is there, compared with the suffix's VaultLayout. */
    private void vaultLines(VaultLines lines, String suffix) {
        VaultLayout layout = VaultLayout.of(suffix);
        String mount = layout.mount(), secret = layout.secretPath(), policy = layout.policy(), maxTtl = VaultLayout.hours(VaultLayout.MAX_LEASE_TTL);
        String lMount = "vault: mount " + mount, lSecret = "vault: secret " + secret, lPolicy = "vault: policy " + policy,
                lAuth = "vault: auth " + layout.authPath(), lConfig = "vault: auth config", lRole = "vault: role " + VaultLayout.ROLE;
        String fix = "vault-setup";
        Vault client = step.vault();
        String in = client.namespace == null ? "" : " in namespace " + client.namespace;   // the mount line says where all six were looked for
        client.requireUnsealed("read the setup");
        VaultLayout.Present there = layout.read(client);
        JsonNode mountEntry = there.mount();
        String other = mountEntry == null ? null : VaultLayout.mountTypeProblem(mountEntry);
        if (mountEntry == null) lines.add(lMount, MISSING, "no secrets engine at " + mount + "/" + in, fix);
        else if (other != null)
            lines.add(lMount, WRONG, mount + "/ is " + mountEntry.path("type").asString() + " version " + mountEntry.path("options").path("version").asString("1")
                    + ", not kv version 1" + in, "disable it and run vault-setup (the guide's kv is version 1)");
        else if (VaultLayout.maxLeaseTtlSeconds(mountEntry) != VaultLayout.MAX_LEASE_TTL.toSeconds())
            lines.add(lMount, WRONG, "kv at " + mount + "/ has max lease TTL " + VaultLayout.maxLeaseTtlSeconds(mountEntry) + "s, not " + maxTtl + in, fix);
        else lines.add(lMount, DONE, "kv at " + mount + "/" + in + ", max lease TTL " + maxTtl, null);

        JsonNode hsmSecret = there.secret();
        List<String> absent = hsmSecret == null ? List.of() : VaultLayout.absentKeys(hsmSecret);
        if (hsmSecret == null) lines.add(lSecret, MISSING, "no secret at " + secret, fix);
        else if (!absent.isEmpty()) lines.add(lSecret, WRONG, secret + " lacks " + String.join(", ", absent), fix);
        else lines.add(lSecret, DONE, secret + " holds " + String.join(", ", VaultLayout.HSM_KEYS), null);

        JsonNode policyEntry = there.policy();
        if (policyEntry == null) lines.add(lPolicy, MISSING, "no policy " + policy, fix);
        else if (!layout.policyMatches(policyEntry.path("policy").asString(""))) lines.add(lPolicy, WRONG, policy + " is not read on " + secret + " alone", fix);
        else lines.add(lPolicy, DONE, policy + " grants read on " + secret, null);

        JsonNode authEntry = there.auth();
        String auth = layout.authPath();
        if (authEntry == null) lines.add(lAuth, MISSING, "no auth method at " + auth + "/", fix);
        else if (!"kubernetes".equals(authEntry.path("type").asString())) lines.add(lAuth, WRONG, auth + "/ is " + authEntry.path("type").asString() + ", not kubernetes", fix);
        else lines.add(lAuth, DONE, "kubernetes auth at " + auth + "/", null);

        JsonNode config = there.config();
        String host = config == null ? "" : config.path("kubernetes_host").asString("");
        if (config == null || host.isBlank()) lines.add(lConfig, MISSING, "kubernetes auth at " + auth + " is not configured", "k8s-vault-prep, then vault-setup");
        else if (k8sServer != null && !strip(host).equals(strip(k8sServer)))
            lines.add(lConfig, WRONG, "kubernetes_host is " + host + " but the cluster is " + k8sServer, "k8s-vault-prep, then vault-setup");
        else if (config.path("kubernetes_ca_cert").asString("").isBlank())
            lines.add(lConfig, WRONG, "no kubernetes_ca_cert: Vault cannot trust the API server", "k8s-vault-prep, then vault-setup");
        else if (config.has("token_reviewer_jwt_set") && !config.path("token_reviewer_jwt_set").asBoolean())
            lines.add(lConfig, WRONG, "no token_reviewer_jwt: Vault cannot call TokenReview", "k8s-vault-prep, then vault-setup");
        else lines.add(lConfig, DONE, "kubernetes_host " + host + ", CA certificate and reviewer JWT set", null);

        JsonNode role = there.role();
        List<String> differ = role == null ? List.of() : layout.roleDifferences(role);
        if (role == null) lines.add(lRole, MISSING, "no role " + VaultLayout.ROLE + " at auth/" + auth, fix);
        else if (differ.isEmpty())
            lines.add(lRole, DONE, VaultLayout.ROLE + ": " + KubeLayout.ISTIOD_SA + "." + KubeLayout.ISTIO_NAMESPACE + ", policy " + policy + ", ttl "
                    + VaultLayout.hours(VaultLayout.ROLE_TTL), null);
        else lines.add(lRole, WRONG, "role " + VaultLayout.ROLE + " differs: " + String.join(", ", differ), fix);
    }

    private static String strip(String url) {
        return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    }

    // ---------------------------------------------------------------- cluster

    static final List<String> CLUSTER_LINES = List.of("namespace vault", "binding " + KubeLayout.TOKENREVIEW_BINDING, "secret vault/" + KubeLayout.TOKENREVIEW_SECRET,
            "namespace istio-system", "configmap " + KubeLayout.VAULT_CA_CONFIGMAP, "service istiod", "istiod pods", "secret " + Istio.CSR_SECRET,
            "secret " + Istio.CA_CERT_SECRET, "expiry: Istio CA", "istiod: chain logged", "istiod: root loaded", "injection", "sidecars",
            "ingress address");

    private void clusterUnknown(Fail f) {
        for (String n : CLUSTER_LINES) line(n, UNKNOWN, f.getMessage(), f.hint);
    }

    /** Each line reads what it needs: one thing that cannot be read leaves the other lines standing. */
    @SuppressWarnings("unchecked")
    private void cluster(Kube k) {
        var client = k.client;
        Boolean vaultNs = namespace(k, "namespace vault", KubeLayout.VAULT_NAMESPACE, "k8s-vault-prep");
        one("binding " + KubeLayout.TOKENREVIEW_BINDING, () -> line("binding " + KubeLayout.TOKENREVIEW_BINDING, KubeLayout.GUIDE.binding(k.call(() -> client.rbac().clusterRoleBindings()
                .withName(KubeLayout.TOKENREVIEW_BINDING).get(), "read ClusterRoleBinding " + KubeLayout.TOKENREVIEW_BINDING))));
        one("secret vault/" + KubeLayout.TOKENREVIEW_SECRET, () -> line("secret vault/" + KubeLayout.TOKENREVIEW_SECRET, KubeLayout.GUIDE.tokenSecret(Boolean.FALSE.equals(vaultNs) ? null : k.call(() ->
                client.secrets().inNamespace(KubeLayout.VAULT_NAMESPACE).withName(KubeLayout.TOKENREVIEW_SECRET).get(), "read Secret " + KubeLayout.TOKENREVIEW_SECRET))));

        boolean noIstio = Boolean.FALSE.equals(namespace(k, "namespace istio-system", KubeLayout.ISTIO_NAMESPACE, "control-plane-prep"));
        var services = client.services().inNamespace(KubeLayout.ISTIO_NAMESPACE);
        var secrets = client.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE);
        one("configmap " + KubeLayout.VAULT_CA_CONFIGMAP, () -> line("configmap " + KubeLayout.VAULT_CA_CONFIGMAP, KubeLayout.GUIDE.vaultCaCheck(noIstio ? null : k.call(() ->
                client.configMaps().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(KubeLayout.VAULT_CA_CONFIGMAP).get(), "read ConfigMap " + KubeLayout.VAULT_CA_CONFIGMAP), vault.caCert)));
        String[] rev = {null};
        one("service istiod", () -> rev[0] = istiodService(noIstio ? null : k.call(() -> services.withName(KubeLayout.ISTIOD_SERVICE).get(),
                "read Service " + KubeLayout.ISTIOD_SERVICE)));
        List<Pod>[] pods = new List[1];
        one("istiod pods", () -> istiod(pods[0] = noIstio ? List.of() : k.call(() -> Istio.istiodPods(client), "list the istiod pods")));
        boolean[] csrExists = {false};
        one("secret " + Istio.CSR_SECRET, () -> {
            Secret csr = noIstio ? null : k.call(() -> secrets.withName(Istio.CSR_SECRET).get(), "read Secret " + Istio.CSR_SECRET);
            csrExists[0] = csr != null;
            csr(csr);
        });
        Secret[] caSecret = {null};
        List<X509Certificate>[] chain = new List[1];
        boolean[] secretRead = {false};
        one("secret " + Istio.CA_CERT_SECRET, () -> {
            caSecret[0] = noIstio ? null : k.call(() -> secrets.withName(Istio.CA_CERT_SECRET).get(), "read Secret " + Istio.CA_CERT_SECRET);
            secretRead[0] = true;
            chain[0] = chain(caSecret[0], csrExists[0]);
        });
        one("expiry: Istio CA", () -> istioCaExpiry(secretRead[0], caSecret[0], chain[0]));
        one("istiod: chain logged", () -> line("istiod: chain logged", IstiodLog.loggedChain(k, KubeLayout.ISTIO_NAMESPACE,
                ofRevision(read(pods[0], "the istiod pods"), rev[0]), read(secretRead[0] ? caSecret : null, "Secret " + Istio.CA_CERT_SECRET)[0], chain[0])));
        one("istiod: root loaded", () -> line("istiod: root loaded", KmsPlugin.rootLoaded(k, KubeLayout.ISTIO_NAMESPACE,
                ofRevision(read(pods[0], "the istiod pods"), rev[0]), hsmRoot, ca.id, PLUGIN_CALL)));
        List<Namespace>[] labelled = new List[1];
        one("injection", () -> injection(labelled[0] = k.call(() -> client.namespaces().withLabel(Istio.REV_LABEL).list().getItems(),
                "list the namespaces"), rev[0]));
        one("sidecars", () -> line("sidecars", Istio.sidecars(k, read(labelled[0], "the namespaces"), rev[0])));
        one("ingress address", () -> ingress(noIstio ? null : k.call(() -> services.withName(Istio.INGRESS_GATEWAY).get(),
                "read Service " + Istio.INGRESS_GATEWAY)));
    }

    /** What an earlier line read; when it could not, this line is unknown too. */
    private static <T> T read(T value, String what) {
        if (value == null) throw Fail.failed(what + " could not be read (see above)", null);
        return value;
    }

    private static List<Pod> ofRevision(List<Pod> pods, String rev) {
        return rev == null ? pods : pods.stream().filter(p -> rev.equals(Istio.revisionOf(p))).toList();
    }

    /** The Istio CA certificate's validity, and what tells it from another cluster's (serial, SKI, end, cluster). */
    private void istioCaExpiry(boolean read, Secret secret, List<X509Certificate> chain) {
        String name = "expiry: Istio CA";
        if (!read) throw Fail.failed("Secret " + Istio.CA_CERT_SECRET + " could not be read (see above)", null);
        if (secret == null) { line(name, MISSING, "no Secret " + Istio.CA_CERT_SECRET, "decrypt-csr, sign-csr, then upload-chain"); return; }
        if (chain == null) { line(name, UNKNOWN, "the chain in Secret " + Istio.CA_CERT_SECRET + " cannot be read (see above)", "upload-chain -f cert-chain.pem"); return; }
        line(name, Pki.validity(chain.get(0), "Istio CA of cluster " + suffix, java.time.Instant.now(), warnDays, wrongDays,
                "sign-csr (a new validity), upload-chain --replace; " + Istio.RESTART_TO_RELOAD + "; renew-ca does all of it")
                .with("cluster", suffix));
    }

    private void one(String name, Runnable body) {
        group(List.of(name), body);
    }

    /** The namespace's line; true / false when it was read, null when it could not be. */
    private Boolean namespace(Kube k, String name, String ns, String fix) {
        Boolean[] found = {null};
        one(name, () -> {
            found[0] = k.call(() -> k.client.namespaces().withName(ns).get(), "read namespace " + ns) != null;
            if (found[0]) line(name, DONE, "namespace " + ns + " exists", null);
            else line(name, MISSING, "no namespace " + ns, fix);
        });
        return found[0];
    }

    /** The istiod Service's line; returns the revision it carries. */
    private String istiodService(Service svc) {
        line("service istiod", KubeLayout.GUIDE.istiodServiceCheck(svc));
        return svc == null ? null : Istio.revisionOf(svc);
    }

    /** istiod's stage from its pods' readiness (no logs read): 3/3 is done. */
    private void istiod(List<Pod> pods) {
        if (pods.isEmpty()) { line("istiod pods", MISSING, "no istiod pod in " + KubeLayout.ISTIO_NAMESPACE, "install-asm"); return; }
        List<IstiodStages.PodReport> reports = new ArrayList<>();
        for (Pod p : pods) reports.add(IstiodStages.inspect(p, container -> null, kek.id));
        IstiodStages.Stage stage = IstiodStages.overall(reports);
        String ready = String.join(", ", reports.stream().map(r -> r.name() + " " + r.readiness()).toList());
        boolean full = reports.stream().allMatch(r -> r.total() == Istio.ISTIOD_CONTAINERS && r.ready() == r.total());
        if (stage == IstiodStages.Stage.RUNNING && full) line("istiod pods", DONE, ready, null);
        else line("istiod pods", WRONG, ready + ": " + stage.words, stage.next());
    }

    private void csr(Secret csr) {
        String name = "secret " + Istio.CSR_SECRET;
        if (csr == null) { line(name, MISSING, "no Secret " + Istio.CSR_SECRET + " (istiod writes it when it starts)", "install-asm"); return; }
        String b64 = csr.getData() == null ? null : csr.getData().get("kek-id");
        String kek = b64 == null ? null : new String(Base64.getDecoder().decode(b64), StandardCharsets.UTF_8);
        if (kek == null || csr.getData().get("encrypted-csr") == null) line(name, WRONG, Istio.CSR_SECRET + " lacks kek-id or encrypted-csr",
                "istiod writes no new CSR while the Secret exists: " + Istio.NEW_CSR_FOR_ITS_KEY);
        else if (this.kek.id != null && !this.kek.id.equals(kek)) line(name, WRONG, "CSR encrypted with KEK " + kek + ", not KEK_ID " + this.kek.id, "install-asm with the KEK generated by gen-kek");
        else line(name, DONE, "CSR of istiod, encrypted with KEK " + kek, null);
    }

    /** The Secret's line; returns its certificates when they could be read (even in a form istiod refuses), else null. */
    private List<X509Certificate> chain(Secret secret, boolean csrExists) {
        String name = "secret " + Istio.CA_CERT_SECRET, fix = "decrypt-csr, sign-csr, then upload-chain";
        String b64 = secret == null || secret.getData() == null ? null : secret.getData().get(Istio.CA_CERT_KEY);
        if (secret == null) { line(name, MISSING, "no Secret " + Istio.CA_CERT_SECRET + (csrExists ? "" : " (and no CSR yet)"), csrExists ? fix : "install-asm, then " + fix); return null; }
        if (b64 == null) { line(name, WRONG, Istio.CA_CERT_SECRET + " has no " + Istio.CA_CERT_KEY, fix); return null; }
        List<X509Certificate> chain;
        byte[] pem = Base64.getDecoder().decode(b64);
        try {
            chain = Pki.certificates(Pki.pemBlocks(new String(pem, StandardCharsets.UTF_8), name), name);
        } catch (Fail f) {
            line(name, WRONG, f.getMessage(), fix);
            return null;
        }
        String split = Istio.splitProblem(pem);
        if (split != null) {
            line(name, WRONG, "istiod refuses its " + Istio.CA_CERT_KEY + " (error spliting the cert chain): " + split,
                    "upload-chain -f cert-chain.pem (it uploads the form istiod accepts); " + Istio.RESTART_TO_RELOAD);
            return chain;
        }
        String problem = hsmRoot == null ? null : Pki.chainProblem(Pki.ChainRules.STRICT, chain, hsmRoot, new java.util.Date(), Istio.CA_CERT_KEY);
        if (problem == null && hsmRoot != null && !Pki.sameCert(chain.get(chain.size() - 1), hsmRoot))
            problem = "it ends at '" + Pki.name(chain.get(chain.size() - 1)) + "', not at the HSM root";
        if (problem != null) line(name, WRONG, problem, "sign-csr with the HSM's root, then upload-chain --replace");
        else line(name, DONE, chain.size() + " certificate(s), CA '" + Pki.name(chain.get(0)) + "'"
                + (hsmRoot == null ? " (HSM root not read: not compared)" : ", ending at the HSM root"), null);
        return chain;
    }

    private void injection(List<Namespace> labelled, String rev) {
        if (labelled.isEmpty()) { line("injection", MISSING, "no namespace is labelled " + Istio.REV_LABEL, "enable-injection --namespace NAMESPACE"); return; }
        List<String> names = new ArrayList<>(), wrong = new ArrayList<>();
        for (Namespace n : labelled) {
            String name = n.getMetadata().getName(), r = Istio.revisionOf(n);
            names.add(name + "=" + r);
            if (n.getMetadata().getLabels().containsKey(Istio.INJECTION_LABEL)) wrong.add(name + " also has " + Istio.INJECTION_LABEL);
            else if (rev != null && !rev.equals(r)) wrong.add(name + " is labelled " + r + ", istiod runs " + rev);
        }
        if (wrong.isEmpty()) line("injection", DONE, String.join(", ", names), null);
        else line("injection", WRONG, String.join("; ", wrong), "enable-injection --namespace NAMESPACE");
    }

    private void ingress(Service gw) {
        String name = "ingress address";
        if (gw == null) { line(name, MISSING, "no Service " + Istio.INGRESS_GATEWAY, "install-asm"); return; }
        String type = gw.getSpec().getType(), ip = gw.getSpec().getLoadBalancerIP();
        if ("LoadBalancer".equals(type) && ip != null && !ip.isBlank()) line(name, DONE, Istio.INGRESS_GATEWAY + " loadBalancerIP " + ip, null);
        else if ("LoadBalancer".equals(type)) line(name, MISSING, Istio.INGRESS_GATEWAY + " has no loadBalancerIP", "external-ip --mode integrated --ip ADDRESS");
        else if ("NodePort".equals(type)) line(name, DONE, Istio.INGRESS_GATEWAY + " is NodePort: manual mode, forwarded by your load balancer (external-ip --mode manual shows the plan)", null);
        else line(name, WRONG, Istio.INGRESS_GATEWAY + " is " + type + ": it has no external address", "make it LoadBalancer or NodePort, then external-ip");
    }

}
