//! What every judgement is made of: a finding, the status of an unmet requirement by its level,
//! a list that could not be read, and the few words that name what was seen.

use std::collections::BTreeSet;

use kube9_api::ai_conformance::{Level, RequirementStatus as Status};

use crate::evidence::{Evidence, MAX_NAMED, Workload};

/// Unwraps a `Seen`, or returns the not-evaluated finding.
macro_rules! read {
    ($seen:expr, $what:expr) => {
        match $seen.as_ref() {
            Ok(value) => value,
            Err(why) => return $crate::evaluate::finding::unreadable($what, why),
        }
    };
}

/// What was found for one requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub status: Status,
    /// One or two sentences naming what was seen.
    pub rationale: String,
    /// The objects seen, one line each (kept in the store).
    pub evidence: Vec<String>,
}

pub(super) fn finding(status: Status, rationale: impl Into<String>, evidence: Vec<String>) -> Finding {
    Finding { status, rationale: rationale.into(), evidence }
}

/// The status of a requirement that is not met, by its level.
pub(super) fn unmet(level: Level) -> Status {
    match level {
        Level::Must => Status::Failed,
        Level::Should => Status::Warning,
    }
}

/// Why evidence could not be read, as a finding.
pub(super) fn unreadable(what: &str, why: &str) -> Finding {
    finding(Status::NotEvaluated, format!("could not read {what}: {why}"), vec![])
}

/// Every API group the server serves.
pub(super) fn served_groups(evidence: &Evidence) -> Result<BTreeSet<&str>, &str> {
    evidence.groups.as_ref().map(|g| g.keys().map(String::as_str).collect())
}

pub(super) fn named(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let shown: Vec<&str> = items.iter().take(MAX_NAMED).map(String::as_str).collect();
    match items.len() {
        0 => "none".into(),
        n if n > MAX_NAMED => format!("{} and {} more", shown.join(", "), n - MAX_NAMED),
        _ => shown.join(", "),
    }
}

pub(super) fn describe_all(workloads: &[&Workload]) -> Vec<String> {
    workloads.iter().map(|w| w.describe()).collect()
}
