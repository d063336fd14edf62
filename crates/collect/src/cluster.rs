//! Cluster metadata and resource inventory.

use std::collections::BTreeMap;

use k8s_openapi::Metadata;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube9_checks::Snapshot;
use kube9_checks::snapshot::WorkloadKind;
use serde_json::{Value, json};

use crate::ALL_KINDS;

/// Kubernetes version, node count, provider and node architectures. A `kubernetes_version`
/// not shaped like `v1.2.3[-+suffix]` is recorded as `"unknown"`.
pub fn cluster_metadata(kubernetes_version: &str, snapshot: &Snapshot) -> Value {
    let version = if version_shaped(kubernetes_version) { kubernetes_version } else { "unknown" };
    let mut architectures = BTreeMap::<&str, u64>::new();
    for node in &snapshot.nodes {
        *architectures.entry(architecture(node)).or_default() += 1;
    }
    let provider = snapshot.nodes.iter().find_map(provider).unwrap_or("unknown");
    let mut out = json!({"kubernetesVersion": version, "provider": provider, "nodeArchitectures": architectures});
    if snapshot.unavailable.iter().any(|k| k == "Node") {
        out["unavailable"] = json!(["Node"]);
    } else {
        out["nodeCount"] = snapshot.nodes.len().into();
    }
    out
}

/// `v<major>.<minor>.<patch>`, then optionally `-` or `+` and `[A-Za-z0-9.+-]`, at most 64 bytes.
fn version_shaped(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else { return false };
    let core_end = rest.find(['-', '+']).unwrap_or(rest.len());
    let (core, suffix) = rest.split_at(core_end);
    let parts: Vec<&str> = core.split('.').collect();
    v.len() <= 64
        && parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && suffix.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
        && suffix.len() != 1
}

/// The provider a node's `spec.providerID` or labels point to.
fn provider(node: &Node) -> Option<&'static str> {
    const IDS: &[(&str, &str)] = &[
        ("aws://", "aws"),
        ("gce://", "gcp"),
        ("azure://", "azure"),
        ("digitalocean://", "digitalocean"),
        ("linode://", "linode"),
        ("openstack://", "openstack"),
        ("kind://", "kind"),
        ("k3s://", "k3s"),
    ];
    const LABELS: &[(&str, &str)] = &[
        ("eks.amazonaws.com/", "aws"),
        ("alpha.eksctl.io/", "aws"),
        ("cloud.google.com/gke-", "gcp"),
        ("kubernetes.azure.com/", "azure"),
        ("doks.digitalocean.com/", "digitalocean"),
        ("lke.linode.com/", "linode"),
        ("k3s.io/", "k3s"),
        ("node.k3s.io/", "k3s"),
        ("minikube.k8s.io/", "minikube"),
    ];
    let id = node.spec.as_ref().and_then(|s| s.provider_id.as_deref()).unwrap_or_default();
    if let Some((_, p)) = IDS.iter().find(|(prefix, _)| id.starts_with(prefix)) {
        return Some(p);
    }
    let labels = node.metadata.labels.as_ref()?;
    if labels.get("node.kubernetes.io/instance-type").is_some_and(|t| t == "k3s") {
        return Some("k3s");
    }
    LABELS.iter().find(|(prefix, _)| labels.keys().any(|k| k.starts_with(prefix))).map(|(_, p)| *p)
}

/// The node's architecture label, as one of the architectures Go knows, `other` or `unknown`.
fn architecture(node: &Node) -> &'static str {
    const KNOWN: &[&str] = &["amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le"];
    let labels = node.metadata.labels.as_ref();
    let arch = labels.and_then(|l| l.get("kubernetes.io/arch").or_else(|| l.get("beta.kubernetes.io/arch")));
    match arch {
        None => "unknown",
        Some(a) => KNOWN.iter().find(|k| *k == a).copied().unwrap_or("other"),
    }
}

/// Object counts per kind (`totals`) and per namespace for namespaced kinds (`byNamespace`).
/// Kinds the snapshot could not read are listed in `unavailable` instead. The snapshot keeps
/// only the Pods, ReplicaSets and Jobs no controller owns, so those are what is counted.
pub fn resource_inventory(snapshot: &Snapshot) -> Value {
    let s = snapshot;
    let workloads = |kind: WorkloadKind| s.workloads.iter().filter(|w| w.kind == kind).map(|w| &w.metadata).collect();
    // (kind, namespaced, objects)
    let kinds: Vec<(&'static str, bool, Vec<&ObjectMeta>)> = vec![
        ("Namespace", false, metas(&s.namespaces)),
        ("Node", false, metas(&s.nodes)),
        ("Pod", true, metas(&s.pods)),
        ("Service", true, metas(&s.services)),
        ("ResourceQuota", true, metas(&s.resource_quotas)),
        ("LimitRange", true, metas(&s.limit_ranges)),
        ("PersistentVolumeClaim", true, metas(&s.pvcs)),
        ("Deployment", true, workloads(WorkloadKind::Deployment)),
        ("StatefulSet", true, workloads(WorkloadKind::StatefulSet)),
        ("DaemonSet", true, workloads(WorkloadKind::DaemonSet)),
        ("ReplicaSet", true, workloads(WorkloadKind::ReplicaSet)),
        ("Job", true, workloads(WorkloadKind::Job)),
        ("CronJob", true, workloads(WorkloadKind::CronJob)),
        ("Ingress", true, metas(&s.ingresses)),
        ("NetworkPolicy", true, metas(&s.network_policies)),
        ("PodDisruptionBudget", true, metas(&s.pdbs)),
        ("HorizontalPodAutoscaler", true, metas(&s.hpas)),
        ("Role", true, metas(&s.roles)),
        ("ClusterRole", false, metas(&s.cluster_roles)),
        ("RoleBinding", true, metas(&s.role_bindings)),
        ("ClusterRoleBinding", false, metas(&s.cluster_role_bindings)),
        ("ConfigMap", true, metas(&s.config_maps)),
    ];
    let unavailable = |kind: &str| s.unavailable.iter().any(|u| u == kind);
    let mut totals = BTreeMap::<&str, usize>::new();
    let mut by_namespace = BTreeMap::<&str, BTreeMap<&str, usize>>::new();
    for (kind, namespaced, objects) in &kinds {
        // Kinds outside the gather list (ConfigMap) only when the snapshot holds some.
        if unavailable(kind) || (objects.is_empty() && !ALL_KINDS.contains(kind)) {
            continue;
        }
        totals.insert(kind, objects.len());
        if *namespaced {
            for ns in objects.iter().filter_map(|m| m.namespace.as_deref()) {
                *by_namespace.entry(ns).or_default().entry(kind).or_default() += 1;
            }
        }
    }
    if !s.crds.is_empty() {
        totals.insert("CustomResourceDefinition", s.crds.len());
    }
    // Only known kind names: anything else in `unavailable` is not a fixed word.
    let mut gone: Vec<&str> = kinds.iter().map(|k| k.0).filter(|k| unavailable(k)).collect();
    gone.sort_unstable();
    let mut out = json!({"totals": totals, "byNamespace": by_namespace});
    if !gone.is_empty() {
        out["unavailable"] = json!(gone);
    }
    out
}

fn metas<T: Metadata<Ty = ObjectMeta>>(objects: &[T]) -> Vec<&ObjectMeta> {
    objects.iter().map(Metadata::metadata).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tests_support::snapshot;

    fn node(provider_id: Option<&str>, labels: Value) -> Value {
        let mut n =
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "labels": labels}, "spec": {}});
        if let Some(id) = provider_id {
            n["spec"]["providerID"] = id.into();
        }
        n
    }

    #[test]
    fn versions_are_filtered() {
        for ok in ["v1.20.2", "v1.27.4-eks-2d98532", "v1.27.3-gke.100", "v1.28.2+k3s1", "v1.30.0-rc.1+abc.def"] {
            assert!(version_shaped(ok), "{ok}");
        }
        for bad in ["", "1.20.2", "v1.20", "v1.20.2 (prod)", "v1.2.3-", "v1.2.3_x", "vx.y.z", "v1..2", "my-cluster"] {
            assert!(!version_shaped(bad), "{bad}");
        }
        assert!(!version_shaped(&format!("v1.2.3-{}", "a".repeat(64))));
        let s = Snapshot::default();
        assert_eq!(cluster_metadata("hello world", &s)["kubernetesVersion"], "unknown");
        assert_eq!(cluster_metadata("v1.20.2", &s)["kubernetesVersion"], "v1.20.2");
    }

    #[test]
    fn providers_are_detected() {
        let provider_of = |n: Value| {
            let s = snapshot(&[n]);
            cluster_metadata("v1.2.3", &s)["provider"].as_str().map(str::to_owned)
        };
        let cases = [
            (node(Some("aws:///eu-west-1a/i-0abc"), json!({})), "aws"),
            (node(Some("gce://project/zone/node"), json!({})), "gcp"),
            (node(Some("azure:///subscriptions/x"), json!({})), "azure"),
            (node(Some("digitalocean://123"), json!({})), "digitalocean"),
            (node(Some("linode://123"), json!({})), "linode"),
            (node(Some("openstack:///uuid"), json!({})), "openstack"),
            (node(Some("kind://docker/kind/kind-control-plane"), json!({})), "kind"),
            (node(None, json!({"node.kubernetes.io/instance-type": "k3s"})), "k3s"),
            (node(None, json!({"minikube.k8s.io/name": "minikube"})), "minikube"),
            (node(None, json!({"eks.amazonaws.com/nodegroup": "ng"})), "aws"),
            (node(None, json!({"cloud.google.com/gke-nodepool": "pool"})), "gcp"),
            (node(None, json!({"kubernetes.azure.com/cluster": "c"})), "azure"),
            (node(Some("custom://x"), json!({"app": "x"})), "unknown"),
        ];
        for (n, want) in cases {
            assert_eq!(provider_of(n).as_deref(), Some(want));
        }
    }

    #[test]
    fn metadata_counts_nodes_and_architectures() {
        let s = snapshot(&[
            node(Some("aws:///a/i-1"), json!({"kubernetes.io/arch": "amd64"})),
            node(Some("aws:///a/i-2"), json!({"kubernetes.io/arch": "arm64"})),
            node(None, json!({"beta.kubernetes.io/arch": "amd64"})),
            node(None, json!({"kubernetes.io/arch": "my-arch"})),
            node(None, json!({})),
        ]);
        assert_eq!(
            cluster_metadata("v1.30.1", &s),
            json!({"kubernetesVersion": "v1.30.1", "nodeCount": 5, "provider": "aws",
                   "nodeArchitectures": {"amd64": 2, "arm64": 1, "other": 1, "unknown": 1}})
        );
        let unreadable = Snapshot { unavailable: vec!["Node".into()], ..Snapshot::default() };
        let out = cluster_metadata("v1.30.1", &unreadable);
        assert_eq!((out.get("nodeCount"), &out["unavailable"]), (None, &json!(["Node"])));
    }

    #[test]
    fn inventory_counts_per_kind_and_namespace() {
        let obj = |api: &str, kind: &str, name: &str, ns: Option<&str>| {
            let mut o = json!({"apiVersion": api, "kind": kind, "metadata": {"name": name}});
            if let Some(ns) = ns {
                o["metadata"]["namespace"] = ns.into();
            }
            o
        };
        let mut s = snapshot(&[
            obj("v1", "Namespace", "a", None),
            obj("v1", "Namespace", "b", None),
            obj("v1", "Node", "n1", None),
            obj("v1", "Service", "s1", Some("a")),
            obj("v1", "Service", "s2", Some("a")),
            obj("v1", "Service", "s3", Some("b")),
            obj("apps/v1", "Deployment", "d", Some("b")),
            obj("rbac.authorization.k8s.io/v1", "ClusterRole", "r", None),
            obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "w.example.com", None),
        ]);
        s.unavailable = vec!["Ingress".into(), "Something else".into()];
        let out = resource_inventory(&s);
        assert_eq!(out["totals"]["Service"], 3);
        assert_eq!(out["totals"]["Namespace"], 2);
        assert_eq!(out["totals"]["ClusterRole"], 1);
        assert_eq!(out["totals"]["Pod"], 0);
        assert_eq!(out["totals"]["CustomResourceDefinition"], 1);
        assert!(out["totals"].get("Ingress").is_none() && out["totals"].get("ConfigMap").is_none());
        assert_eq!(out["byNamespace"], json!({"a": {"Service": 2}, "b": {"Service": 1, "Deployment": 1}}));
        assert_eq!(out["unavailable"], json!(["Ingress"]));
        assert!(resource_inventory(&Snapshot::default()).get("unavailable").is_none());
    }
}
