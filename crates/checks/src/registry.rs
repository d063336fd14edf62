//! The list of checks, and the helpers they share.

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use kube9_api::common::{Pillar, Severity};

use crate::checks;
use crate::engine::{Eval, Subject};
use crate::facts::Facts;
use crate::snapshot::{Snapshot, Workload};

/// How a check reads the cluster, which says when a streamed run calls it (see [`crate::stream`]).
/// Every form is a pure function; a whole-snapshot run ([`crate::run`]) calls each once.
#[derive(Clone, Copy)]
pub enum Run {
    /// Judges objects of the kinds a run keeps whole ([`crate::kinds::kept`]: Namespaces, RBAC,
    /// PDBs, HPAs, Ingresses, Argo CD…) one at a time: called once, over those.
    Kept(fn(&Snapshot, &mut Eval<'_>)),
    /// Judges streamed objects (workloads, Pods, Services, ConfigMaps) one at a time, looking
    /// up kept ones beside them: called on every page, over that page's objects alone.
    Each(fn(&Snapshot, &mut Eval<'_>)),
    /// Relates objects to each other (selectors and what they select, targets, backends,
    /// claims): called once at the end, over the kept kinds and the [`Facts`] the streamed
    /// objects left. It must not read the streamed kinds from the snapshot.
    Related(fn(&Snapshot, &Facts, &mut Eval<'_>)),
}

/// One check: a pure function over the snapshot, and what a person needs to act on it.
#[derive(Clone, Copy)]
pub struct Check {
    /// `pillar.name`, stable across releases.
    pub id: &'static str,
    pub pillar: Pillar,
    pub title: &'static str,
    pub severity: Severity,
    /// Why it matters.
    pub rationale: &'static str,
    /// How to fix it.
    pub remediation: &'static str,
    /// The kinds it reads.
    pub reads: &'static [&'static str],
    pub run: Run,
}

impl Check {
    /// Whether it judges live state (status conditions, ready endpoints, restarts, the time
    /// left on a certificate) that manifests do not carry: every check of the cluster's other
    /// operators (checks/operators.rs). Offline such a check is reported as skipped.
    pub fn needs_cluster(&self) -> bool {
        checks::operators::CHECKS.iter().any(|c| c.id == self.id)
    }
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id)
    }
}

static REGISTRY: LazyLock<Vec<Check>> = LazyLock::new(|| {
    [
        checks::security::CHECKS,
        checks::rbac::CHECKS,
        checks::secrets::CHECKS,
        checks::hardening::CHECKS,
        checks::network::CHECKS,
        checks::upgrade::CHECKS,
        checks::reliability::CHECKS,
        checks::performance::CHECKS,
        checks::cost::CHECKS,
        checks::operations::CHECKS,
        checks::sustainability::CHECKS,
        checks::gitops::CHECKS,
        checks::operators::CHECKS,
    ]
    .concat()
});

/// Every check, grouped by pillar.
pub fn registry() -> &'static [Check] {
    &REGISTRY
}

/// The kinds that run Pods: workloads and bare Pods.
pub const POD_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
    "ReplicationController",
    "PodTemplate",
];

/// Something that runs Pods, with the spec a person edits.
pub struct PodOwner<'a> {
    pub subject: Subject<'a>,
    pub spec: &'a PodSpec,
    /// None for a bare Pod.
    pub workload: Option<&'a Workload>,
    pub annotations: Option<&'a std::collections::BTreeMap<String, String>>,
}

/// Every workload's pod template and every bare Pod.
pub fn pod_owners(s: &Snapshot) -> impl Iterator<Item = PodOwner<'_>> {
    static EMPTY: LazyLock<PodSpec> = LazyLock::new(PodSpec::default);
    let workloads = s.workloads.iter().map(|w| PodOwner {
        subject: Subject::new(w.kind.api_version(), w.kind.as_str(), &w.metadata),
        spec: w.template.spec.as_ref().unwrap_or(&EMPTY),
        workload: Some(w),
        annotations: w.template.metadata.as_ref().and_then(|m| m.annotations.as_ref()),
    });
    let pods = s.pods.iter().map(|p| PodOwner {
        subject: Subject::new("v1", "Pod", &p.metadata),
        spec: p.spec.as_ref().unwrap_or(&EMPTY),
        workload: None,
        annotations: p.metadata.annotations.as_ref(),
    });
    workloads.chain(pods)
}

/// Every container of a pod spec, init containers included.
pub fn containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers.iter().flatten().chain(spec.containers.iter())
}

/// Runs `problem` over every container of every Pod owner: one finding per container with a
/// problem, or one pass for an owner whose containers are all fine.
pub fn per_container(
    s: &Snapshot,
    eval: &mut Eval<'_>,
    mut problem: impl FnMut(&PodOwner<'_>, &Container) -> Option<String>,
) {
    for owner in pod_owners(s) {
        per_container_of(&owner, eval, &mut problem);
    }
}

/// `per_container` for one owner.
pub fn per_container_of(
    owner: &PodOwner<'_>,
    eval: &mut Eval<'_>,
    problem: &mut impl FnMut(&PodOwner<'_>, &Container) -> Option<String>,
) {
    let mut failed = false;
    for container in containers(owner.spec) {
        if let Some(message) = problem(owner, container) {
            failed = true;
            eval.fail(owner.subject, Some(&container.name), message);
        }
    }
    if !failed {
        eval.pass(owner.subject);
    }
}

/// Runs `problem` over every Pod owner: a finding when it returns a message.
pub fn per_owner(s: &Snapshot, eval: &mut Eval<'_>, mut problem: impl FnMut(&PodOwner<'_>) -> Option<String>) {
    for owner in pod_owners(s) {
        match problem(&owner) {
            Some(message) => eval.fail(owner.subject, None, message),
            None => eval.pass(owner.subject),
        }
    }
}

/// The ServiceAccount a pod spec runs as: serviceAccountName, or the deprecated
/// serviceAccount the API server still honours, or `default`.
pub fn service_account(spec: &PodSpec) -> &str {
    spec.service_account_name
        .as_deref()
        .or(spec.service_account.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
}

/// Whether the image reference pins a version (a tag other than `latest`, or a digest).
pub fn image_pinned(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag != "latest" && !tag.is_empty(),
        None => false,
    }
}
