///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//SOURCES preflight.java grant-admin.java gen-kek.java import-ca.java hsm-info.java k8s-vault-prep.java vault-setup.java vault-verify.java fetch-release.java control-plane-prep.java istiod-service.java install-asm.java istiod-status.java decrypt-csr.java sign-csr.java upload-chain.java verify-ca.java verify-mtls.java enable-injection.java external-ip.java status.java
//MAIN asmhsm.Asm
//CDS
package asmhsm;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Every step as a subcommand: `jbang asm@org gen-kek ...`. */
@Command(name = "asm", mixinStandardHelpOptions = true,
        description = "Anthos Service Mesh 1.9 with the Istiod CA key in a Luna HSM and HSM credentials in Vault: the guide's steps.",
        subcommands = {
                Asm.Run.class,
                Asm.WarmUp.class,
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

    /**
     * Loads what the steps load (fabric8 and its model, the Vault driver, Bouncy Castle,
     * Jackson, every step's options) without touching a server. JBang writes the class-data
     * archive (//CDS) from the first run after a build: tests/install makes this that run, so
     * the archive serves the cluster and Vault steps, not only the first command typed.
     */
    @Command(name = "warm-up", hidden = true, description = "Load the toolkit's classes once (for the CDS archive).")
    static class WarmUp implements Callable<Integer> {
        @Override
        public Integer call() throws Exception {
            CommandLine cl = new CommandLine(new Asm());
            for (CommandLine sub : cl.getSubcommands().values()) sub.getUsageMessage();
            var config = new io.fabric8.kubernetes.client.ConfigBuilder().withMasterUrl("https://127.0.0.1:1").build();
            try (var client = new io.fabric8.kubernetes.client.KubernetesClientBuilder().withConfig(config).build()) {
                client.getKubernetesSerialization().asYaml(Kube.istiodService("asm-198-6"));
                client.namespaces().withName("warm-up");
                client.secrets().inNamespace("warm-up").withName("warm-up");
            }
            new io.github.jopenlibs.vault.VaultConfig().address("https://127.0.0.1:1").token("x").build();
            java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance("EC");
            g.initialize(256);
            var key = g.generateKeyPair();
            var name = new org.bouncycastle.asn1.x500.X500Name("O=warm-up");
            var csr = new org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder(name, key.getPublic())
                    .build(new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withECDSA").build(key.getPrivate()));
            Pki.pemBlocks(Pki.pem("CERTIFICATE REQUEST", csr.getEncoded()), "warm-up");
            Out.toJson(java.util.Map.of("warm", "up"));
            return 0;
        }
    }

    /**
     * Several steps in one process, for chains operators run together: one JVM start,
     * one class loading, instead of one per step.
     */
    @Command(name = "run", description = {
            "Run several steps in one process, in order, stopping at the first that fails.",
            "Steps are separated by a lone '+', e.g.:",
            "  asm run k8s-vault-prep --cluster-suffix c1 + vault-setup --cluster-suffix c1 ... + vault-verify --cluster-suffix c1"})
    static class Run implements Callable<Integer> {
        @CommandLine.Unmatched
        List<String> words = new ArrayList<>();

        @Override
        public Integer call() {
            List<List<String>> steps = new ArrayList<>();
            List<String> current = new ArrayList<>();
            for (String w : words) {
                if (w.equals("+")) { steps.add(current); current = new ArrayList<>(); } else current.add(w);
            }
            steps.add(current);
            for (List<String> step : steps)
                if (step.isEmpty() || step.get(0).startsWith("-") || step.get(0).equals("run")) {
                    System.err.println("error: 'asm run' takes steps separated by '+', each starting with the step's name");
                    System.err.println("  -> e.g. asm run gen-kek + import-ca -f root.pem");
                    return 2;
                }
            for (List<String> step : steps) {
                int rc = new CommandLine(new Asm()).execute(step.toArray(String[]::new));
                if (rc != 0) return rc;
            }
            return 0;
        }
    }
}
