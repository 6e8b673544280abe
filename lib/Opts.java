package asmhsm;

import java.nio.file.Path;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The options every step shares, declared once as picocli mixins. Defaults come from
 * the guide's environment variables; an option on the command line wins over them.
 * No option takes a secret: PINs, keys and tokens are read from files or the environment.
 */
public final class Opts {
    private Opts() {}

    public static class Common {
        @Option(names = "--dry-run", description = "Say what would change; change nothing.")
        public boolean dryRun;

        @Option(names = "--json", description = "Print one machine-readable JSON result on stdout.")
        public boolean json;

        @Option(names = {"-v", "--verbose"}, description = "Show stack traces on failure.")
        public boolean verbose;

        /** -o json|yaml (see {@link #addOutputOption}); null: lines for a human, or JSON under --json. */
        public Out.Format output;

        /** The result's format: -o's, else JSON under --json, else text for a human. */
        public Out.Format format() {
            return output != null ? output : json ? Out.Format.json : Out.Format.text;
        }

        /**
         * Adds -o/--output FORMAT (json or yaml, as kubectl and istioctl take it) to a step. It is
         * added here, not declared above, because two steps already own -o/--output as the file
         * they write (decrypt-csr, sign-csr, as openssl's -out): there it is --output-format.
         */
        static void addOutputOption(CommandSpec spec) {
            Common common = null;
            for (CommandSpec m : spec.mixins().values()) if (m.userObject() instanceof Common c) common = c;
            if (common == null) return;
            java.util.List<String> names = new java.util.ArrayList<>();
            for (String n : new String[] {"-o", "--output"}) if (spec.findOption(n) == null) names.add(n);
            if (names.isEmpty()) names.add("--output-format");
            Common target = common;
            spec.addOption(picocli.CommandLine.Model.OptionSpec.builder(names.toArray(String[]::new))
                    .paramLabel("FORMAT").type(Out.Format.class)
                    .converters(value -> switch (value) {
                        case "json" -> Out.Format.json;
                        case "yaml" -> Out.Format.yaml;
                        default -> throw new picocli.CommandLine.TypeConversionException("'" + value + "' is not an output format: json or yaml");
                    })
                    .description("Print the result as json or yaml on stdout (" + names.get(0) + " json is --json).")
                    .completionCandidates(java.util.List.of("json", "yaml"))
                    .setter(new picocli.CommandLine.Model.ISetter() {
                        @Override
                        public <T> T set(T value) {
                            target.output = (Out.Format) value;
                            return null;
                        }
                    })
                    .build());
        }
    }

    public static class Pkcs11 {
        @Option(names = "--p11-lib", defaultValue = "${env:P11_LIB}", paramLabel = "FILE",
                description = "PKCS#11 library, e.g. libCryptoki2.so (env P11_LIB). Unset: the embedded SoftHSM2.")
        public String lib;

        @Option(names = "--p11-token", defaultValue = "${env:P11_TOKEN}", paramLabel = "LABEL",
                description = "HSM slot / token label (env P11_TOKEN).")
        public String token;

        @Option(names = "--p11-pin-file", defaultValue = "${env:P11_PIN_FILE}", paramLabel = "FILE",
                description = "File holding the slot PIN this step logs in to the HSM with, mode 0600 (env P11_PIN_FILE).")
        public Path pinFile;
    }

    public static class Kube {
        @Option(names = "--kubeconfig", defaultValue = "${env:KUBECONFIG}", paramLabel = "FILE",
                description = "kubeconfig file, or files separated by ':' merged as kubectl merges them (env KUBECONFIG, default ~/.kube/config).")
        public String kubeconfig;

        @Option(names = "--context", paramLabel = "NAME", description = "kubeconfig context (default: the current one).")
        public String context;

        /** The step these options belong to (null when made in code). */
        @Spec(Spec.Target.MIXEE)
        CommandSpec step;

        /** Set by a step that may bind its suffix to another cluster (k8s-vault-prep --rebind). */
        public boolean anyCluster;

        /** The kubeconfig as read for these options (see asmhsm.Kube#resolve). */
        io.fabric8.kubernetes.client.Config resolved;

        /**
         * The suffix whose cluster this step must act on: when the step also takes a cluster suffix
         * (a valid one; an invalid one is the step's own refusal), asmhsm.Kube#connect refuses any
         * other cluster. The folder is the step's --dir, else ./<suffix>.
         */
        public ClusterId.Expected expectedCluster() {
            if (anyCluster || step == null) return null;
            String suffix = null;
            java.nio.file.Path dir = null;
            for (CommandSpec m : step.mixins().values()) {
                if (m.userObject() instanceof Cluster c && c.suffix != null && c.suffix.matches(Cluster.PATTERN)) suffix = c.suffix;
                if (m.userObject() instanceof ReviewerDir d) dir = d.dir;
            }
            return suffix == null ? null : new ClusterId.Expected(suffix, dir != null ? dir : java.nio.file.Path.of(suffix));
        }
    }

    public static class Vault {
        @Option(names = "--vault-addr", defaultValue = "${env:VAULT_ADDR}", paramLabel = "URL",
                description = "Vault address, https://HOST:PORT (env VAULT_ADDR).")
        public String addr;

        @Option(names = "--vault-cacert", defaultValue = "${env:VAULT_CACERT}", paramLabel = "FILE",
                description = "CA certificate that signed Vault's TLS certificate (env VAULT_CACERT).")
        public Path caCert;
        // The token is read as the Vault CLI does (VAULT_TOKEN, else ~/.vault-token), never from an option.

        @Option(names = "--vault-namespace", defaultValue = "${env:VAULT_NAMESPACE}", paramLabel = "NS",
                description = "Vault (OpenBao) namespace, e.g. team1 or team1/mesh (env VAULT_NAMESPACE). Unset: the root namespace.")
        public String namespace;

        /**
         * The namespace as Vault names it, without the slashes the CLI also accepts around it ("ns1/" is ns1),
         * or null for the root namespace.
         */
        public String namespace() {
            if (namespace == null || namespace.isBlank()) return null;
            String ns = namespace.strip().replaceAll("^/+|/+$", "");
            if (!ns.matches("[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*"))
                throw Fail.badInput("Vault namespace " + shown(namespace) + " is not a namespace path (names of letters, digits and . _ -, "
                        + "joined by /)", "fix VAULT_NAMESPACE or --vault-namespace, e.g. team1 or team1/mesh; unset it for the root namespace");
            return ns;
        }

        /** The address, given and of the form the guide exports: http(s)://HOST:PORT. */
        public String requireAddr() {
            if (addr == null || addr.isBlank())
                throw Fail.badInput("no Vault address given", "export VAULT_ADDR=https://VAULT_IP:PORT or pass --vault-addr");
            if (!addr.matches("https?://[^/\\s]+/?"))
                throw Fail.badInput("VAULT_ADDR '" + addr + "' is not http(s)://HOST:PORT", "the guide: export VAULT_ADDR=https://VAULT_IP:PORT");
            return addr;
        }
    }

    public static class Cluster {
        @Option(names = "--cluster-suffix", defaultValue = "${env:CLUSTER_SUFFIX}", paramLabel = "SUFFIX",
                description = "Cluster suffix, e.g. c1 (env CLUSTER_SUFFIX).")
        public String suffix;

        static final String PATTERN = "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?";

        /** " for cluster c1" when a suffix is given, else "": it only names the cluster (each cluster's CA has the same subject). */
        public String forCluster() {
            return suffix == null || suffix.isBlank() ? "" : " for cluster " + suffix;
        }

        /** A CA certificate's identity as a result gives it, with the cluster's suffix when one is given. */
        public java.util.Map<String, Object> identity(Pki.Identity id) {
            java.util.Map<String, Object> m = new java.util.LinkedHashMap<>(id.json());
            if (suffix != null && !suffix.isBlank()) m.put("cluster", suffix);
            return m;
        }

        /** The suffix names a directory, files, a Vault mount and a policy: keep it a plain label. */
        public String require() {
            if (suffix == null || suffix.isBlank())
                throw Fail.badInput("no cluster suffix given", "pass --cluster-suffix c1 or export CLUSTER_SUFFIX=c1");
            if (!suffix.matches(PATTERN))
                throw Fail.badInput("cluster suffix '" + suffix + "' is not a plain label",
                        "use lower-case letters, digits and inner dashes, at most 32 characters (e.g. c1)");
            return suffix;
        }
    }

    /**
     * The rule for every ID the plugin stores as CKA_ID (KEK IDs, CA IDs): 1-64 characters, letters,
     * digits and . _ : -, starting with a letter or digit. It covers the plugin's UUIDs and the
     * operator's own names, and keeps the ID one word in the guide's shell lines, Helm values and
     * Secrets. Applied by picocli as it reads the option (or its environment default), before the
     * step runs, so every step that takes the ID checks it the same way (exit 2).
     */
    public static final String ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9._:-]{0,63}";

    /** Why an ID breaks {@link #ID_PATTERN}; null when it keeps it. `what` names it ("KEK ID"). */
    public static String idProblem(String id, String what) {
        if (id.isEmpty()) return what + " is empty";
        if (id.matches(ID_PATTERN)) return null;
        String shown = shown(id);
        if (id.length() > 64) return what + " " + shown + " is " + id.length() + " characters long, more than 64";
        return what + " " + shown + " is not 1-64 letters, digits and . _ : - starting with a letter or digit";
    }

    /** An ID as a message may quote it: on one line, control characters escaped, long ones cut. */
    static String shown(String id) {
        StringBuilder b = new StringBuilder("'");
        id.codePoints().limit(40).forEach(c -> {
            if (c < 0x20 || c == 0x7f || Character.getType(c) == Character.FORMAT || Character.isISOControl(c))
                b.append(String.format("\\u%04x", c));
            else b.appendCodePoint(c);
        });
        if (id.codePointCount(0, id.length()) > 40) b.append("...");
        return b.append('\'').toString();
    }

    /**
     * A converter for a value with a rule: picocli applies it as it reads the option (or its
     * environment default), so a value that breaks the rule is bad usage (exit 2) before the step
     * runs, in the same words in every step. `problem` says why a value breaks it, null when not.
     */
    public abstract static class RuleConverter implements picocli.CommandLine.ITypeConverter<String> {
        private final java.util.function.UnaryOperator<String> problem;

        RuleConverter(java.util.function.UnaryOperator<String> problem) { this.problem = problem; }

        @Override
        public String convert(String value) {
            String why = problem.apply(value);
            if (why != null) throw new picocli.CommandLine.TypeConversionException(why);
            return value;
        }
    }

    public static final class KekIdConverter extends RuleConverter {
        public KekIdConverter() {
            super(v -> hinted(idProblem(v, "KEK ID"), "a UUID, as gen-kek makes, or the ID gen-kek printed; env KEK_ID"));
        }
    }

    public static final class CaIdConverter extends RuleConverter {
        public CaIdConverter() { super(v -> hinted(idProblem(v, "CA ID"), "the plugin's default is " + Hsm.DEFAULT_CA_ID)); }
    }

    private static String hinted(String problem, String hint) {
        return problem == null ? null : problem + " (" + hint + ")";
    }

    /** A DNS-1123 label, the rule of a Kubernetes namespace name and of a revision. */
    public static final String DNS_LABEL = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?";

    /**
     * The revision rule, once: istio.io/rev's value is also part of object names (istiod-<rev>, the
     * webhooks), so it is a DNS-1123 label, as istioctl's own revision check requires: lower-case
     * letters, digits and inner dashes, at most 63.
     */
    public static final String REVISION_PATTERN = DNS_LABEL;

    /** Why a revision breaks {@link #REVISION_PATTERN}; null when it keeps it. */
    public static String revisionProblem(String revision) {
        if (revision != null && revision.matches(REVISION_PATTERN)) return null;
        return "revision " + (revision == null ? "(none)" : shown(revision)) + " is not a valid label value: a DNS label of lower-case "
                + "letters, digits and inner dashes, at most 63 (e.g. " + Istio.GUIDE_REVISION + ")";
    }

    /** Why a namespace name is one the API server refuses; null when it is a valid one. */
    public static String namespaceProblem(String namespace) {
        if (namespace != null && namespace.matches(DNS_LABEL)) return null;
        return "namespace " + (namespace == null ? "(none)" : shown(namespace)) + " is not a valid Kubernetes name: a DNS label of lower-case "
                + "letters, digits and inner dashes, at most 63";
    }

    /** Every step's --revision goes through this. */
    public static final class RevisionConverter extends RuleConverter {
        public RevisionConverter() { super(Opts::revisionProblem); }
    }

    /** Every step's -n/--namespace goes through this (and verify-mtls's workload namespace). */
    public static final class NamespaceConverter extends RuleConverter {
        public NamespaceConverter() { super(Opts::namespaceProblem); }
    }

    /** How long a step's --wait waits: for a step whose --wait is its own (istiod-status's names a stage). */
    public static class Timeout {
        @Option(names = "--timeout", defaultValue = "5m", paramLabel = "DURATION", converter = DurationConverter.class,
                description = "How long --wait waits, e.g. 90s, 5m, 1h; a bare number is seconds (default ${DEFAULT-VALUE}).")
        public Duration timeout;
    }

    /** --wait and how long: for a step that can wait for what it needs or makes (its description says what). */
    public static class Wait extends Timeout {
        @Option(names = "--wait", description = "Wait, up to --timeout, for what the step needs or makes (its description says what).")
        public boolean await;
    }

    /** The validity istiod's CA certificate is signed with (sign-csr, renew-ca): 1 to 36500 days, checked as it is read. */
    public static class CaDays {
        @Option(names = "--days", defaultValue = "365", paramLabel = "N", converter = DaysConverter.class,
                description = "Validity of the CA certificate in days (default ${DEFAULT-VALUE}; never past the root's).")
        public int days;
    }

    public static final class DaysConverter implements picocli.CommandLine.ITypeConverter<Integer> {
        @Override
        public Integer convert(String value) {
            int days;
            try {
                days = Integer.parseInt(value.strip());
            } catch (NumberFormatException e) {
                throw new picocli.CommandLine.TypeConversionException("'" + value + "' is not an int");
            }
            if (days < 1 || days > 36500) throw new picocli.CommandLine.TypeConversionException(days + " is out of range: give 1 to 36500 days");
            return days;
        }
    }

    /** The slot holding the root's private key, which signs istiod's CA certificate (renew-ca): the step's own slot unless named. */
    public static class RootSlot {
        @Option(names = "--root-key-label", required = true, paramLabel = "LABEL", description = "Label of the root's private key in the HSM.")
        public String keyLabel;

        @Option(names = "--root-p11-token", paramLabel = "LABEL", description = "The slot holding the root's key (default: --p11-token's).")
        public String token;

        @Option(names = "--root-p11-pin-file", paramLabel = "FILE", description = "That slot's PIN file, mode 0600 (default: --p11-pin-file).")
        public Path pinFile;

        /** The root's slot as options to open it with; null when it is `own`, the step's slot. */
        public Pkcs11 slot(Pkcs11 own) {
            if (token == null || token.equals(own.token)) return null;
            Pkcs11 slot = new Pkcs11();
            slot.lib = own.lib;
            slot.token = token;
            slot.pinFile = pinFile != null ? pinFile : own.pinFile;
            return slot;
        }
    }

    public static class Kek {
        @Option(names = "--kek-id", defaultValue = "${env:KEK_ID}", paramLabel = "ID", converter = KekIdConverter.class,
                description = "The KEK's ID, as gen-kek printed it (env KEK_ID).")
        public String id;
    }

    /** Where k8s-vault-prep's three files (the guide's <suffix>-tokenreview_jwt, -k8s_addr, -k8s_cert) are. */
    public static class ReviewerDir {
        @Option(names = "--dir", paramLabel = "DIR",
                description = "Folder of k8s-vault-prep's three files (default: ./<suffix>, as the guide does).")
        public Path dir;

        public Path of(String suffix) {
            return dir != null ? dir : Path.of(suffix);
        }
    }

    public static class CaId {
        @Option(names = "--ca-id", defaultValue = Hsm.DEFAULT_CA_ID, paramLabel = "ID", converter = CaIdConverter.class,
                description = "CA ID the HSM plugin looks the root certificate up by (default ${DEFAULT-VALUE}).")
        public String id;
    }

    public static class IstioNamespace {
        @Option(names = {"-n", "--namespace"}, defaultValue = asmhsm.KubeLayout.ISTIO_NAMESPACE, paramLabel = "NS", converter = NamespaceConverter.class,
                description = "istiod's namespace (default ${DEFAULT-VALUE}).")
        public String name;
    }

    // ------------------------------------------------------------------ durations

    /**
     * A Go duration as istioctl parses WAIT_FOR_RESOURCES_TIMEOUT (time.ParseDuration):
     * "10s", "1m30s", "1.5h", "250ms", "0". Null when it is not one.
     */
    public static Duration goDuration(String text) {
        if (text == null) return null;
        String s = text.strip();
        if (s.equals("0")) return Duration.ZERO;
        Matcher m = GO_DURATION_PART.matcher(s);
        double nanos = 0;
        int at = 0;
        while (at < s.length() && m.find(at) && m.start() == at) {
            double unit = switch (m.group(2)) {
                case "ns" -> 1;
                case "us", "µs" -> 1e3;
                case "ms" -> 1e6;
                case "s" -> 1e9;
                case "m" -> 60e9;
                default -> 3600e9;
            };
            nanos += Double.parseDouble(m.group(1)) * unit;
            at = m.end();
        }
        return at == s.length() && at > 0 ? Duration.ofNanos((long) nanos) : null;
    }

    private static final Pattern GO_DURATION_PART = Pattern.compile("(\\d+(?:\\.\\d*)?|\\.\\d+)(ns|us|µs|ms|s|m|h)");

    /**
     * A time as every option takes it: a Go duration (30s, 5m, 1h, 1m30s) or a bare number of
     * seconds, the unit the options that took a number always had. Null when it is neither.
     */
    public static Duration duration(String text) {
        if (text != null && text.strip().matches("\\d{1,9}")) return Duration.ofSeconds(Long.parseLong(text.strip()));
        return goDuration(text);
    }

    /** A duration as a message shows it, in the spelling the options take: 90s is 1m30s, 5m, 2h, 250ms. */
    public static String text(Duration d) {
        if (d.isZero()) return "0s";
        if (d.compareTo(Duration.ofSeconds(1)) < 0) return d.toMillis() + "ms";
        StringBuilder b = new StringBuilder();
        if (d.toHours() > 0) b.append(d.toHours()).append('h');
        if (d.toMinutesPart() > 0) b.append(d.toMinutesPart()).append('m');
        if (d.toSecondsPart() > 0 || d.toMillisPart() > 0)
            b.append(d.toMillisPart() == 0 ? String.valueOf(d.toSecondsPart())
                    : java.math.BigDecimal.valueOf(d.toSecondsPart() * 1000L + d.toMillisPart(), 3).stripTrailingZeros().toPlainString()).append('s');
        return b.toString();
    }

    /** Whole seconds, rounded up, for the APIs that count in seconds: never 0 for a time above zero. */
    public static int seconds(Duration d) {
        long s = d.toSeconds() + (d.toNanosPart() > 0 ? 1 : 0);
        return (int) Math.min(Integer.MAX_VALUE, s);
    }

    /** A time that may be days long (renew-ca's --renew-before): "30d" as 30 days, else as {@link DurationConverter} reads it. */
    public static final class DaysOrDurationConverter implements picocli.CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String value) {
            if (value != null && value.strip().matches("\\d{1,5}d")) return Duration.ofDays(Long.parseLong(value.strip().replace("d", "")));
            return new DurationConverter().convert(value);
        }

        /** A duration as this converter's options spell it: whole days as 30d, else as {@link #text}. */
        public static String text(Duration d) {
            return d.toHours() % 24 == 0 && d.toDays() > 0 ? d.toDays() + "d" : Opts.text(d);
        }
    }

    /** Every option that is a time (`--timeout 30s`, `--timeout 5m`, `--timeout 120`): more than zero. */
    public static final class DurationConverter implements picocli.CommandLine.ITypeConverter<Duration> {
        @Override
        public Duration convert(String value) {
            Duration d = duration(value);
            if (d == null)
                throw new picocli.CommandLine.TypeConversionException("'" + value + "' is not a duration (e.g. 30s, 5m, 1h; a bare number is seconds)");
            if (d.isZero()) throw new picocli.CommandLine.TypeConversionException("'" + value + "' is no time: give more than zero, e.g. 30s");
            return d;
        }
    }
}
