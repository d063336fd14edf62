//! Cluster tests: the wiring, proven against a real kube-apiserver.

mod crds;
mod namespaces;
mod operator;
