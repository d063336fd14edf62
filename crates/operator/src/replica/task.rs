//! Starts replication: the endpoint, the follower, and the gate the election waits behind.

use std::sync::Arc;

use super::follow::{self, Follower};
use super::serve;
use super::settings::{STATE_FILE, Settings, SettingsError};
use crate::base::leadership::Leadership;
use crate::health::Diagnostics;

/// Opened once this replica may join the leader election: it holds a copy of the leader's
/// store, or there is no live leader to copy from. A new Pod that took the Lease before its
/// copy (the old leader deleted while it starts) would lead with an empty store.
#[derive(Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Gate {
        Gate(Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Gate {
    pub fn open(&self) {
        self.0.send_if_modified(|open| !std::mem::replace(open, true));
    }

    pub async fn opened(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

/// Runs `task` once `gate` is open.
pub async fn after_catch_up<T>(gate: Gate, task: impl Future<Output = T>) -> T {
    gate.opened().await;
    task.await
}

/// What the endpoints and the follower share.
pub struct Replica {
    pub settings: Settings,
    pub leadership: Leadership,
    pub limits: kube9_store::Limits,
}

/// Starts serving this replica's store to the others and following the leader's, when
/// replication is configured; fails when it is configured wrong or its port is taken.
pub async fn start(
    config: &crate::base::config::Config,
    client: kube::Client,
    leadership: Leadership,
    diagnostics: Arc<Diagnostics>,
    gate: Gate,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    use anyhow::Context as _;
    let Some(store) = &config.store else {
        if std::env::var_os("KUBE9_REPLICATION_ADDR").is_some() {
            return Err(SettingsError::NoStore.into());
        }
        gate.open();
        return Ok(None);
    };
    let Some(settings) = Settings::from_env(Some(&store.dir), config.leader_lease.is_some())? else {
        tracing::info!("no KUBE9_REPLICATION_ADDR: this replica keeps its own store only");
        // A state file from an earlier run with replication (a persistent volume) would send
        // `query` to a leader that is not there: this replica answers for itself now.
        let _ = std::fs::remove_file(store.dir.join(STATE_FILE));
        gate.open();
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on KUBE9_REPLICATION_ADDR {}", settings.listen))?;
    tracing::info!(listen = %settings.listen, url = %settings.url, "serving the store to the other replicas");
    let replica = Arc::new(Replica { settings, leadership, limits: store.limits });
    let follower = Follower {
        client,
        namespace: config.namespace.clone(),
        lease: config.leader_lease.clone().unwrap_or_default(),
        identity: config.identity.clone(),
        replica: replica.clone(),
        diagnostics,
        gate: gate.clone(),
    };
    Ok(Some(tokio::spawn(async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let served = tokio::spawn(serve::serve(listener, replica, stopped()));
        let followed = tokio::spawn(follow::run(follower, stopped()));
        shutdown.await;
        // An election still waiting must see the stop too.
        gate.open();
        let _ = stop_tx.send(true);
        let _ = served.await;
        let _ = followed.await;
    })))
}
