package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `asm run A ... + B ...`: several steps in one process, stopping at the first failure. */
class RunChainTest {
    @TempDir Path tmp;

    @Test
    void runsTheStepsInOrderInOneProcess() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result r = Cli.asm(t.env(), "run", "gen-kek", "--kek-id", "first", "+", "gen-kek", "--kek-id", "second",
                "+", "hsm-info", "--json");
        assertThat(r.exit()).as(r.toString()).isZero();
        assertThat(r.stdout()).contains("first").contains("\"id\" : \"second\"").contains("\"id\" : \"first\"");
        assertThat(t.objectCount()).isEqualTo(2);
    }

    @Test
    void stopsAtTheFirstFailureWithItsExitCode() {
        SoftHsmToken t = SoftHsmToken.create(tmp);
        Cli.Result r = Cli.asm(t.env(), "run", "gen-kek", "--kek-id", "ok", "+", "gen-kek", "--kek-id", "bad id",
                "+", "gen-kek", "--kek-id", "never");
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(t.objects()).contains(GenKekTest.hex("ok")).doesNotContain(GenKekTest.hex("never"));
    }

    @Test
    void refusesAChainThatDoesNotStartWithAStep() {
        Cli.Result r = Cli.asm(java.util.Map.of(), "run", "--kek-id", "x");
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("separated by '+'");
        assertThat(Cli.asm(java.util.Map.of(), "run", "gen-kek", "+").exit()).isEqualTo(2);
    }
}
