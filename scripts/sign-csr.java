///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "sign-csr", mixinStandardHelpOptions = true,
        description = "Sign istiod's CSR as the Istio CA certificate, directly by the root.")
class SignCsr extends Step {
    @Override
    protected void run() {
        throw Fail.failed("sign-csr is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new SignCsr()).execute(args));
    }
}
