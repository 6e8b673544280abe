package asmhsm;

import static org.assertj.core.api.Assertions.assertThat;

import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewBuilder;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBindingBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** grant-admin against the lab's RBAC: the binding kubectl would make, once. */
@ExtendWith(LabExtension.class)
class GrantAdminTest {

    static Map<String, String> admin(Lab lab) {
        return Map.of("KUBECONFIG", lab.kubeconfig().toString());
    }

    /** Would the API server let this user delete namespaces (something only an admin may)? Asked as the admin. */
    static boolean isAdmin(KubernetesClient k, String user) {
        return k.authorization().v1().subjectAccessReview().create(new SubjectAccessReviewBuilder().withNewSpec().withUser(user)
                .withNewResourceAttributes().withVerb("delete").withResource("namespaces").endResourceAttributes().endSpec().build())
                .getStatus().getAllowed();
    }

    @Test
    void bindsTheUserToClusterAdminOnceAsTheGuidesKubectlCommandDoes(Lab lab) {
        KubernetesClient k = lab.admin();
        String user = "alice-" + UUID.randomUUID().toString().substring(0, 6) + "@example.com";
        try {
            assertThat(isAdmin(k, user)).isFalse();
            Cli.Result dry = Cli.asm(admin(lab), "grant-admin", "--user", user, "--dry-run");
            assertThat(dry.exit()).as(dry.toString()).isZero();
            assertThat(dry.stderr()).contains("would create ClusterRoleBinding cluster-admin-binding");
            assertThat(k.rbac().clusterRoleBindings().withName("cluster-admin-binding").get()).isNull();

            Cli.Result r = Cli.asm(admin(lab), "grant-admin", "--user", user);
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).contains("created ClusterRoleBinding cluster-admin-binding: cluster-admin for user " + user);
            ClusterRoleBinding b = k.rbac().clusterRoleBindings().withName("cluster-admin-binding").get();
            assertThat(b.getRoleRef().getKind()).isEqualTo("ClusterRole");
            assertThat(b.getRoleRef().getName()).isEqualTo("cluster-admin");
            assertThat(b.getSubjects()).singleElement().satisfies(s -> {
                assertThat(s.getKind()).isEqualTo("User");
                assertThat(s.getName()).isEqualTo(user);
                assertThat(s.getApiGroup()).isEqualTo("rbac.authorization.k8s.io");
            });
            assertThat(isAdmin(k, user)).isTrue();

            String version = b.getMetadata().getResourceVersion();
            Cli.Result again = Cli.asm(admin(lab), "grant-admin", "--user", user, "--json");
            assertThat(again.exit()).isZero();
            assertThat(again.stdout()).contains("\"changed\" : false");
            assertThat(k.rbac().clusterRoleBindings().withName("cluster-admin-binding").get().getMetadata().getResourceVersion()).isEqualTo(version);
        } finally {
            k.rbac().clusterRoleBindings().withName("cluster-admin-binding").delete();
        }
    }

    @Test
    void aSecondUserIsAddedToTheBindingAndAnotherRoleIsNotOverwritten(Lab lab) {
        KubernetesClient k = lab.admin();
        String name = "ca-" + UUID.randomUUID().toString().substring(0, 8);
        try {
            assertThat(Cli.asm(admin(lab), "grant-admin", "--user", "bob@example.com", "--name", name).exit()).isZero();
            Cli.Result r = Cli.asm(admin(lab), "grant-admin", "--user", "carol@example.com", "--name", name);
            assertThat(r.exit()).as(r.toString()).isZero();
            assertThat(r.stdout()).contains("added user carol@example.com to ClusterRoleBinding " + name);
            assertThat(k.rbac().clusterRoleBindings().withName(name).get().getSubjects())
                    .extracting(s -> s.getName()).containsExactly("bob@example.com", "carol@example.com");

            String other = name + "-view";
            k.rbac().clusterRoleBindings().resource(new ClusterRoleBindingBuilder().withNewMetadata().withName(other).endMetadata()
                    .withNewRoleRef().withApiGroup("rbac.authorization.k8s.io").withKind("ClusterRole").withName("view").endRoleRef()
                    .addNewSubject().withKind("User").withApiGroup("rbac.authorization.k8s.io").withName("dave@example.com").endSubject().build()).create();
            r = Cli.asm(admin(lab), "grant-admin", "--user", "erin@example.com", "--name", other);
            assertThat(r.exit()).isEqualTo(1);
            assertThat(r.stderr()).contains("exists but binds ClusterRole view, not ClusterRole cluster-admin");
            assertThat(k.rbac().clusterRoleBindings().withName(other).get().getSubjects()).hasSize(1);
            k.rbac().clusterRoleBindings().withName(other).delete();
        } finally {
            k.rbac().clusterRoleBindings().withName(name).delete();
        }
    }

    @Test
    void badInputAndNoPermissionChangeNothing(Lab lab) {
        KubernetesClient k = lab.admin();
        String name = "ca-" + UUID.randomUUID().toString().substring(0, 8);
        Cli.Result r = Cli.asm(admin(lab), "grant-admin", "--user", "two words", "--name", name);
        assertThat(r.exit()).isEqualTo(2);
        assertThat(r.stderr()).contains("holds spaces or control characters");
        assertThat(Cli.asm(admin(lab), "grant-admin", "--user", "x", "--name", "Bad_Name").exit()).isEqualTo(2);
        assertThat(Cli.asm(admin(lab), "grant-admin").exit()).isEqualTo(2);

        r = Cli.asm(Map.of("KUBECONFIG", lab.nobodyKubeconfig().toString()), "grant-admin", "--user", "mallory@example.com", "--name", name);
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.stderr()).contains("not allowed to read ClusterRoleBinding " + name);
        assertThat(k.rbac().clusterRoleBindings().withName(name).get()).isNull();
    }
}
