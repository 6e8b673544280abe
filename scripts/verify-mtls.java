///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.dsl.ExecWatch;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Date;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "verify-mtls", mixinStandardHelpOptions = true,
        description = "From a pod's sidecar, open the mesh's mTLS to a service and check the chain it serves leads to our root "
                + "(guide: `kubectl exec POD -c istio-proxy -- openssl s_client -alpn istio -showcerts -connect details:9080`).")
class VerifyMtls extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Pkcs11 p11;

    @Option(names = "--pod", required = true, paramLabel = "POD", description = "A pod with a sidecar (container istio-proxy).")
    String pod;

    @Option(names = {"-n", "--namespace"}, paramLabel = "NAMESPACE", description = "The pod's namespace (default: the context's, else default).")
    String namespace;

    @Option(names = "--target", required = true, paramLabel = "HOST:PORT", description = "Service to connect to, e.g. details:9080.")
    String target;

    @Mixin Opts.CaId ca;

    @Option(names = "--root-cert", paramLabel = "ROOT_PEM", description = "Compare with this root certificate instead of the HSM's.")
    Path rootFile;

    @Option(names = "--timeout", defaultValue = "30s", paramLabel = "DURATION", converter = Opts.DurationConverter.class,
            description = "How long openssl may take, e.g. 30s, 2m; a bare number is seconds (default ${DEFAULT-VALUE}).")
    Duration timeout;

    @Override
    protected void run() throws Exception {
        if (!target.matches("([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\]):([1-9]\\d{0,4})")
                || Integer.parseInt(target.substring(target.lastIndexOf(':') + 1)) > 65535)
            throw Fail.badInput("target '" + target + "' is not HOST:PORT", "give the service and port, e.g. --target details:9080");
        if (rootFile != null) Pki.single(rootFile, "root certificate"); // a bad file is bad input, before anything is read
        Kube k = kube();
        String ns = namespace != null ? namespace : k.client.getNamespace() != null ? k.client.getNamespace() : "default";
        out.put("pod", ns + "/" + pod).put("target", target);
        if (k.call(() -> k.client.namespaces().withName(ns).get(), "read namespace " + ns) == null)
            throw Fail.badInput("namespace " + ns + " does not exist", "give the pod's namespace with --namespace");
        Pod p = k.call(() -> k.client.pods().inNamespace(ns).withName(pod).get(), "read pod " + pod);
        if (p == null) throw Fail.badInput("no pod " + pod + " in namespace " + ns, "list them with: kubectl get pods -n " + ns);
        if (!Istio.hasContainer(p, Istio.PROXY_CONTAINER))
            throw Fail.badInput("pod " + pod + " has no " + Istio.PROXY_CONTAINER + " container (containers: "
                    + String.join(", ", Istio.containerNames(p)) + "): it has no sidecar",
                    "choose a pod of an injected namespace, or inject this one (enable-injection --namespace " + ns + " --restart)");
        X509Certificate root = Hsm.trustedRoot(rootFile, this::hsm, ca.id);
        out.put("root", Pki.name(root));
        String[] result = sClient(k, ns);
        List<X509Certificate> served = served(result[0], result[1]);
        out.put("served", served.stream().map(Pki::name).toList());
        out.say("%s served %d certificate(s) to %s/%s:", target, served.size(), ns, pod);
        for (int i = 0; i < served.size(); i++)
            out.say("  #%d %s (issuer %s)%s", i + 1, Pki.name(served.get(i)), Pki.goName(Pki.issuerDer(served.get(i))), identity(served.get(i)));
        String broken = Pki.chainProblem(Pki.ChainRules.STRICT, served, root, new Date(), "the served");
        out.put("leadsToRoot", broken == null);
        if (broken != null)
            throw Fail.failed("the chain " + target + " serves does not lead to the root '" + Pki.name(root) + "': " + broken,
                    "check istiod runs with the uploaded chain (verify-ca) and restart the workloads so their sidecars get new certificates");
        out.say("the chain leads to the root '%s'%s", Pki.name(root), rootFile == null ? " on the HSM" : "");
    }

    /** Runs the guide's openssl s_client in the istio-proxy container, without stdin (as kubectl exec without -i). */
    private String[] sClient(Kube k, String ns) throws Exception {
        ByteArrayOutputStream stdout = new ByteArrayOutputStream(), stderr = new ByteArrayOutputStream(), status = new ByteArrayOutputStream();
        String[] cmd = {"openssl", "s_client", "-alpn", "istio", "-showcerts", "-connect", target};
        out.progress("running " + String.join(" ", cmd) + " in " + pod + "/" + Istio.PROXY_CONTAINER);
        int exit;
        try (ExecWatch w = k.call(() -> k.client.pods().inNamespace(ns).withName(pod).inContainer(Istio.PROXY_CONTAINER)
                .writingOutput(stdout).writingError(stderr).writingErrorChannel(status).exec(cmd), "exec openssl in pod " + pod)) {
            exit = w.exitCode().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw Fail.failed("openssl s_client in " + pod + " did not finish within " + Opts.text(timeout), "check " + target
                    + " answers from inside the mesh, or raise --timeout");
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof io.fabric8.kubernetes.client.KubernetesClientException kce) throw k.explain(kce, "exec openssl in pod " + pod);
            throw Fail.failed("exec in pod " + pod + " failed: " + Step.describe(c), "check you may exec into pods (kubectl exec)");
        }
        out.endProgress();
        String o = stdout.toString(StandardCharsets.UTF_8), err = stderr.toString(StandardCharsets.UTF_8);
        // the kubelet's own failure (no such container, exec refused) comes as a Status on the error channel
        String failure = Kube.execStatusMessage(status.toString(StandardCharsets.UTF_8));
        if (exit < 0 && o.isBlank())
            throw Fail.failed("exec in " + pod + "/" + Istio.PROXY_CONTAINER + " failed" + (failure == null ? "" : ": " + failure),
                    "check the pod is running (kubectl get pod " + pod + " -n " + ns + ")");
        if (exit == 126 || exit == 127 || (failure != null && failure.contains("executable file not found")))
            throw Fail.failed("openssl cannot run in the " + Istio.PROXY_CONTAINER + " container of " + pod + " (exit " + exit + ")",
                    "use a proxy image that ships openssl, or run the check from another pod of the mesh");
        return new String[]{o, err, String.valueOf(exit)};
    }

    /** The certificates of s_client's "Certificate chain", in the order served; a clear failure when there are none. */
    private List<X509Certificate> served(String stdout, String stderr) {
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
        var end = java.util.regex.Pattern.compile("(?m)^---$").matcher(section);
        if (end.find()) section = section.substring(0, end.start());
        return Pki.certificates(Pki.pemBlocks(section, "openssl's output"), "openssl's output");
    }

    /** The workload's SPIFFE identity, as Istio puts it in the leaf's URI SAN. */
    private static String identity(X509Certificate c) {
        try {
            if (c.getSubjectAlternativeNames() != null)
                for (List<?> san : c.getSubjectAlternativeNames())
                    if (Integer.valueOf(6).equals(san.get(0))) return " " + san.get(1);
        } catch (java.security.cert.CertificateParsingException e) {
            return "";
        }
        return "";
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new VerifyMtls()).execute(args));
    }
}
