//! Availability of the call graph: the probability that a request succeeds, from which nodes
//! are up, which links are cut or lossy, and which requests queues turn away.
//!
//! ```text
//!  series    a server's stages, one after another:           Π stage
//!  k of n    a stage waiting for k of its n calls:           P(at least k succeed)
//!  parallel  a pool picked among the reachable members:      Σ_m P(m reachable) q_m E[1/(1+K_−m)]
//!  quorum    a store replica needing R (W) replicas:         P(at least R − 1 others reachable)
//!  link      a call needs its request and its answer:        (1 − loss)²
//! ```
//! Branches are taken as independent (the usual reliability-block assumption). Over a run,
//! the fault timeline cuts the measured period into segments: in each, scheduled faults are
//! certain and random ones are probabilities (Poisson starts, so each node's share of a
//! random entry's faults is an independent Poisson stream: it is down with probability
//! 1 − e^(−rate × duration)). The run's availability is the segments' average.

use super::graph::{Graph, NodeModel, Pick, Pool, StoreRule};
use super::queueing::at_least;
use crate::scenario::validate::Model;
use crate::sim::FaultAction;
use crate::sim::time::SimTime;

/// Whether nodes are up and links work at one moment of a run.
#[derive(Clone, Debug)]
pub struct Moment {
    /// Probability that each node is up.
    pub up: Vec<f64>,
    /// Partitions in force: (side of each node, one way).
    pub cuts: Vec<(Vec<u16>, bool)>,
    /// Loss changes in force, oldest first: (senders, receivers, loss); empty sets mean all.
    pub losses: Vec<(Vec<bool>, Vec<bool>, f64)>,
}

impl Moment {
    /// Everything up, nothing cut.
    pub fn calm(n: usize) -> Moment {
        Moment {
            up: vec![1.0; n],
            cuts: Vec::new(),
            losses: Vec::new(),
        }
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        let blocks = |side: &[u16], one_way: bool, x: usize, y: usize| {
            let (p, q) = (side[x], side[y]);
            p != 0 && q != 0 && p != q && (!one_way || p == 1)
        };
        !self
            .cuts
            .iter()
            .any(|(side, one_way)| blocks(side, *one_way, a, b) || blocks(side, *one_way, b, a))
    }
}

/// What does not change within a run: the graph, base link loss, queue admission, cache hits.
pub struct Fixed<'a> {
    /// The nodes.
    pub graph: &'a Graph,
    /// The model, for link loss.
    pub model: &'a Model,
    /// Per node: probability that its queue admits a request.
    pub admit: &'a [f64],
    /// Per node: a cache's read hit ratio.
    pub hit: &'a [Option<f64>],
}

impl Fixed<'_> {
    fn loss(&self, m: &Moment, a: usize, b: usize) -> f64 {
        let key = (crate::sim::NodeId(a as u32), crate::sim::NodeId(b as u32));
        let mut loss = self
            .model
            .links
            .get(&key)
            .map_or(self.model.default_link.loss, |l| l.loss);
        let member = |set: &[bool], i: usize| set.is_empty() || set[i];
        for (from, to, p) in &m.losses {
            if member(from, a) && member(to, b) {
                loss = *p;
            }
        }
        loss
    }
}

/// Per node and op (read, write): the probability that a request that reached it (it being
/// up) succeeds; `None` where a node on the way has no model. `order` lists callees before
/// callers.
pub fn node_success(f: &Fixed<'_>, m: &Moment, order: &[usize]) -> Vec<[Option<f64>; 2]> {
    let mut ok: Vec<[Option<f64>; 2]> = vec![[None; 2]; f.graph.nodes.len()];
    for &n in order {
        ok[n] = [0, 1].map(|op| one_node(f, m, &ok, n, op));
    }
    ok
}

fn one_node(
    f: &Fixed<'_>,
    m: &Moment,
    ok: &[[Option<f64>; 2]],
    n: usize,
    op: usize,
) -> Option<f64> {
    let admit = f.admit[n];
    match &f.graph.nodes[n] {
        NodeModel::Source(_) => Some(1.0),
        NodeModel::Opaque(_) => None,
        NodeModel::Relay(r) => {
            let mut total = 0.0;
            for (p, pool) in &r.route.pools {
                total += p * call(f, m, ok, n, pool, op)?;
            }
            Some(admit * total)
        }
        NodeModel::Station(s) => {
            let mut total = admit;
            for st in &s.stages {
                let each: Option<Vec<f64>> =
                    st.calls.iter().map(|p| call(f, m, ok, n, p, op)).collect();
                total *= at_least(&each?, st.need);
            }
            Some(total)
        }
        NodeModel::Cache(c) => {
            let through = call(f, m, ok, n, &c.backend, op)?;
            if op == 0 {
                let h = f.hit[n]?;
                Some(h + (1.0 - h) * through)
            } else if super::graph::writes_through(c.cfg.strategy) {
                Some(through)
            } else {
                Some(1.0)
            }
        }
        NodeModel::Store(s) => Some(store(m, n, &s.group, &s.rule, op)),
    }
}

/// A store replica coordinating an operation: enough replicas reachable from it.
fn store(m: &Moment, n: usize, group: &[usize], rule: &StoreRule, op: usize) -> f64 {
    let others: Vec<f64> = group
        .iter()
        .filter(|&&j| j != n)
        .map(|&j| if m.connected(n, j) { m.up[j] } else { 0.0 })
        .collect();
    let majority = group.len() / 2 + 1;
    let need = match *rule {
        StoreRule::Quorum { sloppy: true, .. } => 1,
        StoreRule::Quorum { read, write, .. } => {
            if op == 0 {
                read
            } else {
                write
            }
        }
        StoreRule::Leader {
            reads_any: true, ..
        } if op == 0 => 1,
        StoreRule::Leader { write, .. } => {
            if op == 0 {
                majority
            } else {
                majority.max(write)
            }
        }
    };
    at_least(&others, need.saturating_sub(1))
}

/// The probability that a call from `caller` to `pool` succeeds.
pub fn call(
    f: &Fixed<'_>,
    m: &Moment,
    ok: &[[Option<f64>; 2]],
    caller: usize,
    pool: &Pool,
    op: usize,
) -> Option<f64> {
    let mut reach = Vec::with_capacity(pool.members.len());
    let mut good = Vec::with_capacity(pool.members.len());
    for &(j, _) in &pool.members {
        let r = if m.connected(caller, j) { m.up[j] } else { 0.0 };
        let link = (1.0 - f.loss(m, caller, j)) * (1.0 - f.loss(m, j, caller));
        reach.push(r);
        good.push(ok[j][op]? * link);
    }
    Some(match pool.pick {
        Pick::Fixed => pool
            .members
            .iter()
            .zip(reach.iter().zip(&good))
            .map(|((_, w), (r, g))| w * r * g)
            .sum(),
        Pick::Reachable => among_reachable(&pool.members, &reach, &good),
    })
}

/// A member picked among the reachable ones, by weight: Σ_m r_m g_m E[w_m / Σ_reachable w].
/// Exact for equal weights (and for the symmetric case in closed form); for other weights,
/// each member's share among the reachable is taken at its expected value.
fn among_reachable(members: &[(usize, f64)], reach: &[f64], good: &[f64]) -> f64 {
    let n = members.len();
    let equal = members
        .iter()
        .all(|(_, w)| (w - members[0].1).abs() < 1e-12);
    if !equal {
        let expected: f64 = members.iter().zip(reach).map(|((_, w), r)| w * r).sum();
        if expected <= 0.0 {
            return 0.0;
        }
        return members
            .iter()
            .zip(reach.iter().zip(good))
            .map(|((_, w), (r, g))| r * g * w / expected)
            .sum::<f64>()
            .min(1.0);
    }
    let symmetric = reach.iter().all(|r| (r - reach[0]).abs() < 1e-15);
    (0..n)
        .map(|i| {
            let share = if symmetric {
                inverse_count_symmetric(n, reach[0])
            } else {
                inverse_count(reach, i)
            };
            reach[i] * good[i] * share
        })
        .sum()
}

/// E[1 / (1 + K)] for K ~ Binomial(n − 1, r): (1 − (1 − r)^n) / (n r).
fn inverse_count_symmetric(n: usize, r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else {
        (1.0 - libm::pow(1.0 - r, n as f64)) / (n as f64 * r)
    }
}

/// E[1 / (1 + K)] where K counts the other members reachable (a Poisson-binomial).
fn inverse_count(reach: &[f64], me: usize) -> f64 {
    let mut count = vec![0.0; reach.len()];
    count[0] = 1.0;
    let mut seen = 0;
    for (j, &r) in reach.iter().enumerate() {
        if j == me {
            continue;
        }
        seen += 1;
        for d in (0..=seen).rev() {
            let stay = count[d] * (1.0 - r);
            let came = if d > 0 { count[d - 1] * r } else { 0.0 };
            count[d] = stay + came;
        }
    }
    count
        .iter()
        .enumerate()
        .map(|(k, p)| p / (k as f64 + 1.0))
        .sum()
}

/// The measured period cut at every fault boundary: (start, end, moment) with each node's
/// chance to be up (scheduled faults certain, random ones as probabilities).
pub fn segments(model: &Model) -> Vec<(f64, f64, Moment)> {
    let (from, to) = (
        model.measure_from.as_secs_f64(),
        model.arrivals_end.as_secs_f64(),
    );
    let mut cuts = vec![from, to];
    for f in &model.faults {
        cuts.push(f.at.as_secs_f64());
        cuts.extend(f.until.map(SimTime::as_secs_f64));
    }
    for p in &model.random_faults {
        cuts.push(p.start.as_secs_f64());
        cuts.push(p.stop.as_secs_f64() + p.duration.as_secs_f64());
    }
    cuts.retain(|t| (from..=to).contains(t));
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    cuts.windows(2)
        .filter(|w| w[1] > w[0])
        .map(|w| (w[0], w[1], moment_at(model, (w[0] + w[1]) / 2.0)))
        .collect()
}

/// Which scheduled faults are in force at `t` (seconds), and each node's chance of being hit
/// by a random one.
fn moment_at(model: &Model, t: f64) -> Moment {
    let n = model.names.nodes.len();
    let mut m = Moment::calm(n);
    for f in &model.faults {
        let active = f.at.as_secs_f64() <= t && f.until.is_none_or(|u| u.as_secs_f64() > t);
        if active {
            apply(&mut m, &f.action);
        }
    }
    for p in &model.random_faults {
        let (start, stop) = (p.start.as_secs_f64(), p.stop.as_secs_f64());
        let d = p.duration.as_secs_f64();
        if t < start || t >= stop + d {
            continue;
        }
        // Faults started in the last `d` (and after `start`, before `stop`) are in force.
        let exposure = (t.min(stop) - (t - d).max(start)).max(0.0);
        let per_node = exposure / (p.mean_interval.as_secs_f64() * p.nodes.len() as f64);
        let down = if takes_down(&p.kind) {
            -libm::expm1(-per_node)
        } else {
            0.0
        };
        for (id, _) in &p.nodes {
            m.up[id.idx()] *= 1.0 - down;
        }
    }
    m
}

/// Random fault kinds that make a node unusable while they last (crash, isolation).
fn takes_down(kind: &crate::scenario::RandomFaultKind) -> bool {
    use crate::scenario::RandomFaultKind as K;
    match kind {
        K::Crash | K::CrashKeepState | K::Isolate => true,
        K::Pause | K::Slowdown { .. } | K::LatencySpike { .. } | K::PacketLoss { .. } => false,
    }
}

fn apply(m: &mut Moment, action: &FaultAction) {
    match action {
        FaultAction::Crash(ids) | FaultAction::CrashKeepState(ids) => {
            for id in ids {
                m.up[id.idx()] = 0.0;
            }
        }
        FaultAction::Partition { side, one_way } => m.cuts.push((side.clone(), *one_way)),
        FaultAction::LinkChange { from, to, loss, .. } => {
            if let Some(p) = loss {
                m.losses.push((from.clone(), to.clone(), *p));
            }
        }
        FaultAction::NodeLinks { nodes, loss, .. } => {
            if let Some(p) = loss {
                m.losses.push((nodes.clone(), Vec::new(), *p));
                if !nodes.is_empty() {
                    m.losses.push((Vec::new(), nodes.clone(), *p));
                }
            }
        }
        FaultAction::LinksBetween { a, b, loss, .. } => {
            if let Some(p) = loss {
                m.losses.push((a.clone(), b.clone(), *p));
                m.losses.push((b.clone(), a.clone(), *p));
            }
        }
        // Requests wait through a pause (or are slowed, held back or served twice): they are
        // late, not failed.
        FaultAction::Pause(_)
        | FaultAction::Slowdown(..)
        | FaultAction::Duplicate { .. }
        | FaultAction::Reorder { .. } => {}
    }
}

/// Whether any fault of the run can fail requests (not only delay them), and a phrase for the
/// kinds that only delay.
pub fn fault_kinds(model: &Model) -> (bool, bool) {
    let mut fails = false;
    let mut delays = false;
    for f in &model.faults {
        match &f.action {
            FaultAction::Pause(_)
            | FaultAction::Slowdown(..)
            | FaultAction::Duplicate { .. }
            | FaultAction::Reorder { .. } => delays = true,
            FaultAction::LinkChange { loss: None, .. }
            | FaultAction::NodeLinks { loss: None, .. }
            | FaultAction::LinksBetween { loss: None, .. } => delays = true,
            _ => fails = true,
        }
    }
    for p in &model.random_faults {
        if takes_down(&p.kind)
            || matches!(p.kind, crate::scenario::RandomFaultKind::PacketLoss { .. })
        {
            fails = true;
        } else {
            delays = true;
        }
    }
    (fails, delays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picking_among_reachable_members() {
        // Two members each up with 0.9, answering always: the pool fails only if both are down.
        let members = [(0, 0.5), (1, 0.5)];
        let got = among_reachable(&members, &[0.9, 0.9], &[1.0, 1.0]);
        assert!((got - (1.0 - 0.01)).abs() < 1e-12, "{got}");
        // Unequal reachability, exact by the Poisson-binomial.
        let got = among_reachable(&members, &[1.0, 0.5], &[1.0, 0.0]);
        // Member 1 is reachable half the time; then the pick is even, and it always fails.
        assert!((got - 0.75).abs() < 1e-12, "{got}");
        assert!((inverse_count_symmetric(3, 1.0) - 1.0 / 3.0).abs() < 1e-12);
    }
}
