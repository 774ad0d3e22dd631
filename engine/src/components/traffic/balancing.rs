//! Latency-aware balancing and slow start for the load balancer: per-backend round-trip
//! estimates (peak EWMA as Finagle, Linkerd and tower keep them, or a plain EWMA for least
//! response time), and Envoy's slow start for a backend that just became available.
//!
//! ```text
//!  answer from backend i after rtt ─▶ peak EWMA: rtt above the estimate? jump to it;
//!                                     else decay toward it: e ← e·w + rtt·(1-w), w = e^(-Δt/τ)
//!  pick: cost(i) = estimate(i) × (outstanding(i) + 1)       (Finagle counts the new request)
//!        PeakEwma: two backends at random, the cheaper wins (power of two choices)
//!        LeastResponseTime: the cheapest of all (plain EWMA, ties in turn)
//!
//!  backend i becomes available at t ─▶ for `window` its weight is
//!        max(min_weight_percent/100, ((now - t)/window)^(1/aggression))      (Envoy)
//!        and the balancer keeps a request it chose for i with that probability, else
//!        chooses again without i
//! ```

use crate::contract::validate::{Path, Validator};
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Finagle's and Linkerd's decay time of the peak EWMA.
pub fn ten_s() -> SimDuration {
    SimDuration::from_secs(10)
}

/// Linkerd's round-trip time assumed before a backend has answered (tower uses 1 s).
pub fn thirty_ms() -> SimDuration {
    SimDuration::from_millis(30)
}

/// How round-trip samples are averaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Averaging {
    /// A sample above the estimate replaces it at once; lower ones decay it (peak EWMA).
    Peak,
    /// Every sample decays the estimate toward it (plain EWMA).
    Plain,
}

/// Per-backend round-trip estimates.
pub struct RttEstimates {
    averaging: Averaging,
    /// Decay time constant τ in seconds.
    tau_s: f64,
    /// Estimate (seconds) and when it was last updated, per backend; `None`: no answer yet.
    est: Vec<Option<(f64, SimTime)>>,
    default_s: f64,
}

impl RttEstimates {
    /// Estimates for `n` backends, none measured yet.
    pub fn new(
        n: usize,
        averaging: Averaging,
        decay: SimDuration,
        default_rtt: SimDuration,
    ) -> Self {
        RttEstimates {
            averaging,
            tau_s: decay.as_secs_f64(),
            est: vec![None; n],
            default_s: default_rtt.as_secs_f64(),
        }
    }

    /// Backend `i` answered (or timed out) `rtt` after the request was sent.
    pub fn observe(&mut self, i: usize, now: SimTime, rtt: SimDuration) {
        let sample = rtt.as_secs_f64();
        let next = match self.est[i] {
            None => sample,
            Some((e, _)) if self.averaging == Averaging::Peak && sample > e => sample,
            Some((e, at)) => {
                let w = libm::exp(-now.since(at).as_secs_f64() / self.tau_s);
                e * w + sample * (1.0 - w)
            }
        };
        self.est[i] = Some((next, now));
    }

    /// Backend `i`'s estimate in seconds (the default before its first answer).
    pub fn estimate(&self, i: usize) -> f64 {
        self.est[i].map_or(self.default_s, |(e, _)| e)
    }

    /// The cost of sending one more request to backend `i` with `outstanding` in flight.
    #[inline]
    pub fn cost(&self, i: usize, outstanding: u32) -> f64 {
        self.estimate(i) * f64::from(outstanding + 1)
    }

    /// Forget every measurement (the balancer restarted).
    pub fn clear(&mut self) {
        self.est.iter_mut().for_each(|e| *e = None);
    }
}

/// Slow start for a backend that just became available, as Envoy's `slow_start_config`:
/// `Some((window: "30s", aggression: 1.0, min_weight_percent: 10))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlowStartConfig {
    /// How long a backend that joined or came back gets less than its share (duration; Envoy
    /// has no default, it must be set).
    pub window: SimDuration,
    /// How fast the weight grows: weight = (time in slow start / window)^(1/aggression);
    /// 1.0 is linear, larger starts faster. Default 1.0, as Envoy.
    #[serde(default = "one")]
    pub aggression: f64,
    /// The least weight during slow start, in percent of a full one (percent). Default 10,
    /// as Envoy.
    #[serde(default = "ten")]
    pub min_weight_percent: f64,
}

fn one() -> f64 {
    1.0
}

fn ten() -> f64 {
    10.0
}

impl SlowStartConfig {
    /// Check the window, aggression and floor.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.window == SimDuration::ZERO {
            v.error(
                &at.field("window"),
                "a zero slow-start window",
                "expected a positive duration",
            );
        }
        if !(self.aggression.is_finite() && self.aggression > 0.0) {
            v.error(
                &at.field("aggression"),
                format!("aggression {}", self.aggression),
                "expected a positive number (1.0: the weight grows linearly)",
            );
        }
        if !(self.min_weight_percent > 0.0 && self.min_weight_percent <= 100.0) {
            v.error(
                &at.field("min_weight_percent"),
                format!("{} percent", self.min_weight_percent),
                "expected a percentage above 0 and at most 100",
            );
        }
    }

    /// The weight, from the floor to 1, of a backend `since` into its slow start.
    pub fn weight(&self, since: SimDuration) -> f64 {
        let f = since.as_secs_f64() / self.window.as_secs_f64();
        if f >= 1.0 {
            return 1.0;
        }
        libm::pow(f, 1.0 / self.aggression).max(self.min_weight_percent / 100.0)
    }
}

/// The slow-start state of a balancer's backends.
pub struct SlowStart {
    cfg: SlowStartConfig,
    /// Per backend: available at the last look, and since when (in slow start until
    /// `window` after it).
    up: Vec<bool>,
    since: Vec<Option<SimTime>>,
    rng: SimRng,
    /// Times a backend entered slow start.
    pub started: u64,
    /// Requests slow start turned away from the backend the strategy chose.
    pub deferred: u64,
}

impl SlowStart {
    /// Every backend available from the start (no slow start at time 0, as in Envoy for the
    /// hosts a cluster starts with).
    pub fn new(cfg: &SlowStartConfig, n: usize, rng: SimRng) -> SlowStart {
        SlowStart {
            cfg: cfg.clone(),
            up: vec![true; n],
            since: vec![None; n],
            rng,
            started: 0,
            deferred: 0,
        }
    }

    /// Backend `i` was seen available (`up`) or not at `now`; true if it just became available
    /// (and entered slow start).
    pub fn seen(&mut self, i: usize, up: bool, now: SimTime) -> bool {
        let joined = up && !self.up[i];
        self.up[i] = up;
        if joined {
            self.joined(i, now);
        }
        joined
    }

    /// The hook for "backend `i` became available at `now`" (a restart, a health check
    /// passed again, a replica added by an autoscaler): it starts its slow start.
    pub fn joined(&mut self, i: usize, now: SimTime) {
        if i >= self.since.len() {
            self.since.resize(i + 1, None);
            self.up.resize(i + 1, true);
        }
        self.since[i] = Some(now);
        self.started += 1;
    }

    /// Whether to keep a request chosen for backend `i`: always after its window, with
    /// probability its weight during it.
    pub fn keep(&mut self, i: usize, now: SimTime) -> bool {
        let Some(t) = self.since.get(i).copied().flatten() else {
            return true;
        };
        let w = self.cfg.weight(now.since(t));
        if w >= 1.0 {
            self.since[i] = None;
            return true;
        }
        let keep = self.rng.uniform() < w;
        self.deferred += u64::from(!keep);
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    #[test]
    fn a_peak_ewma_jumps_to_a_peak_and_decays_with_its_time_constant() {
        let mut e = RttEstimates::new(1, Averaging::Peak, SimDuration::from_secs(10), ms(30));
        assert_eq!(e.estimate(0), 0.030);
        e.observe(0, SimTime::ZERO, ms(10));
        e.observe(0, SimTime(1), ms(100));
        assert!(
            (e.estimate(0) - 0.100).abs() < 1e-12,
            "a peak is taken at once"
        );
        // After one time constant the old estimate keeps weight e^-1.
        e.observe(0, SimTime(1).after(SimDuration::from_secs(10)), ms(10));
        let want = 0.100 * (-1.0f64).exp() + 0.010 * (1.0 - (-1.0f64).exp());
        assert!((e.estimate(0) - want).abs() < 1e-12);
        assert!((e.cost(0, 2) - 3.0 * want).abs() < 1e-12);
        let mut plain = RttEstimates::new(1, Averaging::Plain, SimDuration::from_secs(10), ms(30));
        plain.observe(0, SimTime::ZERO, ms(10));
        plain.observe(0, SimTime(1), ms(100));
        assert!(plain.estimate(0) < 0.011, "a plain EWMA does not jump");
    }

    #[test]
    fn slow_start_weights_follow_envoys_formula() {
        let cfg = SlowStartConfig {
            window: SimDuration::from_secs(10),
            aggression: 2.0,
            min_weight_percent: 10.0,
        };
        assert_eq!(cfg.weight(SimDuration::ZERO), 0.1);
        assert!((cfg.weight(SimDuration::from_secs(4)) - 0.4f64.sqrt()).abs() < 1e-12);
        assert_eq!(cfg.weight(SimDuration::from_secs(10)), 1.0);
        let mut s = SlowStart::new(&cfg, 2, SimRng::derive(1, "s"));
        assert!(!s.seen(0, true, SimTime::ZERO), "available from the start");
        s.seen(0, false, SimTime(5));
        assert!(s.seen(0, true, SimTime(9)));
        let kept = (0..10_000).filter(|_| s.keep(0, SimTime(9))).count();
        assert!((880..1120).contains(&kept), "about 10% kept: {kept}");
        assert!(s.keep(1, SimTime(9)), "backend 1 is not in slow start");
    }
}
