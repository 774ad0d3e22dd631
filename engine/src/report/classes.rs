//! Plots by request class: latency by percentile and availability over time, a panel per
//! class (highest priority first) and a line per variant, so a page shows what priority
//! scheduling or shedding bought each class and what it cost the others.

use super::axis::Axis;
use super::charts::{availability_axis, steps, time_axis};
use super::faults::shades;
use super::plot::{LegendEntry, Line, Panel, Plot, look};
use crate::results::{ClassResult, Results};

/// File stem of the latency-by-percentile plot by class.
pub const CDF_STEM: &str = "class_latency_cdf";

/// File stem of the availability-over-time plot by class.
pub const AVAILABILITY_STEM: &str = "class_availability";

/// Does the run report request classes?
pub fn applies(results: &Results) -> bool {
    results.variants.iter().any(|v| !v.classes.is_empty())
}

/// The classes' names, in the scenario's priority order.
fn class_names(results: &Results) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for c in results.variants.iter().flat_map(|v| &v.classes) {
        if !names.contains(&c.name) {
            names.push(c.name.clone());
        }
    }
    names
}

/// One panel per class, one line per variant that has the class, drawn by `line`.
fn panels(results: &Results, line: impl Fn(usize, &ClassResult) -> Line) -> Vec<Panel> {
    class_names(results)
        .into_iter()
        .map(|name| {
            let lines = results
                .variants
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some(line(i, v.classes.iter().find(|c| c.name == name)?)))
                .collect();
            Panel::titled(name, lines)
        })
        .collect()
}

fn legend(results: &Results) -> Vec<LegendEntry> {
    results
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| LegendEntry::line(v.name.clone(), look(i)))
        .collect()
}

/// Latency by percentile of each class's successful requests, on the nines axis of the
/// overall plot.
pub fn latency_cdf(results: &Results) -> Plot {
    let points = || {
        results
            .variants
            .iter()
            .flat_map(|v| &v.classes)
            .flat_map(|c| c.latency_cdf.iter())
    };
    let x = Axis::auto("latency (ms)", points().map(|p| p[0]));
    let highest = points()
        .map(|p| p[1])
        .filter(|q| q.is_finite() && *q < 1.0)
        .fold(0.0_f64, f64::max);
    // Shorter than the overall plot's label: it has to fit beside one of several panels.
    let y = Axis::nines("percentile", highest);
    let panels = panels(results, |i, c| {
        let points = c
            .latency_cdf
            .iter()
            .filter_map(|p| Some((x.to_plot_clamped(p[0])?, y.to_plot_clamped(p[1])?)))
            .collect();
        Line::new(look(i), vec![points], i)
    });
    Plot {
        title: "Latency by percentile, by request class (successful requests)".to_string(),
        x,
        y,
        shades: Vec::new(),
        panels,
        legend: legend(results),
        scale: None,
    }
}

/// Availability per time window of each class.
pub fn availability(results: &Results) -> Plot {
    let lowest = results
        .variants
        .iter()
        .flat_map(|v| &v.classes)
        .flat_map(|c| c.windows.iter().filter_map(|w| w.availability))
        .map(|a| a * 100.0)
        .filter(|a| a.is_finite())
        .fold(100.0_f64, f64::min);
    let y = availability_axis(lowest);
    let x = time_axis(results);
    let panels = panels(results, |i, c| {
        let values: Vec<Option<f64>> = c
            .windows
            .iter()
            .map(|w| w.availability.map(|a| a * 100.0))
            .collect();
        Line::new(look(i), steps(results, &values, &x, &y, 1.0), i)
    });
    Plot {
        title: "Availability over time, by request class".to_string(),
        x: x.clone(),
        y,
        shades: shades(results, &x),
        panels,
        legend: legend(results),
        scale: None,
    }
}
