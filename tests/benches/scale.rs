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
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube9_api::assessment::{Assessment, AssessmentSpec, Phase, RUN_REQUESTED_ANNOTATION};
use kube9_tests::bench;
use kube9_tests::operator::{Operator, Peak, status_kib};
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
    let scale: f64 = std::env::var("KUBE9_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    bench::run("bench-scale", &bench::numbered(NAMESPACES), async |b| {
        run(&b.client, &b.namespaces, &b.prefix, scale).await
    })
    .await
}

fn count(n: usize, scale: f64) -> usize {
    ((n as f64 * scale).round() as usize).max(1)
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
    bench::create::<Pod>(client, names, pods, IN_FLIGHT, |i| {
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
    bench::create::<ReplicaSet>(client, names, deployments * REPLICA_SETS, IN_FLIGHT, |j| {
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
    bench::create::<Service>(client, names, services, IN_FLIGHT, |i| {
        let selector =
            if i < deployments { json!({"app": format!("app-{i}")}) } else { json!({"run": format!("job-{i}")}) };
        json!({"metadata": {"name": format!("svc-{i}")},
               "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    })
    .await?;
    bench::create::<ConfigMap>(client, names, config_maps, IN_FLIGHT, |i| {
        json!({"metadata": {"name": format!("settings-{i}")},
               "data": {"LOG_LEVEL": "info", "FEATURES": "a,b,c", "config.yaml": format!("replicas: {}\nregion: eu-west-1\n", i % 5)}})
    })
    .await?;
    bench::create::<Role>(client, names, NAMESPACES, IN_FLIGHT, |_| {
        json!({"metadata": {"name": "deployer"}, "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "create", "update"]}]})
    })
    .await?;
    bench::create::<RoleBinding>(client, names, NAMESPACES, IN_FLIGHT, |i| {
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

async fn run(client: &kube::Client, names: &[String], prefix: &str, scale: f64) -> anyhow::Result<()> {
    let created = populate(client, names, scale).await?;

    let kinds = bench::served_kinds(client).await?;
    let mut baselines = Vec::new();
    let mut listed = 0;
    for _ in 0..RUNS {
        let (took, objects) = bench::list_all(client, &kinds).await?;
        baselines.push(took);
        listed = objects;
    }
    baselines.sort();
    let baseline = baselines[0];
    println!(
        "baseline: listing {listed} objects of {} kinds, 500 a page: {:.1} s (best of {RUNS})",
        kinds.len(),
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
    let sampler = Peak::sample(op.pid(), "VmRSS:");
    let assessments: Api<Assessment> = Api::all(client.clone());
    let name = prefix;
    assessments.create(&PostParams::default(), &Assessment::new(name, AssessmentSpec::default())).await?;
    let mut last_run = None;
    let mut runs = Vec::new();
    for round in 0..RUNS {
        if round > 0 {
            let request = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: round.to_string()}}});
            assessments.patch(name, &PatchParams::default(), &Patch::Merge(&request)).await?;
        }
        let asked = Instant::now();
        let deadline = asked + Duration::from_secs(1800);
        let status = loop {
            let status = assessments.get(name).await?.status.unwrap_or_default();
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
    let sampled = sampler.stop()?;
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
