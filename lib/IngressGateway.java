package asmhsm;

import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeAddress;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The mesh's ingress gateway (Service istio-ingressgateway, made by the asm-multicloud profile) and its
 * external address, as the guide gives it one ('Configura una dirección IP externa'): loadBalancerIP in
 * integrated load-balancing mode, a NodePort forwarding plan for the operator's own load balancer in manual mode.
 */
final class IngressGateway {
    private IngressGateway() {}

    static final String WHERE = KubeLayout.ISTIO_NAMESPACE + "/" + Istio.INGRESS_GATEWAY;

    /** The gateway's Service; refuses when the mesh has none yet. */
    static Service read(Kube k) {
        Service svc = k.call(() -> k.client.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY).get(),
                "read Service " + Istio.INGRESS_GATEWAY);
        if (svc == null)
            throw Fail.failed("Service " + WHERE + " does not exist",
                    "install the mesh first (install-asm); the asm-multicloud profile creates the ingress gateway");
        return svc;
    }

    /** Integrated mode: sets the Service's loadBalancerIP (one merge patch, once), then says what the load balancer reports. */
    static void setLoadBalancerIp(Kube k, Service svc, String address, Out out) {
        String type = svc.getSpec().getType();
        if (!"LoadBalancer".equals(type))
            throw Fail.failed("Service " + Istio.INGRESS_GATEWAY + " is of type " + type + ": loadBalancerIP only works for type LoadBalancer",
                    "for a cluster in manual load-balancing mode run: external-ip --mode manual");
        String current = svc.getSpec().getLoadBalancerIP();
        out.put("loadBalancerIP", address).put("previous", current);
        if (current != null && sameAddress(address, current)) {
            out.say("Service %s already has loadBalancerIP %s", Istio.INGRESS_GATEWAY, address);
        } else if (out.dryRun()) {
            out.manifest(k.manifest(new ServiceBuilder(svc).editSpec().withLoadBalancerIP(address).endSpec().build()));
            out.change("set loadBalancerIP of " + Istio.INGRESS_GATEWAY + " to " + address + (current == null ? "" : " (now " + current + ")"));
            return;
        } else {
            k.call(() -> k.client.services().inNamespace(KubeLayout.ISTIO_NAMESPACE).withName(Istio.INGRESS_GATEWAY)
                    .patch(PatchContext.of(PatchType.JSON_MERGE), "{\"spec\":{\"loadBalancerIP\":\"" + address + "\"}}"),
                    "set loadBalancerIP of Service " + Istio.INGRESS_GATEWAY);
            out.change("set loadBalancerIP of " + Istio.INGRESS_GATEWAY + " to " + address + (current == null ? "" : " (was " + current + ")"));
        }
        List<String> assigned = new ArrayList<>();
        var lb = svc.getStatus() == null ? null : svc.getStatus().getLoadBalancer();
        if (lb != null && lb.getIngress() != null) lb.getIngress().forEach(i -> assigned.add(i.getIp() != null ? i.getIp() : i.getHostname()));
        out.put("ingress", assigned);
        if (!assigned.contains(address))
            out.say("The load balancer reports %s; check with: kubectl get svc -n %s %s",
                    assigned.isEmpty() ? "no address yet" : String.join(", ", assigned), KubeLayout.ISTIO_NAMESPACE, Istio.INGRESS_GATEWAY);
    }

    /** Manual mode: every port's nodePort on every node's internal address, as the external load balancer forwards to them. */
    static void printForwardingPlan(Kube k, Service svc, String vip, Out out) {
        List<Node> nodes = k.call(() -> k.client.nodes().list().getItems(), "list the nodes");
        List<Map<String, Object>> ports = new ArrayList<>();
        for (ServicePort p : svc.getSpec().getPorts()) {
            if (p.getNodePort() == null) continue;
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("name", p.getName());
            row.put("port", p.getPort());
            row.put("nodePort", p.getNodePort());
            row.put("protocol", p.getProtocol() == null ? "TCP" : p.getProtocol());
            ports.add(row);
        }
        if (ports.isEmpty())
            throw Fail.failed("Service " + Istio.INGRESS_GATEWAY + " (type " + svc.getSpec().getType() + ") has no nodePorts",
                    "make it type NodePort or LoadBalancer (the asm-multicloud profile does), then re-run");
        List<Map<String, String>> addrs = new ArrayList<>();
        for (Node n : nodes) {
            String internal = null;
            if (n.getStatus() != null && n.getStatus().getAddresses() != null)
                for (NodeAddress a : n.getStatus().getAddresses()) if ("InternalIP".equals(a.getType())) { internal = a.getAddress(); break; }
            if (internal != null) addrs.add(Map.of("node", n.getMetadata().getName(), "internalIP", internal));
        }
        if (addrs.isEmpty())
            throw Fail.failed("no node reports an InternalIP address (" + nodes.size() + " nodes)",
                    "check the nodes with: kubectl get nodes -o wide");
        String front = vip == null ? "<VIP>" : vip.contains(":") ? "[" + vip + "]" : vip;
        List<String> plan = new ArrayList<>();
        for (Map<String, Object> p : ports) {
            List<String> backends = new ArrayList<>();
            for (Map<String, String> a : addrs) backends.add(hostPort(a.get("internalIP"), p.get("nodePort")));
            plan.add(front + ":" + p.get("port") + "/" + p.get("protocol") + " -> " + String.join(", ", backends));
        }
        out.put("vip", vip).put("ports", ports).put("nodes", addrs).put("plan", plan);
        out.say("%-20s %6s %9s %s", "PORT NAME", "PORT", "NODEPORT", "PROTOCOL");
        for (Map<String, Object> p : ports)
            out.say("%-20s %6s %9s %s", p.get("name"), p.get("port"), p.get("nodePort"), p.get("protocol"));
        out.say("");
        out.say("Node internal addresses:");
        for (Map<String, String> a : addrs) out.say("  %-30s %s", a.get("node"), a.get("internalIP"));
        out.say("");
        out.say("Forward on the external load balancer (choose the ports to expose):");
        for (String line : plan) out.say("  " + line);
    }

    private static String hostPort(String host, Object port) {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }

    /** A literal IPv4 or IPv6 address (never a host name: nothing is looked up), usable as a service address. */
    static String literalIp(String s) {
        String v = s.strip();
        boolean v4 = v.matches("((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)");
        boolean v6 = !v4 && v.contains(":") && v.matches("[0-9A-Fa-f:.]+");
        InetAddress a = null;
        if (v4 || v6) {
            try {
                a = InetAddress.getByName(v); // a literal: parsed, not resolved
            } catch (java.net.UnknownHostException e) {
                a = null;
            }
        }
        if (a == null)
            throw Fail.badInput("'" + s + "' is not an IP address", "give a literal IPv4 or IPv6 address, e.g. --ip 203.0.113.1");
        if (a.isAnyLocalAddress() || a.isLoopbackAddress() || a.isMulticastAddress())
            throw Fail.badInput("'" + s + "' is a " + (a.isAnyLocalAddress() ? "wildcard" : a.isLoopbackAddress() ? "loopback" : "multicast")
                    + " address, not one a load balancer can serve", "give the static external IP reserved for the ingress gateway");
        return v;
    }

    private static boolean sameAddress(String a, String b) {
        try {
            return a.equals(b) || InetAddress.getByName(literalIp(a)).equals(InetAddress.getByName(literalIp(b)));
        } catch (Fail | java.net.UnknownHostException e) {
            return false;
        }
    }
}
