//! What runs Pods, and how a pod spec is read: its owners (workloads and bare Pods), its
//! containers, and the settings that several checks read the same way.

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Container, PodSecurityContext, PodSpec, SELinuxOptions, SeccompProfile, SecurityContext,
};

use crate::snapshot::{Snapshot, Workload};
use crate::subject::Subject;

/// The kinds that run Pods: workloads and bare Pods.
pub const POD_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
    "ReplicationController",
    "PodTemplate",
];

/// The `reads` of a check that relates the Pods that run to objects of the kinds given: those
/// kinds, then every kind that runs Pods (POD_KINDS but PodTemplate, which runs none). One
/// list, so that a kind that comes to run Pods is read by every such check.
macro_rules! reads_running_pods {
    ($($kind:literal),+) => {
        &[
            $($kind,)+
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "ReplicationController",
            "Job",
            "CronJob",
            "Pod",
        ]
    };
}
pub(crate) use reads_running_pods;

/// Something that runs Pods, with the spec a person edits.
pub struct PodOwner<'a> {
    pub subject: Subject<'a>,
    pub spec: &'a PodSpec,
    /// None for a bare Pod.
    pub workload: Option<&'a Workload>,
    pub annotations: Option<&'a std::collections::BTreeMap<String, String>>,
}

/// Every workload's pod template and every bare Pod.
pub fn pod_owners(s: &Snapshot) -> impl Iterator<Item = PodOwner<'_>> {
    static EMPTY: LazyLock<PodSpec> = LazyLock::new(PodSpec::default);
    let workloads = s.workloads.iter().map(|w| PodOwner {
        subject: Subject::new(w.kind.api_version(), w.kind.as_str(), &w.metadata),
        spec: w.template.spec.as_ref().unwrap_or(&EMPTY),
        workload: Some(w),
        annotations: w.template.metadata.as_ref().and_then(|m| m.annotations.as_ref()),
    });
    let pods = s.pods.iter().map(|p| PodOwner {
        subject: Subject::new("v1", "Pod", &p.metadata),
        spec: p.spec.as_ref().unwrap_or(&EMPTY),
        workload: None,
        annotations: p.metadata.annotations.as_ref(),
    });
    workloads.chain(pods)
}

/// Every container of a pod spec, init containers included.
pub fn containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers.iter().flatten().chain(spec.containers.iter())
}

/// Whether `container` of `spec` is a native sidecar: an init container with
/// `restartPolicy: Always` (Kubernetes 1.29 and later), which starts before the regular
/// containers and then runs beside them for the Pod's whole life.
pub fn sidecar(spec: &PodSpec, container: &Container) -> bool {
    spec.init_containers
        .iter()
        .flatten()
        .any(|i| i.name == container.name && i.restart_policy.as_deref() == Some("Always"))
}

/// Whether `container` of `spec` is a classic init container, which runs to completion
/// before the Pod starts (so probes do not apply to it).
pub fn runs_to_completion(spec: &PodSpec, container: &Container) -> bool {
    spec.init_containers.iter().flatten().any(|i| i.name == container.name) && !sidecar(spec, container)
}

/// Whether the container requests `resource`: a limit alone is also the request.
pub fn requests(c: &Container, resource: &str) -> bool {
    let r = c.resources.as_ref();
    r.and_then(|r| r.requests.as_ref()).is_some_and(|m| m.contains_key(resource)) || limits(c, resource)
}

/// Whether the container limits `resource`.
pub fn limits(c: &Container, resource: &str) -> bool {
    c.resources.as_ref().and_then(|r| r.limits.as_ref()).is_some_and(|m| m.contains_key(resource))
}

/// The ServiceAccount a pod spec runs as: serviceAccountName, or the deprecated
/// serviceAccount the API server still honours, or `default`.
pub fn service_account(spec: &PodSpec) -> &str {
    spec.service_account_name
        .as_deref()
        .or(spec.service_account.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
}

/// Whether the image reference pins a version (a tag other than `latest`, or a digest).
pub fn image_pinned(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag != "latest" && !tag.is_empty(),
        None => false,
    }
}

/// A container's security settings as the kubelet applies them: a setting the container's
/// securityContext and the Pod's both carry is taken from the container's, else the Pod's.
/// Settings only one of them carries (privileged, capabilities, fsGroup, sysctls) are read
/// from that one directly.
#[derive(Clone, Copy, Debug)]
pub struct SecuritySettings<'a> {
    container: Option<&'a SecurityContext>,
    pod: Option<&'a PodSecurityContext>,
}

impl<'a> SecuritySettings<'a> {
    pub fn of(spec: &'a PodSpec, container: &'a Container) -> SecuritySettings<'a> {
        SecuritySettings { container: container.security_context.as_ref(), pod: spec.security_context.as_ref() }
    }

    fn either<T>(
        &self,
        container: impl FnOnce(&'a SecurityContext) -> Option<T>,
        pod: impl FnOnce(&'a PodSecurityContext) -> Option<T>,
    ) -> Option<T> {
        self.container.and_then(container).or_else(|| self.pod.and_then(pod))
    }

    pub fn run_as_user(&self) -> Option<i64> {
        self.either(|c| c.run_as_user, |p| p.run_as_user)
    }

    pub fn run_as_group(&self) -> Option<i64> {
        self.either(|c| c.run_as_group, |p| p.run_as_group)
    }

    pub fn run_as_non_root(&self) -> Option<bool> {
        self.either(|c| c.run_as_non_root, |p| p.run_as_non_root)
    }

    pub fn app_armor_profile(&self) -> Option<&'a AppArmorProfile> {
        self.either(|c| c.app_armor_profile.as_ref(), |p| p.app_armor_profile.as_ref())
    }

    pub fn se_linux_options(&self) -> Option<&'a SELinuxOptions> {
        self.either(|c| c.se_linux_options.as_ref(), |p| p.se_linux_options.as_ref())
    }

    pub fn seccomp_profile(&self) -> Option<&'a SeccompProfile> {
        self.either(|c| c.seccomp_profile.as_ref(), |p| p.seccomp_profile.as_ref())
    }

    pub fn windows_host_process(&self) -> Option<bool> {
        self.either(
            |c| c.windows_options.as_ref().and_then(|w| w.host_process),
            |p| p.windows_options.as_ref().and_then(|w| w.host_process),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(value: serde_json::Value) -> PodSpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_containers_security_setting_wins_over_the_pods() {
        let spec = spec(json!({
            "securityContext": {"runAsUser": 1000, "runAsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {"name": "own", "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Unconfined"}}},
                {"name": "inherits"},
            ],
        }));
        let own = SecuritySettings::of(&spec, &spec.containers[0]);
        assert_eq!((own.run_as_user(), own.run_as_group()), (Some(0), Some(2000)));
        assert_eq!(own.seccomp_profile().map(|p| p.type_.as_str()), Some("Unconfined"));
        let inherits = SecuritySettings::of(&spec, &spec.containers[1]);
        assert_eq!((inherits.run_as_user(), inherits.run_as_non_root()), (Some(1000), None));
        assert_eq!(inherits.seccomp_profile().map(|p| p.type_.as_str()), Some("RuntimeDefault"));
    }

    #[test]
    fn a_limit_alone_is_also_the_request() {
        let spec = spec(json!({"containers": [
            {"name": "limited", "resources": {"limits": {"cpu": "1"}}},
            {"name": "requested", "resources": {"requests": {"cpu": "1"}}},
        ]}));
        let (limited, requested) = (&spec.containers[0], &spec.containers[1]);
        assert!(requests(limited, "cpu") && limits(limited, "cpu"));
        assert!(requests(requested, "cpu") && !limits(requested, "cpu"));
        assert!(!requests(requested, "memory"));
    }
}
