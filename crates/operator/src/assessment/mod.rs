//! The Assessment flow: when a run is due and what the extension hears about (schedule), the
//! engine's report as a status (result), and the controller that gathers, runs and writes.

pub mod reconcile;
pub mod result;
pub mod schedule;
