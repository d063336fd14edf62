//! The fault table (run with `cargo xtask bench`): each fault the operator must survive, how
//! long it took to be writing again, and the peak resident memory, beside the single-process
//! baseline measured in the same run (one operator, idle, no key). The release operator, each
//! process with its own `--data-dir` as the chart runs it; the test cluster KUBECONFIG names or
//! the local control plane. The API server outage row restarts the local kube-apiserver and is
//! left out on any other cluster.
//!
//! It prints figures; it asserts nothing about them (tests/cluster/faults.rs asserts the bounds).
//! `KUBE9_BENCH_FAULTS=handover,outage` runs only those rows (of handover, endless, assessments,
//! replication, outage) beside the baseline, which always runs; `KUBE9_BENCH_LOG` sets the operators' log filter (default `warn`) and
//! `KUBE9_TEST_SHOW_LOGS=1` prints their logs.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams};
use kube9_api::assessment::{Assessment, AssessmentSpec, Phase, Selection};
use kube9_api::legacy::CONFIGMAP_NAME;
use kube9_api::operator_status::{OperatorStatus, SINGLETON_NAME};
use kube9_server_sim::{Behavior, Options, Simulator};
use kube9_tests::bench;
use kube9_tests::operator::{DataDir, Operator, delete_singleton, status_kib};
use kube9_tests::unique_name;
use serde_json::json;

const KEY: &str = "k9_bench_0123456789";

struct Row {
    fault: &'static str,
    recovery: String,
    peak_mib: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::run("bench-faults", &["op"], async |b| run(&b.client, &b.namespaces[0], &b.prefix).await).await
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

/// One operator process as the chart runs it: its own data directory (the chart's emptyDir),
/// removed after the process is stopped.
struct Replica {
    op: Operator,
    _data: DataDir,
}

impl std::ops::Deref for Replica {
    type Target = Operator;
    fn deref(&self) -> &Operator {
        &self.op
    }
}

fn replica(ns: &str, pod: &str, args: &[&str]) -> anyhow::Result<Replica> {
    let data = DataDir::new();
    let dir = data.0.display().to_string();
    let args = [&["--status-interval", "60s", "--data-dir", &dir], args].concat();
    let log = std::env::var("KUBE9_BENCH_LOG").unwrap_or_else(|_| "warn".into());
    let op = Operator::start(ns, &args, &[("POD_NAME", pod), ("KUBE9_LOG_LEVEL", &log)])?;
    Ok(Replica { op, _data: data })
}

/// Whether `KUBE9_BENCH_FAULTS` (unset: every row) asks for this row; the baseline every
/// ratio is taken against is always measured.
fn wanted(row: &str) -> bool {
    row == "baseline"
        || std::env::var("KUBE9_BENCH_FAULTS").map_or(true, |rows| rows.split(',').any(|r| r.trim() == row))
}

/// Resets the process's peak resident set (`VmHWM`) to its current resident set, so that a
/// later peak is the peak of what came after (Linux `clear_refs`, 5).
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

async fn run(client: &kube::Client, ns: &str, prefix: &str) -> anyhow::Result<()> {
    let mut rows = Vec::new();

    // Baseline: one process, idle, 20 s.
    let mut baseline = f64::NAN;
    if wanted("baseline") {
        let base = replica(ns, "baseline", &[])?;
        until(Duration::from_secs(30), async || leader(client).await.as_deref() == Some("baseline")).await;
        tokio::time::sleep(Duration::from_secs(20)).await;
        baseline = mib(status_kib(base.pid(), "VmHWM:"));
        drop(base);
        delete_singleton(client).await;
    }

    // Leader stopped (SIGTERM) and killed (SIGKILL): the standby writes as leader.
    let signals = [("leader SIGTERMed (standby writes)", "-TERM"), ("leader SIGKILLed (standby writes)", "-KILL")];
    for (fault, signal) in signals.into_iter().filter(|_| wanted("handover")) {
        let a = replica(ns, "replica-a", &[])?;
        until(Duration::from_secs(30), async || leader(client).await.as_deref() == Some("replica-a")).await;
        let b = replica(ns, "replica-b", &[])?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        std::process::Command::new("kill").args([signal, &a.pid().to_string()]).status()?;
        let took = until(Duration::from_secs(30), async || leader(client).await.as_deref() == Some("replica-b")).await;
        rows.push(Row { fault, recovery: shown(took), peak_mib: mib(status_kib(b.pid(), "VmHWM:")) });
        drop((a, b));
        delete_singleton(client).await;
    }

    // kube9-server answers 200 with an endless body.
    if wanted("endless") {
        let sim = Simulator::start(Options { tls: true, api_keys: vec![KEY.into()], ..Default::default() }).await?;
        sim.set_behavior(Behavior::Endless);
        let ca = std::env::temp_dir().join(unique_name("bench-ca"));
        std::fs::write(&ca, sim.ca_pem().unwrap_or_default())?;
        let key = std::env::temp_dir().join(unique_name("bench-key"));
        std::fs::write(&key, KEY)?;
        let url = sim.url();
        let op = replica(
            ns,
            "endless",
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
    }

    // One Assessment, then twenty at once, over 2,000 Deployments, in one process: each batch
    // measured against the idle level just before it (the same allocator state for both).
    if wanted("assessments") {
        deployments(client, ns, 2000).await?;
        let op = replica(ns, "assessor", &[])?;
        until(Duration::from_secs(30), async || leader(client).await.is_some()).await;
        let started = status_kib(op.pid(), "VmRSS:");
        // The pre-run level is the operator's idle once each collector has run (each starts
        // within a minute of the process, and over these 2,000 Deployments they are large
        // work of their own): measured from the start, their first runs would fall inside the
        // run's minute and be counted against it.
        let collected = until(Duration::from_secs(120), async || {
            let metrics = op.get("/metrics").await.map(|(_, body)| body).unwrap_or_default();
            metrics.lines().filter(|l| l.starts_with("kube9_collections_total{")).count() >= 5
        })
        .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        println!(
            "assessor: resident {:.1} MiB once leading, {:.1} MiB once every collector had run (after {})",
            mib(started),
            mib(status_kib(op.pid(), "VmRSS:")),
            shown(collected)
        );
        let api: Api<Assessment> = Api::all(client.clone());
        let mut rises = Vec::new();
        for (fault, count) in [("1 Assessment (2,000 Deployments)", 1), ("20 Assessments at once (queued)", 20)] {
            let idle = status_kib(op.pid(), "VmRSS:");
            // The peak from here on is this batch's.
            reset_peak(op.pid());
            let mut names = Vec::new();
            for i in 0..count {
                // Named after the bench, so its clean-up finds them whatever ends the run.
                let name = format!("{prefix}-{count}-{i}");
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
            let rise = mib(peak) - mib(idle);
            rises.push(rise);
            println!(
                "{fault}: idle {:.1} MiB before, peak {:.1} MiB (+{rise:.1}{}); resident every 10 s for a minute after: {} ({:+.1} MiB at the minute; target within 10)",
                mib(idle),
                mib(peak),
                if rises.len() > 1 {
                    format!(", {:.2}x one run's rise; target 1.5x", rise / rises[0])
                } else {
                    String::new()
                },
                after.iter().map(|m| format!("{m:.1}")).collect::<Vec<_>>().join(", "),
                after.last().copied().unwrap_or_default() - mib(idle)
            );
            rows.push(Row { fault, recovery: format!("{} (all completed)", shown(took)), peak_mib: mib(peak) });
            for name in names {
                let _ = api.delete(&name, &DeleteParams::default()).await;
            }
        }
        drop(op);
        delete_singleton(client).await;
    }

    // Two replicas replicating: how long after the leader has a run's findings the standby's
    // own copy holds them, and what the new leader lists once the old one is killed.
    if wanted("replication") {
        let token = std::env::temp_dir().join(unique_name("bench-token"));
        std::fs::write(&token, unique_name("a-bench-replication-token"))?;
        let started = |pod: &str| -> anyhow::Result<(Operator, DataDir)> {
            let data = DataDir::new();
            let dir = data.0.display().to_string();
            let addr = format!("127.0.0.1:{}", kube9_tests::operator::free_port()?);
            let log = std::env::var("KUBE9_BENCH_LOG").unwrap_or_else(|_| "warn".into());
            let op = Operator::start(
                ns,
                &["--status-interval", "60s", "--data-dir", &dir],
                &[
                    ("POD_NAME", pod),
                    ("KUBE9_LOG_LEVEL", &log),
                    ("KUBE9_REPLICATION_ADDR", &addr),
                    ("KUBE9_REPLICATION_TOKEN_FILE", &token.display().to_string()),
                ],
            )?;
            Ok((op, data))
        };
        let (a, data_a) = started("replica-a")?;
        until(Duration::from_secs(30), async || leader(client).await.as_deref() == Some("replica-a")).await;
        let (b, data_b) = started("replica-b")?;
        until(Duration::from_secs(60), async || b.get("/readyz").await.is_ok_and(|(code, _)| code == 200)).await;
        // The assessments row leaves its Deployments in the namespace; alone, this row makes some.
        if !wanted("assessments") {
            deployments(client, ns, 200).await?;
        }
        let api: Api<Assessment> = Api::all(client.clone());
        let name = unique_name("bench-replicated");
        let spec = AssessmentSpec {
            namespaces: Some(Selection { include: vec![ns.to_owned()], exclude: vec![] }),
            ..AssessmentSpec::default()
        };
        api.create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
        let run_in = |dir: &std::path::Path| -> Option<(String, u64)> {
            let filter = kube9_store::FindingFilter { assessment: name.clone(), limit: 1, ..Default::default() };
            kube9_store::Reader::open(dir).and_then(|r| r.findings(&filter)).ok().map(|p| (p.run.run_id, p.matching))
        };
        let written = until(Duration::from_secs(120), async || run_in(&data_a.0).is_some()).await;
        let lag = if written.is_some() {
            until(Duration::from_secs(30), async || {
                run_in(&data_b.0).is_some() && run_in(&data_b.0) == run_in(&data_a.0)
            })
            .await
        } else {
            None
        };
        rows.push(Row {
            fault: "replication lag (leader's findings in its store → in the standby's copy)",
            recovery: shown(lag),
            peak_mib: mib(status_kib(b.pid(), "VmHWM:")),
        });
        let before = run_in(&data_a.0);
        std::process::Command::new("kill").args(["-KILL", &a.pid().to_string()]).status()?;
        let took = until(Duration::from_secs(30), async || leader(client).await.as_deref() == Some("replica-b")).await;
        let after = run_in(&data_b.0);
        let kept = match (&before, &after) {
            (Some((run, n)), Some((run_after, m))) if run == run_after => {
                format!("{m} of {n} findings of the last run")
            }
            _ => format!("lost: before {before:?}, after {after:?}"),
        };
        rows.push(Row {
            fault: "leader SIGKILLed with replication (the new leader's store)",
            recovery: format!("{}; {kept}", shown(took)),
            peak_mib: mib(status_kib(b.pid(), "VmHWM:")),
        });
        drop((a, b));
        let _ = api.delete(&name, &DeleteParams::default()).await;
        let _ = std::fs::remove_file(&token);
        delete_singleton(client).await;
    }

    // The API server gone for 30 s (only on the local control plane: it restarts it).
    if kube9_tests::apiserver::is_local() && wanted("outage") {
        let op = replica(ns, "outage", &[])?;
        until(Duration::from_secs(30), async || leader(client).await.is_some()).await;
        let ready = kube9_tests::apiserver::outage(Duration::from_secs(30)).await?;
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        until(Duration::from_secs(10), async || cms.delete(CONFIGMAP_NAME, &DeleteParams::default()).await.is_ok())
            .await;
        // The deletion's own time is the API server's (and this client's reconnection), shown
        // apart from the operator's.
        let deleted = ready.elapsed();
        until(Duration::from_secs(30), async || cms.get_opt(CONFIGMAP_NAME).await.ok().flatten().is_some()).await;
        let restored = ready.elapsed();
        rows.push(Row {
            fault: "API server down 30 s (ConfigMap restored after readiness)",
            recovery: format!(
                "{:.2} s (deleted {:.2} s after readiness, restored {:.2} s after that)",
                restored.as_secs_f64(),
                deleted.as_secs_f64(),
                (restored - deleted).as_secs_f64()
            ),
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
    bench::create::<Deployment>(client, &[ns.to_owned()], count, 16, |i| {
        json!({
            "metadata": {"name": format!("app-{i}"), "labels": {"app": format!("app-{i}")}},
            "spec": {"paused": true, "replicas": 2, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                "template": {"metadata": {"labels": {"app": format!("app-{i}")}}, "spec": {"containers": [{
                    "name": "app", "image": format!("registry.example/app-{i}:1.0"),
                    "env": [{"name": "MODE", "value": "production"}]}]}}}
        })
    })
    .await
}
