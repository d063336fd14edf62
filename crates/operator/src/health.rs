//! `/healthz`, `/readyz` and `/metrics`, and the readiness the status reconciler records.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::base::metrics::Metrics;

/// What the health endpoints report, kept by the status reconciler.
#[derive(Default)]
pub struct Diagnostics {
    inner: Mutex<DiagnosticsInner>,
}

#[derive(Default)]
struct DiagnosticsInner {
    published_at: Option<Instant>,
    write_failure: Option<String>,
    election_failure: Option<String>,
    replication_wait: Option<String>,
}

impl Diagnostics {
    /// Why the operator is not ready, or None when it is.
    pub fn not_ready_reason(&self) -> Option<String> {
        let inner = self.inner.lock().ok()?;
        if let Some(failure) = &inner.election_failure {
            return Some(failure.clone());
        }
        if let Some(failure) = &inner.write_failure {
            return Some(format!("status cannot be written: {failure}"));
        }
        if let Some(wait) = &inner.replication_wait {
            return Some(wait.clone());
        }
        inner.published_at.is_none().then(|| "status not published yet".to_owned())
    }

    /// Why the latest write failed, if it did.
    pub fn write_failure(&self) -> Option<String> {
        self.inner.lock().ok().and_then(|i| i.write_failure.clone())
    }

    /// Records whether the leader election can use its Lease: None when it can. A replica that
    /// cannot is not ready, leader or standby: with every replica so, nobody writes status.
    pub fn record_election(&self, failure: Option<String>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.election_failure = failure;
        }
    }

    /// Records whether this replica holds the leader's store yet: None once it does (or leads).
    /// A new replica is not ready before its first copy, so a rolling upgrade waits for it.
    pub fn record_replication(&self, wait: Option<String>) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.replication_wait = wait;
        }
    }

    /// Records a publish: None when it worked.
    pub fn record(&self, failure: Option<String>) {
        if let Ok(mut inner) = self.inner.lock() {
            if failure.is_none() {
                inner.published_at = Some(Instant::now());
            }
            inner.write_failure = failure;
        }
    }
}

/// What the endpoints read.
#[derive(Clone)]
pub struct Health {
    pub diagnostics: Arc<Diagnostics>,
    pub metrics: Metrics,
}

/// Binds the health address, so a taken port stops start-up at once.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "health and metrics server listening");
    }
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Ready once status has been published and the last write to the API server worked.
async fn readyz(State(health): State<Health>) -> (StatusCode, String) {
    match health.diagnostics.not_ready_reason() {
        None => (StatusCode::OK, "ready\n".into()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")),
    }
}

async fn metrics(State(health): State<Health>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        health.metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_one_successful_publish_and_no_failure_since() {
        let d = Diagnostics::default();
        assert_eq!(d.not_ready_reason().as_deref(), Some("status not published yet"));
        d.record(None);
        assert_eq!(d.not_ready_reason(), None);
        d.record(Some("forbidden".into()));
        assert!(d.not_ready_reason().unwrap().contains("forbidden"));
        d.record(None);
        assert_eq!(d.not_ready_reason(), None);
    }

    #[test]
    fn a_lease_that_cannot_be_used_makes_even_a_published_replica_unready() {
        let d = Diagnostics::default();
        d.record(None);
        d.record_election(Some("leader election cannot use the Lease ns/l: forbidden".into()));
        assert!(d.not_ready_reason().unwrap().contains("cannot use the Lease"));
        d.record_election(None);
        assert_eq!(d.not_ready_reason(), None);
    }

    #[test]
    fn a_replica_without_the_leaders_store_is_not_ready() {
        let d = Diagnostics::default();
        d.record(None);
        d.record_replication(Some("not caught up with the leader pod-a yet".into()));
        assert!(d.not_ready_reason().unwrap().contains("pod-a"));
        d.record_replication(None);
        assert_eq!(d.not_ready_reason(), None);
    }
}
