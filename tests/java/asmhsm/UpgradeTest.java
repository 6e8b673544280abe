package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * The canary upgrade's refusals against the lab's real API server: preflight --upgrade-to on an
 * unsupported pair and on a cluster that does not run the old revision, and install-asm --uninstall
 * while anything still uses the old revision. istiod's Deployments are made here as istioctl makes
 * them (labels app=istiod, istio.io/rev); istioctl itself is a stand-in that records its arguments.
 */
@ExtendWith(LabExtension.class)
class UpgradeTest {
    @TempDir Path tmp;

    static Deployment istiod(String revision) {
        Map<String, String> labels = Map.of("app", "istiod", Istio.REV_LABEL, revision);
        return new DeploymentBuilder().withNewMetadata().withName(Istio.istiodDeployment(revision)).withNamespace(KubeLayout.ISTIO_NAMESPACE)
                .withLabels(labels).endMetadata().withNewSpec().withReplicas(0).withNewSelector().withMatchLabels(labels).endSelector()
                .withNewTemplate().withNewMetadata().withLabels(labels).endMetadata().withNewSpec().addNewContainer().withName("discovery")
                .withImage("example.invalid/pilot:1").endContainer().endSpec().endTemplate().endSpec().build();
    }

    static void ensureIstioSystem(Lab lab) {
        if (lab.admin().namespaces().withName(KubeLayout.ISTIO_NAMESPACE).get() == null)
            lab.admin().namespaces().resource(new NamespaceBuilder().withNewMetadata().withName(KubeLayout.ISTIO_NAMESPACE).endMetadata().build()).create();
    }

    static Cli.Result preflight(Lab lab, String... args) {
        List<String> a = new ArrayList<>(List.of("preflight", "--kubeconfig", lab.kubeconfig().toString(),
                "--skip", "nodes,version,permissions,ports,hsm,vault"));
        a.addAll(List.of(args));
        return Cli.asm(Map.of(), a.toArray(String[]::new));
    }

    @Test
    void preflightRefusesAnUnsupportedPairAndAClusterWithoutTheOldRevision(Lab lab) {
        ensureIstioSystem(lab);
        Cli.Result skipMinor = preflight(lab, "--upgrade-to", "1.11.2-asm.17");
        assertThat(skipMinor.exit()).as(skipMinor.toString()).isEqualTo(1);
        assertThat(skipMinor.stdout()).contains("upgrade 1.9.8-asm.6 -> 1.11.2-asm.17 is not supported: no supported upgrade leads from 1.9.8-asm.6 to 1.11.2-asm.17");
        assertThat(skipMinor.stdout()).contains("upgrade one minor version at a time (supported: 1.9 -> 1.10, 1.9 -> 1.9)");

        Cli.Result back = preflight(lab, "--upgrade-from", "1.10.6-asm.2", "--upgrade-to", "1.9.8-asm.6");
        assertThat(back.exit()).as(back.toString()).isEqualTo(1);
        assertThat(back.stdout()).contains("1.9.8-asm.6 is not later than 1.10.6-asm.2 (a canary upgrade goes forward only)");

        Cli.Result bad = preflight(lab, "--upgrade-to", "1.10");
        assertThat(bad.exit()).as(bad.toString()).isEqualTo(2);
        assertThat(bad.stderr()).contains("version '1.10' is not an ASM release version");

        String rev = Release.revision(Release.DEFAULT_VERSION);
        lab.admin().apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.istiodDeployment(rev)).delete();
        Cli.Result none = preflight(lab, "--upgrade-to", "1.10.6-asm.2");
        assertThat(none.exit()).as(none.toString()).isEqualTo(1);
        assertThat(none.stdout()).contains("the cluster runs istiod revision(s) none, not asm-198-6 of 1.9.8-asm.6");

        lab.admin().apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).resource(istiod(rev)).create();
        try {
            Cli.Result ok = preflight(lab, "--upgrade-to", "1.10.6-asm.2");
            assertThat(ok.exit()).as(ok.toString()).isZero();
            assertThat(ok.stdout()).contains("upgrade 1.9.8-asm.6 (asm-198-6) -> 1.10.6-asm.2 (asm-1106-2) is supported; the cluster runs asm-198-6");
        } finally {
            lab.admin().apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.istiodDeployment(rev)).delete();
        }
    }

    @Test
    void removingTheOldRevisionWaitsForEverythingThatUsesIt(Lab lab) throws Exception {
        ensureIstioSystem(lab);
        String suffix = lab.freshNamespace();         // a unique word, and the application namespace
        String app = suffix, oldRev = "old-" + suffix, newRev = "new-" + suffix;
        var k = lab.admin();
        Path istioctl = tmp.resolve("istioctl");
        Files.writeString(istioctl, "#!/bin/sh\nprintf '%s ' \"$@\" > \"$(dirname \"$0\")/args\"\necho \"✔ Removed revision\"\n");
        Files.setPosixFilePermissions(istioctl, PosixFilePermissions.fromString("rwxr-xr-x"));
        List<String> base = List.of("install-asm", "--kubeconfig", lab.kubeconfig().toString(), "--istioctl", istioctl.toString(), "-y",
                "--uninstall", "--revision", oldRev);
        var deployments = k.apps().deployments().inNamespace(KubeLayout.ISTIO_NAMESPACE);
        var service = k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE);
        try {
            Cli.Result absent = Cli.asm(Map.of(), base.toArray(String[]::new));
            assertThat(absent.exit()).as(absent.toString()).isZero();
            assertThat(absent.stdout()).contains("no istiod of revision " + oldRev + " in istio-system: nothing to remove");

            deployments.resource(istiod(oldRev)).create();
            Cli.Result only = Cli.asm(Map.of(), base.toArray(String[]::new));
            assertThat(only.exit()).as(only.toString()).isEqualTo(1);
            assertThat(only.stderr()).contains("error: revision " + oldRev + " is the only istiod revision in istio-system");

            deployments.resource(istiod(newRev)).create();
            k.namespaces().withName(app).edit(n -> { n.getMetadata().setLabels(Map.of(Istio.REV_LABEL, oldRev)); return n; });
            Cli.Result labelled = Cli.asm(Map.of(), base.toArray(String[]::new));
            assertThat(labelled.exit()).as(labelled.toString()).isEqualTo(1);
            assertThat(labelled.stderr()).contains("error: namespace(s) " + app + " still use revision " + oldRev + " (label istio.io/rev=" + oldRev + ")")
                    .contains("-> move them first: enable-injection --namespace " + app + " --revision " + newRev + " --restart");

            k.namespaces().withName(app).edit(n -> { n.getMetadata().setLabels(Map.of(Istio.REV_LABEL, newRev)); return n; });
            k.pods().inNamespace(app).resource(new PodBuilder().withNewMetadata().withName("web-1").withLabels(Map.of(Istio.REV_LABEL, oldRev)).endMetadata()
                    .withNewSpec().addNewContainer().withName("web").withImage("example.invalid/web:1").endContainer().endSpec().build()).create();
            Cli.Result sidecars = Cli.asm(Map.of(), base.toArray(String[]::new));
            assertThat(sidecars.exit()).as(sidecars.toString()).isEqualTo(1);
            assertThat(sidecars.stderr()).contains("error: 1 pod(s) still run a sidecar of revision " + oldRev + ": " + app + "/web-1");

            k.pods().inNamespace(app).withName("web-1").withGracePeriod(0).delete();
            k.pods().inNamespace(app).withName("web-1").waitUntilCondition(p -> p == null, 30, java.util.concurrent.TimeUnit.SECONDS);
            service.resource(KubeLayout.GUIDE.istiodService(oldRev)).createOr(e -> e.update());
            Cli.Result webhook = Cli.asm(Map.of(), base.toArray(String[]::new));
            assertThat(webhook.exit()).as(webhook.toString()).isEqualTo(1);
            assertThat(webhook.stderr()).contains("error: Service istio-system/istiod still points at revision " + oldRev)
                    .contains("-> point it at the new revision first: istiod-service --revision " + newRev);
            assertThat(tmp.resolve("args")).as("istioctl never ran while something used the old revision").doesNotExist();

            service.resource(KubeLayout.GUIDE.istiodService(newRev)).update();
            Cli.Result removed = Cli.asm(Map.of(), base.toArray(String[]::new));
            assertThat(removed.exit()).as(removed.toString()).isZero();
            assertThat(Files.readString(tmp.resolve("args")).strip()).isEqualTo("x uninstall --revision " + oldRev + " -y");
            assertThat(removed.stdout()).contains("removed the control plane of revision " + oldRev + " (" + newRev + " stays)");
        } finally {
            deployments.withName(Istio.istiodDeployment(oldRev)).delete();
            deployments.withName(Istio.istiodDeployment(newRev)).delete();
            service.withName(KubeLayout.ISTIOD_SERVICE).delete();
        }
    }
}
