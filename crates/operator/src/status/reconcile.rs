//! The OperatorStatus reconciler: reads the singleton (from the shared store) and the legacy
//! ConfigMap, asks [`plan`] what to write, writes it, and looks again when the plan says.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube9_api::ai_conformance::AiConformanceSummary;
use kube9_api::argocd::ArgoCdStatus;
use kube9_api::assessment::ScheduledSummary;
use kube9_api::legacy::{CONFIGMAP_NAME, LegacyStatus};
use kube9_api::operator_status::{CollectionStats, Health, OperatorStatus, OperatorStatusStatus, SINGLETON_NAME};
use kube9_store::{EventType, Severity, Write};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use super::configmap;
use super::plan::{Inputs, Observed, Settings, plan};
use crate::base::apply::{self, FIELD_MANAGER};
use crate::base::backoff::{Outage, Triggers, WatchBackoff};
use crate::base::leadership::Leadership;
use crate::base::metrics::Metrics;
use crate::base::shared::spec_changes;
use crate::base::truncate;
use crate::health::Diagnostics;
use crate::history::event::{Object, own};
use crate::history::writer::Recorder;
use crate::pro::report::Report;
use crate::registration::state::Registration;

/// What every reconcile gets: where it writes, what it writes from, when it may write, and
/// where it tells what it did.
pub struct Context {
    pub client: kube::Client,
    pub settings: Settings,
    pub feeds: Feeds,
    /// Only the leader writes; a standby keeps the watches warm.
    pub leadership: Leadership,
    /// The watches' backoff reports outages here; a recovery looks at the status again.
    pub outage: Outage,
    pub reporting: Reporting,
}

/// What the other parts of the operator report, each as its latest value; every change is a
/// reason to look at the status again.
pub struct Feeds {
    pub registration: watch::Receiver<Registration>,
    /// The latest scheduled assessment, kept by the Assessment controller.
    pub assessment: watch::Receiver<Option<ScheduledSummary>>,
    /// The collectors' counts.
    pub collection: watch::Receiver<Option<CollectionStats>>,
    /// The pro tier's report; None until it has one (the status then keeps what it holds).
    pub pro: watch::Receiver<Option<Report>>,
    /// The AI Conformance self-check; None until the task has one (the status keeps its own).
    pub ai_conformance: watch::Receiver<Option<AiConformanceSummary>>,
    /// Why the embedded store cannot be used (None while it can, or without one).
    pub store: watch::Receiver<Option<String>>,
    /// Argo CD as detected (docs/argocd.md); None before detection has run once.
    pub argocd: watch::Receiver<Option<ArgoCdStatus>>,
}

impl Feeds {
    /// Every feed as it stands now, with the latest write's failure.
    fn observe(&self, write_failure: Option<String>) -> Observed {
        Observed {
            registration: self.registration.borrow().clone(),
            write_failure,
            store_failure: self.store.borrow().clone(),
            pro: self.pro.borrow().clone(),
            assessment: self.assessment.borrow().clone(),
            collection: self.collection.borrow().clone(),
            ai_conformance: self.ai_conformance.borrow().clone(),
            argocd: self.argocd.borrow().clone(),
        }
    }

    /// One item for each change of any feed.
    fn changes(&self) -> impl Stream<Item = ()> + Send + 'static {
        fn each<T: Clone + Send + Sync + 'static>(rx: &watch::Receiver<T>) -> BoxStream<'static, ()> {
            WatchStream::from_changes(rx.clone()).map(|_| ()).boxed()
        }
        futures::stream::select_all([
            each(&self.registration),
            each(&self.assessment),
            each(&self.collection),
            each(&self.pro),
            each(&self.store),
            each(&self.ai_conformance),
            each(&self.argocd),
        ])
    }
}

/// Where a reconcile tells what it did.
pub struct Reporting {
    pub metrics: Metrics,
    /// What `/readyz` says.
    pub diagnostics: Arc<Diagnostics>,
    /// The event history: standing changes, and the published status for `query status`.
    pub history: Recorder,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write the OperatorStatus status: {0}")]
    OperatorStatusWrite(#[source] kube::Error),
    #[error("cannot read the legacy status ConfigMap: {0}")]
    ConfigMapRead(#[source] kube::Error),
    #[error("cannot write the legacy status ConfigMap: {0}")]
    ConfigMapWrite(#[source] kube::Error),
    #[error("the API server did not answer the status writes within {} s", PUBLISH_TIMEOUT.as_secs())]
    Timeout,
}

/// Longest one look-and-write may take. The writes are a few KiB and take milliseconds; an API
/// server that is starting holds requests for seconds, and a reconcile waiting on one delays
/// the one that would repair what changed meanwhile (measured: 5 s after a restart).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

impl Error {
    /// Lost an optimistic-concurrency race (someone changed the object between read and
    /// write): retried at once, and no reason to call the operator unhealthy.
    pub fn is_conflict(&self) -> bool {
        match self {
            Error::OperatorStatusWrite(e) | Error::ConfigMapRead(e) => crate::base::list::status_code(e) == Some(409),
            // A ConfigMap deleted between the read and the replace is a race like a conflict.
            Error::ConfigMapWrite(e) => matches!(crate::base::list::status_code(e), Some(409 | 404)),
            Error::Timeout => false,
        }
    }

    /// A fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::OperatorStatusWrite(_) => "operatorstatus_write",
            Error::ConfigMapRead(_) => "configmap_read",
            Error::ConfigMapWrite(_) => "configmap_write",
            Error::Timeout => "timeout",
        }
    }
}

async fn reconcile(object: Arc<OperatorStatus>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.leadership.is_leader() {
        // A standby writes nothing and is ready: it takes over when the leader goes. Its own
        // store keeps the status the leader published, so `query status` in its Pod answers.
        ctx.reporting.diagnostics.record(None);
        mirror_leader_status(&ctx).await;
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let reporting = &ctx.reporting;
    let had_failure = reporting.diagnostics.write_failure().is_some();
    let result = tokio::time::timeout(PUBLISH_TIMEOUT, publish(&object, &ctx)).await.unwrap_or(Err(Error::Timeout));
    reporting.metrics.reconciled(started.elapsed().as_secs_f64());
    match &result {
        Err(e) if e.is_conflict() => {}
        Err(e) => reporting.diagnostics.record(Some(truncate(&e.to_string(), 300))),
        Ok(_) => reporting.diagnostics.record(None),
    }
    match result {
        // What was just published still carried the old failure: publish the recovery now.
        Ok(_) if had_failure => Ok(Action::requeue(Duration::from_millis(200))),
        other => other,
    }
}

/// Records the ConfigMap's status JSON (the leader's) in this standby's store.
async fn mirror_leader_status(ctx: &Context) {
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    if let Ok(Some(cm)) = configmaps.get_opt(CONFIGMAP_NAME).await
        && let Some(json) = cm.data.and_then(|mut d| d.remove(kube9_api::legacy::CONFIGMAP_KEY))
    {
        ctx.reporting.history.record(Write::Status { json, at_ms: Timestamp::now().as_millisecond() });
    }
}

/// Reads, plans, and writes whichever of the two reports the plan says.
async fn publish(object: &OperatorStatus, ctx: &Context) -> Result<Action, Error> {
    let Reporting { metrics, diagnostics, history } = &ctx.reporting;
    let observed = ctx.feeds.observe(diagnostics.write_failure());
    let namespace = &ctx.settings.namespace;
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let existing = configmaps.get_opt(CONFIGMAP_NAME).await;
    let plan = plan(&Inputs {
        object,
        configmap: existing.as_ref().ok().and_then(Option::as_ref),
        observed: &observed,
        settings: &ctx.settings,
        leader: Some(&ctx.leadership.identity),
        now: Timestamp::now(),
    });
    metrics.standing(plan.standing.tier, plan.standing.health);

    // The two writes are independent: when one target is refused, the other still reports it.
    let status_result = match &plan.status {
        None => Ok(()),
        Some(status) => {
            let api: Api<OperatorStatus> = Api::all(ctx.client.clone());
            let written = apply::status(&api, SINGLETON_NAME, status).await;
            metrics.status_write("operatorstatus", written.is_ok());
            if written.is_ok() {
                record_change(history, object.status.as_ref(), status);
            }
            written.map_err(Error::OperatorStatusWrite)
        }
    };
    let cm_result = match (existing, &plan.configmap) {
        (Err(e), _) => Err(Error::ConfigMapRead(e)),
        (Ok(_), None) => Ok(()),
        (Ok(existing), Some(want)) => {
            let written = write_configmap(&configmaps, existing.as_ref(), namespace, want).await;
            metrics.status_write("configmap", written.is_ok());
            if written.is_ok()
                && let Ok(json) = serde_json::to_string(want)
            {
                history.record(Write::Status { json, at_ms: Timestamp::now().as_millisecond() });
            }
            written.map_err(Error::ConfigMapWrite)
        }
    };
    status_result?;
    cm_result?;
    Ok(Action::requeue(plan.requeue))
}

/// Records an event when the tier, health or registration the status shows changes (the
/// status last written is the one compared with, so a restart records nothing new).
fn record_change(history: &Recorder, before: Option<&OperatorStatusStatus>, after: &OperatorStatusStatus) {
    let was = before.map(|b| (word(&b.tier), word(&b.health), b.registered.unwrap_or(false)));
    let now = (word(&after.tier), word(&after.health), after.registered.unwrap_or(false));
    if was.as_ref() == Some(&now) {
        return;
    }
    let severity = match after.health {
        Some(Health::Healthy) => Severity::Info,
        Some(Health::Degraded) => Severity::Warning,
        _ => Severity::Error,
    };
    let title = format!("Operator {}: tier {}, {}", now.1, now.0, if now.2 { "registered" } else { "not registered" });
    let description = match (&was, &after.error) {
        (Some(was), Some(error)) => format!("was {} ({}); {error}", was.1, was.0),
        (Some(was), None) => format!("was {} ({})", was.1, was.0),
        (None, Some(error)) => error.clone(),
        (None, None) => "first status".into(),
    };
    let at = Timestamp::now().as_millisecond();
    let object = Object { kind: Some("OperatorStatus".into()), namespace: None, name: Some(SINGLETON_NAME.into()) };
    history.record(Write::Event(own(
        EventType::Health,
        severity,
        "StandingChanged",
        &title,
        &description,
        object,
        &at.to_string(),
        at,
    )));
}

/// The word a status field is written as.
fn word<T: serde::Serialize>(value: &Option<T>) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".into(),
    }
}

/// Writes the whole ConfigMap in one request: a replace of the existing object (a concurrent
/// change makes it fail rather than be lost) or a create when there is none.
async fn write_configmap(
    api: &Api<ConfigMap>,
    existing: Option<&ConfigMap>,
    namespace: &str,
    status: &LegacyStatus,
) -> Result<(), kube::Error> {
    let cm = configmap::object(existing, namespace, status);
    let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    match existing {
        Some(_) => api.replace(CONFIGMAP_NAME, &params, &cm).await.map(|_| ()),
        None => api.create(&params, &cm).await.map(|_| ()),
    }
}

fn error_policy(_object: Arc<OperatorStatus>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.reporting.metrics.reconcile_failed(error.label());
    if error.is_conflict() {
        tracing::debug!(error = %error, "write conflict; retrying with fresh data");
        return Action::requeue(Duration::from_millis(100));
    }
    tracing::warn!(error = %error, "reconcile failed; retrying");
    Action::requeue(if matches!(error, Error::Timeout) { Duration::from_secs(1) } else { Duration::from_secs(5) })
}

/// Creates the `kube9` OperatorStatus if it does not exist.
async fn ensure_singleton(api: &Api<OperatorStatus>) -> Result<(), kube::Error> {
    match api.create(&PostParams::default(), &OperatorStatus::new(SINGLETON_NAME, Default::default())).await {
        Ok(_) => {
            tracing::info!(name = SINGLETON_NAME, "created the OperatorStatus object");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs the reconciler until `shutdown` completes. It drives the singleton's shared watch:
/// `writer` fills `store`, which the pro task reads too.
pub async fn run(
    ctx: Arc<Context>,
    writer: Writer<OperatorStatus>,
    store: Store<OperatorStatus>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let statuses: Api<OperatorStatus> = Api::all(ctx.client.clone());
    let singleton = watcher::Config::default().fields(&format!("metadata.name={SINGLETON_NAME}"));
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.settings.namespace);
    let shim = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}"));

    // The singleton comes back if someone deletes it.
    let recreate = Arc::new(tokio::sync::Notify::new());
    let Some(trigger) = writer.subscribe() else {
        tracing::error!("the OperatorStatus store is not shared; the status cannot be kept");
        return;
    };
    let recreate_tx = recreate.clone();
    let root = watcher(statuses.clone(), singleton)
        .backoff(WatchBackoff::new(&ctx.outage))
        .reflect_shared(writer)
        .for_each(move |event| {
            if let Ok(watcher::Event::Delete(_)) = event {
                recreate_tx.notify_one();
            }
            std::future::ready(())
        });
    let guardian = tokio::spawn({
        let statuses = statuses.clone();
        let leadership = ctx.leadership.clone();
        async move {
            loop {
                if !leadership.leading().await {
                    return;
                }
                if let Err(e) = ensure_singleton(&statuses).await {
                    tracing::warn!(error = %e, "cannot create the OperatorStatus object; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
                recreate.notified().await;
            }
        }
    });

    let kicks = futures::stream::select_all([
        ctx.feeds.changes().boxed(),
        WatchStream::from_changes(ctx.leadership.changes()).map(|_| ()).boxed(),
        WatchStream::from_changes(ctx.outage.recoveries()).map(|_| ()).boxed(),
    ])
    .map(|()| ObjectRef::<OperatorStatus>::new(SINGLETON_NAME));
    let controller = Controller::for_shared_stream(spec_changes(trigger), store)
        .trigger_backoff(Triggers)
        .watches_stream(watcher(configmaps, shim).backoff(WatchBackoff::new(&ctx.outage)).touched_objects(), |_| {
            Some(ObjectRef::new(SINGLETON_NAME))
        })
        .reconcile_on(kicks)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        });
    tokio::select! {
        _ = root => {}
        _ = controller => {}
    }
    guardian.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_409_is_a_conflict() {
        let api = |code| kube::Error::Api(Box::new(kube::core::Status::failure("x", "y").with_code(code)));
        assert!(Error::OperatorStatusWrite(api(409)).is_conflict());
        assert!(Error::ConfigMapWrite(api(409)).is_conflict());
        assert!(!Error::ConfigMapWrite(api(403)).is_conflict());
        assert!(!Error::OperatorStatusWrite(api(500)).is_conflict());
        assert!(Error::ConfigMapWrite(api(404)).is_conflict(), "deleted between read and replace");
        assert!(!Error::OperatorStatusWrite(api(404)).is_conflict());
        assert!(!Error::Timeout.is_conflict());
    }
}
