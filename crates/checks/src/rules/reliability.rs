//! Reliability: whether workloads survive restarts, node loss and voluntary disruption.

use kube9_api::common::{Pillar, Severity};

use crate::check::Run::{Each, Kept, Related};
use crate::check::{Check, per_container};
use crate::facts::{Labels, WorkloadFact};
use crate::pods::{POD_KINDS, image_pinned, pod_owners, reads_running_pods, runs_to_completion};
use crate::snapshot::{WorkloadKind, selects};
use crate::subject::Subject;

const R: Pillar = Pillar::Reliability;

pub static CHECKS: &[Check] = &[
    Check {
        id: "reliability.replicas",
        pillar: R,
        title: "Single replica",
        severity: Severity::Medium,
        rationale: "One replica means every rollout, node drain or crash is an outage.",
        remediation: "Run at least 2 replicas (and spread them with anti-affinity or topology spread).",
        reads: &["Deployment", "StatefulSet", "ReplicaSet"],
        run: Each(|s, e| {
            for w in s.workloads.iter().filter(|w| w.replicas.is_some()) {
                let replicas = w.replicas.unwrap_or(1);
                // Zero is a deliberate pause, not a single point of failure.
                e.expect(
                    replicas != 1,
                    Subject::new(w.kind.api_version(), w.kind.as_str(), &w.metadata),
                    None,
                    "runs a single replica",
                );
            }
        }),
    },
    Check {
        id: "reliability.liveness-probe",
        pillar: R,
        title: "No liveness probe",
        severity: Severity::Medium,
        rationale: "Without a liveness probe a hung process keeps its Pod forever.",
        remediation: "Add a livenessProbe that fails when the process cannot make progress.",
        reads: &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"],
        run: Each(|s, e| {
            // A native sidecar runs for the Pod's life and the kubelet restarts it when its
            // liveness probe fails, like any container; a classic init container has ended.
            per_container(s, e, |owner, c| {
                let serving = owner.workload.is_none_or(|w| w.kind.serves());
                let init = runs_to_completion(owner.spec, c);
                (serving && !init && c.liveness_probe.is_none()).then(|| "has no livenessProbe".into())
            })
        }),
    },
    Check {
        id: "reliability.readiness-probe",
        pillar: R,
        title: "No readiness probe",
        severity: Severity::Medium,
        rationale: "Without a readiness probe traffic reaches a Pod before it can serve, and rollouts cannot tell a bad version.",
        remediation: "Add a readinessProbe that passes only when the container can serve.",
        reads: &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"],
        run: Each(|s, e| {
            // Only the regular containers: a native sidecar (a proxy, a log shipper) is not
            // what the Pod serves, and a classic init container has ended before traffic.
            per_container(s, e, |owner, c| {
                let serving = owner.workload.is_none_or(|w| w.kind.serves());
                let init = owner.spec.init_containers.iter().flatten().any(|i| i.name == c.name);
                (serving && !init && c.readiness_probe.is_none()).then(|| "has no readinessProbe".into())
            })
        }),
    },
    Check {
        id: "reliability.disruption-budget",
        pillar: R,
        title: "No PodDisruptionBudget",
        severity: Severity::Medium,
        rationale: "A node drain may evict every replica at once when no PodDisruptionBudget limits it.",
        remediation: "Add a PodDisruptionBudget (for example maxUnavailable: 1) selecting the workload's Pods.",
        reads: &["Deployment", "StatefulSet", "PodDisruptionBudget"],
        run: Each(|s, e| {
            for w in s.workloads.iter().filter(|w| w.replicas.unwrap_or(0) >= 2) {
                let labels = w.pod_labels();
                let covered = s.pdbs.iter().any(|p| {
                    p.metadata.namespace == w.metadata.namespace
                        && p.spec.as_ref().and_then(|s| s.selector.as_ref()).is_some_and(|sel| selects(sel, &labels))
                });
                e.expect(
                    covered,
                    Subject::new(w.kind.api_version(), w.kind.as_str(), &w.metadata),
                    None,
                    "no PodDisruptionBudget selects its Pods",
                );
            }
        }),
    },
    Check {
        id: "reliability.disruption-budget-blocks",
        pillar: R,
        title: "PodDisruptionBudget that allows no disruption",
        severity: Severity::Medium,
        rationale: "maxUnavailable: 0 (or minAvailable: 100%) blocks every node drain and cluster upgrade.",
        remediation: "Allow at least one Pod to be unavailable: maxUnavailable: 1, or a minAvailable below the replica count.",
        reads: &["PodDisruptionBudget"],
        run: Kept(|s, e| {
            use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
            for p in &s.pdbs {
                let spec = p.spec.clone().unwrap_or_default();
                let blocks = matches!(spec.max_unavailable, Some(IntOrString::Int(0)))
                    || matches!(&spec.max_unavailable, Some(IntOrString::String(v)) if v == "0%")
                    || matches!(&spec.min_available, Some(IntOrString::String(v)) if v == "100%");
                e.expect(
                    !blocks,
                    Subject::new("policy/v1", "PodDisruptionBudget", &p.metadata),
                    None,
                    "allows no voluntary disruption",
                );
            }
        }),
    },
    Check {
        id: "reliability.bare-pod",
        pillar: R,
        title: "Pods without a controller",
        severity: Severity::Medium,
        rationale: "A Pod no workload controls is not recreated when its node fails or it is evicted.",
        remediation: "Run it from a Deployment, StatefulSet, DaemonSet or Job.",
        reads: &["Pod"],
        run: Each(|s, e| {
            for p in &s.pods {
                e.fail(Subject::new("v1", "Pod", &p.metadata), None, "is not managed by a workload controller");
            }
            // Workloads are the passing case: they are what manages Pods.
            for w in &s.workloads {
                e.pass(Subject::new(w.kind.api_version(), w.kind.as_str(), &w.metadata));
            }
        }),
    },
    Check {
        id: "reliability.image-tag",
        pillar: R,
        title: "Unpinned image",
        severity: Severity::Medium,
        rationale: "An image without a tag, or tagged latest, can change under a running workload; restarts may run different code.",
        remediation: "Use a version tag or a digest (image@sha256:...).",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let image = c.image.as_deref().unwrap_or_default();
                (!image_pinned(image)).then(|| format!("image {image} is not pinned to a version"))
            })
        }),
    },
    Check {
        id: "reliability.spread",
        pillar: R,
        title: "Replicas not spread",
        severity: Severity::Low,
        rationale: "Without anti-affinity or topology spread, every replica may land on the same node.",
        remediation: "Add topologySpreadConstraints (or podAntiAffinity) on kubernetes.io/hostname.",
        reads: &["Deployment", "StatefulSet"],
        run: Each(|s, e| {
            for o in pod_owners(s).filter(|o| o.workload.is_some_and(|w| w.replicas.unwrap_or(0) >= 2)) {
                let spread = o.spec.topology_spread_constraints.as_ref().is_some_and(|t| !t.is_empty())
                    || o.spec.affinity.as_ref().and_then(|a| a.pod_anti_affinity.as_ref()).is_some();
                e.expect(spread, o.subject, None, "has no anti-affinity or topology spread");
            }
        }),
    },
    Check {
        id: "reliability.rollout-unavailable",
        pillar: R,
        title: "Rollouts that take every replica down",
        severity: Severity::Medium,
        rationale: "maxUnavailable: 100% lets a rolling update stop every old Pod before a new one is ready.",
        remediation: "Use a maxUnavailable below the replica count (the default 25% is a good start).",
        reads: &["Deployment"],
        run: Each(|s, e| {
            for w in s.workloads.iter().filter(|w| w.kind == WorkloadKind::Deployment) {
                let all = w.max_unavailable.as_deref().is_some_and(|m| {
                    m == "100%" || m.parse::<i32>().is_ok_and(|n| n >= w.replicas.unwrap_or(1) && n > 0)
                });
                e.expect(
                    !all || w.replicas.unwrap_or(1) == 0,
                    Subject::new("apps/v1", "Deployment", &w.metadata),
                    None,
                    "maxUnavailable allows every replica down at once",
                );
            }
        }),
    },
    Check {
        id: "reliability.service-endpoints",
        pillar: R,
        title: "Services that select nothing",
        severity: Severity::Low,
        rationale: "A Service whose selector matches no Pod template answers every connection with a refusal.",
        remediation: "Fix the Service's selector to match the workload's Pod labels.",
        reads: reads_running_pods!("Service"),
        run: Related(|_, f, e| {
            for svc in &f.services {
                let Some(selector) = svc.selector.map(|s| f.labels(s)) else { continue };
                // Labels the workload's controller adds to its Pods (a StatefulSet's pod-name,
                // a Deployment's pod-template-hash, a Job's job-name) are on the Pods, not in
                // the template: a selector naming them still selects.
                let matches = |labels: &Labels, w: Option<&WorkloadFact>| {
                    selector
                        .iter()
                        .all(|(k, v)| labels.get(k) == Some(v) || w.is_some_and(|w| controller_adds(w, k, v)))
                };
                let ns = svc.meta.namespace.as_deref();
                let found = f
                    .workloads_in(ns)
                    .any(|w| w.kind != WorkloadKind::PodTemplate && matches(f.labels(w.labels), Some(w)))
                    || f.namespace(ns).is_some_and(|n| n.bare_pods.iter().any(|&l| matches(f.labels(l), None)));
                let meta = svc.meta.object_meta();
                e.expect(found, Subject::new("v1", "Service", &meta), None, "its selector matches no Pods");
            }
        }),
    },
    Check {
        id: "reliability.hpa-target",
        pillar: R,
        title: "Autoscaler without a target",
        severity: Severity::Medium,
        rationale: "A HorizontalPodAutoscaler whose target does not exist scales nothing.",
        remediation: "Point scaleTargetRef at an existing Deployment or StatefulSet, or delete the autoscaler.",
        reads: &["HorizontalPodAutoscaler", "Deployment", "StatefulSet"],
        run: Related(|s, f, e| {
            for h in &s.hpas {
                let target = h.spec.as_ref().map(|s| &s.scale_target_ref);
                e.expect(
                    f.scale_target(h).is_some(),
                    Subject::new("autoscaling/v2", "HorizontalPodAutoscaler", &h.metadata),
                    None,
                    format!(
                        "scale target {} does not exist",
                        target.map(|t| format!("{} {}", t.kind, t.name)).unwrap_or_default()
                    ),
                );
            }
        }),
    },
    Check {
        id: "reliability.hpa-min-replicas",
        pillar: R,
        title: "Autoscaler that may scale to one replica",
        severity: Severity::Low,
        rationale: "minReplicas below 2 (the default is 1) lets a quiet hour scale the workload to a single Pod: the next node drain or crash is an outage.",
        remediation: "Set minReplicas: 2 or more on autoscalers of services that must stay up.",
        reads: &["HorizontalPodAutoscaler"],
        run: Kept(|s, e| {
            for h in &s.hpas {
                let min = h.spec.as_ref().and_then(|s| s.min_replicas).unwrap_or(1);
                e.expect(
                    min >= 2,
                    Subject::new("autoscaling/v2", "HorizontalPodAutoscaler", &h.metadata),
                    None,
                    format!("minReplicas is {min}"),
                );
            }
        }),
    },
    Check {
        id: "reliability.priority-class",
        pillar: R,
        title: "Long-running workloads without a priority class",
        severity: Severity::Low,
        rationale: "Without priorityClassName every Pod has priority 0: under node pressure the scheduler cannot tell a critical service or node agent from a batch job, and may preempt or evict it first.",
        remediation: "Create PriorityClasses for your tiers and set priorityClassName on services and node agents that must not be evicted first.",
        reads: &["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"],
        run: Each(|s, e| {
            for o in pod_owners(s).filter(|o| o.workload.is_some_and(|w| w.kind.serves())) {
                let set = o.spec.priority_class_name.as_deref().is_some_and(|p| !p.is_empty());
                e.expect(set, o.subject, None, "has no priorityClassName");
            }
        }),
    },
];

/// Whether the workload's controller puts label `key` with `value` on some of its Pods.
fn controller_adds(w: &WorkloadFact, key: &str, value: &str) -> bool {
    if !w.kind.controller_labels().contains(&key) {
        return false;
    }
    let name = w.name.as_deref().unwrap_or_default();
    match key {
        // `<name>-<ordinal>`
        "statefulset.kubernetes.io/pod-name" => {
            value.strip_prefix(name).and_then(|r| r.strip_prefix('-')).is_some_and(|n| n.parse::<u32>().is_ok())
        }
        "apps.kubernetes.io/pod-index" | "batch.kubernetes.io/job-completion-index" => value.parse::<u32>().is_ok(),
        // A Job's own name; a CronJob's Jobs are `<name>-<schedule time>`.
        "job-name" | "batch.kubernetes.io/job-name" => {
            value == name || (w.kind == WorkloadKind::CronJob && value.starts_with(&format!("{name}-")))
        }
        // Hashes and uids the controller generates.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::CHECKS;
    use crate::testing::*;

    fn hpa(target: &str) -> serde_json::Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}, "minReplicas": 2, "maxReplicas": 5}})
    }

    fn service(selector: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"selector": {"app": selector}, "ports": [{"port": 80}]}})
    }

    #[test]
    fn every_reliability_check_flags_its_fixture_and_passes_a_good_one() {
        let good = deployment_with_container(json!({}));
        let single = deployment(pod_spec(json!({})), json!({"spec": {"replicas": 1}}));
        let bare = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": "shop"}, "spec": pod_spec(json!({}))});
        let cases: Vec<Case> = vec![
            ("reliability.replicas", vec![single.clone()], vec![good.clone()]),
            (
                "reliability.liveness-probe",
                vec![deployment_with_container(json!({"livenessProbe": null}))],
                vec![good.clone()],
            ),
            (
                "reliability.readiness-probe",
                vec![deployment_with_container(json!({"readinessProbe": null}))],
                vec![good.clone()],
            ),
            (
                "reliability.disruption-budget",
                vec![good.clone()],
                vec![good.clone(), pdb(json!({"maxUnavailable": 1}))],
            ),
            (
                "reliability.disruption-budget-blocks",
                vec![pdb(json!({"maxUnavailable": 0}))],
                vec![pdb(json!({"maxUnavailable": 1}))],
            ),
            ("reliability.bare-pod", vec![bare], vec![good.clone()]),
            (
                "reliability.image-tag",
                vec![deployment_with_container(json!({"image": "shop/web:latest"}))],
                vec![deployment_with_container(json!({"image": "registry:5000/shop/web@sha256:abc"}))],
            ),
            (
                "reliability.spread",
                vec![deployment(pod_spec(json!({"affinity": null})), json!({}))],
                vec![good.clone()],
            ),
            (
                "reliability.rollout-unavailable",
                vec![deployment(
                    pod_spec(json!({})),
                    json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}}}}),
                )],
                vec![good.clone()],
            ),
            ("reliability.service-endpoints", vec![good.clone(), service("api")], vec![good.clone(), service("web")]),
            ("reliability.hpa-target", vec![good.clone(), hpa("api")], vec![good.clone(), hpa("web")]),
            (
                "reliability.hpa-min-replicas",
                vec![merge(hpa("web"), json!({"spec": {"minReplicas": null}}))],
                vec![hpa("web")],
            ),
            (
                "reliability.priority-class",
                vec![deployment(pod_spec(json!({"priorityClassName": null})), json!({}))],
                vec![good.clone()],
            ),
        ];
        every_check_flags_and_passes(CHECKS, cases);
    }

    /// A Deployment whose Pod has one init container `extra` beside its well-behaved container.
    fn with_init(extra: serde_json::Value) -> serde_json::Value {
        let init = merge(
            json!({"name": "proxy", "image": "shop/proxy:1.0", "livenessProbe": null, "readinessProbe": null}),
            extra,
        );
        deployment(pod_spec(json!({"initContainers": [container(init)]})), json!({}))
    }

    #[test]
    fn a_native_sidecar_needs_a_liveness_probe_but_no_readiness_probe() {
        let sidecar = with_init(json!({"restartPolicy": "Always"}));
        let report = crate::engine::run(&snapshot(std::slice::from_ref(&sidecar)), &Default::default());
        let failed = |id: &str| -> Vec<Option<String>> {
            let r = report.results.iter().find(|r| r.check.id == id).expect("ran");
            r.failed.iter().map(|f| f.container.clone()).collect()
        };
        assert_eq!(failed("reliability.liveness-probe"), vec![Some("proxy".to_owned())]);
        assert!(failed("reliability.readiness-probe").is_empty(), "a sidecar does not serve the Pod");
        assert_eq!(outcome("reliability.readiness-probe", &[sidecar]), (1, 0, 0));
        // A classic init container has ended before either probe could run.
        let init = with_init(json!({}));
        assert_eq!(outcome("reliability.liveness-probe", std::slice::from_ref(&init)), (1, 0, 0));
        assert_eq!(outcome("reliability.readiness-probe", &[init]), (1, 0, 0));
    }
}
