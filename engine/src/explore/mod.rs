//! `archsim explore`: search fault schedules for one that breaks an objective, then shrink it.
//!
//! ```text
//!   seed ──draw #0..budget──▶ schedules ──run (batches, in parallel)──▶ first that breaks
//!        the objective ──shrink (ddmin, shorter, fewer targets, rounder times)──▶ minimal
//!        schedule ──▶ a runnable scenario, explore.md, and the run's report
//! ```
//!
//! Every run is the chosen variant with its `faults:` replaced by a schedule, simulated at the
//! scenario's own seed: the schedule is the only thing that changes between runs (common random
//! numbers), so a smaller schedule that still fails fails for the faults it keeps. Schedule `i`
//! is drawn from its own stream (`!explore/i` under the search seed), so it does not depend on
//! the budget, the batch it ran in or the thread count.

pub mod args;
pub mod cli;
pub mod objective;
pub mod shard;
pub mod shrink;
pub mod write;

use crate::registry::Registry;
use crate::results::VariantResult;
use crate::runner::{RunFailure, run_variant};
use crate::scenario::validate::validate;
use crate::scenario::{FaultConfig, Spec, Variant};
use crate::sim::rng::{RandomSource as _, SimRng};
use crate::sim::time::SimDuration;
use objective::Objective;
use rayon::prelude::*;

/// Most schedules one search may run (`--budget`).
pub const MAX_BUDGET: u64 = 10_000;
/// Most runs one shrink may make (`--shrink-budget`).
pub const MAX_SHRINK_BUDGET: u64 = 10_000;
/// Most faults in one drawn schedule (`--max-faults`).
pub const MAX_FAULTS: usize = 20;
/// Schedules run together: fixed, so which schedules run does not depend on the thread count.
pub const BATCH: u64 = 8;
/// How much slower a `slowdown` fault makes service.
pub const SLOWDOWN_FACTOR: f64 = 10.0;
/// What fraction of messages a `loss` fault drops.
pub const LOSS_FRACTION: f64 = 0.5;

/// What one fault of a schedule does, from the fault kinds the scenario format has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `Crash`: the node loses its volatile state and restarts when the fault ends.
    Crash,
    /// `Pause`: a stop-the-world pause; messages and timers wait.
    Pause,
    /// `Isolate`: the node is cut off from every other node.
    Isolate,
    /// `Partition`: a set of nodes (up to half the targets) is cut off from the rest.
    Partition,
    /// `Slowdown`: service takes [`SLOWDOWN_FACTOR`] times longer.
    Slowdown,
    /// `PacketLoss`: links of the node drop [`LOSS_FRACTION`] of messages.
    Loss,
}

impl Kind {
    /// Every kind, in the order `--kinds` lists them.
    pub const ALL: [Kind; 6] = [
        Kind::Crash,
        Kind::Pause,
        Kind::Isolate,
        Kind::Partition,
        Kind::Slowdown,
        Kind::Loss,
    ];

    /// The name `--kinds` takes.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Crash => "crash",
            Kind::Pause => "pause",
            Kind::Isolate => "isolate",
            Kind::Partition => "partition",
            Kind::Slowdown => "slowdown",
            Kind::Loss => "loss",
        }
    }

    /// The kind `--kinds` names `name`, if any.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name.trim())
    }
}

impl Kind {
    /// What the kind does, as `archsim list` and the docs say it.
    pub fn doc(self) -> String {
        match self {
            Kind::Crash => "Crash(node, at, until): the node loses its volatile state and restarts".into(),
            Kind::Pause => "Pause(node, at, until): a stop-the-world pause; messages and timers wait".into(),
            Kind::Isolate => "Isolate(node, at, until): the node is cut off from every other node".into(),
            Kind::Partition => "Partition(groups: [[...]], at, until): up to half the targets cut off from the rest".into(),
            Kind::Slowdown => format!("Slowdown(node, factor: {SLOWDOWN_FACTOR:?}, at, until): service takes {SLOWDOWN_FACTOR}x longer"),
            Kind::Loss => format!("PacketLoss(node, loss: {LOSS_FRACTION:?}, at, until): the node's links drop {}% of messages", LOSS_FRACTION * 100.0),
        }
    }
}

/// The `archsim list` section on explore: objectives, fault kinds and limits.
pub fn listing() -> String {
    let kinds: String = Kind::ALL
        .iter()
        .map(|k| format!("  {:<10} {}\n", k.name(), k.doc()))
        .collect();
    format!(
        "--objective, what must hold on every run:\n\
         \x20 availability >= 0.99                 requests that succeed over the measured period\n\
         \x20 availability >= 0.99 during 3s..6s   pooled over the time windows starting in [3s, 6s)\n\
         \x20 p99 <= 250ms                         also p50, p90, p999, mean, max (successful requests)\n\
         \x20 p99 <= 250ms during 3s..6s           in every window starting in [3s, 6s) (p50, p99)\n\
         \x20 linearizable                         a checker's property, violated by no unit; aliases:\n\
         \x20                                      atomic (atomic commit), no-lost-writes (no lost\n\
         \x20                                      acknowledged writes); any property in the Checks table\n\n\
         --kinds, the faults drawn (default crash,pause,isolate,partition):\n{kinds}\n\
         Limits: --budget 1..={MAX_BUDGET} schedules (default 100), --shrink-budget 1..={MAX_SHRINK_BUDGET} runs\n\
         (default 200), --max-faults 1..={MAX_FAULTS} per schedule (default 3); each run under the scenario's `limits`.\n\n"
    )
}

/// One fault of a schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Pick {
    /// What it does.
    pub kind: Kind,
    /// The node it hits; for a partition, the nodes cut off from the others.
    pub targets: Vec<String>,
    /// Start (time since the run began).
    pub at: SimDuration,
    /// How long it lasts.
    pub duration: SimDuration,
}

impl Pick {
    /// The scenario fault this pick stands for.
    pub fn to_config(&self) -> FaultConfig {
        let node = self.targets.first().cloned().unwrap_or_default();
        let (at, until) = (self.at, Some(SimDuration(self.at.0 + self.duration.0)));
        match self.kind {
            Kind::Crash => FaultConfig::Crash {
                node,
                at,
                until,
                keep_state: false,
            },
            Kind::Pause => FaultConfig::Pause { node, at, until },
            Kind::Isolate => FaultConfig::Isolate { node, at, until },
            Kind::Partition => FaultConfig::Partition {
                groups: vec![self.targets.clone()],
                one_way: false,
                at,
                until,
            },
            Kind::Slowdown => FaultConfig::Slowdown {
                node,
                factor: SLOWDOWN_FACTOR,
                at,
                until,
            },
            Kind::Loss => FaultConfig::PacketLoss {
                node: Some(node),
                loss: LOSS_FRACTION,
                at,
                until,
            },
        }
    }

    /// One line for people: `crash store-0 at 3.2s for 150ms`.
    pub fn describe(&self) -> String {
        format!(
            "{} {} at {} for {}",
            self.kind.name(),
            self.targets.join("+"),
            self.at,
            self.duration
        )
    }
}

/// The bounds schedules are drawn within.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    /// Fault kinds to draw from.
    pub kinds: Vec<Kind>,
    /// Nodes faults may hit (replicas by their own names).
    pub targets: Vec<String>,
    /// Faults start in [start, stop).
    pub start: SimDuration,
    /// See `start`.
    pub stop: SimDuration,
    /// Shortest fault.
    pub min_duration: SimDuration,
    /// Longest fault.
    pub max_duration: SimDuration,
    /// Most faults per schedule (at least one).
    pub max_faults: usize,
}

const MS: u64 = 1_000_000;

impl Space {
    /// Schedule `index` under `seed`: 1 to `max_faults` faults, each of a kind, target(s), start
    /// (uniform, whole milliseconds) and duration (log-uniform, whole milliseconds), in time
    /// order.
    pub fn draw(&self, seed: u64, index: u64) -> Vec<Pick> {
        let mut rng = SimRng::derive(seed, &format!("!explore/{index}"));
        let n = 1 + rng.below(self.max_faults as u64) as usize;
        let mut picks: Vec<Pick> = (0..n).map(|_| self.draw_one(&mut rng)).collect();
        picks.sort_by_key(|p| p.at);
        picks
    }

    fn draw_one(&self, rng: &mut SimRng) -> Pick {
        let kind = self.kinds[rng.below(self.kinds.len() as u64) as usize];
        let size = if kind == Kind::Partition {
            1 + rng.below((self.targets.len() as u64 / 2).max(1)) as usize
        } else {
            1
        };
        // A partial Fisher–Yates shuffle picks `size` distinct targets; they are listed in the
        // order the scenario declares them.
        let mut order: Vec<usize> = (0..self.targets.len()).collect();
        for i in 0..size {
            let j = i + rng.below((order.len() - i) as u64) as usize;
            order.swap(i, j);
        }
        let mut chosen = order[..size].to_vec();
        chosen.sort_unstable();
        let span_ms = (self.stop.0 - self.start.0).div_ceil(MS).max(1);
        let at = SimDuration(self.start.0 + rng.below(span_ms) * MS);
        let (lo, hi) = (self.min_duration.0 as f64, self.max_duration.0 as f64);
        let ns = libm::exp(libm::log(lo) + rng.uniform() * (libm::log(hi) - libm::log(lo)));
        let duration = SimDuration(((ns / MS as f64).round() as u64).max(1) * MS);
        Pick {
            kind,
            targets: chosen.iter().map(|&i| self.targets[i].clone()).collect(),
            at,
            duration,
        }
    }
}

/// Why exploring stopped without an answer.
#[derive(Debug)]
pub enum ExploreError {
    /// A run hit one of the scenario's limits (or a schedule did not validate).
    Run {
        /// The schedule that was being run.
        picks: Vec<Pick>,
        /// What went wrong.
        message: String,
    },
}

/// The variant under exploration, and how to test one schedule against the objective.
pub struct Probe<'a> {
    /// The variant (its faults are replaced by each schedule).
    pub variant: &'a Variant,
    /// Plug-ins the scenario uses.
    pub registry: &'a Registry,
    /// The run seed: the scenario's, so the written scenario reproduces every run.
    pub seed: u64,
    /// What must hold.
    pub objective: &'a Objective,
}

/// What the objective measured on one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// The objective does not hold.
    pub broken: bool,
    /// What was measured, for people: `availability 0.9712`.
    pub text: String,
}

impl Probe<'_> {
    /// The variant's spec with `picks` as its only faults.
    pub fn spec_with(&self, picks: &[Pick]) -> Spec {
        let mut spec = self.variant.model.spec.clone();
        spec.faults = picks.iter().map(Pick::to_config).collect();
        spec
    }

    /// Run the variant under `picks`.
    pub fn run(&self, picks: &[Pick]) -> Result<VariantResult, ExploreError> {
        let fail = |message: String| ExploreError::Run {
            picks: picks.to_vec(),
            message,
        };
        let model = validate(&self.spec_with(picks), self.registry).map_err(|problems| {
            let first = problems.first().map_or(String::new(), |p| {
                format!(
                    "{}: {} ({})",
                    crate::scenario::locate::DisplayPath(&p.path.0),
                    p.message,
                    p.expected
                )
            });
            fail(format!(
                "the schedule is not a valid `faults:` block: {first}"
            ))
        })?;
        let variant = Variant {
            name: self.variant.name.clone(),
            overrides: self.variant.overrides.clone(),
            model,
        };
        run_variant(&variant, self.registry, self.seed).map_err(|e| match e {
            RunFailure::Run(_, _, err) => fail(err.to_string()),
            other => fail(other.to_string()),
        })
    }

    /// Run the variant under `picks` and measure the objective.
    pub fn test(&self, picks: &[Pick]) -> Result<Measured, ExploreError> {
        Ok(self.objective.measure(&self.run(picks)?))
    }
}

/// The first schedule of a search that broke the objective.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// Its index (draw it again with [`Space::draw`]).
    pub index: u64,
    /// The schedule.
    pub picks: Vec<Pick>,
    /// What the objective measured under it.
    pub measured: Measured,
}

/// Run schedules 0, 1, ... up to `budget` in batches of [`BATCH`] (each batch in parallel on
/// the current rayon pool) and return the first, by index, that breaks the objective, with the
/// number of schedules run. The answer depends on neither the thread count nor the timing.
pub fn search(
    probe: &Probe<'_>,
    space: &Space,
    seed: u64,
    budget: u64,
) -> Result<(Option<Found>, u64), ExploreError> {
    let indices: Vec<u64> = (0..budget).collect();
    let (stop, ran) = search_indices(probe, space, seed, &indices);
    match stop {
        None => Ok((None, ran)),
        Some((_, _, Err(e))) => Err(e),
        Some((index, picks, Ok(measured))) => Ok((
            Some(Found {
                index,
                picks,
                measured,
            }),
            ran,
        )),
    }
}

/// A schedule that ended a search: its index, the schedule, and what it measured or why its
/// run stopped.
pub type Stopped = (u64, Vec<Pick>, Result<Measured, ExploreError>);

/// Run the schedules `indices` (ascending) in batches of [`BATCH`] and stop at the first, in
/// that order, that breaks the objective or whose run stops at a limit; with the number run.
/// A shard of a search runs its own indices this way (`shard.rs`).
pub fn search_indices(
    probe: &Probe<'_>,
    space: &Space,
    seed: u64,
    indices: &[u64],
) -> (Option<Stopped>, u64) {
    let mut ran = 0;
    for batch in indices.chunks(BATCH as usize) {
        let outcomes: Vec<Stopped> = batch
            .par_iter()
            .map(|&i| {
                let picks = space.draw(seed, i);
                let m = probe.test(&picks);
                (i, picks, m)
            })
            .collect();
        ran += batch.len() as u64;
        if let Some(stop) = outcomes
            .into_iter()
            .find(|(_, _, m)| m.as_ref().map_or(true, |m| m.broken))
        {
            return (Some(stop), ran);
        }
    }
    (None, ran)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        Space {
            kinds: Kind::ALL.to_vec(),
            targets: (0..5).map(|i| format!("n-{i}")).collect(),
            start: SimDuration::from_secs(1),
            stop: SimDuration::from_secs(9),
            min_duration: SimDuration::from_millis(10),
            max_duration: SimDuration::from_secs(2),
            max_faults: 4,
        }
    }

    #[test]
    fn draws_stay_within_the_bounds_and_repeat_by_seed() {
        let s = space();
        let mut kinds_seen = std::collections::BTreeSet::new();
        for i in 0..300 {
            let picks = s.draw(7, i);
            assert_eq!(picks, s.draw(7, i), "schedule {i} drawn twice differs");
            assert!((1..=4).contains(&picks.len()));
            assert!(picks.windows(2).all(|w| w[0].at <= w[1].at));
            for p in &picks {
                kinds_seen.insert(p.kind);
                assert!(p.at >= s.start && p.at < s.stop, "{p:?}");
                assert!(p.duration >= s.min_duration && p.duration <= s.max_duration);
                assert_eq!(p.at.0 % MS, 0);
                let max_side = if p.kind == Kind::Partition { 2 } else { 1 };
                assert!((1..=max_side).contains(&p.targets.len()), "{p:?}");
                let mut sorted = p.targets.clone();
                sorted.dedup();
                assert_eq!(sorted.len(), p.targets.len());
            }
        }
        assert_eq!(kinds_seen.len(), Kind::ALL.len());
        assert_ne!(s.draw(7, 0), s.draw(8, 0));
    }

    #[test]
    fn every_kind_becomes_the_fault_it_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.name()), Some(kind));
            let p = Pick {
                kind,
                targets: vec!["a".into(), "b".into()],
                at: SimDuration::from_secs(2),
                duration: SimDuration::from_millis(500),
            };
            let (at, until) = p.to_config().timing();
            assert_eq!(at, SimDuration::from_secs(2));
            if kind != Kind::Crash || until.is_some() {
                assert_eq!(until, Some(SimDuration::from_millis(2500)));
            }
        }
        assert_eq!(Kind::parse("reboot"), None);
    }
}
