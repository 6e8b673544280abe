///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "istiod-status", mixinStandardHelpOptions = true,
        description = "Which stage istiod is in (not started / waiting for the CA / running), from its pods' readiness and"
                + " the hsm-plugin and discovery logs (guide: 'Verifica que Istiod se inicialice correctamente').")
class IstiodStatus extends Step {
    @Mixin Opts.Kube kube;

    @Mixin Opts.IstioNamespace ns;

    @Mixin Opts.Kek kek;

    @Option(names = "--wait", arity = "0..1", fallbackValue = "waiting-for-ca", paramLabel = "STAGE",
            description = "Poll until istiod reaches STAGE or further: waiting-for-ca (the default) or running.")
    String waitFor;

    @Option(names = "--timeout", defaultValue = "5m", paramLabel = "DURATION", converter = Opts.DurationConverter.class,
            description = "How long --wait polls, e.g. 90s, 5m (default: ${DEFAULT-VALUE}).")
    Duration limit;

    private final Map<String, String> unreadableLogs = new LinkedHashMap<>();
    private final Map<String, Pod> podsByName = new LinkedHashMap<>();
    private Istio.CaSecrets secrets;

    @Override
    protected void run() throws Exception {
        Istio.Stage target = waitFor == null ? null : Istio.Stage.of(waitFor);
        Kube k = kube();
        long start = System.nanoTime();
        List<Istio.PodReport> pods;
        Istio.Stage stage;
        while (true) {
            pods = inspect(k);
            secrets = Istio.CaSecrets.read(k, ns.name);
            stage = Istio.overall(pods);
            if (target == null || stage.ordinal() >= target.ordinal()) break;
            if (stage == Istio.Stage.CRASH_LOOPING && pods.stream().anyMatch(p -> !p.problems().isEmpty())) break; // waiting will not fix it
            long waited = (System.nanoTime() - start) / 1_000_000_000L;
            if (waited >= limit.toSeconds()) {
                show(pods, stage);
                throw Fail.failed("istiod did not reach '" + target.words + "' within " + Opts.text(limit) + ": it is " + stage.words,
                        pods.isEmpty() ? "install istiod with install-asm" : stage.next());
            }
            out.progress(String.format("istiod: %s (%s)", stage.words, readiness(pods)), String.format("%ds / %ds", waited, limit.toSeconds()));
            Thread.sleep(2000);
        }
        show(pods, stage);
        if (pods.isEmpty())
            throw Fail.failed("no istiod pods (app=" + Istio.ISTIOD_APP + ") in namespace " + ns.name,
                    "install istiod with install-asm (or check --context / --namespace)");
        List<Istio.Problem> problems = new ArrayList<>();
        pods.forEach(p -> problems.addAll(p.problems()));
        if (!problems.isEmpty())
            throw Fail.failed(problems.get(0).what() + (problems.size() > 1 ? " (and " + (problems.size() - 1) + " more above)" : ""),
                    problems.get(0).hint());
    }

    private List<Istio.PodReport> inspect(Kube k) {
        List<Istio.PodReport> reports = new ArrayList<>();
        try {
            podsByName.clear();
            for (Pod pod : Istio.istiodPods(k.client, ns.name)) {
                podsByName.put(pod.getMetadata().getName(), pod);
                reports.add(Istio.inspect(pod, container -> log(k, pod, container), kek.id));
            }
        } catch (KubernetesClientException e) {
            throw k.explain(e, "list the istiod pods in " + ns.name);
        }
        return reports;
    }

    /**
     * A container's recent log, or null (noted once) when the API server cannot serve it or
     * serves it empty (as for a pod no kubelet runs): a running istiod always logs something.
     */
    private String log(Kube k, Pod pod, String container) {
        String where = pod.getMetadata().getName() + "/" + container;
        try {
            String log = Istio.containerLog(k, pod, container);
            if (log != null && !log.isBlank()) return log;
            unreadableLogs.putIfAbsent(where, "the log of " + where + " is empty");
        } catch (KubernetesClientException e) {
            unreadableLogs.putIfAbsent(where, "cannot read the log of " + where + ": " + Kube.reason(e));
        }
        return null;
    }

    private void show(List<Istio.PodReport> pods, Istio.Stage stage) {
        out.put("namespace", ns.name).put("stage", stage.id);
        out.put("secrets", Map.of(Istio.CSR_SECRET, secrets.csr(), Istio.ENCRYPTED_KEY_SECRET, secrets.encryptedKey(), Istio.CA_CERT_SECRET, secrets.caCert()));
        out.say("istiod in %s: %s", ns.name, pods.isEmpty() ? "not started (no pods)" : stage.words);
        List<Map<String, Object>> json = new ArrayList<>();
        for (Istio.PodReport p : pods) {
            out.say("  pod %s  %s  %s%s", p.name(), p.readiness(), p.phase(), p.revision() == null ? "" : "  revision " + p.revision());
            for (Istio.ContainerReport c : p.containers())
                out.say("    %-12s %-9s %s%s", c.name(), c.ready() ? "ready" : "not ready", c.state(),
                        c.restarts() > 0 ? " (" + c.restarts() + " restarts)" : "");
            if (p.kekId() != null) out.say("    hsm-plugin log: KEK ID: %s", p.kekId());
            if (p.waitingLine() != null) out.say("    discovery log: %s", p.waitingLine());
            p.notes().forEach(n -> out.say("    note: %s", n));
            p.problems().forEach(pr -> out.say("    problem: %s", pr.what()));
            Istio.Explanation why = Istio.explain(p, secrets);
            String story = Istio.restartStory(p, podsByName.get(p.name()), secrets);
            out.say("    state: %s", why.line());
            if (story != null) out.say("    %s", story);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", p.name());
            m.put("revision", p.revision());
            m.put("phase", p.phase());
            m.put("ready", p.readiness());
            m.put("stage", p.stage().id);
            m.put("containers", p.containers());
            m.put("kekId", p.kekId());
            m.put("waitingForCaLogged", p.waitingLine() != null);
            m.put("notes", p.notes());
            m.put("problems", p.problems());
            m.put("state", why.state());
            m.put("explanation", why.what());
            m.put("todo", why.todo());
            m.put("restart", story);
            json.add(m);
        }
        unreadableLogs.values().forEach(out::warn);
        out.put("pods", json);
        if (!pods.isEmpty()) {
            out.next(stage.next(out.given(Opts.Kube.class), out.given(Opts.Kube.class, Opts.IstioNamespace.class, Opts.Kek.class)));
        }
    }

    private static String readiness(List<Istio.PodReport> pods) {
        if (pods.isEmpty()) return "no pods yet";
        List<String> r = new ArrayList<>();
        for (Istio.PodReport p : pods) r.add(p.readiness());
        return String.join(", ", r) + " ready";
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new IstiodStatus()).execute(args));
    }
}
