//! Which checks a run's options select, the kinds those read, and whether the selection can
//! run: every id in `checks.include` / `checks.exclude` names a known check or pillar, and
//! something is left to run. A typo must fail the run with its name, never give a perfect
//! score over no checks.

use crate::check::Check;
use crate::options::Options;
use crate::registry::registry;

/// How many near matches an unknown id is shown with.
const SUGGESTIONS: usize = 3;

/// Why a selection cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// Ids in include/exclude that are neither a check nor a pillar.
    #[error("{}", unknown_message(.0))]
    Unknown(Vec<Unknown>),
    /// Every id is known, but together they leave no check.
    #[error(
        "the selection leaves no check to run (pillars {pillars:?}, checks.include {include:?}, checks.exclude {exclude:?}); widen it"
    )]
    Empty { pillars: Vec<String>, include: Vec<String>, exclude: Vec<String> },
}

/// One unknown id, where it was, and the known ids nearest to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unknown {
    /// `checks.include` or `checks.exclude`.
    pub field: &'static str,
    pub id: String,
    pub nearest: Vec<&'static str>,
}

fn unknown_message(unknown: &[Unknown]) -> String {
    let each: Vec<String> =
        unknown.iter().map(|u| format!("{} {:?} (nearest known: {})", u.field, u.id, u.nearest.join(", "))).collect();
    format!("unknown check ids: {}; `kube9-operator assess --help` and docs/checks.md list the checks", each.join("; "))
}

impl Options {
    /// The checks these options select, in registry order.
    pub fn selected(&self) -> impl Iterator<Item = &'static Check> + '_ {
        registry().iter().filter(|check| self.selects(check))
    }

    /// Whether the options select `check`: its pillar is run, and it is included (by id, by
    /// its pillar's name, or by `*`) and not excluded.
    pub fn selects(&self, check: &Check) -> bool {
        let matches = |item: &String| item == check.id || item == check.pillar_name() || item == "*";
        (self.pillars.is_empty() || self.pillars.contains(&check.pillar))
            && (self.include_checks.is_empty() || self.include_checks.iter().any(matches))
            && !self.exclude_checks.iter().any(matches)
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

    /// Refuses ids that name nothing, and a selection that leaves no check.
    pub fn validate(&self) -> Result<(), SelectionError> {
        let known = known_ids();
        let mut unknown = Vec::new();
        for (field, ids) in [("checks.include", &self.include_checks), ("checks.exclude", &self.exclude_checks)] {
            for id in ids {
                if id != "*" && !known.contains(&id.as_str()) {
                    unknown.push(Unknown { field, id: id.clone(), nearest: nearest(id, &known) });
                }
            }
        }
        if !unknown.is_empty() {
            return Err(SelectionError::Unknown(unknown));
        }
        if self.selected().next().is_none() {
            return Err(SelectionError::Empty {
                pillars: self.pillars.iter().map(|p| p.as_str().to_owned()).collect(),
                include: self.include_checks.clone(),
                exclude: self.exclude_checks.clone(),
            });
        }
        Ok(())
    }
}

/// Every check id and every pillar name (a pillar selects all of its checks).
fn known_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = registry().iter().map(|c| c.id).collect();
    ids.extend(registry().iter().map(Check::pillar_name));
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The known ids closest to `id` by edit distance (ties in name order).
fn nearest(id: &str, known: &[&'static str]) -> Vec<&'static str> {
    let mut scored: Vec<(usize, &'static str)> = known.iter().map(|k| (distance(id, k), *k)).collect();
    scored.sort_unstable();
    scored.into_iter().take(SUGGESTIONS).map(|(_, k)| k).collect()
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use kube9_api::common::Pillar;

    use super::*;

    fn options(include: &[&str], exclude: &[&str]) -> Options {
        Options {
            include_checks: include.iter().map(|s| s.to_string()).collect(),
            exclude_checks: exclude.iter().map(|s| s.to_string()).collect(),
            ..Options::default()
        }
    }

    #[test]
    fn known_ids_pillars_and_star_are_accepted() {
        assert_eq!(options(&[], &[]).validate(), Ok(()));
        assert_eq!(options(&["security.privileged", "reliability"], &["security.host-path"]).validate(), Ok(()));
        assert_eq!(options(&["*"], &["cost-optimization"]).validate(), Ok(()));
    }

    #[test]
    fn a_typo_is_named_with_the_nearest_known_ids() {
        let error = options(&["security.privilegd", "no.such-check"], &[]).validate().unwrap_err();
        let SelectionError::Unknown(unknown) = &error else { panic!("{error:?}") };
        assert_eq!(unknown.len(), 2);
        assert_eq!(unknown[0].id, "security.privilegd");
        assert_eq!(unknown[0].nearest[0], "security.privileged");
        assert_eq!(unknown[1].field, "checks.include");
        let message = error.to_string();
        assert!(
            message.starts_with(
                "unknown check ids: checks.include \"security.privilegd\" (nearest known: security.privileged"
            ),
            "{message}"
        );
        assert!(message.contains("\"no.such-check\""), "{message}");
    }

    #[test]
    fn an_unknown_exclusion_is_refused_too() {
        let error = options(&[], &["security.hostpath"]).validate().unwrap_err();
        assert!(
            error.to_string().contains("checks.exclude \"security.hostpath\" (nearest known: security.host-path"),
            "{error}"
        );
    }

    #[test]
    fn a_selection_that_leaves_nothing_is_an_error() {
        let error = options(&["security"], &["security"]).validate().unwrap_err();
        assert!(matches!(error, SelectionError::Empty { .. }));
        assert!(error.to_string().starts_with("the selection leaves no check to run"), "{error}");
        let other_pillar = Options { pillars: vec![Pillar::Reliability], ..options(&["security.privileged"], &[]) };
        assert!(matches!(other_pillar.validate(), Err(SelectionError::Empty { .. })));
    }

    #[test]
    fn star_selects_every_check() {
        assert_eq!(options(&["*"], &[]).selected().count(), registry().len());
    }

    #[test]
    fn only_the_kinds_the_selected_checks_read_are_listed() {
        let only = Options { include_checks: vec!["cost-optimization.load-balancers".into()], ..Options::default() };
        assert_eq!(only.kinds_needed(), vec!["Namespace", "Service"]);
        assert!(Options::default().kinds_needed().len() > 15);
    }

    #[test]
    fn edit_distance() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }
}
