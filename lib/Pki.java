package asmhsm;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.StringReader;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1String;
import org.bouncycastle.asn1.DERPrintableString;
import org.bouncycastle.asn1.DERUTF8String;
import org.bouncycastle.asn1.x500.AttributeTypeAndValue;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.util.io.pem.PemObject;

/** Certificates and PEM, through Bouncy Castle and the JDK: parsing, checks, names as Go prints them. */
public final class Pki {
    private Pki() {}

    /** Every PEM block of a file, in order; refuses a file with none. */
    public static List<PemObject> pemBlocks(Path file, String what) {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (java.nio.charset.MalformedInputException e) {
            throw Fail.badInput(what + " " + file + " is not PEM text", "give a PEM file (-----BEGIN CERTIFICATE-----)");
        } catch (IOException e) {
            throw Fail.badInput("cannot read " + what + " " + file + ": " + e.getMessage(), "check the path");
        }
        return pemBlocks(text, what + " " + file);
    }

    public static List<PemObject> pemBlocks(String text, String what) {
        List<PemObject> blocks = new ArrayList<>();
        try (PEMParser p = new PEMParser(new StringReader(text))) {
            PemObject o;
            while ((o = p.readPemObject()) != null) blocks.add(o);
        } catch (IOException e) {
            throw Fail.badInput(what + " holds broken PEM: " + e.getMessage(), "check the file was copied whole");
        }
        if (blocks.isEmpty()) throw Fail.badInput(what + " holds no PEM block", "give a PEM file (-----BEGIN CERTIFICATE-----)");
        return blocks;
    }

    /** All certificates of a PEM file, in file order; any other block type is refused. */
    public static List<X509Certificate> certificates(Path file, String what) {
        return certificates(pemBlocks(file, what), what + " " + file);
    }

    public static List<X509Certificate> certificates(List<PemObject> blocks, String what) {
        List<X509Certificate> certs = new ArrayList<>();
        for (PemObject b : blocks) {
            if (!b.getType().equals("CERTIFICATE"))
                throw Fail.badInput(what + " holds a '" + b.getType() + "' block, not a certificate", "give the PEM certificate file");
            certs.add(certificate(b.getContent(), what));
        }
        return certs;
    }

    public static X509Certificate certificate(byte[] der, String what) {
        try {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(der));
        } catch (CertificateException e) {
            throw Fail.badInput(what + " is not a valid X.509 certificate: " + e.getMessage(), "check the file");
        }
    }

    /** Exactly one certificate, else a clear refusal (never silently the first). */
    public static X509Certificate single(Path file, String what) {
        List<X509Certificate> certs = certificates(file, what);
        if (certs.size() != 1)
            throw Fail.badInput(what + " " + file + " holds " + certs.size() + " certificates, expected exactly one",
                    "split the file and give only the " + what);
        return certs.get(0);
    }

    public static String pem(String type, byte[] der) {
        String b64 = java.util.Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der);
        return "-----BEGIN " + type + "-----\n" + b64 + "\n-----END " + type + "-----\n";
    }

    public static String pem(X509Certificate c) {
        try {
            return pem("CERTIFICATE", c.getEncoded());
        } catch (java.security.cert.CertificateEncodingException e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------ CA checks

    public static boolean isCa(X509Certificate c) {
        return c.getBasicConstraints() >= 0;
    }

    public static boolean canSignCertificates(X509Certificate c) {
        boolean[] ku = c.getKeyUsage();
        return ku == null || (ku.length > 5 && ku[5]);
    }

    public static boolean selfSigned(X509Certificate c) {
        if (!c.getSubjectX500Principal().equals(c.getIssuerX500Principal())) return false;
        try {
            c.verify(c.getPublicKey());
            return true;
        } catch (Exception e) {
            return false;
        }
    }

    /** Refuses (exit 2) anything but a valid, self-signed CA certificate allowed to sign certificates. */
    public static void requireRootCa(X509Certificate c, String what) {
        String subject = goName(c.getSubjectX500Principal().getEncoded());
        if (!isCa(c))
            throw Fail.badInput(what + " '" + subject + "' is not a CA certificate (no basicConstraints CA:TRUE)",
                    "give the root CA certificate, not a leaf or server certificate");
        boolean[] ku = c.getKeyUsage();
        if (ku == null || ku.length <= 5 || !ku[5])
            throw Fail.badInput(what + " '" + subject + "' may not sign certificates (keyUsage lacks keyCertSign)",
                    "give a root CA certificate whose keyUsage includes keyCertSign");
        if (!selfSigned(c))
            throw Fail.badInput(what + " '" + subject + "' is not self-signed (issuer '"
                    + goName(c.getIssuerX500Principal().getEncoded()) + "')", "give the root of the chain, not an intermediate");
        requireValidNow(c, what);
    }

    public static void requireValidNow(X509Certificate c, String what) {
        try {
            c.checkValidity();
        } catch (java.security.cert.CertificateExpiredException e) {
            throw Fail.badInput(what + " '" + goName(c.getSubjectX500Principal().getEncoded()) + "' expired on "
                    + c.getNotAfter().toInstant(), "renew the certificate");
        } catch (java.security.cert.CertificateNotYetValidException e) {
            throw Fail.badInput(what + " '" + goName(c.getSubjectX500Principal().getEncoded()) + "' is not valid before "
                    + c.getNotBefore().toInstant(), "check the certificate dates and this machine's clock");
        }
    }

    /** The serial number as a DER INTEGER, as crypto11 stores CKA_SERIAL_NUMBER. */
    public static byte[] serialDer(BigInteger serial) {
        try {
            return new ASN1Integer(serial).getEncoded();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The subject exactly as encoded in the certificate (crypto11 stores RawSubject). */
    public static byte[] subjectDer(X509Certificate c) {
        return der(org.bouncycastle.asn1.x509.Certificate.getInstance(encoded(c)).getSubject());
    }

    public static byte[] issuerDer(X509Certificate c) {
        return der(org.bouncycastle.asn1.x509.Certificate.getInstance(encoded(c)).getIssuer());
    }

    static byte[] der(ASN1Encodable o) {
        try {
            return o.toASN1Primitive().getEncoded("DER");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] encoded(X509Certificate c) {
        try {
            return c.getEncoded();
        } catch (java.security.cert.CertificateEncodingException e) {
            throw new IllegalStateException(e);
        }
    }

    public static String sha256Hex(byte[] data) {
        try {
            return HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(data));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------ Go's pkix.Name.String()

    private static final String[][] GO_FIELDS = {
            {"2.5.4.6", "C"}, {"2.5.4.8", "ST"}, {"2.5.4.7", "L"}, {"2.5.4.9", "STREET"}, {"2.5.4.17", "POSTALCODE"},
            {"2.5.4.10", "O"}, {"2.5.4.11", "OU"}};
    private static final String CN = "2.5.4.3", SERIAL = "2.5.4.5";
    private static final List<String> PARSED = List.of("2.5.4.3", "2.5.4.5", "2.5.4.6", "2.5.4.7", "2.5.4.8",
            "2.5.4.9", "2.5.4.10", "2.5.4.11", "2.5.4.17");

    /**
     * A DER name printed as Go's pkix.Name.String() prints it: Go first parses the name into
     * fields, rebuilds them in its own order (C, ST, L, STREET, POSTALCODE, O, OU, CN,
     * SERIALNUMBER), puts unknown attributes first, and prints the sequence reversed
     * (RFC 2253). The plugin uses this string as the certificate's CKA_LABEL.
     */
    public static String goName(byte[] derName) {
        X500Name name = X500Name.getInstance(derName);
        List<AttributeTypeAndValue> atvs = new ArrayList<>();
        for (RDN rdn : name.getRDNs()) for (AttributeTypeAndValue a : rdn.getTypesAndValues()) atvs.add(a);
        List<String[]> seq = new ArrayList<>(); // {oid, value, printed RDN or null}
        for (AttributeTypeAndValue a : atvs) {
            String oid = a.getType().getId();
            if (!PARSED.contains(oid)) seq.add(new String[]{oid, valueString(a.getValue()), null});
        }
        for (String[] f : GO_FIELDS) {
            // Go keeps every value of a field, in order, as ONE multi-valued RDN
            StringBuilder joined = null;
            for (AttributeTypeAndValue a : atvs)
                if (a.getType().getId().equals(f[0]) && a.getValue() instanceof ASN1String) {
                    String v = f[1] + "=" + goEscape(valueString(a.getValue()));
                    joined = joined == null ? new StringBuilder(v) : joined.append('+').append(v);
                }
            if (joined != null) seq.add(new String[]{f[0], null, joined.toString()});
        }
        for (String single : new String[]{CN, SERIAL}) {
            String last = null;
            for (AttributeTypeAndValue a : atvs)
                if (a.getType().getId().equals(single) && a.getValue() instanceof ASN1String) last = valueString(a.getValue());
            if (last != null && !last.isEmpty()) seq.add(new String[]{single, last, null});
        }
        StringBuilder s = new StringBuilder();
        for (int i = seq.size() - 1; i >= 0; i--) {
            if (s.length() > 0) s.append(',');
            String oid = seq.get(i)[0], value = seq.get(i)[1];
            if (seq.get(i)[2] != null) { s.append(seq.get(i)[2]); continue; }
            String typeName = goTypeName(oid);
            if (typeName == null) {
                // Go re-marshals the parsed string: PrintableString when it can, else UTF8String
                ASN1Encodable v = printable(value) ? new DERPrintableString(value) : new DERUTF8String(value);
                try {
                    s.append(oid).append("=#").append(HexFormat.of().formatHex(v.toASN1Primitive().getEncoded("DER")));
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
                continue;
            }
            s.append(typeName).append('=').append(goEscape(value));
        }
        return s.toString();
    }

    private static String valueString(ASN1Encodable v) {
        return v instanceof ASN1String ? ((ASN1String) v).getString() : v.toString();
    }

    private static String goTypeName(String oid) {
        for (String[] f : GO_FIELDS) if (f[0].equals(oid)) return f[1];
        if (oid.equals(CN)) return "CN";
        if (oid.equals(SERIAL)) return "SERIALNUMBER";
        return null;
    }

    /** Go's asn1 PrintableString alphabet, with '*' and '&' allowed as Marshal allows them. */
    private static boolean printable(String s) {
        for (char c : s.toCharArray()) {
            boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || " '()+,-./:=?*&".indexOf(c) >= 0;
            if (!ok) return false;
        }
        return true;
    }

    private static String goEscape(String v) {
        byte[] bytes = v.getBytes(StandardCharsets.UTF_8);
        StringBuilder out = new StringBuilder();
        int k = 0; // Go ranges over the string: k is the byte offset of each rune
        for (int i = 0; i < v.length(); ) {
            int cp = v.codePointAt(i);
            boolean escape = switch (cp) {
                case ',', '+', '"', '\\', '<', '>', ';' -> true;
                case ' ' -> k == 0 || k == bytes.length - 1;
                case '#' -> k == 0;
                default -> false;
            };
            if (escape) out.append('\\');
            out.appendCodePoint(cp);
            k += new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8).length;
            i += Character.charCount(cp);
        }
        return out.toString();
    }

}
