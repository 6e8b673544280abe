///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.SecretBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collections;
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

    /** Only named in the output: each cluster's CA has the same subject, so serial, SKI and cluster tell them apart. */
    @Mixin Opts.Cluster cluster;

    @Option(names = "--replace", description = "Replace a Secret istio-ca-cert that holds another chain.")
    boolean replace;

    @Override
    protected void run() throws Exception {
        byte[] given;
        try {
            given = Files.readAllBytes(file);
        } catch (IOException e) {
            throw Fail.badInput("cannot read " + file + ": " + e.getMessage(), "give the cert-chain.pem that sign-csr wrote");
        }
        List<X509Certificate> chain = new ArrayList<>(Pki.certificates(file, "certificate chain"));
        // istiod refuses a root first, a trailing blank line, text after the last block: what is uploaded is
        // the canonical form (CA first, root last, PEM blocks only), and the operator is told what changed
        String refusal = Istio.splitProblem(given);
        boolean told = refusal != null;
        if (chain.size() > 1 && Pki.selfSigned(chain.get(0)) && !Pki.selfSigned(chain.get(chain.size() - 1))) {
            Collections.reverse(chain);
            out.warn(file + " has the root first, an order istiod refuses (error spliting the cert chain): uploading it reversed, "
                    + "the CA certificate first and the root last");
        } else if (refusal != null) {
            out.warn("istiod would refuse " + file + " as it is (" + refusal + ": error spliting the cert chain): "
                    + "uploading its certificates in canonical form");
        }
        if (chain.size() == 1 && Pki.selfSigned(chain.get(0)))
            throw Fail.badInput(file + " holds only the root '" + Pki.name(chain.get(0)) + "'; istiod needs its CA certificate first",
                    "give the cert-chain.pem that sign-csr wrote");
        X509Certificate ca = chain.get(0);
        String subject = Pki.goName(Pki.subjectDer(ca));
        out.put("subject", subject).put("notAfter", ca.getNotAfter().toInstant().toString());
        if (!Pki.isCa(ca))
            throw Fail.badInput("the first certificate '" + subject + "' is not a CA", "istiod signs workload certificates with it: sign its CSR with sign-csr");
        String problem = Pki.chainProblem(Pki.ChainRules.ISTIOD, chain, chain.get(chain.size() - 1), new Date(), "the chain");
        if (problem != null)
            throw Fail.badInput("the chain in " + file + " does not hold together: " + problem,
                    "order it: the CA certificate, then each issuer, the root last");
        String secretName = ns.name + "/" + Istio.CA_CERT_SECRET;
        Hsm hsm = hsm();
        Kube k = kube();
        if (hsm == null) throw Fail.failed("the embedded HSM token does not exist yet, so it holds no root", "run import-ca first");
        X509Certificate root = Pki.certificate(hsm.rootCertificate(this.ca.id), "the root with CA ID " + this.ca.id + " in the HSM");
        String refused = Pki.chainProblem(Pki.ChainRules.ISTIOD, List.of(ca), root, new Date(), "the chain");
        if (refused != null)
            throw Fail.badInput("istiod's HSM plugin would refuse '" + subject + "': " + refused, chain.size() > 2
                    ? "the plugin verifies it against the HSM root alone, with no intermediates: have the root sign the CSR directly (sign-csr)"
                    : "sign istiod's CSR with the root imported in the HSM (sign-csr)");
        if (chain.size() == 1) {
            chain.add(root);
            told = true;
            out.say("%s holds the CA certificate alone: uploading it with the HSM's root (CA ID %s) after it", file, this.ca.id);
        } else if (!chain.get(chain.size() - 1).equals(root)) {
            out.warn("the last certificate of " + file + " is not the root stored in the HSM; workloads will trust the file's last certificate");
        }
        out.put("certificates", chain.size());
        KmsPlugin.Csr csr = KmsPlugin.decrypt(hsm, KmsPlugin.EncryptedCsr.fromCluster(k, ns.name), kek.id);
        if (!Pki.sameKey(ca.getPublicKey(), Pki.publicKey(csr.request())))
            throw Fail.badInput("'" + subject + "' certifies another key than istiod's CSR in " + ns.name + "/" + Istio.CSR_SECRET,
                    "sign the current CSR: decrypt-csr --from-secret, then sign-csr");
        byte[] canonical = Pki.chainPem(chain).getBytes(StandardCharsets.US_ASCII);
        boolean rewritten = !Arrays.equals(canonical, given);
        out.put("canonicalised", rewritten);
        if (rewritten && !told)
            out.say("uploading %s in canonical form (PEM blocks only, LF line ends, one final newline)", file);
        Pki.Identity id = Pki.identity(ca);
        java.util.Map<String, Object> idJson = new java.util.LinkedHashMap<>(id.json());
        String where = (cluster.suffix == null || cluster.suffix.isBlank() ? "" : "cluster " + cluster.suffix + ", ")
                + "context " + k.context + " (" + k.server() + ")";
        if (cluster.suffix != null && !cluster.suffix.isBlank()) idJson.put("cluster", cluster.suffix);
        idJson.put("context", k.context);
        out.put("identity", idJson);
        out.say("Istio CA '%s' (%s) for %s", subject, id.text(), where);
        upload(k, canonical, chain, secretName);
    }

    void upload(Kube k, byte[] content, List<X509Certificate> chain, String secretName) {
        try {
            var secrets = k.client.secrets().inNamespace(ns.name);
            Secret existing = secrets.withName(Istio.CA_CERT_SECRET).get();
            Map<String, String> data = Map.of(Istio.CA_CERT_KEY, Base64.getEncoder().encodeToString(content));
            if (existing != null) {
                String b64 = existing.getData() == null ? null : existing.getData().get(Istio.CA_CERT_KEY);
                byte[] current = b64 == null ? null : Base64.getDecoder().decode(b64);
                if (current != null && Arrays.equals(current, content)) {
                    out.say("Secret %s already holds this chain", secretName);
                    return;
                }
                String currentRefusal = current == null ? null : Istio.splitProblem(current);
                boolean sameChain = current != null && sameCertificates(current, chain);
                if (sameChain && currentRefusal == null) {
                    out.say("Secret %s already holds this chain (in a form istiod accepts)", secretName);
                    return;
                }
                if (!sameChain && !replace)
                    throw Fail.failed("Secret " + secretName + " already exists with another chain",
                            "pass --replace to replace it; " + Istio.RESTART_TO_RELOAD);
                Secret replaced = new SecretBuilder(existing).withData(data).build();
                out.manifest(k.manifest(replaced));
                if (!out.dryRun()) secrets.resource(replaced).update();
                if (sameChain)
                    out.change((out.dryRun() ? "rewrite" : "rewrote") + " the chain in Secret " + secretName + " in the form istiod accepts (it held "
                            + currentRefusal + "); " + Istio.RESTART_TO_RELOAD);
                else out.change((out.dryRun() ? "replace" : "replaced") + " the chain in Secret " + secretName + "; " + Istio.RESTART_TO_RELOAD);
                return;
            }
            Secret created = new SecretBuilder().withNewMetadata().withName(Istio.CA_CERT_SECRET).withNamespace(ns.name)
                    .endMetadata().withType("Opaque").withData(data).build();
            out.manifest(k.manifest(created));
            if (!out.dryRun()) secrets.resource(created).create();
            out.change((out.dryRun() ? "create" : "created") + " Secret " + secretName + " (key " + Istio.CA_CERT_KEY + ")");
            out.say("istiod polls for it every 2 s; then check its log with verify-ca");
        } catch (KubernetesClientException e) {
            throw k.explain(e, "write Secret " + secretName);
        }
    }

    /** Whether a Secret's cert-chain.pem holds these certificates and no other, whatever its form and order. */
    static boolean sameCertificates(byte[] pem, List<X509Certificate> chain) {
        try {
            List<X509Certificate> held = Pki.certificates(Pki.pemBlocks(new String(pem, StandardCharsets.UTF_8), "Secret"), "Secret");
            return held.size() == chain.size() && new java.util.HashSet<>(held).equals(new java.util.HashSet<>(chain));
        } catch (Fail f) {
            return false;
        }
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new UploadChain()).execute(args));
    }
}
