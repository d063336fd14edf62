//! The checks, one file per pillar.

pub mod cost;
pub mod operations;
pub mod performance;
pub mod reliability;
pub mod security;
pub mod sustainability;
