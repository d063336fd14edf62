//! Publishing an Assessment's findings as policy reports (run with `cargo xtask bench`): about
//! 100,000 findings (280 paused Deployments of 25 careless containers each, in 10 namespaces),
//! the release operator with its store, the openreports.io CRDs from their Go module. Prints
//! figures; asserts nothing about them.
//!
//! Baseline, measured in the same run: the same Assessment run by an operator with
//! `--policy-reports=false` (the run, its status and every finding stored, nothing published).
//! Then the operator with reports on runs it twice: the first run creates the reports, the
//! second replaces them. The publication's own time, API writes (applies and deletes), reports
//! and results come from the operator's `policy reports published` log line.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube9_api::assessment::{Assessment, AssessmentSpec, AssessmentStatus, Phase, RUN_REQUESTED_ANNOTATION};
use kube9_tests::bench;
use kube9_tests::gomodules::{self, OPENREPORTS};
use kube9_tests::operator::{DataDir, Operator, status_kib};
use serde_json::{Value, json};

const NAMESPACES: usize = 10;
const DEPLOYMENTS: usize = 280;
const CONTAINERS: usize = 25;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::run("bench-reports", &bench::numbered(NAMESPACES), async |b| run(&b.client, &b.namespaces, &b.prefix).await)
        .await
}

/// Waits for a completed run other than `previous`; returns it and the time from the request.
async fn completed(
    api: &Api<Assessment>,
    name: &str,
    previous: Option<&str>,
) -> anyhow::Result<(AssessmentStatus, Duration)> {
    let asked = Instant::now();
    let deadline = asked + Duration::from_secs(900);
    loop {
        let status = api.get(name).await?.status.unwrap_or_default();
        if matches!(status.phase, Some(Phase::Completed | Phase::Failed))
            && status.run_id.as_deref() != previous
            && status.run_id.is_some()
        {
            anyhow::ensure!(status.phase == Some(Phase::Completed), "the run failed: {:?}", status.conditions);
            return Ok((status, asked.elapsed()));
        }
        anyhow::ensure!(Instant::now() < deadline, "the Assessment did not complete: {:?}", status.phase);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The fields of the operator's last `policy reports published` line.
fn publication(op: &Operator) -> Option<Value> {
    op.logs()
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "policy reports published" || l["message"] == "policy reports published")
        .map(|l| if l["fields"].is_object() { l["fields"].clone() } else { l })
}

async fn run(client: &kube::Client, names: &[String], prefix: &str) -> anyhow::Result<()> {
    gomodules::install(client, &OPENREPORTS).await?;
    let started = Instant::now();
    bench::create::<Deployment>(client, names, DEPLOYMENTS, 16, |i| {
        let containers: Vec<Value> = (0..CONTAINERS)
            .map(|c| {
                json!({"name": format!("c{c}"), "image": format!("shop/app-{c}:latest"),
                "securityContext": {"privileged": true, "allowPrivilegeEscalation": true}})
            })
            .collect();
        json!({
            "metadata": {"name": format!("app-{i}"), "labels": {"app": format!("app-{i}")}},
            "spec": {"paused": true, "replicas": 1, "selector": {"matchLabels": {"app": format!("app-{i}")}},
                "template": {"metadata": {"labels": {"app": format!("app-{i}")}}, "spec": {"containers": containers}}}
        })
    })
    .await?;
    println!(
        "created {DEPLOYMENTS} Deployments of {CONTAINERS} containers in {NAMESPACES} namespaces in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let api: Api<Assessment> = Api::all(client.clone());
    let spec = AssessmentSpec {
        namespaces: Some(kube9_api::assessment::Selection { include: names.to_vec(), exclude: vec![] }),
        ..AssessmentSpec::default()
    };

    // Baseline: the same run without publishing.
    let data = DataDir::new();
    let dir = data.0.to_str().unwrap_or_default().to_owned();
    let baseline_name = format!("{prefix}-baseline");
    let op =
        Operator::start(&names[0], &["--data-dir", &dir, "--policy-reports=false"], &[("KUBE9_LOG_LEVEL", "warn")])?;
    api.create(&PostParams::default(), &Assessment::new(&baseline_name, spec.clone())).await?;
    let (status, baseline) = completed(&api, &baseline_name, None).await?;
    let totals = status.totals.unwrap_or_default();
    let findings = u64::from(totals.failed + totals.exempted);
    println!(
        "baseline: a run with {findings} findings, stored, no reports: {:.1} s from creation to Completed",
        baseline.as_secs_f64()
    );
    let baseline_peak = status_kib(op.pid(), "VmHWM:") as f64 / 1024.0;
    println!("operator peak resident memory without reports: {baseline_peak:.1} MiB");
    drop(op);

    // With reports: the first run creates them, the second replaces them.
    let data = DataDir::new();
    let dir = data.0.to_str().unwrap_or_default().to_owned();
    let op = Operator::start(&names[0], &["--data-dir", &dir], &[("KUBE9_LOG_LEVEL", "kube9_operator=info,warn")])?;
    let name = format!("{prefix}-reports");
    api.create(&PostParams::default(), &Assessment::new(&name, spec)).await?;
    let mut previous = None;
    for round in 1..=2 {
        let asked = Instant::now();
        if round > 1 {
            let request = json!({"metadata": {"annotations": {RUN_REQUESTED_ANNOTATION: round.to_string()}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&request)).await?;
        }
        let (status, completed_after) = completed(&api, &name, previous.as_deref()).await?;
        previous = status.run_id.clone();
        // Completed is written first; the reports are published after it.
        let published = loop {
            let status = api.get(&name).await?.status.unwrap_or_default();
            if let Some(reports) = status.reports.filter(|_| status.run_id == previous) {
                break reports;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let took = asked.elapsed();
        anyhow::ensure!(published.reason.is_none(), "not published: {published:?}");
        let line = publication(&op).unwrap_or_default();
        println!(
            "run {round} with reports: Completed after {:.1} s ({:.2}x the baseline), reports published after {:.1} s; publishing {} results in {} reports took {:.2} s and {} API writes ({} applies, {} deletes)",
            completed_after.as_secs_f64(),
            completed_after.as_secs_f64() / baseline.as_secs_f64(),
            took.as_secs_f64(),
            published.results,
            published.reports,
            line["seconds"].as_f64().unwrap_or(f64::NAN),
            line["writes"],
            published.reports,
            line["deleted"],
        );
    }
    let peak = status_kib(op.pid(), "VmHWM:") as f64 / 1024.0;
    println!(
        "operator peak resident memory with reports: {peak:.1} MiB ({:.2}x the operator without them)",
        peak / baseline_peak
    );
    drop(op);
    Ok(())
}
