//! An Assessment run end to end against the test cluster (run with `cargo xtask bench`):
//! 2,000 Deployments in 20 namespaces, the release operator, a one-off Assessment run three
//! times (by annotation). Prints figures; asserts nothing about them.
//!
//! Baseline, measured in the same run: listing the same kinds page by page with the same
//! client settings, which is the least any assessment of this cluster costs.
//! The Deployments are paused, so the controller manager creates no ReplicaSets or Pods for
//! them and the figures are about 2,000 Deployments, not whatever the controllers are doing.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube9_api::assessment::{Assessment, AssessmentSpec, Phase, RUN_REQUESTED_ANNOTATION};
use kube9_tests::bench;
use kube9_tests::operator::{Operator, status_kib};
use serde_json::json;

const NAMESPACES: usize = 20;
const DEPLOYMENTS: usize = 2_000;
const RUNS: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::run("bench-assess", &bench::numbered(NAMESPACES), async |b| run(&b.client, &b.namespaces, &b.prefix).await)
        .await
}

async fn run(client: &kube::Client, names: &[String], prefix: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    bench::create::<Deployment>(client, names, DEPLOYMENTS, 16, |i| {
        json!({
            "metadata": {"name": format!("app-{i}"), "labels": {"app": format!("app-{i}")}},
            "spec": {"paused": true, "replicas": 2, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                "template": {"metadata": {"labels": {"app": format!("app-{i}")}}, "spec": {"containers": [{
                    "name": "app", "image": format!("registry.example/app-{i}:1.0"),
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "env": [{"name": "MODE", "value": "production"}]}]}}}
        })
    })
    .await?;
    println!(
        "created {DEPLOYMENTS} Deployments in {NAMESPACES} namespaces in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Baseline: list every kind the checks read, 500 per page, as the operator does.
    let kinds = bench::served_kinds(client).await?;
    let mut list_times = Vec::new();
    let mut objects = 0;
    for _ in 0..RUNS {
        let (took, listed) = bench::list_all(client, &kinds).await?;
        list_times.push(took);
        objects = listed;
    }
    list_times.sort();
    let baseline = list_times[RUNS / 2];
    println!(
        "baseline: listing {objects} objects of {} kinds, 500 per page: {:.0} ms (median of {RUNS})",
        kinds.len(),
        baseline.as_secs_f64() * 1e3
    );

    // The operator, idle, then running the Assessment.
    let op = Operator::start(&names[0], &[], &[("KUBE9_LOG_LEVEL", "warn")])?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_peak = status_kib(op.pid(), "VmHWM:");
    let assessments: Api<Assessment> = Api::all(client.clone());
    let name = prefix;
    assessments.create(&PostParams::default(), &Assessment::new(name, AssessmentSpec::default())).await?;
    let mut runs = Vec::new();
    let mut last_run = None;
    for round in 0..RUNS {
        if round > 0 {
            let request = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: round.to_string()}}});
            assessments.patch(name, &PatchParams::default(), &Patch::Merge(&request)).await?;
        }
        let asked = Instant::now();
        let deadline = asked + Duration::from_secs(120);
        let status = loop {
            let status = assessments.get(name).await?.status.unwrap_or_default();
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
