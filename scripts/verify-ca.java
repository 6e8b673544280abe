///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Secret;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "verify-ca", mixinStandardHelpOptions = true,
        description = "Check istiod loaded the CA chain of Secret istio-ca-cert, that the chain ends at the root in the HSM, "
                + "and that the istiod pods are 3/3 (guide: `kubectl logs ISTIOD_POD -c discovery | grep \"CA cert:\"`).")
class VerifyCa extends Step {
    @Mixin Opts.Kube kube;
    @Mixin Opts.Pkcs11 p11;

    @Mixin Opts.CaId ca;

    @Option(names = "--root-cert", paramLabel = "ROOT_PEM",
            description = "Compare with this root certificate instead of reading it from the HSM.")
    Path rootFile;

    @Option(names = "--pod", paramLabel = "ISTIOD_POD", description = "Check only this istiod pod (default: all of them).")
    String podName;

    @Override
    protected void run() throws Exception {
        if (rootFile != null) Pki.single(rootFile, "root certificate"); // a bad file is bad input, before anything is read
        Kube k = kube();
        List<X509Certificate> chain = secretChain(k);
        X509Certificate root = Hsm.trustedRoot(rootFile, this::hsm, ca.id);
        out.put("root", Pki.name(root)).put("chain", chain.stream().map(Pki::name).toList());
        if (!Pki.sameCert(chain.get(chain.size() - 1), root))
            throw Fail.failed("the chain in Secret " + Istio.CA_CERT_SECRET + " ends at '" + Pki.name(chain.get(chain.size() - 1))
                    + "', not at the root '" + Pki.name(root) + "'" + (rootFile == null ? " on the HSM" : " of " + rootFile),
                    "sign the CSR with the root imported in the HSM (sign-csr), then upload-chain --replace");
        String broken = Pki.chainProblem(Pki.ChainRules.STRICT, chain, root, new Date(), "cert-chain.pem");
        if (broken != null) throw Fail.failed(broken, "sign the CSR again (sign-csr), then upload-chain --replace");
        out.say("Secret %s holds %d certificate(s), CA '%s', ending at the root '%s'", Istio.CA_CERT_SECRET, chain.size(),
                Pki.name(chain.get(0)), Pki.name(root));

        List<Pod> pods = k.call(() -> Istio.istiodPods(k.client), "list the istiod pods");
        if (podName != null) pods = pods.stream().filter(p -> p.getMetadata().getName().equals(podName)).toList();
        if (pods.isEmpty())
            throw podName != null
                    ? Fail.badInput("no istiod pod " + podName + " in " + KubeLayout.ISTIO_NAMESPACE, "list them with: kubectl get pod -l app=istiod -n istio-system")
                    : Fail.failed("no istiod pod in " + KubeLayout.ISTIO_NAMESPACE, "install the mesh first (install-asm)");
        List<String> problems = new ArrayList<>();
        List<Istio.Problem> aborts = new ArrayList<>();
        List<Map<String, Object>> report = new ArrayList<>();
        for (Pod p : pods) report.add(checkPod(k, p, chain, problems, aborts));
        out.put("pods", report);
        if (!problems.isEmpty())
            throw Fail.failed(String.join("; ", problems), aborts.isEmpty()
                    ? "wait for istiod to load the chain (istiod-status --wait); if it refused it, sign-csr and upload-chain again"
                    : aborts.get(0).hint());
        out.say("istiod loaded the chain of %s in %d pod(s), all %d/%d ready: the CA key is the one in the HSM", Istio.CA_CERT_SECRET,
                pods.size(), Istio.ISTIOD_CONTAINERS, Istio.ISTIOD_CONTAINERS);
    }

    private List<X509Certificate> secretChain(Kube k) {
        Secret s = k.call(() -> k.client.secrets().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.CA_CERT_SECRET).get(),
                "read Secret " + Istio.CA_CERT_SECRET);
        String b64 = s == null || s.getData() == null ? null : s.getData().get(Istio.CA_CERT_KEY);
        if (b64 == null)
            throw Fail.failed(s == null ? "Secret " + KubeLayout.ISTIO_NAMESPACE + "/" + Istio.CA_CERT_SECRET + " does not exist"
                    : "Secret " + Istio.CA_CERT_SECRET + " has no key " + Istio.CA_CERT_KEY, "upload the signed chain first (upload-chain)");
        byte[] bytes = Base64.getDecoder().decode(b64);
        List<X509Certificate> chain = Pki.certificates(Pki.pemBlocks(new String(bytes, StandardCharsets.UTF_8), "Secret " + Istio.CA_CERT_SECRET),
                "Secret " + Istio.CA_CERT_SECRET);
        String split = Istio.splitProblem(bytes);
        if (split != null)
            throw Fail.failed("istiod refuses the " + Istio.CA_CERT_KEY + " of Secret " + Istio.CA_CERT_SECRET + " (error spliting the cert chain): " + split,
                    "upload-chain -f cert-chain.pem rewrites it in the form istiod accepts; then restart istiod");
        return chain;
    }

    /** One pod: 3/3 ready, and its discovery log shows exactly the Secret's chain. */
    private Map<String, Object> checkPod(Kube k, Pod p, List<X509Certificate> chain, List<String> problems, List<Istio.Problem> aborts) {
        String name = p.getMetadata().getName();
        int[] ready = Istio.readiness(p);
        String readyText = ready[0] + "/" + ready[1];
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("pod", name);
        r.put("ready", readyText);
        if (ready[1] != Istio.ISTIOD_CONTAINERS)
            problems.add("pod " + name + " has " + ready[1] + " containers, not the HSM install's " + Istio.ISTIOD_CONTAINERS
                    + " (discovery, hsm-plugin, vaultclient): was it installed with values.hsm.enabled=true?");
        else if (ready[0] != ready[1]) problems.add("pod " + name + " is " + readyText + " ready, not " + ready[1] + "/" + ready[1]);
        Istio.LoggedChainCheck logged = Istio.chainInLog(k, p, chain);
        if (!logged.logged()) {
            Istio.Problem abort = logged.abort();
            if (abort != null) aborts.add(abort);
            problems.add("pod " + name + (abort != null ? ": " + abort.what() : " has not logged 'CA cert:' yet"));
            r.put("logged", false);
            if (abort != null) r.put("aborted", abort.what());
            return r;
        }
        List<X509Certificate> seen = logged.seen();
        r.put("logged", true);
        r.put("loggedChain", seen.stream().map(Pki::name).toList());
        r.put("matches", logged.matches());
        if (!logged.matches()) problems.add("pod " + name + " loaded another chain than Secret " + Istio.CA_CERT_SECRET + ": " + logged.difference());
        else out.say("pod %s: %s ready, logged CA cert '%s' and %d more, the same chain as the Secret", name, readyText,
                Pki.name(seen.get(0)), seen.size() - 1);
        return r;
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new VerifyCa()).execute(args));
    }
}
