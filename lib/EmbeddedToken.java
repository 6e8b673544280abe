package asmhsm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * The embedded default HSM: a SoftHSM2 token under the toolkit's home, made on first
 * use with a random PIN in a 0600 file. For trying the procedure without a Luna HSM;
 * {@link Hsm#open} uses it when no P11_LIB is given.
 */
final class EmbeddedToken {
    /** The token's label unless P11_TOKEN names another. */
    static final String LABEL = "asm-hsm";
    static final String[] SOFTHSM_LIBS = {
            "/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
            "/usr/local/lib/softhsm/libsofthsm2.so", "/usr/lib64/pkcs11/libsofthsm2.so",
            "/opt/homebrew/lib/softhsm/libsofthsm2.so"};

    final String lib;
    final String token;
    final Path pinFile;

    private EmbeddedToken(String lib, String token, Path pinFile) {
        this.lib = lib;
        this.token = token;
        this.pinFile = pinFile;
    }

    static EmbeddedToken ensure(Opts.Pkcs11 o, Out out) {
        String lib = null;
        for (String c : SOFTHSM_LIBS) if (Files.isRegularFile(Path.of(c))) { lib = c; break; }
        if (lib == null)
            throw Fail.badInput("no P11_LIB set and SoftHSM2 (the embedded default) is not installed",
                    "export P11_LIB=<path to libCryptoki2.so>, or install SoftHSM2: run tests/install (or apt-get install softhsm2 opensc)");
        Path dir = Env.home().resolve("softhsm");
        String token = o.token != null && !o.token.isBlank() ? o.token : LABEL;
        Path pinFile = o.pinFile != null ? o.pinFile : dir.resolve("pin");
        // SoftHSM2 reads its configuration at load time from SOFTHSM2_CONF or, unset,
        // ~/.config/softhsm2/softhsm2.conf: the JVM cannot set the variable, so use that file.
        Path conf = Env.get("SOFTHSM2_CONF") != null ? Path.of(Env.get("SOFTHSM2_CONF"))
                : Env.userHome().resolve(".config/softhsm2/softhsm2.conf");
        // Made before: the PIN file is ours. Otherwise never make a second token under a taken label.
        if (Files.isRegularFile(conf) && Files.exists(pinFile)) return new EmbeddedToken(lib, token, pinFile);
        if (Files.isRegularFile(conf) && listing(lib, conf).contains("token label        : " + token + "\n"))
            throw Fail.badInput("SoftHSM2 already has a token '" + token + "' but " + pinFile + " is missing",
                    "set P11_TOKEN and P11_PIN_FILE for that token, or choose another label with --p11-token");
        if (out.dryRun()) {
            out.change("create the embedded SoftHSM2 token '" + token + "' (PIN in " + pinFile + ")");
            return null;
        }
        try {
            create(lib, conf, dir, token, pinFile, out);
        } catch (IOException | InterruptedException e) {
            throw Fail.failed("cannot create the embedded SoftHSM2 token: " + e.getMessage(),
                    "check that pkcs11-tool (OpenSC) is installed and " + dir + " is writable");
        }
        return new EmbeddedToken(lib, token, pinFile);
    }

    static void create(String lib, Path conf, Path dir, String token, Path pinFile, Out out)
            throws IOException, InterruptedException {
        Path tokens = dir.resolve("tokens");
        Files.createDirectories(tokens, java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                java.nio.file.attribute.PosixFilePermissions.fromString("rwx------")));
        if (!Files.exists(conf)) {
            Env.writeFile(conf, ("# written by asm-hsm for its embedded default token\n"
                    + "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n")
                    .getBytes(StandardCharsets.UTF_8), "rw-------");
        }
        String pin = randomPin();
        String soPin = randomPin();
        if (!Files.exists(pinFile)) Env.writeSecret(pinFile, pin.getBytes(StandardCharsets.US_ASCII));
        else pin = new String(Env.readSecret(pinFile, "HSM PIN", null), StandardCharsets.US_ASCII);
        Env.writeSecret(dir.resolve("so-pin"), soPin.getBytes(StandardCharsets.US_ASCII));
        // pkcs11-tool takes PINs from its environment ("env:NAME"), so none is on a command line.
        // SoftHSM2 always keeps one uninitialised slot: the token goes there
        run(lib, conf, pin, soPin, "--init-token", "--slot", freeSlot(lib, conf), "--label", token, "--so-pin", "env:ASM_SO_PIN");
        run(lib, conf, pin, soPin, "--token-label", token, "--login", "--login-type", "so",
                "--so-pin", "env:ASM_SO_PIN", "--init-pin", "--new-pin", "env:ASM_PIN");
        out.warn("created the embedded SoftHSM2 token '" + token + "' (config " + conf + ", PIN file " + pinFile
                + "); set P11_LIB, P11_TOKEN and P11_PIN_FILE to use a real HSM");
    }

    private static void run(String lib, Path conf, String pin, String soPin, String... args)
            throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("pkcs11-tool", "--module", lib));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("SOFTHSM2_CONF", conf.toString());
        pb.environment().put("ASM_PIN", pin);
        pb.environment().put("ASM_SO_PIN", soPin);
        Process p = pb.start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) throw new IOException("pkcs11-tool " + args[0] + " failed: " + log.trim());
    }

    static String listing(String lib, Path conf) {
        try {
            ProcessBuilder pb = new ProcessBuilder("pkcs11-tool", "--module", lib, "--list-slots").redirectErrorStream(true);
            pb.environment().put("SOFTHSM2_CONF", conf.toString());
            Process p = pb.start();
            String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor();
            return text.replace("\r", "") + "\n";
        } catch (IOException | InterruptedException e) {
            throw Fail.failed("cannot run pkcs11-tool: " + e.getMessage(), "install OpenSC (apt-get install opensc)");
        }
    }

    /** The uninitialised slot, from pkcs11-tool's listing (this JVM must not load SoftHSM2 before the token exists). */
    private static String freeSlot(String lib, Path conf) throws IOException {
        String slot = null;
        for (String line : listing(lib, conf).split("\n")) {
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("^Slot \\d+ \\((0x[0-9a-fA-F]+)\\)").matcher(line);
            if (m.find()) slot = m.group(1);
            else if (slot != null && line.contains("token state") && line.contains("uninitialized")) return slot;
        }
        throw new IOException("SoftHSM2 shows no free slot");
    }

    private static String randomPin() {
        byte[] b = new byte[12];
        new SecureRandom().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }
}
