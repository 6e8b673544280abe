///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.Date;
import java.time.Duration;
import java.util.List;
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

    @Option(names = {"-n", "--namespace"}, paramLabel = "NAMESPACE", converter = Opts.NamespaceConverter.class, description = "The pod's namespace (default: the context's, else default).")
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
        ServedChain.requireTarget(target);
        if (rootFile != null) Pki.single(rootFile, "root certificate"); // a bad file is bad input, before anything is read
        Kube k = kube();
        String ns = namespace != null ? namespace : k.client.getNamespace() != null ? k.client.getNamespace() : "default";
        out.put("pod", ns + "/" + pod).put("target", target);
        ServedChain.sidecarPod(k, ns, pod);
        X509Certificate root = Hsm.trustedRoot(rootFile, this::hsm, ca.id);
        out.put("root", Pki.name(root));
        List<X509Certificate> served = ServedChain.fetch(k, out, ns, pod, target, timeout);
        out.put("served", served.stream().map(Pki::name).toList());
        out.say("%s served %d certificate(s) to %s/%s:", target, served.size(), ns, pod);
        for (int i = 0; i < served.size(); i++)
            out.say("  #%d %s (issuer %s)%s", i + 1, Pki.name(served.get(i)), Pki.goName(Pki.issuerDer(served.get(i))),
                    ServedChain.identity(served.get(i)));
        String broken = Pki.chainProblem(Pki.ChainRules.STRICT, served, root, new Date(), "the served");
        out.put("leadsToRoot", broken == null);
        if (broken != null)
            throw Fail.failed("the chain " + target + " serves does not lead to the root '" + Pki.name(root) + "': " + broken,
                    "check istiod runs with the uploaded chain (verify-ca) and restart the workloads so their sidecars get new certificates");
        out.say("the chain leads to the root '%s'%s", Pki.name(root), rootFile == null ? " on the HSM" : "");
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new VerifyMtls()).execute(args));
    }
}
