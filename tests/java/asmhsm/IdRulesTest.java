package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * KEK IDs and CA IDs follow one rule (Opts.ID_PATTERN) in every step that takes them, checked as
 * the option is read: a bad one is bad usage (exit 2) before anything touches the HSM.
 */
class IdRulesTest {
    /** IDs no step may take: not ASCII, empty, blank, shell or Helm syntax, a leading dash, control characters, too long. */
    static final List<String> BAD = List.of("ключ", "", " ", "has space", "a;rm -rf x", "kek,b=c", "-kek", ".hidden",
            "line\nbreak", "tab\tbed", "a'b", "k\u00e9k", "x".repeat(65));
    /** IDs every step takes: the plugin's UUIDs, the default CA ID, operator names, 64 characters. */
    static final List<String> GOOD = List.of("7651a4ea-eeb7-4c1f-927b-8c871c2127aa", Hsm.DEFAULT_CA_ID, "k1", "KEK_2024.mesh:1",
            "a".repeat(64));

    /** Every step that takes a KEK ID or a CA ID, as picocli builds it. */
    static final Map<String, Supplier<Object>> KEK_STEPS = Map.of("gen-kek", GenKek::new, "decrypt-csr", DecryptCsr::new,
            "status", Status::new, "install-asm", InstallAsm::new, "upload-chain", UploadChain::new, "istiod-status", IstiodStatus::new);
    static final Map<String, Supplier<Object>> CA_STEPS = Map.of("import-ca", ImportCa::new, "verify-ca", VerifyCa::new,
            "verify-mtls", VerifyMtls::new, "upload-chain", UploadChain::new, "status", Status::new);

    @TempDir Path tmp;
    SoftHsmToken t;

    @BeforeEach
    void setUp() {
        t = SoftHsmToken.create(tmp);
    }

    static String parseError(Supplier<Object> step, String option, String value) {
        CommandLine.ParameterException e = catchThrowableOfType(CommandLine.ParameterException.class,
                () -> new CommandLine(step.get()).parseArgs(option, value));
        return e == null ? null : e.getMessage();
    }

    @Test
    void everyStepRefusesTheSameBadIdsAndTakesTheSameGoodOnes() {
        for (String id : BAD) {
            KEK_STEPS.forEach((name, step) -> assertThat(parseError(step, "--kek-id", id)).as("%s --kek-id '%s'", name, id)
                    .contains("KEK ID").doesNotContain("\n"));
            CA_STEPS.forEach((name, step) -> assertThat(parseError(step, "--ca-id", id)).as("%s --ca-id '%s'", name, id)
                    .contains("CA ID").doesNotContain("\n"));
        }
        for (String id : GOOD) {
            KEK_STEPS.forEach((name, step) -> {
                CommandLine.ParameterException e = catchThrowableOfType(CommandLine.ParameterException.class,
                        () -> new CommandLine(step.get()).parseArgs("--kek-id", id));
                // other required options may be missing; the ID itself is never the complaint
                if (e != null) assertThat(e.getMessage()).as("%s --kek-id %s", name, id).doesNotContain("KEK ID");
            });
            CA_STEPS.forEach((name, step) -> {
                CommandLine.ParameterException e = catchThrowableOfType(CommandLine.ParameterException.class,
                        () -> new CommandLine(step.get()).parseArgs("--ca-id", id));
                if (e != null) assertThat(e.getMessage()).as("%s --ca-id %s", name, id).doesNotContain("CA ID");
            });
        }
    }

    @Test
    void messagesSayWhatIsWrongOnOneLine() {
        assertThat(Opts.idProblem("ключ", "CA ID")).isEqualTo("CA ID 'ключ' is not 1-64 letters, digits and . _ : - starting with a letter or digit");
        assertThat(Opts.idProblem("", "KEK ID")).isEqualTo("KEK ID is empty");
        assertThat(Opts.idProblem("a\nb", "KEK ID")).startsWith("KEK ID 'a\\u000ab' is not");
        assertThat(Opts.idProblem("y".repeat(300), "KEK ID")).contains("is 300 characters long, more than 64").contains("...'")
                .hasSizeLessThan(120);
        for (String id : GOOD) assertThat(Opts.idProblem(id, "KEK ID")).isNull();
    }

    void refusedBeforeTheHsm(Cli.Result r, String expected) {
        assertThat(r.exit()).as(r.toString()).isEqualTo(2);
        assertThat(r.stderr().lines().findFirst().orElse("")).as(r.toString()).contains(expected);
        assertThat(r.stderr()).doesNotContain("Exception").doesNotContain("\tat ");
        assertThat(t.objectCount()).isZero();
    }

    /** The inputs, end to end on a real token: nothing stored, exit 2, the rule named. */
    @Test
    void importCaAndGenKekStoreNothingUnderABadId() throws Exception {
        Path root = tmp.resolve("root.pem");
        Cli.Result made = Cli.run(List.of("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp.resolve("root.key").toString(),
                "-out", root.toString(), "-days", "30", "-subj", "/CN=Root", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign"), null, tmp, null);
        assertThat(made.exit()).as(made.toString()).isZero();
        refusedBeforeTheHsm(Cli.asm(t.env(), "import-ca", "-f", root.toString(), "--ca-id", "ключ"),
                "CA ID 'ключ' is not 1-64 letters, digits and . _ : -");
        refusedBeforeTheHsm(Cli.asm(t.env(), "import-ca", "-f", root.toString(), "--ca-id", ""), "CA ID is empty");
        refusedBeforeTheHsm(Cli.asm(t.env(), "gen-kek", "--kek-id", "ключ"), "KEK ID 'ключ' is not 1-64 letters");
        refusedBeforeTheHsm(Cli.asm(t.env(), "gen-kek", "--kek-id", ""), "KEK ID is empty");
        // from the guide's variable, too
        Map<String, String> env = new HashMap<>(t.env());
        env.put("KEK_ID", "kek id");
        refusedBeforeTheHsm(Cli.asm(env, "gen-kek"), "KEK ID 'kek id' is not");
        env.put("CLUSTER_SUFFIX", "c1");
        refusedBeforeTheHsm(Cli.asm(env, "status"), "KEK ID 'kek id' is not");
        // a good ID still works as before
        assertThat(Cli.asm(t.env(), "import-ca", "-f", root.toString(), "--ca-id", "KEK_2024.mesh:1").exit()).isZero();
        assertThat(t.objects()).contains("ID:         " + GenKekTest.hex("KEK_2024.mesh:1"));
    }
}
