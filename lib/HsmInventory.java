package asmhsm;

import static sun.security.pkcs11.wrapper.PKCS11Constants.CKA_VALUE;
import static sun.security.pkcs11.wrapper.PKCS11Constants.CKO_CERTIFICATE;
import static sun.security.pkcs11.wrapper.PKCS11Constants.CKO_SECRET_KEY;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import sun.security.pkcs11.wrapper.PKCS11Exception;

/**
 * What hsm-info shows of a token: each object described by its class, label and ID, its role (KEK,
 * root), a key's facts or a certificate's, and the certificates grouped by CA ID. Never a secret.
 */
final class HsmInventory {
    private HsmInventory() {}

    /** The facts of a described object that its text line shows, in this order. */
    private static final List<String> SHOWN = List.of("role", "id", "label", "subject", "keyType", "bits", "sensitive",
            "extractable", "neverExtractable", "weakness", "notAfter", "copies");

    /** The certificate objects grouped by CA ID (as the plugin finds them: by CKA_ID alone), with their values. */
    static Map<String, Hsm.CaCertificates> caIds(Hsm hsm, List<Hsm.Obj> all) throws PKCS11Exception {
        Map<String, List<Hsm.Obj>> objs = new LinkedHashMap<>();
        Map<String, List<byte[]>> values = new LinkedHashMap<>();
        for (Hsm.Obj o : all) {
            if (o.cls() != CKO_CERTIFICATE) continue;
            objs.computeIfAbsent(o.idText(), k -> new ArrayList<>()).add(o);
            values.computeIfAbsent(o.idText(), k -> new ArrayList<>()).add(hsm.bytes(o.handle(), CKA_VALUE));
        }
        Map<String, Hsm.CaCertificates> m = new LinkedHashMap<>();
        objs.forEach((id, list) -> m.put(id, new Hsm.CaCertificates(id, list, values.get(id))));
        return m;
    }

    /** One object's facts, for the result; a weak KEK is also warned about on `out`. */
    static Map<String, Object> describe(Hsm hsm, Hsm.Obj o, Map<String, Hsm.CaCertificates> caIds, Out out) throws Exception {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("class", Hsm.className(o.cls()));
        m.put("label", o.label());
        m.put("id", o.idText());
        boolean kek = o.cls() == CKO_SECRET_KEY && Hsm.KEK_LABEL.equals(o.label());
        if (kek) m.put("role", "kek");
        if (o.cls() == CKO_CERTIFICATE) {
            byte[] der = hsm.bytes(o.handle(), CKA_VALUE);
            var cert = der == null ? null : Pki.certificate(der, "certificate " + o.idText());
            if (cert != null) {
                m.put("role", Hsm.DEFAULT_CA_ID.equals(o.idText()) ? "root-ca (default CA ID)" : "certificate");
                m.put("subject", Pki.goName(cert.getSubjectX500Principal().getEncoded()));
                m.put("notAfter", cert.getNotAfter().toInstant().toString());
                m.put("sha256", Pki.sha256Hex(der));
            }
            Hsm.CaCertificates same = caIds.get(o.idText());
            if (same.copies() > 1) m.put("copies", same.copies());
            if (same.copies() > 1) m.put("copiesIdentical", same.identical());
        } else {
            m.putAll(hsm.keyFacts(o.handle()));
        }
        if (kek) {
            String weakness = hsm.kekWeakness(o.handle());
            m.put("weak", weakness != null);
            if (weakness != null) {
                m.put("weakness", weakness);
                out.warn(hsm.weakKekMessage(o.idText(), weakness) + "; " + Hsm.weakKekHint(o.idText()));
            }
        }
        return m;
    }

    /** A described object as one text line. */
    static String line(Map<String, Object> m) {
        StringBuilder line = new StringBuilder("  ").append(m.get("class"));
        for (String k : SHOWN)
            if (m.containsKey(k)) line.append("  ").append(k).append('=').append(m.get(k));
        if (m.containsKey("copies")) line.append(Boolean.TRUE.equals(m.get("copiesIdentical")) ? " identical" : " differing");
        return line.toString();
    }

    /** Says which CA IDs hold several certificates: identical copies (the plugin's import-ca), or differing ones (a warning). */
    static void copies(Map<String, Hsm.CaCertificates> caIds, Out out) {
        for (Hsm.CaCertificates c : caIds.values()) {
            if (c.copies() < 2) continue;
            if (c.identical())
                out.say("CA ID %s: root stored in %d identical copies (the plugin's import-ca adds one per call; "
                        + "import-ca --dedupe --ca-id %s keeps one)", c.caId(), c.copies(), c.caId());
            else
                out.warn("CA ID " + c.caId() + ": " + c.copies() + " certificates that differ (" + c.distinct()
                        + " different values); the plugin may verify against any: keep one with import-ca -f ROOT_PEM --replace --ca-id " + c.caId());
        }
    }
}
