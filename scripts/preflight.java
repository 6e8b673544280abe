///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
//FILES supported-versions.txt=../lib/supported-versions.txt
package asmhsm;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectAccessReviewBuilder;
import java.io.IOException;
import java.io.InputStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "preflight", mixinStandardHelpOptions = true,
        description = "Check the cluster, HSM and Vault meet the guide's requirements (guide: 'Requisitos'). "
                + "Runs every check, prints a checklist, exits 1 when a required check fails.")
class Preflight extends Step {
    static final int MIN_NODES = 4;
    static final BigDecimal MIN_CPU = BigDecimal.valueOf(4);
    static final BigDecimal MIN_MEMORY = BigDecimal.valueOf(15_000_000_000L); // the guide's "15 GB"
    static final List<String> CHECKS = List.of("nodes", "version", "permissions", "ports", "hsm", "vault", "upgrade");

    @Mixin Opts.Kube kube;
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.Vault vault;

    @Option(names = "--versions-file", defaultValue = "${env:ASM_SUPPORTED_VERSIONS}", paramLabel = "FILE",
            description = "Supported Kubernetes versions, one prefix a line (env ASM_SUPPORTED_VERSIONS; default: the toolkit's list).")
    Path versionsFile;

    @Option(names = "--upgrade-to", paramLabel = "VERSION",
            description = "Also check a canary upgrade to this ASM release (e.g. 1.10.6-asm.2) is supported from --upgrade-from and the cluster runs that one's revision.")
    String upgradeTo;

    @Option(names = "--upgrade-from", defaultValue = Release.DEFAULT_VERSION, paramLabel = "VERSION",
            description = "The ASM release installed now (default ${DEFAULT-VALUE}, revision asm-198-6).")
    String upgradeFrom;

    /** The upgrades the versions file lists ("upgrade FROM TO" lines). */
    private final List<Release.Upgrade> upgrades = new ArrayList<>();

    @Option(names = "--warn-only", description = "Badly named Service ports are a warning, not a failure.")
    boolean warnOnly;

    @Option(names = "--skip", split = ",", paramLabel = "CHECK",
            description = "Checks not to run: nodes, version, permissions, ports, hsm, vault (e.g. --skip hsm when the HSM is another team's).")
    List<String> skip = new ArrayList<>();

    private Checklist list;

    /** What the steps do in the cluster, asked as `kubectl auth can-i` asks: verb, group, resource, namespace, step. */
    record Need(String verb, String group, String resource, String namespace, String step) {
        String text() {
            return verb + " " + resource + (group.isEmpty() ? "" : "." + group)
                    + (namespace == null ? "" : namespace.isEmpty() ? " (all namespaces)" : " in " + namespace);
        }
    }

    static final String RBAC = "rbac.authorization.k8s.io", ADM = "admissionregistration.k8s.io";
    static final List<Need> NEEDS = List.of(
            new Need("create", RBAC, "clusterrolebindings", null, "grant-admin, k8s-vault-prep"),
            new Need("create", "", "namespaces", null, "k8s-vault-prep, control-plane-prep"),
            new Need("create", "", "secrets", "vault", "k8s-vault-prep"),
            new Need("get", "", "secrets", "vault", "k8s-vault-prep"),
            new Need("create", "", "configmaps", "istio-system", "control-plane-prep"),
            new Need("delete", "", "configmaps", "istio-system", "control-plane-prep"),
            new Need("create", "", "services", "istio-system", "istiod-service"),
            new Need("create", "apiextensions.k8s.io", "customresourcedefinitions", null, "install-asm"),
            new Need("create", RBAC, "clusterroles", null, "install-asm"),
            new Need("create", RBAC, "roles", "istio-system", "install-asm"),
            new Need("create", RBAC, "rolebindings", "istio-system", "install-asm"),
            new Need("create", "", "serviceaccounts", "istio-system", "install-asm"),
            new Need("create", "apps", "deployments", "istio-system", "install-asm"),
            new Need("create", ADM, "mutatingwebhookconfigurations", null, "install-asm"),
            new Need("create", ADM, "validatingwebhookconfigurations", null, "install-asm"),
            new Need("list", "", "pods", "istio-system", "istiod-status"),
            new Need("get", "", "pods/log", "istio-system", "istiod-status, verify-ca"),
            new Need("get", "", "secrets", "istio-system", "decrypt-csr"),
            new Need("create", "", "secrets", "istio-system", "upload-chain"),
            new Need("create", "", "pods/exec", "", "verify-mtls"),
            new Need("patch", "", "namespaces", null, "enable-injection"),
            new Need("patch", "apps", "deployments", "", "enable-injection --restart"),
            new Need("patch", "", "services", "istio-system", "external-ip"),
            new Need("list", "", "nodes", null, "preflight, external-ip"),
            new Need("list", "", "services", "", "preflight"));

    @Override
    protected void run() {
        for (String s : skip)
            if (!CHECKS.contains(s)) throw Fail.badInput("unknown check '" + s + "' in --skip", "choose from: " + String.join(", ", CHECKS));
        if (upgradeTo != null) {
            Release.requireVersion(upgradeTo);
            Release.requireVersion(upgradeFrom);
        }
        List<String> supported = supportedVersions();
        boolean kubeConnected = false;
        list = new Checklist(out);
        if (kubeChecksWanted()) {
            Kube k = null;
            try {
                k = kube();
            } catch (Fail f) {
                for (String c : List.of("nodes", "version", "permissions", "ports", "upgrade"))
                    if (!skip.contains(c) && (upgradeTo != null || !c.equals("upgrade"))) fail(c, f.getMessage(), f.hint);
            }
            if (k != null) {
                Kube kk = k;
                kubeConnected = true;
                check("nodes", () -> nodes(kk));
                check("version", () -> version(kk, supported));
                check("permissions", () -> permissions(kk));
                check("ports", () -> ports(kk));
                if (upgradeTo != null) check("upgrade", () -> upgrade(kk));
            }
        }
        if (upgradeTo != null && !kubeConnected && !kubeChecksWanted()) check("upgrade", () -> upgrade(null));
        check("hsm", this::checkHsm);
        check("vault", this::checkVault);
        for (String s : skip) if (!s.equals("upgrade") || upgradeTo != null) list.add(s, "skip", true, "not checked (--skip " + s + ")", null);
        out.put("checks", list.json());
        List<Checklist.Line> failed = list.notGood();
        if (!failed.isEmpty())
            throw Fail.failed(failed.size() + " of " + list.lines().size() + " checks failed: "
                    + String.join(", ", failed.stream().map(Checklist.Line::name).toList()), "fix what the lines above say, then re-run preflight");
        out.say("all checks passed");
    }

    private boolean kubeChecksWanted() {
        return !skip.containsAll(List.of("nodes", "version", "permissions", "ports")) || (upgradeTo != null && !skip.contains("upgrade"));
    }

    /** Runs one check unless skipped; any failure inside it becomes its FAIL line, and the next check still runs. */
    private void check(String name, Runnable body) {
        if (skip.contains(name)) return;
        int before = list.lines().size();
        try {
            body.run();
        } catch (Fail f) {
            list.lines().subList(before, list.lines().size()).clear();
            fail(name, f.getMessage(), f.hint);
        } catch (RuntimeException | LinkageError e) {
            fail(name, Step.describe(e), "re-run with --verbose for the details");
            if (common.verbose) e.printStackTrace();
        }
    }

    private void fail(String name, String detail, String fix) {
        list.add(name, "FAIL", false, detail, fix);
    }

    private void ok(String name, String detail, List<String> details, Map<String, Object> data) {
        list.add(name, "ok", true, detail, null, details, data);
    }

    // ---------------------------------------------------------------- cluster

    private void nodes(Kube k) {
        List<Node> nodes = k.call(() -> k.client.nodes().list().getItems(), "list the nodes");
        BigDecimal cpu = BigDecimal.ZERO, mem = BigDecimal.ZERO;
        List<String> lines = new ArrayList<>();
        List<Map<String, Object>> figures = new ArrayList<>();
        for (Node n : nodes) {
            Map<String, Quantity> alloc = n.getStatus() == null || n.getStatus().getAllocatable() == null ? Map.of() : n.getStatus().getAllocatable();
            BigDecimal c = amount(alloc.get("cpu")), m = amount(alloc.get("memory"));
            cpu = cpu.add(c);
            mem = mem.add(m);
            String ready = ready(n);
            lines.add(String.format("%-28s %6s vCPU %9s allocatable%s", n.getMetadata().getName(), c.stripTrailingZeros().toPlainString(),
                    gb(m), ready.equals("True") ? "" : " (Ready: " + ready + ")"));
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("name", n.getMetadata().getName());
            f.put("cpu", c);
            f.put("memoryBytes", m.toBigInteger());
            f.put("ready", ready);
            figures.add(f);
        }
        String fix = "add nodes to the user cluster (gkectl update cluster) until it has at least " + MIN_NODES;
        String bigger = "add nodes or give them more %s (the node pool's machine size, then gkectl update cluster)";
        Map<String, Object> data = Map.of("nodes", figures);
        if (nodes.size() >= MIN_NODES) ok("nodes", nodes.size() + " nodes (need " + MIN_NODES + ")", lines, data);
        else list.add("nodes", "FAIL", false, nodes.size() + " nodes, need at least " + MIN_NODES, fix, lines, data);
        String cpuText = cpu.stripTrailingZeros().toPlainString() + " vCPU allocatable (need " + MIN_CPU + ")";
        if (cpu.compareTo(MIN_CPU) >= 0) ok("cpu", cpuText, List.of(), Map.of("cpu", cpu));
        else list.add("cpu", "FAIL", false, cpuText, String.format(bigger, "vCPUs"), List.of(), Map.of("cpu", cpu));
        String memText = gb(mem) + " allocatable (need 15 GB)";
        if (mem.compareTo(MIN_MEMORY) >= 0) ok("memory", memText, List.of(), Map.of("memoryBytes", mem.toBigInteger()));
        else list.add("memory", "FAIL", false, memText, String.format(bigger, "memory"), List.of(), Map.of("memoryBytes", mem.toBigInteger()));
    }

    static BigDecimal amount(Quantity q) {
        return q == null ? BigDecimal.ZERO : q.getNumericalAmount();
    }

    static String gb(BigDecimal bytes) {
        return String.format("%.1f GB", bytes.doubleValue() / 1e9);
    }

    static String ready(Node n) {
        if (n.getStatus() != null && n.getStatus().getConditions() != null)
            for (NodeCondition c : n.getStatus().getConditions()) if ("Ready".equals(c.getType())) return c.getStatus();
        return "unknown";
    }

    private void version(Kube k, List<String> supported) {
        String v = k.call(() -> k.client.getKubernetesVersion(), "read the server version").getGitVersion();
        if (supported == null)
            throw Fail.failed("server " + v + ": the toolkit's list of supported versions is missing from this build",
                    "pass --versions-file FILE (one version prefix a line, e.g. 1.19)");
        Map<String, Object> data = Map.of("serverVersion", v, "supported", supported);
        if (versionSupported(v, supported)) ok("version", "server " + v + " is supported", List.of(), data);
        else list.add("version", "FAIL", false, "server " + v + " is not in the supported list (" + String.join(", ", supported) + ")",
                "upgrade the user cluster to a supported version (gkectl version shows it), or give your own list with --versions-file",
                List.of(), data);
    }

    /** "1.19" matches v1.19, v1.19.7 and v1.19.7-gke.2400, but not v1.190. */
    static boolean versionSupported(String gitVersion, List<String> supported) {
        for (String s : supported) if (Release.matchesPrefix(gitVersion, s)) return true;
        return false;
    }

    /**
     * The canary upgrade from --upgrade-from to --upgrade-to: a pair the versions file lists, and (when the
     * cluster is checked) istiod runs the old release's revision. The new one beside it is fine: a re-run.
     */
    private void upgrade(Kube k) {
        String from = Release.revision(upgradeFrom), to = Release.revision(upgradeTo);
        Map<String, Object> data = new java.util.LinkedHashMap<>();
        data.put("from", upgradeFrom);
        data.put("to", upgradeTo);
        data.put("fromRevision", from);
        data.put("toRevision", to);
        data.put("supported", upgrades.stream().map(Release.Upgrade::toString).toList());
        String problem = Release.upgradeProblem(upgradeFrom, upgradeTo, upgrades);
        if (problem != null)
            throw Fail.failed("upgrade " + upgradeFrom + " -> " + upgradeTo + " is not supported: " + problem,
                    "upgrade one minor version at a time (supported: " + String.join(", ", upgrades.stream().map(Release.Upgrade::toString).toList())
                            + "), or give your own list with --versions-file");
        String where = "";
        if (k != null) {
            java.util.Set<String> running = k.call(() -> Istio.revisions(k.client), "list istiod in " + Kube.ISTIO_NAMESPACE);
            data.put("revisions", running);
            if (running.contains(to) && !running.contains(from)) {
                ok("upgrade", "upgrade " + upgradeFrom + " (" + from + ") -> " + upgradeTo + " (" + to + ") is done: the cluster runs " + to + " alone",
                        List.of(), data);
                return;
            }
            if (!running.contains(from))
                throw Fail.failed("the cluster runs istiod revision(s) " + (running.isEmpty() ? "none" : String.join(", ", running)) + ", not " + from
                        + " of " + upgradeFrom, running.isEmpty() ? "install the mesh first (install-asm)" : "give the release installed now with --upgrade-from");
            where = running.contains(to) ? "; " + to + " already runs beside it" : "; the cluster runs " + from;
        }
        ok("upgrade", "upgrade " + upgradeFrom + " (" + from + ") -> " + upgradeTo + " (" + to + ") is supported" + where, List.of(), data);
    }

    /** The list from --versions-file / ASM_SUPPORTED_VERSIONS, else the toolkit's own; null when neither exists. */
    private List<String> supportedVersions() {
        String text;
        if (versionsFile != null) {
            text = Env.readText(versionsFile, "versions file", "text", "check --versions-file / ASM_SUPPORTED_VERSIONS");
        } else {
            try (InputStream in = Preflight.class.getResourceAsStream("/supported-versions.txt")) {
                if (in == null) return null;
                text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return null;
            }
        }
        List<String> versions = new ArrayList<>();
        String[] lines = text.split("\n");
        for (int i = 0; i < lines.length; i++) {
            String s = lines[i].replaceFirst("#.*", "").strip();
            if (s.isEmpty()) continue;
            java.util.regex.Matcher u = java.util.regex.Pattern.compile("upgrade\\s+(\\d+\\.\\d+(?:\\.\\d+)?(?:-asm\\.\\d+)?)\\s+(\\d+\\.\\d+(?:\\.\\d+)?(?:-asm\\.\\d+)?)").matcher(s);
            if (u.matches()) {
                upgrades.add(new Release.Upgrade(u.group(1), u.group(2)));
                continue;
            }
            if (s.startsWith("v")) s = s.substring(1);
            if (!s.matches("\\d+\\.\\d+(\\.\\d+)?([-+][0-9A-Za-z.-]+)?"))
                // the line is not quoted: the file may be a secret given by mistake
                throw Fail.badInput("line " + (i + 1) + " of versions file " + (versionsFile == null ? "(built in)" : versionsFile)
                        + " is not a version prefix (" + text.getBytes(StandardCharsets.UTF_8).length + " bytes)",
                        "write one version a line, e.g. 1.19 or 1.20.5");
            versions.add(s);
        }
        if (versions.isEmpty())
            throw Fail.badInput("versions file " + versionsFile + " lists no version", "write one version a line, e.g. 1.19");
        return versions;
    }

    /** SelfSubjectAccessReview per verb and resource, as `istioctl x precheck` asks. */
    private void permissions(Kube k) {
        List<String> denied = new ArrayList<>();
        for (Need n : NEEDS) {
            String[] res = n.resource().split("/");
            SelfSubjectAccessReview review = new SelfSubjectAccessReviewBuilder().withNewSpec().withNewResourceAttributes()
                    .withVerb(n.verb()).withGroup(n.group()).withResource(res[0]).withSubresource(res.length > 1 ? res[1] : null)
                    .withNamespace(n.namespace()).endResourceAttributes().endSpec().build();
            SelfSubjectAccessReview answer = k.call(
                    () -> k.client.authorization().v1().selfSubjectAccessReview().create(review), "ask whether we may " + n.text());
            if (answer.getStatus() == null || !Boolean.TRUE.equals(answer.getStatus().getAllowed()))
                denied.add(n.text() + "  (" + n.step() + ")");
        }
        Map<String, Object> data = Map.of("denied", denied);
        if (denied.isEmpty()) ok("permissions", "may do all " + NEEDS.size() + " things the steps do", List.of(), data);
        else list.add("permissions", "FAIL", false, denied.size() + " of " + NEEDS.size() + " things the steps do are not allowed",
                "bind your account to cluster-admin: an admin runs grant-admin --user <you>", denied, data);
    }

    private void ports(Kube k) {
        var services = k.call(() -> k.client.services().inAnyNamespace().list().getItems(), "list the Services");
        List<Istio.PortProblem> problems = Istio.portNameProblems(services);
        List<String> lines = new ArrayList<>();
        List<Map<String, Object>> offenders = new ArrayList<>();
        for (Istio.PortProblem p : problems) {
            lines.add(p.message());
            Map<String, Object> o = new LinkedHashMap<>();
            o.put("namespace", p.namespace());
            o.put("service", p.service());
            o.put("port", p.port());
            o.put("name", p.name() == null ? "" : p.name());
            offenders.add(o);
        }
        Map<String, Object> data = Map.of("offenders", offenders);
        if (problems.isEmpty()) { ok("ports", "every Service port is named <protocol>[-<suffix>] (" + services.size() + " Services)", List.of(), data); return; }
        String detail = problems.size() + " Service port(s) not named <protocol>[-<suffix>] (protocols: "
                + String.join(", ", Istio.PORT_PROTOCOLS) + ")";
        String fix = "rename each port (e.g. http-web, grpc-api, tcp-db) or set appProtocol; see Istio's 'Protocol Selection'";
        list.add("ports", warnOnly ? "warn" : "FAIL", warnOnly, detail, fix, lines, data);
        if (warnOnly) out.warn(detail);
    }

    // ---------------------------------------------------------------- HSM and Vault

    private void checkHsm() {
        if (p11.lib == null || p11.lib.isBlank())
            throw Fail.failed("no PKCS#11 library set: the Luna HSM is not configured",
                    "export P11_LIB=<path to libCryptoki2.so>, P11_TOKEN=<slot label>, P11_PIN_FILE=<0600 file with the PIN>");
        try (Hsm hsm = Hsm.open(p11, out)) {
            Map<String, Object> info = hsm.tokenInfo();
            ok("hsm", "token '" + hsm.tokenLabel + "' found in " + hsm.lib + " and the PIN logs in (" + info.get("manufacturer")
                    + " " + info.get("model") + ")", List.of(), Map.of("token", hsm.tokenLabel, "model", info.get("model")));
        } catch (sun.security.pkcs11.wrapper.PKCS11Exception e) {
            throw Fail.failed("cannot read the token of " + p11.lib + ": " + e.getMessage(), "check the HSM connection");
        }
    }

    private void checkVault() {
        Vault v = Vault.connect(vault, null); // seal status needs no token
        if (v.sealed("report its seal status"))
            throw Fail.failed("Vault at " + v.addr + " answers but is sealed", "unseal it (vault operator unseal), then re-run");
        ok("vault", "Vault at " + v.addr + " answers and is unsealed", List.of(), Map.of("addr", v.addr));
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new Preflight()).execute(args));
    }
}
