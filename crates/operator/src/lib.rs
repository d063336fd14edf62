//! The kube9-operator library. docs/architecture.md draws it: `base` (configuration and small
//! helpers) at the bottom, then the pure rules of each flow, then the adapters and tasks that
//! talk to the API server and kube9-server, and `operator` wiring them together.

pub mod base;

mod argocd_io;
mod assessment;
mod collections;
mod conformance;
mod gather;
mod health;
mod history;
mod leader;
mod operator;
pub mod pro;
mod registration;
mod replica;
mod reports;
mod status;

pub use argocd_io::query::{Command as ArgoCdQuery, run as argocd_query};
pub use operator::run;
pub use replica::forward::forwarded as forward_query;
