///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.Service;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "external-ip", mixinStandardHelpOptions = true,
        description = "Give the ingress gateway its external address (guide: 'Configura una dirección IP externa'): "
                + "integrated mode sets loadBalancerIP; manual mode prints the NodePort forwarding plan for your load balancer.")
class ExternalIp extends Step {
    enum Mode { integrated, manual }

    @Mixin Opts.Kube kube;

    @Option(names = "--mode", required = true, paramLabel = "MODE",
            description = "Load-balancing mode of the cluster: ${COMPLETION-CANDIDATES}.")
    Mode mode;

    @Option(names = "--ip", paramLabel = "ADDRESS",
            description = "The static external IP (integrated: required; manual: the VIP, used in the plan).")
    String ip;

    @Override
    protected void run() {
        String address = ip == null ? null : IngressGateway.literalIp(ip);
        if (mode == Mode.integrated && address == null)
            throw Fail.badInput("integrated mode needs the external IP", "pass --ip 203.0.113.1 (the static address for the ingress gateway)");
        out.put("mode", mode.name()).put("service", IngressGateway.WHERE);
        Kube k = kube();
        Service gateway = IngressGateway.read(k);
        if (mode == Mode.integrated) IngressGateway.setLoadBalancerIp(k, gateway, address, out);
        else IngressGateway.printForwardingPlan(k, gateway, address, out);
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new ExternalIp()).execute(args));
    }
}
