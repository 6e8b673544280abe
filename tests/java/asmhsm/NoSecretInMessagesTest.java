package asmhsm;

import static asmhsm.KubeVaultStepsSupport.concat;
import static asmhsm.KubeVaultStepsSupport.env;
import static asmhsm.KubeVaultStepsSupport.errorLines;
import static asmhsm.KubeVaultStepsSupport.json;
import static asmhsm.KubeVaultStepsSupport.tool;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * A secret never appears in a message: a secret file (the HSM PIN, a service account JWT, a private
 * key) given where another file belongs is refused by what it is not and its size, in the error
 * line, the --json result and anything else the step prints; against the lab's kube-apiserver and
 * OpenBao, which are left as they were.
 */
@ExtendWith(LabExtension.class)
class NoSecretInMessagesTest {
    @TempDir Path tmp;
    Path cwd;
    List<Secret> secrets;

    /** A secret file and the pieces of it no output may hold. */
    record Secret(String kind, Path file, List<String> pieces) {
        long size() throws Exception { return Files.size(file); }

        void assertNotIn(Cli.Result r) {
            for (String p : pieces) assertThat(r.all()).as(kind + " " + file + " quoted in\n" + r).doesNotContain(p);
        }
    }

    static final SecureRandom RANDOM = new SecureRandom();

    static String hex(int bytes) {
        byte[] b = new byte[bytes];
        RANDOM.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    static Secret secretFile(Path dir, String kind, String content, List<String> pieces) throws Exception {
        Path f = dir.resolve(kind);
        Files.writeString(f, content);
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-------"));
        return new Secret(kind, f, pieces);
    }

    @BeforeEach
    void secrets() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("secrets"));
        cwd = Files.createDirectories(tmp.resolve("cwd"));
        String pin = "pin-" + hex(8);
        Base64.Encoder b64u = Base64.getUrlEncoder().withoutPadding();
        String[] jwt = {b64u.encodeToString("{\"alg\":\"RS256\",\"kid\":\"k\"}".getBytes(StandardCharsets.UTF_8)),
                b64u.encodeToString(("{\"sub\":\"system:serviceaccount:vault:default\",\"n\":\"" + hex(8) + "\"}").getBytes(StandardCharsets.UTF_8)),
                b64u.encodeToString(HexFormat.of().parseHex(hex(64)))};
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(256);
        String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(g.generateKeyPair().getPrivate().getEncoded());
        List<String> keyLines = body.lines().filter(l -> l.length() >= 16).toList();
        secrets = List.of(
                secretFile(dir, "pin", pin + "\n", List.of(pin)),
                secretFile(dir, "jwt", String.join(".", jwt) + "\n", List.of(jwt[1], jwt[2])),
                secretFile(dir, "key.pem", "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n", keyLines));
    }

    static List<Path> files(Path dir) throws Exception {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> !p.equals(dir)).toList();
        }
    }

    /** Exit 2, the two lines of a refusal (the first as expected), the same error in --json, and no secret anywhere. */
    void refused(Cli.Result r, boolean asJson, String firstLine, List<Secret> mustNotShow) {
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(errorLines(r)).as(r.toString()).hasSize(2);
        assertThat(errorLines(r).get(0)).as(r.toString()).startsWith("error: " + firstLine);
        if (asJson) {
            assertThat(json(r).get("ok").asBoolean()).isFalse();
            assertThat(json(r).get("exitCode").asInt()).isEqualTo(2);
            assertThat("error: " + json(r).get("error").asString()).isEqualTo(errorLines(r).get(0));
        }
        for (Secret s : mustNotShow) s.assertNotIn(r);
    }

    static String[] withJson(String[] args, boolean asJson) {
        return asJson ? concat(args, List.of("--json")) : args;
    }

    @Test
    void aSecretGivenAsTheKubeconfigIsNamedNotQuoted(Lab lab) throws Exception {
        String ns = lab.freshNamespace();
        List<String[]> steps = List.of(
                new String[] {"enable-injection", "-n", ns, "--revision", "asm-198-6"},
                new String[] {"istiod-service", "-n", ns},
                new String[] {"k8s-vault-prep", "--cluster-suffix", "c9", "--namespace", ns, "--binding", "tokenreview-" + ns});
        for (Secret s : secrets)
            for (String[] step : steps)
                for (boolean asJson : new boolean[] {false, true}) {
                    Cli.Result r = Cli.asm(env(lab, "KUBECONFIG", s.file().toString()), cwd, withJson(step, asJson));
                    refused(r, asJson, "kubeconfig " + s.file() + " is not a kubeconfig (" + s.size() + " bytes, no 'clusters:')", secrets);
                }
        assertThat(files(cwd)).isEmpty();
        var k = lab.admin();
        assertThat(k.namespaces().withName(ns).get().getMetadata().getLabels()).doesNotContainKey("istio.io/rev");
        assertThat(k.services().inNamespace(ns).list().getItems()).isEmpty();
        assertThat(k.rbac().clusterRoleBindings().withName("tokenreview-" + ns).get()).isNull();
    }

    /** The kubeconfig is fine, but a file it names (CA, client certificate, client key) is a secret. */
    @Test
    void aSecretNamedByTheKubeconfigAsATlsFileIsNamedNotQuoted(Lab lab) throws Exception {
        String ns = lab.freshNamespace();
        Path pki = lab.dir().resolve("pki");
        Path pin = secrets.get(0).file(), jwt = secrets.get(1).file(), key = secrets.get(2).file();
        record Case(String ca, String cert, String clientKey, String expect) {}
        String ca = lab.k8sCaCert().toString(), cert = pki.resolve("admin.crt").toString(), ckey = pki.resolve("admin.key").toString();
        List<Case> cases = List.of(
                new Case(pin.toString(), cert, ckey, "certificate-authority " + pin + " is not PEM (" + Files.size(pin) + " bytes, no -----BEGIN line)"),
                new Case(jwt.toString(), cert, ckey, "certificate-authority " + jwt + " is not PEM (" + Files.size(jwt) + " bytes, no -----BEGIN line)"),
                new Case(key.toString(), cert, ckey, "cannot use the kubeconfig's TLS files"),
                new Case(ca, pin.toString(), ckey, "client-certificate " + pin + " is not PEM"),
                new Case(ca, key.toString(), ckey, "cannot use the kubeconfig's TLS files"),
                new Case(ca, cert, jwt.toString(), "client-key " + jwt + " is not PEM (" + Files.size(jwt) + " bytes"),
                new Case(ca, cert, pin.toString(), "client-key " + pin + " is not PEM"),
                new Case(null, pin.toString(), ckey, "client-certificate " + pin + " is not PEM"),
                new Case(null, key.toString(), ckey, "cannot use the kubeconfig's TLS files"));
        int i = 0;
        for (Case c : cases) {
            Path kubeconfig = Files.writeString(tmp.resolve("kubeconfig-" + i++), String.join("\n", "apiVersion: v1", "kind: Config",
                    "current-context: lab", "clusters:", "- name: lab", "  cluster:", "    server: " + lab.k8sAddr(),
                    c.ca() == null ? "    insecure-skip-tls-verify: true" : "    certificate-authority: " + c.ca(),
                    "contexts:", "- name: lab", "  context: {cluster: lab, user: admin}",
                    "users:", "- name: admin", "  user: {client-certificate: " + c.cert() + ", client-key: " + c.clientKey() + "}", ""));
            Cli.Result r = Cli.asm(env(lab, "KUBECONFIG", kubeconfig.toString()), cwd, "istiod-service", "-n", ns, "--json");
            refused(r, true, c.expect(), secrets);
        }
        assertThat(lab.admin().services().inNamespace(ns).list().getItems()).isEmpty();
    }

    @Test
    void vaultSetupNamesASecretGivenForAnotherFileWithoutQuotingIt(Lab lab) throws Exception {
        String s = lab.freshMount();
        Path dir = Files.createDirectories(cwd.resolve(s));
        Path jwtFile = dir.resolve(s + "-tokenreview_jwt"), addrFile = dir.resolve(s + "-k8s_addr"), caFile = dir.resolve(s + "-k8s_cert");
        Files.copy(secrets.get(1).file(), jwtFile, java.nio.file.StandardCopyOption.COPY_ATTRIBUTES);
        Files.copy(lab.k8sCaCert(), caFile);
        var hsm = KubeVaultStepsSupport.hsmFiles(lab, tmp.resolve("hsm"));
        Secret hsmPin = new Secret("HSM PIN", hsm.pin(), List.of(Files.readString(hsm.pin()).strip()));
        Secret hsmKey = new Secret("HSM client key", hsm.clientKey(),
                Files.readString(hsm.clientKey()).lines().filter(l -> !l.startsWith("-----") && l.length() >= 16).toList());
        List<Secret> all = new ArrayList<>(secrets);
        all.add(hsmPin);
        all.add(hsmKey);
        String addr = s + "/" + s + "-k8s_addr";
        for (boolean asJson : new boolean[] {false, true}) {
            for (Secret secret : secrets) {
                // a secret copied where k8s-vault-prep's address file belongs
                Files.writeString(addrFile, Files.readString(secret.file()));
                Cli.Result r = Cli.asm(env(lab), cwd, withJson(concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()), asJson));
                refused(r, asJson, "Kubernetes API address file " + addr + " is not an https://HOST:PORT address (" + secret.size() + " bytes)", all);
                Files.writeString(addrFile, lab.k8sAddr() + "\n");

                // a secret as the HSM client certificate, the server certificate, the Kubernetes CA, VAULT_CACERT
                boolean isKey = secret.kind().equals("key.pem");
                String notPem = " is not PEM (" + secret.size() + " bytes, no -----BEGIN line)";
                List<String> args = new ArrayList<>(hsm.args());
                args.set(args.indexOf("--client-cert") + 1, secret.file().toString());
                r = Cli.asm(env(lab), cwd, withJson(concat(new String[] {"vault-setup", "--cluster-suffix", s}, args), asJson));
                refused(r, asJson, "HSM client certificate " + (isKey ? secret.file() + " holds a 'PRIVATE KEY' block, not a certificate"
                        : "file " + secret.file() + notPem), all);

                args = new ArrayList<>(hsm.args());
                args.set(args.indexOf("--server-cert") + 1, secret.file().toString());
                r = Cli.asm(env(lab), cwd, withJson(concat(new String[] {"vault-setup", "--cluster-suffix", s}, args), asJson));
                refused(r, asJson, "HSM server certificate " + (isKey ? secret.file() + " holds a 'PRIVATE KEY' block"
                        : "file " + secret.file() + notPem), all);

                Files.writeString(caFile, Files.readString(secret.file()));
                r = Cli.asm(env(lab), cwd, withJson(concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()), asJson));
                refused(r, asJson, "Kubernetes CA certificate " + s + "/" + s + "-k8s_cert " + (isKey ? "holds a 'PRIVATE KEY' block" : notPem.strip()), all);
                Files.copy(lab.k8sCaCert(), caFile, java.nio.file.StandardCopyOption.REPLACE_EXISTING);

                r = Cli.asm(env(lab, "VAULT_CACERT", secret.file().toString()), cwd,
                        withJson(concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()), asJson));
                refused(r, asJson, "Vault CA file " + secret.file() + (isKey ? " holds no usable CA certificate" : notPem), all);
                r = Cli.asm(env(lab, "VAULT_CACERT", secret.file().toString()), cwd, withJson(new String[] {"vault-verify", "--cluster-suffix", s}, asJson));
                refused(r, asJson, "Vault CA file " + secret.file() + (isKey ? " holds no usable CA certificate" : notPem), all);
            }
        }
        assertThat(tool(lab, null, "bao", "secrets", "list")).doesNotContain("asm-" + s + "/");
        assertThat(tool(lab, null, "bao", "auth", "list")).doesNotContain("asm-" + s + "/");
        assertThat(KubeVaultStepsSupport.toolResult(lab, null, "bao", "policy", "read", "asm-" + s + "-hsm-policy").exit()).isNotZero();
        assertThat(files(cwd)).containsExactlyInAnyOrder(dir, jwtFile, addrFile, caFile);
    }

    /**
     * Another secret as the operator's Vault token (VAULT_TOKEN, ~/.vault-token): one with line breaks (a key)
     * is refused by what it is not and its size before it is sent; one that looks like a token is refused by
     * Vault (403). Neither is quoted, and Vault is left as it was.
     */
    @Test
    void aSecretGivenAsTheVaultTokenIsNamedNotQuoted(Lab lab) throws Exception {
        String s = lab.freshMount();
        Path dir = Files.createDirectories(cwd.resolve(s));
        Files.copy(secrets.get(1).file(), dir.resolve(s + "-tokenreview_jwt"), java.nio.file.StandardCopyOption.COPY_ATTRIBUTES);
        Files.writeString(dir.resolve(s + "-k8s_addr"), lab.k8sAddr() + "\n");
        Files.copy(lab.k8sCaCert(), dir.resolve(s + "-k8s_cert"));
        var hsm = KubeVaultStepsSupport.hsmFiles(lab, tmp.resolve("hsm"));
        List<Secret> all = new ArrayList<>(secrets);
        all.add(new Secret("HSM PIN", hsm.pin(), List.of(Files.readString(hsm.pin()).strip())));
        Path home = Files.createDirectories(tmp.resolve("home"));
        Path tokenFile = home.resolve(".vault-token");
        Path binary = tmp.resolve("binary");
        Files.write(binary, new byte[] {(byte) 0xff, (byte) 0xfe, 0x01, 'a', (byte) 0x80});
        List<String[]> steps = List.of(concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()),
                new String[] {"status", "--cluster-suffix", s});
        List<Path> tokens = new ArrayList<>(secrets.stream().map(Secret::file).toList());
        tokens.add(binary);
        for (Path given : tokens)
            for (boolean inFile : new boolean[] {false, true})
                for (String[] step : steps) {
                    Map<String, String> env = inFile ? env(lab, "VAULT_TOKEN", null, "HOME", home.toString())
                            : env(lab, "VAULT_TOKEN", new String(Files.readAllBytes(given), StandardCharsets.ISO_8859_1));
                    if (inFile) Files.copy(given, tokenFile, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                    Cli.Result r = Cli.asm(env, cwd, concat(step, List.of("--json")));
                    for (Secret secret : all) secret.assertNotIn(r);
                    String where = inFile ? tokenFile.toString() : "VAULT_TOKEN";
                    boolean oneWord = !given.equals(binary) && !given.equals(secrets.get(2).file());
                    if (oneWord) {
                        // sent, and refused by Vault
                        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
                        assertThat(r.all()).as(r.toString()).contains("refused to").contains("403");
                    } else if (step[0].equals("status")) {
                        assertThat(r.exit()).as(r.toString()).isEqualTo(1);
                        assertThat(r.stdout()).as(r.toString()).contains(where + " does not hold a Vault token (");
                    } else {
                        // the key's size as sent; the binary one's depends on how the environment carried its bytes
                        String size = given.equals(binary) ? "" : Files.readString(given).trim().length() + " bytes, ";
                        refused(r, true, where + " does not hold a Vault token (" + size, all);
                        assertThat(errorLines(r).get(0)).endsWith(given.equals(binary) ? ", it has characters other than visible ASCII)"
                                : ", it has spaces or line breaks)");
                    }
                }
        assertThat(tool(lab, null, "bao", "secrets", "list")).doesNotContain("asm-" + s + "/");
        assertThat(tool(lab, null, "bao", "auth", "list")).doesNotContain("asm-" + s + "/");
    }

    /** Another secret where k8s-vault-prep's token reviewer JWT belongs: named by what it is not and its size. */
    @Test
    void vaultSetupNamesASecretGivenAsTheReviewerJwtWithoutQuotingIt(Lab lab) throws Exception {
        String s = lab.freshMount();
        Path dir = Files.createDirectories(cwd.resolve(s));
        Path jwtFile = dir.resolve(s + "-tokenreview_jwt");
        Files.writeString(dir.resolve(s + "-k8s_addr"), lab.k8sAddr() + "\n");
        Files.copy(lab.k8sCaCert(), dir.resolve(s + "-k8s_cert"));
        var hsm = KubeVaultStepsSupport.hsmFiles(lab, tmp.resolve("hsm"));
        for (Secret secret : List.of(secrets.get(0), secrets.get(2)))
            for (boolean asJson : new boolean[] {false, true}) {
                Files.copy(secret.file(), jwtFile, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.COPY_ATTRIBUTES);
                Cli.Result r = Cli.asm(env(lab), cwd, withJson(concat(new String[] {"vault-setup", "--cluster-suffix", s}, hsm.args()), asJson));
                refused(r, asJson, "token reviewer JWT file " + s + "/" + s + "-tokenreview_jwt is not a JWT (" + secret.size() + " bytes)", secrets);
            }
        assertThat(tool(lab, null, "bao", "secrets", "list")).doesNotContain("asm-" + s + "/");
    }

    /** Files other steps read: preflight's versions list, decrypt-csr's saved Secret. */
    @Test
    void otherStepsNameASecretGivenForAnotherFileWithoutQuotingIt(Lab lab) throws Exception {
        for (Secret s : secrets) {
            Cli.Result r = Cli.asm(env(lab), cwd, "preflight", "--versions-file", s.file().toString(), "--json");
            refused(r, true, "line 1 of versions file " + s.file() + " is not a version prefix (" + s.size() + " bytes)", secrets);
            r = Cli.asm(env(lab), cwd, "decrypt-csr", "-f", s.file().toString(), "--json");
            assertThat(r.exit()).as(r.toString()).isNotZero();
            assertThat(errorLines(r)).as(r.toString()).hasSize(2);
            assertThat(errorLines(r).get(0)).as(r.toString()).contains(s.file().toString());
            for (Secret any : secrets) any.assertNotIn(r);
            // preflight goes on after a kubeconfig it cannot use, naming it on each cluster check's line
            r = Cli.asm(env(lab, "KUBECONFIG", s.file().toString()), cwd, "preflight", "--json");
            assertThat(r.exit()).as(r.toString()).isEqualTo(1);
            assertThat(r.stdout()).contains("kubeconfig " + s.file() + " is not a kubeconfig (" + s.size() + " bytes, no 'clusters:')");
            for (Secret any : secrets) any.assertNotIn(r);
        }
        assertThat(files(cwd)).isEmpty();
    }
}
