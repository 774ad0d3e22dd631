//! `KvClient`: users of a key-value store. Issues reads and writes open-loop, each write with a
//! value no other write uses (derived from the request id), and records every operation in the
//! run-wide [`History`] so the store can be checked for linearizability, stale reads and lost
//! writes.
//!
//! ```text
//!  arrival ─▶ key (Keys, or the hot key) + read/write ─▶ replica reachable? ─no─▶ failed
//!                                                         │ yes
//!            response Ok ─▶ ok (value read / written, serving replica)
//!            response Rejected/Unreachable ─▶ failed (the store changed nothing)
//!            response Timeout, or no answer in time ─▶ indeterminate (may have taken effect)
//! ```

use crate::check::history::{DEFAULT_MAX_OPS, History};
use crate::check::linearizability::{Kind, Operation};
use crate::components::message::{Builtin, Ctx, Message};
use crate::components::traffic::calls::CallTable;
use crate::components::traffic::client::Arrival;
use crate::components::traffic::keys::{KeySampler, Keys};
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Op, Request, RequestId, Response};
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::validate::{Path, Validator};
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Users of a key-value store whose every operation is recorded for the consistency checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "KvClient", deny_unknown_fields)]
pub struct KvClientConfig {
    /// Node or group the requests go to (the replicas this client can talk to); each request
    /// picks a reachable one at random.
    pub target: String,
    /// How requests arrive: `Poisson(rate: ..)` or `Constant(rate: ..)` (requests/s).
    pub arrival: Arrival,
    /// Give up on a request after this long (duration); its outcome is then indeterminate.
    /// Default "1s".
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// Which key each request touches. Default `Uniform(count: 1000)`.
    #[serde(default = "default_keys")]
    pub keys: Keys,
    /// Fraction of requests that go to key 0, the "celebrity" (0..1), on top of `keys`.
    /// Default 0.
    #[serde(default)]
    pub hot_key_fraction: f64,
    /// Fraction of requests that are writes (0..1). Default 0.5.
    #[serde(default = "half")]
    pub write_fraction: f64,
    /// Name of the run-wide history the operations go to (a store reporting its final state
    /// must use the same name). Default "history".
    #[serde(default = "default_history")]
    pub history: String,
    /// Most operations the history keeps (count, shared by all its clients); beyond it the
    /// checks cover the operations invoked before it filled, and say so. Default 200000.
    #[serde(default = "default_max_history")]
    pub max_history: u64,
}

fn default_timeout() -> SimDuration {
    SimDuration::from_secs(1)
}

fn default_keys() -> Keys {
    Keys::Uniform { count: 1000 }
}

fn half() -> f64 {
    0.5
}

pub(crate) fn default_history() -> String {
    "history".to_string()
}

fn default_max_history() -> u64 {
    DEFAULT_MAX_OPS as u64
}

crate::settable!(KvClientConfig {
    target,
    arrival,
    timeout,
    keys,
    hot_key_fraction,
    write_fraction,
    history,
    max_history
});

impl KvClientConfig {
    /// Check values the types cannot express, and that the target exists.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        v.resolve(&at.field("target"), &self.target);
        match &self.arrival {
            Arrival::Poisson { .. }
            | Arrival::Constant { .. }
            | Arrival::Bursts { .. }
            | Arrival::Shaped { .. } => {
                self.arrival.validate(v, &at.field("arrival"), "requests/s");
            }
            Arrival::Closed { .. } | Arrival::Trace { .. } => v.error(
                &at.field("arrival"),
                "a KvClient issues open-loop at a rate",
                "expected `Poisson(rate: ..)`, `Constant(rate: ..)`, `Bursts(..)` or `Shaped(..)`",
            ),
        }
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout fails every request",
                "expected a positive duration",
            );
        }
        for (field, expected) in self.keys.problems() {
            v.error(
                &at.field("keys").field(field),
                "invalid key distribution",
                expected,
            );
        }
        for (field, x) in [
            ("write_fraction", self.write_fraction),
            ("hot_key_fraction", self.hot_key_fraction),
        ] {
            if !(0.0..=1.0).contains(&x) {
                v.error(
                    &at.field(field),
                    format!("{x} is not a fraction"),
                    "expected a number from 0.0 to 1.0",
                );
            }
        }
        if self.max_history == 0 {
            v.error(
                &at.field("max_history"),
                "a history that keeps nothing checks nothing",
                "expected a count >= 1",
            );
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    invoke: SimTime,
    timer: TimerId,
    key: u64,
    write: bool,
    value: u64,
}

/// Timer tag of the arrival timer (call timers use their `CallId`, which never has this bit).
const TAG_ARRIVAL: u64 = 1 << 63;

/// One key-value client node.
pub struct KvClient {
    cfg: KvClientConfig,
    targets: Vec<NodeId>,
    candidates: Vec<NodeId>,
    keys: KeySampler,
    arrivals: SimRng,
    key_rng: SimRng,
    op_rng: SimRng,
    route_rng: SimRng,
    stop_at: SimTime,
    me: u32,
    id_base: u64,
    issued: u64,
    /// Requests abandoned by a crash: ended neither way, like a `Client`'s.
    lost_in_crash: u64,
    pending: CallTable<Pending>,
    history: Arc<Mutex<History>>,
    availability: Series,
    counts: [u64; 3],
}

impl KvClient {
    /// A client built from its configuration.
    pub fn new(cfg: &KvClientConfig, b: &BuildCtx<'_>) -> KvClient {
        let max = cfg.max_history as usize;
        KvClient {
            cfg: cfg.clone(),
            targets: b.resolve(&cfg.target),
            candidates: Vec::new(),
            keys: cfg.keys.sampler(),
            arrivals: b.rng("arrivals"),
            key_rng: b.rng("keys"),
            op_rng: b.rng("ops"),
            route_rng: b.rng("route"),
            stop_at: b.arrivals_end(),
            me: b.me().0,
            id_base: (b.me().0 as u64 + 1) << 40,
            issued: 0,
            lost_in_crash: 0,
            pending: CallTable::default(),
            history: b.observer(&cfg.history, || History::new(max)),
            availability: Series::new(SeriesKind::Mean, b.window()),
            counts: [0; 3],
        }
    }

    fn schedule_arrival(&mut self, ctx: &mut Ctx<'_>) {
        // Validation refuses closed loops: a KvClient issues open-loop.
        if matches!(self.cfg.arrival, Arrival::Closed { .. }) {
            return;
        }
        let gap = self
            .cfg
            .arrival
            .gap(&mut self.arrivals, ctx.now(), self.stop_at);
        if ctx.now().after(gap) < self.stop_at {
            ctx.set_timer(gap, TAG_ARRIVAL);
        }
    }

    fn pick_target(&mut self, ctx: &Ctx<'_>) -> Option<NodeId> {
        self.candidates.clear();
        self.candidates
            .extend(self.targets.iter().copied().filter(|&t| ctx.reachable(t)));
        match self.candidates.len() {
            0 => None,
            n => Some(self.candidates[self.route_rng.below(n as u64) as usize]),
        }
    }

    fn issue(&mut self, ctx: &mut Ctx<'_>) {
        self.issued += 1;
        ctx.request_started();
        let now = ctx.now();
        let hot =
            self.cfg.hot_key_fraction > 0.0 && self.key_rng.uniform() < self.cfg.hot_key_fraction;
        let key = if hot {
            0
        } else {
            self.keys.sample_at(&mut self.key_rng, now)
        };
        let write = self.op_rng.uniform() < self.cfg.write_fraction;
        let id = RequestId(self.id_base | self.issued);
        ctx.trace_start(id);
        let Some(target) = self.pick_target(ctx) else {
            ctx.trace_end(id, Err(Cause::Unreachable));
            self.ended(ctx, now, Err(Cause::Unreachable));
            self.history.lock().expect("one thread per run").failed();
            return;
        };
        let timeout = self.cfg.timeout;
        let call = self.pending.open(ctx, |ctx, call| Pending {
            invoke: now,
            timer: ctx.set_timer(timeout, call.0),
            key,
            write,
            value: id.0,
        });
        let req = Request {
            call,
            id,
            op: if write { Op::Write } else { Op::Read },
            key,
            value: id.0,
            work: id.0,
            attempt: 0,
            issued_at: now,
            ..Request::default()
        };
        ctx.send(target, Message::Request(req));
    }

    fn ended(&mut self, ctx: &mut Ctx<'_>, invoke: SimTime, result: Result<(), Cause>) {
        ctx.request_ended(invoke, result);
        self.availability
            .add(ctx.now(), f64::from(u8::from(result.is_ok())));
    }

    /// Close call `call` with `result` (the value read, on success), served by `server`.
    fn close(
        &mut self,
        ctx: &mut Ctx<'_>,
        call: CallId,
        result: Result<u64, Cause>,
        server: Option<NodeId>,
    ) {
        let Some(p) = self.pending.close(call) else {
            return;
        };
        ctx.cancel_timer(p.timer);
        self.ended(ctx, p.invoke, result.map(|_| ()));
        // A request's value is its id (see `issue`).
        ctx.trace_end(RequestId(p.value), result.map(|_| ()));
        let op = |value, complete| Operation {
            key: p.key,
            kind: if p.write { Kind::Write } else { Kind::Read },
            value,
            invoke: p.invoke.0,
            complete,
            client: self.me,
            server: server.map(|s| s.0),
        };
        let mut history = self.history.lock().expect("one thread per run");
        match result {
            Ok(read) => {
                self.counts[0] += 1;
                let value = if p.write { p.value } else { read };
                history.record(op(value, Some(ctx.now().0)));
            }
            // Refused before changing anything (by the store, a proxy or a limiter).
            Err(
                Cause::Rejected
                | Cause::Unreachable
                | Cause::RateLimited
                | Cause::CircuitOpen
                | Cause::Shed
                | Cause::Aborted,
            ) => {
                self.counts[1] += 1;
                history.failed();
            }
            // A server error may come after the write was applied: its outcome is unknown.
            Err(Cause::Timeout | Cause::ServerError) => {
                self.counts[2] += 1;
                history.record(op(p.value, None));
            }
        }
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_>, from: NodeId, resp: Response) {
        let result = resp.result.map(|r| r.value);
        self.close(ctx, resp.call, result, Some(from));
    }
}

impl Node<Builtin> for KvClient {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.schedule_arrival(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        match msg {
            Message::Response(resp) => self.on_response(ctx, from, resp),
            // Clients serve no one.
            Message::Request(_)
            | Message::User(_)
            | Message::Txn(_)
            | Message::Replica(_)
            | Message::Stream(_)
            | Message::Purge(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        if tag == TAG_ARRIVAL {
            self.issue(ctx);
            self.schedule_arrival(ctx);
        } else {
            self.close(ctx, CallId(tag), Err(Cause::Timeout), None);
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        // Abandoned requests are indeterminate, but their users are gone: nothing is recorded
        // in the history, and the runner's every-request-ends check counts them as lost.
        self.lost_in_crash += self.pending.clear() as u64;
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let mut counters = BTreeMap::from([
            ("issued".to_string(), self.issued as f64),
            ("ok".to_string(), self.counts[0] as f64),
            ("failed".to_string(), self.counts[1] as f64),
            ("indeterminate".to_string(), self.counts[2] as f64),
        ]);
        // Only when it happened, so reports of runs without a client crash keep their rows.
        if self.lost_in_crash > 0 {
            counters.insert("lost_in_crash".to_string(), self.lost_in_crash as f64);
        }
        let series = vec![self.availability.finish(
            "client_availability",
            "Availability seen by each client",
            "fraction ok",
            now,
        )];
        Some(NodeStats {
            counters,
            series,
            ..NodeStats::default()
        })
    }
}
