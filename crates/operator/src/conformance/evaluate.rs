//! Each requirement judged from the evidence: `passed`, `failed` or `warning` where the API
//! shows it, `not-applicable` for an accelerator requirement on a cluster without
//! accelerators, `not-evaluated` when the evidence could not be read, and `needs-evidence`
//! where only a person can attest. A requirement that is not met is `failed` for a MUST and
//! `warning` for a SHOULD. Every finding says what was seen. Pure.

use std::collections::BTreeSet;

use kube9_api::ai_conformance::{Level, RequirementStatus as Status};

use super::checklist::Requirement;
use super::evidence::{Evidence, MAX_NAMED, NodeFacts, Workload};

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
    solution("Google Managed Prometheus", &["monitoring.googleapis.com"], &["gmp-collector", "gke.gcr.io/prometheus-engine"]),
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
    finding(Status::Passed, format!("GPU sharing is configured: {}", named(signs.iter().cloned())), signs.into_iter().collect())
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
            format!("the {} show no vGPU labels; attest whether virtualized accelerators are offered", node_summary(&nodes)),
            vec![],
        );
    }
    finding(Status::Passed, format!("virtual GPUs are exposed: {}", named(signs.iter().cloned())), signs.into_iter().collect())
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
            format!("gateway.networking.k8s.io ({}) does not serve GatewayClass, Gateway and HTTPRoute", group.versions.join(", ")),
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
                named(classes.iter().map(|c| format!("{}: {}", c.name, c.accepted.map_or("no condition", |_| "not accepted"))))
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
        format!("a disaggregated serving stack is installed ({}); separate prefill and decode are not exercised", named(signs.iter().cloned())),
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
        let running: Vec<&&Workload> = controllers.iter().filter(|w| w.available).collect();
        let apis = if groups.is_empty() { String::new() } else { format!("{} served; ", groups.join(", ")) };
        if !running.is_empty() {
            let seen = describe_all(&controllers);
            return finding(Status::Passed, format!("{}: {apis}controller {}", s.name, named(seen.iter().cloned())), seen);
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
    let metrics: Vec<_> =
        services.iter().filter(|s| s.group == "custom.metrics.k8s.io" || s.group == "external.metrics.k8s.io").collect();
    let seen: Vec<String> = metrics
        .iter()
        .map(|s| format!("APIService {} ({})", s.name, if s.available == Some(true) { "Available" } else { "not Available" }))
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
        return finding(unmet(level), format!("the metrics APIs are registered but not available: {}", named(seen.iter().cloned())), seen);
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
        format!("the exporter runs on {covered} Nodes, fewer than the {}: {}", node_summary(&nodes), named(seen.iter().cloned())),
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
            let discovery = if groups.is_empty() { String::new() } else { format!(", discovery through {}", groups.join(", ")) };
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
            format!("{} APIs are served but no collector runs in the cluster (a managed one runs outside it): attest it", named(apis.iter().cloned())),
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
    let mediated = if nodes.is_empty() { named(dra.iter().cloned()) } else { format!("the device plugin ({})", node_summary(&nodes)) };
    finding(
        Status::Passed,
        format!(
            "accelerators are handed out by {mediated}; {} Pods request them and none reaches them around it (isolation inside the container runtime is not observable through the API)",
            pods.requesting
        ),
        nodes.iter().map(|n| format!("Node {}: {}", n.name, named(n.accelerators.iter().map(|(k, v)| format!("{k}={v}"))))).chain(dra).collect(),
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
        let hooks: Vec<_> =
            webhooks.iter().filter(|w| w.service_namespace.as_deref().is_some_and(|ns| namespaces.contains(ns))).collect();
        let no_ca: Vec<String> = hooks.iter().filter(|w| !w.has_ca_bundle).map(|w| format!("{} ({})", w.name, w.configuration)).collect();
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
