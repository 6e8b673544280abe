package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
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
    HttpServer server;
    final Map<String, byte[]> files = new ConcurrentHashMap<>();
    /** Paths whose response stops half-way through the announced length. */
    final Map<String, Boolean> cutShort = new ConcurrentHashMap<>();
    final AtomicInteger requests = new AtomicInteger();
    KeyPair key;
    Path pub, dir, archive;

    @BeforeEach
    void serve() throws Exception {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/asm/", ex -> {
            requests.incrementAndGet();
            String name = ex.getRequestURI().getPath().substring("/asm/".length());
            byte[] body = files.get(name);
            try (ex) {
                if (body == null) {
                    ex.sendResponseHeaders(404, -1);
                    return;
                }
                ex.sendResponseHeaders(200, body.length);
                OutputStream o = ex.getResponseBody();
                // cut short: closing the exchange with bytes still owed drops the connection
                o.write(body, 0, cutShort.containsKey(name) ? body.length / 2 : body.length);
            } catch (IOException expected) {
                // the client sees the connection end early
            }
        });
        server.start();
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
        server.stop(0);
    }

    void publish(String name, byte[] content, byte[] signature) {
        files.put(name, content);
        files.put(name + ".1.sig", signature);
    }

    String baseUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/asm/";
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
        assertThat(r.stderr()).as("progress bar").contains("100%").contains(NAME);
        assertThat(left()).containsExactly(TOP, NAME, NAME + ".1.sig");
        assertThat(Files.isExecutable(dir.resolve(TOP + "/bin/istioctl"))).isTrue();
        assertThat(dir.resolve(NAME)).hasSameBinaryContentAs(archive);
        // what was downloaded verifies with the guide's own command as well
        Cli.Result openssl = Cli.run(List.of("openssl", "dgst", "-sha256", "-verify", pub.toString(), "-signature",
                dir.resolve(NAME + ".1.sig").toString(), dir.resolve(NAME).toString()), Map.of(), tmp, null);
        assertThat(openssl.stdout()).contains("Verified OK");

        int before = requests.get();
        Cli.Result again = fetch("--public-key", pub.toString());
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("already extracted").contains("istioctl: ");
        assertThat(requests.get()).as("no download the second time").isEqualTo(before);
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
        cutShort.put(NAME, true);
        Cli.Result r = fetch("--public-key", pub.toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("error: download of " + NAME + " was cut short: got ").contains(" of " + files.get(NAME).length + " bytes");
        assertThat(r.stderr()).doesNotContain("Exception\n\tat ");
        assertThat(left()).isEmpty();
    }

    @Test
    void aMissingReleaseIs404AndLeavesNothing() throws Exception {
        Cli.Result r = fetch("--public-key", pub.toString(), "--version", "1.9.9-asm.1");
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("HTTP 404 Not Found").contains("istio-1.9.9-asm.1-linux-amd64.tar.gz.1.sig")
                .contains("check --version and --platform");
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
        assertThat(requests.get()).isZero();
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
        String proxy = "http://127.0.0.1:" + server.getAddress().getPort();
        Cli.Result r = Cli.asm(Map.of("HTTP_PROXY", proxy, "NO_PROXY", "internal.example"), tmp, "fetch-release",
                "--base-url", "http://mirror.invalid/asm/", "--dir", dir.toString(), "--platform", "linux-amd64",
                "--public-key", pub.toString());
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(requests.get()).isEqualTo(2);
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
        assertThat(requests.get()).isZero();
        assertThat(left()).isEmpty();
    }

    @Test
    void badUsageIsExit2() throws Exception {
        assertThat(fetch("--archive", archive.toString()).stderr()).contains("--archive and --signature go together");
        for (String[] args : new String[][] {{"--version", "1.9.8"}, {"--platform", "linux-arm64"}, {"--archive", archive.toString()},
                {"--public-key", archive.toString()}, {"--base-url", "ftp://mirror/"}}) {
            Cli.Result r = Cli.asm(Map.of(), tmp, Stream.concat(Stream.of("fetch-release", "--dir", dir.toString()), Stream.of(args))
                    .toArray(String[]::new));
            assertThat(r.exit()).as(String.join(" ", args) + "\n" + r).isEqualTo(2);
            assertThat(r.stderr()).startsWith("error: ");
        }
        assertThat(requests.get()).isZero();
        Cli.Result help = Cli.asm(Map.of(), tmp, "fetch-release", "--help");
        assertThat(help.exit()).isZero();
        assertThat(help.stdout()).contains("--version=VERSION").contains("1.9.8-asm.6").contains("--public-key");
        assertThat(new String(Files.readAllBytes(pub), StandardCharsets.US_ASCII)).startsWith("-----BEGIN PUBLIC KEY-----");
    }
}
