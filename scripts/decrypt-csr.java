///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Path;
import java.security.PublicKey;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "decrypt-csr", mixinStandardHelpOptions = true,
        description = "Decrypt istiod's CSR (Secret istio-ca-cert-csr) with the KEK in the HSM (guide: 'Firma del certificado para Istio').")
class DecryptCsr extends Step {
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.Kube kube;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source from;

    static class Source {
        @Option(names = {"-f", "--file"}, paramLabel = "JSON", description = "The Secret's data as the guide saves it: "
                + "kubectl get secret istio-ca-cert-csr -n istio-system -o jsonpath={.data} > encrypted_csr.json")
        Path file;

        @Option(names = "--from-secret", description = "Read Secret istio-ca-cert-csr from the cluster instead.")
        boolean secret;
    }

    @Mixin Opts.IstioNamespace ns;

    @Mixin Opts.Kek kek;

    @Option(names = {"-o", "--output"}, defaultValue = "csr.pem", paramLabel = "CSR_PEM", description = "Where to write the CSR (default ${DEFAULT-VALUE}).")
    Path output;

    @Option(names = "--replace", description = "Overwrite an output file that holds another CSR.")
    boolean replace;

    @Override
    protected void run() throws Exception {
        KmsPlugin.EncryptedCsr encrypted;
        if (from.file != null) {
            String text = Env.readText(from.file, "encrypted CSR file", "text", "save it with kubectl get secret "
                    + Istio.CSR_SECRET + " -n " + ns.name + " -o jsonpath={.data} > encrypted_csr.json");
            encrypted = KmsPlugin.EncryptedCsr.fromKubectl(text, from.file.toString());
        } else {
            encrypted = KmsPlugin.EncryptedCsr.fromCluster(kube(), ns.name);
        }
        out.put("kekId", encrypted.kekId()).put("csrId", encrypted.csrId());
        Hsm hsm = hsm();
        if (hsm == null)
            throw Fail.failed("the embedded HSM token does not exist yet, so it holds no KEK",
                    "set P11_LIB, P11_TOKEN and P11_PIN_FILE to the slot istiod's plugin uses");
        KmsPlugin.Csr csr = KmsPlugin.decrypt(hsm, encrypted, kek.id);
        PublicKey key = Pki.publicKey(csr.request());
        String subject = Pki.subject(csr.request());
        out.put("subject", subject).put("key", Pki.keyDescription(key)).put("keyBits", Pki.keyBits(key)).put("output", output.toString())
                .put("dekIvBytes", csr.dekIvBytes());
        out.say("CSR from istiod (trust domain %s, KEK %s): subject %s, key %s", csr.csrId(), csr.kekId(), subject, Pki.keyDescription(key));
        out.say("  its DEK was opened in the HSM (encrypted-dek: %s)", csr.dekFormat());
        Pki.writePem(out, output, Pki.pem(csr.request()), replace, "CSR");
        // decrypt-csr's HSM and cluster options are the plugin's: sign-csr works on the root's slot
        out.next("the security administrator signs it: sign-csr --csr " + Out.shellWord(output.toString()) + " --root-cert root.pem --root-key-label <label>");
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new DecryptCsr()).execute(args));
    }
}
