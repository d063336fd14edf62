//! Cost optimization: guard rails on what a namespace may consume, and what is paid for idle.

use kube9_api::common::{Pillar, Severity};

use crate::check::Run::{Each, Related};
use crate::check::{Check, per_container};
use crate::pods::POD_KINDS;
use crate::subject::{Subject, system_namespace};

const C: Pillar = Pillar::CostOptimization;

pub static CHECKS: &[Check] = &[
    Check {
        id: "cost-optimization.resource-quota",
        pillar: C,
        title: "Namespaces without a ResourceQuota",
        severity: Severity::Low,
        rationale: "Without a quota one team's runaway workload can claim the whole cluster's capacity.",
        remediation: "Add a ResourceQuota limiting requests.cpu, requests.memory and object counts.",
        reads: &["Namespace", "ResourceQuota"],
        run: Related(|s, f, e| {
            for ns in &s.namespaces {
                let Some(name) = ns.metadata.name.as_deref().filter(|n| f.in_use(n) && !system_namespace(n)) else {
                    continue;
                };
                let has = s.resource_quotas.iter().any(|q| q.metadata.namespace.as_deref() == Some(name));
                e.expect(
                    has,
                    Subject::new("v1", "Namespace", &ns.metadata),
                    None,
                    "runs Pods and has no ResourceQuota",
                );
            }
        }),
    },
    Check {
        id: "cost-optimization.limit-range",
        pillar: C,
        title: "Namespaces without a LimitRange",
        severity: Severity::Low,
        rationale: "A LimitRange gives containers that omit resources sensible defaults instead of unbounded use.",
        remediation: "Add a LimitRange with default requests and limits for containers.",
        reads: &["Namespace", "LimitRange"],
        run: Related(|s, f, e| {
            for ns in &s.namespaces {
                let Some(name) = ns.metadata.name.as_deref().filter(|n| f.in_use(n) && !system_namespace(n)) else {
                    continue;
                };
                let has = s.limit_ranges.iter().any(|q| q.metadata.namespace.as_deref() == Some(name));
                e.expect(has, Subject::new("v1", "Namespace", &ns.metadata), None, "runs Pods and has no LimitRange");
            }
        }),
    },
    Check {
        id: "cost-optimization.unused-volume-claim",
        pillar: C,
        title: "Volume claims nothing mounts",
        severity: Severity::Low,
        rationale: "A PersistentVolumeClaim no Pod template mounts keeps paying for its disk.",
        remediation: "Delete the claim if its data is no longer needed, or back it up first.",
        reads: &["PersistentVolumeClaim", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"],
        run: Related(|s, f, e| {
            for pvc in &s.pvcs {
                let name = pvc.metadata.name.as_deref().unwrap_or_default();
                let ns = pvc.metadata.namespace.as_deref();
                let mounted = f.namespace(ns).is_some_and(|n| n.claims.contains(name))
                    || f.workloads_in(ns).any(|w| {
                        // StatefulSet claims are named <template>-<set>-<ordinal>.
                        w.claim_templates
                            .iter()
                            .any(|t| name.starts_with(&format!("{t}-{}-", w.name.as_deref().unwrap_or_default())))
                    });
                e.expect(
                    mounted,
                    Subject::new("v1", "PersistentVolumeClaim", &pvc.metadata),
                    None,
                    "no workload mounts it",
                );
            }
        }),
    },
    Check {
        id: "cost-optimization.load-balancers",
        pillar: C,
        title: "A load balancer per Service",
        severity: Severity::Info,
        rationale: "Every Service of type LoadBalancer provisions (and bills) its own cloud load balancer.",
        remediation: "Share one Ingress or Gateway across HTTP services; keep LoadBalancer for what needs it.",
        reads: &["Service"],
        run: Each(|s, e| {
            for svc in &s.services {
                let lb = svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
                e.expect(!lb, Subject::new("v1", "Service", &svc.metadata), None, "provisions its own load balancer");
            }
        }),
    },
    Check {
        id: "cost-optimization.oversized-requests",
        pillar: C,
        title: "Very large requests",
        severity: Severity::Info,
        rationale: "A request of more than 4 CPUs or 16 GiB per container reserves capacity that is rarely all used.",
        remediation: "Measure the container's use and request close to it; scale out rather than up.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref())?;
                let cpu = requests.get("cpu").and_then(|q| cpu_cores(&q.0)).unwrap_or(0.0);
                let mem = requests.get("memory").and_then(|q| bytes(&q.0)).unwrap_or(0.0);
                (cpu > 4.0 || mem > 16.0 * 1024.0 * 1024.0 * 1024.0).then(|| {
                    format!("requests {} CPU and {} memory", fmt(requests.get("cpu")), fmt(requests.get("memory")))
                })
            })
        }),
    },
];

fn fmt(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> String {
    q.map(|q| q.0.clone()).unwrap_or_else(|| "no".into())
}

/// CPU quantity in cores ("500m" = 0.5).
pub(crate) fn cpu_cores(q: &str) -> Option<f64> {
    match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|m| m / 1000.0),
        None => q.parse().ok(),
    }
}

/// Memory quantity in bytes.
pub(crate) fn bytes(q: &str) -> Option<f64> {
    const UNITS: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (suffix, factor) in UNITS {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    q.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{CHECKS, bytes, cpu_cores};
    use crate::testing::*;

    #[test]
    fn quantities_are_read() {
        assert_eq!(cpu_cores("500m"), Some(0.5));
        assert_eq!(cpu_cores("2"), Some(2.0));
        assert_eq!(bytes("1Gi"), Some(1073741824.0));
        assert_eq!(bytes("64M"), Some(64e6));
    }

    #[test]
    fn every_cost_check_flags_its_fixture_and_passes_a_good_one() {
        let good = deployment_with_container(json!({}));
        let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "shop"}, "spec": {"hard": {"requests.cpu": "10"}}});
        let limits = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "shop"}, "spec": {"limits": [{"type": "Container", "default": {"memory": "256Mi"}}]}});
        let pvc = |name: &str| json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": "shop"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        let mounting = deployment(
            pod_spec(json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]})),
            json!({}),
        );
        let svc = |t: &str| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"type": t, "selector": {"app": "web"}, "ports": [{"port": 80}]}});
        let cases: Vec<Case> = vec![
            (
                "cost-optimization.resource-quota",
                vec![namespace(json!({})), good.clone()],
                vec![namespace(json!({})), good.clone(), quota],
            ),
            (
                "cost-optimization.limit-range",
                vec![namespace(json!({})), good.clone()],
                vec![namespace(json!({})), good.clone(), limits],
            ),
            ("cost-optimization.unused-volume-claim", vec![good.clone(), pvc("old-data")], vec![mounting, pvc("data")]),
            ("cost-optimization.load-balancers", vec![svc("LoadBalancer")], vec![svc("ClusterIP")]),
            (
                "cost-optimization.oversized-requests",
                vec![deployment_with_container(json!({"resources": {"requests": {"cpu": "8", "memory": "32Gi"}}}))],
                vec![good],
            ),
        ];
        every_check_flags_and_passes(CHECKS, cases);
    }
}
