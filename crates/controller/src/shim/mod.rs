//! Compatibility with older extensions.

pub mod configmap;
