//! A streamed Assessment of a large cluster (run with `cargo xtask bench`): 50,000 standalone
//! Pods, 5,000 paused Deployments with 11 ReplicaSets each (the current one and 10 old
//! revisions), 10,000 Services, 10,000 ConfigMaps and some RBAC, in 50 namespaces, created
//! directly in the local control plane (nothing runs: no scheduler, paused Deployments). The
//! release operator runs with the chart's defaults under a 128Mi memory cgroup (where the
//! machine lets it make one). Prints figures; asserts only that the run completes.
//!
//! Printed: the run's duration against the baseline of listing the same kinds page by page
//! (500 a page, measured in the same run), and the operator's peak resident set above its idle
//! peak (taken after the collectors' first runs). `KUBE9_BENCH_SCALE=0.1` makes a cluster a
//! tenth the size, for a quick look.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube9_api::assessment::{Assessment, AssessmentSpec, Phase, RUN_REQUESTED_ANNOTATION};
use kube9_tests::operator::{Operator, create_namespaces, delete_singleton, status_kib};
use kube9_tests::{client, ensure_crds, unique_name};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const NAMESPACES: usize = 50;
const PODS: usize = 50_000;
const DEPLOYMENTS: usize = 5_000;
const REPLICA_SETS: usize = 11;
const SERVICES: usize = 10_000;
const CONFIG_MAPS: usize = 10_000;
/// A Role and a RoleBinding per namespace.
const RBAC: usize = 2;
const IN_FLIGHT: usize = 32;
const RUNS: usize = 2;
const LIMIT: u64 = 128 * 1024 * 1024;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scale: f64 = std::env::var("KUBE9_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let client = client().await?;
    ensure_crds(&client).await?;
    let prefix = unique_name("bench-scale");
    let names: Vec<String> = (0..NAMESPACES).map(|i| format!("{prefix}-{i}")).collect();
    delete_singleton(&client).await;
    let result = run(&client, &names, scale).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in &names {
        let _ = namespaces.delete(ns, &DeleteParams::background()).await;
    }
    let _ = Api::<Assessment>::all(client.clone()).delete(&prefix, &DeleteParams::default()).await;
    delete_singleton(&client).await;
    result
}

fn count(n: usize, scale: f64) -> usize {
    ((n as f64 * scale).round() as usize).max(1)
}

/// Creates `n` objects made by `make(i)` in namespace `i % NAMESPACES`, `IN_FLIGHT` at a time.
async fn create<K>(
    client: &kube::Client,
    names: &[String],
    n: usize,
    make: impl Fn(usize) -> Value,
) -> anyhow::Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    futures::stream::iter(0..n)
        .map(|i| {
            let api: Api<K> = Api::namespaced(client.clone(), &names[i % NAMESPACES]);
            let object = make(i);
            async move {
                api.create(&PostParams::default(), &serde_json::from_value::<K>(object)?).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

fn container(i: usize) -> Value {
    json!({"name": "app", "image": format!("registry.example/app-{}:1.{}", i % 200, i % 7),
           "ports": [{"containerPort": 8080}],
           "resources": if i.is_multiple_of(2) { json!({"requests": {"cpu": "100m", "memory": "128Mi"}}) } else { json!({}) },
           "env": [{"name": "MODE", "value": "production"}, {"name": "REGION", "value": "eu-west-1"}]})
}

async fn populate(client: &kube::Client, names: &[String], scale: f64) -> anyhow::Result<usize> {
    let (pods, deployments, services, config_maps) =
        (count(PODS, scale), count(DEPLOYMENTS, scale), count(SERVICES, scale), count(CONFIG_MAPS, scale));
    let started = Instant::now();
    create::<Pod>(client, names, pods, |i| {
        json!({"metadata": {"name": format!("job-{i}"), "labels": {"run": format!("job-{i}"), "team": format!("t{}", i % 20)}},
               "spec": {"restartPolicy": "Never", "containers": [container(i)]}})
    })
    .await?;
    let deployment_uids = std::sync::Mutex::new(vec![String::new(); deployments]);
    futures::stream::iter(0..deployments)
        .map(|i| {
            let api: Api<Deployment> = Api::namespaced(client.clone(), &names[i % NAMESPACES]);
            let uids = &deployment_uids;
            async move {
                let labels = json!({"app": format!("app-{i}"), "app.kubernetes.io/name": format!("app-{i}")});
                let d: Deployment = serde_json::from_value(json!({
                    "metadata": {"name": format!("app-{i}"), "labels": labels},
                    "spec": {"paused": true, "replicas": 0, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                             "template": {"metadata": {"labels": labels}, "spec": {"containers": [container(i)]}}}
                }))?;
                let created = api.create(&PostParams::default(), &d).await?;
                if let Ok(mut uids) = uids.lock() {
                    uids[i] = created.metadata.uid.unwrap_or_default();
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    let uids = deployment_uids.into_inner().unwrap_or_default();
    create::<ReplicaSet>(client, names, deployments * REPLICA_SETS, |j| {
        // Laid out so that ReplicaSet j lands in the namespace of its Deployment.
        let (revision, i) = (j / deployments, j % deployments);
        let hash = format!("r{revision}x{i}");
        let labels = json!({"app": format!("app-{i}"), "app.kubernetes.io/name": format!("app-{i}"), "pod-template-hash": hash});
        json!({"metadata": {"name": format!("app-{i}-{hash}"), "labels": labels,
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("app-{i}"),
                                                 "uid": uids[i], "controller": true, "blockOwnerDeletion": true}]},
               "spec": {"replicas": 0, "selector": {"matchLabels": {"app": format!("app-{i}"), "pod-template-hash": hash}},
                        "template": {"metadata": {"labels": labels}, "spec": {"containers": [container(i + revision)]}}}})
    })
    .await?;
    create::<Service>(client, names, services, |i| {
        let selector =
            if i < deployments { json!({"app": format!("app-{i}")}) } else { json!({"run": format!("job-{i}")}) };
        json!({"metadata": {"name": format!("svc-{i}")},
               "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    })
    .await?;
    create::<ConfigMap>(client, names, config_maps, |i| {
        json!({"metadata": {"name": format!("settings-{i}")},
               "data": {"LOG_LEVEL": "info", "FEATURES": "a,b,c", "config.yaml": format!("replicas: {}\nregion: eu-west-1\n", i % 5)}})
    })
    .await?;
    create::<Role>(client, names, NAMESPACES, |_| {
        json!({"metadata": {"name": "deployer"}, "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "create", "update"]}]})
    })
    .await?;
    create::<RoleBinding>(client, names, NAMESPACES, |i| {
        json!({"metadata": {"name": "deployer"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
               "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": format!("ns-{i}")}]})
    })
    .await?;
    let total = pods + deployments * (1 + REPLICA_SETS) + services + config_maps + NAMESPACES * (1 + RBAC);
    println!(
        "created {total} objects ({pods} Pods, {deployments} Deployments with {REPLICA_SETS} ReplicaSets each, {services} Services, \
         {config_maps} ConfigMaps, {} Roles and RoleBindings, {NAMESPACES} namespaces) in {:.0} s, {IN_FLIGHT} at a time",
        NAMESPACES * RBAC,
        started.elapsed().as_secs_f64()
    );
    Ok(total)
}

/// Lists every kind an Assessment reads, 500 a page, as the operator does: the least any
/// assessment of this cluster costs.
async fn baseline(client: &kube::Client) -> anyhow::Result<(Duration, usize)> {
    let kinds = [
        ("", "v1", "Namespace", "namespaces"),
        ("", "v1", "Node", "nodes"),
        ("", "v1", "Pod", "pods"),
        ("", "v1", "Service", "services"),
        ("", "v1", "ResourceQuota", "resourcequotas"),
        ("", "v1", "LimitRange", "limitranges"),
        ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        ("", "v1", "ReplicationController", "replicationcontrollers"),
        ("", "v1", "PodTemplate", "podtemplates"),
        ("", "v1", "ConfigMap", "configmaps"),
        ("apps", "v1", "Deployment", "deployments"),
        ("apps", "v1", "StatefulSet", "statefulsets"),
        ("apps", "v1", "DaemonSet", "daemonsets"),
        ("apps", "v1", "ReplicaSet", "replicasets"),
        ("batch", "v1", "Job", "jobs"),
        ("batch", "v1", "CronJob", "cronjobs"),
        ("networking.k8s.io", "v1", "Ingress", "ingresses"),
        ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies"),
        ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles"),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings"),
    ];
    let start = Instant::now();
    let mut objects = 0;
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
    Ok((start.elapsed(), objects))
}

/// Puts `pid` in a memory cgroup of `LIMIT` bytes (cgroup v1 or v2), where the machine allows.
fn limit_memory(pid: u32, name: &str) -> Option<std::path::PathBuf> {
    for (root, limit_file) in [("/sys/fs/cgroup/memory", "memory.limit_in_bytes"), ("/sys/fs/cgroup", "memory.max")] {
        let dir = std::path::Path::new(root).join(name);
        if std::fs::create_dir(&dir).is_ok() {
            if std::fs::write(dir.join(limit_file), LIMIT.to_string()).is_ok()
                && std::fs::write(dir.join("cgroup.procs"), pid.to_string()).is_ok()
            {
                return Some(dir);
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
    None
}

async fn metrics(op: &Operator) -> String {
    op.get("/metrics").await.map(|(_, body)| body).unwrap_or_default()
}

async fn run(client: &kube::Client, names: &[String], scale: f64) -> anyhow::Result<()> {
    create_namespaces(client, names).await?;
    let created = populate(client, names, scale).await?;

    let mut baselines = Vec::new();
    let mut listed = 0;
    for _ in 0..RUNS {
        let (took, objects) = baseline(client).await?;
        baselines.push(took);
        listed = objects;
    }
    baselines.sort();
    let baseline = baselines[0];
    println!(
        "baseline: listing {listed} objects of 24 kinds, 500 a page: {:.1} s (best of {RUNS})",
        baseline.as_secs_f64()
    );

    // The operator with the chart's defaults, idle once the collectors have had their first
    // runs (each starts within a minute; two of them list the cluster).
    let mut op = Operator::start(&names[0], &[], &[("KUBE9_LOG_LEVEL", "warn")])?;
    let cgroup = limit_memory(op.pid(), &format!("kube9-bench-{}", op.pid()));
    let settle = Instant::now();
    loop {
        let body = metrics(&op).await;
        let runs = body.lines().filter(|l| l.starts_with("kube9_collections_total{")).count();
        // Each of the five collectors has run once.
        if runs >= 5 || settle.elapsed() > Duration::from_secs(240) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_peak = status_kib(op.pid(), "VmHWM:");
    let idle = status_kib(op.pid(), "VmRSS:");
    println!(
        "operator idle: resident {:.1} MiB, peak so far {:.1} MiB (collectors' first runs included), memory cgroup: {}",
        idle as f64 / 1024.0,
        idle_peak as f64 / 1024.0,
        cgroup.as_ref().map_or("not available here".to_owned(), |_| format!("{} MiB", LIMIT >> 20))
    );

    // The resident set sampled every 20 ms while the runs go: the collectors' peaks (before)
    // stay out of the run's figure.
    let pid = op.pid();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_kib(pid, "VmRSS:"));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let assessments: Api<Assessment> = Api::all(client.clone());
    let name = names[0].rsplit_once('-').map_or(names[0].clone(), |(p, _)| p.to_owned());
    assessments.create(&PostParams::default(), &Assessment::new(&name, AssessmentSpec::default())).await?;
    let mut last_run = None;
    let mut runs = Vec::new();
    for round in 0..RUNS {
        if round > 0 {
            let request = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: round.to_string()}}});
            assessments.patch(&name, &PatchParams::default(), &Patch::Merge(&request)).await?;
        }
        let asked = Instant::now();
        let deadline = asked + Duration::from_secs(1800);
        let status = loop {
            let status = assessments.get(&name).await?.status.unwrap_or_default();
            if matches!(status.phase, Some(Phase::Completed | Phase::Failed)) && status.run_id != last_run {
                break status;
            }
            anyhow::ensure!(Instant::now() < deadline, "the Assessment did not finish: {:?}", status.phase);
            if let Some(code) = op.exited() {
                anyhow::bail!("the operator exited ({code:?}) during the run: killed at the memory limit?");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let wall = asked.elapsed();
        anyhow::ensure!(status.phase == Some(Phase::Completed), "the run failed: {:#?}", status.conditions);
        last_run = status.run_id.clone();
        let totals = status.totals.unwrap_or_default();
        println!(
            "run {}: Completed in {:.1} s ({:.2}x the baseline listing); score {:?}; {} passed, {} failed, {} exempted; {} findings in the status, {} left out",
            round + 1,
            wall.as_secs_f64(),
            wall.as_secs_f64() / baseline.as_secs_f64(),
            status.score,
            totals.passed,
            totals.failed,
            totals.exempted,
            status.findings.len(),
            status.truncated.unwrap_or_default()
        );
        runs.push(wall);
    }
    runs.sort();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let sampled = sampler.join().unwrap_or_default();
    let peak = status_kib(op.pid(), "VmHWM:");
    let rss = status_kib(op.pid(), "VmRSS:");
    println!(
        "streamed assessment of {created} objects: best {:.1} s = {:.2}x the baseline listing (target at most 2x)",
        runs[0].as_secs_f64(),
        runs[0].as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "operator memory during the runs: peak resident {:.1} MiB (sampled every 20 ms), {:.1} MiB above idle (target at most 48 MiB); \
         the process's own peak {:.1} MiB ({:.1} MiB before the runs); resident after the runs {:.1} MiB",
        sampled as f64 / 1024.0,
        sampled.saturating_sub(idle) as f64 / 1024.0,
        peak as f64 / 1024.0,
        idle_peak as f64 / 1024.0,
        rss as f64 / 1024.0
    );
    drop(op);
    if let Some(dir) = cgroup {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}
