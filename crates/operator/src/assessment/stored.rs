//! What a finished run leaves behind besides its status: its outcome in the store's log of
//! runs (`kube9-operator query assessments`), every finding and the run's summary
//! (`query findings`, `query assessments history`), the entry of `status.history`, and where
//! the findings the status leaves out can be read. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube9_api::assessment::{AssessmentStatus, CheckState, MAX_HISTORY, RunRecord};
use kube9_checks::engine::Found;
use kube9_store::{CheckRow, FindingRow, RunSummary};
use serde::Serialize;
use serde_json::json;

/// Findings written to the store per batch: a page of them is all that is converted at once.
pub const BATCH: usize = 500;

/// A finding as the store keeps it.
pub fn finding_row(found: &Found<'_>) -> FindingRow {
    let (check, hit) = (found.check, found.hit);
    FindingRow {
        check_id: check.id.to_owned(),
        pillar: check.pillar.as_str().to_owned(),
        severity: check.severity.as_str().to_owned(),
        api_version: hit.api_version.to_owned(),
        kind: hit.kind.to_owned(),
        namespace: hit.namespace.clone(),
        name: hit.name.clone(),
        container: hit.container.clone(),
        message: hit.message.clone().into_owned(),
        exempted: found.exempted,
    }
}

fn state(state: CheckState) -> &'static str {
    match state {
        CheckState::Passing => "passing",
        CheckState::Failing => "failing",
        CheckState::Warning => "warning",
        CheckState::Skipped => "skipped",
    }
}

/// The run's summary and check outcomes for the history, from its completed status;
/// `findings` is how many were appended.
pub fn summary(assessment: &str, status: &AssessmentStatus, findings: u64) -> Option<RunSummary> {
    let run_id = status.run_id.clone()?;
    let completed_at = status.completed_at.as_ref()?.0.as_millisecond();
    let started_at = status.started_at.as_ref().map_or(completed_at, |t| t.0.as_millisecond());
    Some(RunSummary {
        run_id,
        assessment: assessment.to_owned(),
        started_at,
        completed_at,
        score: status.score.unwrap_or_default(),
        summary: json!({
            "totals": status.totals,
            "bySeverity": status.by_severity,
            "pillars": status.pillars,
        })
        .to_string(),
        findings,
        checks: status
            .checks
            .iter()
            .map(|c| CheckRow {
                check_id: c.check_id.clone(),
                title: c.title.clone(),
                pillar: c.pillar.as_str().to_owned(),
                severity: c.severity.as_str().to_owned(),
                state: state(c.state).to_owned(),
                passed: c.passed,
                failed: c.failed,
                exempted: c.exempted,
                remediation: c.remediation.clone(),
            })
            .collect(),
    })
}

/// How a finished run ended, as the store's log of runs keeps it: the outcome's word, and the
/// summary as JSON (`query assessments` shows it). A failed run's summary is `{}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RunOutcome {
    Completed(Tally),
    Failed {},
}

/// What a completed run counted.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Tally {
    pub score: u8,
    pub passed: u32,
    pub failed: u32,
    pub exempted: u32,
    /// Objects read, over every kind.
    pub objects: usize,
    /// Objects the checks could not read (malformed).
    pub skipped: usize,
}

impl RunOutcome {
    /// The reason its Events give.
    pub fn reason(&self) -> &'static str {
        match self {
            RunOutcome::Completed(_) => "AssessmentCompleted",
            RunOutcome::Failed {} => "AssessmentFailed",
        }
    }

    /// The outcome's word in the log of runs.
    pub fn word(&self) -> &'static str {
        match self {
            RunOutcome::Completed(_) => "completed",
            RunOutcome::Failed {} => "failed",
        }
    }
}

impl Tally {
    /// The one line the Event and the log of runs say about a completed run.
    pub fn note(&self) -> String {
        format!(
            "score {}: {} passed, {} failed, {} exempted over {} objects ({} skipped as malformed)",
            self.score, self.passed, self.failed, self.exempted, self.objects, self.skipped
        )
    }
}

/// `status.history` with the completed run `status` first, the oldest beyond
/// [`MAX_HISTORY`] dropped (a run already listed is not listed twice).
pub fn history(status: &AssessmentStatus) -> Vec<RunRecord> {
    let (Some(run_id), Some(completed_at)) = (&status.run_id, &status.completed_at) else {
        return status.history.clone();
    };
    let latest = RunRecord {
        run_id: run_id.clone(),
        completed_at: Time(completed_at.0),
        score: status.score.unwrap_or_default(),
        totals: status.totals.unwrap_or_default(),
        pillars: status.pillars.clone(),
    };
    std::iter::once(latest)
        .chain(status.history.iter().filter(|r| &r.run_id != run_id).cloned())
        .take(MAX_HISTORY)
        .collect()
}

/// Where every finding of the run is, when the status leaves `left_out` of them out: the
/// command in the container of the Pod that ran it (each replica keeps its own store), or why
/// they were not kept (no store).
pub fn more_findings(
    assessment: &str,
    left_out: u32,
    store: bool,
    namespace: &str,
    pod: Option<&str>,
) -> Option<String> {
    if left_out == 0 {
        return None;
    }
    let query = format!("kube9-operator query findings --assessment {assessment}");
    Some(match (store, pod) {
        (true, Some(pod)) => format!(
            "{left_out} more findings are in the store of the operator that ran this: \
             kubectl exec -n {namespace} {pod} -c operator -- {query}"
        ),
        (true, None) => format!(
            "{left_out} more findings are in the store of the operator that ran this: run `{query}` in its container \
             (namespace {namespace})"
        ),
        (false, _) => {
            format!("{left_out} more findings were not kept: the operator runs without a data directory (--data-dir)")
        }
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use kube9_api::assessment::{OutcomeCounts, Phase};

    use super::*;

    #[test]
    fn a_run_outcome_is_logged_as_the_summary_json_the_store_shows() {
        let tally = Tally { score: 87, passed: 40, failed: 5, exempted: 2, objects: 120, skipped: 1 };
        let completed = RunOutcome::Completed(tally);
        assert_eq!((completed.word(), completed.reason()), ("completed", "AssessmentCompleted"));
        assert_eq!(
            serde_json::to_value(completed).unwrap(),
            json!({"score": 87, "passed": 40, "failed": 5, "exempted": 2, "objects": 120, "skipped": 1})
        );
        assert_eq!(tally.note(), "score 87: 40 passed, 5 failed, 2 exempted over 120 objects (1 skipped as malformed)");
        assert_eq!((RunOutcome::Failed {}.word(), RunOutcome::Failed {}.reason()), ("failed", "AssessmentFailed"));
        assert_eq!(serde_json::to_string(&RunOutcome::Failed {}).unwrap(), "{}");
    }

    fn completed(n: usize) -> AssessmentStatus {
        AssessmentStatus {
            phase: Some(Phase::Completed),
            run_id: Some(format!("nightly-{n}")),
            completed_at: Some(Time(Timestamp::from_second(1_780_000_000 + n as i64).unwrap())),
            score: Some((n % 100) as u8),
            totals: Some(OutcomeCounts { passed: n as u32, failed: 1, exempted: 0, errored: 0 }),
            ..Default::default()
        }
    }

    #[test]
    fn the_history_grows_to_thirty_newest_first_and_stops() {
        let mut status = AssessmentStatus::default();
        for n in 0..45 {
            let done = AssessmentStatus { history: status.history.clone(), ..completed(n) };
            status = AssessmentStatus { history: history(&done), ..done };
            assert_eq!(status.history.len(), (n + 1).min(MAX_HISTORY));
        }
        let ids: Vec<&str> = status.history.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids.first(), Some(&"nightly-44"));
        assert_eq!(ids.last(), Some(&"nightly-15"));
        assert_eq!(status.history[0].totals.passed, 44);
        // The same run written twice (a status write retried) is one entry.
        assert_eq!(history(&status).len(), MAX_HISTORY);
        assert_eq!(history(&status)[1].run_id, "nightly-43");
        let serialized = serde_json::to_vec(&status.history).unwrap();
        assert!(serialized.len() < 32 * 1024, "{} bytes", serialized.len());
    }

    #[test]
    fn a_run_without_a_result_leaves_the_history_as_it_was() {
        let before = AssessmentStatus { history: history(&completed(1)), ..Default::default() };
        assert_eq!(history(&before), before.history);
    }

    #[test]
    fn the_summary_carries_the_checks_and_totals() {
        let status = AssessmentStatus {
            checks: vec![kube9_api::assessment::CheckOutcome {
                check_id: "security.privileged".into(),
                title: "t".into(),
                pillar: kube9_api::common::Pillar::Security,
                severity: kube9_api::common::Severity::Critical,
                state: CheckState::Failing,
                passed: 1,
                failed: 2,
                exempted: 3,
                message: None,
                remediation: "r".into(),
            }],
            ..completed(7)
        };
        let run = summary("nightly", &status, 2).unwrap();
        assert_eq!((run.run_id.as_str(), run.score, run.findings), ("nightly-7", 7, 2));
        assert_eq!(run.checks[0].state, "failing");
        assert_eq!(run.checks[0].severity, "critical");
        let json: serde_json::Value = serde_json::from_str(&run.summary).unwrap();
        assert_eq!(json["totals"]["passed"], 7);
        assert!(summary("nightly", &AssessmentStatus::default(), 0).is_none());
    }

    #[test]
    fn the_status_says_where_the_rest_are() {
        assert_eq!(more_findings("nightly", 0, true, "kube9-system", None), None);
        let with = more_findings("nightly", 12, true, "kube9-system", Some("kube9-operator-7d9f-x2")).unwrap();
        assert!(with.starts_with("12 more"), "{with}");
        let command = "kubectl exec -n kube9-system kube9-operator-7d9f-x2 -c operator -- \
                       kube9-operator query findings --assessment nightly";
        assert!(with.ends_with(command), "{with}");
        let no_pod = more_findings("nightly", 12, true, "kube9-system", None).unwrap();
        assert!(no_pod.contains("`kube9-operator query findings --assessment nightly`"), "{no_pod}");
        let without = more_findings("nightly", 12, false, "kube9-system", Some("p")).unwrap();
        assert!(without.contains("--data-dir"), "{without}");
    }
}
