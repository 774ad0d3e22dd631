//! The one integration-test binary: theory, determinism, error messages, report, plug-ins.

mod analysis;
mod balancing;
mod browser;
mod cache;
mod cli;
mod components;
mod connections;
mod convergence;
mod deploy;
mod determinism;
mod election;
mod errors;
mod explore;
mod fault_kinds;
mod faults;
mod fuzz;
mod golden;
mod gslb;
mod harness;
mod headlines;
mod layers;
mod limits;
mod memory;
mod network;
mod ops;
mod plugin;
mod priority;
mod queue;
mod read_replicas;
mod replication;
mod reproducers;
mod resilience;
mod sharding;
mod slurm;
mod stream;
mod sweep;
mod theory;
mod traces;
mod txn;
mod workload;

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

pub use replication::run_file_with_seed;

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

/// Decoded pixels of a PNG: (width, height, color type, bytes).
fn png_pixels(bytes: &[u8]) -> Result<(u32, u32, String, Vec<u8>), String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let size = reader.output_buffer_size().ok_or("image too large")?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(info.buffer_size());
    let kind = format!("{:?} {:?}", info.color_type, info.bit_depth);
    Ok((info.width, info.height, kind, buf))
}

/// Whether a committed PNG shows what `fresh` shows: identical bytes, or the same size with
/// every channel of every pixel within 2 levels (rasterisation may round differently on
/// another CPU; anything stale moves glyphs and lines by far more). `Err` says how they differ.
pub fn same_png(committed: &[u8], fresh: &[u8]) -> Result<(), String> {
    if committed == fresh {
        return Ok(());
    }
    let (w, h, kind, a) = png_pixels(committed).map_err(|e| format!("committed: {e}"))?;
    let (fw, fh, fkind, b) = png_pixels(fresh).map_err(|e| format!("fresh: {e}"))?;
    if (w, h, &kind) != (fw, fh, &fkind) {
        return Err(format!("{w}x{h} {kind} committed, {fw}x{fh} {fkind} fresh"));
    }
    let off = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.abs_diff(**y) > 2)
        .count();
    if off > 0 {
        return Err(format!("{off} channel values differ by more than 2 levels"));
    }
    Ok(())
}

/// The files directly in `dir`, by name, sorted (empty if it does not exist).
pub fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    e.expect("readable entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
