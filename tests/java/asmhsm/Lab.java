package asmhsm;

import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.github.jopenlibs.vault.Vault;
import io.github.jopenlibs.vault.VaultConfig;
import io.github.jopenlibs.vault.VaultException;
import io.github.jopenlibs.vault.SslConfig;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * A running lab (tests/lab/up): real OpenBao, Kubernetes and SoftHSM2 on loopback.
 * Tests get one through {@link LabExtension}; every test should take its own
 * namespace, Vault path and HSM token ({@link #freshNamespace()}, {@link #freshMount()},
 * {@link #freshToken()}) so that tests never see each other's state.
 */
public final class Lab implements AutoCloseable {

    private static final Pattern EXPORT = Pattern.compile("^export ([A-Za-z_][A-Za-z0-9_]*)='([^']*)'$");
    private static final AtomicInteger SEQ = new AtomicInteger();
    private static final SecureRandom RANDOM = new SecureRandom();

    private final Path repo;
    private final Map<String, String> env;
    private KubernetesClient admin;

    Lab(Path repo, Map<String, String> env) {
        this.repo = repo;
        this.env = Map.copyOf(env);
        for (String key : List.of("ASM_LAB_DIR", "KUBECONFIG", "LAB_NOBODY_KUBECONFIG", "K8S_ADDR", "LAB_K8S_CACERT",
                "VAULT_ADDR", "VAULT_TOKEN", "VAULT_CACERT", "P11_LIB", "P11_TOKEN", "P11_PIN_FILE", "SOFTHSM2_CONF")) {
            if (!this.env.containsKey(key)) {
                throw new IllegalStateException("lab env has no " + key + ": " + this.env.keySet());
            }
        }
    }

    /** Reads the {@code export K='V'} lines that tests/lab/up writes (stdout and $ASM_LAB_DIR/env). */
    static Map<String, String> parseEnv(String text) {
        Map<String, String> env = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            if (line.isBlank()) continue;
            Matcher m = EXPORT.matcher(line.strip());
            if (!m.matches()) throw new IllegalArgumentException("not an export line: " + line);
            env.put(m.group(1), m.group(2));
        }
        return env;
    }

    /** Every variable the lab exports (the same as {@code eval "$(tests/lab/up)"} sets). */
    public Map<String, String> env() { return env; }

    public String env(String key) {
        String value = env.get(key);
        if (value == null) throw new IllegalArgumentException("lab env has no " + key);
        return value;
    }

    public Path repo() { return repo; }
    public Path dir() { return Path.of(env("ASM_LAB_DIR")); }

    // ------------------------------------------------------------------ Kubernetes

    /** Admin kubeconfig (client certificate in group system:masters). */
    public Path kubeconfig() { return Path.of(env("KUBECONFIG")); }

    /** Kubeconfig of an authenticated user bound to no role: for RBAC refusals. */
    public Path nobodyKubeconfig() { return Path.of(env("LAB_NOBODY_KUBECONFIG")); }

    /** API server URL, e.g. https://127.0.0.1:41234. */
    public String k8sAddr() { return env("K8S_ADDR"); }

    /** The cluster CA certificate (PEM): what a kubeconfig's certificate-authority-data holds. */
    public Path k8sCaCert() { return Path.of(env("LAB_K8S_CACERT")); }

    /** A shared admin client; closed with the lab. */
    public synchronized KubernetesClient admin() {
        if (admin == null) admin = client(kubeconfig());
        return admin;
    }

    /** A new client for the given kubeconfig; the caller closes it. */
    public KubernetesClient client(Path kubeconfig) {
        Config config = Config.fromKubeconfig(kubeconfig.toFile());
        return new KubernetesClientBuilder().withConfig(config).build();
    }

    /**
     * Creates a namespace with a unique name and returns the name. Waits until the
     * serviceaccount controller has made its {@code default} ServiceAccount, as a
     * token Secret for an account that does not exist yet would be deleted.
     */
    public String freshNamespace() {
        String name = "t" + SEQ.incrementAndGet() + "-" + random(4);
        KubernetesClient k = admin();
        k.namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(name).endMetadata().build()).create();
        k.serviceAccounts().inNamespace(name).withName("default")
                .waitUntilCondition(sa -> sa != null, 60, TimeUnit.SECONDS);
        return name;
    }

    // ------------------------------------------------------------------ Vault

    public String vaultAddr() { return env("VAULT_ADDR"); }
    public String vaultToken() { return env("VAULT_TOKEN"); }

    /** The CA that signed OpenBao's TLS certificate (what ConfigMap vault-tls-cert carries). */
    public Path vaultCaCert() { return Path.of(env("VAULT_CACERT")); }

    /** A unique Vault path prefix (nothing is mounted there yet), e.g. {@code t7-3fa9c2}. */
    public String freshMount() {
        return "t" + SEQ.incrementAndGet() + "-" + random(3);
    }

    /** A vault-java-driver client with the root token, TLS checked against {@link #vaultCaCert()}. */
    public Vault vault() {
        try {
            return Vault.create(new VaultConfig()
                    .address(vaultAddr())
                    .token(vaultToken())
                    .engineVersion(1)
                    .sslConfig(new SslConfig().pemFile(vaultCaCert().toFile()).build())
                    .build());
        } catch (VaultException e) {
            throw new IllegalStateException("cannot configure the Vault client: " + e.getMessage(), e);
        }
    }

    /** An SSLContext that trusts exactly the given PEM CA certificate(s). */
    public static SSLContext trusting(Path caPem) {
        try (InputStream in = Files.newInputStream(caPem)) {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            int i = 0;
            for (var cert : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                ks.setCertificateEntry("ca" + i++, cert);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            return ctx;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot load CA " + caPem + ": " + e.getMessage(), e);
        }
    }

    // ------------------------------------------------------------------ HSM

    /** The lab's own token (label asm-lab) as env entries SOFTHSM2_CONF, P11_LIB, P11_TOKEN, P11_PIN_FILE. */
    public Map<String, String> hsmEnv() {
        Map<String, String> m = new LinkedHashMap<>();
        for (String key : List.of("SOFTHSM2_CONF", "P11_LIB", "P11_TOKEN", "P11_PIN_FILE")) m.put(key, env(key));
        return m;
    }

    /**
     * A new SoftHSM2 token in its own directory (own softhsm2.conf, random PIN in a
     * 0600 file), made by tests/lab/hsm-token. Returns SOFTHSM2_CONF, P11_LIB,
     * P11_TOKEN and P11_PIN_FILE for it.
     */
    public Map<String, String> freshToken() {
        String name = "t" + SEQ.incrementAndGet() + "-" + random(3);
        Path dir = dir().resolve("tokens").resolve(name);
        String out = run(List.of(repo.resolve("tests/lab/hsm-token").toString(), dir.toString(), name),
                Map.of("P11_LIB", env("P11_LIB")));
        return parseEnv(out);
    }

    // ------------------------------------------------------------------ helpers

    private static String random(int bytes) {
        byte[] b = new byte[bytes];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    /** Runs a lab script; returns its stdout, fails with its stderr. */
    static String run(List<String> command, Map<String, String> extraEnv) {
        try {
            ProcessBuilder pb = new ProcessBuilder(command);
            pb.environment().putAll(extraEnv);
            Path err = Files.createTempFile("asm-lab", ".err");
            try {
                pb.redirectError(err.toFile());
                Process p = pb.start();
                p.getOutputStream().close();
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (!p.waitFor(5, TimeUnit.MINUTES)) {
                    p.destroyForcibly();
                    throw new IllegalStateException(command.get(0) + " timed out");
                }
                if (p.exitValue() != 0) {
                    throw new IllegalStateException(command + " failed (exit " + p.exitValue() + "):\n"
                            + Files.readString(err));
                }
                return out;
            } finally {
                Files.deleteIfExists(err);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    @Override
    public synchronized void close() {
        if (admin != null) {
            admin.close();
            admin = null;
        }
    }
}
