//! Figures for the operator against the test cluster (run with `cargo xtask bench`):
//!
//! 1. the delay from a registration outcome (the simulator's answer) to the ConfigMap
//!    showing the new standing, over several flips between accepted and failing;
//! 2. resident memory and CPU of the operator idling without a key for
//!    `KUBE9_BENCH_IDLE_SECONDS` (default 120), beside the same figures for the
//!    kube-apiserver it talks to, measured over the same window.
//!
//! It prints figures; it asserts nothing about them.

use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube9_api::legacy::{CONFIGMAP_KEY, CONFIGMAP_NAME};
use kube9_server_sim::{Behavior, Options, Simulator};
use kube9_tests::bench;
use kube9_tests::operator::{Operator, status_kib};
use kube9_tests::unique_name;

const KEY: &str = "k9_bench_0123456789";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::run("bench", &["op"], async |b| run(&b.client, &b.namespaces[0]).await).await
}

async fn run(client: &kube::Client, ns: &str) -> anyhow::Result<()> {
    // 1. Registration outcome -> ConfigMap.
    let sim = Simulator::start(Options {
        tls: true,
        api_keys: vec![KEY.into()],
        reregistration_interval_hours: 1.0 / 3600.0,
        ..Default::default()
    })
    .await?;
    let ca = std::env::temp_dir().join(unique_name("bench-ca"));
    std::fs::write(&ca, sim.ca_pem().unwrap_or_default())?;
    let key = std::env::temp_dir().join(unique_name("bench-key"));
    std::fs::write(&key, KEY)?;
    let op = Operator::start(
        ns,
        &[
            "--api-key-file",
            &key.display().to_string(),
            "--server-url",
            &sim.url(),
            "--server-ca-file",
            &ca.display().to_string(),
            "--retry-initial",
            "1s",
            "--retry-max",
            "1s",
        ],
        &[("KUBE9_LOG_LEVEL", "warn")],
    )?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}"));
    let mut changes = watcher(api, config).applied_objects().boxed();
    let health_of = |cm: &ConfigMap| {
        cm.data
            .as_ref()
            .and_then(|d| d.get(CONFIGMAP_KEY))
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
            .and_then(|v| v["health"].as_str().map(str::to_owned))
    };
    let mut delays = Vec::new();
    for round in 0..8 {
        let (behavior, want) = if round % 2 == 0 {
            (Behavior::ServerError { status: 500 }, "degraded")
        } else {
            (Behavior::Accept, "healthy")
        };
        let flipped = SystemTime::now();
        sim.set_behavior(behavior);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(deadline.into(), changes.next()).await;
            let Ok(Some(Ok(cm))) = next else { anyhow::bail!("the ConfigMap never showed {want}") };
            if health_of(&cm).as_deref() == Some(want) {
                let seen = SystemTime::now();
                // The first answer given under the new behaviour.
                let answered = sim.requests().iter().map(|r| r.at).filter(|at| *at >= flipped).min().unwrap_or(flipped);
                delays.push(seen.duration_since(answered).unwrap_or_default());
                break;
            }
        }
    }
    drop(op);
    drop(sim);
    delays.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "registration outcome -> ConfigMap (watch) over {} flips: min {:.0} ms, median {:.0} ms, max {:.0} ms",
        delays.len(),
        ms(delays[0]),
        ms(delays[delays.len() / 2]),
        ms(delays[delays.len() - 1])
    );

    // 2. Idle footprint without a key, next to the API server's over the same window.
    let seconds: u64 = std::env::var("KUBE9_BENCH_IDLE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let op = Operator::start(ns, &[], &[("KUBE9_LOG_LEVEL", "warn")])?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = op.pid();
    let apiserver = apiserver_pid();
    let start = (cpu_ticks(pid), apiserver.map(cpu_ticks));
    let started = Instant::now();
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        peak = peak.max(status_kib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let tick = 100.0; // USER_HZ on Linux
    let cpu = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / tick / wall * 100.0;
    let op_cpu = cpu(start.0, cpu_ticks(pid));
    let op_rss = status_kib(pid, "VmRSS:");
    println!(
        "operator idle over {seconds} s: RSS {:.1} MiB now, {:.1} MiB peak; CPU {:.3} % of one core",
        op_rss as f64 / 1024.0,
        peak as f64 / 1024.0,
        op_cpu
    );
    println!("  against the 20 MiB target: {:.2}x", peak as f64 / 1024.0 / 20.0);
    if let (Some(api_pid), Some(api_start)) = (apiserver, start.1) {
        let api_cpu = cpu(api_start, cpu_ticks(api_pid));
        let api_rss = status_kib(api_pid, "VmRSS:");
        println!(
            "kube-apiserver over the same window: RSS {:.1} MiB, CPU {:.3} %; operator/apiserver RSS ratio {:.3}",
            api_rss as f64 / 1024.0,
            api_cpu,
            op_rss as f64 / api_rss.max(1) as f64
        );
    }
    drop(op);
    Ok(())
}

/// utime + stime, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15 (1-based over the whole line).
    let at = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    at(14) + at(15)
}

/// The kube-apiserver the test cluster runs, if it is a local process.
fn apiserver_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).find(|pid| {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == "kube-apiserver"))
    })
}
