//! Security, RBAC: what Roles and bindings hand over. Objects Kubernetes itself creates (the
//! `kubernetes.io/bootstrapping: rbac-defaults` label, or an exact list of their names) are
//! left alone; a name merely starting with `system:` is not enough.

use k8s_openapi::api::rbac::v1::{PolicyRule, Subject as RbacSubject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube9_api::common::{Pillar, Severity};

use crate::check::Run::Kept;
use crate::check::{Check, Eval};
use crate::snapshot::Snapshot;
use crate::subject::Subject;

const S: Pillar = Pillar::Security;
const RBAC: &str = "rbac.authorization.k8s.io/v1";

/// The label the API server puts on every RBAC object it bootstraps.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");

/// Names of the roles and bindings Kubernetes (the API server's bootstrap policy, and kubeadm)
/// creates, exactly.
const KUBERNETES_NAMES: &[&str] = &[
    "cluster-admin",
    "admin",
    "edit",
    "view",
    "system:aggregate-to-admin",
    "system:aggregate-to-edit",
    "system:aggregate-to-view",
    "system:auth-delegator",
    "system:basic-user",
    "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
    "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
    "system:certificates.k8s.io:kube-apiserver-client-approver",
    "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
    "system:certificates.k8s.io:kubelet-serving-approver",
    "system:certificates.k8s.io:legacy-unknown-approver",
    "system:discovery",
    "system:heapster",
    "system:kube-aggregator",
    "system:kube-controller-manager",
    "system:kube-dns",
    "system:kube-scheduler",
    "system:kubelet-api-admin",
    "system:monitoring",
    "system:node",
    "system:node-bootstrapper",
    "system:node-problem-detector",
    "system:node-proxier",
    "system:persistent-volume-provisioner",
    "system:public-info-viewer",
    "system:service-account-issuer-discovery",
    "system:volume-scheduler",
    "system:controller:bootstrap-signer",
    "system:controller:token-cleaner",
    "system:controller:cloud-provider",
    "system::extension-apiserver-authentication-reader",
    "extension-apiserver-authentication-reader",
    "system::leader-locking-kube-controller-manager",
    "system::leader-locking-kube-scheduler",
    "kubeadm:cluster-admins",
    "kubeadm:get-nodes",
    "kubeadm:kubelet-bootstrap",
    "kubeadm:node-autoapprove-bootstrap",
    "kubeadm:node-autoapprove-certificate-rotation",
    "kubeadm:node-proxier",
    "kubeadm:bootstrap-signer-clusterinfo",
    "kubeadm:nodes-kubeadm-config",
    "kubeadm:kubelet-config",
];

/// The controllers that get a `system:controller:<name>` role and binding.
const CONTROLLERS: &[&str] = &[
    "attachdetach-controller",
    "certificate-controller",
    "clusterrole-aggregation-controller",
    "cronjob-controller",
    "daemon-set-controller",
    "deployment-controller",
    "disruption-controller",
    "endpoint-controller",
    "endpointslice-controller",
    "endpointslicemirroring-controller",
    "ephemeral-volume-controller",
    "expand-controller",
    "generic-garbage-collector",
    "horizontal-pod-autoscaler",
    "job-controller",
    "legacy-service-account-token-cleaner",
    "namespace-controller",
    "node-controller",
    "persistent-volume-binder",
    "pod-garbage-collector",
    "pv-protection-controller",
    "pvc-protection-controller",
    "replicaset-controller",
    "replication-controller",
    "resourcequota-controller",
    "root-ca-cert-publisher",
    "route-controller",
    "selinux-warning-controller",
    "service-account-controller",
    "service-cidrs-controller",
    "service-controller",
    "statefulset-controller",
    "ttl-after-finished-controller",
    "ttl-controller",
    "validatingadmissionpolicy-status-controller",
    "volumeattributesclass-protection-controller",
];

/// Whether Kubernetes itself created and maintains this RBAC object.
pub(crate) fn kubernetes_made(meta: &ObjectMeta) -> bool {
    let labelled = meta.labels.as_ref().and_then(|l| l.get(BOOTSTRAP_LABEL.0)).is_some_and(|v| v == BOOTSTRAP_LABEL.1);
    labelled
        || meta.name.as_deref().is_some_and(|n| {
            KUBERNETES_NAMES.contains(&n)
                || n.strip_prefix("system:controller:").is_some_and(|c| CONTROLLERS.contains(&c))
        })
}

/// Groups (and the anonymous user) that stand for everyone, or every workload.
pub(crate) fn broad(subject: &RbacSubject) -> bool {
    match subject.kind.as_str() {
        "Group" => {
            matches!(
                subject.name.as_str(),
                "system:authenticated" | "system:unauthenticated" | "system:serviceaccounts"
            ) || subject.name.starts_with("system:serviceaccounts:")
        }
        "User" => subject.name == "system:anonymous",
        _ => false,
    }
}

/// Every Role and ClusterRole people wrote, with its rules.
pub(crate) fn roles(s: &Snapshot) -> impl Iterator<Item = (&'static str, &ObjectMeta, &[PolicyRule])> {
    s.roles
        .iter()
        .map(|r| ("Role", &r.metadata, r.rules.as_deref().unwrap_or_default()))
        .chain(s.cluster_roles.iter().map(|r| ("ClusterRole", &r.metadata, r.rules.as_deref().unwrap_or_default())))
        .filter(|(_, meta, _)| !kubernetes_made(meta))
}

/// Whether `rule` allows one of `verbs` on one of `resources` (`group/resource`, `resource` in
/// the core group, or `resource/subresource`), wildcards included. A rule naming objects
/// (`resourceNames`) counts only when `named` is true.
pub(crate) fn allows(rule: &PolicyRule, groups: &[&str], resources: &[&str], verbs: &[&str], named: bool) -> bool {
    if !named && rule.resource_names.as_ref().is_some_and(|n| !n.is_empty()) {
        return false;
    }
    let group_ok = rule.api_groups.iter().flatten().any(|g| g == "*" || groups.contains(&g.as_str()));
    let resource_ok = rule.resources.iter().flatten().any(|r| {
        r == "*"
            || resources.contains(&r.as_str())
            || r.strip_suffix("/*").is_some_and(|base| resources.iter().any(|w| w.split('/').next() == Some(base)))
    });
    let verb_ok = rule.verbs.iter().any(|v| v == "*" || verbs.contains(&v.as_str()));
    group_ok && resource_ok && verb_ok
}

/// A check over every Role and ClusterRole people wrote: fails with `message` when any rule
/// `allows` what `grant` describes.
fn role_check(s: &Snapshot, e: &mut Eval<'_>, grant: impl Fn(&PolicyRule) -> bool, message: &'static str) {
    for (kind, meta, rules) in roles(s) {
        e.expect(!rules.iter().any(&grant), Subject::new(RBAC, kind, meta), None, message);
    }
}

pub static CHECKS: &[Check] = &[
    Check {
        id: "security.rbac-broad-groups",
        pillar: S,
        title: "Roles granted to everyone",
        severity: Severity::Critical,
        rationale: "A binding to system:authenticated, system:unauthenticated, system:anonymous or system:serviceaccounts hands the role to every user, every anonymous caller or every Pod in the cluster.",
        remediation: "Bind the role to the specific users, groups or ServiceAccounts that need it.",
        reads: &["RoleBinding", "ClusterRoleBinding"],
        run: Kept(|s, e| {
            // The discovery roles Kubernetes itself grants to everyone are harmless.
            const PUBLIC: &[&str] = &["system:discovery", "system:basic-user", "system:public-info-viewer"];
            let bindings =
                s.role_bindings.iter().map(|b| ("RoleBinding", &b.metadata, &b.role_ref, &b.subjects)).chain(
                    s.cluster_role_bindings
                        .iter()
                        .map(|b| ("ClusterRoleBinding", &b.metadata, &b.role_ref, &b.subjects)),
                );
            for (kind, meta, role, subjects) in bindings {
                if kubernetes_made(meta) || PUBLIC.contains(&role.name.as_str()) {
                    continue;
                }
                let to: Vec<&str> = subjects.iter().flatten().filter(|s| broad(s)).map(|s| s.name.as_str()).collect();
                e.expect(
                    to.is_empty(),
                    Subject::new(RBAC, kind, meta),
                    None,
                    format!("grants {} {} to {}", role.kind, role.name, to.join(", ")),
                );
            }
        }),
    },
    Check {
        id: "security.rbac-pod-exec",
        pillar: S,
        title: "Roles that exec into Pods",
        severity: Severity::High,
        rationale: "pods/exec and pods/attach run commands in any Pod in scope, with its ServiceAccount and its Secrets: a lateral move to whatever those Pods can reach.",
        remediation: "Grant pods/exec and pods/attach only to break-glass roles, ideally scoped to one namespace.",
        reads: &["Role", "ClusterRole"],
        run: Kept(|s, e| {
            role_check(
                s,
                e,
                |r| allows(r, &[""], &["pods/exec", "pods/attach"], &["create", "get"], true),
                "may exec or attach into Pods",
            )
        }),
    },
    Check {
        id: "security.rbac-impersonate",
        pillar: S,
        title: "Roles that impersonate",
        severity: Severity::High,
        rationale: "impersonate lets the holder act as any user, group or ServiceAccount in scope, including cluster administrators.",
        remediation: "Remove impersonate, or restrict it with resourceNames to the identities needed.",
        reads: &["Role", "ClusterRole"],
        run: Kept(|s, e| {
            role_check(
                s,
                e,
                |r| {
                    allows(
                        r,
                        &["", "authentication.k8s.io"],
                        &["users", "groups", "serviceaccounts", "userextras/*", "uids"],
                        &["impersonate"],
                        false,
                    )
                },
                "may impersonate users, groups or ServiceAccounts",
            )
        }),
    },
    Check {
        id: "security.rbac-escalate",
        pillar: S,
        title: "Roles that bind or escalate",
        severity: Severity::High,
        rationale: "bind and escalate on roles let the holder grant permissions it does not have, up to cluster-admin.",
        remediation: "Remove bind and escalate; let an administrator create the bindings.",
        reads: &["Role", "ClusterRole"],
        run: Kept(|s, e| {
            role_check(
                s,
                e,
                |r| allows(r, &["rbac.authorization.k8s.io"], &["roles", "clusterroles"], &["bind", "escalate"], false),
                "may bind or escalate roles",
            )
        }),
    },
    Check {
        id: "security.rbac-workload-create",
        pillar: S,
        title: "Roles that create Pods or workloads",
        severity: Severity::Medium,
        rationale: "Whoever can create a Pod (directly or through a workload) can run it with any ServiceAccount and mount any Secret of the namespace.",
        remediation: "Grant workload creation only to deployment pipelines and operators that need it, namespace by namespace.",
        reads: &["Role", "ClusterRole"],
        run: Kept(|s, e| {
            role_check(
                s,
                e,
                |r| {
                    allows(r, &[""], &["pods", "replicationcontrollers"], &["create"], false)
                        || allows(
                            r,
                            &["apps"],
                            &["deployments", "statefulsets", "daemonsets", "replicasets"],
                            &["create"],
                            false,
                        )
                        || allows(r, &["batch"], &["jobs", "cronjobs"], &["create"], false)
                },
                "may create Pods or workloads",
            )
        }),
    },
    Check {
        id: "security.rbac-admission-webhooks",
        pillar: S,
        title: "Roles that change admission webhooks",
        severity: Severity::High,
        rationale: "Whoever changes a mutating or validating webhook can rewrite or wave through every object the API server admits.",
        remediation: "Leave webhook configurations to the operator that owns them; grant others read access only.",
        reads: &["Role", "ClusterRole"],
        run: Kept(|s, e| {
            role_check(
                s,
                e,
                |r| {
                    allows(
                        r,
                        &["admissionregistration.k8s.io"],
                        &["mutatingwebhookconfigurations", "validatingwebhookconfigurations"],
                        &["create", "update", "patch", "delete", "deletecollection"],
                        false,
                    )
                },
                "may change admission webhook configurations",
            )
        }),
    },
    Check {
        id: "security.rbac-node-proxy",
        pillar: S,
        title: "Roles with nodes/proxy",
        severity: Severity::High,
        rationale: "nodes/proxy reaches the kubelet API directly: it runs commands in any Pod on the node and bypasses audit logging and admission.",
        remediation: "Remove nodes/proxy; monitoring agents can read metrics through nodes/metrics instead.",
        reads: &["Role", "ClusterRole"],
        run: Kept(|s, e| {
            role_check(
                s,
                e,
                |r| allows(r, &[""], &["nodes/proxy"], &["get", "create"], true),
                "may proxy to kubelets (nodes/proxy)",
            )
        }),
    },
    Check {
        id: "security.rbac-delete-events",
        pillar: S,
        title: "Roles that delete Events",
        severity: Severity::Low,
        rationale: "Deleting Events erases the trail an investigation relies on.",
        remediation: "Grant create and patch on events, not delete or deletecollection.",
        reads: &["Role", "ClusterRole"],
        run: Kept(|s, e| {
            role_check(
                s,
                e,
                |r| allows(r, &["", "events.k8s.io"], &["events"], &["delete", "deletecollection"], true),
                "may delete Events",
            )
        }),
    },
];

/// Whether `rule` lets its holder read every Secret in scope (no resourceNames).
pub(crate) fn reads_secrets(rule: &PolicyRule) -> bool {
    allows(rule, &[""], &["secrets"], &["get", "list", "watch"], false)
}

/// Whether a rule has a wildcard verb, resource or API group.
pub(crate) fn wildcard(rule: &PolicyRule) -> bool {
    rule.verbs.iter().any(|v| v == "*")
        || rule.resources.iter().flatten().any(|v| v == "*")
        || rule.api_groups.iter().flatten().any(|v| v == "*")
}

/// Every subject of a binding that is not the built-in administrators' group.
pub(crate) fn granted_to(subjects: Option<&Vec<RbacSubject>>) -> Vec<&RbacSubject> {
    subjects.into_iter().flatten().filter(|s| !(s.kind == "Group" && s.name == "system:masters")).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::CHECKS;
    use crate::testing::*;

    fn role(rules: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:my-operator"}, "rules": rules})
    }

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> serde_json::Value {
        role(json!([{"apiGroups": groups, "resources": resources, "verbs": verbs}]))
    }

    fn binding(kind: &str, role: &str, subject: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": "b", "namespace": "shop"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}, "subjects": [subject]})
    }

    #[test]
    fn every_rbac_check_flags_its_fixture_and_passes_a_good_one() {
        let reader = rule(&[""], &["pods", "configmaps"], &["get", "list"]);
        let group = |name: &str| json!({"kind": "Group", "name": name, "apiGroup": "rbac.authorization.k8s.io"});
        let cases: Vec<Case> = vec![
            (
                "security.rbac-broad-groups",
                vec![binding("ClusterRoleBinding", "edit", group("system:serviceaccounts"))],
                vec![
                    binding("ClusterRoleBinding", "edit", group("team-a")),
                    binding("ClusterRoleBinding", "system:public-info-viewer", group("system:unauthenticated")),
                ],
            ),
            ("security.rbac-pod-exec", vec![rule(&[""], &["pods/exec"], &["create"])], vec![reader.clone()]),
            (
                "security.rbac-impersonate",
                vec![rule(&[""], &["users", "groups"], &["impersonate"])],
                vec![reader.clone()],
            ),
            (
                "security.rbac-escalate",
                vec![rule(&["rbac.authorization.k8s.io"], &["clusterroles"], &["escalate"])],
                vec![reader.clone()],
            ),
            ("security.rbac-workload-create", vec![rule(&["apps"], &["*"], &["create"])], vec![reader.clone()]),
            (
                "security.rbac-admission-webhooks",
                vec![rule(&["admissionregistration.k8s.io"], &["validatingwebhookconfigurations"], &["patch"])],
                vec![rule(&["admissionregistration.k8s.io"], &["validatingwebhookconfigurations"], &["get", "list"])],
            ),
            (
                "security.rbac-node-proxy",
                vec![rule(&["*"], &["nodes/proxy"], &["get"])],
                vec![rule(&[""], &["nodes/metrics"], &["get"])],
            ),
            (
                "security.rbac-delete-events",
                vec![rule(&[""], &["events"], &["*"])],
                vec![rule(&[""], &["events"], &["create", "patch"])],
            ),
        ];
        every_check_flags_and_passes(CHECKS, cases);
    }

    #[test]
    fn what_kubernetes_bootstraps_is_left_alone_and_a_lookalike_is_not() {
        let labelled = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "system:kube-dns", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]});
        assert_eq!(outcome("security.rbac-pod-exec", &[labelled]), (0, 0, 0));
        let lookalike = rule(&[""], &["pods/exec"], &["create"]);
        assert_eq!(outcome("security.rbac-pod-exec", &[lookalike]), (0, 1, 0));
    }
}
