//! Argo CD in the test cluster: its real CRDs (`../shared/fixtures/argocd`, shared by every
//! test and never deleted), an argocd-server Deployment as its manifests make it, and the
//! Application resource.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

use crate::{root, wait_for};

/// Installs Argo CD's real CRDs (server-side apply: too large for client-side apply) and waits
/// until Applications can be listed. Applied on every call, not once per process: the one test
/// that removes them holds the singleton lock, as does every test that calls this.
pub async fn ensure_argo_crds(client: &kube::Client) -> Result<()> {
    install_argo_crds(client).await
}

pub async fn install_argo_crds(client: &kube::Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in ["application-crd.yaml", "appproject-crd.yaml"] {
        let path = root().join("../shared/fixtures/argocd").join(file);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text)?;
        let name = crd.metadata.name.clone().context("a CRD without a name")?;
        api.patch(&name, &PatchParams::apply("kube9-tests").force(), &Patch::Apply(&crd)).await?;
        wait_for(Duration::from_secs(30), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await?;
                let conditions = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                Ok(conditions.iter().any(|c| c.type_ == "Established" && c.status == "True"))
            }
        })
        .await
        .with_context(|| format!("{name} never became Established"))?;
    }
    // Established is not yet served: a CRD deleted and created again moments later can be
    // Established while the API server still tears down its old handler.
    let applications: Api<DynamicObject> = Api::all_with(client.clone(), &applications());
    wait_for(Duration::from_secs(60), || async {
        Ok(applications.list_metadata(&ListParams::default().limit(1)).await.is_ok())
    })
    .await
    .context("Applications never became listable")?;
    Ok(())
}

pub fn applications() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"), "applications")
}

/// An argocd-server Deployment as Argo CD's manifests make it.
pub fn argocd_server(ns: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "argocd-server", "namespace": ns,
            "labels": {"app.kubernetes.io/name": "argocd-server", "app.kubernetes.io/part-of": "argocd"}},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app.kubernetes.io/name": "argocd-server"}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "argocd-server"}},
                "spec": {"containers": [{"name": "argocd-server", "image": "quay.io/argoproj/argocd:v3.1.5"}]}}}
    }))
    .expect("a valid Deployment")
}
