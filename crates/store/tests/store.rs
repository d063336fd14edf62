//! The store on a real file system: migrations, deduplication, retention, the size budget, a
//! store deleted or made read-only while open, and a reader in another process beside a
//! writer that is killed mid-transaction.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use kube9_store::cli::{self, Args};
use kube9_store::{EventRow, EventType, FILE_NAME, Filter, Limits, Reader, RunRow, Store, Write, schema};
use rusqlite::Connection;

const MINUTE: i64 = 60_000;
const NOW: i64 = 1_780_000_000_000;

fn event(uid: &str, ns: &str, kind: &str, count: i64, last_seen: i64) -> EventRow {
    EventRow {
        id: 0,
        uid: uid.into(),
        event_type: "cluster".into(),
        severity: "warning".into(),
        title: format!("BackOff {kind} {ns}/{uid}"),
        description: "Back-off restarting failed container".into(),
        object_kind: Some(kind.into()),
        object_namespace: Some(ns.into()),
        object_name: Some(format!("obj-{uid}")),
        reason: Some("BackOff".into()),
        count,
        first_seen: last_seen - count * 1000,
        last_seen,
    }
}

fn all(reader: &Reader) -> Vec<EventRow> {
    reader.events(&Filter { limit: 1000, ..Default::default() }).unwrap()
}

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

#[test]
fn an_empty_database_is_migrated_to_the_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Limits::default()).unwrap();
    drop(store);
    let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    assert_eq!(schema::version(&conn).unwrap(), schema::CURRENT);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let reader = Reader::open(dir.path()).unwrap();
    assert!(all(&reader).is_empty());
    assert_eq!(reader.status().unwrap(), None);
}

#[test]
fn a_database_of_the_previous_schema_keeps_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    assert_eq!(schema::migrate_to(&mut conn, schema::CURRENT - 1).unwrap(), 0);
    conn.execute(
        "INSERT INTO events (uid, event_type, severity, title, description, count, first_seen, last_seen)
         VALUES ('old-uid', 'cluster', 'info', 'Pulled', 'pulled the image', 3, 1, 2)",
        [],
    )
    .unwrap();
    drop(conn);
    assert!(Reader::open(dir.path()).is_err(), "a reader does not read an old schema");
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    store
        .write(&[Write::Run(RunRow {
            id: 0,
            assessment: "scheduled".into(),
            outcome: "completed".into(),
            started_at: Some(NOW - 1000),
            finished_at: NOW,
            message: "42 checks".into(),
            summary: r#"{"passing":40,"failing":2}"#.into(),
        })])
        .unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    let events = all(&reader);
    assert_eq!((events.len(), events[0].uid.as_str(), events[0].count), (1, "old-uid", 3));
    let runs = reader.runs(10).unwrap();
    assert_eq!(runs[0].to_json()["summary"]["failing"], 2);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), Limits::default()).unwrap());
    let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    conn.pragma_update(None, "user_version", schema::CURRENT + 1).unwrap();
    drop(conn);
    let err = Store::open(dir.path(), Limits::default()).err().unwrap();
    assert_eq!(err.code(), "store-newer-schema", "{err}");
}

#[test]
fn one_event_updated_many_times_is_one_row_with_the_rising_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    for count in 1..=5 {
        store.write(&[Write::Event(event("u1", "ns", "Pod", count, NOW + count * 1000))]).unwrap();
    }
    // A stale update arriving late lowers nothing.
    store.write(&[Write::Event(event("u1", "ns", "Pod", 2, NOW))]).unwrap();
    let events = all(&Reader::open(dir.path()).unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].count, events[0].last_seen), (5, NOW + 5000));
    assert_eq!(events[0].first_seen, NOW - 2000, "the earliest first occurrence any update gave");
}

#[test]
fn retention_removes_events_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { event_max_age: Duration::from_secs(3600), ..Limits::default() };
    let mut store = Store::open(dir.path(), limits).unwrap();
    let writes: Vec<Write> =
        (0..10).map(|i| Write::Event(event(&format!("u{i}"), "ns", "Pod", 1, NOW - i * 10 * MINUTE))).collect();
    store.write(&writes).unwrap();
    let pruned = store.maintain(NOW).unwrap();
    assert_eq!(pruned.by_age, 3, "60, 70, 80 and 90 minutes old: 3 are older than an hour");
    let left: Vec<String> = all(&Reader::open(dir.path()).unwrap()).into_iter().map(|e| e.uid).collect();
    assert_eq!(left, ["u0", "u1", "u2", "u3", "u4", "u5", "u6"]);
}

#[test]
fn retention_keeps_the_newest_rows_under_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { event_max_rows: 100, run_max_rows: 3, ..Limits::default() };
    let mut store = Store::open(dir.path(), limits).unwrap();
    for batch in 0..3 {
        let writes: Vec<Write> = (0..60)
            .map(|i| {
                let n = batch * 60 + i;
                Write::Event(event(&format!("u{n}"), "ns", "Pod", 1, NOW + n))
            })
            .collect();
        store.write(&writes).unwrap();
        assert!(Reader::open(dir.path()).unwrap().event_count().unwrap() <= 100, "never over the cap after a write");
    }
    for i in 0..5 {
        let run = RunRow {
            id: 0,
            assessment: format!("a{i}"),
            outcome: "completed".into(),
            started_at: None,
            finished_at: NOW + i,
            message: String::new(),
            summary: "{}".into(),
        };
        store.write(&[Write::Run(run)]).unwrap();
    }
    let reader = Reader::open(dir.path()).unwrap();
    let events = all(&reader);
    assert_eq!(events.len(), 100);
    assert_eq!((events[0].uid.as_str(), events[99].uid.as_str()), ("u179", "u80"));
    let runs: Vec<String> = reader.runs(10).unwrap().into_iter().map(|r| r.assessment).collect();
    assert_eq!(runs, ["a4", "a3", "a2"]);
}

fn bytes_on_disk(dir: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(dir.join(format!("{FILE_NAME}{suffix}"))).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn the_size_budget_is_never_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let max_bytes = 2 * 1024 * 1024;
    let limits = Limits { max_bytes, event_max_rows: 1_000_000, ..Limits::default() };
    let mut store = Store::open(dir.path(), limits).unwrap();
    let mut peak = 0;
    for batch in 0..60 {
        let writes: Vec<Write> = (0..200)
            .map(|i| {
                let n = batch * 200 + i;
                let mut e = event(&format!("u{n}"), "ns", "Pod", 1, NOW + n);
                e.description = format!("{n} {}", "x".repeat(600));
                Write::Event(e)
            })
            .collect();
        store.write(&writes).unwrap();
        store.maintain(NOW + 12_000).unwrap();
        peak = peak.max(bytes_on_disk(dir.path()));
        let files: Vec<u64> = ["", "-wal", "-shm"]
            .iter()
            .map(|s| std::fs::metadata(dir.path().join(format!("{FILE_NAME}{s}"))).map_or(0, |m| m.len()))
            .collect();
        assert!(bytes_on_disk(dir.path()) <= max_bytes, "batch {batch}: {} bytes {files:?}", bytes_on_disk(dir.path()));
    }
    let reader = Reader::open(dir.path()).unwrap();
    let kept = reader.event_count().unwrap();
    assert!(kept > 500 && kept < 12_000, "old rows made room for new ones: {kept} kept, peak {peak} bytes");
    assert_eq!(all(&reader)[0].uid, "u11999", "the newest is always kept");
}

#[test]
fn a_deleted_store_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Limits::default()).unwrap();
    store.check().unwrap();
    std::fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
    let err = store.check().unwrap_err();
    assert_eq!(err.code(), "store-gone", "{err}");
    // A new store opens in its place.
    let store = Store::open(dir.path(), Limits::default()).unwrap();
    store.check().unwrap();
}

/// Sets or clears the immutable attribute (read-only even for root) with chattr.
fn immutable(path: &Path, on: bool) {
    let status = Command::new("chattr").arg(if on { "+i" } else { "-i" }).arg(path).status().unwrap();
    assert!(status.success(), "chattr on {}", path.display());
}

#[test]
fn a_store_made_read_only_is_reported_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    store.write(&[Write::Event(event("u1", "ns", "Pod", 1, NOW))]).unwrap();
    let file = dir.path().join(FILE_NAME);
    immutable(&file, true);
    immutable(dir.path(), true);
    let err = store.check().unwrap_err();
    immutable(dir.path(), false);
    immutable(&file, false);
    assert_eq!(err.code(), "store-unwritable", "{err}");
    store.check().unwrap();
    store.write(&[Write::Event(event("u2", "ns", "Pod", 1, NOW))]).unwrap();
    assert_eq!(Reader::open(dir.path()).unwrap().event_count().unwrap(), 2);
}

#[test]
fn a_corrupt_store_is_refused_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FILE_NAME), "this is not a database, it is a text file ".repeat(200)).unwrap();
    let err = Store::open(dir.path(), Limits::default()).err().unwrap();
    assert_eq!(err.code(), "store-corrupt", "{err}");
}

#[test]
fn list_filters_by_namespace_kind_type_and_time_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    let mut own = event("kube9-run-1", "", "Assessment", 1, NOW + 5 * MINUTE);
    own.event_type = EventType::Assessment.as_str().into();
    own.object_namespace = None;
    store
        .write(&[
            Write::Event(event("a", "web", "Pod", 1, NOW)),
            Write::Event(event("b", "web", "Deployment", 1, NOW + MINUTE)),
            Write::Event(event("c", "db", "Pod", 4, NOW + 2 * MINUTE)),
            Write::Event(event("d", "web", "Pod", 1, NOW + 3 * MINUTE)),
            Write::Event(own),
            Write::Status { json: r#"{"tier":"free","health":"healthy"}"#.into(), at_ms: NOW },
        ])
        .unwrap();
    let uids = |args: &[&str]| -> Vec<String> {
        let out = query(dir.path(), args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        doc["events"].as_array().unwrap().iter().map(|e| e["object_name"].as_str().unwrap_or("").to_owned()).collect()
    };
    assert_eq!(uids(&["events", "list", "--object-namespace=web", "--object-kind=Pod"]), ["obj-d", "obj-a"]);
    assert_eq!(uids(&["events", "list", "--since=2026-05-28T20:28:00Z"]).len(), 3);
    assert_eq!(uids(&["events", "list", "--limit=2"]), ["obj-kube9-run-1", "obj-d"]);
    assert_eq!(uids(&["events", "list", "--type=assessment"]), ["obj-kube9-run-1"]);

    let out = query(dir.path(), &["events", "list", "--object-namespace=db", "--format=json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let e = &doc["events"][0];
    let id = e["id"].as_str().unwrap().to_owned();
    for key in [
        "id",
        "event_type",
        "severity",
        "title",
        "description",
        "object_kind",
        "object_namespace",
        "object_name",
        "created_at",
    ] {
        assert!(e.get(key).is_some(), "{key} missing in {e}");
    }
    assert_eq!(e["metadata"]["count"], 4);
    assert_eq!(e["metadata"]["reason"], "BackOff");
    assert_eq!(e["created_at"], e["metadata"]["last_timestamp"]);
    let one = query(dir.path(), &["events", "get", &id]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&one.stdout).unwrap(), *e);

    let missing = query(dir.path(), &["events", "get", "999999"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stdout.is_empty());
    let err: serde_json::Value = serde_json::from_str(&missing.stderr).unwrap();
    assert_eq!((err["ok"].as_bool(), err["code"].as_str()), (Some(false), Some("not-found")));

    let status = query(dir.path(), &["status"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&status.stdout).unwrap()["tier"], "free");
    let table = query(dir.path(), &["events", "list", "--format=table"]);
    assert!(table.stdout.starts_with("ID") && table.stdout.lines().count() == 6, "{}", table.stdout);
}

#[test]
fn a_missing_store_is_an_error_document() {
    let dir = tempfile::tempdir().unwrap();
    let out = query(dir.path(), &["events", "list"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, ""));
    let err: serde_json::Value = serde_json::from_str(&out.stderr).unwrap();
    assert_eq!(err["code"], "store-unavailable");
}

/// The writer of `a_reader_beside_a_writer_killed_mid_write`, run in a child process: writes
/// batches of 500 events until it is killed.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os("KUBE9_STORE_CHILD_DIR") else { return };
    let mut store = Store::open(Path::new(&dir), Limits::default()).unwrap();
    for batch in 0.. {
        let writes: Vec<Write> = (0..500)
            .map(|i| {
                let n = batch * 500 + i;
                let mut e = event(&format!("u{n}"), &format!("ns{}", n % 7), "Pod", 1, NOW + n);
                e.description = "y".repeat(300);
                Write::Event(e)
            })
            .collect();
        store.write(&writes).unwrap();
    }
}

#[test]
fn a_reader_beside_a_writer_killed_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), Limits::default()).unwrap());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env("KUBE9_STORE_CHILD_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reader = Reader::open(dir.path()).unwrap();
    let started = Instant::now();
    let mut last = 0;
    let mut reads = 0;
    // Reads while the other process writes: never blocked, never a partial batch.
    while last < 20_000 {
        assert!(started.elapsed() < Duration::from_secs(120), "the writer wrote only {last} events");
        let count = reader.event_count().unwrap();
        assert!(count >= last && count.is_multiple_of(500), "{count} after {last}");
        let out = query(dir.path(), &["events", "list", "--object-namespace=ns3", "--limit=25"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        last = count;
        reads += 1;
    }
    assert!(reads > 1);
    std::thread::sleep(Duration::from_millis(37));
    child.kill().unwrap(); // SIGKILL, whatever transaction is open
    child.wait().unwrap();
    drop(reader);
    let reader = Reader::open(dir.path()).unwrap();
    let kept = reader.event_count().unwrap();
    assert!(kept >= last && kept.is_multiple_of(500), "every committed batch and no partial one: {kept}");
    let mut store = Store::open(dir.path(), Limits::default()).expect("passes its integrity check");
    store.write(&[Write::Event(event("after", "ns", "Pod", 1, NOW))]).unwrap();
}

#[test]
fn collections_keep_the_newest_per_collector_and_outlive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let row = |collector: &str, at: i64| kube9_store::CollectionRow {
        collector: collector.into(),
        collected_at_ms: at,
        data: format!(r#"{{"at":{at}}}"#),
        words: r#"["checkout"]"#.into(),
    };
    {
        let mut store = Store::open(dir.path(), Limits::default()).unwrap();
        for at in 1..=6 {
            store.put_collection(&row("resourceInventory", NOW + at), 4).unwrap();
        }
        store.put_collection(&row("clusterMetadata", NOW), 4).unwrap();
        assert_eq!(store.collection_summary().unwrap(), (5, Some(NOW + 6)));
    }
    // A new process (the operator restarted) finds them.
    let store = Store::open(dir.path(), Limits::default()).unwrap();
    let latest = store.latest_collections().unwrap();
    assert_eq!(latest, vec![row("clusterMetadata", NOW), row("resourceInventory", NOW + 6)]);
    let listed = Reader::open(dir.path()).unwrap().collections().unwrap();
    assert_eq!(listed.len(), 5);
    assert_eq!((listed[0].0.as_str(), listed[0].1), ("resourceInventory", NOW + 6), "newest first");
}

#[test]
fn two_connections_opening_a_new_store_at_once_migrate_it_once() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let openers: Vec<_> = (0..2)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path, Limits::default()).map(|_| ())
                })
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().unwrap();
        }
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(schema::version(&conn).unwrap(), schema::CURRENT);
    }
}

fn ai_run(run_id: &str, finished_at: i64) -> (kube9_store::AiRunRow, Vec<kube9_store::AiRequirementRow>) {
    let run = kube9_store::AiRunRow {
        id: 0,
        run_id: run_id.into(),
        checklist_version: Some("1.35".into()),
        kubernetes_minor: Some("1.35".into()),
        outcome: "success".into(),
        run_state: "completed".into(),
        trigger: "scheduled".into(),
        started_at: finished_at - 1000,
        finished_at,
        error: None,
        totals: r#"{"totalRequirements":2,"passed":1,"failed":1}"#.into(),
        source_revision: "b2c89690".into(),
    };
    let row = |id: &str, status: &str, evidence: &str| kube9_store::AiRequirementRow {
        requirement: id.into(),
        category: "schedulingOrchestration".into(),
        level: "MUST".into(),
        title: "t".into(),
        status: status.into(),
        rationale: format!("{id} {status}"),
        evidence: evidence.into(),
    };
    (
        run,
        vec![
            row("gang_scheduling", "passed", r#"["Deployment kueue-system/kueue-controller-manager (1/1 ready)"]"#),
            row("cluster_autoscaling", "needs-evidence", "[]"),
        ],
    )
}

#[test]
fn ai_conformance_runs_and_their_requirements_are_queried() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path(), Limits::default()).unwrap();
    let none = query(dir.path(), &["ai-conformance", "latest"]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("not-found"), "{}", none.stderr);
    for i in 0..(kube9_store::ai_conformance::MAX_RUNS + 2) {
        let (run, requirements) = ai_run(&format!("ai-{i}"), NOW + i as i64 * MINUTE);
        store.write(&[Write::AiConformance { run, requirements }]).unwrap();
    }
    let latest = query(dir.path(), &["ai-conformance", "latest"]);
    assert_eq!(latest.code, 0, "{}", latest.stderr);
    let doc: serde_json::Value = serde_json::from_str(&latest.stdout).unwrap();
    assert_eq!(doc["run"]["runId"], format!("ai-{}", kube9_store::ai_conformance::MAX_RUNS + 1));
    assert!(doc["run"]["notice"].as_str().unwrap().contains("not a certification"));
    assert_eq!(doc["run"]["durationMs"], 1000);
    let rows = query(dir.path(), &["ai-conformance", "requirements"]);
    let doc: serde_json::Value = serde_json::from_str(&rows.stdout).unwrap();
    let requirements = doc["requirements"].as_array().unwrap();
    assert_eq!(requirements.len(), 2);
    assert_eq!(requirements[0]["id"], "gang_scheduling");
    assert_eq!(requirements[0]["evidence"][0], "Deployment kueue-system/kueue-controller-manager (1/1 ready)");
    assert_eq!(requirements[1]["status"], "needs-evidence");
    let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
    let count =
        |table: &str| conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("ai_conformance_runs") as u64, kube9_store::ai_conformance::MAX_RUNS, "the oldest runs go");
    assert_eq!(
        count("ai_conformance_requirements") as u64,
        kube9_store::ai_conformance::MAX_RUNS * 2,
        "with their rows"
    );
    let table = query(dir.path(), &["ai-conformance", "requirements", "--format", "table"]);
    assert!(table.stdout.contains("REQUIREMENT") && table.stdout.contains("gang_scheduling"), "{}", table.stdout);
    let missing = query(dir.path(), &["ai-conformance", "requirements", "--run", "999999"]);
    assert!(missing.stderr.contains("not-found"), "{}", missing.stderr);
}
