package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * What the tests of k8s-vault-prep, vault-setup, vault-verify, control-plane-prep and istiod-service share:
 * the lab's environment, the independent tools that check what the steps did (bao, kubectl, openssl),
 * and HSM credential files.
 */
final class KubeVaultStepsSupport {
    static final JsonMapper JSON = JsonMapper.builder().build();

    private KubeVaultStepsSupport() {}

    /** The lab's environment, as `eval "$(tests/lab/up)"` sets it, with some entries replaced (null removes one). */
    static Map<String, String> env(Lab lab, String... kv) {
        Map<String, String> env = new HashMap<>(lab.env());
        for (int i = 0; i < kv.length; i += 2) env.put(kv[i], kv[i + 1]);
        return env;
    }

    /** Runs a tool of the lab (bao) or of the machine (kubectl, openssl) with the lab's environment; must succeed. */
    static String tool(Lab lab, Path cwd, String... cmd) {
        Cli.Result r = toolResult(lab, cwd, cmd);
        assertThat(r.exit()).as(String.join(" ", cmd) + "\n" + r).isZero();
        return r.stdout();
    }

    static Cli.Result toolResult(Lab lab, Path cwd, String... cmd) {
        List<String> c = new ArrayList<>(List.of(cmd));
        if (c.get(0).equals("bao")) c.set(0, lab.env("LAB_BIN") + "/bao");
        return Cli.run(c, lab.env(), cwd, null);
    }

    /** `bao read -format=json PATH` as JSON (its data), or null when bao finds nothing there. */
    static JsonNode baoRead(Lab lab, String path) {
        Cli.Result r = toolResult(lab, null, "bao", "read", "-format=json", path);
        if (r.exit() != 0 && r.all().contains("No value found")) return null;
        assertThat(r.exit()).as(r.toString()).isZero();
        return JSON.readTree(r.stdout()).get("data");
    }

    static JsonNode kubectlJson(Lab lab, String... args) {
        List<String> c = new ArrayList<>(List.of("kubectl"));
        c.addAll(List.of(args));
        c.addAll(List.of("-o", "json"));
        return JSON.readTree(tool(lab, null, c.toArray(String[]::new)));
    }

    /** HSM credential files as an installation leaves them: certificates, a 0600 key and a 0600 PIN file. */
    record HsmFiles(Path clientCert, Path clientKey, Path serverCert, Path pin) {
        List<String> args() {
            return List.of("--client-cert", clientCert.toString(), "--client-key", clientKey.toString(),
                    "--server-cert", serverCert.toString(), "--pin-file", pin.toString());
        }
    }

    static HsmFiles hsmFiles(Lab lab, Path dir) throws IOException {
        Files.createDirectories(dir);
        for (String name : List.of("client", "server"))
            tool(lab, dir, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", name + ".key", "-out", name + ".crt", "-days", "30", "-subj", "/CN=hsm-" + name);
        Files.setPosixFilePermissions(dir.resolve("client.key"), PosixFilePermissions.fromString("rw-------"));
        Path pin = dir.resolve("pin");
        Files.writeString(pin, "1234-" + dir.getFileName() + "\n");
        Files.setPosixFilePermissions(pin, PosixFilePermissions.fromString("rw-------"));
        return new HsmFiles(dir.resolve("client.crt"), dir.resolve("client.key"), dir.resolve("server.crt"), pin);
    }

    static String[] concat(List<String> head, String... tail) {
        List<String> all = new ArrayList<>(head);
        all.addAll(List.of(tail));
        return all.toArray(String[]::new);
    }

    static String[] concat(String[] head, List<String> tail) {
        List<String> all = new ArrayList<>(List.of(head));
        all.addAll(tail);
        return all.toArray(String[]::new);
    }

    /** The step's own lines on stderr (without SLF4J's notice that it has no logger, which the libraries print). */
    static List<String> errorLines(Cli.Result r) {
        return r.stderr().lines().filter(l -> !l.startsWith("SLF4J(")).toList();
    }

    static JsonNode json(Cli.Result r) {
        return JSON.readTree(r.stdout());
    }

    /** A throwaway OpenBao dev server (plain HTTP, root token "root") for what the shared lab must not suffer, e.g. sealing. */
    static final class DevBao implements AutoCloseable {
        final Process process;
        final String addr;

        DevBao(Lab lab, Path dir) throws Exception {
            int port;
            try (ServerSocket s = new ServerSocket(0)) {
                port = s.getLocalPort();
            }
            addr = "http://127.0.0.1:" + port;
            process = new ProcessBuilder(lab.env("LAB_BIN") + "/bao", "server", "-dev", "-dev-root-token-id=root",
                    "-dev-listen-address=127.0.0.1:" + port)
                    .redirectErrorStream(true).redirectOutput(dir.resolve("devbao.log").toFile()).start();
            Map<String, String> env = Map.of("VAULT_ADDR", addr, "VAULT_TOKEN", "root");
            for (int i = 0; ; i++) {
                if (Cli.run(List.of(lab.env("LAB_BIN") + "/bao", "status"), env, dir, null).exit() == 0) break;
                if (i > 100 || !process.isAlive()) throw new IllegalStateException("bao dev server did not start: "
                        + Files.readString(dir.resolve("devbao.log")));
                Thread.sleep(100);
            }
        }

        String bao(Path dir, String... args) {
            List<String> c = new ArrayList<>(List.of(process.info().command().orElseThrow()));
            c.addAll(List.of(args));
            Cli.Result r = Cli.run(c, Map.of("VAULT_ADDR", addr, "VAULT_TOKEN", "root"), dir, null);
            assertThat(r.exit()).as(r.toString()).isZero();
            return r.stdout();
        }

        @Override
        public void close() throws Exception {
            process.destroy();   // this process only, by its handle
            if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly();
        }
    }
}
