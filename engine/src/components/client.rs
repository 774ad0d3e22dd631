//! `Client`: the users. Issues requests open-loop (at a rate) or closed-loop (N users who
//! think between requests), times them out, and records every request's outcome.
//!
//! ```text
//!  arrival timer ─▶ issue ─▶ target reachable? ─no─▶ ends: Unreachable
//!                              │ yes
//!                              ▼
//!                     send + timeout timer ─▶ response ─▶ ends: Ok or the callee's cause
//!                                       └──▶ timer fires ─▶ ends: Timeout
//! ```
//! Every issued request ends exactly once; a late answer to a timed-out request is ignored.
//! Arrivals, keys, per-request work bits, read/write choices and replica choices come from
//! separate random streams of the client, so variants that share a seed see the same requests
//! at the same times even when they change one of the others.

use super::calls::CallTable;
use super::keys::{KeySampler, Keys};
use crate::build::BuildCtx;
use crate::dist::Dist;
use crate::metrics::NodeStats;
use crate::scenario::validate::{Path, Validator};
use crate::sim::message::{CallId, Cause, Message, NodeId, Op, Request, RequestId, Response};
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Ctx, Node, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How requests arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Arrival {
    /// Open loop, exponential gaps: `Poisson(rate: 8000.0)` (requests/s).
    Poisson {
        /// Mean arrival rate (requests/s).
        rate: f64,
    },
    /// Open loop, evenly spaced: `Constant(rate: 100.0)` (requests/s).
    Constant {
        /// Arrival rate (requests/s).
        rate: f64,
    },
    /// Closed loop: `Closed(users: 50, think_time: Exponential(mean: "100ms"))`. Each user
    /// waits for its answer (or timeout), thinks, then sends the next request.
    Closed {
        /// Number of concurrent users (count).
        users: u32,
        /// Pause between an answer and the user's next request (distribution of durations).
        think_time: Dist,
    },
}

/// Users that send requests to a node or group and measure what comes back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Client", deny_unknown_fields)]
pub struct ClientConfig {
    /// Node or group the requests go to; with several nodes, each request picks a reachable
    /// one at random.
    pub target: String,
    /// How requests arrive (open or closed loop).
    pub arrival: Arrival,
    /// Give up on a request after this long (duration). Default "1s".
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// Which key each request touches. Default `Uniform(count: 1000000)`.
    #[serde(default)]
    pub keys: Keys,
    /// Fraction of requests that are writes (0..1). Default 0.
    #[serde(default)]
    pub write_fraction: f64,
    /// Stop after issuing this many requests (count). Default `None`: issue until `duration`.
    #[serde(default)]
    pub max_requests: Option<u64>,
}

fn default_timeout() -> SimDuration {
    SimDuration::from_secs(1)
}

crate::settable!(ClientConfig {
    target,
    arrival,
    timeout,
    keys,
    write_fraction,
    max_requests
});

impl ClientConfig {
    /// Check values the types cannot express, and that the target exists.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        v.resolve(&at.field("target"), &self.target);
        match &self.arrival {
            Arrival::Poisson { rate } | Arrival::Constant { rate } => {
                let at = at.field("arrival").field("rate");
                v.check_positive(&at, *rate, "requests/s");
                if *rate > MAX_RATE_PER_S {
                    // Time has nanosecond resolution: faster arrivals would all land at once.
                    v.error(
                        &at,
                        format!("{rate} requests/s is faster than one per nanosecond"),
                        "expected a rate of at most 1e9 requests/s",
                    );
                }
            }
            Arrival::Closed { users, think_time } => {
                if *users == 0 {
                    v.error(
                        &at.field("arrival").field("users"),
                        "no users",
                        "expected a count >= 1",
                    );
                }
                v.check_dist(&at.field("arrival").field("think_time"), think_time);
                if think_time.mean_secs() <= 0.0 {
                    // Zero think time against an unreachable target would loop at one instant.
                    v.error(
                        &at.field("arrival").field("think_time"),
                        "users that never think send without pause",
                        "expected a think time with a positive mean",
                    );
                }
            }
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
        if !(0.0..=1.0).contains(&self.write_fraction) {
            v.error(
                &at.field("write_fraction"),
                format!("write fraction {} is not a fraction", self.write_fraction),
                "expected a number from 0.0 to 1.0",
            );
        }
    }
}

/// Simulated time counts nanoseconds, so no faster arrival rate can be represented.
const MAX_RATE_PER_S: f64 = 1e9;

/// Timer tags: the top two bits say what the timer is for.
const TAG_KIND_SHIFT: u32 = 62;
const TAG_ARRIVAL: u64 = 1 << TAG_KIND_SHIFT;
const TAG_THINK: u64 = 2 << TAG_KIND_SHIFT;
const TAG_MASK: u64 = (1 << TAG_KIND_SHIFT) - 1;

#[derive(Clone, Copy, Debug)]
struct Pending {
    issued_at: SimTime,
    timer: TimerId,
    user: u32,
}

/// One client node.
pub struct Client {
    cfg: ClientConfig,
    targets: Vec<NodeId>,
    candidates: Vec<NodeId>,
    keys: KeySampler,
    arrivals: SimRng,
    key_rng: SimRng,
    work_rng: SimRng,
    op_rng: SimRng,
    route_rng: SimRng,
    stop_at: SimTime,
    id_base: u64,
    issued: u64,
    pending: CallTable<Pending>,
    late: u64,
    lost_in_crash: u64,
}

impl Client {
    /// A client built from its configuration.
    pub fn new(cfg: &ClientConfig, b: &BuildCtx<'_>) -> Client {
        Client {
            cfg: cfg.clone(),
            targets: b.resolve(&cfg.target),
            candidates: Vec::new(),
            keys: cfg.keys.sampler(),
            arrivals: b.rng("arrivals"),
            key_rng: b.rng("keys"),
            work_rng: b.rng("work"),
            op_rng: b.rng("ops"),
            route_rng: b.rng("route"),
            stop_at: b.arrivals_end(),
            id_base: (b.me().0 as u64) << 40,
            issued: 0,
            pending: CallTable::default(),
            late: 0,
            lost_in_crash: 0,
        }
    }

    fn may_issue(&self, now: SimTime) -> bool {
        now < self.stop_at && self.cfg.max_requests.is_none_or(|m| self.issued < m)
    }

    fn next_gap(&mut self) -> SimDuration {
        match self.cfg.arrival {
            Arrival::Poisson { rate } => {
                SimDuration::from_secs_f64(-libm::log(self.arrivals.uniform_open0()) / rate)
            }
            Arrival::Constant { rate } => SimDuration::from_secs_f64(1.0 / rate),
            Arrival::Closed { ref think_time, .. } => think_time.sample(&mut self.arrivals),
        }
    }

    fn schedule_arrival(&mut self, ctx: &mut Ctx<'_>, tag: u64) {
        let gap = self.next_gap();
        if self.may_issue(ctx.now().after(gap)) {
            ctx.set_timer(gap, tag);
        }
    }

    fn pick_target(&mut self, ctx: &Ctx<'_>) -> Option<NodeId> {
        if let [only] = self.targets[..] {
            return ctx.reachable(only).then_some(only);
        }
        self.candidates.clear();
        self.candidates
            .extend(self.targets.iter().copied().filter(|&t| ctx.reachable(t)));
        match self.candidates.len() {
            0 => None,
            n => Some(self.candidates[self.route_rng.below(n as u64) as usize]),
        }
    }

    fn issue(&mut self, ctx: &mut Ctx<'_>, user: u32) {
        self.issued += 1;
        ctx.request_started();
        let now = ctx.now();
        let key = self.keys.sample(&mut self.key_rng);
        let write =
            self.cfg.write_fraction > 0.0 && self.op_rng.uniform() < self.cfg.write_fraction;
        let work = self.work_rng.next_u64();
        let Some(target) = self.pick_target(ctx) else {
            ctx.request_ended(now, Err(Cause::Unreachable));
            self.after_end(ctx, user);
            return;
        };
        let timeout = self.cfg.timeout;
        let call = self.pending.open(|call| Pending {
            issued_at: now,
            timer: ctx.set_timer(timeout, call.0),
            user,
        });
        let req = Request {
            call,
            id: RequestId(self.id_base | self.issued),
            op: if write { Op::Write } else { Op::Read },
            key,
            value: self.issued,
            work,
            issued_at: now,
        };
        ctx.send(target, Message::Request(req));
    }

    /// End the pending call `call` if it is still open; returns its user.
    fn end(&mut self, ctx: &mut Ctx<'_>, call: CallId, result: Result<(), Cause>) -> Option<u32> {
        let p = self.pending.close(call)?;
        // After a timeout this timer has already fired, and cancelling it does nothing.
        ctx.cancel_timer(p.timer);
        ctx.request_ended(p.issued_at, result);
        Some(p.user)
    }

    /// A closed-loop user thinks before its next request.
    fn after_end(&mut self, ctx: &mut Ctx<'_>, user: u32) {
        if matches!(self.cfg.arrival, Arrival::Closed { .. }) {
            self.schedule_arrival(ctx, TAG_THINK | user as u64);
        }
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_>, resp: Response) {
        let result = resp.result.map(|_| ());
        match self.end(ctx, resp.call, result) {
            Some(user) => self.after_end(ctx, user),
            None => self.late += 1,
        }
    }
}

impl Node for Client {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        match self.cfg.arrival {
            Arrival::Closed { users, .. } => {
                for user in 0..users {
                    self.schedule_arrival(ctx, TAG_THINK | user as u64);
                }
            }
            Arrival::Poisson { .. } | Arrival::Constant { .. } => {
                self.schedule_arrival(ctx, TAG_ARRIVAL)
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, _from: NodeId, msg: Message) {
        match msg {
            Message::Response(resp) => self.on_response(ctx, resp),
            // Clients serve no one.
            Message::Request(_) | Message::User(_) | Message::Replica(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        match tag & !TAG_MASK {
            TAG_ARRIVAL => {
                self.issue(ctx, 0);
                self.schedule_arrival(ctx, TAG_ARRIVAL);
            }
            TAG_THINK => {
                if self.may_issue(ctx.now()) {
                    self.issue(ctx, (tag & TAG_MASK) as u32);
                }
            }
            _ => {
                // The timer of a pending call: it timed out.
                if let Some(user) = self.end(ctx, CallId(tag), Err(Cause::Timeout)) {
                    self.after_end(ctx, user);
                }
            }
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        // The users behind a crashed client are gone with it: their pending requests are
        // abandoned (reported as `lost_in_crash`), and arrivals stop until the restart.
        self.lost_in_crash += self.pending.clear() as u64;
    }

    fn finish(&mut self, _now: SimTime) -> Option<NodeStats> {
        let counters = BTreeMap::from([
            ("issued".to_string(), self.issued as f64),
            ("late_responses".to_string(), self.late as f64),
            ("lost_in_crash".to_string(), self.lost_in_crash as f64),
        ]);
        Some(NodeStats {
            counters,
            ..NodeStats::default()
        })
    }
}
