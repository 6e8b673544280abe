package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.DERIA5String;
import org.bouncycastle.asn1.DERPrintableString;
import org.bouncycastle.asn1.DERUTF8String;
import org.bouncycastle.asn1.x500.AttributeTypeAndValue;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The root's CKA_LABEL is its subject as Go's pkix.Name.String() prints it (the plugin is Go).
 * Checked against Go itself: a small stdlib-only Go program prints the names of the same certificates.
 */
class GoNameTest {
    @TempDir Path tmp;

    static RDN rdn(ASN1ObjectIdentifier oid, org.bouncycastle.asn1.ASN1Encodable v) {
        return new RDN(oid, v);
    }

    static RDN multi(AttributeTypeAndValue... atvs) {
        return new RDN(atvs);
    }

    @Test
    void javaAndGoPrintTheSameNames() throws Exception {
        List<X500Name> names = List.of(
                new X500Name("O=Istio,CN=Root CA"),
                new X500Name("CN=Root CA,O=Istio"),
                new X500Name("C=US,ST=California,L=Mountain View,O=Example\\, Inc.,OU=Mesh,OU=Security,CN=Example Root"),
                new X500Name(new RDN[]{rdn(BCStyle.O, new DERUTF8String("Ünïcode Ōrg")), rdn(BCStyle.CN, new DERUTF8String(" lead+trail "))}),
                new X500Name(new RDN[]{rdn(BCStyle.CN, new DERUTF8String("#hash;semi<gt>\"q\"\\b"))}),
                new X500Name(new RDN[]{rdn(BCStyle.O, new DERPrintableString("Istio")),
                        rdn(BCStyle.EmailAddress, new DERIA5String("ca@example.com")), rdn(BCStyle.CN, new DERUTF8String("With Email"))}),
                new X500Name(new RDN[]{multi(new AttributeTypeAndValue(BCStyle.O, new DERUTF8String("Multi")),
                        new AttributeTypeAndValue(BCStyle.OU, new DERUTF8String("Valued"))), rdn(BCStyle.CN, new DERUTF8String("RDN"))}),
                new X500Name(new RDN[]{rdn(BCStyle.CN, new DERUTF8String("first")), rdn(BCStyle.CN, new DERUTF8String("second")),
                        rdn(BCStyle.SERIALNUMBER, new DERPrintableString("1234")), rdn(BCStyle.T, new DERUTF8String("Title"))}),
                new X500Name(new RDN[]{rdn(BCStyle.DC, new DERIA5String("example")), rdn(BCStyle.DC, new DERIA5String("com")),
                        rdn(BCStyle.POSTAL_CODE, new DERUTF8String("94043")), rdn(BCStyle.STREET, new DERUTF8String("1 Main St"))}));
        KeyPair key = ImportCaTest.rsa();
        List<String> ours = new ArrayList<>();
        List<String> files = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            var c = certWithName(names.get(i), key); // the exact X500Name objects: string round trips lose encodings
            Path p = tmp.resolve("c" + i + ".pem");
            Files.writeString(p, Pki.pem(c));
            files.add(p.toString());
            ours.add(Pki.goName(Pki.subjectDer(c)));
        }
        Path prog = tmp.resolve("names.go");
        Files.writeString(prog, """
                package main

                import (
                	"crypto/x509"
                	"encoding/pem"
                	"fmt"
                	"os"
                )

                func main() {
                	for _, f := range os.Args[1:] {
                		b, _ := os.ReadFile(f)
                		blk, _ := pem.Decode(b)
                		c, err := x509.ParseCertificate(blk.Bytes)
                		if err != nil {
                			panic(err)
                		}
                		fmt.Println(c.Subject.String())
                	}
                }
                """);
        List<String> cmd = new ArrayList<>(List.of("go", "run", prog.toString()));
        cmd.addAll(files);
        Cli.Result go = Cli.run(cmd, java.util.Map.of("GOFLAGS", "-mod=mod", "GO111MODULE", "off"), tmp, null);
        assertThat(go.exit()).as(go.toString()).isZero();
        assertThat(ours).containsExactlyElementsOf(go.stdout().lines().toList());
    }

    static java.security.cert.X509Certificate certWithName(X500Name name, KeyPair key) throws Exception {
        var b = new org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder(name, java.math.BigInteger.TEN,
                java.util.Date.from(Instant.now().minusSeconds(60)), java.util.Date.from(Instant.now().plusSeconds(3600)), name, key.getPublic());
        return new org.bouncycastle.cert.jcajce.JcaX509CertificateConverter().getCertificate(
                b.build(new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withRSA").build(key.getPrivate())));
    }
}
