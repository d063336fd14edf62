//! The checks' rules, one file per pillar or topic.

pub mod cost;
pub mod gitops;
pub mod hardening;
pub mod network;
pub mod operations;
pub mod operators;
pub mod performance;
pub mod rbac;
pub mod reliability;
pub mod secrets;
pub mod security;
pub mod sustainability;
pub mod upgrade;
pub mod vulnerabilities;
