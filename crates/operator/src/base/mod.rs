//! The bottom layer (docs/architecture.md): configuration and the small helpers every other
//! part uses. Nothing here imports anything else from the crate.

pub(crate) mod apply;
pub(crate) mod backoff;
pub mod config;
pub mod leadership;
pub(crate) mod list;
pub mod memory;
pub(crate) mod metrics;
pub(crate) mod shared;
pub mod telemetry;
pub(crate) mod time;

pub(crate) use kube9_api::text::{printable, truncate};
