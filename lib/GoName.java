package asmhsm;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.Charset;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * A DER name printed as Go's pkix.Name.String() prints it: Go first parses the name into fields,
 * rebuilds them in its own order (C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER), puts
 * unknown attributes first, and prints the sequence reversed (RFC 2253). The plugin uses this
 * string as the certificate's CKA_LABEL.
 *
 * <p>The name is read here with the JDK only: the steps that print names (control-plane-prep,
 * import-ca, verify-ca, status) then load no Bouncy Castle, whose signed jar costs a JVM 150-180 ms
 * CPU to open. A name this reader leaves alone (a value that is no plain string, an encoding it
 * does not take) is read by Bouncy Castle instead ({@link Pki.WithBc#attributes}), as before.
 *
 * <p>A value that is no string (an INTEGER, say) is printed only for an attribute Go does not name,
 * as `OID=#` and the hex of its DER as the certificate holds it: what Go 1.15 and 1.16 print for an
 * INTEGER, BOOLEAN, BIT STRING, OID or OCTET STRING (they re-encode the value they parsed, and DER
 * has one encoding). Go 1.14 prints no attribute it does not name, and Go 1.17 on refuses such a
 * certificate altogether ("x509: invalid RDNSequence"), so no label is right for every plugin build.
 */
final class GoName {
    private GoName() {}

    /**
     * One attribute of the name: its OID and its value as a string when `string` (an ASN.1 string
     * type), else the hex of the value's DER.
     */
    record Attribute(String oid, String value, boolean string) {}

    private static final String[][] GO_FIELDS = {
            {"2.5.4.6", "C"}, {"2.5.4.8", "ST"}, {"2.5.4.7", "L"}, {"2.5.4.9", "STREET"}, {"2.5.4.17", "POSTALCODE"},
            {"2.5.4.10", "O"}, {"2.5.4.11", "OU"}};
    private static final String CN = "2.5.4.3", SERIAL = "2.5.4.5";
    private static final List<String> PARSED = List.of("2.5.4.3", "2.5.4.5", "2.5.4.6", "2.5.4.7", "2.5.4.8",
            "2.5.4.9", "2.5.4.10", "2.5.4.11", "2.5.4.17");

    static String of(byte[] derName) {
        List<Attribute> attributes = read(derName);
        return print(attributes != null ? attributes : Pki.WithBc.attributes(derName));
    }

    static String print(List<Attribute> atvs) {
        List<Object> seq = new ArrayList<>(); // an Attribute printed alone, or a String already printed
        for (Attribute a : atvs)
            if (!PARSED.contains(a.oid())) seq.add(a);
        for (String[] f : GO_FIELDS) {
            // Go keeps every value of a field, in order, as ONE multi-valued RDN
            StringBuilder joined = null;
            for (Attribute a : atvs)
                if (a.oid().equals(f[0]) && a.string()) {
                    String v = f[1] + "=" + escape(a.value());
                    joined = joined == null ? new StringBuilder(v) : joined.append('+').append(v);
                }
            if (joined != null) seq.add(joined.toString());
        }
        for (String single : new String[]{CN, SERIAL}) {
            Attribute last = null;
            for (Attribute a : atvs) if (a.oid().equals(single) && a.string()) last = a;
            if (last != null && !last.value().isEmpty()) seq.add(last);
        }
        StringBuilder s = new StringBuilder();
        for (int i = seq.size() - 1; i >= 0; i--) {
            if (s.length() > 0) s.append(',');
            if (!(seq.get(i) instanceof Attribute a)) {
                s.append((String) seq.get(i));
                continue;
            }
            String typeName = typeName(a.oid());
            if (typeName != null) s.append(typeName).append('=').append(escape(a.value()));
            else if (!a.string()) s.append(a.oid()).append("=#").append(a.value());   // its DER as it came (see the class comment)
            else {
                // Go re-marshals the parsed string: PrintableString when it can, else UTF8String
                boolean printable = printable(a.value());
                s.append(a.oid()).append("=#").append(HexFormat.of().formatHex(Der.write(printable ? 0x13 : 0x0c,
                        a.value().getBytes(printable ? StandardCharsets.US_ASCII : StandardCharsets.UTF_8))));
            }
        }
        return s.toString();
    }

    private static String typeName(String oid) {
        for (String[] f : GO_FIELDS) if (f[0].equals(oid)) return f[1];
        if (oid.equals(CN)) return "CN";
        if (oid.equals(SERIAL)) return "SERIALNUMBER";
        return null;
    }

    /**
     * Whether Marshal picks PrintableString for a string of no stated type: Go's PrintableString
     * alphabet without '*' and '&' (it rejects both when choosing; it accepts them only in a
     * PrintableString it parsed).
     */
    private static boolean printable(String s) {
        for (char c : s.toCharArray()) {
            boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || " '()+,-./:=?".indexOf(c) >= 0;
            if (!ok) return false;
        }
        return true;
    }

    private static String escape(String v) {
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

    // ------------------------------------------------------------ the JDK-only reader

    /**
     * The attributes of a DER Name (SEQUENCE OF SET OF SEQUENCE {OID, value}), in order, with
     * each value decoded as Bouncy Castle's ASN1String.getString() decodes it; null when the name
     * holds anything else (a value of another type, a long form this reader does not take, bad DER).
     */
    static List<Attribute> read(byte[] der) {
        try {
            Der.Reader name = new Der.Reader(der);
            Der.Reader rdns = name.inner(0x30);
            if (name.more()) return null;
            List<Attribute> out = new ArrayList<>();
            while (rdns.more()) {
                Der.Reader set = rdns.inner(0x31);
                if (!set.more()) return null;
                while (set.more()) {
                    Der.Reader atv = set.inner(0x30);
                    String oid = Der.oid(atv.content(0x06));
                    int tag = atv.tag();
                    String value = decode(tag, atv.content(tag));
                    if (oid == null || value == null || atv.more()) return null;
                    out.add(new Attribute(oid, value, true));
                }
            }
            return out;
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            return null;
        }
    }

    /** A value of the string types Go reads as strings, decoded as Bouncy Castle decodes it; null for any other. */
    private static String decode(int tag, byte[] v) {
        return switch (tag) {
            case 0x0c -> strict(StandardCharsets.UTF_8, v);                  // UTF8String
            case 0x12, 0x13, 0x14, 0x16 -> new String(v, StandardCharsets.ISO_8859_1); // Numeric, Printable, T61, IA5: a char per byte
            case 0x1e -> bmp(v);                                             // BMPString
            default -> null;
        };
    }

    /** Two bytes a char, kept as they are (a lone surrogate too, as Bouncy Castle keeps it); null for an odd length. */
    private static String bmp(byte[] v) {
        if (v.length % 2 != 0) return null;
        char[] c = new char[v.length / 2];
        for (int i = 0; i < c.length; i++) c[i] = (char) (((v[2 * i] & 0xff) << 8) | (v[2 * i + 1] & 0xff));
        return new String(c);
    }

    private static String strict(Charset cs, byte[] v) {
        try {
            return cs.newDecoder().onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(v)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }
}
