//! How bad a Kubernetes Event is: the severity rules of docs/events.md, from its type, reason
//! and object. Pure.

use kube9_store::Severity;

/// Reasons that mean a node or the control plane is failing: critical whatever the Event's
/// type (the node controller records `NodeNotReady` as `Normal`).
pub const CRITICAL_REASONS: &[&str] = &[
    "NodeNotReady",
    "SystemOOM",
    "Rebooted",
    "NodeHasDiskPressure",
    "NodeHasInsufficientMemory",
    "NodeHasInsufficientPID",
    "EvictionThresholdMet",
    "ContainerGCFailed",
    "ImageGCFailed",
    "KubeletSetupFailed",
    "FailedNodeAllocatableEnforcement",
];

/// Warning reasons that mean something failed: errors (critical on a control-plane Pod).
pub const ERROR_REASONS: &[&str] = &[
    "Failed",
    "FailedMount",
    "FailedAttachVolume",
    "FailedScheduling",
    "BackOff",
    "CrashLoopBackOff",
    "Unhealthy",
    "FailedCreate",
    "FailedCreatePodSandBox",
    "FailedKillPod",
    "FailedSync",
    "FailedPostStartHook",
    "FailedPreStopHook",
    "FailedBinding",
    "ProvisioningFailed",
    "ErrImagePull",
    "ImagePullBackOff",
    "InspectFailed",
    "Evicted",
    "OOMKilling",
    "OOMKilled",
    "NetworkNotReady",
];

/// The control plane's static Pods (kubeadm's names) in `kube-system`.
const CONTROL_PLANE_PODS: &[&str] = &["kube-apiserver-", "etcd-", "kube-controller-manager-", "kube-scheduler-"];

/// The severity of an Event: `Normal` is info, `Warning` is a warning, a Warning whose reason
/// means failure is an error, and node or control-plane failures are critical.
pub fn severity(
    type_: &str,
    reason: &str,
    kind: Option<&str>,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Severity {
    if CRITICAL_REASONS.contains(&reason) {
        return Severity::Critical;
    }
    if type_ != "Warning" {
        return Severity::Info;
    }
    if !ERROR_REASONS.contains(&reason) {
        return Severity::Warning;
    }
    let control_plane = kind == Some("Pod")
        && namespace == Some("kube-system")
        && name.is_some_and(|n| CONTROL_PLANE_PODS.iter().any(|p| n.starts_with(p)));
    if control_plane { Severity::Critical } else { Severity::Error }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(type_: &str, reason: &str) -> Severity {
        severity(type_, reason, Some("Pod"), Some("web"), Some("web-1"))
    }

    #[test]
    fn the_rules_of_docs_events_md() {
        assert_eq!(of("Normal", "Pulled"), Severity::Info);
        assert_eq!(of("Normal", "BackOff"), Severity::Info, "only a Warning is a failure");
        assert_eq!(of("Warning", "SomethingOdd"), Severity::Warning);
        for reason in [
            "Failed",
            "FailedMount",
            "FailedScheduling",
            "BackOff",
            "CrashLoopBackOff",
            "Unhealthy",
            "FailedCreate",
            "Evicted",
            "OOMKilling",
            "OOMKilled",
        ] {
            assert_eq!(of("Warning", reason), Severity::Error, "{reason}");
        }
        assert_eq!(of("Normal", "NodeNotReady"), Severity::Critical);
        assert_eq!(of("Warning", "SystemOOM"), Severity::Critical);
        assert_eq!(of("", "Pulled"), Severity::Info, "no type: informational");
    }

    #[test]
    fn a_failing_control_plane_pod_is_critical() {
        let s = |ns, name| severity("Warning", "BackOff", Some("Pod"), Some(ns), Some(name));
        assert_eq!(s("kube-system", "kube-apiserver-node1"), Severity::Critical);
        assert_eq!(s("kube-system", "etcd-node1"), Severity::Critical);
        assert_eq!(s("kube-system", "coredns-abc"), Severity::Error);
        assert_eq!(s("web", "etcd-0"), Severity::Error, "an etcd of one's own is not the control plane");
        assert_eq!(
            severity("Warning", "Unhealthy", Some("Pod"), Some("kube-system"), Some("kube-scheduler-x")),
            Severity::Critical
        );
    }
}
