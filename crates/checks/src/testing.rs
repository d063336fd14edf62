//! Fixture helpers for the checks' unit tests.

use serde_json::{Value, json};

use crate::engine::{Options, run};
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
