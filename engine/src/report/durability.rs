//! The durability plot of leader/follower stores: for runs with an election checker and a
//! key-value history, one marker per variant at (p99 write latency, lost acknowledged writes),
//! so what each replication mode pays for its speed reads off one chart.
//!
//! ```text
//!  lost acknowledged writes
//!     4 |  ◇ async
//!       |
//!     0 |        ◇ semi-sync              ◇ sync
//!       +------------------------------------------ p99 write latency (ms)
//! ```

use super::axis::Axis;
use super::plot::{LegendEntry, Panel, Plot};
use crate::results::Results;

/// The counter that marks an election checker's row in the component counters.
const ELECTION: &str = "terms_with_two_leaders";
/// The history's counters plotted.
const WRITE_P99: &str = "write_latency_p99_ms";
const LOST: &str = "lost_acknowledged_writes";

/// (variant index, name, p99 write latency ms, lost acknowledged writes) for every variant
/// with an election checker and a history that measured both.
fn points(results: &Results) -> Vec<(usize, String, f64, f64)> {
    results
        .variants
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.components.values().find(|c| c.contains_key(ELECTION))?;
            let (p99, lost) = v
                .components
                .values()
                .find_map(|c| Some((*c.get(WRITE_P99)?, *c.get(LOST)?)))?;
            Some((i, v.name.clone(), p99, lost))
        })
        .collect()
}

/// Whether the results have anything to put on the plot.
pub fn applies(results: &Results) -> bool {
    !points(results).is_empty()
}

/// Lost acknowledged writes against p99 write latency, one diamond per variant.
pub fn durability_plot(results: &Results) -> Plot {
    let pts = points(results);
    let max_lat = pts.iter().map(|p| p.2).fold(0.0_f64, f64::max);
    let max_lost = pts.iter().map(|p| p.3).fold(0.0_f64, f64::max);
    let xl = "p99 latency of acknowledged writes (ms)";
    let xhi = Axis::linear_nice(xl, 0.0, (max_lat * 1.1).max(1.0)).hi;
    let x = Axis::linear_exact(xl, -xhi * 0.03, xhi * 1.03);
    let yl = "lost acknowledged writes";
    let yhi = Axis::linear_nice(yl, 0.0, (max_lost * 1.15).max(1.0)).hi;
    let y = Axis::linear_exact(yl, -yhi * 0.04, yhi * 1.04);
    let lines = super::cap::diamonds(&x, &y, pts.iter().map(|&(i, _, lat, lost)| (i, lat, lost)));
    let legend = pts
        .iter()
        .map(|(i, name, lat, lost)| {
            let label = format!("{name} (p99 write {lat:.2} ms, {lost:.0} lost)");
            LegendEntry::line(label, super::cap::point_look(*i))
        })
        .collect();
    Plot {
        title: "Replication: lost acknowledged writes against write latency".to_string(),
        x,
        y,
        shades: Vec::new(),
        panels: vec![Panel::lines(lines)],
        legend,
        scale: None,
    }
}
