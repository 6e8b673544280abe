package asmhsm;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * One runbook (a Markdown file of runbooks/): its headings and fenced blocks, each shell
 * block with its mark, as runbooks/README.md defines them:
 * {@code ```sh run} (the runbook test executes it), {@code ```sh cluster-only reason="..."}
 * (needs a real cluster: skipped, reason shown), {@code ```sh manual reason="..."} (your own
 * values or an interactive login: the lab supplies what it would set), and
 * {@code ```text output} (what the block before it prints; the test compares).
 */
final class Runbook {
    /** The guide's sections in its order, one runbook each (runbooks/ and runbooks/es/). */
    static final List<String> FILES = List.of("01-prerequisites.md", "02-hsm.md", "03-kubernetes-for-vault.md",
            "04-vault.md", "05-download.md", "06-control-plane.md", "07-webhook.md", "08-install.md", "09-signing.md",
            "10-verification.md", "11-sidecars.md", "12-external-ip.md", "13-another-cluster.md",
            "15-renew-ca.md", "16-rotate-ca.md", "17-rotate-pin.md", "18-upgrade.md", "19-teardown.md");

    static final String RUN = "run", CLUSTER_ONLY = "cluster-only", MANUAL = "manual", OUTPUT = "output";
    static final String ASM = "jbang asm@org";

    private static final Pattern FENCE = Pattern.compile("^(`{3,})(.*)$");
    private static final Pattern INFO = Pattern.compile("^(\\S+)(?:\\s+([a-z-]+))?(?:\\s+reason=\"([^\"]+)\")?\\s*$");
    private static final Pattern EXPORT = Pattern.compile("(?m)^\\s*export\\s+([A-Za-z_][A-Za-z0-9_]*)=");

    /** A fenced block: where it is, its info string split up, its text, and the heading it is under. */
    record Block(String file, int line, String info, String lang, String mark, String reason, String text, String heading) {
        boolean shell() { return lang.equals("sh"); }
        boolean run() { return shell() && RUN.equals(mark); }
        boolean output() { return lang.equals("text") && OUTPUT.equals(mark); }
        String where() { return file + ":" + line; }

        /** Every {@code jbang asm@org <step> ...} in the block. */
        List<Command> commands() { return Runbook.commands(text, where()); }

        /** The variables the block exports ({@code export NAME=...}). */
        List<String> exports() {
            List<String> names = new ArrayList<>();
            Matcher m = EXPORT.matcher(text);
            while (m.find()) names.add(m.group(1));
            return names;
        }
    }

    /** One {@code jbang asm@org <step> <args>}: args as the shell would split them; a word with a $ is "dynamic". */
    record Command(String where, String step, List<String> args, List<Boolean> dynamic) {
        @Override
        public String toString() { return ASM + " " + step + (args.isEmpty() ? "" : " " + String.join(" ", args)); }
    }

    final String file;
    final String text;
    final List<Block> blocks;
    final List<String> headings;

    private Runbook(String file, String text, List<Block> blocks, List<String> headings) {
        this.file = file;
        this.text = text;
        this.blocks = blocks;
        this.headings = headings;
    }

    static Path dir() { return Cli.repo().resolve("runbooks"); }

    /** The runbooks of one language, in the guide's order ("" English, "es" Spanish). */
    static List<Runbook> all(String language) {
        Path dir = language.isEmpty() ? dir() : dir().resolve(language);
        List<Runbook> books = new ArrayList<>();
        for (String f : FILES) books.add(read(dir.resolve(f), (language.isEmpty() ? "" : language + "/") + f));
        return books;
    }

    static Runbook read(Path path, String name) {
        try {
            return parse(name, Files.readString(path, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read runbook " + path, e);
        }
    }

    static Runbook parse(String name, String text) {
        List<Block> blocks = new ArrayList<>();
        List<String> headings = new ArrayList<>();
        String[] lines = text.split("\n", -1);
        String heading = "";
        for (int i = 0; i < lines.length; i++) {
            Matcher open = FENCE.matcher(lines[i]);
            if (open.matches()) {
                String fence = open.group(1), info = open.group(2).strip();
                int start = i;
                StringBuilder body = new StringBuilder();
                for (i++; i < lines.length && !lines[i].strip().equals(fence); i++) body.append(lines[i]).append('\n');
                if (i >= lines.length) throw new IllegalArgumentException(name + ":" + (start + 1) + ": fence not closed");
                Matcher m = INFO.matcher(info);
                String lang = info, mark = null, reason = null;
                if (m.matches()) {
                    lang = m.group(1);
                    mark = m.group(2);
                    reason = m.group(3);
                }
                blocks.add(new Block(name, start + 1, info, lang, mark, reason, body.toString(), heading));
            } else if (lines[i].startsWith("#")) {
                heading = lines[i];
                headings.add(heading);
            }
        }
        return new Runbook(name, text, List.copyOf(blocks), List.copyOf(headings));
    }

    /** The block right after {@code b} if it is its expected output, else null. */
    Block outputOf(Block b) {
        int i = blocks.indexOf(b);
        return i + 1 < blocks.size() && blocks.get(i + 1).output() ? blocks.get(i + 1) : null;
    }

    // ------------------------------------------------------------------ shell words

    /**
     * The {@code jbang asm@org} commands of a shell text, split into words as the shell does
     * (quotes, backslash-newline, comments); a command ends at | & ; ( ) < > or a newline.
     * Throws if an occurrence of {@code asm@org} is not such a command (e.g. inside "$(...)").
     */
    static List<Command> commands(String text, String where) {
        List<List<String[]>> simple = new ArrayList<>();  // simple commands: words as {value, dynamic?}
        List<String[]> words = new ArrayList<>();
        StringBuilder w = null;
        boolean dyn = false;
        int inComments = 0;
        String t = text.replace("\\\n", " ");
        for (int i = 0; i < t.length(); i++) {
            char c = t.charAt(i);
            if (c == '\'' || c == '"') {
                int end = t.indexOf(c, i + 1);
                if (end < 0) throw new IllegalArgumentException(where + ": unbalanced " + c);
                String q = t.substring(i + 1, end);
                if (c == '"' && q.contains("$(") && q.contains("asm@org"))
                    throw new IllegalArgumentException(where + ": write asm commands outside \"$(...)\" so they can be checked");
                if (w == null) w = new StringBuilder();
                w.append(q);
                dyn |= c == '"' && q.contains("$");
                i = end;
            } else if (c == '$' && i + 1 < t.length() && t.charAt(i + 1) == '(') {
                if (w != null) { words.add(new String[]{w.toString(), String.valueOf(dyn)}); w = null; dyn = false; }
                simple.add(words);
                words = new ArrayList<>();
                i++;
            } else if (Character.isWhitespace(c) && c != '\n') {
                if (w != null) { words.add(new String[]{w.toString(), String.valueOf(dyn)}); w = null; dyn = false; }
            } else if (c == '#' && w == null) {
                int from = i;
                while (i + 1 < t.length() && t.charAt(i + 1) != '\n') i++;
                inComments += t.substring(from, i + 1).split("asm@org", -1).length - 1;
            } else if ("|&;()<>\n".indexOf(c) >= 0) {
                if (w != null && (c == '<' || c == '>') && w.toString().matches("\\d+")) w = null; // 2>&1: a redirection
                if (w != null) { words.add(new String[]{w.toString(), String.valueOf(dyn)}); w = null; dyn = false; }
                if (c == '>' || c == '<') { // the redirection's target is not an argument
                    while (i + 1 < t.length() && (t.charAt(i + 1) == '>' || t.charAt(i + 1) == '&' || t.charAt(i + 1) == ' ')) i++;
                    while (i + 1 < t.length() && " |&;()\n".indexOf(t.charAt(i + 1)) < 0) i++;
                }
                simple.add(words);
                words = new ArrayList<>();
            } else {
                if (w == null) w = new StringBuilder();
                w.append(c);
                dyn |= c == '$';
            }
        }
        if (w != null) words.add(new String[]{w.toString(), String.valueOf(dyn)});
        simple.add(words);

        List<Command> found = new ArrayList<>();
        for (List<String[]> s : simple) {
            int start = 0;
            while (start < s.size() && s.get(start)[0].matches("[A-Za-z_][A-Za-z0-9_]*=.*")) start++; // VAR=value prefixes
            if (s.size() - start >= 3 && s.get(start)[0].equals("jbang") && s.get(start + 1)[0].equals("asm@org")) {
                List<String> args = new ArrayList<>();
                List<Boolean> dynamic = new ArrayList<>();
                for (String[] x : s.subList(start + 3, s.size())) {
                    args.add(x[0]);
                    dynamic.add(Boolean.parseBoolean(x[1]));
                }
                found.add(new Command(where, s.get(start + 2)[0], args, dynamic));
            }
        }
        int mentions = text.split("asm@org", -1).length - 1 - inComments;
        if (mentions != found.size())
            throw new IllegalArgumentException(where + ": " + mentions + " mention(s) of asm@org but " + found.size()
                    + " readable command(s) 'jbang asm@org <step> ...'");
        return found;
    }

    // ------------------------------------------------------------------ picocli

    /**
     * Parses a command with the toolkit's own picocli model, as the step would: unknown steps
     * or options, missing required options, wrong values. A word the shell would fill in (with
     * a $) gets a well-typed stand-in value. Returns null when it parses, else what is wrong.
     */
    static String parseProblem(Command c) {
        CommandLine asm = Asm.commandLine();
        CommandLine step = asm.getSubcommands().get(c.step());
        if (step == null) return "no asm subcommand '" + c.step() + "'";
        List<String> args = new ArrayList<>(List.of(c.step()));
        String previous = null;
        for (int i = 0; i < c.args().size(); i++) {
            String a = c.args().get(i);
            if (c.dynamic().get(i)) {
                int eq = a.indexOf('=');
                if (a.startsWith("-") && eq > 0) a = a.substring(0, eq + 1) + standIn(step, a.substring(0, eq));
                else a = standIn(step, previous);
            }
            args.add(a);
            previous = a;
        }
        try {
            asm.parseArgs(args.toArray(String[]::new));
            return null;
        } catch (CommandLine.ParameterException e) {
            return e.getMessage();
        }
    }

    /** A value of the right type for the option named {@code option} (a word after it or after '='). */
    private static String standIn(CommandLine step, String option) {
        OptionSpec o = option == null || !option.startsWith("-") ? null : step.getCommandSpec().findOption(option);
        Class<?> type = o == null ? String.class : o.type();
        if (type == int.class || type == Integer.class || type == long.class || type == Long.class) return "1";
        if (type.isEnum()) return type.getEnumConstants()[0].toString();
        return "shell-value";
    }
}
