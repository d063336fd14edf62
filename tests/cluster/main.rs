//! Cluster tests: the wiring, proven against a real kube-apiserver.

mod assessments;
mod contract;
mod crds;
mod events;
mod namespaces;
mod operator;
mod pro;
