//! Live updates: a watch of the OperatorStatus and the Assessments per cluster bumps a counter
//! on every change; each open page follows it as server-sent events and reloads its content.

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube9_api::assessment::Assessment;
use kube9_api::operator_status::OperatorStatus;
use tokio::sync::watch;

/// Starts the watches of one cluster; the receiver changes whenever either kind does.
pub fn follow(client: kube::Client) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    let statuses = watcher(Api::<OperatorStatus>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(|e| e.map(drop))
        .boxed();
    let runs = watcher(Api::<Assessment>::all(client), watcher::Config::default())
        .default_backoff()
        .map(|e| e.map(drop))
        .boxed();
    tokio::spawn(async move {
        let mut both = futures::stream::select(statuses, runs);
        while let Some(event) = both.next().await {
            match event {
                // Every event (a change, or a restart's list) may change what a page shows.
                Ok(()) => {
                    tx.send_modify(|n| *n += 1);
                }
                // A refused or broken watch is retried with backoff; the page still loads.
                Err(e) => tracing::debug!(error = %e, "a live-update watch failed"),
            }
            if tx.is_closed() && tx.receiver_count() == 0 {
                break;
            }
        }
    });
    rx
}
