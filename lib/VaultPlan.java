package asmhsm;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import tools.jackson.databind.JsonNode;

/**
 * The writes that bring Vault to a suffix's VaultLayout (vault-setup): planned from what is there,
 * only the parts that differ, checked against the token's rights before the first one, then made
 * one whole write at a time.
 */
final class VaultPlan {
    private VaultPlan() {}

    /** What vault-setup makes, in order (an interrupted run names which are done). */
    static final List<String> PARTS = List.of("mount", "secret", "policy", "auth", "config", "role");

    /** One write the plan needs: the part it makes, what the operator reads, the path, and what the token must be allowed there. */
    record Change(String part, String doing, String path, boolean sudo, Map<String, Object> body) {
        /** "enable x" -> "enabled x": what the change says once made. */
        String done() {
            int sp = doing.indexOf(' ');
            String verb = doing.substring(0, sp);
            return Map.of("enable", "enabled", "write", "wrote", "update", "updated", "tune", "tuned", "replace", "replaced")
                    .getOrDefault(verb, verb) + doing.substring(sp);
        }
    }


    /** What vault-setup is given: the HSM credentials (never shown) and k8s-vault-prep's three files. */
    record Inputs(Map<String, String> hsm, String k8sAddr, List<X509Certificate> k8sCa, String jwt) {}

    /** Every input read and checked before Vault is touched. */
    static Inputs read(Vault.ReviewerFiles files, String suffix, Path clientCert, Path clientKey, Path serverCert, Path pinFile)
            throws Exception {
        String rerunPrep = "run k8s-vault-prep --cluster-suffix " + suffix + " first (or pass --dir)";
        String jwt = new String(Env.readSecret(mustExist(files.jwt(), "token reviewer JWT", rerunPrep), "token reviewer JWT", null),
                StandardCharsets.UTF_8).trim();
        if (!jwt.matches("[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+"))
            throw Env.notA(files.jwt(), "token reviewer JWT file", "a JWT", Files.size(files.jwt()), null, rerunPrep);
        String k8sAddrText = text(mustExist(files.addr(), "Kubernetes API address", rerunPrep), "Kubernetes API address", rerunPrep);
        String k8sAddr = k8sAddrText.trim();
        if (!k8sAddr.matches("https?://[^/\\s]+(/\\S*)?"))
            throw Env.notA(files.addr(), "Kubernetes API address file", "an https://HOST:PORT address",
                    k8sAddrText.getBytes(StandardCharsets.UTF_8).length, null, rerunPrep);
        List<X509Certificate> k8sCa = Pki.certificates(mustExist(files.cert(), "Kubernetes CA certificate", rerunPrep), "Kubernetes CA certificate");
        Map<String, String> hsm = new LinkedHashMap<>();
        hsm.put("clientcert", pemCertificates(clientCert, "HSM client certificate"));
        hsm.put("clientkey", privateKeyPem(clientKey));
        hsm.put("servercert", pemCertificates(serverCert, "HSM server certificate"));
        hsm.put("PIN", new String(Env.readSecret(pinFile, "HSM slot PIN", "P11_PIN_FILE"), StandardCharsets.UTF_8));
        return new Inputs(hsm, k8sAddr, k8sCa, jwt);

    }

    /** The changes that make Vault hold the layout with these inputs; says what is already so. */
    static List<Change> plan(VaultLayout layout, Vault v, Inputs in, boolean rewriteJwt, Out out) {
        String mount = layout.mount(), secretPath = layout.secretPath(), policy = layout.policy();
        String authConfig = layout.authConfigPath(), rolePath = layout.rolePath();
        String maxTtl = VaultLayout.hours(VaultLayout.MAX_LEASE_TTL), roleTtl = VaultLayout.hours(VaultLayout.ROLE_TTL);
        VaultLayout.Present there = layout.read(v);
        List<Change> plan = new ArrayList<>();

        JsonNode m = there.mount();
        if (m == null) {
            plan.add(new Change("mount", "enable kv (version 1) secrets engine at " + mount + "/, max-lease-ttl " + maxTtl,
                    layout.mountApi(), false, layout.mountBody()));
        } else {
            String other = VaultLayout.mountTypeProblem(m);
            if (other != null)
                throw Fail.failed(mount + "/ is already a " + other + " engine; istiod reads " + secretPath + " from kv version 1",
                        "check what uses it, then: vault secrets disable " + mount + " (or choose another cluster suffix)");
            long ttl = VaultLayout.maxLeaseTtlSeconds(m);
            if (ttl != VaultLayout.MAX_LEASE_TTL.toSeconds())
                plan.add(new Change("mount", "tune " + mount + "/ max-lease-ttl from " + ttl + "s to " + maxTtl,
                        layout.mountApi() + "/tune", false, Map.of("max_lease_ttl", maxTtl)));
            else out.say("%s/ already kv version 1 with max-lease-ttl %s", mount, maxTtl);
        }

        // the HSM credentials: compared key by key, never shown
        JsonNode stored = there.secret();
        Map<String, String> hsm = in.hsm();
        Set<String> differ = new TreeSet<>();
        hsm.forEach((key, value) -> { if (stored == null || !value.equals(stored.path(key).asString(null))) differ.add(key); });
        if (stored != null) stored.propertyNames().forEach(key -> { if (!hsm.containsKey(key)) differ.add(key + " (removed)"); });
        if (stored == null)
            plan.add(new Change("secret", "write " + secretPath + " (" + String.join(", ", hsm.keySet()) + ")", secretPath, false,
                    new LinkedHashMap<>(hsm)));
        else if (!differ.isEmpty())
            plan.add(new Change("secret", "update " + secretPath + " (not as in the files given: " + String.join(", ", differ) + ")",
                    secretPath, false, new LinkedHashMap<>(hsm)));
        else out.say("%s already holds these HSM credentials", secretPath);

        JsonNode pol = there.policy();
        if (pol == null || !layout.policyMatches(pol.path("policy").asString("")))
            plan.add(new Change("policy", (pol == null ? "write" : "replace") + " policy " + policy + " (read on " + secretPath + ")",
                    layout.policyApi(), false, Map.of("policy", layout.policyBody())));
        else out.say("policy %s already grants read on %s", policy, secretPath);

        JsonNode auth = there.auth();
        if (auth != null && !auth.path("type").asString("").equals("kubernetes"))
            throw Fail.failed("auth/" + layout.authPath() + " is already a " + auth.path("type").asString() + " auth method, not kubernetes",
                    "check what uses it, then: vault auth disable " + layout.authPath());
        if (auth == null)
            plan.add(new Change("auth", "enable kubernetes auth at auth/" + layout.authPath(), layout.authApi(), true, Map.of("type", "kubernetes")));
        else out.say("kubernetes auth already enabled at auth/%s", layout.authPath());

        Map<String, Object> config = Map.of("kubernetes_host", in.k8sAddr(), "kubernetes_ca_cert", Pki.pem(in.k8sCa().get(0))
                + in.k8sCa().stream().skip(1).map(Pki::pem).reduce("", String::concat), "token_reviewer_jwt", in.jwt());
        JsonNode cfg = there.config();
        List<String> cfgDiffer = new ArrayList<>();
        if (cfg != null) {
            if (!in.k8sAddr().equals(cfg.path("kubernetes_host").asString(""))) cfgDiffer.add("kubernetes_host");
            if (!sameCertificates(cfg.path("kubernetes_ca_cert").asString(""), in.k8sCa())) cfgDiffer.add("kubernetes_ca_cert");
            if (!cfg.path("token_reviewer_jwt_set").asBoolean(false) || rewriteJwt) cfgDiffer.add("token_reviewer_jwt");
        }
        if (cfg == null || !cfgDiffer.isEmpty())
            plan.add(new Change("config", "write " + authConfig + (cfg == null ? "" : " (" + String.join(", ", cfgDiffer) + ")"),
                    authConfig, false, config));
        else out.say("%s already points at %s (its token reviewer JWT cannot be read back: --rewrite-reviewer-jwt writes it again)",
                authConfig, in.k8sAddr());

        JsonNode r = there.role();
        List<String> roleDiffer = r == null ? List.of() : layout.roleDifferences(r);
        if (r == null || !roleDiffer.isEmpty())
            plan.add(new Change("role", (r == null ? "write" : "update") + " role " + VaultLayout.ROLE + " at auth/" + layout.authPath() + " ("
                    + VaultLayout.boundAccount() + ", policy " + policy + ", ttl " + roleTtl + ")"
                    + (r == null ? "" : ", was: " + String.join("; ", roleDiffer)), rolePath, false, layout.roleBody()));
        else out.say("role %s already binds %s to %s, ttl %s", VaultLayout.ROLE, VaultLayout.boundAccount(), policy, roleTtl);
        return plan;
    }

    /** Makes the plan's writes (under --dry-run, says them); an interrupted run names the parts done. */
    static void apply(VaultLayout layout, Vault v, List<Change> plan, Out out) {
        out.put("changes", plan.stream().map(Change::doing).toList());
        if (plan.isEmpty()) return;
        requireRights(v, plan);
        // each write is whole (Vault.write); stopped between two, the run says which parts are done
        List<String> pending = new ArrayList<>(plan.stream().map(Change::part).toList());
        if (!out.dryRun()) Interrupt.state(() -> {
            List<String> done = PARTS.stream().filter(part -> !pending.contains(part)).toList();
            out.put("done", done).put("notDone", pending);
            return pending.isEmpty() ? layout.mount() + " is set up: " + String.join(", ", done) + " done"
                    : layout.mount() + " is half set up: done " + (done.isEmpty() ? "nothing" : String.join(", ", done))
                    + "; not done " + String.join(", ", pending);
        });
        for (Change c : plan) {
            if (!out.dryRun()) v.write(c.path(), c.body(), c.doing());
            pending.remove(c.part());
            out.change(out.dryRun() ? c.doing() : c.done());
        }
        if (!out.dryRun()) out.say("Record the secret path for install-asm: export HSM_SECRET_PATH=%s", layout.secretPath());
    }

    /** Refuses, before the first write, a token that could not make every write of the plan (nothing half-done). */
    private static void requireRights(Vault v, List<Change> plan) {
        JsonNode caps = v.write("sys/capabilities-self", Map.of("paths", plan.stream().map(Change::path).toList()),
                "check the token's rights");
        for (Change c : plan) {
            Set<String> have = VaultLayout.strings(caps.path(c.path()));
            boolean ok = have.contains("root")
                    || ((have.contains("create") || have.contains("update")) && (!c.sudo() || have.contains("sudo")));
            if (!ok)
                throw Fail.failed("the Vault token may not " + c.doing() + " (capabilities on " + c.path() + ": " + have
                        + "); nothing was changed", "log in with admin rights (vault login), then re-run");
        }
    }

    static Path mustExist(Path file, String what, String hint) {
        if (!Files.isRegularFile(file)) throw Fail.badInput(what + " file " + file + " does not exist", hint);
        return file;
    }

    private static String text(Path file, String what, String hint) {
        String s = Env.readText(file, what + " file", "text", hint);
        if (s.isBlank()) throw Fail.badInput(what + " file " + file + " is empty", hint);
        return s;
    }

    /** A PEM file of certificates, checked, as text ending in one newline. */
    private static String pemCertificates(Path file, String what) throws Exception {
        if (file == null || !Files.isRegularFile(file))
            throw Fail.badInput(what + " file " + file + " does not exist", "give the PEM file the HSM's installation produced");
        String s = Env.readPem(file, what + " file", "give the PEM file the HSM's installation produced");
        Pki.certificates(Pki.pemBlocks(s, what + " " + file), what + " " + file);
        return s.strip() + "\n";
    }

    /** The client key: private to its owner, and a PEM private key (its bytes are never shown). */
    private static String privateKeyPem(Path file) {
        String s = new String(Env.readSecret(file, "HSM client key", null), StandardCharsets.UTF_8);
        var blocks = Pki.pemBlocks(s, "HSM client key " + file);
        if (blocks.size() != 1 || !blocks.get(0).getType().endsWith("PRIVATE KEY"))
            throw Fail.badInput("HSM client key " + file + " is not one PEM private key (found " + blocks.stream()
                    .map(b -> b.getType()).toList() + ")", "give the client key file the HSM's installation produced");
        return s.strip() + "\n";
    }

    private static boolean sameCertificates(String pem, List<X509Certificate> want) {
        try {
            return Pki.certificates(Pki.pemBlocks(pem, "kubernetes_ca_cert"), "kubernetes_ca_cert").equals(want);
        } catch (Fail notPem) {
            return false;
        }
    }

}
