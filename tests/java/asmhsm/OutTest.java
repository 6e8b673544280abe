package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Progress as a terminal shows it (one line rewritten) and as a log holds it (one line per stage). */
class OutTest {
    final ByteArrayOutputStream stdout = new ByteArrayOutputStream(), stderr = new ByteArrayOutputStream();

    Out out(boolean terminal) {
        return new Out("x", false, false, new PrintStream(stdout, true, StandardCharsets.UTF_8),
                new PrintStream(stderr, true, StandardCharsets.UTF_8), terminal);
    }

    void waitTwoStages(Out out) {
        for (int s = 0; s < 3; s++) out.progress("waiting for a", "(" + s + "s of 60s)");
        for (int s = 0; s < 2; s++) out.progress("waiting for b", "(" + s + "s of 60s)");
        out.say("done");
        out.progress("waiting for a", "(0s of 60s)");     // a stage again after other output: said again
        out.endProgress();
    }

    @Test
    void offATerminalEachStageIsOnePlainLine() {
        waitTwoStages(out(false));
        assertThat(stderr.toString(StandardCharsets.UTF_8)).isEqualTo("waiting for a\nwaiting for b\nwaiting for a\n");
        assertThat(stdout.toString(StandardCharsets.UTF_8)).isEqualTo("done\n");
    }

    @Test
    void onATerminalOneLineRewritesItselfWithTheDetail() {
        waitTwoStages(out(true));
        assertThat(stderr.toString(StandardCharsets.UTF_8)).isEqualTo(
                "\rwaiting for a (0s of 60s)\u001b[K\rwaiting for a (1s of 60s)\u001b[K\rwaiting for a (2s of 60s)\u001b[K"
                        + "\rwaiting for b (0s of 60s)\u001b[K\rwaiting for b (1s of 60s)\u001b[K\n"
                        + "\rwaiting for a (0s of 60s)\u001b[K\n");
    }

    @Test
    void aPipeIsNotATerminal() {
        // the test JVM's stderr is Maven's pipe: never a terminal, whatever TERM says
        assertThat(Out.stderrIsTerminal()).isFalse();
    }
}
