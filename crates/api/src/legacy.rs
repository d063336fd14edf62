//! The JSON the kube9 VS Code extension reads from the `kube9-operator-status` ConfigMap,
//! exactly as its contract says: every key present from the first write, `null` where
//! nothing is known yet, pillars in kebab-case and check outcomes in the extension's words.

use serde::{Deserialize, Serialize};

use crate::assessment::{AssessmentMode, CheckState, ScheduledOutcome, ScheduledSummary, ScheduledTotals};
use crate::common::Pillar;
use crate::operator_status::{CollectionStats, Health, Mode, Tier};

/// Name of the legacy status ConfigMap, in the operator's namespace.
pub const CONFIGMAP_NAME: &str = "kube9-operator-status";
/// The ConfigMap key that holds the JSON.
pub const CONFIGMAP_KEY: &str = "status";
/// The plain ConfigMap key naming the namespace the operator's Pod runs in.
pub const CONFIGMAP_NAMESPACE_KEY: &str = "namespace";

/// The `status` key of the ConfigMap. `error` is always present (null when healthy);
/// `clusterId` only when registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyStatus {
    pub mode: Mode,
    pub tier: Tier,
    pub version: String,
    pub health: Health,
    /// RFC 3339, UTC.
    pub last_update: String,
    pub registered: bool,
    /// Whether an API key is configured (older extensions show their AI panel from it).
    pub api_key_configured: bool,
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub namespace: String,
    pub collection_stats: LegacyCollectionStats,
    pub assessment: LegacyAssessment,
    /// The Kubernetes AI Conformance readiness self-check; absent until the operator has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_conformance: Option<crate::ai_conformance::LegacyAiConformance>,
    /// Present once Argo CD detection has run (the extension then trusts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<crate::argocd::LegacyArgoCd>,
}

/// How the collectors are doing; `lastSuccessTime` is null before the first collection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyCollectionStats {
    pub total_success_count: u64,
    pub total_failure_count: u64,
    pub collections_stored_count: u64,
    /// RFC 3339, UTC.
    pub last_success_time: Option<String>,
}

impl LegacyCollectionStats {
    /// The counts, with the time written as `rfc3339` writes it.
    pub fn new(stats: Option<&CollectionStats>, rfc3339: impl Fn(&k8s_openapi::jiff::Timestamp) -> String) -> Self {
        let Some(stats) = stats else { return Self::default() };
        LegacyCollectionStats {
            total_success_count: stats.total_success_count,
            total_failure_count: stats.total_failure_count,
            collections_stored_count: stats.collections_stored_count,
            last_success_time: stats.last_success_time.as_ref().map(|t| rfc3339(&t.0)),
        }
    }
}

/// The latest scheduled assessment: every key always present, zeros and nulls before a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyAssessment {
    pub last_scheduled_completed_at: Option<String>,
    pub last_scheduled_outcome: ScheduledOutcome,
    pub last_scheduled_run_state: Option<String>,
    pub last_scheduled_run_id: Option<String>,
    pub last_scheduled_totals: ScheduledTotals,
    pub last_scheduled_error: Option<String>,
    pub last_scheduled_checks: Vec<LegacyCheck>,
    pub scheduling_enabled: bool,
    pub schedule_interval_seconds: Option<u32>,
    pub scheduled_assessment_mode: Option<AssessmentMode>,
    pub scheduled_assessment_pillar: Option<Pillar>,
}

/// One row per check of the latest scheduled run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyCheck {
    pub check_id: String,
    pub check_name: String,
    pub pillar: Pillar,
    pub status: CheckState,
    pub message: Option<String>,
    /// Null on a passing check: the extension shows it as "what to do next".
    pub remediation: Option<String>,
}

impl From<Option<&ScheduledSummary>> for LegacyAssessment {
    fn from(summary: Option<&ScheduledSummary>) -> Self {
        let Some(s) = summary else { return LegacyAssessment::default() };
        LegacyAssessment {
            last_scheduled_completed_at: s.last_scheduled_completed_at.clone(),
            last_scheduled_outcome: s.last_scheduled_outcome,
            last_scheduled_run_state: s.last_scheduled_run_state.clone(),
            last_scheduled_run_id: s.last_scheduled_run_id.clone(),
            last_scheduled_totals: s.last_scheduled_totals.unwrap_or_default(),
            last_scheduled_error: s.last_scheduled_error.clone(),
            last_scheduled_checks: s
                .last_scheduled_checks
                .iter()
                .map(|c| LegacyCheck {
                    check_id: c.check_id.clone(),
                    check_name: c.check_name.clone(),
                    pillar: c.pillar,
                    status: c.status,
                    message: c.message.clone(),
                    remediation: (c.status != CheckState::Passing).then(|| c.remediation.clone()),
                })
                .collect(),
            scheduling_enabled: s.scheduling_enabled,
            schedule_interval_seconds: s.schedule_interval_seconds,
            scheduled_assessment_mode: s.scheduled_assessment_mode,
            scheduled_assessment_pillar: s.scheduled_assessment_pillar,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> LegacyStatus {
        LegacyStatus {
            mode: Mode::Operated,
            tier: Tier::Free,
            version: "0.1.0".into(),
            health: Health::Healthy,
            last_update: "2026-11-22T10:00:00Z".into(),
            registered: false,
            api_key_configured: false,
            error: None,
            cluster_id: None,
            namespace: "kube9-system".into(),
            collection_stats: LegacyCollectionStats::default(),
            assessment: LegacyAssessment::from(None),
            ai_conformance: None,
            argocd: None,
        }
    }

    #[test]
    fn every_key_is_present_before_anything_ran() {
        let json = serde_json::to_value(status()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"mode": "operated", "tier": "free", "version": "0.1.0", "health": "healthy",
                "lastUpdate": "2026-11-22T10:00:00Z", "registered": false, "apiKeyConfigured": false,
                "error": null, "namespace": "kube9-system",
                "collectionStats": {"totalSuccessCount": 0, "totalFailureCount": 0, "collectionsStoredCount": 0,
                    "lastSuccessTime": null},
                "assessment": {"lastScheduledCompletedAt": null, "lastScheduledOutcome": "none",
                    "lastScheduledRunState": null, "lastScheduledRunId": null,
                    "lastScheduledTotals": {"totalChecks": 0, "completedChecks": 0, "passedChecks": 0,
                        "failedChecks": 0, "warningChecks": 0},
                    "lastScheduledError": null, "lastScheduledChecks": [], "schedulingEnabled": false,
                    "scheduleIntervalSeconds": null, "scheduledAssessmentMode": null,
                    "scheduledAssessmentPillar": null}})
        );
    }

    #[test]
    fn a_passing_check_has_no_remediation_and_pillars_are_kebab_case() {
        let summary = ScheduledSummary {
            last_scheduled_checks: vec![
                crate::assessment::ScheduledCheck {
                    check_id: "cost-optimization.load-balancers".into(),
                    check_name: "x".into(),
                    pillar: Pillar::CostOptimization,
                    status: CheckState::Passing,
                    message: None,
                    remediation: "fix".into(),
                },
                crate::assessment::ScheduledCheck {
                    check_id: "performance-efficiency.cpu-requests".into(),
                    check_name: "y".into(),
                    pillar: Pillar::PerformanceEfficiency,
                    status: CheckState::Failing,
                    message: Some("Deployment shop/web".into()),
                    remediation: "set requests".into(),
                },
            ],
            ..ScheduledSummary::default()
        };
        let json = serde_json::to_value(LegacyAssessment::from(Some(&summary))).unwrap();
        let rows = &json["lastScheduledChecks"];
        assert_eq!(rows[0]["pillar"], "cost-optimization");
        assert_eq!((rows[0]["status"].as_str(), &rows[0]["remediation"]), (Some("passing"), &serde_json::Value::Null));
        assert_eq!(
            (rows[1]["status"].as_str(), rows[1]["remediation"].as_str()),
            (Some("failing"), Some("set requests"))
        );
    }
}
