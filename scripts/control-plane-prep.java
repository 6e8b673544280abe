///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "control-plane-prep", mixinStandardHelpOptions = true,
        description = "Namespace istio-system and ConfigMap vault-tls-cert (guide: 'Configura el recurso en el plano de control').")
class ControlPlanePrep extends Step {
    @Override
    protected void run() {
        throw Fail.failed("control-plane-prep is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new ControlPlanePrep()).execute(args));
    }
}
