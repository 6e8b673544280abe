package asmhsm;

import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.SerializationFeature;

/**
 * Human and --json output of one step. Humans get lines on stdout as the step goes;
 * --json gets exactly one JSON object on stdout at the end. Progress goes to stderr.
 * Never hand a secret to this class.
 */
public class Out {
    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(SerializationFeature.INDENT_OUTPUT).build();

    private final String step;
    private final boolean json;
    private final boolean dryRun;
    private final PrintStream stdout;
    private final PrintStream stderr;
    private final Map<String, Object> result = new LinkedHashMap<>();
    private boolean changed;
    private final List<String> made = new java.util.ArrayList<>();
    private boolean progressOpen;

    public Out(String step, boolean json, boolean dryRun, PrintStream stdout, PrintStream stderr) {
        this.step = step;
        this.json = json;
        this.dryRun = dryRun;
        this.stdout = stdout;
        this.stderr = stderr;
    }

    public boolean json() { return json; }
    public boolean dryRun() { return dryRun; }

    /** A line for a human reader; silent under --json. */
    public void say(String line) {
        if (json) return;
        endProgress();
        stdout.println(line);
    }

    public void say(String format, Object... args) { say(String.format(format, args)); }

    /** A warning: always on stderr, also recorded in the JSON result. */
    @SuppressWarnings("unchecked")
    public void warn(String line) {
        endProgress();
        stderr.println("warning: " + line);
        ((List<String>) result.computeIfAbsent("warnings", k -> new java.util.ArrayList<String>())).add(line);
    }

    /**
     * Something changed (or, under --dry-run, would change). Also a stop point: a step told to stop
     * (Ctrl-C) ends here, after the change it reports (see Interrupt).
     */
    public void change(String what) {
        changed = true;
        if (!dryRun) made.add(what);
        say((dryRun ? "would " : "") + what);
        Interrupt.check();
    }

    /** The changes made so far, as reported (none under --dry-run). */
    public List<String> made() { return List.copyOf(made); }

    public String step() { return step; }

    /** A progress line on stderr that rewrites itself (for waits and downloads). */
    public void progress(String line) {
        if (json) return;
        stderr.print("\r" + line + "\u001b[K");
        stderr.flush();
        progressOpen = true;
    }

    public void endProgress() {
        if (progressOpen) {
            stderr.println();
            progressOpen = false;
        }
    }

    /** A field of the machine-readable result. */
    public Out put(String key, Object value) {
        result.put(key, value);
        return this;
    }

    public boolean changed() { return changed; }

    void finish(int exitCode, Fail failure) {
        endProgress();
        if (!json) return;
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("step", step);
        doc.put("ok", exitCode == 0);
        doc.put("exitCode", exitCode);
        doc.put("changed", changed);
        doc.put("dryRun", dryRun);
        if (failure != null) {
            doc.put("error", failure.getMessage());
            if (failure.hint != null) doc.put("hint", failure.hint);
        }
        doc.putAll(result);
        stdout.println(toJson(doc));
    }

    public static String toJson(Object value) {
        return JSON.writeValueAsString(value);
    }
}
