package asmhsm;

import io.github.jopenlibs.vault.VaultConfig;
import io.github.jopenlibs.vault.VaultException;
import java.net.http.HttpClient;
import java.time.Duration;
import javax.net.ssl.SSLContext;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import io.github.jopenlibs.vault.response.LogicalResponse;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Vault (or OpenBao), through vault-java-driver, configured as the Vault CLI is:
 * VAULT_ADDR, VAULT_TOKEN or the token file `vault login` writes, VAULT_CACERT.
 * The token is never taken from an option and never printed.
 */
public final class Vault {
    // What vault-setup creates, by the guide's names (status and install-asm read them from here).
    public static final String ROLE = "istiod";
    public static final List<String> HSM_KEYS = List.of("clientcert", "clientkey", "servercert", "PIN");
    public static final String MAX_LEASE_TTL = "87600h";
    public static final String ROLE_TTL = "768h";

    /** The kv (version 1) mount: {@code asm-<suffix>}. */
    public static String mount(String suffix) { return "asm-" + suffix; }
    /** The HSM secret, and also the path of the Kubernetes auth method: {@code asm-<suffix>/hsm} (HSM_SECRET_PATH). */
    public static String secretPath(String suffix) { return mount(suffix) + "/hsm"; }
    public static String policy(String suffix) { return "asm-" + suffix + "-hsm-policy"; }
    /** Where istiod's vault client logs in: {@code auth/asm-<suffix>/hsm/login}. */
    public static String loginPath(String suffix) { return "auth/" + secretPath(suffix) + "/login"; }

    /** The three files k8s-vault-prep writes and vault-setup feeds to Vault's Kubernetes auth config. */
    public record ReviewerFiles(Path jwt, Path addr, Path cert) {
        public static ReviewerFiles in(Path dir, String suffix) {
            return new ReviewerFiles(dir.resolve(suffix + "-tokenreview_jwt"), dir.resolve(suffix + "-k8s_addr"),
                    dir.resolve(suffix + "-k8s_cert"));
        }
    }

    private static final JsonMapper JSON = JsonMapper.builder().build();

    public final io.github.jopenlibs.vault.Vault api;
    public final String addr;

    private Vault(io.github.jopenlibs.vault.Vault api, String addr) {
        this.api = api;
        this.addr = addr;
    }

    /** A client with the operator's token. */
    public static Vault connect(Opts.Vault o) {
        return connect(o, token());
    }

    /** A client with a given token (null: none, e.g. to log in). */
    public static Vault connect(Opts.Vault o, String token) {
        o.requireAddr();
        try {
            // One HTTP client (and TLS connection) for this Vault's requests: without one, the driver
            // builds a client, with its TLS handshake and selector thread, per request. With
            // VAULT_CACERT, TLS trusts that CA only, as the Vault CLI does; without, the JVM's CAs.
            // (The driver's sys() calls ignore this client: this class does not use them.)
            HttpClient.Builder http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                    .connectTimeout(Duration.ofSeconds(10));
            if (o.caCert != null && !o.caCert.toString().isEmpty()) {
                if (!Files.isRegularFile(o.caCert))
                    throw Fail.badInput("Vault CA file " + o.caCert + " does not exist", "fix VAULT_CACERT or --vault-cacert");
                String pem = Env.readPem(o.caCert, "Vault CA file", "fix VAULT_CACERT or --vault-cacert");
                SSLContext tls = SSLContext.getInstance("TLS");
                try {
                    tls.init(null, Http.trustOnly(new java.io.ByteArrayInputStream(pem.getBytes(StandardCharsets.UTF_8))), null);
                } catch (java.security.GeneralSecurityException e) {
                    throw Fail.badInput("Vault CA file " + o.caCert + " holds no usable CA certificate (" + e.getClass().getSimpleName() + ")",
                            "fix VAULT_CACERT or --vault-cacert: the PEM certificate of the CA that signed Vault's");
                }
                http.sslContext(tls);
            }
            VaultConfig cfg = new VaultConfig().address(o.addr).engineVersion(1).openTimeout(10).readTimeout(30)
                    .httpClient(http.build());
            if (token != null) cfg = cfg.token(token);
            return new Vault(io.github.jopenlibs.vault.Vault.create(cfg.build()), o.addr);
        } catch (VaultException | java.io.IOException | java.security.GeneralSecurityException e) {
            throw Fail.badInput("cannot set up the Vault client: " + e.getMessage(), "check VAULT_ADDR and VAULT_CACERT");
        }
    }

    /** The operator's token as the Vault CLI finds it: VAULT_TOKEN, else ~/.vault-token. */
    public static String token() {
        String t = Env.get("VAULT_TOKEN");
        if (t != null) return t.trim();
        Path file = Env.userHome().resolve(".vault-token");
        if (Files.isRegularFile(file)) {
            try {
                String s = Files.readString(file, StandardCharsets.UTF_8).trim();
                if (!s.isEmpty()) return s;
            } catch (java.io.IOException e) {
                throw Fail.badInput("cannot read " + file + ": " + e.getMessage(), "run vault login again");
            }
        }
        throw Fail.badInput("no Vault token: VAULT_TOKEN is unset and ~/.vault-token does not exist",
                "run `vault login` (admin rights) or export VAULT_TOKEN");
    }

    // ------------------------------------------------------------ requests
    // vault-java-driver's logical() returns most 4xx answers as responses instead of throwing:
    // these wrappers turn every answer into data, null (nothing there) or a Fail.

    /** GET {@code path}: the answer's {@code data}, or null when nothing is there (404). */
    public JsonNode read(String path, String what) {
        try {
            return readOrThrow(path);
        } catch (VaultException e) {
            throw explain(e, what);
        }
    }

    /** GET for a caller that judges refusals itself: null on 404, any other 4xx as a VaultException with its status. */
    public JsonNode readOrThrow(String path) throws VaultException {
        return data(api.logical().read(path), true);
    }

    /**
     * POST {@code body} to {@code path} (values: strings, numbers, booleans, lists, maps). One write is
     * one change made whole: Ctrl-C during it waits for Vault's answer (see Interrupt.unit).
     */
    public JsonNode write(String path, Map<String, Object> body, String what) {
        Map<String, Object> flat = new java.util.LinkedHashMap<>();
        body.forEach((k, v) -> flat.put(k, v instanceof Map || v instanceof List
                ? io.github.jopenlibs.vault.json.Json.parse(Out.toJson(v)) : v));
        LogicalResponse answer;
        try (Interrupt.Unit whole = Interrupt.unit()) {
            answer = api.logical().write(path, flat);
        } catch (VaultException e) {
            throw explain(e, what);
        }
        try {
            return data(answer, false);
        } catch (VaultException e) {
            throw explain(e, what);
        }
    }

    /**
     * The HSM PIN stored at the suffix's secret, as istiod's vaultclient will hand it to the plugin;
     * null when there is no secret or no PIN in it. Fails (exit 1) when the token may not read it.
     * The caller wipes the array; the PIN is never shown.
     */
    public char[] hsmPin(String suffix) {
        JsonNode s = read(secretPath(suffix), "read " + secretPath(suffix));
        JsonNode pin = s == null ? null : s.get("PIN");
        return pin == null || !pin.isString() || pin.asString().isEmpty() ? null : pin.asString().toCharArray();
    }

    /** Fails unless Vault answers and is unsealed. */
    public void requireUnsealed(String what) {
        if (sealed(what)) throw Fail.failed("Vault at " + addr + " is sealed; cannot " + what, "unseal it (vault operator unseal), then re-run");
    }

    /** Whether Vault is sealed (sys/seal-status needs no token); a Vault that does not answer fails with what was being done. */
    public boolean sealed(String what) {
        try {
            return readOrThrow("sys/seal-status").path("sealed").asBoolean(false);
        } catch (VaultException e) {
            throw explain(e, what);
        }
    }

    private JsonNode data(LogicalResponse r, boolean nullOn404) throws VaultException {
        int status = r.getRestResponse().getStatus();
        byte[] body = r.getRestResponse().getBody();
        if (status == 404 && nullOn404) return null;
        if (status >= 400)   // worded as the driver words the errors it throws itself
            throw new VaultException("Vault responded with HTTP status code: " + status + "\nResponse body: "
                    + (body == null ? "" : new String(body, StandardCharsets.UTF_8)), status);
        if (body == null || body.length == 0) return JSON.createObjectNode();
        JsonNode doc = JSON.readTree(body);
        return doc.has("data") && !doc.get("data").isNull() ? doc.get("data") : doc;
    }

    /** Vault's error list, or the start of its body, as one line. */
    static String errors(byte[] body) {
        String text = body == null ? "" : new String(body, StandardCharsets.UTF_8);
        try {
            JsonNode errs = JSON.readTree(text).get("errors");
            if (errs != null && errs.isArray()) {
                List<String> list = new ArrayList<>();
                // "1 error occurred:\n\t* permission denied\n\n" -> "permission denied"
                errs.forEach(n -> list.add(n.asString().replaceAll("^\\d+ errors? occurred:", "")
                        .replaceAll("\\s*\\*\\s+", "; ").replaceAll("\\s+", " ").replaceAll("^[;\\s]+", "").trim()));
                if (!list.isEmpty()) return String.join("; ", list);
            }
        } catch (RuntimeException notJson) {
            // fall through
        }
        text = text.replaceAll("\\s+", " ").trim();
        return text.length() > 200 ? text.substring(0, 200) + "..." : text;
    }

    /** Vault's message in a driver exception ("Vault responded with HTTP status code: 400 Response body: {...}"). */
    public static String message(VaultException e) {
        String m = String.valueOf(e.getMessage());
        int i = m.indexOf('{');
        return i >= 0 ? errors(m.substring(i).getBytes(StandardCharsets.UTF_8)) : m.replaceAll("\\s+", " ").trim();
    }

    /** One line for what went wrong talking to Vault, and what to do. `what` names the operation. */
    public Fail explain(VaultException e, String what) {
        int code = e.getHttpStatusCode();
        String msg = String.valueOf(e.getMessage());
        if (code == 403 || code == 401)
            return Fail.failed("Vault at " + addr + " refused to " + what + " (" + code + " " + message(e) + ")",
                    "log in with admin rights (vault login) or check VAULT_TOKEN", e);
        if (code == 503 || msg.contains("Vault is sealed"))
            return Fail.failed("Vault at " + addr + " is sealed; cannot " + what, "unseal it (vault operator unseal), then re-run", e);
        List<Throwable> chain = new ArrayList<>();
        for (Throwable t = e; t != null && !chain.contains(t); t = t.getCause()) chain.add(t);
        Throwable root = chain.get(chain.size() - 1);
        // the driver's RestException sometimes keeps only the name of what it caught: look at the messages too
        String all = chain.stream().map(String::valueOf).reduce("", (x, y) -> x + " " + y);
        if (chain.stream().anyMatch(t -> t instanceof javax.net.ssl.SSLException || t instanceof java.security.GeneralSecurityException)
                || all.contains("PKIX") || all.contains("SSLHandshake") || all.contains("certification path"))
            return Fail.failed("TLS to Vault at " + addr + " failed: the server's certificate is not trusted (" + root.getMessage() + ")",
                    "set VAULT_CACERT to the CA that signed Vault's certificate", e);
        if (chain.stream().anyMatch(t -> t instanceof java.net.ConnectException || t instanceof java.net.UnknownHostException
                || t instanceof java.net.SocketTimeoutException || t instanceof java.net.NoRouteToHostException)
                || all.matches(".*java\\.net\\.(ConnectException|UnknownHostException|SocketTimeoutException|NoRouteToHostException).*"))
            return Fail.failed("cannot reach Vault at " + addr + " to " + what + " (" + chain.stream()
                            .filter(t -> t instanceof java.io.IOException).map(t -> t.getMessage() != null ? t.getMessage()
                                    : t.getClass().getSimpleName()).findFirst().orElse("no connection") + ")",
                    "check VAULT_ADDR and that Vault is running and reachable", e);
        return Fail.failed("Vault could not " + what + " (" + (code > 0 ? "HTTP " + code + ": " : "") + message(e) + ")",
                "see the message above; --verbose shows the details", e);
    }
}
