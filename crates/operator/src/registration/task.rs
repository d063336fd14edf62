//! The long-running registration loop: attempt, fold the outcome into the state, publish it,
//! wait as the state machine says.

use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;

use super::client::ServerClient;
use super::identity;
use super::state::{self, Policy, Registration};
use crate::base::metrics::Metrics;

/// Runs forever (until the task is dropped), publishing every new state on `tx`.
pub async fn run(
    client: kube::Client,
    kube_config: kube::Config,
    server: ServerClient,
    policy: Policy,
    tx: watch::Sender<Registration>,
    metrics: Metrics,
) {
    let mut failures = 0;
    loop {
        let request = identity::gather(&client, &kube_config).await;
        let outcome = server.register(&request).await;
        metrics.registration(outcome.label());
        let prev = tx.borrow().clone();
        let next = state::step(&prev, failures, outcome, &policy, rand::random::<f64>(), Timestamp::now());
        match &next.state {
            Registration::Registered { cluster_id, failure: None, .. } => {
                tracing::info!(%cluster_id, next_in = ?next.wait, "registered with kube9-server")
            }
            Registration::Registered { failure: Some(why), .. } => {
                tracing::warn!(error = %why, "re-registration failed")
            }
            Registration::KeyRejected { reason } | Registration::Failing { reason } => {
                tracing::warn!(error = %reason, "registration failed")
            }
            Registration::NoKey | Registration::Pending => {}
        }
        failures = next.failures;
        let wait = next.wait;
        tx.send_replace(next.state);
        tokio::time::sleep(wait).await;
    }
}
