//! The collectors: what is decided about them (store), where their results are kept (held),
//! and the task that runs them on each collector's schedule.

pub mod held;
pub mod store;
pub mod task;
