//! Figures for the pro tier (run with `cargo xtask bench`), each beside a baseline from the
//! same run:
//!
//! 1. the upload payload for a cluster of 2,000 Deployments: its size as the simulator
//!    received it, against the size of the same Deployments as the API server lists them;
//! 2. mapping 1,000 insights back to real names (and ordering them), against only parsing the
//!    server's answer;
//! 3. the delay from `kubectl patch` of an acknowledgement to the simulator receiving it,
//!    against the time `kubectl patch` itself takes.
//!
//! It prints figures; it asserts nothing about them.

use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube9_operator::pro::insights;
use kube9_privacy::names as payload;
use kube9_privacy::{Key, Mapping};
use kube9_server_sim::{Options, Simulator};
use kube9_tests::operator::{Operator, create_namespaces, delete_singleton, operator_status, status_kib};
use kube9_tests::{client, ensure_crds, kubeconfig_path, unique_name, wait_for};
use serde_json::json;

const NAMESPACES: usize = 20;
const DEPLOYMENTS: usize = 2_000;
const KEY: &str = "k9_bench_0123456789";
const ACKS: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    mapping_back();
    let client = client().await?;
    ensure_crds(&client).await?;
    let prefix = unique_name("bench-pro");
    let names: Vec<String> = (0..NAMESPACES).map(|i| format!("{prefix}-{i}")).collect();
    delete_singleton(&client).await;
    let result = run(&client, &names).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in &names {
        let _ = namespaces.delete(ns, &DeleteParams::background()).await;
    }
    delete_singleton(&client).await;
    result
}

/// 2. Mapping back, pure: 1,000 insights about objects among 2,000 mapped names.
fn mapping_back() {
    let key = Key::from_bytes(&[9; 32]).expect("a key");
    let names: Vec<(String, String)> = (0..DEPLOYMENTS)
        .map(|i| ("Deployment".to_owned(), format!("app-{i}")))
        .chain((0..NAMESPACES).map(|i| (payload::NAMESPACE.to_owned(), format!("team-{i}"))))
        .collect();
    let mapping = Mapping::build(&key, names.iter().map(|(k, n)| (k.as_str(), n.as_str())));
    let answer = json!({"insights": (0..1000).map(|i| {
        let name = mapping.mock("Deployment", &format!("app-{i}")).unwrap_or_default().to_owned();
        let ns = mapping.mock(payload::NAMESPACE, &format!("team-{}", i % NAMESPACES)).unwrap_or_default().to_owned();
        let severity = ["critical", "high", "medium", "low"][i % 4];
        json!({"id": format!("ins_{i:016x}"), "object": {"kind": "Deployment", "namespace": ns, "name": name},
            "type": "missing-resource-limits", "severity": severity,
            "title": "Containers without memory limits",
            "text": format!("Deployment {name} in {ns} has containers without memory limits."),
            "recommendation": "Set resources.limits.memory on every container.", "status": "active",
            "createdAt": "2026-11-23T10:00:00Z", "expiresAt": "2026-11-30T10:00:00Z", "confidence": 0.9,
            "generationMethod": "rules"})
    }).collect::<Vec<_>>()})
    .to_string();
    const ROUNDS: u32 = 20;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        let parsed: insights::MetricsAnswer = serde_json::from_str(&answer).expect("the answer parses");
        std::hint::black_box(parsed);
    }
    let parse = started.elapsed() / ROUNDS;
    let started = Instant::now();
    let mut mapped_count = 0;
    for _ in 0..ROUNDS {
        let parsed: insights::MetricsAnswer = serde_json::from_str(&answer).expect("the answer parses");
        let mapped: Vec<_> = parsed.insights.into_iter().map(|i| insights::map_back(i, &mapping)).collect();
        mapped_count = mapped.iter().filter(|i| i.mapped).count();
        std::hint::black_box(insights::order(mapped, 50));
    }
    let total = started.elapsed() / ROUNDS;
    println!(
        "mapping back 1,000 insights ({mapped_count} mapped, {} KiB answer): parse + map + order {:.2} ms; \
         baseline parse only {:.2} ms; mapping and ordering add {:.2} ms ({:.1}x the parse)",
        answer.len() / 1024,
        ms(total),
        ms(parse),
        ms(total.saturating_sub(parse)),
        ms(total) / ms(parse).max(1e-9),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(client: &kube::Client, names: &[String]) -> anyhow::Result<()> {
    create_namespaces(client, names).await?;
    futures::stream::iter(0..DEPLOYMENTS)
        .map(|i| {
            let api: Api<Deployment> = Api::namespaced(client.clone(), &names[i % NAMESPACES]);
            async move {
                let d: Deployment = serde_json::from_value(json!({
                    "metadata": {"name": format!("app-{i}"), "labels": {"app": format!("app-{i}")}},
                    "spec": {"paused": true, "replicas": 2, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                        "template": {"metadata": {"labels": {"app": format!("app-{i}")}}, "spec": {"containers": [{
                            "name": "app", "image": format!("registry.example/app-{i}:1.0"),
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}}
                }))?;
                api.create(&PostParams::default(), &d).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;

    // Baseline: the same Deployments as the API server lists them.
    let mut listed_bytes = 0;
    let deployments: Api<Deployment> = Api::all(client.clone());
    let mut params = ListParams::default().limit(500);
    loop {
        let page = deployments.list(&params).await?;
        listed_bytes += page.items.iter().map(|d| serde_json::to_vec(d).map(|v| v.len()).unwrap_or(0)).sum::<usize>();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }

    // 1. The upload.
    let sim = Simulator::start(Options { tls: true, api_keys: vec![KEY.into()], ..Default::default() }).await?;
    let ca = std::env::temp_dir().join(unique_name("bench-ca"));
    std::fs::write(&ca, sim.ca_pem().unwrap_or_default())?;
    let key = std::env::temp_dir().join(unique_name("bench-key"));
    std::fs::write(&key, KEY)?;
    let fast =
        "clusterMetadata=1h,resourceInventory=1h,configurationPatterns=1h,performanceMetrics=1h,securityPosture=1h";
    let started = Instant::now();
    let op = Operator::start(
        &names[0],
        &[
            "--api-key-file",
            key.to_str().unwrap_or_default(),
            "--server-url",
            &sim.url(),
            "--server-ca-file",
            ca.to_str().unwrap_or_default(),
            "--collection-intervals",
            fast,
            "--retry-initial",
            "1s",
            "--retry-max",
            "2s",
        ],
        &[("KUBE9_LOG_LEVEL", "info")],
    )?;
    // The first runs wait up to a minute (jitter); the upload follows the collections.
    wait_for(Duration::from_secs(180), || async {
        Ok(operator_status(client).await?.is_some_and(|s| !s.insights.is_empty()))
    })
    .await?;
    let to_insights = started.elapsed();
    let (peak, now) = (status_kib(op.pid(), "VmHWM:"), status_kib(op.pid(), "VmRSS:"));
    let upload = sim.requests().into_iter().find(|r| r.path == "/api/metrics").map(|r| r.body.len()).unwrap_or(0);
    let status = operator_status(client).await?.unwrap_or_default();
    println!(
        "upload for {DEPLOYMENTS} Deployments in {NAMESPACES} namespaces: {:.1} KiB received by the simulator \
         (status says {} bytes); baseline: the same Deployments as listed {:.1} KiB; {:.2}x; \
         {} insights kept, {} omitted; operator start to insights in status {:.1} s (includes the collectors' jitter)",
        upload as f64 / 1024.0,
        status.upload.and_then(|u| u.payload_bytes).unwrap_or(0),
        listed_bytes as f64 / 1024.0,
        upload as f64 / listed_bytes.max(1) as f64,
        status.insights.len(),
        status.insights_omitted.unwrap_or(0),
        to_insights.as_secs_f64(),
    );
    println!(
        "operator memory through the five collections and the upload: peak resident {:.1} MiB, {:.1} MiB after",
        peak as f64 / 1024.0,
        now as f64 / 1024.0
    );

    // 3. kubectl patch -> the acknowledgement at the server.
    let kubeconfig = kubeconfig_path()?;
    let mut delays = Vec::new();
    let mut patches = Vec::new();
    for insight in status.insights.iter().take(ACKS) {
        let patch = json!({"spec": {"acknowledgements": {&insight.id: {"state": "acknowledged"}}}}).to_string();
        let sent = SystemTime::now();
        let began = Instant::now();
        let out = std::process::Command::new("kubectl")
            .args(["patch", "operatorstatus", "kube9", "--type", "merge", "-p", &patch])
            .env("KUBECONFIG", &kubeconfig)
            .output()?;
        patches.push(began.elapsed());
        anyhow::ensure!(out.status.success(), "kubectl patch: {}", String::from_utf8_lossy(&out.stderr));
        let id = insight.id.clone();
        wait_for(Duration::from_secs(30), || async { Ok(sim.acknowledgements().iter().any(|a| a.id == id)) }).await?;
        let at = sim.acknowledgements().into_iter().find(|a| a.id == insight.id).map(|a| a.at).unwrap_or(sent);
        delays.push(at.duration_since(sent).unwrap_or_default());
    }
    delays.sort();
    patches.sort();
    if let (Some(first), Some(last)) = (delays.first(), delays.last()) {
        println!(
            "kubectl patch -> acknowledgement at kube9-server, {} patches: median {:.0} ms (min {:.0}, max {:.0}); \
             baseline: kubectl patch itself median {:.0} ms; {:.2}x",
            delays.len(),
            ms(delays[delays.len() / 2]),
            ms(*first),
            ms(*last),
            ms(patches[patches.len() / 2]),
            ms(delays[delays.len() / 2]) / ms(patches[patches.len() / 2]).max(1e-9),
        );
    }
    drop(op);
    Ok(())
}
