package asmhsm;

import io.github.jopenlibs.vault.SslConfig;
import io.github.jopenlibs.vault.VaultConfig;
import io.github.jopenlibs.vault.VaultException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Vault (or OpenBao), through vault-java-driver, configured as the Vault CLI is:
 * VAULT_ADDR, VAULT_TOKEN or the token file `vault login` writes, VAULT_CACERT.
 * The token is never taken from an option and never printed.
 */
public final class Vault {
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
        if (o.addr == null || o.addr.isBlank())
            throw Fail.badInput("no Vault address given", "export VAULT_ADDR=https://VAULT_IP:PORT or pass --vault-addr");
        if (!o.addr.matches("https?://[^/\\s]+/?"))
            throw Fail.badInput("Vault address '" + o.addr + "' is not http(s)://HOST:PORT", "fix VAULT_ADDR");
        try {
            SslConfig ssl = new SslConfig();
            if (o.caCert != null) {
                if (!Files.isRegularFile(o.caCert))
                    throw Fail.badInput("Vault CA file " + o.caCert + " does not exist", "fix VAULT_CACERT or --vault-cacert");
                ssl = ssl.pemFile(o.caCert.toFile());
            }
            VaultConfig cfg = new VaultConfig().address(o.addr).engineVersion(1).openTimeout(10).readTimeout(30)
                    .sslConfig(ssl.build());
            if (token != null) cfg = cfg.token(token);
            return new Vault(io.github.jopenlibs.vault.Vault.create(cfg.build()), o.addr);
        } catch (VaultException e) {
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

    /** One line for what went wrong talking to Vault, and what to do. `what` names the operation. */
    public Fail explain(VaultException e, String what) {
        int code = e.getHttpStatusCode();
        String msg = String.valueOf(e.getMessage());
        if (code == 403 || code == 401)
            return Fail.failed("Vault at " + addr + " refused to " + what + " (" + code + " permission denied)",
                    "log in with admin rights (vault login) or check VAULT_TOKEN");
        if (code == 503 || msg.contains("sealed"))
            return Fail.failed("Vault at " + addr + " is sealed; cannot " + what, "unseal it (vault operator unseal), then re-run");
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        if (root instanceof javax.net.ssl.SSLException || root instanceof java.security.cert.CertificateException
                || root instanceof java.security.GeneralSecurityException || msg.contains("PKIX") || msg.contains("SSL"))
            return Fail.failed("TLS to Vault at " + addr + " failed: the server's certificate is not trusted (" + root.getMessage() + ")",
                    "set VAULT_CACERT to the CA that signed Vault's certificate");
        if (root instanceof java.net.ConnectException || root instanceof java.net.UnknownHostException
                || root instanceof java.net.SocketTimeoutException || root instanceof java.net.NoRouteToHostException)
            return Fail.failed("cannot reach Vault at " + addr + " to " + what + ": " + root.getMessage(),
                    "check VAULT_ADDR and that Vault is running and reachable");
        return Fail.failed("Vault could not " + what + " (" + (code > 0 ? "HTTP " + code + ": " : "") + msg + ")",
                "see the message above; --verbose shows the details");
    }
}
