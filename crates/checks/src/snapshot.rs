//! The objects the checks read, folded from whatever the cluster (or a manifest file) holds.
//!
//! Objects arrive as JSON in any served API version; kinds whose older versions differ only
//! in the fields the checks do not read (PodDisruptionBudget policy/v1beta1, HPA
//! autoscaling/v2beta2, CronJob batch/v1beta1) are read into the current typed struct.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, Node, PersistentVolumeClaim, Pod, PodTemplate, PodTemplateSpec,
    ReplicationController, ResourceQuota, Service,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::de::DeserializeOwned;

use crate::subject::EXEMPT_ANNOTATION;

/// The bytes of each ConfigMap value the snapshot keeps.
pub const CONFIG_MAP_VALUE_KEPT: usize = 64 * 1024;

/// The kinds of workload a person edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    ReplicaSet,
    ReplicationController,
    /// A PodTemplate object: a pod spec kept for others to run.
    PodTemplate,
    /// Any other kind with a pod template (`spec.template` or `spec.jobTemplate.spec.template`),
    /// such as an Argo Rollout: its kind and apiVersion as written, and whether it serves
    /// (a `spec.template`) or runs to completion (a job template).
    Custom {
        kind: &'static str,
        api_version: &'static str,
        serves: bool,
    },
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::ReplicationController => "ReplicationController",
            WorkloadKind::PodTemplate => "PodTemplate",
            WorkloadKind::Custom { kind, .. } => kind,
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            WorkloadKind::Job | WorkloadKind::CronJob => "batch/v1",
            WorkloadKind::ReplicationController | WorkloadKind::PodTemplate => "v1",
            WorkloadKind::Custom { api_version, .. } => api_version,
            _ => "apps/v1",
        }
    }

    /// Long-running workloads (not run-to-completion, and not a template kept for later).
    pub fn serves(self) -> bool {
        match self {
            WorkloadKind::Job | WorkloadKind::CronJob | WorkloadKind::PodTemplate => false,
            WorkloadKind::Custom { serves, .. } => serves,
            _ => true,
        }
    }

    /// Labels the kind's controller adds to the Pods it creates, beside the template's own:
    /// a Service or policy may select them.
    pub fn controller_labels(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::Deployment => &["pod-template-hash"],
            WorkloadKind::StatefulSet => {
                &["statefulset.kubernetes.io/pod-name", "controller-revision-hash", "apps.kubernetes.io/pod-index"]
            }
            WorkloadKind::DaemonSet => &["controller-revision-hash", "pod-template-generation"],
            WorkloadKind::Job | WorkloadKind::CronJob => &[
                "job-name",
                "controller-uid",
                "batch.kubernetes.io/job-name",
                "batch.kubernetes.io/controller-uid",
                "batch.kubernetes.io/job-completion-index",
            ],
            WorkloadKind::Custom { .. } => {
                &["pod-template-hash", "rollouts-pod-template-hash", "controller-revision-hash"]
            }
            WorkloadKind::ReplicaSet | WorkloadKind::ReplicationController | WorkloadKind::PodTemplate => &[],
        }
    }
}

/// A workload and the pod template it runs, whatever its kind.
#[derive(Clone, Debug)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub metadata: ObjectMeta,
    /// Desired replicas (Deployment, StatefulSet, ReplicaSet); None for the others.
    pub replicas: Option<i32>,
    pub selector: Option<LabelSelector>,
    pub template: PodTemplateSpec,
    /// Deployment, StatefulSet, DaemonSet, ReplicaSet history kept, where the kind has it.
    pub revision_history_limit: Option<i32>,
    /// Job: ttlSecondsAfterFinished; CronJob: of its job template.
    pub ttl_seconds_after_finished: Option<i32>,
    /// CronJob only.
    pub cron: Option<CronSettings>,
    /// Deployment rolling update maxUnavailable, as written.
    pub max_unavailable: Option<String>,
    /// StatefulSet volumeClaimTemplates names.
    pub claim_templates: Vec<String>,
}

/// The CronJob settings the checks read.
#[derive(Clone, Debug, Default)]
pub struct CronSettings {
    pub concurrency_policy: Option<String>,
    pub successful_jobs_history_limit: Option<i32>,
    pub failed_jobs_history_limit: Option<i32>,
    pub starting_deadline_seconds: Option<i64>,
}

/// Everything the checks read.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub namespaces: Vec<Namespace>,
    pub workloads: Vec<Workload>,
    /// Pods that no workload controls (controlled Pods are assessed through their workload).
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
    pub network_policies: Vec<NetworkPolicy>,
    pub pdbs: Vec<PodDisruptionBudget>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    pub resource_quotas: Vec<ResourceQuota>,
    pub limit_ranges: Vec<LimitRange>,
    pub pvcs: Vec<PersistentVolumeClaim>,
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub config_maps: Vec<ConfigMap>,
    pub nodes: Vec<Node>,
    /// Names of the CustomResourceDefinitions present.
    pub crds: Vec<String>,
    /// Webhooks, APIServices, CRDs, endpoints, crashing Pods and workload availability, status
    /// included (the checks of the cluster's other operators).
    pub live: crate::live::LiveState,
    /// Argo CD Applications, status included (the GitOps checks).
    pub applications: Vec<kube9_argocd::app::Application>,
    /// Argo CD AppProjects.
    pub app_projects: Vec<kube9_argocd::app::AppProject>,
    /// Trivy Operator's VulnerabilityReports, compact (the image-vulnerability check).
    pub vulnerability_reports: Vec<crate::trivy::ImageReport>,
    /// When the objects were read from a cluster (None for manifests): checks about how long a
    /// state has lasted need it.
    pub taken_at: Option<k8s_openapi::jiff::Timestamp>,
    /// Kinds that could not be read (not served, or forbidden): checks that need them say so.
    pub unavailable: Vec<String>,
    /// Those of [`Snapshot::unavailable`] the API server serves in no version the checks read
    /// (an add-on not installed), as opposed to refused: the skip says which.
    pub not_served: Vec<String>,
    /// Objects of kinds no check reads, counted by kind: said, never dropped silently.
    pub not_assessed: std::collections::BTreeMap<String, usize>,
    /// Objects written in an API version that is deprecated or removed in some Kubernetes
    /// release (as written in a manifest, or as last applied with kubectl in the cluster).
    pub old_api_versions: Vec<OldApiVersion>,
    /// The Kubernetes version (major, minor) the objects are meant for: the server's in the
    /// cluster, the one asked for offline. None: the newest one the deprecation table knows.
    pub kubernetes_version: Option<(u32, u32)>,
}

/// An object written in an API version that Kubernetes deprecates or removes.
#[derive(Clone, Debug)]
pub struct OldApiVersion {
    pub deprecation: &'static crate::deprecations::Deprecation,
    /// The object's name, namespace, uid and annotations (for exemptions).
    pub metadata: ObjectMeta,
}

/// An object the snapshot could not take.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Skip {
    #[error("{kind} {name}: {}{why}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Invalid {
        kind: String,
        name: String,
        why: String,
        /// The offending field, dotted (`spec.template.spec.containers.0.ports`), when known.
        field: Option<String>,
    },
    #[error("not a Kubernetes object (no apiVersion or kind)")]
    NotAnObject,
}

impl Snapshot {
    /// Adds one object, in any served version of its kind. Kinds no check reads are ignored;
    /// a `List` adds its items. Returns what could not be added, with the reason.
    pub fn add(&mut self, object: serde_json::Value) -> Vec<Skip> {
        let mut skipped = Vec::new();
        self.add_into(object, &mut skipped);
        skipped
    }

    fn add_into(&mut self, object: serde_json::Value, skipped: &mut Vec<Skip>) {
        let (Some(api_version), Some(kind)) = (
            object.get("apiVersion").and_then(|v| v.as_str()).map(str::to_owned),
            object.get("kind").and_then(|v| v.as_str()).map(str::to_owned),
        ) else {
            skipped.push(Skip::NotAnObject);
            return;
        };
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g).to_owned();
        let name = object
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .or_else(|| object.pointer("/metadata/generateName").and_then(|v| v.as_str()).map(|g| format!("{g}*")))
            .unwrap_or_else(|| "<unnamed>".to_owned());
        self.record_api_version(&object, &api_version, &kind);
        // Before the typed kinds drop status: crash loops (a controller's Pods too), availability.
        self.live.note(&group, &kind, &object);
        let result: Result<(), (String, Option<String>)> = match (group.as_str(), kind.as_str()) {
            _ if kind.ends_with("List") => {
                if let Some(serde_json::Value::Array(items)) = object.get("items").cloned() {
                    for item in items {
                        self.add_into(item, skipped);
                    }
                }
                Ok(())
            }
            ("", "Namespace") => typed(object).map(|o| self.namespaces.push(o)),
            ("", "Pod") => typed::<Pod>(object).map(|pod| {
                let controlled = pod
                    .metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|owners| owners.iter().any(|o| o.controller == Some(true)));
                if !controlled {
                    self.pods.push(pod);
                }
            }),
            ("", "Service") => typed(object).map(|o| self.services.push(o)),
            ("", "ResourceQuota") => typed(object).map(|o| self.resource_quotas.push(o)),
            ("", "LimitRange") => typed(object).map(|o| self.limit_ranges.push(o)),
            ("", "PersistentVolumeClaim") => typed(object).map(|o| self.pvcs.push(o)),
            ("", "ConfigMap") => typed::<ConfigMap>(object).map(|mut o| {
                // Only the secrets check reads ConfigMaps: binary data is not judged, and a
                // value is judged on its first 64 KiB, which bounds what a cluster of large
                // ConfigMaps (dashboards, bundles) holds in memory.
                o.binary_data = None;
                for value in o.data.iter_mut().flat_map(|d| d.values_mut()) {
                    if value.len() > CONFIG_MAP_VALUE_KEPT {
                        let mut end = CONFIG_MAP_VALUE_KEPT;
                        while !value.is_char_boundary(end) {
                            end -= 1;
                        }
                        value.truncate(end);
                        value.shrink_to_fit();
                    }
                }
                self.config_maps.push(o)
            }),
            ("", "Node") => typed(object).map(|o| self.nodes.push(o)),
            ("networking.k8s.io" | "extensions", "Ingress") => {
                typed(ingress_as_v1(object, &api_version)).map(|o| self.ingresses.push(o))
            }
            ("networking.k8s.io", "NetworkPolicy") => typed(object).map(|o| self.network_policies.push(o)),
            ("policy", "PodDisruptionBudget") => typed(object).map(|o| self.pdbs.push(o)),
            ("autoscaling", "HorizontalPodAutoscaler") => typed(object).map(|o| self.hpas.push(o)),
            ("rbac.authorization.k8s.io", "Role") => typed(object).map(|o| self.roles.push(o)),
            ("rbac.authorization.k8s.io", "ClusterRole") => typed(object).map(|o| self.cluster_roles.push(o)),
            ("rbac.authorization.k8s.io", "RoleBinding") => typed(object).map(|o| self.role_bindings.push(o)),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
                typed(object).map(|o| self.cluster_role_bindings.push(o))
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                self.crds.push(name.clone());
                Ok(())
            }
            // Read into `live` above.
            ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration")
            | ("apiregistration.k8s.io", "APIService")
            | ("discovery.k8s.io", "EndpointSlice") => Ok(()),
            ("apps" | "extensions", "Deployment") => typed::<Deployment>(object).map(|d| {
                let spec = d.spec.unwrap_or_default();
                let max_unavailable = spec
                    .strategy
                    .as_ref()
                    .and_then(|s| s.rolling_update.as_ref())
                    .and_then(|r| r.max_unavailable.as_ref())
                    .map(int_or_string);
                self.workloads.push(Workload {
                    kind: WorkloadKind::Deployment,
                    metadata: d.metadata,
                    replicas: Some(spec.replicas.unwrap_or(1)),
                    selector: Some(spec.selector),
                    template: spec.template,
                    revision_history_limit: spec.revision_history_limit,
                    max_unavailable,
                    ..Workload::new(WorkloadKind::Deployment)
                })
            }),
            ("apps", "StatefulSet") => typed::<StatefulSet>(object).map(|s| {
                let spec = s.spec.unwrap_or_default();
                let claim_templates = spec
                    .volume_claim_templates
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|c| c.metadata.name)
                    .collect();
                self.workloads.push(Workload {
                    metadata: s.metadata,
                    replicas: Some(spec.replicas.unwrap_or(1)),
                    selector: Some(spec.selector),
                    template: spec.template,
                    revision_history_limit: spec.revision_history_limit,
                    claim_templates,
                    ..Workload::new(WorkloadKind::StatefulSet)
                })
            }),
            ("apps" | "extensions", "DaemonSet") => typed::<DaemonSet>(object).map(|d| {
                let spec = d.spec.unwrap_or_default();
                self.workloads.push(Workload {
                    metadata: d.metadata,
                    selector: Some(spec.selector),
                    template: spec.template,
                    revision_history_limit: spec.revision_history_limit,
                    ..Workload::new(WorkloadKind::DaemonSet)
                })
            }),
            ("", "ReplicationController") => typed::<ReplicationController>(object).map(|r| {
                let spec = r.spec.unwrap_or_default();
                let selector =
                    spec.selector.map(|labels| LabelSelector { match_labels: Some(labels), ..Default::default() });
                self.workloads.push(Workload {
                    metadata: r.metadata,
                    replicas: Some(spec.replicas.unwrap_or(1)),
                    selector,
                    template: spec.template.unwrap_or_default(),
                    ..Workload::new(WorkloadKind::ReplicationController)
                })
            }),
            ("", "PodTemplate") => typed::<PodTemplate>(object).map(|t| {
                self.workloads.push(Workload {
                    metadata: t.metadata,
                    template: t.template.unwrap_or_default(),
                    ..Workload::new(WorkloadKind::PodTemplate)
                })
            }),
            ("apps" | "extensions", "ReplicaSet") => typed::<ReplicaSet>(object).map(|r| {
                // A ReplicaSet a Deployment controls is assessed through the Deployment.
                let controlled =
                    r.metadata.owner_references.as_ref().is_some_and(|o| o.iter().any(|o| o.controller == Some(true)));
                if !controlled {
                    let spec = r.spec.unwrap_or_default();
                    self.workloads.push(Workload {
                        metadata: r.metadata,
                        replicas: Some(spec.replicas.unwrap_or(1)),
                        selector: Some(spec.selector),
                        template: spec.template.unwrap_or_default(),
                        ..Workload::new(WorkloadKind::ReplicaSet)
                    })
                }
            }),
            ("batch", "Job") => typed::<Job>(object).map(|j| {
                let controlled =
                    j.metadata.owner_references.as_ref().is_some_and(|o| o.iter().any(|o| o.controller == Some(true)));
                if !controlled {
                    let spec = j.spec.unwrap_or_default();
                    self.workloads.push(Workload {
                        metadata: j.metadata,
                        selector: spec.selector,
                        template: spec.template,
                        ttl_seconds_after_finished: spec.ttl_seconds_after_finished,
                        ..Workload::new(WorkloadKind::Job)
                    })
                }
            }),
            ("batch", "CronJob") => typed::<CronJob>(object).map(|c| {
                let spec = c.spec.unwrap_or_default();
                let job = spec.job_template.spec.unwrap_or_default();
                self.workloads.push(Workload {
                    metadata: c.metadata,
                    selector: job.selector,
                    template: job.template,
                    ttl_seconds_after_finished: job.ttl_seconds_after_finished,
                    cron: Some(CronSettings {
                        concurrency_policy: spec.concurrency_policy,
                        successful_jobs_history_limit: spec.successful_jobs_history_limit,
                        failed_jobs_history_limit: spec.failed_jobs_history_limit,
                        starting_deadline_seconds: spec.starting_deadline_seconds,
                    }),
                    ..Workload::new(WorkloadKind::CronJob)
                })
            }),
            ("argoproj.io", "Application") => {
                kube9_argocd::app::read(object).map_err(|e| (e, None)).map(|o| self.applications.push(o))
            }
            ("argoproj.io", "AppProject") => {
                kube9_argocd::app::read(object).map_err(|e| (e, None)).map(|o| self.app_projects.push(o))
            }
            ("aquasecurity.github.io", "VulnerabilityReport") => {
                crate::trivy::read(&object).map_err(|e| (e, None)).map(|r| self.vulnerability_reports.push(r))
            }
            _ => self.add_other(object, &api_version, &kind),
        };
        if let Err((why, field)) = result {
            skipped.push(Skip::Invalid { kind, name, why, field });
        }
    }

    /// Objects held (controlled Pods are not: they are assessed through their workload).
    pub fn len(&self) -> usize {
        self.namespaces.len()
            + self.workloads.len()
            + self.pods.len()
            + self.services.len()
            + self.ingresses.len()
            + self.network_policies.len()
            + self.pdbs.len()
            + self.hpas.len()
            + self.resource_quotas.len()
            + self.limit_ranges.len()
            + self.pvcs.len()
            + self.roles.len()
            + self.cluster_roles.len()
            + self.role_bindings.len()
            + self.cluster_role_bindings.len()
            + self.config_maps.len()
            + self.nodes.len()
            + self.crds.len()
            + self.applications.len()
            + self.app_projects.len()
            + self.vulnerability_reports.len()
            + self.live.held_here_only()
    }

    /// A kind no check names: a workload when it has a pod template, otherwise counted.
    fn add_other(
        &mut self,
        mut object: serde_json::Value,
        api_version: &str,
        kind: &str,
    ) -> Result<(), (String, Option<String>)> {
        let (pointer, serves) = if object.pointer("/spec/template/spec/containers").is_some_and(|c| c.is_array()) {
            ("/spec/template", true)
        } else if object.pointer("/spec/jobTemplate/spec/template/spec/containers").is_some_and(|c| c.is_array()) {
            ("/spec/jobTemplate/spec/template", false)
        } else {
            *self.not_assessed.entry(kind.to_owned()).or_default() += 1;
            return Ok(());
        };
        // A kind of someone else's whose template is not a Kubernetes pod template after all is
        // not one the checks can judge: counted, not refused.
        let template = object.pointer_mut(pointer).map(serde_json::Value::take).unwrap_or_default();
        let metadata = object.get_mut("metadata").map(serde_json::Value::take).unwrap_or_default();
        let (Ok(template), Ok(metadata)) =
            (serde_json::from_value::<PodTemplateSpec>(template), serde_json::from_value::<ObjectMeta>(metadata))
        else {
            *self.not_assessed.entry(kind.to_owned()).or_default() += 1;
            return Ok(());
        };
        let replicas = object.pointer("/spec/replicas").and_then(|r| r.as_i64()).map(|r| r as i32);
        self.workloads.push(Workload {
            metadata,
            replicas: if serves { Some(replicas.unwrap_or(1)) } else { None },
            template,
            ..Workload::new(WorkloadKind::Custom { kind: intern(kind), api_version: intern(api_version), serves })
        });
        Ok(())
    }

    /// Notes an object written in a deprecated or removed API version: as written, or as
    /// kubectl last applied it (the cluster serves every object in its current version).
    fn record_api_version(&mut self, object: &serde_json::Value, api_version: &str, kind: &str) {
        let applied = object
            .pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
            .and_then(|a| a.as_str())
            .and_then(last_applied_api_version);
        let Some(deprecation) = crate::deprecations::find(applied.unwrap_or(api_version), kind) else { return };
        let meta =
            |field: &str| object.pointer(&format!("/metadata/{field}")).and_then(|v| v.as_str()).map(str::to_owned);
        let annotations = object
            .pointer(&format!("/metadata/annotations/{}", EXEMPT_ANNOTATION.replace('/', "~1")))
            .and_then(|v| v.as_str())
            .map(|v| [(EXEMPT_ANNOTATION.to_owned(), v.to_owned())].into());
        self.old_api_versions.push(OldApiVersion {
            deprecation,
            metadata: ObjectMeta {
                name: meta("name"),
                generate_name: meta("generateName"),
                namespace: meta("namespace"),
                uid: meta("uid"),
                annotations,
                ..ObjectMeta::default()
            },
        });
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The namespace object named `name`, if the snapshot has it.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.iter().find(|n| n.metadata.name.as_deref() == Some(name))
    }

    /// Drops the objects of the streamed kinds ([`crate::kinds::kept`] says which are not),
    /// and the old API versions noted while reading them: what a streamed run does after each
    /// page.
    pub fn clear_streamed(&mut self) {
        self.workloads.clear();
        self.pods.clear();
        self.services.clear();
        self.config_maps.clear();
        self.old_api_versions.clear();
    }

    /// The namespaces that hold at least one workload or bare Pod.
    pub fn namespaces_in_use(&self) -> std::collections::BTreeSet<&str> {
        self.workloads
            .iter()
            .filter_map(|w| w.metadata.namespace.as_deref())
            .chain(self.pods.iter().filter_map(|p| p.metadata.namespace.as_deref()))
            .collect()
    }
}

impl Workload {
    fn new(kind: WorkloadKind) -> Workload {
        Workload {
            kind,
            metadata: ObjectMeta::default(),
            replicas: None,
            selector: None,
            template: PodTemplateSpec::default(),
            revision_history_limit: None,
            ttl_seconds_after_finished: None,
            cron: None,
            max_unavailable: None,
            claim_templates: Vec::new(),
        }
    }

    /// The labels its Pods carry.
    pub fn pod_labels(&self) -> std::collections::BTreeMap<String, String> {
        self.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default()
    }
}

/// An Ingress of `extensions/v1beta1` or `networking.k8s.io/v1beta1` in the v1 shape: the
/// backends moved (`serviceName`/`servicePort` became `service.name` and `service.port`, and
/// `spec.backend` became `spec.defaultBackend`).
fn ingress_as_v1(mut object: serde_json::Value, api_version: &str) -> serde_json::Value {
    fn backend(b: &mut serde_json::Value) {
        let Some(map) = b.as_object_mut() else { return };
        let Some(name) = map.remove("serviceName") else { return };
        let port = match map.remove("servicePort") {
            Some(serde_json::Value::Number(n)) => serde_json::json!({"number": n}),
            Some(serde_json::Value::String(p)) => match p.parse::<i64>() {
                Ok(n) => serde_json::json!({"number": n}),
                Err(_) => serde_json::json!({"name": p}),
            },
            _ => serde_json::json!({}),
        };
        map.insert("service".into(), serde_json::json!({"name": name, "port": port}));
    }
    if !api_version.ends_with("/v1beta1") {
        return object;
    }
    let Some(spec) = object.get_mut("spec").and_then(|s| s.as_object_mut()) else { return object };
    if let Some(mut default) = spec.remove("backend") {
        backend(&mut default);
        spec.insert("defaultBackend".into(), default);
    }
    for rule in spec.get_mut("rules").and_then(|r| r.as_array_mut()).into_iter().flatten() {
        let paths = rule.pointer_mut("/http/paths").and_then(|p| p.as_array_mut());
        for path in paths.into_iter().flatten() {
            if let Some(b) = path.get_mut("backend") {
                backend(b);
            }
            // v1 requires a pathType; v1beta1 defaulted it.
            if let Some(p) = path.as_object_mut() {
                p.entry("pathType").or_insert_with(|| "ImplementationSpecific".into());
            }
        }
    }
    object
}

/// The apiVersion in a `kubectl.kubernetes.io/last-applied-configuration` annotation, found
/// without parsing the whole (possibly large) JSON.
fn last_applied_api_version(applied: &str) -> Option<&str> {
    let rest = &applied[applied.find("\"apiVersion\"")? + "\"apiVersion\"".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(&rest[..rest.find('"')?])
}

/// A kind or apiVersion written in a manifest, kept for the life of the process: there are
/// few distinct ones (only the offline reader meets kinds outside the table).
fn intern(text: &str) -> &'static str {
    static TABLE: std::sync::LazyLock<std::sync::Mutex<std::collections::BTreeSet<&'static str>>> =
        std::sync::LazyLock::new(Default::default);
    let mut table = TABLE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = table.get(text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    table.insert(leaked);
    leaked
}

/// Reads an object of any served version into the current typed struct; a refusal names the
/// offending field.
fn typed<T: DeserializeOwned + k8s_openapi::Resource>(
    mut object: serde_json::Value,
) -> Result<T, (String, Option<String>)> {
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), T::API_VERSION.into());
        // Checks read what people declare, never what controllers observe: dropping status
        // (and the field-manager bookkeeping) keeps the snapshot small.
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("managedFields");
        }
    }
    serde_path_to_error::deserialize(object).map_err(|e| {
        let field = e.path().to_string();
        (e.into_inner().to_string(), (field != ".").then_some(field))
    })
}

fn int_or_string(v: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> String {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// Whether `selector` selects Pods labelled `labels` (matchLabels and matchExpressions).
pub fn selects(selector: &LabelSelector, labels: &std::collections::BTreeMap<String, String>) -> bool {
    let labels_match =
        selector.match_labels.as_ref().is_none_or(|want| want.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let expressions_match = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
                "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
                "Exists" => labels.contains_key(&e.key),
                "DoesNotExist" => !labels.contains_key(&e.key),
                _ => false,
            }
        })
    });
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|m| m.is_empty());
    labels_match && expressions_match && !empty
}

/// Whether the autoscaler `hpa` scales the workload of `kind` named `name` in `namespace`: its
/// scaleTargetRef names the kind and the name (whatever API version it gives), and it reaches
/// no namespace but its own.
pub fn scales(hpa: &HorizontalPodAutoscaler, kind: WorkloadKind, namespace: Option<&str>, name: Option<&str>) -> bool {
    hpa.metadata.namespace.as_deref() == namespace
        && hpa.spec.as_ref().is_some_and(|spec| {
            let target = &spec.scale_target_ref;
            target.kind == kind.as_str() && name == Some(target.name.as_str())
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_and_older_api_versions_are_read() {
        let mut s = Snapshot::default();
        let skipped = s.add(json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "a", "namespace": "x"},
             "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "a"}}}},
            {"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "a", "namespace": "x"},
             "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "a"}, "maxReplicas": 3}},
            {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "x"},
             "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}},
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "ignored"}}
        ]}));
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!((s.pdbs.len(), s.hpas.len(), s.workloads.len()), (1, 1, 1));
        assert_eq!(s.workloads[0].kind, WorkloadKind::CronJob);
    }

    #[test]
    fn pods_and_replica_sets_a_controller_owns_are_left_to_it() {
        let owner =
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u", "controller": true}]);
        let mut s = Snapshot::default();
        s.add(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1-x", "ownerReferences": owner}, "spec": {"containers": []}}));
        s.add(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "ownerReferences": owner},
                     "spec": {"selector": {}, "template": {}}}));
        s.add(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug"}, "spec": {"containers": []}}));
        assert_eq!(s.pods.len(), 1);
        assert!(s.workloads.is_empty());
    }

    #[test]
    fn a_malformed_object_is_reported_with_its_kind_and_name() {
        let mut s = Snapshot::default();
        let skipped = s.add(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": "three"}}));
        assert!(matches!(&skipped[..], [Skip::Invalid { kind, name, .. }] if kind == "Deployment" && name == "web"));
        assert_eq!(s.add(json!({"hello": "world"})), vec![Skip::NotAnObject]);
    }

    #[test]
    fn any_kind_with_a_pod_template_is_a_workload_and_other_kinds_are_counted() {
        let mut s = Snapshot::default();
        let rollout = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "web:1"}]}}}});
        let scheduled = json!({"apiVersion": "example.com/v1", "kind": "Nightly", "metadata": {"name": "n"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job"}]}}}}}});
        let odd = json!({"apiVersion": "example.com/v1", "kind": "Odd", "metadata": {"name": "o"},
            "spec": {"template": {"spec": {"containers": [{"name": 5}]}}}});
        for object in
            [rollout, scheduled, odd, json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}})]
        {
            assert!(s.add(object).is_empty());
        }
        let kinds: Vec<(&str, &str, bool, Option<i32>)> =
            s.workloads.iter().map(|w| (w.kind.as_str(), w.kind.api_version(), w.kind.serves(), w.replicas)).collect();
        assert_eq!(
            kinds,
            vec![("Rollout", "argoproj.io/v1alpha1", true, Some(3)), ("Nightly", "example.com/v1", false, None)]
        );
        assert_eq!(s.not_assessed, [("Odd".to_owned(), 1), ("ServiceAccount".to_owned(), 1)].into());
    }

    #[test]
    fn a_refused_object_names_the_offending_field() {
        let mut s = Snapshot::default();
        let skipped = s.add(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "debug-"},
            "spec": {"containers": [{"name": "a", "ports": [{"containerPort": "http"}]}]}}));
        assert!(
            matches!(&skipped[..], [Skip::Invalid { name, field: Some(field), .. }]
                if name == "debug-*" && field == "spec.containers[0].ports[0].containerPort"),
            "{skipped:?}"
        );
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels = [("app".to_owned(), "web".to_owned()), ("tier".to_owned(), "front".to_owned())].into();
        let sel = |v: serde_json::Value| serde_json::from_value::<LabelSelector>(v).unwrap();
        assert!(selects(&sel(json!({"matchLabels": {"app": "web"}})), &labels));
        assert!(!selects(&sel(json!({"matchLabels": {"app": "api"}})), &labels));
        assert!(selects(
            &sel(json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]})),
            &labels
        ));
        assert!(!selects(&sel(json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})), &labels));
        assert!(!selects(&sel(json!({})), &labels), "an empty selector selects nothing here");
    }
}
