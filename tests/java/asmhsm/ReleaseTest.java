package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Release: the built-in key is the guide's; signatures are checked as `openssl dgst -sha256
 * -verify` checks them (cross-checked with openssl both ways); archives written by GNU tar
 * (ustar, GNU, pax) and zip extract exactly; hostile archives made with Python's tarfile
 * and zipfile are refused and leave nothing behind.
 */
class ReleaseTest {
    static final String TOP = Release.topDir(Release.DEFAULT_VERSION);

    @TempDir Path tmp;

    // ------------------------------------------------------------------ the key

    /** The guide's text, outside the repo: ../shared/reference/procedure.es.txt from the repo root. */
    static String guideText() throws IOException {
        Path guide = Cli.repo().resolve("../shared/reference/procedure.es.txt").normalize();
        assertThat(guide).as("the guide must be at %s (repo root: asm.repo=%s)", guide, Cli.repo()).isRegularFile();
        return Files.readString(guide, StandardCharsets.UTF_8);
    }

    @Test
    void builtInKeyIsByteForByteTheGuides() throws Exception {
        Matcher m = Pattern.compile("-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", Pattern.DOTALL).matcher(guideText());
        List<String> bodies = new ArrayList<>();
        while (m.find()) bodies.add(m.group(1).replaceAll("\\s", ""));
        assertThat(bodies).as("the guide prints the key for Linux, macOS and Windows").hasSize(3).containsOnly(bodies.get(0));

        Matcher b = Pattern.compile("-----BEGIN PUBLIC KEY-----\n(.*?)-----END PUBLIC KEY-----\n", Pattern.DOTALL).matcher(Release.GUIDE_PUBLIC_KEY);
        assertThat(b.matches()).as("built-in key is one PEM block").isTrue();
        assertThat(b.group(1).replaceAll("\\s", "")).isEqualTo(bodies.get(0));
        byte[] guideDer = Base64.getDecoder().decode(bodies.get(0));
        assertThat(Release.guideKey().getEncoded()).isEqualTo(guideDer);
        assertThat(guideDer).hasSize(91);   // SubjectPublicKeyInfo of an uncompressed P-256 point
    }

    // ------------------------------------------------------------------ signatures

    static KeyPair p256() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    static byte[] sign(PrivateKey key, Path file) throws Exception {
        Signature s = Signature.getInstance("SHA256withECDSA");
        s.initSign(key);
        s.update(Files.readAllBytes(file));
        return s.sign();
    }

    static Path pubPem(KeyPair kp, Path file) throws IOException {
        Files.writeString(file, Pki.pem("PUBLIC KEY", kp.getPublic().getEncoded()));
        return file;
    }

    static Cli.Result openssl(Path cwd, String... args) {
        List<String> cmd = new ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        return Cli.run(cmd, Map.of(), cwd, null);
    }

    @Test
    void signatureIsCheckedAsOpensslChecksIt() throws Exception {
        Path archive = Files.write(tmp.resolve("a.tar.gz"), "release bytes".repeat(5000).getBytes(StandardCharsets.UTF_8));
        KeyPair kp = p256();
        Path sig = Files.write(tmp.resolve("a.tar.gz.1.sig"), sign(kp.getPrivate(), archive));
        Path pub = pubPem(kp, tmp.resolve("pub.pem"));

        assertThat(Release.verifies(archive, Files.readAllBytes(sig), Release.readPublicKey(pub))).isTrue();
        // the guide's own command agrees
        Cli.Result ok = openssl(tmp, "dgst", "-sha256", "-verify", pub.toString(), "-signature", sig.toString(), archive.toString());
        assertThat(ok.stdout()).as(ok.toString()).contains("Verified OK");

        // and a signature made by openssl verifies here
        openssl(tmp, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "k.pem");
        openssl(tmp, "pkey", "-in", "k.pem", "-pubout", "-out", "k.pub");
        Cli.Result signed = openssl(tmp, "dgst", "-sha256", "-sign", "k.pem", "-out", "o.sig", archive.toString());
        assertThat(signed.exit()).as(signed.toString()).isZero();
        assertThat(Release.verifies(archive, Files.readAllBytes(tmp.resolve("o.sig")), Release.readPublicKey(tmp.resolve("k.pub")))).isTrue();
        // ... but not with another key
        assertThat(Release.verifies(archive, Files.readAllBytes(tmp.resolve("o.sig")), Release.readPublicKey(pub))).isFalse();

        // one flipped byte of the archive
        byte[] bytes = Files.readAllBytes(archive);
        bytes[bytes.length / 2] ^= 1;
        Path tampered = Files.write(tmp.resolve("t.tar.gz"), bytes);
        assertThat(Release.verifies(tampered, Files.readAllBytes(sig), Release.readPublicKey(pub))).isFalse();
        assertThat(openssl(tmp, "dgst", "-sha256", "-verify", pub.toString(), "-signature", sig.toString(), tampered.toString()).all())
                .contains("Verification failure");
        // garbage instead of a DER signature does not verify (and throws nothing)
        assertThat(Release.verifies(archive, "not a signature".getBytes(StandardCharsets.US_ASCII), Release.readPublicKey(pub))).isFalse();
        assertThat(Release.verifies(archive, new byte[0], Release.readPublicKey(pub))).isFalse();
    }

    @Test
    void onlyAP256PublicKeyIsTaken() throws Exception {
        openssl(tmp, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "rsa.pem");
        openssl(tmp, "pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub");
        openssl(tmp, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "p384.pem");
        openssl(tmp, "pkey", "-in", "p384.pem", "-pubout", "-out", "p384.pub");
        assertThatThrownBy(() -> Release.readPublicKey(tmp.resolve("rsa.pub"))).isInstanceOf(Fail.class).hasMessageContaining("not an EC public key");
        assertThatThrownBy(() -> Release.readPublicKey(tmp.resolve("p384.pub"))).isInstanceOf(Fail.class).hasMessageContaining("not a P-256 key");
        assertThatThrownBy(() -> Release.readPublicKey(tmp.resolve("rsa.pem"))).isInstanceOf(Fail.class).hasMessageContaining("not one PEM public key");
        assertThatThrownBy(() -> Release.readPublicKey(tmp.resolve("absent.pem"))).isInstanceOf(Fail.class).hasMessageContaining("does not exist");
    }

    // ------------------------------------------------------------------ extraction of good archives

    /** A small release tree: an executable istioctl, profiles, a long path, an inner link, a hard link, an empty dir. */
    static Path releaseTree(Path parent, boolean longComponent) throws IOException {
        Path top = parent.resolve(TOP);
        Path istioctl = top.resolve("bin/istioctl");
        Files.createDirectories(istioctl.getParent());
        Files.writeString(istioctl, "#!/bin/sh\necho \"istioctl $*\"\n");
        Files.setPosixFilePermissions(istioctl, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.createLink(top.resolve("bin/istioctl-hardlink"), istioctl);
        Path profile = top.resolve("manifests/profiles/asm-multicloud.yaml");
        Files.createDirectories(profile.getParent());
        Files.writeString(profile, "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\n");
        Path deep = top.resolve("samples/" + "d".repeat(60) + "/" + "e".repeat(60) + "/" + "f".repeat(80) + ".yaml");
        Files.createDirectories(deep.getParent());
        Files.writeString(deep, "deep\n");
        if (longComponent) Files.writeString(top.resolve("samples/" + "g".repeat(120) + ".txt"), "long name\n");
        Files.createSymbolicLink(top.resolve("samples/profile-link.yaml"), Path.of("../manifests/profiles/asm-multicloud.yaml"));
        Files.createDirectories(top.resolve("samples/empty"));
        return top;
    }

    /** path -> "dir" | "file:<mode>:<content>" | "link:<target>", for comparing trees. */
    static Map<String, String> describe(Path top) throws IOException {
        Map<String, String> m = new TreeMap<>();
        try (Stream<Path> s = Files.walk(top)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                String rel = top.relativize(p).toString();
                if (Files.isSymbolicLink(p)) m.put(rel, "link:" + Files.readSymbolicLink(p));
                else if (Files.isDirectory(p)) m.put(rel, "dir");
                else m.put(rel, "file:" + PosixFilePermissions.toString(Files.getPosixFilePermissions(p)) + ":" + Files.readString(p));
            }
        }
        return m;
    }

    @ParameterizedTest
    @ValueSource(strings = {"ustar", "gnu", "pax", "oldgnu"})
    void tarArchivesFromGnuTarExtractExactly(String format) throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Path top = releaseTree(src, !format.equals("ustar"));
        Path archive = tmp.resolve("r.tar.gz");
        Cli.Result tar = Cli.run(List.of("tar", "-C", src.toString(), "--format=" + format, "-czf", archive.toString(), TOP), Map.of(), tmp, null);
        assertThat(tar.exit()).as(tar.toString()).isZero();

        Path dest = Files.createDirectories(tmp.resolve("dest"));
        Path release = Release.extract(archive, false, dest, TOP);

        assertThat(release).isEqualTo(dest.resolve(TOP));
        assertThat(describe(release)).isEqualTo(describe(top));
        assertThat(Files.isExecutable(release.resolve("bin/istioctl"))).isTrue();
        assertThat(Release.complete(release)).isTrue();
        assertThat(Files.readString(release.resolve("samples/profile-link.yaml"))).contains("IstioOperator");
        try (Stream<Path> s = Files.list(dest)) {
            assertThat(s.map(p -> p.getFileName().toString())).containsExactly(TOP);   // no staging left over
        }
    }

    /**
     * Names and link targets over the 100 bytes of a tar header: GNU tar writes them as
     * ././@LongLink members (L for the name, K for the link), pax as path= and linkpath= records.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gnu", "pax"})
    void longNamesAndLongLinkTargetsExtractExactly(String format) throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Path top = releaseTree(src, true);
        String deep = "samples/" + "d".repeat(60) + "/" + "e".repeat(60) + "/" + "f".repeat(80) + ".yaml";
        Path links = Files.createDirectories(top.resolve("samples/" + "l".repeat(110)));
        Files.createSymbolicLink(links.resolve("deep-symlink"), Path.of("../../" + deep));
        Files.createLink(links.resolve("deep-hardlink"), top.resolve(deep));
        Path archive = tmp.resolve("long.tar.gz");
        Cli.Result tar = Cli.run(List.of("tar", "-C", src.toString(), "--format=" + format, "-czf", archive.toString(), TOP), Map.of(), tmp, null);
        assertThat(tar.exit()).as(tar.toString()).isZero();
        String raw;
        try (var in = new java.util.zip.GZIPInputStream(Files.newInputStream(archive))) {
            raw = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
        }
        java.util.Set<Character> longLinkTypes = new java.util.TreeSet<>();
        for (int at = 0; at + 512 <= raw.length(); at += 512)
            if (raw.startsWith("././@LongLink", at)) longLinkTypes.add(raw.charAt(at + 156));
        if (format.equals("gnu")) assertThat(longLinkTypes).as("GNU long name (L) and long link (K) members").containsExactly('K', 'L');
        else assertThat(raw).as("pax records").contains(" path=" + TOP + "/samples/" + "l".repeat(110)).contains(" linkpath=../../" + deep);

        Path release = Release.extract(archive, false, Files.createDirectories(tmp.resolve("dest")), TOP);

        assertThat(describe(release)).isEqualTo(describe(top));
        assertThat(Files.readSymbolicLink(release.resolve("samples/" + "l".repeat(110) + "/deep-symlink"))).isEqualTo(Path.of("../../" + deep));
        assertThat(release.resolve("samples/" + "l".repeat(110) + "/deep-hardlink")).hasContent("deep\n");
    }

    @Test
    void tarWithLeadingDotSlashAndZipExtractToo() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Path top = releaseTree(src, true);
        Path tgz = tmp.resolve("dot.tar.gz");
        assertThat(Cli.run(List.of("tar", "-C", src.toString(), "-czf", tgz.toString(), "./" + TOP), Map.of(), tmp, null).exit()).isZero();
        assertThat(describe(Release.extract(tgz, false, Files.createDirectories(tmp.resolve("d1")), TOP))).isEqualTo(describe(top));

        // zip keeps no links: as Google's Windows archive, files and directories only
        Files.delete(top.resolve("samples/profile-link.yaml"));
        Path zip = tmp.resolve("r.zip");
        Cli.Result z = Cli.run(List.of("zip", "-qr", zip.toString(), TOP), Map.of(), src, null);
        assertThat(z.exit()).as(z.toString()).isZero();
        Path release = Release.extract(zip, true, Files.createDirectories(tmp.resolve("d2")), TOP);
        assertThat(Files.readString(release.resolve("manifests/profiles/asm-multicloud.yaml"))).contains("IstioOperator");
        assertThat(Files.readString(release.resolve("bin/istioctl"))).startsWith("#!/bin/sh");
        assertThat(describe(release).keySet()).isEqualTo(describe(top).keySet());
    }

    // ------------------------------------------------------------------ hostile archives

    /** Writes a hostile archive with Python's tarfile / zipfile: one good member first, then the case. */
    static final String PY = """
            import io, sys, tarfile, zipfile
            out, case, top = sys.argv[1], sys.argv[2], sys.argv[3]
            if case.startswith("zip-"):
                with zipfile.ZipFile(out, "w") as z:
                    z.writestr(top + "/bin/istioctl", "ok")
                    z.writestr({"zip-dotdot": top + "/../evil", "zip-abs": sys.argv[4] + "/abs-evil",
                                "zip-outside": "other/file"}[case], "evil")
                sys.exit(0)
            with tarfile.open(out, "w:gz", format=tarfile.GNU_FORMAT) as t:
                def member(name, kind=tarfile.REGTYPE, data=b"", link=""):
                    ti = tarfile.TarInfo(name); ti.type = kind; ti.linkname = link; ti.mode = 0o644
                    ti.size = len(data) if kind == tarfile.REGTYPE else 0
                    t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
                member(top + "/bin/istioctl", data=b"ok")
                if case == "dotdot": member(top + "/../evil", data=b"evil")
                elif case == "dotdot-deep": member(top + "/bin/../../evil", data=b"evil")
                elif case == "abs": member(sys.argv[4] + "/abs-evil", data=b"evil")
                elif case == "outside-top": member("other/file", data=b"evil")
                elif case == "symlink-out": member(top + "/samples/evil", tarfile.SYMTYPE, link="../../evil")
                elif case == "symlink-abs": member(top + "/samples/evil", tarfile.SYMTYPE, link="/etc/passwd")
                elif case == "symlink-chain":
                    member(top + "/d", tarfile.DIRTYPE)
                    member(top + "/d/up", tarfile.SYMTYPE, link="..")
                    member(top + "/b", tarfile.SYMTYPE, link="d/up/../evil")
                elif case == "symlink-loop":
                    member(top + "/x", tarfile.SYMTYPE, link="y")
                    member(top + "/y", tarfile.SYMTYPE, link="x")
                elif case == "write-through-link":
                    member(top + "/l", tarfile.SYMTYPE, link="../..")
                    member(top + "/l/evil", data=b"evil")
                elif case == "link-then-dir":
                    member(top + "/l", tarfile.SYMTYPE, link="bin")
                    member(top + "/l/evil", data=b"evil")
                elif case == "hardlink-out": member(top + "/h", tarfile.LNKTYPE, link="../evil-target")
                elif case == "hardlink-abs": member(top + "/h", tarfile.LNKTYPE, link="/etc/passwd")
                elif case == "device": member(top + "/dev", tarfile.CHRTYPE)
                elif case == "fifo": member(top + "/fifo", tarfile.FIFOTYPE)
                else: raise SystemExit("unknown case " + case)
            """;

    static Path hostile(Path dir, String kase, Path absTarget) throws IOException {
        Path script = dir.resolve("mk.py");
        Files.writeString(script, PY);
        Path out = dir.resolve(kase + (kase.startsWith("zip-") ? ".zip" : ".tar.gz"));
        Cli.Result r = Cli.run(List.of("python3", script.toString(), out.toString(), kase, TOP, absTarget.toString()), Map.of(), dir, null);
        assertThat(r.exit()).as(r.toString()).isZero();
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"dotdot", "dotdot-deep", "abs", "outside-top", "symlink-out", "symlink-abs", "symlink-chain",
            "symlink-loop", "write-through-link", "link-then-dir", "hardlink-out", "hardlink-abs", "device", "fifo",
            "zip-dotdot", "zip-abs", "zip-outside"})
    void hostileArchivesAreRefusedAndLeaveNothing(String kase) throws Exception {
        Path work = Files.createDirectories(tmp.resolve("work"));
        Path dest = Files.createDirectories(work.resolve("dest"));
        Path abs = work.resolve("abs");
        Path archive = hostile(tmp, kase, abs);

        assertThatThrownBy(() -> Release.extract(archive, kase.startsWith("zip-"), dest, TOP))
                .isInstanceOf(Release.Refused.class)
                .satisfies(e -> assertThat(e.getMessage()).isNotBlank());
        try (Stream<Path> s = Files.walk(work)) {
            assertThat(s.map(work::relativize).map(Path::toString)).as("nothing written anywhere").containsExactlyInAnyOrder("", "dest");
        }
        assertThat(tmp.resolve("evil")).doesNotExist();
    }

    @Test
    void refusalsSayWhatIsWrong() throws Exception {
        Path dest = Files.createDirectories(tmp.resolve("dest"));
        Map<String, String> expected = Map.of(
                "dotdot", "has a '..' segment", "abs", "has an absolute path", "symlink-out", "points outside " + TOP + "/",
                "symlink-abs", "is absolute", "symlink-chain", "points outside", "symlink-loop", "loops",
                "device", "is a character device", "outside-top", "is outside " + TOP + "/");
        for (var e : expected.entrySet())
            assertThatThrownBy(() -> Release.extract(hostile(tmp, e.getKey(), tmp.resolve("abs")), false, dest, TOP))
                    .as(e.getKey()).hasMessageContaining(e.getValue());
    }

    @Test
    void truncatedOrForeignArchivesFailAndLeaveNothing() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        releaseTree(src, true);
        Files.write(src.resolve(TOP + "/big.bin"), new java.util.Random(1).ints(400_000).collect(
                java.io.ByteArrayOutputStream::new, (o, i) -> o.write(i), (a, b) -> {}).toByteArray());
        Path good = tmp.resolve("r.tar.gz");
        assertThat(Cli.run(List.of("tar", "-C", src.toString(), "-czf", good.toString(), TOP), Map.of(), tmp, null).exit()).isZero();
        byte[] all = Files.readAllBytes(good);
        Path dest = Files.createDirectories(tmp.resolve("dest"));

        for (int cut : new int[] {all.length / 2, all.length - 20, 30}) {
            Path truncated = Files.write(tmp.resolve("cut.tar.gz"), java.util.Arrays.copyOf(all, cut));
            assertThatThrownBy(() -> Release.extract(truncated, false, dest, TOP)).as("cut at %d", cut).isInstanceOf(IOException.class);
            try (Stream<Path> s = Files.list(dest)) {
                assertThat(s).as("cut at %d", cut).isEmpty();
            }
        }
        Path notGzip = Files.writeString(tmp.resolve("x.tar.gz"), "<html>404</html>");
        assertThatThrownBy(() -> Release.extract(notGzip, false, dest, TOP)).hasMessageContaining("not a gzip");
        Path notZip = Files.writeString(tmp.resolve("x.zip"), "<html>404</html>");
        assertThatThrownBy(() -> Release.extract(notZip, true, dest, TOP)).hasMessageContaining("not a zip");
        try (Stream<Path> s = Files.list(dest)) {
            assertThat(s).isEmpty();
        }
    }

    @Test
    void anExistingReleaseDirectoryIsNeverOverwritten() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        releaseTree(src, false);
        Path archive = tmp.resolve("r.tar.gz");
        assertThat(Cli.run(List.of("tar", "-C", src.toString(), "-czf", archive.toString(), TOP), Map.of(), tmp, null).exit()).isZero();
        Path dest = Files.createDirectories(tmp.resolve("dest"));
        Files.createDirectories(dest.resolve(TOP));
        Files.writeString(dest.resolve(TOP + "/mine"), "operator's file");
        assertThatThrownBy(() -> Release.extract(archive, false, dest, TOP)).hasMessageContaining("already exists");
        assertThat(dest.resolve(TOP + "/mine")).hasContent("operator's file");
    }

    @Test
    void memberNamesAreCleanedOrRefused() throws Exception {
        assertThat(Release.safeName("./istio/bin//istioctl", "m")).isEqualTo("istio/bin/istioctl");
        assertThat(Release.safeName("./", "m")).isNull();
        assertThat(Release.safeName("istio\\bin\\istioctl.exe", "m")).isEqualTo("istio/bin/istioctl.exe");
        for (String bad : List.of("/etc/passwd", "C:/Windows/x", "c:x", "\\\\server\\share", "a/../b", "..", "a/..\\..\\b"))
            assertThatThrownBy(() -> Release.safeName(bad, "m")).as(bad).isInstanceOf(Release.Refused.class);
    }
}
