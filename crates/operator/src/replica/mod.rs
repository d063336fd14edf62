//! Two replicas, one truth. The leader's store is the only one written by the operator's own
//! work (Assessment runs, the operator's events, the status, the collections); a standby keeps
//! a copy of it, pulled from the leader over an authenticated endpoint on the Pod network, so a
//! failover or a rolling upgrade keeps what the leader stored; and `kube9-operator query` run
//! in a standby asks the leader, so whichever Pod the VS Code extension execs into answers
//! alike (docs/operations.md, "Replicas").
//!
//! Configured from the environment (the chart sets it): `KUBE9_REPLICATION_ADDR` (where to
//! listen), `KUBE9_REPLICATION_TOKEN_FILE` (the shared token, a mounted Secret: the port never
//! opens without it), and `KUBE9_REPLICATION_URL` or `POD_IP` (how the other replicas reach
//! this one).

pub mod follow;
pub mod forward;
pub mod serve;
pub mod settings;
pub mod shared;
pub mod task;
