//! Plot axes: ranges, tick positions and tick labels, computed here rather than by plotters.
//!
//! Plotters picks ticks with `powf`/`log10` from the platform's maths library, which may differ
//! in the last bit between machines; we compute ticks with plain arithmetic and take logarithms
//! from the pure-Rust `libm`, so the SVG bytes are the same everywhere. A log axis works in
//! log10 space: the plot sees `log10(value)`, and only the tick labels are turned back.
//! A nines axis (for fractions of requests) works in `log10(1 / (1 - fraction))` space, so
//! 90%, 99%, 99.9% are evenly spaced and the tail gets as much room as the body.

/// Widest span (max / min) a linear latency axis shows before we switch to log: two decades.
const LOG_THRESHOLD: f64 = 100.0;

/// Most ticks an axis ever gets, however odd its range, so a bad input cannot flood the SVG.
const MAX_TICKS: usize = 40;

/// Fewest nines a nines axis shows (up to 99.9%), so plots of different runs compare at a glance.
const MIN_NINES: f64 = 3.0;

/// Most nines a nines axis shows (up to 99.9999%).
const MAX_NINES: f64 = 6.0;

/// Fractions are held at or below 1 − 10^-MAX_NINES on a nines axis: 1.0 (the maximum) would
/// be infinitely high, and no histogram we plot resolves finer than a millionth.
const MAX_FRACTION: f64 = 1.0 - 1e-6;

/// How values map onto an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// Plot coordinate = value.
    Linear,
    /// Plot coordinate = log10(value); only positive values can be shown.
    Log10,
    /// Plot coordinate = log10(1 / (1 − value)) for a fraction: the number of nines, so 0.99
    /// is at 2; fractions are held at or below [`MAX_FRACTION`].
    Nines,
}

/// A labelled grid line, plot coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    /// Position, plot coordinates.
    pub at: f64,
    /// Text under (or beside) the tick.
    pub label: String,
}

/// One axis, in plot coordinates (log10 of the value on a log axis).
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Axis title with its unit, e.g. `latency (ms)`.
    pub label: String,
    /// Linear or logarithmic.
    pub scale: Scale,
    /// Lower end of the range, plot coordinates.
    pub lo: f64,
    /// Upper end of the range, plot coordinates; always greater than `lo`.
    pub hi: f64,
    /// Labelled ticks with a grid line.
    pub ticks: Vec<Tick>,
    /// Unlabelled lighter grid lines, plot coordinates.
    pub minor: Vec<f64>,
}

impl Axis {
    /// A linear axis over exactly `lo..hi` (widened if empty or not finite).
    pub fn linear_exact(label: &str, lo: f64, hi: f64) -> Axis {
        let (lo, hi) = sane_range(lo, hi);
        linear(label, lo, hi, nice_step(hi - lo, 8))
    }

    /// A linear axis covering `lo..hi`, its upper end rounded up to the next tick.
    pub fn linear_nice(label: &str, lo: f64, hi: f64) -> Axis {
        let (lo, hi) = sane_range(lo, hi);
        let step = nice_step(hi - lo, 6);
        let hi = (hi / step.value - 1e-9).ceil() * step.value;
        linear(label, lo, hi.max(lo + step.value), step)
    }

    /// A log axis just covering the positive values `lo..hi`, ticks at 1, 2, 5 × 10^k.
    ///
    /// All three are labelled while there is room (up to four decades), only powers of ten
    /// beyond that.
    pub fn log10(label: &str, lo: f64, hi: f64) -> Axis {
        let (lo_exp, hi_exp) = sane_range(libm::log10(lo), libm::log10(hi));
        let pad = (hi_exp - lo_exp) * 0.03;
        let (lo_exp, hi_exp) = ((lo_exp - pad).max(-300.0), (hi_exp + pad).min(300.0));
        let label_all = hi_exp - lo_exp <= 4.0;
        let mut ticks = Vec::new();
        let mut minor = Vec::new();
        let mut exp = libm::floor(lo_exp);
        while exp <= hi_exp && ticks.len() < MAX_TICKS {
            for mantissa in [1_u8, 2, 5] {
                let at = exp + libm::log10(f64::from(mantissa));
                if at < lo_exp || at > hi_exp {
                    continue;
                }
                if mantissa == 1 || label_all {
                    let label = decimal(mantissa, exp as i32);
                    ticks.push(Tick { at, label });
                } else {
                    minor.push(at);
                }
            }
            exp += 1.0;
        }
        Axis {
            label: label.to_string(),
            scale: Scale::Log10,
            lo: lo_exp,
            hi: hi_exp,
            ticks,
            minor,
        }
    }

    /// A percentile axis for fractions `0..=highest`, ticks at 0%, 90%, 99%, 99.9%, ...
    ///
    /// It shows at least up to 99.9% and at most up to 99.9999%; `highest` is the largest
    /// fraction below 1 in the data (1 itself, the maximum, is drawn at the top edge).
    pub fn nines(label: &str, highest: f64) -> Axis {
        let reached = if highest.is_finite() {
            nines(highest.min(MAX_FRACTION))
        } else {
            0.0
        };
        let top = reached.clamp(MIN_NINES, MAX_NINES);
        // The 1e-9 keeps 0.9999, whose nines are 3.99999..., from losing its 99.99% tick.
        let last_tick = libm::floor(top + 1e-9) as u32;
        let ticks = (0..=last_tick)
            .map(|n| Tick {
                at: f64::from(n),
                label: nines_label(n),
            })
            .collect();
        // Headroom so a curve ending at the top tick is not hidden by the frame.
        let hi = top * 1.03;
        // Halfway lines (50%, 95%, 99.5%, ...): a guide between the labelled nines.
        let minor = (0..=last_tick)
            .map(|n| f64::from(n) + libm::log10(2.0))
            .filter(|at| *at <= hi)
            .collect();
        Axis {
            label: label.to_string(),
            scale: Scale::Nines,
            lo: 0.0,
            hi,
            ticks,
            minor,
        }
    }

    /// A latency-style axis from zero: log when the positive values span more than two decades.
    pub fn auto(label: &str, values: impl IntoIterator<Item = f64>) -> Axis {
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for value in values.into_iter().filter(|v| v.is_finite() && *v > 0.0) {
            min = min.min(value);
            max = max.max(value);
        }
        if min.is_finite() && max / min > LOG_THRESHOLD {
            Axis::log10(label, min, max)
        } else {
            Axis::linear_nice(label, 0.0, max.max(0.0))
        }
    }

    /// Where `value` lies in plot coordinates, if it can be shown at all.
    pub fn to_plot(&self, value: f64) -> Option<f64> {
        let at = match self.scale {
            Scale::Linear => value,
            Scale::Log10 if value > 0.0 => libm::log10(value),
            Scale::Log10 => return None,
            // `min` alone would turn NaN into the cap, so the finiteness check comes first.
            Scale::Nines if value.is_finite() => nines(value.min(MAX_FRACTION)),
            Scale::Nines => return None,
        };
        at.is_finite().then_some(at)
    }

    /// `to_plot`, then held inside the axis range so nothing is drawn outside the frame.
    pub fn to_plot_clamped(&self, value: f64) -> Option<f64> {
        self.to_plot(value).map(|at| at.clamp(self.lo, self.hi))
    }

    /// The label of the tick at plot coordinate `at` (plotters hands our positions back).
    pub fn tick_label(&self, at: f64) -> String {
        self.ticks
            .iter()
            .find(|tick| tick.at.to_bits() == at.to_bits())
            .map(|tick| tick.label.clone())
            .unwrap_or_default()
    }

    /// Tick positions, plot coordinates.
    pub fn tick_positions(&self) -> Vec<f64> {
        self.ticks.iter().map(|tick| tick.at).collect()
    }
}

fn linear(label: &str, lo: f64, hi: f64, step: Step) -> Axis {
    let ticks = ticks_between(lo, hi, step.value)
        .into_iter()
        .map(|at| Tick {
            at,
            label: super::format::grouped(at, step.decimals),
        })
        .collect();
    Axis {
        label: label.to_string(),
        scale: Scale::Linear,
        lo,
        hi,
        ticks,
        minor: Vec::new(),
    }
}

/// The number of nines of `fraction`: log10(1 / (1 − fraction)), 2 for 0.99.
fn nines(fraction: f64) -> f64 {
    -libm::log10(1.0 - fraction)
}

/// `0%`, `90%`, `99%`, `99.9%`, ... for 0, 1, 2, 3, ... nines; written out, not computed.
fn nines_label(n: u32) -> String {
    match n {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        2 => "99%".to_string(),
        _ => format!("99.{}%", "9".repeat(n as usize - 2)),
    }
}

/// A step between ticks: 1, 2 or 5 times a power of ten, and how many decimals it needs.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Step {
    value: f64,
    decimals: usize,
}

/// The 1-2-5 step that gives at most about `target` intervals over `span`.
fn nice_step(span: f64, target: u32) -> Step {
    let raw = span / f64::from(target);
    if !(raw.is_finite() && raw > 0.0) {
        return Step {
            value: 1.0,
            decimals: 0,
        };
    }
    // Find 10^exp <= raw < 10^(exp+1) by multiplying, not by log10, to stay bit-exact.
    let (mut power, mut exp) = (1.0_f64, 0_i32);
    while power > raw && exp > -300 {
        power /= 10.0;
        exp -= 1;
    }
    while power * 10.0 <= raw && exp < 300 {
        power *= 10.0;
        exp += 1;
    }
    for factor in [1.0, 2.0, 5.0] {
        if factor * power >= raw {
            return step(factor * power, exp);
        }
    }
    step(power * 10.0, exp + 1)
}

fn step(value: f64, exp: i32) -> Step {
    let decimals = if exp < 0 {
        exp.unsigned_abs() as usize
    } else {
        0
    };
    Step { value, decimals }
}

/// Multiples of `step` inside `lo..=hi` (with a little slack for rounding).
fn ticks_between(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step - 1e-9).ceil();
    let last = (hi / step + 1e-9).floor();
    let mut ticks = Vec::new();
    let mut k = first;
    while k <= last && ticks.len() < MAX_TICKS {
        ticks.push(k * step);
        k += 1.0;
    }
    ticks
}

/// A finite range with `hi > lo`, padded around a single value.
fn sane_range(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo.is_finite() { lo } else { 0.0 };
    let hi = if hi.is_finite() { hi } else { lo + 1.0 };
    let (lo, hi) = if hi < lo { (hi, lo) } else { (lo, hi) };
    if hi - lo > lo.abs() * 1e-9 {
        return (lo, hi);
    }
    if lo == 0.0 {
        (0.0, 1.0)
    } else {
        let pad = lo.abs() * 0.1;
        (lo - pad, hi + pad)
    }
}

/// `mantissa × 10^exp` written out in plain decimals (`0.02`, `5`, `1000`); beyond six
/// digits either way, as `2e-9`. Built from digits, not computed, so it is exact.
fn decimal(mantissa: u8, exp: i32) -> String {
    let zeros = exp.unsigned_abs() as usize;
    match exp {
        0..=6 => format!("{mantissa}{}", "0".repeat(zeros)),
        -6..=-1 => format!("0.{}{mantissa}", "0".repeat(zeros - 1)),
        _ => format!("{mantissa}e{exp}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(nice_step(10.0, 5).value, 2.0);
        assert_eq!(nice_step(60.0, 8).value, 10.0);
        assert_eq!(nice_step(1.0, 5).decimals, 1);
        assert_eq!(nice_step(0.0, 5).value, 1.0);
        assert_eq!(nice_step(f64::NAN, 5).value, 1.0);
    }

    #[test]
    fn linear_nice_rounds_the_top_up_to_a_tick() {
        let axis = Axis::linear_nice("y", 0.0, 87.0);
        assert_eq!(axis.hi, 100.0);
        assert_eq!(axis.tick_positions().first(), Some(&0.0));
        assert_eq!(axis.tick_positions().last(), Some(&100.0));
        assert_eq!(axis.tick_label(20.0), "20");
        let big = Axis::linear_nice("y", 0.0, 9000.0);
        assert_eq!(big.tick_label(10000.0), "10,000");
    }

    #[test]
    fn degenerate_ranges_are_padded() {
        assert_eq!(sane_range(0.0, 0.0), (0.0, 1.0));
        assert_eq!(sane_range(5.0, 5.0), (4.5, 5.5));
        assert_eq!(sane_range(f64::NAN, f64::INFINITY), (0.0, 1.0));
        let axis = Axis::linear_exact("x", 3.0, 3.0);
        assert!(axis.hi > axis.lo && !axis.ticks.is_empty());
    }

    #[test]
    fn auto_goes_log_beyond_two_decades() {
        let axis = Axis::auto("latency (ms)", [0.2, 1.0, 150.0]);
        assert_eq!(axis.scale, Scale::Log10);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            labels,
            ["0.2", "0.5", "1", "2", "5", "10", "20", "50", "100"]
        );
        assert_eq!(axis.tick_label(2.0), "100");
        assert_eq!(axis.to_plot(0.0), None);
        let linear = Axis::auto("latency (ms)", [1.0, 50.0]);
        assert_eq!(linear.scale, Scale::Linear);
        let empty = Axis::auto("latency (ms)", []);
        assert_eq!((empty.lo, empty.hi), (0.0, 1.0));
    }

    #[test]
    fn wide_log_axes_label_only_powers_of_ten() {
        let axis = Axis::log10("x", 0.001, 1e4);
        let labels: Vec<&str> = axis.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            labels,
            ["0.001", "0.01", "0.1", "1", "10", "100", "1000", "10000"]
        );
        assert!(!axis.minor.is_empty());
    }

    #[test]
    fn decimals_are_written_exactly() {
        assert_eq!(decimal(2, -3), "0.002");
        assert_eq!(decimal(5, 2), "500");
        assert_eq!(decimal(1, 9), "1e9");
    }

    #[test]
    fn nines_axis_labels_the_nines_it_reaches() {
        let labels =
            |axis: &Axis| -> Vec<String> { axis.ticks.iter().map(|t| t.label.clone()).collect() };
        let axis = Axis::nines("percentile", 0.9999);
        assert_eq!(labels(&axis), ["0%", "90%", "99%", "99.9%", "99.99%"]);
        assert_eq!(axis.tick_label(4.0), "99.99%");
        assert!(axis.hi > 4.0 && axis.hi < 4.5);
        // At least 99.9%, at most 99.9999%, whatever the data.
        assert_eq!(labels(&Axis::nines("p", 0.5)).len(), 4);
        assert_eq!(labels(&Axis::nines("p", f64::NAN)).len(), 4);
        assert_eq!(labels(&Axis::nines("p", 1.0)).last().unwrap(), "99.9999%");
        assert_eq!(labels(&Axis::nines("p", 0.99995)).last().unwrap(), "99.99%");
    }

    #[test]
    fn nines_axis_maps_fractions_to_their_nines() {
        let axis = Axis::nines("percentile", 0.999);
        assert_eq!(axis.to_plot(0.0), Some(0.0));
        assert!((axis.to_plot(0.99).unwrap() - 2.0).abs() < 1e-9);
        assert!((axis.to_plot(1.0).unwrap() - 6.0).abs() < 1e-6);
        assert_eq!(axis.to_plot_clamped(1.0), Some(axis.hi));
        assert_eq!(axis.to_plot(f64::NAN), None);
        assert_eq!(axis.to_plot(f64::INFINITY), None);
    }

    #[test]
    fn log_axis_of_a_single_value_is_padded() {
        let axis = Axis::log10("x", 1.0, 1.0);
        assert!(axis.hi > axis.lo);
    }
}
