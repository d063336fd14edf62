//! Traffic: which Pods NetworkPolicies cover, policies and Ingresses that point at nothing,
//! and Services opened on every node.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{IngressBackend, NetworkPolicy};
use kube9_api::common::{Pillar, Severity};

use crate::check::Check;
use crate::check::Run::{Each, Related};
use crate::facts::ServiceFact;
use crate::pods::{pod_owners, reads_running_pods};
use crate::snapshot::selects;
use crate::subject::{Subject, system_namespace};

/// Whether a NetworkPolicy's podSelector selects Pods labelled `labels` (empty: every Pod).
fn policy_selects(p: &NetworkPolicy, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = p.spec.as_ref().and_then(|s| s.pod_selector.as_ref()) else { return true };
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|m| m.is_empty());
    empty || selects(selector, labels)
}

pub static CHECKS: &[Check] = &[
    Check {
        id: "security.network-policy-coverage",
        pillar: Pillar::Security,
        title: "Pods no NetworkPolicy selects",
        severity: Severity::Medium,
        rationale: "A NetworkPolicy protects only the Pods its podSelector selects: a namespace with policies can still hold Pods open to the whole cluster.",
        remediation: "Add a default-deny policy (podSelector: {}) to the namespace, or a policy selecting these Pods.",
        reads: reads_running_pods!("NetworkPolicy"),
        run: Each(|s, e| {
            for o in pod_owners(s) {
                let ns = o.subject.meta.namespace.as_deref();
                // A PodTemplate runs nothing; host-network Pods are outside NetworkPolicy's reach
                // (security.host-network reports them).
                if o.workload.is_some_and(|w| w.kind.as_str() == "PodTemplate")
                    || o.spec.host_network == Some(true)
                    || ns.is_some_and(system_namespace)
                {
                    continue;
                }
                let labels = match o.workload {
                    Some(w) => w.pod_labels(),
                    None => o.subject.meta.labels.clone().unwrap_or_default(),
                };
                let covered = s
                    .network_policies
                    .iter()
                    .any(|p| p.metadata.namespace.as_deref() == ns && policy_selects(p, &labels));
                e.expect(covered, o.subject, None, "no NetworkPolicy selects its Pods");
            }
        }),
    },
    Check {
        id: "security.network-policy-selects-nothing",
        pillar: Pillar::Security,
        title: "NetworkPolicies that select no Pod",
        severity: Severity::Low,
        rationale: "A policy whose podSelector matches no Pod protects nothing: usually a label typo, and the Pods it was meant for stay open.",
        remediation: "Fix the podSelector to match the Pods' labels, or delete the policy.",
        reads: reads_running_pods!("NetworkPolicy"),
        run: Related(|s, f, e| {
            for p in &s.network_policies {
                let ns = p.metadata.namespace.as_deref();
                let any = f.namespace(ns).is_some_and(|n| n.running.iter().any(|&l| policy_selects(p, f.labels(l))));
                e.expect(
                    any,
                    Subject::new("networking.k8s.io/v1", "NetworkPolicy", &p.metadata),
                    None,
                    "its podSelector matches no Pods",
                );
            }
        }),
    },
    Check {
        id: "security.node-port-service",
        pillar: Pillar::Security,
        title: "NodePort Services",
        severity: Severity::Low,
        rationale: "A NodePort opens the Service on every node's address, outside any Ingress, load balancer or firewall rule made for it.",
        remediation: "Use a ClusterIP Service behind an Ingress or Gateway, or a LoadBalancer with source ranges.",
        reads: &["Service"],
        run: Each(|s, e| {
            for svc in &s.services {
                let node_port = svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("NodePort");
                e.expect(
                    !node_port,
                    Subject::new("v1", "Service", &svc.metadata),
                    None,
                    "is exposed on every node (type NodePort)",
                );
            }
        }),
    },
    Check {
        id: "reliability.ingress-backend",
        pillar: Pillar::Reliability,
        title: "Ingress backends that do not exist",
        severity: Severity::Medium,
        rationale: "An Ingress path whose Service, or Service port, does not exist answers 503 for every request. (Offline, the Service must be among the inputs.)",
        remediation: "Point the backend at an existing Service and one of its ports (by number or name).",
        reads: &["Ingress", "Service"],
        run: Related(|s, f, e| {
            // The first Service of each namespace and name, as the API server keeps one.
            let mut services = std::collections::HashMap::new();
            for svc in &f.services {
                let key = (svc.meta.namespace.as_deref(), svc.meta.name.as_deref().unwrap_or_default());
                services.entry(key).or_insert(svc);
            }
            for ing in &s.ingresses {
                let ns = ing.metadata.namespace.as_deref();
                let spec = ing.spec.as_ref();
                let backends = spec.and_then(|s| s.default_backend.as_ref()).into_iter().chain(
                    spec.and_then(|s| s.rules.as_ref())
                        .into_iter()
                        .flatten()
                        .flat_map(|r| r.http.as_ref().into_iter().flat_map(|h| h.paths.iter().map(|p| &p.backend))),
                );
                let mut missing: Vec<String> = Vec::new();
                for b in backends {
                    if let Some(problem) = backend_problem(&services, ns, b)
                        && !missing.contains(&problem)
                    {
                        missing.push(problem);
                    }
                }
                e.expect(
                    missing.is_empty(),
                    Subject::new("networking.k8s.io/v1", "Ingress", &ing.metadata),
                    None,
                    missing.join("; "),
                );
            }
        }),
    },
];

/// What is wrong with one backend: no such Service, or no such port on it.
fn backend_problem(
    services: &std::collections::HashMap<(Option<&str>, &str), &ServiceFact>,
    ns: Option<&str>,
    backend: &IngressBackend,
) -> Option<String> {
    let service = backend.service.as_ref()?;
    let Some(svc) = services.get(&(ns, service.name.as_str())) else {
        return Some(format!("Service {} does not exist", service.name));
    };
    let ports = &svc.ports;
    let port = service.port.as_ref()?;
    let found = match (port.number, port.name.as_deref()) {
        (Some(n), _) => ports.iter().any(|p| p.0 == n),
        (None, Some(name)) => ports.iter().any(|p| p.1.as_deref() == Some(name)),
        (None, None) => true,
    };
    let shown = port.number.map(|n| n.to_string()).or(port.name.clone()).unwrap_or_default();
    (!found).then(|| format!("Service {} has no port {shown}", service.name))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::CHECKS;
    use crate::testing::*;

    fn policy(selector: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "shop"},
               "spec": {"podSelector": selector, "policyTypes": ["Ingress"]}})
    }

    fn service(kind: &str, port: i32) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"type": kind, "selector": {"app": "web"}, "ports": [{"name": "http", "port": port}]}})
    }

    fn ingress(service: &str, port: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"rules": [{"host": "shop.example", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": service, "port": port}}}]}}]}})
    }

    #[test]
    fn every_network_check_flags_its_fixture_and_passes_a_good_one() {
        let good = deployment_with_container(json!({}));
        let cases: Vec<Case> = vec![
            (
                "security.network-policy-coverage",
                vec![good.clone(), policy(json!({"matchLabels": {"app": "api"}}))],
                vec![good.clone(), policy(json!({}))],
            ),
            (
                "security.network-policy-selects-nothing",
                vec![good.clone(), policy(json!({"matchLabels": {"app": "api"}}))],
                vec![good.clone(), policy(json!({"matchLabels": {"app": "web"}}))],
            ),
            ("security.node-port-service", vec![service("NodePort", 80)], vec![service("ClusterIP", 80)]),
            (
                "reliability.ingress-backend",
                vec![
                    ingress("api", json!({"number": 80})),
                    service("ClusterIP", 80),
                    ingress("web", json!({"number": 8080})),
                ],
                vec![service("ClusterIP", 80), ingress("web", json!({"name": "http"}))],
            ),
        ];
        every_check_flags_and_passes(CHECKS, cases);
    }

    #[test]
    fn a_v1beta1_ingress_is_read_with_its_backends() {
        let old = json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {"serviceName": "gone", "servicePort": 80}}]}}]}});
        assert_eq!(outcome("reliability.ingress-backend", &[old, service("ClusterIP", 80)]), (0, 1, 0));
    }
}
