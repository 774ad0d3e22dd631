//! Key popularity for the analytic model: how much of the traffic each shard or backend gets,
//! and how often a cache hits under independent references.
//!
//! ```text
//!  LRU   Che's approximation: T solves Σ (1 − e^(−q_i T)) = C; hit = Σ p_i (1 − e^(−q_i T))
//!  LFU   the C most popular keys stay: hit = Σ of the C largest p_i
//!  TTL   (capacity ≥ keys) a key filled at a miss lives ttl: hit_i = q_i ttl / (1 + q_i ttl)
//!  any policy, uniform keys: hit = C / N
//! ```
//! Key spaces up to [`EXACT_KEYS`] are summed key by key; beyond, Zipf's tail is summed in
//! blocks of neighbouring ranks (approximate, and said so).

use crate::components::traffic::keys::Keys;

/// Key spaces summed key by key.
pub const EXACT_KEYS: u64 = 1 << 21;

/// The keys requests touch: a distribution, plus a share of requests on key 0 (a celebrity).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyDist {
    /// The distribution.
    pub keys: Keys,
    /// Fraction of requests on key 0 on top of it.
    pub hot: f64,
}

impl KeyDist {
    fn count(&self) -> u64 {
        match self.keys {
            Keys::Uniform { count } | Keys::Zipf { count, .. } | Keys::HotSet { count, .. } => {
                count
            }
        }
    }

    fn uniform(&self) -> bool {
        self.hot == 0.0 && matches!(self.keys, Keys::Uniform { .. })
    }
}

/// The probability of each key, for a key space small enough to list; `None` beyond.
pub fn masses(d: &KeyDist) -> Option<Vec<f64>> {
    let mut m = match d.keys {
        Keys::Uniform { count } if count <= EXACT_KEYS => vec![1.0 / count as f64; count as usize],
        Keys::Zipf { count, exponent } if count <= EXACT_KEYS => {
            let w: Vec<f64> = (1..=count)
                .map(|k| libm::pow(k as f64, -exponent))
                .collect();
            let total: f64 = w.iter().sum();
            w.into_iter().map(|x| x / total).collect()
        }
        _ => return None,
    };
    m.iter_mut().for_each(|p| *p *= 1.0 - d.hot);
    m[0] += d.hot;
    Some(m)
}

/// The share of the traffic that goes to each of `n` parts when key `k` goes to `part(k)`.
/// Exact for key spaces up to [`EXACT_KEYS`]; beyond, the first keys are summed exactly and
/// the rest taken as spread evenly (flagged by the second value being false).
pub fn shares(keys: &KeyDist, n: usize, part: &dyn Fn(u64) -> usize) -> (Vec<f64>, bool) {
    let mut out = vec![0.0; n];
    match masses(keys) {
        Some(m) => {
            for (k, p) in m.iter().enumerate() {
                out[part(k as u64)] += p;
            }
            (out, true)
        }
        None => {
            out.iter_mut().for_each(|s| *s = 1.0 / n as f64);
            (out, false)
        }
    }
}

/// Why a cache's hit ratio has no formula, or the ratio and whether the formula is exact.
pub enum HitRatio {
    /// The ratio, whether it is exact, and the formula's name.
    Known(f64, bool, &'static str),
    /// Why no formula applies.
    Unknown(String),
}

/// The read hit ratio of a cache of `capacity` entries under independent references drawn
/// from `keys`, evicting by `eviction` (`Lru`, `Lfu`, `Ttl`) with optional `ttl` (seconds);
/// `total_rate` is the cache's request rate (requests/s), which only TTLs depend on.
pub fn hit_ratio(
    keys: &KeyDist,
    capacity: u64,
    lru: bool,
    lfu: bool,
    ttl: Option<f64>,
    total_rate: f64,
) -> HitRatio {
    let count = keys.count();
    if let Some(ttl) = ttl {
        if capacity < count {
            return HitRatio::Unknown(
                "a TTL with a capacity below the key space has no simple formula".into(),
            );
        }
        let Some(m) = masses(keys) else {
            return HitRatio::Unknown("the key space is too large to sum".into());
        };
        let hit = m
            .iter()
            .map(|p| {
                let q = p * total_rate * ttl;
                p * q / (1.0 + q)
            })
            .sum();
        return HitRatio::Known(hit, true, "TTL under independent references");
    }
    if capacity >= count {
        return HitRatio::Known(1.0, true, "every key fits");
    }
    if keys.uniform() {
        return HitRatio::Known(capacity as f64 / count as f64, true, "C / N (uniform keys)");
    }
    let Some(m) = masses(keys) else {
        return HitRatio::Unknown("the key space is too large to sum".into());
    };
    if lfu {
        // Ranks are already in decreasing popularity.
        let hit = m[..capacity as usize].iter().sum();
        return HitRatio::Known(hit, false, "LFU keeps the most popular keys");
    }
    if lru {
        return HitRatio::Known(che(&m, capacity as f64), false, "Che's approximation (LRU)");
    }
    HitRatio::Unknown("no formula for this eviction under skewed keys".into())
}

/// Che's approximation of LRU's hit ratio for key probabilities `p` and `c` entries.
fn che(p: &[f64], c: f64) -> f64 {
    let filled = |t: f64| p.iter().map(|q| -libm::expm1(-q * t)).sum::<f64>();
    let (mut lo, mut hi) = (0.0, 1.0);
    while filled(hi) < c {
        hi *= 2.0;
    }
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if filled(mid) < c {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = (lo + hi) / 2.0;
    p.iter().map(|q| q * -libm::expm1(-q * t)).sum()
}

/// The rate of backend writes of a write-behind cache that flushes every `interval` seconds:
/// each key written in an interval is flushed once.
pub fn flush_rate(keys: &KeyDist, write_rate: f64, interval: f64) -> Option<f64> {
    let m = masses(keys)?;
    Some(
        m.iter()
            .map(|p| -libm::expm1(-p * write_rate * interval))
            .sum::<f64>()
            / interval,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_keys_hit_in_proportion_to_capacity() {
        let keys = KeyDist {
            keys: Keys::Uniform { count: 1000 },
            hot: 0.0,
        };
        match hit_ratio(&keys, 250, true, false, None, 100.0) {
            HitRatio::Known(h, exact, _) => {
                assert!((h - 0.25).abs() < 1e-12);
                assert!(exact);
            }
            HitRatio::Unknown(why) => panic!("{why}"),
        }
    }

    #[test]
    fn che_matches_lru_limits() {
        // With skew, LRU beats C/N, LFU beats LRU.
        let keys = KeyDist {
            keys: Keys::Zipf {
                count: 10_000,
                exponent: 0.9,
            },
            hot: 0.0,
        };
        let (HitRatio::Known(lru, ..), HitRatio::Known(lfu, ..)) = (
            hit_ratio(&keys, 1000, true, false, None, 1.0),
            hit_ratio(&keys, 1000, false, true, None, 1.0),
        ) else {
            panic!("both have formulas");
        };
        assert!(lru > 0.1 && lru < lfu && lfu < 1.0, "{lru} {lfu}");
    }

    #[test]
    fn shares_by_key_sum_to_one() {
        let keys = KeyDist {
            keys: Keys::Zipf {
                count: 100,
                exponent: 1.0,
            },
            hot: 0.1,
        };
        let (s, exact) = shares(&keys, 4, &|k| (k % 4) as usize);
        assert!(exact);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(s[0] > s[3], "key 0 is the hottest");
    }
}
