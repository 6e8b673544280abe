///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
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
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tools.jackson.databind.JsonNode;

@Command(name = "vault-setup", mixinStandardHelpOptions = true,
        description = "Store the HSM credentials in Vault behind Kubernetes auth (guide: 'Configura Vault para almacenar "
                + "credenciales de HSM'): kv mount asm-<suffix>, secret asm-<suffix>/hsm, policy, kubernetes auth and role istiod.")
class VaultSetup extends Step {
    static final long MAX_LEASE_TTL_SECONDS = 87600L * 3600, ROLE_TTL_SECONDS = 768L * 3600;

    @Mixin Opts.Vault vault;
    @Mixin Opts.Cluster cluster;

    @Option(names = "--client-cert", required = true, paramLabel = "FILE", description = "HSM client certificate (PEM).")
    Path clientCert;

    @Option(names = "--client-key", required = true, paramLabel = "FILE", description = "HSM client key (PEM, mode 0600).")
    Path clientKey;

    @Option(names = "--server-cert", required = true, paramLabel = "FILE", description = "HSM server certificate (PEM).")
    Path serverCert;

    @Option(names = "--pin-file", defaultValue = "${env:P11_PIN_FILE}", paramLabel = "FILE",
            description = "File holding the HSM slot PIN, mode 0600 (env P11_PIN_FILE).")
    Path pinFile;

    @Mixin Opts.ReviewerDir dir;

    @Option(names = "--rewrite-reviewer-jwt", description = "Write the auth config even if it looks current: Vault never "
            + "shows the token reviewer JWT it holds, so a new one (k8s-vault-prep after its Secret was re-created) needs this.")
    boolean rewriteJwt;

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

    @Override
    protected void run() throws Exception {
        String suffix = cluster.require();
        String mount = Vault.mount(suffix), secretPath = Vault.secretPath(suffix), policy = Vault.policy(suffix);
        String authConfig = "auth/" + secretPath + "/config", rolePath = "auth/" + secretPath + "/role/" + Vault.ROLE;
        out.put("mount", mount).put("secretPath", secretPath).put("policy", policy).put("authPath", secretPath).put("role", Vault.ROLE);

        // Every input is read and checked before Vault is touched.
        Vault.ReviewerFiles files = Vault.ReviewerFiles.in(dir.of(suffix), suffix);
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

        Vault v = Vault.connect(vault);
        v.sayWhere(out);
        v.requireUnsealed("configure " + mount);
        List<Change> plan = new ArrayList<>();

        // kv version 1 at asm-<suffix>, max-lease-ttl 87600h
        JsonNode m = v.read("sys/mounts", "list the secrets engines").path(mount + "/");
        if (m.isMissingNode()) m = null;
        if (m == null) {
            plan.add(new Change("mount", "enable kv (version 1) secrets engine at " + mount + "/, max-lease-ttl " + Vault.MAX_LEASE_TTL,
                    "sys/mounts/" + mount, false, Map.of("type", "kv", "options", Map.of("version", "1"),
                            "config", Map.of("max_lease_ttl", Vault.MAX_LEASE_TTL))));
        } else {
            String type = m.path("type").asString(""), version = m.path("options").path("version").asString("1");
            if (!type.equals("kv") || !(version.equals("1") || version.isEmpty()))
                throw Fail.failed(mount + "/ is already a " + type + (type.equals("kv") ? " version " + version : "")
                        + " engine; istiod reads " + secretPath + " from kv version 1",
                        "check what uses it, then: vault secrets disable " + mount + " (or choose another cluster suffix)");
            long ttl = m.path("config").path("max_lease_ttl").asLong(0);
            if (ttl != MAX_LEASE_TTL_SECONDS)
                plan.add(new Change("mount", "tune " + mount + "/ max-lease-ttl from " + ttl + "s to " + Vault.MAX_LEASE_TTL,
                        "sys/mounts/" + mount + "/tune", false, Map.of("max_lease_ttl", Vault.MAX_LEASE_TTL)));
            else out.say("%s/ already kv version 1 with max-lease-ttl %s", mount, Vault.MAX_LEASE_TTL);
        }

        // the HSM credentials: compared key by key, never shown
        JsonNode stored = m == null ? null : v.read(secretPath, "read " + secretPath);
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

        // policy: read on the secret, nothing else
        String policyText = "path \"" + secretPath + "\" {\n  capabilities = [\"read\"]\n}\n";
        JsonNode pol = v.read("sys/policies/acl/" + policy, "read policy " + policy);
        if (pol == null || !squash(pol.path("policy").asString("")).equals(squash(policyText)))
            plan.add(new Change("policy", (pol == null ? "write" : "replace") + " policy " + policy + " (read on " + secretPath + ")",
                    "sys/policies/acl/" + policy, false, Map.of("policy", policyText)));
        else out.say("policy %s already grants read on %s", policy, secretPath);

        // kubernetes auth at asm-<suffix>/hsm, its config and the role istiod
        JsonNode auth = v.read("sys/auth", "list the auth methods").path(secretPath + "/");
        if (auth.isMissingNode()) auth = null;
        if (auth != null && !auth.path("type").asString("").equals("kubernetes"))
            throw Fail.failed("auth/" + secretPath + " is already a " + auth.path("type").asString() + " auth method, not kubernetes",
                    "check what uses it, then: vault auth disable " + secretPath);
        if (auth == null)
            plan.add(new Change("auth", "enable kubernetes auth at auth/" + secretPath,
                    "sys/auth/" + secretPath, true, Map.of("type", "kubernetes")));
        else out.say("kubernetes auth already enabled at auth/%s", secretPath);

        Map<String, Object> config = Map.of("kubernetes_host", k8sAddr, "kubernetes_ca_cert", Pki.pem(k8sCa.get(0))
                + k8sCa.stream().skip(1).map(Pki::pem).reduce("", String::concat), "token_reviewer_jwt", jwt);
        JsonNode cfg = auth == null ? null : v.read(authConfig, "read " + authConfig);
        List<String> cfgDiffer = new ArrayList<>();
        if (cfg != null) {
            if (!k8sAddr.equals(cfg.path("kubernetes_host").asString(""))) cfgDiffer.add("kubernetes_host");
            if (!sameCertificates(cfg.path("kubernetes_ca_cert").asString(""), k8sCa)) cfgDiffer.add("kubernetes_ca_cert");
            if (!cfg.path("token_reviewer_jwt_set").asBoolean(false) || rewriteJwt) cfgDiffer.add("token_reviewer_jwt");
        }
        if (cfg == null || !cfgDiffer.isEmpty())
            plan.add(new Change("config", "write " + authConfig + (cfg == null ? "" : " (" + String.join(", ", cfgDiffer) + ")"),
                    authConfig, false, config));
        else out.say("%s already points at %s (its token reviewer JWT cannot be read back: --rewrite-reviewer-jwt writes it again)",
                authConfig, k8sAddr);

        Map<String, Object> role = new LinkedHashMap<>();
        role.put("bound_service_account_names", List.of(Kube.ISTIOD_SA));
        role.put("bound_service_account_namespaces", List.of(Kube.ISTIO_NAMESPACE));
        role.put("token_policies", List.of(policy));
        role.put("token_ttl", Vault.ROLE_TTL);
        JsonNode r = auth == null ? null : v.read(rolePath, "read " + rolePath);
        List<String> roleDiffer = new ArrayList<>();
        if (r != null) {
            for (String list : List.of("bound_service_account_names", "bound_service_account_namespaces", "token_policies"))
                if (!strings(r.path(list)).equals(new TreeSet<>((List<?>) role.get(list)))) roleDiffer.add(list + " " + strings(r.path(list)));
            if (r.path("token_ttl").asLong(-1) != ROLE_TTL_SECONDS) roleDiffer.add("token_ttl " + r.path("token_ttl").asLong(-1) + "s");
        }
        if (r == null || !roleDiffer.isEmpty())
            plan.add(new Change("role", (r == null ? "write" : "update") + " role " + Vault.ROLE + " at auth/" + secretPath + " ("
                    + Kube.ISTIO_NAMESPACE + "/" + Kube.ISTIOD_SA + ", policy " + policy + ", ttl " + Vault.ROLE_TTL + ")"
                    + (r == null ? "" : ", was: " + String.join("; ", roleDiffer)), rolePath, false, role));
        else out.say("role %s already binds %s/%s to %s, ttl %s", Vault.ROLE, Kube.ISTIO_NAMESPACE, Kube.ISTIOD_SA, policy, Vault.ROLE_TTL);

        out.put("changes", plan.stream().map(Change::doing).toList());
        if (plan.isEmpty()) return;
        requireRights(v, plan);
        // each write is whole (Vault.write); stopped between two, the run says which parts are done
        List<String> pending = new ArrayList<>(plan.stream().map(Change::part).toList());
        if (!out.dryRun()) Interrupt.state(() -> {
            List<String> done = PARTS.stream().filter(part -> !pending.contains(part)).toList();
            out.put("done", done).put("notDone", pending);
            return pending.isEmpty() ? mount + " is set up: " + String.join(", ", done) + " done"
                    : mount + " is half set up: done " + (done.isEmpty() ? "nothing" : String.join(", ", done))
                    + "; not done " + String.join(", ", pending);
        });
        for (Change c : plan) {
            if (!out.dryRun()) v.write(c.path(), c.body(), c.doing());
            pending.remove(c.part());
            out.change(out.dryRun() ? c.doing() : c.done());
        }
        if (!out.dryRun()) out.say("Record the secret path for install-asm: export HSM_SECRET_PATH=%s", secretPath);
    }

    /** Refuses, before the first write, a token that could not make every write of the plan (nothing half-done). */
    private static void requireRights(Vault v, List<Change> plan) {
        JsonNode caps = v.write("sys/capabilities-self", Map.of("paths", plan.stream().map(Change::path).toList()),
                "check the token's rights");
        for (Change c : plan) {
            Set<String> have = strings(caps.path(c.path()));
            boolean ok = have.contains("root")
                    || ((have.contains("create") || have.contains("update")) && (!c.sudo() || have.contains("sudo")));
            if (!ok)
                throw Fail.failed("the Vault token may not " + c.doing() + " (capabilities on " + c.path() + ": " + have
                        + "); nothing was changed", "log in with admin rights (vault login), then re-run");
        }
    }

    private static Path mustExist(Path file, String what, String hint) {
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

    private static Set<String> strings(JsonNode list) {
        Set<String> s = new TreeSet<>();
        if (list.isArray()) list.forEach(n -> s.add(n.asString()));
        else if (list.isString() && !list.asString().isEmpty()) s.addAll(List.of(list.asString().split(",")));
        return s;
    }

    private static String squash(String s) {
        return s.replaceAll("\\s+", " ").trim();
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new VaultSetup()).execute(args));
    }
}
