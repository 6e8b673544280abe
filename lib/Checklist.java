package asmhsm;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A checklist a step prints line by line as it checks (preflight, status): each line a
 * name, a state, what was seen, and for a line that is not good, what fixes it.
 * Under --json the lines become the result's "checks" array.
 */
public final class Checklist {
    /** One checked thing. `good` says whether it counts as passed; details are extra lines (per-node figures, offenders). */
    public record Line(String name, String state, boolean good, String detail, String fix, List<String> details,
                       Map<String, Object> data) {}

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
            m.put("state", l.state());
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
