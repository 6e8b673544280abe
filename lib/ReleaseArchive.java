package asmhsm;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PublicKey;

/**
 * One ASM release archive as fetch-release gets it: downloaded from the mirror with its .1.sig, or
 * the operator's own two files (air-gapped sites); verified with Google's release key (or a given
 * one), then extracted whole into istio-VERSION/ beside it, or not at all.
 */
final class ReleaseArchive {
    final String version;
    final Release.Platform platform;
    /** Where the archive goes and the release is extracted; the release's own folder. */
    final Path dir, releaseDir;
    /** The mirror's archive; null for the operator's own files. */
    private final URI url;
    private final PublicKey key;
    private final String keyName;
    private final Out out;
    private Path archive, signature;

    private ReleaseArchive(String version, Release.Platform platform, Path dir, URI url, PublicKey key, String keyName,
            Path archive, Path signature, Out out) {
        this.version = version;
        this.platform = platform;
        this.dir = dir;
        this.releaseDir = dir.resolve(Release.topDir(version));
        this.url = url;
        this.key = key;
        this.keyName = keyName;
        this.archive = archive;
        this.signature = signature;
        this.out = out;
    }

    /**
     * The archive fetch-release's options name, refused (exit 2) before anything is touched when
     * they do not fit: a malformed version, platform or base URL, an unreadable key, half of
     * --archive/--signature, a file that is not there, a --dir that is a file.
     */
    static ReleaseArchive of(String version, String platform, String baseUrl, Path publicKeyFile, Path archive, Path signature,
            Path dir, Out out) {
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
        String keyName = publicKeyFile == null ? "Google's ASM release key (as printed in the guide)" : "the key in " + publicKeyFile;
        return new ReleaseArchive(version, p, dir, url, key, keyName, archive, signature, out);
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

    /** Removes what interrupted runs left in --dir (part files, staging folders); never the operator's own --signature. */
    void removeLeftovers() throws IOException {
        for (Path left : Release.leftovers(dir)) {
            if (signature != null && Files.isSameFile(left, signature)) continue;
            if (!out.dryRun()) Release.deleteTree(left);
            out.change((out.dryRun() ? "remove " : "removed ") + left + ", left by an interrupted run");
        }
    }

    /** Whether the release is extracted already; a folder of that name without istioctl or the profiles is refused. */
    boolean extracted() {
        if (!Files.exists(releaseDir)) return false;
        if (!Release.complete(releaseDir))
            throw Fail.failed(releaseDir + " exists but holds no bin/istioctl or manifests/profiles", "move it away and run fetch-release again");
        out.say("%s is already extracted", releaseDir);
        return true;
    }

    /** What a run would do (--dry-run). */
    void plan() {
        if (url != null) out.change("download " + url + " and its .1.sig into " + dir);
        out.change("verify the signature and extract " + Release.topDir(version) + "/ into " + dir);
    }

    /** Downloads the archive and its .1.sig into --dir unless both are there (or they are the operator's files). */
    void fetch(HttpClient http) throws IOException {
        Files.createDirectories(dir);
        if (url != null) {
            archive = dir.resolve(Release.archiveName(version, platform));
            signature = dir.resolve(Release.signatureName(archive.getFileName().toString()));
            if (Files.isRegularFile(archive) && Files.isRegularFile(signature)) {
                out.say("%s and its .1.sig are already downloaded", archive);
            } else {
                // a failed or interrupted run leaves neither (a signature alone is not kept either)
                String name = archive.getFileName().toString();
                Release.downloadWithSignature(http, url, archive, (done, total) -> out.progress("downloading " + name, Release.progressBar(done, total)));
                out.endProgress();
                out.change("downloaded " + url + " and its .1.sig");
            }
            out.put("url", url.toString());
        }
        out.put("archive", archive.toString()).put("signature", signature.toString());
    }

    /** Refuses an archive the key did not sign; a downloaded one is deleted with its signature, the operator's own are left. */
    void verify() throws IOException {
        if (!Release.verifies(archive, Files.readAllBytes(signature), key)) {
            out.put("verified", false);
            String removed = "";
            if (url != null) {
                Files.deleteIfExists(archive);
                Files.deleteIfExists(signature);
                removed = " (deleted " + archive.getFileName() + " and " + signature.getFileName() + ")";
            }
            throw Fail.failed("signature does NOT verify: " + archive.getFileName() + " is not signed by " + keyName + removed,
                    url == null ? "do not use this archive: get the archive and its .1.sig again from Google"
                            : "the download is damaged or was tampered with: run fetch-release again, or check the mirror (--base-url)");
        }
        out.put("verified", true);
        out.say("Verified OK: %s is signed by %s", archive.getFileName(), keyName);
    }

    /** Extracts the verified archive into istio-VERSION/, all or nothing. */
    void extract() {
        try {
            Release.extract(archive, platform.zip(), dir, Release.topDir(version));
        } catch (Release.Refused e) {
            throw Fail.failed("refusing to extract " + archive.getFileName() + ": " + e.getMessage(),
                    "nothing was extracted; this is not a release archive as Google publishes it", e);
        } catch (IOException e) {
            throw Fail.failed("cannot extract " + archive.getFileName() + ": " + Kube.rootMessage(e),
                    "nothing was extracted; check free space and permissions in " + dir, e);
        }
        out.change("extracted " + archive.getFileName() + " into " + releaseDir);
    }

    /** Where istioctl and the profiles are, and what comes next. */
    void report() {
        Path istioctl = Release.istioctl(releaseDir);
        if (istioctl == null) {
            out.warn(releaseDir + " holds no bin/istioctl: install-asm will need --istioctl");
        } else {
            out.put("istioctl", istioctl.toAbsolutePath().toString());
            out.say("istioctl: %s", istioctl);
        }
        out.put("profiles", Release.profiles(releaseDir).toAbsolutePath().toString());
        out.say("profiles: %s", Release.profiles(releaseDir));
        out.say("Next: cd %s, then control-plane-prep, istiod-service and install-asm", releaseDir);
    }
}
