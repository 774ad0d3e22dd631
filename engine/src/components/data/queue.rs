//! `Queue`: a message broker with consumer groups, bounded or unbounded, delivering at least
//! once with redelivery after a visibility timeout.
//!
//! ```text
//!  producer ──Request──▶ queue ── full? ──▶ Err(rejected)        (backpressure)
//!                          │ else Ok, and one copy per consumer group:
//!                          ▼
//!        group "billing": ready ─▶ deliver to a consumer with room (≤ prefetch in flight)
//!                          ▲            │ Ok ─▶ acked (delivery latency = ack − enqueue)
//!                          │            │ Err ─▶ back to the queue
//!                          └─ visibility timeout without an answer: redeliver
//! ```
//!
//! Producers are clients (or any node) sending requests; the queue answers each at once. A
//! consumer is any node that answers requests (a `Server` pool): a delivery is a request, the
//! consumer's answer is the acknowledgement. A message stays in its group until acknowledged;
//! if no answer comes within `visibility_timeout` it goes back to the front of the queue and
//! is delivered again, so a consumer crash delays messages but never loses them. An answer
//! to a delivery that already timed out is a duplicate: the message was processed twice, as
//! at-least-once allows. A crash of the queue itself loses its messages (counted in
//! `messages_lost`) unless it keeps its state, in which case unacknowledged messages return
//! to the front of their queues.

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::traffic::calls::CallTable;
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Op, Reply, Request, RequestId, Response};
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::validate::{Path, Validator};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A consumer group: every group receives every message once (at least).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerGroup {
    /// Group name, used in counter and series names.
    pub name: String,
    /// The consuming node or pool (each member is one consumer).
    pub consumers: String,
    /// Deliveries one consumer may have unacknowledged at once (count). Default 1.
    #[serde(default = "one")]
    pub prefetch: u32,
}

/// A message broker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Queue", deny_unknown_fields)]
pub struct QueueConfig {
    /// Consumer groups, e.g. `[(name: "billing", consumers: "workers", prefetch: 2)]`: `name`
    /// (used in counter and series names), `consumers` (a node or pool; each member is one
    /// consumer) and `prefetch` (deliveries one consumer may have unacknowledged; default 1).
    pub groups: Vec<ConsumerGroup>,
    /// Most unacknowledged messages a group may hold (count); a producer's message is
    /// rejected when a group is full. Default `None`: unbounded (within
    /// `limits.max_pending_events`).
    #[serde(default)]
    pub capacity: Option<u32>,
    /// A delivery not acknowledged after this long is delivered again. Default "1s".
    #[serde(default = "default_visibility")]
    pub visibility_timeout: SimDuration,
}

fn one() -> u32 {
    1
}

fn default_visibility() -> SimDuration {
    SimDuration::from_secs(1)
}

crate::settable!(QueueConfig {
    groups,
    capacity,
    visibility_timeout
});

impl QueueConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.groups.is_empty() {
            v.error(
                &at.field("groups"),
                "a queue without consumer groups",
                "expected at least one group, e.g. [(name: \"main\", consumers: \"workers\")]",
            );
        }
        for (i, g) in self.groups.iter().enumerate() {
            let at = at.field("groups").index(i);
            v.resolve(&at.field("consumers"), &g.consumers);
            if g.prefetch == 0 {
                v.error(
                    &at.field("prefetch"),
                    "a zero prefetch",
                    "expected a count >= 1",
                );
            }
            if self.groups[..i].iter().any(|o| o.name == g.name) {
                v.error(
                    &at.field("name"),
                    format!("group \"{}\" twice", g.name),
                    "expected unique group names",
                );
            }
        }
        if self.capacity == Some(0) {
            v.error(
                &at.field("capacity"),
                "a queue that holds nothing",
                "expected a capacity >= 1",
            );
        }
        if self.visibility_timeout == SimDuration::ZERO {
            v.error(
                &at.field("visibility_timeout"),
                "a zero visibility timeout",
                "expected a positive duration such as \"1s\"",
            );
        }
    }
}

/// One message as a group holds it.
#[derive(Clone, Copy, Debug)]
struct Msg {
    id: RequestId,
    key: u64,
    work: u64,
    /// The producer's attempt tag: deliveries derive theirs from it.
    attempt: u32,
    /// Deliveries made so far: each is an execution of its own at the consumer.
    deliveries: u32,
    enqueued: SimTime,
}

#[derive(Clone, Copy, Debug)]
struct Delivery {
    group: u32,
    consumer: u32,
    msg: Msg,
    timer: TimerId,
}

struct Group {
    name: String,
    consumers: Vec<NodeId>,
    prefetch: u32,
    in_flight_per: Vec<u32>,
    in_flight: usize,
    ready: VecDeque<Msg>,
    next: usize,
    acked: u64,
    redelivered: u64,
    duplicates: u64,
    latency_sum_ms: f64,
    latency_max_ms: f64,
    lag: Series,
}

impl Group {
    fn backlog(&self) -> usize {
        self.ready.len() + self.in_flight
    }
}

/// One queue node.
pub struct Queue {
    cfg: QueueConfig,
    groups: Vec<Group>,
    calls: CallTable<Delivery>,
    accepted: u64,
    rejected: u64,
    messages_lost: u64,
    depth: Series,
    latency: Series,
    series_end: SimTime,
    /// A retry timer is set: messages wait because no consumer with room is reachable.
    retry_set: bool,
}

/// Timer tag of the retry when consumers were unreachable (deliveries use their `CallId`).
const TAG_RETRY: u64 = u64::MAX;

impl Queue {
    /// A queue built from its configuration.
    pub fn new(cfg: &QueueConfig, b: &BuildCtx<'_>) -> Queue {
        let groups = cfg
            .groups
            .iter()
            .map(|g| {
                let consumers = b.resolve(&g.consumers);
                Group {
                    name: g.name.clone(),
                    in_flight_per: vec![0; consumers.len()],
                    consumers,
                    prefetch: g.prefetch,
                    in_flight: 0,
                    ready: VecDeque::new(),
                    next: 0,
                    acked: 0,
                    redelivered: 0,
                    duplicates: 0,
                    latency_sum_ms: 0.0,
                    latency_max_ms: 0.0,
                    lag: Series::new(SeriesKind::Level, b.window()),
                }
            })
            .collect();
        Queue {
            cfg: cfg.clone(),
            groups,
            calls: CallTable::default(),
            accepted: 0,
            rejected: 0,
            messages_lost: 0,
            depth: Series::new(SeriesKind::Level, b.window()),
            latency: Series::new(SeriesKind::Mean, b.window()),
            series_end: b.arrivals_end(),
            retry_set: false,
        }
    }

    /// Record the levels after a change.
    fn levels(&mut self, now: SimTime) {
        let mut depth = 0;
        for g in &mut self.groups {
            g.lag.set(now, g.backlog() as f64);
            depth = depth.max(g.backlog());
        }
        self.depth.set(now, depth as f64);
    }

    fn on_produce(&mut self, ctx: &mut Ctx<'_>, from: NodeId, req: Request) {
        let full = self
            .cfg
            .capacity
            .is_some_and(|c| self.groups.iter().any(|g| g.backlog() >= c as usize));
        let result = if full {
            self.rejected += 1;
            Err(Cause::Rejected)
        } else {
            self.accepted += 1;
            let msg = Msg {
                id: req.id,
                key: req.key,
                work: req.work,
                attempt: req.attempt,
                deliveries: 0,
                enqueued: ctx.now(),
            };
            let mut grown = 0;
            for g in &mut self.groups {
                let before = g.ready.capacity();
                g.ready.push_back(msg);
                grown += (g.ready.capacity() - before) * std::mem::size_of::<Msg>();
            }
            let held: usize = self.groups.iter().map(Group::backlog).sum();
            if grown > 0 {
                let fix = "set `capacity` on it, or add consumers";
                ctx.charge_memory(grown, "unacknowledged messages", held, fix);
            }
            let limit = ctx.limits().max_pending_events;
            if held > limit {
                let detail = "an unbounded queue grew past it; set `capacity`".to_string();
                ctx.exceed_limit("limits.max_pending_events", limit as u64, detail);
            }
            Ok(Reply::default())
        };
        let resp = Response {
            call: req.call,
            id: req.id,
            result,
        };
        ctx.send(from, Message::Response(resp));
        for g in 0..self.groups.len() {
            self.dispatch(ctx, g);
        }
        self.levels(ctx.now());
    }

    /// Deliver ready messages of group `gi` to consumers with room, round robin.
    fn dispatch(&mut self, ctx: &mut Ctx<'_>, gi: usize) {
        let visibility = self.cfg.visibility_timeout;
        loop {
            let g = &mut self.groups[gi];
            if g.ready.is_empty() {
                return;
            }
            let n = g.consumers.len();
            let room = |c: &usize| g.in_flight_per[*c] < g.prefetch;
            let Some(c) = (0..n)
                .map(|k| (g.next + k) % n)
                .filter(room)
                .find(|&c| ctx.reachable(g.consumers[c]))
            else {
                // Consumers with room exist but cannot be reached (crashed, partitioned): try
                // again later, as a broker's reconnect loop would.
                if (0..n).any(|c| room(&c)) && !self.retry_set {
                    self.retry_set = true;
                    ctx.set_timer(
                        SimDuration(visibility.0 / 10).max(SimDuration(1)),
                        TAG_RETRY,
                    );
                }
                return;
            };
            g.next = (c + 1) % n;
            let Some(mut msg) = g.ready.pop_front() else {
                return;
            };
            // Every group's copy and every redelivery is an execution of its own.
            let copy = (gi as u64) << 32 | u64::from(msg.deliveries);
            msg.deliveries += 1;
            g.in_flight_per[c] += 1;
            g.in_flight += 1;
            let to = g.consumers[c];
            let call = self.calls.open(ctx, |ctx, call| Delivery {
                group: gi as u32,
                consumer: c as u32,
                msg,
                timer: ctx.set_timer(visibility, call.0),
            });
            let req = Request {
                call,
                id: msg.id,
                op: Op::Write,
                key: msg.key,
                value: 0,
                work: msg.work,
                attempt: crate::contract::call::attempt_tag(msg.attempt, copy),
                issued_at: msg.enqueued,
                ..Request::default()
            };
            ctx.send(to, Message::Request(req));
        }
    }

    /// A delivery ended: acknowledged (`ok`), refused or timed out (back to the queue).
    fn settle(&mut self, ctx: &mut Ctx<'_>, d: Delivery, ok: bool) {
        let now = ctx.now();
        let g = &mut self.groups[d.group as usize];
        g.in_flight_per[d.consumer as usize] -= 1;
        g.in_flight -= 1;
        if ok {
            g.acked += 1;
            let ms = now.since(d.msg.enqueued).as_millis_f64();
            g.latency_sum_ms += ms;
            g.latency_max_ms = g.latency_max_ms.max(ms);
            self.latency.add(now, ms);
        } else {
            g.redelivered += 1;
            g.ready.push_front(d.msg);
        }
        self.dispatch(ctx, d.group as usize);
        self.levels(now);
    }
}

impl Node<Builtin> for Queue {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        for g in 0..self.groups.len() {
            self.dispatch(ctx, g);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        match msg {
            Message::Request(req) => self.on_produce(ctx, from, req),
            Message::Response(resp) => match self.calls.close(resp.call) {
                Some(d) => {
                    ctx.cancel_timer(d.timer);
                    self.settle(ctx, d, resp.result.is_ok());
                }
                // The delivery timed out and went back to the queue: processed twice.
                None => {
                    if let Some(g) = self.groups.iter_mut().find(|g| g.consumers.contains(&from)) {
                        g.duplicates += 1;
                    }
                }
            },
            // Plug-in and protocol messages are not for a queue.
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        if tag == TAG_RETRY {
            self.retry_set = false;
            for g in 0..self.groups.len() {
                self.dispatch(ctx, g);
            }
        } else if let Some(d) = self.calls.close(CallId(tag)) {
            self.settle(ctx, d, false);
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        for g in &mut self.groups {
            self.messages_lost += g.backlog() as u64;
            g.ready.clear();
            g.in_flight = 0;
            g.in_flight_per.iter_mut().for_each(|n| *n = 0);
        }
        self.calls.clear();
        self.retry_set = false;
        self.levels(now);
    }

    fn on_crash_keep_state(&mut self, now: SimTime) {
        // The log survives: unacknowledged deliveries go back to the front, oldest first.
        let mut back = self.calls.drain();
        back.sort_by_key(|d| std::cmp::Reverse((d.msg.enqueued, d.msg.id)));
        for d in back {
            let g = &mut self.groups[d.group as usize];
            g.ready.push_front(d.msg);
        }
        for g in &mut self.groups {
            g.in_flight = 0;
            g.in_flight_per.iter_mut().for_each(|n| *n = 0);
        }
        self.retry_set = false;
        self.levels(now);
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let end = self.series_end.min(now);
        let mut stats = NodeStats::counters([
            ("accepted", self.accepted as f64),
            ("rejected", self.rejected as f64),
            ("messages_lost", self.messages_lost as f64),
        ]);
        for g in &mut self.groups {
            let n = &g.name;
            let mean = if g.acked == 0 {
                0.0
            } else {
                g.latency_sum_ms / g.acked as f64
            };
            for (k, v) in [
                ("acked", g.acked as f64),
                ("redelivered", g.redelivered as f64),
                ("duplicates", g.duplicates as f64),
                ("backlog_at_end", g.backlog() as f64),
                ("delivery_latency_mean_ms", mean),
                ("delivery_latency_max_ms", g.latency_max_ms),
            ] {
                stats.counters.insert(format!("{n}.{k}"), v);
            }
            let title = format!("Consumer lag of group {n} (unacknowledged messages)");
            stats.series.push(
                g.lag
                    .finish(&format!("consumer_lag.{n}"), &title, "messages", end),
            );
        }
        stats.series.push(self.depth.finish(
            "queue_depth",
            "Queue depth (largest group backlog)",
            "messages",
            end,
        ));
        stats.series.push(self.latency.finish(
            "delivery_latency",
            "Delivery latency (enqueue to acknowledgement)",
            "ms",
            end,
        ));
        Some(stats)
    }
}
