///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

// PLACEHOLDER: replaced by the real step (tracked in its issue). Never ship this.
@Command(name = "fetch-release", mixinStandardHelpOptions = true,
        description = "Download, verify and extract the ASM release (guide: 'Descarga el archivo de instalacion').")
class FetchRelease extends Step {
    @Override
    protected void run() {
        throw Fail.failed("fetch-release is not implemented yet", "see the open issues");
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new FetchRelease()).execute(args));
    }
}
