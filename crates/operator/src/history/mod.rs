//! The event history (docs/events.md): the cluster's Events and the operator's own, kept in
//! the embedded store (kube9-store) for `kube9-operator query events`.

pub mod event;
pub mod severity;
pub mod watch;
pub mod writer;
