package asmhsm;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.security.KeyPairGenerator;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The kubelets and istiod of a namespace while the lab's controller-manager rolls istiod's pods
 * (renew-ca, rotate-ca): every new pod the ReplicaSet makes is started ({@link IstiodPods#start}:
 * a fresh plugin, its postStart hook run for real), then its istiod does what the real one does at
 * start-up (its KMS-backed CA, seen running it): without istio-ca-encrypted-key it makes a new key
 * and writes that Secret alone; without istio-ca-cert it writes a CSR for the key it holds only when
 * istio-ca-cert-csr is missing (an existing CSR is kept, even one made for a key that is gone), and
 * waits (2/3); with istio-ca-cert, whether or not a CSR is there, it verifies the chain through its
 * pod's plugin: no root loaded there or a chain the plugin refuses is an abort, a chain for another
 * key "failed to create CA KeyCertBundle (the cert does not match the key)" (both crash-loop); else
 * "Loaded decrypted CA key and CA certificate into memory." and 3/3 ready.
 * The pods running when it starts are taken as they are.
 */
final class IstiodKubelet implements AutoCloseable {
    static final String TRUST_DOMAIN = "cluster.local";
    static final String NEW_KEY = "Newly generated encrypted signing key is successfully written into secret.";
    /** The real istiod's words when istio-ca-cert certifies another key than istio-ca-encrypted-key's. */
    static final String KEY_MISMATCH = "the cert does not match the key";

    private final KubernetesClient k;
    private final String namespace;
    private final IstiodPods pods;
    private final SoftHsmToken token;
    private final String caId;
    /** The istiod whose key the Secrets hold now: a new one after a pod made a new key. */
    volatile IstiodStandIn istiod;
    /** What each pod's istiod did, by pod UID: waiting, loaded, aborted. */
    private final Map<String, String> state = new ConcurrentHashMap<>();
    /** When each pod's istiod first found istio-ca-cert. */
    private final Map<String, Long> certSeen = new ConcurrentHashMap<>();
    /** What happened, in words, in order. */
    final List<String> said = Collections.synchronizedList(new ArrayList<>());
    private volatile Throwable failure;
    private Thread thread;
    private volatile boolean stopping;

    IstiodKubelet(KubernetesClient k, String namespace, IstiodPods pods, SoftHsmToken token, IstiodStandIn istiod, String caId) {
        this.k = k;
        this.namespace = namespace;
        this.pods = pods;
        this.token = token;
        this.istiod = istiod;
        this.caId = caId;
        for (Pod p : Istio.istiodPods(k, namespace)) state.put(p.getMetadata().getUid(), "running before");
    }

    /** Reacts in the background, every 300 ms, until {@link #close}. */
    IstiodKubelet start() {
        thread = new Thread(() -> {
            while (!Thread.currentThread().isInterrupted()) {
                try {
                    pass();
                    Thread.sleep(300);
                } catch (InterruptedException e) {
                    return;
                } catch (Throwable t) {
                    if (!stopping) failure = t; // a call cut short by close() is no failure
                    return;
                }
            }
        }, "istiod-kubelet-" + namespace);
        thread.setDaemon(true);
        thread.start();
        return this;
    }

    /** One look at the pods. */
    synchronized void pass() throws Exception {
        for (Pod p : Istio.istiodPods(k, namespace)) {
            String uid = p.getMetadata().getUid(), name = p.getMetadata().getName(), was = state.get(uid);
            if (was != null && !was.equals("waiting")) continue;
            if (!pods.started(p)) said.add(name + ": " + pods.start(p));
            // the order of the real istiod's start-up (KMS-backed CA): the key, then the chain or a CSR, then the chain's checks
            if (!secret("istio-ca-encrypted-key")) {
                KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
                g.initialize(2048);
                istiod = IstiodStandIn.start(pods.pluginEnv(p), kekId(p), TRUST_DOMAIN, g.generateKeyPair()); // the plugin logs in with the PIN from Vault
                istiod.writeKeySecret(k, namespace);
                said.add(name + ": " + NEW_KEY + " (KEK " + istiod.kekId + ")");
            }
            if (!secret("istio-ca-cert")) {
                if (was == null) {
                    if (secret("istio-ca-cert-csr")) {
                        // kept as it is, even when it was made for a key that is gone
                        said.add(name + ": " + IstiodLog.LOG_CSR_EXISTS + " " + IstiodLog.LOG_WAITING_FOR_CA);
                    } else {
                        istiod.writeSecret(k, namespace); // a CSR for the key istiod holds now
                        said.add(name + ": " + IstiodLog.LOG_CSR_WRITTEN + " (KEK " + istiod.kekId + ")");
                    }
                    pods.running(p, Map.of(IstiodPods.DISCOVERY, false));
                    state.put(uid, "waiting");
                }
                continue;
            }
            // istiod polls for istio-ca-cert every 2 s: it loads a poll after the Secret appeared (the API keeps whole seconds)
            long seen = certSeen.computeIfAbsent(uid, x -> System.nanoTime());
            if (System.nanoTime() - seen < 2_000_000_000L) continue;
            if (!pods.rootLoaded(p)) {
                abort(p, "rpc error: code = Unknown desc = " + IstiodPods.NOT_LOADED);
                continue;
            }
            try {
                istiod.loadChain(k, namespace, token, caId);
            } catch (AssertionError | Exception refused) {
                abort(p, refused.getMessage());
                continue;
            }
            pods.running(p, Map.of());
            state.put(uid, "loaded");
            said.add(name + ": " + IstiodLog.LOG_CA_LOADED + " (3/3 ready)");
        }
    }

    private void abort(Pod p, String why) {
        pods.crashLoop(p);
        state.put(p.getMetadata().getUid(), "aborted");
        said.add(p.getMetadata().getName() + ": " + (why.equals(KEY_MISMATCH) ? "failed to create CA KeyCertBundle (" + why + ")"
                : IstiodLog.LOG_CHAIN_REJECTED + " (error: " + why + "). Abort."));
    }

    private boolean secret(String name) {
        return k.secrets().inNamespace(namespace).withName(name).get() != null;
    }

    /** The KEK the pod's plugin runs with (its KEK_ID), else the one istiod had. */
    private String kekId(Pod p) {
        Container plugin = IstiodPods.container(p, IstiodPods.PLUGIN);
        if (plugin != null && plugin.getEnv() != null)
            for (var e : plugin.getEnv()) if (e.getName().equals("KEK_ID") && e.getValue() != null) return e.getValue();
        return istiod.kekId;
    }

    /** What the pod's istiod did: null (not seen yet), waiting, loaded, aborted, "running before". */
    String state(Pod p) {
        return state.get(p.getMetadata().getUid());
    }

    @Override
    public void close() throws Exception {
        if (thread != null) {
            stopping = true;
            thread.interrupt();
            thread.join(10_000);
        }
        if (failure instanceof Exception e) throw e;
        if (failure instanceof Error e) throw e;
    }
}
