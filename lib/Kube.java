package asmhsm;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.internal.CertUtils;
import io.fabric8.kubernetes.client.internal.KubeConfigUtils;
import io.fabric8.kubernetes.client.internal.SSLUtils;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.IOException;
import java.io.InputStream;
import java.security.GeneralSecurityException;
import javax.net.ssl.KeyManager;
import javax.net.ssl.TrustManager;
import tools.jackson.databind.ObjectMapper;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * The cluster, through one fabric8 client per step, from the kubeconfig and context the
 * operator uses with kubectl. Turns API failures into lines that say what to do.
 */
public final class Kube implements AutoCloseable {
    public final KubernetesClient client;
    public final Config config;
    public final String context;
    /** The selector thread(s) of this client's JDK HttpClient; see {@link #close()}. */
    final Set<Thread> selectorThreads;
    /** The files this client was built from: the kubeconfig(s) and the TLS files they name (see Startup.Clients). */
    final List<String> sources;

    private Kube(KubernetesClient client, Config config, String context, Set<Thread> selectorThreads, List<String> sources) {
        this.client = client;
        this.config = config;
        this.context = context;
        this.selectorThreads = selectorThreads;
        this.sources = sources;
    }

    /**
     * A client for the options' kubeconfig and context, refusing another cluster than the one the
     * options' suffix was prepared on (see {@link ClusterId}). Steps take theirs from Step.kube().
     */
    public static Kube connect(Opts.Kube o) {
        Kube kube = open(o);
        try {
            kube.requireExpected(o);
        } catch (RuntimeException e) {
            kube.close();
            throw e;
        }
        return kube;
    }

    /** Refuses another cluster than the one the options' cluster suffix was prepared on. */
    void requireExpected(Opts.Kube o) {
        ClusterId.Expected expected = o.expectedCluster();
        if (expected != null) requireCluster(expected);
    }

    /** Which client serves these options: the kubeconfig files and the context. */
    static String key(Opts.Kube o) {
        return joined(kubeconfigFiles(o.kubeconfig).stream().map(File::getAbsoluteFile).toList()) + "|" + o.context;
    }

    /** A new client for the options' kubeconfig and context, unchecked. */
    static Kube open(Opts.Kube o) {
        List<File> files = kubeconfigFiles(o.kubeconfig);
        Config config = resolve(o);
        config.setRequestTimeout(30_000);
        config.setConnectionTimeout(10_000);
        config.setRequestRetryBackoffLimit(0);
        // HTTP/1.1: a step makes a handful of calls, where HTTP/2 only adds its set-up (and
        // classes the class-data archive, trained against an HTTP/1.1 stand-in, would not hold)
        config.setHttp2Disable(true);
        String ctx = config.getCurrentContext() == null ? null : config.getCurrentContext().getName();
        Set<Thread> before = Startup.selectorThreads();
        KubernetesClient client = build(config);
        Set<Thread> ours = Startup.selectorThreads();
        ours.removeAll(before);
        List<String> sources = new ArrayList<>();
        for (File f : files) sources.add(f.getPath());
        for (String f : new String[] {config.getCaCertFile(), config.getClientCertFile(), config.getClientKeyFile()})
            if (f != null && !f.isEmpty()) sources.add(f);
        return new Kube(client, config, ctx, ours, List.copyOf(sources));
    }

    /**
     * The cluster suffixes k8s-vault-prep prepared in a folder: each sub-folder named as a suffix
     * that holds its <suffix>-k8s_addr file, sorted.
     */
    public static List<String> preparedSuffixes(Path folder) {
        List<String> found = new ArrayList<>();
        try (var entries = java.nio.file.Files.list(folder)) {
            for (Path p : (Iterable<Path>) entries::iterator) {
                String name = p.getFileName().toString();
                if (name.matches("[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?") && java.nio.file.Files.isRegularFile(Vault.ReviewerFiles.in(p, name).addr()))
                    found.add(name);
            }
        } catch (java.io.IOException e) {
            throw Fail.badInput("cannot list " + folder + ": " + e.getMessage(), "pass --dir with the folder k8s-vault-prep wrote into");
        }
        java.util.Collections.sort(found);
        return found;
    }

    /**
     * The kubeconfig context whose cluster server is the API address k8s-vault-prep recorded in
     * `addrFile`; fails (exit 1) when none or several are, naming them.
     */
    public static String contextFor(Opts.Kube o, Path addrFile) {
        String want;
        try {
            want = java.nio.file.Files.readString(addrFile).strip().replaceFirst("/$", "");
        } catch (java.io.IOException e) {
            throw Fail.failed("cannot read " + addrFile + ": " + e.getMessage(), "run k8s-vault-prep for this suffix again");
        }
        List<File> files = kubeconfigFiles(o.kubeconfig);
        String file = joined(files);
        Config all = readKubeconfig(files, null);
        // the context k8s-vault-prep recorded for the suffix, when it is still in the kubeconfig and points there
        Path suffixDir = addrFile.toAbsolutePath().getParent();
        ClusterId recorded = ClusterId.recorded(new ClusterId.Expected(suffixDir.getFileName().toString(), suffixDir));
        if (recorded != null && recorded.context() != null && all.getContexts() != null
                && all.getContexts().stream().anyMatch(c -> c.getName().equals(recorded.context()))) {
            String server = readKubeconfig(files, recorded.context()).getMasterUrl();
            if (server != null && server.replaceFirst("/$", "").equals(want)) return recorded.context();
        }
        List<String> matching = new ArrayList<>();
        if (all.getContexts() != null)
            for (var c : all.getContexts()) {
                String server = readKubeconfig(files, c.getName()).getMasterUrl();
                if (server != null && server.replaceFirst("/$", "").equals(want)) matching.add(c.getName());
            }
        if (matching.size() == 1) return matching.get(0);
        if (matching.isEmpty())
            throw Fail.failed("no context of " + file + " points at " + want + " (recorded in " + addrFile + ")",
                    "add that cluster's context to the kubeconfig (KUBECONFIG), or check " + addrFile);
        throw Fail.failed("contexts " + String.join(", ", matching) + " of " + file + " all point at " + want,
                "check this suffix alone: status --cluster-suffix SUFFIX --context NAME");
    }

    /** Reads kubeconfigs without looking for model classes: a kubeconfig needs none of them. */
    private static final KubernetesSerialization KUBECONFIG_READER = new KubernetesSerialization(new ObjectMapper(), false);

    /**
     * The kubeconfig (KUBECONFIG or --kubeconfig, one file or a list) as fabric8's Config, for the
     * options' context (none: the current one); read once per set of options.
     */
    static Config resolve(Opts.Kube o) {
        if (o.resolved == null) {
            List<File> files = kubeconfigFiles(o.kubeconfig);
            Config config = readKubeconfig(files, o.context);
            if (o.context != null && config.getCurrentContext() != null && !o.context.equals(config.getCurrentContext().getName()))
                throw Fail.badInput("context '" + o.context + "' is not in " + joined(files), "list the contexts with: kubectl config get-contexts");
            o.resolved = config;
        }
        return o.resolved;
    }

    /**
     * The kubeconfig files as fabric8's Config, for the given context (null: the current one),
     * merged as kubectl merges KUBECONFIG's list (fabric8's merge: the first file wins for each
     * context, cluster and user name, and the current context comes from the first file that
     * sets one). Config.fromKubeconfig does the same with fabric8's shared serializer, whose
     * first use loads every model class of every API group through ServiceLoader, in
     * every step. The markers are the ones fabric8's own parser puts on each entry, so that
     * relative certificate paths resolve against each kubeconfig's folder, as kubectl resolves them.
     */
    static Config readKubeconfig(List<File> files, String context) {
        io.fabric8.kubernetes.api.model.Config[] kubeconfigs = new io.fabric8.kubernetes.api.model.Config[files.size()];
        for (int i = 0; i < kubeconfigs.length; i++) kubeconfigs[i] = parseKubeconfig(files.get(i), files.size() == 1);
        Config config = Config.empty();
        try {
            KubeConfigUtils.merge(config, context, kubeconfigs);
        } catch (RuntimeException e) {
            if (context != null)
                throw Fail.badInput("context '" + context + "' is not in " + joined(files), "list the contexts with: kubectl config get-contexts");
            if (files.size() == 1) {
                Path path = files.get(0).toPath();
                throw Env.notA(path, "kubeconfig", "a usable kubeconfig", path.toFile().length(), e.getClass().getSimpleName(), KUBECONFIG_HINT);
            }
            throw Fail.badInput("kubeconfig " + joined(files) + " is not a usable kubeconfig (" + e.getClass().getSimpleName() + ")", KUBECONFIG_HINT);
        }
        // the TLS files it names: refused by name here, before fabric8's messages that name none
        String tlsHint = "check certificate-authority and client-certificate/client-key in " + joined(files) + " (kubectl get ns must work)";
        if (config.getCaCertFile() != null) Env.readPem(Path.of(config.getCaCertFile()), "certificate-authority", tlsHint);
        if (config.getClientCertFile() != null) Env.readPem(Path.of(config.getClientCertFile()), "client-certificate", tlsHint);
        if (config.getClientKeyFile() != null) Env.readPem(Path.of(config.getClientKeyFile()), "client-key", tlsHint);
        return config;
    }

    static final String KUBECONFIG_HINT = "set KUBECONFIG or --kubeconfig to the cluster's kubeconfig (kubectl config view works with it)";

    /**
     * One kubeconfig file; anything else is refused in one line naming the file, never quoting it.
     * `alone`: the only file, so it must name clusters; in a list, as for kubectl, a file may hold
     * only some of the parts (users, contexts, a current context).
     */
    private static io.fabric8.kubernetes.api.model.Config parseKubeconfig(File file, boolean alone) {
        Path path = file.toPath();
        String text = Env.readText(path, "kubeconfig", "a kubeconfig", KUBECONFIG_HINT);
        long size = text.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        io.fabric8.kubernetes.api.model.Config kubeconfig;
        try {
            kubeconfig = KUBECONFIG_READER.unmarshal(new java.io.ByteArrayInputStream(text.getBytes(java.nio.charset.StandardCharsets.UTF_8)),
                    io.fabric8.kubernetes.api.model.Config.class);
        } catch (RuntimeException e) {
            // the parsers' messages quote the text they could not read: only where it broke is said
            var at = e instanceof tools.jackson.core.JacksonException j ? j.getLocation() : null;
            throw Env.notA(path, "kubeconfig", "a kubeconfig", size, !text.contains("clusters:") ? "no 'clusters:'"
                    : at != null && at.getLineNr() > 0 ? "not YAML at line " + at.getLineNr() : "not kubeconfig YAML", KUBECONFIG_HINT);
        }
        boolean hasClusters = kubeconfig != null && kubeconfig.getClusters() != null && !kubeconfig.getClusters().isEmpty();
        if (!hasClusters && (alone || kubeconfig == null || (none(kubeconfig.getContexts()) && none(kubeconfig.getUsers())
                && (kubeconfig.getCurrentContext() == null || kubeconfig.getCurrentContext().isEmpty()))))
            throw Env.notA(path, "kubeconfig", "a kubeconfig", size, "no 'clusters:'", KUBECONFIG_HINT);
        if (kubeconfig.getContexts() != null)
            kubeconfig.getContexts().forEach(c -> c.getAdditionalProperties().put("KUBERNETES_CONFIG_CONTEXT_FILE_KEY", file));
        if (hasClusters) kubeconfig.getClusters().forEach(c -> c.getAdditionalProperties().put("KUBERNETES_CONFIG_CLUSTER_FILE_KEY", file));
        if (kubeconfig.getUsers() != null)
            kubeconfig.getUsers().forEach(u -> u.getAdditionalProperties().put("KUBERNETES_CONFIG_AUTH_INFO_FILE_KEY", file));
        return kubeconfig;
    }

    private static boolean none(List<?> list) {
        return list == null || list.isEmpty();
    }

    /** The files as KUBECONFIG lists them. */
    static String joined(List<File> files) {
        return String.join(File.pathSeparator, files.stream().map(File::getPath).toList());
    }

    /**
     * The client, trusting for TLS only the CA the kubeconfig names, as kubectl does. fabric8
     * would also trust every CA of the JVM's bundle, and loading that bundle costs every
     * step time. fabric8 offers no switch for this, so while the client is built, fabric8 is told
     * to trust anything and given no client certificate (it then loads neither), and the client
     * gets our TLS context instead; the Config is put back right after, so nothing else built
     * from it ever sees that setting. Without a CA in the kubeconfig, or with
     * insecure-skip-tls-verify, fabric8's own handling stands.
     */
    static KubernetesClient build(Config config) {
        String caData = config.getCaCertData(), caFile = config.getCaCertFile();
        if (config.isTrustCerts() || (caData == null && caFile == null)) {
            try {
                return new KubernetesClientBuilder().withConfig(config).build();
            } catch (KubernetesClientException e) {
                if (!(e.getCause() instanceof GeneralSecurityException || e.getCause() instanceof IOException)) throw e;
                throw Fail.badInput("cannot use the kubeconfig's TLS files: " + rootMessage(e),
                        "check client-certificate/client-key (kubectl get ns must work)");
            }
        }
        TrustManager[] trust;
        KeyManager[] keys;
        try (InputStream pem = CertUtils.getInputStreamFromDataOrFile(caData, caFile)) {
            trust = Http.trustOnly(pem);
            keys = Http.withOneIterationKeyStores(() -> SSLUtils.keyManagers(config));
        } catch (IOException | GeneralSecurityException e) {
            throw Fail.badInput("cannot use the kubeconfig's TLS files: " + rootMessage(e),
                    "check certificate-authority and client-certificate/client-key (kubectl get ns must work)");
        }
        String certData = config.getClientCertData(), certFile = config.getClientCertFile();
        String keyData = config.getClientKeyData(), keyFile = config.getClientKeyFile();
        try {
            config.setTrustCerts(true);
            config.setClientCertData(null);
            config.setClientCertFile(null);
            config.setClientKeyData(null);
            config.setClientKeyFile(null);
            return new KubernetesClientBuilder().withConfig(config)
                    .withHttpClientBuilderConsumer(b -> b.sslContext(keys, trust)).build();
        } finally {
            config.setTrustCerts(false);
            config.setClientCertData(certData);
            config.setClientCertFile(certFile);
            config.setClientKeyData(keyData);
            config.setClientKeyFile(keyFile);
        }
    }

    /** A Kube around a client made elsewhere (tests: the fabric8 mock server). */
    static Kube of(KubernetesClient client) {
        return new Kube(client, client.getConfiguration(), null, Set.of(), List.of());
    }

    /**
     * The kubeconfig files of --kubeconfig or KUBECONFIG: like kubectl, a list (colon-separated)
     * whose missing files are skipped; none existing is refused. Unset: ~/.kube/config.
     */
    static List<File> kubeconfigFiles(String option) {
        if (option == null || option.isBlank()) {
            File home = Env.userHome().resolve(".kube/config").toFile();
            if (!home.isFile()) throw missingKubeconfig(home.getPath());
            return List.of(home);
        }
        List<File> files = new ArrayList<>();
        for (String p : option.split(File.pathSeparator))
            if (!p.isEmpty() && Files.isRegularFile(Path.of(p)) && !files.contains(new File(p))) files.add(new File(p));
        if (files.isEmpty()) throw missingKubeconfig(option);
        return files;
    }

    private static Fail missingKubeconfig(String which) {
        return Fail.badInput("kubeconfig " + which + " does not exist", KUBECONFIG_HINT);
    }

    /** The API server URL of the selected context, as `kubectl config view` shows it. */
    public String server() {
        String url = config.getMasterUrl();
        return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
    }

    private ClusterId identity;

    /** This cluster as a suffix records it: context, server and CA fingerprint (see {@link ClusterId}). */
    public ClusterId identity() {
        if (identity == null) {
            String caData = config.getCaCertData(), caFile = config.getCaCertFile();
            String fingerprint, from;
            if (caData != null || caFile != null) {
                try (InputStream pem = CertUtils.getInputStreamFromDataOrFile(caData, caFile)) {
                    var certs = java.security.cert.CertificateFactory.getInstance("X.509").generateCertificates(pem);
                    if (certs.isEmpty()) throw new java.security.cert.CertificateException("no certificate");
                    fingerprint = ClusterId.fingerprint(certs.iterator().next().getEncoded());
                } catch (IOException | GeneralSecurityException e) {
                    throw Fail.badInput("cannot read the kubeconfig's certificate-authority: " + rootMessage(e),
                            "check certificate-authority(-data) of context " + context + " (kubectl get ns must work)");
                }
                from = ClusterId.FROM_KUBECONFIG;
            } else {
                fingerprint = presentedCaFingerprint();
                from = fingerprint == null ? null : ClusterId.FROM_SERVER;
            }
            identity = new ClusterId(context, server(), fingerprint, from);
        }
        return identity;
    }

    /** The fingerprint of the last certificate the server presents (a kubeconfig without a CA); null over plain HTTP. */
    private String presentedCaFingerprint() {
        java.net.URI uri = java.net.URI.create(server());
        if (!"https".equalsIgnoreCase(uri.getScheme())) return null;
        try {
            javax.net.ssl.SSLContext tls = javax.net.ssl.SSLContext.getInstance("TLS");
            // only to read the chain the server presents, not to trust it: nothing is sent
            tls.init(null, new TrustManager[] {new javax.net.ssl.X509TrustManager() {
                public void checkClientTrusted(java.security.cert.X509Certificate[] c, String a) {}
                public void checkServerTrusted(java.security.cert.X509Certificate[] c, String a) {}
                public java.security.cert.X509Certificate[] getAcceptedIssuers() { return new java.security.cert.X509Certificate[0]; }
            }}, null);
            try (javax.net.ssl.SSLSocket socket = (javax.net.ssl.SSLSocket) tls.getSocketFactory().createSocket()) {
                socket.connect(new java.net.InetSocketAddress(uri.getHost(), uri.getPort() < 0 ? 443 : uri.getPort()), 10_000);
                socket.setSoTimeout(10_000);
                socket.startHandshake();
                var chain = socket.getSession().getPeerCertificates();
                return ClusterId.fingerprint(chain[chain.length - 1].getEncoded());
            }
        } catch (IOException | GeneralSecurityException e) {
            throw Fail.failed("cannot reach the API server " + server() + " to read its certificate: " + rootMessage(e),
                    "check the cluster is up and the kubeconfig context points at it");
        }
    }

    /**
     * Refuses (exit 2) to act for a suffix on a cluster other than the one k8s-vault-prep
     * recorded for it; a suffix never prepared in this folder is not checked.
     */
    public void requireCluster(ClusterId.Expected expected) {
        requireCluster(expected, "pass the --context of the cluster of " + expected.suffix()
                + " (kubectl config get-contexts), or the suffix of this cluster");
    }

    /** The same, with the step's own hint. */
    public void requireCluster(ClusterId.Expected expected, String hint) {
        ClusterId bound = ClusterId.recorded(expected);
        if (bound == null) return;
        ClusterId here = identity();
        if (!bound.sameCluster(here)) throw ClusterId.mismatch(expected, bound, here, hint);
    }

    /**
     * One line for what went wrong talking to the API server, and what to do.
     * `what` names the operation, e.g. "create namespace vault".
     */
    public Fail explain(KubernetesClientException e, String what) {
        int code = e.getCode();
        String where = " (" + server() + (context == null ? "" : ", context " + context) + ")";
        if (code == 401)
            return Fail.failed("the API server rejected our credentials while trying to " + what + where,
                    "refresh the kubeconfig credentials (kubectl get ns must work)");
        // 403 is also the API server's answer inside a namespace being deleted: not a missing right
        if (code == 403 && reason(e).contains("because it is being terminated"))
            return Fail.failed("cannot " + what + where + ": " + reason(e),
                    "wait until the namespace is gone (kubectl get ns), then run this step again");
        if (code == 403)
            return Fail.failed("not allowed to " + what + where + ": " + reason(e),
                    "run as a cluster admin (see grant-admin) or ask one to grant this right");
        if (code == 0 || e.getCause() instanceof java.io.IOException || e.getCause() instanceof java.net.ConnectException)
            return Fail.failed("cannot reach the API server to " + what + where + ": " + rootMessage(e),
                    "check the cluster is up and the kubeconfig context points at it");
        return Fail.failed("could not " + what + where + ": " + reason(e), "see the message above; --verbose shows the details");
    }

    /** One API call; a failure becomes the one-line explanation of `what` (exit 1). */
    public <T> T call(java.util.function.Supplier<T> request, String what) {
        try {
            return request.get();
        } catch (KubernetesClientException e) {
            throw explain(e, what);
        }
    }

    /** The kubelet's last word on an exec (a Status on the error channel): its message, or null when it said nothing. */
    public static String execStatusMessage(String json) {
        if (json.isBlank()) return null;
        try {
            var st = io.fabric8.kubernetes.client.utils.Serialization.unmarshal(json, io.fabric8.kubernetes.api.model.Status.class);
            return st.getMessage();
        } catch (RuntimeException e) {
            return json.strip();
        }
    }

    static String reason(KubernetesClientException e) {
        if (e.getStatus() != null && e.getStatus().getMessage() != null) return e.getStatus().getMessage();
        return rootMessage(e);
    }

    static String rootMessage(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) t = t.getCause();
        String m = t.getMessage();
        return m == null ? t.getClass().getSimpleName() : m;
    }

    // ------------------------------------------------------------ desired state

    public static Namespace namespace(String name) {
        return new NamespaceBuilder().withNewMetadata().withName(name).endMetadata().build();
    }

    /** "Service istio-system/istiod", "Namespace vault". */
    public static String describe(HasMetadata o) {
        String ns = o.getMetadata().getNamespace();
        return o.getKind() + " " + (ns == null ? "" : ns + "/") + o.getMetadata().getName();
    }

    /**
     * Creates {@code desired}, or brings the live object to it; idempotent, honours --dry-run.
     * Says "created X", "updated X (fields)" ("would create/update" under --dry-run) or
     * "X already up to date" through {@code out};
     * returns true when something changed (or would, under --dry-run).
     * <p>What is compared and set: every field {@code desired} states. Labels and annotations are
     * added (others' keys stay); string maps elsewhere (a selector, ConfigMap data) and lists are
     * set exactly; fields the API server fills in (clusterIP, defaults, a token's data) are left
     * alone. An update is one JSON merge patch, never delete-then-create.
     * <p>Under --dry-run {@code desired} is part of the step's manifest (Out#manifest).
     */
    // Our diff, not fabric8's apply: serverSideApply keeps keys the creating manager co-owns and needs forceConflicts, update() drops others' labels, and neither names what changes.
    public boolean apply(HasMetadata desired, Out out) {
        String what = describe(desired);
        JsonNode want = json(desired);
        out.manifest(manifest(desired));
        HasMetadata live = live(desired);
        if (live != null && live.getMetadata().getDeletionTimestamp() != null) {
            // being deleted (a namespace a teardown just removed stays until its contents are gone): the
            // API server refuses anything inside it, so wait until it is gone and create it anew
            if (!out.dryRun())
                await(what + " to finish being deleted", deletionWaitSeconds,
                        "see what holds it (kubectl get " + desired.getKind().toLowerCase(java.util.Locale.ROOT) + " "
                                + desired.getMetadata().getName()
                                + (desired.getMetadata().getNamespace() == null ? "" : " -n " + desired.getMetadata().getNamespace())
                                + " -o yaml: its finalizers), then run this step again",
                        () -> {
                            HasMetadata now = live(desired);
                            return now != null && now.getMetadata().getDeletionTimestamp() != null ? null : Boolean.TRUE;
                        }, out);
            live = out.dryRun() ? null : live(desired);
        }
        if (live == null) {
            if (!out.dryRun()) {
                try {
                    client.resource(desired).create();
                } catch (KubernetesClientException e) {
                    throw explain(e, "create " + what);
                }
            }
            out.change((out.dryRun() ? "create " : "created ") + what);
            return true;
        }
        JsonNode have = json(live);
        List<String> differs = new ArrayList<>();
        ObjectNode patch = (ObjectNode) want.deepCopy();
        compare(want, have, patch, "", differs);
        if (differs.isEmpty()) {
            out.say("%s already up to date", what);
            return false;
        }
        if (!out.dryRun()) {
            try {
                client.resource(desired).patch(PatchContext.of(PatchType.JSON_MERGE), patch.toString());
            } catch (KubernetesClientException e) {
                throw explain(e, "update " + what + " (" + String.join(", ", differs) + ")");
            }
        }
        out.change((out.dryRun() ? "update " : "updated ") + what + " (" + String.join(", ", differs) + ")");
        return true;
    }

    /** How long apply waits for an object being deleted to be gone before it creates it anew. */
    static final int DELETION_WAIT_SECONDS = 120;
    int deletionWaitSeconds = DELETION_WAIT_SECONDS;      // shorter only in KubeTest, to see the wait end

    /** The object on the server with the kind, namespace and name of {@code desired}; null if there is none. */
    public <T extends HasMetadata> T live(T desired) {
        try {
            return client.resource(desired).get();
        } catch (KubernetesClientException e) {
            throw explain(e, "read " + describe(desired));
        }
    }

    /**
     * Polls {@code probe} (every 100 ms for 5 s, then every half second) until it returns non-null, with a progress line;
     * fails after {@code seconds} with {@code hint}. API errors fail at once.
     */
    public <T> T await(String waitingFor, int seconds, String hint, java.util.function.Supplier<T> probe, Out out) {
        long start = System.nanoTime();
        while (true) {
            T value;
            try {
                value = probe.get();
            } catch (KubernetesClientException e) {
                throw explain(e, "wait for " + waitingFor);
            }
            if (value != null) {
                out.endProgress();
                return value;
            }
            long waited = (System.nanoTime() - start) / 1_000_000_000L;
            if (waited >= seconds) {
                out.endProgress();
                throw Fail.failed("timed out after " + seconds + "s waiting for " + waitingFor, hint);
            }
            out.progress("waiting for " + waitingFor, "(" + waited + "s of " + seconds + "s)");
            try {
                // controllers usually answer within a fraction of a second: look every 100 ms for
                // the first 5 s (a cheap GET), then every half second
                Thread.sleep(waited < 5 ? 100 : 500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw Fail.failed("interrupted while waiting for " + waitingFor, null);
            }
        }
    }

    /**
     * An object as a manifest holds it (Out#manifest): the fields it states, as the API server
     * takes them; of a live object, without what the server keeps (status, resourceVersion, uid ...).
     */
    @SuppressWarnings("unchecked")
    public Map<String, Object> manifest(HasMetadata o) {
        Map<String, Object> m = new LinkedHashMap<>(client.getKubernetesSerialization().convertValue(o, Map.class));
        m.remove("status");
        if (m.get("metadata") instanceof Map<?, ?> meta) {
            Map<String, Object> kept = new LinkedHashMap<>((Map<String, Object>) meta);
            for (String server : List.of("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink"))
                kept.remove(server);
            m.put("metadata", kept);
        }
        return m;
    }

    private JsonNode json(HasMetadata o) {
        return client.getKubernetesSerialization().convertValue(o, JsonNode.class);
    }

    /**
     * Adds to {@code differs} the path of every field of {@code want} that {@code have} lacks or
     * holds otherwise, and nulls into {@code patch} for keys of exact maps that must go.
     */
    static void compare(JsonNode want, JsonNode have, JsonNode patch, String path, List<String> differs) {
        if (want.isObject() && have != null && have.isObject()) {
            boolean exact = !path.startsWith("metadata") && !want.isEmpty()
                    && want.properties().stream().allMatch(e -> e.getValue().isString());
            for (var e : want.properties())
                compare(e.getValue(), have.get(e.getKey()), patch.get(e.getKey()),
                        path.isEmpty() ? e.getKey() : path + "." + e.getKey(), differs);
            if (exact)
                for (String k : have.propertyNames())
                    if (!want.has(k)) {
                        ((ObjectNode) patch).putNull(k);
                        differs.add(path + "." + k);
                    }
        } else if (want.isArray() && have != null && have.isArray() && want.size() == have.size()) {
            List<String> inner = new ArrayList<>();
            for (int i = 0; i < want.size(); i++) compare(want.get(i), have.get(i), want.get(i).deepCopy(), path, inner);
            if (!inner.isEmpty()) differs.add(path);   // a list is replaced whole
        } else if (have == null || !want.equals(have)) {
            differs.add(path);
        }
    }

    /**
     * Closes the client and ends its JDK HttpClient's selector thread. On Java 17 that thread
     * outlives close(), waiting in epoll (native code) until the client is garbage-collected,
     * and the JVM waits 0.3 s at exit for threads in native code. The selector loop stops when interrupted.
     */
    @Override
    public void close() {
        client.close();
        Startup.endSelectorThreads(selectorThreads);
    }
}
