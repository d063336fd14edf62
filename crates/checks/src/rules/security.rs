//! Security: what a compromised or careless workload could do to the node and the cluster.

use k8s_openapi::api::core::v1::Container;
use kube9_api::common::{Pillar, Severity};

use crate::check::Run::{Each, Kept, Related};
use crate::check::{Check, per_container, per_owner};
use crate::pods::{POD_KINDS, SecuritySettings, service_account};
use crate::rules::{rbac, secrets};
use crate::subject::{Subject, system_namespace};

const S: Pillar = Pillar::Security;

pub static CHECKS: &[Check] = &[
    Check {
        id: "security.privileged",
        pillar: S,
        title: "Privileged containers",
        severity: Severity::Critical,
        rationale: "A privileged container has every capability and all host devices: escaping to the node is trivial.",
        remediation: "Remove securityContext.privileged, or set it to false; grant only the capabilities needed.",
        reads: POD_KINDS,
        run: Each(|s, e| per_container(s, e, |_, c| sc_flag(c, |sc| sc.privileged).then(|| "runs privileged".into()))),
    },
    Check {
        id: "security.privilege-escalation",
        pillar: S,
        title: "Privilege escalation allowed",
        severity: Severity::High,
        rationale: "Without allowPrivilegeEscalation: false, setuid binaries can gain more privileges than the process started with.",
        remediation: "Set securityContext.allowPrivilegeEscalation: false on every container.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let denied = c.security_context.as_ref().and_then(|sc| sc.allow_privilege_escalation) == Some(false);
                (!denied).then(|| "allowPrivilegeEscalation is not false".into())
            })
        }),
    },
    Check {
        id: "security.run-as-non-root",
        pillar: S,
        title: "Containers may run as root",
        severity: Severity::High,
        rationale: "A process running as UID 0 owns the container and is one kernel bug away from owning the node.",
        remediation: "Set securityContext.runAsNonRoot: true (pod or container) and a non-zero runAsUser.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |owner, c| {
                let settings = SecuritySettings::of(owner.spec, c);
                let (non_root, uid) = (settings.run_as_non_root(), settings.run_as_user());
                (non_root != Some(true) && uid.is_none_or(|u| u == 0))
                    .then(|| "neither runAsNonRoot: true nor a non-zero runAsUser is set".into())
            })
        }),
    },
    Check {
        id: "security.root-user",
        pillar: S,
        title: "Containers set to run as UID 0",
        severity: Severity::High,
        rationale: "runAsUser: 0 asks for root explicitly, defeating an image's non-root user.",
        remediation: "Use a non-zero runAsUser, or remove it and rely on the image's non-root USER.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |owner, c| {
                let uid = SecuritySettings::of(owner.spec, c).run_as_user();
                (uid == Some(0)).then(|| "runAsUser is 0".into())
            })
        }),
    },
    Check {
        id: "security.read-only-root-filesystem",
        pillar: S,
        title: "Writable root filesystem",
        severity: Severity::Medium,
        rationale: "An attacker who can write the container's filesystem can drop tools and change binaries.",
        remediation: "Set securityContext.readOnlyRootFilesystem: true; mount an emptyDir where the app must write.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                (!sc_flag(c, |sc| sc.read_only_root_filesystem)).then(|| "readOnlyRootFilesystem is not true".into())
            })
        }),
    },
    Check {
        id: "security.drop-all-capabilities",
        pillar: S,
        title: "Capabilities not dropped",
        severity: Severity::Medium,
        rationale: "The default capability set includes NET_RAW and others most applications never need.",
        remediation: "Set securityContext.capabilities.drop: [\"ALL\"] and add back only what is needed.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let drops_all = c
                    .security_context
                    .as_ref()
                    .and_then(|sc| sc.capabilities.as_ref())
                    .and_then(|caps| caps.drop.as_ref())
                    .is_some_and(|d| d.iter().any(|c| c.eq_ignore_ascii_case("ALL")));
                (!drops_all).then(|| "capabilities.drop does not include ALL".into())
            })
        }),
    },
    Check {
        id: "security.dangerous-capabilities",
        pillar: S,
        title: "Dangerous capabilities added",
        severity: Severity::High,
        rationale: "SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE and similar capabilities allow escaping or spying on the node.",
        remediation: "Remove the capability from securityContext.capabilities.add, or isolate the workload on dedicated nodes.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            const DANGEROUS: &[&str] =
                &["ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH", "BPF", "SYS_RAWIO"];
            per_container(s, e, |_, c| {
                let added = c
                    .security_context
                    .as_ref()
                    .and_then(|sc| sc.capabilities.as_ref())
                    .and_then(|caps| caps.add.clone())
                    .unwrap_or_default();
                let bad: Vec<String> = added
                    .into_iter()
                    .filter(|a| DANGEROUS.contains(&a.trim_start_matches("CAP_").to_uppercase().as_str()))
                    .collect();
                (!bad.is_empty()).then(|| format!("adds {}", bad.join(", ")))
            })
        }),
    },
    Check {
        id: "security.host-network",
        pillar: S,
        title: "Host network",
        severity: Severity::High,
        rationale: "A Pod on the host network can reach every service bound to the node and sniff its traffic.",
        remediation: "Remove hostNetwork: true; expose the workload through a Service instead.",
        reads: POD_KINDS,
        run: Each(|s, e| per_owner(s, e, |o| o.spec.host_network.unwrap_or(false).then(|| "uses hostNetwork".into()))),
    },
    Check {
        id: "security.host-pid",
        pillar: S,
        title: "Host PID namespace",
        severity: Severity::High,
        rationale: "Sharing the host's PID namespace exposes every process on the node to signals and /proc.",
        remediation: "Remove hostPID: true.",
        reads: POD_KINDS,
        run: Each(|s, e| per_owner(s, e, |o| o.spec.host_pid.unwrap_or(false).then(|| "uses hostPID".into()))),
    },
    Check {
        id: "security.host-ipc",
        pillar: S,
        title: "Host IPC namespace",
        severity: Severity::High,
        rationale: "Sharing the host's IPC namespace exposes shared memory of every process on the node.",
        remediation: "Remove hostIPC: true.",
        reads: POD_KINDS,
        run: Each(|s, e| per_owner(s, e, |o| o.spec.host_ipc.unwrap_or(false).then(|| "uses hostIPC".into()))),
    },
    Check {
        id: "security.host-path",
        pillar: S,
        title: "hostPath volumes",
        severity: Severity::High,
        rationale: "A hostPath volume gives the Pod the node's files; a writable one is a direct path to the node.",
        remediation: "Use a PersistentVolumeClaim, ConfigMap, Secret or emptyDir instead of hostPath.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_owner(s, e, |o| {
                let paths: Vec<String> = o
                    .spec
                    .volumes
                    .iter()
                    .flatten()
                    .filter_map(|v| v.host_path.as_ref().map(|h| format!("{} ({})", v.name, h.path)))
                    .collect();
                (!paths.is_empty()).then(|| format!("mounts hostPath volume {}", paths.join(", ")))
            })
        }),
    },
    Check {
        id: "security.host-port",
        pillar: S,
        title: "Host ports",
        severity: Severity::Medium,
        rationale: "hostPort binds the node's address, bypassing NetworkPolicy and limiting scheduling.",
        remediation: "Remove hostPort and use a Service (NodePort or LoadBalancer) when outside access is needed.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let ports: Vec<String> =
                    c.ports.iter().flatten().filter_map(|p| p.host_port).map(|p| p.to_string()).collect();
                (!ports.is_empty()).then(|| format!("binds host port {}", ports.join(", ")))
            })
        }),
    },
    Check {
        id: "security.seccomp",
        pillar: S,
        title: "No seccomp profile",
        severity: Severity::Medium,
        rationale: "Without a seccomp profile every system call is allowed, including those behind most container escapes.",
        remediation: "Set securityContext.seccompProfile.type: RuntimeDefault on the Pod.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |owner, c| {
                let profile = SecuritySettings::of(owner.spec, c).seccomp_profile().map(|p| p.type_.as_str());
                let legacy = owner
                    .annotations
                    .and_then(|a| a.get("seccomp.security.alpha.kubernetes.io/pod"))
                    .map(|v| if v == "unconfined" { "Unconfined" } else { "RuntimeDefault" });
                match profile.or(legacy) {
                    Some("RuntimeDefault" | "Localhost") => None,
                    Some(other) => Some(format!("seccomp profile is {other}")),
                    None => Some("no seccomp profile".into()),
                }
            })
        }),
    },
    Check {
        id: "security.secret-in-env",
        pillar: S,
        title: "Secrets written into environment variables",
        severity: Severity::High,
        rationale: "A literal password, token or key in a manifest is readable by anyone who can read the workload, and ends up in Git. Judged by the value (known key formats, private keys, random-looking tokens) and by a name that says secret; names that only name one (..._NAME, ..._FILE, ..._PATH, ..._ID, ..._DIR) are not secrets.",
        remediation: "Move the value into a Secret and reference it with valueFrom.secretKeyRef.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let found: Vec<String> = c
                    .env
                    .iter()
                    .flatten()
                    .filter_map(|v| {
                        let why = secrets::judge(&v.name, v.value.as_deref()?)?;
                        Some(format!("{} ({why})", v.name))
                    })
                    .collect();
                (!found.is_empty()).then(|| format!("literal secret in {}", found.join(", ")))
            })
        }),
    },
    Check {
        id: "security.service-account-token",
        pillar: S,
        title: "API token mounted without need",
        severity: Severity::Low,
        rationale: "Every Pod gets a token for the Kubernetes API unless told otherwise; a stolen one acts as its ServiceAccount.",
        remediation: "Set automountServiceAccountToken: false on Pods that do not call the Kubernetes API.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_owner(s, e, |o| {
                (service_account(o.spec) == "default" && o.spec.automount_service_account_token != Some(false))
                    .then(|| "mounts the default ServiceAccount's API token".into())
            })
        }),
    },
    Check {
        id: "security.default-service-account",
        pillar: S,
        title: "Default ServiceAccount used",
        severity: Severity::Low,
        rationale: "Workloads sharing the namespace's default ServiceAccount share whatever it is ever granted.",
        remediation: "Create a ServiceAccount per workload and set serviceAccountName.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_owner(s, e, |o| {
                (service_account(o.spec) == "default").then(|| "runs as the default ServiceAccount".into())
            })
        }),
    },
    Check {
        id: "security.proc-mount",
        pillar: S,
        title: "Unmasked /proc",
        severity: Severity::High,
        rationale: "procMount: Unmasked exposes kernel interfaces the runtime normally hides.",
        remediation: "Remove securityContext.procMount or set it to Default.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let mount = c.security_context.as_ref().and_then(|sc| sc.proc_mount.as_deref());
                (mount == Some("Unmasked")).then(|| "procMount is Unmasked".into())
            })
        }),
    },
    Check {
        id: "security.unsafe-sysctls",
        pillar: S,
        title: "Unsafe sysctls",
        severity: Severity::High,
        rationale: "Sysctls outside the namespaced safe set change the node's kernel for every Pod on it.",
        remediation: "Remove the sysctl, or run the workload on dedicated, tainted nodes.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            const SAFE: &[&str] = &[
                "kernel.shm_rmid_forced",
                "net.ipv4.ip_local_port_range",
                "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range",
                "net.ipv4.ip_unprivileged_port_start",
            ];
            per_owner(s, e, |o| {
                let unsafe_ones: Vec<String> = o
                    .spec
                    .security_context
                    .as_ref()
                    .and_then(|p| p.sysctls.as_ref())
                    .into_iter()
                    .flatten()
                    .filter(|s| !SAFE.contains(&s.name.as_str()))
                    .map(|s| s.name.clone())
                    .collect();
                (!unsafe_ones.is_empty()).then(|| format!("sets {}", unsafe_ones.join(", ")))
            })
        }),
    },
    Check {
        id: "security.cluster-admin-binding",
        pillar: S,
        title: "cluster-admin granted",
        severity: Severity::Critical,
        rationale: "cluster-admin can do anything to any object (a RoleBinding to it, anything in the namespace); a binding to a user, group or ServiceAccount hands that over. Only the administrators' group system:masters holds it by design.",
        remediation: "Bind a Role or ClusterRole with only the verbs and resources needed instead.",
        reads: &["ClusterRoleBinding", "RoleBinding"],
        run: Kept(|s, e| {
            let bindings = s
                .cluster_role_bindings
                .iter()
                .map(|b| ("ClusterRoleBinding", &b.metadata, &b.role_ref, b.subjects.as_ref()))
                .chain(s.role_bindings.iter().map(|b| ("RoleBinding", &b.metadata, &b.role_ref, b.subjects.as_ref())));
            for (kind, meta, role, subjects) in bindings {
                if rbac::kubernetes_made(meta) {
                    continue;
                }
                let to = rbac::granted_to(subjects);
                let names: Vec<String> = to
                    .iter()
                    .map(|s| {
                        let everyone = if rbac::broad(s) { " (everyone in it)" } else { "" };
                        format!("{} {}{everyone}", s.kind, s.name)
                    })
                    .collect();
                e.expect(
                    role.kind != "ClusterRole" || role.name != "cluster-admin" || to.is_empty(),
                    Subject::new("rbac.authorization.k8s.io/v1", kind, meta),
                    None,
                    format!("grants cluster-admin to {}", names.join(", ")),
                );
            }
        }),
    },
    Check {
        id: "security.rbac-wildcards",
        pillar: S,
        title: "RBAC rules with wildcards",
        severity: Severity::High,
        rationale: "A '*' in verbs, resources or API groups grants access to things that do not exist yet, including future CRDs.",
        remediation: "List the verbs, resources and API groups explicitly.",
        reads: &["Role", "ClusterRole"],
        run: Kept(|s, e| {
            for (kind, meta, rules) in rbac::roles(s) {
                let wild = rules.iter().any(rbac::wildcard);
                e.expect(!wild, Subject::new("rbac.authorization.k8s.io/v1", kind, meta), None, "has a rule with '*'");
            }
        }),
    },
    Check {
        id: "security.rbac-secret-readers",
        pillar: S,
        title: "Roles that read Secrets",
        severity: Severity::Medium,
        rationale: "Reading Secrets usually means reading every credential in the namespace (or cluster); verbs or resources of '*' include it.",
        remediation: "Limit get to the named Secrets needed (resourceNames) and avoid list and watch.",
        reads: &["Role", "ClusterRole"],
        run: Kept(|s, e| {
            for (kind, meta, rules) in rbac::roles(s) {
                e.expect(
                    !rules.iter().any(rbac::reads_secrets),
                    Subject::new("rbac.authorization.k8s.io/v1", kind, meta),
                    None,
                    "can read every Secret in its scope",
                );
            }
        }),
    },
    Check {
        id: "security.network-policy",
        pillar: S,
        title: "Namespaces without NetworkPolicy",
        severity: Severity::Medium,
        rationale: "Without a NetworkPolicy every Pod accepts traffic from every other Pod in the cluster.",
        remediation: "Add a default-deny NetworkPolicy to the namespace, then allow the traffic each workload needs.",
        reads: &["Namespace", "NetworkPolicy", "Deployment", "StatefulSet", "DaemonSet", "Pod"],
        run: Related(|s, f, e| {
            for ns in &s.namespaces {
                let Some(name) = ns.metadata.name.as_deref() else { continue };
                if !f.in_use(name) || system_namespace(name) {
                    continue;
                }
                let covered = s.network_policies.iter().any(|p| p.metadata.namespace.as_deref() == Some(name));
                e.expect(
                    covered,
                    Subject::new("v1", "Namespace", &ns.metadata),
                    None,
                    "runs Pods and has no NetworkPolicy",
                );
            }
        }),
    },
    Check {
        id: "security.ingress-tls",
        pillar: S,
        title: "Ingress without TLS",
        severity: Severity::Medium,
        rationale: "An Ingress without TLS serves its hosts over plain HTTP.",
        remediation: "Add spec.tls with a certificate Secret (cert-manager can issue one).",
        reads: &["Ingress"],
        run: Kept(|s, e| {
            for i in &s.ingresses {
                let tls = i.spec.as_ref().and_then(|s| s.tls.as_ref()).is_some_and(|t| !t.is_empty());
                e.expect(tls, Subject::new("networking.k8s.io/v1", "Ingress", &i.metadata), None, "serves plain HTTP");
            }
        }),
    },
];

fn sc_flag(c: &Container, get: impl Fn(&k8s_openapi::api::core::v1::SecurityContext) -> Option<bool>) -> bool {
    c.security_context.as_ref().and_then(get).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::CHECKS;
    use crate::testing::*;

    fn with_pod(extra: serde_json::Value) -> serde_json::Value {
        deployment(pod_spec(extra), json!({}))
    }

    fn rbac(kind: &str, rules: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
               "metadata": {"name": "app-reader", "namespace": "shop"}, "rules": rules})
    }

    #[test]
    fn every_security_check_flags_its_fixture_and_passes_a_good_one() {
        let good = deployment_with_container(json!({}));
        let cases: Vec<Case> = vec![
            (
                "security.privileged",
                vec![deployment_with_container(json!({"securityContext": {"privileged": true}}))],
                vec![good.clone()],
            ),
            (
                "security.privilege-escalation",
                vec![deployment_with_container(json!({"securityContext": {"allowPrivilegeEscalation": true}}))],
                vec![good.clone()],
            ),
            (
                "security.run-as-non-root",
                vec![deployment(
                    pod_spec(
                        json!({"securityContext": {"runAsNonRoot": false, "runAsUser": null}, "containers": [container(json!({"securityContext": {"runAsNonRoot": null}}))]}),
                    ),
                    json!({}),
                )],
                vec![good.clone()],
            ),
            (
                "security.root-user",
                vec![deployment_with_container(json!({"securityContext": {"runAsUser": 0}}))],
                vec![good.clone()],
            ),
            (
                "security.read-only-root-filesystem",
                vec![deployment_with_container(json!({"securityContext": {"readOnlyRootFilesystem": false}}))],
                vec![good.clone()],
            ),
            (
                "security.drop-all-capabilities",
                vec![deployment_with_container(json!({"securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}))],
                vec![good.clone()],
            ),
            (
                "security.dangerous-capabilities",
                vec![deployment_with_container(json!({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}))],
                vec![deployment_with_container(
                    json!({"securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}}),
                )],
            ),
            ("security.host-network", vec![with_pod(json!({"hostNetwork": true}))], vec![good.clone()]),
            ("security.host-pid", vec![with_pod(json!({"hostPID": true}))], vec![good.clone()]),
            ("security.host-ipc", vec![with_pod(json!({"hostIPC": true}))], vec![good.clone()]),
            (
                "security.host-path",
                vec![with_pod(json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}))],
                vec![with_pod(json!({"volumes": [{"name": "tmp", "emptyDir": {}}]}))],
            ),
            (
                "security.host-port",
                vec![deployment_with_container(json!({"ports": [{"containerPort": 80, "hostPort": 80}]}))],
                vec![deployment_with_container(json!({"ports": [{"containerPort": 80}]}))],
            ),
            (
                "security.seccomp",
                vec![with_pod(json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}))],
                vec![good.clone()],
            ),
            (
                "security.secret-in-env",
                vec![deployment_with_container(json!({"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}))],
                vec![deployment_with_container(
                    json!({"env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}, {"name": "LOG_LEVEL", "value": "info"}]}),
                )],
            ),
            (
                "security.service-account-token",
                vec![with_pod(json!({"serviceAccountName": null, "automountServiceAccountToken": null}))],
                vec![good.clone()],
            ),
            (
                "security.default-service-account",
                vec![with_pod(json!({"serviceAccountName": "default"}))],
                vec![good.clone()],
            ),
            (
                "security.proc-mount",
                vec![deployment_with_container(json!({"securityContext": {"procMount": "Unmasked"}}))],
                vec![good.clone()],
            ),
            (
                "security.unsafe-sysctls",
                vec![with_pod(json!({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]}}))],
                vec![with_pod(
                    json!({"securityContext": {"sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}]}}),
                )],
            ),
            (
                "security.cluster-admin-binding",
                vec![
                    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ci-admin"},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                         "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]}),
                ],
                vec![
                    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "ci-view"},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                         "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]}),
                ],
            ),
            (
                "security.rbac-wildcards",
                vec![rbac("Role", json!([{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]))],
                vec![rbac("Role", json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]))],
            ),
            (
                "security.rbac-secret-readers",
                vec![rbac("ClusterRole", json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]))],
                vec![rbac(
                    "ClusterRole",
                    json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["app-tls"], "verbs": ["get"]}]),
                )],
            ),
            (
                "security.network-policy",
                vec![namespace(json!({})), good.clone()],
                vec![
                    namespace(json!({})),
                    good.clone(),
                    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "shop"}, "spec": {"podSelector": {}}}),
                ],
            ),
            (
                "security.ingress-tls",
                vec![
                    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"rules": [{"host": "shop.example"}]}}),
                ],
                vec![
                    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"tls": [{"hosts": ["shop.example"], "secretName": "tls"}]}}),
                ],
            ),
        ];
        every_check_flags_and_passes(CHECKS, cases);
    }
}
