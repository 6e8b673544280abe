///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "vault-setup", mixinStandardHelpOptions = true,
        description = "Store the HSM credentials in Vault behind Kubernetes auth (guide: 'Configura Vault').")
class VaultSetup extends Step {
    @Override
    protected void run() {
        throw Fail.failed("vault-setup is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new VaultSetup()).execute(args));
    }
}
