package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `asm run A ... + B ...`: several steps in one process, stopping at the first failure. */
class RunChainTest {
    @TempDir Path tmp;

    @Test
    void runsTheStepsInOrderInOneProcess() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result r = Cli.asm(t.env(), "run", "gen-kek", "--kek-id", "first", "+", "gen-kek", "--kek-id", "second",
                "+", "hsm-info", "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("first").contains("\"id\" : \"second\"").contains("\"id\" : \"first\"");
        assertThat(t.objectCount()).isEqualTo(2);
    }

    @Test
    void stopsAtTheFirstFailureWithItsExitCode() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result r = Cli.asm(t.env(), "run", "gen-kek", "--kek-id", "ok", "+", "gen-kek", "--kek-id", "bad id",
                "+", "gen-kek", "--kek-id", "never");
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(t.objects()).contains(GenKekTest.hex("ok")).doesNotContain(GenKekTest.hex("never"));
    }

    @Test
    void refusesAChainThatDoesNotStartWithAStep() {
        Cli.Result r = Cli.asm(java.util.Map.of(), "run", "--kek-id", "x");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("separated by '+'");
        assertThat(Cli.asm(java.util.Map.of(), "run", "gen-kek", "+").exit()).isEqualTo(2);
    }

    /** A step that makes a JDK HttpClient and leaves it, as the Vault driver does. */
    @picocli.CommandLine.Command(name = "leaves-a-client")
    static class LeavesAClient extends Step {
        @Override
        protected void run() {
            java.net.http.HttpClient.newHttpClient();
        }
    }

    /**
     * The JDK HttpClients a step leaves would hold up the JVM's exit (their selector threads wait in
     * native code): a step ends them, but for the Kubernetes clients shared past it (asm run, asm session).
     */
    @Test
    void aStepEndsTheHttpClientThreadsItLeavesButForSharedKubernetesClients() throws Exception {
        int before = Startup.selectorThreads().size();
        assertThat(new picocli.CommandLine(new LeavesAClient()).execute()).isZero();
        assertThat(Startup.selectorThreads()).hasSize(before);
        Opts.Kube o = new Opts.Kube();
        o.kubeconfig = tokenKubeconfig().toString();
        try (Startup.Clients clients = new Startup.Clients(null)) {
            Kube shared = clients.kube(o);
            assertThat(new picocli.CommandLine(new LeavesAClient().with(clients)).execute()).isZero();
            assertThat(Startup.selectorThreads()).as("the shared client's thread only").hasSize(before + 1);
            assertThat(clients.kube(o)).isSameAs(shared);
        }
        assertThat(Startup.selectorThreads()).hasSize(before);
    }

    /** A step that only takes its Kubernetes client (built, never called), as a cluster step does. */
    @picocli.CommandLine.Command(name = "kube-user")
    static class KubeUser extends Step {
        @picocli.CommandLine.Mixin Opts.Kube kube;
        Kube got;

        @Override
        protected void run() {
            got = kube();
        }

        /** Runs the step with these options; returns the client it had. */
        Kube connected(Opts.Kube o) {
            assertThat(new picocli.CommandLine(this).execute("--kubeconfig", o.kubeconfig)).isZero();
            return got;
        }

        @Override
        public KubeUser with(Startup.Clients shared) {
            super.with(shared);
            return this;
        }
    }

    /** A kubeconfig for a server that is never called (the clients below are only built). */
    private Path tokenKubeconfig() throws Exception {
        return java.nio.file.Files.writeString(tmp.resolve("kubeconfig"), String.join("\n", "apiVersion: v1", "kind: Config",
                "current-context: c", "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]",
                "contexts: [{name: c, context: {cluster: c, user: u}}]", "users: [{name: u, user: {token: t}}]", ""));
    }

    /** Steps of one run share a Kubernetes client; a closed client's selector thread ends. */
    @Test
    void stepsOfOneRunShareTheirKubernetesClient() throws Exception {
        Path kubeconfig = tokenKubeconfig();
        Opts.Kube o = new Opts.Kube();
        o.kubeconfig = kubeconfig.toString();
        int selectorsBefore = Startup.selectorThreads().size();
        Kube a = Kube.connect(o);
        assertThat(Startup.selectorThreads()).hasSize(selectorsBefore + 1);
        Kube b = Kube.connect(o);
        assertThat(b).isNotSameAs(a);
        a.close();
        b.close();
        assertThat(a.client.getHttpClient().isClosed()).isTrue();
        assertThat(Startup.selectorThreads()).as("selector threads end with close()").hasSize(selectorsBefore);

        Kube first;
        try (Startup.Clients clients = new Startup.Clients(null)) {
            first = new KubeUser().with(clients).connected(o);   // a step ends: the client stays open for the next one
            assertThat(first.client.getHttpClient().isClosed()).isFalse();
            assertThat(clients.kube(o)).isSameAs(first);
            assertThat(new KubeUser().with(clients).connected(o)).isSameAs(first);
            assertThat(Startup.selectorThreads()).hasSize(selectorsBefore + 1);
        }
        assertThat(first.client.getHttpClient().isClosed()).isTrue();
        assertThat(Startup.selectorThreads()).hasSize(selectorsBefore);
        Kube after = Kube.connect(o);
        assertThat(after).isNotSameAs(first);
        after.close();
    }

    /**
     * In asm session, clients outlive a step: one is handed out again only while its kubeconfig
     * is unchanged and it was used recently; otherwise it is closed and a new one built.
     */
    @Test
    void aSessionKeepsAClientOnlyWhileItsKubeconfigIsUnchangedAndItIsInUse() throws Exception {
        Path kubeconfig = tokenKubeconfig();
        Opts.Kube o = new Opts.Kube();
        o.kubeconfig = kubeconfig.toString();
        try (Startup.Clients clients = new Startup.Clients(java.time.Duration.ofSeconds(2))) {
            Kube a = new KubeUser().with(clients).connected(o);
            assertThat(clients.kube(o)).isSameAs(a);
            assertThat(a.client.getHttpClient().isClosed()).isFalse();

            java.nio.file.Files.setLastModifiedTime(kubeconfig,
                    java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() + 60_000));
            Kube b = clients.kube(o);
            assertThat(b).as("the kubeconfig changed").isNotSameAs(a);
            assertThat(a.client.getHttpClient().isClosed()).isTrue();

            Thread.sleep(2_500);
            Kube c = clients.kube(o);
            assertThat(c).as("unused for longer than the session keeps clients").isNotSameAs(b);
            assertThat(b.client.getHttpClient().isClosed()).isTrue();
        }
    }

    /**
     * tests/install runs `asm warm-up` so that JBang's class-data archive is recorded from it
     * (README, "Where a step's time goes"); it must work with no cluster, Vault or token around,
     * and leave nothing behind.
     */
    @Test
    void warmUpRunsOnItsOwnStandInAndLeavesNothing() throws Exception {
        Path tmpDir = Path.of(System.getProperty("java.io.tmpdir"));
        java.util.function.Supplier<Long> leftovers = () -> {
            try (var s = java.nio.file.Files.list(tmpDir)) {
                return s.filter(p -> p.getFileName().toString().startsWith("asm-warm-up")).count();
            } catch (java.io.IOException e) {
                throw new AssertionError(e);
            }
        };
        long before = leftovers.get();
        Cli.Result r = Cli.asm(java.util.Map.of(), tmp, "warm-up");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).isEmpty();
        assertThat(r.stderr()).isEmpty();
        assertThat(leftovers.get()).isEqualTo(before);
        assertThat(tmp.toFile().list()).as("nothing written in the working folder").isEmpty();
    }

    @org.junit.jupiter.api.Nested
    @org.junit.jupiter.api.extension.ExtendWith(LabExtension.class)
    class OnTheLab {
        @Test
        void aClusterChainRunsOnTheLab(Lab lab) {
            String ns = lab.freshNamespace();
            Cli.Result r = Cli.asm(KubeVaultStepsSupport.env(lab), tmp, "run", "control-plane-prep", "-n", ns,
                    "--vault-cacert", lab.vaultCaCert().toString(), "+", "istiod-service", "-n", ns,
                    "+", "istiod-service", "-n", ns);
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).contains("created Service " + ns + "/istiod")
                    .contains("Service " + ns + "/istiod already up to date");
            assertThat(KubeVaultStepsSupport.kubectlJson(lab, "-n", ns, "get", "configmap", "vault-tls-cert")
                    .at("/data/cert").asString()).contains("BEGIN CERTIFICATE");
        }
    }
}
