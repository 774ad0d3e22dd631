//! The four report plots, each described as a [`Plot`] from the results: pure data, no drawing.
//!
//! This is where the report decides what to show (axes, units, which series, which intervals
//! to shade); `plot.rs` decides how. Values that cannot be shown (missing windows, NaN,
//! non-positive latency on a log axis) break the line rather than being invented.

use super::axis::Axis;
use super::plot::{LegendEntry, Line, PALETTE_LEN, Plot, Shade, ShadeKind, Stroke, colour};
use crate::results::{Results, VariantResult, WindowResult};
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
    let lines = enumerate_variants(results)
        .map(|(i, variant)| {
            // On a log axis a zero latency has no place; skip the point, keep the curve whole.
            let points = variant
                .latency_cdf
                .iter()
                .filter_map(|p| Some((x.to_plot_clamped(p[0])?, y.to_plot_clamped(p[1])?)))
                .collect::<Vec<_>>();
            Line {
                colour: colour(i),
                stroke: Stroke::Solid,
                segments: vec![points],
            }
        })
        .collect();
    Plot {
        title: "Latency by percentile (successful requests, after warm-up)".to_string(),
        x,
        y,
        shades: Vec::new(),
        lines,
        legend: variant_legend(results),
    }
}

/// Per-window p99 (solid) and p50 (dashed) latency, one colour per variant.
pub fn latency_over_time(results: &Results) -> Plot {
    let latencies = results.variants.iter().flat_map(|v| {
        v.windows
            .iter()
            .flat_map(|w| [w.p50_ms, w.p99_ms])
            .flatten()
    });
    let y = Axis::auto(LATENCY_LABEL, latencies);
    let x = time_axis(results);
    let mut lines = Vec::new();
    for (i, variant) in enumerate_variants(results) {
        for (stroke, pick) in [
            (
                Stroke::Solid,
                (|w| w.p99_ms) as fn(&WindowResult) -> Option<f64>,
            ),
            (Stroke::Dashed, |w| w.p50_ms),
        ] {
            lines.push(Line {
                colour: colour(i),
                stroke,
                segments: window_segments(variant, results.timing.window_s / 2.0, &x, &y, pick),
            });
        }
    }
    let mut legend = variant_legend(results);
    if !results.variants.is_empty() {
        legend.push(neutral_entry("p99", Stroke::Solid));
        legend.push(neutral_entry("p50", Stroke::Dashed));
    }
    Plot {
        title: "Latency over time: p99 (solid) and p50 (dashed)".to_string(),
        x: x.clone(),
        y,
        shades: shades(results, &x),
        lines,
        legend,
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
    let x = time_axis(results);
    let lines = enumerate_variants(results)
        .map(|(i, variant)| Line {
            colour: colour(i),
            stroke: Stroke::Solid,
            segments: window_segments(variant, results.timing.window_s / 2.0, &x, &y, |w| {
                w.availability.map(|a| a * 100.0)
            }),
        })
        .collect();
    Plot {
        title: "Availability over time".to_string(),
        x: x.clone(),
        y,
        shades: shades(results, &x),
        lines,
        legend: variant_legend(results),
    }
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
    let x = time_axis(results);
    let lines = enumerate_variants(results)
        .map(|(i, variant)| Line {
            colour: colour(i),
            stroke: Stroke::Solid,
            segments: window_segments(variant, results.timing.window_s / 2.0, &x, &y, |w| {
                Some(w.throughput_rps)
            }),
        })
        .collect();
    Plot {
        title: "Throughput over time (successful requests)".to_string(),
        x: x.clone(),
        y,
        shades: shades(results, &x),
        lines,
        legend: variant_legend(results),
    }
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

/// Most lines one component plot draws: a series with more (a log's partitions in several
/// variants) gets one plot per variant instead.
pub const MAX_SERIES_LINES: usize = 12;

/// The plots of component series `name`: `(file stem, plot)`. One plot with a line per
/// (variant, node), or, when that would be more than [`MAX_SERIES_LINES`] lines and there are
/// several variants, one plot per variant that reports it (`series-<name>-<variant number>`).
pub fn component_series_plots(results: &Results, name: &str) -> Vec<(String, Plot)> {
    let lines_of = |v: &VariantResult| {
        v.series
            .values()
            .flatten()
            .filter(|s| s.name == name)
            .count()
    };
    let total: usize = results.variants.iter().map(lines_of).sum();
    if total <= MAX_SERIES_LINES || results.variants.len() <= 1 {
        return vec![(
            format!("series-{name}"),
            component_series(results, name, None),
        )];
    }
    results
        .variants
        .iter()
        .enumerate()
        .filter(|(_, v)| lines_of(v) > 0)
        .map(|(i, v)| {
            let mut plot = component_series(results, name, Some(&v.name));
            plot.title = format!("{} ({})", plot.title, v.name);
            (format!("series-{name}-{}", i + 1), plot)
        })
        .collect()
}

/// One component time series over time: a line per (variant, node) that reports it (of
/// variant `only`, if given), labelled by node when there is one variant, by variant when each
/// variant has one such node, and by both otherwise.
pub fn component_series(results: &Results, name: &str, only: Option<&str>) -> Plot {
    let mut found: Vec<(&str, &str, &crate::results::SeriesResult)> = Vec::new();
    for v in results
        .variants
        .iter()
        .filter(|v| only.is_none_or(|o| o == v.name))
    {
        for (node, list) in &v.series {
            for s in list.iter().filter(|s| s.name == name) {
                found.push((v.name.as_str(), node.as_str(), s));
            }
        }
    }
    let unit = found
        .iter()
        .map(|f| f.2.unit.as_str())
        .find(|u| !u.is_empty())
        .unwrap_or("value");
    let values = found
        .iter()
        .flat_map(|f| f.2.values.iter().flatten().copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((0.0_f64, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let y = Axis::linear_nice(unit, lo * 1.05, if hi > 0.0 { hi * 1.05 } else { 1.0 });
    let x = time_axis(results);
    let half = if results.timing.window_s.is_finite() {
        results.timing.window_s / 2.0
    } else {
        0.0
    };
    let one_variant = results.variants.len() <= 1 || only.is_some();
    let one_node_each = results
        .variants
        .iter()
        .all(|v| found.iter().filter(|f| f.0 == v.name).count() <= 1);
    let mut lines = Vec::new();
    let mut legend = Vec::new();
    for (i, (variant, node, series)) in found.iter().enumerate() {
        // Colour by variant when each variant has one line, so colours match the other plots.
        let c = if one_node_each && !one_variant {
            let vi = results
                .variants
                .iter()
                .position(|v| v.name == *variant)
                .unwrap_or(i);
            colour(vi)
        } else {
            colour(i)
        };
        let mut segments = Vec::new();
        let mut current = Vec::new();
        for (w, value) in series.values.iter().enumerate() {
            let point = value
                .and_then(|v| y.to_plot_clamped(v))
                .zip(x.to_plot_clamped(w as f64 * results.timing.window_s + half));
            match point {
                Some((py, px)) => current.push((px, py)),
                None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
                None => {}
            }
        }
        if !current.is_empty() {
            segments.push(current);
        }
        // Past the palette, lines of one variant's plot repeat its colours dashed.
        let stroke = if only.is_some() && (i / PALETTE_LEN) % 2 == 1 {
            Stroke::Dashed
        } else {
            Stroke::Solid
        };
        lines.push(Line {
            colour: c,
            stroke,
            segments,
        });
        let label = if one_variant {
            node.to_string()
        } else if one_node_each {
            variant.to_string()
        } else {
            format!("{variant} · {node}")
        };
        let label = match &series.label {
            Some(l) => format!("{label} {l}"),
            None => label,
        };
        legend.push(LegendEntry {
            label,
            colour: c,
            stroke,
        });
    }
    Plot {
        title: series_title(results, name),
        x: x.clone(),
        y,
        shades: shades(results, &x),
        lines,
        legend,
    }
}

fn enumerate_variants(results: &Results) -> impl Iterator<Item = (usize, &VariantResult)> {
    results.variants.iter().enumerate()
}

/// The run's simulated time, 0 to its end (or to the last window if that is later).
fn time_axis(results: &Results) -> Axis {
    let window_s = results.timing.window_s;
    let last_window_end = results
        .variants
        .iter()
        .filter_map(|v| v.windows.last())
        .map(|w| w.start_s + if window_s.is_finite() { window_s } else { 0.0 })
        .filter(|end| end.is_finite())
        .fold(0.0_f64, f64::max);
    let duration_s = results.timing.duration_s;
    let end = if duration_s.is_finite() {
        duration_s.max(last_window_end)
    } else {
        last_window_end
    };
    Axis::linear_exact(TIME_LABEL, 0.0, end)
}

/// Nines-style lower bound: the highest of 99.9, 99, 90, 50, 0 that leaves room below `lowest`.
fn availability_axis(lowest_pct: f64) -> Axis {
    let floor = [99.9, 99.0, 90.0, 50.0]
        .into_iter()
        .find(|c| *c <= lowest_pct - (100.0 - c) * 0.05)
        .unwrap_or(0.0);
    // Headroom above 100% so a line at full availability is not hidden by the frame.
    Axis::linear_exact("availability (%)", floor, 100.0 + (100.0 - floor) * 0.04)
}

/// One variant's windows as line segments, broken wherever `pick` has no value.
fn window_segments(
    variant: &VariantResult,
    half_window_s: f64,
    x: &Axis,
    y: &Axis,
    pick: impl Fn(&WindowResult) -> Option<f64>,
) -> Vec<Vec<(f64, f64)>> {
    let mut segments = Vec::new();
    let mut current = Vec::new();
    // A window's value is plotted at its middle, so a change that starts at a fault's start
    // time is drawn inside the fault's shading, not half a window before it.
    let half = if half_window_s.is_finite() {
        half_window_s
    } else {
        0.0
    };
    for window in &variant.windows {
        let point = pick(window)
            .and_then(|v| y.to_plot_clamped(v))
            .zip(x.to_plot_clamped(window.start_s + half));
        match point {
            Some((py, px)) => current.push((px, py)),
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// The warm-up and every fault, clamped to the time axis; intervals outside it are dropped.
fn shades(results: &Results, x: &Axis) -> Vec<Shade> {
    let warmup = (results.timing.warmup_s > 0.0).then(|| {
        (
            "warm-up".to_string(),
            0.0,
            results.timing.warmup_s,
            ShadeKind::Warmup,
        )
    });
    let faults = results
        .faults
        .iter()
        .map(|f| (f.label.clone(), f.start_s, f.end_s, ShadeKind::Fault));
    warmup
        .into_iter()
        .chain(faults)
        .filter_map(|(label, start, end, kind)| {
            let start = x.to_plot(start)?;
            let end = x.to_plot(end)?.max(start);
            (start < x.hi && end >= x.lo).then(|| Shade {
                start: start.max(x.lo),
                end: end.min(x.hi),
                label,
                kind,
            })
        })
        .collect()
}

fn variant_legend(results: &Results) -> Vec<LegendEntry> {
    enumerate_variants(results)
        .map(|(i, variant)| LegendEntry {
            label: variant.name.clone(),
            colour: colour(i),
            stroke: Stroke::Solid,
        })
        .collect()
}

fn neutral_entry(label: &str, stroke: Stroke) -> LegendEntry {
    LegendEntry {
        label: label.to_string(),
        colour: NEUTRAL,
        stroke,
    }
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
}
