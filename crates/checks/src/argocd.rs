//! Argo CD's Applications and AppProjects as the GitOps checks read them: only the fields they
//! use, status included (an Application's status is what Argo CD observed: sync, health, the
//! last operation, the resources it manages).

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
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Destination {
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
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
    pub sync: Sync,
    #[serde(default)]
    pub health: AppHealth,
    #[serde(default)]
    pub operation_state: Option<OperationState>,
    #[serde(default)]
    pub resources: Vec<ManagedResource>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Sync {
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppHealth {
    #[serde(default)]
    pub status: Option<String>,
    /// Since when the health is what it is (Argo CD 2.11 and later).
    #[serde(default)]
    pub last_transition_time: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
}

/// A resource an Application manages.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ManagedResource {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
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
pub(crate) fn read<T: serde::de::DeserializeOwned>(mut object: serde_json::Value) -> Result<T, String> {
    if let Some(meta) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("managedFields");
    }
    serde_json::from_value(object).map_err(|e| e.to_string())
}
