//! The fault table (run with `cargo xtask bench`): each fault the operator must survive, how
//! long it took to be writing again, and the peak resident memory, beside the single-process
//! baseline measured in the same run (one operator, idle, no key). The release operator; the
//! test cluster KUBECONFIG names or the local control plane. The API server outage row restarts
//! the local kube-apiserver and is left out on any other cluster.
//!
//! It prints figures; it asserts nothing about them (tests/cluster/faults.rs asserts the bounds).

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube9_api::assessment::{Assessment, AssessmentSpec, Phase, Selection};
use kube9_api::legacy::CONFIGMAP_NAME;
use kube9_api::operator_status::{OperatorStatus, SINGLETON_NAME};
use kube9_server_sim::{Behavior, Options, Simulator};
use kube9_tests::operator::{Operator, delete_singleton, status_kib};
use kube9_tests::{client, ensure_crds, unique_name};
use serde_json::json;

const KEY: &str = "k9_bench_0123456789";

struct Row {
    fault: &'static str,
    recovery: String,
    peak_mib: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = client().await?;
    ensure_crds(&client).await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = unique_name("bench-faults");
    namespaces
        .create(
            &PostParams::default(),
            &Namespace { metadata: ObjectMeta { name: Some(ns.clone()), ..Default::default() }, ..Default::default() },
        )
        .await?;
    delete_singleton(&client).await;
    let result = run(&client, &ns).await;
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    let _ =
        Api::<Assessment>::all(client.clone()).delete_collection(&DeleteParams::default(), &Default::default()).await;
    delete_singleton(&client).await;
    result
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn leader(client: &kube::Client) -> Option<String> {
    let api: Api<OperatorStatus> = Api::all(client.clone());
    api.get_opt(SINGLETON_NAME).await.ok().flatten().and_then(|o| o.status).and_then(|s| s.leader)
}

async fn until(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn shown(took: Option<Duration>) -> String {
    took.map_or_else(|| "not within the bound".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn replica(ns: &str, pod: &str) -> anyhow::Result<Operator> {
    Operator::start(ns, &["--status-interval", "60s"], &[("POD_NAME", pod), ("KUBE9_LOG_LEVEL", "warn")])
}

async fn run(client: &kube::Client, ns: &str) -> anyhow::Result<()> {
    let mut rows = Vec::new();

    // Baseline: one process, idle, 20 s.
    let base = replica(ns, "baseline")?;
    until(Duration::from_secs(30), async || leader(client).await.as_deref() == Some("baseline")).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let baseline = mib(status_kib(base.pid(), "VmHWM:"));
    drop(base);
    delete_singleton(client).await;

    // Leader stopped (SIGTERM) and killed (SIGKILL): the standby writes as leader.
    for (fault, signal) in
        [("leader SIGTERMed (standby writes)", "-TERM"), ("leader SIGKILLed (standby writes)", "-KILL")]
    {
        let a = replica(ns, "replica-a")?;
        until(Duration::from_secs(30), async || leader(client).await.as_deref() == Some("replica-a")).await;
        let b = replica(ns, "replica-b")?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        std::process::Command::new("kill").args([signal, &a.pid().to_string()]).status()?;
        let took = until(Duration::from_secs(30), async || leader(client).await.as_deref() == Some("replica-b")).await;
        rows.push(Row { fault, recovery: shown(took), peak_mib: mib(status_kib(b.pid(), "VmHWM:")) });
        drop((a, b));
        delete_singleton(client).await;
    }

    // kube9-server answers 200 with an endless body.
    let sim = Simulator::start(Options { tls: true, api_keys: vec![KEY.into()], ..Default::default() }).await?;
    sim.set_behavior(Behavior::Endless);
    let ca = std::env::temp_dir().join(unique_name("bench-ca"));
    std::fs::write(&ca, sim.ca_pem().unwrap_or_default())?;
    let key = std::env::temp_dir().join(unique_name("bench-key"));
    std::fs::write(&key, KEY)?;
    let url = sim.url();
    let op = Operator::start(
        ns,
        &[
            "--api-key-file",
            &key.display().to_string(),
            "--server-url",
            &url,
            "--server-ca-file",
            &ca.display().to_string(),
            "--retry-initial",
            "1s",
            "--retry-max",
            "2s",
        ],
        &[("KUBE9_LOG_LEVEL", "warn")],
    )?;
    let statuses: Api<OperatorStatus> = Api::all(client.clone());
    let took = until(Duration::from_secs(30), async || {
        statuses
            .get_opt(SINGLETON_NAME)
            .await
            .ok()
            .flatten()
            .and_then(|o| o.status?.error)
            .is_some_and(|e| e.contains("answer larger than"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    rows.push(Row {
        fault: "kube9-server: 200, endless body (error in status)",
        recovery: shown(took),
        peak_mib: mib(status_kib(op.pid(), "VmHWM:")),
    });
    drop(op);
    drop(sim);
    delete_singleton(client).await;

    // One Assessment, then twenty at once, over 2,000 Deployments.
    deployments(client, ns, 2000).await?;
    for (fault, count) in [("1 Assessment (2,000 Deployments)", 1), ("20 Assessments at once (queued)", 20)] {
        let op = replica(ns, "assessor")?;
        until(Duration::from_secs(30), async || leader(client).await.is_some()).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = status_kib(op.pid(), "VmRSS:");
        let api: Api<Assessment> = Api::all(client.clone());
        let mut names = Vec::new();
        for _ in 0..count {
            let name = unique_name("bench-many");
            let spec = AssessmentSpec {
                namespaces: Some(Selection { include: vec![ns.to_owned()], exclude: vec![] }),
                ..AssessmentSpec::default()
            };
            api.create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
            names.push(name);
        }
        let took = until(Duration::from_secs(600), async || {
            let mut done = 0;
            for name in &names {
                let phase = api.get_opt(name).await.ok().flatten().and_then(|a| a.status?.phase);
                done += usize::from(phase == Some(Phase::Completed));
            }
            done == names.len()
        })
        .await;
        let peak = status_kib(op.pid(), "VmHWM:");
        let mut after = Vec::new();
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_secs(10)).await;
            after.push(mib(status_kib(op.pid(), "VmRSS:")));
        }
        println!(
            "{fault}: idle {:.1} MiB before, peak {:.1} MiB; resident every 10 s for a minute after: {}",
            mib(idle),
            mib(peak),
            after.iter().map(|m| format!("{m:.1}")).collect::<Vec<_>>().join(", ")
        );
        rows.push(Row { fault, recovery: format!("{} (all completed)", shown(took)), peak_mib: mib(peak) });
        for name in names {
            let _ = api.delete(&name, &DeleteParams::default()).await;
        }
        drop(op);
        delete_singleton(client).await;
    }

    // The API server gone for 30 s (only on the local control plane: it restarts it).
    if kube9_tests::apiserver::is_local() {
        let op = replica(ns, "outage")?;
        until(Duration::from_secs(30), async || leader(client).await.is_some()).await;
        let ready = kube9_tests::apiserver::outage(Duration::from_secs(30)).await?;
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        until(Duration::from_secs(10), async || cms.delete(CONFIGMAP_NAME, &DeleteParams::default()).await.is_ok())
            .await;
        until(Duration::from_secs(30), async || cms.get_opt(CONFIGMAP_NAME).await.ok().flatten().is_some()).await;
        rows.push(Row {
            fault: "API server down 30 s (ConfigMap restored after readiness)",
            recovery: format!("{:.2} s", ready.elapsed().as_secs_f64()),
            peak_mib: mib(status_kib(op.pid(), "VmHWM:")),
        });
        drop(op);
        delete_singleton(client).await;
    }

    println!("\n| fault | recovery | peak resident |");
    println!("|---|---|---|");
    println!("| none: one process, idle 20 s (baseline) | — | {baseline:.1} MiB |");
    for row in rows {
        println!("| {} | {} | {:.1} MiB ({:.1}x) |", row.fault, row.recovery, row.peak_mib, row.peak_mib / baseline);
    }
    Ok(())
}

async fn deployments(client: &kube::Client, ns: &str, count: usize) -> anyhow::Result<()> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let made: Vec<anyhow::Result<()>> = futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let d: Deployment = serde_json::from_value(json!({
                    "metadata": {"name": format!("app-{i}"), "labels": {"app": format!("app-{i}")}},
                    "spec": {"paused": true, "replicas": 2, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                        "template": {"metadata": {"labels": {"app": format!("app-{i}")}}, "spec": {"containers": [{
                            "name": "app", "image": format!("registry.example/app-{i}:1.0"),
                            "env": [{"name": "MODE", "value": "production"}]}]}}}
                }))?;
                api.create(&PostParams::default(), &d).await?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    made.into_iter().collect()
}
