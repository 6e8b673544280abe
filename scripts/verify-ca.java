///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "verify-ca", mixinStandardHelpOptions = true,
        description = "Check istiod loaded the uploaded CA chain (guide: 'Verifica').")
class VerifyCa extends Step {
    @Override
    protected void run() {
        throw Fail.failed("verify-ca is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new VerifyCa()).execute(args));
    }
}
