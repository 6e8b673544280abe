package asmhsm;

import java.security.cert.X509Certificate;
import java.util.List;
import sun.security.pkcs11.wrapper.PKCS11Exception;

/**
 * The root certificate import-ca keeps on the token under a CA ID, as istiod's HSM plugin finds it
 * (by CKA_ID alone): the certificates there, checked; the root put in place of others; the identical
 * copies the plugin's own import-ca adds, removed down to one.
 */
final class RootOnToken {
    private RootOnToken() {}

    /** The certificates under `caId`, refusing when a non-certificate object holds that ID too; their count is the result's `copies`. */
    static Hsm.CaCertificates certificates(Hsm hsm, String caId, Out out) throws PKCS11Exception {
        List<Hsm.Obj> same = hsm.byId(Hsm.ascii(caId));
        Hsm.CaCertificates certs = hsm.caCertificates(caId);
        out.put("copies", certs.copies());
        if (same.size() != certs.copies())
            throw Fail.failed("token '" + hsm.tokenLabel + "' holds a non-certificate object with ID " + caId,
                    "choose another --ca-id; see hsm-info");
        return certs;
    }

    /** Stores `root` under `caId`, then removes the certificates it replaces: creating first never leaves the token without a root. */
    static void put(Hsm hsm, String caId, X509Certificate root, Hsm.CaCertificates replaced) throws Exception {
        long created = hsm.importCertificate(caId, Pki.goName(Pki.subjectDer(root)), root.getEncoded(), Pki.subjectDer(root),
                Pki.issuerDer(root), Pki.serialDer(root.getSerialNumber()));
        for (Hsm.Obj old : replaced.objects()) if (old.handle() != created) hsm.destroy(old.handle());
    }

    /** The root is stored, in one or more identical copies: nothing to import; `dedupe` keeps one. */
    static void stored(Hsm hsm, Hsm.CaCertificates certs, boolean dedupe, Out out) throws Exception {
        String caId = certs.caId();
        String name = Pki.goName(Pki.subjectDer(Pki.certificate(certs.der(), "the root stored as CA " + caId)));
        out.put("subject", name).put("sha256", Pki.sha256Hex(certs.der()));
        List<Hsm.Obj> extra = certs.extraCopies();
        if (!dedupe || extra.isEmpty()) {
            out.say("root '%s' is already stored as CA %s on token '%s'%s", name, caId, hsm.tokenLabel, certs.copiesNote());
            if (!extra.isEmpty())
                out.say("  the plugin's import-ca adds a copy per call; import-ca --dedupe keeps one (the plugin works with either)");
            else if (dedupe) out.say("no extra copies: nothing to dedupe");
            out.put("removed", 0);
            return;
        }
        if (!out.dryRun()) for (Hsm.Obj o : extra) hsm.destroy(o.handle());
        out.put("removed", extra.size());
        out.change((out.dryRun() ? "remove " : "removed ") + extra.size() + " extra identical cop" + (extra.size() == 1 ? "y" : "ies")
                + " of root '" + name + "' under CA " + caId + " on token '" + hsm.tokenLabel + "'; one remains");
    }
}
