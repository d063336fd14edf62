//! One self-check's report from its checklist and evidence: the summary the status and the
//! ConfigMap show, and the rows (with their evidence) the store keeps; and when the next
//! self-check is due. Pure.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube9_api::ai_conformance::{
    AiConformanceSummary, ConformanceTotals, NOTICE, RequirementRow, RunState, categories,
};
use kube9_api::assessment::ScheduledOutcome;
use kube9_api::text::truncate;
use kube9_api::time::{later, rfc3339};
use kube9_store::{AiRequirementRow, AiRunRow};

use crate::checklist::{self, Checklist, SOURCE_REVISION};
use crate::evaluate::{Finding, evaluate};
use crate::evidence::Evidence;

/// How long after a run that could not read the cluster the next one starts.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(300);

/// Longest rationale kept in the status and the ConfigMap.
const MAX_RATIONALE: usize = 500;

/// What a run is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub id: String,
    /// Why it ran: `scheduled`, `requested`, `first`, `retry`.
    pub trigger: &'static str,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// The run-request annotation's value when it started.
    pub request: Option<String>,
    /// The schedule (None: only on request).
    pub interval: Option<Duration>,
}

/// A report: what the status shows and what the store keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub summary: AiConformanceSummary,
    pub run: AiRunRow,
    pub rows: Vec<AiRequirementRow>,
}

/// The summary before any run (or with scheduling as configured now).
pub fn pending(interval: Option<Duration>) -> AiConformanceSummary {
    AiConformanceSummary {
        source_revision: Some(SOURCE_REVISION.into()),
        notice: Some(NOTICE.into()),
        ..scheduled(AiConformanceSummary::default(), interval)
    }
}

/// `summary` with the schedule as configured now.
pub fn scheduled(summary: AiConformanceSummary, interval: Option<Duration>) -> AiConformanceSummary {
    AiConformanceSummary {
        scheduling_enabled: interval.is_some(),
        schedule_interval_seconds: interval.map(|i| i.as_secs()),
        ..summary
    }
}

/// The report of a run that evaluated `checklist` against `evidence`.
pub fn judged(checklist: &Checklist, evidence: &Evidence, run: &Run) -> Report {
    let judged: Vec<(&checklist::Requirement, Finding)> =
        checklist.requirements.iter().map(|r| (r, evaluate(r, evidence))).collect();
    let requirements: Vec<RequirementRow> = judged
        .iter()
        .map(|(r, f)| RequirementRow {
            id: r.id.to_owned(),
            category: r.category,
            level: r.level,
            title: r.title().to_owned(),
            status: f.status,
            rationale: truncate(&f.rationale, MAX_RATIONALE),
        })
        .collect();
    let totals = ConformanceTotals::of(&requirements);
    let state = if totals.not_evaluated > 0 { RunState::Partial } else { RunState::Completed };
    let summary = AiConformanceSummary {
        checklist_version: Some(checklist.version()),
        kubernetes_minor: Some(format!("1.{}", evidence.minor)),
        last_outcome: ScheduledOutcome::Success,
        run_state: Some(state),
        totals,
        categories: categories(&requirements),
        requirements,
        checklist_source: Some(checklist.source()),
        ..finished(run)
    };
    let rows = judged
        .iter()
        .map(|(r, f)| AiRequirementRow {
            requirement: r.id.to_owned(),
            category: r.category.as_str().to_owned(),
            level: r.level.as_str().to_owned(),
            title: r.title().to_owned(),
            status: f.status.as_str().to_owned(),
            rationale: f.rationale.clone(),
            evidence: serde_json::to_string(&f.evidence).unwrap_or_else(|_| "[]".into()),
        })
        .collect();
    Report { run: stored(&summary, run), summary, rows }
}

/// The report of a run on a cluster older than every checklist.
pub fn too_old(minor: u32, run: &Run) -> Report {
    let error = format!(
        "Kubernetes 1.{minor} is older than every AI Conformance checklist the operator carries ({}); \
         upgrade the cluster to 1.{} or later to self-check it",
        checklist::covered(),
        checklist::CHECKLISTS.first().map_or(0, |c| c.minor)
    );
    let summary = AiConformanceSummary {
        kubernetes_minor: Some(format!("1.{minor}")),
        last_outcome: ScheduledOutcome::Failed,
        run_state: Some(RunState::Failed),
        error: Some(error),
        ..finished(run)
    };
    Report { run: stored(&summary, run), summary, rows: vec![] }
}

/// The report of a run that failed (the cluster could not be read, or a rule panicked).
pub fn failed(minor: Option<u32>, why: &str, run: &Run) -> Report {
    let summary = AiConformanceSummary {
        kubernetes_minor: minor.map(|m| format!("1.{m}")),
        checklist_version: minor.and_then(checklist::for_minor).map(Checklist::version),
        last_outcome: ScheduledOutcome::Failed,
        run_state: Some(RunState::Failed),
        error: Some(truncate(&format!("the self-check failed: {why}; it is tried again in 5 minutes"), 500)),
        ..finished(run)
    };
    Report { run: stored(&summary, run), summary, rows: vec![] }
}

fn finished(run: &Run) -> AiConformanceSummary {
    AiConformanceSummary {
        last_completed_at: Some(rfc3339(run.finished_at)),
        run_id: Some(run.id.clone()),
        last_run_request: run.request.clone(),
        ..pending(run.interval)
    }
}

fn stored(summary: &AiConformanceSummary, run: &Run) -> AiRunRow {
    AiRunRow {
        id: 0,
        run_id: run.id.clone(),
        checklist_version: summary.checklist_version.clone(),
        kubernetes_minor: summary.kubernetes_minor.clone(),
        outcome: word(&summary.last_outcome),
        run_state: summary.run_state.map(|s| word(&s)).unwrap_or_default(),
        trigger: run.trigger.to_owned(),
        started_at: run.started_at.as_millisecond(),
        finished_at: run.finished_at.as_millisecond(),
        error: summary.error.clone(),
        totals: serde_json::to_string(&summary.totals).unwrap_or_default(),
        source_revision: SOURCE_REVISION.to_owned(),
    }
}

/// A value written as its one JSON word.
fn word<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// When the next self-check runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// Now, for this reason.
    Now(&'static str),
    /// At this time, unless a request comes first.
    At(Timestamp),
    /// Only on request.
    Never,
}

/// Decides when the next self-check runs: at once when the run-request annotation has a value
/// the latest run did not answer, or when none has run yet (with a schedule); a run that could
/// not read the cluster again after five minutes; otherwise one interval after the latest.
pub fn due(last: &AiConformanceSummary, requested: Option<&str>, interval: Option<Duration>, now: Timestamp) -> Due {
    if requested.is_some() && requested != last.last_run_request.as_deref() {
        return Due::Now("requested");
    }
    let Some(interval) = interval else { return Due::Never };
    let Some(at) = last.last_completed_at.as_deref().and_then(|t| t.parse::<Timestamp>().ok()) else {
        return Due::Now("first");
    };
    // A cluster too old for every checklist does not change by retrying.
    let too_old = last.kubernetes_minor.is_some() && last.checklist_version.is_none();
    let (wait, why) = match last.last_outcome {
        ScheduledOutcome::Failed if !too_old => (interval.min(RETRY_AFTER_FAILURE), "retry"),
        _ => (interval, "scheduled"),
    };
    let next = later(at, wait);
    if next <= now { Due::Now(why) } else { Due::At(next) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Evidence;

    const DAY: Duration = Duration::from_secs(86400);

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn run(request: Option<&str>) -> Run {
        Run {
            id: "ai-1".into(),
            trigger: "first",
            started_at: t("2026-12-01T10:00:00Z"),
            finished_at: t("2026-12-01T10:00:02Z"),
            request: request.map(str::to_owned),
            interval: Some(DAY),
        }
    }

    #[test]
    fn a_run_evaluates_every_requirement_of_the_checklist() {
        let checklist = checklist::for_minor(35).unwrap();
        let report = judged(checklist, &Evidence { minor: 35, ..Evidence::default() }, &run(None));
        let s = &report.summary;
        assert_eq!((s.checklist_version.as_deref(), s.kubernetes_minor.as_deref()), (Some("1.35"), Some("1.35")));
        assert_eq!(s.requirements.len(), 12);
        assert_eq!(s.totals.total_requirements, 12);
        assert_eq!((s.totals.must_requirements, s.totals.should_requirements), (9, 3));
        assert_eq!(s.last_outcome, ScheduledOutcome::Success);
        assert_eq!(s.run_state, Some(RunState::Completed));
        assert_eq!(s.categories["accelerators"].total, 4);
        assert_eq!(s.last_completed_at.as_deref(), Some("2026-12-01T10:00:02Z"));
        assert!(s.notice.as_deref().unwrap().contains("not a certification"));
        assert_eq!(report.rows.len(), 12);
        assert_eq!(report.run.outcome, "success");
        assert_eq!(report.run.run_state, "completed");
    }

    #[test]
    fn unreadable_evidence_makes_a_partial_run() {
        let evidence =
            Evidence { minor: 34, crds: crate::evidence::Seen::Unreadable("forbidden".into()), ..Evidence::default() };
        let report = judged(checklist::for_minor(34).unwrap(), &evidence, &run(None));
        assert_eq!(report.summary.run_state, Some(RunState::Partial));
        let row = report.summary.requirements.iter().find(|r| r.id == "robust_controller").unwrap();
        assert!(row.rationale.contains("could not read CustomResourceDefinitions: forbidden"), "{row:?}");
    }

    #[test]
    fn a_cluster_older_than_every_checklist_fails_and_says_which_are_covered() {
        let report = too_old(20, &run(None));
        let s = &report.summary;
        assert_eq!((s.last_outcome, s.run_state), (ScheduledOutcome::Failed, Some(RunState::Failed)));
        assert_eq!(s.checklist_version, None);
        assert_eq!(s.kubernetes_minor.as_deref(), Some("1.20"));
        assert!(s.error.as_deref().unwrap().contains("1.33 to 1.36"), "{:?}", s.error);
        assert!(s.requirements.is_empty());
        assert_eq!(report.run.outcome, "failed");
    }

    #[test]
    fn runs_are_due_first_on_request_and_on_the_schedule() {
        let now = t("2026-12-01T12:00:00Z");
        assert_eq!(due(&pending(Some(DAY)), None, Some(DAY), now), Due::Now("first"));
        assert_eq!(due(&pending(None), None, None, now), Due::Never, "no schedule: only on request");
        let last =
            judged(checklist::for_minor(35).unwrap(), &Evidence { minor: 35, ..Evidence::default() }, &run(Some("1")))
                .summary;
        assert_eq!(due(&last, Some("1"), Some(DAY), now), Due::At(t("2026-12-02T10:00:02Z")));
        assert_eq!(due(&last, Some("2"), Some(DAY), now), Due::Now("requested"));
        assert_eq!(due(&last, None, Some(DAY), t("2026-12-02T10:00:02Z")), Due::Now("scheduled"));
        assert_eq!(due(&last, None, None, now), Due::Never);
    }

    #[test]
    fn a_failed_run_is_retried_soon_unless_the_cluster_is_too_old() {
        let now = t("2026-12-01T10:00:02Z");
        let failed = failed(Some(35), "connection refused", &run(None)).summary;
        assert_eq!(due(&failed, None, Some(DAY), now), Due::At(t("2026-12-01T10:05:02Z")));
        let old = too_old(20, &run(None)).summary;
        assert_eq!(due(&old, None, Some(DAY), now), Due::At(t("2026-12-02T10:00:02Z")));
    }
}
