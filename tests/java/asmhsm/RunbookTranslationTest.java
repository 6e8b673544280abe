package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * runbooks/es/ is runbooks/ for the guide's Spanish-reading audience: the same files, the same
 * blocks in the same order (the commands byte for byte; only full-line # comments may be
 * translated), the same outline of headings, the same steps named in them.
 */
class RunbookTranslationTest {

    static List<String> markdownFiles(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".md")).map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void sameFiles() throws Exception {
        List<String> english = markdownFiles(Runbook.dir());
        assertThat(english).containsAll(Runbook.FILES).contains("README.md");
        assertThat(markdownFiles(Runbook.dir().resolve("es"))).isEqualTo(english);
    }

    @Test
    void sameBlocksInTheSameOrder() {
        List<Runbook> en = Runbook.all(""), es = Runbook.all("es");
        for (int f = 0; f < en.size(); f++) {
            List<String> a = blocks(en.get(f)), b = blocks(es.get(f));
            assertThat(b).as("blocks of %s against %s", es.get(f).file, en.get(f).file).containsExactlyElementsOf(a);
        }
        assertThat(blocks(index(""))).as("blocks of es/README.md").containsExactlyElementsOf(blocks(index("es")));
    }

    @Test
    void sameOutlineAndSteps() {
        List<Runbook> en = Runbook.all(""), es = Runbook.all("es");
        for (int f = 0; f < en.size(); f++) {
            assertThat(outline(es.get(f))).as("heading levels and steps of %s", es.get(f).file).isEqualTo(outline(en.get(f)));
            assertThat(es.get(f).text).as("%s links", es.get(f).file).contains(links(en.get(f)));
        }
    }

    static Runbook index(String language) {
        Path dir = language.isEmpty() ? Runbook.dir() : Runbook.dir().resolve(language);
        return Runbook.read(dir.resolve("README.md"), (language.isEmpty() ? "" : language + "/") + "README.md");
    }

    /** Each block as its info string and text; shell comments (a line starting with #) left out, as they are prose. */
    static List<String> blocks(Runbook r) {
        List<String> out = new ArrayList<>();
        for (Runbook.Block b : r.blocks) {
            String text = b.text();
            if (b.shell()) text = String.join("\n", text.lines().filter(l -> !l.stripLeading().startsWith("#")).toList());
            out.add("```" + b.info() + "\n" + text);
        }
        return out;
    }

    /** "## `gen-kek`" -> "## gen-kek": the level of each heading and the steps it names. */
    static List<String> outline(Runbook r) {
        List<String> out = new ArrayList<>();
        for (String h : r.headings) {
            StringBuilder s = new StringBuilder(h.substring(0, h.indexOf(' ') < 0 ? h.length() : h.indexOf(' ')));
            var m = java.util.regex.Pattern.compile("`([a-z0-9-]+)[^`]*`").matcher(h);
            while (m.find()) s.append(' ').append(m.group(1));
            out.add(s.toString());
        }
        return out;
    }

    /** The links to other runbooks (same file names in both languages). */
    static List<String> links(Runbook r) {
        List<String> out = new ArrayList<>();
        var m = java.util.regex.Pattern.compile("\\]\\(((?:\\d\\d-[a-z-]+|README)\\.md)(#[^)]*)?\\)").matcher(r.text);
        while (m.find()) if (!out.contains("](" + m.group(1))) out.add("](" + m.group(1));
        return out;
    }
}
