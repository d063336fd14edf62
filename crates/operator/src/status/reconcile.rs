//! The OperatorStatus reconciler: reads the singleton (from the shared store) and the legacy
//! ConfigMap, asks [`plan`] what to write, writes it, and looks again when the plan says.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube9_api::assessment::ScheduledSummary;
use kube9_api::legacy::{CONFIGMAP_NAME, LegacyStatus};
use kube9_api::operator_status::{CollectionStats, OperatorStatus, SINGLETON_NAME};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;

use super::configmap;
use super::plan::{Inputs, plan};
use crate::base::apply::{self, FIELD_MANAGER};
use crate::base::config::Config;
use crate::base::metrics::Metrics;
use crate::base::shared::spec_changes;
use crate::base::truncate;
use crate::health::Diagnostics;
use crate::pro::report::Report;
use crate::registration::state::Registration;

/// What every reconcile gets.
pub struct Context {
    pub client: kube::Client,
    pub config: Config,
    pub registration: watch::Receiver<Registration>,
    /// The latest scheduled assessment, kept by the Assessment controller.
    pub assessment: watch::Receiver<Option<ScheduledSummary>>,
    /// The collectors' counts.
    pub collection: watch::Receiver<Option<CollectionStats>>,
    /// The pro tier's report; None until it has one (the status then keeps what it holds).
    pub pro: watch::Receiver<Option<Report>>,
    pub metrics: Metrics,
    pub diagnostics: Arc<Diagnostics>,
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
}

impl Error {
    /// Lost an optimistic-concurrency race (someone changed the object between read and
    /// write): retried at once, and no reason to call the operator unhealthy.
    pub fn is_conflict(&self) -> bool {
        let (Error::OperatorStatusWrite(e) | Error::ConfigMapRead(e) | Error::ConfigMapWrite(e)) = self;
        crate::base::list::status_code(e) == Some(409)
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

async fn reconcile(object: Arc<OperatorStatus>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let had_failure = ctx.diagnostics.write_failure().is_some();
    let result = publish(&object, &ctx).await;
    ctx.metrics.reconciled(started.elapsed().as_secs_f64());
    match &result {
        Err(e) if e.is_conflict() => {}
        Err(e) => ctx.diagnostics.record(Some(truncate(&e.to_string(), 300))),
        Ok(_) => ctx.diagnostics.record(None),
    }
    match result {
        // What was just published still carried the old failure: publish the recovery now.
        Ok(_) if had_failure => Ok(Action::requeue(Duration::from_millis(200))),
        other => other,
    }
}

/// Reads, plans, and writes whichever of the two reports the plan says.
async fn publish(object: &OperatorStatus, ctx: &Context) -> Result<Action, Error> {
    let registration = ctx.registration.borrow().clone();
    let pro = ctx.pro.borrow().clone();
    let assessment = ctx.assessment.borrow().clone();
    let collection = ctx.collection.borrow().clone();
    let write_failure = ctx.diagnostics.write_failure();
    let namespace = &ctx.config.namespace;
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let existing = configmaps.get_opt(CONFIGMAP_NAME).await;
    let plan = plan(&Inputs {
        object,
        configmap: existing.as_ref().ok().and_then(Option::as_ref),
        registration: &registration,
        write_failure: write_failure.as_deref(),
        pro: pro.as_ref(),
        assessment: assessment.as_ref(),
        collection: collection.as_ref(),
        api_key_configured: ctx.config.api_key.is_some(),
        namespace,
        status_interval: ctx.config.status_interval,
        now: Timestamp::now(),
    });
    ctx.metrics.standing(plan.standing.tier, plan.standing.health);

    // The two writes are independent: when one target is refused, the other still reports it.
    let status_result = match &plan.status {
        None => Ok(()),
        Some(status) => {
            let api: Api<OperatorStatus> = Api::all(ctx.client.clone());
            let written = apply::status(&api, SINGLETON_NAME, status).await;
            ctx.metrics.status_write("operatorstatus", written.is_ok());
            written.map_err(Error::OperatorStatusWrite)
        }
    };
    let cm_result = match (existing, &plan.configmap) {
        (Err(e), _) => Err(Error::ConfigMapRead(e)),
        (Ok(_), None) => Ok(()),
        (Ok(existing), Some(want)) => {
            let written = write_configmap(&configmaps, existing.as_ref(), namespace, want).await;
            ctx.metrics.status_write("configmap", written.is_ok());
            written.map_err(Error::ConfigMapWrite)
        }
    };
    status_result?;
    cm_result?;
    Ok(Action::requeue(plan.requeue))
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
    ctx.metrics.reconcile_failed(error.label());
    if error.is_conflict() {
        tracing::debug!(error = %error, "write conflict; retrying with fresh data");
        return Action::requeue(Duration::from_millis(100));
    }
    tracing::warn!(error = %error, "reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
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
    let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.config.namespace);
    let shim = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}"));

    // The singleton comes back if someone deletes it.
    let recreate = Arc::new(tokio::sync::Notify::new());
    let Some(trigger) = writer.subscribe() else {
        tracing::error!("the OperatorStatus store is not shared; the status cannot be kept");
        return;
    };
    let recreate_tx = recreate.clone();
    let root = watcher(statuses.clone(), singleton).default_backoff().reflect_shared(writer).for_each(move |event| {
        if let Ok(watcher::Event::Delete(_)) = event {
            recreate_tx.notify_one();
        }
        std::future::ready(())
    });
    let guardian = tokio::spawn({
        let statuses = statuses.clone();
        async move {
            loop {
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
        WatchStream::from_changes(ctx.registration.clone()).map(|_| ()).boxed(),
        WatchStream::from_changes(ctx.assessment.clone()).map(|_| ()).boxed(),
        WatchStream::from_changes(ctx.collection.clone()).map(|_| ()).boxed(),
        WatchStream::from_changes(ctx.pro.clone()).map(|_| ()).boxed(),
    ])
    .map(|()| ObjectRef::<OperatorStatus>::new(SINGLETON_NAME));
    let controller = Controller::for_shared_stream(spec_changes(trigger), store)
        .watches(configmaps, shim, |_| Some(ObjectRef::new(SINGLETON_NAME)))
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
    }
}
