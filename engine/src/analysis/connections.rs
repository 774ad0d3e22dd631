//! Connection setup in the latency model: the share of a caller's calls that open a
//! connection, and what opening one adds to the call.
//!
//! ```text
//!  for each call edge caller → callee where the caller has `connections`, at r calls/s:
//!    first  = pools opened once / calls in the measured period  (0 with a warm-up: pools
//!             are taken as open when measuring starts)
//!    idle   = P(the connection idled ≥ idle_timeout since its last call):
//!               per-user closed loop: P(think time ≥ idle_timeout)           (exact)
//!               a shared pool: the gap to the next call on the edge, e^(−r τ) for
//!               Poisson calls, [1/r ≥ τ] for evenly spaced ones              (approximate)
//!    p_full = first + (1 − first) × idle, without resumption
//!    p_res  = (1 − first) × idle, with resumption (and TLS)
//!    cost   = k round trips (TCP 1, TLS 1.3 +1, TLS 1.2 +2; resumed: per protocol)
//!             + the caller's handshake CPU + the callee's
//!             + at a balancer, the wait for a TLS core (M/G/c over its handshakes)
//!    call  += cost_full with p_full, cost_res with p_res, nothing otherwise (a mixture)
//! ```
//! Left out: connections a restart drops (the reconnect storm under faults), a shared pool
//! growing past one connection under concurrency, calls riding a connection still opening
//! (HTTP/2), pool overflow, and the callee's handshake CPU in its utilisation.

use super::flow::Flow;
use super::graph::{Graph, NodeModel};
use super::queueing::{Moments, mgc_wait};
use super::stations::Net;
use crate::components::NodeConfig;
use crate::components::traffic::client::Arrival;
use crate::components::traffic::connections::{
    ConnectionConfig, HandshakeCpu, Protocol, Resumption,
};
use crate::contract::call::Handshake;
use crate::scenario::validate::Model;
use crate::sim::dist::Dist;
use std::collections::BTreeMap;

/// What opening connections adds to the calls on one edge (caller, callee).
#[derive(Clone, Debug)]
pub struct EdgeSetup {
    /// Share of the calls that open a connection with a full handshake.
    pub p_full: f64,
    /// Share that open one resuming a session.
    pub p_resumed: f64,
    /// Time a full opening adds (seconds): round trips, CPU on both ends, a core's wait.
    pub full: Moments,
    /// Time a resumed opening adds.
    pub resumed: Moments,
    /// Round trips of a full opening.
    pub full_round_trips: u32,
    /// Handshake CPU of a full opening, both ends (seconds).
    pub full_cpu: f64,
    /// Whether the shares are exact.
    pub exact: bool,
    /// Why they are approximate.
    pub why: Vec<&'static str>,
}

impl EdgeSetup {
    /// The time added to every call on the edge: a mixture of the two openings and nothing.
    pub fn added(&self) -> Moments {
        let f = self.full.times_probability(self.p_full);
        let r = self.resumed.times_probability(self.p_resumed);
        Moments {
            mean: f.mean + r.mean,
            second: f.second + r.second,
        }
    }

    /// Share of the calls that open a connection.
    pub fn p_open(&self) -> f64 {
        self.p_full + self.p_resumed
    }
}

/// The connections a node's calls go out on, if it models them.
pub fn connections_of(model: &Model, i: usize) -> Option<&ConnectionConfig> {
    match &model.spec.nodes[model.decl_of[i]] {
        NodeConfig::Client(c) => c.connections.as_ref(),
        NodeConfig::LoadBalancer(b) => b.connections.as_ref(),
        NodeConfig::Server(s) => s.connections.as_ref(),
        _ => None,
    }
}

/// The callee's side of a handshake: its CPU, and the cores a balancer does it on.
fn callee_side(model: &Model, m: usize) -> Option<(HandshakeCpu, Option<u32>)> {
    match &model.spec.nodes[model.decl_of[m]] {
        NodeConfig::Server(s) => Some((s.handshake_cpu, None)),
        NodeConfig::LoadBalancer(b) => Some((b.handshake_cpu, Some(b.tls_cores))),
        _ => None,
    }
}

/// The opening costs of every edge whose caller has connections, at the rates of `flow`.
pub fn setups(
    model: &Model,
    graph: &Graph,
    flow: &Flow,
    net: &Net<'_>,
) -> BTreeMap<(usize, usize), EdgeSetup> {
    let mut out = BTreeMap::new();
    let measured = measured_seconds(model, graph);
    for (&(i, m), &r) in &flow.edges {
        let Some(cfg) = connections_of(model, i) else {
            continue;
        };
        if r <= 0.0 {
            continue;
        }
        out.insert((i, m), edge(model, flow, net, cfg, (i, m), r, measured));
    }
    add_core_waits(model, flow, &mut out);
    out
}

/// The shares and costs of one edge, before any wait for a balancer's cores.
fn edge(
    model: &Model,
    flow: &Flow,
    net: &Net<'_>,
    cfg: &ConnectionConfig,
    (i, m): (usize, usize),
    r: f64,
    measured: f64,
) -> EdgeSetup {
    let mut why = Vec::new();
    let tau = cfg.idle_timeout.as_secs_f64();
    let (pools, idle, exact_idle) = match per_user_think(model, i, cfg) {
        Some((users, think)) => (f64::from(users), tail(think, tau), true),
        None => {
            why.push("a shared pool is taken as one connection reused by every call, idle between calls spaced as they arrive");
            let idle = if flow.poisson[i] {
                libm::exp(-r * tau)
            } else if 1.0 / r >= tau {
                1.0
            } else {
                0.0
            };
            (1.0, idle, false)
        }
    };
    // First calls open their pools once; with a warm-up, before measuring starts.
    let first = if model.measure_from.0 == 0 && measured > 0.0 {
        (pools / (r * measured)).min(1.0)
    } else {
        0.0
    };
    let tls = cfg.protocol != Protocol::Tcp;
    let resumes = tls && cfg.resumption != Resumption::None;
    let later = (1.0 - first) * idle;
    let (p_full, p_resumed) = if resumes {
        (first, later)
    } else {
        (first + later, 0.0)
    };
    let callee = callee_side(model, m);
    if callee.is_none() && tls {
        why.push("a proxy passes the handshake on: the CPU beyond it is left out");
    }
    let cost = |resumed: bool| {
        let h = Handshake::opened(tls, resumed, cfg.mutual);
        let k = cfg.setup_round_trips(resumed);
        let rtt = net.link(i, m).plus(&net.link(m, i));
        let mut t = Moments::constant(0.0);
        for _ in 0..k {
            t = t.plus(&rtt);
        }
        let cpu =
            cfg.cpu.cost(h).as_secs_f64() + callee.map_or(0.0, |(c, _)| c.cost(h).as_secs_f64());
        (t.plus(&Moments::constant(cpu)), k, cpu)
    };
    let (full, full_round_trips, full_cpu) = cost(false);
    let (resumed, _, _) = cost(true);
    EdgeSetup {
        p_full,
        p_resumed,
        full,
        resumed,
        full_round_trips,
        full_cpu,
        exact: exact_idle && callee.is_some() && why.is_empty(),
        why,
    }
}

/// A client whose closed-loop users keep connections of their own: users, think time.
fn per_user_think<'m>(
    model: &'m Model,
    i: usize,
    cfg: &ConnectionConfig,
) -> Option<(u32, &'m Dist)> {
    if !cfg.per_user {
        return None;
    }
    match &model.spec.nodes[model.decl_of[i]] {
        NodeConfig::Client(c) => match &c.arrival {
            Arrival::Closed { users, think_time } => Some((*users, think_time)),
            _ => None,
        },
        _ => None,
    }
}

/// Seconds of arrivals measured: from the warm-up's end to the last arrival, shortened by
/// open-loop sources that stop early (`max_requests`), weighted by their rates.
fn measured_seconds(model: &Model, graph: &Graph) -> f64 {
    let from = model.measure_from.as_secs_f64();
    let to = model.arrivals_end.as_secs_f64();
    let (mut weighted, mut total) = (0.0, 0.0);
    for n in &graph.nodes {
        let NodeModel::Source(s) = n else {
            continue;
        };
        let Some(rate) = s.rate else {
            return to - from;
        };
        let stop = s.max_requests.map_or(to, |max| (max as f64 / rate).min(to));
        weighted += rate * (stop - from).max(0.0);
        total += rate;
    }
    if total > 0.0 {
        weighted / total
    } else {
        to - from
    }
}

/// A balancer terminates the handshakes of the connections opened to it on its cores: each
/// opening waits for a core as in an M/G/c queue of handshakes (approximate: the openings
/// are taken as Poisson).
fn add_core_waits(model: &Model, flow: &Flow, out: &mut BTreeMap<(usize, usize), EdgeSetup>) {
    let mut by_callee: BTreeMap<usize, (f64, Moments)> = BTreeMap::new();
    for (&(i, m), s) in out.iter() {
        let Some((cpu, Some(_))) = callee_side(model, m) else {
            continue;
        };
        let Some(cfg) = connections_of(model, i) else {
            continue;
        };
        if cfg.protocol == Protocol::Tcp {
            continue;
        }
        let r = flow.edges[&(i, m)];
        let costs = [(s.p_full, false), (s.p_resumed, true)];
        let e = by_callee.entry(m).or_insert((0.0, Moments::constant(0.0)));
        for (p, resumed) in costs {
            let c = cpu
                .cost(Handshake::opened(true, resumed, cfg.mutual))
                .as_secs_f64();
            // Rates and rate-weighted second moments, normalised below.
            e.0 += r * p;
            e.1.mean += r * p * c;
            e.1.second += r * p * c * c;
        }
    }
    for (m, (lambda, mut service)) in by_callee {
        // Cores busy less than a nanosecond per second: no handshake load to queue.
        if service.mean < 1e-9 {
            continue;
        }
        service.mean /= lambda;
        service.second /= lambda;
        let Some((_, Some(cores))) = callee_side(model, m) else {
            continue;
        };
        let wait = mgc_wait(cores, lambda, &service);
        for ((_, callee), s) in out.iter_mut() {
            if *callee != m {
                continue;
            }
            s.exact = false;
            match wait {
                Some(w) => {
                    s.why.push("the wait for a balancer's TLS core by M/G/c, handshakes taken as Poisson");
                    s.full = s.full.plus(&Moments::exponential(w));
                    s.resumed = s.resumed.plus(&Moments::exponential(w));
                }
                None => s.why.push("the balancer's TLS cores cannot keep up with the handshakes: their queue is left out"),
            }
        }
    }
}

/// P(X ≥ t) for a distribution of durations, `t` in seconds.
pub fn tail(d: &Dist, t: f64) -> f64 {
    let s = |d: crate::sim::time::SimDuration| d.as_secs_f64();
    let q = |z: f64| 0.5 * libm::erfc(z / std::f64::consts::SQRT_2);
    let p = match d {
        Dist::Constant(v) => f64::from(u8::from(s(*v) >= t)),
        Dist::Exponential { mean } => libm::exp(-t / s(*mean).max(1e-18)),
        Dist::Uniform { low, high } => {
            let (a, b) = (s(*low), s(*high));
            if b <= a {
                f64::from(u8::from(a >= t))
            } else {
                (b - t) / (b - a)
            }
        }
        Dist::Normal { mean, std_dev } => {
            let (m, sd) = (s(*mean), s(*std_dev));
            if sd <= 0.0 {
                f64::from(u8::from(m >= t))
            } else {
                // Truncated at zero: negative draws are drawn again.
                q((t.max(0.0) - m) / sd) / q(-m / sd)
            }
        }
        Dist::LogNormal { median, p99 } => {
            let mu = libm::log(s(*median).max(1e-9));
            let sigma = (libm::log(s(*p99).max(1e-9)) - mu).max(0.0) / 2.326_347_874_040_841;
            if sigma <= 0.0 || t <= 0.0 {
                f64::from(u8::from(s(*median) >= t))
            } else {
                q((libm::log(t) - mu) / sigma)
            }
        }
        Dist::Pareto { scale, shape } => {
            let xm = s(*scale);
            if t <= xm {
                1.0
            } else {
                libm::pow(xm / t, *shape)
            }
        }
        Dist::Empirical(values) => {
            let n = values.len().max(1) as f64;
            values.iter().filter(|v| s(**v) >= t).count() as f64 / n
        }
    };
    p.clamp(0.0, 1.0)
}

/// What the edges between two groups add, summed for a note.
#[derive(Default)]
struct HopSum {
    edges: f64,
    p_open: f64,
    added: f64,
    round_trips: u32,
    cpu: f64,
}

/// One line per caller group with connections, saying what opening them adds; and whether
/// every share is exact.
pub fn notes(graph: &Graph, setups: &BTreeMap<(usize, usize), EdgeSetup>) -> (bool, Vec<String>) {
    let mut by_hop: BTreeMap<(String, String), HopSum> = BTreeMap::new();
    let mut exact = true;
    let mut why: Vec<String> = Vec::new();
    for (&(i, m), s) in setups {
        exact &= s.exact;
        for w in &s.why {
            if !why.iter().any(|x| x == w) {
                why.push(w.to_string());
            }
        }
        let hop = (graph.names[i].1.clone(), graph.names[m].1.clone());
        let e = by_hop.entry(hop).or_default();
        e.edges += 1.0;
        e.p_open += s.p_open();
        e.added += s.added().mean;
        e.round_trips = s.full_round_trips;
        e.cpu = s.full_cpu;
    }
    let mut lines: Vec<String> = by_hop
        .into_iter()
        .map(|((a, b), h)| {
            let k = h.round_trips;
            let trips = if k == 1 { "round trip" } else { "round trips" };
            format!(
                "connection setup {a} -> {b}: {:.1}% of calls open a connection ({k} {trips} \
                 and {:.2} ms of handshake CPU for a full one), adding {:.2} ms per call",
                100.0 * h.p_open / h.edges,
                h.cpu * 1e3,
                h.added / h.edges * 1e3
            )
        })
        .collect();
    lines.extend(why);
    (exact, lines)
}

#[cfg(test)]
mod tests {
    use super::tail;
    use crate::sim::dist::Dist;
    use crate::sim::time::SimDuration;

    #[test]
    fn tails_of_the_think_time_distributions() {
        let ms = SimDuration::from_millis;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(
            tail(&Dist::Exponential { mean: ms(500) }, 0.001),
            libm::exp(-0.002)
        ));
        assert_eq!(tail(&Dist::Constant(ms(100)), 0.1), 1.0);
        assert_eq!(tail(&Dist::Constant(ms(100)), 0.1001), 0.0);
        let u = Dist::Uniform {
            low: ms(0),
            high: ms(100),
        };
        assert!(close(tail(&u, 0.025), 0.75));
        let p = Dist::Pareto {
            scale: ms(10),
            shape: 2.0,
        };
        assert!(close(tail(&p, 0.02), 0.25));
        // The median of a log-normal is its median.
        let l = Dist::LogNormal {
            median: ms(10),
            p99: ms(50),
        };
        assert!(close(tail(&l, 0.01), 0.5));
        let e = Dist::Empirical(vec![ms(1), ms(2), ms(3), ms(4)]);
        assert!(close(tail(&e, 0.0025), 0.5));
    }
}
