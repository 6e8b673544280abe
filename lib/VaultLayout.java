package asmhsm;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import tools.jackson.databind.JsonNode;

/**
 * What the procedure creates in Vault for one cluster suffix, by the guide's names, once:
 * vault-setup applies it, status and vault-verify compare against it, teardown removes it.
 * A Vault path or TTL is changed here and nowhere else.
 */
public record VaultLayout(String suffix) {
    /** The role istiod's vault client logs in with. */
    public static final String ROLE = "istiod";
    /** The keys of the HSM secret, as istiod's vault client reads them. */
    public static final List<String> HSM_KEYS = List.of("clientcert", "clientkey", "servercert", "PIN");
    public static final Duration MAX_LEASE_TTL = Duration.ofHours(87600), ROLE_TTL = Duration.ofHours(768);

    public static VaultLayout of(String suffix) {
        return new VaultLayout(suffix);
    }

    /** The kv (version 1) mount: {@code asm-<suffix>}. */
    public String mount() { return "asm-" + suffix; }
    /** The HSM secret (HSM_SECRET_PATH): {@code asm-<suffix>/hsm}. */
    public String secretPath() { return mount() + "/hsm"; }
    public String policy() { return "asm-" + suffix + "-hsm-policy"; }
    /** Read on the secret, nothing else. */
    public String policyBody() { return "path \"" + secretPath() + "\" {\n  capabilities = [\"read\"]\n}\n"; }
    /** The guide mounts the Kubernetes auth method at the secret's path. */
    public String authPath() { return secretPath(); }
    public String authConfigPath() { return "auth/" + authPath() + "/config"; }
    public String rolePath() { return "auth/" + authPath() + "/role/" + ROLE; }
    /** Where istiod's vault client logs in: {@code auth/asm-<suffix>/hsm/login}. */
    public String loginPath() { return "auth/" + authPath() + "/login"; }

    // the system paths the parts are made, read and removed at
    public String mountApi() { return "sys/mounts/" + mount(); }
    public String policyApi() { return "sys/policies/acl/" + policy(); }
    public String authApi() { return "sys/auth/" + authPath(); }

    /** The service account the role binds: istiod's. */
    public static String boundAccount() { return KubeLayout.ISTIO_NAMESPACE + "/" + KubeLayout.ISTIOD_SA; }

    /** A TTL as Vault's CLI and the guide write it: 87600h. */
    public static String hours(Duration d) { return d.toHours() + "h"; }

    public Map<String, Object> mountBody() {
        return Map.of("type", "kv", "options", Map.of("version", "1"), "config", Map.of("max_lease_ttl", hours(MAX_LEASE_TTL)));
    }

    public Map<String, Object> roleBody() {
        Map<String, Object> role = new LinkedHashMap<>();
        role.put("bound_service_account_names", List.of(KubeLayout.ISTIOD_SA));
        role.put("bound_service_account_namespaces", List.of(KubeLayout.ISTIO_NAMESPACE));
        role.put("token_policies", List.of(policy()));
        role.put("token_ttl", hours(ROLE_TTL));
        return role;
    }

    // ------------------------------------------------------------ comparisons (vault-setup and status word them)

    /** Why a mount (sys/mounts' entry) is not the layout's kv version 1, or null; a TTL is tuned, not refused. */
    public static String mountTypeProblem(JsonNode m) {
        String type = m.path("type").asString(""), version = m.path("options").path("version").asString("1");
        return type.equals("kv") && (version.equals("1") || version.isEmpty()) ? null
                : type + (type.equals("kv") ? " version " + version : "");
    }

    public static long maxLeaseTtlSeconds(JsonNode m) { return m.path("config").path("max_lease_ttl").asLong(0); }

    /** The HSM keys the secret lacks (blank counts as absent). */
    public static List<String> absentKeys(JsonNode secret) {
        return HSM_KEYS.stream().filter(k -> secret.path(k).asString("").isBlank()).toList();
    }

    /** Whether a policy's text is the layout's (whitespace aside). */
    public boolean policyMatches(String text) {
        return squash(text).equals(squash(policyBody()));
    }

    /** The role's fields that differ from the layout's, as "field value" words; empty when it matches. */
    public List<String> roleDifferences(JsonNode r) {
        List<String> differ = new java.util.ArrayList<>();
        Map<String, Object> want = roleBody();
        for (String list : List.of("bound_service_account_names", "bound_service_account_namespaces", "token_policies")) {
            Set<String> have = strings(r.path(list));
            if (list.equals("token_policies") && have.isEmpty()) have = strings(r.path("policies"));
            if (!have.equals(new TreeSet<>((List<?>) want.get(list)))) differ.add(list + " " + have);
        }
        long ttl = r.has("token_ttl") ? r.path("token_ttl").asLong(-1) : r.path("ttl").asLong(-1);
        if (ttl != ROLE_TTL.toSeconds()) differ.add("token_ttl " + ttl + "s, not " + hours(ROLE_TTL));
        return differ;
    }

    /** A list field as Vault returns it: an array, or a comma-separated string. */
    public static Set<String> strings(JsonNode list) {
        Set<String> s = new TreeSet<>();
        if (list.isArray()) list.forEach(n -> s.add(n.asString()));
        else if (list.isString() && !list.asString().isEmpty()) s.addAll(List.of(list.asString().split(",")));
        return s;
    }

    static String squash(String s) {
        return s.replaceAll("\\s+", " ").trim();
    }

    // ------------------------------------------------------------ what is there

    /** The parts of the layout Vault holds now: read with the operator's token. */
    public record Present(JsonNode mount, JsonNode secret, JsonNode policy, JsonNode auth, JsonNode config, JsonNode role) {
        public boolean none() {
            return mount == null && secret == null && policy == null && auth == null && config == null && role == null;
        }
    }

    /** Reads each part; a mount or auth method that is absent, or of another kind, leaves what lives under it null. */
    public Present read(Vault v) {
        JsonNode m = v.read("sys/mounts", "list the secrets engines").path(mount() + "/");
        if (m.isMissingNode() || m.isNull()) m = null;
        JsonNode secret = m == null || mountTypeProblem(m) != null ? null : v.read(secretPath(), "read " + secretPath());
        JsonNode policy = v.read(policyApi(), "read policy " + policy());
        JsonNode auth = v.read("sys/auth", "list the auth methods").path(authPath() + "/");
        if (auth.isMissingNode() || auth.isNull()) auth = null;
        boolean kubernetes = auth != null && "kubernetes".equals(auth.path("type").asString(""));
        JsonNode config = kubernetes ? v.read(authConfigPath(), "read " + authConfigPath()) : null;
        JsonNode role = kubernetes ? v.read(rolePath(), "read " + rolePath()) : null;
        return new Present(m, secret, policy, auth, config, role);
    }

    /** One removal of teardown: what the operator reads and the path deleted. */
    public record Removal(String doing, String path) {}

    /**
     * What teardown removes, in the reverse of vault-setup's order: role and config go with the auth
     * method, the secret with its mount. Only parts that are there and are the layout's kind are named;
     * a mount or auth method of another kind at the layout's path is refused (something else uses it).
     */
    public List<Removal> removals(Present p) {
        List<Removal> plan = new java.util.ArrayList<>();
        if (p.auth() != null) {
            if (!"kubernetes".equals(p.auth().path("type").asString("")))
                throw Fail.failed("auth/" + authPath() + " is a " + p.auth().path("type").asString() + " auth method, not the kubernetes one vault-setup "
                        + "enables; teardown leaves it", "check what uses it; remove it yourself if it is yours (vault auth disable " + authPath() + ")");
            plan.add(new Removal("disable kubernetes auth at auth/" + authPath() + " (its config and role " + ROLE + ")", authApi()));
        }
        if (p.policy() != null) plan.add(new Removal("delete policy " + policy(), policyApi()));
        if (p.mount() != null) {
            String other = mountTypeProblem(p.mount());
            if (other != null)
                throw Fail.failed(mount() + "/ is a " + other + " engine, not the kv version 1 vault-setup enables; teardown leaves it",
                        "check what uses it; remove it yourself if it is yours (vault secrets disable " + mount() + ")");
            plan.add(new Removal("disable secrets engine " + mount() + "/ (the HSM credentials at " + secretPath() + ")", mountApi()));
        }
        return plan;
    }
}
