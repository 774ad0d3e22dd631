//! The run's memory budget (`limits.max_memory`): the structures that grow with load are
//! charged as they grow, and the event loop checks one precomputed number per event.
//!
//! ```text
//!  component table/queue grows ──Ctx::charge_memory──▶ charged += bytes ─┐
//!  event queue, parked bodies, timer slots ──measured (cold)──▶ kernel ──┴─▶ ≤ max_memory?
//!                                                      no ─▶ the run stops, naming what grew
//!  hot path: pending events ≤ pending_cap (how many more still fit; re-measured when passed)
//! ```
//!
//! Components charge the capacity they add (a table doubling, a queue growing), never per
//! item, so a charge is as rare as a reallocation. Capacity is not given back: a table that
//! once held a million calls keeps its allocation, and its charge.

/// Bytes one more pending event may cost at worst, for an entry of `entry` bytes and a
/// message body of `body` bytes: its queue entry, a parked body and a timer slot, each
/// doubled for the slack of a growing vector.
pub const fn per_pending_event(entry: usize, body: usize) -> u64 {
    (2 * (entry + body + 8)) as u64
}

/// The budget's state during one run.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    max: u64,
    max_pending: usize,
    per_pending: u64,
    /// Bytes charged by components.
    charged: u64,
    /// Pending events (queued and held) allowed before the kernel measures itself again.
    pub(crate) pending_cap: usize,
}

impl Budget {
    /// A budget of `max` bytes, with at most `max_pending` pending events, where one more
    /// pending event costs at most `per_pending` bytes.
    pub(crate) fn new(max: u64, max_pending: usize, per_pending: u64) -> Budget {
        let mut b = Budget {
            max,
            max_pending,
            per_pending: per_pending.max(1),
            charged: 0,
            pending_cap: 0,
        };
        b.fits(0, 0);
        b
    }

    /// Add `bytes` a component's structure grew by.
    pub(crate) fn charge(&mut self, bytes: u64) {
        self.charged = self.charged.saturating_add(bytes);
    }

    /// Bytes components have charged.
    pub(crate) fn charged(&self) -> u64 {
        self.charged
    }

    /// The budget in bytes.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// Whether `kernel` bytes (measured now, with `pending` events pending) and the charges
    /// fit; if they do, how many pending events may come before the next measurement.
    pub(crate) fn fits(&mut self, kernel: u64, pending: usize) -> bool {
        let used = kernel.saturating_add(self.charged);
        if used > self.max {
            return false;
        }
        let room = (self.max - used) / self.per_pending;
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        self.pending_cap = pending.saturating_add(room).min(self.max_pending);
        true
    }
}

/// A size in bytes, written with a unit: `"512MiB"`, `"1GiB"`, `"2GB"`, `"800KB"`, `"4096B"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

const EXPECTED_SIZE: &str = "expected a size with a unit, such as \"512MiB\" or \"2GB\" (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)";

const SIZE_UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Parse a size such as `"1GiB"`, `"1.5GB"`, `"800 MiB"`.
pub fn parse_size(text: &str) -> Result<ByteSize, String> {
    let t = text.trim();
    let shown: String = t.chars().take(40).collect();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{shown}` has no unit; {EXPECTED_SIZE}"))?;
    let (number, unit) = (&t[..split], t[split..].trim());
    let Some(&(_, scale)) = SIZE_UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!(
            "`{shown}`: `{unit}` is not a size unit; {EXPECTED_SIZE}"
        ));
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{shown}` is not a number with a unit; {EXPECTED_SIZE}"))?;
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes < u64::MAX as f64) {
        return Err(format!("`{shown}` is too large; {EXPECTED_SIZE}"));
    }
    Ok(ByteSize(bytes.round() as u64))
}

impl std::fmt::Display for ByteSize {
    /// The largest binary unit that divides it exactly, so it reads back the same.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let binary = ["TiB", "GiB", "MiB", "KiB"];
        for (unit, scale) in SIZE_UNITS.iter().rev().filter(|(u, _)| binary.contains(u)) {
            if self.0 >= *scale && self.0.is_multiple_of(*scale) {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(EXPECTED_SIZE)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "size",
            "description": "A size with a unit: \"512MiB\", \"2GB\" (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)."
        })
    }
}

/// `bytes` for a reader: `1.5 GiB`, `320 MiB`, `12 KiB`, `800 B`.
pub fn show_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let v = bytes as f64 / size as f64;
            return if v < 10.0 {
                format!("{v:.1} {unit}")
            } else {
                format!("{v:.0} {unit}")
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_for_pending_events_shrinks_with_charges_and_stops_at_the_budget() {
        let mut b = Budget::new(10_000, 1_000_000, 100);
        assert_eq!(b.pending_cap, 100, "10,000 bytes at 100 per pending event");
        b.charge(5_000);
        assert!(b.fits(1_000, 10));
        assert_eq!(b.pending_cap, 10 + 40, "4,000 bytes left");
        assert!(
            !b.fits(5_001, 60),
            "5,000 charged + 5,001 measured > 10,000"
        );
        let mut small = Budget::new(1 << 40, 7, 100);
        assert!(small.fits(0, 0));
        assert_eq!(small.pending_cap, 7, "max_pending_events bounds it too");
    }

    #[test]
    fn parses_sizes_and_writes_them_back() {
        assert_eq!(parse_size("1GiB"), Ok(ByteSize(1 << 30)));
        assert_eq!(parse_size("1.5 GB"), Ok(ByteSize(1_500_000_000)));
        assert_eq!(parse_size("4096B"), Ok(ByteSize(4096)));
        assert_eq!(ByteSize(1 << 30).to_string(), "1GiB");
        assert_eq!(ByteSize(1_500_000_000).to_string(), "1500000000B");
        assert_eq!(ByteSize(3 << 20).to_string(), "3MiB");
        assert!(parse_size("1").unwrap_err().contains("no unit"));
        assert!(parse_size("1GBs").unwrap_err().contains("not a size unit"));
        assert!(parse_size("1e400GB").is_err());
        assert!(
            parse_size("99999999999999TiB")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn shows_bytes_in_binary_units() {
        assert_eq!(show_bytes(800), "800 B");
        assert_eq!(show_bytes(1536), "1.5 KiB");
        assert_eq!(show_bytes(320 << 20), "320 MiB");
        assert_eq!(show_bytes(1 << 30), "1.0 GiB");
    }
}
