//! Figures for kube9-ui (run with `cargo xtask bench`), on the release binary against the test
//! cluster, each beside a baseline measured in the same run:
//!
//! 1. time to the first byte of the Overview (the real operator's OperatorStatus), beside a
//!    plain GET of that OperatorStatus from the API server;
//! 2. the first rendered findings page (50 findings) of an Assessment whose latest run stored
//!    100,000 findings, beside the `kube9-operator query findings --limit 50` the page runs;
//! 3. the bytes of the Overview (the page, its script and its stylesheet) and the number of
//!    references to anything outside the UI (the CSP forbids them; 0 expected);
//! 4. the UI's resident memory idle, and at its peak while 5 pages follow live updates (5
//!    server-sent event streams, each page fetched again on every change, 20 changes), beside
//!    the idle operator's (the same binary).
//!
//! It prints figures; it asserts nothing about them.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube9_api::assessment::{Assessment, AssessmentSpec};
use kube9_api::operator_status::{OperatorStatus, SINGLETON_NAME};
use kube9_store::{CheckRow, FindingRow, Limits, RunSummary, Store, Write};
use kube9_tests::bench;
use kube9_tests::browser::Ui;
use kube9_tests::operator::{DataDir, Operator, Peak, binary, status_kib};
use kube9_tests::{kubeconfig_path, wait_for};
use serde_json::json;

const FINDINGS: usize = 100_000;
const PAGES: usize = 5;
const CHANGES: usize = 20;

fn finding(n: usize) -> FindingRow {
    let check =
        ["security.privileged", "reliability.probes", "cost-optimization.requests", "security.run-as-root"][n % 4];
    FindingRow {
        check_id: check.into(),
        pillar: check.split('.').next().unwrap_or_default().into(),
        severity: ["critical", "medium", "low", "high"][n % 4].into(),
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(format!("team-{}", n % 50)),
        name: format!("web-{}", n / 4),
        container: Some("app".into()),
        message: format!("container app of web-{} runs privileged", n / 4),
        exempted: false,
    }
}

/// A store holding one completed run of `assessment` with [`FINDINGS`] findings.
fn fill(dir: &std::path::Path, assessment: &str) -> Result<()> {
    let mut store = Store::open(dir, Limits::default())?;
    let run_id = "bench-run";
    store.write(&[Write::RunBegin { assessment: assessment.into(), run_id: run_id.into(), started_at_ms: 1 }])?;
    for start in (0..FINDINGS).step_by(500) {
        let findings = (start..FINDINGS.min(start + 500)).map(finding).collect();
        store.write(&[Write::RunFindings { run_id: run_id.into(), findings }])?;
    }
    let checks = ["security.privileged", "reliability.probes", "cost-optimization.requests", "security.run-as-root"]
        .iter()
        .map(|id| CheckRow {
            check_id: (*id).into(),
            title: "A check".into(),
            pillar: id.split('.').next().unwrap_or_default().into(),
            severity: "high".into(),
            state: "failing".into(),
            passed: 0,
            failed: (FINDINGS / 4) as u32,
            exempted: 0,
            remediation: "Fix it in the pod template.".into(),
        })
        .collect();
    let summary = RunSummary {
        run_id: run_id.into(),
        assessment: assessment.into(),
        started_at: 1,
        completed_at: 2,
        score: 40,
        summary: "{}".into(),
        findings: FINDINGS as u64,
        checks,
    };
    store.write(&[Write::RunFinish(Box::new(summary))])?;
    Ok(())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    bench::run("ui-bench", &["op"], async |b: &bench::Bench| {
        let ns = &b.namespaces[0];
        let operator_data = DataDir::new();
        let mut op = Operator::start(ns, &["--data-dir", operator_data.0.to_str().unwrap_or_default()], &[])?;
        let statuses: Api<OperatorStatus> = Api::all(b.client.clone());
        wait_for(Duration::from_secs(60), || async {
            Ok(statuses.get_opt(SINGLETON_NAME).await?.and_then(|o| o.status).is_some_and(|s| s.health.is_some()))
        })
        .await
        .with_context(|| op.logs())?;

        // The Assessment the UI lists, and a store holding 100,000 findings of its latest run.
        let assessment = format!("{}-nightly", b.prefix);
        let spec = AssessmentSpec { suspend: true, ..AssessmentSpec::default() };
        Api::<Assessment>::all(b.client.clone())
            .create(&PostParams::default(), &Assessment::new(&assessment, spec))
            .await?;
        let store = DataDir::new();
        let filled = Instant::now();
        fill(&store.0, &assessment)?;
        println!("ui: a store with {FINDINGS} findings written in {:.1} s", filled.elapsed().as_secs_f64());

        let ui = Ui::start(&["--data-dir", store.0.to_str().unwrap_or_default()], &kubeconfig_path()?)?;
        let http = reqwest::Client::new();
        let overview = format!("{}/c/0/", ui.url);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_kib = status_kib(ui.pid(), "VmRSS:");

        // 1. Time to first byte of the Overview, beside a GET of the OperatorStatus.
        let mut ttfb = Vec::new();
        let mut api = Vec::new();
        for _ in 0..21 {
            let start = Instant::now();
            let response = http.get(&overview).send().await?;
            ttfb.push(start.elapsed());
            let _ = response.bytes().await?;
            let start = Instant::now();
            statuses.get(SINGLETON_NAME).await?;
            api.push(start.elapsed());
        }
        println!(
            "ui: Overview time to first byte {:.1} ms (median of 21); baseline GET of the OperatorStatus {:.1} ms",
            ms(median(ttfb)),
            ms(median(api))
        );

        // 2. The first findings page with 100,000 stored, beside the query it runs.
        let findings = format!("{}/c/0/findings?assessment={assessment}", ui.url);
        let mut page = Vec::new();
        let mut query = Vec::new();
        let mut matching = String::new();
        for _ in 0..11 {
            let start = Instant::now();
            let body = http.get(&findings).send().await?.text().await?;
            page.push(start.elapsed());
            matching = body
                .split("data-field=\"matching\">")
                .nth(1)
                .and_then(|r| r.split('<').next())
                .unwrap_or_default()
                .to_owned();
            let start = Instant::now();
            let out = std::process::Command::new(binary()?)
                .args(["query", "--data-dir", store.0.to_str().unwrap_or_default(), "findings"])
                .args(["--assessment", &assessment, "--limit", "50", "--format", "json"])
                .output()?;
            query.push(start.elapsed());
            if !out.status.success() {
                bail!("query findings failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
        println!(
            "ui: first findings page (50 of {matching} stored) {:.1} ms (median of 11); baseline `query findings --limit 50` {:.1} ms",
            ms(median(page)),
            ms(median(query))
        );

        // 3. The Overview's bytes, and references to anything outside the UI.
        let html = http.get(&overview).send().await?.text().await?;
        let js = http.get(format!("{}/assets/app.js", ui.url)).send().await?.bytes().await?.len();
        let css = http.get(format!("{}/assets/style.css", ui.url)).send().await?.bytes().await?.len();
        let external = ["src=\"http", "href=\"http", "url(http", "src=\"//", "href=\"//"]
            .iter()
            .map(|p| html.matches(p).count())
            .sum::<usize>();
        println!(
            "ui: Overview {} bytes (page {} + script {js} + stylesheet {css}); references outside the UI: {external}",
            html.len() + js + css,
            html.len()
        );

        // 4. Memory: idle, then 5 live pages through 20 changes; the idle operator as baseline.
        let operator_kib = status_kib(op.pid(), "VmRSS:");
        let peak = Peak::sample(ui.pid(), "VmRSS:");
        let mut streams = Vec::new();
        for _ in 0..PAGES {
            let response = http.get(format!("{}/c/0/live", ui.url)).send().await?;
            streams.push(response);
        }
        let followers: Vec<_> = streams
            .into_iter()
            .map(|mut stream| {
                let (http, overview) = (http.clone(), overview.clone());
                tokio::spawn(async move {
                    let mut pages = 0;
                    while let Ok(Some(chunk)) = stream.chunk().await {
                        if chunk.windows(12).any(|w| w == b"event: chang") {
                            if let Ok(r) = http.get(&overview).send().await {
                                let _ = r.bytes().await;
                            }
                            pages += 1;
                        }
                    }
                    pages
                })
            })
            .collect();
        let assessments: Api<Assessment> = Api::all(b.client.clone());
        for i in 0..CHANGES {
            let patch = json!({"metadata": {"annotations": {"kube9.io/bench": i.to_string()}}});
            assessments.patch(&assessment, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let live_kib = status_kib(ui.pid(), "VmRSS:");
        let peak_kib = peak.stop()?;
        drop(ui);
        let mut fetched = 0;
        for f in followers {
            fetched += f.await.unwrap_or(0);
        }
        println!(
            "ui: resident memory idle {:.1} MiB; with {PAGES} live pages through {CHANGES} changes ({fetched} page loads) {:.1} MiB, peak {:.1} MiB; baseline (the operator, the same binary, idle) {:.1} MiB",
            idle_kib as f64 / 1024.0,
            live_kib as f64 / 1024.0,
            peak_kib as f64 / 1024.0,
            operator_kib as f64 / 1024.0
        );
        let _ = op.terminate();
        Ok(())
    })
    .await
}
