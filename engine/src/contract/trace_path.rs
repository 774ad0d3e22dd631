//! From a traced request's records to what a reader sees: its messages, spans and marks by
//! node name, its critical path, and the latency breakdown of a whole sample.
//!
//! The critical path is found by walking back from the end: at a node at time `t`, the last
//! message for the request that arrived there by `t` (and was sent before what the node did
//! at `t`) is what the node was waiting for; the time between that arrival and `t` is the
//! node's own (queue, service, backoff as its spans say), the message's flight is network
//! time, and the walk continues at its sender when it sent it. Every step covers the interval
//! between two instants of the walk, so the segments partition `[issued, ended]` and add up
//! to the latency exactly. Time on the far side of an error answer (an attempt that failed and
//! was retried) and time waiting for a timeout is `retry`.

use crate::contract::call::{Cause, RequestId};
use crate::contract::trace::{Carried, Record, RequestRecords, SpanKind};
use crate::results::{
    BreakdownRow, PathSegment, TraceMark, TraceMessage, TraceSpan, TracedRequest, Traces,
};
use crate::sim::time::SimTime;
use crate::sim::{NodeId, Sent};
use std::collections::BTreeMap;

/// The stages of a critical path, in report order.
pub const STAGES: [&str; 5] = ["network", "queue", "service", "retry", "other"];

/// The sample of one run as results: each request's trace and the breakdown of them all.
pub fn traces(asked: usize, kept: BTreeMap<RequestId, RequestRecords>, names: &[String]) -> Traces {
    let mut requests: Vec<TracedRequest> = kept
        .into_iter()
        .map(|(id, r)| traced(id, &r, names))
        .collect();
    requests.sort_by_key(|r| (r.issued_ns, r.id));
    let breakdown = breakdown(&requests);
    Traces {
        asked: asked as u64,
        sequence: crate::results::DEFAULT_SEQUENCE,
        requests,
        breakdown,
    }
}

fn outcome(result: Result<(), Cause>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(c) => c.name().to_string(),
    }
}

/// One request's records as results.
fn traced(id: RequestId, r: &RequestRecords, names: &[String]) -> TracedRequest {
    let name = |n: NodeId| {
        names
            .get(n.idx())
            .cloned()
            .unwrap_or_else(|| format!("#{}", n.0))
    };
    let mut out = TracedRequest {
        id: id.0,
        client: String::new(),
        issued_ns: 0,
        ended_ns: None,
        outcome: "unfinished".to_string(),
        messages: Vec::new(),
        spans: Vec::new(),
        marks: Vec::new(),
        path: Vec::new(),
        truncated: r.truncated,
    };
    for rec in &r.records {
        match *rec {
            Record::Start { node, at } => {
                out.client = name(node);
                out.issued_ns = at.0;
            }
            Record::End { at, result } => {
                out.ended_ns = Some(at.0);
                out.outcome = outcome(result);
            }
            Record::Send { send, carried } => out.messages.push(TraceMessage {
                from: name(send.from),
                to: name(send.to),
                what: match carried {
                    Carried::Request { attempt } => format!("request (attempt {attempt:08x})"),
                    Carried::Response(result) => outcome(result),
                },
                sent_ns: send.at.0,
                departs_ns: send.departs.0,
                arrives_ns: send.arrives.map(|a| a.0),
            }),
            Record::Span {
                node,
                kind,
                start,
                end,
            } => out.spans.push(TraceSpan {
                node: name(node),
                kind: kind.name().to_string(),
                start_ns: start.0,
                end_ns: end.0,
            }),
            Record::Mark { node, at, mark } => out.marks.push(TraceMark {
                node: name(node),
                what: mark.name().to_string(),
                at_ns: at.0,
            }),
        }
    }
    out.path = critical_path(&r.records)
        .into_iter()
        .map(|s| PathSegment {
            hop: match s.hop {
                Hop::Node(n) => name(n),
                Hop::Link(a, b) => format!("{} -> {}", name(a), name(b)),
            },
            stage: s.stage.to_string(),
            start_ns: s.start.0,
            end_ns: s.end.0,
        })
        .collect();
    out
}

/// Where a segment of the path was spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    Node(NodeId),
    Link(NodeId, NodeId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    hop: Hop,
    stage: &'static str,
    start: SimTime,
    end: SimTime,
}

/// The critical path of a request that ended, as contiguous segments from issue to end
/// (empty if it did not end).
fn critical_path(records: &[Record]) -> Vec<Segment> {
    let Some(&Record::Start {
        node: client,
        at: issued,
    }) = records.first()
    else {
        return Vec::new();
    };
    let Some((end_idx, ended)) = records.iter().enumerate().find_map(|(i, r)| match r {
        Record::End { at, .. } => Some((i, *at)),
        _ => None,
    }) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let (mut node, mut t, mut before) = (client, ended, end_idx);
    // The node that received an error answer: until the walk is back there, the time is lost.
    let mut failed_at: Option<NodeId> = None;
    while let Some((idx, send, arrived)) = last_arrival(records, node, t, before) {
        let lost = failed_at.is_some();
        local(records, node, (arrived, t), lost, &mut out);
        push(
            &mut out,
            Hop::Link(send.from, node),
            stage_or(lost, "network"),
            send.departs,
            arrived,
        );
        if matches!(
            records[idx],
            Record::Send {
                carried: Carried::Response(Err(_)),
                ..
            }
        ) && failed_at.is_none()
        {
            failed_at = Some(node);
        }
        if failed_at == Some(send.from) {
            failed_at = None;
        }
        let lost = failed_at.is_some();
        // The sender's own delay before the message left (a cache lookup, a handshake).
        push(
            &mut out,
            Hop::Node(send.from),
            stage_or(lost, "service"),
            send.at,
            send.departs,
        );
        (node, t, before) = (send.from, send.at, idx);
    }
    // Back at the client (or at a node whose work began without a message: `other`).
    let start = if node == client { issued } else { t };
    local(records, node, (start, t), failed_at.is_some(), &mut out);
    if start > issued {
        push(&mut out, Hop::Node(client), "other", issued, start);
    }
    out.reverse();
    out
}

fn stage_or(lost: bool, stage: &'static str) -> &'static str {
    if lost { "retry" } else { stage }
}

/// Push a segment (walking backwards), skipping empty ones.
fn push(out: &mut Vec<Segment>, hop: Hop, stage: &'static str, start: SimTime, end: SimTime) {
    if end > start {
        out.push(Segment {
            hop,
            stage,
            start,
            end,
        });
    }
}

/// The last message for the request to arrive at `node` by `t`, among those sent before
/// record `before`: (its record index, the send, its arrival).
fn last_arrival(
    records: &[Record],
    node: NodeId,
    t: SimTime,
    before: usize,
) -> Option<(usize, Sent, SimTime)> {
    records[..before]
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match *r {
            Record::Send { send, .. } if send.to == node => {
                send.arrives.filter(|&a| a <= t).map(|a| (i, send, a))
            }
            _ => None,
        })
        .max_by_key(|&(i, _, a)| (a, i))
}

/// Segments for `node`'s own time in `[start, end]` (walking backwards): its spans where they
/// cover it (service before queue before backoff), the rest `retry` if a timeout, retry or
/// hedge happened there meanwhile, `other` if not.
fn local(
    records: &[Record],
    node: NodeId,
    (start, end): (SimTime, SimTime),
    lost: bool,
    out: &mut Vec<Segment>,
) {
    if end <= start {
        return;
    }
    let spans: Vec<(SpanKind, SimTime, SimTime)> = records
        .iter()
        .filter_map(|r| match *r {
            Record::Span {
                node: n,
                kind,
                start: s,
                end: e,
            } if n == node && e > start && s < end => Some((kind, s.max(start), e.min(end))),
            _ => None,
        })
        .collect();
    let waited_on_failure = records.iter().any(
        |r| matches!(*r, Record::Mark { node: n, at, .. } if n == node && at > start && at <= end),
    );
    let uncovered = if lost || waited_on_failure {
        "retry"
    } else {
        "other"
    };
    let mut cuts: Vec<SimTime> = spans.iter().flat_map(|&(_, s, e)| [s, e]).collect();
    cuts.extend([start, end]);
    cuts.sort_unstable();
    cuts.dedup();
    for w in cuts.windows(2).rev() {
        let (a, b) = (w[0], w[1]);
        let covering = [
            SpanKind::Service,
            SpanKind::Queue,
            SpanKind::Preempted,
            SpanKind::Backoff,
        ]
        .into_iter()
        .find(|k| {
            spans
                .iter()
                .any(|&(kind, s, e)| kind == *k && s <= a && e >= b)
        });
        let stage = match covering {
            _ if lost => "retry",
            Some(SpanKind::Service) => "service",
            Some(SpanKind::Queue | SpanKind::Preempted) => "queue",
            Some(SpanKind::Backoff) => "retry",
            None => uncovered,
        };
        match out.last_mut() {
            Some(last) if last.hop == Hop::Node(node) && last.stage == stage && last.start == b => {
                last.start = a;
            }
            _ => push(out, Hop::Node(node), stage, a, b),
        }
    }
}

/// The breakdown of the sampled successful requests: the group around the median (p50) and
/// the slowest 1% (p99), by stage over all hops and by hop.
fn breakdown(requests: &[TracedRequest]) -> Vec<BreakdownRow> {
    let mut ok: Vec<(u64, &TracedRequest)> = requests
        .iter()
        .filter(|r| r.outcome == "ok" && !r.truncated && !r.path.is_empty())
        .filter_map(|r| r.ended_ns.map(|e| (e - r.issued_ns, r)))
        .collect();
    if ok.is_empty() {
        return Vec::new();
    }
    ok.sort_by_key(|&(latency, r)| (latency, r.id));
    let n = ok.len();
    let p50 = &ok[(n * 45 / 100).min(n - 1)..(n * 55).div_ceil(100).max(n * 45 / 100 + 1).min(n)];
    let p99 = &ok[(n * 99 / 100).min(n - 1)..];
    let mut rows = group_rows("p50", p50);
    rows.extend(group_rows("p99", p99));
    rows
}

fn group_rows(group: &str, members: &[(u64, &TracedRequest)]) -> Vec<BreakdownRow> {
    let total: u64 = members.iter().map(|&(l, _)| l).sum();
    let mut by_stage = [0u64; STAGES.len()];
    let mut by_hop: BTreeMap<(String, usize), u64> = BTreeMap::new();
    for (_, r) in members {
        for s in &r.path {
            let k = STAGES
                .iter()
                .position(|x| *x == s.stage)
                .unwrap_or(STAGES.len() - 1);
            by_stage[k] += s.end_ns - s.start_ns;
            *by_hop.entry((s.hop.clone(), k)).or_default() += s.end_ns - s.start_ns;
        }
    }
    let count = members.len() as u64;
    let row = |hop: &str, k: usize, ns: u64| BreakdownRow {
        group: group.to_string(),
        requests: count,
        hop: hop.to_string(),
        stage: STAGES[k].to_string(),
        mean_ms: ns as f64 / count as f64 / 1e6,
        share_pct: if total == 0 {
            0.0
        } else {
            100.0 * ns as f64 / total as f64
        },
    };
    let mut rows: Vec<BreakdownRow> = by_stage
        .iter()
        .enumerate()
        .map(|(k, &ns)| row("all", k, ns))
        .collect();
    rows.extend(by_hop.into_iter().map(|((hop, k), ns)| row(&hop, k, ns)));
    rows
}
