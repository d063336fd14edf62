//! The control plane runs the controllers the operator relies on: namespace deletion and
//! garbage collection really happen.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube9_tests::{scenario, wait_for};

async fn gone<K>(api: &Api<K>, name: &str) -> anyhow::Result<bool>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await? {
        Some(_) => Ok(false),
        None => Ok(true),
    }
}

#[tokio::test]
async fn deleting_a_namespace_with_objects_in_it_completes() {
    scenario(|ctx| async move {
        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        let name = ctx.namespace("ns").await?;

        let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
        let cm = ConfigMap {
            metadata: ObjectMeta { name: Some("inside".into()), ..Default::default() },
            ..Default::default()
        };
        configmaps.create(&PostParams::default(), &cm).await?;

        namespaces.delete(&name, &DeleteParams::default()).await?;
        // Only the namespace controller empties the namespace and removes its finalizer.
        wait_for(Duration::from_secs(60), || gone(&namespaces, &name)).await?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn dependents_are_garbage_collected_with_their_owner() {
    scenario(|ctx| async move {
        let ns = ctx.namespace("gc").await?;

        let configmaps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
        let owner = configmaps
            .create(
                &PostParams::default(),
                &ConfigMap {
                    metadata: ObjectMeta { name: Some("owner".into()), ..Default::default() },
                    ..Default::default()
                },
            )
            .await?;
        let dependent = ConfigMap {
            metadata: ObjectMeta {
                name: Some("dependent".into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: "owner".into(),
                    uid: owner.metadata.uid.clone().unwrap_or_default(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        };
        configmaps.create(&PostParams::default(), &dependent).await?;

        configmaps.delete("owner", &DeleteParams::background()).await?;
        wait_for(Duration::from_secs(60), || gone(&configmaps, "dependent")).await?;
        Ok(())
    })
    .await;
}
