///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Namespace;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "enable-injection", mixinStandardHelpOptions = true,
        description = "Turn on sidecar injection for a namespace with istiod's revision label, optionally restart its "
                + "Deployments, and show which pods still lack the sidecar (guide: 'Inserta proxies de sidecar').")
class EnableInjection extends Step {
    @Mixin Opts.Kube kube;

    @Option(names = {"-n", "--namespace"}, required = true, paramLabel = "NAMESPACE", description = "Namespace to inject.")
    String namespace;

    @Option(names = "--revision", paramLabel = "REVISION", converter = Opts.RevisionConverter.class,
            description = "istiod revision (default: the istio.io/rev label of the running istiod, e.g. " + Istio.GUIDE_REVISION + ").")
    String revision;

    @Option(names = "--restart", description = "Restart every Deployment whose pods lack the revision, as `kubectl rollout restart` does.")
    boolean restart;

    /** --wait: until every pod of the namespace carries the revision. */
    @Mixin Opts.Wait wait;

    @Override
    protected void run() throws Exception {
        Injection.requireInjectable(namespace);
        out.put("namespace", namespace);
        Kube k = kube();
        Namespace ns = Injection.read(k, namespace);
        String rev = Injection.revision(k, revision);
        out.put("revision", rev);
        Injection.label(k, ns, rev, out);
        if (restart) out.put("restarted", Injection.restartDeployments(k, namespace, rev, out));
        boolean waits = wait.await && !out.dryRun();
        List<String> lacking = Injection.lacking(k, namespace, rev);
        if (waits && !lacking.isEmpty()) lacking = Injection.awaitPods(k, namespace, rev, wait.timeout, out);
        out.put("podsWithoutRevision", lacking);
        if (lacking.isEmpty()) {
            out.say("every pod in %s carries %s=%s", namespace, Istio.REV_LABEL, rev);
        } else if (waits) {
            throw Fail.failed(lacking.size() + " pod(s) in " + namespace + " still lack " + Istio.REV_LABEL + "=" + rev
                    + " after " + Opts.text(wait.timeout) + ": " + String.join(", ", lacking),
                    "check their Deployments roll (kubectl rollout status -n " + namespace + ") and that istiod's webhook answers");
        } else {
            out.say("%d pod(s) do not carry %s=%s yet: %s", lacking.size(), Istio.REV_LABEL, rev, String.join(", ", lacking));
            if (!restart) out.say("Restart their workloads to inject the sidecar: re-run with --restart (or kubectl rollout restart deployment -n %s)", namespace);
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new EnableInjection()).execute(args));
    }
}
