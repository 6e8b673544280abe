package asmhsm;

import io.fabric8.mockwebserver.http.ByteString;
import io.fabric8.mockwebserver.http.Dispatcher;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.fabric8.mockwebserver.http.WebSocket;
import io.fabric8.mockwebserver.http.WebSocketListener;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The Thales plugin as it runs in istiod's hsm-plugin container, reached by exec through the
 * fabric8 mock server (the lab has no kubelet). It behaves as the real one was seen to
 * (reference/hsm-formats.md, "What the real components do"): a fresh plugin process knows no
 * root, whatever the token holds, so `verify-cert` fails with "no loaded CA cert for
 * verification" until `import-ca` ran in that process; then it verifies the FIRST certificate
 * it is given against that root alone (no intermediates, serverAuth or no EKU). Each import-ca
 * adds one more copy on the token ({@link #imports}). The client commands reach the plugin only
 * through `--socket` and the container's SOCKET; `-f /dev/stdin` reads until the shell's
 * `head -c N` ends it. {@link #restartPlugin} is a new pod's (or a restarted container's) fresh plugin.
 */
final class PluginStandIn extends Dispatcher {
    static final String SOCKET = "/var/run/hsm-socket/.sock";
    private static final Pattern EXEC = Pattern.compile("/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec\\?(.*)");
    private static final Pattern SCRIPT = Pattern.compile(
            "head -c \"\\$0\" \\| exec /k8s-kms-plugin (verify-cert|import-ca) -f /dev/stdin --socket \"\\$SOCKET\"( --ca-id \"\\$1\")?");

    private final Dispatcher rest;
    /** pod -> the root its plugin process has loaded */
    final Map<String, X509Certificate> loaded = new ConcurrentHashMap<>();
    final Map<String, String> caIds = new ConcurrentHashMap<>();
    /** Copies import-ca added on the token (the real plugin is not idempotent). */
    final List<String> imports = Collections.synchronizedList(new ArrayList<>());
    /** Every command run, "pod: verify-cert" / "pod: import-ca" */
    final List<String> calls = Collections.synchronizedList(new ArrayList<>());
    /** An image without sh (exec answers as the kubelet does for a missing executable). */
    volatile boolean noShell;

    PluginStandIn(Dispatcher rest) {
        this.rest = rest;
    }

    void restartPlugin(String pod) {
        loaded.remove(pod);
    }

    @Override
    public MockResponse dispatch(RecordedRequest request) {
        Matcher m = EXEC.matcher(request.getPath());
        if (!m.matches() || !request.getPath().contains("container=" + Istio.HSM_PLUGIN_CONTAINER)) return rest.dispatch(request);
        String pod = m.group(2);
        List<String> cmd = new ArrayList<>();
        for (String kv : m.group(3).split("&"))
            if (kv.startsWith("command=")) cmd.add(URLDecoder.decode(kv.substring(8), StandardCharsets.UTF_8));
        boolean stdin = m.group(3).contains("stdin=true");
        return new MockResponse().withWebSocketUpgrade(new Session(pod, cmd, stdin));
    }

    /** One exec: reads stdin (channel 0) until the command has what `head -c N` lets through, then answers. */
    private final class Session extends WebSocketListener {
        final String pod;
        final List<String> cmd;
        final boolean stdin;
        final ByteArrayOutputStream in = new ByteArrayOutputStream();
        boolean answered;

        Session(String pod, List<String> cmd, boolean stdin) {
            this.pod = pod;
            this.cmd = cmd;
            this.stdin = stdin;
        }

        @Override
        public void onOpen(WebSocket ws, io.fabric8.mockwebserver.http.Response response) {
            if (noShell || cmd.size() < 3 || !cmd.get(0).equals("sh")) {
                answer(ws, "", "", 127, "exec: \"" + (cmd.isEmpty() ? "" : cmd.get(0)) + "\": executable file not found in $PATH");
                return;
            }
            if (!stdin) answer(ws, "", "Error: read /dev/stdin: no input\n", 1, null);
        }

        @Override
        public void onMessage(WebSocket ws, ByteString bytes) {
            onMessage(ws, bytes.toByteArray());
        }

        @Override
        public void onMessage(WebSocket ws, byte[] frame) {
            if (answered || frame.length == 0 || frame[0] != 0) return;
            in.write(frame, 1, frame.length - 1);
            Matcher s = SCRIPT.matcher(cmd.get(2));
            if (!cmd.get(1).equals("-c") || !s.matches() || cmd.size() < 4) {
                answer(ws, "", "sh: the stand-in plugin does not know this script: " + cmd, 2, null);
                return;
            }
            int want = Integer.parseInt(cmd.get(3));
            if (in.size() < want) return;
            byte[] pem = java.util.Arrays.copyOf(in.toByteArray(), want);
            try {
                run(ws, s.group(1), pem, s.group(2) != null ? cmd.get(4) : null);
            } catch (Exception e) {
                answer(ws, "", "Error: " + e.getMessage() + "\n", 1, null);
            }
        }

        private void run(WebSocket ws, String command, byte[] pem, String caId) throws Exception {
            calls.add(pod + ": " + command);
            X509Certificate first = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(pem));
            if (command.equals("import-ca")) {
                loaded.put(pod, first);
                caIds.put(pod, caId);
                imports.add(caId);
                answer(ws, "", "", 0, null);
                return;
            }
            X509Certificate root = loaded.get(pod);
            if (root == null) {
                answer(ws, "", "Error: rpc error: code = Unknown desc = no loaded CA cert for verification\n", 1, null);
                return;
            }
            PKIXParameters p = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
            p.setRevocationEnabled(false);
            X509CertSelector target = new X509CertSelector();
            target.setExtendedKeyUsage(Set.of("1.3.6.1.5.5.7.3.1"));
            p.setTargetCertConstraints(target);
            try {
                if (!first.equals(root))
                    CertPathValidator.getInstance("PKIX").validate(CertificateFactory.getInstance("X.509").generateCertPath(List.of(first)), p);
                answer(ws, "", "", 0, null);
            } catch (java.security.cert.CertPathValidatorException e) {
                answer(ws, "", "Error: rpc error: code = Unknown desc = x509: certificate signed by unknown authority\n", 1, null);
            }
        }

        /** stdout (channel 1), stderr (2), then the kubelet's Status (3), as the API server relays them. */
        private void answer(WebSocket ws, String out, String err, int exit, String execFailure) {
            answered = true;
            if (!out.isEmpty()) ws.send(frame(1, out));
            if (!err.isEmpty()) ws.send(frame(2, err));
            String status = exit == 0 ? "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Success\"}"
                    : execFailure != null ? "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"" + execFailure.replace("\"", "\\\"")
                    + "\",\"reason\":\"InternalError\"}"
                    : "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"command terminated with non-zero exit code\","
                    + "\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"" + exit + "\"}]}}";
            ws.send(frame(3, status));
            ws.close(1000, "");
        }

        private byte[] frame(int channel, String text) {
            byte[] t = text.getBytes(StandardCharsets.UTF_8);
            byte[] f = new byte[t.length + 1];
            f[0] = (byte) channel;
            System.arraycopy(t, 0, f, 1, t.length);
            return f;
        }
    }
}
