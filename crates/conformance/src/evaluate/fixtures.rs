//! Evidence the requirement tests are judged on.

use std::collections::BTreeMap;

use kube9_api::ai_conformance::{Category, Level, RequirementStatus as Status};

use crate::checklist::Requirement;
use crate::evidence::{Crd, Evidence, Group, NodeFacts, Seen, Webhook, Workload};

pub(crate) fn req(id: &'static str, level: Level) -> Requirement {
    Requirement { id, category: Category::Operator, level }
}

pub(crate) fn status(id: &'static str, level: Level, evidence: &Evidence) -> (Status, String) {
    let f = super::evaluate(&req(id, level), evidence);
    (f.status, f.rationale)
}

pub(crate) fn group(versions: &[(&str, &[&str])]) -> Group {
    Group {
        versions: versions.iter().map(|(v, _)| (*v).to_owned()).collect(),
        kinds: versions.iter().map(|(v, k)| ((*v).to_owned(), k.iter().map(|s| (*s).to_owned()).collect())).collect(),
        error: None,
    }
}

pub(crate) fn served(groups: &[(&str, Group)]) -> Seen<BTreeMap<String, Group>> {
    Seen::Read(groups.iter().map(|(n, g)| ((*n).to_owned(), g.clone())).collect())
}

pub(crate) fn workload(kind: &str, ns: &str, name: &str, image: &str, desired: i64, ready: i64) -> Workload {
    Workload {
        kind: kind.into(),
        namespace: ns.into(),
        name: name.into(),
        images: vec![image.into()],
        desired,
        ready,
        available: desired > 0 && ready >= desired,
    }
}

pub(crate) fn gpu_node(name: &str) -> NodeFacts {
    NodeFacts {
        name: name.into(),
        accelerators: BTreeMap::from([("nvidia.com/gpu".into(), "8".into())]),
        labels: BTreeMap::from([("nvidia.com/gpu.product".into(), "NVIDIA-H100".into())]),
    }
}

pub(crate) fn cpu_node(name: &str) -> NodeFacts {
    NodeFacts { name: name.into(), ..NodeFacts::default() }
}

pub(crate) fn crd(group: &str, kind: &str, established: bool) -> Crd {
    Crd { name: format!("{}s.{group}", kind.to_lowercase()), group: group.into(), kind: kind.into(), established }
}

pub(crate) fn with_gpus(nodes: usize) -> Evidence {
    Evidence {
        minor: 35,
        nodes: Seen::Read((0..nodes).map(|i| gpu_node(&format!("gpu-{i}"))).chain([cpu_node("cpu-0")]).collect()),
        ..Evidence::default()
    }
}

pub(crate) fn without_gpus() -> Evidence {
    Evidence { minor: 35, nodes: Seen::Read(vec![cpu_node("cpu-0"), cpu_node("cpu-1")]), ..Evidence::default() }
}

pub(crate) const DRA: &[&str] = &["DeviceClass", "ResourceClaim", "ResourceClaimTemplate", "ResourceSlice"];
pub(crate) const GATEWAY: &[&str] = &["GatewayClass", "Gateway", "HTTPRoute"];

pub(crate) fn kueue(ready: i64) -> Evidence {
    Evidence {
        groups: served(&[("kueue.x-k8s.io", group(&[("v1beta1", &[])]))]),
        workloads: Seen::Read(vec![workload(
            "Deployment",
            "kueue-system",
            "kueue-controller-manager",
            "registry.k8s.io/kueue/kueue:v0.13.0",
            1,
            ready,
        )]),
        crds: Seen::Read(vec![crd("kueue.x-k8s.io", "ClusterQueue", true), crd("kueue.x-k8s.io", "LocalQueue", true)]),
        webhooks: Seen::Read(vec![Webhook {
            configuration: "ValidatingWebhookConfiguration kueue-validating".into(),
            name: "vclusterqueue.kb.io".into(),
            service_namespace: Some("kueue-system".into()),
            has_ca_bundle: true,
        }]),
        ..without_gpus()
    }
}
