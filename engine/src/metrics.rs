//! Streaming metrics of one run: request outcomes, latency histograms and time windows.
//!
//! Memory grows with histogram buckets and the number of windows, never with the number of
//! requests: each completed request is folded into counters and HDR histograms at once.

use crate::results::{LatencySummary, ServerResult, WindowResult};
use crate::sim::message::Cause;
use crate::sim::time::{SimDuration, SimTime};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// Largest latency the histograms resolve (one hour); longer ones are recorded as one hour.
const HIGHEST_NS: u64 = 3_600_000_000_000;
/// At most this many time windows per run: a longer run gets wider windows.
pub const MAX_WINDOWS: u64 = 1_000;

/// What a component reports about itself at the end of a run.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeStats {
    /// A server replica's utilisation and queue statistics.
    Server(ServerResult),
    /// Named counters, shown per node in `results.json`.
    Counters(BTreeMap<String, f64>),
}

struct Window {
    ok: u64,
    errors: u64,
    latency: Histogram<u32>,
}

/// Request outcomes of a run, folded as they happen.
pub struct RequestMetrics {
    measure_from: SimTime,
    window: SimDuration,
    started: u64,
    ended: u64,
    requests: u64,
    ok: u64,
    errors: [u64; Cause::ALL.len()],
    latency: Histogram<u64>,
    windows: Vec<Window>,
}

fn histogram<T: hdrhistogram::Counter>(sigfig: u8) -> Histogram<T> {
    // Bounds are constants known to be valid, so construction cannot fail.
    Histogram::new_with_bounds(1, HIGHEST_NS, sigfig).expect("valid histogram bounds")
}

impl RequestMetrics {
    /// Metrics that count requests issued from `measure_from` on, windowed by `window`.
    pub fn new(measure_from: SimTime, window: SimDuration) -> Self {
        RequestMetrics {
            measure_from,
            window: SimDuration(window.0.max(1)),
            started: 0,
            ended: 0,
            requests: 0,
            ok: 0,
            errors: [0; Cause::ALL.len()],
            latency: histogram(3),
            windows: Vec::new(),
        }
    }

    /// A client issued a request.
    pub fn started(&mut self) {
        self.started += 1;
    }

    /// A request ended, at `now`, having been issued at `issued_at`.
    pub fn ended(&mut self, issued_at: SimTime, now: SimTime, result: Result<(), Cause>) {
        self.ended += 1;
        let latency_ns = now.since(issued_at).0.clamp(1, HIGHEST_NS);
        let w = self.window_at(now);
        match result {
            Ok(()) => {
                w.ok += 1;
                w.latency.saturating_record(latency_ns);
            }
            Err(_) => w.errors += 1,
        }
        if issued_at < self.measure_from {
            return;
        }
        self.requests += 1;
        match result {
            Ok(()) => {
                self.ok += 1;
                self.latency.saturating_record(latency_ns);
            }
            Err(cause) => self.errors[cause.idx()] += 1,
        }
    }

    fn window_at(&mut self, now: SimTime) -> &mut Window {
        let i = (now.0 / self.window.0) as usize;
        while self.windows.len() <= i {
            self.windows.push(Window {
                ok: 0,
                errors: 0,
                latency: histogram(2),
            });
        }
        &mut self.windows[i]
    }

    /// Requests issued but not yet ended.
    pub fn in_flight(&self) -> u64 {
        self.started - self.ended
    }

    /// Requests counted in the summary (issued after warm-up).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Successful requests in the summary.
    pub fn ok(&self) -> u64 {
        self.ok
    }

    /// Failures in the summary, by cause name (every cause present).
    pub fn errors(&self) -> BTreeMap<String, u64> {
        Cause::ALL
            .iter()
            .map(|c| (c.name().to_string(), self.errors[c.idx()]))
            .collect()
    }

    /// Mean and percentiles of successful requests' latency, in milliseconds.
    pub fn latency_summary(&self) -> LatencySummary {
        let h = &self.latency;
        if h.is_empty() {
            return LatencySummary::default();
        }
        let ms = |ns: u64| ns as f64 / 1e6;
        LatencySummary {
            mean: h.mean() / 1e6,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }

    /// Points of the latency CDF, `[latency_ms, fraction]`, equally dense in every decade of the
    /// tail (90%, 99%, 99.9%, 99.99%), since that is where designs differ.
    pub fn latency_cdf(&self) -> Vec<[f64; 2]> {
        if self.latency.is_empty() {
            return Vec::new();
        }
        let mut qs: Vec<f64> = (0..90).map(|i| i as f64 / 100.0).collect();
        qs.extend((0..90).map(|i| 0.9 + i as f64 / 1000.0));
        qs.extend((0..90).map(|i| 0.99 + i as f64 / 10_000.0));
        qs.extend((0..90).map(|i| 0.999 + i as f64 / 100_000.0));
        qs.extend((0..100).map(|i| 0.9999 + i as f64 / 1_000_000.0));
        qs.push(1.0);
        let mut out: Vec<[f64; 2]> = Vec::with_capacity(qs.len());
        for q in qs {
            let ms = self.latency.value_at_quantile(q) as f64 / 1e6;
            if out.last().is_some_and(|p| p[0] == ms) {
                out.last_mut().expect("checked non-empty")[1] = q;
            } else {
                out.push([ms, q]);
            }
        }
        out
    }

    /// The time series, one entry per window from time 0 up to `end`.
    pub fn windows(&self, end: SimTime) -> Vec<WindowResult> {
        let n = end.0.div_ceil(self.window.0) as usize;
        let width_s = self.window.as_secs_f64();
        (0..n)
            .map(|i| {
                let start_s = i as f64 * width_s;
                match self.windows.get(i) {
                    None => WindowResult {
                        start_s,
                        ok: 0,
                        errors: 0,
                        availability: None,
                        throughput_rps: 0.0,
                        p50_ms: None,
                        p99_ms: None,
                    },
                    Some(w) => window_result(w, start_s, width_s),
                }
            })
            .collect()
    }
}

fn window_result(w: &Window, start_s: f64, width_s: f64) -> WindowResult {
    let done = w.ok + w.errors;
    let quantile =
        |q: f64| (!w.latency.is_empty()).then(|| w.latency.value_at_quantile(q) as f64 / 1e6);
    WindowResult {
        start_s,
        ok: w.ok,
        errors: w.errors,
        availability: (done > 0).then(|| w.ok as f64 / done as f64),
        throughput_rps: w.ok as f64 / width_s,
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_left_out_of_the_summary_but_not_the_windows() {
        let mut m = RequestMetrics::new(SimTime(1_000), SimDuration(1_000));
        for issued in [0, 500, 1_000, 1_500] {
            m.started();
            m.ended(SimTime(issued), SimTime(issued + 100), Ok(()));
        }
        m.started();
        m.ended(SimTime(1_900), SimTime(2_100), Err(Cause::Timeout));
        assert_eq!(m.requests(), 3);
        assert_eq!(m.ok(), 2);
        assert_eq!(m.errors()["timeout"], 1);
        assert_eq!(m.in_flight(), 0);
        let w = m.windows(SimTime(3_000));
        assert_eq!(w.len(), 3);
        assert_eq!((w[0].ok, w[1].ok, w[2].errors), (2, 2, 1));
        assert_eq!(w[2].availability, Some(0.0));
    }

    #[test]
    fn cdf_is_monotone_and_ends_at_one() {
        let mut m = RequestMetrics::new(SimTime(0), SimDuration(1_000_000_000));
        for i in 1..=1000u64 {
            m.started();
            m.ended(SimTime(0), SimTime(i * 1_000), Ok(()));
        }
        let cdf = m.latency_cdf();
        assert!(
            cdf.windows(2)
                .all(|p| p[0][0] < p[1][0] && p[0][1] < p[1][1])
        );
        assert_eq!(cdf.last().unwrap()[1], 1.0);
        let s = m.latency_summary();
        assert!((s.p50 - 0.5).abs() < 0.001, "{s:?}");
    }
}
