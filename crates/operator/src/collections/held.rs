//! Where the collectors' results are kept between uploads: in the store on disk when the
//! operator has a data directory (they outlive a restart, and memory does not grow with the
//! cluster between uploads), in memory otherwise. Shared by the collectors and the pro task,
//! with a channel that says when the counts changed.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube9_api::operator_status::CollectionStats;
use kube9_collect::Collector;
use kube9_store::{CollectionRow, Limits};
use tokio::sync::watch;

use super::store::{Collection, Store};

/// The collections, and a channel that says when their counts changed.
pub struct Collections {
    counts: Mutex<Store>,
    disk: Option<Mutex<kube9_store::Store>>,
    retention: usize,
    pub changed: watch::Sender<Option<CollectionStats>>,
}

impl Collections {
    /// Collections kept in memory.
    pub fn in_memory(retention: usize) -> Collections {
        Collections {
            counts: Mutex::new(Store::new(retention)),
            disk: None,
            retention,
            changed: watch::Sender::new(None),
        }
    }

    /// Collections kept in the store in `dir`; in memory (with an error logged) when it cannot
    /// be opened. What the store holds from before counts from the start.
    pub fn on_disk(retention: usize, dir: &Path, limits: Limits) -> Collections {
        let mut collections = Collections::in_memory(retention);
        match kube9_store::Store::open(dir, limits) {
            Ok(store) => {
                collections.disk = Some(Mutex::new(store));
                let stats = collections.stats();
                collections.changed.send_replace(stats.filter(|s| s.collections_stored_count > 0));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot keep collections in the store; keeping them in memory")
            }
        }
        collections
    }

    /// The newest collection of each collector, once every collector has run (in this
    /// process, or before it with its result kept on disk).
    pub fn latest(&self) -> Vec<Arc<Collection>> {
        let Ok(counts) = self.counts.lock() else { return Vec::new() };
        let Some(disk) = &self.disk else {
            return if counts.all_attempted() { counts.latest() } else { Vec::new() };
        };
        let rows = match disk
            .lock()
            .map_err(|_| "poisoned".to_owned())
            .and_then(|d| d.latest_collections().map_err(|e| e.to_string()))
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the collections from the store");
                return Vec::new();
            }
        };
        let kept: Vec<Arc<Collection>> = rows.into_iter().filter_map(collection).map(Arc::new).collect();
        let collectors: Vec<Collector> = kept.iter().map(|c| c.collector).collect();
        if counts.all_known(&collectors) { kept } else { Vec::new() }
    }

    /// Records a collector's run: the collection kept (on disk when there is a store; in memory
    /// when there is none or it refuses the write), or the failure counted.
    pub fn record(&self, collector: Collector, result: Result<Collection, String>) {
        let Ok(mut counts) = self.counts.lock() else { return };
        match result {
            Ok(collection) => match self.keep(&collection) {
                Ok(()) => counts.counted(collection.collector, collection.collected_at),
                // No --data-dir: memory is where collections are kept.
                Err(None) => counts.add(collection),
                Err(Some(e)) => {
                    tracing::warn!(error = %e, "cannot keep the collection in the store; keeping it in memory");
                    counts.add(collection);
                }
            },
            Err(_) => counts.failed(collector),
        }
        drop(counts);
        self.changed.send_replace(self.stats());
    }

    /// Writes the collection to the store: `Err(None)` when there is no store, `Err(Some(why))`
    /// when the store refused it.
    fn keep(&self, collection: &Collection) -> Result<(), Option<String>> {
        let Some(disk) = &self.disk else { return Err(None) };
        let row = CollectionRow {
            collector: collection.collector.name().to_owned(),
            collected_at_ms: collection.collected_at.as_millisecond(),
            data: collection.data.to_string(),
            words: serde_json::to_string(&collection.words).map_err(|e| Some(e.to_string()))?,
        };
        let mut disk = disk.lock().map_err(|_| Some("poisoned".to_owned()))?;
        disk.put_collection(&row, self.retention as u64).map_err(|e| Some(e.to_string()))
    }

    /// The counts behind `collectionStats`: runs in this process, and what is kept.
    fn stats(&self) -> Option<CollectionStats> {
        let counts = self.counts.lock().ok()?;
        let mut stats = counts.stats();
        if let Some(summary) = self.disk.as_ref().and_then(|d| d.lock().ok()?.collection_summary().ok()) {
            let (rows, newest) = summary;
            stats.collections_stored_count += rows;
            let newest = newest.and_then(|ms| Timestamp::from_millisecond(ms).ok()).map(Time);
            stats.last_success_time = stats.last_success_time.max(newest);
        }
        Some(stats)
    }
}

/// A stored row as a collection; None (logged) for a collector this binary does not know or a
/// row it cannot read.
fn collection(row: CollectionRow) -> Option<Collection> {
    let collector = Collector::ALL.into_iter().find(|c| c.name() == row.collector)?;
    let data = serde_json::from_str(&row.data).ok();
    let words: Option<HashSet<String>> = serde_json::from_str(&row.words).ok();
    let collected_at = Timestamp::from_millisecond(row.collected_at_ms).ok();
    match (data, words, collected_at) {
        (Some(data), Some(words), Some(collected_at)) => Some(Collection { collector, collected_at, data, words }),
        _ => {
            tracing::warn!(collector = row.collector, "a stored collection cannot be read; it is left out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection(collector: Collector, at: &str) -> Collection {
        Collection {
            collector,
            collected_at: at.parse().unwrap(),
            data: serde_json::json!({"kind": "Deployment", "name": "checkout"}),
            words: HashSet::from(["checkout".to_owned()]),
        }
    }

    #[test]
    fn collections_on_disk_outlive_a_restart_and_count_from_the_start() {
        let dir =
            std::env::temp_dir().join(format!("kube9-held-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let held = Collections::on_disk(2, &dir, Limits::default());
            assert!(held.disk.is_some());
            for (i, c) in Collector::ALL.into_iter().enumerate() {
                held.record(c, Ok(collection(c, &format!("2026-11-23T10:0{i}:00Z"))));
            }
            held.record(
                Collector::ResourceInventory,
                Ok(collection(Collector::ResourceInventory, "2026-11-23T11:00:00Z")),
            );
            held.record(
                Collector::ResourceInventory,
                Ok(collection(Collector::ResourceInventory, "2026-11-23T12:00:00Z")),
            );
            let stats = held.changed.borrow().clone().unwrap();
            assert_eq!((stats.total_success_count, stats.collections_stored_count), (7, 6), "two kept per collector");
            assert!(held.counts.lock().unwrap().latest().is_empty(), "nothing held in memory");
        }
        // The operator restarts: nothing has run yet, and the next upload can use what is kept.
        let held = Collections::on_disk(2, &dir, Limits::default());
        let stats = held.changed.borrow().clone().expect("counts from the start");
        assert_eq!((stats.total_success_count, stats.collections_stored_count), (0, 6));
        assert_eq!(stats.last_success_time, Some(Time("2026-11-23T12:00:00Z".parse().unwrap())));
        let latest = held.latest();
        assert_eq!(latest.len(), 5);
        let inventory = latest.iter().find(|c| c.collector == Collector::ResourceInventory).unwrap();
        assert_eq!(inventory.collected_at, "2026-11-23T12:00:00Z".parse::<Timestamp>().unwrap());
        assert!(inventory.words.contains("checkout"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn in_memory_the_first_upload_waits_for_every_collector() {
        let held = Collections::in_memory(4);
        held.record(Collector::ClusterMetadata, Ok(collection(Collector::ClusterMetadata, "2026-11-23T10:00:00Z")));
        assert!(held.latest().is_empty());
        for c in &Collector::ALL[1..] {
            held.record(*c, Err("failed".into()));
        }
        assert_eq!(held.latest().len(), 1);
    }
}
