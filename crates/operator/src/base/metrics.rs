//! Prometheus metrics. Labels are fixed words; no value a user or server supplies, and never
//! the API key, becomes a label.

use std::sync::Arc;

use kube9_api::operator_status::{Health, Tier};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabel {
    target: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectionLabel {
    collector: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabel {
    tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabel {
    health: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: &'static str,
}

/// Declares every metric once: the field is the name (after the `kube9_` prefix; counters gain
/// `_total`), then the type, the buckets of a histogram, and the help text. The registration
/// order is the exposition's order.
macro_rules! metrics {
    ($($name:ident: $kind:ty $(= $init:expr)?, $help:literal;)*) => {
        /// Every metric the operator exports.
        #[derive(Clone)]
        pub struct Metrics {
            registry: Arc<Registry>,
            $($name: $kind,)*
        }

        impl Default for Metrics {
            fn default() -> Self {
                let mut registry = Registry::with_prefix("kube9");
                $(
                    let $name: $kind = metrics!(@init $($init)?);
                    registry.register(stringify!($name), $help, $name.clone());
                )*
                Metrics { registry: Arc::new(registry), $($name,)* }
            }
        }

        #[cfg(test)]
        const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
    (@init) => {
        Default::default()
    };
    (@init $init:expr) => {
        $init
    };
}

metrics! {
    assessment_runs: Family<OutcomeLabel, Counter>,
        "Assessment runs, by outcome (completed, failed)";
    assessment_duration_seconds: Histogram = Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]),
        "Time an Assessment run took, from start to its result written";
    collections: Family<CollectionLabel, Counter>,
        "Collector runs, by collector and result";
    uploads: Family<OutcomeLabel, Counter>,
        "Uploads to kube9-server, by outcome";
    payloads_refused: Counter,
        "Payloads the validator refused to send (a real name or a secret-like value)";
    acknowledgement_syncs: Family<OutcomeLabel, Counter>,
        "Acknowledgement deliveries to kube9-server, by outcome";
    store_writes: Family<OutcomeLabel, Counter>,
        "Store transactions, by outcome (ok, failed)";
    store_failures: Family<ErrorLabel, Counter>,
        "Times the store was found unusable, by error (store-unwritable, store-gone, store-corrupt, ...)";
    store_up: Gauge,
        "1 while the store can be written, 0 while it cannot";
    events_stored: Family<OutcomeLabel, Counter>,
        "Events handed to the store, by outcome (stored, dropped: the store was down or its queue full)";
    reconciles: Counter,
        "OperatorStatus reconciles";
    reconcile_errors: Family<ErrorLabel, Counter>,
        "Reconciles that failed, by error";
    reconcile_duration_seconds: Histogram = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
        "Time spent in one reconcile";
    registration_attempts: Family<OutcomeLabel, Counter>,
        "Registration attempts with kube9-server, by outcome";
    status_writes: Family<WriteLabel, Counter>,
        "Status writes, by target (operatorstatus, configmap) and result";
    leader: Gauge,
        "1 while this replica holds the leader Lease, 0 while it stands by";
    leader_acquired: Counter,
        "Times this replica acquired the leader Lease";
    leader_election_errors: Counter,
        "Failed reads, creations or renewals of the leader Lease";
    answers_too_large: Family<EndpointLabel, Counter>,
        "kube9-server answers cut because they passed the size cap, by endpoint";
    api_outages: Counter,
        "Times the API server could not be reached and then answered again";
    api_outage_seconds: Histogram = Histogram::new([1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0]),
        "How long the operator was cut off from the API server, per outage";
    assessments_queued: Gauge,
        "Assessment runs waiting for the one running before them";
    tier: Family<TierLabel, Gauge>,
        "1 for the current tier";
    health: Family<HealthLabel, Gauge>,
        "1 for the current health";
}

impl Metrics {
    pub fn reconciled(&self, seconds: f64) {
        self.reconciles.inc();
        self.reconcile_duration_seconds.observe(seconds);
    }

    pub fn reconcile_failed(&self, error: &'static str) {
        self.reconcile_errors.get_or_create(&ErrorLabel { error }).inc();
    }

    pub fn registration(&self, outcome: &'static str) {
        self.registration_attempts.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn status_write(&self, target: &'static str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.status_writes.get_or_create(&WriteLabel { target, result }).inc();
    }

    pub fn collection(&self, collector: &'static str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.collections.get_or_create(&CollectionLabel { collector, result }).inc();
    }

    pub fn upload(&self, outcome: &'static str) {
        self.uploads.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn payload_refused(&self) {
        self.payloads_refused.inc();
    }

    pub fn acknowledgement_sync(&self, outcome: &'static str) {
        self.acknowledgement_syncs.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn assessment_run(&self, outcome: &'static str, seconds: f64) {
        self.assessment_runs.get_or_create(&OutcomeLabel { outcome }).inc();
        self.assessment_duration_seconds.observe(seconds);
    }

    /// One store transaction and how many rows it held; a failure with its code.
    pub fn store_write(&self, rows: u64, failure: Option<&'static str>) {
        let outcome = if failure.is_some() { "failed" } else { "ok" };
        self.store_writes.get_or_create(&OutcomeLabel { outcome }).inc();
        let stored = if failure.is_some() { "dropped" } else { "stored" };
        self.events_stored.get_or_create(&OutcomeLabel { outcome: stored }).inc_by(rows);
    }

    /// Rows that never reached the store (it was down, or its queue was full).
    pub fn store_dropped(&self, rows: u64) {
        self.events_stored.get_or_create(&OutcomeLabel { outcome: "dropped" }).inc_by(rows);
    }

    /// The store was found unusable (`code`), or usable again (None).
    pub fn store_health(&self, failure: Option<&'static str>) {
        if let Some(error) = failure {
            self.store_failures.get_or_create(&ErrorLabel { error }).inc();
        }
        self.store_up.set(i64::from(failure.is_none()));
    }

    /// Sets the tier and health gauges: 1 for the current value, 0 for the others.
    pub fn standing(&self, tier: Tier, health: Health) {
        for (t, name) in [(Tier::Free, "free"), (Tier::Pro, "pro")] {
            self.tier.get_or_create(&TierLabel { tier: name }).set(i64::from(t == tier));
        }
        for (h, name) in
            [(Health::Healthy, "healthy"), (Health::Degraded, "degraded"), (Health::Unhealthy, "unhealthy")]
        {
            self.health.get_or_create(&HealthLabel { health: name }).set(i64::from(h == health));
        }
    }

    /// This replica leads (true) or stands by (false).
    pub fn leading(&self, leading: bool) {
        if leading && self.leader.get() == 0 {
            self.leader_acquired.inc();
        }
        self.leader.set(i64::from(leading));
    }

    /// A read, creation or renewal of the leader Lease failed.
    pub fn leader_election_error(&self) {
        self.leader_election_errors.inc();
    }

    /// An answer from kube9-server cut at the cap (`endpoint`: register, metrics, acknowledge).
    pub fn answer_too_large(&self, endpoint: &'static str) {
        self.answers_too_large.get_or_create(&EndpointLabel { endpoint }).inc();
    }

    /// The API server answered again after `seconds` without an answer.
    pub fn api_outage(&self, seconds: f64) {
        self.api_outages.inc();
        self.api_outage_seconds.observe(seconds);
    }

    /// A run joined (+1) or left (-1) the Assessment queue.
    pub fn assessment_queue(&self, change: i64) {
        self.assessments_queued.inc_by(change);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric() {
        let m = Metrics::default();
        m.reconciled(0.01);
        m.registration("registered");
        m.status_write("configmap", true);
        m.standing(Tier::Pro, Health::Degraded);
        m.collection("resourceInventory", true);
        m.upload("ok");
        m.payload_refused();
        m.acknowledgement_sync("synced");
        m.assessment_run("failed", 0.3);
        let text = m.encode();
        for needle in [
            "kube9_reconciles_total 1",
            "kube9_registration_attempts_total{outcome=\"registered\"} 1",
            "kube9_status_writes_total{target=\"configmap\",result=\"ok\"} 1",
            "kube9_tier{tier=\"pro\"} 1",
            "kube9_tier{tier=\"free\"} 0",
            "kube9_health{health=\"degraded\"} 1",
            "kube9_reconcile_duration_seconds_count 1",
            "kube9_collections_total{collector=\"resourceInventory\",result=\"ok\"} 1",
            "kube9_uploads_total{outcome=\"ok\"} 1",
            "kube9_payloads_refused_total 1",
            "kube9_acknowledgement_syncs_total{outcome=\"synced\"} 1",
            "kube9_assessment_runs_total{outcome=\"failed\"} 1",
            "kube9_assessment_duration_seconds_count 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn every_declared_metric_is_exported_once_with_its_help() {
        // A family shows only once it has a member: touch every one.
        let m = Metrics::default();
        m.reconciled(0.01);
        m.reconcile_failed("timeout");
        m.registration("registered");
        m.status_write("configmap", false);
        m.collection("resourceInventory", false);
        m.upload("ok");
        m.payload_refused();
        m.acknowledgement_sync("synced");
        m.assessment_run("completed", 1.0);
        m.store_write(3, Some("store-gone"));
        m.store_dropped(1);
        m.store_health(Some("store-gone"));
        m.standing(Tier::Free, Health::Healthy);
        m.leading(true);
        m.leader_election_error();
        m.answer_too_large("register");
        m.api_outage(2.0);
        m.assessment_queue(1);
        let text = m.encode();
        for name in NAMES {
            let help = format!("# HELP kube9_{name} ");
            assert_eq!(text.matches(&help).count(), 1, "{help} in\n{text}");
        }
        assert_eq!(text.matches("# HELP ").count(), NAMES.len());
    }
}
