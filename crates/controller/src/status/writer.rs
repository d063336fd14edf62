//! The only code that writes the OperatorStatus object.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube9_api::assessment::ScheduledSummary;
use kube9_api::operator_status::{CollectionStats, OperatorStatus, OperatorStatusStatus, SINGLETON_NAME};

use super::tier::Standing;

/// The field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "kube9-operator";

/// Creates the `kube9` OperatorStatus if it does not exist.
pub async fn ensure_singleton(api: &Api<OperatorStatus>) -> Result<(), kube::Error> {
    match api.create(&PostParams::default(), &OperatorStatus::new(SINGLETON_NAME, Default::default())).await {
        Ok(_) => {
            tracing::info!(name = SINGLETON_NAME, "created the OperatorStatus object");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// What the other parts of the operator report, beside the standing.
pub struct Reports<'a> {
    pub assessment: Option<&'a ScheduledSummary>,
    pub collection: Option<&'a CollectionStats>,
    pub pro: &'a crate::pro::Report,
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
        observed_generation: generation,
        assessment: reports.assessment.cloned(),
        collection_stats: reports.collection.cloned(),
        upload: reports.pro.upload.clone(),
        insights: reports.pro.insights.clone(),
        insights_omitted: reports.pro.insights_omitted,
        acknowledgements: reports.pro.acknowledgements.clone(),
        conditions,
    }
}

/// Whether two statuses say the same thing, apart from when they were written.
pub fn same_content(a: &OperatorStatusStatus, b: &OperatorStatusStatus) -> bool {
    let strip = |s: &OperatorStatusStatus| OperatorStatusStatus { last_update: None, ..s.clone() };
    strip(a) == strip(b)
}

/// Writes the whole status by server-side apply; fields the operator no longer sets (an
/// `error` that cleared, a `clusterId` after a key was rejected) are removed.
pub async fn apply(api: &Api<OperatorStatus>, status: &OperatorStatusStatus) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "apiVersion": "kube9.io/v1alpha1",
        "kind": "OperatorStatus",
        "status": status,
    });
    api.patch_status(SINGLETON_NAME, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}
