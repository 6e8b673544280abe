package asmhsm;

import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The cluster, through one fabric8 client per step, from the kubeconfig and context the
 * operator uses with kubectl. Turns API failures into lines that say what to do.
 */
public final class Kube implements AutoCloseable {
    public final KubernetesClient client;
    public final Config config;
    public final String context;

    private Kube(KubernetesClient client, Config config, String context) {
        this.client = client;
        this.config = config;
        this.context = context;
    }

    public static Kube connect(Opts.Kube o) {
        File file = kubeconfigFile(o.kubeconfig);
        if (!file.isFile())
            throw Fail.badInput("kubeconfig " + file + " does not exist",
                    "set KUBECONFIG or --kubeconfig to the cluster's kubeconfig (kubectl config view works with it)");
        Config config;
        try {
            config = Config.fromKubeconfig(o.context, file);
        } catch (RuntimeException e) {
            String msg = String.valueOf(e.getMessage());
            if (o.context != null && (msg.contains("context") || msg.contains(o.context)))
                throw Fail.badInput("context '" + o.context + "' is not in " + file + ": " + msg,
                        "list the contexts with: kubectl config get-contexts");
            throw Fail.badInput("cannot read kubeconfig " + file + ": " + msg, "check the file (kubectl config view)");
        }
        if (o.context != null && config.getCurrentContext() != null
                && !o.context.equals(config.getCurrentContext().getName()))
            throw Fail.badInput("context '" + o.context + "' is not in " + file, "list the contexts with: kubectl config get-contexts");
        config.setRequestTimeout(30_000);
        config.setConnectionTimeout(10_000);
        config.setRequestRetryBackoffLimit(0);
        String ctx = config.getCurrentContext() == null ? null : config.getCurrentContext().getName();
        return new Kube(new KubernetesClientBuilder().withConfig(config).build(), config, ctx);
    }

    static File kubeconfigFile(String option) {
        if (option != null && !option.isBlank()) {
            // like kubectl, KUBECONFIG may list several files: the first that exists is used
            for (String p : option.split(File.pathSeparator)) if (Files.isRegularFile(Path.of(p))) return new File(p);
            return new File(option.split(File.pathSeparator)[0]);
        }
        return Env.userHome().resolve(".kube/config").toFile();
    }

    /** The API server URL of the selected context, as `kubectl config view` shows it. */
    public String server() {
        String url = config.getMasterUrl();
        return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
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
        if (code == 403)
            return Fail.failed("not allowed to " + what + where + ": " + reason(e),
                    "run as a cluster admin (see grant-admin) or ask one to grant this right");
        if (code == 0 || e.getCause() instanceof java.io.IOException || e.getCause() instanceof java.net.ConnectException)
            return Fail.failed("cannot reach the API server to " + what + where + ": " + rootMessage(e),
                    "check the cluster is up and the kubeconfig context points at it");
        return Fail.failed("could not " + what + where + ": " + reason(e), "see the message above; --verbose shows the details");
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

    @Override
    public void close() {
        client.close();
    }
}
