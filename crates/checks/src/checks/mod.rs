//! The checks, one file per pillar.

pub mod cost;
pub mod gitops;
pub mod hardening;
pub mod network;
pub mod operations;
pub mod operators;
pub mod performance;
pub mod rbac;
pub mod reliability;
pub mod secrets;
pub mod security;
pub mod sustainability;
pub mod upgrade;

use k8s_openapi::api::core::v1::{Container, PodSpec};

/// Whether `container` of `spec` is a native sidecar: an init container with
/// `restartPolicy: Always` (Kubernetes 1.29 and later), which starts before the regular
/// containers and then runs beside them for the Pod's whole life.
pub(crate) fn sidecar(spec: &PodSpec, container: &Container) -> bool {
    spec.init_containers
        .iter()
        .flatten()
        .any(|i| i.name == container.name && i.restart_policy.as_deref() == Some("Always"))
}

/// Whether `container` of `spec` is a classic init container, which runs to completion
/// before the Pod starts (so probes do not apply to it).
pub(crate) fn runs_to_completion(spec: &PodSpec, container: &Container) -> bool {
    spec.init_containers.iter().flatten().any(|i| i.name == container.name) && !sidecar(spec, container)
}
