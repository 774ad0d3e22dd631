//! Calls a server makes to other services while it handles a request: stages run in order,
//! the calls of one stage run in parallel, and a stage succeeds once `wait_for` of them have.
//!
//! ```text
//!  stage s: send one call to each service in `to` (a pool: one reachable replica at random)
//!           ok ≥ wait_for ─────────────▶ abandon the rest ─▶ stage s+1 (or done: Ok)
//!           failed > len − wait_for ───▶ abandon the rest ─▶ done: Err(cause of that failure)
//! ```
//! The calls carry the request's id, op, key and work bits, so a downstream server draws its
//! own service time for the same request, and idempotency keys see the same id.

use crate::components::message::{Ctx, Message};
use crate::components::traffic::calls::CallTable;
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Request};
use crate::contract::validate::{Path, Validator};
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::SimDuration;
use crate::sim::{NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One stage of a server's downstream calls: `(to: ["b", "c", "d"], wait_for: Some(2),
/// timeout: "100ms")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallStage {
    /// Services called at once, one call each (a pool name: one reachable replica at random).
    pub to: Vec<String>,
    /// Successful answers the stage waits for (count); the first ones win, the rest are
    /// abandoned. Default `None`: all of them.
    #[serde(default)]
    pub wait_for: Option<u32>,
    /// A call not answered within this long fails with cause `timeout` (duration). Default "1s".
    #[serde(default = "one_s")]
    pub timeout: SimDuration,
}

fn one_s() -> SimDuration {
    SimDuration::from_secs(1)
}

impl CallStage {
    /// Check the services exist and `wait_for` fits them.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        for (i, name) in self.to.iter().enumerate() {
            v.resolve(&at.field("to").index(i), name);
        }
        if self.to.is_empty() {
            v.error(
                &at.field("to"),
                "a stage that calls no one",
                "expected a list of node or group names",
            );
        }
        if let Some(k) = self.wait_for
            && (k == 0 || k as usize > self.to.len())
        {
            v.error(
                &at.field("wait_for"),
                format!("waiting for {k} of {} calls", self.to.len()),
                format!("expected a count from 1 to {}", self.to.len()),
            );
        }
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout fails every call",
                "expected a positive duration",
            );
        }
    }
}

struct Stage {
    /// Per service called, its replicas.
    targets: Vec<Vec<NodeId>>,
    need: u32,
    timeout: SimDuration,
}

#[derive(Clone, Debug, Default)]
struct Progress {
    stage: usize,
    ok: u32,
    failed: u32,
    last_error: Option<Cause>,
    open: Vec<CallId>,
}

/// A server's downstream calls in flight, per worker.
pub struct Downstream {
    stages: Vec<Stage>,
    calls: CallTable<(u32, TimerId)>,
    progress: Vec<Progress>,
    rng: SimRng,
    candidates: Vec<NodeId>,
    /// Calls sent and calls that failed (error answer or timeout), for the counters.
    pub sent: u64,
    /// Calls that failed.
    pub errors: u64,
}

/// Timer tags of call timeouts have the top bit set (worker timers are worker indices). A
/// `CallId`'s generation would need 2^31 reuses of one slot to reach that bit.
const CALL_TIMER: u64 = 1 << 63;

impl Downstream {
    /// The stages of `calls`, with names resolved.
    pub fn new(calls: &[CallStage], b: &BuildCtx<'_>) -> Downstream {
        Downstream {
            stages: calls
                .iter()
                .map(|c| Stage {
                    targets: c.to.iter().map(|name| b.resolve(name)).collect(),
                    need: c.wait_for.unwrap_or(c.to.len() as u32),
                    timeout: c.timeout,
                })
                .collect(),
            calls: CallTable::default(),
            progress: Vec::new(),
            rng: b.rng("downstream"),
            candidates: Vec::new(),
            sent: 0,
            errors: 0,
        }
    }

    /// The call whose timeout timer has `tag`, if it is one.
    pub fn timed_out_call(tag: u64) -> Option<CallId> {
        (tag & CALL_TIMER != 0).then_some(CallId(tag & !CALL_TIMER))
    }

    /// Start the calls of `worker`'s request `req`; returns the request's outcome if already
    /// decided (every call unreachable, or no stage waits).
    pub fn begin(
        &mut self,
        ctx: &mut Ctx<'_>,
        worker: u32,
        req: &Request,
    ) -> Option<Result<(), Cause>> {
        if self.progress.len() <= worker as usize {
            self.progress
                .resize(worker as usize + 1, Progress::default());
        }
        self.send_stage(ctx, worker, 0, req);
        self.advance(ctx, worker, req)
    }

    /// A call ended; returns the worker it belongs to, if it was still open.
    pub fn ended(
        &mut self,
        ctx: &mut Ctx<'_>,
        call: CallId,
        result: Result<(), Cause>,
    ) -> Option<u32> {
        let (worker, timer) = self.calls.close(call)?;
        ctx.cancel_timer(timer);
        let p = &mut self.progress[worker as usize];
        p.open.retain(|&c| c != call);
        match result {
            Ok(()) => p.ok += 1,
            Err(cause) => {
                self.errors += 1;
                p.failed += 1;
                p.last_error = Some(cause);
            }
        }
        Some(worker)
    }

    /// Move `worker`'s request on through its stages as far as the answers so far allow;
    /// returns its outcome once decided.
    pub fn advance(
        &mut self,
        ctx: &mut Ctx<'_>,
        worker: u32,
        req: &Request,
    ) -> Option<Result<(), Cause>> {
        loop {
            let p = &self.progress[worker as usize];
            let stage = &self.stages[p.stage];
            let n = stage.targets.len() as u32;
            let outcome = if p.ok >= stage.need {
                Ok(())
            } else if p.failed > n - stage.need {
                Err(p.last_error.unwrap_or(Cause::Unreachable))
            } else {
                return None;
            };
            self.abandon(ctx, worker);
            let next = self.progress[worker as usize].stage + 1;
            if outcome.is_err() || next == self.stages.len() {
                return Some(outcome);
            }
            self.send_stage(ctx, worker, next, req);
        }
    }

    fn send_stage(&mut self, ctx: &mut Ctx<'_>, worker: u32, stage: usize, req: &Request) {
        let p = &mut self.progress[worker as usize];
        p.stage = stage;
        p.ok = 0;
        p.failed = 0;
        p.last_error = None;
        for t in 0..self.stages[stage].targets.len() {
            let Some(to) = self.pick(ctx, stage, t) else {
                let p = &mut self.progress[worker as usize];
                p.failed += 1;
                p.last_error = Some(Cause::Unreachable);
                continue;
            };
            let timeout = self.stages[stage].timeout;
            let call = self.calls.open(ctx, |ctx, call| {
                (worker, ctx.set_timer(timeout, CALL_TIMER | call.0))
            });
            self.progress[worker as usize].open.push(call);
            self.sent += 1;
            ctx.send(to, Message::Request(Request { call, ..*req }));
        }
    }

    fn pick(&mut self, ctx: &Ctx<'_>, stage: usize, t: usize) -> Option<NodeId> {
        let replicas = &self.stages[stage].targets[t];
        if let [only] = replicas[..] {
            return ctx.reachable(only).then_some(only);
        }
        self.candidates.clear();
        self.candidates
            .extend(replicas.iter().copied().filter(|&r| ctx.reachable(r)));
        match self.candidates.len() {
            0 => None,
            n => Some(self.candidates[self.rng.below(n as u64) as usize]),
        }
    }

    /// Close the calls still open for `worker` (their answers will be ignored).
    fn abandon(&mut self, ctx: &mut Ctx<'_>, worker: u32) {
        let open = std::mem::take(&mut self.progress[worker as usize].open);
        for &call in &open {
            if let Some((_, timer)) = self.calls.close(call) {
                ctx.cancel_timer(timer);
            }
        }
        let mut open = open;
        open.clear();
        self.progress[worker as usize].open = open;
    }

    /// A crash: every call in flight is forgotten.
    pub fn clear(&mut self) {
        self.calls.clear();
        self.progress.iter_mut().for_each(|p| p.open.clear());
    }
}
