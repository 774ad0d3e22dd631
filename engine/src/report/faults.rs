//! Fault shading for time plots: one label per distinct fault (a repeat says "×3" and when),
//! coloured by the fault's kind, so a reader can tell a crash from a pause at a glance.

use super::axis::Axis;
use super::format;
use super::plot::{FaultKind, Shade, ShadeKind};
use crate::results::{FaultWindow, Results, Timing};
use std::collections::BTreeMap;

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
/// O(F log K) for F windows of K distinct labels (random faults can be tens of thousands).
pub fn distinct(faults: &[FaultWindow]) -> Vec<(&str, Vec<&FaultWindow>)> {
    let mut out: Vec<(&str, Vec<&FaultWindow>)> = Vec::new();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for f in faults {
        match index.get(f.label.as_str()) {
            Some(&i) => out[i].1.push(f),
            None => {
                index.insert(&f.label, out.len());
                out.push((f.label.as_str(), vec![f]));
            }
        }
    }
    out
}

/// Repeats listed one by one in a label; more are counted, with the first and last start.
const LISTED_REPEATS: usize = 6;

/// A fault's label for plots: the label itself, or with repeats `label ×3 at 20, 23, 26 s`
/// (`label ×5,000 from 1.2 to 598 s` when there are too many to list).
pub fn repeated_label(label: &str, windows: &[&FaultWindow]) -> String {
    if windows.len() < 2 {
        return label.to_string();
    }
    let at = |w: &FaultWindow| {
        format::seconds(w.start_s)
            .trim_end_matches(" s")
            .to_string()
    };
    let n = windows.len();
    if n > LISTED_REPEATS {
        let first = windows
            .iter()
            .map(|w| w.start_s)
            .fold(f64::INFINITY, f64::min);
        let last = windows
            .iter()
            .map(|w| w.start_s)
            .fold(f64::NEG_INFINITY, f64::max);
        return format!(
            "{label} ×{} from {} to {} s",
            format::count(n as u64),
            format::seconds(first).trim_end_matches(" s"),
            format::seconds(last).trim_end_matches(" s"),
        );
    }
    let starts: Vec<String> = windows.iter().map(|w| at(w)).collect();
    format!("{label} ×{n} at {} s", starts.join(", "))
}

/// A fault's windows as intervals to shade, in time order, merging windows less than `gap`
/// apart: a plot cannot show a gap narrower than a pixel or two, and tens of thousands of
/// random faults would otherwise be tens of thousands of rectangles. O(n log n).
fn merged(windows: &[&FaultWindow], gap: f64) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = windows
        .iter()
        .filter(|w| w.start_s.is_finite())
        .map(|w| (w.start_s, w.end_s.max(w.start_s)))
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if start <= last.1 + gap => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Random faults in a run beyond which those of one kind are shaded as one layer.
const MANY_RANDOM: usize = 100;

/// The faults as shading layers, in order of first appearance: each fault its own (label,
/// kind, windows), except that with more than [`MANY_RANDOM`] random faults those of one kind
/// are one layer over all their nodes, so thousands of overlapping random faults on ten nodes
/// are not ten stacked shades (the fault table still counts them by node).
fn layers(faults: &[FaultWindow]) -> Vec<(String, FaultKind, Vec<&FaultWindow>)> {
    let many_random = faults.iter().filter(|f| f.random).count() > MANY_RANDOM;
    let mut out: Vec<(Vec<&str>, FaultKind, Vec<&FaultWindow>)> = Vec::new();
    for (label, windows) in distinct(faults) {
        let k = kind(label);
        let random = many_random && windows.first().is_some_and(|w| w.random);
        let joined = random
            .then(|| out.iter().position(|(_, kk, w)| *kk == k && w[0].random))
            .flatten();
        match joined {
            Some(i) => {
                out[i].0.push(label);
                out[i].2.extend(windows);
            }
            None => out.push((vec![label], k, windows)),
        }
    }
    out.into_iter()
        .map(|(labels, k, windows)| {
            let text = match labels[..] {
                [one] => repeated_label(one, &windows),
                _ => random_layer_label(&labels, &windows),
            };
            (text, k, windows)
        })
        .collect()
}

/// The label of random faults of one kind on several nodes: `random crash ×59,668 on 10
/// nodes from 0.01 to 600 s` (the labels' shared words, then the count and the span).
fn random_layer_label(labels: &[&str], windows: &[&FaultWindow]) -> String {
    let first = labels[0];
    let shared = first.rsplit_once(' ').map_or(first, |(head, _)| head);
    let starts = windows.iter().map(|w| w.start_s);
    let lo = starts.clone().fold(f64::INFINITY, f64::min);
    let hi = starts.fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{shared} ×{} on {} nodes from {} to {} s",
        format::count(windows.len() as u64),
        labels.len(),
        format::seconds(lo).trim_end_matches(" s"),
        format::seconds(hi).trim_end_matches(" s"),
    )
}

/// The warm-up and every fault, clamped to the time axis; intervals outside it are dropped.
/// Only the first window of a repeated fault carries its label; a fault's windows closer than
/// about a pixel are shaded as one.
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
    // Windows of one fault closer than the narrowest shade drawn (1/400 of the axis) are one.
    let gap = (x.hi - x.lo) / 400.0;
    let faults = layers(faults)
        .into_iter()
        .flat_map(move |(text, kind, windows)| {
            let kind = ShadeKind::Fault(kind);
            merged(&windows, gap)
                .into_iter()
                .enumerate()
                .map(move |(i, (start, end))| {
                    let label = if i == 0 { text.clone() } else { String::new() };
                    (label, start, end, kind)
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
            random: false,
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

    #[test]
    fn many_repeats_are_counted_and_shaded_as_few_rectangles() {
        // 10,000 one-second faults every 1.5 s: gaps of 0.5 s, under 1/400 of a 15,000 s axis.
        let faults: Vec<FaultWindow> = (0..10_000)
            .map(|i| window("random crash app-1", f64::from(i) * 1.5))
            .collect();
        let d = distinct(&faults);
        assert_eq!(
            repeated_label(d[0].0, &d[0].1),
            "random crash app-1 ×10,000 from 0 to 14998.5 s"
        );
        let refs: Vec<&FaultWindow> = faults.iter().collect();
        assert_eq!(merged(&refs, 15_000.0 / 400.0), vec![(0.0, 14_999.5)]);
        // Apart by more than the gap, they stay apart.
        assert_eq!(merged(&refs[..3], 0.4).len(), 3);
    }

    #[test]
    fn random_faults_of_one_kind_are_one_layer_and_scheduled_ones_their_own() {
        let random = |label: &str, start_s: f64| FaultWindow {
            random: true,
            ..window(label, start_s)
        };
        let mut faults = vec![
            random("random crash app-1", 1.0),
            window("crash app-1", 1.5),
            random("random crash app-2", 3.0),
            random("random pause app-1", 4.0),
            random("random crash app-1", 9.0),
            window("crash app-2", 12.0),
        ];
        // A few random faults keep a layer per node.
        assert_eq!(layers(&faults).len(), 5);
        faults.extend((0..100).map(|i| random("random pause app-1", 20.0 + f64::from(i))));
        let l = layers(&faults);
        let summary: Vec<(&str, usize)> = l.iter().map(|(t, _, w)| (t.as_str(), w.len())).collect();
        assert_eq!(
            summary,
            [
                ("random crash ×3 on 2 nodes from 1 to 9 s", 3),
                ("crash app-1", 1),
                ("random pause app-1 ×101 from 4 to 119 s", 101),
                ("crash app-2", 1),
            ]
        );
    }
}
