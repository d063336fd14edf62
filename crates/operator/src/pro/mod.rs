//! The pro tier (docs/pro-tier.md): upload of sanitized collections on the server's interval,
//! insights mapped back to real objects, and delivery of acknowledgements. Runs only with an
//! API key, and does anything only while registered.

pub(crate) mod acks;
pub mod insights;
pub(crate) mod key;
pub(crate) mod payload;
pub(crate) mod report;
pub(crate) mod task;
