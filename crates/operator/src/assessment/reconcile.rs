//! The Assessment controller: runs an Assessment when [`due`] says, streams the cluster through
//! the check engine ([`gather::assess`]), writes the result into the Assessment's status with an
//! Event, and reports the latest scheduled run for the OperatorStatus.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use kube9_api::assessment::{
    Assessment, AssessmentSpec, AssessmentStatus, Phase, RUN_REQUESTED_ANNOTATION, ScheduledSummary,
};
use kube9_checks::Options;
use kube9_checks::outcome::MAX_FINDINGS;
use tokio::sync::watch;
use tracing::Instrument;

use super::schedule::{Due, RETRY_AFTER_FAILURE, due, latest_scheduled, schedule_interval};
use super::stored::{RunOutcome, Tally};
use super::{result, stored};
use crate::base::backoff::{Outage, Triggers, WatchBackoff};
use crate::base::leadership::{Leadership, Role};
use crate::base::metrics::{AssessmentFigures, Metrics};
use crate::base::{apply, memory, truncate};
use crate::gather;
use crate::history::event::{Object, own};
use crate::history::writer::{Recorder, RunWriter};
use crate::reports::{build as report_build, publish as report_publish};
use kube9_store::{EventType, RunRow, Severity, Write};
use tokio_stream::wrappers::WatchStream;

/// What every Assessment reconcile gets.
pub struct Context {
    pub client: kube::Client,
    pub settings: Settings,
    /// The latest scheduled run, for the OperatorStatus and the legacy ConfigMap.
    pub summary: watch::Sender<Option<ScheduledSummary>>,
    /// The latest run this process finished, per Assessment: the watch may still show that
    /// run as running for a moment after its result is written, and it must not run again.
    finished: Mutex<HashMap<String, String>>,
    /// One run at a time: each holds a page and its facts, so runs due together wait in turn
    /// and the peak memory is one run's, whatever their number.
    runs: Arc<tokio::sync::Semaphore>,
    pub metrics: Metrics,
    /// The event history, the record of runs (`query assessments`) and every finding of each
    /// Assessment's latest run (`query findings`).
    pub history: Recorder,
    /// Only the leader runs Assessments; a standby keeps the watch warm.
    pub leadership: Leadership,
    /// The watch's backoff reports outages here.
    outage: Outage,
}

/// What the configuration says about runs.
pub struct Settings {
    /// This operator's Pod, for the Events it records and where `query findings` is run.
    pub instance: Option<String>,
    /// The operator's namespace, where `query findings` is run (the status says so).
    pub namespace: String,
    /// Most objects a run holds at once, an emergency brake (0: no bound).
    pub max_objects: usize,
    /// Publish each completed run's findings as policy reports.
    pub reports: bool,
}

impl Settings {
    pub fn from_config(config: &crate::base::config::Config) -> Settings {
        Settings {
            instance: config.pod_name.clone(),
            namespace: config.namespace.clone(),
            max_objects: config.assessment_max_objects,
            reports: config.policy_reports,
        }
    }
}

impl Context {
    pub fn new(
        client: kube::Client,
        settings: Settings,
        summary: watch::Sender<Option<ScheduledSummary>>,
        metrics: Metrics,
        history: Recorder,
        leadership: Leadership,
        outage: Outage,
    ) -> Context {
        Context {
            client,
            settings,
            summary,
            finished: Mutex::default(),
            runs: Arc::new(tokio::sync::Semaphore::new(1)),
            metrics,
            history,
            leadership,
            outage,
        }
    }

    fn finished(&self, name: &str, run_id: &str) {
        if let Ok(mut finished) = self.finished.lock() {
            finished.insert(name.to_owned(), run_id.to_owned());
        }
    }

    fn just_finished(&self, name: &str, run_id: &str) -> bool {
        self.finished.lock().is_ok_and(|finished| finished.get(name).map(String::as_str) == Some(run_id))
    }
}

/// Why an Assessment could not be run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write the Assessment status: {0}")]
    StatusWrite(#[source] kube::Error),
    #[error("cannot read the Assessment: {0}")]
    Read(#[source] kube::Error),
    #[error("the run queue was closed")]
    Closed,
}

/// Where Events about Assessments (cluster-scoped) are recorded.
pub const EVENT_NAMESPACE: &str = "default";

async fn reconcile(assessment: Arc<Assessment>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.leadership.is_leader() {
        // Every Assessment is looked at again when this replica starts to lead.
        return Ok(Action::await_change());
    }
    let name = assessment.name_any();
    let now = Timestamp::now();
    let status = assessment.status.as_ref();
    if status.and_then(|s| s.phase) == Some(Phase::Running)
        && status.and_then(|s| s.run_id.as_deref()).is_some_and(|run_id| ctx.just_finished(&name, run_id))
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
    async {
        let (_turn, assessment) = match ctx.runs.clone().try_acquire_owned() {
            Ok(turn) => (turn, assessment),
            Err(_) => {
                let turn = wait_turn(&assessment, &ctx).await?;
                // The object as it is now: it may have changed (or gone) while it waited.
                let api: Api<Assessment> = Api::all(ctx.client.clone());
                match api.get_opt(&name).await.map_err(Error::Read)? {
                    Some(fresh) => (turn, Arc::new(fresh)),
                    None => return Ok(Action::await_change()),
                }
            }
        };
        if !ctx.leadership.is_leader() {
            return Ok(Action::await_change());
        }
        // The time the run starts, not the time it was found due.
        run_once(&assessment, &ctx, Timestamp::now()).await
    }
    .instrument(span)
    .await
}

/// Marks the Assessment `Queued` and waits for the run before it to finish.
async fn wait_turn(assessment: &Assessment, ctx: &Context) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let queued = AssessmentStatus { phase: Some(Phase::Queued), ..assessment.status.clone().unwrap_or_default() };
    if assessment.status.as_ref().and_then(|s| s.phase) != Some(Phase::Queued) {
        write_status(&api, &assessment.name_any(), &queued).await?;
    }
    tracing::info!("queued behind the run in progress");
    ctx.metrics.assessment_queue(1);
    let turn = ctx.runs.clone().acquire_owned().await;
    ctx.metrics.assessment_queue(-1);
    // The semaphore is never closed.
    turn.map_err(|_| Error::Closed)
}

/// One run of one Assessment, as its steps hand it on.
struct Run<'a> {
    assessment: &'a Assessment,
    name: String,
    id: String,
    /// When it started: the time in its id and its status's `startedAt`.
    at: Timestamp,
    /// Since when its duration is measured.
    clock: Instant,
    api: Api<Assessment>,
    /// The status written as it started, which its result builds on.
    running: AssessmentStatus,
}

/// One run: Running, gather, check, then Completed or Failed, each with its Event.
async fn run_once(assessment: &Assessment, ctx: &Context, now: Timestamp) -> Result<Action, Error> {
    let run = start(assessment, ctx, now).await?;
    let options = Options::from_spec(&assessment.spec);
    if let Err(bad) = options.validate() {
        // The spec must change before a run can work: no retry until it does.
        let why = bad.to_string();
        return fail(ctx, run, Failure { condition: why.clone(), event: why, retry: None }).await;
    }
    match check_cluster(ctx, &run, options).await {
        Ok((assessed, kept)) => complete(ctx, run, assessed, kept).await,
        Err(failure) => fail(ctx, run, failure).await,
    }
}

/// Marks the run `Running`.
async fn start<'a>(assessment: &'a Assessment, ctx: &Context, now: Timestamp) -> Result<Run<'a>, Error> {
    let clock = Instant::now();
    let name = assessment.name_any();
    let api: Api<Assessment> = Api::all(ctx.client.clone());
    let id = format!("{name}-{}", now.as_millisecond());
    let running = AssessmentStatus {
        phase: Some(Phase::Running),
        run_id: Some(id.clone()),
        started_at: Some(Time(now)),
        ..assessment.status.clone().unwrap_or_default()
    };
    write_status(&api, &name, &running).await?;
    tracing::info!(run_id = id, "assessment started");
    Ok(Run { assessment, name, id, at: now, clock, api, running })
}

/// Streams the cluster through the checks. Each page is checked and dropped as the cluster is
/// read; every finding goes to the sink as it is made (on to the store, a batch at a time:
/// `kube9-operator query findings`), and the run keeps counts and the status's top findings.
/// Returns the store's writer of the run's findings, all handed over.
async fn check_cluster(
    ctx: &Context,
    run: &Run<'_>,
    options: Options,
) -> Result<(gather::Assessed, Option<RunWriter>), Failure> {
    let (sink, keeper) = findings_keeper(ctx, &run.name, &run.id, run.at).await;
    match gather::assess(&ctx.client, options, ctx.settings.max_objects, MAX_FINDINGS, sink).await {
        Ok(assessed) => {
            tracing::debug!(objects = assessed.objects, held = assessed.held, "cluster read");
            Ok((assessed, kept_findings(keeper).await))
        }
        Err(e) => {
            if let Some(kept) = kept_findings(keeper).await {
                kept.abort().await;
            }
            Err(Failure::reading(&run.assessment.spec, e))
        }
    }
}

/// Records a completed run: its findings in the store, its status, the metric, the log line,
/// the run in the store and the Event.
async fn complete(
    ctx: &Context,
    run: Run<'_>,
    assessed: gather::Assessed,
    kept: Option<RunWriter>,
) -> Result<Action, Error> {
    let Run { assessment, name, id, at, clock, api, running } = run;
    let gather::Assessed { summary: report, objects, skipped, .. } = assessed;
    let completed_at = Timestamp::now();
    let next_run_at = schedule_interval(&assessment.spec).map(|after| Time(completed_at + after));
    let mut done = result::status(
        &report,
        running,
        completed_at,
        next_run_at.clone(),
        assessment.metadata.generation,
        assessment.annotations().get(RUN_REQUESTED_ANNOTATION).cloned(),
    );
    done.history = stored::history(&done);
    // The previous run's reports are replaced: its `reports` goes until this run's are published.
    done.reports = None;
    done.more_findings = stored::more_findings(
        &name,
        done.truncated.unwrap_or(0),
        ctx.history.enabled(),
        &ctx.settings.namespace,
        ctx.settings.instance.as_deref(),
    );
    // The run's findings replace the previous run's once all are stored.
    if let Some(kept) = kept {
        match stored::summary(&name, &done, kept.appended()) {
            Some(summary) => kept.finish(summary).await,
            None => kept.abort().await,
        }
    }
    write_status(&api, &name, &done).await?;
    ctx.metrics.assessment_ended(&name, completed_at.as_second(), Some(figures(&done)));
    ctx.finished(&name, &id);
    ctx.metrics.assessment_run("completed", clock.elapsed().as_secs_f64());
    let totals = report.totals();
    let tally = Tally {
        score: report.score(),
        passed: totals.passed,
        failed: totals.failed,
        exempted: totals.exempted,
        objects,
        skipped,
    };
    tracing::info!(run_id = id, score = tally.score, failed = tally.failed, "assessment completed");
    drop(report);
    memory::release();
    let note = tally.note();
    record_run(ctx, &name, &id, at, completed_at, RunOutcome::Completed(tally), &note);
    event(ctx, assessment, RunOutcome::Completed(tally), note).await;
    // The run is Completed before its reports are published (a large run's take a while); the
    // status's `reports` appears once they are (the run's Completed status has none).
    if ctx.settings.reports {
        let owner = report_build::Owner {
            name: name.clone(),
            uid: assessment.metadata.uid.clone().unwrap_or_default(),
            run_id: id.clone(),
            completed_at: completed_at.as_second(),
        };
        done.reports = Some(report_publish::publish(&ctx.client, &ctx.history, &ctx.metrics, &owner).await);
        write_status(&api, &name, &done).await?;
    }
    Ok(until(next_run_at.as_ref()))
}

/// The sink of a run's findings: each page's go, in batches, through a small bounded channel
/// (the engine's thread waits while the store's writer is behind) to a task that hands them to
/// the store's writer. Without a store the findings are dropped.
async fn findings_keeper(
    ctx: &Context,
    name: &str,
    run_id: &str,
    started: Timestamp,
) -> (impl FnMut(&[kube9_checks::engine::Found<'_>]) + Send + 'static, Option<tokio::task::JoinHandle<RunWriter>>) {
    let (tx, keeper) = if ctx.history.enabled() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<kube9_store::FindingRow>>(2);
        let mut kept = ctx.history.begin_run(name, run_id, started.as_millisecond()).await;
        let keeper = tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                kept.append(batch).await;
            }
            kept
        });
        (Some(tx), Some(keeper))
    } else {
        (None, None)
    };
    let sink = move |found: &[kube9_checks::engine::Found<'_>]| {
        let Some(tx) = &tx else { return };
        for chunk in found.chunks(stored::BATCH) {
            // Called on the engine's blocking thread; an error means the keeper is gone (the
            // run is being abandoned), and the findings with it.
            let _ = tx.blocking_send(chunk.iter().map(stored::finding_row).collect());
        }
    };
    (sink, keeper)
}

/// The store's writer of a run, once the sink is gone and every batch handed over.
async fn kept_findings(keeper: Option<tokio::task::JoinHandle<RunWriter>>) -> Option<RunWriter> {
    match keeper?.await {
        Ok(kept) => Some(kept),
        Err(e) => {
            tracing::warn!(error = %e, "the task keeping the run's findings stopped; they are not stored");
            None
        }
    }
}

/// Why a run failed: the condition's message, the Event's note, and when to try again (None:
/// only when the object changes or a run is requested).
struct Failure {
    condition: String,
    event: String,
    retry: Option<SignedDuration>,
}

impl Failure {
    /// The cluster could not be read and checked. A cluster too large for the bound stays too
    /// large for a while: try again on the schedule (or when asked); anything else (a check
    /// that panics included: the next run may pass) is retried after a minute.
    fn reading(spec: &AssessmentSpec, e: gather::GatherError) -> Failure {
        let retry = match &e {
            gather::GatherError::TooLarge { .. } => schedule_interval(spec),
            gather::GatherError::Kube(_) | gather::GatherError::Engine(_) => Some(RETRY_AFTER_FAILURE),
        };
        let event = match &e {
            gather::GatherError::Kube(e) => format!("cannot read the cluster: {e}"),
            other => other.to_string(),
        };
        Failure { condition: e.to_string(), event, retry }
    }
}

/// Records a failed run: its status, the metric, the log line, the run in the store and the
/// Event.
async fn fail(ctx: &Context, run: Run<'_>, failure: Failure) -> Result<Action, Error> {
    let Run { assessment, name, id, at, clock, api, running } = run;
    let failed_at = Timestamp::now();
    let next_run_at = failure.retry.map(|after| Time(failed_at + after));
    let failed = AssessmentStatus {
        phase: Some(Phase::Failed),
        completed_at: Some(Time(failed_at)),
        next_run_at: next_run_at.clone(),
        observed_generation: assessment.metadata.generation,
        last_run_request: assessment.annotations().get(RUN_REQUESTED_ANNOTATION).cloned(),
        conditions: result::conditions(false, &failure.condition, assessment.metadata.generation),
        ..running
    };
    write_status(&api, &name, &failed).await?;
    ctx.metrics.assessment_ended(&name, failed_at.as_second(), None);
    ctx.finished(&name, &id);
    ctx.metrics.assessment_run("failed", clock.elapsed().as_secs_f64());
    tracing::warn!(run_id = id, error = %failure.condition, next_run_at = ?next_run_at.as_ref().map(|t| t.0), "assessment failed");
    // The partial snapshot is gone; give its memory back as a completed run does.
    memory::release();
    record_run(ctx, &name, &id, at, failed_at, RunOutcome::Failed {}, &failure.event);
    event(ctx, assessment, RunOutcome::Failed {}, failure.event).await;
    Ok(until(next_run_at.as_ref()))
}

/// Records a finished run in the store: the run (`query assessments`) and its event.
fn record_run(
    ctx: &Context,
    name: &str,
    run_id: &str,
    started: Timestamp,
    finished: Timestamp,
    outcome: RunOutcome,
    message: &str,
) {
    let at = finished.as_millisecond();
    ctx.history.record(Write::Run(RunRow {
        id: 0,
        assessment: name.to_owned(),
        outcome: outcome.word().to_owned(),
        started_at: Some(started.as_millisecond()),
        finished_at: at,
        message: message.to_owned(),
        // Plain numbers: serializing them cannot fail.
        summary: serde_json::to_string(&outcome).unwrap_or_else(|_| "{}".to_owned()),
    }));
    let (severity, title) = match outcome {
        RunOutcome::Completed(_) => (Severity::Info, format!("Assessment {name} completed")),
        RunOutcome::Failed {} => (Severity::Error, format!("Assessment {name} failed")),
    };
    let object = Object { kind: Some("Assessment".into()), namespace: None, name: Some(name.to_owned()) };
    let reason = outcome.reason();
    ctx.history.record(Write::Event(own(EventType::Assessment, severity, reason, &title, message, object, run_id, at)));
}

/// The metrics of a completed run: its scores, and its failed findings by pillar and severity.
fn figures(status: &AssessmentStatus) -> AssessmentFigures {
    let mut scores = vec![("overall", status.score.unwrap_or_default())];
    scores.extend(status.pillars.iter().map(|p| (p.pillar.as_str(), p.score)));
    let mut findings: std::collections::BTreeMap<(&'static str, &'static str), i64> = Default::default();
    for check in &status.checks {
        *findings.entry((check.pillar.as_str(), check.severity.as_str())).or_default() += i64::from(check.failed);
    }
    AssessmentFigures { scores, findings: findings.into_iter().collect() }
}

/// Wakes at `next`, or only when the object changes.
fn until(next: Option<&Time>) -> Action {
    match next {
        Some(next) => Action::requeue((next.0 - Timestamp::now()).try_into().unwrap_or(Duration::from_secs(1))),
        None => Action::await_change(),
    }
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
    apply::status(api, name, status).await.map_err(Error::StatusWrite)
}

/// Records a core/v1 Event about a finished run of `assessment`. Assessments are
/// cluster-scoped, so the Event goes to `default`, as client-go's recorder does: the API
/// servers from 1.20 on accept that for core Events, while an events.k8s.io Event about a
/// cluster-scoped object is refused outside `kube-system` before 1.22. That is why this is not
/// kube's `events::Recorder`: it writes events.k8s.io Events only (with `eventTime`, in
/// `default` for a cluster-scoped object), which a 1.20 or 1.21 server refuses.
async fn event(ctx: &Context, assessment: &Assessment, outcome: RunOutcome, note: String) {
    use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
    let type_ = match outcome {
        RunOutcome::Completed(_) => "Normal",
        RunOutcome::Failed {} => "Warning",
    };
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
        reason: Some(outcome.reason().into()),
        message: Some(truncate(&note, 1000)),
        type_: Some(type_.into()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource { component: Some("kube9-operator".into()), host: None }),
        reporting_component: Some("kube9-operator".into()),
        reporting_instance: ctx.settings.instance.clone(),
        ..Default::default()
    };
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), EVENT_NAMESPACE);
    if let Err(e) = events.create(&kube::api::PostParams::default(), &event).await {
        tracing::warn!(error = %e, reason = outcome.reason(), "cannot record the event");
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
        .backoff(WatchBackoff::new(&ctx.outage))
        .reflect(writer)
        .inspect(move |event| {
            // Every change to any Assessment (its deletion included) may change the summary.
            if matches!(event, Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone)) {
                publish_summary(&summary_ctx, latest_scheduled(&store.state()));
            }
            // A deleted Assessment's findings leave the store (its history stays for its retention).
            if let Ok(watcher::Event::Delete(gone)) = event {
                summary_ctx.history.record(Write::AssessmentDeleted { assessment: gone.name_any() });
                summary_ctx.metrics.assessment_deleted(&gone.name_any());
            }
        })
        .applied_objects();
    let leading = WatchStream::from_changes(ctx.leadership.changes())
        .filter(|role| std::future::ready(*role == Role::Leader))
        .map(|_| ());
    Controller::for_stream(stream, reader)
        .trigger_backoff(Triggers)
        .reconcile_all_on(leading)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "assessment controller event");
            }
        })
        .await;
}
