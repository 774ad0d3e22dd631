//! `archsim explore`: reading its options into a search space, running the search and the
//! shrink, and writing the found scenario, its report and explore.md.
//!
//! Exit codes, so a script can branch on the answer: 0 the objective held under every schedule
//! of the budget (only explore.md is written); 3 a schedule breaking it was found, shrunk to a
//! minimal one and written as found.ron (also when the run without faults already breaks it:
//! the empty schedule); 1 a run hit one of the scenario's limits, the shrink ran out of its
//! budget (what was found is still written, not necessarily minimal), or output could not be
//! written; 2 bad input (scenario, objective, options).

use super::args::ExploreArgs;
use super::objective::Objective;
use super::shard::{self as shards, Merged, ShardFile, Stop};
use super::shrink::{Shrunk, shrink};
use super::write::{Story, Summary, found_scenario, markdown};
use super::{ExploreError, Found, Kind, Measured, Probe, Space, search, search_indices};
use crate::output::write_files_atomically;
use crate::registry::Registry;
use crate::results::Verdict;
use crate::runner::{RunOptions, run};
use crate::scenario::{self, Scenario, Variant};
use crate::sim::time::{SimDuration, parse_duration};
use crate::sweep::shard::{self, Shard};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

type Failure = (u8, String);

fn bad(message: impl Into<String>) -> Failure {
    (2, message.into())
}

/// The exit code of an explore that found a schedule breaking the objective and wrote it.
pub const EXIT_BROKEN: u8 = 3;

/// What the search concluded, for the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// No schedule of the budget broke the objective.
    Held,
    /// A (shrunk) schedule broke it and was written.
    Broken,
    /// One shard's part of the search was written, for `archsim merge`.
    Shard,
}

/// How the schedules are searched.
enum Mode {
    /// All of them, here.
    All,
    /// One shard of them, written to a shard file.
    Shard(Shard),
    /// None: the shards' merged files say where the search stopped.
    Merged(Box<Merged>),
}

fn exit(result: Result<Outcome, Failure>) -> ExitCode {
    match result {
        Ok(Outcome::Held | Outcome::Shard) => ExitCode::SUCCESS,
        Ok(Outcome::Broken) => ExitCode::from(EXIT_BROKEN),
        Err((code, message)) => {
            eprintln!("{}", message.trim_end());
            ExitCode::from(code)
        }
    }
}

/// `archsim explore`.
pub fn cmd_explore(registry: &Registry, a: &ExploreArgs) -> ExitCode {
    let mode = match shard_of(a, &|k| std::env::var(k).ok()) {
        Ok(Some(s)) => Mode::Shard(s),
        Ok(None) => Mode::All,
        Err(e) => return exit(Err(e)),
    };
    exit(explore(registry, a, &mode))
}

/// Whether `dirs` hold explore shard files (`archsim merge` then merges a search).
pub fn holds_shards(dirs: &[PathBuf]) -> bool {
    !shards::files_in(dirs).is_empty()
}

/// `archsim merge` of explore shards: the search as one machine finishes it, written to `out`.
pub fn cmd_merge(registry: &Registry, dirs: &[PathBuf], out: &Path) -> ExitCode {
    let merged = match shards::merge(&shards::files_in(dirs)) {
        Ok(m) => m,
        Err(e) => return exit(Err(bad(e))),
    };
    let args = ExploreArgs {
        out: Some(out.to_path_buf()),
        ..merged.args.clone()
    };
    exit(explore(registry, &args, &Mode::Merged(Box::new(merged))))
}

/// `--shard I/N` or `--shard auto`, as `sweep` reads them.
fn shard_of(
    a: &ExploreArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Shard>, Failure> {
    if a.shards.is_some() && a.shard.as_deref() != Some("auto") {
        return Err(bad("error: --shards N goes with --shard auto"));
    }
    match a.shard.as_deref() {
        None => Ok(None),
        Some("auto") => {
            let (s, how) =
                shard::from_env(env, a.shards).map_err(|e| bad(format!("error: {e}")))?;
            eprintln!("{how}");
            Ok(Some(s))
        }
        Some(text) => Ok(Some(
            shard::parse(text).map_err(|e| bad(format!("error: {e}")))?,
        )),
    }
}

fn load(registry: &Registry, file: &Path) -> Result<(Scenario, String), Failure> {
    let s = scenario::load(file, registry).map_err(|e| bad(e.to_string()))?;
    let src = std::fs::read_to_string(file)
        .map_err(|e| bad(format!("error: cannot read {}: {e}", file.display())))?;
    Ok((s, src))
}

fn pick_variant<'s>(s: &'s Scenario, wanted: Option<&str>) -> Result<&'s Variant, Failure> {
    let names: Vec<&str> = s.variants.iter().map(|v| v.name.as_str()).collect();
    match wanted {
        None if s.variants.len() == 1 => Ok(&s.variants[0]),
        None => Err(bad(format!(
            "error: {} has {} variants; name the one to explore with --variant (one of: {})",
            s.file,
            names.len(),
            names.join(", ")
        ))),
        Some(w) => s.variants.iter().find(|v| v.name == w).ok_or_else(|| {
            bad(format!(
                "error: --variant: no variant named \"{w}\"; expected one of: {}",
                names.join(", ")
            ))
        }),
    }
}

/// `FROM..TO` as two durations.
fn range(option: &str, text: &str) -> Result<(SimDuration, SimDuration), Failure> {
    let expected = format!("expected {option} FROM..TO with two durations, such as 1s..5s");
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| bad(format!("error: {option} `{text}`: no `..`; {expected}")))?;
    let a = parse_duration(a).map_err(|e| bad(format!("error: {option} `{text}`: {e}")))?;
    let b = parse_duration(b).map_err(|e| bad(format!("error: {option} `{text}`: {e}")))?;
    if a >= b {
        return Err(bad(format!(
            "error: {option} `{text}`: the range is empty; {expected}, FROM before TO"
        )));
    }
    Ok((a, b))
}

/// The search space from the options, with defaults from the variant.
fn space(v: &Variant, a: &ExploreArgs) -> Result<Space, Failure> {
    let spec = &v.model.spec;
    let kinds = if a.kinds.is_empty() {
        vec![Kind::Crash, Kind::Pause, Kind::Isolate, Kind::Partition]
    } else {
        let all: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        a.kinds
            .iter()
            .map(|k| {
                Kind::parse(k).ok_or_else(|| {
                    bad(format!(
                        "error: --kinds: no fault kind `{k}`; expected some of: {}",
                        all.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let targets = targets(v, &a.targets)?;
    let (start, stop) = match &a.window {
        Some(w) => range("--window", w)?,
        None => (spec.warmup, spec.duration),
    };
    if stop > spec.duration {
        return Err(bad(format!(
            "error: --window ends at {stop}, after the run ({}); expected a window within 0s..{}",
            spec.duration, spec.duration
        )));
    }
    let ms = SimDuration::from_millis(1);
    let (min_duration, max_duration) = match &a.durations {
        Some(d) => range("--durations", d)?,
        None => (
            SimDuration((spec.duration.0 / 1000 / ms.0).max(1) * ms.0),
            SimDuration((spec.duration.0 / 4 / ms.0).max(2) * ms.0),
        ),
    };
    if min_duration < ms {
        return Err(bad(
            "error: --durations: faults last at least 1ms; expected MIN of 1ms or more",
        ));
    }
    Ok(Space {
        kinds,
        targets,
        start,
        stop,
        min_duration,
        max_duration,
        max_faults: a.max_faults as usize,
    })
}

/// Node names faults may hit: the named nodes and groups, or every node but the clients.
fn targets(v: &Variant, wanted: &[String]) -> Result<Vec<String>, Failure> {
    let m = &v.model;
    let name_of = |id: &crate::sim::NodeId| m.names.nodes[id.idx()].0.clone();
    if wanted.is_empty() {
        let out: Vec<String> = m
            .names
            .nodes
            .iter()
            .filter(|(_, group)| {
                m.spec
                    .nodes
                    .get(group)
                    .is_some_and(|c| c.client_timeout().is_none())
            })
            .map(|(name, _)| name.clone())
            .collect();
        if out.is_empty() {
            return Err(bad(
                "error: the scenario has no node but clients to fault; name targets with --targets",
            ));
        }
        return Ok(out);
    }
    let mut out: Vec<String> = Vec::new();
    for w in wanted {
        let ids = m.names.resolve(w);
        if ids.is_empty() {
            let known: Vec<&str> = m.names.by_name.keys().map(String::as_str).collect();
            return Err(bad(format!(
                "error: --targets: no node or group named \"{w}\"; expected some of: {}",
                known.join(", ")
            )));
        }
        for name in ids.iter().map(name_of) {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    Ok(out)
}

fn quoted(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The command line that runs this exact search and shrink again.
fn command(a: &ExploreArgs, v: &Variant, sp: &Space, seed: u64, objective: &str) -> String {
    let kinds: Vec<&str> = sp.kinds.iter().map(|k| k.name()).collect();
    let mut c = format!(
        "archsim explore {} --variant {} --objective {} --seed {seed} --budget {} \
         --kinds {} --window {}..{} --durations {}..{} --max-faults {} --shrink-budget {}",
        quoted(&a.file.display().to_string()),
        quoted(&v.name),
        quoted(objective),
        a.budget,
        kinds.join(","),
        sp.start,
        sp.stop,
        sp.min_duration,
        sp.max_duration,
        sp.max_faults,
        a.shrink_budget
    );
    if !a.targets.is_empty() {
        c += &format!(" --targets {}", quoted(&a.targets.join(",")));
    }
    c
}

fn run_failure(e: ExploreError) -> Failure {
    let ExploreError::Run { picks, message } = e;
    (
        1,
        format!(
            "error: a run stopped under the schedule\n    faults: {},\n  {message}",
            super::write::faults_value(&picks)
        ),
    )
}

fn explore(registry: &Registry, a: &ExploreArgs, mode: &Mode) -> Result<Outcome, Failure> {
    let (s, src) = load(registry, &a.file)?;
    if let Mode::Merged(m) = mode
        && shards::source_hash(&src) != m.source_hash
    {
        return Err(bad(format!(
            "error: {} is not the file the shards explored (it changed since they ran)",
            a.file.display()
        )));
    }
    let v = pick_variant(&s, a.variant.as_deref())?;
    let parsed = Objective::parse(&a.objective).map_err(|e| bad(e.to_string()))?;
    let space = space(v, a)?;
    let seed = a.seed.unwrap_or(s.base.seed);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.jobs.unwrap_or(0))
        .build()
        .map_err(|e| (1, format!("error: cannot start worker threads: {e}")))?;
    let unresolved = Probe {
        variant: v,
        registry,
        seed: s.base.seed,
        objective: &parsed,
    };
    eprintln!(
        "archsim {}: exploring {} variant \"{}\" for `{}` (seed {seed}, budget {})",
        env!("CARGO_PKG_VERSION"),
        a.file.display(),
        v.name,
        a.objective,
        a.budget
    );
    let without = pool.install(|| unresolved.run(&[])).map_err(run_failure)?;
    let verdicts: Vec<&Verdict> = without.verdicts.values().flatten().collect();
    let objective = parsed
        .clone()
        .resolve(&verdicts)
        .map_err(|e| bad(e.to_string()))?;
    let probe = Probe {
        objective: &objective,
        ..unresolved
    };
    let baseline = objective.measure(&without);
    let cmd = command(a, v, &space, seed, &objective.describe());
    let (found, ran) = match mode {
        Mode::Shard(sh) => {
            let owned: Vec<u64> = (0..a.budget)
                .filter(|&i| !baseline.broken && sh.owns(i as usize))
                .collect();
            let (stop, ran) = pool.install(|| search_indices(&probe, &space, seed, &owned));
            return write_shard(a, &src, *sh, (stop, ran));
        }
        _ if baseline.broken => (None, 0),
        Mode::All => pool
            .install(|| search(&probe, &space, seed, a.budget))
            .map_err(run_failure)?,
        Mode::Merged(m) => merged_found(m, &space, seed)?,
    };
    let shrunk = match &found {
        Some(f) => Some(
            pool.install(|| {
                shrink(f.picks.clone(), a.shrink_budget, &mut |picks| {
                    probe.test(picks).map(|m| m.broken)
                })
            })
            .map_err(run_failure)?,
        ),
        None => None,
    };
    let final_measured = match &shrunk {
        Some(sh) => Some(
            pool.install(|| probe.test(&sh.picks))
                .map_err(run_failure)?,
        ),
        None => None,
    };
    let summary = Summary {
        scenario: &s.base.name,
        variant: &v.name,
        objective: &objective.describe(),
        seed,
        space: &space,
        budget: a.budget,
        ran,
        baseline: &baseline,
        found: found.as_ref(),
        shrunk: shrunk.as_ref(),
        final_measured: final_measured.as_ref(),
        command: &cmd,
    };
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.file));
    let found = FoundRun {
        registry,
        pool: &pool,
        src: &src,
        variant: v,
        objective: &objective,
    };
    write(&found, &summary, &out)
}

/// The search's answer from the merged shards: the schedule at the lowest stop, as the search
/// on one machine finds it.
fn merged_found(m: &Merged, space: &Space, seed: u64) -> Result<(Option<Found>, u64), Failure> {
    let Some(stop) = &m.first else {
        return Ok((None, m.ran));
    };
    let picks = space.draw(seed, stop.index);
    if !stop.broken {
        return Err(run_failure(ExploreError::Run {
            picks,
            message: stop.text.clone(),
        }));
    }
    let measured = Measured {
        broken: true,
        text: stop.text.clone(),
    };
    let found = Found {
        index: stop.index,
        picks,
        measured,
    };
    Ok((Some(found), m.ran))
}

/// Write this shard's part of the search for `archsim merge`.
fn write_shard(
    a: &ExploreArgs,
    src: &str,
    sh: Shard,
    (stop, ran): (Option<super::Stopped>, u64),
) -> Result<Outcome, Failure> {
    let first = stop.map(|(index, _, m)| match m {
        Ok(m) => Stop {
            index,
            broken: true,
            text: m.text,
        },
        Err(ExploreError::Run { message, .. }) => Stop {
            index,
            broken: false,
            text: message,
        },
    });
    let file = ShardFile {
        archsim_version: env!("CARGO_PKG_VERSION").to_string(),
        args: shards::shared_args(a),
        source_hash: shards::source_hash(src),
        shard: sh.index,
        shards: sh.count,
        ran,
        first,
    };
    let mut json = serde_json::to_vec_pretty(&file).expect("a shard file serializes");
    json.push(b'\n');
    let out = a.out.clone().unwrap_or_else(|| default_out(&a.file));
    let name = shards::file_name(sh);
    write_files_atomically(&out, &[(name.clone(), json)])
        .map_err(|e| (1, format!("error: cannot write {}: {e}", out.display())))?;
    let stopped = file
        .first
        .as_ref()
        .map_or("none broke the objective".to_string(), |s| {
            format!("stopped at schedule {}", s.index)
        });
    eprintln!(
        "shard {sh}: ran {ran} schedule{} ({stopped}); wrote {}/{name}; when every shard is \
         done: archsim merge DIR... --out REPORT_DIR",
        if ran == 1 { "" } else { "s" },
        out.display()
    );
    Ok(Outcome::Shard)
}

fn default_out(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    Path::new("explore").join(stem)
}

/// What writing the found scenario needs.
struct FoundRun<'a> {
    registry: &'a Registry,
    pool: &'a rayon::ThreadPool,
    src: &'a str,
    variant: &'a Variant,
    objective: &'a Objective,
}

/// Write explore.md, and for a broken objective the found scenario and its run's report.
fn write(f: &FoundRun<'_>, summary: &Summary<'_>, out: &Path) -> Result<Outcome, Failure> {
    let schedule = match (summary.shrunk, summary.final_measured) {
        (Some(sh), Some(m)) => Some((sh.picks.as_slice(), m)),
        _ if summary.baseline.broken => Some((&[][..], summary.baseline)),
        _ => None,
    };
    let mut files = match schedule {
        Some((picks, measured)) => found_files(f, picks, measured, summary)?,
        None => Vec::new(),
    };
    let md = markdown(summary);
    print!("{md}");
    files.push(("explore.md".to_string(), md.into_bytes()));
    write_files_atomically(out, &files)
        .map_err(|e| (1, format!("error: cannot write {}: {e}", out.display())))?;
    eprintln!("wrote {}/ ({} files)", out.display(), files.len());
    shrink_limit(summary.shrunk)?;
    Ok(if schedule.is_some() {
        Outcome::Broken
    } else {
        Outcome::Held
    })
}

fn shrink_limit(shrunk: Option<&Shrunk>) -> Result<(), Failure> {
    match shrunk {
        Some(sh) if sh.exhausted => Err((
            1,
            format!(
                "error: the shrink stopped at its limit of {} runs (--shrink-budget); the schedule \
                 written still breaks the objective but may not be minimal",
                sh.runs
            ),
        )),
        _ => Ok(()),
    }
}

/// found.ron with its run's report and results.json. The file must reproduce the shrunk
/// schedule's run exactly, so the objective must measure the same again.
fn found_files(
    f: &FoundRun<'_>,
    picks: &[super::Pick],
    measured: &Measured,
    summary: &Summary<'_>,
) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let story = Story {
        name: summary.scenario,
        command: summary.command,
        objective: summary.objective,
        measured,
    };
    let text = found_scenario(f.src, f.variant, picks, &story);
    let internal = |what: String| (1, format!("error: internal: the found scenario {what}"));
    let found = scenario::parse("found.ron", &text, f.registry)
        .map_err(|e| internal(format!("does not load:\n{e}")))?;
    let results = f
        .pool
        .install(|| run(&found, f.registry, &RunOptions::default()))
        .map_err(|e| (1, e.to_string()))?;
    let again = f.objective.measure(&results.variants[0]);
    if &again != measured {
        return Err(internal(format!(
            "measures `{}` differently ({} instead of {}): please report this",
            summary.objective, again.text, measured.text
        )));
    }
    let mut files = crate::report::render(&results)
        .map_err(|e| (1, format!("error: cannot render the report: {e}")))?;
    let mut json = serde_json::to_vec_pretty(&results).expect("results serialize");
    json.push(b'\n');
    files.push(("results.json".to_string(), json));
    files.push(("found.ron".to_string(), text.into_bytes()));
    Ok(files)
}
