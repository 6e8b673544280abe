///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//SOURCES preflight.java grant-admin.java gen-kek.java import-ca.java hsm-info.java k8s-vault-prep.java vault-setup.java vault-verify.java fetch-release.java control-plane-prep.java istiod-service.java install-asm.java istiod-status.java decrypt-csr.java sign-csr.java upload-chain.java load-root.java verify-ca.java renew-ca.java rotate-ca.java verify-mtls.java enable-injection.java external-ip.java status.java
//MAIN asmhsm.Asm
//CDS
package asmhsm;

import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
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
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.Map;
import java.util.LinkedHashMap;
import java.util.Set;
import java.util.concurrent.Callable;
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
import picocli.CommandLine.Command;

/**
 * Every step as a subcommand: `jbang asm@org gen-kek ...`. Subcommands are added in code,
 * not in the annotation: picocli reads every subcommand's options (and loads the types they
 * mention) when it is added, which costs a one-step run about 0.1-0.2 s for 20 steps it will
 * not run; so a run adds only the step it names, and help (or a typo) adds them all.
 */
@Command(name = "asm", mixinStandardHelpOptions = true, versionProvider = Version.class,
        description = "Anthos Service Mesh 1.9 with the Istiod CA key in a Luna HSM and HSM credentials in Vault: the guide's steps.")
class Asm implements Runnable {
    /**
     * Every subcommand, in the guide's order (`asm --help` lists them so): the one list of them.
     * A step here with a script of its own (scripts/NAME.java) is also on this file's //SOURCES
     * line and a jbang-catalog.json alias, which JBang needs spelled out; LayoutTest checks they
     * agree with this table. Classes, not objects: only the step that runs is made and added.
     */
    static final Map<String, Class<?>> COMMANDS = table(
            sub("run", Run.class),
            sub("warm-up", WarmUp.class),
            sub("preflight", Preflight.class),
            sub("grant-admin", GrantAdmin.class),
            sub("gen-kek", GenKek.class),
            sub("import-ca", ImportCa.class),
            sub("hsm-info", HsmInfo.class),
            sub("k8s-vault-prep", K8sVaultPrep.class),
            sub("vault-setup", VaultSetup.class),
            sub("vault-verify", VaultVerify.class),
            sub("fetch-release", FetchRelease.class),
            sub("control-plane-prep", ControlPlanePrep.class),
            sub("istiod-service", IstiodService.class),
            sub("install-asm", InstallAsm.class),
            sub("istiod-status", IstiodStatus.class),
            sub("decrypt-csr", DecryptCsr.class),
            sub("sign-csr", SignCsr.class),
            sub("upload-chain", UploadChain.class),
            sub("load-root", LoadRoot.class),
            sub("verify-ca", VerifyCa.class),
            sub("renew-ca", RenewCa.class),
            sub("rotate-ca", RotateCa.class),
            sub("verify-mtls", VerifyMtls.class),
            sub("enable-injection", EnableInjection.class),
            sub("external-ip", ExternalIp.class),
            sub("status", Status.class),
            sub("session", SessionCommand.class),
            sub("version", VersionCommand.class),
            sub("completion", Completion.class),
            sub("help", CommandLine.HelpCommand.class));

    /** The subcommands' names, in order. */
    static final List<String> SUBCOMMANDS = List.copyOf(COMMANDS.keySet());

    /** Subcommands that read every other one (the help of a step, the completion of all). */
    static final Set<String> NEED_ALL = Set.of("help", "completion");

    private static Map.Entry<String, Class<?>> sub(String name, Class<?> command) {
        return Map.entry(name, command);
    }

    @SafeVarargs
    private static Map<String, Class<?>> table(Map.Entry<String, Class<?>>... subs) {
        Map<String, Class<?>> t = new LinkedHashMap<>();
        for (var sub : subs)
            if (t.put(sub.getKey(), sub.getValue()) != null) throw new IllegalStateException("twice in the table: " + sub.getKey());
        return java.util.Collections.unmodifiableMap(t);
    }

    /** One subcommand's object. */
    static Object step(String name) {
        Class<?> command = COMMANDS.get(name);
        if (command == null) throw new IllegalArgumentException(name);
        try {
            return command.getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot make " + name, e);
        }
    }

    /** The asm command for these arguments: only the named step, or every step when none is named. */
    static CommandLine commandLine(String... args) {
        CommandLine cl = Step.commandLine(new Asm());
        String first = args.length == 0 ? null : args[0];
        boolean one = first != null && COMMANDS.containsKey(first) && !NEED_ALL.contains(first);
        for (String name : one ? List.of(first) : SUBCOMMANDS) cl.addSubcommand(name, step(name));
        return cl;
    }

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String... args) {
        // Name the JDK's own NIO provider (the one it would pick): looking for it unnamed searches
        // every jar of the class path for a replacement, about 50 ms, most of a call through a session.
        if (System.getProperty("java.nio.channels.spi.SelectorProvider") == null && "Linux".equals(System.getProperty("os.name"))
                && ClassLoader.getPlatformClassLoader().getResource("sun/nio/ch/EPollSelectorProvider.class") != null)
            System.setProperty("java.nio.channels.spi.SelectorProvider", "sun.nio.ch.EPollSelectorProvider");
        // a session for this folder and environment runs the step warm; without one, this JVM does
        Integer rc = Session.forward(args);
        if (rc == null) {
            rc = commandLine(args).execute(args);
            // every client is done: end the JDK HttpClients' selector threads, or exit waits for them (see Step.call)
            Http.endSelectorThreads(Http.selectorThreads());
        }
        System.exit(rc);
    }

    /**
     * A training run for the class-data archive. JBang records the archive (//CDS) during the
     * first run after a build, and tests/install makes this that run: it walks the steps' code
     * paths (every step's options, kubeconfig parsing, the Kubernetes and Vault clients over TLS
     * with a client certificate, JSON and YAML, Bouncy Castle's CSR and PEM code) against a
     * stand-in HTTPS server on 127.0.0.1 that lives only for this run. Archived classes load
     * about 0.4 s faster in a cluster step than classes read from the jars.
     */
    @Command(name = "warm-up", hidden = true, description = "A training run for the class-data archive (no real server is touched).")
    static class WarmUp implements Callable<Integer> {
        @Override
        public Integer call() throws Exception {
            for (CommandLine sub : Asm.commandLine().getSubcommands().values()) sub.getUsageMessage();
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
                    k.apply(Kube.istiodService("asm-198-6", "warm-up"), out);
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
            } finally {
                server.stop(0);
                try (var files = Files.list(dir)) {
                    for (Path f : files.toList()) Files.delete(f);
                }
                Files.delete(dir);
            }
            return 0;
        }

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

    /** `asm session start|status|stop`: see {@link Session}. */
    @Command(name = "session", mixinStandardHelpOptions = true, versionProvider = Version.class, description = {
            "Keep one warm JVM for this shell's asm calls, as ssh-agent keeps keys: start it once, then every",
            "`asm <step>` from this folder with this same environment runs in it, without a JVM start of its own.",
            "A call from another folder, or with any variable changed, runs on its own as usual."},
            subcommands = {SessionCommand.Start.class, SessionCommand.Show.class, SessionCommand.Stop.class,
                    SessionCommand.Serve.class})
    static class SessionCommand implements Runnable {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public void run() {
            spec.commandLine().usage(System.out);
        }

        @Command(name = "start", mixinStandardHelpOptions = true, description = "Start the session for this folder and environment (nothing if it is up).")
        static class Start extends Step {
            @CommandLine.Option(names = "--idle", defaultValue = Session.DEFAULT_IDLE, paramLabel = "DURATION",
                    description = "End the session after this long without a call, e.g. 30m, 2h (0: never). Default: ${DEFAULT-VALUE}.")
            String idle;

            @Override
            protected void run() {
                java.time.Duration d = Opts.duration(idle);
                if (d == null || d.isNegative()) throw Fail.badInput("--idle " + idle + " is not a duration", "e.g. --idle 30m or --idle 2h");
                boolean up = Session.ask(Session.STATUS) != null;
                out.put("socket", Session.socket(Session.key()).toString());
                if (up) {
                    out.say("a session for this folder and environment is already up");
                    return;
                }
                if (out.dryRun()) {
                    out.change("start a session for " + Path.of("").toAbsolutePath());
                    return;
                }
                Path socket = Session.start(d);
                out.change("started a session for " + Path.of("").toAbsolutePath() + " (socket " + socket + ")");
                out.say("asm calls from this folder with this environment now run in it; it ends after "
                        + (d.isZero() ? "asm session stop" : idle + " without a call, or with asm session stop"));
            }
        }

        @Command(name = "status", mixinStandardHelpOptions = true, description = "Say whether a session serves this folder and environment.")
        static class Show extends Step {
            @Override
            protected void run() {
                String status = Session.ask(Session.STATUS);
                out.put("up", status != null);
                if (status == null) {
                    out.say("no session for this folder and environment: asm calls run on their own");
                    return;
                }
                Session.parseStatus(status).forEach(out::put);
                out.say(status.strip());
            }
        }

        @Command(name = "stop", mixinStandardHelpOptions = true, description = "Stop the session of this folder and environment.")
        static class Stop extends Step {
            @Override
            protected void run() {
                if (Session.ask(Session.STATUS) == null) {
                    out.say("no session for this folder and environment");
                    return;
                }
                if (out.dryRun()) {
                    out.change("stop the session");
                    return;
                }
                Session.ask(Session.STOP);
                out.change("stopped the session");
            }
        }

        @Command(name = "serve", hidden = true, description = "The session itself (asm session start runs it in the background).")
        static class Serve implements Callable<Integer> {
            @CommandLine.Option(names = "--idle", defaultValue = Session.DEFAULT_IDLE)
            String idle;

            @Override
            public Integer call() throws Exception {
                // start checked --idle before it ran this
                return Session.serve(Opts.duration(idle), args -> commandLine(args).execute(args), new WarmUp());
            }
        }
    }

    /**
     * Several steps in one process, for chains operators run together: one JVM start,
     * one class loading and one Kubernetes client, instead of one per step.
     */
    @Command(name = "run", description = {
            "Run several steps in one process, in order, stopping at the first that fails.",
            "Steps are separated by a lone '+', e.g.:",
            "  asm run k8s-vault-prep --cluster-suffix c1 + vault-setup --cluster-suffix c1 ... + vault-verify --cluster-suffix c1"})
    static class Run implements Callable<Integer> {
        @CommandLine.Unmatched
        List<String> words = new ArrayList<>();

        @Override
        public Integer call() {
            List<List<String>> steps = new ArrayList<>();
            List<String> current = new ArrayList<>();
            for (String w : words) {
                if (w.equals("+")) { steps.add(current); current = new ArrayList<>(); } else current.add(w);
            }
            steps.add(current);
            for (List<String> step : steps)
                if (step.isEmpty() || step.get(0).startsWith("-") || step.get(0).equals("run")) {
                    System.err.println("error: 'asm run' takes steps separated by '+', each starting with the step's name");
                    System.err.println("  -> e.g. asm run gen-kek + import-ca -f root.pem");
                    return 2;
                }
            boolean sharing = Kube.share();     // inside asm session, the session's sharing goes on
            try {
                for (List<String> step : steps) {
                    String[] args = step.toArray(String[]::new);
                    int rc = commandLine(args).execute(args);
                    if (rc != 0) return rc;
                }
                return 0;
            } finally {
                if (sharing) Kube.closeShared();
            }
        }
    }

    /** `asm version`, the same lines as every step's -V: see {@link Version}. */
    @Command(name = "version", mixinStandardHelpOptions = true,
            description = "Print the toolkit's version, the ASM release and revision it installs, and the Java it runs on.")
    static class VersionCommand extends Step {
        @Override
        protected void run() {
            Version.facts().forEach(out::put);
            for (String line : Version.lines()) out.say(line);
        }
    }

    /** `asm completion bash|zsh`: picocli's generated script, for every subcommand and option. */
    @Command(name = "completion", mixinStandardHelpOptions = true, versionProvider = Version.class, description = {
            "Print the shell completion script of asm (tests/install installs it for bash), e.g.:",
            "  asm completion bash > ~/.local/share/bash-completion/completions/asm",
            "  source <(asm completion zsh)     # in ~/.zshrc: the same script, read through zsh's bashcompinit"})
    static class Completion implements Callable<Integer> {
        enum Shell { bash, zsh }

        @CommandLine.Parameters(paramLabel = "SHELL", description = "bash or zsh.")
        Shell shell;

        @Override
        public Integer call() {
            System.out.print(picocli.AutoComplete.bash("asm", Asm.commandLine()));
            return 0;
        }
    }
}
