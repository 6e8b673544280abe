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
        description = "Generate the HSM key-encryption key (KEK) istiod's HSM plugin uses (guide: 'Genera una KEK'). With "
                + "--kek-id, that KEK, made once. Without, a KEK with a random UUID if the token holds none; the one it holds "
                + "if there is one; several are listed and refused unless --new.")
class GenKek extends Step {
    @Mixin Opts.Pkcs11 p11;

    @Mixin Opts.Kek kek;

    @Option(names = "--new", description = "Make another KEK with a new random ID even though the token already holds some.")
    boolean makeNew;

    @Override
    protected void run() throws Exception {
        if (makeNew && kek.id != null)
            throw Fail.badInput("--new makes a KEK with a new random ID, but a KEK ID is given (" + kek.id + ", --kek-id or KEK_ID)",
                    "drop --new (gen-kek --kek-id makes that KEK once), or unset KEK_ID to make another");
        boolean embedded = Hsm.isEmbedded(p11);
        out.put("embedded", embedded);
        // said before the token is opened, so a failure below still shows what was used
        if (embedded) out.warn(Hsm.notAnHsm(p11));
        if (kek.id != null) out.put("kekId", kek.id);
        Hsm hsm = hsm();
        if (hsm == null) {
            out.change("generate AES-256 KEK " + (kek.id != null ? kek.id : "with a new random ID"));
            return;
        }
        out.put("token", hsm.tokenLabel);
        String id = kek.id;
        if (id == null) {
            List<Hsm.Obj> keks = hsm.keks(null);
            out.put("existingKeks", keks.stream().map(Hsm.Obj::idText).toList());
            if (!makeNew && keks.size() == 1) {
                Hsm.Obj only = keks.get(0);
                hsm.requireStrongKek(only, only.idText());
                alreadyThere(only.idText(), hsm, " (the only KEK there; --new makes another)");
                return;
            }
            if (!makeNew && keks.size() > 1)
                throw Fail.badInput("token '" + hsm.tokenLabel + "' already holds " + keks.size() + " KEKs: "
                                + String.join(", ", keks.stream().map(Hsm.Obj::idText).toList()) + "; gen-kek will not guess which one istiod uses",
                        "pass the one to use: export KEK_ID=<ID> (or --kek-id); --new makes yet another");
            id = UUID.randomUUID().toString();
        } else {
            List<Hsm.Obj> keks = hsm.keks(id);
            if (keks.size() == 1 && hsm.byId(Hsm.ascii(id)).size() == 1) {
                hsm.requireStrongKek(keks.get(0), id);
                alreadyThere(id, hsm, "");
                return;
            }
        }
        List<Hsm.Obj> sameId = hsm.byId(Hsm.ascii(id));
        if (!sameId.isEmpty())
            throw Fail.failed("token '" + hsm.tokenLabel + "' already holds " + sameId.size() + " object(s) with ID " + id
                    + " that are not the plugin's KEK (" + Hsm.className(sameId.get(0).cls()) + ", label '"
                    + sameId.get(0).label() + "')", "choose another --kek-id; see hsm-info");
        if (out.dryRun()) {
            out.change("generate AES-256 KEK " + (kek.id == null ? "with a new random ID" : id) + " on token '" + hsm.tokenLabel + "'");
            return;
        }
        hsm.generateKek(id);
        out.put("kekId", id);
        out.change("generated AES-256 KEK on token '" + hsm.tokenLabel + "' (label " + Hsm.KEK_LABEL + ")");
        out.put("created", true);
        out.say("Record the KEK ID for install-asm: export KEK_ID=%s", id);
        if (!out.json()) System.out.println(id);
    }

    /** The KEK is there already: say so, and print its ID last (the runbook's $(... | tail -n 1) takes it). */
    private void alreadyThere(String id, Hsm hsm, String why) {
        out.put("kekId", id).put("created", false);
        out.say("KEK %s already exists on token '%s'%s", id, hsm.tokenLabel, why);
        if (!out.json()) System.out.println(id);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new GenKek()).execute(args));
    }
}
