//! The live state the checks of the cluster's other operators read (rules/operators.rs): compact
//! facts about admission webhooks, aggregated APIServices, CRDs, the endpoints of Services, the Pods
//! that crash, and the availability of workloads. Each is read from the object as the API
//! server serves it, status included (the snapshot's typed kinds drop status), and keeps only
//! what those checks need: a Pod that does not crash leaves nothing, and an EndpointSlice only
//! adds to its Service's count of ready endpoints.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::subject::EXEMPT_ANNOTATION;

/// Restarts after which a container whose last run failed recently is crash-looping even if it
/// is not waiting in `CrashLoopBackOff` at the moment the Pod was read.
pub const RESTARTS_RISING: i64 = 3;

/// Every fact the operator checks read.
#[derive(Clone, Debug, Default)]
pub struct LiveState {
    pub webhook_configurations: Vec<WebhookConfiguration>,
    pub api_services: Vec<ApiService>,
    pub crds: Vec<Crd>,
    /// Ready endpoints of each Service (namespace, name) that has an EndpointSlice, summed over
    /// its slices: a Service with slices but none ready is here with 0.
    pub ready_endpoints: BTreeMap<(String, String), u32>,
    /// Pods (a controller's too) with a container in a crash loop.
    pub crashing_pods: Vec<CrashingPod>,
    /// Deployments, StatefulSets and DaemonSets: names, labels and availability.
    pub workloads: Vec<WorkloadState>,
}

/// A Service that the API server calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    /// The port the API server calls (443 when not set).
    pub port: i32,
}

impl std::fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// A CA bundle (base64 PEM), read once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaBundle {
    /// The certificate that stays valid longest (a bundle works while any of its CAs does).
    Valid {
        /// Seconds since the epoch.
        not_after: i64,
        /// Its subject's common name, or the whole subject.
        subject: String,
        certificates: usize,
    },
    /// Not base64 PEM holding a certificate: the API server cannot verify anything with it.
    Unreadable(String),
}

/// One webhook of a Validating- or MutatingWebhookConfiguration.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub name: String,
    /// None for a webhook called by URL.
    pub service: Option<ServiceRef>,
    /// `failurePolicy: Fail`, the default in admissionregistration.k8s.io/v1.
    pub fails_closed: bool,
    pub ca_bundle: Option<CaBundle>,
}

/// A Validating- or MutatingWebhookConfiguration.
#[derive(Clone, Debug)]
pub struct WebhookConfiguration {
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub webhooks: Vec<Webhook>,
}

/// A status condition, as much as the checks say of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl Condition {
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }

    /// `reason: message`, or whichever there is.
    pub fn explain(&self) -> String {
        match (self.reason.as_deref(), self.message.as_deref().map(|m| m.trim_end_matches('.'))) {
            (Some(r), Some(m)) if !m.is_empty() => format!("{r}: {m}"),
            (Some(r), _) => r.to_owned(),
            (None, Some(m)) => m.to_owned(),
            (None, None) => format!("status {}", self.status),
        }
    }
}

/// An APIService.
#[derive(Clone, Debug)]
pub struct ApiService {
    pub metadata: ObjectMeta,
    /// None for a local APIService (served by the API server itself).
    pub service: Option<ServiceRef>,
    pub available: Option<Condition>,
    pub ca_bundle: Option<CaBundle>,
}

/// A CustomResourceDefinition's versions and conversion webhook.
#[derive(Clone, Debug)]
pub struct Crd {
    pub metadata: ObjectMeta,
    /// spec.versions: name and whether it is served.
    pub versions: Vec<(String, bool)>,
    pub stored_versions: Vec<String>,
    /// The conversion webhook's Service (strategy Webhook).
    pub conversion: Option<ServiceRef>,
    pub ca_bundle: Option<CaBundle>,
}

/// A container in a crash loop, and the Pod it is in.
#[derive(Clone, Debug)]
pub struct CrashingPod {
    /// Name, namespace and labels of the Pod.
    pub metadata: ObjectMeta,
    /// The controller that owns it (kind, name), if one does.
    pub owner: Option<(String, String)>,
    pub container: String,
    pub restarts: i64,
    /// Waiting in `CrashLoopBackOff` when read.
    pub backing_off: bool,
    /// The last run's end: reason (`Error`, `OOMKilled`) and exit code.
    pub last_exit: Option<(String, i64)>,
    /// When the last run ended, seconds since the epoch.
    pub last_finished: Option<i64>,
}

/// A Deployment, StatefulSet or DaemonSet: what makes it an operator, and whether it is up.
#[derive(Clone, Debug)]
pub struct WorkloadState {
    pub kind: &'static str,
    /// Name, namespace, labels, and the exemption annotation.
    pub metadata: ObjectMeta,
    pub pod_labels: BTreeMap<String, String>,
    pub replicas: Option<i64>,
    pub available_replicas: i64,
    /// The Deployment's `Available` condition, once its controller has reported one.
    pub available: Option<Condition>,
}

impl LiveState {
    /// Objects (and Service endpoint counts) held here only: CRDs and workloads are counted
    /// where the snapshot keeps them as objects, so that the object bound counts each once.
    pub fn held_here_only(&self) -> usize {
        self.webhook_configurations.len()
            + self.api_services.len()
            + self.ready_endpoints.len()
            + self.crashing_pods.len()
    }

    /// Reads what the operator checks need from an object of any kind (most leave nothing).
    pub fn note(&mut self, group: &str, kind: &str, object: &Value) {
        match (group, kind) {
            ("", "Pod") => self.note_pod(object),
            ("apps" | "extensions", "Deployment") => self.note_workload(object, "Deployment"),
            ("apps", "StatefulSet") => self.note_workload(object, "StatefulSet"),
            ("apps" | "extensions", "DaemonSet") => self.note_workload(object, "DaemonSet"),
            ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration") => {
                self.add_webhook_configuration(object, kind)
            }
            ("apiregistration.k8s.io", "APIService") => self.add_api_service(object),
            ("apiextensions.k8s.io", "CustomResourceDefinition") => self.add_crd(object),
            ("discovery.k8s.io", "EndpointSlice") => self.add_endpoint_slice(object),
            _ => {}
        }
    }

    fn add_webhook_configuration(&mut self, object: &Value, kind: &str) {
        let kind = if kind.starts_with("Mutating") {
            "MutatingWebhookConfiguration"
        } else {
            "ValidatingWebhookConfiguration"
        };
        let webhooks = array(object, "/webhooks")
            .map(|w| Webhook {
                name: text(w, "/name").unwrap_or_default(),
                service: service_ref(w.pointer("/clientConfig/service")),
                fails_closed: text(w, "/failurePolicy").is_none_or(|p| p == "Fail"),
                ca_bundle: ca_bundle(w.pointer("/clientConfig/caBundle")),
            })
            .collect();
        self.webhook_configurations.push(WebhookConfiguration { kind, metadata: meta(object, false), webhooks });
    }

    fn add_api_service(&mut self, object: &Value) {
        self.api_services.push(ApiService {
            metadata: meta(object, false),
            service: service_ref(object.pointer("/spec/service")),
            available: condition(object, "Available"),
            ca_bundle: ca_bundle(object.pointer("/spec/caBundle")),
        });
    }

    fn add_crd(&mut self, object: &Value) {
        let webhook =
            object.pointer("/spec/conversion").filter(|c| c.get("strategy").and_then(Value::as_str) == Some("Webhook"));
        let client = webhook.and_then(|c| c.pointer("/webhook/clientConfig"));
        self.crds.push(Crd {
            metadata: meta(object, false),
            versions: array(object, "/spec/versions")
                .filter_map(|v| Some((text(v, "/name")?, v.get("served").and_then(Value::as_bool).unwrap_or(false))))
                .collect(),
            stored_versions: array(object, "/status/storedVersions")
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            conversion: service_ref(client.and_then(|c| c.get("service"))),
            ca_bundle: ca_bundle(client.and_then(|c| c.get("caBundle"))),
        });
    }

    /// Adds an EndpointSlice's ready endpoints to its Service's count.
    fn add_endpoint_slice(&mut self, object: &Value) {
        let (Some(namespace), Some(service)) =
            (text(object, "/metadata/namespace"), text(object, "/metadata/labels/kubernetes.io~1service-name"))
        else {
            return;
        };
        // A nil `ready` is to be read as ready (discovery.k8s.io/v1).
        let ready = array(object, "/endpoints")
            .filter(|e| e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false))
            .count() as u32;
        *self.ready_endpoints.entry((namespace, service)).or_default() += ready;
    }

    /// Keeps a fact for each container of the Pod that is crash-looping (nothing otherwise).
    fn note_pod(&mut self, object: &Value) {
        let statuses = ["/status/initContainerStatuses", "/status/containerStatuses"];
        for status in statuses.into_iter().flat_map(|p| array(object, p)) {
            let restarts = status.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            let backing_off = text(status, "/state/waiting/reason").as_deref() == Some("CrashLoopBackOff");
            let last = status.pointer("/lastState/terminated");
            let last_exit = last.map(|t| {
                (
                    text(t, "/reason").unwrap_or_else(|| "Terminated".into()),
                    t.get("exitCode").and_then(Value::as_i64).unwrap_or(0),
                )
            });
            let failed_last = last_exit.as_ref().is_some_and(|(_, code)| *code != 0);
            let crash_looping = backing_off || (restarts >= RESTARTS_RISING && failed_last);
            if !crash_looping {
                continue;
            }
            let owner = array(object, "/metadata/ownerReferences")
                .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
                .and_then(|o| Some((text(o, "/kind")?, text(o, "/name")?)));
            self.crashing_pods.push(CrashingPod {
                metadata: meta(object, true),
                owner,
                container: text(status, "/name").unwrap_or_default(),
                restarts,
                backing_off,
                last_exit,
                last_finished: last.and_then(|t| timestamp(t, "/finishedAt")),
            });
        }
    }

    /// Keeps a Deployment's, StatefulSet's or DaemonSet's names, labels and availability.
    fn note_workload(&mut self, object: &Value, kind: &'static str) {
        let pod_labels = object
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
            .unwrap_or_default();
        let int = |pointer: &str| object.pointer(pointer).and_then(Value::as_i64);
        self.workloads.push(WorkloadState {
            kind,
            metadata: meta(object, true),
            pod_labels,
            replicas: if kind == "DaemonSet" { int("/status/desiredNumberScheduled") } else { int("/spec/replicas") },
            available_replicas: int(if kind == "DaemonSet" {
                "/status/numberAvailable"
            } else {
                "/status/availableReplicas"
            })
            .unwrap_or(0),
            available: (kind == "Deployment").then(|| condition(object, "Available")).flatten(),
        });
    }
}

fn text(value: &Value, pointer: &str) -> Option<String> {
    value.pointer(pointer).and_then(Value::as_str).map(str::to_owned)
}

fn array<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    value.pointer(pointer).and_then(Value::as_array).into_iter().flatten()
}

fn timestamp(value: &Value, pointer: &str) -> Option<i64> {
    value.pointer(pointer)?.as_str()?.parse::<k8s_openapi::jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// The object's name, namespace, uid (the offline reader's source), the exemption annotation,
/// and with `labels` its labels.
fn meta(object: &Value, labels: bool) -> ObjectMeta {
    let field = |name: &str| text(object, &format!("/metadata/{name}"));
    let exempt = EXEMPT_ANNOTATION;
    ObjectMeta {
        name: field("name"),
        namespace: field("namespace"),
        uid: field("uid"),
        annotations: text(object, &format!("/metadata/annotations/{}", exempt.replace('/', "~1")))
            .map(|v| [(exempt.to_owned(), v)].into()),
        labels: labels
            .then(|| object.pointer("/metadata/labels").and_then(|l| serde_json::from_value(l.clone()).ok()))
            .flatten(),
        ..ObjectMeta::default()
    }
}

fn service_ref(service: Option<&Value>) -> Option<ServiceRef> {
    let service = service?;
    Some(ServiceRef {
        namespace: text(service, "/namespace")?,
        name: text(service, "/name")?,
        port: service.get("port").and_then(Value::as_i64).map_or(443, |p| p as i32),
    })
}

fn condition(object: &Value, kind: &str) -> Option<Condition> {
    let c = array(object, "/status/conditions").find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?;
    Some(Condition { status: text(c, "/status")?, reason: text(c, "/reason"), message: text(c, "/message") })
}

/// Reads a base64 PEM CA bundle; None when there is none (the API server's own trust roots).
pub fn ca_bundle(encoded: Option<&Value>) -> Option<CaBundle> {
    let encoded = encoded?.as_str().filter(|s| !s.is_empty())?;
    let Ok(bytes) = serde_json::from_value::<k8s_openapi::ByteString>(Value::String(encoded.to_owned())) else {
        return Some(CaBundle::Unreadable("not base64".into()));
    };
    Some(read_pem(&bytes.0))
}

/// The certificate of a PEM bundle that stays valid longest.
pub fn read_pem(pem: &[u8]) -> CaBundle {
    let mut best: Option<(i64, String)> = None;
    let mut certificates = 0;
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = match block {
            Ok(block) => block,
            Err(e) => return CaBundle::Unreadable(format!("not PEM: {e}")),
        };
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = match block.parse_x509() {
            Ok(cert) => cert,
            Err(e) => return CaBundle::Unreadable(format!("a certificate that does not parse: {e}")),
        };
        certificates += 1;
        let not_after = cert.validity().not_after.timestamp();
        if best.as_ref().is_none_or(|(t, _)| not_after > *t) {
            let subject = cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok().map(str::to_owned))
                .unwrap_or_else(|| cert.subject().to_string());
            best = Some((not_after, subject));
        }
    }
    match best {
        Some((not_after, subject)) => CaBundle::Valid { not_after, subject, certificates },
        None => CaBundle::Unreadable("no certificate in it".into()),
    }
}
