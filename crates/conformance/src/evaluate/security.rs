//! Security: accelerators are reached only through the device plugin or DRA.

use kube9_api::ai_conformance::{Level, RequirementStatus as Status};

use super::accelerators::{accelerators, is_accelerator_driver, node_summary};
use super::finding::{Finding, finding, named, unmet};
use crate::evidence::Evidence;

pub(super) fn secure_accelerator_access(level: Level, evidence: &Evidence) -> Finding {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::fixtures::*;
    use crate::evidence::{PodFacts, Seen};

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
}
