package asmhsm;

import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.Date;
import java.util.List;
import java.util.function.Supplier;

/**
 * The signing of istiod's CSR by the root (sign-csr, renew-ca): the CSR checked as istiod writes it, the
 * validity the root allows, and the new CA certificate checked as istiod and its HSM plugin will check it.
 */
public final class CaSigning {
    private CaSigning() {}

    /** istiod's CSR from `file`: its own signature verifies, its key is istiod's kind, its subject O=<trust domain> (unless `anySubject`). */
    public static Pki.Csr csr(Path file, boolean anySubject) {
        Pki.Csr csr = Pki.csr(file, "CSR");
        String subject = Pki.subject(csr);
        if (!Pki.csrSignatureValid(csr))
            throw Fail.badInput("the signature of the CSR '" + subject + "' does not verify with its own key",
                    "do not sign it: decrypt istiod's CSR again with decrypt-csr");
        Pki.requireIstioCaKey(csr);
        if (Pki.trustDomain(csr) == null && !anySubject)
            throw Fail.badInput("the CSR's subject '" + subject + "' is not O=<trust domain>, as istiod writes it",
                    "sign only istiod's CSR (decrypt-csr); --allow-any-subject overrides this check");
        return csr;
    }

    /** The root certificate in `file`, one that can be istiod's root. */
    public static X509Certificate root(Path file) {
        X509Certificate root = Pki.single(file, "root certificate");
        Pki.requireIstioRoot(root, "root certificate");
        return root;
    }

    /** `days` from now, never past the root's end (warned then). */
    public static Pki.Validity validity(Out out, X509Certificate root, int days) {
        Pki.Validity validity = Pki.istioCaValidity(root, days, Instant.now());
        if (validity.clamped()) out.warn("the root expires on " + validity.notAfter() + ": the CA certificate is valid until then, not " + days + " days");
        return validity;
    }

    /**
     * istiod's CA certificate for `csr`: signed with the root's key in `keyFile` (its password in `passFile`) when
     * given, else with the key labelled `keyLabel` in `hsm`. Null under --dry-run when the embedded token does not exist yet.
     */
    public static X509Certificate issue(Out out, Supplier<Hsm> hsm, String keyLabel, Path keyFile, Path passFile, Pki.Csr csr,
                                        X509Certificate root, Pki.Validity validity) throws Exception {
        if (keyFile != null) return RootKeyFile.issueIstioCa(out, keyFile, passFile, csr, root, validity);
        Hsm slot = hsm.get();
        if (slot == null) {
            out.change("sign with key '" + keyLabel + "' of the embedded token (it does not exist yet)");
            return null;
        }
        out.put("token", slot.tokenLabel);
        return slot.issueIstioCa(keyLabel, csr, root, validity);
    }

    /** Fails unless `ca` was signed by the key of `root` (read from `rootFile`) and istiod would take it, directly under that root. */
    public static void requireIssued(X509Certificate ca, X509Certificate root, Path rootFile) {
        try {
            ca.verify(root.getPublicKey());
        } catch (Exception e) {
            throw Fail.badInput("the root key does not match the root certificate '" + Pki.goName(Pki.subjectDer(root)) + "'",
                    "give the private key of " + rootFile + " (check --root-key-label / --root-key)");
        }
        String problem = Pki.chainProblem(Pki.ChainRules.ISTIOD, List.of(ca), root, new Date(), "the new chain");
        if (problem != null) throw Fail.failed("the new CA certificate would be refused by istiod: " + problem, "report this as a bug");
    }
}
