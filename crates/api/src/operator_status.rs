//! `OperatorStatus`: the cluster-scoped singleton (named `kube9`) through which the operator
//! tells UIs what the cluster can do, and through which people acknowledge insights.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The name of the one OperatorStatus object the operator maintains.
pub const SINGLETON_NAME: &str = "kube9";

/// Most acknowledgements the spec holds (and the status mirrors).
pub const MAX_ACKNOWLEDGEMENTS: usize = 1000;
/// CEL rule (Kubernetes 1.25 and later) for the acknowledgement keys: insight ids.
const ACK_KEY_RULE: &str = "self.all(k, k.matches('^[A-Za-z0-9_-]{1,128}$'))";
const ACK_KEY_MESSAGE: &str =
    "acknowledgements: each key is an insight id (1 to 128 letters, digits, '_' or '-', as in status.insights[].id)";

/// What people and UIs write: acknowledgements of insights, keyed by insight id.
// Each printcolumn(...) repeats the same keys, which clippy mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kube9.io",
    version = "v1alpha1",
    kind = "OperatorStatus",
    doc = "How kube9 sees this cluster: tier, health and registration (status), and insight acknowledgements (spec). One object, named kube9.",
    plural = "operatorstatuses",
    shortname = "opstatus",
    category = "kube9",
    status = "OperatorStatusStatus",
    printcolumn(name = "Mode", type_ = "string", json_path = ".status.mode"),
    printcolumn(name = "Tier", type_ = "string", json_path = ".status.tier"),
    printcolumn(name = "Health", type_ = "string", json_path = ".status.health"),
    printcolumn(name = "Registered", type_ = "boolean", json_path = ".status.registered"),
    printcolumn(name = "Last Update", type_ = "date", json_path = ".status.lastUpdate"),
    printcolumn(name = "Leader", type_ = "string", json_path = ".status.leader"),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.version", priority = 1),
    printcolumn(name = "Error", type_ = "string", json_path = ".status.error", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct OperatorStatusSpec {
    /// Acknowledgements of insights, keyed by insight id. A merge patch records one. At most
    /// 1000 (the status keeps at most 500 insights; acknowledgements of insights gone since stay
    /// until removed), each key an insight id: 1 to 128 letters, digits, '_' or '-'.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_ACKNOWLEDGEMENTS, "x-kubernetes-validations" = [
        {"rule": ACK_KEY_RULE, "message": ACK_KEY_MESSAGE},
    ]))]
    pub acknowledgements: BTreeMap<String, Acknowledgement>,
}

/// A person's decision about one insight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Acknowledgement {
    /// What was decided about the insight.
    pub state: AcknowledgementState,
    /// Why, in the person's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub note: Option<String>,
}

/// The decision recorded by an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AcknowledgementState {
    /// The insight is accepted as true and being dealt with.
    Acknowledged,
    /// The insight does not apply and should not be shown again.
    Dismissed,
}

/// Whether the operator only observes the cluster or is connected to kube9-server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No usable API key: everything stays in the cluster.
    Operated,
    /// An API key is configured and the operator talks to kube9-server.
    Enabled,
}

/// The feature tier the cluster gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Assessments and status only; nothing leaves the cluster.
    Free,
    /// Registered with kube9-server: AI insights from sanitized data.
    Pro,
}

/// How well the operator is doing its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Everything works.
    Healthy,
    /// Working, but something (for example kube9-server) is failing; see `error`.
    Degraded,
    /// The operator cannot do its job (for example it cannot write status).
    Unhealthy,
}

/// What the operator reports; written only by the operator, with server-side apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorStatusStatus {
    /// `operated` (free, nothing leaves the cluster) or `enabled` (talks to kube9-server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// `free` or `pro`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Semantic version of the running operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `healthy`, `degraded` or `unhealthy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Whether kube9-server has accepted this cluster's registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered: Option<bool>,
    /// The id kube9-server gave this cluster (`cls_` followed by 12 or more alphanumerics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^cls_[A-Za-z0-9]{12,}$"))]
    pub cluster_id: Option<String>,
    /// Why the operator is not healthy; absent when it is. Never holds a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub error: Option<String>,
    /// When the operator last wrote this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<Time>,
    /// The namespace the operator runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The replica that holds the leader Lease and writes this status (its Pod name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub leader: Option<String>,
    /// The generation of the spec this status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The latest scheduled Well-Architected assessment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment: Option<crate::assessment::ScheduledSummary>,
    /// The latest Kubernetes AI Conformance readiness self-check (not a certification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_conformance: Option<crate::ai_conformance::AiConformanceSummary>,
    /// How the in-cluster collectors are doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_stats: Option<CollectionStats>,
    /// The latest upload of sanitized collections to kube9-server (pro tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadStatus>,
    /// AI insights from kube9-server, mapped back to real objects; most severe and newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    pub insights: Vec<Insight>,
    /// Insights kube9-server sent that did not fit in `insights`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insights_omitted: Option<u32>,
    /// Delivery of each `spec.acknowledgements` entry to kube9-server, keyed by insight id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_ACKNOWLEDGEMENTS))]
    pub acknowledgements: BTreeMap<String, AcknowledgementSync>,
    /// Argo CD as detected, and its Applications' sync and health (docs/argocd.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<crate::argocd::ArgoCdStatus>,
    /// Standard Kubernetes conditions (for example `Ready`, `Registered`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::common::conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// How the collectors are doing (also in the legacy ConfigMap).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionStats {
    /// Collections that completed, since the operator started.
    pub total_success_count: u64,
    /// Collections that failed, since the operator started.
    pub total_failure_count: u64,
    /// Collections held now (bounded by the retention per collector).
    pub collections_stored_count: u64,
    /// When the latest collection completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_time: Option<Time>,
}

/// The latest upload to kube9-server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadStatus {
    /// When the latest upload was attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<Time>,
    /// When an upload last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_time: Option<Time>,
    /// Size of the latest payload sent, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_bytes: Option<u64>,
    /// Why the latest attempt failed (never a name or a value from the payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub last_error: Option<String>,
}

/// One AI insight about an object in this cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Insight {
    /// kube9-server's id; the key of an acknowledgement.
    pub id: String,
    /// The object the insight is about, by its real name when `mapped`.
    pub object: InsightObject,
    /// False when the server's (obfuscated) names matched no object the operator knows: the
    /// insight is kept with the names as sent.
    pub mapped: bool,
    /// The kind of finding, for example `missing-resource-limits`.
    #[serde(rename = "type")]
    pub insight_type: String,
    pub severity: crate::common::Severity,
    pub title: String,
    pub text: String,
    pub recommendation: String,
    pub status: InsightState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// How the insight was made, for example `rules` or `llm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_method: Option<String>,
}

/// The object an insight is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InsightObject {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

/// Where an insight stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InsightState {
    Active,
    Acknowledged,
    Resolved,
    Dismissed,
}

/// Delivery of one acknowledgement to kube9-server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcknowledgementSync {
    /// The state this record is about (from the spec when it was last attempted).
    pub state: AcknowledgementState,
    /// The note this record is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub sync: SyncState,
    /// Attempts for this state and note.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 500))]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_time: Option<Time>,
}

/// Where the delivery of an acknowledgement stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SyncState {
    /// Not sent yet.
    Pending,
    /// kube9-server has it.
    Synced,
    /// The latest attempt failed; retried with backoff.
    Failed,
    /// kube9-server knows no insight with this id; not retried until the acknowledgement changes.
    UnknownInsight,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_patch_of_one_acknowledgement_deserializes() {
        let spec: OperatorStatusSpec = serde_json::from_value(serde_json::json!({
            "acknowledgements": {"ins_1": {"state": "acknowledged"}}
        }))
        .unwrap();
        assert_eq!(spec.acknowledgements["ins_1"].state, AcknowledgementState::Acknowledged);
        assert_eq!(spec.acknowledgements["ins_1"].note, None);
    }

    #[test]
    fn status_enums_use_the_legacy_configmap_spelling() {
        let status = OperatorStatusStatus {
            mode: Some(Mode::Operated),
            tier: Some(Tier::Free),
            health: Some(Health::Degraded),
            ..Default::default()
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json, serde_json::json!({"mode": "operated", "tier": "free", "health": "degraded"}));
    }

    #[test]
    fn an_unknown_acknowledgement_state_is_refused() {
        let err = serde_json::from_value::<Acknowledgement>(serde_json::json!({"state": "ignored"}));
        assert!(err.is_err());
    }
}
