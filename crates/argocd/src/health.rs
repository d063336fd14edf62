//! Resource health as Argo CD decides it for the core kinds (Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, Pod, Job, PersistentVolumeClaim, Service, Ingress,
//! HorizontalPodAutoscaler, APIService), so the resource tree shows the same words Argo CD's
//! own UI does. Written from Argo CD's documented behaviour and table-tested against its own
//! cases. Objects are read as JSON, so every served API version of a kind is read the same way.

use serde::Serialize;
use serde_json::Value;

/// Argo CD's health words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Status {
    Healthy,
    Progressing,
    Degraded,
    Suspended,
    Missing,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "Healthy",
            Status::Progressing => "Progressing",
            Status::Degraded => "Degraded",
            Status::Suspended => "Suspended",
            Status::Missing => "Missing",
            Status::Unknown => "Unknown",
        }
    }
}

/// A health status and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Health {
    pub status: Status,
    pub message: String,
}

fn health(status: Status, message: impl Into<String>) -> Option<Health> {
    Some(Health { status, message: message.into() })
}

/// The health of `object` (group and kind from its `apiVersion` and `kind`); None for a kind
/// Argo CD has no built-in rule for.
pub fn assess(object: &Value) -> Option<Health> {
    let kind = object["kind"].as_str()?;
    let group = object["apiVersion"].as_str().and_then(|v| v.rsplit_once('/')).map_or("", |(g, _)| g);
    // A resource being deleted is on its way out, whatever its kind (hooks excepted: their
    // deletion is part of the sync).
    if !object["metadata"]["deletionTimestamp"].is_null() && !is_hook(object) {
        return health(Status::Progressing, "Pending deletion");
    }
    match (group, kind) {
        ("apps" | "extensions", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps" | "extensions", "DaemonSet") => daemon_set(object),
        ("apps" | "extensions", "ReplicaSet") => replica_set(object),
        ("", "Pod") => pod(object),
        ("", "PersistentVolumeClaim") => pvc(object),
        ("", "Service") => service(object),
        ("networking.k8s.io" | "extensions", "Ingress") => ingress(object),
        ("batch", "Job") => job(object),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(object),
        ("apiregistration.k8s.io", "APIService") => api_service(object),
        _ => None,
    }
}

fn is_hook(object: &Value) -> bool {
    let annotations = &object["metadata"]["annotations"];
    !annotations["argocd.argoproj.io/hook"].is_null() || !annotations["helm.sh/hook"].is_null()
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn conditions(object: &Value) -> &[Value] {
    object["status"]["conditions"].as_array().map(Vec::as_slice).unwrap_or_default()
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    conditions(object).iter().find(|c| c["type"] == type_)
}

/// Whether the controller has seen the latest spec.
fn observed(object: &Value) -> bool {
    int(&object["metadata"]["generation"]) <= int(&object["status"]["observedGeneration"])
}

fn deployment(d: &Value) -> Option<Health> {
    if d["spec"]["paused"].as_bool() == Some(true) {
        return health(Status::Suspended, "Deployment is paused");
    }
    if !observed(d) {
        return health(
            Status::Progressing,
            "Waiting for rollout to finish: observed deployment generation less than desired generation",
        );
    }
    let name = text(&d["metadata"]["name"]);
    if condition(d, "Progressing").is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded") {
        return health(Status::Degraded, format!("Deployment \"{name}\" exceeded its progress deadline"));
    }
    let status = &d["status"];
    let (updated, total, available) =
        (int(&status["updatedReplicas"]), int(&status["replicas"]), int(&status["availableReplicas"]));
    if let Some(wanted) = d["spec"]["replicas"].as_i64()
        && updated < wanted
    {
        return health(
            Status::Progressing,
            format!("Waiting for rollout to finish: {updated} out of {wanted} new replicas have been updated..."),
        );
    }
    if total > updated {
        return health(
            Status::Progressing,
            format!("Waiting for rollout to finish: {} old replicas are pending termination...", total - updated),
        );
    }
    if available < updated {
        return health(
            Status::Progressing,
            format!("Waiting for rollout to finish: {available} of {updated} updated replicas are available..."),
        );
    }
    health(Status::Healthy, "")
}

fn stateful_set(s: &Value) -> Option<Health> {
    let status = &s["status"];
    if int(&status["observedGeneration"]) == 0 || !observed(s) {
        return health(Status::Progressing, "Waiting for statefulset spec update to be observed...");
    }
    let ready = int(&status["readyReplicas"]);
    let wanted = s["spec"]["replicas"].as_i64();
    if let Some(wanted) = wanted
        && ready < wanted
    {
        return health(Status::Progressing, format!("Waiting for {} pods to be ready...", wanted - ready));
    }
    let strategy = &s["spec"]["updateStrategy"];
    if strategy["type"] == "RollingUpdate"
        && let Some(partition) = strategy["rollingUpdate"]["partition"].as_i64()
        && partition > 0
    {
        let updated = int(&status["updatedReplicas"]);
        let target = wanted.unwrap_or(1) - partition;
        if updated < target {
            return health(
                Status::Progressing,
                format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {target} new pods have been updated..."
                ),
            );
        }
        return health(
            Status::Healthy,
            format!("partitioned roll out complete: {updated} new pods have been updated..."),
        );
    }
    if strategy["type"] == "OnDelete" {
        return health(Status::Healthy, format!("statefulset has {ready} ready pods"));
    }
    let (update, current) = (text(&status["updateRevision"]), text(&status["currentRevision"]));
    if update != current {
        return health(
            Status::Progressing,
            format!(
                "waiting for statefulset rolling update to complete {} pods at revision {update}...",
                int(&status["updatedReplicas"])
            ),
        );
    }
    health(
        Status::Healthy,
        format!(
            "statefulset rolling update complete {} pods at revision {current}...",
            int(&status["currentReplicas"])
        ),
    )
}

fn daemon_set(d: &Value) -> Option<Health> {
    let status = &d["status"];
    if int(&status["observedGeneration"]) == 0 || !observed(d) {
        return health(
            Status::Progressing,
            "Waiting for rollout to finish: observed daemon set generation less than desired generation",
        );
    }
    let (updated, desired, available) = (
        int(&status["updatedNumberScheduled"]),
        int(&status["desiredNumberScheduled"]),
        int(&status["numberAvailable"]),
    );
    if d["spec"]["updateStrategy"]["type"] == "OnDelete" {
        return health(Status::Healthy, format!("daemon set {updated} out of {desired} new pods have been updated"));
    }
    let name = text(&d["metadata"]["name"]);
    if updated < desired {
        return health(
            Status::Progressing,
            format!(
                "Waiting for daemon set \"{name}\" rollout to finish: {updated} out of {desired} new pods have been updated..."
            ),
        );
    }
    if available < desired {
        return health(
            Status::Progressing,
            format!(
                "Waiting for daemon set \"{name}\" rollout to finish: {available} of {desired} updated pods are available..."
            ),
        );
    }
    health(Status::Healthy, "")
}

fn replica_set(r: &Value) -> Option<Health> {
    if !observed(r) {
        return health(
            Status::Progressing,
            "Waiting for rollout to finish: observed replica set generation less than desired generation",
        );
    }
    if let Some(failure) = condition(r, "ReplicaFailure").filter(|c| c["status"] == "True") {
        return health(Status::Degraded, text(&failure["message"]));
    }
    let available = int(&r["status"]["availableReplicas"]);
    if let Some(wanted) = r["spec"]["replicas"].as_i64()
        && available < wanted
    {
        return health(
            Status::Progressing,
            format!("Waiting for rollout to finish: {available} out of {wanted} new replicas are available..."),
        );
    }
    health(Status::Healthy, "")
}

fn pod(p: &Value) -> Option<Health> {
    let status = &p["status"];
    let message = text(&status["message"]).to_owned();
    let restart = text(&p["spec"]["restartPolicy"]);
    let restart = if restart.is_empty() { "Always" } else { restart };
    // Pods that run once (hooks, mostly) are judged only by their phase, unless annotated to
    // be judged like long-running ones (never a hook: its early failure would fail the sync).
    let ignore_policy = p["metadata"]["annotations"]["argocd.argoproj.io/ignore-restart-policy"] == "true";
    let long_running = restart == "Always" || (ignore_policy && !is_hook(p));
    let containers = status["containerStatuses"].as_array().map(Vec::as_slice).unwrap_or_default();
    if long_running {
        let failing: Vec<&str> = containers
            .iter()
            .filter_map(|c| {
                let waiting = &c["state"]["waiting"];
                let reason = waiting["reason"].as_str()?;
                (reason.starts_with("Err") || reason.ends_with("Error") || reason.ends_with("BackOff"))
                    .then(|| text(&waiting["message"]))
            })
            .collect();
        if !failing.is_empty() {
            return health(Status::Degraded, failing.join(", "));
        }
    }
    match text(&status["phase"]) {
        "Pending" => health(Status::Progressing, message),
        "Succeeded" => health(Status::Healthy, message),
        "Failed" => {
            if !message.is_empty() {
                return health(Status::Degraded, message);
            }
            let init = status["initContainerStatuses"].as_array().map(Vec::as_slice).unwrap_or_default();
            let why = init.iter().chain(containers).find_map(terminated_message).unwrap_or_default();
            health(Status::Degraded, why)
        }
        "Running" if long_running => {
            let ready = condition(p, "Ready").is_some_and(|c| c["status"] == "True");
            if ready {
                health(Status::Healthy, message)
            } else if containers.iter().any(|c| c["lastState"]["terminated"].is_object()) {
                health(Status::Degraded, message)
            } else {
                health(Status::Progressing, message)
            }
        }
        // Finite Pods are resource hooks, mostly: running is progressing, not healthy.
        "Running" => health(Status::Progressing, message),
        _ => health(Status::Unknown, message),
    }
}

fn terminated_message(container: &Value) -> Option<String> {
    let terminated = container["state"]["terminated"].as_object()?;
    let message = terminated.get("message").and_then(Value::as_str).unwrap_or_default();
    if !message.is_empty() {
        return Some(message.to_owned());
    }
    if terminated.get("reason").and_then(Value::as_str) == Some("OOMKilled") {
        return Some("OOMKilled".into());
    }
    let code = terminated.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
    (code != 0).then(|| format!("container \"{}\" failed with exit code {code}", text(&container["name"])))
}

fn pvc(p: &Value) -> Option<Health> {
    match text(&p["status"]["phase"]) {
        "Lost" => health(Status::Degraded, ""),
        "Pending" => health(Status::Progressing, ""),
        "Bound" => health(Status::Healthy, ""),
        _ => health(Status::Unknown, ""),
    }
}

fn load_balanced(object: &Value) -> bool {
    object["status"]["loadBalancer"]["ingress"].as_array().is_some_and(|i| !i.is_empty())
}

fn service(s: &Value) -> Option<Health> {
    if s["spec"]["type"] == "LoadBalancer" && !load_balanced(s) {
        return health(Status::Progressing, "");
    }
    health(Status::Healthy, "")
}

fn ingress(i: &Value) -> Option<Health> {
    if load_balanced(i) { health(Status::Healthy, "") } else { health(Status::Progressing, "") }
}

fn job(j: &Value) -> Option<Health> {
    let (mut complete, mut failed, mut suspended) = (false, false, false);
    let (mut message, mut failure) = (String::new(), String::new());
    for c in conditions(j) {
        let true_ = c["status"] == "True";
        match text(&c["type"]) {
            "Failed" if true_ => {
                (failed, complete) = (true, true);
                failure = text(&c["message"]).to_owned();
            }
            "Complete" if true_ => {
                complete = true;
                message = text(&c["message"]).to_owned();
            }
            "Suspended" => {
                complete = true;
                message = text(&c["message"]).to_owned();
                suspended |= true_;
            }
            _ => {}
        }
    }
    if !complete {
        health(Status::Progressing, message)
    } else if failed {
        health(Status::Degraded, failure)
    } else if suspended {
        health(Status::Suspended, message)
    } else {
        health(Status::Healthy, message)
    }
}

fn hpa(h: &Value) -> Option<Health> {
    const WAITING: &str = "Waiting to Autoscale";
    let version = text(&h["apiVersion"]);
    let parsed: Vec<Value>;
    let list: &[Value] = if version == "autoscaling/v1" {
        // v1 keeps its conditions in an annotation, as JSON.
        let Some(annotation) = h["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/conditions"].as_str()
        else {
            return health(Status::Progressing, WAITING);
        };
        match serde_json::from_str::<Vec<Value>>(annotation) {
            Ok(conditions) => {
                parsed = conditions;
                &parsed
            }
            Err(e) => return health(Status::Unknown, format!("Failed to unmarshall HPA conditions: {e}")),
        }
    } else {
        conditions(h)
    };
    // Any failing condition outweighs the healthy ones.
    let degraded = list.iter().find(|c| {
        let (type_, reason) = (text(&c["type"]), text(&c["reason"]));
        c["status"] == "False"
            && match type_ {
                "AbleToScale" => matches!(reason, "FailedGetScale" | "FailedUpdateScale"),
                "ScalingActive" => {
                    reason == "InvalidSelector" || (reason.starts_with("FailedGet") && reason.ends_with("Metric"))
                }
                _ => false,
            }
    });
    if let Some(c) = degraded {
        return health(Status::Degraded, text(&c["message"]));
    }
    if let Some(c) =
        list.iter().find(|c| c["status"] == "True" && matches!(text(&c["type"]), "AbleToScale" | "ScalingLimited"))
    {
        return health(Status::Healthy, text(&c["message"]));
    }
    health(Status::Progressing, WAITING)
}

fn api_service(a: &Value) -> Option<Health> {
    match condition(a, "Available") {
        Some(c) if c["status"] == "True" => health(Status::Healthy, text(&c["message"])),
        Some(c) => health(Status::Progressing, format!("{}: {}", text(&c["reason"]), text(&c["message"]))),
        None => health(Status::Progressing, "Waiting to be processed"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/argocd/health")
    }

    #[test]
    fn argo_cds_own_cases_get_argo_cds_own_answers() {
        let dir = fixtures();
        let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).expect("the Argo CD health fixtures");
        let mut wrong = Vec::new();
        let mut cases = 0;
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            let (file, want) = line.split_once('\t').expect("file<TAB>status");
            let yaml = std::fs::read_to_string(dir.join(file)).unwrap();
            let object: Value = serde_yaml::from_str(&yaml).unwrap();
            let got = assess(&object).map(|h| h.status.as_str());
            cases += 1;
            if got != Some(want.trim()) {
                wrong.push(format!("{file}: want {want}, got {got:?}"));
            }
        }
        assert!(cases >= 40, "only {cases} cases read");
        assert!(wrong.is_empty(), "{} of {cases} differ:\n{}", wrong.len(), wrong.join("\n"));
    }

    #[test]
    fn messages_say_why() {
        let dir = fixtures();
        let read = |f: &str| -> Value { serde_yaml::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap() };
        let crash = assess(&read("pod-imagepullbackoff.yaml")).unwrap();
        assert!(crash.message.contains("image") || crash.message.contains("Back-off"), "{crash:?}");
        let deleting = assess(&read("pod-deletion.yaml")).unwrap();
        assert_eq!(deleting.message, "Pending deletion");
        let degraded = assess(&read("deployment-degraded.yaml")).unwrap();
        assert!(degraded.message.contains("exceeded its progress deadline"), "{degraded:?}");
    }

    #[test]
    fn kinds_without_a_rule_have_no_health() {
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        assert_eq!(assess(&cm), None);
        let slice = serde_json::json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        assert_eq!(assess(&slice).map(|h| h.status), Some(Status::Progressing), "any kind being deleted");
    }
}
