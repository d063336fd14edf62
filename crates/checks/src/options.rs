//! What a run is asked to assess: which pillars and checks, and which namespaces. Which checks
//! that selects, and whether the selection can run, is [`crate::selection`]'s, over the registry.

use kube9_api::common::Pillar;

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

    /// Whether an object in `namespace` is in scope (cluster-scoped objects always are).
    pub fn in_scope(&self, namespace: Option<&str>) -> bool {
        let Some(ns) = namespace else { return true };
        (self.include_namespaces.is_empty() || self.include_namespaces.iter().any(|n| n == ns))
            && !self.exclude_namespaces.iter().any(|n| n == ns)
    }
}
