//! The Well-Architected check engine: pure checks over a snapshot of cluster objects.
//!
//! The offline CLI reads manifests into a snapshot and runs the checks over it at once
//! ([`engine::run`]); the operator's Assessment controller reads the cluster page by page and
//! runs the same checks as it goes ([`stream::Stream`]), with the same outcome.
//!
//! The modules stand in floors, each importing only from the floors below it:
//! - the objects read: [`kinds`], [`deprecations`], [`subject`], [`options`], [`live`],
//!   [`snapshot`], [`pods`], [`facts`] (Argo CD's objects are `kube9_argocd`'s model);
//! - what a check is and how it records its outcome: [`check`];
//! - the checks themselves, by pillar or topic: [`rules`];
//! - the list of them: [`registry`], and which of them a run selects: [`selection`];
//! - running them: [`engine`] over a whole snapshot, [`stream`] page by page, [`outcome`] in the
//!   API's types.

pub mod check;
pub mod deprecations;
pub mod engine;
pub mod facts;
pub mod kinds;
pub mod live;
pub mod options;
pub mod outcome;
pub mod pods;
pub mod registry;
pub mod rules;
pub mod selection;
pub mod snapshot;
pub mod stream;
pub mod subject;
pub mod trivy;

pub use check::Check;
pub use engine::{Report, run};
pub use options::Options;
pub use registry::registry;
pub use selection::SelectionError;
pub use snapshot::Snapshot;
pub use stream::{Sink, Stream, Summary};
pub use subject::EXEMPT_ANNOTATION;

#[cfg(test)]
pub(crate) mod testing;
