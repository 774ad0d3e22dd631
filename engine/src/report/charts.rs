//! The report's time and latency plots, each described as a [`Plot`] from the results: pure
//! data, no drawing.
//!
//! This is where the report decides what to show (axes, units, which series, which intervals
//! to shade, when to split into small multiples); `plot.rs` decides how. Values that cannot
//! be shown (missing windows, NaN, non-positive latency on a log axis) break the line rather
//! than being invented. A window's value is drawn as a step over the window's whole width,
//! so a change starts exactly where the window that saw it starts.

use super::axis::Axis;
use super::faults::shades;
use super::plot::{LegendEntry, Line, Look, MAX_LINES_PER_PANEL, Panel, Plot, Stroke, look, plain};
use crate::results::{Results, SeriesResult, VariantResult, WindowResult};
use plotters::style::RGBColor;

const TIME_LABEL: &str = "time (s)";
const LATENCY_LABEL: &str = "latency (ms)";

/// Grey for legend entries that explain a line style rather than name a variant.
const NEUTRAL: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Latency by percentile, one line per variant, on a "nines" y axis as HdrHistogram plots it.
///
/// On a linear 0..1 axis every variant looks alike and p99 and beyond, the part users compare,
/// shares the top pixel row; on the nines axis 90%, 99%, 99.9%, ... are evenly spaced.
pub fn latency_cdf(results: &Results) -> Plot {
    let latencies = results
        .variants
        .iter()
        .flat_map(|v| v.latency_cdf.iter().map(|p| p[0]));
    let x = Axis::auto(LATENCY_LABEL, latencies);
    // The fraction 1.0 (the maximum) has no place on a nines axis; it is drawn at the top edge,
    // and the axis extends as far as the highest fraction below it.
    let highest = results
        .variants
        .iter()
        .flat_map(|v| v.latency_cdf.iter().map(|p| p[1]))
        .filter(|q| q.is_finite() && *q < 1.0)
        .fold(0.0_f64, f64::max);
    let y = Axis::nines("percentile (log scale of 1 − q)", highest);
    let lines: Vec<(usize, Line)> = enumerate_variants(results)
        .map(|(i, variant)| {
            // On a log axis a zero latency has no place; skip the point, keep the curve whole.
            let points = variant
                .latency_cdf
                .iter()
                .filter_map(|p| Some((x.to_plot_clamped(p[0])?, y.to_plot_clamped(p[1])?)))
                .collect::<Vec<_>>();
            (i, Line::new(look(i), vec![points], i))
        })
        .collect();
    let legend = variant_legend(results, &[&lines], &x, &y);
    Plot {
        title: "Latency by percentile (successful requests, after warm-up)".to_string(),
        x,
        y,
        shades: Vec::new(),
        panels: vec![Panel::lines(lines.into_iter().map(|(_, l)| l).collect())],
        legend,
        scale: None,
    }
}

/// Per-window p99 and p50 latency: a panel for each (or, with many variants, a panel per
/// variant with p99 thick and p50 thin), one look per variant.
pub fn latency_over_time(results: &Results) -> Plot {
    let latencies = results.variants.iter().flat_map(|v| {
        v.windows
            .iter()
            .flat_map(|w| [w.p50_ms, w.p99_ms])
            .flatten()
    });
    let y = Axis::auto(LATENCY_LABEL, latencies);
    let x = time_axis(results);
    let pick = |q: Quantile| {
        enumerate_variants(results)
            .map(|(i, v)| {
                let segments = window_steps(results, v, &x, &y, |w| q.of(w));
                (i, Line::new(look(i), segments, i))
            })
            .collect::<Vec<_>>()
    };
    let (p99, p50) = (pick(Quantile::P99), pick(Quantile::P50));
    let mut legend = variant_legend(results, &[&p99, &p50], &x, &y);
    let panels = if results.variants.len() <= MAX_LINES_PER_PANEL {
        vec![
            Panel::titled("p99".to_string(), strip(p99)),
            Panel::titled("p50 (median)".to_string(), strip(p50)),
        ]
    } else {
        legend.push(neutral_entry("p99", Stroke::Line { thin: false }));
        legend.push(neutral_entry("p50", Stroke::Line { thin: true }));
        p99.into_iter()
            .zip(p50)
            .map(|((i, high), (_, mut low))| {
                low.stroke = Stroke::Line { thin: true };
                Panel::titled(results.variants[i].name.clone(), vec![high, low])
            })
            .collect()
    };
    Plot {
        title: "Latency over time (successful requests, per time window)".to_string(),
        x: x.clone(),
        y,
        shades: shades(results, &x),
        panels,
        legend,
        scale: None,
    }
}

#[derive(Clone, Copy)]
enum Quantile {
    P50,
    P99,
}

impl Quantile {
    fn of(self, w: &WindowResult) -> Option<f64> {
        match self {
            Quantile::P50 => w.p50_ms,
            Quantile::P99 => w.p99_ms,
        }
    }
}

/// Per-window availability in percent, on an axis that zooms in on the nines that matter.
pub fn availability(results: &Results) -> Plot {
    let lowest = results
        .variants
        .iter()
        .flat_map(|v| v.windows.iter().filter_map(|w| w.availability))
        .map(|a| a * 100.0)
        .filter(|a| a.is_finite())
        .fold(100.0_f64, f64::min);
    let y = availability_axis(lowest);
    over_time(results, "Availability over time", y, |w| {
        w.availability.map(|a| a * 100.0)
    })
}

/// Per-window successful requests per second.
pub fn throughput(results: &Results) -> Plot {
    let highest = results
        .variants
        .iter()
        .flat_map(|v| v.windows.iter().map(|w| w.throughput_rps))
        .filter(|t| t.is_finite())
        .fold(0.0_f64, f64::max);
    let y = Axis::linear_nice("throughput (req/s)", 0.0, highest * 1.05);
    over_time(
        results,
        "Throughput over time (successful requests)",
        y,
        |w| Some(w.throughput_rps),
    )
}

/// One line per variant over time; small multiples beyond [`MAX_LINES_PER_PANEL`] variants.
fn over_time(
    results: &Results,
    title: &str,
    y: Axis,
    pick: impl Fn(&WindowResult) -> Option<f64> + Copy,
) -> Plot {
    let x = time_axis(results);
    let lines: Vec<(usize, Line)> = enumerate_variants(results)
        .map(|(i, v)| {
            (
                i,
                Line::new(look(i), window_steps(results, v, &x, &y, pick), i),
            )
        })
        .collect();
    let legend = variant_legend(results, &[&lines], &x, &y);
    Plot {
        title: title.to_string(),
        x: x.clone(),
        y,
        shades: shades(results, &x),
        panels: variant_panels(results, lines),
        legend,
        scale: None,
    }
}

/// One panel with every line, or beyond [`MAX_LINES_PER_PANEL`] lines a panel per variant.
pub fn variant_panels(results: &Results, lines: Vec<(usize, Line)>) -> Vec<Panel> {
    if lines.len() <= MAX_LINES_PER_PANEL {
        return vec![Panel::lines(strip(lines))];
    }
    lines
        .into_iter()
        .map(|(i, line)| Panel::titled(results.variants[i].name.clone(), vec![line]))
        .collect()
}

fn strip(lines: Vec<(usize, Line)>) -> Vec<Line> {
    lines.into_iter().map(|(_, l)| l).collect()
}

/// Every component time-series name in the results, sorted, each once.
pub fn series_names(results: &Results) -> Vec<String> {
    let names: std::collections::BTreeSet<&str> = results
        .variants
        .iter()
        .flat_map(|v| v.series.values().flatten().map(|s| s.name.as_str()))
        .collect();
    names.into_iter().map(str::to_string).collect()
}

/// The title components gave the series `name` (the first one found), or the name itself.
pub fn series_title(results: &Results, name: &str) -> String {
    results
        .variants
        .iter()
        .flat_map(|v| v.series.values().flatten())
        .find(|s| s.name == name && !s.title.is_empty())
        .map_or_else(|| name.to_string(), |s| s.title.clone())
}

/// One node's series named `name` in one variant: (variant index, row label, series).
pub type Found<'a> = (usize, String, &'a SeriesResult);

/// Every (variant, node) series named `name`, rows labelled by node (and the series' label).
pub fn find_series<'a>(results: &'a Results, name: &str) -> Vec<Found<'a>> {
    let mut found = Vec::new();
    for (vi, v) in results.variants.iter().enumerate() {
        for (node, list) in &v.series {
            for s in list.iter().filter(|s| s.name == name) {
                let row = match &s.label {
                    Some(l) => format!("{node} {l}"),
                    None => node.clone(),
                };
                found.push((vi, row, s));
            }
        }
    }
    found
}

/// One component time series over time: states as a timeline, a few lines as lines, one
/// line per variant when each variant has one such node, and per-replica or per-shard
/// series beyond [`MAX_LINES_PER_PANEL`] lines as a heatmap.
pub fn component_series(results: &Results, name: &str) -> Plot {
    let found = find_series(results, name);
    let x = time_axis(results);
    let title = series_title(results, name);
    if found.iter().any(|f| f.2.states.is_some()) {
        return super::states::timeline(results, title, x, &found);
    }
    let (unit, factor) = unit_and_factor(&found);
    let one_node_each = results
        .variants
        .iter()
        .enumerate()
        .all(|(vi, _)| found.iter().filter(|f| f.0 == vi).count() <= 1);
    let one_variant = results.variants.len() <= 1;
    if found.len() > MAX_LINES_PER_PANEL && !one_node_each {
        return super::states::heatmap(results, title, x, &found, &unit, factor);
    }
    let y = series_axis(&found, &unit, factor);
    let lines: Vec<(usize, Line, String)> = found
        .iter()
        .enumerate()
        .map(|(i, (vi, row, s))| {
            // By variant when each has one line, so looks match the other plots; else by row.
            let k = if one_node_each { *vi } else { i };
            let segments = steps(results, &s.values, &x, &y, factor);
            (*vi, Line::new(look(k), segments, k), row.clone())
        })
        .collect();
    let (panels, legend) = if one_node_each {
        let pairs: Vec<(usize, Line)> = lines.into_iter().map(|(v, l, _)| (v, l)).collect();
        let legend = variant_legend_of(results, &[&pairs], &x, &y, |vi| {
            found.iter().any(|f| f.0 == vi)
        });
        (variant_panels(results, pairs), legend)
    } else {
        node_panels(results, lines, one_variant, &x, &y)
    };
    Plot {
        title,
        x: x.clone(),
        y,
        shades: shades(results, &x),
        panels,
        legend,
        scale: None,
    }
}

/// Lines by node: one panel for one variant, else a panel per variant; legend by node.
fn node_panels(
    results: &Results,
    lines: Vec<(usize, Line, String)>,
    one_variant: bool,
    x: &Axis,
    y: &Axis,
) -> (Vec<Panel>, Vec<LegendEntry>) {
    let mut legend: Vec<LegendEntry> = Vec::new();
    let mut panels: Vec<Panel> = Vec::new();
    for (vi, mut line, row) in lines {
        // The same node keeps its look in every variant's panel.
        let k = legend
            .iter()
            .position(|e| e.label == row)
            .unwrap_or(legend.len());
        if k == legend.len() {
            legend.push(LegendEntry::line(row.clone(), look(k)));
        }
        line.look = look(k);
        line.phase = k;
        let title = if one_variant {
            String::new()
        } else {
            results.variants[vi].name.clone()
        };
        match panels.last_mut() {
            Some(p) if p.title == title => p.lines.push(line),
            _ => panels.push(Panel::titled(title, vec![line])),
        }
    }
    let all: Vec<Vec<(usize, Line)>> = panels
        .iter()
        .map(|p| p.lines.iter().map(|l| (l.phase, l.clone())).collect())
        .collect();
    let refs: Vec<&[(usize, Line)]> = all.iter().map(Vec::as_slice).collect();
    let names: Vec<String> = legend.iter().map(|e| e.label.clone()).collect();
    for (k, same) in identical_to(&refs, names.len(), x, y)
        .into_iter()
        .enumerate()
    {
        if let Some(other) = same {
            legend[k].label = format!("{} (= {})", names[k], names[other]);
        }
    }
    (panels, legend)
}

/// The unit shown and the factor applied: fractions are shown in percent.
pub fn unit_and_factor(found: &[Found<'_>]) -> (String, f64) {
    let unit = found
        .iter()
        .map(|f| f.2.unit.as_str())
        .find(|u| !u.is_empty())
        .unwrap_or("value");
    match unit.strip_prefix("fraction") {
        Some(rest) => (format!("%{rest}"), 100.0),
        None => (unit.to_string(), 1.0),
    }
}

/// A y axis for the series: percent on 0–100, else from zero (or the lowest value) to the top.
fn series_axis(found: &[Found<'_>], unit: &str, factor: f64) -> Axis {
    if factor == 100.0 {
        return Axis::linear_exact(unit, 0.0, 104.0);
    }
    let values = found
        .iter()
        .flat_map(|f| f.2.values.iter().flatten().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    Axis::linear_nice(unit, lo * 1.05, if hi > 0.0 { hi * 1.05 } else { 1.0 })
}

fn enumerate_variants(results: &Results) -> impl Iterator<Item = (usize, &VariantResult)> {
    results.variants.iter().enumerate()
}

/// The run's simulated time, 0 to its end (or to the last window if that is later).
pub fn time_axis(results: &Results) -> Axis {
    Axis::linear_exact(TIME_LABEL, 0.0, end_s(results))
}

/// Where the time axis ends: the run's duration, or the last window's end if later.
fn end_s(results: &Results) -> f64 {
    let window_s = results.timing.window_s;
    let last_window_end = results
        .variants
        .iter()
        .filter_map(|v| v.windows.last())
        .map(|w| w.start_s + if window_s.is_finite() { window_s } else { 0.0 })
        .filter(|end| end.is_finite())
        .fold(0.0_f64, f64::max);
    let duration_s = results.timing.duration_s;
    if duration_s.is_finite() {
        duration_s.max(last_window_end)
    } else {
        last_window_end
    }
}

/// Nines-style lower bound: the highest of 99.9, 99, 90, 50, 0 that leaves room below `lowest`.
pub fn availability_axis(lowest_pct: f64) -> Axis {
    let floor = [99.9, 99.0, 90.0, 50.0]
        .into_iter()
        .find(|c| *c <= lowest_pct - (100.0 - c) * 0.05)
        .unwrap_or(0.0);
    // Headroom above 100% so a line at full availability is not hidden by the frame.
    Axis::linear_exact("availability (%)", floor, 100.0 + (100.0 - floor) * 0.04)
}

/// One variant's windows as steps, broken wherever `pick` has no value.
fn window_steps(
    results: &Results,
    variant: &VariantResult,
    x: &Axis,
    y: &Axis,
    pick: impl Fn(&WindowResult) -> Option<f64>,
) -> Vec<Vec<(f64, f64)>> {
    let values: Vec<Option<f64>> = variant.windows.iter().map(pick).collect();
    steps(results, &values, x, y, 1.0)
}

/// Values per window (window `i` covers `[i w, (i + 1) w)`, cut at the run's end) as steps
/// over each window's whole width, times `factor`: a change is drawn where its window starts,
/// never half a window early as a line between window midpoints would.
pub fn steps(
    results: &Results,
    values: &[Option<f64>],
    x: &Axis,
    y: &Axis,
    factor: f64,
) -> Vec<Vec<(f64, f64)>> {
    let window_s = results.timing.window_s;
    let end = end_s(results);
    let mut segments = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    if !(window_s.is_finite() && window_s > 0.0) {
        return segments;
    }
    for (i, value) in values.iter().enumerate() {
        let start = i as f64 * window_s;
        let stop = (start + window_s).min(end);
        let point = value
            .map(|v| v * factor)
            .and_then(|v| y.to_plot_clamped(v))
            .filter(|_| start < end);
        match (point, x.to_plot_clamped(start), x.to_plot_clamped(stop)) {
            (Some(py), Some(a), Some(b)) => current.extend([(a, py), (b, py)]),
            _ if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            _ => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// The variants' legend, each entry saying which other variant's line it coincides with.
fn variant_legend(
    results: &Results,
    panels: &[&[(usize, Line)]],
    x: &Axis,
    y: &Axis,
) -> Vec<LegendEntry> {
    variant_legend_of(results, panels, x, y, |_| true)
}

/// [`variant_legend`] for the variants `shown` selects.
fn variant_legend_of(
    results: &Results,
    panels: &[&[(usize, Line)]],
    x: &Axis,
    y: &Axis,
    shown: impl Fn(usize) -> bool,
) -> Vec<LegendEntry> {
    let same = identical_to(panels, results.variants.len(), x, y);
    enumerate_variants(results)
        .filter(|(i, _)| shown(*i))
        .map(|(i, variant)| {
            let label = match same[i] {
                Some(other) => format!("{} (= {})", variant.name, results.variants[other].name),
                None => variant.name.clone(),
            };
            LegendEntry::line(label, look(i))
        })
        .collect()
}

/// For each of `n` keys, the first earlier key whose line coincides with its line in every
/// panel where both are drawn (within about a pixel), if any.
pub fn identical_to(
    panels: &[&[(usize, Line)]],
    n: usize,
    x: &Axis,
    y: &Axis,
) -> Vec<Option<usize>> {
    let tol = ((x.hi - x.lo) / 800.0, (y.hi - y.lo) / 400.0);
    (0..n)
        .map(|later| {
            (0..later).find(|&earlier| {
                let mut both = 0;
                let all = panels.iter().all(|lines| {
                    let a = lines.iter().find(|l| l.0 == earlier);
                    let b = lines.iter().find(|l| l.0 == later);
                    match (a, b) {
                        (Some(a), Some(b)) => {
                            both += 1;
                            coincide(&a.1.segments, &b.1.segments, tol)
                        }
                        _ => true,
                    }
                });
                all && both > 0
            })
        })
        .collect()
}

/// Whether every point of each line lies within `tol` of the other line.
fn coincide(a: &[Vec<(f64, f64)>], b: &[Vec<(f64, f64)>], tol: (f64, f64)) -> bool {
    let has_points = |s: &[Vec<(f64, f64)>]| s.iter().any(|p| !p.is_empty());
    has_points(a) && has_points(b) && near_all(a, b, tol) && near_all(b, a, tol)
}

fn near_all(a: &[Vec<(f64, f64)>], b: &[Vec<(f64, f64)>], tol: (f64, f64)) -> bool {
    a.iter().flatten().all(|&p| {
        b.iter().any(|seg| match seg.len() {
            0 => false,
            1 => near_segment(p, seg[0], seg[0], tol),
            _ => seg.windows(2).any(|w| near_segment(p, w[0], w[1], tol)),
        })
    })
}

/// Whether `p` is within `tol` of the segment `a`–`b`, distances scaled by `tol` per axis.
fn near_segment(p: (f64, f64), a: (f64, f64), b: (f64, f64), tol: (f64, f64)) -> bool {
    let scaled = |q: (f64, f64)| (q.0 / tol.0, q.1 / tol.1);
    let (p, a, b) = (scaled(p), scaled(a), scaled(b));
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length2 = dx * dx + dy * dy;
    let t = if length2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / length2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (cx, cy) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    cx * cx + cy * cy <= 1.0
}

fn neutral_entry(label: &str, stroke: Stroke) -> LegendEntry {
    let mut entry = LegendEntry::line(label, plain(NEUTRAL));
    if stroke == (Stroke::Line { thin: true }) {
        entry.look = Look {
            dash: super::plot::Dash::Short,
            ..plain(NEUTRAL)
        };
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_axis_zooms_to_the_nines() {
        assert_eq!(availability_axis(100.0).lo, 99.9);
        assert_eq!(availability_axis(99.95).lo, 99.9);
        assert_eq!(availability_axis(99.5).lo, 99.0);
        assert_eq!(availability_axis(97.0).lo, 90.0);
        assert_eq!(availability_axis(60.0).lo, 50.0);
        assert_eq!(availability_axis(10.0).lo, 0.0);
        assert!(availability_axis(f64::NAN).hi > 100.0);
    }

    #[test]
    fn coinciding_lines_are_found_and_different_ones_are_not() {
        let x = Axis::linear_exact("x", 0.0, 100.0);
        let y = Axis::linear_exact("y", 0.0, 100.0);
        let line =
            |dy: f64| Line::new(look(0), vec![vec![(0.0, 10.0 + dy), (100.0, 50.0 + dy)]], 0);
        let lines = vec![(0, line(0.0)), (1, line(0.1)), (2, line(5.0))];
        assert_eq!(identical_to(&[&lines], 3, &x, &y), [None, Some(0), None]);
    }
}
