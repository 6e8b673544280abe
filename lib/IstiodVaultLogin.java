package asmhsm;

import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.authentication.TokenRequestBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatus;
import io.fabric8.kubernetes.api.model.authentication.UserInfo;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.github.jopenlibs.vault.VaultException;
import io.github.jopenlibs.vault.response.AuthResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import tools.jackson.databind.JsonNode;

/**
 * What istiod's Vault client does with a suffix's VaultLayout, done before istiod exists (vault-verify):
 * a token of istiod's service account, a login at the layout's auth path and role, a read of the HSM
 * secret. When a link breaks, the failure names which one (path, policy, role binding names,
 * TokenReview permission) and how to repair it.
 */
final class IstiodVaultLogin {
    /** The step whose clients it uses (Step#kube, #vaultAs, #vault): asm run and asm session share them. */
    private final Step step;
    private final Out out;
    private final String suffix;
    /** k8s-vault-prep's folder for the suffix: only read to explain a failed TokenReview. */
    private final Path dir;

    /** For `step`, which takes the Kube and Vault options. */
    IstiodVaultLogin(Step step, String suffix, Path dir) {
        this.step = step;
        this.out = step.out;
        this.suffix = suffix;
        this.dir = dir;
    }

    /**
     * Logs in as istiod will, reads the HSM secret and revokes the token; fails naming the broken link.
     * With createSa, makes istiod's namespace and service account first when they are missing.
     */
    public void verify(boolean createSa) {
        VaultLayout layout = VaultLayout.of(suffix);
        String secretPath = layout.secretPath(), policy = layout.policy(), login = layout.loginPath();
        String account = VaultLayout.boundAccount();
        out.put("loginPath", login).put("role", VaultLayout.ROLE).put("secretPath", secretPath).put("serviceAccount", account);
        Vault anonymous = step.vaultAs(null);   // no admin token: istiod has none either
        Kube k = step.kube();
        ServiceAccount sa = KubeLayout.GUIDE.istiodAccount();
        if (k.live(sa) == null) {
            if (!createSa)
                throw Fail.failed("service account " + account + " does not exist yet",
                        "create it (kubectl create namespace " + KubeLayout.ISTIO_NAMESPACE + "; kubectl -n " + KubeLayout.ISTIO_NAMESPACE
                                + " create serviceaccount " + KubeLayout.ISTIOD_SA + ") or re-run with --create-sa");
            k.apply(KubeLayout.GUIDE.istioNs(), out);
            k.apply(sa, out);
        }
        anonymous.requireUnsealed("log in at " + login);
        if (out.dryRun()) {
            out.say("would log in at %s as %s (role %s), read %s and revoke the token", login, account, VaultLayout.ROLE, secretPath);
            return;
        }
        String jwt;
        try {
            jwt = k.client.serviceAccounts().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(KubeLayout.ISTIOD_SA)
                    .tokenRequest(new TokenRequestBuilder().withNewSpec().withExpirationSeconds(600L).endSpec().build())
                    .getStatus().getToken();
        } catch (KubernetesClientException e) {
            throw k.explain(e, "request a token for " + account + " (TokenRequest)");
        }

        AuthResponse auth;
        try {
            // the driver takes the auth path whole: POST /v1/<authPath>/login
            auth = anonymous.api.auth().loginByKubernetes(VaultLayout.ROLE, jwt, "auth/" + layout.authPath());
        } catch (VaultException e) {
            Fail f = loginFailure(anonymous, e, jwt, suffix, account);
            // a hint to rewrite the reviewer JWT would move the suffix to this cluster: first, is Vault's config for it?
            Fail elsewhere = f.getMessage().startsWith(TOKEN_REVIEW) ? vaultOnAnotherCluster(k, suffix) : null;
            if (elsewhere != null) throw elsewhere;
            throw f.getMessage().startsWith(TOKEN_REVIEW) ? reviewerFailure(k, suffix, f) : f;
        }
        Vault istiod = step.vaultAs(auth.getAuthClientToken());
        try {
            List<String> policies = auth.getAuthPolicies();
            out.say("logged in at %s as %s (role %s, policies %s, ttl %ds)", login, account, VaultLayout.ROLE, policies,
                    auth.getAuthLeaseDuration());
            out.put("policies", policies).put("ttlSeconds", auth.getAuthLeaseDuration());
            if (policies == null || !policies.contains(policy))
                throw Fail.failed("broken link: policy. Role " + VaultLayout.ROLE + " gives tokens the policies " + policies + ", not " + policy,
                        "run vault-setup --cluster-suffix " + suffix + " (it sets token_policies of role " + VaultLayout.ROLE + ")");
            JsonNode secret;
            try {
                secret = istiod.readOrThrow(secretPath);
            } catch (VaultException e) {
                if (e.getHttpStatusCode() != 403) throw istiod.explain(e, "read " + secretPath);
                throw Fail.failed("broken link: policy. The istiod token may not read " + secretPath + " (403 " + Vault.message(e) + ")",
                        "policy " + policy + " must grant read on " + secretPath + ": run vault-setup --cluster-suffix " + suffix);
            }
            if (secret == null)
                throw Fail.failed("broken link: path. Nothing is stored at " + secretPath,
                        "run vault-setup --cluster-suffix " + suffix + " (it writes the HSM credentials there)");
            List<String> missing = new ArrayList<>();
            for (String key : VaultLayout.HSM_KEYS) if (secret.path(key).asString("").isBlank()) missing.add(key);
            if (!missing.isEmpty())
                throw Fail.failed("broken link: path. " + secretPath + " lacks " + missing + " (istiod's vault client needs "
                        + VaultLayout.HSM_KEYS + ")", "run vault-setup --cluster-suffix " + suffix + " with all four files");
            out.say("read %s: %s present (values not shown)", secretPath, String.join(", ", VaultLayout.HSM_KEYS));
            out.put("keys", VaultLayout.HSM_KEYS);
        } finally {
            try {
                istiod.api.auth().revokeSelf();
                out.say("revoked the test token");
            } catch (VaultException e) {
                out.warn("could not revoke the test token (it expires by itself): " + Vault.message(e));
            }
        }
        out.say("OK: istiod will be able to read its HSM credentials from Vault");
    }

    static final String TOKEN_REVIEW = "broken link: TokenReview permission. ";

    /**
     * Whether auth/asm-<suffix>/hsm/config reviews tokens with another cluster's API server than the
     * current context's (read with the operator's token, when there is one that may): the refusal, or null.
     * Only asked when no folder here records the suffix's cluster: with one, connecting has checked
     * that this is the suffix's cluster, and Vault is then what is wrong (its files repair it).
     */
    private Fail vaultOnAnotherCluster(Kube k, String suffix) {
        if (ClusterId.recorded(new ClusterId.Expected(suffix, dir)) != null) return null;
        String configPath = VaultLayout.of(suffix).authConfigPath();
        String host;
        try {
            JsonNode config = step.vault().readOrThrow(configPath);
            host = config == null ? "" : config.path("kubernetes_host").asString("").replaceAll("/+$", "");
        } catch (VaultException | Fail cannotTell) {
            return null;    // no token, or one that may not read it: the other explanations stand
        }
        if (host.isEmpty() || host.equals(k.server())) return null;
        return new ClusterId.Mismatch(configPath + " reviews tokens with the API server " + host + ", but the current context"
                + (k.context == null ? "" : " '" + k.context + "'") + " is " + k.server() + ": suffix " + suffix + " belongs to another cluster",
                "pass the --context of the cluster of " + suffix + " (kubectl config get-contexts), or the suffix of this cluster");
    }

    /**
     * Vault does not say why its TokenReview failed. If k8s-vault-prep's reviewer JWT is here, the API server
     * can: is that token still valid, and may its account create TokenReviews?
     */
    private Fail reviewerFailure(Kube k, String suffix, Fail general) {
        Path jwtFile = Vault.ReviewerFiles.in(dir, suffix).jwt();
        if (!Files.isRegularFile(jwtFile)) return general;
        String again = "re-run k8s-vault-prep --cluster-suffix " + suffix + ", then vault-setup --cluster-suffix " + suffix
                + " --rewrite-reviewer-jwt";
        try {
            String jwt = new String(Env.readSecret(jwtFile, "token reviewer JWT", null), StandardCharsets.UTF_8).trim();
            TokenReviewStatus review = k.client.authentication().v1().tokenReviews()
                    .create(new TokenReviewBuilder().withNewSpec().withToken(jwt).endSpec().build()).getStatus();
            if (!Boolean.TRUE.equals(review.getAuthenticated()))
                return Fail.failed(TOKEN_REVIEW + "The token reviewer JWT in " + jwtFile + " is no longer valid ("
                        + review.getError() + ")", again);
            UserInfo reviewer = review.getUser();
            boolean allowed = Boolean.TRUE.equals(k.client.authorization().v1().subjectAccessReview().create(
                    new SubjectAccessReviewBuilder().withNewSpec().withUser(reviewer.getUsername()).withGroups(reviewer.getGroups())
                            .withUid(reviewer.getUid()).withNewResourceAttributes().withGroup("authentication.k8s.io")
                            .withResource("tokenreviews").withVerb("create").endResourceAttributes().endSpec().build())
                    .getStatus().getAllowed());
            if (!allowed)
                return Fail.failed(TOKEN_REVIEW + reviewer.getUsername() + " (the reviewer of " + jwtFile + ") may not create TokenReviews",
                        "bind it to ClusterRole " + KubeLayout.AUTH_DELEGATOR_ROLE + ": re-run k8s-vault-prep --cluster-suffix " + suffix);
            return Fail.failed(TOKEN_REVIEW + "The reviewer of " + jwtFile + " (" + reviewer.getUsername() + ") is valid and allowed: Vault "
                    + "holds another JWT, or cannot reach or trust the API server at its kubernetes_host", "give Vault the files of "
                    + jwtFile.getParent() + ": vault-setup --cluster-suffix " + suffix + " --rewrite-reviewer-jwt");
        } catch (KubernetesClientException | Fail notSure) {
            return general;   // the operator may not review tokens: Vault's answer is all there is
        }
    }

    /** Says which link of the chain broke, from what Vault answered to the login. */
    private static Fail loginFailure(Vault v, VaultException e, String jwt, String suffix, String account) {
        int code = e.getHttpStatusCode();
        if (Vault.isNoSuchNamespace(e)) return v.noSuchNamespace();
        String said = Vault.message(e), low = said.toLowerCase(Locale.ROOT);
        String rerunPrep = "re-run k8s-vault-prep --cluster-suffix " + suffix + ", then vault-setup --cluster-suffix " + suffix
                + " --rewrite-reviewer-jwt";
        if (code <= 0) return v.explain(e, "log in at " + VaultLayout.of(suffix).loginPath());
        if (low.contains("invalid role name"))
            return Fail.failed("broken link: role binding names. There is no role " + VaultLayout.ROLE + " at auth/" + VaultLayout.of(suffix).authPath()
                    + " (" + said + ")", "run vault-setup --cluster-suffix " + suffix);
        if (low.contains("not authorized") && (low.contains("service account") || low.contains("namespace")))
            return Fail.failed("broken link: role binding names. Role " + VaultLayout.ROLE + " is not bound to " + account + " (" + said + ")",
                    "run vault-setup --cluster-suffix " + suffix + " (it binds " + account + ")");
        if (low.contains("tokenreview") || low.contains("service account unauthorized") || low.contains("token_reviewer")
                || low.contains("unauthorized") || low.contains("forbidden"))
            return Fail.failed(TOKEN_REVIEW + "Vault could not review the token with the Kubernetes API ("
                    + said + ")", "the reviewer account needs ClusterRole " + KubeLayout.AUTH_DELEGATOR_ROLE + " and a current JWT: " + rerunPrep);
        if (low.contains("x509") || low.contains("certificate") || low.contains("connection refused") || low.contains("no such host")
                || low.contains("timeout") || low.contains("dial tcp"))
            return Fail.failed(TOKEN_REVIEW + "Vault cannot reach or trust the Kubernetes API (" + said + ")",
                    "kubernetes_host and kubernetes_ca_cert of auth/" + VaultLayout.of(suffix).authPath() + "/config come from k8s-vault-prep: " + rerunPrep);
        if (code == 403 && low.contains("permission denied")) {
            // Vault says only "permission denied" both when nothing is mounted there and when the Kubernetes API refused
            // its TokenReview. A role that cannot exist tells them apart: only a mounted kubernetes auth names the role.
            boolean mounted;
            try {
                v.api.auth().loginByKubernetes("asm-hsm-no-such-role", jwt, "auth/" + VaultLayout.of(suffix).authPath());
                mounted = true;
            } catch (VaultException probe) {
                mounted = probe.getHttpStatusCode() != 403;
            }
            if (mounted)
                return Fail.failed(TOKEN_REVIEW + "Vault's kubernetes auth at auth/" + VaultLayout.of(suffix).authPath() + " answered \"permission denied\" "
                        + "to a valid token of " + account + ": its TokenReview call to the Kubernetes API failed",
                        "the reviewer account needs ClusterRole " + KubeLayout.AUTH_DELEGATOR_ROLE + " and Vault a current JWT, kubernetes_host "
                                + "and CA: " + rerunPrep);
        }
        if (code == 403 || code == 404 || low.contains("no handler") || low.contains("unsupported path"))
            return Fail.failed("broken link: path. No kubernetes auth answers at " + VaultLayout.of(suffix).loginPath() + " (" + code + " " + said + ")",
                    "run vault-setup --cluster-suffix " + suffix + " (it enables kubernetes auth at auth/" + VaultLayout.of(suffix).authPath() + ")");
        return v.explain(e, "log in at " + VaultLayout.of(suffix).loginPath() + " as " + account);
    }

}
