//! The collectors: what is held (the store) and the task that fills it on each collector's
//! schedule.

pub mod store;
pub mod task;
