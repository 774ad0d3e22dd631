//! archsim: a deterministic discrete-event simulator for distributed-system designs.
//!
//! Data flows one way: a RON scenario is parsed and validated ([`scenario`]), expanded into
//! concrete runs (one per variant), each run is assembled into a [`sim::World`] ([`build`]) and
//! simulated single-threaded, its streaming metrics become a [`results::Results`], and
//! [`report`] turns that into tables and plots. See `ARCHITECTURE.md` for the map.

pub mod analysis;
pub mod build;
pub mod check;
pub mod cli;
pub mod components;
pub mod contract;
pub mod explore;
pub mod list;
pub mod output;
pub mod recovery;
pub mod registry;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod sim;
pub mod sweep;
pub mod warnings;

pub use registry::Registry;
