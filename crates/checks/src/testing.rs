//! Fixture helpers for the checks' unit tests.

use serde_json::{Value, json};

use crate::check::Check;
use crate::engine::run;
use crate::options::Options;
use crate::snapshot::Snapshot;

/// A snapshot of these objects; every object must be accepted.
pub fn snapshot(objects: &[Value]) -> Snapshot {
    let mut s = Snapshot::default();
    for object in objects {
        let skipped = s.add(object.clone());
        assert!(skipped.is_empty(), "{skipped:?}");
    }
    s
}

/// (passed, failed, exempted) of one check over these objects.
pub fn outcome(id: &str, objects: &[Value]) -> (u32, usize, usize) {
    let report = run(&snapshot(objects), &Options { include_checks: vec![id.to_owned()], ..Options::default() });
    assert_eq!(report.results.len(), 1, "no check {id}");
    let r = &report.results[0];
    (r.passed, r.failed.len(), r.exempted.len())
}

/// Merges `extra` into `base` (objects key by key, anything else replaced).
pub fn merge(mut base: Value, extra: Value) -> Value {
    match (&mut base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                let merged = match b.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            base
        }
        (_, e) => e,
    }
}

/// A well-behaved container, with `extra` merged in.
pub fn container(extra: Value) -> Value {
    merge(
        json!({
            "name": "app",
            "image": "shop/web:1.2.3",
            "imagePullPolicy": "IfNotPresent",
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}},
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true,
                "capabilities": {"drop": ["ALL"]}
            }
        }),
        extra,
    )
}

/// A well-behaved pod spec with one container, with `extra` merged into the spec.
pub fn pod_spec(extra: Value) -> Value {
    merge(
        json!({
            "serviceAccountName": "web",
            "automountServiceAccountToken": false,
            "priorityClassName": "business-critical",
            "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container(json!({}))],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                 "labelSelector": {"matchLabels": {"app": "web"}}}}]}}
        }),
        extra,
    )
}

/// A Deployment `web` in namespace `shop` running `spec`, with `extra` merged into the object.
pub fn deployment(spec: Value, extra: Value) -> Value {
    merge(
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {
                "replicas": 3,
                "revisionHistoryLimit": 5,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "app.kubernetes.io/name": "web"}}, "spec": spec}
            }
        }),
        extra,
    )
}

/// A Deployment with one container changed by `container_extra`.
pub fn deployment_with_container(container_extra: Value) -> Value {
    deployment(pod_spec(json!({"containers": [container(container_extra)]})), json!({}))
}

/// The namespace `shop`, with `extra` merged in.
pub fn namespace(extra: Value) -> Value {
    merge(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}), extra)
}

/// A PodDisruptionBudget for the `web` Deployment.
pub fn pdb(spec: Value) -> Value {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": merge(json!({"selector": {"matchLabels": {"app": "web"}}}), spec)
    })
}

/// Asserts that `check` flags the first set of objects and passes the second.
pub fn flags_and_passes(check: &str, flagged: &[Value], passing: &[Value]) {
    let (_, failed, _) = outcome(check, flagged);
    assert!(failed >= 1, "{check} did not flag its fixture");
    let (passed, failed, _) = outcome(check, passing);
    assert_eq!(failed, 0, "{check} flagged its passing fixture");
    assert!(passed >= 1, "{check} evaluated nothing in its passing fixture");
}

/// A check's fixtures: its id, objects it must flag, and objects it must pass.
pub type Case = (&'static str, Vec<Value>, Vec<Value>);

/// Every check of a rules file has a case, and each flags its first objects and passes its
/// second.
pub fn every_check_flags_and_passes(checks: &[Check], cases: Vec<Case>) {
    for check in checks {
        assert!(cases.iter().any(|c| c.0 == check.id), "{} has no fixture", check.id);
    }
    for (id, flagged, passing) in cases {
        flags_and_passes(id, &flagged, &passing);
    }
}

/// A streamed run of `objects` as the operator reads a cluster: the kept kinds first, then the
/// others `page` at a time (in the order given). Its summary (at most `max` findings), and
/// every finding its sink took.
pub fn streamed(
    objects: &[Value],
    page: usize,
    options: &Options,
    max: usize,
) -> (crate::Summary, Vec<kube9_api::assessment::Finding>) {
    let kind = |o: &Value| o["kind"].as_str().unwrap_or_default().to_owned();
    let mut kept = Snapshot::default();
    for object in objects.iter().filter(|o| crate::kinds::kept(&kind(o))) {
        kept.add(object.clone());
    }
    let mut taken = Vec::new();
    let sink = |found: &[crate::engine::Found<'_>]| taken.extend(found.iter().map(|f| f.finding()));
    let mut stream = crate::Stream::new(options.clone(), kept, max, sink);
    let rest: Vec<Value> = objects.iter().filter(|o| !crate::kinds::kept(&kind(o))).cloned().collect();
    for chunk in rest.chunks(page.max(1)) {
        stream.page(chunk.to_vec());
    }
    let summary = stream.finish();
    (summary, taken)
}

/// Asserts that streamed runs of `objects`, in pages of each size in `pages`, give exactly
/// what the whole-snapshot run gives: every finding, each check's counts, first failed
/// objects and outcome, the bounded findings, totals and scores. Returns the report.
pub fn assert_streams_alike(objects: &[Value], pages: &[usize], options: &Options, max: usize) -> crate::Report {
    let mut whole = Snapshot::default();
    for object in objects {
        whole.add(object.clone());
    }
    let report = run(&whole, options);
    let expected = report.summary(max);
    let key = |f: &kube9_api::assessment::Finding| serde_json::to_string(f).unwrap();
    let mut every: Vec<String> =
        report.findings().iter().chain(&report.exempted().collect::<Vec<_>>()).map(|f| key(&f.finding())).collect();
    every.sort();
    for &page in pages {
        let (summary, taken) = streamed(objects, page, options, max);
        let mut taken: Vec<String> = taken.iter().map(key).collect();
        taken.sort();
        assert_eq!(taken.len(), every.len(), "pages of {page}: findings handed to the sink");
        assert!(taken == every, "pages of {page}: the sink took other findings");
        assert_eq!(format!("{:?}", summary.checks), format!("{:?}", expected.checks), "pages of {page}: check tallies");
        assert_eq!(
            crate::outcome::check_outcomes(&summary.checks),
            crate::outcome::check_outcomes(&expected.checks),
            "pages of {page}"
        );
        assert_eq!(summary.findings, expected.findings, "pages of {page}: bounded findings");
        assert_eq!(summary.truncated, expected.truncated, "pages of {page}");
        assert_eq!(summary.totals(), report.totals(), "pages of {page}");
        assert_eq!(summary.by_severity(), report.by_severity(), "pages of {page}");
        assert_eq!(summary.pillars(), report.pillars(), "pages of {page}");
        assert_eq!(summary.score(), report.score(), "pages of {page}");
    }
    report
}
