//! The fuzzer: seeded mutants of the committed scenarios, each checked with `validate` and a
//! short `run` of the real binary in a child process under a memory cap and a timeout
//! ([`super::harness`]). A panic, a signal, an allocation past the cap or a hang fails.
//!
//! ```text
//!  seed s ──▶ scenarios/<s mod n>.ron ──mutate(s)──▶ mutant
//!     ├─▶ archsim validate mutant            exit 0 or 2
//!     └─▶ archsim run mutant+event cap       exit 0, 1 or 2
//! ```
//! `cargo test` runs [`CI_MUTANTS`] of them (under a minute on two cores). A long campaign:
//!
//! ```sh
//! ARCHSIM_FUZZ_MUTANTS=1000000 ARCHSIM_FUZZ_SEED=1 \
//!     cargo test --release --test suite fuzz::campaign -- --ignored --nocapture
//! ```
//! Also `ARCHSIM_FUZZ_JOBS` (worker threads, default 2), `ARCHSIM_FUZZ_EVENTS` (the run's
//! event cap, default 200000), `ARCHSIM_FUZZ_OUT` (where crashes go) and `ARCHSIM_BIN` (the
//! binary to test, default this build's).
//! Every crashing mutant is written to `target/fuzz-crashes/` with its seed; saved as
//! `engine/tests/fuzz-regressions/<what-it-caught>.ron`, it is replayed by every `cargo test`.
//! Those a campaign found that show only at its cap of 200000 events (series past `duration`
//! with drains of millions of hours; a linearizability check that took minutes when hour-long
//! latencies make every operation of a key overlap, now bounded run-wide by `max_work`) are in
//! `engine/tests/fuzz-regressions/campaign/`, replayed at that cap; the one still open (a
//! history with 100000 h latencies whose check takes minutes) waits in `open/`, replayed by the
//! ignored `open_saved_crashes_keep_the_contract`.

mod mutate;

use super::harness::{Ended, MEMORY_CAP_BYTES, archsim_capped, scratch};
use mutate::{Class, mutant};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Mutants `cargo test` checks.
const CI_MUTANTS: u64 = 1200;
/// Events per variant the short run may process: enough to build, start and run every
/// component a while, little enough that a run takes milliseconds.
const CI_EVENTS: u64 = 20_000;
/// A child still running after this long has hung (a capped run takes well under a second).
const TIMEOUT: Duration = Duration::from_secs(60);

/// What one mutant broke, if anything.
struct Crash {
    seed: u64,
    base: String,
    classes: Vec<Class>,
    step: &'static str,
    what: String,
    text: String,
}

/// The committed scenarios, by file name, in a fixed order.
fn corpus() -> Vec<(String, String)> {
    let dir = super::repo_root().join("scenarios");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&p).expect("read scenario"))
        })
        .collect();
    files.sort();
    files
}

/// `text` with every variant's run capped at `events` events, or `None` if the cap cannot be
/// placed (then only `validate` runs: an uncapped run of a mutant may legitimately take
/// minutes, and a hang could not be told from it).
pub fn capped(text: &str, events: u64) -> Option<String> {
    let field = format!("max_events: {events}, ");
    if let Some(at) = text.find("limits:") {
        let open = at + text[at..].find('(')? + 1;
        if text[open..].trim_start().starts_with("max_events") {
            let value = open + text[open..].find(':')? + 1;
            let end = value + text[value..].find([',', ')'])?;
            let ok = text[value..end].trim().parse::<u64>().ok()?;
            let value_text = format!(" {}", ok.min(events));
            return Some(format!("{}{value_text}{}", &text[..value], &text[end..]));
        }
        return Some(format!("{}{field}{}", &text[..open], &text[open..]));
    }
    let open = text.find("Scenario(")? + "Scenario(".len();
    Some(format!(
        "{}limits: ({field}),{}",
        &text[..open],
        &text[open..]
    ))
}

/// Checks one mutant; `None` if it kept the contract.
fn check_one(dir: &Path, seed: u64, corpus: &[(String, String)], events: u64) -> Option<Crash> {
    let (base, src) = &corpus[(seed % corpus.len() as u64) as usize];
    let (text, classes) = mutant(src, seed);
    let crash = |step, e: &Ended| {
        e.broken().map(|what| Crash {
            seed,
            base: base.clone(),
            classes: classes.clone(),
            step,
            what,
            text: text.clone(),
        })
    };
    std::fs::write(dir.join("m.ron"), &text).expect("write mutant");
    let validated = archsim_capped(dir, &["validate", "m.ron"], MEMORY_CAP_BYTES, TIMEOUT);
    if let Some(c) = crash("validate", &validated) {
        return Some(c);
    }
    let run_text = capped(&text, events)?;
    std::fs::write(dir.join("r.ron"), &run_text).expect("write capped mutant");
    let args = ["run", "r.ron", "--out", "out", "-j", "1"];
    let ran = archsim_capped(dir, &args, MEMORY_CAP_BYTES, TIMEOUT);
    let _ = std::fs::remove_dir_all(dir.join("out"));
    crash("run", &ran)
}

/// Checks `count` mutants from seed `first` on two threads; returns every crash.
fn check_mutants(name: &str, first: u64, count: u64, events: u64, progress: bool) -> Vec<Crash> {
    let corpus = corpus();
    let workers = env_u64("ARCHSIM_FUZZ_JOBS", 2).max(1);
    let crashes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for w in 0..workers {
            let (corpus, crashes) = (&corpus, &crashes);
            scope.spawn(move || {
                let dir = scratch(&format!("fuzz-{name}-{w}"));
                for i in (w..count).step_by(workers as usize) {
                    if let Some(c) = check_one(&dir, first + i, corpus, events) {
                        report(&c);
                        crashes.lock().unwrap_or_else(|p| p.into_inner()).push(c);
                    }
                    if progress && w == 0 && i % 1000 == 0 {
                        eprintln!("fuzz: {i} of {count} mutants checked");
                    }
                }
                let _ = std::fs::remove_dir_all(&dir);
            });
        }
    });
    crashes.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Prints a crash and saves its mutant under `target/fuzz-crashes/`.
fn report(c: &Crash) {
    let dir = crash_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("seed-{}.ron", c.seed));
    let _ = std::fs::write(&path, &c.text);
    eprintln!(
        "fuzz: seed {} ({} mutated by {:?}): `archsim {}` broke the contract: {}; mutant saved \
         as {}",
        c.seed,
        c.base,
        c.classes,
        c.step,
        c.what,
        path.display()
    );
}

fn crash_dir() -> PathBuf {
    std::env::var_os("ARCHSIM_FUZZ_OUT").map_or_else(
        || super::repo_root().join("target/fuzz-crashes"),
        PathBuf::from,
    )
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn summary(crashes: &[Crash]) -> String {
    let lines: Vec<String> = crashes
        .iter()
        .map(|c| format!("seed {} ({}, {}): {}", c.seed, c.base, c.step, c.what))
        .collect();
    format!(
        "{} mutants broke the contract:\n{}",
        crashes.len(),
        lines.join("\n")
    )
}

#[test]
fn ci_mutants_of_every_scenario_keep_the_contract() {
    let crashes = check_mutants("ci", 1, CI_MUTANTS, CI_EVENTS, false);
    assert!(crashes.is_empty(), "{}", summary(&crashes));
}

#[test]
#[ignore = "a long campaign; see this module's doc for the command"]
fn campaign() {
    let first = env_u64("ARCHSIM_FUZZ_SEED", 1);
    let count = env_u64("ARCHSIM_FUZZ_MUTANTS", 1_000_000);
    let events = env_u64("ARCHSIM_FUZZ_EVENTS", 200_000);
    let crashes = check_mutants("long", first, count, events, true);
    eprintln!(
        "fuzz: {count} mutants from seed {first}, {} crashes",
        crashes.len()
    );
    assert!(crashes.is_empty(), "{}", summary(&crashes));
}

#[test]
fn every_saved_crash_keeps_the_contract() {
    replay(
        &super::repo_root().join("engine/tests/fuzz-regressions"),
        CI_EVENTS,
    );
}

#[test]
#[ignore = "still open: a KvClient history under network latencies of 100000 h takes minutes \
            to check even under the run-wide work bound (phase 2 of issue 17)"]
fn open_saved_crashes_keep_the_contract() {
    replay(
        &super::repo_root().join("engine/tests/fuzz-regressions/open"),
        200_000,
    );
}

#[test]
fn saved_campaign_crashes_keep_the_contract_at_the_campaign_cap() {
    replay(
        &super::repo_root().join("engine/tests/fuzz-regressions/campaign"),
        200_000,
    );
}

/// Checks every saved mutant in `dir` with `validate` and a `run` capped at `events`.
fn replay(dir: &Path, events: u64) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("a regression corpus directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the regression corpus is empty");
    let work = scratch(&format!("fuzz-replay-{}", super::harness::unique()));
    let mut broken = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        std::fs::copy(f, work.join("m.ron")).expect("copy");
        let v = archsim_capped(&work, &["validate", "m.ron"], MEMORY_CAP_BYTES, TIMEOUT);
        let run = capped(&text, events).map(|t| {
            std::fs::write(work.join("r.ron"), t).expect("write");
            archsim_capped(
                &work,
                &["run", "r.ron", "--out", "out"],
                MEMORY_CAP_BYTES,
                TIMEOUT,
            )
        });
        let _ = std::fs::remove_dir_all(work.join("out"));
        for (step, e) in [("validate", Some(v)), ("run", run)] {
            if let Some(what) = e.and_then(|e| e.broken()) {
                broken.push(format!("{} ({step}): {what}", f.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_event_cap_is_placed_or_tightened() {
    let plain = "Scenario(name: \"x\")";
    assert_eq!(
        capped(plain, 5).as_deref(),
        Some("Scenario(limits: (max_events: 5, ),name: \"x\")")
    );
    let with = "Scenario(limits: (max_events: 900, max_pending_events: 3))";
    assert_eq!(
        capped(with, 5).as_deref(),
        Some("Scenario(limits: (max_events: 5, max_pending_events: 3))")
    );
    let other = "Scenario(limits: (max_pending_events: 3))";
    assert_eq!(
        capped(other, 5).as_deref(),
        Some("Scenario(limits: (max_events: 5, max_pending_events: 3))")
    );
    assert_eq!(capped("(name: \"x\")", 5), None);
}
