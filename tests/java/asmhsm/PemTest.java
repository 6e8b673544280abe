package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.StringReader;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.bouncycastle.util.io.pem.PemObject;
import org.bouncycastle.util.io.pem.PemReader;
import org.junit.jupiter.api.Test;

/**
 * Pki's PEM reader (the JDK's base64) reads what Bouncy Castle's PemReader read before it, block
 * for block, and refuses what it refused: hand-picked edge cases of RFC 7468's armor and
 * thousands of damaged copies of a real chain, each compared with Bouncy Castle's answer.
 */
class PemTest {
    /** "TYPE:base64-of-content" per block, or "refused" when the reader throws. */
    static List<String> ours(String text) {
        List<String> r = new ArrayList<>();
        try {
            for (Pki.PemBlock b : Pki.PemBlock.read(text)) r.add(b.getType() + ":" + java.util.Base64.getEncoder().encodeToString(b.getContent()));
        } catch (IOException e) {
            return List.of("refused");
        }
        return r;
    }

    static List<String> bouncyCastle(String text) {
        List<String> r = new ArrayList<>();
        try (PemReader p = new PemReader(new StringReader(text))) {
            for (PemObject o; (o = p.readPemObject()) != null; )
                r.add(o.getType() + ":" + java.util.Base64.getEncoder().encodeToString(o.getContent()));
        } catch (IOException e) {
            return List.of("refused");
        }
        return r;
    }

    static void same(String text) {
        assertThat(ours(text)).as("%s", text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")).isEqualTo(bouncyCastle(text));
    }

    static final String CHAIN = MeshTestKit.ca(MeshTestKit.root("CN=Pem Root,O=Example"), "O=cluster.local").pem()
            + MeshTestKit.root("CN=Other Root").pem();

    @Test
    void edgeCasesOfTheArmorReadAsBouncyCastleReadThem() {
        String b = "-----BEGIN CERTIFICATE-----\n", e = "-----END CERTIFICATE-----\n";
        List<String> cases = List.of(
                CHAIN, CHAIN.replace("\n", "\r\n"), CHAIN.replace("\n", "\r"), "preamble\n" + CHAIN + "trailer\n", CHAIN.stripTrailing(),
                b + "TWFu\n" + e, b + "TWE=\n" + e, b + "TQ==\n" + e, b + "TWE\n" + e, b + "TQ=\n" + e, b + "T===\n" + e, b + "====\n" + e,
                b + "TQ==TWFu\n" + e, b + "TW=u\n" + e, b + " TWFu \n" + e, b + "TW Fu\n" + e, b + "TW\tFu\n" + e, b + "TW\u000bFu\n" + e,
                b + "TWF\u00e9\n" + e, b + "TWF\u0100\n" + e, b + "TWF-\n" + e, b + "TWF_\n" + e, b + "\n\n" + e, b + e,
                b + "Proc-Type: 4,ENCRYPTED\nTWFu\n" + e, b + "TWFu\n", b + "TWFu\n" + " " + e, b + "TWFu\n" + "-----END CERTIFICATE-----x\n",
                b + "TWFu\n" + "-----END CERTIFICATE----\n", b + "TWFu\n" + "-----END OTHER-----\n", b + "TWFu\n" + "x-----END CERTIFICATE-----\n",
                " " + b + "TWFu\n" + e, "-----BEGIN CERTIFICATE----\nTWFu\n" + e + CHAIN, "-----BEGIN CERTIFICATE------\nTWFu\n" + e,
                "-----BEGIN -----\nTWFu\n-----END -----\n", "-----BEGIN CERTIFICATE-----  \nTWFu\n" + e,
                "-----BEGIN  CERTIFICATE REQUEST-----\nTWFu\n-----END CERTIFICATE REQUEST-----\n",
                "-----BEGIN A-B-----\nTWFu\n-----END A-B-----\n", "-----BEGIN A:B-----\nTWFu\n-----END A:B-----\n",
                "-----BEGIN PRIVATE KEY-----\nTWFu\n-----END PRIVATE KEY-----\n" + CHAIN, "", "no PEM at all\n", b, e);
        for (String c : cases) same(c);
    }

    @Test
    void damagedChainsReadAsBouncyCastleReadThem() {
        Random random = new Random(20);
        String alphabet = " \t\r\n-=:A/+ab9\u000b\u00e9\u2028";
        for (int i = 0; i < 4000; i++) {
            StringBuilder s = new StringBuilder(CHAIN);
            for (int k = 1 + random.nextInt(3); k > 0; k--) {
                int at = random.nextInt(s.length());
                switch (random.nextInt(3)) {
                    case 0 -> s.deleteCharAt(at);
                    case 1 -> s.insert(at, alphabet.charAt(random.nextInt(alphabet.length())));
                    default -> s.setCharAt(at, alphabet.charAt(random.nextInt(alphabet.length())));
                }
            }
            same(s.toString());
        }
    }

    @Test
    void refusalsNameTheProblemAndTheSizeNeverTheText() {
        String broken = "-----BEGIN CERTIFICATE-----\nc2VjcmV0\n";
        assertThat(KmsPluginTest.fail(() -> Pki.pemBlocks(broken, "the file")).getMessage())
                .isEqualTo("the file holds broken PEM (" + broken.length() + " bytes: a block without its END line, or damaged base64)")
                .doesNotContain("c2VjcmV0");
        String damaged = "-----BEGIN CERTIFICATE-----\nc2Vjc*V0\n-----END CERTIFICATE-----\n";
        assertThat(KmsPluginTest.fail(() -> Pki.pemBlocks(damaged, "the file")).getMessage()).startsWith("the file holds broken PEM (");
        assertThat(KmsPluginTest.fail(() -> Pki.pemBlocks("just text\n", "the file")).getMessage()).isEqualTo("the file holds no PEM block (10 bytes)");
        assertThat(KmsPluginTest.fail(() -> Pki.certificates(Pki.pemBlocks("-----BEGIN PRIVATE KEY-----\nTWFu\n-----END PRIVATE KEY-----\n", "k"), "k"))
                .getMessage()).isEqualTo("k holds a 'PRIVATE KEY' block, not a certificate");
        assertThat(Pki.certificates(Pki.pemBlocks(CHAIN, "chain"), "chain")).hasSize(2);
    }
}
