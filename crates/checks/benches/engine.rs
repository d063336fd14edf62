//! The check engine over a synthetic cluster: 500 namespaces, 2,000 Deployments (each with a
//! Service and a controlled ReplicaSet) and 10,000 Pods. Prints figures; asserts nothing.
//!
//! Two shapes of the same cluster: the Pods controlled by the ReplicaSets (as in a real
//! cluster: the snapshot leaves them to their Deployment), and the worst case where every Pod
//! is bare and each is assessed on its own. The objects start as JSON text, as they come off
//! the wire. The baseline, measured in the same run, is only parsing that text into the
//! objects' Kubernetes types (what any tool reading them pays). Memory is the peak resident
//! set while building the snapshot and running the engine once, above the input text.
//!
//! Run with `cargo bench -p kube9-checks --bench engine`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube9_checks::{Options, Snapshot};
use serde_json::{Value, json};

/// Counts heap bytes in use and their peak, so memory is measured exactly (the resident set
/// would hide what the allocator reuses from earlier work).
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const NAMESPACES: usize = 500;
const DEPLOYMENTS: usize = 2_000;
const PODS: usize = 10_000;
const RUNS: usize = 5;

fn container(i: usize) -> Value {
    json!({
        "name": "app",
        "image": if i.is_multiple_of(3) { format!("registry.example/app-{i}:latest") } else { format!("registry.example/app-{i}:1.{i}") },
        "ports": [{"containerPort": 8080}],
        "resources": if i.is_multiple_of(2) { json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}) } else { json!({}) },
        "securityContext": if i.is_multiple_of(5) { json!({"privileged": true}) } else { json!({"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}) },
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "env": [{"name": "MODE", "value": "production"}, {"name": "REGION", "value": "eu-west-1"}],
    })
}

fn cluster(bare_pods: bool) -> Vec<Value> {
    let mut objects = Vec::new();
    for n in 0..NAMESPACES {
        let annotations = if n % 50 == 0 { json!({"kube9.io/exempt": "reliability.replicas"}) } else { json!({}) };
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("team-{n}"), "labels": {"team": format!("t{n}")}, "annotations": annotations}}));
    }
    for d in 0..DEPLOYMENTS {
        let ns = format!("team-{}", d % NAMESPACES);
        let labels = json!({"app": format!("app-{d}"), "app.kubernetes.io/name": format!("app-{d}")});
        let spec = json!({"containers": [container(d)], "serviceAccountName": "app"});
        objects.push(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("app-{d}"), "namespace": ns, "uid": format!("d-{d}"), "labels": labels},
            "spec": {"replicas": 1 + d % 5, "selector": {"matchLabels": {"app": format!("app-{d}")}},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}));
        objects.push(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("app-{d}-5d8f7"), "namespace": ns, "uid": format!("rs-{d}"), "labels": labels,
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("app-{d}"), "uid": format!("d-{d}"), "controller": true}]},
            "spec": {"replicas": 5, "selector": {"matchLabels": {"app": format!("app-{d}")}}, "template": {"metadata": {"labels": labels}, "spec": spec}}}));
        objects.push(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": format!("app-{d}"), "namespace": ns},
            "spec": {"type": if d % 40 == 0 { "LoadBalancer" } else { "ClusterIP" }, "selector": {"app": format!("app-{d}")}, "ports": [{"port": 80, "targetPort": 8080}]}}));
    }
    for p in 0..PODS {
        let d = p % DEPLOYMENTS;
        let owners = if bare_pods {
            json!([])
        } else {
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("app-{d}-5d8f7"), "uid": format!("rs-{d}"), "controller": true}])
        };
        objects.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("app-{d}-5d8f7-{p}"), "namespace": format!("team-{}", d % NAMESPACES),
                         "labels": {"app": format!("app-{d}")}, "ownerReferences": owners},
            "spec": {"containers": [container(d)], "nodeName": format!("node-{}", p % 50)},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}}));
    }
    objects
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn time<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let out = std::hint::black_box(f());
        times.push(start.elapsed());
        last = Some(out);
    }
    (median(times), last.expect("at least one run"))
}

fn deserialize_only(objects: &[(String, String)]) -> usize {
    let mut n = 0;
    for (kind, text) in objects {
        let ok = match kind.as_str() {
            "Deployment" => serde_json::from_str::<Deployment>(text).is_ok(),
            "ReplicaSet" => serde_json::from_str::<ReplicaSet>(text).is_ok(),
            "Service" => serde_json::from_str::<Service>(text).is_ok(),
            "Pod" => serde_json::from_str::<Pod>(text).is_ok(),
            _ => serde_json::from_str::<Namespace>(text).is_ok(),
        };
        n += usize::from(ok);
    }
    n
}

fn build(objects: &[String]) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for text in objects {
        snapshot.add(serde_json::from_str(text).expect("valid JSON"));
    }
    snapshot
}

/// The streamed run over the same objects, as the operator reads a cluster: the kept kinds
/// first, then the others 500 a page, each page parsed from its text only when it comes. Its
/// summary, the most records it held at once, and the heap they took after the last page.
fn streamed(objects: &[(String, String)]) -> (kube9_checks::Summary, usize, usize) {
    let mut kept = Snapshot::default();
    let mut rest = Vec::new();
    for (kind, text) in objects {
        if kube9_checks::kinds::kept(kind) {
            kept.add(serde_json::from_str(text).expect("valid JSON"));
        } else {
            rest.push(text);
        }
    }
    let base = IN_USE.load(Ordering::Relaxed);
    let mut stream = kube9_checks::Stream::new(Options::default(), kept, 100, kube9_checks::stream::discard);
    let mut held = 0;
    for page in rest.chunks(500) {
        stream.page(page.iter().map(|t| serde_json::from_str(t).expect("valid JSON")).collect::<Vec<Value>>());
        held = held.max(stream.held());
    }
    let heap = IN_USE.load(Ordering::Relaxed).saturating_sub(base);
    (stream.finish(), held, heap)
}

fn shape(name: &str, bare_pods: bool) {
    let typed: Vec<(String, String)> =
        cluster(bare_pods).iter().map(|o| (o["kind"].as_str().unwrap_or_default().to_owned(), o.to_string())).collect();
    let objects: Vec<String> = typed.iter().map(|(_, text)| text.clone()).collect();
    let input: usize = objects.iter().map(String::len).sum();

    // Memory first, once, on a quiet heap.
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let snapshot = build(&objects);
    let after_snapshot = IN_USE.load(Ordering::Relaxed) - before;
    let report = kube9_checks::run(&snapshot, &Options::default());
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let (workloads, pods, evaluated, findings) =
        (snapshot.workloads.len(), snapshot.pods.len(), report.totals(), report.findings().len());
    drop((report, snapshot));

    // The streamed run's heap: one page, the kept kinds and the facts.
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let (summary, held, held_heap) = streamed(&typed);
    let streamed_peak = PEAK.load(Ordering::Relaxed) - before;
    let same = summary.totals() == evaluated;
    drop(summary);

    let (baseline, parsed) = time(|| deserialize_only(&typed));
    assert_eq!(parsed, typed.len(), "the baseline parses every object");
    let (building, snapshot) = time(|| build(&objects));
    let (running, report) = time(|| kube9_checks::run(&snapshot, &Options::default()));
    println!(
        "\n{name}: {} objects ({:.1} MiB of JSON); {workloads} workloads and {pods} bare Pods in the snapshot",
        objects.len(),
        input as f64 / 1048576.0
    );
    println!("  baseline, parse into Kubernetes types: {:>8.1} ms", baseline.as_secs_f64() * 1e3);
    println!(
        "  snapshot build (parse and index):      {:>8.1} ms  ({:.2}x baseline)",
        building.as_secs_f64() * 1e3,
        building.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "  engine, {} checks:                     {:>8.1} ms  ({:.2}x baseline)",
        report.results.len(),
        running.as_secs_f64() * 1e3,
        running.as_secs_f64() / baseline.as_secs_f64()
    );
    println!(
        "  results: {} evaluations, {findings} findings, {} exempted; score {}",
        evaluated.passed + evaluated.failed + evaluated.exempted,
        evaluated.exempted,
        report.score()
    );
    println!(
        "  heap: snapshot {:.1} MiB; peak while building and running {:.1} MiB (input text {:.1} MiB not counted)",
        after_snapshot as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        input as f64 / 1048576.0
    );

    let (streaming, _) = time(|| streamed(&typed));
    println!(
        "  streamed, 500 a page (parse, check, drop): {:>8.1} ms  ({:.2}x baseline; whole snapshot, build and engine: {:.1} ms)",
        streaming.as_secs_f64() * 1e3,
        streaming.as_secs_f64() / baseline.as_secs_f64(),
        (building + running).as_secs_f64() * 1e3
    );
    println!(
        "  streamed heap: peak {:.1} MiB (whole snapshot {:.1} MiB); {held} records held after the last page in {:.1} MiB ({} bytes each); same totals: {same}",
        streamed_peak as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        held_heap as f64 / 1048576.0,
        held_heap / held.max(1)
    );

    // Where the time goes: the slowest checks, each run alone.
    let mut per_check: Vec<(Duration, &str)> = kube9_checks::registry()
        .iter()
        .map(|c| {
            let only = Options { include_checks: vec![c.id.to_owned()], ..Options::default() };
            (time(|| kube9_checks::run(&snapshot, &only)).0, c.id)
        })
        .collect();
    per_check.sort_by_key(|c| std::cmp::Reverse(c.0));
    let sum: Duration = per_check.iter().map(|c| c.0).sum();
    let top: Vec<String> =
        per_check.iter().take(5).map(|(t, id)| format!("{id} {:.1} ms", t.as_secs_f64() * 1e3)).collect();
    println!("  slowest checks alone (of {:.1} ms summed): {}", sum.as_secs_f64() * 1e3, top.join(", "));
}

fn main() {
    println!("kube9-checks engine, median of {RUNS} runs each");
    shape("Pods controlled by ReplicaSets (a real cluster)", false);
    shape("Every Pod bare (worst case: each Pod assessed)", true);
}
