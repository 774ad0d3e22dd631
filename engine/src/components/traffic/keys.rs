//! Which key a request touches: uniform, Zipf, or a hot set that moves, over a fixed key
//! space.
//!
//! Zipf is sampled by rejection-inversion (Hörmann and Derflinger, 1996) in O(1) time and
//! memory, so a key space of a billion costs nothing; floats go through `libm` so the same seed
//! gives the same keys on every machine.

use crate::sim::rng::RandomSource;
use crate::sim::time::{SimDuration, SimTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How request keys are drawn, from the key space `0 .. count`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Keys {
    /// Every key equally likely: `Uniform(count: 1000)`.
    Uniform {
        /// Number of distinct keys.
        count: u64,
    },
    /// Key `k` (0-based) with probability proportional to 1 / (k + 1)^exponent:
    /// `Zipf(count: 100000, exponent: 1.1)`. Key 0 is the hottest.
    Zipf {
        /// Number of distinct keys.
        count: u64,
        /// Skew; 0 is uniform, around 1 is typical of web caches.
        exponent: f64,
    },
    /// A fraction `hot_fraction` of requests go to `hot_keys` hot keys (uniformly), the rest to
    /// any of the `count` keys (uniformly); the hot set starts at key `first` and every
    /// `shift_every` moves on to the next `hot_keys` keys (what is popular changes):
    /// `HotSet(count: 100000, hot_keys: 100, hot_fraction: 0.8, shift_every: Some("10s"))`.
    HotSet {
        /// Number of distinct keys.
        count: u64,
        /// Keys in the hot set.
        hot_keys: u64,
        /// The hot set's first key at time zero (to keep it apart from another client's hot
        /// keys). Default 0.
        #[serde(default)]
        first: u64,
        /// Fraction of requests that go to the hot set (0..1).
        hot_fraction: f64,
        /// How often the hot set moves on (duration). Default `None`: it never moves.
        #[serde(default)]
        shift_every: Option<SimDuration>,
    },
}

impl Default for Keys {
    fn default() -> Self {
        Keys::Uniform { count: 1_000_000 }
    }
}

impl Keys {
    /// Problems with the parameters, as (field, expected).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match self {
            Keys::Uniform { count } | Keys::Zipf { count, .. } | Keys::HotSet { count, .. }
                if *count == 0 =>
            {
                out.push(("count", "expected at least one key".to_string()))
            }
            _ => {}
        }
        if let Keys::HotSet {
            count,
            hot_keys,
            first,
            hot_fraction,
            shift_every,
        } = self
        {
            if first >= count {
                out.push((
                    "first",
                    format!("expected a key below `count` ({count}), found {first}"),
                ));
            }
            if *hot_keys == 0 || hot_keys > count {
                out.push((
                    "hot_keys",
                    format!("expected 1 to `count` ({count}) hot keys, found {hot_keys}"),
                ));
            }
            if !(0.0..=1.0).contains(hot_fraction) {
                out.push((
                    "hot_fraction",
                    format!("expected a fraction from 0.0 to 1.0, found {hot_fraction}"),
                ));
            }
            if *shift_every == Some(SimDuration::ZERO) {
                out.push((
                    "shift_every",
                    "expected a positive duration, or `None`".to_string(),
                ));
            }
        }
        if let Keys::Zipf { exponent, .. } = self
            && !(exponent.is_finite() && *exponent >= 0.0)
        {
            out.push((
                "exponent",
                format!("expected a finite exponent >= 0, found {exponent}"),
            ));
        }
        out
    }

    /// A sampler for these keys.
    pub fn sampler(&self) -> KeySampler {
        match *self {
            Keys::Uniform { count } => KeySampler::Uniform(count.max(1)),
            Keys::Zipf { count, exponent } => KeySampler::Zipf(Zipf::new(count.max(1), exponent)),
            Keys::HotSet {
                count,
                hot_keys,
                first,
                hot_fraction,
                shift_every,
            } => KeySampler::HotSet(HotSet {
                count: count.max(1),
                hot_keys: hot_keys.clamp(1, count.max(1)),
                first: first % count.max(1),
                hot_fraction,
                shift_every,
            }),
        }
    }
}

/// A hot set that moves on over time.
#[derive(Clone, Debug)]
pub struct HotSet {
    count: u64,
    hot_keys: u64,
    first: u64,
    hot_fraction: f64,
    shift_every: Option<SimDuration>,
}

impl HotSet {
    /// The first key of the hot set at `now`.
    pub fn first_hot(&self, now: SimTime) -> u64 {
        let period = self.shift_every.map_or(0, |d| now.0 / d.0.max(1));
        // Widening: period × hot_keys may exceed u64 for long runs of tiny periods.
        let moved = u128::from(period) * u128::from(self.hot_keys) + u128::from(self.first);
        (moved % u128::from(self.count)) as u64
    }

    fn sample<R: RandomSource>(&self, rng: &mut R, now: SimTime) -> u64 {
        if rng.uniform() < self.hot_fraction {
            (self.first_hot(now) + rng.below(self.hot_keys)) % self.count
        } else {
            rng.below(self.count)
        }
    }
}

/// A ready-to-draw key distribution.
#[derive(Clone, Debug)]
pub enum KeySampler {
    /// Uniform over `0..n`.
    Uniform(u64),
    /// Zipf over `0..n`.
    Zipf(Zipf),
    /// A hot set that moves.
    HotSet(HotSet),
}

impl KeySampler {
    /// Draw one key (a hot set as it is at time zero).
    #[inline]
    pub fn sample<R: RandomSource>(&self, rng: &mut R) -> u64 {
        self.sample_at(rng, SimTime::ZERO)
    }

    /// Draw one key at `now` (a hot set moves with time; the others do not).
    #[inline]
    pub fn sample_at<R: RandomSource>(&self, rng: &mut R, now: SimTime) -> u64 {
        match self {
            KeySampler::Uniform(n) => rng.below(*n),
            KeySampler::Zipf(z) => z.sample(rng) - 1,
            KeySampler::HotSet(h) => h.sample(rng, now),
        }
    }
}

/// Zipf over ranks `1..=n` by rejection-inversion.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    threshold: f64,
}

impl Zipf {
    /// Ranks `1..=n` with exponent `s` >= 0.
    pub fn new(n: u64, s: f64) -> Zipf {
        let n = n as f64;
        let mut z = Zipf {
            n,
            s,
            h_x1: 0.0,
            h_n: 0.0,
            threshold: 0.0,
        };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(n + 0.5);
        z.threshold = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    fn h(&self, x: f64) -> f64 {
        libm::exp(-self.s * libm::log(x))
    }

    /// H(x) = integral of x^-s, written with `helper` functions that stay exact near s = 1.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = libm::log(x);
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inv(&self, x: f64) -> f64 {
        let mut t = x * (1.0 - self.s);
        if t < -1.0 {
            t = -1.0; // Guards against rounding below the domain.
        }
        libm::exp(helper1(t) * x)
    }

    /// A rank in `1..=n`.
    pub fn sample<R: RandomSource>(&self, rng: &mut R) -> u64 {
        loop {
            let u = self.h_n + rng.uniform() * (self.h_x1 - self.h_n);
            let x = self.h_integral_inv(u);
            let k = libm::round(x).clamp(1.0, self.n);
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

/// log(1 + x) / x, continuous at 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        libm::log1p(x) / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (exp(x) - 1) / x, continuous at 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        libm::expm1(x) / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::SimRng;

    fn frequencies(n: u64, s: f64, draws: usize) -> Vec<f64> {
        let z = Zipf::new(n, s);
        let mut rng = SimRng::derive(5, "zipf");
        let mut counts = vec![0usize; n as usize];
        for _ in 0..draws {
            counts[(z.sample(&mut rng) - 1) as usize] += 1;
        }
        counts.iter().map(|&c| c as f64 / draws as f64).collect()
    }

    #[test]
    fn zipf_matches_its_pmf() {
        for s in [0.0, 0.8, 1.0, 1.5] {
            let n = 20;
            let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
            let got = frequencies(n, s, 400_000);
            for k in 1..=n {
                let want = (k as f64).powf(-s) / norm;
                let err = (got[k as usize - 1] - want).abs();
                assert!(
                    err < 0.004,
                    "s={s} k={k}: {} vs {want}",
                    got[k as usize - 1]
                );
            }
        }
    }

    #[test]
    fn the_hot_set_takes_its_share_and_moves_on() {
        let sampler = Keys::HotSet {
            count: 1000,
            hot_keys: 10,
            first: 0,
            hot_fraction: 0.8,
            shift_every: Some(SimDuration::from_secs(1)),
        }
        .sampler();
        let mut rng = SimRng::derive(3, "hot");
        let n = 200_000;
        for (t, first) in [(SimTime(0), 0), (SimTime(2_000_000_000), 20)] {
            let hot = (0..n)
                .map(|_| sampler.sample_at(&mut rng, t))
                .filter(|k| (first..first + 10).contains(k))
                .count();
            // 0.8 + 0.2 × 10/1000 = 0.802; 4 sigma of a binomial proportion is 0.0036.
            let share = hot as f64 / n as f64;
            assert!((share - 0.802).abs() < 0.0036, "t={t:?}: {share}");
        }
        let KeySampler::HotSet(h) = sampler else {
            panic!("a hot set")
        };
        assert_eq!(h.first_hot(SimTime(150_000_000_000)), 500);
        assert_eq!(h.first_hot(SimTime(100_000_000_000)), 0, "wraps around");
    }

    #[test]
    fn keys_stay_in_range() {
        let mut rng = SimRng::derive(1, "k");
        let z = Keys::Zipf {
            count: 3,
            exponent: 2.0,
        }
        .sampler();
        let u = Keys::Uniform { count: 3 }.sampler();
        for _ in 0..10_000 {
            assert!(z.sample(&mut rng) < 3);
            assert!(u.sample(&mut rng) < 3);
        }
    }
}
