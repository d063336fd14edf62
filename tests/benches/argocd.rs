//! Figures for Argo CD awareness against the test cluster (run with `cargo xtask bench`), with
//! Argo CD's real CRDs:
//!
//! 1. the operator's resident memory idle (Argo CD detected, no Applications), then following
//!    1,000 Applications of 10 managed resources each: the increase is what the Applications
//!    cost;
//! 2. the time from an Application's status change to the ConfigMap summary showing it;
//! 3. `kube9-operator query argocd resource-tree get` (the whole process, as the extension
//!    execs it) for an Application whose Deployment runs 200 Pods.
//!
//! It prints figures; it asserts nothing about them.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube9_api::legacy::{CONFIGMAP_KEY, CONFIGMAP_NAME};
use kube9_tests::argocd::{applications, argocd_server, ensure_argo_crds};
use kube9_tests::bench;
use kube9_tests::kubeconfig_path;
use kube9_tests::operator::{Operator, binary, status_kib};
use serde_json::{Value, json};

const APPS: usize = 1000;
const RESOURCES: usize = 10;
const PODS: i32 = 200;

#[tokio::main]
async fn main() -> Result<()> {
    bench::run("bench-argocd", &["argocd", "apps", "op"], async |b| {
        ensure_argo_crds(&b.client).await?;
        run(&b.client, &b.namespaces[0], &b.namespaces[1], &b.namespaces[2]).await
    })
    .await
}

fn summary(cm: &ConfigMap) -> Value {
    cm.data
        .as_ref()
        .and_then(|d| d.get(CONFIGMAP_KEY))
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .map(|v| v["argocd"]["applications"].clone())
        .unwrap_or(Value::Null)
}

fn app(ns: &str, name: &str, dest: &str, sync: &str) -> Value {
    let resources: Vec<Value> = (0..RESOURCES)
        .map(|i| {
            json!({"group": "apps", "version": "v1", "kind": "Deployment", "namespace": dest,
            "name": format!("{name}-{i}"), "status": "Synced", "health": {"status": "Healthy"}})
        })
        .collect();
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"project": "default", "source": {"repoURL": "https://git.example.com/apps.git", "path": name},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": dest}},
        "status": {"sync": {"status": sync, "revision": "0123456789abcdef"}, "health": {"status": "Healthy"},
            "reconciledAt": "2026-12-01T10:00:00Z", "resources": resources}})
}

async fn run(client: &kube::Client, argo: &str, dest: &str, op_ns: &str) -> Result<()> {
    Api::<Deployment>::namespaced(client.clone(), argo).create(&PostParams::default(), &argocd_server(argo)).await?;
    let op = Operator::start(op_ns, &["--argocd-namespace", argo], &[("KUBE9_LOG_LEVEL", "warn")])?;
    let pid = op.pid();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), op_ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}"));
    let mut changes = watcher(cms, config).applied_objects().boxed();
    let wait_summary = async |changes: &mut futures::stream::BoxStream<'_, Result<ConfigMap, watcher::Error>>,
                              check: &dyn Fn(&Value) -> bool|
           -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let next = tokio::time::timeout_at(deadline.into(), changes.next()).await;
            let Ok(Some(Ok(cm))) = next else { bail!("the ConfigMap never showed the summary") };
            if check(&summary(&cm)) {
                return Ok(());
            }
        }
    };
    wait_summary(&mut changes, &|s| s["storedCount"] == 0).await.context("detection")?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = status_kib(pid, "VmRSS:");

    // 1. 1,000 Applications, 16 requests at a time.
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), argo, &applications());
    let created = Instant::now();
    futures::stream::iter(0..APPS)
        .map(|i| {
            let api = api.clone();
            async move {
                let object: DynamicObject = serde_json::from_value(app(argo, &format!("app-{i:04}"), dest, "Synced"))?;
                api.create(&PostParams::default(), &object).await?;
                Ok::<(), anyhow::Error>(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let wanted = APPS as u64;
    wait_summary(&mut changes, &|s| s["storedCount"].as_u64() == Some(wanted)).await.context("1,000 Applications")?;
    println!("{APPS} Applications created and summarised in {:.1} s", created.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let followed = status_kib(pid, "VmRSS:");
    println!(
        "operator RSS: {:.1} MiB idle with Argo CD detected, {:.1} MiB following {APPS} Applications x {RESOURCES} resources: +{:.1} MiB ({:.2} KiB per Application)",
        idle as f64 / 1024.0,
        followed as f64 / 1024.0,
        followed.saturating_sub(idle) as f64 / 1024.0,
        followed.saturating_sub(idle) as f64 / APPS as f64
    );

    // 2. Status change -> ConfigMap summary.
    let mut delays = Vec::new();
    for round in 0..10 {
        let (sync, out_of_sync) = if round % 2 == 0 { ("OutOfSync", 1) } else { ("Synced", 0) };
        let changed = Instant::now();
        api.patch("app-0500", &PatchParams::default(), &Patch::Merge(json!({"status": {"sync": {"status": sync}}})))
            .await?;
        wait_summary(&mut changes, &|s| s["syncStatusCounts"]["OutOfSync"].as_u64().unwrap_or(0) == out_of_sync)
            .await?;
        delays.push(changed.elapsed());
        // Past the one-second publishing window, so each round starts alike.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    delays.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "Application status change -> ConfigMap summary over {} changes: min {:.0} ms, median {:.0} ms, max {:.0} ms",
        delays.len(),
        ms(delays[0]),
        ms(delays[delays.len() / 2]),
        ms(delays[delays.len() - 1])
    );
    drop(op);

    // 3. The resource tree of an Application with 200 Pods.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "big", "namespace": dest},
        "spec": {"replicas": PODS, "selector": {"matchLabels": {"app": "big"}},
            "template": {"metadata": {"labels": {"app": "big"}},
                "spec": {"nodeSelector": {"kube9.io/bench-node": "none"},
                    "containers": [{"name": "big", "image": "registry.k8s.io/pause:3.10"}]}}}
    }))?;
    Api::<Deployment>::namespaced(client.clone(), dest).create(&PostParams::default(), &deployment).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), dest);
    let deadline = Instant::now() + Duration::from_secs(120);
    while pods.list_metadata(&ListParams::default().labels("app=big")).await?.items.len() < PODS as usize {
        if Instant::now() > deadline {
            bail!("the controller-manager never made {PODS} Pods");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut tree_app = app(argo, "tree", dest, "Synced");
    tree_app["status"]["resources"] = json!([{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": dest,
        "name": "big", "status": "Synced", "health": {"status": "Progressing"}}]);
    api.create(&PostParams::default(), &serde_json::from_value(tree_app)?).await?;
    let mut times = Vec::new();
    let mut nodes = 0;
    for _ in 0..7 {
        let started = Instant::now();
        let output = std::process::Command::new(binary()?)
            .args(["query", "argocd", "resource-tree", "get", "tree", &format!("--namespace={argo}"), "--format=json"])
            .env("KUBECONFIG", kubeconfig_path()?)
            .output()?;
        times.push(started.elapsed());
        if !output.status.success() {
            bail!("resource-tree get failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        let tree: Value = serde_json::from_slice(&output.stdout)?;
        nodes = tree["nodes"].as_array().map_or(0, Vec::len);
    }
    times.sort();
    println!(
        "resource-tree get (whole process) for an Application of {PODS} Pods ({nodes} nodes, {} Applications in the cluster): min {:.0} ms, median {:.0} ms, max {:.0} ms",
        APPS + 1,
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    Ok(())
}
