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
