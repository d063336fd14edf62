//! The wiring: builds every part from the configuration, connects them, runs them until
//! SIGTERM or SIGINT. The only place that knows all the parts (docs/architecture.md).

use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use kube9_api::operator_status::OperatorStatus;
use tokio::sync::watch;

use crate::assessment::reconcile as assessments;
use crate::base::config::Config;
use crate::base::metrics::Metrics;
use crate::base::shared::spec_changes;
use crate::collect::held::Collections;
use crate::collect::task as collectors;
use crate::health::{self, Diagnostics, Health};
use crate::history::writer::{self, Recorder};
use crate::pro::report::Report;
use crate::registration::client::ServerClient;
use crate::registration::state::{Policy, Registration};
use crate::status::reconcile as status;

/// Events a reader of the singleton's shared watch may fall behind before the watch waits.
const SHARED_BUFFER: usize = 256;

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let kube_config = kube::Config::infer()
        .await
        .context("cannot find Kubernetes credentials: run in a Pod with a ServiceAccount, or set KUBECONFIG")?;
    let client = kube::Client::try_from(kube_config.clone()).context("cannot build the Kubernetes client")?;
    let metrics = Metrics::default();

    let initial = if config.api_key.is_some() { Registration::Pending } else { Registration::NoKey };
    let (registration_tx, registration_rx) = watch::channel(initial);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let (history, store_failure) = match &config.store {
        Some(store) => {
            let (history, failure) = writer::start(store.dir.clone(), store.limits, metrics.clone());
            tokio::spawn(crate::history::watch::run(client.clone(), history.clone(), stopped()));
            (history, failure)
        }
        None => {
            tracing::info!("no --data-dir: no event history is kept");
            (Recorder::disabled(metrics.clone()), watch::channel(None).1)
        }
    };
    // One watch of the OperatorStatus singleton: the status reconciler drives it, the pro task
    // reads the same store.
    let (status_store, status_writer) = kube::runtime::reflector::store_shared::<OperatorStatus>(SHARED_BUFFER);
    let collections = Arc::new(match &config.store {
        Some(store) => Collections::on_disk(config.collection_retention, &store.dir, store.limits),
        None => Collections::in_memory(config.collection_retention),
    });
    let collection_rx = collections.changed.subscribe();
    // Without a key there is no pro report: the status shows no insights.
    let (pro_tx, pro_rx) = watch::channel(config.api_key.is_none().then(Report::default));
    let registration = match &config.api_key {
        Some(key) => {
            let server = ServerClient::new(&config, key.clone())?;
            let Some(status_changes) = status_writer.subscribe() else {
                anyhow::bail!("the OperatorStatus store is not shared");
            };
            tokio::spawn(crate::pro::task::run(
                crate::pro::task::Pro {
                    client: client.clone(),
                    server: server.clone(),
                    config: config.clone(),
                    collections: collections.clone(),
                    registration: registration_rx.clone(),
                    status: status_store.clone(),
                    report: pro_tx,
                    metrics: metrics.clone(),
                    history: history.clone(),
                },
                spec_changes(status_changes).boxed(),
                stopped(),
            ));
            tracing::info!(server = %config.server_url, "API key configured; registering with kube9-server");
            Some(tokio::spawn(crate::registration::task::run(
                client.clone(),
                kube_config,
                server,
                Policy::from_config(&config),
                registration_tx,
                metrics.clone(),
            )))
        }
        None => {
            tracing::info!("no API key configured; running in operated mode (free tier)");
            drop(registration_tx);
            None
        }
    };

    let (summary_tx, summary_rx) = watch::channel(None);
    let assessor =
        Arc::new(assessments::Context::new(client.clone(), &config, summary_tx, metrics.clone(), history.clone()));
    let collectors = tokio::spawn(collectors::run(
        client.clone(),
        collectors::Settings { intervals: config.collection_intervals, max_objects: config.assessment_max_objects },
        collections,
        metrics.clone(),
        stopped(),
    ));
    let (argocd_tx, argocd_rx) = watch::channel(None);
    let argocd = tokio::spawn(crate::argocd::watch::run(
        client.clone(),
        crate::argocd::watch::Settings {
            namespace: config.argocd_namespace.clone(),
            max_applications: config.argocd_max_applications,
        },
        history.clone(),
        argocd_tx,
        stopped(),
    ));
    let diagnostics = Arc::new(Diagnostics::default());
    let ctx = Arc::new(status::Context {
        client,
        config: config.clone(),
        registration: registration_rx,
        assessment: summary_rx,
        collection: collection_rx,
        pro: pro_rx,
        metrics: metrics.clone(),
        diagnostics: diagnostics.clone(),
        store: store_failure,
        history: history.clone(),
        argocd: argocd_rx,
    });
    let listener = health::bind(config.health_addr)
        .await
        .with_context(|| format!("cannot listen on --health-addr {}", config.health_addr))?;
    let health = tokio::spawn(health::serve(listener, Health { diagnostics, metrics }, stopped()));
    let reconciler = tokio::spawn(status::run(ctx, status_writer, status_store, stopped()));
    let assessor = tokio::spawn(assessments::run(assessor, stopped()));

    let signal = shutdown_signal().await;
    tracing::info!(signal, "shutting down");
    let _ = stop_tx.send(true);
    if let Some(task) = registration {
        task.abort();
    }
    let _ = reconciler.await;
    let _ = assessor.await;
    let _ = collectors.await;
    let _ = argocd.await;
    if let Ok(Err(e)) = health.await {
        return Err(e).with_context(|| format!("health server on {}", config.health_addr));
    }
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGTERM or SIGINT and names it.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers the process can still be killed; run until then.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
