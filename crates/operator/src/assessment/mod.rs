//! The Assessment flow: when a run is due and what the extension hears about (schedule), the
//! engine's report as a status (result), what a run keeps besides its status: every finding and
//! the history (stored), and the controller that gathers, runs and writes.

pub mod reconcile;
pub mod result;
pub mod schedule;
pub mod stored;
