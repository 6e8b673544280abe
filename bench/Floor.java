import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.concurrent.Callable;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

// The least a JVM per step can cost, for bench/procedure: four programs that do less than any step
// and nothing of the toolkit's. Each is its own main class, so one loads nothing of the others.
//   FloorJvm                        a JVM that prints one line
//   FloorCli --name N               the same through a picocli command with two options
//   FloorHttps URL CA_PEM           the picocli command, then one HTTPS GET with the JDK's cheapest
//                                   client (HttpsURLConnection), trusting CA_PEM only
//   FloorFabric8 NAMESPACE          the picocli command, then fabric8 as its README shows it: a client
//                                   from KUBECONFIG, one GET of the namespace

class FloorJvm {
    public static void main(String[] args) {
        System.out.println("floor");
        System.exit(0);
    }
}

@Command(name = "floor-cli", mixinStandardHelpOptions = true)
class FloorCli implements Callable<Integer> {
    @Option(names = "--name") String name = "floor";
    @Option(names = "--dry-run") boolean dryRun;

    public Integer call() {
        System.out.println(name);
        return 0;
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new FloorCli()).execute(args));
    }
}

@Command(name = "floor-https", mixinStandardHelpOptions = true)
class FloorHttps implements Callable<Integer> {
    @CommandLine.Parameters(index = "0") URI url;
    @CommandLine.Parameters(index = "1") Path ca;

    public Integer call() throws Exception {
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(ca)) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(trust);
        SSLContext tls = SSLContext.getInstance("TLS");
        tls.init(null, tmf.getTrustManagers(), null);
        HttpsURLConnection c = (HttpsURLConnection) url.toURL().openConnection();
        c.setSSLSocketFactory(tls.getSocketFactory());
        int status = c.getResponseCode();
        try (InputStream body = status < 400 ? c.getInputStream() : c.getErrorStream()) {
            System.out.println(status + " " + (body == null ? 0 : body.readAllBytes().length));
        }
        return status < 500 ? 0 : 1;
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new FloorHttps()).execute(args));
    }
}

@Command(name = "floor-fabric8", mixinStandardHelpOptions = true)
class FloorFabric8 implements Callable<Integer> {
    @CommandLine.Parameters(index = "0") String namespace;

    public Integer call() throws Exception {
        try (KubernetesClient kube = new KubernetesClientBuilder().build()) {
            System.out.println(kube.namespaces().withName(namespace).get().getMetadata().getUid());
        }
        // the JDK 17 client's selector thread stays in native code after close, and the JVM waits 0.3 s
        // at exit for such threads (lib/Startup.java ends it the same way)
        for (Thread t : Thread.getAllStackTraces().keySet())
            if (t.getName().contains("SelectorManager")) {
                t.interrupt();
                t.join(1000);
            }
        return 0;
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new FloorFabric8()).execute(args));
    }
}
