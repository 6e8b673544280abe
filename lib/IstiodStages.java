package asmhsm;

import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;

/**
 * Where each istiod pod is on its way to serving certificates signed by the HSM-held CA key, as istiod-status
 * shows it: its stage read from its container statuses and logs, and what that means given istiod's Secrets.
 */
public final class IstiodStages {
    private IstiodStages() {}

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

    public record ContainerReport(String name, boolean ready, String state, int restarts) {}

    /** One istiod pod as istiod-status shows it. Log lines are null when the log could not be read. */
    public record PodReport(String name, String revision, String phase, int ready, int total,
                            List<ContainerReport> containers, Stage stage, String kekId, String waitingLine,
                            List<String> notes, List<Istio.Problem> problems) {
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

    /**
     * The stage of one istiod pod, from its container statuses and, when `logs` can give
     * them (null otherwise), the hsm-plugin and discovery logs. expectedKek, when given,
     * is compared with the KEK ID the plugin printed.
     */
    public static PodReport inspect(Pod pod, Function<String, String> logs, String expectedKek) {
        List<String> notes = new ArrayList<>();
        List<Istio.Problem> problems = new ArrayList<>();
        var status = pod.getStatus();
        String phase = status == null || status.getPhase() == null ? "Unknown" : status.getPhase();
        List<ContainerReport> containers = new ArrayList<>();
        Map<String, ContainerStatus> byName = new LinkedHashMap<>();
        if (status != null && status.getContainerStatuses() != null)
            for (ContainerStatus cs : status.getContainerStatuses()) byName.put(cs.getName(), cs);
        List<String> names = Pods.containerNames(pod);
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
        String revision = Istio.revisionOf(pod);

        String kekId = null, waitingLine = null;
        IstiodLog.CaLog ca = null;
        Istio.Problem aborted = null;
        ContainerStatus plugin = byName.get(Istio.HSM_PLUGIN_CONTAINER), discovery = byName.get(Istio.DISCOVERY_CONTAINER);
        if (started(plugin)) {
            String log = logs.apply(Istio.HSM_PLUGIN_CONTAINER);
            if (log != null) {
                String line = IstiodLog.lastLine(log, IstiodLog.LOG_KEK_ID);
                if (line != null) {
                    Matcher m = IstiodLog.LOG_KEK_ID.matcher(line);
                    m.find();
                    kekId = m.group(1);
                    if (expectedKek != null && !expectedKek.equals(kekId))
                        problems.add(new Istio.Problem("hsm-plugin uses KEK " + kekId + ", not KEK_ID " + expectedKek,
                                "install-asm again with the KEK generated by gen-kek (KEK_ID), or correct KEK_ID"));
                }
            }
        }
        if (started(discovery)) {
            String log = logs.apply(Istio.DISCOVERY_CONTAINER);
            if (log != null) {
                ca = IstiodLog.caLog(log);
                waitingLine = IstiodLog.lastLine(log, IstiodLog.WAITING_LINE);
                if (ca == IstiodLog.CaLog.REJECTED) aborted = IstiodLog.abortProblem(log);
            }
        }

        int discoveryRestarts = discovery == null || discovery.getRestartCount() == null ? 0 : discovery.getRestartCount();
        boolean crashLooping = "CrashLoopBackOff".equals(waitingReason(discovery))
                || (aborted != null && discoveryRestarts > 0 && !Boolean.TRUE.equals(discovery.getReady()));
        if (aborted != null) {
            // the abort names the cause: it replaces the container's generic crash-loop problem
            problems.removeIf(p -> p.what().startsWith("container " + Istio.DISCOVERY_CONTAINER + ":"));
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
        } else if (discoveryRunning && !discoveryReady && (ca == IstiodLog.CaLog.WAITING || ca == IstiodLog.CaLog.LOADED)) {
            stage = Stage.WAITING_FOR_CA;
            if (ca == IstiodLog.CaLog.LOADED) notes.add("istiod has loaded its CA certificate; discovery is not ready yet");
        } else if (discoveryRunning && !discoveryReady && ca == null && ready == names.size() - 1) {
            // no log to read: the guide's sign, 2/3 with only discovery not ready
            stage = Stage.WAITING_FOR_CA;
            notes.add("inferred from readiness (" + ready + "/" + names.size() + ", only discovery not ready): no discovery log to read");
        } else {
            stage = Stage.NOT_STARTED;
            List<String> notReady = new ArrayList<>();
            for (ContainerReport c : containers) if (!c.ready()) notReady.add(c.name());
            notes.add("not ready: " + String.join(", ", notReady)
                    + (discoveryRunning && ca == IstiodLog.CaLog.NOTHING ? "; discovery has not started waiting for the CA yet" : ""));
        }
        return new PodReport(pod.getMetadata().getName(), revision, phase, ready, names.size(), containers, stage,
                kekId, waitingLine, notes, problems);
    }

    /** Which of istiod's Secrets exist, and when istio-ca-cert was last written (null when it is not there). */
    public record CaSecrets(boolean csr, boolean encryptedKey, boolean caCert, Instant caCertChanged) {
        public static CaSecrets read(Kube k, String namespace) {
            var secrets = k.call(() -> k.client.secrets().inNamespace(namespace).list().getItems(), "list the Secrets in " + namespace);
            boolean csr = false, key = false;
            io.fabric8.kubernetes.api.model.Secret chain = null;
            for (var s : secrets) {
                String n = s.getMetadata().getName();
                if (Istio.CSR_SECRET.equals(n)) csr = true;
                else if (Istio.ENCRYPTED_KEY_SECRET.equals(n)) key = true;
                else if (Istio.CA_CERT_SECRET.equals(n)) chain = s;
            }
            return new CaSecrets(csr, key, chain != null, chain == null ? null : Pods.lastChange(chain));
        }
    }

    /** One pod's state in words, and what to do about it (istiod-status prints one line of each). */
    public record Explanation(String state, String what, String todo) {
        public String line() { return what + (todo == null ? "" : " -> " + todo); }
    }

    /** What this pod's istiod is doing, read from its stage, its log's abort and which Secrets exist. */
    public static Explanation explain(PodReport p, CaSecrets s) {
        Istio.Problem first = p.problems().isEmpty() ? null : p.problems().get(0);
        if (p.stage() == Stage.CRASH_LOOPING && first != null && first.what().contains(KmsPlugin.NOT_LOADED))
            return new Explanation("no-root-loaded", "crash loop: this pod's HSM plugin has no root loaded, so istiod aborts at every start",
                    "load-root (signing again cannot help); the discovery container then restarts by itself and the plugin keeps the root");
        if (p.stage() == Stage.CRASH_LOOPING)
            return new Explanation("crash-loop", "crash loop: " + (first == null ? "the discovery container keeps exiting" : first.what()),
                    first == null ? "look at its log: kubectl logs -c discovery --previous -n NAMESPACE " + p.name() : first.hint());
        if (!s.encryptedKey() && s.caCert())
            return new Explanation("secrets-missing", "Secret " + Istio.ENCRYPTED_KEY_SECRET + " is missing while " + Istio.CA_CERT_SECRET
                    + " exists: istiod's next start makes a new CA key, keeps any CSR, and aborts: the chain certifies the lost key",
                    "restore " + Istio.ENCRYPTED_KEY_SECRET + " from a backup (rotate-ca keeps one while it runs); else " + Istio.NEW_CSR_FOR_ITS_KEY);
        if (p.stage() == Stage.NOT_STARTED)
            return new Explanation("not-started", "istiod has not started" + (s.csr() ? "; when it does it reads its Secrets again and writes no new CSR ("
                    + Istio.CSR_SECRET + " exists)" : "; when it does it writes its CSR into Secret " + Istio.CSR_SECRET),
                    "wait: istiod-status --wait; if it does not start, see the notes and problems above");
        if (p.stage() == Stage.RUNNING)
            return new Explanation("loaded", "istiod loaded its CA key and the chain of " + Istio.CA_CERT_SECRET + " and serves certificates",
                    "verify-ca; a changed chain needs a restart: " + Istio.RESTART_TO_RELOAD);
        if (s.caCert())
            return new Explanation("chain-uploaded", "Secret " + Istio.CA_CERT_SECRET + " is there; istiod polls for it every 2 s while it waits"
                    + (s.csr() ? "" : " (it needs no CSR beside it: it writes one only when both Secrets are missing)"),
                    "wait (istiod-status --wait running); if discovery stays not ready, verify-ca names what istiod logged");
        if (s.csr())
            return new Explanation("waiting-for-chain", "istiod wrote its CSR (Secret " + Istio.CSR_SECRET + ") and polls every 2 s for Secret " + Istio.CA_CERT_SECRET,
                    "decrypt-csr, sign-csr, then upload-chain");
        return new Explanation("waiting-for-csr", "istiod has not written its CSR yet (no Secret " + Istio.CSR_SECRET + "): it does about 6 s after it starts"
                + (s.encryptedKey() ? "" : ", with a new CA key (no Secret " + Istio.ENCRYPTED_KEY_SECRET + ")"), "wait: istiod-status --wait");
    }

    /**
     * What this pod's history means for its plugin's root: a discovery container that restarted in the same pod
     * (the plugin process kept the root it had), or a pod made after the chain was written (a fresh plugin, whose
     * root the root hook loads, else load-root). Null when neither applies.
     */
    public static String restartStory(PodReport p, Pod pod, CaSecrets s) {
        int restarts = 0;
        for (ContainerReport c : p.containers()) if (Istio.DISCOVERY_CONTAINER.equals(c.name())) restarts = c.restarts();
        if (restarts > 0)
            return "restarted container: discovery restarted " + restarts + " time(s) in this pod; each start read the Secrets again"
                    + (s.csr() ? " and wrote no new CSR (" + Istio.CSR_SECRET + " exists)" : "")
                    + "; the hsm-plugin process is the same, so a root loaded into it stays loaded";
        if (!s.caCert() || s.caCertChanged() == null || pod.getMetadata().getCreationTimestamp() == null) return null;
        Instant created;
        try {
            created = Instant.parse(pod.getMetadata().getCreationTimestamp());
        } catch (java.time.format.DateTimeParseException e) {
            return null;
        }
        if (created.isBefore(s.caCertChanged())) return null;
        String hook = PluginRootHook.rootHookProblem(pod, null);
        return "new pod (made " + created + ", after " + Istio.CA_CERT_SECRET + " was written): its hsm-plugin started with no root loaded"
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
            for (Pod pod : k.call(() -> Istio.istiodPods(k.client, namespace), "list the istiod pods in " + namespace)) {
                i.pods.put(pod.getMetadata().getName(), pod);
                i.reports.add(inspect(pod, container -> i.log(k, pod, container), expectedKek));
            }
            return i;
        }

        private String log(Kube k, Pod pod, String container) {
            String where = pod.getMetadata().getName() + "/" + container;
            try {
                String log = Pods.containerLog(k, pod, container);
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

    private static Istio.Problem containerProblem(String container, String reason, ContainerStatus cs, int restarts) {
        String msg = cs.getState().getWaiting().getMessage();
        String what = "container " + container + ": " + reason + (restarts > 0 ? " (" + restarts + " restarts)" : "")
                + (msg == null || msg.isBlank() ? "" : ": " + msg.strip());
        String hint;
        if (reason.contains("Image") || reason.equals("ErrImagePull"))
            hint = "check HSM_PLUGIN_IMAGE / VAULT_CLIENT_IMAGE and that the cluster may pull them (the guide: ask support for image access)";
        else if (container.equals(Istio.HSM_PLUGIN_CONTAINER))
            hint = "the HSM plugin cannot start: check the HSM is reachable from the cluster and the slot label, then vault-verify"
                    + " (kubectl logs -c hsm-plugin -l app=istiod -n istio-system)";
        else if (container.equals(Istio.DISCOVERY_CONTAINER))
            hint = "look at istiod's log: kubectl logs -c discovery -l app=istiod -n istio-system";
        else
            hint = "the Vault client cannot fetch the HSM credentials: check VAULT_ADDR, ConfigMap vault-tls-cert and vault-verify";
        return new Istio.Problem(what, hint);
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
}
