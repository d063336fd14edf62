//! Performance efficiency: whether the scheduler and autoscalers have what they need.

use kube9_api::common::{Pillar, Severity};

use crate::check::Run::{Each, Kept, Related};
use crate::check::{Check, per_container};
use crate::pods::{POD_KINDS, image_pinned, limits, requests};
use crate::subject::Subject;

const P: Pillar = Pillar::PerformanceEfficiency;

pub static CHECKS: &[Check] = &[
    Check {
        id: "performance-efficiency.cpu-requests",
        pillar: P,
        title: "No CPU request",
        severity: Severity::Medium,
        rationale: "Without a CPU request the scheduler packs the Pod anywhere and it gets the least CPU under contention.",
        remediation: "Set resources.requests.cpu to the container's typical use.",
        reads: POD_KINDS,
        run: Each(|s, e| per_container(s, e, |_, c| (!requests(c, "cpu")).then(|| "has no CPU request".into()))),
    },
    Check {
        id: "performance-efficiency.memory-requests",
        pillar: P,
        title: "No memory request",
        severity: Severity::Medium,
        rationale: "Without a memory request the Pod can be scheduled onto a node that cannot hold it, and is evicted first.",
        remediation: "Set resources.requests.memory to the container's steady-state use.",
        reads: POD_KINDS,
        run: Each(|s, e| per_container(s, e, |_, c| (!requests(c, "memory")).then(|| "has no memory request".into()))),
    },
    Check {
        id: "performance-efficiency.memory-limits",
        pillar: P,
        title: "No memory limit",
        severity: Severity::Medium,
        rationale: "A container without a memory limit can take the node's memory and get its neighbours killed.",
        remediation: "Set resources.limits.memory above the container's peak use.",
        reads: POD_KINDS,
        run: Each(|s, e| per_container(s, e, |_, c| (!limits(c, "memory")).then(|| "has no memory limit".into()))),
    },
    Check {
        id: "performance-efficiency.hpa-requests",
        pillar: P,
        title: "CPU autoscaling without CPU requests",
        severity: Severity::High,
        rationale: "CPU utilisation is measured against requests: without them the autoscaler cannot act.",
        remediation: "Set resources.requests.cpu on every container of the target workload.",
        reads: &["HorizontalPodAutoscaler", "Deployment", "StatefulSet"],
        run: Related(|s, f, e| {
            for h in &s.hpas {
                let Some(spec) = h.spec.as_ref() else { continue };
                let on_cpu = spec
                    .metrics
                    .as_ref()
                    .is_none_or(|m| m.iter().any(|m| m.resource.as_ref().is_some_and(|r| r.name == "cpu")));
                let (Some(target), true) = (f.scale_target(h), on_cpu) else { continue };
                let ok = target.cpu_requested;
                e.expect(
                    ok,
                    Subject::new("autoscaling/v2", "HorizontalPodAutoscaler", &h.metadata),
                    None,
                    format!("scales {} on CPU but its containers have no CPU requests", spec.scale_target_ref.name),
                );
            }
        }),
    },
    Check {
        id: "performance-efficiency.hpa-range",
        pillar: P,
        title: "Autoscaler that cannot scale",
        severity: Severity::Low,
        rationale: "minReplicas equal to maxReplicas fixes the replica count: the autoscaler only costs API calls.",
        remediation: "Widen the range, or remove the autoscaler and set replicas.",
        reads: &["HorizontalPodAutoscaler"],
        run: Kept(|s, e| {
            for h in &s.hpas {
                let Some(spec) = h.spec.as_ref() else { continue };
                e.expect(
                    spec.min_replicas.unwrap_or(1) < spec.max_replicas,
                    Subject::new("autoscaling/v2", "HorizontalPodAutoscaler", &h.metadata),
                    None,
                    format!("minReplicas equals maxReplicas ({})", spec.max_replicas),
                );
            }
        }),
    },
    Check {
        id: "performance-efficiency.pull-always",
        pillar: P,
        title: "Pinned images pulled on every start",
        severity: Severity::Low,
        rationale: "imagePullPolicy: Always with a pinned tag contacts the registry on every start for nothing, slowing scale-out and recovery.",
        remediation: "Use imagePullPolicy: IfNotPresent for pinned tags and digests.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let pinned = c.image.as_deref().is_some_and(image_pinned);
                (pinned && c.image_pull_policy.as_deref() == Some("Always"))
                    .then(|| "pulls a pinned image on every start".into())
            })
        }),
    },
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::CHECKS;
    use crate::testing::*;

    fn hpa(min: i32, max: i32) -> serde_json::Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": min, "maxReplicas": max,
                        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}})
    }

    #[test]
    fn every_performance_check_flags_its_fixture_and_passes_a_good_one() {
        let good = deployment_with_container(json!({}));
        let no_requests = deployment_with_container(json!({"resources": {"requests": null, "limits": null}}));
        let cases: Vec<Case> = vec![
            ("performance-efficiency.cpu-requests", vec![no_requests.clone()], vec![good.clone()]),
            ("performance-efficiency.memory-requests", vec![no_requests.clone()], vec![good.clone()]),
            ("performance-efficiency.memory-limits", vec![no_requests.clone()], vec![good.clone()]),
            ("performance-efficiency.hpa-requests", vec![no_requests, hpa(2, 6)], vec![good.clone(), hpa(2, 6)]),
            ("performance-efficiency.hpa-range", vec![hpa(3, 3)], vec![hpa(2, 6)]),
            (
                "performance-efficiency.pull-always",
                vec![deployment_with_container(json!({"imagePullPolicy": "Always"}))],
                vec![good],
            ),
        ];
        every_check_flags_and_passes(CHECKS, cases);
    }

    #[test]
    fn a_native_sidecar_without_resources_is_flagged_like_any_container() {
        let sidecar = container(json!({"name": "proxy", "restartPolicy": "Always", "resources": null}));
        let pod = deployment(pod_spec(json!({"initContainers": [sidecar]})), json!({}));
        for id in [
            "performance-efficiency.cpu-requests",
            "performance-efficiency.memory-requests",
            "performance-efficiency.memory-limits",
        ] {
            let report = crate::engine::run(&snapshot(std::slice::from_ref(&pod)), &Default::default());
            let result = report.results.iter().find(|r| r.check.id == id).expect("ran");
            let containers: Vec<_> = result.failed.iter().map(|f| f.container.as_deref()).collect();
            assert_eq!(containers, vec![Some("proxy")], "{id}");
        }
    }
}
