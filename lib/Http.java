package asmhsm;

import java.io.IOException;
import java.io.InputStream;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

/**
 * The JDK's HTTP client and TLS as Kube and Vault use them. Kept apart from Pki on purpose: this
 * class loads nothing from Bouncy Castle, whose signed jars are slow to open.
 */
public final class Http {
    private Http() {}

    /**
     * Runs `make`, which builds an in-memory PKCS#12 key store (fabric8's SSLUtils.keyManagers puts
     * the kubeconfig's client key in one under a constant password), with that store's key
     * encryption at one PBKDF2 iteration instead of the JDK's 10000. Such a store never leaves the
     * process and its password is no secret, so the iterations protect nothing; they cost a step
     * CPU time for nothing (the key is encrypted on the way in and decrypted on the way out).
     * The JDK reads keystore.pkcs12.keyPbeIterationCount (a security property a system property
     * overrides) each time it stores a key; the toolkit writes no PKCS#12 file meanwhile.
     */
    static <T> T withOneIterationKeyStores(KeyStoreWork<T> make) throws IOException, GeneralSecurityException {
        synchronized (Http.class) {
            String was = System.getProperty(PKCS12_KEY_ITERATIONS);
            if (was != null) return make.call();      // the operator chose one: keep it
            System.setProperty(PKCS12_KEY_ITERATIONS, "1");
            try {
                return make.call();
            } finally {
                System.clearProperty(PKCS12_KEY_ITERATIONS);
            }
        }
    }

    private static final String PKCS12_KEY_ITERATIONS = "keystore.pkcs12.keyPbeIterationCount";

    /** Work with key stores, as fabric8's SSLUtils does it. */
    interface KeyStoreWork<T> {
        T call() throws IOException, GeneralSecurityException;
    }

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
}
