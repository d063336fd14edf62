//! Security, hardening of Pods beyond the basics: identities, capabilities, kernel security
//! modules, the node's filesystem and runtime, supply chain, and known dangerous tools.

use k8s_openapi::api::core::v1::PodSpec;
use kube9_api::common::{Pillar, Severity};

use crate::check::Run::Each;
use crate::check::{Check, per_container, per_owner};
use crate::pods::{POD_KINDS, SecuritySettings};

const S: Pillar = Pillar::Security;

/// The UID and GID from which peers (kube-score, checkov, kube-linter) consider a user unlikely
/// to collide with a host account.
const HIGH_ID: i64 = 10000;

/// SELinux types the Pod Security baseline allows.
const SELINUX_TYPES: &[&str] = &["container_t", "container_init_t", "container_kvm_t", "container_engine_t"];

/// Paths of (or directories holding) a container runtime's API socket.
const RUNTIME_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/var/run/dockershim.sock",
    "/var/run/podman/podman.sock",
    "/run/podman/podman.sock",
    "/var/run",
    "/run",
    "/var/run/docker",
    "/var/run/containerd",
    "/run/containerd",
    "/var/run/crio",
    "/run/crio",
    "/var/lib/docker",
    "/var/lib/containerd",
];

/// The hostPath volumes of a pod spec: (volume name, path).
fn host_paths(spec: &PodSpec) -> impl Iterator<Item = (&str, &str)> {
    spec.volumes
        .iter()
        .flatten()
        .filter_map(|v| v.host_path.as_ref().map(|h| (v.name.as_str(), h.path.trim_end_matches('/'))))
}

pub static CHECKS: &[Check] = &[
    Check {
        id: "security.run-as-high-uid",
        pillar: S,
        title: "User and group IDs below 10000",
        severity: Severity::Low,
        rationale: "A container UID or GID below 10000 may match a real account on the node (or a well-known system one); after an escape it acts as that account.",
        remediation: "Set securityContext.runAsUser and runAsGroup to 10000 or more (pod or container), and build the image for it.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |owner, c| {
                let low = |id: Option<i64>| id.is_none_or(|id| id < HIGH_ID);
                let settings = SecuritySettings::of(owner.spec, c);
                match (low(settings.run_as_user()), low(settings.run_as_group())) {
                    (false, false) => None,
                    (true, false) => Some("runAsUser is not set to 10000 or more".into()),
                    (false, true) => Some("runAsGroup is not set to 10000 or more".into()),
                    (true, true) => Some("runAsUser and runAsGroup are not set to 10000 or more".into()),
                }
            })
        }),
    },
    Check {
        id: "security.root-group",
        pillar: S,
        title: "Root group",
        severity: Severity::Medium,
        rationale: "GID 0 (runAsGroup, fsGroup or a supplemental group) gives the process the root group's access to files on shared volumes and, after an escape, on the node.",
        remediation: "Use a non-zero runAsGroup and fsGroup, and leave 0 out of supplementalGroups.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |owner, c| {
                let pod = owner.spec.security_context.as_ref();
                let zero = SecuritySettings::of(owner.spec, c).run_as_group() == Some(0)
                    || pod.and_then(|p| p.fs_group) == Some(0)
                    || pod.and_then(|p| p.supplemental_groups.as_ref()).is_some_and(|g| g.contains(&0));
                zero.then(|| "runs with the root group (GID 0)".into())
            })
        }),
    },
    Check {
        id: "security.added-capabilities",
        pillar: S,
        title: "Capabilities added",
        severity: Severity::Medium,
        rationale: "Every capability added beyond NET_BIND_SERVICE widens what a compromised process can do to the kernel (the Pod Security restricted profile allows only that one).",
        remediation: "Remove the capability from securityContext.capabilities.add, or justify it with an exemption.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let added: Vec<&str> = c
                    .security_context
                    .as_ref()
                    .and_then(|sc| sc.capabilities.as_ref())
                    .and_then(|caps| caps.add.as_ref())
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .filter(|a| !a.trim_start_matches("CAP_").eq_ignore_ascii_case("NET_BIND_SERVICE"))
                    .collect();
                (!added.is_empty()).then(|| format!("adds {}", added.join(", ")))
            })
        }),
    },
    Check {
        id: "security.unconfined-profiles",
        pillar: S,
        title: "AppArmor or SELinux disabled",
        severity: Severity::High,
        rationale: "An unconfined AppArmor profile, or an SELinux type outside the container types (spc_t, unconfined_t) or a custom SELinux user or role, switches off the kernel's confinement of the container. (Seccomp is security.seccomp.)",
        remediation: "Remove the unconfined AppArmor profile (annotation or appArmorProfile) and the seLinuxOptions override; use RuntimeDefault.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |owner, c| {
                let settings = SecuritySettings::of(owner.spec, c);
                let annotation = owner
                    .annotations
                    .and_then(|a| a.get(&format!("container.apparmor.security.beta.kubernetes.io/{}", c.name)))
                    .is_some_and(|v| v == "unconfined");
                let apparmor = settings.app_armor_profile().is_some_and(|p| p.type_ == "Unconfined");
                if annotation || apparmor {
                    return Some("AppArmor profile is unconfined".into());
                }
                let selinux = settings.se_linux_options()?;
                if let Some(t) = selinux.type_.as_deref().filter(|t| !t.is_empty() && !SELINUX_TYPES.contains(t)) {
                    return Some(format!("SELinux type is {t}"));
                }
                (selinux.user.as_deref().is_some_and(|u| !u.is_empty())
                    || selinux.role.as_deref().is_some_and(|r| !r.is_empty()))
                .then(|| "sets a custom SELinux user or role".into())
            })
        }),
    },
    Check {
        id: "security.windows-host-process",
        pillar: S,
        title: "Windows HostProcess containers",
        severity: Severity::Critical,
        rationale: "A Windows HostProcess container runs directly on the node as a host process, with the node's network and filesystem: the Windows equivalent of privileged.",
        remediation: "Remove windowsOptions.hostProcess, or run such node agents only in a namespace reserved for them.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |owner, c| {
                let host_process = SecuritySettings::of(owner.spec, c).windows_host_process();
                (host_process == Some(true)).then(|| "runs as a Windows HostProcess container".into())
            })
        }),
    },
    Check {
        id: "security.host-path-writable",
        pillar: S,
        title: "Writable hostPath mounts",
        severity: Severity::High,
        rationale: "A hostPath mounted read-write lets the container change the node's files: plant binaries, edit the kubelet's configuration, or fill the disk.",
        remediation: "Mount the hostPath with readOnly: true, or replace it with a volume that is not the node's filesystem.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |owner, c| {
                let writable: Vec<String> = c
                    .volume_mounts
                    .iter()
                    .flatten()
                    .filter(|m| m.read_only != Some(true))
                    .filter_map(|m| {
                        host_paths(owner.spec)
                            .find(|(v, _)| *v == m.name)
                            .map(|(_, p)| format!("{p} at {}", m.mount_path))
                    })
                    .collect();
                (!writable.is_empty()).then(|| format!("mounts the node's {} read-write", writable.join(", ")))
            })
        }),
    },
    Check {
        id: "security.container-runtime-socket",
        pillar: S,
        title: "Container runtime socket mounted",
        severity: Severity::Critical,
        rationale: "The container runtime's socket (Docker, containerd, CRI-O) starts containers on the node at will: privileged ones, with the node's root filesystem. Mounting it is root on the node.",
        remediation: "Remove the hostPath; build images with a daemonless builder (BuildKit rootless, kaniko, buildah) and read container data through the Kubernetes API.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_owner(s, e, |o| {
                let sockets: Vec<&str> =
                    host_paths(o.spec).map(|(_, p)| p).filter(|p| RUNTIME_SOCKETS.contains(p)).collect();
                (!sockets.is_empty()).then(|| format!("mounts the container runtime's socket ({})", sockets.join(", ")))
            })
        }),
    },
    Check {
        id: "security.image-digest",
        pillar: S,
        title: "Images not pinned by digest",
        severity: Severity::Low,
        rationale: "A tag can be moved to other content by whoever controls the registry; only a digest names exactly the image that was reviewed and scanned.",
        remediation: "Refer to images as name@sha256:<digest> (tools such as Renovate keep digests current).",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let image = c.image.as_deref().unwrap_or_default();
                (!image.contains("@sha256:")).then(|| format!("image {image} is not pinned by digest"))
            })
        }),
    },
    Check {
        id: "security.tiller",
        pillar: S,
        title: "Helm 2 Tiller",
        severity: Severity::High,
        rationale: "Helm 2's Tiller serves an unauthenticated gRPC API inside the cluster, usually with cluster-admin rights: any Pod that reaches it controls the cluster. Helm 2 is end of life.",
        remediation: "Remove Tiller and move the releases to Helm 3, which has no in-cluster component.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let image = c.image.as_deref().unwrap_or_default();
                let repository = image
                    .split(['@'])
                    .next()
                    .unwrap_or_default()
                    .rsplit_once(':')
                    .map_or(image, |(r, t)| if t.contains('/') { image } else { r });
                repository
                    .rsplit('/')
                    .next()
                    .is_some_and(|name| name == "tiller")
                    .then(|| format!("runs Tiller ({image})"))
            })
        }),
    },
    Check {
        id: "security.dashboard-skip-login",
        pillar: S,
        title: "Kubernetes Dashboard that allows skipping login",
        severity: Severity::High,
        rationale: "With --enable-skip-login the Dashboard offers a Skip button that acts with the Dashboard's own ServiceAccount: anyone who reaches it gets those rights.",
        remediation: "Remove --enable-skip-login (and --enable-insecure-login); require a bearer token or an authenticating proxy.",
        reads: POD_KINDS,
        run: Each(|s, e| {
            per_container(s, e, |_, c| {
                let skip = c
                    .args
                    .iter()
                    .flatten()
                    .chain(c.command.iter().flatten())
                    .any(|a| a == "--enable-skip-login" || a == "--enable-skip-login=true");
                skip.then(|| "runs with --enable-skip-login".into())
            })
        }),
    },
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::CHECKS;
    use crate::testing::*;

    fn with_pod(extra: serde_json::Value) -> serde_json::Value {
        deployment(pod_spec(extra), json!({}))
    }

    #[test]
    fn every_hardening_check_flags_its_fixture_and_passes_a_good_one() {
        let good = deployment_with_container(json!({}));
        let mount = |read_only: bool| {
            with_pod(json!({"volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}],
                            "containers": [container(json!({"volumeMounts": [{"name": "logs", "mountPath": "/logs", "readOnly": read_only}]}))]}))
        };
        let cases: Vec<Case> = vec![
            (
                "security.run-as-high-uid",
                vec![deployment_with_container(json!({"securityContext": {"runAsUser": 1000}}))],
                vec![good.clone()],
            ),
            ("security.root-group", vec![with_pod(json!({"securityContext": {"fsGroup": 0}}))], vec![good.clone()]),
            (
                "security.added-capabilities",
                vec![deployment_with_container(json!({"securityContext": {"capabilities": {"add": ["NET_RAW"]}}}))],
                vec![deployment_with_container(
                    json!({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}),
                )],
            ),
            (
                "security.unconfined-profiles",
                vec![
                    deployment_with_container(json!({"securityContext": {"seLinuxOptions": {"type": "spc_t"}}})),
                    deployment(
                        pod_spec(json!({})),
                        json!({"spec": {"template": {"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}}}}),
                    ),
                    with_pod(json!({"securityContext": {"appArmorProfile": {"type": "Unconfined"}}})),
                ],
                vec![
                    good.clone(),
                    deployment_with_container(
                        json!({"securityContext": {"seLinuxOptions": {"level": "s0:c123,c456"}}}),
                    ),
                ],
            ),
            (
                "security.windows-host-process",
                vec![with_pod(
                    json!({"securityContext": {"windowsOptions": {"hostProcess": true}}, "hostNetwork": true}),
                )],
                vec![good.clone()],
            ),
            ("security.host-path-writable", vec![mount(false)], vec![mount(true), good.clone()]),
            (
                "security.container-runtime-socket",
                vec![with_pod(json!({"volumes": [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]}))],
                vec![with_pod(json!({"volumes": [{"name": "logs", "hostPath": {"path": "/var/log"}}]}))],
            ),
            (
                "security.image-digest",
                vec![deployment_with_container(json!({"image": "shop/web:1.2"}))],
                vec![deployment_with_container(json!({"image": "shop/web@sha256:0123456789abcdef"}))],
            ),
            (
                "security.tiller",
                vec![deployment_with_container(json!({"image": "gcr.io/kubernetes-helm/tiller:v2.16.1"}))],
                vec![deployment_with_container(json!({"image": "example/tiller-docs:1"}))],
            ),
            (
                "security.dashboard-skip-login",
                vec![deployment_with_container(
                    json!({"args": ["--auto-generate-certificates", "--enable-skip-login"]}),
                )],
                vec![deployment_with_container(json!({"args": ["--auto-generate-certificates"]}))],
            ),
        ];
        every_check_flags_and_passes(CHECKS, cases);
    }
}
