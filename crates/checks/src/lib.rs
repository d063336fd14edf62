//! The Well-Architected check engine: pure checks over a snapshot of cluster objects.
//!
//! The operator's Assessment controller gathers the snapshot from the cluster and the offline
//! CLI reads it from manifests; both run the same checks through [`engine::run`].

pub mod argocd;
pub mod checks;
pub mod deprecations;
pub mod engine;
pub mod kinds;
pub mod operators;
pub mod outcome;
pub mod registry;
pub mod selection;
pub mod snapshot;

pub use engine::{EXEMPT_ANNOTATION, Options, Report, run};
pub use registry::{Check, registry};
pub use selection::SelectionError;
pub use snapshot::Snapshot;

#[cfg(test)]
pub(crate) mod testing;
