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

    public static boolean exists(Path p) {
        return Files.exists(p, LinkOption.NOFOLLOW_LINKS);
    }
}
