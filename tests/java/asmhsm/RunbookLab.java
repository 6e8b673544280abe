package asmhsm;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPairGenerator;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The world the runbooks are rehearsed in: a lab of its own (tests/lab/up: OpenBao, etcd,
 * kube-apiserver, kube-controller-manager; its own because the guide's names are cluster-wide:
 * namespaces vault and istio-system, a ClusterRoleBinding, the Vault mount asm-c1), two SoftHSM2
 * tokens made with pkcs11-tool (istiod's slot, and the security administrator's with the root CA's
 * key), and stand-ins for what cannot run here:
 * <ul>
 * <li>four Nodes (as kubelets would register them: 4 vCPU, 16 GiB, an InternalIP each);
 * <li>an application namespace with a Deployment, running before the mesh, as in the guide;
 * <li>the release: no internet, and only Google can sign an archive the guide's key accepts,
 *     so a release tree is put where fetch-release extracts it, with a stand-in istioctl;
 * <li>istioctl: records its arguments, creates with kubectl what later steps look at (istiod's
 *     Deployment, its service account, the ingress gateway Service) and gives up waiting as the
 *     guide expects with WAIT_FOR_RESOURCES_TIMEOUT=10s;
 * <li>istiod ({@link IstiodStandIn}): when install-asm has run it writes Secret
 *     istio-ca-cert-csr under the KEK and reports 2/3 ready; when upload-chain has run it loads
 *     Secret istio-ca-cert as istiod and its HSM plugin would and reports 3/3;
 * <li>the Vault CLI: OpenBao's {@code bao}, which takes the same commands.
 * </ul>
 * The values the runbooks' manual blocks ask the operator for come from {@link #answers()}.
 */
final class RunbookLab implements AutoCloseable {
    static final String CONTEXT_1 = "asm-lab-admin@asm-lab", CONTEXT_2 = "asm-lab-admin@asm-lab-2";
    static final String APP_NAMESPACE = "bookinfo", ROOT_TOKEN = "asm-root", ROOT_KEY_LABEL = "asm-root-ca", TRUST_DOMAIN = "cluster.local";

    final Path dir, work, labDir;
    final Map<String, String> labEnv;
    final SoftHsmToken token;
    /** The new PIN of istiod's slot that runbook 17 sets (a file of its own, mode 0600, no trailing newline). */
    final Path newPinFile;
    /** The file holding the PIN istiod's slot has now, as the test saw it change (runbook 17). */
    private Path slotPin;
    final Path rootCert;
    final KubernetesClient admin;
    /** The lab's two clusters (tests/lab/up with LAB_CLUSTERS=2): the first is the session's current context. */
    final List<Cluster> clusters = new ArrayList<>();
    final List<String> notes = new ArrayList<>();
    private Thread shutdownHook;

    private RunbookLab(Path dir, Path labDir, Map<String, String> labEnv) throws Exception {
        this.dir = dir;
        this.labDir = labDir;
        this.labEnv = labEnv;
        this.work = Files.createDirectories(dir.resolve("work"));
        Lab lab = new Lab(Cli.repo(), labEnv);
        this.admin = lab.client(Path.of(labEnv.get("KUBECONFIG")));
        clusters.add(new Cluster(CONTEXT_1, admin));
        clusters.add(new Cluster(CONTEXT_2, lab.client(Path.of(labEnv.get("LAB_C2_KUBECONFIG")))));
        Path hsm = Files.createDirectories(dir.resolve("hsm"));
        this.token = SoftHsmToken.create(hsm);
        this.slotPin = token.pinFile;
        this.newPinFile = hsm.resolve("new-pin");
        Env.writeSecret(newPinFile, ("new-" + java.util.UUID.randomUUID().toString().substring(0, 12)).getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        // The security administrator's slot, beside istiod's on the same HSM: the root key, never in istiod's slot.
        token.tool("--init-token", "--slot-index", "1", "--label", ROOT_TOKEN, "--so-pin", "env:SO_PIN");
        token.tool("--token-label", ROOT_TOKEN, "--login", "--login-type", "so", "--so-pin", "env:SO_PIN", "--init-pin", "--new-pin", "env:USER_PIN");
        this.rootCert = SignCsrTest.opensslRoot(hsm, "root-ca", "/O=Example Corp/CN=Example Root CA", "rsa", 3650);
        token.tool("--token-label", ROOT_TOKEN, "--login", "--pin", "env:USER_PIN", "--write-object", hsm.resolve("root-ca.key").toString(),
                "--type", "privkey", "--label", ROOT_KEY_LABEL, "--id", "0a01", "--usage-sign");
        Files.delete(hsm.resolve("root-ca.key"));
        notes.add("HSM: SoftHSM2 tokens made by pkcs11-tool: '" + token.label + "' for istiod, '" + ROOT_TOKEN
                + "' holding the root CA's key '" + ROOT_KEY_LABEL + "' (made by openssl)");
    }

    /**
     * Starts a lab of its own, stopped by {@link #close} or, if the JVM is stopped first, by a
     * shutdown hook. {@code keep}: leave it and the files after the test, to look around.
     */
    static RunbookLab start(boolean keep) throws Exception {
        Path dir = Files.createTempDirectory("asm-runbook");
        Path labDir = dir.resolve("lab");
        Thread down = new Thread(() -> stop(dir, labDir), "runbook-lab-down");
        if (!keep) Runtime.getRuntime().addShutdownHook(down);
        RunbookLab lab = null;
        try {
            Map<String, String> env = Lab.parseEnv(Lab.run(List.of(Cli.repo().resolve("tests/lab/up").toString()),
                    Map.of("ASM_LAB_DIR", labDir.toString(), "LAB_CLUSTERS", "2")));
            lab = new RunbookLab(dir, labDir, env);
            lab.shutdownHook = keep ? null : down;
            lab.prepare();
            return lab;
        } catch (Exception | Error e) {
            if (lab != null) lab.clusters.forEach(c -> c.client.close());
            if (!keep) {
                Runtime.getRuntime().removeShutdownHook(down);
                stop(dir, labDir);
            }
            throw e;
        }
    }

    /** tests/lab/down (by the PIDs up recorded), then the files. */
    private static void stop(Path dir, Path labDir) {
        try {
            if (Files.exists(labDir)) Lab.run(List.of(Cli.repo().resolve("tests/lab/down").toString(), labDir.toString()), Map.of());
        } finally {
            try {
                Release.deleteTree(dir);
            } catch (IOException e) {
                System.err.println("cannot remove " + dir + ": " + e.getMessage());
            }
        }
    }

    private void prepare() throws Exception {
        for (Cluster c : clusters) prepare(c.client);
        notes.add("clusters: " + clusters.stream().map(c -> c.context).toList() + ", each with its own CA, sharing OpenBao and the SoftHSM2 tokens");
        notes.add("nodes: 4 stand-in Nodes per cluster, 4 vCPU and 16 GiB each, InternalIP 192.168.0.10-13 (no kubelets)");
        notes.add("application: namespace " + APP_NAMESPACE + " with Deployment and Service details in each cluster, there before the mesh");
        prepareFiles();
    }

    private void prepare(KubernetesClient admin) throws Exception {
        for (int i = 0; i < 4; i++) {
            String name = "lab-node-" + (i + 1);
            admin.nodes().resource(new NodeBuilder().withNewMetadata().withName(name).addToLabels("kubernetes.io/hostname", name).endMetadata()
                    .withNewStatus().addToCapacity(Map.of("cpu", new Quantity("4"), "memory", new Quantity("16Gi"), "pods", new Quantity("110")))
                    .addToAllocatable(Map.of("cpu", new Quantity("4"), "memory", new Quantity("16Gi"), "pods", new Quantity("110")))
                    .addNewAddress().withType("InternalIP").withAddress("192.168.0." + (10 + i)).endAddress()
                    .addNewCondition().withType("Ready").withStatus("True").withReason("KubeletReady").withMessage("runbook test stand-in")
                    .withLastHeartbeatTime(Instant.now().toString()).withLastTransitionTime(Instant.now().toString()).endCondition()
                    .endStatus().build()).create();
        }

        admin.namespaces().resource(Kube.namespace(APP_NAMESPACE)).create();
        Map<String, String> app = Map.of("app", "details");
        admin.apps().deployments().inNamespace(APP_NAMESPACE).resource(new DeploymentBuilder().withNewMetadata().withName("details")
                .withLabels(app).endMetadata().withNewSpec().withReplicas(1).withNewSelector().withMatchLabels(app).endSelector()
                .withNewTemplate().withNewMetadata().withLabels(app).endMetadata().withNewSpec().addNewContainer().withName("details")
                .withImage("docker.io/istio/examples-bookinfo-details-v1:1.16.2").endContainer().endSpec().endTemplate().endSpec()
                .build()).create();
        admin.services().inNamespace(APP_NAMESPACE).resource(new ServiceBuilder().withNewMetadata().withName("details").endMetadata()
                .withNewSpec().withSelector(app).addNewPort().withName("http").withPort(9080).endPort().endSpec().build()).create();
    }

    private void prepareFiles() throws Exception {
        String version = admin.getKubernetesVersion().getGitVersion().replaceFirst("^v(\\d+\\.\\d+).*", "$1");
        Files.writeString(dir.resolve("supported-versions.txt"), "# the lab's Kubernetes, newer than GKE on VMware of ASM 1.9's time\n" + version + "\n");
        notes.add("preflight: ASM_SUPPORTED_VERSIONS lists the lab's Kubernetes " + version);

        Path creds = Files.createDirectories(dir.resolve("hsm-credential"));
        for (String name : List.of("client", "server"))
            SignCsrTest.run(creds, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", name + ".key", "-out", name + ".pem", "-days", "30", "-subj", "/CN=asm-lab HSM " + name);
        Files.setPosixFilePermissions(creds.resolve("client.key"), PosixFilePermissions.fromString("rw-------"));
        notes.add("HSM mTLS files: client and server certificates made by openssl");

        Path release = work.resolve(Release.topDir(Release.DEFAULT_VERSION));
        Files.createDirectories(release.resolve("manifests/profiles"));
        Files.createDirectories(release.resolve("samples"));
        Files.writeString(release.resolve("manifests/profiles/asm-multicloud.yaml"), "# stand-in profile of the runbook test\n");
        Path istioctl = Files.createDirectories(release.resolve("bin")).resolve("istioctl");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Files.writeString(istioctl, ISTIOCTL.replace("@OVERLAY@", RunbookShell.quote(java) + " -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "
                + RunbookShell.quote(Cli.classpath()) + " asmhsm.IstioOverlay"));
        Files.setPosixFilePermissions(istioctl, PosixFilePermissions.fromString("rwxr-xr-x"));
        notes.add("release: " + work.relativize(release) + "/ in place, with a stand-in bin/istioctl (no internet here; only Google signs releases)");

        prepareUpgrade(version, istioctl);
        Path bin = Files.createDirectories(dir.resolve("bin"));
        Files.createSymbolicLink(bin.resolve("vault"), Path.of(labEnv.get("LAB_BIN"), "bao"));
        notes.add("vault CLI: OpenBao's bao");
    }

    // ------------------------------------------------------------------ runbook 18, the canary upgrade

    static final String NEXT_VERSION = "1.10.6-asm.2";

    /** The values runbook 18's first block asks for. */
    static Map<String, String> upgradeAnswers() {
        return Map.of("OLD_REVISION", Istio.GUIDE_REVISION, "NEW_VERSION", NEXT_VERSION, "NEW_REVISION", Release.revision(NEXT_VERSION));
    }

    /** The next release's tree (as fetch-release would extract it) with the same stand-in istioctl, and the upgrade in the lab's versions file. */
    private void prepareUpgrade(String kubernetesVersion, Path istioctl) throws IOException {
        Files.writeString(dir.resolve("supported-versions.txt"), "upgrade 1.9 1.10\n", java.nio.file.StandardOpenOption.APPEND);
        Path next = work.resolve(Release.topDir(NEXT_VERSION));
        Files.createDirectories(next.resolve("manifests/profiles"));
        Files.writeString(next.resolve("manifests/profiles/asm-multicloud.yaml"), "# stand-in profile of the runbook test\n");
        Path bin = Files.createDirectories(next.resolve("bin"));
        Files.copy(istioctl, bin.resolve("istioctl"));
        Files.setPosixFilePermissions(bin.resolve("istioctl"), PosixFilePermissions.fromString("rwxr-xr-x"));
        notes.add("upgrade: " + work.relativize(next) + "/ in place with the same stand-in istioctl; the versions file allows 1.9 -> 1.10");
    }

    /** The first `jbang asm@org` goes through JBang, later ones run the compiled classes (RUNBOOK_JBANG=all: every one through JBang). */
    void jbangShim(String realJbang, boolean allThroughJbang) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String shim = "#!/usr/bin/env bash\n"
                + "# The runbook test's jbang: the first `jbang asm@org` is the real JBang (it proves the runbooks' command form);\n"
                + "# later ones run the classes under test directly, with the same JVM options, for speed.\n"
                + "if [[ ${1:-} == asm@org && -e " + RunbookShell.quote(dir.resolve("jbang-used").toString()) + " && "
                + (allThroughJbang ? "false" : "true") + " ]]; then\n"
                + "  shift\n"
                + "  exec " + RunbookShell.quote(java) + " -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto"
                + " --add-exports=jdk.crypto.cryptoki/sun.security.pkcs11.wrapper=ALL-UNNAMED -cp " + RunbookShell.quote(Cli.classpath())
                + " asmhsm.Asm \"$@\"\n"
                + "fi\n"
                + "[[ ${1:-} == asm@org ]] && touch " + RunbookShell.quote(dir.resolve("jbang-used").toString()) + "\n"
                + "exec " + RunbookShell.quote(realJbang) + " \"$@\"\n";
        Path file = dir.resolve("bin/jbang");
        Files.writeString(file, shim);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /** What a terminal of the operator has before the first runbook: the lab's settings (as `eval "$(tests/lab/up)"`) and the HSM token. */
    Map<String, String> environment() {
        Map<String, String> env = new LinkedHashMap<>();
        for (String k : List.of("HOME", "USER", "LANG", "LC_ALL", "JAVA_HOME", "TERM"))
            if (System.getenv(k) != null) env.put(k, System.getenv(k));
        env.put("PATH", dir.resolve("bin") + ":" + System.getenv("PATH"));
        env.putAll(labEnv);
        env.putAll(token.env());
        env.put("ASM_SUPPORTED_VERSIONS", dir.resolve("supported-versions.txt").toString());
        return env;
    }

    /** The lab's answers to the manual blocks: the values an operator fills in for their own site. */
    Map<String, String> answers() {
        Map<String, String> a = new LinkedHashMap<>();
        a.put("CLUSTER_SUFFIX", "c1");
        a.put("ASM_WORK", work.toString());
        a.put("USER_ACCOUNT", "asm-lab-admin");
        a.put("ROOT_CERT", rootCert.toString());
        a.put("ROOT_P11_TOKEN", ROOT_TOKEN);
        a.put("ROOT_P11_PIN_FILE", token.pinFile.toString()); // both slots start with one PIN; runbook 17 changes istiod's only
        a.put("ROOT_KEY_LABEL", ROOT_KEY_LABEL);
        a.put("HSM_CLIENT_CERT", dir.resolve("hsm-credential/client.pem").toString());
        a.put("HSM_CLIENT_KEY", dir.resolve("hsm-credential/client.key").toString());
        a.put("HSM_SERVER_CERT", dir.resolve("hsm-credential/server.pem").toString());
        a.put("NAMESPACE", APP_NAMESPACE);
        a.putAll(upgradeAnswers());
        a.put("INGRESS_IP", "203.0.113.1");
        a.put("NEW_P11_PIN_FILE", newPinFile.toString());
        // runbook 19: the first cluster as runbook 18 left it
        a.put("REVISION", upgradeAnswers().get("NEW_REVISION"));
        a.put("ISTIO_RELEASE", work.resolve(Release.topDir(NEXT_VERSION)).toString());
        return a;
    }

    /** The answers for a runbook's manual blocks: the next cluster's runbook answers for the lab's second cluster. */
    Map<String, String> answers(String runbook) {
        Map<String, String> a = answers();
        if (runbook.startsWith("13-")) {
            a.put("CLUSTER_SUFFIX", "c2");
            a.put("CONTEXT", CONTEXT_2);
            a.put("KUBECONFIG", labEnv.get("KUBECONFIG") + ":" + labEnv.get("LAB_C2_KUBECONFIG"));
        }
        return a;
    }

    /** Variables of manual blocks that the lab leaves unset on purpose, and why. */
    static final Map<String, String> NOT_IN_THE_LAB = Map.of(
            "ChrystokiConfigurationPath", "a Luna client setting; SoftHSM2 reads SOFTHSM2_CONF instead");

    // ------------------------------------------------------------------ istiod

    /**
     * The guide's `istioctl install` line ("Instale Anthos Service Mesh"), its ${VARIABLES} filled in
     * from the session: the stand-in istioctl must have been called with exactly these settings.
     */
    static final List<String> GUIDE_INSTALL = List.of("install", "--set", "profile=asm-multicloud", "--set", "revision=asm-198-6",
            "--set", "values.hsm.enabled=true", "--set", "values.hsm.hsmKEKID=${KEK_ID}",
            "--set", "values.hsm.hsmPluginImage=${HSM_PLUGIN_IMAGE}", "--set", "values.hsm.hsmSlotLabel=${HSM_SLOT_LABEL}",
            "--set", "values.hsm.vaultClientImage=${VAULT_CLIENT_IMAGE}", "--set", "values.hsm.vaultAddr=${VAULT_ADDR}",
            "--set", "values.hsm.vaultAuthPath=auth/${HSM_SECRET_PATH}/login", "--set", "values.hsm.vaultAuthRole=istiod",
            "--set", "values.hsm.vaultAuthJwtPath=/var/run/secrets/kubernetes.io/serviceaccount/token",
            "--set", "values.hsm.vaultSecretPath=${HSM_SECRET_PATH}", "--set", "values.global.jwtPolicy=first-party-jwt");

    /** The stand-in istioctl's last call, word by word, against the guide's line with the session's values. */
    String istioctlCalledAsTheGuideSays(RunbookShell shell) throws IOException {
        List<String> calls = Files.readAllLines(work.resolve(Release.topDir(Release.DEFAULT_VERSION)).resolve("istioctl-calls.log"));
        List<String> called = new ArrayList<>(List.of(calls.get(calls.size() - 1).strip().split(" ")));
        called.remove("-y");
        int ctx = called.indexOf("--context"); // the cluster, when a step names one: not one of the guide's settings
        if (ctx >= 0) called.subList(ctx, ctx + 2).clear();
        // install-asm's root hook (on by default) comes as one more -f beside the guide's settings
        int hook = called.indexOf(IstioInstall.hookFile(Istio.GUIDE_REVISION));
        if (hook > 0 && called.get(hook - 1).equals("-f")) called.subList(hook - 1, hook + 1).clear();
        List<String> expected = new ArrayList<>();
        for (String word : GUIDE_INSTALL) {
            var m = java.util.regex.Pattern.compile("\\$\\{([A-Z_]+)}").matcher(word);
            StringBuilder filled = new StringBuilder();
            while (m.find()) {
                String value = shell.variable(m.group(1));
                if (value.isEmpty()) throw new AssertionError("$" + m.group(1) + " is not set in the session when istioctl ran");
                m.appendReplacement(filled, java.util.regex.Matcher.quoteReplacement(value));
            }
            m.appendTail(filled);
            expected.add(filled.toString());
        }
        if (!called.equals(expected))
            throw new AssertionError("istioctl was called as\n  " + String.join(" ", called) + "\nnot as the guide says\n  " + String.join(" ", expected));
        return "istioctl install ran with the guide's " + (expected.size() - 1) / 2 + " settings and this session's values";
    }

    /** One of the lab's clusters, by its context in the session's kubeconfig: its admin client and its istiod stand-in. */
    final class Cluster {
        final String context;
        final KubernetesClient client;
        private IstiodStandIn istiod;
        private IstiodPods pods;
        private IstiodKubelet kubelet;
        private int madePods;

        Cluster(String context, KubernetesClient client) {
            this.context = context;
            this.client = client;
        }

        /** istiod starts: its pods run, each pod's plugin fresh (its postStart hook loads the root), the plugin writes a new CSR under the KEK, discovery waits. */
        String istiodStarts(String kekId) throws Exception {
            List<Deployment> deps = client.apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).withLabel("app", "istiod").list().getItems();
            if (deps.isEmpty()) throw new AssertionError("install-asm left no istiod Deployment in " + KubeLayout.ISTIO_NAMESPACE);
            StringBuilder said = new StringBuilder(podsOf(deps.get(0)));
            pods = new IstiodPods(client, dir.resolve("pods").resolve(context), token.env(), RunbookLab.this::vaultclientFetches);
            for (Pod p : Istio.istiodPods(client)) said.append("pod ").append(p.getMetadata().getName()).append(": ").append(pods.start(p)).append("; ");
            KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
            g.initialize(2048);
            istiod = IstiodStandIn.start(pods.pluginEnv(Istio.istiodPods(client).get(0)), kekId, TRUST_DOMAIN, g.generateKeyPair());
            istiod.writeSecret(client, KubeLayout.ISTIO_NAMESPACE);
            istiod.writeKeySecret(client, KubeLayout.ISTIO_NAMESPACE);
            for (Pod p : Istio.istiodPods(client)) pods.running(p, Map.of(IstiodPods.DISCOVERY, false));
            return said + "wrote Secret istio-ca-cert-csr (KEK " + kekId + ", trust domain " + TRUST_DOMAIN + "); pod 2/3 ready, discovery waits for its CA";
        }

        /** The Deployment's pods, made by the lab's controller-manager (or from its template when it makes none). */
        private String podsOf(Deployment d) throws InterruptedException {
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (Istio.istiodPods(client).isEmpty() && System.nanoTime() < deadline) Thread.sleep(250);
            if (!Istio.istiodPods(client).isEmpty()) return "";
            client.pods().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(new PodBuilder().withNewMetadata()
                    .withName(d.getMetadata().getName() + "-6d8f7c9b5-lab" + (++madePods)).withLabels(d.getSpec().getTemplate().getMetadata().getLabels())
                    .endMetadata().withSpec(d.getSpec().getTemplate().getSpec()).build()).create();
            return "created istiod's pod from its Deployment's template (the lab's controller-manager made none); ";
        }

        /**
         * istiod finds Secret istio-ca-cert: its pod's plugin verifies the CA certificate against the
         * root it has loaded (none: istiod aborts and crash-loops, as the real one), then istiod loads
         * the chain as it and its plugin would (throws if it would refuse it), and is 3/3.
         */
        String istiodLoadsChain() throws Exception {
            if (istiod == null) throw new AssertionError("upload-chain ran before istiod started");
            StringBuilder said = new StringBuilder();
            for (Pod p : Istio.istiodPods(client)) {
                if (!pods.started(p)) said.append("pod ").append(p.getMetadata().getName()).append(": ").append(pods.start(p)).append("; ");
                if (!pods.rootLoaded(p)) {
                    pods.crashLoop(p);
                    throw new AssertionError(said + "istiod in " + p.getMetadata().getName() + " aborted: Failed to verify certificate chain (error: rpc error: code = Unknown desc = "
                            + IstiodPods.NOT_LOADED + "). Abort. (its plugin has no root loaded); discovery is crash-looping");
                }
            }
            var ca = istiod.loadChain(client, KubeLayout.ISTIO_NAMESPACE, token, Hsm.DEFAULT_CA_ID);
            // istiod polls for the Secret every 2 s: its discovery is ready a poll after the Secret changed (the API keeps whole seconds)
            Thread.sleep(2000);
            for (Pod p : Istio.istiodPods(client)) pods.running(p, Map.of());
            return said + "loaded istio-ca-cert: CA '" + Pki.goName(Pki.subjectDer(ca)) + "' verifies through the pod's plugin against the HSM's root and matches istiod's key; pod 3/3 ready";
        }

        /**
         * What istiod's injection webhook and the kubelets do after enable-injection --restart: every
         * new pod of the namespace gets the istio-proxy sidecar (here: the Deployments' templates get
         * it, a rollout the controller-manager carries out) and runs; the old pods go.
         */
        String podsGetSidecars(String namespace) throws Exception {
            List<Deployment> deps = client.apps().deployments().inNamespace(namespace).list().getItems();
            for (Deployment d : deps)
                if (d.getSpec().getTemplate().getSpec().getContainers().stream().noneMatch(c -> c.getName().equals("istio-proxy")))
                    client.apps().deployments().inNamespace(namespace).withName(d.getMetadata().getName()).edit(x -> new DeploymentBuilder(x)
                            .editSpec().editTemplate().editSpec().addNewContainer().withName("istio-proxy")
                            .withImage("gcr.io/gke-release/asm/proxyv2:1.9.8-asm.6").endContainer().endSpec().endTemplate().endSpec().build());
            long deadline = System.nanoTime() + 90_000_000_000L;
            while (true) {
                List<Pod> all = client.pods().inNamespace(namespace).list().getItems();
                boolean done = !all.isEmpty();
                for (Pod p : all) {
                    boolean proxy = p.getSpec().getContainers().stream().anyMatch(c -> c.getName().equals("istio-proxy"));
                    if (!proxy) done = false;
                    else if (p.getStatus() == null || !"Running".equals(p.getStatus().getPhase())) {
                        try {
                            IstiodPods.runningPod(client, p);
                        } catch (io.fabric8.kubernetes.client.KubernetesClientException gone) {
                            // deleted meanwhile by its ReplicaSet: the next round sees the pods as they are
                        }
                        done = false;
                    }
                }
                if (done) return "every pod of " + namespace + " runs with istio-proxy (" + all.size() + " pod(s))";
                if (System.nanoTime() > deadline)
                    throw new AssertionError("the pods of " + namespace + " did not all get istio-proxy in 90 s: "
                            + all.stream().map(p -> p.getMetadata().getName()).toList());
                Thread.sleep(300);
            }
        }

        /**
         * From here on, istiod's pods react while steps run, as kubelets and istiod would during a rollout
         * (renew-ca, rotate-ca, a restart): see {@link IstiodKubelet}.
         */
        String kubeletRuns() {
            if (kubelet == null) kubelet = new IstiodKubelet(client, KubeLayout.ISTIO_NAMESPACE, pods, token, istiod, Hsm.DEFAULT_CA_ID).start();
            return "every new istiod pod is started (its root hook run), then its istiod keeps or makes its key and loads the chain when its Secrets and plugin allow";
        }

        boolean kubeletRunning() {
            return kubelet != null;
        }

        /** They stop reacting; istiod is the one whose key the Secrets now hold. What they did, in words. */
        String kubeletStops() throws Exception {
            if (kubelet == null) return "";
            kubelet.close();
            istiod = kubelet.istiod;
            String said = kubelet.said.isEmpty() ? "no new pods" : String.join("; ", kubelet.said);
            kubelet = null;
            return said;
        }

        /** istiod's discovery container restarts (its pod and plugin stay): with all its Secrets there it loads the key and verifies the chain again. */
        String istiodRestarts() throws Exception {
            for (Pod p : Istio.istiodPods(client)) pods.restarted(p, IstiodPods.DISCOVERY, Map.of(IstiodPods.DISCOVERY, false));
            return "discovery restarted (same pod, same plugin); " + istiodLoadsChain();
        }

        /**
         * A second revision's istiod starts beside the first: its pods' plugins load the root through the root
         * hook, istiod finds all three Secrets (no new CSR), loads the chain and is 3/3.
         */
        String canaryStarts(String revision) throws Exception {
            String deployment = Istio.istiodDeployment(revision);
            Deployment d = client.apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(deployment).get();
            if (d == null) throw new AssertionError("install-asm left no Deployment " + deployment);
            long deadline = System.nanoTime() + 30_000_000_000L;
            while (ofRevision(revision).isEmpty() && System.nanoTime() < deadline) Thread.sleep(250);
            StringBuilder said = new StringBuilder();
            if (ofRevision(revision).isEmpty()) {
                client.pods().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(new PodBuilder().withNewMetadata()
                        .withName(deployment + "-6d8f7c9b5-lab" + (++madePods)).withLabels(d.getSpec().getTemplate().getMetadata().getLabels())
                        .endMetadata().withSpec(d.getSpec().getTemplate().getSpec()).build()).create();
                said.append("created the new revision's pod from its Deployment's template; ");
            }
            String csr = client.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.CSR_SECRET).get().getMetadata().getResourceVersion();
            for (Pod p : ofRevision(revision)) said.append("pod ").append(p.getMetadata().getName()).append(": ").append(pods.start(p)).append("; ");
            said.append("Secret istio-ca-cert-csr exists: no new CSR; ").append(istiodLoadsChain());
            String after = client.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.CSR_SECRET).get().getMetadata().getResourceVersion();
            if (!csr.equals(after)) throw new AssertionError("the CSR Secret changed while the new revision started");
            return said.toString();
        }

        private List<Pod> ofRevision(String revision) {
            return Istio.istiodPods(client).stream().filter(p -> revision.equals(Istio.revisionOf(p))).toList();
        }

        /** istiod's pods are re-created (rollout, eviction, drain): new pods, each with a fresh plugin; istiod loads its Secrets again. */
        String istiodPodsRecreated() throws Exception {
            List<String> old = Istio.istiodPods(client).stream().map(p -> p.getMetadata().getName()).toList();
            client.pods().inNamespace(KubeLayout.ISTIO_NAMESPACE).withLabel("app", "istiod").withGracePeriod(0).delete();
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (System.nanoTime() < deadline && (Istio.istiodPods(client).isEmpty()
                    || Istio.istiodPods(client).stream().anyMatch(p -> old.contains(p.getMetadata().getName())))) Thread.sleep(250);
            StringBuilder said = new StringBuilder("deleted pod(s) " + String.join(", ", old) + "; ");
            List<Deployment> deps = client.apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).withLabel("app", "istiod").list().getItems();
            if (Istio.istiodPods(client).isEmpty()) said.append(podsOf(deps.get(0)));
            for (Pod p : Istio.istiodPods(client)) said.append("new pod ").append(p.getMetadata().getName()).append(": ").append(pods.start(p)).append("; ");
            return said + istiodLoadsChain();
        }
    }

    /** The cluster a step acted on: the one its --context names, else the first (the session's current context). */
    Cluster cluster(String context) {
        if (context == null || context.isEmpty()) return clusters.get(0);
        for (Cluster c : clusters) if (c.context.equals(context)) return c;
        throw new AssertionError("no lab cluster has context " + context + " (the lab's: " + clusters.stream().map(c -> c.context).toList() + ")");
    }

    /** How many certificate objects istiod's token holds under the CA ID: the plugin's import-ca adds one per call. */
    int rootCopies() {
        return IstiodPods.copies(slotEnv(), Hsm.DEFAULT_CA_ID);
    }

    /** istiod's slot as the test logs in to it: the token's settings with the PIN the slot has now. */
    Map<String, String> slotEnv() {
        Map<String, String> env = new LinkedHashMap<>(token.env());
        env.put("P11_PIN_FILE", slotPin.toString());
        return env;
    }

    /** The slot's PIN was changed (runbook 17) to the one in {@code pinFile}: the test's own logins use it from now on. */
    void slotPinChanged(Path pinFile) {
        slotPin = pinFile;
    }

    /** pkcs11-tool's login to istiod's slot with the PIN in {@code pinFile}: its result (the PIN never on its command line). */
    Cli.Result slotLogin(Path pinFile) throws IOException {
        return Cli.run(List.of("pkcs11-tool", "--module", token.env().get("P11_LIB"), "--token-label", token.label, "--login", "--pin", "env:USER_PIN",
                "--list-objects", "--type", "secrkey"), Map.of("SOFTHSM2_CONF", token.conf.toString(), "USER_PIN", Files.readString(pinFile).strip()), token.dir, null);
    }

    /** The value of key {@code key} at {@code path} in Vault, read with OpenBao's CLI and the lab's token; null when it cannot be read. */
    String vaultField(String path, String key) {
        Cli.Result r = Cli.run(List.of(Path.of(labEnv.get("LAB_BIN"), "bao").toString(), "kv", "get", "-field=" + key, path), labEnv, dir, null);
        return r.exit() == 0 ? r.stdout() : null;
    }

    /**
     * What istiod's vaultclient container does before the plugin logs in: reads key PIN of its VAULT_SECRET_PATH
     * from Vault into the pod's hsm-credential volume (here with the lab's token; the real one logs in with the
     * pod's service account). Nothing there: an empty file, and the plugin's login fails, as it would.
     */
    Path vaultclientFetches(Pod pod, Path podDir) {
        Container vc = IstiodPods.container(pod, "vaultclient");
        String path = vc == null || vc.getEnv() == null ? null : vc.getEnv().stream().filter(e -> e.getName().equals("VAULT_SECRET_PATH"))
                .map(e -> e.getValue()).findFirst().orElse(null);
        String pin = path == null ? null : vaultField(path, "PIN");
        try {
            Path file = Files.createDirectories(podDir.resolve("hsm-credential")).resolve("pin");
            Env.writeSecret(file, (pin == null ? "" : pin).getBytes(java.nio.charset.StandardCharsets.UTF_8));
            return file;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        clusters.forEach(c -> c.client.close());
        if (shutdownHook == null) return; // kept
        Runtime.getRuntime().removeShutdownHook(shutdownHook);
        stop(dir, labDir);
    }

    /**
     * The stand-in istioctl (bash and kubectl). `install` without -y asks, as istioctl does, so a
     * runbook that forgets -y fails here (standard input is empty) instead of waiting in a terminal.
     */
    static final String ISTIOCTL = """
            #!/usr/bin/env bash
            # Stand-in istioctl of the asm-hsm runbook test (pods cannot run in the lab: no kubelet).
            # Records its arguments in ../istioctl-calls.log; `install` creates with kubectl what the
            # asm-multicloud profile creates that later steps look at, then gives up waiting for
            # istiod as the guide expects, after WAIT_FOR_RESOURCES_TIMEOUT.
            set -euo pipefail
            here=$(cd "$(dirname "$0")/.." && pwd)
            printf '%q ' "$@" >> "$here/istioctl-calls.log"; echo >> "$here/istioctl-calls.log"
            case "${1:-}" in
              version) echo "1.9.8-asm.6 (runbook test stand-in)"; exit 0 ;;
              install) shift ;;
              x) [[ ${2:-} == uninstall && ${3:-} == --revision && -n ${4:-} ]] || { echo "Error: the stand-in plays only 'x uninstall --revision REV'" >&2; exit 64; }
                 rev=$4; shift 4; context=(); yes=no
                 while (( $# )); do
                   case "$1" in
                     --context) context=(--context "$2"); shift 2 ;;
                     -y|--skip-confirmation) yes=yes; shift ;;
                     *) shift ;;
                   esac
                 done
                 if [[ $yes != yes ]]; then
                   printf 'All Istio resources of revision %s will be pruned from the cluster\nProceed? (y/N) ' "$rev"
                   read -r answer || answer=
                   [[ $answer == y* ]] || { echo "Cancelled."; exit 1; }
                 fi
                 # istioctl prunes the revision's objects; the cluster's garbage collector deletes its ReplicaSet and pods
                 # (the lab's pods are unscheduled, so the API server removes them at once: no kubelet to wait for);
                 # the stand-in returns once they are gone
                 kubectl "${context[@]}" -n istio-system delete deployment "istiod-$rev" --ignore-not-found >/dev/null
                 kubectl "${context[@]}" -n istio-system wait --for=delete pod -l "istio.io/rev=$rev" --timeout=60s >/dev/null
                 echo "✔ Removed revision $rev"; exit 0 ;;
              *) echo "Error: the stand-in istioctl plays only 'install', 'x uninstall' and 'version'" >&2; exit 64 ;;
            esac
            declare -A set=()
            yes=no
            files=()
            context=()
            while (( $# )); do
              case "$1" in
                --context) context=(--context "$2"); shift 2 ;;
                --set) set[${2%%=*}]=${2#*=}; shift 2 ;;
                -f|--filename) files+=("$2"); shift 2 ;;
                -y|--skip-confirmation) yes=yes; shift ;;
                *) shift ;;
              esac
            done
            for want in profile=asm-multicloud values.hsm.enabled=true values.global.jwtPolicy=first-party-jwt; do
              [[ ${set[${want%%=*}]:-} == "${want#*=}" ]] || { echo "Error: the guide's install sets $want" >&2; exit 1; }
            done
            for key in revision values.hsm.hsmKEKID values.hsm.hsmSlotLabel values.hsm.hsmPluginImage values.hsm.vaultClientImage \\
                       values.hsm.vaultAddr values.hsm.vaultAuthPath values.hsm.vaultAuthRole values.hsm.vaultSecretPath; do
              [[ -n ${set[$key]:-} ]] || { echo "Error: the guide's install sets $key" >&2; exit 1; }
            done
            if [[ $yes != yes ]]; then
              printf 'This will install the Istio %s profile with ["Istio core" "Istiod" "Ingress gateways"] components into the cluster. Proceed? (y/N) ' "${set[profile]}"
              read -r answer || answer=
              [[ $answer == y* ]] || { echo "Cancelled."; exit 1; }
            fi
            rev=${set[revision]}
            # the IstioOperator files' k8s overlays are applied to the rendered objects, as istioctl does
            overlay() { if (( ${#files[@]} )); then @OVERLAY@ "${files[@]}"; else cat; fi; }
            overlay <<YAML | kubectl "${context[@]}" apply --server-side --field-manager=istioctl -f - >/dev/null
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: istiod-service-account, namespace: istio-system}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: istiod-$rev
              namespace: istio-system
              labels: {app: istiod, istio.io/rev: "$rev", istio: pilot}
            spec:
              replicas: 1
              selector: {matchLabels: {app: istiod, istio.io/rev: "$rev"}}
              template:
                metadata: {labels: {app: istiod, istio.io/rev: "$rev", istio: istiod}}
                spec:
                  serviceAccountName: istiod-service-account
                  volumes:
                  - {name: hsm-socket, emptyDir: {medium: Memory}}
                  - {name: hsm-credential, emptyDir: {medium: Memory}}
                  containers:
                  - name: discovery
                    image: "gcr.io/gke-release/asm/pilot:1.9.8-asm.6"
                    env:
                    - {name: KEY_MANAGEMENT_ENDPOINT, value: /var/run/hsm-socket/.sock}
                    volumeMounts:
                    - {name: hsm-socket, mountPath: /var/run/hsm-socket}
                  - name: hsm-plugin
                    image: "${set[values.hsm.hsmPluginImage]}"
                    env:
                    - {name: P11_TOKEN, value: "${set[values.hsm.hsmSlotLabel]}"}
                    - {name: KEK_ID, value: "${set[values.hsm.hsmKEKID]}"}
                    - {name: SOCKET, value: /var/run/hsm-socket/.sock}
                    volumeMounts:
                    - {name: hsm-socket, mountPath: /var/run/hsm-socket}
                    - {name: hsm-credential, mountPath: /var/run/hsm-credential}
                  - name: vaultclient
                    image: "${set[values.hsm.vaultClientImage]}"
                    env:
                    - {name: VAULT_ADDR, value: "${set[values.hsm.vaultAddr]}"}
                    - {name: VAULT_AUTH_PATH, value: "${set[values.hsm.vaultAuthPath]}"}
                    - {name: VAULT_SECRET_PATH, value: "${set[values.hsm.vaultSecretPath]}"}
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: istio-ingressgateway
              namespace: istio-system
              labels: {app: istio-ingressgateway, istio: ingressgateway}
            spec:
              type: LoadBalancer
              selector: {app: istio-ingressgateway, istio: ingressgateway}
              ports:
              - {name: status-port, port: 15021, targetPort: 15021, protocol: TCP}
              - {name: http2, port: 80, targetPort: 8080, protocol: TCP}
              - {name: https, port: 443, targetPort: 8443, protocol: TCP}
              - {name: tls, port: 15443, targetPort: 15443, protocol: TCP}
            YAML
            wait=${WAIT_FOR_RESOURCES_TIMEOUT:-300s}
            echo "✔ Istio core installed"
            echo "✘ Istiod encountered an error: failed to wait for resource: resources not ready after $wait: timed out waiting for the condition"
            echo "Deployment/istio-system/istiod-$rev"
            echo "✘ Ingress gateways encountered an error: failed to wait for resource: resources not ready after $wait: timed out waiting for the condition"
            echo "- Pruning removed resources"
            echo "Error: failed to install manifests: errors occurred during operation"
            exit 1
            """;
}
