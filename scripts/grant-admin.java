///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "grant-admin", mixinStandardHelpOptions = true,
        description = "Bind a user to cluster-admin, as the guide's first kubectl step.")
class GrantAdmin extends Step {
    @Override
    protected void run() {
        throw Fail.failed("grant-admin is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new GrantAdmin()).execute(args));
    }
}
