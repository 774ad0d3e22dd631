//! `History`: the run-wide observer of a key-value workload. Clients record every operation,
//! replicated stores report what they hold at the end, and at the end of the run it checks the
//! history for linearizability and measures stale reads and lost acknowledged writes against
//! the ground truth it saw.
//!
//! Definitions (each write writes a value no other write writes, so a read names its write):
//! - a read is *stale* if some write S was acknowledged before the read was invoked, and the
//!   write whose value the read returned had completed before S was invoked (or the read
//!   returned the initial value): S should have been visible. Its *staleness age* is the time
//!   from the first such S's acknowledgement to the read's invocation.
//! - an acknowledged write S is *lost* if the value the store holds at the end (the newest
//!   version across its replicas) comes from a write that completed before S was invoked (or is
//!   the initial value): S was acknowledged, then overwritten by the past.
//!
//! The history is the one per-operation record in a run, so it is bounded (`max_ops`): once
//! full, it keeps only the writes invoked before it filled (reads may name them), and every
//! measure covers the operations invoked before that instant; the counters say so.

use super::linearizability::{self, Bounds, Kind, Operation, Report};
use crate::contract::build::Observer;
use crate::contract::metrics::NodeStats;
use crate::results::{EventRecord, Verdict};
use crate::sim::time::SimTime;
use std::collections::{BTreeMap, BTreeSet};

/// The term of entry `index` in a log of `last` entries whose runs of one term start at
/// `starts` ((first index, term), ascending): 0 for index 0, `None` beyond the log.
pub fn term_at(starts: &[(u64, u32)], last: u64, index: u64) -> Option<u32> {
    if index > last {
        return None;
    }
    let run = starts.partition_point(|&(start, _)| start <= index);
    Some(if run == 0 { 0 } else { starts[run - 1].1 })
}

/// Default bound on recorded operations.
pub const DEFAULT_MAX_OPS: usize = 200_000;
/// Violations described in full as state changes (the rest are counted).
const MAX_WINDOWS_SHOWN: usize = 3;
/// Operations shown per violation window.
const MAX_OPS_SHOWN: usize = 12;

/// Per key, the newest (version, value) a store's replicas hold at the end.
pub type Finals = BTreeMap<u64, ((u64, u64), u64)>;

/// A log's runs of one term: (first index, term), ascending.
type TermRuns = Vec<(u64, u32)>;

/// The run-wide operation history of a key-value workload.
#[derive(Debug)]
pub struct History {
    ops: Vec<Operation>,
    max_ops: usize,
    full_at: Option<u64>,
    dropped: u64,
    /// Of the dropped operations: reads that completed, and acknowledged writes.
    dropped_reads: u64,
    dropped_acked_writes: u64,
    /// Keys with operations dropped past the bound: their verdicts cover only a prefix.
    dropped_keys: BTreeSet<u64>,
    failed: u64,
    bounds: Bounds,
    /// Per key, the newest (version, value) any replica reported holding at the end.
    finals: Option<Finals>,
    /// Acknowledged writes by value: (invoke, acknowledgement) (ns), to judge overwrites.
    acked: BTreeMap<u64, (u64, u64)>,
    /// Acknowledged writes a replica replaced with a write that completed before they began.
    overwritten_by_past: BTreeSet<u64>,
    /// Leader/follower stores: the most up-to-date replica's whole state, by its version.
    replica_state: Option<((u64, u64), Finals)>,
    /// Leader/follower stores: writes a leader acknowledged, by value: (log index, term).
    leader_acked: BTreeMap<u64, (u64, u32)>,
    /// The most up-to-date replica's log: its version and runs of terms (first index, term).
    replica_log: Option<((u64, u64), TermRuns)>,
}

impl History {
    /// An empty history keeping at most `max_ops` operations.
    pub fn new(max_ops: usize) -> History {
        History {
            ops: Vec::new(),
            max_ops,
            full_at: None,
            dropped: 0,
            dropped_reads: 0,
            dropped_acked_writes: 0,
            dropped_keys: BTreeSet::new(),
            failed: 0,
            bounds: Bounds::default(),
            finals: None,
            acked: BTreeMap::new(),
            overwritten_by_past: BTreeSet::new(),
            replica_state: None,
            leader_acked: BTreeMap::new(),
            replica_log: None,
        }
    }

    /// A leader acknowledged the write of `value` as its log entry (`index`, `term`).
    pub fn leader_acked(&mut self, value: u64, index: u64, term: u32) {
        if self.full_at.is_none() {
            self.leader_acked.insert(value, (index, term));
        }
    }

    /// A leader/follower replica's log at the end: `version` = (last term, last index), and
    /// the runs of its terms. An acknowledged write whose entry (index, term) is not in the
    /// most up-to-date replica's log is lost, whatever was written to its key since.
    pub fn replica_log(&mut self, version: (u64, u64), term_starts: &[(u64, u32)]) {
        if self
            .replica_log
            .as_ref()
            .is_some_and(|(v, _)| *v >= version)
        {
            return;
        }
        self.replica_log = Some((version, term_starts.to_vec()));
    }

    /// Acknowledged writes whose log entries the final (most up-to-date) log lacks.
    fn lost_from_log(&self) -> BTreeSet<u64> {
        let Some(((_, last), starts)) = &self.replica_log else {
            return BTreeSet::new();
        };
        self.leader_acked
            .iter()
            .filter(|(value, _)| self.acked.contains_key(value))
            .filter(|&(_, &(index, term))| term_at(starts, *last, index) != Some(term))
            .map(|(&value, _)| value)
            .collect()
    }

    /// A leader/follower replica holds `data` (key, value) at the end of the run, its log
    /// ending at `version` = (last term, last index). The state of the replica with the
    /// highest version, the one a next leader would have, is the final state (a replica left
    /// behind with writes no leader has counts for nothing): keys it lacks hold the initial
    /// value.
    pub fn replica_state(&mut self, version: (u64, u64), data: impl Iterator<Item = (u64, u64)>) {
        if self
            .replica_state
            .as_ref()
            .is_some_and(|(v, _)| *v >= version)
        {
            return;
        }
        let finals = data.map(|(k, value)| (k, (version, value))).collect();
        self.replica_state = Some((version, finals));
    }

    /// A replica replaced the value `old` of a key with `new` (last writer wins). If `old` was
    /// acknowledged and `new` was written and acknowledged before `old` was invoked, the
    /// store has lost `old`: it is counted among the lost acknowledged writes.
    pub fn overwritten(&mut self, old: u64, new: u64) {
        let (Some(&(old_invoke, _)), Some(&(_, new_ack))) =
            (self.acked.get(&old), self.acked.get(&new))
        else {
            return;
        };
        if new_ack < old_invoke {
            self.overwritten_by_past.insert(old);
        }
    }

    /// Record a completed (or, with `complete: None`, indeterminate) operation.
    pub fn record(&mut self, op: Operation) {
        if let (Kind::Write, Some(c)) = (op.kind, op.complete)
            && self.full_at.is_none()
        {
            self.acked.insert(op.value, (op.invoke, c));
        }
        match self.full_at {
            None if self.ops.len() < self.max_ops => self.ops.push(op),
            None => {
                self.full_at = Some(op.complete.unwrap_or(op.invoke));
                self.keep_if_needed(op);
            }
            Some(_) => self.keep_if_needed(op),
        }
    }

    /// After the bound: keep writes invoked before it, whose values recorded reads may hold.
    fn keep_if_needed(&mut self, op: Operation) {
        if op.kind == Kind::Write && self.full_at.is_some_and(|t| op.invoke < t) {
            self.ops.push(op);
            return;
        }
        self.dropped += 1;
        self.dropped_keys.insert(op.key);
        match (op.kind, op.complete) {
            (Kind::Read, Some(_)) => self.dropped_reads += 1,
            (Kind::Write, Some(_)) => self.dropped_acked_writes += 1,
            (_, None) => {}
        }
    }

    /// An operation known not to have taken effect (refused before anything was changed).
    pub fn failed(&mut self) {
        self.failed += 1;
    }

    /// A replica holds `value` with `version` under `key` at the end of the run.
    pub fn final_value(&mut self, key: u64, value: u64, version: (u64, u64)) {
        let finals = self.finals.get_or_insert_with(BTreeMap::new);
        let e = finals.entry(key).or_insert((version, value));
        if version > e.0 {
            *e = (version, value);
        }
    }

    /// The recorded operations that the measures cover.
    fn covered(&self) -> Vec<Operation> {
        let cut = self.full_at.unwrap_or(u64::MAX);
        self.ops
            .iter()
            .filter(|o| o.invoke < cut)
            .copied()
            .collect()
    }
}

/// Stale reads and lost writes of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Freshness {
    /// Reads that completed with a value.
    pub reads_ok: u64,
    /// Of those, stale ones.
    pub stale_reads: u64,
    /// Sum and maximum of the staleness ages (ns).
    pub staleness_sum_ns: u64,
    /// Largest staleness age (ns).
    pub staleness_max_ns: u64,
    /// Writes acknowledged to their client.
    pub acknowledged_writes: u64,
    /// Of those, lost: the values of acknowledged writes the final state (when the store
    /// reported it) has replaced with the past.
    pub lost_writes: Option<BTreeSet<u64>>,
}

/// Measure stale reads and lost writes over `ops` (any order), given the final values.
pub fn freshness(ops: &[Operation], finals: Option<&Finals>) -> Freshness {
    let mut by_key: BTreeMap<u64, Vec<&Operation>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key).or_default().push(op);
    }
    let mut f = Freshness::default();
    let mut lost = BTreeSet::new();
    for (key, ops) in &by_key {
        // A write's completion, by value (None: indeterminate).
        let written: BTreeMap<u64, Option<u64>> = ops
            .iter()
            .filter(|o| o.kind == Kind::Write)
            .map(|o| (o.value, o.complete))
            .collect();
        // Acknowledged writes as (ack, invoke, value), by acknowledgement.
        let mut acked: Vec<(u64, u64, u64)> = ops
            .iter()
            .filter(|o| o.kind == Kind::Write)
            .filter_map(|o| o.complete.map(|c| (c, o.invoke, o.value)))
            .collect();
        acked.sort_unstable();
        f.acknowledged_writes += acked.len() as u64;
        // When the write of `value` completed: `Some(None)` for the initial value, `None` if
        // it never completed (it may have taken effect at any time since).
        let done_at = |value: u64| -> Option<Option<u64>> {
            if value == 0 {
                Some(None)
            } else {
                written.get(&value).copied().flatten().map(Some)
            }
        };
        for read in ops.iter().filter(|o| o.kind == Kind::Read) {
            if read.complete.is_none() {
                continue;
            }
            f.reads_ok += 1;
            let Some(c) = done_at(read.value) else {
                continue;
            };
            // The first acknowledged write invoked after `c` and acknowledged before the read.
            let from = c.map_or(0, |c| acked.partition_point(|&(ack, _, _)| ack <= c));
            let newer = acked[from..]
                .iter()
                .take_while(|&&(ack, _, _)| ack < read.invoke)
                .find(|&&(_, invoke, _)| c.is_none_or(|c| invoke > c));
            if let Some(&(ack, _, _)) = newer {
                let age = read.invoke - ack;
                f.stale_reads += 1;
                f.staleness_sum_ns += age;
                f.staleness_max_ns = f.staleness_max_ns.max(age);
            }
        }
        if let Some(finals) = finals {
            let final_value = finals.get(key).map_or(0, |&(_, v)| v);
            if let Some(c) = done_at(final_value) {
                lost.extend(
                    acked
                        .iter()
                        .filter(|&&(_, invoke, _)| c.is_none_or(|c| invoke > c))
                        .map(|&(_, _, value)| value),
                );
            }
        }
    }
    f.lost_writes = finals.map(|_| lost);
    f
}

impl Observer for History {
    fn finish(&mut self, _now: SimTime) -> NodeStats {
        let ops = self.covered();
        let report = linearizability::check(&ops, self.bounds);
        let finals = self
            .finals
            .as_ref()
            .or(self.replica_state.as_ref().map(|(_, f)| f));
        let fresh = freshness(&ops, finals);
        let mut write_latency: Vec<u64> = ops
            .iter()
            .filter(|o| o.kind == Kind::Write)
            .filter_map(|o| o.complete.map(|c| c - o.invoke))
            .collect();
        write_latency.sort_unstable();
        let indeterminate = ops.iter().filter(|o| o.complete.is_none()).count();
        let mut counters = BTreeMap::from([
            ("ops_recorded".to_string(), ops.len() as f64),
            ("ops_over_history_bound".to_string(), self.dropped as f64),
            ("ops_failed".to_string(), self.failed as f64),
            ("ops_indeterminate".to_string(), indeterminate as f64),
            ("keys_linearizable".to_string(), report.keys_ok as f64),
            (
                "keys_not_linearizable".to_string(),
                report.violations.len() as f64,
            ),
            (
                "keys_unchecked".to_string(),
                (report.keys_over_bound + report.keys_undecided) as f64,
            ),
            ("reads_ok".to_string(), fresh.reads_ok as f64),
            ("stale_reads".to_string(), fresh.stale_reads as f64),
            (
                "stale_read_rate".to_string(),
                ratio(fresh.stale_reads, fresh.reads_ok),
            ),
            (
                "staleness_mean_ms".to_string(),
                ratio(fresh.staleness_sum_ns, fresh.stale_reads) / 1e6,
            ),
            (
                "staleness_max_ms".to_string(),
                fresh.staleness_max_ns as f64 / 1e6,
            ),
            (
                "acknowledged_writes".to_string(),
                fresh.acknowledged_writes as f64,
            ),
        ]);
        if !write_latency.is_empty() {
            let n = write_latency.len();
            let mean = write_latency.iter().sum::<u64>() as f64 / n as f64;
            // Nearest rank.
            let p99 = write_latency[(n * 99).div_ceil(100) - 1];
            counters.insert("write_latency_mean_ms".to_string(), mean / 1e6);
            counters.insert("write_latency_p99_ms".to_string(), p99 as f64 / 1e6);
        }
        let final_known = fresh.lost_writes.is_some() || self.replica_log.is_some();
        let mut lost = fresh.lost_writes.clone().unwrap_or_default();
        lost.extend(self.overwritten_by_past.iter().copied());
        lost.extend(self.lost_from_log());
        counters.insert("lost_acknowledged_writes".to_string(), lost.len() as f64);
        let verdicts = self.verdicts(&report, &fresh, lost.len() as u64, final_known);
        // "Linearizable" is claimed only when every key was decided; a violation is a
        // violation however many keys were left undecided.
        if let Some(holds) = verdicts[0].holds() {
            counters.insert("linearizable".to_string(), f64::from(u8::from(holds)));
        }
        if let Some(t) = self.full_at {
            counters.insert("history_full_at_s".to_string(), t as f64 / 1e9);
        }
        let events = report
            .violations
            .iter()
            .take(MAX_WINDOWS_SHOWN)
            .map(|(key, window)| violation_event(*key, window))
            .collect();
        NodeStats {
            counters,
            events,
            verdicts,
            ..NodeStats::default()
        }
    }
}

impl History {
    /// Linearizability by key, fresh reads and kept acknowledged writes, each with what was
    /// decided and what was not: keys over the checker's bounds, and what the history's own
    /// bound dropped (a key with dropped operations was decided only on a prefix, unless that
    /// prefix already violates).
    fn verdicts(
        &self,
        report: &Report,
        fresh: &Freshness,
        lost: u64,
        final_known: bool,
    ) -> Vec<Verdict> {
        let prefix_only = report
            .ok_keys
            .iter()
            .filter(|k| self.dropped_keys.contains(k))
            .count() as u64;
        let violated = report.violations.len() as u64;
        let linearizable = Verdict::new(
            "linearizable",
            "keys",
            report.keys_ok - prefix_only + violated,
            violated,
            report.keys_over_bound + report.keys_undecided + prefix_only,
        );
        let reads = Verdict::new(
            "no stale reads",
            "reads",
            fresh.reads_ok,
            fresh.stale_reads,
            self.dropped_reads,
        );
        // Without the store's final state only writes replaced by the past during the run
        // are found: those are decided, the rest are not.
        let (checked, unchecked) = if final_known {
            (fresh.acknowledged_writes, self.dropped_acked_writes)
        } else {
            (
                lost,
                fresh.acknowledged_writes.saturating_sub(lost) + self.dropped_acked_writes,
            )
        };
        let writes = Verdict::new(
            "no lost acknowledged writes",
            "acknowledged writes",
            checked,
            lost,
            unchecked,
        );
        vec![linearizable, reads, writes]
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn violation_event(key: u64, window: &[Operation]) -> EventRecord {
    let shown: Vec<String> = window
        .iter()
        .take(MAX_OPS_SHOWN)
        .map(|o| o.to_string())
        .collect();
    let more = window.len().saturating_sub(MAX_OPS_SHOWN);
    let tail = if more > 0 {
        format!("; … {more} more")
    } else {
        String::new()
    };
    EventRecord {
        at_s: window.first().map_or(0.0, |o| o.invoke as f64 / 1e9),
        what: format!(
            "key {key} not linearizable, {} ops: {}{tail}",
            window.len(),
            shown.join("; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: Kind, value: u64, invoke: u64, complete: Option<u64>) -> Operation {
        Operation {
            key: 7,
            kind,
            value,
            invoke,
            complete,
            client: 0,
            server: None,
        }
    }

    #[test]
    fn stale_reads_and_their_age_follow_the_definition() {
        let ops = [
            op(Kind::Write, 1, 0, Some(10)),
            op(Kind::Read, 1, 20, Some(30)),   // fresh
            op(Kind::Write, 2, 40, Some(50)),  // acknowledged at 50
            op(Kind::Read, 1, 45, Some(55)),   // concurrent with w2: fresh
            op(Kind::Read, 1, 80, Some(90)),   // stale by 80 - 50
            op(Kind::Read, 0, 100, Some(110)), // initial value: stale since w1, by 90
            op(Kind::Write, 3, 120, None),     // indeterminate
            op(Kind::Read, 2, 130, Some(140)), // fresh: w3 may not have happened
        ];
        let f = freshness(&ops, None);
        assert_eq!(f.reads_ok, 5);
        assert_eq!(f.stale_reads, 2);
        assert_eq!(f.staleness_sum_ns, 30 + 90);
        assert_eq!(f.staleness_max_ns, 90);
        assert_eq!(f.acknowledged_writes, 2);
        assert_eq!(f.lost_writes, None);
    }

    #[test]
    fn writes_overwritten_by_the_past_are_lost() {
        let ops = [
            op(Kind::Write, 1, 0, Some(10)),
            op(Kind::Write, 2, 20, Some(30)),
            op(Kind::Write, 3, 40, Some(50)),
        ];
        let finals = |v: u64| BTreeMap::from([(7, ((1, 0), v))]);
        let lost = |f: Option<&BTreeMap<_, _>>| freshness(&ops, f).lost_writes;
        assert_eq!(lost(Some(&finals(3))), Some(BTreeSet::new()));
        assert_eq!(lost(Some(&finals(2))), Some(BTreeSet::from([3])));
        assert_eq!(lost(Some(&finals(1))), Some(BTreeSet::from([2, 3])));
        assert_eq!(
            lost(Some(&BTreeMap::new())),
            Some(BTreeSet::from([1, 2, 3]))
        );
        // Without a final state, writes replaced by the past during the run still count.
        let mut h = History::new(100);
        ops.iter().for_each(|&o| h.record(o));
        h.overwritten(3, 2); // lost: w2 was acknowledged (30) before w3 began (40)
        h.overwritten(2, 3); // the normal order: w3 replaces w2
        h.overwritten(3, 1);
        let stats = h.finish(SimTime(100));
        assert_eq!(stats.counters["lost_acknowledged_writes"], 1.0);
    }

    #[test]
    fn a_full_history_covers_what_was_invoked_before_it_filled() {
        let mut h = History::new(2);
        h.record(op(Kind::Write, 1, 0, Some(10)));
        h.record(op(Kind::Read, 1, 11, Some(12)));
        // Full from here (t = 40): an in-flight write invoked at 30 is kept, later ones dropped.
        h.record(op(Kind::Read, 1, 35, Some(40)));
        h.record(op(Kind::Write, 2, 30, Some(45)));
        h.record(op(Kind::Write, 3, 50, Some(60)));
        let stats = h.finish(SimTime(100));
        assert_eq!(stats.counters["ops_recorded"], 3.0);
        assert_eq!(stats.counters["ops_over_history_bound"], 2.0);
        assert_eq!(stats.counters["history_full_at_s"], 40e-9);
        // Key 7's covered prefix is linearizable, but its later operations were never
        // checked: no claim of linearizability, and the verdicts say what was left out.
        assert!(!stats.counters.contains_key("linearizable"));
        let [lin, reads, writes] = &stats.verdicts[..] else {
            panic!("three verdicts: {:?}", stats.verdicts)
        };
        assert_eq!((lin.checked, lin.violated, lin.unchecked), (0, 0, 1));
        assert_eq!(lin.holds(), None);
        assert_eq!((reads.checked, reads.violated, reads.unchecked), (1, 0, 1));
        // No store reported its final state: no acknowledged write was decided kept.
        assert_eq!(
            (writes.checked, writes.violated, writes.unchecked),
            (0, 0, 3)
        );
    }

    #[test]
    fn verdicts_hold_only_when_every_key_was_decided() {
        let mut h = History::new(100);
        let mut other = op(Kind::Write, 9, 0, Some(10));
        other.key = 8;
        h.record(other);
        h.record(op(Kind::Write, 1, 0, Some(10)));
        h.record(op(Kind::Read, 1, 20, Some(30)));
        h.final_value(7, 1, (1, 0));
        h.final_value(8, 9, (1, 0));
        let stats = h.finish(SimTime(100));
        assert_eq!(stats.counters["linearizable"], 1.0);
        let lin = &stats.verdicts[0];
        assert_eq!((lin.checked, lin.violated, lin.unchecked), (2, 0, 0));
        assert_eq!(lin.holds(), Some(true));
        let writes = &stats.verdicts[2];
        assert_eq!(
            (writes.checked, writes.violated, writes.unchecked),
            (2, 0, 0)
        );
        // The same key over the checker's bound: undecided, and "linearizable" is not claimed.
        let mut h = History::new(100);
        h.bounds.max_ops_per_key = 1;
        h.record(op(Kind::Write, 1, 0, Some(10)));
        h.record(op(Kind::Read, 1, 20, Some(30)));
        let stats = h.finish(SimTime(100));
        assert!(!stats.counters.contains_key("linearizable"));
        assert_eq!(stats.verdicts[0].unchecked, 1);
        assert_eq!(stats.verdicts[0].outcome(), "undecided");
    }

    #[test]
    fn a_violation_is_reported_with_its_window() {
        let mut h = History::new(100);
        h.record(op(Kind::Write, 1, 0, Some(10)));
        h.record(op(Kind::Read, 0, 20, Some(30)));
        let stats = h.finish(SimTime(100));
        assert_eq!(stats.counters["linearizable"], 0.0);
        assert_eq!(stats.verdicts[0].outcome(), "violated");
        assert_eq!(stats.verdicts[1].violated, 1);
        assert_eq!(stats.counters["stale_reads"], 1.0);
        assert_eq!(stats.events.len(), 1);
        assert!(
            stats.events[0]
                .what
                .starts_with("key 7 not linearizable, 2 ops")
        );
    }
}
