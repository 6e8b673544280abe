///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Service;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "istiod-service", mixinStandardHelpOptions = true,
        description = "The istiod Service with the revision label, so the validating webhook finds istiod "
                + "(guide: 'Configura el webhook de validacion'). --dry-run prints its YAML.")
class IstiodService extends Step {
    @Mixin Opts.Kube kube;

    @Option(names = "--revision", defaultValue = Istio.GUIDE_REVISION, paramLabel = "REV", converter = Opts.RevisionConverter.class,
            description = "istiod's revision label, istio.io/rev (default: ${DEFAULT-VALUE}).")
    String revision;

    @Mixin Opts.IstioNamespace ns;

    @Override
    protected void run() {
        KubeLayout layout = new KubeLayout(KubeLayout.VAULT_NAMESPACE, KubeLayout.TOKENREVIEW_BINDING, ns.name);
        Service service = layout.istiodService(revision);
        out.put("service", ns.name + "/" + KubeLayout.ISTIOD_SERVICE).put("revision", revision);
        if (kube().live(layout.istioNs()) == null)
            throw Fail.failed("namespace " + ns.name + " does not exist", "run control-plane-prep first (it creates it)");
        kube().apply(service, out);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new IstiodService()).execute(args));
    }
}
