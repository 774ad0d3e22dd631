//! What an autoscaled pool did and what it cost: its replicas against the offered load on one
//! time axis, and per variant the replica-seconds paid beside the availability and p99 they
//! bought, so a page answers "how much does autoscaling save against sizing for the peak, and
//! what does it cost in latency while the load ramps up".
//!
//! Drawn whenever a variant has the `replicas_active` series (an autoscaler's pool, also a
//! fixed one: an autoscaler with no metric keeps its pool at a fixed size). A pool's cost is
//! the time integral of its replicas starting or ready, as a cloud bills a machine from its
//! start; a pool without an autoscaler has no such series and is not in the table.

use super::axis::Axis;
use super::charts::{steps, time_axis};
use super::faults::shades;
use super::format;
use super::plot::{LegendEntry, Line, Panel, Plot, look, plain};
use super::table::{Align, Table};
use crate::results::{Results, VariantResult};
use plotters::style::RGBColor;

/// File stem of the plot.
pub const STEM: &str = "replicas_and_load";

/// The series an autoscaler reports: replicas it runs (starting or ready).
const SERIES: &str = "replicas_active";

/// Grey of the offered load when every variant was offered the same.
const LOAD_GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Does any variant report replicas over time?
pub fn applies(results: &Results) -> bool {
    results.variants.iter().any(|v| replicas(v).is_some())
}

/// A variant's replicas per window, summed over its autoscaled pools.
fn replicas(v: &VariantResult) -> Option<Vec<Option<f64>>> {
    let mut found = v.series.values().flatten().filter(|s| s.name == SERIES);
    let first = found.next()?.values.clone();
    Some(found.fold(first, |sum, s| {
        sum.iter()
            .zip(s.values.iter().chain(std::iter::repeat(&None)))
            .map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(*b),
            })
            .collect()
    }))
}

/// Requests offered per second in each window: those that completed or failed in it.
fn offered(results: &Results, v: &VariantResult) -> Vec<Option<f64>> {
    let w = results.timing.window_s;
    v.windows
        .iter()
        .map(|x| (w > 0.0).then(|| (x.ok + x.errors) as f64 / w))
        .collect()
}

/// Replicas (lower panel) under the offered load (upper panel), on one time axis.
pub fn plot(results: &Results) -> Plot {
    let x = time_axis(results);
    let loads: Vec<Vec<Option<f64>>> = results
        .variants
        .iter()
        .map(|v| offered(results, v))
        .collect();
    let counts: Vec<Option<Vec<Option<f64>>>> = results.variants.iter().map(replicas).collect();
    let top = |values: &mut dyn Iterator<Item = &Vec<Option<f64>>>| {
        values.flatten().flatten().copied().fold(0.0_f64, f64::max)
    };
    let load_axis = Axis::linear_nice("requests/s", 0.0, top(&mut loads.iter()) * 1.05);
    let replica_axis = Axis::linear_nice("replicas", 0.0, top(&mut counts.iter().flatten()) * 1.1);
    // Common random numbers: variants that issued as many requests were offered the same
    // arrivals, so one curve (from the variant that lost fewest) stands for all of them.
    let same = results
        .variants
        .windows(2)
        .all(|p| p[0].requests == p[1].requests);
    let mut legend = Vec::new();
    let load_lines: Vec<Line> = if same {
        let best = (0..results.variants.len())
            .max_by(|&a, &b| {
                let av = |i: usize| results.variants[i].availability;
                av(a).total_cmp(&av(b)).then(b.cmp(&a))
            })
            .unwrap_or(0);
        legend.push(LegendEntry::line(
            "offered load (every variant)",
            plain(LOAD_GREY),
        ));
        vec![Line::new(
            plain(LOAD_GREY),
            steps(results, &loads[best], &x, &load_axis, 1.0),
            0,
        )]
    } else {
        loads
            .iter()
            .enumerate()
            .map(|(i, l)| Line::new(look(i), steps(results, l, &x, &load_axis, 1.0), i))
            .collect()
    };
    let replica_lines: Vec<Line> = counts
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let c = c.as_ref()?;
            Some(Line::new(
                look(i),
                steps(results, c, &x, &replica_axis, 1.0),
                i,
            ))
        })
        .collect();
    legend.extend(
        results
            .variants
            .iter()
            .enumerate()
            .filter(|(i, _)| counts[*i].is_some() || !same)
            .map(|(i, v)| LegendEntry::line(v.name.clone(), look(i))),
    );
    let mut load_panel = Panel::titled(
        "Offered load (requests/s answered or failed, per window)".to_string(),
        load_lines,
    );
    load_panel.y = Some(load_axis);
    Plot {
        title: "Replicas against the offered load".to_string(),
        x: x.clone(),
        y: replica_axis,
        shades: shades(results, &x),
        panels: vec![
            load_panel,
            Panel::titled(
                "Replicas running (starting or ready)".to_string(),
                replica_lines,
            ),
        ],
        legend,
        scale: None,
    }
}

/// Per variant with an autoscaled pool: availability and p99 beside the replicas it ran and
/// their cost in replica-seconds, against the costliest variant.
pub fn cost_table(results: &Results) -> Table {
    let mut table = Table::new(&[
        ("variant", Align::Left),
        ("availability", Align::Right),
        ("p99 (ms)", Align::Right),
        ("mean replicas", Align::Right),
        ("most replicas", Align::Right),
        ("replica-seconds", Align::Right),
        ("cost vs the costliest", Align::Right),
    ]);
    let rows: Vec<(&VariantResult, Vec<Option<f64>>)> = results
        .variants
        .iter()
        .filter_map(|v| Some((v, replicas(v)?)))
        .collect();
    let costs: Vec<f64> = rows
        .iter()
        .map(|(_, c)| replica_seconds(results, c))
        .collect();
    let costliest = costs.iter().copied().fold(0.0_f64, f64::max);
    let duration = results.timing.duration_s;
    for ((v, counts), cost) in rows.iter().zip(&costs) {
        let most = counts.iter().flatten().copied().fold(0.0_f64, f64::max);
        table.rows.push(vec![
            v.name.clone(),
            format::percent(v.availability, 3),
            format::ms(v.latency_ms.p99),
            format::fixed(cost / duration, 2),
            format::fixed(most, 0),
            format::grouped(*cost, 0),
            if costliest > 0.0 {
                format::percent(cost / costliest, 1)
            } else {
                format::MISSING.to_string()
            },
        ]);
    }
    table
}

/// The time integral of the replicas: each window's mean times its width (the last window is
/// cut at the run's end).
fn replica_seconds(results: &Results, counts: &[Option<f64>]) -> f64 {
    let (w, end) = (results.timing.window_s, results.timing.duration_s);
    counts
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let start = i as f64 * w;
            Some(c.as_ref()? * (end - start).clamp(0.0, w))
        })
        .sum()
}

/// What the cost table's columns mean.
pub const COST_NOTE: &str = "Replica-seconds: the time integral of the replicas each pool ran, starting or ready (a cloud bills a machine from its start); mean replicas is that over the run's duration.\n";
