//! Operational excellence: whether people can tell what runs, who owns it, and roll it back.

use kube9_api::common::{Pillar, Severity};

use crate::check::Run::Each;
use crate::check::{Check, per_container};
use crate::pods::{POD_KINDS, image_pinned, pod_owners};
use crate::subject::Subject;

const O: Pillar = Pillar::OperationalExcellence;

pub static CHECKS: &[Check] = &[
    Check {
        id: "operational-excellence.recommended-labels",
        pillar: O,
        title: "Missing app.kubernetes.io/name",
        severity: Severity::Low,
        rationale: "Tools, dashboards and people find a workload's objects through the recommended labels.",
        remediation: "Label the workload and its Pod template with app.kubernetes.io/name (and instance, version, part-of).",
        reads: POD_KINDS,
        run: Each(|s, e| {
            for o in pod_owners(s) {
                let labelled = o.subject.meta.labels.as_ref().is_some_and(|l| l.contains_key("app.kubernetes.io/name"));
                e.expect(labelled, o.subject, None, "has no app.kubernetes.io/name label");
            }
        }),
    },
    Check {
        id: "operational-excellence.default-namespace",
        pillar: O,
        title: "Workloads in the default namespace",
        severity: Severity::Low,
        rationale: "The default namespace has no owner, quota or policy of its own; everything there is shared.",
        remediation: "Move the workload into a namespace of its own team or application.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            for o in pod_owners(s) {
                let ns = o.subject.meta.namespace.as_deref().unwrap_or("default");
                e.expect(ns != "default", o.subject, None, "runs in the default namespace");
            }
        }),
    },
    Check {
        id: "operational-excellence.rollback-history",
        pillar: O,
        title: "No rollback history",
        severity: Severity::Low,
        rationale: "revisionHistoryLimit: 0 deletes old ReplicaSets, so `kubectl rollout undo` has nothing to go back to.",
        remediation: "Keep a few revisions (the default is 10; 3 to 5 is plenty).",
        reads: &["Deployment", "StatefulSet", "DaemonSet"],
        run: Each(|s, e| {
            for w in s.workloads.iter().filter(|w| w.kind.serves() && w.kind.as_str() != "ReplicaSet") {
                e.expect(
                    w.revision_history_limit != Some(0),
                    Subject::new(w.kind.api_version(), w.kind.as_str(), &w.metadata),
                    None,
                    "keeps no revision to roll back to",
                );
            }
        }),
    },
    Check {
        id: "operational-excellence.liveness-equals-readiness",
        pillar: O,
        title: "Liveness probe identical to readiness probe",
        severity: Severity::Low,
        rationale: "When both probes are the same, an overloaded Pod is restarted instead of taken out of rotation, which spreads the overload.",
        remediation: "Make the liveness probe check only that the process is alive, with a longer failure threshold.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| match (&c.liveness_probe, &c.readiness_probe) {
                (Some(l), Some(r)) if l == r => Some("liveness and readiness probes are identical".into()),
                _ => None,
            })
        }),
    },
    Check {
        id: "operational-excellence.latest-if-not-present",
        pillar: O,
        title: "Mutable tag cached per node",
        severity: Severity::Medium,
        rationale: "An unpinned tag with imagePullPolicy IfNotPresent runs whatever each node cached: different nodes, different code.",
        remediation: "Pin the image to a version tag or digest.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let image = c.image.as_deref().unwrap_or_default();
                let policy = c.image_pull_policy.as_deref();
                (!image_pinned(image) && policy == Some("IfNotPresent"))
                    .then(|| format!("{image} is mutable and pulled only when a node lacks it"))
            })
        }),
    },
    Check {
        id: "operational-excellence.duplicate-env",
        pillar: O,
        title: "Environment variables set twice",
        severity: Severity::Medium,
        rationale: "When a container sets the same variable twice the last one silently wins: a later edit to the first has no effect, and tools that merge manifests disagree about the result.",
        remediation: "Keep one entry per variable name.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let mut seen = std::collections::BTreeSet::new();
                let mut twice: Vec<&str> = Vec::new();
                for v in c.env.iter().flatten() {
                    if !seen.insert(v.name.as_str()) && !twice.contains(&v.name.as_str()) {
                        twice.push(&v.name);
                    }
                }
                (!twice.is_empty()).then(|| format!("sets {} more than once", twice.join(", ")))
            })
        }),
    },
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::CHECKS;
    use crate::testing::*;

    #[test]
    fn every_operations_check_flags_its_fixture_and_passes_a_good_one() {
        let good = deployment_with_container(json!({}));
        let probe = json!({"httpGet": {"path": "/healthz", "port": 8080}});
        let cases: Vec<Case> = vec![
            (
                "operational-excellence.recommended-labels",
                vec![deployment(pod_spec(json!({})), json!({"metadata": {"labels": null}}))],
                vec![good.clone()],
            ),
            (
                "operational-excellence.default-namespace",
                vec![deployment(pod_spec(json!({})), json!({"metadata": {"namespace": "default"}}))],
                vec![good.clone()],
            ),
            (
                "operational-excellence.rollback-history",
                vec![deployment(pod_spec(json!({})), json!({"spec": {"revisionHistoryLimit": 0}}))],
                vec![good.clone()],
            ),
            (
                "operational-excellence.liveness-equals-readiness",
                vec![deployment_with_container(json!({"livenessProbe": probe.clone(), "readinessProbe": probe}))],
                vec![good.clone()],
            ),
            (
                "operational-excellence.latest-if-not-present",
                vec![deployment_with_container(json!({"image": "shop/web:latest", "imagePullPolicy": "IfNotPresent"}))],
                vec![good.clone()],
            ),
            (
                "operational-excellence.duplicate-env",
                vec![deployment_with_container(
                    json!({"env": [{"name": "MODE", "value": "a"}, {"name": "MODE", "value": "b"}]}),
                )],
                vec![good],
            ),
        ];
        every_check_flags_and_passes(CHECKS, cases);
    }
}
