package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigInteger;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.util.Date;
import java.util.Random;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.DERUTF8String;
import org.bouncycastle.asn1.x500.AttributeTypeAndValue;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x500.style.BCStyle;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v1CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.junit.jupiter.api.Test;

/**
 * The certificate's names and serial number as crypto11 stores them (CKA_SUBJECT, CKA_ISSUER,
 * CKA_SERIAL_NUMBER), read with the JDK (Der): the same bytes as Bouncy Castle gives.
 */
class DerTest {
    @Test
    void namesAndSerialsAreBouncyCastles() throws Exception {
        KeyPairGenerator ec = KeyPairGenerator.getInstance("EC");
        ec.initialize(256);
        KeyPair key = ec.generateKeyPair();
        Random random = new Random(7);
        String longName = String.join(",", java.util.Collections.nCopies(6, "OU=" + "x".repeat(60))); // long-form lengths
        X500Name[] names = {new X500Name("O=Istio,CN=Root CA"), new X500Name(longName + ",CN=Long"),
                new X500Name(new RDN[]{new RDN(new AttributeTypeAndValue[]{new AttributeTypeAndValue(BCStyle.O, new DERUTF8String("b")),
                        new AttributeTypeAndValue(BCStyle.OU, new DERUTF8String("a"))})}), new X500Name(new RDN[0])};
        BigInteger[] serials = {BigInteger.ZERO, BigInteger.ONE, BigInteger.valueOf(127), BigInteger.valueOf(128), BigInteger.valueOf(255),
                BigInteger.valueOf(256), new BigInteger(159, random), new BigInteger(160, random).setBit(159), BigInteger.TWO.pow(1000)};
        int n = 0;
        for (X500Name subject : names)
            for (X500Name issuer : names)
                for (boolean v1 : new boolean[]{false, true}) {
                    // certificates name their issuer; an empty subject is allowed in v3 only
                    if (issuer.getRDNs().length == 0 || (v1 && subject.getRDNs().length == 0)) continue;
                    BigInteger serial = serials[n++ % serials.length];
                    Date from = new Date(System.currentTimeMillis() - 60_000), to = new Date(System.currentTimeMillis() + 3_600_000);
                    var signer = new JcaContentSignerBuilder("SHA256withECDSA").build(key.getPrivate());
                    var holder = v1 ? new JcaX509v1CertificateBuilder(issuer, serial, from, to, subject, key.getPublic()).build(signer)
                            : new JcaX509v3CertificateBuilder(issuer, serial, from, to, subject, key.getPublic()).build(signer);
                    X509Certificate c = new JcaX509CertificateConverter().getCertificate(holder);
                    assertThat(Pki.subjectDer(c)).as("subject " + subject).isEqualTo(Pki.WithBc.subjectDer(c)).isEqualTo(subject.getEncoded("DER"));
                    assertThat(Pki.issuerDer(c)).as("issuer " + issuer).isEqualTo(Pki.WithBc.issuerDer(c)).isEqualTo(issuer.getEncoded("DER"));
                    assertThat(Der.certificateName(c.getEncoded(), true)).isEqualTo(subject.getEncoded("DER"));
                }
        for (int i = 0; i < 500; i++) {
            BigInteger s = new BigInteger(1 + random.nextInt(200), random);
            if (random.nextBoolean()) s = s.negate();
            assertThat(Pki.serialDer(s)).as(s.toString()).isEqualTo(new ASN1Integer(s).getEncoded());
        }
        for (BigInteger s : serials) assertThat(Pki.serialDer(s)).as(s.toString()).isEqualTo(new ASN1Integer(s).getEncoded());
    }

    /** A certificate's identity (subject, serial, SKI, expiry) as Bouncy Castle read it: with an SKI, without (computed), RSA and EC. */
    @Test
    void identitiesAreBouncyCastles() throws Exception {
        KeyPairGenerator ec = KeyPairGenerator.getInstance("EC");
        ec.initialize(256);
        KeyPairGenerator rsa = KeyPairGenerator.getInstance("RSA");
        rsa.initialize(2048);
        int n = 0;
        for (KeyPair key : new KeyPair[]{ec.generateKeyPair(), rsa.generateKeyPair()})
            for (int form = 0; form < 3; form++) {
                X500Name name = new X500Name("O=Istio,CN=Identity " + form);
                Date from = new Date(System.currentTimeMillis() - 60_000), to = new Date(System.currentTimeMillis() + 3_600_000);
                var signer = new JcaContentSignerBuilder(key.getPublic().getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256withRSA")
                        .build(key.getPrivate());
                BigInteger serial = BigInteger.valueOf(4096 + n++);
                var holder = switch (form) {
                    case 0 -> new JcaX509v1CertificateBuilder(name, serial, from, to, name, key.getPublic()).build(signer);
                    case 1 -> new JcaX509v3CertificateBuilder(name, serial, from, to, name, key.getPublic()).build(signer);
                    default -> new JcaX509v3CertificateBuilder(name, serial, from, to, name, key.getPublic())
                            .addExtension(org.bouncycastle.asn1.x509.Extension.subjectKeyIdentifier, false,
                                    new org.bouncycastle.asn1.x509.SubjectKeyIdentifier(new byte[]{1, 2, 3, (byte) form}))
                            .build(signer);
                };
                X509Certificate c = new JcaX509CertificateConverter().getCertificate(holder);
                assertThat(Pki.identity(c)).as(key.getPublic().getAlgorithm() + " form " + form).isEqualTo(Pki.WithBc.identity(c));
                assertThat(Pki.identity(c).toString()).contains(form == 2 ? "01:02:03:02" : "(computed)");
            }
    }
}
