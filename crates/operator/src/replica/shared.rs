//! What the endpoint, the follower and the wiring share: the gate the election waits behind,
//! and the replica's settings and leadership.

use std::sync::Arc;

use super::settings::Settings;
use crate::base::leadership::Leadership;

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
