//! A linearizability checker for histories of reads and writes on registers (Wing & Gong's
//! search with Lowe's memoisation), decomposed per key.
//!
//! A history is linearizable if every operation can be given one instant between its invocation
//! and its completion such that, in the order of those instants, every read returns the value of
//! the latest write before it (or the initial value). Registers are independent, so a history
//! is linearizable exactly when each key's sub-history is (P-compositionality), and each key is
//! searched alone.
//!
//! ```text
//!  ops of one key, by invocation:   [w1 ───────]   [r→1 ──]  [w2 ─────────?   (indeterminate)
//!                                        [r→0 ──]          [r→2 ─]
//!  search state: (which ops are linearized, current value); depth-first, one op at a time,
//!  only ops invoked before every pending op's completion are candidates; states seen once
//!  are never explored again (memoised).
//! ```
//!
//! An indeterminate operation (the client timed out: it may or may not have taken effect) has
//! completion +∞: it may be linearized at any point after its invocation or not at all, which is
//! the same as linearizing it after everything else. A failed operation (known not to have taken
//! effect) and an indeterminate read (nothing observed) constrain nothing and are left out.
//! Indeterminate writes are resolved before the search, which keeps keys with many timed-out
//! writes decidable (each one otherwise doubles the orders to try) without changing any verdict:
//! one whose value no read returned is left out (not taking effect is always a valid choice,
//! and no read depends on it), and one whose value some read returned must take effect before
//! the earliest such read completes, so it is checked as a write completing then.
//!
//! The search is exponential in the worst case, so it is bounded three times, and every bound
//! is reported, never silently skipped: at most `max_ops_per_key` operations per key are
//! checked, at most `max_states` search states per key are explored, and the whole check does
//! at most `max_work` steps (memo words compared and candidates listed: with many overlapping
//! operations each state costs as much as the key has operations, and many keys each near
//! their state bound took minutes); a key that hits any is reported as unchecked. On a violation the checker shrinks the history of the key to a short
//! window of consecutive operations that is itself not linearizable whatever the value the
//! register held before it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What an operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Read the register and saw `value` (0: never written).
    Read,
    /// Wrote `value`.
    Write,
}

/// One operation of a history, on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The key (register) it touched.
    pub key: u64,
    /// Read or write.
    pub kind: Kind,
    /// The value written, or the value read. Written values must be unique per key and nonzero.
    pub value: u64,
    /// When the client invoked it (ns).
    pub invoke: u64,
    /// When the client saw it complete (ns), or `None` if indeterminate (timed out).
    pub complete: Option<u64>,
    /// Who issued it (node index, for the violation report).
    pub client: u32,
    /// The replica that served it (node index), if it was answered.
    pub server: Option<u32>,
}

impl Operation {
    fn end(&self) -> u64 {
        self.complete.unwrap_or(u64::MAX)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            Kind::Read => "read",
            Kind::Write => "write",
        };
        let ms = |ns: u64| ns as f64 / 1e6;
        let via = self
            .server
            .map_or(String::new(), |s| format!(" via node {s}"));
        match self.complete {
            Some(c) => write!(
                f,
                "node {} {what} {} [{:.3}ms, {:.3}ms]{via}",
                self.client,
                self.value,
                ms(self.invoke),
                ms(c)
            ),
            None => write!(
                f,
                "node {} {what} {} [{:.3}ms, timed out]",
                self.client,
                self.value,
                ms(self.invoke)
            ),
        }
    }
}

/// Bounds on the work the checker does per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Keys with more operations than this are not checked (reported as over the bound).
    pub max_ops_per_key: usize,
    /// The search of one key gives up after this many states (reported as unchecked).
    pub max_states: usize,
    /// The whole check gives up after this many steps (memo words and candidates, about a
    /// nanosecond each); the keys left are reported as unchecked.
    pub max_work: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_ops_per_key: 20_000,
            max_states: 200_000,
            max_work: 200_000_000,
        }
    }
}

/// The verdict on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// Linearizable.
    Ok,
    /// Not linearizable; `window` is a short run of its operations that is not linearizable
    /// from any initial value.
    Violation {
        /// The operations showing the violation, by invocation.
        window: Vec<Operation>,
    },
    /// More operations than `max_ops_per_key`.
    OverBound,
    /// The search hit `max_states` before deciding.
    Undecided,
}

/// The verdict on a whole history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Keys checked and found linearizable.
    pub keys_ok: u64,
    /// Those keys, ascending.
    pub ok_keys: Vec<u64>,
    /// Keys found not linearizable, with their windows (key, window), by key.
    pub violations: Vec<(u64, Vec<Operation>)>,
    /// Keys not checked because they had more operations than the bound.
    pub keys_over_bound: u64,
    /// Keys whose search hit the state bound.
    pub keys_undecided: u64,
    /// Operations that entered the check (failed operations and indeterminate reads excluded).
    pub ops_checked: u64,
}

impl Report {
    /// Linearizable as far as checked: no violation found.
    pub fn linearizable(&self) -> bool {
        self.violations.is_empty()
    }

    /// Every key was decided (none over a bound).
    pub fn complete(&self) -> bool {
        self.keys_over_bound == 0 && self.keys_undecided == 0
    }
}

/// Check a whole history: operations of any keys, in any order.
pub fn check(history: &[Operation], bounds: Bounds) -> Report {
    let mut ops = resolve_indeterminate_writes(history);
    ops.sort_by_key(|o| (o.key, o.invoke, o.end()));
    let timed_out: BTreeMap<(u64, u64), Operation> = history
        .iter()
        .filter(|o| o.kind == Kind::Write && o.complete.is_none())
        .map(|o| ((o.key, o.value), *o))
        .collect();
    let mut report = Report {
        ops_checked: ops.len() as u64,
        ..Report::default()
    };
    let mut work = bounds.max_work;
    for chunk in ops.chunk_by(|a, b| a.key == b.key) {
        let key = chunk[0].key;
        match check_key_within(chunk, bounds, &mut work) {
            KeyVerdict::Ok => report.ok_keys.push(key),
            KeyVerdict::Violation { window } => {
                report
                    .violations
                    .push((key, as_recorded(window, &timed_out)));
            }
            KeyVerdict::OverBound => report.keys_over_bound += 1,
            KeyVerdict::Undecided => report.keys_undecided += 1,
        }
    }
    report.keys_ok = report.ok_keys.len() as u64;
    report
}

/// The operations the search needs (see the module comment): failed operations and
/// indeterminate reads are gone already; indeterminate writes no read saw are dropped, and
/// those some read saw complete when the earliest such read completed.
fn resolve_indeterminate_writes(history: &[Operation]) -> Vec<Operation> {
    // (key, value) -> earliest completion of a read that returned it.
    let mut first_seen: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for o in history.iter().filter(|o| o.kind == Kind::Read) {
        if let Some(c) = o.complete {
            let e = first_seen.entry((o.key, o.value)).or_insert(c);
            *e = (*e).min(c);
        }
    }
    history
        .iter()
        .filter_map(|o| match (o.kind, o.complete) {
            (_, Some(_)) => Some(*o),
            (Kind::Read, None) => None,
            (Kind::Write, None) => first_seen.get(&(o.key, o.value)).map(|&c| Operation {
                complete: Some(c),
                ..*o
            }),
        })
        .collect()
}

/// A violation window with each write shown as it was recorded (a resolved indeterminate
/// write shows as timed out, not with the completion the search gave it).
fn as_recorded(
    window: Vec<Operation>,
    timed_out: &BTreeMap<(u64, u64), Operation>,
) -> Vec<Operation> {
    window
        .into_iter()
        .map(|o| match o.kind {
            Kind::Write => timed_out.get(&(o.key, o.value)).copied().unwrap_or(o),
            Kind::Read => o,
        })
        .collect()
}

/// Check the operations of one key, sorted by invocation.
pub fn check_key(ops: &[Operation], bounds: Bounds) -> KeyVerdict {
    let mut work = bounds.max_work;
    check_key_within(ops, bounds, &mut work)
}

/// [`check_key`] spending at most `work` steps, and taking them off it.
fn check_key_within(ops: &[Operation], bounds: Bounds, work: &mut u64) -> KeyVerdict {
    if ops.len() > bounds.max_ops_per_key {
        return KeyVerdict::OverBound;
    }
    match search(ops, Some(0), bounds.max_states, work) {
        Search::Linearizable => KeyVerdict::Ok,
        Search::Undecided => KeyVerdict::Undecided,
        Search::NotLinearizable => KeyVerdict::Violation {
            window: shrink(ops, bounds.max_states, work),
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Search {
    Linearizable,
    NotLinearizable,
    Undecided,
}

/// The shortest window found by shrinking: the shortest failing prefix, then the latest start
/// from which it still fails whatever the register held before.
fn shrink(ops: &[Operation], max_states: usize, work: &mut u64) -> Vec<Operation> {
    let mut fails = |w: &[Operation], init: Option<u64>| {
        search(w, init, max_states, work) == Search::NotLinearizable
    };
    // Adding later operations almost always keeps a history failing, so a binary search finds
    // a short failing prefix; the result is checked, and the whole history is the fallback.
    let (mut lo, mut hi) = (1, ops.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(&ops[..mid], Some(0)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let end = if fails(&ops[..hi], Some(0)) {
        hi
    } else {
        ops.len()
    };
    let prefix = &ops[..end];
    let mut start = 0;
    let (mut lo, mut hi) = (0, end.saturating_sub(1));
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fails(&prefix[mid..], None) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if fails(&prefix[lo..], None) {
        start = lo;
    }
    prefix[start..].to_vec()
}

/// Depth-first search for a linearization of `ops` (one key, sorted by invocation), from
/// initial value `init` (`None`: any value, fixed by the first read).
fn search(ops: &[Operation], init: Option<u64>, max_states: usize, work: &mut u64) -> Search {
    let n = ops.len();
    let words = n.div_ceil(64).max(1);
    let mut done = vec![0u64; words];
    let must = ops.iter().filter(|o| o.complete.is_some()).count();
    let mut seen: BTreeSet<MemoKey> = BTreeSet::new();
    // Each frame: the op linearized to get here, the value before it, how many determinate
    // ops were linearized, and the candidates still to try from the state it leads to.
    struct Frame {
        op: usize,
        before: Option<u64>,
        candidates: Vec<usize>,
    }
    let is_done = |done: &[u64], i: usize| done[i / 64] >> (i % 64) & 1 == 1;
    let candidates = |done: &[u64]| -> Vec<usize> {
        let Some(lo) = first_pending(done).filter(|&i| i < n) else {
            return Vec::new();
        };
        // The earliest completion among pending ops bounds which ops may go next; ops invoked
        // after it cannot be pending-minimal, and cannot lower it either.
        let mut min_end = u64::MAX;
        let mut out = Vec::new();
        for (i, op) in ops.iter().enumerate().skip(lo) {
            if op.invoke > min_end {
                break;
            }
            if !is_done(done, i) {
                min_end = min_end.min(op.end());
                out.push(i);
            }
        }
        out.retain(|&i| ops[i].invoke <= min_end);
        out
    };
    let mut value = init;
    let mut linearized_determinate = 0;
    let mut stack: Vec<Frame> = vec![Frame {
        op: usize::MAX,
        before: init,
        candidates: candidates(&done),
    }];
    seen.insert(memo_key(&done, value));
    while let Some(top) = stack.last_mut() {
        if linearized_determinate == must {
            return Search::Linearizable;
        }
        let Some(i) = top.candidates.pop() else {
            // Dead end: undo the op that led here.
            let frame = stack.pop().expect("the stack is not empty");
            if frame.op != usize::MAX {
                done[frame.op / 64] &= !(1 << (frame.op % 64));
                value = frame.before;
                if ops[frame.op].complete.is_some() {
                    linearized_determinate -= 1;
                }
            }
            continue;
        };
        // A candidate costs its memo key; the state it leads to, listing its candidates.
        let cost = words as u64 + 1;
        let Some(left) = work.checked_sub(cost) else {
            return Search::Undecided;
        };
        *work = left;
        let op = ops[i];
        let next = match (op.kind, value) {
            (Kind::Write, _) => Some(op.value),
            (Kind::Read, None) => Some(op.value),
            (Kind::Read, Some(v)) if v == op.value => Some(v),
            (Kind::Read, Some(_)) => continue,
        };
        done[i / 64] |= 1 << (i % 64);
        if !seen.insert(memo_key(&done, next)) {
            done[i / 64] &= !(1 << (i % 64));
            continue;
        }
        if seen.len() > max_states {
            return Search::Undecided;
        }
        if op.complete.is_some() {
            linearized_determinate += 1;
        }
        let before = value;
        value = next;
        let candidates = candidates(&done);
        *work = work.saturating_sub(candidates.len() as u64 + 1);
        stack.push(Frame {
            op: i,
            before,
            candidates,
        });
    }
    Search::NotLinearizable
}

/// A search state as memoised: the linearized set (from its first word with a pending op, as
/// everything before is linearized; trailing empty words dropped) and the register value.
type MemoKey = (usize, Vec<u64>, Option<u64>);

fn memo_key(done: &[u64], value: Option<u64>) -> MemoKey {
    let from = done
        .iter()
        .position(|&w| w != u64::MAX)
        .unwrap_or(done.len());
    let to = done
        .iter()
        .rposition(|&w| w != 0)
        .map_or(from, |i| i + 1)
        .max(from);
    (from, done[from..to].to_vec(), value)
}

/// The first op not yet linearized (may be past the last op, in the padding bits).
fn first_pending(done: &[u64]) -> Option<usize> {
    let w = done.iter().position(|&w| w != u64::MAX)?;
    Some(w * 64 + done[w].trailing_ones() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(value: u64, invoke: u64, complete: u64) -> Operation {
        Operation {
            key: 1,
            kind: Kind::Write,
            value,
            invoke,
            complete: Some(complete),
            client: 0,
            server: None,
        }
    }

    fn r(value: u64, invoke: u64, complete: u64) -> Operation {
        Operation {
            kind: Kind::Read,
            ..w(value, invoke, complete)
        }
    }

    fn timed_out(mut op: Operation) -> Operation {
        op.complete = None;
        op
    }

    fn verdict(ops: &[Operation]) -> Report {
        check(ops, Bounds::default())
    }

    #[test]
    fn sequential_and_concurrent_linearizable_histories_pass() {
        // Sequential: write 1, read 1, write 2, read 2.
        assert!(verdict(&[w(1, 0, 1), r(1, 2, 3), w(2, 4, 5), r(2, 6, 7)]).linearizable());
        // A read concurrent with a write may see either value.
        assert!(verdict(&[w(1, 0, 10), r(0, 1, 2), r(1, 3, 4)]).linearizable());
        // Reads of the initial value before any write.
        assert!(verdict(&[r(0, 0, 1), w(5, 2, 3), r(5, 4, 5)]).linearizable());
        // Two concurrent writes, later reads agree on the one linearized last.
        assert!(verdict(&[w(1, 0, 10), w(2, 0, 10), r(1, 11, 12), r(1, 13, 14)]).linearizable());
    }

    #[test]
    fn a_stale_read_is_a_violation_with_a_short_window() {
        // Write 1 completes at 1, then a read invoked at 5 returns the initial value.
        let ops = [
            w(1, 0, 1),
            r(1, 2, 3),
            w(2, 10, 11),
            r(2, 12, 13),
            r(1, 20, 21),
        ];
        let rep = verdict(&ops);
        assert!(!rep.linearizable());
        let (key, window) = &rep.violations[0];
        assert_eq!(*key, 1);
        // The read of 2 came before the read of 1 and no write lies between them: those two
        // alone show it, whatever the register held before.
        assert_eq!(window, &vec![r(2, 12, 13), r(1, 20, 21)]);
    }

    #[test]
    fn reads_that_flip_between_values_are_not_linearizable() {
        // Two concurrent writes; one reader sees 1 then 2, another sees 2 then 1, all after
        // both writes were invoked: no single order explains both.
        let ops = [
            w(1, 0, 100),
            w(2, 0, 100),
            r(1, 10, 11),
            r(2, 12, 13),
            r(2, 14, 15),
            r(1, 16, 17),
        ];
        assert!(!verdict(&ops).linearizable());
    }

    #[test]
    fn a_read_of_a_value_never_written_is_a_violation() {
        assert!(!verdict(&[w(1, 0, 1), r(7, 2, 3)]).linearizable());
    }

    #[test]
    fn an_indeterminate_write_may_or_may_not_take_effect() {
        // Timed out, and later observed: it took effect.
        assert!(verdict(&[timed_out(w(1, 0, 1)), r(1, 50, 51)]).linearizable());
        // Timed out, never observed: it did not (or not yet).
        assert!(verdict(&[timed_out(w(1, 0, 1)), r(0, 50, 51)]).linearizable());
        // But once observed it cannot be undone.
        assert!(!verdict(&[timed_out(w(1, 0, 1)), r(1, 50, 51), r(0, 60, 61)]).linearizable());
        // And it cannot take effect before it was invoked.
        assert!(!verdict(&[r(1, 0, 1), timed_out(w(1, 5, 6))]).linearizable());
    }

    #[test]
    fn failed_ops_and_indeterminate_reads_constrain_nothing() {
        let lost_read = timed_out(r(9, 2, 3));
        assert!(verdict(&[w(1, 0, 1), lost_read, r(1, 4, 5)]).linearizable());
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut other = r(0, 20, 21);
        other.key = 2;
        let rep = verdict(&[w(1, 0, 1), other, r(1, 2, 3)]);
        assert!(rep.linearizable());
        assert_eq!(rep.keys_ok, 2);
        let mut stale = r(0, 20, 21);
        stale.key = 1;
        let rep = verdict(&[w(1, 0, 1), other, stale]);
        assert_eq!(rep.keys_ok, 1);
        assert_eq!(rep.violations.len(), 1);
    }

    #[test]
    fn the_bounds_are_reported_not_skipped() {
        let ops: Vec<_> = (1..=10).map(|i| w(i, i * 10, i * 10 + 1)).collect();
        let tight = Bounds {
            max_ops_per_key: 5,
            ..Bounds::default()
        };
        let rep = check(&ops, tight);
        assert_eq!(rep.keys_over_bound, 1);
        assert!(!rep.complete());
        // Many fully concurrent writes and reads explode the search: the state bound stops it.
        let mut ops: Vec<_> = (1..=40).map(|i| w(i, 0, 1000)).collect();
        ops.extend((1..=40).map(|i| r(41 - i, 2000 + i * 10, 2001 + i * 10)));
        let small = Bounds {
            max_states: 1000,
            ..Bounds::default()
        };
        let rep = check(&ops, small);
        assert_eq!(rep.keys_undecided + rep.violations.len() as u64, 1);
    }

    #[test]
    fn the_work_bound_covers_the_whole_check_and_reports_the_keys_it_left() {
        // Ten keys of overlapping writes: each search is small, but a run-wide bound of a few
        // steps leaves most of them undecided, and says so.
        let mut ops = Vec::new();
        for key in 1..=10 {
            for i in 1..=8 {
                let mut o = w(key * 100 + i, 0, 1000);
                o.key = key;
                ops.push(o);
            }
        }
        assert!(check(&ops, Bounds::default()).complete());
        let scarce = Bounds {
            max_work: 40,
            ..Bounds::default()
        };
        let rep = check(&ops, scarce);
        assert!(rep.keys_undecided >= 5, "{rep:?}");
        assert_eq!(rep.keys_ok + rep.keys_undecided, 10);
    }

    #[test]
    fn long_sequential_histories_check_quickly() {
        let mut ops = Vec::new();
        for i in 0..5000u64 {
            ops.push(w(i + 1, i * 10, i * 10 + 6));
            ops.push(r(i + 1, i * 10 + 7, i * 10 + 9));
        }
        // Overlap each write with the previous read.
        let rep = check(&ops, Bounds::default());
        assert!(rep.linearizable() && rep.complete(), "{rep:?}");
    }

    #[test]
    fn histories_built_from_a_linearization_always_pass_and_one_future_read_breaks_them() {
        use crate::sim::rng::{RandomSource, SimRng};
        // Each op takes effect at a point inside its interval, in a real register: whatever the
        // overlaps, the history is linearizable by construction. Then one read is made to
        // return the value of a write invoked only after that read completed: no order can
        // explain it, so the checker must find a violation, on that key.
        let mut rng = SimRng::derive(11, "lin");
        let mut perturbed = 0;
        for round in 0..200 {
            let mut value = 0;
            let mut ops = Vec::new();
            for i in 0..30u64 {
                let point = i * 100 + 50;
                let invoke = point - rng.below(200).min(point);
                let complete = point + rng.below(200);
                if rng.below(3) == 0 {
                    value = round * 1000 + i + 1;
                    let op = w(value, invoke, complete);
                    ops.push(if rng.below(5) == 0 { timed_out(op) } else { op });
                } else {
                    ops.push(r(value, invoke, complete));
                }
            }
            let rep = verdict(&ops);
            assert!(
                rep.linearizable() && rep.complete(),
                "round {round}: {rep:?}"
            );
            let reads: Vec<usize> = (0..ops.len())
                .filter(|&i| ops[i].kind == Kind::Read)
                .collect();
            let victim = reads[rng.below(reads.len() as u64) as usize];
            let end = ops[victim].complete.expect("reads complete");
            let Some(future) = ops
                .iter()
                .find(|o| o.kind == Kind::Write && o.invoke > end)
                .map(|o| o.value)
            else {
                continue;
            };
            ops[victim].value = future;
            let rep = verdict(&ops);
            assert!(
                !rep.linearizable() && rep.violations[0].0 == 1,
                "round {round}: a read of a write invoked after it completed passed: {rep:?}"
            );
            perturbed += 1;
        }
        assert!(perturbed > 150, "{perturbed} rounds perturbed");
    }

    #[test]
    fn a_timed_out_write_that_was_read_takes_effect_before_the_read_completes() {
        // Seen by the read ending at 10: it took effect by then, so a later read of the
        // initial value is stale, however late the write's own answer would have come.
        let lost = timed_out(w(1, 0, 1));
        assert!(!verdict(&[lost, r(1, 5, 10), r(0, 12, 13)]).linearizable());
        // A read of it that completed before it was invoked is impossible.
        assert!(!verdict(&[r(1, 0, 2), timed_out(w(1, 3, 4))]).linearizable());
        // Read once, concurrently with another write: either order of the two writes works.
        let ops = [timed_out(w(1, 0, 1)), w(2, 2, 20), r(1, 3, 4), r(2, 21, 22)];
        assert!(verdict(&ops).linearizable());
        // A violation window shows such a write as it was recorded: timed out.
        let resolved = resolve_indeterminate_writes(&[lost, r(1, 5, 10)]);
        assert_eq!(resolved[0], w(1, 0, 10));
        let recorded = BTreeMap::from([((1, 1), lost)]);
        assert_eq!(as_recorded(resolved, &recorded), [lost, r(1, 5, 10)]);
    }

    #[test]
    fn many_timed_out_writes_no_read_saw_do_not_explode_the_search() {
        // 60 concurrent writes that all timed out, none ever read, among reads of the initial
        // value: trivially linearizable (none took effect), but each one doubles the orders a
        // search that keeps them must try.
        let mut ops: Vec<_> = (1..=60).map(|i| timed_out(w(i, i, i + 1))).collect();
        ops.extend((0..60).map(|i| r(0, 100 + i * 10, 105 + i * 10)));
        let small = Bounds {
            max_states: 1000,
            ..Bounds::default()
        };
        let rep = check(&ops, small);
        assert!(rep.linearizable() && rep.complete(), "{rep:?}");
    }

    /// A second implementation, by brute force: every subset of the timed-out writes, every
    /// order that respects real time, a register from 0. Only for a handful of operations.
    fn brute_force(ops: &[Operation]) -> bool {
        let ops: Vec<Operation> = ops
            .iter()
            .filter(|o| o.kind == Kind::Write || o.complete.is_some())
            .copied()
            .collect();
        let optional: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].complete.is_none())
            .collect();
        (0..1u32 << optional.len()).any(|mask| {
            let chosen: Vec<Operation> = (0..ops.len())
                .filter(|i| match optional.iter().position(|j| j == i) {
                    Some(bit) => mask >> bit & 1 == 1,
                    None => true,
                })
                .map(|i| ops[i])
                .collect();
            orders(&chosen, &mut vec![false; chosen.len()], 0)
        })
    }

    /// Whether the ops not yet `used` can follow in some order from register `value`.
    fn orders(ops: &[Operation], used: &mut Vec<bool>, value: u64) -> bool {
        if used.iter().all(|&u| u) {
            return true;
        }
        for i in 0..ops.len() {
            // `i` may go next only if no op still to place finished before it began.
            let blocked =
                (0..ops.len()).any(|j| !used[j] && j != i && ops[j].end() < ops[i].invoke);
            if used[i] || blocked {
                continue;
            }
            let next = match ops[i].kind {
                Kind::Write => ops[i].value,
                Kind::Read if ops[i].value == value => value,
                Kind::Read => continue,
            };
            used[i] = true;
            let ok = orders(ops, used, next);
            used[i] = false;
            if ok {
                return true;
            }
        }
        false
    }

    #[test]
    fn the_checker_agrees_with_brute_force_on_small_random_histories() {
        use crate::sim::rng::{RandomSource, SimRng};
        let mut rng = SimRng::derive(5, "brute");
        let (mut yes, mut no) = (0, 0);
        for round in 0..3000 {
            let n = 2 + rng.below(6);
            let mut written = vec![0];
            let ops: Vec<Operation> = (0..n)
                .map(|i| {
                    let invoke = rng.below(40);
                    let complete = invoke + 1 + rng.below(25);
                    let op = if rng.below(2) == 0 {
                        written.push(i + 1);
                        w(i + 1, invoke, complete)
                    } else {
                        let v = written[rng.below(written.len() as u64) as usize];
                        r(v, invoke, complete)
                    };
                    if rng.below(4) == 0 { timed_out(op) } else { op }
                })
                .collect();
            let want = brute_force(&ops);
            let rep = verdict(&ops);
            assert!(rep.complete(), "round {round}");
            assert_eq!(rep.linearizable(), want, "round {round}: {ops:?}");
            if want { yes += 1 } else { no += 1 }
        }
        // Both outcomes are well represented.
        assert!(yes > 500 && no > 500, "{yes} linearizable, {no} not");
    }
}
