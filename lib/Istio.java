package asmhsm;

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
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the toolkit knows about Istio / ASM 1.9: names, labels and rules that istiod, the injector and
 * istioctl use, so that steps check what the mesh will check. What istiod's log says is read in
 * {@link IstiodLog}, where its pods are on their way to a loaded CA in {@link IstiodStages}.
 */
public final class Istio {
    private Istio() {}

    // ---------------------------------------------------------------- names

    /** The revision the guide installs (istioctl install --set revision=...). */
    public static final String GUIDE_REVISION = "asm-198-6";
    public static final String REV_LABEL = "istio.io/rev";
    /** The old injection label: injection fails when a namespace has both, so it goes. */
    public static final String INJECTION_LABEL = "istio-injection";
    public static final String ISTIOD_APP = "istiod";
    public static final String DISCOVERY_CONTAINER = "discovery";
    /** The HSM plugin's container in the istiod pod (its log names the KEK). */
    public static final String HSM_PLUGIN_CONTAINER = "hsm-plugin";
    public static final String PROXY_CONTAINER = "istio-proxy";
    /** The HSM install runs discovery + hsm-plugin + vaultclient: the guide expects 3/3. */
    public static final int ISTIOD_CONTAINERS = 3;
    public static final String INGRESS_GATEWAY = "istio-ingressgateway";
    public static final String CA_CERT_SECRET = "istio-ca-cert";
    public static final String CA_CERT_KEY = "cert-chain.pem";
    public static final String CSR_SECRET = "istio-ca-cert-csr";
    public static final String ENCRYPTED_KEY_SECRET = "istio-ca-encrypted-key";

    /** Something wrong with istiod, and the step that fixes it. */
    public record Problem(String what, String hint) {}

    /** The profile the guide installs with (istioctl install --set profile=...). */
    public static final String PROFILE = "asm-multicloud";

    // ---------------------------------------------------------------- install-asm

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

    // ---------------------------------------------------------------- what istiod does on a restart

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

    /** istiod pods (app=istiod) in a namespace, oldest first, leaving out those being deleted. */
    public static List<Pod> istiodPods(KubernetesClient k, String namespace) {
        List<Pod> pods = new ArrayList<>();
        for (Pod p : k.pods().inNamespace(namespace).withLabel("app", ISTIOD_APP).list().getItems())
            if (p.getMetadata().getDeletionTimestamp() == null) pods.add(p);
        pods.sort(java.util.Comparator.comparing(p -> String.valueOf(p.getMetadata().getCreationTimestamp())));
        return pods;
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
                if (Pods.hasContainer(p, PROXY_CONTAINER)) injected++;
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
}
