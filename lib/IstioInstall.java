package asmhsm;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import picocli.CommandLine.Option;
import tools.jackson.dataformat.yaml.YAMLMapper;
import tools.jackson.dataformat.yaml.YAMLWriteFeature;

/**
 * install-asm's install and removal of a control plane: the guide's variables for `istioctl install`,
 * checked before anything runs; the settings and the root hook as IstioOperator files; and the refusals
 * that keep --uninstall from removing a revision that anything still uses.
 */
final class IstioInstall {
    private IstioInstall() {}

    static final String GUIDE_PLUGIN_IMAGE = "gcr.io/thalescpl-io-k8s-kms-plugin/hsm-plugin:asm-1.7-1";

    /** The guide's environment variables for the install (section 'Instale Anthos Service Mesh'), each also an option. */
    static final class Variables {
        @Option(names = "--hsm-slot-label", defaultValue = "${env:HSM_SLOT_LABEL}", paramLabel = "LABEL",
                description = "HSM slot label (env HSM_SLOT_LABEL).")
        String slotLabel;

        @Option(names = "--hsm-secret-path", defaultValue = "${env:HSM_SECRET_PATH}", paramLabel = "PATH",
                description = "Vault path of the HSM secret, e.g. asm-c1/hsm (env HSM_SECRET_PATH).")
        String secretPath;

        @Option(names = "--hsm-plugin-image", defaultValue = "${env:HSM_PLUGIN_IMAGE}", paramLabel = "IMAGE",
                description = "HSM plugin image (env HSM_PLUGIN_IMAGE).")
        String pluginImage;

        @Option(names = "--vault-client-image", defaultValue = "${env:VAULT_CLIENT_IMAGE}", paramLabel = "IMAGE",
                description = "Vault client image (env VAULT_CLIENT_IMAGE).")
        String vaultClientImage;

        @Option(names = "--wait-for-resources-timeout", defaultValue = "${env:WAIT_FOR_RESOURCES_TIMEOUT}", paramLabel = "DURATION",
                description = "How long istioctl waits for resources, e.g. 10s (env WAIT_FOR_RESOURCES_TIMEOUT; passed to istioctl in its environment).")
        String waitTimeout;

        /**
         * The install's settings: every variable present (WAIT_FOR_RESOURCES_TIMEOUT only when istioctl is to
         * run: `needsWait`) and well-formed, else one refusal naming each missing one.
         */
        Istio.InstallSettings settings(String revision, Opts.Kek kek, Opts.Vault vault, boolean needsWait, Out out) {
            Map<String, String> values = new LinkedHashMap<>();
            values.put("HSM_SLOT_LABEL --hsm-slot-label", slotLabel);
            values.put("VAULT_ADDR --vault-addr", vault.addr);
            values.put("HSM_SECRET_PATH --hsm-secret-path", secretPath);
            values.put("KEK_ID --kek-id", kek.id);
            values.put("HSM_PLUGIN_IMAGE --hsm-plugin-image", pluginImage);
            values.put("VAULT_CLIENT_IMAGE --vault-client-image", vaultClientImage);
            if (needsWait) values.put("WAIT_FOR_RESOURCES_TIMEOUT --wait-for-resources-timeout", waitTimeout);
            List<String> missing = new ArrayList<>();
            values.forEach((k, v) -> { if (v == null || v.isBlank()) missing.add(k.split(" ")[0]); });
            if (!missing.isEmpty())
                throw Fail.badInput("missing " + String.join(", ", missing) + " (set as in the guide's 'Instale Anthos Service Mesh', or pass "
                                + String.join(", ", values.keySet().stream().filter(k -> missing.contains(k.split(" ")[0])).map(k -> k.split(" ")[1]).toList()) + ")",
                        example(missing.get(0)));
            if (!slotLabel.matches("[^\\p{Cntrl}]{1,32}"))
                throw Fail.badInput("HSM slot label '" + slotLabel + "' is not 1-32 printable characters", "give the slot label of the HSM (P11_TOKEN)");
            vault.requireAddr();
            if (!secretPath.matches("[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*"))
                throw Fail.badInput("HSM_SECRET_PATH '" + secretPath + "' is not a Vault path like asm-c1/hsm", "no leading or trailing '/', no spaces");
            for (String image : List.of(pluginImage, vaultClientImage))
                if (!image.matches("[^\\s,]+")) throw Fail.badInput("image '" + image + "' is not an image reference", "e.g. " + GUIDE_PLUGIN_IMAGE);
            if (waitTimeout != null && Opts.goDuration(waitTimeout) == null)
                throw Fail.badInput("WAIT_FOR_RESOURCES_TIMEOUT '" + waitTimeout + "' is not a duration istioctl reads", "the guide uses 10s");
            if (vault.namespace() != null)   // what vault-setup wrote in it, istiod looks for outside it
                out.warn("Vault namespace " + vault.namespace() + " is set, but the guide's install settings give istiod's Vault client "
                        + "only VAULT_ADDR and HSM_SECRET_PATH, no namespace");
            String addr = vault.addr.endsWith("/") ? vault.addr.substring(0, vault.addr.length() - 1) : vault.addr;
            return new Istio.InstallSettings(revision, kek.id, pluginImage, slotLabel, vaultClientImage, addr, secretPath);
        }
    }

    /** The root hook (on by default): every new istiod pod loads the root into its own HSM plugin, as load-root does. */
    static final class RootHook {
        @Option(names = "--no-root-hook", description = "The guide's install only, without the root hook that makes every new istiod pod load"
                + " the root into its own HSM plugin (ConfigMap " + PluginRootHook.ROOT_CONFIGMAP + " and a postStart hook, on by default); then run"
                + " load-root after every new istiod pod.")
        boolean off;

        @Option(names = "--root-cert", paramLabel = "ROOT_PEM", description = "The root for the hook (default: the HSM's, by --ca-id).")
        Path rootFile;

        /** The root the hook loads, as PEM: --root-cert's, else the HSM's by `caId`; null with --no-root-hook. */
        String rootPem(Opts.Pkcs11 p11, String caId, Out out) throws sun.security.pkcs11.wrapper.PKCS11Exception {
            return off ? null : Pki.pem(Hsm.trustedRoot(rootFile, p11, caId, out));
        }
    }

    /** How the guide sets a missing variable. */
    private static String example(String variable) {
        return switch (variable) {
            case "HSM_PLUGIN_IMAGE" -> "the guide: export HSM_PLUGIN_IMAGE=" + GUIDE_PLUGIN_IMAGE;
            case "VAULT_CLIENT_IMAGE" -> "the guide: export VAULT_CLIENT_IMAGE=gcr.io/gke-release/asm/vaultclient:latest";
            case "WAIT_FOR_RESOURCES_TIMEOUT" -> "the guide: export WAIT_FOR_RESOURCES_TIMEOUT=10s";
            case "HSM_SECRET_PATH" -> "the path vault-setup wrote the HSM secret to: export HSM_SECRET_PATH=asm-$CLUSTER_SUFFIX/hsm";
            case "KEK_ID" -> "the ID gen-kek printed: export KEK_ID=...";
            case "VAULT_ADDR" -> "export VAULT_ADDR=https://VAULT_IP:PORT";
            default -> "the HSM slot label: export HSM_SLOT_LABEL=...";
        };
    }

    // ---------------------------------------------------------------- IstioOperator files

    /** -f's extra IstioOperator files: each must be a file. */
    static void requireFiles(List<Path> files) {
        for (Path f : files)
            if (!Files.isRegularFile(f)) throw Fail.badInput("-f " + f + " does not exist or is not a file", "check the path");
    }

    /** The root hook's IstioOperator file, passed to istioctl with -f (in the current folder, to read or reuse). */
    static String hookFile(String revision) {
        return "asm-root-hook-" + revision + ".yaml";
    }

    /** --overlay: the settings as one IstioOperator file, with the root hook's overlay when `hookCaId` is not null. */
    static void writeOverlay(Path file, Istio.InstallSettings settings, String hookCaId, Out out) throws IOException {
        Map<String, Object> iop = settings.istioOperator();
        if (hookCaId != null) spec(iop).put("components", spec(PluginRootHook.rootHookOverlay(settings.revision(), hookCaId)).get("components"));
        write(file, "overlay", iop, "the guide's istioctl install settings" + (hookCaId != null ? " and the root hook" : ""),
                "IstioOperator, revision " + settings.revision(), out);
        if (hookCaId != null)
            out.say("the root hook needs ConfigMap %s/%s: install-asm creates it (or: kubectl -n %s create configmap %s --from-file=%s=ROOT_PEM)",
                    KubeLayout.ISTIO_NAMESPACE, PluginRootHook.ROOT_CONFIGMAP, KubeLayout.ISTIO_NAMESPACE, PluginRootHook.ROOT_CONFIGMAP, PluginRootHook.ROOT_KEY);
    }

    /** The root hook's file ({@link #hookFile}) for istioctl's -f. */
    static Path writeRootHook(String revision, String caId, Out out) throws IOException {
        Path hook = Path.of(hookFile(revision));
        write(hook, "rootHook", PluginRootHook.rootHookOverlay(revision, caId), "the root hook of asm-hsm install-asm", "root hook, revision " + revision, out);
        return hook;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> spec(Map<String, Object> iop) {
        return (Map<String, Object>) iop.get("spec");
    }

    /** Writes the file unless it already holds these bytes; its path is the result's `key`. */
    private static void write(Path file, String key, Map<String, Object> iop, String title, String what, Out out) throws IOException {
        YAMLMapper yaml = YAMLMapper.builder().disable(YAMLWriteFeature.WRITE_DOC_START_MARKER)
                .enable(YAMLWriteFeature.MINIMIZE_QUOTES, YAMLWriteFeature.ALWAYS_QUOTE_NUMBERS_AS_STRINGS).build();
        String text = "# " + title + ". Install with:\n"
                + "#   WAIT_FOR_RESOURCES_TIMEOUT=10s istioctl install -f " + file.getFileName() + "\n"
                + yaml.writeValueAsString(iop);
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        out.put(key, file.toString());
        if (Files.isRegularFile(file) && java.util.Arrays.equals(Files.readAllBytes(file), bytes)) {
            out.say("%s already holds these settings", file);
            return;
        }
        boolean existed = Files.exists(file);
        if (!out.dryRun()) Env.writeFile(file, bytes, "rw-r--r--");
        String verb = existed ? (out.dryRun() ? "update " : "updated ") : (out.dryRun() ? "write " : "wrote ");
        out.change(verb + file + " (" + what + ")");
    }

    // ---------------------------------------------------------------- --uninstall

    /**
     * Removes one revision's control plane after a canary upgrade (istioctl x uninstall --revision leaves
     * the others and istiod's Secrets); with `print`, prints the command instead.
     */
    static void uninstall(Istioctl istioctl, Opts.Kube kube, Supplier<Kube> client, String revision, String waitTimeout,
            boolean print, Out out) throws IOException, InterruptedException {
        List<String> cmd = istioctl.command(Istio.uninstallArgs(revision), kube);
        out.put("revision", revision).put("command", cmd);
        if (print) { if (!out.json()) System.out.println(Istioctl.shown(cmd)); return; }
        if (!out.dryRun()) istioctl.require("bin/istioctl here", "run install-asm from the new release's folder, or pass --istioctl");
        List<String> left = revisionsLeft(client.get(), revision);
        if (left.isEmpty()) {
            out.say("no istiod of revision %s in %s: nothing to remove", revision, KubeLayout.ISTIO_NAMESPACE);
            out.put("removed", false);
        } else if (out.dryRun()) {
            out.change("run " + Istioctl.shown(cmd));
        } else {
            Istioctl.uninstall(cmd, waitTimeout, kube, out);
            out.put("removed", true);
            out.change("removed the control plane of revision " + revision + " (" + String.join(", ", left) + " stays)");
            out.next("status" + out.given(Opts.Kube.class) + " (one istiod revision left)");
        }
    }

    /**
     * The istiod revisions left once `revision` goes (the last is the one to move to), refusing while
     * anything still uses it: a namespace labelled for it, a pod with its sidecar, the istiod Service
     * (the validating webhook reaches istiod through it); or when it is the only one. Empty when
     * `revision` is not installed: nothing to remove.
     */
    static List<String> revisionsLeft(Kube k, String revision) {
        Set<String> revisions = k.call(() -> Istio.revisions(k.client), "list istiod in " + KubeLayout.ISTIO_NAMESPACE);
        if (!revisions.contains(revision)) return List.of();
        List<String> others = revisions.stream().filter(r -> !r.equals(revision)).toList();
        if (others.isEmpty())
            throw Fail.failed("revision " + revision + " is the only istiod revision in " + KubeLayout.ISTIO_NAMESPACE + ": removing it leaves no control plane",
                    "install the next revision first (install-asm --revision NEW) and move the namespaces to it");
        String next = others.get(others.size() - 1);
        Istio.RevisionUsers users = Istio.revisionUsers(k, revision);
        if (!users.namespaces().isEmpty())
            throw Fail.failed("namespace(s) " + String.join(", ", users.namespaces()) + " still use revision " + revision
                            + " (label " + Istio.REV_LABEL + "=" + revision + ")",
                    "move them first: enable-injection --namespace " + users.namespaces().get(0) + " --revision " + next + " --restart");
        if (!users.pods().isEmpty())
            throw Fail.failed(users.pods().size() + " pod(s) still run a sidecar of revision " + revision + ": " + String.join(", ", users.pods()),
                    "restart their workloads so they get " + next + "'s sidecar (enable-injection --namespace NAMESPACE --revision " + next + " --restart)");
        var service = k.call(() -> k.client.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(KubeLayout.ISTIOD_SERVICE).get(),
                "read Service " + KubeLayout.ISTIOD_SERVICE);
        if (service != null && revision.equals(Istio.revisionOf(service)))
            throw Fail.failed("Service " + KubeLayout.ISTIO_NAMESPACE + "/" + KubeLayout.ISTIOD_SERVICE + " still points at revision " + revision
                    + " (the validating webhook reaches istiod through it)", "point it at the new revision first: istiod-service --revision " + next);
        return others;
    }
}
