package asmhsm;

import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.dataformat.yaml.YAMLMapper;
import tools.jackson.dataformat.yaml.YAMLWriteFeature;

/**
 * Human and machine output of one step. Humans get lines on stdout as the step goes;
 * --json (-o json) gets exactly one JSON object on stdout at the end, -o yaml the same as YAML
 * (docs/results.md, docs/schemas/result.schema.json). Progress goes to stderr. Under --dry-run
 * a step that makes Kubernetes objects prints them on stdout instead, as a YAML stream (see
 * {@link #manifest}), and its lines go to stderr. Never hand a secret to this class.
 */
public class Out {
    /** The result's format: lines for a human, or one document for a program. */
    public enum Format { text, json, yaml }

    /** The version of the result's shape (docs/results.md): raised when a field changes meaning or goes. */
    public static final int SCHEMA_VERSION = 2;

    // The mappers are built on first use (each in a holder class): building them loads and sets
    // up much of Jackson, which a step printing lines, or needing JSON only, does not need.
    private static final class Json {
        static final JsonMapper MAPPER = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();
    }

    /** YAML as kubectl prints it: no quotes it does not need, numbers in strings kept strings. */
    private static final class Yaml {
        static final YAMLMapper MAPPER = YAMLMapper.builder().disable(YAMLWriteFeature.WRITE_DOC_START_MARKER)
                .enable(YAMLWriteFeature.MINIMIZE_QUOTES).enable(YAMLWriteFeature.ALWAYS_QUOTE_NUMBERS_AS_STRINGS).build();
    }

    /** Where a run of several steps (asm run -o json) gathers their results into one array; null: print each. */
    private static final ThreadLocal<List<Object>> GATHERED = new ThreadLocal<>();

    private final String step;
    private final Format format;
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
        this(step, json ? Format.json : Format.text, dryRun, stdout, stderr, rewrite);
    }

    public Out(String step, Format format, boolean dryRun, PrintStream stdout, PrintStream stderr) {
        this(step, format, dryRun, stdout, stderr, stderr == System.err && stderrIsTerminal());
    }

    public Out(String step, Format format, boolean dryRun, PrintStream stdout, PrintStream stderr, boolean rewrite) {
        this.step = step;
        this.format = format;
        this.json = format != Format.text;
        this.dryRun = dryRun;
        this.stdout = stdout;
        this.stderr = stderr;
        this.rewrite = rewrite;
    }

    /** The options the operator gave on the command line, by the Opts group they belong to (see {@link #given}). */
    private Map<Class<?>, List<String>> givenOptions = Map.of();

    void givenOptions(Map<Class<?>, List<String>> given) { this.givenOptions = given; }

    /** Whether the result is for a program (--json, -o json, -o yaml): then no line for a human goes to stdout. */
    public boolean json() { return json; }

    public Format format() { return format; }

    /** The Kubernetes objects this dry run would apply, in order (see {@link #manifest}). */
    private final List<Map<String, Object>> manifests = new java.util.ArrayList<>();
    /** Whether stdout is the manifest: a dry run, for a human, of a step that makes Kubernetes objects. */
    private boolean manifestOnStdout;

    /** Called by Step for the steps whose dry run is a manifest (see Usage.MANIFEST_STEPS). */
    void manifestStep(boolean yes) {
        manifestOnStdout = yes && dryRun && !json;
    }

    /**
     * A Kubernetes object this step applies, as the API server takes it (apiVersion, kind, ...).
     * Under --dry-run it is part of the manifest: printed on stdout at the end as a YAML stream
     * (---, one document per object), as `kubectl create --dry-run=client -o yaml` prints it,
     * and the result's field manifests. A Secret's values are never printed: its data keys are
     * kept with empty values (the object stays one the API server accepts), stringData goes.
     */
    @SuppressWarnings("unchecked")
    public void manifest(Map<String, Object> object) {
        if (!dryRun) return;
        Map<String, Object> o = new LinkedHashMap<>(object);
        if ("Secret".equals(o.get("kind"))) {
            o.remove("stringData");
            if (o.get("data") instanceof Map<?, ?> data) {
                Map<String, Object> keys = new LinkedHashMap<>();
                for (Object k : data.keySet()) keys.put(String.valueOf(k), "");
                o.put("data", keys);
            }
        }
        manifests.add(o);
    }

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

    /** A line for a human reader; silent under --json; on stderr when stdout is the manifest. */
    public void say(String line) {
        if (json) return;
        endProgress();
        (manifestOnStdout ? stderr : stdout).println(line);
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
        if (!json) {
            if (manifestOnStdout && exitCode == 0) {
                StringBuilder stream = new StringBuilder();
                for (Map<String, Object> m : manifests) stream.append(stream.isEmpty() ? "" : "---\n").append(Yaml.MAPPER.writeValueAsString(m));
                stdout.print(stream);
            }
            return;
        }
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("schemaVersion", SCHEMA_VERSION);
        doc.put("step", step);
        doc.put("ok", exitCode == 0);
        doc.put("exitCode", exitCode);
        doc.put("changed", changed);
        doc.put("dryRun", dryRun);
        if (failure != null) {
            doc.put("error", failure.getMessage());
            if (failure.hint != null) doc.put("hint", failure.hint);
        }
        if (dryRun && !manifests.isEmpty()) doc.put("manifests", manifests);
        doc.putAll(result);
        List<Object> gathered = GATHERED.get();
        if (gathered != null) gathered.add(doc);
        else stdout.print(render(doc, format));
    }

    /**
     * Runs {@code steps} gathering the results they print into one document: a JSON array (or a
     * YAML sequence) on stdout at the end, every step's result in order, the failed one last.
     */
    public static int gathered(Format format, PrintStream stdout, java.util.function.IntSupplier steps) {
        List<Object> all = new java.util.ArrayList<>();
        GATHERED.set(all);
        try {
            return steps.getAsInt();
        } finally {
            GATHERED.remove();
            stdout.print(render(all, format));
            stdout.flush();
        }
    }

    /** A result as the format prints it, with its final newline. */
    static String render(Object doc, Format format) {
        return format == Format.yaml ? Yaml.MAPPER.writeValueAsString(doc) : toJson(doc) + System.lineSeparator();
    }

    public static String toJson(Object value) {
        return Json.MAPPER.writeValueAsString(value);
    }
}
