package asmhsm;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A checklist a step prints line by line as it checks (preflight, status): each line a
 * name, a state, what was seen, and for a line that is not good, what fixes it.
 * Under --json the lines become the result's "checks" array, whose states are one vocabulary
 * for every step ({@link #STATES}, docs/results.md), whatever word the human line shows.
 */
public final class Checklist {
    /**
     * The states of a check in a machine result: done (as it should be), missing (not made yet),
     * wrong (there but not as it should be, or a requirement not met), unknown (could not be
     * checked), warn (passes, but look at it), skipped (not checked, as asked).
     */
    public static final List<String> STATES = List.of("done", "missing", "wrong", "unknown", "warn", "skipped");

    /** A human line's state word as the vocabulary says it: preflight's ok is done, FAIL wrong, skip skipped. */
    static String state(String shown) {
        return switch (shown) {
            case "ok" -> "done";
            case "FAIL" -> "wrong";
            case "skip" -> "skipped";
            default -> shown;       // the schema (docs/schemas) holds a result to STATES
        };
    }

    /** One checked thing. `good` says whether it counts as passed; details are extra lines (per-node figures, offenders). */
    public record Line(String name, String state, boolean good, String detail, String fix, List<String> details,
                       Map<String, Object> data) {}

    /**
     * What one check found, before it is a line: a state (done, missing, wrong, unknown),
     * what was seen, the step that fixes it, and figures for --json. The lib functions
     * behind status return these, so that a script only lists its lines.
     */
    public record Check(String state, String detail, String fix, Map<String, Object> data) {
        public static final String DONE = "done", MISSING = "missing", WRONG = "wrong", UNKNOWN = "unknown";

        public static Check done(String detail) { return new Check(DONE, detail, null, Map.of()); }
        public static Check missing(String detail, String fix) { return new Check(MISSING, detail, fix, Map.of()); }
        public static Check wrong(String detail, String fix) { return new Check(WRONG, detail, fix, Map.of()); }
        public static Check unknown(String detail, String fix) { return new Check(UNKNOWN, detail, fix, Map.of()); }

        public boolean isDone() { return DONE.equals(state); }

        /** The same finding with one more --json figure. */
        public Check with(String key, Object value) {
            Map<String, Object> d = new LinkedHashMap<>(data);
            d.put(key, value);
            return new Check(state, detail, fix, d);
        }

        public Check withData(Map<String, Object> more) {
            Map<String, Object> d = new LinkedHashMap<>(data);
            d.putAll(more);
            return new Check(state, detail, fix, d);
        }

        /** The worst of several findings about parts of one thing: wrong, then missing, then unknown, then done. */
        public static String worst(List<Check> parts) {
            for (String s : List.of(WRONG, MISSING, UNKNOWN)) if (parts.stream().anyMatch(c -> c.state().equals(s))) return s;
            return DONE;
        }
    }

    private final Out out;
    private final List<Line> lines = new ArrayList<>();

    public Checklist(Out out) {
        this.out = out;
    }

    public Line add(String name, String state, boolean good, String detail, String fix) {
        return add(name, state, good, detail, fix, List.of(), Map.of());
    }

    public Line add(String name, String state, boolean good, String detail, String fix, List<String> details,
                    Map<String, Object> data) {
        Line l = new Line(name, state, good, detail, fix, List.copyOf(details), data);
        lines.add(l);
        out.say("%-8s %-22s %s", state, name, detail);
        for (String d : details) out.say("%-8s %-22s   %s", "", "", d);
        if (!good && fix != null) out.say("%-8s %-22s   -> %s", "", "", fix);
        return l;
    }

    public Line add(String name, Check c) {
        return add(name, c.state(), c.isDone(), c.detail(), c.fix(), List.of(), c.data());
    }

    public List<Line> lines() { return lines; }

    public List<Line> notGood() {
        return lines.stream().filter(l -> !l.good()).toList();
    }

    /** The lines as JSON objects, for Out.put("checks", ...). */
    public List<Map<String, Object>> json() {
        List<Map<String, Object>> all = new ArrayList<>();
        for (Line l : lines) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("name", l.name());
            m.put("state", state(l.state()));
            m.put("ok", l.good());
            m.put("detail", l.detail());
            if (!l.good() && l.fix() != null) m.put("fix", l.fix());
            if (!l.details().isEmpty()) m.put("details", l.details());
            m.putAll(l.data());
            all.add(m);
        }
        return all;
    }
}
