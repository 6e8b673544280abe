package asmhsm;

import java.io.BufferedInputStream;
import java.io.Closeable;
import java.io.EOFException;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Proxy;
import java.net.ProxySelector;
import java.net.SocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.SignatureException;
import java.security.interfaces.ECPublicKey;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarConstants;
import org.apache.commons.compress.archivers.tar.TarUtils;

/**
 * The ASM release archive: where it is published, its download, the check of its
 * signature against Google's release key (as the guide's `openssl dgst -sha256 -verify`),
 * and an extraction that writes nothing outside the release directory and leaves no
 * half-extracted directory behind.
 */
public final class Release {
    private Release() {}

    public static final String DEFAULT_VERSION = "1.9.8-asm.6";
    public static final String DEFAULT_BASE_URL = "https://storage.googleapis.com/gke-release/asm/";

    /** The public key the guide prints for `openssl dgst -verify` (ECDSA P-256). */
    public static final String GUIDE_PUBLIC_KEY = """
            -----BEGIN PUBLIC KEY-----
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWZrGCUaJJr1H8a36sG4UUoXvlXvZ
            wQfk16sxprI2gOJ2vFFggdq3ixF2h4qNBt0kI7ciDhgpwS8t+/960IsIgw==
            -----END PUBLIC KEY-----
            """;

    /** What an extracted release may grow to at most; the real one is a few hundred MB. */
    static final long MAX_EXTRACTED_BYTES = 4L << 30;
    static final int MAX_ENTRIES = 200_000;

    public enum Platform {
        LINUX_AMD64("linux-amd64", ".tar.gz"), OSX("osx", ".tar.gz"), WIN("win", ".zip");

        public final String id;
        public final String suffix;

        Platform(String id, String suffix) {
            this.id = id;
            this.suffix = suffix;
        }

        public static Platform of(String id) {
            for (Platform p : values()) if (p.id.equals(id)) return p;
            throw Fail.badInput("unknown platform '" + id + "'", "use linux-amd64, osx or win (the guide's three archives)");
        }

        /** The platform of this machine; the guide publishes Linux for amd64 only. */
        public static Platform current() {
            String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
            if (os.startsWith("mac") || os.contains("darwin")) return OSX;
            if (os.startsWith("windows")) return WIN;
            return LINUX_AMD64;
        }

        public boolean zip() { return suffix.equals(".zip"); }
    }

    /** The revision a release installs as, by ASM's naming: 1.9.8-asm.6 -> asm-198-6, 1.10.6-asm.2 -> asm-1106-2. */
    public static String revision(String version) {
        String[] v = requireVersion(version).split("-asm\\.");
        return "asm-" + v[0].replace(".", "") + "-" + v[1];
    }

    /** "1.9" matches 1.9, 1.9.8 and 1.9.8-asm.6 (and v1.19.7-gke.2400 for "1.19"), not 1.90. */
    public static boolean matchesPrefix(String version, String prefix) {
        String v = version.startsWith("v") ? version.substring(1) : version;
        return v.equals(prefix) || (v.startsWith(prefix) && v.length() > prefix.length() && ".-+".indexOf(v.charAt(prefix.length())) >= 0);
    }

    /** An upgrade the toolkit supports: from a release matching one prefix to a later one matching the other. */
    public record Upgrade(String from, String to) {
        @Override public String toString() { return from + " -> " + to; }
    }

    /**
     * Why a canary upgrade from one release to another is not supported, or null when one of `supported`
     * allows it: the target must be a later release, and ASM upgrades one minor version at a time.
     */
    public static String upgradeProblem(String from, String to, List<Upgrade> supported) {
        requireVersion(from);
        requireVersion(to);
        if (compare(to, from) <= 0) return to + " is not later than " + from + " (a canary upgrade goes forward only)";
        for (Upgrade u : supported) if (matchesPrefix(from, u.from()) && matchesPrefix(to, u.to())) return null;
        return "no supported upgrade leads from " + from + " to " + to;
    }

    /**
     * A versions file (lib/supported-versions.txt, or the operator's --versions-file): the Kubernetes
     * version prefixes ASM may be installed on, and the "upgrade FROM TO" lines. `kubernetes` is null
     * when this build lacks the toolkit's own file and none was given.
     */
    public record Supported(List<String> kubernetes, List<Upgrade> upgrades) {
        private static final java.util.regex.Pattern UPGRADE_LINE =
                java.util.regex.Pattern.compile("upgrade\\s+(\\d+\\.\\d+(?:\\.\\d+)?(?:-asm\\.\\d+)?)\\s+(\\d+\\.\\d+(?:\\.\\d+)?(?:-asm\\.\\d+)?)");

        /** The file given (--versions-file / ASM_SUPPORTED_VERSIONS), else the toolkit's own (JBang ships it with //FILES). */
        public static Supported read(Path file) {
            String text;
            if (file != null) {
                text = Env.readText(file, "versions file", "text", "check --versions-file / ASM_SUPPORTED_VERSIONS");
            } else {
                try (InputStream in = Release.class.getResourceAsStream("/supported-versions.txt")) {
                    if (in == null) return new Supported(null, List.of());
                    text = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
                } catch (IOException e) {
                    return new Supported(null, List.of());
                }
            }
            List<String> versions = new ArrayList<>();
            List<Upgrade> upgrades = new ArrayList<>();
            String[] lines = text.split("\n");
            for (int i = 0; i < lines.length; i++) {
                String s = lines[i].replaceFirst("#.*", "").strip();
                if (s.isEmpty()) continue;
                java.util.regex.Matcher u = UPGRADE_LINE.matcher(s);
                if (u.matches()) {
                    upgrades.add(new Upgrade(u.group(1), u.group(2)));
                    continue;
                }
                if (s.startsWith("v")) s = s.substring(1);
                if (!s.matches("\\d+\\.\\d+(\\.\\d+)?([-+][0-9A-Za-z.-]+)?"))
                    // the line is not quoted: the file may be a secret given by mistake
                    throw Fail.badInput("line " + (i + 1) + " of versions file " + (file == null ? "(built in)" : file)
                                    + " is not a version prefix (" + text.getBytes(java.nio.charset.StandardCharsets.UTF_8).length + " bytes)",
                            "write one version a line, e.g. 1.19 or 1.20.5");
                versions.add(s);
            }
            if (versions.isEmpty())
                throw Fail.badInput("versions file " + file + " lists no version", "write one version a line, e.g. 1.19");
            return new Supported(versions, upgrades);
        }

        /** "1.19" matches v1.19, v1.19.7 and v1.19.7-gke.2400, but not v1.190. */
        public boolean kubernetesSupported(String gitVersion) {
            for (String s : kubernetes) if (matchesPrefix(gitVersion, s)) return true;
            return false;
        }
    }

    /** Release versions in order: 1.9.8-asm.6 < 1.9.8-asm.10 < 1.10.6-asm.2. */
    static int compare(String a, String b) {
        String[] x = a.split("[.-]"), y = b.split("[.-]");
        for (int i = 0; i < Math.min(x.length, y.length); i++) {
            int c = x[i].matches("\\d+") && y[i].matches("\\d+") ? Long.compare(Long.parseLong(x[i]), Long.parseLong(y[i])) : x[i].compareTo(y[i]);
            if (c != 0) return c;
        }
        return Integer.compare(x.length, y.length);
    }

    /** A release version as Google names them, e.g. 1.9.8-asm.6; it becomes a file and directory name. */
    public static String requireVersion(String version) {
        if (version == null || !version.matches("\\d+\\.\\d+\\.\\d+-asm\\.\\d+"))
            throw Fail.badInput("version '" + version + "' is not an ASM release version",
                    "use the form 1.9.8-asm.6 (the guide's version)");
        return version;
    }

    public static String archiveName(String version, Platform p) { return "istio-" + version + "-" + p.id + p.suffix; }

    public static String signatureName(String archiveName) { return archiveName + ".1.sig"; }

    /** The directory the archive holds: istio-1.9.8-asm.6. */
    public static String topDir(String version) { return "istio-" + version; }

    /** istioctl inside an extracted release, or null when it is not there. */
    public static Path istioctl(Path releaseDir) {
        for (String name : List.of("istioctl", "istioctl.exe")) {
            Path p = releaseDir.resolve("bin").resolve(name);
            if (Files.isRegularFile(p)) return p;
        }
        return null;
    }

    public static Path profiles(Path releaseDir) { return releaseDir.resolve("manifests").resolve("profiles"); }

    /** An extracted release the guide's next steps can use: istioctl and the profiles are there. */
    public static boolean complete(Path releaseDir) {
        return istioctl(releaseDir) != null && Files.isDirectory(profiles(releaseDir));
    }

    // ------------------------------------------------------------------ signature

    public static PublicKey guideKey() {
        return publicKey(Pki.pemBlocks(GUIDE_PUBLIC_KEY, "the built-in release key"), "the built-in release key");
    }

    /** An ECDSA public key from a PEM file (-----BEGIN PUBLIC KEY-----), as `openssl dgst -verify` takes it. */
    public static PublicKey readPublicKey(Path file) {
        if (!Files.isRegularFile(file))
            throw Fail.badInput("public key file " + file + " does not exist", "check --public-key");
        return publicKey(Pki.pemBlocks(file, "public key file"), "public key file " + file);
    }

    static PublicKey publicKey(List<Pki.PemBlock> blocks, String what) {
        if (blocks.size() != 1 || !blocks.get(0).getType().equals("PUBLIC KEY"))
            throw Fail.badInput(what + " is not one PEM public key", "give a file with one -----BEGIN PUBLIC KEY----- block");
        PublicKey key;
        try {
            key = KeyFactory.getInstance("EC").generatePublic(new X509EncodedKeySpec(blocks.get(0).getContent()));
        } catch (GeneralSecurityException e) {
            throw Fail.badInput(what + " is not an EC public key: " + e.getMessage(), "the release is signed with ECDSA P-256");
        }
        if (((ECPublicKey) key).getParams().getCurve().getField().getFieldSize() != 256)
            throw Fail.badInput(what + " is not a P-256 key", "the release is signed with ECDSA P-256 / SHA-256");
        return key;
    }

    /**
     * True when `signature` (DER ECDSA, as `openssl dgst -sign` writes it) signs the
     * SHA-256 of the file with `key`. A malformed signature does not verify.
     */
    public static boolean verifies(Path file, byte[] signature, PublicKey key) throws IOException {
        try {
            Signature s = Signature.getInstance("SHA256withECDSA");
            s.initVerify(key);
            try (InputStream in = Files.newInputStream(file)) {
                byte[] buf = new byte[1 << 16];
                for (int n; (n = in.read(buf)) > 0; ) s.update(buf, 0, n);
            }
            return s.verify(signature);
        } catch (SignatureException e) {
            return false;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("SHA256withECDSA is not available: " + e.getMessage(), e);
        }
    }

    // ------------------------------------------------------------------ download

    /** Called as bytes arrive; total is -1 when the server does not say. */
    public interface Progress {
        void update(long done, long total);
    }

    /** An HTTP client that follows redirects (as `curl -L`) and the proxy variables curl honours. */
    public static HttpClient httpClient() {
        return HttpClient.newBuilder()
                .followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(Duration.ofSeconds(30))
                .proxy(new EnvProxy())
                .build();
    }

    /** Where this process downloads `target` to: a name with its pid, so that a later run can tell it from a live one's. */
    static Path partFile(Path target) {
        return target.resolveSibling(target.getFileName() + "." + ProcessHandle.current().pid() + ".part");
    }

    /**
     * Downloads the archive and, first (it is small: a wrong version fails before the big download),
     * its .1.sig beside it. Both or neither: each goes to its part file (`NAME.PID.part`, see
     * {@link #leftovers}), and both are renamed into place only once every byte the server announced
     * has arrived; the part files are removed on any failure and when the step is interrupted.
     */
    public static void downloadWithSignature(HttpClient http, URI archiveUrl, Path archive, Progress progress) {
        Path signature = archive.resolveSibling(signatureName(archive.getFileName().toString()));
        Path sigPart = partFile(signature), part = partFile(archive);
        try (Interrupt.Undo removeSig = Interrupt.undo(sigPart.getFileName().toString(), () -> Files.deleteIfExists(sigPart));
             Interrupt.Undo removePart = Interrupt.undo(part.getFileName().toString(), () -> Files.deleteIfExists(part))) {
            fetch(http, URI.create(archiveUrl + ".1.sig"), signature.getFileName().toString(), sigPart, null);
            fetch(http, archiveUrl, archive.getFileName().toString(), part, progress);
            try (Interrupt.Unit both = Interrupt.unit()) {
                moveIntoPlace(part, archive);
                moveIntoPlace(sigPart, signature);
            }
        }
    }

    private static void moveIntoPlace(Path part, Path target) {
        try {
            Files.move(part, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw Fail.failed("cannot rename " + part + " to " + target.getFileName() + ": " + Kube.rootMessage(e),
                    "check free space and permissions in " + target.getParent(), e);
        }
    }

    /** Downloads url into `part`, checking that every byte the server announced arrived. */
    private static void fetch(HttpClient http, URI url, String name, Path part, Progress progress) {
        try {
            HttpResponse<InputStream> response = http.send(
                    HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(60)).header("User-Agent", "asm-hsm").GET().build(),
                    HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream body = response.body(); var wake = Interrupt.closeOnStop(body)) {
                int code = response.statusCode();
                if (code != 200)
                    throw Fail.failed("cannot download " + url + ": HTTP " + code + (code == 404 ? " Not Found" : ""),
                            code == 404 ? "check --asm-version and --platform; for a mirror pass --base-url"
                                    : "try again later, or download elsewhere and pass --archive and --signature");
                long total = response.headers().firstValueAsLong("Content-Length").orElse(-1);
                long done = 0;
                Files.deleteIfExists(part);
                try (OutputStream out = Files.newOutputStream(part)) {
                    byte[] buf = new byte[1 << 16];
                    long shown = 0;
                    for (int n; (n = body.read(buf)) > 0; ) {
                        Interrupt.check();
                        out.write(buf, 0, n);
                        done += n;
                        long now = System.nanoTime();
                        if (progress != null && now - shown > 100_000_000L) {
                            progress.update(done, total);
                            shown = now;
                        }
                    }
                } catch (IOException e) {
                    throw cutShort(name, done, total, e);
                }
                if (total >= 0 && done != total) throw cutShort(name, done, total, null);
                if (progress != null) progress.update(done, total);
            }
            Interrupt.check();
        } catch (ConnectException | java.nio.channels.UnresolvedAddressException e) {
            throw Fail.failed("cannot reach " + url.getHost() + (url.getPort() > 0 ? ":" + url.getPort() : "") + " to download " + name
                            + ": " + networkReason(e),
                    "check the network and HTTPS_PROXY, use a mirror (--base-url), or pass --archive and --signature", e);
        } catch (IOException e) {
            throw Fail.failed("download of " + url + " failed: " + Kube.rootMessage(e),
                    "run fetch-release again; for a mirror pass --base-url", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw Fail.failed("download of " + name + " interrupted", "run fetch-release again");
        }
    }

    /** What the JDK client says only through exception types: unknown host, refused connection, timeout. */
    static String networkReason(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof java.nio.channels.UnresolvedAddressException || t instanceof java.net.UnknownHostException)
                return "host not found";
            if (t instanceof java.net.http.HttpConnectTimeoutException) return "connection timed out";
            if (t.getMessage() != null && !t.getMessage().isBlank()) return t.getMessage();
        }
        return e instanceof ConnectException ? "connection refused" : e.getClass().getSimpleName();
    }

    private static Fail cutShort(String name, long done, long total, IOException cause) {
        return Fail.failed("download of " + name + " was cut short: got " + done + (total >= 0 ? " of " + total : "")
                + " bytes" + (cause == null ? "" : " (" + Kube.rootMessage(cause) + ")"), "run fetch-release again", cause);
    }

    /** `[#########.........]  45%  21.3 MiB / 47.0 MiB`, the detail of a download's out.progress. */
    public static String progressBar(long done, long total) {
        if (total <= 0) return human(done);
        int width = 30;
        int filled = (int) (width * done / total);
        return String.format("[%s%s] %3d%%  %s / %s", "#".repeat(filled), ".".repeat(width - filled),
                100 * done / total, human(done), human(total));
    }

    static String human(long bytes) {
        if (bytes < 1024) return bytes + " B";
        if (bytes < 1024 * 1024) return String.format("%.1f KiB", bytes / 1024.0);
        return String.format("%.1f MiB", bytes / (1024.0 * 1024));
    }

    /** HTTPS_PROXY / HTTP_PROXY / NO_PROXY as curl reads them; loopback always goes direct. */
    static final class EnvProxy extends ProxySelector {
        @Override
        public List<Proxy> select(URI uri) {
            String host = uri.getHost() == null ? "" : uri.getHost().toLowerCase(Locale.ROOT);
            String proxy = "https".equals(uri.getScheme()) ? env("https_proxy") : env("http_proxy");
            if (proxy == null || host.equals("localhost") || host.startsWith("127.") || host.equals("[::1]") || host.equals("::1")
                    || noProxy(host))
                return List.of(Proxy.NO_PROXY);
            URI p = URI.create(proxy.contains("://") ? proxy : "http://" + proxy);
            int port = p.getPort() > 0 ? p.getPort() : ("https".equals(p.getScheme()) ? 443 : 80);
            return List.of(new Proxy(Proxy.Type.HTTP, InetSocketAddress.createUnresolved(p.getHost(), port)));
        }

        private static boolean noProxy(String host) {
            String list = env("no_proxy");
            if (list == null) return false;
            for (String entry : list.split(",")) {
                String e = entry.strip().toLowerCase(Locale.ROOT);
                if (e.equals("*")) return true;
                if (e.startsWith(".")) e = e.substring(1);
                if (!e.isEmpty() && (host.equals(e) || host.endsWith("." + e))) return true;
            }
            return false;
        }

        private static String env(String lower) {
            String v = Env.get(lower);
            return v != null ? v : Env.get(lower.toUpperCase(Locale.ROOT));
        }

        @Override
        public void connectFailed(URI uri, SocketAddress sa, IOException ioe) {
            // the request itself reports the failure
        }
    }

    // ------------------------------------------------------------------ extraction

    /** An archive refused as unsafe or malformed: nothing of it is kept. */
    public static final class Refused extends IOException {
        Refused(String message) { super(message); }
    }

    enum Kind { FILE, DIR, SYMLINK, HARDLINK, OTHER }

    /** One archive member: its name as stored, what it is, and (for links) what it points to. */
    record Entry(String name, Kind kind, long size, int mode, long mtimeMillis, String link, String typeName) {}

    /** The members of an archive, in order; data() reads the current member's content. */
    interface Entries extends Closeable {
        Entry next() throws IOException;

        InputStream data() throws IOException;
    }

    /**
     * Extracts the archive into `parent/topDir`, which must not exist yet. Every member
     * must lie under topDir; names that are absolute or hold `..`, links that resolve
     * outside topDir, devices and anything unknown refuse the whole archive. Work happens
     * in a hidden sibling directory that is renamed at the end, or removed on any failure.
     * Returns the release directory.
     */
    public static Path extract(Path archive, boolean zip, Path parent, String topDir) throws IOException {
        Path dest = parent.resolve(topDir);
        if (Env.exists(dest)) throw new IOException(dest + " already exists");
        // named with this process's pid, so that a later run can tell it from a live one's (see leftovers)
        Path staging = Files.createTempDirectory(parent, "." + topDir + PARTIAL + ProcessHandle.current().pid() + "-");
        // removed on any failure, when the step is interrupted, and (empty by then) once the release is in place
        try (Interrupt.Undo removeStaging = Interrupt.undo(staging.getFileName().toString(), () -> deleteTree(staging))) {
            try (Entries entries = zip ? new ZipEntries(archive) : new TarEntries(archive)) {
                new Extraction(staging, topDir).run(entries);
            }
            Path top = staging.resolve(topDir);
            if (!Files.isDirectory(top, LinkOption.NOFOLLOW_LINKS))
                throw new Refused("the archive holds no " + topDir + "/ directory");
            Files.move(top, dest, StandardCopyOption.ATOMIC_MOVE);
            return dest;
        }
    }

    static final String PARTIAL = ".partial-";
    /** A download's part file (`NAME.PID.part`, or `NAME.part` as earlier versions named it). */
    private static final java.util.regex.Pattern PART = java.util.regex.Pattern.compile("istio-.+?(?:\\.(\\d+))?\\.part");
    /** An extraction's staging folder (`.istio-VERSION.partial-PID-RANDOM`, or `.istio-VERSION.partial-RANDOM` as earlier versions named it). */
    private static final java.util.regex.Pattern STAGING = java.util.regex.Pattern.compile("\\.istio-.+?\\.partial-(?:(\\d+)-)?\\d+");

    /**
     * What interrupted or killed runs left in `dir`: download part files and extraction folders whose
     * process is gone (its pid is in the name; an old-style name, without one, is never a live run's),
     * and a release signature without its archive. A pid that lives again in a process started after
     * the file was last written is another process.
     */
    public static List<Path> leftovers(Path dir) throws IOException {
        List<Path> found = new ArrayList<>();
        if (!Files.isDirectory(dir)) return found;
        try (var entries = Files.list(dir)) {
            for (Path p : (Iterable<Path>) entries::iterator) {
                String name = p.getFileName().toString();
                java.util.regex.Matcher part = PART.matcher(name), staging = STAGING.matcher(name);
                java.util.regex.Matcher m = part.matches() && Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS) ? part
                        : staging.matches() && Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS) ? staging : null;
                if (m != null && !ownedByLiveProcess(m.group(1), p)) found.add(p);
                // a signature is kept only beside its archive (downloadWithSignature): alone, it is an earlier run's
                else if (name.startsWith("istio-") && name.endsWith(".1.sig") && Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)
                        && !Env.exists(p.resolveSibling(name.substring(0, name.length() - ".1.sig".length())))) found.add(p);
            }
        }
        found.sort(null);
        return found;
    }

    private static boolean ownedByLiveProcess(String pid, Path file) throws IOException {
        if (pid == null) return false;
        long id;
        try {
            id = Long.parseLong(pid);
        } catch (NumberFormatException e) {
            return false;
        }
        if (id == ProcessHandle.current().pid()) return false;     // this process runs one step at a time: not this one's
        java.time.Instant written = Files.getLastModifiedTime(file, LinkOption.NOFOLLOW_LINKS).toInstant();
        return ProcessHandle.of(id).filter(ProcessHandle::isAlive)
                .map(h -> h.info().startInstant().map(start -> !start.isAfter(written)).orElse(true)).orElse(false);
    }

    /** Removes a directory tree without following links out of it. */
    public static void deleteTree(Path dir) throws IOException {
        if (!Env.exists(dir)) return;
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path d, BasicFileAttributes a) throws IOException {
                // read-only directories from the archive: make them writable to empty them
                if (!d.toFile().canWrite()) d.toFile().setWritable(true, true);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                Files.delete(f);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                if (e != null) throw e;
                Files.delete(d);
                return FileVisitResult.CONTINUE;
            }
        });
    }

    /**
     * The member checks and the writing. Files and directories are written first with no
     * link in the tree; links are checked against the whole archive's links (as the OS
     * will resolve them) and made last, so no write ever goes through a link.
     */
    static final class Extraction {
        private final Path root;
        private final String top;
        private final Map<String, String> symlinks = new LinkedHashMap<>();
        private final Map<String, Entry> dirs = new LinkedHashMap<>();
        private final Map<String, Entry> files = new HashMap<>();
        private final Set<Path> madeDirs = new java.util.HashSet<>();
        private long written;

        Extraction(Path root, String top) {
            this.root = root;
            this.top = top;
        }

        void run(Entries entries) throws IOException {
            int count = 0;
            for (Entry e; (e = entries.next()) != null; ) {
                Interrupt.check();
                if (++count > MAX_ENTRIES) throw new Refused("the archive has more than " + MAX_ENTRIES + " members");
                String name = safeName(e.name(), "member");
                if (name == null) continue;   // "./" itself
                if (!name.equals(top) && !name.startsWith(top + "/"))
                    throw new Refused("member '" + e.name() + "' is outside " + top + "/");
                for (String p = parentOf(name); p != null; p = parentOf(p))
                    if (symlinks.containsKey(p)) throw new Refused("member '" + e.name() + "' lies under the link " + p);
                if (symlinks.containsKey(name)) throw new Refused("member '" + e.name() + "' replaces a link");
                Path target = root.resolve(name);
                switch (e.kind()) {
                    case DIR -> {
                        if (files.containsKey(name)) throw new Refused("member '" + e.name() + "' replaces a file with a directory");
                        Files.createDirectories(target);
                        dirs.put(name, e);
                    }
                    case FILE -> writeFile(name, target, e, entries.data());
                    case HARDLINK -> {
                        String to = safeName(e.link(), "hard link target of '" + e.name() + "':");
                        if (to == null || !files.containsKey(to))
                            throw new Refused("hard link '" + e.name() + "' points to '" + e.link() + "', not an earlier file of the archive");
                        try (InputStream in = Files.newInputStream(root.resolve(to))) {
                            writeFile(name, target, e, in);
                        }
                    }
                    case SYMLINK -> {
                        if (Env.exists(target)) throw new Refused("link '" + e.name() + "' replaces a file or directory");
                        if (e.link() == null || e.link().isEmpty()) throw new Refused("link '" + e.name() + "' has no target");
                        symlinks.put(name, e.link());
                    }
                    case OTHER -> throw new Refused("member '" + e.name() + "' is a " + e.typeName() + ", not a file, directory or link");
                }
            }
            for (var link : symlinks.entrySet()) checkLink(link.getKey(), link.getValue());
            for (var link : symlinks.entrySet()) {
                Path at = root.resolve(link.getKey());
                Files.createDirectories(at.getParent());
                Files.createSymbolicLink(at, Path.of(link.getValue().replace('\\', '/')));
            }
            // deepest first, so a read-only directory is closed only after what is in it
            List<String> names = new ArrayList<>(dirs.keySet());
            names.sort((a, b) -> b.length() - a.length());
            for (String d : names) finish(root.resolve(d), dirs.get(d), true);
        }

        private void writeFile(String name, Path target, Entry e, InputStream in) throws IOException {
            if (dirs.containsKey(name) || Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS))
                throw new Refused("member '" + e.name() + "' replaces a directory with a file");
            if (madeDirs.add(target.getParent())) Files.createDirectories(target.getParent());
            if (files.containsKey(name)) Files.delete(target);   // a later member of the same name wins, as with tar
            try (OutputStream out = Files.newOutputStream(target)) {
                byte[] buf = new byte[1 << 16];
                for (int n; (n = in.read(buf)) > 0; ) {
                    Interrupt.check();      // a large member stops as quickly as a small one
                    written += n;
                    if (written > MAX_EXTRACTED_BYTES)
                        throw new Refused("the archive expands to more than " + (MAX_EXTRACTED_BYTES >> 30) + " GiB");
                    out.write(buf, 0, n);
                }
            }
            files.put(name, e);
            finish(target, e, false);
        }

        /** Mode (no set-id bits, no write for group and others, as under umask 022) and time. */
        private static void finish(Path p, Entry e, boolean dir) throws IOException {
            int mode = e.mode() & 0755;
            if (dir) mode |= 0700;
            else if (mode == 0) mode = 0644;   // zip members carry no mode
            try {
                Files.setPosixFilePermissions(p, permissions(mode));
            } catch (UnsupportedOperationException notPosix) {
                if ((mode & 0100) != 0) p.toFile().setExecutable(true, true);
            }
            // java.io.File sets the time by path (utimes); Files.setLastModifiedTime opens the file again
            if (e.mtimeMillis() > 0) p.toFile().setLastModified(e.mtimeMillis());
        }

        /**
         * Resolves the link as the OS will, through every link of the archive, and refuses
         * it if any step leaves the release directory (or loops).
         */
        void checkLink(String name, String target) throws Refused {
            Deque<String> path = new ArrayDeque<>(Arrays.asList(name.split("/")));
            path.removeLast();
            Deque<String> todo = new ArrayDeque<>();
            pushFront(todo, name, target);
            int hops = 0;
            while (!todo.isEmpty()) {
                String c = todo.pollFirst();
                if (c.isEmpty() || c.equals(".")) continue;
                if (c.equals("..")) {
                    if (path.size() <= 1) throw new Refused("link '" + name + "' -> '" + target + "' points outside " + top + "/");
                    path.removeLast();
                    continue;
                }
                path.addLast(c);
                String next = symlinks.get(String.join("/", path));
                if (next != null) {
                    if (++hops > 40) throw new Refused("link '" + name + "' -> '" + target + "' loops");
                    path.removeLast();
                    pushFront(todo, name, next);
                }
            }
            if (path.isEmpty() || !path.getFirst().equals(top))
                throw new Refused("link '" + name + "' -> '" + target + "' points outside " + top + "/");
        }

        private void pushFront(Deque<String> todo, String name, String target) throws Refused {
            String t = target.replace('\\', '/');
            if (t.startsWith("/") || t.matches("[A-Za-z]:.*"))
                throw new Refused("link '" + name + "' -> '" + target + "' is absolute");
            String[] parts = t.split("/");
            for (int i = parts.length - 1; i >= 0; i--) todo.addFirst(parts[i]);
        }
    }

    /**
     * A member name made relative and clean: `./` segments dropped; absolute names (`/x`,
     * `C:x`, `\\x`) and any `..` refused. Returns null for the archive root itself.
     */
    static String safeName(String raw, String what) throws Refused {
        if (raw == null || raw.isEmpty()) throw new Refused(what + " with an empty name");
        if (raw.indexOf('\0') >= 0) throw new Refused(what + " '" + raw.replace('\0', '?') + "' has a NUL in its name");
        String n = raw.replace('\\', '/');
        if (n.startsWith("/") || n.matches("[A-Za-z]:.*")) throw new Refused(what + " '" + raw + "' has an absolute path");
        List<String> kept = new ArrayList<>();
        for (String s : n.split("/")) {
            if (s.equals("..")) throw new Refused(what + " '" + raw + "' has a '..' segment");
            if (!s.isEmpty() && !s.equals(".")) kept.add(s);
        }
        return kept.isEmpty() ? null : String.join("/", kept);
    }

    static String parentOf(String name) {
        int i = name.lastIndexOf('/');
        return i < 0 ? null : name.substring(0, i);
    }

    static Set<PosixFilePermission> permissions(int mode) {
        Set<PosixFilePermission> s = EnumSet.noneOf(PosixFilePermission.class);
        PosixFilePermission[] bits = {
                PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_READ,
                PosixFilePermission.GROUP_EXECUTE, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
                PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_READ};
        for (int i = 0; i < bits.length; i++) if ((mode & (1 << i)) != 0) s.add(bits[i]);
        return s;
    }

    // ------------------------------------------------------------------ zip

    /** Zip members from the central directory (java.util.zip). Links are not represented. */
    static final class ZipEntries implements Entries {
        private final ZipFile zip;
        private final java.util.Enumeration<? extends ZipEntry> all;
        private ZipEntry current;

        ZipEntries(Path file) throws IOException {
            try {
                zip = new ZipFile(file.toFile());
            } catch (ZipException e) {
                throw new Refused("not a zip archive: " + e.getMessage());
            }
            all = zip.entries();
        }

        @Override
        public Entry next() {
            if (!all.hasMoreElements()) return null;
            current = all.nextElement();
            long time = current.getTime();
            return new Entry(current.getName(), current.isDirectory() ? Kind.DIR : Kind.FILE, current.getSize(), 0,
                    Math.max(time, 0), null, current.isDirectory() ? "directory" : "file");
        }

        @Override
        public InputStream data() throws IOException { return zip.getInputStream(current); }

        @Override
        public void close() throws IOException { zip.close(); }
    }

    // ------------------------------------------------------------------ tar

    /**
     * gzip-compressed tar through Commons Compress (ustar, GNU long names and links, pax),
     * with what it leaves to its caller: every header's checksum, a bound on extended
     * headers, and an archive that ends before its end-of-archive blocks is truncated, not
     * complete. Sparse members are refused. Read errors are refusals: nothing is kept.
     */
    static final class TarEntries implements Entries {
        private final InputStream gzip;
        private final Checked tar;

        TarEntries(Path file) throws IOException {
            InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
            try {
                gzip = new GZIPInputStream(raw, 1 << 16);
            } catch (ZipException | EOFException e) {
                raw.close();
                throw new Refused("not a gzip-compressed archive: " + e.getMessage());
            }
            tar = new Checked(gzip);
        }

        @Override
        public Entry next() throws IOException {
            TarArchiveEntry e;
            do {
                try {
                    e = tar.getNextEntry();
                } catch (Refused r) {
                    throw r;
                } catch (IOException x) {
                    throw damaged(x);
                }
                if (e == null) {
                    drain();
                    return null;
                }
            } while (e.getLinkFlag() == 'V');   // a volume label
            String name = e.getName();
            if (e.isSparse()) throw new Refused("member '" + name + "' is a sparse file, which is not supported");
            char type = (char) e.getLinkFlag();
            Kind kind;
            String typeName;
            switch (type) {
                case '0', '\0', '7' -> { kind = Kind.FILE; typeName = "file"; }
                case '1' -> { kind = Kind.HARDLINK; typeName = "hard link"; }
                case '2' -> { kind = Kind.SYMLINK; typeName = "symbolic link"; }
                case '5' -> { kind = Kind.DIR; typeName = "directory"; }
                case '3' -> { kind = Kind.OTHER; typeName = "character device"; }
                case '4' -> { kind = Kind.OTHER; typeName = "block device"; }
                case '6' -> { kind = Kind.OTHER; typeName = "FIFO"; }
                default -> { kind = Kind.OTHER; typeName = "member of unknown type '" + type + "'"; }
            }
            if (kind == Kind.FILE && name.endsWith("/")) kind = Kind.DIR;   // old tars mark directories by name only
            return new Entry(name, kind, e.getSize(), e.getMode(), Math.max(e.getLastModifiedTime().toMillis(), 0),
                    e.getLinkName(), typeName);
        }

        @Override
        public InputStream data() {
            return new FilterInputStream(tar) {
                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    try {
                        return in.read(b, off, len);
                    } catch (IOException x) {
                        throw damaged(x);
                    }
                }

                @Override
                public void close() {
                    // the archive stream stays open for the next member
                }
            };
        }

        @Override
        public void close() throws IOException { tar.close(); }

        private static Refused damaged(IOException e) {
            return e instanceof Refused r ? r : new Refused("the archive is truncated or corrupt: " + Kube.rootMessage(e));
        }

        /** Reads on to the end of the gzip stream, as tar and gzip do, so its CRC and length are checked too. */
        private void drain() throws IOException {
            byte[] buf = new byte[1 << 16];
            long left = 64L << 20;   // a few blocks of zeros follow the end marker; never decompress much more
            try {
                for (int n; left > 0 && (n = gzip.read(buf)) > 0; ) left -= n;
            } catch (IOException x) {
                throw damaged(x);
            }
        }

        /** Commons Compress's reader, with each header record checked as it is read. */
        private static final class Checked extends TarArchiveInputStream {
            private static final int MAX_EXTENDED_HEADER = 1 << 20;
            private static final int SIZE_OFFSET = TarConstants.NAMELEN + TarConstants.MODELEN + TarConstants.UIDLEN + TarConstants.GIDLEN;
            private boolean ended;

            Checked(InputStream in) { super(in, "UTF-8"); }

            @Override
            protected byte[] readRecord() throws IOException {
                long at = getBytesRead();
                byte[] r = super.readRecord();
                if (ended) return r;
                if (r == null) throw new Refused("the archive ends without its end-of-archive blocks (truncated?)");
                if (isEOFRecord(r)) {
                    ended = true;
                    return r;
                }
                if (!TarUtils.verifyCheckSum(r))
                    throw new Refused("tar header at byte " + at + " has a bad checksum (not a tar archive, or corrupt)");
                if ("LKxXg".indexOf(r[TarConstants.LF_OFFSET]) >= 0) {
                    long size;
                    try {
                        size = TarUtils.parseOctalOrBinary(r, SIZE_OFFSET, TarConstants.SIZELEN);
                    } catch (IllegalArgumentException e) {
                        throw new Refused("tar header at byte " + at + " has a malformed size");
                    }
                    if (size > MAX_EXTENDED_HEADER)
                        throw new Refused("extended header at byte " + at + " is too large (" + size + " bytes)");
                }
                return r;
            }
        }
    }
}
