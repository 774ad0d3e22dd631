//! Gathers a sweep's run files (from one machine's memory or from shard directories), checks
//! them, and assembles the report: the one path from runs to output, used by both `sweep` and
//! `merge`, so the two write the same bytes.
//!
//! Checks: every shard planned the same sweep (same manifest bytes) with the same math
//! fingerprint; every run file parses, belongs to this sweep and sits under its own index; a
//! run seen twice has identical bytes; every run is present (the missing ones are named).

use super::results::{SweepResults, aggregate};
use super::{MANIFEST_FILE, Manifest, RUNS_DIR, RunRecord, json_bytes, manifest_digest};
use crate::report::{self, ReportError, ReportFile};
use std::fmt;
use std::path::Path;

/// Why runs could not be merged.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeError {
    /// A directory or file could not be read.
    Io(String),
    /// Input that is not what a sweep writes, or that does not fit together.
    Invalid(Vec<String>),
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::Io(e) => write!(f, "error: {e}"),
            MergeError::Invalid(problems) => {
                for p in problems {
                    writeln!(f, "error: {p}")?;
                }
                write!(
                    f,
                    "{} problem{} found; nothing was written",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                )
            }
        }
    }
}

impl std::error::Error for MergeError {}

/// Run files gathered so far, checked as they come.
pub struct Collector {
    manifest: Option<(String, Vec<u8>, Manifest)>,
    runs: Vec<Option<(String, Vec<u8>, RunRecord)>>,
    problems: Vec<String>,
}

impl Default for Collector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector {
    /// Nothing gathered yet.
    pub fn new() -> Collector {
        Collector {
            manifest: None,
            runs: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// A manifest (`sweep.json`) from `source`. The first one fixes the sweep; later ones
    /// must carry the same math fingerprint and bytes.
    pub fn manifest(&mut self, source: &str, bytes: Vec<u8>) {
        if let Some(p) = other_version(source, &bytes) {
            self.problems.push(p);
            return;
        }
        let m: Manifest = match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => {
                self.problems.push(format!(
                    "{source}:{}:{}: not a sweep manifest written by archsim: {e}",
                    e.line(),
                    e.column()
                ));
                return;
            }
        };
        match &self.manifest {
            None => {
                self.runs = vec![None; m.runs.len()];
                self.manifest = Some((source.to_string(), bytes, m));
            }
            Some((first, _, fm)) if fm.math_fingerprint != m.math_fingerprint => {
                self.problems.push(format!(
                    "{source} was computed with math fingerprint {} but {first} with {}: \
                     the builds' floating-point math differs (see DESIGN.md on libm), so their \
                     runs cannot be merged; rebuild every shard from the same archsim",
                    m.math_fingerprint, fm.math_fingerprint
                ));
            }
            Some((first, first_bytes, _)) if *first_bytes != bytes => {
                self.problems.push(format!(
                    "{source} describes a different sweep than {first} (scenario, seed, \
                     parameters or archsim version differ)"
                ));
            }
            Some(_) => {}
        }
    }

    /// A run file's bytes, `source` naming it in messages, `file_index` the index its file name
    /// says (if it has one).
    pub fn run(&mut self, source: &str, file_index: Option<usize>, bytes: Vec<u8>) {
        let Some((_, manifest_bytes, m)) = &self.manifest else {
            self.problems
                .push(format!("{source}: no {MANIFEST_FILE} next to it"));
            return;
        };
        if let Some(p) = other_version(source, &bytes) {
            self.problems.push(p);
            return;
        }
        let record: RunRecord = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.problems.push(format!(
                    "{source}:{}:{}: corrupted run file (not a run written by archsim: {e})",
                    e.line(),
                    e.column()
                ));
                return;
            }
        };
        let i = record.run.index;
        let problem = if record.math_fingerprint != m.math_fingerprint {
            Some(format!(
                "math fingerprint {} differs from the sweep's {}; runs from builds with \
                 different floating-point math cannot be merged",
                record.math_fingerprint, m.math_fingerprint
            ))
        } else if record.sweep_digest != manifest_digest(manifest_bytes) {
            Some("belongs to a different sweep".to_string())
        } else if i >= m.runs.len() || m.runs[i] != record.run {
            Some("its run does not match the sweep's plan".to_string())
        } else if file_index.is_some_and(|f| f != i) {
            Some(format!("holds run {i} under another run's file name"))
        } else {
            None
        };
        if let Some(p) = problem {
            self.problems.push(format!("{source}: {p}"));
            return;
        }
        match &self.runs[i] {
            Some((_, seen, _)) if *seen != bytes => self.problems.push(format!(
                "run {} ({}) appears twice with different bytes: {} and {source}",
                i,
                record.run.id,
                self.runs[i].as_ref().expect("seen").0
            )),
            Some(_) => {}
            None => self.runs[i] = Some((source.to_string(), bytes, record)),
        }
    }

    /// Read every shard directory: its `sweep.json`, then each `runs/*.json`.
    pub fn read_dirs(&mut self, dirs: &[&Path]) -> Result<(), MergeError> {
        for dir in dirs {
            let path = dir.join(MANIFEST_FILE);
            match read_regular(&path) {
                Ok(bytes) => self.manifest(&path.display().to_string(), bytes),
                Err(e) => self.problems.push(format!(
                    "{}: {e} (is {} a sweep shard's output directory?)",
                    path.display(),
                    dir.display()
                )),
            }
        }
        for dir in dirs {
            let runs_dir = dir.join(RUNS_DIR);
            let Ok(entries) = std::fs::read_dir(&runs_dir) else {
                continue; // A shard that ran nothing, or the missing manifest said enough.
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                // Hidden names are temp files of an interrupted write, never a finished run.
                .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
                .collect();
            names.sort();
            for name in names {
                let path = runs_dir.join(&name);
                let bytes = read_regular(&path)
                    .map_err(|e| MergeError::Io(format!("cannot read {}: {e}", path.display())))?;
                let index = name.trim_end_matches(".json").parse().ok();
                self.run(&path.display().to_string(), index, bytes);
            }
        }
        Ok(())
    }

    /// Every run, checked, or every problem found (missing runs named).
    pub fn finish(self) -> Result<(Manifest, Vec<RunRecord>), MergeError> {
        let mut problems = self.problems;
        let Some((_, _, manifest)) = self.manifest else {
            problems.push(format!("no {MANIFEST_FILE} found"));
            return Err(MergeError::Invalid(problems));
        };
        let missing: Vec<String> = self
            .runs
            .iter()
            .zip(&manifest.runs)
            .filter(|(r, _)| r.is_none())
            .map(|(_, e)| format!("{} ({})", e.index, e.id))
            .collect();
        if !missing.is_empty() {
            const SHOWN: usize = 20;
            let more = missing.len().saturating_sub(SHOWN);
            problems.push(format!(
                "{} of {} runs missing: {}{}",
                missing.len(),
                manifest.runs.len(),
                missing[..missing.len().min(SHOWN)].join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        if !problems.is_empty() {
            return Err(MergeError::Invalid(problems));
        }
        let runs = self
            .runs
            .into_iter()
            .map(|r| r.expect("checked").2)
            .collect();
        Ok((manifest, runs))
    }
}

/// The bytes of a regular file: a FIFO or device named like a run file would block or never
/// end, and is not something a sweep wrote.
fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    std::fs::read(path)
}

/// A problem if `bytes` (JSON) say another archsim version wrote them: formats and numbers
/// may differ between versions, so their runs cannot be merged into this one's report.
fn other_version(source: &str, bytes: &[u8]) -> Option<String> {
    let theirs = crate::results::written_by(bytes)?;
    let ours = env!("CARGO_PKG_VERSION");
    (theirs != ours).then(|| {
        format!(
            "{source} was written by archsim {theirs}, this is archsim {ours}: merge only \
             files this version wrote (re-run those runs with it)"
        )
    })
}

/// The report files of a complete sweep, in a fixed order: results.json, runs.csv, then what
/// `report::sweep` renders.
pub fn assemble(
    manifest: &Manifest,
    runs: &[RunRecord],
) -> Result<(SweepResults, Vec<ReportFile>), ReportError> {
    let results = aggregate(manifest, runs);
    let mut files = vec![
        ("results.json".to_string(), json_bytes(&results)),
        (
            "runs.csv".to_string(),
            runs_csv(manifest, runs).into_bytes(),
        ),
    ];
    files.extend(report::sweep::render(&results)?);
    Ok((results, files))
}

/// One row per run, long form (for pandas): identity, seed, parameter values, every metric.
pub fn runs_csv(manifest: &Manifest, runs: &[RunRecord]) -> String {
    let metric_names: Vec<String> = runs
        .first()
        .map(|r| {
            super::results::run_metrics(&r.result)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        })
        .unwrap_or_default();
    let mut head = vec![
        "index".to_string(),
        "id".into(),
        "variant".into(),
        "point".into(),
        "replication".into(),
        "seed".into(),
    ];
    head.extend(manifest.parameters.iter().map(|p| p.path.clone()));
    head.extend(metric_names.iter().cloned());
    head.push("digest".into());
    let mut out = csv_row(&head);
    for r in runs {
        let e = &r.run;
        let mut row = vec![
            e.index.to_string(),
            e.id.clone(),
            manifest.variants[e.variant].name.clone(),
            e.point.to_string(),
            e.replication.to_string(),
            e.seed.to_string(),
        ];
        for (p, &v) in manifest.parameters.iter().zip(&manifest.points[e.point]) {
            row.push(p.values[v].clone());
        }
        let metrics = super::results::run_metrics(&r.result);
        for name in &metric_names {
            row.push(
                metrics
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(String::new(), |(_, v)| format!("{v}")),
            );
        }
        row.push(r.result.digest.clone());
        out.push_str(&csv_row(&row));
    }
    out
}

/// RFC 4180: quote a field holding a comma, quote or line break; double inner quotes.
fn csv_row(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let row = csv_row(&["a".into(), "b,c".into(), "say \"hi\"".into()]);
        assert_eq!(row, "a,\"b,c\",\"say \"\"hi\"\"\"\n");
    }
}
