package asmhsm;

import static asmhsm.KubeVaultStepsSupport.env;
import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * Every step's real --json output, a success and a failure, against docs/schemas/result.schema.json,
 * checked by an independent validator (networknt json-schema-validator, draft 2020-12). The schema
 * holds each step to the fields docs/results.md lists, so the page and the output cannot drift.
 */
@ExtendWith(LabExtension.class)
class ResultSchemaTest {
    static final JsonMapper JSON = new JsonMapper();
    static final Path SCHEMA = Cli.repo().resolve("docs/schemas/result.schema.json");

    @TempDir Path tmp;

    /** The schema's complaints about one printed result; empty when it is valid. */
    static List<String> problems(String printed) throws Exception {
        return SchemaCheck.problems(Files.readString(SCHEMA), printed);
    }

    static void valid(Cli.Result r, String what) throws Exception {
        assertThat(r.stdout()).as(what + ": a result on stdout\n" + r).isNotBlank();
        assertThat(problems(r.stdout())).as("%s: %s%n%s", what, r.stdout(), r.stderr()).isEmpty();
    }

    @Test
    void theSchemaRefusesWhatIsNotAResult() throws Exception {
        String good = "{\"schemaVersion\":2,\"step\":\"version\",\"ok\":true,\"exitCode\":0,\"changed\":false,\"dryRun\":false,\"version\":\"0.1.0\"}";
        assertThat(problems(good)).isEmpty();
        assertThat(problems(good.replace("\"version\":\"0.1.0\"", "\"undocumented\":1"))).as("a field docs/results.md does not list").isNotEmpty();
        assertThat(problems(good.replace("\"exitCode\":0", "\"exitCode\":\"0\""))).as("a number as a string").isNotEmpty();
        assertThat(problems(good.replace("\"schemaVersion\":2,", ""))).as("no schemaVersion").isNotEmpty();
        assertThat(problems(good.replace("\"ok\":true", "\"ok\":false"))).as("a failure without its error").isNotEmpty();
        assertThat(problems("{\"schemaVersion\":2,\"step\":\"preflight\",\"ok\":true,\"exitCode\":0,\"changed\":false,\"dryRun\":false,"
                + "\"checks\":[{\"name\":\"nodes\",\"state\":\"FAIL\",\"ok\":false,\"detail\":\"x\"}]}")).as("a state outside the vocabulary").isNotEmpty();
    }

    /** Every step and verb with a result: bad usage is a result too, and it names the step. */
    @Test
    void everyStepsBadUsageIsAValidResult() throws Exception {
        for (String command : OutputFormatsTest.commands()) {
            List<String> args = new ArrayList<>(List.of(command.split(" ")));
            args.addAll(List.of("--no-such-option", "--json"));
            Cli.Result r = Cli.asm(Map.of(), tmp, args.toArray(String[]::new));
            assertThat(r.exit()).as(command + "\n" + r).isEqualTo(2);
            valid(r, command);
            assertThat(JSON.readTree(r.stdout()).get("step").asString()).isEqualTo(command);
        }
    }

    @Test
    void stepsThatNeedOnlyTheHsmOrNothing(Lab lab) throws Exception {
        Map<String, String> env = env(lab);
        valid(Cli.asm(env, tmp, "version", "--json"), "version");
        valid(Cli.asm(env, tmp, "session", "status", "--json"), "session status");
        valid(Cli.asm(env, tmp, "session", "stop", "--json"), "session stop");
        valid(Cli.asm(env, tmp, "hsm-info", "--json"), "hsm-info");
        String kek = "schema-" + lab.freshMount();
        valid(Cli.asm(env, tmp, "gen-kek", "--kek-id", kek, "--dry-run", "--json"), "gen-kek --dry-run");
        valid(Cli.asm(env, tmp, "gen-kek", "--kek-id", kek, "--json"), "gen-kek");
        valid(Cli.asm(env, tmp, "import-ca", "-f", tmp.resolve("missing.pem").toString(), "--json"), "import-ca, no such file");
        valid(Cli.asm(env, tmp, "sign-csr", "--csr", tmp.resolve("missing.pem").toString(), "--json"), "sign-csr, no such file");
        valid(Cli.asm(env, tmp, "decrypt-csr", "-f", tmp.resolve("missing.json").toString(), "--json"), "decrypt-csr, no such file");
        valid(Cli.asm(env, tmp, "fetch-release", "--asm-version", "1.9.8-asm.6", "--base-url", "http://127.0.0.1:9/none", "--dir", tmp.toString(), "--json"),
                "fetch-release, nothing there");
        // -o yaml: the same result
        Cli.Result yaml = Cli.asm(env, tmp, "hsm-info", "-o", "yaml");
        valid(new Cli.Result(yaml.exit(), JSON.writeValueAsString(new YAMLMapper().readTree(yaml.stdout())), yaml.stderr()), "hsm-info -o yaml");
        // asm run --json: one array of results
        valid(Cli.asm(env, tmp, "run", "--json", "version", "+", "hsm-info"), "asm run --json");
    }

    @Test
    void stepsAgainstTheCluster(Lab lab) throws Exception {
        Map<String, String> env = env(lab);
        String ns = lab.freshNamespace();
        valid(Cli.asm(env, tmp, "preflight", "--json"), "preflight");
        valid(Cli.asm(env, tmp, "preflight", "--skip", "nodes,ports,vault", "--json"), "preflight --skip");
        valid(Cli.asm(env, tmp, "status", "--cluster-suffix", "c9", "--json"), "status");
        valid(Cli.asm(env, tmp, "grant-admin", "--user", "schema@example.com", "--name", "schema-" + lab.freshMount(), "--dry-run", "--json"), "grant-admin");
        valid(Cli.asm(env, tmp, "control-plane-prep", "-n", ns, "--dry-run", "--json"), "control-plane-prep --dry-run");
        valid(Cli.asm(env, tmp, "control-plane-prep", "-n", ns, "--json"), "control-plane-prep");
        valid(Cli.asm(env, tmp, "istiod-service", "-n", ns, "--json"), "istiod-service");
        valid(Cli.asm(env, tmp, "istiod-service", "-n", "no-such-" + lab.freshMount(), "--json"), "istiod-service, no namespace");
        valid(Cli.asm(env, tmp, "k8s-vault-prep", "--namespace", ns, "--binding", "tokenreview-" + ns, "--cluster-suffix", "c1", "--json"), "k8s-vault-prep");
        valid(Cli.asm(env, tmp, "enable-injection", "-n", ns, "--revision", "none-" + lab.freshMount(), "--json"), "enable-injection, no istiod");
        valid(Cli.asm(env, tmp, "external-ip", "--mode", "manual", "--ip", "203.0.113.9", "--json"), "external-ip");
        valid(Cli.asm(env, tmp, "istiod-status", "--json"), "istiod-status");
        valid(Cli.asm(env, tmp, "verify-ca", "--json"), "verify-ca");
        valid(Cli.asm(env, tmp, "load-root", "--json"), "load-root");
        valid(Cli.asm(env, tmp, "upload-chain", "-f", tmp.resolve("missing.pem").toString(), "--json"), "upload-chain, no such file");
        valid(Cli.asm(env, tmp, "verify-mtls", "--pod", "none", "--target", "details:9080", "--json"), "verify-mtls");
        valid(Cli.asm(env, tmp, "install-asm", "--print", "--json"), "install-asm --print");
        valid(Cli.asm(env, tmp, "vault-verify", "--cluster-suffix", "c9", "--json"), "vault-verify");
        valid(Cli.asm(env, tmp, "vault-setup", "--cluster-suffix", "c9", "--dry-run", "--json"), "vault-setup");
        valid(Cli.asm(env, tmp, "renew-ca", "-n", ns, "--root-key-label", "root-key", "--json"), "renew-ca, no istiod");
        valid(Cli.asm(env, tmp, "rotate-ca", "-n", ns, "--json"), "rotate-ca, no istiod");
        valid(Cli.asm(env, tmp, "teardown", "--cluster-suffix", "c1", "--dry-run", "--json"), "teardown --dry-run");
        valid(Cli.asm(env, tmp, "teardown", "--cluster-suffix", "c8", "--json"), "teardown, nothing prepared");
    }

    /** The validator, kept apart so that its API is in one place. */
    static final class SchemaCheck {
        static List<String> problems(String schema, String instance) {
            var registry = com.networknt.schema.SchemaRegistry.withDefaultDialect(com.networknt.schema.SpecificationVersion.DRAFT_2020_12);
            var s = registry.getSchema(schema, com.networknt.schema.InputFormat.JSON);
            return s.validate(instance, com.networknt.schema.InputFormat.JSON).stream().map(Object::toString).toList();
        }
    }
}
