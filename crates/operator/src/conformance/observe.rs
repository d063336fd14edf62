//! Gathers the evidence of one self-check from the API server: discovery (the served groups,
//! and the kinds of the few groups the rules ask about), then Nodes, the workloads of known
//! solutions, CRDs, GatewayClasses, APIServices, webhook configurations, DRA ResourceSlices,
//! and (only on a cluster with accelerators) Pods — each listed page by page and folded into
//! compact facts. A list the operator may not read, or that fails, is recorded as unreadable:
//! the requirements that need it are `not-evaluated` and the others are still judged. Only
//! the server's version is essential.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use kube9_conformance::evidence::{
    ApiService, Crd, Evidence, GatewayClass, Group, KIND_GROUPS, NodeFacts, PodFacts, Seen, Webhook, Workload,
    active_cluster_queue, slice_driver,
};
use kube9_conformance::solutions::relevant;
use serde_json::Value;

use crate::base::list::{self, ListError};

/// The server's minor version (`35` from `35` or `35+`).
pub async fn minor(client: &kube::Client) -> Result<u32, String> {
    let info = client.apiserver_version().await.map_err(|e| format!("cannot read the server's version: {e}"))?;
    let digits: String = info.minor.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().map_err(|_| format!("the server reports an unreadable minor version {:?}", info.minor))
}

/// Everything the requirements read, for a cluster of this minor. After discovery the lists
/// run side by side (each page by page); Pods last, since only accelerators make them matter.
pub async fn observe(client: &kube::Client, minor: u32) -> Evidence {
    let groups = groups(client).await;
    let gateway_path = served_path(&groups, "gateway.networking.k8s.io", "GatewayClass", "gatewayclasses");
    let slices_path = served_path(&groups, "resource.k8s.io", "ResourceSlice", "resourceslices");
    let queues_path = served_path(&groups, "kueue.x-k8s.io", "ClusterQueue", "clusterqueues");
    let (nodes, workloads, crds, gateway_classes, api_services, webhooks, dra_drivers, active_cluster_queues) = tokio::join!(
        collect(client, "/api/v1/nodes", |n, out: &mut Vec<NodeFacts>| out.push(NodeFacts::from_object(&n))),
        workloads(client),
        collect(client, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", |c, out: &mut Vec<Crd>| {
            out.push(Crd::from_object(&c))
        }),
        optional(client, gateway_path, |c, out: &mut Vec<GatewayClass>| out.push(GatewayClass::from_object(&c))),
        collect(client, "/apis/apiregistration.k8s.io/v1/apiservices", |s, out: &mut Vec<ApiService>| {
            out.push(ApiService::from_object(&s))
        }),
        webhooks(client),
        optional(client, slices_path, |s, out: &mut BTreeSet<String>| out.extend(slice_driver(&s))),
        optional(client, queues_path, |q, out: &mut Vec<String>| out.extend(active_cluster_queue(&q))),
    );
    // Pods are many: listed only when there are accelerators to reach.
    let accelerator_nodes: HashSet<String> = match &nodes {
        Seen::Read(nodes) => nodes.iter().filter(|n| !n.accelerators.is_empty()).map(|n| n.name.clone()).collect(),
        Seen::Unreadable(_) => HashSet::new(),
    };
    let dra_devices = matches!(&dra_drivers, Seen::Read(d) if !d.is_empty());
    let pods = if accelerator_nodes.is_empty() && !dra_devices {
        Seen::Read(PodFacts::default())
    } else {
        collect(client, "/api/v1/pods", |p, out: &mut PodFacts| out.add(&p, &accelerator_nodes)).await
    };
    Evidence {
        minor,
        groups,
        nodes,
        workloads,
        crds,
        gateway_classes,
        api_services,
        webhooks,
        pods,
        dra_drivers,
        active_cluster_queues,
    }
}

/// The Deployments, StatefulSets and DaemonSets of known solutions.
async fn workloads(client: &kube::Client) -> Seen<Vec<Workload>> {
    let mut all = Vec::new();
    for (kind, path) in [
        ("Deployment", "/apis/apps/v1/deployments"),
        ("StatefulSet", "/apis/apps/v1/statefulsets"),
        ("DaemonSet", "/apis/apps/v1/daemonsets"),
    ] {
        let listed = collect(client, path, |object, out: &mut Vec<Workload>| {
            let workload = Workload::from_object(kind, &object);
            if relevant(&workload.name, &workload.images) {
                out.push(workload);
            }
        })
        .await;
        match listed {
            Seen::Read(more) => all.extend(more),
            Seen::Unreadable(why) => return Seen::Unreadable(why),
        }
    }
    Seen::Read(all)
}

/// Every webhook of the validating and mutating configurations.
async fn webhooks(client: &kube::Client) -> Seen<Vec<Webhook>> {
    let mut all = Vec::new();
    for (kind, plural) in [
        ("ValidatingWebhookConfiguration", "validatingwebhookconfigurations"),
        ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations"),
    ] {
        let path = format!("/apis/admissionregistration.k8s.io/v1/{plural}");
        match collect(client, &path, |c, out: &mut Vec<Webhook>| out.extend(Webhook::from_object(kind, &c))).await {
            Seen::Read(more) => all.extend(more),
            Seen::Unreadable(why) => return Seen::Unreadable(why),
        }
    }
    Seen::Read(all)
}

/// A kind the cluster may not serve (no path): nothing seen.
async fn optional<T: Default>(client: &kube::Client, path: Option<String>, fold: impl FnMut(Value, &mut T)) -> Seen<T> {
    match path {
        Some(path) => collect(client, &path, fold).await,
        None => Seen::Read(T::default()),
    }
}

/// The served groups (one request), and the kinds of each version of [`KIND_GROUPS`].
async fn groups(client: &kube::Client) -> Seen<BTreeMap<String, Group>> {
    let list = match client.list_api_groups().await {
        Ok(list) => list,
        Err(e) => return Seen::Unreadable(format!("discovery failed: {e}")),
    };
    let mut groups = BTreeMap::new();
    for g in list.groups {
        let mut group = Group { versions: g.versions.iter().map(|v| v.version.clone()).collect(), ..Group::default() };
        if KIND_GROUPS.contains(&g.name.as_str()) {
            for v in &g.versions {
                match client.list_api_group_resources(&v.group_version).await {
                    Ok(resources) => {
                        let kinds =
                            resources.resources.into_iter().filter(|r| !r.name.contains('/')).map(|r| r.kind).collect();
                        group.kinds.insert(v.version.clone(), kinds);
                    }
                    Err(e) => group.error = Some(format!("{}: {e}", v.group_version)),
                }
            }
        }
        groups.insert(g.name, group);
    }
    Seen::Read(groups)
}

/// The list path of `kind` in the first version of `group` that serves it.
fn served_path(groups: &Seen<BTreeMap<String, Group>>, group: &str, kind: &str, plural: &str) -> Option<String> {
    let Seen::Read(groups) = groups else { return None };
    let g = groups.get(group)?;
    let version = g.version_serving(&[kind])?;
    Some(format!("/apis/{group}/{version}/{plural}"))
}

/// Lists `path` page by page, folding each object into `T`. Not served (404): nothing seen.
async fn collect<T: Default>(client: &kube::Client, path: &str, mut fold: impl FnMut(Value, &mut T)) -> Seen<T> {
    let mut out = T::default();
    let listed = list::each_item::<()>(client, path, |object| {
        fold(object, &mut out);
        Ok(())
    })
    .await;
    match listed {
        Ok(()) => Seen::Read(out),
        Err(ListError::Kube(e)) if list::status_code(&e) == Some(404) => Seen::Read(T::default()),
        Err(ListError::Kube(e)) if list::status_code(&e) == Some(403) => {
            tracing::warn!(path, error = %e, "may not list; the requirements that need it are not evaluated");
            Seen::Unreadable(format!("forbidden to list {path}"))
        }
        Err(ListError::Kube(e)) => Seen::Unreadable(format!("listing {path} failed: {e}")),
        Err(ListError::Stopped(())) => Seen::Read(out),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// What the self-check lists besides the kinds the checks read (the chart's ClusterRole grants
    /// exactly these, between `# ai-conformance-read` markers).
    const READS: &[(&str, &str)] = &[
        ("gateway.networking.k8s.io", "gatewayclasses"),
        ("resource.k8s.io", "resourceslices"),
        ("kueue.x-k8s.io", "clusterqueues"),
    ];

    /// The kinds the checks read that the self-check lists too (granted in the checks' block).
    const SHARED_READS: &[(&str, &str)] = &[
        ("", "nodes"),
        ("", "pods"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("apiregistration.k8s.io", "apiservices"),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
    ];

    fn granted(marker: &str) -> BTreeSet<(String, String)> {
        let template = include_str!("../../../../charts/kube9-operator/templates/clusterrole.yaml");
        let block = template
            .split_once(&format!("# {marker}: begin"))
            .and_then(|(_, rest)| rest.split_once(&format!("# {marker}: end")))
            .expect("the ClusterRole marks the rules")
            .0;
        let rules: Vec<serde_yaml::Value> = serde_yaml::from_str(block).unwrap();
        let mut out = BTreeSet::new();
        for rule in rules {
            assert_eq!(rule["verbs"], serde_yaml::to_value(["list"]).unwrap(), "only list: {rule:?}");
            let group = rule["apiGroups"][0].as_str().unwrap().to_owned();
            for resource in rule["resources"].as_sequence().unwrap() {
                out.insert((group.clone(), resource.as_str().unwrap().to_owned()));
            }
        }
        out
    }

    #[test]
    fn the_charts_cluster_role_grants_list_on_exactly_what_the_self_check_reads() {
        let own: BTreeSet<_> = READS.iter().map(|(g, r)| ((*g).to_owned(), (*r).to_owned())).collect();
        assert_eq!(granted("ai-conformance-read"), own);
        let checks = granted("checks-read");
        for (group, plural) in SHARED_READS {
            assert!(checks.contains(&((*group).to_owned(), (*plural).to_owned())), "{group}/{plural}");
        }
    }
}
