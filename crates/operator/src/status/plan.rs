//! What the OperatorStatus and the legacy ConfigMap should say, and whether either must be
//! written now, decided from plain values: the reconciler reads, calls [`plan`], and writes
//! what it returns. Pure.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube9_api::ai_conformance::AiConformanceSummary;
use kube9_api::argocd::ArgoCdStatus;
use kube9_api::assessment::ScheduledSummary;
use kube9_api::legacy::LegacyStatus;
use kube9_api::operator_status::{CollectionStats, OperatorStatus, OperatorStatusStatus};

use super::tier::{self, Standing};
use super::{conditions, configmap};
use crate::base::config::Config;
use crate::base::time::refresh_in;
use crate::pro::report::Report;
use crate::registration::state::{Registration, ServerSettings};

/// Everything the decision reads: the two reports as written, what the rest of the operator
/// observed, the configuration, who leads and the time.
pub struct Inputs<'a> {
    /// The singleton as it is now (its status is what was written last).
    pub object: &'a OperatorStatus,
    /// The legacy ConfigMap as it is now.
    pub configmap: Option<&'a ConfigMap>,
    pub observed: &'a Observed,
    pub settings: &'a Settings,
    /// The replica that leads (this one, when it writes).
    pub leader: Option<&'a str>,
    pub now: Timestamp,
}

/// What the other parts of the operator report, as they stand when the reconcile looks.
#[derive(Clone, Debug)]
pub struct Observed {
    pub registration: Registration,
    /// Why the latest write failed, if it did.
    pub write_failure: Option<String>,
    /// Why the embedded store cannot be used, if it cannot.
    pub store_failure: Option<String>,
    /// The pro tier's report; None until it has one (the status then keeps what it holds).
    pub pro: Option<Report>,
    pub assessment: Option<ScheduledSummary>,
    pub collection: Option<CollectionStats>,
    /// The AI Conformance self-check; None until the task has one (the status keeps its own).
    pub ai_conformance: Option<AiConformanceSummary>,
    /// Argo CD as detected; None before detection has run once.
    pub argocd: Option<ArgoCdStatus>,
}

/// What the configuration says about the reports.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The operator's namespace: where the ConfigMap lives, and what the status names.
    pub namespace: String,
    /// The configured refresh interval.
    pub status_interval: Duration,
    /// Whether the operator has an embedded store (a data directory).
    pub store_configured: bool,
    pub api_key_configured: bool,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            namespace: config.namespace.clone(),
            status_interval: config.status_interval,
            store_configured: config.store.is_some(),
            api_key_configured: config.api_key.is_some(),
        }
    }
}

/// What to do.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub standing: Standing,
    /// The status to write now; None while the written one is current.
    pub status: Option<OperatorStatusStatus>,
    /// The ConfigMap's JSON to write now; None while the written one is current.
    pub configmap: Option<LegacyStatus>,
    /// When to look again, once what is planned has been written.
    pub requeue: Duration,
}

/// Decides both reports: each is written when its content changed, when it is as old as the
/// refresh interval, or (the ConfigMap) when it was hand-edited or lost its labels.
pub fn plan(inputs: &Inputs<'_>) -> Plan {
    let (observed, settings) = (inputs.observed, inputs.settings);
    let existing = inputs.object.status.clone().unwrap_or_default();
    let from_status;
    let pro = match &observed.pro {
        Some(pro) => pro,
        None => {
            from_status = Report::from_status(&existing);
            &from_status
        }
    };
    let store_failure = observed.store_failure.as_deref();
    let standing = tier::with_store_failure(
        tier::with_pro_failure(
            tier::decide(&observed.registration, observed.write_failure.as_deref()),
            pro.failure.as_deref(),
        ),
        store_failure,
    );
    let now = inputs.now;
    let interval = interval(settings.status_interval, &observed.registration);
    let generation = inputs.object.metadata.generation;

    let store = match (settings.store_configured, store_failure) {
        (false, _) => conditions::StoreState::NotConfigured,
        (true, None) => conditions::StoreState::Available,
        (true, Some(why)) => conditions::StoreState::Failing(why),
    };
    let conditions =
        conditions::conditions(&existing.conditions, &standing, &observed.registration, store, generation, now);
    let ai_conformance = observed.ai_conformance.as_ref().or(existing.ai_conformance.as_ref());
    let reports = Reports {
        assessment: observed.assessment.as_ref(),
        collection: observed.collection.as_ref(),
        pro,
        ai_conformance,
        argocd: observed.argocd.as_ref(),
    };
    let desired = OperatorStatusStatus {
        leader: inputs.leader.map(str::to_owned),
        ..render(&standing, &reports, &settings.namespace, generation, conditions, now)
    };
    let status_left =
        refresh_in(same_content(&existing, &desired), existing.last_update.as_ref().map(|t| t.0), now, interval);

    let (have, shaped) = configmap::current(inputs.configmap);
    let cm_reports = configmap::Reports {
        assessment: reports.assessment,
        collection: reports.collection,
        api_key_configured: settings.api_key_configured,
        ai_conformance,
        argocd: reports.argocd,
    };
    let want = configmap::render(&standing, &cm_reports, &settings.namespace, now);
    let cm_left = match &have {
        Some(have) if shaped => {
            refresh_in(configmap::same_content(have, &want), configmap::last_update(have), now, interval)
        }
        _ => None,
    };
    Plan {
        standing,
        status: status_left.is_none().then_some(desired),
        configmap: cm_left.is_none().then_some(want),
        requeue: status_left.unwrap_or(interval).min(cm_left.unwrap_or(interval)),
    }
}

/// The refresh interval: the server's when registered and it set one (never longer than the
/// configured one), else the configured.
pub fn interval(configured: Duration, registration: &Registration) -> Duration {
    match registration {
        Registration::Registered { settings: ServerSettings { status_update_interval: Some(i), .. }, .. } => {
            (*i).clamp(Duration::from_secs(1), configured.max(Duration::from_secs(1)))
        }
        _ => configured,
    }
}

/// What the other parts of the operator report, beside the standing.
pub struct Reports<'a> {
    pub assessment: Option<&'a ScheduledSummary>,
    pub collection: Option<&'a CollectionStats>,
    pub pro: &'a Report,
    pub ai_conformance: Option<&'a AiConformanceSummary>,
    pub argocd: Option<&'a ArgoCdStatus>,
}

/// The status to write for this standing.
pub fn render(
    standing: &Standing,
    reports: &Reports<'_>,
    namespace: &str,
    generation: Option<i64>,
    conditions: Vec<Condition>,
    now: Timestamp,
) -> OperatorStatusStatus {
    OperatorStatusStatus {
        mode: Some(standing.mode),
        tier: Some(standing.tier),
        version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        health: Some(standing.health),
        registered: Some(standing.registered),
        cluster_id: standing.cluster_id.clone(),
        error: standing.error.clone(),
        last_update: Some(Time(now)),
        namespace: Some(namespace.to_owned()),
        leader: None,
        observed_generation: generation,
        assessment: reports.assessment.cloned(),
        ai_conformance: reports.ai_conformance.cloned(),
        collection_stats: reports.collection.cloned(),
        upload: reports.pro.upload.clone(),
        insights: reports.pro.insights.clone(),
        insights_omitted: reports.pro.insights_omitted,
        acknowledgements: reports.pro.acknowledgements.clone(),
        argocd: reports.argocd.cloned(),
        conditions,
    }
}

/// Whether two statuses say the same thing, apart from when they were written.
pub fn same_content(a: &OperatorStatusStatus, b: &OperatorStatusStatus) -> bool {
    let strip = |s: &OperatorStatusStatus| OperatorStatusStatus { last_update: None, ..s.clone() };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use kube9_api::operator_status::{Health, SINGLETON_NAME, Tier};

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Nothing reported yet, without a key.
    fn nothing() -> Observed {
        Observed {
            registration: Registration::NoKey,
            write_failure: None,
            store_failure: None,
            pro: None,
            assessment: None,
            collection: None,
            ai_conformance: None,
            argocd: None,
        }
    }

    static NOTHING: LazyLock<Observed> = LazyLock::new(nothing);
    static SETTINGS: LazyLock<Settings> = LazyLock::new(|| Settings {
        namespace: "kube9-system".into(),
        status_interval: MINUTE,
        store_configured: false,
        api_key_configured: false,
    });

    fn inputs<'a>(object: &'a OperatorStatus, cm: Option<&'a ConfigMap>, now: Timestamp) -> Inputs<'a> {
        Inputs {
            object,
            configmap: cm,
            observed: &NOTHING,
            settings: &SETTINGS,
            leader: Some("kube9-operator-abc"),
            now,
        }
    }

    /// The singleton and the ConfigMap as they are after `plan` was carried out at `at`.
    fn written(at: Timestamp) -> (OperatorStatus, ConfigMap) {
        let mut object = OperatorStatus::new(SINGLETON_NAME, Default::default());
        let first = plan(&inputs(&object, None, at));
        object.status = first.status;
        let cm = configmap::object(None, "kube9-system", &first.configmap.unwrap());
        (object, cm)
    }

    #[test]
    fn a_first_run_writes_both_reports_and_looks_again_after_the_interval() {
        let object = OperatorStatus::new(SINGLETON_NAME, Default::default());
        let plan = plan(&inputs(&object, None, t("2026-11-22T10:00:00Z")));
        let status = plan.status.expect("a status is written");
        assert_eq!((status.tier, status.health), (Some(Tier::Free), Some(Health::Healthy)));
        assert_eq!(status.namespace.as_deref(), Some("kube9-system"));
        assert!(plan.configmap.is_some());
        assert_eq!(plan.requeue, MINUTE);
    }

    #[test]
    fn current_reports_are_not_rewritten_until_they_are_due() {
        let (object, cm) = written(t("2026-11-22T10:00:00Z"));
        let quiet = plan(&inputs(&object, Some(&cm), t("2026-11-22T10:00:20Z")));
        assert_eq!((quiet.status.is_none(), quiet.configmap.is_none()), (true, true));
        assert_eq!(quiet.requeue, Duration::from_millis(39_500), "the rest of the interval, less half a second");
        let due = plan(&inputs(&object, Some(&cm), t("2026-11-22T10:01:00Z")));
        assert!(due.status.is_some() && due.configmap.is_some());
    }

    #[test]
    fn a_change_is_written_at_once() {
        let (object, cm) = written(t("2026-11-22T10:00:00Z"));
        let failing = Observed { registration: Registration::Failing { reason: "503".into() }, ..nothing() };
        let plan = plan(&Inputs { observed: &failing, ..inputs(&object, Some(&cm), t("2026-11-22T10:00:05Z")) });
        assert_eq!(plan.status.unwrap().health, Some(Health::Degraded));
        assert_eq!(plan.configmap.unwrap().health, Health::Degraded);
    }

    #[test]
    fn a_hand_edited_configmap_alone_is_rewritten() {
        let (object, mut cm) = written(t("2026-11-22T10:00:00Z"));
        cm.data.as_mut().unwrap().insert("extra".into(), "x".into());
        let plan = plan(&inputs(&object, Some(&cm), t("2026-11-22T10:00:05Z")));
        assert!(plan.status.is_none());
        assert!(plan.configmap.is_some());
        assert_eq!(plan.requeue, Duration::from_millis(54_500));
    }

    #[test]
    fn a_registered_operator_follows_the_servers_shorter_interval() {
        let registered = Registration::Registered {
            cluster_id: "cls_abcdefghijkl".into(),
            settings: ServerSettings { status_update_interval: Some(Duration::from_secs(30)), ..Default::default() },
            failure: None,
        };
        assert_eq!(interval(MINUTE, &registered), Duration::from_secs(30));
        let slow = Registration::Registered {
            cluster_id: "cls_abcdefghijkl".into(),
            settings: ServerSettings { status_update_interval: Some(Duration::from_secs(600)), ..Default::default() },
            failure: None,
        };
        assert_eq!(interval(MINUTE, &slow), MINUTE, "never slower than configured");
        assert_eq!(interval(MINUTE, &Registration::NoKey), MINUTE);
    }

    #[test]
    fn until_the_pro_task_reports_the_status_keeps_its_insights() {
        let mut object = OperatorStatus::new(SINGLETON_NAME, Default::default());
        object.status = Some(OperatorStatusStatus { insights_omitted: Some(7), ..Default::default() });
        let kept = plan(&inputs(&object, None, t("2026-11-22T10:00:00Z")));
        assert_eq!(kept.status.unwrap().insights_omitted, Some(7));
        let reported =
            Observed { pro: Some(Report { failure: Some("upload failed".into()), ..Report::default() }), ..nothing() };
        let replaced = plan(&Inputs { observed: &reported, ..inputs(&object, None, t("2026-11-22T10:00:00Z")) });
        assert_eq!(replaced.status.unwrap().insights_omitted, None);
    }

    #[test]
    fn a_write_failure_makes_the_operator_unhealthy() {
        let object = OperatorStatus::new(SINGLETON_NAME, Default::default());
        let failed = Observed { write_failure: Some("forbidden".into()), ..nothing() };
        let plan = plan(&Inputs { observed: &failed, ..inputs(&object, None, Timestamp::UNIX_EPOCH) });
        assert_eq!(plan.standing.health, Health::Unhealthy);
        assert!(plan.standing.error.unwrap().contains("forbidden"));
    }
}
