//! Figures for the event history against the test cluster (run with `cargo xtask bench`), on
//! the release operator with a fresh data directory and no API key:
//!
//! 1. its resident memory idle for `KUBE9_BENCH_EVENTS_IDLE_SECONDS` (default 20) — the
//!    baseline, measured in the same run;
//! 2. its resident memory and CPU while this process creates and updates core/v1 Events
//!    through the API server at a steady `KUBE9_BENCH_EVENTS_RATE` per second (default 50) for
//!    `KUBE9_BENCH_EVENTS_SECONDS` (default 60): new Events and repeated occurrences (count + 1)
//!    of recent ones, in four namespaces, about Pods, ReplicaSets, Deployments, Jobs and
//!    PersistentVolumeClaims;
//! 3. ingestion: the rows the store holds for those namespaces against the Events created,
//!    the counts against the occurrences sent, the delay from the last API write to the real
//!    `kube9-operator query events list` showing it, and the writes ingested per second.
//!
//! It prints figures; it asserts nothing about them.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube9_tests::bench;
use kube9_tests::operator::{DataDir, Operator, binary, status_kib};
use kube9_tests::wait_for;
use serde_json::{Value, json};

/// Namespaces the Events are about.
const NAMESPACES: usize = 4;
/// A new Event for this share of the writes; the rest are repeats (count + 1).
const NEW_SHARE: f64 = 0.4;
/// Repeats go to one of the most recent this many Events (a working set, as a kubelet's
/// BackOff repeats about the Pods failing now).
const WORKING_SET: usize = 300;
/// RSS is sampled this often.
const SAMPLE: Duration = Duration::from_millis(250);

/// (apiVersion, kind, type, reason, message): `{o}` is the object's name, `{ns}` its namespace.
const MIX: &[(&str, &str, &str, &str, &str)] = &[
    ("v1", "Pod", "Normal", "Scheduled", "Successfully assigned {ns}/{o} to worker-3"),
    (
        "v1",
        "Pod",
        "Normal",
        "Pulled",
        "Container image \"registry.example.com/shop/api:1.14.2\" already present on machine",
    ),
    ("v1", "Pod", "Warning", "BackOff", "Back-off restarting failed container api in pod {o}"),
    ("v1", "Pod", "Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
    (
        "v1",
        "Pod",
        "Warning",
        "FailedMount",
        "MountVolume.SetUp failed for volume \"config\" : configmap \"{o}-config\" not found",
    ),
    ("apps/v1", "ReplicaSet", "Normal", "SuccessfulCreate", "Created pod: {o}-x7k2p"),
    ("apps/v1", "Deployment", "Normal", "ScalingReplicaSet", "Scaled up replica set {o}-6d4cf56db6 to 3"),
    ("batch/v1", "Job", "Normal", "Completed", "Job completed"),
    ("v1", "PersistentVolumeClaim", "Warning", "ProvisioningFailed", "storageclass.storage.k8s.io \"fast\" not found"),
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A data directory of the bench's own, removed when dropped.

#[tokio::main]
async fn main() -> Result<()> {
    let mut suffixes = vec!["op".to_owned()];
    suffixes.extend(bench::numbered(NAMESPACES));
    bench::run("bench-ev", &suffixes, async |b| {
        let data = DataDir::new();
        std::fs::create_dir_all(&data.0)?;
        run(&b.client, &b.namespaces[0], &b.namespaces[1..], &data.0).await
    })
    .await
}

/// One Event this process created, and the occurrences it has sent for it.
#[derive(Clone)]
struct Sent {
    ns: String,
    name: String,
    kind: &'static str,
    object: String,
    reason: &'static str,
    count: i32,
}

#[derive(Default)]
struct Ledger {
    /// Created Events, oldest first.
    events: Vec<Sent>,
    failures: u64,
    first_failure: Option<String>,
    creates: u64,
    updates: u64,
    /// The write the API server answered last: (namespace, kind, object, count).
    last: Option<(String, &'static str, String, i32)>,
}

async fn run(client: &kube::Client, operator_ns: &str, event_ns: &[String], dir: &Path) -> Result<()> {
    let idle_seconds = env_u64("KUBE9_BENCH_EVENTS_IDLE_SECONDS", 20);
    let seconds = env_u64("KUBE9_BENCH_EVENTS_SECONDS", 60);
    let rate = env_u64("KUBE9_BENCH_EVENTS_RATE", 50).max(1);
    let dir_flag = dir.display().to_string();
    let op = Operator::start(operator_ns, &["--data-dir", &dir_flag], &[("KUBE9_LOG_LEVEL", "warn")])?;
    let pid = op.pid();
    wait_for(Duration::from_secs(60), || async {
        let (code, _) = op.get("/readyz").await?;
        Ok(code == 200 && query(dir, &["events", "list", "--limit=1"]).is_ok())
    })
    .await
    .with_context(|| format!("the operator never became ready: {}", op.logs()))?;
    // Let the first listing of the cluster's Events and the first status writes settle.
    tokio::time::sleep(Duration::from_secs(5)).await;

    // 1. Idle.
    let mut idle = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(idle_seconds) {
        idle.push(status_kib(pid, "VmRSS:"));
        tokio::time::sleep(SAMPLE).await;
    }

    // 2. Events at a steady rate, RSS sampled beside them.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                samples.push(status_kib(pid, "VmRSS:"));
                tokio::time::sleep(SAMPLE).await;
            }
            samples
        })
    };
    let cpu_before = cpu_ticks(pid);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let total = rate * seconds;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut in_flight = tokio::task::JoinSet::new();
    let mut reserved = HashSet::new();
    let send_started = Instant::now();
    for i in 0..total {
        ticks.tick().await;
        let r = next(&mut rng);
        let ns = event_ns[(r / 7) as usize % event_ns.len()].clone();
        let (api_version, kind, type_, reason, message) = MIX[(r / 31) as usize % MIX.len()];
        // Several Events about the same object, as a Pod collects Scheduled, Pulled, BackOff.
        let object = format!("{}-{}", kind.to_lowercase(), (r / 997) % 2000);
        let key = (ns.clone(), object.clone(), reason.to_owned());
        let repeat = {
            let ledger = ledger.lock().map_err(|_| anyhow::anyhow!("ledger poisoned"))?;
            let recent = ledger.events.len().min(WORKING_SET);
            // One Event per object, reason and message, as the event recorder aggregates: a
            // new one for a key already used is a repeat instead.
            let new = ((r % 1000) as f64) < NEW_SHARE * 1000.0 && !reserved.contains(&key);
            (recent > 0 && !new).then(|| ledger.events.len() - 1 - (r / 1000) as usize % recent)
        };
        let client = client.clone();
        let ledger = ledger.clone();
        match repeat {
            Some(at) => {
                in_flight.spawn(repeat_event(client, ledger, at));
            }
            None if reserved.contains(&key) => {}
            None => {
                reserved.insert(key);
                let name = format!("{object}.{i:x}");
                let message = message.replace("{o}", &object).replace("{ns}", &ns);
                let event = Event {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(ns.clone()),
                        ..Default::default()
                    },
                    involved_object: ObjectReference {
                        kind: Some(kind.into()),
                        namespace: Some(ns.clone()),
                        name: Some(object.clone()),
                        api_version: Some(api_version.into()),
                        ..Default::default()
                    },
                    type_: Some(type_.into()),
                    reason: Some(reason.into()),
                    message: Some(message),
                    count: Some(1),
                    first_timestamp: Some(Time(Timestamp::now())),
                    last_timestamp: Some(Time(Timestamp::now())),
                    source: Some(EventSource { component: Some("kube9-bench".into()), host: Some("worker-3".into()) }),
                    ..Default::default()
                };
                let sent = Sent { ns, name, kind, object, reason, count: 1 };
                in_flight.spawn(create_event(client, ledger, sent, event));
            }
        }
    }
    while in_flight.join_next().await.is_some() {}
    let sent_for = send_started.elapsed();
    let written = Instant::now();

    // 3. Catch-up: the last write answered, through the real binary; then every Event.
    let (last_ns, last_kind, last_object, last_count) =
        ledger.lock().map_err(|_| anyhow::anyhow!("ledger poisoned"))?.last.clone().context("nothing was written")?;
    let ns_flag = format!("--object-namespace={last_ns}");
    let kind_flag = format!("--object-kind={last_kind}");
    let mut polls = 0;
    let last_seen = loop {
        polls += 1;
        let doc = query(dir, &["events", "list", &ns_flag, &kind_flag, "--limit=1000", "--format=json"]);
        let shown = doc.ok().and_then(|doc| doc["events"].as_array().cloned()).is_some_and(|events| {
            events.iter().any(|e| {
                e["object_name"] == last_object.as_str()
                    && e["metadata"]["count"].as_i64() >= Some(i64::from(last_count))
            })
        });
        if shown {
            break written.elapsed();
        }
        if written.elapsed() > Duration::from_secs(120) {
            bail!("the last Event written never showed in `query events list`");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let expected: HashMap<Key, i32> = {
        let ledger = ledger.lock().map_err(|_| anyhow::anyhow!("ledger poisoned"))?;
        ledger.events.iter().map(|e| ((e.ns.clone(), e.object.clone(), e.reason.to_owned()), e.count)).collect()
    };
    let (tally, all_stored) = loop {
        let tally = count_stored(dir, event_ns, &expected)?;
        if tally.matching == expected.len() {
            break (tally, Some(written.elapsed()));
        }
        if written.elapsed() > Duration::from_secs(60) {
            break (tally, None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The baseline for that delay: one run of the same query, now that nothing changes.
    let mut query_runs: Vec<Duration> = (0..9)
        .map(|_| {
            let started = Instant::now();
            let _ = query(dir, &["events", "list", &ns_flag, &kind_flag, "--limit=1000", "--format=json"]);
            started.elapsed()
        })
        .collect();
    query_runs.sort();
    let cpu_ticks_used = cpu_ticks(pid).saturating_sub(cpu_before);
    let cpu_wall = send_started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    let mut ingesting = sampler.await?;
    // After: the same process a few seconds later.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = status_kib(pid, "VmRSS:");
    let peak = status_kib(pid, "VmHWM:");
    let store_bytes: u64 =
        std::fs::read_dir(dir)?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum::<u64>();
    drop(op);

    let ledger = ledger.lock().map_err(|_| anyhow::anyhow!("ledger poisoned"))?;
    let writes = ledger.creates + ledger.updates;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let (idle_median, idle_max) = (median(&mut idle), idle.iter().copied().max().unwrap_or(0));
    let (ing_median, ing_max) = (median(&mut ingesting), ingesting.iter().copied().max().unwrap_or(0));
    let until_stored = all_stored.map(|d| sent_for + d);
    println!();
    println!(
        "event history: {} with a fresh store, {rate} Events/s offered for {seconds} s (idle baseline: {idle_seconds} s before)",
        binary()?.display()
    );
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| RSS idle (median, max) | {:.1} MiB, {:.1} MiB ({} samples) |",
        mib(idle_median),
        mib(idle_max),
        idle.len()
    );
    println!(
        "| RSS ingesting (median, max) | {:.1} MiB, {:.1} MiB ({} samples) |",
        mib(ing_median),
        mib(ing_max),
        ingesting.len()
    );
    println!(
        "| ingesting - idle | median {:+.1} MiB, max {:+.1} MiB |",
        mib(ing_median) - mib(idle_median),
        mib(ing_max) - mib(idle_max)
    );
    println!("| RSS 5 s after; VmHWM | {:.1} MiB; {:.1} MiB |", mib(after), mib(peak));
    println!(
        "| operator CPU while ingesting | {:.1} % of one core |",
        cpu_ticks_used as f64 / 100.0 / cpu_wall.max(0.001) * 100.0
    );
    println!(
        "| writes sent (API server answered) | {writes} in {:.1} s = {:.1}/s: {} new Events, {} repeats (count + 1); {} failed{} |",
        sent_for.as_secs_f64(),
        writes as f64 / sent_for.as_secs_f64(),
        ledger.creates,
        ledger.updates,
        ledger.failures,
        ledger.first_failure.as_deref().map(|f| format!(" (first: {f})")).unwrap_or_default()
    );
    println!(
        "| rows stored for those namespaces | {}{} for {} Events; {} with the count sent (occurrences stored {} of {}) |",
        tally.rows,
        if tally.full { " (or more: an answer reached the 1,000-row limit)" } else { "" },
        expected.len(),
        tally.matching,
        tally.occurrences,
        expected.values().map(|c| i64::from(*c)).sum::<i64>()
    );
    println!(
        "| last write -> `query events list` shows it | {:.0} ms (polls of the binary: {polls}; one run of that query alone: {:.0} ms) |",
        last_seen.as_secs_f64() * 1000.0,
        query_runs[query_runs.len() / 2].as_secs_f64() * 1000.0
    );
    match until_stored {
        Some(total) => println!(
            "| ingested | {:.1} writes/s ({writes} writes, first sent -> all stored {:.1} s; last write -> all stored {:.0} ms) |",
            writes as f64 / total.as_secs_f64(),
            total.as_secs_f64(),
            all_stored.unwrap_or_default().as_secs_f64() * 1000.0
        ),
        None => println!(
            "| ingested | not all within 60 s of the last write: {} of {} rows right |",
            tally.matching,
            expected.len()
        ),
    }
    println!(
        "| store on disk at the end | {:.1} MiB (database and WAL, every Event in the cluster) |",
        store_bytes as f64 / 1048576.0
    );
    Ok(())
}

async fn create_event(client: kube::Client, ledger: Arc<Mutex<Ledger>>, sent: Sent, event: Event) {
    let api: Api<Event> = Api::namespaced(client, &sent.ns);
    let result = api.create(&PostParams::default(), &event).await;
    let Ok(mut ledger) = ledger.lock() else { return };
    match result {
        Ok(_) => {
            ledger.creates += 1;
            ledger.last = Some((sent.ns.clone(), sent.kind, sent.object.clone(), 1));
            ledger.events.push(sent);
        }
        Err(e) => failed(&mut ledger, e),
    }
}

async fn repeat_event(client: kube::Client, ledger: Arc<Mutex<Ledger>>, at: usize) {
    let (sent, count) = {
        let Ok(mut ledger) = ledger.lock() else { return };
        let event = &mut ledger.events[at];
        event.count += 1;
        (event.clone(), event.count)
    };
    let api: Api<Event> = Api::namespaced(client, &sent.ns);
    let patch = json!({ "count": count, "lastTimestamp": Time(Timestamp::now()) });
    let result = api.patch(&sent.name, &PatchParams::default(), &Patch::Merge(&patch)).await;
    let Ok(mut ledger) = ledger.lock() else { return };
    match result {
        Ok(_) => {
            ledger.updates += 1;
            ledger.last = Some((sent.ns, sent.kind, sent.object, count));
        }
        Err(e) => {
            // Not sent: the store is not expected to show it (unless a later repeat got through).
            if ledger.events[at].count == count {
                ledger.events[at].count -= 1;
            }
            failed(&mut ledger, e);
        }
    }
}

fn failed(ledger: &mut Ledger, e: kube::Error) {
    ledger.failures += 1;
    if ledger.first_failure.is_none() {
        ledger.first_failure = Some(e.to_string());
    }
}

struct Tally {
    rows: usize,
    /// Rows whose count is the count sent.
    matching: usize,
    occurrences: i64,
    /// Some answer held 1,000 rows: there may be more.
    full: bool,
}

/// An Event's identity here: namespace, object, reason.
type Key = (String, String, String);

/// The rows the store holds about `namespaces`, through the operator's own `query` (by
/// namespace and kind, so that no answer reaches the 1,000-row limit at the default rate).
fn count_stored(dir: &Path, namespaces: &[String], expected: &HashMap<Key, i32>) -> Result<Tally> {
    let mut kinds: Vec<&str> = MIX.iter().map(|m| m.1).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut tally = Tally { rows: 0, matching: 0, occurrences: 0, full: false };
    for ns in namespaces {
        for kind in &kinds {
            let (ns_flag, kind_flag) = (format!("--object-namespace={ns}"), format!("--object-kind={kind}"));
            let doc = query(dir, &["events", "list", &ns_flag, &kind_flag, "--limit=1000", "--format=json"])?;
            let events = doc["events"].as_array().cloned().unwrap_or_default();
            tally.full |= events.len() >= 1000;
            for e in events {
                let count = e["metadata"]["count"].as_i64().unwrap_or(0);
                let reason = e["metadata"]["reason"].as_str().unwrap_or_default();
                let object = e["object_name"].as_str().unwrap_or_default();
                tally.rows += 1;
                tally.occurrences += count;
                let key = (ns.clone(), object.to_owned(), reason.to_owned());
                if expected.get(&key).is_some_and(|c| i64::from(*c) == count) {
                    tally.matching += 1;
                }
            }
        }
    }
    Ok(tally)
}

/// Runs `kube9-operator query --data-dir <dir> <args>` with the operator's binary.
fn query(dir: &Path, args: &[&str]) -> Result<Value> {
    let output = std::process::Command::new(binary()?)
        .arg("query")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("KUBE9_DATA_DIR")
        .output()
        .context("running kube9-operator query")?;
    if !output.status.success() {
        bail!("query {args:?} exited {:?}: {}", output.status.code(), String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).context("query's stdout is one JSON document")
}

fn median(samples: &mut [u64]) -> u64 {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or(0)
}

/// xorshift64: a fixed, repeatable mix.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// utime + stime, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let at = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    at(14) + at(15)
}
