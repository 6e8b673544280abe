package asmhsm;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * What the toolkit knows about Istio / ASM 1.9: names, labels, rules and log formats that
 * istiod, the injector and istioctl use, so that steps check what the mesh will check.
 */
public final class Istio {
    private Istio() {}

    // The istiod stages and log lines (issue 5) go above this block.

    // ================================================================ mesh checks (issue 7)
    // preflight, verify-ca, verify-mtls, enable-injection, external-ip, status

    public static final String SYSTEM_NAMESPACE = "istio-system";
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

    /** istiod pods (label app=istiod in istio-system), oldest first. */
    public static List<Pod> istiodPods(KubernetesClient k) {
        List<Pod> pods = new ArrayList<>(k.pods().inNamespace(SYSTEM_NAMESPACE).withLabel("app", ISTIOD_APP).list().getItems());
        pods.sort(java.util.Comparator.comparing(p -> String.valueOf(p.getMetadata().getCreationTimestamp())));
        return pods;
    }

    /** The revisions istiod runs under: the istio.io/rev labels of its pods and Deployments. */
    public static Set<String> revisions(KubernetesClient k) {
        Set<String> revs = new TreeSet<>();
        for (Pod p : istiodPods(k)) addRevision(revs, p);
        for (var d : k.apps().deployments().inNamespace(SYSTEM_NAMESPACE).withLabel("app", ISTIOD_APP).list().getItems())
            addRevision(revs, d);
        return revs;
    }

    private static void addRevision(Set<String> revs, HasMetadata r) {
        Map<String, String> labels = r.getMetadata().getLabels();
        String rev = labels == null ? null : labels.get(REV_LABEL);
        if (rev != null && !rev.isBlank()) revs.add(rev);
    }

    public static String revisionOf(HasMetadata r) {
        Map<String, String> labels = r.getMetadata().getLabels();
        return labels == null ? null : labels.get(REV_LABEL);
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
            for (X509Certificate c : intermediates) if (!sameCert(c, ca) && !sameCert(c, root)) all.add(c);
            if (root != null && !sameCert(root, ca)) all.add(root);
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

    // ---------------------------------------------------------------- chains

    public static boolean sameCert(X509Certificate a, X509Certificate b) {
        return a != null && b != null && Arrays.equals(Pki.encoded(a), Pki.encoded(b));
    }

    public static String name(X509Certificate c) {
        return Pki.goName(Pki.subjectDer(c));
    }

    /**
     * Whether a chain (leaf or CA first, each certificate issued by the next) leads to the
     * given root: null when it does, else which link fails and why, in one sentence.
     * The chain may end with the root itself or with a certificate the root issued.
     */
    public static String chainProblem(List<X509Certificate> chain, X509Certificate root, String what) {
        if (chain.isEmpty()) return what + " holds no certificate";
        for (int i = 0; i < chain.size(); i++) {
            X509Certificate c = chain.get(i);
            String label = what + " certificate #" + (i + 1) + " '" + name(c) + "'";
            try {
                c.checkValidity();
            } catch (java.security.cert.CertificateException e) {
                return label + " is outside its validity period (" + c.getNotBefore().toInstant() + " to "
                        + c.getNotAfter().toInstant() + ")";
            }
            boolean last = i == chain.size() - 1;
            if (last && sameCert(c, root)) return null;
            X509Certificate issuer = last ? root : chain.get(i + 1);
            String issuerLabel = last ? "the root '" + name(root) + "'"
                    : "certificate #" + (i + 2) + " '" + name(issuer) + "'";
            if (!c.getIssuerX500Principal().equals(issuer.getSubjectX500Principal()))
                return label + " was issued by '" + Pki.goName(Pki.issuerDer(c)) + "', not by " + issuerLabel;
            try {
                c.verify(issuer.getPublicKey());
            } catch (Exception e) {
                return label + " names " + issuerLabel + " as issuer but its signature does not verify with that key";
            }
            if (!Pki.isCa(issuer) || !Pki.canSignCertificates(issuer))
                return issuerLabel.substring(0, 1).toUpperCase(Locale.ROOT) + issuerLabel.substring(1)
                        + " is not a CA that may sign certificates, yet it issued " + label;
            if (last) return null;
        }
        return null;
    }

    /** The root certificate stored on the HSM under a CA ID (as import-ca stores it), or null. */
    public static X509Certificate hsmRoot(Hsm hsm, String caId) throws Exception {
        List<Hsm.Obj> certs = hsm.certificates(caId);
        if (certs.isEmpty()) return null;
        return Pki.certificate(hsm.bytes(certs.get(0).handle(), 0x11 /* CKA_VALUE */), "the root on the HSM");
    }
}
