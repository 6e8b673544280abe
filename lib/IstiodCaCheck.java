package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * verify-ca's checks: Secret istio-ca-cert holds a chain istiod accepts that ends at the trusted root, and
 * each istiod pod is 3/3 ready with exactly that chain in its discovery log.
 */
public final class IstiodCaCheck {
    private IstiodCaCheck() {}

    /** The chain of Secret istio-ca-cert; fails (exit 1) when there is none, or istiod would refuse its form. */
    public static List<X509Certificate> secretChain(Kube k) {
        String secret = Istio.CA_CERT_SECRET, key = Istio.CA_CERT_KEY;
        CaSecret s = CaSecret.read(k, KubeLayout.ISTIO_NAMESPACE);
        if (s.chain() == null)
            throw Fail.failed(s.secret() == null ? "Secret " + KubeLayout.ISTIO_NAMESPACE + "/" + secret + " does not exist"
                    : "Secret " + secret + " has no key " + key, "upload the signed chain first (upload-chain)");
        String split = Istio.splitProblem(Base64.getDecoder().decode(s.secret().getData().get(key)));
        if (split != null)
            throw Fail.failed("istiod refuses the " + key + " of Secret " + secret + " (error spliting the cert chain): " + split,
                    "upload-chain -f cert-chain.pem rewrites it in the form istiod accepts; then restart istiod");
        return s.chain();
    }

    /** Fails (exit 1) unless the chain ends at `root` (`rootWhere`: " on the HSM", " of FILE") and passes istiod's strict checks. */
    public static void requireEndsAt(List<X509Certificate> chain, X509Certificate root, String rootWhere) {
        X509Certificate last = chain.get(chain.size() - 1);
        if (!Pki.sameCert(last, root))
            throw Fail.failed("the chain in Secret " + Istio.CA_CERT_SECRET + " ends at '" + Pki.name(last) + "', not at the root '"
                    + Pki.name(root) + "'" + rootWhere, "sign the CSR with the root imported in the HSM (sign-csr), then upload-chain --replace");
        String broken = Pki.chainProblem(Pki.ChainRules.STRICT, chain, root, new Date(), Istio.CA_CERT_KEY);
        if (broken != null) throw Fail.failed(broken, "sign the CSR again (sign-csr), then upload-chain --replace");
    }

    /** The istiod pods to check: all of them, or only `podName`; fails when there is none. */
    public static List<Pod> pods(Kube k, String podName) {
        List<Pod> pods = k.call(() -> Istio.istiodPods(k.client), "list the istiod pods");
        if (podName != null) pods = pods.stream().filter(p -> p.getMetadata().getName().equals(podName)).toList();
        if (pods.isEmpty())
            throw podName != null
                    ? Fail.badInput("no istiod pod " + podName + " in " + KubeLayout.ISTIO_NAMESPACE, "list them with: kubectl get pod -l app=istiod -n istio-system")
                    : Fail.failed("no istiod pod in " + KubeLayout.ISTIO_NAMESPACE, "install the mesh first (install-asm)");
        return pods;
    }

    /** Each pod's report (the JSON result's "pods"), what is wrong with them, and istiod's aborts among those. */
    public record Result(List<Map<String, Object>> pods, List<String> problems, List<Istio.Problem> aborts) {
        /** Fails (exit 1) naming every problem, with the first abort's fix when istiod aborted. */
        public void requireNone() {
            if (!problems.isEmpty())
                throw Fail.failed(String.join("; ", problems), aborts.isEmpty()
                        ? "wait for istiod to load the chain (istiod-status --wait); if it refused it, sign-csr and upload-chain again"
                        : aborts.get(0).hint());
        }
    }

    /** Checks each pod: 3/3 ready, and its discovery log shows exactly `chain`; says so of each pod that does. */
    public static Result check(Kube k, Out out, List<Pod> pods, List<X509Certificate> chain) {
        Result result = new Result(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
        for (Pod p : pods) result.pods.add(checkPod(k, out, p, chain, result));
        return result;
    }

    private static Map<String, Object> checkPod(Kube k, Out out, Pod p, List<X509Certificate> chain, Result result) {
        String name = p.getMetadata().getName();
        int[] ready = Pods.readiness(p);
        String readyText = ready[0] + "/" + ready[1];
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("pod", name);
        r.put("ready", readyText);
        if (ready[1] != Istio.ISTIOD_CONTAINERS)
            result.problems.add("pod " + name + " has " + ready[1] + " containers, not the HSM install's " + Istio.ISTIOD_CONTAINERS
                    + " (discovery, hsm-plugin, vaultclient): was it installed with values.hsm.enabled=true?");
        else if (ready[0] != ready[1]) result.problems.add("pod " + name + " is " + readyText + " ready, not " + ready[1] + "/" + ready[1]);
        IstiodLog.LoggedChainCheck logged = IstiodLog.chainInLog(k, p, chain);
        if (!logged.logged()) {
            Istio.Problem abort = logged.abort();
            if (abort != null) result.aborts.add(abort);
            result.problems.add("pod " + name + (abort != null ? ": " + abort.what() : " has not logged 'CA cert:' yet"));
            r.put("logged", false);
            if (abort != null) r.put("aborted", abort.what());
            return r;
        }
        List<X509Certificate> seen = logged.seen();
        r.put("logged", true);
        r.put("loggedChain", seen.stream().map(Pki::name).toList());
        r.put("matches", logged.matches());
        if (!logged.matches())
            result.problems.add("pod " + name + " loaded another chain than Secret " + Istio.CA_CERT_SECRET + ": " + logged.difference());
        else out.say("pod %s: %s ready, logged CA cert '%s' and %d more, the same chain as the Secret", name, readyText,
                Pki.name(seen.get(0)), seen.size() - 1);
        return r;
    }
}
