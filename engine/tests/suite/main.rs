//! The one integration-test binary: theory, determinism, error messages, report, plug-ins.

mod browser;
mod cache;
mod cli;
mod components;
mod convergence;
mod determinism;
mod election;
mod errors;
mod fault_kinds;
mod faults;
mod fuzz;
mod golden;
mod harness;
mod layers;
mod limits;
mod memory;
mod plugin;
mod priority;
mod queue;
mod replication;
mod reproducers;
mod resilience;
mod sharding;
mod slurm;
mod sweep;
mod theory;
mod txn;
mod workload;

use archsim::Registry;
use archsim::results::Results;
use archsim::runner::{RunOptions, run};
use archsim::scenario::parse;

/// Parse and run scenario text with the built-in components; panics with the rendered
/// diagnostics if the text is not a valid scenario.
pub fn run_text(src: &str) -> Results {
    let registry = Registry::builtin();
    let scenario = parse("test.ron", src, &registry).unwrap_or_else(|e| panic!("{e}"));
    run(&scenario, &registry, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// The repository's top directory.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("engine/ has a parent")
        .to_path_buf()
}
