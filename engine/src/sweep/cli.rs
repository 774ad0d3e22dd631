//! `archsim sweep` and `archsim merge`: selecting runs, running them with a progress bar,
//! writing run files or the merged report.
//!
//! Exit codes as everywhere: 0 success; 1 a run failed or output could not be written; 2 bad
//! input (scenario, arguments, shard environment, run files that do not merge).

use super::merge::{Collector, MergeError, assemble};
use super::shard::{self, Shard};
use super::{Manifest, RUNS_DIR, execute, json_bytes, plan, run_file_name, select_by_name};
use crate::output::{write_atomically_shared, write_files_atomically};
use crate::registry::Registry;
use crate::report;
use crate::runner::RunFailure;
use crate::scenario::{self, Scenario};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The options of `archsim sweep`: the one definition `--help` prints.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SweepArgs {
    /// Scenario file (RON) with a `sweep:` block.
    pub file: PathBuf,
    /// Output directory. Default: reports/<scenario file name without .ron>/
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads. Default: one per core. The output does not depend on it.
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Base seed instead of the scenario's `seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run only these runs (ids such as `p2c:3:7`, or indices; see --list) and write their
    /// run files for `archsim merge`.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub runs: Vec<String>,
    /// Print every run (index, id, seed, parameter values) and exit.
    #[arg(long)]
    pub list: bool,
    /// Run shard I of N (0-based: the runs r with r mod N = I) and write their run files;
    /// `auto` reads Slurm, Kubernetes Indexed Job, AWS Batch or Google Cloud Batch
    /// array variables.
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,
    /// Number of shards for `--shard auto` where the environment has no count
    /// (Kubernetes: the Job's `completions`).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
}

/// `archsim sweep`.
pub fn cmd_sweep(registry: &Registry, a: &SweepArgs) -> ExitCode {
    match sweep(registry, a, &|k| std::env::var(k).ok()) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("{}", message.trim_end());
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn bad(message: impl Into<String>) -> Failure {
    (2, message.into())
}

fn sweep(
    registry: &Registry,
    a: &SweepArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Failure> {
    let s = scenario::load(&a.file, registry).map_err(|e| bad(e.to_string()))?;
    let Some(sweep) = &s.sweep else {
        return Err(bad(format!(
            "error: {} has no `sweep:` block; add one (docs/scenario-format.md, \"Sweeps\") \
             or use `archsim run`",
            a.file.display()
        )));
    };
    let manifest = plan(&s, sweep, a.seed.unwrap_or(s.base.seed));
    if a.list {
        print!("{}", list_runs(&manifest));
        return Ok(());
    }
    let (selected, partial, what) = select(&manifest, a, env)?;
    eprintln!(
        "archsim {}: sweeping {} \"{}\" (seed {}, {} variant{} × {} point{} × {} replication{} \
         = {} runs{what})",
        env!("CARGO_PKG_VERSION"),
        a.file.display(),
        s.base.name,
        manifest.seed,
        manifest.variants.len(),
        plural(manifest.variants.len()),
        manifest.points.len(),
        plural(manifest.points.len()),
        manifest.replications,
        plural(manifest.replications as usize),
        manifest.runs.len(),
    );
    let run_files = run_all(registry, &s, &manifest, &selected, a.jobs)?;
    let dir = a.out.clone().unwrap_or_else(|| default_out(&a.file));
    let manifest_bytes = json_bytes(&manifest);
    if partial {
        return write_shard(&dir, &manifest_bytes, &run_files);
    }
    let mut c = Collector::new();
    c.manifest("sweep", manifest_bytes);
    for (index, bytes) in run_files {
        c.run(&format!("run {index}"), Some(index), bytes);
    }
    write_merged(&dir, c)
}

/// Which runs to make: all, `--runs`, a shard, or both (their intersection); whether that is a
/// part of the sweep; and a phrase for the first log line.
fn select(
    manifest: &Manifest,
    a: &SweepArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Vec<usize>, bool, String), Failure> {
    let mut selected: Vec<usize> = if a.runs.is_empty() {
        (0..manifest.runs.len()).collect()
    } else {
        select_by_name(manifest, &a.runs).map_err(|w| {
            bad(format!(
                "error: --runs: no run named {w:?}; `archsim sweep FILE --list` prints the runs \
                 (an id such as {:?} or an index from 0 to {})",
                manifest.runs[0].id,
                manifest.runs.len() - 1
            ))
        })?
    };
    let mut what = String::new();
    if a.shards.is_some() && a.shard.as_deref() != Some("auto") {
        return Err(bad("error: --shards N goes with --shard auto"));
    }
    let shard: Option<Shard> = match a.shard.as_deref() {
        None => None,
        Some("auto") => {
            let (shard, how) =
                shard::from_env(env, a.shards).map_err(|e| bad(format!("error: {e}")))?;
            eprintln!("{how}");
            Some(shard)
        }
        Some(text) => Some(shard::parse(text).map_err(|e| bad(format!("error: {e}")))?),
    };
    if let Some(shard) = shard {
        selected.retain(|&r| shard.owns(r));
        what = format!("; shard {shard}: {} of them", selected.len());
    } else if !a.runs.is_empty() {
        what = format!("; {} selected", selected.len());
    }
    let partial = shard.is_some() || !a.runs.is_empty();
    Ok((selected, partial, what))
}

fn run_all(
    registry: &Registry,
    s: &Scenario,
    manifest: &Manifest,
    selected: &[usize],
    jobs: Option<usize>,
) -> Result<Vec<(usize, Vec<u8>)>, Failure> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.unwrap_or(0))
        .build()
        .map_err(|e| (1, format!("error: cannot start worker threads: {e}")))?;
    let bar = progress_bar(selected.len() as u64);
    let sweep = s.sweep.as_ref().expect("checked by the caller");
    let result = pool.install(|| execute(s, sweep, manifest, selected, registry, &|| bar.inc(1)));
    bar.finish_and_clear();
    result.map_err(|e| match e {
        RunFailure::UnknownVariant(..) => bad(e.to_string()),
        RunFailure::Run(..) => (1, e.to_string()),
    })
}

/// Runs done / total with an ETA, on a terminal only: in CI (or piped) the output stays quiet.
fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let on_terminal = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    if !on_terminal {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} runs, {elapsed} elapsed, ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn write_shard(dir: &Path, manifest: &[u8], runs: &[(usize, Vec<u8>)]) -> Result<(), Failure> {
    let cannot = |e: std::io::Error| (1, format!("error: cannot write {}: {e}", dir.display()));
    let files: Vec<(String, Vec<u8>)> = runs
        .iter()
        .map(|(i, bytes)| (run_file_name(*i), bytes.clone()))
        .collect();
    write_files_atomically(&dir.join(RUNS_DIR), &files).map_err(cannot)?;
    // Every shard writes the same manifest bytes, so shards sharing a directory agree; each
    // through its own temp file, as they may write at the same moment.
    let path = dir.join(super::MANIFEST_FILE);
    if std::fs::read(&path).ok().as_deref() != Some(manifest) {
        let writer = format!(
            "{}-{}",
            std::process::id(),
            runs.first().map_or(0, |(i, _)| *i)
        );
        write_atomically_shared(&path, manifest, &writer).map_err(cannot)?;
    }
    eprintln!(
        "wrote {} run file{} to {}/{RUNS_DIR}/; when every shard is done: \
         archsim merge DIR... --out REPORT_DIR",
        runs.len(),
        plural(runs.len()),
        dir.display()
    );
    Ok(())
}

fn write_merged(dir: &Path, c: Collector) -> Result<(), Failure> {
    let (manifest, runs) = c.finish().map_err(|e| match e {
        MergeError::Io(_) => (1, e.to_string()),
        MergeError::Invalid(_) => bad(e.to_string()),
    })?;
    let (results, files) = assemble(&manifest, &runs)
        .map_err(|e| (1, format!("error: cannot render the report: {e}")))?;
    write_files_atomically(dir, &files)
        .map_err(|e| (1, format!("error: cannot write {}: {e}", dir.display())))?;
    print!("{}", report::sweep::terminal_table(&results));
    eprintln!("wrote {}/ ({} files)", dir.display(), files.len());
    Ok(())
}

/// `archsim merge DIR... --out DIR`.
pub fn cmd_merge(dirs: &[PathBuf], out: &Path) -> ExitCode {
    let mut c = Collector::new();
    let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    if let Err(e) = c.read_dirs(&refs) {
        // Input that cannot be read is bad input, like a scenario that cannot be.
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    match write_merged(out, c) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("{}", message.trim_end());
            ExitCode::from(code)
        }
    }
}

/// `--list`: one line per run.
fn list_runs(m: &Manifest) -> String {
    let mut out = String::from("index  id  seed  parameters\n");
    for r in &m.runs {
        let values: Vec<String> = m
            .parameters
            .iter()
            .zip(&m.points[r.point])
            .map(|(p, &i)| format!("{}={}", p.path, p.values[i]))
            .collect();
        out.push_str(&format!(
            "{}  {}  {}  {}\n",
            r.index,
            r.id,
            r.seed,
            values.join(" ")
        ));
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn default_out(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    Path::new("reports").join(stem)
}
