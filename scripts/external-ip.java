///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "external-ip", mixinStandardHelpOptions = true,
        description = "Give the ingress gateway its external IP (guide: 'Configura una direccion IP externa').")
class ExternalIp extends Step {
    @Override
    protected void run() {
        throw Fail.failed("external-ip is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new ExternalIp()).execute(args));
    }
}
