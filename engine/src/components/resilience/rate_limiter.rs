//! `RateLimiter`: a proxy that refuses requests over a rate, by one of five algorithms
//! (`policy::RateLimit`), globally, per request key or per calling node.

use crate::components::message::Ctx;
use crate::components::resilience::policy::{Admission, Limiter, RateLimit};
use crate::components::resilience::proxy::{Admit, Forwarder, one_s, validate_forwarding};
use crate::contract::build::BuildCtx;
use crate::contract::call::{Cause, Request};
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::validate::{Path, Validator};
use crate::sim::NodeId;
use crate::sim::time::{SimDuration, SimTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whose requests share one limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LimitScope {
    /// One limit for all requests.
    Global,
    /// One limit per request key.
    PerKey,
    /// One limit per calling node (the client, or the node in front).
    PerClient,
}

fn global() -> LimitScope {
    LimitScope::Global
}

fn max_keys() -> u32 {
    100_000
}

/// A rate limiter in front of a dependency: `RateLimiter(target: "app",
/// algorithm: TokenBucket(rate: 1000.0, burst: 100), scope: Global)`. A refused request fails
/// at once with cause `rate_limited`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "RateLimiter", deny_unknown_fields)]
pub struct RateLimiterConfig {
    /// Node or group protected.
    pub target: String,
    /// The limiting algorithm.
    pub algorithm: RateLimit,
    /// Whose requests share a limit. Default `Global`.
    #[serde(default = "global")]
    pub scope: LimitScope,
    /// With `PerKey` or `PerClient`, most limits kept at once (count); more stops the run with
    /// an error. Default 100000.
    #[serde(default = "max_keys")]
    pub max_keys: u32,
    /// A forwarded call not answered within this long fails with `timeout` (duration).
    /// Default "1s".
    #[serde(default = "one_s")]
    pub timeout: SimDuration,
}

crate::settable!(RateLimiterConfig {
    target,
    algorithm,
    scope,
    max_keys,
    timeout
});

impl RateLimiterConfig {
    /// Check the target exists and the algorithm's parameters.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        validate_forwarding(&self.target, self.timeout, v, at);
        self.algorithm.validate(v, &at.field("algorithm"));
        if self.max_keys == 0 {
            v.error(
                &at.field("max_keys"),
                "no room for any limit",
                "expected a count >= 1",
            );
        }
    }
}

/// A `RateLimiter` node.
pub struct RateLimiterNode {
    fwd: Forwarder,
    algorithm: RateLimit,
    scope: LimitScope,
    max_keys: u32,
    global: Limiter,
    per_key: BTreeMap<u64, Limiter>,
    admitted: Series,
    limited: Series,
    n_admitted: u64,
    n_limited: u64,
}

impl RateLimiterNode {
    /// A limiter with full buckets and empty windows.
    pub fn new(cfg: &RateLimiterConfig, b: &BuildCtx<'_>) -> Self {
        RateLimiterNode {
            fwd: Forwarder::new(&cfg.target, cfg.timeout, b),
            algorithm: cfg.algorithm.clone(),
            scope: cfg.scope,
            max_keys: cfg.max_keys,
            global: Limiter::new(&cfg.algorithm),
            per_key: BTreeMap::new(),
            admitted: Series::new(SeriesKind::Rate, b.window()),
            limited: Series::new(SeriesKind::Rate, b.window()),
            n_admitted: 0,
            n_limited: 0,
        }
    }
}

impl Admit for RateLimiterNode {
    fn admit(&mut self, ctx: &Ctx<'_>, from: NodeId, req: &Request) -> Result<SimDuration, Cause> {
        let now = ctx.now();
        let key = match self.scope {
            LimitScope::Global => None,
            LimitScope::PerKey => Some(req.key),
            LimitScope::PerClient => Some(from.0 as u64),
        };
        let limiter = match key {
            None => &mut self.global,
            Some(k) => self
                .per_key
                .entry(k)
                .or_insert_with(|| Limiter::new(&self.algorithm)),
        };
        let verdict = limiter.admit(&self.algorithm, now);
        match verdict {
            Admission::Admit(delay) => {
                self.n_admitted += 1;
                self.admitted.add(now, 1.0);
                Ok(delay)
            }
            Admission::Reject => {
                self.n_limited += 1;
                self.limited.add(now, 1.0);
                Err(Cause::RateLimited)
            }
        }
    }

    fn sent(&mut self, _now: SimTime, _sent: Result<(), Cause>) {}

    fn outcome(&mut self, _now: SimTime, _result: Result<(), Cause>) {}

    fn forwarder(&mut self) -> &mut Forwarder {
        &mut self.fwd
    }

    fn check_bounds(&mut self, ctx: &mut Ctx<'_>) {
        if self.per_key.len() > self.max_keys as usize {
            ctx.exceed_limit(
                "max_keys",
                self.max_keys as u64,
                "a per-key rate limiter tracks more keys than `max_keys`; raise it".to_string(),
            );
        }
    }

    fn crash(&mut self, _now: SimTime) {
        self.global = Limiter::new(&self.algorithm);
        self.per_key.clear();
    }

    fn report(&mut self, now: SimTime, mut counters: BTreeMap<String, f64>) -> NodeStats {
        counters.insert("admitted".to_string(), self.n_admitted as f64);
        counters.insert("rate_limited".to_string(), self.n_limited as f64);
        NodeStats {
            counters,
            series: vec![
                self.admitted.finish(
                    "admitted",
                    "Admitted by the rate limiter",
                    "requests/s",
                    now,
                ),
                self.limited.finish(
                    "rate_limited",
                    "Refused by the rate limiter",
                    "requests/s",
                    now,
                ),
            ],
            ..NodeStats::default()
        }
    }
}
