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

    @Option(names = "--revision", defaultValue = "asm-198-6", paramLabel = "REV",
            description = "istiod's revision label, istio.io/rev (default: ${DEFAULT-VALUE}).")
    String revision;

    @Mixin Opts.IstioNamespace ns;

    @Override
    protected void run() {
        if (!revision.matches("[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?"))
            throw Fail.badInput("revision '" + revision + "' is not a valid label value", "give istiod's istio.io/rev label, e.g. asm-198-6");
        Service service = Kube.istiodService(revision, ns.name);
        out.put("service", ns.name + "/" + Kube.ISTIOD_SERVICE).put("revision", revision);
        try (Kube k = Kube.connect(kube)) {
            if (k.live(Kube.namespace(ns.name)) == null)
                throw Fail.failed("namespace " + ns.name + " does not exist", "run control-plane-prep first (it creates it)");
            k.apply(service, out);
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new IstiodService()).execute(args));
    }
}
