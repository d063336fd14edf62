//! The collections the pro tier uploads, made by the `kube9-collect` collectors: when each
//! collector runs and what a run keeps (store), where the results wait for an upload (held),
//! and the task that runs the collectors on their schedules.

pub mod held;
pub mod store;
pub mod task;
