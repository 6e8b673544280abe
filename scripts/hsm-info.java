///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.util.ArrayList;
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
        Map<String, Hsm.CaCertificates> caIds = HsmInventory.caIds(hsm, all);
        List<Map<String, Object>> objects = new ArrayList<>();
        for (Hsm.Obj o : all) objects.add(HsmInventory.describe(hsm, o, caIds, out));
        out.put("objects", objects);
        out.say("%d object(s)", objects.size());
        for (Map<String, Object> m : objects) out.say(HsmInventory.line(m));
        HsmInventory.copies(caIds, out);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new HsmInfo()).execute(args));
    }
}
