//! The Assessment controller: decides when an Assessment runs, gathers the snapshot, runs the
//! check engine, writes the result into the Assessment's status, and reports the latest
//! scheduled run to the OperatorStatus reconciler.

pub mod gather;
pub mod result;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use kube9_api::assessment::{
    Assessment, AssessmentSpec, AssessmentStatus, Phase, RUN_REQUESTED_ANNOTATION, ScheduledSummary,
};
use tokio::sync::watch;

use crate::status::writer::FIELD_MANAGER;

/// What every Assessment reconcile gets.
pub struct Context {
    pub client: kube::Client,
    /// This operator's Pod, for the Events it records.
    pub instance: Option<String>,
    /// The latest scheduled run, for the OperatorStatus and the legacy ConfigMap.
    pub summary: watch::Sender<Option<ScheduledSummary>>,
    /// The latest run this process finished, per Assessment: the watch may still show that
    /// run as running for a moment after its result is written, and it must not run again.
    finished: Mutex<HashMap<String, String>>,
    /// Most objects a run holds (0: no bound).
    pub max_objects: usize,
}

impl Context {
    pub fn new(client: kube::Client, summary: watch::Sender<Option<ScheduledSummary>>, max_objects: usize) -> Context {
        Context { client, instance: std::env::var("POD_NAME").ok(), summary, finished: Mutex::default(), max_objects }
    }
}

/// Why an Assessment could not be run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write the Assessment status: {0}")]
    StatusWrite(#[source] kube::Error),
}

/// Where Events about Assessments (cluster-scoped) are recorded.
pub const EVENT_NAMESPACE: &str = "default";

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

async fn reconcile(assessment: Arc<Assessment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = assessment.name_any();
    let now = Timestamp::now();
    let status = assessment.status.as_ref();
    let run_id = status.and_then(|s| s.run_id.as_ref());
    if status.and_then(|s| s.phase) == Some(Phase::Running)
        && run_id.is_some()
        && ctx.finished.lock().expect("not poisoned").get(&name) == run_id
    {
        // A stale view of a run this process has just finished; the next event brings its result.
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let reason = match due(&assessment, now) {
        Due::Now(reason) => reason,
        Due::At(next) => {
            let wait = (next - now).try_into().unwrap_or(Duration::from_secs(1));
            return Ok(Action::requeue(wait));
        }
        Due::Never => return Ok(Action::await_change()),
    };

    let span = tracing::info_span!("assessment", name = %name, reason);
    let _guard = span.enter();
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let run_id = format!("{name}-{}", now.as_millisecond());
    let running = AssessmentStatus {
        phase: Some(Phase::Running),
        run_id: Some(run_id.clone()),
        started_at: Some(Time(now)),
        ..assessment.status.clone().unwrap_or_default()
    };
    write_status(&api, &name, &running).await?;
    tracing::info!(run_id, "assessment started");

    let options = result::options(&assessment.spec);
    let needed = result::kinds_needed(&options);
    let gathered = gather::gather(&ctx.client, &needed, ctx.max_objects, gather::Purpose::Checks).await;
    let gathered = match gathered {
        Ok(g) => g,
        Err(e) => {
            // A cluster too large for the bound stays too large for a while: try again on
            // the schedule (or when asked); anything else is retried after a minute.
            let failed_at = Timestamp::now();
            let retry = match &e {
                gather::GatherError::TooLarge { .. } => schedule_interval(&assessment.spec),
                gather::GatherError::Kube(_) => Some(RETRY_AFTER_FAILURE),
            };
            let next_run_at = retry.map(|after| Time(failed_at + after));
            let failed = AssessmentStatus {
                phase: Some(Phase::Failed),
                completed_at: Some(Time(failed_at)),
                next_run_at: next_run_at.clone(),
                observed_generation: assessment.metadata.generation,
                last_run_request: assessment.annotations().get(RUN_REQUESTED_ANNOTATION).cloned(),
                conditions: result::conditions(false, &e.to_string(), assessment.metadata.generation),
                ..running
            };
            write_status(&api, &name, &failed).await?;
            ctx.finished.lock().expect("not poisoned").insert(name.clone(), run_id.clone());
            let why = match &e {
                gather::GatherError::Kube(e) => format!("cannot read the cluster: {e}"),
                too_large => too_large.to_string(),
            };
            tracing::warn!(run_id, error = %e, next_run_at = ?next_run_at.as_ref().map(|t| t.0), "assessment failed");
            // The partial snapshot is gone; give its memory back as a completed run does.
            crate::memory::release();
            event(&ctx, &assessment, "Warning", "AssessmentFailed", why).await;
            return Ok(until(next_run_at.as_ref()));
        }
    };
    let objects = gathered.objects;
    let snapshot = gathered.snapshot;
    let report = tokio::task::spawn_blocking(move || kube9_checks::run(&snapshot, &options))
        .await
        .expect("the check engine does not panic");
    let completed_at = Timestamp::now();
    let next_run_at = schedule_interval(&assessment.spec).map(|after| Time(completed_at + after));
    let done = result::status(
        &report,
        running,
        completed_at,
        next_run_at.clone(),
        assessment.metadata.generation,
        assessment.annotations().get(RUN_REQUESTED_ANNOTATION).cloned(),
    );
    write_status(&api, &name, &done).await?;
    ctx.finished.lock().expect("not poisoned").insert(name.clone(), run_id.clone());
    let totals = report.totals();
    let note = format!(
        "score {}: {} passed, {} failed, {} exempted over {} objects ({} skipped as malformed)",
        report.score(),
        totals.passed,
        totals.failed,
        totals.exempted,
        objects,
        gathered.skipped.len()
    );
    tracing::info!(run_id, score = report.score(), failed = totals.failed, "assessment completed");
    drop(report);
    crate::memory::release();
    event(&ctx, &assessment, "Normal", "AssessmentCompleted", note).await;
    Ok(until(next_run_at.as_ref()))
}

/// The time between scheduled runs; none for a one-off or a suspended Assessment.
fn schedule_interval(spec: &AssessmentSpec) -> Option<SignedDuration> {
    spec.schedule.as_ref().filter(|_| !spec.suspend).map(|s| SignedDuration::from_secs(i64::from(s.interval_seconds)))
}

/// Wakes at `next`, or only when the object changes.
fn until(next: Option<&Time>) -> Action {
    match next {
        Some(next) => Action::requeue((next.0 - Timestamp::now()).try_into().unwrap_or(Duration::from_secs(1))),
        None => Action::await_change(),
    }
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
        .map(|a| result::summary(&a.spec, a.status.as_ref()))
        .unwrap_or_else(|| result::summary(&Default::default(), None))
}

fn publish_summary(ctx: &Context, summary: ScheduledSummary) {
    ctx.summary.send_if_modified(|current| {
        if current.as_ref() == Some(&summary) {
            return false;
        }
        *current = Some(summary);
        true
    });
}

async fn write_status(api: &Api<Assessment>, name: &str, status: &AssessmentStatus) -> Result<(), Error> {
    let patch = serde_json::json!({"apiVersion": "kube9.io/v1alpha1", "kind": "Assessment", "status": status});
    api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch))
        .await
        .map(|_| ())
        .map_err(Error::StatusWrite)
}

/// Records a core/v1 Event about `assessment`. Assessments are cluster-scoped, so the Event
/// goes to `default`, as client-go's recorder does: the API servers from 1.20 on accept that
/// for core Events, while an events.k8s.io Event about a cluster-scoped object is refused
/// outside `kube-system` before 1.22.
async fn event(ctx: &Context, assessment: &Assessment, type_: &str, reason: &str, note: String) {
    use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
    let now = Time(Timestamp::now());
    let name = assessment.name_any();
    let event = Event {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("{name}.{:x}", now.0.as_nanosecond())),
            namespace: Some(EVENT_NAMESPACE.into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(Assessment::api_version(&()).into_owned()),
            kind: Some(Assessment::kind(&()).into_owned()),
            name: Some(name),
            uid: assessment.metadata.uid.clone(),
            resource_version: assessment.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(crate::status::tier::truncate(&note, 1000)),
        type_: Some(type_.into()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource { component: Some("kube9-operator".into()), host: None }),
        reporting_component: Some("kube9-operator".into()),
        reporting_instance: ctx.instance.clone(),
        ..Default::default()
    };
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), EVENT_NAMESPACE);
    if let Err(e) = events.create(&kube::api::PostParams::default(), &event).await {
        tracing::warn!(error = %e, reason, "cannot record the event");
    }
}

fn error_policy(_assessment: Arc<Assessment>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %error, "assessment failed; retrying in 30 s");
    Action::requeue(Duration::from_secs(30))
}

/// Runs the Assessment controller until `shutdown` completes.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let (reader, writer) = reflector::store();
    let store = reader.clone();
    let summary_ctx = ctx.clone();
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| {
            // Every change to any Assessment (its deletion included) may change the summary.
            if matches!(event, Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone)) {
                publish_summary(&summary_ctx, latest_scheduled(&store.state()));
            }
        })
        .applied_objects();
    Controller::for_stream(stream, reader)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "assessment controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use kube9_api::assessment::{AssessmentSpec, Schedule};

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
}
