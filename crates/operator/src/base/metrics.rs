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

/// Every metric the operator exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Counter,
    reconcile_errors: Family<ErrorLabel, Counter>,
    reconcile_duration: Histogram,
    registrations: Family<OutcomeLabel, Counter>,
    status_writes: Family<WriteLabel, Counter>,
    tier: Family<TierLabel, Gauge>,
    health: Family<HealthLabel, Gauge>,
    collections: Family<CollectionLabel, Counter>,
    uploads: Family<OutcomeLabel, Counter>,
    payloads_refused: Counter,
    acknowledgement_syncs: Family<OutcomeLabel, Counter>,
    assessment_runs: Family<OutcomeLabel, Counter>,
    assessment_duration: Histogram,
    store_writes: Family<OutcomeLabel, Counter>,
    store_failures: Family<ErrorLabel, Counter>,
    store_up: Gauge,
    events_stored: Family<OutcomeLabel, Counter>,
    leader: Gauge,
    leader_acquired: Counter,
    leader_election_errors: Counter,
    answers_too_large: Family<EndpointLabel, Counter>,
    api_outages: Counter,
    api_outage_seconds: Histogram,
    assessments_queued: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kube9");
        let reconciles = Counter::default();
        let reconcile_errors = Family::<ErrorLabel, Counter>::default();
        let reconcile_duration = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]);
        let registrations = Family::<OutcomeLabel, Counter>::default();
        let status_writes = Family::<WriteLabel, Counter>::default();
        let tier = Family::<TierLabel, Gauge>::default();
        let health = Family::<HealthLabel, Gauge>::default();
        let collections = Family::<CollectionLabel, Counter>::default();
        let uploads = Family::<OutcomeLabel, Counter>::default();
        let payloads_refused = Counter::default();
        let acknowledgement_syncs = Family::<OutcomeLabel, Counter>::default();
        let assessment_runs = Family::<OutcomeLabel, Counter>::default();
        let assessment_duration = Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]);
        registry.register(
            "assessment_runs",
            "Assessment runs, by outcome (completed, failed)",
            assessment_runs.clone(),
        );
        registry.register(
            "assessment_duration_seconds",
            "Time an Assessment run took, from start to its result written",
            assessment_duration.clone(),
        );
        registry.register("collections", "Collector runs, by collector and result", collections.clone());
        registry.register("uploads", "Uploads to kube9-server, by outcome", uploads.clone());
        registry.register(
            "payloads_refused",
            "Payloads the validator refused to send (a real name or a secret-like value)",
            payloads_refused.clone(),
        );
        registry.register(
            "acknowledgement_syncs",
            "Acknowledgement deliveries to kube9-server, by outcome",
            acknowledgement_syncs.clone(),
        );
        let store_writes = Family::<OutcomeLabel, Counter>::default();
        let store_failures = Family::<ErrorLabel, Counter>::default();
        let store_up = Gauge::default();
        let events_stored = Family::<OutcomeLabel, Counter>::default();
        registry.register("store_writes", "Store transactions, by outcome (ok, failed)", store_writes.clone());
        registry.register(
            "store_failures",
            "Times the store was found unusable, by error (store-unwritable, store-gone, store-corrupt, ...)",
            store_failures.clone(),
        );
        registry.register("store_up", "1 while the store can be written, 0 while it cannot", store_up.clone());
        registry.register(
            "events_stored",
            "Events handed to the store, by outcome (stored, dropped: the store was down or its queue full)",
            events_stored.clone(),
        );
        registry.register("reconciles", "OperatorStatus reconciles", reconciles.clone());
        registry.register("reconcile_errors", "Reconciles that failed, by error", reconcile_errors.clone());
        registry.register("reconcile_duration_seconds", "Time spent in one reconcile", reconcile_duration.clone());
        registry.register(
            "registration_attempts",
            "Registration attempts with kube9-server, by outcome",
            registrations.clone(),
        );
        registry.register(
            "status_writes",
            "Status writes, by target (operatorstatus, configmap) and result",
            status_writes.clone(),
        );
        let leader = Gauge::default();
        let leader_acquired = Counter::default();
        let leader_election_errors = Counter::default();
        let answers_too_large = Family::<EndpointLabel, Counter>::default();
        let api_outages = Counter::default();
        let api_outage_seconds = Histogram::new([1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0]);
        let assessments_queued = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease, 0 while it stands by",
            leader.clone(),
        );
        registry.register("leader_acquired", "Times this replica acquired the leader Lease", leader_acquired.clone());
        registry.register(
            "leader_election_errors",
            "Failed reads, creations or renewals of the leader Lease",
            leader_election_errors.clone(),
        );
        registry.register(
            "answers_too_large",
            "kube9-server answers cut because they passed the size cap, by endpoint",
            answers_too_large.clone(),
        );
        registry.register(
            "api_outages",
            "Times the API server could not be reached and then answered again",
            api_outages.clone(),
        );
        registry.register(
            "api_outage_seconds",
            "How long the operator was cut off from the API server, per outage",
            api_outage_seconds.clone(),
        );
        registry.register(
            "assessments_queued",
            "Assessment runs waiting for the one running before them",
            assessments_queued.clone(),
        );
        registry.register("tier", "1 for the current tier", tier.clone());
        registry.register("health", "1 for the current health", health.clone());
        Metrics {
            registry: Arc::new(registry),
            reconciles,
            reconcile_errors,
            reconcile_duration,
            registrations,
            status_writes,
            tier,
            health,
            collections,
            uploads,
            payloads_refused,
            acknowledgement_syncs,
            assessment_runs,
            assessment_duration,
            store_writes,
            store_failures,
            store_up,
            events_stored,
            leader,
            leader_acquired,
            leader_election_errors,
            answers_too_large,
            api_outages,
            api_outage_seconds,
            assessments_queued,
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, seconds: f64) {
        self.reconciles.inc();
        self.reconcile_duration.observe(seconds);
    }

    pub fn reconcile_failed(&self, error: &'static str) {
        self.reconcile_errors.get_or_create(&ErrorLabel { error }).inc();
    }

    pub fn registration(&self, outcome: &'static str) {
        self.registrations.get_or_create(&OutcomeLabel { outcome }).inc();
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
        self.assessment_duration.observe(seconds);
    }

    /// Sets the tier and health gauges: 1 for the current value, 0 for the others.
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
}
