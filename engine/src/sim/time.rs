//! Simulated time: integer nanoseconds, and durations written with units in scenario files.
//!
//! There is no floating-point clock anywhere in the kernel: floats appear only when a
//! distribution is sampled, and the sample is rounded to whole nanoseconds at once.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in simulated time, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A span of simulated time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

impl SimTime {
    /// The start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// Later than any event.
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// Seconds since the start, for reports.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// `self + d`, saturating at [`SimTime::MAX`] instead of wrapping.
    pub fn after(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }

    /// Time elapsed since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    /// No time at all.
    pub const ZERO: SimDuration = SimDuration(0);

    /// From whole milliseconds.
    pub const fn from_millis(ms: u64) -> SimDuration {
        SimDuration(ms * 1_000_000)
    }

    /// From whole seconds.
    pub const fn from_secs(s: u64) -> SimDuration {
        SimDuration(s * 1_000_000_000)
    }

    /// From floating-point seconds, rounded to the nearest nanosecond; negative and NaN give zero.
    pub fn from_secs_f64(s: f64) -> SimDuration {
        SimDuration::from_nanos_f64(s * 1e9)
    }

    /// From floating-point nanoseconds, rounded; negative and NaN give zero, huge values saturate.
    #[inline]
    pub fn from_nanos_f64(ns: f64) -> SimDuration {
        if ns.is_nan() || ns <= 0.0 {
            SimDuration(0)
        } else if ns < 9.007_199_254_740_992e15 {
            // Below 2^53 (104 days): round half away from zero, as `libm::round`, without its
            // call; the fraction `ns - trunc(ns)` is exact here, and the conversion through
            // `i64` is one instruction where the one to `u64` is several.
            let t = ns as i64;
            SimDuration(t as u64 + u64::from(ns - t as f64 >= 0.5))
        } else if ns >= u64::MAX as f64 {
            SimDuration(u64::MAX)
        } else {
            // At and above 2^53 every `f64` is an integer already.
            SimDuration(ns as u64)
        }
    }

    /// Seconds, for reports and for distributions that compute in floats.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// Milliseconds, for reports.
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Multiply by a non-negative factor (a slowdown), rounding to the nearest nanosecond.
    pub fn scaled(self, factor: f64) -> SimDuration {
        if factor == 1.0 {
            self
        } else {
            SimDuration::from_nanos_f64(self.0 as f64 * factor)
        }
    }
}

// No bare "m": it reads as minutes to some and milliseconds to others.
const UNITS: [(&str, u64); 6] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("min", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parse a duration such as `"250us"`, `"3ms"`, `"1.5s"`, `"2min"`, `"0"`.
///
/// Decimal fractions are computed exactly in integers, so `"0.1s"` is exactly 100 ms;
/// a value finer than one nanosecond is an error rather than silently rounded.
pub fn parse_duration(text: &str) -> Result<SimDuration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(SimDuration::ZERO);
    }
    // Messages quote the text; a hostile one may be megabytes long.
    let shown: String = t.chars().take(40).collect();
    let shown = if shown.len() < t.len() {
        format!("{shown}...")
    } else {
        shown
    };
    if t.starts_with('-') {
        return Err(format!(
            "`{shown}`: a duration cannot be negative; {EXPECTED_DURATION}"
        ));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{shown}` has no unit; {}", EXPECTED_DURATION))?;
    let (number, unit) = t.split_at(split);
    let unit_ns = UNITS
        .iter()
        .find(|(u, _)| *u == unit.trim())
        .map(|(_, ns)| *ns)
        .ok_or_else(|| {
            let unit: String = unit.chars().take(40).collect();
            format!("`{unit}` is not a time unit; {}", EXPECTED_DURATION)
        })?;
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(format!("`{shown}` has no number; {}", EXPECTED_DURATION));
    }
    let too_long = || format!("`{shown}` is too long (the limit is about 584 years)");
    // Only digits are left, so a number that does not parse is too large for u128.
    let int: u128 = if int_part.is_empty() {
        0
    } else {
        int_part.parse().map_err(|_| too_long())?
    };
    let mut ns = int.checked_mul(unit_ns as u128).ok_or_else(too_long)?;
    if !frac_part.is_empty() {
        if frac_part.len() > 18 {
            return Err(format!("`{shown}` has too many decimals"));
        }
        let frac: u128 = frac_part
            .parse()
            .map_err(|_| format!("`{shown}` is not a number with a unit"))?;
        let scale = 10u128.pow(frac_part.len() as u32);
        let frac_ns = frac * unit_ns as u128;
        if !frac_ns.is_multiple_of(scale) {
            return Err(format!("`{shown}` is finer than one nanosecond"));
        }
        ns += frac_ns / scale;
    }
    u64::try_from(ns).map(SimDuration).map_err(|_| too_long())
}

/// What a duration must look like, for error messages.
pub const EXPECTED_DURATION: &str = "expected a duration string such as \"250us\", \"3ms\", \"1.5s\", \"2min\" (units: ns, us, ms, s, min, h)";

impl fmt::Display for SimDuration {
    /// The shortest exact form: `1.5s`, `250us`, `3ms`, `7ns`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        if ns == 0 {
            return write!(f, "0s");
        }
        for (unit, size) in [("s", 1_000_000_000u64), ("ms", 1_000_000), ("us", 1_000)] {
            if ns >= size {
                let whole = ns / size;
                let rest = ns % size;
                if rest == 0 {
                    return write!(f, "{whole}{unit}");
                }
                let digits = size.ilog10() as usize;
                let frac = format!("{rest:0digits$}");
                return write!(f, "{whole}.{}{unit}", frac.trim_end_matches('0'));
            }
        }
        write!(f, "{ns}ns")
    }
}

impl Serialize for SimDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SimDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED_DURATION)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SimDuration, E> {
                parse_duration(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl schemars::JsonSchema for SimDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SimDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "duration",
            "description": "A duration with a unit: \"250us\", \"3ms\", \"1.5s\" (ns, us, ms, s, min, h)."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_nanos_rounds_as_libm_round() {
        let mut x = 0.25f64;
        let mut cases = vec![
            0.5,
            1.5,
            2.5,
            0.49999999999999994,
            4503599627370495.5,
            9007199254740991.0,
            9007199254740992.0,
            9007199254740994.0,
            9.1e18,
            9223372036854775808.0,
        ];
        while x < 1.8e19 {
            cases.extend([x, x + 0.5, x - 0.5, x * 1.0000001, x * 0.9999999]);
            x *= 1.37;
        }
        for ns in cases {
            let want = libm::round(ns) as u64;
            assert_eq!(SimDuration::from_nanos_f64(ns), SimDuration(want), "{ns}");
        }
    }

    #[test]
    fn parses_units_exactly() {
        assert_eq!(parse_duration("250us"), Ok(SimDuration(250_000)));
        assert_eq!(parse_duration("3ms"), Ok(SimDuration(3_000_000)));
        assert_eq!(parse_duration("1.5s"), Ok(SimDuration(1_500_000_000)));
        assert_eq!(parse_duration("0.1s"), Ok(SimDuration(100_000_000)));
        assert_eq!(parse_duration("2min"), Ok(SimDuration(120_000_000_000)));
        assert_eq!(parse_duration("1h"), Ok(SimDuration(3_600_000_000_000)));
        assert_eq!(parse_duration("0"), Ok(SimDuration(0)));
        assert_eq!(parse_duration(".5ms"), Ok(SimDuration(500_000)));
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in [
            "",
            "5",
            "3 parsecs",
            "1.5",
            "ms",
            "0.5ns",
            "-3ms",
            "1e3ms",
            "99999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["1.5s", "250us", "3ms", "7ns", "0s", "1.000001s", "60s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(d.to_string(), text);
            assert_eq!(parse_duration(&d.to_string()), Ok(d));
        }
    }
}
