//! Sizes and bandwidths as scenario files write them: `"4KB"`, `"1.5MiB"`, `"1Gbps"`,
//! `"125MB/s"`, and distributions of sizes (`LogNormal(median: "2KB", p99: "64KB")`).
//!
//! Message sizes travel with the messages ([`crate::contract::call::Request::size`],
//! [`crate::contract::call::Reply::size`]); the kernel only sees a byte count and a capacity
//! in bytes per second. A size distribution is sampled through the duration distributions'
//! code ([`Dist`]), one byte standing for one nanosecond, so both share one implementation.

use crate::contract::validate::{Path, Validator};
use crate::sim::dist::Dist;
use crate::sim::rng::RandomSource;
use crate::sim::time::SimDuration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Largest message size (4 GiB minus one byte): sizes travel in 32 bits.
pub const MAX_MESSAGE_BYTES: u64 = u32::MAX as u64;

/// What a size must look like, for error messages.
pub const EXPECTED_SIZE: &str = "expected a size such as \"512B\", \"4KB\", \"1.5MiB\" or \"2GB\" (units B, KB, MB, GB, KiB, MiB, GiB) or a whole number of bytes";

/// What a bandwidth must look like, for error messages.
pub const EXPECTED_BANDWIDTH: &str = "expected a bandwidth such as \"1Gbps\", \"100Mbps\" or \"125MB/s\" (bits: bps, Kbps, Mbps, Gbps, Tbps; bytes: B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s)";

const SIZE_UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
];

/// Bytes per second of each bandwidth unit.
const BANDWIDTH_UNITS: &[(&str, f64)] = &[
    ("bps", 0.125),
    ("Kbps", 125.0),
    ("Mbps", 125e3),
    ("Gbps", 125e6),
    ("Tbps", 125e9),
    ("B/s", 1.0),
    ("KB/s", 1e3),
    ("MB/s", 1e6),
    ("GB/s", 1e9),
    ("KiB/s", 1024.0),
    ("MiB/s", 1_048_576.0),
    ("GiB/s", 1_073_741_824.0),
];

/// A number of bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

/// Split `"1.5MiB"` into its number and unit, checking the number.
fn number_and_unit<'t>(t: &'t str, expected: &str) -> Result<(f64, &'t str), String> {
    if t.starts_with('-') {
        return Err(format!("`{t}` is negative; {expected}"));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{t}` has no number; {expected}"))?;
    Ok((value, unit.trim()))
}

/// Parse a size such as `"4KB"` or `"1.5MiB"` (a plain number is bytes).
pub fn parse_bytes(text: &str) -> Result<Bytes, String> {
    let t = text.trim();
    let (value, unit) = number_and_unit(t, EXPECTED_SIZE)?;
    let unit = if unit.is_empty() { "B" } else { unit };
    let per = SIZE_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, n)| *n)
        .ok_or_else(|| format!("`{unit}` is not a size unit; {EXPECTED_SIZE}"))?;
    let bytes = value * per as f64;
    if bytes != bytes.trunc() {
        return Err(format!("`{t}` is not a whole number of bytes"));
    }
    if bytes > MAX_MESSAGE_BYTES as f64 {
        return Err(format!(
            "`{t}` is larger than one message may be; expected at most 4GiB"
        ));
    }
    Ok(Bytes(bytes as u64))
}

impl fmt::Display for Bytes {
    /// The largest unit that divides the size exactly: `4KB`, `1MiB`, `700B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = SIZE_UNITS
            .iter()
            .rev()
            .filter(|(_, n)| self.0 >= *n && self.0.is_multiple_of(*n))
            .max_by_key(|(_, n)| *n)
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{}", self.0 / unit.1, unit.0)
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED_SIZE)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bytes, E> {
                parse_bytes(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Bytes, E> {
                parse_bytes(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Bytes, E> {
                parse_bytes(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Bytes, E> {
                parse_bytes(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Bytes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Bytes".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "size",
            "description": "A size with a unit: \"512B\", \"4KB\", \"1.5MiB\" (B, KB, MB, GB, KiB, MiB, GiB)."
        })
    }
}

/// A link capacity, kept in bytes per second.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Bandwidth(pub f64);

/// Parse a bandwidth such as `"1Gbps"` or `"125MB/s"`.
pub fn parse_bandwidth(text: &str) -> Result<Bandwidth, String> {
    let t = text.trim();
    let (value, unit) = number_and_unit(t, EXPECTED_BANDWIDTH)?;
    let per = BANDWIDTH_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, n)| *n)
        .ok_or_else(|| format!("`{unit}` is not a bandwidth unit; {EXPECTED_BANDWIDTH}"))?;
    Ok(Bandwidth(value * per))
}

impl fmt::Display for Bandwidth {
    /// In bits per second, in the largest unit that keeps a number of at least 1: `1Gbps`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.0 * 8.0;
        let (unit, per) = [("Tbps", 1e12), ("Gbps", 1e9), ("Mbps", 1e6), ("Kbps", 1e3)]
            .into_iter()
            .find(|(_, per)| bits >= *per)
            .unwrap_or(("bps", 1.0));
        write!(f, "{}{unit}", bits / per)
    }
}

impl Serialize for Bandwidth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bandwidth;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED_BANDWIDTH)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bandwidth, E> {
                parse_bandwidth(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl schemars::JsonSchema for Bandwidth {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Bandwidth".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "bandwidth",
            "description": "A link capacity: \"1Gbps\", \"100Mbps\", \"125MB/s\"."
        })
    }
}

/// A distribution of message sizes: `Constant("4KB")`, `LogNormal(median: "2KB", p99: "64KB")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum SizeDist {
    /// Always the same size: `Constant("4KB")`.
    Constant(Bytes),
    /// Uniform between `low` and `high`: `Uniform(low: "1KB", high: "9KB")`.
    Uniform {
        /// Smallest size.
        low: Bytes,
        /// Largest size.
        high: Bytes,
    },
    /// Exponential with the given mean: `Exponential(mean: "8KB")`.
    Exponential {
        /// Mean size.
        mean: Bytes,
    },
    /// Log-normal given by its median and 99th percentile: `LogNormal(median: "2KB", p99: "64KB")`.
    LogNormal {
        /// Median size.
        median: Bytes,
        /// 99th percentile; at least the median.
        p99: Bytes,
    },
    /// Pareto (heavy tail) with minimum `scale` and tail index `shape`:
    /// `Pareto(scale: "1KB", shape: 1.5)`.
    Pareto {
        /// Smallest size.
        scale: Bytes,
        /// Tail index (alpha), positive.
        shape: f64,
    },
    /// One of the listed sizes, each equally likely: `Empirical(["1KB", "1KB", "10MB"])`.
    Empirical(Vec<Bytes>),
}

impl Default for SizeDist {
    fn default() -> Self {
        SizeDist::Constant(Bytes(0))
    }
}

impl SizeDist {
    /// Whether every size is zero (the default): nothing to draw.
    pub fn is_zero(&self) -> bool {
        *self == SizeDist::Constant(Bytes(0))
    }

    /// The same distribution over nanoseconds, one per byte, to sample with [`Dist`]'s code.
    pub fn as_dist(&self) -> Dist {
        let d = |b: Bytes| SimDuration(b.0);
        match self {
            SizeDist::Constant(b) => Dist::Constant(d(*b)),
            SizeDist::Uniform { low, high } => Dist::Uniform {
                low: d(*low),
                high: d(*high),
            },
            SizeDist::Exponential { mean } => Dist::Exponential { mean: d(*mean) },
            SizeDist::LogNormal { median, p99 } => Dist::LogNormal {
                median: d(*median),
                p99: d(*p99),
            },
            SizeDist::Pareto { scale, shape } => Dist::Pareto {
                scale: d(*scale),
                shape: *shape,
            },
            SizeDist::Empirical(v) => Dist::Empirical(v.iter().map(|b| d(*b)).collect()),
        }
    }

    /// Mean size in bytes.
    pub fn mean_bytes(&self) -> f64 {
        self.as_dist().mean_secs() * 1e9
    }

    /// Check the parameters; `at` is the field's path.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        let problem = match self {
            SizeDist::Uniform { low, high } if high < low => {
                Some(("high", format!("expected `high` >= `low` ({low})")))
            }
            SizeDist::LogNormal { median, .. } if median.0 == 0 => {
                Some(("median", "expected a positive median".to_string()))
            }
            SizeDist::LogNormal { median, p99 } if p99 < median => {
                Some(("p99", format!("expected `p99` >= `median` ({median})")))
            }
            SizeDist::Pareto { scale, .. } if scale.0 == 0 => {
                Some(("scale", "expected a positive scale".to_string()))
            }
            SizeDist::Pareto { shape, .. } if !(shape.is_finite() && *shape > 0.0) => Some((
                "shape",
                format!("expected a positive, finite shape, found {shape}"),
            )),
            SizeDist::Empirical(list) if list.is_empty() => {
                Some(("", "expected at least one size in the list".to_string()))
            }
            _ => None,
        };
        if let Some((field, expected)) = problem {
            v.error(&at.field(field), "invalid size distribution", expected);
        }
    }
}

/// A prepared size distribution: draws in bytes, capped at [`MAX_MESSAGE_BYTES`].
#[derive(Clone, Debug)]
pub struct SizeSampler(Option<crate::sim::dist::Sampler>);

impl SizeSampler {
    /// Prepare `d` (nothing to draw for the default, zero).
    pub fn new(d: &SizeDist) -> SizeSampler {
        SizeSampler((!d.is_zero()).then(|| crate::sim::dist::Sampler::new(d.as_dist())))
    }

    /// Draw one size in bytes (no draw for the default).
    #[inline]
    pub fn sample<R: RandomSource>(&self, rng: &mut R) -> u32 {
        match &self.0 {
            None => 0,
            Some(s) => s.sample(rng).0.min(MAX_MESSAGE_BYTES) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_decimal_and_binary_units_and_print_back() {
        for (text, bytes, shown) in [
            ("512B", 512, "512B"),
            ("4KB", 4_000, "4KB"),
            ("4KiB", 4_096, "4KiB"),
            ("1.5MB", 1_500_000, "1500KB"),
            ("2GB", 2_000_000_000, "2GB"),
            ("700", 700, "700B"),
        ] {
            let b = parse_bytes(text).unwrap();
            assert_eq!(b, Bytes(bytes), "{text}");
            assert_eq!(b.to_string(), shown);
            assert_eq!(parse_bytes(shown), Ok(b));
        }
        assert!(parse_bytes("-5B").unwrap_err().contains("negative"));
        assert!(parse_bytes("5XB").unwrap_err().contains("not a size unit"));
        assert!(parse_bytes("0.5B").is_err());
        assert!(parse_bytes("5GB").unwrap_err().contains("at most 4GiB"));
    }

    #[test]
    fn bandwidths_parse_in_bits_and_bytes() {
        assert_eq!(parse_bandwidth("1Gbps"), Ok(Bandwidth(125e6)));
        assert_eq!(parse_bandwidth("125MB/s"), Ok(Bandwidth(125e6)));
        assert_eq!(parse_bandwidth("8 Kbps"), Ok(Bandwidth(1e3)));
        assert_eq!(Bandwidth(125e6).to_string(), "1Gbps");
        assert_eq!(Bandwidth(1.25e6).to_string(), "10Mbps");
        assert!(parse_bandwidth("1GHz").is_err());
        assert!(parse_bandwidth("-1Gbps").is_err());
    }

    #[test]
    fn size_draws_follow_the_distribution_in_bytes() {
        let mut rng = crate::sim::rng::SimRng::derive(1, "sizes");
        let s = SizeSampler::new(&SizeDist::Exponential {
            mean: Bytes(10_000),
        });
        let n = 100_000;
        let mean = (0..n).map(|_| s.sample(&mut rng) as f64).sum::<f64>() / n as f64;
        // Standard error 10000 / sqrt(n) = 32 bytes; 4 sigma.
        assert!((mean - 10_000.0).abs() < 130.0, "{mean}");
        assert_eq!(SizeSampler::new(&SizeDist::default()).sample(&mut rng), 0);
    }
}
