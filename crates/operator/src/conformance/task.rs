//! The self-check task: runs the AI Conformance readiness self-check on its schedule and when
//! the `kube9.io/ai-conformance-requested` annotation on the `kube9` OperatorStatus gets a new
//! value, publishes the summary (the status reconciler writes it to the OperatorStatus and the
//! ConfigMap), and hands the run, its requirements and their evidence to the store.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube9_api::ai_conformance::{AiConformanceSummary, RUN_REQUESTED_ANNOTATION};
use kube9_api::operator_status::{OperatorStatus, SINGLETON_NAME};
use kube9_conformance::checklist;
use kube9_conformance::report::{self, Due, Report, Run};
use kube9_store::{EventType, Severity, Write};
use tokio::sync::watch;

use super::observe::{minor, observe};
use crate::base::time::until;
use crate::history::event::{Object, own};
use crate::history::writer::Recorder;

/// Longest a self-check may take to gather its evidence.
const GATHER_TIMEOUT: Duration = Duration::from_secs(120);

/// What the task needs.
pub struct Conformance {
    pub client: kube::Client,
    /// The schedule; None: only on request.
    pub interval: Option<Duration>,
    /// The OperatorStatus singleton (the status reconciler's shared store).
    pub status: Store<OperatorStatus>,
    /// Where the latest summary is published.
    pub report: watch::Sender<Option<AiConformanceSummary>>,
    pub history: Recorder,
}

/// Runs until `shutdown`; `changes` are the singleton's updates (for the request annotation).
pub async fn run(
    c: Conformance,
    mut changes: impl Stream<Item = Arc<OperatorStatus>> + Unpin,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let singleton = ObjectRef::new(SINGLETON_NAME);
    // What the status held survives a restart: the schedule goes on from the latest run. (The
    // first event of the shared watch, not `Store::wait_until_ready`: kube-runtime 5 wakes only
    // one of several tasks waiting for the same store, and the status controller waits too.)
    let first = tokio::select! {
        first = changes.next() => first,
        _ = &mut shutdown => return,
    };
    let Some(object) = first else { return };
    let object = c.status.get(&singleton).unwrap_or(object);
    let mut last = match object.status.as_ref().and_then(|s| s.ai_conformance.clone()) {
        Some(held) => report::scheduled(held, c.interval),
        None => report::pending(c.interval),
    };
    let mut requested = request(&object);
    c.report.send_replace(Some(last.clone()));
    loop {
        let now = Timestamp::now();
        let wait = match report::due(&last, requested.as_deref(), c.interval, now) {
            Due::Now(trigger) => {
                // A run in progress is abandoned on shutdown: nothing is half-written.
                let report = tokio::select! {
                    report = self_check(&c.client, trigger, requested.clone(), c.interval) => report,
                    _ = &mut shutdown => return,
                };
                record(&c.history, &report);
                last = report.summary;
                c.report.send_replace(Some(last.clone()));
                continue;
            }
            Due::At(at) => Some(until(now, at)),
            Due::Never => None,
        };
        let sleep = async {
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            changed = changes.next() => match changed {
                Some(object) => requested = request(&object),
                None => return,
            },
            _ = &mut shutdown => return,
        }
    }
}

/// The run-request annotation's value.
fn request(object: &OperatorStatus) -> Option<String> {
    object.annotations().get(RUN_REQUESTED_ANNOTATION).cloned()
}

/// One self-check, start to report.
async fn self_check(
    client: &kube::Client,
    trigger: &'static str,
    request: Option<String>,
    interval: Option<Duration>,
) -> Report {
    let started_at = Timestamp::now();
    tracing::info!(trigger, "AI Conformance self-check started");
    let run = |finished_at| Run {
        id: format!("ai-conformance-{}", started_at.as_millisecond()),
        trigger,
        started_at,
        finished_at,
        request: request.clone(),
        interval,
    };
    let report = match minor(client).await {
        Err(why) => report::failed(None, &why, &run(Timestamp::now())),
        Ok(m) => match checklist::for_minor(m) {
            None => report::too_old(m, &run(Timestamp::now())),
            Some(list) => match tokio::time::timeout(GATHER_TIMEOUT, observe(client, m)).await {
                Ok(evidence) => {
                    let finished = run(Timestamp::now());
                    // A rule that panics fails this run, not the task.
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        report::judged(list, &evidence, &finished)
                    }))
                    .unwrap_or_else(|_| {
                        report::failed(Some(m), "a requirement's rule panicked (a bug: please report it)", &finished)
                    })
                }
                Err(_) => report::failed(
                    Some(m),
                    "gathering the evidence took longer than two minutes",
                    &run(Timestamp::now()),
                ),
            },
        },
    };
    let t = &report.summary.totals;
    tracing::info!(
        trigger,
        checklist = report.summary.checklist_version.as_deref().unwrap_or("none"),
        state = report.run.run_state,
        passed = t.passed,
        failed = t.failed,
        warning = t.warning,
        needs_evidence = t.needs_evidence,
        error = report.summary.error.as_deref().unwrap_or(""),
        "AI Conformance self-check finished"
    );
    report
}

/// The run and its requirements into the store, and an event of the operator's own.
fn record(history: &Recorder, report: &Report) {
    let s = &report.summary;
    let t = &s.totals;
    let (severity, reason, title, description) = match &s.error {
        Some(error) => {
            (Severity::Warning, "AiConformanceFailed", "AI Conformance self-check failed".to_owned(), error.clone())
        }
        None => (
            Severity::Info,
            "AiConformanceCompleted",
            format!(
                "AI Conformance self-check (checklist {}): {} passed, {} failed, {} warning",
                s.checklist_version.as_deref().unwrap_or("-"),
                t.passed,
                t.failed,
                t.warning
            ),
            format!(
                "{} requirements: {} need evidence a person gives, {} not applicable, {} not evaluated. {}",
                t.total_requirements,
                t.needs_evidence,
                t.not_applicable,
                t.not_evaluated,
                kube9_api::ai_conformance::NOTICE
            ),
        ),
    };
    let at = report.run.finished_at;
    let object = Object { kind: Some("OperatorStatus".into()), namespace: None, name: Some(SINGLETON_NAME.into()) };
    history.record(Write::Event(own(
        EventType::System,
        severity,
        reason,
        &title,
        &description,
        object,
        &report.run.run_id,
        at,
    )));
    history.record(Write::AiConformance { run: report.run.clone(), requirements: report.rows.clone() });
}
