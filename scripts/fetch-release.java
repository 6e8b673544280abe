///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PublicKey;
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
        Release.requireVersion(version);
        Release.Platform p = platform == null ? Release.Platform.current() : Release.Platform.of(platform);
        PublicKey key = publicKeyFile == null ? Release.guideKey() : Release.readPublicKey(publicKeyFile);
        boolean offline = archive != null || signature != null;
        if (offline && (archive == null || signature == null))
            throw Fail.badInput("--archive and --signature go together", "pass both files, or neither to download them");
        for (Path f : offline ? new Path[] {archive, signature} : new Path[0])
            if (!Files.isRegularFile(f)) throw Fail.badInput(f + " does not exist or is not a file", "check the path");
        URI url = offline ? null : archiveUrl(baseUrl, Release.archiveName(version, p));
        if (Files.exists(dir) && !Files.isDirectory(dir)) throw Fail.badInput(dir + " is not a directory", "check --dir");
        Path release = dir.resolve(Release.topDir(version));
        out.put("version", version).put("platform", p.id).put("releaseDir", release.toAbsolutePath().toString());
        for (Path left : Release.leftovers(dir)) {
            if (signature != null && Files.isSameFile(left, signature)) continue;    // the operator's own, given with --archive
            if (!out.dryRun()) Release.deleteTree(left);
            out.change((out.dryRun() ? "remove " : "removed ") + left + ", left by an interrupted run");
        }

        if (Files.exists(release)) {
            if (!Release.complete(release))
                throw Fail.failed(release + " exists but holds no bin/istioctl or manifests/profiles",
                        "move it away and run fetch-release again");
            out.say("%s is already extracted", release);
            report(release);
            return;
        }
        if (out.dryRun()) {
            if (!offline) out.change("download " + url + " and its .1.sig into " + dir);
            out.change("verify the signature and extract " + Release.topDir(version) + "/ into " + dir);
            return;
        }
        Files.createDirectories(dir);
        if (!offline) {
            archive = dir.resolve(Release.archiveName(version, p));
            signature = dir.resolve(Release.signatureName(archive.getFileName().toString()));
            if (Files.isRegularFile(archive) && Files.isRegularFile(signature)) {
                out.say("%s and its .1.sig are already downloaded", archive);
            } else {
                // a failed or interrupted run leaves neither (a signature alone is not kept either)
                String name = archive.getFileName().toString();
                Release.downloadWithSignature(http(), url, archive, (done, total) -> out.progress("downloading " + name, Release.progressBar(done, total)));
                out.endProgress();
                out.change("downloaded " + url + " and its .1.sig");
            }
            out.put("url", url.toString());
        }
        out.put("archive", archive.toString()).put("signature", signature.toString());

        String keyName = publicKeyFile == null ? "Google's ASM release key (as printed in the guide)" : "the key in " + publicKeyFile;
        if (!Release.verifies(archive, Files.readAllBytes(signature), key)) {
            out.put("verified", false);
            String removed = "";
            if (!offline) {
                Files.deleteIfExists(archive);
                Files.deleteIfExists(signature);
                removed = " (deleted " + archive.getFileName() + " and " + signature.getFileName() + ")";
            }
            throw Fail.failed("signature does NOT verify: " + archive.getFileName() + " is not signed by " + keyName + removed,
                    offline ? "do not use this archive: get the archive and its .1.sig again from Google"
                            : "the download is damaged or was tampered with: run fetch-release again, or check the mirror (--base-url)");
        }
        out.put("verified", true);
        out.say("Verified OK: %s is signed by %s", archive.getFileName(), keyName);

        try {
            Release.extract(archive, p.zip(), dir, Release.topDir(version));
        } catch (Release.Refused e) {
            throw Fail.failed("refusing to extract " + archive.getFileName() + ": " + e.getMessage(),
                    "nothing was extracted; this is not a release archive as Google publishes it", e);
        } catch (java.io.IOException e) {
            throw Fail.failed("cannot extract " + archive.getFileName() + ": " + Kube.rootMessage(e),
                    "nothing was extracted; check free space and permissions in " + dir, e);
        }
        out.change("extracted " + archive.getFileName() + " into " + release);
        report(release);
    }

    private void report(Path release) {
        Path istioctl = Release.istioctl(release);
        if (istioctl == null) {
            out.warn(release + " holds no bin/istioctl: install-asm will need --istioctl");
        } else {
            out.put("istioctl", istioctl.toAbsolutePath().toString());
            out.say("istioctl: %s", istioctl);
        }
        out.put("profiles", Release.profiles(release).toAbsolutePath().toString());
        out.say("profiles: %s", Release.profiles(release));
        out.say("Next: cd %s, then control-plane-prep, istiod-service and install-asm", release);
    }

    static URI archiveUrl(String base, String archiveName) {
        try {
            URI u = URI.create(base.endsWith("/") ? base : base + "/").resolve(archiveName);
            if (!"https".equals(u.getScheme()) && !"http".equals(u.getScheme())) throw new IllegalArgumentException("not http(s)");
            return u;
        } catch (IllegalArgumentException e) {
            throw Fail.badInput("base URL '" + base + "' is not an http(s) URL: " + e.getMessage(), "fix --base-url");
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new FetchRelease()).execute(args));
    }
}
