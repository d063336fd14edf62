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

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams};
use kube9_operator::pro::insights;
use kube9_privacy::names as payload;
use kube9_privacy::{Key, Mapping};
use kube9_server_sim::{Options, Simulator};
use kube9_tests::bench;
use kube9_tests::operator::{Operator, delete_singleton, operator_status, status_kib};
use kube9_tests::{kubeconfig_path, unique_name, wait_for};
use serde_json::json;

const NAMESPACES: usize = 20;
const DEPLOYMENTS: usize = 2_000;
/// How long the operator idles after its upload before its resident memory is read.
const IDLE_AFTER_UPLOAD_SECONDS: u64 = 30;

const KEY: &str = "k9_bench_0123456789";
const ACKS: usize = 10;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mapping_back();
    bench::run("bench-pro", &bench::numbered(NAMESPACES), async |b| run(&b.client, &b.namespaces).await).await
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
    bench::create::<Deployment>(client, names, DEPLOYMENTS, 16, |i| {
        json!({
            "metadata": {"name": format!("app-{i}"), "labels": {"app": format!("app-{i}")}},
            "spec": {"paused": true, "replicas": 2, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                "template": {"metadata": {"labels": {"app": format!("app-{i}")}}, "spec": {"containers": [{
                    "name": "app", "image": format!("registry.example/app-{i}:1.0"),
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}}
        })
    })
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
    let start = |data_dir: Option<&std::path::Path>| {
        let mut args = vec![
            "--api-key-file".to_owned(),
            key.display().to_string(),
            "--server-url".to_owned(),
            sim.url(),
            "--server-ca-file".to_owned(),
            ca.display().to_string(),
            "--collection-intervals".to_owned(),
            fast.to_owned(),
            "--retry-initial".to_owned(),
            "1s".to_owned(),
            "--retry-max".to_owned(),
            "2s".to_owned(),
        ];
        if let Some(dir) = data_dir {
            args.extend(["--data-dir".to_owned(), dir.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Operator::start(&names[0], &args, &[("KUBE9_LOG_LEVEL", "info")])
    };
    // The chart's way first, the collections in the store, then the baseline: held in memory
    // (no data directory), whose operator stays for the acknowledgements below. Each: start,
    // the five collectors and the upload, then idle.
    let mut memory_figures = Vec::new();
    let mut running = None;
    for data_dir in [Some(std::env::temp_dir().join(unique_name("bench-data"))), None] {
        drop(running.take());
        delete_singleton(client).await;
        let started = Instant::now();
        let op = start(data_dir.as_deref())?;
        // The first runs wait up to a minute (jitter); the upload follows the collections.
        wait_for(Duration::from_secs(180), || async {
            Ok(operator_status(client).await?.is_some_and(|s| !s.insights.is_empty()))
        })
        .await?;
        let to_insights = started.elapsed();
        let peak = status_kib(op.pid(), "VmHWM:");
        tokio::time::sleep(Duration::from_secs(IDLE_AFTER_UPLOAD_SECONDS)).await;
        let idle = status_kib(op.pid(), "VmRSS:");
        memory_figures.push((data_dir.is_some(), peak, idle));
        if let Some(dir) = data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        running = Some((op, to_insights));
    }
    let Some((op, to_insights)) = running else { anyhow::bail!("no run") };
    let upload = sim.requests().into_iter().rev().find(|r| r.path == "/api/metrics").map(|r| r.body.len()).unwrap_or(0);
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
    let baseline_idle = memory_figures.iter().find(|(disk, _, _)| !disk).map_or(1, |(_, _, idle)| *idle).max(1);
    for (on_disk, peak, idle) in &memory_figures {
        println!(
            "operator memory through the five collections and the upload, collections {}: peak resident {:.1} MiB, \
             {:.1} MiB idle {IDLE_AFTER_UPLOAD_SECONDS} s after ({:.2}x the in-memory idle)",
            if *on_disk { "in the store (--data-dir)" } else { "in memory" },
            *peak as f64 / 1024.0,
            *idle as f64 / 1024.0,
            *idle as f64 / baseline_idle as f64,
        );
    }

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
