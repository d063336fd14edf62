//! What the five collectors record (see docs/pro-tier.md), computed from a snapshot of cluster
//! objects. Pure: the operator lists the objects and schedules the runs.
//!
//! Privacy rule: user-chosen strings (names, namespaces, images, labels…) appear in the output
//! only in object references `{kind, namespace, name}` and as keys of maps named `byNamespace`.
//! Every other string is a fixed word chosen here.

mod cluster;
mod metrics;
mod workloads;

use std::time::Duration;

pub use cluster::{Counts, cluster_metadata, resource_inventory};
pub use metrics::{parse_quantity, performance_metrics, performance_unavailable};
pub use workloads::{configuration_patterns, security_posture};

/// One of the five collectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collector {
    ClusterMetadata,
    ResourceInventory,
    ConfigurationPatterns,
    PerformanceMetrics,
    SecurityPosture,
}

impl Collector {
    pub const ALL: [Collector; 5] = [
        Collector::ClusterMetadata,
        Collector::ResourceInventory,
        Collector::ConfigurationPatterns,
        Collector::PerformanceMetrics,
        Collector::SecurityPosture,
    ];

    /// The collection's `type` (docs/pro-tier.md), also the name in `--collection-intervals`.
    pub fn name(self) -> &'static str {
        match self {
            Collector::ClusterMetadata => "clusterMetadata",
            Collector::ResourceInventory => "resourceInventory",
            Collector::ConfigurationPatterns => "configurationPatterns",
            Collector::PerformanceMetrics => "performanceMetrics",
            Collector::SecurityPosture => "securityPosture",
        }
    }

    pub fn default_interval(self) -> Duration {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        match self {
            Collector::ClusterMetadata | Collector::SecurityPosture => hours(24),
            Collector::ResourceInventory => hours(6),
            Collector::ConfigurationPatterns => hours(12),
            Collector::PerformanceMetrics => Duration::from_secs(15 * 60),
        }
    }

    /// Its place in [`Collector::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The snapshot kinds it reads (none for `PerformanceMetrics`, which reads metrics.k8s.io).
    pub fn kinds_needed(self) -> &'static [&'static str] {
        match self {
            Collector::ClusterMetadata => &["Node"],
            Collector::ResourceInventory => kube9_checks::kinds::names(),
            Collector::ConfigurationPatterns => WORKLOAD_KINDS,
            Collector::SecurityPosture => &[
                "Namespace",
                "Pod",
                "Deployment",
                "StatefulSet",
                "DaemonSet",
                "Job",
                "CronJob",
                "NetworkPolicy",
                "ClusterRoleBinding",
            ],
            Collector::PerformanceMetrics => &[],
        }
    }
}

const WORKLOAD_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"];

#[cfg(test)]
mod privacy_tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::tests_support::snapshot;

    /// Removes what may carry user strings: reference objects' namespace/name and byNamespace keys.
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if map.get("kind").is_some_and(Value::is_string) && map.contains_key("name") {
                    map.remove("namespace");
                    map.remove("name");
                }
                if let Some(Value::Object(by_ns)) = map.get_mut("byNamespace") {
                    let values: Vec<Value> = std::mem::take(by_ns).into_iter().map(|(_, v)| v).collect();
                    for (i, v) in values.into_iter().enumerate() {
                        by_ns.insert(format!("ns{i}"), v);
                    }
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }

    #[test]
    fn no_user_string_escapes_outside_references_and_by_namespace_keys() {
        let labels = json!({"app": "zq-label", "zq-key": "zq-value", "kubernetes.io/arch": "zq-arch"});
        let annotations = json!({"zq-annotation": "zq-annotation-value"});
        let meta = |name: &str, ns: Option<&str>| {
            let mut m = json!({"name": name, "labels": labels, "annotations": annotations});
            if let Some(ns) = ns {
                m["namespace"] = ns.into();
            }
            m
        };
        let container = |name: &str| {
            json!({"name": name, "image": "zqregistry/zqimage:latest",
                   "env": [{"name": "ZQ_ENV", "value": "zq-env-value"}],
                   "command": ["zq-cmd"], "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
                   "securityContext": {"privileged": true, "seLinuxOptions": {"user": "zq-selinux"}}})
        };
        let pod_spec = json!({"serviceAccountName": "zq-sa", "nodeName": "zq-node", "hostNetwork": true,
            "nodeSelector": {"zq-sel": "zq-sel-value"}, "containers": [container("zq-container")],
            "initContainers": [container("zq-init")],
            "volumes": [{"name": "zq-vol", "hostPath": {"path": "/zq/path"}}]});
        let template = json!({"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec});
        let ns = Some("zq-ns-1");
        let objects = vec![
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": meta("zq-ns-1", None)}),
            json!({"apiVersion": "v1", "kind": "Node", "metadata": meta("zq-node", None),
                   "spec": {"providerID": "zq://zq-provider/zq-node"}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("zq-pod", ns), "spec": pod_spec}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("zq-svc", ns),
                   "spec": {"selector": {"app": "zq-label"}, "externalName": "zq.example"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("zq-cm", ns), "data": {"zq": "zq"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("zq-secret-name-1", ns),
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "zq-label"}}, "template": template}}),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("zq-sts", ns),
                   "spec": {"serviceName": "zq-svc", "selector": {}, "template": template,
                            "volumeClaimTemplates": [{"metadata": {"name": "zq-claim"}}]}}),
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("zq-cron", ns),
                   "spec": {"schedule": "zq", "jobTemplate": {"spec": {"template": template}}}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("zq-np", ns),
                   "spec": {"podSelector": {"matchLabels": {"app": "zq-label"}}}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": meta("zq-crb", None),
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                   "subjects": [{"kind": "User", "name": "zq-user"}]}),
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "zqwidgets.zq.example"}}),
        ];
        let mut s = snapshot(&objects);
        s.unavailable = vec!["Ingress".into(), "zq-not-a-kind".into()];
        let metrics = vec![json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": "zq-pod", "namespace": "zq-ns-1", "labels": labels},
            "window": "zq", "containers": [{"name": "zq-container", "usage": {"cpu": "zq", "memory": "1Mi"}}]})];
        let outputs = [
            cluster_metadata("zq free text v1.2.3", &s),
            resource_inventory(
                &[(("Deployment".to_owned(), Some("zq-ns-1".to_owned())), 1), (("zq-kind".to_owned(), None), 1)]
                    .into_iter()
                    .collect(),
                &["zq-unavailable".to_owned()],
            ),
            configuration_patterns(&s),
            security_posture(&s),
            performance_metrics(&metrics),
        ];
        let unstripped: String = outputs.iter().map(Value::to_string).collect();
        assert!(unstripped.contains("zq-secret-name-1") && unstripped.contains("zq-ns-1"), "{unstripped}");
        for mut out in outputs {
            strip(&mut out);
            let after = out.to_string();
            assert!(!after.contains("zq"), "user string escaped: {after}");
        }
    }

    #[test]
    fn kinds_needed_are_gatherable() {
        let all = kube9_checks::kinds::names();
        for c in Collector::ALL {
            assert!(c.kinds_needed().iter().all(|k| all.contains(k)), "{c:?}");
            assert_eq!(Collector::ALL[c.index()], c);
        }
        assert_eq!(Collector::ClusterMetadata.kinds_needed(), ["Node"]);
        assert!(Collector::PerformanceMetrics.kinds_needed().is_empty());
        assert!(Collector::SecurityPosture.kinds_needed().contains(&"ClusterRoleBinding"));
        assert_eq!(
            Collector::ResourceInventory.kinds_needed().len(),
            32,
            "every kind the checks read, Argo CD's, the operator checks' (webhooks, APIServices, CRDs, EndpointSlices) and Trivy Operator's VulnerabilityReports included"
        );
    }
}

#[cfg(test)]
mod tests_support {
    use kube9_checks::Snapshot;
    use serde_json::Value;

    /// A snapshot of these objects; every object must be accepted.
    pub fn snapshot(objects: &[Value]) -> Snapshot {
        let mut s = Snapshot::default();
        for object in objects {
            let skipped = s.add(object.clone());
            assert!(skipped.is_empty(), "{skipped:?}");
        }
        s
    }
}
