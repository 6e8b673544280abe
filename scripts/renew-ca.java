///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "renew-ca", mixinStandardHelpOptions = true,
        description = "Renew the Istio CA certificate with the same key: sign istiod's CSR (Secret istio-ca-cert-csr) again with the"
                + " root's key in the HSM, replace Secret istio-ca-cert, roll istiod's pods (as kubectl rollout restart: new pods"
                + " before the old go), load the root into each new pod's plugin when it has no root hook, and wait until each new"
                + " istiod loaded the new chain. Does nothing while the certificate has longer left than --renew-before.")
class RenewCa extends Step {
    @Mixin Opts.Kube kube;
    /** istiod's slot: the KEK that opens its CSR, and the root under the CA ID. */
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.IstioNamespace ns;
    @Mixin Opts.CaId ca;
    @Mixin Opts.Kek kek;
    @Mixin Opts.RootSlot rootSlot;
    @Mixin Opts.CaDays validity;

    @Option(names = "--renew-before", defaultValue = "30d", paramLabel = "DURATION", converter = Opts.DaysOrDurationConverter.class,
            description = "Renew only when the certificate has less than this left, e.g. 30d, 720h (default ${DEFAULT-VALUE}).")
    Duration renewBefore;

    @Option(names = "--force", description = "Renew now, however long the certificate has left.")
    boolean force;

    @Option(names = "--revision", paramLabel = "REV", converter = Opts.RevisionConverter.class, description = "Restart only istiod of this revision (default: every istiod Deployment).")
    String revision;

    @Option(names = "--timeout", defaultValue = "10m", paramLabel = "DURATION", converter = Opts.DurationConverter.class,
            description = "How long to wait for the new istiod pods to load the chain (default ${DEFAULT-VALUE}).")
    Duration timeout;

    @Option(names = {"-o", "--output"}, paramLabel = "CHAIN_PEM", description = "Also write the new chain here, as sign-csr does (the file later signing steps compare with).")
    Path output;

    /** The annotation renew-ca leaves on Secret istio-ca-cert: when it replaced the chain, so that a run stopped before the restart is finished by the next. */
    static final String RENEWED_AT = "asm-hsm/renewed-at";

    @Override
    protected void run() throws Exception {
        Kube k = kube();
        CaSecret current = CaSecret.read(k, ns.name);
        X509Certificate old = current.require("there is no CA certificate to renew", "sign istiod's first CSR: decrypt-csr, sign-csr, upload-chain").get(0);
        Instant expires = old.getNotAfter().toInstant();
        Duration left = Duration.between(Instant.now(), expires);
        out.put("namespace", ns.name).put("notAfter", expires.toString()).put("daysLeft", left.toDays());
        out.say("Secret %s/%s: CA '%s' (%s), valid until %s (%d days left)", ns.name, Istio.CA_CERT_SECRET, Pki.name(old), Pki.identity(old).text(), expires, left.toDays());
        List<Deployment> deployments = Rollout.deployments(k, ns.name, revision);
        if (!force && left.compareTo(renewBefore) > 0) {
            out.put("renewed", false);
            List<Deployment> behind = current.notRestartedSince(deployments, RENEWED_AT);
            if (behind.isEmpty()) {
                out.say("more than --renew-before %s left: nothing to do (--force renews now)", Opts.DaysOrDurationConverter.text(renewBefore));
                return;
            }
            // an earlier run replaced the chain but did not restart istiod: finish that
            out.say("renew-ca replaced the chain at %s, but istiod was not restarted since: restarting it now", current.annotation(RENEWED_AT));
            if (out.dryRun()) out.change("restart Deployment(s) " + Rollout.names(behind) + " and wait for '" + IstiodLog.LOG_CA_LOADED + "'");
            else restartAndWait(k, behind, current);
            return;
        }
        Hsm hsm = hsm();
        if (hsm == null) throw Fail.failed("the embedded HSM token does not exist yet, so it holds no KEK", "run gen-kek and import-ca first");
        CaSecret.Renewal renewal = current.renewal(k, out, hsm, kek.id, ca.id, validity.days);
        if (out.dryRun()) {
            out.change("sign istiod's CSR again with key '" + rootSlot.keyLabel + "' (" + validity.days + " days, until " + renewal.validity().notAfter() + ")");
            out.change("replace the chain in Secret " + ns.name + "/" + Istio.CA_CERT_SECRET);
            out.change("restart Deployment(s) " + String.join(", ", Rollout.names(deployments)) + " (rollout), load the root into new pods without the root hook,"
                    + " and wait for '" + IstiodLog.LOG_CA_LOADED + "'");
            return;
        }
        Opts.Pkcs11 other = rootSlot.slot(p11);
        List<X509Certificate> chain;
        try (Hsm rootHsm = other == null ? null : Hsm.open(other, out)) {
            chain = renewal.sign(other == null ? hsm : rootHsm, rootSlot.keyLabel);
        }
        X509Certificate renewed = chain.get(0);
        out.put("renewed", true).put("newNotAfter", renewed.getNotAfter().toInstant().toString()).put("identity", Pki.identity(renewed).json());
        out.change("signed a new CA certificate for istiod's key: " + Pki.identity(renewed).text());
        if (output != null) Pki.writePem(out, output, Pki.chainPem(chain), true, "CA certificate and root");
        restartAndWait(k, deployments, current.replace(k, out, chain, RENEWED_AT));
    }

    private void restartAndWait(Kube k, List<Deployment> deployments, CaSecret chain) throws InterruptedException {
        String at = Rollout.restart(k, deployments);
        out.change("restarted Deployment(s) " + String.join(", ", Rollout.names(deployments)) + " (rollout: new pods first, the old ones serve until then)");
        out.put("pods", Rollout.awaitLoaded(k, out, Rollout.names(deployments), at, chain, p -> loadRoot(k, p, chain), timeout));
        out.say("every new istiod pod loaded the chain; workloads keep trusting the same root '%s', so their certificates still verify", Pki.name(chain.root()));
        out.next("verify-ca" + out.given(Opts.Kube.class) + " (and verify-mtls from a workload)");
    }

    /** The root in a new pod's plugin: its postStart hook's work, or load-root's (the plugin's import-ca) when it has no hook. */
    private String loadRoot(Kube k, Pod p, CaSecret chain) {
        if (PluginRootHook.rootHookProblem(p, ca.id) == null) return "postStart hook";
        String name = p.getMetadata().getName();
        if (KmsPlugin.loadRootInPod(k, ns.name, name, Pki.pem(chain.ca()), Pki.pem(chain.root()), ca.id, "the renewed certificate", false)
                == KmsPlugin.RootState.LOADED) return "already loaded";
        out.change("loaded the root into pod " + name + "'s " + Istio.HSM_PLUGIN_CONTAINER + " (it has no root hook)");
        return "import-ca";
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new RenewCa()).execute(args));
    }
}
