//! An Application as the operator lists and watches it: `kube9_argocd`'s model with only
//! name, namespace, uid and resourceVersion of its metadata, because annotations (a
//! last-applied copy of the whole object, often) and managed fields would be parsed for every
//! Application on every change and never used.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::NamespaceResourceScope;
use kube9_argocd::app::{Application, ApplicationSpec, ApplicationStatus};
use serde::{Deserialize, Deserializer};

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ListedApp {
    #[serde(deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ApplicationSpec,
    #[serde(default)]
    pub status: ApplicationStatus,
}

impl From<ListedApp> for Application {
    fn from(app: ListedApp) -> Application {
        Application { metadata: app.metadata, spec: app.spec, status: app.status }
    }
}

fn slim_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Slim {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
    }
    let s = Slim::deserialize(d)?;
    Ok(ObjectMeta {
        name: s.name,
        namespace: s.namespace,
        uid: s.uid,
        resource_version: s.resource_version,
        ..Default::default()
    })
}

impl kube::Resource for ListedApp {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Application".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "argoproj.io".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "applications".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_the_identity_of_the_metadata_is_kept() {
        let app: ListedApp = serde_json::from_value(json!({
            "metadata": {"name": "shop", "namespace": "argocd", "uid": "u1", "resourceVersion": "7",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
                "managedFields": [{"manager": "argocd-controller"}]},
            "status": {"sync": {"status": "Synced"}}
        }))
        .unwrap();
        let meta = &app.metadata;
        assert_eq!(
            (meta.name.as_deref(), meta.namespace.as_deref(), meta.uid.as_deref(), meta.resource_version.as_deref()),
            (Some("shop"), Some("argocd"), Some("u1"), Some("7"))
        );
        assert!(meta.annotations.is_none() && meta.managed_fields.is_none());
        assert_eq!(Application::from(app).status.sync.status.as_deref(), Some("Synced"));
    }
}
