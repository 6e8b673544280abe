package asmhsm;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * Ctrl-C (SIGINT) and SIGTERM during a step. The step is stopped, never killed half-way: its
 * thread is interrupted (a wait or a download ends at once) except inside a {@link #unit() unit}
 * (one change made whole, e.g. one Vault write), which finishes first; the step then stops at
 * its next stop point (after each change it reports, {@link Out#change}), its temporary files
 * are removed ({@link #undo}), and it exits 130 saying what it left: what it changed before it
 * stopped (or what it said it leaves, {@link #state}) and what it removed.
 *
 * <p>The same happens in `asm session`, where a step runs on a thread of a long-lived JVM and
 * the caller's Ctrl-C reaches it as {@link #stop}: nothing here depends on the JVM ending.
 * A step that does not stop within {@link #GRACE_SECONDS} (or a second Ctrl-C, a second or more after
 * the first: one sooner is the same one sent twice, {@link #sameSignalAgain}) has its temporary files
 * removed from the signal's thread and the process ends with 130 at once.
 */
public final class Interrupt {
    private Interrupt() {}

    /** The exit code of an interrupted step, as a shell reports a command ended by Ctrl-C (128 + SIGINT). */
    public static final int EXIT = 130;
    static final long GRACE_SECONDS = 10;

    /** Something to remove if the step stops or fails before it is done: a temporary file or folder. */
    @FunctionalInterface
    public interface Action {
        void run() throws IOException;
    }

    /** One step's run: its thread, what it must remove if stopped, what it says it leaves. */
    static final class Run {
        final Step step;
        final Thread thread = Thread.currentThread();
        final Deque<Undo> undos = new ConcurrentLinkedDeque<>();
        final Deque<java.io.Closeable> blocking = new ConcurrentLinkedDeque<>();
        final List<String> removed = new ArrayList<>();
        final CountDownLatch ended = new CountDownLatch(1);
        volatile String signal;             // what stopped it: SIGINT, SIGTERM, "the caller going away"
        volatile long signalledAt;          // System.nanoTime() when it was
        volatile Supplier<String> state;
        int units;                          // changes under way that an interrupt waits for (the step's thread only)
        boolean deferred;                   // an interrupt waits for the current unit to end
        Run outer;                          // a step run inside another on the same thread (asm run: never; kept safe)

        Run(Step step) {
            this.step = step;
        }

        /** Ends this step's run (Step.call, always). */
        void end() {
            ended.countDown();
            synchronized (Interrupt.class) {
                if (current == this) current = outer;
            }
        }
    }

    private static Run current;
    private static final AtomicBoolean SIGNALS = new AtomicBoolean();

    /** Starts a step's run on this thread (Step.call); SIGINT and SIGTERM stop it from now on. */
    static Run begin(Step step) {
        installSignals();
        Run r = new Run(step);
        synchronized (Interrupt.class) {
            r.outer = current;
            current = r;
        }
        return r;
    }

    private static Run mine() {
        Run r;
        synchronized (Interrupt.class) {
            r = current;
        }
        return r != null && r.thread == Thread.currentThread() ? r : null;
    }

    /** Whether the step on this thread was told to stop. */
    public static boolean stopped() {
        Run r = mine();
        return r != null && r.signal != null;
    }

    /** A stop point: a step told to stop ends here (exit 130). Clears the thread's interrupt, so what it prints on the way out reaches the caller. */
    public static void check() {
        Run r = mine();
        if (r == null || r.signal == null || r.units > 0) return;
        Thread.interrupted();
        throw Fail.interrupted("interrupted by " + r.signal, null);
    }

    /** What the step leaves if it stops now, for its message (default: the changes it reported). */
    public static void state(Supplier<String> state) {
        Run r = mine();
        if (r != null) r.state = state;
    }

    // ------------------------------------------------------------ temporary files

    /** A registered removal: run by close() unless kept, or by the signal's thread if the step is stuck. */
    public static final class Undo implements AutoCloseable {
        private final Run run;
        private final String what;
        private final Action action;
        private final AtomicBoolean settled = new AtomicBoolean();

        private Undo(Run run, String what, Action action) {
            this.run = run;
            this.what = what;
            this.action = action;
        }

        /** What it made is wanted after all (renamed into place, say): nothing to remove. */
        public void keep() {
            if (settled.compareAndSet(false, true) && run != null) run.undos.remove(this);
        }

        /** Removes what it names, unless kept (best effort: a failure to remove is reported, never thrown over the step's own error). */
        @Override
        public void close() {
            if (!settled.compareAndSet(false, true)) return;
            if (run != null) run.undos.remove(this);
            boolean was = Thread.interrupted();     // removing must not be cut short by the interrupt it cleans up after
            try {
                action.run();
                if (run != null && run.signal != null) synchronized (run.removed) { run.removed.add(what); }
            } catch (IOException | RuntimeException e) {
                System.err.println("warning: could not remove " + what + ": " + Step.describe(e));
            } finally {
                if (was) Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Registers `action` to remove `what` (a temporary file or folder) if the step stops or fails;
     * use it in try-with-resources, and {@link Undo#keep} once it is wanted. Outside a step it only
     * runs on close.
     */
    public static Undo undo(String what, Action action) {
        Run r = mine();
        Undo u = new Undo(r, what, action);
        if (r != null) r.undos.push(u);
        return u;
    }

    // ------------------------------------------------------------ units

    /** One change made whole: an interrupt during it waits until it ends (close), then stops the step at its next stop point. */
    public static final class Unit implements AutoCloseable {
        private final Run run;

        private Unit(Run run) {
            this.run = run;
        }

        @Override
        public void close() {
            if (run == null) return;
            synchronized (run) {
                if (--run.units == 0 && run.deferred) {
                    run.deferred = false;
                    deliver(run);
                }
            }
        }
    }

    public static Unit unit() {
        check();                // a step told to stop starts no new change
        Run r = mine();
        if (r != null) synchronized (r) { r.units++; }
        return new Unit(r);
    }

    // ------------------------------------------------------------ stopping

    /**
     * Tells the step on `thread` to stop (a signal, or the caller of `asm session` pressing Ctrl-C):
     * its thread is interrupted now, or when its current unit ends. With no step on that thread, the
     * thread is interrupted as before. Returns the run stopped, or null.
     */
    static Run stop(Thread thread, String why) {
        Run r;
        synchronized (Interrupt.class) {
            r = current;
            while (r != null && r.thread != thread) r = r.outer;
        }
        if (r == null) {
            thread.interrupt();
            return null;
        }
        synchronized (r) {
            if (r.signal == null) {
                r.signalledAt = System.nanoTime();
                r.signal = why;
            }
            if (r.units > 0) r.deferred = true;
            else deliver(r);
        }
        return r;
    }

    /** Interrupts the step's thread, and closes what it waits on that an interrupt does not end. */
    private static void deliver(Run r) {
        r.thread.interrupt();
        for (java.io.Closeable c : r.blocking) {
            try {
                c.close();
            } catch (IOException | RuntimeException ignored) {
                // closing is only to wake the reader
            }
        }
    }

    /**
     * Registers what the step waits on that an interrupt does not end: a response body it reads (JDK 17's
     * HttpClient stream ignores an interrupt), a child process (p::destroy). A stop closes it, so the wait
     * ends at once. Close the returned handle (try-with-resources) when the wait is over.
     */
    public static Registration closeOnStop(java.io.Closeable waitedOn) {
        Run r = mine();
        if (r == null) return () -> { };
        r.blocking.add(waitedOn);
        return () -> r.blocking.remove(waitedOn);
    }

    /** A registration, ended by close (which throws nothing). */
    public interface Registration extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * What a step that was told to stop ends with, whatever it threw on the way (Step.callOnce):
     * exit 130, one line of what it left and one of what to do; the JSON result gets `interrupted`
     * (the signal) and `state`. Any other step's failure is returned as it is.
     */
    static Fail outcome(Fail failure, Out out) {
        Run r = mine();
        if (r == null || r.signal == null) return failure;
        Thread.interrupted();
        for (Undo u; (u = r.undos.peek()) != null; ) u.close();
        String state = describe(r, out);
        out.put("interrupted", r.signal).put("state", state);
        return Fail.interrupted("interrupted by " + r.signal + "; " + state,
                "run " + out.step() + " again: it goes on from what is done");
    }

    private static String describe(Run r, Out out) {
        String state = null;
        try {
            state = r.state == null ? null : r.state.get();
        } catch (RuntimeException ignored) {
            // fall back to the changes it reported
        }
        if (state == null) {
            List<String> made = out.made();
            state = made.isEmpty() ? "nothing was changed" : "done before it stopped: " + String.join("; ", made);
        }
        synchronized (r.removed) {
            if (!r.removed.isEmpty()) state += "; removed its temporary files " + String.join(", ", r.removed);
        }
        return state;
    }

    // ------------------------------------------------------------ signals

    /**
     * SIGINT and SIGTERM stop the running step instead of ending the JVM under it (the JVM's own
     * handling would run no cleanup and leave its files). With no step running they end the process
     * with 130. A signal the process was started with ignored (nohup, a background job) stays ignored.
     */
    static void installSignals() {
        if (!SIGNALS.compareAndSet(false, true)) return;
        for (String name : List.of("INT", "TERM")) {
            try {
                sun.misc.Signal.handle(new sun.misc.Signal(name), s -> signalled("SIG" + name));
            } catch (IllegalArgumentException | UnsupportedOperationException | LinkageError e) {
                // -Xrs, or a JVM without them: the JVM's own handling stays
            }
        }
    }

    /** On the signal's own thread: stop the step, wait for it, end the process with 130. */
    private static void signalled(String signal) {
        Run r;
        synchronized (Interrupt.class) {
            r = current;
        }
        if (r == null || r.ended.getCount() == 0) System.exit(EXIT);
        if (r.signal != null && r.ended.getCount() > 0) {
            if (sameSignalAgain(r.signalledAt)) return;
            force(r, "a second " + signal);         // Ctrl-C again: do not wait any longer
            return;
        }
        stop(r.thread, signal);
        try {
            if (!r.ended.await(GRACE_SECONDS, TimeUnit.SECONDS)) force(r, "it did not stop within " + GRACE_SECONDS + " s");
        } catch (InterruptedException e) {
            force(r, "its signal handler was interrupted");
        }
        System.exit(EXIT);      // asm run does not start the next step; asm session ends (its caller got the answer)
    }

    /**
     * Whether a signal that comes while the step stops from one received at `firstNanos`
     * (System.nanoTime()) is that one sent twice: within a second of it. timeout signals its child,
     * then its whole process group, and a stopping step must not be cut short by the copy.
     */
    static boolean sameSignalAgain(long firstNanos) {
        return System.nanoTime() - firstNanos < SAME_SIGNAL_NANOS;
    }

    private static final long SAME_SIGNAL_NANOS = TimeUnit.SECONDS.toNanos(1);

    /** The step is stuck (in a native call, say): remove its temporary files from here, say so, end now. */
    private static void force(Run r, String why) {
        for (Undo u; (u = r.undos.peek()) != null; ) u.close();
        Out out = r.step.out;
        String state = out == null ? "nothing was changed" : describe(r, out);
        Fail f = Fail.interrupted("interrupted by " + r.signal + " (" + why + "); " + state,
                "check what the step changed (asm status), then run it again");
        System.err.println("error: " + f.getMessage());
        System.err.println("  -> " + f.hint);
        if (out != null) {
            out.put("interrupted", r.signal).put("state", state);
            out.finish(EXIT, f);
        }
        System.out.flush();
        System.err.flush();
        Runtime.getRuntime().halt(EXIT);
    }
}
