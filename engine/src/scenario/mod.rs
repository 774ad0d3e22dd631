//! Scenario files: parse RON, apply variant overrides, validate into runnable models.
//!
//! ```text
//!  text ──ron──▶ FileRepr (borrowed raw node values) ──▶ Spec (typed, defaults filled)
//!                         variants: Spec + overrides ──▶ one Spec per variant
//!                         validate(Spec) ──▶ Model (names resolved to ids)
//! ```
//! Every error becomes a [`diag::Diagnostic`] with the file's line and column; all of them are
//! collected and shown together.

pub mod diag;
pub mod faults;
pub mod locate;
pub mod network_faults;
pub mod sweep;
pub mod topology;
pub mod traces;
pub mod validate;
pub mod wiring;

use crate::components::{NodeConfig, PluginConfig};
use crate::contract::settable::{SetError, parse_value, ron_options};
use crate::contract::size::Bandwidth;
use crate::contract::validate::{Path, PathSeg, Problem};
use crate::registry::Registry;
use crate::sim::dist::Dist;
use crate::sim::time::SimDuration;
use diag::Diagnostic;
use indexmap::IndexMap;
use locate::Span;
use ron::value::RawValue;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use validate::Model;

/// The scenario as written, with defaults filled in: what `results.json` echoes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spec {
    /// Title of the scenario, shown on every report.
    pub name: String,
    /// A sentence or two on what the scenario shows.
    pub description: Option<String>,
    /// Seed of every random stream.
    pub seed: u64,
    /// Clients issue requests during [0, duration).
    pub duration: SimDuration,
    /// Requests issued earlier are left out of the summary.
    pub warmup: SimDuration,
    /// Width of a time-series window.
    pub window: SimDuration,
    /// The network model.
    pub network: NetworkConfig,
    /// Nodes by name, in file order.
    pub nodes: IndexMap<String, NodeConfig>,
    /// The fault schedule.
    pub faults: Vec<FaultConfig>,
    /// Run bounds.
    pub limits: LimitsConfig,
    /// Request classes in priority order, the first the highest (empty: one class).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// The folder of the scenario file: trace files are found relative to it.
    #[serde(skip)]
    pub base_dir: std::path::PathBuf,
    /// The zones nodes declare with `zone:` (a pool's replicas spread over `zones:` in turn),
    /// by node name, in file order.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub placement: IndexMap<String, Placement>,
}

/// Where a node or pool runs, written in its declaration: `zone: "use-1a"`, or a pool's
/// replicas spread over several zones in turn, `zones: ["use-1a", "use-1b"]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Placement {
    /// Every replica in this zone.
    Zone(String),
    /// Replica i in zone i mod the number of zones.
    Zones(Vec<String>),
}

/// The network model: default latency and loss, with per-link overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// One-way latency of every link (distribution of durations). Default `Constant("0s")`.
    #[serde(default = "zero_latency")]
    pub latency: Dist,
    /// Probability that a message is lost (0..1). Default 0.
    #[serde(default)]
    pub loss: f64,
    /// Per-link overrides, e.g. `[(from: "lb", to: "app", latency: Constant("2ms"))]`.
    #[serde(default)]
    pub links: Vec<LinkConfig>,
    /// Regions and their zones: `{"us-east": ["use-1a", "use-1b"], "eu-west": ["euw-1a"]}`.
    /// A node is placed in a zone with `zone: "use-1a"` (a pool: `zones: [...]`). Between two
    /// nodes of one zone, and for nodes in no zone, `latency` applies. Default `{}`: no zones.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "std::collections::BTreeMap<String, Vec<String>>")]
    pub regions: IndexMap<String, Vec<String>>,
    /// One-way latency between nodes in different zones of one region (distribution of
    /// durations). Default: `latency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_zone: Option<Dist>,
    /// One-way latency between nodes in different regions (distribution of durations).
    /// Default: `cross_zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_region: Option<Dist>,
    /// Overrides for the links between two zones or regions, both ways unless `one_way`:
    /// `[(from: "us-east", to: "eu-west", latency: Constant("40ms"), bandwidth: Some("1Gbps"))]`.
    /// Default `[]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zone_links: Vec<ZoneLinkConfig>,
    /// Capacity of every link, each direction on its own (`"10Gbps"`, `"125MB/s"`): a message
    /// of S bytes takes S / capacity on the wire, and messages on the link arrive in the order
    /// they were sent. Default `None`: unlimited, and messages may overtake each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            latency: zero_latency(),
            loss: 0.0,
            links: Vec::new(),
            regions: IndexMap::new(),
            cross_zone: None,
            cross_region: None,
            zone_links: Vec::new(),
            bandwidth: None,
        }
    }
}

/// Latency, loss and capacity of the links between two zones or regions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneLinkConfig {
    /// Zone or region on one end.
    pub from: String,
    /// Zone or region on the other end.
    pub to: String,
    /// One-way latency on these links (distribution of durations). Default: as without this
    /// entry.
    #[serde(default)]
    pub latency: Option<Dist>,
    /// Loss probability on these links (0..1). Default: the network's.
    #[serde(default)]
    pub loss: Option<f64>,
    /// Capacity of each of these links (`"1Gbps"`). Default: the network's `bandwidth`.
    #[serde(default)]
    pub bandwidth: Option<Bandwidth>,
    /// Apply only from `from` to `to`. Default false: both ways.
    #[serde(default)]
    pub one_way: bool,
}

fn zero_latency() -> Dist {
    Dist::Constant(SimDuration::ZERO)
}

/// Latency and loss of the links from one node or group to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    /// Sending node or group.
    pub from: String,
    /// Receiving node or group.
    pub to: String,
    /// One-way latency on these links. Default: the network's.
    #[serde(default)]
    pub latency: Option<Dist>,
    /// Loss probability on these links (0..1). Default: the network's.
    #[serde(default)]
    pub loss: Option<f64>,
    /// Apply to the reverse direction too. Default false.
    #[serde(default)]
    pub both_ways: bool,
    /// Capacity of these links (`"1Gbps"`). Default: the network's `bandwidth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
}

/// Something that goes wrong on a timeline. `at` and `until` are times since the start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum FaultConfig {
    /// The node (or every node of a group) crashes at `at` and restarts at `until`
    /// (never, if omitted), losing its volatile state: `Crash(node: "app-3", at: "40s", until: "45s")`.
    Crash {
        /// Node or group.
        node: String,
        /// Start (time since the run began).
        at: SimDuration,
        /// Restart (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
        /// Keep the node's data across the crash (a process restart that recovers from disk):
        /// work in progress is lost, but a component that holds data (a cache's entries)
        /// keeps it. Default false: all volatile state is lost.
        #[serde(default, skip_serializing_if = "is_false")]
        keep_state: bool,
    },
    /// Service on the node takes `factor` times longer:
    /// `Slowdown(node: "app-2", factor: 10.0, at: "20s", until: "35s")`.
    Slowdown {
        /// Node or group.
        node: String,
        /// Multiplier of service time (> 0).
        factor: f64,
        /// Start (time since the run began).
        at: SimDuration,
        /// End (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// Nodes in different groups cannot reach each other; nodes in no group are unaffected.
    /// A single group is cut off from everyone else:
    /// `Partition(groups: [["lb"], ["app-1"]], at: "50s", until: "53s")`.
    /// With `one_way: true` only messages from the first group to the others are lost.
    Partition {
        /// Lists of node or group names.
        groups: Vec<Vec<String>>,
        /// Cut only the direction from the first group to the others. Default false.
        #[serde(default)]
        one_way: bool,
        /// Start (time since the run began).
        at: SimDuration,
        /// Heal (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// Links from `from` to `to` (every node where a list is empty or left out) use this
    /// latency and/or loss instead of their own: a latency spike or a lossy window.
    /// `LinkChange(to: ["db"], latency: Constant("50ms"), loss: 0.05, at: "10s", until: "20s")`.
    /// Where several changes apply, the one that started last wins.
    LinkChange {
        /// Sending nodes or groups. Default: every node.
        #[serde(default)]
        from: Vec<String>,
        /// Receiving nodes or groups. Default: every node.
        #[serde(default)]
        to: Vec<String>,
        /// One-way latency while the change lasts (distribution of durations). Default: unchanged.
        #[serde(default)]
        latency: Option<Dist>,
        /// Loss probability while the change lasts (0..1). Default: unchanged.
        #[serde(default)]
        loss: Option<f64>,
        /// Start (time since the run began).
        at: SimDuration,
        /// End (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// The node (or each node of a group) restarts: it crashes at `at` and comes back after
    /// `downtime`. `Restart(node: "app-1", at: "30s", downtime: "2s", keep_state: true)`.
    Restart {
        /// Node or group.
        node: String,
        /// When it goes down (time since the run began).
        at: SimDuration,
        /// How long it stays down. Default "0s": back at once, with its volatile state gone.
        #[serde(default)]
        downtime: SimDuration,
        /// Keep the node's data across the restart (see `Crash`). Default false.
        #[serde(default)]
        keep_state: bool,
    },
    /// The node stops, as in a stop-the-world GC pause: messages that reach it and timers that
    /// fire wait, and are handled in order when the pause ends; nothing is lost.
    /// `Pause(node: "app-0", at: "10s", until: "10.5s")`.
    Pause {
        /// Node or group.
        node: String,
        /// Start (time since the run began).
        at: SimDuration,
        /// End (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// Every link to or from `node` (every link of the network if `node` is left out) takes
    /// this latency instead of its own: `LatencySpike(node: "db", latency: Constant("50ms"),
    /// at: "10s", until: "15s")`.
    LatencySpike {
        /// Node or group whose links change. Default: every link.
        #[serde(default)]
        node: Option<String>,
        /// One-way latency while the spike lasts (distribution of durations).
        latency: Dist,
        /// Start (time since the run began).
        at: SimDuration,
        /// End (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// Every link to or from `node` (every link if `node` is left out) loses this fraction of
    /// messages: `PacketLoss(node: "db", loss: 0.2, at: "10s", until: "15s")`.
    PacketLoss {
        /// Node or group whose links change. Default: every link.
        #[serde(default)]
        node: Option<String>,
        /// Loss probability while the window lasts (0..1).
        loss: f64,
        /// Start (time since the run began).
        at: SimDuration,
        /// End (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// The node (or group) is cut off from every other node, both ways:
    /// `Isolate(node: "db-2", at: "10s", until: "20s")`.
    Isolate {
        /// Node or group.
        node: String,
        /// Start (time since the run began).
        at: SimDuration,
        /// Heal (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// Split a cluster: of the listed nodes (groups expanded, in declaration order), the last
    /// `minority` are cut off, together with `with_minority`, from every other node.
    /// `Split(nodes: ["db"], at: "10s", until: "20s")` cuts 2 of 5 replicas away.
    Split {
        /// The cluster's nodes or groups.
        nodes: Vec<String>,
        /// Size of the minority side (count). Default: the largest minority, (n - 1) / 2.
        #[serde(default)]
        minority: Option<u32>,
        /// Other nodes (e.g. some clients) that end up on the minority side. Default none.
        #[serde(default)]
        with_minority: Vec<String>,
        /// Start (time since the run began).
        at: SimDuration,
        /// Heal (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// Faults drawn at random from the seed: they start as a Poisson process with the given
    /// mean interval between `start` and `stop`, each hits one node of `node` chosen at
    /// random and lasts `duration`. The draws come from their own stream, so they do not
    /// change any other random draw. `Random(kind: Crash, node: "app", mean_interval: "20s",
    /// duration: "2s")`.
    Random {
        /// What each fault does.
        kind: RandomFaultKind,
        /// Node or group the faults hit (one member at random each time).
        node: String,
        /// Mean time between fault starts (exponentially distributed).
        mean_interval: SimDuration,
        /// How long each fault lasts.
        duration: SimDuration,
        /// Faults start from here on (time since the run began). Default "0s".
        #[serde(default)]
        start: SimDuration,
        /// No fault starts after this (time since the run began). Default: the run's duration.
        #[serde(default)]
        stop: Option<SimDuration>,
    },
    /// Every node in a zone crashes, losing its volatile state, and restarts at `until`:
    /// `ZoneOutage(zone: "use-1a", at: "30s", until: "60s")`.
    ZoneOutage {
        /// A zone declared under `network.regions`.
        zone: String,
        /// Start (time since the run began).
        at: SimDuration,
        /// Restart (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// Every node in every zone of a region crashes, losing its volatile state, and restarts
    /// at `until`: `RegionOutage(region: "us-east", at: "30s", until: "90s")`.
    RegionOutage {
        /// A region declared under `network.regions`.
        region: String,
        /// Start (time since the run began).
        at: SimDuration,
        /// Restart (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// Nodes in zones or regions of different groups cannot reach each other; a single group
    /// is cut off from every other node:
    /// `RegionPartition(groups: [["us-east"], ["eu-west"]], at: "30s", until: "60s")`.
    /// With `one_way: true` only messages from the first group to the others are lost.
    RegionPartition {
        /// Lists of zone or region names.
        groups: Vec<Vec<String>>,
        /// Cut only the direction from the first group to the others. Default false.
        #[serde(default)]
        one_way: bool,
        /// Start (time since the run began).
        at: SimDuration,
        /// Heal (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// The links between two zones or regions take this latency and/or loss instead of their
    /// own, both ways unless `one_way`: a degraded inter-region link.
    /// `DegradedLink(from: "us-east", to: "eu-west", latency: Some(Constant("150ms")), loss: Some(0.02), at: "30s", until: "60s")`.
    DegradedLink {
        /// Zone or region on one end.
        from: String,
        /// Zone or region on the other end.
        to: String,
        /// One-way latency while the fault lasts (distribution of durations). Default: unchanged.
        #[serde(default)]
        latency: Option<Dist>,
        /// Loss probability while the fault lasts (0..1). Default: unchanged.
        #[serde(default)]
        loss: Option<f64>,
        /// Degrade only the direction from `from` to `to`. Default false.
        #[serde(default)]
        one_way: bool,
        /// Start (time since the run began).
        at: SimDuration,
        /// End (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// A fraction of the messages on every link to or from `node` (every link if left out) is
    /// delivered twice, the copy with its own transit time:
    /// `Duplicate(node: "app", probability: 0.01, at: "10s", until: "20s")`.
    Duplicate {
        /// Node or group whose links are affected. Default: every link.
        #[serde(default)]
        node: Option<String>,
        /// Probability that a message is delivered twice (0..1).
        probability: f64,
        /// Start (time since the run began).
        at: SimDuration,
        /// End (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
    /// A fraction of the messages on every link to or from `node` (every link if left out) is
    /// held back by a time uniform in (0, `window`], so messages sent after it may overtake it:
    /// `Reorder(probability: 0.1, window: "5ms", at: "10s", until: "20s")`.
    Reorder {
        /// Node or group whose links are affected. Default: every link.
        #[serde(default)]
        node: Option<String>,
        /// Probability that a message is held back (0..1).
        probability: f64,
        /// The longest a message is held back (duration).
        window: SimDuration,
        /// Start (time since the run began).
        at: SimDuration,
        /// End (time since the run began). Default: never.
        #[serde(default)]
        until: Option<SimDuration>,
    },
}

/// What each fault of a `Random` entry does to the node it hits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum RandomFaultKind {
    /// Crash, losing volatile state, and restart when the fault ends.
    Crash,
    /// Crash keeping the node's data, and restart when the fault ends.
    CrashKeepState,
    /// A stop-the-world pause: messages and timers wait.
    Pause,
    /// Service takes `factor` times longer.
    Slowdown {
        /// Multiplier of service time (> 0).
        factor: f64,
    },
    /// The node is cut off from every other node.
    Isolate,
    /// The node's links take this latency.
    LatencySpike {
        /// One-way latency (distribution of durations).
        latency: Dist,
    },
    /// The node's links lose this fraction of messages.
    PacketLoss {
        /// Loss probability (0..1).
        loss: f64,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl FaultConfig {
    /// (at, until) of any fault; for `Random`, the span in which faults may start.
    pub fn timing(&self) -> (SimDuration, Option<SimDuration>) {
        match self {
            FaultConfig::Crash { at, until, .. }
            | FaultConfig::Slowdown { at, until, .. }
            | FaultConfig::Partition { at, until, .. }
            | FaultConfig::LinkChange { at, until, .. }
            | FaultConfig::Pause { at, until, .. }
            | FaultConfig::LatencySpike { at, until, .. }
            | FaultConfig::PacketLoss { at, until, .. }
            | FaultConfig::Isolate { at, until, .. }
            | FaultConfig::Split { at, until, .. }
            | FaultConfig::ZoneOutage { at, until, .. }
            | FaultConfig::RegionOutage { at, until, .. }
            | FaultConfig::RegionPartition { at, until, .. }
            | FaultConfig::DegradedLink { at, until, .. }
            | FaultConfig::Duplicate { at, until, .. }
            | FaultConfig::Reorder { at, until, .. } => (*at, *until),
            // A restart's downtime may be zero; it has no `until` to check.
            FaultConfig::Restart { at, .. } => (*at, None),
            FaultConfig::Random { start, stop, .. } => (*start, *stop),
        }
    }
}

/// Bounds on one run, so a runaway model stops with a clear error instead of hanging or
/// exhausting memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most events one run may process (count). Default 2000000000 (minutes of computing).
    #[serde(default = "default_max_events")]
    pub max_events: u64,
    /// Most events pending at once, and most requests waiting in one unbounded queue (count).
    /// Default 20000000.
    #[serde(default = "default_max_pending")]
    pub max_pending_events: usize,
    /// Most events in a row at one instant of simulated time (count); more means a zero-delay
    /// loop. Default 10000000.
    #[serde(default = "default_max_per_instant")]
    pub max_events_per_instant: u64,
    /// Most memory the structures that grow with load may hold: the event queue, calls in
    /// flight at clients, balancers and proxies, server queues (a size: "512MiB", "4GiB").
    /// Past it the run stops naming the structure and the node. Default "1GiB".
    #[serde(
        default = "default_max_memory",
        skip_serializing_if = "is_default_max_memory"
    )]
    pub max_memory: crate::sim::budget::ByteSize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_events: default_max_events(),
            max_pending_events: default_max_pending(),
            max_events_per_instant: default_max_per_instant(),
            max_memory: default_max_memory(),
        }
    }
}

impl LimitsConfig {
    /// The kernel's form.
    pub fn to_limits(&self) -> crate::sim::Limits {
        crate::sim::Limits {
            max_events: self.max_events,
            max_pending_events: self.max_pending_events,
            max_events_per_instant: self.max_events_per_instant,
            max_memory: self.max_memory.0,
        }
    }
}

/// Left out of `results.json` when it is the default, so results of runs that do not set it
/// keep their bytes.
fn is_default_max_memory(size: &crate::sim::budget::ByteSize) -> bool {
    *size == default_max_memory()
}

fn default_max_memory() -> crate::sim::budget::ByteSize {
    crate::sim::budget::ByteSize(crate::sim::Limits::default().max_memory)
}

fn default_max_per_instant() -> u64 {
    crate::sim::Limits::default().max_events_per_instant
}

fn default_max_events() -> u64 {
    crate::sim::Limits::default().max_events
}

fn default_max_pending() -> usize {
    crate::sim::Limits::default().max_pending_events
}

fn default_seed() -> u64 {
    1
}

fn default_window() -> SimDuration {
    SimDuration::from_secs(1)
}

/// The file as serde sees it; node values and overrides stay raw text until their type is
/// known.
#[derive(Deserialize)]
#[serde(rename = "Scenario", deny_unknown_fields)]
struct FileRepr<'a> {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default = "default_seed")]
    seed: u64,
    duration: SimDuration,
    #[serde(default)]
    warmup: SimDuration,
    #[serde(default = "default_window")]
    window: SimDuration,
    #[serde(default)]
    network: NetworkConfig,
    #[serde(borrow)]
    nodes: IndexMap<String, &'a RawValue>,
    #[serde(default)]
    faults: Vec<FaultConfig>,
    #[serde(default, borrow)]
    variants: IndexMap<String, IndexMap<String, &'a RawValue>>,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default, borrow)]
    sweep: Option<sweep::SweepRepr<'a>>,
    #[serde(default)]
    classes: Vec<String>,
}

/// One concrete run of a scenario: the base with a variant's overrides applied.
#[derive(Clone, Debug)]
pub struct Variant {
    /// Variant name (`base` when the file declares none).
    pub name: String,
    /// Its overrides, path to RON text, in file order.
    pub overrides: Vec<(String, String)>,
    /// The validated model.
    pub model: Model,
}

/// A parsed and validated scenario file.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file name as given.
    pub file: String,
    /// The base scenario (before overrides).
    pub base: Spec,
    /// Runs to make, in file order.
    pub variants: Vec<Variant>,
    /// The `sweep:` block expanded over the variants, if the file has one (`archsim sweep`).
    pub sweep: Option<sweep::SweepPlan>,
}

/// Everything wrong with a scenario file, rendered like rustc's errors.
#[derive(Clone, Debug)]
pub struct ScenarioError {
    /// File name as given.
    pub file: String,
    /// Each problem with its location.
    pub diagnostics: Vec<Diagnostic>,
    /// The rendered text (file:line:col, source line, caret, expectation).
    pub rendered: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.rendered.trim_end())?;
        let n = self.diagnostics.len();
        write!(
            f,
            "\n\n{}: {n} error{} found; nothing was run",
            self.file,
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ScenarioError {}

/// Parse and validate a scenario. `file` names it in error messages.
pub fn parse(file: &str, src: &str, registry: &Registry) -> Result<Scenario, ScenarioError> {
    let mut errs = Errors {
        src,
        diags: Vec::new(),
        variant_count: 0,
        placement: IndexMap::new(),
    };
    if src.starts_with('\u{feff}') {
        errs.diags.push(Diagnostic {
            message: "the file starts with a byte-order mark (U+FEFF)".to_string(),
            span: Span { start: 0, end: 3 },
            label: "expected plain UTF-8 text: save the file without a byte-order mark".to_string(),
            notes: Vec::new(),
        });
        return Err(errs.finish(file));
    }
    let repr: FileRepr<'_> = match ron_options().from_str(src) {
        Ok(r) => r,
        Err(e) => {
            errs.ron(0, &e, "");
            return Err(errs.finish(file));
        }
    };
    if errs.duplicate_keys() {
        return Err(errs.finish(file));
    }
    let mut nodes = IndexMap::new();
    for (name, raw) in &repr.nodes {
        if let Some(cfg) = errs.node(name, raw, registry) {
            nodes.insert(name.clone(), cfg);
        }
    }
    let base = Spec {
        name: repr.name,
        description: repr.description,
        seed: repr.seed,
        duration: repr.duration,
        warmup: repr.warmup,
        window: repr.window,
        network: repr.network,
        nodes,
        faults: repr.faults,
        limits: repr.limits,
        classes: repr.classes,
        base_dir: std::path::Path::new(file)
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default(),
        placement: std::mem::take(&mut errs.placement),
    };
    if !errs.diags.is_empty() {
        return Err(errs.finish(file));
    }
    let mut variants = Vec::new();
    let plans: Vec<(String, Vec<(String, &RawValue)>)> = if repr.variants.is_empty() {
        vec![("base".to_string(), Vec::new())]
    } else {
        repr.variants
            .iter()
            .map(|(n, o)| (n.clone(), o.iter().map(|(k, v)| (k.clone(), *v)).collect()))
            .collect()
    };
    errs.variant_count = plans.len();
    for (name, overrides) in plans {
        if let Some(v) = errs.variant(&base, &name, &overrides, registry) {
            variants.push(v);
        }
    }
    let sweep = match &repr.sweep {
        Some(block) if errs.diags.is_empty() => {
            let specs: Vec<&Spec> = variants.iter().map(|v| &v.model.spec).collect();
            errs.sweep(block, &specs, registry)
        }
        _ => None,
    };
    if errs.diags.is_empty() {
        Ok(Scenario {
            file: file.to_string(),
            base,
            variants,
            sweep,
        })
    } else {
        Err(errs.finish(file))
    }
}

/// Diagnostics collected while reading one file.
struct Errors<'s> {
    src: &'s str,
    diags: Vec<Diagnostic>,
    variant_count: usize,
    /// The nodes' `zone:` fields, as [`Errors::node`] takes them out.
    placement: IndexMap<String, Placement>,
}

impl<'s> Errors<'s> {
    fn finish(self, file: &str) -> ScenarioError {
        let rendered = diag::render(file, self.src, &self.diags);
        ScenarioError {
            file: file.to_string(),
            diagnostics: self.diags,
            rendered,
        }
    }

    /// Byte offset of a raw value inside the file (it borrows from the file's text).
    fn offset_of(&self, raw: &RawValue) -> usize {
        let text = raw.get_ron();
        (text.as_ptr() as usize)
            .saturating_sub(self.src.as_ptr() as usize)
            .min(self.src.len())
    }

    /// A ron error in text that starts at byte `base` of the file.
    fn ron(&mut self, base: usize, e: &ron::error::SpannedError, note: &str) {
        let text = &self.src[base..];
        let start = base + offset_at(text, e.span.start.line, e.span.start.col);
        let end = (base + offset_at(text, e.span.end.line, e.span.end.col)).max(start);
        // A span over several lines (ron's end-of-file errors) draws badly; keep the first line.
        let line_end = self.src[start..]
            .find('\n')
            .map_or(self.src.len(), |i| start + i);
        let end = end.min(line_end).max(start);
        let mut notes = if note.is_empty() {
            Vec::new()
        } else {
            vec![note.to_string()]
        };
        let (message, label, span) = match self.ran_out(base, start, &e.code) {
            Some((message, label, note)) => {
                notes.insert(0, note);
                (message, label, Span { start, end })
            }
            None => match single_quoted(self.src, start, &e.code) {
                Some(found) => found,
                None => {
                    let (message, label) =
                        written_wrong(self.src, start).unwrap_or_else(|| ron_message(&e.code));
                    (message, label, Span { start, end })
                }
            },
        };
        self.diags.push(Diagnostic {
            message,
            span,
            label,
            notes,
        });
    }

    /// When ron stopped because the text (from `base`) ended inside a bracket: say so, and
    /// where that bracket was opened.
    fn ran_out(
        &self,
        base: usize,
        at: usize,
        code: &ron::Error,
    ) -> Option<(String, String, String)> {
        let text = &self.src[base..];
        let at_end = matches!(code, ron::Error::Eof) || at >= base + locate::end_of_content(text);
        let (open, close) = locate::unclosed_at_end(text)?;
        if !at_end {
            return None;
        }
        let opened = base + open.start;
        let (line, col) = locate::line_col(self.src, opened);
        let bracket = &self.src[opened..base + open.end];
        Some((
            format!("the file ended before the `{bracket}` opened at {line}:{col} was closed"),
            format!("expected `{close}` (or more of the value) before the end of the file"),
            format!("the `{bracket}` at {line}:{col} is still open at the end of the file"),
        ))
    }

    /// Every map key written twice (nodes, variants, overrides, sweep parameters, ...);
    /// returns whether there was one.
    fn duplicate_keys(&mut self) -> bool {
        let dups = locate::duplicate_keys(self.src);
        for d in &dups {
            let (line, col) = locate::line_col(self.src, d.first.start);
            let map = locate::path_to_string(&d.map);
            let within = if map.is_empty() {
                String::new()
            } else {
                format!(" in `{map}`")
            };
            self.diags.push(Diagnostic {
                message: format!("key \"{}\" appears twice{within}", d.key),
                span: d.again,
                label: format!("expected each key once; it is first written at {line}:{col}"),
                notes: vec![format!(
                    "first at {line}:{col}; a map keeps one value per key, so one would be \
                     silently dropped"
                )],
            });
        }
        !dups.is_empty()
    }

    fn at_path(&mut self, path: &Path, message: String, label: String, notes: Vec<String>) {
        let span = locate::locate(self.src, &path.0);
        self.diags.push(Diagnostic {
            message,
            span,
            label,
            notes,
        });
    }

    /// A node's `zone:` or `zones:` (any node may have one), taken out of its text before its
    /// own type reads the rest; returns that rest if there was one.
    fn take_placement(&mut self, name: &str, text: &str, base: usize) -> Option<String> {
        let taken = locate::take_field(text, &["zone", "zones"])?;
        let value = &text[taken.value.start..taken.value.end];
        let parsed = if taken.name == "zone" {
            parse_value::<String>(value).map(Placement::Zone)
        } else {
            parse_value::<Vec<String>>(value).map(Placement::Zones)
        };
        match parsed {
            Ok(p) => {
                self.placement.insert(name.to_string(), p);
            }
            Err(e) => {
                let note = format!(
                    "in node \"{name}\": `zone` is a zone name, `zones` a list of them (declared under `network.regions`)"
                );
                self.ron(base + taken.value.start, &e, &note);
            }
        }
        Some(taken.rest)
    }

    fn node(&mut self, name: &str, raw: &RawValue, registry: &Registry) -> Option<NodeConfig> {
        let base = self.offset_of(raw);
        let rest = self.take_placement(name, raw.get_ron(), base);
        let text = rest.as_deref().unwrap_or(raw.get_ron());
        let kind = leading_ident(text);
        let parsed = match kind {
            "Client" => parse_value(text).map(NodeConfig::Client),
            "LoadBalancer" => parse_value(text).map(NodeConfig::LoadBalancer),
            "Server" => parse_value(text).map(NodeConfig::Server),
            "CircuitBreaker" => parse_value(text).map(NodeConfig::CircuitBreaker),
            "RateLimiter" => parse_value(text).map(NodeConfig::RateLimiter),
            "Bulkhead" => parse_value(text).map(NodeConfig::Bulkhead),
            "TxnClient" => parse_value(text).map(NodeConfig::TxnClient),
            "TxnCoordinator" => parse_value(text).map(NodeConfig::TxnCoordinator),
            "TxnParticipant" => parse_value(text).map(NodeConfig::TxnParticipant),
            "Cache" => parse_value(text).map(NodeConfig::Cache),
            "KvClient" => parse_value(text).map(NodeConfig::KvClient),
            "ReplicatedStore" => parse_value(text).map(NodeConfig::ReplicatedStore),
            "ReadReplicas" => parse_value(text).map(NodeConfig::ReadReplicas),
            "Queue" => parse_value(text).map(NodeConfig::Queue),
            "ShardRouter" => parse_value(text).map(NodeConfig::ShardRouter),
            "Topic" => parse_value(text).map(NodeConfig::Topic),
            "LogConsumer" => parse_value(text).map(NodeConfig::LogConsumer),
            "Autoscaler" => parse_value(text).map(NodeConfig::Autoscaler),
            "Deploy" => parse_value(text).map(NodeConfig::Deploy),
            "Gslb" => parse_value(text).map(NodeConfig::Gslb),
            other if registry.has_plugin(other) => {
                let plugin = PluginConfig {
                    kind: other.to_string(),
                    ron: text.trim().to_string(),
                };
                registry
                    .check_plugin_syntax(&plugin)
                    .map(|()| NodeConfig::Plugin(plugin))
            }
            other => {
                let path = Path::root().field("nodes").key(name);
                let known = registry.kind_names().join(", ");
                let what = if other.is_empty() {
                    "a component".to_string()
                } else {
                    format!("`{other}`")
                };
                self.at_path(
                    &path,
                    format!("{what} is not a known component"),
                    format!("expected one of: {known}"),
                    vec!["`archsim list` shows every component and its fields".to_string()],
                );
                return None;
            }
        };
        match parsed {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                self.ron(
                    base,
                    &e,
                    &format!("in node \"{name}\" ({kind}); `archsim list` shows its fields"),
                );
                None
            }
        }
    }

    fn variant(
        &mut self,
        base: &Spec,
        name: &str,
        overrides: &[(String, &RawValue)],
        registry: &Registry,
    ) -> Option<Variant> {
        let mut spec = base.clone();
        let before = self.diags.len();
        for (path, raw) in overrides {
            let at = Path::root().field("variants").key(name).key(path);
            match apply_override(&mut spec, path, raw.get_ron()) {
                Ok(()) => {}
                Err(OverrideError::Path(expected)) => self.at_path(
                    &at,
                    format!("variant \"{name}\": cannot override `{path}`"),
                    expected,
                    Vec::new(),
                ),
                Err(OverrideError::Value(e)) => {
                    let base = self.offset_of(raw);
                    self.ron(
                        base,
                        &e,
                        &format!("in variant \"{name}\", override `{path}`"),
                    );
                }
            }
        }
        if self.diags.len() > before {
            return None;
        }
        match validate::validate(&spec, registry) {
            Ok(model) => {
                let overrides = overrides
                    .iter()
                    .map(|(p, r)| (p.clone(), r.get_ron().trim().to_string()))
                    .collect();
                Some(Variant {
                    name: name.to_string(),
                    overrides,
                    model,
                })
            }
            Err(problems) => {
                for p in problems {
                    self.problem(p, name, overrides);
                }
                None
            }
        }
    }

    /// Report a validation problem; if a variant's override set the value, point there.
    fn problem(&mut self, p: Problem, variant: &str, overrides: &[(String, &RawValue)]) {
        let overridden = overrides
            .iter()
            .find(|(path, _)| override_covers(path, &p.path.0));
        let (path, notes) = match overridden {
            Some((path, _)) => (
                Path::root().field("variants").key(variant).key(path),
                vec![format!(
                    "at {} after variant \"{variant}\" applies its overrides",
                    locate::path_to_string(&p.path.0)
                )],
            ),
            None => (
                p.path.clone(),
                vec![format!("at {}", locate::path_to_string(&p.path.0))],
            ),
        };
        let span = locate::locate(self.src, &path.0);
        let variant_note = format!("in variant \"{variant}\"");
        if let Some(d) = self
            .diags
            .iter_mut()
            .find(|d| d.span == span && d.message == p.message)
        {
            // The same problem in several variants: say so once.
            if let Some(n) = d.notes.iter_mut().find(|n| n.starts_with("in variant")) {
                *n = format!(
                    "{}, \"{variant}\"",
                    n.replacen("in variant ", "in variants ", 1)
                );
            }
            return;
        }
        let mut notes = notes;
        if self.variant_count > 1 && overridden.is_none() {
            notes.push(variant_note);
        }
        self.diags.push(Diagnostic {
            message: p.message,
            span,
            label: p.expected,
            notes,
        });
    }
}

/// Does override `path` (`lb.strategy`) set the value at validation path `at`?
fn override_covers(path: &str, at: &[PathSeg]) -> bool {
    let want: Vec<PathSeg> = match path.split_once('.') {
        Some(("network", field)) => vec![
            PathSeg::Field("network".into()),
            PathSeg::Field(field.into()),
        ],
        Some((node, field)) => {
            vec![
                PathSeg::Field("nodes".into()),
                PathSeg::Key(node.into()),
                PathSeg::Field(field.into()),
            ]
        }
        None => vec![PathSeg::Field(path.into())],
    };
    at.starts_with(&want)
}

enum OverrideError {
    Path(String),
    Value(ron::error::SpannedError),
}

const TOP_LEVEL_OVERRIDES: &str = "expected `node.field` (e.g. \"lb.strategy\"), `network.latency`, `network.loss`, `network.links`, \
     `duration`, `warmup`, `window` or `faults`";

/// Apply one override (`lb.strategy` = `PowerOfTwoChoices`) to a spec.
fn apply_override(spec: &mut Spec, path: &str, text: &str) -> Result<(), OverrideError> {
    fn value<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, OverrideError> {
        parse_value(text).map_err(OverrideError::Value)
    }
    match path.split_once('.') {
        None => match path {
            "duration" => spec.duration = value(text)?,
            "warmup" => spec.warmup = value(text)?,
            "window" => spec.window = value(text)?,
            "faults" => spec.faults = value(text)?,
            _ => return Err(OverrideError::Path(TOP_LEVEL_OVERRIDES.to_string())),
        },
        Some(("network", field)) => match field {
            "latency" => spec.network.latency = value(text)?,
            "loss" => spec.network.loss = value(text)?,
            "links" => spec.network.links = value(text)?,
            "regions" => spec.network.regions = value(text)?,
            "cross_zone" => spec.network.cross_zone = value(text)?,
            "cross_region" => spec.network.cross_region = value(text)?,
            "zone_links" => spec.network.zone_links = value(text)?,
            "bandwidth" => spec.network.bandwidth = value(text)?,
            _ => {
                return Err(OverrideError::Path(
                    "expected `network.latency`, `network.loss`, `network.links`, \
                     `network.regions`, `network.cross_zone`, `network.cross_region`, \
                     `network.zone_links` or `network.bandwidth`"
                        .into(),
                ));
            }
        },
        Some((node, "zone")) if spec.nodes.contains_key(node) => {
            spec.placement
                .insert(node.to_string(), Placement::Zone(value(text)?));
        }
        Some((node, "zones")) if spec.nodes.contains_key(node) => {
            spec.placement
                .insert(node.to_string(), Placement::Zones(value(text)?));
        }
        Some((node, field)) => {
            let Some(cfg) = spec.nodes.get_mut(node) else {
                let names: Vec<&str> = spec.nodes.keys().map(String::as_str).collect();
                return Err(OverrideError::Path(format!(
                    "`{node}` is not a declared node; expected one of: {}",
                    names.join(", ")
                )));
            };
            return cfg.set(field, text).map_err(|e| match e {
                SetError::UnknownField(fields) => OverrideError::Path(format!(
                    "`{node}` has no field `{field}`; expected one of: {}",
                    fields.join(", ")
                )),
                SetError::Value(e) => OverrideError::Value(e),
                SetError::Unsupported(why) => OverrideError::Path(why),
            });
        }
    }
    Ok(())
}

/// The identifier a RON value starts with (`Client` in `Client(target: ..)`), skipping
/// whitespace and comments.
fn leading_ident(text: &str) -> &str {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Byte offset of 1-based (line, col) in `text`, col counted in chars; clamped to the text.
fn offset_at(text: &str, line: usize, col: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return offset
                + l.char_indices()
                    .nth(col.saturating_sub(1))
                    .map_or(l.len(), |(b, _)| b);
        }
        offset += l.len();
    }
    text.len()
}

/// "expected one of: `a`, `b`" for a list of names.
fn one_of(expected: &[&str]) -> String {
    let quoted: Vec<String> = expected.iter().map(|f| format!("`{f}`")).collect();
    format!("expected one of: {}", quoted.join(", "))
}

/// Two mistakes ron reports without saying what they are: an enum value in quotes (`archsim
/// list` used to print defaults that way) and a decimal point in a whole-number field.
fn written_wrong(src: &str, at: usize) -> Option<(String, String)> {
    let rest = &src[at..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let word: String = quoted
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let bare = !word.is_empty() && word.chars().next().is_some_and(char::is_uppercase);
        return bare.then(|| {
            (
                format!("the value `\"{word}\"` is quoted"),
                format!("expected the name without quotes: `{word}`"),
            )
        });
    }
    let before = src[..at].chars().next_back()?;
    if rest.starts_with('.') && before.is_ascii_digit() {
        let digits: String = src[..at]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        let whole: String = digits.chars().rev().collect();
        return Some((
            "this field takes a whole number".to_string(),
            format!("expected `{whole}`, without a decimal point"),
        ));
    }
    None
}

/// ron reports a single-quoted string where the value starts (often the space before it);
/// point at the quote itself and say what RON's quotes mean.
fn single_quoted(src: &str, at: usize, code: &ron::Error) -> Option<(String, String, Span)> {
    let expects_string = matches!(
        code,
        ron::Error::ExpectedString | ron::Error::ExpectedStringEnd
    );
    let rest = src.get(at..)?;
    let quote = at + (rest.len() - rest.trim_start().len());
    if !(expects_string && src[quote..].starts_with('\'')) {
        return None;
    }
    let close = src[quote + 1..]
        .find(['\'', '\n'])
        .map_or(src.len(), |i| quote + 2 + i)
        .min(src.len());
    Some((
        "a string in single quotes".to_string(),
        "expected double quotes, e.g. \"3ms\": in RON, single quotes hold one character"
            .to_string(),
        Span {
            start: quote,
            end: close,
        },
    ))
}

/// Split a ron error into a headline and an "expected ..." label.
fn ron_message(code: &ron::Error) -> (String, String) {
    let text = code.to_string();
    match code {
        ron::Error::ExceededRecursionLimit => (
            format!(
                "nested deeper than {} levels",
                crate::contract::settable::RECURSION_LIMIT
            ),
            "expected a scenario nested a few levels deep".to_string(),
        ),
        ron::Error::NoSuchStructField {
            expected, found, ..
        } => (format!("unknown field `{found}`"), one_of(expected)),
        ron::Error::MissingStructField { field, outer } => (
            format!(
                "missing field `{field}`{}",
                outer
                    .as_ref()
                    .map(|o| format!(" in `{o}`"))
                    .unwrap_or_default()
            ),
            format!("expected `{field}: ...` here"),
        ),
        ron::Error::NoSuchEnumVariant {
            expected, found, ..
        } => (format!("unknown variant `{found}`"), one_of(expected)),
        // Our own messages (durations) read "what is wrong; expected ...".
        ron::Error::Message(m) => match m.split_once("; ") {
            Some((what, expected)) => (what.to_string(), expected.to_string()),
            None => (m.clone(), String::new()),
        },
        ron::Error::ExpectedString | ron::Error::ExpectedStringEnd => (
            text,
            "expected a string, e.g. a duration such as \"3ms\" or a node name".to_string(),
        ),
        _ => (text, String::new()),
    }
}

/// Read a scenario file from disk and parse it.
pub fn load(path: &std::path::Path, registry: &Registry) -> Result<Scenario, LoadError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| LoadError::Io(name.clone(), e))?;
    let src =
        String::from_utf8(bytes).map_err(|e| not_utf8(&name, e.as_bytes(), e.utf8_error()))?;
    parse(&name, &src, registry).map_err(LoadError::Scenario)
}

/// Where the first byte that is not UTF-8 sits: byte offset, line and column.
fn not_utf8(file: &str, bytes: &[u8], e: std::str::Utf8Error) -> LoadError {
    let offset = e.valid_up_to();
    // The prefix before the first bad byte is valid UTF-8 by definition.
    let before = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
    let (line, col) = locate::line_col(before, offset);
    LoadError::Encoding {
        file: file.to_string(),
        offset,
        line,
        col,
        byte: bytes.get(offset).copied().unwrap_or_default(),
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(String, std::io::Error),
    /// It was read but is not UTF-8 text.
    Encoding {
        /// The file name.
        file: String,
        /// Byte offset of the first byte that is not UTF-8.
        offset: usize,
        /// Its line (1-based).
        line: usize,
        /// Its column (1-based, in characters).
        col: usize,
        /// The byte.
        byte: u8,
    },
    /// It was read but is not a valid scenario.
    Scenario(ScenarioError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io(file, e) => write!(f, "error: cannot read {file}: {e}"),
            LoadError::Encoding {
                file,
                offset,
                line,
                col,
                byte,
            } => write!(
                f,
                "error: {file}:{line}:{col}: not UTF-8 text: byte 0x{byte:02x} at offset \
                 {offset} (line {line}, column {col}) is not valid UTF-8\n\
                 expected a UTF-8 text file; re-save it as UTF-8"
            ),
            LoadError::Scenario(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}
