//! Argo CD awareness (docs/argocd.md): detection, the Applications' sync and health, drift
//! history, and the resource tree, all read from the Kubernetes API (no Argo CD token, nothing
//! written to Argo CD's objects).

pub mod app;
pub mod detect;
pub mod health;
pub mod query;
pub mod tree;
pub mod watch;
