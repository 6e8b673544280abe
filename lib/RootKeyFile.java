package asmhsm;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.Arrays;

/**
 * A root's private key in a PEM or PKCS#12 file, mode 0600 (sign-csr --root-key; discouraged: root keys belong
 * in an HSM). Read only to sign, its bytes and password wiped after.
 */
public final class RootKeyFile {
    private RootKeyFile() {}

    /** istiod's CA certificate for `csr`, signed with the key in `file` (its password in `passFile`, or none). */
    public static X509Certificate issueIstioCa(Out out, Path file, Path passFile, Pki.Csr csr, X509Certificate root, Pki.Validity validity) {
        out.warn("the root's private key is read from a file; keep root keys in an HSM (--root-key-label)");
        Env.readSecret(file, "root private key", null); // refuses a key file others can read
        char[] pass = passFile == null ? null : Env.readSecretChars(passFile, "root key password", null);
        byte[] content;
        try {
            content = Files.readAllBytes(file); // raw: readSecret trims newlines, which would cut a PKCS#12 file
        } catch (java.io.IOException e) {
            throw Fail.badInput("cannot read " + file + ": " + e.getMessage(), "check the path");
        }
        try {
            return Pki.issueIstioCa(csr, root, Pki.signer(Pki.privateKey(content, pass, "root key file " + file)), validity.notBefore(),
                    validity.notAfter(), Pki.randomSerial());
        } finally {
            Arrays.fill(content, (byte) 0);
            if (pass != null) Arrays.fill(pass, '\0');
        }
    }
}
