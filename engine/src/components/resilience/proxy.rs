//! What the protective proxies in front of a dependency share: `CircuitBreaker`,
//! `RateLimiter` and `Bulkhead` (one file each) forward what they admit the same way.
//!
//! ```text
//!  caller ──req──▶ proxy ── admitted? ──yes──▶ forward to `target` (a pool: a reachable
//!        ◀─resp───        │                     replica at random), relay its answer, or
//!                         │                     Err(Timeout) after `timeout`
//!                         └─no──▶ Err(CircuitOpen | RateLimited | Rejected) at once
//! ```
//! The three share the forwarding (`Forwarder`) and differ only in the admission rule
//! (`Admit`):
//! - `CircuitBreaker`: the breaker of `policy.rs`, fed by the forwarded calls' outcomes
//!   (an error answer, a timeout or an unreachable target is a failure); every state change
//!   is recorded with its time, and the state is a time series (0 closed, 1 half-open, 2 open).
//! - `RateLimiter`: one of five algorithms, globally, per request key or per calling node.
//! - `Bulkhead`: at most `max_concurrent` calls in flight to the dependency.

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::traffic::calls::{CallTable, Forwarded, answer, pick_reachable};
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Request};
use crate::contract::metrics::NodeStats;
use crate::contract::validate::{Path, Validator};
use crate::sim::rng::SimRng;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use std::collections::BTreeMap;

pub(super) fn one_s() -> SimDuration {
    SimDuration::from_secs(1)
}

pub(super) fn validate_forwarding(
    target: &str,
    timeout: SimDuration,
    v: &mut Validator,
    at: &Path,
) {
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
pub(super) struct Forwarder {
    targets: Vec<NodeId>,
    timeout: SimDuration,
    pending: CallTable<Forwarded>,
    rng: SimRng,
    candidates: Vec<NodeId>,
    /// Calls forwarded and not yet ended.
    pub(super) in_flight: u32,
    forwarded: u64,
    timeouts: u64,
}

impl Forwarder {
    pub(super) fn new(target: &str, timeout: SimDuration, b: &BuildCtx<'_>) -> Forwarder {
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
    pub(super) fn forward(
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
        let call = self.pending.open(ctx, |ctx, call| Forwarded {
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
pub(super) trait Admit {
    /// Let `req` through (after a delay) or refuse it with a cause.
    fn admit(&mut self, ctx: &Ctx<'_>, from: NodeId, req: &Request) -> Result<SimDuration, Cause>;
    /// The request admitted was forwarded (`Ok`), or failed at once for lack of a target.
    fn sent(&mut self, now: SimTime, sent: Result<(), Cause>);
    /// A forwarded call ended.
    fn outcome(&mut self, now: SimTime, result: Result<(), Cause>);
    fn forwarder(&mut self) -> &mut Forwarder;
    /// After each message: stop the run if the rule's state outgrew its bound.
    fn check_bounds(&mut self, _ctx: &mut Ctx<'_>) {}
    /// The proxy crashed (its forwarded calls are already forgotten): reset the rule.
    fn crash(&mut self, now: SimTime);
    /// End of the run: the rule's statistics, with the forwarding's `counters` added.
    fn report(&mut self, now: SimTime, counters: BTreeMap<String, f64>) -> NodeStats;
}

/// Every proxy is its forwarding plus its admission rule.
impl<P: Admit> Node<Builtin> for P {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        route(self, ctx, from, msg);
        self.check_bounds(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        timed_out(self, ctx, tag);
    }

    fn on_crash(&mut self, now: SimTime) {
        self.forwarder().crash();
        self.crash(now);
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let counters = self.forwarder().counters();
        Some(self.report(now, counters))
    }
}
