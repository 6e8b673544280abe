package asmhsm;

import static asmhsm.KubeVaultStepsSupport.concat;
import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.json;
import static asmhsm.KubeVaultStepsSupport.kubectlJson;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The guide's Kubernetes and Vault sections end to end, with the guide's names (namespace vault,
 * binding role-tokenreview-binding, istio-system), as an operator runs them: each step twice, the
 * cluster's and Vault's state checked after every run with kubectl, openssl and bao.
 */
@ExtendWith(LabExtension.class)
class KubeVaultStepsTest {
    @TempDir Path work;

    @Test
    void eachStepTwiceWithTheStateCheckedAfterEveryRun(Lab lab) throws Exception {
        String s = lab.freshMount();   // the cluster suffix: its own mount, policy and auth path in the shared OpenBao
        var hsm = KubeVaultStepsSupport.hsmFiles(lab, work.resolve("hsm"));
        Path dir = work.resolve(s);
        int tokens = VaultVerifyTest.accessors(lab);

        for (int run = 1; run <= 2; run++) {
            Cli.Result prep = Cli.asm(env(lab), work, "k8s-vault-prep", "--cluster-suffix", s, "--json");
            assertThat(prep.exit()).as(prep.toString()).isZero();
            if (run == 2) assertThat(json(prep).get("changed").asBoolean()).as(prep.toString()).isFalse();
            K8sVaultPrepTest.checkClusterAndFiles(lab, "vault", "role-tokenreview-binding", dir, s);
            assertThat(Files.readString(dir.resolve(s + "-k8s_addr")).strip()).isEqualTo(lab.k8sAddr());

            Cli.Result setup = Cli.asm(env(lab), work, concat(new String[] {"vault-setup", "--cluster-suffix", s, "--json"}, hsm.args()));
            assertThat(setup.exit()).as(setup.toString()).isZero();
            assertThat(json(setup).get("changed").asBoolean()).as(setup.toString()).isEqualTo(run == 1);
            VaultSetupTest.checkVault(lab, s, dir, hsm);

            Cli.Result verify = Cli.asm(env(lab), work, "vault-verify", "--cluster-suffix", s, "--create-sa", "--json");
            assertThat(verify.exit()).as(verify.toString()).isZero();
            assertThat(json(verify).get("keys")).hasSize(4);
            assertThat(kubectlJson(lab, "-n", "istio-system", "get", "serviceaccount", "istiod-service-account").at("/metadata/name")
                    .asString()).isEqualTo("istiod-service-account");
            VaultSetupTest.checkVault(lab, s, dir, hsm);   // verifying changed nothing in Vault
            assertThat(VaultVerifyTest.accessors(lab)).isEqualTo(tokens);   // and left no token behind
        }

        // the control plane's two resources, also twice
        for (int run = 1; run <= 2; run++) {
            Cli.Result cp = Cli.asm(env(lab), work, "control-plane-prep", "--json");
            assertThat(cp.exit()).as(cp.toString()).isZero();
            assertThat(kubectlJson(lab, "-n", "istio-system", "get", "configmap", "vault-tls-cert").at("/data/cert").asString())
                    .isEqualTo(Files.readString(lab.vaultCaCert()));
            Cli.Result svc = Cli.asm(env(lab), work, "istiod-service", "--json");
            assertThat(svc.exit()).as(svc.toString()).isZero();
            if (run == 2) {
                assertThat(json(cp).get("changed").asBoolean()).isFalse();
                assertThat(json(svc).get("changed").asBoolean()).isFalse();
            }
            var live = kubectlJson(lab, "-n", "istio-system", "get", "service", "istiod");
            assertThat(live.at("/spec/selector/istio.io~1rev").asString()).isEqualTo("asm-198-6");
            assertThat(live.at("/spec/ports")).hasSize(4);
        }
    }
}
