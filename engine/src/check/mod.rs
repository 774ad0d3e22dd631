//! Consistency checkers over recorded histories: pure functions of the history, no simulation.

pub mod convergence;
pub mod history;
pub mod linearizability;
pub mod stream;
