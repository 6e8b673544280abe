package asmhsm;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;

/** What a pod's spec and status say, as kubectl shows it: its containers, their readiness, their logs. */
public final class Pods {
    private Pods() {}

    public static List<String> containerNames(Pod p) {
        List<String> names = new ArrayList<>();
        if (p.getSpec() != null && p.getSpec().getContainers() != null)
            for (Container c : p.getSpec().getContainers()) names.add(c.getName());
        return names;
    }

    public static boolean hasContainer(Pod p, String name) {
        return containerNames(p).contains(name);
    }

    /** The named container of the pod is running now (so one can exec into it). */
    public static boolean containerRunning(Pod p, String name) {
        if (p.getStatus() == null || p.getStatus().getContainerStatuses() == null) return false;
        for (ContainerStatus cs : p.getStatus().getContainerStatuses())
            if (name.equals(cs.getName()) && cs.getState() != null && cs.getState().getRunning() != null) return true;
        return false;
    }

    /** Ready containers / all containers, as kubectl get pod shows READY. */
    public static int[] readiness(Pod p) {
        int total = containerNames(p).size(), ready = 0;
        if (p.getStatus() != null && p.getStatus().getContainerStatuses() != null)
            for (ContainerStatus s : p.getStatus().getContainerStatuses()) if (Boolean.TRUE.equals(s.getReady())) ready++;
        return new int[]{ready, total};
    }

    /**
     * A container's recent log; for a container that restarted, its last run's log first (it
     * holds the abort that ended that run). Null when the API server serves none.
     */
    public static String containerLog(Kube k, Pod pod, String container) {
        var c = k.client.pods().inNamespace(pod.getMetadata().getNamespace()).withName(pod.getMetadata().getName()).inContainer(container);
        String log = c.tailingLines(5000).getLog();
        if (!restarted(pod, container)) return log;
        String previous;
        try {
            previous = c.terminated().tailingLines(5000).getLog();
        } catch (io.fabric8.kubernetes.client.KubernetesClientException e) {
            previous = null; // no earlier run kept: the current log is all there is
        }
        return (previous == null ? "" : previous) + (log == null ? "" : log);
    }

    private static boolean restarted(Pod pod, String container) {
        if (pod.getStatus() == null || pod.getStatus().getContainerStatuses() == null) return false;
        return pod.getStatus().getContainerStatuses().stream()
                .anyMatch(cs -> container.equals(cs.getName()) && cs.getRestartCount() != null && cs.getRestartCount() > 0);
    }

    /** When an object was last written: its newest managedFields time, else its creation. */
    public static Instant lastChange(HasMetadata o) {
        Instant last = null;
        try {
            if (o.getMetadata().getCreationTimestamp() != null) last = Instant.parse(o.getMetadata().getCreationTimestamp());
            if (o.getMetadata().getManagedFields() != null)
                for (var f : o.getMetadata().getManagedFields())
                    if (f.getTime() != null) {
                        Instant t = Instant.parse(f.getTime());
                        if (last == null || t.isAfter(last)) last = t;
                    }
        } catch (DateTimeParseException e) {
            return null;
        }
        return last;
    }
}
