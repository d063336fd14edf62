//! A completed run's findings as policy reports (openreports.io or wgpolicyk8s.io): what they
//! hold (`build`, pure) and their publication (`publish`).

pub mod build;
pub mod publish;
