//! Each requirement judged from the evidence: `passed`, `failed` or `warning` where the API
//! shows it, `not-applicable` for an accelerator requirement on a cluster without
//! accelerators, `not-evaluated` when the evidence could not be read, and `needs-evidence`
//! where only a person can attest. A requirement that is not met is `failed` for a MUST and
//! `warning` for a SHOULD. Every finding says what was seen.
//!
//! One module per family of requirements, as the checklists group them: accelerators,
//! networking, scheduling and orchestration, observability, security, and operators.

use kube9_api::ai_conformance::RequirementStatus as Status;

use crate::checklist::Requirement;
use crate::evidence::Evidence;
pub use finding::Finding;
use finding::finding;

#[macro_use]
mod finding;

mod accelerators;
mod networking;
mod observability;
mod operator;
mod scheduling;
mod security;

/// Judges one requirement.
pub fn evaluate(requirement: &Requirement, evidence: &Evidence) -> Finding {
    let level = requirement.level;
    match requirement.id {
        "dra_support" => accelerators::dra_support(level, evidence),
        "driver_runtime_management" => accelerators::driver_runtime_management(level, evidence),
        "gpu_sharing" => accelerators::gpu_sharing(evidence),
        "virtualized_accelerator" => accelerators::virtualized_accelerator(evidence),
        "ai_inference" => networking::ai_inference(level, evidence),
        "advanced_inference_ingress" => networking::advanced_inference_ingress(level, evidence),
        "high_performance_networking" => networking::high_performance_networking(evidence),
        "disaggregated_inference" => networking::disaggregated_inference(evidence),
        "gang_scheduling" => scheduling::gang_scheduling(level, evidence),
        "cluster_autoscaling" => scheduling::cluster_autoscaling(level, evidence),
        "pod_autoscaling" => scheduling::pod_autoscaling(level, evidence),
        "accelerator_metrics" => observability::accelerator_metrics(level, evidence),
        "ai_service_metrics" => observability::ai_service_metrics(level, evidence),
        "secure_accelerator_access" => security::secure_accelerator_access(level, evidence),
        "robust_controller" => operator::robust_controller(level, evidence),
        other => finding(
            Status::NeedsEvidence,
            format!("the operator has no rule for {other}; attest it from the platform's documentation"),
            vec![],
        ),
    }
}

#[cfg(test)]
mod fixtures;
