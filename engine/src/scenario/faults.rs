//! The fault kinds beyond crash, slowdown, partition and link change: restart, pause, latency
//! spike, packet loss, isolation, majority/minority split, and faults drawn at random.
//!
//! Each is checked here and lowered to a kernel [`FaultAction`]. `Random` entries stay plans
//! ([`RandomPlan`]) until the run's seed is known: [`RandomPlan::expand`] draws their timeline
//! from a stream of their own (`!faults/<index>`, a name no node can have), so adding random
//! faults changes no other random draw, and the same seed gives the same timeline.
//!
//! ```text
//!   start ──Exp(mean_interval)──▶ fault 1 [at, at+duration) on a random member
//!         ──Exp(mean_interval)──▶ fault 2 ...        (until `stop`)
//! ```

use super::{FaultConfig, RandomFaultKind};
use crate::contract::validate::{NameTable, Path, Validator};
use crate::results::FaultWindow;
use crate::sim::dist::Dist;
use crate::sim::rng::SimRng;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Fault, FaultAction, NodeId};

/// Most faults one `Random` entry may draw (expected count); more is almost surely a typo in
/// `mean_interval`. Each fault costs two events and a few hundred bytes of results; time to
/// recover, shading and tables cost O(F log F), so this many stay cheap.
pub const MAX_RANDOM_FAULTS: f64 = 100_000.0;

/// A `Random` fault entry, validated, waiting for the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct RandomPlan {
    /// Position of the entry in `faults` (names its random stream).
    pub index: usize,
    /// What each fault does.
    pub kind: RandomFaultKind,
    /// The nodes it may hit, with their names.
    pub nodes: Vec<(NodeId, String)>,
    /// Mean time between fault starts.
    pub mean_interval: SimDuration,
    /// How long each fault lasts.
    pub duration: SimDuration,
    /// Faults start in [start, stop).
    pub start: SimTime,
    /// See `start`.
    pub stop: SimTime,
    /// Number of nodes in the run (partition sides and link sets are indexed by node id).
    pub n_nodes: usize,
}

impl RandomPlan {
    /// The faults this entry draws under `seed`, in time order, with their plot windows
    /// (`end_s` clipped to `run_end_s`).
    pub fn expand(&self, seed: u64, run_end_s: f64) -> (Vec<Fault>, Vec<FaultWindow>) {
        let mut rng = SimRng::derive(seed, &format!("!faults/{}", self.index));
        let gap = Dist::Exponential {
            mean: self.mean_interval,
        };
        let (mut faults, mut windows) = (Vec::new(), Vec::new());
        let mut t = self.start;
        loop {
            t = t.after(gap.sample(&mut rng));
            if t >= self.stop {
                break;
            }
            use crate::sim::rng::RandomSource as _;
            let (id, name) = &self.nodes[rng.below(self.nodes.len() as u64) as usize];
            let until = t.after(self.duration);
            faults.push(Fault {
                action: self.action(*id),
                at: t,
                until: Some(until),
            });
            windows.push(FaultWindow {
                label: format!("random {} {name}", kind_label(&self.kind)),
                start_s: t.as_secs_f64(),
                end_s: until.as_secs_f64().min(run_end_s),
                random: true,
            });
        }
        (faults, windows)
    }

    fn action(&self, id: NodeId) -> FaultAction {
        let only = |id: NodeId| {
            let mut set = vec![false; self.n_nodes];
            set[id.idx()] = true;
            set
        };
        match &self.kind {
            RandomFaultKind::Crash => FaultAction::Crash(vec![id]),
            RandomFaultKind::CrashKeepState => FaultAction::CrashKeepState(vec![id]),
            RandomFaultKind::Pause => FaultAction::Pause(vec![id]),
            RandomFaultKind::Slowdown { factor } => FaultAction::Slowdown(vec![id], *factor),
            RandomFaultKind::Isolate => FaultAction::Partition {
                side: isolate_sides(&[id], self.n_nodes),
                one_way: false,
            },
            RandomFaultKind::LatencySpike { latency } => FaultAction::NodeLinks {
                nodes: only(id),
                latency: Some(latency.clone()),
                loss: None,
            },
            RandomFaultKind::PacketLoss { loss } => FaultAction::NodeLinks {
                nodes: only(id),
                latency: None,
                loss: Some(*loss),
            },
        }
    }
}

fn kind_label(kind: &RandomFaultKind) -> String {
    match kind {
        RandomFaultKind::Crash => "crash".to_string(),
        RandomFaultKind::CrashKeepState => "crash (state kept)".to_string(),
        RandomFaultKind::Pause => "pause".to_string(),
        RandomFaultKind::Slowdown { factor } => format!("slowdown x{factor}"),
        RandomFaultKind::Isolate => "isolate".to_string(),
        RandomFaultKind::LatencySpike { latency } => {
            format!("latency spike {}", dist_label(latency))
        }
        RandomFaultKind::PacketLoss { loss } => format!("packet loss {loss}"),
    }
}

/// Partition sides that cut `nodes` (side 1) off from everyone else (side 2).
pub fn isolate_sides(nodes: &[NodeId], n_nodes: usize) -> Vec<u16> {
    let mut side = vec![2u16; n_nodes];
    for id in nodes {
        side[id.idx()] = 1;
    }
    side
}

/// What lowering one of the newer fault kinds gives.
pub enum Lowered {
    /// A fault on the timeline, with its plot label.
    Fault(FaultAction, String),
    /// A random entry, expanded once the seed is known.
    Random(RandomPlan),
}

/// Check one of the fault kinds of this module and lower it; `None` for the older kinds,
/// which `validate` handles itself.
pub fn lower(
    index: usize,
    f: &FaultConfig,
    names: &NameTable,
    duration: SimDuration,
    v: &mut Validator<'_>,
    at: &Path,
) -> Option<Lowered> {
    let n = names.nodes.len();
    let ids = |v: &mut Validator<'_>, field: &str, name: &str| -> Vec<NodeId> {
        v.resolve(&at.field(field), name).unwrap_or(&[]).to_vec()
    };
    let lowered = match f {
        FaultConfig::Crash { .. }
        | FaultConfig::Slowdown { .. }
        | FaultConfig::Partition { .. }
        | FaultConfig::LinkChange { .. } => return None,
        // Zones and message faults: see `scenario::network_faults`.
        FaultConfig::ZoneOutage { .. }
        | FaultConfig::RegionOutage { .. }
        | FaultConfig::RegionPartition { .. }
        | FaultConfig::DegradedLink { .. }
        | FaultConfig::Duplicate { .. }
        | FaultConfig::Reorder { .. } => return None,
        FaultConfig::Restart {
            node, keep_state, ..
        } => {
            let nodes = ids(v, "node", node);
            let (action, label) = crash(nodes, *keep_state, format!("restart {node}"));
            Lowered::Fault(action, label)
        }
        FaultConfig::Pause { node, .. } => Lowered::Fault(
            FaultAction::Pause(ids(v, "node", node)),
            format!("pause {node}"),
        ),
        FaultConfig::LatencySpike { node, latency, .. } => {
            v.check_dist(&at.field("latency"), latency);
            let (nodes, who) = link_nodes(node.as_deref(), n, v, at);
            let action = FaultAction::NodeLinks {
                nodes,
                latency: Some(latency.clone()),
                loss: None,
            };
            Lowered::Fault(
                action,
                format!("latency spike {} {who}", dist_label(latency)),
            )
        }
        FaultConfig::PacketLoss { node, loss, .. } => {
            check_probability(v, &at.field("loss"), *loss);
            let (nodes, who) = link_nodes(node.as_deref(), n, v, at);
            let action = FaultAction::NodeLinks {
                nodes,
                latency: None,
                loss: Some(*loss),
            };
            Lowered::Fault(action, format!("packet loss {loss} {who}"))
        }
        FaultConfig::Isolate { node, .. } => {
            let side = isolate_sides(&ids(v, "node", node), n);
            let action = FaultAction::Partition {
                side,
                one_way: false,
            };
            Lowered::Fault(action, format!("isolate {node}"))
        }
        FaultConfig::Split {
            nodes,
            minority,
            with_minority,
            ..
        } => split(nodes, *minority, with_minority, names, v, at),
        FaultConfig::Random {
            kind,
            node,
            mean_interval,
            duration: each,
            start,
            stop,
        } => {
            let plan = RandomPlan {
                index,
                kind: kind.clone(),
                nodes: Vec::new(),
                mean_interval: *mean_interval,
                duration: *each,
                start: SimTime(start.0),
                stop: SimTime(stop.unwrap_or(duration).0),
                n_nodes: n,
            };
            random(plan, node, names, v, at)
        }
    };
    Some(lowered)
}

/// A crash that keeps or loses the node's data, labelled.
pub fn crash(nodes: Vec<NodeId>, keep_state: bool, label: String) -> (FaultAction, String) {
    if keep_state {
        let label = format!("{label} (state kept)");
        (FaultAction::CrashKeepState(nodes), label)
    } else {
        (FaultAction::Crash(nodes), label)
    }
}

fn check_probability(v: &mut Validator<'_>, at: &Path, p: f64) {
    if !(0.0..=1.0).contains(&p) {
        v.error(
            at,
            format!("loss {p} is not a probability"),
            "expected a number from 0.0 to 1.0",
        );
    }
}

/// A latency distribution in a few characters for a fault's plot label: `1s`, `median 5ms`.
pub fn dist_label(d: &crate::sim::dist::Dist) -> String {
    use crate::sim::dist::Dist;
    match d {
        Dist::Constant(v) => v.to_string(),
        Dist::Exponential { mean } | Dist::Normal { mean, .. } => format!("mean {mean}"),
        Dist::Uniform { low, high } => format!("{low}-{high}"),
        Dist::LogNormal { median, .. } => format!("median {median}"),
        Dist::Pareto { scale, .. } => format!("from {scale}"),
        Dist::Empirical(values) => format!("{} values", values.len()),
    }
}

/// The node set of a latency spike or loss window (empty: every link) and its label.
fn link_nodes(
    node: Option<&str>,
    n: usize,
    v: &mut Validator<'_>,
    at: &Path,
) -> (Vec<bool>, String) {
    let Some(name) = node else {
        return (Vec::new(), "*".to_string());
    };
    let mut set = vec![false; n];
    for id in v.resolve(&at.field("node"), name).unwrap_or(&[]) {
        set[id.idx()] = true;
    }
    (set, name.to_string())
}

/// A majority/minority split of a cluster.
fn split(
    nodes: &[String],
    minority: Option<u32>,
    with_minority: &[String],
    names: &NameTable,
    v: &mut Validator<'_>,
    at: &Path,
) -> Lowered {
    let mut cluster: Vec<NodeId> = Vec::new();
    for (i, name) in nodes.iter().enumerate() {
        cluster.extend(v.resolve(&at.field("nodes").index(i), name).unwrap_or(&[]));
    }
    cluster.sort();
    cluster.dedup();
    let size = cluster.len();
    let k = minority.map_or(size.saturating_sub(1) / 2, |m| m as usize);
    if size > 0 && (k == 0 || 2 * k >= size) {
        v.error(
            &at.field("minority"),
            format!("a minority of {k} in a cluster of {size}"),
            format!(
                "expected a minority from 1 to {} (fewer than half of the cluster)",
                size.saturating_sub(1) / 2
            ),
        );
    }
    let cut: Vec<NodeId> = cluster[size.saturating_sub(k)..].to_vec();
    let mut side = isolate_sides(&cut, names.nodes.len());
    for (i, name) in with_minority.iter().enumerate() {
        for &id in v
            .resolve(&at.field("with_minority").index(i), name)
            .unwrap_or(&[])
        {
            if cluster.contains(&id) {
                v.error(
                    &at.field("with_minority").index(i),
                    format!("\"{name}\" is one of the split cluster's nodes"),
                    "expected nodes outside `nodes` (the split decides the cluster's sides)",
                );
            }
            side[id.idx()] = 1;
        }
    }
    let minority_names: Vec<&str> = cut
        .iter()
        .map(|id| names.nodes[id.idx()].0.as_str())
        .collect();
    let label = format!(
        "split {}: minority {}",
        nodes.join(","),
        minority_names.join(",")
    );
    let action = FaultAction::Partition {
        side,
        one_way: false,
    };
    Lowered::Fault(action, label)
}

fn random(
    mut plan: RandomPlan,
    node: &str,
    names: &NameTable,
    v: &mut Validator<'_>,
    at: &Path,
) -> Lowered {
    for &id in v.resolve(&at.field("node"), node).unwrap_or(&[]) {
        plan.nodes.push((id, names.nodes[id.idx()].0.clone()));
    }
    if plan.mean_interval == SimDuration::ZERO {
        v.error(
            &at.field("mean_interval"),
            "a zero mean interval between faults",
            "expected a positive duration such as \"20s\"",
        );
    } else {
        let span = plan.stop.0.saturating_sub(plan.start.0) as f64;
        let expected = span / plan.mean_interval.0 as f64;
        if expected > MAX_RANDOM_FAULTS {
            v.error(
                &at.field("mean_interval"),
                format!("about {expected:.0} faults expected"),
                format!(
                    "expected at most {MAX_RANDOM_FAULTS} faults per entry: a longer mean interval"
                ),
            );
        }
    }
    if plan.duration == SimDuration::ZERO {
        v.error(
            &at.field("duration"),
            "faults that last no time",
            "expected a positive duration such as \"2s\"",
        );
    }
    if plan.stop <= plan.start {
        v.error(
            &at.field("stop"),
            "`stop` is not after `start`",
            "expected `stop` later than `start`",
        );
    }
    match &plan.kind {
        RandomFaultKind::Slowdown { factor } => {
            v.check_positive(&at.field("kind").field("factor"), *factor, "a multiplier")
        }
        RandomFaultKind::LatencySpike { latency } => {
            v.check_dist(&at.field("kind").field("latency"), latency)
        }
        RandomFaultKind::PacketLoss { loss } => {
            check_probability(v, &at.field("kind").field("loss"), *loss)
        }
        RandomFaultKind::Crash
        | RandomFaultKind::CrashKeepState
        | RandomFaultKind::Pause
        | RandomFaultKind::Isolate => {}
    }
    Lowered::Random(plan)
}
