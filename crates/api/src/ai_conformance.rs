//! The Kubernetes AI Conformance readiness self-check: what the operator reports in
//! `status.aiConformance` of the OperatorStatus and in the `aiConformance` block of the legacy
//! ConfigMap (CLIENT-CONTRACT.md, "aiConformance"). A readiness self-check from what the
//! Kubernetes API shows, never a certification.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::assessment::ScheduledOutcome;

/// Annotation on the `kube9` OperatorStatus that requests a self-check now; set it to any new
/// value (a timestamp is customary).
pub const RUN_REQUESTED_ANNOTATION: &str = "kube9.io/ai-conformance-requested";

/// What every report says about itself.
pub const NOTICE: &str = "A readiness self-check from what the Kubernetes API shows, against the CNCF \
     Kubernetes AI Conformance checklist; not a certification (the CNCF certifies a platform from \
     evidence its vendor submits).";

/// A checklist's category, spelled as in the CNCF checklist files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Category {
    Accelerators,
    Networking,
    SchedulingOrchestration,
    Observability,
    Security,
    Operator,
}

impl Category {
    /// Every category, in the checklist's order.
    pub const ALL: [Category; 6] = [
        Category::Accelerators,
        Category::Networking,
        Category::SchedulingOrchestration,
        Category::Observability,
        Category::Security,
        Category::Operator,
    ];

    /// The name as the checklist and the reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Accelerators => "accelerators",
            Category::Networking => "networking",
            Category::SchedulingOrchestration => "schedulingOrchestration",
            Category::Observability => "observability",
            Category::Security => "security",
            Category::Operator => "operator",
        }
    }
}

/// How binding a requirement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Level {
    /// Required for conformance.
    #[serde(rename = "MUST")]
    Must,
    /// Recommended.
    #[serde(rename = "SHOULD")]
    Should,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
        }
    }
}

/// What the self-check found for one requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RequirementStatus {
    /// The API shows it is met.
    Passed,
    /// The API shows it is not met (a MUST), or what meets it is broken.
    Failed,
    /// A recommendation (SHOULD) the API shows is not met, or is met only in part.
    Warning,
    /// About accelerators, and the cluster has none.
    NotApplicable,
    /// The evidence could not be read (for example the operator may not list a kind).
    NotEvaluated,
    /// The API cannot show it: a person must attest.
    NeedsEvidence,
}

impl RequirementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequirementStatus::Passed => "passed",
            RequirementStatus::Failed => "failed",
            RequirementStatus::Warning => "warning",
            RequirementStatus::NotApplicable => "not-applicable",
            RequirementStatus::NotEvaluated => "not-evaluated",
            RequirementStatus::NeedsEvidence => "needs-evidence",
        }
    }
}

/// How the latest run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Every requirement was evaluated.
    Completed,
    /// No requirement was evaluated (see `error`).
    Failed,
    /// Some evidence could not be read: those requirements are `not-evaluated`.
    Partial,
}

/// One requirement of the checklist, as the latest run saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequirementRow {
    /// The checklist's id, for example `gang_scheduling`.
    pub id: String,
    pub category: Category,
    pub level: Level,
    /// One line saying what is required.
    pub title: String,
    pub status: RequirementStatus,
    /// Why: what the operator saw (or could not see).
    pub rationale: String,
}

/// Requirements by level and by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConformanceTotals {
    pub total_requirements: u32,
    pub must_requirements: u32,
    pub should_requirements: u32,
    pub passed: u32,
    pub failed: u32,
    pub warning: u32,
    pub not_applicable: u32,
    pub not_evaluated: u32,
    pub needs_evidence: u32,
}

/// The same counts for one category, with its `total`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryTotals {
    pub total: u32,
    pub total_requirements: u32,
    pub must_requirements: u32,
    pub should_requirements: u32,
    pub passed: u32,
    pub failed: u32,
    pub warning: u32,
    pub not_applicable: u32,
    pub not_evaluated: u32,
    pub needs_evidence: u32,
}

impl ConformanceTotals {
    /// Counts `rows`.
    pub fn of<'a>(rows: impl IntoIterator<Item = &'a RequirementRow>) -> ConformanceTotals {
        let mut t = ConformanceTotals::default();
        for row in rows {
            t.total_requirements += 1;
            match row.level {
                Level::Must => t.must_requirements += 1,
                Level::Should => t.should_requirements += 1,
            }
            match row.status {
                RequirementStatus::Passed => t.passed += 1,
                RequirementStatus::Failed => t.failed += 1,
                RequirementStatus::Warning => t.warning += 1,
                RequirementStatus::NotApplicable => t.not_applicable += 1,
                RequirementStatus::NotEvaluated => t.not_evaluated += 1,
                RequirementStatus::NeedsEvidence => t.needs_evidence += 1,
            }
        }
        t
    }
}

impl From<ConformanceTotals> for CategoryTotals {
    fn from(t: ConformanceTotals) -> Self {
        CategoryTotals {
            total: t.total_requirements,
            total_requirements: t.total_requirements,
            must_requirements: t.must_requirements,
            should_requirements: t.should_requirements,
            passed: t.passed,
            failed: t.failed,
            warning: t.warning,
            not_applicable: t.not_applicable,
            not_evaluated: t.not_evaluated,
            needs_evidence: t.needs_evidence,
        }
    }
}

/// The counts of each category that has requirements, keyed as the checklist names it.
pub fn categories(rows: &[RequirementRow]) -> BTreeMap<String, CategoryTotals> {
    Category::ALL
        .iter()
        .filter(|c| rows.iter().any(|r| r.category == **c))
        .map(|c| (c.as_str().to_owned(), ConformanceTotals::of(rows.iter().filter(|r| r.category == *c)).into()))
        .collect()
}

/// `status.aiConformance`: the latest self-check and how it is scheduled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiConformanceSummary {
    /// The checklist used (`1.35`): the newest at or below the cluster's minor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checklist_version: Option<String>,
    /// The cluster's Kubernetes minor (`1.35`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_minor: Option<String>,
    /// The commit of cncf/k8s-ai-conformance the operator's checklists follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
    /// When the latest run finished (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed_at: Option<String>,
    /// `none` before the first run; `success` when the run finished (whatever it found).
    pub last_outcome: ScheduledOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_state: Option<RunState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub totals: ConformanceTotals,
    /// The counts per category.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub categories: BTreeMap<String, CategoryTotals>,
    /// One row per requirement of the checklist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub requirements: Vec<RequirementRow>,
    /// Why the latest run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub error: Option<String>,
    pub scheduling_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_interval_seconds: Option<u64>,
    /// Where the checklist used comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checklist_source: Option<String>,
    /// The value of the run-request annotation the latest run answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_request: Option<String>,
    /// What this report is, and is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// The ConfigMap's `aiConformance` block: exactly the contract's keys, every one present
/// (`null` where nothing is known).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyAiConformance {
    pub checklist_version: Option<String>,
    pub kubernetes_minor: Option<String>,
    pub source_revision: Option<String>,
    pub last_completed_at: Option<String>,
    pub last_outcome: ScheduledOutcome,
    pub run_state: Option<RunState>,
    pub run_id: Option<String>,
    pub totals: ConformanceTotals,
    pub categories: BTreeMap<String, CategoryTotals>,
    pub requirements: Vec<RequirementRow>,
    pub error: Option<String>,
    pub scheduling_enabled: bool,
    pub schedule_interval_seconds: Option<u64>,
    pub checklist_source: Option<String>,
}

impl From<&AiConformanceSummary> for LegacyAiConformance {
    fn from(s: &AiConformanceSummary) -> Self {
        LegacyAiConformance {
            checklist_version: s.checklist_version.clone(),
            kubernetes_minor: s.kubernetes_minor.clone(),
            source_revision: s.source_revision.clone(),
            last_completed_at: s.last_completed_at.clone(),
            last_outcome: s.last_outcome,
            run_state: s.run_state,
            run_id: s.run_id.clone(),
            totals: s.totals,
            categories: s.categories.clone(),
            requirements: s.requirements.clone(),
            error: s.error.clone(),
            scheduling_enabled: s.scheduling_enabled,
            schedule_interval_seconds: s.schedule_interval_seconds,
            checklist_source: s.checklist_source.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(category: Category, level: Level, status: RequirementStatus) -> RequirementRow {
        RequirementRow { id: "x".into(), category, level, title: "t".into(), status, rationale: "r".into() }
    }

    #[test]
    fn words_are_the_contracts() {
        let r = row(Category::SchedulingOrchestration, Level::Should, RequirementStatus::NeedsEvidence);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (json["category"].as_str(), json["level"].as_str(), json["status"].as_str()),
            (Some("schedulingOrchestration"), Some("SHOULD"), Some("needs-evidence"))
        );
        assert_eq!(serde_json::to_value(RequirementStatus::NotApplicable).unwrap(), "not-applicable");
        assert_eq!(serde_json::to_value(RunState::Partial).unwrap(), "partial");
    }

    #[test]
    fn the_configmap_block_has_every_key_before_a_run() {
        let json = serde_json::to_value(LegacyAiConformance::from(&AiConformanceSummary::default())).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = vec![
            "checklistVersion",
            "kubernetesMinor",
            "sourceRevision",
            "lastCompletedAt",
            "lastOutcome",
            "runState",
            "runId",
            "totals",
            "categories",
            "requirements",
            "error",
            "schedulingEnabled",
            "scheduleIntervalSeconds",
            "checklistSource",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(json["lastOutcome"], "none");
        assert_eq!(json["totals"]["notApplicable"], 0);
    }

    #[test]
    fn totals_and_categories_count_rows() {
        let rows = [
            row(Category::Accelerators, Level::Must, RequirementStatus::Passed),
            row(Category::Accelerators, Level::Should, RequirementStatus::NotApplicable),
            row(Category::Security, Level::Must, RequirementStatus::Failed),
        ];
        let t = ConformanceTotals::of(&rows);
        assert_eq!((t.total_requirements, t.must_requirements, t.should_requirements), (3, 2, 1));
        assert_eq!((t.passed, t.failed, t.not_applicable), (1, 1, 1));
        let c = categories(&rows);
        assert_eq!(c.keys().collect::<Vec<_>>(), ["accelerators", "security"]);
        assert_eq!((c["accelerators"].total, c["accelerators"].passed), (2, 1));
    }
}
