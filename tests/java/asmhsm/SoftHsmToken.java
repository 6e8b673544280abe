package asmhsm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * A fresh SoftHSM2 token in its own directory, made with OpenSC's pkcs11-tool (not with
 * the toolkit's code), and pkcs11-tool again to look at what a step left on it.
 */
public final class SoftHsmToken {
    public static final String LIB = "/usr/lib/softhsm/libsofthsm2.so";
    public final Path dir;
    public final Path conf;
    public final Path pinFile;
    public final String label;
    private final String pin;

    private SoftHsmToken(Path dir, String label, String pin) {
        this.dir = dir;
        this.conf = dir.resolve("softhsm2.conf");
        this.pinFile = dir.resolve("pin");
        this.label = label;
        this.pin = pin;
    }

    public static SoftHsmToken create(Path parent) {
        try {
            Path dir = Files.createTempDirectory(parent, "hsm");
            Files.createDirectories(dir.resolve("tokens"));
            String label = "t-" + UUID.randomUUID().toString().substring(0, 8);
            String pin = UUID.randomUUID().toString().substring(0, 12);
            SoftHsmToken t = new SoftHsmToken(dir, label, pin);
            Files.writeString(t.conf, "directories.tokendir = " + dir.resolve("tokens") + "\nobjectstore.backend = file\nlog.level = ERROR\n");
            Files.createFile(t.pinFile, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.writeString(t.pinFile, pin + "\n");
            t.tool("--init-token", "--slot-index", "0", "--label", label, "--so-pin", "env:SO_PIN");
            t.tool("--token-label", label, "--login", "--login-type", "so", "--so-pin", "env:SO_PIN", "--init-pin", "--new-pin", "env:USER_PIN");
            return t;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** What a step needs to find this token (the guide's variable names). */
    public Map<String, String> env() {
        Map<String, String> m = new HashMap<>();
        m.put("SOFTHSM2_CONF", conf.toString());
        m.put("P11_LIB", LIB);
        m.put("P11_TOKEN", label);
        m.put("P11_PIN_FILE", pinFile.toString());
        return m;
    }

    /** pkcs11-tool on this token; PINs go through its environment. */
    public String tool(String... args) {
        List<String> cmd = new java.util.ArrayList<>(List.of("pkcs11-tool", "--module", LIB));
        cmd.addAll(List.of(args));
        Cli.Result r = Cli.run(cmd, Map.of("SOFTHSM2_CONF", conf.toString(), "SO_PIN", "so-" + pin, "USER_PIN", pin), dir, null);
        if (r.exit() != 0) throw new AssertionError("pkcs11-tool " + String.join(" ", args) + " failed:\n" + r);
        return r.stdout() + r.stderr();
    }

    /** The objects on the token as pkcs11-tool lists them after a user login. */
    public String objects() {
        return tool("--token-label", label, "--login", "--pin", "env:USER_PIN", "--list-objects");
    }

    /** Number of objects on the token (pkcs11-tool's listing, each object starts unindented). */
    public int objectCount() {
        int n = 0;
        for (String line : objects().split("\n"))
            if (line.matches("^(Secret Key|Private Key|Public Key|Certificate|Data) Object.*")) n++;
        return n;
    }

    /**
     * One more certificate object under `caId`, written by pkcs11-tool as the plugin's import-ca
     * writes one on each call (same CKA_ID, the certificate's DER as CKA_VALUE).
     */
    public void writeCertificate(java.security.cert.X509Certificate cert, String caId) {
        writeCertificate(env(), cert, caId);
    }

    /** The same on any token a step's settings name (P11_TOKEN, P11_PIN_FILE, SOFTHSM2_CONF), e.g. a lab token. */
    public static void writeCertificate(Map<String, String> tokenEnv, java.security.cert.X509Certificate cert, String caId) {
        try {
            Path der = Files.createTempFile(Path.of(tokenEnv.get("P11_PIN_FILE")).getParent(), "copy", ".der");
            Files.write(der, cert.getEncoded());
            String pin = Files.readString(Path.of(tokenEnv.get("P11_PIN_FILE"))).strip();
            List<String> cmd = List.of("pkcs11-tool", "--module", tokenEnv.get("P11_LIB"), "--token-label", tokenEnv.get("P11_TOKEN"),
                    "--login", "--pin", "env:USER_PIN", "--write-object", der.toString(), "--type", "cert",
                    "--id", java.util.HexFormat.of().formatHex(caId.getBytes(StandardCharsets.US_ASCII)),
                    "--label", cert.getSubjectX500Principal().getName());
            Cli.Result r = Cli.run(cmd, Map.of("SOFTHSM2_CONF", tokenEnv.get("SOFTHSM2_CONF"), "USER_PIN", pin), der.getParent(), null);
            Files.delete(der);
            if (r.exit() != 0) throw new AssertionError("pkcs11-tool --write-object failed:\n" + r);
        } catch (IOException | java.security.cert.CertificateEncodingException e) {
            throw new AssertionError(e);
        }
    }

    public String userPinForTests() {
        return pin;
    }

    public byte[] pinBytes() {
        return pin.getBytes(StandardCharsets.US_ASCII);
    }
}
