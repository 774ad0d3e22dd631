//! The component contract: what a component needs to be built ([`build`]), validated
//! ([`validate`], [`settable`]), to speak ([`call`]) and to report ([`metrics`]).
//!
//! It sits between the kernel and the components: it imports only the kernel and the plain
//! result types, and every component family imports it. Nothing here knows a component,
//! the runner, the command line or the report.

pub mod build;
pub mod call;
pub mod hdr_counts;
pub mod metrics;
pub mod settable;
pub mod size;
pub mod state_series;
pub mod topology;
pub mod trace;
pub mod trace_path;
pub mod validate;
