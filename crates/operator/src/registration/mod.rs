//! Registration with kube9-server: the pure state machine that turns each answer into the
//! next state and the next attempt, the HTTPS client, what the cluster sends, and the task.

pub mod client;
pub mod identity;
pub mod state;
pub mod task;
