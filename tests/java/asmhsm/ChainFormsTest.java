package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The forms of cert-chain.pem the real istiod accepts and refuses ("error spliting the cert
 * chain"), as reference/hsm-formats.md lists them, against Istio.splitProblem; and the
 * canonical form (Pki.chainPem) checked by a pattern written here, not by the toolkit.
 */
class ChainFormsTest {
    @TempDir Path tmp;

    /** Exactly PEM certificate blocks, base64 lines of at most 64 characters, LF only, one final newline. */
    static final String CANONICAL = "(-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n)+";

    /** The forms istiod accepts, by name: the CA certificate (PEM) and the root (PEM); `caText` is `openssl x509 -text` of the CA. */
    static Map<String, String> accepted(String ca, String root, String caText) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("CA then root", ca + root);
        m.put("CRLF line ends", (ca + root).replace("\n", "\r\n"));
        m.put("a leading blank line", "\n" + ca + root);
        m.put("an openssl x509 -text preamble", caText + root);
        m.put("no final newline", (ca + root).stripTrailing());
        m.put("the CA certificate alone", ca);
        return m;
    }

    /** The forms istiod refuses, by name, with the reason splitProblem gives. */
    static Map<String, String[]> refused(String ca, String root) {
        Map<String, String[]> m = new LinkedHashMap<>();
        m.put("a trailing blank line", new String[]{ca + root + "\n", "a blank line follows the last certificate"});
        m.put("a trailing blank line, CRLF", new String[]{(ca + root + "\n").replace("\n", "\r\n"), "a blank line follows the last certificate"});
        m.put("root first", new String[]{root + ca, "comes first"});
        return m;
    }

    static String opensslText(Path dir, String pem) throws Exception {
        Path f = Files.writeString(dir.resolve("ca-" + System.nanoTime() + ".pem"), pem);
        Cli.Result r = SignCsrTest.run(dir, "openssl", "x509", "-in", f.toString(), "-text");
        assertThat(r.stdout()).contains("Certificate:").contains("-----BEGIN CERTIFICATE-----");
        return r.stdout();
    }

    @Test
    void istiodsTableOfAcceptedAndRefusedForms() throws Exception {
        MeshTestKit.Issued root = MeshTestKit.root("CN=Forms Root,O=Example"), ca = MeshTestKit.ca(root, "O=cluster.local");
        String caText = opensslText(tmp, ca.pem());
        for (var e : accepted(ca.pem(), root.pem(), caText).entrySet())
            assertThat(Istio.splitProblem(e.getValue().getBytes(StandardCharsets.US_ASCII))).as(e.getKey()).isNull();
        for (var e : refused(ca.pem(), root.pem()).entrySet())
            assertThat(Istio.splitProblem(e.getValue()[0].getBytes(StandardCharsets.US_ASCII))).as(e.getKey()).contains(e.getValue()[1]);
        // and more of each kind
        assertThat(Istio.splitProblem((ca.pem() + root.pem() + "\n\n\n").getBytes(StandardCharsets.US_ASCII))).contains("blank line");
        assertThat(Istio.splitProblem((ca.pem() + root.pem() + "# signed by hand\n").getBytes(StandardCharsets.US_ASCII)))
                .isEqualTo("text follows the last certificate");
        assertThat(Istio.splitProblem((caText + opensslText(tmp, root.pem())).getBytes(StandardCharsets.US_ASCII))).isNull();
        assertThat(Istio.splitProblem((ca.pem() + "\n" + root.pem()).getBytes(StandardCharsets.US_ASCII))).isNull();
        assertThat(Istio.splitProblem("no PEM at all\n".getBytes(StandardCharsets.US_ASCII))).isEqualTo("it holds no PEM certificate");
        assertThat(Istio.splitProblem(new byte[0])).isEqualTo("it holds no PEM certificate");
        assertThat(Istio.splitProblem((root.pem() + ca.pem()).getBytes(StandardCharsets.US_ASCII)))
                .isEqualTo("the root 'CN=Forms Root,O=Example' comes first, where istiod takes its CA certificate");
    }

    @Test
    void theCanonicalFormIsWhatIstiodAccepts() throws Exception {
        MeshTestKit.Issued root = MeshTestKit.root("CN=Forms Root,O=Example"), ca = MeshTestKit.ca(root, "O=cluster.local");
        for (List<MeshTestKit.Issued> chain : List.of(List.of(ca, root), List.of(ca))) {
            String pem = Pki.chainPem(chain.stream().map(MeshTestKit.Issued::cert).toList());
            assertThat(pem).matches(CANONICAL);
            assertThat(pem).doesNotContain("\r").doesNotContain("\n\n");
            assertThat(Istio.splitProblem(pem.getBytes(StandardCharsets.US_ASCII))).isNull();
        }
        // every accepted and refused form comes back to the same canonical text
        String canonical = Pki.chainPem(List.of(ca.cert(), root.cert()));
        Map<String, String> forms = new LinkedHashMap<>(accepted(ca.pem(), root.pem(), opensslText(tmp, ca.pem())));
        forms.remove("the CA certificate alone");
        forms.put("a trailing blank line", refused(ca.pem(), root.pem()).get("a trailing blank line")[0]);
        for (var e : forms.entrySet())
            assertThat(Pki.chainPem(Pki.certificates(Pki.pemBlocks(e.getValue(), e.getKey()), e.getKey()))).as(e.getKey()).isEqualTo(canonical);
    }
}
