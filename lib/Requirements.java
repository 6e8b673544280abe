package asmhsm;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeCondition;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SelfSubjectAccessReviewBuilder;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * What the guide requires before the install (its 'Requisitos'), checked as preflight checks it:
 * each check adds its lines to one checklist (ok, FAIL, warn), or throws the Fail that becomes
 * its one FAIL line; every check runs, whatever the others found.
 */
final class Requirements {
    /** Every check, by the name --skip takes. */
    static final List<String> CHECKS = List.of("nodes", "version", "permissions", "ports", "hsm", "vault", "upgrade");
    /** The checks that read the cluster, besides upgrade (which reads it too, when an upgrade is asked about). */
    static final List<String> CLUSTER_CHECKS = List.of("nodes", "version", "permissions", "ports");

    static final int MIN_NODES = 4;
    static final BigDecimal MIN_CPU = BigDecimal.valueOf(4);
    static final BigDecimal MIN_MEMORY = BigDecimal.valueOf(15_000_000_000L); // the guide's "15 GB"

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

    private final Out out;
    private final List<String> skip;
    private final boolean verbose;
    private final Checklist list;

    /** Checks printing to `out`, leaving out those named in `skip` (each a name of {@link #CHECKS}, else bad input). */
    Requirements(Out out, List<String> skip, boolean verbose) {
        for (String s : skip)
            if (!CHECKS.contains(s)) throw Fail.badInput("unknown check '" + s + "' in --skip", "choose from: " + String.join(", ", CHECKS));
        this.out = out;
        this.skip = skip;
        this.verbose = verbose;
        this.list = new Checklist(out);
    }

    /** The cluster's checks to run: the four, and upgrade when an upgrade is asked about, less the skipped. */
    List<String> clusterChecks(boolean upgrade) {
        List<String> names = new ArrayList<>(CLUSTER_CHECKS);
        if (upgrade) names.add("upgrade");
        names.removeAll(skip);
        return names;
    }

    /** The cluster, or null when it cannot be reached: then each of `checks` fails with why. */
    Kube connect(Supplier<Kube> kube, List<String> checks) {
        try {
            return kube.get();
        } catch (Fail f) {
            for (String c : checks) fail(c, f.getMessage(), f.hint);
            return null;
        }
    }

    /** Runs one check unless skipped; any failure inside it becomes its FAIL line, and the next check still runs. */
    void run(String name, Runnable check) {
        if (skip.contains(name)) return;
        int before = list.lines().size();
        try {
            check.run();
        } catch (Fail f) {
            list.lines().subList(before, list.lines().size()).clear();
            fail(name, f.getMessage(), f.hint);
        } catch (RuntimeException | LinkageError e) {
            fail(name, Step.describe(e), "re-run with --verbose for the details");
            if (verbose) e.printStackTrace();
        }
    }

    /**
     * The skipped checks' lines (upgrade's only when an upgrade was asked about), the checklist as the
     * result's "checks", and the verdict: fails naming each failed line, else says all passed.
     */
    void finish(boolean upgrade) {
        for (String s : skip) if (!s.equals("upgrade") || upgrade) list.add(s, "skip", true, "not checked (--skip " + s + ")", null);
        out.put("checks", list.json());
        List<Checklist.Line> failed = list.notGood();
        if (!failed.isEmpty())
            throw Fail.failed(failed.size() + " of " + list.lines().size() + " checks failed: "
                    + String.join(", ", failed.stream().map(Checklist.Line::name).toList()), "fix what the lines above say, then re-run preflight");
        out.say("all checks passed");
    }

    private void fail(String name, String detail, String fix) {
        list.add(name, "FAIL", false, detail, fix);
    }

    private void ok(String name, String detail, List<String> details, Map<String, Object> data) {
        list.add(name, "ok", true, detail, null, details, data);
    }

    // ---------------------------------------------------------------- cluster

    /** At least four nodes, 4 vCPU and 15 GB allocatable in all: three lines, nodes, cpu and memory. */
    void nodes(Kube k) {
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

    private static BigDecimal amount(Quantity q) {
        return q == null ? BigDecimal.ZERO : q.getNumericalAmount();
    }

    private static String gb(BigDecimal bytes) {
        return String.format("%.1f GB", bytes.doubleValue() / 1e9);
    }

    private static String ready(Node n) {
        if (n.getStatus() != null && n.getStatus().getConditions() != null)
            for (NodeCondition c : n.getStatus().getConditions()) if ("Ready".equals(c.getType())) return c.getStatus();
        return "unknown";
    }

    /** The API server's version is one the versions file lists. */
    void version(Kube k, Release.Supported supported) {
        String v = k.call(() -> k.client.getKubernetesVersion(), "read the server version").getGitVersion();
        if (supported.kubernetes() == null)
            throw Fail.failed("server " + v + ": the toolkit's list of supported versions is missing from this build",
                    "pass --versions-file FILE (one version prefix a line, e.g. 1.19)");
        Map<String, Object> data = Map.of("serverVersion", v, "supported", supported.kubernetes());
        if (supported.kubernetesSupported(v)) ok("version", "server " + v + " is supported", List.of(), data);
        else list.add("version", "FAIL", false, "server " + v + " is not in the supported list (" + String.join(", ", supported.kubernetes()) + ")",
                "upgrade the user cluster to a supported version (gkectl version shows it), or give your own list with --versions-file",
                List.of(), data);
    }

    /** SelfSubjectAccessReview per verb and resource, as `istioctl x precheck` asks. */
    void permissions(Kube k) {
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

    /** Every Service port is named as Istio's protocol selection reads it (IST0118); with `warnOnly` a warning. */
    void ports(Kube k, boolean warnOnly) {
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

    /**
     * The canary upgrade from `from` to `to`: a pair the versions file lists, and istiod runs the old
     * release's revision. The new one beside it is fine: a re-run.
     */
    void upgrade(Kube k, String from, String to, List<Release.Upgrade> upgrades) {
        String fromRev = Release.revision(from), toRev = Release.revision(to);
        Map<String, Object> data = new LinkedHashMap<>();
        data.put("from", from);
        data.put("to", to);
        data.put("fromRevision", fromRev);
        data.put("toRevision", toRev);
        data.put("supported", upgrades.stream().map(Release.Upgrade::toString).toList());
        String problem = Release.upgradeProblem(from, to, upgrades);
        if (problem != null)
            throw Fail.failed("upgrade " + from + " -> " + to + " is not supported: " + problem,
                    "upgrade one minor version at a time (supported: " + String.join(", ", upgrades.stream().map(Release.Upgrade::toString).toList())
                            + "), or give your own list with --versions-file");
        Set<String> running = k.call(() -> Istio.revisions(k.client), "list istiod in " + KubeLayout.ISTIO_NAMESPACE);
        data.put("revisions", running);
        String pair = "upgrade " + from + " (" + fromRev + ") -> " + to + " (" + toRev + ")";
        if (running.contains(toRev) && !running.contains(fromRev)) {
            ok("upgrade", pair + " is done: the cluster runs " + toRev + " alone", List.of(), data);
            return;
        }
        if (!running.contains(fromRev))
            throw Fail.failed("the cluster runs istiod revision(s) " + (running.isEmpty() ? "none" : String.join(", ", running)) + ", not " + fromRev
                    + " of " + from, running.isEmpty() ? "install the mesh first (install-asm)" : "give the release installed now with --upgrade-from");
        String where = running.contains(toRev) ? "; " + toRev + " already runs beside it" : "; the cluster runs " + fromRev;
        ok("upgrade", pair + " is supported" + where, List.of(), data);
    }

    // ---------------------------------------------------------------- HSM and Vault

    /** The PKCS#11 library is set, its token found and the PIN logs in. */
    void hsm(Opts.Pkcs11 p11) {
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

    /** Vault answers and is unsealed (its seal status needs no token). */
    void vault(Vault v) {
        if (v.sealed("report its seal status"))
            throw Fail.failed("Vault at " + v.addr + " answers but is sealed", "unseal it (vault operator unseal), then re-run");
        ok("vault", "Vault at " + v.addr + " answers and is unsealed", List.of(), Map.of("addr", v.addr));
    }
}
