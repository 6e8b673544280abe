package asmhsm;

/**
 * A failure the operator can act on: what is wrong and what to do next.
 * Exit code 1 = the step failed, 2 = bad usage or input, 130 = interrupted (Ctrl-C).
 */
public class Fail extends RuntimeException {
    public final int exitCode;
    public final String hint;

    protected Fail(int exitCode, String message, String hint, Throwable cause) {
        super(message, cause);
        this.exitCode = exitCode;
        this.hint = hint;
    }

    /** The step ran and could not finish (exit 1). */
    public static Fail failed(String message, String hint) {
        return new Fail(1, message, hint, null);
    }

    public static Fail failed(String message, String hint, Throwable cause) {
        return new Fail(1, message, hint, cause);
    }

    /** The step was stopped by Ctrl-C or SIGTERM (exit 130, as a shell reports it); see Interrupt. */
    public static Fail interrupted(String message, String hint) {
        return new Fail(Interrupt.EXIT, message, hint, null);
    }

    /** The input or the invocation is wrong (exit 2). */
    public static Fail badInput(String message, String hint) {
        return new Fail(2, message, hint, null);
    }

    public static Fail badInput(String message, String hint, Throwable cause) {
        return new Fail(2, message, hint, cause);
    }
}
