package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.DERBMPString;
import org.bouncycastle.asn1.DERIA5String;
import org.bouncycastle.asn1.DERNumericString;
import org.bouncycastle.asn1.DERT61String;
import org.bouncycastle.asn1.DERVisibleString;
import org.bouncycastle.asn1.ASN1Integer;
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

    static final ASN1ObjectIdentifier OTHER = new ASN1ObjectIdentifier("1.3.6.1.4.1.99999.1");

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
                        rdn(BCStyle.POSTAL_CODE, new DERUTF8String("94043")), rdn(BCStyle.STREET, new DERUTF8String("1 Main St"))}),
                // the other string types Go reads as strings
                new X500Name(new RDN[]{rdn(BCStyle.O, new DERBMPString("BMP Örg")), rdn(BCStyle.OU, new DERT61String("T61 unit")),
                        rdn(BCStyle.SERIALNUMBER, new DERNumericString("0042")), rdn(BCStyle.CN, new DERBMPString("Bmp CN"))}),
                new X500Name(new RDN[]{rdn(BCStyle.C, new DERPrintableString("ES")), rdn(BCStyle.L, new DERT61String("Madrid")),
                        rdn(BCStyle.UID, new DERUTF8String("ünique")), rdn(BCStyle.CN, new DERUTF8String(""))}),
                // attributes Go does not name: their values re-encoded as Go's asn1.Marshal encodes what it parsed
                new X500Name(new RDN[]{rdn(OTHER, new DERUTF8String("star*amp&")), rdn(OTHER, new DERPrintableString("plain")),
                        rdn(OTHER, new DERIA5String("at@sign")), rdn(BCStyle.CN, new DERUTF8String("Strings"))}));

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

    /**
     * Values that are no strings. Go 1.17 on refuses such a certificate, so Go's x509 cannot print
     * them here; Go 1.15 and 1.16 read a name as encoding/asn1 still does (Unmarshal into an
     * RDNSequence, then FillFromRDNSequence), which a Go program does here with the DER names.
     */
    @Test
    void valuesThatAreNoStringsArePrintedAsGo115ReadsThem() throws Exception {
        List<X500Name> names = List.of(
                new X500Name(new RDN[]{rdn(OTHER, new ASN1Integer(42)), rdn(OTHER, new ASN1Integer(-129)), rdn(OTHER, org.bouncycastle.asn1.ASN1Boolean.TRUE),
                        rdn(OTHER, new org.bouncycastle.asn1.DEROctetString(new byte[]{1, 2, 3})), rdn(OTHER, new ASN1ObjectIdentifier("1.2.3.4")),
                        rdn(OTHER, new org.bouncycastle.asn1.DERBitString(new byte[]{(byte) 0xa0}, 5)), rdn(BCStyle.CN, new DERUTF8String("Others"))}),
                // a named attribute whose value is no string: Go leaves it out
                new X500Name(new RDN[]{rdn(BCStyle.O, new ASN1Integer(7)), rdn(OTHER, new DERUTF8String("star*")), rdn(BCStyle.CN, new DERUTF8String("No string O"))}));
        List<String> ours = new ArrayList<>(), ders = new ArrayList<>();
        for (X500Name n : names) {
            byte[] der = n.getEncoded("DER");
            assertThat(GoName.read(der)).as("left to Bouncy Castle").isNull();
            ours.add(Pki.goName(der));
            ders.add(HexFormat.of().formatHex(der));
        }
        Path prog = tmp.resolve("asn1names.go");
        Files.writeString(prog, """
                package main

                import (
                	"crypto/x509/pkix"
                	"encoding/asn1"
                	"encoding/hex"
                	"fmt"
                	"os"
                )

                func main() {
                	for _, h := range os.Args[1:] {
                		der, _ := hex.DecodeString(h)
                		var rdns pkix.RDNSequence
                		if rest, err := asn1.Unmarshal(der, &rdns); err != nil || len(rest) > 0 {
                			panic(fmt.Sprint(err, rest))
                		}
                		var n pkix.Name
                		n.FillFromRDNSequence(&rdns)
                		fmt.Println(n.String())
                	}
                }
                """);
        List<String> cmd = new ArrayList<>(List.of("go", "run", prog.toString()));
        cmd.addAll(ders);
        Cli.Result go = Cli.run(cmd, java.util.Map.of("GOFLAGS", "-mod=mod", "GO111MODULE", "off"), tmp, null);
        assertThat(go.exit()).as(go.toString()).isZero();
        assertThat(ours).containsExactlyElementsOf(go.stdout().lines().toList());
    }

    /**
     * GoName reads names with the JDK only, and leaves to Bouncy Castle what it does not take: where
     * it reads one, it reads the same attributes as Bouncy Castle. Random names of every string type
     * and others, and the same names with bytes changed, cut or added.
     */
    @Test
    void theJdkReaderReadsWhatBouncyCastleReads() throws Exception {
        java.util.Random random = new java.util.Random(20261202);
        ASN1ObjectIdentifier[] types = {BCStyle.C, BCStyle.ST, BCStyle.L, BCStyle.STREET, BCStyle.POSTAL_CODE, BCStyle.O, BCStyle.OU,
                BCStyle.CN, BCStyle.SERIALNUMBER, BCStyle.UID, BCStyle.DC, BCStyle.EmailAddress, new ASN1ObjectIdentifier("1.2.840.113549.1.9.2"),
                new ASN1ObjectIdentifier("2.999.72057594037927935"), new ASN1ObjectIdentifier("1.3.6.1.4.1.99999.1"),
                // arcs at and past what the JDK reader takes (2^56, 2^63 + 1): Bouncy Castle's
                new ASN1ObjectIdentifier("1.2.72057594037927936"), new ASN1ObjectIdentifier("1.2.9223372036854775809")};
        int read = 0, left = 0, mutated = 0;
        for (int i = 0; i < 3000; i++) {
            List<RDN> rdns = new ArrayList<>();
            for (int r = random.nextInt(5); r >= 0; r--) {
                AttributeTypeAndValue[] atvs = new AttributeTypeAndValue[1 + (random.nextInt(4) == 0 ? 1 : 0)];
                for (int a = 0; a < atvs.length; a++) atvs[a] = new AttributeTypeAndValue(types[random.nextInt(types.length)], value(random));
                rdns.add(new RDN(atvs));
            }
            byte[] der = new X500Name(rdns.toArray(RDN[]::new)).getEncoded("DER");
            List<GoName.Attribute> ours = GoName.read(der);
            if (ours == null) left++;
            else {
                read++;
                assertThat(ours).as(HexFormat.of().formatHex(der)).isEqualTo(Pki.WithBc.attributes(der));
            }
            byte[] bad = mutate(der, random);
            List<GoName.Attribute> ofBad = GoName.read(bad);
            if (ofBad != null) {
                mutated++;
                assertThat(ofBad).as("changed: " + HexFormat.of().formatHex(bad)).isEqualTo(Pki.WithBc.attributes(bad));
            }
        }
        // most names are the JDK reader's; the others (values of other types) and broken ones are Bouncy Castle's
        assertThat(read).isGreaterThan(1000);
        assertThat(left).isGreaterThan(100);
        assertThat(mutated).isGreaterThan(50);
    }

    private static org.bouncycastle.asn1.ASN1Encodable value(java.util.Random random) {
        StringBuilder b = new StringBuilder();
        int[] alphabet = "abcXYZ 09 ,+\"#<>;=.-*&éÖ€\u0000\ud83d\ude00".codePoints().toArray();
        for (int n = random.nextInt(12); n > 0; n--) b.appendCodePoint(alphabet[random.nextInt(alphabet.length)]);
        String v = b.toString();
        String ascii = v.replaceAll("[^ -~]", "x");
        return switch (random.nextInt(9)) {
            case 0, 1 -> new DERUTF8String(v);
            case 2 -> new DERPrintableString(ascii);
            case 3 -> new DERIA5String(ascii);
            case 4 -> new DERBMPString(v);
            case 5 -> new DERT61String(ascii);
            case 6 -> new DERNumericString(ascii.replaceAll("[^0-9 ]", "1"));
            case 7 -> new DERVisibleString(ascii);
            default -> new ASN1Integer(random.nextInt(1000));
        };
    }

    private static byte[] mutate(byte[] der, java.util.Random random) {
        byte[] b = der.clone();
        switch (random.nextInt(3)) {
            case 0 -> b[random.nextInt(b.length)] ^= (byte) (1 << random.nextInt(8));
            case 1 -> b = java.util.Arrays.copyOf(b, random.nextInt(b.length));
            default -> {
                b = java.util.Arrays.copyOf(b, b.length + 1);
                b[b.length - 1] = (byte) random.nextInt(256);
            }
        }
        return b;
    }

    static java.security.cert.X509Certificate certWithName(X500Name name, KeyPair key) throws Exception {
        var b = new org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder(name, java.math.BigInteger.TEN,
                java.util.Date.from(Instant.now().minusSeconds(60)), java.util.Date.from(Instant.now().plusSeconds(3600)), name, key.getPublic());
        return new org.bouncycastle.cert.jcajce.JcaX509CertificateConverter().getCertificate(
                b.build(new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withRSA").build(key.getPrivate())));
    }
}
