package asmhsm;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.ContainerStatusBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The kubelet's part and the hsm-plugin container of istiod's pods, for tests (the lab has no
 * kubelet). As the real plugin (reference/hsm-formats.md, "What the real components do"): each
 * pod's plugin is a fresh process that knows a root only after an {@code import-ca} to its own
 * socket; that import adds one more certificate object to the token; the discovery container
 * restarts alone and keeps its pod's plugin. The container's postStart hook, when its spec has
 * one, is run for real by {@code sh}, with the image's {@code /k8s-kms-plugin} played by a script
 * and the ConfigMap volumes written where the container would see them.
 */
final class IstiodPods {
    static final String PLUGIN = "hsm-plugin", DISCOVERY = "discovery", IMAGE_BINARY = "/k8s-kms-plugin";
    static final String NOT_LOADED = "no loaded CA cert for verification";

    private final KubernetesClient k;
    private final Path dir;
    private final Map<String, String> hsmEnv;
    private final Path plugin;
    /** The PIN file a pod's plugin logs in with (what its vaultclient fetched); by default the token's own. */
    private final java.util.function.BiFunction<Pod, Path, Path> pinFetched;
    /** Each started pod's plugin socket (a file there while it serves), by pod UID. */
    private final Map<String, Path> sockets = new HashMap<>();

    IstiodPods(KubernetesClient k, Path dir, Map<String, String> hsmEnv) throws IOException {
        this(k, dir, hsmEnv, (pod, podDir) -> Path.of(hsmEnv.get("P11_PIN_FILE")));
    }

    /**
     * {@code pinFetched}: what the pod's vaultclient container does before its plugin logs in, given the pod
     * and its directory: returns the file holding the PIN it fetched.
     */
    IstiodPods(KubernetesClient k, Path dir, Map<String, String> hsmEnv, java.util.function.BiFunction<Pod, Path, Path> pinFetched) throws IOException {
        this.pinFetched = pinFetched;
        this.k = k;
        this.dir = Files.createDirectories(dir);
        this.hsmEnv = hsmEnv;
        this.plugin = dir.resolve("k8s-kms-plugin");
        Files.writeString(plugin, PLUGIN_SCRIPT);
        Files.setPosixFilePermissions(plugin, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    /**
     * The pod's containers start: its plugin serves on a fresh socket (no root loaded), then the
     * kubelet runs hsm-plugin's postStart hook, if it has one. Returns what happened, in words.
     */
    String start(Pod pod) throws Exception {
        String uid = pod.getMetadata().getUid();
        Path podDir = Files.createDirectories(dir.resolve(pod.getMetadata().getName()));
        Path socket = podDir.resolve("hsm.sock");
        Files.deleteIfExists(socket.resolveSibling("hsm.sock.root"));
        Files.writeString(socket, "serving\n");
        sockets.put(uid, socket);
        Container c = container(pod, PLUGIN);
        if (c == null) throw new AssertionError("pod " + pod.getMetadata().getName() + " has no " + PLUGIN + " container");
        if (c.getLifecycle() == null || c.getLifecycle().getPostStart() == null || c.getLifecycle().getPostStart().getExec() == null)
            return "its plugin serves, fresh (no postStart hook: no root loaded)";
        List<String> command = new ArrayList<>();
        for (String arg : c.getLifecycle().getPostStart().getExec().getCommand()) command.add(mounted(pod, c, podDir, arg));
        Map<String, String> env = new LinkedHashMap<>(pluginEnv(pod));
        env.put("SOCKET", socket.toString());
        ProcessBuilder pb = new ProcessBuilder(command).directory(podDir.toFile()).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the postStart hook of " + pod.getMetadata().getName() + " did not end in 60 s");
        }
        String out = new String(p.getInputStream().readAllBytes()).strip();
        return "its plugin serves, fresh; postStart hook exit " + p.exitValue() + (out.isEmpty() ? "" : ": " + out.replace('\n', ' '))
                + (rootLoaded(pod) ? "; root loaded" : "; root NOT loaded");
    }

    /**
     * One argument of the hook as the container sees it: the image's plugin binary is the stand-in
     * script, and a ConfigMap volume's mount path is a directory holding the ConfigMap's keys.
     */
    private String mounted(Pod pod, Container c, Path podDir, String arg) throws IOException {
        String out = arg.replace(IMAGE_BINARY, plugin.toString());
        for (VolumeMount m : c.getVolumeMounts() == null ? List.<VolumeMount>of() : c.getVolumeMounts()) {
            if (!out.contains(m.getMountPath())) continue;
            Volume v = pod.getSpec().getVolumes().stream().filter(x -> x.getName().equals(m.getName())).findFirst()
                    .orElseThrow(() -> new AssertionError("volumeMount " + m.getName() + " names no volume of the pod"));
            if (v.getConfigMap() == null) continue;
            ConfigMap cm = k.configMaps().inNamespace(pod.getMetadata().getNamespace()).withName(v.getConfigMap().getName()).get();
            if (cm == null) throw new AssertionError("ConfigMap " + v.getConfigMap().getName() + " is missing: the kubelet would not start the pod");
            Path mount = Files.createDirectories(podDir.resolve("volumes").resolve(m.getName()));
            for (var e : cm.getData().entrySet()) Files.writeString(mount.resolve(e.getKey()), e.getValue());
            out = out.replace(m.getMountPath(), mount.toString());
        }
        return out;
    }

    /** The HSM settings the pod's plugin runs with: the token's, and the PIN its vaultclient fetched. */
    Map<String, String> pluginEnv(Pod pod) throws IOException {
        Map<String, String> env = new LinkedHashMap<>(hsmEnv);
        env.put("P11_PIN_FILE", pinFetched.apply(pod, Files.createDirectories(dir.resolve(pod.getMetadata().getName()))).toString());
        return env;
    }

    boolean rootLoaded(Pod pod) {
        Path socket = sockets.get(pod.getMetadata().getUid());
        return socket != null && Files.exists(socket.resolveSibling("hsm.sock.root"));
    }

    /** Whether the pod's plugin has been started by {@link #start}. */
    boolean started(Pod pod) {
        return sockets.containsKey(pod.getMetadata().getUid());
    }

    /** Container states as the kubelet reports them: each container running, ready or not. */
    void running(Pod pod, Map<String, Boolean> ready) {
        setStatus(pod, ready, Map.of());
    }

    /** istiod aborted (its plugin refused the chain): discovery crash-loops, the other containers run on. */
    void crashLoop(Pod pod) {
        setStatus(pod, Map.of(DISCOVERY, false), Map.of(DISCOVERY, 1));
    }

    /** The discovery container restarted (its process exited; the kubelet started it again): one more restart, same plugin. */
    void restarted(Pod pod, String container, Map<String, Boolean> ready) {
        setStatus(pod, ready, Map.of(container, 1));
    }

    private void setStatus(Pod pod, Map<String, Boolean> ready, Map<String, Integer> moreRestarts) {
        String now = Instant.now().toString();
        Pod current = k.pods().inNamespace(pod.getMetadata().getNamespace()).withName(pod.getMetadata().getName()).get();
        Map<String, Integer> restarts = new HashMap<>();
        if (current.getStatus() != null && current.getStatus().getContainerStatuses() != null)
            for (ContainerStatus s : current.getStatus().getContainerStatuses()) restarts.put(s.getName(), s.getRestartCount());
        boolean crash = moreRestarts.containsKey(DISCOVERY) && !ready.getOrDefault(DISCOVERY, true);
        List<ContainerStatus> statuses = new ArrayList<>();
        for (Container c : current.getSpec().getContainers()) {
            int count = restarts.getOrDefault(c.getName(), 0) + moreRestarts.getOrDefault(c.getName(), 0);
            var b = new ContainerStatusBuilder().withName(c.getName()).withImage(c.getImage()).withImageID("")
                    .withReady(ready.getOrDefault(c.getName(), true)).withStarted(true).withRestartCount(count);
            if (crash && c.getName().equals(DISCOVERY))
                b.withNewState().withNewWaiting().withReason("CrashLoopBackOff").withMessage("back-off 10s restarting failed container=discovery")
                        .endWaiting().endState().withNewLastState().withNewTerminated().withExitCode(255).withReason("Error").endTerminated().endLastState();
            else b.withNewState().withNewRunning().withStartedAt(now).endRunning().endState();
            statuses.add(b.build());
        }
        boolean all = statuses.stream().allMatch(ContainerStatus::getReady);
        k.pods().inNamespace(pod.getMetadata().getNamespace()).withName(pod.getMetadata().getName()).editStatus(q -> new PodBuilder(q)
                .editOrNewStatus().withPhase("Running").withConditions().addNewCondition().withType("Ready").withStatus(all ? "True" : "False")
                .endCondition().withContainerStatuses(statuses).endStatus().build());
    }

    /** How many certificate objects a token holds under a CA ID, as pkcs11-tool lists them. */
    static int copies(Map<String, String> hsmEnv, String caId) {
        try {
            String pin = Files.readString(Path.of(hsmEnv.get("P11_PIN_FILE"))).strip();
            Cli.Result r = Cli.run(List.of("pkcs11-tool", "--module", hsmEnv.get("P11_LIB"), "--token-label", hsmEnv.get("P11_TOKEN"),
                    "--login", "--pin", "env:USER_PIN", "--list-objects", "--type", "cert"),
                    Map.of("SOFTHSM2_CONF", hsmEnv.get("SOFTHSM2_CONF"), "USER_PIN", pin), null, null);
            if (r.exit() != 0) throw new AssertionError("pkcs11-tool --list-objects failed:\n" + r);
            String id = java.util.HexFormat.of().formatHex(caId.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            return (int) r.stdout().lines().filter(l -> l.strip().matches("ID:\\s+" + id)).count();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Any pod as a kubelet runs it: Running, every container started and ready. */
    static void runningPod(KubernetesClient k, Pod pod) {
        String now = Instant.now().toString();
        List<ContainerStatus> statuses = new ArrayList<>();
        for (Container c : pod.getSpec().getContainers())
            statuses.add(new ContainerStatusBuilder().withName(c.getName()).withImage(c.getImage()).withImageID("").withReady(true)
                    .withStarted(true).withRestartCount(0).withNewState().withNewRunning().withStartedAt(now).endRunning().endState().build());
        k.pods().inNamespace(pod.getMetadata().getNamespace()).withName(pod.getMetadata().getName()).editStatus(q -> new PodBuilder(q)
                .editOrNewStatus().withPhase("Running").withConditions().addNewCondition().withType("Ready").withStatus("True")
                .withLastTransitionTime(now).endCondition().withContainerStatuses(statuses).endStatus().build());
    }

    static Container container(Pod pod, String name) {
        return pod.getSpec().getContainers().stream().filter(c -> c.getName().equals(name)).findFirst().orElse(null);
    }

    /**
     * The plugin's client commands as the image has them, for the hook: `import-ca` and
     * `verify-cert` against the serving plugin at --socket (a file there while it serves).
     * import-ca loads the root into that plugin ($SOCKET.root) and, as the real one, adds one
     * more certificate object to the token, even when an identical one is there.
     */
    static final String PLUGIN_SCRIPT = """
            #!/usr/bin/env bash
            # Stand-in of the Thales k8s-kms-plugin's client commands in istiod's hsm-plugin container (tests).
            set -uo pipefail
            cmd=${1:-}; shift || true
            file= socket=${TMPDIR:-/tmp}/run/hsm-plugin-server.sock ca_id=1c3d30d5-dfa8-4167-a9f9-2c768464181b
            while (( $# )); do
              case $1 in
                -f) file=$2; shift 2 ;;
                --socket) socket=$2; shift 2 ;;
                --ca-id) ca_id=$2; shift 2 ;;
                *) echo "Error: unknown flag: $1" >&2; exit 1 ;;
              esac
            done
            [[ -e $socket ]] || { echo "Error: rpc error: code = Unavailable desc = connection error: dial unix $socket: connect: no such file or directory" >&2; exit 1; }
            case $cmd in
              import-ca)
                der=$(mktemp); trap 'rm -f "$der"' EXIT
                openssl x509 -in "$file" -outform der -out "$der" 2>/dev/null || { echo "Error: failed to parse certificate" >&2; exit 1; }
                label=$(openssl x509 -in "$file" -noout -subject -nameopt RFC2253 | sed 's/^subject= *//')
                id=$(printf %s "$ca_id" | od -An -tx1 | tr -d ' \\n')
                PIN=$(cat "$P11_PIN_FILE") pkcs11-tool --module "$P11_LIB" --token-label "$P11_TOKEN" --login --pin env:PIN \\
                  --write-object "$der" --type cert --id "$id" --label "$label" >/dev/null 2>&1 || { echo "Error: C_CreateObject failed" >&2; exit 1; }
                cp "$file" "$socket.root" ;;
              verify-cert)
                [[ -e $socket.root ]] || { echo "Error: rpc error: code = Unknown desc = no loaded CA cert for verification" >&2; exit 1; }
                openssl verify -CAfile "$socket.root" "$file" >/dev/null 2>&1 \\
                  || { echo "Error: rpc error: code = Unknown desc = x509: certificate signed by unknown authority" >&2; exit 1; } ;;
              *) echo "Error: the stand-in plays only import-ca and verify-cert" >&2; exit 1 ;;
            esac
            """;
}
