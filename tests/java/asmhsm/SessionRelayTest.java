package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The caller's side of asm session against a stand-in that ends the connection at chosen points:
 * before the session has taken a call, the caller may run the step itself; after, never.
 */
class SessionRelayTest {
    @TempDir
    Path tmp;
    int calls;

    private Integer relayFrom(Consumer<SocketChannel> session, ByteArrayOutputStream out, ByteArrayOutputStream err) throws Exception {
        Path socket = tmp.resolve("s" + (++calls) + ".sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));
            Thread t = new Thread(() -> {
                try (SocketChannel ch = server.accept()) {
                    session.accept(ch);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            t.start();
            try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
                Integer rc = Session.relay(ch, out, err);
                t.join(5000);
                return rc;
            }
        }
    }

    private static void send(SocketChannel ch, byte kind, String body) {
        try {
            Session.send(ch, Session.frame(kind, body.getBytes(StandardCharsets.UTF_8)));
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void aCallTheSessionDidNotTakeIsTheCallersToRun() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        assertThat(relayFrom(ch -> { }, out, err)).as("closed at once").isNull();
        assertThat(relayFrom(ch -> send(ch, Session.NOT_MINE, ""), out, err)).as("not its context").isNull();
        assertThat(out.size() + err.size()).isZero();
    }

    @Test
    void aCallTheSessionTookEndsWithItsExitCodeOrAsAFailureNeverARerun() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        Integer rc = relayFrom(ch -> {
            send(ch, Session.TAKEN, "");
            send(ch, Session.OUT, "line\n");
            send(ch, Session.EXIT, "");       // an exit frame without its code: a broken session
        }, out, err);
        assertThat(rc).isEqualTo(1);
        assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("line\n");

        err.reset();
        assertThat(relayFrom(ch -> send(ch, Session.TAKEN, ""), out, err)).as("gone after taking the call").isEqualTo(1);
        assertThat(err.toString(StandardCharsets.UTF_8)).startsWith("error: the asm session ended before the step did");

        Integer two = relayFrom(ch -> {
            send(ch, Session.TAKEN, "");
            try {
                Session.send(ch, Session.frame(Session.EXIT, java.nio.ByteBuffer.allocate(4).putInt(2).array()));
            } catch (java.io.IOException e) {
                throw new IllegalStateException(e);
            }
        }, out, err);
        assertThat(two).isEqualTo(2);
    }
}
