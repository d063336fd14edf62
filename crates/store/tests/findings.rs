//! Every finding of an Assessment's latest run, written in batches, and the history of its
//! runs: replacing on a new run, filters, limits, retention, and the query commands.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use kube9_store::cli::{self, Args};
use kube9_store::{CheckRow, FindingFilter, FindingRow, Limits, Reader, RunSummary, Store, Write};
use serde_json::{Value, json};

const NOW: i64 = 1_780_000_000_000;
const DAY: i64 = 86_400_000;

#[derive(Parser)]
struct Query {
    #[command(flatten)]
    args: Args,
}

fn query(dir: &Path, args: &[&str]) -> cli::Outcome {
    let mut argv = vec!["query", "--data-dir", dir.to_str().unwrap()];
    argv.extend_from_slice(args);
    cli::run(&Query::try_parse_from(argv).unwrap().args)
}

fn json_of(outcome: &cli::Outcome) -> Value {
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    serde_json::from_str(&outcome.stdout).unwrap()
}

/// The `n`th finding of a run: checks, pillars, severities and namespaces in rotation.
fn finding(n: usize) -> FindingRow {
    let (check, pillar, severity) = [
        ("security.privileged", "security", "critical"),
        ("reliability.replicas", "reliability", "medium"),
        ("cost-optimization.requests", "cost-optimization", "low"),
    ][n % 3];
    FindingRow {
        check_id: check.into(),
        pillar: pillar.into(),
        severity: severity.into(),
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(format!("ns-{}", n % 4)),
        name: format!("web-{n:05}"),
        container: Some("app".into()),
        message: format!("finding {n}"),
        exempted: n % 10 == 9,
    }
}

fn checks() -> Vec<CheckRow> {
    ["security.privileged", "reliability.replicas", "cost-optimization.requests", "security.host-network"]
        .iter()
        .map(|id| CheckRow {
            check_id: (*id).into(),
            title: format!("title of {id}"),
            pillar: id.split('.').next().unwrap().into(),
            severity: "medium".into(),
            state: if *id == "security.host-network" { "passing" } else { "failing" }.into(),
            passed: 3,
            failed: 7,
            exempted: 1,
            remediation: format!("fix {id}"),
        })
        .collect()
}

fn summary(assessment: &str, run_id: &str, at: i64, findings: u64, score: u8) -> Write {
    Write::RunFinish(Box::new(RunSummary {
        run_id: run_id.into(),
        assessment: assessment.into(),
        started_at: at - 1000,
        completed_at: at,
        score,
        summary: json!({
            "totals": {"passed": 10, "failed": findings, "exempted": 0, "errored": 0},
            "pillars": [{"pillar": "security", "score": score, "totals": {"passed": 1, "failed": 2, "exempted": 0, "errored": 0}}],
        })
        .to_string(),
        findings,
        checks: checks(),
    }))
}

/// Writes a run of `n` findings in batches of `batch`, one write call per batch (as the
/// operator's writer commits them).
fn run(store: &mut Store, assessment: &str, run_id: &str, at: i64, n: usize, batch: usize) {
    store
        .write(&[Write::RunBegin { assessment: assessment.into(), run_id: run_id.into(), started_at_ms: at - 1000 }])
        .unwrap();
    let all: Vec<FindingRow> = (0..n).map(finding).collect();
    for chunk in all.chunks(batch) {
        store.write(&[Write::RunFindings { run_id: run_id.into(), findings: chunk.to_vec() }]).unwrap();
    }
    store.write(&[summary(assessment, run_id, at, n as u64, 70)]).unwrap();
}

fn every(reader: &Reader, assessment: &str) -> kube9_store::FindingsPage {
    reader.findings(&FindingFilter { assessment: assessment.into(), limit: 1_000_000, ..Default::default() }).unwrap()
}

#[test]
fn findings_appended_in_batches_are_all_listed_most_severe_first_exempted_last() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    run(&mut store, "nightly", "nightly-1", NOW, 2500, 300);
    let reader = Reader::open(dir.path()).unwrap();
    let page = every(&reader, "nightly");
    assert_eq!((page.run.run_id.as_str(), page.matching, page.findings.len()), ("nightly-1", 2500, 2500));
    let names: std::collections::HashSet<&str> = page.findings.iter().map(|(f, _)| f.name.as_str()).collect();
    assert_eq!(names.len(), 2500, "each finding once");
    let first_exempted = page.findings.iter().position(|(f, _)| f.exempted).unwrap();
    assert!(page.findings[first_exempted..].iter().all(|(f, _)| f.exempted));
    assert_eq!(page.findings[0].0.severity, "critical");
    assert_eq!(page.findings[0].1.as_deref(), Some("fix security.privileged"), "the check's remediation");
    let ranks: Vec<usize> = page.findings[..first_exempted]
        .iter()
        .map(|(f, _)| ["critical", "high", "medium", "low", "info"].iter().position(|s| *s == f.severity).unwrap())
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "most severe first");
}

#[test]
fn a_new_run_replaces_the_findings_only_once_it_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    run(&mut store, "nightly", "nightly-1", NOW, 40, 7);
    run(&mut store, "other", "other-1", NOW, 5, 7);

    // The second run has begun and written a batch: the first run's findings are still listed.
    store
        .write(&[Write::RunBegin { assessment: "nightly".into(), run_id: "nightly-2".into(), started_at_ms: NOW }])
        .unwrap();
    store.write(&[Write::RunFindings { run_id: "nightly-2".into(), findings: (0..3).map(finding).collect() }]).unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    let page = every(&reader, "nightly");
    assert_eq!((page.run.run_id.as_str(), page.matching), ("nightly-1", 40));

    store.write(&[summary("nightly", "nightly-2", NOW + 1000, 3, 80)]).unwrap();
    let page = every(&reader, "nightly");
    assert_eq!((page.run.run_id.as_str(), page.matching), ("nightly-2", 3));
    assert_eq!(every(&reader, "other").matching, 5, "another Assessment's findings stay");
    let stored: i64 = rusqlite::Connection::open(dir.path().join(kube9_store::FILE_NAME))
        .unwrap()
        .query_row("SELECT count(*) FROM findings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 3 + 5, "the replaced findings are removed");

    // A failed run changes nothing; an incomplete one (a batch lost) keeps the previous.
    store
        .write(&[Write::RunBegin { assessment: "nightly".into(), run_id: "nightly-3".into(), started_at_ms: NOW }])
        .unwrap();
    store.write(&[Write::RunFindings { run_id: "nightly-3".into(), findings: vec![finding(0)] }]).unwrap();
    store.write(&[Write::RunAbort { run_id: "nightly-3".into() }]).unwrap();
    assert_eq!(every(&reader, "nightly").run.run_id, "nightly-2");
    store
        .write(&[Write::RunBegin { assessment: "nightly".into(), run_id: "nightly-4".into(), started_at_ms: NOW }])
        .unwrap();
    store.write(&[Write::RunFindings { run_id: "nightly-4".into(), findings: vec![finding(0)] }]).unwrap();
    store.write(&[summary("nightly", "nightly-4", NOW + 2000, 2, 90)]).unwrap();
    assert_eq!(every(&reader, "nightly").run.run_id, "nightly-2", "a run missing a finding does not replace");
    let history = reader.history("nightly", 30).unwrap();
    let ids: Vec<&str> = history.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["nightly-4", "nightly-2", "nightly-1"], "completed runs only, newest first");
}

#[test]
fn filters_limits_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    run(&mut store, "nightly", "nightly-1", NOW, 120, 50);
    let reader = Reader::open(dir.path()).unwrap();
    let filter = |f: FindingFilter| reader.findings(&FindingFilter { assessment: "nightly".into(), ..f }).unwrap();
    let by_check =
        filter(FindingFilter { check: Some("reliability.replicas".into()), limit: 1000, ..Default::default() });
    assert_eq!(by_check.matching, 40);
    assert!(by_check.findings.iter().all(|(f, _)| f.check_id == "reliability.replicas"));
    let by_pillar = filter(FindingFilter { pillar: Some("security".into()), limit: 1000, ..Default::default() });
    assert_eq!(by_pillar.matching, 40);
    let by_ns = filter(FindingFilter { namespace: Some("ns-1".into()), limit: 1000, ..Default::default() });
    assert_eq!(by_ns.matching, 30);
    assert!(by_ns.findings.iter().all(|(f, _)| f.namespace.as_deref() == Some("ns-1")));
    let both = filter(FindingFilter {
        severity: Some("low".into()),
        namespace: Some("ns-2".into()),
        limit: 1000,
        ..Default::default()
    });
    assert!(
        both.matching > 0
            && both.findings.iter().all(|(f, _)| f.severity == "low" && f.namespace.as_deref() == Some("ns-2"))
    );
    let first = filter(FindingFilter { limit: 10, ..Default::default() });
    assert_eq!((first.matching, first.findings.len()), (120, 10));
    let next = filter(FindingFilter { limit: 10, offset: 10, ..Default::default() });
    let all = filter(FindingFilter { limit: 1000, ..Default::default() });
    assert_eq!(next.findings, all.findings[10..20], "pages follow the same order");
    let name = all.findings[0].0.name.clone();
    let by_text = filter(FindingFilter { text: Some(name.to_ascii_uppercase()), limit: 1000, ..Default::default() });
    let expected = all.findings.iter().filter(|(f, _)| f.name.contains(&name) || f.message.contains(&name)).count();
    assert_eq!(by_text.matching as usize, expected, "the text matches names and messages in any case");
    assert!(by_text.matching > 0 && by_text.matching < all.matching);
    let none = filter(FindingFilter { text: Some("no-such-text-anywhere".into()), limit: 1000, ..Default::default() });
    assert_eq!(none.matching, 0);

    // The command: JSON with the run and the counts, and clear errors.
    let doc = json_of(&query(
        dir.path(),
        &["findings", "--assessment", "nightly", "--pillar", "reliability", "--limit", "5"],
    ));
    assert_eq!(
        (doc["runId"].as_str(), doc["total"].as_u64(), doc["matching"].as_u64()),
        (Some("nightly-1"), Some(120), Some(40))
    );
    assert_eq!(doc["findings"].as_array().unwrap().len(), 5);
    let one = &doc["findings"][0];
    assert_eq!(one["object"]["kind"], "Deployment");
    assert_eq!(one["remediation"], "fix reliability.replicas");
    let table = query(dir.path(), &["findings", "--assessment", "nightly", "--format", "table", "--limit", "3"]);
    assert_eq!(table.code, 0);
    assert_eq!(table.stdout.lines().count(), 2 + 3, "{}", table.stdout);
    let unknown = query(dir.path(), &["findings", "--assessment", "weekly"]);
    assert_eq!(unknown.code, 1);
    let error: Value = serde_json::from_str(&unknown.stderr).unwrap();
    assert_eq!(error["code"], "not-found");
    assert!(error["message"].as_str().unwrap().contains("known: nightly"), "{error}");
    let unknown_check = query(dir.path(), &["findings", "--assessment", "nightly", "--check", "security.nope"]);
    assert_eq!(unknown_check.code, 1, "{}", unknown_check.stderr);
    let bad = Query::try_parse_from(["query", "findings", "--assessment", "a", "--pillar", "safety"]).err().unwrap();
    assert!(bad.to_string().contains("unknown pillar; one of security, reliability"), "{bad}");
    let bad = Query::try_parse_from(["query", "findings", "--assessment", "a", "--severity", "severe"]).err().unwrap();
    assert!(bad.to_string().contains("unknown severity; one of critical, high"), "{bad}");
}

#[test]
fn the_history_keeps_runs_for_its_retention_and_shows_the_trend() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { history_max_age: Duration::from_secs(10 * 86400), history_max_runs: 40, ..Limits::default() };
    let mut store = Store::open(dir.path(), limits).unwrap();
    // 45 daily runs, the oldest 45 days ago: a score rising by one each day.
    for day in 0..45 {
        let at = NOW - (44 - day) * DAY;
        run(&mut store, "nightly", &format!("nightly-{day}"), at, 2, 2);
    }
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(reader.history("nightly", 100).unwrap().len(), 45, "nothing pruned before maintenance");
    let default = json_of(&query(dir.path(), &["assessments", "history", "nightly"]));
    assert_eq!(default["runs"].as_array().unwrap().len(), 30, "30 runs unless asked for more");
    assert_eq!(default["runs"][0]["runId"], "nightly-44", "newest first");
    assert_eq!(default["runs"][0]["checks"].as_array().unwrap().len(), 4, "each check's outcome");
    assert_eq!(default["runs"][0]["pillars"][0]["pillar"], "security");

    store.maintain(NOW).unwrap();
    let kept = reader.history("nightly", 100).unwrap();
    let days: Vec<&str> = kept.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(days.len(), 11, "runs older than the retention are gone: {days:?}");
    assert_eq!(days[0], "nightly-44");
    assert_eq!(every(&reader, "nightly").run.run_id, "nightly-44", "the latest findings stay");
    let conn = rusqlite::Connection::open(dir.path().join(kube9_store::FILE_NAME)).unwrap();
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM assessment_checks WHERE run NOT IN (SELECT id FROM assessment_history)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "check outcomes go with their run");

    // The row cap: the oldest go first, the Assessment whose findings are kept keeps its latest.
    let limits = Limits { history_max_runs: 5, ..limits };
    drop(store);
    let mut store = Store::open(dir.path(), limits).unwrap();
    store.maintain(NOW).unwrap();
    assert_eq!(reader.history("nightly", 100).unwrap().len(), 5);

    let trend = query(
        dir.path(),
        &["assessments", "history", "nightly", "--check", "security.privileged", "--format", "table"],
    );
    assert_eq!(trend.code, 0, "{}", trend.stderr);
    assert_eq!(trend.stdout.lines().count(), 1 + 5, "{}", trend.stdout);
    let missing = query(dir.path(), &["assessments", "history", "weekly"]);
    assert_eq!(missing.code, 1);
}

#[test]
fn a_run_left_unfinished_is_removed_after_a_day_and_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    run(&mut store, "nightly", "nightly-1", NOW, 10, 10);
    store
        .write(&[Write::RunBegin { assessment: "nightly".into(), run_id: "crashed".into(), started_at_ms: NOW }])
        .unwrap();
    store.write(&[Write::RunFindings { run_id: "crashed".into(), findings: (0..20).map(finding).collect() }]).unwrap();
    let count = |dir: &Path| -> i64 {
        rusqlite::Connection::open(dir.join(kube9_store::FILE_NAME))
            .unwrap()
            .query_row("SELECT count(*) FROM findings", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(dir.path()), 30);
    store.maintain(NOW + 2 * DAY).unwrap();
    assert_eq!(count(dir.path()), 10, "the unfinished run's findings are gone after a day");
    store
        .write(&[Write::RunBegin { assessment: "nightly".into(), run_id: "crashed-2".into(), started_at_ms: NOW }])
        .unwrap();
    store
        .write(&[Write::RunFindings { run_id: "crashed-2".into(), findings: (0..20).map(finding).collect() }])
        .unwrap();
    run(&mut store, "nightly", "nightly-2", NOW + 1000, 4, 10);
    assert_eq!(count(dir.path()), 4, "a new run of the same Assessment replaces the leftovers");
    let reader = Reader::open(dir.path()).unwrap();
    assert_eq!(every(&reader, "nightly").run.run_id, "nightly-2");
}

#[test]
fn a_deleted_assessment_loses_its_findings_and_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    run(&mut store, "nightly", "nightly-1", NOW, 25, 10);
    run(&mut store, "other", "other-1", NOW, 5, 10);
    store.write(&[Write::AssessmentDeleted { assessment: "nightly".into() }]).unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    let gone = reader.findings(&FindingFilter { assessment: "nightly".into(), limit: 10, ..Default::default() });
    assert_eq!(gone.unwrap_err().code(), "not-found");
    assert_eq!(every(&reader, "other").matching, 5);
    assert_eq!(reader.history("nightly", 30).unwrap().len(), 1, "the trend stays for its retention");
    let stored: i64 = rusqlite::Connection::open(dir.path().join(kube9_store::FILE_NAME))
        .unwrap()
        .query_row("SELECT count(*) FROM findings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 5);
}

#[test]
fn latest_findings_older_than_the_retention_go_too() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { history_max_age: Duration::from_secs(86400), ..Limits::default() };
    let mut store = Store::open(dir.path(), limits).unwrap();
    run(&mut store, "once", "once-1", NOW - 3 * DAY, 5, 10);
    run(&mut store, "nightly", "nightly-1", NOW, 5, 10);
    store.maintain(NOW).unwrap();
    store.maintain(NOW).unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    assert!(reader.history("once", 30).is_err(), "the run and its findings are gone");
    assert_eq!(every(&reader, "nightly").matching, 5);
}
