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
        try (Hsm hsm = Hsm.open(p11, out)) {
            if (hsm == null) return;
            Map<String, Object> token = hsm.tokenInfo();
            out.put("token", token);
            out.say("library  %s%s", hsm.lib, hsm.embedded ? "  (embedded SoftHSM2 default)" : "");
            out.say("token    '%s'  slot %s  model %s  serial %s", token.get("label"), token.get("slot"),
                    token.get("model"), token.get("serial"));
            List<Map<String, Object>> objects = new ArrayList<>();
            for (Hsm.Obj o : hsm.all()) {
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
                } else {
                    m.putAll(hsm.keyFacts(o.handle()));
                }
                objects.add(m);
            }
            out.put("objects", objects);
            out.say("%d object(s)", objects.size());
            for (Map<String, Object> m : objects) {
                StringBuilder line = new StringBuilder("  ").append(m.get("class"));
                for (String k : List.of("role", "id", "label", "subject", "keyType", "bits", "sensitive", "extractable",
                        "neverExtractable", "notAfter"))
                    if (m.containsKey(k)) line.append("  ").append(k).append('=').append(m.get(k));
                out.say(line.toString());
            }
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new HsmInfo()).execute(args));
    }
}
