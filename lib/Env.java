package asmhsm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * The guide's environment variables and the files that hold secrets. Secret files are
 * read only when private to their owner (as ssh does) and written mode 0600 from the start.
 */
public final class Env {
    private Env() {}

    public static String get(String name) {
        String v = System.getenv(name);
        return v == null || v.isBlank() ? null : v;
    }

    /** The toolkit's own home: embedded HSM token, defaults. */
    public static Path home() {
        String h = get("ASM_HSM_HOME");
        return h != null ? Path.of(h) : userHome().resolve(".asm-hsm");
    }

    /** $HOME as native libraries (SoftHSM2) see it, which may differ from Java's user.home. */
    public static Path userHome() {
        String h = get("HOME");
        return Path.of(h != null ? h : System.getProperty("user.home"));
    }

    /** Reads a secret file; refuses one that is missing, empty, or readable by others. */
    public static byte[] readSecret(Path file, String what, String envName) {
        String where = envName == null ? "" : " (" + envName + ")";
        if (file == null)
            throw Fail.badInput("no " + what + " file given" + where,
                    "put the " + what + " in a file only you can read and pass its path" + where);
        if (!Files.isRegularFile(file))
            throw Fail.badInput(what + " file " + file + " does not exist or is not a file",
                    "check the path" + where);
        try {
            Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file);
            if (perms.contains(PosixFilePermission.GROUP_READ) || perms.contains(PosixFilePermission.OTHERS_READ)
                    || perms.contains(PosixFilePermission.GROUP_WRITE) || perms.contains(PosixFilePermission.OTHERS_WRITE))
                throw Fail.badInput(what + " file " + file + " is accessible by others (mode "
                        + PosixFilePermissions.toString(perms) + ")", "run: chmod 600 " + file);
        } catch (UnsupportedOperationException | IOException e) {
            // not a POSIX file system: nothing to check
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw Fail.badInput("cannot read " + what + " file " + file + ": " + e.getMessage(), "check its owner and mode");
        }
        int n = bytes.length;
        while (n > 0 && (bytes[n - 1] == '\n' || bytes[n - 1] == '\r')) n--;
        if (n == 0) throw Fail.badInput(what + " file " + file + " is empty", "write the " + what + " into it");
        return n == bytes.length ? bytes : java.util.Arrays.copyOf(bytes, n);
    }

    public static char[] readSecretChars(Path file, String what, String envName) {
        byte[] b = readSecret(file, what, envName);
        char[] c = StandardCharsets.UTF_8.decode(java.nio.ByteBuffer.wrap(b)).array();
        java.util.Arrays.fill(b, (byte) 0);
        int n = c.length;
        while (n > 0 && c[n - 1] == 0) n--;
        return java.util.Arrays.copyOf(c, n);
    }

    /** Writes a file holding a secret: created 0600 before any byte goes in, replaced atomically. */
    public static void writeSecret(Path file, byte[] content) throws IOException {
        writeFile(file, content, "rw-------");
    }

    /** Writes a file atomically (temp file + rename) with the given permissions. */
    public static void writeFile(Path file, byte[] content, String perms) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = dir.resolve("." + file.getFileName() + ".tmp" + ProcessHandle.current().pid());
        Files.deleteIfExists(tmp);
        try {
            Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(perms)));
        } catch (FileAlreadyExistsException e) {
            throw e;
        } catch (UnsupportedOperationException e) {
            Files.createFile(tmp);
        }
        try {
            Files.write(tmp, content, StandardOpenOption.TRUNCATE_EXISTING);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    // A file given where another belongs may hold a secret (the PIN file as KUBECONFIG). A refusal
    // of an input file says what the file is not and how big it is, never what it holds; parsers'
    // messages quote what they could not parse, so they are never passed on.

    /** The bytes of a file given as input; a missing or unreadable one is refused by name. */
    public static byte[] readInput(Path file, String what, String hint) {
        if (file == null) throw Fail.badInput("no " + what + " given", hint);
        if (!Files.isRegularFile(file))
            throw Fail.badInput("cannot read " + what + " " + file + " (" + (Files.exists(file) ? "not a file" : "no such file") + ")", hint);
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw Fail.badInput("cannot read " + what + " " + file + " (" + reason(e) + ")", hint);
        }
    }

    /** The file as UTF-8 text; a binary one is refused as not `kind` ("text", "a kubeconfig"). */
    public static String readText(Path file, String what, String kind, String hint) {
        return text(file, readInput(file, what, hint), what, kind, hint);
    }

    /** PEM text: UTF-8 with a -----BEGIN line; anything else is refused as not PEM. */
    public static String readPem(Path file, String what, String hint) {
        byte[] bytes = readInput(file, what, hint);
        String text = text(file, bytes, what, "PEM text", hint);
        if (text.isBlank()) throw Fail.badInput(what + " " + file + " is empty", hint);
        if (!text.contains("-----BEGIN ")) throw notA(file, what, "PEM", bytes.length, "no -----BEGIN line", hint);
        return text;
    }

    private static String text(Path file, byte[] bytes, String what, String kind, String hint) {
        try {
            return StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw notA(file, what, kind, bytes.length, "binary", hint);
        }
    }

    /** "WHAT FILE is not KIND (N bytes, WHY)": what the file is not, and its size; WHY must not quote it. */
    public static Fail notA(Path file, String what, String kind, long size, String why, String hint) {
        return Fail.badInput(what + " " + file + " is not " + kind + " (" + size + (size == 1 ? " byte" : " bytes")
                + (why == null ? "" : ", " + why) + ")", hint);
    }

    /** Why a file could not be read, from the OS (its message is the path, never the contents). */
    static String reason(IOException e) {
        if (e instanceof java.nio.file.AccessDeniedException) return "permission denied";
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) return f.getReason();
        return e.getClass().getSimpleName();
    }

    public static boolean exists(Path p) {
        return Files.exists(p, LinkOption.NOFOLLOW_LINKS);
    }
}
