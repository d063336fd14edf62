//! Prometheus metrics. Labels are fixed words, and the names of Assessments (Kubernetes object
//! names); no other value a user or server supplies, and never the API key, becomes a label.

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
struct ScoreLabel {
    assessment: String,
    pillar: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingsLabel {
    assessment: String,
    pillar: &'static str,
    severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AssessmentLabel {
    assessment: String,
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
    assessment_score: Family<ScoreLabel, Gauge>,
        "Score (0 to 100) of each Assessment's latest completed run, per pillar and overall (pillar=\"overall\")";
    assessment_findings: Family<FindingsLabel, Gauge>,
        "Failed findings of each Assessment's latest completed run, by pillar and severity";
    assessment_last_run_timestamp_seconds: Family<AssessmentLabel, Gauge>,
        "When each Assessment's latest run ended (completed or failed), in seconds since the epoch";
    assessment_last_run_success: Family<AssessmentLabel, Gauge>,
        "1 when each Assessment's latest run completed, 0 when it failed";
    report_writes: Family<OutcomeLabel, Counter>,
        "Policy report writes (server-side applies), by outcome (ok, failed)";
    report_publications: Family<OutcomeLabel, Counter>,
        "Publications of a run's findings as policy reports, by outcome (ok, partial)";
    report_publication_seconds: Histogram = Histogram::new([0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
        "Time one publication of a run's findings as policy reports took";
    tier: Family<TierLabel, Gauge>,
        "1 for the current tier";
    health: Family<HealthLabel, Gauge>,
        "1 for the current health";
}

/// What a completed run gives the Assessment metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AssessmentFigures {
    /// ("overall" or a pillar, score).
    pub scores: Vec<(&'static str, u8)>,
    /// ((pillar, severity), failed findings).
    pub findings: Vec<((&'static str, &'static str), i64)>,
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

    /// The latest run of `assessment` ended at `at` (seconds since the epoch): completed with
    /// `scores` (overall, then per pillar) and failed findings per (pillar, severity), or failed
    /// (None: the scores and findings of its last completed run stay).
    pub fn assessment_ended(&self, assessment: &str, at: i64, completed: Option<AssessmentFigures>) {
        let label = AssessmentLabel { assessment: assessment.to_owned() };
        self.assessment_last_run_timestamp_seconds.get_or_create(&label).set(at);
        self.assessment_last_run_success.get_or_create(&label).set(i64::from(completed.is_some()));
        let Some(figures) = completed else { return };
        self.forget_figures(assessment);
        for (pillar, score) in figures.scores {
            let label = ScoreLabel { assessment: assessment.to_owned(), pillar };
            self.assessment_score.get_or_create(&label).set(i64::from(score));
        }
        for ((pillar, severity), n) in figures.findings {
            let label = FindingsLabel { assessment: assessment.to_owned(), pillar, severity };
            self.assessment_findings.get_or_create(&label).set(n);
        }
    }

    /// The Assessment is gone: its series go too.
    pub fn assessment_deleted(&self, assessment: &str) {
        let label = AssessmentLabel { assessment: assessment.to_owned() };
        self.assessment_last_run_timestamp_seconds.remove(&label);
        self.assessment_last_run_success.remove(&label);
        self.forget_figures(assessment);
    }

    fn forget_figures(&self, assessment: &str) {
        for pillar in std::iter::once("overall").chain(kube9_api::common::Pillar::ALL.iter().map(|p| p.as_str())) {
            self.assessment_score.remove(&ScoreLabel { assessment: assessment.to_owned(), pillar });
            for severity in kube9_api::common::Severity::ALL.iter().map(|s| s.as_str()) {
                self.assessment_findings.remove(&FindingsLabel { assessment: assessment.to_owned(), pillar, severity });
            }
        }
    }

    /// One policy report written (or refused).
    pub fn report_write(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.report_writes.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// A run's findings were published as policy reports, whole (or only partly).
    pub fn reports_published(&self, whole: bool, seconds: f64) {
        let outcome = if whole { "ok" } else { "partial" };
        self.report_publications.get_or_create(&OutcomeLabel { outcome }).inc();
        self.report_publication_seconds.observe(seconds);
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
    fn assessment_series_follow_the_latest_run_and_leave_with_the_assessment() {
        let m = Metrics::default();
        let figures = |score| AssessmentFigures {
            scores: vec![("overall", score), ("security", score)],
            findings: vec![(("security", "critical"), 2), (("reliability", "low"), 1)],
        };
        m.assessment_ended("nightly", 100, Some(figures(70)));
        let text = m.encode();
        for needle in [
            "kube9_assessment_score{assessment=\"nightly\",pillar=\"security\"} 70",
            "kube9_assessment_score{assessment=\"nightly\",pillar=\"overall\"} 70",
            "kube9_assessment_findings{assessment=\"nightly\",pillar=\"security\",severity=\"critical\"} 2",
            "kube9_assessment_last_run_timestamp_seconds{assessment=\"nightly\"} 100",
            "kube9_assessment_last_run_success{assessment=\"nightly\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        // A failed run keeps the scores of the last completed one.
        m.assessment_ended("nightly", 200, None);
        let text = m.encode();
        assert!(text.contains("kube9_assessment_last_run_success{assessment=\"nightly\"} 0"), "{text}");
        assert!(text.contains("kube9_assessment_score{assessment=\"nightly\",pillar=\"security\"} 70"), "{text}");
        // A completed run replaces them: a pillar no longer failing leaves.
        m.assessment_ended("nightly", 300, Some(AssessmentFigures { scores: vec![("overall", 90)], findings: vec![] }));
        let text = m.encode();
        assert!(!text.contains("pillar=\"security\""), "{text}");
        m.assessment_deleted("nightly");
        assert!(!m.encode().contains("nightly"));
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
        m.assessment_ended(
            "nightly",
            1_700_000_000,
            Some(AssessmentFigures {
                scores: vec![("overall", 80), ("security", 60)],
                findings: vec![(("security", "high"), 3)],
            }),
        );
        m.report_write(true);
        m.reports_published(true, 0.5);
        let text = m.encode();
        for name in NAMES {
            let help = format!("# HELP kube9_{name} ");
            assert_eq!(text.matches(&help).count(), 1, "{help} in\n{text}");
        }
        assert_eq!(text.matches("# HELP ").count(), NAMES.len());
    }
}
