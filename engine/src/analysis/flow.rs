//! Flow analysis: the arrival rate at every node, from the sources' rates through balancer
//! splits, shard and backend shares by key mass, cache misses, fan-out and retries.
//!
//! ```text
//!  repeat until nothing moves (retries and losses feed back on each other):
//!    rates   callers before callees: each node passes what it admits on to its callees
//!    nodes   callees before callers: loss, response time (stations.rs)
//!    retries a source's attempts per request = Σ_{j<m} (1 − success)^j, within its budget
//!  closed loops: the throughput X that solves N = X (Z + R(X)), by bisection
//! ```

use super::availability::{Fixed, Moment, node_success};
use super::graph::{Graph, NodeModel, Pool, Source};
use super::keys;
use super::keys::KeyDist;
use super::stations::{self, Evaluated};
use crate::scenario::validate::Model;
use std::collections::BTreeMap;

/// Which keys reach a node.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyFlow {
    /// No request yet.
    Unset,
    /// One distribution, whole.
    Known(KeyDist),
    /// Several distributions, or a subset of the keys (after a split by key).
    Unknown,
}

impl KeyFlow {
    fn merge(&mut self, other: &KeyFlow) {
        *self = match (&*self, other) {
            (KeyFlow::Unset, o) => o.clone(),
            (s, KeyFlow::Unset) => s.clone(),
            (KeyFlow::Known(a), KeyFlow::Known(b)) if a == b => KeyFlow::Known(a.clone()),
            _ => KeyFlow::Unknown,
        };
    }
}

/// The arrivals at every node.
#[derive(Clone, Debug)]
pub struct Flow {
    /// Offered arrivals per node: [reads, writes] per second.
    pub rate: Vec<[f64; 2]>,
    /// Whether a node's arrivals are a Poisson process.
    pub poisson: Vec<bool>,
    /// Whether a node's arrival rate is exact (not a symmetry argument or a guess).
    pub exact_rate: Vec<bool>,
    /// Why a node's arrivals are approximate, from the routing above it.
    pub notes: Vec<Vec<String>>,
    /// Which keys reach a node.
    pub keys: Vec<KeyFlow>,
    /// Why a node's arrival rate is unknown (a cache above it has no hit-ratio formula).
    pub unknown: Vec<Option<String>>,
    /// Calls per second on each (caller, callee) link.
    pub edges: BTreeMap<(usize, usize), f64>,
}

/// The solved model of one variant.
pub struct Solution {
    /// The graph, with shares by key mass filled in.
    pub graph: Graph,
    /// Callers before callees (empty when the calls form a cycle).
    pub order: Vec<usize>,
    /// The cycle, if the calls form one.
    pub cycle: Option<String>,
    /// Arrivals.
    pub flow: Flow,
    /// Per node: loss, response time, station figures.
    pub nodes: Evaluated,
    /// Per source node: requests issued per second.
    pub issued: Vec<f64>,
    /// Per source node: attempts per request.
    pub attempts: Vec<f64>,
    /// Per source node: probability that one attempt succeeds (no faults).
    pub attempt_ok: Vec<f64>,
}

/// Solve the flows and stations of `model`.
pub fn solve(model: &Model) -> Solution {
    let mut graph = Graph::new(model);
    let (order, cycle) = topological(&graph);
    let n = graph.nodes.len();
    let mut sol = Solution {
        graph: Graph {
            nodes: Vec::new(),
            names: Vec::new(),
        },
        order,
        cycle,
        flow: empty_flow(n),
        nodes: Evaluated::new(n),
        issued: vec![0.0; n],
        attempts: vec![1.0; n],
        attempt_ok: vec![1.0; n],
    };
    if sol.cycle.is_some() {
        sol.graph = graph;
        return sol;
    }
    let closed: Vec<usize> = (0..n)
        .filter(|&i| matches!(&graph.nodes[i], NodeModel::Source(s) if s.closed.is_some()))
        .collect();
    for i in 0..n {
        if let NodeModel::Source(s) = &graph.nodes[i] {
            sol.issued[i] = s.rate.unwrap_or(0.0);
        }
    }
    if closed.is_empty() {
        open(model, &mut graph, &mut sol);
    } else {
        closed_loop(model, &mut graph, &mut sol, &closed);
    }
    sol.graph = graph;
    sol
}

fn empty_flow(n: usize) -> Flow {
    Flow {
        rate: vec![[0.0; 2]; n],
        poisson: vec![true; n],
        exact_rate: vec![true; n],
        notes: vec![Vec::new(); n],
        keys: vec![KeyFlow::Unset; n],
        unknown: vec![None; n],
        edges: BTreeMap::new(),
    }
}

/// Closed loops: bisect each closed source's throughput on N = X (Z + R(X)).
fn closed_loop(model: &Model, graph: &mut Graph, sol: &mut Solution, closed: &[usize]) {
    let mut bracket: Vec<(f64, f64)> = closed
        .iter()
        .map(|&i| match &graph.nodes[i] {
            NodeModel::Source(s) => {
                let (users, think) = s.closed.expect("closed");
                (0.0, f64::from(users) / think.max(1e-9))
            }
            _ => unreachable!("closed sources are sources"),
        })
        .collect();
    for _ in 0..60 {
        for (k, &i) in closed.iter().enumerate() {
            sol.issued[i] = (bracket[k].0 + bracket[k].1) / 2.0;
        }
        open(model, graph, sol);
        for (k, &i) in closed.iter().enumerate() {
            let NodeModel::Source(s) = &graph.nodes[i] else {
                continue;
            };
            let (users, think) = s.closed.expect("closed");
            let x = sol.issued[i];
            let r = stations::source_latency(graph, sol, i).unwrap_or(f64::INFINITY);
            if f64::from(users) / (think + r) > x {
                bracket[k].0 = x;
            } else {
                bracket[k].1 = x;
            }
        }
    }
}

/// The fixed point of rates, losses and retries for the sources' current `issued` rates.
fn open(model: &Model, graph: &mut Graph, sol: &mut Solution) {
    let n = graph.nodes.len();
    sol.attempts = vec![1.0; n];
    let mut admit = vec![1.0; n];
    for _ in 0..300 {
        let flow = propagate(graph, &sol.order, &sol.issued, &sol.attempts, &admit);
        let nodes = stations::evaluate(model, graph, &flow, &sol.order);
        let ok = attempt_success(model, graph, &sol.order, &nodes);
        let mut moved = 0.0f64;
        for i in 0..n {
            moved = moved.max((nodes.admit[i] - admit[i]).abs());
            admit[i] = 0.5 * admit[i] + 0.5 * nodes.admit[i];
            if let NodeModel::Source(s) = &graph.nodes[i] {
                let want = attempts_per_request(s, ok[i]);
                moved = moved.max((want - sol.attempts[i]).abs());
                sol.attempts[i] = 0.5 * sol.attempts[i] + 0.5 * want;
                sol.attempt_ok[i] = ok[i];
            }
        }
        sol.flow = flow;
        sol.nodes = nodes;
        if moved < 1e-12 {
            break;
        }
    }
}

/// Each source's chance that one attempt succeeds, with no fault in force.
fn attempt_success(model: &Model, graph: &Graph, order: &[usize], nodes: &Evaluated) -> Vec<f64> {
    let n = graph.nodes.len();
    let fixed = Fixed {
        graph,
        model,
        admit: &nodes.admit,
        hit: &nodes.hit,
    };
    let calm = Moment::calm(n);
    let callees_first: Vec<usize> = order.iter().rev().copied().collect();
    let ok = node_success(&fixed, &calm, &callees_first);
    (0..n)
        .map(|i| match &graph.nodes[i] {
            NodeModel::Source(s) => {
                let call = |op| {
                    super::availability::call(&fixed, &calm, &ok, i, &s.target, op).unwrap_or(1.0)
                };
                (1.0 - s.writes) * call(0) + s.writes * call(1)
            }
            _ => 1.0,
        })
        .collect()
}

/// Attempts per request when each succeeds with `ok`: 1 + f + f² + ... up to the limit,
/// capped by the retry budget.
fn attempts_per_request(s: &Source, ok: f64) -> f64 {
    let f = (1.0 - ok).clamp(0.0, 1.0);
    let m = s.attempts as i32;
    let attempts = if f >= 1.0 {
        f64::from(m)
    } else {
        (1.0 - libm::pow(f, f64::from(m))) / (1.0 - f)
    };
    match s.budget {
        Some(b) => attempts.min(1.0 + b),
        None => attempts,
    }
}

/// Arrival rates at every node, callers first: each passes on what it admits.
fn propagate(
    graph: &mut Graph,
    order: &[usize],
    issued: &[f64],
    attempts: &[f64],
    admit: &[f64],
) -> Flow {
    let n = graph.nodes.len();
    let mut flow = empty_flow(n);
    for &i in order {
        if let NodeModel::Source(s) = &graph.nodes[i] {
            let r = issued[i] * attempts[i];
            flow.rate[i] = [r * (1.0 - s.writes), r * s.writes];
            flow.poisson[i] = s.poisson && (attempts[i] - 1.0).abs() < 1e-9;
            flow.exact_rate[i] = s.closed.is_none() && (attempts[i] - 1.0).abs() < 1e-9;
            flow.keys[i] = KeyFlow::Known(s.keys.clone());
            if let Some(note) = &s.arrival_note {
                flow.notes[i].push(note.clone());
            }
            if (attempts[i] - 1.0).abs() >= 1e-9 {
                flow.notes[i].push(format!(
                    "retries add {:.2}% to {}'s attempts",
                    (attempts[i] - 1.0) * 100.0,
                    graph.name(i)
                ));
            }
        }
        shares_by_key(graph, i, &flow.keys[i]);
        pass_on(graph, i, admit[i], &mut flow);
    }
    flow
}

/// A shard router's and a cache's shares by the key mass reaching it.
fn shares_by_key(graph: &mut Graph, i: usize, keys: &KeyFlow) {
    let KeyFlow::Known(k) = keys else {
        if let NodeModel::Relay(r) = &mut graph.nodes[i]
            && r.key_map.is_some()
        {
            r.exact_shares = false;
            r.routing_note = Some(
                "the keys reaching the shard router are a mix or a subset: shards taken as equal"
                    .into(),
            );
        }
        return;
    };
    match &mut graph.nodes[i] {
        NodeModel::Cache(c) => {
            let m = c.backend.members.len();
            let (s, _) = keys::shares(k, m, &|key| (key % m as u64) as usize);
            for (member, share) in c.backend.members.iter_mut().zip(s) {
                member.1 = share;
            }
        }
        NodeModel::Relay(r) if r.what == "shard router" => {
            if let Some(map) = &r.key_map {
                let n = r.route.pools.len();
                let (s, exact) = keys::shares(k, n, &|key| map.shard(key));
                for (pool, share) in r.route.pools.iter_mut().zip(s) {
                    pool.0 = share;
                }
                r.exact_shares = exact;
            }
        }
        _ => {}
    }
}

/// Node `i` passes its admitted arrivals to its callees.
fn pass_on(graph: &Graph, i: usize, admit: f64, flow: &mut Flow) {
    let [reads, writes] = flow.rate[i];
    let out = |flow: &Flow| (flow.poisson[i], flow.exact_rate[i], flow.keys[i].clone());
    let (poisson, exact, keys) = out(flow);
    let notes = flow.notes[i].clone();
    let unknown = flow.unknown[i].clone();
    let send = |flow: &mut Flow, pool: &Pool, r: f64, w: f64, split: Split| {
        for &(m, share) in &pool.members {
            let (rm, wm) = (r * share, w * share);
            flow.rate[m][0] += rm;
            flow.rate[m][1] += wm;
            *flow.edges.entry((i, m)).or_insert(0.0) += rm + wm;
            flow.poisson[m] &= poisson && split.poisson;
            flow.exact_rate[m] &= exact && split.exact;
            let k = if split.by_key {
                KeyFlow::Unknown
            } else {
                keys.clone()
            };
            flow.keys[m].merge(&k);
            if let Some(why) = unknown.clone().or_else(|| split.unknown.clone()) {
                flow.unknown[m] = Some(why);
            }
            for note in notes.iter().chain(&split.note) {
                if !flow.notes[m].contains(note) {
                    flow.notes[m].push(note.clone());
                }
            }
        }
    };
    let (r, w) = (reads * admit, writes * admit);
    match &graph.nodes[i] {
        NodeModel::Source(s) => send(flow, &s.target, r, w, Split::random()),
        NodeModel::Relay(relay) => {
            // What a rate limiter or bulkhead admits depends on bursts, not only on the rate.
            let admits_all = relay.rate_limit.is_none() && relay.bulkhead.is_none();
            let split = Split {
                poisson: relay.poisson_split && admits_all,
                exact: relay.exact_shares && admits_all,
                by_key: relay.key_map.is_some(),
                note: relay.routing_note.clone().or_else(|| {
                    (!admits_all).then(|| {
                        format!(
                            "the {} admits bursts differently from its long-run rate",
                            relay.what
                        )
                    })
                }),
                unknown: None,
            };
            for (p, pool) in &relay.route.pools {
                send(flow, pool, r * p, w * p, split.clone());
            }
        }
        NodeModel::Station(st) => {
            let note = format!(
                "arrivals at the callees of {} are its calls, not a Poisson stream",
                graph.names[i].1
            );
            let split = Split {
                poisson: false,
                exact: true,
                by_key: false,
                note: Some(note),
                unknown: None,
            };
            for stage in &st.stages {
                for pool in &stage.calls {
                    send(flow, pool, r, w, split.clone());
                }
            }
        }
        NodeModel::Cache(c) => {
            let (miss_reads, backend_writes, split) = cache_traffic(c, graph, i, r, w, flow);
            send(flow, &c.backend, miss_reads, backend_writes, split);
        }
        NodeModel::Store(_) | NodeModel::Opaque(_) => {}
    }
}

/// How a split changes the arrivals it passes on.
#[derive(Clone, Debug)]
struct Split {
    poisson: bool,
    exact: bool,
    by_key: bool,
    note: Option<String>,
    /// Why the rates passed on are unknown.
    unknown: Option<String>,
}

impl Split {
    fn random() -> Split {
        Split {
            poisson: true,
            exact: true,
            by_key: false,
            note: None,
            unknown: None,
        }
    }
}

/// A cache's backend traffic: misses, and writes (or flushes), with how exact they are.
fn cache_traffic(
    c: &super::graph::CacheNode,
    graph: &Graph,
    i: usize,
    reads: f64,
    writes: f64,
    flow: &Flow,
) -> (f64, f64, Split) {
    let name = &graph.names[i].1;
    let hit = stations::cache_hit(c, &flow.keys[i], reads + writes, writes);
    let (h, exact, mut note, unknown) = match hit {
        Ok((h, exact, _)) => (h, exact, None, None),
        Err(why) => {
            let unknown = format!("it is behind {name}, whose hit ratio has no formula ({why})");
            (0.0, false, None, Some(unknown))
        }
    };
    let backend_writes = if super::graph::writes_through(c.cfg.strategy) {
        writes
    } else {
        match &flow.keys[i] {
            KeyFlow::Known(k) => {
                keys::flush_rate(k, writes, c.cfg.flush_interval.as_secs_f64()).unwrap_or(writes)
            }
            _ => writes,
        }
    };
    if note.is_none() && (!exact || c.cfg.coalesce) {
        note = Some(format!(
            "{name}'s misses follow from an approximate hit ratio"
        ));
    }
    let split = Split {
        poisson: false,
        exact,
        by_key: true,
        note: note.or_else(|| Some(format!("{name}'s misses are not a Poisson stream"))),
        unknown,
    };
    (reads * (1.0 - h), backend_writes, split)
}

/// Callers before callees (every node after all that can call it), or the cycle found.
fn topological(graph: &Graph) -> (Vec<usize>, Option<String>) {
    let n = graph.nodes.len();
    // 0 = unseen, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; n];
    let mut post = Vec::with_capacity(n);
    for start in 0..n {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, graph.callees(start), 0usize)];
        state[start] = 1;
        while let Some((node, callees, next)) = stack.last_mut() {
            if let Some(&c) = callees.get(*next) {
                *next += 1;
                match state[c] {
                    0 => {
                        state[c] = 1;
                        let callees = graph.callees(c);
                        stack.push((c, callees, 0));
                    }
                    1 => {
                        let cycle =
                            format!("{} calls {} in a loop", graph.name(*node), graph.name(c));
                        return (Vec::new(), Some(cycle));
                    }
                    _ => {}
                }
            } else {
                state[*node] = 2;
                post.push(*node);
                stack.pop();
            }
        }
    }
    post.reverse();
    (post, None)
}
