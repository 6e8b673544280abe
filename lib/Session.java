package asmhsm;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;

/**
 * `asm session`: one warm JVM that runs `asm` steps for the shell that started it, as ssh-agent
 * keeps keys for one. A step in its own JVM spends most of its time starting that JVM and
 * loading the libraries; in the session it spends only its own work.
 *
 * <p>A session is bound to what a step's result depends on outside its arguments: the build,
 * the java, the working folder and the whole environment (KUBECONFIG, VAULT_TOKEN, P11_*,
 * SOFTHSM2_CONF, PATH...). Its socket is named by a hash of all of them, so an `asm` call from
 * another folder or with any variable changed finds no session and runs in its own JVM, as
 * without one. So nothing but the arguments crosses the socket (no variable, no secret), and
 * relative paths and child processes behave as in the caller's own JVM.
 *
 * <p>Only the user who started it can use it: the socket lives in a folder only that user can
 * open, and the session checks each caller's uid. It runs one step at a time (a second caller
 * waits), ends after an idle time (default 30 min) or with `asm session stop`, and a caller that
 * is interrupted (Ctrl-C) stops its step as in a JVM of its own (see Interrupt) and relays its answer
 * (exit 130); one that goes away stops it too. Steps read no standard input, and get none here.
 * Kubernetes clients are kept between steps while their kubeconfig is unchanged and in use
 * (see Startup.Clients); the PKCS#11 library stays loaded, as in `asm run`.
 */
public final class Session {
    private Session() {}

    static final String MAGIC = "asm-session-1";
    /** Variables a shell changes by itself; nothing in the toolkit reads them. */
    static final Set<String> SHELL_OWN = Set.of("_", "SHLVL", "OLDPWD", "PWD");
    static final String DEFAULT_IDLE = "30m";
    static final int WARM_UP_ROUNDS = 3;
    static final Duration KUBE_IDLE = Duration.ofSeconds(60);

    // frames, session -> caller: kind byte, then a length-prefixed body
    static final byte TAKEN = 't', OUT = 'o', ERR = 'e', EXIT = 'x', NOT_MINE = 'n';
    // requests, caller -> session; then, while its step runs, the signal the caller got
    static final byte RUN = 'r', STATUS = 's', STOP = 'q', SIGINT = 'i', SIGTERM = 'T';

    /** Sessions' sockets: ASM_SESSION_DIR, else $XDG_RUNTIME_DIR/asm-hsm, else ~/.cache/asm-hsm/session. */
    static Path dir() {
        String d = Env.get("ASM_SESSION_DIR");
        if (d != null) return Path.of(d);
        String run = Env.get("XDG_RUNTIME_DIR");
        return run != null ? Path.of(run, "asm-hsm") : Env.userHome().resolve(".cache/asm-hsm/session");
    }

    /**
     * What this process would find a session by: a hash of build, java, folder and environment.
     * FNV-1a, 64 bits: it only has to tell apart the few contexts one user's sessions run in (the
     * socket folder is that user's alone), and a call through a session computes it before
     * anything else, where a MessageDigest would first start the security providers.
     * No lambdas or string concatenation here either: each one a call spins costs it time.
     */
    static String key() {
        List<String> parts = new ArrayList<>(List.of(MAGIC, System.getProperty("java.class.path", ""), System.getProperty("java.home"),
                Path.of("").toAbsolutePath().toString()));
        parts.addAll(build());
        for (Map.Entry<String, String> e : new TreeMap<>(environment(null)).entrySet()) {
            parts.add(e.getKey());
            parts.add(e.getValue());
        }
        long h = 0xcbf29ce484222325L;
        for (String p : parts) {
            for (int i = 0; i < p.length(); i++) h = (h ^ p.charAt(i)) * 0x100000001b3L;
            h = (h ^ 0xffff) * 0x100000001b3L;          // a separator no char can be mistaken for
        }
        return HexFormat.of().formatHex(ByteBuffer.allocate(8).putLong(h).array());
    }

    /** The build this JVM runs: JBang's jar (the class path's first entry, its path names the sources' hash), and its time and size (a rebuild). */
    static List<String> build() {
        String cp = System.getProperty("java.class.path", "");
        int sep = cp.indexOf(java.io.File.pathSeparatorChar);
        Path first = Path.of(sep < 0 ? cp : cp.substring(0, sep));
        List<String> build = new ArrayList<>(List.of(first.toString()));
        try {
            if (Files.isRegularFile(first)) {
                build.add(Long.toString(Files.getLastModifiedTime(first).toMillis()));
                build.add(Long.toString(Files.size(first)));
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return build;
    }

    /**
     * The environment a session is bound to: this process's (pid null) or another's (/proc/PID/environ,
     * null if unreadable), without what a shell changes by itself and the launcher's name for the
     * session (tests/jbang-launcher leaves out the same).
     */
    static Map<String, String> environment(Long pid) {
        Map<String, String> env = new java.util.HashMap<>();
        if (pid == null) {
            env.putAll(System.getenv());
        } else {
            byte[] raw;
            try {
                raw = Files.readAllBytes(Path.of("/proc", pid.toString(), "environ"));
            } catch (IOException e) {
                return null;
            }
            int start = 0;
            for (int i = 0; i <= raw.length; i++) {
                if (i < raw.length && raw[i] != 0) continue;
                String v = new String(raw, start, i - start, jnu());     // as the JVM decodes its own (System.getenv)
                int eq = v.indexOf('=');
                if (eq > 0) env.put(v.substring(0, eq), v.substring(eq + 1));
                start = i + 1;
            }
        }
        env.keySet().removeAll(SHELL_OWN);
        env.remove(SessionPipe.VARIABLE);
        return env;
    }

    /** How this JVM decodes its command line and environment. */
    static java.nio.charset.Charset jnu() {
        return java.nio.charset.Charset.forName(System.getProperty("sun.jnu.encoding", java.nio.charset.Charset.defaultCharset().name()));
    }

    static Path socket(String key) {
        return dir().resolve(key.concat(".sock"));
    }

    // ------------------------------------------------------------------ the caller's side

    /**
     * Runs `asm args` in this shell's session, relaying its output and returning its exit code;
     * null when there is no session for this folder and environment (the caller then runs the
     * step itself). Uses nothing but java.base, so that a call through a session starts fast.
     */
    public static Integer forward(String... args) {
        if (args.length > 0 && (args[0].equals("session") || args[0].equals("warm-up"))) return null;
        String key;
        Path socket;
        try {
            key = key();
            socket = socket(key);
        } catch (RuntimeException e) {
            return null;
        }
        if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) return null;
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            send(ch, request(RUN, key, args));
            passSignals(ch);
            return relay(ch, new FileOutputStream(FileDescriptor.out), new FileOutputStream(FileDescriptor.err));
        } catch (IOException e) {
            return null;    // a session that is gone (its socket left behind): run here
        }
    }

    /**
     * The session's frames to this process's stdout and stderr; its exit code, or null if it did
     * not take the call. Once it has taken the call, a lost connection is the step's failure (exit
     * 1), never a reason to run the step again here.
     */
    static Integer relay(SocketChannel ch, OutputStream stdout, OutputStream stderr) throws IOException {
        boolean taken = false;
        while (true) {
            int kind;
            byte[] body;
            try {
                kind = readFully(ch, 1)[0];
                body = readFully(ch, ByteBuffer.wrap(readFully(ch, 4)).getInt());
                if (kind != TAKEN && kind != OUT && kind != ERR && kind != EXIT && kind != NOT_MINE)
                    throw new IOException("unknown frame " + kind);
                if (kind == EXIT && body.length != 4) throw new IOException("exit frame of " + body.length + " bytes");
            } catch (IOException e) {
                if (!taken) return null;
                stderr.write(("error: the asm session ended before the step did (" + e.getMessage() + ")\n"
                        + "  -> check what the step changed (asm status), then run it again\n").getBytes(StandardCharsets.UTF_8));
                return 1;
            }
            switch (kind) {
                case TAKEN -> taken = true;
                case OUT -> { taken = true; stdout.write(body); stdout.flush(); }
                case ERR -> { taken = true; stderr.write(body); stderr.flush(); }
                case EXIT -> { return ByteBuffer.wrap(body).getInt(); }
                default -> { return taken ? 1 : null; }     // NOT_MINE: only ever sent first
            }
        }
    }

    /**
     * Ctrl-C (or SIGTERM) of the caller goes to its step in the session, which stops as in a JVM of its own
     * (see Interrupt) and answers with its state and exit 130, relayed as any answer. A second one ends
     * the caller at once, unless it is the first sent twice (Interrupt.sameSignalAgain).
     */
    private static void passSignals(SocketChannel ch) {
        CallerSignals handler = new CallerSignals(ch);
        for (String name : new String[] {"INT", "TERM"}) {
            try {
                sun.misc.Signal.handle(new sun.misc.Signal(name), handler);
            } catch (IllegalArgumentException | UnsupportedOperationException | LinkageError e) {
                // the JVM's own handling stays: the caller ends, the session stops its step as for a caller gone
            }
        }
    }

    /** The caller's signal handler (a class, not a lambda: a call through a session spins none, see key()). */
    private static final class CallerSignals implements sun.misc.SignalHandler {
        private final SocketChannel ch;
        private boolean sent;
        private long sentAt;

        CallerSignals(SocketChannel ch) {
            this.ch = ch;
        }

        @Override
        public void handle(sun.misc.Signal signal) {
            synchronized (this) {
                if (sent) {
                    if (Interrupt.sameSignalAgain(sentAt)) return;
                    // a second one: do not wait (the launcher's pipe says the same, tests/jbang-launcher)
                    System.err.println("error: interrupted by SIG" + signal.getName() + " again; the step in the asm session was told to stop"
                            + " and may still be stopping\n  -> check what it changed (asm status) before running it again");
                    Runtime.getRuntime().halt(Interrupt.EXIT);
                }
                sent = true;
                sentAt = System.nanoTime();
            }
            try {
                send(ch, new byte[] {signal.getName().equals("TERM") ? SIGTERM : SIGINT});
                ch.shutdownOutput();
                Thread.sleep(2 * Interrupt.GRACE_SECONDS * 1000);           // the answer ends this process long before
                System.err.println("error: interrupted by SIG" + signal.getName() + "; the asm session did not answer within "
                        + 2 * Interrupt.GRACE_SECONDS + " s\n  -> check what the step changed (asm status), then run it again");
            } catch (IOException | InterruptedException e) {
                // the session is gone: nothing to wait for
            }
            Runtime.getRuntime().halt(Interrupt.EXIT);
        }
    }

    static byte[] request(byte what, String key, String... args) {
        try {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            DataOutputStream o = new DataOutputStream(b);
            o.writeUTF(MAGIC);
            o.writeByte(what);
            o.writeUTF(key);
            o.writeInt(args.length);
            for (String a : args) {
                byte[] s = a.getBytes(StandardCharsets.UTF_8);
                o.writeInt(s.length);
                o.write(s);
            }
            byte[] body = b.toByteArray();
            return ByteBuffer.allocate(4 + body.length).putInt(body.length).put(body).array();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static void send(SocketChannel ch, byte[] bytes) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) ch.write(b);
    }

    static byte[] readFully(SocketChannel ch, int n) throws IOException {
        if (n < 0 || n > (64 << 20)) throw new IOException("frame of " + n + " bytes");
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) if (ch.read(b) < 0) throw new EOFException();
        return b.array();
    }

    /** A request to the session of this folder and environment: stop or status; null when there is none. */
    static String ask(byte what) {
        String key = key();
        Path socket = socket(key);
        if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) return null;
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            send(ch, request(what, key));
            ByteArrayOutputStream text = new ByteArrayOutputStream();
            Integer rc = relay(ch, text, text);
            return rc == null ? null : text.toString(StandardCharsets.UTF_8);
        } catch (IOException e) {
            return null;
        }
    }

    /**
     * The caller's path up to the socket, for asm warm-up: the class-data archive then holds what
     * a call through a session needs (hashing, the socket classes), which it loads in every step.
     */
    static void train() {
        String key = key();
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(dir().resolve("warm-up-" + key + ".none")));
        } catch (IOException expected) {
            // there is no such socket: only the classes on the way were wanted
        }
        request(RUN, key, "warm-up");
    }

    // ------------------------------------------------------------------ the session's side

    /**
     * Starts a session for this folder and environment in the background: the same java, JVM
     * options and class path as this process. Returns the socket once the session answers.
     */
    static Path start(Duration idle) {
        Path socket = socket(key());
        if (ask(STATUS) != null) return socket;
        prepareDir();
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        // this JVM's options, but for a long life: the full JIT instead of the quick-start C1 only,
        // and no class-data archive recorded at its exit
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments())
            if (!a.startsWith("-XX:ArchiveClassesAtExit") && !a.startsWith("-XX:+AutoCreateSharedArchive")
                    && !a.startsWith("-XX:TieredStopAtLevel") && !a.startsWith("-Djava.class.path")) cmd.add(a);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "asmhsm.Asm", "session", "serve",
                "--idle", idle.toSeconds() + "s"));
        Path log = log(socket);
        Process p;
        try {
            if (!Files.exists(log)) Files.createFile(log, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            p = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                    .redirectErrorStream(true).start();
        } catch (IOException e) {
            throw Fail.failed("cannot start the session: " + e.getMessage(), "check that " + dir() + " is writable");
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (System.nanoTime() < deadline) {
            if (ask(STATUS) != null) return socket;
            if (!p.isAlive())
                throw Fail.failed("the session did not start (exit " + p.exitValue() + ")", "see " + log);
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        p.destroy();
        throw Fail.failed("the session did not answer within 60 s", "see " + log);
    }

    /** The session's own lines (start, end, one per call: step, exit code, time; never arguments or output). */
    static Path log(Path socket) {
        return socket.resolveSibling(socket.getFileName().toString().replace(".sock", ".log"));
    }

    /** The sockets' folder, only its owner's (0700), like ssh-agent's. */
    static void prepareDir() {
        Path dir = dir();
        try {
            if (!Files.isDirectory(dir))
                Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            Set<PosixFilePermission> perms = Files.getPosixFilePermissions(dir, LinkOption.NOFOLLOW_LINKS);
            if (!perms.equals(PosixFilePermissions.fromString("rwx------")) || Files.isSymbolicLink(dir)
                    || !Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS).getName().equals(System.getProperty("user.name")))
                throw Fail.badInput("session folder " + dir + " is not yours alone (mode " + PosixFilePermissions.toString(perms) + ")",
                        "run: chmod 700 " + dir + " (or set ASM_SESSION_DIR to a folder only you can open)");
        } catch (IOException e) {
            throw Fail.failed("cannot prepare the session folder " + dir + ": " + e.getMessage(), "check its permissions");
        }
    }

    /**
     * The session itself (`asm session serve`, started by {@link #start}): runs the callers'
     * steps with `runner`, one at a time, until stopped or idle for `idle`.
     */
    static int serve(Duration idle, java.util.function.BiFunction<Startup.Clients, String[], Integer> runner, java.util.concurrent.Callable<?> warmUp) throws IOException {
        prepareDir();
        String key = key();
        Path socket = socket(key);
        if (ask(STATUS) != null) return 0;                      // another one was quicker
        // Load and initialise the libraries' classes, and let the JIT compile their busy paths (TLS,
        // JSON), before taking calls: a step's first call is then as quick as its later ones
        // (asm session start waits for this).
        try {
            for (int i = 0; i < WARM_UP_ROUNDS; i++) warmUp.call();
        } catch (Exception e) {
            System.err.println("asm session: warm-up failed (" + Step.describe(e) + "); going on cold");
        }
        // steps share Kubernetes clients (and their TLS connection) while the kubeconfig and its
        // files are unchanged and the client was used within the last minute
        Startup.Clients shared = new Startup.Clients(KUBE_IDLE);
        Files.deleteIfExists(socket);                           // left by a session that was killed
        String me = System.getProperty("user.name");
        Instant since = Instant.now();
        PrintStream ownOut = System.out, ownErr = System.err;
        try (shared; ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
             Selector selector = Selector.open();
             SessionPipe pipe = SessionPipe.open(socket, selector::wakeup)) {
            server.bind(UnixDomainSocketAddress.of(socket));
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
            // the socket and the log live as long as the session (a killed one leaves both: the next start clears the socket)
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                try {
                    Files.deleteIfExists(socket);
                    Files.deleteIfExists(log(socket));
                    if (pipe != null) Files.deleteIfExists(pipe.path);
                } catch (IOException ignored) {
                    // nothing to tidy then
                }
            }));
            server.configureBlocking(false);
            server.register(selector, SelectionKey.OP_ACCEPT);
            ownErr.println("asm session " + key + " up (pid " + ProcessHandle.current().pid()
                    + ") in " + Path.of("").toAbsolutePath() + (pipe == null ? "" : "; launcher's pipe " + pipe.path));
            long last = System.nanoTime();
            Calls calls = new Calls(socket, pipe, runner, shared, ownErr);
            while (true) {
                long left = idle.toMillis() - (System.nanoTime() - last) / 1_000_000;
                if (!idle.isZero() && left <= 0) {
                    calls.end();
                    ownErr.println("asm session: idle for " + idle.toSeconds() + " s, ending");
                    return 0;
                }
                int ready = selector.select(idle.isZero() ? 0 : left);
                // the launcher's calls (tests/jbang-launcher, no JVM on its side), in the order they came
                for (SessionPipe.Call next = pipe == null ? null : pipe.next(); next != null; next = pipe.next()) {
                    last = System.nanoTime();
                    try (SessionPipe.Call c = next) {
                        if (!c.gone() && !calls.serve(c, c.args)) return 0;     // a caller gone while queued: nothing to run
                    } catch (IOException e) {
                        ownErr.println("asm session: a caller went away: " + e.getMessage());
                    } finally {
                        System.setOut(ownOut);
                        System.setErr(ownErr);
                        Thread.interrupted();
                    }
                }
                if (ready == 0) continue;   // woken early: look at the clock again
                selector.selectedKeys().clear();
                last = System.nanoTime();
                SocketChannel ch = server.accept();
                if (ch == null) continue;
                try (ch) {
                    UnixDomainPrincipal peer = ch.getOption(ExtendedSocketOptions.SO_PEERCRED);
                    if (!peer.user().getName().equals(me)) continue;   // not our user: say nothing
                    DataInputStream in = new DataInputStream(new ByteArrayInputStream(readFully(ch,
                            ByteBuffer.wrap(readFully(ch, 4)).getInt())));
                    if (!in.readUTF().equals(MAGIC)) continue;
                    byte what = in.readByte();
                    if (!in.readUTF().equals(key)) {
                        send(ch, frame(NOT_MINE, new byte[0]));
                        continue;
                    }
                    String[] args = new String[in.readInt()];
                    for (int i = 0; i < args.length; i++) {
                        byte[] s = new byte[in.readInt()];
                        in.readFully(s);
                        args[i] = new String(s, StandardCharsets.UTF_8);
                    }
                    if (what == STOP) {
                        calls.end();                        // gone before the caller hears so
                        send(ch, frame(OUT, ("asm session " + key + " stopped\n").getBytes(StandardCharsets.UTF_8)));
                        send(ch, frame(EXIT, ByteBuffer.allocate(4).putInt(0).array()));
                        return 0;
                    }
                    if (what == STATUS) {
                        String status = "pid=" + ProcessHandle.current().pid() + "\nsince=" + since + "\nserved=" + calls.served
                                + "\nidle=" + idle.toSeconds() + "s\nfolder=" + Path.of("").toAbsolutePath() + "\nsocket=" + socket + "\n"
                                + (pipe == null ? "" : "pipe=" + pipe.path + "\n");
                        send(ch, frame(OUT, status.getBytes(StandardCharsets.UTF_8)));
                        send(ch, frame(EXIT, ByteBuffer.allocate(4).putInt(0).array()));
                        continue;
                    }
                    if (!calls.serve(new SocketCaller(ch), args)) return 0;
                } catch (IOException e) {
                    ownErr.println("asm session: a caller went away: " + e.getMessage());
                } finally {
                    System.setOut(ownOut);
                    System.setErr(ownErr);
                    Thread.interrupted();       // a caller's Ctrl-C must not reach the next step
                }
            }
        }
    }

    /**
     * One caller of a step: over the socket (a JVM of its own, {@link #forward}) or over the launcher's
     * named pipes ({@link SessionPipe}, tests/jbang-launcher, no JVM at all).
     */
    interface Caller {
        /** Not this session's call (a token it cannot see): the caller runs the step itself. */
        void notMine() throws IOException;

        /** From here on the caller never runs the step itself. */
        void taken() throws IOException;

        OutputStream out();

        OutputStream err();

        /** Blocks until the caller passes on a signal (SIGINT, SIGTERM) or goes away (a reason); null once `close`d. */
        String awaitStop();

        void exit(int rc) throws IOException;
    }

    /** A caller over the socket: the frames {@link #relay} reads. */
    static final class SocketCaller implements Caller {
        private final SocketChannel ch;

        SocketCaller(SocketChannel ch) {
            this.ch = ch;
        }

        @Override public void notMine() throws IOException { send(ch, frame(NOT_MINE, new byte[0])); }
        @Override public void taken() throws IOException { send(ch, frame(TAKEN, new byte[0])); }
        @Override public OutputStream out() { return new Sink(ch, body -> send(ch, frame(OUT, body))); }
        @Override public OutputStream err() { return new Sink(ch, body -> send(ch, frame(ERR, body))); }
        @Override public void exit(int rc) throws IOException { send(ch, frame(EXIT, ByteBuffer.allocate(4).putInt(rc).array())); }

        @Override
        public String awaitStop() {
            // the caller sends nothing more but the signal it got (Ctrl-C): this read ends then, or when it goes away (or we close)
            try {
                ByteBuffer b = ByteBuffer.allocate(1);
                if (ch.read(b) == 1) return b.get(0) == SIGTERM ? "SIGTERM" : "SIGINT";
            } catch (IOException e) {
                // closed: the same as gone
            }
            return "the caller going away";
        }
    }

    /** What the serving loop keeps between calls, whichever way they come. */
    static final class Calls {
        private final Path socket;
        private final SessionPipe pipe;
        private final java.util.function.BiFunction<Startup.Clients, String[], Integer> runner;
        private final Startup.Clients shared;
        private final PrintStream log;
        int served;

        Calls(Path socket, SessionPipe pipe, java.util.function.BiFunction<Startup.Clients, String[], Integer> runner,
              Startup.Clients shared, PrintStream log) {
            this.socket = socket;
            this.pipe = pipe;
            this.runner = runner;
            this.shared = shared;
            this.log = log;
        }

        /** Ends the session for new callers: its socket and pipe are gone. */
        void end() throws IOException {
            Files.deleteIfExists(socket);
            if (pipe != null) Files.deleteIfExists(pipe.path);
        }

        /** Runs a caller's step; false when the session must end (the caller then runs it itself). */
        boolean serve(Caller caller, String[] args) throws IOException {
            String unseen = unseenToken(args);
            if (unseen != null) {
                // a new JVM would see that token and this one cannot: the caller runs it, and
                // this session ends, so that the next calls do too
                end();
                caller.notMine();
                log.println("asm session: token '" + unseen + "' appeared after this session loaded its PKCS#11 library; ending");
                return false;
            }
            caller.taken();
            served++;
            long began = System.nanoTime();
            int rc = run(caller, args, a -> runner.apply(shared, a));
            log.printf("asm session: %s exit %d in %d ms%s%n", args.length == 0 ? "(help)" : args[0], rc,
                    (System.nanoTime() - began) / 1_000_000, caller instanceof SocketCaller ? "" : " (launcher's pipe)");
            caller.exit(rc);
            return true;
        }
    }

    /** One step, its stdout and stderr sent to the caller as they come; a caller that goes away interrupts it. */
    private static int run(Caller caller, String[] args, Function<String[], Integer> runner) {
        Thread worker = Thread.currentThread();
        boolean[] running = {true};
        Thread watch = new Thread(() -> {
            String why = caller.awaitStop();
            synchronized (running) {
                // the same stop as a signal to a step's own JVM: it finishes its current change, removes its temporary files
                if (running[0] && why != null) Interrupt.stop(worker, why);
            }
        }, "asm-session-caller");
        watch.setDaemon(true);
        watch.start();
        OutputStream out = caller.out(), err = caller.err();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(err == out ? System.out : new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            return runner.apply(args);
        } catch (RuntimeException | LinkageError e) {
            System.err.println("error: " + Step.describe(e));
            return 1;
        } finally {
            System.out.flush();
            System.err.flush();
            // from here on the watcher may not interrupt: what it did before is cleared once the caller is answered
            synchronized (running) {
                running[0] = false;
            }
        }
    }

    /** The HSM token a call names (--p11-token, else P11_TOKEN) if this process cannot see it (see Hsm.seesToken); else null. */
    static String unseenToken(String[] args) {
        String lib = Env.get("P11_LIB"), token = Env.get("P11_TOKEN");
        List<String> tokens = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--p11-lib") && i + 1 < args.length) lib = args[i + 1];
            else if (a.startsWith("--p11-lib=")) lib = a.substring("--p11-lib=".length());
            else if (a.equals("--p11-token") && i + 1 < args.length) tokens.add(args[i + 1]);
            else if (a.startsWith("--p11-token=")) tokens.add(a.substring("--p11-token=".length()));
        }
        if (tokens.isEmpty() && token != null) tokens.add(token);
        if (lib == null) return null;           // the embedded token: made, when missing, before its library is loaded
        for (String t : tokens) if (!Hsm.seesToken(lib, t)) return t;
        return null;
    }

    static byte[] frame(byte kind, byte[] body) {
        return ByteBuffer.allocate(5 + body.length).put(kind).putInt(body.length).put(body).array();
    }

    /** A stream whose every write goes to the caller at once (as one frame, or into its pipe). */
    static final class Sink extends OutputStream {
        interface Send {
            void send(byte[] body) throws IOException;
        }

        private final Object lock;
        private final Send send;

        Sink(Object lock, Send send) {
            this.lock = lock;
            this.send = send;
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            byte[] body = new byte[len];
            System.arraycopy(b, off, body, 0, len);
            // an interrupted step still reports: a write with the interrupt set would close the channel (and lose the answer)
            boolean interrupted = Thread.interrupted();
            try {
                synchronized (lock) {
                    send.send(body);
                }
            } finally {
                if (interrupted) Thread.currentThread().interrupt();
            }
        }
    }

    /** The status lines of a running session as a map (for `asm session status --json`). */
    static Map<String, String> parseStatus(String text) {
        Map<String, String> m = new TreeMap<>();
        for (String line : text.split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) m.put(line.substring(0, eq), line.substring(eq + 1));
        }
        return m;
    }
}
