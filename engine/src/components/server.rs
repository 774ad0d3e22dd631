//! `Server`: a pool of identical replicas, each with workers and a FIFO queue.
//!
//! ```text
//!             ┌──────────── app-0 ────────────┐
//!  request ──▶│ queue (≤ queue_limit) ─▶ workers│──▶ response (Ok)
//!             │ full? ──────────────────────────│──▶ response (Err Rejected)
//!             └─────────────────────────────────┘
//! ```
//! A request that finds a free worker starts service at once; otherwise it waits in FIFO
//! order. Service time is drawn from `service_time` with the request's own `work` bits, so the
//! same request costs the same on every replica and in every variant, and is multiplied by the
//! slowdown factor in force when service starts. A crash loses the queue and the requests in
//! service (their callers time out); nothing is durable.

use crate::build::BuildCtx;
use crate::dist::Dist;
use crate::metrics::NodeStats;
use crate::results::ServerResult;
use crate::scenario::validate::{Path, Validator};
use crate::sim::message::{CallId, Cause, Message, NodeId, Reply, Request, RequestId, Response};
use crate::sim::rng::{WorkRng, stable_hash};
use crate::sim::time::SimTime;
use crate::sim::{Ctx, Node, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A pool of identical servers. `replicas: N` declares `name-0 .. name-(N-1)`; a client or load
/// balancer that names the pool reaches all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Server", deny_unknown_fields)]
pub struct ServerConfig {
    /// Number of identical replicas (count). Default 1.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Requests each replica serves in parallel (count). Default 1.
    #[serde(default = "one")]
    pub workers: u32,
    /// Requests that may wait for a worker (count); when full, new requests are rejected.
    /// Default `None`: unbounded, still subject to `limits.max_pending_events`.
    #[serde(default)]
    pub queue_limit: Option<u32>,
    /// Time one request occupies a worker (a distribution of durations).
    pub service_time: Dist,
}

fn one() -> u32 {
    1
}

crate::settable!(ServerConfig {
    replicas,
    workers,
    queue_limit,
    service_time
});

impl ServerConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.replicas == 0 {
            v.error(
                &at.field("replicas"),
                "a server pool needs at least one replica",
                "expected a count >= 1",
            );
        }
        if self.workers == 0 {
            v.error(
                &at.field("workers"),
                "a server needs at least one worker",
                "expected a count >= 1",
            );
        }
        v.check_dist(&at.field("service_time"), &self.service_time);
    }
}

#[derive(Clone, Copy, Debug)]
struct Job {
    from: NodeId,
    call: CallId,
    id: RequestId,
    work: u64,
}

/// One replica of a `Server` pool.
pub struct Server {
    cfg: ServerConfig,
    salt: u64,
    queue: VecDeque<Job>,
    in_service: Vec<Option<Job>>,
    free_workers: Vec<u32>,
    busy: u32,
    served: u64,
    rejected: u64,
    accounting: Accounting,
}

/// Time integrals of busy workers and queue length over the measured interval.
#[derive(Clone, Debug)]
struct Accounting {
    from: SimTime,
    to: SimTime,
    last: SimTime,
    busy_area: f64,
    queue_area: f64,
}

impl Accounting {
    /// Add the area since the last change, clipped to [from, to].
    fn advance(&mut self, now: SimTime, busy: u32, queued: usize) {
        let start = self.last.max(self.from);
        let end = now.min(self.to);
        if end > start {
            let dt = end.since(start).0 as f64;
            self.busy_area += dt * busy as f64;
            self.queue_area += dt * queued as f64;
        }
        self.last = now;
    }
}

impl Server {
    /// A replica built from its pool's configuration.
    pub fn new(cfg: &ServerConfig, b: &BuildCtx<'_>) -> Server {
        let workers = cfg.workers as usize;
        Server {
            cfg: cfg.clone(),
            // Salted by pool name, not replica name: every replica draws the same work.
            salt: stable_hash(b.group().as_bytes()),
            queue: VecDeque::new(),
            in_service: vec![None; workers],
            free_workers: (0..cfg.workers).rev().collect(),
            busy: 0,
            served: 0,
            rejected: 0,
            accounting: Accounting {
                from: b.measure_from(),
                to: b.arrivals_end(),
                last: SimTime::ZERO,
                busy_area: 0.0,
                queue_area: 0.0,
            },
        }
    }

    fn account(&mut self, now: SimTime) {
        self.accounting.advance(now, self.busy, self.queue.len());
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_>, from: NodeId, req: Request) {
        self.account(ctx.now());
        let job = Job {
            from,
            call: req.call,
            id: req.id,
            work: req.work,
        };
        if !self.free_workers.is_empty() {
            self.start(ctx, job);
            return;
        }
        let full = self
            .cfg
            .queue_limit
            .is_some_and(|limit| self.queue.len() >= limit as usize);
        if full {
            self.rejected += 1;
            let resp = Response {
                call: job.call,
                id: job.id,
                result: Err(Cause::Rejected),
            };
            ctx.send(from, Message::Response(resp));
            return;
        }
        self.queue.push_back(job);
        let bound = ctx.limits().max_pending_events;
        if self.queue.len() > bound {
            ctx.exceed_limit(
                "limits.max_pending_events",
                bound as u64,
                "an unbounded server queue grew past it; set `queue_limit`".to_string(),
            );
        }
    }

    fn start(&mut self, ctx: &mut Ctx<'_>, job: Job) {
        let worker = self
            .free_workers
            .pop()
            .expect("start is called only with a free worker");
        self.in_service[worker as usize] = Some(job);
        self.busy += 1;
        let base = self
            .cfg
            .service_time
            .sample(&mut WorkRng::new(job.work, self.salt));
        ctx.set_timer(base.scaled(ctx.slowdown()), worker as u64);
    }

    fn complete(&mut self, ctx: &mut Ctx<'_>, worker: u32) {
        self.account(ctx.now());
        let Some(job) = self.in_service[worker as usize].take() else {
            return;
        };
        self.busy -= 1;
        self.free_workers.push(worker);
        if ctx.now() >= self.accounting.from {
            self.served += 1;
        }
        let resp = Response {
            call: job.call,
            id: job.id,
            result: Ok(Reply::default()),
        };
        ctx.send(job.from, Message::Response(resp));
        if let Some(next) = self.queue.pop_front() {
            self.start(ctx, next);
        }
    }
}

impl Node for Server {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        match msg {
            Message::Request(req) => self.on_request(ctx, from, req),
            // A server calls no one, so answers and plug-in messages are not for it.
            Message::Response(_) | Message::User(_) | Message::Replica(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        self.complete(ctx, tag as u32);
    }

    fn on_crash(&mut self, now: SimTime) {
        self.account(now);
        self.queue.clear();
        self.in_service.iter_mut().for_each(|j| *j = None);
        self.free_workers = (0..self.cfg.workers).rev().collect();
        self.busy = 0;
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        self.account(now);
        let a = &self.accounting;
        let measured = a.to.since(a.from).0.max(1) as f64;
        Some(NodeStats {
            server: Some(ServerResult {
                name: String::new(),
                utilisation: a.busy_area / (measured * self.cfg.workers as f64),
                mean_queue_len: a.queue_area / measured,
                served: self.served,
                rejected: self.rejected,
            }),
            ..NodeStats::default()
        })
    }
}
