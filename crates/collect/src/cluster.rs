//! Cluster metadata and resource inventory.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube9_checks::Snapshot;
use serde_json::{Value, json};

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

/// Objects as listed, every one counted (owned Pods, ReplicaSets and Jobs included), by kind
/// and namespace (`None` for cluster-scoped kinds).
pub type Counts = BTreeMap<(String, Option<String>), u64>;

/// Object counts per kind (`totals`) and per namespace for namespaced kinds (`byNamespace`).
/// Kinds that could not be listed are in `unavailable` instead; only known kind names are
/// written (a kind name is a fixed word, anything else might not be).
pub fn resource_inventory(counts: &Counts, unavailable: &[String]) -> Value {
    let known = |kind: &str| kube9_checks::kinds::names().iter().copied().find(|k| *k == kind);
    let gone = |kind: &str| unavailable.iter().any(|u| u == kind);
    let mut totals: BTreeMap<&str, u64> =
        kube9_checks::kinds::names().iter().filter(|k| !gone(k)).map(|k| (*k, 0)).collect();
    let mut by_namespace = BTreeMap::<&str, BTreeMap<&str, u64>>::new();
    for ((kind, namespace), n) in counts {
        let Some(kind) = known(kind) else { continue };
        *totals.entry(kind).or_default() += n;
        if let Some(ns) = namespace {
            *by_namespace.entry(ns.as_str()).or_default().entry(kind).or_default() += n;
        }
    }
    let mut gone: Vec<&str> = unavailable.iter().filter_map(|k| known(k)).collect();
    gone.sort_unstable();
    gone.dedup();
    let mut out = json!({"totals": totals, "byNamespace": by_namespace});
    if !gone.is_empty() {
        out["unavailable"] = json!(gone);
    }
    out
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
        let count = |kind: &str, ns: Option<&str>, n: u64| ((kind.to_owned(), ns.map(str::to_owned)), n);
        let counts: Counts = [
            count("Namespace", None, 2),
            count("Service", Some("a"), 2),
            count("Service", Some("b"), 1),
            count("Deployment", Some("b"), 1),
            count("Pod", Some("b"), 30),
            count("ClusterRole", None, 1),
            count("Not a kind", Some("b"), 5),
        ]
        .into_iter()
        .collect();
        let out = resource_inventory(&counts, &["Ingress".into(), "Something else".into()]);
        assert_eq!(out["totals"]["Service"], 3);
        assert_eq!(out["totals"]["Namespace"], 2);
        assert_eq!(out["totals"]["Pod"], 30, "owned Pods are counted too");
        assert_eq!(out["totals"]["Node"], 0);
        assert!(out["totals"].get("Ingress").is_none() && out["totals"].get("Not a kind").is_none());
        assert_eq!(out["byNamespace"], json!({"a": {"Service": 2}, "b": {"Service": 1, "Deployment": 1, "Pod": 30}}));
        assert_eq!(out["unavailable"], json!(["Ingress"]));
        assert!(resource_inventory(&Counts::new(), &[]).get("unavailable").is_none());
    }
}
