package asmhsm;

import io.fabric8.kubernetes.api.model.ConfigMap;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the toolkit knows about Istio / ASM 1.9: names, labels, rules and log formats that
 * istiod, the injector and istioctl use, so that steps check what the mesh will check.
 */
public final class Istio {
    private Istio() {}

    // ================================================================ istiod install and stages
    // install-asm, istiod-status

    /** The profile the guide installs with (istioctl install --set profile=...). */
    public static final String PROFILE = "asm-multicloud";

    /** A revision is a label value and part of object names: the rule is Opts.revisionProblem's. */
    public static String requireRevision(String revision) {
        String problem = Opts.revisionProblem(revision);
        if (problem != null) throw Fail.badInput(problem, "use the guide's " + GUIDE_REVISION);
        return revision;
    }

    // ------------------------------------------------------------------ install-asm

    /** The values of the guide's `istioctl install` (section "Instale Anthos Service Mesh"). */
    public record InstallSettings(String revision, String kekId, String hsmPluginImage, String hsmSlotLabel,
                                  String vaultClientImage, String vaultAddr, String hsmSecretPath) {

        public static final String VAULT_AUTH_ROLE = "istiod";
        public static final String VAULT_AUTH_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token";
        public static final String JWT_POLICY = "first-party-jwt";

        /** Every `--set` of the guide, path -> value, in the guide's order. */
        public Map<String, Object> sets() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("profile", PROFILE);
            m.put("revision", revision);
            m.put("values.hsm.enabled", true);
            m.put("values.hsm.hsmKEKID", kekId);
            m.put("values.hsm.hsmPluginImage", hsmPluginImage);
            m.put("values.hsm.hsmSlotLabel", hsmSlotLabel);
            m.put("values.hsm.vaultClientImage", vaultClientImage);
            m.put("values.hsm.vaultAddr", vaultAddr);
            m.put("values.hsm.vaultAuthPath", "auth/" + hsmSecretPath + "/login");
            m.put("values.hsm.vaultAuthRole", VAULT_AUTH_ROLE);
            m.put("values.hsm.vaultAuthJwtPath", VAULT_AUTH_JWT_PATH);
            m.put("values.hsm.vaultSecretPath", hsmSecretPath);
            m.put("values.global.jwtPolicy", JWT_POLICY);
            return m;
        }

        /** `install --set k=v ...` then `-f F` for each extra file: istioctl's arguments. */
        public List<String> istioctlArgs(List<String> extraFiles) {
            List<String> args = new ArrayList<>(List.of("install"));
            sets().forEach((k, v) -> args.addAll(List.of("--set", k + "=" + v)));
            for (String f : extraFiles) args.addAll(List.of("-f", f));
            return args;
        }

        /** The same settings as an IstioOperator resource (`istioctl install -f` reads it). */
        public Map<String, Object> istioOperator() {
            Map<String, Object> spec = new LinkedHashMap<>();
            sets().forEach((path, value) -> {
                Map<String, Object> at = spec;
                String[] keys = path.split("\\.");
                for (int i = 0; i < keys.length - 1; i++) {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> next = (Map<String, Object>) at.computeIfAbsent(keys[i], k -> new LinkedHashMap<String, Object>());
                    at = next;
                }
                at.put(keys[keys.length - 1], value);
            });
            Map<String, Object> iop = new LinkedHashMap<>();
            iop.put("apiVersion", "install.istio.io/v1alpha1");
            iop.put("kind", "IstioOperator");
            iop.put("spec", spec);
            return iop;
        }
    }

    /** The root CA, for the root hook: a ConfigMap in istio-system, mounted read-only into hsm-plugin. */
    public static final String ROOT_CONFIGMAP = "istio-hsm-root", ROOT_KEY = "root.pem", ROOT_VOLUME = "hsm-root", ROOT_MOUNT = "/etc/hsm-root";

    /** The root hook's ConfigMap. */
    public static ConfigMap rootConfigMap(String rootPem) {
        return new io.fabric8.kubernetes.api.model.ConfigMapBuilder().withNewMetadata().withName(ROOT_CONFIGMAP).withNamespace(asmhsm.KubeLayout.ISTIO_NAMESPACE)
                .addToLabels("app.kubernetes.io/managed-by", "asm-hsm").endMetadata().addToData(ROOT_KEY, rootPem).build();
    }

    /**
     * The root hook as an IstioOperator overlay of istiod's Deployment (istioctl's k8s.overlays;
     * a value at a list's path replaces the whole list, so the volume and the mount go to `[-1]`,
     * which appends): the ConfigMap as a volume, mounted into hsm-plugin, and a
     * postStart hook that runs the plugin's import-ca in every new hsm-plugin container, since the
     * plugin verifies istiod's chain only against a root imported in its own process.
     */
    public static Map<String, Object> rootHookOverlay(String revision, String caId) {
        String container = "spec.template.spec.containers.[name:" + HSM_PLUGIN_CONTAINER + "]";
        List<Map<String, Object>> patches = List.of(
                ordered("path", "spec.template.spec.volumes.[-1]", "value", ordered("name", ROOT_VOLUME, "configMap", ordered("name", ROOT_CONFIGMAP))),
                ordered("path", container + ".volumeMounts.[-1]", "value", ordered("name", ROOT_VOLUME, "mountPath", ROOT_MOUNT, "readOnly", true)),
                ordered("path", container + ".lifecycle", "value", ordered("postStart", ordered("exec", ordered("command",
                        KmsPlugin.postStartImportCommand(ROOT_MOUNT + "/" + ROOT_KEY, caId))))));
        Map<String, Object> overlay = new LinkedHashMap<>();
        overlay.put("kind", "Deployment");
        overlay.put("name", istiodDeployment(revision));
        overlay.put("patches", patches);
        Map<String, Object> iop = new LinkedHashMap<>();
        iop.put("apiVersion", "install.istio.io/v1alpha1");
        iop.put("kind", "IstioOperator");
        iop.put("spec", ordered("components", ordered("pilot", ordered("k8s", ordered("overlays", List.of(overlay))))));
        return iop;
    }

    /** A map that keeps the order it was given (a file written twice must be the same bytes). */
    private static Map<String, Object> ordered(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    /** istiod's Deployment of a revision, as the chart names it. */
    public static String istiodDeployment(String revision) {
        return revision == null || revision.isEmpty() ? ISTIOD_APP : ISTIOD_APP + "-" + revision;
    }

    /**
     * istioctl's report that it gave up waiting for resources to become ready. With the
     * guide's WAIT_FOR_RESOURCES_TIMEOUT=10s this is expected: istiod waits for its CA.
     */
    public static final String ISTIOCTL_WAIT_TIMEOUT = "resources not ready after";
    /** istioctl's line for a component that failed ("✘ Istiod encountered an error: ..."). */
    public static final Pattern ISTIOCTL_COMPONENT_ERROR = Pattern.compile("(?m)^.*encountered an error: (.*)$");

    /** True when istioctl failed only because it stopped waiting (each failed component timed out waiting). */
    public static boolean onlyWaitTimedOut(String istioctlOutput) {
        Matcher m = ISTIOCTL_COMPONENT_ERROR.matcher(istioctlOutput);
        boolean any = false;
        while (m.find()) {
            if (!m.group(1).contains(ISTIOCTL_WAIT_TIMEOUT)) return false;
            any = true;
        }
        return any;
    }

    // ------------------------------------------------------------------ istiod-status

    /** The HSM plugin's container in the istiod pod (its log names the KEK). */
    public static final String HSM_PLUGIN_CONTAINER = "hsm-plugin";

    /** istiod's log lines (scope pkica), in the order a first start prints them. */
    public static final String LOG_KMS_CA = "Use KMS backed CA";
    public static final String LOG_CSR_WRITTEN = "Newly generated CSR is successfully written into secret istio-ca-cert-csr.";
    public static final String LOG_CSR_EXISTS = "CSR exists in secret istio-ca-cert-csr.";
    public static final String LOG_WAITING_FOR_CA = "Wait until the CA certificate secret istio-system.istio-ca-cert can be loaded";
    public static final String LOG_SECRET_LOADED = "Successfully loaded the secret.";
    public static final String LOG_CA_LOADED = "Loaded decrypted CA key and CA certificate into memory.";
    public static final String LOG_CHAIN_REJECTED = "Failed to verify certificate chain";
    /** istiod's own words (sic) when cert-chain.pem is not CA first, root last, without a trailing blank line. */
    public static final String LOG_CHAIN_SPLIT = "error spliting the cert chain";
    /**
     * The guide's sample hsm-plugin log names the KEK ("KEK ID: 7651a4ea-..."), but the real
     * plugin's serve never prints it (only its generate-kek and decrypt-csr clients do): it is
     * compared when present, and never waited for.
     */
    public static final Pattern LOG_KEK_ID = Pattern.compile("KEK ID: (\\S+)");

    private static final Pattern WAITING_LINE =
            Pattern.compile("Wait until the CA certificate secret \\S+\\.istio-ca-cert can be loaded");

    /** Where istiod is on its way to serving certificates signed by the HSM-held CA key. */
    public enum Stage {
        CRASH_LOOPING("crash-looping", "crash-looping (istiod aborts at start-up)"),
        NOT_STARTED("not-started", "not started"),
        WAITING_FOR_CA("waiting-for-ca", "waiting for the CA"),
        RUNNING("running", "running");

        public final String id;
        public final String words;

        Stage(String id, String words) {
            this.id = id;
            this.words = words;
        }

        public static Stage of(String id) {
            for (Stage s : values()) if (s.id.equals(id)) return s;
            throw Fail.badInput("unknown stage '" + id + "'", "use waiting-for-ca or running");
        }

        /** What the operator does next at this stage. */
        public String next() {
            return next("", "");
        }

        /**
         * The same, the steps named with the options the operator gave (see Out#given): `kube` the
         * cluster's, `istiod` those and istiod's namespace and KEK ID.
         */
        public String next(String kube, String istiod) {
            return switch (this) {
                case CRASH_LOOPING -> "istiod's discovery container exits at start-up: fix the cause named above; it restarts by itself (back-off up to 5 min)";
                case NOT_STARTED -> "wait for the pods to start (istiod-status --wait" + istiod + "); if they do not, look at the problems above";
                case WAITING_FOR_CA -> "istiod waits for its CA certificate: run decrypt-csr" + istiod + ", sign-csr, then upload-chain" + istiod;
                case RUNNING -> "istiod runs with its CA: check the chain it loaded with verify-ca" + kube + ", then enable-injection" + kube;
            };
        }
    }

    public record Problem(String what, String hint) {}

    public record ContainerReport(String name, boolean ready, String state, int restarts) {}

    /** One istiod pod as istiod-status shows it. Log lines are null when the log could not be read. */
    public record PodReport(String name, String revision, String phase, int ready, int total,
                            List<ContainerReport> containers, Stage stage, String kekId, String waitingLine,
                            List<String> notes, List<Problem> problems) {
        public String readiness() { return ready + "/" + total; }

        /** The pod as istiod-status prints it, line by line: its containers, what its logs say, its state and its restart story. */
        public List<String> lines(Explanation why, String story) {
            List<String> l = new ArrayList<>();
            l.add(String.format("  pod %s  %s  %s%s", name, readiness(), phase, revision == null ? "" : "  revision " + revision));
            for (ContainerReport c : containers)
                l.add(String.format("    %-12s %-9s %s%s", c.name(), c.ready() ? "ready" : "not ready", c.state(), c.restarts() > 0 ? " (" + c.restarts() + " restarts)" : ""));
            if (kekId != null) l.add("    hsm-plugin log: KEK ID: " + kekId);
            if (waitingLine != null) l.add("    discovery log: " + waitingLine);
            notes.forEach(n -> l.add("    note: " + n));
            problems.forEach(pr -> l.add("    problem: " + pr.what()));
            l.add("    state: " + why.line());
            if (story != null) l.add("    " + story);
            return l;
        }

        /** The pod as istiod-status's JSON result gives it. */
        public Map<String, Object> json(Explanation why, String story) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", name);
            m.put("revision", revision);
            m.put("phase", phase);
            m.put("ready", readiness());
            m.put("stage", stage.id);
            m.put("containers", containers);
            m.put("kekId", kekId);
            m.put("waitingForCaLogged", waitingLine != null);
            m.put("notes", notes);
            m.put("problems", problems);
            m.put("state", why.state());
            m.put("explanation", why.what());
            m.put("todo", why.todo());
            m.put("restart", story);
            return m;
        }
    }

    /** What istiod's discovery log says of the CA, from its last relevant line. */
    enum CaLog { NOTHING, WAITING, LOADED, REJECTED }

    /**
     * The last word of the log on the CA. Lines that sound like failures but are not (istiod
     * prints "Failed to read CA cert CSR from secret (... istio-ca-cert not found)" and
     * "secretcontroller Failed on loading CA secret" while a Secret is still missing) are not read.
     */
    static CaLog caLog(String log) {
        CaLog state = CaLog.NOTHING;
        for (String line : log.split("\n")) {
            if (WAITING_LINE.matcher(line).find()) state = CaLog.WAITING;
            else if (line.contains(LOG_SECRET_LOADED) || line.contains(LOG_CA_LOADED)) state = CaLog.LOADED;
            else if (line.contains(LOG_CHAIN_REJECTED) || line.contains(LOG_CHAIN_SPLIT)) state = CaLog.REJECTED;
        }
        return state;
    }

    /** The problem of istiod's last abort line, with the step that really fixes it. */
    static Problem abortProblem(String log) {
        String line = lastLine(log, Pattern.compile(Pattern.quote(LOG_CHAIN_REJECTED) + "|" + Pattern.quote(LOG_CHAIN_SPLIT)));
        if (line == null) return null;
        if (line.contains(KmsPlugin.NOT_LOADED))
            return new Problem("istiod aborted: its HSM plugin has no root loaded (" + KmsPlugin.NOT_LOADED + ")",
                    "run load-root: the plugin verifies only against a root imported in its own process (signing again cannot help);"
                            + " the discovery container then restarts by itself");
        if (line.contains(LOG_CHAIN_SPLIT))
            return new Problem("istiod cannot split cert-chain.pem (" + LOG_CHAIN_SPLIT + ")",
                    "upload-chain --replace with the chain as sign-csr writes it: the CA certificate first, the root last, no blank line after it");
        return new Problem("istiod refused the CA chain: " + line,
                "the CA certificate must be issued directly by the root imported in the HSM: sign-csr again, then upload-chain --replace");
    }

    /**
     * A container's recent log; for a container that restarted, its last run's log first (it
     * holds the abort that ended that run). Null when the API server serves none.
     */
    public static String containerLog(Kube k, Pod pod, String container) {
        var c = k.client.pods().inNamespace(pod.getMetadata().getNamespace()).withName(pod.getMetadata().getName()).inContainer(container);
        String log = c.tailingLines(5000).getLog();
        if (!restarted(pod, container)) return log;
        String previous;
        try {
            previous = c.terminated().tailingLines(5000).getLog();
        } catch (io.fabric8.kubernetes.client.KubernetesClientException e) {
            previous = null; // no earlier run kept: the current log is all there is
        }
        return (previous == null ? "" : previous) + (log == null ? "" : log);
    }

    private static boolean restarted(Pod pod, String container) {
        if (pod.getStatus() == null || pod.getStatus().getContainerStatuses() == null) return false;
        return pod.getStatus().getContainerStatuses().stream()
                .anyMatch(cs -> container.equals(cs.getName()) && cs.getRestartCount() != null && cs.getRestartCount() > 0);
    }

    static String lastLine(String log, Pattern p) {
        String found = null;
        for (String line : log.split("\n")) if (p.matcher(line).find()) found = line.strip();
        return found;
    }

    /**
     * The stage of one istiod pod, from its container statuses and, when `logs` can give
     * them (null otherwise), the hsm-plugin and discovery logs. expectedKek, when given,
     * is compared with the KEK ID the plugin printed.
     */
    public static PodReport inspect(Pod pod, Function<String, String> logs, String expectedKek) {
        List<String> notes = new ArrayList<>();
        List<Problem> problems = new ArrayList<>();
        var status = pod.getStatus();
        String phase = status == null || status.getPhase() == null ? "Unknown" : status.getPhase();
        List<ContainerReport> containers = new ArrayList<>();
        Map<String, ContainerStatus> byName = new LinkedHashMap<>();
        if (status != null && status.getContainerStatuses() != null)
            for (ContainerStatus cs : status.getContainerStatuses()) byName.put(cs.getName(), cs);
        List<String> names = containerNames(pod);
        byName.keySet().forEach(n -> { if (!names.contains(n)) names.add(n); });
        int ready = 0;
        for (String n : names) {
            ContainerStatus cs = byName.get(n);
            boolean r = cs != null && Boolean.TRUE.equals(cs.getReady());
            if (r) ready++;
            String state = describe(cs);
            int restarts = cs == null || cs.getRestartCount() == null ? 0 : cs.getRestartCount();
            containers.add(new ContainerReport(n, r, state, restarts));
            String reason = waitingReason(cs);
            if (reason != null && reason.matches("CrashLoopBackOff|ImagePullBackOff|ErrImagePull|InvalidImageName|CreateContainerConfigError|CreateContainerError|RunContainerError"))
                problems.add(containerProblem(n, reason, cs, restarts));
        }
        String revision = revisionOf(pod);

        String kekId = null, waitingLine = null;
        CaLog ca = null;
        Problem aborted = null;
        ContainerStatus plugin = byName.get(HSM_PLUGIN_CONTAINER), discovery = byName.get(DISCOVERY_CONTAINER);
        if (started(plugin)) {
            String log = logs.apply(HSM_PLUGIN_CONTAINER);
            if (log != null) {
                String line = lastLine(log, LOG_KEK_ID);
                if (line != null) {
                    Matcher m = LOG_KEK_ID.matcher(line);
                    m.find();
                    kekId = m.group(1);
                    if (expectedKek != null && !expectedKek.equals(kekId))
                        problems.add(new Problem("hsm-plugin uses KEK " + kekId + ", not KEK_ID " + expectedKek,
                                "install-asm again with the KEK generated by gen-kek (KEK_ID), or correct KEK_ID"));
                }
            }
        }
        if (started(discovery)) {
            String log = logs.apply(DISCOVERY_CONTAINER);
            if (log != null) {
                ca = caLog(log);
                waitingLine = lastLine(log, WAITING_LINE);
                if (ca == CaLog.REJECTED) aborted = abortProblem(log);
            }
        }

        int discoveryRestarts = discovery == null || discovery.getRestartCount() == null ? 0 : discovery.getRestartCount();
        boolean crashLooping = "CrashLoopBackOff".equals(waitingReason(discovery))
                || (aborted != null && discoveryRestarts > 0 && !Boolean.TRUE.equals(discovery.getReady()));
        if (aborted != null) {
            // the abort names the cause: it replaces the container's generic crash-loop problem
            problems.removeIf(p -> p.what().startsWith("container " + DISCOVERY_CONTAINER + ":"));
            problems.add(0, aborted);
        }
        Stage stage;
        boolean discoveryRunning = discovery != null && discovery.getState() != null && discovery.getState().getRunning() != null;
        boolean discoveryReady = discovery != null && Boolean.TRUE.equals(discovery.getReady());
        if ("Running".equals(phase) && crashLooping) {
            stage = Stage.CRASH_LOOPING;
            notes.add("discovery has restarted " + discoveryRestarts + " time(s)" + (aborted == null ? "; no abort line in the log read" : ""));
        } else if (!"Running".equals(phase) || names.isEmpty()) {
            stage = Stage.NOT_STARTED;
            notes.add("pod is " + phase + podReason(pod));
        } else if (ready == names.size()) {
            stage = Stage.RUNNING;
        } else if (discoveryRunning && !discoveryReady && (ca == CaLog.WAITING || ca == CaLog.LOADED)) {
            stage = Stage.WAITING_FOR_CA;
            if (ca == CaLog.LOADED) notes.add("istiod has loaded its CA certificate; discovery is not ready yet");
        } else if (discoveryRunning && !discoveryReady && ca == null && ready == names.size() - 1) {
            // no log to read: the guide's sign, 2/3 with only discovery not ready
            stage = Stage.WAITING_FOR_CA;
            notes.add("inferred from readiness (" + ready + "/" + names.size() + ", only discovery not ready): no discovery log to read");
        } else {
            stage = Stage.NOT_STARTED;
            List<String> notReady = new ArrayList<>();
            for (ContainerReport c : containers) if (!c.ready()) notReady.add(c.name());
            notes.add("not ready: " + String.join(", ", notReady)
                    + (discoveryRunning && ca == CaLog.NOTHING ? "; discovery has not started waiting for the CA yet" : ""));
        }
        return new PodReport(pod.getMetadata().getName(), revision, phase, ready, names.size(), containers, stage,
                kekId, waitingLine, notes, problems);
    }

    // ------------------------------------------------------------------ what istiod does on a restart

    /**
     * What a restart of istiod does, the one story every runbook and hint tells: istiod reads its three Secrets
     * only when its discovery container starts. The discovery container restarting alone (an abort,
     * a crash) keeps the pod and its hsm-plugin process, so a root loaded into that plugin stays loaded;
     * a new pod (rollout restart, eviction, node drain) has a fresh plugin that needs the root loaded
     * again (install-asm's root hook does it, else load-root).
     */
    public static final String RESTART_TO_RELOAD = restartToReload(KubeLayout.ISTIO_NAMESPACE);

    /** {@link #RESTART_TO_RELOAD} for istiod in `namespace`. */
    public static String restartToReload(String namespace) {
        return "istiod reads it only when it starts: " + rolloutRestart(namespace);
    }

    /** The restart that keeps serving, and what its new pods need: their plugins start with no root loaded. */
    static String rolloutRestart(String namespace) {
        return "kubectl rollout restart deployment -n " + namespace + " -l app=" + ISTIOD_APP
                + " (the new pods' plugins load the root through install-asm's root hook; without it, run load-root)";
    }

    /**
     * How istiod is made to start over with a new CA key and CSR, as the real istiod starts: without
     * istio-ca-encrypted-key it makes a new key (and keeps an existing CSR, though made for the old key);
     * it writes a CSR only when istio-ca-cert and istio-ca-cert-csr are both missing. So the three go, the
     * chain first and the key last as rotate-ca removes them, then a restart.
     */
    public static final String NEW_KEY_AND_CSR = "delete Secrets " + Istio.CA_CERT_SECRET + ", " + Istio.CSR_SECRET + " and " + Istio.ENCRYPTED_KEY_SECRET
            + " (those there, in that order; rotate-ca does it for a running CA, keeping a backup), then " + rolloutRestart(KubeLayout.ISTIO_NAMESPACE)
            + ": its next start makes a new CA key and CSR, to decrypt, sign and upload again";

    /** How istiod comes to write a new CSR for the key it keeps: a start without istio-ca-cert and istio-ca-cert-csr. */
    public static final String NEW_CSR_FOR_ITS_KEY = "delete Secrets " + Istio.CA_CERT_SECRET + " and " + Istio.CSR_SECRET + " (those there), then "
            + rolloutRestart(KubeLayout.ISTIO_NAMESPACE) + ": its next start writes a CSR for the key it has, to decrypt, sign and upload";

    /** Which of istiod's Secrets exist, and when istio-ca-cert was last written (null when it is not there). */
    public record CaSecrets(boolean csr, boolean encryptedKey, boolean caCert, java.time.Instant caCertChanged) {
        public static CaSecrets read(Kube k, String namespace) {
            var secrets = k.call(() -> k.client.secrets().inNamespace(namespace).list().getItems(), "list the Secrets in " + namespace);
            boolean csr = false, key = false;
            io.fabric8.kubernetes.api.model.Secret chain = null;
            for (var s : secrets) {
                String n = s.getMetadata().getName();
                if (CSR_SECRET.equals(n)) csr = true;
                else if (ENCRYPTED_KEY_SECRET.equals(n)) key = true;
                else if (CA_CERT_SECRET.equals(n)) chain = s;
            }
            return new CaSecrets(csr, key, chain != null, chain == null ? null : lastChange(chain));
        }
    }

    /** One pod's state in words, and what to do about it (istiod-status prints one line of each). */
    public record Explanation(String state, String what, String todo) {
        public String line() { return what + (todo == null ? "" : " -> " + todo); }
    }

    /** What this pod's istiod is doing, read from its stage, its log's abort and which Secrets exist. */
    public static Explanation explain(PodReport p, CaSecrets s) {
        Problem first = p.problems().isEmpty() ? null : p.problems().get(0);
        if (p.stage() == Stage.CRASH_LOOPING && first != null && first.what().contains(KmsPlugin.NOT_LOADED))
            return new Explanation("no-root-loaded", "crash loop: this pod's HSM plugin has no root loaded, so istiod aborts at every start",
                    "load-root (signing again cannot help); the discovery container then restarts by itself and the plugin keeps the root");
        if (p.stage() == Stage.CRASH_LOOPING)
            return new Explanation("crash-loop", "crash loop: " + (first == null ? "the discovery container keeps exiting" : first.what()),
                    first == null ? "look at its log: kubectl logs -c discovery --previous -n NAMESPACE " + p.name() : first.hint());
        if (!s.encryptedKey() && s.caCert())
            return new Explanation("secrets-missing", "Secret " + ENCRYPTED_KEY_SECRET + " is missing while " + CA_CERT_SECRET
                    + " exists: istiod's next start makes a new CA key, keeps any CSR, and aborts: the chain certifies the lost key",
                    "restore " + ENCRYPTED_KEY_SECRET + " from a backup (rotate-ca keeps one while it runs); else " + NEW_CSR_FOR_ITS_KEY);
        if (p.stage() == Stage.NOT_STARTED)
            return new Explanation("not-started", "istiod has not started" + (s.csr() ? "; when it does it reads its Secrets again and writes no new CSR ("
                    + CSR_SECRET + " exists)" : "; when it does it writes its CSR into Secret " + CSR_SECRET),
                    "wait: istiod-status --wait; if it does not start, see the notes and problems above");
        if (p.stage() == Stage.RUNNING)
            return new Explanation("loaded", "istiod loaded its CA key and the chain of " + CA_CERT_SECRET + " and serves certificates",
                    "verify-ca; a changed chain needs a restart: " + RESTART_TO_RELOAD);
        if (s.caCert())
            return new Explanation("chain-uploaded", "Secret " + CA_CERT_SECRET + " is there; istiod polls for it every 2 s while it waits"
                    + (s.csr() ? "" : " (it needs no CSR beside it: it writes one only when both Secrets are missing)"),
                    "wait (istiod-status --wait running); if discovery stays not ready, verify-ca names what istiod logged");
        if (s.csr())
            return new Explanation("waiting-for-chain", "istiod wrote its CSR (Secret " + CSR_SECRET + ") and polls every 2 s for Secret " + CA_CERT_SECRET,
                    "decrypt-csr, sign-csr, then upload-chain");
        return new Explanation("waiting-for-csr", "istiod has not written its CSR yet (no Secret " + CSR_SECRET + "): it does about 6 s after it starts"
                + (s.encryptedKey() ? "" : ", with a new CA key (no Secret " + ENCRYPTED_KEY_SECRET + ")"), "wait: istiod-status --wait");
    }

    /**
     * What this pod's history means for its plugin's root: a discovery container that restarted in the same pod
     * (the plugin process kept the root it had), or a pod made after the chain was written (a fresh plugin, whose
     * root the root hook loads, else load-root). Null when neither applies.
     */
    public static String restartStory(PodReport p, Pod pod, CaSecrets s) {
        int restarts = 0;
        for (ContainerReport c : p.containers()) if (DISCOVERY_CONTAINER.equals(c.name())) restarts = c.restarts();
        if (restarts > 0)
            return "restarted container: discovery restarted " + restarts + " time(s) in this pod; each start read the Secrets again"
                    + (s.csr() ? " and wrote no new CSR (" + CSR_SECRET + " exists)" : "")
                    + "; the hsm-plugin process is the same, so a root loaded into it stays loaded";
        if (!s.caCert() || s.caCertChanged() == null || pod.getMetadata().getCreationTimestamp() == null) return null;
        java.time.Instant created;
        try {
            created = java.time.Instant.parse(pod.getMetadata().getCreationTimestamp());
        } catch (java.time.format.DateTimeParseException e) {
            return null;
        }
        if (created.isBefore(s.caCertChanged())) return null;
        String hook = rootHookProblem(pod, null);
        return "new pod (made " + created + ", after " + CA_CERT_SECRET + " was written): its hsm-plugin started with no root loaded"
                + (hook == null ? "; install-asm's root hook loads it at start -> if istiod aborts all the same, load-root"
                        : " and " + hook + " -> load-root");
    }

    /**
     * istiod's pods in a namespace as istiod-status looks at them once: each one's report (from its
     * status and its logs, the KEK expected when given), the pods by name, and the logs that could not
     * be read (the API server could not serve them, or served them empty as for a pod no kubelet runs:
     * a running istiod always logs something), once each.
     */
    public record Inspection(List<PodReport> reports, Map<String, Pod> pods, Map<String, String> unreadable) {
        public static Inspection of(Kube k, String namespace, String expectedKek) {
            Inspection i = new Inspection(new ArrayList<>(), new LinkedHashMap<>(), new LinkedHashMap<>());
            for (Pod pod : k.call(() -> istiodPods(k.client, namespace), "list the istiod pods in " + namespace)) {
                i.pods.put(pod.getMetadata().getName(), pod);
                i.reports.add(inspect(pod, container -> i.log(k, pod, container), expectedKek));
            }
            return i;
        }

        private String log(Kube k, Pod pod, String container) {
            String where = pod.getMetadata().getName() + "/" + container;
            try {
                String log = containerLog(k, pod, container);
                if (log != null && !log.isBlank()) return log;
                unreadable.putIfAbsent(where, "the log of " + where + " is empty");
            } catch (io.fabric8.kubernetes.client.KubernetesClientException e) {
                unreadable.putIfAbsent(where, "cannot read the log of " + where + ": " + Kube.reason(e));
            }
            return null;
        }

        /** "1/3, 3/3 ready", or "no pods yet". */
        public String readiness() {
            if (reports.isEmpty()) return "no pods yet";
            return String.join(", ", reports.stream().map(PodReport::readiness).toList()) + " ready";
        }
    }

    /** istiod pods (app=istiod) in a namespace, oldest first, leaving out those being deleted. */
    public static List<Pod> istiodPods(KubernetesClient k, String namespace) {
        List<Pod> pods = new ArrayList<>();
        for (Pod p : k.pods().inNamespace(namespace).withLabel("app", ISTIOD_APP).list().getItems())
            if (p.getMetadata().getDeletionTimestamp() == null) pods.add(p);
        pods.sort(java.util.Comparator.comparing(p -> String.valueOf(p.getMetadata().getCreationTimestamp())));
        return pods;
    }

    /** The least advanced stage of all pods: istiod is only as far as its slowest pod. */
    public static Stage overall(List<PodReport> pods) {
        Stage s = Stage.RUNNING;
        for (PodReport p : pods) if (p.stage().ordinal() < s.ordinal()) s = p.stage();
        return pods.isEmpty() ? Stage.NOT_STARTED : s;
    }

    private static String describe(ContainerStatus cs) {
        if (cs == null || cs.getState() == null) return "no status";
        var st = cs.getState();
        if (st.getRunning() != null) return "running";
        if (st.getWaiting() != null) return "waiting: " + st.getWaiting().getReason();
        if (st.getTerminated() != null) return "terminated: " + st.getTerminated().getReason();
        return "unknown";
    }

    /** A container that runs or ran, so it has a log to read. */
    private static boolean started(ContainerStatus cs) {
        if (cs == null || cs.getState() == null) return false;
        return cs.getState().getRunning() != null || cs.getState().getTerminated() != null
                || (cs.getRestartCount() != null && cs.getRestartCount() > 0);
    }

    private static String waitingReason(ContainerStatus cs) {
        return cs == null || cs.getState() == null || cs.getState().getWaiting() == null ? null : cs.getState().getWaiting().getReason();
    }

    private static Problem containerProblem(String container, String reason, ContainerStatus cs, int restarts) {
        String msg = cs.getState().getWaiting().getMessage();
        String what = "container " + container + ": " + reason + (restarts > 0 ? " (" + restarts + " restarts)" : "")
                + (msg == null || msg.isBlank() ? "" : ": " + msg.strip());
        String hint;
        if (reason.contains("Image") || reason.equals("ErrImagePull"))
            hint = "check HSM_PLUGIN_IMAGE / VAULT_CLIENT_IMAGE and that the cluster may pull them (the guide: ask support for image access)";
        else if (container.equals(HSM_PLUGIN_CONTAINER))
            hint = "the HSM plugin cannot start: check the HSM is reachable from the cluster and the slot label, then vault-verify"
                    + " (kubectl logs -c hsm-plugin -l app=istiod -n istio-system)";
        else if (container.equals(DISCOVERY_CONTAINER))
            hint = "look at istiod's log: kubectl logs -c discovery -l app=istiod -n istio-system";
        else
            hint = "the Vault client cannot fetch the HSM credentials: check VAULT_ADDR, ConfigMap vault-tls-cert and vault-verify";
        return new Problem(what, hint);
    }

    private static String podReason(Pod pod) {
        var st = pod.getStatus();
        if (st == null) return "";
        if (st.getConditions() != null)
            for (var c : st.getConditions())
                if ("PodScheduled".equals(c.getType()) && "False".equals(c.getStatus()) && c.getMessage() != null)
                    return " (not scheduled: " + c.getMessage() + ")";
        return st.getReason() == null ? "" : " (" + st.getReason() + ")";
    }

    // ================================================================ mesh checks
    // preflight, verify-ca, verify-mtls, enable-injection, external-ip, status

    /** The revision the guide installs (istioctl install --set revision=...). */
    public static final String GUIDE_REVISION = "asm-198-6";
    public static final String REV_LABEL = "istio.io/rev";
    /** The old injection label: injection fails when a namespace has both, so it goes. */
    public static final String INJECTION_LABEL = "istio-injection";
    public static final String ISTIOD_APP = "istiod";
    public static final String DISCOVERY_CONTAINER = "discovery";
    public static final String PROXY_CONTAINER = "istio-proxy";
    /** The HSM install runs discovery + hsm-plugin + vaultclient: the guide expects 3/3. */
    public static final int ISTIOD_CONTAINERS = 3;
    public static final String INGRESS_GATEWAY = "istio-ingressgateway";
    public static final String CA_CERT_SECRET = "istio-ca-cert";
    public static final String CA_CERT_KEY = "cert-chain.pem";
    public static final String CSR_SECRET = "istio-ca-cert-csr";
    public static final String ENCRYPTED_KEY_SECRET = "istio-ca-encrypted-key";

    // ---------------------------------------------------------------- cert-chain.pem as istiod splits it

    /** istiod's PEM reading: a block starts a line, as Go's pem.Decode finds it (any text before it is skipped). */
    private static final Pattern GO_PEM_BLOCK = Pattern.compile(
            "(?:^|\\n)-----BEGIN ([^\\r\\n]*?)-----[ \\t]*\\r?\\n(.*?)\\r?\\n-----END \\1-----[ \\t]*(?:\\r?\\n|\\z)", Pattern.DOTALL);

    /**
     * Why istiod's splitCerts would refuse this cert-chain.pem ("failed to create CA KeyCertBundle
     * (error spliting the cert chain)", after the HSM check passed), or null when it accepts it.
     * As the real istiod behaves (reference, "What the real components do"): blocks are read as
     * Go's pem.Decode reads them, so CRLF line ends, a leading blank line, an `openssl x509 -text`
     * preamble and a missing final newline pass; nothing may follow the last block, not even a
     * blank line; the root may not come first (the first certificate is taken as the CA's).
     */
    public static String splitProblem(byte[] chainPem) {
        String text = new String(chainPem, java.nio.charset.StandardCharsets.ISO_8859_1);
        Matcher m = GO_PEM_BLOCK.matcher(text).useAnchoringBounds(true);
        List<X509Certificate> certs = new ArrayList<>();
        int end = 0;
        while (end < text.length() && m.region(end, text.length()).find()) {
            if (!m.group(1).equals("CERTIFICATE")) return "it holds a '" + m.group(1) + "' block, not only certificates";
            try {
                certs.add(Pki.certificate(java.util.Base64.getMimeDecoder().decode(m.group(2)), "certificate"));
            } catch (RuntimeException e) {
                return "certificate #" + (certs.size() + 1) + " is not a readable X.509 certificate";
            }
            end = m.end();
        }
        if (certs.isEmpty()) return "it holds no PEM certificate";
        String rest = text.substring(end);
        if (!rest.isEmpty())
            return rest.isBlank() ? "a blank line follows the last certificate" : "text follows the last certificate";
        if (certs.size() > 1 && Pki.selfSigned(certs.get(0)))
            return "the root '" + Pki.name(certs.get(0)) + "' comes first, where istiod takes its CA certificate";
        return null;
    }

    // ---------------------------------------------------------------- port naming (IST0118)

    /** Protocols Istio selects from a port name's prefix, matched case-insensitively. */
    public static final List<String> PORT_PROTOCOLS = List.of("http", "http2", "https", "tcp", "tls", "grpc",
            "grpc-web", "mongo", "mysql", "redis", "udp", "http_proxy", "thrift");
    /** Ports Istio treats as TCP whatever their name (SMTP, DNS, MySQL, MongoDB). */
    static final Set<Integer> WELL_KNOWN_PORTS = Set.of(25, 53, 3306, 27017);
    /** Namespaces the injector and `istioctl analyze` leave alone. */
    public static final Set<String> SYSTEM_NAMESPACES = Set.of("kube-system", "kube-public", "kube-node-lease",
            "local-path-storage");

    /**
     * The protocol Istio derives for a Service port, or null when it cannot (IST0118).
     * UDP ports need no name; appProtocol, when set, is read instead of the name;
     * "grpc-web" is matched before the name is cut at its first '-'.
     */
    public static String portProtocol(String name, String appProtocol, String k8sProtocol, int port) {
        if ("UDP".equalsIgnoreCase(k8sProtocol)) return "udp";
        String n = appProtocol != null ? appProtocol : name == null ? "" : name;
        if (n.regionMatches(true, 0, "grpc-web", 0, 8)) return "grpc-web";
        int dash = n.indexOf('-');
        String prefix = (dash >= 0 ? n.substring(0, dash) : n).toLowerCase(Locale.ROOT);
        if (PORT_PROTOCOLS.contains(prefix)) return prefix;
        return WELL_KNOWN_PORTS.contains(port) ? "tcp" : null;
    }

    /** A Service port whose name Istio cannot read a protocol from. */
    public record PortProblem(String namespace, String service, String name, int port, String targetPort) {
        /** istioctl analyze's wording, so operators can search for it. */
        public String message() {
            return "IST0118 (Service " + namespace + "/" + service + ") Port name " + (name == null ? "" : name)
                    + " (port: " + port + ", targetPort: " + targetPort
                    + ") doesn't follow the naming convention of Istio port.";
        }
    }

    /** Every badly named port, skipping system namespaces and the control plane's own Services, as istioctl analyze does. */
    public static List<PortProblem> portNameProblems(List<Service> services) {
        List<PortProblem> problems = new ArrayList<>();
        for (Service s : services) {
            String ns = s.getMetadata().getNamespace();
            if (SYSTEM_NAMESPACES.contains(ns) || isControlPlane(s)) continue;
            if (s.getSpec() == null || s.getSpec().getPorts() == null) continue;
            for (ServicePort p : s.getSpec().getPorts()) {
                int port = p.getPort() == null ? 0 : p.getPort();
                if (portProtocol(p.getName(), p.getAppProtocol(), p.getProtocol(), port) != null) continue;
                String target = p.getTargetPort() == null ? String.valueOf(port)
                        : p.getTargetPort().getStrVal() != null ? p.getTargetPort().getStrVal()
                        : String.valueOf(p.getTargetPort().getIntVal());
                problems.add(new PortProblem(ns, s.getMetadata().getName(), p.getName(), port, target));
            }
        }
        return problems;
    }

    /** istioctl analyze skips resources labelled as Istio's own (label `istio`, or release=istio). */
    static boolean isControlPlane(HasMetadata r) {
        Map<String, String> labels = r.getMetadata().getLabels();
        return labels != null && (labels.containsKey("istio") || "istio".equals(labels.get("release")));
    }

    // ---------------------------------------------------------------- istiod and its revision

    /** istiod pods (label app=istiod in istio-system), oldest first, leaving out those being deleted. */
    public static List<Pod> istiodPods(KubernetesClient k) {
        return istiodPods(k, KubeLayout.ISTIO_NAMESPACE);
    }

    /** The revisions istiod runs under: the istio.io/rev labels of its pods and Deployments. */
    public static Set<String> revisions(KubernetesClient k) {
        Set<String> revs = new TreeSet<>();
        for (Pod p : istiodPods(k)) addRevision(revs, p);
        for (var d : k.apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).withLabel("app", ISTIOD_APP).list().getItems())
            addRevision(revs, d);
        return revs;
    }

    private static void addRevision(Set<String> revs, HasMetadata r) {
        Map<String, String> labels = r.getMetadata().getLabels();
        String rev = labels == null ? null : labels.get(REV_LABEL);
        if (rev != null && !rev.isBlank()) revs.add(rev);
    }

    /** What still uses an istiod revision: namespaces labelled for it, and running pods whose sidecar it injected. */
    public record RevisionUsers(List<String> namespaces, List<String> pods) {
        public boolean none() { return namespaces.isEmpty() && pods.isEmpty(); }
    }

    /**
     * The namespaces labelled istio.io/rev=REVISION and the pods outside istio-system that carry the label
     * (the injector puts the revision on every pod it gives a sidecar), leaving out finished and terminating pods.
     */
    public static RevisionUsers revisionUsers(Kube k, String revision) {
        List<String> namespaces = new ArrayList<>(), pods = new ArrayList<>();
        for (var n : k.call(() -> k.client.namespaces().withLabel(REV_LABEL, revision).list().getItems(), "list the namespaces labelled " + REV_LABEL))
            namespaces.add(n.getMetadata().getName());
        for (Pod p : k.call(() -> k.client.pods().inAnyNamespace().withLabel(REV_LABEL, revision).list().getItems(), "list the pods labelled " + REV_LABEL)) {
            String phase = p.getStatus() == null ? null : p.getStatus().getPhase();
            if (KubeLayout.ISTIO_NAMESPACE.equals(p.getMetadata().getNamespace()) || "Succeeded".equals(phase) || "Failed".equals(phase)
                    || p.getMetadata().getDeletionTimestamp() != null) continue;
            pods.add(p.getMetadata().getNamespace() + "/" + p.getMetadata().getName());
        }
        return new RevisionUsers(namespaces, pods);
    }

    /** istioctl's arguments that remove one revision's control plane and leave the others. */
    public static List<String> uninstallArgs(String revision) {
        return List.of("x", "uninstall", "--revision", revision);
    }

    public static String revisionOf(HasMetadata r) {
        Map<String, String> labels = r.getMetadata().getLabels();
        return labels == null ? null : labels.get(REV_LABEL);
    }

    /** The named container of the pod is running now (so one can exec into it). */
    public static boolean containerRunning(Pod p, String name) {
        if (p.getStatus() == null || p.getStatus().getContainerStatuses() == null) return false;
        for (ContainerStatus cs : p.getStatus().getContainerStatuses())
            if (name.equals(cs.getName()) && cs.getState() != null && cs.getState().getRunning() != null) return true;
        return false;
    }

    public static boolean hasContainer(Pod p, String name) {
        if (p.getSpec() == null || p.getSpec().getContainers() == null) return false;
        for (Container c : p.getSpec().getContainers()) if (name.equals(c.getName())) return true;
        return false;
    }

    public static List<String> containerNames(Pod p) {
        List<String> names = new ArrayList<>();
        if (p.getSpec() != null && p.getSpec().getContainers() != null)
            for (Container c : p.getSpec().getContainers()) names.add(c.getName());
        return names;
    }

    /** Ready containers / all containers, as kubectl get pod shows READY. */
    public static int[] readiness(Pod p) {
        int total = containerNames(p).size(), ready = 0;
        if (p.getStatus() != null && p.getStatus().getContainerStatuses() != null)
            for (ContainerStatus s : p.getStatus().getContainerStatuses()) if (Boolean.TRUE.equals(s.getReady())) ready++;
        return new int[]{ready, total};
    }

    // ---------------------------------------------------------------- the "CA cert:" log block

    /** The chain istiod logged after loading istio-ca-cert: its CA cert, intermediates and root. */
    public record LoggedChain(X509Certificate ca, List<X509Certificate> intermediates, X509Certificate root) {
        /** CA cert, intermediates, root, as cert-chain.pem holds them. */
        public List<X509Certificate> all() {
            List<X509Certificate> all = new ArrayList<>();
            all.add(ca);
            for (X509Certificate c : intermediates) if (!Pki.sameCert(c, ca) && !Pki.sameCert(c, root)) all.add(c);
            if (root != null && !Pki.sameCert(root, ca)) all.add(root);
            return all;
        }
    }

    private static final Pattern LOG_ENTRY = Pattern.compile("^\\d{4}-\\d\\d-\\d\\dT\\S+\\s.*");
    private static final String[] SECTIONS = {"CA cert:", "intermediate certs:", "root cert:"};

    /**
     * The last "CA cert:" block of a discovery container log, or null when there is none.
     * The block is "CA cert:" + PEM, "intermediate certs:" + PEM..., "root cert:" + PEM, in
     * one log entry or in one entry each; it ends at the first other log entry.
     */
    public static LoggedChain caCertBlock(String log) {
        String[] lines = log.replace("\r", "").split("\n");
        int start = -1;
        for (int i = 0; i < lines.length; i++) if (lines[i].contains(SECTIONS[0])) start = i;
        if (start < 0) return null;
        List<List<String>> pem = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        int section = -1;
        StringBuilder block = null;
        for (int i = start; i < lines.length; i++) {
            String line = lines[i];
            int found = -1;
            for (int s = 0; s < SECTIONS.length; s++) if (line.contains(SECTIONS[s])) found = s;
            if (found >= 0) {
                if (found < section || (found == 0 && section >= 0)) break; // a later, separate block
                section = found;
                line = line.substring(line.indexOf(SECTIONS[found]) + SECTIONS[found].length());
            } else if (block == null && LOG_ENTRY.matcher(line).matches()) {
                break;
            }
            // a PEM block may start on the label's line: "CA cert: -----BEGIN CERTIFICATE-----"
            int b = line.indexOf("-----BEGIN CERTIFICATE-----");
            if (block == null && b >= 0) { block = new StringBuilder(); line = line.substring(b); }
            if (block == null) continue;
            int e = line.indexOf("-----END CERTIFICATE-----");
            if (e >= 0) {
                block.append(line, 0, e + 25).append('\n');
                pem.get(section).add(block.toString());
                block = null;
            } else {
                block.append(line.strip()).append('\n');
            }
        }
        if (pem.get(0).isEmpty()) return null;
        X509Certificate ca = parse(pem.get(0)).get(0);
        List<X509Certificate> roots = parse(pem.get(2));
        return new LoggedChain(ca, parse(pem.get(1)), roots.isEmpty() ? null : roots.get(roots.size() - 1));
    }

    private static List<X509Certificate> parse(List<String> pems) {
        List<X509Certificate> certs = new ArrayList<>();
        for (String p : pems) certs.addAll(Pki.certificates(Pki.pemBlocks(p, "istiod's log"), "istiod's log"));
        return certs;
    }

    // ---------------------------------------------------------------- what the running istiod shows (verify-ca, status)

    /** Where one istiod pod is with its CA, after a restart: loaded (from its log, or inferred when the log cannot be read), still waiting, or aborted. */
    public record CaLoad(boolean loaded, String how, Problem abort) {}

    /**
     * One pod's CA after a restart: its discovery log's "Loaded decrypted CA key and CA certificate into
     * memory." with the "CA cert:" block of exactly the Secret's chain; an abort line is a failure. When the
     * API server serves no log (no kubelet), a discovery container that is ready and started after the
     * Secret's last change is taken as loaded, saying so, as status does.
     */
    public static CaLoad caLoad(Kube k, Pod p, io.fabric8.kubernetes.api.model.Secret secret, List<X509Certificate> chain) {
        String log;
        try {
            log = k.call(() -> containerLog(k, p, DISCOVERY_CONTAINER), "read the discovery log of " + p.getMetadata().getName());
        } catch (Fail f) {
            log = null;
        }
        if (log != null && !log.isBlank()) {
            if (caLog(log) == CaLog.REJECTED) return new CaLoad(false, null, abortProblem(log));
            if (!log.contains(LOG_CA_LOADED)) return new CaLoad(false, null, null);
            LoggedChain logged = caCertBlock(log);
            if (logged == null || chainDifference(logged.all(), chain) != null) return new CaLoad(false, null, null);
            return new CaLoad(true, "logged '" + LOG_CA_LOADED + "' with the Secret's chain", null);
        }
        String inferred = startedAfter(p, secret);
        return inferred == null ? new CaLoad(false, null, null) : new CaLoad(true, inferred + " (inferred; its log was not served)", null);
    }

    /**
     * What one istiod pod's discovery log says of the chain: the logged "CA cert:" block compared with
     * the Secret's chain, or the abort that ended its last run (the last word counts: a restarted istiod
     * may have logged the chain in an earlier run and aborted since).
     */
    public record LoggedChainCheck(String pod, List<X509Certificate> seen, String refused, Problem abort, String difference, boolean emptyLog) {
        public boolean logged() { return seen != null; }
        public boolean matches() { return seen != null && difference == null; }
    }

    /** Reads the pod's discovery log as {@link #containerLog} does (fails, exit 1, when it cannot be read) and compares it with `secretChain`. */
    public static LoggedChainCheck chainInLog(Kube k, Pod pod, List<X509Certificate> secretChain) {
        String name = pod.getMetadata().getName();
        String log = k.call(() -> containerLog(k, pod, DISCOVERY_CONTAINER), "read the discovery log of " + name);
        boolean empty = log == null || log.isBlank();
        if (!empty && caLog(log) == CaLog.REJECTED) {
            String line = lastLine(log, Pattern.compile(Pattern.quote(LOG_CHAIN_REJECTED) + "|" + Pattern.quote(LOG_CHAIN_SPLIT)));
            return new LoggedChainCheck(name, null, line, abortProblem(log), null, false);
        }
        LoggedChain logged = caCertBlock(empty ? "" : log);
        if (logged == null) return new LoggedChainCheck(name, null, null, null, null, empty);
        List<X509Certificate> seen = logged.all();
        return new LoggedChainCheck(name, seen, null, null, chainDifference(seen, secretChain), false);
    }

    /** Where the logged chain differs from the Secret's, in words; null when they are the same certificates in the same order. */
    public static String chainDifference(List<X509Certificate> logged, List<X509Certificate> secret) {
        for (int i = 0; i < Math.max(logged.size(), secret.size()); i++) {
            if (i >= logged.size()) return "the log lacks certificate #" + (i + 1) + " '" + Pki.name(secret.get(i)) + "'";
            if (i >= secret.size()) return "the log has an extra certificate #" + (i + 1) + " '" + Pki.name(logged.get(i)) + "'";
            if (!Pki.sameCert(logged.get(i), secret.get(i)))
                return "certificate #" + (i + 1) + " is '" + Pki.name(logged.get(i)) + "' (SHA-256 " + shortFingerprint(logged.get(i))
                        + ") in the log but '" + Pki.name(secret.get(i)) + "' (SHA-256 " + shortFingerprint(secret.get(i))
                        + ") in the Secret; if the Secret changed since: " + RESTART_TO_RELOAD;
        }
        return null;
    }

    private static String shortFingerprint(X509Certificate c) {
        return Pki.sha256Hex(Pki.encoded(c)).substring(0, 16) + "...";
    }

    /**
     * status's line "istiod logged exactly the chain of Secret istio-ca-cert", what verify-ca checks,
     * for each istiod pod. A pod whose log cannot be read is unknown, with why; but when its
     * discovery container is ready and started after the Secret's last change, istiod (which reads
     * the Secret at start-up, and is ready only with its CA loaded) runs with that Secret's chain:
     * done, saying it was inferred, not read.
     */
    public static Checklist.Check loggedChain(Kube k, String namespace, List<Pod> pods, io.fabric8.kubernetes.api.model.Secret secret,
                                              List<X509Certificate> secretChain) {
        String fix = "verify-ca (it names what istiod logged); if the Secret changed after istiod started: " + restartToReload(namespace);
        if (pods.isEmpty()) return Checklist.Check.missing("no istiod pod in " + namespace, "install-asm");
        if (secretChain == null) return Checklist.Check.missing("no chain in Secret " + CA_CERT_SECRET + " to compare", "upload-chain");
        List<Checklist.Check> parts = new ArrayList<>();
        List<String> words = new ArrayList<>();
        for (Pod p : pods) {
            String name = p.getMetadata().getName();
            Checklist.Check c;
            try {
                LoggedChainCheck seen = chainInLog(k, p, secretChain);
                // a running istiod always logs something: an empty log is one the API server could not get (no kubelet)
                if (seen.emptyLog()) throw Fail.failed("the API server serves its discovery log empty", "check the node's kubelet");
                if (seen.matches()) c = Checklist.Check.done(name + " logged the Secret's " + secretChain.size() + " certificate(s)");
                else if (seen.logged()) c = Checklist.Check.wrong(name + " loaded another chain than Secret " + CA_CERT_SECRET + ": " + seen.difference(),
                        "restart istiod so it loads the Secret's chain: " + rolloutRestart(namespace));
                else if (seen.abort() != null) {
                    c = Checklist.Check.wrong(name + ": " + seen.abort().what() + " (" + seen.refused() + ")", seen.abort().hint());
                } else c = Checklist.Check.missing(name + " has not logged 'CA cert:' yet", "wait for istiod (istiod-status --wait running)");
            } catch (Fail f) {
                String inferred = startedAfter(p, secret);
                c = inferred != null ? Checklist.Check.done(name + ": " + inferred + " (inferred; its log was not read: " + f.getMessage() + ")")
                        : Checklist.Check.unknown(name + ": its log cannot be read: " + f.getMessage(), f.hint);
            }
            parts.add(c);
            words.add(c.detail());
        }
        String state = Checklist.Check.worst(parts);
        String hint = parts.stream().filter(c -> c.state().equals(state)).map(Checklist.Check::fix).filter(java.util.Objects::nonNull).findFirst().orElse(null);
        return new Checklist.Check(state, String.join("; ", words), hint, Map.of());
    }

    /** Why a pod runs with the Secret's current chain though its log was not read, or null when that cannot be said. */
    static String startedAfter(Pod p, io.fabric8.kubernetes.api.model.Secret secret) {
        ContainerStatus d = null;
        if (p.getStatus() != null && p.getStatus().getContainerStatuses() != null)
            for (ContainerStatus cs : p.getStatus().getContainerStatuses()) if (DISCOVERY_CONTAINER.equals(cs.getName())) d = cs;
        if (d == null || !Boolean.TRUE.equals(d.getReady()) || d.getState() == null || d.getState().getRunning() == null
                || d.getState().getRunning().getStartedAt() == null || secret == null) return null;
        java.time.Instant started = java.time.Instant.parse(d.getState().getRunning().getStartedAt()), changed = lastChange(secret);
        if (changed == null || !started.isAfter(changed)) return null;
        return "discovery ready, started " + started + ", after the Secret's last change " + changed;
    }

    /** When an object was last written: its newest managedFields time, else its creation. */
    static java.time.Instant lastChange(HasMetadata o) {
        java.time.Instant last = null;
        try {
            if (o.getMetadata().getCreationTimestamp() != null) last = java.time.Instant.parse(o.getMetadata().getCreationTimestamp());
            if (o.getMetadata().getManagedFields() != null)
                for (var f : o.getMetadata().getManagedFields())
                    if (f.getTime() != null) {
                        java.time.Instant t = java.time.Instant.parse(f.getTime());
                        if (last == null || t.isAfter(last)) last = t;
                    }
        } catch (java.time.format.DateTimeParseException e) {
            return null;
        }
        return last;
    }

    /**
     * Whether each pod of the namespaces labelled for the revision has the istio-proxy sidecar.
     * Pods the injector is told to leave alone (sidecar.istio.io/inject=false) or that have finished
     * are not counted.
     */
    public static Checklist.Check sidecars(Kube k, List<io.fabric8.kubernetes.api.model.Namespace> labelled, String revision) {
        List<String> namespaces = new ArrayList<>(), without = new ArrayList<>(), skipped = new ArrayList<>();
        int injected = 0;
        for (var n : labelled) {
            String ns = n.getMetadata().getName();
            if (revision != null && !revision.equals(revisionOf(n))) continue;
            namespaces.add(ns);
            for (Pod p : k.call(() -> k.client.pods().inNamespace(ns).list().getItems(), "list the pods in " + ns)) {
                String name = ns + "/" + p.getMetadata().getName(), phase = p.getStatus() == null ? null : p.getStatus().getPhase();
                if ("Succeeded".equals(phase) || "Failed".equals(phase) || p.getMetadata().getDeletionTimestamp() != null) continue;
                if ("false".equals(annotationOrLabel(p, "sidecar.istio.io/inject"))) { skipped.add(name); continue; }
                if (hasContainer(p, PROXY_CONTAINER)) injected++;
                else without.add(name);
            }
        }
        if (namespaces.isEmpty())
            return Checklist.Check.missing("no namespace is labelled " + REV_LABEL + (revision == null ? "" : "=" + revision), "enable-injection --namespace NAMESPACE");
        String where = String.join(", ", namespaces);
        String excluded = skipped.isEmpty() ? "" : "; left out (sidecar.istio.io/inject=false): " + String.join(", ", skipped);
        Checklist.Check c = !without.isEmpty()
                ? Checklist.Check.wrong(without.size() + " pod(s) without " + PROXY_CONTAINER + ": " + String.join(", ", without) + excluded,
                        "they started before injection was on: restart them (kubectl rollout restart deployment -n NAMESPACE)")
                : Checklist.Check.done(injected == 0 ? "no pods yet in " + where + excluded
                        : injected + " pod(s) in " + where + ", each with " + PROXY_CONTAINER + excluded);
        return c.with("namespaces", namespaces).with("withoutSidecar", without);
    }

    private static String annotationOrLabel(Pod p, String key) {
        Map<String, String> a = p.getMetadata().getAnnotations(), l = p.getMetadata().getLabels();
        if (l != null && l.containsKey(key)) return l.get(key);
        return a == null ? null : a.get(key);
    }

    /**
     * The root hook in a pod's spec, as install-asm's overlay puts it (rootHookOverlay): the
     * hsm-plugin container's postStart runs the plugin's import-ca of the mounted ConfigMap
     * istio-hsm-root for this CA ID (any CA ID when null). Null when it is there; else what is missing.
     */
    public static String rootHookProblem(Pod p, String caId) {
        Container plugin = null;
        if (p.getSpec() != null && p.getSpec().getContainers() != null)
            for (Container c : p.getSpec().getContainers()) if (HSM_PLUGIN_CONTAINER.equals(c.getName())) plugin = c;
        if (plugin == null) return "it has no " + HSM_PLUGIN_CONTAINER + " container";
        var hook = plugin.getLifecycle() == null || plugin.getLifecycle().getPostStart() == null ? null : plugin.getLifecycle().getPostStart().getExec();
        if (hook == null) return "its " + HSM_PLUGIN_CONTAINER + " has no postStart hook (install-asm's root hook)";
        if (caId != null && !KmsPlugin.postStartImportCommand(ROOT_MOUNT + "/" + ROOT_KEY, caId).equals(hook.getCommand()))
            return "its " + HSM_PLUGIN_CONTAINER + "'s postStart hook is not install-asm's root hook for CA ID " + caId;
        boolean mounted = plugin.getVolumeMounts() != null && plugin.getVolumeMounts().stream()
                .anyMatch(m -> ROOT_VOLUME.equals(m.getName()) && ROOT_MOUNT.equals(m.getMountPath()));
        boolean volume = p.getSpec().getVolumes() != null && p.getSpec().getVolumes().stream()
                .anyMatch(v -> ROOT_VOLUME.equals(v.getName()) && v.getConfigMap() != null && ROOT_CONFIGMAP.equals(v.getConfigMap().getName()));
        if (!mounted || !volume) return "ConfigMap " + ROOT_CONFIGMAP + " is not mounted at " + ROOT_MOUNT + " in its " + HSM_PLUGIN_CONTAINER;
        return null;
    }
}
