//! Warnings: runs that are valid but whose numbers mislead (nothing issues requests, a fault
//! falls after the end, a client never sent, clients were down). Printed by `run`, listed in
//! `results.json` and in `summary.md`.
//!
//! Availability is successful requests over requests issued, so requests a crashed client
//! never issued are invisible to it: a run whose clients were down says so here, with the
//! availability it would otherwise quietly report.

use crate::components::NodeConfig;
use crate::results::VariantResult;
use crate::scenario::Variant;
use crate::sim::FaultAction;
use crate::sim::NodeId;
use crate::sim::time::{SimDuration, SimTime};

/// Does this node issue requests of its own (so the run has something to measure)?
fn is_client(cfg: &NodeConfig) -> bool {
    matches!(
        cfg,
        NodeConfig::Client(_) | NodeConfig::KvClient(_) | NodeConfig::TxnClient(_)
    )
}

/// Every warning about one variant's run.
pub fn of_variant(v: &Variant, seed: u64, result: &VariantResult) -> Vec<String> {
    let m = &v.model;
    let mut out = Vec::new();
    let nodes = &m.spec.nodes;
    let plugin = nodes.values().any(|c| matches!(c, NodeConfig::Plugin(_)));
    if !plugin && !nodes.values().any(is_client) {
        out.push(
            "the scenario declares no client (Client, KvClient or TxnClient): nothing issues \
             requests, so there is nothing to measure"
                .to_string(),
        );
    }
    for (i, f) in m.spec.faults.iter().enumerate() {
        let (at, _) = f.timing();
        if at >= m.spec.duration {
            out.push(format!(
                "faults[{i}] starts at {at}, not before the end of `duration` ({}): it changes \
                 nothing that is measured",
                m.spec.duration
            ));
        }
    }
    let clients = nodes.iter().filter(|(_, c)| is_client(c)).map(|(n, _)| n);
    for name in clients {
        let issued = result.components.get(name).and_then(|c| c.get("issued"));
        if issued == Some(&0.0) {
            out.push(format!("client \"{name}\" issued no request in the run"));
        }
    }
    if result.unfinished > 0 {
        out.push(format!(
            "{} requests were still in flight when the run ended, an hour after `duration`: \
             the drain lasts the longest client timeout ({:.0} h) but at most an hour, so their \
             outcome is unknown and they are left out of every number",
            result.unfinished,
            m.longest_timeout.as_secs_f64() / 3600.0,
        ));
    }
    let down = clients_down(v, seed);
    if !down.is_empty() {
        let each: Vec<String> = down.iter().map(|(n, d)| format!("\"{n}\" {d}")).collect();
        out.push(format!(
            "clients were down during the measured {}: {}; requests they would have issued \
             then were never issued, so availability ({:.3}%) counts only the time they were up",
            m.arrivals_end.since(m.measure_from),
            each.join(", "),
            result.availability * 100.0
        ));
    }
    out
}

/// Each client that was crashed or paused within the measured span, and for how long.
pub fn clients_down(v: &Variant, seed: u64) -> Vec<(String, SimDuration)> {
    let m = &v.model;
    let (faults, _) = m.fault_schedule(seed);
    let (from, to) = (m.measure_from, m.arrivals_end);
    let mut down = Vec::new();
    for (id, (name, _)) in m.names.nodes.iter().enumerate() {
        let decl = m.decl_of[id];
        let Some((_, cfg)) = m.spec.nodes.get_index(decl) else {
            continue;
        };
        if !is_client(cfg) {
            continue;
        }
        let me = NodeId(id as u32);
        let spans = faults.iter().filter_map(|f| {
            let hits = match &f.action {
                FaultAction::Crash(n) | FaultAction::CrashKeepState(n) | FaultAction::Pause(n) => {
                    n.contains(&me)
                }
                _ => false,
            };
            hits.then(|| (f.at.max(from), f.until.unwrap_or(to).min(to)))
        });
        let total = union_length(spans.filter(|(a, b)| a < b).collect());
        if total > SimDuration::ZERO {
            down.push((name.clone(), total));
        }
    }
    down
}

/// Total length of the union of `[a, b)` spans.
fn union_length(mut spans: Vec<(SimTime, SimTime)>) -> SimDuration {
    spans.sort();
    let mut total = 0u64;
    let mut reach = SimTime::ZERO;
    for (a, b) in spans {
        let a = a.max(reach);
        if b > a {
            total += b.since(a).0;
            reach = b;
        }
    }
    SimDuration(total)
}

/// Each variant's warnings merged: a warning every variant has once, others prefixed with the
/// variants that have it.
pub fn merge(per_variant: &[(String, Vec<String>)]) -> Vec<String> {
    let mut seen: Vec<(String, Vec<&str>)> = Vec::new();
    for (variant, warnings) in per_variant {
        for w in warnings {
            match seen.iter_mut().find(|(s, _)| s == w) {
                Some((_, names)) => names.push(variant),
                None => seen.push((w.clone(), vec![variant])),
            }
        }
    }
    seen.into_iter()
        .map(|(w, names)| {
            if names.len() == per_variant.len() {
                w
            } else {
                format!("variant \"{}\": {w}", names.join("\", \""))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_spans_count_once() {
        let t = |s: u64| SimTime(s * 1_000_000_000);
        let spans = vec![(t(1), t(3)), (t(2), t(4)), (t(6), t(7))];
        assert_eq!(union_length(spans), SimDuration::from_secs(4));
        assert_eq!(union_length(Vec::new()), SimDuration::ZERO);
    }

    #[test]
    fn shared_warnings_are_said_once_and_others_name_their_variants() {
        let w = |v: &str, ws: &[&str]| (v.to_string(), ws.iter().map(|s| s.to_string()).collect());
        let merged = merge(&[w("a", &["x", "y"]), w("b", &["x"])]);
        assert_eq!(merged, ["x", "variant \"a\": y"]);
    }
}
