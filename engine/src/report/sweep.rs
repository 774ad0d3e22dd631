//! A sweep's report from its [`SweepResults`]: `summary.md`, plots of each metric against the
//! first swept parameter (one line per variant, 95% confidence band shaded, the objective
//! drawn), per-point time series (mean across replications with its band) and `index.html`.
//!
//! Like the run report, a pure function of the results: same results, same bytes.

use super::axis::Axis;
use super::format::{self, html_escape, markdown_cell};
use super::plot::{self, LegendEntry, Line, Panel, Plot, Sample, Stroke, look, plain};
use super::raster::svg_to_png;
use super::table::{Align, Table};
use super::{ReportError, ReportFile};
use crate::sweep::results::{CellResult, SweepResults, WindowEstimate, others_text, series};
use crate::sweep::stats::Estimate;
use plotters::style::RGBColor;

const NEUTRAL: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// A metric plotted against the swept parameter.
struct SweepPlot {
    stem: &'static str,
    metric: &'static str,
    title: &'static str,
    axis: &'static str,
    /// Multiplier from the stored value to the axis (100 for availability in percent).
    factor: f64,
}

const SWEEP_PLOTS: [SweepPlot; 4] = [
    SweepPlot {
        stem: "sweep_p99",
        metric: "latency_p99_ms",
        title: "p99 latency",
        axis: "p99 latency (ms)",
        factor: 1.0,
    },
    SweepPlot {
        stem: "sweep_p50",
        metric: "latency_p50_ms",
        title: "Median latency",
        axis: "p50 latency (ms)",
        factor: 1.0,
    },
    SweepPlot {
        stem: "sweep_availability",
        metric: "availability",
        title: "Availability",
        axis: "availability (%)",
        factor: 100.0,
    },
    SweepPlot {
        stem: "sweep_throughput",
        metric: "throughput_rps",
        title: "Throughput",
        axis: "throughput (req/s)",
        factor: 1.0,
    },
];

/// Every file of the sweep report after results.json and runs.csv: summary.md, each plot as
/// SVG then PNG, index.html.
pub fn render(results: &SweepResults) -> Result<Vec<ReportFile>, ReportError> {
    let mut figures: Vec<(String, String, String)> = Vec::new(); // (stem, caption, svg)
    for kind in &SWEEP_PLOTS {
        let p = sweep_plot(results, kind);
        let caption = p.title.clone();
        figures.push((kind.stem.to_string(), caption, plot::to_svg(&p)?));
    }
    for point in 0..n_points(results) {
        let p = over_time(results, point);
        let caption = p.title.clone();
        figures.push((
            format!("p99_over_time_{point:02}"),
            caption,
            plot::to_svg(&p)?,
        ));
    }
    let mut files = vec![(
        "summary.md".to_string(),
        markdown(results, &figures).into_bytes(),
    )];
    for (stem, _, svg) in &figures {
        let png_name = format!("{stem}.png");
        let png = svg_to_png(svg, &png_name)?;
        files.push((format!("{stem}.svg"), svg.clone().into_bytes()));
        files.push((png_name, png));
    }
    files.push((
        "index.html".to_string(),
        html(results, &figures).into_bytes(),
    ));
    Ok(files)
}

/// The table printed on the terminal after a sweep, and the objective crossings.
pub fn terminal_table(results: &SweepResults) -> String {
    let mut out = main_table(results).to_text();
    for line in crossing_lines(results) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn n_points(results: &SweepResults) -> usize {
    results.cells.len() / results.variants.len().max(1)
}

fn point_values(results: &SweepResults, point: usize) -> Vec<usize> {
    // Points are the cartesian product in file order, the last parameter varying fastest.
    let mut rest = point;
    let mut out = vec![0; results.parameters.len()];
    for (i, p) in results.parameters.iter().enumerate().rev() {
        out[i] = rest % p.values.len();
        rest /= p.values.len();
    }
    out
}

fn all_points(results: &SweepResults) -> Vec<Vec<usize>> {
    (0..n_points(results))
        .map(|p| point_values(results, p))
        .collect()
}

fn cell(results: &SweepResults, variant: usize, point: usize) -> &CellResult {
    &results.cells[variant * n_points(results) + point]
}

fn mean_ci(e: Option<&Estimate>, fmt: fn(f64) -> String) -> String {
    match e {
        None => format::MISSING.to_string(),
        Some(e) => match e.ci95_half_width {
            Some(h) => format!("{} ± {}", fmt(e.mean), fmt(h)),
            None => fmt(e.mean),
        },
    }
}

fn pct(v: f64) -> String {
    format::fixed(v * 100.0, 3)
}

fn rps(v: f64) -> String {
    format::grouped(v, 1)
}

/// One row per (variant, point): the parameters, then the main metrics as mean ± half-width.
fn main_table(results: &SweepResults) -> Table {
    let mut columns = vec![("variant".to_string(), Align::Left)];
    for p in &results.parameters {
        columns.push((p.label.clone(), Align::Right));
    }
    for h in ["p50 ms", "p99 ms", "p99.9 ms", "availability %", "req/s"] {
        columns.push((h.to_string(), Align::Right));
    }
    let mut rows = Vec::new();
    for (vi, v) in results.variants.iter().enumerate() {
        for point in 0..n_points(results) {
            let c = cell(results, vi, point);
            let mut row = vec![v.name.clone()];
            for (p, &i) in results.parameters.iter().zip(&point_values(results, point)) {
                row.push(p.values[i].clone());
            }
            row.push(mean_ci(c.metrics.get("latency_p50_ms"), format::ms));
            row.push(mean_ci(c.metrics.get("latency_p99_ms"), format::ms));
            row.push(mean_ci(c.metrics.get("latency_p999_ms"), format::ms));
            row.push(mean_ci(c.metrics.get("availability"), pct));
            row.push(mean_ci(c.metrics.get("throughput_rps"), rps));
            rows.push(row);
        }
    }
    Table { columns, rows }
}

fn crossing_lines(results: &SweepResults) -> Vec<String> {
    let Some(o) = &results.objective else {
        return Vec::new();
    };
    let mut out = vec![format!(
        "Objective: mean {} latency below {} ms.",
        o.metric.short(),
        o.limit_ms
    )];
    for c in &results.crossings {
        let others = if c.others.is_empty() {
            String::new()
        } else {
            format!(" ({})", c.others.join(", "))
        };
        out.push(format!(
            "{}{others}: {}.",
            results.variants[c.variant].name, c.note
        ));
    }
    out
}

fn facts(results: &SweepResults) -> Vec<String> {
    let t = &results.timing;
    let runs = results.cells.len() * results.replications as usize;
    let mut out = vec![
        format!(
            "{} variant{} × {} point{} × {} replication{} = {runs} runs; base seed {}; each \
             replication has its own seed, shared by every variant and point (common random \
             numbers).",
            results.variants.len(),
            plural(results.variants.len()),
            n_points(results),
            plural(n_points(results)),
            results.replications,
            plural(results.replications as usize),
            results.seed
        ),
        format!(
            "Simulated {} per run, warm-up {}, windows of {}.",
            format::seconds(t.duration_s),
            format::seconds(t.warmup_s),
            format::seconds(t.window_s)
        ),
        format!(
            "Each number is the mean across replications ± the half-width of its {}% \
             confidence interval (Student t).",
            results.confidence * 100.0
        ),
    ];
    for p in &results.parameters {
        out.push(format!(
            "Swept {} ({}): {}.",
            p.path,
            p.label,
            p.values.join(", ")
        ));
    }
    out.push(format!(
        "Scenario file {}; results digest {}; math fingerprint {}.",
        results.scenario.file, results.digest, results.math_fingerprint
    ));
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn markdown(results: &SweepResults, figures: &[(String, String, String)]) -> String {
    let mut out = format!("# {}\n\n", results.scenario.name.trim());
    if let Some(d) = &results.scenario.description {
        out.push_str(d.trim());
        out.push_str("\n\n");
    }
    for line in facts(results) {
        out.push_str(&format!("- {}\n", markdown_cell(&line)));
    }
    let crossings = crossing_lines(results);
    if !crossings.is_empty() {
        out.push_str("\n## Objective\n\n");
        for line in crossings {
            out.push_str(&format!("- {}\n", markdown_cell(&line)));
        }
    }
    out.push_str("\n## Results\n\n");
    out.push_str(&main_table(results).to_markdown());
    out.push_str(
        "\nEvery metric of every run is in `runs.csv` (one row per run); every metric's mean \
         and interval per point is in `results.json`.\n",
    );
    out.push_str("\n## Plots\n\n");
    for (stem, caption, _) in figures {
        out.push_str(&format!("![{caption}]({stem}.svg)\n\n"));
    }
    out
}

fn html(results: &SweepResults, figures: &[(String, String, String)]) -> String {
    let name = html_escape(results.scenario.name.trim());
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{name} - archsim sweep</title>\n<style>\n{}</style>\n</head>\n<body>\n\
         <h1>{name}</h1>\n",
        super::html::STYLE
    );
    if let Some(d) = &results.scenario.description {
        out.push_str(&format!("<p>{}</p>\n", html_escape(d.trim())));
    }
    out.push_str("<ul class=\"facts\">\n");
    for line in facts(results) {
        out.push_str(&format!("<li>{}</li>\n", html_escape(&line)));
    }
    out.push_str("</ul>\n");
    let crossings = crossing_lines(results);
    if !crossings.is_empty() {
        out.push_str("<h2>Objective</h2>\n<ul>\n");
        for line in crossings {
            out.push_str(&format!("<li>{}</li>\n", html_escape(&line)));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>Results</h2>\n");
    out.push_str(&main_table(results).to_html());
    out.push_str("<h2>Plots</h2>\n");
    for (_, caption, svg) in figures {
        let caption = html_escape(caption);
        let svg = svg.replacen(
            "<svg ",
            &format!("<svg role=\"img\" aria-label=\"{caption}\" "),
            1,
        );
        out.push_str(&format!(
            "<figure>\n{svg}\n<figcaption>{caption}</figcaption>\n</figure>\n"
        ));
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Runs of points in plot coordinates.
type Segments = Vec<Vec<(f64, f64)>>;

/// A line's points and its band outline, broken where a point has no value.
fn line_and_band(
    points: &[(f64, Option<&Estimate>)],
    factor: f64,
    x: &Axis,
    y: &Axis,
) -> (Segments, Segments) {
    let mut lines = Vec::new();
    let mut bands = Vec::new();
    let mut run: Vec<(f64, &Estimate)> = Vec::new();
    let mut flush = |run: &mut Vec<(f64, &Estimate)>| {
        if run.is_empty() {
            return;
        }
        let at = |xv: f64, yv: f64| Some((x.to_plot_clamped(xv)?, y.to_plot_clamped(yv * factor)?));
        let line: Vec<(f64, f64)> = run.iter().filter_map(|(xv, e)| at(*xv, e.mean)).collect();
        let mut band: Vec<(f64, f64)> = run.iter().filter_map(|(xv, e)| at(*xv, e.hi())).collect();
        band.extend(run.iter().rev().filter_map(|(xv, e)| at(*xv, e.lo())));
        if run.len() > 1 && run.iter().any(|(_, e)| e.ci95_half_width.is_some()) {
            bands.push(band);
        }
        lines.push(line);
        run.clear();
    };
    for &(xv, e) in points {
        match e {
            Some(e) if e.mean.is_finite() => run.push((xv, e)),
            _ => flush(&mut run),
        }
    }
    flush(&mut run);
    (lines, bands)
}

fn sweep_plot(results: &SweepResults, kind: &SweepPlot) -> Plot {
    let first = &results.parameters[0];
    let points = all_points(results);
    let groups = series(&points);
    let (x_lo, x_hi) = first
        .x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let pad = (x_hi - x_lo) * 0.02;
    let x = Axis::linear_exact(&first.label, x_lo - pad, x_hi + pad);
    let objective = results
        .objective
        .as_ref()
        .filter(|o| o.metric.metric_name() == kind.metric);
    let y_values = results
        .cells
        .iter()
        .filter_map(|c| c.metrics.get(kind.metric))
        .map(|e| e.hi() * kind.factor)
        .chain(objective.map(|o| o.limit_ms * 1.1));
    let y_hi = y_values.filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    let y = if kind.metric == "availability" {
        let lo = results
            .cells
            .iter()
            .filter_map(|c| c.metrics.get(kind.metric))
            .map(|e| e.lo() * 100.0)
            .filter(|v| v.is_finite())
            .fold(100.0_f64, f64::min);
        let floor = [99.9, 99.0, 90.0, 50.0]
            .into_iter()
            .find(|c| *c <= lo - (100.0 - c) * 0.05)
            .unwrap_or(0.0);
        Axis::linear_exact(kind.axis, floor, 100.0 + (100.0 - floor) * 0.04)
    } else {
        Axis::linear_nice(kind.axis, 0.0, y_hi * 1.05)
    };
    let mut lines = Vec::new();
    let mut bands = Vec::new();
    let mut legend = Vec::new();
    let mut n = 0;
    for (vi, v) in results.variants.iter().enumerate() {
        for (rest, pts) in &groups {
            let data: Vec<(f64, Option<&Estimate>)> = pts
                .iter()
                .map(|&p| {
                    (
                        first.x[points[p][0]],
                        cell(results, vi, p).metrics.get(kind.metric),
                    )
                })
                .collect();
            let (segments, band) = line_and_band(&data, kind.factor, &x, &y);
            bands.push(band_line(n, band));
            lines.push(Line::new(look(n), segments, n));
            let others = others_text(&results.parameters, rest);
            let label = if others.is_empty() {
                v.name.clone()
            } else {
                format!("{} ({})", v.name, others.join(", "))
            };
            legend.push(LegendEntry::line(label, look(n)));
            n += 1;
        }
    }
    // A line that coincides with an earlier one says so, as in the run report.
    let pairs: Vec<(usize, Line)> = lines.iter().cloned().enumerate().collect();
    let names: Vec<String> = legend.iter().map(|e| e.label.clone()).collect();
    for (k, same) in super::charts::identical_to(&[&pairs], n, &x, &y)
        .into_iter()
        .enumerate()
    {
        if let Some(other) = same {
            legend[k].label = format!("{} (= {})", names[k], names[other]);
        }
    }
    if let Some(o) = objective
        && let Some(at) = y.to_plot_clamped(o.limit_ms)
    {
        let objective_look = plot::Look {
            dash: plot::Dash::Short,
            ..plain(NEUTRAL)
        };
        lines.push(Line::new(
            objective_look,
            vec![vec![(x.lo, at), (x.hi, at)]],
            0,
        ));
        legend.push(LegendEntry::line(
            format!("objective {} ≤ {} ms", o.metric.short(), o.limit_ms),
            objective_look,
        ));
    }
    if results.replications > 1 {
        legend.push(ci_entry());
    }
    bands.extend(lines);
    Plot {
        title: format!(
            "{} against {}: mean of {} replications",
            kind.title,
            without_unit(&first.label),
            results.replications
        ),
        x,
        y,
        shades: Vec::new(),
        panels: vec![Panel::lines(bands)],
        legend,
        scale: None,
    }
}

/// The half-open interval a window covers, cut at `end`.
fn window_span(start_s: f64, window_s: f64, end: f64) -> (f64, f64) {
    (start_s, (start_s + window_s).min(end))
}

/// p99 latency over time at one point: per variant the mean across replications, band
/// shaded, each window a step over its whole width. Every point's plot has the same y
/// scale, so loads compare by eye.
fn over_time(results: &SweepResults, point: usize) -> Plot {
    let window_s = results.timing.window_s;
    let pick = |w: &WindowEstimate| w.p99_ms.clone();
    let end = results
        .cells
        .iter()
        .filter_map(|c| c.windows.last())
        .map(|w| w.start_s + window_s)
        .fold(results.timing.duration_s, f64::max);
    let x = Axis::linear_exact("time (s)", 0.0, end);
    let y_hi = results
        .cells
        .iter()
        .flat_map(|c| c.windows.iter().filter_map(pick))
        .map(|e| e.hi())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let y = Axis::linear_nice("p99 latency (ms)", 0.0, y_hi * 1.05);
    let mut bands = Vec::new();
    let mut lines = Vec::new();
    for vi in 0..results.variants.len() {
        let windows = &cell(results, vi, point).windows;
        let estimates: Vec<Option<Estimate>> = windows.iter().map(pick).collect();
        let data: Vec<(f64, Option<&Estimate>)> = windows
            .iter()
            .zip(&estimates)
            .flat_map(|(w, e)| {
                let (from, to) = window_span(w.start_s, window_s, end);
                [(from, e.as_ref()), (to, e.as_ref())]
            })
            .collect();
        let (segments, band) = line_and_band(&data, 1.0, &x, &y);
        bands.push(band_line(vi, band));
        lines.push(Line::new(look(vi), segments, vi));
    }
    let mut legend: Vec<LegendEntry> = results
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| LegendEntry::line(v.name.clone(), look(i)))
        .collect();
    if results.replications > 1 {
        legend.push(ci_entry());
    }
    let values: Vec<String> = results
        .parameters
        .iter()
        .zip(&point_values(results, point))
        .map(|(p, &i)| format!("{} = {}", without_unit(&p.label), p.values[i]))
        .collect();
    bands.extend(lines);
    Plot {
        title: format!("p99 latency over time at {}", values.join(", ")),
        x: x.clone(),
        y,
        shades: super::faults::shades_of(&results.timing, &results.faults, &x),
        panels: vec![Panel::lines(bands)],
        legend,
        scale: None,
    }
}

/// A confidence band in the `n`th look's colour.
fn band_line(n: usize, segments: Segments) -> Line {
    Line {
        stroke: Stroke::Band,
        ..Line::new(plain(look(n).colour), segments, n)
    }
}

/// The legend entry explaining the bands.
fn ci_entry() -> LegendEntry {
    LegendEntry {
        label: "95% CI".to_string(),
        look: plain(NEUTRAL),
        sample: Sample::Band,
    }
}

/// A parameter's label without a trailing unit in parentheses, for titles:
/// `offered load (fraction of capacity)` → `offered load`.
fn without_unit(label: &str) -> &str {
    match label.rfind(" (") {
        Some(i) if label.ends_with(')') => &label[..i],
        _ => label,
    }
}
