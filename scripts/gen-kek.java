///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.util.List;
import java.util.UUID;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "gen-kek", mixinStandardHelpOptions = true,
        description = "Generate the HSM key-encryption key (KEK) istiod's HSM plugin uses; with no --kek-id, a random UUID (guide: 'Genera una KEK').")
class GenKek extends Step {
    @Mixin Opts.Pkcs11 p11;

    @Mixin Opts.Kek kek;

    @Override
    protected void run() throws Exception {
        String id = kek.id != null ? kek.id : UUID.randomUUID().toString();
        if (kek.id != null || !out.dryRun()) out.put("kekId", id); // no made-up ID in a dry run
        try (Hsm hsm = Hsm.open(p11, out)) {
            if (hsm == null) { out.change("generate AES-256 KEK " + id); return; }
            out.put("token", hsm.tokenLabel);
            List<Hsm.Obj> keks = hsm.keks(id);
            List<Hsm.Obj> sameId = hsm.byId(Hsm.ascii(id));
            if (keks.size() == 1 && sameId.size() == 1) {
                hsm.requireStrongKek(keks.get(0), id);
                out.put("created", false);
                out.say("KEK %s already exists on token '%s'", id, hsm.tokenLabel);
                if (!out.json()) System.out.println(id);
                return;
            }
            if (!sameId.isEmpty())
                throw Fail.failed("token '" + hsm.tokenLabel + "' already holds " + sameId.size() + " object(s) with ID " + id
                        + " that are not the plugin's KEK (" + Hsm.className(sameId.get(0).cls()) + ", label '"
                        + sameId.get(0).label() + "')", "choose another --kek-id; see hsm-info");
            if (out.dryRun()) {
                out.change("generate AES-256 KEK " + (kek.id == null ? "with a new random ID" : id) + " on token '" + hsm.tokenLabel + "'");
                return;
            }
            hsm.generateKek(id);
            out.change("generated AES-256 KEK on token '" + hsm.tokenLabel + "' (label " + Hsm.KEK_LABEL + ")");
            out.put("created", true);
            out.say("Record the KEK ID for install-asm: export KEK_ID=%s", id);
            if (!out.json()) System.out.println(id);
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new GenKek()).execute(args));
    }
}
