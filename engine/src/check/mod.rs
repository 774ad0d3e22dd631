//! Consistency checkers over recorded histories: pure functions of the history, no simulation.

pub mod history;
pub mod linearizability;
