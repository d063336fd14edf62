//! Starts replication: the endpoint, the follower, and the gate the election waits behind.

use std::sync::Arc;

use super::follow::{self, Follower};
use super::serve;
use super::settings::{STATE_FILE, Settings, SettingsError};
use super::shared::{Gate, Replica};
use crate::base::leadership::Leadership;
use crate::health::Diagnostics;

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
