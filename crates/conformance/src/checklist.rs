//! The CNCF Kubernetes AI Conformance checklists, one per Kubernetes minor, as the operator's
//! own data: each requirement's id, category and level as the checklist files in
//! cncf/k8s-ai-conformance (`docs/AIConformance-1.xx.yaml`) give them, and a one-line title of
//! our own. A unit test compares them with those files. Pure.

use kube9_api::ai_conformance::Category::{self, *};
use kube9_api::ai_conformance::Level::{self, *};

/// The commit of cncf/k8s-ai-conformance these checklists follow.
pub const SOURCE_REVISION: &str = "b2c89690";

/// One requirement of a checklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub id: &'static str,
    pub category: Category,
    pub level: Level,
}

impl Requirement {
    /// One line saying what is required, in the operator's words.
    pub fn title(&self) -> &'static str {
        title(self.id)
    }
}

/// The checklist of one Kubernetes minor.
#[derive(Debug, PartialEq, Eq)]
pub struct Checklist {
    /// The minor (33 for 1.33).
    pub minor: u32,
    pub requirements: &'static [Requirement],
}

impl Checklist {
    /// `1.35`.
    pub fn version(&self) -> String {
        format!("1.{}", self.minor)
    }

    /// Where the checklist comes from, at the revision followed.
    pub fn source(&self) -> String {
        format!(
            "https://github.com/cncf/k8s-ai-conformance/blob/{SOURCE_REVISION}/docs/AIConformance-1.{}.yaml",
            self.minor
        )
    }
}

const fn req(id: &'static str, category: Category, level: Level) -> Requirement {
    Requirement { id, category, level }
}

/// Every checklist the operator carries, oldest first.
pub const CHECKLISTS: &[Checklist] = &[
    Checklist {
        minor: 33,
        requirements: &[
            req("dra_support", Accelerators, Should),
            req("ai_inference", Networking, Must),
            req("gang_scheduling", SchedulingOrchestration, Must),
            req("cluster_autoscaling", SchedulingOrchestration, Must),
            req("pod_autoscaling", SchedulingOrchestration, Must),
            req("accelerator_metrics", Observability, Must),
            req("ai_service_metrics", Observability, Must),
            req("secure_accelerator_access", Security, Must),
            req("robust_controller", Operator, Must),
        ],
    },
    Checklist {
        minor: 34,
        requirements: &[
            req("dra_support", Accelerators, Must),
            req("ai_inference", Networking, Must),
            req("gang_scheduling", SchedulingOrchestration, Must),
            req("cluster_autoscaling", SchedulingOrchestration, Must),
            req("pod_autoscaling", SchedulingOrchestration, Must),
            req("accelerator_metrics", Observability, Must),
            req("ai_service_metrics", Observability, Must),
            req("secure_accelerator_access", Security, Must),
            req("robust_controller", Operator, Must),
        ],
    },
    Checklist {
        minor: 35,
        requirements: &[
            req("dra_support", Accelerators, Must),
            req("driver_runtime_management", Accelerators, Should),
            req("gpu_sharing", Accelerators, Should),
            req("virtualized_accelerator", Accelerators, Should),
            req("ai_inference", Networking, Must),
            req("gang_scheduling", SchedulingOrchestration, Must),
            req("cluster_autoscaling", SchedulingOrchestration, Must),
            req("pod_autoscaling", SchedulingOrchestration, Must),
            req("accelerator_metrics", Observability, Must),
            req("ai_service_metrics", Observability, Must),
            req("secure_accelerator_access", Security, Must),
            req("robust_controller", Operator, Must),
        ],
    },
    Checklist {
        minor: 36,
        requirements: &[
            req("driver_runtime_management", Accelerators, Should),
            req("gpu_sharing", Accelerators, Should),
            req("virtualized_accelerator", Accelerators, Should),
            req("ai_inference", Networking, Must),
            req("advanced_inference_ingress", Networking, Should),
            req("high_performance_networking", Networking, Should),
            req("disaggregated_inference", Networking, Should),
            req("gang_scheduling", SchedulingOrchestration, Must),
            req("cluster_autoscaling", SchedulingOrchestration, Must),
            req("pod_autoscaling", SchedulingOrchestration, Must),
            req("accelerator_metrics", Observability, Must),
            req("ai_service_metrics", Observability, Must),
            req("secure_accelerator_access", Security, Must),
            req("robust_controller", Operator, Must),
        ],
    },
];

/// The versions covered, for messages: `1.33 to 1.36`.
pub fn covered() -> String {
    match (CHECKLISTS.first(), CHECKLISTS.last()) {
        (Some(first), Some(last)) => format!("{} to {}", first.version(), last.version()),
        _ => "none".into(),
    }
}

/// The checklist for a cluster of this minor: the newest at or below it. None when the cluster
/// is older than every checklist.
pub fn for_minor(minor: u32) -> Option<&'static Checklist> {
    CHECKLISTS.iter().rev().find(|c| c.minor <= minor)
}

fn title(id: &str) -> &'static str {
    match id {
        "dra_support" => "Dynamic Resource Allocation APIs are served for fine-grained device requests",
        "driver_runtime_management" => {
            "Accelerator drivers and container runtime settings are installed and kept right, verifiably"
        }
        "gpu_sharing" => "At least one way to share a GPU between workloads (partitioning or time-slicing)",
        "virtualized_accelerator" => "Virtual accelerators (such as vGPU) can be exposed and managed",
        "ai_inference" => "Gateway API with an implementation, for routing traffic to inference services",
        "advanced_inference_ingress" => "Gateway API Inference Extension, for model-aware routing of requests",
        "high_performance_networking" => {
            "Fast pod-to-pod networks are managed, discoverable and attachable as extra interfaces"
        }
        "disaggregated_inference" => "Inference split into separately scaled phases (prefill and decode) can run",
        "gang_scheduling" => "A gang scheduler (all-or-nothing scheduling, e.g. Kueue or Volcano) runs",
        "cluster_autoscaling" => "A cluster autoscaler, if provided, scales accelerator node groups for pending pods",
        "pod_autoscaling" => "HorizontalPodAutoscaler works for accelerator pods, also on custom metrics",
        "accelerator_metrics" => "Per-accelerator utilization and memory metrics from a machine-readable endpoint",
        "ai_service_metrics" => "A monitoring system discovers and scrapes metrics that workloads expose",
        "secure_accelerator_access" => {
            "Access to accelerators goes through the device plugin or DRA, isolated between workloads"
        }
        "robust_controller" => "A complex AI operator with CRDs installs and runs: pods, webhooks, reconciliation",
        _ => "A requirement of the checklist",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;

    /// The checklist files, from the shared fixtures beside the repository.
    fn fixtures() -> Option<PathBuf> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = root.join("../shared/fixtures/ai-conformance");
        dir.is_dir().then_some(dir)
    }

    type Encoded = Vec<(String, String, String)>;

    /// (id, category, level) of every requirement in a checklist file, in its order.
    fn read(path: &std::path::Path) -> (String, Encoded) {
        let text = std::fs::read_to_string(path).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let version = doc["metadata"]["kubernetesVersion"].as_str().unwrap().trim_start_matches('v').to_owned();
        let mut out = Vec::new();
        for (category, items) in doc["spec"].as_mapping().unwrap() {
            for item in items.as_sequence().unwrap() {
                out.push((
                    item["id"].as_str().unwrap().to_owned(),
                    category.as_str().unwrap().to_owned(),
                    item["level"].as_str().unwrap().to_owned(),
                ));
            }
        }
        (version, out)
    }

    #[test]
    fn the_encoding_matches_the_cncf_checklist_files() {
        let Some(dir) = fixtures() else {
            eprintln!("skipped: ../shared/fixtures/ai-conformance is absent (the checklist files are not here)");
            return;
        };
        let mut files: BTreeMap<String, Encoded> = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let (version, requirements) = read(&path);
                assert_eq!(path.file_name().unwrap().to_string_lossy(), format!("AIConformance-{version}.yaml"));
                files.insert(version, requirements);
            }
        }
        let ours: BTreeMap<String, Encoded> = CHECKLISTS
            .iter()
            .map(|c| {
                let rows = c
                    .requirements
                    .iter()
                    .map(|r| (r.id.to_owned(), r.category.as_str().to_owned(), r.level.as_str().to_owned()))
                    .collect();
                (c.version(), rows)
            })
            .collect();
        assert_eq!(ours, files);
    }

    #[test]
    fn every_requirement_has_its_own_title() {
        for checklist in CHECKLISTS {
            for r in checklist.requirements {
                assert_ne!(r.title(), "A requirement of the checklist", "{}", r.id);
                assert!(r.title().len() <= 100, "{}: one line", r.id);
            }
        }
    }

    #[test]
    fn a_cluster_gets_the_newest_checklist_at_or_below_its_minor() {
        assert_eq!(for_minor(20), None);
        assert_eq!(for_minor(32), None);
        assert_eq!(for_minor(33).map(|c| c.minor), Some(33));
        assert_eq!(for_minor(35).map(|c| c.minor), Some(35));
        assert_eq!(for_minor(40).map(|c| c.minor), Some(36));
        assert_eq!(covered(), "1.33 to 1.36");
        assert!(for_minor(35).unwrap().source().ends_with("/b2c89690/docs/AIConformance-1.35.yaml"));
    }
}
