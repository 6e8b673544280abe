///usr/bin/env jbang "$0" "$@" ; exit $?
//SOURCES ../lib/*.java
//CDS
package asmhsm;

import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBindingBuilder;
import io.fabric8.kubernetes.api.model.rbac.Subject;
import io.fabric8.kubernetes.api.model.rbac.SubjectBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "grant-admin", mixinStandardHelpOptions = true,
        description = "Bind a user to cluster-admin, as the guide's `kubectl create clusterrolebinding cluster-admin-binding` (guide: 'Requisitos').")
class GrantAdmin extends Step {
    static final String RBAC = "rbac.authorization.k8s.io";

    @Mixin Opts.Kube kube;

    @Option(names = "--user", required = true, paramLabel = "USER_ACCOUNT",
            description = "The user to bind, as the cluster authenticates it (the guide: your Google Cloud login e-mail).")
    String user;

    @Option(names = "--name", defaultValue = "cluster-admin-binding", paramLabel = "NAME",
            description = "ClusterRoleBinding name (default ${DEFAULT-VALUE}).")
    String name;

    @Override
    protected void run() {
        if (user.isBlank() || !user.equals(user.strip()) || user.chars().anyMatch(c -> c < 0x21 || c == 0x7f))
            throw Fail.badInput("user '" + user + "' is empty or holds spaces or control characters",
                    "give the account exactly as the cluster knows it, e.g. --user alice@example.com");
        if (!name.matches("[a-z0-9]([-a-z0-9.:]*[a-z0-9])?"))
            throw Fail.badInput("binding name '" + name + "' is not a valid object name", "use lower-case letters, digits, '-', '.' or ':'");
        out.put("binding", name).put("user", user);
        Subject subject = new SubjectBuilder().withKind("User").withApiGroup(RBAC).withName(user).build();
        Kube k = kube();
        var ref = k.client.rbac().clusterRoleBindings().withName(name);
        ClusterRoleBinding existing;
        try {
            existing = ref.get();
        } catch (KubernetesClientException e) {
            throw k.explain(e, "read ClusterRoleBinding " + name);
        }
        if (existing == null) {
            ClusterRoleBinding binding = new ClusterRoleBindingBuilder().withNewMetadata().withName(name).endMetadata()
                    .withNewRoleRef().withApiGroup(RBAC).withKind("ClusterRole").withName("cluster-admin").endRoleRef()
                    .withSubjects(subject).build();
            out.manifest(k.manifest(binding));
            if (out.dryRun()) { out.change("create ClusterRoleBinding " + name + ": cluster-admin for user " + user); return; }
            try {
                ref.create(binding);
            } catch (KubernetesClientException e) {
                throw k.explain(e, "create ClusterRoleBinding " + name);
            }
            out.change("created ClusterRoleBinding " + name + ": cluster-admin for user " + user);
            return;
        }
        var role = existing.getRoleRef();
        if (!"ClusterRole".equals(role.getKind()) || !"cluster-admin".equals(role.getName()))
            throw Fail.failed("ClusterRoleBinding " + name + " exists but binds " + role.getKind() + " " + role.getName()
                    + ", not ClusterRole cluster-admin", "pass --name to use another binding name (a binding's role cannot change)");
        for (Subject s : existing.getSubjects() == null ? java.util.List.<Subject>of() : existing.getSubjects())
            if ("User".equals(s.getKind()) && user.equals(s.getName())) {
                out.say("user %s is already bound to cluster-admin by %s", user, name);
                return;
            }
        out.manifest(k.manifest(new ClusterRoleBindingBuilder(existing).addToSubjects(subject).build()));
        if (out.dryRun()) { out.change("add user " + user + " to ClusterRoleBinding " + name); return; }
        try {
            ref.edit(b -> new ClusterRoleBindingBuilder(b).addToSubjects(subject).build());
        } catch (KubernetesClientException e) {
            throw k.explain(e, "add user " + user + " to ClusterRoleBinding " + name);
        }
        out.change("added user " + user + " to ClusterRoleBinding " + name + " (cluster-admin)");
    }

    public static void main(String... args) {
        System.exit(Step.commandLine(new GrantAdmin()).execute(args));
    }
}
