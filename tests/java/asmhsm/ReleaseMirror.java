package asmhsm;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A local mirror of the release archives (the JDK's HTTP server) for fetch-release: it serves what
 * a test publishes, and can cut a download short or stall one half-way (to interrupt a step while
 * it downloads).
 */
final class ReleaseMirror implements AutoCloseable {
    final Map<String, byte[]> files = new ConcurrentHashMap<>();
    /** Paths whose response stops half-way through the announced length. */
    final Set<String> cutShort = ConcurrentHashMap.newKeySet();
    /** Paths whose next response sends half, then waits (until close) before the rest. */
    final Set<String> stallOnce = ConcurrentHashMap.newKeySet();
    final AtomicInteger requests = new AtomicInteger();
    private final CountDownLatch closing = new CountDownLatch(1);
    private final HttpServer server;
    private final java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newCachedThreadPool();

    ReleaseMirror() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/asm/", ex -> {
            requests.incrementAndGet();
            String name = ex.getRequestURI().getPath().substring("/asm/".length());
            byte[] body = files.get(name);
            try (ex) {
                if (body == null) {
                    ex.sendResponseHeaders(404, -1);
                    return;
                }
                ex.sendResponseHeaders(200, body.length);
                OutputStream o = ex.getResponseBody();
                // cut short: closing the exchange with bytes still owed drops the connection
                int half = body.length / 2;
                o.write(body, 0, cutShort.contains(name) || stallOnce.contains(name) ? half : body.length);
                if (stallOnce.remove(name)) {
                    o.flush();
                    closing.await(60, TimeUnit.SECONDS);
                    o.write(body, half, body.length - half);
                }
            } catch (IOException expected) {
                // the client sees the connection end early, or went away
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        server.setExecutor(threads);   // a stalled response must not hold up the next request
        server.start();
    }

    void publish(String name, byte[] content, byte[] signature) {
        files.put(name, content);
        files.put(name + ".1.sig", signature);
    }

    String baseUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/asm/";
    }

    /** The address of the server itself, for a proxy setting. */
    String address() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @Override
    public void close() {
        closing.countDown();
        server.stop(0);
        threads.shutdownNow();
    }
}
