package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The guide's CA signing, end to end and twice, as an operator runs it: gen-kek, import-ca,
 * istiod's start-up (the stand-in), the guide's own kubectl command to save the CSR Secret,
 * decrypt-csr, sign-csr with the root key in the HSM, upload-chain; then istiod loads the
 * chain. The second run must change nothing anywhere.
 */
@ExtendWith(LabExtension.class)
class CaFlowTest {
    static final String KEK = "7651a4ea-eeb7-4c1f-927b-8c871c2127aa";
    @TempDir Path tmp;

    @Test
    void theWholeFlowTwiceAndTheSecondRunChangesNothing(Lab lab) throws Exception {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        String ns = lab.freshNamespace();
        Map<String, String> env = new HashMap<>(t.env());
        env.put("KUBECONFIG", lab.kubeconfig().toString());
        env.put("KEK_ID", KEK);
        // the security administrator's root: key generated in the token by pkcs11-tool
        Path root = SignCsrTest.hsmRsaRoot(t, tmp, "mesh-root", "CN=Mesh Root CA,O=Example", Duration.ofDays(3650));

        IstiodStandIn istiod = null;
        Map<String, String> firstRun = null;
        for (int run = 1; run <= 2; run++) {
            List<String> changed = new ArrayList<>();
            step(env, changed, "gen-kek");
            step(env, changed, "import-ca", "-f", root.toString());
            if (istiod == null) istiod = IstiodStandIn.start(t, KEK, "cluster.local");
            istiod.writeSecret(lab.admin(), ns); // a restarted istiod finds its CSR and keeps it

            // the guide: kubectl get secret istio-ca-cert-csr -n istio-system -o jsonpath={.data} > encrypted_csr.json
            Cli.Result saved = Cli.run(List.of("kubectl", "get", "secret", "istio-ca-cert-csr", "-n", ns, "-o", "jsonpath={.data}"),
                    Map.of("KUBECONFIG", lab.kubeconfig().toString()), tmp, null);
            assertThat(saved.exit()).as(saved.toString()).isZero();
            Files.writeString(tmp.resolve("encrypted_csr.json"), saved.stdout());
            step(env, changed, "decrypt-csr", "-f", "encrypted_csr.json", "-o", "csr.pem");
            step(env, changed, "decrypt-csr", "--from-secret", "-n", ns, "-o", "csr-from-secret.pem");
            step(env, changed, "sign-csr", "--csr", "csr.pem", "--root-cert", root.toString(), "--root-key-label", "mesh-root",
                    "-o", "cert-chain.pem");
            step(env, changed, "upload-chain", "-f", "cert-chain.pem", "-n", ns);

            istiod.loadChain(lab.admin(), ns, t, Hsm.DEFAULT_CA_ID);
            assertThat(Files.readString(tmp.resolve("csr-from-secret.pem"))).isEqualTo(Files.readString(tmp.resolve("csr.pem")));
            Map<String, String> state = state(lab, ns, t);
            if (run == 1) {
                assertThat(changed).containsExactly("gen-kek", "import-ca", "decrypt-csr", "decrypt-csr", "sign-csr", "upload-chain");
                firstRun = state;
            } else {
                assertThat(changed).as("steps that changed something on the second run").isEmpty();
                assertThat(state).isEqualTo(firstRun);
            }
        }
    }

    /** Runs a step in tmp with --json; records it in `changed` when it changed something. */
    void step(Map<String, String> env, List<String> changed, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.add("--json");
        Cli.Result r = Cli.asm(env, tmp, all.toArray(String[]::new));
        assertThat(r.exit()).as(String.join(" ", args) + "\n" + r).isZero();
        if (r.stdout().contains("\"changed\" : true")) changed.add(args[0]);
        else assertThat(r.stdout()).as(r.toString()).contains("\"changed\" : false");
    }

    /** Everything the flow touches: token objects, Secrets (with resource versions), files (bytes and times). */
    Map<String, String> state(Lab lab, String ns, SoftHsmToken t) throws Exception {
        Map<String, String> s = new LinkedHashMap<>();
        s.put("token", t.objects());
        for (var secret : lab.admin().secrets().inNamespace(ns).list().getItems())
            s.put("secret " + secret.getMetadata().getName(), secret.getMetadata().getResourceVersion() + " " + secret.getData());
        for (String f : List.of("csr.pem", "csr-from-secret.pem", "cert-chain.pem"))
            s.put(f, Files.getLastModifiedTime(tmp.resolve(f)) + " " + Files.readString(tmp.resolve(f)));
        return s;
    }
}
