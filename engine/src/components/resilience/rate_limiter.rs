//! `RateLimiter`: a proxy that refuses requests over a rate, by one of five algorithms
//! (`policy::RateLimit`), globally, per request key or per calling node; with request classes,
//! each class may also have a limit of its own (`class_limits`) and a lower class may be kept
//! off the last units of the shared limit (`class_reserve`), so it is refused first.
//!
//! ```text
//!  request of class c ─▶ c's own limit (if any) ─refuse─▶ rate_limited
//!        │ admit
//!        ▼
//!  shared limit, keeping class_reserve[c] units free ─refuse─▶ rate_limited
//!        │ admit
//!        ▼
//!  forward to target
//! ```

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
    /// Per-class quotas: a limit of its own for each named request class, one for all of the
    /// class's requests whatever the `scope`, checked before the shared `algorithm`:
    /// `{"batch": TokenBucket(rate: 200.0, burst: 20)}`. A leaky bucket is not allowed here
    /// (its delay would stack on the shared one). Default `{}`: no class limits.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_limits: BTreeMap<String, RateLimit>,
    /// Shedding the lowest class first: the units of the shared limit (tokens of a token
    /// bucket, places of a leaky bucket's queue, slots of a window) a class may not use, kept
    /// for the classes above it: `{"standard": 50}` (count). Under overload the bucket or
    /// window runs down to the reserve, and only higher classes get past it. Default `{}`:
    /// every class takes the limit first come, first served.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_reserve: BTreeMap<String, u32>,
}

crate::settable!(RateLimiterConfig {
    target,
    algorithm,
    scope,
    max_keys,
    timeout,
    class_limits,
    class_reserve
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
        self.validate_classes(v, at);
    }

    fn validate_classes(&self, v: &mut Validator, at: &Path) {
        for (name, limit) in &self.class_limits {
            let at = at.field("class_limits").key(name);
            v.resolve_class(&at, name);
            limit.validate(v, &at);
            if limit.delays() {
                v.error(
                    &at,
                    "a leaky bucket as a class limit",
                    "expected TokenBucket, FixedWindow, SlidingLog or SlidingWindowCounter \
                     (a class limit admits or refuses at once)",
                );
            }
        }
        let units = self.algorithm.units();
        for (name, reserve) in &self.class_reserve {
            let at = at.field("class_reserve").key(name);
            v.resolve_class(&at, name);
            if *reserve >= units {
                v.error(
                    &at,
                    format!("a reserve of {reserve} leaves this class none of the {units} units of the limit"),
                    format!("expected a count below {units} (the `algorithm`'s burst, capacity or limit)"),
                );
            }
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
    /// Per request class (when the scenario declares classes).
    by_class: Vec<ClassGate>,
}

/// One request class at a rate limiter: its own limit, its reserve, and its counts.
struct ClassGate {
    name: String,
    own: Option<(RateLimit, Limiter)>,
    reserve: u32,
    admitted: u64,
    limited: u64,
}

impl ClassGate {
    fn new(name: &str, cfg: &RateLimiterConfig) -> ClassGate {
        ClassGate {
            name: name.to_string(),
            own: cfg
                .class_limits
                .get(name)
                .map(|l| (l.clone(), Limiter::new(l))),
            reserve: cfg.class_reserve.get(name).copied().unwrap_or(0),
            admitted: 0,
            limited: 0,
        }
    }
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
            by_class: b.classes().iter().map(|c| ClassGate::new(c, cfg)).collect(),
        }
    }

    /// The class's own limit, then the shared one with the class's reserve kept free.
    fn verdict(&mut self, key: Option<u64>, class: u8, now: SimTime) -> Admission {
        let gate = self.by_class.get_mut(class as usize);
        let reserve = gate.as_ref().map_or(0, |g| g.reserve);
        if let Some((algo, own)) = gate.and_then(|g| g.own.as_mut())
            && own.admit(algo, now) == Admission::Reject
        {
            return Admission::Reject;
        }
        let limiter = match key {
            None => &mut self.global,
            Some(k) => self
                .per_key
                .entry(k)
                .or_insert_with(|| Limiter::new(&self.algorithm)),
        };
        limiter.admit_keeping(&self.algorithm, now, reserve)
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
        let verdict = self.verdict(key, req.class, now);
        let gate = self.by_class.get_mut(req.class as usize);
        match verdict {
            Admission::Admit(delay) => {
                self.n_admitted += 1;
                self.admitted.add(now, 1.0);
                gate.into_iter().for_each(|g| g.admitted += 1);
                Ok(delay)
            }
            Admission::Reject => {
                self.n_limited += 1;
                self.limited.add(now, 1.0);
                gate.into_iter().for_each(|g| g.limited += 1);
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
        for (algo, own) in self.by_class.iter_mut().filter_map(|g| g.own.as_mut()) {
            *own = Limiter::new(algo);
        }
    }

    fn report(&mut self, now: SimTime, mut counters: BTreeMap<String, f64>) -> NodeStats {
        counters.insert("admitted".to_string(), self.n_admitted as f64);
        counters.insert("rate_limited".to_string(), self.n_limited as f64);
        for g in &self.by_class {
            counters.insert(format!("admitted.{}", g.name), g.admitted as f64);
            counters.insert(format!("rate_limited.{}", g.name), g.limited as f64);
        }
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
