//! Runs the registry's checks over a snapshot: selection, exemptions, totals and scores.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube9_api::assessment::{Finding, ObjectReference, OutcomeCounts, PillarResult, SeverityCounts};
use kube9_api::common::{Pillar, Severity};

use crate::registry::{Check, registry};
use crate::snapshot::Snapshot;

/// The annotation, on an object or its namespace, listing the checks (ids, or a pillar name
/// for all of its checks) that do not apply to it.
pub const EXEMPT_ANNOTATION: &str = "kube9.io/exempt";

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Pillars to run; empty means all.
    pub pillars: Vec<Pillar>,
    /// Check ids (or pillar names) to run; empty means all.
    pub include_checks: Vec<String>,
    pub exclude_checks: Vec<String>,
    /// Namespaces to assess; empty means all. Cluster-scoped objects are always assessed.
    pub include_namespaces: Vec<String>,
    pub exclude_namespaces: Vec<String>,
}

impl Options {
    /// The options an Assessment's spec asks for.
    pub fn from_spec(spec: &kube9_api::assessment::AssessmentSpec) -> Options {
        let (checks, namespaces) =
            (spec.checks.clone().unwrap_or_default(), spec.namespaces.clone().unwrap_or_default());
        Options {
            pillars: spec.pillars.clone(),
            include_checks: checks.include,
            exclude_checks: checks.exclude,
            include_namespaces: namespaces.include,
            exclude_namespaces: namespaces.exclude,
        }
    }

    /// The checks these options select, in registry order.
    pub fn selected(&self) -> impl Iterator<Item = &'static Check> + '_ {
        registry().iter().filter(|check| selected(check, self))
    }

    /// The kinds the selected checks read, and `Namespace` (exemptions may sit on namespaces),
    /// sorted: nothing else needs listing.
    pub fn kinds_needed(&self) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = self.selected().flat_map(|check| check.reads.iter().copied()).collect();
        kinds.push("Namespace");
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }
}

/// The object a finding is about.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub meta: &'a ObjectMeta,
}

impl<'a> Subject<'a> {
    pub fn new(api_version: &'static str, kind: &'static str, meta: &'a ObjectMeta) -> Subject<'a> {
        Subject { api_version, kind, meta }
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

/// A hit with the check that made it.
#[derive(Clone, Copy, Debug)]
pub struct Found<'r> {
    pub check: &'static Check,
    pub hit: &'r Hit,
    pub exempted: bool,
}

impl Found<'_> {
    pub fn severity(&self) -> Severity {
        self.check.severity
    }

    /// The finding as the Assessment status and the CLI's JSON show it.
    pub fn finding(&self) -> Finding {
        let (check, hit) = (self.check, self.hit);
        Finding {
            check_id: check.id.to_owned(),
            pillar: check.pillar,
            severity: check.severity,
            object: ObjectReference {
                api_version: hit.api_version.to_owned(),
                kind: hit.kind.to_owned(),
                namespace: hit.namespace.clone(),
                name: hit.name.clone(),
                container: hit.container.clone(),
            },
            message: hit.message.clone().into_owned(),
            remediation: check.remediation.to_owned(),
            exempted: self.exempted,
        }
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
    /// Objects evaluated, exemptions included.
    pub fn evaluated(&self) -> u32 {
        self.passed + self.failed.len() as u32 + self.exempted.len() as u32
    }
}

/// Handed to a check: records each object's outcome.
pub struct Eval<'s> {
    snapshot: &'s Snapshot,
    options: &'s Options,
    result: CheckResult,
}

impl Eval<'_> {
    /// Whether an object in `namespace` is in scope (cluster-scoped objects always are).
    pub fn in_scope(&self, namespace: Option<&str>) -> bool {
        let Some(ns) = namespace else { return true };
        (self.options.include_namespaces.is_empty() || self.options.include_namespaces.iter().any(|n| n == ns))
            && !self.options.exclude_namespaces.iter().any(|n| n == ns)
    }

    /// The object meets the check.
    pub fn pass(&mut self, subject: Subject<'_>) {
        if self.in_scope(subject.meta.namespace.as_deref()) {
            self.result.passed += 1;
        }
    }

    /// The object fails the check; `container` names the container where it matters.
    pub fn fail(&mut self, subject: Subject<'_>, container: Option<&str>, message: impl Into<Cow<'static, str>>) {
        if !self.in_scope(subject.meta.namespace.as_deref()) {
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
        let listed = |m: &ObjectMeta| {
            m.annotations.as_ref().and_then(|a| a.get(EXEMPT_ANNOTATION)).is_some_and(|v| {
                v.split(',').map(str::trim).any(|item| {
                    let check = self.result.check;
                    item == check.id || item == "*" || item == check.id.split('.').next().unwrap_or_default()
                })
            })
        };
        listed(meta)
            || meta
                .namespace
                .as_deref()
                .and_then(|ns| self.snapshot.namespace(ns))
                .is_some_and(|ns| listed(&ns.metadata))
    }
}

/// The prefix of the uid the offline reader gives each object it reads: a manifest's own uid
/// means nothing offline, and this one says which file and line the object came from.
pub const SOURCE_UID_PREFIX: &str = "kube9.io/source/";

/// The offline reader's source number in an object's uid.
pub fn source_of(meta: &ObjectMeta) -> Option<u32> {
    meta.uid.as_deref()?.strip_prefix(SOURCE_UID_PREFIX)?.parse().ok()
}

/// How findings name an object: its name, or `<generateName>*` when the API server will pick
/// one (a Job created with `kubectl create` and generateName).
pub fn display_name(meta: &ObjectMeta) -> String {
    match (&meta.name, &meta.generate_name) {
        (Some(name), _) => name.clone(),
        (None, Some(prefix)) => format!("{prefix}*"),
        (None, None) => String::new(),
    }
}

/// Every check's result, in registry order.
#[derive(Clone, Debug)]
pub struct Report {
    pub results: Vec<CheckResult>,
}

/// Why a check that needs live state is skipped over manifests (a snapshot with no `taken_at`).
pub const NEEDS_CLUSTER: &str = "needs a live cluster: manifests carry no status, endpoints or restarts";

/// Runs the selected checks.
pub fn run(snapshot: &Snapshot, options: &Options) -> Report {
    let results = options
        .selected()
        .map(|check| {
            let mut eval = Eval {
                snapshot,
                options,
                result: CheckResult { check, passed: 0, failed: Vec::new(), exempted: Vec::new(), unavailable: None },
            };
            let missing: Vec<&str> =
                check.reads.iter().copied().filter(|kind| snapshot.unavailable.iter().any(|u| u == kind)).collect();
            if check.needs_cluster() && snapshot.taken_at.is_none() {
                eval.result.unavailable = Some(NEEDS_CLUSTER.to_owned());
            } else if missing.is_empty() {
                (check.run)(snapshot, &mut eval);
            } else {
                eval.result.unavailable = Some(format!("could not read {}", missing.join(", ")));
            }
            eval.result
        })
        .collect();
    Report { results }
}

fn selected(check: &Check, options: &Options) -> bool {
    let pillar_name = check.id.split('.').next().unwrap_or_default();
    let matches = |item: &String| item == check.id || item == pillar_name || item == "*";
    (options.pillars.is_empty() || options.pillars.contains(&check.pillar))
        && (options.include_checks.is_empty() || options.include_checks.iter().any(matches))
        && !options.exclude_checks.iter().any(matches)
}

fn weight(severity: Severity) -> u64 {
    match severity {
        Severity::Critical => 8,
        Severity::High => 5,
        Severity::Medium => 3,
        Severity::Low => 2,
        Severity::Info => 1,
    }
}

impl Report {
    /// Object outcomes summed over every check.
    pub fn totals(&self) -> OutcomeCounts {
        let mut totals = OutcomeCounts::default();
        for r in &self.results {
            totals.passed += r.passed;
            totals.failed += r.failed.len() as u32;
            totals.exempted += r.exempted.len() as u32;
            totals.errored += u32::from(r.unavailable.is_some());
        }
        totals
    }

    /// Failed findings by severity.
    pub fn by_severity(&self) -> SeverityCounts {
        let mut counts = SeverityCounts::default();
        for r in &self.results {
            let n = r.failed.len() as u32;
            match r.check.severity {
                Severity::Critical => counts.critical += n,
                Severity::High => counts.high += n,
                Severity::Medium => counts.medium += n,
                Severity::Low => counts.low += n,
                Severity::Info => counts.info += n,
            }
        }
        counts
    }

    /// Every failed finding, most severe first (exempted ones are in `exempted()`).
    pub fn findings(&self) -> Vec<Found<'_>> {
        let mut all: Vec<Found<'_>> = self
            .results
            .iter()
            .flat_map(|r| r.failed.iter().map(|hit| Found { check: r.check, hit, exempted: false }))
            .collect();
        all.sort_by(|a, b| {
            (a.check.severity, a.check.id, &a.hit.namespace, &a.hit.name).cmp(&(
                b.check.severity,
                b.check.id,
                &b.hit.namespace,
                &b.hit.name,
            ))
        });
        all
    }

    pub fn exempted(&self) -> impl Iterator<Item = Found<'_>> {
        self.results.iter().flat_map(|r| r.exempted.iter().map(|hit| Found { check: r.check, hit, exempted: true }))
    }

    /// A 0-100 score per pillar run: the severity-weighted share of object evaluations that
    /// passed (exemptions count as passed; a pillar with nothing to evaluate scores 100).
    pub fn pillars(&self) -> Vec<PillarResult> {
        let mut by_pillar: BTreeMap<Pillar, (u64, u64, OutcomeCounts)> = BTreeMap::new();
        for r in &self.results {
            let entry = by_pillar.entry(r.check.pillar).or_default();
            let w = weight(r.check.severity);
            entry.0 += w * u64::from(r.passed + r.exempted.len() as u32);
            entry.1 += w * u64::from(r.evaluated());
            entry.2.passed += r.passed;
            entry.2.failed += r.failed.len() as u32;
            entry.2.exempted += r.exempted.len() as u32;
            entry.2.errored += u32::from(r.unavailable.is_some());
        }
        by_pillar
            .into_iter()
            .map(|(pillar, (good, all, totals))| PillarResult { pillar, score: score(good, all), totals })
            .collect()
    }

    /// The overall score: the same share over every check run.
    pub fn score(&self) -> u8 {
        let (good, all) = self.results.iter().fold((0, 0), |(good, all), r| {
            let w = weight(r.check.severity);
            (good + w * u64::from(r.passed + r.exempted.len() as u32), all + w * u64::from(r.evaluated()))
        });
        score(good, all)
    }
}

fn score(good: u64, all: u64) -> u8 {
    (good * 100).checked_div(all).map_or(100, |s| s as u8)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::json;

    use super::*;
    use crate::testing::*;

    #[test]
    fn the_registry_covers_every_pillar_with_unique_ids() {
        let all = registry();
        assert!(all.len() >= 50, "{} checks", all.len());
        let ids: HashSet<&str> = all.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), all.len(), "duplicate check ids");
        for pillar in Pillar::ALL {
            let n = all.iter().filter(|c| c.pillar == pillar).count();
            assert!(n >= 3, "{pillar:?} has {n} checks");
        }
        assert!(all.iter().filter(|c| c.pillar == Pillar::Security).count() >= 15);
        for check in all {
            assert_eq!(check.id.split('.').next().unwrap(), check.pillar.as_str(), "{}", check.id);
            assert!(!check.title.is_empty() && !check.rationale.is_empty() && !check.remediation.is_empty());
            assert!(!check.reads.is_empty(), "{} reads nothing", check.id);
        }
    }

    #[test]
    fn an_annotation_on_the_object_or_its_namespace_exempts_and_is_counted() {
        let privileged = json!({"securityContext": {"privileged": true}});
        let on_object = deployment(
            pod_spec(json!({"containers": [container(privileged.clone())]})),
            json!({"metadata": {"annotations": {EXEMPT_ANNOTATION: "reliability.replicas, security.privileged"}}}),
        );
        assert_eq!(outcome("security.privileged", &[on_object]), (0, 0, 1));

        let ns = namespace(json!({"metadata": {"annotations": {EXEMPT_ANNOTATION: "security"}}}));
        assert_eq!(outcome("security.privileged", &[ns, deployment_with_container(privileged.clone())]), (0, 0, 1));

        let other = namespace(json!({"metadata": {"annotations": {EXEMPT_ANNOTATION: "reliability"}}}));
        assert_eq!(outcome("security.privileged", &[other, deployment_with_container(privileged)]), (0, 1, 0));
    }

    #[test]
    fn selection_by_pillar_check_and_namespace() {
        let s = snapshot(&[deployment_with_container(json!({"securityContext": {"privileged": true}}))]);
        let only = |options: Options| run(&s, &options).results.iter().map(|r| r.check.id).collect::<Vec<_>>();
        let reliability = only(Options { pillars: vec![Pillar::Reliability], ..Options::default() });
        assert!(!reliability.is_empty() && reliability.iter().all(|id| id.starts_with("reliability.")));
        let excluded = only(Options { exclude_checks: vec!["security".into()], ..Options::default() });
        assert!(excluded.iter().all(|id| !id.starts_with("security.")));

        let elsewhere = Options {
            include_checks: vec!["security.privileged".into()],
            include_namespaces: vec!["payments".into()],
            ..Options::default()
        };
        let report = run(&s, &elsewhere);
        assert_eq!(report.results[0].evaluated(), 0, "objects outside the namespaces are not assessed");
    }

    #[test]
    fn totals_scores_and_ordering() {
        let s = snapshot(&[
            deployment_with_container(json!({"securityContext": {"privileged": true}})),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": "shop"}, "spec": pod_spec(json!({}))}),
        ]);
        let report = run(&s, &Options::default());
        let totals = report.totals();
        assert!(totals.failed >= 2 && totals.passed > totals.failed);
        let findings = report.findings();
        assert_eq!(findings[0].severity(), Severity::Critical, "most severe first");
        assert_eq!(findings[0].hit.container.as_deref(), Some("app"));
        assert!(findings.windows(2).all(|w| w[0].severity() <= w[1].severity()));
        let full = findings[0].finding();
        assert_eq!(
            (full.check_id.as_str(), full.remediation.as_str()),
            (findings[0].check.id, findings[0].check.remediation)
        );
        assert_eq!(report.by_severity().critical, 1);
        let pillars = report.pillars();
        assert_eq!(pillars.len(), 6);
        let security = pillars.iter().find(|p| p.pillar == Pillar::Security).unwrap();
        assert!(security.score < 100 && security.score > 0);
        assert!(report.score() < 100);
        assert_eq!(run(&Snapshot::default(), &Options::default()).score(), 100);
    }

    #[test]
    fn only_the_kinds_the_selected_checks_read_are_listed() {
        let only = Options { include_checks: vec!["cost-optimization.load-balancers".into()], ..Options::default() };
        assert_eq!(only.kinds_needed(), vec!["Namespace", "Service"]);
        assert!(Options::default().kinds_needed().len() > 15);
    }

    #[test]
    fn a_kind_that_could_not_be_read_is_reported_not_passed() {
        let mut s = snapshot(&[]);
        s.unavailable.push("PodDisruptionBudget".into());
        let report =
            run(&s, &Options { include_checks: vec!["reliability.disruption-budget".into()], ..Options::default() });
        assert_eq!(report.results[0].unavailable.as_deref(), Some("could not read PodDisruptionBudget"));
        assert_eq!(report.totals().errored, 1);
    }
}
