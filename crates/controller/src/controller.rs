//! The OperatorStatus reconciler: one singleton, its status and the legacy ConfigMap, both
//! rendered from the same standing and written only when they change or grow stale.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube9_api::assessment::ScheduledSummary;
use kube9_api::legacy::CONFIGMAP_NAME;
use kube9_api::operator_status::{Acknowledgement, CollectionStats, OperatorStatus, SINGLETON_NAME};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::registration::{Registration, ServerSettings};
use crate::shim::configmap;
use crate::status::{conditions, refresh_in, tier, writer};

/// What every reconcile gets.
pub struct Context {
    pub client: kube::Client,
    pub config: Config,
    pub registration: watch::Receiver<Registration>,
    /// The latest scheduled assessment, kept by the Assessment controller.
    pub assessment: watch::Receiver<Option<ScheduledSummary>>,
    /// The collectors' counts.
    pub collection: watch::Receiver<Option<CollectionStats>>,
    /// The pro tier's report; None until it has read the previous status (the status then
    /// keeps what it holds).
    pub pro: watch::Receiver<Option<crate::pro::Report>>,
    /// Where `spec.acknowledgements` goes, for the pro tier.
    pub spec: watch::Sender<Option<BTreeMap<String, Acknowledgement>>>,
    pub metrics: Metrics,
    pub diagnostics: Diagnostics,
}

/// What the health endpoints report, kept by the reconciler.
#[derive(Default)]
pub struct Diagnostics {
    inner: Mutex<DiagnosticsInner>,
}

#[derive(Default)]
struct DiagnosticsInner {
    published_at: Option<Instant>,
    write_failure: Option<String>,
}

impl Diagnostics {
    /// Why the operator is not ready, or None when it is.
    pub fn not_ready_reason(&self) -> Option<String> {
        let inner = self.inner.lock().ok()?;
        if let Some(failure) = &inner.write_failure {
            return Some(format!("status cannot be written: {failure}"));
        }
        inner.published_at.is_none().then(|| "status not published yet".to_owned())
    }

    fn write_failure(&self) -> Option<String> {
        self.inner.lock().ok().and_then(|i| i.write_failure.clone())
    }

    fn record(&self, failure: Option<String>) {
        if let Ok(mut inner) = self.inner.lock() {
            if failure.is_none() {
                inner.published_at = Some(Instant::now());
            }
            inner.write_failure = failure;
        }
    }
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot write the OperatorStatus status: {0}")]
    OperatorStatusWrite(#[source] kube::Error),
    #[error("cannot read the legacy status ConfigMap: {0}")]
    ConfigMapRead(#[source] kube::Error),
    #[error("cannot write the legacy status ConfigMap: {0}")]
    ConfigMapWrite(#[source] configmap::ApplyError),
}

impl Error {
    /// Lost an optimistic-concurrency race (someone changed the object between read and
    /// write): retried at once, and no reason to call the operator unhealthy.
    pub fn is_conflict(&self) -> bool {
        let status = match self {
            Error::OperatorStatusWrite(kube::Error::Api(s)) | Error::ConfigMapRead(kube::Error::Api(s)) => s,
            Error::ConfigMapWrite(configmap::ApplyError::Kube(kube::Error::Api(s))) => s,
            _ => return false,
        };
        status.code == 409
    }

    /// A fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Error::OperatorStatusWrite(_) => "operatorstatus_write",
            Error::ConfigMapRead(_) => "configmap_read",
            Error::ConfigMapWrite(_) => "configmap_write",
        }
    }
}

/// The refresh interval: the server's when registered and it set one, else the configured.
fn interval(config: &Config, registration: &Registration) -> Duration {
    match registration {
        Registration::Registered { settings: ServerSettings { status_update_interval: Some(i), .. }, .. } => {
            (*i).clamp(Duration::from_secs(1), config.status_interval.max(Duration::from_secs(1)))
        }
        _ => config.status_interval,
    }
}

async fn reconcile(object: Arc<OperatorStatus>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let had_failure = ctx.diagnostics.write_failure().is_some();
    let result = publish(&object, &ctx).await;
    ctx.metrics.reconciled(started.elapsed().as_secs_f64());
    match &result {
        Err(e) if e.is_conflict() => {}
        Err(e) => ctx.diagnostics.record(Some(tier::truncate(&e.to_string(), 300))),
        Ok(_) => ctx.diagnostics.record(None),
    }
    match result {
        // What was just published still carried the old failure: publish the recovery now.
        Ok(_) if had_failure => Ok(Action::requeue(Duration::from_millis(200))),
        other => other,
    }
}

/// Renders the standing and writes whichever of the two reports differs or is due.
async fn publish(object: &OperatorStatus, ctx: &Context) -> Result<Action, Error> {
    let registration = ctx.registration.borrow().clone();
    let acknowledgements = object.spec.acknowledgements.clone();
    ctx.spec.send_if_modified(|old| {
        let changed = old.as_ref() != Some(&acknowledgements);
        *old = Some(acknowledgements);
        changed
    });
    let existing = object.status.clone().unwrap_or_default();
    let pro = ctx.pro.borrow().clone().unwrap_or_else(|| crate::pro::Report::from_status(&existing));
    let standing = tier::with_pro_failure(
        tier::decide(&registration, ctx.diagnostics.write_failure().as_deref()),
        pro.failure.as_deref(),
    );
    ctx.metrics.standing(standing.tier, standing.health);
    let now = Timestamp::now();
    let interval = interval(&ctx.config, &registration);
    let namespace = &ctx.config.namespace;
    let generation = object.metadata.generation;

    let conditions = conditions::conditions(&existing.conditions, &standing, &registration, generation, now);
    let assessment = ctx.assessment.borrow().clone();
    let collection = ctx.collection.borrow().clone();
    let reports = writer::Reports { assessment: assessment.as_ref(), collection: collection.as_ref(), pro: &pro };
    let desired = writer::render(&standing, &reports, namespace, generation, conditions, now);
    let status_left = refresh_in(
        writer::same_content(&existing, &desired),
        existing.last_update.as_ref().map(|t| t.0),
        now,
        interval,
    );
    // The two writes are independent: when one target is refused, the other still reports it.
    let status_result = match status_left {
        Some(left) => Ok(left),
        None => {
            let api: Api<OperatorStatus> = Api::all(ctx.client.clone());
            let written = writer::apply(&api, &desired).await;
            ctx.metrics.status_write("operatorstatus", written.is_ok());
            written.map(|()| interval).map_err(Error::OperatorStatusWrite)
        }
    };

    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let cm_result = match api.get_opt(CONFIGMAP_NAME).await {
        Err(e) => Err(Error::ConfigMapRead(e)),
        Ok(cm) => {
            let (have, shaped) = configmap::current(cm.as_ref());
            let want = configmap::render(&standing, assessment.as_ref(), collection.as_ref(), namespace, now);
            let left = match &have {
                Some(have) if shaped => {
                    refresh_in(configmap::same_content(have, &want), configmap::last_update(have), now, interval)
                }
                _ => None,
            };
            match left {
                Some(left) => Ok(left),
                None => {
                    let written = configmap::write(&api, namespace, cm, &want).await;
                    ctx.metrics.status_write("configmap", written.is_ok());
                    written.map(|()| interval).map_err(Error::ConfigMapWrite)
                }
            }
        }
    };
    let status_next = status_result?;
    let cm_next = cm_result?;
    Ok(Action::requeue(status_next.min(cm_next)))
}

fn error_policy(_object: Arc<OperatorStatus>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(error.label());
    if error.is_conflict() {
        tracing::debug!(error = %error, "write conflict; retrying with fresh data");
        return Action::requeue(Duration::from_millis(100));
    }
    tracing::warn!(error = %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

/// A key that changes only when the object is recreated or its spec changes, so the
/// operator's own status writes do not wake it.
fn spec_or_identity(object: &OperatorStatus) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    object.metadata.uid.hash(&mut hasher);
    object.metadata.generation.hash(&mut hasher);
    Some(hasher.finish())
}

/// Runs the reconciler until `shutdown` completes.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let statuses: Api<OperatorStatus> = Api::all(ctx.client.clone());
    let singleton = watcher::Config::default().fields(&format!("metadata.name={SINGLETON_NAME}"));
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    let shim = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}"));

    // The singleton comes back if someone deletes it.
    let recreate = Arc::new(tokio::sync::Notify::new());
    let (reader, writer_store) = reflector::store();
    let recreate_tx = recreate.clone();
    let stream = watcher(statuses.clone(), singleton)
        .default_backoff()
        .reflect(writer_store)
        .inspect(move |event| {
            if let Ok(watcher::Event::Delete(_)) = event {
                recreate_tx.notify_one();
            }
        })
        .applied_objects()
        .predicate_filter(spec_or_identity, Default::default());
    let guardian = tokio::spawn({
        let statuses = statuses.clone();
        async move {
            loop {
                if let Err(e) = writer::ensure_singleton(&statuses).await {
                    tracing::warn!(error = %e, "cannot create the OperatorStatus object; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
                recreate.notified().await;
            }
        }
    });

    let kicks = futures::stream::select_all([
        WatchStream::from_changes(ctx.registration.clone()).map(|_| ()).boxed(),
        WatchStream::from_changes(ctx.assessment.clone()).map(|_| ()).boxed(),
        WatchStream::from_changes(ctx.collection.clone()).map(|_| ()).boxed(),
        WatchStream::from_changes(ctx.pro.clone()).map(|_| ()).boxed(),
    ])
    .map(|()| ObjectRef::<OperatorStatus>::new(SINGLETON_NAME));
    Controller::for_stream(stream, reader)
        .watches(configmaps, shim, |_| Some(ObjectRef::new(SINGLETON_NAME)))
        .reconcile_on(kicks)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    guardian.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_409_is_a_conflict() {
        let api = |code| kube::Error::Api(Box::new(kube::core::Status::failure("x", "y").with_code(code)));
        assert!(Error::OperatorStatusWrite(api(409)).is_conflict());
        assert!(Error::ConfigMapWrite(configmap::ApplyError::Kube(api(409))).is_conflict());
        assert!(!Error::ConfigMapWrite(configmap::ApplyError::Kube(api(403))).is_conflict());
        assert!(!Error::OperatorStatusWrite(api(500)).is_conflict());
    }

    #[test]
    fn readiness_needs_one_successful_publish_and_no_failure_since() {
        let d = Diagnostics::default();
        assert_eq!(d.not_ready_reason().as_deref(), Some("status not published yet"));
        d.record(None);
        assert_eq!(d.not_ready_reason(), None);
        d.record(Some("forbidden".into()));
        assert!(d.not_ready_reason().unwrap().contains("forbidden"));
        d.record(None);
        assert_eq!(d.not_ready_reason(), None);
    }
}
