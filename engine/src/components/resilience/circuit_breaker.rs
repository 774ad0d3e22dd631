//! `CircuitBreaker`: a proxy that fails calls at once while its breaker is open.
//!
//! The breaker (`policy::Breaker`) is fed by the forwarded calls' outcomes: an error answer, a
//! timeout or an unreachable target is a failure. Every state change is recorded with its time,
//! and the state is a time series (0 closed, 1 half-open, 2 open).

use crate::components::message::Ctx;
use crate::components::resilience::policy::{Breaker, BreakerConfig};
use crate::components::resilience::proxy::{Admit, Forwarder, one_s, validate_forwarding};
use crate::contract::build::BuildCtx;
use crate::contract::call::{Cause, Request};
use crate::contract::metrics::{EventLog, NodeStats};
use crate::contract::state_series::StateSeries;
use crate::contract::validate::{Path, Validator};
use crate::sim::NodeId;
use crate::sim::time::{SimDuration, SimTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

    fn changed(
        &mut self,
        now: SimTime,
        state: Option<crate::components::resilience::policy::BreakerState>,
    ) {
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

    fn crash(&mut self, now: SimTime) {
        self.breaker = self.breaker.reset();
        self.events.record(now, "closed (crash reset)");
        self.state.set(now, 0);
    }

    fn report(&mut self, now: SimTime, mut counters: BTreeMap<String, f64>) -> NodeStats {
        counters.insert("failed_fast".to_string(), self.fast_failures as f64);
        counters.insert(
            "state_changes_dropped".to_string(),
            self.events.dropped() as f64,
        );
        NodeStats {
            counters,
            series: vec![self.state.finish("breaker_state", "Breaker state", now)],
            events: self.events.take(),
            ..NodeStats::default()
        }
    }
}
