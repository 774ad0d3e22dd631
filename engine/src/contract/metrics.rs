//! Streaming metrics of one run: request outcomes, latency histograms and time windows.
//!
//! Memory grows with histogram buckets and the number of windows, never with the number of
//! requests: each completed request is folded into counters and HDR histograms at once.

use crate::contract::call::Cause;
use crate::contract::hdr_counts::HdrCounts;
use crate::contract::trace::Tracer;
use crate::results::{
    EventRecord, LatencySummary, SeriesResult, ServerResult, Verdict, WindowResult,
};
use crate::sim::time::{SimDuration, SimTime};
use std::collections::BTreeMap;

/// Largest latency the histograms resolve (one hour); longer ones are recorded as one hour.
const HIGHEST_NS: u64 = 3_600_000_000_000;
/// At most this many time windows per run: a longer run gets wider windows. Series and the
/// request windows keep no more than this many either, however long the drain after
/// `duration` lasts: what happens past the last window is counted, not windowed.
pub const MAX_WINDOWS: u64 = 1_000;

/// The window `t` falls in, or `None` past the last one a run can have ([`MAX_WINDOWS`]).
#[inline]
pub fn window_index(t: SimTime, window: SimDuration) -> Option<usize> {
    let i = t.0 / window.0;
    (i < MAX_WINDOWS).then_some(i as usize)
}

/// How many windows a series ending at `end` reports: at most [`MAX_WINDOWS`].
pub fn windows_until(end: SimTime, window: SimDuration) -> usize {
    end.0.div_ceil(window.0).min(MAX_WINDOWS) as usize
}

/// What a component reports about itself at the end of a run. Every part is optional; a
/// component fills in what it measures and leaves the rest at its default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeStats {
    /// A server replica's utilisation and queue statistics.
    pub server: Option<ServerResult>,
    /// Named counters, shown per node in `results.json` and `summary.md`.
    pub counters: BTreeMap<String, f64>,
    /// Time series, one value per time window; each distinct series name gets a plot.
    pub series: Vec<SeriesResult>,
    /// Timestamped state changes (a breaker opening, a leader elected), in time order.
    pub events: Vec<EventRecord>,
    /// A checker's verdicts, each saying what it checked, found violated and left unchecked.
    pub verdicts: Vec<Verdict>,
}

impl NodeStats {
    /// Stats made of counters only.
    pub fn counters<K: Into<String>>(counters: impl IntoIterator<Item = (K, f64)>) -> Self {
        NodeStats {
            counters: counters.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            ..NodeStats::default()
        }
    }
}

/// How a [`Series`] folds the values it is given into one number per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesKind {
    /// The sum of the amounts added in the window (a count: commits, evictions, messages).
    Sum,
    /// The sum divided by the window width in seconds (a rate per second).
    Rate,
    /// The mean of the samples recorded in the window (a ratio when samples are 0 or 1, such as
    /// hits); `null` in windows without samples.
    Mean,
    /// The time-weighted average of a level set with [`Series::set`] (a queue depth, the
    /// number of blocked participants); the level holds until it is set again.
    Level,
}

/// A per-window time series a component keeps while it runs. Memory grows with the number of
/// windows (bounded by [`MAX_WINDOWS`], also in a drain far past `duration`), never with the
/// number of values recorded.
#[derive(Clone, Debug)]
pub struct Series {
    kind: SeriesKind,
    window: SimDuration,
    /// Per window: (sum of values or of level × time, number of samples or covered time).
    acc: Vec<(f64, f64)>,
    level: f64,
    level_since: SimTime,
}

impl Series {
    /// A series of `kind` with windows of `window` (use `BuildCtx::window`).
    pub fn new(kind: SeriesKind, window: SimDuration) -> Self {
        Series {
            kind,
            window: SimDuration(window.0.max(1)),
            acc: Vec::new(),
            level: 0.0,
            level_since: SimTime(0),
        }
    }

    fn slot(&mut self, i: usize) -> &mut (f64, f64) {
        if self.acc.len() <= i {
            self.acc.resize(i + 1, (0.0, 0.0));
        }
        &mut self.acc[i]
    }

    /// Add `amount` at `now` ([`SeriesKind::Sum`], [`SeriesKind::Rate`]) or record one sample
    /// ([`SeriesKind::Mean`]); past the last window it is dropped.
    pub fn add(&mut self, now: SimTime, amount: f64) {
        if let Some(i) = window_index(now, self.window) {
            let slot = self.slot(i);
            slot.0 += amount;
            slot.1 += 1.0;
        }
    }

    /// The level is `level` from `now` on ([`SeriesKind::Level`]).
    pub fn set(&mut self, now: SimTime, level: f64) {
        self.advance(now);
        self.level = level;
    }

    /// The current level of a [`SeriesKind::Level`] series.
    pub fn level(&self) -> f64 {
        self.level
    }

    /// Fold the current level into the windows up to `now` (and no further than the last).
    fn advance(&mut self, now: SimTime) {
        let mut t = self.level_since;
        while t < now {
            let Some(i) = window_index(t, self.window) else {
                break;
            };
            let window_end = SimTime((i as u64 + 1).saturating_mul(self.window.0)).min(now);
            let dt = window_end.since(t).0 as f64;
            let level = self.level;
            let slot = self.slot(i);
            slot.0 += level * dt;
            slot.1 += dt;
            t = window_end;
        }
        self.level_since = self.level_since.max(now);
    }

    /// The finished series, one value per window from time 0 until `end`.
    pub fn finish(&mut self, name: &str, title: &str, unit: &str, end: SimTime) -> SeriesResult {
        if self.kind == SeriesKind::Level {
            self.advance(end);
        }
        let n = windows_until(end, self.window);
        let width_s = self.window.as_secs_f64();
        let values = (0..n)
            .map(|i| {
                let (sum, weight) = self.acc.get(i).copied().unwrap_or((0.0, 0.0));
                match self.kind {
                    SeriesKind::Sum => Some(sum),
                    SeriesKind::Rate => Some(sum / width_s),
                    SeriesKind::Mean | SeriesKind::Level => (weight > 0.0).then(|| sum / weight),
                }
            })
            .collect();
        SeriesResult {
            name: name.to_string(),
            title: title.to_string(),
            unit: unit.to_string(),
            values,
            label: None,
            states: None,
        }
    }
}

/// Keeps timestamped state changes, at most `cap` of them (later ones are counted, not kept),
/// so memory stays bounded even for a component that flaps.
#[derive(Clone, Debug)]
pub struct EventLog {
    cap: usize,
    events: Vec<EventRecord>,
    dropped: u64,
}

impl EventLog {
    /// A log keeping at most `cap` events.
    pub fn new(cap: usize) -> Self {
        EventLog {
            cap,
            events: Vec::new(),
            dropped: 0,
        }
    }

    /// Record that `what` happened at `now`.
    pub fn record(&mut self, now: SimTime, what: impl Into<String>) {
        if self.events.len() < self.cap {
            self.events.push(EventRecord {
                at_s: now.as_secs_f64(),
                what: what.into(),
            });
        } else {
            self.dropped += 1;
        }
    }

    /// Events recorded so far.
    pub fn events(&self) -> &[EventRecord] {
        &self.events
    }

    /// Events beyond the cap, counted but not kept.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The kept events, leaving the log empty.
    pub fn take(&mut self) -> Vec<EventRecord> {
        std::mem::take(&mut self.events)
    }
}

struct Window {
    ok: u64,
    errors: u64,
    latency: HdrCounts<u32>,
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
    /// Latencies of the measured successful requests (3 significant digits).
    latency: HdrCounts<u64>,
    /// An empty window histogram (2 significant digits), the layout of each new window's.
    empty_window: HdrCounts<u32>,
    windows: Vec<Window>,
    /// The window the last request ended in, and its [start, end) in nanoseconds.
    last_window: usize,
    last_window_span: (u64, u64),
    /// The same metrics per request class, when the scenario declares classes.
    classes: Vec<RequestMetrics>,
    /// The sampled per-request traces, when asked for (`archsim run --trace N`).
    pub tracer: Option<Box<Tracer>>,
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
            latency: HdrCounts::new(HIGHEST_NS, 3),
            empty_window: HdrCounts::new(HIGHEST_NS, 2),
            windows: Vec::new(),
            last_window: 0,
            // Empty: the first request computes its window.
            last_window_span: (0, 0),
            classes: Vec::new(),
            tracer: None,
        }
    }

    /// The same metrics kept per request class too, for `n` classes (none when `n` is 0).
    pub fn with_classes(mut self, n: usize) -> Self {
        self.classes = (0..n)
            .map(|_| RequestMetrics::new(self.measure_from, self.window))
            .collect();
        self
    }

    /// The per-class metrics, by class index (empty without classes).
    pub fn classes(&self) -> &[RequestMetrics] {
        &self.classes
    }

    /// A client issued a request.
    pub fn started(&mut self) {
        self.started += 1;
    }

    /// A request ended, at `now`, having been issued at `issued_at` (of the first class, when
    /// there are classes).
    pub fn ended(&mut self, issued_at: SimTime, now: SimTime, result: Result<(), Cause>) {
        self.ended_in(0, issued_at, now, result);
    }

    /// A request of class `class` ended, at `now`, having been issued at `issued_at`.
    #[inline]
    pub fn ended_in(
        &mut self,
        class: u8,
        issued_at: SimTime,
        now: SimTime,
        result: Result<(), Cause>,
    ) {
        self.record(issued_at, now, result);
        if let Some(c) = self.classes.get_mut(class as usize) {
            c.record(issued_at, now, result);
        }
    }

    #[inline]
    fn record(&mut self, issued_at: SimTime, now: SimTime, result: Result<(), Cause>) {
        self.ended += 1;
        let latency_ns = now.since(issued_at).0.clamp(1, HIGHEST_NS);
        // Past the last window (a drain far past `duration`) it is counted, not windowed.
        if let Some(w) = self.window_at(now) {
            match result {
                Ok(()) => {
                    w.ok += 1;
                    w.latency.record(latency_ns);
                }
                Err(_) => w.errors += 1,
            }
        }
        if issued_at < self.measure_from {
            return;
        }
        self.requests += 1;
        match result {
            Ok(()) => {
                self.ok += 1;
                self.latency.record(latency_ns);
            }
            Err(cause) => self.errors[cause.idx()] += 1,
        }
    }

    fn window_at(&mut self, now: SimTime) -> Option<&mut Window> {
        // Most requests end in the window the previous one ended in: skip the division then.
        let (start, end) = self.last_window_span;
        let i = if start <= now.0 && now.0 < end {
            self.last_window
        } else {
            let i = window_index(now, self.window)?;
            self.last_window = i;
            let start = i as u64 * self.window.0;
            self.last_window_span = (start, start.saturating_add(self.window.0));
            i
        };
        while self.windows.len() <= i {
            self.windows.push(Window {
                ok: 0,
                errors: 0,
                latency: self.empty_window.empty_like(),
            });
        }
        Some(&mut self.windows[i])
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

    /// Failures in the summary, by cause name: the three basic causes always, the causes of
    /// the resilience components (rate limited, circuit open, shed, ...) only when they
    /// occurred, so designs without those components keep the same columns.
    pub fn errors(&self) -> BTreeMap<String, u64> {
        Cause::ALL
            .iter()
            .filter(|c| c.idx() < 3 || self.errors[c.idx()] > 0)
            .map(|c| (c.name().to_string(), self.errors[c.idx()]))
            .collect()
    }

    /// Mean and percentiles of successful requests' latency, in milliseconds.
    pub fn latency_summary(&self) -> LatencySummary {
        let h = &self.latency.histogram();
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
        let latency = self.latency.histogram();
        if latency.is_empty() {
            return Vec::new();
        }
        let mut qs: Vec<f64> = (0..90).map(|i| i as f64 / 100.0).collect();
        qs.extend((0..90).map(|i| 0.9 + i as f64 / 1000.0));
        qs.extend((0..90).map(|i| 0.99 + i as f64 / 10_000.0));
        qs.extend((0..90).map(|i| 0.999 + i as f64 / 100_000.0));
        qs.extend((0..100).map(|i| 0.9999 + i as f64 / 1_000_000.0));
        qs.push(1.0);
        let mut out: Vec<[f64; 2]> = Vec::with_capacity(qs.len());
        // One pass over the histogram for all of them (the quantiles are ascending).
        for (q, value) in qs
            .iter()
            .copied()
            .zip(latency.value_at_quantiles(qs.iter().copied()))
        {
            let ms = value as f64 / 1e6;
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
        let n = windows_until(end, self.window);
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
    let latency = w.latency.histogram();
    let quantile =
        |q: f64| (!latency.is_empty()).then(|| latency.value_at_quantile(q) as f64 / 1e6);
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
    fn series_fold_sums_rates_means_and_time_weighted_levels() {
        let w = SimDuration(1_000);
        let mut sum = Series::new(SeriesKind::Sum, w);
        let mut rate = Series::new(SeriesKind::Rate, SimDuration(1_000_000_000));
        let mut mean = Series::new(SeriesKind::Mean, w);
        let mut level = Series::new(SeriesKind::Level, w);
        for t in [10, 20, 1_500] {
            sum.add(SimTime(t), 2.0);
            mean.add(SimTime(t), if t < 1_000 { 1.0 } else { 0.0 });
        }
        rate.add(SimTime(5), 3.0);
        // Level 4 on [250, 1250), then 0: window 0 averages 4 × 0.75, window 1 is 4 × 0.25.
        level.set(SimTime(250), 4.0);
        level.set(SimTime(1_250), 0.0);
        let end = SimTime(3_000);
        assert_eq!(
            sum.finish("s", "", "", end).values,
            vec![Some(4.0), Some(2.0), Some(0.0)]
        );
        assert_eq!(
            rate.finish("r", "", "", SimTime(1_000_000_000)).values,
            vec![Some(3.0)]
        );
        assert_eq!(
            mean.finish("m", "", "", end).values,
            vec![Some(1.0), Some(0.0), None]
        );
        assert_eq!(
            level.finish("l", "", "", end).values,
            vec![Some(3.0), Some(1.0), Some(0.0)]
        );
    }

    #[test]
    fn event_log_is_bounded() {
        let mut log = EventLog::new(2);
        for t in 0..5 {
            log.record(SimTime(t), "x");
        }
        assert_eq!(log.events().len(), 2);
        assert_eq!(log.dropped(), 3);
    }

    #[test]
    fn classes_add_up_to_the_whole() {
        // Three classes, outcomes and latencies spread over windows and the warm-up; every
        // count of the classes sums to the overall one and their histograms merge to it.
        let mut m = RequestMetrics::new(SimTime(50_000), SimDuration(100_000)).with_classes(3);
        let causes = [Cause::Timeout, Cause::Rejected, Cause::Shed];
        for i in 0..3_000u64 {
            let class = (i * 7 % 3) as u8;
            let issued = SimTime(i * 97);
            let result = if i % 5 == 0 {
                Err(causes[(i % 3) as usize])
            } else {
                Ok(())
            };
            m.started();
            m.ended_in(
                class,
                issued,
                SimTime(issued.0 + 1 + i * i % 40_000),
                result,
            );
        }
        let classes = m.classes();
        let sum = |f: &dyn Fn(&RequestMetrics) -> u64| classes.iter().map(f).sum::<u64>();
        assert_eq!(sum(&|c| c.requests()), m.requests());
        assert_eq!(sum(&|c| c.ok()), m.ok());
        for (cause, n) in m.errors() {
            assert_eq!(sum(&|c| c.errors().get(&cause).copied().unwrap_or(0)), n);
        }
        let end = SimTime(400_000);
        for (i, w) in m.windows(end).iter().enumerate() {
            let (ok, errors) = classes.iter().fold((0, 0), |(o, e), c| {
                let cw = &c.windows(end)[i];
                (o + cw.ok, e + cw.errors)
            });
            assert_eq!((ok, errors), (w.ok, w.errors), "window {i}");
        }
        let mut merged = classes[0].latency.histogram();
        for c in &classes[1..] {
            merged.add(c.latency.histogram()).expect("same layout");
        }
        let whole = m.latency.histogram();
        assert_eq!(merged.len(), whole.len());
        let counts = |h: &hdrhistogram::Histogram<u64>| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(&merged), counts(&whole));
        assert!(
            classes
                .iter()
                .all(|c| c.requests() > 0 && c.requests() < m.requests())
        );
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
