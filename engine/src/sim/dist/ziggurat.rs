//! Ziggurat sampling of the standard normal and standard exponential distributions
//! (Marsaglia & Tsang, "The ziggurat method for generating random variables", 2000), with
//! 256 layers as in `rand_distr`.
//!
//! The area under the (unnormalised) density is covered by 255 horizontal rectangles and a
//! base strip (a rectangle plus the tail beyond `R`), all of the same area `V`. A draw picks a
//! layer and a point in it from one 64-bit word: the low 8 bits choose the layer, the top 53
//! bits the abscissa. When the point lies in the part of the layer that is entirely under the
//! curve (98.8% of normal draws, 98.9% of exponential ones) it is returned with no further
//! work; otherwise one more uniform and one `exp` decide, and the tail is sampled exactly
//! (Marsaglia 1964 for the normal; memorylessness for the exponential).
//!
//! The tables are computed once, on first use, from the constants below with `libm`, so they
//! are the same bits on every machine (no platform maths).

use crate::sim::rng::RandomSource;
use std::sync::LazyLock;

/// Layers (a power of two: the layer index is the low bits of a word).
const LAYERS: usize = 256;

/// Start of the normal tail and area of each layer, for `exp(-x²/2)` and 256 layers.
const NORMAL_R: f64 = 3.654_152_885_361_009;
const NORMAL_V: f64 = 0.004_928_673_233_99;

/// Start of the exponential tail and area of each layer, for `exp(-x)` and 256 layers.
const EXP_R: f64 = 7.697_117_470_131_05;
const EXP_V: f64 = 0.003_949_659_822_581_557;

/// 2^-53: turns the top 53 bits of a word into a uniform in [0, 1).
const SCALE_53: f64 = 1.0 / (1u64 << 53) as f64;

/// Layer edges `x[i]` (decreasing, `x[1] = R`, `x[256] = 0`; `x[0] = V / f(R)` is the width of
/// the base strip's equivalent rectangle) and the density at them, `f[i] = f(x[i])`.
#[derive(Debug, PartialEq)]
pub(crate) struct Table {
    pub(crate) x: [f64; LAYERS + 1],
    pub(crate) f: [f64; LAYERS + 1],
}

impl Table {
    /// The table of density `pdf` (decreasing on [0, ∞)) with inverse `inverse`, tail start
    /// `r` and layer area `v`.
    fn new(pdf: fn(f64) -> f64, inverse: fn(f64) -> f64, r: f64, v: f64) -> Table {
        let mut x = [0.0; LAYERS + 1];
        x[0] = v / pdf(r);
        x[1] = r;
        for i in 1..LAYERS - 1 {
            // The layer above x[i] has area v: x[i] * (f(x[i+1]) - f(x[i])) = v.
            x[i + 1] = inverse(v / x[i] + pdf(x[i]));
        }
        x[LAYERS] = 0.0;
        let mut f = [0.0; LAYERS + 1];
        for (fi, xi) in f.iter_mut().zip(x) {
            *fi = pdf(xi);
        }
        Table { x, f }
    }
}

fn normal_pdf(x: f64) -> f64 {
    libm::exp(-0.5 * x * x)
}

fn normal_inverse(y: f64) -> f64 {
    libm::sqrt(-2.0 * libm::log(y))
}

fn exp_pdf(x: f64) -> f64 {
    libm::exp(-x)
}

fn exp_inverse(y: f64) -> f64 {
    -libm::log(y)
}

pub(crate) static NORMAL: LazyLock<Table> =
    LazyLock::new(|| Table::new(normal_pdf, normal_inverse, NORMAL_R, NORMAL_V));

pub(crate) static EXPONENTIAL: LazyLock<Table> =
    LazyLock::new(|| Table::new(exp_pdf, exp_inverse, EXP_R, EXP_V));

/// A standard normal draw.
///
/// The first try, accepted 98.8% of the time, is inlined into the caller; the rest of the
/// method (wedge test, tail, retries) is an out-of-line call, so the common draw pays no call.
#[inline(always)]
pub fn normal<R: RandomSource>(rng: &mut R) -> f64 {
    normal_in(&NORMAL, rng)
}

/// A standard normal draw with the table `t` (always [`NORMAL`]) already at hand, so a caller
/// drawing many times pays the lazy table's initialisation check once, not per draw.
#[inline(always)]
pub(crate) fn normal_in<R: RandomSource>(t: &Table, rng: &mut R) -> f64 {
    let bits = rng.bits();
    let i = (bits as usize) & (LAYERS - 1);
    let u = 2.0 * ((bits >> 11) as f64 * SCALE_53) - 1.0;
    let x = u * t.x[i];
    if x.abs() < t.x[i + 1] {
        return x;
    }
    normal_rest(rng, t, i, u, x)
}

/// The rest of a normal draw whose first try (layer `i`, `u`, `x`) fell outside the layer's
/// inner rectangle: the same steps, in the same order, as if the loop had gone on.
#[cold]
#[inline(never)]
fn normal_rest<R: RandomSource>(rng: &mut R, t: &Table, i: usize, u: f64, x: f64) -> f64 {
    let (mut i, mut u, mut x) = (i, u, x);
    loop {
        if i == 0 {
            return normal_tail(rng, u < 0.0);
        }
        if t.f[i + 1] + (t.f[i] - t.f[i + 1]) * rng.uniform() < normal_pdf(x) {
            return x;
        }
        let bits = rng.bits();
        i = (bits as usize) & (LAYERS - 1);
        u = 2.0 * ((bits >> 11) as f64 * SCALE_53) - 1.0;
        x = u * t.x[i];
        if x.abs() < t.x[i + 1] {
            return x;
        }
    }
}

/// A draw of the normal conditioned on |x| > R, with the given sign (Marsaglia 1964).
#[cold]
fn normal_tail<R: RandomSource>(rng: &mut R, negative: bool) -> f64 {
    loop {
        let x = -libm::log(rng.uniform_open0()) / NORMAL_R;
        let y = -libm::log(rng.uniform_open0());
        if y + y >= x * x {
            let z = NORMAL_R + x;
            return if negative { -z } else { z };
        }
    }
}

/// A standard exponential draw; like [`normal`], the first try is inlined and the rest is not.
#[inline(always)]
pub fn exponential<R: RandomSource>(rng: &mut R) -> f64 {
    let t = &*EXPONENTIAL;
    let bits = rng.bits();
    let i = (bits as usize) & (LAYERS - 1);
    let x = (bits >> 11) as f64 * SCALE_53 * t.x[i];
    if x < t.x[i + 1] {
        // The loop below returns `offset + x` with offset 0: the same bits, as x >= +0.
        return x;
    }
    exponential_rest(rng, t, i, x)
}

/// The rest of an exponential draw whose first try (layer `i`, `x`) fell outside the layer's
/// inner rectangle. Draws that land in the tail restart from R (the exponential is memoryless).
#[cold]
#[inline(never)]
fn exponential_rest<R: RandomSource>(rng: &mut R, t: &Table, i: usize, x: f64) -> f64 {
    let (mut i, mut x) = (i, x);
    let mut offset = 0.0;
    loop {
        if i == 0 {
            offset += EXP_R;
        } else if t.f[i + 1] + (t.f[i] - t.f[i + 1]) * rng.uniform() < exp_pdf(x) {
            return offset + x;
        }
        let bits = rng.bits();
        i = (bits as usize) & (LAYERS - 1);
        x = (bits >> 11) as f64 * SCALE_53 * t.x[i];
        if x < t.x[i + 1] {
            return offset + x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::SimRng;

    /// Every layer of both tables has area V, the base strip included (its rectangle plus
    /// the tail beyond R), and the edges decrease to 0: the recurrence closed properly.
    #[test]
    fn layers_have_equal_areas() {
        let normal_tail = (std::f64::consts::PI / 2.0).sqrt() * libm::erfc(NORMAL_R / 2f64.sqrt());
        let cases = [
            (&*NORMAL, NORMAL_R, NORMAL_V, normal_tail),
            (&*EXPONENTIAL, EXP_R, EXP_V, libm::exp(-EXP_R)),
        ];
        for (t, r, v, tail) in cases {
            assert_eq!(t.x[1], r);
            assert!((r * t.f[1] + tail - v).abs() < 1e-9 * v, "base strip");
            for i in 1..LAYERS {
                assert!(t.x[i + 1] < t.x[i], "x decreasing at {i}");
                let area = t.x[i] * (t.f[i + 1] - t.f[i]);
                assert!((area - v).abs() < 1e-6 * v, "layer {i}: area {area} vs {v}");
            }
            assert_eq!(t.f[LAYERS], 1.0);
        }
    }

    fn normal_cdf(x: f64) -> f64 {
        0.5 * libm::erfc(-x / 2f64.sqrt())
    }

    /// |empirical - theoretical| within 5 standard errors of a binomial proportion.
    fn assert_fraction(what: &str, count: usize, n: usize, p: f64) {
        let got = count as f64 / n as f64;
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!(
            (got - p).abs() < 5.0 * se + 1e-12,
            "{what}: {got} vs {p} (se {se})"
        );
    }

    #[test]
    fn normal_moments_and_cdf_match_theory() {
        let n = 2_000_000;
        let mut rng = SimRng::derive(7, "zig-normal");
        let v: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        let m4 = v.iter().map(|x| x.powi(4)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 5.0 / (n as f64).sqrt(), "mean {mean}");
        assert!(
            (var - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(),
            "variance {var}"
        );
        assert!(
            (m4 - 3.0).abs() < 5.0 * (96.0 / n as f64).sqrt(),
            "4th moment {m4}"
        );
        // The CDF at points inside layers, at layer edges, and in the tail beyond R.
        for x in [
            -4.0, -3.7, -2.5, -1.0, -0.3, 0.0, 0.01, 0.5, 1.5, 3.0, 3.6, 3.7, 4.2,
        ] {
            let below = v.iter().filter(|&&y| y < x).count();
            assert_fraction(&format!("P(Z < {x})"), below, n, normal_cdf(x));
        }
    }

    #[test]
    fn exponential_moments_and_tail_match_theory() {
        let n = 2_000_000;
        let mut rng = SimRng::derive(7, "zig-exp");
        let v: Vec<f64> = (0..n).map(|_| exponential(&mut rng)).collect();
        assert!(v.iter().all(|&x| x >= 0.0));
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 5.0 / (n as f64).sqrt(), "mean {mean}");
        assert!(
            (var - 1.0).abs() < 5.0 * (8.0 / n as f64).sqrt(),
            "variance {var}"
        );
        // P(X > t) = e^-t, including beyond the tail start R = 7.7 (memoryless restart).
        for t in [0.001, 0.1, 0.5, 1.0, 2.0, 4.0, 7.0, 7.7, 8.5, 10.0] {
            let above = v.iter().filter(|&&y| y > t).count();
            assert_fraction(&format!("P(X > {t})"), above, n, libm::exp(-t));
        }
    }
}
