///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "rotate-ca", mixinStandardHelpOptions = true,
        description = "Rotate the Istio CA key: keep istiod's three CA Secrets in a backup Secret istio-ca-backup-<time>, remove them"
                + " (istio-ca-cert, then istio-ca-cert-csr, then istio-ca-encrypted-key), and restart istiod, which makes a new"
                + " key and CSR. The security administrator then signs it (decrypt-csr, sign-csr, upload-chain); run rotate-ca"
                + " again to finish: once istiod loaded the new chain, the backup goes. --new-kek makes a new KEK first.")
class RotateCa extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.IstioNamespace ns;
    @Mixin Opts.Kek kek;

    @Option(names = "--new-kek", description = "Make a new KEK first (as gen-kek --new); install-asm with its ID then restarts istiod under it.")
    boolean newKek;

    @Option(names = "--delete-old-kek", description = "When finishing, destroy the old KEK in the HSM, unless a cluster of the kubeconfig still names it.")
    boolean deleteOldKek;

    @Option(names = "--again", description = "Rotate a key that rotate-ca made already.")
    boolean again;

    @Option(names = "--revision", paramLabel = "REV", converter = Opts.RevisionConverter.class, description = "Restart only istiod of this revision (default: every istiod Deployment).")
    String revision;

    @Override
    protected void run() throws Exception {
        Kube k = kube();
        out.put("namespace", ns.name);
        CaRotation rotation = new CaRotation(k, out, ns.name, revision, this::hsm);
        Secret backup = CaBackup.pending(k, ns.name);
        if (backup == null) {
            if (deleteOldKek) throw Fail.badInput("--delete-old-kek goes with finishing a rotation", "start it without; give --delete-old-kek to the run that finishes it");
            rotation.start(again, newKek, kek.id);
            return;
        }
        String name = backup.getMetadata().getName();
        out.put("backup", name).put("oldKekId", CaBackup.oldKek(backup));
        if (newKek) throw Fail.badInput("a rotation is pending (backup " + name + "): --new-kek starts one", "finish it first: rotate-ca");
        rotation.goOn(backup, deleteOldKek, kube);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new RotateCa()).execute(args));
    }
}
