//! The collections, decided from plain values: bounded retention per collector (when they are
//! held in memory), the counts behind `collectionStats`, and when each collector runs next.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube9_api::operator_status::CollectionStats;
use kube9_collect::Collector;
use serde_json::Value;

/// One collector's result, with real names; it never leaves the cluster as it is.
#[derive(Debug)]
pub struct Collection {
    pub collector: Collector,
    pub collected_at: Timestamp,
    pub data: Value,
    /// Every name, namespace and identifying label value the collector saw: what an upload
    /// built from this collection must not contain.
    pub words: HashSet<String>,
}

/// The collections held, and the counts behind `collectionStats`.
#[derive(Debug)]
pub struct Store {
    retention: usize,
    held: [VecDeque<Arc<Collection>>; 5],
    successes: u64,
    failures: u64,
    last_success: Option<Timestamp>,
    attempted: [bool; 5],
}

impl Store {
    pub fn new(retention: usize) -> Store {
        Store {
            retention: retention.max(1),
            held: Default::default(),
            successes: 0,
            failures: 0,
            last_success: None,
            attempted: [false; 5],
        }
    }

    /// Keeps a new collection, dropping the oldest of its collector beyond the retention.
    pub fn add(&mut self, collection: Collection) {
        self.counted(collection.collector, collection.collected_at);
        let held = &mut self.held[collection.collector.index()];
        held.push_front(Arc::new(collection));
        held.truncate(self.retention);
    }

    /// Counts a collection kept elsewhere (on disk), without holding it.
    pub fn counted(&mut self, collector: Collector, at: Timestamp) {
        self.successes += 1;
        self.attempted[collector.index()] = true;
        self.last_success = Some(self.last_success.map_or(at, |t| t.max(at)));
    }

    pub fn failed(&mut self, collector: Collector) {
        self.failures += 1;
        self.attempted[collector.index()] = true;
    }

    /// Whether every collector has run once (successfully or not): the first upload waits for
    /// that, so it describes the whole cluster.
    pub fn all_attempted(&self) -> bool {
        self.attempted.iter().all(|a| *a)
    }

    /// Whether every collector has run in this process or has a result kept from before.
    pub fn all_known(&self, kept: &[Collector]) -> bool {
        Collector::ALL.iter().all(|c| self.attempted[c.index()] || kept.contains(c))
    }

    pub fn stats(&self) -> CollectionStats {
        CollectionStats {
            total_success_count: self.successes,
            total_failure_count: self.failures,
            collections_stored_count: self.held.iter().map(|h| h.len() as u64).sum(),
            last_success_time: self.last_success.map(Time),
        }
    }

    /// The newest collection of each collector that has one.
    pub fn latest(&self) -> Vec<Arc<Collection>> {
        self.held.iter().filter_map(|h| h.front().cloned()).collect()
    }
}

/// The first wait: a random part of a tenth of the interval, at most a minute.
pub fn first_delay(interval: Duration, random: f64) -> Duration {
    (interval / 10).min(Duration::from_secs(60)).mul_f64(random.clamp(0.0, 1.0))
}

/// The wait between runs: the interval ±10 %.
pub fn next_delay(interval: Duration, random: f64) -> Duration {
    interval.mul_f64(0.9 + 0.2 * random.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection(collector: Collector, at: &str) -> Collection {
        Collection { collector, collected_at: at.parse().unwrap(), data: Value::Null, words: HashSet::new() }
    }

    #[test]
    fn retention_is_per_collector_and_stats_count_everything() {
        let mut store = Store::new(2);
        for minute in 0..5 {
            store.add(collection(Collector::ResourceInventory, &format!("2026-11-23T10:0{minute}:00Z")));
        }
        store.add(collection(Collector::ClusterMetadata, "2026-11-23T09:00:00Z"));
        store.failed(Collector::SecurityPosture);
        assert!(!store.all_attempted());
        for c in [Collector::ConfigurationPatterns, Collector::PerformanceMetrics] {
            store.failed(c);
        }
        assert!(store.all_attempted());
        let stats = store.stats();
        assert_eq!((stats.total_success_count, stats.total_failure_count, stats.collections_stored_count), (6, 3, 3));
        assert_eq!(stats.last_success_time, Some(Time("2026-11-23T10:04:00Z".parse().unwrap())));
        let latest = store.latest();
        assert_eq!(latest.len(), 2);
        assert_eq!(latest[1].collected_at, "2026-11-23T10:04:00Z".parse().unwrap(), "the newest is kept");
    }

    #[test]
    fn runs_are_spread_around_the_interval() {
        let hour = Duration::from_secs(3600);
        assert_eq!(first_delay(hour, 0.0), Duration::ZERO);
        assert_eq!(first_delay(hour, 1.0), Duration::from_secs(60), "at most a minute");
        assert_eq!(first_delay(Duration::from_secs(10), 0.5), Duration::from_millis(500));
        assert_eq!(next_delay(hour, 0.0), Duration::from_secs(3240));
        assert_eq!(next_delay(hour, 1.0), Duration::from_secs(3960));
        let names: HashSet<&str> = Collector::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), 5);
    }
}
