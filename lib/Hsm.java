package asmhsm;

import static sun.security.pkcs11.wrapper.PKCS11Constants.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import sun.security.pkcs11.wrapper.CK_ATTRIBUTE;
import sun.security.pkcs11.wrapper.CK_C_INITIALIZE_ARGS;
import sun.security.pkcs11.wrapper.CK_GCM_PARAMS;
import sun.security.pkcs11.wrapper.CK_MECHANISM;
import sun.security.pkcs11.wrapper.CK_TOKEN_INFO;
import sun.security.pkcs11.wrapper.PKCS11;
import sun.security.pkcs11.wrapper.PKCS11Exception;

/**
 * One logged-in session on the HSM token, through the JDK's PKCS#11 wrapper.
 * Not the SunPKCS11 KeyStore: it cannot set CKA_ID and refuses tokens where several
 * secret keys share a label, which is the normal state for the plugin's KEKs.
 */
public final class Hsm implements AutoCloseable {
    /** The label the Thales plugin gives every KEK; it finds a KEK by this label plus CKA_ID. */
    public static final String KEK_LABEL = "k8s-kms-plugin-kek";
    /** The plugin's default CA ID for the imported root certificate. */
    public static final String DEFAULT_CA_ID = "1c3d30d5-dfa8-4167-a9f9-2c768464181b";

    // PKCS#11 return values (the JDK's constants for these moved between releases)
    static final long CKR_ATTRIBUTE_SENSITIVE = 0x11, CKR_ATTRIBUTE_TYPE_INVALID = 0x12, CKR_PIN_INCORRECT = 0xA0,
            CKR_PIN_LOCKED = 0xA4, CKR_USER_ALREADY_LOGGED_IN = 0x100;

    public final String lib;
    public final String tokenLabel;
    public final long slot;
    public final boolean embedded;
    private final PKCS11 p11;
    private final long session;

    private Hsm(String lib, String tokenLabel, long slot, boolean embedded, PKCS11 p11, long session) {
        this.lib = lib;
        this.tokenLabel = tokenLabel;
        this.slot = slot;
        this.embedded = embedded;
        this.p11 = p11;
        this.session = session;
    }

    /** An object on the token, with the attributes every listing needs. */
    public record Obj(long handle, long cls, String label, byte[] id) {
        public String idText() { return printable(id); }
    }

    // ---------------------------------------------------------------- opening

    /**
     * Opens and logs in to the token the settings name. With no library set, the embedded
     * SoftHSM2 token (created on first use). Returns null only under --dry-run when the
     * embedded token does not exist yet (nothing may be created then).
     */
    public static Hsm open(Opts.Pkcs11 o, Out out) {
        if (isEmbedded(o)) {
            EmbeddedToken e = EmbeddedToken.ensure(o, out);
            if (e == null) return null;
            return open(e.lib, e.token, e.pinFile, true, "(embedded)");
        }
        if (o.token == null || o.token.isBlank())
            throw Fail.badInput("no HSM token label given", "export P11_TOKEN=<HSM slot label> or pass --p11-token");
        return open(o.lib, o.token, o.pinFile, false, "(P11_PIN_FILE)");
    }

    /** Whether these settings mean the embedded SoftHSM2 token: no PKCS#11 library given. */
    public static boolean isEmbedded(Opts.Pkcs11 o) {
        return o.lib == null || o.lib.isBlank();
    }

    /** What a step that makes key material says of the embedded token: it is software, not the HSM the guide needs. */
    public static String notAnHsm(Opts.Pkcs11 o) {
        String token = o.token != null && !o.token.isBlank() ? o.token : EmbeddedToken.LABEL;
        return "token '" + token + "' is the embedded SoftHSM2 token (software, in files under " + Env.home().resolve("softhsm")
                + "), NOT AN HSM: its keys are only as safe as those files. For the mesh, set P11_LIB, P11_TOKEN and P11_PIN_FILE"
                + " to the Luna HSM's slot";
    }

    static Hsm open(String lib, String token, Path pinFile, boolean embedded, String pinSource) {
        char[] pin = Env.readSecretChars(pinFile, "HSM PIN", pinSource.equals("(embedded)") ? null : "P11_PIN_FILE");
        try {
            PKCS11 p11 = load(lib);
            long slot = findSlot(p11, lib, token);
            long session;
            try {
                session = p11.C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, null, null);
            } catch (PKCS11Exception e) {
                throw Fail.failed("cannot open a session on token '" + token + "': " + e.getMessage(),
                        "check that the HSM slot is reachable and not in use read-only");
            }
            try {
                p11.C_Login(session, CKU_USER, pin);
            } catch (PKCS11Exception e) {
                if (e.getErrorCode() != CKR_USER_ALREADY_LOGGED_IN) {
                    closeQuietly(p11, session);
                    if (e.getErrorCode() == CKR_PIN_INCORRECT)
                        throw Fail.failed("the HSM refused the PIN from " + pinFile + " for token '" + token + "'",
                                "check P11_PIN_FILE holds the slot's user PIN; repeated failures can lock the slot");
                    if (e.getErrorCode() == CKR_PIN_LOCKED)
                        throw Fail.failed("the PIN of token '" + token + "' is locked", "ask the HSM administrator to unlock the slot");
                    throw Fail.failed("login to token '" + token + "' failed: " + e.getMessage(), "check the PIN and the slot");
                }
            }
            return new Hsm(lib, token, slot, embedded, p11, session);
        } finally {
            Arrays.fill(pin, '\0');
        }
    }

    /**
     * Whether `pin` (`source` names where it is stored, e.g. Vault's asm-c1/hsm) opens the slot the
     * settings name: one login, in a session of its own. On a Luna HSM every refused login counts
     * toward the slot's lock-out, so a PIN that cannot be right is not tried: one with white space
     * at its ends (the 2020 plugin does not trim its PIN file), or one that differs from the PIN of
     * P11_PIN_FILE when that one opens the slot (`filePinOpens`: this process logged in with it;
     * a slot has one user PIN). A PIN equal to that one opens the slot: it is not tried again (the
     * process is logged in, so a second login would prove nothing). Without `filePinOpens`, call
     * it with no other session of this process open on the token (a logged-in one would make any
     * PIN pass unchecked: then unknown).
     */
    public static Checklist.Check pinOpens(Opts.Pkcs11 o, char[] pin, String source, boolean filePinOpens) {
        String fix = "vault-setup --pin-file FILE with the slot's PIN (it updates " + source + ")";
        if (pin.length > 0 && (Character.isWhitespace(pin[0]) || Character.isWhitespace(pin[pin.length - 1])))
            return Checklist.Check.wrong("the PIN in " + source + " has white space at its start or end (a newline?): the plugin reads it as it is"
                    + " and the HSM refuses it; not tried", fix);
        String lib = o.lib, token = o.token;
        Path pinFile = o.pinFile;
        if (lib == null || lib.isBlank()) {
            Out quiet = new Out("status", true, true, new java.io.PrintStream(java.io.OutputStream.nullOutputStream()),
                    new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));
            EmbeddedToken e = EmbeddedToken.ensure(o, quiet);
            if (e == null) return Checklist.Check.unknown("the embedded token does not exist yet", "gen-kek creates it");
            lib = e.lib;
            token = e.token;
            pinFile = e.pinFile;
        }
        if (token == null || token.isBlank()) return Checklist.Check.unknown("no HSM token label given", "export P11_TOKEN=<HSM slot label>");
        if (filePinOpens && pinFile != null) {
            char[] known = null;
            try {
                known = Env.readSecretChars(pinFile, "HSM PIN", "P11_PIN_FILE");
                if (!Arrays.equals(known, pin))
                    return Checklist.Check.wrong("the PIN in " + source + " differs from the PIN in " + pinFile + ", which opens token '" + token
                            + "'; not tried, as each refused login counts toward the slot's lock-out", fix);
                return Checklist.Check.done("the PIN in " + source + " opens token '" + token + "' (the same as the PIN in " + pinFile + ", which this run logged in with)");
            } catch (Fail unreadable) {
                // the file's PIN is not known: the stored one is tried
            } finally {
                if (known != null) Arrays.fill(known, '\0');
            }
        }
        PKCS11 p11 = load(lib);
        long slot = findSlot(p11, lib, token);
        long session;
        try {
            session = p11.C_OpenSession(slot, CKF_SERIAL_SESSION, null, null);
        } catch (PKCS11Exception e) {
            return Checklist.Check.unknown("cannot open a session on token '" + token + "': " + e.getMessage(), "check the HSM connection (hsm-info)");
        }
        try {
            p11.C_Login(session, CKU_USER, pin);
            try {
                p11.C_Logout(session);
            } catch (PKCS11Exception ignored) {
                // closing the session logs out too
            }
            return Checklist.Check.done("the PIN in " + source + " opens token '" + token + "' (logged in with it)");
        } catch (PKCS11Exception e) {
            if (e.getErrorCode() == CKR_PIN_INCORRECT)
                return Checklist.Check.wrong("token '" + token + "' refused the PIN in " + source + " (CKR_PIN_INCORRECT): the plugin cannot log in", fix);
            if (e.getErrorCode() == CKR_PIN_LOCKED)
                return Checklist.Check.wrong("the PIN of token '" + token + "' is locked", "ask the HSM administrator to unlock the slot, then " + fix);
            if (e.getErrorCode() == CKR_USER_ALREADY_LOGGED_IN)
                return Checklist.Check.unknown("this process is logged in to token '" + token + "' already, so the PIN in " + source + " was not checked",
                        "report this as a bug");
            return Checklist.Check.unknown("login to token '" + token + "' with the PIN in " + source + " failed: " + e.getMessage(), "check the slot (hsm-info)");
        } finally {
            closeQuietly(p11, session);
        }
    }

    /** Libraries this process has loaded: the JDK initialises each once per process. */
    private static final java.util.Set<String> LOADED = java.util.concurrent.ConcurrentHashMap.newKeySet();

    static PKCS11 load(String lib) {
        Path p = Path.of(lib);
        if (!Files.isRegularFile(p))
            throw Fail.badInput("PKCS#11 library " + lib + " does not exist",
                    "set P11_LIB to the HSM's PKCS#11 library (libCryptoki2.so for Luna, libsofthsm2.so for SoftHSM2)");
        try {
            CK_C_INITIALIZE_ARGS args = new CK_C_INITIALIZE_ARGS();
            args.flags = CKF_OS_LOCKING_OK;
            PKCS11 p11 = PKCS11.getInstance(p.toAbsolutePath().toString(), "C_GetFunctionList", args, false);
            LOADED.add(p.toAbsolutePath().toString());
            return p11;
        } catch (IOException | PKCS11Exception | UnsatisfiedLinkError e) {
            throw Fail.badInput(lib + " is not a usable PKCS#11 library (" + e.getMessage() + ")",
                    "point P11_LIB at the HSM's PKCS#11 library; for Luna also set ChrystokiConfigurationPath");
        }
    }

    /**
     * Whether this process would find the token as a new process would. A PKCS#11 library (SoftHSM2
     * does) lists its tokens when initialised, which the JDK does once per process; so a long-lived
     * process (asm session) that loaded the library before the token was made does not see it.
     * True when the library is not loaded here yet.
     */
    static boolean seesToken(String lib, String token) {
        String path = Path.of(lib).toAbsolutePath().toString();
        if (!LOADED.contains(path)) return true;
        try {
            PKCS11 p11 = load(lib);
            for (long s : p11.C_GetSlotList(true))
                if (new String(p11.C_GetTokenInfo(s).label).trim().equals(token)) return true;
            return false;
        } catch (PKCS11Exception | RuntimeException e) {
            return false;
        }
    }

    static long findSlot(PKCS11 p11, String lib, String token) {
        List<String> labels = new ArrayList<>();
        try {
            for (long s : p11.C_GetSlotList(true)) {
                String label = new String(p11.C_GetTokenInfo(s).label).trim();
                if (label.equals(token)) return s;
                labels.add(label);
            }
        } catch (PKCS11Exception e) {
            throw Fail.failed("cannot list the slots of " + lib + ": " + e.getMessage(), "check the HSM connection");
        }
        throw Fail.badInput("no token labelled '" + token + "' in " + lib
                        + (labels.isEmpty() ? " (no initialised token at all)" : "; tokens there: " + String.join(", ", labels)),
                "set P11_TOKEN to the label of the HSM slot provisioned for the mesh");
    }

    /** Token facts for hsm-info: never a secret. */
    public Map<String, Object> tokenInfo() throws PKCS11Exception {
        CK_TOKEN_INFO t = p11.C_GetTokenInfo(slot);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("library", lib);
        m.put("embedded", embedded);
        m.put("slot", slot);
        m.put("label", new String(t.label).trim());
        m.put("manufacturer", new String(t.manufacturerID).trim());
        m.put("model", new String(t.model).trim());
        m.put("serial", new String(t.serialNumber).trim());
        return m;
    }

    // ---------------------------------------------------------------- finding

    public List<Obj> find(CK_ATTRIBUTE... template) throws PKCS11Exception {
        List<Long> handles = new ArrayList<>();
        p11.C_FindObjectsInit(session, template);
        try {
            while (true) {
                long[] batch = p11.C_FindObjects(session, 64);
                if (batch == null || batch.length == 0) break;
                for (long h : batch) handles.add(h);
            }
        } finally {
            p11.C_FindObjectsFinal(session);
        }
        List<Obj> objs = new ArrayList<>();
        for (long h : handles) objs.add(describe(h));
        return objs;
    }

    Obj describe(long h) throws PKCS11Exception {
        return new Obj(h, number(h, CKA_CLASS), text(bytes(h, CKA_LABEL)), bytes(h, CKA_ID));
    }

    public List<Obj> all() throws PKCS11Exception {
        return find();
    }

    /** Every object whose CKA_ID is these bytes, whatever its class. */
    public List<Obj> byId(byte[] id) throws PKCS11Exception {
        return find(new CK_ATTRIBUTE(CKA_ID, id));
    }

    /** The KEK as the plugin looks it up: secret key + CKA_ID + the plugin's label. */
    public List<Obj> keks(String kekId) throws PKCS11Exception {
        if (kekId == null)
            return find(new CK_ATTRIBUTE(CKA_CLASS, CKO_SECRET_KEY), new CK_ATTRIBUTE(CKA_LABEL, KEK_LABEL));
        return find(new CK_ATTRIBUTE(CKA_CLASS, CKO_SECRET_KEY), new CK_ATTRIBUTE(CKA_ID, ascii(kekId)),
                new CK_ATTRIBUTE(CKA_LABEL, KEK_LABEL));
    }

    /** The one KEK with this ID, fit for use ({@link #kekWeakness}); else a refusal saying what to do. */
    public Obj kek(String kekId) throws PKCS11Exception {
        List<Obj> found = keks(kekId);
        if (found.isEmpty())
            throw Fail.failed("no KEK with ID " + kekId + " on token '" + tokenLabel + "'",
                    "check KEK_ID, or run gen-kek --kek-id " + kekId + " on this token");
        if (found.size() > 1)
            throw Fail.failed(found.size() + " KEKs share ID " + kekId + " on token '" + tokenLabel + "'",
                    "the plugin cannot tell them apart: keep one (see hsm-info)");
        requireStrongKek(found.get(0), kekId);
        return found.get(0);
    }

    /** What a KEK must be: gen-kek makes it so, and the plugin's generate-kek does (hsm-formats.md). */
    public static final String KEK_RULE = "a sensitive, never-extractable AES-256 key that can encrypt and decrypt";

    /**
     * Why a key the plugin would take for a KEK (its label and ID) is weak; null when it is a KEK
     * as gen-kek makes it: AES with CKA_VALUE_LEN 32, CKA_SENSITIVE and CKA_ALWAYS_SENSITIVE true,
     * CKA_EXTRACTABLE false, CKA_NEVER_EXTRACTABLE true, CKA_ENCRYPT and CKA_DECRYPT true. A key
     * whose value was ever readable or exportable could have left the HSM, and with it every
     * CA key istiod encrypts under it. An attribute the token does not report counts as unmet.
     * The one rule for every step that finds a KEK (gen-kek, decrypt-csr, upload-chain, status, hsm-info).
     */
    public String kekWeakness(long h) throws PKCS11Exception {
        List<String> why = new ArrayList<>();
        Long type = number(h, CKA_KEY_TYPE), len = number(h, CKA_VALUE_LEN);
        if (type == null || type != CKK_AES) why.add((type == null ? "of no reported key type" : keyTypeName(type)) + ", not AES");
        else if (len == null || len != 32) why.add((len == null ? "AES of no reported length" : "AES-" + len * 8) + ", not AES-256");
        if (!Boolean.TRUE.equals(flag(h, CKA_SENSITIVE))) why.add("not sensitive");
        else if (!Boolean.TRUE.equals(flag(h, CKA_ALWAYS_SENSITIVE))) why.add("not always sensitive");
        if (!Boolean.FALSE.equals(flag(h, CKA_EXTRACTABLE))) why.add("extractable");
        else if (!Boolean.TRUE.equals(flag(h, CKA_NEVER_EXTRACTABLE))) why.add("once extractable");
        if (!Boolean.TRUE.equals(flag(h, CKA_ENCRYPT))) why.add("cannot encrypt");
        if (!Boolean.TRUE.equals(flag(h, CKA_DECRYPT))) why.add("cannot decrypt");
        return why.isEmpty() ? null : String.join(", ", why);
    }

    /** "the key with KEK ID x on token 't' is weak (extractable): a KEK must be ..."; what every step says of a weak KEK. */
    public String weakKekMessage(String kekId, String weakness) {
        return "the key with KEK ID " + kekId + " on token '" + tokenLabel + "' is weak (" + weakness + "): a KEK must be " + KEK_RULE;
    }

    /** What to do about a weak KEK: never use it; delete it and make a proper one, or use another ID. */
    public static String weakKekHint(String kekId) {
        return "do not use it: delete it with the HSM's tooling (e.g. pkcs11-tool --login --delete-object --type secrkey --id "
                + HexFormat.of().formatHex(ascii(kekId)) + ") and run gen-kek --kek-id " + kekId + " again, or choose another KEK ID";
    }

    /** Refuses (exit 1) a weak KEK, with what to do. */
    public void requireStrongKek(Obj kek, String kekId) throws PKCS11Exception {
        String weakness = kekWeakness(kek.handle());
        if (weakness != null) throw Fail.failed(weakKekMessage(kekId, weakness), weakKekHint(kekId));
    }

    public List<Obj> certificates(String caId) throws PKCS11Exception {
        if (caId == null) return find(new CK_ATTRIBUTE(CKA_CLASS, CKO_CERTIFICATE));
        return find(new CK_ATTRIBUTE(CKA_CLASS, CKO_CERTIFICATE), new CK_ATTRIBUTE(CKA_ID, ascii(caId)));
    }

    /**
     * The certificate objects under one CA ID with their values (CKA_VALUE, null when unreadable).
     * The plugin's own import-ca adds one more identical object per call, so several copies of
     * one value are a normal state of a token it has used; copies that differ are not.
     */
    public record CaCertificates(String caId, List<Obj> objects, List<byte[]> values) {
        public boolean isEmpty() { return objects.isEmpty(); }

        public int copies() { return objects.size(); }

        /** How many different values the copies hold. */
        public int distinct() {
            List<byte[]> seen = new ArrayList<>();
            for (byte[] v : values) if (seen.stream().noneMatch(s -> Arrays.equals(s, v))) seen.add(v);
            return seen.size();
        }

        /** At least one copy, and every copy holds the same readable value. */
        public boolean identical() {
            return !isEmpty() && values.get(0) != null && distinct() == 1;
        }

        /** The DER all copies hold; null when there is none or they differ. */
        public byte[] der() { return identical() ? values.get(0) : null; }

        /** The copies beyond the first, when all are identical (what removing duplicates removes); else none. */
        public List<Obj> extraCopies() { return identical() ? objects.subList(1, objects.size()) : List.of(); }

        /** " (3 copies)" for several identical copies, else "". */
        public String copiesNote() { return identical() && copies() > 1 ? " (" + copies() + " copies)" : ""; }
    }

    public CaCertificates caCertificates(String caId) throws PKCS11Exception {
        List<Obj> objs = certificates(caId);
        List<byte[]> values = new ArrayList<>();
        for (Obj o : objs) values.add(bytes(o.handle(), CKA_VALUE));
        return new CaCertificates(caId, objs, values);
    }

    /** The failure for copies under one CA ID that differ: the plugin may verify against any of them. */
    public Fail differingCertificates(CaCertificates certs) {
        return Fail.failed(certs.copies() + " certificates that differ (" + certs.distinct() + " different values) share CA ID "
                        + certs.caId() + " on token '" + tokenLabel + "'",
                "the plugin may verify against any of them: keep one with import-ca -f ROOT_PEM --replace (hsm-info lists them)");
    }

    public List<Obj> privateKeys(String label) throws PKCS11Exception {
        return find(new CK_ATTRIBUTE(CKA_CLASS, CKO_PRIVATE_KEY), new CK_ATTRIBUTE(CKA_LABEL, label));
    }

    // ---------------------------------------------------------------- attributes

    public byte[] bytes(long h, long type) throws PKCS11Exception {
        CK_ATTRIBUTE[] a = {new CK_ATTRIBUTE(type)};
        try {
            p11.C_GetAttributeValue(session, h, a);
        } catch (PKCS11Exception e) {
            if (e.getErrorCode() == CKR_ATTRIBUTE_SENSITIVE || e.getErrorCode() == CKR_ATTRIBUTE_TYPE_INVALID) return null;
            throw e;
        }
        Object v = a[0].pValue;
        if (v instanceof char[] chars) { // the wrapper hands text attributes back one byte per char
            byte[] b = new byte[chars.length];
            for (int i = 0; i < chars.length; i++) b[i] = (byte) chars[i];
            return b;
        }
        return v == null ? null : a[0].getByteArray();
    }

    public Long number(long h, long type) throws PKCS11Exception {
        CK_ATTRIBUTE[] a = {new CK_ATTRIBUTE(type)};
        try {
            p11.C_GetAttributeValue(session, h, a);
        } catch (PKCS11Exception e) {
            if (e.getErrorCode() == CKR_ATTRIBUTE_TYPE_INVALID) return null;
            throw e;
        }
        return a[0].pValue == null ? null : a[0].getLong();
    }

    public Boolean flag(long h, long type) throws PKCS11Exception {
        CK_ATTRIBUTE[] a = {new CK_ATTRIBUTE(type)};
        try {
            p11.C_GetAttributeValue(session, h, a);
        } catch (PKCS11Exception e) {
            if (e.getErrorCode() == CKR_ATTRIBUTE_TYPE_INVALID) return null;
            throw e;
        }
        return a[0].pValue == null ? null : a[0].getBoolean();
    }

    /** The security attributes hsm-info shows and the tests check. */
    public Map<String, Object> keyFacts(long h) throws PKCS11Exception {
        Map<String, Object> m = new LinkedHashMap<>();
        Long kt = number(h, CKA_KEY_TYPE);
        m.put("keyType", kt == null ? null : keyTypeName(kt));
        Long len = number(h, CKA_VALUE_LEN);
        if (len != null) m.put("bits", len * 8);
        byte[] mod = bytes(h, CKA_MODULUS);
        if (mod != null) m.put("bits", new java.math.BigInteger(1, mod).bitLength());
        m.put("token", flag(h, CKA_TOKEN));
        m.put("private", flag(h, CKA_PRIVATE));
        m.put("sensitive", flag(h, CKA_SENSITIVE));
        m.put("extractable", flag(h, CKA_EXTRACTABLE));
        m.put("alwaysSensitive", flag(h, CKA_ALWAYS_SENSITIVE));
        m.put("neverExtractable", flag(h, CKA_NEVER_EXTRACTABLE));
        m.put("encrypt", flag(h, CKA_ENCRYPT));
        m.put("decrypt", flag(h, CKA_DECRYPT));
        m.put("sign", flag(h, CKA_SIGN));
        m.put("verify", flag(h, CKA_VERIFY));
        m.values().removeIf(java.util.Objects::isNull);
        return m;
    }

    static String keyTypeName(long kt) {
        if (kt == CKK_AES) return "AES";
        if (kt == CKK_RSA) return "RSA";
        if (kt == CKK_EC) return "EC";
        if (kt == CKK_GENERIC_SECRET) return "GENERIC_SECRET";
        return "0x" + Long.toHexString(kt);
    }

    public static String className(long cls) {
        if (cls == CKO_SECRET_KEY) return "secret-key";
        if (cls == CKO_CERTIFICATE) return "certificate";
        if (cls == CKO_PRIVATE_KEY) return "private-key";
        if (cls == CKO_PUBLIC_KEY) return "public-key";
        if (cls == CKO_DATA) return "data";
        return "0x" + Long.toHexString(cls);
    }

    // ---------------------------------------------------------------- creating

    /** AES-256 KEK exactly as the plugin's generate-kek makes it (hsm-formats.md). One object, one call. */
    public long generateKek(String kekId) throws PKCS11Exception {
        CK_ATTRIBUTE[] t = {
                new CK_ATTRIBUTE(CKA_CLASS, CKO_SECRET_KEY),
                new CK_ATTRIBUTE(CKA_KEY_TYPE, CKK_AES),
                new CK_ATTRIBUTE(CKA_VALUE_LEN, 32L),
                new CK_ATTRIBUTE(CKA_ID, ascii(kekId)),
                new CK_ATTRIBUTE(CKA_LABEL, KEK_LABEL),
                new CK_ATTRIBUTE(CKA_TOKEN, true),
                new CK_ATTRIBUTE(CKA_ENCRYPT, true),
                new CK_ATTRIBUTE(CKA_DECRYPT, true),
                new CK_ATTRIBUTE(CKA_SIGN, false),
                new CK_ATTRIBUTE(CKA_VERIFY, false),
                new CK_ATTRIBUTE(CKA_SENSITIVE, true),
                new CK_ATTRIBUTE(CKA_EXTRACTABLE, false),
        };
        return p11.C_GenerateKey(session, new CK_MECHANISM(CKM_AES_KEY_GEN), t);
    }

    /** The root CA certificate as the plugin's import-ca stores it (hsm-formats.md). */
    public long importCertificate(String caId, String label, byte[] der, byte[] subject, byte[] issuer, byte[] serialDer)
            throws PKCS11Exception {
        CK_ATTRIBUTE[] t = {
                new CK_ATTRIBUTE(CKA_CLASS, CKO_CERTIFICATE),
                new CK_ATTRIBUTE(CKA_CERTIFICATE_TYPE, CKC_X_509),
                new CK_ATTRIBUTE(CKA_TOKEN, true),
                new CK_ATTRIBUTE(CKA_PRIVATE, false),
                new CK_ATTRIBUTE(CKA_ID, ascii(caId)),
                new CK_ATTRIBUTE(CKA_LABEL, label.getBytes(StandardCharsets.UTF_8)),
                new CK_ATTRIBUTE(CKA_SUBJECT, subject),
                new CK_ATTRIBUTE(CKA_ISSUER, issuer),
                new CK_ATTRIBUTE(CKA_SERIAL_NUMBER, serialDer),
                new CK_ATTRIBUTE(CKA_VALUE, der),
        };
        return p11.C_CreateObject(session, t);
    }

    public void destroy(long h) throws PKCS11Exception {
        p11.C_DestroyObject(session, h);
    }

    // ---------------------------------------------------------------- using keys

    /** AES-GCM decryption inside the HSM; input is ciphertext || 16-byte tag; any IV size (the plugin's DEK blobs have 12 or 16 bytes). */
    public byte[] decryptGcm(long key, byte[] iv, byte[] aad, byte[] ctAndTag) throws PKCS11Exception {
        p11.C_DecryptInit(session, new CK_MECHANISM(CKM_AES_GCM, new CK_GCM_PARAMS(128, iv, aad)), key);
        byte[] outBuf = new byte[ctAndTag.length];
        int n = p11.C_Decrypt(session, 0, ctAndTag, 0, ctAndTag.length, 0, outBuf, 0, outBuf.length);
        return Arrays.copyOf(outBuf, n);
    }

    /** A signature made by a private key that never leaves the HSM. */
    public byte[] sign(long key, long mechanism, byte[] data) throws PKCS11Exception {
        p11.C_SignInit(session, new CK_MECHANISM(mechanism), key);
        return p11.C_Sign(session, data);
    }

    // ---------------------------------------------------------------- helpers

    public static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    static String text(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    /** An ID as text when it is printable (the plugin's IDs are), else hex. */
    public static String printable(byte[] b) {
        if (b == null) return null;
        for (byte x : b) if (x < 0x20 || x > 0x7e) return "0x" + HexFormat.of().formatHex(b);
        return new String(b, StandardCharsets.US_ASCII);
    }

    @Override
    public void close() {
        closeQuietly(p11, session);
    }

    private static void closeQuietly(PKCS11 p11, long session) {
        try {
            p11.C_CloseSession(session);
        } catch (PKCS11Exception ignored) {
            // closing is best effort; the token keeps nothing half-done from a session
        }
    }

    // ---------------------------------------------------------------- CA signing (sign-csr, upload-chain)

    /** The one private key with this label; never a guess between several. */
    public Obj privateKey(String label) throws PKCS11Exception {
        List<Obj> found = privateKeys(label);
        if (found.isEmpty())
            throw Fail.badInput("no private key labelled '" + label + "' on token '" + tokenLabel + "'",
                    "check --root-key-label and P11_TOKEN (pkcs11-tool --list-objects --login lists the labels)");
        if (found.size() > 1)
            throw Fail.badInput(found.size() + " private keys are labelled '" + label + "' on token '" + tokenLabel + "'",
                    "give the root key a label of its own");
        return found.get(0);
    }

    /** "RSA", "EC" (the JCA names) or the PKCS#11 key type of a key object. */
    public String keyAlgorithm(long key) throws PKCS11Exception {
        Long kt = number(key, CKA_KEY_TYPE);
        return kt == null ? "unknown" : keyTypeName(kt);
    }

    /**
     * A SHA-256 signature by a key that stays in the HSM, DER-encoded as X.509 carries it:
     * RSA through CKM_SHA256_RSA_PKCS; EC through CKM_ECDSA on the SHA-256 digest (SoftHSM2 and
     * many HSMs lack CKM_ECDSA_SHA256), its r || s re-encoded as a DER sequence.
     */
    public byte[] signSha256(long key, byte[] data) throws PKCS11Exception, java.security.NoSuchAlgorithmException {
        String alg = keyAlgorithm(key);
        if (alg.equals("RSA")) return sign(key, CKM_SHA256_RSA_PKCS, data);
        if (alg.equals("EC"))
            return Pki.ecdsaDer(sign(key, CKM_ECDSA, java.security.MessageDigest.getInstance("SHA-256").digest(data)));
        throw Fail.badInput("the root key on token '" + tokenLabel + "' is " + alg + "; only RSA and EC keys can sign here",
                "use an RSA or EC root key");
    }

    /** The Istio CA certificate for this CSR, signed by the root's key labelled keyLabel in this token (sign-csr, renew-ca). */
    public java.security.cert.X509Certificate issueIstioCa(String keyLabel, Pki.Csr csr,
            java.security.cert.X509Certificate root, Pki.Validity validity) throws PKCS11Exception {
        long key = privateKey(keyLabel).handle();
        org.bouncycastle.operator.ContentSigner signer = Pki.signer(keyAlgorithm(key), data -> signSha256(key, data));
        return Pki.issueIstioCa(csr, root, signer, validity.notBefore(), validity.notAfter(), Pki.randomSerial());
    }

    /** The DER of the root certificate the plugin verifies against (stored by import-ca under the CA ID, in identical copies or one). */
    public byte[] rootCertificate(String caId) throws PKCS11Exception {
        CaCertificates certs = caCertificates(caId);
        if (certs.isEmpty())
            throw Fail.failed("no root certificate with CA ID " + caId + " on token '" + tokenLabel + "'",
                    "import the root first: import-ca -f root.pem (or pass the --ca-id istiod uses)");
        if (!certs.identical()) throw differingCertificates(certs);
        return certs.der();
    }

    /** The root to check chains against: the given PEM file, else the HSM's root under caId; fails when there is none. */
    public static X509Certificate trustedRoot(Path rootFile, Opts.Pkcs11 p11, String caId, Out out) throws PKCS11Exception {
        if (rootFile != null) return Pki.single(rootFile, "root certificate");
        try (Hsm hsm = Hsm.open(p11, out)) {
            return rootOn(hsm, caId);
        }
    }

    /** The same, from a step's HSM (Step.hsm()), opened only when no root file is given. */
    public static X509Certificate trustedRoot(Path rootFile, java.util.function.Supplier<Hsm> hsm, String caId) throws PKCS11Exception {
        return rootFile != null ? Pki.single(rootFile, "root certificate") : rootOn(hsm.get(), caId);
    }

    private static X509Certificate rootOn(Hsm hsm, String caId) throws PKCS11Exception {
        if (hsm == null) throw Fail.failed("the embedded HSM token does not exist yet", "import the root first (import-ca)");
        if (hsm.certificates(caId).isEmpty())
            throw Fail.failed("no root certificate with CA ID " + caId + " on token '" + hsm.tokenLabel + "'",
                    "import it (import-ca), or pass --ca-id / --root-cert");
        return Pki.certificate(hsm.rootCertificate(caId), "the root on the HSM");
    }
}
