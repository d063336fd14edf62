//! The pro tier (docs/pro-tier.md): upload of sanitized collections on the server's interval,
//! insights mapped back to real objects, and delivery of acknowledgements. Runs only with an
//! API key, and does anything only while registered.

pub mod acks;
pub mod insights;
pub mod key;
pub mod payload;
pub mod report;
pub mod task;
