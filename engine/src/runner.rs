//! Running a scenario: every variant in parallel (one thread each, rayon), results in file order.
//!
//! A run is a pure function of (model, seed), so running variants on any number of threads
//! gives the same bytes as running them one after another.

use crate::build::{Built, build_with_observers};
use crate::contract::build::finish_observers;
use crate::contract::metrics::NodeStats;
use crate::contract::trace::Tracer;
use crate::registry::Registry;
use crate::results::{
    ClassResult, FaultWindow, Results, ScenarioEcho, ServerResult, Timing, VariantResult,
};
use crate::scenario::{Scenario, Variant};
use crate::sim::RunError;
use crate::sim::rng::mix64;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::fmt;

/// Choices for one `archsim run`.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Use this seed instead of the scenario's.
    pub seed: Option<u64>,
    /// Run only these variants (all when empty).
    pub variants: Vec<String>,
    /// Trace this many sampled requests per variant (`--trace N`; 0: none).
    pub trace: usize,
    /// Draw the messages of this many of the first traced requests (`--sequence K`; 0: the
    /// default, 10).
    pub sequence: usize,
}

/// Why a run failed.
#[derive(Debug)]
pub enum RunFailure {
    /// `--variant` named a variant the scenario does not have.
    UnknownVariant(String, Vec<String>),
    /// A variant's run stopped early.
    Run(String, u64, RunError),
}

impl fmt::Display for RunFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunFailure::UnknownVariant(v, known) => {
                write!(
                    f,
                    "error: no variant named \"{v}\"; expected one of: {}",
                    known.join(", ")
                )
            }
            RunFailure::Run(v, seed, e) => write!(f, "error: variant \"{v}\" (seed {seed}): {e}"),
        }
    }
}

impl std::error::Error for RunFailure {}

/// Run the scenario's variants (in parallel) and gather their results.
pub fn run(
    scenario: &Scenario,
    registry: &Registry,
    opts: &RunOptions,
) -> Result<Results, RunFailure> {
    let seed = opts.seed.unwrap_or(scenario.base.seed);
    let known: Vec<String> = scenario.variants.iter().map(|v| v.name.clone()).collect();
    if let Some(bad) = opts.variants.iter().find(|v| !known.contains(v)) {
        return Err(RunFailure::UnknownVariant(bad.clone(), known));
    }
    let chosen: Vec<&Variant> = scenario
        .variants
        .iter()
        .filter(|v| opts.variants.is_empty() || opts.variants.contains(&v.name))
        .collect();
    let variants = chosen
        .par_iter()
        .map(|v| run_variant_traced(v, registry, seed, opts.trace))
        .collect::<Result<Vec<_>, _>>()?;
    let mut variants = variants;
    if opts.sequence > 0 {
        for t in variants.iter_mut().filter_map(|v| v.traces.as_mut()) {
            t.sequence = opts.sequence as u64;
        }
    }
    let per_variant: Vec<(String, Vec<String>)> = chosen
        .iter()
        .zip(&variants)
        .map(|(v, r)| (v.name.clone(), crate::warnings::of_variant(v, seed, r)))
        .collect();
    let digest = variants.iter().fold(mix64(seed), |h, v| {
        mix64(h ^ u64::from_str_radix(&v.digest, 16).unwrap_or(0))
    });
    let base = &scenario.base;
    let model = &scenario.variants[0].model;
    Ok(Results {
        archsim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: ScenarioEcho {
            name: base.name.clone(),
            description: base.description.clone(),
            file: scenario.file.clone(),
            resolved: serde_json::to_value(base).unwrap_or(serde_json::Value::Null),
        },
        seed,
        digest: format!("{digest:016x}"),
        timing: Timing {
            duration_s: base.duration.as_secs_f64(),
            warmup_s: base.warmup.as_secs_f64(),
            window_s: model.window.as_secs_f64(),
        },
        faults: fault_windows(&chosen, seed),
        variants,
        warnings: crate::warnings::merge(&per_variant),
    })
}

/// Every chosen variant's fault windows, each once; a fault that only some variants have is
/// labelled with their names. O(F log F) for F faults (random timelines can hold tens of
/// thousands).
pub(crate) fn fault_windows(chosen: &[&Variant], seed: u64) -> Vec<FaultWindow> {
    let mut out: Vec<(FaultWindow, Vec<&str>)> = Vec::new();
    let mut seen: BTreeMap<(u64, u64, String), usize> = BTreeMap::new();
    for v in chosen {
        for f in v.model.fault_schedule(seed).1 {
            let key = (f.start_s.to_bits(), f.end_s.to_bits(), f.label.clone());
            match seen.get(&key) {
                // Two faults of one variant with the same interval and label are one window.
                Some(&i) if out[i].1.last() != Some(&v.name.as_str()) => out[i].1.push(&v.name),
                Some(_) => {}
                None => {
                    seen.insert(key, out.len());
                    out.push((f, vec![&v.name]));
                }
            }
        }
    }
    out.into_iter()
        .map(|(mut f, names)| {
            if names.len() < chosen.len() {
                f.label = format!("{} ({})", f.label, names.join(", "));
            }
            f
        })
        .collect()
}

/// Run one variant to completion and summarise it.
pub fn run_variant(
    v: &Variant,
    registry: &Registry,
    seed: u64,
) -> Result<VariantResult, RunFailure> {
    run_variant_traced(v, registry, seed, 0)
}

/// [`run_variant`], tracing a sample of `trace` requests (none if 0).
pub fn run_variant_traced(
    v: &Variant,
    registry: &Registry,
    seed: u64,
    trace: usize,
) -> Result<VariantResult, RunFailure> {
    let m = &v.model;
    let Built {
        mut world,
        observers,
    } = build_with_observers(m, registry, seed);
    if trace > 0 {
        world.sink_mut().tracer = Some(Box::new(Tracer::new(trace, m.measure_from)));
        world.watch_sends();
    }
    let mut out = world
        .run(m.end)
        .map_err(|e| RunFailure::Run(v.name.clone(), seed, e))?;
    out.node_stats.extend(finish_observers(&observers, out.end));
    let mut servers = Vec::new();
    let mut components = BTreeMap::new();
    let mut series = BTreeMap::new();
    let mut state_changes = BTreeMap::new();
    let mut verdicts = BTreeMap::new();
    let mut lost_in_crash = 0.0;
    for (name, stats) in out.node_stats {
        let NodeStats {
            server,
            counters,
            series: node_series,
            events: node_events,
            verdicts: node_verdicts,
        } = stats;
        if let Some(s) = server {
            servers.push(ServerResult {
                name: name.clone(),
                ..s
            });
        }
        if !counters.is_empty() {
            lost_in_crash += counters.get("lost_in_crash").copied().unwrap_or(0.0);
            components.insert(name.clone(), counters);
        }
        if !node_series.is_empty() {
            series.insert(name.clone(), node_series);
        }
        if !node_verdicts.is_empty() {
            verdicts.insert(name.clone(), node_verdicts);
        }
        if !node_events.is_empty() {
            state_changes.insert(name, node_events);
        }
    }
    let traces = out.sink.tracer.take().map(|t| {
        let names: Vec<String> = m.names.nodes.iter().map(|(n, _)| n.clone()).collect();
        crate::contract::trace_path::traces(t.limit(), t.into_kept(), &names)
    });
    let r = &out.sink;
    // Every request ends exactly once: the run drains for the longest client timeout, so a
    // request still in flight here means a component lost track of one; unless the drain was
    // capped, when requests waiting on a longer timeout are unfinished.
    let unfinished = if m.longest_timeout > crate::scenario::validate::MAX_DRAIN {
        (r.in_flight() as f64 - lost_in_crash).max(0.0) as u64
    } else {
        assert_eq!(
            r.in_flight() as f64,
            lost_in_crash,
            "variant {} seed {seed}: requests neither succeeded nor failed",
            v.name
        );
        0
    };
    let measured_s = m.arrivals_end.since(m.measure_from).as_secs_f64();
    let requests = r.requests();
    let windows = r.windows(m.arrivals_end);
    // One value per window of the run: components also report the drain after the clients
    // stop, which is no window of the run and would draw as a false collapse at the end.
    for s in series.values_mut().flatten() {
        s.values.truncate(windows.len());
    }
    let recovery = crate::recovery::time_to_recover(
        &windows,
        &m.fault_schedule(seed).1,
        m.measure_from.as_secs_f64(),
        m.window.as_secs_f64(),
        m.arrivals_end.as_secs_f64(),
    );
    Ok(VariantResult {
        name: v.name.clone(),
        overrides: v.overrides.iter().cloned().collect(),
        digest: format!("{:016x}", out.digest),
        events: out.events,
        requests,
        ok: r.ok(),
        errors: r.errors(),
        availability: if requests == 0 {
            1.0
        } else {
            r.ok() as f64 / requests as f64
        },
        throughput_rps: r.ok() as f64 / measured_s,
        latency_ms: r.latency_summary(),
        latency_cdf: r.latency_cdf(),
        windows,
        servers,
        components,
        series,
        state_changes,
        recovery,
        verdicts,
        clients_down_s: crate::warnings::clients_down(v, seed)
            .iter()
            .map(|(_, d)| d.as_secs_f64())
            .sum(),
        classes: class_results(r, &m.names.classes, m.arrivals_end, measured_s),
        unfinished,
        theory: Some(crate::analysis::analyze(m)),
        traces,
    })
}

/// The request metrics of each class, when the scenario declares classes.
fn class_results(
    r: &crate::contract::metrics::RequestMetrics,
    names: &[String],
    end: crate::sim::time::SimTime,
    measured_s: f64,
) -> Vec<ClassResult> {
    r.classes()
        .iter()
        .zip(names)
        .map(|(c, name)| ClassResult {
            name: name.clone(),
            requests: c.requests(),
            ok: c.ok(),
            errors: c.errors(),
            availability: if c.requests() == 0 {
                1.0
            } else {
                c.ok() as f64 / c.requests() as f64
            },
            throughput_rps: c.ok() as f64 / measured_s,
            latency_ms: c.latency_summary(),
            latency_cdf: c.latency_cdf(),
            windows: c.windows(end),
        })
        .collect()
}
