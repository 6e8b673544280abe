package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * fetch-release as an operator runs it (own JVM), against a local HTTP server (the JDK's)
 * serving a release made with the system tar and signed with a key made here.
 */
class FetchReleaseTest {
    static final String TOP = ReleaseTest.TOP;
    static final String NAME = Release.archiveName(Release.DEFAULT_VERSION, Release.Platform.LINUX_AMD64);

    @TempDir Path tmp;
    ReleaseMirror mirror;
    Map<String, byte[]> files;
    KeyPair key;
    Path pub, dir, archive;

    @BeforeEach
    void serve() throws Exception {
        mirror = new ReleaseMirror();
        files = mirror.files;
        key = ReleaseTest.p256();
        pub = ReleaseTest.pubPem(key, tmp.resolve("test-release-key.pem"));
        Path src = Files.createDirectories(tmp.resolve("src"));
        ReleaseTest.releaseTree(src, true);
        archive = tmp.resolve("built.tar.gz");
        Cli.Result tar = Cli.run(List.of("tar", "-C", src.toString(), "-czf", archive.toString(), TOP), Map.of(), tmp, null);
        assertThat(tar.exit()).as(tar.toString()).isZero();
        publish(NAME, Files.readAllBytes(archive), ReleaseTest.sign(key.getPrivate(), archive));
        dir = tmp.resolve("work");
    }

    @AfterEach
    void stop() {
        mirror.close();
    }

    void publish(String name, byte[] content, byte[] signature) {
        mirror.publish(name, content, signature);
    }

    String baseUrl() {
        return mirror.baseUrl();
    }

    Cli.Result fetch(String... extra) {
        List<String> args = new java.util.ArrayList<>(List.of("fetch-release", "--base-url", baseUrl(), "--dir", dir.toString(),
                "--platform", "linux-amd64"));
        args.addAll(List.of(extra));
        return Cli.asm(Map.of(), tmp, args.toArray(String[]::new));
    }

    List<String> left() throws IOException {
        if (!Files.exists(dir)) return List.of();
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void downloadsVerifiesAndExtractsThenIsAlreadyDone() throws Exception {
        Cli.Result r = fetch("--public-key", pub.toString());

        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("Verified OK: " + NAME + " is signed by the key in " + pub)
                .contains("istioctl: " + dir.resolve(TOP + "/bin/istioctl"))
                .contains("profiles: " + dir.resolve(TOP + "/manifests/profiles"));
        assertThat(r.stderr()).as("the download, one line off a terminal (the bar: below)").contains("downloading " + NAME + "\n");
        assertThat(left()).containsExactly(TOP, NAME, NAME + ".1.sig");
        assertThat(Files.isExecutable(dir.resolve(TOP + "/bin/istioctl"))).isTrue();
        assertThat(dir.resolve(NAME)).hasSameBinaryContentAs(archive);
        // what was downloaded verifies with the guide's own command as well
        Cli.Result openssl = Cli.run(List.of("openssl", "dgst", "-sha256", "-verify", pub.toString(), "-signature",
                dir.resolve(NAME + ".1.sig").toString(), dir.resolve(NAME).toString()), Map.of(), tmp, null);
        assertThat(openssl.stdout()).contains("Verified OK");

        int before = mirror.requests.get();
        Cli.Result again = fetch("--public-key", pub.toString());
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("already extracted").contains("istioctl: ");
        assertThat(mirror.requests.get()).as("no download the second time").isEqualTo(before);
    }

    @Test
    void aTamperedArchiveIsDeletedAndFails() throws Exception {
        byte[] bytes = Files.readAllBytes(archive);
        bytes[bytes.length / 3] ^= 0x20;
        files.put(NAME, bytes);
        assertRefusedSignature(fetch("--public-key", pub.toString()));
    }

    @Test
    void aSignatureOfOtherBytesFails() throws Exception {
        Path other = Files.writeString(tmp.resolve("other"), "other bytes");
        files.put(NAME + ".1.sig", ReleaseTest.sign(key.getPrivate(), other));
        assertRefusedSignature(fetch("--public-key", pub.toString()));
    }

    @Test
    void aSignatureByAnotherKeyFails() throws Exception {
        files.put(NAME + ".1.sig", ReleaseTest.sign(ReleaseTest.p256().getPrivate(), archive));
        assertRefusedSignature(fetch("--public-key", pub.toString()));
    }

    @Test
    void theBuiltInKeyRefusesAnArchiveGoogleDidNotSign() throws Exception {
        Cli.Result r = fetch();
        assertRefusedSignature(r);
        assertThat(r.stderr()).contains("Google's ASM release key");
    }

    void assertRefusedSignature(Cli.Result r) throws IOException {
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("signature does NOT verify").contains("deleted " + NAME + " and " + NAME + ".1.sig");
        assertThat(left()).as("nothing kept").isEmpty();
    }

    @Test
    void aTruncatedDownloadFailsAndLeavesNothing() throws Exception {
        mirror.cutShort.add(NAME);
        Cli.Result r = fetch("--public-key", pub.toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("error: download of " + NAME + " was cut short: got ").contains(" of " + files.get(NAME).length + " bytes");
        assertThat(r.stderr()).doesNotContain("Exception\n\tat ");
        assertThat(left()).isEmpty();
    }

    @Test
    void aMissingReleaseIs404AndLeavesNothing() throws Exception {
        Cli.Result r = fetch("--public-key", pub.toString(), "--asm-version", "1.9.9-asm.1");
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("HTTP 404 Not Found").contains("istio-1.9.9-asm.1-linux-amd64.tar.gz.1.sig")
                .contains("check --asm-version and --platform");
        assertThat(left()).isEmpty();

        files.remove(NAME);   // signature there, archive not
        Cli.Result r2 = fetch("--public-key", pub.toString());
        assertThat(r2.exit()).as(r2.toString()).isEqualTo(1);
        assertThat(r2.stderr()).contains("HTTP 404");
        assertThat(left()).as("the signature fetched first is removed too").isEmpty();
    }

    @Test
    void offlineArchiveAndSignatureForAirGappedSites() throws Exception {
        Path sig = Files.write(tmp.resolve("given.sig"), files.get(NAME + ".1.sig"));
        Cli.Result r = Cli.asm(Map.of(), tmp, "fetch-release", "--archive", archive.toString(), "--signature", sig.toString(),
                "--public-key", pub.toString(), "--dir", dir.toString(), "--platform", "linux-amd64");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(mirror.requests.get()).isZero();
        assertThat(left()).containsExactly(TOP);

        Path dir2 = tmp.resolve("work2");
        Path otherSig = Files.write(tmp.resolve("bad.sig"), ReleaseTest.sign(ReleaseTest.p256().getPrivate(), archive));
        Cli.Result bad = Cli.asm(Map.of(), tmp, "fetch-release", "--archive", archive.toString(), "--signature", otherSig.toString(),
                "--public-key", pub.toString(), "--dir", dir2.toString());
        assertThat(bad.exit()).as(bad.toString()).isEqualTo(1);
        assertThat(bad.stderr()).contains("signature does NOT verify").doesNotContain("deleted");
        assertThat(archive).exists();   // the operator's own files stay
        assertThat(otherSig).exists();
        assertThat(dir2.resolve(TOP)).doesNotExist();
    }

    @Test
    void aSignedButHostileArchiveIsNotExtracted() throws Exception {
        Path evil = ReleaseTest.hostile(tmp, "symlink-out", tmp.resolve("abs"));
        publish(NAME, Files.readAllBytes(evil), ReleaseTest.sign(key.getPrivate(), evil));
        Cli.Result r = fetch("--public-key", pub.toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("refusing to extract " + NAME).contains("points outside " + TOP + "/")
                .contains("nothing was extracted");
        assertThat(left()).doesNotContain(TOP).noneMatch(n -> n.contains("partial"));
    }

    @Test
    void windowsZipAndJsonResult() throws Exception {
        Path src = tmp.resolve("src");
        Files.move(src.resolve(TOP + "/bin/istioctl"), src.resolve(TOP + "/bin/istioctl.exe"));
        Files.delete(src.resolve(TOP + "/samples/profile-link.yaml"));
        Path zip = tmp.resolve("win.zip");
        assertThat(Cli.run(List.of("zip", "-qr", zip.toString(), TOP), Map.of(), src, null).exit()).isZero();
        String name = Release.archiveName(Release.DEFAULT_VERSION, Release.Platform.WIN);
        publish(name, Files.readAllBytes(zip), ReleaseTest.sign(key.getPrivate(), zip));

        Cli.Result r = Cli.asm(Map.of(), tmp, "fetch-release", "--base-url", baseUrl(), "--dir", dir.toString(),
                "--platform", "win", "--public-key", pub.toString(), "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        JsonNode json = JsonMapper.builder().build().readTree(r.stdout());
        assertThat(json.path("ok").asBoolean()).isTrue();
        assertThat(json.path("verified").asBoolean()).isTrue();
        assertThat(json.path("platform").asString()).isEqualTo("win");
        assertThat(json.path("url").asString()).isEqualTo(baseUrl() + name);
        assertThat(json.path("istioctl").asString()).isEqualTo(dir.resolve(TOP + "/bin/istioctl.exe").toString());
        assertThat(r.stderr()).doesNotContain("%");   // no progress bar under --json
    }

    @Test
    void proxyVariablesAreHonouredAsCurlDoes() throws Exception {
        // a mirror only reachable through the proxy (our server answers proxied requests by path)
        String proxy = mirror.address();
        Cli.Result r = Cli.asm(Map.of("HTTP_PROXY", proxy, "NO_PROXY", "internal.example"), tmp, "fetch-release",
                "--base-url", "http://mirror.invalid/asm/", "--dir", dir.toString(), "--platform", "linux-amd64",
                "--public-key", pub.toString());
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(mirror.requests.get()).isEqualTo(2);
        // NO_PROXY names the host: direct, and so unreachable
        Cli.Result direct = Cli.asm(Map.of("http_proxy", proxy, "no_proxy", ".invalid"), tmp, "fetch-release",
                "--base-url", "http://mirror.invalid/asm/", "--dir", tmp.resolve("w2").toString(), "--public-key", pub.toString());
        assertThat(direct.exit()).as(direct.toString()).isEqualTo(1);
        assertThat(direct.stderr()).contains("cannot reach mirror.invalid").contains("host not found");
        // loopback never goes through a proxy
        Cli.Result local = Cli.asm(Map.of("HTTP_PROXY", "http://127.0.0.1:1"), tmp, "fetch-release", "--base-url", baseUrl(),
                "--dir", tmp.resolve("w3").toString(), "--platform", "linux-amd64", "--public-key", pub.toString());
        assertThat(local.exit()).as(local.toString()).isZero();
    }

    @Test
    void dryRunFetchesNothing() throws Exception {
        Cli.Result r = fetch("--public-key", pub.toString(), "--dry-run");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("would download " + baseUrl() + NAME).contains("would verify");
        assertThat(mirror.requests.get()).isZero();
        assertThat(left()).isEmpty();
    }

    @Test
    void badUsageIsExit2() throws Exception {
        assertThat(fetch("--archive", archive.toString()).stderr()).contains("--archive and --signature go together");
        for (String[] args : new String[][] {{"--asm-version", "1.9.8"}, {"--platform", "linux-arm64"}, {"--archive", archive.toString()},
                {"--public-key", archive.toString()}, {"--base-url", "ftp://mirror/"}}) {
            Cli.Result r = Cli.asm(Map.of(), tmp, Stream.concat(Stream.of("fetch-release", "--dir", dir.toString()), Stream.of(args))
                    .toArray(String[]::new));
            assertThat(r.exit()).as(String.join(" ", args) + "\n" + r).isEqualTo(2);
            assertThat(r.stderr()).startsWith("error: ");
        }
        assertThat(mirror.requests.get()).isZero();
        Cli.Result help = Cli.asm(Map.of(), tmp, "fetch-release", "--help");
        assertThat(help.exit()).isZero();
        assertThat(help.stdout()).contains("--asm-version=VERSION").contains("1.9.8-asm.6").contains("--public-key");
        assertThat(new String(Files.readAllBytes(pub), StandardCharsets.US_ASCII)).startsWith("-----BEGIN PUBLIC KEY-----");
    }

    /**
     * The download bar rewrites its line (\r, ESC[K) only when stderr is a terminal; piped, or with
     * TERM=dumb, the download is one plain line, as a log or CI wants it.
     */
    @Test
    void theDownloadBarRewritesItsLineOnlyOnATerminal() throws Exception {
        String[] args = {"fetch-release", "--base-url", baseUrl(), "--dir", dir.toString(), "--platform", "linux-amd64",
                "--public-key", pub.toString()};
        Cli.Result piped = Cli.asm(Map.of("TERM", "xterm"), tmp, args);     // TERM would allow it: the pipe does not
        assertThat(piped.exit()).as(piped.toString()).isZero();
        assertThat(piped.stderr()).doesNotContain("\r").doesNotContain("\u001b");
        assertThat(piped.stderr().lines().filter(l -> l.startsWith("downloading ")).toList()).containsExactly("downloading " + NAME);

        for (String term : List.of("xterm", "dumb")) {
            Release.deleteTree(dir);
            // script(1) gives the step a pseudo-terminal for stdin, stdout and stderr, and copies it to its own stdout
            Cli.Result tty = Cli.run(List.of("script", "-qec", String.join(" ", Cli.asmCommand(args)), "/dev/null"),
                    Map.of("TERM", term), tmp, null);
            assertThat(tty.exit()).as(tty.toString()).isZero();
            assertThat(tty.stdout()).contains("Verified OK");
            if (term.equals("xterm"))
                assertThat(tty.stdout()).as(tty.toString()).contains("\rdownloading " + NAME + " [").contains("100%").contains("\u001b[K");
            else
                assertThat(tty.stdout()).as(tty.toString()).doesNotContain("\u001b").doesNotContain(NAME + " [")
                        .contains("downloading " + NAME + "\r\n");    // the terminal's own CR LF
        }
    }

    // ------------------------------------------------------------------ Ctrl-C, SIGTERM and killed runs

    Cli.Running startFetch(String... extra) {
        List<String> args = new java.util.ArrayList<>(List.of("fetch-release", "--base-url", baseUrl(), "--dir", dir.toString(),
                "--platform", "linux-amd64", "--public-key", pub.toString()));
        args.addAll(List.of(extra));
        return Cli.start(Map.of(), tmp, tmp.resolve("outputs"), args.toArray(String[]::new));
    }

    /** The archive's part file of that process, once it holds the half the mirror sends before it stalls. */
    void awaitHalfDownloaded(Cli.Running run) {
        Path part = dir.resolve(NAME + "." + run.pid() + ".part");
        Cli.waitFor("half of " + part, () -> {
            try {
                return Files.size(part) >= files.get(NAME).length / 2;
            } catch (IOException notYet) {
                return false;
            }
        });
    }

    /** The last lines of stderr (the progress bar rewrites one line with \r before them). */
    static List<String> lastLines(String stderr, int n) {
        List<String> lines = List.of(stderr.split("\n"));
        return lines.subList(Math.max(0, lines.size() - n), lines.size());
    }

    @Test
    void ctrlCOrSigtermDuringTheDownloadExits130AndLeavesNothingThenTheNextRunCompletes() throws Exception {
        for (String signal : List.of("INT", "TERM")) {
            mirror.stallOnce.add(NAME);
            Cli.Running run = startFetch();
            awaitHalfDownloaded(run);
            run.signal(signal);
            Cli.Result r = run.await();

            assertThat(r.exit()).as(signal + "\n" + r).isEqualTo(130);
            assertThat(lastLines(r.stderr(), 2)).as(r.toString()).containsExactly(
                    "error: interrupted by SIG" + signal + "; nothing was changed; removed its temporary files "
                            + NAME + "." + run.pid() + ".part, " + NAME + ".1.sig." + run.pid() + ".part",
                    "  -> run fetch-release again: it goes on from what is done");
            assertThat(r.stderr()).doesNotContain("\tat ");
            assertThat(left()).as("no part file, no signature alone").isEmpty();
        }
        Cli.Result next = fetch("--public-key", pub.toString());
        assertThat(next.exit()).as(next.toString()).isZero();
        assertThat(next.stdout()).doesNotContain("left by an interrupted run");
        assertThat(left()).containsExactly(TOP, NAME, NAME + ".1.sig");
        assertThat(Release.complete(dir.resolve(TOP))).isTrue();
    }

    @Test
    void underJsonAnInterruptedRunIsOneResultWithItsState() throws Exception {
        mirror.stallOnce.add(NAME);
        Cli.Running run = startFetch("--json");
        awaitHalfDownloaded(run);
        run.signal("TERM");
        Cli.Result r = run.await();
        assertThat(r.exit()).as(r.toString()).isEqualTo(130);
        JsonNode json = JsonMapper.builder().build().readTree(r.stdout());
        assertThat(json.path("ok").asBoolean(true)).isFalse();
        assertThat(json.path("exitCode").asInt()).isEqualTo(130);
        assertThat(json.path("interrupted").asString()).isEqualTo("SIGTERM");
        assertThat(json.path("state").asString()).startsWith("nothing was changed; removed its temporary files " + NAME + "." + run.pid() + ".part");
        assertThat(json.path("error").asString()).startsWith("interrupted by SIGTERM; nothing was changed");
        assertThat(left()).isEmpty();
    }

    /** A release that takes a while to extract: 256 MiB of zeros beside the small tree (a few hundred KiB compressed). */
    void publishLargeRelease() throws Exception {
        Path src = tmp.resolve("src");
        try (var big = java.nio.channels.FileChannel.open(src.resolve(TOP + "/big.bin"), java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            big.truncate(0).position(256L << 20).write(java.nio.ByteBuffer.wrap(new byte[] {0}));     // sparse: no disk
        }
        Path large = tmp.resolve("large.tar.gz");
        Cli.Result tar = Cli.run(List.of("sh", "-c", "tar -C " + src + " -cf - " + TOP + " | gzip -1 > " + large), Map.of(), tmp, null);
        assertThat(tar.exit()).as(tar.toString()).isZero();
        publish(NAME, Files.readAllBytes(large), ReleaseTest.sign(key.getPrivate(), large));
    }

    List<String> partialFolders() throws IOException {
        return left().stream().filter(n -> n.startsWith("." + TOP + ".partial-")).toList();
    }

    @Test
    void ctrlCDuringExtractionRemovesThePartialFolderAndKeepsTheVerifiedDownload() throws Exception {
        publishLargeRelease();
        // killed outright mid-extraction: its partial folder (named with its pid) stays behind
        Cli.Running killed = startFetch();
        Cli.waitFor("a partial folder", () -> {
            try {
                return !partialFolders().isEmpty();
            } catch (IOException e) {
                return false;
            }
        });
        killed.signal("KILL");
        assertThat(killed.await().exit()).isEqualTo(137);
        List<String> leftBehind = partialFolders();
        assertThat(leftBehind).hasSize(1);
        assertThat(leftBehind.get(0)).startsWith("." + TOP + ".partial-" + killed.pid() + "-");

        // the next run removes it first; Ctrl-C during its own extraction removes its own folder
        Cli.Running interrupted = startFetch();
        Cli.waitFor("its own partial folder", () -> {
            try {
                return partialFolders().stream().anyMatch(n -> n.contains(".partial-" + interrupted.pid() + "-"));
            } catch (IOException e) {
                return false;
            }
        });
        interrupted.signal("INT");
        Cli.Result r = interrupted.await();
        assertThat(r.exit()).as(r.toString()).isEqualTo(130);
        assertThat(r.stdout()).contains("removed " + dir.resolve(leftBehind.get(0)) + ", left by an interrupted run")
                .contains(NAME + " and its .1.sig are already downloaded").contains("Verified OK");
        assertThat(lastLines(r.stderr(), 2).get(0)).startsWith("error: interrupted by SIGINT; done before it stopped: removed "
                + dir.resolve(leftBehind.get(0)) + ", left by an interrupted run; removed its temporary files ." + TOP + ".partial-" + interrupted.pid() + "-");
        assertThat(left()).as("the verified download stays; nothing half-extracted").containsExactly(NAME, NAME + ".1.sig");

        Cli.Result next = fetch("--public-key", pub.toString());
        assertThat(next.exit()).as(next.toString()).isZero();
        assertThat(next.stdout()).contains("already downloaded").contains("extracted " + NAME);
        assertThat(left()).containsExactly(TOP, NAME, NAME + ".1.sig");
        assertThat(Files.size(dir.resolve(TOP + "/big.bin"))).isEqualTo((256L << 20) + 1);
    }

    @Test
    void whatKilledRunsLeftIsRemovedByTheNextRunButNotWhatALiveOneWrites() throws Exception {
        mirror.stallOnce.add(NAME);
        Cli.Running killed = startFetch();
        awaitHalfDownloaded(killed);
        killed.signal("KILL");
        assertThat(killed.await().exit()).isEqualTo(137);
        // and what older versions left, without a pid in the name, and a signature alone
        Files.createDirectories(dir.resolve("." + TOP + ".partial-8234672364/" + TOP + "/bin"));
        Files.writeString(dir.resolve("." + TOP + ".partial-8234672364/" + TOP + "/bin/istioctl"), "half");
        Files.writeString(dir.resolve(NAME + ".part"), "half");
        String osx = Release.archiveName(Release.DEFAULT_VERSION, Release.Platform.OSX);
        Files.writeString(dir.resolve(osx + ".1.sig"), "a signature without its archive");
        // a live process's download (this JVM's pid), and files that are not the toolkit's
        long me = ProcessHandle.current().pid();
        Files.writeString(dir.resolve(osx + "." + me + ".part"), "being written");
        Files.writeString(dir.resolve("notes.part"), "mine");
        List<String> stale = List.of("." + TOP + ".partial-8234672364", NAME + "." + killed.pid() + ".part", NAME + ".1.sig." + killed.pid() + ".part",
                NAME + ".part", osx + ".1.sig");
        assertThat(left()).containsAll(stale);

        Cli.Result dry = fetch("--public-key", pub.toString(), "--dry-run");
        assertThat(dry.exit()).as(dry.toString()).isZero();
        for (String name : stale) assertThat(dry.stdout()).contains("would remove " + dir.resolve(name) + ", left by an interrupted run");
        assertThat(left()).as("a dry run removes nothing").containsAll(stale);

        Cli.Result next = fetch("--public-key", pub.toString());
        assertThat(next.exit()).as(next.toString()).isZero();
        for (String name : stale) assertThat(next.stdout()).contains("removed " + dir.resolve(name) + ", left by an interrupted run");
        assertThat(left()).containsExactlyInAnyOrder(TOP, NAME, NAME + ".1.sig", osx + "." + me + ".part", "notes.part");
    }
}
