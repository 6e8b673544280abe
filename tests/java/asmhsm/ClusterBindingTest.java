package asmhsm;

import static asmhsm.KubeVaultStepsSupport.concat;
import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.errorLines;
import static asmhsm.KubeVaultStepsSupport.json;
import static asmhsm.KubeVaultStepsSupport.tool;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * A suffix belongs to the cluster k8s-vault-prep prepared it on, against the lab. The lab has one
 * API server: "another cluster" is a record of one (another server and CA), written as
 * k8s-vault-prep would have written it there; a second context name for the lab's server is the
 * same cluster.
 */
@ExtendWith(LabExtension.class)
class ClusterBindingTest {
    @TempDir Path tmp;

    static final String OTHER_SERVER = "https://10.255.0.1:6443";
    static final String OTHER_CA = "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99";

    String[] prep(String s, String... more) {
        return concat(List.of("k8s-vault-prep", "--cluster-suffix", s, "--namespace", "cb-" + s, "--binding", "tokenreview-cb-" + s), more);
    }

    String labCaFingerprint(Lab lab) {
        return tool(lab, tmp, "openssl", "x509", "-in", lab.k8sCaCert().toString(), "-noout", "-fingerprint", "-sha256")
                .strip().replaceFirst("^(?i)sha256 Fingerprint=", "");
    }

    @Test
    void k8sVaultPrepRecordsTheClusterAndRefusesAnotherUnlessRebound(Lab lab) throws Exception {
        String s = lab.freshMount();
        String context = tool(lab, tmp, "kubectl", "config", "current-context").strip();
        Cli.Result first = Cli.asm(env(lab), tmp, prep(s));
        assertThat(first.exit()).as(first.toString()).isZero();
        assertThat(first.stdout()).contains("wrote " + s + "/" + s + "-cluster.json");
        Path record = tmp.resolve(s + "/" + s + "-cluster.json");
        JsonNode id = KubeVaultStepsSupport.JSON.readTree(Files.readString(record));
        assertThat(id.get("context").asString()).isEqualTo(context);
        assertThat(id.get("server").asString()).isEqualTo(lab.k8sAddr());
        assertThat(id.get("caSha256").asString()).as("as openssl prints the lab's CA fingerprint").isEqualTo(labCaFingerprint(lab));
        assertThat(id.get("caFrom").asString()).isEqualTo("kubeconfig");
        assertThat(Files.getPosixFilePermissions(record)).isEqualTo(PosixFilePermissions.fromString("rw-r--r--"));
        assertThat(Files.getPosixFilePermissions(tmp.resolve(s + "/" + s + "-tokenreview_jwt")))
                .isEqualTo(PosixFilePermissions.fromString("rw-------"));

        // another context name for the same server and CA is the same cluster
        Path kc = tmp.resolve("renamed.kubeconfig");
        Files.copy(lab.kubeconfig(), kc);
        tool(lab, tmp, "kubectl", "--kubeconfig", kc.toString(), "config", "rename-context", context, "also-the-lab");
        Cli.Result renamed = Cli.asm(env(lab, "KUBECONFIG", kc.toString()), tmp, prep(s));
        assertThat(renamed.exit()).as(renamed.toString()).isZero();
        assertThat(renamed.stdout()).contains("updated " + s + "/" + s + "-cluster.json");

        // suffix s as prepared on another cluster: this one is refused, nothing changes
        String otherRecord = "{\"context\": \"c2\", \"server\": \"" + OTHER_SERVER + "\", \"caSha256\": \"" + OTHER_CA + "\", \"caFrom\": \"kubeconfig\"}\n";
        Files.writeString(record, otherRecord);
        byte[] jwt = Files.readAllBytes(tmp.resolve(s + "/" + s + "-tokenreview_jwt"));
        tool(lab, tmp, "kubectl", "delete", "clusterrolebinding", "tokenreview-cb-" + s);
        Cli.Result refused = Cli.asm(env(lab), tmp, prep(s));
        assertThat(refused.exit()).as(refused.toString()).isEqualTo(2);
        assertThat(errorLines(refused)).hasSize(2);
        assertThat(errorLines(refused).get(0)).contains("cluster suffix " + s + " belongs to another cluster", s + "/" + s + "-cluster.json",
                "context 'c2' at " + OTHER_SERVER + " (CA SHA-256 AA:BB", "context '" + context + "' at " + lab.k8sAddr(),
                labCaFingerprint(lab).substring(0, 23));
        assertThat(errorLines(refused).get(1)).contains("--context", "--rebind");
        assertThat(Cli.run(List.of("kubectl", "get", "clusterrolebinding", "tokenreview-cb-" + s), lab.env(), tmp, null).exit())
                .as("nothing was made on the wrong cluster").isNotZero();
        assertThat(Files.readString(record)).isEqualTo(otherRecord);
        assertThat(Files.readAllBytes(tmp.resolve(s + "/" + s + "-tokenreview_jwt"))).isEqualTo(jwt);

        // --rebind moves the suffix here, on purpose
        Cli.Result rebound = Cli.asm(env(lab), tmp, prep(s, "--rebind"));
        assertThat(rebound.exit()).as(rebound.toString()).isZero();
        assertThat(KubeVaultStepsSupport.JSON.readTree(Files.readString(record)).get("server").asString()).isEqualTo(lab.k8sAddr());

        // a folder from before the record: its -k8s_addr says which cluster
        Files.delete(record);
        Files.writeString(tmp.resolve(s + "/" + s + "-k8s_addr"), OTHER_SERVER + "\n");
        Cli.Result old = Cli.asm(env(lab), tmp, prep(s));
        assertThat(old.exit()).as(old.toString()).isEqualTo(2);
        assertThat(errorLines(old).get(0)).contains(s + "/" + s + "-k8s_addr records " + OTHER_SERVER);
    }

    @Test
    void everyStepForTheSuffixRefusesAnotherCluster(Lab lab) throws Exception {
        String s = lab.freshMount();
        Cli.Result first = Cli.asm(env(lab), tmp, prep(s));
        assertThat(first.exit()).as(first.toString()).isZero();
        Cli.Result okVerify = Cli.asm(env(lab), tmp, "vault-verify", "--cluster-suffix", s, "--create-sa");
        assertThat(okVerify.stderr()).as("the same cluster passes the check").doesNotContain("belongs to another cluster");
        Files.writeString(tmp.resolve(s + "/" + s + "-cluster.json"), "{\"context\": \"c2\", \"server\": \"" + OTHER_SERVER
                + "\", \"caSha256\": \"" + OTHER_CA + "\", \"caFrom\": \"kubeconfig\"}\n");
        for (String[] step : List.of(new String[] {"vault-verify", "--cluster-suffix", s, "--create-sa"},
                new String[] {"status", "--cluster-suffix", s}, new String[] {"status", "--cluster-suffix", s, "--json"})) {
            Cli.Result r = Cli.asm(env(lab), tmp, step);
            assertThat(r.exit()).as(r.toString()).isEqualTo(2);
            assertThat(r.stderr()).as(r.toString()).contains("error: cluster suffix " + s + " belongs to another cluster")
                    .contains(OTHER_SERVER, lab.k8sAddr());
        }
        // no record of the suffix here (another folder): only the checks that need one are skipped
        Path elsewhere = Files.createDirectories(tmp.resolve("elsewhere"));
        Cli.Result unknown = Cli.asm(env(lab), elsewhere, "status", "--cluster-suffix", s, "--json");
        assertThat(unknown.stderr()).doesNotContain("belongs to another cluster");
    }

    /**
     * The issue's case: suffix c2's Vault config reviews tokens with cluster c2, vault-verify runs with
     * the context of c1. It must say so, not offer to re-point c2's auth at c1 (--rewrite-reviewer-jwt).
     */
    @Test
    void vaultVerifyNamesVaultsClusterInsteadOfOfferingToMoveTheSuffix(Lab lab) throws Exception {
        String s = lab.freshMount();
        KubeVaultStepsSupport.HsmFiles hsm = KubeVaultStepsSupport.hsmFiles(lab, tmp.resolve("hsm"));
        Path prepared = Files.createDirectories(tmp.resolve("prepared"));
        assertThat(Cli.asm(env(lab), prepared, prep(s)).exit()).isZero();
        Cli.Result setup = Cli.asm(env(lab), prepared, concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()));
        assertThat(setup.exit()).as(setup.toString()).isZero();
        // Vault's auth for s as k8s-vault-prep + vault-setup made it on another cluster
        tool(lab, prepared, "bao", "write", "auth/asm-" + s + "/hsm/config", "kubernetes_host=" + OTHER_SERVER,
                "kubernetes_ca_cert=@" + prepared.resolve(s + "/" + s + "-k8s_cert"),
                "token_reviewer_jwt=@" + prepared.resolve(s + "/" + s + "-tokenreview_jwt"));

        Path elsewhere = Files.createDirectories(tmp.resolve("elsewhere"));
        Cli.Result r = Cli.asm(env(lab), elsewhere, "vault-verify", "--cluster-suffix", s, "--create-sa");
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stdout()).startsWith("acting on cluster '").contains(lab.k8sAddr() + ", Vault " + lab.vaultAddr());
        assertThat(errorLines(r)).hasSize(2);
        assertThat(errorLines(r).get(0)).contains("auth/asm-" + s + "/hsm/config reviews tokens with the API server " + OTHER_SERVER,
                "is " + lab.k8sAddr(), "suffix " + s + " belongs to another cluster");
        assertThat(r.all()).doesNotContain("--rewrite-reviewer-jwt");

        // where the folder records s on this cluster, Vault is what is wrong: its files repair it
        Cli.Result here = Cli.asm(env(lab), prepared, "vault-verify", "--cluster-suffix", s, "--create-sa");
        assertThat(here.exit()).as(here.toString()).isEqualTo(1);
        assertThat(errorLines(here).get(1)).contains("vault-setup --cluster-suffix " + s + " --rewrite-reviewer-jwt");
    }

    @Test
    void actingOnNamesTheClusterFirstAndIsAFieldUnderJson(Lab lab) {
        String ns = lab.freshNamespace();
        String context = tool(lab, tmp, "kubectl", "config", "current-context").strip();
        Cli.Result r = Cli.asm(env(lab), tmp, "istiod-service", "-n", ns);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout().lines().findFirst().orElse("")).isEqualTo("acting on cluster '" + context + "' at " + lab.k8sAddr());
        Cli.Result yaml = Cli.asm(env(lab), tmp, "istiod-service", "-n", ns, "--dry-run");
        assertThat(yaml.stdout()).as("a dry run's stdout is the manifest, for kubectl apply -f").startsWith("apiVersion: v1").doesNotContain("acting on ");
        Cli.Result j = Cli.asm(env(lab), tmp, "istiod-service", "-n", ns, "--dry-run", "--json");
        assertThat(json(j).get("actingOn").get("context").asString()).isEqualTo(context);
        assertThat(json(j).get("actingOn").get("server").asString()).isEqualTo(lab.k8sAddr());
        assertThat(j.stdout()).doesNotContain("acting on ");
    }
}
