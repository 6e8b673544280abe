///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//SOURCES preflight.java grant-admin.java gen-kek.java import-ca.java hsm-info.java k8s-vault-prep.java vault-setup.java vault-verify.java fetch-release.java control-plane-prep.java istiod-service.java install-asm.java istiod-status.java decrypt-csr.java sign-csr.java upload-chain.java verify-ca.java verify-mtls.java enable-injection.java external-ip.java status.java
//MAIN asmhsm.Asm
//CDS
package asmhsm;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Every step as a subcommand: `jbang asm@org gen-kek ...`. */
@Command(name = "asm", mixinStandardHelpOptions = true,
        description = "Anthos Service Mesh 1.9 with the Istiod CA key in a Luna HSM and HSM credentials in Vault: the guide's steps.",
        subcommands = {
                Preflight.class,
                GrantAdmin.class,
                GenKek.class,
                ImportCa.class,
                HsmInfo.class,
                K8sVaultPrep.class,
                VaultSetup.class,
                VaultVerify.class,
                FetchRelease.class,
                ControlPlanePrep.class,
                IstiodService.class,
                InstallAsm.class,
                IstiodStatus.class,
                DecryptCsr.class,
                SignCsr.class,
                UploadChain.class,
                VerifyCa.class,
                VerifyMtls.class,
                EnableInjection.class,
                ExternalIp.class,
                Status.class
        })
class Asm implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String... args) {
        System.exit(new CommandLine(new Asm()).execute(args));
    }
}
