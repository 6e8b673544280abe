package asmhsm;

import static asmhsm.KubeVaultStepsSupport.concat;
import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.errorLines;
import static asmhsm.KubeVaultStepsSupport.json;
import static asmhsm.KubeVaultStepsSupport.tool;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * vault-verify against the lab: a real TokenRequest, a real Vault login whose TokenReview goes to the real
 * API server. Each link of the chain is broken by hand (bao, kubectl) and the step must name it.
 */
@ExtendWith(LabExtension.class)
class VaultVerifyTest {
    @TempDir static Path shared;
    static KubeVaultStepsSupport.HsmFiles hsm;
    @TempDir Path tmp;

    @BeforeAll
    static void hsmFiles(Lab lab) throws Exception {
        hsm = KubeVaultStepsSupport.hsmFiles(lab, shared.resolve("hsm"));
    }

    /** k8s-vault-prep in its own namespace and vault-setup on a fresh suffix, run in tmp: Vault is ready for istiod. */
    String ready(Lab lab) {
        String s = lab.freshMount();
        Cli.Result prep = Cli.asm(env(lab), tmp, "k8s-vault-prep", "--cluster-suffix", s, "--namespace", "vv-" + s,
                "--binding", "tokenreview-vv-" + s);
        assertThat(prep.exit()).as(prep.toString()).isZero();
        Cli.Result setup = Cli.asm(env(lab), tmp, concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()));
        assertThat(setup.exit()).as(setup.toString()).isZero();
        return s;
    }

    /** vault-verify, making istio-system/istiod-service-account if needed (one test removes it). */
    Cli.Result verify(Lab lab, String s, String... more) {
        return Cli.asm(env(lab), tmp, concat(new String[] {"vault-verify", "--cluster-suffix", s, "--create-sa"}, List.of(more)));
    }

    @Test
    void logsInAsIstiodReadsTheFourKeysAndRevokesItsToken(Lab lab) throws Exception {
        String s = ready(lab);
        int tokensBefore = accessors(lab);
        Cli.Result r = verify(lab, s, "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        var j = json(r);
        assertThat(j.get("policies").toString()).contains("asm-" + s + "-hsm-policy");
        assertThat(j.get("ttlSeconds").asLong()).isEqualTo(768L * 3600);
        assertThat(j.get("keys").toString()).isEqualTo("[\"clientcert\",\"clientkey\",\"servercert\",\"PIN\"]");
        assertThat(j.get("changed").asBoolean()).isFalse();
        // nothing of the secret is shown
        assertThat(r.all()).doesNotContain(Files.readString(hsm.pin()).strip()).doesNotContain("BEGIN");
        // the login token is gone again (bao lists every live token's accessor)
        assertThat(accessors(lab)).isEqualTo(tokensBefore);

        Cli.Result human = verify(lab, s);
        assertThat(human.stdout()).contains("logged in at auth/asm-" + s + "/hsm/login as istio-system/istiod-service-account",
                "read asm-" + s + "/hsm: clientcert, clientkey, servercert, PIN present (values not shown)", "revoked the test token", "OK:");
    }

    static int accessors(Lab lab) {
        return KubeVaultStepsSupport.JSON.readTree(tool(lab, null, "bao", "list", "-format=json", "auth/token/accessors")).size();
    }

    @Test
    void aMissingServiceAccountIsNamedOrCreated(Lab lab) {
        String s = ready(lab);
        tool(lab, tmp, "kubectl", "-n", "istio-system", "delete", "serviceaccount", "istiod-service-account", "--ignore-not-found");
        Cli.Result told = Cli.asm(env(lab), tmp, "vault-verify", "--cluster-suffix", s);
        assertThat(told.exit()).as(told.toString()).isEqualTo(1);
        assertThat(errorLines(told).get(0)).isEqualTo("error: service account istio-system/istiod-service-account does not exist yet");
        assertThat(errorLines(told).get(1)).contains("kubectl -n istio-system create serviceaccount istiod-service-account", "--create-sa");

        Cli.Result dry = verify(lab, s, "--dry-run");
        assertThat(dry.stdout()).contains("would create ServiceAccount istio-system/istiod-service-account");
        assertThat(Cli.run(List.of("kubectl", "-n", "istio-system", "get", "sa", "istiod-service-account"), lab.env(), tmp, null)
                .exit()).isNotZero();

        Cli.Result made = verify(lab, s);
        assertThat(made.exit()).as(made.toString()).isZero();
        assertThat(made.stdout()).contains("created ServiceAccount istio-system/istiod-service-account", "OK:");
        tool(lab, tmp, "kubectl", "-n", "istio-system", "get", "sa", "istiod-service-account");
    }

    @Test
    void namesEachBrokenLink(Lab lab) throws Exception {
        String s = ready(lab);
        String role = "auth/asm-" + s + "/hsm/role/istiod", policy = "asm-" + s + "-hsm-policy";

        // TokenReview permission: the reviewer account loses system:auth-delegator
        tool(lab, tmp, "kubectl", "delete", "clusterrolebinding", "tokenreview-vv-" + s);
        assertBroken(lab, s, "broken link: TokenReview permission. system:serviceaccount:vv-" + s + ":default (the reviewer of "
                + s + "/" + s + "-tokenreview_jwt) may not create TokenReviews", "k8s-vault-prep --cluster-suffix " + s);
        Cli.Result blind = verify(lab, s, "--dir", tmp.resolve("elsewhere").toString());   // without the files: Vault's word only
        assertThat(errorLines(blind).get(0)).contains("broken link: TokenReview permission.", "its TokenReview call to the Kubernetes API failed");
        repairWith(lab, "k8s-vault-prep", "--cluster-suffix", s, "--namespace", "vv-" + s, "--binding", "tokenreview-vv-" + s);
        // ... or Vault's config points elsewhere
        tool(lab, tmp, "bao", "write", "auth/asm-" + s + "/hsm/config", "kubernetes_host=https://127.0.0.1:1",
                "kubernetes_ca_cert=@" + tmp.resolve(s + "/" + s + "-k8s_cert"), "token_reviewer_jwt=@" + tmp.resolve(s + "/" + s + "-tokenreview_jwt"));
        assertBroken(lab, s, "is valid and allowed: Vault holds another JWT, or cannot reach or trust the API server",
                "vault-setup --cluster-suffix " + s + " --rewrite-reviewer-jwt");
        repairWith(lab, concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()));

        // role binding names
        tool(lab, tmp, "bao", "write", role, "bound_service_account_names=istiod-service-account",
                "bound_service_account_namespaces=other", "token_policies=" + policy, "token_ttl=768h");
        assertBroken(lab, s, "broken link: role binding names. Role istiod is not bound to istio-system/istiod-service-account "
                + "(namespace not authorized)", "run vault-setup --cluster-suffix " + s);
        tool(lab, tmp, "bao", "write", role, "bound_service_account_names=istiod", "bound_service_account_namespaces=istio-system",
                "token_policies=" + policy, "token_ttl=768h");
        assertBroken(lab, s, "broken link: role binding names. Role istiod is not bound to istio-system/istiod-service-account "
                + "(service account name not authorized)", "vault-setup");
        tool(lab, tmp, "bao", "delete", role);
        assertBroken(lab, s, "broken link: role binding names. There is no role istiod at auth/asm-" + s + "/hsm", "vault-setup");
        repairWith(lab, concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()));

        // policy: not given to the token, or not granting read on the path
        tool(lab, tmp, "bao", "write", role, "bound_service_account_names=istiod-service-account",
                "bound_service_account_namespaces=istio-system", "token_policies=default", "token_ttl=768h");
        assertBroken(lab, s, "broken link: policy. Role istiod gives tokens the policies [default], not " + policy, "vault-setup");
        repairWith(lab, concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()));
        tool(lab, tmp, "bao", "policy", "write", policy, Files.writeString(tmp.resolve("p.hcl"),
                "path \"asm-" + s + "/other\" { capabilities = [\"read\"] }").toString());
        assertBroken(lab, s, "broken link: policy. The istiod token may not read asm-" + s + "/hsm (403 permission denied)", "vault-setup");
        repairWith(lab, concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()));

        // path: no secret, a secret without the PIN, no auth method there
        tool(lab, tmp, "bao", "delete", "asm-" + s + "/hsm");
        assertBroken(lab, s, "broken link: path. Nothing is stored at asm-" + s + "/hsm", "vault-setup");
        tool(lab, tmp, "bao", "write", "asm-" + s + "/hsm", "clientcert=a", "clientkey=b", "servercert=c");
        assertBroken(lab, s, "broken link: path. asm-" + s + "/hsm lacks [PIN]", "vault-setup");
        repairWith(lab, concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()));
        tool(lab, tmp, "bao", "auth", "disable", "asm-" + s + "/hsm");
        assertBroken(lab, s, "broken link: path. No kubernetes auth answers at auth/asm-" + s + "/hsm/login", "vault-setup");
        repairWith(lab, concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()));
    }

    void assertBroken(Lab lab, String s, String line, String hint) {
        Cli.Result r = verify(lab, s);
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(errorLines(r)).as(r.toString()).hasSize(2);
        assertThat(errorLines(r).get(0)).as(r.toString()).contains(line);
        assertThat(errorLines(r).get(1)).as(r.toString()).contains(hint);
    }

    /** Runs the step the hint names, then vault-verify must pass again. */
    void repairWith(Lab lab, String... step) {
        Cli.Result fix = Cli.asm(env(lab), tmp, step);
        assertThat(fix.exit()).as(fix.toString()).isZero();
        Cli.Result ok = verify(lab, step[2]);
        assertThat(ok.exit()).as(ok.toString()).isZero();
    }

    @Test
    void vaultAndClusterProblemsGetOneClearLine(Lab lab) throws Exception {
        String s = ready(lab);
        assertThat(verify(lab, s).exit()).isZero();   // the service account is there
        String closed;
        try (java.net.ServerSocket sock = new java.net.ServerSocket(0)) {
            closed = "https://127.0.0.1:" + sock.getLocalPort();
        }
        Cli.Result down = Cli.asm(env(lab, "VAULT_ADDR", closed), tmp, "vault-verify", "--cluster-suffix", s);
        Cli.Result wrongCa = Cli.asm(env(lab, "VAULT_CACERT", lab.k8sCaCert().toString()), tmp, "vault-verify", "--cluster-suffix", s);
        Cli.Result nobody = Cli.asm(env(lab, "KUBECONFIG", lab.nobodyKubeconfig().toString()), tmp, "vault-verify", "--cluster-suffix", s);
        Cli.Result sealed;
        try (var dev = new KubeVaultStepsSupport.DevBao(lab, tmp)) {
            dev.bao(tmp, "operator", "seal");
            sealed = Cli.asm(env(lab, "VAULT_ADDR", dev.addr, "VAULT_CACERT", null), tmp, "vault-verify", "--cluster-suffix", s);
        }
        for (Cli.Result r : List.of(down, wrongCa, nobody, sealed)) {
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            assertThat(errorLines(r)).as(r.toString()).hasSize(2);
        }
        assertThat(errorLines(down).get(0)).contains("cannot reach Vault at " + closed);
        assertThat(errorLines(wrongCa).get(0)).contains("certificate is not trusted");
        assertThat(errorLines(nobody).get(0)).contains("not allowed to read ServiceAccount istio-system/istiod-service-account");
        assertThat(errorLines(sealed).get(0)).contains("is sealed");
        // vault-verify needs no Vault token of the operator: istiod has none either
        Cli.Result noToken = Cli.asm(env(lab, "VAULT_TOKEN", null, "HOME", tmp.toString()), tmp, "vault-verify", "--cluster-suffix", s);
        assertThat(noToken.exit()).as(noToken.toString()).isZero();
    }
}
