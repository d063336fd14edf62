//! Operators: an AI operator whose CRDs are Established, whose controller runs and whose
//! webhooks can be called.

use std::collections::BTreeSet;

use kube9_api::ai_conformance::{Level, RequirementStatus as Status};

use super::finding::{Finding, describe_all, finding, named, unmet};
use crate::evidence::{Evidence, Workload};
use crate::solutions::AI_OPERATORS;

pub(super) fn robust_controller(level: Level, evidence: &Evidence) -> Finding {
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
    use super::*;
    use crate::evaluate::fixtures::*;
    use crate::evidence::Seen;

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
}
