//! Each node's figures, callees before callers: a station's waiting time by the formula that
//! fits it, a relay's and a cache's response time from their callees', every call's network
//! transit both ways.
//!
//! ```text
//!  holding time H = local service ⊕ stage 1 ⊕ stage 2 ...      (blocking calls hold a worker)
//!  stage time     = the call's response time, or for k of n calls E[k-th of n]
//!  call time      = network(caller → member) ⊕ member's response ⊕ network(member → caller)
//!  station        unbounded: M/M/c, M/G/1 or M/G/c; no room: Erlang B; a finite queue: M/M/c/K
//! ```

use super::connections::{self, EdgeSetup};
use super::flow::{Flow, KeyFlow, Solution};
use super::graph::{CacheNode, Graph, NodeModel, Pool, Station};
use super::keys::{self, HitRatio};

use super::queueing::{Moments, erlang_b, kth_of, mgc_wait, mmck, moments};
use crate::components::data::cache::{CacheStrategy, Eviction};
use crate::scenario::validate::Model;
use crate::sim::NodeId;
use std::collections::BTreeMap;

/// What the model says about one station (a server replica).
#[derive(Clone, Debug)]
pub struct StationOut {
    /// Kendall notation of the formula used, e.g. `M/M/4`.
    pub model: String,
    /// Workers.
    pub c: u32,
    /// Offered arrivals (requests/s).
    pub arrival: f64,
    /// Local service time.
    pub local: Moments,
    /// Holding time: local service plus the calls made while the worker is held.
    pub holding: Moments,
    /// Offered load per worker, ρ = λ E[H] / c.
    pub offered_load: f64,
    /// Busy fraction of the workers (carried load per worker).
    pub utilisation: f64,
    /// Mean wait in queue (seconds); `None` when the queue grows without bound.
    pub wait: Option<f64>,
    /// Probability that an arrival is turned away.
    pub loss: f64,
    /// Whether the waiting time is exact for these assumptions.
    pub exact: bool,
    /// Whether the utilisation is exact.
    pub utilisation_exact: bool,
    /// Why the arrival rate is unknown, if it is.
    pub unknown: Option<String>,
    /// Why figures are approximate.
    pub why: Vec<String>,
}

/// Every node's figures.
#[derive(Clone, Debug)]
pub struct Evaluated {
    /// Probability that a node admits a request (queue, bulkhead or rate limit).
    pub admit: Vec<f64>,
    /// A cache's read hit ratio.
    pub hit: Vec<Option<f64>>,
    /// Time from a request's arrival at a node to its answer leaving, per op; or why unknown.
    pub resp: Vec<Result<[Moments; 2], String>>,
    /// Whether `resp`'s mean is exact.
    pub exact: Vec<bool>,
    /// Why a node's response time is approximate.
    pub why: Vec<Vec<String>>,
    /// Station figures.
    pub station: Vec<Option<StationOut>>,
}

impl Evaluated {
    /// Nothing evaluated yet.
    pub fn new(n: usize) -> Evaluated {
        Evaluated {
            admit: vec![1.0; n],
            hit: vec![None; n],
            resp: vec![Err("not reached by any request".to_string()); n],
            exact: vec![true; n],
            why: vec![Vec::new(); n],
            station: vec![None; n],
        }
    }
}

/// Network transit moments per link, and what opening connections adds to calls.
pub struct Net<'m> {
    model: &'m Model,
    default: Moments,
    /// Per (caller, callee) with the caller's `connections`: what openings add.
    setups: BTreeMap<(usize, usize), EdgeSetup>,
}

impl<'m> Net<'m> {
    /// The links of `model`.
    pub fn new(model: &'m Model) -> Net<'m> {
        Net {
            model,
            default: moments(&model.default_link.latency),
            setups: BTreeMap::new(),
        }
    }

    /// The links of `model`, and the connection setups of its calls at the rates of `flow`.
    pub fn with_connections(model: &'m Model, graph: &Graph, flow: &Flow) -> Net<'m> {
        let mut net = Net::new(model);
        net.setups = connections::setups(model, graph, flow, &net);
        net
    }

    /// What opening connections adds to the calls from `a` to `b`, if `a` models them.
    pub fn setup(&self, a: usize, b: usize) -> Option<&EdgeSetup> {
        self.setups.get(&(a, b))
    }

    /// Every edge's connection setup.
    pub fn setups(&self) -> &BTreeMap<(usize, usize), EdgeSetup> {
        &self.setups
    }

    /// One-way transit from `a` to `b`.
    pub fn link(&self, a: usize, b: usize) -> Moments {
        if a == b {
            return Moments::constant(0.0);
        }
        self.model
            .links
            .get(&(NodeId(a as u32), NodeId(b as u32)))
            .map_or(self.default, |l| moments(&l.latency))
    }
}

/// Evaluate every node, callees first.
pub fn evaluate(model: &Model, graph: &Graph, flow: &Flow, order: &[usize]) -> Evaluated {
    let net = Net::with_connections(model, graph, flow);
    let mut ev = Evaluated::new(graph.nodes.len());
    for &i in order.iter().rev() {
        ev.why[i] = flow.notes[i].clone();
        ev.exact[i] = flow.notes[i].is_empty();
        let resp = match &graph.nodes[i] {
            NodeModel::Station(s) => station(&net, graph, flow, &mut ev, i, s),
            NodeModel::Relay(r) => relay(&net, flow, &mut ev, i, r),
            NodeModel::Cache(c) => cache(&net, graph, flow, &mut ev, i, c),
            NodeModel::Source(s) => {
                let target = &s.target;
                both(|op| call(&net, &ev, i, target, op)).map(|(m, exact)| {
                    ev.exact[i] &= exact;
                    m
                })
            }
            NodeModel::Store(_) => Err(format!(
                "{} is a replicated store: its round trips between replicas have no formula here",
                graph.names[i].1
            )),
            NodeModel::Opaque(why) => Err(format!("{}: {why}", graph.names[i].1)),
        };
        ev.resp[i] = resp;
    }
    ev
}

/// `f` for reads and writes, with whether both are exact.
fn both(
    mut f: impl FnMut(usize) -> Result<(Moments, bool), String>,
) -> Result<([Moments; 2], bool), String> {
    let (r, re) = f(0)?;
    let (w, we) = f(1)?;
    Ok(([r, w], re && we))
}

/// A call from `caller` to `pool`: network there, the member's response, network back.
pub fn call(
    net: &Net<'_>,
    ev: &Evaluated,
    caller: usize,
    pool: &Pool,
    op: usize,
) -> Result<(Moments, bool), String> {
    let mut mean = 0.0;
    let mut second = 0.0;
    let mut exact = true;
    for &(m, w) in &pool.members {
        if w == 0.0 {
            continue;
        }
        let resp = ev.resp[m].as_ref().map_err(Clone::clone)?[op];
        let mut x = net.link(caller, m).plus(&resp).plus(&net.link(m, caller));
        if let Some(s) = net.setup(caller, m) {
            // Calls that open a connection wait for its handshakes first.
            x = x.plus(&s.added());
            exact &= s.exact;
        }
        mean += w * x.mean;
        second += w * x.second;
        exact &= ev.exact[m];
    }
    Ok((Moments { mean, second }, exact))
}

fn station(
    net: &Net<'_>,
    graph: &Graph,
    flow: &Flow,
    ev: &mut Evaluated,
    i: usize,
    s: &Station,
) -> Result<[Moments; 2], String> {
    let ([h_read, h_write], calls_exact) = both(|op| holding(net, ev, i, s, op))?;
    let [reads, writes] = flow.rate[i];
    let lambda = reads + writes;
    let w = if lambda > 0.0 { writes / lambda } else { 0.0 };
    let h = h_read
        .times_probability(1.0 - w)
        .plus_mixture(&h_write.times_probability(w));
    let mut out = queue(s, lambda, h);
    out.why.extend(ev.why[i].iter().cloned());
    if !s.stages.is_empty() {
        out.exact = false;
        out.utilisation_exact = false;
        out.why.push(format!(
            "{} holds a worker through its calls (layered): holding time taken as service",
            graph.names[i].1
        ));
    }
    if !calls_exact {
        out.why
            .push("the calls' response times are approximate".into());
    }
    if s.resized {
        out.exact = false;
        out.utilisation_exact = false;
        out.why.push(format!(
            "an autoscaler resizes {}: the pool is taken at its full size, every replica \
             serving",
            graph.names[i].1
        ));
    }
    if s.deployed {
        out.exact = false;
        out.utilisation_exact = false;
        out.why.push(format!(
            "a deploy changes {}'s replicas and versions while it runs: the pool is taken \
             as it serves before the deploy",
            graph.names[i].1
        ));
    }
    out.exact &= flow.poisson[i] && flow.exact_rate[i] && flow.notes[i].is_empty();
    out.utilisation_exact &= flow.exact_rate[i];
    out.unknown = flow.unknown[i].clone();
    ev.admit[i] = 1.0 - out.loss;
    ev.exact[i] = out.exact;
    ev.why[i] = out.why.clone();
    let result = match out.wait {
        Some(wq) => Ok([h_read, h_write].map(|x| Moments::exponential(wq).plus(&x))),
        None => Err(format!(
            "{} cannot keep up: offered load ρ = {:.3} per worker",
            graph.name(i),
            out.offered_load
        )),
    };
    ev.station[i] = Some(out);
    result
}

impl Moments {
    /// The sum of the two halves of a mixture already weighted by their probabilities.
    fn plus_mixture(&self, other: &Moments) -> Moments {
        Moments {
            mean: self.mean + other.mean,
            second: self.second + other.second,
        }
    }
}

/// Local service, then each stage of calls, for one op.
fn holding(
    net: &Net<'_>,
    ev: &Evaluated,
    i: usize,
    s: &Station,
    op: usize,
) -> Result<(Moments, bool), String> {
    let mut h = s.service;
    let mut exact = true;
    for stage in &s.stages {
        let calls: Vec<(Moments, bool)> = stage
            .calls
            .iter()
            .map(|p| call(net, ev, i, p, op))
            .collect::<Result<_, _>>()?;
        exact &= calls.iter().all(|(_, e)| *e);
        let time = match calls[..] {
            [(one, _)] => one,
            _ => {
                let means: Vec<f64> = calls.iter().map(|(m, _)| m.mean).collect();
                exact = false;
                Moments::exponential(kth_of(&means, stage.need))
            }
        };
        h = h.plus(&time);
    }
    Ok((h, exact))
}

/// The formula that fits the station, and its figures at arrival rate `lambda`.
fn queue(s: &Station, lambda: f64, h: Moments) -> StationOut {
    let c = s.c;
    let cf = f64::from(c);
    let offered = lambda * h.mean / cf;
    let service_kind = if !s.stages.is_empty() {
        "G"
    } else if s.exponential {
        "M"
    } else if h.scv() == 0.0 {
        "D"
    } else {
        "G"
    };
    let mut why = Vec::new();
    let (model, wait, loss, exact) = match s.queue {
        None => {
            let wait = mgc_wait(c, lambda, &h);
            let exact = c == 1 || service_kind == "M";
            if !exact {
                why.push("M/G/c waiting by Allen–Cunneen's approximation".to_string());
            }
            (format!("M/{service_kind}/{c}"), wait, 0.0, exact)
        }
        Some(0) => {
            let b = erlang_b(c, lambda * h.mean);
            (format!("M/{service_kind}/{c}/{c}"), Some(0.0), b, true)
        }
        Some(k) => {
            let f = mmck(c, k, lambda, h.mean);
            let exact = service_kind == "M";
            if !exact {
                why.push("finite queue with general service taken as M/M/c/K".to_string());
            }
            let cap = u64::from(c) + k;
            (
                format!("M/{service_kind}/{c}/{cap}"),
                Some(f.wait),
                f.loss,
                exact,
            )
        }
    };
    if s.sheds {
        why.push("shedding requests that waited too long is not in the formula".to_string());
    }
    let exact = exact && !s.sheds;
    StationOut {
        model,
        c,
        arrival: lambda,
        local: s.service,
        holding: h,
        offered_load: offered,
        utilisation: (lambda * (1.0 - loss) * h.mean / cf).min(1.0),
        wait,
        loss,
        exact,
        utilisation_exact: !s.sheds,
        unknown: None,
        why,
    }
}

fn relay(
    net: &Net<'_>,
    flow: &Flow,
    ev: &mut Evaluated,
    i: usize,
    r: &super::graph::Relay,
) -> Result<[Moments; 2], String> {
    let lambda = flow.rate[i][0] + flow.rate[i][1];
    let mut out = [Moments::constant(0.0); 2];
    let mut exact = true;
    for (p, pool) in &r.route.pools {
        let ([read, write], e) = both(|op| call(net, ev, i, pool, op))?;
        out[0] = out[0].plus_mixture(&read.times_probability(*p));
        out[1] = out[1].plus_mixture(&write.times_probability(*p));
        exact &= e;
    }
    if let Some(max) = r.bulkhead {
        let a = lambda * out[0].mean;
        ev.admit[i] = 1.0 - erlang_b(max, a);
        if ev.admit[i] < 1.0 - 1e-9 {
            exact = false;
            ev.why[i].push("bulkhead loss by Erlang B over its calls' time".into());
        }
    }
    if let Some(limit) = r.rate_limit
        && lambda > 0.0
    {
        ev.admit[i] = (limit / lambda).min(1.0);
        if ev.admit[i] < 1.0 {
            exact = false;
            ev.why[i].push("rate limiter admits its long-run rate; bursts not modelled".into());
        }
    }
    ev.exact[i] &= exact;
    Ok(out)
}

fn cache(
    net: &Net<'_>,
    graph: &Graph,
    flow: &Flow,
    ev: &mut Evaluated,
    i: usize,
    c: &CacheNode,
) -> Result<[Moments; 2], String> {
    let [reads, writes] = flow.rate[i];
    let (h, exact, _) = cache_hit(c, &flow.keys[i], reads + writes, writes)
        .map_err(|why| format!("{}'s hit ratio: {why}", graph.names[i].1))?;
    ev.hit[i] = Some(h);
    let t = Moments::constant(c.cfg.hit_time.as_secs_f64());
    let ([read_call, write_call], calls_exact) = both(|op| call(net, ev, i, &c.backend, op))?;
    let miss = t.plus(&t).plus(&read_call);
    let read = t
        .times_probability(h)
        .plus_mixture(&miss.times_probability(1.0 - h));
    let write = if super::graph::writes_through(c.cfg.strategy) {
        t.plus(&t).plus(&write_call)
    } else {
        t
    };
    ev.exact[i] &= exact && calls_exact;
    if !exact {
        ev.why[i].push(format!("{}'s hit ratio is approximate", graph.names[i].1));
    }
    Ok([read, write])
}

/// A cache's read hit ratio, whether it is exact, and the formula; or why there is none.
pub fn cache_hit(
    c: &CacheNode,
    keys: &KeyFlow,
    total: f64,
    writes: f64,
) -> Result<(f64, bool, &'static str), String> {
    let KeyFlow::Known(k) = keys else {
        return Err("the keys reaching it are a mix of distributions or a subset".into());
    };
    let invalidating = matches!(
        c.cfg.strategy,
        CacheStrategy::CacheAside | CacheStrategy::ReadThrough
    );
    if writes > 0.0 && invalidating {
        return Err("writes drop entries; no formula with invalidations".into());
    }
    let ttl = c.cfg.ttl.map(|t| t.as_secs_f64());
    let (lru, lfu) = (
        c.cfg.eviction == Eviction::Lru,
        c.cfg.eviction == Eviction::Lfu,
    );
    match keys::hit_ratio(k, u64::from(c.cfg.capacity), lru, lfu, ttl, total) {
        HitRatio::Known(h, exact, formula) => Ok((h, exact && !c.cfg.coalesce, formula)),
        HitRatio::Unknown(why) => Err(why),
    }
}

/// Mean latency (seconds) of a source's successful requests: its call, plus failed attempts
/// and backoffs before the one that succeeds.
pub fn source_latency(graph: &Graph, sol: &Solution, i: usize) -> Option<f64> {
    let NodeModel::Source(s) = graph.nodes.get(i)? else {
        return None;
    };
    let [read, write] = sol.nodes.resp[i].as_ref().ok()?;
    let one = (1.0 - s.writes) * read.mean + s.writes * write.mean;
    let f = 1.0 - sol.attempt_ok[i];
    if s.attempts <= 1 || f <= 0.0 {
        return Some(one);
    }
    Some(one + failures_before_success(f, s.attempts) * (one + s.backoff_s))
}

/// Attempts that fail before the one that succeeds, on average over requests that succeed
/// within `m` attempts when each fails with `f`: Σ_{j<m} j f^j (1 − f) / (1 − f^m).
fn failures_before_success(f: f64, m: u32) -> f64 {
    // The sum term by term for the limits people write; past them the closed form
    // f (1 − m f^(m−1) + (m−1) f^m) / ((1 − f)(1 − f^m)), since `max_attempts` may be
    // 4,294,967,295 and a loop that long would hang `validate`.
    const SUMMED: u32 = 64;
    if f >= 1.0 {
        return 0.0;
    }
    if m > SUMMED {
        let m = f64::from(m);
        let tail = 1.0 - m * libm::pow(f, m - 1.0) + (m - 1.0) * libm::pow(f, m);
        return f * tail / ((1.0 - f) * (1.0 - libm::pow(f, m)));
    }
    let (mut weighted, mut total) = (0.0, 0.0);
    for j in 0..m {
        let p = libm::pow(f, f64::from(j)) * (1.0 - f);
        weighted += f64::from(j) * p;
        total += p;
    }
    if total > 0.0 { weighted / total } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::failures_before_success;

    /// The sum term by term, however long.
    fn summed(f: f64, m: u32) -> f64 {
        let (mut weighted, mut total) = (0.0, 0.0);
        for j in 0..m {
            let p = f.powi(j as i32) * (1.0 - f);
            weighted += f64::from(j) * p;
            total += p;
        }
        weighted / total
    }

    #[test]
    fn the_closed_form_for_long_retry_limits_matches_the_sum() {
        for f in [0.01, 0.3, 0.9, 0.999] {
            for m in [65, 100, 5_000] {
                let (got, want) = (failures_before_success(f, m), summed(f, m));
                assert!(
                    (got - want).abs() <= 1e-9 * want.max(1.0),
                    "f {f} m {m}: {got} vs {want}"
                );
            }
        }
        // Unlimited in effect: the geometric mean f / (1 − f), at once.
        let got = failures_before_success(0.5, u32::MAX);
        assert!((got - 1.0).abs() < 1e-12, "{got}");
        assert_eq!(failures_before_success(1.0, u32::MAX), 0.0);
    }
}
