///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "decrypt-csr", mixinStandardHelpOptions = true,
        description = "Decrypt istiod's CSR with the KEK in the HSM (guide: 'Firma del certificado').")
class DecryptCsr extends Step {
    @Override
    protected void run() {
        throw Fail.failed("decrypt-csr is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new DecryptCsr()).execute(args));
    }
}
