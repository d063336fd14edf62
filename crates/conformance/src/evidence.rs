//! What the API showed, compactly: the facts the requirements are judged on, each read from
//! one object as the API server lists it. The operator lists and hands every object here;
//! nothing else of an object is kept.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

/// A list the operator tried to read: what it held, or why it could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen<T> {
    Read(T),
    /// Why not (forbidden, an API error); the requirements that need it are not evaluated.
    Unreadable(String),
}

impl<T: Default> Default for Seen<T> {
    fn default() -> Self {
        Seen::Read(T::default())
    }
}

impl<T> Seen<T> {
    pub fn as_ref(&self) -> Result<&T, &str> {
        match self {
            Seen::Read(t) => Ok(t),
            Seen::Unreadable(why) => Err(why),
        }
    }
}

/// Everything one self-check looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The cluster's Kubernetes minor.
    pub minor: u32,
    /// Every API group the server serves (discovery), with the kinds of the groups that
    /// [`KIND_GROUPS`] names.
    pub groups: Seen<BTreeMap<String, Group>>,
    pub nodes: Seen<Vec<NodeFacts>>,
    /// Only the Deployments, StatefulSets and DaemonSets of a known solution ([`crate::solutions::relevant`]).
    pub workloads: Seen<Vec<Workload>>,
    pub crds: Seen<Vec<Crd>>,
    /// Empty when the cluster does not serve GatewayClass.
    pub gateway_classes: Seen<Vec<GatewayClass>>,
    pub api_services: Seen<Vec<ApiService>>,
    pub webhooks: Seen<Vec<Webhook>>,
    pub pods: Seen<PodFacts>,
    /// The drivers that publish DRA ResourceSlices; empty when the cluster serves none.
    pub dra_drivers: Seen<BTreeSet<String>>,
    /// ClusterQueues whose `Active` condition is True. Only Kueue's controller sets it, so it
    /// shows the controller at work wherever it runs (in the cluster or beside it). Empty when
    /// Kueue is not served.
    pub active_cluster_queues: Seen<Vec<String>>,
}

/// The groups whose kinds the requirements need, beside whether they are served.
pub const KIND_GROUPS: &[&str] = &[
    "resource.k8s.io",
    "gateway.networking.k8s.io",
    "inference.networking.k8s.io",
    "inference.networking.x-k8s.io",
    "kueue.x-k8s.io",
];

/// One served API group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    pub versions: Vec<String>,
    /// Kinds per version, for the groups of [`KIND_GROUPS`].
    pub kinds: BTreeMap<String, BTreeSet<String>>,
    /// Why its kinds could not be read, if they could not.
    pub error: Option<String>,
}

impl Group {
    /// The first version (in the server's order of preference) serving every one of `kinds`.
    pub fn version_serving(&self, kinds: &[&str]) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| self.kinds.get(*v).is_some_and(|k| kinds.iter().all(|kind| k.contains(*kind))))
            .map(String::as_str)
    }

    /// Every kind served in any version.
    pub fn all_kinds(&self) -> BTreeSet<&str> {
        self.kinds.values().flatten().map(String::as_str).collect()
    }
}

/// Extended resources that are accelerators, by prefix.
const ACCELERATOR_RESOURCES: &[&str] =
    &["nvidia.com/", "amd.com/gpu", "gpu.intel.com/", "habana.ai/", "aws.amazon.com/neuron", "google.com/tpu"];

/// Node labels the accelerator requirements read, by prefix.
const ACCELERATOR_LABELS: &[&str] = &["nvidia.com/", "amd.com/", "gpu.intel.com/"];

/// Whether an extended resource name is an accelerator.
pub fn is_accelerator_resource(name: &str) -> bool {
    ACCELERATOR_RESOURCES.iter().any(|p| name.starts_with(p))
}

/// One Node: the accelerators it advertises and its accelerator labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    /// Accelerator resources with a non-zero capacity.
    pub accelerators: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

impl NodeFacts {
    pub fn from_object(node: &Value) -> NodeFacts {
        let accelerators =
            strings(&node["status"]["capacity"]).filter(|(k, v)| is_accelerator_resource(k) && !is_zero(v)).collect();
        let labels = strings(&node["metadata"]["labels"])
            .filter(|(k, _)| ACCELERATOR_LABELS.iter().any(|p| k.starts_with(p)))
            .collect();
        NodeFacts { name: text(&node["metadata"]["name"]), accelerators, labels }
    }
}

/// A Deployment, StatefulSet or DaemonSet of a known solution.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub images: Vec<String>,
    /// Pods wanted (replicas, or the Nodes a DaemonSet should run on) and ready.
    pub desired: i64,
    pub ready: i64,
    /// Available: at least one Pod, and as many ready as wanted (a Deployment: its
    /// `Available` condition too).
    pub available: bool,
}

impl Workload {
    /// Reads a Deployment, StatefulSet or DaemonSet (`kind`).
    pub fn from_object(kind: &str, object: &Value) -> Workload {
        let spec = &object["spec"];
        let status = &object["status"];
        let images = images(&spec["template"]["spec"]);
        let (desired, ready) = match kind {
            "DaemonSet" => (int(&status["desiredNumberScheduled"]), int(&status["numberReady"])),
            "Deployment" => (int_or(&spec["replicas"], 1), int(&status["availableReplicas"])),
            _ => (int_or(&spec["replicas"], 1), int(&status["readyReplicas"])),
        };
        let condition_ok = kind != "Deployment"
            || status["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Available" && c["status"] == "True"));
        Workload {
            kind: kind.to_owned(),
            namespace: text(&object["metadata"]["namespace"]),
            name: text(&object["metadata"]["name"]),
            images,
            desired,
            ready,
            available: desired > 0 && ready >= desired && condition_ok,
        }
    }

    /// `Deployment kueue-system/kueue-controller-manager (1/1 ready)`.
    pub fn describe(&self) -> String {
        format!("{} {}/{} ({}/{} ready)", self.kind, self.namespace, self.name, self.ready, self.desired)
    }
}

/// A CustomResourceDefinition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Crd {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub established: bool,
}

impl Crd {
    pub fn from_object(crd: &Value) -> Crd {
        Crd {
            name: text(&crd["metadata"]["name"]),
            group: text(&crd["spec"]["group"]),
            kind: text(&crd["spec"]["names"]["kind"]),
            established: condition(&crd["status"], "Established") == Some(true),
        }
    }
}

/// A GatewayClass and whether its controller accepted it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayClass {
    pub name: String,
    pub controller: String,
    pub accepted: Option<bool>,
}

impl GatewayClass {
    pub fn from_object(class: &Value) -> GatewayClass {
        GatewayClass {
            name: text(&class["metadata"]["name"]),
            controller: text(&class["spec"]["controllerName"]),
            accepted: condition(&class["status"], "Accepted"),
        }
    }
}

/// An APIService (an aggregated API, or a local one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiService {
    pub name: String,
    pub group: String,
    /// Served by a Service (aggregated), not by the API server itself.
    pub aggregated: bool,
    pub available: Option<bool>,
}

impl ApiService {
    pub fn from_object(service: &Value) -> ApiService {
        ApiService {
            name: text(&service["metadata"]["name"]),
            group: text(&service["spec"]["group"]),
            aggregated: service["spec"]["service"].is_object(),
            available: condition(&service["status"], "Available"),
        }
    }
}

/// One webhook of a validating or mutating webhook configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Webhook {
    /// `ValidatingWebhookConfiguration x`.
    pub configuration: String,
    pub name: String,
    /// The namespace of the Service it calls (None: a URL).
    pub service_namespace: Option<String>,
    pub has_ca_bundle: bool,
}

impl Webhook {
    /// Every webhook of one configuration of `kind`.
    pub fn from_object(kind: &str, configuration: &Value) -> Vec<Webhook> {
        let name = text(&configuration["metadata"]["name"]);
        configuration["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| Webhook {
                configuration: format!("{kind} {name}"),
                name: text(&w["name"]),
                service_namespace: w["clientConfig"]["service"]["namespace"].as_str().map(str::to_owned),
                has_ca_bundle: w["clientConfig"]["caBundle"].as_str().is_some_and(|c| !c.is_empty()),
            })
            .collect()
    }
}

/// Pods that use accelerators, and those that reach them around the device plugin or DRA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// Pods that request an accelerator resource or a DRA claim.
    pub requesting: u64,
    /// Pods that reach accelerators without a request (at most [`MAX_NAMED`] named).
    pub bypassing: Vec<String>,
    pub bypassing_count: u64,
}

/// Most objects a rationale names.
pub const MAX_NAMED: usize = 5;

impl PodFacts {
    /// Adds one Pod. `accelerator_nodes` are the Nodes that advertise accelerators. A Pod of a
    /// DaemonSet (device plugins, exporters, drivers: node agents) is not judged.
    pub fn add(&mut self, pod: &Value, accelerator_nodes: &HashSet<String>) {
        let spec = &pod["spec"];
        let containers =
            || ["containers", "initContainers"].into_iter().flat_map(|k| spec[k].as_array().into_iter().flatten());
        let requests = containers().any(|c| {
            ["limits", "requests"]
                .iter()
                .any(|r| c["resources"][r].as_object().is_some_and(|m| m.keys().any(|k| is_accelerator_resource(k))))
        }) || spec["resourceClaims"].as_array().is_some_and(|c| !c.is_empty());
        if requests {
            self.requesting += 1;
            return;
        }
        let daemon =
            pod["metadata"]["ownerReferences"].as_array().is_some_and(|o| o.iter().any(|o| o["kind"] == "DaemonSet"));
        if daemon {
            return;
        }
        let on_accelerator = spec["nodeName"].as_str().is_some_and(|n| accelerator_nodes.contains(n));
        let privileged = containers().any(|c| c["securityContext"]["privileged"] == true);
        let dev_mount = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["hostPath"]["path"].as_str().is_some_and(|p| p == "/dev" || p.starts_with("/dev/")));
        let visible = containers().find_map(|c| {
            c["env"].as_array().into_iter().flatten().find_map(|e| {
                let value = e["value"].as_str()?;
                (e["name"] == "NVIDIA_VISIBLE_DEVICES" && !matches!(value, "" | "void" | "none")).then_some(value)
            })
        });
        let why = match (on_accelerator, privileged, dev_mount, visible) {
            (true, true, _, _) => "privileged on an accelerator node".to_owned(),
            (true, _, true, _) => "mounts host /dev on an accelerator node".to_owned(),
            (_, _, _, Some(value)) => format!("sets NVIDIA_VISIBLE_DEVICES={value}"),
            _ => return,
        };
        self.bypassing_count += 1;
        if self.bypassing.len() < MAX_NAMED {
            self.bypassing.push(format!(
                "Pod {}/{} ({why}, no accelerator requested)",
                text(&pod["metadata"]["namespace"]),
                text(&pod["metadata"]["name"])
            ));
        }
    }
}

/// The driver of a DRA ResourceSlice.
pub fn slice_driver(slice: &Value) -> Option<String> {
    slice["spec"]["driver"].as_str().map(str::to_owned)
}

fn images(pod_spec: &Value) -> Vec<String> {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|k| pod_spec[*k].as_array().into_iter().flatten())
        .filter_map(|c| c["image"].as_str().map(str::to_owned))
        .collect()
}

fn strings(map: &Value) -> impl Iterator<Item = (String, String)> + '_ {
    map.as_object().into_iter().flatten().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
}

fn is_zero(quantity: &str) -> bool {
    quantity.trim().trim_start_matches('0').is_empty()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn int_or(value: &Value, default: i64) -> i64 {
    value.as_i64().unwrap_or(default)
}

/// The status of condition `type_`: Some(true) for `True`, Some(false) otherwise, None if absent.
/// The name of a Kueue ClusterQueue whose controller made it Active.
pub fn active_cluster_queue(queue: &Value) -> Option<String> {
    (condition(&queue["status"], "Active") == Some(true)).then(|| text(&queue["metadata"]["name"]))
}

fn condition(status: &Value, type_: &str) -> Option<bool> {
    status["conditions"].as_array()?.iter().find(|c| c["type"] == type_).map(|c| c["status"] == "True")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_node_keeps_only_its_accelerators_and_their_labels() {
        let node = NodeFacts::from_object(&json!({
            "metadata": {"name": "gpu-1", "labels": {"nvidia.com/gpu.product": "H100", "zone": "a"}},
            "status": {"capacity": {"cpu": "8", "nvidia.com/gpu": "8", "amd.com/gpu": "0"}},
        }));
        assert_eq!(node.accelerators, BTreeMap::from([("nvidia.com/gpu".into(), "8".into())]));
        assert_eq!(node.labels.keys().collect::<Vec<_>>(), ["nvidia.com/gpu.product"]);
    }

    #[test]
    fn a_deployment_is_available_only_with_ready_pods_and_its_condition() {
        let deployment = |available: i64, condition: &str| {
            Workload::from_object(
                "Deployment",
                &json!({"metadata": {"namespace": "kueue-system", "name": "kueue-controller-manager"},
                    "spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": "registry.k8s.io/kueue/kueue:v0.13"}]}}},
                    "status": {"availableReplicas": available, "conditions": [{"type": "Available", "status": condition}]}}),
            )
        };
        assert!(deployment(1, "True").available);
        assert!(!deployment(0, "False").available);
        assert!(!deployment(1, "False").available);
        assert_eq!(deployment(1, "True").describe(), "Deployment kueue-system/kueue-controller-manager (1/1 ready)");
        let idle = Workload::from_object("DaemonSet", &json!({"metadata": {"name": "x"}, "status": {}}));
        assert!(!idle.available, "a DaemonSet on no Node is not running");
    }

    #[test]
    fn pods_reaching_accelerators_without_a_request_are_named() {
        let nodes = HashSet::from(["gpu-1".to_owned()]);
        let mut facts = PodFacts::default();
        facts.add(
            &json!({"metadata": {"namespace": "ml", "name": "train"},
                "spec": {"nodeName": "gpu-1", "containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}),
            &nodes,
        );
        facts.add(
            &json!({"metadata": {"namespace": "ml", "name": "sneaky"},
                "spec": {"nodeName": "gpu-1", "containers": [{"securityContext": {"privileged": true}}]}}),
            &nodes,
        );
        facts.add(
            &json!({"metadata": {"namespace": "ml", "name": "env"},
                "spec": {"nodeName": "cpu-1", "containers": [{"env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]}]}}),
            &nodes,
        );
        facts.add(
            &json!({"metadata": {"namespace": "gpu-operator", "name": "plugin", "ownerReferences": [{"kind": "DaemonSet"}]},
                "spec": {"nodeName": "gpu-1", "containers": [{"securityContext": {"privileged": true}}]}}),
            &nodes,
        );
        facts.add(
            &json!({"metadata": {"namespace": "web", "name": "nginx"},
                "spec": {"nodeName": "cpu-1", "containers": [{"securityContext": {"privileged": true}}]}}),
            &nodes,
        );
        assert_eq!((facts.requesting, facts.bypassing_count), (1, 2));
        assert!(facts.bypassing[0].contains("ml/sneaky (privileged on an accelerator node"));
        assert!(facts.bypassing[1].contains("NVIDIA_VISIBLE_DEVICES=all"));
    }

    #[test]
    fn conditions_crds_gateway_classes_api_services_and_webhooks_are_read() {
        let crd = Crd::from_object(&json!({"metadata": {"name": "clusterqueues.kueue.x-k8s.io"},
            "spec": {"group": "kueue.x-k8s.io", "names": {"kind": "ClusterQueue"}},
            "status": {"conditions": [{"type": "Established", "status": "True"}]}}));
        assert!(crd.established);
        let class = GatewayClass::from_object(&json!({"metadata": {"name": "eg"},
            "spec": {"controllerName": "gateway.envoyproxy.io/gatewayclass-controller"},
            "status": {"conditions": [{"type": "Accepted", "status": "False"}]}}));
        assert_eq!(class.accepted, Some(false));
        let queue = |status: &str| {
            json!({"metadata": {"name": "team-a"},
            "status": {"conditions": [{"type": "Active", "status": status}]}})
        };
        assert_eq!(active_cluster_queue(&queue("True")).as_deref(), Some("team-a"));
        assert_eq!(active_cluster_queue(&queue("False")), None);
        assert_eq!(active_cluster_queue(&json!({"metadata": {"name": "new"}})), None);
        let api = ApiService::from_object(&json!({"metadata": {"name": "v1beta1.custom.metrics.k8s.io"},
            "spec": {"group": "custom.metrics.k8s.io", "service": {"namespace": "monitoring", "name": "adapter"}}}));
        assert_eq!((api.aggregated, api.available), (true, None));
        let hooks = Webhook::from_object(
            "ValidatingWebhookConfiguration",
            &json!({"metadata": {"name": "kueue"},
            "webhooks": [{"name": "a", "clientConfig": {"service": {"namespace": "kueue-system", "name": "w"}, "caBundle": "Y2E="}},
                         {"name": "b", "clientConfig": {"url": "https://x"}}]}),
        );
        assert_eq!(hooks.len(), 2);
        assert_eq!((hooks[0].service_namespace.as_deref(), hooks[0].has_ca_bundle), (Some("kueue-system"), true));
        assert_eq!((hooks[1].service_namespace.as_deref(), hooks[1].has_ca_bundle), (None, false));
    }
}
