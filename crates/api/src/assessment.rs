//! `Assessment`: a request to assess the cluster against the Well-Architected pillars, once
//! or on a schedule, and the result of the latest run.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Pillar, Severity};

/// Annotation that requests a run now; set it to any new value (a timestamp is customary).
pub const RUN_REQUESTED_ANNOTATION: &str = "kube9.io/run-requested";

/// What to assess and when.
// Each printcolumn(...) repeats the same keys, which clippy mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kube9.io",
    version = "v1alpha1",
    kind = "Assessment",
    doc = "A Well-Architected assessment of the cluster across six pillars, run once or on a schedule.",
    plural = "assessments",
    shortname = "assess",
    category = "kube9",
    status = "AssessmentStatus",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Score", type_ = "integer", json_path = ".status.score"),
    printcolumn(name = "Failed", type_ = "integer", json_path = ".status.totals.failed"),
    printcolumn(name = "Completed", type_ = "date", json_path = ".status.completedAt"),
    // A future time printed as a date (an age) shows as <invalid> in kubectl: print the timestamp.
    printcolumn(name = "Next Run", type_ = "string", json_path = ".status.nextRunAt"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentSpec {
    /// Pillars to assess; empty means all six.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 6), extend("x-kubernetes-validations" = [
        {"rule": "self.all(p, self.exists_one(q, q == p))", "message": "pillars: name each pillar at most once"},
    ]))]
    pub pillars: Vec<Pillar>,
    /// Checks to run or skip: a check id (`pillar.name`), a whole pillar, or `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": CHECK_RULE_INCLUDE, "message": CHECK_MESSAGE_INCLUDE},
        {"rule": CHECK_RULE_EXCLUDE, "message": CHECK_MESSAGE_EXCLUDE},
    ]))]
    pub checks: Option<Selection>,
    /// Namespaces to assess or skip; cluster-scoped objects are always assessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": NAMESPACE_RULE_INCLUDE, "message": NAMESPACE_MESSAGE_INCLUDE},
        {"rule": NAMESPACE_RULE_EXCLUDE, "message": NAMESPACE_MESSAGE_EXCLUDE},
    ]))]
    pub namespaces: Option<Selection>,
    /// When to run again; absent means run once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.intervalSeconds >= 10 && self.intervalSeconds <= 2592000", "message": INTERVAL_MESSAGE},
    ]))]
    pub schedule: Option<Schedule>,
    /// Stop scheduled runs without deleting the Assessment.
    #[serde(default)]
    pub suspend: bool,
}

// CEL rules (x-kubernetes-validations, Kubernetes 1.25 and later): a bad Assessment is
// refused by the API server at `kubectl apply`, with these messages, instead of failing a run.
// Servers before 1.25 ignore them; the reconciler still validates.

// A check selector: `*`, a pillar, or `pillar.check-name`.
const CHECK_RULE_INCLUDE: &str = concat!(
    "!has(self.include) || self.include.all(c, c.matches('",
    "^([*]|(security|reliability|performance-efficiency|cost-optimization|operational-excellence|sustainability)([.][a-z0-9]+(-[a-z0-9]+)*)?)$",
    "'))"
);
const CHECK_RULE_EXCLUDE: &str = concat!(
    "!has(self.exclude) || self.exclude.all(c, c.matches('",
    "^([*]|(security|reliability|performance-efficiency|cost-optimization|operational-excellence|sustainability)([.][a-z0-9]+(-[a-z0-9]+)*)?)$",
    "'))"
);
const CHECK_MESSAGE_INCLUDE: &str = "checks.include: each entry is a check id (pillar.name, such as security.privileged), a pillar (such as reliability) or *";
const CHECK_MESSAGE_EXCLUDE: &str = "checks.exclude: each entry is a check id (pillar.name, such as security.privileged), a pillar (such as reliability) or *";
// A namespace name (an RFC 1123 label).
const NAMESPACE_RULE_INCLUDE: &str =
    "!has(self.include) || self.include.all(n, n.size() <= 63 && n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))";
const NAMESPACE_RULE_EXCLUDE: &str =
    "!has(self.exclude) || self.exclude.all(n, n.size() <= 63 && n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))";
const NAMESPACE_MESSAGE_INCLUDE: &str =
    "namespaces.include: each entry is a namespace name (lower-case letters, digits and '-', at most 63)";
const NAMESPACE_MESSAGE_EXCLUDE: &str =
    "namespaces.exclude: each entry is a namespace name (lower-case letters, digits and '-', at most 63)";
const INTERVAL_MESSAGE: &str = "schedule.intervalSeconds must be from 10 (ten seconds) to 2592000 (30 days)";

/// An include list (empty means everything) and an exclude list that wins over it. At most
/// 256 entries each, of at most 253 characters (which also bounds the cost of the CEL rules).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    /// Only these; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub include: Vec<String>,
    /// Never these, even when included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub exclude: Vec<String>,
}

/// A repeating schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Seconds between the start of one run and the start of the next.
    #[schemars(range(min = 10, max = 2_592_000))]
    pub interval_seconds: u32,
}

/// The state of an Assessment's latest run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Accepted; the run has not started yet.
    Pending,
    /// Due, waiting for the run before it: the operator runs one Assessment at a time.
    Queued,
    /// The run is gathering objects or evaluating checks.
    Running,
    /// The run finished and its results are in status.
    Completed,
    /// The run could not finish; see the conditions.
    Failed,
}

/// Counts of check results by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeCounts {
    /// Check evaluations that found nothing wrong.
    pub passed: u32,
    /// Check evaluations that produced a finding.
    pub failed: u32,
    /// Findings suppressed by a `kube9.io/exempt` annotation.
    pub exempted: u32,
    /// Checks that could not be evaluated (for example a kind the cluster does not serve).
    pub errored: u32,
}

/// Counts of failed findings by severity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeverityCounts {
    /// Exploitable or outage-causing now.
    pub critical: u32,
    /// Should be fixed soon.
    pub high: u32,
    /// Worth fixing.
    pub medium: u32,
    /// Minor.
    pub low: u32,
    /// For information only.
    pub info: u32,
}

/// The result for one pillar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PillarResult {
    pub pillar: Pillar,
    /// 0 (everything failed) to 100 (everything passed), weighted by severity.
    #[schemars(range(max = 100))]
    pub score: u8,
    pub totals: OutcomeCounts,
}

/// The object a finding is about: the one a person edits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// The container the finding is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// One check that failed for one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable id of the check, `pillar.name`.
    pub check_id: String,
    pub pillar: Pillar,
    pub severity: Severity,
    pub object: ObjectReference,
    /// What is wrong, about this object.
    pub message: String,
    /// How to fix it.
    pub remediation: String,
    /// True when an exemption annotation suppressed this finding.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exempted: bool,
}

/// The result of the latest run, written only by the operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssessmentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Identifies one run; changes with every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// When the next scheduled run starts; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<Time>,
    /// The value of the run-requested annotation the latest run answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_request: Option<String>,
    /// Overall score, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub score: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<OutcomeCounts>,
    /// Failed findings by severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_severity: Option<SeverityCounts>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 6))]
    pub pillars: Vec<PillarResult>,
    /// The most severe findings first, bounded in number; see `truncated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub findings: Vec<Finding>,
    /// How many findings were left out of `findings` to bound the object's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<u32>,
    /// Where every finding of the latest run can be read when `findings` leaves some out: the
    /// `kube9-operator query findings` command, or why they were not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub more_findings: Option<String>,
    /// Every check the latest run ran, with its outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 512))]
    pub checks: Vec<CheckOutcome>,
    /// The generation of the spec the latest run used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::common::conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The last completed runs, newest first (at most 30; `kube9-operator query assessments
    /// history` shows more, with each check's outcome).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 30))]
    pub history: Vec<RunRecord>,
    /// Where the latest completed run's findings were published as policy reports, or why
    /// they were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reports: Option<ReportsPublished>,
}

/// The policy reports (openreports.io or wgpolicyk8s.io) holding a run's findings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportsPublished {
    /// The API they were written as (`openreports.io/v1alpha1`, `wgpolicyk8s.io/v1alpha2`);
    /// absent when nothing was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Reports written (namespaced and cluster-scoped).
    pub reports: u32,
    /// Results in them.
    pub results: u64,
    /// Why nothing, or not everything, was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub reason: Option<String>,
}

/// Completed runs `status.history` keeps.
pub const MAX_HISTORY: usize = 30;

/// One completed run in `status.history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    pub completed_at: Time,
    #[schemars(range(max = 100))]
    pub score: u8,
    pub totals: OutcomeCounts,
    /// Each pillar run: its score and totals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 6))]
    pub pillars: Vec<PillarResult>,
}

/// How one check came out, over every object it evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    /// Nothing failed (exempted objects included).
    Passing,
    /// An object failed a check of medium severity or above.
    Failing,
    /// An object failed a low or info check.
    Warning,
    /// The check could not run (a kind it reads could not be listed).
    Skipped,
}

/// One check's result in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckOutcome {
    pub check_id: String,
    pub title: String,
    pub pillar: Pillar,
    pub severity: Severity,
    pub state: CheckState,
    pub passed: u32,
    pub failed: u32,
    pub exempted: u32,
    /// What failed (the first objects), or why the check was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub message: Option<String>,
    pub remediation: String,
}

/// The latest scheduled run, in the shape the VS Code extension reads (OperatorStatus
/// `status.assessment` and the legacy ConfigMap's `assessment`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledSummary {
    /// RFC 3339, UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_completed_at: Option<String>,
    pub last_scheduled_outcome: ScheduledOutcome,
    /// pending, running, completed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_run_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_totals: Option<ScheduledTotals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scheduled_error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 512))]
    pub last_scheduled_checks: Vec<ScheduledCheck>,
    pub scheduling_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_interval_seconds: Option<u32>,
    /// `full` when the scheduled Assessment runs every pillar, `pillar` when it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_assessment_mode: Option<AssessmentMode>,
    /// The pillar, when the mode is `pillar`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_assessment_pillar: Option<Pillar>,
}

/// Whether a scheduled Assessment runs every pillar or one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AssessmentMode {
    /// Every pillar runs.
    Full,
    /// One pillar runs.
    Pillar,
}

impl AssessmentSpec {
    /// The mode and pillar the extension shows: `full` for every pillar (none listed, or all
    /// six), `pillar` and that pillar for one; none for a selection of several.
    pub fn mode(&self) -> (Option<AssessmentMode>, Option<Pillar>) {
        let mut pillars = self.pillars.clone();
        pillars.sort_unstable();
        pillars.dedup();
        match pillars.as_slice() {
            [] => (Some(AssessmentMode::Full), None),
            [one] => (Some(AssessmentMode::Pillar), Some(*one)),
            all if all.len() == Pillar::ALL.len() => (Some(AssessmentMode::Full), None),
            _ => (None, None),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScheduledOutcome {
    #[default]
    None,
    Success,
    Failed,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledTotals {
    pub total_checks: u32,
    pub completed_checks: u32,
    pub passed_checks: u32,
    pub failed_checks: u32,
    pub warning_checks: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledCheck {
    pub check_id: String,
    pub check_name: String,
    pub pillar: Pillar,
    pub status: CheckState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub remediation: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_selector_rule_names_every_pillar() {
        for pillar in crate::common::Pillar::ALL {
            assert!(
                CHECK_RULE_INCLUDE.contains(&format!("|{}|", pillar.as_str()))
                    || CHECK_RULE_INCLUDE.contains(&format!("({}|", pillar.as_str()))
                    || CHECK_RULE_INCLUDE.contains(&format!("|{})", pillar.as_str())),
                "{pillar:?}"
            );
        }
        assert_eq!(CHECK_RULE_INCLUDE.replace("include", "exclude"), CHECK_RULE_EXCLUDE);
    }

    #[test]
    fn an_empty_spec_means_run_all_pillars_once() {
        let spec: AssessmentSpec = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(spec.pillars.is_empty());
        assert!(spec.schedule.is_none());
        assert!(!spec.suspend);
    }

    #[test]
    fn phases_use_kubernetes_spelling() {
        assert_eq!(serde_json::to_value(Phase::Completed).unwrap(), "Completed");
    }
}
