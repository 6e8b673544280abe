package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The three ways operators start a step: `jbang asm@org <step>` from any directory, the
 * per-step alias `jbang <step>@org`, and the script itself (`jbang scripts/x.java`, `./scripts/x.java`).
 * Needs JBang on PATH and the catalog registered as `org`: tests/install does both.
 */
class JbangCatalogTest {
    @TempDir Path tmp;

    @BeforeAll
    static void jbangIsInstalled() {
        Cli.Result r = Cli.run(List.of("jbang", "--version"), null, null, null);
        assertThat(r.exit()).as("jbang must be installed by tests/install:\n" + r).isZero();
    }

    Cli.Result jbang(SoftHsmToken t, Path cwd, String... args) {
        List<String> cmd = new ArrayList<>(List.of("jbang", "--quiet"));
        cmd.addAll(List.of(args));
        return Cli.run(cmd, t.env(), cwd, null);
    }

    @Test
    void asmAtOrgFromAnyDirectory() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Path elsewhere = tmp.resolve("somewhere/else");
        elsewhere.toFile().mkdirs();
        Cli.Result r = jbang(t, elsewhere, "asm@org", "gen-kek", "--kek-id", "via-catalog");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("via-catalog");
        assertThat(t.objects()).contains("k8s-kms-plugin-kek");
        Cli.Result alias = jbang(t, elsewhere, "hsm-info@org", "--json");
        assertThat(alias.exit()).as(alias.toString()).isZero();
        assertThat(alias.stdout()).contains("\"id\" : \"via-catalog\"");
    }

    @Test
    void catalogInTheCurrentDirectoryAndByPath() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result here = jbang(t, Cli.repo(), "asm", "gen-kek", "--kek-id", "here");
        assertThat(here.exit()).as(here.toString()).isZero();
        Cli.Result byDir = jbang(t, tmp, "asm@" + Cli.repo(), "gen-kek", "--kek-id", "by-dir");
        assertThat(byDir.exit()).as(byDir.toString()).isZero();
        assertThat(t.objectCount()).isEqualTo(2);
    }

    @Test
    void scriptsRunOnTheirOwn() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Path script = Cli.repo().resolve("scripts/gen-kek.java");
        Cli.Result viaJbang = jbang(t, tmp, script.toString(), "--kek-id", "standalone");
        assertThat(viaJbang.exit()).as(viaJbang.toString()).isZero();
        assertThat(Files.isExecutable(script)).isTrue();
        Map<String, String> env = new HashMap<>(t.env());
        Cli.Result shebang = Cli.run(List.of(script.toString(), "--kek-id", "shebang"), env, tmp, null);
        assertThat(shebang.exit()).as(shebang.toString()).isZero();
        assertThat(t.objects()).contains("ID:         " + GenKekTest.hex("standalone"))
                .contains("ID:         " + GenKekTest.hex("shebang"));
    }

    @Test
    void everyStepIsReachableThroughTheAsmAlias() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result help = jbang(t, tmp, "asm@org", "--help");
        assertThat(help.exit()).as(help.toString()).isZero();
        for (String step : LayoutTest.steps()) assertThat(help.stdout()).as(step).contains("  " + step + " ");
    }
}
