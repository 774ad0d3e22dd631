//! `exp` for the log-normal sampler, the hottest maths of a run (four draws per request in a
//! typical client → balancer → server model): the table-driven method of musl / ARM's
//! optimized-routines, with a 128-entry table of 2^(j/128) and a degree-5 polynomial.
//!
//! Pure `f64` arithmetic in a fixed order, so the same bits on every machine, like `libm`
//! (whose `exp` costs a division and several branches). Relative error below 3·10⁻¹⁶ (about
//! 2 ulp) against `libm::exp`; arguments outside ±690 go to `libm::exp`.

use std::sync::LazyLock;

/// Table size: x = (k·128 + j)·ln2/128 + r.
const N: usize = 128;

/// 128 / ln 2.
const INV_LN2_N: f64 = 184.664_965_233_787_3;

/// ln2/128 split so that `kd * LN2_HI_N` is exact for |kd| < 2^17: bit patterns of
/// 0x1.62e42fefa0000p-8 and 0x1.cf79abc9e3b3ap-47.
const LN2_HI_N: u64 = 0x3F76_2E42_FEFA_0000;
const LN2_LO_N: u64 = 0x3D0C_F79A_BC9E_3B3A;

/// 1.5·2^52: adding it rounds to an integer held in the low mantissa bits.
const SHIFT: f64 = 6_755_399_441_055_744.0;

/// Beyond this, |kd| could reach 2^17 or the result leave the normal range: use `libm`.
const LIMIT: f64 = 690.0;

/// Bit patterns of 2^(j/128), j = 0..127.
pub(crate) static TABLE: LazyLock<[u64; N]> = LazyLock::new(|| {
    let mut t = [0u64; N];
    for (j, v) in t.iter_mut().enumerate() {
        *v = libm::exp2(j as f64 / N as f64).to_bits();
    }
    t
});

/// e^x.
#[inline]
pub fn exp(x: f64) -> f64 {
    exp_in(&TABLE, x)
}

/// e^x with the table (always [`TABLE`]) already at hand: see [`super::ziggurat::normal_in`].
#[inline]
pub(crate) fn exp_in(table: &[u64; N], x: f64) -> f64 {
    // Also NaN: every comparison with it is false.
    if x.is_nan() || x.abs() >= LIMIT {
        return libm::exp(x);
    }
    let z = x * INV_LN2_N;
    let kd_shifted = z + SHIFT;
    // The low bits of the shifted value are the integer nearest to z (two's complement).
    let ki = kd_shifted.to_bits();
    let kd = kd_shifted - SHIFT;
    let r = x - kd * f64::from_bits(LN2_HI_N) - kd * f64::from_bits(LN2_LO_N);
    let j = (ki as usize) & (N - 1);
    // 2^(k) with k = floor(kd / 128), added to the exponent field of 2^(j/128) in [1, 2).
    let k = (ki as i64) << 45 >> 52;
    let scale = f64::from_bits(table[j].wrapping_add((k as u64) << 52));
    let p = r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0)))));
    scale + scale * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_libm_within_two_ulp() {
        let mut worst = 0.0f64;
        let mut x = -689.9;
        while x < 689.9 {
            for y in [x, x * 1e-3, x * 1e-7] {
                let (got, want) = (exp(y), libm::exp(y));
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.0137;
        }
        assert!(worst < 3e-16, "worst relative error {worst}");
    }

    #[test]
    fn exact_points_and_edges() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(exp(700.0), libm::exp(700.0));
        // Multiples of ln2 land on table entry 0 with r near 0: the exponent bits alone.
        for k in -20..20 {
            let x = f64::from(k) * std::f64::consts::LN_2;
            let want = libm::exp(x);
            assert!(((exp(x) - want) / want).abs() < 3e-16, "e^({k} ln2)");
        }
    }
}
