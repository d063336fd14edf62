//! What a check is, and how it records what it finds: the object it judged ([`Subject`]), passed
//! or failed ([`Eval`]), with failures kept small ([`Hit`]) and exemptions applied as it goes.

use std::borrow::Cow;
use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Container;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube9_api::common::{Pillar, Severity};

use crate::facts::Facts;
use crate::options::Options;
use crate::pods::{PodOwner, containers, pod_owners};
use crate::snapshot::Snapshot;
use crate::subject::{EXEMPT_ANNOTATION, Subject, display_name, source_of};

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
    /// The pillar's name in ids and exemptions: what comes before the first dot.
    pub fn pillar_name(&self) -> &'static str {
        self.id.split('.').next().unwrap_or_default()
    }
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id)
    }
}

/// One object a check flagged, kept small: a large cluster has tens of thousands, so the
/// check's own texts (id, remediation) are not copied into each, and fixed messages are not
/// allocated. `Found::finding` makes the full API `Finding` when one is needed.
#[derive(Clone, Debug)]
pub struct Hit {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: Option<String>,
    /// The name, or `<generateName>*` for an object that only has a generateName.
    pub name: String,
    /// Where the offline reader found the object (its uid is `kube9.io/source/<n>`); None in
    /// the cluster, where the object itself is the place.
    pub source: Option<u32>,
    /// The container the finding is about, when it is about one.
    pub container: Option<String>,
    pub message: Cow<'static, str>,
}

impl Hit {
    /// The order of objects within a check: by namespace, name, kind, container and message
    /// (and, offline, where the object was read), so that every run of the same objects lists
    /// them alike however they were paged.
    pub fn order(&self, other: &Hit) -> Ordering {
        fn key(h: &Hit) -> (Option<&str>, &str, &str, Option<&str>, &str, Option<u32>) {
            (h.namespace.as_deref(), h.name.as_str(), h.kind, h.container.as_deref(), h.message.as_ref(), h.source)
        }
        key(self).cmp(&key(other))
    }
}

/// The outcome of one check.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub check: &'static Check,
    pub passed: u32,
    pub failed: Vec<Hit>,
    pub exempted: Vec<Hit>,
    /// Set when a kind the check needs could not be read.
    pub unavailable: Option<String>,
}

impl CheckResult {
    pub fn new(check: &'static Check) -> CheckResult {
        CheckResult { check, passed: 0, failed: Vec::new(), exempted: Vec::new(), unavailable: None }
    }

    /// Objects evaluated, exemptions included.
    pub fn evaluated(&self) -> u32 {
        self.passed + self.failed.len() as u32 + self.exempted.len() as u32
    }
}

/// The `kube9.io/exempt` annotation of each namespace, by name (the first namespace of a
/// name, as offline input may hold two): exemptions look it up for every failed object.
#[derive(Clone, Debug, Default)]
pub(crate) struct Namespaces(std::collections::HashMap<String, Option<String>>);

impl Namespaces {
    pub(crate) fn of(snapshot: &Snapshot) -> Namespaces {
        let mut index = std::collections::HashMap::new();
        for ns in &snapshot.namespaces {
            if let Some(name) = &ns.metadata.name {
                let exempt = ns.metadata.annotations.as_ref().and_then(|a| a.get(EXEMPT_ANNOTATION)).cloned();
                index.entry(name.clone()).or_insert(exempt);
            }
        }
        Namespaces(index)
    }
}

/// Handed to a check: records each object's outcome.
pub struct Eval<'s> {
    namespaces: &'s Namespaces,
    options: &'s Options,
    result: CheckResult,
}

impl<'s> Eval<'s> {
    pub(crate) fn new(check: &'static Check, namespaces: &'s Namespaces, options: &'s Options) -> Eval<'s> {
        Eval { namespaces, options, result: CheckResult::new(check) }
    }

    /// What the check recorded.
    pub(crate) fn finish(self) -> CheckResult {
        self.result
    }

    /// The object meets the check.
    pub fn pass(&mut self, subject: Subject<'_>) {
        if self.options.in_scope(subject.meta.namespace.as_deref()) {
            self.result.passed += 1;
        }
    }

    /// The object fails the check; `container` names the container where it matters.
    pub fn fail(&mut self, subject: Subject<'_>, container: Option<&str>, message: impl Into<Cow<'static, str>>) {
        if !self.options.in_scope(subject.meta.namespace.as_deref()) {
            return;
        }
        let hit = Hit {
            api_version: subject.api_version,
            kind: subject.kind,
            namespace: subject.meta.namespace.clone(),
            name: display_name(subject.meta),
            source: source_of(subject.meta),
            container: container.map(str::to_owned),
            message: message.into(),
        };
        if self.exempt(subject.meta) {
            self.result.exempted.push(hit);
        } else {
            self.result.failed.push(hit);
        }
    }

    /// Passes when `ok`, fails with `message` otherwise.
    pub fn expect(
        &mut self,
        ok: bool,
        subject: Subject<'_>,
        container: Option<&str>,
        message: impl Into<Cow<'static, str>>,
    ) {
        if ok { self.pass(subject) } else { self.fail(subject, container, message) }
    }

    fn exempt(&self, meta: &ObjectMeta) -> bool {
        let check = self.result.check;
        let listed = |annotation: Option<&String>| {
            annotation.is_some_and(|v| {
                v.split(',').map(str::trim).any(|item| item == check.id || item == "*" || item == check.pillar_name())
            })
        };
        listed(meta.annotations.as_ref().and_then(|a| a.get(EXEMPT_ANNOTATION)))
            || meta.namespace.as_deref().and_then(|ns| self.namespaces.0.get(ns)).is_some_and(|a| listed(a.as_ref()))
    }
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
fn per_container_of(
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
