//! `Bulkhead`: a proxy that keeps at most `max_concurrent` calls in flight to its dependency
//! and fails the rest at once.

use crate::components::message::Ctx;
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

    fn crash(&mut self, now: SimTime) {
        self.in_flight.set(now, 0.0);
    }

    fn report(&mut self, now: SimTime, mut counters: BTreeMap<String, f64>) -> NodeStats {
        counters.insert("rejected".to_string(), self.rejected as f64);
        NodeStats {
            counters,
            series: vec![self.in_flight.finish(
                "bulkhead_in_flight",
                "Calls in flight through the bulkhead",
                "calls",
                now,
            )],
            ..NodeStats::default()
        }
    }
}
