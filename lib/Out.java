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
    private final boolean rewrite;
    private String lastStage;

    public Out(String step, boolean json, boolean dryRun, PrintStream stdout, PrintStream stderr) {
        this(step, json, dryRun, stdout, stderr, stderr == System.err && stderrIsTerminal());
    }

    /** rewrite: progress rewrites one line (stderr is a terminal), else one plain line per stage. */
    public Out(String step, boolean json, boolean dryRun, PrintStream stdout, PrintStream stderr, boolean rewrite) {
        this.step = step;
        this.json = json;
        this.dryRun = dryRun;
        this.stdout = stdout;
        this.stderr = stderr;
        this.rewrite = rewrite;
    }

    /** The options the operator gave on the command line, by the Opts group they belong to (see {@link #given}). */
    private Map<Class<?>, List<String>> givenOptions = Map.of();

    void givenOptions(Map<Class<?>, List<String>> given) { this.givenOptions = given; }

    public boolean json() { return json; }

    /**
     * The first line: where the step acts (each part, e.g. "cluster 'c1' at https://...", "Vault https://...");
     * under --json the field actingOn. Nothing when the step acts on nothing it can name yet.
     */
    public void actingOn(List<String> parts, Map<String, Object> fields) {
        if (parts.isEmpty()) return;
        result.put("actingOn", fields);
        say("acting on " + String.join(", ", parts));
    }

    /**
     * The options of these groups (Opts.Kube.class, Opts.Pkcs11.class, ...) that were given on the
     * command line, as a next command must repeat them: " --context c1 --p11-token t", or "".
     * Options that came from the environment are not repeated: the same shell still has them.
     */
    public String given(Class<?>... groups) {
        StringBuilder b = new StringBuilder();
        for (Class<?> g : groups)
            for (String word : givenOptions.getOrDefault(g, List.of())) b.append(' ').append(shellWord(word));
        return b.toString();
    }

    /** A hint of what to run next: "Next: ..." (under --json the field next). Options: see {@link #given}. */
    public void next(String hint) {
        result.put("next", hint);
        say("Next: " + hint);
    }

    /** A word as a shell reads it back: quoted when it holds anything but plain characters. */
    static String shellWord(String w) {
        return w.matches("[A-Za-z0-9_@%+=:,./-]+") ? w : "'" + w.replace("'", "'\\''") + "'";
    }
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

    /** A progress line of one stage: see {@link #progress(String, String)}. */
    public void progress(String stage) {
        progress(stage, null);
    }

    /**
     * Progress on stderr, for waits and downloads. On a terminal one line rewrites itself with the
     * stage and its detail (a bar, seconds waited); elsewhere (a pipe, a file, a CI log, TERM=dumb)
     * the stage is one plain line when it starts, and the detail is left out, so a log holds no
     * \r or escape codes and no line per second.
     */
    public void progress(String stage, String detail) {
        if (json) return;
        if (!rewrite) {
            if (!stage.equals(lastStage)) stderr.println(stage);
            lastStage = stage;
            return;
        }
        stderr.print("\r" + (detail == null ? stage : stage + " " + detail) + "\u001b[K");
        stderr.flush();
        progressOpen = true;
    }

    public void endProgress() {
        lastStage = null;
        if (progressOpen) {
            stderr.println();
            progressOpen = false;
        }
    }

    /**
     * Whether this process's stderr is a terminal that moves the cursor: not TERM=dumb, and on
     * Linux /proc/self/fd/2 is a tty device (Java has no isatty; System.console() asks about
     * stdin and stdout, which --json or a redirect change while stderr stays the terminal).
     */
    static boolean stderrIsTerminal() {
        String term = System.getenv("TERM");
        if (term == null || term.isBlank() || term.equals("dumb")) return false;
        try {
            String target = java.nio.file.Files.readSymbolicLink(java.nio.file.Path.of("/proc/self/fd/2")).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty") || target.equals("/dev/console");
        } catch (java.io.IOException | UnsupportedOperationException | SecurityException e) {
            return System.console() != null;
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
