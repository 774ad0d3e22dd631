//! Per-request traces: a deterministic sample of requests, and what happened to each one.
//!
//! A [`Tracer`] keeps at most `limit` requests: those whose hashed id ranks lowest among the
//! requests issued after warm-up (a bottom-k sample, uniform over the run and the same at any
//! thread count, and the same requests in every variant since ids are). A request that a lower
//! rank displaces is dropped whole, so memory is bounded by `limit` times [`MAX_RECORDS`],
//! never by the length of the run. Each kept request collects records in the order the
//! simulation produced them: its start and end (from its client), every message sent on its
//! behalf (reported by the kernel, see `sim::Vocabulary::sent`), the spans nodes did work for
//! it in (queue wait, service, backoff) and instants (timeouts, retries, hedges, cache hits).
//! [`crate::contract::trace_path`] turns them into spans, a critical path and a breakdown.

use crate::contract::call::{Cause, RequestId};
use crate::sim::rng::mix64;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{NodeId, Sent};
use std::collections::BTreeMap;

/// At most this many records per traced request; past it the trace is marked truncated (a
/// request that fans out to thousands of calls would otherwise grow without bound).
pub const MAX_RECORDS: usize = 1024;

/// What a message on a traced request's behalf was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// A call.
    Request {
        /// Its attempt tag (see `Request::attempt`).
        attempt: u32,
    },
    /// An answer: ok, or the cause of failure.
    Response(Result<(), Cause>),
}

/// What a node spent an interval doing for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// Waiting in a queue for a worker.
    Queue,
    /// Being served.
    Service,
    /// Waiting out a backoff before a retry.
    Backoff,
    /// Taken off its worker by a request of a higher class (preemptive-resume priority),
    /// waiting to resume: queueing, in the breakdown.
    Preempted,
}

impl SpanKind {
    /// Name used in results and reports.
    pub fn name(self) -> &'static str {
        match self {
            SpanKind::Queue => "queue",
            SpanKind::Service => "service",
            SpanKind::Backoff => "backoff",
            SpanKind::Preempted => "preempted",
        }
    }
}

/// Something that happened to a request at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// A call of it timed out.
    Timeout,
    /// It is tried again (after a backoff, if any).
    Retry,
    /// A second copy was sent (a hedge).
    Hedge,
    /// A cache answered it from memory.
    CacheHit,
    /// A cache had to load it.
    CacheMiss,
}

impl Mark {
    /// Name used in results and reports.
    pub fn name(self) -> &'static str {
        match self {
            Mark::Timeout => "timeout",
            Mark::Retry => "retry",
            Mark::Hedge => "hedge",
            Mark::CacheHit => "cache hit",
            Mark::CacheMiss => "cache miss",
        }
    }
}

/// One thing recorded for a traced request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// Its client (`node`) issued it `at`.
    Start {
        /// The client.
        node: NodeId,
        /// When.
        at: SimTime,
    },
    /// It ended at its client.
    End {
        /// When.
        at: SimTime,
        /// Ok, or the cause it failed with.
        result: Result<(), Cause>,
    },
    /// A message on its behalf.
    Send {
        /// Who sent it to whom, when it left and arrived.
        send: Sent,
        /// What it was.
        carried: Carried,
    },
    /// A node spent `[start, end)` on it.
    Span {
        /// The node.
        node: NodeId,
        /// Doing what.
        kind: SpanKind,
        /// From.
        start: SimTime,
        /// To.
        end: SimTime,
    },
    /// An instant at a node.
    Mark {
        /// The node.
        node: NodeId,
        /// When.
        at: SimTime,
        /// What happened.
        mark: Mark,
    },
}

/// The records of one traced request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestRecords {
    /// In the order the simulation produced them.
    pub records: Vec<Record>,
    /// Records were dropped past [`MAX_RECORDS`].
    pub truncated: bool,
}

/// The sample of traced requests of one run.
#[derive(Debug)]
pub struct Tracer {
    limit: usize,
    from: SimTime,
    /// Rank (hashed id) of every kept request, to find the highest when a lower one arrives.
    ranks: BTreeMap<(u64, RequestId), ()>,
    kept: BTreeMap<RequestId, RequestRecords>,
    /// The highest rank kept once the sample is full (`u64::MAX` until then): a record for a
    /// request ranked above it is dropped after one hash, without a search.
    cutoff: u64,
}

impl Tracer {
    /// Keep at most `limit` of the requests issued from `from` on.
    pub fn new(limit: usize, from: SimTime) -> Tracer {
        Tracer {
            limit,
            from,
            ranks: BTreeMap::new(),
            kept: BTreeMap::new(),
            cutoff: u64::MAX,
        }
    }

    /// The rank of a request in the sample: lower is kept first.
    fn rank(id: RequestId) -> u64 {
        mix64(id.0 ^ 0x7472_6163_6573_0001)
    }

    /// A client issued `id` at `at`: keep it if it ranks among the lowest `limit`.
    pub fn start(&mut self, id: RequestId, node: NodeId, at: SimTime) {
        if self.limit == 0 || at < self.from {
            return;
        }
        let rank = (Self::rank(id), id);
        if self.kept.len() >= self.limit {
            let Some((&highest, ())) = self.ranks.last_key_value() else {
                return;
            };
            if rank >= highest {
                return;
            }
            self.ranks.remove(&highest);
            self.kept.remove(&highest.1);
        }
        self.ranks.insert(rank, ());
        if self.kept.len() + 1 >= self.limit {
            self.cutoff = self.ranks.last_key_value().map_or(u64::MAX, |(r, ())| r.0);
        }
        let mut r = RequestRecords::default();
        r.records.push(Record::Start { node, at });
        self.kept.insert(id, r);
    }

    /// Add `record` to `id`'s trace, if it is kept.
    #[inline]
    pub fn record(&mut self, id: RequestId, record: Record) {
        if Self::rank(id) > self.cutoff {
            return;
        }
        if let Some(r) = self.kept.get_mut(&id) {
            if r.records.len() >= MAX_RECORDS {
                r.truncated = true;
                return;
            }
            r.records.push(record);
        }
    }

    /// `node` stopped serving `id` at `at` (preempted): its service span ends there.
    pub fn preempted(&mut self, id: RequestId, node: NodeId, at: SimTime) {
        if let Some(end) = self.last_service(id, node) {
            *end = at;
        }
    }

    /// `node` resumes serving `id` at `at` for `left`: the wait since it was preempted, then
    /// the rest of its service, so the pieces add up to the whole.
    pub fn resumed(&mut self, id: RequestId, node: NodeId, at: SimTime, left: SimDuration) {
        let Some(since) = self.last_service(id, node).map(|end| *end) else {
            return;
        };
        let waited = (since < at).then_some((SpanKind::Preempted, since, at));
        let served = (SpanKind::Service, at, at.after(left));
        for (kind, start, end) in waited.into_iter().chain([served]) {
            let span = Record::Span {
                node,
                kind,
                start,
                end,
            };
            self.record(id, span);
        }
    }

    /// The end of the last service span `node` recorded for `id`, if it is kept.
    fn last_service(&mut self, id: RequestId, node: NodeId) -> Option<&mut SimTime> {
        if Self::rank(id) > self.cutoff {
            return None;
        }
        let r = self.kept.get_mut(&id)?;
        r.records.iter_mut().rev().find_map(|rec| match rec {
            Record::Span {
                node: n,
                kind: SpanKind::Service,
                end,
                ..
            } if *n == node => Some(end),
            _ => None,
        })
    }

    /// The kept requests, by id (ids grow with issue order per client).
    pub fn into_kept(self) -> BTreeMap<RequestId, RequestRecords> {
        self.kept
    }

    /// How many requests the sample was asked for.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(t: Tracer) -> Vec<u64> {
        t.into_kept().keys().map(|id| id.0).collect()
    }

    #[test]
    fn the_sample_is_the_lowest_ranks_whatever_the_order_of_arrival() {
        let mut forward = Tracer::new(10, SimTime::ZERO);
        let mut backward = Tracer::new(10, SimTime::ZERO);
        for i in 0..1000 {
            forward.start(RequestId(i), NodeId(0), SimTime(i));
            backward.start(RequestId(999 - i), NodeId(0), SimTime(i));
        }
        let mut all: Vec<(u64, u64)> = (0..1000).map(|i| (Tracer::rank(RequestId(i)), i)).collect();
        all.sort_unstable();
        let mut lowest: Vec<u64> = all[..10].iter().map(|&(_, i)| i).collect();
        lowest.sort_unstable();
        assert_eq!(ids(forward), lowest);
        assert_eq!(ids(backward), lowest);
    }

    #[test]
    fn a_displaced_request_records_nothing_more_and_warm_up_is_not_sampled() {
        let mut t = Tracer::new(1, SimTime(5));
        t.start(RequestId(1), NodeId(0), SimTime(1));
        assert!(t.kept.is_empty(), "issued during warm-up");
        t.start(RequestId(1), NodeId(0), SimTime(5));
        t.start(RequestId(2), NodeId(0), SimTime(6));
        let keep = if Tracer::rank(RequestId(1)) < Tracer::rank(RequestId(2)) {
            1
        } else {
            2
        };
        let mark = Record::Mark {
            node: NodeId(0),
            at: SimTime(7),
            mark: Mark::Retry,
        };
        t.record(RequestId(1), mark);
        t.record(RequestId(2), mark);
        let kept = t.into_kept();
        assert_eq!(kept.keys().map(|i| i.0).collect::<Vec<_>>(), vec![keep]);
        assert_eq!(kept[&RequestId(keep)].records.len(), 2);
    }

    #[test]
    fn a_record_fits_the_memory_the_docs_promise() {
        // docs/scenario-format.md: at most 1,024 records, about 64 KB, per traced request.
        assert!(std::mem::size_of::<Record>() <= 64);
    }

    #[test]
    fn a_trace_is_cut_at_its_cap() {
        let mut t = Tracer::new(1, SimTime::ZERO);
        t.start(RequestId(1), NodeId(0), SimTime::ZERO);
        let mark = Record::Mark {
            node: NodeId(0),
            at: SimTime(1),
            mark: Mark::Hedge,
        };
        for _ in 0..MAX_RECORDS + 10 {
            t.record(RequestId(1), mark);
        }
        let r = &t.into_kept()[&RequestId(1)];
        assert_eq!(r.records.len(), MAX_RECORDS);
        assert!(r.truncated);
    }
}
