//! The bottom layer (docs/architecture.md): configuration and the small helpers every other
//! part uses. Nothing here imports anything else from the crate.

pub mod apply;
pub mod backoff;
pub mod config;
pub mod list;
pub mod memory;
pub mod metrics;
pub mod shared;
pub mod telemetry;
pub mod time;

pub use kube9_api::text::{printable, truncate};
