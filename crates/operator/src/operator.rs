//! The wiring: builds every part from the configuration, connects them, runs them until
//! SIGTERM or SIGINT. The only place that knows all the parts (docs/architecture.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use kube::runtime::reflector::{self, ReflectHandle, Store, store::Writer};
use kube9_api::operator_status::OperatorStatus;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::assessment::reconcile as assessments;
use crate::base::backoff::Outage;
use crate::base::config::Config;
use crate::base::leadership::Leadership;
use crate::base::metrics::Metrics;
use crate::base::shared::spec_changes;
use crate::collections::held::Collections;
use crate::collections::task as collectors;
use crate::health::{self, Diagnostics, Health};
use crate::history::writer::{self, Recorder};
use crate::leader::{self, Lost};
use crate::pro::report::Report;
use crate::registration::client::ServerClient;
use crate::registration::state::{Policy, Registration};
use crate::replica::shared::{Gate, after_catch_up};
use crate::replica::task as replica;
use crate::status::plan::Settings;
use crate::status::reconcile::{self as status, Feeds, Reporting};

/// Events a reader of the singleton's shared watch may fall behind before the watch waits.
const SHARED_BUFFER: usize = 256;

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let (kube_config, shared, stop) = connect().await?;
    // A replica joins the election only once it holds the leader's store (crate::replica).
    let gate = Gate::default();
    let (leadership, election) = elect(&config, &shared, &gate);
    let (history, store_failure) = keep_history(&config, &shared);
    let singleton = Singleton::new();
    let collections = Arc::new(collections(&config));
    let collection = collections.changed.subscribe();
    let pro = pro_tier(&config, kube_config, &shared, &leadership, &history, &singleton, collections.clone())?;
    let (conformance, ai_conformance) = conformance(&config, &shared, &history, &singleton)?;
    let (summary, assessment) = watch::channel(None);
    let collectors = collectors(&config, &shared, &leadership, collections);
    let (argocd, argocd_status) = argocd(&config, &shared, &history);
    let replication = replica::start(
        &config,
        shared.client.clone(),
        leadership.clone(),
        shared.diagnostics.clone(),
        gate,
        shared.stopped(),
    )
    .await?;
    let health = serve_health(config.health_addr, &shared).await?;
    let feeds = Feeds {
        registration: pro.registration,
        assessment,
        collection,
        pro: pro.report,
        ai_conformance,
        store: store_failure,
        argocd: argocd_status,
    };
    let status = status(&config, &shared, &leadership, &history, feeds, singleton);
    let assessments = assessments(&config, &shared, &leadership, &history, summary);
    let running = Running {
        election,
        registration: pro.registration_task,
        status,
        assessments,
        collectors,
        conformance,
        argocd,
        replication,
        health,
        health_addr: config.health_addr,
    };
    running.until_stopped(stop).await
}

/// What several components are handed: the client, the metrics, where the watches report
/// outages, what `/readyz` says, and the signal to stop.
struct Shared {
    client: kube::Client,
    metrics: Metrics,
    outage: Outage,
    diagnostics: Arc<Diagnostics>,
    stop: watch::Receiver<bool>,
}

impl Shared {
    /// Completes once the operator is told to stop.
    fn stopped(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut stop = self.stop.clone();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    }
}

/// The operator's Kubernetes client. kube's own retries 429, 503 and 504 and waits as long as
/// the answer's `Retry-After` says: a kube-apiserver starting again answers watches 503 for a
/// moment, and every watch then waited 5 s more than the server needed (each watch back 4.3 s
/// after readiness, measured on 1.37.2). This one retries the same answers along a short
/// backoff of its own, 5 ms doubling to at most 1 s, eight times, then leaves the error to the
/// caller (a watch's [`crate::base::backoff::WatchBackoff`], a reconciler's requeue).
fn client(mut config: kube::Config) -> anyhow::Result<kube::Client> {
    config.default_retry = false;
    let retries = kube::client::retry::RetryPolicy::new(Duration::from_millis(5), Duration::from_secs(1), 8, false)?;
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::retry::RetryLayer::new(retries))
        .build())
}

/// The Kubernetes client and the handles every component shares; the sender stops them all.
async fn connect() -> anyhow::Result<(kube::Config, Shared, watch::Sender<bool>)> {
    let kube_config = kube::Config::infer()
        .await
        .context("cannot find Kubernetes credentials: run in a Pod with a ServiceAccount, or set KUBECONFIG")?;
    let client = client(kube_config.clone()).context("cannot build the Kubernetes client")?;
    let metrics = Metrics::default();
    let (stop_tx, stop) = watch::channel(false);
    let shared = Shared {
        outage: Outage::new(metrics.clone()),
        client,
        metrics,
        diagnostics: Arc::new(Diagnostics::default()),
        stop,
    };
    tokio::spawn(shared.outage.clone().report(shared.client.clone(), shared.stopped()));
    Ok((kube_config, shared, stop_tx))
}

/// Leader election: every replica watches and records; only the leader writes. Without a
/// Lease this process leads alone.
fn elect(config: &Config, shared: &Shared, gate: &Gate) -> (Leadership, Option<JoinHandle<Result<(), Lost>>>) {
    let Some(lease) = &config.leader_lease else {
        return (Leadership::alone(config.identity.clone()), None);
    };
    let (leadership, role) = Leadership::new(config.identity.clone());
    let election = leader::Election {
        client: shared.client.clone(),
        namespace: config.namespace.clone(),
        lease: lease.clone(),
        identity: config.identity.clone(),
        metrics: shared.metrics.clone(),
        outage: shared.outage.clone(),
        diagnostics: shared.diagnostics.clone(),
    };
    tracing::info!(identity = %config.identity, lease, "taking part in leader election");
    let campaign = after_catch_up(gate.clone(), leader::run(election, role, shared.stopped()));
    (leadership, Some(tokio::spawn(campaign)))
}

/// The embedded store, and the cluster's Events recorded in it; the receiver says why the
/// store cannot be used. Without a data directory nothing is kept.
fn keep_history(config: &Config, shared: &Shared) -> (Recorder, watch::Receiver<Option<String>>) {
    let Some(store) = &config.store else {
        tracing::info!("no --data-dir: no event history is kept");
        return (Recorder::disabled(shared.metrics.clone()), watch::channel(None).1);
    };
    let (history, failure) = writer::start(store.dir.clone(), store.limits, shared.metrics.clone());
    tokio::spawn(crate::history::watch::run(
        shared.client.clone(),
        history.clone(),
        shared.outage.clone(),
        shared.stopped(),
    ));
    (history, failure)
}

/// One watch of the OperatorStatus singleton: the status reconciler drives it, the pro and AI
/// Conformance tasks follow the same store.
struct Singleton {
    store: Store<OperatorStatus>,
    writer: Writer<OperatorStatus>,
}

impl Singleton {
    fn new() -> Singleton {
        let (store, writer) = reflector::store_shared(SHARED_BUFFER);
        Singleton { store, writer }
    }

    /// The singleton's updates, for one more follower.
    fn follow(&self) -> anyhow::Result<ReflectHandle<OperatorStatus>> {
        self.writer.subscribe().context("the OperatorStatus store is not shared")
    }
}

/// Where the collectors' results wait for an upload: on disk beside the store, or in memory.
fn collections(config: &Config) -> Collections {
    match &config.store {
        Some(store) => Collections::on_disk(config.collection_retention, &store.dir, store.limits),
        None => Collections::in_memory(config.collection_retention),
    }
}

/// Registration with kube9-server and the pro tier's reports, as the status reads them.
struct ProTier {
    registration: watch::Receiver<Registration>,
    report: watch::Receiver<Option<Report>>,
    /// Registers again and again until aborted; None without an API key.
    registration_task: Option<JoinHandle<Option<()>>>,
}

/// With an API key, registration and the pro task, each once this replica leads; without one
/// the operator runs in operated mode (free tier) and the status shows no insights.
fn pro_tier(
    config: &Config,
    kube_config: kube::Config,
    shared: &Shared,
    leadership: &Leadership,
    history: &Recorder,
    singleton: &Singleton,
    collections: Arc<Collections>,
) -> anyhow::Result<ProTier> {
    let initial = if config.api_key.is_some() { Registration::Pending } else { Registration::NoKey };
    let (registration_tx, registration) = watch::channel(initial);
    let (report_tx, report) = watch::channel(config.api_key.is_none().then(Report::default));
    let Some(key) = &config.api_key else {
        tracing::info!("no API key configured; running in operated mode (free tier)");
        return Ok(ProTier { registration, report, registration_task: None });
    };
    let server = ServerClient::new(config, key.clone(), shared.metrics.clone())?;
    let pro = crate::pro::task::run(
        crate::pro::task::Pro {
            client: shared.client.clone(),
            server: server.clone(),
            config: config.clone(),
            collections,
            registration: registration.clone(),
            status: singleton.store.clone(),
            report: report_tx,
            metrics: shared.metrics.clone(),
            history: history.clone(),
        },
        spec_changes(singleton.follow()?).boxed(),
        shared.stopped(),
    );
    tokio::spawn(when_leading(leadership.clone(), pro));
    tracing::info!(server = %config.server_url, "API key configured; registering with kube9-server");
    let registration_task = tokio::spawn(when_leading(
        leadership.clone(),
        crate::registration::task::run(
            shared.client.clone(),
            kube_config,
            server,
            Policy::from_config(config),
            registration_tx,
            shared.metrics.clone(),
        ),
    ));
    Ok(ProTier { registration, report, registration_task: Some(registration_task) })
}

/// The AI Conformance self-check: on its schedule, and on the singleton's run-request
/// annotation.
fn conformance(
    config: &Config,
    shared: &Shared,
    history: &Recorder,
    singleton: &Singleton,
) -> anyhow::Result<(JoinHandle<()>, watch::Receiver<Option<kube9_api::ai_conformance::AiConformanceSummary>>)> {
    let (report, summary) = watch::channel(None);
    let task = tokio::spawn(crate::conformance::task::run(
        crate::conformance::task::Conformance {
            client: shared.client.clone(),
            interval: config.ai_conformance_interval,
            status: singleton.store.clone(),
            report,
            history: history.clone(),
        },
        singleton.follow()?.boxed(),
        shared.stopped(),
    ));
    Ok((task, summary))
}

/// The pro tier's collectors, once this replica leads.
fn collectors(
    config: &Config,
    shared: &Shared,
    leadership: &Leadership,
    collections: Arc<Collections>,
) -> JoinHandle<Option<()>> {
    tokio::spawn(when_leading(
        leadership.clone(),
        collectors::run(
            shared.client.clone(),
            collectors::Settings { intervals: config.collection_intervals, max_objects: config.collection_max_objects },
            collections,
            shared.metrics.clone(),
            shared.stopped(),
        ),
    ))
}

/// Argo CD: detected, and its Applications followed, on every replica.
fn argocd(
    config: &Config,
    shared: &Shared,
    history: &Recorder,
) -> (JoinHandle<()>, watch::Receiver<Option<kube9_api::argocd::ArgoCdStatus>>) {
    let (tx, status) = watch::channel(None);
    let task = tokio::spawn(crate::argocd_io::watch::run(
        shared.client.clone(),
        crate::argocd_io::watch::Settings {
            namespace: config.argocd_namespace.clone(),
            max_applications: config.argocd_max_applications,
        },
        history.clone(),
        shared.outage.clone(),
        tx,
        shared.stopped(),
    ));
    (task, status)
}

/// `/healthz`, `/readyz` and `/metrics`; a taken port stops start-up.
async fn serve_health(addr: SocketAddr, shared: &Shared) -> anyhow::Result<JoinHandle<std::io::Result<()>>> {
    let listener = health::bind(addr).await.with_context(|| format!("cannot listen on --health-addr {addr}"))?;
    let health = Health { diagnostics: shared.diagnostics.clone(), metrics: shared.metrics.clone() };
    Ok(tokio::spawn(health::serve(listener, health, shared.stopped())))
}

/// The OperatorStatus reconciler, which drives the singleton's shared watch.
fn status(
    config: &Config,
    shared: &Shared,
    leadership: &Leadership,
    history: &Recorder,
    feeds: Feeds,
    singleton: Singleton,
) -> JoinHandle<()> {
    let ctx = Arc::new(status::Context {
        client: shared.client.clone(),
        settings: Settings::from_config(config),
        feeds,
        leadership: leadership.clone(),
        outage: shared.outage.clone(),
        reporting: Reporting {
            metrics: shared.metrics.clone(),
            diagnostics: shared.diagnostics.clone(),
            history: history.clone(),
        },
    });
    tokio::spawn(status::run(ctx, singleton.writer, singleton.store, shared.stopped()))
}

/// The Assessment controller; `summary` carries the latest scheduled run to the status.
fn assessments(
    config: &Config,
    shared: &Shared,
    leadership: &Leadership,
    history: &Recorder,
    summary: watch::Sender<Option<kube9_api::assessment::ScheduledSummary>>,
) -> JoinHandle<()> {
    let ctx = Arc::new(assessments::Context::new(
        shared.client.clone(),
        assessments::Settings::from_config(config),
        summary,
        shared.metrics.clone(),
        history.clone(),
        leadership.clone(),
        shared.outage.clone(),
    ));
    tokio::spawn(assessments::run(ctx, shared.stopped()))
}

/// The tasks that are waited for (or aborted) when the operator stops.
struct Running {
    election: Option<JoinHandle<Result<(), Lost>>>,
    registration: Option<JoinHandle<Option<()>>>,
    status: JoinHandle<()>,
    assessments: JoinHandle<()>,
    collectors: JoinHandle<Option<()>>,
    conformance: JoinHandle<()>,
    argocd: JoinHandle<()>,
    /// Serving or following the leader's store (with a data directory).
    replication: Option<JoinHandle<()>>,
    health: JoinHandle<std::io::Result<()>>,
    health_addr: SocketAddr,
}

impl Running {
    /// Runs until SIGTERM or SIGINT, or until the leader Lease is lost, then stops every task:
    /// the Lease first, so the standby takes over while this process finishes. A lost Lease is
    /// the error the process exits with.
    async fn until_stopped(mut self, stop: watch::Sender<bool>) -> anyhow::Result<()> {
        let lost = async {
            match self.election.as_mut() {
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
                self.election = None;
                Some(lost)
            }
        };
        let _ = stop.send(true);
        if let Some(election) = self.election {
            let _ = election.await;
        }
        if let Some(task) = self.registration {
            task.abort();
        }
        let _ = self.status.await;
        let _ = self.assessments.await;
        let _ = self.collectors.await;
        let _ = self.conformance.await;
        let _ = self.argocd.await;
        if let Some(replication) = self.replication {
            let _ = replication.await;
        }
        if let Ok(Err(e)) = self.health.await {
            return Err(e).with_context(|| format!("health server on {}", self.health_addr));
        }
        if let Some(lost) = lost {
            anyhow::bail!(lost);
        }
        tracing::info!("stopped");
        Ok(())
    }
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
