package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.security.Key;
import java.security.KeyStore;
import javax.crypto.spec.SecretKeySpec;
import org.junit.jupiter.api.Test;

/** The in-memory key stores fabric8 makes for a kubeconfig's client key: one PBKDF2 iteration while they are made, and only then. */
class HttpTest {
    static final String ITERATIONS = "keystore.pkcs12.keyPbeIterationCount";

    @Test
    void keyStoresMadeInsideUseOneIterationAndTheSettingIsGoneAfter() throws Exception {
        assertThat(System.getProperty(ITERATIONS)).isNull();
        Key key = new SecretKeySpec(new byte[32], "AES");
        char[] pass = "changeit".toCharArray();
        byte[] stored = Http.withOneIterationKeyStores(() -> {
            assertThat(System.getProperty(ITERATIONS)).isEqualTo("1");
            KeyStore ks = KeyStore.getInstance("PKCS12");
            ks.load(null, null);
            ks.setKeyEntry("k", key, pass, null);
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            ks.store(b, pass);
            return b.toByteArray();
        });
        assertThat(System.getProperty(ITERATIONS)).isNull();
        // a key stored so is read back as it went in
        KeyStore back = KeyStore.getInstance("PKCS12");
        back.load(new ByteArrayInputStream(stored), pass);
        assertThat(back.getKey("k", pass).getEncoded()).isEqualTo(key.getEncoded());
    }

    @Test
    void anIterationCountTheOperatorSetIsKept() throws Exception {
        System.setProperty(ITERATIONS, "20000");
        try {
            String inside = Http.withOneIterationKeyStores(() -> System.getProperty(ITERATIONS));
            assertThat(inside).isEqualTo("20000");
            assertThat(System.getProperty(ITERATIONS)).isEqualTo("20000");
        } finally {
            System.clearProperty(ITERATIONS);
        }
    }
}
