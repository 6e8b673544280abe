///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "upload-chain", mixinStandardHelpOptions = true,
        description = "Check cert-chain.pem as istiod and its HSM plugin will, then create Secret istio-ca-cert "
                + "(guide: kubectl create secret generic istio-ca-cert --from-file=cert-chain.pem -n istio-system).")
class UploadChain extends Step {
    @Mixin Opts.Pkcs11 p11;
    @Mixin Opts.Kube kube;

    @Option(names = {"-f", "--file"}, required = true, paramLabel = "CHAIN_PEM", description = "The CA certificate, any intermediates, the root last.")
    Path file;

    @Mixin Opts.IstioNamespace ns;

    @Mixin Opts.CaId ca;

    @Mixin Opts.Kek kek;

    @Option(names = "--replace", description = "Replace a Secret istio-ca-cert that holds another chain.")
    boolean replace;

    @Override
    protected void run() throws Exception {
        byte[] content;
        try {
            content = Files.readAllBytes(file);
        } catch (IOException e) {
            throw Fail.badInput("cannot read " + file + ": " + e.getMessage(), "give the cert-chain.pem that sign-csr wrote");
        }
        List<X509Certificate> chain = Pki.certificates(file, "certificate chain");
        if (chain.size() < 2)
            throw Fail.badInput(file + " holds " + chain.size() + " certificate; istiod needs the CA certificate first and the root last",
                    "give the cert-chain.pem that sign-csr wrote");
        X509Certificate ca = chain.get(0);
        String subject = Pki.goName(Pki.subjectDer(ca));
        out.put("subject", subject).put("notAfter", ca.getNotAfter().toInstant().toString()).put("certificates", chain.size());
        if (!Pki.isCa(ca))
            throw Fail.badInput("the first certificate '" + subject + "' is not a CA", "istiod signs workload certificates with it: sign its CSR with sign-csr");
        String problem = Pki.goChainProblem(chain, new Date());
        if (problem != null)
            throw Fail.badInput("the chain in " + file + " does not hold together: " + problem,
                    "order it: the CA certificate, then each issuer, the root last");
        String secretName = ns.name + "/" + Istio.CA_CERT_SECRET;
        try (Hsm hsm = Hsm.open(p11, out); Kube k = Kube.connect(kube)) {
            if (hsm == null) throw Fail.failed("the embedded HSM token does not exist yet, so it holds no root", "run import-ca first");
            X509Certificate root = Pki.certificate(hsm.rootCertificate(this.ca.id), "the root with CA ID " + this.ca.id + " in the HSM");
            String refused = Pki.goChainProblem(List.of(ca, root), new Date());
            if (refused != null)
                throw Fail.badInput("istiod's HSM plugin would refuse '" + subject + "': " + refused, chain.size() > 2
                        ? "the plugin verifies it against the HSM root alone, with no intermediates: have the root sign the CSR directly (sign-csr)"
                        : "sign istiod's CSR with the root imported in the HSM (sign-csr)");
            if (!chain.get(chain.size() - 1).equals(root))
                out.warn("the last certificate of " + file + " is not the root stored in the HSM; workloads will trust the file's last certificate");
            KmsPlugin.Csr csr = KmsPlugin.decrypt(hsm, KmsPlugin.EncryptedCsr.fromCluster(k, ns.name), kek.id);
            if (!Pki.sameKey(ca.getPublicKey(), Pki.publicKey(csr.request())))
                throw Fail.badInput("'" + subject + "' certifies another key than istiod's CSR in " + ns.name + "/" + Istio.CSR_SECRET,
                        "sign the current CSR: decrypt-csr --from-secret, then sign-csr");
            upload(k, content, secretName);
        }
    }

    void upload(Kube k, byte[] content, String secretName) {
        try {
            var secrets = k.client.secrets().inNamespace(ns.name);
            Secret existing = secrets.withName(Istio.CA_CERT_SECRET).get();
            Map<String, String> data = Map.of(Istio.CA_CERT_KEY, Base64.getEncoder().encodeToString(content));
            if (existing != null) {
                String current = existing.getData() == null ? null : existing.getData().get(Istio.CA_CERT_KEY);
                if (current != null && Arrays.equals(Base64.getDecoder().decode(current), content)) {
                    out.say("Secret %s already holds this chain", secretName);
                    return;
                }
                if (!replace)
                    throw Fail.failed("Secret " + secretName + " already exists with another chain",
                            "pass --replace to replace it; istiod reads it at start-up only, so restart istiod afterwards");
                if (!out.dryRun()) secrets.resource(new SecretBuilder(existing).withData(data).build()).update();
                out.change((out.dryRun() ? "replace" : "replaced") + " the chain in Secret " + secretName + "; restart istiod to load it");
                return;
            }
            if (!out.dryRun())
                secrets.resource(new SecretBuilder().withNewMetadata().withName(Istio.CA_CERT_SECRET).withNamespace(ns.name)
                        .endMetadata().withType("Opaque").withData(data).build()).create();
            out.change((out.dryRun() ? "create" : "created") + " Secret " + secretName + " (key " + Istio.CA_CERT_KEY + ")");
            out.say("istiod polls for it every 2 s; then check its log with verify-ca");
        } catch (KubernetesClientException e) {
            throw k.explain(e, "write Secret " + secretName);
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new UploadChain()).execute(args));
    }
}
