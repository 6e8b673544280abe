///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "fetch-release", mixinStandardHelpOptions = true,
        description = "Download the ASM release and its signature, verify it with Google's release key and extract it"
                + " (guide: 'Descarga el archivo de instalacion').")
class FetchRelease extends Step {
    // Not --version, which every step has for the toolkit's own version (-V).
    @Option(names = "--asm-version", defaultValue = Release.DEFAULT_VERSION, paramLabel = "VERSION",
            description = "ASM release (default: ${DEFAULT-VALUE}, the guide's).")
    String version;

    @Option(names = "--platform", paramLabel = "linux-amd64|osx|win", description = "Archive to fetch (default: this machine's).")
    String platform;

    @Option(names = "--dir", defaultValue = ".", paramLabel = "DIR",
            description = "Where the archive goes and istio-VERSION/ is extracted (default: the current directory).")
    Path dir;

    @Option(names = "--base-url", defaultValue = "${env:ASM_RELEASE_BASE_URL:-" + Release.DEFAULT_BASE_URL + "}", paramLabel = "URL",
            description = "Where the archives are published (env ASM_RELEASE_BASE_URL; default ${DEFAULT-VALUE}).")
    String baseUrl;

    @Option(names = "--public-key", paramLabel = "FILE", description = "PEM public key to verify with (default: the guide's, built in).")
    Path publicKeyFile;

    @Option(names = "--archive", paramLabel = "FILE", description = "Use this archive instead of downloading (air-gapped sites); needs --signature.")
    Path archive;

    @Option(names = "--signature", paramLabel = "FILE", description = "The archive's .1.sig file, with --archive.")
    Path signature;

    @Override
    protected void run() throws Exception {
        ReleaseArchive release = ReleaseArchive.of(version, platform, baseUrl, publicKeyFile, archive, signature, dir, out);
        out.put("version", version).put("platform", release.platform.id).put("releaseDir", release.releaseDir.toAbsolutePath().toString());
        release.removeLeftovers();
        if (!release.extracted()) {
            if (out.dryRun()) {
                release.plan();
                return;
            }
            release.fetch(http());
            release.verify();
            release.extract();
        }
        release.report();
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new FetchRelease()).execute(args));
    }
}
