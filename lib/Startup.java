package asmhsm;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPrivateKey;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntSupplier;
import java.util.function.Supplier;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import picocli.CommandLine;

/**
 * What makes steps start and end quickly, kept apart so that a reader of a step or of Step, Kube
 * and Vault can skip it: nothing here changes what a step does. The rest of that machinery:
 * {@link Session} (asm session, one warm JVM per shell), {@link SessionPipe} (the launcher's way
 * into a session, without a JVM for the call) and tests/jbang-launcher (JBang's answer for an alias
 * kept between calls). Where a step's time goes: README, "Where a step's time goes".
 */
public final class Startup {
    private Startup() {}

    /**
     * asm's main: the step in a session for this folder and environment when one is up, else in
     * this JVM (`run`); returns the exit code.
     */
    static int main(String[] args, IntSupplier run, Supplier<CommandLine> all) {
        // Name the JDK's own NIO provider (the one it would pick): looking for it unnamed searches
        // every jar of the class path for a replacement, most of a call through a session.
        if (System.getProperty("java.nio.channels.spi.SelectorProvider") == null && "Linux".equals(System.getProperty("os.name"))
                && ClassLoader.getPlatformClassLoader().getResource("sun/nio/ch/EPollSelectorProvider.class") != null)
            System.setProperty("java.nio.channels.spi.SelectorProvider", "sun.nio.ch.EPollSelectorProvider");
        Integer rc = Session.forward(args);
        if (rc != null) return rc;
        rc = run.getAsInt();
        if (recordingArchive() && !(args.length > 0 && args[0].equals("warm-up"))) WarmUp.afterStep(all);
        // every client is done: end the JDK HttpClients' selector threads, or exit waits for them (see Step.call)
        endSelectorThreads(selectorThreads());
        return rc;
    }

    /**
     * Whether this JVM records the class-data archive at its exit: JBang's first run of a build
     * (//CDS: -XX:ArchiveClassesAtExit). The archive keeps only the classes that run loaded, and
     * JBang keeps it until the next build, so the warm-up's work is then added to whatever step ran.
     */
    static boolean recordingArchive() {
        try {
            String cmd = new String(Files.readAllBytes(Path.of("/proc/self/cmdline")), StandardCharsets.ISO_8859_1);
            return cmd.contains("\0-XX:ArchiveClassesAtExit=");
        } catch (IOException | RuntimeException e) {
            return false;   // no /proc (not Linux): the archive holds what the step loaded, as before
        }
    }

    /** The live selector threads of JDK HttpClients (each client has one). */
    static Set<Thread> selectorThreads() {
        // the live threads, from the root thread group: Thread.getAllStackTraces would also take every stack
        ThreadGroup root = Thread.currentThread().getThreadGroup();
        while (root.getParent() != null) root = root.getParent();
        Thread[] all = new Thread[root.activeCount() + 16];
        int n = root.enumerate(all, true);
        Set<Thread> threads = new HashSet<>();
        for (int i = 0; i < n; i++)
            if (all[i].getName().startsWith("HttpClient-") && all[i].getName().endsWith("-SelectorManager")) threads.add(all[i]);
        return threads;
    }

    /**
     * Ends the selector threads of JDK HttpClients no longer used. On Java 17 such a thread stays in
     * epoll (native code) until its client is garbage-collected, even after close(), and the JVM
     * waits up to 0.3 s at exit for threads in native code. Interrupting it ends its loop.
     */
    static void endSelectorThreads(Set<Thread> threads) {
        for (Thread t : threads) t.interrupt();
        for (Thread t : threads) {
            try {
                t.join(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Ends the selector threads made since `before`, but for `kept` (clients that outlive the step; see Step.call). */
    static void endStepThreads(Set<Thread> before, Set<Thread> kept) {
        Set<Thread> made = selectorThreads();
        made.removeAll(before);
        made.removeAll(kept);
        endSelectorThreads(made);
    }

    /**
     * The clients several steps in one process share (`asm run`, `asm session`): one Kubernetes
     * client per kubeconfig and context, with its TLS set-up and connection, built once instead of
     * once per step. Step.kube() takes from it when the step was given one (see Step#with).
     *
     * <p>A kept client is handed out again only while the kubeconfig and the TLS files it names are
     * unchanged and, with an idle time, only if it was used within it; otherwise it is closed and
     * a new one built, as a step on its own would. Each step's ClusterId refusal is checked again.
     */
    public static final class Clients implements AutoCloseable {
        private final Duration idle;
        private final Map<String, Kept> kept = new LinkedHashMap<>();
        /** A client every step gets, whatever its options (tests: the mock server, a lab's admin client). */
        private final Kube given;

        private static final class Kept {
            final Kube kube;
            final String stamp;
            long lastUsed = System.nanoTime();

            Kept(Kube kube) {
                this.kube = kube;
                this.stamp = stamp(kube.sources);
            }
        }

        /** Clients kept while this lives; `idle`: handed out again only if used within it (null: no limit). */
        public Clients(Duration idle) {
            this.idle = idle;
            this.given = null;
        }

        private Clients(Kube given) {
            this.idle = null;
            this.given = given;
        }

        /** A context that hands every step this client, left open when steps end (as istioctl's fake context). */
        public static Clients of(Kube kube) {
            return new Clients(kube);
        }

        /** The client for these options: a kept one still fresh, else a new one, kept. */
        public synchronized Kube kube(Opts.Kube o) {
            if (given != null) return given;
            String key = Kube.key(o);
            Kept k = kept.get(key);
            if (k != null && !fresh(k)) {
                kept.remove(key);
                k.kube.close();
                k = null;
            }
            if (k == null) {
                k = new Kept(Kube.open(o));
                kept.put(key, k);
            }
            k.lastUsed = System.nanoTime();
            k.kube.requireExpected(o);
            return k.kube;
        }

        /** Whether this client is one of the context's (a step leaves it open). */
        synchronized boolean holds(Kube kube) {
            return kube == given || kept.values().stream().anyMatch(k -> k.kube == kube);
        }

        /** The selector threads of the kept clients, which outlive a step (see #endStepThreads). */
        synchronized Set<Thread> threads() {
            Set<Thread> all = new HashSet<>();
            for (Kept k : kept.values()) all.addAll(k.kube.selectorThreads);
            return all;
        }

        private boolean fresh(Kept k) {
            if (idle != null && System.nanoTime() - k.lastUsed > idle.toNanos()) return false;
            if (k.kube.client.getHttpClient().isClosed()) return false;
            return k.stamp.equals(stamp(k.kube.sources));
        }

        /** Path, time and size of each file, one per line. */
        private static String stamp(List<String> files) {
            StringBuilder b = new StringBuilder();
            for (String f : files) {
                b.append(f).append('|');
                try {
                    Path p = Path.of(f);
                    b.append(Files.getLastModifiedTime(p).toMillis()).append('|').append(Files.size(p));
                } catch (IOException | RuntimeException e) {
                    b.append("missing");
                }
                b.append('\n');
            }
            return b.toString();
        }

        /** Closes the kept clients (a given one is its owner's to close). */
        @Override
        public synchronized void close() {
            List<Kept> all = new ArrayList<>(kept.values());
            kept.clear();
            for (Kept k : all) k.kube.close();
        }
    }

    /**
     * A training run for the class-data archive (asm warm-up). JBang records the archive (//CDS)
     * during the first run after a build, and tests/install makes this that run: it walks the
     * steps' code paths (every step's options, kubeconfig parsing, the Kubernetes and Vault
     * clients over TLS with a client certificate, JSON and YAML, Bouncy Castle's CSR and PEM code)
     * against a stand-in HTTPS server on 127.0.0.1 that lives only for this run. Archived classes
     * load much faster than classes read from the jars (docs/startup.md). A class of its
     * own, so that a step loads none of what it names.
     */
    static final class WarmUp {
        private WarmUp() {}

        /** The run, `all`: asm with every step. */
        static void run(CommandLine all) throws Exception {
            for (CommandLine sub : all.getSubcommands().values()) sub.getUsageMessage();
            Session.train();
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(256);
            KeyPair key = g.generateKeyPair();
            X500Name name = new X500Name("CN=127.0.0.1,O=warm-up");
            ContentSigner signer = new JcaContentSignerBuilder("SHA256withECDSA").build(key.getPrivate());
            Pki.csr(Pki.pem("CERTIFICATE REQUEST",
                    new JcaPKCS10CertificationRequestBuilder(name, key.getPublic()).build(signer).getEncoded()), "warm-up");
            long now = System.currentTimeMillis();
            X509Certificate cert = new JcaX509CertificateConverter().getCertificate(new JcaX509v3CertificateBuilder(
                    name, BigInteger.ONE, new Date(now - 60_000), new Date(now + 3_600_000), name, key.getPublic())
                    .addExtension(Extension.subjectAlternativeName, false,
                            new GeneralNames(new GeneralName(GeneralName.iPAddress, "127.0.0.1")))
                    .build(signer));
            Path dir = Files.createTempDirectory("asm-warm-up", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            HttpsServer server = standIn(key, cert);
            try {
                String url = "https://127.0.0.1:" + server.getAddress().getPort();
                Path ca = Files.writeString(dir.resolve("ca.pem"), Pki.pem(cert));
                // the client key as kubeconfigs carry it (SEC1 "EC PRIVATE KEY"), which fabric8 reads with Bouncy Castle
                PrivateKeyInfo pkcs8 = PrivateKeyInfo.getInstance(key.getPrivate().getEncoded());
                byte[] sec1 = new org.bouncycastle.asn1.sec.ECPrivateKey(256, ((ECPrivateKey) key.getPrivate()).getS(),
                        SubjectPublicKeyInfo.getInstance(key.getPublic().getEncoded()).getPublicKeyData(),
                        pkcs8.getPrivateKeyAlgorithm().getParameters()).getEncoded();
                Base64.Encoder b64 = Base64.getEncoder();
                Opts.Kube kube = new Opts.Kube();
                kube.kubeconfig = Files.writeString(dir.resolve("kubeconfig"), String.join("\n",
                        "apiVersion: v1", "kind: Config", "current-context: warm-up",
                        "clusters:", "- name: warm-up", "  cluster:", "    server: " + url,
                        "    certificate-authority-data: " + b64.encodeToString(Pki.pem(cert).getBytes(StandardCharsets.US_ASCII)),
                        "contexts:", "- name: warm-up", "  context: {cluster: warm-up, user: warm-up}",
                        "users:", "- name: warm-up", "  user:",
                        "    client-certificate-data: " + b64.encodeToString(Pki.pem(cert).getBytes(StandardCharsets.US_ASCII)),
                        "    client-key-data: " + b64.encodeToString(Pki.pem("EC PRIVATE KEY", sec1).getBytes(StandardCharsets.US_ASCII)),
                        "")).toString();
                PrintStream nowhere = new PrintStream(OutputStream.nullOutputStream());
                Out out = new Out("warm-up", false, false, nowhere, nowhere);
                try (Kube k = Kube.connect(kube)) {
                    k.live(Kube.namespace("warm-up"));
                    k.apply(new KubeLayout(KubeLayout.VAULT_NAMESPACE, KubeLayout.TOKENREVIEW_BINDING, "warm-up").istiodService("asm-198-6"), out);
                    k.apply(new ConfigMapBuilder().withNewMetadata().withName("warm-up").withNamespace("warm-up").endMetadata()
                            .addToData("cert", Pki.pem(cert)).build(), out);
                }
                Opts.Vault vault = new Opts.Vault();
                vault.addr = url;
                vault.caCert = ca;
                Vault v = Vault.connect(vault, "warm-up");
                v.read("asm-warm-up/hsm", "read a secret");
                v.write("asm-warm-up/hsm", Map.of("PIN", "warm-up", "list", List.of("a")), "write a secret");
                Out.toJson(Map.of("warm", "up"));
                Out.render(Map.of("warm", "up"), Out.Format.yaml);
            } finally {
                server.stop(0);
                try (var files = Files.list(dir)) {
                    for (Path f : files.toList()) Files.delete(f);
                }
                Files.delete(dir);
            }
        }

        /**
         * The warm-up after a step whose run records the archive: on a thread of its own, bounded
         * in time, writing nothing and changing nothing the step did (its output is out, its exit
         * code kept); what it loads by the time the JVM ends is in the archive.
         */
        static void afterStep(Supplier<CommandLine> all) {
            Thread t = new Thread(() -> {
                try {
                    run(all.get());
                } catch (Exception | LinkageError e) {
                    // a warm-up that cannot finish leaves a smaller archive, nothing else
                }
            }, "asm-warm-up");
            t.setDaemon(true);
            t.start();
            try {
                t.join(WARM_UP_LIMIT.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        private static final Duration WARM_UP_LIMIT = Duration.ofSeconds(60);   // it takes 2-5 s; a loaded machine, more

        /** Answers as the API server and Vault would, enough for the clients' ordinary paths. */
        static HttpsServer standIn(KeyPair key, X509Certificate cert) throws Exception {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setKeyEntry("warm-up", key.getPrivate(), new char[0], new java.security.cert.Certificate[] {cert});
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(store, new char[0]);
            SSLContext tls = SSLContext.getInstance("TLS");
            tls.init(kmf.getKeyManagers(), null, null);
            HttpsServer server = HttpsServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
            server.setHttpsConfigurator(new HttpsConfigurator(tls));
            server.createContext("/", exchange -> {
                byte[] request = exchange.getRequestBody().readAllBytes();
                String path = exchange.getRequestURI().getPath();
                int code = 200;
                byte[] body;
                if (path.startsWith("/v1/")) {
                    body = "{\"data\":{\"warm\":\"up\"}}".getBytes(StandardCharsets.UTF_8);
                } else if (!exchange.getRequestMethod().equals("GET")) {
                    code = 201;
                    body = request;                       // create and patch: the object as sent
                } else if (path.matches("/api/v1/namespaces/[^/]+")) {
                    body = "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"warm-up\"}}"
                            .getBytes(StandardCharsets.UTF_8);
                } else {
                    code = 404;
                    body = "{\"apiVersion\":\"v1\",\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404}"
                            .getBytes(StandardCharsets.UTF_8);
                }
                exchange.getResponseHeaders().set("Content-Type", "application/json");
                exchange.sendResponseHeaders(code, body.length);
                try (OutputStream o = exchange.getResponseBody()) {
                    o.write(body);
                }
            });
            server.start();
            return server;
        }
    }
}
