//! Each replica's side of replication: while it leads, it says in the Lease where it serves
//! its store; while it stands by, it pulls the leader's store whenever it changed (at most
//! about once a second) and keeps [`State`] for `query` beside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::settings::{ANNOTATION, State};
use super::shared::{Gate, Replica};
use crate::health::Diagnostics;

/// The shortest pause between two pulls; a large store waits longer (twice its last pull).
const PULL_EVERY: Duration = Duration::from_secs(1);
/// How long a new standby waits for a leader that does not advertise its store (an older
/// operator during an upgrade) before it is ready anyway, starting from its own store.
const NO_ADVERTISEMENT_GRACE: Duration = Duration::from_secs(30);

pub struct Follower {
    pub client: kube::Client,
    pub namespace: String,
    pub lease: String,
    pub identity: String,
    pub replica: Arc<Replica>,
    pub diagnostics: Arc<Diagnostics>,
    pub gate: Gate,
}

/// Who holds the Lease, as the Lease itself says (this replica may not be in the election yet).
#[derive(Debug, PartialEq)]
struct Holder {
    identity: String,
    /// Where it serves its store, if it says so.
    url: Option<String>,
    /// Renewed within its duration: a leader to copy from.
    live: bool,
}

/// Why a pull did not bring the leader's store.
#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("the leader answered {0}: {1}")]
    Refused(u16, String),
    #[error("cannot write the copy: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Store(#[from] kube9_store::Error),
}

pub async fn run(follower: Follower, shutdown: impl Future<Output = ()> + Send) {
    // The moment this replica leads, `query` in its Pod answers from its own store: the state
    // is written at once, not when the loop below next looks (it may be waiting on a pull from
    // the leader that just died, and a query meanwhile would try that leader).
    let at_once = async {
        let mut roles = follower.replica.leadership.changes();
        while roles.changed().await.is_ok() {
            if follower.replica.leadership.is_leader() {
                follower.write_state(None, None, true);
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = follow(&follower, shutdown) => {}
        () = at_once => {}
    }
}

async fn follow(follower: &Follower, shutdown: impl Future<Output = ()> + Send) {
    tokio::pin!(shutdown);
    let mut changes = follower.replica.leadership.changes();
    let http = match reqwest::Client::builder().connect_timeout(Duration::from_secs(2)).build() {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the replication client; this replica does not copy the leader's store");
            follower.diagnostics.record_replication(None);
            follower.gate.open();
            return;
        }
    };
    let started = Instant::now();
    let mut advertised = false;
    let mut held: Option<String> = None;
    let mut caught_up = false;
    let mut failing = false;
    follower.diagnostics.record_replication(Some("not caught up with the leader's store yet".into()));
    loop {
        changes.mark_unchanged();
        let mut pause = PULL_EVERY;
        if follower.replica.leadership.is_leader() {
            follower.diagnostics.record_replication(None);
            follower.write_state(None, None, true);
            if !advertised {
                match follower.advertise().await {
                    Ok(()) => {
                        advertised = true;
                        tracing::info!(url = %follower.replica.settings.url, "leading: serving the store to the standby");
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot say in the Lease where the store is served; retrying"),
                }
            }
            if advertised {
                pause = Duration::from_secs(3600);
            }
        } else {
            advertised = false;
            match follower.holder().await {
                Err(e) => {
                    if !caught_up {
                        follower
                            .diagnostics
                            .record_replication(Some(format!("cannot read the Lease {}: {e}", follower.lease)));
                    }
                }
                Ok(holder) => match holder {
                    // Nobody to copy from (no leader yet, an expired Lease, or this replica's own
                    // from before a restart): join the election with what this replica has.
                    None => follower.alone(None, &mut caught_up),
                    Some(h) if !h.live || h.identity == follower.identity => {
                        follower.alone(Some(&h.identity), &mut caught_up)
                    }
                    Some(Holder { identity: leader, url: None, .. }) => {
                        follower.write_state(Some(&leader), None, false);
                        if !caught_up && started.elapsed() >= NO_ADVERTISEMENT_GRACE {
                            tracing::warn!(%leader, "the leader does not serve its store (an older operator?); this replica starts from its own");
                            caught_up = true;
                            follower.diagnostics.record_replication(None);
                            follower.gate.open();
                        } else if !caught_up {
                            follower.diagnostics.record_replication(Some(format!(
                                "waiting for the leader {leader} to say where its store is served"
                            )));
                        }
                    }
                    Some(Holder { identity: leader, url: Some(url), .. }) => {
                        follower.write_state(Some(&leader), Some(&url), false);
                        let began = Instant::now();
                        match follower.pull(&http, &url, held.as_deref()).await {
                            Ok(fetched) => {
                                if let Some(fingerprint) = fetched {
                                    held = Some(fingerprint);
                                }
                                if !caught_up || failing {
                                    tracing::info!(%leader, "holding a copy of the leader's store");
                                }
                                caught_up = true;
                                failing = false;
                                follower.diagnostics.record_replication(None);
                                follower.gate.open();
                                pause = PULL_EVERY.max(began.elapsed() * 2);
                            }
                            Err(e) => {
                                if !failing {
                                    tracing::warn!(%leader, %url, error = %e, "cannot copy the leader's store; retrying every second");
                                }
                                failing = true;
                                if !caught_up {
                                    follower.diagnostics.record_replication(Some(format!(
                                        "not caught up with the leader {leader} yet: {e}"
                                    )));
                                }
                            }
                        }
                    }
                },
            }
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = changes.changed() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Whether a Lease renewed at `renewed` for `seconds` still holds at `now`.
fn live(renewed: Option<Timestamp>, seconds: Option<i32>, now: Timestamp) -> bool {
    match (renewed, seconds) {
        (Some(renewed), Some(seconds)) => renewed.as_millisecond() + i64::from(seconds) * 1000 > now.as_millisecond(),
        _ => false,
    }
}

impl Follower {
    fn write_state(&self, leader: Option<&str>, url: Option<&str>, leading: bool) {
        // Asked now, not when the caller decided: a standby's state decided before the Lease
        // came to this replica must not undo the leader's written since.
        let leading = leading || self.replica.leadership.is_leader();
        let state = State {
            identity: self.identity.clone(),
            leading,
            leader: if leading { Some(self.identity.clone()) } else { leader.map(str::to_owned) },
            leader_url: if leading { Some(self.replica.settings.url.clone()) } else { url.map(str::to_owned) },
            token_file: self.replica.settings.token_file.clone(),
        };
        let dir = &self.replica.settings.data_dir;
        if State::read(dir).as_ref() != Some(&state)
            && let Err(e) = std::fs::create_dir_all(dir).and_then(|()| state.write(dir))
        {
            tracing::warn!(error = %e, "cannot write the replica state for query");
        }
    }

    /// Says in the Lease where this replica, the leader, serves its store.
    async fn advertise(&self) -> kube::Result<()> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let value = format!("{} {}", self.identity, self.replica.settings.url);
        let patch = json!({"metadata": {"annotations": {ANNOTATION: value}}});
        leases.patch(&self.lease, &PatchParams::default(), &Patch::Merge(&patch)).await.map(|_| ())
    }

    /// Nobody to copy from: ready, and free to join the election.
    fn alone(&self, holder: Option<&str>, caught_up: &mut bool) {
        self.write_state(holder.filter(|h| *h != self.identity), None, false);
        if !*caught_up {
            tracing::info!(
                holder,
                "no live leader to copy the store from; joining the election with this replica's own"
            );
            *caught_up = true;
        }
        self.diagnostics.record_replication(None);
        self.gate.open();
    }

    /// Who holds the Lease, whether it still holds, and where it serves its store.
    async fn holder(&self) -> kube::Result<Option<Holder>> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.namespace);
        let Some(lease) = leases.get_opt(&self.lease).await? else { return Ok(None) };
        let spec = lease.spec.unwrap_or_default();
        let Some(identity) = spec.holder_identity.filter(|h| !h.is_empty()) else { return Ok(None) };
        let live = live(spec.renew_time.map(|t| t.0), spec.lease_duration_seconds, Timestamp::now());
        let url = lease
            .metadata
            .annotations
            .and_then(|mut a| a.remove(ANNOTATION))
            .and_then(|value| value.split_once(' ').map(|(who, url)| (who.to_owned(), url.to_owned())))
            .and_then(|(who, url)| (who == identity).then_some(url));
        Ok(Some(Holder { identity, url, live }))
    }

    /// Fetches the leader's store unless `held` is still its fingerprint, and makes this
    /// replica's store a copy of it; returns the new fingerprint, or None when nothing changed.
    async fn pull(&self, http: &reqwest::Client, url: &str, held: Option<&str>) -> Result<Option<String>, PullError> {
        let settings = &self.replica.settings;
        let mut request = http
            .get(format!("{url}/replica/snapshot"))
            .header(reqwest::header::AUTHORIZATION, settings.token.header())
            .timeout(Duration::from_secs(300));
        if let Some(held) = held {
            request = request.header(reqwest::header::IF_NONE_MATCH, held);
        }
        let mut response = request.send().await?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(PullError::Refused(status.as_u16(), text.trim().to_owned()));
        }
        let fingerprint =
            response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let incoming = settings.data_dir.join("replica-in.db");
        let _ = std::fs::remove_file(&incoming);
        {
            use std::io::Write;
            // Local writes of a chunk at a time: short enough to do on the runtime's thread.
            let mut file = std::fs::File::create(&incoming)?;
            while let Some(chunk) = response.chunk().await? {
                file.write_all(&chunk)?;
            }
            file.sync_all()?;
        }
        let (dir, limits) = (settings.data_dir.clone(), self.replica.limits);
        let applied = tokio::task::spawn_blocking(move || {
            let result = kube9_store::Store::open(&dir, limits).and_then(|mut store| store.replace_with(&incoming));
            let _ = std::fs::remove_file(&incoming);
            result
        })
        .await
        .map_err(|e| PullError::Io(std::io::Error::other(e)))?;
        applied?;
        Ok(Some(fingerprint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_holds_for_its_duration_after_its_renewal() {
        let renewed: Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let at = |s: &str| -> Timestamp { s.parse().unwrap() };
        assert!(live(Some(renewed), Some(12), at("2026-12-07T10:00:11.9Z")));
        assert!(!live(Some(renewed), Some(12), at("2026-12-07T10:00:12Z")));
        assert!(!live(None, Some(12), at("2026-12-07T10:00:01Z")), "never renewed: nobody holds it");
        assert!(!live(Some(renewed), None, at("2026-12-07T10:00:01Z")));
    }
}
