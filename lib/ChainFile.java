package asmhsm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Date;
import java.util.HashSet;
import java.util.List;

/**
 * cert-chain.pem, the file sign-csr writes and upload-chain uploads: the CA certificate first, the root last,
 * PEM blocks only, in the form istiod splits (its canonical form, {@link Pki#chainPem}).
 */
public final class ChainFile {
    private ChainFile() {}

    /** Why an existing file is not a valid chain for this CSR and root; null when it is. */
    public static String whyNot(Path file, Pki.Csr csr, X509Certificate root) {
        List<X509Certificate> certs;
        try {
            certs = Pki.certificates(file, "existing chain");
        } catch (Fail f) {
            return f.getMessage();
        }
        if (certs.size() != 2 || !certs.get(1).equals(root)) return "it is not one CA certificate followed by this root";
        X509Certificate ca = certs.get(0);
        if (!Pki.sameKey(ca.getPublicKey(), Pki.publicKey(csr)) || !Arrays.equals(Pki.subjectDer(ca), csr.subjectDer()))
            return "its CA certificate is for another CSR";
        if (!Pki.isCa(ca)) return "its first certificate is not a CA";
        return Pki.chainProblem(Pki.ChainRules.ISTIOD, certs, certs.get(certs.size() - 1), new Date(), "the chain");
    }

    /**
     * A file that holds the right chain in another form is rewritten in canonical form, saying whether istiod
     * would have refused it; true when it was (false: it is canonical already).
     */
    private static boolean canonicalise(Out out, Path file) throws IOException {
        byte[] held = Files.readAllBytes(file);
        String canonical = Pki.chainPem(Pki.certificates(file, "existing chain"));
        if (Arrays.equals(held, canonical.getBytes(StandardCharsets.US_ASCII))) return false;
        String refusal = Istio.splitProblem(held);
        out.say("%s holds this CSR's chain, but not in canonical form%s", file, refusal == null ? "" : " (istiod would refuse it: " + refusal + ")");
        Pki.writePem(out, file, canonical, true, "CA certificate and root");
        return true;
    }

    /**
     * Whether `file` holds this CSR's chain already, so that there is nothing to sign: said (with its certificate's
     * identity, `cluster` naming where it is for), or rewritten in canonical form. No file, or another chain with
     * `replace`, is false; another chain without `replace` fails (exit 1).
     */
    public static boolean holdsAlready(Out out, Path file, Pki.Csr csr, X509Certificate root, boolean replace, Opts.Cluster cluster)
            throws IOException {
        if (!Files.exists(file)) return false;
        String why = whyNot(file, csr, root);
        if (why != null) {
            if (!replace) throw Fail.failed(file + " already exists and is not this CSR's chain (" + why + ")", "pass --replace to overwrite it, or -o to write elsewhere");
            return false;
        }
        if (canonicalise(out, file)) return true;
        Pki.Identity held = Pki.identity(Pki.certificates(file, "existing chain").get(0));
        out.put("identity", cluster.identity(held));
        out.say("%s already holds a CA certificate for this CSR issued by '%s' (%s%s); nothing to do (renew-ca renews it)", file,
                Pki.goName(Pki.subjectDer(root)), held.text(), cluster.forCluster());
        return true;
    }

    /** A chain file as given to upload: its bytes, its certificates (the root last), and whether the operator was told of a change of form. */
    public record Given(byte[] bytes, List<X509Certificate> chain, boolean told) {}

    /**
     * Reads a chain to upload. istiod refuses a root first, a trailing blank line, text after the last block:
     * what is uploaded is the canonical form, and the operator is told what changed. Only the root is bad input.
     */
    public static Given read(Out out, Path file) {
        byte[] given;
        try {
            given = Files.readAllBytes(file);
        } catch (IOException e) {
            throw Fail.badInput("cannot read " + file + ": " + e.getMessage(), "give the cert-chain.pem that sign-csr wrote");
        }
        List<X509Certificate> chain = new ArrayList<>(Pki.certificates(file, "certificate chain"));
        String refusal = Istio.splitProblem(given);
        if (chain.size() > 1 && Pki.selfSigned(chain.get(0)) && !Pki.selfSigned(chain.get(chain.size() - 1))) {
            Collections.reverse(chain);
            out.warn(file + " has the root first, an order istiod refuses (error spliting the cert chain): uploading it reversed, "
                    + "the CA certificate first and the root last");
        } else if (refusal != null) {
            out.warn("istiod would refuse " + file + " as it is (" + refusal + ": error spliting the cert chain): "
                    + "uploading its certificates in canonical form");
        }
        if (chain.size() == 1 && Pki.selfSigned(chain.get(0)))
            throw Fail.badInput(file + " holds only the root '" + Pki.name(chain.get(0)) + "'; istiod needs its CA certificate first",
                    "give the cert-chain.pem that sign-csr wrote");
        return new Given(given, chain, refusal != null);
    }

    /** Whether a PEM text holds these certificates and no other, whatever its form and order. */
    public static boolean sameCertificates(byte[] pem, List<X509Certificate> chain) {
        try {
            List<X509Certificate> held = Pki.certificates(Pki.pemBlocks(new String(pem, StandardCharsets.UTF_8), "Secret"), "Secret");
            return held.size() == chain.size() && new HashSet<>(held).equals(new HashSet<>(chain));
        } catch (Fail f) {
            return false;
        }
    }
}
