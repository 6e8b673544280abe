///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "k8s-vault-prep", mixinStandardHelpOptions = true,
        description = "Prepare Kubernetes for Vault's TokenReview (guide: 'Configura Kubernetes para la autenticacion de Vault').")
class K8sVaultPrep extends Step {
    @Override
    protected void run() {
        throw Fail.failed("k8s-vault-prep is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new K8sVaultPrep()).execute(args));
    }
}
