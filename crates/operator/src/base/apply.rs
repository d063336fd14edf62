//! The one way the operator writes the status of its own resources: server-side apply of the
//! whole status under one field manager, so fields it no longer sets are removed.

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;

/// The field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "kube9-operator";

/// Applies `status` as the whole status of the object `name`.
pub async fn status<K>(api: &Api<K>, name: &str, status: &impl Serialize) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}
