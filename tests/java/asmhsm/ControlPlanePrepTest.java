package asmhsm;

import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.errorLines;
import static asmhsm.KubeVaultStepsSupport.json;
import static asmhsm.KubeVaultStepsSupport.kubectlJson;
import static asmhsm.KubeVaultStepsSupport.tool;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/** control-plane-prep against the lab's API server; kubectl reads back what it did. */
@ExtendWith(LabExtension.class)
class ControlPlanePrepTest {
    @TempDir Path tmp;

    /** A namespace name nobody has used yet (the step must create it). */
    static String newNamespace(Lab lab) {
        return "cpp-" + lab.freshMount();
    }

    @Test
    void createsNamespaceAndConfigMapThenChangesNothingThenReplacesTheCertInPlace(Lab lab) throws Exception {
        String ns = newNamespace(lab);
        Cli.Result first = Cli.asm(env(lab), tmp, "control-plane-prep", "-n", ns, "--json");   // --vault-cacert from VAULT_CACERT
        assertThat(first.exit()).as(first.toString()).isZero();
        assertThat(json(first).get("changed").asBoolean()).isTrue();
        JsonNode cm = kubectlJson(lab, "-n", ns, "get", "configmap", "vault-tls-cert");
        // the file's bytes, under key cert, as `kubectl create configmap --from-file=./cert` stores them
        assertThat(cm.at("/data/cert").asString()).isEqualTo(Files.readString(lab.vaultCaCert()));
        assertThat(cm.at("/data").size()).isEqualTo(1);

        Cli.Result again = Cli.asm(env(lab), tmp, "control-plane-prep", "-n", ns);
        assertThat(again.exit()).as(again.toString()).isZero();
        assertThat(again.stdout()).contains("Namespace " + ns + " already up to date", "ConfigMap " + ns + "/vault-tls-cert already up to date")
                .doesNotContain("created", "updated");
        assertThat(kubectlJson(lab, "-n", ns, "get", "configmap", "vault-tls-cert").at("/metadata/resourceVersion"))
                .isEqualTo(cm.at("/metadata/resourceVersion"));

        // another CA (and a stray key someone added): patched in place, not deleted and created again
        tool(lab, tmp, "kubectl", "-n", ns, "patch", "configmap", "vault-tls-cert", "--type=merge", "-p={\"data\":{\"stray\":\"x\"}}");
        Path other = tmp.resolve("other-ca.pem");
        tool(lab, tmp, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "other.key", "-out", other.toString(), "-days", "3", "-subj", "/CN=Other Vault CA");
        Cli.Result replaced = Cli.asm(env(lab), tmp, "control-plane-prep", "-n", ns, "--vault-cacert", other.toString());
        assertThat(replaced.exit()).as(replaced.toString()).isZero();
        assertThat(replaced.stdout()).contains("updated ConfigMap " + ns + "/vault-tls-cert (data.cert, data.stray)");
        JsonNode after = kubectlJson(lab, "-n", ns, "get", "configmap", "vault-tls-cert");
        assertThat(after.at("/metadata/uid")).isEqualTo(cm.at("/metadata/uid"));
        assertThat(after.at("/data/cert").asString()).isEqualTo(Files.readString(other));
        assertThat(after.at("/data").size()).isEqualTo(1);
        // openssl reads the stored certificate as the one given
        Path stored = tmp.resolve("stored.pem");
        Files.writeString(stored, after.at("/data/cert").asString());
        assertThat(tool(lab, tmp, "openssl", "x509", "-in", stored.toString(), "-noout", "-subject")).contains("CN = Other Vault CA");
    }

    @Test
    void dryRunChangesNothing(Lab lab) {
        String ns = newNamespace(lab);
        Cli.Result r = Cli.asm(env(lab), tmp, "control-plane-prep", "-n", ns, "--dry-run");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stderr()).contains("would create Namespace " + ns, "would create ConfigMap " + ns + "/vault-tls-cert");
        assertThat(Cli.run(List.of("kubectl", "get", "namespace", ns), lab.env(), tmp, null).exit()).isNotZero();
    }

    @Test
    void badInputIsRefusedBeforeTheClusterIsTouched(Lab lab) throws Exception {
        String ns = newNamespace(lab);
        Path notPem = Files.writeString(tmp.resolve("ca.txt"), "hello\n");
        Path empty = Files.writeString(tmp.resolve("empty.pem"), "");
        Path key = tmp.resolve("k.pem");
        tool(lab, tmp, "openssl", "genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.toString());
        Path expired = Files.writeString(tmp.resolve("expired.pem"), expiredCertificatePem());   // openssl 3.0 cannot backdate
        for (var c : List.of(
                List.of("--vault-ca", tmp.resolve("missing.pem").toString(), "does not exist"),    // the old spelling, hidden, still read
                List.of("--vault-cacert", empty.toString(), "is empty"),
                List.of("--vault-cacert", notPem.toString(), "is not PEM (6 bytes, no -----BEGIN line)"),
                List.of("--vault-cacert", key.toString(), "not a certificate"),
                List.of("--vault-cacert", expired.toString(), "expired"))) {
            Cli.Result r = Cli.asm(env(lab), tmp, "control-plane-prep", "-n", ns, c.get(0), c.get(1));
            assertThat(r.exit()).as(r.toString()).isEqualTo(2);
            assertThat(errorLines(r)).as(r.toString()).hasSize(2);
            assertThat(errorLines(r).get(0)).contains(c.get(2));
        }
        Cli.Result none = Cli.asm(env(lab, "VAULT_CACERT", null), tmp, "control-plane-prep", "-n", ns);
        assertThat(none.exit()).isEqualTo(2);
        assertThat(none.stderr()).contains("no Vault CA certificate given");
        assertThat(Cli.run(List.of("kubectl", "get", "namespace", ns), lab.env(), tmp, null).exit()).isNotZero();
    }

    static String expiredCertificatePem() throws Exception {
        var kp = java.security.KeyPairGenerator.getInstance("EC");
        kp.initialize(256);
        var pair = kp.generateKeyPair();
        var name = new org.bouncycastle.asn1.x500.X500Name("CN=Old Vault CA");
        var cert = new org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder(name, java.math.BigInteger.ONE,
                java.util.Date.from(java.time.Instant.parse("2020-01-01T00:00:00Z")),
                java.util.Date.from(java.time.Instant.parse("2020-02-01T00:00:00Z")), name, pair.getPublic())
                .build(new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withECDSA").build(pair.getPrivate()));
        return Pki.pem("CERTIFICATE", cert.getEncoded());
    }

    @Test
    void aUserWithoutRightsOrAClusterThatIsDownGetsOneClearLine(Lab lab) throws Exception {
        String ns = newNamespace(lab);
        Cli.Result nobody = Cli.asm(env(lab, "KUBECONFIG", lab.nobodyKubeconfig().toString()), tmp, "control-plane-prep", "-n", ns);
        assertThat(nobody.exit()).isEqualTo(1);
        assertThat(errorLines(nobody)).hasSize(2);
        assertThat(errorLines(nobody).get(0)).contains("not allowed to read Namespace " + ns).contains("asm-lab-nobody");

        Path down = tmp.resolve("down.kubeconfig");
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {   // a port nothing listens on once closed
            Files.writeString(down, Files.readString(lab.kubeconfig()).replace(lab.k8sAddr(), "https://127.0.0.1:" + s.getLocalPort()));
        }
        Cli.Result unreachable = Cli.asm(env(lab, "KUBECONFIG", down.toString()), tmp, "control-plane-prep", "-n", ns);
        assertThat(unreachable.exit()).isEqualTo(1);
        assertThat(errorLines(unreachable)).hasSize(2);
        assertThat(errorLines(unreachable).get(0)).contains("cannot reach the API server");
    }
}
