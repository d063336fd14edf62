//! The kube9-operator library: configuration, registration with kube9-server, the
//! OperatorStatus reconciler, the legacy ConfigMap shim, the Assessment controller, health
//! and metrics.

pub mod assess;
pub mod assessment;
pub mod collect;
pub mod config;
pub mod controller;
pub mod health;
pub mod memory;
pub mod metrics;
pub mod pro;
pub mod registration;
pub mod shim;
pub mod status;
pub mod telemetry;

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::config::Config;
use crate::controller::{Context, Diagnostics};
use crate::metrics::Metrics;
use crate::registration::client::ServerClient;
use crate::registration::{Policy, Registration};

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let kube_config = kube::Config::infer()
        .await
        .context("cannot find Kubernetes credentials: run in a Pod with a ServiceAccount, or set KUBECONFIG")?;
    let client = kube::Client::try_from(kube_config.clone()).context("cannot build the Kubernetes client")?;
    let metrics = Metrics::default();

    let initial = if config.api_key.is_some() { Registration::Pending } else { Registration::NoKey };
    let (tx, rx) = watch::channel(initial);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let collections = Arc::new(collect::Collections::new(config.collection_retention));
    let collection_rx = collections.changed.subscribe();
    let (spec_tx, spec_rx) = watch::channel(None);
    // Without a key there is no pro report: the status shows no insights.
    let (pro_tx, pro_rx) = watch::channel(config.api_key.is_none().then(pro::Report::default));
    let registration = match &config.api_key {
        Some(key) => {
            let server = ServerClient::new(&config, key.clone())?;
            tokio::spawn(pro::run(
                pro::Pro {
                    client: client.clone(),
                    server: server.clone(),
                    config: config.clone(),
                    collections: collections.clone(),
                    registration: rx.clone(),
                    spec: spec_rx,
                    report: pro_tx,
                    metrics: metrics.clone(),
                },
                stopped(),
            ));
            let policy = Policy::from_config(&config);
            tracing::info!(server = %config.server_url, "API key configured; registering with kube9-server");
            Some(tokio::spawn(registration::task::run(
                client.clone(),
                kube_config,
                server,
                policy,
                tx,
                metrics.clone(),
            )))
        }
        None => {
            tracing::info!("no API key configured; running in operated mode (free tier)");
            drop(tx);
            None
        }
    };

    let (summary_tx, summary_rx) = watch::channel(None);
    let assessments = Arc::new(assessment::Context::new(client.clone(), summary_tx, config.assessment_max_objects));
    let collectors = tokio::spawn(collect::run(
        client.clone(),
        collect::Settings { intervals: config.collection_intervals, max_objects: config.assessment_max_objects },
        collections,
        metrics.clone(),
        stopped(),
    ));
    let ctx = Arc::new(Context {
        client,
        config: config.clone(),
        registration: rx,
        assessment: summary_rx,
        collection: collection_rx,
        pro: pro_rx,
        spec: spec_tx,
        metrics,
        diagnostics: Diagnostics::default(),
    });
    let listener = health::bind(config.health_addr)
        .await
        .with_context(|| format!("cannot listen on --health-addr {}", config.health_addr))?;
    let health = tokio::spawn(health::serve(listener, ctx.clone(), stopped()));
    let controller = tokio::spawn(controller::run(ctx, stopped()));
    let assessor = tokio::spawn(assessment::run(assessments, stopped()));

    let signal = shutdown_signal().await;
    tracing::info!(signal, "shutting down");
    let _ = stop_tx.send(true);
    if let Some(task) = registration {
        task.abort();
    }
    let _ = controller.await;
    let _ = assessor.await;
    let _ = collectors.await;
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
