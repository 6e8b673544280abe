package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * Every option that is a time reads the same spellings through Opts.DurationConverter: a Go
 * duration (30s, 5m, 1h, 1m30s) or a bare number of seconds, the unit the numeric options had.
 */
class DurationsTest {
    /** Every step with a time option, as picocli builds it. */
    static final Map<String, Supplier<Object>> TIMEOUT_STEPS = Map.of("k8s-vault-prep", K8sVaultPrep::new,
            "enable-injection", EnableInjection::new, "istiod-status", IstiodStatus::new, "load-root", LoadRoot::new,
            "verify-mtls", VerifyMtls::new);

    static final Map<String, Duration> GOOD = Map.of("30s", Duration.ofSeconds(30), "5m", Duration.ofMinutes(5),
            "1h", Duration.ofHours(1), "1m30s", Duration.ofSeconds(90), "250ms", Duration.ofMillis(250),
            "1.5h", Duration.ofMinutes(90), "120", Duration.ofSeconds(120), " 45 ", Duration.ofSeconds(45));
    static final List<String> BAD = List.of("soon", "5x", "5 m", "-5s", "1d", "", "s", "5m soon");

    @TempDir Path tmp;

    /** The parsed --timeout, or the parse error's message; other missing required options do not matter here. */
    static Object parse(Supplier<Object> step, String value) {
        CommandLine cl = new CommandLine(step.get());
        try {
            cl.parseArgs("--timeout", value);
        } catch (CommandLine.MissingParameterException otherRequiredOptions) {
            // the value was taken before picocli looked for required options
        } catch (CommandLine.ParameterException e) {
            return e.getMessage();
        }
        return cl.getCommandSpec().findOption("--timeout").getValue();
    }

    @Test
    void everyTimeOptionTakesTheSameSpellings() {
        TIMEOUT_STEPS.forEach((name, step) -> {
            GOOD.forEach((text, expected) -> assertThat(parse(step, text)).as("%s --timeout '%s'", name, text).isEqualTo(expected));
            for (String text : BAD)
                assertThat(parse(step, text)).as("%s --timeout '%s'", name, text).asString()
                        .isEqualTo("Invalid value for option '--timeout': '" + text + "' is not a duration (e.g. 30s, 5m, 1h; a bare number is seconds)");
            assertThat(parse(step, "0")).as(name).asString().contains("'0' is no time");
            assertThat(parse(step, "0s")).as(name).asString().contains("'0s' is no time");
        });
    }

    @Test
    void messagesShowDurationsAsTheOptionsSpellThem() {
        assertThat(Opts.text(Duration.ofSeconds(90))).isEqualTo("1m30s");
        assertThat(Opts.text(Duration.ofMinutes(5))).isEqualTo("5m");
        assertThat(Opts.text(Duration.ofHours(2).plusSeconds(1))).isEqualTo("2h1s");
        assertThat(Opts.text(Duration.ofMillis(250))).isEqualTo("250ms");
        assertThat(Opts.text(Duration.ofMillis(1500))).isEqualTo("1.5s");
        assertThat(Opts.seconds(Duration.ofMillis(1500))).isEqualTo(2);
        assertThat(Opts.seconds(Duration.ofMillis(1))).isEqualTo(1);
        assertThat(Opts.seconds(Duration.ofMinutes(2))).isEqualTo(120);
    }

    /** The case end to end: k8s-vault-prep --timeout took only an int; a bad time is bad usage, in one line and a hint. */
    @Test
    void aBadTimeIsBadUsageOnOneLine() {
        Cli.Result r = Cli.asm(Map.of(), tmp, "k8s-vault-prep", "--cluster-suffix", "c1", "--timeout", "5x");
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stdout()).isEmpty();
        assertThat(r.stderr().strip().lines().toList()).as(r.toString()).containsExactly(
                "error: Invalid value for option '--timeout': '5x' is not a duration (e.g. 30s, 5m, 1h; a bare number is seconds)",
                "  -> see --help");
    }
}
