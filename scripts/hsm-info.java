///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(name = "hsm-info", mixinStandardHelpOptions = true,
        description = "Show the HSM library, slot, token, and the KEKs and certificates on it. Never a secret.")
class HsmInfo extends Step {
    @Mixin Opts.Pkcs11 p11;

    @Override
    protected void run() throws Exception {
        Hsm hsm = hsm();
        if (hsm == null) return;
        Map<String, Object> token = hsm.tokenInfo();
        out.put("token", token);
        out.say("library  %s%s", hsm.lib, hsm.embedded ? "  (embedded SoftHSM2 default)" : "");
        out.say("token    '%s'  slot %s  model %s  serial %s", token.get("label"), token.get("slot"),
                token.get("model"), token.get("serial"));
        List<Hsm.Obj> all = hsm.all();
        Map<String, Hsm.CaCertificates> caIds = caIds(hsm, all);
        List<Map<String, Object>> objects = new ArrayList<>();
        for (Hsm.Obj o : all) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("class", Hsm.className(o.cls()));
            m.put("label", o.label());
            m.put("id", o.idText());
            boolean kek = o.cls() == 4 /* CKO_SECRET_KEY */ && Hsm.KEK_LABEL.equals(o.label());
            if (kek) m.put("role", "kek");
            if (o.cls() == 1 /* CKO_CERTIFICATE */) {
                byte[] der = hsm.bytes(o.handle(), 0x11 /* CKA_VALUE */);
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
            objects.add(m);
        }
        out.put("objects", objects);
        out.say("%d object(s)", objects.size());
        for (Map<String, Object> m : objects) {
            StringBuilder line = new StringBuilder("  ").append(m.get("class"));
            for (String k : List.of("role", "id", "label", "subject", "keyType", "bits", "sensitive", "extractable",
                    "neverExtractable", "weakness", "notAfter", "copies"))
                if (m.containsKey(k)) line.append("  ").append(k).append('=').append(m.get(k));
            if (m.containsKey("copies")) line.append(Boolean.TRUE.equals(m.get("copiesIdentical")) ? " identical" : " differing");
            out.say(line.toString());
        }
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

    /** The certificate objects grouped by CA ID (as the plugin finds them: by CKA_ID alone), with their values. */
    static Map<String, Hsm.CaCertificates> caIds(Hsm hsm, List<Hsm.Obj> all) throws Exception {
        Map<String, List<Hsm.Obj>> objs = new LinkedHashMap<>();
        Map<String, List<byte[]>> values = new LinkedHashMap<>();
        for (Hsm.Obj o : all) {
            if (o.cls() != 1 /* CKO_CERTIFICATE */) continue;
            objs.computeIfAbsent(o.idText(), k -> new ArrayList<>()).add(o);
            values.computeIfAbsent(o.idText(), k -> new ArrayList<>()).add(hsm.bytes(o.handle(), 0x11 /* CKA_VALUE */));
        }
        Map<String, Hsm.CaCertificates> m = new LinkedHashMap<>();
        objs.forEach((id, list) -> m.put(id, new Hsm.CaCertificates(id, list, values.get(id))));
        return m;
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new HsmInfo()).execute(args));
    }
}
