//! API versions Kubernetes deprecates and removes (as Pluto and kubent list them), from the
//! Kubernetes deprecation guide: manifests still written in them are an upgrade blocker.

/// One API version of one kind, and when Kubernetes deprecated and removed it.
#[derive(Debug, PartialEq, Eq)]
pub struct Deprecation {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// The minor release (of 1.x) that deprecated it.
    pub deprecated_in: u32,
    /// The minor release that stopped serving it; None while it is still served.
    pub removed_in: Option<u32>,
    /// The apiVersion to use instead.
    pub replacement: &'static str,
}

/// The newest Kubernetes minor this table is written for: the target when none is given.
pub const NEWEST_MINOR: u32 = 37;

const fn d(
    api_version: &'static str,
    kind: &'static str,
    deprecated_in: u32,
    removed_in: u32,
    replacement: &'static str,
) -> Deprecation {
    Deprecation { api_version, kind, deprecated_in, removed_in: Some(removed_in), replacement }
}

pub static TABLE: &[Deprecation] = &[
    d("extensions/v1beta1", "Deployment", 9, 16, "apps/v1"),
    d("extensions/v1beta1", "DaemonSet", 9, 16, "apps/v1"),
    d("extensions/v1beta1", "ReplicaSet", 9, 16, "apps/v1"),
    d("extensions/v1beta1", "NetworkPolicy", 9, 16, "networking.k8s.io/v1"),
    d(
        "extensions/v1beta1",
        "PodSecurityPolicy",
        10,
        16,
        "policy/v1beta1 (itself removed in 1.25: use Pod Security admission)",
    ),
    d("extensions/v1beta1", "Ingress", 14, 22, "networking.k8s.io/v1"),
    d("apps/v1beta1", "Deployment", 9, 16, "apps/v1"),
    d("apps/v1beta1", "StatefulSet", 9, 16, "apps/v1"),
    d("apps/v1beta1", "ReplicaSet", 9, 16, "apps/v1"),
    d("apps/v1beta2", "Deployment", 9, 16, "apps/v1"),
    d("apps/v1beta2", "StatefulSet", 9, 16, "apps/v1"),
    d("apps/v1beta2", "DaemonSet", 9, 16, "apps/v1"),
    d("apps/v1beta2", "ReplicaSet", 9, 16, "apps/v1"),
    d("networking.k8s.io/v1beta1", "Ingress", 19, 22, "networking.k8s.io/v1"),
    d("networking.k8s.io/v1beta1", "IngressClass", 19, 22, "networking.k8s.io/v1"),
    d("rbac.authorization.k8s.io/v1beta1", "ClusterRole", 17, 22, "rbac.authorization.k8s.io/v1"),
    d("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding", 17, 22, "rbac.authorization.k8s.io/v1"),
    d("rbac.authorization.k8s.io/v1beta1", "Role", 17, 22, "rbac.authorization.k8s.io/v1"),
    d("rbac.authorization.k8s.io/v1beta1", "RoleBinding", 17, 22, "rbac.authorization.k8s.io/v1"),
    d("rbac.authorization.k8s.io/v1alpha1", "ClusterRole", 17, 22, "rbac.authorization.k8s.io/v1"),
    d("rbac.authorization.k8s.io/v1alpha1", "ClusterRoleBinding", 17, 22, "rbac.authorization.k8s.io/v1"),
    d("rbac.authorization.k8s.io/v1alpha1", "Role", 17, 22, "rbac.authorization.k8s.io/v1"),
    d("rbac.authorization.k8s.io/v1alpha1", "RoleBinding", 17, 22, "rbac.authorization.k8s.io/v1"),
    d("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", 16, 22, "apiextensions.k8s.io/v1"),
    d(
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration",
        16,
        22,
        "admissionregistration.k8s.io/v1",
    ),
    d(
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingWebhookConfiguration",
        16,
        22,
        "admissionregistration.k8s.io/v1",
    ),
    d("apiregistration.k8s.io/v1beta1", "APIService", 19, 22, "apiregistration.k8s.io/v1"),
    d("authentication.k8s.io/v1beta1", "TokenReview", 19, 22, "authentication.k8s.io/v1"),
    d("authorization.k8s.io/v1beta1", "SubjectAccessReview", 19, 22, "authorization.k8s.io/v1"),
    d("authorization.k8s.io/v1beta1", "LocalSubjectAccessReview", 19, 22, "authorization.k8s.io/v1"),
    d("authorization.k8s.io/v1beta1", "SelfSubjectAccessReview", 19, 22, "authorization.k8s.io/v1"),
    d("certificates.k8s.io/v1beta1", "CertificateSigningRequest", 19, 22, "certificates.k8s.io/v1"),
    d("coordination.k8s.io/v1beta1", "Lease", 19, 22, "coordination.k8s.io/v1"),
    d("scheduling.k8s.io/v1beta1", "PriorityClass", 14, 22, "scheduling.k8s.io/v1"),
    d("scheduling.k8s.io/v1alpha1", "PriorityClass", 14, 17, "scheduling.k8s.io/v1"),
    d("storage.k8s.io/v1beta1", "CSIDriver", 19, 22, "storage.k8s.io/v1"),
    d("storage.k8s.io/v1beta1", "CSINode", 17, 22, "storage.k8s.io/v1"),
    d("storage.k8s.io/v1beta1", "StorageClass", 19, 22, "storage.k8s.io/v1"),
    d("storage.k8s.io/v1beta1", "VolumeAttachment", 19, 22, "storage.k8s.io/v1"),
    d("storage.k8s.io/v1beta1", "CSIStorageCapacity", 24, 27, "storage.k8s.io/v1"),
    d("batch/v1beta1", "CronJob", 21, 25, "batch/v1"),
    d("batch/v2alpha1", "CronJob", 8, 21, "batch/v1"),
    d("discovery.k8s.io/v1beta1", "EndpointSlice", 21, 25, "discovery.k8s.io/v1"),
    d("events.k8s.io/v1beta1", "Event", 19, 25, "events.k8s.io/v1"),
    d("autoscaling/v2beta1", "HorizontalPodAutoscaler", 22, 25, "autoscaling/v2"),
    d("autoscaling/v2beta2", "HorizontalPodAutoscaler", 23, 26, "autoscaling/v2"),
    d("policy/v1beta1", "PodDisruptionBudget", 21, 25, "policy/v1"),
    d("policy/v1beta1", "PodSecurityPolicy", 21, 25, "Pod Security admission (namespace labels)"),
    d("node.k8s.io/v1beta1", "RuntimeClass", 20, 25, "node.k8s.io/v1"),
    d("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema", 23, 26, "flowcontrol.apiserver.k8s.io/v1"),
    d("flowcontrol.apiserver.k8s.io/v1beta1", "PriorityLevelConfiguration", 23, 26, "flowcontrol.apiserver.k8s.io/v1"),
    d("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema", 26, 29, "flowcontrol.apiserver.k8s.io/v1"),
    d("flowcontrol.apiserver.k8s.io/v1beta2", "PriorityLevelConfiguration", 26, 29, "flowcontrol.apiserver.k8s.io/v1"),
    d("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", 29, 32, "flowcontrol.apiserver.k8s.io/v1"),
    d("flowcontrol.apiserver.k8s.io/v1beta3", "PriorityLevelConfiguration", 29, 32, "flowcontrol.apiserver.k8s.io/v1"),
    d("admissionregistration.k8s.io/v1beta1", "ValidatingAdmissionPolicy", 30, 32, "admissionregistration.k8s.io/v1"),
    d(
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingAdmissionPolicyBinding",
        30,
        32,
        "admissionregistration.k8s.io/v1",
    ),
    // 1.36 stops serving none of the versions above; 1.37 stops serving these (k8s.io/api
    // v0.37's prerelease-lifecycle: beta APIs are removed three releases after deprecation).
    d("networking.k8s.io/v1beta1", "IPAddress", 34, 37, "networking.k8s.io/v1"),
    d("networking.k8s.io/v1beta1", "ServiceCIDR", 34, 37, "networking.k8s.io/v1"),
    d("storage.k8s.io/v1beta1", "VolumeAttributesClass", 34, 37, "storage.k8s.io/v1"),
    d("certificates.k8s.io/v1alpha1", "ClusterTrustBundle", 34, 37, "certificates.k8s.io/v1beta1"),
];

/// The table's entry for this apiVersion and kind, if it has one.
pub fn find(api_version: &str, kind: &str) -> Option<&'static Deprecation> {
    TABLE.iter().find(|d| d.api_version == api_version && d.kind == kind)
}

/// Parses `1.29`, `v1.29.3` or `1.29+` into (major, minor).
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let text = text.trim().trim_start_matches('v');
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
    Some((major, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_servers_and_people_write_them() {
        assert_eq!(parse_version("1.29"), Some((1, 29)));
        assert_eq!(parse_version("v1.35.4"), Some((1, 35)));
        assert_eq!(parse_version("1.27+"), Some((1, 27)));
        assert_eq!(parse_version("latest"), None);
    }

    #[test]
    fn what_1_37_stops_serving_is_listed() {
        for (api_version, kind) in [
            ("networking.k8s.io/v1beta1", "IPAddress"),
            ("networking.k8s.io/v1beta1", "ServiceCIDR"),
            ("storage.k8s.io/v1beta1", "VolumeAttributesClass"),
        ] {
            assert_eq!(find(api_version, kind).and_then(|d| d.removed_in), Some(37), "{api_version} {kind}");
        }
        assert_eq!(NEWEST_MINOR, 37);
    }

    #[test]
    fn every_entry_is_removed_after_it_is_deprecated_and_unique() {
        for (i, d) in TABLE.iter().enumerate() {
            assert!(d.removed_in.is_none_or(|r| r > d.deprecated_in), "{d:?}");
            assert!(d.removed_in.is_none_or(|r| r <= NEWEST_MINOR), "{d:?}");
            assert!(!TABLE[..i].iter().any(|o| o.api_version == d.api_version && o.kind == d.kind), "{d:?}");
        }
    }
}
