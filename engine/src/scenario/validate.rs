//! Validation: from the typed scenario to a [`Model`] with names resolved and bounds checked.
//!
//! Every problem is collected (not just the first) with the path of the value it is about;
//! [`super::locate`] turns the path back into a line and column for the message.

use super::{FaultConfig, NetworkConfig, Spec};
use crate::components::NodeConfig;
use crate::components::data::log_consumer::LogConsumerConfig;
use crate::contract::validate::{NameTable, Path, Problem, Validator};
use crate::registry::Registry;
use crate::results::FaultWindow;
use crate::sim::dist::Dist;
use crate::sim::network::LinkModel;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Fault, FaultAction, Limits, NodeId};
use std::collections::BTreeMap;

/// A validated scenario, ready to assemble: plain types, names resolved to ids.
#[derive(Clone, Debug)]
pub struct Model {
    /// The (variant's) scenario as written, defaults filled.
    pub spec: Spec,
    /// Node names and groups.
    pub names: NameTable,
    /// Per node id: the index of its declaration in `spec.nodes`.
    pub decl_of: Vec<usize>,
    /// Every link's default latency and loss.
    pub default_link: LinkModel,
    /// Per-link overrides.
    pub links: BTreeMap<(NodeId, NodeId), LinkModel>,
    /// Zones and regions, which node is in which, zone pairs' links and link capacities.
    pub zones: super::topology::Resolved,
    /// The fault schedule.
    pub faults: Vec<Fault>,
    /// The fault windows, for plot shading.
    pub fault_windows: Vec<FaultWindow>,
    /// `Random` fault entries, drawn once the run's seed is known ([`Model::fault_schedule`]).
    pub random_faults: Vec<super::faults::RandomPlan>,
    /// Run bounds.
    pub limits: Limits,
    /// Clients stop issuing requests here (the scenario's `duration`).
    pub arrivals_end: SimTime,
    /// The summary counts requests issued from here on (the scenario's `warmup`).
    pub measure_from: SimTime,
    /// Time-series window width.
    pub window: SimDuration,
    /// The run stops here: `duration` plus the longest client timeout, so every request ends,
    /// but at most [`MAX_DRAIN`] after `duration`.
    pub end: SimTime,
    /// The longest client timeout, which the drain after `duration` would last uncapped.
    pub longest_timeout: SimDuration,
}

/// A consumer's `topic` must name a `Topic` (it speaks the log's protocol), and agree with it
/// on the checker.
fn check_consumer_topic(spec: &Spec, c: &LogConsumerConfig, v: &mut Validator, at: &Path) {
    match spec.nodes.get(&c.topic) {
        Some(NodeConfig::Topic(t)) if t.checker != c.checker => v.error(
            &at.field("checker"),
            format!(
                "checker \"{}\" differs from its topic's \"{}\"",
                c.checker, t.checker
            ),
            "expected the same `checker` name as the topic",
        ),
        Some(NodeConfig::Topic(_)) | None => {}
        Some(_) => v.error(
            &at.field("topic"),
            format!("\"{}\" is not a Topic", c.topic),
            "expected the name of a `Topic` node",
        ),
    }
}

/// The drain after `duration` lasts at most this long: a timeout of a million hours stands
/// for "wait forever", and periodic timers would tick through all of it. Requests still in
/// flight then are reported as unfinished.
/// (The warning about them says "an hour".)
pub const MAX_DRAIN: SimDuration = SimDuration::from_secs(3600);

/// Check `spec` and resolve it into a [`Model`], or return every problem found.
pub fn validate(spec: &Spec, registry: &Registry) -> Result<Model, Vec<Problem>> {
    let mut names_problems = Vec::new();
    let (names, decl_of) = name_table(spec, &mut names_problems);
    let mut v = Validator::new(&names);
    for p in names_problems {
        v.add(p);
    }
    // Trace files are read here, so a bad row stops the run before it starts.
    let mut spec_owned = spec.clone();
    super::traces::load(&mut spec_owned, &mut v);
    let spec = &spec_owned;
    check_top(spec, &mut v);
    let nodes = Path::root().field("nodes");
    for (name, cfg) in &spec.nodes {
        let at = nodes.key(name);
        match cfg {
            NodeConfig::Client(c) => c.validate(&mut v, &at),
            NodeConfig::LoadBalancer(c) => c.validate(&mut v, &at),
            NodeConfig::Server(c) => c.validate(&mut v, &at),
            NodeConfig::CircuitBreaker(c) => c.validate(&mut v, &at),
            NodeConfig::RateLimiter(c) => c.validate(&mut v, &at),
            NodeConfig::Bulkhead(c) => c.validate(&mut v, &at),
            NodeConfig::KvClient(c) => c.validate(&mut v, &at),
            NodeConfig::ReplicatedStore(c) => c.validate(&mut v, &at),
            NodeConfig::ReadReplicas(c) => c.validate(&mut v, &at),
            NodeConfig::Plugin(p) => registry.validate_plugin(p, &mut v, &at),
            NodeConfig::TxnClient(c) => c.validate(&mut v, &at),
            NodeConfig::TxnCoordinator(c) => c.validate(&mut v, &at),
            NodeConfig::TxnParticipant(c) => c.validate(&mut v, &at),
            NodeConfig::Cache(c) => c.validate(&mut v, &at),
            NodeConfig::Queue(c) => c.validate(&mut v, &at),
            NodeConfig::ShardRouter(c) => c.validate(&mut v, &at),
            NodeConfig::Topic(c) => c.validate(&mut v, &at),
            NodeConfig::LogConsumer(c) => {
                c.validate(&mut v, &at);
                check_consumer_topic(spec, c, &mut v, &at);
            }
            NodeConfig::Autoscaler(c) => c.validate(&mut v, &at),
            NodeConfig::Deploy(c) => c.validate(&mut v, &at),
            NodeConfig::Gslb(c) => c.validate(&mut v, &at),
        }
    }
    super::wiring::check(spec, &names, &decl_of, &mut v);
    let (default_link, links) = network(&spec.network, &mut v);
    let zones = super::topology::resolve(spec, &names, &mut v);
    for (name, cfg) in &spec.nodes {
        if let NodeConfig::Gslb(c) = cfg {
            let resolve = |n: &str| names.resolve(n).to_vec();
            c.check_regions(&zones.topology, resolve, &mut v, &nodes.key(name));
        }
        if let NodeConfig::Client(c) = cfg {
            let gslb = matches!(spec.nodes.get(&c.target), Some(NodeConfig::Gslb(_)));
            if !gslb && !c.dns.is_default() {
                v.error(
                    &nodes.key(name).field("dns"),
                    format!("\"{}\" is not a Gslb, so nothing is resolved", c.target),
                    "expected `dns` only on a client whose `target` is a Gslb",
                );
            }
        }
    }
    let (faults, fault_windows, random_faults) = faults(spec, &names, &zones.topology, &mut v);
    let problems = v.into_problems();
    if !problems.is_empty() {
        return Err(problems);
    }
    let arrivals_end = SimTime(spec.duration.0);
    let drain = spec
        .nodes
        .values()
        .filter_map(NodeConfig::client_timeout)
        .max()
        .unwrap_or_default();
    let window = widen_window(spec.window, spec.duration);
    let (limits, measure_from) = (spec.limits.to_limits(), SimTime(spec.warmup.0));
    Ok(Model {
        spec: spec_owned,
        names,
        decl_of,
        default_link,
        links,
        zones,
        faults,
        fault_windows,
        random_faults,
        limits,
        arrivals_end,
        measure_from,
        window,
        end: arrivals_end.after(drain.min(MAX_DRAIN)),
        longest_timeout: drain,
    })
}

impl Model {
    /// The whole fault schedule under `seed`: the timeline's faults, then every `Random`
    /// entry's draws, with their plot windows in the same order.
    pub fn fault_schedule(&self, seed: u64) -> (Vec<Fault>, Vec<FaultWindow>) {
        let (mut faults, mut windows) = (self.faults.clone(), self.fault_windows.clone());
        let end_s = self.spec.duration.as_secs_f64();
        for plan in &self.random_faults {
            let (f, w) = plan.expand(seed, end_s);
            faults.extend(f);
            windows.extend(w);
        }
        (faults, windows)
    }
}

/// Keep the number of windows bounded: a long run gets wider windows.
fn widen_window(window: SimDuration, duration: SimDuration) -> SimDuration {
    let min = duration.0.div_ceil(crate::contract::metrics::MAX_WINDOWS);
    if window.0 >= min {
        window
    } else {
        SimDuration(min.div_ceil(1_000_000) * 1_000_000) // Whole milliseconds read well.
    }
}

/// Most nodes one scenario may declare, replicas counted: each costs its name, its state and
/// its random streams, and 100,000 servers already take hundreds of MiB.
pub const MAX_NODES: u64 = 100_000;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn name_table(spec: &Spec, problems: &mut Vec<Problem>) -> (NameTable, Vec<usize>) {
    let mut t = NameTable {
        classes: spec.classes.clone(),
        ..NameTable::default()
    };
    let mut decl_of = Vec::new();
    let nodes = Path::root().field("nodes");
    for (decl, (group, cfg)) in spec.nodes.iter().enumerate() {
        if !valid_name(group) {
            problems.push(Problem {
                path: nodes.key(group),
                message: format!("\"{group}\" is not a valid node name"),
                expected: "expected ASCII letters, digits, '-' and '_' only".to_string(),
            });
        }
        let replicas = cfg.replicas();
        let n = replicas.map_or(1, u64::from);
        if t.nodes.len() as u64 + n > MAX_NODES {
            // Not expanded: the name table alone would take gigabytes.
            problems.push(Problem {
                path: nodes.key(group).field("replicas"),
                message: format!("{n} replicas make more than {MAX_NODES} nodes in the scenario"),
                expected: format!("expected at most {MAX_NODES} nodes, replicas counted"),
            });
            t.by_name.insert(group.clone(), Vec::new());
            continue;
        }
        // A pool always expands (`app` → `app-0 ..`), even with one replica, so fault
        // targets and report rows keep their names when a variant changes `replicas`.
        let members: Vec<String> = match replicas {
            Some(n) => (0..n).map(|i| format!("{group}-{i}")).collect(),
            None => vec![group.clone()],
        };
        let mut ids = Vec::new();
        for m in members {
            let id = NodeId(t.nodes.len() as u32);
            if t.by_name.insert(m.clone(), vec![id]).is_some() {
                problems.push(Problem {
                    path: nodes.key(group),
                    message: format!("node name \"{m}\" is declared twice"),
                    expected: "expected unique node names (a group `app` with replicas declares app-0, app-1, ...)".to_string(),
                });
            }
            t.nodes.push((m, group.clone()));
            decl_of.push(decl);
            ids.push(id);
        }
        let clash = t
            .by_name
            .get(group)
            .is_some_and(|existing| *existing != ids);
        if clash {
            problems.push(Problem {
                path: nodes.key(group),
                message: format!("\"{group}\" is already the name of a node"),
                expected: "expected unique node names (a group `app` with replicas declares app-0, app-1, ...)".to_string(),
            });
        }
        t.by_name.insert(group.clone(), ids);
    }
    (t, decl_of)
}

fn check_top(spec: &Spec, v: &mut Validator<'_>) {
    let root = Path::root();
    if spec.duration == SimDuration::ZERO {
        v.error(
            &root.field("duration"),
            "the run has no duration",
            "expected a positive duration such as \"60s\"",
        );
    }
    if spec.warmup >= spec.duration && spec.duration > SimDuration::ZERO {
        v.error(
            &root.field("warmup"),
            format!(
                "warm-up {} is not shorter than the duration {}",
                spec.warmup, spec.duration
            ),
            "expected a warm-up shorter than `duration`",
        );
    }
    if spec.window == SimDuration::ZERO {
        v.error(
            &root.field("window"),
            "zero-width time windows",
            "expected a positive duration such as \"1s\"",
        );
    }
    if spec.nodes.is_empty() {
        v.error(
            &root.field("nodes"),
            "the scenario declares no nodes",
            "expected at least a client and a server",
        );
    }
    check_classes(spec, v);
    let l = &spec.limits;
    if l.max_events == 0
        || l.max_pending_events == 0
        || l.max_events_per_instant == 0
        || l.max_memory.0 == 0
    {
        v.error(
            &root.field("limits"),
            "a zero limit stops every run",
            "expected positive limits",
        );
    }
}

/// Most request classes a scenario may declare (each keeps its own metrics and queue).
pub const MAX_CLASSES: usize = 16;

/// The request classes: valid, distinct names, not too many.
fn check_classes(spec: &Spec, v: &mut Validator<'_>) {
    let at = Path::root().field("classes");
    if spec.classes.len() > MAX_CLASSES {
        v.error(
            &at,
            format!("{} classes", spec.classes.len()),
            format!("expected at most {MAX_CLASSES} request classes"),
        );
    }
    for (i, name) in spec.classes.iter().enumerate() {
        if !valid_name(name) {
            v.error(
                &at.index(i),
                format!("\"{name}\" is not a valid class name"),
                "expected ASCII letters, digits, '-' and '_' only",
            );
        }
        if spec.classes[..i].contains(name) {
            v.error(
                &at.index(i),
                format!("class \"{name}\" is declared twice"),
                "expected each class once, in priority order",
            );
        }
    }
}

fn network(
    cfg: &NetworkConfig,
    v: &mut Validator<'_>,
) -> (LinkModel, BTreeMap<(NodeId, NodeId), LinkModel>) {
    let at = Path::root().field("network");
    v.check_dist(&at.field("latency"), &cfg.latency);
    check_loss(v, &at.field("loss"), cfg.loss);
    let default = LinkModel {
        latency: cfg.latency.clone(),
        loss: cfg.loss,
    };
    let mut links = BTreeMap::new();
    for (i, l) in cfg.links.iter().enumerate() {
        let at = at.field("links").index(i);
        let from = v.resolve(&at.field("from"), &l.from).unwrap_or(&[]);
        let to = v.resolve(&at.field("to"), &l.to).unwrap_or(&[]);
        if let Some(d) = &l.latency {
            v.check_dist(&at.field("latency"), d);
        }
        if let Some(loss) = l.loss {
            check_loss(v, &at.field("loss"), loss);
        }
        let model = LinkModel {
            latency: l.latency.clone().unwrap_or_else(|| cfg.latency.clone()),
            loss: l.loss.unwrap_or(cfg.loss),
        };
        for &a in from {
            for &b in to {
                links.insert((a, b), model.clone());
                if l.both_ways {
                    links.insert((b, a), model.clone());
                }
            }
        }
    }
    (default, links)
}

/// A loss must be a probability.
pub fn check_loss(v: &mut Validator<'_>, at: &Path, loss: f64) {
    if !(0.0..=1.0).contains(&loss) {
        v.error(
            at,
            format!("loss {loss} is not a probability"),
            "expected a number from 0.0 to 1.0",
        );
    }
}

type Schedule = (Vec<Fault>, Vec<FaultWindow>, Vec<super::faults::RandomPlan>);

fn faults(
    spec: &Spec,
    names: &NameTable,
    topology: &crate::contract::topology::Topology,
    v: &mut Validator<'_>,
) -> Schedule {
    use super::faults::{Lowered, lower};
    let mut out = Vec::new();
    let mut windows = Vec::new();
    let mut random = Vec::new();
    let end_s = spec.duration.as_secs_f64();
    for (i, f) in spec.faults.iter().enumerate() {
        let at_path = Path::root().field("faults").index(i);
        let (at, until) = f.timing();
        if let Some(u) = until
            && u <= at
        {
            v.error(
                &at_path.field("until"),
                format!("`until` ({u}) is not after `at` ({at})"),
                "expected `until` later than `at`",
            );
        }
        let network_fault = super::network_faults::lower(f, names, topology, v, &at_path);
        let (action, label) = match network_fault {
            Some(lowered) => lowered,
            None => match lower(i, f, names, spec.duration, v, &at_path) {
                Some(Lowered::Random(plan)) => {
                    random.push(plan);
                    continue;
                }
                Some(Lowered::Fault(action, label)) => (action, label),
                None => older_fault(f, names, v, &at_path),
            },
        };
        // A restart's end is its downtime after `at` (possibly the same instant).
        let until = match f {
            FaultConfig::Restart { at, downtime, .. } => Some(SimDuration(at.0 + downtime.0)),
            _ => until,
        };
        out.push(Fault {
            action,
            at: SimTime(at.0),
            until: until.map(|u| SimTime(u.0)),
        });
        let end = until.map_or(end_s, |u| u.as_secs_f64().min(end_s));
        windows.push(FaultWindow {
            label,
            start_s: at.as_secs_f64(),
            end_s: end,
            random: false,
        });
    }
    (out, windows, random)
}

/// Crash, slowdown, partition and link change: the fault kinds from before `faults.rs`.
fn older_fault(
    f: &FaultConfig,
    names: &NameTable,
    v: &mut Validator<'_>,
    at_path: &Path,
) -> (FaultAction, String) {
    match f {
        FaultConfig::Crash {
            node, keep_state, ..
        } => {
            let ids = v
                .resolve(&at_path.field("node"), node)
                .unwrap_or(&[])
                .to_vec();
            super::faults::crash(ids, *keep_state, format!("crash {node}"))
        }
        FaultConfig::Slowdown { node, factor, .. } => {
            v.check_positive(
                &at_path.field("factor"),
                *factor,
                "a multiplier of service time",
            );
            let ids = v
                .resolve(&at_path.field("node"), node)
                .unwrap_or(&[])
                .to_vec();
            (
                FaultAction::Slowdown(ids, *factor),
                format!("slowdown {node} x{factor}"),
            )
        }
        FaultConfig::Partition {
            groups, one_way, ..
        } => {
            let side = partition_sides(groups, names, v, &at_path.field("groups"));
            let sep = if *one_way { " -> " } else { " | " };
            let label = groups
                .iter()
                .map(|g| g.join(","))
                .collect::<Vec<_>>()
                .join(sep);
            let action = FaultAction::Partition {
                side,
                one_way: *one_way,
            };
            (action, format!("partition {label}"))
        }
        FaultConfig::LinkChange {
            from,
            to,
            latency,
            loss,
            ..
        } => link_change(from, to, latency, *loss, names, v, at_path),
        FaultConfig::Restart { .. }
        | FaultConfig::Pause { .. }
        | FaultConfig::LatencySpike { .. }
        | FaultConfig::PacketLoss { .. }
        | FaultConfig::Isolate { .. }
        | FaultConfig::Split { .. }
        | FaultConfig::Random { .. } => unreachable!("lowered in scenario::faults"),
        FaultConfig::ZoneOutage { .. }
        | FaultConfig::RegionOutage { .. }
        | FaultConfig::RegionPartition { .. }
        | FaultConfig::DegradedLink { .. }
        | FaultConfig::Duplicate { .. }
        | FaultConfig::Reorder { .. } => unreachable!("lowered in scenario::network_faults"),
    }
}

/// A link change fault: node sets resolved, parameters checked, and a label for the plots.
fn link_change(
    from: &[String],
    to: &[String],
    latency: &Option<Dist>,
    loss: Option<f64>,
    names: &NameTable,
    v: &mut Validator<'_>,
    at: &Path,
) -> (FaultAction, String) {
    let mut set = |list: &[String], field: &str| -> Vec<bool> {
        if list.is_empty() {
            return Vec::new(); // Every node.
        }
        let mut member = vec![false; names.nodes.len()];
        for (i, name) in list.iter().enumerate() {
            for &id in v.resolve(&at.field(field).index(i), name).unwrap_or(&[]) {
                member[id.idx()] = true;
            }
        }
        member
    };
    let (from_set, to_set) = (set(from, "from"), set(to, "to"));
    if let Some(d) = latency {
        v.check_dist(&at.field("latency"), d);
    }
    if let Some(p) = loss {
        check_loss(v, &at.field("loss"), p);
    }
    if latency.is_none() && loss.is_none() {
        v.error(
            at,
            "a link change that changes nothing",
            "expected `latency: ...` and/or `loss: ...`",
        );
    }
    let who = |list: &[String]| {
        if list.is_empty() {
            "*".to_string()
        } else {
            list.join(",")
        }
    };
    let what = match (latency, loss) {
        (Some(d), Some(p)) => format!("latency {} and loss {p}", super::faults::dist_label(d)),
        (Some(d), None) => format!("latency {}", super::faults::dist_label(d)),
        (None, Some(p)) => format!("loss {p}"),
        (None, None) => "nothing".to_string(),
    };
    let label = format!("{what} {} -> {}", who(from), who(to));
    let action = FaultAction::LinkChange {
        from: from_set,
        to: to_set,
        latency: latency.clone(),
        loss,
    };
    (action, label)
}

/// Side numbers for a partition: group i is side i+1. With a single group, that group is cut
/// off from every other node.
fn partition_sides(
    groups: &[Vec<String>],
    names: &NameTable,
    v: &mut Validator<'_>,
    at: &Path,
) -> Vec<u16> {
    let n = names.nodes.len();
    let mut side = vec![0u16; n];
    if groups.is_empty() {
        v.error(
            at,
            "a partition without groups",
            "expected a list of groups, e.g. [[\"lb\"], [\"app-1\"]]",
        );
    }
    for (g, group) in groups.iter().enumerate() {
        if group.is_empty() {
            v.error(
                &at.index(g),
                "an empty group",
                "expected at least one node name in each group",
            );
        }
        for (k, name) in group.iter().enumerate() {
            for &id in v.resolve(&at.index(g).index(k), name).unwrap_or(&[]) {
                if side[id.idx()] != 0 && side[id.idx()] != g as u16 + 1 {
                    v.error(
                        &at.index(g).index(k),
                        format!("\"{name}\" is in two groups"),
                        "expected each node in one group at most",
                    );
                }
                side[id.idx()] = g as u16 + 1;
            }
        }
    }
    if groups.len() == 1 {
        side.iter_mut().filter(|s| **s == 0).for_each(|s| *s = 2);
    }
    side
}
