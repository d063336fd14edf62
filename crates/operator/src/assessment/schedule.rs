//! When an Assessment runs, decided from plain values, and which scheduled Assessment the
//! extension hears about. Pure.

use std::sync::Arc;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube9_api::assessment::{Assessment, AssessmentSpec, Phase, RUN_REQUESTED_ANNOTATION, ScheduledSummary};

use super::result::summary;

/// How long after a failed run the next attempt starts.
pub const RETRY_AFTER_FAILURE: SignedDuration = SignedDuration::from_secs(60);

/// When the next run is due.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    /// Run now, for this reason.
    Now(&'static str),
    /// Nothing to do until then (the schedule).
    At(Timestamp),
    /// Nothing to do until the object changes.
    Never,
}

/// Decides whether `assessment` runs now: when it is new or its spec changed, when a run is
/// requested by annotation, when a run was interrupted, and on its schedule.
pub fn due(assessment: &Assessment, now: Timestamp) -> Due {
    let status = assessment.status.clone().unwrap_or_default();
    if status.observed_generation != assessment.metadata.generation {
        return Due::Now(if status.observed_generation.is_none() { "created" } else { "spec changed" });
    }
    let requested = assessment.annotations().get(RUN_REQUESTED_ANNOTATION);
    if requested.is_some() && requested != status.last_run_request.as_ref() {
        return Due::Now("requested");
    }
    if status.phase == Some(Phase::Running) {
        return Due::Now("interrupted");
    }
    if status.phase == Some(Phase::Queued) {
        // A run was owed when the operator stopped (or the leader changed).
        return Due::Now("queued");
    }
    if status.phase == Some(Phase::Failed) {
        // The failed run said when to try again: a minute for an API error, the schedule (or
        // only on request) for a cluster over the object bound.
        return match status.next_run_at.as_ref().map(|t| t.0) {
            Some(at) if at > now => Due::At(at),
            Some(_) => Due::Now("retry"),
            None => Due::Never,
        };
    }
    let Some(every) = schedule_interval(&assessment.spec) else { return Due::Never };
    let last = status.completed_at.as_ref().or(status.started_at.as_ref()).map(|t| t.0);
    match last.map(|t| t + every) {
        Some(next) if next > now => Due::At(next),
        _ => Due::Now("scheduled"),
    }
}

/// The time between scheduled runs; none for a one-off or a suspended Assessment.
pub fn schedule_interval(spec: &AssessmentSpec) -> Option<SignedDuration> {
    spec.schedule.as_ref().filter(|_| !spec.suspend).map(|s| SignedDuration::from_secs(i64::from(s.interval_seconds)))
}

/// The scheduled Assessment the extension hears about: the one that ran (or started) last;
/// with none scheduled, a summary that says scheduling is off.
pub fn latest_scheduled(assessments: &[Arc<Assessment>]) -> ScheduledSummary {
    let activity = |a: &Assessment| {
        let status = a.status.as_ref();
        let last = status.and_then(|s| s.completed_at.as_ref().or(s.started_at.as_ref())).map(|t| t.0);
        (last, a.metadata.creation_timestamp.as_ref().map(|t| t.0), a.name_any())
    };
    assessments
        .iter()
        .filter(|a| a.spec.schedule.is_some())
        .max_by_key(|a| activity(a))
        .map(|a| summary(&a.spec, a.status.as_ref()))
        .unwrap_or_else(|| summary(&Default::default(), None))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube9_api::assessment::{AssessmentStatus, Schedule};

    use super::*;

    fn assessment(generation: i64, schedule: Option<u32>, status: Option<AssessmentStatus>) -> Assessment {
        let mut a = Assessment::new(
            "nightly",
            AssessmentSpec {
                schedule: schedule.map(|interval_seconds| Schedule { interval_seconds }),
                ..AssessmentSpec::default()
            },
        );
        a.metadata.generation = Some(generation);
        a.status = status;
        a
    }

    fn completed(generation: i64, at: Timestamp) -> AssessmentStatus {
        AssessmentStatus {
            phase: Some(Phase::Completed),
            observed_generation: Some(generation),
            started_at: Some(Time(at)),
            completed_at: Some(Time(at)),
            ..AssessmentStatus::default()
        }
    }

    #[test]
    fn new_and_changed_assessments_run() {
        let now = Timestamp::now();
        assert_eq!(due(&assessment(1, None, None), now), Due::Now("created"));
        assert_eq!(due(&assessment(2, None, Some(completed(1, now))), now), Due::Now("spec changed"));
        assert_eq!(due(&assessment(1, None, Some(completed(1, now))), now), Due::Never);
    }

    #[test]
    fn a_request_annotation_runs_once_per_value() {
        let now = Timestamp::now();
        let mut a = assessment(1, None, Some(completed(1, now)));
        a.metadata.annotations = Some([(RUN_REQUESTED_ANNOTATION.to_owned(), "1".to_owned())].into());
        assert_eq!(due(&a, now), Due::Now("requested"));
        a.status.as_mut().unwrap().last_run_request = Some("1".into());
        assert_eq!(due(&a, now), Due::Never);
    }

    #[test]
    fn schedules_run_when_the_interval_has_passed_unless_suspended() {
        let now = Timestamp::now();
        let earlier = now - SignedDuration::from_secs(30);
        let a = assessment(1, Some(60), Some(completed(1, earlier)));
        assert_eq!(due(&a, now), Due::At(earlier + SignedDuration::from_secs(60)));
        assert_eq!(due(&a, now + SignedDuration::from_secs(31)), Due::Now("scheduled"));
        let mut suspended = a.clone();
        suspended.spec.suspend = true;
        assert_eq!(due(&suspended, now + SignedDuration::from_secs(31)), Due::Never);
    }

    #[test]
    fn a_failed_run_is_retried_when_it_said() {
        let now = Timestamp::now();
        let mut status = completed(1, now);
        status.phase = Some(Phase::Failed);
        status.next_run_at = Some(Time(now + RETRY_AFTER_FAILURE));
        let a = assessment(1, None, Some(status.clone()));
        assert_eq!(due(&a, now), Due::At(now + RETRY_AFTER_FAILURE));
        assert_eq!(due(&a, now + RETRY_AFTER_FAILURE), Due::Now("retry"));
        // Too large and run once: only a change or a request runs it again.
        status.next_run_at = None;
        assert_eq!(due(&assessment(1, None, Some(status)), now + RETRY_AFTER_FAILURE), Due::Never);
    }

    #[test]
    fn the_summary_follows_the_scheduled_assessment_that_ran_last() {
        let now = Timestamp::now();
        let mut old = assessment(1, Some(60), Some(completed(1, now - SignedDuration::from_secs(600))));
        old.metadata.name = Some("old".into());
        old.status.as_mut().unwrap().run_id = Some("old-1".into());
        let mut new = assessment(1, Some(60), Some(completed(1, now)));
        new.status.as_mut().unwrap().run_id = Some("nightly-2".into());
        let manual = assessment(1, None, Some(completed(1, now + SignedDuration::from_secs(5))));
        let all: Vec<Arc<Assessment>> = [old, new, manual].into_iter().map(Arc::new).collect();
        assert_eq!(latest_scheduled(&all).last_scheduled_run_id.as_deref(), Some("nightly-2"));
        let off = latest_scheduled(&all[2..]);
        assert!(!off.scheduling_enabled);
        assert_eq!(off.last_scheduled_outcome, kube9_api::assessment::ScheduledOutcome::None);
    }

    #[test]
    fn an_interrupted_run_runs_again() {
        let now = Timestamp::now();
        let mut status = completed(1, now);
        status.phase = Some(Phase::Running);
        assert_eq!(due(&assessment(1, None, Some(status)), now), Due::Now("interrupted"));
    }

    #[test]
    fn a_queued_run_is_still_owed_after_a_restart() {
        let now = Timestamp::now();
        let mut status = completed(1, now);
        status.phase = Some(Phase::Queued);
        assert_eq!(due(&assessment(1, None, Some(status)), now), Due::Now("queued"));
    }
}
