//! Closed forms of queueing theory: one station at a time, pure functions of rates and moments.
//!
//! ```text
//!  Erlang B        B(c, a)     loss of M/G/c/c (insensitive to the service distribution)
//!  Erlang C        C(c, a)     probability of waiting in M/M/c
//!  M/M/c           Wq = C / (cμ − λ)
//!  M/G/1           Wq = λ E[S²] / (2 (1 − ρ))                 (Pollaczek–Khinchine, exact)
//!  M/G/c           Wq ≈ Wq(M/M/c) · (1 + Cs²) / 2             (Allen–Cunneen, approximate)
//!  M/M/c/K         birth–death chain, solved with the queue's tail as a geometric series
//! ```
//! `a = λ E[S]` is the offered load in Erlangs and `ρ = a / c` the offered load per server.
//! Every function takes seconds and requests per second and returns seconds or probabilities;
//! floats go through `libm` so the model prints the same digits on every machine.

use crate::sim::dist::Dist;

/// The first two moments of a distribution of durations, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    /// E[S] (seconds).
    pub mean: f64,
    /// E[S²] (seconds²); infinite for a heavy tail without a variance.
    pub second: f64,
}

impl Moments {
    /// A constant.
    pub fn constant(value: f64) -> Moments {
        Moments {
            mean: value,
            second: value * value,
        }
    }

    /// An exponential distribution with this mean.
    pub fn exponential(mean: f64) -> Moments {
        Moments {
            mean,
            second: 2.0 * mean * mean,
        }
    }

    /// The variance (seconds²).
    pub fn variance(&self) -> f64 {
        (self.second - self.mean * self.mean).max(0.0)
    }

    /// The squared coefficient of variation Var / E², 1 for an exponential, 0 for a constant.
    pub fn scv(&self) -> f64 {
        if self.mean > 0.0 {
            self.variance() / (self.mean * self.mean)
        } else {
            0.0
        }
    }

    /// The sum of two independent durations.
    pub fn plus(&self, other: &Moments) -> Moments {
        Moments {
            mean: self.mean + other.mean,
            second: self.second + 2.0 * self.mean * other.mean + other.second,
        }
    }

    /// This duration with probability `p`, zero otherwise.
    pub fn times_probability(&self, p: f64) -> Moments {
        Moments {
            mean: self.mean * p,
            second: self.second * p,
        }
    }

    /// This duration multiplied by `k`.
    pub fn scaled(&self, k: f64) -> Moments {
        Moments {
            mean: self.mean * k,
            second: self.second * k * k,
        }
    }
}

/// The 99th percentile of the standard normal distribution (as `sim::dist` uses it).
const Z_99: f64 = 2.326_347_874_040_841;

/// E[S] and E[S²] of `dist` as the simulator samples it (the normal truncated at zero by
/// redrawing, the log-normal from its median and p99).
pub fn moments(dist: &Dist) -> Moments {
    let s = |d: crate::sim::time::SimDuration| d.as_secs_f64();
    match dist {
        Dist::Constant(d) => Moments::constant(s(*d)),
        Dist::Exponential { mean } => Moments::exponential(s(*mean)),
        Dist::Uniform { low, high } => {
            let (a, b) = (s(*low), s(*high));
            Moments {
                mean: (a + b) / 2.0,
                second: (a * a + a * b + b * b) / 3.0,
            }
        }
        Dist::Normal { mean, std_dev } => truncated_normal(s(*mean), s(*std_dev)),
        Dist::LogNormal { median, p99 } => {
            let mu = libm::log(s(*median).max(1e-9));
            let sigma = (libm::log(s(*p99).max(1e-9)) - mu).max(0.0) / Z_99;
            Moments {
                mean: libm::exp(mu + sigma * sigma / 2.0),
                second: libm::exp(2.0 * mu + 2.0 * sigma * sigma),
            }
        }
        Dist::Pareto { scale, shape } => {
            let (xm, a) = (s(*scale), *shape);
            Moments {
                mean: if a > 1.0 {
                    a * xm / (a - 1.0)
                } else {
                    f64::INFINITY
                },
                second: if a > 2.0 {
                    a * xm * xm / (a - 2.0)
                } else {
                    f64::INFINITY
                },
            }
        }
        Dist::Empirical(values) => {
            let n = values.len().max(1) as f64;
            Moments {
                mean: values.iter().map(|d| s(*d)).sum::<f64>() / n,
                second: values.iter().map(|d| s(*d) * s(*d)).sum::<f64>() / n,
            }
        }
    }
}

/// Moments of a normal (mean `m`, deviation `sd`) truncated at zero.
fn truncated_normal(m: f64, sd: f64) -> Moments {
    if sd <= 0.0 {
        return Moments::constant(m.max(0.0));
    }
    let alpha = -m / sd;
    let phi = libm::exp(-alpha * alpha / 2.0) / libm::sqrt(2.0 * std::f64::consts::PI);
    let tail = 0.5 * libm::erfc(alpha / std::f64::consts::SQRT_2);
    let lambda = phi / tail;
    let mean = m + sd * lambda;
    let variance = sd * sd * (1.0 + alpha * lambda - lambda * lambda);
    Moments {
        mean,
        second: variance + mean * mean,
    }
}

/// Erlang B: the probability that an arrival finds all `c` servers busy in M/G/c/c at offered
/// load `a` Erlangs (the stable recursion B(k) = a B(k−1) / (k + a B(k−1))).
pub fn erlang_b(c: u32, a: f64) -> f64 {
    (1..=c).fold(1.0, |b, k| a * b / (f64::from(k) + a * b))
}

/// Erlang C: the probability that an arrival waits in M/M/c at offered load `a` < c.
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let rho = a / f64::from(c);
    if rho >= 1.0 {
        return 1.0;
    }
    let b = erlang_b(c, a);
    b / (1.0 - rho * (1.0 - b))
}

/// Mean wait in queue of M/M/c with arrival rate `lambda` and mean service `s` (None when
/// ρ ≥ 1: the queue grows without bound).
pub fn mmc_wait(c: u32, lambda: f64, s: f64) -> Option<f64> {
    let a = lambda * s;
    let cf = f64::from(c);
    (a < cf).then(|| erlang_c(c, a) * s / (cf - a))
}

/// Mean wait in queue of M/G/1 (Pollaczek–Khinchine): λ E[S²] / (2 (1 − ρ)).
pub fn mg1_wait(lambda: f64, service: &Moments) -> Option<f64> {
    let rho = lambda * service.mean;
    (rho < 1.0).then(|| lambda * service.second / (2.0 * (1.0 - rho)))
}

/// Mean wait in queue of M/G/c by Allen–Cunneen: the M/M/c wait scaled by (1 + Cs²)/2. Exact
/// for c = 1 (it is then Pollaczek–Khinchine) and for exponential service.
pub fn mgc_wait(c: u32, lambda: f64, service: &Moments) -> Option<f64> {
    if c == 1 {
        return mg1_wait(lambda, service);
    }
    mmc_wait(c, lambda, service.mean).map(|w| w * (1.0 + service.scv()) / 2.0)
}

/// What a station with room for `queue` waiting requests does with Poisson arrivals.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finite {
    /// Probability that an arrival is turned away (the system is full).
    pub loss: f64,
    /// Mean wait in queue of an admitted request (seconds).
    pub wait: f64,
}

/// M/M/c/(c + queue): loss and the mean wait of admitted requests, from the birth–death
/// chain's stationary distribution. States up to c are summed term by term (in logarithms, so
/// hundreds of servers do not overflow); the queue's states form a geometric series in ρ.
pub fn mmck(c: u32, queue: u64, lambda: f64, s: f64) -> Finite {
    let a = lambda * s;
    let cf = f64::from(c);
    let rho = a / cf;
    // log of a^n / n! for n = 0..=c, then the states with n − c = 1..=queue waiting.
    let mut log_terms = Vec::with_capacity(c as usize + 1);
    let mut lt = 0.0;
    log_terms.push(0.0);
    for n in 1..=c {
        lt += libm::log(a) - libm::log(f64::from(n));
        log_terms.push(lt);
    }
    let top = log_terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let busy_c = libm::exp(lt - top); // p_c, unnormalised
    let low: f64 = log_terms.iter().map(|l| libm::exp(l - top)).sum();
    let k = queue as f64;
    if rho > 1.0 + 1e-12 && queue > 0 {
        return mmck_overloaded(lambda, rho, k, libm::log(low) - libm::log(busy_c));
    }
    let (geo, geo_j, last) = if (rho - 1.0).abs() < 1e-12 {
        (k, k * (k + 1.0) / 2.0, 1.0)
    } else {
        let rk = libm::pow(rho, k);
        (
            rho * (1.0 - rk) / (1.0 - rho),
            rho * (1.0 - (k + 1.0) * rk + k * rk * rho) / ((1.0 - rho) * (1.0 - rho)),
            rk,
        )
    };
    let total = low + busy_c * geo;
    let p_full = if queue == 0 { busy_c } else { busy_c * last } / total;
    Finite::from_loss_and_length(lambda, p_full, busy_c * geo_j / total)
}

impl Finite {
    /// From the probability of a full system and the mean queue length (Little's law for the
    /// wait of the admitted arrivals).
    fn from_loss_and_length(lambda: f64, p_full: f64, lq: f64) -> Finite {
        let admitted = lambda * (1.0 - p_full);
        Finite {
            loss: p_full,
            wait: if admitted > 0.0 { lq / admitted } else { 0.0 },
        }
    }
}

/// [`mmck`] past saturation (ρ > 1), with every state taken relative to the full one: ρ^k
/// overflows for long queues, while r = 1/ρ < 1 keeps the geometric sums finite.
/// `log_low` is ln(Σ_{n≤c} p_n / p_c).
fn mmck_overloaded(lambda: f64, rho: f64, k: f64, log_low: f64) -> Finite {
    let r = 1.0 / rho;
    let rk = libm::pow(r, k);
    // Σ_{i<k} r^i and Σ_{i<k} i r^i, where state c + k − i has weight r^i.
    let q = (1.0 - rk) / (1.0 - r);
    let qi = r * (1.0 - k * libm::pow(r, k - 1.0) + (k - 1.0) * rk) / ((1.0 - r) * (1.0 - r));
    let low = libm::exp(log_low - k * libm::log(rho));
    let total = low + q;
    Finite::from_loss_and_length(lambda, 1.0 / total, (k * q - qi) / total)
}

/// E[the k-th smallest of independent exponential durations with these means]: the time a
/// stage that waits for `k` of its calls takes, if call times were exponential. Exact for one
/// call (its mean, whatever its distribution); for several, integrated numerically.
pub fn kth_of(means: &[f64], k: usize) -> f64 {
    match means {
        [] => 0.0,
        [only] => *only,
        _ if means.iter().all(|m| (m - means[0]).abs() < 1e-15) => {
            let n = means.len();
            means[0] * (n - k + 1..=n).map(|j| 1.0 / j as f64).sum::<f64>()
        }
        _ => kth_integral(means, k),
    }
}

/// ∫ P(fewer than k of the calls done by t) dt, by the trapezoid rule on a fine grid.
fn kth_integral(means: &[f64], k: usize) -> f64 {
    let horizon = means.iter().copied().fold(0.0, f64::max) * 60.0;
    let steps = 20_000;
    let dt = horizon / steps as f64;
    let mut total = 0.0;
    let mut previous = 1.0;
    for i in 1..=steps {
        let t = i as f64 * dt;
        // Distribution of the number done by t (a Poisson-binomial), by dynamic programming.
        let mut done = vec![0.0; means.len() + 1];
        done[0] = 1.0;
        for (j, m) in means.iter().enumerate() {
            let p = 1.0 - libm::exp(-t / m);
            for d in (0..=j + 1).rev() {
                let stay = done[d] * (1.0 - p);
                let came = if d > 0 { done[d - 1] * p } else { 0.0 };
                done[d] = stay + came;
            }
        }
        let fewer: f64 = done[..k].iter().sum();
        total += (previous + fewer) / 2.0 * dt;
        previous = fewer;
    }
    total
}

/// The probability that at least `k` of independent events with these probabilities happen
/// (a Poisson-binomial tail): a k-of-n quorum of replicas that are each up with `p[i]`.
pub fn at_least(p: &[f64], k: usize) -> f64 {
    let mut count = vec![0.0; p.len() + 1];
    count[0] = 1.0;
    for (j, &pj) in p.iter().enumerate() {
        for d in (0..=j + 1).rev() {
            let stay = count[d] * (1.0 - pj);
            let came = if d > 0 { count[d - 1] * pj } else { 0.0 };
            count[d] = stay + came;
        }
    }
    count[k.min(p.len() + 1)..].iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, tolerance: f64) {
        assert!(
            (got - want).abs() <= tolerance * want.abs().max(1e-300),
            "got {got}, want {want}"
        );
    }

    #[test]
    fn textbook_values() {
        close(erlang_b(5, 4.0), 0.199_066_874, 1e-8);
        close(erlang_c(2, 1.0), 1.0 / 3.0, 1e-12);
        // M/M/1 at ρ = 0.7, 1 ms service: Wq = ρ S / (1 − ρ).
        close(mmc_wait(1, 700.0, 0.001).unwrap(), 0.7 * 0.001 / 0.3, 1e-12);
        // M/D/1: Wq = ρ S / (2 (1 − ρ)).
        let d = Moments::constant(0.001);
        close(mg1_wait(700.0, &d).unwrap(), 0.7 * 0.001 / 0.6, 1e-12);
        assert_eq!(mmc_wait(2, 2000.0, 0.001), None);
    }

    #[test]
    fn pollaczek_khinchine_agrees_with_erlang_c_for_exponential_service() {
        let e = Moments::exponential(0.002);
        close(
            mg1_wait(300.0, &e).unwrap(),
            mmc_wait(1, 300.0, 0.002).unwrap(),
            1e-12,
        );
        close(
            mgc_wait(4, 1500.0, &e).unwrap(),
            mmc_wait(4, 1500.0, 0.002).unwrap(),
            1e-12,
        );
    }

    #[test]
    fn overloaded_long_queues_stay_finite_and_agree_with_the_direct_sums() {
        // Short queues: the rescaled sums equal the direct birth-death sums.
        for (c, q, lambda) in [(1, 5, 3.0), (4, 20, 9.0), (2, 1, 5.0)] {
            let f = mmck(c, q, lambda, 1.0);
            let a: f64 = lambda;
            let mut p: Vec<f64> = (0..=c)
                .map(|n| a.powi(n as i32) / (1..=n).map(f64::from).product::<f64>())
                .collect();
            let pc = p[c as usize];
            let rho = a / f64::from(c);
            p.extend((1..=q).map(|j| pc * rho.powi(j as i32)));
            let total: f64 = p.iter().sum();
            let loss = p.last().unwrap() / total;
            let lq: f64 = (1..=q)
                .map(|j| j as f64 * p[c as usize + j as usize] / total)
                .sum();
            assert!(
                (f.loss - loss).abs() < 1e-12,
                "{c} {q}: {} vs {loss}",
                f.loss
            );
            assert!((f.wait - lq / (lambda * (1.0 - loss))).abs() < 1e-9);
        }
        // 48 workers, room for 1,000 waiting, offered 4.375 times capacity: ρ^1000 overflows.
        let f = mmck(48, 1000, 10_500.0, 0.02);
        assert!((f.loss - (1.0 - 1.0 / 4.375)).abs() < 1e-9, "{}", f.loss);
        assert!(f.wait.is_finite() && f.wait > 0.0);
    }

    #[test]
    fn finite_queue_reduces_to_erlang_b_and_to_mm1k() {
        // No waiting room: Erlang B.
        let f = mmck(5, 0, 4000.0, 0.001);
        close(f.loss, erlang_b(5, 4.0), 1e-12);
        assert_eq!(f.wait, 0.0);
        // M/M/1/K with K = 3 (two waiting): p_n ∝ ρ^n.
        let rho: f64 = 0.8;
        let norm: f64 = (0..=3).map(|n| rho.powi(n)).sum();
        let f = mmck(1, 2, 800.0, 0.001);
        close(f.loss, rho.powi(3) / norm, 1e-12);
        let lq = (rho.powi(2) + 2.0 * rho.powi(3)) / norm;
        close(f.wait, lq / (800.0 * (1.0 - f.loss)), 1e-12);
        // A long queue approaches M/M/c.
        let f = mmck(4, 100_000, 3000.0, 0.001);
        close(f.wait, mmc_wait(4, 3000.0, 0.001).unwrap(), 1e-9);
        // At ρ = 1 exactly the geometric series is a sum of ones: 5 states equally likely.
        let f = mmck(1, 3, 1000.0, 0.001);
        close(f.loss, 0.2, 1e-9);
    }

    #[test]
    fn moments_of_each_distribution() {
        use crate::sim::time::SimDuration;
        let ms = SimDuration::from_millis;
        close(
            moments(&Dist::Exponential { mean: ms(2) }).second,
            8e-6,
            1e-12,
        );
        let u = moments(&Dist::Uniform {
            low: ms(1),
            high: ms(3),
        });
        close(u.variance(), 4e-6 / 12.0, 1e-9);
        // A normal far from zero is barely truncated.
        let n = moments(&Dist::Normal {
            mean: ms(10),
            std_dev: ms(1),
        });
        close(n.mean, 0.01, 1e-9);
        close(n.variance(), 1e-6, 1e-6);
        // Half-normal: mean σ √(2/π).
        let h = moments(&Dist::Normal {
            mean: SimDuration::ZERO,
            std_dev: ms(1),
        });
        close(h.mean, 0.001 * (2.0 / std::f64::consts::PI).sqrt(), 1e-9);
        let p = moments(&Dist::Pareto {
            scale: ms(1),
            shape: 3.0,
        });
        close(p.mean, 0.0015, 1e-12);
        close(p.second, 3e-6, 1e-12);
    }

    #[test]
    fn order_statistics_and_quorums() {
        // Max of two exponentials of mean 1: 1 + 1/2; the first of two: 1/2.
        close(kth_of(&[1.0, 1.0], 2), 1.5, 1e-12);
        close(kth_of(&[1.0, 1.0], 1), 0.5, 1e-12);
        // Different means, by inclusion–exclusion: E[max] = m1 + m2 − 1/(1/m1 + 1/m2).
        close(kth_of(&[1.0, 2.0], 2), 3.0 - 2.0 / 3.0, 1e-4);
        close(at_least(&[0.9, 0.9, 0.9], 2), 0.972, 1e-12);
        close(at_least(&[0.5, 0.5], 0), 1.0, 1e-12);
    }
}
