package asmhsm;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.StringReader;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPublicKey;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.ECParameterSpec;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.Enumeration;
import java.util.HexFormat;
import java.util.List;
import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.ASN1String;
import org.bouncycastle.asn1.DERSequence;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.AttributeTypeAndValue;
import org.bouncycastle.asn1.x500.RDN;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.openssl.PEMEncryptedKeyPair;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcePEMDecryptorProviderBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.PKCS8EncryptedPrivateKeyInfo;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequest;

/** Certificates and PEM, through Bouncy Castle and the JDK: parsing, checks, names as Go prints them. */
public final class Pki {
    private Pki() {}

    /** Every PEM block of a file, in order; refuses a file with none. */
    public static List<PemBlock> pemBlocks(Path file, String what) {
        return pemBlocks(Env.readPem(file, what, "give a PEM file (-----BEGIN CERTIFICATE-----)"), what + " " + file);
    }

    /** The blocks of PEM text; a refusal says what is wrong and the size, never a line of the text. */
    public static List<PemBlock> pemBlocks(String text, String what) {
        String size = text.getBytes(StandardCharsets.UTF_8).length + " bytes";
        List<PemBlock> blocks;
        try {
            blocks = PemBlock.read(text);
        } catch (IOException e) {
            throw Fail.badInput(what + " holds broken PEM (" + size + ": a block without its END line, or damaged base64)",
                    "check the file was copied whole");
        }
        if (blocks.isEmpty()) throw Fail.badInput(what + " holds no PEM block (" + size + ")", "give a PEM file (-----BEGIN CERTIFICATE-----)");
        return blocks;
    }

    /**
     * One PEM block (RFC 7468): its label and the bytes of its base64. Read with the JDK, by the
     * rules Bouncy Castle's PemReader has (1.87, not lax), so that a step reading certificates
     * never opens Bouncy Castle's signed jars: text before, between and after blocks is skipped;
     * a BEGIN line starts the line, its label (no '-') ends with exactly five dashes, else reading
     * stops there; lines holding ':' are headers (Proc-Type ...) and skipped; the END line starts
     * with END and the same label; base64 lines are trimmed, spaces and tabs inside ignored,
     * padding only at the end, a length in whole groups of four.
     */
    public static final class PemBlock {
        private static final String BEGIN = "-----BEGIN ", END = "-----END ", DASHES = "-----";
        private final String type;
        private final byte[] content;

        PemBlock(String type, byte[] content) {
            this.type = type;
            this.content = content;
        }

        public String getType() {
            return type;
        }

        public byte[] getContent() {
            return content.clone();
        }

        /** The blocks of the text, in order; IOException for a block without its END line or with damaged base64. */
        static List<PemBlock> read(String text) throws IOException {
            List<PemBlock> blocks = new ArrayList<>();
            java.io.BufferedReader lines = new java.io.BufferedReader(new StringReader(text));
            for (String line; (line = lines.readLine()) != null; ) {
                if (!line.startsWith(BEGIN)) continue;
                String label = line.substring(BEGIN.length()).trim();
                int dash = label.indexOf('-');
                if (dash <= 0 || !label.endsWith(DASHES) || label.length() - dash != DASHES.length()) break;
                String type = label.substring(0, dash), end = END + type + DASHES;
                StringBuilder b64 = new StringBuilder();
                while ((line = lines.readLine()) != null) {
                    if (line.indexOf(':') >= 0) continue;
                    if (line.startsWith(end)) break;
                    b64.append(line.trim());
                }
                if (line == null) throw new IOException(end + " not found");
                blocks.add(new PemBlock(type, base64(b64)));
            }
            return blocks;
        }

        private static byte[] base64(CharSequence text) throws IOException {
            StringBuilder s = new StringBuilder(text.length());
            for (int i = 0; i < text.length(); i++) {
                char c = text.charAt(i);
                if (c != ' ' && c != '\t') s.append(c);
            }
            // the JDK's decoder also takes a last group without its padding: refuse it, as Bouncy Castle does
            if (s.length() % 4 != 0) throw new IOException("base64 of " + s.length() + " characters, not whole groups of four");
            try {
                return java.util.Base64.getDecoder().decode(s.toString());
            } catch (IllegalArgumentException e) {
                throw new IOException("damaged base64", e);
            }
        }
    }

    /** All certificates of a PEM file, in file order; any other block type is refused. */
    public static List<X509Certificate> certificates(Path file, String what) {
        return certificates(pemBlocks(file, what), what + " " + file);
    }

    public static List<X509Certificate> certificates(List<PemBlock> blocks, String what) {
        List<X509Certificate> certs = new ArrayList<>();
        for (PemBlock b : blocks) {
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

    /**
     * A cert-chain.pem in the form every reader takes (istiod's splitCerts included, see
     * {@link Istio#splitProblem}): the certificates' PEM blocks only, in the given order (the CA
     * certificate first, the root last), LF line ends, one final newline.
     */
    public static String chainPem(List<X509Certificate> chain) {
        StringBuilder s = new StringBuilder();
        for (X509Certificate c : chain) s.append(pem(c));
        return s.toString();
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

    /**
     * Refuses (exit 2) a root that cannot issue the Istio CA certificate: {@link #requireRootCa}, and
     * no basicConstraints pathLen 0, which forbids any CA below the root, while the plugin
     * requires the Istio CA to be issued directly by it (import-ca and sign-csr share this rule).
     */
    public static void requireIstioRoot(X509Certificate c, String what) {
        requireRootCa(c, what);
        if (c.getBasicConstraints() == 0)
            throw Fail.badInput(what + " '" + goName(c.getSubjectX500Principal().getEncoded())
                            + "' has basicConstraints pathLen 0: it may not issue a CA, and the Istio CA certificate must be issued by it directly",
                    "use a root without that path length limit (pathLen 1 or more, or none)");
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
        return Der.integer(serial);
    }

    /** The subject exactly as encoded in the certificate (crypto11 stores RawSubject). */
    public static byte[] subjectDer(X509Certificate c) {
        return name(c, true);
    }

    public static byte[] issuerDer(X509Certificate c) {
        return name(c, false);
    }

    /** The JDK parsed the certificate already, so its DER holds both names: one is cut out as it is. */
    private static byte[] name(X509Certificate c, boolean subject) {
        try {
            return Der.certificateName(encoded(c), subject);
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            return subject ? WithBc.subjectDer(c) : WithBc.issuerDer(c);
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

    /** A DER name as Go's pkix.Name.String() prints it, the plugin's CKA_LABEL: see {@link GoName}. */
    public static String goName(byte[] derName) {
        return GoName.of(derName);
    }

    /**
     * Writes a public PEM file (mode 0644) unless it holds exactly this text already; a file
     * holding anything else is kept unless `replace`. Returns whether it changed (or would).
     */
    public static boolean writePem(Out out, Path file, String pem, boolean replace, String what) throws IOException {
        byte[] bytes = pem.getBytes(StandardCharsets.US_ASCII);
        boolean exists = Files.exists(file);
        if (exists && Files.isRegularFile(file) && java.util.Arrays.equals(Files.readAllBytes(file), bytes)) {
            out.say("%s already holds this %s", file, what);
            return false;
        }
        if (exists && !replace)
            throw Fail.failed(file + " already exists and holds something else than this " + what,
                    "pass --replace to overwrite it, or -o to write elsewhere");
        if (!out.dryRun()) Env.writeFile(file, bytes, "rw-r--r--");
        out.change((out.dryRun() ? (exists ? "replace " : "write ") : (exists ? "replaced " : "wrote ")) + file + " (" + what + ")");
        return true;
    }

    // ------------------------------------------------------------ CSR (istiod's request)

    /** The one certificate request of a PEM file; any other block, or several, is refused. */
    public static Csr csr(Path file, String what) {
        return csr(pemBlocks(file, what), what + " " + file);
    }

    public static Csr csr(String pem, String what) {
        return csr(pemBlocks(pem, what), what);
    }

    private static Csr csr(List<PemBlock> blocks, String what) {
        if (blocks.size() != 1 || !blocks.get(0).getType().endsWith("CERTIFICATE REQUEST"))
            throw Fail.badInput(what + " is not one PEM CERTIFICATE REQUEST (found "
                    + blocks.stream().map(PemBlock::getType).toList() + ")", "give the csr.pem that decrypt-csr wrote");
        Csr csr = Csr.read(blocks.get(0).getContent());
        if (csr != null) return csr;
        // not plain DER: Bouncy Castle's reading says what is wrong, or takes it (BER), as DER again
        csr = Csr.read(WithBc.csrDer(blocks.get(0).getContent(), what));
        if (csr == null) throw Fail.badInput(what + " is not a valid PKCS#10 request", "give the csr.pem that decrypt-csr wrote");
        return csr;
    }

    /**
     * A certificate request (PKCS#10: istiod's), read with the JDK: its DER and the parts the
     * steps check. decrypt-csr and upload-chain need no more; signing it (sign-csr, renew-ca)
     * hands its DER to Bouncy Castle.
     */
    public static final class Csr {
        final byte[] der;
        final byte[] subjectDer;
        final byte[] publicKeyInfo;
        final String keyOid;
        final byte[] signedPart;
        final String signatureOid;
        final byte[] signature;

        private Csr(byte[] der, byte[] subjectDer, byte[] publicKeyInfo, String keyOid, byte[] signedPart, String signatureOid, byte[] signature) {
            this.der = der;
            this.subjectDer = subjectDer;
            this.publicKeyInfo = publicKeyInfo;
            this.keyOid = keyOid;
            this.signedPart = signedPart;
            this.signatureOid = signatureOid;
            this.signature = signature;
        }

        /** CertificationRequest ::= SEQUENCE { info SEQUENCE { version, subject, SubjectPublicKeyInfo, [0] attributes }, algorithm, BIT STRING }; null for anything else. */
        static Csr read(byte[] der) {
            try {
                Der.Reader whole = new Der.Reader(der);
                Der.Reader request = whole.inner(0x30);
                if (whole.more()) return null;
                byte[] info = request.element(0x30);
                Der.Reader fields = new Der.Reader(info).inner(0x30);
                if (fields.content(0x02).length != 1) return null;   // version 0, one byte
                byte[] subject = fields.element(0x30);
                byte[] spki = fields.element(0x30);
                if (fields.more()) fields.inner(0xa0);
                if (fields.more()) return null;
                String keyOid = Der.oid(new Der.Reader(spki).inner(0x30).inner(0x30).content(0x06));
                Der.Reader algorithm = request.inner(0x30);
                String signatureOid = Der.oid(algorithm.content(0x06));
                byte[] bits = request.content(0x03);
                if (request.more() || keyOid == null || signatureOid == null || bits.length < 1 || bits[0] != 0) return null;
                return new Csr(der, subject, spki, keyOid, info, signatureOid, java.util.Arrays.copyOfRange(bits, 1, bits.length));
            } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
                return null;
            }
        }

        /** The request as it is encoded. */
        public byte[] der() {
            return der.clone();
        }

        /** The subject as it is encoded (an issued certificate carries it byte for byte). */
        public byte[] subjectDer() {
            return subjectDer.clone();
        }
    }

    /** JCA names of the keys and signatures istiod, openssl and Go make; another goes to Bouncy Castle. */
    private static final java.util.Map<String, String> KEY_ALGORITHMS = java.util.Map.of(
            "1.2.840.113549.1.1.1", "RSA", "1.2.840.10045.2.1", "EC", "1.3.101.112", "Ed25519", "1.3.101.113", "Ed448");
    private static final java.util.Map<String, String> SIGNATURE_ALGORITHMS = java.util.Map.of(
            "1.2.840.113549.1.1.11", "SHA256withRSA", "1.2.840.113549.1.1.12", "SHA384withRSA", "1.2.840.113549.1.1.13", "SHA512withRSA",
            "1.2.840.10045.4.3.2", "SHA256withECDSA", "1.2.840.10045.4.3.3", "SHA384withECDSA", "1.2.840.10045.4.3.4", "SHA512withECDSA",
            "1.3.101.112", "Ed25519", "1.3.101.113", "Ed448");

    /**
     * The request is signed by the key it carries: the requester holds that key. The key is made
     * by the JCA KeyFactory its algorithm OID names (the JDK has none under the EC key's OID
     * itself), the signature checked by the JCA Signature its algorithm names; Bouncy Castle
     * checks the others (RSASSA-PSS ...), as it checked every request before.
     */
    public static boolean csrSignatureValid(Csr csr) {
        String algorithm = SIGNATURE_ALGORITHMS.get(csr.signatureOid);
        if (algorithm == null) {
            try {
                return WithBc.csrSignatureValid(WithBc.request(csr));
            } catch (Fail unreadable) {
                return false;
            }
        }
        try {
            java.security.Signature verifier = java.security.Signature.getInstance(algorithm);
            verifier.initVerify(publicKey(csr));
            verifier.update(csr.signedPart);
            return verifier.verify(csr.signature);
        } catch (GeneralSecurityException | RuntimeException e) {
            return false;
        }
    }

    /** The smallest RSA key the Istio CA may have: istiod makes RSA 2048. */
    public static final int ISTIO_CA_MIN_RSA_BITS = 2048;

    /**
     * Why a key cannot be the Istio CA's; null when it can. Only RSA of 2048 bits or more: istiod's
     * KMS-backed CA (ASM 1.9) makes an RSA 2048 key, stores it as a PKCS#1 RSA key in
     * istio-ca-encrypted-key and signs its CSR with SHA256withRSA, so a CSR with another key
     * (EC, Ed25519 ...) is not one istiod made, and istiod could not use a certificate for it.
     */
    public static String istioCaKeyProblem(PublicKey k) {
        if (k instanceof RSAPublicKey r) {
            int bits = r.getModulus().bitLength();
            return bits >= ISTIO_CA_MIN_RSA_BITS ? null : "RSA " + bits + " is shorter than the " + ISTIO_CA_MIN_RSA_BITS + " bits istiod makes";
        }
        return keyDescription(k) + " is not RSA: istiod makes its CA key as RSA 2048 and stores it as a PKCS#1 RSA key";
    }

    /** Refuses (exit 2) a CSR whose key the Istio CA may not have; see {@link #istioCaKeyProblem}. */
    public static void requireIstioCaKey(Csr csr) {
        String problem = istioCaKeyProblem(publicKey(csr));
        if (problem != null)
            throw Fail.badInput("the CSR '" + subject(csr) + "' has a key the Istio CA may not have: " + problem,
                    "only RSA keys of " + ISTIO_CA_MIN_RSA_BITS + " bits or more are signed: sign the CSR decrypt-csr took from istiod's Secret");
    }

    public static PublicKey publicKey(Csr csr) {
        String algorithm = KEY_ALGORITHMS.get(csr.keyOid);
        if (algorithm == null) return WithBc.publicKey(WithBc.request(csr));
        try {
            return java.security.KeyFactory.getInstance(algorithm).generatePublic(new java.security.spec.X509EncodedKeySpec(csr.publicKeyInfo));
        } catch (GeneralSecurityException | RuntimeException e) {
            throw Fail.badInput("the CSR's public key cannot be read: " + e.getMessage(), "check the CSR (openssl req -text)");
        }
    }

    public static String subject(Csr csr) {
        return goName(csr.subjectDer);
    }

    public static String pem(Csr csr) {
        return pem("CERTIFICATE REQUEST", csr.der);
    }

    /** "RSA 2048", "EC P-256": the key as an operator names it. */
    public static String keyDescription(PublicKey k) {
        return WithBc.keyDescription(k);
    }

    public static int keyBits(PublicKey k) {
        if (k instanceof RSAPublicKey r) return r.getModulus().bitLength();
        if (k instanceof ECPublicKey e) return e.getParams().getCurve().getField().getFieldSize();
        return 0;
    }

    /** The same public key (RSA by modulus and exponent, EC by curve and point; else by encoding). */
    public static boolean sameKey(PublicKey a, PublicKey b) {
        if (a instanceof RSAPublicKey x && b instanceof RSAPublicKey y)
            return x.getModulus().equals(y.getModulus()) && x.getPublicExponent().equals(y.getPublicExponent());
        if (a instanceof ECPublicKey x && b instanceof ECPublicKey y) {
            ECParameterSpec p = x.getParams(), q = y.getParams();
            return x.getW().equals(y.getW()) && p.getCurve().equals(q.getCurve()) && p.getGenerator().equals(q.getGenerator());
        }
        return java.util.Arrays.equals(a.getEncoded(), b.getEncoded());
    }

    /**
     * The trust domain a subject names when it is exactly istiod's `O=<trust domain>` (one
     * attribute, organisation, a DNS-like name); null for anything else.
     */
    public static String trustDomain(Csr csr) {
        List<GoName.Attribute> attributes = GoName.read(csr.subjectDer);
        if (attributes == null) return WithBc.trustDomain(X500Name.getInstance(csr.subjectDer));
        // one RDN of one attribute: the reader takes no empty RDN, so one attribute is one RDN
        if (attributes.size() != 1 || !attributes.get(0).oid().equals("2.5.4.10")) return null;
        String v = attributes.get(0).value();
        return v.matches(TRUST_DOMAIN) ? v : null;
    }

    private static final String TRUST_DOMAIN = "[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?";

    // ------------------------------------------------------------ issuing the Istio CA certificate

    /** Signs with a key held elsewhere (the HSM); returns a DER signature as X.509 carries it. */
    public interface SignFunction {
        byte[] sign(byte[] data) throws Exception;
    }

    /** SHA-256 with the root key's algorithm: RSA (PKCS#1 v1.5) or ECDSA. */
    public static AlgorithmIdentifier sha256SignatureAlgorithm(String keyAlgorithm) {
        return WithBc.sha256SignatureAlgorithm(keyAlgorithm);
    }

    public static ContentSigner signer(String keyAlgorithm, SignFunction f) {
        return WithBc.signer(keyAlgorithm, f);
    }

    public static ContentSigner signer(PrivateKey key) {
        return WithBc.signer(key);
    }

    /** PKCS#11 CKM_ECDSA returns r || s; X.509 carries SEQUENCE { r INTEGER, s INTEGER }. */
    public static byte[] ecdsaDer(byte[] rs) {
        return WithBc.ecdsaDer(rs);
    }

    /**
     * The Istio CA certificate as istiod's plugin accepts it: issued directly by the root,
     * CA:TRUE pathLen 0 (critical), keyUsage keyCertSign + cRLSign + digitalSignature
     * (critical), no ExtKeyUsage, the CSR's subject and key, key identifiers, SHA-256.
     * The issuer name is the root's subject byte for byte, as Go matches them.
     */
    public static X509Certificate issueIstioCa(Csr csr, X509Certificate root, ContentSigner signer,
            Instant notBefore, Instant notAfter, BigInteger serial) {
        return WithBc.issueIstioCa(WithBc.request(csr), root, signer, notBefore, notAfter, serial);
    }

    /** A CA certificate's validity: from 5 minutes ago (clock skew between machines), never before nor past the root's; clamped when the root ends first. */
    public record Validity(Instant notBefore, Instant notAfter, boolean clamped) {}

    public static Validity istioCaValidity(X509Certificate root, int days, Instant now) {
        Instant from = now.minus(java.time.Duration.ofMinutes(5)), rootFrom = root.getNotBefore().toInstant();
        Instant to = now.plus(java.time.Duration.ofDays(days)), rootTo = root.getNotAfter().toInstant();
        return new Validity(from.isAfter(rootFrom) ? from : rootFrom, to.isAfter(rootTo) ? rootTo : to, to.isAfter(rootTo));
    }

    /** A random positive 128-bit serial number, as Go's tooling makes them. */
    public static BigInteger randomSerial() {
        return new BigInteger(128, new java.security.SecureRandom()).setBit(127);
    }

    // ------------------------------------------------------------ private key files

    /**
     * A private key from a file's bytes: PEM (PKCS#1, SEC1, PKCS#8, encrypted PKCS#8 or
     * OpenSSL-encrypted) or PKCS#12. The password is needed only for encrypted files.
     */
    public static PrivateKey privateKey(byte[] content, char[] password, String what) {
        String head = new String(content, 0, Math.min(content.length, 8192), StandardCharsets.ISO_8859_1);
        return head.contains("-----BEGIN ") ? pemPrivateKey(new String(content, StandardCharsets.UTF_8), password, what)
                : pkcs12PrivateKey(content, password, what);
    }

    /** Bouncy Castle's provider, made on first use: it loads hundreds of classes that only encrypted keys need. */
    private static final class Bc {
        static final java.security.Provider PROVIDER = new org.bouncycastle.jce.provider.BouncyCastleProvider();
    }

    private static PrivateKey pemPrivateKey(String text, char[] password, String what) {
        return WithBc.pemPrivateKey(text, password, what);
    }

    private static PrivateKey pkcs12PrivateKey(byte[] content, char[] password, String what) {
        try {
            KeyStore ks = KeyStore.getInstance("PKCS12");
            char[] pass = password != null ? password : new char[0];
            ks.load(new ByteArrayInputStream(content), pass);
            List<String> keys = new ArrayList<>();
            for (Enumeration<String> e = ks.aliases(); e.hasMoreElements(); ) {
                String alias = e.nextElement();
                if (ks.isKeyEntry(alias)) keys.add(alias);
            }
            if (keys.size() != 1)
                throw Fail.badInput(what + " holds " + keys.size() + " private keys, expected exactly one", "export only the root key");
            return (PrivateKey) ks.getKey(keys.get(0), pass);
        } catch (Fail f) {
            throw f;
        } catch (IOException e) {
            boolean wrongPassword = e.getCause() instanceof java.security.UnrecoverableKeyException
                    || String.valueOf(e.getMessage()).contains("password");
            throw Fail.badInput("cannot open " + what + " as PEM or PKCS#12 (" + content.length + " bytes, "
                            + (wrongPassword ? "wrong password?" : "no -----BEGIN line and not PKCS#12") + ")",
                    password == null ? "if it is a protected PKCS#12 file, pass its password file with --root-key-pass-file"
                            : "check the password file and the key file");
        } catch (GeneralSecurityException | RuntimeException e) {
            throw Fail.badInput("cannot read the private key in " + what + " (" + e.getClass().getSimpleName() + ")", "check the key file");
        }
    }

    // ------------------------------------------------------------ chains as Go verifies them

    private static final String SERVER_AUTH = "1.3.6.1.5.5.7.3.1", ANY_EKU = "2.5.29.37.0",
            NETSCAPE_SGC = "2.16.840.1.113730.4.1", MICROSOFT_SGC = "1.3.6.1.4.1.311.10.3.3";

    public static boolean sameCert(X509Certificate a, X509Certificate b) {
        return a != null && b != null && java.util.Arrays.equals(encoded(a), encoded(b));
    }

    public static String name(X509Certificate c) {
        return goName(subjectDer(c));
    }

    /** How {@link #chainProblem} judges a chain. */
    public enum ChainRules {
        /**
         * As istiod and its HSM plugin call Go's x509.Verify (default options, hence ExtKeyUsage
         * serverAuth), in Go's words: dates, issuer names byte for byte, signatures, intermediates
         * being CAs, path lengths, ExtKeyUsage along the path. What a chain must pass before it is uploaded.
         */
        ISTIOD,
        /**
         * Our own diagnosis of what a cluster holds or serves (verify-ca, verify-mtls, status): dates,
         * issuers, signatures, and every issuer a CA that may sign certificates; each certificate
         * named by its place in the chain.
         */
        STRICT
    }

    /**
     * Whether a chain (leaf or CA first, each certificate issued by the next) leads to the
     * given root: null when it does, else which link fails and why, in one sentence. The chain
     * may end with the root itself or with a certificate the root issued. Dates are checked at
     * `now`; `what` names the chain in messages ("cert-chain.pem", "the served").
     */
    public static String chainProblem(ChainRules rules, List<X509Certificate> chain, X509Certificate root, Date now, String what) {
        if (chain.isEmpty()) return what + " holds no certificate";
        boolean go = rules == ChainRules.ISTIOD;
        List<X509Certificate> path = new ArrayList<>(chain);
        if (!sameCert(path.get(path.size() - 1), root)) path.add(root);
        int last = path.size() - 1;
        for (int i = 0; i <= last; i++) {
            X509Certificate c = path.get(i);
            String label = go ? "'" + name(c) + "'" : i < chain.size() ? what + " certificate #" + (i + 1) + " '" + name(c) + "'"
                    : "the root '" + name(c) + "'";
            if (go) {
                if (now.before(c.getNotBefore()))
                    return "x509: certificate has expired or is not yet valid: " + label + " is not valid before " + c.getNotBefore().toInstant();
                if (now.after(c.getNotAfter()))
                    return "x509: certificate has expired or is not yet valid: " + label + " expired on " + c.getNotAfter().toInstant();
                if (i > 0 && i < last && !isCa(c)) return "x509: " + label + " is not authorized to sign other certificates (not a CA)";
                int pathLen = c.getBasicConstraints();
                if (i > 0 && pathLen >= 0 && i - 1 > pathLen)
                    return "x509: too many intermediates for path length constraint of " + label + " (pathLen " + pathLen + ")";
            } else if (i < chain.size() && (now.before(c.getNotBefore()) || now.after(c.getNotAfter()))) {
                return label + " is outside its validity period (" + c.getNotBefore().toInstant() + " to " + c.getNotAfter().toInstant() + ")";
            }
            if (i == last) break;
            X509Certificate issuer = path.get(i + 1);
            String issuerLabel = go ? "'" + name(issuer) + "'" : i + 1 < chain.size() ? "certificate #" + (i + 2) + " '" + name(issuer) + "'"
                    : "the root '" + name(issuer) + "'";
            if (go ? !java.util.Arrays.equals(issuerDer(c), subjectDer(issuer))
                    : !c.getIssuerX500Principal().equals(issuer.getSubjectX500Principal()))
                return go ? "x509: certificate signed by unknown authority: " + label + " is issued by '" + goName(issuerDer(c)) + "', not by " + issuerLabel
                        : label + " was issued by '" + goName(issuerDer(c)) + "', not by " + issuerLabel;
            try {
                c.verify(issuer.getPublicKey());
            } catch (GeneralSecurityException | RuntimeException e) {
                return go ? "x509: certificate signed by unknown authority: the signature on " + label + " does not verify with the key of " + issuerLabel
                        : label + " names " + issuerLabel + " as issuer but its signature does not verify with that key";
            }
            if (!go && (!isCa(issuer) || !canSignCertificates(issuer)))
                return issuerLabel.substring(0, 1).toUpperCase(java.util.Locale.ROOT) + issuerLabel.substring(1)
                        + " is not a CA that may sign certificates, yet it issued " + label;
        }
        return go ? extKeyUsageProblem(path) : null;
    }

    /** Go's check that every certificate of the path allows serverAuth (or any usage), from the root down. */
    private static String extKeyUsageProblem(List<X509Certificate> path) {
        for (int i = path.size() - 1; i >= 0; i--) {
            List<String> eku;
            try {
                eku = path.get(i).getExtendedKeyUsage();
            } catch (java.security.cert.CertificateParsingException e) {
                return "x509: cannot parse the ExtKeyUsage of '" + name(path.get(i)) + "'";
            }
            if (eku == null || eku.isEmpty() || eku.contains(ANY_EKU) || eku.contains(SERVER_AUTH)
                    || eku.contains(NETSCAPE_SGC) || eku.contains(MICROSOFT_SGC)) continue;
            return "x509: certificate specifies an incompatible key usage: '" + name(path.get(i))
                    + "' allows only ExtKeyUsage " + eku + ", not serverAuth";
        }
        return null;
    }

    // ------------------------------------------------------------ telling certificates apart, and their validity

    /**
     * What tells two certificates of the same subject apart (each cluster's Istio CA is
     * O=<trust domain>): serial, subject key identifier, end of validity. For a human line and --json.
     */
    public record Identity(String subject, String serial, String ski, Instant notAfter) {
        public String text() {
            return "serial " + serial + ", SKI " + ski + ", not after " + notAfter;
        }

        public java.util.Map<String, Object> json() {
            java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
            m.put("subject", subject);
            m.put("serial", serial);
            m.put("ski", ski);
            m.put("notAfter", notAfter.toString());
            return m;
        }
    }

    public static Identity identity(X509Certificate c) {
        String ski;
        try {
            ski = subjectKeyId(c);
        } catch (IndexOutOfBoundsException | IllegalArgumentException | GeneralSecurityException e) {
            return WithBc.identity(c);   // an extension or key the JDK-side reading does not take
        }
        return new Identity(name(c), c.getSerialNumber().toString(16), ski, c.getNotAfter().toInstant());
    }

    /** The certificate's SKI, else RFC 5280's method 1 (SHA-1 of the key's bits), as openssl and Go compute it. */
    private static String subjectKeyId(X509Certificate c) throws GeneralSecurityException {
        byte[] ext = c.getExtensionValue("2.5.29.14");
        if (ext != null) {
            Der.Reader outer = new Der.Reader(new Der.Reader(ext).content(0x04));
            byte[] id = outer.content(0x04);
            if (outer.more()) throw new IllegalArgumentException("subjectKeyIdentifier");
            return colonHex(id);
        }
        Der.Reader spki = new Der.Reader(c.getPublicKey().getEncoded()).inner(0x30);
        spki.inner(0x30);
        byte[] bits = spki.content(0x03);
        if (bits.length < 1 || bits[0] != 0) throw new IllegalArgumentException("subjectPublicKey");
        return colonHex(java.security.MessageDigest.getInstance("SHA-1").digest(java.util.Arrays.copyOfRange(bits, 1, bits.length))) + " (computed)";
    }

    private static String colonHex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (byte x : b) s.append(s.length() == 0 ? "" : ":").append(String.format("%02x", x));
        return s.toString();
    }

    /**
     * A certificate's validity as a status line: wrong when it is not valid yet, expired, or has
     * fewer than `wrongDays` days left; done with a warning under `warnDays`. `what` names it,
     * `renew` is the step that renews it. Days left (whole days, negative once expired) in --json.
     */
    public static Checklist.Check validity(X509Certificate c, String what, Instant now, int warnDays, int wrongDays, String renew) {
        Identity id = identity(c);
        long days = java.time.Duration.between(now, id.notAfter()).toDays();
        if (now.isAfter(id.notAfter())) days = Math.min(days, -1);   // expired hours ago is still expired
        java.util.Map<String, Object> data = new java.util.LinkedHashMap<>(id.json());
        data.put("daysLeft", days);
        data.put("warnDays", warnDays);
        data.put("wrongDays", wrongDays);
        String who = what + " '" + id.subject() + "' (" + id.text() + ")";
        Checklist.Check check;
        if (now.isBefore(c.getNotBefore().toInstant()))
            check = Checklist.Check.wrong(who + " is not valid before " + c.getNotBefore().toInstant() + ": check the clocks", renew);
        else if (now.isAfter(id.notAfter()))
            check = Checklist.Check.wrong(who + " expired " + (-days) + " day(s) ago", renew);
        else if (days < wrongDays)
            check = Checklist.Check.wrong(who + " expires in " + days + " day(s), under " + wrongDays, renew);
        else if (days < warnDays)
            check = Checklist.Check.done(who + ": " + days + " day(s) left, under " + warnDays + ": renew it soon (" + renew + ")");
        else check = Checklist.Check.done(who + ": " + days + " day(s) left");
        return check.withData(data).with("warning", check.isDone() && days < warnDays);
    }

    /**
     * The code that needs Bouncy Castle (DER names, CSRs, building certificates, key files), in a
     * class of its own: Pki itself names no Bouncy Castle type the JVM must load to link it, so a
     * step that only reads certificates never opens Bouncy Castle's signed jars (docs/startup.md).
     */
    static final class WithBc {
        private WithBc() {}

        static byte[] subjectDer(X509Certificate c) {
            return der(org.bouncycastle.asn1.x509.Certificate.getInstance(encoded(c)).getSubject());
        }

        static byte[] issuerDer(X509Certificate c) {
            return der(org.bouncycastle.asn1.x509.Certificate.getInstance(encoded(c)).getIssuer());
        }

        static byte[] der(ASN1Encodable o) {
            try {
                return o.toASN1Primitive().getEncoded("DER");
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }

        /** A name's attributes, in order, read by Bouncy Castle: for names GoName's own reader leaves alone. */
        static List<GoName.Attribute> attributes(byte[] derName) {
            List<GoName.Attribute> out = new ArrayList<>();
            for (RDN rdn : X500Name.getInstance(derName).getRDNs())
                for (AttributeTypeAndValue a : rdn.getTypesAndValues()) {
                    ASN1Encodable v = a.getValue();
                    String oid = a.getType().getId();
                    // a BIT STRING is an ASN1String to Bouncy Castle (with a made-up text), not a string to Go
                    out.add(v instanceof ASN1String st && !(v instanceof org.bouncycastle.asn1.ASN1BitString)
                            ? new GoName.Attribute(oid, st.getString(), true)
                            : new GoName.Attribute(oid, java.util.HexFormat.of().formatHex(der(v)), false));
                }
            return out;
        }

        /** A request the JDK-side reader does not take, read by Bouncy Castle: its DER, or why it is none. */
        static byte[] csrDer(byte[] content, String what) {
            try {
                PKCS10CertificationRequest r = new PKCS10CertificationRequest(content);
                r.getSubject(); // parsing is lazy in places: touch what is used later
                return r.toASN1Structure().getEncoded("DER");
            } catch (IOException | RuntimeException e) {
                throw Fail.badInput(what + " is not a valid PKCS#10 request: " + e.getMessage(), "give the csr.pem that decrypt-csr wrote");
            }
        }

        /** The request as Bouncy Castle's, to sign it or to check one the JDK side leaves to it. */
        static PKCS10CertificationRequest request(Csr csr) {
            try {
                return new PKCS10CertificationRequest(csr.der);
            } catch (IOException | RuntimeException e) {
                // parts the JDK side skips (attributes, algorithm parameters) and Bouncy Castle reads
                throw Fail.badInput("the CSR is not a valid PKCS#10 request: " + e.getMessage(), "give the csr.pem that decrypt-csr wrote");
            }
        }

        static boolean csrSignatureValid(PKCS10CertificationRequest csr) {
            try {
                return csr.isSignatureValid(new JcaContentVerifierProviderBuilder().build(publicKey(csr)));
            } catch (Exception e) {
                return false;
            }
        }

        static PublicKey publicKey(PKCS10CertificationRequest csr) {
            try {
                return new JcaPKCS10CertificationRequest(csr).getPublicKey();
            } catch (GeneralSecurityException | RuntimeException e) {
                throw Fail.badInput("the CSR's public key cannot be read: " + e.getMessage(), "check the CSR (openssl req -text)");
            }
        }

        static String keyDescription(PublicKey k) {
            if (k instanceof RSAPublicKey r) return "RSA " + r.getModulus().bitLength();
            if (k instanceof ECPublicKey e) {
                var params = SubjectPublicKeyInfo.getInstance(k.getEncoded()).getAlgorithm().getParameters();
                String curve = params instanceof ASN1ObjectIdentifier oid ? org.bouncycastle.asn1.nist.NISTNamedCurves.getName(oid) : null;
                return "EC " + (curve != null ? curve : e.getParams().getCurve().getField().getFieldSize() + "-bit");
            }
            if (k instanceof java.security.interfaces.EdECKey ed) return ed.getParams().getName(); // Ed25519, Ed448
            return k.getAlgorithm();
        }

        static String trustDomain(X500Name subject) {
            RDN[] rdns = subject.getRDNs();
            if (rdns.length != 1 || rdns[0].isMultiValued()) return null;
            AttributeTypeAndValue a = rdns[0].getFirst();
            if (!a.getType().getId().equals("2.5.4.10") || !(a.getValue() instanceof ASN1String)) return null;
            String v = ((ASN1String) a.getValue()).getString();
            return v.matches(TRUST_DOMAIN) ? v : null;
        }

        static AlgorithmIdentifier sha256SignatureAlgorithm(String keyAlgorithm) {
            String name = switch (keyAlgorithm) {
                case "RSA" -> "SHA256withRSA";
                case "EC", "ECDSA" -> "SHA256withECDSA";
                default -> throw Fail.badInput("the root key is " + keyAlgorithm + "; only RSA and EC roots are supported",
                        "use an RSA or ECDSA root, as istiod's plugin verifies");
            };
            return new org.bouncycastle.operator.DefaultSignatureAlgorithmIdentifierFinder().find(name);
        }

        static ContentSigner signer(String keyAlgorithm, SignFunction f) {
            AlgorithmIdentifier alg = sha256SignatureAlgorithm(keyAlgorithm);
            java.io.ByteArrayOutputStream tbs = new java.io.ByteArrayOutputStream();
            return new ContentSigner() {
                @Override public AlgorithmIdentifier getAlgorithmIdentifier() { return alg; }
                @Override public OutputStream getOutputStream() { return tbs; }
                @Override public byte[] getSignature() {
                    try {
                        return f.sign(tbs.toByteArray());
                    } catch (Fail e) {
                        throw e;
                    } catch (Exception e) {
                        throw Fail.failed("signing with the root key failed: " + e.getMessage(), "check the root key and the HSM", e);
                    }
                }
            };
        }

        static ContentSigner signer(PrivateKey key) {
            sha256SignatureAlgorithm(key.getAlgorithm()); // refuses other key types with the same message
            try {
                return new JcaContentSignerBuilder(key.getAlgorithm().equals("RSA") ? "SHA256withRSA" : "SHA256withECDSA").build(key);
            } catch (org.bouncycastle.operator.OperatorCreationException e) {
                throw Fail.badInput("cannot sign with the root key: " + e.getMessage(), "check the root key file");
            }
        }

        static byte[] ecdsaDer(byte[] rs) {
            int n = rs.length / 2;
            return der(new DERSequence(new ASN1Encodable[]{
                    new ASN1Integer(new BigInteger(1, java.util.Arrays.copyOfRange(rs, 0, n))),
                    new ASN1Integer(new BigInteger(1, java.util.Arrays.copyOfRange(rs, n, rs.length)))}));
        }

        static X509Certificate issueIstioCa(PKCS10CertificationRequest csr, X509Certificate root, ContentSigner signer,
            Instant notBefore, Instant notAfter, BigInteger serial) {
            try {
                JcaX509ExtensionUtils u = new JcaX509ExtensionUtils();
                X509v3CertificateBuilder b = new X509v3CertificateBuilder(X500Name.getInstance(subjectDer(root)), serial,
                        Date.from(notBefore), Date.from(notAfter), csr.getSubject(), csr.getSubjectPublicKeyInfo());
                b.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
                b.addExtension(Extension.keyUsage, true,
                        new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign | KeyUsage.digitalSignature));
                b.addExtension(Extension.subjectKeyIdentifier, false, u.createSubjectKeyIdentifier(csr.getSubjectPublicKeyInfo()));
                byte[] rootSki = root.getExtensionValue(Extension.subjectKeyIdentifier.getId());
                b.addExtension(Extension.authorityKeyIdentifier, false, rootSki != null
                        ? new org.bouncycastle.asn1.x509.AuthorityKeyIdentifier(
                                org.bouncycastle.asn1.x509.SubjectKeyIdentifier.getInstance(
                                        org.bouncycastle.asn1.ASN1OctetString.getInstance(rootSki).getOctets()).getKeyIdentifier())
                        : u.createAuthorityKeyIdentifier(SubjectPublicKeyInfo.getInstance(root.getPublicKey().getEncoded())));
                return new JcaX509CertificateConverter().getCertificate(b.build(signer));
            } catch (GeneralSecurityException | IOException e) {
                throw Fail.failed("cannot build the CA certificate: " + e.getMessage(), "re-run with --verbose", e);
            }
        }

        static PrivateKey pemPrivateKey(String text, char[] password, String what) {
            JcaPEMKeyConverter conv = new JcaPEMKeyConverter();
            try (PEMParser p = new PEMParser(new StringReader(text))) {
                for (Object o; (o = p.readObject()) != null; ) {
                    if ((o instanceof PEMEncryptedKeyPair || o instanceof PKCS8EncryptedPrivateKeyInfo) && password == null)
                        throw Fail.badInput(what + " is encrypted", "pass the file holding its password with --root-key-pass-file");
                    if (o instanceof PEMKeyPair kp) return conv.getKeyPair(kp).getPrivate();
                    if (o instanceof PrivateKeyInfo info) return conv.getPrivateKey(info);
                    // BC's own ciphers: the JDK lacks the names openssl's encryptions map to (AES/CBC/PKCS7Padding)
                    if (o instanceof PEMEncryptedKeyPair e)
                        return conv.getKeyPair(e.decryptKeyPair(new JcePEMDecryptorProviderBuilder().setProvider(Bc.PROVIDER).build(password))).getPrivate();
                    if (o instanceof PKCS8EncryptedPrivateKeyInfo e)
                        return conv.getPrivateKey(e.decryptPrivateKeyInfo(
                                new org.bouncycastle.openssl.jcajce.JceOpenSSLPKCS8DecryptorProviderBuilder().setProvider(Bc.PROVIDER).build(password)));
                }
            } catch (Fail f) {
                throw f;
            } catch (Exception e) {
                // Bouncy Castle's messages may carry parts of what it parsed: the key's file is not quoted
                throw Fail.badInput("cannot read the private key in " + what + (password != null ? " (wrong password, or a damaged key)"
                                : " (a damaged key block)"),
                        "give an unencrypted or password-protected PEM key, or a PKCS#12 file, and the right password file");
            }
            throw Fail.badInput(what + " holds no private key", "give the root's private key (PEM or PKCS#12)");
        }

        static Identity identity(X509Certificate c) {
            byte[] ext = c.getExtensionValue(Extension.subjectKeyIdentifier.getId());
            String ski;
            if (ext != null) {
                ski = colonHex(org.bouncycastle.asn1.x509.SubjectKeyIdentifier.getInstance(
                        org.bouncycastle.asn1.ASN1OctetString.getInstance(ext).getOctets()).getKeyIdentifier());
            } else {
                try {   // none in the certificate: RFC 5280's method 1, as openssl and Go compute it
                    ski = colonHex(new JcaX509ExtensionUtils().createSubjectKeyIdentifier(c.getPublicKey()).getKeyIdentifier()) + " (computed)";
                } catch (GeneralSecurityException e) {
                    ski = "none";
                }
            }
            return new Identity(name(c), c.getSerialNumber().toString(16), ski, c.getNotAfter().toInstant());
        }
    }
}
