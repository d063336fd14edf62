//! What the cluster benchmarks (tests/benches) share: the set-up and clean-up around each
//! bench's body, creating many objects at once, and the baseline every Assessment figure is
//! compared with: listing each kind the checks read, page by page.
//!
//! The benches print figures and assert nothing about them, so the harness returns the body's
//! error after cleaning up rather than panicking as [`crate::scenario`] does.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Resource};
use kube9_api::assessment::Assessment;
use kube9_checks::kinds::KINDS;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::operator::{create_namespaces, delete_singleton, singleton_lock};
use crate::{client, ensure_crds, unique_name};

/// What a bench body gets.
pub struct Bench {
    pub client: Client,
    /// A name no other run uses. The bench's namespaces are `<prefix>-<suffix>`; Assessments
    /// whose name starts with it are deleted with them.
    pub prefix: String,
    /// The namespaces created for the bench, in the order of the suffixes asked for.
    pub namespaces: Vec<String>,
}

/// `0`, `1`, … `count - 1`: the suffixes of `count` numbered namespaces.
pub fn numbered(count: usize) -> Vec<String> {
    (0..count).map(|i| i.to_string()).collect()
}

/// Runs a cluster benchmark: the project's CRDs applied, the operator singleton lock taken
/// (the operator tests and benches share the cluster-wide OperatorStatus, which the lock
/// clears), one namespace `<prefix>-<suffix>` per suffix created; then `body`; then, however
/// the body ended, the namespaces, the bench's Assessments and the singleton deleted.
pub async fn run<S: AsRef<str>>(
    label: &str,
    suffixes: &[S],
    body: impl AsyncFnOnce(&Bench) -> Result<()>,
) -> Result<()> {
    // reqwest (health endpoints, the kube9-server simulator) uses rustls with this provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client().await?;
    ensure_crds(&client).await?;
    eprintln!("waiting for the operator singleton lock (other operator tests finish first)");
    let lock = singleton_lock(&client).await;
    let prefix = unique_name(label);
    let namespaces: Vec<String> = suffixes.iter().map(|s| format!("{prefix}-{}", s.as_ref())).collect();
    let bench = Bench { client, prefix, namespaces };
    let result = match create_namespaces(&bench.client, &bench.namespaces).await {
        Ok(()) => body(&bench).await,
        Err(e) => Err(e.context("creating the bench's namespaces")),
    };
    cleanup(&bench).await;
    delete_singleton(&bench.client).await;
    drop(lock);
    result
}

async fn cleanup(bench: &Bench) {
    let namespaces: Api<Namespace> = Api::all(bench.client.clone());
    for ns in &bench.namespaces {
        let _ = namespaces.delete(ns, &DeleteParams::background()).await;
    }
    let assessments: Api<Assessment> = Api::all(bench.client.clone());
    let Ok(list) = assessments.list_metadata(&ListParams::default()).await else { return };
    for name in list.items.into_iter().filter_map(|a| a.metadata.name) {
        if name.starts_with(&bench.prefix) {
            let _ = assessments.delete(&name, &DeleteParams::default()).await;
        }
    }
}

/// Creates `count` objects made by `make(i)` in namespace `namespaces[i % namespaces.len()]`,
/// `in_flight` requests at a time; fails with the first error.
pub async fn create<K>(
    client: &Client,
    namespaces: &[String],
    count: usize,
    in_flight: usize,
    make: impl Fn(usize) -> Value,
) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    anyhow::ensure!(!namespaces.is_empty(), "no namespace to create {count} objects in");
    futures::stream::iter(0..count)
        .map(|i| {
            let api: Api<K> = Api::namespaced(client.clone(), &namespaces[i % namespaces.len()]);
            let object = make(i);
            async move {
                api.create(&PostParams::default(), &serde_json::from_value::<K>(object)?).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(in_flight)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Every kind an Assessment reads (kube9-checks' table), each at the first of its versions the
/// server serves, as the operator picks them. Kinds the server serves at none of them (Argo
/// CD's without its CRDs) are left out, as the operator leaves them out.
pub async fn served_kinds(client: &Client) -> Result<Vec<ApiResource>> {
    let mut served = Vec::new();
    for kind in KINDS {
        for version in kind.versions {
            let gvk = GroupVersionKind::gvk(kind.group, version, kind.name);
            let resource = ApiResource::from_gvk_with_plural(&gvk, kind.plural);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            match api.list_metadata(&ListParams::default().limit(1)).await {
                Ok(_) => {
                    served.push(resource);
                    break;
                }
                Err(kube::Error::Api(status)) if status.code == 404 => continue,
                Err(e) => return Err(e).with_context(|| format!("listing {}/{version} {}", kind.group, kind.plural)),
            }
        }
    }
    Ok(served)
}

/// Lists every object of `kinds`, 500 a page, as the operator does: the least any assessment
/// of the cluster costs. Returns how long it took and how many objects it read.
pub async fn list_all(client: &Client, kinds: &[ApiResource]) -> Result<(Duration, usize)> {
    let start = Instant::now();
    let mut objects = 0;
    for resource in kinds {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
        let mut params = ListParams::default().limit(500);
        loop {
            let page = api.list(&params).await?;
            objects += page.items.len();
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    Ok((start.elapsed(), objects))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_namespaces_count_from_zero() {
        assert_eq!(numbered(3), ["0", "1", "2"]);
        assert!(numbered(0).is_empty());
    }
}
