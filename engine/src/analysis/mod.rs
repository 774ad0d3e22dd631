//! The analytic model of a scenario: what queueing theory and availability algebra predict,
//! from the validated [`Model`] alone, without simulating.
//!
//! ```text
//!  Model ──graph.rs──▶ sources, stations, relays, caches, stores and the calls between them
//!        ──flow.rs───▶ arrival rates everywhere (splits, key shares, misses, fan-out, retries)
//!        ──stations.rs▶ per station: M/M/c, M/G/1, M/G/c, Erlang B or M/M/c/K; response times
//!        ──availability.rs▶ series / parallel / quorum over the fault timeline
//!        ──▶ results::Theory: each figure with `exact`, `approximate` (and why) or
//!            `not_applicable` (and why)
//! ```
//! `run` stores it beside the simulated numbers, `validate` and `run` name the stations that
//! cannot keep up (ρ ≥ 1), and `analyze` prints it alone. The model describes the steady
//! state without faults for latency and utilisation, and averages over the fault timeline
//! for availability.

pub mod availability;
pub mod connections;
pub mod deploy;
pub mod flow;
pub mod graph;
pub mod keys;
pub mod queueing;
pub mod stations;

use crate::results::{self, Accuracy, Estimate, HopTheory, StationTheory, Theory};
use crate::scenario::validate::Model;
use availability::{Fixed, fault_kinds, node_success, segments};
use flow::Solution;
use graph::NodeModel;
use std::collections::BTreeMap;

/// The analytic model of one validated variant.
pub fn analyze(model: &Model) -> Theory {
    let sol = flow::solve(model);
    if let Some(cycle) = &sol.cycle {
        let why = format!("the calls form a cycle ({cycle}): no flow solution");
        let none = || Estimate {
            value: None,
            accuracy: Accuracy::NotApplicable,
            why: why.clone(),
        };
        return Theory {
            latency_mean_ms: none(),
            availability: none(),
            throughput_rps: none(),
            stations: Vec::new(),
            hops: Vec::new(),
            notes: vec![why.clone()],
            deploys: Vec::new(),
        };
    }
    let (fails, delays) = fault_kinds(model);
    let stations = stations(&sol, fails || delays, overall_duty(model, &sol));
    let (availability, throughput) = availability_estimate(model, &sol);
    let mut notes: Vec<String> = overloaded(&stations);
    notes.extend(unreached(&sol));
    if fails || delays {
        notes.push(crate::results::FAULT_FREE_NOTE.to_string());
    }
    let deploys = deploy::deploys(model);
    let before = availability.value;
    let availability = with_deploys(availability, &deploys);
    let throughput = deployed_throughput(throughput, before, &availability);
    let latency_mean_ms = latency_estimate(model, &sol);
    let hops = if latency_mean_ms.value.is_some() {
        hops(model, &sol)
    } else {
        Vec::new()
    };
    Theory {
        latency_mean_ms,
        availability,
        throughput_rps: throughput,
        stations,
        hops,
        notes,
        deploys,
    }
}

/// Availability less the failures deploys cause (approximate, as their estimate is).
fn with_deploys(mut a: Estimate, deploys: &[results::DeployTheory]) -> Estimate {
    if deploys.is_empty() {
        return a;
    }
    let failed: Option<f64> = deploys.iter().map(|d| d.failed_fraction.value).sum();
    let why = "a deploy's new version fails weight × error rate × exposure time of the requests";
    match (a.value, failed) {
        (Some(v), Some(f)) => a.value = Some((v - f).max(0.0)),
        (Some(_), None) => {
            a.value = None;
            a.accuracy = Accuracy::NotApplicable;
            let crash_loop = deploys.iter().any(|d| {
                d.failed_fraction
                    .why
                    .starts_with(deploy::NO_FORMULA_CRASH_LOOP)
            });
            a.why = if crash_loop {
                "no formula for a crash-looping release's failures"
            } else {
                "no formula for a rolling update's failures"
            }
            .to_string();
            return a;
        }
        _ => return a,
    }
    a.accuracy = Accuracy::Approximate;
    a.why = if a.why.is_empty() {
        why.to_string()
    } else {
        format!("{}; {why}", a.why)
    };
    a
}

/// Successful throughput once a deploy's failures are taken from availability: scaled by the
/// same factor, with availability's accuracy and reason when a deploy changed it (a throughput
/// that ignored them read "exact" beside a simulated 14% less).
fn deployed_throughput(t: Estimate, before: Option<f64>, after: &Estimate) -> Estimate {
    if after.value == before {
        return t;
    }
    match (t.value, before, after.value) {
        (Some(ok), Some(b), Some(a)) if b > 0.0 => Estimate {
            value: Some(ok * a / b),
            accuracy: Accuracy::Approximate,
            why: after.why.clone(),
        },
        _ => Estimate {
            value: None,
            accuracy: Accuracy::NotApplicable,
            why: after.why.clone(),
        },
    }
}

/// A note naming the stations no modelled request reaches (fed by a node without a model).
fn unreached(sol: &Solution) -> Option<String> {
    let names: Vec<&str> = sol
        .nodes
        .station
        .iter()
        .enumerate()
        .filter(|(_, s)| s.as_ref().is_some_and(|s| s.arrival == 0.0))
        .map(|(i, _)| sol.graph.name(i))
        .collect();
    (!names.is_empty()).then(|| {
        format!(
            "no modelled request reaches {} (they are called by nodes without a model, or by no one)",
            names.join(", ")
        )
    })
}

/// One line per station that cannot keep up (offered load ρ ≥ 1), naming it and its ρ.
pub fn overloaded(stations: &[StationTheory]) -> Vec<String> {
    stations
        .iter()
        .filter(|s| s.offered_load >= 1.0 && s.accuracy != Accuracy::NotApplicable)
        .map(|s| {
            let capacity = s.arrival_rps / s.offered_load;
            let what = match s.wait_ms {
                None => "its queue is unbounded and grows without limit".to_string(),
                Some(_) => format!(
                    "it turns away {:.1}% of its requests (queue full)",
                    s.loss * 100.0
                ),
            };
            format!(
                "{} cannot keep up: ρ = {:.3} ({:.1} requests/s offered, capacity {:.1}/s); {what}",
                s.name, s.offered_load, s.arrival_rps, capacity
            )
        })
        .collect()
}

fn accuracy(exact: bool) -> Accuracy {
    if exact {
        Accuracy::Exact
    } else {
        Accuracy::Approximate
    }
}

/// Why station figures are approximate in a run with faults.
const FAULTY: &str = "faults change load and service while they last (the model is fault-free)";

/// The share of the measured period the sources are active, weighted by their rates, and
/// whether every source shares it (so that a station's average utilisation scales by it).
fn overall_duty(model: &Model, sol: &Solution) -> (f64, bool) {
    let list: Vec<(f64, f64)> = sources(sol)
        .iter()
        .map(|&(i, r)| (r, duty(model, sol, i)))
        .collect();
    let total: f64 = list.iter().map(|(r, _)| r).sum();
    if total == 0.0 {
        return (1.0, true);
    }
    let duty = list.iter().map(|(r, d)| r * d).sum::<f64>() / total;
    (duty, list.iter().all(|(_, d)| (d - duty).abs() < 1e-12))
}

fn stations(sol: &Solution, faults: bool, (duty, same_duty): (f64, bool)) -> Vec<StationTheory> {
    sol.nodes
        .station
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
        .filter(|(_, s)| s.arrival > 0.0)
        .map(|(i, s)| StationTheory {
            name: sol.graph.name(i).to_string(),
            group: sol.graph.names[i].1.clone(),
            model: s.model.clone(),
            arrival_rps: s.arrival,
            servers: s.c,
            service_ms: s.holding.mean * 1e3,
            offered_load: s.offered_load,
            // Averaged over the measured period, idle once the sources stop.
            utilisation: s.utilisation * duty,
            utilisation_accuracy: match s.unknown {
                Some(_) => Accuracy::NotApplicable,
                None => accuracy(s.utilisation_exact && !faults && same_duty),
            },
            wait_ms: s.wait.map(|w| w * 1e3),
            loss: s.loss,
            accuracy: match s.unknown {
                Some(_) => Accuracy::NotApplicable,
                None => accuracy(s.exact && !faults),
            },
            why: match &s.unknown {
                Some(why) => why.clone(),
                None => {
                    let mut why = dedup(&s.why);
                    if faults {
                        why.push(FAULTY.to_string());
                    }
                    why.join("; ")
                }
            },
        })
        .collect()
}

fn dedup_str(lines: Vec<&'static str>) -> Vec<&'static str> {
    let mut out = Vec::new();
    for l in lines {
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

fn dedup(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        if !out.contains(l) {
            out.push(l.clone());
        }
    }
    out
}

/// The share of the measured period a source is issuing requests: 1, unless `max_requests`
/// stops it early.
fn duty(model: &Model, sol: &Solution, i: usize) -> f64 {
    let NodeModel::Source(s) = &sol.graph.nodes[i] else {
        return 1.0;
    };
    let (Some(max), Some(rate)) = (s.max_requests, s.rate) else {
        return 1.0;
    };
    let (from, to) = (
        model.measure_from.as_secs_f64(),
        model.arrivals_end.as_secs_f64(),
    );
    let stop = max as f64 / rate;
    ((stop.min(to) - from) / (to - from)).clamp(0.0, 1.0)
}

/// The sources: (node, requests issued per second), in node order.
fn sources(sol: &Solution) -> Vec<(usize, f64)> {
    (0..sol.graph.nodes.len())
        .filter(|&i| matches!(sol.graph.nodes[i], NodeModel::Source(_)))
        .map(|i| (i, sol.issued[i]))
        .filter(|(_, r)| *r > 0.0)
        .collect()
}

fn latency_estimate(model: &Model, sol: &Solution) -> Estimate {
    let mut total = 0.0;
    let mut weight = 0.0;
    let mut why: Vec<String> = Vec::new();
    let mut exact = true;
    for (i, rate) in sources(sol) {
        if let Err(e) = &sol.nodes.resp[i] {
            return not_applicable(e.clone());
        }
        let Some(latency) = stations::source_latency(&sol.graph, sol, i) else {
            continue;
        };
        let w = rate * sol.attempt_ok[i];
        total += w * latency;
        weight += w;
        exact &= sol.nodes.exact[i];
        for n in reached(sol, i) {
            why.extend(sol.nodes.why[n].iter().cloned());
        }
        if let NodeModel::Source(s) = &sol.graph.nodes[i]
            && libm::exp(-s.timeout / latency.max(1e-12)) > 1e-4
        {
            exact = false;
            why.push(format!(
                "the {} s timeout of {} cuts the latency tail",
                s.timeout,
                sol.graph.name(i)
            ));
        }
    }
    if weight == 0.0 {
        return not_applicable(no_sources(sol));
    }
    let (fails, delays) = fault_kinds(model);
    if fails || delays {
        exact = false;
        why.push("faults change latency while they last (the model is fault-free)".into());
    }
    let net = stations::Net::with_connections(model, &sol.graph, &sol.flow);
    if !net.setups().is_empty() {
        let (setups_exact, lines) = connections::notes(&sol.graph, net.setups());
        exact &= setups_exact;
        why.extend(lines);
        if fails {
            exact = false;
            why.push(
                "a restart drops every connection to the node, and their callers reconnect at once \
                 (a reconnect storm, queueing at the handshake cores): not in the model"
                    .to_string(),
            );
        }
    }
    let why = dedup(&why);
    Estimate {
        value: Some(total / weight * 1e3),
        accuracy: accuracy(exact && why.is_empty()),
        why: why.join("; "),
    }
}

/// `i` and every node its requests reach.
fn reached(sol: &Solution, i: usize) -> Vec<usize> {
    let mut seen = vec![false; sol.graph.nodes.len()];
    let mut stack = vec![i];
    let mut out = Vec::new();
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        out.push(n);
        stack.extend(sol.graph.callees(n));
    }
    out.sort_unstable();
    out
}

/// The first node on `i`'s paths whose success has no formula, and why.
fn unmodelled_on_path(sol: &Solution, i: usize) -> String {
    for n in reached(sol, i) {
        let group = &sol.graph.names[n].1;
        match &sol.graph.nodes[n] {
            NodeModel::Opaque(why) => return format!("{group}: {why}"),
            NodeModel::Cache(_) if sol.nodes.hit[n].is_none() => {
                return format!("{group}'s hit ratio has no formula");
            }
            _ => {}
        }
    }
    "a node on the way has no availability model".to_string()
}

/// Why no modelled node issues requests: the first node without a model, if there is one.
fn no_sources(sol: &Solution) -> String {
    sol.graph
        .nodes
        .iter()
        .enumerate()
        .find_map(|(i, n)| match n {
            NodeModel::Opaque(why) => Some(format!("{}: {why}", sol.graph.names[i].1)),
            _ => None,
        })
        .unwrap_or_else(|| "no requests are issued".to_string())
}

fn not_applicable(why: String) -> Estimate {
    Estimate {
        value: None,
        accuracy: Accuracy::NotApplicable,
        why,
    }
}

/// Availability over the measured period, and the throughput it gives.
fn availability_estimate(model: &Model, sol: &Solution) -> (Estimate, Estimate) {
    let callees_first: Vec<usize> = sol.order.iter().rev().copied().collect();
    let fixed = Fixed {
        graph: &sol.graph,
        model,
        admit: &sol.nodes.admit,
        hit: &sol.nodes.hit,
    };
    let segs = segments(model);
    let span: f64 = segs.iter().map(|(a, b, _)| b - a).sum();
    let (mut ok_rate, mut issued) = (0.0, 0.0);
    for (i, rate) in sources(sol) {
        let NodeModel::Source(s) = &sol.graph.nodes[i] else {
            continue;
        };
        let mut a = 0.0;
        for (start, end, moment) in &segs {
            let ok = node_success(&fixed, moment, &callees_first);
            let call = |op| availability::call(&fixed, moment, &ok, i, &s.target, op);
            let (Some(read), Some(write)) = (call(0), call(1)) else {
                let why = unmodelled_on_path(sol, i);
                return (not_applicable(why.clone()), not_applicable(why));
            };
            let attempt = (1.0 - s.writes) * read + s.writes * write;
            a += (end - start) / span * with_retries(attempt, sol.attempt_ok[i], s.attempts);
        }
        ok_rate += rate * a * duty(model, sol, i);
        issued += rate * duty(model, sol, i);
    }
    if issued == 0.0 {
        let why = no_sources(sol);
        return (not_applicable(why.clone()), not_applicable(why));
    }
    let (fails, delays) = fault_kinds(model);
    let lossless = sol
        .nodes
        .station
        .iter()
        .flatten()
        .all(|s| s.exact || s.loss < 1e-9);
    let guarded = sol
        .graph
        .nodes
        .iter()
        .any(|n| matches!(n, NodeModel::Relay(r) if r.guarded));
    let mut why = Vec::new();
    if fails {
        why.push("requests in flight when a node fails, and failover and election times, are not counted");
    }
    if delays {
        why.push("slowdowns, pauses and latency spikes fail requests only through timeouts, which the formula does not count");
    }
    if fails && guarded {
        why.push("health checks and breakers are taken as never removing a backend");
    }
    if !lossless {
        why.push("queue losses come from approximate formulas");
    }
    for n in &sol.graph.nodes {
        match n {
            NodeModel::Relay(r) if r.rate_limit.is_some() || r.bulkhead.is_some() => {
                why.push("rate limits and bulkheads are taken at their long-run admission");
            }
            NodeModel::Source(s) if !s.poisson => {
                why.push("arrivals that are not Poisson (bursts, even spacing, closed loops) lose differently");
            }
            _ => {}
        }
    }
    let why = dedup_str(why);
    let exact = why.is_empty();
    let why = why.join("; ");
    let closed = sol
        .graph
        .nodes
        .iter()
        .any(|n| matches!(n, NodeModel::Source(s) if s.closed.is_some()));
    let a = ok_rate / issued;
    (
        Estimate {
            value: Some(a),
            accuracy: accuracy(exact),
            why: why.clone(),
        },
        Estimate {
            value: Some(ok_rate),
            accuracy: accuracy(exact && !closed),
            why: if closed {
                "closed-loop throughput solved approximately".to_string()
            } else {
                why
            },
        },
    )
}

/// A request's success with up to `m` attempts: outages (what fails beyond the fault-free
/// attempt success `calm`) hit every attempt alike; independent losses are retried.
fn with_retries(attempt: f64, calm: f64, m: u32) -> f64 {
    if m <= 1 || calm <= 0.0 {
        return attempt;
    }
    let structural = (attempt / calm).min(1.0);
    structural * (1.0 - libm::pow(1.0 - calm, f64::from(m)))
}

/// Mean time per request at each group of nodes and on each link between groups.
fn hops(model: &Model, sol: &Solution) -> Vec<HopTheory> {
    let issued: f64 = sources(sol).iter().map(|(_, r)| r).sum();
    if issued == 0.0 {
        return Vec::new();
    }
    let net = stations::Net::with_connections(model, &sol.graph, &sol.flow);
    let mut order: Vec<String> = Vec::new();
    let mut by_hop: BTreeMap<String, HopTheory> = BTreeMap::new();
    let mut add = |hop: String, visits: f64, network: f64, wait: f64, service: f64| {
        if !order.contains(&hop) {
            order.push(hop.clone());
        }
        let h = by_hop.entry(hop.clone()).or_insert(HopTheory {
            hop,
            visits: 0.0,
            network_ms: 0.0,
            wait_ms: 0.0,
            service_ms: 0.0,
        });
        h.visits += visits;
        h.network_ms += network * 1e3;
        h.wait_ms += wait * 1e3;
        h.service_ms += service * 1e3;
    };
    for &i in &sol.order {
        let group = &sol.graph.names[i].1;
        let rate = sol.flow.rate[i][0] + sol.flow.rate[i][1];
        for (&(a, b), &calls) in sol.flow.edges.range((i, 0)..(i + 1, 0)) {
            if calls == 0.0 {
                continue;
            }
            // Openings of connections add their handshakes to the hop's network time.
            let setup = net.setup(a, b).map_or(0.0, |s| s.added().mean);
            let transit = net.link(a, b).mean + net.link(b, a).mean + setup;
            let hop = format!("{group} -> {}", sol.graph.names[b].1);
            add(hop, calls / issued, calls * transit / issued, 0.0, 0.0);
        }
        let admitted = rate * sol.nodes.admit[i];
        if rate == 0.0 {
            continue;
        }
        match &sol.graph.nodes[i] {
            NodeModel::Station(_) => {
                if let Some(s) = &sol.nodes.station[i] {
                    let wait = admitted * s.wait.unwrap_or(0.0) / issued;
                    add(
                        group.clone(),
                        rate / issued,
                        0.0,
                        wait,
                        admitted * s.local.mean / issued,
                    );
                }
            }
            NodeModel::Cache(c) => {
                let h = sol.nodes.hit[i].unwrap_or(0.0);
                let t = c.cfg.hit_time.as_secs_f64();
                let [r, w] = sol.flow.rate[i];
                let writes = if graph::writes_through(c.cfg.strategy) {
                    2.0
                } else {
                    1.0
                };
                let time = r * t * (2.0 - h) + w * t * writes;
                add(group.clone(), rate / issued, 0.0, 0.0, time / issued);
            }
            NodeModel::Relay(_)
            | NodeModel::Source(_)
            | NodeModel::Store(_)
            | NodeModel::Opaque(_) => {}
        }
    }
    order
        .into_iter()
        .filter_map(|h| by_hop.remove(&h))
        .collect()
}

#[cfg(test)]
mod tests;
