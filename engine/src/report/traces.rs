//! What `run --trace N` adds to a report: each variant's sampled requests as Chrome
//! trace-event JSON (for Perfetto and chrome://tracing), the latency breakdown table and its
//! stacked-bar plot, a sequence diagram of the first K traced requests (`sequence.rs`) and
//! one of the p99 sampled request.
//!
//! The trace-event format is the one in Google's "Trace Event Format" document: a JSON
//! object whose `traceEvents` holds complete events (`ph: "X"`, `ts` and `dur` in
//! microseconds), instant events (`ph: "i"`) and metadata naming processes and threads
//! (`ph: "M"`). Each sampled request is a process; each node it visited a thread; slices on
//! one thread never overlap, so every viewer draws them the same way.

use super::blocks::Block;
use super::format::fixed;
use super::svg::{STAGE_COLOURS, svg_open, text};
use super::table::{Align, Table};
use super::{ReportError, ReportFile, raster};
use crate::contract::trace_path::STAGES;
use crate::results::{Results, TracedRequest, Traces, VariantResult};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// File stem of the breakdown plot.
pub const BREAKDOWN_STEM: &str = "latency_breakdown";

/// The variants that carry traces.
fn traced(results: &Results) -> impl Iterator<Item = (&VariantResult, &Traces)> {
    results
        .variants
        .iter()
        .filter_map(|v| v.traces.as_ref().map(|t| (v, t)))
}

/// A file name part for a variant: its name with anything but letters, digits, `-` and `_`
/// replaced.
fn file_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A figure of a traced run: file stem, caption, SVG.
pub struct TraceFigure {
    /// File name without extension (written as `.svg` and `.png`).
    pub stem: String,
    /// Caption in `summary.md` and `index.html`.
    pub caption: String,
    /// The drawing.
    pub svg: String,
}

/// The trace figures: the breakdown plot, then each traced variant's sequence diagram.
pub fn figures(results: &Results) -> Vec<TraceFigure> {
    let mut out = Vec::new();
    if let Some(svg) = breakdown_svg(results) {
        out.push(TraceFigure {
            stem: BREAKDOWN_STEM.to_string(),
            caption: "Where the time of traced requests went".to_string(),
            svg,
        });
    }
    for (v, t) in traced(results) {
        if let Some(svg) = super::sequence::svg(&v.name, t, &results.faults) {
            let n = super::sequence::first_requests(t).len();
            out.push(TraceFigure {
                stem: format!("sequence-first-{}", file_part(&v.name)),
                caption: format!(
                    "Messages of the first {n} traced request{} ({}), with the faults of the run",
                    if n == 1 { "" } else { "s" },
                    v.name
                ),
                svg,
            });
        }
        if let Some(r) = p99_request(t) {
            out.push(TraceFigure {
                stem: format!("sequence-{}", file_part(&v.name)),
                caption: format!("Sequence diagram of the p99 traced request ({})", v.name),
                svg: super::sequence::p99_svg(&v.name, r, &results.faults),
            });
        }
    }
    out
}

/// Every trace file: per traced variant `trace-<variant>.json`, then each figure as SVG and
/// PNG.
pub fn files(results: &Results) -> Result<Vec<ReportFile>, ReportError> {
    let mut out = Vec::new();
    for (v, t) in traced(results) {
        let name = format!("trace-{}.json", file_part(&v.name));
        out.push((name, chrome_json(t).into_bytes()));
    }
    for f in figures(results) {
        let png_name = format!("{}.png", f.stem);
        let png = raster::svg_to_png(&f.svg, &png_name)?;
        out.push((format!("{}.svg", f.stem), f.svg.into_bytes()));
        out.push((png_name, png));
    }
    Ok(out)
}

/// The sampled successful request at the 99th percentile of the sample's latencies.
pub fn p99_request(t: &Traces) -> Option<&TracedRequest> {
    let mut ok: Vec<(u64, &TracedRequest)> = t
        .requests
        .iter()
        .filter(|r| r.outcome == "ok" && !r.path.is_empty())
        .filter_map(|r| r.ended_ns.map(|e| (e - r.issued_ns, r)))
        .collect();
    ok.sort_by_key(|&(l, r)| (l, r.id));
    let n = ok.len();
    (n > 0).then(|| ok[(n * 99 / 100).min(n - 1)].1)
}

/// Microseconds, the trace-event format's unit, from nanoseconds.
fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// A slice's duration in microseconds such that a viewer adding it to the slice's start in
/// floating point never passes its end: rounding could put `ts + dur` one ulp past the start
/// of the next slice on the same thread, which a viewer would read as an overlap and nest.
fn dur_us(start: u64, end: u64) -> f64 {
    let (a, c) = (us(start), us(end));
    let mut d = (c - a).max(0.0);
    while d > 0.0 && a + d > c {
        d = d.next_down();
    }
    d
}

/// One slice before lanes are assigned: (lane, name, category, start ns, end ns, args).
type Slice = (String, String, &'static str, u64, u64, Value);

/// The slices of one request: the request itself, what nodes did, messages in flight and the
/// critical path.
fn slices(r: &TracedRequest) -> Vec<Slice> {
    let mut out: Vec<Slice> = Vec::new();
    if let Some(end) = r.ended_ns {
        let name = format!("request {} ({})", r.id, r.outcome);
        out.push((
            format!("{} (request)", r.client),
            name,
            "request",
            r.issued_ns,
            end,
            json!({}),
        ));
    }
    for s in &r.spans {
        let cat = if s.kind == "backoff" {
            "retry"
        } else if s.kind == "queue" || s.kind == "preempted" {
            "queue"
        } else {
            "service"
        };
        out.push((
            s.node.clone(),
            s.kind.clone(),
            cat,
            s.start_ns,
            s.end_ns,
            json!({}),
        ));
    }
    for m in &r.messages {
        if m.departs_ns > m.sent_ns {
            let name = format!("before sending to {}", m.to);
            out.push((
                m.from.clone(),
                name,
                "service",
                m.sent_ns,
                m.departs_ns,
                json!({}),
            ));
        }
        if let Some(a) = m.arrives_ns {
            let name = format!("{} -> {}: {}", m.from, m.to, m.what);
            out.push((
                "network".to_string(),
                name,
                "network",
                m.departs_ns,
                a,
                json!({}),
            ));
        }
    }
    for s in &r.path {
        let name = format!("{} @ {}", s.stage, s.hop);
        out.push((
            "critical path".to_string(),
            name,
            "path",
            s.start_ns,
            s.end_ns,
            json!({}),
        ));
    }
    out
}

/// A slice on its thread.
type Placed = (u32, Slice);

/// Assign each slice a thread so that slices on one thread never overlap: per lane, the
/// first of its threads free at the slice's start (threads named `lane`, `lane #2`, ...).
fn lanes(mut slices: Vec<Slice>) -> (Vec<Placed>, Vec<(u32, String)>) {
    slices.sort_by_key(|s| (s.3, s.4));
    let mut order: Vec<String> = Vec::new();
    let mut free_at: BTreeMap<String, Vec<(u32, u64)>> = BTreeMap::new();
    let mut names = Vec::new();
    let mut out = Vec::new();
    for s in slices {
        if !order.contains(&s.0) {
            order.push(s.0.clone());
        }
        let threads = free_at.entry(s.0.clone()).or_default();
        let tid = match threads.iter_mut().find(|(_, free)| *free <= s.3) {
            Some((tid, free)) => {
                *free = s.4.max(s.3 + 1);
                *tid
            }
            None => {
                let tid = names.len() as u32 + 1;
                let label = match threads.len() {
                    0 => s.0.clone(),
                    n => format!("{} #{}", s.0, n + 1),
                };
                names.push((tid, label));
                threads.push((tid, s.4.max(s.3 + 1)));
                tid
            }
        };
        out.push((tid, s));
    }
    (out, names)
}

/// The trace-event JSON of a variant's sampled requests.
pub fn chrome_json(t: &Traces) -> String {
    // Each event is written out at once: a tree of JSON values for 10,000 requests would
    // hold hundreds of megabytes.
    let mut events: Vec<String> = Vec::new();
    for (i, r) in t.requests.iter().enumerate() {
        request_events(i as u64 + 1, r, &mut events);
    }
    let other = json!({"sampled": t.requests.len(), "asked": t.asked,
        "note": "times are simulated; each process is one sampled request"});
    format!(
        "{{\"traceEvents\":[{}],\"displayTimeUnit\":\"ms\",\"otherData\":{other}}}",
        events.join(",")
    )
}

/// One request's events: metadata naming its process and threads, then its slices and
/// instants in time order (each thread's timestamps never go back).
fn request_events(pid: u64, r: &TracedRequest, events: &mut Vec<String>) {
    let latency = r.ended_ns.map_or("unfinished".to_string(), |e| {
        format!("{} ms", fixed((e - r.issued_ns) as f64 / 1e6, 3))
    });
    let title = format!(
        "request {} from {}: {}, {latency}",
        r.id, r.client, r.outcome
    );
    let meta = |name: &str, tid: u32, args: Value| {
        json!({"name": name, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": args}).to_string()
    };
    events.push(meta("process_name", 0, json!({"name": title})));
    events.push(meta("process_sort_index", 0, json!({"sort_index": pid})));
    let (placed, threads) = lanes(slices(r));
    for (tid, name) in &threads {
        events.push(meta("thread_name", *tid, json!({"name": name})));
        events.push(meta("thread_sort_index", *tid, json!({"sort_index": tid})));
    }
    // (ts ns, order on a tie, event): slices before the instants at the same moment.
    let mut timed: Vec<(u64, u8, String)> = Vec::new();
    for (tid, (_, name, cat, start, end, args)) in placed {
        let e = json!({"name": name, "cat": cat, "ph": "X", "ts": us(start),
            "dur": dur_us(start, end), "pid": pid, "tid": tid, "args": args});
        timed.push((start, 0, e.to_string()));
    }
    let node_tid = |node: &str| threads.iter().find(|(_, n)| n == node).map(|t| t.0);
    for m in &r.marks {
        // On the node's thread when it has one, else on the request's process.
        let e = match node_tid(&m.node) {
            Some(tid) => json!({"name": m.what, "cat": "mark", "ph": "i", "s": "t",
                "ts": us(m.at_ns), "pid": pid, "tid": tid}),
            None => json!({"name": format!("{} at {}", m.what, m.node), "cat": "mark",
                "ph": "i", "s": "p", "ts": us(m.at_ns), "pid": pid, "tid": 0}),
        };
        timed.push((m.at_ns, 1, e.to_string()));
    }
    for m in r.messages.iter().filter(|m| m.arrives_ns.is_none()) {
        let name = format!("lost: {} -> {}: {}", m.from, m.to, m.what);
        let e = json!({"name": name, "cat": "network", "ph": "i", "s": "p",
            "ts": us(m.departs_ns), "pid": pid, "tid": 0});
        timed.push((m.departs_ns, 1, e.to_string()));
    }
    timed.sort_by_key(|(ts, order, _)| (*ts, *order));
    events.extend(timed.into_iter().map(|(_, _, e)| e));
}

/// The breakdown section: per variant, the shares of each stage for the p50 and p99 groups,
/// then for the p99 group, the hops it spent its time at.
pub fn blocks(results: &Results) -> Vec<Block> {
    let traced: Vec<_> = traced(results).collect();
    if traced.is_empty() {
        return Vec::new();
    }
    let mut out = vec![
        Block::Heading(2, "Where the time went (traced requests)".to_string()),
        Block::Para(BREAKDOWN_NOTE.to_string()),
    ];
    let mut columns: Vec<(&str, Align)> = vec![
        ("variant", Align::Left),
        ("group", Align::Left),
        ("requests", Align::Right),
        ("mean (ms)", Align::Right),
    ];
    columns.extend(STAGES.iter().map(|s| (*s, Align::Right)));
    let mut shares = Table::new(&columns);
    let mut hops = Table::new(&[
        ("variant", Align::Left),
        ("hop", Align::Left),
        ("stage", Align::Left),
        ("mean (ms)", Align::Right),
        ("share", Align::Right),
    ]);
    for (v, t) in &traced {
        out_rows(v, t, &mut shares, &mut hops);
    }
    out.push(Block::Table(shares));
    out.push(Block::Heading(
        3,
        "The slowest 1% of traced requests, by hop".to_string(),
    ));
    out.push(Block::Table(hops));
    out
}

fn out_rows(v: &VariantResult, t: &Traces, shares: &mut Table, hops: &mut Table) {
    for group in ["p50", "p99"] {
        let rows: Vec<_> = t.breakdown.iter().filter(|r| r.group == group).collect();
        let all: Vec<_> = rows.iter().filter(|r| r.hop == "all").collect();
        let Some(first) = all.first() else { continue };
        let mean: f64 = all.iter().map(|r| r.mean_ms).sum();
        let mut row = vec![
            v.name.clone(),
            group.to_string(),
            first.requests.to_string(),
            fixed(mean, 3),
        ];
        row.extend(all.iter().map(|r| format!("{}%", fixed(r.share_pct, 1))));
        shares.rows.push(row);
        if group == "p99" {
            let mut by_hop: Vec<_> = rows.iter().filter(|r| r.hop != "all").collect();
            by_hop.sort_by(|a, b| b.mean_ms.total_cmp(&a.mean_ms).then(a.hop.cmp(&b.hop)));
            for r in by_hop {
                hops.rows.push(vec![
                    v.name.clone(),
                    r.hop.clone(),
                    r.stage.clone(),
                    fixed(r.mean_ms, 3),
                    format!("{}%", fixed(r.share_pct, 1)),
                ]);
            }
        }
    }
    if t.breakdown.is_empty() {
        let mut row = vec![
            v.name.clone(),
            "-".to_string(),
            "0".to_string(),
            "-".to_string(),
        ];
        row.extend(STAGES.iter().map(|_| "-".to_string()));
        shares.rows.push(row);
    }
}

/// How the breakdown is measured; shared by `summary.md` and `index.html`.
pub const BREAKDOWN_NOTE: &str = "A deterministic sample of requests (`--trace N`: those whose \
hashed id ranks lowest, the same ones at any thread count) is traced hop by hop.\n\
Each request's critical path is walked back from its answer: the time between a message's \
arrival at a node and what the node did next is that node's queueing or service, the message's \
flight is network, time on an attempt that failed or waiting for a timeout or backoff is retry, \
and waiting with nothing recorded (such as for a coalesced cache load) is other.\n\
The segments add up to each request's latency exactly; p50 is the successful sampled requests \
between the 45th and 55th percentile of the sample, p99 the slowest 1% (at least one).\n\
Each trace-<variant>.json opens in ui.perfetto.dev or chrome://tracing.";

/// Horizontal 100% stacked bars: per traced variant, the p50 and p99 groups' shares by stage.
fn breakdown_svg(results: &Results) -> Option<String> {
    let mut bars: Vec<(String, f64, Vec<f64>)> = Vec::new();
    for (v, t) in traced(results) {
        for group in ["p50", "p99"] {
            let all: Vec<_> = t
                .breakdown
                .iter()
                .filter(|r| r.group == group && r.hop == "all")
                .collect();
            if all.is_empty() {
                continue;
            }
            let mean = all.iter().map(|r| r.mean_ms).sum();
            bars.push((
                format!("{} {group}", v.name),
                mean,
                all.iter().map(|r| r.share_pct).collect(),
            ));
        }
    }
    if bars.is_empty() {
        return None;
    }
    let label_w = bars
        .iter()
        .map(|b| super::text::width_px(&b.0, 13.0))
        .fold(60.0, f64::max)
        + 16.0;
    let (bar_w, row_h, top) = (560.0, 30.0, 58.0);
    let width = label_w + bar_w + 110.0;
    let height = top + row_h * bars.len() as f64 + 50.0;
    let mut s = svg_open(width, height);
    s.push_str(&text(
        width / 2.0,
        24.0,
        16.0,
        "middle",
        "Where the time of traced requests went (share of latency)",
    ));
    for (i, (label, mean, shares)) in bars.iter().enumerate() {
        let y = top + row_h * i as f64;
        s.push_str(&text(label_w - 8.0, y + 18.0, 13.0, "end", label));
        let mut x = label_w;
        for (k, share) in shares.iter().enumerate() {
            let w = bar_w * share / 100.0;
            s.push_str(&format!(
                "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"22\" fill=\"{}\"/>\n",
                STAGE_COLOURS[k]
            ));
            if w > 34.0 {
                s.push_str(&text(
                    x + w / 2.0,
                    y + 16.0,
                    11.0,
                    "middle",
                    &format!("{:.0}%", share),
                ));
            }
            x += w;
        }
        s.push_str(&text(
            label_w + bar_w + 8.0,
            y + 16.0,
            12.0,
            "start",
            &format!("{} ms", fixed(*mean, 2)),
        ));
    }
    legend(&mut s, label_w, height - 22.0);
    s.push_str("</svg>\n");
    Some(s)
}

fn legend(s: &mut String, x0: f64, y: f64) {
    let mut x = x0;
    for (k, stage) in STAGES.iter().enumerate() {
        s.push_str(&format!(
            "<rect x=\"{x:.2}\" y=\"{:.2}\" width=\"12\" height=\"12\" fill=\"{}\"/>\n",
            y - 10.0,
            STAGE_COLOURS[k]
        ));
        s.push_str(&text(x + 16.0, y, 12.0, "start", stage));
        x += 16.0 + super::text::width_px(stage, 12.0) + 18.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_added_to_its_start_never_passes_its_end() {
        let mut worst = 0.0f64;
        for start in (0..2_000_000_000u64).step_by(7_919_993) {
            for len in [1, 999, 1_242_240, 33_333_333, 900_000_001] {
                let d = dur_us(start, start + len);
                assert!(us(start) + d <= us(start + len), "{start} + {len}");
                worst = worst.max((d - len as f64 / 1e3).abs());
            }
        }
        assert!(worst < 1e-6, "off by {worst} µs");
    }
}
