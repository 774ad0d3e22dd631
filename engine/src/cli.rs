//! The `archsim` command line: run, report, validate, list, analyze, sweep, merge.
//!
//! Exit codes: 0 success; 1 a run failed or output could not be written; 2 bad input (a
//! scenario with errors, bad arguments, an unreadable results file). Nothing is written
//! unless the whole run succeeded, and every file is written through a temp file + rename.

use crate::output::write_files_atomically;
use crate::registry::Registry;
use crate::results::Results;
use crate::runner::{RunFailure, RunOptions, run};
use crate::scenario::{self, LoadError};
use crate::{list, report};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Deterministic discrete-event simulation of distributed-system designs.
#[derive(Parser, Debug)]
#[command(name = "archsim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario: print the table and write results.json, summary.md, plots, index.html.
    Run {
        /// Scenario file (RON).
        file: PathBuf,
        /// Seed to use instead of the scenario's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory. Default: reports/<scenario file name without .ron>/
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run only this variant (repeatable).
        #[arg(long = "variant", value_name = "NAME")]
        variants: Vec<String>,
        /// Run everything twice (the second time on one thread) and fail unless the results
        /// are byte-identical.
        #[arg(long)]
        check_determinism: bool,
        /// Worker threads for running variants in parallel. Default: one per core.
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Trace N sampled requests per variant (the same ones at any thread count): write
        /// trace-<variant>.json (Chrome trace events: open in ui.perfetto.dev or
        /// chrome://tracing), a latency breakdown by stage and hop, a sequence diagram of the
        /// first traced requests with the run's faults, and one of the p99 sampled request.
        /// At most 10000.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000))]
        trace: Option<u64>,
        /// With --trace: how many of the first traced requests the sequence diagram draws
        /// (default 10, at most 50; requests past 200 messages are left out).
        #[arg(long, value_name = "K", requires = "trace",
              value_parser = clap::value_parser!(u64).range(1..=50))]
        sequence: Option<u64>,
    },
    /// Rebuild summary.md, the plots and index.html from a saved results.json, without simulating.
    Report {
        /// A results.json written by `archsim run`.
        results: PathBuf,
        /// Output directory. Default: the directory holding results.json.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check scenario files for errors without running them.
    Validate {
        /// Scenario files (RON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show every built-in component, fault, distribution and strategy with its fields.
    List {
        /// Show only this kind (`Cache`, `Crash`, `LogNormal`) or section (`faults`).
        kind: Option<String>,
    },
    /// Print the analytic model of a scenario without simulating: flows, each station's
    /// queueing formula, latency as a sum over hops, availability, in milliseconds.
    Analyze {
        /// Scenario file (RON).
        file: PathBuf,
        /// Only this variant (repeatable). Default: every variant.
        #[arg(long = "variant", value_name = "NAME")]
        variants: Vec<String>,
    },
    /// Run every (variant, point, replication) of the scenario's `sweep:` block, or one
    /// shard of them, and write the report with 95% confidence intervals.
    Sweep(crate::sweep::cli::SweepArgs),
    /// Search fault schedules for one that breaks an objective, shrink it to a minimal one,
    /// and write it as a runnable scenario with its report and explore.md.
    ///
    /// Exit codes: 0 the objective held under every schedule tried (only explore.md is
    /// written); 3 a schedule breaking it was found, shrunk and written as found.ron; 1 a run
    /// hit a limit, the shrink used up --shrink-budget (found.ron written, maybe not minimal)
    /// or output could not be written; 2 bad input.
    Explore(crate::explore::args::ExploreArgs),
    /// Merge the run files of sweep shards into the report a single-machine sweep writes, or
    /// explore shards into what a single-machine explore writes.
    Merge {
        /// Shard output directories (each holds sweep.json and runs/, or explore-shard-*.json).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output directory for the report.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Run the `archsim` command line with the built-in components.
pub fn main() -> ExitCode {
    main_with(Registry::builtin())
}

/// Run the `archsim` command line with `registry` (built-ins plus the caller's plug-ins).
pub fn main_with(registry: Registry) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Run {
            file,
            seed,
            out,
            variants,
            check_determinism,
            jobs,
            trace,
            sequence,
        } => {
            let opts = RunOptions {
                seed,
                variants,
                trace: trace.unwrap_or(0) as usize,
                sequence: sequence.unwrap_or(0) as usize,
            };
            cmd_run(&registry, &file, out, &opts, check_determinism, jobs)
        }
        Command::Report { results, out } => cmd_report(&results, out),
        Command::Validate { files } => cmd_validate(&registry, &files),
        Command::List { kind } => cmd_list(&registry, kind.as_deref()),
        Command::Analyze { file, variants } => cmd_analyze(&registry, &file, &variants),
        Command::Sweep(args) => crate::sweep::cli::cmd_sweep(&registry, &args),
        Command::Merge { dirs, out } if crate::explore::cli::holds_shards(&dirs) => {
            crate::explore::cli::cmd_merge(&registry, &dirs, &out)
        }
        Command::Merge { dirs, out } => crate::sweep::cli::cmd_merge(&dirs, &out),
        Command::Explore(args) => crate::explore::cli::cmd_explore(&registry, &args),
    }
}

fn cmd_list(registry: &Registry, kind: Option<&str>) -> ExitCode {
    let listing = list::render(registry);
    let Some(kind) = kind else {
        print!("{listing}");
        return ExitCode::SUCCESS;
    };
    match list::filter(&listing, kind) {
        Some(part) => {
            print!("{part}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "error: nothing named {kind:?} in `archsim list` (try a component such as Cache, \
                 a fault such as Crash, or a section such as faults or distributions)"
            );
            ExitCode::from(2)
        }
    }
}

fn load(registry: &Registry, file: &Path) -> Result<scenario::Scenario, ExitCode> {
    scenario::load(file, registry).map_err(|e| {
        eprintln!("{e}");
        match e {
            LoadError::Io(..) | LoadError::Encoding { .. } | LoadError::Scenario(_) => {
                ExitCode::from(2)
            }
        }
    })
}

fn cmd_validate(registry: &Registry, files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        match load(registry, f) {
            Ok(s) => {
                let names: Vec<&str> = s.variants.iter().map(|v| v.name.as_str()).collect();
                let sweep = s.sweep.as_ref().map_or(String::new(), |p| {
                    let runs = p.cells.len() * p.replications as usize;
                    format!("; sweep of {runs} runs")
                });
                println!(
                    "{}: ok ({} variant{}: {}{sweep})",
                    f.display(),
                    names.len(),
                    plural(names.len()),
                    names.join(", ")
                );
                for line in overload_warnings(&s) {
                    println!("  {line}");
                }
            }
            Err(_) => ok = false,
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// One warning per station of any variant that cannot keep up (offered load ρ ≥ 1).
fn overload_warnings(s: &scenario::Scenario) -> Vec<String> {
    let mut out = Vec::new();
    for v in &s.variants {
        let theory = crate::analysis::analyze(&v.model);
        for line in crate::analysis::overloaded(&theory.stations) {
            let which = if s.variants.len() > 1 {
                format!("variant \"{}\": ", v.name)
            } else {
                String::new()
            };
            out.push(format!("warning: {which}{line}"));
        }
    }
    out
}

fn cmd_analyze(registry: &Registry, file: &Path, wanted: &[String]) -> ExitCode {
    let s = match load(registry, file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let known: Vec<String> = s.variants.iter().map(|v| v.name.clone()).collect();
    if let Some(bad) = wanted.iter().find(|w| !known.contains(w)) {
        eprintln!(
            "error: no variant named \"{bad}\"; expected one of: {}",
            known.join(", ")
        );
        return ExitCode::from(2);
    }
    let theories: Vec<(String, crate::results::Theory)> = s
        .variants
        .iter()
        .filter(|v| wanted.is_empty() || wanted.contains(&v.name))
        .map(|v| (v.name.clone(), crate::analysis::analyze(&v.model)))
        .collect();
    print!("{}", report::analysis_text(&s.base.name, &theories));
    ExitCode::SUCCESS
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

fn run_with_threads(
    registry: &Registry,
    s: &scenario::Scenario,
    opts: &RunOptions,
    jobs: Option<usize>,
) -> Result<Results, ExitCode> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.unwrap_or(0))
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start worker threads: {e}");
            ExitCode::from(1)
        })?;
    pool.install(|| run(s, registry, opts)).map_err(|e| {
        eprintln!("{e}");
        match e {
            RunFailure::UnknownVariant(..) => ExitCode::from(2),
            RunFailure::Run(..) => ExitCode::from(1),
        }
    })
}

fn cmd_run(
    registry: &Registry,
    file: &Path,
    out: Option<PathBuf>,
    opts: &RunOptions,
    check_determinism: bool,
    jobs: Option<usize>,
) -> ExitCode {
    let s = match load(registry, file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let seed = opts.seed.unwrap_or(s.base.seed);
    if s.sweep.is_some() {
        eprintln!(
            "note: {} has a `sweep:` block; `run` runs its variants once, at the values written \
             in the file; `archsim sweep` runs the sweep",
            file.display()
        );
    }
    eprintln!(
        "archsim {}: running {} \"{}\" (seed {seed}, {} variant{}, {} simulated each)",
        env!("CARGO_PKG_VERSION"),
        file.display(),
        s.base.name,
        s.variants.len(),
        plural(s.variants.len()),
        s.base.duration
    );
    for line in overload_warnings(&s) {
        eprintln!("{line}");
    }
    let results = match run_with_threads(registry, &s, opts, jobs) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let json = results_json(&results);
    if check_determinism {
        match run_with_threads(registry, &s, opts, Some(1)) {
            Ok(again) if results_json(&again) == json => {
                eprintln!(
                    "determinism: ok (two runs, {} bytes identical, digest {})",
                    json.len(),
                    results.digest
                )
            }
            Ok(again) => {
                eprintln!(
                    "error: determinism check failed: digest {} then {} (seed {seed})",
                    results.digest, again.digest
                );
                return ExitCode::from(1);
            }
            Err(code) => return code,
        }
    }
    print!("{}", report::terminal_table(&results));
    print!("{}", report::theory_table(&results));
    for w in &results.warnings {
        eprintln!("warning: {w}");
    }
    let dir = out.unwrap_or_else(|| default_out(file));
    write_report(&dir, &results, Some(json))
}

/// The bytes of results.json.
pub fn results_json(r: &Results) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(r).expect("results serialize");
    v.push(b'\n');
    v
}

fn write_report(dir: &Path, results: &Results, json: Option<Vec<u8>>) -> ExitCode {
    let mut files = match report::render(results) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot render the report: {e}");
            return ExitCode::from(1);
        }
    };
    // results.json goes with the rest: if any file cannot be written, none is.
    if let Some(json) = json {
        files.push(("results.json".to_string(), json));
    }
    if let Err(e) = write_files_atomically(dir, &files) {
        eprintln!("error: cannot write the report: {e}");
        return ExitCode::from(1);
    }
    eprintln!("wrote {}/ ({} files)", dir.display(), files.len());
    ExitCode::SUCCESS
}

fn cmd_report(path: &Path, out: Option<PathBuf>) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let ours = env!("CARGO_PKG_VERSION");
    if let Some(theirs) = crate::results::written_by(text.as_bytes())
        && theirs != ours
    {
        eprintln!(
            "error: {} was written by archsim {theirs}, this is archsim {ours}: `report` reads \
             only its own version's results (re-run the scenario with this archsim)",
            path.display()
        );
        return ExitCode::from(2);
    }
    if let Ok(sweep) = serde_json::from_str::<crate::sweep::results::SweepResults>(&text) {
        let dir = out.unwrap_or_else(|| {
            path.parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        });
        return write_sweep_report(&dir, &sweep);
    }
    let results: Results = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "error: {}:{}:{}: not a results.json written by archsim: {e}",
                path.display(),
                e.line(),
                e.column()
            );
            return ExitCode::from(2);
        }
    };
    let dir = out.unwrap_or_else(|| {
        path.parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    write_report(&dir, &results, None)
}

/// `report` on a sweep's results.json: everything but results.json and runs.csv (which need
/// the runs).
fn write_sweep_report(dir: &Path, results: &crate::sweep::results::SweepResults) -> ExitCode {
    let files = match report::sweep::render(results) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot render the report: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = write_files_atomically(dir, &files) {
        eprintln!("error: cannot write {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    eprintln!("wrote {}/ ({} files)", dir.display(), files.len());
    ExitCode::SUCCESS
}
