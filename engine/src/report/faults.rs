//! Fault shading for time plots: one label per distinct fault (a repeat says "×3" and when),
//! coloured by the fault's kind, so a reader can tell a crash from a pause at a glance.

use super::axis::Axis;
use super::format;
use super::plot::{FaultKind, Shade, ShadeKind};
use crate::results::{FaultWindow, Results, Timing};

/// The kind of a fault, read from its label's first word (the scenario's fault lowering
/// writes it: `crash app-3`, `random pause app-2`, `latency 1s * -> db`, ...).
pub fn kind(label: &str) -> FaultKind {
    let label = label.strip_prefix("random ").unwrap_or(label);
    match label.split_whitespace().next().unwrap_or("") {
        "crash" | "restart" => FaultKind::Crash,
        "pause" => FaultKind::Pause,
        "slowdown" => FaultKind::Slowdown,
        "partition" | "isolate" | "split" => FaultKind::Partition,
        _ => FaultKind::Link,
    }
}

/// The distinct faults in schedule order, each with every window it was active in.
pub fn distinct(faults: &[FaultWindow]) -> Vec<(&str, Vec<&FaultWindow>)> {
    let mut out: Vec<(&str, Vec<&FaultWindow>)> = Vec::new();
    for f in faults {
        match out.iter_mut().find(|(label, _)| *label == f.label) {
            Some((_, list)) => list.push(f),
            None => out.push((f.label.as_str(), vec![f])),
        }
    }
    out
}

/// A fault's label for plots: the label itself, or with repeats `label ×3 at 20, 23, 26 s`.
pub fn repeated_label(label: &str, windows: &[&FaultWindow]) -> String {
    if windows.len() < 2 {
        return label.to_string();
    }
    let starts: Vec<String> = windows
        .iter()
        .map(|w| {
            format::seconds(w.start_s)
                .trim_end_matches(" s")
                .to_string()
        })
        .collect();
    format!("{label} ×{} at {} s", windows.len(), starts.join(", "))
}

/// The warm-up and every fault, clamped to the time axis; intervals outside it are dropped.
/// Only the first window of a repeated fault carries its label.
pub fn shades(results: &Results, x: &Axis) -> Vec<Shade> {
    shades_of(&results.timing, &results.faults, x)
}

/// [`shades`] from a run's timing and fault windows (a run's or a sweep's).
pub fn shades_of(timing: &Timing, faults: &[FaultWindow], x: &Axis) -> Vec<Shade> {
    let warmup = (timing.warmup_s > 0.0).then(|| {
        (
            "warm-up".to_string(),
            0.0,
            timing.warmup_s,
            ShadeKind::Warmup,
        )
    });
    let faults = distinct(faults).into_iter().flat_map(|(label, windows)| {
        let text = repeated_label(label, &windows);
        let kind = ShadeKind::Fault(kind(label));
        windows.into_iter().enumerate().map(move |(i, w)| {
            let label = if i == 0 { text.clone() } else { String::new() };
            (label, w.start_s, w.end_s, kind)
        })
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn window(label: &str, start_s: f64) -> FaultWindow {
        FaultWindow {
            label: label.to_string(),
            start_s,
            end_s: start_s + 1.0,
        }
    }

    #[test]
    fn repeats_are_one_entry_with_their_times() {
        let faults = vec![
            window("partition a | b", 20.0),
            window("crash c", 21.0),
            window("partition a | b", 23.0),
            window("partition a | b", 26.5),
        ];
        let d = distinct(&faults);
        assert_eq!(d.len(), 2);
        assert_eq!(
            repeated_label(d[0].0, &d[0].1),
            "partition a | b ×3 at 20, 23, 26.5 s"
        );
        assert_eq!(repeated_label(d[1].0, &d[1].1), "crash c");
    }

    #[test]
    fn kinds_come_from_the_labels_the_scenario_writes() {
        assert_eq!(kind("crash app-3"), FaultKind::Crash);
        assert_eq!(kind("random pause app-2"), FaultKind::Pause);
        assert_eq!(kind("slowdown app-2 x5"), FaultKind::Slowdown);
        assert_eq!(kind("partition lb | app-1"), FaultKind::Partition);
        assert_eq!(kind("latency 1s * -> db"), FaultKind::Link);
        assert_eq!(kind("random packet loss 0.2 app-1"), FaultKind::Link);
    }
}
