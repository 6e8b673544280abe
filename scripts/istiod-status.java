///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

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

    @Mixin Opts.Timeout timeout;

    /** The logs that could not be read, in any look while waiting: warned once each. */
    private final Map<String, String> unreadableLogs = new LinkedHashMap<>();

    @Override
    protected void run() throws Exception {
        IstiodStages.Stage target = waitFor == null ? null : IstiodStages.Stage.of(waitFor);
        Kube k = kube();
        long start = System.nanoTime();
        IstiodStages.Inspection now;
        IstiodStages.CaSecrets secrets;
        IstiodStages.Stage stage;
        while (true) {
            now = IstiodStages.Inspection.of(k, ns.name, kek.id);
            now.unreadable().forEach(unreadableLogs::putIfAbsent);
            secrets = IstiodStages.CaSecrets.read(k, ns.name);
            stage = IstiodStages.overall(now.reports());
            if (target == null || stage.ordinal() >= target.ordinal()) break;
            if (stage == IstiodStages.Stage.CRASH_LOOPING && now.reports().stream().anyMatch(p -> !p.problems().isEmpty())) break; // waiting will not fix it
            long waited = (System.nanoTime() - start) / 1_000_000_000L;
            if (waited >= timeout.timeout.toSeconds()) {
                show(now, secrets, stage);
                throw Fail.failed("istiod did not reach '" + target.words + "' within " + Opts.text(timeout.timeout) + ": it is " + stage.words,
                        now.reports().isEmpty() ? "install istiod with install-asm" : stage.next());
            }
            out.progress(String.format("istiod: %s (%s)", stage.words, now.readiness()), String.format("%ds / %ds", waited, timeout.timeout.toSeconds()));
            Thread.sleep(2000);
        }
        show(now, secrets, stage);
        if (now.reports().isEmpty())
            throw Fail.failed("no istiod pods (app=" + Istio.ISTIOD_APP + ") in namespace " + ns.name,
                    "install istiod with install-asm (or check --context / --namespace)");
        List<Istio.Problem> problems = now.reports().stream().flatMap(p -> p.problems().stream()).toList();
        if (!problems.isEmpty())
            throw Fail.failed(problems.get(0).what() + (problems.size() > 1 ? " (and " + (problems.size() - 1) + " more above)" : ""),
                    problems.get(0).hint());
    }

    private void show(IstiodStages.Inspection now, IstiodStages.CaSecrets secrets, IstiodStages.Stage stage) {
        out.put("namespace", ns.name).put("stage", stage.id);
        out.put("secrets", Map.of(Istio.CSR_SECRET, secrets.csr(), Istio.ENCRYPTED_KEY_SECRET, secrets.encryptedKey(), Istio.CA_CERT_SECRET, secrets.caCert()));
        out.say("istiod in %s: %s", ns.name, now.reports().isEmpty() ? "not started (no pods)" : stage.words);
        List<Map<String, Object>> json = new ArrayList<>();
        for (IstiodStages.PodReport p : now.reports()) {
            IstiodStages.Explanation why = IstiodStages.explain(p, secrets);
            String story = IstiodStages.restartStory(p, now.pods().get(p.name()), secrets);
            p.lines(why, story).forEach(out::say);
            json.add(p.json(why, story));
        }
        unreadableLogs.values().forEach(out::warn);
        out.put("pods", json);
        if (!now.reports().isEmpty())
            out.next(stage.next(out.given(Opts.Kube.class), out.given(Opts.Kube.class, Opts.IstioNamespace.class, Opts.Kek.class)));
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new IstiodStatus()).execute(args));
    }
}
