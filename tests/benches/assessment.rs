//! An Assessment run end to end against the test cluster (run with `cargo xtask bench`):
//! 2,000 Deployments in 20 namespaces, the release operator, a one-off Assessment run three
//! times (by annotation). Prints figures; asserts nothing about them.
//!
//! Baseline, measured in the same run: listing the same kinds page by page with the same
//! client settings, which is the least any assessment of this cluster costs.
//! The Deployments are paused, so the controller manager creates no ReplicaSets or Pods for
//! them and the figures are about 2,000 Deployments, not whatever the controllers are doing.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube9_api::assessment::{Assessment, AssessmentSpec, Phase, RUN_REQUESTED_ANNOTATION};
use kube9_tests::operator::{Operator, create_namespaces, delete_singleton, status_kib};
use kube9_tests::{client, ensure_crds, unique_name};
use serde_json::json;

const NAMESPACES: usize = 20;
const DEPLOYMENTS: usize = 2_000;
const RUNS: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client().await?;
    ensure_crds(&client).await?;
    let prefix = unique_name("bench-assess");
    let names: Vec<String> = (0..NAMESPACES).map(|i| format!("{prefix}-{i}")).collect();
    delete_singleton(&client).await;
    let result = run(&client, &names).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in &names {
        let _ = namespaces.delete(ns, &DeleteParams::background()).await;
    }
    let _ = Api::<Assessment>::all(client.clone()).delete(&prefix, &DeleteParams::default()).await;
    delete_singleton(&client).await;
    result
}

async fn run(client: &kube::Client, names: &[String]) -> anyhow::Result<()> {
    create_namespaces(client, names).await?;
    let started = Instant::now();
    futures::stream::iter(0..DEPLOYMENTS)
        .map(|i| {
            let api: Api<Deployment> = Api::namespaced(client.clone(), &names[i % NAMESPACES]);
            async move {
                let d: Deployment = serde_json::from_value(json!({
                    "metadata": {"name": format!("app-{i}"), "labels": {"app": format!("app-{i}")}},
                    "spec": {"paused": true, "replicas": 2, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                        "template": {"metadata": {"labels": {"app": format!("app-{i}")}}, "spec": {"containers": [{
                            "name": "app", "image": format!("registry.example/app-{i}:1.0"),
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                            "env": [{"name": "MODE", "value": "production"}]}]}}}
                }))?;
                api.create(&PostParams::default(), &d).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    println!(
        "created {DEPLOYMENTS} Deployments in {NAMESPACES} namespaces in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Baseline: list every kind the checks read, 500 per page, as the operator does.
    let kinds = [
        ("", "v1", "Namespace", "namespaces"),
        ("", "v1", "Node", "nodes"),
        ("", "v1", "Pod", "pods"),
        ("", "v1", "Service", "services"),
        ("", "v1", "ResourceQuota", "resourcequotas"),
        ("", "v1", "LimitRange", "limitranges"),
        ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        ("apps", "v1", "Deployment", "deployments"),
        ("apps", "v1", "StatefulSet", "statefulsets"),
        ("apps", "v1", "DaemonSet", "daemonsets"),
        ("apps", "v1", "ReplicaSet", "replicasets"),
        ("batch", "v1", "Job", "jobs"),
        ("batch", "v1beta1", "CronJob", "cronjobs"),
        ("networking.k8s.io", "v1", "Ingress", "ingresses"),
        ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
        ("policy", "v1beta1", "PodDisruptionBudget", "poddisruptionbudgets"),
        ("autoscaling", "v2beta2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles"),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings"),
    ];
    let mut list_times = Vec::new();
    let mut objects = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        objects = 0;
        for (group, version, kind, plural) in kinds {
            let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
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
        list_times.push(start.elapsed());
    }
    list_times.sort();
    let baseline = list_times[RUNS / 2];
    println!(
        "baseline: listing {objects} objects of 21 kinds, 500 per page: {:.0} ms (median of {RUNS})",
        baseline.as_secs_f64() * 1e3
    );

    // The operator, idle, then running the Assessment.
    let op = Operator::start(&names[0], &[], &[("KUBE9_LOG_LEVEL", "warn")])?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_peak = status_kib(op.pid(), "VmHWM:");
    let assessments: Api<Assessment> = Api::all(client.clone());
    let name = names[0].rsplit_once('-').map_or(names[0].clone(), |(p, _)| p.to_owned());
    assessments.create(&PostParams::default(), &Assessment::new(&name, AssessmentSpec::default())).await?;
    let mut runs = Vec::new();
    let mut last_run = None;
    for round in 0..RUNS {
        if round > 0 {
            let request = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: round.to_string()}}});
            assessments.patch(&name, &PatchParams::default(), &Patch::Merge(&request)).await?;
        }
        let asked = Instant::now();
        let deadline = asked + Duration::from_secs(120);
        let status = loop {
            let status = assessments.get(&name).await?.status.unwrap_or_default();
            if status.phase == Some(Phase::Completed) && status.run_id != last_run {
                break status;
            }
            anyhow::ensure!(Instant::now() < deadline, "the Assessment did not complete: {status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let wall = asked.elapsed();
        let inside = match (&status.started_at, &status.completed_at) {
            (Some(s), Some(c)) => Duration::try_from(c.0 - s.0).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        last_run = status.run_id.clone();
        let totals = status.totals.unwrap_or_default();
        println!(
            "run {}: {:.0} ms from request to Completed seen ({:.0} ms between startedAt and completedAt, 1 s resolution); {} findings kept of {}",
            round + 1,
            wall.as_secs_f64() * 1e3,
            inside.as_secs_f64() * 1e3,
            status.findings.len(),
            totals.failed
        );
        runs.push(wall);
    }
    runs.sort();
    let median = runs[RUNS / 2];
    let peak = status_kib(op.pid(), "VmHWM:");
    let rss = status_kib(op.pid(), "VmRSS:");
    println!(
        "assessment end to end: median {:.0} ms ({:.2}x the baseline listing)",
        median.as_secs_f64() * 1e3,
        median.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "operator memory: peak resident {:.1} MiB (idle peak before the runs {:.1} MiB); resident after the runs {:.1} MiB",
        peak as f64 / 1024.0,
        idle_peak as f64 / 1024.0,
        rss as f64 / 1024.0
    );
    drop(op);
    Ok(())
}
