//! Resilience policies shared by callers and proxies: retries with backoff and a budget,
//! hedging, circuit breakers, rate-limiting algorithms and health checks.
//!
//! Each policy is a serde config (what the RON file says) plus a small pure state machine that
//! takes the time and the outcomes it is told about, so the rules can be tested by hand
//! without a run. The nodes that use them (client, load balancer, server, the proxies in
//! `proxy.rs`) only feed them events and act on their answers.
//!
//! The circuit breaker:
//! ```text
//!            failure rate >= threshold over the last `window` calls (>= min_calls of them)
//!   Closed ──────────────────────────────────────────────────────────────▶ Open
//!     ▲                                                                   │  │ ▲
//!     │ `probes` successes in a row                          cool_down   │  │ │ a probe fails
//!     └──────────────────────────────── HalfOpen ◀────────────────────────┘  │ │
//!                                          └──────────────────────────────────┘ │
//!                                          (at most `probes` calls let through) ─┘
//! ```

use crate::contract::validate::{Path, Validator};
use crate::sim::rng::RandomSource;
use crate::sim::time::{SimDuration, SimTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

// ---------------------------------------------------------------------------------------------
// Retries

/// How long to wait before retry number `n` (n = 1 for the first retry).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Backoff {
    /// The same pause before every retry: `Constant("10ms")`.
    Constant(SimDuration),
    /// `base × 2^(n-1)`, at most `cap`: `Exponential(base: "5ms", cap: "200ms")`.
    Exponential {
        /// Pause before the first retry (duration).
        base: SimDuration,
        /// Longest pause (duration).
        cap: SimDuration,
    },
    /// Uniform in `[0, min(cap, base × 2^(n-1))]` ("full jitter"):
    /// `FullJitter(base: "5ms", cap: "200ms")`.
    FullJitter {
        /// Upper bound of the first pause (duration).
        base: SimDuration,
        /// Largest pause (duration).
        cap: SimDuration,
    },
    /// Uniform in `[base, 3 × previous pause]`, at most `cap` (the previous pause of the first
    /// retry is `base`) ("decorrelated jitter"): `DecorrelatedJitter(base: "5ms", cap: "200ms")`.
    DecorrelatedJitter {
        /// Smallest pause (duration).
        base: SimDuration,
        /// Largest pause (duration).
        cap: SimDuration,
    },
}

impl Backoff {
    /// The pause before retry `n` (1-based), given the previous pause (for decorrelated jitter).
    pub fn delay<R: RandomSource>(
        &self,
        n: u32,
        previous: SimDuration,
        rng: &mut R,
    ) -> SimDuration {
        let doubled = |base: SimDuration, cap: SimDuration| {
            let factor = 1u64 << (n.saturating_sub(1)).min(62);
            SimDuration(base.0.saturating_mul(factor).min(cap.0))
        };
        match *self {
            Backoff::Constant(d) => d,
            Backoff::Exponential { base, cap } => doubled(base, cap),
            Backoff::FullJitter { base, cap } => {
                let hi = doubled(base, cap).0;
                SimDuration((rng.uniform() * (hi as f64 + 1.0)) as u64).min(SimDuration(hi))
            }
            Backoff::DecorrelatedJitter { base, cap } => {
                let prev = previous.max(base).0;
                let hi = prev.saturating_mul(3);
                let d = base.0 + (rng.uniform() * ((hi - base.0) as f64 + 1.0)) as u64;
                SimDuration(d.min(hi).min(cap.0))
            }
        }
    }

    /// The longest pause this backoff can produce.
    pub fn max_delay(&self) -> SimDuration {
        match *self {
            Backoff::Constant(d) => d,
            Backoff::Exponential { cap, .. }
            | Backoff::FullJitter { cap, .. }
            | Backoff::DecorrelatedJitter { cap, .. } => cap,
        }
    }

    fn validate(&self, v: &mut Validator, at: &Path) {
        match *self {
            Backoff::Constant(_) => {}
            Backoff::Exponential { base, cap }
            | Backoff::FullJitter { base, cap }
            | Backoff::DecorrelatedJitter { base, cap } => {
                if cap < base {
                    v.error(
                        &at.field("cap"),
                        "the cap is below the base",
                        "expected cap >= base",
                    );
                }
            }
        }
    }
}

/// Retrying failed calls: `(max_attempts: 3, backoff: FullJitter(base: "5ms", cap: "200ms"),
/// budget: Some(0.1))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per request, the first included (count). Default 3.
    #[serde(default = "three")]
    pub max_attempts: u32,
    /// Pause before each retry. Default `Constant("0s")`.
    #[serde(default = "no_backoff")]
    pub backoff: Backoff,
    /// Retry budget: retries may be at most this fraction of the requests issued (0..1), like
    /// Finagle's: every request adds `budget` to a pot (capped at `budget_burst`), every retry
    /// takes 1 out, and a retry that finds less than 1 is not made. Default `None`: no budget.
    #[serde(default)]
    pub budget: Option<f64>,
    /// Most retries the pot can save up for (count). Default 10.
    #[serde(default = "ten")]
    pub budget_burst: f64,
}

fn three() -> u32 {
    3
}

fn ten() -> f64 {
    10.0
}

fn no_backoff() -> Backoff {
    Backoff::Constant(SimDuration::ZERO)
}

impl RetryConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.max_attempts == 0 {
            v.error(
                &at.field("max_attempts"),
                "zero attempts sends nothing",
                "expected a count >= 1",
            );
        }
        self.backoff.validate(v, &at.field("backoff"));
        if let Some(b) = self.budget
            && !(0.0..=1.0).contains(&b)
        {
            v.error(
                &at.field("budget"),
                format!("budget {b} is not a fraction"),
                "expected a number from 0.0 to 1.0",
            );
        }
        if self.budget_burst.is_nan() || self.budget_burst < 1.0 {
            v.error(
                &at.field("budget_burst"),
                "a pot smaller than one retry allows none",
                "expected a number >= 1.0",
            );
        }
    }
}

/// The retry budget's pot: retries made never exceed `ratio × requests` since the start.
#[derive(Clone, Debug)]
pub struct RetryBudget {
    ratio: f64,
    burst: f64,
    tokens: f64,
}

impl RetryBudget {
    /// A budget allowing retries of `ratio` of the requests (None: unlimited).
    pub fn new(cfg: &RetryConfig) -> Option<RetryBudget> {
        cfg.budget.map(|ratio| RetryBudget {
            ratio,
            burst: cfg.budget_burst,
            tokens: 0.0,
        })
    }

    /// A new request was issued.
    pub fn deposit(&mut self) {
        self.tokens = (self.tokens + self.ratio).min(self.burst);
    }

    /// May a retry be made now? Takes one retry's worth out of the pot if so.
    pub fn withdraw(&mut self) -> bool {
        // A small tolerance so that ten deposits of 0.1 make one retry despite rounding.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Hedging: if no answer has come `after` the first attempt was sent, send one more copy (to
/// another target when there is one) and take whichever answer comes first: `(after: "20ms")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HedgeConfig {
    /// Delay before the second copy (duration); "0s" sends both at once (a tied request).
    pub after: SimDuration,
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker

/// A circuit breaker's rules: `(failure_rate: 0.5, window: 20, min_calls: 10,
/// cool_down: "5s", probes: 3)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Open when at least this fraction of the calls in the window failed (0..1). Default 0.5.
    #[serde(default = "half")]
    pub failure_rate: f64,
    /// Sliding window: the outcomes of the last this many calls (count, at most 10000).
    /// Default 20.
    #[serde(default = "twenty")]
    pub window: u32,
    /// Do not open before the window holds this many calls (count). Default 10.
    #[serde(default = "ten_u32")]
    pub min_calls: u32,
    /// Time spent open before letting probes through (duration). Default "5s".
    #[serde(default = "five_s")]
    pub cool_down: SimDuration,
    /// Calls let through while half-open; all must succeed to close, one failure reopens
    /// (count). Default 3.
    #[serde(default = "three")]
    pub probes: u32,
}

fn half() -> f64 {
    0.5
}
fn twenty() -> u32 {
    20
}
fn ten_u32() -> u32 {
    10
}
fn five_s() -> SimDuration {
    SimDuration::from_secs(5)
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_rate: half(),
            window: twenty(),
            min_calls: ten_u32(),
            cool_down: five_s(),
            probes: three(),
        }
    }
}

impl BreakerConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            v.error(
                &at.field("failure_rate"),
                format!("failure rate {} is not in (0, 1]", self.failure_rate),
                "expected a number above 0.0 and at most 1.0",
            );
        }
        if self.window == 0 {
            v.error(
                &at.field("window"),
                "an empty window",
                "expected a count >= 1",
            );
        }
        // Each breaker (a load balancer has one per backend) reserves its window up front.
        if self.window > 10_000 {
            v.error(
                &at.field("window"),
                format!("a window of {} calls", self.window),
                "expected a count from 1 to 10000",
            );
        }
        if self.min_calls > self.window {
            v.error(
                &at.field("min_calls"),
                format!(
                    "{} calls never fit a window of {}",
                    self.min_calls, self.window
                ),
                "expected min_calls <= window",
            );
        }
        if self.probes == 0 {
            v.error(
                &at.field("probes"),
                "a half-open breaker that lets no probe through never closes",
                "expected a count >= 1",
            );
        }
    }
}

/// A breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls fail at once, until the cool-down ends.
    Open,
    /// A few probe calls go through to test the dependency.
    HalfOpen,
}

impl BreakerState {
    /// Name used in state-change records.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    /// Level for the state time series: 0 closed, 1 half-open, 2 open.
    pub fn level(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

/// One circuit breaker (see the file comment for its states).
#[derive(Clone, Debug)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: BreakerState,
    /// Outcomes of the last `window` calls (true = failed), oldest first.
    outcomes: VecDeque<bool>,
    failures: u32,
    opened_at: SimTime,
    probes_sent: u32,
    probes_ok: u32,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: &BreakerConfig) -> Breaker {
        Breaker {
            cfg: cfg.clone(),
            state: BreakerState::Closed,
            outcomes: VecDeque::with_capacity(cfg.window as usize),
            failures: 0,
            opened_at: SimTime::ZERO,
            probes_sent: 0,
            probes_ok: 0,
        }
    }

    /// A closed breaker with the same rules (after a crash of its owner).
    pub fn reset(&self) -> Breaker {
        Breaker::new(&self.cfg)
    }

    /// The state, after moving from open to half-open if the cool-down has passed; returns the
    /// new state if that happened.
    pub fn poll(&mut self, now: SimTime) -> Option<BreakerState> {
        if self.state == BreakerState::Open && now >= self.opened_at.after(self.cfg.cool_down) {
            self.state = BreakerState::HalfOpen;
            self.probes_sent = 0;
            self.probes_ok = 0;
            return Some(self.state);
        }
        None
    }

    /// The current state (call [`Breaker::poll`] first).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Would a call be let through now? (Does not count it; see [`Breaker::on_send`].)
    pub fn allows(&self) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => self.probes_sent < self.cfg.probes,
        }
    }

    /// A call was let through.
    pub fn on_send(&mut self) {
        if self.state == BreakerState::HalfOpen {
            self.probes_sent += 1;
        }
    }

    /// A call let through ended; returns the new state if it changed.
    pub fn record(&mut self, now: SimTime, failed: bool) -> Option<BreakerState> {
        match self.state {
            BreakerState::Closed => {
                if self.outcomes.len() == self.cfg.window as usize {
                    let oldest = self.outcomes.pop_front() == Some(true);
                    self.failures -= oldest as u32;
                }
                self.outcomes.push_back(failed);
                self.failures += failed as u32;
                let n = self.outcomes.len() as u32;
                let rate = self.failures as f64 / n as f64;
                (n >= self.cfg.min_calls && rate >= self.cfg.failure_rate).then(|| self.open(now))
            }
            // A call sent before the breaker opened: its outcome is old news.
            BreakerState::Open => None,
            BreakerState::HalfOpen => {
                if failed {
                    return Some(self.open(now));
                }
                self.probes_ok += 1;
                (self.probes_ok >= self.cfg.probes).then(|| {
                    self.state = BreakerState::Closed;
                    self.outcomes.clear();
                    self.failures = 0;
                    self.state
                })
            }
        }
    }

    fn open(&mut self, now: SimTime) -> BreakerState {
        self.state = BreakerState::Open;
        self.opened_at = now;
        self.state
    }
}

// ---------------------------------------------------------------------------------------------
// Rate limiting

/// A rate-limiting algorithm. All five admit on average `rate` requests per second; they
/// differ in how they treat bursts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum RateLimit {
    /// Tokens drip in at `rate` per second into a bucket of `burst`; a request takes one or
    /// is rejected. Over any interval t it admits at most burst + rate × t:
    /// `TokenBucket(rate: 1000.0, burst: 100)`.
    TokenBucket {
        /// Refill rate (tokens/s).
        rate: f64,
        /// Bucket size (tokens); the bucket starts full.
        burst: u32,
    },
    /// Requests wait in a queue of `capacity` and leave it evenly spaced at `rate` per second;
    /// a request that finds the queue full is rejected. It smooths bursts by delaying them:
    /// `LeakyBucket(rate: 1000.0, capacity: 100)`.
    LeakyBucket {
        /// Drain rate (requests/s).
        rate: f64,
        /// Requests that may wait (count).
        capacity: u32,
    },
    /// At most `limit` requests per window aligned to multiples of `window`; the count resets
    /// at each boundary (so 2 × limit can pass around one): `FixedWindow(limit: 100, window: "100ms")`.
    FixedWindow {
        /// Requests admitted per window (count).
        limit: u32,
        /// Window width (duration).
        window: SimDuration,
    },
    /// At most `limit` requests in any interval of length `window`, by keeping the admission
    /// times of the last `limit` requests: `SlidingLog(limit: 100, window: "100ms")`.
    SlidingLog {
        /// Requests admitted per sliding window (count).
        limit: u32,
        /// Window length (duration).
        window: SimDuration,
    },
    /// Fixed windows, but the previous window's count is weighted by how much of it the
    /// sliding window still overlaps (an estimate of the sliding log in O(1) memory):
    /// `SlidingWindowCounter(limit: 100, window: "100ms")`.
    SlidingWindowCounter {
        /// Requests admitted per window (count).
        limit: u32,
        /// Window width (duration).
        window: SimDuration,
    },
}

impl RateLimit {
    /// The units a request could ever find free: the bucket's tokens, the queue's places, or
    /// the window's slots (a class reserve must leave at least one).
    pub fn units(&self) -> u32 {
        match *self {
            RateLimit::TokenBucket { burst, .. } => burst,
            RateLimit::LeakyBucket { capacity, .. } => capacity,
            RateLimit::FixedWindow { limit, .. }
            | RateLimit::SlidingLog { limit, .. }
            | RateLimit::SlidingWindowCounter { limit, .. } => limit,
        }
    }

    /// Whether a request it admits may be held back (a leaky bucket delays; the rest admit
    /// at once or refuse).
    pub fn delays(&self) -> bool {
        matches!(self, RateLimit::LeakyBucket { .. })
    }

    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        match *self {
            RateLimit::TokenBucket { rate, burst } => {
                v.check_positive(&at.field("rate"), rate, "tokens/s");
                if burst == 0 {
                    v.error(
                        &at.field("burst"),
                        "an empty bucket",
                        "expected a count >= 1",
                    );
                }
            }
            RateLimit::LeakyBucket { rate, .. } => {
                v.check_positive(&at.field("rate"), rate, "requests/s");
            }
            RateLimit::FixedWindow { limit, window }
            | RateLimit::SlidingLog { limit, window }
            | RateLimit::SlidingWindowCounter { limit, window } => {
                if limit == 0 {
                    v.error(
                        &at.field("limit"),
                        "a limit of zero admits nothing",
                        "expected a count >= 1",
                    );
                }
                if window == SimDuration::ZERO {
                    v.error(
                        &at.field("window"),
                        "an empty window",
                        "expected a positive duration",
                    );
                }
            }
        }
    }
}

/// What a limiter says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Forward it after this delay (zero except for the leaky bucket's queue).
    Admit(SimDuration),
    /// Reject it.
    Reject,
}

/// The state of one limiter (one per key or client when limiting per key).
#[derive(Clone, Debug)]
pub enum Limiter {
    /// Tokens (scaled by 1e9 per token, so refill is exact integer arithmetic) and last refill.
    TokenBucket {
        /// Tokens × 1e9.
        nano_tokens: u128,
        /// Time of the last refill.
        last: SimTime,
    },
    /// When the queue will next be free to release a request.
    LeakyBucket {
        /// Release time of the last admitted request.
        next_free: SimTime,
    },
    /// Current window index and count.
    FixedWindow {
        /// Index of the current window.
        index: u64,
        /// Requests admitted in it.
        count: u32,
    },
    /// Admission times in the last window, oldest first.
    SlidingLog {
        /// Admission times.
        log: VecDeque<SimTime>,
    },
    /// Current window index and the counts of this and the previous window.
    SlidingWindowCounter {
        /// Index of the current window.
        index: u64,
        /// Admitted in the current window.
        current: u32,
        /// Admitted in the previous window.
        previous: u32,
    },
}

const NANOS: u128 = 1_000_000_000;

impl Limiter {
    /// A fresh limiter for `algo` (a token bucket starts full).
    pub fn new(algo: &RateLimit) -> Limiter {
        match *algo {
            RateLimit::TokenBucket { burst, .. } => Limiter::TokenBucket {
                nano_tokens: burst as u128 * NANOS,
                last: SimTime::ZERO,
            },
            RateLimit::LeakyBucket { .. } => Limiter::LeakyBucket {
                next_free: SimTime::ZERO,
            },
            RateLimit::FixedWindow { .. } => Limiter::FixedWindow { index: 0, count: 0 },
            RateLimit::SlidingLog { .. } => Limiter::SlidingLog {
                log: VecDeque::new(),
            },
            RateLimit::SlidingWindowCounter { .. } => Limiter::SlidingWindowCounter {
                index: 0,
                current: 0,
                previous: 0,
            },
        }
    }

    /// Decide on a request arriving at `now` (`algo` is the one this limiter was made for).
    pub fn admit(&mut self, algo: &RateLimit, now: SimTime) -> Admission {
        self.admit_keeping(algo, now, 0)
    }

    /// Decide on a request arriving at `now` that may not use the last `reserve` units of the
    /// limit (tokens, window slots, queue places): they are kept for higher request classes,
    /// so under overload the lower class is refused first. `reserve` 0 is plain `admit`.
    pub fn admit_keeping(&mut self, algo: &RateLimit, now: SimTime, reserve: u32) -> Admission {
        let yes = Admission::Admit(SimDuration::ZERO);
        let keep = u128::from(reserve);
        match (self, algo) {
            (
                Limiter::TokenBucket { nano_tokens, last },
                RateLimit::TokenBucket { rate, burst },
            ) => {
                // Refill: rate tokens/s × elapsed ns = rate × elapsed nano-tokens.
                let elapsed = now.since(*last).0 as u128;
                let refill = (*rate * elapsed as f64) as u128;
                *nano_tokens = (*nano_tokens + refill).min(*burst as u128 * NANOS);
                *last = now;
                if *nano_tokens >= (1 + keep) * NANOS {
                    *nano_tokens -= NANOS;
                    yes
                } else {
                    Admission::Reject
                }
            }
            (Limiter::LeakyBucket { next_free }, RateLimit::LeakyBucket { rate, capacity }) => {
                let gap = SimDuration::from_secs_f64(1.0 / rate);
                let start = (*next_free).max(now);
                let wait = start.since(now);
                // Requests still waiting: the admitted ones released after `now`, one per gap
                // up to `next_free - gap`.
                let waiting = wait.0.div_ceil(gap.0.max(1)).saturating_sub(1);
                if wait > SimDuration::ZERO && waiting + u64::from(reserve) >= *capacity as u64 {
                    return Admission::Reject;
                }
                *next_free = start.after(gap);
                Admission::Admit(wait)
            }
            (Limiter::FixedWindow { index, count }, RateLimit::FixedWindow { limit, window }) => {
                let i = now.0 / window.0;
                if i != *index {
                    *index = i;
                    *count = 0;
                }
                if u64::from(*count) + u64::from(reserve) < u64::from(*limit) {
                    *count += 1;
                    yes
                } else {
                    Admission::Reject
                }
            }
            (Limiter::SlidingLog { log }, RateLimit::SlidingLog { limit, window }) => {
                // Keep the admissions of the last `window`: those at or after now - window + 1ns.
                while log.front().is_some_and(|&t| now.since(t) >= *window) {
                    log.pop_front();
                }
                if log.len() + (reserve as usize) < *limit as usize {
                    log.push_back(now);
                    yes
                } else {
                    Admission::Reject
                }
            }
            (
                Limiter::SlidingWindowCounter {
                    index,
                    current,
                    previous,
                },
                RateLimit::SlidingWindowCounter { limit, window },
            ) => {
                let i = now.0 / window.0;
                if i != *index {
                    *previous = if i == *index + 1 { *current } else { 0 };
                    *current = 0;
                    *index = i;
                }
                let into = (now.0 % window.0) as f64 / window.0 as f64;
                let estimate = *previous as f64 * (1.0 - into) + *current as f64;
                if estimate + 1.0 + f64::from(reserve) <= *limit as f64 {
                    *current += 1;
                    yes
                } else {
                    Admission::Reject
                }
            }
            // A limiter is always made for its own algorithm (Limiter::new).
            _ => unreachable!("limiter state does not match its algorithm"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Health checks

/// Active health checks of a load balancer's backends: `(interval: "1s", timeout: "200ms",
/// unhealthy_threshold: 2, healthy_threshold: 2)`. A backend that fails `unhealthy_threshold`
/// probes in a row leaves the rotation; one that then passes `healthy_threshold` in a row comes
/// back. A probe is an ordinary read request served like any other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Time between probes of each backend (duration); the first is sent at time `interval`.
    pub interval: SimDuration,
    /// A probe not answered within this long fails (duration). Default "1s".
    #[serde(default = "one_s")]
    pub timeout: SimDuration,
    /// Failed probes in a row that take a backend out (count). Default 3.
    #[serde(default = "three")]
    pub unhealthy_threshold: u32,
    /// Passed probes in a row that bring it back (count). Default 2.
    #[serde(default = "two")]
    pub healthy_threshold: u32,
}

fn one_s() -> SimDuration {
    SimDuration::from_secs(1)
}
fn two() -> u32 {
    2
}

impl HealthCheckConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.interval == SimDuration::ZERO {
            v.error(
                &at.field("interval"),
                "probes without pause",
                "expected a positive duration",
            );
        }
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout fails every probe",
                "expected a positive duration",
            );
        }
        for (name, n) in [
            ("unhealthy_threshold", self.unhealthy_threshold),
            ("healthy_threshold", self.healthy_threshold),
        ] {
            if n == 0 {
                v.error(
                    &at.field(name),
                    "a threshold of zero",
                    "expected a count >= 1",
                );
            }
        }
    }
}

/// A backend's health as the checks see it.
#[derive(Clone, Copy, Debug)]
pub struct Health {
    /// In rotation?
    pub healthy: bool,
    streak: u32,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            healthy: true,
            streak: 0,
        }
    }
}

impl Health {
    /// A probe ended; returns the new health if it changed.
    pub fn record(&mut self, cfg: &HealthCheckConfig, passed: bool) -> Option<bool> {
        if passed == self.healthy {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let threshold = if self.healthy {
            cfg.unhealthy_threshold
        } else {
            cfg.healthy_threshold
        };
        (self.streak >= threshold).then(|| {
            self.healthy = passed;
            self.streak = 0;
            passed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::SimRng;

    fn ms(n: u64) -> SimDuration {
        SimDuration::from_millis(n)
    }

    #[test]
    fn exponential_backoff_doubles_up_to_its_cap() {
        let b = Backoff::Exponential {
            base: ms(5),
            cap: ms(30),
        };
        let mut rng = SimRng::derive(1, "t");
        let got: Vec<u64> = (1..=5)
            .map(|n| b.delay(n, SimDuration::ZERO, &mut rng).0 / 1_000_000)
            .collect();
        assert_eq!(got, [5, 10, 20, 30, 30]);
    }

    #[test]
    fn jittered_backoffs_stay_within_their_bounds_and_use_them() {
        let mut rng = SimRng::derive(1, "t");
        let full = Backoff::FullJitter {
            base: ms(4),
            cap: ms(100),
        };
        for n in 1..=8u32 {
            let hi = (4u64 << (n - 1)).min(100) * 1_000_000;
            let draws: Vec<u64> = (0..2000)
                .map(|_| full.delay(n, SimDuration::ZERO, &mut rng).0)
                .collect();
            assert!(draws.iter().all(|&d| d <= hi), "retry {n}: above {hi}");
            let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
            // Uniform on [0, hi]: mean hi/2, standard error hi/sqrt(12 × 2000) ≈ 0.0065 hi.
            assert!(
                (mean / hi as f64 - 0.5).abs() < 0.03,
                "retry {n}: mean {mean}"
            );
        }
        let dec = Backoff::DecorrelatedJitter {
            base: ms(4),
            cap: ms(100),
        };
        let mut prev = ms(4);
        let mut reached_cap = false;
        for n in 1..=2000u32 {
            let d = dec.delay(n, prev, &mut rng);
            assert!(d >= ms(4) && d <= ms(100), "{d:?}");
            assert!(d.0 <= (prev.0 * 3).max(ms(4).0), "{d:?} above 3 × {prev:?}");
            reached_cap |= d == ms(100);
            prev = d;
        }
        assert!(reached_cap, "decorrelated jitter grows to its cap");
    }

    #[test]
    fn a_retry_budget_allows_its_fraction_of_requests() {
        let cfg = RetryConfig {
            max_attempts: 5,
            backoff: no_backoff(),
            budget: Some(0.1),
            budget_burst: 10.0,
        };
        let mut b = RetryBudget::new(&cfg).unwrap();
        let mut retries = 0;
        for _ in 0..1000 {
            b.deposit();
            // Every request fails and wants four retries.
            for _ in 0..4 {
                retries += b.withdraw() as u32;
            }
        }
        assert_eq!(retries, 100);
        // Unused budget saves up to the burst and no further.
        let mut b = RetryBudget::new(&cfg).unwrap();
        (0..1000).for_each(|_| b.deposit());
        assert_eq!((0..50).filter(|_| b.withdraw()).count(), 10);
    }

    #[test]
    fn a_breaker_opens_on_the_request_that_reaches_the_failure_rate() {
        let cfg = BreakerConfig {
            failure_rate: 0.5,
            window: 10,
            min_calls: 4,
            cool_down: ms(100),
            probes: 2,
        };
        let mut b = Breaker::new(&cfg);
        let t = SimTime::ZERO;
        // 1 failure in 3 calls: below min_calls anyway.
        assert_eq!(b.record(t, false), None);
        assert_eq!(b.record(t, true), None);
        assert_eq!(b.record(t, false), None);
        // 4th call fails: 2 of 4 = 0.5 >= 0.5 and 4 >= min_calls: opens on this one.
        assert_eq!(b.record(t, true), Some(BreakerState::Open));
        assert!(!b.allows());
        assert_eq!(b.poll(t.after(ms(99))), None);
        assert_eq!(b.poll(t.after(ms(100))), Some(BreakerState::HalfOpen));
        assert!(b.allows());
        b.on_send();
        b.on_send();
        assert!(!b.allows(), "only `probes` calls go through half-open");
        assert_eq!(b.record(t, false), None);
        assert_eq!(b.record(t, false), Some(BreakerState::Closed));
        // The window restarts empty: 3 failures are below min_calls, the 4th opens.
        for _ in 0..3 {
            assert_eq!(b.record(t, true), None);
        }
        assert_eq!(b.record(t, true), Some(BreakerState::Open));
        // A failed probe reopens.
        b.poll(t.after(ms(100)));
        b.on_send();
        assert_eq!(b.record(t.after(ms(100)), true), Some(BreakerState::Open));
        assert_eq!(
            b.poll(t.after(ms(199))),
            None,
            "cool-down counts from the reopening"
        );
    }

    #[test]
    fn the_sliding_window_forgets_old_failures() {
        let cfg = BreakerConfig {
            failure_rate: 0.5,
            window: 4,
            min_calls: 4,
            ..BreakerConfig::default()
        };
        let mut b = Breaker::new(&cfg);
        let t = SimTime::ZERO;
        // F F S S S: windows [F F S S] = 0.5 → opens at the 4th call.
        for (i, failed) in [true, false, false, false, true, false, true]
            .iter()
            .enumerate()
        {
            let r = b.record(t, *failed);
            // Windows: [T], [T F], [T F F], [T F F F]=.25, [F F F T]=.25, [F F T F]=.25,
            // [F T F T] = 0.5 → opens at the 7th.
            assert_eq!(r.is_some(), i == 6, "call {i}");
        }
    }

    fn count_admitted(algo: &RateLimit, arrivals: impl Iterator<Item = SimTime>) -> u32 {
        let mut l = Limiter::new(algo);
        arrivals
            .map(|t| matches!(l.admit(algo, t), Admission::Admit(_)) as u32)
            .sum()
    }

    #[test]
    fn a_reserve_keeps_the_last_units_of_every_algorithm_for_higher_classes() {
        let w = ms(100);
        let algos = [
            RateLimit::TokenBucket {
                rate: 1e-3,
                burst: 10,
            },
            RateLimit::LeakyBucket {
                rate: 1e-3,
                capacity: 10,
            },
            RateLimit::FixedWindow {
                limit: 10,
                window: w,
            },
            RateLimit::SlidingLog {
                limit: 10,
                window: w,
            },
            RateLimit::SlidingWindowCounter {
                limit: 10,
                window: w,
            },
        ];
        for algo in &algos {
            // At one instant, a class keeping 4 units free gets 6 (a leaky bucket admits one
            // at once and queues 5 behind it: places 0..5 of 10, 4 kept), the class above the
            // remaining 4, and then nobody.
            let mut l = Limiter::new(algo);
            let mut run = |reserve, n| {
                (0..n)
                    .filter(|_| l.admit_keeping(algo, SimTime(1), reserve) != Admission::Reject)
                    .count()
            };
            let low = run(4, 20);
            let high = run(0, 20);
            let lead = usize::from(algo.delays());
            assert_eq!((low, high), (6 + lead, 4), "{algo:?}");
        }
    }

    #[test]
    fn a_token_bucket_admits_burst_plus_rate_times_t() {
        let algo = RateLimit::TokenBucket {
            rate: 1000.0,
            burst: 50,
        };
        // A flood, one request every 10us over [0, 2 s] (the last one at exactly 2 s, when the
        // 2000th token drips in): 50 + 1000 × 2 = 2050 admitted.
        let flood = (0..=200_000u64).map(|i| SimTime(i * 10_000));
        assert_eq!(count_admitted(&algo, flood), 2050);
        // One nanosecond earlier the 2000th token has not arrived yet.
        let short = (0..200_000u64)
            .map(|i| SimTime(i * 10_000))
            .chain([SimTime(1_999_999_999)]);
        assert_eq!(count_admitted(&algo, short), 2049);
    }

    #[test]
    fn window_limiters_admit_their_limit_per_window() {
        let flood = || (0..100_000u64).map(|i| SimTime(i * 10_000)); // 1 s, every 10 us
        let w = ms(100);
        // Fixed and sliding log: 10 windows × 20.
        assert_eq!(
            count_admitted(
                &RateLimit::FixedWindow {
                    limit: 20,
                    window: w
                },
                flood()
            ),
            200
        );
        assert_eq!(
            count_admitted(
                &RateLimit::SlidingLog {
                    limit: 20,
                    window: w
                },
                flood()
            ),
            200
        );
        // The fixed window lets 2 × limit through around a boundary; the sliding log does not.
        let edge =
            [95u64, 96, 97, 98, 99, 100, 101, 102, 103, 104].map(|m| SimTime::ZERO.after(ms(m)));
        assert_eq!(
            count_admitted(
                &RateLimit::FixedWindow {
                    limit: 5,
                    window: w
                },
                edge.into_iter()
            ),
            10
        );
        assert_eq!(
            count_admitted(
                &RateLimit::SlidingLog {
                    limit: 5,
                    window: w
                },
                edge.into_iter()
            ),
            5
        );
        // The sliding counter at 100.5 ms weighs the previous window's 5 by 0.995: 4.975 + 1 > 5.
        assert_eq!(
            count_admitted(
                &RateLimit::SlidingWindowCounter {
                    limit: 5,
                    window: w
                },
                edge.into_iter()
            ),
            5
        );
    }

    #[test]
    fn the_sliding_window_counter_admits_limit_minus_one_per_window_evenly_in_steady_state() {
        // A flood (every 10 us for 3 s) against limit L = 20 per 100 ms. The first window
        // admits L. In a later window whose predecessor admitted P, the n-th admission needs
        // P·(1 − x) + (n − 1) + 1 <= L at the fraction x of the window: the window ends with
        // c = L − 1 admitted (the last needs x = 1), so from the third window on P = L − 1, and
        // the n-th admission comes at the first arrival at or after x = (n − 1) / (L − 1):
        // evenly spread, not bunched at the window's start as with a fixed window.
        let (limit, w) = (20u64, ms(100));
        let algo = RateLimit::SlidingWindowCounter {
            limit: limit as u32,
            window: w,
        };
        let mut l = Limiter::new(&algo);
        let mut admitted: Vec<u64> = Vec::new();
        for t in (0..300_000u64).map(|i| i * 10_000) {
            if matches!(l.admit(&algo, SimTime(t)), Admission::Admit(_)) {
                admitted.push(t);
            }
        }
        let in_window = |k: u64| -> Vec<u64> {
            admitted
                .iter()
                .filter(|&&t| t / w.0 == k)
                .map(|&t| t - k * w.0)
                .collect()
        };
        assert_eq!(in_window(0).len() as u64, limit);
        for k in 2..30 {
            let want: Vec<u64> = (1..limit)
                .map(|n| ((n - 1) * w.0).div_ceil(limit - 1).div_ceil(10_000) * 10_000)
                .collect();
            assert_eq!(in_window(k), want, "window {k}");
        }
        assert_eq!(admitted.len() as u64, limit + 29 * (limit - 1));
    }

    #[test]
    fn a_leaky_bucket_spaces_requests_and_rejects_beyond_its_queue() {
        let algo = RateLimit::LeakyBucket {
            rate: 1000.0,
            capacity: 3,
        };
        let mut l = Limiter::new(&algo);
        let t = SimTime(5_000_000);
        // Five at once: the first goes at once, three wait 1, 2, 3 ms, the fifth is rejected.
        let got: Vec<Admission> = (0..5).map(|_| l.admit(&algo, t)).collect();
        assert_eq!(
            got,
            [
                Admission::Admit(SimDuration::ZERO),
                Admission::Admit(ms(1)),
                Admission::Admit(ms(2)),
                Admission::Admit(ms(3)),
                Admission::Reject
            ]
        );
    }

    #[test]
    fn health_changes_after_the_thresholds_in_a_row() {
        let cfg = HealthCheckConfig {
            interval: ms(100),
            timeout: ms(10),
            unhealthy_threshold: 2,
            healthy_threshold: 3,
        };
        let mut h = Health::default();
        let outcomes = [
            false, true, false, false, true, true, false, true, true, true,
        ];
        let changes: Vec<Option<bool>> = outcomes.iter().map(|&p| h.record(&cfg, p)).collect();
        let mut want = vec![None; 10];
        want[3] = Some(false);
        want[9] = Some(true);
        assert_eq!(changes, want);
    }
}
