//! The kinds the checks (and the collectors) read: for each, its API group, the versions to
//! try in order (the newest first, then the ones older clusters serve), and its plural. The
//! operator lists exactly these; the chart's ClusterRole grants exactly these (a test in the
//! operator ties the two).

use std::sync::LazyLock;

/// A kind as the API server serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// The name checks use in `Check::reads`.
    pub name: &'static str,
    pub group: &'static str,
    pub versions: &'static [&'static str],
    pub plural: &'static str,
}

/// Every kind any check or collector reads.
pub const KINDS: &[Kind] = &[
    Kind { name: "Namespace", group: "", versions: &["v1"], plural: "namespaces" },
    Kind { name: "Node", group: "", versions: &["v1"], plural: "nodes" },
    Kind { name: "Pod", group: "", versions: &["v1"], plural: "pods" },
    Kind { name: "Service", group: "", versions: &["v1"], plural: "services" },
    Kind { name: "ResourceQuota", group: "", versions: &["v1"], plural: "resourcequotas" },
    Kind { name: "LimitRange", group: "", versions: &["v1"], plural: "limitranges" },
    Kind { name: "PersistentVolumeClaim", group: "", versions: &["v1"], plural: "persistentvolumeclaims" },
    Kind { name: "ReplicationController", group: "", versions: &["v1"], plural: "replicationcontrollers" },
    Kind { name: "PodTemplate", group: "", versions: &["v1"], plural: "podtemplates" },
    Kind { name: "ConfigMap", group: "", versions: &["v1"], plural: "configmaps" },
    Kind { name: "Deployment", group: "apps", versions: &["v1"], plural: "deployments" },
    Kind { name: "StatefulSet", group: "apps", versions: &["v1"], plural: "statefulsets" },
    Kind { name: "DaemonSet", group: "apps", versions: &["v1"], plural: "daemonsets" },
    Kind { name: "ReplicaSet", group: "apps", versions: &["v1"], plural: "replicasets" },
    Kind { name: "Job", group: "batch", versions: &["v1"], plural: "jobs" },
    Kind { name: "CronJob", group: "batch", versions: &["v1", "v1beta1"], plural: "cronjobs" },
    Kind { name: "Ingress", group: "networking.k8s.io", versions: &["v1", "v1beta1"], plural: "ingresses" },
    Kind { name: "NetworkPolicy", group: "networking.k8s.io", versions: &["v1"], plural: "networkpolicies" },
    Kind { name: "PodDisruptionBudget", group: "policy", versions: &["v1", "v1beta1"], plural: "poddisruptionbudgets" },
    Kind {
        name: "HorizontalPodAutoscaler",
        group: "autoscaling",
        versions: &["v2", "v2beta2"],
        plural: "horizontalpodautoscalers",
    },
    Kind { name: "Role", group: "rbac.authorization.k8s.io", versions: &["v1"], plural: "roles" },
    Kind { name: "ClusterRole", group: "rbac.authorization.k8s.io", versions: &["v1"], plural: "clusterroles" },
    Kind { name: "RoleBinding", group: "rbac.authorization.k8s.io", versions: &["v1"], plural: "rolebindings" },
    Kind {
        name: "ClusterRoleBinding",
        group: "rbac.authorization.k8s.io",
        versions: &["v1"],
        plural: "clusterrolebindings",
    },
    // The cluster's other operators (rules/operators.rs).
    Kind {
        name: "ValidatingWebhookConfiguration",
        group: "admissionregistration.k8s.io",
        versions: &["v1"],
        plural: "validatingwebhookconfigurations",
    },
    Kind {
        name: "MutatingWebhookConfiguration",
        group: "admissionregistration.k8s.io",
        versions: &["v1"],
        plural: "mutatingwebhookconfigurations",
    },
    Kind { name: "APIService", group: "apiregistration.k8s.io", versions: &["v1"], plural: "apiservices" },
    Kind {
        name: "CustomResourceDefinition",
        group: "apiextensions.k8s.io",
        versions: &["v1"],
        plural: "customresourcedefinitions",
    },
    Kind { name: "EndpointSlice", group: "discovery.k8s.io", versions: &["v1", "v1beta1"], plural: "endpointslices" },
    // Argo CD (the GitOps checks); unavailable where its CRDs are not served.
    Kind { name: "Application", group: "argoproj.io", versions: &["v1alpha1"], plural: "applications" },
    Kind { name: "AppProject", group: "argoproj.io", versions: &["v1alpha1"], plural: "appprojects" },
    // Trivy Operator's scans (the image-vulnerability check); where its CRD is not served the
    // check is skipped and says so.
    Kind {
        name: "VulnerabilityReport",
        group: "aquasecurity.github.io",
        versions: &["v1alpha1"],
        plural: "vulnerabilityreports",
    },
];

/// Kinds that come with an add-on's CRDs: a cluster that does not serve them has none, which
/// is no reason to skip the checks that read them (being forbidden to list them still is).
pub const OPTIONAL: &[&str] = &["Application", "AppProject"];

/// Kinds the chart deliberately does not let the operator list: ConfigMaps often hold what
/// should have been Secrets, so reading every one is left to whoever installs the operator
/// (an extra ClusterRole granting `list` on them). Without that grant the checks that read them
/// are reported as skipped in the cluster; offline they always run.
pub const NOT_GRANTED_BY_THE_CHART: &[&str] = &["ConfigMap"];

/// Kinds a run keeps whole, read before the others: what the checks look things up in
/// (exemptions on Namespaces, PDBs and HPAs for workloads, NetworkPolicies for Pods) and what
/// the checks that relate objects start from. Clusters hold few of them next to the streamed
/// kinds (workloads, Pods, Services, ConfigMaps), which are checked page by page and dropped.
pub const KEPT: &[&str] = &[
    "Namespace",
    "Node",
    "ResourceQuota",
    "LimitRange",
    "PersistentVolumeClaim",
    "Ingress",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "Application",
    "AppProject",
    "VulnerabilityReport",
];

/// Whether a run keeps objects of `kind` whole ([`KEPT`]) rather than streaming them.
pub fn kept(kind: &str) -> bool {
    KEPT.contains(&kind)
}

static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| KINDS.iter().map(|k| k.name).collect());

/// The names of every kind in [`KINDS`], in its order.
pub fn names() -> &'static [&'static str] {
    &NAMES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    #[test]
    fn every_kind_a_check_reads_is_in_the_table_once() {
        for check in registry() {
            for kind in check.reads {
                assert!(names().contains(kind), "{} reads {kind}, which is never listed", check.id);
            }
        }
        // A check over the kept kinds alone is run once, before any page: what it reads must
        // be kept, or a streamed run would never show it those objects.
        for check in registry() {
            if let crate::check::Run::Kept(_) = check.run {
                for kind in check.reads {
                    assert!(kept(kind), "{} runs over the kept kinds but reads {kind}, which is streamed", check.id);
                }
            }
        }
        let mut sorted = names().to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), KINDS.len());
    }
}
