package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * The runbooks, run for real: every ```sh run block of runbooks/01..12, in order, pasted into
 * one shell session against a lab of its own (RunbookLab: OpenBao, kube-apiserver, SoftHSM2,
 * stand-ins for istioctl, istiod and the kubelets). A block's ```text output must match what
 * it printed. Nothing is skipped silently: cluster-only blocks are listed with their reason,
 * manual blocks with the lab's values for what they set. Then `status` must report every line
 * done, and every run block is pasted a second time, as operators do after an interruption:
 * each must succeed again.
 *
 * <p>-Drunbook.keep=true leaves the lab and the work directory running afterwards;
 * RUNBOOK_JBANG=all sends every `jbang asm@org` through JBang (default: only the first).
 */
class RunbookTest {
    static final long BLOCK_TIMEOUT_SECONDS = 900; // the first block may build the asm script with JBang

    RunbookLab lab;
    RunbookShell shell;
    final Set<String> ran = new LinkedHashSet<>(), clusterOnly = new LinkedHashSet<>();
    int runBlocks, skippedBlocks, manualBlocks;
    long runMillis;
    boolean istiodStarted, istiodLoaded;

    @Test
    void runbooksRunEndToEndInTheLab() throws Exception {
        String realJbang = Cli.run(List.of("bash", "-c", "command -v jbang"), null, null, null).stdout().strip();
        assertThat(realJbang).as("jbang on PATH (tests/install)").isNotEmpty();
        assertThat(Cli.run(List.of("bash", "-c", "command -v kubectl"), null, null, null).exit())
                .as("kubectl on PATH: the runbooks cross-check with the guide's own tool").isZero();
        boolean keep = Boolean.getBoolean("runbook.keep");
        try (RunbookLab l = RunbookLab.start(keep)) {
            lab = l;
            lab.jbangShim(realJbang, "all".equals(System.getenv("RUNBOOK_JBANG")));
            say("The lab (stand-ins for what cannot run here):");
            lab.notes.forEach(n -> say("  - " + n));
            shell = new RunbookShell(lab.dir.resolve("shell"), lab.environment(), lab.dir);

            for (Runbook book : Runbook.all("")) {
                if (walkedOnItsOwn(book)) continue;
                say("\n=================== runbooks/" + book.file);
                kubeletsFor(book);
                for (Runbook.Block b : book.blocks) if (b.shell()) paste(book, b);
                kubeletsAfter(book);
                if (book.file.equals(PIN)) pinRotated();
            }
            assertThat(lab.dir.resolve("jbang-used")).as("the first `jbang asm@org` went through JBang itself").exists();
            assertThat(istiodStarted).as("a run block ran install-asm, after which istiod starts").isTrue();
            assertThat(istiodLoaded).as("a run block ran upload-chain, after which istiod loads its CA").isTrue();
            statusIsAllDone();

            say("\n=================== every run block pasted again (with each runbook's answers, as an operator sets them)");
            for (Runbook book : Runbook.all("")) {
                kubeletsFor(book);
                for (Runbook.Block b : book.blocks) {
                    if (walkedOnItsOwn(book)) continue;
                    if (b.shell() && Runbook.MANUAL.equals(b.mark())) answer(b);
                    if (!b.run()) continue;
                    RunbookShell.Result r = shell.run(b.text(), BLOCK_TIMEOUT_SECONDS);
                    say(String.format("  %-32s exit %d  %s", b.where(), r.exit(), firstLine(r.output())));
                    assertThat(r.exit()).as("%s pasted a second time failed:%n%s", b.where(), r.output()).isZero();
                }
                kubeletsAfter(book);
            }
            statusIsAllDone();
            canaryUpgrade();

            // What happens to a running mesh (reference/hsm-formats.md): the discovery container restarts
            // alone and keeps its pod's plugin; a new pod has a fresh plugin, which only the root hook loads.
            int copies = lab.rootCopies();
            say("\n=================== istiod's discovery container restarts");
            say("  ISTIOD (stand-in): " + lab.clusters.get(0).istiodRestarts());
            assertThat(lab.rootCopies()).as("a restart of discovery imports nothing").isEqualTo(copies);
            statusIsAllDone();
            say("\n=================== istiod's pod is re-created (rollout, eviction, drain)");
            say("  ISTIOD (stand-in): " + lab.clusters.get(0).istiodPodsRecreated());
            assertThat(lab.rootCopies()).as("the new pod's postStart hook ran the plugin's import-ca once (one more copy)").isEqualTo(copies + 1);
            statusIsAllDone();
            suffixesRefuseTheOtherCluster();
            teardown();

            say(String.format("%n%d blocks ran in %d s, %d cluster-only blocks skipped, %d manual blocks answered by the lab.",
                    runBlocks, runMillis / 1000, skippedBlocks, manualBlocks));
            clusterOnly.removeAll(ran);
            say("Steps run: " + String.join(", ", ran));
            say("Steps only in cluster-only blocks (they read pod logs or exec into pods): " + String.join(", ", clusterOnly));
            assertThat(ran).as("every step but those that need a real cluster ran")
                    .containsAll(LayoutTest.steps().stream().filter(s -> !clusterOnly.contains(s)).toList());
            if (keep) say("\nKept: the lab (source " + lab.labDir.resolve("env") + "; tests/lab/down " + lab.labDir + ") and " + lab.work);
        }
    }

    /**
     * The day-2 runbooks restart istiod while their steps run: the first cluster's pods react meanwhile
     * (RunbookLab.Cluster#kubeletRuns); runbook 17 restarts every cluster on the slot whose PIN it changes.
     */
    static final Set<String> RESTARTING = Set.of("15-renew-ca.md", "16-rotate-ca.md", "17-rotate-pin.md");
    static final String PIN = "17-rotate-pin.md";

    List<RunbookLab.Cluster> restarted(Runbook book) {
        if (!RESTARTING.contains(book.file)) return List.of();
        return book.file.equals(PIN) ? lab.clusters : List.of(lab.clusters.get(0));
    }

    void kubeletsFor(Runbook book) {
        for (RunbookLab.Cluster c : restarted(book)) say("  KUBELETS and ISTIOD (stand-ins) in " + c.context + ": " + c.kubeletRuns());
    }

    void kubeletsAfter(Runbook book) throws Exception {
        for (RunbookLab.Cluster c : restarted(book)) say("  KUBELETS and ISTIOD (stand-ins) in " + c.context + " did: " + c.kubeletStops());
    }

    /**
     * Runbook 17 changed the slot's PIN for real: seen by pkcs11-tool (the new PIN logs in, the old one no longer),
     * in Vault (every cluster's secret holds the new PIN) and in the session (P11_PIN_FILE is the new file).
     */
    void pinRotated() throws Exception {
        say("\n=================== the HSM PIN after runbook 17 (pkcs11-tool, bao)");
        java.nio.file.Path now = java.nio.file.Path.of(shell.variable("P11_PIN_FILE")), old = lab.token.pinFile;
        assertThat(now).as("the session's P11_PIN_FILE after runbook 17").isEqualTo(lab.newPinFile);
        Cli.Result opens = lab.slotLogin(now), refused = lab.slotLogin(old);
        say("  pkcs11-tool login with the new PIN: exit " + opens.exit() + "; with the old PIN: exit " + refused.exit() + " "
                + firstLine(refused.stderr() + refused.stdout()));
        assertThat(opens.exit()).as("the new PIN opens the slot:%n%s", opens).isZero();
        assertThat(refused.exit()).as("the old PIN no longer opens the slot").isNotZero();
        assertThat(refused.all()).contains("CKR_PIN_INCORRECT");
        lab.slotPinChanged(now);
        String pin = java.nio.file.Files.readString(now);
        for (int i = 0; i < lab.clusters.size(); i++) {
            String path = "asm-c" + (i + 1) + "/hsm";
            assertThat(pin.equals(lab.vaultField(path, "PIN"))).as("Vault's %s holds the new PIN", path).isTrue();
            say("  Vault's " + path + ": PIN is the new one (value not shown)");
        }
    }

    /** One block, as its mark says. */
    void paste(Runbook book, Runbook.Block b) throws Exception {
        say("\n--- " + b.where() + "  " + b.heading() + "  [" + b.mark() + "]");
        say(indent(b.text().stripTrailing(), "  $ "));
        switch (b.mark()) {
            case Runbook.CLUSTER_ONLY -> {
                skippedBlocks++;
                say("  SKIPPED, cluster-only: " + b.reason());
                b.commands().forEach(c -> clusterOnly.add(c.step()));
            }
            case Runbook.MANUAL -> {
                manualBlocks++;
                say("  MANUAL: " + b.reason());
                answer(b);
            }
            case Runbook.RUN -> {
                runBlocks++;
                RunbookShell.Result r = shell.run(b.text(), BLOCK_TIMEOUT_SECONDS);
                if (!r.output().isBlank()) say(indent(r.output().stripTrailing(), "  | "));
                say("  exit " + r.exit() + " in " + r.millis() + " ms");
                runMillis += r.millis();
                assertThat(r.exit()).as("%s (%s) failed; its output is above:%n%s", b.where(), b.heading(), r.output()).isZero();
                Runbook.Block expected = book.outputOf(b);
                if (expected != null)
                    assertThat(outputMismatch(expected.text(), r.output()))
                            .as("%s: the output shown at %s is not what the block printed", b.where(), expected.where()).isNull();
                for (Runbook.Command c : b.commands()) {
                    ran.add(c.step());
                    boolean real = !c.args().contains("--dry-run") && !c.args().contains("--print");
                    RunbookLab.Cluster cluster = lab.cluster(contextOf(c));
                    if (real && upgradeStep(c, cluster)) continue;
                    if (real && c.step().equals("install-asm")) {
                        say("  ISTIOCTL (stand-in): " + lab.istioctlCalledAsTheGuideSays(shell));
                        say("  ISTIOD (stand-in) starts in " + cluster.context + ": " + cluster.istiodStarts(shell.variable("KEK_ID")));
                        istiodStarted = true;
                    }
                    if (real && c.step().equals("enable-injection") && c.args().contains("--restart")) {
                        String ns = valueOf(c, "--namespace");
                        say("  INJECTOR and KUBELET (stand-ins) in " + cluster.context + ": " + cluster.podsGetSidecars(ns));
                    }
                    if (real && c.step().equals("upload-chain") && !cluster.kubeletRunning()) {
                        say("  ISTIOD (stand-in) in " + cluster.context + " finds its CA: " + cluster.istiodLoadsChain());
                        istiodLoaded = true;
                    }
                }
            }
            default -> throw new AssertionError(b.where() + ": unknown mark " + b.mark());
        }
    }

    // ------------------------------------------------------------------ runbook 18, the canary upgrade

    static final String UPGRADE = "18-upgrade.md";

    /**
     * Runbook 18 changes the revision the earlier runbooks installed: it is walked after their second
     * paste (which re-installs the guide's revision), and its own run blocks are pasted twice there.
     */
    static boolean walkedOnItsOwn(Runbook book) {
        return book.file.equals(UPGRADE) || book.file.equals(TEARDOWN);
    }

    void canaryUpgrade() throws Exception {
        Runbook book = Runbook.all("").stream().filter(b -> b.file.equals(UPGRADE)).findFirst().orElseThrow();
        say("\n=================== runbooks/" + book.file);
        for (Runbook.Block b : book.blocks) if (b.shell()) paste(book, b);
        say("\n=================== runbooks/" + book.file + ": every run block pasted again");
        for (Runbook.Block b : book.blocks) {
            if (!b.run()) continue;
            RunbookShell.Result r = shell.run(b.text(), BLOCK_TIMEOUT_SECONDS);
            say(String.format("  %-32s exit %d  %s", b.where(), r.exit(), firstLine(r.output())));
            assertThat(r.exit()).as("%s pasted a second time failed:%n%s", b.where(), r.output()).isZero();
        }
        var revisions = Istio.revisions(lab.clusters.get(0).client);
        assertThat(revisions).as("the old revision is gone, the new one runs").containsExactly(RunbookLab.upgradeAnswers().get("NEW_REVISION"));
        statusIsAllDone();
    }

    // ------------------------------------------------------------------ runbook 19, the teardown

    static final String TEARDOWN = "19-teardown.md";

    /**
     * Runbook 19 ends the walk: istiod uninstalled from the first cluster, its setup torn down (twice: the
     * second run has nothing to remove). Then, without the toolkit, what teardown removed is gone (bao, the
     * API server) and the second cluster's setup is untouched.
     */
    void teardown() throws Exception {
        Runbook book = Runbook.all("").stream().filter(b -> b.file.equals(TEARDOWN)).findFirst().orElseThrow();
        int copies = lab.rootCopies();
        say("\n=================== runbooks/" + book.file);
        for (Runbook.Block b : book.blocks) if (b.shell()) paste(book, b);

        say("\n=================== after the teardown of c1 (bao, the API servers, the files)");
        RunbookLab.Cluster c1 = lab.clusters.get(0), c2 = lab.clusters.get(1);
        assertThat(Istio.revisions(c1.client)).as("istiod uninstalled in " + c1.context).isEmpty();
        assertThat(lab.rootCopies()).as("without --hsm the HSM keeps its objects (the root's copies, seen by pkcs11-tool)").isEqualTo(copies);
        String mounts = shell.run("vault secrets list -format=json", 60).output(), auths = shell.run("vault auth list -format=json", 60).output(),
                policies = shell.run("vault policy list", 60).output();
        assertThat(mounts).as("Vault's mounts").doesNotContain("\"asm-c1/\"").contains("\"asm-c2/\"");
        assertThat(auths).as("Vault's auth methods").doesNotContain("\"asm-c1/hsm/\"").contains("\"asm-c2/hsm/\"");
        assertThat(policies.lines().toList()).as("Vault's policies").doesNotContain("asm-c1-hsm-policy").contains("asm-c2-hsm-policy");
        say("  Vault: asm-c1/, auth/asm-c1/hsm and policy asm-c1-hsm-policy gone; asm-c2's there");
        for (RunbookLab.Cluster c : List.of(c1, c2)) {
            boolean gone = c == c1;
            var k = c.client;
            var left = new java.util.LinkedHashMap<String, Object>();
            left.put("Service istio-system/istiod", k.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(KubeLayout.ISTIOD_SERVICE).get());
            left.put("ConfigMap istio-system/vault-tls-cert", k.configMaps().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(KubeLayout.VAULT_CA_CONFIGMAP).get());
            left.put("Secret vault/default-token", k.secrets().inNamespace(KubeLayout.VAULT_NAMESPACE).withName(KubeLayout.TOKENREVIEW_SECRET).get());
            left.put("ClusterRoleBinding role-tokenreview-binding", k.rbac().clusterRoleBindings().withName(KubeLayout.TOKENREVIEW_BINDING).get());
            left.forEach((what, o) -> assertThat(o).as("%s in %s", what, c.context).matches(x -> gone == (x == null), gone ? "gone" : "there"));
            say("  " + c.context + ": " + String.join(", ", left.keySet()) + (gone ? " gone" : " there"));
        }
        java.nio.file.Path work = lab.work;
        assertThat(work.resolve("c1")).as("c1's folder of k8s-vault-prep files").doesNotExist();
        assertThat(work.resolve("c2").resolve("c2-k8s_addr")).exists();

        RunbookShell.Result again = shell.run("cd \"$ASM_WORK\" && jbang asm@org teardown --cluster-suffix c1 --json", 300);
        assertThat(again.exit()).as(again.output()).isZero();
        JsonNode doc = JsonMapper.builder().build().readTree(again.output().substring(again.output().indexOf('{')));
        assertThat(doc.path("changed").asBoolean()).as("a teardown after the teardown changes nothing:%n%s", again.output()).isFalse();
        statusIsAllDone("c2", c2.context);
    }

    /** install-asm of another revision than the guide's (its istiod starts beside the old one), or --uninstall; false for any other step. */
    boolean upgradeStep(Runbook.Command c, RunbookLab.Cluster cluster) throws Exception {
        if (!c.step().equals("install-asm")) return false;
        String rev = valueOf(c, "--revision");
        if (c.args().contains("--uninstall")) {
            say("  ISTIOCTL (stand-in) in " + cluster.context + ": removed revision " + rev + "; istiod revisions left: " + Istio.revisions(cluster.client));
            return true;
        }
        if (rev == null || rev.equals(Istio.GUIDE_REVISION)) return false;
        say("  ISTIOD (stand-in) revision " + rev + " starts in " + cluster.context + " beside the old one: " + cluster.canaryStarts(rev));
        return true;
    }

    /**
     * Each suffix is bound to the cluster k8s-vault-prep read: given the other cluster's context,
     * the steps that take a suffix refuse (exit 2, naming both) and change nothing.
     */
    void suffixesRefuseTheOtherCluster() throws Exception {
        say("\n=================== contexts swapped: each suffix with the other cluster's context");
        String[][] swapped = {{"c1", lab.clusters.get(1).context}, {"c2", lab.clusters.get(0).context}};
        for (String[] sc : swapped)
            for (String step : List.of("k8s-vault-prep", "vault-verify", "status")) {
                RunbookShell.Result r = shell.run("(cd \"$ASM_WORK\" && CLUSTER_SUFFIX=" + sc[0] + " jbang asm@org " + step + " --context "
                        + RunbookShell.quote(sc[1]) + ")", 300);
                String error = r.output().lines().filter(l -> l.startsWith("error: ")).findFirst().orElse("(no error line)");
                say(String.format("  CLUSTER_SUFFIX=%s %s --context %s: exit %d  %s", sc[0], step, sc[1], r.exit(), error));
                assertThat(r.exit()).as("%s with suffix %s on context %s:%n%s", step, sc[0], sc[1], r.output()).isEqualTo(2);
                String bound = sc[1].equals(lab.clusters.get(0).context) ? lab.clusters.get(1).context : lab.clusters.get(0).context;
                assertThat(error).as("the refusal names the suffix's cluster and the one given").contains("belongs to another cluster")
                        .contains("'" + bound + "'").contains("'" + sc[1] + "'");
            }
        statusIsAllDone();
    }

    /** The value of a command's --context, its shell variables filled in from the session; null when it names none. */
    String contextOf(Runbook.Command c) {
        return valueOf(c, "--context");
    }

    /** The value of a command's option, its shell variable filled in from the session; null when it is not given. */
    String valueOf(Runbook.Command c, String option) {
        int i = c.args().indexOf(option);
        if (i < 0 || i + 1 >= c.args().size()) return null;
        String word = c.args().get(i + 1).replaceAll("^\"|\"$", "");
        var m = Pattern.compile("^\\$\\{?([A-Za-z_][A-Za-z0-9_]*)}?$").matcher(word);
        return m.matches() ? shell.variable(m.group(1)) : word;
    }

    /** A manual block: the operator types their own values; the lab answers with its values, exported in the session. */
    void answer(Runbook.Block b) {
        Map<String, String> answers = lab.answers(b.file()), env = lab.environment();
        StringBuilder exports = new StringBuilder();
        for (String name : b.exports()) {
            if (answers.containsKey(name)) {
                exports.append("export ").append(name).append('=').append(RunbookShell.quote(answers.get(name))).append('\n');
                say("  lab: " + name + "=" + answers.get(name));
            } else if (env.containsKey(name)) {
                say("  lab: " + name + " is set by tests/lab/up: " + env.get(name));
            } else if (RunbookLab.NOT_IN_THE_LAB.containsKey(name)) {
                say("  lab: " + name + " stays unset: " + RunbookLab.NOT_IN_THE_LAB.get(name));
            } else {
                throw new AssertionError(b.where() + ": the manual block sets " + name + ", for which the lab has no value (RunbookLab.answers)");
            }
        }
        if (exports.length() > 0) {
            RunbookShell.Result r = shell.run(exports.toString(), 30);
            assertThat(r.exit()).as(r.output()).isZero();
        }
    }

    /** `status --json` of each cluster, with its suffix and context: every line of the checklist done. */
    void statusIsAllDone() throws Exception {
        for (int i = 0; i < lab.clusters.size(); i++) statusIsAllDone("c" + (i + 1), lab.clusters.get(i).context);
    }

    void statusIsAllDone(String suffix, String context) throws Exception {
        say("\n=================== status of " + suffix + " (" + context + ")");
        RunbookShell.Result status = shell.run("(cd \"$ASM_WORK\" && CLUSTER_SUFFIX=" + suffix + " jbang asm@org status --json --context "
                + RunbookShell.quote(context) + " 2>status.err)", 300);
        JsonNode doc = JsonMapper.builder().build().readTree(status.output());
        List<String> notDone = new ArrayList<>();
        for (JsonNode line : doc.path("checks")) {
            say(String.format("  %-8s %-36s %s", line.path("state").asString(), line.path("name").asString(), line.path("detail").asString()));
            if (!"done".equals(line.path("state").asString())) notDone.add(line.path("name").asString() + ": " + line.path("detail").asString());
        }
        assertThat(doc.path("checks").size()).as("status lines").isGreaterThan(10);
        assertThat(notDone).as("status lines not done after the runbooks ran").isEmpty();
        assertThat(status.exit()).isZero();
    }

    /**
     * Null when every line of {@code expected} was printed (each by its own line of {@code actual},
     * in any order: steps list HSM objects, for one, in the order the HSM returns them); in an
     * expected line {@code <...>} stands for any text, a line "..." for nothing (a reminder that
     * lines are left out) and a run of spaces for any spacing. Else the first line not printed.
     */
    static String outputMismatch(String expected, String actual) {
        List<String> lines = new ArrayList<>();
        for (String raw : actual.split("\n")) // a terminal shows what follows the last carriage return
            lines.add(raw.substring(raw.lastIndexOf('\r') + 1).replaceAll("\u001b\\[[0-9;]*[A-Za-z]", "").strip());
        for (String want : expected.split("\n")) {
            String w = want.strip();
            if (w.isEmpty() || w.equals("...")) continue;
            StringBuilder re = new StringBuilder();
            for (String part : w.split("<[^<>]+>", -1)) {
                if (re.length() > 0) re.append(".*?");
                String[] words = part.split("\\s+", -1);
                for (int i = 0; i < words.length; i++) re.append(i > 0 ? "\\s+" : "").append(Pattern.quote(words[i]));
            }
            Pattern p = Pattern.compile(re.toString());
            int found = -1;
            for (int i = 0; i < lines.size() && found < 0; i++) if (p.matcher(lines.get(i)).matches()) found = i;
            if (found < 0) return "not printed: " + w;
            lines.remove(found);
        }
        return null;
    }

    void say(String s) {
        System.out.println(s);
    }

    static String indent(String text, String prefix) {
        return prefix + text.replace("\n", "\n" + prefix);
    }

    static String firstLine(String output) {
        for (String l : output.split("\n"))
            if (!l.isBlank() && !l.startsWith("SLF4J") && !l.contains("[warning][cds]")) return l.strip();
        return "";
    }
}
