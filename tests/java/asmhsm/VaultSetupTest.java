package asmhsm;

import static asmhsm.KubeVaultStepsSupport.baoRead;
import static asmhsm.KubeVaultStepsSupport.concat;
import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.errorLines;
import static asmhsm.KubeVaultStepsSupport.json;
import static asmhsm.KubeVaultStepsSupport.tool;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * vault-setup against the lab's OpenBao; the bao CLI reads back what it wrote. Every test takes its own
 * cluster suffix, hence its own mount, policy and auth path. The three Kubernetes files come from one
 * real k8s-vault-prep run.
 */
@ExtendWith(LabExtension.class)
class VaultSetupTest {
    @TempDir static Path prepared;
    @TempDir Path tmp;

    @BeforeAll
    static void reviewerFiles(Lab lab) {
        String ns = "vs-" + lab.freshMount();
        Cli.Result r = Cli.asm(env(lab), prepared, "k8s-vault-prep", "--cluster-suffix", "c0", "--namespace", ns,
                "--binding", "tokenreview-" + ns);
        assertThat(r.exit()).as(r.toString()).isZero();
    }

    /** The three files of k8s-vault-prep under tmp/<suffix>/, named for this suffix (modes kept). */
    Path reviewerFilesFor(String suffix) throws Exception {
        Path dir = Files.createDirectories(tmp.resolve(suffix));
        for (String f : List.of("tokenreview_jwt", "k8s_addr", "k8s_cert"))
            Files.copy(prepared.resolve("c0/c0-" + f), dir.resolve(suffix + "-" + f), StandardCopyOption.COPY_ATTRIBUTES);
        return dir;
    }

    /** The Kubernetes files for suffix s and HSM credential files: all vault-setup needs. */
    KubeVaultStepsSupport.HsmFiles ready(Lab lab, String s) throws Exception {
        reviewerFilesFor(s);
        return KubeVaultStepsSupport.hsmFiles(lab, tmp.resolve("hsm"));
    }

    Cli.Result setup(Lab lab, Map<String, String> env, String suffix, KubeVaultStepsSupport.HsmFiles hsm, String... more) {
        return Cli.asm(env, tmp, concat(concat(new String[] {"vault-setup", "--cluster-suffix", suffix}, hsm.args()), List.of(more)));
    }

    @Test
    void writesWhatTheGuideWritesThenChangesNothing(Lab lab) throws Exception {
        String s = lab.freshMount();
        var hsm = ready(lab, s);
        Cli.Result first = setup(lab, env(lab), s, hsm, "--json");
        assertThat(first.exit()).as(first.toString()).isZero();
        assertThat(json(first).get("changed").asBoolean()).isTrue();
        assertThat(json(first).get("changes")).hasSize(6);
        checkVault(lab, s, tmp.resolve(s), hsm);
        assertThat(first.all()).doesNotContain(Files.readString(hsm.pin()).strip())
                .doesNotContain(Files.readString(tmp.resolve(s + "/" + s + "-tokenreview_jwt")).strip());

        Cli.Result again = setup(lab, env(lab), s, hsm);
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("asm-" + s + "/ already kv version 1", "already holds these HSM credentials",
                "already grants read", "kubernetes auth already enabled", "already points at " + lab.k8sAddr(), "role istiod already binds")
                .doesNotContain("wrote", "enabled kv", "updated");
        checkVault(lab, s, tmp.resolve(s), hsm);
    }

    /** What the guide's vault commands leave, read with bao. */
    static void checkVault(Lab lab, String s, Path prepDir, KubeVaultStepsSupport.HsmFiles hsm) throws Exception {
        JsonNode mounts = KubeVaultStepsSupport.JSON.readTree(tool(lab, null, "bao", "secrets", "list", "-format=json"));
        JsonNode m = mounts.get("asm-" + s + "/");
        assertThat(m).as(mounts.toString()).isNotNull();
        assertThat(m.get("type").asString()).isEqualTo("kv");
        assertThat(m.at("/options/version").asString("1")).isEqualTo("1");
        assertThat(m.at("/config/max_lease_ttl").asLong()).isEqualTo(87600L * 3600);

        JsonNode secret = baoRead(lab, "asm-" + s + "/hsm");
        assertThat(secret.propertyNames()).containsExactlyInAnyOrder("clientcert", "clientkey", "servercert", "PIN");
        assertThat(secret.get("clientcert").asString()).isEqualTo(Files.readString(hsm.clientCert()));
        assertThat(secret.get("clientkey").asString()).isEqualTo(Files.readString(hsm.clientKey()));
        assertThat(secret.get("servercert").asString()).isEqualTo(Files.readString(hsm.serverCert()));
        assertThat(secret.get("PIN").asString()).isEqualTo(Files.readString(hsm.pin()).strip());

        assertThat(tool(lab, null, "bao", "policy", "read", "asm-" + s + "-hsm-policy").replaceAll("\\s+", " ").strip())
                .isEqualTo("path \"asm-" + s + "/hsm\" { capabilities = [\"read\"] }");

        JsonNode auths = KubeVaultStepsSupport.JSON.readTree(tool(lab, null, "bao", "auth", "list", "-format=json"));
        assertThat(auths.at("/asm-" + s + "~1hsm~1/type").asString()).as(auths.toString()).isEqualTo("kubernetes");
        JsonNode config = baoRead(lab, "auth/asm-" + s + "/hsm/config");
        assertThat(config.get("kubernetes_host").asString()).isEqualTo(Files.readString(prepDir.resolve(s + "-k8s_addr")).strip());
        assertThat(config.get("kubernetes_ca_cert").asString().strip())
                .isEqualTo(Files.readString(prepDir.resolve(s + "-k8s_cert")).strip());
        assertThat(config.get("token_reviewer_jwt_set").asBoolean()).isTrue();

        JsonNode role = baoRead(lab, "auth/asm-" + s + "/hsm/role/istiod");
        assertThat(role.get("bound_service_account_names").toString()).isEqualTo("[\"istiod-service-account\"]");
        assertThat(role.get("bound_service_account_namespaces").toString()).isEqualTo("[\"istio-system\"]");
        assertThat(role.get("token_policies").toString()).isEqualTo("[\"asm-" + s + "-hsm-policy\"]");
        assertThat(role.get("token_ttl").asLong()).isEqualTo(768L * 3600);
    }

    /** Vault.connect: one HTTP client (one TLS connection) for all requests, trusting VAULT_CACERT only. */
    @Test
    void aVaultClientMakesOneHttpClientAndTrustsOnlyItsCa(Lab lab) {
        Opts.Vault o = new Opts.Vault();
        o.addr = lab.vaultAddr();
        o.caCert = lab.vaultCaCert();
        java.util.Set<Thread> before = Startup.selectorThreads();
        Vault v = Vault.connect(o, lab.vaultToken());
        v.requireUnsealed("read the mounts");
        for (int i = 0; i < 3; i++) assertThat(v.read("sys/mounts", "list the secrets engines")).isNotNull();
        java.util.Set<Thread> made = Startup.selectorThreads();
        made.removeAll(before);
        assertThat(made).as("one client's selector thread, not one per request").hasSize(1);
        Startup.endSelectorThreads(made);

        o.caCert = lab.k8sCaCert();    // another CA: the Vault server's certificate is refused
        Vault other = Vault.connect(o, lab.vaultToken());
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> other.read("sys/mounts", "list the secrets engines"))
                .isInstanceOf(Fail.class).hasMessageContaining("not trusted");
    }

    @Test
    void aValueThatDiffersIsReportedByNameAndUpdated(Lab lab) throws Exception {
        String s = lab.freshMount();
        var hsm = ready(lab, s);
        assertThat(setup(lab, env(lab), s, hsm).exit()).isZero();
        // someone changed the role and the policy by hand; the HSM PIN was rotated
        tool(lab, null, "bao", "write", "auth/asm-" + s + "/hsm/role/istiod", "bound_service_account_names=istiod-service-account",
                "bound_service_account_namespaces=istio-system,default", "token_policies=asm-" + s + "-hsm-policy", "token_ttl=1h");
        tool(lab, null, "bao", "policy", "write", "asm-" + s + "-hsm-policy", Files.writeString(tmp.resolve("p.hcl"),
                "path \"asm-" + s + "/*\" { capabilities = [\"read\", \"list\"] }").toString());
        tool(lab, null, "bao", "secrets", "tune", "-max-lease-ttl=1h", "asm-" + s);
        Files.writeString(hsm.pin(), "9999-rotated\n");

        Cli.Result dry = setup(lab, env(lab), s, hsm, "--dry-run");
        assertThat(dry.exit()).as(dry.toString()).isZero();
        assertThat(dry.stdout()).contains("would update asm-" + s + "/hsm (not as in the files given: PIN)");
        assertThat(baoRead(lab, "asm-" + s + "/hsm").get("PIN").asString()).isNotEqualTo("9999-rotated");

        Cli.Result r = setup(lab, env(lab), s, hsm);
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("tuned asm-" + s + "/ max-lease-ttl from 3600s to 87600h", "updated asm-" + s + "/hsm (not as in the files given: PIN)\n",
                "replaced policy asm-" + s + "-hsm-policy", "updated role istiod", "bound_service_account_namespaces [default, istio-system]",
                "token_ttl 3600s").doesNotContain("9999");
        checkVault(lab, s, tmp.resolve(s), hsm);
    }

    @Test
    void dryRunWritesNothing(Lab lab) throws Exception {
        String s = lab.freshMount();
        var hsm = ready(lab, s);
        Cli.Result r = setup(lab, env(lab), s, hsm, "--dry-run");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("would enable kv (version 1) secrets engine at asm-" + s + "/", "would write asm-" + s + "/hsm",
                "would write policy", "would enable kubernetes auth", "would write auth/asm-" + s + "/hsm/config", "would write role istiod");
        assertThat(tool(lab, null, "bao", "secrets", "list")).doesNotContain("asm-" + s + "/");
        assertThat(tool(lab, null, "bao", "auth", "list")).doesNotContain("asm-" + s + "/");
    }

    @Test
    void everyBadInputIsRefusedBeforeVaultIsTouched(Lab lab) throws Exception {
        String s = lab.freshMount();
        Path dir = reviewerFilesFor(s);
        var hsm = KubeVaultStepsSupport.hsmFiles(lab, tmp.resolve("hsm"));
        Path open = Files.copy(hsm.pin(), tmp.resolve("open-pin"));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rw-r--r--"));
        Path emptyPin = Files.writeString(tmp.resolve("empty-pin"), "\n");
        Files.setPosixFilePermissions(emptyPin, PosixFilePermissions.fromString("rw-------"));
        Path openKey = Files.copy(hsm.clientKey(), tmp.resolve("open.key"));
        Files.setPosixFilePermissions(openKey, PosixFilePermissions.fromString("rw-r--r--"));
        Path certAsKey = Files.copy(hsm.clientCert(), tmp.resolve("cert-as.key"));
        Files.setPosixFilePermissions(certAsKey, PosixFilePermissions.fromString("rw-------"));
        record Case(String expect, String... args) {}
        var base = new KubeVaultStepsSupport.HsmFiles(hsm.clientCert(), hsm.clientKey(), hsm.serverCert(), hsm.pin());
        List<Case> cases = List.of(
                new Case("HSM slot PIN file " + open + " is accessible by others", "--pin-file", open.toString()),
                new Case("HSM slot PIN file " + emptyPin + " is empty", "--pin-file", emptyPin.toString()),
                new Case("HSM slot PIN file " + tmp.resolve("nope") + " does not exist", "--pin-file", tmp.resolve("nope").toString()),
                new Case("HSM client key file " + openKey + " is accessible by others", "--client-key", openKey.toString()),
                new Case("is not one PEM private key", "--client-key", certAsKey.toString()),
                new Case("holds a 'PRIVATE KEY' block, not a certificate", "--client-cert", hsm.clientKey().toString()),
                new Case("HSM server certificate file " + tmp.resolve("nope") + " does not exist", "--server-cert", tmp.resolve("nope").toString()));
        for (Case c : cases) {
            List<String> args = new java.util.ArrayList<>(base.args());
            args.set(args.indexOf(c.args()[0]) + 1, c.args()[1]);
            Cli.Result r = Cli.asm(env(lab), tmp, concat(new String[] {"vault-setup", "--cluster-suffix", s}, args));
            assertThat(r.exit()).as(c.expect() + "\n" + r).isEqualTo(2);
            assertThat(errorLines(r)).as(r.toString()).hasSize(2);
            assertThat(errorLines(r).get(0)).contains(c.expect());
        }
        // the three Kubernetes files: missing, empty, not what they should be
        Files.writeString(dir.resolve(s + "-k8s_addr"), "");
        assertBad(lab, s, hsm, "Kubernetes API address file " + s + "/" + s + "-k8s_addr is empty");
        Files.writeString(dir.resolve(s + "-k8s_addr"), "127.0.0.1:6443\n");
        assertBad(lab, s, hsm, "not an https://HOST:PORT address");
        Files.writeString(dir.resolve(s + "-k8s_addr"), lab.k8sAddr() + "\n");
        Files.writeString(dir.resolve(s + "-k8s_cert"), "-----BEGIN CERTIFICATE----- MIIB -----END CERTIFICATE-----");
        assertBad(lab, s, hsm, "Kubernetes CA certificate");
        Files.delete(dir.resolve(s + "-tokenreview_jwt"));
        assertBad(lab, s, hsm, "token reviewer JWT file " + s + "/" + s + "-tokenreview_jwt does not exist");
        Cli.Result missing = setup(lab, env(lab), "other", hsm);
        assertThat(errorLines(missing).get(1)).contains("run k8s-vault-prep --cluster-suffix other first");
        Cli.Result suffix = setup(lab, env(lab), "../" + s, hsm);
        assertThat(suffix.exit()).isEqualTo(2);
        assertThat(suffix.stderr()).contains("is not a plain label");

        assertThat(tool(lab, null, "bao", "secrets", "list")).doesNotContain("asm-" + s + "/");
        assertThat(tool(lab, null, "bao", "auth", "list")).doesNotContain("asm-" + s + "/");
        assertThat(KubeVaultStepsSupport.toolResult(lab, null, "bao", "policy", "read", "asm-" + s + "-hsm-policy").exit()).isNotZero();
    }

    void assertBad(Lab lab, String s, KubeVaultStepsSupport.HsmFiles hsm, String expect) {
        Cli.Result r = setup(lab, env(lab), s, hsm);
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(errorLines(r)).as(r.toString()).hasSize(2);
        assertThat(errorLines(r).get(0)).contains(expect);
    }

    @Test
    void vaultProblemsGetOneClearLine(Lab lab) throws Exception {
        String s = lab.freshMount();
        var hsm = ready(lab, s);
        Cli.Result badToken = setup(lab, env(lab, "VAULT_TOKEN", "s.not-a-token"), s, hsm);
        Cli.Result wrongCa = setup(lab, env(lab, "VAULT_CACERT", lab.k8sCaCert().toString()), s, hsm);
        Cli.Result noCa = setup(lab, env(lab, "VAULT_CACERT", null), s, hsm);
        String closed;
        try (java.net.ServerSocket sock = new java.net.ServerSocket(0)) {
            closed = "https://127.0.0.1:" + sock.getLocalPort();
        }
        Cli.Result down = setup(lab, env(lab, "VAULT_ADDR", closed), s, hsm);
        Cli.Result noToken = setup(lab, env(lab, "VAULT_TOKEN", null, "HOME", tmp.toString()), s, hsm);
        Cli.Result sealed;
        try (var dev = new KubeVaultStepsSupport.DevBao(lab, tmp)) {
            dev.bao(tmp, "operator", "seal");
            sealed = setup(lab, env(lab, "VAULT_ADDR", dev.addr, "VAULT_TOKEN", "root", "VAULT_CACERT", null), s, hsm);
        }
        for (Cli.Result r : List.of(badToken, wrongCa, noCa, down, noToken, sealed)) assertThat(errorLines(r)).as(r.toString()).hasSize(2);
        assertThat(badToken.exit()).isEqualTo(1);
        assertThat(errorLines(badToken).get(0)).contains("refused to", "403 permission denied");
        assertThat(wrongCa.exit()).isEqualTo(1);
        assertThat(errorLines(wrongCa).get(0)).contains("TLS to Vault at " + lab.vaultAddr() + " failed: the server's certificate is not trusted");
        assertThat(errorLines(wrongCa).get(1)).contains("VAULT_CACERT");
        assertThat(noCa.exit()).isEqualTo(1);
        assertThat(errorLines(noCa).get(0)).contains("certificate is not trusted");
        assertThat(down.exit()).isEqualTo(1);
        assertThat(errorLines(down).get(0)).contains("cannot reach Vault at " + closed);
        assertThat(noToken.exit()).isEqualTo(2);
        assertThat(errorLines(noToken).get(0)).contains("no Vault token");
        assertThat(sealed.exit()).isEqualTo(1);
        assertThat(errorLines(sealed).get(0)).contains("is sealed");
        assertThat(tool(lab, null, "bao", "secrets", "list")).doesNotContain("asm-" + s + "/");
    }

    @Test
    void aTokenThatMayNotDoEveryWriteChangesNothing(Lab lab) throws Exception {
        String s = lab.freshMount();
        var hsm = ready(lab, s);
        // may read everything it needs and write mounts and secrets, but not enable an auth method (no sudo)
        Path hcl = Files.writeString(tmp.resolve("p.hcl"), """
                path "sys/mounts" { capabilities = ["read"] }
                path "sys/auth" { capabilities = ["read"] }
                path "sys/mounts/*" { capabilities = ["create", "update", "read"] }
                path "sys/policies/acl/*" { capabilities = ["create", "update", "read"] }
                path "asm-%1$s/*" { capabilities = ["create", "update", "read"] }
                path "sys/auth/*" { capabilities = ["create", "update", "read"] }
                path "auth/asm-%1$s/*" { capabilities = ["create", "update", "read"] }
                """.formatted(s));
        tool(lab, null, "bao", "policy", "write", "almost-" + s, hcl.toString());
        String token = tool(lab, null, "bao", "token", "create", "-policy=almost-" + s, "-ttl=10m", "-field=token").strip();
        Cli.Result r = setup(lab, env(lab, "VAULT_TOKEN", token), s, hsm);
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(errorLines(r)).hasSize(2);
        assertThat(errorLines(r).get(0)).contains("the Vault token may not enable kubernetes auth at auth/asm-" + s + "/hsm")
                .contains("nothing was changed");
        assertThat(tool(lab, null, "bao", "secrets", "list")).doesNotContain("asm-" + s + "/");
        assertThat(KubeVaultStepsSupport.toolResult(lab, null, "bao", "policy", "read", "asm-" + s + "-hsm-policy").exit()).isNotZero();
    }

    @Test
    void aMountThatIsNotKvVersion1IsRefused(Lab lab) throws Exception {
        String s = lab.freshMount();
        var hsm = ready(lab, s);
        tool(lab, null, "bao", "secrets", "enable", "-path=asm-" + s, "-version=2", "kv");
        Cli.Result r = setup(lab, env(lab), s, hsm);
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(errorLines(r).get(0)).contains("asm-" + s + "/ is already a kv version 2 engine");
        assertThat(errorLines(r).get(1)).contains("vault secrets disable asm-" + s);
        assertThat(KubeVaultStepsSupport.toolResult(lab, null, "bao", "policy", "read", "asm-" + s + "-hsm-policy").exit()).isNotZero();
        assertThat(tool(lab, null, "bao", "auth", "list")).doesNotContain("asm-" + s + "/");
    }

    // ------------------------------------------------------------------ Ctrl-C and SIGTERM mid-write

    /** vault-setup through a proxy that holds the write to `held` for 2 s, stopped by `signal` while it is held. */
    Cli.Result interruptedDuring(Lab lab, String s, KubeVaultStepsSupport.HsmFiles hsm, String held, String signal, String... more)
            throws Exception {
        try (SlowVault slow = new SlowVault(lab)) {
            slow.holdNextWrite(held, java.time.Duration.ofSeconds(2));
            Cli.Running run = Cli.start(env(lab, "VAULT_ADDR", slow.addr(), "VAULT_CACERT", null), tmp, tmp.resolve("outputs"),
                    concat(concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()), List.of(more)));
            slow.awaitHeld();
            run.signal(signal);
            return run.await();
        }
    }

    static boolean policyExists(Lab lab, String s) {
        return KubeVaultStepsSupport.toolResult(lab, null, "bao", "policy", "read", "asm-" + s + "-hsm-policy").exit() == 0;
    }

    @Test
    void ctrlCDuringAWriteFinishesItSaysWhichPartsAreDoneAndTheNextRunFinishes(Lab lab) throws Exception {
        String s = lab.freshMount();
        var hsm = ready(lab, s);
        Cli.Result r = interruptedDuring(lab, s, hsm, "asm-" + s + "/hsm", "INT");

        assertThat(r.exit()).as(r.toString()).isEqualTo(130);
        assertThat(r.stdout()).as("the write under way was finished and reported").contains("wrote asm-" + s + "/hsm (clientcert, clientkey, servercert, PIN)")
                .doesNotContain("policy");
        assertThat(errorLines(r)).as(r.toString()).containsExactly(
                "error: interrupted by SIGINT; asm-" + s + " is half set up: done mount, secret; not done policy, auth, config, role",
                "  -> run vault-setup again: it goes on from what is done");
        // what it says is what Vault holds
        assertThat(baoRead(lab, "asm-" + s + "/hsm").propertyNames()).containsExactlyInAnyOrder("clientcert", "clientkey", "servercert", "PIN");
        assertThat(policyExists(lab, s)).isFalse();
        assertThat(tool(lab, null, "bao", "auth", "list")).doesNotContain("asm-" + s + "/");
        assertThat(r.all()).doesNotContain(Files.readString(hsm.pin()).strip());

        // status calls the path half set up: each absent part wrong, vault-setup the fix
        Cli.Result status = Cli.asm(env(lab, "CLUSTER_SUFFIX", s), tmp, "status", "--json");
        Map<String, JsonNode> lines = new java.util.HashMap<>();
        for (JsonNode c : json(status).get("checks")) lines.put(c.get("name").asString(), c);
        assertThat(lines.get("vault: mount asm-" + s).get("state").asString()).isEqualTo("done");
        assertThat(lines.get("vault: secret asm-" + s + "/hsm").get("state").asString()).isEqualTo("done");
        for (String part : List.of("vault: policy asm-" + s + "-hsm-policy", "vault: auth asm-" + s + "/hsm", "vault: auth config", "vault: role istiod")) {
            assertThat(lines.get(part).get("state").asString()).as(part + ": " + lines.get(part)).isEqualTo("wrong");
            assertThat(lines.get(part).get("fix").asString()).isEqualTo("vault-setup");
            assertThat(lines.get(part).get("detail").asString()).endsWith("though mount asm-" + s + ", secret asm-" + s + "/hsm are there: vault-setup did not finish");
        }

        Cli.Result next = setup(lab, env(lab), s, hsm);
        assertThat(next.exit()).as(next.toString()).isZero();
        assertThat(next.stdout()).contains("already holds these HSM credentials", "wrote policy", "enabled kubernetes auth", "wrote role istiod");
        checkVault(lab, s, tmp.resolve(s), hsm);
    }

    /**
     * timeout sends SIGTERM to its child and then to its whole process group: the same signal twice at
     * once is one, and the write under way still finishes; a second one later cuts the step short.
     */
    @Test
    void theSameSigtermTwiceAtOnceIsOneAndASecondSignalLaterEndsTheStepAtOnce(Lab lab) throws Exception {
        String s = lab.freshMount();
        var hsm = ready(lab, s);
        try (SlowVault slow = new SlowVault(lab)) {
            slow.holdNextWrite("asm-" + s + "/hsm", java.time.Duration.ofSeconds(6));
            Cli.Running run = Cli.start(env(lab, "VAULT_ADDR", slow.addr(), "VAULT_CACERT", null), tmp, tmp.resolve("outputs"),
                    concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()));
            slow.awaitHeld();
            run.signalTwiceAtOnce("TERM");
            assertThat(run.process().waitFor(2, java.util.concurrent.TimeUnit.SECONDS)).as("still finishing the held write").isFalse();
            run.signal("INT");
            Cli.Result r = run.await();
            assertThat(r.exit()).as(r.toString()).isEqualTo(130);
            assertThat(errorLines(r)).as(r.toString()).hasSize(2);
            // the held write never reached Vault (the proxy drops it when closed, below)
            assertThat(errorLines(r).get(0)).isEqualTo("error: interrupted by SIGTERM (a second SIGINT); asm-" + s
                    + " is half set up: done mount; not done secret, policy, auth, config, role");
            assertThat(errorLines(r).get(1)).isEqualTo("  -> check what the step changed (asm status), then run it again");
            assertThat(r.all()).doesNotContain(Files.readString(hsm.pin()).strip());
        }
        Cli.Result next = setup(lab, env(lab), s, hsm);
        assertThat(next.exit()).as(next.toString()).isZero();
        checkVault(lab, s, tmp.resolve(s), hsm);
    }

    @Test
    void sigtermUnderJsonIsOneResultNamingTheDoneAndTheMissingParts(Lab lab) throws Exception {
        String s = lab.freshMount();
        var hsm = ready(lab, s);
        Cli.Result r = interruptedDuring(lab, s, hsm, "sys/auth/asm-" + s + "/hsm", "TERM", "--json");

        assertThat(r.exit()).as(r.toString()).isEqualTo(130);
        JsonNode j = json(r);
        assertThat(j.get("ok").asBoolean()).isFalse();
        assertThat(j.get("exitCode").asInt()).isEqualTo(130);
        assertThat(j.get("interrupted").asString()).isEqualTo("SIGTERM");
        assertThat(j.get("state").asString()).isEqualTo("asm-" + s + " is half set up: done mount, secret, policy, auth; not done config, role");
        assertThat(j.get("done").toString()).isEqualTo("[\"mount\",\"secret\",\"policy\",\"auth\"]");
        assertThat(j.get("notDone").toString()).isEqualTo("[\"config\",\"role\"]");
        assertThat(tool(lab, null, "bao", "auth", "list")).as("the held write was made").contains("asm-" + s + "/hsm/");
        assertThat(KubeVaultStepsSupport.toolResult(lab, null, "bao", "read", "auth/asm-" + s + "/hsm/role/istiod").exit()).isNotZero();

        Cli.Result next = setup(lab, env(lab), s, hsm, "--json");
        assertThat(next.exit()).as(next.toString()).isZero();
        assertThat(json(next).get("changes")).hasSize(2);
        checkVault(lab, s, tmp.resolve(s), hsm);
    }
}
