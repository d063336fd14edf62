//! Accelerators: Dynamic Resource Allocation, driver and runtime management, GPU sharing and
//! virtualized accelerators; and which Nodes have accelerators at all, which decides whether
//! an accelerator requirement applies.

use std::collections::BTreeSet;

use kube9_api::ai_conformance::{Level, RequirementStatus as Status};

use super::finding::{Finding, describe_all, finding, named, unmet, unreadable};
use crate::evidence::{Evidence, NodeFacts, Workload};
use crate::solutions::DRIVER_MANAGERS;

/// The accelerator nodes, or the finding for a cluster without accelerators (or unreadable Nodes).
pub(super) fn accelerators(evidence: &Evidence) -> Result<Vec<&NodeFacts>, Finding> {
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

pub(super) fn is_accelerator_driver(driver: &str) -> bool {
    ["gpu", "nvidia", "amd", "intel", "neuron", "tpu"].iter().any(|m| driver.contains(m))
}

pub(super) fn node_summary(nodes: &[&NodeFacts]) -> String {
    let resources: BTreeSet<&str> = nodes.iter().flat_map(|n| n.accelerators.keys().map(String::as_str)).collect();
    format!("{} accelerator Nodes ({})", nodes.len(), named(resources.iter().map(|r| (*r).to_owned())))
}

pub(super) fn dra_support(level: Level, evidence: &Evidence) -> Finding {
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

pub(super) fn driver_runtime_management(level: Level, evidence: &Evidence) -> Finding {
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

pub(super) fn gpu_sharing(evidence: &Evidence) -> Finding {
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

pub(super) fn virtualized_accelerator(evidence: &Evidence) -> Finding {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::fixtures::*;
    use crate::evidence::Seen;

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
}
