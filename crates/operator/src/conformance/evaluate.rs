//! Each requirement judged from the evidence: `passed`, `failed` or `warning` where the API
//! shows it, `not-applicable` for an accelerator requirement on a cluster without
//! accelerators, `not-evaluated` when the evidence could not be read, and `needs-evidence`
//! where only a person can attest. A requirement that is not met is `failed` for a MUST and
//! `warning` for a SHOULD. Every finding says what was seen. Pure.

use std::collections::BTreeSet;

use kube9_api::ai_conformance::{Level, RequirementStatus as Status};

use super::checklist::Requirement;
use super::evidence::{Evidence, MAX_NAMED, NodeFacts, Seen, Workload};

/// What was found for one requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub status: Status,
    /// One or two sentences naming what was seen.
    pub rationale: String,
    /// The objects seen, one line each (kept in the store).
    pub evidence: Vec<String>,
}

fn finding(status: Status, rationale: impl Into<String>, evidence: Vec<String>) -> Finding {
    Finding { status, rationale: rationale.into(), evidence }
}

/// A known solution: the API groups its CRDs are in and what its workloads are called.
pub struct Solution {
    pub name: &'static str,
    pub groups: &'static [&'static str],
    /// A workload belongs to it when its name or one of its images contains one of these…
    pub markers: &'static [&'static str],
    /// …and none of these.
    pub not: &'static [&'static str],
}

const fn solution(name: &'static str, groups: &'static [&'static str], markers: &'static [&'static str]) -> Solution {
    Solution { name, groups, markers, not: &[] }
}

/// Gang schedulers.
pub const GANG_SCHEDULERS: &[Solution] = &[
    solution("Kueue", &["kueue.x-k8s.io"], &["kueue"]),
    solution("Volcano", &["scheduling.volcano.sh", "batch.volcano.sh"], &["volcano-scheduler", "vc-scheduler"]),
    solution(
        "the coscheduling plugin (scheduler-plugins)",
        &["scheduling.x-k8s.io", "scheduling.sigs.k8s.io"],
        &["scheduler-plugins", "coscheduling"],
    ),
    solution("Apache YuniKorn", &[], &["yunikorn-scheduler"]),
];

/// Cluster autoscalers.
pub const AUTOSCALERS: &[Solution] = &[
    solution("Cluster Autoscaler", &["autoscaling.x-k8s.io"], &["cluster-autoscaler"]),
    solution("Karpenter", &["karpenter.sh"], &["karpenter"]),
];

/// Accelerator metrics exporters.
pub const ACCELERATOR_EXPORTERS: &[Solution] = &[
    solution("NVIDIA DCGM Exporter", &[], &["dcgm-exporter"]),
    solution("AMD Device Metrics Exporter", &[], &["device-metrics-exporter"]),
    solution("Intel XPU Manager", &[], &["xpumanager", "xpu-manager"]),
    solution("AWS Neuron Monitor", &[], &["neuron-monitor"]),
];

/// Monitoring systems that discover and scrape workloads.
pub const MONITORING: &[Solution] = &[
    Solution {
        name: "Prometheus",
        groups: &["monitoring.coreos.com"],
        markers: &["prometheus"],
        not: &["adapter", "node-exporter", "operator", "reloader", "blackbox", "pushgateway", "kube-state-metrics"],
    },
    solution("OpenTelemetry Collector", &["opentelemetry.io"], &["otel-collector", "opentelemetry-collector"]),
    solution("VictoriaMetrics", &["operator.victoriametrics.com"], &["vmagent", "vmsingle"]),
    solution("Grafana Alloy / Agent", &[], &["grafana-agent", "grafana/alloy"]),
    solution(
        "Google Managed Prometheus",
        &["monitoring.googleapis.com"],
        &["gmp-collector", "gke.gcr.io/prometheus-engine"],
    ),
    solution("Azure Monitor metrics", &["azmonitoring.coreos.com"], &["ama-metrics"]),
    solution("Datadog Agent", &["datadoghq.com"], &["datadog-agent", "datadog/agent"]),
];

/// Accelerator driver and runtime managers.
pub const DRIVER_MANAGERS: &[Solution] = &[
    solution("NVIDIA GPU Operator", &["nvidia.com"], &["gpu-operator", "nvidia-driver", "container-toolkit"]),
    solution("AMD GPU Operator", &["amd.com"], &["amd-gpu-operator", "amdgpu-driver"]),
    solution("Intel Device Plugins Operator", &["deviceplugin.intel.com"], &["intel-deviceplugin-operator"]),
];

/// Operators of AI workloads with CRDs.
pub const AI_OPERATORS: &[Solution] = &[
    solution("KubeRay", &["ray.io"], &["kuberay", "ray-operator"]),
    solution("Kubeflow Training Operator", &["kubeflow.org"], &["training-operator"]),
    solution("Kubeflow Trainer", &["trainer.kubeflow.org"], &["trainer-controller-manager", "kubeflow-trainer"]),
    solution("KServe", &["serving.kserve.io"], &["kserve-controller"]),
    solution("LeaderWorkerSet", &["leaderworkerset.x-k8s.io"], &["lws-controller"]),
    solution("JobSet", &["jobset.x-k8s.io"], &["jobset-controller"]),
    solution("Kueue", &["kueue.x-k8s.io"], &["kueue"]),
    solution("Volcano", &["batch.volcano.sh", "scheduling.volcano.sh"], &["volcano-controller", "vc-controller"]),
];

/// Disaggregated inference stacks.
pub const DISAGGREGATED: &[Solution] = &[
    solution("NVIDIA Dynamo", &["nvidia.com"], &["dynamo-operator"]),
    solution("llm-d", &["llm-d.ai"], &["llm-d"]),
    solution("KServe LLMInferenceService", &["serving.kserve.io"], &["kserve-controller"]),
];

fn every_solution() -> impl Iterator<Item = &'static Solution> {
    [GANG_SCHEDULERS, AUTOSCALERS, ACCELERATOR_EXPORTERS, MONITORING, DRIVER_MANAGERS, AI_OPERATORS, DISAGGREGATED]
        .into_iter()
        .flatten()
}

impl Solution {
    /// Whether a workload with this name and these images is one of this solution's.
    pub fn owns(&self, name: &str, images: &[String]) -> bool {
        let hit = |text: &str| {
            let text = text.to_ascii_lowercase();
            self.markers.iter().any(|m| text.contains(m)) && !self.not.iter().any(|n| text.contains(n))
        };
        hit(name) || images.iter().any(|i| hit(i))
    }

    fn workloads<'a>(&self, evidence: &'a [Workload]) -> Vec<&'a Workload> {
        evidence.iter().filter(|w| self.owns(&w.name, &w.images)).collect()
    }

    fn served_groups<'a>(&self, groups: &'a BTreeSet<&'a str>) -> Vec<&'a str> {
        groups.iter().copied().filter(|g| self.groups.contains(g)).collect()
    }
}

/// Whether the observer keeps a workload: it belongs to some known solution.
pub fn relevant(name: &str, images: &[String]) -> bool {
    every_solution().any(|s| s.owns(name, images))
}

/// The status of a requirement that is not met, by its level.
fn unmet(level: Level) -> Status {
    match level {
        Level::Must => Status::Failed,
        Level::Should => Status::Warning,
    }
}

/// Judges one requirement.
pub fn evaluate(requirement: &Requirement, evidence: &Evidence) -> Finding {
    let level = requirement.level;
    match requirement.id {
        "dra_support" => dra_support(level, evidence),
        "driver_runtime_management" => driver_runtime_management(level, evidence),
        "gpu_sharing" => gpu_sharing(evidence),
        "virtualized_accelerator" => virtualized_accelerator(evidence),
        "ai_inference" => ai_inference(level, evidence),
        "advanced_inference_ingress" => advanced_inference_ingress(level, evidence),
        "high_performance_networking" => high_performance_networking(evidence),
        "disaggregated_inference" => disaggregated_inference(evidence),
        "gang_scheduling" => gang_scheduling(level, evidence),
        "cluster_autoscaling" => cluster_autoscaling(level, evidence),
        "pod_autoscaling" => pod_autoscaling(level, evidence),
        "accelerator_metrics" => accelerator_metrics(level, evidence),
        "ai_service_metrics" => ai_service_metrics(level, evidence),
        "secure_accelerator_access" => secure_accelerator_access(level, evidence),
        "robust_controller" => robust_controller(level, evidence),
        other => finding(
            Status::NeedsEvidence,
            format!("the operator has no rule for {other}; attest it from the platform's documentation"),
            vec![],
        ),
    }
}

/// Why evidence could not be read, as a finding.
fn unreadable(what: &str, why: &str) -> Finding {
    finding(Status::NotEvaluated, format!("could not read {what}: {why}"), vec![])
}

/// Unwraps a `Seen`, or returns the not-evaluated finding.
macro_rules! read {
    ($seen:expr, $what:expr) => {
        match $seen.as_ref() {
            Ok(value) => value,
            Err(why) => return unreadable($what, why),
        }
    };
}

fn served(evidence: &Evidence) -> Result<BTreeSet<&str>, &str> {
    evidence.groups.as_ref().map(|g| g.keys().map(String::as_str).collect())
}

/// The accelerator nodes, or the finding for a cluster without accelerators (or unreadable Nodes).
fn accelerators(evidence: &Evidence) -> Result<Vec<&NodeFacts>, Finding> {
    let nodes = match evidence.nodes.as_ref() {
        Ok(nodes) => nodes,
        Err(why) => return Err(unreadable("Nodes", why)),
    };
    let with: Vec<&NodeFacts> = nodes.iter().filter(|n| !n.accelerators.is_empty()).collect();
    let dra_accelerators: Vec<&String> = match evidence.dra_drivers.as_ref() {
        Ok(drivers) => drivers.iter().filter(|d| is_accelerator_driver(d)).collect(),
        Err(_) => vec![],
    };
    if with.is_empty() && dra_accelerators.is_empty() {
        return Err(finding(
            Status::NotApplicable,
            format!(
                "no accelerators: none of the {} Nodes advertises an accelerator resource (nvidia.com/gpu, amd.com/gpu, …) and no DRA driver publishes accelerator devices",
                nodes.len()
            ),
            vec![],
        ));
    }
    Ok(with)
}

fn is_accelerator_driver(driver: &str) -> bool {
    ["gpu", "nvidia", "amd", "intel", "neuron", "tpu"].iter().any(|m| driver.contains(m))
}

fn named(items: impl IntoIterator<Item = String>) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let shown: Vec<&str> = items.iter().take(MAX_NAMED).map(String::as_str).collect();
    match items.len() {
        0 => "none".into(),
        n if n > MAX_NAMED => format!("{} and {} more", shown.join(", "), n - MAX_NAMED),
        _ => shown.join(", "),
    }
}

fn describe_all(workloads: &[&Workload]) -> Vec<String> {
    workloads.iter().map(|w| w.describe()).collect()
}

fn node_summary(nodes: &[&NodeFacts]) -> String {
    let resources: BTreeSet<&str> = nodes.iter().flat_map(|n| n.accelerators.keys().map(String::as_str)).collect();
    format!("{} accelerator Nodes ({})", nodes.len(), named(resources.iter().map(|r| (*r).to_owned())))
}

fn dra_support(level: Level, evidence: &Evidence) -> Finding {
    const KINDS: [&str; 4] = ["DeviceClass", "ResourceClaim", "ResourceClaimTemplate", "ResourceSlice"];
    let groups = read!(evidence.groups, "the served API groups");
    let Some(group) = groups.get("resource.k8s.io") else {
        return finding(
            unmet(level),
            "the API server does not serve resource.k8s.io: Dynamic Resource Allocation is off",
            vec![],
        );
    };
    if let Some(error) = &group.error {
        return unreadable("the kinds of resource.k8s.io", error);
    }
    if let Some(version) = group.version_serving(&KINDS) {
        return finding(
            Status::Passed,
            format!("resource.k8s.io/{version} serves {}", KINDS.join(", ")),
            vec![format!("resource.k8s.io versions {}", group.versions.join(", "))],
        );
    }
    let kinds = group.all_kinds();
    let missing: Vec<&str> = KINDS.iter().copied().filter(|k| !kinds.contains(k)).collect();
    finding(
        unmet(level),
        format!(
            "resource.k8s.io ({}) does not serve every DRA kind in one version; missing: {}",
            group.versions.join(", "),
            missing.join(", ")
        ),
        vec![],
    )
}

fn driver_runtime_management(level: Level, evidence: &Evidence) -> Finding {
    let nodes = match accelerators(evidence) {
        Ok(nodes) => nodes,
        Err(f) => return f,
    };
    let workloads = read!(evidence.workloads, "Deployments, StatefulSets and DaemonSets");
    let found: Vec<(&str, Vec<&Workload>)> =
        DRIVER_MANAGERS.iter().map(|s| (s.name, s.workloads(workloads))).filter(|(_, w)| !w.is_empty()).collect();
    let driver_labels: BTreeSet<String> = nodes
        .iter()
        .flat_map(|n| n.labels.iter())
        .filter(|(k, _)| k.contains("driver"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Some((name, ws)) = found.first() {
        let broken: Vec<&&Workload> = ws.iter().filter(|w| !w.available).collect();
        if broken.is_empty() {
            return finding(
                Status::Passed,
                format!("{name} manages drivers and runtime on {}: {}", node_summary(&nodes), named(describe_all(ws))),
                describe_all(ws),
            );
        }
        return finding(
            unmet(level),
            format!("{name} is installed but not running: {}", named(broken.iter().map(|w| w.describe()))),
            describe_all(ws),
        );
    }
    let seen = if driver_labels.is_empty() {
        "no driver version labels".to_owned()
    } else {
        format!("driver labels {}", named(driver_labels.iter().cloned()))
    };
    finding(
        Status::NeedsEvidence,
        format!(
            "no driver manager (NVIDIA or AMD GPU Operator) runs on the {}; {seen}: drivers may come with the node image, attest how they are kept",
            node_summary(&nodes)
        ),
        driver_labels.into_iter().collect(),
    )
}

fn gpu_sharing(evidence: &Evidence) -> Finding {
    let nodes = match accelerators(evidence) {
        Ok(nodes) => nodes,
        Err(f) => return f,
    };
    let mut signs = BTreeSet::new();
    for node in &nodes {
        for resource in node.accelerators.keys() {
            if resource.contains("/mig-") || resource.ends_with(".shared") {
                signs.insert(format!("Node {} advertises {resource}", node.name));
            }
        }
        for (key, value) in &node.labels {
            let replicas = key.ends_with("gpu.replicas") && value.parse::<u32>().is_ok_and(|n| n > 1);
            let mig = key.ends_with("mig.strategy") || (key.ends_with("mps.capable") && value == "true");
            if replicas || mig {
                signs.insert(format!("Node {} has {key}={value}", node.name));
            }
        }
    }
    if signs.is_empty() {
        return finding(
            Status::NeedsEvidence,
            format!(
                "the {} show no MIG partitions, shared GPU resources or time-slicing replicas; attest the sharing strategy if one is offered",
                node_summary(&nodes)
            ),
            vec![],
        );
    }
    finding(
        Status::Passed,
        format!("GPU sharing is configured: {}", named(signs.iter().cloned())),
        signs.into_iter().collect(),
    )
}

fn virtualized_accelerator(evidence: &Evidence) -> Finding {
    let nodes = match accelerators(evidence) {
        Ok(nodes) => nodes,
        Err(f) => return f,
    };
    let signs: BTreeSet<String> = nodes
        .iter()
        .flat_map(|n| n.labels.iter().map(move |(k, v)| (n, k, v)))
        .filter(|(_, k, v)| k.contains("vgpu") && v.as_str() != "false")
        .map(|(n, k, v)| format!("Node {} has {k}={v}", n.name))
        .collect();
    if signs.is_empty() {
        return finding(
            Status::NeedsEvidence,
            format!(
                "the {} show no vGPU labels; attest whether virtualized accelerators are offered",
                node_summary(&nodes)
            ),
            vec![],
        );
    }
    finding(
        Status::Passed,
        format!("virtual GPUs are exposed: {}", named(signs.iter().cloned())),
        signs.into_iter().collect(),
    )
}

/// Accepted GatewayClasses, or the finding when Gateway API is not usable.
fn accepted_gateway_classes(level: Level, evidence: &Evidence) -> Result<Vec<String>, Finding> {
    const KINDS: [&str; 3] = ["GatewayClass", "Gateway", "HTTPRoute"];
    let groups = evidence.groups.as_ref().map_err(|why| unreadable("the served API groups", why))?;
    let Some(group) = groups.get("gateway.networking.k8s.io") else {
        return Err(finding(
            unmet(level),
            "the cluster does not serve Gateway API (gateway.networking.k8s.io): install its CRDs and an implementation",
            vec![],
        ));
    };
    if let Some(error) = &group.error {
        return Err(unreadable("the kinds of gateway.networking.k8s.io", error));
    }
    let Some(version) = group.version_serving(&KINDS) else {
        return Err(finding(
            unmet(level),
            format!(
                "gateway.networking.k8s.io ({}) does not serve GatewayClass, Gateway and HTTPRoute",
                group.versions.join(", ")
            ),
            vec![],
        ));
    };
    let classes = evidence.gateway_classes.as_ref().map_err(|why| unreadable("GatewayClasses", why))?;
    let accepted: Vec<String> = classes
        .iter()
        .filter(|c| c.accepted == Some(true))
        .map(|c| format!("GatewayClass {} ({})", c.name, c.controller))
        .collect();
    if accepted.is_empty() {
        let why = if classes.is_empty() {
            "no GatewayClass exists: no implementation is installed".to_owned()
        } else {
            format!(
                "no GatewayClass is Accepted by its controller ({})",
                named(classes.iter().map(|c| format!(
                    "{}: {}",
                    c.name,
                    c.accepted.map_or("no condition", |_| "not accepted")
                )))
            )
        };
        return Err(finding(unmet(level), format!("Gateway API is served ({version}) but {why}"), vec![]));
    }
    Ok(accepted)
}

fn ai_inference(level: Level, evidence: &Evidence) -> Finding {
    match accepted_gateway_classes(level, evidence) {
        Ok(accepted) => finding(
            Status::Passed,
            format!(
                "Gateway API is served and {} accepted; weighted and header-based routing are Gateway API features (not exercised)",
                named(accepted.iter().cloned())
            ),
            accepted,
        ),
        Err(f) => f,
    }
}

fn advanced_inference_ingress(level: Level, evidence: &Evidence) -> Finding {
    let groups = read!(evidence.groups, "the served API groups");
    let pool = ["inference.networking.k8s.io", "inference.networking.x-k8s.io"]
        .into_iter()
        .find_map(|g| groups.get(g).filter(|group| group.all_kinds().contains("InferencePool")).map(|_| g));
    let Some(pool) = pool else {
        return finding(
            unmet(level),
            "the cluster does not serve InferencePool (Gateway API Inference Extension is not installed)",
            vec![],
        );
    };
    match accepted_gateway_classes(level, evidence) {
        Ok(accepted) => finding(
            Status::Passed,
            format!("{pool} serves InferencePool and {} accepted", named(accepted.iter().cloned())),
            accepted,
        ),
        Err(f) => finding(unmet(level), format!("{pool} serves InferencePool, but {}", f.rationale), vec![]),
    }
}

fn high_performance_networking(evidence: &Evidence) -> Finding {
    let groups = read!(evidence.groups, "the served API groups");
    let mut signs = Vec::new();
    if groups.contains_key("k8s.cni.cncf.io") {
        signs.push("k8s.cni.cncf.io (NetworkAttachmentDefinition: extra Pod interfaces) is served".to_owned());
    }
    if let Ok(drivers) = evidence.dra_drivers.as_ref() {
        signs.extend(drivers.iter().filter(|d| d.contains("net")).map(|d| format!("DRA driver {d} publishes devices")));
    }
    if signs.is_empty() {
        return finding(
            Status::NeedsEvidence,
            "no multi-network API or DRA network driver is visible; attest whether high-performance networking is needed and offered",
            vec![],
        );
    }
    finding(Status::Passed, signs.join("; "), signs)
}

fn disaggregated_inference(evidence: &Evidence) -> Finding {
    let groups = read!(evidence.groups, "the served API groups");
    let crds = evidence.crds.as_ref().ok();
    let kinds = ["DynamoGraphDeployment", "LLMInferenceService"];
    let mut signs: Vec<String> = crds
        .into_iter()
        .flatten()
        .filter(|c| kinds.contains(&c.kind.as_str()) || c.group == "llm-d.ai")
        .map(|c| format!("CRD {}", c.name))
        .collect();
    if signs.is_empty() && groups.contains_key("llm-d.ai") {
        signs.push("llm-d.ai is served".into());
    }
    if signs.is_empty() {
        return finding(
            Status::NeedsEvidence,
            "no disaggregated serving stack (Dynamo, llm-d, KServe LLMInferenceService) is installed; attest a prefill/decode deployment if one runs",
            vec![],
        );
    }
    finding(
        Status::Passed,
        format!(
            "a disaggregated serving stack is installed ({}); separate prefill and decode are not exercised",
            named(signs.iter().cloned())
        ),
        signs,
    )
}

fn gang_scheduling(level: Level, evidence: &Evidence) -> Finding {
    let served = match served(evidence) {
        Ok(s) => s,
        Err(why) => return unreadable("the served API groups", why),
    };
    let workloads = read!(evidence.workloads, "Deployments, StatefulSets and DaemonSets");
    let mut broken = Vec::new();
    for s in GANG_SCHEDULERS {
        let groups = s.served_groups(&served);
        let controllers = s.workloads(workloads);
        if groups.is_empty() && controllers.is_empty() {
            continue;
        }
        // Kueue's controller shows itself by its work too: only it makes a ClusterQueue Active.
        let active: Vec<String> = match (&evidence.active_cluster_queues, groups.contains(&"kueue.x-k8s.io")) {
            (Seen::Read(queues), true) => queues.iter().map(|q| format!("ClusterQueue {q} Active")).collect(),
            _ => vec![],
        };
        let running: Vec<&&Workload> = controllers.iter().filter(|w| w.available).collect();
        let apis = if groups.is_empty() { String::new() } else { format!("{} served; ", groups.join(", ")) };
        let queues = if active.is_empty() { String::new() } else { format!("; {}", named(active.iter().cloned())) };
        if !running.is_empty() {
            let seen = describe_all(&controllers);
            return finding(
                Status::Passed,
                format!("{}: {apis}controller {}{queues}", s.name, named(seen.iter().cloned())),
                seen.into_iter().chain(active).collect(),
            );
        }
        if controllers.is_empty() && !active.is_empty() {
            return finding(
                Status::Passed,
                format!(
                    "{}: {apis}no controller Deployment in the cluster, but {}: a condition only its controller sets (it runs beside the cluster's workloads)",
                    s.name,
                    named(active.iter().cloned())
                ),
                active,
            );
        }
        broken.push(if controllers.is_empty() {
            format!("{}: {apis}but no controller Deployment runs in the cluster", s.name)
        } else {
            format!("{}: {apis}controller not available ({})", s.name, named(describe_all(&controllers)))
        });
    }
    if broken.is_empty() {
        return finding(
            unmet(level),
            "no gang scheduler is installed (looked for Kueue, Volcano, the coscheduling plugin and YuniKorn by their APIs and controllers)",
            vec![],
        );
    }
    finding(unmet(level), broken.join("; "), broken.clone())
}

fn cluster_autoscaling(level: Level, evidence: &Evidence) -> Finding {
    let served = match served(evidence) {
        Ok(s) => s,
        Err(why) => return unreadable("the served API groups", why),
    };
    let workloads = read!(evidence.workloads, "Deployments, StatefulSets and DaemonSets");
    let mut apis_only = Vec::new();
    for s in AUTOSCALERS {
        let controllers = s.workloads(workloads);
        let groups = s.served_groups(&served);
        if let Some(running) = controllers.iter().find(|w| w.available) {
            return finding(
                Status::Passed,
                format!(
                    "{} runs ({}); scaling accelerator node groups for pending Pods is not exercised",
                    s.name,
                    running.describe()
                ),
                describe_all(&controllers),
            );
        }
        if !controllers.is_empty() {
            return finding(
                unmet(level),
                format!("{} is installed but not available: {}", s.name, named(describe_all(&controllers))),
                describe_all(&controllers),
            );
        }
        if !groups.is_empty() {
            apis_only.push(format!("{} ({})", s.name, groups.join(", ")));
        }
    }
    let rationale = if apis_only.is_empty() {
        "no cluster autoscaler or Karpenter runs in the cluster; a managed autoscaler runs outside it: attest it (or that the platform provides none)".to_owned()
    } else {
        format!(
            "{} APIs are served but no controller runs in the cluster (a managed one runs outside it): attest it scales accelerator node groups",
            named(apis_only.iter().cloned())
        )
    };
    finding(Status::NeedsEvidence, rationale, apis_only)
}

fn pod_autoscaling(level: Level, evidence: &Evidence) -> Finding {
    let services = read!(evidence.api_services, "APIServices");
    let metrics: Vec<_> = services
        .iter()
        .filter(|s| s.group == "custom.metrics.k8s.io" || s.group == "external.metrics.k8s.io")
        .collect();
    let seen: Vec<String> = metrics
        .iter()
        .map(|s| {
            format!("APIService {} ({})", s.name, if s.available == Some(true) { "Available" } else { "not Available" })
        })
        .collect();
    if metrics.iter().any(|s| s.available == Some(true)) {
        return finding(
            Status::Passed,
            format!(
                "HorizontalPodAutoscaler is served and a custom or external metrics API is available ({}); scaling accelerator Pods is not exercised",
                named(seen.iter().cloned())
            ),
            seen,
        );
    }
    if !metrics.is_empty() {
        return finding(
            unmet(level),
            format!("the metrics APIs are registered but not available: {}", named(seen.iter().cloned())),
            seen,
        );
    }
    finding(
        unmet(level),
        "no custom.metrics.k8s.io or external.metrics.k8s.io APIService: HorizontalPodAutoscalers can scale only on CPU and memory (install an adapter such as prometheus-adapter or KEDA)",
        vec![],
    )
}

fn accelerator_metrics(level: Level, evidence: &Evidence) -> Finding {
    let nodes = match accelerators(evidence) {
        Ok(nodes) => nodes,
        Err(f) => return f,
    };
    let workloads = read!(evidence.workloads, "Deployments, StatefulSets and DaemonSets");
    let exporters: Vec<&Workload> =
        ACCELERATOR_EXPORTERS.iter().flat_map(|s| s.workloads(workloads)).filter(|w| w.kind == "DaemonSet").collect();
    if exporters.is_empty() {
        return finding(
            unmet(level),
            format!(
                "no accelerator metrics exporter DaemonSet (DCGM Exporter, AMD Device Metrics Exporter, …) runs for the {}",
                node_summary(&nodes)
            ),
            vec![],
        );
    }
    let covered = exporters.iter().map(|w| w.ready).max().unwrap_or(0);
    let seen = describe_all(&exporters);
    if exporters.iter().any(|w| w.available) && covered >= nodes.len() as i64 {
        return finding(
            Status::Passed,
            format!("{} ready on at least as many Nodes as the {}", named(seen.iter().cloned()), node_summary(&nodes)),
            seen,
        );
    }
    finding(
        unmet(level),
        format!(
            "the exporter runs on {covered} Nodes, fewer than the {}: {}",
            node_summary(&nodes),
            named(seen.iter().cloned())
        ),
        seen,
    )
}

fn ai_service_metrics(level: Level, evidence: &Evidence) -> Finding {
    let served = match served(evidence) {
        Ok(s) => s,
        Err(why) => return unreadable("the served API groups", why),
    };
    let workloads = read!(evidence.workloads, "Deployments, StatefulSets and DaemonSets");
    let mut apis = Vec::new();
    let mut broken = Vec::new();
    for s in MONITORING {
        let controllers = s.workloads(workloads);
        let groups = s.served_groups(&served);
        if let Some(running) = controllers.iter().find(|w| w.available) {
            let discovery =
                if groups.is_empty() { String::new() } else { format!(", discovery through {}", groups.join(", ")) };
            return finding(
                Status::Passed,
                format!("{} collects metrics: {}{discovery}", s.name, running.describe()),
                describe_all(&controllers),
            );
        }
        if !controllers.is_empty() {
            broken.push(format!("{}: {}", s.name, named(describe_all(&controllers))));
        }
        if !groups.is_empty() {
            apis.push(format!("{} ({})", s.name, groups.join(", ")));
        }
    }
    if !broken.is_empty() {
        return finding(unmet(level), format!("the monitoring system is not available: {}", broken.join("; ")), broken);
    }
    if !apis.is_empty() {
        return finding(
            Status::NeedsEvidence,
            format!(
                "{} APIs are served but no collector runs in the cluster (a managed one runs outside it): attest it",
                named(apis.iter().cloned())
            ),
            apis,
        );
    }
    finding(
        unmet(level),
        "no monitoring system was found (looked for Prometheus, the OpenTelemetry Collector, VictoriaMetrics, Grafana Alloy and managed collectors)",
        vec![],
    )
}

fn secure_accelerator_access(level: Level, evidence: &Evidence) -> Finding {
    let nodes = match accelerators(evidence) {
        Ok(nodes) => nodes,
        Err(f) => return f,
    };
    let pods = read!(evidence.pods, "Pods");
    if pods.bypassing_count > 0 {
        return finding(
            unmet(level),
            format!(
                "{} Pods reach accelerators without requesting them through the device plugin or DRA: {}",
                pods.bypassing_count,
                named(pods.bypassing.iter().cloned())
            ),
            pods.bypassing.clone(),
        );
    }
    let dra: Vec<String> = match evidence.dra_drivers.as_ref() {
        Ok(d) => d.iter().filter(|d| is_accelerator_driver(d)).map(|d| format!("DRA driver {d}")).collect(),
        Err(_) => vec![],
    };
    let mediated = if nodes.is_empty() {
        named(dra.iter().cloned())
    } else {
        format!("the device plugin ({})", node_summary(&nodes))
    };
    finding(
        Status::Passed,
        format!(
            "accelerators are handed out by {mediated}; {} Pods request them and none reaches them around it (isolation inside the container runtime is not observable through the API)",
            pods.requesting
        ),
        nodes
            .iter()
            .map(|n| format!("Node {}: {}", n.name, named(n.accelerators.iter().map(|(k, v)| format!("{k}={v}")))))
            .chain(dra)
            .collect(),
    )
}

fn robust_controller(level: Level, evidence: &Evidence) -> Finding {
    let crds = read!(evidence.crds, "CustomResourceDefinitions");
    let workloads = read!(evidence.workloads, "Deployments, StatefulSets and DaemonSets");
    let webhooks = read!(evidence.webhooks, "webhook configurations");
    let mut problems = Vec::new();
    for s in AI_OPERATORS {
        let own: Vec<_> = crds.iter().filter(|c| s.groups.contains(&c.group.as_str())).collect();
        if own.is_empty() {
            continue;
        }
        let controllers = s.workloads(workloads);
        let running: Vec<&&Workload> = controllers.iter().filter(|w| w.available).collect();
        let not_established: Vec<String> = own.iter().filter(|c| !c.established).map(|c| c.name.clone()).collect();
        let namespaces: BTreeSet<&str> = controllers.iter().map(|w| w.namespace.as_str()).collect();
        let hooks: Vec<_> = webhooks
            .iter()
            .filter(|w| w.service_namespace.as_deref().is_some_and(|ns| namespaces.contains(ns)))
            .collect();
        let no_ca: Vec<String> =
            hooks.iter().filter(|w| !w.has_ca_bundle).map(|w| format!("{} ({})", w.name, w.configuration)).collect();
        let mut wrong = Vec::new();
        if !not_established.is_empty() {
            wrong.push(format!("CRDs not Established: {}", named(not_established)));
        }
        if running.is_empty() {
            wrong.push(if controllers.is_empty() {
                "no controller runs in the cluster".to_owned()
            } else {
                format!("controller not available ({})", named(describe_all(&controllers)))
            });
        }
        if !no_ca.is_empty() {
            wrong.push(format!("webhooks without a CA bundle: {}", named(no_ca)));
        }
        let mut seen: Vec<String> = own.iter().map(|c| format!("CRD {}", c.name)).collect();
        seen.extend(describe_all(&controllers));
        seen.extend(hooks.iter().map(|w| format!("webhook {} ({})", w.name, w.configuration)));
        if wrong.is_empty() {
            return finding(
                Status::Passed,
                format!(
                    "{}: {} CRDs Established, {}, {} webhooks served by its namespace with a CA bundle; reconciliation of its resources is not exercised",
                    s.name,
                    own.len(),
                    named(running.iter().map(|w| w.describe())),
                    hooks.len()
                ),
                seen,
            );
        }
        problems.push(format!("{}: {}", s.name, wrong.join("; ")));
    }
    if problems.is_empty() {
        return finding(
            unmet(level),
            "no AI operator with CRDs is installed (looked for KubeRay, Kubeflow, KServe, LeaderWorkerSet, JobSet, Kueue and Volcano)",
            vec![],
        );
    }
    finding(unmet(level), problems.join("; "), problems.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube9_api::ai_conformance::Category;

    use super::*;
    use crate::conformance::evidence::{ApiService, Crd, GatewayClass, Group, PodFacts, Seen, Webhook};

    fn req(id: &'static str, level: Level) -> Requirement {
        Requirement { id, category: Category::Operator, level }
    }

    fn status(id: &'static str, level: Level, evidence: &Evidence) -> (Status, String) {
        let f = evaluate(&req(id, level), evidence);
        (f.status, f.rationale)
    }

    fn group(versions: &[(&str, &[&str])]) -> Group {
        Group {
            versions: versions.iter().map(|(v, _)| (*v).to_owned()).collect(),
            kinds: versions
                .iter()
                .map(|(v, k)| ((*v).to_owned(), k.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            error: None,
        }
    }

    fn served(groups: &[(&str, Group)]) -> Seen<BTreeMap<String, Group>> {
        Seen::Read(groups.iter().map(|(n, g)| ((*n).to_owned(), g.clone())).collect())
    }

    fn workload(kind: &str, ns: &str, name: &str, image: &str, desired: i64, ready: i64) -> Workload {
        Workload {
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            images: vec![image.into()],
            desired,
            ready,
            available: desired > 0 && ready >= desired,
        }
    }

    fn gpu_node(name: &str) -> NodeFacts {
        NodeFacts {
            name: name.into(),
            accelerators: BTreeMap::from([("nvidia.com/gpu".into(), "8".into())]),
            labels: BTreeMap::from([("nvidia.com/gpu.product".into(), "NVIDIA-H100".into())]),
        }
    }

    fn cpu_node(name: &str) -> NodeFacts {
        NodeFacts { name: name.into(), ..NodeFacts::default() }
    }

    fn crd(group: &str, kind: &str, established: bool) -> Crd {
        Crd { name: format!("{}s.{group}", kind.to_lowercase()), group: group.into(), kind: kind.into(), established }
    }

    fn with_gpus(nodes: usize) -> Evidence {
        Evidence {
            minor: 35,
            nodes: Seen::Read((0..nodes).map(|i| gpu_node(&format!("gpu-{i}"))).chain([cpu_node("cpu-0")]).collect()),
            ..Evidence::default()
        }
    }

    fn without_gpus() -> Evidence {
        Evidence { minor: 35, nodes: Seen::Read(vec![cpu_node("cpu-0"), cpu_node("cpu-1")]), ..Evidence::default() }
    }

    const DRA: &[&str] = &["DeviceClass", "ResourceClaim", "ResourceClaimTemplate", "ResourceSlice"];
    const GATEWAY: &[&str] = &["GatewayClass", "Gateway", "HTTPRoute"];

    #[test]
    fn dra_support_passes_when_every_kind_is_served_and_fails_by_level_otherwise() {
        let present = Evidence {
            groups: served(&[("resource.k8s.io", group(&[("v1", DRA), ("v1beta2", DRA)]))]),
            ..without_gpus()
        };
        let (s, why) = status("dra_support", Level::Must, &present);
        assert_eq!(s, Status::Passed);
        assert!(why.contains("resource.k8s.io/v1 serves DeviceClass"), "{why}");
        let absent = Evidence { groups: served(&[]), ..without_gpus() };
        assert_eq!(status("dra_support", Level::Must, &absent).0, Status::Failed);
        assert_eq!(status("dra_support", Level::Should, &absent).0, Status::Warning, "a SHOULD in 1.33");
        let broken = Evidence {
            groups: served(&[("resource.k8s.io", group(&[("v1alpha3", &["ResourceClaim"])]))]),
            ..without_gpus()
        };
        let (s, why) = status("dra_support", Level::Must, &broken);
        assert_eq!(s, Status::Failed);
        assert!(why.contains("missing: DeviceClass, ResourceClaimTemplate, ResourceSlice"), "{why}");
        let unreadable = Evidence { groups: Seen::Unreadable("discovery failed".into()), ..without_gpus() };
        assert_eq!(status("dra_support", Level::Must, &unreadable).0, Status::NotEvaluated);
    }

    #[test]
    fn accelerator_requirements_do_not_apply_without_accelerators() {
        for id in [
            "driver_runtime_management",
            "gpu_sharing",
            "virtualized_accelerator",
            "accelerator_metrics",
            "secure_accelerator_access",
        ] {
            let (s, why) = status(id, Level::Must, &without_gpus());
            assert_eq!(s, Status::NotApplicable, "{id}");
            assert!(why.contains("none of the 2 Nodes advertises an accelerator"), "{id}: {why}");
        }
        let unreadable =
            Evidence { nodes: Seen::Unreadable("forbidden to list /api/v1/nodes".into()), ..without_gpus() };
        assert_eq!(status("accelerator_metrics", Level::Must, &unreadable).0, Status::NotEvaluated);
        // A DRA GPU driver counts as accelerators even when no Node advertises a device-plugin resource.
        let dra = Evidence { dra_drivers: Seen::Read(["gpu.nvidia.com".to_owned()].into()), ..without_gpus() };
        assert_eq!(status("accelerator_metrics", Level::Must, &dra).0, Status::Failed);
    }

    #[test]
    fn driver_runtime_management_reads_the_gpu_operator() {
        let present = Evidence {
            workloads: Seen::Read(vec![workload(
                "Deployment",
                "gpu-operator",
                "gpu-operator",
                "nvcr.io/nvidia/gpu-operator:v25",
                1,
                1,
            )]),
            ..with_gpus(2)
        };
        assert_eq!(status("driver_runtime_management", Level::Should, &present).0, Status::Passed);
        let broken = Evidence {
            workloads: Seen::Read(vec![workload(
                "DaemonSet",
                "gpu-operator",
                "nvidia-driver-daemonset",
                "nvcr.io/nvidia/driver:570",
                2,
                1,
            )]),
            ..with_gpus(2)
        };
        assert_eq!(status("driver_runtime_management", Level::Should, &broken).0, Status::Warning);
        let absent = with_gpus(2);
        let (s, why) = status("driver_runtime_management", Level::Should, &absent);
        assert_eq!(s, Status::NeedsEvidence);
        assert!(why.contains("2 accelerator Nodes (nvidia.com/gpu)"), "{why}");
    }

    #[test]
    fn gpu_sharing_and_virtualization_pass_on_visible_signs_and_otherwise_need_a_person() {
        let mut shared = with_gpus(1);
        if let Seen::Read(nodes) = &mut shared.nodes {
            nodes[0].labels.insert("nvidia.com/gpu.replicas".into(), "4".into());
            nodes[0].labels.insert("nvidia.com/vgpu.present".into(), "true".into());
        }
        let (s, why) = status("gpu_sharing", Level::Should, &shared);
        assert_eq!(s, Status::Passed);
        assert!(why.contains("nvidia.com/gpu.replicas=4"), "{why}");
        assert_eq!(status("virtualized_accelerator", Level::Should, &shared).0, Status::Passed);
        let mut mig = with_gpus(1);
        if let Seen::Read(nodes) = &mut mig.nodes {
            nodes[0].accelerators.insert("nvidia.com/mig-1g.10gb".into(), "7".into());
        }
        assert_eq!(status("gpu_sharing", Level::Should, &mig).0, Status::Passed);
        assert_eq!(status("gpu_sharing", Level::Should, &with_gpus(1)).0, Status::NeedsEvidence);
        assert_eq!(status("virtualized_accelerator", Level::Should, &with_gpus(1)).0, Status::NeedsEvidence);
    }

    #[test]
    fn ai_inference_needs_gateway_api_and_an_accepted_gateway_class() {
        let classes = |accepted: Option<bool>| {
            Seen::Read(vec![GatewayClass {
                name: "eg".into(),
                controller: "gateway.envoyproxy.io/gatewayclass-controller".into(),
                accepted,
            }])
        };
        let gateway = served(&[("gateway.networking.k8s.io", group(&[("v1", GATEWAY)]))]);
        let present = Evidence { groups: gateway.clone(), gateway_classes: classes(Some(true)), ..without_gpus() };
        let (s, why) = status("ai_inference", Level::Must, &present);
        assert_eq!(s, Status::Passed);
        assert!(why.contains("GatewayClass eg (gateway.envoyproxy.io/gatewayclass-controller)"), "{why}");
        let absent = Evidence { groups: served(&[]), ..without_gpus() };
        assert!(status("ai_inference", Level::Must, &absent).1.contains("does not serve Gateway API"));
        let broken = Evidence { groups: gateway.clone(), gateway_classes: classes(Some(false)), ..without_gpus() };
        let (s, why) = status("ai_inference", Level::Must, &broken);
        assert_eq!(s, Status::Failed);
        assert!(why.contains("no GatewayClass is Accepted"), "{why}");
        let none = Evidence { groups: gateway.clone(), gateway_classes: Seen::Read(vec![]), ..without_gpus() };
        assert!(status("ai_inference", Level::Must, &none).1.contains("no GatewayClass exists"));
        let forbidden =
            Evidence { groups: gateway, gateway_classes: Seen::Unreadable("forbidden".into()), ..without_gpus() };
        assert_eq!(status("ai_inference", Level::Must, &forbidden).0, Status::NotEvaluated);
    }

    #[test]
    fn advanced_inference_ingress_needs_inference_pools_behind_an_accepted_gateway() {
        let classes =
            Seen::Read(vec![GatewayClass { name: "gke-l7".into(), controller: "c".into(), accepted: Some(true) }]);
        let both = Evidence {
            groups: served(&[
                ("gateway.networking.k8s.io", group(&[("v1", GATEWAY)])),
                ("inference.networking.k8s.io", group(&[("v1", &["InferencePool"])])),
            ]),
            gateway_classes: classes,
            ..without_gpus()
        };
        assert_eq!(status("advanced_inference_ingress", Level::Should, &both).0, Status::Passed);
        let pools_only = Evidence {
            groups: served(&[(
                "inference.networking.x-k8s.io",
                group(&[("v1alpha2", &["InferencePool", "InferenceModel"])]),
            )]),
            ..without_gpus()
        };
        let (s, why) = status("advanced_inference_ingress", Level::Should, &pools_only);
        assert_eq!(s, Status::Warning);
        assert!(why.contains("serves InferencePool, but"), "{why}");
        assert_eq!(
            status("advanced_inference_ingress", Level::Should, &Evidence { groups: served(&[]), ..without_gpus() }).0,
            Status::Warning
        );
    }

    #[test]
    fn networking_and_disaggregated_serving_pass_on_their_apis_and_otherwise_need_a_person() {
        let multus = Evidence { groups: served(&[("k8s.cni.cncf.io", group(&[("v1", &[])]))]), ..without_gpus() };
        assert_eq!(status("high_performance_networking", Level::Should, &multus).0, Status::Passed);
        let dranet =
            Evidence { groups: served(&[]), dra_drivers: Seen::Read(["dra.net".to_owned()].into()), ..without_gpus() };
        assert_eq!(status("high_performance_networking", Level::Should, &dranet).0, Status::Passed);
        assert_eq!(
            status("high_performance_networking", Level::Should, &Evidence { groups: served(&[]), ..without_gpus() }).0,
            Status::NeedsEvidence
        );
        let dynamo = Evidence {
            groups: served(&[("nvidia.com", group(&[("v1alpha1", &[])]))]),
            crds: Seen::Read(vec![crd("nvidia.com", "DynamoGraphDeployment", true)]),
            ..without_gpus()
        };
        assert_eq!(status("disaggregated_inference", Level::Should, &dynamo).0, Status::Passed);
        assert_eq!(
            status("disaggregated_inference", Level::Should, &Evidence { groups: served(&[]), ..without_gpus() }).0,
            Status::NeedsEvidence
        );
    }

    fn kueue(ready: i64) -> Evidence {
        Evidence {
            groups: served(&[("kueue.x-k8s.io", group(&[("v1beta1", &[])]))]),
            workloads: Seen::Read(vec![workload(
                "Deployment",
                "kueue-system",
                "kueue-controller-manager",
                "registry.k8s.io/kueue/kueue:v0.13.0",
                1,
                ready,
            )]),
            crds: Seen::Read(vec![
                crd("kueue.x-k8s.io", "ClusterQueue", true),
                crd("kueue.x-k8s.io", "LocalQueue", true),
            ]),
            webhooks: Seen::Read(vec![Webhook {
                configuration: "ValidatingWebhookConfiguration kueue-validating".into(),
                name: "vclusterqueue.kb.io".into(),
                service_namespace: Some("kueue-system".into()),
                has_ca_bundle: true,
            }]),
            ..without_gpus()
        }
    }

    #[test]
    fn gang_scheduling_needs_a_scheduler_whose_controller_is_available() {
        let (s, why) = status("gang_scheduling", Level::Must, &kueue(1));
        assert_eq!(s, Status::Passed);
        assert!(
            why.contains(
                "Kueue: kueue.x-k8s.io served; controller Deployment kueue-system/kueue-controller-manager (1/1 ready)"
            ),
            "{why}"
        );
        let (s, why) = status("gang_scheduling", Level::Must, &kueue(0));
        assert_eq!(s, Status::Failed);
        assert!(why.contains("controller not available"), "{why}");
        let crds_only = Evidence { workloads: Seen::Read(vec![]), ..kueue(1) };
        assert!(status("gang_scheduling", Level::Must, &crds_only).1.contains("no controller Deployment runs"));
        // A controller beside the cluster's workloads shows itself by the queues it activates.
        let beside = Evidence { active_cluster_queues: Seen::Read(vec!["team-a".into()]), ..crds_only.clone() };
        let (s, why) = status("gang_scheduling", Level::Must, &beside);
        assert_eq!(s, Status::Passed);
        assert!(why.contains("no controller Deployment in the cluster, but ClusterQueue team-a Active"), "{why}");
        let both = Evidence { active_cluster_queues: Seen::Read(vec!["team-a".into()]), ..kueue(1) };
        assert!(status("gang_scheduling", Level::Must, &both).1.ends_with("(1/1 ready); ClusterQueue team-a Active"));
        // Active queues of a group that is not served say nothing (a stale list).
        let stale = Evidence { groups: served(&[]), workloads: Seen::Read(vec![]), ..beside };
        assert_eq!(status("gang_scheduling", Level::Must, &stale).0, Status::Failed);
        let absent = Evidence { groups: served(&[]), workloads: Seen::Read(vec![]), ..without_gpus() };
        let (s, why) = status("gang_scheduling", Level::Must, &absent);
        assert_eq!(s, Status::Failed);
        assert!(why.contains("no gang scheduler is installed"), "{why}");
        let volcano = Evidence {
            groups: served(&[("scheduling.volcano.sh", group(&[("v1beta1", &[])]))]),
            workloads: Seen::Read(vec![workload(
                "Deployment",
                "volcano-system",
                "volcano-scheduler",
                "volcanosh/vc-scheduler:v1.12",
                1,
                1,
            )]),
            ..without_gpus()
        };
        assert!(status("gang_scheduling", Level::Must, &volcano).1.starts_with("Volcano"));
        let unreadable = Evidence { workloads: Seen::Unreadable("forbidden".into()), ..kueue(1) };
        assert_eq!(status("gang_scheduling", Level::Must, &unreadable).0, Status::NotEvaluated);
    }

    #[test]
    fn cluster_autoscaling_passes_on_a_running_autoscaler_and_otherwise_needs_a_person() {
        let running = Evidence {
            groups: served(&[]),
            workloads: Seen::Read(vec![workload(
                "Deployment",
                "kube-system",
                "cluster-autoscaler",
                "registry.k8s.io/autoscaling/cluster-autoscaler:v1.33.0",
                1,
                1,
            )]),
            ..without_gpus()
        };
        assert_eq!(status("cluster_autoscaling", Level::Must, &running).0, Status::Passed);
        let broken = Evidence {
            groups: served(&[]),
            workloads: Seen::Read(vec![workload(
                "Deployment",
                "karpenter",
                "karpenter",
                "public.ecr.aws/karpenter/controller:1.5",
                2,
                0,
            )]),
            ..without_gpus()
        };
        assert_eq!(status("cluster_autoscaling", Level::Must, &broken).0, Status::Failed);
        let managed = Evidence { groups: served(&[("karpenter.sh", group(&[("v1", &[])]))]), ..without_gpus() };
        let (s, why) = status("cluster_autoscaling", Level::Must, &managed);
        assert_eq!(s, Status::NeedsEvidence);
        assert!(why.contains("Karpenter (karpenter.sh)"), "{why}");
        assert_eq!(
            status("cluster_autoscaling", Level::Must, &Evidence { groups: served(&[]), ..without_gpus() }).0,
            Status::NeedsEvidence
        );
    }

    #[test]
    fn pod_autoscaling_needs_an_available_custom_or_external_metrics_api() {
        let api = |available| {
            Seen::Read(vec![ApiService {
                name: "v1beta1.custom.metrics.k8s.io".into(),
                group: "custom.metrics.k8s.io".into(),
                aggregated: true,
                available,
            }])
        };
        assert_eq!(
            status("pod_autoscaling", Level::Must, &Evidence { api_services: api(Some(true)), ..without_gpus() }).0,
            Status::Passed
        );
        let (s, why) =
            status("pod_autoscaling", Level::Must, &Evidence { api_services: api(Some(false)), ..without_gpus() });
        assert_eq!(s, Status::Failed);
        assert!(why.contains("v1beta1.custom.metrics.k8s.io (not Available)"), "{why}");
        let (s, why) = status("pod_autoscaling", Level::Must, &without_gpus());
        assert_eq!(s, Status::Failed);
        assert!(why.contains("only on CPU and memory"), "{why}");
    }

    #[test]
    fn accelerator_metrics_need_an_exporter_on_every_accelerator_node() {
        let exporter = |desired, ready| {
            Seen::Read(vec![workload(
                "DaemonSet",
                "gpu-operator",
                "nvidia-dcgm-exporter",
                "nvcr.io/nvidia/k8s/dcgm-exporter:4.2",
                desired,
                ready,
            )])
        };
        assert_eq!(
            status("accelerator_metrics", Level::Must, &Evidence { workloads: exporter(4, 4), ..with_gpus(4) }).0,
            Status::Passed
        );
        let (s, why) =
            status("accelerator_metrics", Level::Must, &Evidence { workloads: exporter(4, 2), ..with_gpus(4) });
        assert_eq!(s, Status::Failed);
        assert!(why.contains("runs on 2 Nodes, fewer than the 4 accelerator Nodes"), "{why}");
        let (s, why) = status("accelerator_metrics", Level::Must, &with_gpus(4));
        assert_eq!(s, Status::Failed);
        assert!(why.contains("no accelerator metrics exporter"), "{why}");
    }

    #[test]
    fn ai_service_metrics_need_a_running_collector() {
        let prometheus = |ready| {
            Seen::Read(vec![
                workload(
                    "StatefulSet",
                    "monitoring",
                    "prometheus-k8s",
                    "quay.io/prometheus/prometheus:v3.5.0",
                    2,
                    ready,
                ),
                workload(
                    "Deployment",
                    "monitoring",
                    "prometheus-adapter",
                    "registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12",
                    1,
                    1,
                ),
            ])
        };
        let groups = served(&[("monitoring.coreos.com", group(&[("v1", &[])]))]);
        let (s, why) = status(
            "ai_service_metrics",
            Level::Must,
            &Evidence { groups: groups.clone(), workloads: prometheus(2), ..without_gpus() },
        );
        assert_eq!(s, Status::Passed);
        assert!(
            why.contains("StatefulSet monitoring/prometheus-k8s (2/2 ready), discovery through monitoring.coreos.com"),
            "{why}"
        );
        let (s, why) = status(
            "ai_service_metrics",
            Level::Must,
            &Evidence { groups: groups.clone(), workloads: prometheus(0), ..without_gpus() },
        );
        assert_eq!(s, Status::Failed);
        assert!(
            why.contains("prometheus-k8s") && !why.contains("prometheus-adapter"),
            "the adapter is not a collector: {why}"
        );
        assert_eq!(
            status("ai_service_metrics", Level::Must, &Evidence { groups, ..without_gpus() }).0,
            Status::NeedsEvidence
        );
        assert_eq!(
            status("ai_service_metrics", Level::Must, &Evidence { groups: served(&[]), ..without_gpus() }).0,
            Status::Failed
        );
    }

    #[test]
    fn secure_accelerator_access_fails_on_pods_that_bypass_the_device_plugin() {
        let clean = Evidence { pods: Seen::Read(PodFacts { requesting: 3, ..PodFacts::default() }), ..with_gpus(2) };
        let (s, why) = status("secure_accelerator_access", Level::Must, &clean);
        assert_eq!(s, Status::Passed);
        assert!(why.contains("3 Pods request them"), "{why}");
        let bypass = Evidence {
            pods: Seen::Read(PodFacts {
                requesting: 1,
                bypassing: vec!["Pod ml/sneaky (privileged on an accelerator node, no accelerator requested)".into()],
                bypassing_count: 1,
            }),
            ..with_gpus(2)
        };
        let (s, why) = status("secure_accelerator_access", Level::Must, &bypass);
        assert_eq!(s, Status::Failed);
        assert!(why.contains("ml/sneaky"), "{why}");
        let unreadable = Evidence { pods: Seen::Unreadable("forbidden".into()), ..with_gpus(2) };
        assert_eq!(status("secure_accelerator_access", Level::Must, &unreadable).0, Status::NotEvaluated);
    }

    #[test]
    fn robust_controller_needs_an_ai_operator_with_established_crds_a_running_controller_and_webhooks() {
        let (s, why) = status("robust_controller", Level::Must, &kueue(1));
        assert_eq!(s, Status::Passed);
        assert!(why.contains("Kueue: 2 CRDs Established") && why.contains("1 webhooks"), "{why}");
        let mut broken = kueue(0);
        broken.crds = Seen::Read(vec![crd("kueue.x-k8s.io", "ClusterQueue", false)]);
        if let Seen::Read(hooks) = &mut broken.webhooks {
            hooks[0].has_ca_bundle = false;
        }
        let (s, why) = status("robust_controller", Level::Must, &broken);
        assert_eq!(s, Status::Failed);
        assert!(why.contains("CRDs not Established: clusterqueues.kueue.x-k8s.io"), "{why}");
        assert!(why.contains("controller not available") && why.contains("without a CA bundle"), "{why}");
        let absent = Evidence { crds: Seen::Read(vec![crd("example.com", "Widget", true)]), ..without_gpus() };
        let (s, why) = status("robust_controller", Level::Must, &absent);
        assert_eq!(s, Status::Failed);
        assert!(why.contains("no AI operator with CRDs"), "{why}");
        let forbidden = Evidence { webhooks: Seen::Unreadable("forbidden".into()), ..kueue(1) };
        assert_eq!(status("robust_controller", Level::Must, &forbidden).0, Status::NotEvaluated);
    }

    #[test]
    fn only_workloads_of_known_solutions_are_kept() {
        assert!(relevant("kueue-controller-manager", &[]));
        assert!(relevant("metrics", &["nvcr.io/nvidia/k8s/dcgm-exporter:4.2".to_owned()]));
        assert!(!relevant("checkout", &["shop/checkout:1.0".to_owned()]));
    }
}
