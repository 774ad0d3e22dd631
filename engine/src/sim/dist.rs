//! Probability distributions of durations (service times, latencies, think times).
//!
//! Sampling goes through the pure-Rust `libm` crate rather than the platform's `ln`/`exp`/`pow`
//! (which `rand_distr` uses): those differ in the last bit between FMA and non-FMA code paths,
//! and a run must give the same bytes on every machine. Each sampler is an inverse transform
//! or a textbook method over [`RandomSource::uniform`]; normal and exponential draws (latencies,
//! service times, Poisson gaps: most draws of a run) use the ziggurat method (see [`ziggurat`]),
//! which needs no logarithm or cosine for 98.8% and 98.9% of the draws, and the log-normal's
//! `exp` is a table-driven one (see [`exp`]) that is also pure arithmetic.

use crate::sim::rng::RandomSource;
use crate::sim::time::SimDuration;
use serde::{Deserialize, Serialize};

/// A distribution of durations. Written in scenario files as, for example,
/// `Exponential(mean: "1ms")` or `LogNormal(median: "400us", p99: "3ms")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Dist {
    /// Always the same value: `Constant("2ms")`.
    Constant(SimDuration),
    /// Memoryless, with the given mean: `Exponential(mean: "1ms")`.
    Exponential {
        /// Mean value.
        mean: SimDuration,
    },
    /// Uniform between `low` and `high`: `Uniform(low: "1ms", high: "3ms")`.
    Uniform {
        /// Smallest value.
        low: SimDuration,
        /// Largest value.
        high: SimDuration,
    },
    /// Normal, truncated at zero (negative draws are redrawn): `Normal(mean: "5ms", std_dev: "1ms")`.
    Normal {
        /// Mean before truncation.
        mean: SimDuration,
        /// Standard deviation before truncation.
        std_dev: SimDuration,
    },
    /// Log-normal given by its median and 99th percentile: `LogNormal(median: "400us", p99: "3ms")`.
    LogNormal {
        /// Median (50th percentile).
        median: SimDuration,
        /// 99th percentile; at least the median.
        p99: SimDuration,
    },
    /// Pareto (heavy tail) with minimum `scale` and tail index `shape`:
    /// `Pareto(scale: "1ms", shape: 2.5)`. The mean is finite only for shape > 1.
    Pareto {
        /// Minimum value.
        scale: SimDuration,
        /// Tail index (alpha), positive.
        shape: f64,
    },
    /// One of the listed values, each equally likely: `Empirical(["1ms", "1ms", "9ms"])`.
    Empirical(Vec<SimDuration>),
}

/// The 99th percentile of the standard normal distribution.
const Z_99: f64 = 2.326_347_874_040_841;

impl Dist {
    /// Draw one duration.
    pub fn sample<R: RandomSource>(&self, rng: &mut R) -> SimDuration {
        let ns = match self {
            Dist::Constant(d) => return *d,
            Dist::Exponential { mean } => mean.0 as f64 * standard_exponential(rng),
            Dist::Uniform { low, high } => low.0 as f64 + (high.0 - low.0) as f64 * rng.uniform(),
            Dist::Normal { mean, std_dev } => {
                truncated_normal(mean.0 as f64, std_dev.0 as f64, rng)
            }
            Dist::LogNormal { median, p99 } => {
                let (mu, sigma) = lognormal_params(*median, *p99);
                exp::exp(mu + sigma * standard_normal(rng))
            }
            Dist::Pareto { scale, shape } => {
                scale.0 as f64 * libm::pow(rng.uniform_open0(), -1.0 / shape)
            }
            Dist::Empirical(values) => return values[rng.below(values.len() as u64) as usize],
        };
        SimDuration::from_nanos_f64(ns)
    }

    /// The mean in seconds (before truncation for `Normal`; infinite for Pareto with shape <= 1).
    pub fn mean_secs(&self) -> f64 {
        match self {
            Dist::Constant(d) => d.as_secs_f64(),
            Dist::Exponential { mean } => mean.as_secs_f64(),
            Dist::Uniform { low, high } => (low.as_secs_f64() + high.as_secs_f64()) / 2.0,
            Dist::Normal { mean, .. } => mean.as_secs_f64(),
            Dist::LogNormal { median, p99 } => {
                let (mu, sigma) = lognormal_params(*median, *p99);
                libm::exp(mu + sigma * sigma / 2.0) / 1e9
            }
            Dist::Pareto { scale, shape } if *shape > 1.0 => {
                scale.as_secs_f64() * shape / (shape - 1.0)
            }
            Dist::Pareto { .. } => f64::INFINITY,
            Dist::Empirical(v) => {
                v.iter().map(|d| d.as_secs_f64()).sum::<f64>() / v.len().max(1) as f64
            }
        }
    }

    /// Problems with the parameters, each as (field, what was expected).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match self {
            Dist::Constant(_) | Dist::Exponential { .. } => {}
            Dist::Uniform { low, high } if high < low => {
                out.push(("high", format!("expected `high` >= `low` ({low})")))
            }
            Dist::Uniform { .. } => {}
            Dist::Normal { mean, std_dev } if mean.0 == 0 && std_dev.0 > 0 => out.push((
                "mean",
                "expected a positive mean (the distribution is truncated at zero)".to_string(),
            )),
            Dist::Normal { .. } => {}
            Dist::LogNormal { median, p99 } => {
                if median.0 == 0 {
                    out.push(("median", "expected a positive median".to_string()));
                }
                if p99 < median {
                    out.push(("p99", format!("expected `p99` >= `median` ({median})")));
                }
            }
            Dist::Pareto { scale, shape } => {
                if scale.0 == 0 {
                    out.push(("scale", "expected a positive scale".to_string()));
                }
                if !(shape.is_finite() && *shape > 0.0) {
                    out.push((
                        "shape",
                        format!("expected a positive, finite shape, found {shape}"),
                    ));
                }
            }
            Dist::Empirical(v) if v.is_empty() => {
                out.push(("", "expected at least one value in the list".to_string()))
            }
            Dist::Empirical(_) => {}
        }
        out
    }
}

/// A distribution prepared for many draws: the log-normal's `mu` and `sigma`, which cost two
/// logarithms to derive from its median and p99, are computed once instead of per draw.
/// Draws are bit-identical to [`Dist::sample`] (same arithmetic, same order).
#[derive(Clone, Debug, PartialEq)]
pub struct Sampler {
    dist: Dist,
    /// (mu, sigma) when `dist` is log-normal.
    lognormal: (f64, f64),
    /// The normal ziggurat and `exp` tables, dereferenced once here rather than through their
    /// lazy statics on every draw.
    normal_table: &'static ziggurat::Table,
    exp_table: &'static [u64; 128],
}

impl Sampler {
    /// Prepare `dist` for drawing.
    pub fn new(dist: Dist) -> Sampler {
        let lognormal = match &dist {
            Dist::LogNormal { median, p99 } => lognormal_params(*median, *p99),
            _ => (0.0, 0.0),
        };
        Sampler {
            dist,
            lognormal,
            normal_table: &ziggurat::NORMAL,
            exp_table: &exp::TABLE,
        }
    }

    /// Draw one duration, as [`Dist::sample`] would.
    #[inline]
    pub fn sample<R: RandomSource>(&self, rng: &mut R) -> SimDuration {
        match &self.dist {
            // Without a call: constant latencies are common, and need no draw.
            Dist::Constant(d) => *d,
            Dist::LogNormal { .. } => self.lognormal(rng),
            d => d.sample(rng),
        }
    }

    /// A log-normal draw with `self.lognormal`'s parameters.
    #[inline(always)]
    fn lognormal<R: RandomSource>(&self, rng: &mut R) -> SimDuration {
        let (mu, sigma) = self.lognormal;
        let z = ziggurat::normal_in(self.normal_table, rng);
        SimDuration::from_nanos_f64(exp::exp_in(self.exp_table, mu + sigma * z))
    }

    /// Fill `out` with draws, as that many calls of [`Sampler::sample`] would, in order.
    pub fn fill<R: RandomSource>(&self, rng: &mut R, out: &mut [SimDuration]) {
        match &self.dist {
            Dist::LogNormal { .. } => {
                for d in out {
                    *d = self.lognormal(rng);
                }
            }
            _ => {
                for d in out {
                    *d = self.sample(rng);
                }
            }
        }
    }
}

fn lognormal_params(median: SimDuration, p99: SimDuration) -> (f64, f64) {
    let mu = libm::log(median.0.max(1) as f64);
    let sigma = (libm::log(p99.0.max(1) as f64) - mu).max(0.0) / Z_99;
    (mu, sigma)
}

/// A standard normal draw (mean 0, variance 1), by the ziggurat method.
#[inline]
pub fn standard_normal<R: RandomSource>(rng: &mut R) -> f64 {
    ziggurat::normal(rng)
}

/// A standard exponential draw (mean 1), by the ziggurat method.
#[inline]
pub fn standard_exponential<R: RandomSource>(rng: &mut R) -> f64 {
    ziggurat::exponential(rng)
}

/// Normal truncated at zero by rejection; validation keeps the mean non-negative, so at least
/// half the draws are accepted and 64 rejections in a row has probability below 2^-64.
fn truncated_normal<R: RandomSource>(mean: f64, sd: f64, rng: &mut R) -> f64 {
    for _ in 0..64 {
        let x = mean + sd * standard_normal(rng);
        if x >= 0.0 {
            return x;
        }
    }
    0.0
}

mod exp;
mod ziggurat;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::SimRng;

    fn ms(x: u64) -> SimDuration {
        SimDuration::from_millis(x)
    }

    fn sample_mean(d: &Dist, n: usize) -> f64 {
        let mut rng = SimRng::derive(42, "dist-test");
        (0..n)
            .map(|_| d.sample(&mut rng).as_secs_f64())
            .sum::<f64>()
            / n as f64
    }

    #[test]
    fn a_prepared_sampler_draws_the_same_bits() {
        let dists = [
            Dist::LogNormal {
                median: SimDuration(400_000),
                p99: ms(3),
            },
            Dist::Exponential { mean: ms(1) },
            Dist::Pareto {
                scale: ms(1),
                shape: 2.5,
            },
        ];
        for d in dists {
            let (mut a, mut b) = (SimRng::derive(3, "s"), SimRng::derive(3, "s"));
            let sampler = Sampler::new(d.clone());
            for _ in 0..10_000 {
                assert_eq!(d.sample(&mut a), sampler.sample(&mut b), "{d:?}");
            }
        }
    }

    #[test]
    fn sample_means_match_theory() {
        let cases = [
            Dist::Constant(ms(2)),
            Dist::Exponential { mean: ms(1) },
            Dist::Uniform {
                low: ms(1),
                high: ms(3),
            },
            Dist::Normal {
                mean: ms(10),
                std_dev: ms(1),
            },
            Dist::LogNormal {
                median: ms(1),
                p99: ms(5),
            },
            Dist::Pareto {
                scale: ms(1),
                shape: 3.0,
            },
            Dist::Empirical(vec![ms(1), ms(1), ms(10)]),
        ];
        for d in &cases {
            let m = sample_mean(d, 200_000);
            let want = d.mean_secs();
            assert!(
                (m - want).abs() / want < 0.02,
                "{d:?}: sample mean {m} vs {want}"
            );
        }
    }

    #[test]
    fn lognormal_percentiles_are_the_given_ones() {
        let d = Dist::LogNormal {
            median: ms(1),
            p99: ms(5),
        };
        let mut rng = SimRng::derive(1, "ln");
        let mut v: Vec<u64> = (0..100_000).map(|_| d.sample(&mut rng).0).collect();
        v.sort_unstable();
        let p50 = v[50_000] as f64 / 1e6;
        let p99 = v[99_000] as f64 / 1e6;
        assert!((p50 - 1.0).abs() < 0.03, "p50 {p50}");
        assert!((p99 - 5.0).abs() < 0.3, "p99 {p99}");
    }

    /// Log-normal draws (ziggurat normal, table `exp`) against theory: mean, variance and
    /// quantiles exp(mu + sigma z_p), over a million draws of the prepared sampler.
    #[test]
    fn lognormal_moments_and_quantiles_match_theory() {
        let d = Dist::LogNormal {
            median: SimDuration(200_000),
            p99: ms(1),
        };
        let (mu, sigma) = lognormal_params(SimDuration(200_000), ms(1));
        let sampler = Sampler::new(d);
        let mut rng = SimRng::derive(5, "lognormal");
        let n = 1_000_000;
        let mut v: Vec<f64> = (0..n).map(|_| sampler.sample(&mut rng).0 as f64).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        let want_mean = libm::exp(mu + sigma * sigma / 2.0);
        let want_var = (libm::exp(sigma * sigma) - 1.0) * libm::exp(2.0 * mu + sigma * sigma);
        assert!(
            (mean / want_mean - 1.0).abs() < 0.005,
            "mean {mean} vs {want_mean}"
        );
        assert!(
            (var / want_var - 1.0).abs() < 0.03,
            "variance {var} vs {want_var}"
        );
        v.sort_unstable_by(f64::total_cmp);
        // Standard normal quantiles z_p.
        for (p, z) in [
            (0.01, -Z_99),
            (0.1, -1.281_551_565_544_6),
            (0.25, -0.674_489_750_196_08),
            (0.5, 0.0),
            (0.75, 0.674_489_750_196_08),
            (0.9, 1.281_551_565_544_6),
            (0.99, Z_99),
            (0.999, 3.090_232_306_167_8),
        ] {
            let got = v[(p * n as f64) as usize];
            let want = libm::exp(mu + sigma * z);
            assert!((got / want - 1.0).abs() < 0.01, "p{p}: {got} vs {want}");
        }
    }

    #[test]
    fn a_normal_truncated_at_zero_has_the_truncated_mean_and_cdf() {
        // Mean 1 ms, sd 5 ms: 42% of the underlying normal lies below zero, so truncation is
        // real. Redrawing gives the normal conditioned on X >= 0: with a = -mean/sd and
        // h = phi(a)/(1 - Phi(a)), mean + sd·h and variance sd²(1 + a·h - h²). Clamping to
        // zero instead would give mean 2.53 ms, with 42% of the draws at 0.
        let (mean, sd) = (1e-3, 5e-3);
        let d = Dist::Normal {
            mean: ms(1),
            std_dev: ms(5),
        };
        let phi = |x: f64| libm::exp(-x * x / 2.0) / (2.0 * std::f64::consts::PI).sqrt();
        let cdf = |x: f64| 0.5 * libm::erfc(-x / 2f64.sqrt());
        let a = -mean / sd;
        let h = phi(a) / (1.0 - cdf(a));
        let want_mean = mean + sd * h;
        let want_sd = sd * (1.0 + a * h - h * h).sqrt();
        let n = 200_000;
        let mut rng = SimRng::derive(3, "n");
        let draws: Vec<f64> = (0..n).map(|_| d.sample(&mut rng).as_secs_f64()).collect();
        let got_mean = draws.iter().sum::<f64>() / n as f64;
        let tol = 4.0 * want_sd / (n as f64).sqrt();
        assert!(
            (got_mean - want_mean).abs() < tol,
            "mean {got_mean} vs {want_mean} ± {tol}"
        );
        // P(X < x | X >= 0) at a few points, each within 4 binomial sigmas.
        for x in [0.1e-3, 1e-3, 4e-3, 10e-3] {
            let p = (cdf((x - mean) / sd) - cdf(a)) / (1.0 - cdf(a));
            let got = draws.iter().filter(|&&v| v < x).count() as f64 / n as f64;
            let tol = 4.0 * (p * (1.0 - p) / n as f64).sqrt();
            assert!((got - p).abs() < tol, "P(X < {x}) = {got} vs {p} ± {tol}");
        }
    }

    #[test]
    fn problems_are_reported() {
        assert!(
            !Dist::Uniform {
                low: ms(3),
                high: ms(1)
            }
            .problems()
            .is_empty()
        );
        assert!(
            !Dist::Pareto {
                scale: ms(1),
                shape: f64::NAN
            }
            .problems()
            .is_empty()
        );
        assert!(!Dist::Empirical(vec![]).problems().is_empty());
        assert!(
            !Dist::LogNormal {
                median: ms(5),
                p99: ms(1)
            }
            .problems()
            .is_empty()
        );
        assert!(Dist::Exponential { mean: ms(1) }.problems().is_empty());
    }
}
