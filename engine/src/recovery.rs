//! Time to recover: how long after a fault ends the windowed availability and p99 latency are
//! back within 10% of what they were before it.
//!
//! ```text
//!   warm-up │ baseline windows │ fault │ w w w w │ first window (with the next one) back in band
//!           └── no other fault ┘       ├────────┘
//!                                  end  time to recover (whole windows)
//! ```
//!
//! The baseline is measured over the windows that lie wholly after the warm-up and before the
//! fault starts and overlap no fault window: availability as ok / (ok + errors) summed over
//! them, p99 as the mean of their per-window p99. A window is *in band* when its availability is
//! at least 90% of the baseline's and its p99 at most 110% of the baseline's (better is always
//! in band). The fault has recovered at the start of the first window wholly after its end that
//! is in band together with the window after it (one lucky window is not a recovery); a window
//! without completions or without successes is not in band. The resolution is one window.

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
    faults
        .iter()
        .map(|f| {
            let quiet = |w: &WindowResult| {
                w.start_s + eps >= warmup_s
                    && w.start_s + window_s <= f.start_s + eps
                    && !faults.iter().any(|g| {
                        w.start_s < g.end_s - eps && g.start_s < w.start_s + window_s - eps
                    })
            };
            let before: Vec<&WindowResult> =
                measured.iter().copied().filter(|w| quiet(w)).collect();
            let base = baseline(&before);
            let after: Vec<&WindowResult> = measured
                .iter()
                .copied()
                .filter(|w| w.start_s + eps >= f.end_s)
                .collect();
            let recovered_after_s = base.and_then(|(a, p)| {
                let in_band = |w: &WindowResult| match (w.availability, w.p99_ms) {
                    (Some(wa), Some(wp)) => {
                        wa >= a * (1.0 - TOLERANCE) && wp <= p * (1.0 + TOLERANCE)
                    }
                    _ => false,
                };
                (0..after.len())
                    .find(|&i| in_band(after[i]) && after.get(i + 1).is_none_or(|n| in_band(n)))
                    .map(|i| (after[i].start_s - f.end_s).max(0.0))
            });
            RecoveryResult {
                fault: f.label.clone(),
                start_s: f.start_s,
                end_s: f.end_s,
                baseline_availability: base.map(|b| b.0),
                baseline_p99_ms: base.map(|b| b.1),
                recovered_after_s,
            }
        })
        .collect()
}

/// (availability, mean p99 in ms) over the baseline windows; `None` without any window that
/// had successes.
fn baseline(windows: &[&WindowResult]) -> Option<(f64, f64)> {
    let (ok, total) = windows
        .iter()
        .fold((0u64, 0u64), |(o, t), w| (o + w.ok, t + w.ok + w.errors));
    let p99: Vec<f64> = windows.iter().filter_map(|w| w.p99_ms).collect();
    if total == 0 || p99.is_empty() {
        return None;
    }
    let mean_p99 = p99.iter().sum::<f64>() / p99.len() as f64;
    Some((ok as f64 / total as f64, mean_p99))
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
}
