//! Cluster tests: the wiring, proven against a real kube-apiserver.

mod addons;
mod ai_conformance;
mod argocd;
mod assessments;
mod cel;
mod contract;
mod crds;
mod events;
mod faults;
mod findings;
mod kwok;
mod namespaces;
mod operator;
mod operators;
mod pro;
mod replicas;
mod reports;
mod trivy;
mod ui;
mod versions;
