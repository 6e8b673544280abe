///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "install-asm", mixinStandardHelpOptions = true,
        description = "Run istioctl install with the HSM settings (guide: 'Instale Anthos Service Mesh').")
class InstallAsm extends Step {
    @Override
    protected void run() {
        throw Fail.failed("install-asm is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new InstallAsm()).execute(args));
    }
}
