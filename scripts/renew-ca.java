///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Duration;
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

    @Override
    protected void run() throws Exception {
        Kube k = kube();
        CaSecret current = CaSecret.read(k, ns.name);
        current.require("there is no CA certificate to renew", "sign istiod's first CSR: decrypt-csr, sign-csr, upload-chain");
        Duration left = current.validFor(out);
        List<Deployment> deployments = Rollout.deployments(k, ns.name, revision);
        if (!force && left.compareTo(renewBefore) > 0) {
            out.put("renewed", false);
            List<Deployment> behind = current.restartOwed(out, deployments);
            if (behind.isEmpty()) out.say("more than --renew-before %s left: nothing to do (--force renews now)", Opts.DaysOrDurationConverter.text(renewBefore));
            else if (out.dryRun()) out.change("restart Deployment(s) " + Rollout.names(behind) + " and wait for '" + IstiodLog.LOG_CA_LOADED + "'");
            else restartAndWait(k, behind, current);
            return;
        }
        CaSecret.Renewal renewal = current.renewal(k, out, hsm(), kek.id, ca.id, validity.days);
        if (out.dryRun()) {
            renewal.plan(out, ns.name, rootSlot.keyLabel, validity.days, deployments);
            return;
        }
        List<X509Certificate> chain = renewal.sign(out, hsm(), rootSlot, p11);
        if (output != null) Pki.writePem(out, output, Pki.chainPem(chain), true, "CA certificate and root");
        restartAndWait(k, deployments, current.replace(k, out, chain, CaSecret.RENEWED_AT));
    }

    private void restartAndWait(Kube k, List<Deployment> deployments, CaSecret chain) throws InterruptedException {
        Rollout.restartUntilLoaded(k, out, deployments, chain, ca.id, timeout);
        out.next("verify-ca" + out.given(Opts.Kube.class) + " (and verify-mtls from a workload)");
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new RenewCa()).execute(args));
    }
}
