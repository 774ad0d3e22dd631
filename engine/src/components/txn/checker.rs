//! The run-wide transaction checker: ground truth on atomicity, blocking and partial effects.
//!
//! Every participant reports what its branch of a transaction did (committed, aborted, saga
//! step applied or compensated) and when it is blocked (holding locks without knowing the
//! outcome). A transaction of 2PC or 3PC with some branches committed and others aborted is an
//! atomicity violation; each one is counted and listed with its id and time (the list is
//! bounded, the count is not). A transaction's record is dropped as soon as every participant
//! has settled, so memory grows with the transactions still unsettled, not with the run.

use super::{members, ms_between};
use crate::contract::build::Observer;
use crate::contract::metrics::{EventLog, NodeStats, Series, SeriesKind};
use crate::results::Verdict;
use crate::sim::time::{SimDuration, SimTime};
use std::collections::BTreeMap;

/// Most violations and blocked episodes listed; more are counted.
const LIST_CAP: usize = 1000;
/// Most unsettled transactions tracked at once; older ones are dropped (and counted) beyond it.
const MAX_RECORDS: usize = 1 << 20;

#[derive(Clone, Debug, Default)]
struct Record {
    parts: u64,
    committed: u64,
    aborted: u64,
    /// Saga: steps applied and steps compensated.
    applied: u64,
    compensated: u64,
    blocked: u32,
    violated: bool,
    saga: bool,
    /// Saga: the coordinator decided commit (every step had committed).
    saga_committed: bool,
    first_apply: Option<SimTime>,
}

impl Record {
    /// Saga steps whose effects are visible now.
    fn live(&self) -> u64 {
        self.applied & !self.compensated
    }

    /// Saga effects are visible while the saga is not settled: it may still be undone.
    fn partial(&self) -> bool {
        self.saga && self.live() != 0
    }

    fn settled(&self) -> bool {
        if self.blocked > 0 {
            return false;
        }
        if self.saga {
            let committed = self.saga_committed && self.live() == self.parts;
            let accounted = (self.applied | self.aborted) == self.parts;
            committed || (accounted && self.live() == 0)
        } else {
            (self.committed | self.aborted) == self.parts
        }
    }
}

/// The checker; one per run, shared by every transaction component (see
/// [`crate::contract::build::BuildCtx::observer`]).
pub struct TxnChecker {
    names: Vec<String>,
    records: BTreeMap<u64, Record>,
    violations: u64,
    violation_log: EventLog,
    blocked_log: EventLog,
    log_blocked_over: Option<SimDuration>,
    committed: u64,
    aborted: u64,
    begun: u64,
    messages: u64,
    records_dropped: u64,
    /// 2PC/3PC transactions whose every branch settled without a violation.
    settled_atomic: u64,
    /// Unsettled 2PC/3PC records dropped past the bound without a violation: never decided.
    dropped_undecided: u64,
    blocked_now: f64,
    in_doubt_now: f64,
    partial_now: f64,
    blocked_series: Series,
    in_doubt_series: Series,
    partial_series: Series,
    lock_hold_ms: Series,
    lock_hold_sum_ms: f64,
    lock_hold_max_ms: f64,
    lock_holds: u64,
    blocked_sum_s: f64,
    blocked_max_ms: f64,
    partial_window_ms: Series,
    partial_sum_ms: f64,
    partial_max_ms: f64,
    partial_windows: u64,
}

impl TxnChecker {
    /// A checker for participants called `names` (by index), with time windows of `window`.
    pub fn new(names: Vec<String>, window: SimDuration) -> Self {
        TxnChecker {
            names,
            records: BTreeMap::new(),
            violations: 0,
            violation_log: EventLog::new(LIST_CAP),
            blocked_log: EventLog::new(LIST_CAP),
            log_blocked_over: None,
            committed: 0,
            aborted: 0,
            begun: 0,
            messages: 0,
            records_dropped: 0,
            settled_atomic: 0,
            dropped_undecided: 0,
            blocked_now: 0.0,
            in_doubt_now: 0.0,
            partial_now: 0.0,
            blocked_series: Series::new(SeriesKind::Level, window),
            in_doubt_series: Series::new(SeriesKind::Level, window),
            partial_series: Series::new(SeriesKind::Level, window),
            lock_hold_ms: Series::new(SeriesKind::Mean, window),
            lock_hold_sum_ms: 0.0,
            lock_hold_max_ms: 0.0,
            lock_holds: 0,
            blocked_sum_s: 0.0,
            blocked_max_ms: 0.0,
            partial_window_ms: Series::new(SeriesKind::Mean, window),
            partial_sum_ms: 0.0,
            partial_max_ms: 0.0,
            partial_windows: 0,
        }
    }

    /// List every blocked episode at least this long (as state changes), up to the list cap.
    pub fn log_blocked_over(&mut self, threshold: Option<SimDuration>) {
        if let Some(t) = threshold {
            self.log_blocked_over = Some(self.log_blocked_over.map_or(t, |old| old.min(t)));
        }
    }

    /// Atomicity violations found so far.
    pub fn violations(&self) -> u64 {
        self.violations
    }

    /// The coordinator began a transaction.
    pub fn begun(&mut self) {
        self.begun += 1;
    }

    /// A node sent `n` transaction messages.
    pub fn sent(&mut self, n: u64) {
        self.messages += n;
    }

    fn record(&mut self, txn: u64, parts: u64, saga: bool) -> &mut Record {
        if !self.records.contains_key(&txn) && self.records.len() >= MAX_RECORDS {
            // The oldest unsettled transaction goes; ids grow with time per client.
            if let Some((_, old)) = self.records.pop_first() {
                self.records_dropped += 1;
                self.dropped_undecided += u64::from(!old.saga && !old.violated);
                self.in_doubt_now -= f64::from(u8::from(old.blocked > 0));
                self.partial_now -= f64::from(u8::from(old.partial()));
            }
        }
        let r = self.records.entry(txn).or_default();
        r.parts |= parts;
        r.saga |= saga;
        r
    }

    /// Update the level series after a change to record `txn`, and drop it once settled.
    fn after_change(&mut self, now: SimTime, txn: u64, was_in_doubt: bool, was_partial: bool) {
        let Some(r) = self.records.get(&txn) else {
            return;
        };
        let settled = r.settled();
        // A settled record is dropped: it counts as neither.
        let (in_doubt, partial) = (r.blocked > 0, r.partial() && !settled);
        let window_start = r.first_apply;
        if in_doubt != was_in_doubt {
            self.in_doubt_now += if in_doubt { 1.0 } else { -1.0 };
            self.in_doubt_series.set(now, self.in_doubt_now);
        }
        if partial != was_partial {
            self.partial_now += if partial { 1.0 } else { -1.0 };
            self.partial_series.set(now, self.partial_now);
        }
        if settled {
            self.settled_atomic += u64::from(!r.saga && !r.violated);
            if let Some(start) = window_start {
                let ms = ms_between(start, now);
                self.partial_window_ms.add(now, ms);
                self.partial_sum_ms += ms;
                self.partial_max_ms = self.partial_max_ms.max(ms);
                self.partial_windows += 1;
            }
            self.records.remove(&txn);
        }
    }

    fn state(&self, txn: u64) -> (bool, bool) {
        self.records
            .get(&txn)
            .map_or((false, false), |r| (r.blocked > 0, r.partial()))
    }

    /// Participant `idx` of transaction `txn` (over `parts`) settled its branch.
    pub fn decided(&mut self, now: SimTime, txn: u64, parts: u64, idx: usize, commit: bool) {
        let (d, p) = self.state(txn);
        let bit = 1 << idx;
        let r = self.record(txn, parts | bit, false);
        if commit {
            r.committed |= bit;
        } else {
            r.aborted |= bit;
        }
        let split = !r.saga && r.committed != 0 && r.aborted != 0 && !r.violated;
        if split {
            r.violated = true;
            let (c, a) = (r.committed, r.aborted);
            self.violations += 1;
            let what = format!(
                "atomicity violation: txn {txn} committed at {} but aborted at {}",
                self.list(c),
                self.list(a)
            );
            self.violation_log.record(now, what);
        }
        if commit {
            self.committed += 1;
        } else {
            self.aborted += 1;
        }
        self.after_change(now, txn, d, p);
    }

    fn list(&self, mask: u64) -> String {
        members(mask)
            .map(|i| self.names.get(i).map_or("?", String::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A saga step of participant `idx` committed locally: its effect is visible.
    pub fn applied(&mut self, now: SimTime, txn: u64, parts: u64, idx: usize) {
        let (d, p) = self.state(txn);
        let r = self.record(txn, parts, true);
        r.applied |= 1 << idx;
        r.first_apply.get_or_insert(now);
        self.committed += 1;
        self.after_change(now, txn, d, p);
    }

    /// The coordinator decided to commit saga `txn`: its steps are final.
    pub fn saga_committed(&mut self, now: SimTime, txn: u64) {
        let (d, p) = self.state(txn);
        if let Some(r) = self.records.get_mut(&txn) {
            r.saga_committed = true;
        }
        self.after_change(now, txn, d, p);
    }

    /// A saga step of participant `idx` failed or was refused: it never took effect.
    pub fn refused(&mut self, now: SimTime, txn: u64, parts: u64, idx: usize) {
        let (d, p) = self.state(txn);
        let r = self.record(txn, parts, true);
        r.aborted |= 1 << idx;
        self.aborted += 1;
        self.after_change(now, txn, d, p);
    }

    /// A saga step of participant `idx` was compensated.
    pub fn compensated(&mut self, now: SimTime, txn: u64, parts: u64, idx: usize) {
        let (d, p) = self.state(txn);
        let bit = 1 << idx;
        let fresh = !self.records.contains_key(&txn);
        let r = self.record(txn, parts, true);
        if fresh {
            // The record is gone only if it was evicted (see MAX_RECORDS): assume every step
            // had applied, the most a compensation can undo.
            r.applied = r.parts;
            r.first_apply = Some(now);
        }
        r.applied |= bit;
        r.compensated |= bit;
        self.after_change(now, txn, d, p);
    }

    /// Participant branch of `txn` started (`true`) or stopped (`false`) being blocked.
    pub fn blocked(&mut self, now: SimTime, txn: u64, parts: u64, on: bool) {
        let (d, p) = self.state(txn);
        let r = self.record(txn, parts, false);
        if on {
            r.blocked += 1;
        } else {
            r.blocked = r.blocked.saturating_sub(1);
        }
        self.blocked_now += if on { 1.0 } else { -1.0 };
        self.blocked_series.set(now, self.blocked_now);
        self.after_change(now, txn, d, p);
    }

    /// Participant `idx` was blocked on `txn` from `since` until `now`.
    pub fn blocked_for(&mut self, now: SimTime, txn: u64, idx: usize, since: SimTime) {
        let ms = ms_between(since, now);
        self.blocked_sum_s += ms / 1e3;
        self.blocked_max_ms = self.blocked_max_ms.max(ms);
        if self.log_blocked_over.is_some_and(|t| now.since(since) >= t) {
            let who = self.names.get(idx).map_or("?", String::as_str);
            let what = format!(
                "txn {txn} {who} blocked {:.6}s from {:.6}s",
                ms / 1e3,
                since.as_secs_f64()
            );
            self.blocked_log.record(now, what);
        }
    }

    /// A lock was held from `since` until `now`.
    pub fn lock_released(&mut self, now: SimTime, since: SimTime) {
        let ms = ms_between(since, now);
        self.lock_hold_ms.add(now, ms);
        self.lock_hold_sum_ms += ms;
        self.lock_hold_max_ms = self.lock_hold_max_ms.max(ms);
        self.lock_holds += 1;
    }
}

fn mean(sum: f64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { sum / n as f64 }
}

impl Observer for TxnChecker {
    fn finish(&mut self, now: SimTime) -> NodeStats {
        let unsettled = self.records.len() as f64;
        let counters = [
            ("atomicity_violations", self.violations as f64),
            ("violations_unlisted", self.violation_log.dropped() as f64),
            ("txns_begun", self.begun as f64),
            ("branches_committed", self.committed as f64),
            ("branches_aborted", self.aborted as f64),
            ("unsettled_at_end", unsettled),
            ("records_dropped", self.records_dropped as f64),
            (
                "messages_per_txn",
                mean(self.messages as f64, self.begun.max(1)),
            ),
            (
                "lock_hold_mean_ms",
                mean(self.lock_hold_sum_ms, self.lock_holds),
            ),
            ("lock_hold_max_ms", self.lock_hold_max_ms),
            ("blocked_participant_s", self.blocked_sum_s),
            ("blocked_max_ms", self.blocked_max_ms),
            (
                "blocked_episodes_unlisted",
                self.blocked_log.dropped() as f64,
            ),
            (
                "partial_window_mean_ms",
                mean(self.partial_sum_ms, self.partial_windows),
            ),
            ("partial_window_max_ms", self.partial_max_ms),
        ];
        let mut events = self.violation_log.take();
        events.extend(self.blocked_log.take());
        events.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        let series = vec![
            self.blocked_series.finish(
                "blocked_participants",
                "Blocked participants (locks held, outcome unknown)",
                "participants",
                now,
            ),
            self.in_doubt_series.finish(
                "in_doubt_txns",
                "In-doubt transactions",
                "transactions",
                now,
            ),
            self.partial_series.finish(
                "partial_sagas",
                "Sagas with effects visible but not final",
                "transactions",
                now,
            ),
            self.lock_hold_ms
                .finish("lock_hold_ms", "Lock hold time (mean)", "ms", now),
            self.partial_window_ms.finish(
                "partial_window_ms",
                "Saga window of visible, not yet final effects (mean)",
                "ms",
                now,
            ),
        ];
        let mut stats = NodeStats::counters(counters);
        stats.series = series;
        stats.events = events;
        stats.verdicts = vec![self.atomicity()];
        stats
    }
}

impl TxnChecker {
    /// Atomic commit over 2PC/3PC transactions (sagas promise less): a transaction is decided
    /// once every branch settled, or as soon as one branch committed and another aborted; one
    /// still unsettled at the end (or dropped past the record bound) is not.
    fn atomicity(&self) -> Verdict {
        let unsettled = self
            .records
            .values()
            .filter(|r| !r.saga && !r.violated)
            .count() as u64;
        Verdict::new(
            "atomic commit",
            "transactions",
            self.settled_atomic + self.violations,
            self.violations,
            unsettled + self.dropped_undecided,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> SimTime {
        SimTime(ms * 1_000_000)
    }

    fn checker() -> TxnChecker {
        let names = (0..4).map(|i| format!("p-{i}")).collect();
        TxnChecker::new(names, SimDuration::from_secs(1))
    }

    #[test]
    fn a_split_outcome_is_one_violation_and_consistent_ones_are_dropped() {
        let mut c = checker();
        c.decided(t(1), 7, 0b11, 0, true);
        c.decided(t(2), 7, 0b11, 1, true);
        assert!(c.records.is_empty(), "a settled txn is forgotten");
        c.decided(t(3), 8, 0b111, 0, true);
        c.decided(t(4), 8, 0b111, 1, false);
        c.decided(t(5), 8, 0b111, 2, false);
        assert_eq!(c.violations(), 1);
        assert!(c.records.is_empty());
        let what = &c.violation_log.events()[0].what;
        assert!(
            what.contains("txn 8 committed at p-0 but aborted at p-1"),
            "{what}"
        );
        // Txn 9 has heard from one of its two participants when the run ends: undecided.
        c.decided(t(6), 9, 0b11, 0, true);
        let v = c.atomicity();
        assert_eq!((v.checked, v.violated, v.unchecked), (2, 1, 1));
        assert_eq!(v.outcome(), "violated");
    }

    #[test]
    fn atomicity_holds_only_once_every_transaction_settled() {
        let mut c = checker();
        c.decided(t(1), 7, 0b11, 0, true);
        assert_eq!(c.atomicity().holds(), None, "txn 7 is not settled");
        c.decided(t(2), 7, 0b11, 1, true);
        let v = c.atomicity();
        assert_eq!((v.checked, v.violated, v.unchecked), (1, 0, 0));
        assert_eq!(v.holds(), Some(true));
    }

    #[test]
    fn a_blocked_branch_keeps_its_txn_in_doubt() {
        let mut c = checker();
        c.blocked(t(0), 9, 0b11, true);
        c.decided(t(1), 9, 0b11, 0, false);
        assert_eq!(c.in_doubt_now, 1.0);
        c.blocked(t(5), 9, 0b11, false);
        c.blocked_for(t(5), 9, 1, t(0));
        c.decided(t(5), 9, 0b11, 1, false);
        assert_eq!((c.in_doubt_now, c.blocked_now), (0.0, 0.0));
        assert!(c.records.is_empty());
        assert_eq!(c.blocked_max_ms, 5.0);
    }

    #[test]
    fn a_saga_window_runs_from_first_step_to_last_compensation() {
        let mut c = checker();
        c.applied(t(10), 3, 0b111, 0);
        c.applied(t(12), 3, 0b111, 1);
        assert_eq!(c.partial_now, 1.0);
        c.refused(t(13), 3, 0b111, 2);
        c.compensated(t(20), 3, 0b111, 0);
        c.compensated(t(25), 3, 0b111, 1);
        assert_eq!(c.partial_now, 0.0);
        assert_eq!((c.partial_windows, c.partial_max_ms), (1, 15.0));
        assert_eq!(c.violations(), 0, "a compensated saga is not a violation");
        // A fully applied saga settles when the coordinator commits it.
        c.applied(t(30), 4, 0b11, 0);
        c.applied(t(31), 4, 0b11, 1);
        assert_eq!(c.partial_now, 1.0);
        c.saga_committed(t(32), 4);
        assert!(c.records.is_empty());
        assert_eq!((c.partial_windows, c.partial_now), (2, 0.0));
    }
}
