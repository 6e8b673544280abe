package asmhsm;

import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Secret;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What istiod's discovery log says of its CA: the lines it prints on its way to loading the CA key and
 * chain, the abort that ends a run, and the "CA cert:" block of the chain it loaded.
 */
public final class IstiodLog {
    private IstiodLog() {}

    /** istiod's log lines (scope pkica), in the order a first start prints them. */
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

    static final Pattern WAITING_LINE =
            Pattern.compile("Wait until the CA certificate secret \\S+\\.istio-ca-cert can be loaded");
    /** The lines with which istiod aborts a run: the plugin refused the chain, or istiod could not split it. */
    private static final Pattern ABORT_LINE = Pattern.compile(Pattern.quote(LOG_CHAIN_REJECTED) + "|" + Pattern.quote(LOG_CHAIN_SPLIT));

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
    static Istio.Problem abortProblem(String log) {
        String line = lastLine(log, ABORT_LINE);
        if (line == null) return null;
        if (line.contains(KmsPlugin.NOT_LOADED))
            return new Istio.Problem("istiod aborted: its HSM plugin has no root loaded (" + KmsPlugin.NOT_LOADED + ")",
                    "run load-root: the plugin verifies only against a root imported in its own process (signing again cannot help);"
                            + " the discovery container then restarts by itself");
        if (line.contains(LOG_CHAIN_SPLIT))
            return new Istio.Problem("istiod cannot split cert-chain.pem (" + LOG_CHAIN_SPLIT + ")",
                    "upload-chain --replace with the chain as sign-csr writes it: the CA certificate first, the root last, no blank line after it");
        return new Istio.Problem("istiod refused the CA chain: " + line,
                "the CA certificate must be issued directly by the root imported in the HSM: sign-csr again, then upload-chain --replace");
    }

    static String lastLine(String log, Pattern p) {
        String found = null;
        for (String line : log.split("\n")) if (p.matcher(line).find()) found = line.strip();
        return found;
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
    public record CaLoad(boolean loaded, String how, Istio.Problem abort) {}

    /**
     * One pod's CA after a restart: its discovery log's "Loaded decrypted CA key and CA certificate into
     * memory." with the "CA cert:" block of exactly the Secret's chain; an abort line is a failure. When the
     * API server serves no log (no kubelet), a discovery container that is ready and started after the
     * Secret's last change is taken as loaded, saying so, as status does.
     */
    public static CaLoad caLoad(Kube k, Pod p, Secret secret, List<X509Certificate> chain) {
        String log;
        try {
            log = k.call(() -> Pods.containerLog(k, p, Istio.DISCOVERY_CONTAINER), "read the discovery log of " + p.getMetadata().getName());
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
    public record LoggedChainCheck(String pod, List<X509Certificate> seen, String refused, Istio.Problem abort, String difference, boolean emptyLog) {
        public boolean logged() { return seen != null; }
        public boolean matches() { return seen != null && difference == null; }
    }

    /** Reads the pod's discovery log as {@link Pods#containerLog} does (fails, exit 1, when it cannot be read) and compares it with `secretChain`. */
    public static LoggedChainCheck chainInLog(Kube k, Pod pod, List<X509Certificate> secretChain) {
        String name = pod.getMetadata().getName();
        String log = k.call(() -> Pods.containerLog(k, pod, Istio.DISCOVERY_CONTAINER), "read the discovery log of " + name);
        boolean empty = log == null || log.isBlank();
        if (!empty && caLog(log) == CaLog.REJECTED) {
            String line = lastLine(log, ABORT_LINE);
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
                        + ") in the Secret; if the Secret changed since: " + Istio.RESTART_TO_RELOAD;
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
    public static Checklist.Check loggedChain(Kube k, String namespace, List<Pod> pods, Secret secret,
                                              List<X509Certificate> secretChain) {
        if (pods.isEmpty()) return Checklist.Check.missing("no istiod pod in " + namespace, "install-asm");
        if (secretChain == null) return Checklist.Check.missing("no chain in Secret " + Istio.CA_CERT_SECRET + " to compare", "upload-chain");
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
                else if (seen.logged()) c = Checklist.Check.wrong(name + " loaded another chain than Secret " + Istio.CA_CERT_SECRET + ": " + seen.difference(),
                        "restart istiod so it loads the Secret's chain: " + Istio.rolloutRestart(namespace));
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
    static String startedAfter(Pod p, Secret secret) {
        ContainerStatus d = null;
        if (p.getStatus() != null && p.getStatus().getContainerStatuses() != null)
            for (ContainerStatus cs : p.getStatus().getContainerStatuses()) if (Istio.DISCOVERY_CONTAINER.equals(cs.getName())) d = cs;
        if (d == null || !Boolean.TRUE.equals(d.getReady()) || d.getState() == null || d.getState().getRunning() == null
                || d.getState().getRunning().getStartedAt() == null || secret == null) return null;
        Instant started = Instant.parse(d.getState().getRunning().getStartedAt()), changed = Pods.lastChange(secret);
        if (changed == null || !started.isAfter(changed)) return null;
        return "discovery ready, started " + started + ", after the Secret's last change " + changed;
    }
}
