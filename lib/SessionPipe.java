package asmhsm;

import java.io.Closeable;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * The launcher's way into a session: a named pipe beside the session's socket, so that an `asm`
 * call through tests/jbang-launcher is answered with no JVM on the caller's side (bash, mkfifo
 * and cat), where {@link Session#forward} costs a JVM start of about 100 ms a call.
 *
 * <p>The launcher names the session's context for itself (a checksum of the alias's kept command
 * line, the folder and the environment) and passes that name to `asm session start` in
 * {@link #VARIABLE}; the session makes its pipe under that name. A later call through the launcher
 * in the same context finds the pipe and writes one line: its pid, a folder of its own (made 0700 in
 * the sessions' folder, holding the call's arguments and three pipes of its own: out, err, ctl) and
 * whether its stdout and stderr are one file. The checksum only finds the pipe: the session itself
 * checks that the caller's folder and whole environment (/proc/PID/cwd, /proc/PID/environ) are its
 * own and that its build is unchanged, and answers `n` (not mine: the caller runs the step in its own
 * JVM, as without a session) otherwise. Then `w` (queued), `t` (taken: the step's output follows on
 * out and err) and, once out and err are closed, `x RC`. The caller's Ctrl-C reaches the session
 * as a file named `signal` in its folder; a caller that is gone stops its step too. Only the
 * user can reach any of it: the sessions' folder is 0700 ({@link Session#prepareDir}).
 */
final class SessionPipe implements Closeable {
    /** The launcher's name for this session's context (set for `asm session ...` only); in no key, in no comparison. */
    static final String VARIABLE = "ASM_SESSION_LAUNCH";

    final Path path;
    private final Path dir;
    private final FileChannel requests;
    private final BlockingQueue<Call> calls = new LinkedBlockingQueue<>();
    private final Runnable wake;
    private final Map<String, String> env = Session.environment(null);
    private final Path folder = Path.of("").toAbsolutePath();
    private final List<String> build = Session.build();

    private SessionPipe(Path path, FileChannel requests, Runnable wake) {
        this.path = path;
        this.dir = path.getParent();
        this.requests = requests;
        this.wake = wake;
        Thread reader = new Thread(this::read, "asm-session-pipe");
        reader.setDaemon(true);
        reader.start();
    }

    /** The session's pipe beside its socket, when the launcher started it (else null: calls come over the socket only). */
    static SessionPipe open(Path socket, Runnable wake) {
        String name = Env.get(VARIABLE);
        if (name == null || !name.matches("[0-9]{1,10}-[0-9]{1,19}") || !Files.isReadable(Path.of("/proc/self/environ"))) return null;
        Path path = socket.resolveSibling("launch-" + name + "." + ProcessHandle.current().pid() + ".fifo");
        try (var old = Files.newDirectoryStream(socket.getParent(), "launch-" + name + ".*.fifo")) {
            for (Path o : old) {       // left by sessions that were killed
                String pid = o.getFileName().toString().replaceAll("^.*\\.([0-9]+)\\.fifo$", "$1");
                if (!pid.matches("[0-9]{1,10}") || gone(Long.parseLong(pid)) || o.equals(path)) Files.deleteIfExists(o);
            }
        } catch (IOException e) {
            // the new pipe's name is its own; old ones only cost their callers a check
        }
        // call folders (call.PID.*) of callers killed before they wrote their request
        try (var calls = Files.newDirectoryStream(socket.getParent(), "call.*")) {
            for (Path c : calls) {
                String pid = c.getFileName().toString().replaceAll("^call\\.([0-9]+)\\..*$", "$1");
                if (pid.matches("[0-9]{1,10}") && gone(Long.parseLong(pid)) && Files.isDirectory(c, LinkOption.NOFOLLOW_LINKS)) remove(c);
            }
        } catch (IOException e) {
            // left for the next start
        }
        try {
            Process p = new ProcessBuilder("mkfifo", "-m", "600", path.toString()).redirectErrorStream(true).start();
            String said = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (p.waitFor() != 0) throw new IOException(said);
            // read and write: the pipe never reads as ended while the session is up, and opening it never waits
            return new SessionPipe(path, FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS), wake);
        } catch (IOException | InterruptedException e) {
            System.err.println("asm session: no pipe for the launcher (" + e.getMessage() + "); calls through it start a JVM each");
            return null;
        }
    }

    /** The next call the launcher queued, or null. */
    Call next() {
        return calls.poll();
    }

    @Override
    public void close() throws IOException {
        Files.deleteIfExists(path);
        requests.close();
        for (Call c = calls.poll(); c != null; c = calls.poll()) c.close();   // they run in their own JVMs
    }

    private void read() {
        // bytes, split at newlines here: a Reader on a FileChannel waits to fill its buffer, as for a file
        try (var in = Channels.newInputStream(requests)) {
            var line = new java.io.ByteArrayOutputStream();
            byte[] buf = new byte[4096];
            for (int n = in.read(buf); n > 0; n = in.read(buf)) {
                for (int i = 0; i < n; i++) {
                    if (buf[i] != '\n') {
                        if (line.size() < 4096) line.write(buf[i]);     // a request line is far shorter
                        continue;
                    }
                    take(line.toString(StandardCharsets.US_ASCII));
                    line.reset();
                }
            }
        } catch (IOException e) {
            // closed: the session is ending
        }
    }

    /** One request: queued (w) or refused (n); a caller that cannot be answered is dropped, never the pipe. */
    private void take(String request) {
        Call c = Call.of(request, this);
        if (c == null) return;
        try {
            if (c.mine()) {
                c.answer("w");
                calls.add(c);
                wake.run();
                return;
            }
            c.answer("n");
        } catch (IOException e) {
            // that caller's ctl is gone: nothing to say to it
        }
        c.close();
    }

    /** A gone caller's folder (its pipes and files). */
    static void remove(Path dir) {
        try {
            Release.deleteTree(dir);
        } catch (IOException ignored) {
            // it is gone already
        }
    }

    /** Whether a process has ended (a zombie not yet reaped has too). */
    static boolean gone(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"), StandardCharsets.ISO_8859_1);
            int end = stat.lastIndexOf(')');
            return end < 0 || end + 2 >= stat.length() || stat.charAt(end + 2) == 'Z' || stat.charAt(end + 2) == 'X';
        } catch (IOException | RuntimeException e) {
            return true;
        }
    }

    /** One call through the launcher: its process, its folder and pipes. */
    static final class Call implements Session.Caller, Closeable {
        final long pid;
        final Path dir;
        final boolean merged;
        final String[] args;
        private final SessionPipe pipe;
        private final FileChannel ctl;
        private FileChannel out, err;
        private OutputStream outStream, errStream;
        private volatile boolean closed;

        private Call(long pid, Path dir, boolean merged, String[] args, SessionPipe pipe, FileChannel ctl) {
            this.pid = pid;
            this.dir = dir;
            this.merged = merged;
            this.args = args;
            this.pipe = pipe;
            this.ctl = ctl;
        }

        /** The call a request line names, or null for a line that names none (nothing to answer). */
        static Call of(String line, SessionPipe pipe) {
            String[] w = line.split(" ");
            if (w.length != 3 || !w[0].matches("[0-9]{1,10}") || !w[2].matches("[01]")) return null;
            try {
                Path dir = Path.of(w[1]);
                // the caller's own folder in the sessions' folder (0700, this user's), no link
                if (!dir.isAbsolute() || !dir.normalize().equals(dir) || !pipe.dir.equals(dir.getParent())
                        || !dir.getFileName().toString().startsWith("call.")
                        || !Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)
                        || !Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS).getName().equals(System.getProperty("user.name")))
                    return null;
                for (String f : new String[] {"ctl", "out", "err"})
                    if (!Files.readAttributes(dir.resolve(f), PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS).isOther()) return null;
                Path argsFile = dir.resolve("args");
                if (!Files.isRegularFile(argsFile, LinkOption.NOFOLLOW_LINKS) || Files.size(argsFile) > (1 << 20)) return null;
                byte[] raw = Files.readAllBytes(argsFile);
                List<String> fields = new ArrayList<>();
                for (int start = 0, i = 0; i < raw.length; i++) {
                    if (raw[i] != 0) continue;
                    fields.add(new String(raw, start, i - start, Session.jnu()));     // as the JVM decodes its own arguments
                    start = i + 1;
                }
                if (fields.isEmpty() || !fields.get(0).matches("[0-9]{1,6}") || Integer.parseInt(fields.get(0)) != fields.size() - 1) return null;
                FileChannel ctl = FileChannel.open(dir.resolve("ctl"), StandardOpenOption.READ, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS);
                return new Call(Long.parseLong(w[0]), dir, w[2].equals("1"), fields.subList(1, fields.size()).toArray(String[]::new), pipe, ctl);
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }

        /** Whether the session runs this call: a caller in its folder, with its whole environment, of its build, for a step. */
        boolean mine() {
            if (args.length > 0 && (args[0].equals("session") || args[0].equals("warm-up"))) return false;
            try {
                return !gone() && Files.readSymbolicLink(Path.of("/proc", Long.toString(pid), "cwd")).equals(pipe.folder)
                        && pipe.env.equals(Session.environment(pid)) && pipe.build.equals(Session.build());
            } catch (IOException | RuntimeException e) {
                return false;
            }
        }

        boolean gone() {
            return SessionPipe.gone(pid);
        }

        void answer(String line) throws IOException {
            write(ctl, (line + "\n").getBytes(StandardCharsets.US_ASCII));
        }

        private static void write(FileChannel ch, byte[] body) throws IOException {
            ByteBuffer b = ByteBuffer.wrap(body);
            while (b.hasRemaining()) ch.write(b);
        }

        @Override
        public void notMine() throws IOException {
            answer("n");
        }

        @Override
        public void taken() throws IOException {
            // read and write, as the caller holds them until it reads: opening never waits for a reader
            out = FileChannel.open(dir.resolve("out"), StandardOpenOption.READ, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS);
            FileChannel o = out;
            outStream = new Session.Sink(o, body -> write(o, body));
            if (merged) {
                errStream = outStream;      // one file: the caller sees its lines in the order they came
            } else {
                err = FileChannel.open(dir.resolve("err"), StandardOpenOption.READ, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS);
                FileChannel e = err;
                errStream = new Session.Sink(e, body -> write(e, body));
            }
            answer("t");
        }

        @Override
        public OutputStream out() {
            return outStream;
        }

        @Override
        public OutputStream err() {
            return errStream;
        }

        @Override
        public String awaitStop() {
            Path signal = dir.resolve("signal");
            while (!closed) {
                try {
                    if (Files.exists(signal, LinkOption.NOFOLLOW_LINKS))
                        return Files.readString(signal, StandardCharsets.US_ASCII).strip().equals("TERM") ? "SIGTERM" : "SIGINT";
                    if (gone()) return "the caller going away";
                    Thread.sleep(50);
                } catch (IOException e) {
                    return "the caller going away";
                } catch (InterruptedException e) {
                    return null;
                }
            }
            return null;
        }

        @Override
        public void exit(int rc) throws IOException {
            // out and err end first: the caller's cat ends, then it reads the exit code
            if (out != null) out.close();
            if (err != null) err.close();
            answer("x " + rc);
        }

        @Override
        public void close() {
            closed = true;
            for (FileChannel c : new FileChannel[] {out, err, ctl}) {
                try {
                    if (c != null) c.close();
                } catch (IOException ignored) {
                    // nothing more to say to that caller
                }
            }
            if (gone()) remove(dir);    // a caller killed before it could tidy up leaves its folder
        }
    }
}
