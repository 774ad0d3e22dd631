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
mod queue;
mod replication;
mod reproducers;
mod resilience;
mod sharding;
mod slurm;
mod sweep;
mod theory;
mod txn;

use archsim::Registry;
use archsim::results::{Results, VariantResult, Verdict};
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

/// The verdict of `node`'s checker on `property` (`linearizable`, `atomic commit`, ...).
pub fn verdict<'a>(v: &'a VariantResult, node: &str, property: &str) -> &'a Verdict {
    v.verdicts
        .get(node)
        .and_then(|all| all.iter().find(|x| x.property == property))
        .unwrap_or_else(|| panic!("{}: no verdict of {node} on {property:?}", v.name))
}

/// `property` holds in `v`: something was checked, nothing violates it and nothing was left
/// unchecked (a verdict over a bound is no verdict).
#[track_caller]
pub fn assert_holds(v: &VariantResult, node: &str, property: &str, context: &str) {
    let x = verdict(v, node, property);
    assert!(
        x.checked > 0 && x.violated == 0 && x.unchecked == 0,
        "{context}, {}: {property} should hold with every {} checked: {x:?}",
        v.name,
        x.unit
    );
}

/// `property` is violated in `v`, and every unit was decided.
#[track_caller]
pub fn assert_violated(v: &VariantResult, node: &str, property: &str, context: &str) {
    let x = verdict(v, node, property);
    assert!(
        x.violated > 0 && x.unchecked == 0,
        "{context}, {}: {property} should be violated with every {} checked: {x:?}",
        v.name,
        x.unit
    );
}
