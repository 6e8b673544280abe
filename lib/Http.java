package asmhsm;

import java.io.IOException;
import java.io.InputStream;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

/**
 * The JDK's HTTP client and TLS as Kube and Vault use them. Kept apart from Pki on purpose: this
 * class loads nothing from Bouncy Castle, whose signed jars are slow to open.
 */
public final class Http {
    private Http() {}

    /** Selector threads of clients that outlive their step (Kube's shared clients). */
    private static final Set<Thread> KEPT = ConcurrentHashMap.newKeySet();

    /**
     * Trust managers that trust exactly the CA certificates in this PEM, as kubectl and the Vault
     * CLI trust their CA file: not the JVM's bundle of public CAs besides (which is also slow to load).
     */
    public static TrustManager[] trustOnly(InputStream pem) throws IOException, GeneralSecurityException {
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        int n = 0;
        for (Certificate ca : CertificateFactory.getInstance("X.509").generateCertificates(pem))
            store.setCertificateEntry("ca-" + n++, ca);
        if (n == 0) throw new GeneralSecurityException("no certificate in it");
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(store);
        return tmf.getTrustManagers();
    }

    /** The live selector threads of JDK HttpClients (each client has one). */
    static Set<Thread> selectorThreads() {
        // the live threads, from the root thread group: Thread.getAllStackTraces would also take every stack
        ThreadGroup root = Thread.currentThread().getThreadGroup();
        while (root.getParent() != null) root = root.getParent();
        Thread[] all = new Thread[root.activeCount() + 16];
        int n = root.enumerate(all, true);
        Set<Thread> threads = new HashSet<>();
        for (int i = 0; i < n; i++)
            if (all[i].getName().startsWith("HttpClient-") && all[i].getName().endsWith("-SelectorManager")) threads.add(all[i]);
        return threads;
    }

    /**
     * Ends the selector threads of JDK HttpClients no longer used. On Java 17 such a thread stays in
     * epoll (native code) until its client is garbage-collected, even after close(), and the JVM
     * waits up to 0.3 s at exit for threads in native code. Interrupting it ends its loop.
     */
    static void endSelectorThreads(Set<Thread> threads) {
        for (Thread t : threads) t.interrupt();
        for (Thread t : threads) {
            try {
                t.join(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Marks these threads' clients as outliving their step ({@link #endStepThreads} leaves them). */
    static void keep(Set<Thread> threads, boolean kept) {
        if (kept) KEPT.addAll(threads);
        else KEPT.removeAll(threads);
    }

    /** Ends the selector threads made since `before`, but for kept clients' (see Step.call). */
    static void endStepThreads(Set<Thread> before) {
        Set<Thread> made = selectorThreads();
        made.removeAll(before);
        made.removeAll(KEPT);
        endSelectorThreads(made);
    }
}
