//! Argo CD's Applications and AppProjects: only the fields kube9 uses, status included (an
//! Application's status is what Argo CD observed: sync, health, the last operation, the
//! resources it manages). Everything else is skipped while parsing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

/// An `argoproj.io` Application.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Application {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ApplicationSpec,
    #[serde(default)]
    pub status: ApplicationStatus,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    #[serde(default)]
    pub project: String,
    #[serde(default)]
    pub destination: Destination,
    #[serde(default)]
    pub sync_policy: Option<SyncPolicy>,
}

/// Where an Application deploys, or (in an AppProject) where its Applications may.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Destination {
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

impl Destination {
    /// Whether this is Argo CD's in-cluster destination (by server URL, else by cluster name;
    /// neither set means the default, in-cluster): only then are the resources here to read.
    pub fn in_cluster(&self) -> bool {
        match (self.server.as_deref(), self.name.as_deref()) {
            (Some(server), _) if !server.is_empty() => server.trim_end_matches('/') == "https://kubernetes.default.svc",
            (_, Some(name)) if !name.is_empty() => name == "in-cluster",
            _ => true,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SyncPolicy {
    #[serde(default)]
    pub automated: Option<Automated>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Automated {
    /// Absent means enabled (Argo CD 3.x can switch automation off with `enabled: false`).
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub prune: Option<bool>,
    #[serde(default)]
    pub self_heal: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(default)]
    pub sync: SyncStatus,
    #[serde(default)]
    pub health: HealthStatus,
    #[serde(default)]
    pub operation_state: Option<OperationState>,
    #[serde(default)]
    pub resources: Vec<ResourceStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SyncStatus {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
}

/// The health of an Application, or of one resource it manages.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// Since when the health is what it is (an Application's, Argo CD 2.11 and later).
    #[serde(default)]
    pub last_transition_time: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// Kept as Argo CD wrote it: a failed operation's event is keyed by it, and a key must not
    /// change with how a time is formatted.
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
}

/// One resource an Application manages, as its status lists it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ResourceStatus {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
    /// `Synced` or `OutOfSync`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub health: Option<HealthStatus>,
}

/// An `argoproj.io` AppProject.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AppProject {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: AppProjectSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppProjectSpec {
    #[serde(default)]
    pub source_repos: Vec<String>,
    #[serde(default)]
    pub destinations: Vec<Destination>,
}

/// Reads an Application or AppProject, dropping the field-manager bookkeeping.
pub fn read<T: serde::de::DeserializeOwned>(mut object: serde_json::Value) -> Result<T, String> {
    if let Some(meta) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    serde_json::from_value(object).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(server: Option<&str>, name: Option<&str>) -> Destination {
        Destination { server: server.map(str::to_owned), name: name.map(str::to_owned), namespace: None }
    }

    #[test]
    fn only_the_in_cluster_destination_is_looked_up_here() {
        assert!(destination(Some("https://kubernetes.default.svc"), None).in_cluster());
        assert!(destination(None, Some("in-cluster")).in_cluster());
        assert!(destination(None, None).in_cluster());
        assert!(!destination(Some("https://prod.example.com:6443"), None).in_cluster());
        assert!(!destination(None, Some("prod")).in_cluster());
    }
}
