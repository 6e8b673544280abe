package asmhsm;

import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.IVersionProvider;

/**
 * The toolkit's version, said once: `asm version` and every step's -V/--version print it
 * (Step names this class as its version provider). Keep TOOLKIT in step with pom.xml's
 * version (LayoutTest compares the two).
 */
public final class Version implements IVersionProvider {
    public static final String TOOLKIT = "0.1.0";

    /** What `asm version --json` reports: the toolkit, the release and revision it installs, the Java it runs on. */
    public static Map<String, Object> facts() {
        Map<String, Object> facts = new LinkedHashMap<>();
        facts.put("version", TOOLKIT);
        facts.put("asmVersion", Release.DEFAULT_VERSION);
        facts.put("revision", Istio.GUIDE_REVISION);
        facts.put("java", Runtime.version().toString());
        facts.put("javaVendor", System.getProperty("java.vendor"));
        return facts;
    }

    /** The same, as lines for a person. */
    public static String[] lines() {
        return new String[] {
                "asm-hsm " + TOOLKIT,
                "ASM " + Release.DEFAULT_VERSION + " (revision " + Istio.GUIDE_REVISION + ")",
                "Java " + Runtime.version() + " (" + System.getProperty("java.vendor") + ")"};
    }

    @Override
    public String[] getVersion() {
        return lines();
    }
}
