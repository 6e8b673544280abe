package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Service;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * install-asm as an operator runs it (own JVM, the guide's environment variables), with a
 * stand-in istioctl made here that records its arguments and environment. The expected
 * command is read from the guide itself. The istiod Service goes to the mock server for
 * the quick cases and to the lab's real API server in one case.
 */
@ExtendWith(LabExtension.class)
class InstallAsmTest {
    static final String TOP = Release.topDir(Release.DEFAULT_VERSION);
    static final Map<String, String> GUIDE_ENV = Map.of(
            "HSM_SLOT_LABEL", "asm-slot-1",
            "VAULT_ADDR", "https://10.200.0.5:8200",
            "HSM_SECRET_PATH", "asm-c1/hsm",
            "KEK_ID", "7651a4ea-eeb7-4c1f-927b-8c871c2127aa",
            "HSM_PLUGIN_IMAGE", "gcr.io/thalescpl-io-k8s-kms-plugin/hsm-plugin:asm-1.7-1",
            "VAULT_CLIENT_IMAGE", "gcr.io/gke-release/asm/vaultclient:latest",
            "WAIT_FOR_RESOURCES_TIMEOUT", "10s");

    /** Records argv (NUL-separated) and the environment it cares about; behaves as $ISTIOCTL_STANDIN says. */
    static final String STAND_IN = """
            #!/bin/sh
            rec="$(dirname "$0")/../../record"
            mkdir -p "$rec"
            : > "$rec/args"
            for a in "$@"; do printf '%s\\0' "$a" >> "$rec/args"; done
            printf '%s' "${WAIT_FOR_RESOURCES_TIMEOUT-<unset>}" > "$rec/wait"
            printf '%s' "${VAULT_TOKEN-<unset>}" > "$rec/vault-token"
            printf '%s' "${KUBECONFIG-<unset>}" > "$rec/kubeconfig"
            echo "✔ Istio core installed"
            case "$ISTIOCTL_STANDIN" in
              timeout)
                echo "✘ Istiod encountered an error: failed to wait for resource: resources not ready after 10s: timed out waiting for the condition"
                echo "Deployment/istio-system/istiod-asm-198-6"
                echo "Error: failed to install manifests: errors occurred during operation" >&2
                exit 1;;
              fail)
                echo "✘ Istiod encountered an error: failed to update resource with server-side apply for obj Deployment/istio-system/istiod-asm-198-6: Unauthorized"
                echo "Error: failed to install manifests: errors occurred during operation" >&2
                exit 1;;
            esac
            echo "✔ Istiod installed"
            echo "✔ Installation complete"
            """;

    @TempDir Path tmp;
    Path work, istioctl, record;
    MeshTestKit.MockKube kube;

    @BeforeEach
    void standIn() throws IOException {
        work = Files.createDirectories(tmp.resolve("work"));
        istioctl = work.resolve(TOP + "/bin/istioctl");
        Files.createDirectories(istioctl.getParent());
        Files.writeString(istioctl, STAND_IN);
        Files.setPosixFilePermissions(istioctl, PosixFilePermissions.fromString("rwxr-xr-x"));
        record = work.resolve("record");
        kube = new MeshTestKit.MockKube(tmp);
    }

    @AfterEach
    void stop() {
        kube.close();
    }

    Map<String, String> env(String... overrides) {
        Map<String, String> e = new HashMap<>(GUIDE_ENV);
        e.put("KUBECONFIG", kube.kubeconfig.toString());
        e.put("VAULT_TOKEN", "s.not-for-istioctl");
        for (int i = 0; i < overrides.length; i += 2) e.put(overrides[i], overrides[i + 1]);
        return e;
    }

    /** The guide's install alone (the root hook has tests of its own below). */
    Cli.Result install(Map<String, String> env, String... args) {
        List<String> a = new ArrayList<>(List.of("--no-root-hook"));
        a.addAll(List.of(args));
        return installWithHook(env, a.toArray(String[]::new));
    }

    Cli.Result installWithHook(Map<String, String> env, String... args) {
        List<String> a = new ArrayList<>(List.of("install-asm"));
        a.addAll(List.of(args));
        return Cli.asm(env, work, a.toArray(String[]::new));
    }

    // ---------------------------------------------------------------- the root hook (on by default)

    @Test
    void byDefaultEveryNewIstiodPodLoadsTheRootThroughAConfigMapAndAPostStartHook() throws Exception {
        MeshTestKit.Issued root = MeshTestKit.root("CN=Root CA,O=Example");
        Path rootPem = MeshTestKit.write(tmp.resolve("root.pem"), root.pem());
        kube.client.namespaces().resource(Kube.namespace(KubeLayout.ISTIO_NAMESPACE)).create();
        Cli.Result r = installWithHook(env(), "--root-cert", rootPem.toString(), "--ca-id", "my-ca");
        assertThat(r.exit()).as(r.toString()).isZero();
        List<String> args = recordedArgs();
        assertThat(args.subList(args.size() - 2, args.size())).containsExactly("-f", "asm-root-hook-asm-198-6.yaml");
        assertThat(args.subList(0, args.size() - 2)).as("the guide's settings, unchanged").isEqualTo(guideCommand(GUIDE_ENV).subList(1, guideCommand(GUIDE_ENV).size()));
        var cm = kube.client.configMaps().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(PluginRootHook.ROOT_CONFIGMAP).get();
        assertThat(cm.getData().get(PluginRootHook.ROOT_KEY)).isEqualTo(root.pem());

        var iop = new tools.jackson.dataformat.yaml.YAMLMapper().readTree(work.resolve("asm-root-hook-asm-198-6.yaml").toFile());
        var overlay = iop.path("spec").path("components").path("pilot").path("k8s").path("overlays").get(0);
        assertThat(overlay.path("kind").asString()).isEqualTo("Deployment");
        assertThat(overlay.path("name").asString()).isEqualTo("istiod-asm-198-6");
        assertThat(overlay.path("patches").get(0).path("path").asString()).isEqualTo("spec.template.spec.volumes.[-1]");
        assertThat(overlay.path("patches").get(0).path("value").path("configMap").path("name").asString()).isEqualTo(PluginRootHook.ROOT_CONFIGMAP);
        assertThat(overlay.path("patches").get(1).path("path").asString()).isEqualTo("spec.template.spec.containers.[name:hsm-plugin].volumeMounts.[-1]");
        var command = overlay.path("patches").get(2).path("value").path("postStart").path("exec").path("command");
        assertThat(command.get(0).asString()).isEqualTo("sh");
        assertThat(command.get(2).asString()).contains("/k8s-kms-plugin import-ca -f /etc/hsm-root/root.pem --socket \"$SOCKET\" --ca-id \"$0\"");
        assertThat(command.get(3).asString()).isEqualTo("my-ca");

        Cli.Result again = installWithHook(env(), "--root-cert", rootPem.toString(), "--ca-id", "my-ca");
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("asm-root-hook-asm-198-6.yaml already holds these settings")
                .doesNotContain("ConfigMap istio-system/istio-hsm-root created").doesNotContain("updated ConfigMap");
    }

    @Test
    void theHookNeedsARootAndTheGuidesInstallAloneIsOneOptionAway() {
        Cli.Result r = installWithHook(env("P11_LIB", "/nonexistent/libsofthsm2.so", "P11_TOKEN", "none", "P11_PIN_FILE", tmp.resolve("pin").toString()),
                "--root-cert", tmp.resolve("absent.pem").toString());
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(record.resolve("args")).as("istioctl never ran").doesNotExist();
        Cli.Result plain = install(env());
        assertThat(plain.exit()).as(plain.toString()).isZero();
        assertThat(work.resolve("asm-root-hook-asm-198-6.yaml")).doesNotExist();
    }

    List<String> recordedArgs() throws IOException {
        String all = Files.readString(record.resolve("args"), StandardCharsets.UTF_8);
        List<String> args = new ArrayList<>(List.of(all.split("\0", -1)));
        args.remove(args.size() - 1);   // after the last NUL
        return args;
    }

    /**
     * The guide's `istioctl install ...` (section "Instale Anthos Service Mesh") as a shell
     * would pass it: continuations joined, ${VAR} expanded from env, quotes removed.
     */
    static List<String> guideCommand(Map<String, String> env) throws IOException {
        String text = ReleaseTest.guideText();
        int start = text.indexOf("istioctl install --set profile=asm-multicloud");
        int end = text.indexOf("values.global.jwtPolicy=\"first-party-jwt\"", start);
        assertThat(start).as("the guide's istioctl install command").isPositive();
        assertThat(end).isGreaterThan(start);
        String cmd = text.substring(start, end + "values.global.jwtPolicy=\"first-party-jwt\"".length()).replace("\\", " ");
        Matcher m = Pattern.compile("\\$\\{(\\w+)}").matcher(cmd);
        StringBuilder expanded = new StringBuilder();
        while (m.find()) m.appendReplacement(expanded, Matcher.quoteReplacement(env.get(m.group(1))));
        m.appendTail(expanded);
        List<String> words = new ArrayList<>();
        for (String w : expanded.toString().trim().split("\\s+")) words.add(w.replace("\"", ""));
        return words;
    }

    @Test
    void runsTheGuidesIstioctlCommandExactlyThenAppliesTheIstiodService() throws Exception {
        Cli.Result r = install(env());

        assertThat(r.exit()).as(r.toString()).isZero();
        List<String> guide = guideCommand(GUIDE_ENV);
        assertThat(guide.get(0)).isEqualTo("istioctl");
        assertThat(recordedArgs()).isEqualTo(guide.subList(1, guide.size()));
        assertThat(recordedArgs()).containsExactly("install",
                "--set", "profile=asm-multicloud",
                "--set", "revision=asm-198-6",
                "--set", "values.hsm.enabled=true",
                "--set", "values.hsm.hsmKEKID=7651a4ea-eeb7-4c1f-927b-8c871c2127aa",
                "--set", "values.hsm.hsmPluginImage=gcr.io/thalescpl-io-k8s-kms-plugin/hsm-plugin:asm-1.7-1",
                "--set", "values.hsm.hsmSlotLabel=asm-slot-1",
                "--set", "values.hsm.vaultClientImage=gcr.io/gke-release/asm/vaultclient:latest",
                "--set", "values.hsm.vaultAddr=https://10.200.0.5:8200",
                "--set", "values.hsm.vaultAuthPath=auth/asm-c1/hsm/login",
                "--set", "values.hsm.vaultAuthRole=istiod",
                "--set", "values.hsm.vaultAuthJwtPath=/var/run/secrets/kubernetes.io/serviceaccount/token",
                "--set", "values.hsm.vaultSecretPath=asm-c1/hsm",
                "--set", "values.global.jwtPolicy=first-party-jwt");
        assertThat(record.resolve("wait")).as("istioctl reads it from its environment").hasContent("10s");
        assertThat(record.resolve("vault-token")).as("istioctl never gets the Vault token").hasContent("<unset>");
        assertThat(record.resolve("kubeconfig")).hasContent(kube.kubeconfig.toString());
        assertThat(r.stdout()).contains("Running: WAIT_FOR_RESOURCES_TIMEOUT=10s " + istioctl + " install --set profile=asm-multicloud")
                .contains("✔ Istio core installed").contains("✔ Installation complete")   // istioctl's output, streamed
                .contains("ran istioctl install (revision asm-198-6)")
                .contains("created Service istio-system/istiod")
                .contains("Next: istiod-status --wait");
        assertThat(r.all()).doesNotContain("s.not-for-istioctl");
        Service svc = kube.client.services().inNamespace("istio-system").withName("istiod").get();
        assertThat(svc.getMetadata().getLabels()).containsEntry("istio.io/rev", "asm-198-6").containsEntry("app", "istiod");
        assertThat(svc.getSpec().getSelector()).containsExactlyInAnyOrderEntriesOf(Map.of("app", "istiod", "istio.io/rev", "asm-198-6"));

        Cli.Result again = install(env());
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("Service istio-system/istiod already up to date");
    }

    @Test
    void optionsWinOverTheEnvironmentAndExtraFilesPassThrough() throws Exception {
        Path extra = Files.writeString(work.resolve("extra.yaml"), "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\n");
        Cli.Result r = install(env(), "--kek-id", "0b5c9c3e-1111-4222-8333-944455556666", "--hsm-slot-label", "slot two",
                "-f", "extra.yaml", "--istioctl", istioctl.toString(), "-y");
        assertThat(r.exit()).as(r.toString()).isZero();
        List<String> args = recordedArgs();
        assertThat(args).contains("values.hsm.hsmKEKID=0b5c9c3e-1111-4222-8333-944455556666", "values.hsm.hsmSlotLabel=slot two")
                .doesNotContain("values.hsm.hsmKEKID=" + GUIDE_ENV.get("KEK_ID"));
        assertThat(args.subList(args.size() - 3, args.size())).containsExactly("-f", "extra.yaml", "-y");
        assertThat(extra).exists();
        assertThat(r.stdout()).contains("'values.hsm.hsmSlotLabel=slot two'");   // shown as a shell would need it
    }

    @Test
    void aMissingVariableIsNamedAndNothingRuns() throws Exception {
        for (String name : GUIDE_ENV.keySet()) {
            Cli.Result r = install(env(name, null));
            assertThat(r.exit()).as(name + "\n" + r).isEqualTo(2);
            assertThat(r.stderr()).as(name).startsWith("error: missing " + name + " (");
        }
        Map<String, String> none = env();
        GUIDE_ENV.keySet().forEach(k -> none.put(k, null));
        Cli.Result all = install(none);
        assertThat(all.exit()).isEqualTo(2);
        assertThat(all.stderr()).contains("error: missing HSM_SLOT_LABEL, VAULT_ADDR, HSM_SECRET_PATH, KEK_ID, HSM_PLUGIN_IMAGE, "
                        + "VAULT_CLIENT_IMAGE, WAIT_FOR_RESOURCES_TIMEOUT")
                .contains("--hsm-slot-label, --vault-addr, --hsm-secret-path, --kek-id")
                .contains("-> the HSM slot label: export HSM_SLOT_LABEL=");
        Cli.Result image = install(env("HSM_PLUGIN_IMAGE", null));
        assertThat(image.stderr()).contains("-> the guide: export HSM_PLUGIN_IMAGE=gcr.io/thalescpl-io-k8s-kms-plugin/hsm-plugin:asm-1.7-1");
        assertThat(record).as("istioctl never ran").doesNotExist();
        assertThat(kube.client.services().inNamespace("istio-system").withName("istiod").get()).isNull();
    }

    @Test
    void malformedValuesAreRefused() {
        Map<String[], String> cases = Map.of(
                new String[] {"HSM_SECRET_PATH", "/asm-c1/hsm"}, "is not a Vault path like asm-c1/hsm",
                new String[] {"WAIT_FOR_RESOURCES_TIMEOUT", "10"}, "is not a duration istioctl reads",
                new String[] {"VAULT_ADDR", "10.0.0.5:8200"}, "is not http(s)://HOST:PORT",
                new String[] {"KEK_ID", "two words"}, "KEK ID 'two words' is not 1-64 letters, digits and . _ : -",
                new String[] {"HSM_PLUGIN_IMAGE", "a b"}, "is not an image reference");
        cases.forEach((kv, message) -> {
            Cli.Result r = install(env(kv[0], kv[1]));
            assertThat(r.exit()).as(kv[0] + "\n" + r).isEqualTo(2);
            assertThat(r.stderr()).contains(message);
        });
        Cli.Result f = install(env(), "-f", "absent.yaml");
        assertThat(f.exit()).isEqualTo(2);
        assertThat(f.stderr()).contains("-f absent.yaml does not exist");
        assertThat(record).doesNotExist();
    }

    @Test
    void printShowsTheCommandWithoutRunningIt() throws Exception {
        Map<String, String> e = env();
        e.remove("KUBECONFIG");   // no cluster needed to print
        Cli.Result r = install(e, "--print");
        assertThat(r.exit()).as(r.toString()).isZero();
        List<String> guide = guideCommand(GUIDE_ENV);
        assertThat(r.stdout().strip()).isEqualTo("WAIT_FOR_RESOURCES_TIMEOUT=10s " + istioctl + " "
                + String.join(" ", guide.subList(1, guide.size())));
        assertThat(record).doesNotExist();
    }

    @Test
    void overlayWritesTheSameSettingsAsAnIstioOperator() throws Exception {
        Map<String, String> e = env("WAIT_FOR_RESOURCES_TIMEOUT", null);   // not part of the file
        Cli.Result dry = install(e, "--overlay", "asm-hsm.yaml", "--dry-run");
        assertThat(dry.stdout()).contains("would write asm-hsm.yaml");
        assertThat(work.resolve("asm-hsm.yaml")).doesNotExist();
        Cli.Result r = install(e, "--overlay", "asm-hsm.yaml");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("wrote asm-hsm.yaml (IstioOperator, revision asm-198-6)");
        assertThat(record).as("istioctl not run").doesNotExist();

        JsonNode iop = YAMLMapper.builder().build().readTree(Files.readString(work.resolve("asm-hsm.yaml")));
        assertThat(iop.path("apiVersion").asString()).isEqualTo("install.istio.io/v1alpha1");
        assertThat(iop.path("kind").asString()).isEqualTo("IstioOperator");
        JsonNode spec = iop.path("spec");
        assertThat(spec.path("profile").asString()).isEqualTo("asm-multicloud");
        assertThat(spec.path("revision").asString()).isEqualTo("asm-198-6");
        JsonNode hsm = spec.path("values").path("hsm");
        assertThat(hsm.path("enabled").isBoolean()).isTrue();
        assertThat(hsm.path("enabled").asBoolean()).isTrue();
        // every values.hsm.* / values.global.* setting of the guide's command, at its path, same value
        List<String> guide = guideCommand(GUIDE_ENV);
        int sets = 0;
        for (int i = 0; i < guide.size(); i++) {
            if (!guide.get(i).equals("--set")) continue;
            String[] kv = guide.get(i + 1).split("=", 2);
            JsonNode at = spec;
            for (String k : kv[0].split("\\.")) at = at.path(k);
            assertThat(at.asString()).as(kv[0]).isEqualTo(kv[1]);
            sets++;
        }
        assertThat(sets).isEqualTo(13);
        assertThat(hsm.size()).isEqualTo(10);

        Cli.Result again = install(e, "--overlay", "asm-hsm.yaml");
        assertThat(again.exit()).isZero();
        assertThat(again.stdout()).contains("asm-hsm.yaml already holds these settings");
        Cli.Result changed = install(env("KEK_ID", "0b5c9c3e-1111-4222-8333-944455556666"), "--overlay", "asm-hsm.yaml");
        assertThat(changed.stdout()).contains("updated asm-hsm.yaml");
        assertThat(Files.readString(work.resolve("asm-hsm.yaml"))).contains("0b5c9c3e-1111-4222-8333-944455556666");
    }

    @Test
    void istioctlGivingUpItsShortWaitIsExpected() throws Exception {
        Cli.Result r = install(env("ISTIOCTL_STANDIN", "timeout"));
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("✘ Istiod encountered an error: failed to wait for resource").contains("created Service istio-system/istiod");
        assertThat(r.stderr()).contains("warning: istioctl stopped waiting after WAIT_FOR_RESOURCES_TIMEOUT=10s: expected");
    }

    @Test
    void istioctlFailingOtherwiseStopsBeforeTheService() throws Exception {
        Cli.Result r = install(env("ISTIOCTL_STANDIN", "fail"));
        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
        assertThat(r.stderr()).contains("error: istioctl install failed (exit 1)").contains("Error: failed to install manifests");
        assertThat(kube.client.services().inNamespace("istio-system").withName("istiod").get()).isNull();
    }

    @Test
    void jsonKeepsStdoutForTheResultAndIstioctlOnStderr() throws Exception {
        Cli.Result r = install(env(), "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        JsonNode json = tools.jackson.databind.json.JsonMapper.builder().build().readTree(r.stdout());
        assertThat(json.path("ok").asBoolean()).isTrue();
        assertThat(json.path("changed").asBoolean()).isTrue();
        assertThat(json.path("command").get(1).asString()).isEqualTo("install");
        assertThat(json.path("environment").path("WAIT_FOR_RESOURCES_TIMEOUT").asString()).isEqualTo("10s");
        assertThat(r.stderr()).contains("✔ Installation complete");
        assertThat(recordedArgs()).hasSize(27);

        Cli.Result print = install(env(), "--print", "--json");
        JsonNode p = tools.jackson.databind.json.JsonMapper.builder().build().readTree(print.stdout());
        assertThat(p.path("command").size()).isEqualTo(28);
        assertThat(p.path("command").get(0).asString()).isEqualTo(istioctl.toString());
    }

    /** The guide gives istiod's Vault client no namespace: a namespace set for the Vault steps is pointed out, not dropped silently. */
    @Test
    void aVaultNamespaceIsPointedOut() {
        for (Cli.Result r : List.of(install(env("VAULT_NAMESPACE", "ns1"), "--print"), install(env(), "--print", "--vault-namespace", "ns1/"))) {
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stderr()).contains("warning: Vault namespace ns1 is set, but the guide's install settings give istiod's Vault client "
                    + "only VAULT_ADDR and HSM_SECRET_PATH, no namespace");
        }
        Cli.Result none = install(env(), "--print");
        assertThat(none.exit()).as(none.toString()).isZero();
        assertThat(none.stderr()).doesNotContain("namespace");
    }

    @Test
    void dryRunChangesNothing() throws Exception {
        Cli.Result r = install(env(), "--dry-run");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("would run WAIT_FOR_RESOURCES_TIMEOUT=10s " + istioctl + " install")
                .contains("would create Service istio-system/istiod");
        assertThat(record).doesNotExist();
        assertThat(kube.client.services().inNamespace("istio-system").withName("istiod").get()).isNull();
    }

    @Test
    void withoutAReleaseItSaysToFetchOne() throws Exception {
        Cli.Result r = Cli.asm(env(), tmp, "install-asm");
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stderr()).contains("no istioctl found").contains("run fetch-release first");
    }

    @Test
    void appliesTheIstiodServiceOnARealApiServer(Lab lab) throws Exception {
        // istioctl creates istio-system; the stand-in does not
        if (lab.admin().namespaces().withName("istio-system").get() == null)
            lab.admin().namespaces().resource(new NamespaceBuilder().withNewMetadata().withName("istio-system").endMetadata().build()).create();
        Cli.Result r = install(env("KUBECONFIG", lab.kubeconfig().toString()));
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).containsAnyOf("created Service istio-system/istiod", "Service istio-system/istiod already up to date");
        Service svc = lab.admin().services().inNamespace("istio-system").withName("istiod").get();
        assertThat(svc.getMetadata().getLabels()).containsEntry("istio.io/rev", "asm-198-6");
        assertThat(svc.getSpec().getPorts()).extracting(p -> p.getName() + ":" + p.getPort())
                .containsExactly("grpc-xds:15010", "https-dns:15012", "https-webhook:443", "http-monitoring:15014");
        assertThat(svc.getSpec().getClusterIP()).isNotBlank();   // a real API server allocated it

        Cli.Result again = install(env("KUBECONFIG", lab.kubeconfig().toString()));
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("Service istio-system/istiod already up to date");
    }
}
