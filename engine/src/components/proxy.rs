//! Protective proxies in front of a dependency: `CircuitBreaker`, `RateLimiter` and `Bulkhead`.
//!
//! ```text
//!  caller ──req──▶ proxy ── admitted? ──yes──▶ forward to `target` (a pool: a reachable
//!        ◀─resp───        │                     replica at random), relay its answer, or
//!                         │                     Err(Timeout) after `timeout`
//!                         └─no──▶ Err(CircuitOpen | RateLimited | Rejected) at once
//! ```
//! The three share the forwarding ([`Forwarder`]) and differ only in the admission rule:
//! - `CircuitBreaker`: the breaker of `resilience.rs`, fed by the forwarded calls' outcomes
//!   (an error answer, a timeout or an unreachable target is a failure); every state change
//!   is recorded with its time, and the state is a time series (0 closed, 1 half-open, 2 open).
//! - `RateLimiter`: one of five algorithms, globally, per request key or per calling node.
//! - `Bulkhead`: at most `max_concurrent` calls in flight to the dependency.

use super::calls::{CallTable, Forwarded, answer, pick_reachable};
use super::resilience::{Admission, Breaker, BreakerConfig, Limiter, RateLimit};
use crate::build::BuildCtx;
use crate::metrics::{EventLog, NodeStats, Series, SeriesKind};
use crate::scenario::validate::{Path, Validator};
use crate::sim::message::{CallId, Cause, Message, NodeId, Request};
use crate::sim::rng::SimRng;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Ctx, Node, TimerId};
use crate::state_series::StateSeries;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn one_s() -> SimDuration {
    SimDuration::from_secs(1)
}

fn validate_forwarding(target: &str, timeout: SimDuration, v: &mut Validator, at: &Path) {
    v.resolve(&at.field("target"), target);
    if timeout == SimDuration::ZERO {
        v.error(
            &at.field("timeout"),
            "a zero timeout fails every request",
            "expected a positive duration",
        );
    }
}

/// The forwarding every proxy does: pick a target replica, keep the call, relay the answer.
struct Forwarder {
    targets: Vec<NodeId>,
    timeout: SimDuration,
    pending: CallTable<Forwarded>,
    rng: SimRng,
    candidates: Vec<NodeId>,
    in_flight: u32,
    forwarded: u64,
    timeouts: u64,
}

impl Forwarder {
    fn new(target: &str, timeout: SimDuration, b: &BuildCtx<'_>) -> Forwarder {
        Forwarder {
            targets: b.resolve(target),
            timeout,
            pending: CallTable::default(),
            rng: b.rng("route"),
            candidates: Vec::new(),
            in_flight: 0,
            forwarded: 0,
            timeouts: 0,
        }
    }

    fn pick(&mut self, ctx: &Ctx<'_>) -> Option<NodeId> {
        pick_reachable(ctx, &self.targets, &mut self.candidates, &mut self.rng)
    }

    /// Forward `req` after `delay`; `Err(Unreachable)` (already answered) if no target is.
    fn forward(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        req: Request,
        delay: SimDuration,
    ) -> Result<(), Cause> {
        let Some(to) = self.pick(ctx) else {
            answer(ctx, from, req.call, req.id, Err(Cause::Unreachable));
            return Err(Cause::Unreachable);
        };
        let timeout = SimDuration(self.timeout.0.saturating_add(delay.0));
        let call = self.pending.open(|call| Forwarded {
            from,
            call: req.call,
            id: req.id,
            timer: ctx.set_timer(timeout, call.0),
        });
        self.in_flight += 1;
        self.forwarded += 1;
        ctx.send_after(delay, to, Message::Request(Request { call, ..req }));
        Ok(())
    }

    /// The forwarded call `call` ended with `result` (an answer or, if `None`, its timeout):
    /// relay it; returns the outcome if the call was still open.
    fn ended(
        &mut self,
        ctx: &mut Ctx<'_>,
        call: CallId,
        result: Option<Result<(), Cause>>,
    ) -> Option<Result<(), Cause>> {
        let f = self.pending.close(call)?;
        ctx.cancel_timer(f.timer);
        self.in_flight -= 1;
        let result = result.unwrap_or_else(|| {
            self.timeouts += 1;
            Err(Cause::Timeout)
        });
        answer(ctx, f.from, f.call, f.id, result);
        Some(result)
    }

    fn crash(&mut self) {
        self.pending.clear();
        self.in_flight = 0;
    }

    fn counters(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("forwarded".to_string(), self.forwarded as f64),
            ("target_timeouts".to_string(), self.timeouts as f64),
        ])
    }
}

/// What a proxy message handler does with a message: forward a request, or relay an answer.
fn route<P: Admit>(p: &mut P, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
    match msg {
        Message::Request(req) => match p.admit(ctx, from, &req) {
            Ok(delay) => {
                let sent = p.forwarder().forward(ctx, from, req, delay);
                p.sent(ctx.now(), sent);
            }
            Err(cause) => answer(ctx, from, req.call, req.id, Err(cause)),
        },
        Message::Response(resp) => {
            let result = resp.result.map(|_| ());
            if let Some(r) = p.forwarder().ended(ctx, resp.call, Some(result)) {
                p.outcome(ctx.now(), r);
            }
        }
        // Plug-in and protocol messages are not for a proxy.
        _ => {}
    }
}

fn timed_out<P: Admit>(p: &mut P, ctx: &mut Ctx<'_>, tag: u64) {
    if let Some(r) = p.forwarder().ended(ctx, CallId(tag), None) {
        p.outcome(ctx.now(), r);
    }
}

/// The admission rule of one kind of proxy.
trait Admit {
    /// Let `req` through (after a delay) or refuse it with a cause.
    fn admit(&mut self, ctx: &Ctx<'_>, from: NodeId, req: &Request) -> Result<SimDuration, Cause>;
    /// The request admitted was forwarded (`Ok`), or failed at once for lack of a target.
    fn sent(&mut self, now: SimTime, sent: Result<(), Cause>);
    /// A forwarded call ended.
    fn outcome(&mut self, now: SimTime, result: Result<(), Cause>);
    fn forwarder(&mut self) -> &mut Forwarder;
}

// ---------------------------------------------------------------------------------------------

/// A circuit breaker in front of a dependency: `CircuitBreaker(target: "db", timeout: "200ms",
/// breaker: (failure_rate: 0.5, window: 20, min_calls: 10, cool_down: "5s", probes: 3))`.
/// While open it fails calls at once with cause `circuit_open`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "CircuitBreaker", deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Node or group protected.
    pub target: String,
    /// A forwarded call not answered within this long fails with `timeout` (duration).
    /// Default "1s".
    #[serde(default = "one_s")]
    pub timeout: SimDuration,
    /// The breaker's rules. Default `(failure_rate: 0.5, window: 20, min_calls: 10,
    /// cool_down: "5s", probes: 3)`.
    #[serde(default)]
    pub breaker: BreakerConfig,
}

crate::settable!(CircuitBreakerConfig {
    target,
    timeout,
    breaker
});

impl CircuitBreakerConfig {
    /// Check the target exists and the rules make sense.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        validate_forwarding(&self.target, self.timeout, v, at);
        self.breaker.validate(v, &at.field("breaker"));
    }
}

/// A breaker's states, in the order of `BreakerState::level`.
const BREAKER_STATES: [&str; 3] = ["closed", "half-open", "open"];

/// State changes kept per breaker.
const EVENT_CAP: usize = 10_000;

/// A `CircuitBreaker` node.
pub struct CircuitBreakerNode {
    fwd: Forwarder,
    breaker: Breaker,
    events: EventLog,
    state: StateSeries,
    fast_failures: u64,
}

impl CircuitBreakerNode {
    /// A closed breaker.
    pub fn new(cfg: &CircuitBreakerConfig, b: &BuildCtx<'_>) -> Self {
        CircuitBreakerNode {
            fwd: Forwarder::new(&cfg.target, cfg.timeout, b),
            breaker: Breaker::new(&cfg.breaker),
            events: EventLog::new(EVENT_CAP),
            state: StateSeries::starting(&BREAKER_STATES, b.window(), 0),
            fast_failures: 0,
        }
    }

    fn changed(&mut self, now: SimTime, state: Option<super::resilience::BreakerState>) {
        if let Some(s) = state {
            self.events.record(now, s.name());
            self.state.set(now, s.level() as usize);
        }
    }
}

impl Admit for CircuitBreakerNode {
    fn admit(
        &mut self,
        ctx: &Ctx<'_>,
        _from: NodeId,
        _req: &Request,
    ) -> Result<SimDuration, Cause> {
        let change = self.breaker.poll(ctx.now());
        self.changed(ctx.now(), change);
        if self.breaker.allows() {
            self.breaker.on_send();
            Ok(SimDuration::ZERO)
        } else {
            self.fast_failures += 1;
            Err(Cause::CircuitOpen)
        }
    }

    fn sent(&mut self, now: SimTime, sent: Result<(), Cause>) {
        if sent.is_err() {
            self.outcome(now, sent);
        }
    }

    fn outcome(&mut self, now: SimTime, result: Result<(), Cause>) {
        let change = self.breaker.record(now, result.is_err());
        self.changed(now, change);
    }

    fn forwarder(&mut self) -> &mut Forwarder {
        &mut self.fwd
    }
}

impl Node for CircuitBreakerNode {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        route(self, ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        timed_out(self, ctx, tag);
    }

    fn on_crash(&mut self, now: SimTime) {
        self.fwd.crash();
        self.breaker = self.breaker.reset();
        self.events.record(now, "closed (crash reset)");
        self.state.set(now, 0);
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let mut counters = self.fwd.counters();
        counters.insert("failed_fast".to_string(), self.fast_failures as f64);
        counters.insert(
            "state_changes_dropped".to_string(),
            self.events.dropped() as f64,
        );
        Some(NodeStats {
            counters,
            series: vec![self.state.finish("breaker_state", "Breaker state", now)],
            events: self.events.take(),
            ..NodeStats::default()
        })
    }
}

// ---------------------------------------------------------------------------------------------

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
}

impl Node for RateLimiterNode {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        route(self, ctx, from, msg);
        if self.per_key.len() > self.max_keys as usize {
            ctx.exceed_limit(
                "max_keys",
                self.max_keys as u64,
                "a per-key rate limiter tracks more keys than `max_keys`; raise it".to_string(),
            );
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        timed_out(self, ctx, tag);
    }

    fn on_crash(&mut self, _now: SimTime) {
        self.fwd.crash();
        self.global = Limiter::new(&self.algorithm);
        self.per_key.clear();
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let mut counters = self.fwd.counters();
        counters.insert("admitted".to_string(), self.n_admitted as f64);
        counters.insert("rate_limited".to_string(), self.n_limited as f64);
        Some(NodeStats {
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
        })
    }
}

// ---------------------------------------------------------------------------------------------

/// A bulkhead: at most `max_concurrent` calls in flight to a dependency; more fail at once with
/// cause `rejected`: `Bulkhead(target: "db", max_concurrent: 10)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Bulkhead", deny_unknown_fields)]
pub struct BulkheadConfig {
    /// Node or group protected.
    pub target: String,
    /// Calls in flight at most (count).
    pub max_concurrent: u32,
    /// A forwarded call not answered within this long fails with `timeout` (duration).
    /// Default "1s".
    #[serde(default = "one_s")]
    pub timeout: SimDuration,
}

crate::settable!(BulkheadConfig {
    target,
    max_concurrent,
    timeout
});

impl BulkheadConfig {
    /// Check the target exists and the limit admits something.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        validate_forwarding(&self.target, self.timeout, v, at);
        if self.max_concurrent == 0 {
            v.error(
                &at.field("max_concurrent"),
                "a bulkhead that admits nothing",
                "expected a count >= 1",
            );
        }
    }
}

/// A `Bulkhead` node.
pub struct BulkheadNode {
    fwd: Forwarder,
    max_concurrent: u32,
    rejected: u64,
    in_flight: Series,
}

impl BulkheadNode {
    /// An empty bulkhead.
    pub fn new(cfg: &BulkheadConfig, b: &BuildCtx<'_>) -> Self {
        BulkheadNode {
            fwd: Forwarder::new(&cfg.target, cfg.timeout, b),
            max_concurrent: cfg.max_concurrent,
            rejected: 0,
            in_flight: Series::new(SeriesKind::Level, b.window()),
        }
    }
}

impl Admit for BulkheadNode {
    fn admit(
        &mut self,
        _ctx: &Ctx<'_>,
        _from: NodeId,
        _req: &Request,
    ) -> Result<SimDuration, Cause> {
        if self.fwd.in_flight < self.max_concurrent {
            Ok(SimDuration::ZERO)
        } else {
            self.rejected += 1;
            Err(Cause::Rejected)
        }
    }

    fn sent(&mut self, now: SimTime, _sent: Result<(), Cause>) {
        self.in_flight.set(now, self.fwd.in_flight as f64);
    }

    fn outcome(&mut self, now: SimTime, _result: Result<(), Cause>) {
        self.in_flight.set(now, self.fwd.in_flight as f64);
    }

    fn forwarder(&mut self) -> &mut Forwarder {
        &mut self.fwd
    }
}

impl Node for BulkheadNode {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        route(self, ctx, from, msg);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        timed_out(self, ctx, tag);
    }

    fn on_crash(&mut self, now: SimTime) {
        self.fwd.crash();
        self.in_flight.set(now, 0.0);
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let mut counters = self.fwd.counters();
        counters.insert("rejected".to_string(), self.rejected as f64);
        Some(NodeStats {
            counters,
            series: vec![self.in_flight.finish(
                "bulkhead_in_flight",
                "Calls in flight through the bulkhead",
                "calls",
                now,
            )],
            ..NodeStats::default()
        })
    }
}
