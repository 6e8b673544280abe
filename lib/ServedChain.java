package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.ExecWatch;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The chain a service of the mesh serves to a pod's sidecar, as the guide reads it: `openssl s_client -alpn
 * istio -showcerts -connect HOST:PORT` run in the pod's istio-proxy container.
 */
public final class ServedChain {
    private ServedChain() {}

    private static final Pattern HOST_PORT = Pattern.compile("([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\]):([1-9]\\d{0,4})");

    /** `target` as given; bad input (exit 2) when it is not HOST:PORT. */
    public static String requireTarget(String target) {
        Matcher m = HOST_PORT.matcher(target);
        if (!m.matches() || Integer.parseInt(m.group(3)) > 65535)
            throw Fail.badInput("target '" + target + "' is not HOST:PORT", "give the service and port, e.g. --target details:9080");
        return target;
    }

    /** The pod `pod` of namespace `ns`, which must exist and have a sidecar; bad input (exit 2) otherwise. */
    public static Pod sidecarPod(Kube k, String ns, String pod) {
        if (k.call(() -> k.client.namespaces().withName(ns).get(), "read namespace " + ns) == null)
            throw Fail.badInput("namespace " + ns + " does not exist", "give the pod's namespace with --namespace");
        Pod p = k.call(() -> k.client.pods().inNamespace(ns).withName(pod).get(), "read pod " + pod);
        if (p == null) throw Fail.badInput("no pod " + pod + " in namespace " + ns, "list them with: kubectl get pods -n " + ns);
        if (!Pods.hasContainer(p, Istio.PROXY_CONTAINER))
            throw Fail.badInput("pod " + pod + " has no " + Istio.PROXY_CONTAINER + " container (containers: "
                    + String.join(", ", Pods.containerNames(p)) + "): it has no sidecar",
                    "choose a pod of an injected namespace, or inject this one (enable-injection --namespace " + ns + " --restart)");
        return p;
    }

    /** Runs s_client in the pod's istio-proxy, without stdin (as kubectl exec without -i): the certificates served, in order. */
    public static List<X509Certificate> fetch(Kube k, Out out, String ns, String pod, String target, Duration timeout) throws InterruptedException {
        ByteArrayOutputStream stdout = new ByteArrayOutputStream(), stderr = new ByteArrayOutputStream(), status = new ByteArrayOutputStream();
        String[] cmd = {"openssl", "s_client", "-alpn", "istio", "-showcerts", "-connect", target};
        String where = pod + "/" + Istio.PROXY_CONTAINER;
        out.progress("running " + String.join(" ", cmd) + " in " + where);
        int exit;
        try (ExecWatch w = k.call(() -> k.client.pods().inNamespace(ns).withName(pod).inContainer(Istio.PROXY_CONTAINER)
                .writingOutput(stdout).writingError(stderr).writingErrorChannel(status).exec(cmd), "exec openssl in pod " + pod)) {
            exit = w.exitCode().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw Fail.failed("openssl s_client in " + pod + " did not finish within " + Opts.text(timeout), "check " + target
                    + " answers from inside the mesh, or raise --timeout");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof KubernetesClientException kce) throw k.explain(kce, "exec openssl in pod " + pod);
            throw Fail.failed("exec in pod " + pod + " failed: " + Step.describe(e.getCause()), "check you may exec into pods (kubectl exec)");
        }
        out.endProgress();
        String o = stdout.toString(StandardCharsets.UTF_8), err = stderr.toString(StandardCharsets.UTF_8);
        // the kubelet's own failure (no such container, exec refused) comes as a Status on the error channel
        String failure = Kube.execStatusMessage(status.toString(StandardCharsets.UTF_8));
        if (exit < 0 && o.isBlank())
            throw Fail.failed("exec in " + where + " failed" + (failure == null ? "" : ": " + failure),
                    "check the pod is running (kubectl get pod " + pod + " -n " + ns + ")");
        if (exit == 126 || exit == 127 || (failure != null && failure.contains("executable file not found")))
            throw Fail.failed("openssl cannot run in the " + Istio.PROXY_CONTAINER + " container of " + pod + " (exit " + exit + ")",
                    "use a proxy image that ships openssl, or run the check from another pod of the mesh");
        return certificates(o, err, pod, target);
    }

    /** The certificates of s_client's "Certificate chain", in the order served; a clear failure when there are none. */
    static List<X509Certificate> certificates(String stdout, String stderr, String pod, String target) {
        if (!stdout.contains("-----BEGIN CERTIFICATE-----")) {
            List<String> why = new ArrayList<>();
            for (String line : (stderr + "\n" + stdout).split("\n"))
                if (line.matches("(?i).*(error|errno|refused|unable|no peer certificate|alert|timed out).*")) why.add(line.strip());
            throw Fail.failed(target + " served no certificate to " + pod + (why.isEmpty() ? "" : ": " + String.join(" | ", why.subList(0, Math.min(3, why.size())))),
                    "check the service and port, that its pods have sidecars, and that mTLS is on (PeerAuthentication)");
        }
        // only the "Certificate chain" section: without -showcerts openssl repeats the leaf under "Server certificate"
        int from = stdout.indexOf("Certificate chain");
        String section = from < 0 ? stdout : stdout.substring(from);
        Matcher end = Pattern.compile("(?m)^---$").matcher(section);
        if (end.find()) section = section.substring(0, end.start());
        return Pki.certificates(Pki.pemBlocks(section, "openssl's output"), "openssl's output");
    }

    /** The workload's SPIFFE identity, as Istio puts it in the leaf's URI SAN, after a space; "" when it has none. */
    public static String identity(X509Certificate c) {
        try {
            if (c.getSubjectAlternativeNames() != null)
                for (List<?> san : c.getSubjectAlternativeNames())
                    if (Integer.valueOf(6).equals(san.get(0))) return " " + san.get(1);
        } catch (CertificateParsingException e) {
            return "";
        }
        return "";
    }
}
