package asmhsm;

import static asmhsm.KubeVaultStepsSupport.concat;
import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.json;
import static asmhsm.KubeVaultStepsSupport.tool;
import static asmhsm.KubeVaultStepsSupport.toolResult;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;
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
        assertThat(words.stdout()).contains("nothing to remove for cluster suffix " + s)
                .contains("no folder " + s + ": a teardown removes it last").doesNotContain("no record of suffix");
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

    /**
     * --hsm with no other cluster prepared: the cluster's KEK and root certificate (every copy under its CA ID) go,
     * seen on the token by pkcs11-tool; an object of another ID stays.
     */
    @Test
    void hsmRemovesTheKekAndRootNoOtherClusterUses(Lab lab) throws Exception {
        String s = lab.freshMount();
        SoftHsmToken t = SoftHsmToken.create(Files.createDirectories(work.resolve("token")));
        Map<String, String> env = tokenEnv(lab, t);
        String kek = "kek-" + s, other = "kek-other-" + s, caId = "root-" + s;
        assertThat(Cli.asm(env, work, "gen-kek", "--kek-id", kek).exit()).isZero();
        assertThat(Cli.asm(env, work, "gen-kek", "--kek-id", other).exit()).isZero();
        X509Certificate root = root(work, s);
        t.writeCertificate(root, caId);
        t.writeCertificate(root, caId); // the plugin's import-ca adds a copy on each call
        assertThat(onToken(t, "Secret Key", kek)).isEqualTo(1);
        assertThat(onToken(t, "Certificate", caId)).isEqualTo(2);

        Cli.Result gone = Cli.asm(env, work, "teardown", "--cluster-suffix", s, "--hsm", "--kek-id", kek, "--ca-id", caId);
        assertThat(gone.exit()).as(gone.toString()).isZero();
        assertThat(gone.stdout()).contains("done: destroy KEK " + kek, "done: destroy root certificate " + caId);
        assertThat(onToken(t, "Secret Key", kek)).as("the KEK, on the token:%n%s", t.objects()).isZero();
        assertThat(onToken(t, "Certificate", caId)).as("the root's copies, on the token:%n%s", t.objects()).isZero();
        assertThat(onToken(t, "Secret Key", other)).as("another ID's KEK stays").isEqualTo(1);

        Cli.Result again = Cli.asm(env, work, "teardown", "--cluster-suffix", s, "--hsm", "--kek-id", kek, "--ca-id", caId);
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("nothing to remove for cluster suffix " + s);
    }

    /**
     * --hsm beside another prepared suffix (k8s-vault-prep, bound to the lab's cluster): while that cluster's
     * istio-ca-encrypted-key names the KEK, or cannot be read, nothing goes; once it names another KEK, this
     * cluster's KEK goes and the root stays, and teardown says why.
     */
    @Test
    void hsmKeepsWhatAnotherClusterUses(Lab lab) throws Exception {
        String s = lab.freshMount(), o = lab.freshMount();
        SoftHsmToken t = SoftHsmToken.create(Files.createDirectories(work.resolve("token")));
        Map<String, String> env = tokenEnv(lab, t);
        String kek = "kek-" + s, caId = "root-" + s;
        assertThat(Cli.asm(env, work, "gen-kek", "--kek-id", kek).exit()).isZero();
        t.writeCertificate(root(work, s), caId);
        Cli.Result prep = Cli.asm(env, work, "k8s-vault-prep", "--cluster-suffix", o);
        assertThat(prep.exit()).as(prep.toString()).isZero();
        try {
            // the other cluster's istiod encrypts its CA key under this KEK
            encryptedKeySecret(lab, kek);
            Cli.Result used = Cli.asm(env, work, "teardown", "--cluster-suffix", s, "--hsm", "--kek-id", kek, "--ca-id", caId);
            assertThat(used.exit()).as(used.toString()).isEqualTo(1);
            assertThat(used.stderr()).contains("KEK " + kek + " is still used by cluster " + o).contains("nothing was removed");
            assertThat(onToken(t, "Secret Key", kek)).as("kept KEK, on the token").isEqualTo(1);
            assertThat(onToken(t, "Certificate", caId)).as("kept root, on the token").isEqualTo(1);

            // the other cluster's record points at an API server that does not answer: its use cannot be read
            Path addr = work.resolve(o).resolve(o + "-k8s_addr");
            String reachable = Files.readString(addr);
            Files.writeString(addr, "https://127.0.0.1:1\n");
            Cli.Result unknown = Cli.asm(env, work, "teardown", "--cluster-suffix", s, "--hsm", "--kek-id", kek, "--ca-id", caId);
            assertThat(unknown.exit()).as(unknown.toString()).isEqualTo(1);
            assertThat(unknown.stderr()).contains("cannot tell whether cluster " + o + " uses KEK " + kek).contains("nothing was removed");
            assertThat(onToken(t, "Secret Key", kek)).isEqualTo(1);
            Files.writeString(addr, reachable);

            // it uses another KEK now: this cluster's KEK goes, the root stays (it signs the other cluster's CA too)
            encryptedKeySecret(lab, "kek-other-" + s);
            Cli.Result mine = Cli.asm(env, work, "teardown", "--cluster-suffix", s, "--hsm", "--kek-id", kek, "--ca-id", caId);
            assertThat(mine.exit()).as(mine.toString()).isZero();
            assertThat(mine.stdout()).contains("root certificate " + caId + " stays on the HSM: cluster(s) " + o + " are prepared beside " + s)
                    .doesNotContain("destroy root certificate");
            assertThat(onToken(t, "Secret Key", kek)).as("the KEK, on the token:%n%s", t.objects()).isZero();
            assertThat(onToken(t, "Certificate", caId)).as("the root, on the token").isEqualTo(1);
        } finally {
            toolResult(lab, null, "kubectl", "-n", "istio-system", "delete", "secret", Teardowns.ENCRYPTED_KEY_SECRET, "--ignore-not-found");
        }
    }

    private static Map<String, String> tokenEnv(Lab lab, SoftHsmToken t) {
        Map<String, String> env = new HashMap<>(env(lab));
        env.putAll(t.env());
        return env;
    }

    private static X509Certificate root(Path work, String s) throws Exception {
        Path pem = SignCsrTest.opensslRoot(Files.createDirectories(work.resolve("root")), "root-" + s, "/O=Example Corp/CN=Root " + s, "rsa", 30);
        try (var in = Files.newInputStream(pem)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    /** Secret istio-system/istio-ca-encrypted-key as istiod writes it, naming {@code kekId}, made with kubectl. */
    private static void encryptedKeySecret(Lab lab, String kekId) {
        toolResult(lab, null, "kubectl", "create", "namespace", "istio-system");
        toolResult(lab, null, "kubectl", "-n", "istio-system", "delete", "secret", Teardowns.ENCRYPTED_KEY_SECRET, "--ignore-not-found");
        tool(lab, null, "kubectl", "-n", "istio-system", "create", "secret", "generic", Teardowns.ENCRYPTED_KEY_SECRET,
                "--from-literal=kek-id=" + kekId, "--from-literal=encrypted-key=stand-in");
    }

    /** How many objects of a kind ("Secret Key", "Certificate") pkcs11-tool lists on the token under the ID {@code id} (its ASCII bytes). */
    static int onToken(SoftHsmToken t, String kind, String id) {
        String hex = HexFormat.of().formatHex(id.getBytes(StandardCharsets.US_ASCII));
        int n = 0;
        String current = null;
        for (String line : t.objects().split("\n")) {
            if (!line.startsWith(" ") && !line.startsWith("\t")) current = line;
            else if (current != null && current.startsWith(kind + " Object") && line.strip().matches("ID:\\s+" + hex)) n++;
        }
        return n;
    }
}
