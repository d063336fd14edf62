//! The store's figures (README.md): events written per second, `query events list --limit=25`
//! latency with 200,000 stored rows against the same query on a store of one row (the
//! baseline, measured in the same run), and the store's size per 100,000 events; a run of
//! 25,299 findings written in batches of 500 and replaced by the next, and `query findings`
//! over it against the same query over a run of 100 findings.
//!
//!     cargo bench -p kube9-store

use std::time::{Duration, Instant};

use clap::Parser;
use kube9_store::cli::{self, Args};
use kube9_store::{CheckRow, EventRow, FindingRow, Limits, RunSummary, Store, Write};

const ROWS: i64 = 200_000;
const BATCH: i64 = 1000;

fn event(n: i64) -> EventRow {
    let ns = format!("team-{}", n % 50);
    EventRow {
        id: 0,
        uid: format!("{:08x}-5e1c-4bb2-9d3a-{n:012x}", n * 7919),
        event_type: "cluster".into(),
        severity: if n % 5 == 0 { "error" } else { "info" }.into(),
        title: format!("BackOff: Pod {ns}/web-{n}"),
        description: format!("Back-off restarting failed container app in pod web-{n}_{ns}(0f9c2d4e-{n})"),
        object_kind: Some(if n % 4 == 0 { "Deployment" } else { "Pod" }.into()),
        object_namespace: Some(ns),
        object_name: Some(format!("web-{n}")),
        reason: Some("BackOff".into()),
        count: 1 + n % 9,
        first_seen: 1_780_000_000_000 + n * 10,
        last_seen: 1_780_000_000_000 + n * 10 + 5,
    }
}

#[derive(Parser)]
struct Query {
    #[command(flatten)]
    args: Args,
}

/// Median time of `query events list --limit=25 <extra>` over 41 runs (each opens the store,
/// as the binary does).
fn latency(dir: &std::path::Path, extra: &[&str]) -> Duration {
    let mut argv = vec!["query", "--data-dir", dir.to_str().unwrap(), "events", "list", "--limit=25", "--format=json"];
    argv.extend_from_slice(extra);
    let args = Query::parse_from(argv).args;
    let mut times: Vec<Duration> = (0..41)
        .map(|_| {
            let started = Instant::now();
            let out = cli::run(&args);
            assert_eq!(out.code, 0, "{}", out.stderr);
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()
}

const CHECKS: [&str; 4] =
    ["security.privileged", "reliability.probes", "cost-optimization.requests", "security.run-as-root"];

fn finding(n: usize) -> FindingRow {
    let check =
        ["security.privileged", "reliability.probes", "cost-optimization.requests", "security.run-as-root"][n % 4];
    FindingRow {
        check_id: check.into(),
        pillar: check.split('.').next().unwrap().into(),
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

/// Writes a run of `n` findings, a batch of 500 per write (as the operator's writer gets them).
fn write_run(store: &mut Store, run_id: &str, n: usize) {
    let begin = Write::RunBegin { assessment: "nightly".into(), run_id: run_id.into(), started_at_ms: 1 };
    store.write(&[begin]).unwrap();
    for start in (0..n).step_by(500) {
        let findings = (start..n.min(start + 500)).map(finding).collect();
        store.write(&[Write::RunFindings { run_id: run_id.into(), findings }]).unwrap();
    }
    let checks = (0..89)
        .map(|i| CheckRow {
            check_id: CHECKS.get(i).map_or_else(|| format!("security.check-{i}"), |id| (*id).to_owned()),
            title: "A check".into(),
            pillar: "security".into(),
            severity: "high".into(),
            state: "failing".into(),
            passed: 10,
            failed: 5,
            exempted: 0,
            remediation: "Fix it in the pod template.".into(),
        })
        .collect();
    let summary = RunSummary {
        run_id: run_id.into(),
        assessment: "nightly".into(),
        started_at: 1,
        completed_at: 2,
        score: 60,
        summary: "{}".into(),
        findings: n as u64,
        checks,
    };
    store.write(&[Write::RunFinish(Box::new(summary))]).unwrap();
}

/// Median time of `query findings --assessment nightly <extra>` over 11 runs.
fn findings_latency(dir: &std::path::Path, extra: &[&str]) -> Duration {
    let mut argv = vec!["query", "--data-dir", dir.to_str().unwrap(), "findings", "--assessment", "nightly"];
    argv.extend_from_slice(extra);
    let args = Query::parse_from(argv).args;
    let mut times: Vec<Duration> = (0..11)
        .map(|_| {
            let started = Instant::now();
            let out = cli::run(&args);
            assert_eq!(out.code, 0, "{}", out.stderr);
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn findings_figures() {
    const FINDINGS: usize = 25_299;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let small = tempfile::tempdir().unwrap();
    write_run(&mut Store::open(small.path(), Limits::default()).unwrap(), "nightly-1", 100);
    let baseline = findings_latency(small.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    let started = Instant::now();
    write_run(&mut store, "nightly-1", FINDINGS);
    let first = started.elapsed();
    let size = bytes(dir.path());
    let started = Instant::now();
    write_run(&mut store, "nightly-2", FINDINGS);
    let replaced = started.elapsed();
    drop(store);
    let page = findings_latency(dir.path(), &[]);
    let all = findings_latency(dir.path(), &["--limit", "100000"]);
    let check = findings_latency(dir.path(), &["--check", "security.privileged", "--namespace", "team-8"]);
    println!(
        "findings: a run of {FINDINGS} written in batches of 500 in {:.0} ms; the next run written and the first's removed in {:.0} ms; {:.1} MiB for one run",
        ms(first),
        ms(replaced),
        size as f64 / 1048576.0
    );
    println!(
        "query findings, {FINDINGS} stored: first page (1000) {:.1} ms, all {:.1} ms, --check and --namespace {:.1} ms; baseline (a run of 100) {:.1} ms; ratios {:.1}, {:.1}, {:.1}",
        ms(page),
        ms(all),
        ms(check),
        ms(baseline),
        ms(page) / ms(baseline),
        ms(all) / ms(baseline),
        ms(check) / ms(baseline)
    );
}

fn main() {
    findings_figures();
    let limits = Limits { max_bytes: 1 << 30, event_max_rows: 1_000_000, ..Limits::default() };
    let base = tempfile::tempdir().unwrap();
    let mut store = Store::open(base.path(), limits).unwrap();
    store.write(&[Write::Event(event(0))]).unwrap();
    let baseline = latency(base.path(), &[]);

    let dir = tempfile::tempdir().unwrap();
    let mut store2 = Store::open(dir.path(), limits).unwrap();
    let started = Instant::now();
    let mut size_100k = 0;
    for batch in 0..ROWS / BATCH {
        let writes: Vec<Write> = (0..BATCH).map(|i| Write::Event(event(batch * BATCH + i))).collect();
        store2.write(&writes).unwrap();
        if (batch + 1) * BATCH == 100_000 {
            size_100k = bytes(dir.path());
        }
    }
    let rate = ROWS as f64 / started.elapsed().as_secs_f64();
    // Updates in place (a repeating Event): the same uids again, counts rising.
    let started = Instant::now();
    for batch in 0..20 {
        let writes: Vec<Write> = (0..BATCH)
            .map(|i| {
                let mut e = event(batch * BATCH + i);
                e.count += 10;
                Write::Event(e)
            })
            .collect();
        store2.write(&writes).unwrap();
    }
    let update_rate = 20_000.0 / started.elapsed().as_secs_f64();
    drop(store2);
    let size = bytes(dir.path());
    let full = latency(dir.path(), &[]);
    let by_ns = latency(dir.path(), &["--object-namespace=team-7"]);
    let by_kind =
        latency(dir.path(), &["--object-namespace=team-8", "--object-kind=Deployment", "--since=2026-05-28T20:26:40Z"]);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("store: {rate:.0} new events/s written, {update_rate:.0} updates in place/s (batches of {BATCH})");
    println!(
        "store: size per 100,000 events: {:.1} MiB (at 100,000: {:.1} MiB; at 200,000: {:.1} MiB)",
        size as f64 / 2.0 / 1048576.0,
        size_100k as f64 / 1048576.0,
        size as f64 / 1048576.0
    );
    println!(
        "query events list --limit=25, 200,000 rows: {:.2} ms median; baseline (1 row) {:.2} ms; ratio {:.2}",
        ms(full),
        ms(baseline),
        ms(full) / ms(baseline)
    );
    println!(
        "  with --object-namespace: {:.2} ms (ratio {:.2}); with namespace, kind and --since: {:.2} ms (ratio {:.2})",
        ms(by_ns),
        ms(by_ns) / ms(baseline),
        ms(by_kind),
        ms(by_kind) / ms(baseline)
    );
}
