//! Workload shapes and trace replay: arrival rates that change over time (step, ramp, diurnal,
//! flash crowd, and products and sums of them), and the rows of a CSV trace replayed at their
//! own times.
//!
//! ```text
//!  Shaped(rate, shape):  arrivals are Poisson at rate × shape(t)
//!      thinning: draw at a bound B ≥ rate × shape over the next chunk, keep a candidate at t
//!      with probability rate × shape(t) / B; at a chunk's end start again (memoryless)
//!  Trace(file):          row i ─▶ one request at time(i) × time_scale, with its key, op, class
//!      repeat_every: p   the rows again at p + time(i), 2p + time(i), ...
//! ```
//! Thinning (Lewis and Shedler, 1979) is exact for any bounded rate: each candidate is kept with
//! the ratio of the rate at its time to the bound, so the arrivals are those of the
//! non-homogeneous Poisson process. The bound is recomputed per chunk so that a 10× step costs
//! extra draws only in the chunk that holds it.

use crate::sim::rng::{RandomSource, SimRng, stable_hash};
use crate::sim::time::{SimDuration, SimTime, parse_duration};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// How a base arrival rate changes over time: the rate at time t is `rate × factor(t)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Shape {
    /// The rate is multiplied by `factor` from `at` (until `until`, if given):
    /// `Step(at: "60s", factor: 10.0)`.
    Step {
        /// When the step happens (time since the run began).
        at: SimDuration,
        /// Multiplier from then on (>= 0).
        factor: f64,
        /// When the rate steps back to the base (time since the run began). Default: never.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<SimDuration>,
    },
    /// The multiplier goes linearly from `from` at `start` to `to` at `end`, and stays at each
    /// end outside that span: `Ramp(start: "10s", end: "70s", from: 1.0, to: 5.0)`.
    Ramp {
        /// Start of the ramp (time since the run began).
        start: SimDuration,
        /// End of the ramp (time since the run began).
        end: SimDuration,
        /// Multiplier up to `start` (>= 0). Default 1.
        #[serde(default = "one")]
        from: f64,
        /// Multiplier from `end` on (>= 0).
        to: f64,
    },
    /// A daily (or any periodic) cycle: multiplier `1 + amplitude × cos(2π (t − peak) / period)`,
    /// highest at `peak` and lowest half a period later:
    /// `Diurnal(period: "24h", amplitude: 0.6, peak: "14h")`.
    Diurnal {
        /// Length of one cycle (duration).
        period: SimDuration,
        /// Relative swing around the base (0..1): 0.6 goes from 0.4× to 1.6× the base rate.
        amplitude: f64,
        /// Time of the first peak (time since the run began). Default "0s".
        #[serde(default)]
        peak: SimDuration,
    },
    /// A flash crowd: at `at` the rate jumps to `peak` times the base and decays back
    /// exponentially with time constant `decay`: multiplier `1 + (peak − 1) e^(−(t − at)/decay)`:
    /// `FlashCrowd(at: "30s", peak: 10.0, decay: "20s")`.
    FlashCrowd {
        /// When the crowd arrives (time since the run began).
        at: SimDuration,
        /// Multiplier right after `at` (>= 0).
        peak: f64,
        /// Time constant of the decay back to the base rate (duration).
        decay: SimDuration,
    },
    /// The product of several shapes' multipliers: `Product([Diurnal(..), FlashCrowd(..)])`.
    Product(Vec<Shape>),
    /// The sum of several shapes' multipliers (two sources of traffic on top of each other):
    /// `Sum([Step(..), Step(..)])`.
    Sum(Vec<Shape>),
}

fn one() -> f64 {
    1.0
}

/// Deepest nesting of `Product` and `Sum`, and most shapes in all (evaluated per candidate).
const MAX_SHAPE_DEPTH: usize = 8;
const MAX_SHAPE_PARTS: usize = 64;

/// Thinning chunk: the bound is recomputed this often (simulated time), at least.
const CHUNK_NS: u64 = 100_000_000;

fn secs(d: SimDuration) -> f64 {
    d.as_secs_f64()
}

impl Shape {
    /// The multiplier at `t` (seconds since the run began).
    pub fn factor(&self, t: f64) -> f64 {
        match self {
            Shape::Step { at, factor, until } => {
                let on = t >= secs(*at) && until.is_none_or(|u| t < secs(u));
                if on { *factor } else { 1.0 }
            }
            Shape::Ramp {
                start,
                end,
                from,
                to,
            } => {
                let (s, e) = (secs(*start), secs(*end));
                if t <= s {
                    *from
                } else if t >= e {
                    *to
                } else {
                    from + (to - from) * (t - s) / (e - s)
                }
            }
            Shape::Diurnal {
                period,
                amplitude,
                peak,
            } => {
                let phase = (t - secs(*peak)) / secs(*period);
                1.0 + amplitude * libm::cos(2.0 * std::f64::consts::PI * phase)
            }
            Shape::FlashCrowd { at, peak, decay } => {
                if t < secs(*at) {
                    1.0
                } else {
                    1.0 + (peak - 1.0) * libm::exp(-(t - secs(*at)) / secs(*decay))
                }
            }
            Shape::Product(parts) => parts.iter().map(|p| p.factor(t)).product(),
            Shape::Sum(parts) => parts.iter().map(|p| p.factor(t)).sum(),
        }
    }

    /// An upper bound of the multiplier over [a, b] (seconds); exact for every shape but
    /// products and sums, whose parts may peak at different times.
    pub fn max_over(&self, a: f64, b: f64) -> f64 {
        let ends = self.factor(a).max(self.factor(b));
        match self {
            // Monotone on each side of its breakpoints, which are checked too.
            Shape::Step { at, factor, until } => {
                let on_inside = secs(*at) <= b && until.is_none_or(|u| secs(u) > a);
                if on_inside { ends.max(*factor) } else { ends }
            }
            Shape::Ramp { .. } => ends,
            Shape::Diurnal {
                period,
                amplitude,
                peak,
            } => {
                // Between a peak and the next trough the cosine is monotone: the maximum is at
                // an end unless a peak lies inside.
                let p = secs(*period);
                let k = libm::ceil((a - secs(*peak)) / p);
                let next_peak = secs(*peak) + k * p;
                if next_peak <= b {
                    1.0 + amplitude
                } else {
                    ends
                }
            }
            Shape::FlashCrowd { at, peak, .. } => {
                if secs(*at) >= a && secs(*at) <= b {
                    ends.max(*peak)
                } else {
                    ends
                }
            }
            Shape::Product(parts) => parts.iter().map(|p| p.max_over(a, b)).product(),
            Shape::Sum(parts) => parts.iter().map(|p| p.max_over(a, b)).sum(),
        }
    }

    /// Problems with the parameters, as (path below the shape, message, expected).
    pub fn problems(&self) -> Vec<(Vec<String>, String, String)> {
        let mut out = Vec::new();
        self.collect_problems(&mut Vec::new(), 0, &mut 0, &mut out);
        out
    }

    fn collect_problems(
        &self,
        path: &mut Vec<String>,
        depth: usize,
        parts: &mut usize,
        out: &mut Vec<(Vec<String>, String, String)>,
    ) {
        *parts += 1;
        let mut bad = |field: &str, what: String, expected: &str| {
            let mut p = path.clone();
            p.push(field.to_string());
            out.push((p, what, expected.to_string()));
        };
        let multiplier = "expected a finite multiplier >= 0";
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        match self {
            Shape::Step { at, factor, until } => {
                if !ok(*factor) {
                    bad("factor", format!("factor {factor}"), multiplier);
                }
                if until.is_some_and(|u| u <= *at) {
                    bad(
                        "until",
                        "`until` is not after `at`".into(),
                        "expected until > at",
                    );
                }
            }
            Shape::Ramp {
                start,
                end,
                from,
                to,
            } => {
                if end <= start {
                    bad(
                        "end",
                        "the ramp ends before it starts".into(),
                        "expected end > start",
                    );
                }
                for (field, x) in [("from", from), ("to", to)] {
                    if !ok(*x) {
                        bad(field, format!("{field} {x}"), multiplier);
                    }
                }
            }
            Shape::Diurnal {
                period, amplitude, ..
            } => {
                if *period == SimDuration::ZERO {
                    bad(
                        "period",
                        "a zero period".into(),
                        "expected a positive duration",
                    );
                }
                if !(0.0..=1.0).contains(amplitude) {
                    let expected = "expected an amplitude from 0 to 1 (the rate never negative)";
                    bad("amplitude", format!("amplitude {amplitude}"), expected);
                }
            }
            Shape::FlashCrowd { peak, decay, .. } => {
                if !ok(*peak) {
                    bad("peak", format!("peak {peak}"), multiplier);
                }
                if *decay == SimDuration::ZERO {
                    bad(
                        "decay",
                        "a zero decay time".into(),
                        "expected a positive duration",
                    );
                }
            }
            Shape::Product(list) | Shape::Sum(list) => {
                if list.is_empty() {
                    out.push((
                        path.clone(),
                        "no shapes to combine".into(),
                        "expected at least one shape".into(),
                    ));
                }
                if depth >= MAX_SHAPE_DEPTH {
                    let expected = format!("expected shapes nested at most {MAX_SHAPE_DEPTH} deep");
                    out.push((path.clone(), "shapes nested too deep".into(), expected));
                    return;
                }
                for (i, s) in list.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    s.collect_problems(path, depth + 1, parts, out);
                    path.pop();
                }
            }
        }
        if depth == 0 && *parts > MAX_SHAPE_PARTS {
            let expected = format!("expected at most {MAX_SHAPE_PARTS} shapes in one arrival");
            out.push((path.clone(), format!("{parts} shapes"), expected));
        }
    }

    /// The gap from `now` to the next arrival of a Poisson process at `rate × factor(t)`
    /// (requests/s), by thinning; an arrival at or after `stop_at` does not happen, and the gap
    /// then reaches `stop_at`.
    pub fn gap(&self, rate: f64, rng: &mut SimRng, now: SimTime, stop_at: SimTime) -> SimDuration {
        let mut t = now.0;
        loop {
            let chunk_end = t.saturating_add(CHUNK_NS).min(stop_at.0.max(t));
            let (a, b) = (t as f64 / 1e9, chunk_end as f64 / 1e9);
            let bound = rate * self.max_over(a, b);
            if bound > 0.0 {
                let gap_ns = crate::sim::dist::standard_exponential(rng) / bound * 1e9;
                let candidate = t.saturating_add(SimDuration::from_nanos_f64(gap_ns).0);
                if candidate < chunk_end {
                    let keep = rate * self.factor(candidate as f64 / 1e9) / bound;
                    t = candidate;
                    if rng.uniform() < keep {
                        return SimTime(t).since(now);
                    }
                    continue;
                }
            }
            if chunk_end >= stop_at.0 {
                return stop_at.since(now);
            }
            t = chunk_end;
        }
    }
}

/// One request of a trace: when, which key, read or write, and its class if the row names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceRow {
    /// Time since the run began, after `time_scale` and `rebase`.
    pub at: SimTime,
    /// The key (a number as written, or the stable hash of a text key).
    pub key: u64,
    /// Whether it writes.
    pub write: bool,
    /// Index of its class in the scenario's `classes`, if the row names one.
    pub class: Option<u8>,
}

/// The rows of a trace file, read once when the scenario is validated.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Trace {
    /// The rows in time order.
    pub rows: Vec<TraceRow>,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Trace({} rows)", self.rows.len())
    }
}

/// How to read a trace: the options of `Trace(...)` that change the rows.
#[derive(Clone, Copy, Debug)]
pub struct TraceOptions<'a> {
    /// Multiply every time by this.
    pub time_scale: f64,
    /// Shift times so the first row is at time 0.
    pub rebase: bool,
    /// The scenario's class names, in priority order.
    pub classes: &'a [String],
    /// Most rows accepted.
    pub max_rows: usize,
}

/// Most rows a trace may have (each takes 24 bytes for the whole run).
pub const MAX_TRACE_ROWS: usize = 10_000_000;
/// Bad rows reported one by one; more are counted.
const MAX_ROW_ERRORS: usize = 20;

/// What is wrong with one line of a trace file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// 1-based line number in the file.
    pub line: u64,
    /// What is wrong.
    pub message: String,
    /// What was expected.
    pub expected: String,
}

/// Columns of a trace, by position in the header.
struct Columns {
    time: usize,
    key: usize,
    op: usize,
    class: Option<usize>,
}

/// Read a CSV trace: a header naming the columns `time`, `key`, `op` (or `operation`) and
/// optionally `class`, in any order (other columns are ignored), then one row per request.
/// Every bad row is reported with its line (up to 20, then a count).
pub fn parse_trace(text: &[u8], opts: TraceOptions<'_>) -> Result<Trace, Vec<TraceError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text);
    let columns = header(&mut reader)?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut bad_rows = 0usize;
    let mut last = SimTime::ZERO;
    for record in reader.records() {
        let parsed = match record {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line());
                row(&r, &columns, &opts, last).map_err(|(m, e)| TraceError {
                    line,
                    message: m,
                    expected: e,
                })
            }
            Err(e) => Err(csv_error(&e)),
        };
        match parsed {
            Ok(r) if rows.len() < opts.max_rows => {
                last = r.at;
                rows.push(r);
            }
            Ok(_) => {
                errors.push(TraceError {
                    line: 0,
                    message: format!("more than {} rows", opts.max_rows),
                    expected: format!("expected at most {} rows in one trace", opts.max_rows),
                });
                break;
            }
            Err(e) => {
                bad_rows += 1;
                if errors.len() < MAX_ROW_ERRORS {
                    errors.push(e);
                }
            }
        }
    }
    if bad_rows > MAX_ROW_ERRORS {
        errors.push(TraceError {
            line: 0,
            message: format!("{} more bad rows", bad_rows - MAX_ROW_ERRORS),
            expected: "expected every row to read as time, key, op".into(),
        });
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(TraceError {
            line: 1,
            message: "the trace has no rows".into(),
            expected: "expected at least one request after the header".into(),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if opts.rebase {
        let first = rows[0].at;
        rows.iter_mut()
            .for_each(|r| r.at = SimTime(r.at.0 - first.0));
    }
    Ok(Trace { rows })
}

fn header(reader: &mut csv::Reader<&[u8]>) -> Result<Columns, Vec<TraceError>> {
    let fail = |message: String| {
        vec![TraceError {
            line: 1,
            message,
            expected: "expected a header naming the columns time, key, op (and optionally class)"
                .into(),
        }]
    };
    let names = reader
        .headers()
        .map_err(|e| vec![csv_error(&e)])?
        .iter()
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>();
    let find = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
    let (Some(time), Some(key), Some(op)) =
        (find(&["time"]), find(&["key"]), find(&["op", "operation"]))
    else {
        let missing: Vec<&str> = [
            ("time", &["time"][..]),
            ("key", &["key"]),
            ("op", &["op", "operation"]),
        ]
        .iter()
        .filter(|(_, w)| find(w).is_none())
        .map(|(n, _)| *n)
        .collect();
        return Err(fail(format!(
            "the header lacks the column{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    };
    Ok(Columns {
        time,
        key,
        op,
        class: find(&["class"]),
    })
}

fn csv_error(e: &csv::Error) -> TraceError {
    let line = e.position().map_or(0, |p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "the row is not UTF-8 text".to_string(),
        _ => format!("unreadable row: {e}"),
    };
    TraceError {
        line,
        message,
        expected: "expected comma-separated values".into(),
    }
}

type RowError = (String, String);

fn row(
    r: &csv::StringRecord,
    c: &Columns,
    opts: &TraceOptions<'_>,
    last: SimTime,
) -> Result<TraceRow, RowError> {
    let field = |i: usize, name: &str| {
        r.get(i).filter(|f| !f.is_empty()).ok_or_else(|| {
            (
                format!("no {name}"),
                format!("expected a value in the `{name}` column"),
            )
        })
    };
    let raw = parse_time(field(c.time, "time")?)?;
    let at = SimTime(scale(raw, opts.time_scale).ok_or_else(|| {
        (
            "the scaled time is too large".to_string(),
            "expected times within about 584 years".to_string(),
        )
    })?);
    if at < last {
        return Err((
            format!(
                "time {} comes before the previous row's",
                field(c.time, "time")?
            ),
            "expected rows in time order".into(),
        ));
    }
    let key_text = field(c.key, "key")?;
    let key = key_text
        .parse::<u64>()
        .unwrap_or_else(|_| stable_hash(key_text.as_bytes()));
    let write = match field(c.op, "op")?.to_ascii_lowercase().as_str() {
        "read" | "r" | "get" => false,
        "write" | "w" | "put" | "set" | "update" | "delete" => true,
        other => {
            return Err((
                format!("operation `{other}`"),
                "expected read (r, get) or write (w, put, set, update, delete)".into(),
            ));
        }
    };
    let class = match c.class.and_then(|i| r.get(i)).filter(|f| !f.is_empty()) {
        None => None,
        Some(name) => Some(class_index(name, opts.classes)?),
    };
    Ok(TraceRow {
        at,
        key,
        write,
        class,
    })
}

fn class_index(name: &str, classes: &[String]) -> Result<u8, RowError> {
    let found = classes.iter().position(|c| c == name);
    found.map(|i| i as u8).ok_or_else(|| {
        let expected = if classes.is_empty() {
            "expected no class: the scenario declares no `classes`".to_string()
        } else {
            format!(
                "expected one of the scenario's classes: {}",
                classes.join(", ")
            )
        };
        (format!("class `{name}` is not declared"), expected)
    })
}

/// A time: seconds as a decimal number ("12.000000345", exact to the nanosecond), or a
/// duration with a unit ("12ms").
fn parse_time(text: &str) -> Result<u64, RowError> {
    let expected = "expected seconds such as 12.5, or a duration such as \"12ms\"";
    if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return parse_duration(&format!("{text}s"))
            .map(|d| d.0)
            .map_err(|e| {
                (
                    format!("time `{text}`: {}", e.split(';').next().unwrap_or(&e)),
                    expected.into(),
                )
            });
    }
    parse_duration(text)
        .map(|d| d.0)
        .map_err(|_| (format!("time `{text}`"), expected.into()))
}

/// `ns × factor`, exact when the factor is 1, rounded to the nanosecond otherwise.
fn scale(ns: u64, factor: f64) -> Option<u64> {
    if factor == 1.0 {
        return Some(ns);
    }
    let scaled = ns as f64 * factor;
    (scaled < u64::MAX as f64).then(|| SimDuration::from_nanos_f64(scaled).0)
}

/// Where a client is in its trace: the next row, and which repetition.
#[derive(Clone, Debug)]
pub struct TraceCursor {
    trace: Arc<Trace>,
    next: usize,
    lap: u64,
    repeat_every: Option<SimDuration>,
}

impl TraceCursor {
    /// At the first row of `trace`, repeating every `repeat_every` if given.
    pub fn new(trace: Arc<Trace>, repeat_every: Option<SimDuration>) -> TraceCursor {
        TraceCursor {
            trace,
            next: 0,
            lap: 0,
            repeat_every,
        }
    }

    /// When the next row is due, if there is one.
    pub fn next_at(&self) -> Option<SimTime> {
        let row = self.trace.rows.get(self.next)?;
        let offset = match self.repeat_every {
            Some(p) => p.0.checked_mul(self.lap)?,
            None => 0,
        };
        row.at.0.checked_add(offset).map(SimTime)
    }

    /// The next row; the cursor moves on (back to the first row when the trace repeats).
    pub fn take(&mut self) -> Option<TraceRow> {
        let row = *self.trace.rows.get(self.next)?;
        self.next += 1;
        if self.next == self.trace.rows.len() && self.repeat_every.is_some() {
            self.next = 0;
            self.lap += 1;
        }
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(classes: &[String]) -> TraceOptions<'_> {
        TraceOptions {
            time_scale: 1.0,
            rebase: false,
            classes,
            max_rows: MAX_TRACE_ROWS,
        }
    }

    #[test]
    fn a_trace_reads_exact_times_keys_ops_and_classes() {
        let classes = vec!["gold".to_string(), "bronze".to_string()];
        let text = b"# a comment\nkey, time ,op,class,extra\n7,0.000000001,read,,x\nuser:1,1.5,W,bronze,y\n9,2000ms,get,gold,z\n";
        let t = parse_trace(text, opts(&classes)).expect("valid");
        let r = &t.rows;
        assert_eq!(r.len(), 3);
        assert_eq!(
            (r[0].at, r[0].key, r[0].write, r[0].class),
            (SimTime(1), 7, false, None)
        );
        assert_eq!(r[1].at, SimTime(1_500_000_000));
        assert_eq!(r[1].key, stable_hash(b"user:1"));
        assert_eq!((r[1].write, r[1].class), (true, Some(1)));
        assert_eq!(
            (r[2].at, r[2].write, r[2].class),
            (SimTime(2_000_000_000), false, Some(0))
        );
    }

    #[test]
    fn bad_rows_are_reported_with_their_lines() {
        let text =
            b"time,key,op\n1,5,read\n0.5,6,read\n2,7,fly\nx,8,read\n3,,read\n0.0000000001,9,read\n";
        let errors = parse_trace(text, opts(&[])).expect_err("bad rows");
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7], "{errors:?}");
        assert!(
            errors[0].message.contains("before the previous"),
            "{:?}",
            errors[0]
        );
        assert!(errors[1].message.contains("fly"));
        assert!(
            errors[4].message.contains("finer than one nanosecond"),
            "{:?}",
            errors[4]
        );
    }

    #[test]
    fn a_header_without_the_columns_is_an_error_on_line_1() {
        let errors = parse_trace(b"when,key\n1,2\n", opts(&[])).expect_err("no time, no op");
        assert_eq!(errors[0].line, 1);
        assert!(errors[0].message.contains("time, op"), "{errors:?}");
        let undeclared = parse_trace(b"time,key,op,class\n1,2,read,vip\n", opts(&[]));
        assert!(undeclared.expect_err("class")[0].message.contains("vip"));
    }

    #[test]
    fn scaling_rebasing_and_repeating() {
        let o = TraceOptions {
            time_scale: 0.5,
            rebase: true,
            ..opts(&[])
        };
        let t = Arc::new(parse_trace(b"time,key,op\n100,1,r\n101,2,r\n103,3,w\n", o).unwrap());
        let at: Vec<u64> = t.rows.iter().map(|r| r.at.0).collect();
        assert_eq!(at, vec![0, 500_000_000, 1_500_000_000]);
        let mut c = TraceCursor::new(t, Some(SimDuration::from_secs(2)));
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(c.next_at().unwrap().0);
            c.take();
        }
        assert_eq!(
            seen,
            vec![0, 500_000_000, 1_500_000_000, 2_000_000_000, 2_500_000_000]
        );
    }

    #[test]
    fn shapes_evaluate_and_bound() {
        let step = Shape::Step {
            at: SimDuration::from_secs(10),
            factor: 3.0,
            until: Some(SimDuration::from_secs(20)),
        };
        assert_eq!(
            (step.factor(9.9), step.factor(10.0), step.factor(20.0)),
            (1.0, 3.0, 1.0)
        );
        assert_eq!(step.max_over(5.0, 10.0), 3.0);
        assert_eq!(step.max_over(20.0, 30.0), 1.0);
        let day = Shape::Diurnal {
            period: SimDuration::from_secs(100),
            amplitude: 0.5,
            peak: SimDuration::from_secs(25),
        };
        assert!((day.factor(25.0) - 1.5).abs() < 1e-12 && (day.factor(75.0) - 0.5).abs() < 1e-12);
        assert_eq!(day.max_over(120.0, 130.0), 1.5, "peak at 125 inside");
        assert!(day.max_over(30.0, 40.0) < 1.5);
        let flash = Shape::FlashCrowd {
            at: SimDuration::from_secs(5),
            peak: 11.0,
            decay: SimDuration::from_secs(10),
        };
        assert_eq!(flash.max_over(0.0, 6.0), 11.0);
        assert!((flash.factor(15.0) - (1.0 + 10.0 * libm::exp(-1.0))).abs() < 1e-12);
        let both = Shape::Product(vec![day, flash]);
        for t in 0..200 {
            let t = t as f64 * 0.7;
            assert!(both.max_over(t, t + 0.1) >= both.factor(t) - 1e-12);
        }
    }

    #[test]
    fn thinning_follows_the_rate() {
        // Rate 1000/s, ×4 on [2s, 3s): expect 1000, 1000, 4000, 1000 arrivals per second.
        let shape = Shape::Step {
            at: SimDuration::from_secs(2),
            factor: 4.0,
            until: Some(SimDuration::from_secs(3)),
        };
        let mut rng = SimRng::derive(3, "thinning");
        let mut counts = [0u64; 4];
        let (mut now, stop) = (SimTime::ZERO, SimTime(4_000_000_000));
        loop {
            now = now.after(shape.gap(1000.0, &mut rng, now, stop));
            if now >= stop {
                break;
            }
            counts[(now.0 / 1_000_000_000) as usize] += 1;
        }
        for (i, want) in [1000.0, 1000.0, 4000.0, 1000.0].iter().enumerate() {
            // Poisson: standard deviation sqrt(mean); 4 sigma.
            let got = counts[i] as f64;
            assert!(
                (got - want).abs() < 4.0 * want.sqrt(),
                "second {i}: {got} vs {want}"
            );
        }
    }
}
