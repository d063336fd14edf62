//! The OperatorStatus flow: the standing (tier, health) and conditions decided from plain
//! values, the plan of what to write (the status and the legacy ConfigMap) and when to look
//! again, and the reconciler that carries it out.

pub mod conditions;
pub mod configmap;
pub mod plan;
pub mod reconcile;
pub mod tier;
