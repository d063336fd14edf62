//! What the operator knows of Argo CD: the `argocd` block of the ConfigMap (CLIENT-CONTRACT.md)
//! and `status.argocd` on the OperatorStatus. docs/argocd.md.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Argo CD as detected in this cluster (`status.argocd`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArgoCdStatus {
    /// Whether `applications.argoproj.io` is served and an argocd-server Deployment exists.
    pub detected: bool,
    /// The namespace of the argocd-server Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Argo CD's version: the argocd-server image tag, or its `app.kubernetes.io/version` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When detection last changed or was confirmed (RFC 3339).
    pub last_checked: String,
    /// Whether `kube9-operator query argocd resource-tree get` can list what it needs; only
    /// when detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tree_capable: Option<bool>,
    /// Why the resource tree cannot be served, when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tree_last_error: Option<ArgoCdError>,
    /// The Applications' sync and health; only when detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<ApplicationsSummary>,
}

/// A failure with a stable code and a message for people.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArgoCdError {
    pub code: String,
    #[schemars(length(max = 500))]
    pub message: String,
}

/// The Applications the operator follows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationsSummary {
    /// Applications followed (at most the operator's cap; see `omittedCount`).
    pub stored_count: u64,
    /// When the Applications were last listed or one of them changed these counts (RFC 3339).
    pub last_collected_at: String,
    /// Applications by sync status (`Synced`, `OutOfSync`, `Unknown`).
    pub sync_status_counts: BTreeMap<String, u64>,
    /// Applications by health status (`Healthy`, `Progressing`, `Degraded`, `Suspended`,
    /// `Missing`, `Unknown`).
    pub health_status_counts: BTreeMap<String, u64>,
    /// Applications beyond the cap, not followed (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted_count: Option<u64>,
}

/// The ConfigMap's `argocd` block: `namespace` and `version` are always present (null when
/// unknown), as the extension reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyArgoCd {
    pub detected: bool,
    pub namespace: Option<String>,
    pub version: Option<String>,
    pub last_checked: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tree_capable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_tree_last_error: Option<ArgoCdError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications: Option<ApplicationsSummary>,
}

impl From<&ArgoCdStatus> for LegacyArgoCd {
    fn from(s: &ArgoCdStatus) -> Self {
        LegacyArgoCd {
            detected: s.detected,
            namespace: s.namespace.clone(),
            version: s.version.clone(),
            last_checked: s.last_checked.clone(),
            resource_tree_capable: s.resource_tree_capable,
            resource_tree_last_error: s.resource_tree_last_error.clone(),
            applications: s.applications.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configmap_block_keeps_nulls_and_omits_what_only_detection_gives() {
        let absent = ArgoCdStatus { last_checked: "2026-12-01T10:00:00Z".into(), ..Default::default() };
        assert_eq!(
            serde_json::to_value(LegacyArgoCd::from(&absent)).unwrap(),
            serde_json::json!({"detected": false, "namespace": null, "version": null,
                "lastChecked": "2026-12-01T10:00:00Z"})
        );
        assert_eq!(
            serde_json::to_value(&absent).unwrap(),
            serde_json::json!({"detected": false, "lastChecked": "2026-12-01T10:00:00Z"}),
            "the status omits what is unknown"
        );
    }
}
