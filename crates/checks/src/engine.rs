//! Runs the selected checks over a snapshot: when each form of check is called, which cannot
//! run, the findings in their order, totals and scores.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use kube9_api::assessment::{Finding, ObjectReference, OutcomeCounts, PillarResult, SeverityCounts};
use kube9_api::common::{Pillar, Severity};

use crate::check::{Check, CheckResult, Eval, Hit, Namespaces, Run};
use crate::facts::Facts;
use crate::options::Options;
use crate::snapshot::Snapshot;

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

    /// The order findings are listed in: most severe first, then by check, then by object
    /// ([`Hit::order`]); the same whatever order the objects were read in.
    pub fn order(&self, other: &Found<'_>) -> Ordering {
        (self.check.severity, self.check.id)
            .cmp(&(other.check.severity, other.check.id))
            .then_with(|| self.hit.order(other.hit))
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

/// Which forms of check ([`Run`]) a pass over objects calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The whole snapshot at once: every form.
    All,
    /// The kept kinds, before any page: `Kept` and `Each` (which sees no streamed object
    /// then, only the old API versions the kept objects were written in).
    Kept,
    /// One page of streamed objects: `Each`.
    Page,
    /// After the last page: `Related`.
    End,
}

/// Runs `check` over `snapshot` (and the facts) as `phase` asks: its result, empty when the
/// phase does not call its form. A check that needs a kind that could not be read is not run.
pub(crate) fn evaluate(
    check: &'static Check,
    snapshot: &Snapshot,
    facts: &Facts,
    namespaces: &Namespaces,
    options: &Options,
    phase: Phase,
) -> CheckResult {
    if let Some(why) = unavailable(check, snapshot) {
        return CheckResult { unavailable: Some(why), ..CheckResult::new(check) };
    }
    let mut eval = Eval::new(check, namespaces, options);
    match (check.run, phase) {
        (Run::Kept(f), Phase::All | Phase::Kept) | (Run::Each(f), Phase::All | Phase::Kept | Phase::Page) => {
            f(snapshot, &mut eval)
        }
        (Run::Related(f), Phase::All | Phase::End) => f(snapshot, facts, &mut eval),
        _ => {}
    }
    eval.finish()
}

/// Why the check cannot run: the kinds it reads that could not be read.
pub(crate) fn unavailable(check: &Check, snapshot: &Snapshot) -> Option<String> {
    if check.needs_cluster() && snapshot.taken_at.is_none() {
        return Some(NEEDS_CLUSTER.to_owned());
    }
    let missing: Vec<&str> =
        check.reads.iter().copied().filter(|kind| snapshot.unavailable.iter().any(|u| u == kind)).collect();
    let (absent, refused): (Vec<&str>, Vec<&str>) =
        missing.iter().partition(|kind| snapshot.not_served.iter().any(|n| n == *kind));
    let mut why = Vec::new();
    if !refused.is_empty() {
        why.push(format!("could not read {}", refused.join(", ")));
    }
    if !absent.is_empty() {
        why.push(format!("the cluster does not serve {}", absent.join(", ")));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// Every check's result, in registry order.
#[derive(Clone, Debug)]
pub struct Report {
    pub results: Vec<CheckResult>,
}

/// Why a check that needs live state is skipped over manifests (a snapshot with no `taken_at`).
pub const NEEDS_CLUSTER: &str = "needs a live cluster: manifests carry no status, endpoints or restarts";

/// Runs the selected checks over a whole snapshot, keeping every hit (the offline CLI). A
/// cluster is assessed page by page instead: [`crate::stream::Stream`].
pub fn run(snapshot: &Snapshot, options: &Options) -> Report {
    let mut facts = Facts::default();
    facts.add(snapshot);
    let namespaces = Namespaces::of(snapshot);
    let results =
        options.selected().map(|check| evaluate(check, snapshot, &facts, &namespaces, options, Phase::All)).collect();
    Report { results }
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
    /// Every check's counts (and first failed objects), as a streamed run keeps them.
    pub fn tallies(&self) -> Vec<Tally> {
        self.results
            .iter()
            .map(|r| {
                let mut tally = Tally::new(r.check);
                tally.add(r);
                tally
            })
            .collect()
    }

    /// Object outcomes summed over every check.
    pub fn totals(&self) -> OutcomeCounts {
        totals(&self.tallies())
    }

    /// Failed findings by severity.
    pub fn by_severity(&self) -> SeverityCounts {
        by_severity(&self.tallies())
    }

    /// Every failed finding, most severe first (exempted ones are in `exempted()`).
    pub fn findings(&self) -> Vec<Found<'_>> {
        let mut all: Vec<Found<'_>> = self
            .results
            .iter()
            .flat_map(|r| r.failed.iter().map(|hit| Found { check: r.check, hit, exempted: false }))
            .collect();
        all.sort_by(|a, b| a.order(b));
        all
    }

    /// Every exempted finding, check by check in registry order, each check's in object order.
    pub fn exempted(&self) -> impl Iterator<Item = Found<'_>> {
        self.results.iter().flat_map(|r| {
            let mut hits: Vec<&Hit> = r.exempted.iter().collect();
            hits.sort_by(|a, b| a.order(b));
            hits.into_iter().map(|hit| Found { check: r.check, hit, exempted: true })
        })
    }

    /// A 0-100 score per pillar run: the severity-weighted share of object evaluations that
    /// passed (exemptions count as passed; a pillar with nothing to evaluate scores 100).
    pub fn pillars(&self) -> Vec<PillarResult> {
        pillars(&self.tallies())
    }

    /// The overall score: the same share over every check run.
    pub fn score(&self) -> u8 {
        overall_score(&self.tallies())
    }
}

/// One check's outcome as counts, summed over however many passes: what a streamed run keeps
/// instead of every hit.
#[derive(Clone, Debug)]
pub struct Tally {
    pub check: &'static Check,
    pub passed: u32,
    pub failed: u32,
    pub exempted: u32,
    /// Set when a kind the check needs could not be read.
    pub unavailable: Option<String>,
    /// The first failed objects in object order ([`Hit::order`]), at most [`Tally::FIRST`].
    pub first_failed: Vec<Hit>,
}

impl Tally {
    /// Failed objects a tally names (the check outcome's message shows them).
    pub const FIRST: usize = 3;

    pub fn new(check: &'static Check) -> Tally {
        Tally { check, passed: 0, failed: 0, exempted: 0, unavailable: None, first_failed: Vec::new() }
    }

    /// Adds one pass's result.
    pub fn add(&mut self, result: &CheckResult) {
        self.passed += result.passed;
        self.failed += result.failed.len() as u32;
        self.exempted += result.exempted.len() as u32;
        if result.unavailable.is_some() {
            self.unavailable.clone_from(&result.unavailable);
        }
        keep_smallest(&mut self.first_failed, &result.failed, Tally::FIRST, |c, k| c.order(k), |c| c.clone());
    }

    /// Objects evaluated, exemptions included.
    pub fn evaluated(&self) -> u32 {
        self.passed + self.failed + self.exempted
    }
}

/// Keeps in `kept` (sorted) the `max` smallest of itself and `candidates`, by `cmp` (a
/// candidate against a kept one), making an owned copy only of a candidate that gets in.
pub(crate) fn keep_smallest<C, T>(
    kept: &mut Vec<T>,
    candidates: impl IntoIterator<Item = C>,
    max: usize,
    cmp: impl Fn(&C, &T) -> Ordering,
    own: impl Fn(C) -> T,
) {
    for candidate in candidates {
        if kept.len() >= max && kept.last().is_none_or(|last| cmp(&candidate, last) != Ordering::Less) {
            continue;
        }
        let at = kept.partition_point(|k| cmp(&candidate, k) != Ordering::Less);
        kept.insert(at, own(candidate));
        kept.truncate(max);
    }
}

/// Object outcomes summed over every check.
pub fn totals(tallies: &[Tally]) -> OutcomeCounts {
    let mut totals = OutcomeCounts::default();
    for t in tallies {
        totals.passed += t.passed;
        totals.failed += t.failed;
        totals.exempted += t.exempted;
        totals.errored += u32::from(t.unavailable.is_some());
    }
    totals
}

/// Failed findings by severity.
pub fn by_severity(tallies: &[Tally]) -> SeverityCounts {
    let mut counts = SeverityCounts::default();
    for t in tallies {
        let n = t.failed;
        match t.check.severity {
            Severity::Critical => counts.critical += n,
            Severity::High => counts.high += n,
            Severity::Medium => counts.medium += n,
            Severity::Low => counts.low += n,
            Severity::Info => counts.info += n,
        }
    }
    counts
}

/// A 0-100 score per pillar run: the severity-weighted share of object evaluations that passed
/// (exemptions count as passed; a pillar with nothing to evaluate scores 100).
pub fn pillars(tallies: &[Tally]) -> Vec<PillarResult> {
    let mut by_pillar: BTreeMap<Pillar, (u64, u64, OutcomeCounts)> = BTreeMap::new();
    for t in tallies {
        let entry = by_pillar.entry(t.check.pillar).or_default();
        let w = weight(t.check.severity);
        entry.0 += w * u64::from(t.passed + t.exempted);
        entry.1 += w * u64::from(t.evaluated());
        entry.2.passed += t.passed;
        entry.2.failed += t.failed;
        entry.2.exempted += t.exempted;
        entry.2.errored += u32::from(t.unavailable.is_some());
    }
    by_pillar
        .into_iter()
        .map(|(pillar, (good, all, totals))| PillarResult { pillar, score: score(good, all), totals })
        .collect()
}

/// The overall score: the same share over every check run.
pub fn overall_score(tallies: &[Tally]) -> u8 {
    let (good, all) = tallies.iter().fold((0, 0), |(good, all), t| {
        let w = weight(t.check.severity);
        (good + w * u64::from(t.passed + t.exempted), all + w * u64::from(t.evaluated()))
    });
    score(good, all)
}

fn score(good: u64, all: u64) -> u8 {
    (good * 100).checked_div(all).map_or(100, |s| s as u8)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::subject::EXEMPT_ANNOTATION;
    use crate::testing::*;

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
    fn a_kind_that_could_not_be_read_is_reported_not_passed() {
        let mut s = snapshot(&[]);
        s.unavailable.push("PodDisruptionBudget".into());
        let report =
            run(&s, &Options { include_checks: vec!["reliability.disruption-budget".into()], ..Options::default() });
        assert_eq!(report.results[0].unavailable.as_deref(), Some("could not read PodDisruptionBudget"));
        assert_eq!(report.totals().errored, 1);
        // Not served (an add-on not installed) is said as such, not as a failed read.
        s.not_served.push("PodDisruptionBudget".into());
        let report =
            run(&s, &Options { include_checks: vec!["reliability.disruption-budget".into()], ..Options::default() });
        assert_eq!(report.results[0].unavailable.as_deref(), Some("the cluster does not serve PodDisruptionBudget"));
    }
}
