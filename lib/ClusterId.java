package asmhsm;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Which cluster a cluster suffix belongs to. A cluster is its API server URL and the SHA-256
 * fingerprint of its CA certificate (the kubeconfig's certificate-authority; without one, the
 * last certificate the server presents); the context name is only what the operator calls it.
 * k8s-vault-prep records the cluster it read in `<suffix>/<suffix>-cluster.json`, beside the
 * files Vault gets, and every step that takes a suffix and a kube context refuses another
 * cluster (see {@link Kube#connect}).
 */
public record ClusterId(String context, String server, String caSha256, String caFrom) {
    /** caFrom: the kubeconfig's certificate-authority, or the chain the server presented. */
    public static final String FROM_KUBECONFIG = "kubeconfig", FROM_SERVER = "server";

    private static final JsonMapper JSON = JsonMapper.builder().build();

    /** What a step expects: suffix and the folder of k8s-vault-prep's files (see Opts.Kube#expectedCluster). */
    public record Expected(String suffix, Path dir) {
        public Path file() { return ClusterId.file(dir, suffix); }
    }

    public static Path file(Path dir, String suffix) {
        return dir.resolve(suffix + "-cluster.json");
    }

    /** SHA-256 of a DER certificate as openssl x509 -fingerprint -sha256 prints it (AB:CD:...). */
    public static String fingerprint(byte[] der) {
        String hex;
        try {   // not Pki's: that class would load Bouncy Castle into every cluster step
            hex = java.util.HexFormat.of().withUpperCase().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(der));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < hex.length(); i += 2) b.append(i == 0 ? "" : ":").append(hex, i, i + 2);
        return b.toString();
    }

    /** The same cluster: the same API server and, when both were read the same way, the same CA. */
    public boolean sameCluster(ClusterId other) {
        return server.equals(other.server) && (caSha256 == null || other.caSha256 == null || !Objects.equals(caFrom, other.caFrom)
                || caSha256.equals(other.caSha256));
    }

    /** "context 'c1' at https://10.0.0.1:6443 (CA SHA-256 AB:CD:EF:01:...)" */
    public String describe() {
        return (context == null ? "" : "context '" + context + "' at ") + server
                + (caSha256 == null ? "" : " (CA SHA-256 " + caSha256.substring(0, Math.min(caSha256.length(), 23)) + "...)");
    }

    public Map<String, Object> json() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("context", context);
        m.put("server", server);
        m.put("caSha256", caSha256);
        m.put("caFrom", caFrom);
        return m;
    }

    /**
     * The cluster the suffix was prepared on: its record, or for a folder from before records,
     * the server of its -k8s_addr file; null when the suffix was never prepared here.
     */
    public static ClusterId recorded(Expected e) {
        Path file = e.file();
        String hint = "it is written by k8s-vault-prep --cluster-suffix " + e.suffix() + "; remove it and re-run that";
        if (Env.exists(file)) {
            String text = Env.readText(file, "cluster record", "text", hint);
            JsonNode n;
            try {
                n = JSON.readTree(text);
            } catch (RuntimeException bad) {
                n = null;
            }
            if (n == null || !n.isObject() || n.path("server").asString("").isEmpty())
                throw Env.notA(file, "cluster record", "a cluster record", text.length(), "no server", hint);
            return new ClusterId(text(n, "context"), n.path("server").asString(), text(n, "caSha256"), text(n, "caFrom"));
        }
        Path addr = Vault.ReviewerFiles.in(e.dir(), e.suffix()).addr();
        if (Files.isRegularFile(addr)) {
            String server = Env.readText(addr, "API server address", "text", hint).strip();
            if (server.endsWith("/")) server = server.substring(0, server.length() - 1);
            if (!server.isEmpty()) return new ClusterId(null, server, null, null);
        }
        return null;
    }

    private static String text(JsonNode n, String key) {
        JsonNode v = n.get(key);
        return v == null || v.isNull() ? null : v.asString();
    }

    /** The refusal of a step that would act for `suffix` on another cluster (exit 2). */
    public static Fail mismatch(Expected e, ClusterId bound, ClusterId current, String hint) {
        Path where = Env.exists(e.file()) ? e.file() : Vault.ReviewerFiles.in(e.dir(), e.suffix()).addr();
        return new Mismatch("cluster suffix " + e.suffix() + " belongs to another cluster: " + where + " records "
                + bound.describe() + ", but the current one is " + current.describe(), hint);
    }

    /** A cluster other than the suffix's: status and vault-verify tell it from other failures. */
    public static final class Mismatch extends Fail {
        Mismatch(String message, String hint) {
            super(2, message, hint, null);
        }
    }
}
