package asmhsm;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * A plain-HTTP proxy in front of the lab's OpenBao that holds one chosen write for a while before
 * passing it on: a step talking to it (VAULT_ADDR) is in the middle of that write for as long, so a
 * test can interrupt it there. Every other request goes straight through.
 */
final class SlowVault implements AutoCloseable {
    private final HttpServer server;
    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final HttpClient vault;
    private final String upstream;
    private volatile String heldPath;
    private volatile Duration hold;
    private final CountDownLatch arrived = new CountDownLatch(1);

    SlowVault(Lab lab) throws IOException {
        upstream = lab.vaultAddr().replaceAll("/$", "");
        vault = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).sslContext(Lab.trusting(lab.vaultCaCert())).build();
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::forward);
        server.setExecutor(threads);
        server.start();
    }

    /** VAULT_ADDR for the step. */
    String addr() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    /** The next write (not GET) to /v1/`path` waits `hold` before it reaches Vault. */
    void holdNextWrite(String path, Duration hold) {
        this.hold = hold;
        this.heldPath = "/v1/" + path;
    }

    /** Waits until the held write has arrived (the step is now in the middle of it). */
    void awaitHeld() throws InterruptedException {
        if (!arrived.await(60, TimeUnit.SECONDS)) throw new AssertionError("no write to " + heldPath + " came within 60 s");
    }

    private void forward(HttpExchange ex) throws IOException {
        try (ex) {
            String method = ex.getRequestMethod(), path = ex.getRequestURI().getRawPath();
            byte[] body = ex.getRequestBody().readAllBytes();
            if (!method.equals("GET") && path.equals(heldPath)) {
                heldPath = null;
                arrived.countDown();
                Thread.sleep(hold.toMillis());
            }
            String query = ex.getRequestURI().getRawQuery();
            HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(upstream + path + (query == null ? "" : "?" + query)))
                    .method(method, body.length == 0 ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
            for (String h : List.of("X-Vault-Token", "X-Vault-Request", "X-Vault-Namespace", "Content-Type")) {
                String v = ex.getRequestHeaders().getFirst(h);
                if (v != null) req.header(h, v);
            }
            HttpResponse<byte[]> answer = vault.send(req.build(), HttpResponse.BodyHandlers.ofByteArray());
            answer.headers().firstValue("Content-Type").ifPresent(v -> ex.getResponseHeaders().set("Content-Type", v));
            byte[] out = answer.body();
            ex.sendResponseHeaders(answer.statusCode(), out.length == 0 ? -1 : out.length);
            if (out.length > 0) try (OutputStream o = ex.getResponseBody()) {
                o.write(out);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        server.stop(0);
        threads.shutdownNow();
    }
}
