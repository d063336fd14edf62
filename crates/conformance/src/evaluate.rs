//! Each requirement judged from the evidence: `passed`, `failed` or `warning` where the API
//! shows it, `not-applicable` for an accelerator requirement on a cluster without
//! accelerators, `not-evaluated` when the evidence could not be read, and `needs-evidence`
//! where only a person can attest. A requirement that is not met is `failed` for a MUST and
//! `warning` for a SHOULD. Every finding says what was seen.
//!
//! One module per family of requirements, as the checklists group them: accelerators,
//! networking, scheduling and orchestration, observability, security, and operators.

use std::collections::BTreeSet;

use kube9_api::ai_conformance::{Level, RequirementStatus as Status};

use crate::checklist::Requirement;
use crate::evidence::{Evidence, MAX_NAMED, Workload};

/// Unwraps a `Seen`, or returns the not-evaluated finding.
macro_rules! read {
    ($seen:expr, $what:expr) => {
        match $seen.as_ref() {
            Ok(value) => value,
            Err(why) => return $crate::evaluate::unreadable($what, why),
        }
    };
}

mod accelerators;
#[cfg(test)]
mod fixtures;
mod networking;
mod observability;
mod operator;
mod scheduling;
mod security;

/// What was found for one requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub status: Status,
    /// One or two sentences naming what was seen.
    pub rationale: String,
    /// The objects seen, one line each (kept in the store).
    pub evidence: Vec<String>,
}

fn finding(status: Status, rationale: impl Into<String>, evidence: Vec<String>) -> Finding {
    Finding { status, rationale: rationale.into(), evidence }
}

/// The status of a requirement that is not met, by its level.
fn unmet(level: Level) -> Status {
    match level {
        Level::Must => Status::Failed,
        Level::Should => Status::Warning,
    }
}

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

/// Why evidence could not be read, as a finding.
fn unreadable(what: &str, why: &str) -> Finding {
    finding(Status::NotEvaluated, format!("could not read {what}: {why}"), vec![])
}

/// Every API group the server serves.
fn served_groups(evidence: &Evidence) -> Result<BTreeSet<&str>, &str> {
    evidence.groups.as_ref().map(|g| g.keys().map(String::as_str).collect())
}

fn named(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let shown: Vec<&str> = items.iter().take(MAX_NAMED).map(String::as_str).collect();
    match items.len() {
        0 => "none".into(),
        n if n > MAX_NAMED => format!("{} and {} more", shown.join(", "), n - MAX_NAMED),
        _ => shown.join(", "),
    }
}

fn describe_all(workloads: &[&Workload]) -> Vec<String> {
    workloads.iter().map(|w| w.describe()).collect()
}
