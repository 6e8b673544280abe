package asmhsm;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import picocli.CommandLine.Model.CommandSpec;

/**
 * What every step's --help shows besides its options: examples, from this one table (the
 * footer of each command, set by {@link Step#shared}), and which steps' dry run is a manifest.
 * Examples use the guide's environment (P11_TOKEN, CLUSTER_SUFFIX, VAULT_ADDR ... exported as
 * the runbooks do) and spell out only what the step needs on top; UsualVerbsTest parses each.
 */
public final class Usage {
    private Usage() {}

    /** Step (as typed after asm) -> example command lines (at most 76 characters: --help does not wrap them), and # comments. */
    static final Map<String, List<String>> EXAMPLES = table(
            "preflight", List.of("# the cluster, HSM and Vault against the guide's requirements", "asm preflight",
                    "asm preflight --skip vault --json"),
            "grant-admin", List.of("asm grant-admin --user admin@example.com",
                    "# the ClusterRoleBinding it would make, as YAML", "asm grant-admin --user admin@example.com --dry-run"),
            "gen-kek", List.of("# a new KEK; prints its ID", "asm gen-kek", "# the KEK with this ID, made if missing", "asm gen-kek --kek-id kek-c1"),
            "import-ca", List.of("asm import-ca -f root-cert.pem"),
            "hsm-info", List.of("asm hsm-info", "asm hsm-info -o yaml"),
            "k8s-vault-prep", List.of("asm k8s-vault-prep --cluster-suffix c1",
                    "# the objects it would apply, for kubectl apply -f", "asm k8s-vault-prep --cluster-suffix c1 --dry-run > prep.yaml"),
            "vault-setup", List.of("# CLUSTER_SUFFIX, VAULT_ADDR, P11_PIN_FILE exported as the guide does",
                    "asm vault-setup --client-cert c.pem --client-key k.pem --server-cert s.pem"),
            "vault-verify", List.of("asm vault-verify --cluster-suffix c1 --create-sa"),
            "fetch-release", List.of("asm fetch-release", "asm fetch-release --asm-version 1.9.8-asm.6 --dir releases"),
            "control-plane-prep", List.of("asm control-plane-prep --vault-cacert vault-ca.pem",
                    "asm control-plane-prep --dry-run | kubectl apply --dry-run=server -f -"),
            "istiod-service", List.of("asm istiod-service", "# the Service, for kubectl apply -f", "asm istiod-service --dry-run > istiod.yaml"),
            "install-asm", List.of("# the istioctl command it would run", "asm install-asm --print", "asm install-asm -y"),
            "istiod-status", List.of("asm istiod-status --wait --timeout 5m"),
            "decrypt-csr", List.of("asm decrypt-csr -f encrypted_csr.json -o csr.pem", "asm decrypt-csr --from-secret -o csr.pem"),
            "sign-csr", List.of("asm sign-csr --csr csr.pem --root-cert root.pem --root-key-label root-key"),
            "upload-chain", List.of("asm upload-chain -f cert-chain.pem",
                    "# the Secret it would write, its values left out", "asm upload-chain -f cert-chain.pem --replace --dry-run"),
            "load-root", List.of("asm load-root --wait"),
            "verify-ca", List.of("asm verify-ca"),
            "verify-mtls", List.of("asm verify-mtls --pod productpage-v1-0 -n default --target details:9080"),
            "enable-injection", List.of("asm enable-injection -n default --restart",
                    "# the Namespace with its new label", "asm enable-injection -n default --dry-run"),
            "external-ip", List.of("asm external-ip --mode integrated --ip 203.0.113.10", "asm external-ip --mode manual --ip 203.0.113.10"),
            "status", List.of("asm status", "asm status --all-suffixes -o json"),
            "renew-ca", List.of("# renews only within 30 days of expiry", "asm renew-ca --root-key-label root-key",
                    "asm renew-ca --root-key-label root-key --force --dry-run"),
            "rotate-ca", List.of("# a new CA key: back up, remove istiod's CA Secrets, restart", "asm rotate-ca",
                    "# once the new chain is loaded: the backup goes", "asm rotate-ca --json"),
            "teardown", List.of("# the plan only", "asm teardown --cluster-suffix c1 --dry-run", "asm teardown --cluster-suffix c1"),
            "session start", List.of("asm session start --idle 2h"),
            "session status", List.of("asm session status --json"),
            "session stop", List.of("asm session stop"),
            "version", List.of("asm version", "asm version -o json"));

    /**
     * The steps that make Kubernetes objects: under --dry-run their stdout is the objects as YAML
     * (see Out#manifest), their lines go to stderr.
     */
    static final Set<String> MANIFEST_STEPS = Set.of("grant-admin", "k8s-vault-prep", "control-plane-prep", "istiod-service",
            "upload-chain", "enable-injection", "external-ip");

    private static Map<String, List<String>> table(Object... pairs) {
        Map<String, List<String>> t = new LinkedHashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            @SuppressWarnings("unchecked") List<String> lines = (List<String>) pairs[i + 1];
            t.put((String) pairs[i], lines);
        }
        return java.util.Collections.unmodifiableMap(t);
    }

    /** The examples of this step, as the footer of its --help. */
    static void addExamples(CommandSpec spec) {
        List<String> lines = EXAMPLES.get(Step.name(spec));
        if (lines == null) return;
        List<String> footer = new java.util.ArrayList<>(List.of(spec.usageMessage().footer()));
        footer.add("%nExamples:");
        for (String l : lines) footer.add("  " + l.replace("%", "%%"));
        footer.add("");
        spec.usageMessage().footer(footer.toArray(String[]::new));
    }
}
