///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tools.jackson.dataformat.yaml.YAMLMapper;
import tools.jackson.dataformat.yaml.YAMLWriteFeature;

@Command(name = "install-asm", mixinStandardHelpOptions = true,
        description = "Run the guide's istioctl install (profile asm-multicloud, the HSM and Vault settings), then apply the"
                + " istiod Service (guide: 'Instale Anthos Service Mesh').")
class InstallAsm extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Vault vault;

    @Option(names = "--hsm-slot-label", defaultValue = "${env:HSM_SLOT_LABEL}", paramLabel = "LABEL",
            description = "HSM slot label (env HSM_SLOT_LABEL).")
    String slotLabel;

    @Option(names = "--hsm-secret-path", defaultValue = "${env:HSM_SECRET_PATH}", paramLabel = "PATH",
            description = "Vault path of the HSM secret, e.g. asm-c1/hsm (env HSM_SECRET_PATH).")
    String secretPath;

    @Mixin Opts.Kek kek;

    @Option(names = "--hsm-plugin-image", defaultValue = "${env:HSM_PLUGIN_IMAGE}", paramLabel = "IMAGE",
            description = "HSM plugin image (env HSM_PLUGIN_IMAGE).")
    String pluginImage;

    @Option(names = "--vault-client-image", defaultValue = "${env:VAULT_CLIENT_IMAGE}", paramLabel = "IMAGE",
            description = "Vault client image (env VAULT_CLIENT_IMAGE).")
    String vaultClientImage;

    @Option(names = "--wait-for-resources-timeout", defaultValue = "${env:WAIT_FOR_RESOURCES_TIMEOUT}", paramLabel = "DURATION",
            description = "How long istioctl waits for resources, e.g. 10s (env WAIT_FOR_RESOURCES_TIMEOUT; passed to istioctl in its environment).")
    String waitTimeout;

    @Option(names = "--revision", defaultValue = Istio.GUIDE_REVISION, paramLabel = "REV", converter = Opts.RevisionConverter.class, description = "Revision (default ${DEFAULT-VALUE}).")
    String revision;

    @Option(names = {"-f", "--filename"}, paramLabel = "FILE", description = "Extra IstioOperator YAML for optional features, passed to istioctl.")
    List<Path> extraFiles = new ArrayList<>();

    @Option(names = "--istioctl", paramLabel = "FILE", description = "istioctl to run (default: bin/istioctl of the extracted release).")
    Path istioctl;

    @Option(names = {"-y", "--skip-confirmation"}, description = "Pass -y: istioctl does not ask before installing.")
    boolean yes;

    @Option(names = "--uninstall", description = "Remove the control plane of --revision (istioctl x uninstall --revision REV), once no"
            + " namespace is labelled for it, no sidecar of it runs and the istiod Service points at another revision.")
    boolean uninstall;

    @Option(names = "--print", description = "Print the istioctl command instead of running it.")
    boolean print;

    @Override
    protected boolean printsForAProgram() {
        return print;
    }

    @Option(names = "--overlay", paramLabel = "FILE", description = "Write the settings as an IstioOperator YAML file instead of running istioctl.")
    Path overlay;

    @Option(names = "--no-root-hook", description = "The guide's install only, without the root hook that makes every new istiod pod load"
            + " the root into its own HSM plugin (ConfigMap " + Istio.ROOT_CONFIGMAP + " and a postStart hook, on by default); then run"
            + " load-root after every new istiod pod.")
    boolean noRootHook;

    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.CaId ca;

    @Option(names = "--root-cert", paramLabel = "ROOT_PEM", description = "The root for the hook (default: the HSM's, by --ca-id).")
    Path rootFile;

    @Override
    protected void run() throws Exception {
        if (uninstall) {
            uninstall();
            return;
        }
        boolean rootHook = !noRootHook;
        Istio.InstallSettings settings = settings();
        if (vault.namespace() != null)   // what vault-setup wrote in it, istiod looks for outside it
            out.warn("Vault namespace " + vault.namespace() + " is set, but the guide's install settings give istiod's Vault client "
                    + "only VAULT_ADDR and HSM_SECRET_PATH, no namespace");
        for (Path f : extraFiles)
            if (!Files.isRegularFile(f)) throw Fail.badInput("-f " + f + " does not exist or is not a file", "check the path");
        Path found = istioctl != null ? istioctl : findIstioctl();
        if (!print && overlay == null && (found == null || !Files.isExecutable(found)))
            throw Fail.badInput(found == null ? "no istioctl found (bin/istioctl here or in ./" + Release.topDir(Release.DEFAULT_VERSION) + "/)"
                            : found + " is not an executable file",
                    "run fetch-release first and run install-asm from where it extracted, or pass --istioctl");
        String rootPem = rootHook ? Pki.pem(Hsm.trustedRoot(rootFile, p11, ca.id, out)) : null;
        if (overlay != null) {
            Map<String, Object> iop = settings.istioOperator();
            if (rootHook) spec(iop).put("components", spec(Istio.rootHookOverlay(revision, ca.id)).get("components"));
            writeFile(overlay, iop, "the guide's istioctl install settings" + (rootHook ? " and the root hook" : ""),
                    "IstioOperator, revision " + settings.revision());
            if (rootHook) out.say("the root hook needs ConfigMap %s/%s: install-asm creates it (or: kubectl -n %s create configmap %s --from-file=%s=ROOT_PEM)",
                    Kube.ISTIO_NAMESPACE, Istio.ROOT_CONFIGMAP, Kube.ISTIO_NAMESPACE, Istio.ROOT_CONFIGMAP, Istio.ROOT_KEY);
            if (!print) return;
        }
        List<String> files = new ArrayList<>(extraFiles.stream().map(Path::toString).toList());
        if (rootHook) {
            Path hook = Path.of(hookFile(revision));
            writeFile(hook, Istio.rootHookOverlay(revision, ca.id), "the root hook of asm-hsm install-asm", "root hook, revision " + revision);
            files.add(hook.toString());
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(found == null ? "istioctl" : found.toString());
        cmd.addAll(settings.istioctlArgs(files));
        if (kube.context != null) cmd.addAll(List.of("--context", kube.context));
        if (yes) cmd.add("-y");
        String shown = "WAIT_FOR_RESOURCES_TIMEOUT=" + shellQuote(waitTimeout) + " " + String.join(" ", cmd.stream().map(InstallAsm::shellQuote).toList());
        out.put("command", cmd).put("environment", Map.of("WAIT_FOR_RESOURCES_TIMEOUT", waitTimeout));
        if (print) {
            if (!out.json()) System.out.println(shown);
            return;
        }
        Kube k = kube();
        if (rootHook) k.apply(Istio.rootConfigMap(rootPem), out);
        if (out.dryRun()) {
            out.change("run " + shown);
            k.apply(Kube.istiodService(revision), out);
            return;
        }
        out.say("Running: %s", shown);
        StringBuilder output = new StringBuilder();
        int exit = runIstioctl(cmd, output);
        if (exit != 0 && !Istio.onlyWaitTimedOut(output.toString()))
            throw Fail.failed("istioctl install failed (exit " + exit + ")", "see istioctl's output above; fix the cause and run install-asm again");
        if (exit != 0)
            out.warn("istioctl stopped waiting after WAIT_FOR_RESOURCES_TIMEOUT=" + waitTimeout
                    + ": expected, as istiod waits for its CA certificate (the guide shortens this wait on purpose)");
        out.change("ran istioctl install (revision " + revision + ")");
        k.apply(Kube.istiodService(revision), out);
        out.next("istiod-status --wait" + out.given(Opts.Kube.class, Opts.Kek.class) + " (the guide expects istiod 2/3 ready, waiting for its CA certificate)");
    }

    /**
     * Removes one revision's control plane after a canary upgrade, refusing while anything still uses it:
     * istioctl x uninstall --revision leaves the other revision and the Secrets istiod shares.
     */
    private void uninstall() throws IOException, InterruptedException {
        if (!spec.commandLine().getParseResult().hasMatchedOption("--revision"))
            throw Fail.badInput("--uninstall needs the revision to remove, given as --revision", "e.g. install-asm --uninstall --revision " + Istio.GUIDE_REVISION);
        Istio.requireRevision(revision);
        Path found = istioctl != null ? istioctl : findIstioctl();
        List<String> cmd = new ArrayList<>();
        cmd.add(found == null ? "istioctl" : found.toString());
        cmd.addAll(Istio.uninstallArgs(revision));
        if (kube.context != null) cmd.addAll(List.of("--context", kube.context));
        if (yes) cmd.add("-y");
        String shown = String.join(" ", cmd.stream().map(InstallAsm::shellQuote).toList());
        out.put("revision", revision).put("command", cmd);
        if (print) {
            if (!out.json()) System.out.println(shown);
            return;
        }
        if (!out.dryRun() && (found == null || !Files.isExecutable(found)))
            throw Fail.badInput(found == null ? "no istioctl found (bin/istioctl here)" : found + " is not an executable file",
                    "run install-asm from the new release's folder, or pass --istioctl");
        Kube k = kube();
        java.util.Set<String> revisions = k.call(() -> Istio.revisions(k.client), "list istiod in " + Kube.ISTIO_NAMESPACE);
        if (!revisions.contains(revision)) {
            out.say("no istiod of revision %s in %s: nothing to remove", revision, Kube.ISTIO_NAMESPACE);
            out.put("removed", false);
            return;
        }
        List<String> others = revisions.stream().filter(r -> !r.equals(revision)).toList();
        if (others.isEmpty())
            throw Fail.failed("revision " + revision + " is the only istiod revision in " + Kube.ISTIO_NAMESPACE + ": removing it leaves no control plane",
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
        var service = k.call(() -> k.client.services().inNamespace(Kube.ISTIO_NAMESPACE).withName(Kube.ISTIOD_SERVICE).get(),
                "read Service " + Kube.ISTIOD_SERVICE);
        if (service != null && revision.equals(Istio.revisionOf(service)))
            throw Fail.failed("Service " + Kube.ISTIO_NAMESPACE + "/" + Kube.ISTIOD_SERVICE + " still points at revision " + revision
                    + " (the validating webhook reaches istiod through it)", "point it at the new revision first: istiod-service --revision " + next);
        if (out.dryRun()) {
            out.change("run " + shown);
            return;
        }
        out.say("Running: %s", shown);
        int exit = runIstioctl(cmd, new StringBuilder());
        if (exit != 0) throw Fail.failed("istioctl x uninstall failed (exit " + exit + ")", "see istioctl's output above; fix the cause and run it again");
        out.put("removed", true);
        out.change("removed the control plane of revision " + revision + " (" + String.join(", ", others) + " stays)");
        out.next("status" + out.given(Opts.Kube.class) + " (one istiod revision left)");
    }

    /** The guide's environment variables (or options), all present and well-formed, else one refusal naming each missing one. */
    private Istio.InstallSettings settings() {
        Istio.requireRevision(revision);
        Map<String, String> values = new LinkedHashMap<>();
        values.put("HSM_SLOT_LABEL --hsm-slot-label", slotLabel);
        values.put("VAULT_ADDR --vault-addr", vault.addr);
        values.put("HSM_SECRET_PATH --hsm-secret-path", secretPath);
        values.put("KEK_ID --kek-id", kek.id);
        values.put("HSM_PLUGIN_IMAGE --hsm-plugin-image", pluginImage);
        values.put("VAULT_CLIENT_IMAGE --vault-client-image", vaultClientImage);
        if (overlay == null || print) values.put("WAIT_FOR_RESOURCES_TIMEOUT --wait-for-resources-timeout", waitTimeout);
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
        String addr = vault.addr.endsWith("/") ? vault.addr.substring(0, vault.addr.length() - 1) : vault.addr;
        return new Istio.InstallSettings(revision, kek.id, pluginImage, slotLabel, vaultClientImage, addr, secretPath);
    }

    static final String GUIDE_PLUGIN_IMAGE = "gcr.io/thalescpl-io-k8s-kms-plugin/hsm-plugin:asm-1.7-1";

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

    /** bin/istioctl when run from the release (as the guide: cd istio-1.9.8-asm.6), else ./istio-VERSION/bin/istioctl. */
    private static Path findIstioctl() {
        Path here = Path.of("").toAbsolutePath();
        Path p = Release.istioctl(here);
        return p != null ? p : Release.istioctl(here.resolve(Release.topDir(Release.DEFAULT_VERSION)));
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> spec(Map<String, Object> iop) {
        return (Map<String, Object>) iop.get("spec");
    }

    /** The root hook's IstioOperator file, passed to istioctl with -f (in the current folder, to read or reuse). */
    static String hookFile(String revision) {
        return "asm-root-hook-" + revision + ".yaml";
    }

    private void writeFile(Path file, Map<String, Object> iop, String title, String what) throws IOException {
        YAMLMapper yaml = YAMLMapper.builder().disable(YAMLWriteFeature.WRITE_DOC_START_MARKER)
                .enable(YAMLWriteFeature.MINIMIZE_QUOTES, YAMLWriteFeature.ALWAYS_QUOTE_NUMBERS_AS_STRINGS).build();
        String text = "# " + title + ". Install with:\n"
                + "#   WAIT_FOR_RESOURCES_TIMEOUT=10s istioctl install -f " + file.getFileName() + "\n"
                + yaml.writeValueAsString(iop);
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        out.put(file.equals(overlay) ? "overlay" : "rootHook", file.toString());
        if (Files.isRegularFile(file) && java.util.Arrays.equals(Files.readAllBytes(file), bytes)) {
            out.say("%s already holds these settings", file);
            return;
        }
        boolean existed = Files.exists(file);
        if (!out.dryRun()) Env.writeFile(file, bytes, "rw-r--r--");
        String verb = existed ? (out.dryRun() ? "update " : "updated ") : (out.dryRun() ? "write " : "wrote ");
        out.change(verb + file + " (" + what + ")");
    }

    /** Runs istioctl with the operator's terminal for input, streaming its output (to stderr under --json) and keeping a copy. */
    private int runIstioctl(List<String> cmd, StringBuilder copy) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.INHERIT);
        if (waitTimeout != null) pb.environment().put("WAIT_FOR_RESOURCES_TIMEOUT", waitTimeout);
        pb.environment().remove("VAULT_TOKEN");   // istioctl has no use for it
        if (kube.kubeconfig != null && !kube.kubeconfig.isBlank()) pb.environment().put("KUBECONFIG", kube.kubeconfig);
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw Fail.failed("cannot run " + cmd.get(0) + ": " + e.getMessage(), "check --istioctl");
        }
        Thread stop = new Thread(p::destroy);
        Runtime.getRuntime().addShutdownHook(stop);
        Thread o = pump(p.getInputStream(), out.json() ? System.err : System.out, copy);
        Thread e = pump(p.getErrorStream(), System.err, copy);
        int exit;
        try (var ctrlC = Interrupt.closeOnStop(p::destroy)) {     // Ctrl-C stops istioctl too, also in asm session
            exit = p.waitFor();
            o.join();
            e.join();
        }
        Runtime.getRuntime().removeShutdownHook(stop);
        return exit;
    }

    private static Thread pump(InputStream in, PrintStream to, StringBuilder copy) {
        Thread t = new Thread(() -> {
            byte[] buf = new byte[8192];
            ByteArrayOutputStream all = new ByteArrayOutputStream();
            try (in) {
                for (int n; (n = in.read(buf)) > 0; ) {
                    to.write(buf, 0, n);
                    to.flush();
                    if (all.size() < (1 << 20)) all.write(buf, 0, n);
                }
            } catch (IOException ignored) {
                // the process ended; its exit code tells the rest
            }
            synchronized (copy) {
                copy.append(all.toString(StandardCharsets.UTF_8));
            }
        });
        t.start();
        return t;
    }

    static String shellQuote(String s) {
        return s.matches("[A-Za-z0-9_./:=@%+,-]+") ? s : "'" + s.replace("'", "'\\''") + "'";
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new InstallAsm()).execute(args));
    }
}
