package asmhsm;

import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.ExecWatch;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import sun.security.pkcs11.wrapper.PKCS11Exception;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The formats of the Thales k8s-kms-plugin that istiod runs as its hsm-plugin
 * (reference/hsm-formats.md): Secret istio-ca-cert-csr, the compact-JWE blobs in it, the
 * DEK as a JWK, and the way back to istiod's CSR. The KEK never leaves the HSM: the DEK
 * blob is decrypted by the HSM ({@link Hsm#decryptGcm}), the CSR blob in software.
 * Every failure here is the step's failure (exit 1): the blobs come from the cluster.
 */
public final class KmsPlugin {
    private KmsPlugin() {}

    /** The IV sizes of encrypted-dek: 12 bytes in plugin builds up to 2020-10-15 (the guide's image era), 16 in later ones. */
    public static final int DEK_IV_2020 = 12, DEK_IV_LATER = 16;

    static final String KEK_ID = "kek-id", ENCRYPTED_DEK = "encrypted-dek", CSR_ID = "csr-id", ENCRYPTED_CSR = "encrypted-csr";
    private static final JsonMapper JSON = JsonMapper.builder().build();

    /** The four values of Secret istio-ca-cert-csr, base64-decoded; `source` names where they came from. */
    public record EncryptedCsr(String kekId, String encryptedDek, String csrId, String encryptedCsr, String source) {

        /**
         * What the guide saves with `kubectl get secret istio-ca-cert-csr -o jsonpath={.data}`:
         * a JSON object of base64 values (kubectl before 1.19 printed Go's `map[k:v ...]`
         * instead; both are read). A whole `kubectl get secret -o json` works too.
         */
        public static EncryptedCsr fromKubectl(String text, String source) {
            String t = text.strip();
            Map<String, String> data = new LinkedHashMap<>();
            if (t.startsWith("map[")) {
                if (!t.endsWith("]"))
                    throw Fail.failed(source + " is cut short (no closing ']')", "save it again with kubectl get secret ... -o jsonpath={.data}");
                Matcher m = Pattern.compile("([a-z-]+):(\\S*)").matcher(t.substring(4, t.length() - 1));
                while (m.find()) data.put(m.group(1), m.group(2));
                return fromData(data, source);
            }
            JsonNode root;
            try {
                root = JSON.readTree(t);
            } catch (JacksonException e) {
                var at = e.getLocation();
                String why = String.valueOf(e.getOriginalMessage()).contains("end-of-input") ? "it is cut short"
                        : at == null ? "unreadable" : "error at line " + at.getLineNr() + ", column " + at.getColumnNr();
                throw Fail.failed(source + " is not complete JSON (" + why + ")",
                        "save it again: kubectl get secret " + Istio.CSR_SECRET + " -n " + KubeLayout.ISTIO_NAMESPACE + " -o jsonpath={.data} > encrypted_csr.json");
            }
            if (root != null && root.path("data").isObject()) root = root.get("data");
            if (root == null || !root.isObject())
                throw Fail.failed(source + " is not a JSON object of the Secret's data", "save it with kubectl get secret ... -o jsonpath={.data}");
            for (var e : root.properties())
                if (e.getValue().isString()) data.put(e.getKey(), e.getValue().stringValue());
            return fromData(data, source);
        }

        /** Secret istio-ca-cert-csr as istiod wrote it in the cluster. */
        public static EncryptedCsr fromCluster(Kube k, String namespace) {
            Secret s;
            try {
                s = k.client.secrets().inNamespace(namespace).withName(Istio.CSR_SECRET).get();
            } catch (KubernetesClientException x) {
                throw k.explain(x, "read Secret " + namespace + "/" + Istio.CSR_SECRET);
            }
            if (s == null)
                throw Fail.failed("Secret " + namespace + "/" + Istio.CSR_SECRET + " does not exist (yet)",
                        "istiod writes it at start-up when it runs with the HSM plugin: check istiod-status and its hsm-plugin log");
            return fromData(s.getData(), "Secret " + namespace + "/" + Istio.CSR_SECRET);
        }

        /** A Secret's data map (base64 values, as the API returns them). */
        public static EncryptedCsr fromData(Map<String, String> data, String source) {
            return new EncryptedCsr(field(data, KEK_ID, source), field(data, ENCRYPTED_DEK, source),
                    field(data, CSR_ID, source), field(data, ENCRYPTED_CSR, source), source);
        }

        private static String field(Map<String, String> data, String key, String source) {
            String v = data == null ? null : data.get(key);
            if (v == null || v.isEmpty())
                throw Fail.failed(source + " has no '" + key + "'", "it must hold kek-id, encrypted-dek, csr-id and encrypted-csr, as istiod writes them");
            try {
                return new String(Base64.getDecoder().decode(v), StandardCharsets.UTF_8);
            } catch (IllegalArgumentException e) {
                throw Fail.failed("'" + key + "' in " + source + " is not base64 (" + e.getMessage() + ")",
                        "the file was altered or cut; save it again from the Secret");
            }
        }
    }

    /** One compact JWE with direct encryption: header . (empty) . iv . ciphertext . tag (RFC 7516). */
    record Jwe(String protectedHeader, JsonNode header, byte[] iv, byte[] ciphertext, byte[] tag, String what) {

        static Jwe parse(String compact, String what) {
            String[] parts = compact.strip().split("\\.", -1);
            if (parts.length != 5)
                throw Fail.failed(what + " is not a compact JWE (" + parts.length + " parts, not 5)", "the Secret was altered or cut");
            if (!parts[1].isEmpty())
                throw Fail.failed(what + " carries an encrypted key; the plugin's blobs use direct encryption", "the Secret was not written by the plugin");
            JsonNode header;
            try {
                header = JSON.readTree(b64u(parts[0], what + " header"));
            } catch (JacksonException e) {
                throw Fail.failed(what + " has a header that is not JSON", "the Secret was altered");
            }
            if (header == null || !header.isObject())
                throw Fail.failed(what + " has a header that is not a JSON object", "the Secret was altered");
            Jwe jwe = new Jwe(parts[0], header, b64u(parts[2], what + " IV"), b64u(parts[3], what + " ciphertext"),
                    b64u(parts[4], what + " tag"), what);
            if (!"dir".equals(jwe.header("alg")) || !"A256GCM".equals(jwe.header("enc")))
                throw Fail.failed(what + " is alg " + jwe.header("alg") + " / enc " + jwe.header("enc") + ", not dir / A256GCM",
                        "the Secret was not written by the Thales plugin");
            if (jwe.iv.length == 0 || jwe.tag.length != 16)
                throw Fail.failed(what + " has a " + jwe.iv.length + "-byte IV and a " + jwe.tag.length + "-byte tag (expected a 16-byte tag)",
                        "the Secret was altered or cut");
            return jwe;
        }

        String header(String name) {
            JsonNode v = header.get(name);
            return v != null && v.isString() ? v.stringValue() : null;
        }

        /** RFC 7516: the AAD is the ASCII of the protected header as it was sent. */
        byte[] aad() {
            return protectedHeader.getBytes(StandardCharsets.US_ASCII);
        }

        byte[] ciphertextAndTag() {
            byte[] b = Arrays.copyOf(ciphertext, ciphertext.length + tag.length);
            System.arraycopy(tag, 0, b, ciphertext.length, tag.length);
            return b;
        }
    }

    static byte[] b64u(String s, String what) {
        try {
            return Base64.getUrlDecoder().decode(s);
        } catch (IllegalArgumentException e) {
            throw Fail.failed(what + " is not base64url (" + e.getMessage() + ")", "the Secret was altered or cut");
        }
    }

    static String b64u(byte[] b) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    /** istiod's CSR, decrypted and checked; `dekIvBytes` tells the plugin build that wrote it ({@link #DEK_IV_2020} or {@link #DEK_IV_LATER}). */
    public record Csr(String pem, Pki.Csr request, String kekId, String csrId, int dekIvBytes) {
        /** Which plugin builds write this DEK format, for a human reader. */
        public String dekFormat() {
            return dekIvBytes + "-byte IV, " + (dekIvBytes == DEK_IV_2020 ? "plugin builds up to 2020-10-15" : "plugin builds after 2020-10-15");
        }
    }

    /**
     * Decrypts istiod's CSR: the DEK blob inside the HSM with the KEK the plugin would use,
     * the CSR blob with the DEK; checks that every ID agrees (the DEK blob's kid = kek-id,
     * the CSR blob's kid = the DEK's kid, `_thales_aad` = csr-id), that `expectedKekId` (when
     * given) is that KEK, and that the CSR is signed by its own key.
     */
    public static Csr decrypt(Hsm hsm, EncryptedCsr e, String expectedKekId) throws PKCS11Exception {
        Jwe dekBlob = Jwe.parse(e.encryptedDek(), "encrypted-dek");
        Jwe csrBlob = Jwe.parse(e.encryptedCsr(), "encrypted-csr");
        if (dekBlob.iv().length != DEK_IV_2020 && dekBlob.iv().length != DEK_IV_LATER)
            throw Fail.failed("encrypted-dek has a " + dekBlob.iv().length + "-byte IV; the plugin's builds write " + DEK_IV_2020
                    + " (up to 2020-10-15) or " + DEK_IV_LATER + " bytes", "the Secret was altered or not written by the Thales plugin");
        if (!e.kekId().equals(dekBlob.header("kid")))
            throw Fail.failed("encrypted-dek was made with KEK " + dekBlob.header("kid") + " but kek-id says " + e.kekId(),
                    "the Secret was altered: have istiod make a new key and CSR: " + Istio.NEW_KEY_AND_CSR);
        if (expectedKekId != null && !expectedKekId.equals(e.kekId()))
            throw Fail.failed("the CSR is encrypted under KEK " + e.kekId() + ", not under KEK_ID " + expectedKekId,
                    "istiod runs with another KEK: use that KEK ID, or check values.hsm.hsmKEKID of the install");
        return decryptWith(hsm, hsm.kek(e.kekId()).handle(), e, dekBlob, csrBlob);
    }

    /** The decryption itself, with the KEK already found and judged fit for use (Hsm.kek). */
    static Csr decryptWith(Hsm hsm, long kek, EncryptedCsr e, Jwe dekBlob, Jwe csrBlob) throws PKCS11Exception {
        byte[] jwk;
        try {
            jwk = hsm.decryptGcm(kek, dekBlob.iv(), dekBlob.aad(), dekBlob.ciphertextAndTag());
        } catch (PKCS11Exception x) {
            throw Fail.failed("the HSM could not decrypt encrypted-dek with KEK " + e.kekId() + " (" + x.getMessage() + ")",
                    "the blob was altered, or this token's KEK " + e.kekId() + " is not the one istiod used (another slot?)");
        }
        byte[] dek = null;
        try {
            JsonNode key = parseJwk(jwk);
            dek = b64u(key.get("k").stringValue(), "the DEK");
            if (dek.length != 32)
                throw Fail.failed("the DEK is " + dek.length * 8 + " bits, not 256", "the Secret was not written by the plugin");
            String dekKid = key.path("kid").stringValue(null);
            if (dekKid == null || !dekKid.equals(csrBlob.header("kid")))
                throw Fail.failed("encrypted-csr names DEK " + csrBlob.header("kid") + " but encrypted-dek holds DEK " + dekKid,
                        "the two blobs come from different Secrets: save the Secret again in one piece");
            String pem = decryptCsrBlob(csrBlob, dek);
            String aad = csrBlob.header("_thales_aad");
            String boundTo = aad == null ? null : new String(b64u(aad, "_thales_aad"), StandardCharsets.UTF_8);
            if (!e.csrId().equals(boundTo))
                throw Fail.failed("the CSR was encrypted for trust domain '" + boundTo + "' but csr-id says '" + e.csrId() + "'",
                        "the Secret was altered or mixes two meshes: let istiod write it again");
            Pki.Csr request;
            try {
                request = Pki.csr(pem, "the decrypted CSR");
            } catch (Fail f) {
                throw Fail.failed(f.getMessage(), "istiod wrote something else than a PEM CSR: check its version and logs");
            }
            if (!Pki.csrSignatureValid(request))
                throw Fail.failed("the decrypted CSR's signature does not verify with its own key", "do not sign it; let istiod write a new one");
            return new Csr(pem, request, e.kekId(), e.csrId(), dekBlob.iv().length);
        } finally {
            Arrays.fill(jwk, (byte) 0);
            if (dek != null) Arrays.fill(dek, (byte) 0);
        }
    }

    private static JsonNode parseJwk(byte[] jwk) {
        JsonNode key;
        try {
            key = JSON.readTree(jwk);
        } catch (JacksonException x) {
            throw Fail.failed("the decrypted DEK is not a JSON Web Key", "the Secret was not written by the Thales plugin");
        }
        if (key == null || !"oct".equals(key.path("kty").stringValue(null)) || !key.path("k").isString())
            throw Fail.failed("the decrypted DEK is not a symmetric JSON Web Key (kty oct with k)", "the Secret was not written by the Thales plugin");
        return key;
    }

    private static String decryptCsrBlob(Jwe blob, byte[] dek) {
        try {
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(Cipher.DECRYPT_MODE, new SecretKeySpec(dek, "AES"), new GCMParameterSpec(128, blob.iv()));
            c.updateAAD(blob.aad());
            return new String(c.doFinal(blob.ciphertextAndTag()), StandardCharsets.UTF_8);
        } catch (AEADBadTagException x) {
            throw Fail.failed("encrypted-csr fails authentication with its DEK", "the blob or its header was altered: let istiod write it again");
        } catch (GeneralSecurityException x) {
            throw Fail.failed("cannot decrypt encrypted-csr: " + x.getMessage(), "the Secret was altered or cut");
        }
    }

    // ------------------------------------------------------------------ the plugin in istiod's pod

    /**
     * The plugin's own client commands, run in istiod's hsm-plugin container. The plugin knows
     * the root it verifies chains against only after an ImportCACert in the same process
     * (reference/hsm-formats.md, "What the real components do"): a root another process put on
     * the token is not loaded, and istiod aborts. Only `serve` reads SOCKET, so the clients get
     * `--socket "$SOCKET"`. The PEM comes over stdin; `head -c N` ends the plugin's input after
     * exactly N bytes, since an exec's stdin is not closed by the Kubernetes client. The byte
     * count and the CA ID are the shell's positional parameters, never spliced into its text.
     */
    public static final String PLUGIN_BINARY = "/k8s-kms-plugin";
    public static final String NOT_LOADED = "no loaded CA cert for verification";

    static List<String> verifyCertCommand(int bytes) {
        return List.of("sh", "-c", "head -c \"$0\" | exec " + PLUGIN_BINARY + " verify-cert -f /dev/stdin --socket \"$SOCKET\"",
                String.valueOf(bytes));
    }

    static List<String> importCaCommand(int bytes, String caId) {
        return List.of("sh", "-c", "head -c \"$0\" | exec " + PLUGIN_BINARY + " import-ca -f /dev/stdin --socket \"$SOCKET\" --ca-id \"$1\"",
                String.valueOf(bytes), caId);
    }

    /**
     * The postStart hook that makes every new hsm-plugin container load the root by itself
     * (install-asm's root hook): the plugin's import-ca from the mounted ConfigMap, retried every
     * 2 s until the plugin answers on its socket (at first start it may wait for vaultclient's
     * PIN). The kubelet marks the container running only once this succeeds.
     */
    public static final int HOOK_TRIES = 60;

    public static List<String> postStartImportCommand(String rootFile, String caId) {
        return List.of("sh", "-c", "i=0; while [ $i -lt " + HOOK_TRIES + " ]; do " + PLUGIN_BINARY + " import-ca -f " + rootFile
                + " --socket \"$SOCKET\" --ca-id \"$0\" && exit 0; i=$((i+1)); sleep 2; done; exit 1", caId);
    }

    /** What a plugin command said: its exit code (-1 when the exec itself failed) and its output. */
    public record PodRun(int exit, String stdout, String stderr, String execFailure) {
        /** The plugin's last line of error output (cobra prints "Error: rpc error: ..."). */
        public String lastError() {
            String all = (stderr + "\n" + stdout).strip();
            String last = null;
            for (String line : all.split("\n")) if (!line.isBlank() && !line.startsWith("Usage:") && !line.startsWith("  ")) last = line.strip();
            return last == null ? (execFailure == null ? "exit " + exit : execFailure) : last;
        }
    }

    /** Whether the plugin in a pod has the root loaded: it verifies `caCertPem` (the first certificate of the chain, or the root). */
    public enum RootState { LOADED, NOT_LOADED, REJECTED }

    public record RootCheck(RootState state, PodRun run) {}

    public static RootCheck verifyInPod(Kube k, String ns, String pod, String caCertPem, Duration timeout) {
        byte[] in = caCertPem.getBytes(StandardCharsets.US_ASCII);
        PodRun r = runInPod(k, ns, pod, verifyCertCommand(in.length), in, timeout);
        if (r.exit() == 0) return new RootCheck(RootState.LOADED, r);
        if ((r.stdout() + r.stderr()).contains(NOT_LOADED)) return new RootCheck(RootState.NOT_LOADED, r);
        return new RootCheck(RootState.REJECTED, r);
    }

    /** The plugin's import-ca in the pod: loads the root into that plugin process (and, as the plugin does, adds one more copy on the token). */
    public static PodRun importInPod(Kube k, String ns, String pod, String rootPem, String caId, Duration timeout) {
        byte[] in = rootPem.getBytes(StandardCharsets.US_ASCII);
        PodRun r = runInPod(k, ns, pod, importCaCommand(in.length, caId), in, timeout);
        if (r.exit() != 0) throw Fail.failed("the plugin in " + pod + " refused the root: " + r.lastError(),
                "check the hsm-plugin log (kubectl logs -c " + Istio.HSM_PLUGIN_CONTAINER + " " + pod + " -n " + ns + ")");
        return r;
    }

    /** How long one plugin command in a pod (verify-cert, import-ca) may take. */
    public static final Duration PLUGIN_CALL = Duration.ofSeconds(60);

    /**
     * The root into one pod's plugin, as load-root does it: the plugin asked first (its verify-cert of
     * `verifyPem`, the chain's CA certificate or the root itself, which `checked` names), the root imported
     * (its import-ca) only where none is loaded, then asked again. A plugin that verifies against another
     * root fails (exit 1). Returns the state before; with `dryRun`, nothing is imported.
     */
    public static RootState loadRootInPod(Kube k, String ns, String pod, String verifyPem, String rootPem, String caId, String checked, boolean dryRun) {
        RootCheck before = verifyInPod(k, ns, pod, verifyPem, PLUGIN_CALL);
        if (before.state() == RootState.REJECTED)
            throw Fail.failed("the plugin in " + pod + " does not verify " + checked + ": " + before.run().lastError(),
                    "the CA certificate must be issued directly by this root: sign-csr with the HSM's root, then upload-chain --replace");
        if (before.state() == RootState.LOADED || dryRun) return before.state();
        importInPod(k, ns, pod, rootPem, caId, PLUGIN_CALL);
        RootCheck after = verifyInPod(k, ns, pod, verifyPem, PLUGIN_CALL);
        if (after.state() != RootState.LOADED)
            throw Fail.failed("the plugin in " + pod + " took the root but still does not verify " + checked + ": " + after.run().lastError(),
                    "check the hsm-plugin log (kubectl logs -c " + Istio.HSM_PLUGIN_CONTAINER + " " + pod + " -n " + ns + ")");
        return before.state();
    }

    /** One command in the pod's hsm-plugin container, `stdin` written whole; fails (exit 1) when the exec cannot run at all. */
    static PodRun runInPod(Kube k, String ns, String pod, List<String> cmd, byte[] stdin, Duration timeout) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream(), status = new ByteArrayOutputStream();
        int exit;
        String what = "exec in " + pod + "/" + Istio.HSM_PLUGIN_CONTAINER;
        try (ExecWatch w = k.call(() -> k.client.pods().inNamespace(ns).withName(pod).inContainer(Istio.HSM_PLUGIN_CONTAINER)
                .redirectingInput().writingOutput(out).writingError(err).writingErrorChannel(status).exec(cmd.toArray(String[]::new)), what)) {
            send(w, stdin);
            try {
                exit = w.exitCode().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                // the input could not be sent: the command ended before reading it, and only sh or head missing ends it so early
                if (e.getCause() instanceof java.io.IOException) throw cannotRun(pod, "it ended before reading its input");
                throw e;
            }
        } catch (KubernetesClientException e) {   // the exec's stream can fail after it opened, outside k.call
            throw k.explain(e, what);
        } catch (TimeoutException e) {
            throw Fail.failed(what + " did not finish within " + timeout.toSeconds() + " s",
                    "check the plugin answers on its socket (kubectl logs -c " + Istio.HSM_PLUGIN_CONTAINER + " " + pod + " -n " + ns + ")");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof KubernetesClientException kce) throw k.explain(kce, what);
            throw Fail.failed(what + " failed: " + Step.describe(e.getCause()), "check you may exec into istiod's pods (kubectl exec)");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw Fail.failed(what + " was interrupted", null);
        }
        String o = out.toString(StandardCharsets.UTF_8), e = err.toString(StandardCharsets.UTF_8);
        String failure = Kube.execStatusMessage(status.toString(StandardCharsets.UTF_8));
        if (exit == 126 || exit == 127 || (failure != null && failure.contains("executable file not found")))
            throw cannotRun(pod, exit > 0 ? "exit " + exit : null);
        if (exit < 0)
            throw Fail.failed(what + " failed" + (failure == null ? "" : ": " + failure), "check the pod is running (kubectl get pod " + pod + " -n " + ns + ")");
        return new PodRun(exit, o, e, failure);
    }

    /**
     * Writes the command's input. A command that ended before it read it (no shell, no plugin)
     * fails the write, as fabric8 reports it either way (its exception or a closed stream's): the
     * exit code, or the exec's own failure, then says why.
     */
    private static void send(ExecWatch w, byte[] stdin) {
        try {
            w.getInput().write(stdin);
            w.getInput().flush();
        } catch (KubernetesClientException | java.io.IOException ended) {
            // the exit code says why
        }
    }

    private static Fail cannotRun(String pod, String why) {
        return Fail.failed("the " + Istio.HSM_PLUGIN_CONTAINER + " container of " + pod + " cannot run sh, head or " + PLUGIN_BINARY
                        + (why == null ? "" : " (" + why + ")"),
                "the plugin image must be the Thales k8s-kms-plugin image (a shell and " + PLUGIN_BINARY + " in it)");
    }

    /**
     * status's line "the root is loaded in the running istiod's plugin", for each pod given (the
     * istiod pods of the revision): the plugin is asked with its own verify-cert of the HSM root,
     * in the pod. Where it cannot be asked (no right to exec, no kubelet), the pod's spec is the
     * evidence: install-asm's root hook in hsm-plugin, ConfigMap istio-hsm-root holding the HSM
     * root, and hsm-plugin running (the kubelet marks it running only once its postStart
     * succeeded): done, saying so; anything less is unknown, with why.
     */
    public static Checklist.Check rootLoaded(Kube k, String ns, List<io.fabric8.kubernetes.api.model.Pod> pods,
                                             java.security.cert.X509Certificate hsmRoot, String caId, Duration timeout) {
        if (pods.isEmpty()) return Checklist.Check.missing("no istiod pod in " + ns, "install-asm");
        if (hsmRoot == null) return Checklist.Check.unknown("the HSM root was not read, so the plugins were not asked", "see the line hsm: root CA");
        String rootPem = Pki.pem(hsmRoot);
        String[] hookRoot = null;   // {problem or null}, read once, when first needed
        List<Checklist.Check> parts = new java.util.ArrayList<>();
        List<String> asked = new java.util.ArrayList<>(), how = new java.util.ArrayList<>();
        for (var p : pods) {
            String pod = p.getMetadata().getName();
            Checklist.Check c;
            if (!Pods.containerRunning(p, Istio.HSM_PLUGIN_CONTAINER)) {
                c = Checklist.Check.unknown(pod + ": its " + Istio.HSM_PLUGIN_CONTAINER + " is not running, so it cannot be asked", "istiod-status");
                how.add("not-running");
            } else {
                try {
                    RootCheck r = verifyInPod(k, ns, pod, rootPem, timeout);
                    how.add("asked");
                    c = switch (r.state()) {
                        case LOADED -> Checklist.Check.done(pod + ": its plugin verifies the HSM root (asked with verify-cert)");
                        case NOT_LOADED -> Checklist.Check.wrong(pod + ": its plugin has no root loaded (" + NOT_LOADED + ")", "load-root");
                        case REJECTED -> Checklist.Check.wrong(pod + ": its plugin does not verify the HSM root '" + Pki.name(hsmRoot) + "': "
                                + r.run().lastError(), "another root is loaded there: delete the pod (its new plugin starts empty), then load-root");
                    };
                } catch (Fail cannotAsk) {
                    String problem = PluginRootHook.rootHookProblem(p, caId);
                    if (problem == null) {
                        if (hookRoot == null) hookRoot = new String[] {hookRootProblem(k, ns, hsmRoot)};
                        problem = hookRoot[0];
                    }
                    how.add(problem == null ? "postStart-hook" : "unknown");
                    c = problem == null
                            ? Checklist.Check.done(pod + ": loaded by the postStart hook, not asked (" + cannotAsk.getMessage() + ")")
                            : Checklist.Check.unknown(pod + ": its plugin cannot be asked (" + cannotAsk.getMessage() + "), and " + problem,
                                    cannotAsk.hint == null ? "load-root" : cannotAsk.hint + "; or install-asm with the root hook");
                }
            }
            asked.add(pod);
            parts.add(c);
        }
        String state = Checklist.Check.worst(parts);
        String fix = parts.stream().filter(c -> c.state().equals(state)).map(Checklist.Check::fix).filter(java.util.Objects::nonNull).findFirst().orElse(null);
        return new Checklist.Check(state, String.join("; ", parts.stream().map(Checklist.Check::detail).toList()), fix, Map.of())
                .with("pods", asked).with("evidence", how);
    }

    /** Why ConfigMap istio-hsm-root is no evidence that the HSM root was loaded, or null when it holds exactly that root. */
    static String hookRootProblem(Kube k, String ns, java.security.cert.X509Certificate hsmRoot) {
        io.fabric8.kubernetes.api.model.ConfigMap cm;
        try {
            cm = k.call(() -> k.client.configMaps().inNamespace(ns).withName(PluginRootHook.ROOT_CONFIGMAP).get(), "read ConfigMap " + PluginRootHook.ROOT_CONFIGMAP);
        } catch (Fail f) {
            return f.getMessage();
        }
        String pem = cm == null || cm.getData() == null ? null : cm.getData().get(PluginRootHook.ROOT_KEY);
        if (pem == null) return cm == null ? "there is no ConfigMap " + PluginRootHook.ROOT_CONFIGMAP + " (install-asm's root hook)" : "ConfigMap " + PluginRootHook.ROOT_CONFIGMAP + " has no " + PluginRootHook.ROOT_KEY;
        try {
            List<java.security.cert.X509Certificate> certs = Pki.certificates(Pki.pemBlocks(pem, "ConfigMap " + PluginRootHook.ROOT_CONFIGMAP), "ConfigMap " + PluginRootHook.ROOT_CONFIGMAP);
            if (certs.size() == 1 && Pki.sameCert(certs.get(0), hsmRoot)) return null;
            return "ConfigMap " + PluginRootHook.ROOT_CONFIGMAP + " holds '" + Pki.name(certs.get(0)) + "', not the HSM root";
        } catch (Fail f) {
            return f.getMessage();
        }
    }
}
