//! The legacy `kube9-operator-status` ConfigMap: rendered from the same standing as the
//! OperatorStatus, as one object the reconciler writes in one request, so readers never see
//! half an update. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use kube9_api::ai_conformance::{AiConformanceSummary, LegacyAiConformance};
use kube9_api::argocd::{ArgoCdStatus, LegacyArgoCd};
use kube9_api::assessment::ScheduledSummary;
use kube9_api::legacy::{
    CONFIGMAP_KEY, CONFIGMAP_NAME, CONFIGMAP_NAMESPACE_KEY, LegacyAssessment, LegacyCollectionStats, LegacyStatus,
};
use kube9_api::operator_status::CollectionStats;

use super::tier::Standing;
use crate::base::time::rfc3339;

/// What the ConfigMap reports besides the standing.
pub struct Reports<'a> {
    pub assessment: Option<&'a ScheduledSummary>,
    pub collection: Option<&'a CollectionStats>,
    pub api_key_configured: bool,
    /// The AI Conformance self-check; the block is absent without one.
    pub ai_conformance: Option<&'a AiConformanceSummary>,
    /// Argo CD as detected; None before detection has run once.
    pub argocd: Option<&'a ArgoCdStatus>,
}

/// The JSON for this standing.
pub fn render(standing: &Standing, reports: &Reports<'_>, namespace: &str, now: Timestamp) -> LegacyStatus {
    LegacyStatus {
        mode: standing.mode,
        tier: standing.tier,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        health: standing.health,
        last_update: rfc3339(now),
        registered: standing.registered,
        api_key_configured: reports.api_key_configured,
        error: standing.error.clone(),
        cluster_id: standing.cluster_id.clone(),
        namespace: namespace.to_owned(),
        collection_stats: LegacyCollectionStats::new(reports.collection, |t| rfc3339(*t)),
        assessment: LegacyAssessment::from(reports.assessment),
        ai_conformance: reports.ai_conformance.map(LegacyAiConformance::from),
        argocd: reports.argocd.map(LegacyArgoCd::from),
    }
}

/// What the ConfigMap holds now: the parsed JSON (None if absent or unreadable) and whether
/// the rest of it (labels, the `namespace` key, no other key) is as the contract says.
pub fn current(cm: Option<&ConfigMap>) -> (Option<LegacyStatus>, bool) {
    let Some(cm) = cm else { return (None, false) };
    let parsed = cm.data.as_ref().and_then(|d| d.get(CONFIGMAP_KEY)).and_then(|json| serde_json::from_str(json).ok());
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    let labelled = labels_wanted().iter().all(|(k, v)| labels.get(k) == Some(v));
    // Any other key was added by hand: rewrite to the contract.
    let keys: Vec<&str> = cm.data.iter().flat_map(|d| d.keys()).map(String::as_str).collect();
    let namespace = cm.data.as_ref().and_then(|d| d.get(CONFIGMAP_NAMESPACE_KEY));
    let shaped = keys == [CONFIGMAP_NAMESPACE_KEY, CONFIGMAP_KEY]
        && namespace == parsed.as_ref().map(|p: &LegacyStatus| &p.namespace)
        && cm.binary_data.as_ref().is_none_or(|b| b.is_empty());
    (parsed, labelled && shaped)
}

/// Whether two reports say the same thing, apart from when they were written.
pub fn same_content(a: &LegacyStatus, b: &LegacyStatus) -> bool {
    LegacyStatus { last_update: String::new(), ..a.clone() } == LegacyStatus { last_update: String::new(), ..b.clone() }
}

/// When this report was written.
pub fn last_update(status: &LegacyStatus) -> Option<Timestamp> {
    status.last_update.parse().ok()
}

fn labels_wanted() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "kube9-operator".to_owned()),
        ("app.kubernetes.io/component".to_owned(), "status".to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "kube9-operator".to_owned()),
    ])
}

/// The whole ConfigMap to write for `status`: the existing object with its data replaced (so
/// keys added by hand go away; labels and annotations others added are kept), or a new one.
pub fn object(existing: Option<&ConfigMap>, namespace: &str, status: &LegacyStatus) -> ConfigMap {
    // A struct of strings, booleans and enums always serializes.
    let json = serde_json::to_string(status).unwrap_or_default();
    let data = Some(BTreeMap::from([
        (CONFIGMAP_KEY.to_owned(), json),
        (CONFIGMAP_NAMESPACE_KEY.to_owned(), namespace.to_owned()),
    ]));
    match existing {
        Some(cm) => {
            let mut cm = cm.clone();
            cm.metadata.labels.get_or_insert_with(BTreeMap::new).extend(labels_wanted());
            cm.data = data;
            cm.binary_data = None;
            cm
        }
        None => ConfigMap {
            metadata: ObjectMeta {
                name: Some(CONFIGMAP_NAME.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: Some(labels_wanted()),
                ..Default::default()
            },
            data,
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::state::Registration;
    use crate::status::tier::decide;

    fn nothing() -> Reports<'static> {
        Reports { assessment: None, collection: None, api_key_configured: false, ai_conformance: None, argocd: None }
    }

    #[test]
    fn the_json_follows_the_contract() {
        let now: Timestamp = "2026-11-22T10:00:00.123Z".parse().unwrap();
        let status = render(&decide(&Registration::NoKey, None), &nothing(), "kube9-system", now);
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["lastUpdate"], "2026-11-22T10:00:00Z");
        assert_eq!(json["error"], serde_json::Value::Null);
        assert!(json.get("clusterId").is_none());
        assert_eq!(json["apiKeyConfigured"], false);
        assert_eq!(json["collectionStats"]["lastSuccessTime"], serde_json::Value::Null);
        assert_eq!(json["assessment"]["lastScheduledTotals"]["passedChecks"], 0);
        assert_eq!(last_update(&status), Some("2026-11-22T10:00:00Z".parse().unwrap()));
    }

    #[test]
    fn a_hand_edited_configmap_is_not_current() {
        let now = Timestamp::UNIX_EPOCH;
        let status = render(&decide(&Registration::NoKey, None), &nothing(), "ns", now);
        let mut cm = object(None, "ns", &status);
        cm.metadata.labels = Some(labels_wanted());
        assert_eq!(current(Some(&cm)), (Some(status.clone()), true));
        assert_eq!(cm.data.as_ref().unwrap()[CONFIGMAP_NAMESPACE_KEY], "ns", "the plain namespace key");
        cm.data.as_mut().unwrap().insert("extra".into(), "x".into());
        assert!(!current(Some(&cm)).1);
        let mut moved = object(None, "ns", &status);
        moved.data.as_mut().unwrap().insert(CONFIGMAP_NAMESPACE_KEY.into(), "elsewhere".into());
        assert!(!current(Some(&moved)).1, "a namespace key that disagrees");
        cm.data = Some(BTreeMap::from([(CONFIGMAP_KEY.to_owned(), "{broken".into())]));
        assert_eq!(current(Some(&cm)).0, None);
        assert_eq!(current(None), (None, false));
    }
}
