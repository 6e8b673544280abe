///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "preflight", mixinStandardHelpOptions = true,
        description = "Check the cluster, HSM and Vault meet the guide's requirements (guide: 'Requisitos').")
class Preflight extends Step {
    @Override
    protected void run() {
        throw Fail.failed("preflight is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new Preflight()).execute(args));
    }
}
