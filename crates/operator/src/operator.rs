//! The wiring: builds every part from the configuration, connects them, runs them until
//! SIGTERM or SIGINT. The only place that knows all the parts (docs/architecture.md).

use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use kube9_api::operator_status::OperatorStatus;
use tokio::sync::watch;

use crate::assessment::reconcile as assessments;
use crate::base::backoff::Outage;
use crate::base::config::Config;
use crate::base::leadership::Leadership;
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
    let outage = Outage::new(metrics.clone());
    tokio::spawn(outage.clone().report(client.clone(), stopped()));
    // Leader election: every replica watches and records; only the leader writes.
    let diagnostics = Arc::new(Diagnostics::default());
    // A replica joins the election only once it holds the leader's store (crate::replica).
    let gate = crate::replica::task::Gate::default();
    let (leadership, election) = match &config.leader_lease {
        Some(lease) => {
            let (leadership, role) = Leadership::new(config.identity.clone());
            let election = crate::leader::Election {
                client: client.clone(),
                namespace: config.namespace.clone(),
                lease: lease.clone(),
                identity: config.identity.clone(),
                metrics: metrics.clone(),
                outage: outage.clone(),
                diagnostics: diagnostics.clone(),
            };
            tracing::info!(identity = %config.identity, lease, "taking part in leader election");
            let elect = crate::leader::run(election, role, stopped());
            (leadership, Some(tokio::spawn(crate::replica::task::after_catch_up(gate.clone(), elect))))
        }
        None => (Leadership::alone(config.identity.clone()), None),
    };
    let (history, store_failure) = match &config.store {
        Some(store) => {
            let (history, failure) = writer::start(store.dir.clone(), store.limits, metrics.clone());
            tokio::spawn(crate::history::watch::run(client.clone(), history.clone(), outage.clone(), stopped()));
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
            let server = ServerClient::new(&config, key.clone(), metrics.clone())?;
            let Some(status_changes) = status_writer.subscribe() else {
                anyhow::bail!("the OperatorStatus store is not shared");
            };
            let pro = crate::pro::task::run(
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
            );
            tokio::spawn(when_leading(leadership.clone(), pro));
            tracing::info!(server = %config.server_url, "API key configured; registering with kube9-server");
            Some(tokio::spawn(when_leading(
                leadership.clone(),
                crate::registration::task::run(
                    client.clone(),
                    kube_config,
                    server,
                    Policy::from_config(&config),
                    registration_tx,
                    metrics.clone(),
                ),
            )))
        }
        None => {
            tracing::info!("no API key configured; running in operated mode (free tier)");
            drop(registration_tx);
            None
        }
    };

    // The AI Conformance self-check follows the singleton (its run-request annotation).
    let (conformance_tx, conformance_rx) = watch::channel(None);
    let Some(conformance_changes) = status_writer.subscribe() else {
        anyhow::bail!("the OperatorStatus store is not shared");
    };
    let conformance = tokio::spawn(crate::conformance::task::run(
        crate::conformance::task::Conformance {
            client: client.clone(),
            interval: config.ai_conformance_interval,
            status: status_store.clone(),
            report: conformance_tx,
            history: history.clone(),
        },
        conformance_changes.boxed(),
        stopped(),
    ));
    let (summary_tx, summary_rx) = watch::channel(None);
    let assessor = Arc::new(assessments::Context::new(
        client.clone(),
        &config,
        summary_tx,
        metrics.clone(),
        history.clone(),
        leadership.clone(),
        outage.clone(),
    ));
    let collectors = tokio::spawn(when_leading(
        leadership.clone(),
        collectors::run(
            client.clone(),
            collectors::Settings { intervals: config.collection_intervals, max_objects: config.collection_max_objects },
            collections,
            metrics.clone(),
            stopped(),
        ),
    ));
    let (argocd_tx, argocd_rx) = watch::channel(None);
    let argocd = tokio::spawn(crate::argocd::watch::run(
        client.clone(),
        crate::argocd::watch::Settings {
            namespace: config.argocd_namespace.clone(),
            max_applications: config.argocd_max_applications,
        },
        history.clone(),
        outage.clone(),
        argocd_tx,
        stopped(),
    ));
    let ctx = Arc::new(status::Context {
        client,
        config: config.clone(),
        registration: registration_rx,
        assessment: summary_rx,
        collection: collection_rx,
        pro: pro_rx,
        ai_conformance: conformance_rx,
        metrics: metrics.clone(),
        diagnostics: diagnostics.clone(),
        store: store_failure,
        history: history.clone(),
        leadership: leadership.clone(),
        outage,
        argocd: argocd_rx,
    });
    let replication = crate::replica::task::start(
        &config,
        ctx.client.clone(),
        leadership.clone(),
        diagnostics.clone(),
        gate,
        stopped(),
    )
    .await?;
    let listener = health::bind(config.health_addr)
        .await
        .with_context(|| format!("cannot listen on --health-addr {}", config.health_addr))?;
    let health = tokio::spawn(health::serve(listener, Health { diagnostics, metrics }, stopped()));
    let reconciler = tokio::spawn(status::run(ctx, status_writer, status_store, stopped()));
    let assessor = tokio::spawn(assessments::run(assessor, stopped()));

    let mut election = election;
    let lost = async {
        match election.as_mut() {
            Some(handle) => match handle.await {
                Ok(Err(lost)) => lost.to_string(),
                _ => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    };
    let lost = tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutting down");
            None
        }
        lost = lost => {
            tracing::error!(error = %lost, "shutting down");
            election = None;
            Some(lost)
        }
    };
    let _ = stop_tx.send(true);
    // The Lease first: the standby takes over while this process finishes.
    if let Some(election) = election {
        let _ = election.await;
    }
    if let Some(task) = registration {
        task.abort();
    }
    let _ = reconciler.await;
    let _ = assessor.await;
    let _ = collectors.await;
    let _ = conformance.await;
    let _ = argocd.await;
    if let Some(replication) = replication {
        let _ = replication.await;
    }
    if let Ok(Err(e)) = health.await {
        return Err(e).with_context(|| format!("health server on {}", config.health_addr));
    }
    if let Some(lost) = lost {
        anyhow::bail!(lost);
    }
    tracing::info!("stopped");
    Ok(())
}

/// Runs `task` once this process leads (at once without an election); never if it stops first.
async fn when_leading<T>(leadership: Leadership, task: impl Future<Output = T>) -> Option<T> {
    if leadership.leading().await { Some(task.await) } else { None }
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
