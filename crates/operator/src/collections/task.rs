//! The five collectors (docs/pro-tier.md): each on its own interval with jitter, one listing
//! the cluster at a time (so their peaks never add up), results kept in the store. Nothing here
//! sends anything anywhere; the pro tier's upload reads the newest collection of each
//! collector.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube9_collect::Collector;
use kube9_privacy::names::note_words;
use serde_json::Value;

use super::held::Collections;
use super::store::{Collection, first_delay, next_delay};
use crate::base::list::{self, ListError};
use crate::base::memory;
use crate::base::metrics::Metrics;
use crate::gather;

/// What a run needs.
pub struct Settings {
    pub intervals: [Duration; 5],
    pub max_objects: usize,
}

/// Runs every collector on its schedule until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    collections: Arc<Collections>,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let listing = tokio::sync::Mutex::new(());
    let loops = Collector::ALL.map(|collector| {
        let (client, collections, metrics, listing) = (&client, &collections, &metrics, &listing);
        let interval = settings.intervals[collector.index()];
        let max_objects = settings.max_objects;
        async move {
            tokio::time::sleep(first_delay(interval, rand::random())).await;
            loop {
                let result = {
                    let _turn = listing.lock().await;
                    let result = collect(client, collector, max_objects).await;
                    memory::release();
                    result
                };
                metrics.collection(collector.name(), result.is_ok());
                match &result {
                    Ok(c) => tracing::debug!(collector = collector.name(), words = c.words.len(), "collected"),
                    Err(e) => tracing::warn!(collector = collector.name(), error = %e, "collection failed"),
                }
                collections.record(collector, result);
                tokio::time::sleep(next_delay(interval, rand::random())).await;
            }
        }
    });
    tokio::select! {
        _ = futures::future::join_all(loops) => {}
        _ = shutdown => {}
    }
}

/// One run of one collector.
async fn collect(client: &kube::Client, collector: Collector, max_objects: usize) -> Result<Collection, String> {
    let (data, words) = match collector {
        Collector::PerformanceMetrics => performance(client).await?,
        _ => {
            let purpose = match collector {
                Collector::ResourceInventory => gather::Purpose::Count,
                _ => gather::Purpose::Collect,
            };
            let gathered = gather::gather(client, collector.kinds_needed(), max_objects, purpose)
                .await
                .map_err(|e| format!("listing objects: {e}"))?;
            let snapshot = &gathered.snapshot;
            let data = match collector {
                Collector::ClusterMetadata => {
                    let version = client.apiserver_version().await.map(|v| v.git_version).unwrap_or_default();
                    kube9_collect::cluster_metadata(&version, snapshot)
                }
                Collector::ResourceInventory => {
                    kube9_collect::resource_inventory(&gathered.counts, &snapshot.unavailable)
                }
                Collector::ConfigurationPatterns => kube9_collect::configuration_patterns(snapshot),
                _ => kube9_collect::security_posture(snapshot),
            };
            (data, gathered.words.unwrap_or_default())
        }
    };
    Ok(Collection { collector, collected_at: Timestamp::now(), data, words })
}

/// Pod metrics from `metrics.k8s.io`, or a record that the cluster does not serve them.
async fn performance(client: &kube::Client) -> Result<(Value, HashSet<String>), String> {
    let mut words = HashSet::new();
    let mut pods = Vec::new();
    let listed = list::each_item(client, "/apis/metrics.k8s.io/v1beta1/pods", |item| {
        note_words(&item, &mut words);
        pods.push(item);
        Ok::<(), std::convert::Infallible>(())
    })
    .await;
    let unavailable = |why: &'static str| Ok((kube9_collect::performance_unavailable(why), HashSet::new()));
    match listed {
        Ok(()) => Ok((kube9_collect::performance_metrics(&pods), words)),
        Err(ListError::Kube(e)) => match list::status_code(&e) {
            Some(404) => unavailable("metrics.k8s.io is not served"),
            Some(403) => unavailable("reading metrics.k8s.io is not permitted"),
            Some(503) => unavailable("metrics.k8s.io is not answering"),
            _ => Err(format!("listing pod metrics: {e}")),
        },
        Err(ListError::Stopped(never)) => match never {},
    }
}
