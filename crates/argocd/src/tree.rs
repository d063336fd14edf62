//! An Application's resource tree, the shape Argo CD's own resource-tree API returns
//! (CLIENT-CONTRACT.md): its managed resources from the Application's status, and what they
//! own, found through ownerReferences among the objects listed in its namespaces (Deployment →
//! ReplicaSet → Pod, StatefulSet/DaemonSet → Pod, CronJob → Job → Pod, Service →
//! EndpointSlice), each with its health by Argo CD's rules.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use serde::Serialize;
use serde_json::Value;

use crate::app::ResourceStatus;
use crate::health::{self, Health, Status};

/// A kind the tree lists in the Application's namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

impl TreeKind {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }
}

/// Everything the tree lists: the managed kinds that have a health rule, and what they own.
/// (The chart's ClusterRole grants `list` on each; a test ties the two.)
pub const TREE_KINDS: &[TreeKind] = &[
    TreeKind { group: "apps", version: "v1", kind: "Deployment", plural: "deployments" },
    TreeKind { group: "apps", version: "v1", kind: "StatefulSet", plural: "statefulsets" },
    TreeKind { group: "apps", version: "v1", kind: "DaemonSet", plural: "daemonsets" },
    TreeKind { group: "apps", version: "v1", kind: "ReplicaSet", plural: "replicasets" },
    TreeKind { group: "", version: "v1", kind: "Pod", plural: "pods" },
    TreeKind { group: "", version: "v1", kind: "Service", plural: "services" },
    TreeKind { group: "", version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims" },
    TreeKind { group: "discovery.k8s.io", version: "v1", kind: "EndpointSlice", plural: "endpointslices" },
    TreeKind { group: "batch", version: "v1", kind: "Job", plural: "jobs" },
    TreeKind { group: "batch", version: "v1", kind: "CronJob", plural: "cronjobs" },
    TreeKind { group: "networking.k8s.io", version: "v1", kind: "Ingress", plural: "ingresses" },
    TreeKind {
        group: "autoscaling",
        version: "v2",
        kind: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
    },
];

/// A reference to a node's owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParentRef {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// One node of the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub parent_refs: Vec<ParentRef>,
    /// None for a kind Argo CD has no health rule for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// The tree: `{"nodes": [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// The namespaces to list: where the managed resources are, and the destination namespace.
pub fn namespaces(resources: &[ResourceStatus], destination: Option<&str>) -> BTreeSet<String> {
    resources
        .iter()
        .filter_map(|r| r.namespace.clone())
        .chain(destination.map(str::to_owned))
        .filter(|ns| !ns.is_empty())
        .collect()
}

fn group_of(object: &Value) -> &str {
    object["apiVersion"].as_str().and_then(|v| v.rsplit_once('/')).map_or("", |(g, _)| g)
}

fn version_of(object: &Value) -> &str {
    object["apiVersion"].as_str().map_or("", |v| v.rsplit_once('/').map_or(v, |(_, v)| v))
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn live_node(object: &Value, parent_refs: Vec<ParentRef>) -> Node {
    Node {
        group: group_of(object).to_owned(),
        version: version_of(object).to_owned(),
        kind: text(object, "/kind").to_owned(),
        namespace: text(object, "/metadata/namespace").to_owned(),
        name: text(object, "/metadata/name").to_owned(),
        uid: text(object, "/metadata/uid").to_owned(),
        parent_refs,
        health: health::assess(object),
    }
}

/// Builds the tree of an Application whose status lists `resources`, from the `live` objects
/// listed in its namespaces (each with its apiVersion and kind).
pub fn build(resources: &[ResourceStatus], live: &[Value]) -> Tree {
    let key = |group: &str, kind: &str, ns: &str, name: &str| {
        (group.to_owned(), kind.to_owned(), ns.to_owned(), name.to_owned())
    };
    let by_key: HashMap<_, &Value> = live
        .iter()
        .map(|o| (key(group_of(o), text(o, "/kind"), text(o, "/metadata/namespace"), text(o, "/metadata/name")), o))
        .collect();
    let mut children: HashMap<&str, Vec<&Value>> = HashMap::new();
    for object in live {
        for owner in object["metadata"]["ownerReferences"].as_array().into_iter().flatten() {
            if let Some(uid) = owner["uid"].as_str() {
                children.entry(uid).or_default().push(object);
            }
        }
    }

    let mut tree = Tree::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<(String, ParentRef)> = VecDeque::new();
    for r in resources {
        let group = r.group.clone().unwrap_or_default();
        let namespace = r.namespace.clone().unwrap_or_default();
        let reported = r.health.as_ref().and_then(|h| {
            let status = match h.status.as_deref()? {
                "Healthy" => Status::Healthy,
                "Progressing" => Status::Progressing,
                "Degraded" => Status::Degraded,
                "Suspended" => Status::Suspended,
                "Missing" => Status::Missing,
                _ => Status::Unknown,
            };
            Some(Health { status, message: h.message.clone().unwrap_or_default() })
        });
        let node = match by_key.get(&key(&group, &r.kind, &namespace, &r.name)) {
            Some(object) => {
                let mut node = live_node(object, Vec::new());
                // Kinds without a built-in rule keep the health Argo CD computed (its Lua rules).
                node.health = node.health.or(reported);
                node
            }
            None => Node {
                group,
                version: r.version.clone().unwrap_or_default(),
                kind: r.kind.clone(),
                namespace,
                name: r.name.clone(),
                uid: String::new(),
                parent_refs: Vec::new(),
                health: reported,
            },
        };
        if !node.uid.is_empty() {
            if !seen.insert(node.uid.clone()) {
                continue;
            }
            queue.push_back((node.uid.clone(), parent_ref(&node)));
        }
        tree.nodes.push(node);
    }
    // What the managed resources own, level by level.
    while let Some((uid, parent)) = queue.pop_front() {
        for child in children.get(uid.as_str()).into_iter().flatten() {
            let child_uid = text(child, "/metadata/uid");
            if child_uid.is_empty() || !seen.insert(child_uid.to_owned()) {
                continue;
            }
            // Every owner already in the tree is a parent (usually one).
            let mut parents = vec![parent.clone()];
            for owner in child["metadata"]["ownerReferences"].as_array().into_iter().flatten() {
                let owner_uid = owner["uid"].as_str().unwrap_or_default();
                if owner_uid != uid && seen.contains(owner_uid) {
                    let api_version = owner["apiVersion"].as_str().unwrap_or_default();
                    parents.push(ParentRef {
                        group: api_version.rsplit_once('/').map_or("", |(g, _)| g).to_owned(),
                        kind: owner["kind"].as_str().unwrap_or_default().to_owned(),
                        namespace: text(child, "/metadata/namespace").to_owned(),
                        name: owner["name"].as_str().unwrap_or_default().to_owned(),
                        uid: owner_uid.to_owned(),
                    });
                }
            }
            let node = live_node(child, parents);
            queue.push_back((node.uid.clone(), parent_ref(&node)));
            tree.nodes.push(node);
        }
    }
    tree
}

fn parent_ref(node: &Node) -> ParentRef {
    ParentRef {
        group: node.group.clone(),
        kind: node.kind.clone(),
        namespace: node.namespace.clone(),
        name: node.name.clone(),
        uid: node.uid.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn owned(api_version: &str, kind: &str, name: &str, uid: &str, owner: Option<(&str, &str, &str, &str)>) -> Value {
        let owners =
            owner.map(|(av, k, n, u)| json!([{"apiVersion": av, "kind": k, "name": n, "uid": u, "controller": true}]));
        json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "shop", "uid": uid, "ownerReferences": owners}})
    }

    fn managed(group: &str, kind: &str, name: &str) -> ResourceStatus {
        ResourceStatus {
            group: Some(group.into()).filter(|g: &String| !g.is_empty()),
            version: Some("v1".into()),
            kind: kind.into(),
            namespace: Some("shop".into()),
            name: name.into(),
            status: Some("Synced".into()),
            health: Some(crate::app::HealthStatus { status: Some("Healthy".into()), ..Default::default() }),
        }
    }

    #[test]
    fn a_deployment_expands_into_replica_sets_and_pods_and_a_service_into_endpoint_slices() {
        let mut deployment = owned("apps/v1", "Deployment", "web", "d1", None);
        deployment["metadata"]["generation"] = json!(1);
        deployment["spec"] = json!({"replicas": 1});
        deployment["status"] =
            json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1});
        let live = vec![
            deployment,
            owned("apps/v1", "ReplicaSet", "web-1", "r1", Some(("apps/v1", "Deployment", "web", "d1"))),
            owned("v1", "Pod", "web-1-a", "p1", Some(("apps/v1", "ReplicaSet", "web-1", "r1"))),
            owned("v1", "Pod", "stray", "p9", Some(("apps/v1", "ReplicaSet", "other", "r9"))),
            owned("v1", "Service", "web", "s1", None),
            owned("discovery.k8s.io/v1", "EndpointSlice", "web-x", "e1", Some(("v1", "Service", "web", "s1"))),
        ];
        let resources =
            [managed("apps", "Deployment", "web"), managed("", "Service", "web"), managed("", "ConfigMap", "settings")];
        let tree = build(&resources, &live);
        let names: Vec<_> = tree.nodes.iter().map(|n| format!("{}/{}", n.kind, n.name)).collect();
        assert_eq!(
            names,
            [
                "Deployment/web",
                "Service/web",
                "ConfigMap/settings",
                "ReplicaSet/web-1",
                "EndpointSlice/web-x",
                "Pod/web-1-a"
            ]
        );
        let pod = &tree.nodes[5];
        assert_eq!(
            pod.parent_refs,
            [ParentRef {
                group: "apps".into(),
                kind: "ReplicaSet".into(),
                namespace: "shop".into(),
                name: "web-1".into(),
                uid: "r1".into()
            }]
        );
        assert_eq!(tree.nodes[0].health.as_ref().map(|h| h.status), Some(Status::Healthy), "by the Deployment rule");
        assert_eq!(tree.nodes[2].uid, "", "not listed: known only from the Application");
        assert_eq!(tree.nodes[2].health.as_ref().map(|h| h.status), Some(Status::Healthy), "Argo CD's own word");
        assert_eq!(tree.nodes[4].health, None, "no rule for EndpointSlices");
        let json = serde_json::to_value(&tree).unwrap();
        assert_eq!(json["nodes"][3]["parentRefs"][0]["kind"], "Deployment");
        assert!(json["nodes"][4].get("health").is_none());
    }

    #[test]
    fn the_charts_cluster_role_grants_what_argo_cd_awareness_reads() {
        let template = include_str!("../../../charts/kube9-operator/templates/clusterrole.yaml");
        let rules = template.split_once("rules:\n").unwrap().1.split("\n---").next().unwrap();
        let rules: String = rules.lines().filter(|l| !l.contains("{{")).map(|l| format!("{l}\n")).collect();
        let rules: Vec<serde_yaml::Value> = serde_yaml::from_str(&rules).unwrap();
        let granted = |group: &str, resource: &str, verb: &str| {
            rules.iter().any(|r| {
                let has = |key: &str, want: &str| {
                    r[key].as_sequence().is_some_and(|s| s.iter().any(|v| v.as_str() == Some(want)))
                };
                has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
            })
        };
        for kind in TREE_KINDS {
            assert!(granted(kind.group, kind.plural, "list"), "the tree lists {}", kind.plural);
        }
        for (group, resource, verb) in [
            ("argoproj.io", "applications", "list"),
            ("argoproj.io", "applications", "watch"),
            ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
            ("apps", "deployments", "watch"),
        ] {
            assert!(granted(group, resource, verb), "{verb} {group}/{resource}");
        }
        for verb in ["get", "create", "update", "patch", "delete"] {
            assert!(!granted("argoproj.io", "applications", verb), "nothing in Argo CD is written or got: {verb}");
        }
    }

    #[test]
    fn the_namespaces_listed_are_the_resources_and_the_destination() {
        let resources = [managed("apps", "Deployment", "web")];
        assert_eq!(namespaces(&resources, Some("extra")), BTreeSet::from(["extra".to_owned(), "shop".to_owned()]));
    }
}
