//! Reading the trace files that `Trace(file: ...)` arrivals replay, while the scenario is
//! validated: a bad row is an error located in the CSV (file:line) and at the `file` field of
//! the scenario, and nothing runs.
//!
//! A trace is read once per validated variant and shared (`Arc`) by every run of it; its rows
//! are the one input whose memory grows with the file (24 bytes a row, at most
//! `MAX_TRACE_ROWS`).

use super::Spec;
use crate::components::NodeConfig;
use crate::components::traffic::client::Arrival;
use crate::components::traffic::workload::{MAX_TRACE_ROWS, TraceOptions, parse_trace};
use crate::contract::validate::{Path, Validator};
use std::sync::Arc;

/// Most bytes a trace file may have (read whole before parsing).
const MAX_TRACE_BYTES: u64 = 1 << 30;

/// Read every client's trace that is not read yet; problems go to `v`.
pub fn load(spec: &mut Spec, v: &mut Validator<'_>) {
    let base = spec.base_dir.clone();
    let classes = spec.classes.clone();
    for (name, cfg) in spec.nodes.iter_mut() {
        let NodeConfig::Client(c) = cfg else {
            continue;
        };
        let Arrival::Trace {
            file,
            time_scale,
            rebase,
            loaded,
            ..
        } = &mut c.arrival
        else {
            continue;
        };
        if loaded.is_some() || !(time_scale.is_finite() && *time_scale > 0.0) {
            continue; // Read already, or its scale is reported by the client's own checks.
        }
        let at = Path::root()
            .field("nodes")
            .key(name)
            .field("arrival")
            .field("file");
        let path = base.join(&*file);
        let shown = path.display().to_string();
        let bytes = match read(&path) {
            Ok(b) => b,
            Err(why) => {
                v.error(
                    &at,
                    format!("cannot read trace {shown}: {why}"),
                    "expected a CSV file, found relative to the scenario file",
                );
                continue;
            }
        };
        let opts = TraceOptions {
            time_scale: *time_scale,
            rebase: *rebase,
            classes: &classes,
            max_rows: MAX_TRACE_ROWS,
        };
        match parse_trace(&bytes, opts) {
            Ok(trace) => *loaded = Some(Arc::new(trace)),
            Err(errors) => {
                for e in errors {
                    let place = if e.line == 0 {
                        shown.clone()
                    } else {
                        format!("{shown}:{}", e.line)
                    };
                    v.error(&at, format!("{place}: {}", e.message), e.expected);
                }
            }
        }
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_string());
    }
    if meta.len() > MAX_TRACE_BYTES {
        return Err(format!(
            "{} bytes, more than the 1 GiB a trace may have",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}
