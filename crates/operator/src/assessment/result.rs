//! From the engine's report to the Assessment status, and from the Assessments to the
//! scheduled-run summary the extension reads. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube9_api::assessment::{
    AssessmentSpec, AssessmentStatus, CheckState, Phase, ScheduledCheck, ScheduledOutcome, ScheduledSummary,
    ScheduledTotals,
};
use kube9_checks::Summary;
use kube9_checks::outcome::check_outcomes;

use crate::base::time::rfc3339;
use crate::base::truncate;

pub fn conditions(ok: bool, message: &str, generation: Option<i64>) -> Vec<Condition> {
    vec![Condition {
        type_: "Complete".into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: if ok { "Completed" } else { "Failed" }.into(),
        message: truncate(message, 500),
        last_transition_time: Time(Timestamp::now()),
        observed_generation: generation,
    }]
}

/// The status of a completed run.
pub fn status(
    report: &Summary,
    running: AssessmentStatus,
    completed_at: Timestamp,
    next_run_at: Option<Time>,
    generation: Option<i64>,
    run_request: Option<String>,
) -> AssessmentStatus {
    // Failed findings, most severe first, then the exempted ones (marked), within the bound.
    let (findings, truncated) = (report.findings.clone(), report.truncated);
    let totals = report.totals();
    let message = format!("score {}: {} findings over {} checks", report.score(), totals.failed, report.checks.len());
    AssessmentStatus {
        phase: Some(Phase::Completed),
        completed_at: Some(Time(completed_at)),
        next_run_at,
        last_run_request: run_request.or(running.last_run_request.clone()),
        score: Some(report.score()),
        totals: Some(totals),
        by_severity: Some(report.by_severity()),
        pillars: report.pillars(),
        findings,
        truncated: (truncated > 0).then_some(truncated),
        checks: check_outcomes(&report.checks),
        observed_generation: generation,
        conditions: conditions(true, &message, generation),
        ..running
    }
}

/// The scheduled-run summary the extension reads, from the scheduled Assessment's status.
pub fn summary(spec: &AssessmentSpec, status: Option<&AssessmentStatus>) -> ScheduledSummary {
    let enabled = spec.schedule.is_some() && !spec.suspend;
    let interval = spec.schedule.as_ref().map(|s| s.interval_seconds);
    let (mode, pillar) = if spec.schedule.is_some() { spec.mode() } else { (None, None) };
    let Some(status) = status else {
        return ScheduledSummary {
            scheduling_enabled: enabled,
            schedule_interval_seconds: interval,
            scheduled_assessment_mode: mode,
            scheduled_assessment_pillar: pillar,
            ..ScheduledSummary::default()
        };
    };
    let count = |state: CheckState| status.checks.iter().filter(|c| c.state == state).count() as u32;
    let outcome = match status.phase {
        Some(Phase::Completed) => ScheduledOutcome::Success,
        Some(Phase::Failed) => ScheduledOutcome::Failed,
        _ => ScheduledOutcome::None,
    };
    let error = (status.phase == Some(Phase::Failed))
        .then(|| status.conditions.iter().find(|c| c.type_ == "Complete").map(|c| c.message.clone()))
        .flatten();
    ScheduledSummary {
        last_scheduled_completed_at: status.completed_at.as_ref().map(|t| rfc3339(t.0)),
        last_scheduled_outcome: outcome,
        last_scheduled_run_state: status.phase.map(|p| format!("{p:?}").to_lowercase()),
        last_scheduled_run_id: status.run_id.clone(),
        last_scheduled_totals: (!status.checks.is_empty()).then(|| ScheduledTotals {
            total_checks: status.checks.len() as u32,
            completed_checks: status.checks.len() as u32 - count(CheckState::Skipped),
            passed_checks: count(CheckState::Passing),
            failed_checks: count(CheckState::Failing),
            warning_checks: count(CheckState::Warning),
        }),
        last_scheduled_error: error,
        last_scheduled_checks: status
            .checks
            .iter()
            .map(|c| ScheduledCheck {
                check_id: c.check_id.clone(),
                check_name: c.title.clone(),
                pillar: c.pillar,
                status: c.state,
                message: c.message.clone(),
                remediation: c.remediation.clone(),
            })
            .collect(),
        scheduling_enabled: enabled,
        schedule_interval_seconds: interval,
        scheduled_assessment_mode: mode,
        scheduled_assessment_pillar: pillar,
    }
}

#[cfg(test)]
mod tests {
    use kube9_api::assessment::Schedule;
    use kube9_api::common::Severity;
    use kube9_checks::Options;
    use kube9_checks::outcome::MAX_FINDINGS;
    use serde_json::json;

    use super::*;

    fn report() -> Summary {
        let mut s = kube9_checks::Snapshot::default();
        let containers = json!([{"name": "app", "image": "shop/web:latest", "securityContext": {"privileged": true}}]);
        for i in 0..(MAX_FINDINGS + 20) {
            s.add(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": format!("web-{i}"), "namespace": "shop"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": containers}}}}));
        }
        kube9_checks::run(&s, &Options::default()).summary(kube9_checks::outcome::MAX_FINDINGS)
    }

    #[test]
    fn the_status_is_bounded_and_counts_what_it_leaves_out() {
        let report = report();
        let status = status(&report, AssessmentStatus::default(), Timestamp::now(), None, Some(3), Some("r1".into()));
        assert_eq!(status.findings.len(), MAX_FINDINGS);
        assert_eq!(status.truncated, Some(report.totals().failed - MAX_FINDINGS as u32));
        assert_eq!(status.findings[0].severity, Severity::Critical);
        assert_eq!((status.observed_generation, status.last_run_request.as_deref()), (Some(3), Some("r1")));
        assert_eq!(status.checks.len(), report.checks.len());
        let privileged = status.checks.iter().find(|c| c.check_id == "security.privileged").unwrap();
        assert_eq!(privileged.state, CheckState::Failing);
        assert!(privileged.message.as_deref().unwrap().ends_with("and 117 more"), "{:?}", privileged.message);
        let serialized = serde_json::to_vec(&status).unwrap();
        assert!(serialized.len() < 256 * 1024, "{} bytes", serialized.len());
    }

    #[test]
    fn the_summary_has_the_extensions_shape() {
        let spec = AssessmentSpec { schedule: Some(Schedule { interval_seconds: 3600 }), ..AssessmentSpec::default() };
        let done = status(
            &report(),
            AssessmentStatus { run_id: Some("nightly-1".into()), ..Default::default() },
            Timestamp::now(),
            None,
            Some(1),
            None,
        );
        let summary = summary(&spec, Some(&done));
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["lastScheduledOutcome"], "success");
        assert_eq!(json["lastScheduledRunState"], "completed");
        assert_eq!(json["lastScheduledRunId"], "nightly-1");
        assert_eq!(json["schedulingEnabled"], true);
        assert_eq!(json["scheduleIntervalSeconds"], 3600);
        let totals = &json["lastScheduledTotals"];
        assert_eq!(totals["totalChecks"], kube9_checks::registry().len());
        assert!(totals["failedChecks"].as_u64().unwrap() >= 1);
        let first = &json["lastScheduledChecks"][0];
        for key in ["checkId", "checkName", "pillar", "status", "remediation"] {
            assert!(first.get(key).is_some(), "{key} missing in {first}");
        }
        let none = serde_json::to_value(summary_of_nothing()).unwrap();
        assert_eq!(none, json!({"lastScheduledOutcome": "none", "schedulingEnabled": false}));
    }

    fn summary_of_nothing() -> ScheduledSummary {
        summary(&AssessmentSpec::default(), None)
    }
}
