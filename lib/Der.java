package asmhsm;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;

/**
 * DER as the steps need it, with the JDK only: elements read by tag (definite lengths), OIDs, a few
 * written, and the names and serial number of a certificate as crypto11 stores them. Reading
 * these with Bouncy Castle opened its signed jar, 150-180 ms CPU a JVM (docs/startup.md).
 * Anything malformed is an IndexOutOfBoundsException or IllegalArgumentException.
 */
final class Der {
    private Der() {}

    /** A certificate's issuer (or subject) Name, its bytes as the certificate holds them (Go's RawIssuer, RawSubject). */
    static byte[] certificateName(byte[] certificate, boolean subject) {
        Reader tbs = new Reader(certificate).inner(0x30).inner(0x30);
        if (tbs.tag() == 0xa0) tbs.inner(0xa0);     // version
        tbs.inner(0x02);                            // serialNumber
        tbs.inner(0x30);                            // signature
        byte[] issuer = tbs.element(0x30);
        if (!subject) return issuer;
        tbs.inner(0x30);                            // validity
        return tbs.element(0x30);
    }

    /** An INTEGER, as crypto11 stores CKA_SERIAL_NUMBER: two's complement, minimal. */
    static byte[] integer(BigInteger value) {
        return write(0x02, value.toByteArray());
    }

    /** An OID's dotted form; null for one left to Bouncy Castle (empty, or an arc past 2^56). */
    static String oid(byte[] v) {
        if (v.length == 0 || (v[v.length - 1] & 0x80) != 0) return null;
        StringBuilder s = new StringBuilder();
        long arc = 0;
        boolean first = true;
        for (byte b : v) {
            if (arc == 0 && (b & 0xff) == 0x80) return null;        // not minimal
            if (arc >= (1L << 56)) return null;                       // the shift would overflow
            arc = (arc << 7) | (b & 0x7f);
            if ((b & 0x80) != 0) continue;
            if (first) {
                long top = Math.min(arc / 40, 2);
                s.append(top).append('.').append(arc - 40 * top);
                first = false;
            } else s.append('.').append(arc);
            arc = 0;
        }
        return s.toString();
    }

    /** One element: the tag, the length (short or long form), the content. */
    static byte[] write(int tag, byte[] content) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(tag);
        int n = content.length;
        if (n < 0x80) b.write(n);
        else {
            byte[] len = BigInteger.valueOf(n).toByteArray();
            int skip = len[0] == 0 ? 1 : 0;
            b.write(0x80 | (len.length - skip));
            b.write(len, skip, len.length - skip);
        }
        b.write(content, 0, n);
        return b.toByteArray();
    }

    /** DER's tag-length-value within [pos, end): definite lengths, short or long form. */
    static final class Reader {
        private final byte[] der;
        private int pos;
        private final int end;

        Reader(byte[] der) {
            this(der, 0, der.length);
        }

        private Reader(byte[] der, int pos, int end) {
            this.der = der;
            this.pos = pos;
            this.end = end;
        }

        boolean more() {
            return pos < end;
        }

        int tag() {
            if (pos >= end) throw new IndexOutOfBoundsException();
            return der[pos] & 0xff;
        }

        /** The next element's content, which must have this tag. */
        byte[] content(int tag) {
            Reader r = inner(tag);
            byte[] v = new byte[r.end - r.pos];
            System.arraycopy(der, r.pos, v, 0, v.length);
            return v;
        }

        /** The next element, which must have this tag, whole: its tag, length and content as encoded. */
        byte[] element(int tag) {
            int start = pos;
            inner(tag);
            return java.util.Arrays.copyOfRange(der, start, pos);
        }

        /** The next element, which must have this tag, as a reader of its content. */
        Reader inner(int tag) {
            if (tag() != tag) throw new IllegalArgumentException("tag");
            pos++;
            if (pos >= end) throw new IndexOutOfBoundsException();
            int first = der[pos++] & 0xff;
            int length;
            if (first < 0x80) length = first;
            else {
                int n = first & 0x7f;
                if (n == 0 || n > 3) throw new IllegalArgumentException("length");   // indefinite, or 16 MB and more
                length = 0;
                for (int i = 0; i < n; i++) {
                    if (pos >= end) throw new IndexOutOfBoundsException();
                    length = (length << 8) | (der[pos++] & 0xff);
                }
                if (length < 0x80 || (n > 1 && length < (1 << (8 * (n - 1))))) throw new IllegalArgumentException("length"); // not minimal
            }
            if (length > end - pos) throw new IndexOutOfBoundsException();
            Reader inner = new Reader(der, pos, pos + length);
            pos += length;
            return inner;
        }
    }
}
