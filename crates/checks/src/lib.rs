//! The Well-Architected check engine: pure checks over a snapshot of cluster objects.
//!
//! The offline CLI reads manifests into a snapshot and runs the checks over it at once
//! ([`engine::run`]); the operator's Assessment controller reads the cluster page by page and
//! runs the same checks as it goes ([`stream::Stream`]), with the same outcome.

pub mod checks;
pub mod deprecations;
pub mod engine;
pub mod facts;
pub mod kinds;
pub mod operators;
pub mod outcome;
pub mod registry;
pub mod selection;
pub mod snapshot;
pub mod stream;

pub use engine::{EXEMPT_ANNOTATION, Options, Report, run};
pub use registry::{Check, registry};
pub use selection::SelectionError;
pub use snapshot::Snapshot;
pub use stream::{Sink, Stream, Summary};

#[cfg(test)]
pub(crate) mod testing;
