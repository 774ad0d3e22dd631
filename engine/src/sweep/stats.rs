//! Mean and 95% confidence interval across replications (Student t), computed bit-for-bit the
//! same on every machine.
//!
//! The t quantile comes from the exact finite series for the Student t distribution with an
//! integer number of degrees of freedom (Abramowitz & Stegun 26.7.3 and 26.7.4), evaluated with
//! `libm`'s `atan`, `sin` and `cos` and inverted by bisection. A statistics crate (statrs)
//! would compute it through the platform's `ln`/`exp`, which DESIGN.md rules out: shards built
//! on different machines must merge into the same bytes.

use serde::{Deserialize, Serialize};

/// Confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// A metric across replications.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Estimate {
    /// Replications that had a value.
    pub n: u32,
    /// Mean across them.
    pub mean: f64,
    /// Sample standard deviation; `null` with fewer than 2 values.
    pub std_dev: Option<f64>,
    /// Half-width of the 95% confidence interval of the mean (Student t); `null` with fewer
    /// than 2 values.
    pub ci95_half_width: Option<f64>,
}

impl Estimate {
    /// From the values, in replication order (the order fixes the rounding of the sums);
    /// `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Estimate> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Some(Estimate {
                n: 1,
                mean,
                std_dev: None,
                ci95_half_width: None,
            });
        }
        let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        let sd = libm::sqrt(ss / (n - 1) as f64);
        Some(Estimate {
            n: n as u32,
            mean,
            std_dev: Some(sd),
            ci95_half_width: Some(t_quantile_975((n - 1) as u32) * sd / libm::sqrt(n as f64)),
        })
    }

    /// Lower end of the interval (the mean itself without one).
    pub fn lo(&self) -> f64 {
        self.mean - self.ci95_half_width.unwrap_or(0.0)
    }

    /// Upper end of the interval (the mean itself without one).
    pub fn hi(&self) -> f64 {
        self.mean + self.ci95_half_width.unwrap_or(0.0)
    }
}

/// P(|T| <= t) for Student's t with `df` degrees of freedom (A&S 26.7.3/4).
pub fn t_two_sided_cdf(t: f64, df: u32) -> f64 {
    let nu = f64::from(df.max(1));
    let theta = libm::atan(t / libm::sqrt(nu));
    let (s, c) = (libm::sin(theta), libm::cos(theta));
    let c2 = c * c;
    if df % 2 == 1 {
        // 2/π (θ + sin θ (cos θ + 2/3 cos³θ + ... + 2·4···(ν−3)/(1·3···(ν−2)) cos^(ν−2) θ))
        let mut sum = 0.0;
        if df > 1 {
            let mut term = c;
            sum = term;
            let mut k = 2.0;
            while k <= nu - 3.0 {
                term *= c2 * k / (k + 1.0);
                sum += term;
                k += 2.0;
            }
        }
        2.0 / core::f64::consts::PI * (theta + s * sum)
    } else {
        // sin θ (1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ + ... + 1·3···(ν−3)/(2·4···(ν−2)) cos^(ν−2) θ)
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut k = 1.0;
        while k <= nu - 3.0 {
            term *= c2 * k / (k + 1.0);
            sum += term;
            k += 2.0;
        }
        s * sum
    }
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom (the 95% two-sided factor).
pub fn t_quantile_975(df: u32) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0e3_f64);
    // Bisection to the last bit: stops when the midpoint no longer differs from an end.
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if t_two_sided_cdf(mid, df) < CONFIDENCE {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_printed_table() {
        // Any statistics textbook's t table, two-sided 95%.
        for (df, want) in [
            (1, 12.706),
            (2, 4.303),
            (3, 3.182),
            (4, 2.776),
            (9, 2.262),
            (10, 2.228),
            (29, 2.045),
            (30, 2.042),
            (120, 1.980),
        ] {
            let got = t_quantile_975(df);
            assert!((got - want).abs() < 5e-4, "df {df}: {got} vs {want}");
        }
        assert!((t_quantile_975(100_000) - 1.95996).abs() < 1e-4);
    }

    #[test]
    fn the_cdf_is_monotone_and_bounded() {
        for df in [1, 2, 5, 6, 31] {
            let mut last = 0.0;
            for i in 0..100 {
                let p = t_two_sided_cdf(f64::from(i) * 0.25, df);
                // Near 1 the series' rounding may wobble in the last bit.
                assert!(p >= last - 1e-12 && p <= 1.0 + 1e-12, "df {df} t {i}: {p}");
                last = p;
            }
        }
    }

    #[test]
    fn estimate_of_known_values() {
        let e = Estimate::of(&[1.0, 2.0, 3.0, 4.0]).expect("values");
        assert_eq!(e.mean, 2.5);
        let sd = (5.0_f64 / 3.0).sqrt();
        assert!((e.std_dev.unwrap() - sd).abs() < 1e-12);
        let hw = 3.182446305284263 * sd / 2.0;
        assert!((e.ci95_half_width.unwrap() - hw).abs() < 1e-9);
        assert_eq!(Estimate::of(&[]), None);
        assert_eq!(Estimate::of(&[7.0]).unwrap().ci95_half_width, None);
    }
}
