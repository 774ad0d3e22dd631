//! The saved outcome of a run: what `results.json` holds and all that `report` needs.
//!
//! This is the serialization boundary between simulating and reporting: `run` builds a
//! [`Results`], writes it as JSON, and renders the report from it; `report` reads the JSON back
//! and renders the same bytes. Everything a plot or table shows must therefore live here.
//! Field names carry their unit (`_ms`, `_s`, `_rps`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything one `archsim run` produced: one entry per variant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// Version of archsim that wrote the file.
    pub archsim_version: String,
    /// The scenario as run: its name, source file and resolved configuration.
    pub scenario: ScenarioEcho,
    /// The seed every variant ran with (common random numbers).
    pub seed: u64,
    /// Hex digest over every variant's event trace: equal digests mean equal runs.
    pub digest: String,
    /// Measurement settings shared by all variants.
    pub timing: Timing,
    /// Fault windows to shade on time-series plots.
    pub faults: Vec<FaultWindow>,
    /// One entry per variant, in the order the scenario file declares them.
    pub variants: Vec<VariantResult>,
    /// What makes these numbers mislead (see `warnings.rs`); left out when there is none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The `archsim_version` a JSON file of ours says wrote it, if it parses that far.
pub fn written_by(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Version {
        archsim_version: String,
    }
    serde_json::from_slice::<Version>(bytes)
        .ok()
        .map(|v| v.archsim_version)
}

/// The scenario echoed into the results, so a results file explains itself.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScenarioEcho {
    /// The scenario's `name:` field.
    pub name: String,
    /// The scenario's `description:` field, if any.
    pub description: Option<String>,
    /// The file the scenario was read from, as given on the command line.
    pub file: String,
    /// The scenario with every default filled in, before variant overrides.
    pub resolved: serde_json::Value,
}

/// Run length and measurement settings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Simulated run length: clients issue requests during [0, duration).
    pub duration_s: f64,
    /// Requests issued before this time are left out of the summary numbers.
    pub warmup_s: f64,
    /// Width of one time window of the time series.
    pub window_s: f64,
}

/// A fault's active interval, for shading plots. When variants override `faults`, the list
/// holds every variant's faults and the label names the variants a fault belongs to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultWindow {
    /// Short human label, e.g. `crash app-3` or `slowdown app-2 x10`.
    pub label: String,
    /// Start of the fault, seconds of simulated time.
    pub start_s: f64,
    /// End of the fault (the run's end if it never ends), seconds of simulated time.
    pub end_s: f64,
    /// Drawn by a `Random` entry: tables count such faults by label (kind and node) instead of
    /// listing each.
    #[serde(default, skip_serializing_if = "is_false")]
    pub random: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The measured outcome of one variant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariantResult {
    /// Variant name from the scenario's `variants` map (`base` when there are none).
    pub name: String,
    /// The overrides this variant applies, path to RON text, in file order.
    pub overrides: indexmap::IndexMap<String, String>,
    /// Hex digest of this variant's event trace.
    pub digest: String,
    /// Events the kernel processed.
    pub events: u64,
    /// Requests issued after warm-up (each ends exactly once: ok or one error cause).
    pub requests: u64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Failed requests by cause (every cause listed, zeros included).
    pub errors: BTreeMap<String, u64>,
    /// ok / requests (1.0 when there were no requests).
    pub availability: f64,
    /// Successful requests per second of measured time.
    pub throughput_rps: f64,
    /// Latency of successful requests, from the client's first send to its answer.
    pub latency_ms: LatencySummary,
    /// Points of the latency CDF of successful requests: `[latency_ms, fraction <= latency]`.
    pub latency_cdf: Vec<[f64; 2]>,
    /// Per time window, from time 0 (warm-up included), by completion time.
    pub windows: Vec<WindowResult>,
    /// Per server replica.
    pub servers: Vec<ServerResult>,
    /// Other per-node counters reported by components, node name to counter name to value.
    pub components: BTreeMap<String, BTreeMap<String, f64>>,
    /// Time series reported by components, node name to series; each series name is plotted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub series: BTreeMap<String, Vec<SeriesResult>>,
    /// State changes reported by components (breaker transitions, elections), node name to
    /// events in time order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state_changes: BTreeMap<String, Vec<EventRecord>>,
    /// Time to recover from each fault window of this variant (see `crate::recovery`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery: Vec<RecoveryResult>,
    /// What the run-wide checkers decided (linearizability, atomicity, ...), node name to
    /// verdicts, each with what it checked, found violated and could not check.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verdicts: BTreeMap<String, Vec<Verdict>>,
    /// Seconds of the measured time that clients were down (crashed or paused), summed over
    /// clients: requests they would have issued then were never issued, so `availability`
    /// leaves that time out, and tables mark it. Left out when zero.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub clients_down_s: f64,
    /// The same request metrics per request class, in the scenario's priority order; left out
    /// when the scenario declares no classes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassResult>,
    /// Requests still in flight when the run ended: the drain after `duration` lasts the
    /// longest client timeout but at most an hour, so a request waiting on a longer one has
    /// no outcome, and it is left out of every number (a warning says so). Left out when zero.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub unfinished: u64,
    /// What queueing theory and availability algebra say, computed from the scenario alone
    /// (see `crate::analysis`), to read beside the simulated numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theory: Option<Theory>,
    /// Per-request traces of a deterministic sample of requests (`archsim run --trace N`),
    /// with the latency breakdown they add up to. Left out when not asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<Traces>,
}

/// The request metrics of one request class (see `VariantResult` for each field's meaning).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClassResult {
    /// The class's name, from the scenario's `classes`.
    pub name: String,
    /// Requests of this class issued after warm-up.
    pub requests: u64,
    /// Those that succeeded.
    pub ok: u64,
    /// Those that failed, by cause.
    pub errors: BTreeMap<String, u64>,
    /// ok / requests (1.0 when there were none).
    pub availability: f64,
    /// Successful requests of this class per second of measured time.
    pub throughput_rps: f64,
    /// Latency of its successful requests.
    pub latency_ms: LatencySummary,
    /// `[latency_ms, fraction]` points of the same latencies, as the variant's `latency_cdf`.
    #[serde(default)]
    pub latency_cdf: Vec<[f64; 2]>,
    /// Per time window, from time 0, by completion time.
    pub windows: Vec<WindowResult>,
}

fn is_zero_u64(x: &u64) -> bool {
    *x == 0
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

/// A checker's verdict on one property, by units (keys, transactions, terms): how many it
/// decided, how many of those violate the property, and how many it could not decide (over a
/// search or history bound). The property is said to hold only when every unit was decided.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// The property, e.g. `linearizable`.
    pub property: String,
    /// What was counted, plural, e.g. `keys`.
    pub unit: String,
    /// Units decided (violated or not).
    pub checked: u64,
    /// Of those, units that violate the property.
    pub violated: u64,
    /// Units not decided.
    pub unchecked: u64,
}

impl Verdict {
    /// A verdict on `property` over `unit`s.
    pub fn new(property: &str, unit: &str, checked: u64, violated: u64, unchecked: u64) -> Self {
        Verdict {
            property: property.to_string(),
            unit: unit.to_string(),
            checked,
            violated,
            unchecked,
        }
    }

    /// `Some(false)` if a violation was found, `Some(true)` if every unit was decided and
    /// none violates it, `None` (undecided) otherwise.
    pub fn holds(&self) -> Option<bool> {
        if self.violated > 0 {
            Some(false)
        } else if self.unchecked == 0 {
            Some(true)
        } else {
            None
        }
    }

    /// The verdict in a word or two: `holds`, `violated`, `undecided`.
    pub fn outcome(&self) -> &'static str {
        match self.holds() {
            Some(true) => "holds",
            Some(false) => "violated",
            None => "undecided",
        }
    }
}

/// How far an analytic figure can be trusted.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Accuracy {
    /// A closed form whose assumptions all hold: the simulation agrees within its sampling
    /// error.
    Exact,
    /// A formula applies but some assumption does not hold exactly (the reason says which).
    Approximate,
    /// No formula applies (the reason says why).
    NotApplicable,
}

/// One analytic figure, with how far it can be trusted and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Estimate {
    /// The value; `null` when no formula applies.
    pub value: Option<f64>,
    /// Exact, approximate or not applicable.
    pub accuracy: Accuracy,
    /// Which assumptions fail, or why no formula applies; empty when exact.
    pub why: String,
}

/// The note the analysis adds to the model of a variant with faults: its latency and station
/// figures are the fault-free steady state, so a gap from the simulation there is the faults'
/// effect, not a model error.
pub const FAULT_FREE_NOTE: &str = "latency and utilisation are the fault-free steady state; \
availability averages over the fault timeline";

impl Theory {
    /// Whether the variant has faults the model leaves out of latency and utilisation.
    pub fn under_faults(&self) -> bool {
        self.notes.iter().any(|n| n == FAULT_FREE_NOTE)
    }
}

/// The analytic model of one variant: queueing theory per station, flows through the call
/// graph, latency as a sum over hops, availability by series, parallel and quorum formulas.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Theory {
    /// Mean latency of successful requests, in milliseconds.
    pub latency_mean_ms: Estimate,
    /// Successful requests over requests issued, over the measured period.
    pub availability: Estimate,
    /// Successful requests per second over the measured period.
    pub throughput_rps: Estimate,
    /// Per server replica.
    pub stations: Vec<StationTheory>,
    /// Where a request's mean latency goes, hop by hop (sums to `latency_mean_ms` when every
    /// call is on the critical path).
    pub hops: Vec<HopTheory>,
    /// Findings that apply to the whole model (unstable stations, call cycles, faults).
    pub notes: Vec<String>,
    /// Per deploy: the expected failures its new version causes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deploys: Vec<DeployTheory>,
}

/// What the analytic model expects of one deploy.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeployTheory {
    /// The deploy's node name.
    pub name: String,
    /// Requests the new version fails, as a fraction of the requests issued over the measured
    /// period: weight × error rate × exposure time over that period.
    pub failed_fraction: Estimate,
}

/// The queueing model of one server replica.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StationTheory {
    /// Replica name, e.g. `app-2`.
    pub name: String,
    /// The pool it belongs to, e.g. `app`.
    pub group: String,
    /// Kendall notation of the formula, e.g. `M/M/4`, `M/D/1`, `M/M/5/5`.
    pub model: String,
    /// Offered arrival rate, requests per second.
    pub arrival_rps: f64,
    /// Workers.
    pub servers: u32,
    /// Mean holding time of a worker in milliseconds (service plus blocking calls).
    pub service_ms: f64,
    /// Offered load per worker, ρ = λ E[S] / c; 1 or more means it cannot keep up.
    pub offered_load: f64,
    /// Busy fraction of the workers, as simulated `utilisation` measures it.
    pub utilisation: f64,
    /// Whether `utilisation` is exact.
    pub utilisation_accuracy: Accuracy,
    /// Mean wait in queue in milliseconds; `null` when the queue grows without bound.
    pub wait_ms: Option<f64>,
    /// Probability that an arrival is turned away (queue full).
    pub loss: f64,
    /// Whether the waiting time and loss are exact.
    pub accuracy: Accuracy,
    /// Which assumptions fail; empty when exact.
    pub why: String,
}

/// The mean time a request spends in one hop (a group of nodes, or the network between two).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HopTheory {
    /// `app` for time at a node, `lb -> app` for network transit (both ways).
    pub hop: String,
    /// Visits per request (calls, counting retries and fan-out).
    pub visits: f64,
    /// Mean network transit per request, both ways, in milliseconds.
    pub network_ms: f64,
    /// Mean wait in queue per request, in milliseconds.
    pub wait_ms: f64,
    /// Mean service per request, in milliseconds.
    pub service_ms: f64,
}

/// How long a variant took to recover from one fault: from the fault's end until its windowed
/// availability and p99 were back within 10% of their values before the fault.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecoveryResult {
    /// The fault's label, as in `faults`.
    pub fault: String,
    /// Start of the fault, seconds of simulated time.
    pub start_s: f64,
    /// End of the fault, seconds of simulated time.
    pub end_s: f64,
    /// Availability over the quiet windows before the fault; `null` when there were none.
    pub baseline_availability: Option<f64>,
    /// Mean per-window p99 latency over the same windows, in milliseconds.
    pub baseline_p99_ms: Option<f64>,
    /// Seconds from the fault's end to the start of the first window back in band; `null`
    /// when that never happened before the clients stopped (or there was no baseline).
    pub recovered_after_s: Option<f64>,
    /// The fault was drawn by a `Random` entry (see [`FaultWindow::random`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub random: bool,
}

/// A component's time series: one value per time window from time 0, `null` where the window
/// has nothing to show.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SeriesResult {
    /// Identifier, e.g. `hit_ratio`; series with the same name share a plot.
    pub name: String,
    /// Plot title, e.g. `Cache hit ratio`.
    pub title: String,
    /// Unit for the y axis, e.g. `fraction` or `requests/s`.
    pub unit: String,
    /// One value per window.
    pub values: Vec<Option<f64>>,
    /// Which of several same-named series of one node this is (e.g. `shard2 db-2` for a
    /// router's per-shard load); plot legends add it to the node's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// For a series of states (a breaker's, a replica's role): the states' names and every
    /// change; `values` then holds per window the index of the state that lasted longest.
    /// The report draws it as a timeline, never as an averaged number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<StateTrack>,
}

/// The states of a categorical series and when each began.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateTrack {
    /// State names; a change's `state` indexes this list.
    pub names: Vec<String>,
    /// Every change in time order, the first at the series' start.
    pub changes: Vec<StateChange>,
    /// Changes after the last kept one that were counted but not kept (a bounded log).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A categorical series entering a state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateChange {
    /// When, seconds of simulated time.
    pub at_s: f64,
    /// Index into the track's `names`.
    pub state: u32,
}

/// A state change of a component at a point in time.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventRecord {
    /// When, seconds of simulated time.
    pub at_s: f64,
    /// What happened, e.g. `closed -> open (failure rate 62% over 20 calls)`.
    pub what: String,
}

/// Latency summary statistics in milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LatencySummary {
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest observed.
    pub max: f64,
}

/// One time window of the time series.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowResult {
    /// Window start, seconds of simulated time.
    pub start_s: f64,
    /// Requests that succeeded in this window.
    pub ok: u64,
    /// Requests that failed in this window (all causes).
    pub errors: u64,
    /// ok / (ok + errors); `null` when nothing completed in the window.
    pub availability: Option<f64>,
    /// ok per second.
    pub throughput_rps: f64,
    /// Median latency of successful requests; `null` when there were none.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of successful requests; `null` when there were none.
    pub p99_ms: Option<f64>,
}

/// Per-server statistics over the measured period.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerResult {
    /// Replica name, e.g. `app-2`.
    pub name: String,
    /// Busy worker-time / (workers × measured time), 0..1.
    pub utilisation: f64,
    /// Time-averaged number of requests waiting (not in service).
    pub mean_queue_len: f64,
    /// Requests whose service completed.
    pub served: u64,
    /// Requests turned away because the queue was full.
    pub rejected: u64,
}

/// A line of a fault table: one scheduled fault, or every random fault of one label (kind
/// and node).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultGroup {
    /// The fault's label (`random crash app-1` for a group).
    pub label: String,
    /// How many faults: 1 for a scheduled one.
    pub count: u64,
    /// Start of the first, seconds.
    pub first_start_s: f64,
    /// End of the last, seconds.
    pub last_end_s: f64,
    /// Total time faulted, seconds (overlaps counted twice).
    pub total_s: f64,
}

/// Scheduled faults one by one, random ones counted by label, in order of first appearance.
/// O(F log F).
pub fn fault_groups(faults: &[FaultWindow]) -> Vec<FaultGroup> {
    let mut groups: Vec<FaultGroup> = Vec::new();
    let mut by_label: BTreeMap<&str, usize> = BTreeMap::new();
    for f in faults {
        let found = f
            .random
            .then(|| by_label.get(f.label.as_str()).copied())
            .flatten();
        match found {
            Some(g) => {
                let g = &mut groups[g];
                g.count += 1;
                g.first_start_s = g.first_start_s.min(f.start_s);
                g.last_end_s = g.last_end_s.max(f.end_s);
                g.total_s += f.end_s - f.start_s;
            }
            None => {
                if f.random {
                    by_label.insert(&f.label, groups.len());
                }
                groups.push(FaultGroup {
                    label: f.label.clone(),
                    count: 1,
                    first_start_s: f.start_s,
                    last_end_s: f.end_s,
                    total_s: f.end_s - f.start_s,
                });
            }
        }
    }
    groups
}

/// A line of a time-to-recover table: one scheduled fault, or every random fault of one
/// label.
#[derive(Clone, Debug, PartialEq)]
pub struct RecoveryGroup {
    /// The fault's label.
    pub label: String,
    /// How many faults: 1 for a scheduled one.
    pub count: u64,
    /// End of the last, seconds.
    pub last_end_s: f64,
    /// Mean baseline availability of those with a baseline.
    pub baseline_availability: Option<f64>,
    /// Mean baseline p99 of those with a baseline, ms.
    pub baseline_p99_ms: Option<f64>,
    /// Faults with a baseline.
    pub with_baseline: u64,
    /// Times to recover of those that recovered: (mean, max) seconds.
    pub recovered_after_s: Option<(f64, f64)>,
    /// Faults with a baseline that never recovered.
    pub not_recovered: u64,
}

/// A variant's time-to-recover results, scheduled faults one by one and random ones summed
/// up by label, in order of first appearance. O(F log F).
pub fn recovery_groups(recovery: &[RecoveryResult]) -> Vec<RecoveryGroup> {
    let mut acc: Vec<(RecoveryGroup, [f64; 3])> = Vec::new();
    let mut by_label: BTreeMap<&str, usize> = BTreeMap::new();
    for r in recovery {
        let found = r
            .random
            .then(|| by_label.get(r.fault.as_str()).copied())
            .flatten();
        let i = found.unwrap_or_else(|| {
            if r.random {
                by_label.insert(&r.fault, acc.len());
            }
            let empty = RecoveryGroup {
                label: r.fault.clone(),
                count: 0,
                last_end_s: r.end_s,
                baseline_availability: None,
                baseline_p99_ms: None,
                with_baseline: 0,
                recovered_after_s: None,
                not_recovered: 0,
            };
            acc.push((empty, [0.0; 3]));
            acc.len() - 1
        });
        let (g, [avail_sum, p99_sum, recovered_sum]) = &mut acc[i];
        g.count += 1;
        g.last_end_s = g.last_end_s.max(r.end_s);
        if let (Some(a), Some(p)) = (r.baseline_availability, r.baseline_p99_ms) {
            g.with_baseline += 1;
            *avail_sum += a;
            *p99_sum += p;
            match r.recovered_after_s {
                Some(t) => {
                    *recovered_sum += t;
                    let max = g.recovered_after_s.map_or(t, |(_, m)| m.max(t));
                    g.recovered_after_s = Some((t, max));
                }
                None => g.not_recovered += 1,
            }
        }
    }
    acc.into_iter()
        .map(|(mut g, [avail_sum, p99_sum, recovered_sum])| {
            let n = g.with_baseline as f64;
            if g.with_baseline > 0 {
                g.baseline_availability = Some(avail_sum / n);
                g.baseline_p99_ms = Some(p99_sum / n);
            }
            let recovered = (g.with_baseline - g.not_recovered) as f64;
            if let Some((_, max)) = g.recovered_after_s {
                g.recovered_after_s = Some((recovered_sum / recovered, max));
            }
            g
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(label: &str, start_s: f64, end_s: f64, random: bool) -> FaultWindow {
        FaultWindow {
            label: label.to_string(),
            start_s,
            end_s,
            random,
        }
    }

    #[test]
    fn random_faults_are_counted_by_label_and_scheduled_ones_listed() {
        let faults = [
            fault("random crash b", 1.0, 2.0, true),
            fault("crash a", 1.5, 1.6, false),
            fault("random crash b", 4.0, 6.0, true),
            fault("crash a", 8.0, 9.0, false),
        ];
        let g = fault_groups(&faults);
        assert_eq!(g.len(), 3);
        assert_eq!(
            (g[0].count, g[0].first_start_s, g[0].last_end_s),
            (2, 1.0, 6.0)
        );
        assert_eq!(g[0].total_s, 3.0);
        assert_eq!((g[1].label.as_str(), g[2].first_start_s), ("crash a", 8.0));
        let r = |fault: &str, random, base: Option<f64>, after: Option<f64>| RecoveryResult {
            fault: fault.to_string(),
            start_s: 0.0,
            end_s: 1.0,
            baseline_availability: base,
            baseline_p99_ms: base.map(|b| b * 10.0),
            recovered_after_s: after,
            random,
        };
        let groups = recovery_groups(&[
            r("random crash b", true, Some(1.0), Some(2.0)),
            r("crash a", false, None, None),
            r("random crash b", true, Some(0.5), Some(4.0)),
            r("random crash b", true, Some(0.9), None),
            r("random crash b", true, None, None),
        ]);
        let b = &groups[0];
        assert_eq!((b.count, b.with_baseline, b.not_recovered), (4, 3, 1));
        assert_eq!(b.recovered_after_s, Some((3.0, 4.0)));
        assert!((b.baseline_availability.unwrap() - 0.8).abs() < 1e-12);
        assert_eq!((groups[1].count, groups[1].with_baseline), (1, 0));
    }
}

/// Requests the sequence diagram of a traced run draws when `--sequence` is not given.
pub const DEFAULT_SEQUENCE: u64 = 10;

fn default_sequence() -> u64 {
    DEFAULT_SEQUENCE
}

/// The traced requests of one variant and where their time went (`archsim run --trace N`).
///
/// Times are integer nanoseconds of simulated time, so that a request's segments add up to
/// its latency exactly.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Traces {
    /// How many requests were asked for (`--trace N`).
    pub asked: u64,
    /// How many of the first traced requests the sequence diagram draws (`--sequence K`).
    #[serde(default = "default_sequence")]
    pub sequence: u64,
    /// The sampled requests, in order of issue.
    pub requests: Vec<TracedRequest>,
    /// Shares of the latency of the typical (p50) and slow (p99) sampled requests by stage.
    pub breakdown: Vec<BreakdownRow>,
}

/// One sampled request: its messages, the spans nodes recorded for it, and its critical path.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TracedRequest {
    /// The end-to-end request id.
    pub id: u64,
    /// The client that issued it.
    pub client: String,
    /// When it was issued, ns.
    pub issued_ns: u64,
    /// When it ended, ns (absent if it had not ended when the run stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ns: Option<u64>,
    /// `ok`, or the cause of its failure (`timeout`, `rejected`, ...).
    pub outcome: String,
    /// Every message sent on its behalf, in order of sending.
    pub messages: Vec<TraceMessage>,
    /// What nodes did for it: queue waits, service, backoffs before retries.
    pub spans: Vec<TraceSpan>,
    /// Instants: timeouts, retries, hedges, cache hits and misses, failures.
    pub marks: Vec<TraceMark>,
    /// Its critical path, from issue to end: contiguous segments that add up to its latency.
    pub path: Vec<PathSegment>,
    /// More happened than a trace keeps (see `contract::trace::MAX_RECORDS`); the request is
    /// left out of the breakdown.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
}

/// A message on a traced request's behalf.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceMessage {
    /// Sender.
    pub from: String,
    /// Destination.
    pub to: String,
    /// `request` (with its attempt), or the answer: `ok` or its error cause.
    pub what: String,
    /// When the sender sent it, ns.
    pub sent_ns: u64,
    /// When it left the sender, after local work (a cache lookup, a handshake), ns.
    pub departs_ns: u64,
    /// When it arrived, ns; absent if the network lost it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrives_ns: Option<u64>,
}

/// Something a node did for a traced request over an interval.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceSpan {
    /// The node.
    pub node: String,
    /// `queue`, `service`, `backoff` or `preempted` (taken off its worker by a higher class,
    /// waiting to resume).
    pub kind: String,
    /// Start, ns.
    pub start_ns: u64,
    /// End, ns.
    pub end_ns: u64,
}

/// Something that happened to a traced request at an instant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TraceMark {
    /// The node.
    pub node: String,
    /// `timeout`, `retry`, `hedge`, `cache hit`, `cache miss`, or `failed: <cause>`.
    pub what: String,
    /// When, ns.
    pub at_ns: u64,
}

/// One segment of a request's critical path: where it was, doing what.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PathSegment {
    /// The node it was at, or for `network` the link (`a -> b`).
    pub hop: String,
    /// `network`, `queue`, `service`, `retry` (waiting on an attempt that failed, or a
    /// backoff) or `other` (waiting at a node with nothing recorded, such as a coalesced
    /// cache load).
    pub stage: String,
    /// Start, ns.
    pub start_ns: u64,
    /// End, ns.
    pub end_ns: u64,
}

/// Where the time of a group of sampled requests went: one stage at one hop.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BreakdownRow {
    /// `p50` (the sampled successful requests around the median) or `p99` (the slowest 1%,
    /// at least one).
    pub group: String,
    /// How many requests the group holds.
    pub requests: u64,
    /// The hop (node, or link for the network), or `all` for the group's total by stage.
    pub hop: String,
    /// The stage (see [`PathSegment::stage`]).
    pub stage: String,
    /// Mean time per request of the group, ms.
    pub mean_ms: f64,
    /// Share of the group's total latency, percent (the `all` rows of a group add up to 100).
    pub share_pct: f64,
}
