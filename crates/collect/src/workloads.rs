//! Configuration patterns and security posture, read from workload pod templates.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube9_checks::Snapshot;
use kube9_checks::pods::{containers as all_containers, image_pinned};
use kube9_checks::snapshot::{Workload, WorkloadKind};
use serde_json::{Map, Value, json};

/// Per workload (Deployments, StatefulSets, DaemonSets, CronJobs, unowned Jobs): replicas,
/// containers and which good practices every regular container follows, sorted by kind,
/// namespace and name; with totals.
pub fn configuration_patterns(snapshot: &Snapshot) -> Value {
    let mut rows: Vec<_> = analysed(&snapshot.workloads).collect();
    rows.sort_by(|a, b| {
        (a.kind.as_str(), &a.metadata.namespace, &a.metadata.name).cmp(&(
            b.kind.as_str(),
            &b.metadata.namespace,
            &b.metadata.name,
        ))
    });
    let (mut without_limits, mut without_probes, mut single_replica) = (0, 0, 0);
    let workloads: Vec<Value> = rows
        .iter()
        .map(|w| {
            let spec = pod_spec(w.template.spec.as_ref());
            let cs = &spec.containers;
            let every = |f: &dyn Fn(&Container) -> bool| !cs.is_empty() && cs.iter().all(f);
            let requests = every(&|c| has(c, false, "cpu") && has(c, false, "memory"));
            let limits = every(&|c| has(c, true, "memory"));
            let liveness = every(&|c| c.liveness_probe.is_some());
            let readiness = every(&|c| c.readiness_probe.is_some());
            without_limits += usize::from(!limits);
            without_probes += usize::from(!(liveness && readiness));
            single_replica += usize::from(w.replicas == Some(1));
            let mut row = object_ref(w.kind.as_str(), &w.metadata);
            if let Some(r) = w.replicas {
                row.insert("replicas".into(), r.into());
            }
            let fields = [
                ("containers", json!(cs.len())),
                ("resourceRequests", json!(requests)),
                ("resourceLimits", json!(limits)),
                ("livenessProbe", json!(liveness)),
                ("readinessProbe", json!(readiness)),
                ("imageTagLatest", json!(cs.iter().any(|c| !image_pinned(c.image.as_deref().unwrap_or_default())))),
                ("runAsNonRoot", json!(every(&|c| non_root(spec, c) == Some(true)))),
                ("hostNetwork", json!(spec.host_network == Some(true))),
            ];
            row.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
            Value::Object(row)
        })
        .collect();
    json!({
        "totals": {"workloads": workloads.len(), "withoutLimits": without_limits,
                   "withoutProbes": without_probes, "singleReplica": single_replica},
        "workloads": workloads,
    })
}

/// Counts of risky settings over the analysed workloads' pod templates and the bare Pods
/// (init containers included), plus namespaces without a NetworkPolicy and bindings to
/// cluster-admin.
pub fn security_posture(snapshot: &Snapshot) -> Value {
    let s = snapshot;
    let bare = s.pods.iter().filter(|p| p.metadata.owner_references.as_ref().is_none_or(|o| o.is_empty()));
    let specs: Vec<&PodSpec> = analysed(&s.workloads)
        .map(|w| pod_spec(w.template.spec.as_ref()))
        .chain(bare.map(|p| pod_spec(p.spec.as_ref())))
        .collect();
    let count_specs = |f: &dyn Fn(&PodSpec) -> bool| specs.iter().filter(|p| f(p)).count();
    let count_containers = |f: &dyn Fn(&PodSpec, &Container) -> bool| {
        specs.iter().map(|p| all_containers(p).filter(|c| f(p, c)).count()).sum::<usize>()
    };
    let sc = |c: &Container, get: fn(&k8s_openapi::api::core::v1::SecurityContext) -> Option<bool>| {
        c.security_context.as_ref().and_then(get)
    };
    let protected: BTreeSet<&str> =
        s.network_policies.iter().filter_map(|np| np.metadata.namespace.as_deref()).collect();
    let unprotected =
        s.namespaces.iter().filter(|n| n.metadata.name.as_deref().is_none_or(|n| !protected.contains(n))).count();
    let admin_bindings = s
        .cluster_role_bindings
        .iter()
        .filter(|b| b.role_ref.kind == "ClusterRole" && b.role_ref.name == "cluster-admin")
        .filter(|b| !b.metadata.name.as_deref().unwrap_or_default().starts_with("system:"))
        .count();
    json!({
        "privilegedContainers": count_containers(&|_, c| sc(c, |s| s.privileged) == Some(true)),
        "hostNetworkPods": count_specs(&|p| p.host_network == Some(true)),
        "hostPidOrIpcPods": count_specs(&|p| p.host_pid == Some(true) || p.host_ipc == Some(true)),
        "hostPathVolumes": specs.iter().flat_map(|p| p.volumes.iter().flatten()).filter(|v| v.host_path.is_some()).count(),
        "containersMayRunAsRoot": count_containers(&|p, c| may_run_as_root(p, c)),
        // Kubernetes allows escalation unless the container sets it to false.
        "allowPrivilegeEscalation": count_containers(&|_, c| sc(c, |s| s.allow_privilege_escalation) != Some(false)),
        "namespacesWithoutNetworkPolicy": unprotected,
        "clusterAdminBindings": admin_bindings,
        "serviceAccountTokenAutomount": count_specs(&|p| p.automount_service_account_token != Some(false)),
        "workloadsAnalysed": specs.len(),
    })
}

fn pod_spec(spec: Option<&PodSpec>) -> &PodSpec {
    static EMPTY: std::sync::LazyLock<PodSpec> = std::sync::LazyLock::new(PodSpec::default);
    spec.unwrap_or(&EMPTY)
}

/// Whether the container sets `resource` in its limits (or requests).
fn has(c: &Container, limits: bool, resource: &str) -> bool {
    let r = c.resources.as_ref();
    r.and_then(|r| if limits { r.limits.as_ref() } else { r.requests.as_ref() })
        .is_some_and(|m| m.contains_key(resource))
}

/// The container's effective runAsNonRoot (its own, else the pod's).
fn non_root(pod: &PodSpec, c: &Container) -> Option<bool> {
    c.security_context
        .as_ref()
        .and_then(|sc| sc.run_as_non_root)
        .or(pod.security_context.as_ref().and_then(|p| p.run_as_non_root))
}

/// Neither runAsNonRoot: true nor a non-zero runAsUser (container, else pod).
fn may_run_as_root(pod: &PodSpec, c: &Container) -> bool {
    let uid = c
        .security_context
        .as_ref()
        .and_then(|sc| sc.run_as_user)
        .or(pod.security_context.as_ref().and_then(|p| p.run_as_user));
    non_root(pod, c) != Some(true) && uid.is_none_or(|u| u == 0)
}

/// The workloads the configuration and security collectors analyse: every Deployment,
/// StatefulSet, DaemonSet and CronJob, and the Jobs nothing owns.
fn analysed(workloads: &[Workload]) -> impl Iterator<Item = &Workload> {
    workloads.iter().filter(|w| match w.kind {
        WorkloadKind::ReplicaSet => false,
        WorkloadKind::Job => w.metadata.owner_references.as_ref().is_none_or(|o| o.is_empty()),
        _ => true,
    })
}

/// An object reference `{kind, namespace, name}` (namespace and name left out when absent).
fn object_ref(kind: &'static str, meta: &ObjectMeta) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("kind".into(), kind.into());
    if let Some(ns) = &meta.namespace {
        r.insert("namespace".into(), ns.as_str().into());
    }
    if let Some(name) = &meta.name {
        r.insert("name".into(), name.as_str().into());
    }
    r
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tests_support::snapshot;

    fn good_container() -> Value {
        json!({"name": "app", "image": "shop/web:1.2.3",
               "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
               "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
               "readinessProbe": {"httpGet": {"path": "/", "port": 80}},
               "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true}})
    }

    fn workload(api: &str, kind: &str, name: &str, spec: Value, extra_spec: Value) -> Value {
        let template = json!({"metadata": {"labels": {"app": name}}, "spec": spec});
        let mut o = json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "shop"},
                           "spec": {"selector": {"matchLabels": {"app": name}}, "template": template}});
        if kind == "CronJob" {
            o["spec"] = json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}});
        }
        for (k, v) in extra_spec.as_object().into_iter().flatten() {
            o["spec"][k] = v.clone();
        }
        o
    }

    fn fixture() -> Vec<Value> {
        let good = json!({"automountServiceAccountToken": false, "containers": [good_container()]});
        let bad = json!({"hostNetwork": true, "hostPID": true,
            "volumes": [{"name": "h", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}}],
            "initContainers": [{"name": "init", "image": "busybox", "securityContext": {"privileged": true}}],
            "containers": [good_container(), {"name": "side", "image": "side:latest", "securityContext": {"privileged": true}}]});
        let owner = json!([{"apiVersion": "batch/v1", "kind": "CronJob", "name": "c", "uid": "u"}]);
        let mut owned_job = workload("batch/v1", "Job", "owned", good.clone(), json!({}));
        owned_job["metadata"]["ownerReferences"] = owner;
        vec![
            workload("apps/v1", "Deployment", "web", good.clone(), json!({"replicas": 3})),
            workload("apps/v1", "Deployment", "api", bad.clone(), json!({"replicas": 1})),
            workload("apps/v1", "DaemonSet", "agent", good.clone(), json!({})),
            workload("batch/v1", "CronJob", "nightly", good.clone(), json!({})),
            workload("batch/v1", "Job", "once", good.clone(), json!({})),
            owned_job,
            workload("apps/v1", "ReplicaSet", "rs", bad.clone(), json!({})),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": "shop"},
                   "spec": {"hostIPC": true, "containers": [{"name": "sh", "image": "alpine@sha256:abc",
                            "securityContext": {"runAsUser": 1000}}]}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "open"}}),
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                   "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}}}),
            crb("ops-admins", "ClusterRole", "cluster-admin"),
            crb("system:masters-ish", "ClusterRole", "cluster-admin"),
            crb("viewers", "ClusterRole", "view"),
        ]
    }

    fn crb(name: &str, kind: &str, role: &str) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}})
    }

    #[test]
    fn configuration_patterns_per_workload() {
        let out = configuration_patterns(&snapshot(&fixture()));
        let rows = out["workloads"].as_array().cloned().unwrap_or_default();
        let refs: Vec<String> = rows.iter().map(|w| format!("{}/{}", w["kind"], w["name"])).collect();
        let want = ["CronJob/nightly", "DaemonSet/agent", "Deployment/api", "Deployment/web", "Job/once"];
        assert_eq!(refs, want.map(|r| r.split('/').map(|p| format!("{p:?}")).collect::<Vec<_>>().join("/")));
        assert_eq!(
            out["workloads"][3],
            json!({"kind": "Deployment", "namespace": "shop", "name": "web", "replicas": 3, "containers": 1,
                   "resourceRequests": true, "resourceLimits": true, "livenessProbe": true, "readinessProbe": true,
                   "imageTagLatest": false, "runAsNonRoot": true, "hostNetwork": false})
        );
        assert_eq!(
            out["workloads"][2],
            json!({"kind": "Deployment", "namespace": "shop", "name": "api", "replicas": 1, "containers": 2,
                   "resourceRequests": false, "resourceLimits": false, "livenessProbe": false, "readinessProbe": false,
                   "imageTagLatest": true, "runAsNonRoot": false, "hostNetwork": true})
        );
        assert!(out["workloads"][0].get("replicas").is_none(), "CronJobs have no replicas");
        assert_eq!(out["totals"], json!({"workloads": 5, "withoutLimits": 1, "withoutProbes": 1, "singleReplica": 1}));
    }

    #[test]
    fn pod_level_run_as_non_root_counts_unless_a_container_overrides_it() {
        let spec = |ctr: Value| json!({"securityContext": {"runAsNonRoot": true}, "containers": [ctr]});
        let out = configuration_patterns(&snapshot(&[
            workload("apps/v1", "Deployment", "a", spec(json!({"name": "c", "image": "x:1"})), json!({})),
            workload(
                "apps/v1",
                "Deployment",
                "b",
                spec(json!({"name": "c", "image": "x:1", "securityContext": {"runAsNonRoot": false}})),
                json!({}),
            ),
        ]));
        assert_eq!(
            (&out["workloads"][0]["runAsNonRoot"], &out["workloads"][1]["runAsNonRoot"]),
            (&json!(true), &json!(false))
        );
    }

    #[test]
    fn security_posture_counts() {
        let out = security_posture(&snapshot(&fixture()));
        assert_eq!(
            out,
            json!({
                // api: init + side container; 5 workloads + 1 bare pod analysed.
                "privilegedContainers": 2,
                "hostNetworkPods": 1,
                "hostPidOrIpcPods": 2,
                "hostPathVolumes": 1,
                // api's init and side containers; the bare pod has a non-zero runAsUser.
                "containersMayRunAsRoot": 2,
                // api's init and side containers, and the bare pod's container.
                "allowPrivilegeEscalation": 3,
                "namespacesWithoutNetworkPolicy": 1,
                "clusterAdminBindings": 1,
                // api and the bare pod.
                "serviceAccountTokenAutomount": 2,
                "workloadsAnalysed": 6,
            })
        );
    }
}
