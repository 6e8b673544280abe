package asmhsm;

import static asmhsm.KubeVaultStepsSupport.concat;
import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.errorLines;
import static asmhsm.KubeVaultStepsSupport.json;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * VAULT_NAMESPACE and --vault-namespace, as the Vault CLI takes them, against the lab's OpenBao (2.x has
 * namespaces): vault-setup writes into the namespace and nowhere else, vault-verify and status read it
 * back there, and without the namespace they find nothing. bao, in and out of the namespace, checks.
 */
@ExtendWith(LabExtension.class)
class VaultNamespaceTest {
    @TempDir static Path work;
    static KubeVaultStepsSupport.HsmFiles hsm;
    static String s, ns;

    /** A fresh namespace, a fresh suffix and k8s-vault-prep's files for it. */
    @BeforeAll
    static void prepared(Lab lab) throws Exception {
        s = lab.freshMount();
        ns = "ns-" + s;
        bao(lab, null, "namespace", "create", ns);
        hsm = KubeVaultStepsSupport.hsmFiles(lab, work.resolve("hsm"));
        Cli.Result prep = Cli.asm(env(lab), work, "k8s-vault-prep", "--cluster-suffix", s, "--namespace", "vn-" + s,
                "--binding", "tokenreview-vn-" + s);
        assertThat(prep.exit()).as(prep.toString()).isZero();
    }

    /** bao with the lab's settings, in namespace `namespace` (null: the root namespace). */
    static Cli.Result baoResult(Lab lab, String namespace, String... args) {
        List<String> cmd = new ArrayList<>(List.of(lab.env("LAB_BIN") + "/bao"));
        cmd.addAll(List.of(args));
        Map<String, String> env = new LinkedHashMap<>(lab.env());
        if (namespace != null) env.put("VAULT_NAMESPACE", namespace);
        return Cli.run(cmd, env, work, null);
    }

    static String bao(Lab lab, String namespace, String... args) {
        Cli.Result r = baoResult(lab, namespace, args);
        assertThat(r.exit()).as("bao " + String.join(" ", args) + "\n" + r).isZero();
        return r.stdout();
    }

    static JsonNode baoJson(Lab lab, String namespace, String... args) {
        return KubeVaultStepsSupport.JSON.readTree(bao(lab, namespace, args));
    }

    Cli.Result setup(Map<String, String> env, String... more) {
        return Cli.asm(env, work, concat(concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()), List.of(more)));
    }

    static Map<String, JsonNode> statusLines(Cli.Result r) {
        Map<String, JsonNode> m = new LinkedHashMap<>();
        for (JsonNode c : json(r).get("checks")) m.put(c.get("name").asString(), c);
        return m;
    }

    static final List<String> VAULT_LINES = List.of("mount asm-%s", "secret asm-%s/hsm", "policy asm-%s-hsm-policy",
            "auth asm-%s/hsm", "auth config", "role istiod");

    static List<String> vaultLineNames() {
        return VAULT_LINES.stream().map(l -> "vault: " + l.formatted(s, s)).toList();
    }

    @Test
    void everyVaultStepActsInTheNamespaceGivenAndOnlyThere(Lab lab) {
        Map<String, String> inNs = env(lab, "VAULT_NAMESPACE", ns), root = env(lab);

        // vault-setup into the namespace: its first line says where
        Cli.Result first = setup(inNs);
        assertThat(first.exit()).as(first.toString()).isZero();
        assertThat(first.stdout().lines().findFirst().orElse("")).isEqualTo("acting on Vault " + lab.vaultAddr() + " (namespace " + ns + ")");
        assertThat(first.stdout()).contains("enabled kv (version 1) secrets engine at asm-" + s + "/");
        assertThat(first.stderr()).doesNotContain("NameSpace").doesNotContain("INFO");

        // bao: mount, secret, policy, auth, config and role are in the namespace ...
        assertThat(baoJson(lab, ns, "secrets", "list", "-format=json").has("asm-" + s + "/")).isTrue();
        assertThat(baoJson(lab, ns, "auth", "list", "-format=json").has("asm-" + s + "/hsm/")).isTrue();
        assertThat(bao(lab, ns, "policy", "read", "asm-" + s + "-hsm-policy")).contains("asm-" + s + "/hsm");
        assertThat(baoJson(lab, ns, "read", "-format=json", "asm-" + s + "/hsm").at("/data").propertyNames())
                .containsExactlyInAnyOrder("clientcert", "clientkey", "servercert", "PIN");
        assertThat(baoJson(lab, ns, "read", "-format=json", "auth/asm-" + s + "/hsm/role/istiod").at("/data/token_policies").toString())
                .isEqualTo("[\"asm-" + s + "-hsm-policy\"]");
        // ... and none of them in the root namespace
        assertThat(baoJson(lab, null, "secrets", "list", "-format=json").has("asm-" + s + "/")).isFalse();
        assertThat(baoJson(lab, null, "auth", "list", "-format=json").has("asm-" + s + "/hsm/")).isFalse();
        assertThat(baoResult(lab, null, "policy", "read", "asm-" + s + "-hsm-policy").exit()).isNotZero();

        // the option does what the variable does: the same namespace, nothing left to change
        Cli.Result again = setup(root, "--vault-namespace", ns + "/", "--json");
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(json(again).get("changed").asBoolean()).as(again.toString()).isFalse();
        assertThat(json(again).get("actingOn").get("vaultNamespace").asString()).isEqualTo(ns);

        // vault-verify logs in as istiod there, by variable and by option
        for (Map.Entry<Map<String, String>, List<String>> way : Map.of(inNs, List.<String>of(), root, List.of("--vault-namespace", ns)).entrySet()) {
            Cli.Result v = Cli.asm(way.getKey(), work, concat(new String[] {"vault-verify", "--cluster-suffix", s, "--create-sa"}, way.getValue()));
            assertThat(v.exit()).as(v.toString()).isZero();
            assertThat(v.stdout().lines().findFirst().orElse("")).startsWith("acting on ").contains("Vault " + lab.vaultAddr() + " (namespace " + ns + ")");
            assertThat(v.stdout()).contains("read asm-" + s + "/hsm: clientcert, clientkey, servercert, PIN present", "revoked the test token");
        }
        // status: the six Vault lines are done in the namespace, by variable and by option
        for (Map.Entry<Map<String, String>, List<String>> way : Map.of(inNs, List.<String>of(), root, List.of("--vault-namespace", ns)).entrySet()) {
            Cli.Result st = Cli.asm(way.getKey(), work, concat(new String[] {"status", "--cluster-suffix", s, "--json"}, way.getValue()));
            Map<String, JsonNode> l = statusLines(st);
            for (String name : vaultLineNames())
                assertThat(l.get(name).get("state").asString()).as(name + ": " + l.get(name) + "\n" + st).isEqualTo("done");
            assertThat(l.get("vault: mount asm-" + s).get("detail").asString()).contains("in namespace " + ns);
            assertThat(json(st).get("actingOn").get("vaultNamespace").asString()).isEqualTo(ns);
        }

        // without the namespace: nothing there
        Cli.Result verifyRoot = Cli.asm(root, work, "vault-verify", "--cluster-suffix", s, "--create-sa");
        assertThat(verifyRoot.exit()).as(verifyRoot.toString()).isEqualTo(1);
        assertThat(errorLines(verifyRoot).get(0)).startsWith("error: broken link: path.");
        assertThat(verifyRoot.stdout().lines().findFirst().orElse("")).startsWith("acting on ").endsWith("Vault " + lab.vaultAddr());
        Cli.Result statusRoot = Cli.asm(root, work, "status", "--cluster-suffix", s, "--json");
        Map<String, JsonNode> l = statusLines(statusRoot);
        assertThat(l.get("vault: mount asm-" + s).get("state").asString()).as(l.toString()).isEqualTo("missing");
        assertThat(l.get("vault: mount asm-" + s).get("detail").asString()).doesNotContain("namespace");
        assertThat(json(statusRoot).get("actingOn").has("vaultNamespace")).isFalse();
    }

    /** A namespace that is not there is a setting to fix (exit 2), not "nothing set up yet"; nothing is written anywhere. */
    @Test
    void aNamespaceThatDoesNotExistIsNamed(Lab lab) {
        String none = "no-such-" + s;
        Map<String, String> env = env(lab, "VAULT_NAMESPACE", none);
        List<Cli.Result> runs = List.of(setup(env), setup(env(lab), "--vault-namespace", none, "--dry-run"),
                Cli.asm(env, work, "vault-verify", "--cluster-suffix", s, "--create-sa"));
        for (Cli.Result r : runs) {
            assertThat(r.exit()).as(r.toString()).isEqualTo(2);
            assertThat(errorLines(r)).as(r.toString()).containsExactly("error: Vault at " + lab.vaultAddr() + " has no namespace " + none,
                    "  -> check VAULT_NAMESPACE or --vault-namespace (bao namespace list shows them), or create it: bao namespace create " + none);
        }
        Cli.Result st = Cli.asm(env, work, "status", "--cluster-suffix", s, "--json");
        Map<String, JsonNode> l = statusLines(st);
        for (String name : vaultLineNames()) {
            assertThat(l.get(name).get("state").asString()).as(name + ": " + l.get(name)).isEqualTo("unknown");
            assertThat(l.get(name).get("detail").asString()).contains("has no namespace " + none);
        }
        assertThat(baoJson(lab, null, "namespace", "list", "-format=json").toString()).doesNotContain(none);

        Cli.Result bad = setup(env(lab, "VAULT_NAMESPACE", "two words"));
        assertThat(bad.exit()).as(bad.toString()).isEqualTo(2);
        assertThat(errorLines(bad).get(0)).isEqualTo("error: Vault namespace 'two words' is not a namespace path (names of letters, "
                + "digits and . _ -, joined by /)");
    }
}
