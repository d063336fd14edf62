//! The products the self-check recognises, by the API groups their CRDs are in and what their
//! workloads are called; the evidence keeps only workloads of one of them.

use std::collections::BTreeSet;

use crate::evidence::Workload;

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

    pub(crate) fn workloads<'a>(&self, evidence: &'a [Workload]) -> Vec<&'a Workload> {
        evidence.iter().filter(|w| self.owns(&w.name, &w.images)).collect()
    }

    pub(crate) fn served_groups<'a>(&self, groups: &'a BTreeSet<&'a str>) -> Vec<&'a str> {
        groups.iter().copied().filter(|g| self.groups.contains(g)).collect()
    }
}

/// Whether the observer keeps a workload: it belongs to some known solution.
pub fn relevant(name: &str, images: &[String]) -> bool {
    every_solution().any(|s| s.owns(name, images))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_workloads_of_known_solutions_are_kept() {
        assert!(relevant("kueue-controller-manager", &[]));
        assert!(relevant("metrics", &["nvcr.io/nvidia/k8s/dcgm-exporter:4.2".to_owned()]));
        assert!(!relevant("checkout", &["shop/checkout:1.0".to_owned()]));
    }
}
