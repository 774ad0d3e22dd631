//! Plots of rows over time: a timeline of states (one band per node, coloured by state) and a
//! heatmap of a per-replica or per-shard quantity (one row per node, coloured by value).
//!
//! ```text
//!   breaker           store-0 |#### leader ####|xx down xx|.. follower ......|
//!   api    |..closed..|▒open▒|..|    store-1 |... follower ...|### leader ###########|
//!          +----------------------------+         +-----------------------------------+
//! ```
//!
//! Both put each variant in its own panel with the same rows, so variants compare by eye.

use super::axis::{Axis, Scale, Tick};
use super::charts::{Found, steps};
use super::faults::shades;
use super::plot::{Cell, ColourScale, LegendEntry, Look, Panel, Plot, Sample, plain, sequential};
use crate::results::{Results, StateTrack};
use plotters::style::RGBColor;

/// State colours, by the state's position among the series' state names: the usual state
/// pale, then Okabe-Ito orange, vermillion, blue, green, purple (colour-blind-safe).
const STATE_COLOURS: [RGBColor; 6] = [
    RGBColor(0xD3, 0xE3, 0xEC),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
];

/// Colour of a window without a value in a heatmap.
const NO_VALUE: RGBColor = RGBColor(0xF2, 0xF2, 0xF2);

/// Height of a band within its row, as a fraction of the row.
const BAND: f64 = 0.7;

/// A y axis of named rows, the first row at the top; row `i` spans `[n-i-1, n-i)`.
fn rows_axis(rows: &[String]) -> Axis {
    let n = rows.len() as f64;
    let ticks = rows
        .iter()
        .enumerate()
        .map(|(i, name)| Tick {
            at: n - i as f64 - 0.5,
            label: name.clone(),
        })
        .collect();
    Axis {
        label: String::new(),
        scale: Scale::Linear,
        lo: 0.0,
        hi: n.max(1.0),
        ticks,
        minor: Vec::new(),
    }
}

/// The row labels in order of first appearance, and each found series' row index.
fn rows(found: &[Found<'_>]) -> (Vec<String>, Vec<usize>) {
    let mut names: Vec<String> = Vec::new();
    let index = found
        .iter()
        .map(|(_, row, _)| match names.iter().position(|n| n == row) {
            Some(i) => i,
            None => {
                names.push(row.clone());
                names.len() - 1
            }
        })
        .collect();
    (names, index)
}

/// One panel per variant that has any of the series (untitled when there is one variant).
fn variant_panels(
    results: &Results,
    found: &[Found<'_>],
    y: &Axis,
    mut cells: impl FnMut(usize) -> Vec<Cell>,
) -> Vec<Panel> {
    let one = results.variants.len() <= 1;
    (0..results.variants.len())
        .filter(|vi| found.iter().any(|f| f.0 == *vi))
        .map(|vi| Panel {
            title: if one {
                String::new()
            } else {
                results.variants[vi].name.clone()
            },
            y: Some(y.clone()),
            cells: cells(vi),
            lines: Vec::new(),
        })
        .collect()
}

/// States over time: a band per node, coloured by state, from the exact changes.
pub fn timeline(results: &Results, title: String, x: Axis, found: &[Found<'_>]) -> Plot {
    let (names, row_of) = rows(found);
    let states = state_names(found);
    let y = rows_axis(&names);
    let n = names.len() as f64;
    let mut stops = Vec::new();
    let panels = variant_panels(results, found, &y, |vi| {
        let mut cells = Vec::new();
        for (k, (_, _, s)) in found.iter().enumerate().filter(|(_, f)| f.0 == vi) {
            let Some(track) = &s.states else { continue };
            let top = n - row_of[k] as f64 - (1.0 - BAND) / 2.0;
            for (from, to, state) in intervals(track, x.hi) {
                let name = &track.names[state];
                let at = states.iter().position(|s| s == name).unwrap_or(0);
                cells.push(Cell {
                    x: (from.clamp(x.lo, x.hi), to.clamp(x.lo, x.hi)),
                    y: (top - BAND, top),
                    colour: STATE_COLOURS[at % STATE_COLOURS.len()],
                });
            }
            if track.dropped > 0
                && let Some(last) = track.changes.last()
            {
                stops.push(last.at_s);
            }
        }
        cells
    });
    let mut legend: Vec<LegendEntry> = states
        .iter()
        .enumerate()
        .map(|(i, name)| swatch(name, STATE_COLOURS[i % STATE_COLOURS.len()]))
        .collect();
    if let Some(stop) = stops.iter().copied().reduce(f64::min) {
        legend.push(swatch(
            &format!("changes after {stop:.1} s not recorded (limit)"),
            RGBColor(0xFF, 0xFF, 0xFF),
        ));
    }
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

fn swatch(label: &str, colour: RGBColor) -> LegendEntry {
    LegendEntry {
        label: label.to_string(),
        look: Look { ..plain(colour) },
        sample: Sample::Swatch,
    }
}

/// Every state name of the found series, in their own order, each once.
fn state_names(found: &[Found<'_>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in found
        .iter()
        .filter_map(|f| f.2.states.as_ref())
        .flat_map(|t| t.names.iter())
    {
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// The track's states as (from, to, state) intervals, the last one lasting until `end`.
/// After a dropped change nothing is known, so the last kept state ends where it began.
fn intervals(track: &StateTrack, end: f64) -> Vec<(f64, f64, usize)> {
    let valid = |c: &&crate::results::StateChange| {
        c.at_s.is_finite() && (c.state as usize) < track.names.len()
    };
    let changes: Vec<_> = track.changes.iter().filter(valid).collect();
    changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let to = match changes.get(i + 1) {
                Some(next) => next.at_s,
                None if track.dropped > 0 => c.at_s,
                None => end,
            };
            (c.at_s, to.max(c.at_s), c.state as usize)
        })
        .filter(|(from, to, _)| to > from)
        .collect()
}

/// A per-replica or per-shard quantity over time: a row per node, a cell per window,
/// coloured by value on a colour-blind-safe scale shared by every panel.
pub fn heatmap(
    results: &Results,
    title: String,
    x: Axis,
    found: &[Found<'_>],
    unit: &str,
    factor: f64,
) -> Plot {
    let (names, row_of) = rows(found);
    let y = rows_axis(&names);
    let n = names.len() as f64;
    let (lo, hi) = found
        .iter()
        .flat_map(|f| f.2.values.iter().flatten())
        .map(|v| v * factor)
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo.min(0.0), hi)
    } else {
        (0.0, 1.0)
    };
    let span = if hi > lo { hi - lo } else { 1.0 };
    // Cells on a unit axis: `steps` gives each window's [start, end) and value.
    let unit_axis = Axis::linear_exact("", lo, lo + span);
    let panels = variant_panels(results, found, &y, |vi| {
        let mut cells = Vec::new();
        for (k, (_, _, s)) in found.iter().enumerate().filter(|(_, f)| f.0 == vi) {
            let top = n - row_of[k] as f64;
            cells.push(Cell {
                x: (x.lo, x.hi),
                y: (top - 1.0, top),
                colour: NO_VALUE,
            });
            for segment in steps(results, &s.values, &x, &unit_axis, factor) {
                for pair in segment.chunks(2).filter(|p| p.len() == 2) {
                    let t = (pair[0].1 - lo) / span;
                    cells.push(Cell {
                        x: (pair[0].0, pair[1].0),
                        y: (top - 1.0, top),
                        colour: sequential(t),
                    });
                }
            }
        }
        cells
    });
    Plot {
        title,
        x: x.clone(),
        y,
        shades: shades(results, &x),
        panels,
        legend: Vec::new(),
        scale: Some(ColourScale {
            label: unit.to_string(),
            lo,
            hi: lo + span,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::StateChange;

    #[test]
    fn intervals_run_from_change_to_change_and_the_last_to_the_end() {
        let track = StateTrack {
            names: vec!["a".into(), "b".into()],
            changes: vec![
                StateChange {
                    at_s: 0.0,
                    state: 0,
                },
                StateChange {
                    at_s: 2.0,
                    state: 1,
                },
                StateChange {
                    at_s: 5.0,
                    state: 9,
                },
                StateChange {
                    at_s: 6.0,
                    state: 0,
                },
            ],
            dropped: 0,
        };
        assert_eq!(
            intervals(&track, 10.0),
            [(0.0, 2.0, 0), (2.0, 6.0, 1), (6.0, 10.0, 0)]
        );
        let cut = StateTrack {
            dropped: 3,
            ..track
        };
        assert_eq!(
            intervals(&cut, 10.0).len(),
            2,
            "nothing drawn after the limit"
        );
    }
}
