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
 * VAULT_ADDR, VAULT_TOKEN or the token file `vault login` writes, VAULT_CACERT, VAULT_NAMESPACE.
 * The token is never taken from an option and never printed.
 */
public final class Vault {
    // What vault-setup creates in Vault, by name and TTL, is VaultLayout's.

    /** The three files k8s-vault-prep writes and vault-setup feeds to Vault's Kubernetes auth config. */
    public record ReviewerFiles(Path jwt, Path addr, Path cert) {
        public static ReviewerFiles in(Path dir, String suffix) {
            return new ReviewerFiles(dir.resolve(suffix + "-tokenreview_jwt"), dir.resolve(suffix + "-k8s_addr"),
                    dir.resolve(suffix + "-k8s_cert"));
        }
    }

    private static final JsonMapper JSON = JsonMapper.builder().build();

    // The driver logs each client's namespace on java.util.logging at INFO, on stderr; the steps say it themselves.
    // Held here: java.util.logging keeps loggers only weakly, and a collected one would forget its level.
    private static final java.util.logging.Logger DRIVER_LOG = java.util.logging.Logger.getLogger("io.github.jopenlibs.vault");

    static {
        DRIVER_LOG.setLevel(java.util.logging.Level.WARNING);
    }

    public final io.github.jopenlibs.vault.Vault api;
    public final String addr;
    /** The namespace every request goes to (X-Vault-Namespace, set by the driver); null: the root namespace. */
    public final String namespace;

    private Vault(io.github.jopenlibs.vault.Vault api, String addr, String namespace) {
        this.api = api;
        this.addr = addr;
        this.namespace = namespace;
    }

    /** Where requests go, as messages name it: the address, and the namespace when there is one. */
    public String where() {
        return namespace == null ? addr : addr + " (namespace " + namespace + ")";
    }

    /** A client with the operator's token. */
    public static Vault connect(Opts.Vault o) {
        return connect(o, token());
    }

    /** A client with a given token (null: none, e.g. to log in). */
    public static Vault connect(Opts.Vault o, String token) {
        o.requireAddr();
        String namespace = o.namespace();
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
            if (namespace != null) cfg = cfg.nameSpace(namespace);
            return new Vault(io.github.jopenlibs.vault.Vault.create(cfg.build()), o.addr, namespace);
        } catch (VaultException | java.io.IOException | java.security.GeneralSecurityException e) {
            throw Fail.badInput("cannot set up the Vault client: " + e.getMessage(), "check VAULT_ADDR and VAULT_CACERT");
        }
    }

    /** The operator's token as the Vault CLI finds it: VAULT_TOKEN, else ~/.vault-token. */
    public static String token() {
        String t = Env.get("VAULT_TOKEN");
        if (t != null) return requireToken(t.trim(), "VAULT_TOKEN", "export VAULT_TOKEN=<the token vault login printed>, or unset it and run vault login");
        Path file = Env.userHome().resolve(".vault-token");
        if (Files.isRegularFile(file)) {
            try {
                String s = new String(Files.readAllBytes(file), StandardCharsets.UTF_8).trim();
                if (!s.isEmpty()) return requireToken(s, file.toString(), "run vault login again (it rewrites " + file + ")");
            } catch (java.io.IOException e) {
                throw Fail.badInput("cannot read " + file + ": " + Env.reason(e), "run vault login again");
            }
        }
        throw Fail.badInput("no Vault token: VAULT_TOKEN is unset and ~/.vault-token does not exist",
                "run `vault login` (admin rights) or export VAULT_TOKEN");
    }

    /**
     * A token is one word of visible ASCII, as Vault issues them. Anything else (a key or a kubeconfig in
     * VAULT_TOKEN or ~/.vault-token) is refused by what it is not and its size: sent as a header, the HTTP
     * client would refuse it quoting the whole value in its message.
     */
    static String requireToken(String token, String where, String hint) {
        if (token.matches("[\\x21-\\x7e]+")) return token;
        int size = token.getBytes(StandardCharsets.UTF_8).length;
        String why = token.matches("(?s).*\\s.*") ? "it has spaces or line breaks" : "it has characters other than visible ASCII";
        throw Fail.badInput(where + " does not hold a Vault token (" + size + (size == 1 ? " byte, " : " bytes, ") + why + ")", hint);
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
        String path = VaultLayout.of(suffix).secretPath();
        JsonNode s = read(path, "read " + path);
        JsonNode pin = s == null ? null : s.get("PIN");
        return pin == null || !pin.isString() || pin.asString().isEmpty() ? null : pin.asString().toCharArray();
    }

    /** DELETE {@code path} (disabling a mount or auth method, deleting a policy); one change made whole. */
    public void delete(String path, String what) {
        LogicalResponse answer;
        try (Interrupt.Unit whole = Interrupt.unit()) {
            answer = api.logical().delete(path);
        } catch (VaultException e) {
            throw explain(e, what);
        }
        try {
            data(answer, false);
        } catch (VaultException e) {
            throw explain(e, what);
        }
    }

    /** Fails unless Vault answers and is unsealed. */
    public void requireUnsealed(String what) {
        if (sealed(what)) throw Fail.failed("Vault at " + where() + " is sealed; cannot " + what, "unseal it (vault operator unseal), then re-run");
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
        if (status == 404 && errors(body).equals(NO_NAMESPACE)) throw noSuchNamespace();
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

    /** What Vault answers (404) to a request into a namespace that does not exist. */
    static final String NO_NAMESPACE = "namespace not found";

    /** Whether Vault refused this request because its namespace does not exist. */
    public static boolean isNoSuchNamespace(VaultException e) {
        return e.getHttpStatusCode() == 404 && message(e).equals(NO_NAMESPACE);
    }

    /** The namespace given is not there: a setting to fix (exit 2), never "nothing configured yet". */
    public Fail noSuchNamespace() {
        return Fail.badInput("Vault at " + addr + " has no namespace " + namespace,
                "check VAULT_NAMESPACE or --vault-namespace (bao namespace list shows them), or create it: bao namespace create " + namespace);
    }

    /** One line for what went wrong talking to Vault, and what to do. `what` names the operation. */
    public Fail explain(VaultException e, String what) {
        int code = e.getHttpStatusCode();
        String msg = String.valueOf(e.getMessage());
        if (isNoSuchNamespace(e)) return noSuchNamespace();
        if (code == 403 || code == 401)
            return Fail.failed("Vault at " + where() + " refused to " + what + " (" + code + " " + message(e) + ")",
                    "log in with admin rights (vault login) or check VAULT_TOKEN", e);
        if (code == 503 || msg.contains("Vault is sealed"))
            return Fail.failed("Vault at " + where() + " is sealed; cannot " + what, "unseal it (vault operator unseal), then re-run", e);
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
