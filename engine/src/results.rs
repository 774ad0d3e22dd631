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
    /// Seconds of the measured time that clients were down (crashed or paused), summed over
    /// clients: requests they would have issued then were never issued, so `availability`
    /// leaves that time out, and tables mark it. Left out when zero.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub clients_down_s: f64,
    /// The same request metrics per request class, in the scenario's priority order; left out
    /// when the scenario declares no classes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassResult>,
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
    /// Per time window, from time 0, by completion time.
    pub windows: Vec<WindowResult>,
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
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
