package asmhsm;

import static asmhsm.KubeVaultStepsSupport.concat;
import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.json;
import static asmhsm.KubeVaultStepsSupport.tool;
import static asmhsm.KubeVaultStepsSupport.toolResult;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/** teardown against the lab: the steps' objects made, refused while istiod runs or a KEK's use is unknown, removed once, then nothing. */
@ExtendWith(LabExtension.class)
class TeardownTest {
    @TempDir Path work;

    @Test
    void removesWhatTheStepsMadeOnceAndRefusesWhenInDoubt(Lab lab) throws Exception {
        String s = lab.freshMount();
        var hsm = KubeVaultStepsSupport.hsmFiles(lab, work.resolve("hsm"));
        Path dir = work.resolve(s);
        assertThat(Cli.asm(env(lab), work, "k8s-vault-prep", "--cluster-suffix", s).exit()).isZero();
        assertThat(Cli.asm(env(lab), work, concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args())).exit()).isZero();
        assertThat(Cli.asm(env(lab), work, "control-plane-prep").exit()).isZero();
        assertThat(Cli.asm(env(lab), work, "istiod-service").exit()).isZero();

        // --dry-run: the plan, and nothing removed
        Cli.Result dry = Cli.asm(env(lab), work, "teardown", "--cluster-suffix", s, "--dry-run", "--json");
        assertThat(dry.exit()).as(dry.toString()).isZero();
        assertThat(json(dry).get("changes").toString()).contains("disable kubernetes auth at auth/asm-" + s + "/hsm",
                "delete policy asm-" + s + "-hsm-policy", "disable secrets engine asm-" + s + "/", "ConfigMap istio-system/vault-tls-cert",
                "Service istio-system/istiod", "ClusterRoleBinding role-tokenreview-binding", s + "-tokenreview_jwt");
        assertThat(KubeVaultStepsSupport.baoRead(lab, "asm-" + s + "/hsm")).isNotNull();
        assertThat(toolResult(lab, null, "kubectl", "-n", "istio-system", "get", "configmap", "vault-tls-cert").exit()).isZero();
        assertThat(Files.isRegularFile(dir.resolve(s + "-k8s_addr"))).isTrue();

        // istiod installed: refused, nothing removed
        tool(lab, null, "kubectl", "-n", "istio-system", "create", "deployment", "istiod-" + s, "--image=istiod:none");
        tool(lab, null, "kubectl", "-n", "istio-system", "label", "deployment", "istiod-" + s, "app=istiod", "--overwrite");
        Cli.Result running = Cli.asm(env(lab), work, "teardown", "--cluster-suffix", s);
        assertThat(running.exit()).as(running.toString()).isEqualTo(1);
        assertThat(running.stderr()).contains("istiod is installed").contains("nothing was removed");
        assertThat(KubeVaultStepsSupport.baoRead(lab, "asm-" + s + "/hsm")).isNotNull();
        tool(lab, null, "kubectl", "-n", "istio-system", "delete", "deployment", "istiod-" + s, "--wait=true");
        tool(lab, null, "kubectl", "-n", "istio-system", "delete", "pods", "-l", "app=istiod", "--wait=true");

        // --hsm while another prepared cluster cannot be asked which KEK it uses: refused, nothing removed
        Path other = work.resolve("zz" + s);
        Files.createDirectories(other);
        Files.writeString(other.resolve("zz" + s + "-k8s_addr"), "https://127.0.0.1:1\n");
        Cli.Result inDoubt = Cli.asm(env(lab), work, "teardown", "--cluster-suffix", s, "--hsm", "--kek-id", "kek-" + s);
        assertThat(inDoubt.exit()).as(inDoubt.toString()).isEqualTo(1);
        assertThat(inDoubt.stderr()).contains("cannot tell whether cluster zz" + s + " uses KEK kek-" + s).contains("nothing was removed");
        assertThat(KubeVaultStepsSupport.baoRead(lab, "asm-" + s + "/hsm")).isNotNull();

        // the suffix recorded as another cluster's: this context is refused, nothing removed
        Path record = dir.resolve(s + "-cluster.json");
        String ours = Files.readString(record);
        Files.writeString(record, "{\"context\": \"c2\", \"server\": \"" + ClusterBindingTest.OTHER_SERVER + "\", \"caSha256\": \"" + ClusterBindingTest.OTHER_CA + "\", \"caFrom\": \"kubeconfig\"}\n");
        Cli.Result elsewhere = Cli.asm(env(lab), work, "teardown", "--cluster-suffix", s);
        assertThat(elsewhere.exit()).as(elsewhere.toString()).isEqualTo(2);
        assertThat(elsewhere.stderr()).contains("cluster suffix " + s + " belongs to another cluster");
        assertThat(KubeVaultStepsSupport.baoRead(lab, "asm-" + s + "/hsm")).isNotNull();
        Files.writeString(record, ours);

        // the real run
        Cli.Result gone = Cli.asm(env(lab), work, "teardown", "--cluster-suffix", s, "--json");
        assertThat(gone.exit()).as(gone.toString()).isZero();
        assertThat(json(gone).get("changed").asBoolean()).isTrue();
        assertThat(KubeVaultStepsSupport.baoRead(lab, "asm-" + s + "/hsm")).isNull();
        assertThat(toolResult(lab, null, "bao", "policy", "read", "asm-" + s + "-hsm-policy").exit()).isNotZero();
        assertThat(tool(lab, null, "bao", "auth", "list")).doesNotContain("asm-" + s + "/hsm/");
        assertThat(toolResult(lab, null, "kubectl", "-n", "istio-system", "get", "configmap", "vault-tls-cert").exit()).isNotZero();
        assertThat(toolResult(lab, null, "kubectl", "get", "clusterrolebinding", "role-tokenreview-binding").exit()).isNotZero();
        assertThat(Files.exists(dir)).isFalse();

        // a second run changes nothing
        Cli.Result again = Cli.asm(env(lab), work, "teardown", "--cluster-suffix", s, "--json");
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(json(again).get("changed").asBoolean()).as(again.toString()).isFalse();
        Cli.Result words = Cli.asm(env(lab), work, "teardown", "--cluster-suffix", s);
        assertThat(words.stdout()).contains("nothing to remove for cluster suffix " + s);
    }

    /** --hsm on a token of its own: the KEK goes (nothing else prepared names it), once; without --hsm it stays. */
    @Test
    void hsmObjectsOnlyWithHsm(Lab lab) throws Exception {
        String s = lab.freshMount();
        SoftHsmToken t = SoftHsmToken.create(Files.createDirectories(work.resolve("token")));
        java.util.Map<String, String> env = new java.util.HashMap<>(env(lab));
        env.putAll(t.env());
        assertThat(Cli.asm(env, work, "gen-kek", "--kek-id", "kek-" + s).exit()).isZero();
        assertThat(t.objectCount()).isEqualTo(1);

        Cli.Result without = Cli.asm(env, work, "teardown", "--cluster-suffix", s, "--kek-id", "kek-" + s);
        assertThat(without.exit()).as(without.toString()).isZero();
        assertThat(t.objectCount()).as("no --hsm: the KEK stays").isEqualTo(1);

        Cli.Result dry = Cli.asm(env, work, "teardown", "--cluster-suffix", s, "--hsm", "--kek-id", "kek-" + s, "--ca-id", "none-" + s, "--dry-run");
        assertThat(dry.exit()).as(dry.toString()).isZero();
        assertThat(dry.stdout()).contains("would destroy KEK kek-" + s);
        assertThat(t.objectCount()).isEqualTo(1);

        Cli.Result gone = Cli.asm(env, work, "teardown", "--cluster-suffix", s, "--hsm", "--kek-id", "kek-" + s, "--ca-id", "none-" + s);
        assertThat(gone.exit()).as(gone.toString()).isZero();
        assertThat(t.objectCount()).as(gone.toString()).isZero();
        Cli.Result again = Cli.asm(env, work, "teardown", "--cluster-suffix", s, "--hsm", "--kek-id", "kek-" + s, "--ca-id", "none-" + s);
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("nothing to remove for cluster suffix " + s);
    }
}
