//! Leader election on a `coordination.k8s.io/v1` Lease in the operator's namespace, with
//! `kube-lease-manager`: one replica leads (writes the ConfigMap, the OperatorStatus and the
//! Assessment results, and talks to kube9-server); the others stand by with their watches
//! warm and take over when the Lease is released (SIGTERM) or expires (a crash).

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;

use crate::base::backoff::{Outage, WatchBackoff};
use crate::base::leadership::Role;
use crate::base::metrics::Metrics;
use crate::health::Diagnostics;

/// How long a Lease holds without renewal: a crashed leader is replaced about this long after
/// its last renewal (plus up to a second).
pub const LEASE_SECONDS: u64 = 12;
/// How long before expiry the leader renews (every `LEASE_SECONDS - RENEW_BEFORE_SECONDS`);
/// also the clock skew between nodes the election tolerates.
pub const RENEW_BEFORE_SECONDS: u64 = 4;
/// Longest a leader waits to release the Lease on shutdown.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the election ended.
#[derive(Debug, thiserror::Error)]
pub enum Lost {
    #[error(
        "lost the leader Lease {0} to another replica; exiting so that only one replica writes (the Pod restarts as a standby)"
    )]
    ToAnother(String),
}

/// What the election needs.
pub struct Election {
    pub client: kube::Client,
    pub namespace: String,
    pub lease: String,
    pub identity: String,
    pub metrics: Metrics,
    pub outage: Outage,
    /// Told when the Lease cannot be used, so that `/readyz` says why.
    pub diagnostics: std::sync::Arc<Diagnostics>,
}

/// Consecutive failures of another kind than a refusal before the replica is unready.
const FAILURES_BEFORE_UNREADY: u32 = 3;

/// Follows whether the election can use its Lease: a refusal (403) makes the replica unready at
/// once, naming the permission; other errors (the API server away) after a few in a row.
struct Trouble<'e> {
    election: &'e Election,
    failures: u32,
}

impl<'e> Trouble<'e> {
    fn new(election: &'e Election) -> Self {
        Trouble { election, failures: 0 }
    }

    fn failed(&mut self, error: &kube_lease_manager::LeaseManagerError) {
        let election = self.election;
        election.metrics.leader_election_error();
        self.failures += 1;
        let refusal = match error {
            kube_lease_manager::LeaseManagerError::KubeError(kube::Error::Api(response)) if response.code == 403 => {
                Some(response.message.as_str())
            }
            _ => None,
        };
        if refusal.is_none() && self.failures < FAILURES_BEFORE_UNREADY {
            tracing::warn!(error = %error, lease = %election.lease, "leader election cannot reach the Lease; retrying");
            return;
        }
        let failure = match refusal {
            Some(message) => format!(
                "leader election cannot use the Lease {}/{} (the operator's Role must grant get, update and patch on it and create on leases, as the chart's Role does): forbidden: {}",
                election.namespace,
                election.lease,
                kube9_api::text::truncate(message, 300)
            ),
            None => format!(
                "leader election cannot use the Lease {}/{}: {}",
                election.namespace,
                election.lease,
                kube9_api::text::truncate(&error.to_string(), 300)
            ),
        };
        if self.failures == 1 || (refusal.is_none() && self.failures == FAILURES_BEFORE_UNREADY) {
            tracing::error!(failure = %failure, "this replica cannot lead or stand by; not ready until the Lease can be used");
        }
        election.diagnostics.record_election(Some(failure));
    }

    fn worked(&mut self) {
        if self.failures > 0 {
            tracing::info!(lease = %self.election.lease, "leader election uses its Lease again");
            self.election.diagnostics.record_election(None);
        }
        self.failures = 0;
    }
}

/// Takes part in the election until `shutdown` completes (releasing the Lease if held), and
/// publishes this process's role. Returns an error if a Lease this process held was taken.
pub async fn run(
    election: Election,
    role: watch::Sender<Role>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Lost> {
    tokio::pin!(shutdown);
    let built = tokio::select! {
        _ = &mut shutdown => None,
        manager = build(&election) => Some(manager),
    };
    let Some(manager) = built else { return Ok(()) };

    // Who holds the Lease, as a watch of that one object sees it: a standby learns the leader's
    // name, and wakes at once when the Lease is released instead of waiting for it to expire.
    let (holder_tx, mut holder_rx) = watch::channel(None::<String>);
    let leases: Api<Lease> = Api::namespaced(election.client.clone(), &election.namespace);
    let one = watcher::Config::default().fields(&format!("metadata.name={}", election.lease));
    let holders =
        tokio::spawn(watcher(leases, one).backoff(WatchBackoff::new(&election.outage)).for_each(move |event| {
            let holder = match event {
                Ok(watcher::Event::Apply(lease) | watcher::Event::InitApply(lease)) => {
                    Some(lease.spec.and_then(|s| s.holder_identity).filter(|h| !h.is_empty()))
                }
                Ok(watcher::Event::Delete(_)) => Some(None),
                _ => None,
            };
            if let Some(holder) = holder {
                holder_tx.send_if_modified(|current| std::mem::replace(current, holder.clone()) != holder);
            }
            std::future::ready(())
        }));

    let result = elect(&election, &manager, &role, &mut holder_rx, shutdown).await;
    holders.abort();
    if *role.borrow() == Role::Leader {
        match tokio::time::timeout(RELEASE_TIMEOUT, manager.release()).await {
            Ok(Ok(())) => tracing::info!(lease = %election.lease, "released the leader Lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot release the leader Lease; it expires on its own"),
            Err(_) => tracing::warn!("releasing the leader Lease timed out; it expires on its own"),
        }
    }
    role.send_replace(Role::Standby { leader: None });
    election.metrics.leading(false);
    result
}

/// Builds the manager (creating the Lease when missing), retrying until the API server answers.
async fn build(election: &Election) -> LeaseManager {
    let mut trouble = Trouble::new(election);
    loop {
        let built = LeaseManagerBuilder::new(election.client.clone(), &election.lease)
            .with_namespace(&election.namespace)
            .with_identity(&election.identity)
            .with_duration(LEASE_SECONDS)
            .with_grace(RENEW_BEFORE_SECONDS)
            .build()
            .await;
        match built {
            Ok(manager) => {
                trouble.worked();
                return manager;
            }
            Err(e) => {
                trouble.failed(&e);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// The election loop: publishes every change of role until shutdown, or until the Lease this
/// process held goes to another.
async fn elect(
    election: &Election,
    manager: &LeaseManager,
    role: &watch::Sender<Role>,
    holder_rx: &mut watch::Receiver<Option<String>>,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<(), Lost> {
    let mut trouble = Trouble::new(election);
    // Errors come only from the manager's attempts on the Lease; a whole Lease period without
    // one means it works again.
    let mut last_failure = tokio::time::Instant::now();
    loop {
        let leading = *role.borrow() == Role::Leader;
        let quiet = last_failure + Duration::from_secs(LEASE_SECONDS);
        tokio::select! {
            biased;
            _ = &mut shutdown => return Ok(()),
            _ = tokio::time::sleep_until(quiet), if trouble.failures > 0 => trouble.worked(),
            changed = manager.changed() => match changed {
                Ok(true) => {
                    trouble.worked();
                    tracing::info!(identity = %election.identity, lease = %election.lease, "leading: this replica now writes status");
                    // The role first: what follows it (the replica state `query` reads) is
                    // written by the time the metric says this replica leads.
                    role.send_replace(Role::Leader);
                    election.metrics.leading(true);
                }
                Ok(false) if leading => {
                    election.metrics.leading(false);
                    role.send_replace(Role::Standby { leader: None });
                    return Err(Lost::ToAnother(election.lease.clone()));
                }
                Ok(false) => {}
                Err(e) => {
                    trouble.failed(&e);
                    last_failure = tokio::time::Instant::now();
                    tokio::select! {
                        _ = &mut shutdown => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            },
            () = released(holder_rx, role, &election.identity), if !leading => {
                // Re-read the Lease now (a standby's `release` only re-reads it) so that the
                // next `changed` takes it instead of sleeping to the old expiry.
                if let Err(e) = manager.release().await {
                    tracing::debug!(error = %e, "re-reading the released Lease");
                }
            }
        }
    }
}

/// Follows the Lease's holder, publishing it as the leader a standby sees, until the Lease is
/// released (no holder). Cancel-safe: only a watch receiver is awaited.
async fn released(holder_rx: &mut watch::Receiver<Option<String>>, role: &watch::Sender<Role>, identity: &str) {
    loop {
        if holder_rx.changed().await.is_err() {
            return std::future::pending().await;
        }
        let holder = holder_rx.borrow_and_update().clone();
        let Some(holder) = holder else { return };
        if holder != identity {
            let next = Role::Standby { leader: Some(holder.clone()) };
            if role.send_if_modified(|current| {
                let change = *current != Role::Leader && *current != next;
                if change {
                    *current = next.clone();
                }
                change
            }) {
                tracing::info!(leader = %holder, "standing by");
            }
        }
    }
}
