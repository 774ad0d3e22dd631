//! The run-wide transaction checker: ground truth on atomicity, blocking and partial effects.
//!
//! Every participant reports what its branch of a transaction did (committed, aborted, saga
//! step applied or compensated) and when it is in doubt (voted yes, holding its lock without
//! knowing the outcome). A transaction of 2PC or 3PC with some branches committed and others
//! aborted is an atomicity violation; each one is counted and listed with its id and time
//! (the list is bounded, the count is not). A transaction's record is dropped as soon as
//! every participant has settled, so memory grows with the transactions still unsettled, not
//! with the run.
//!
//! Being in doubt is part of every commit: a participant waits for the other votes and the
//! decision (3PC adds a round). It is *blocked* only when that wait outlasts what a working
//! coordinator takes: the coordinator's `vote_timeout` after the participant's vote (plus
//! `ack_timeout` in 3PC), by when the coordinator has decided unless it has failed or cannot
//! reach the participant. Time in doubt and time blocked are reported apart, so 3PC's extra
//! round does not read as blocking, and 2PC's wait for a crashed coordinator does.
//! ```text
//!   vote yes ──── in doubt ─────────────────────────────────────────▶ outcome known
//!            ├─ vote_timeout (+ ack_timeout, 3PC) ─┤──── blocked ─────┤
//! ```

use super::{Protocol, members, ms_between};
use crate::contract::build::Observer;
use crate::contract::metrics::{EventLog, NodeStats, Series, SeriesKind};
use crate::results::Verdict;
use crate::sim::time::{SimDuration, SimTime};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

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

/// A participant's branch in doubt: voted yes, outcome unknown.
#[derive(Clone, Copy, Debug)]
struct Doubt {
    since: SimTime,
    /// From here on it is blocked.
    deadline: SimTime,
    blocked: bool,
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
    /// The longest `vote_timeout` and `ack_timeout` of the run's coordinators.
    vote_timeout: SimDuration,
    ack_timeout: SimDuration,
    /// Branches in doubt, by (transaction, participant), and their deadlines in time order
    /// (an entry whose branch has gone, or is already blocked, is skipped).
    doubts: BTreeMap<(u64, usize), Doubt>,
    deadlines: BinaryHeap<Reverse<(SimTime, u64, usize)>>,
    doubting_now: f64,
    /// 2PC/3PC transactions whose every branch settled without a violation.
    settled_atomic: u64,
    /// Unsettled 2PC/3PC records dropped past the bound without a violation: never decided.
    dropped_undecided: u64,
    blocked_now: f64,
    in_doubt_now: f64,
    partial_now: f64,
    doubting_series: Series,
    blocked_series: Series,
    in_doubt_series: Series,
    partial_series: Series,
    lock_hold_ms: Series,
    lock_hold_sum_ms: f64,
    lock_hold_max_ms: f64,
    lock_holds: u64,
    doubt_sum_s: f64,
    doubt_max_ms: f64,
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
            vote_timeout: SimDuration::ZERO,
            ack_timeout: SimDuration::ZERO,
            doubts: BTreeMap::new(),
            deadlines: BinaryHeap::new(),
            doubting_now: 0.0,
            settled_atomic: 0,
            dropped_undecided: 0,
            blocked_now: 0.0,
            in_doubt_now: 0.0,
            partial_now: 0.0,
            doubting_series: Series::new(SeriesKind::Level, window),
            blocked_series: Series::new(SeriesKind::Level, window),
            in_doubt_series: Series::new(SeriesKind::Level, window),
            partial_series: Series::new(SeriesKind::Level, window),
            lock_hold_ms: Series::new(SeriesKind::Mean, window),
            lock_hold_sum_ms: 0.0,
            lock_hold_max_ms: 0.0,
            lock_holds: 0,
            doubt_sum_s: 0.0,
            doubt_max_ms: 0.0,
            blocked_sum_s: 0.0,
            blocked_max_ms: 0.0,
            partial_window_ms: Series::new(SeriesKind::Mean, window),
            partial_sum_ms: 0.0,
            partial_max_ms: 0.0,
            partial_windows: 0,
        }
    }

    /// A coordinator with these timeouts takes part: a participant in doubt longer than
    /// `vote_timeout` after its vote (plus `ack_timeout` in 3PC) is blocked.
    pub fn coordinator(&mut self, vote_timeout: SimDuration, ack_timeout: SimDuration) {
        self.vote_timeout = self.vote_timeout.max(vote_timeout);
        self.ack_timeout = self.ack_timeout.max(ack_timeout);
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

    /// Participant `idx` voted yes on `txn` (over `parts`) under `protocol`: in doubt.
    pub fn voted_yes(&mut self, now: SimTime, txn: u64, parts: u64, idx: usize, p: Protocol) {
        self.catch_up(now);
        let (d, partial) = self.state(txn);
        self.record(txn, parts, false).blocked += 1;
        let normal = match p {
            Protocol::ThreePhase => self.vote_timeout.0.saturating_add(self.ack_timeout.0),
            Protocol::TwoPhase | Protocol::Saga => self.vote_timeout.0,
        };
        let deadline = now.after(SimDuration(normal));
        let doubt = Doubt {
            since: now,
            deadline,
            blocked: false,
        };
        if self.doubts.insert((txn, idx), doubt).is_none() {
            self.doubting_now += 1.0;
            self.doubting_series.set(now, self.doubting_now);
        }
        self.deadlines.push(Reverse((deadline, txn, idx)));
        self.after_change(now, txn, d, partial);
    }

    /// Participant `idx` of `txn` (over `parts`) learned the outcome, or gave up waiting.
    pub fn doubt_ended(&mut self, now: SimTime, txn: u64, parts: u64, idx: usize) {
        self.catch_up(now);
        let (d, partial) = self.state(txn);
        let r = self.record(txn, parts, false);
        r.blocked = r.blocked.saturating_sub(1);
        if let Some(doubt) = self.doubts.remove(&(txn, idx)) {
            self.doubting_now -= 1.0;
            self.doubting_series.set(now, self.doubting_now);
            if doubt.blocked {
                self.blocked_now -= 1.0;
                self.blocked_series.set(now, self.blocked_now);
            }
            self.count_doubt(now, txn, idx, doubt);
        }
        self.after_change(now, txn, d, partial);
    }

    /// Branches whose deadline passed by `now` are blocked from their deadline on. (Every
    /// report moves the clock; deadlines in between are applied in time order first, so the
    /// series stay in time order.)
    fn catch_up(&mut self, now: SimTime) {
        while let Some(&Reverse((deadline, txn, idx))) = self.deadlines.peek() {
            if deadline > now {
                return;
            }
            self.deadlines.pop();
            if let Some(d) = self.doubts.get_mut(&(txn, idx))
                && d.deadline == deadline
                && !d.blocked
            {
                d.blocked = true;
                self.blocked_now += 1.0;
                self.blocked_series.set(deadline, self.blocked_now);
            }
        }
    }

    /// Add one branch's time in doubt, and blocked, up to `now`.
    fn count_doubt(&mut self, now: SimTime, txn: u64, idx: usize, d: Doubt) {
        let doubt_ms = ms_between(d.since, now);
        let blocked_ms = ms_between(d.deadline.min(now), now);
        self.doubt_sum_s += doubt_ms / 1e3;
        self.doubt_max_ms = self.doubt_max_ms.max(doubt_ms);
        self.blocked_sum_s += blocked_ms / 1e3;
        self.blocked_max_ms = self.blocked_max_ms.max(blocked_ms);
        if self
            .log_blocked_over
            .is_some_and(|t| now.since(d.since) >= t)
        {
            let who = self.names.get(idx).map_or("?", String::as_str);
            let what = format!(
                "txn {txn} {who} in doubt {:.6}s from {:.6}s, blocked {:.6}s",
                doubt_ms / 1e3,
                d.since.as_secs_f64(),
                blocked_ms / 1e3,
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
        self.catch_up(now);
        // Branches still in doubt at the end: count their time so far.
        let open: Vec<((u64, usize), Doubt)> = self.doubts.iter().map(|(&k, &d)| (k, d)).collect();
        for ((txn, idx), d) in open {
            self.count_doubt(now, txn, idx, d);
        }
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
            ("in_doubt_participant_s", self.doubt_sum_s),
            ("in_doubt_max_ms", self.doubt_max_ms),
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
            self.doubting_series.finish(
                "in_doubt_participants",
                "Participants in doubt (voted yes, outcome unknown)",
                "participants",
                now,
            ),
            self.blocked_series.finish(
                "blocked_participants",
                "Blocked participants (in doubt past the coordinator's timeouts)",
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
    fn a_branch_in_doubt_keeps_its_txn_in_doubt() {
        let mut c = checker();
        c.coordinator(SimDuration::from_millis(100), SimDuration::from_millis(100));
        c.voted_yes(t(0), 9, 0b11, 1, Protocol::TwoPhase);
        c.decided(t(1), 9, 0b11, 0, false);
        assert_eq!(c.in_doubt_now, 1.0);
        c.doubt_ended(t(5), 9, 0b11, 1);
        c.decided(t(5), 9, 0b11, 1, false);
        assert_eq!((c.in_doubt_now, c.doubting_now), (0.0, 0.0));
        assert!(c.records.is_empty());
        assert_eq!(c.doubt_max_ms, 5.0);
        assert_eq!(c.blocked_max_ms, 0.0, "no coordinator timeout passed");
    }

    #[test]
    fn blocking_is_the_time_in_doubt_past_the_coordinators_timeouts() {
        let mut c = checker();
        c.coordinator(SimDuration::from_millis(100), SimDuration::from_millis(50));
        // 2PC, decided 40 ms after the vote: in doubt, never blocked.
        c.voted_yes(t(0), 1, 0b1, 0, Protocol::TwoPhase);
        c.doubt_ended(t(40), 1, 0b1, 0);
        // 3PC, 140 ms: within vote + ack timeouts (150 ms).
        c.voted_yes(t(100), 2, 0b1, 0, Protocol::ThreePhase);
        c.doubt_ended(t(240), 2, 0b1, 0);
        assert_eq!(c.blocked_sum_s, 0.0);
        assert!((c.doubt_sum_s - 0.18).abs() < 1e-12);
        // 2PC with the coordinator gone: blocked from 100 ms after its vote at 300 ms.
        c.voted_yes(t(300), 3, 0b1, 0, Protocol::TwoPhase);
        c.voted_yes(t(310), 4, 0b1, 0, Protocol::ThreePhase);
        c.voted_yes(t(420), 9, 0b10, 1, Protocol::TwoPhase);
        assert_eq!(
            c.blocked_now, 1.0,
            "txn 3 blocked since 400 ms, txn 4 not yet"
        );
        c.doubt_ended(t(1300), 3, 0b1, 0);
        assert_eq!(c.blocked_max_ms, 900.0);
        // Still in doubt at the end: counted up to it.
        let s = c.finish(t(2000));
        assert_eq!(s.counters["blocked_max_ms"], 2000.0 - 460.0);
        assert_eq!(s.counters["in_doubt_max_ms"], 1690.0);
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
