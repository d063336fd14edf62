//! The JSON object older extensions read from the `kube9-operator-status` ConfigMap.

use serde::{Deserialize, Serialize};

use crate::operator_status::{Health, Mode, Tier};

/// Name of the legacy status ConfigMap, in the operator's namespace.
pub const CONFIGMAP_NAME: &str = "kube9-operator-status";
/// The ConfigMap key that holds the JSON.
pub const CONFIGMAP_KEY: &str = "status";

/// The `status` key of the legacy ConfigMap. Field order and presence follow the contract:
/// `error` is always present (null when healthy); `clusterId` only when registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyStatus {
    pub mode: Mode,
    pub tier: Tier,
    pub version: String,
    pub health: Health,
    /// RFC 3339, UTC.
    pub last_update: String,
    pub registered: bool,
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    pub namespace: String,
    /// The latest scheduled assessment, once one has run or is scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment: Option<crate::assessment::ScheduledSummary>,
    /// How the collectors are doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_stats: Option<crate::operator_status::CollectionStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_always_present_and_cluster_id_only_when_set() {
        let status = LegacyStatus {
            mode: Mode::Operated,
            tier: Tier::Free,
            version: "0.1.0".into(),
            health: Health::Healthy,
            last_update: "2026-11-22T10:00:00Z".into(),
            registered: false,
            error: None,
            cluster_id: None,
            namespace: "kube9-system".into(),
            assessment: None,
            collection_stats: None,
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"mode": "operated", "tier": "free", "version": "0.1.0", "health": "healthy",
                "lastUpdate": "2026-11-22T10:00:00Z", "registered": false, "error": null, "namespace": "kube9-system"})
        );
    }
}
