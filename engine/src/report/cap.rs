//! The CAP plot: for runs whose KV history measured stale reads, one marker per variant at
//! (stale-read rate, availability), so the price of each design reads off one chart.
//!
//! ```text
//!  availability (%)
//!   100 |                         ◇ AP
//!       |
//!    86 |  ◇ CP
//!       +------------------------------ stale reads (% of successful reads)
//! ```

use super::axis::Axis;
use super::plot::{LegendEntry, Line, Marker, Panel, Plot, look, plain};
use crate::results::Results;

/// The counter that marks a history observer's row in the component counters.
const STALE_RATE: &str = "stale_read_rate";

/// (variant index, name, stale-read rate %, availability %) for every variant that has a
/// history with a stale-read rate.
fn points(results: &Results) -> Vec<(usize, String, f64, f64)> {
    results
        .variants
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let stale = v
                .components
                .values()
                .find_map(|counters| counters.get(STALE_RATE))?;
            Some((i, v.name.clone(), stale * 100.0, v.availability * 100.0))
        })
        .collect()
}

/// Whether the results have anything to put on a CAP plot.
pub fn applies(results: &Results) -> bool {
    !points(results).is_empty()
}

/// One diamond marker (with a dot at its centre) per (colour index, x, y) point, clamped into
/// the axes: the markers of this module's and `durability.rs`'s one-point-per-variant plots.
pub(super) fn diamonds(
    x: &Axis,
    y: &Axis,
    pts: impl Iterator<Item = (usize, f64, f64)>,
) -> Vec<Line> {
    let (dx, dy) = ((x.hi - x.lo) * 0.012, (y.hi - y.lo) * 0.025);
    pts.map(|(i, vx, vy)| {
        let (px, py) = (
            x.to_plot_clamped(vx).unwrap_or(x.lo),
            y.to_plot_clamped(vy).unwrap_or(y.lo),
        );
        let diamond = vec![
            (px - dx, py),
            (px, py + dy),
            (px + dx, py),
            (px, py - dy),
            (px - dx, py),
        ];
        Line::new(plain(look(i).colour), vec![diamond, vec![(px, py)]], i)
    })
    .collect()
}

/// A legend sample for a variant's diamond: its colour, no dash, a diamond.
pub(super) fn point_look(i: usize) -> super::plot::Look {
    super::plot::Look {
        marker: Marker::Diamond,
        ..plain(look(i).colour)
    }
}

/// Availability against stale-read rate, one diamond per variant.
pub fn cap_plot(results: &Results) -> Plot {
    let pts = points(results);
    let max_stale = pts.iter().map(|p| p.2).fold(0.0_f64, f64::max);
    let min_avail = pts.iter().map(|p| p.3).fold(100.0_f64, f64::min);
    let label = "stale reads (% of successful reads)";
    let hi = Axis::linear_nice(label, 0.0, (max_stale * 1.15).max(1.0)).hi;
    // A margin left of 0 keeps the marker of a variant without stale reads whole.
    let x = Axis::linear_exact(label, -hi * 0.03, hi * 1.03);
    let floor = ((min_avail - 5.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0;
    let y = Axis::linear_exact("availability (%)", floor, 100.0 + (100.0 - floor) * 0.06);
    let lines = diamonds(
        &x,
        &y,
        pts.iter().map(|&(i, _, stale, avail)| (i, stale, avail)),
    );
    let legend = pts
        .iter()
        .map(|(i, name, stale, avail)| {
            let label = format!("{name} ({avail:.2}% available, {stale:.1}% stale)");
            LegendEntry::line(label, point_look(*i))
        })
        .collect();
    Plot {
        title: "CAP: availability against stale reads".to_string(),
        x,
        y,
        shades: Vec::new(),
        panels: vec![Panel::lines(lines)],
        legend,
        scale: None,
    }
}
