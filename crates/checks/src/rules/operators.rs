//! The cluster's other operators: the admission webhooks, aggregated APIs and CRD conversion
//! webhooks the API server calls, the CA bundles it trusts for them, and the controllers behind
//! them. Every check here judges live state (status conditions, ready endpoints, restarts,
//! how long a certificate has left), which manifests do not carry: they need a live cluster
//! ([`crate::check::Check::needs_cluster`]) and are reported as skipped offline.
//!
//! An **operator** (or controller) is a Deployment, StatefulSet or DaemonSet (or a bare Pod)
//! that either
//! - runs the Pods behind a Service the API server calls: an admission webhook's, an aggregated
//!   APIService's or a CRD conversion webhook's (the Service's selector selects its Pod
//!   template's labels, in the Service's namespace); or
//! - is named as one: its name, or its `app.kubernetes.io/name`, `app.kubernetes.io/component`,
//!   `app` or `control-plane` label, has the word `controller`, `operator` or `manager` in it
//!   (words split at `-`, `_`, `.` and `/`: `cert-manager`, `ingress-nginx-controller`,
//!   `prometheus-operator`, kubebuilder's `control-plane: controller-manager`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube9_api::common::{Pillar, Severity};

use crate::check::{Check, Eval, Run};
use crate::facts::{Facts, ServiceFact};
use crate::live::{CaBundle, CrashingPod, ServiceRef, WorkloadState};
use crate::snapshot::Snapshot;
use crate::subject::Subject;

const R: Pillar = Pillar::Reliability;
const O: Pillar = Pillar::OperationalExcellence;

const ADMISSION: &str = "admissionregistration.k8s.io/v1";
const APIREGISTRATION: &str = "apiregistration.k8s.io/v1";
const APIEXTENSIONS: &str = "apiextensions.k8s.io/v1";

/// What the operator checks call an operator, as docs/checks.md says it.
pub const OPERATOR_DEFINITION: &str = "An *operator* (or controller), for the checks of operators, is a Deployment, \
    StatefulSet or DaemonSet (or a bare Pod) that runs the Pods behind a Service the API server calls (an admission \
    webhook's, an aggregated APIService's or a CRD conversion webhook's), or whose name, or `app.kubernetes.io/name`, \
    `app.kubernetes.io/component`, `app` or `control-plane` label, has the word `controller`, `operator` or `manager` \
    in it (`cert-manager`, `ingress-nginx-controller`, kubebuilder's `control-plane: controller-manager`).";

/// A CA bundle that expires within this many days is a finding.
pub const CA_WARNING_DAYS: i64 = 30;

/// How recently a container's last failed run must have ended for its restarts to count as a
/// crash loop when it is not backing off at the moment it was read.
pub const CRASH_RECENT_SECS: i64 = 3600;

const WEBHOOK_KINDS: &[&str] =
    &["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "Service", "EndpointSlice"];

/// What an operator check reads to tell which workloads are operators.
const OPERATOR_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Service",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "CustomResourceDefinition",
];

/// The Service a reference names, from the facts the Services left.
fn service_fact<'f>(f: &'f Facts, service: &ServiceRef) -> Option<&'f ServiceFact> {
    f.services.iter().find(|svc| {
        svc.meta.namespace.as_deref() == Some(service.namespace.as_str())
            && svc.meta.name.as_deref() == Some(service.name.as_str())
    })
}

/// Why a Service the API server calls cannot answer, if it cannot.
fn unreachable(s: &Snapshot, f: &Facts, service: &ServiceRef) -> Option<String> {
    let Some(svc) = service_fact(f, service) else { return Some(format!("its Service {service} does not exist")) };
    if svc.external_name {
        return None;
    }
    if !svc.ports.is_empty() && !svc.ports.iter().any(|(port, _)| *port == service.port) {
        return Some(format!("its Service {service} has no port {}", service.port));
    }
    match s.live.ready_endpoints.get(&(service.namespace.clone(), service.name.clone())) {
        Some(n) if *n > 0 => None,
        Some(_) => Some(format!("its Service {service} has no ready endpoints")),
        None => Some(format!("its Service {service} has no endpoints (no EndpointSlice)")),
    }
}

/// The webhooks with a Service whose failure policy is `fails_closed`, judged.
fn webhooks(s: &Snapshot, f: &Facts, e: &mut Eval<'_>, fails_closed: bool) {
    for config in &s.live.webhook_configurations {
        let subject = Subject::new(ADMISSION, config.kind, &config.metadata);
        for hook in config.webhooks.iter().filter(|w| w.fails_closed == fails_closed) {
            let Some(service) = &hook.service else { continue };
            match unreachable(s, f, service) {
                Some(why) => e.fail(subject, None, format!("webhook {}: {why}", hook.name)),
                None => e.pass(subject),
            }
        }
    }
}

/// The kinds that hold the CA bundles [`ca_bundles`] reads.
const CA_BUNDLE_KINDS: &[&str] =
    &["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "CustomResourceDefinition"];

/// Every CA bundle the API server uses to call something: who holds it, what it is for.
fn ca_bundles(s: &Snapshot) -> Vec<(Subject<'_>, String, &CaBundle)> {
    let mut out = Vec::new();
    for config in &s.live.webhook_configurations {
        for hook in &config.webhooks {
            if let Some(ca) = &hook.ca_bundle {
                out.push((
                    Subject::new(ADMISSION, config.kind, &config.metadata),
                    format!("webhook {}", hook.name),
                    ca,
                ));
            }
        }
    }
    for api in &s.live.api_services {
        if let Some(ca) = &api.ca_bundle {
            out.push((Subject::new(APIREGISTRATION, "APIService", &api.metadata), "spec.caBundle".to_owned(), ca));
        }
    }
    for crd in &s.live.crds {
        if let Some(ca) = &crd.ca_bundle {
            let subject = Subject::new(APIEXTENSIONS, "CustomResourceDefinition", &crd.metadata);
            out.push((subject, "conversion webhook".to_owned(), ca));
        }
    }
    out
}

fn date(seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(seconds)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

/// The Services the API server calls that select Pods: namespace, selector, and what calls it.
type Called<'s> = Vec<(&'s str, &'s BTreeMap<String, String>, String)>;

/// The Services the API server calls, found in one pass over the Services (a large cluster has
/// thousands; the API server calls a few).
fn called_services<'s>(s: &'s Snapshot, f: &'s Facts) -> Called<'s> {
    let mut out: BTreeMap<(&str, &str), String> = BTreeMap::new();
    let mut note = |service: &'s Option<ServiceRef>, what: String| {
        if let Some(svc) = service {
            out.entry((svc.namespace.as_str(), svc.name.as_str())).or_insert(what);
        }
    };
    for config in &s.live.webhook_configurations {
        for hook in &config.webhooks {
            note(&hook.service, format!("the admission webhook {}", hook.name));
        }
    }
    for api in &s.live.api_services {
        note(&api.service, format!("the APIService {}", api.metadata.name.as_deref().unwrap_or_default()));
    }
    for crd in &s.live.crds {
        note(
            &crd.conversion,
            format!("the conversion webhook of {}", crd.metadata.name.as_deref().unwrap_or_default()),
        );
    }
    f.services
        .iter()
        .filter_map(|svc| {
            let namespace = svc.meta.namespace.as_deref()?;
            let what = out.get(&(namespace, svc.meta.name.as_deref()?))?;
            let selector = f.labels(svc.selector?);
            Some((namespace, selector, what.clone()))
        })
        .collect()
}

/// Whether a name or label value names a controller, an operator or a manager.
pub fn named_as_operator(text: &str) -> bool {
    text.split(['-', '_', '.', '/'])
        .any(|word| ["controller", "controllers", "operator", "manager"].contains(&word.to_ascii_lowercase().as_str()))
}

/// Why a workload (its name, its own labels, its Pods' labels) is an operator, if it is one.
fn operator_because(
    called: &Called<'_>,
    namespace: &str,
    name: &str,
    labels: Option<&BTreeMap<String, String>>,
    pod_labels: &BTreeMap<String, String>,
) -> Option<String> {
    for (_, selector, what) in called.iter().filter(|(ns, _, _)| *ns == namespace) {
        if selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)) {
            return Some(format!("it serves {what}"));
        }
    }
    let label_keys = ["app.kubernetes.io/name", "app.kubernetes.io/component", "app", "control-plane"];
    let named = named_as_operator(name)
        || [labels, Some(pod_labels)]
            .into_iter()
            .flatten()
            .any(|l| label_keys.iter().any(|k| l.get(*k).is_some_and(|v| named_as_operator(v))));
    named.then(|| "it is named as a controller".to_owned())
}

fn workload_because(called: &Called<'_>, w: &WorkloadState) -> Option<String> {
    let namespace = w.metadata.namespace.as_deref().unwrap_or_default();
    let name = w.metadata.name.as_deref().unwrap_or_default();
    operator_because(called, namespace, name, w.metadata.labels.as_ref(), &w.pod_labels)
}

fn api_version(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
        "Job" => "batch/v1",
        _ => "v1",
    }
}

/// A workload by kind, namespace and name.
type WorkloadKey<'s> = (&'static str, Option<&'s str>, String);

/// The workload a crashing Pod belongs to, as a person edits it: a Deployment's Pods (owned by
/// its ReplicaSet, named `<deployment>-<pod-template-hash>`) belong to the Deployment.
fn owning_workload<'s>(s: &'s Snapshot, pod: &CrashingPod) -> (&'static str, String, Option<&'s WorkloadState>) {
    let namespace = pod.metadata.namespace.as_deref();
    let find = |kind: &str, name: &str| {
        s.live.workloads.iter().find(|w| {
            w.kind == kind && w.metadata.namespace.as_deref() == namespace && w.metadata.name.as_deref() == Some(name)
        })
    };
    let pod_name = || pod.metadata.name.clone().unwrap_or_default();
    match pod.owner.as_ref().map(|(k, n)| (k.as_str(), n.as_str())) {
        Some(("ReplicaSet", rs)) => {
            let hash = pod.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash"));
            let deployment = hash.and_then(|h| rs.strip_suffix(h.as_str())).and_then(|d| d.strip_suffix('-'));
            match deployment.and_then(|d| find("Deployment", d)) {
                Some(w) => ("Deployment", w.metadata.name.clone().unwrap_or_default(), Some(w)),
                None => ("ReplicaSet", rs.to_owned(), None),
            }
        }
        Some((kind @ ("StatefulSet" | "DaemonSet"), name)) => {
            let kind = if kind == "StatefulSet" { "StatefulSet" } else { "DaemonSet" };
            (kind, name.to_owned(), find(kind, name))
        }
        Some(("Job", name)) => ("Job", name.to_owned(), None),
        Some(("ReplicationController", name)) => ("ReplicationController", name.to_owned(), None),
        _ => ("Pod", pod_name(), None),
    }
}

fn describe_crash(pod: &CrashingPod) -> String {
    let mut text = format!(
        "Pod {} container {}: {} restarts",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.container,
        pod.restarts
    );
    if pod.backing_off {
        text.push_str(", in CrashLoopBackOff");
    }
    if let Some((reason, code)) = &pod.last_exit {
        text.push_str(&format!(", last exit {code} ({reason})"));
    }
    text
}

/// The crashing Pods that are crash-looping now.
fn crash_looping(s: &Snapshot) -> impl Iterator<Item = &CrashingPod> {
    let now = s.taken_at.map(|t| t.as_second());
    s.live.crashing_pods.iter().filter(move |p| {
        p.backing_off || matches!((now, p.last_finished), (Some(now), Some(end)) if now - end <= CRASH_RECENT_SECS)
    })
}

pub static CHECKS: &[Check] = &[
    Check {
        id: "reliability.webhook-fail-closed-unreachable",
        pillar: R,
        title: "Fail-closed admission webhook with no ready endpoints",
        severity: Severity::Critical,
        rationale: "The API server calls an admission webhook on every write its rules match; with failurePolicy Fail (the default) a webhook whose Service is gone or has no ready Pod rejects every one of those writes: Deployments cannot roll, Pods cannot be created, and a broad rule stops the whole cluster.",
        remediation: "Bring back the webhook's Pods (see the operator checks for its Deployment), or fix the Service the webhook names. If its operator was uninstalled, delete the webhook configuration; if it must not block writes while it is down, set failurePolicy: Ignore and narrow its rules and namespaceSelector.",
        reads: WEBHOOK_KINDS,
        run: Run::Related(|s, f, e| webhooks(s, f, e, true)),
    },
    Check {
        id: "reliability.webhook-fail-open-unreachable",
        pillar: R,
        title: "Fail-open admission webhook with no ready endpoints",
        severity: Severity::Medium,
        rationale: "With failurePolicy Ignore, a webhook that cannot be reached no longer blocks writes, but every matching write waits for its timeout first, and what it enforces or adds (policies, defaults, injected sidecars) is silently missing from everything written meanwhile.",
        remediation: "Bring back the webhook's Pods or fix the Service it names; delete the webhook configuration if its operator was uninstalled.",
        reads: WEBHOOK_KINDS,
        run: Run::Related(|s, f, e| webhooks(s, f, e, false)),
    },
    Check {
        id: "reliability.ca-bundle-expired",
        pillar: R,
        title: "Expired or unreadable CA bundle",
        severity: Severity::High,
        rationale: "The API server verifies a webhook, aggregated API or conversion webhook with its caBundle; once every certificate in it has expired (or it holds none that parse) every call fails TLS verification: writes are rejected by fail-closed webhooks, the aggregated API is unavailable, and custom resources cannot be converted.",
        remediation: "Issue a new CA, re-sign the serving certificate, and update caBundle (cert-manager's CA injector or the operator's own certificate rotation does this when it is running and configured).",
        reads: CA_BUNDLE_KINDS,
        run: Run::Related(|s, _f, e| {
            let Some(now) = s.taken_at.map(|t| t.as_second()) else { return };
            for (subject, what, ca) in ca_bundles(s) {
                match ca {
                    CaBundle::Valid { not_after, subject: cn, certificates } if *not_after <= now => {
                        let all = if *certificates > 1 {
                            format!("all {certificates} certificates")
                        } else {
                            "the certificate".to_owned()
                        };
                        e.fail(
                            subject,
                            None,
                            format!(
                                "{what}: CA bundle expired: {all} expired, the last ({cn}) on {}",
                                date(*not_after)
                            ),
                        )
                    }
                    CaBundle::Valid { .. } => e.pass(subject),
                    CaBundle::Unreadable(why) => e.fail(subject, None, format!("{what}: CA bundle unreadable: {why}")),
                }
            }
        }),
    },
    Check {
        id: "reliability.ca-bundle-expiring",
        pillar: R,
        title: "CA bundle expiring within 30 days",
        severity: Severity::Medium,
        rationale: "When the CA a webhook, aggregated API or conversion webhook is verified with expires, every call to it fails; rotating it takes a new serving certificate as well, which is better done before than during an outage.",
        remediation: "Rotate the CA and the serving certificate before the date, and update caBundle; if a tool (cert-manager, the operator itself) should rotate it, find out why it has not.",
        reads: CA_BUNDLE_KINDS,
        run: Run::Related(|s, _f, e| {
            let Some(now) = s.taken_at.map(|t| t.as_second()) else { return };
            for (subject, what, ca) in ca_bundles(s) {
                let CaBundle::Valid { not_after, subject: cn, .. } = ca else { continue };
                if *not_after <= now {
                    continue;
                }
                // To the nearest day: a CA made for ten days and read a second later has ten left.
                let days = (*not_after - now + 43_200) / 86_400;
                e.expect(
                    *not_after - now > CA_WARNING_DAYS * 86_400,
                    subject,
                    None,
                    format!("{what}: CA bundle expires in {days} days ({cn}, {})", date(*not_after)),
                );
            }
        }),
    },
    Check {
        id: "reliability.apiservice-unavailable",
        pillar: R,
        title: "Aggregated APIService not available",
        severity: Severity::High,
        rationale: "An aggregated API (metrics.k8s.io, custom metrics, an operator's own API) that is not Available fails every request for it: autoscalers stop scaling on metrics, and clients that discover every API (kubectl, namespace deletion, garbage collection) report errors or stall.",
        remediation: "Bring back the Service and Pods that serve it (`kubectl get apiservice <name> -o yaml` says why it is unavailable); if the component was uninstalled, delete the APIService.",
        reads: &["APIService", "Service"],
        run: Run::Related(|s, f, e| {
            for api in &s.live.api_services {
                let Some(service) = &api.service else { continue };
                let subject = Subject::new(APIREGISTRATION, "APIService", &api.metadata);
                let exists = service_fact(f, service).is_some();
                match &api.available {
                    _ if !exists => e.fail(subject, None, format!("its Service {service} does not exist")),
                    Some(c) if !c.is_true() => e.fail(subject, None, format!("not Available: {}", c.explain())),
                    Some(_) => e.pass(subject),
                    // Not yet judged by the API server: nothing to say either way.
                    None => {}
                }
            }
        }),
    },
    Check {
        id: "operational-excellence.crd-stored-version-unserved",
        pillar: O,
        title: "CRD stores objects in a version it no longer serves",
        severity: Severity::Medium,
        rationale: "status.storedVersions lists every version objects may still be stored in. One that is no longer served cannot be removed from the CRD until every object is rewritten in a served version; an upgrade that drops it (or a storage migration never run) leaves objects that cannot be read.",
        remediation: "Rewrite every object in the storage version (kube-storage-version-migrator, or `kubectl get <kind> -A -o json | kubectl replace -f -`), then remove the old version from status.storedVersions (patch the CRD's status subresource).",
        reads: &["CustomResourceDefinition"],
        run: Run::Related(|s, _f, e| {
            for crd in &s.live.crds {
                if crd.stored_versions.is_empty() {
                    continue;
                }
                let subject = Subject::new(APIEXTENSIONS, "CustomResourceDefinition", &crd.metadata);
                let unserved: Vec<String> = crd
                    .stored_versions
                    .iter()
                    .filter_map(|v| match crd.versions.iter().find(|(name, _)| name == v) {
                        Some((_, true)) => None,
                        Some((_, false)) => Some(format!("{v} (not served)")),
                        None => Some(format!("{v} (not in spec.versions)")),
                    })
                    .collect();
                let served: Vec<&str> = crd.versions.iter().filter(|(_, s)| *s).map(|(v, _)| v.as_str()).collect();
                e.expect(
                    unserved.is_empty(),
                    subject,
                    None,
                    format!("objects may be stored in {}; served: {}", unserved.join(", "), served.join(", ")),
                );
            }
        }),
    },
    Check {
        id: "reliability.crd-conversion-unreachable",
        pillar: R,
        title: "CRD conversion webhook with no ready endpoints",
        severity: Severity::High,
        rationale: "A CRD with a conversion webhook needs it for every read and write in a version other than the one stored: with its Service gone or without ready Pods those requests fail, and so do the garbage collector and namespace deletion when they list the kind.",
        remediation: "Bring back the conversion webhook's Pods or fix spec.conversion.webhook.clientConfig.service; if the operator was uninstalled, delete its CRDs (and their objects) or set the conversion strategy to None.",
        reads: &["CustomResourceDefinition", "Service", "EndpointSlice"],
        run: Run::Related(|s, f, e| {
            for crd in &s.live.crds {
                let Some(service) = &crd.conversion else { continue };
                let subject = Subject::new(APIEXTENSIONS, "CustomResourceDefinition", &crd.metadata);
                match unreachable(s, f, service) {
                    Some(why) => e.fail(subject, None, format!("conversion webhook: {why}")),
                    None => e.pass(subject),
                }
            }
        }),
    },
    Check {
        id: "reliability.operator-crash-loop",
        pillar: R,
        title: "Operator or controller Pods in a crash loop",
        severity: Severity::High,
        rationale: "A controller that keeps crashing stops reconciling what it manages (certificates, ingress, policies, custom resources), and one that serves a webhook, an aggregated API or a conversion webhook takes the API requests that depend on it down with it.",
        remediation: "Read the crashing container's previous log (`kubectl logs <pod> -c <container> --previous`) and its last exit reason: fix its configuration, its permissions or its memory limit (OOMKilled), or roll back the last upgrade.",
        reads: &[
            "Pod",
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "Service",
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
            "APIService",
            "CustomResourceDefinition",
        ],
        run: Run::Related(|s, f, e| {
            let called = called_services(s, f);
            // The crash-looping Pods of each workload, in the order met.
            let mut crashing: Vec<(WorkloadKey<'_>, Option<&WorkloadState>, Vec<&CrashingPod>)> = Vec::new();
            for pod in crash_looping(s) {
                let (kind, name, workload) = owning_workload(s, pod);
                let key = (kind, pod.metadata.namespace.as_deref(), name);
                match crashing.iter_mut().find(|(k, _, _)| *k == key) {
                    Some((_, _, pods)) => pods.push(pod),
                    None => crashing.push((key, workload, vec![pod])),
                }
            }
            for ((kind, namespace, name), workload, pods) in &crashing {
                let because = match workload {
                    Some(w) => workload_because(&called, w),
                    None => {
                        let labels = pods[0].metadata.labels.clone().unwrap_or_default();
                        operator_because(&called, namespace.unwrap_or_default(), name, None, &labels)
                    }
                };
                let Some(because) = because else { continue };
                let meta = workload.map(|w| w.metadata.clone()).unwrap_or_else(|| ObjectMeta {
                    name: Some(name.clone()),
                    namespace: namespace.map(str::to_owned),
                    ..ObjectMeta::default()
                });
                let shown: Vec<String> = pods.iter().take(3).map(|p| describe_crash(p)).collect();
                let more = if pods.len() > 3 { format!("; and {} more", pods.len() - 3) } else { String::new() };
                e.fail(
                    Subject::new(api_version(kind), kind, &meta),
                    Some(&pods[0].container),
                    format!("crash-looping ({because}): {}{more}", shown.join("; ")),
                );
            }
            for w in &s.live.workloads {
                let key = (w.kind, w.metadata.namespace.as_deref(), w.metadata.name.clone().unwrap_or_default());
                if !crashing.iter().any(|(k, _, _)| *k == key) && workload_because(&called, w).is_some() {
                    e.pass(Subject::new(api_version(w.kind), w.kind, &w.metadata));
                }
            }
        }),
    },
    Check {
        id: "reliability.operator-unavailable",
        pillar: R,
        title: "Operator Deployment not Available",
        severity: Severity::High,
        rationale: "A Deployment reports Available when enough of its Pods are ready. An operator below that reconciles slowly or not at all, and the webhooks, aggregated APIs and conversion webhooks it serves fail or time out.",
        remediation: "`kubectl describe deployment <name>` and its Pods' events say why Pods are not ready: image pulls, scheduling (resources, taints, affinity), failing readiness probes, or crashes.",
        reads: OPERATOR_KINDS,
        run: Run::Related(|s, f, e| {
            let called = called_services(s, f);
            for w in s.live.workloads.iter().filter(|w| w.kind == "Deployment") {
                let Some(available) = &w.available else { continue };
                let Some(because) = workload_because(&called, w) else { continue };
                let replicas = w.replicas.unwrap_or(1);
                e.expect(
                    available.is_true(),
                    Subject::new("apps/v1", "Deployment", &w.metadata),
                    None,
                    format!(
                        "not Available ({}), {} of {replicas} replicas available; {because}",
                        available.explain(),
                        w.available_replicas
                    ),
                );
            }
        }),
    },
];

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::run;
    use crate::options::Options;
    use crate::testing::{merge, snapshot};

    /// When the fixtures were "read from the cluster": 2030-01-01.
    const NOW: i64 = 1_893_456_000;

    /// (passed, failed findings' messages) of one check over these objects, read live.
    fn judged(id: &str, objects: &[Value]) -> (u32, Vec<String>) {
        let mut s = snapshot(objects);
        s.taken_at = Some(k8s_openapi::jiff::Timestamp::from_second(NOW).unwrap());
        let report = run(&s, &Options { include_checks: vec![id.to_owned()], ..Options::default() });
        let r = &report.results[0];
        assert_eq!(r.unavailable, None, "{id}");
        (r.passed, r.failed.iter().map(|h| format!("{} {}: {}", h.kind, h.name, h.message)).collect())
    }

    fn flags(id: &str, objects: &[Value], wanted: &str) {
        let (_, failed) = judged(id, objects);
        assert!(failed.len() == 1 && failed[0].contains(wanted), "{id}: {failed:?}, wanted {wanted:?}");
    }

    fn passes(id: &str, objects: &[Value]) {
        let (passed, failed) = judged(id, objects);
        assert!(failed.is_empty() && passed >= 1, "{id}: {passed} passed, {failed:?}");
    }

    fn service(name: &str, selector: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "policy"},
               "spec": {"selector": selector, "ports": [{"port": 443, "targetPort": 9443}]}})
    }

    fn slice(service: &str, ready: &[bool]) -> Value {
        let endpoints: Vec<Value> =
            ready.iter().map(|r| json!({"addresses": ["10.0.0.1"], "conditions": {"ready": r}})).collect();
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": format!("{service}-x"), "namespace": "policy", "labels": {"kubernetes.io/service-name": service}},
               "addressType": "IPv4", "endpoints": endpoints})
    }

    fn webhook_configuration(kind: &str, policy: &str, ca: Option<&str>) -> Value {
        let mut client = json!({"service": {"name": "gate", "namespace": "policy", "path": "/validate"}});
        if let Some(ca) = ca {
            client["caBundle"] = base64(ca);
        }
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": "gate"},
               "webhooks": [{"name": "gate.policy.example.com", "failurePolicy": policy, "clientConfig": client,
                             "sideEffects": "None", "admissionReviewVersions": ["v1"],
                             "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]}]})
    }

    fn api_service(available: Option<(&str, &str)>, ca: Option<&str>) -> Value {
        let mut object = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                     "service": {"name": "gate", "namespace": "policy"}}});
        if let Some((status, reason)) = available {
            object["status"] = json!({"conditions": [{"type": "Available", "status": status, "reason": reason,
                                                     "message": "failing or missing response"}]});
        }
        if let Some(ca) = ca {
            object["spec"]["caBundle"] = base64(ca);
        }
        object
    }

    fn crd(versions: Value, stored: &[&str], conversion: Option<&str>) -> Value {
        let mut object = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": versions},
            "status": {"storedVersions": stored}});
        if let Some(service) = conversion {
            object["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                "clientConfig": {"service": {"name": service, "namespace": "policy"}}}});
        }
        object
    }

    fn base64(text: &str) -> Value {
        serde_json::to_value(k8s_openapi::ByteString(text.as_bytes().to_vec())).unwrap()
    }

    /// A self-signed CA valid from 2029 to the given day.
    fn ca(year: i32, month: u8, day: u8) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("ca-{year}-{month}-{day}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2029, 1, 1);
        params.not_after = rcgen::date_time_ymd(year, month, day);
        params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().pem()
    }

    fn deployment(name: &str, labels: Value, available: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "policy"},
               "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "manager", "image": "gate:1"}]}}},
               "status": {"availableReplicas": if available == "True" { 2 } else { 0 },
                          "conditions": [{"type": "Available", "status": available, "reason": "MinimumReplicasUnavailable"}]}})
    }

    /// A Pod of Deployment `name` (through its ReplicaSet) whose container is in `state`.
    fn pod_of(name: &str, labels: Value, restarts: i64, waiting: Option<&str>, finished: &str) -> Value {
        let mut labels = labels;
        labels["pod-template-hash"] = json!("5d8f7");
        let mut status = json!({"name": "manager", "restartCount": restarts, "ready": false, "image": "gate:1", "imageID": "",
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": finished}}, "state": {"running": {}}});
        if let Some(reason) = waiting {
            status["state"] = json!({"waiting": {"reason": reason}});
        }
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": format!("{name}-5d8f7-abcde"), "namespace": "policy", "labels": labels,
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-5d8f7"),
                                                 "uid": "u", "controller": true}]},
               "spec": {"containers": [{"name": "manager", "image": "gate:1"}]},
               "status": {"containerStatuses": [status]}})
    }

    #[test]
    fn a_webhook_whose_service_cannot_answer_is_flagged_by_its_failure_policy() {
        let fail = "reliability.webhook-fail-closed-unreachable";
        let ignore = "reliability.webhook-fail-open-unreachable";
        let validating = |policy| webhook_configuration("ValidatingWebhookConfiguration", policy, None);
        let svc = service("gate", json!({"app": "gate"}));
        flags(fail, &[validating("Fail")], "gate.policy.example.com: its Service policy/gate does not exist");
        flags(fail, &[validating("Fail"), svc.clone()], "no endpoints (no EndpointSlice)");
        flags(fail, &[validating("Fail"), svc.clone(), slice("gate", &[false, false])], "has no ready endpoints");
        let other_port = merge(svc.clone(), json!({"spec": {"ports": [{"port": 8443}]}}));
        flags(fail, &[validating("Fail"), other_port, slice("gate", &[true])], "has no port 443");
        passes(fail, &[validating("Fail"), svc.clone(), slice("gate", &[false, true])]);
        // The default policy is Fail; a fail-open one is the other check's.
        let mut default = validating("Fail");
        default["webhooks"][0].as_object_mut().unwrap().remove("failurePolicy");
        flags(fail, &[default, svc.clone()], "policy/gate");
        let (passed, failed) = judged(fail, &[validating("Ignore")]);
        assert_eq!((passed, failed.len()), (0, 0), "a fail-open webhook is not judged here");
        let mutating = webhook_configuration("MutatingWebhookConfiguration", "Ignore", None);
        flags(
            ignore,
            std::slice::from_ref(&mutating),
            "MutatingWebhookConfiguration gate: webhook gate.policy.example.com",
        );
        passes(ignore, &[mutating, svc, slice("gate", &[true])]);
        // A webhook called by URL has no Service to judge.
        let mut by_url = validating("Fail");
        by_url["webhooks"][0]["clientConfig"] = json!({"url": "https://gate.example.com/validate"});
        assert_eq!(judged(fail, &[by_url]), (0, vec![]));
    }

    #[test]
    fn ca_bundles_that_have_expired_or_expire_within_30_days_are_flagged() {
        let (expired, expiring, valid) = (ca(2029, 12, 1), ca(2030, 1, 20), ca(2031, 1, 1));
        let webhook = |ca: &str| webhook_configuration("ValidatingWebhookConfiguration", "Fail", Some(ca));
        let api = |ca: &str| api_service(Some(("True", "Passed")), Some(ca));
        let crd_with = |ca: &str| {
            let mut o = crd(json!([{"name": "v1", "served": true, "storage": true}]), &["v1"], Some("gate"));
            o["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"] = base64(ca);
            o
        };
        let id = "reliability.ca-bundle-expired";
        flags(
            id,
            &[webhook(&expired)],
            "CA bundle expired: the certificate expired, the last (ca-2029-12-1) on 2029-12-01",
        );
        flags(id, &[api(&expired)], "APIService v1beta1.metrics.k8s.io: spec.caBundle: CA bundle expired");
        flags(id, &[crd_with(&expired)], "conversion webhook: CA bundle expired");
        flags(id, &[webhook("not a certificate")], "CA bundle unreadable");
        passes(id, &[webhook(&expiring), api(&valid)]);
        // A bundle works while any of its CAs does: an old CA left beside the new one is fine.
        passes(id, &[webhook(&format!("{expired}{valid}"))]);

        let id = "reliability.ca-bundle-expiring";
        flags(id, &[webhook(&expiring)], "CA bundle expires in 19 days (ca-2030-1-20, 2030-01-20 00:00 UTC)");
        flags(id, &[api(&expiring)], "APIService v1beta1.metrics.k8s.io");
        flags(id, &[crd_with(&expiring)], "conversion webhook: CA bundle expires in 19 days");
        passes(id, &[webhook(&valid), api(&valid), crd_with(&format!("{expiring}{valid}"))]);
        assert_eq!(judged(id, &[webhook(&expired)]), (0, vec![]), "an expired one is the other check's");
    }

    #[test]
    fn an_apiservice_that_is_not_available_or_has_no_service_is_flagged() {
        let id = "reliability.apiservice-unavailable";
        let svc = service("gate", json!({"app": "gate"}));
        flags(id, &[api_service(Some(("False", "ServiceNotFound")), None)], "its Service policy/gate does not exist");
        flags(
            id,
            &[api_service(Some(("False", "FailedDiscoveryCheck")), None), svc.clone()],
            "not Available: FailedDiscoveryCheck: failing or missing response",
        );
        passes(id, &[api_service(Some(("True", "Passed")), None), svc.clone()]);
        let mut local = api_service(Some(("True", "Local")), None);
        local["spec"].as_object_mut().unwrap().remove("service");
        assert_eq!(judged(id, &[local]), (0, vec![]), "a local APIService is the API server's own");
    }

    #[test]
    fn a_crd_storing_an_unserved_version_or_with_an_unreachable_conversion_webhook_is_flagged() {
        let id = "operational-excellence.crd-stored-version-unserved";
        let both =
            json!([{"name": "v1", "served": false, "storage": false}, {"name": "v2", "served": true, "storage": true}]);
        flags(id, &[crd(both.clone(), &["v1", "v2"], None)], "objects may be stored in v1 (not served); served: v2");
        let only_v2 = json!([{"name": "v2", "served": true, "storage": true}]);
        flags(id, &[crd(only_v2.clone(), &["v1", "v2"], None)], "v1 (not in spec.versions)");
        passes(id, &[crd(both, &["v2"], None)]);

        let id = "reliability.crd-conversion-unreachable";
        flags(
            id,
            &[crd(only_v2.clone(), &["v2"], Some("gate"))],
            "conversion webhook: its Service policy/gate does not exist",
        );
        let svc = service("gate", json!({"app": "gate"}));
        flags(
            id,
            &[crd(only_v2.clone(), &["v2"], Some("gate")), svc.clone(), slice("gate", &[false])],
            "no ready endpoints",
        );
        passes(id, &[crd(only_v2.clone(), &["v2"], Some("gate")), svc, slice("gate", &[true])]);
        assert_eq!(judged(id, &[crd(only_v2, &["v2"], None)]), (0, vec![]), "no conversion webhook");
    }

    #[test]
    fn operators_are_the_workloads_behind_the_apis_and_those_named_as_controllers() {
        assert!(named_as_operator("cert-manager") && named_as_operator("ingress-nginx-controller"));
        assert!(named_as_operator("controller-manager") && named_as_operator("prometheus_Operator"));
        assert!(!named_as_operator("web") && !named_as_operator("managers-portal") && !named_as_operator("opera"));
        let id = "reliability.operator-unavailable";
        let gate = json!({"app": "gate"});
        // Behind a webhook's Service.
        let serving =
            [webhook_configuration("ValidatingWebhookConfiguration", "Fail", None), service("gate", gate.clone())];
        let mut broken = serving.to_vec();
        broken.push(deployment("gate", gate.clone(), "False"));
        flags(
            id,
            &broken,
            "not Available (MinimumReplicasUnavailable), 0 of 2 replicas available; it serves the admission webhook gate.policy.example.com",
        );
        let mut healthy = serving.to_vec();
        healthy.push(deployment("gate", gate.clone(), "True"));
        passes(id, &healthy);
        // Named as one (kubebuilder's label), or not an operator at all.
        flags(
            id,
            &[deployment("widgets", json!({"control-plane": "controller-manager"}), "False")],
            "named as a controller",
        );
        assert_eq!(judged(id, &[deployment("web", json!({"app": "web"}), "False")]), (0, vec![]));
    }

    #[test]
    fn crash_looping_controller_pods_are_flagged_on_their_deployment() {
        let id = "reliability.operator-crash-loop";
        let labels = json!({"app": "cert-manager"});
        let manager = deployment("cert-manager", labels.clone(), "True");
        let crashing = pod_of("cert-manager", labels.clone(), 7, Some("CrashLoopBackOff"), "2029-12-31T23:59:00Z");
        let (_, failed) = judged(id, &[manager.clone(), crashing]);
        assert_eq!(
            failed,
            vec![
                "Deployment cert-manager: crash-looping (it is named as a controller): Pod cert-manager-5d8f7-abcde container manager: 7 restarts, in CrashLoopBackOff, last exit 1 (Error)"
            ]
        );
        // Restarting again and again, between back-offs: recent failures count.
        flags(
            id,
            &[manager.clone(), pod_of("cert-manager", labels.clone(), 4, None, "2029-12-31T23:30:00Z")],
            "4 restarts",
        );
        // Old restarts, or a healthy Pod, are not a crash loop.
        passes(id, &[manager.clone(), pod_of("cert-manager", labels.clone(), 4, None, "2029-12-30T00:00:00Z")]);
        passes(id, &[manager, pod_of("cert-manager", labels, 0, None, "2029-12-30T00:00:00Z")]);
        // Not an operator: not this check's business.
        let web = json!({"app": "web"});
        let (passed, failed) = judged(
            id,
            &[
                deployment("web", web.clone(), "True"),
                pod_of("web", web, 9, Some("CrashLoopBackOff"), "2029-12-31T23:59:00Z"),
            ],
        );
        assert_eq!((passed, failed.len()), (0, 0));
        // A bare Pod of a controller is named itself.
        let mut bare = pod_of("operator", json!({"app": "x"}), 5, Some("CrashLoopBackOff"), "2029-12-31T23:59:00Z");
        bare["metadata"].as_object_mut().unwrap().remove("ownerReferences");
        flags(id, &[bare], "Pod operator-5d8f7-abcde: crash-looping");
    }

    #[test]
    fn the_object_bound_counts_each_object_once_and_a_healthy_pod_leaves_nothing() {
        let labels = json!({"app": "gate"});
        let s = snapshot(&[
            deployment("gate", labels.clone(), "True"),
            crd(json!([{"name": "v1", "served": true, "storage": true}]), &["v1"], None),
            webhook_configuration("ValidatingWebhookConfiguration", "Fail", None),
            slice("gate", &[true]),
            slice("gate", &[true]),
            pod_of("gate", labels.clone(), 0, None, "2029-12-30T00:00:00Z"),
        ]);
        assert_eq!(s.len(), 4, "the Deployment, the CRD, the webhook configuration, the Service's endpoints");
        assert_eq!(s.live.ready_endpoints.get(&("policy".to_owned(), "gate".to_owned())), Some(&2));
        assert!(s.live.crashing_pods.is_empty() && s.pods.is_empty());
    }

    #[test]
    fn every_check_here_needs_a_live_cluster_and_is_skipped_offline() {
        let s = snapshot(&[webhook_configuration("ValidatingWebhookConfiguration", "Fail", None)]);
        let report = run(&s, &Options::default());
        for check in CHECKS {
            assert!(check.needs_cluster(), "{}", check.id);
            let result = report.results.iter().find(|r| r.check.id == check.id).unwrap();
            assert_eq!(result.unavailable.as_deref(), Some(crate::engine::NEEDS_CLUSTER));
            assert_eq!((result.passed, result.failed.len()), (0, 0));
        }
        // Besides these, only the image-vulnerability check (Trivy Operator's scans) needs one.
        let live = crate::rules::vulnerabilities::CHECKS;
        assert_eq!(report.results.iter().filter(|r| r.unavailable.is_some()).count(), CHECKS.len() + live.len());
        let others = crate::registry().iter().filter(|c| !CHECKS.iter().chain(live).any(|o| o.id == c.id));
        assert!(!others.clone().any(Check::needs_cluster));
    }
}
