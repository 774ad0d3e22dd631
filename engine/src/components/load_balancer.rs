//! `LoadBalancer`: a proxy that spreads requests over backends by a chosen strategy.
//!
//! ```text
//!  client ──req──▶ LB ── pick a reachable backend ──req'──▶ backend
//!        ◀─resp──     ◀──────────────── resp' ───────────
//!                  no reachable backend ─▶ Err(Unreachable)
//!                  no answer in `timeout` ─▶ Err(Timeout)
//! ```
//! The LB keeps a table from its own outgoing call to the client's call, and counts the calls
//! outstanding at each backend (what LeastConnections and PowerOfTwoChoices compare). It skips
//! backends it cannot reach (crashed or partitioned away), as a proxy whose connections are
//! refused would.

use super::calls::CallTable;
use crate::build::BuildCtx;
use crate::metrics::NodeStats;
use crate::scenario::validate::{Path, Validator};
use crate::sim::message::{CallId, Cause, Message, NodeId, Request, RequestId, Response};
use crate::sim::rng::{RandomSource, SimRng, mix64, stable_hash};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Ctx, Node, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a load balancer picks a backend for each request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Strategy {
    /// Each backend in turn.
    RoundRobin,
    /// In turn, in proportion to the weights (smooth weighted round robin, as nginx does):
    /// `WeightedRoundRobin(weights: [3, 1, 1])`, one weight per backend replica.
    WeightedRoundRobin {
        /// One positive weight per backend replica, in order.
        weights: Vec<u32>,
    },
    /// A backend chosen uniformly at random.
    Random,
    /// The backend with the fewest outstanding calls (ties go round-robin).
    LeastConnections,
    /// Two distinct backends at random; the one with fewer outstanding calls wins.
    PowerOfTwoChoices,
    /// A hash ring over the request key with `vnodes` points per backend:
    /// `ConsistentHash(vnodes: 100)`. A key keeps its backend while that backend is reachable.
    ConsistentHash {
        /// Points on the ring per backend (count). Default 100.
        #[serde(default = "default_vnodes")]
        vnodes: u32,
    },
}

fn default_vnodes() -> u32 {
    100
}

/// A proxy that spreads requests over backends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "LoadBalancer", deny_unknown_fields)]
pub struct LoadBalancerConfig {
    /// How a backend is chosen for each request.
    pub strategy: Strategy,
    /// Nodes or groups to balance over; a group contributes all its replicas, in order.
    pub backends: Vec<String>,
    /// Answer the client with a timeout error if the backend has not answered after this long
    /// (duration). Default "1s".
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
}

fn default_timeout() -> SimDuration {
    SimDuration::from_secs(1)
}

crate::settable!(LoadBalancerConfig {
    strategy,
    backends,
    timeout
});

impl LoadBalancerConfig {
    /// Check backends exist and strategy parameters fit them.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        let mut n_backends = 0;
        for (i, b) in self.backends.iter().enumerate() {
            n_backends += v
                .resolve(&at.field("backends").index(i), b)
                .map_or(0, |ids| ids.len());
        }
        if self.backends.is_empty() {
            v.error(
                &at.field("backends"),
                "a load balancer needs backends",
                "expected a list of node or group names",
            );
        }
        match &self.strategy {
            Strategy::WeightedRoundRobin { weights } => {
                let at = at.field("strategy").field("weights");
                if weights.len() != n_backends && n_backends > 0 {
                    v.error(
                        &at,
                        format!(
                            "{} weights for {n_backends} backend replicas",
                            weights.len()
                        ),
                        format!("expected exactly {n_backends} weights, one per backend replica"),
                    );
                }
                if weights.contains(&0) {
                    v.error(&at, "a zero weight", "expected positive weights");
                }
            }
            Strategy::ConsistentHash { vnodes: 0 } => v.error(
                &at.field("strategy").field("vnodes"),
                "no points on the ring",
                "expected a count >= 1",
            ),
            _ => {}
        }
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout fails every request",
                "expected a positive duration",
            );
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    client: NodeId,
    client_call: CallId,
    id: RequestId,
    backend: u32,
    timer: TimerId,
}

/// One load balancer node.
pub struct LoadBalancer {
    strategy: Strategy,
    timeout: SimDuration,
    backends: Vec<NodeId>,
    names: Vec<String>,
    outstanding: Vec<u32>,
    forwarded: Vec<u64>,
    next: usize,
    wrr_current: Vec<i64>,
    ring: Vec<(u64, u32)>,
    rng: SimRng,
    pending: CallTable<Pending>,
    candidates: Vec<u32>,
    unreachable: u64,
    timeouts: u64,
}

impl LoadBalancer {
    /// A load balancer built from its configuration.
    pub fn new(cfg: &LoadBalancerConfig, b: &BuildCtx<'_>) -> LoadBalancer {
        let backends: Vec<NodeId> = cfg.backends.iter().flat_map(|n| b.resolve(n)).collect();
        let names: Vec<String> = backends
            .iter()
            .map(|&id| b.node_name(id).to_string())
            .collect();
        let ring = match cfg.strategy {
            Strategy::ConsistentHash { vnodes } => hash_ring(&names, vnodes),
            _ => Vec::new(),
        };
        LoadBalancer {
            strategy: cfg.strategy.clone(),
            timeout: cfg.timeout,
            outstanding: vec![0; backends.len()],
            forwarded: vec![0; backends.len()],
            wrr_current: vec![0; backends.len()],
            backends,
            names,
            next: 0,
            ring,
            rng: b.rng("choices"),
            pending: CallTable::default(),
            candidates: Vec::new(),
            unreachable: 0,
            timeouts: 0,
        }
    }

    /// Index of the chosen backend among those reachable now, if any.
    fn pick(&mut self, ctx: &Ctx<'_>, key: u64) -> Option<u32> {
        let n = self.backends.len();
        let reachable = |i: usize| ctx.reachable(self.backends[i]);
        match &self.strategy {
            Strategy::RoundRobin => {
                let i = (0..n)
                    .map(|k| (self.next + k) % n)
                    .find(|&i| reachable(i))?;
                self.next = (i + 1) % n;
                Some(i as u32)
            }
            Strategy::WeightedRoundRobin { weights } => {
                let mut total = 0i64;
                let mut best: Option<usize> = None;
                for i in (0..n).filter(|&i| reachable(i)) {
                    let w = weights.get(i).copied().unwrap_or(1) as i64;
                    self.wrr_current[i] += w;
                    total += w;
                    if best.is_none_or(|b| self.wrr_current[i] > self.wrr_current[b]) {
                        best = Some(i);
                    }
                }
                let b = best?;
                self.wrr_current[b] -= total;
                Some(b as u32)
            }
            Strategy::Random => {
                self.collect_reachable(ctx);
                let c = self.candidates.len() as u64;
                (c > 0).then(|| self.candidates[self.rng.below(c) as usize])
            }
            Strategy::LeastConnections => {
                let start = self.next;
                let i = (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&i| reachable(i))
                    .min_by_key(|&i| self.outstanding[i])?;
                self.next = (i + 1) % n;
                Some(i as u32)
            }
            Strategy::PowerOfTwoChoices => {
                self.collect_reachable(ctx);
                let c = self.candidates.len() as u64;
                match c {
                    0 => None,
                    1 => Some(self.candidates[0]),
                    _ => {
                        let a = self.rng.below(c);
                        let b = (a + 1 + self.rng.below(c - 1)) % c;
                        let (a, b) = (self.candidates[a as usize], self.candidates[b as usize]);
                        Some(
                            if self.outstanding[b as usize] < self.outstanding[a as usize] {
                                b
                            } else {
                                a
                            },
                        )
                    }
                }
            }
            Strategy::ConsistentHash { .. } => {
                let h = mix64(key ^ 0x5bd1_e995);
                let start = self.ring.partition_point(|&(p, _)| p < h);
                let len = self.ring.len();
                (0..len)
                    .map(|k| self.ring[(start + k) % len].1)
                    .find(|&i| reachable(i as usize))
            }
        }
    }

    fn collect_reachable(&mut self, ctx: &Ctx<'_>) {
        self.candidates.clear();
        for (i, &b) in self.backends.iter().enumerate() {
            if ctx.reachable(b) {
                self.candidates.push(i as u32);
            }
        }
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_>, from: NodeId, req: Request) {
        let Some(b) = self.pick(ctx, req.key) else {
            self.unreachable += 1;
            let resp = Response {
                call: req.call,
                id: req.id,
                result: Err(Cause::Unreachable),
            };
            ctx.send(from, Message::Response(resp));
            return;
        };
        let timeout = self.timeout;
        let call = self.pending.open(|call| Pending {
            client: from,
            client_call: req.call,
            id: req.id,
            backend: b,
            timer: ctx.set_timer(timeout, call.0),
        });
        self.outstanding[b as usize] += 1;
        self.forwarded[b as usize] += 1;
        ctx.send(
            self.backends[b as usize],
            Message::Request(Request { call, ..req }),
        );
    }

    /// Close the pending call; returns (client, client's call, request id).
    fn close(&mut self, ctx: &mut Ctx<'_>, call: CallId) -> Option<(NodeId, CallId, RequestId)> {
        let p = self.pending.close(call)?;
        // After a timeout this timer has already fired, and cancelling it does nothing.
        ctx.cancel_timer(p.timer);
        self.outstanding[p.backend as usize] -= 1;
        Some((p.client, p.client_call, p.id))
    }
}

/// Ring points for each backend, sorted; ties broken by backend index so the ring is the same
/// on every machine.
fn hash_ring(names: &[String], vnodes: u32) -> Vec<(u64, u32)> {
    let mut ring: Vec<(u64, u32)> = names
        .iter()
        .enumerate()
        .flat_map(|(i, name)| {
            (0..vnodes).map(move |v| (stable_hash(format!("{name}#{v}").as_bytes()), i as u32))
        })
        .collect();
    ring.sort_unstable();
    ring
}

impl Node for LoadBalancer {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        match msg {
            Message::Request(req) => self.on_request(ctx, from, req),
            Message::Response(resp) => {
                if let Some((client, call, id)) = self.close(ctx, resp.call) {
                    ctx.send(
                        client,
                        Message::Response(Response {
                            call,
                            id,
                            result: resp.result,
                        }),
                    );
                }
            }
            Message::User(_) | Message::Replica(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        if let Some((client, call, id)) = self.close(ctx, CallId(tag)) {
            self.timeouts += 1;
            ctx.send(
                client,
                Message::Response(Response {
                    call,
                    id,
                    result: Err(Cause::Timeout),
                }),
            );
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        self.pending.clear();
        self.outstanding.iter_mut().for_each(|o| *o = 0);
        self.wrr_current.iter_mut().for_each(|w| *w = 0);
    }

    fn finish(&mut self, _now: SimTime) -> Option<NodeStats> {
        let mut counters: BTreeMap<String, f64> = self
            .names
            .iter()
            .zip(&self.forwarded)
            .map(|(name, &n)| (format!("forwarded_to.{name}"), n as f64))
            .collect();
        counters.insert("no_backend_reachable".to_string(), self.unreachable as f64);
        counters.insert("backend_timeouts".to_string(), self.timeouts as f64);
        Some(NodeStats {
            counters,
            ..NodeStats::default()
        })
    }
}
