package asmhsm;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBindingBuilder;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the procedure's preparation steps create in a cluster, once: k8s-vault-prep (namespace,
 * reviewer binding and token Secret), control-plane-prep (istiod's namespace, the Vault CA
 * ConfigMap), istiod-service (the Service per revision) and istiod's service account. The steps
 * apply these objects, status checks them, teardown removes them. Names are the guide's (the
 * constants below); k8s-vault-prep and control-plane-prep may name the two namespaces and the binding.
 */
public record KubeLayout(String vaultNamespace, String reviewerBinding, String istioNamespace) {
    /** The names the guide gives to what k8s-vault-prep, control-plane-prep and istiod-service create. */
    public static final String VAULT_NAMESPACE = "vault";
    public static final String TOKENREVIEW_BINDING = "role-tokenreview-binding";
    public static final String AUTH_DELEGATOR_ROLE = "system:auth-delegator";
    public static final String TOKENREVIEW_SA = "default";
    public static final String TOKENREVIEW_SECRET = "default-token";
    public static final String ISTIO_NAMESPACE = "istio-system";
    public static final String ISTIOD_SA = "istiod-service-account";
    public static final String VAULT_CA_CONFIGMAP = "vault-tls-cert";
    public static final String VAULT_CA_KEY = "cert";
    public static final String ISTIOD_SERVICE = "istiod";
    public static final String TOKEN_TYPE = "kubernetes.io/service-account-token";
    public static final String SA_ANNOTATION = "kubernetes.io/service-account.name";
    public static final KubeLayout GUIDE = new KubeLayout(VAULT_NAMESPACE, TOKENREVIEW_BINDING, ISTIO_NAMESPACE);

    /** Refuses (exit 2) a Vault namespace or reviewer binding name the API server would refuse, before anything is made. */
    public KubeLayout requireReviewerNames() {
        if (!vaultNamespace.matches(Opts.DNS_LABEL))
            throw Fail.badInput("namespace '" + vaultNamespace + "' is not a valid Kubernetes name", "use lower-case letters, digits and dashes");
        if (!reviewerBinding.matches("[a-z0-9:]([-a-z0-9.:]{0,251}[a-z0-9])?"))
            throw Fail.badInput("binding name '" + reviewerBinding + "' is not a valid Kubernetes name", "use lower-case letters, digits, dashes, dots");
        return this;
    }

    public Namespace vaultNs() { return Kube.namespace(vaultNamespace); }
    public Namespace istioNs() { return Kube.namespace(istioNamespace); }

    /** Lets Vault's reviewer account (vault/default) create TokenReviews. */
    public ClusterRoleBinding reviewerBindingObject() {
        return new ClusterRoleBindingBuilder()
                .withNewMetadata().withName(reviewerBinding).endMetadata()
                .withNewRoleRef().withApiGroup("rbac.authorization.k8s.io").withKind("ClusterRole").withName(AUTH_DELEGATOR_ROLE).endRoleRef()
                .addNewSubject().withKind("ServiceAccount").withName(TOKENREVIEW_SA).withNamespace(vaultNamespace).endSubject()
                .build();
    }

    /** The reviewer's long-lived token, filled in by the token controller. */
    public Secret reviewerSecret() {
        return new SecretBuilder()
                .withNewMetadata().withName(TOKENREVIEW_SECRET).withNamespace(vaultNamespace)
                .addToAnnotations(SA_ANNOTATION, TOKENREVIEW_SA).endMetadata()
                .withType(TOKEN_TYPE).build();
    }

    /** The CA istiod's Vault client trusts, as `kubectl create configmap --from-file=./cert` makes it. */
    public ConfigMap vaultCa(String pem) {
        return new ConfigMapBuilder().withNewMetadata().withName(VAULT_CA_CONFIGMAP).withNamespace(istioNamespace).endMetadata()
                .addToData(VAULT_CA_KEY, pem).build();
    }

    /**
     * The guide's Service {@code istiod} ("Configura el webhook de validación"), so that the
     * validating webhook finds istiod of the given revision, e.g. asm-198-6. istiod-service and
     * install-asm both apply exactly this object.
     */
    public Service istiodService(String revision) {
        Map<String, String> labels = new LinkedHashMap<>();
        labels.put("istio.io/rev", revision);
        labels.put("app", "istiod");
        labels.put("istio", "pilot");
        labels.put("release", "istio");
        Map<String, String> selector = new LinkedHashMap<>();
        selector.put("app", "istiod");
        selector.put("istio.io/rev", revision);
        return new ServiceBuilder()
                .withNewMetadata().withName(ISTIOD_SERVICE).withNamespace(istioNamespace).withLabels(labels).endMetadata()
                .withNewSpec()
                .withPorts(port(15010, "grpc-xds", null), port(15012, "https-dns", null),
                        port(443, "https-webhook", 15017), port(15014, "http-monitoring", null))
                .withSelector(selector)
                .endSpec().build();
    }

    private static ServicePort port(int port, String name, Integer target) {
        ServicePort p = new ServicePort();
        p.setPort(port);
        p.setName(name);
        p.setProtocol("TCP");
        if (target != null) p.setTargetPort(new IntOrString(target));
        return p;
    }

    public ServiceAccount istiodAccount() {
        return new ServiceAccountBuilder().withNewMetadata().withName(ISTIOD_SA).withNamespace(istioNamespace).endMetadata().build();
    }

    // ------------------------------------------------------------ checks (status)

    public Checklist.Check binding(ClusterRoleBinding b) {
        String fix = "k8s-vault-prep", who = vaultNamespace + "/" + TOKENREVIEW_SA;
        if (b == null) return Checklist.Check.missing("no ClusterRoleBinding " + reviewerBinding, fix);
        if (!AUTH_DELEGATOR_ROLE.equals(b.getRoleRef().getName()) || b.getSubjects() == null || b.getSubjects().stream().noneMatch(s ->
                "ServiceAccount".equals(s.getKind()) && TOKENREVIEW_SA.equals(s.getName()) && vaultNamespace.equals(s.getNamespace())))
            return Checklist.Check.wrong(reviewerBinding + " does not bind " + who + " to " + AUTH_DELEGATOR_ROLE, fix);
        return Checklist.Check.done(who + " may create TokenReviews (" + AUTH_DELEGATOR_ROLE + ")");
    }

    /** Whether the Secret is a service-account token of the reviewer account. */
    public static boolean isReviewerToken(Secret s) {
        return TOKEN_TYPE.equals(s.getType()) && TOKENREVIEW_SA.equals(accountOf(s));
    }

    /** The service account a token Secret is for (its annotation), or null. */
    public static String accountOf(Secret s) {
        var a = s.getMetadata().getAnnotations();
        return a == null ? null : a.get(SA_ANNOTATION);
    }

    public Checklist.Check tokenSecret(Secret t) {
        if (t == null) return Checklist.Check.missing("no Secret " + vaultNamespace + "/" + TOKENREVIEW_SECRET, "k8s-vault-prep");
        boolean hasToken = t.getData() != null && t.getData().containsKey("token");
        if (!TOKEN_TYPE.equals(t.getType()) || !hasToken)
            return Checklist.Check.wrong(TOKENREVIEW_SECRET + " is " + t.getType() + (hasToken ? "" : " without a token"),
                    "delete it and run k8s-vault-prep (the token controller fills a service-account-token Secret)");
        return Checklist.Check.done("service-account token of " + vaultNamespace + "/" + TOKENREVIEW_SA);
    }

    /** The ConfigMap against the layout, and against VAULT_CACERT when that file is given. */
    public Checklist.Check vaultCaCheck(ConfigMap cm, java.nio.file.Path vaultCaCert) {
        String fix = "control-plane-prep", name = VAULT_CA_CONFIGMAP;
        String pem = cm == null || cm.getData() == null ? null : cm.getData().get(VAULT_CA_KEY);
        if (cm == null) return Checklist.Check.missing("no ConfigMap " + istioNamespace + "/" + name, fix);
        if (pem == null) return Checklist.Check.wrong(name + " has no key " + VAULT_CA_KEY, fix);
        List<X509Certificate> certs;
        try {
            certs = Pki.certificates(Pki.pemBlocks(pem, "ConfigMap " + name), "ConfigMap " + name);
        } catch (Fail f) {
            return Checklist.Check.wrong(f.getMessage(), fix);
        }
        if (vaultCaCert != null && java.nio.file.Files.isRegularFile(vaultCaCert)) {
            List<X509Certificate> want = Pki.certificates(vaultCaCert, "VAULT_CACERT");
            boolean same = want.size() == certs.size();
            for (int i = 0; same && i < want.size(); i++) same = Pki.sameCert(want.get(i), certs.get(i));
            if (!same) return Checklist.Check.wrong(name + " holds another certificate than VAULT_CACERT (" + vaultCaCert + ")", fix);
        }
        return Checklist.Check.done(name + "/" + VAULT_CA_KEY + ": '" + Pki.name(certs.get(0)) + "'");
    }

    /** The istiod Service's finding; its revision is read with Istio.revisionOf. */
    public Checklist.Check istiodServiceCheck(Service svc) {
        String rev = svc == null ? null : Istio.revisionOf(svc);
        if (svc == null) return Checklist.Check.missing("no Service " + istioNamespace + "/" + ISTIOD_SERVICE, "istiod-service");
        if (rev == null) return Checklist.Check.wrong("Service istiod has no " + Istio.REV_LABEL + " label: the validating webhook cannot find it", "istiod-service");
        return Checklist.Check.done("Service istiod, revision " + rev);
    }

    // ------------------------------------------------------------ teardown

    /**
     * What teardown removes, in the reverse of the steps' order (istiod-service, control-plane-prep,
     * k8s-vault-prep), of what is there now. A namespace goes only when it then holds nothing but what
     * the cluster makes in every namespace (the default service account, kube-root-ca.crt): Vault itself
     * or workloads may live in it. grant-admin's binding stays: it is the operator's own access, not
     * the cluster suffix's.
     */
    public List<HasMetadata> removals(Kube k) {
        List<HasMetadata> plan = new ArrayList<>();
        Service svc = k.live(istiodService(Istio.GUIDE_REVISION));
        if (svc != null && isOurs(svc)) plan.add(svc);
        ConfigMap cm = k.live(vaultCa(""));
        if (cm != null) plan.add(cm);
        if (onlyOurs(k, istioNamespace, plan)) plan.add(k.live(istioNs()));
        Secret token = k.live(reviewerSecret());
        if (token != null && TOKEN_TYPE.equals(token.getType())) plan.add(token);
        ClusterRoleBinding crb = k.live(reviewerBindingObject());
        if (crb != null && binding(crb).isDone()) plan.add(crb);
        if (onlyOurs(k, vaultNamespace, plan)) plan.add(k.live(vaultNs()));
        return plan;
    }

    /** The Service is istiod-service's: it selects app=istiod (whatever its revision). */
    private static boolean isOurs(Service svc) {
        var sel = svc.getSpec() == null ? null : svc.getSpec().getSelector();
        return sel != null && "istiod".equals(sel.get("app"));
    }

    /** Whether the namespace exists and, the planned removals aside, holds only what the cluster puts in every namespace. */
    private static boolean onlyOurs(Kube k, String ns, List<HasMetadata> planned) {
        if (k.live(Kube.namespace(ns)) == null) return false;
        var c = k.client;
        List<String> others = new ArrayList<>();
        java.util.function.Predicate<HasMetadata> isPlanned = o -> planned.stream().anyMatch(p -> p.getKind().equals(o.getKind())
                && p.getMetadata().getName().equals(o.getMetadata().getName()));
        k.call(() -> c.pods().inNamespace(ns).list().getItems(), "list the pods of " + ns).forEach(p -> others.add("Pod " + p.getMetadata().getName()));
        k.call(() -> c.apps().deployments().inNamespace(ns).list().getItems(), "list the Deployments of " + ns)
                .forEach(d -> others.add("Deployment " + d.getMetadata().getName()));
        k.call(() -> c.services().inNamespace(ns).list().getItems(), "list the Services of " + ns).stream().filter(isPlanned.negate())
                .forEach(s -> others.add("Service " + s.getMetadata().getName()));
        k.call(() -> c.secrets().inNamespace(ns).list().getItems(), "list the Secrets of " + ns).stream().filter(isPlanned.negate())
                .filter(s -> !isReviewerToken(s)).forEach(s -> others.add("Secret " + s.getMetadata().getName()));
        k.call(() -> c.configMaps().inNamespace(ns).list().getItems(), "list the ConfigMaps of " + ns).stream().filter(isPlanned.negate())
                .filter(m -> !m.getMetadata().getName().equals("kube-root-ca.crt")).forEach(m -> others.add("ConfigMap " + m.getMetadata().getName()));
        k.call(() -> c.serviceAccounts().inNamespace(ns).list().getItems(), "list the service accounts of " + ns).stream()
                .filter(a -> !a.getMetadata().getName().equals("default") && !a.getMetadata().getName().equals(ISTIOD_SA))
                .forEach(a -> others.add("ServiceAccount " + a.getMetadata().getName()));
        return others.isEmpty();
    }
}
