//! Time to recover: how long after a fault ends the windowed availability and p99 latency are
//! back within 10% of what they were before it.
//!
//! ```text
//!   warm-up │ baseline windows │ fault │ w w w w │ first window (with the next one) back in band
//!           └ no fault, no     ┘       ├────────┘
//!             earlier recovery     end  time to recover (whole windows)
//! ```
//!
//! The baseline is measured over the windows that lie wholly after the warm-up and before the
//! fault starts, overlap no fault window and are not still recovering from an earlier fault
//! (from that fault's end to its recovery, or to the end of the run if it never recovered;
//! a fault without a baseline of its own has no known recovery and leaves nothing out):
//! availability as ok / (ok + errors) summed over them, p99 as the mean of their per-window
//! p99. A window is *in band* when its availability is at least 90% of the baseline's and its
//! p99 at most 110% of the baseline's (better is always in band). The fault has recovered at
//! the start of the first window wholly after its end that is in band together with the window
//! after it (one lucky window is not a recovery); a window without completions or without
//! successes is not in band. The resolution is one window.
//!
//! Faults are taken in order of their start, so an earlier fault's recovery is known before a
//! later fault's baseline is measured. The cost is O(F log F + W log² W) for F faults and W
//! windows: which windows overlap a fault comes from one sweep over the sorted faults, the
//! baseline sums from Fenwick trees over the windows still eligible, and the first window back
//! in band from a segment tree that keeps, per node, the windows no other window beats on both
//! availability and p99 (so tens of thousands of random faults cost little more than none).

use crate::results::{FaultWindow, RecoveryResult, WindowResult};

/// How far from the baseline still counts as recovered (a fraction of the baseline).
pub const TOLERANCE: f64 = 0.10;

/// One [`RecoveryResult`] per fault window, in the order given.
///
/// `windows` are a variant's time windows from time 0, each `window_s` wide; only those that
/// end by `arrivals_end_s` are used (later ones drain the requests still in flight).
pub fn time_to_recover(
    windows: &[WindowResult],
    faults: &[FaultWindow],
    warmup_s: f64,
    window_s: f64,
    arrivals_end_s: f64,
) -> Vec<RecoveryResult> {
    // Window starts are multiples of the width, printed as decimals: compare with a margin.
    let eps = window_s * 1e-9;
    let measured: Vec<&WindowResult> = windows
        .iter()
        .filter(|w| w.start_s + window_s <= arrivals_end_s + eps)
        .collect();
    let mut order: Vec<usize> = (0..faults.len()).collect();
    order.sort_by(|&a, &b| faults[a].start_s.total_cmp(&faults[b].start_s));
    let mut eligible = Eligible::new(&measured, faults, &order, warmup_s, window_s, eps);
    let firsts = FirstInBand::new(&measured);
    let mut out: Vec<Option<RecoveryResult>> = vec![None; faults.len()];
    for &i in &order {
        let f = &faults[i];
        // Windows wholly before the fault's start.
        let before = measured.partition_point(|w| w.start_s + window_s <= f.start_s + eps);
        let base = eligible.baseline(before);
        let first_after = measured.partition_point(|w| w.start_s + eps < f.end_s);
        let recovered = base.and_then(|(a, p)| {
            let floor = a * (1.0 - TOLERANCE);
            let ceiling = p * (1.0 + TOLERANCE);
            firsts.find(first_after, floor, ceiling)
        });
        // Windows from the end until recovery (all, if never) are not quiet for later faults;
        // without a baseline there is no telling, and nothing is left out.
        if base.is_some() {
            eligible.exclude(first_after, recovered.unwrap_or(measured.len()));
        }
        out[i] = Some(RecoveryResult {
            fault: f.label.clone(),
            start_s: f.start_s,
            end_s: f.end_s,
            baseline_availability: base.map(|b| b.0),
            baseline_p99_ms: base.map(|b| b.1),
            recovered_after_s: recovered.map(|w| (measured[w].start_s - f.end_s).max(0.0)),
            random: f.random,
        });
    }
    out.into_iter().flatten().collect()
}

/// The windows that may still serve as a baseline, with prefix sums over them.
struct Eligible<'a> {
    windows: &'a [&'a WindowResult],
    /// Fenwick trees over window index: ok, ok + errors, sum of p99, windows with a p99.
    sums: [Fenwick; 4],
    eligible: Vec<bool>,
    /// `next[i]`: the first window at or after `i` not yet excluded (path-compressed).
    next: Vec<usize>,
}

impl<'a> Eligible<'a> {
    /// Every window after the warm-up that overlaps no fault.
    fn new(
        windows: &'a [&'a WindowResult],
        faults: &[FaultWindow],
        order: &[usize],
        warmup_s: f64,
        window_s: f64,
        eps: f64,
    ) -> Self {
        let n = windows.len();
        let mut depth = vec![0i64; n + 1];
        for &i in order {
            let g = &faults[i];
            let first = windows.partition_point(|w| w.start_s + window_s - eps <= g.start_s);
            let last = windows.partition_point(|w| w.start_s < g.end_s - eps);
            if first < last {
                depth[first] += 1;
                depth[last] -= 1;
            }
        }
        let mut e = Eligible {
            windows,
            sums: std::array::from_fn(|_| Fenwick::new(n)),
            eligible: vec![false; n],
            next: (0..=n).collect(),
        };
        let mut inside = 0;
        for (i, w) in windows.iter().enumerate() {
            inside += depth[i];
            if inside == 0 && w.start_s + eps >= warmup_s {
                e.eligible[i] = true;
                e.add(i, 1.0);
            }
        }
        e
    }

    fn add(&mut self, i: usize, sign: f64) {
        let w = self.windows[i];
        let values = [
            w.ok as f64,
            (w.ok + w.errors) as f64,
            w.p99_ms.unwrap_or(0.0),
            f64::from(u8::from(w.p99_ms.is_some())),
        ];
        for (tree, v) in self.sums.iter_mut().zip(values) {
            tree.add(i, sign * v);
        }
    }

    /// (availability, mean p99 in ms) over the eligible windows before index `before`; `None`
    /// without any window that had successes.
    fn baseline(&self, before: usize) -> Option<(f64, f64)> {
        let [ok, total, p99_sum, p99_n] = self.sums.each_ref().map(|t| t.prefix(before));
        (total > 0.5 && p99_n > 0.5).then(|| (ok / total, p99_sum / p99_n))
    }

    /// Windows `from..to` are no longer eligible.
    fn exclude(&mut self, from: usize, to: usize) {
        let mut i = self.find_next(from);
        while i < to {
            if self.eligible[i] {
                self.eligible[i] = false;
                self.add(i, -1.0);
            }
            self.next[i] = i + 1;
            i = self.find_next(i + 1);
        }
    }

    fn find_next(&mut self, i: usize) -> usize {
        let mut root = i;
        while self.next[root] != root {
            root = self.next[root];
        }
        let mut j = i;
        while self.next[j] != root {
            let up = self.next[j];
            self.next[j] = root;
            j = up;
        }
        root
    }
}

/// A Fenwick (binary indexed) tree of sums over `n` slots. Sums of whole counts and of p99
/// values are exact enough in `f64` that adding and removing a window leaves no visible trace.
struct Fenwick(Vec<f64>);

impl Fenwick {
    fn new(n: usize) -> Self {
        Fenwick(vec![0.0; n + 1])
    }

    fn add(&mut self, i: usize, v: f64) {
        let mut k = i + 1;
        while k < self.0.len() {
            self.0[k] += v;
            k += k & k.wrapping_neg();
        }
    }

    /// Sum over slots `0..end`.
    fn prefix(&self, end: usize) -> f64 {
        let (mut k, mut s) = (end, 0.0);
        while k > 0 {
            s += self.0[k];
            k &= k - 1;
        }
        s
    }
}

/// The first window, from a given one on, that is in band together with its successor: a
/// segment tree over windows whose every node keeps the skyline of its (availability, p99)
/// pairs, the pairs no other pair of the node beats on both.
struct FirstInBand {
    /// Number of leaves (a power of two, at least the number of windows).
    leaves: usize,
    /// Node `k` (1 the root, `2k` and `2k+1` its children): its skyline, availability falling
    /// (and so p99 falling too).
    nodes: Vec<Vec<(f64, f64)>>,
}

impl FirstInBand {
    fn new(windows: &[&WindowResult]) -> Self {
        let n = windows.len();
        let leaves = n.next_power_of_two().max(1);
        let mut nodes = vec![Vec::new(); 2 * leaves];
        let value = |w: &WindowResult| match (w.availability, w.p99_ms) {
            (Some(a), Some(p)) => (a, p),
            // Without completions or successes a window is never in band.
            _ => (f64::NEG_INFINITY, f64::INFINITY),
        };
        for i in 0..n {
            let (a, p) = value(windows[i]);
            // The last window counts on its own.
            let (a2, p2) = windows.get(i + 1).map_or((a, p), |w| value(w));
            nodes[leaves + i] = vec![(a.min(a2), p.max(p2))];
        }
        for k in (1..leaves).rev() {
            nodes[k] = skyline(&nodes[2 * k], &nodes[2 * k + 1]);
        }
        FirstInBand { leaves, nodes }
    }

    /// The first window at or after `from` whose pair has availability >= `floor` and p99 <=
    /// `ceiling`.
    fn find(&self, from: usize, floor: f64, ceiling: f64) -> Option<usize> {
        self.descend(1, 0, self.leaves, from, floor, ceiling)
    }

    fn descend(
        &self,
        k: usize,
        lo: usize,
        hi: usize,
        from: usize,
        floor: f64,
        ceiling: f64,
    ) -> Option<usize> {
        if hi <= from || !fits(&self.nodes[k], floor, ceiling) {
            return None;
        }
        if hi - lo == 1 {
            return Some(lo);
        }
        let mid = (lo + hi) / 2;
        self.descend(2 * k, lo, mid, from, floor, ceiling)
            .or_else(|| self.descend(2 * k + 1, mid, hi, from, floor, ceiling))
    }
}

/// Does some pair of the skyline have availability >= `floor` and p99 <= `ceiling`? Of the
/// pairs with availability >= `floor` (a prefix), the last has the lowest p99.
fn fits(sky: &[(f64, f64)], floor: f64, ceiling: f64) -> bool {
    let k = sky.partition_point(|&(a, _)| a >= floor);
    k > 0 && sky[k - 1].1 <= ceiling
}

/// The skyline of two skylines' union.
fn skyline(left: &[(f64, f64)], right: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut all: Vec<(f64, f64)> = left.iter().chain(right).copied().collect();
    all.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.total_cmp(&y.1)));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(all.len());
    for (a, p) in all {
        if out.last().is_none_or(|&(_, best)| p < best) {
            out.push((a, p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows of 1 s from time 0 with the given (availability, p99) per window.
    fn windows(values: &[(f64, f64)]) -> Vec<WindowResult> {
        values
            .iter()
            .enumerate()
            .map(|(i, &(a, p))| {
                let ok = (a * 100.0).round() as u64;
                WindowResult {
                    start_s: i as f64,
                    ok,
                    errors: 100 - ok,
                    availability: Some(a),
                    throughput_rps: ok as f64,
                    p50_ms: Some(p / 2.0),
                    p99_ms: (ok > 0).then_some(p),
                }
            })
            .collect()
    }

    fn fault(start_s: f64, end_s: f64) -> FaultWindow {
        FaultWindow {
            label: "crash app".into(),
            start_s,
            end_s,
            random: false,
        }
    }

    #[test]
    fn recovery_is_the_first_window_back_in_band_with_its_successor() {
        // Warm-up window 0 (ignored though awful); baseline windows 1..=3: availability
        // 297/300 = 0.99, p99 mean (10 + 12 + 14) / 3 = 12 ms. Fault [4, 6).
        // Window 6: availability 0.5 (out); 7: 0.95 but p99 14 > 13.2 (out); 8: in band but
        // 9 is not (lucky); 10 and 11 in band: recovered 10 - 6 = 4 s after the end.
        let w = windows(&[
            (0.1, 500.0),
            (1.0, 10.0),
            (0.98, 12.0),
            (0.99, 14.0),
            (0.0, 0.0),
            (0.2, 90.0),
            (0.5, 40.0),
            (0.95, 14.0),
            (0.9, 13.0),
            (0.8, 11.0),
            (0.9, 13.2),
            (1.0, 8.0),
        ]);
        let r = time_to_recover(&w, &[fault(4.0, 6.0)], 1.0, 1.0, 12.0);
        assert_eq!(r.len(), 1);
        assert!((r[0].baseline_availability.unwrap() - 0.99).abs() < 1e-12);
        assert!((r[0].baseline_p99_ms.unwrap() - 12.0).abs() < 1e-12);
        assert_eq!(r[0].recovered_after_s, Some(4.0));
    }

    #[test]
    fn never_recovered_no_baseline_and_other_faults_left_out_of_the_baseline() {
        let w = windows(&[
            (1.0, 10.0),
            (1.0, 10.0),
            (0.5, 50.0),
            (1.0, 10.0),
            (0.5, 30.0),
            (0.5, 30.0),
            (0.7, 30.0),
        ]);
        // The first fault [2, 3) has windows 0..=1 as baseline and recovers at once (window 3
        // and 4? 4 is out: the last window that ends by the arrivals' end is 5, so window 3
        // needs window 4 in band: not recovered until never).
        let faults = [fault(2.0, 3.0), fault(4.0, 4.5)];
        let r = time_to_recover(&w, &faults, 0.0, 1.0, 6.0);
        assert_eq!(
            r[0].recovered_after_s, None,
            "window 3 alone is a lucky one"
        );
        // The second fault's baseline skips window 2 (inside the first fault): windows 0, 1
        // and 3, all perfect.
        assert_eq!(r[1].baseline_availability, Some(1.0));
        assert_eq!(r[1].baseline_p99_ms, Some(10.0));
        assert_eq!(
            r[1].recovered_after_s, None,
            "window 6 ends after the arrivals"
        );
        // A fault during the warm-up has no baseline.
        let r = time_to_recover(&w, &[fault(0.5, 1.0)], 0.0, 1.0, 6.0);
        assert_eq!(r[0].baseline_availability, None);
        assert_eq!(r[0].recovered_after_s, None);
        // Recovered in the very first window after the end when it and the next are in band;
        // the last measured window counts on its own.
        let w = windows(&[(1.0, 10.0), (0.0, 0.0), (1.0, 10.5), (0.95, 9.0)]);
        let r = time_to_recover(&w, &[fault(1.0, 1.5)], 0.0, 1.0, 4.0);
        assert_eq!(r[0].recovered_after_s, Some(0.5));
        let r = time_to_recover(&w, &[fault(1.0, 3.0)], 0.0, 1.0, 4.0);
        assert_eq!(r[0].recovered_after_s, Some(0.0));
    }

    #[test]
    fn windows_still_recovering_from_an_earlier_fault_are_not_a_baseline() {
        // Fault A [2, 3) recovers 2 windows after its end (window 5, with 6); windows 3 and 4
        // are still recovering (p99 40 ms), so fault B [7, 8) has windows 0, 1, 5 and 6 as
        // its baseline: p99 10 ms, not (10 + 10 + 40 + 40 + 10 + 10) / 6.
        let w = windows(&[
            (1.0, 10.0),
            (1.0, 10.0),
            (0.2, 90.0),
            (1.0, 40.0),
            (1.0, 40.0),
            (1.0, 10.0),
            (1.0, 10.0),
            (0.5, 90.0),
            (1.0, 10.0),
            (1.0, 10.0),
        ]);
        // Fault A's baseline is windows 0, 1 (p99 10): windows 3, 4 are out of band.
        let r = time_to_recover(&w, &[fault(2.0, 3.0), fault(7.0, 8.0)], 0.0, 1.0, 10.0);
        assert_eq!(r[0].recovered_after_s, Some(2.0));
        assert_eq!(r[1].baseline_p99_ms, Some(10.0));
        assert_eq!(r[1].recovered_after_s, Some(0.0));
        // A fault that never recovered leaves no quiet window after it.
        let r = time_to_recover(&w[..5], &[fault(2.0, 3.0), fault(4.0, 4.5)], 0.0, 1.0, 5.0);
        assert_eq!(r[0].recovered_after_s, None);
        assert_eq!(r[1].baseline_p99_ms, Some(10.0), "windows 0 and 1 only");
    }

    /// A fault's (baseline availability, baseline p99, time to recover).
    type Expected = (Option<f64>, Option<f64>, Option<f64>);

    /// The definition, written out directly (quadratic in faults and windows), to compare the
    /// fast version against.
    fn reference(
        windows: &[WindowResult],
        faults: &[FaultWindow],
        warmup_s: f64,
        window_s: f64,
        end_s: f64,
    ) -> Vec<Option<Expected>> {
        let eps = window_s * 1e-9;
        let m: Vec<&WindowResult> = windows
            .iter()
            .filter(|w| w.start_s + window_s <= end_s + eps)
            .collect();
        let mut order: Vec<usize> = (0..faults.len()).collect();
        order.sort_by(|&a, &b| faults[a].start_s.total_cmp(&faults[b].start_s));
        let mut recovering = vec![false; m.len()];
        let mut out = vec![None; faults.len()];
        for i in order {
            let f = &faults[i];
            let quiet: Vec<&WindowResult> = (0..m.len())
                .filter(|&k| {
                    let w = m[k];
                    !recovering[k]
                        && w.start_s + eps >= warmup_s
                        && w.start_s + window_s <= f.start_s + eps
                        && !faults.iter().any(|g| {
                            w.start_s < g.end_s - eps && g.start_s < w.start_s + window_s - eps
                        })
                })
                .map(|k| m[k])
                .collect();
            let (ok, total) = quiet
                .iter()
                .fold((0, 0), |(o, t), w| (o + w.ok, t + w.ok + w.errors));
            let p99: Vec<f64> = quiet.iter().filter_map(|w| w.p99_ms).collect();
            let base = (total > 0 && !p99.is_empty()).then(|| {
                (
                    ok as f64 / total as f64,
                    p99.iter().sum::<f64>() / p99.len() as f64,
                )
            });
            let after: Vec<usize> = (0..m.len())
                .filter(|&k| m[k].start_s + eps >= f.end_s)
                .collect();
            let found = base.and_then(|(a, p)| {
                let in_band = |w: &WindowResult| match (w.availability, w.p99_ms) {
                    (Some(wa), Some(wp)) => wa >= a * 0.9 && wp <= p * 1.1,
                    _ => false,
                };
                (0..after.len()).find(|&j| {
                    in_band(m[after[j]]) && after.get(j + 1).is_none_or(|&n| in_band(m[n]))
                })
            });
            let until = match (base, found) {
                (None, _) => 0,
                (Some(_), None) => m.len(),
                (Some(_), Some(j)) => after[j],
            };
            for k in after.iter().copied().filter(|&k| k < until) {
                recovering[k] = true;
            }
            let recovered = found.map(|j| (m[after[j]].start_s - f.end_s).max(0.0));
            out[i] = Some((base.map(|b| b.0), base.map(|b| b.1), recovered));
        }
        out
    }

    #[test]
    fn the_fast_version_agrees_with_the_definition_on_random_runs() {
        use crate::sim::rng::{RandomSource, SimRng};
        let mut rng = SimRng::derive(3, "recovery");
        for case in 0..200 {
            let n = 1 + rng.below(40) as usize;
            let values: Vec<(f64, f64)> = (0..n)
                .map(|_| {
                    let a = [1.0, 0.99, 0.95, 0.8, 0.0][rng.below(5) as usize];
                    (a, [10.0, 10.5, 12.0, 30.0][rng.below(4) as usize])
                })
                .collect();
            let w = windows(&values);
            let faults: Vec<FaultWindow> = (0..rng.below(12))
                .map(|_| {
                    let start = rng.below(n as u64 * 4) as f64 / 4.0;
                    fault(start, start + rng.below(12) as f64 / 4.0)
                })
                .collect();
            let warmup = rng.below(3) as f64;
            let end = n as f64 - rng.below(2) as f64;
            let fast = time_to_recover(&w, &faults, warmup, 1.0, end);
            let slow = reference(&w, &faults, warmup, 1.0, end);
            for (f, s) in fast.iter().zip(&slow) {
                let s = s.expect("every fault");
                let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
                    (Some(x), Some(y)) => (x - y).abs() < 1e-9,
                    (None, None) => true,
                    _ => false,
                };
                assert!(
                    close(f.baseline_availability, s.0)
                        && close(f.baseline_p99_ms, s.1)
                        && close(f.recovered_after_s, s.2),
                    "case {case}: {f:?} vs {s:?}"
                );
            }
        }
    }
}
