//! The pure core of the pro tier's privacy pipeline (docs/pro-tier.md):
//! real object names become deterministic, reversible mock names derived from a per-cluster
//! secret key, and every payload is validated before it may leave the cluster. No I/O: the
//! key's storage (a Secret), the collectors and the upload live in the operator; the whole
//! rule of what may leave — where names may appear, the words that must not, masking and
//! unmasking — lives here.

pub mod names;
pub mod obfuscate;
pub mod validate;

pub use obfuscate::{Key, KeyError, Mapping};
pub use validate::{Forbidden, Leak, LeakKind, check, replace_words};
