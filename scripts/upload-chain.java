///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.Arrays;
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
        ChainFile.Given given = ChainFile.read(out, file);
        List<X509Certificate> chain = given.chain();
        X509Certificate ca = chain.get(0);
        String subject = Pki.goName(Pki.subjectDer(ca));
        out.put("subject", subject).put("notAfter", ca.getNotAfter().toInstant().toString());
        if (!Pki.isCa(ca))
            throw Fail.badInput("the first certificate '" + subject + "' is not a CA", "istiod signs workload certificates with it: sign its CSR with sign-csr");
        String problem = Pki.chainProblem(Pki.ChainRules.ISTIOD, chain, chain.get(chain.size() - 1), new Date(), "the chain");
        if (problem != null)
            throw Fail.badInput("the chain in " + file + " does not hold together: " + problem, "order it: the CA certificate, then each issuer, the root last");
        Hsm hsm = hsm();
        Kube k = kube();
        if (hsm == null) throw Fail.failed("the embedded HSM token does not exist yet, so it holds no root", "run import-ca first");
        X509Certificate root = Pki.certificate(hsm.rootCertificate(this.ca.id), "the root with CA ID " + this.ca.id + " in the HSM");
        String refused = Pki.chainProblem(Pki.ChainRules.ISTIOD, List.of(ca), root, new Date(), "the chain");
        if (refused != null)
            throw Fail.badInput("istiod's HSM plugin would refuse '" + subject + "': " + refused, chain.size() > 2
                    ? "the plugin verifies it against the HSM root alone, with no intermediates: have the root sign the CSR directly (sign-csr)"
                    : "sign istiod's CSR with the root imported in the HSM (sign-csr)");
        boolean told = given.told();
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
        boolean rewritten = !Arrays.equals(canonical, given.bytes());
        out.put("canonicalised", rewritten);
        if (rewritten && !told) out.say("uploading %s in canonical form (PEM blocks only, LF line ends, one final newline)", file);
        Pki.Identity id = Pki.identity(ca);
        Map<String, Object> idJson = cluster.identity(id);
        idJson.put("context", k.context);
        out.put("identity", idJson);
        String where = (cluster.suffix == null || cluster.suffix.isBlank() ? "" : "cluster " + cluster.suffix + ", ") + "context " + k.context + " (" + k.server() + ")";
        out.say("Istio CA '%s' (%s) for %s", subject, id.text(), where);
        CaSecret.upload(k, out, ns.name, canonical, chain, replace);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new UploadChain()).execute(args));
    }
}
