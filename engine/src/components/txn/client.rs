//! `TxnClient`: users that run transactions over k participants through a coordinator.
//!
//! ```text
//!  arrival ─▶ pick k participants ─▶ coordinator reachable? ─no─▶ ends: Unreachable
//!                                        │ yes
//!                                        ▼
//!                       Begin + timeout ─▶ Outcome ─▶ ends: Ok (committed) or Aborted
//!                                    └──▶ timer fires ─▶ ends: Timeout
//! ```
//! A transaction is the client's end-to-end request: its latency and availability are the
//! run's request metrics, and an abort is a failure with cause `aborted`.

use super::checker::TxnChecker;
use super::coordinator::{checker, lock};
use super::{MAX_PARTICIPANTS, TAG_MASK, TAG_SHIFT, TxnMsg, txn_id};
use crate::components::message::{Builtin, Ctx, Message};
use crate::components::traffic::client::Arrival;
use crate::components::traffic::keys::{KeySampler, Keys};
use crate::contract::build::BuildCtx;
use crate::contract::call::Cause;
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::validate::{Path, Validator};
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How a transaction's participants are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Placement {
    /// k distinct participants, uniformly at random.
    Uniform,
    /// Each participant holds the keys hashing to it: draw keys from `keys` until k distinct
    /// participants are hit (skewed keys make some participants hot).
    ByKey,
}

/// Users that run transactions, each over `k` participants, through a coordinator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "TxnClient", deny_unknown_fields)]
pub struct TxnClientConfig {
    /// The `TxnCoordinator` node.
    pub coordinator: String,
    /// The `TxnParticipant` group (the same the coordinator names).
    pub participants: String,
    /// Participants per transaction (count, 1 ..= group size). Default 2.
    #[serde(default = "two")]
    pub k: u32,
    /// How participants are chosen. Default `Uniform`.
    #[serde(default = "uniform")]
    pub placement: Placement,
    /// Keys drawn for `ByKey` placement. Default `Uniform(count: 1000000)`.
    #[serde(default)]
    pub keys: Keys,
    /// How transactions arrive (open or closed loop).
    pub arrival: Arrival,
    /// Give up on a transaction after this long (duration). Default "1s".
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// Stop after this many transactions (count). Default `None`: until `duration`.
    #[serde(default)]
    pub max_requests: Option<u64>,
}

fn two() -> u32 {
    2
}

fn uniform() -> Placement {
    Placement::Uniform
}

fn default_timeout() -> SimDuration {
    SimDuration::from_secs(1)
}

crate::settable!(TxnClientConfig {
    coordinator,
    participants,
    k,
    placement,
    keys,
    arrival,
    timeout,
    max_requests
});

impl TxnClientConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        v.resolve(&at.field("coordinator"), &self.coordinator);
        let n = v
            .resolve(&at.field("participants"), &self.participants)
            .map(<[NodeId]>::len);
        if let Some(n) = n
            && (self.k == 0 || self.k as usize > n.min(MAX_PARTICIPANTS))
        {
            v.error(
                &at.field("k"),
                format!("k = {} with {n} participants", self.k),
                format!("expected 1 to {}", n.min(MAX_PARTICIPANTS)),
            );
        }
        self.arrival
            .validate(v, &at.field("arrival"), "transactions/s");
        if matches!(self.arrival, Arrival::Trace { .. }) {
            v.error(
                &at.field("arrival"),
                "a TxnClient does not replay traces",
                "expected `Poisson`, `Constant`, `Bursts`, `Shaped` or `Closed` (a `Client` replays traces)",
            );
        }
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout",
                "expected a positive duration",
            );
        }
        for (field, expected) in self.keys.problems() {
            v.error(&at.field("keys").field(field), "invalid keys", expected);
        }
    }
}

const TAG_ARRIVAL: u64 = 1 << TAG_SHIFT;
const TAG_THINK: u64 = 2 << TAG_SHIFT;
/// Draws of keys for `ByKey` placement before the remaining participants are picked uniformly.
const MAX_KEY_DRAWS_PER_PARTICIPANT: u32 = 16;

#[derive(Clone, Copy, Debug)]
struct Pending {
    issued_at: SimTime,
    timer: TimerId,
    user: u32,
}

/// One transaction client node.
pub struct TxnClient {
    cfg: TxnClientConfig,
    coordinator: NodeId,
    n_participants: u64,
    keys: KeySampler,
    arrivals: SimRng,
    pick_rng: SimRng,
    seed_rng: SimRng,
    me: u32,
    stop_at: SimTime,
    issued: u64,
    unreachable: u64,
    pending: BTreeMap<u64, Pending>,
    committed: Series,
    aborted: Series,
    late: u64,
    lost_in_crash: u64,
    checker: Arc<Mutex<TxnChecker>>,
}

impl TxnClient {
    /// A client built from its configuration.
    pub fn new(cfg: &TxnClientConfig, b: &BuildCtx<'_>) -> Self {
        TxnClient {
            cfg: cfg.clone(),
            coordinator: b.resolve(&cfg.coordinator)[0],
            n_participants: b.resolve(&cfg.participants).len() as u64,
            keys: cfg.keys.sampler(),
            arrivals: b.rng("arrivals"),
            pick_rng: b.rng("participants"),
            seed_rng: b.rng("work"),
            me: b.me().0,
            stop_at: b.arrivals_end(),
            issued: 0,
            unreachable: 0,
            pending: BTreeMap::new(),
            committed: Series::new(SeriesKind::Rate, b.window()),
            aborted: Series::new(SeriesKind::Rate, b.window()),
            late: 0,
            lost_in_crash: 0,
            checker: checker(b, &b.resolve(&cfg.participants)),
        }
    }

    fn may_issue(&self, now: SimTime) -> bool {
        now < self.stop_at && self.cfg.max_requests.is_none_or(|m| self.issued < m)
    }

    fn schedule_arrival(&mut self, ctx: &mut Ctx<'_>, tag: u64) {
        let gap = self
            .cfg
            .arrival
            .gap(&mut self.arrivals, ctx.now(), self.stop_at);
        if self.may_issue(ctx.now().after(gap)) {
            ctx.set_timer(gap, tag);
        }
    }

    /// The participant mask of a new transaction.
    fn pick(&mut self) -> u64 {
        let (n, k) = (
            self.n_participants,
            self.cfg.k.min(self.n_participants as u32),
        );
        let mut mask = 0u64;
        if self.cfg.placement == Placement::ByKey {
            for _ in 0..k * MAX_KEY_DRAWS_PER_PARTICIPANT {
                if mask.count_ones() == k {
                    break;
                }
                let key = self.keys.sample(&mut self.pick_rng);
                mask |= 1 << (crate::sim::rng::mix64(key) % n);
            }
        }
        while mask.count_ones() < k {
            mask |= 1 << self.pick_rng.below(n);
        }
        mask
    }

    fn issue(&mut self, ctx: &mut Ctx<'_>, user: u32) {
        self.issued += 1;
        ctx.request_started();
        let now = ctx.now();
        let parts = self.pick();
        let seed = self.seed_rng.next_u64();
        if !ctx.reachable(self.coordinator) {
            self.unreachable += 1;
            self.ended(ctx, now, Err(Cause::Unreachable));
            self.after_end(ctx, user);
            return;
        }
        let txn = txn_id(self.me, self.issued);
        let timer = ctx.set_timer(self.cfg.timeout, txn);
        let p = Pending {
            issued_at: now,
            timer,
            user,
        };
        self.pending.insert(txn, p);
        ctx.send(
            self.coordinator,
            Message::Txn(TxnMsg::Begin { txn, parts, seed }),
        );
    }

    fn ended(&mut self, ctx: &mut Ctx<'_>, issued_at: SimTime, result: Result<(), Cause>) {
        let now = ctx.now();
        match result {
            Ok(()) => self.committed.add(now, 1.0),
            Err(Cause::Aborted) => self.aborted.add(now, 1.0),
            Err(_) => {}
        }
        ctx.request_ended(issued_at, result);
    }

    fn end(&mut self, ctx: &mut Ctx<'_>, txn: u64, result: Result<(), Cause>) {
        let Some(p) = self.pending.remove(&txn) else {
            self.late += 1;
            return;
        };
        ctx.cancel_timer(p.timer);
        self.ended(ctx, p.issued_at, result);
        self.after_end(ctx, p.user);
    }

    fn after_end(&mut self, ctx: &mut Ctx<'_>, user: u32) {
        if matches!(self.cfg.arrival, Arrival::Closed { .. }) {
            self.schedule_arrival(ctx, TAG_THINK | user as u64);
        }
    }
}

impl Node<Builtin> for TxnClient {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        match self.cfg.arrival {
            Arrival::Closed { users, .. } => {
                for user in 0..users {
                    self.schedule_arrival(ctx, TAG_THINK | user as u64);
                }
            }
            Arrival::Poisson { .. }
            | Arrival::Constant { .. }
            | Arrival::Bursts { .. }
            | Arrival::Shaped { .. } => self.schedule_arrival(ctx, TAG_ARRIVAL),
            // Refused by validation.
            Arrival::Trace { .. } => {}
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, _from: NodeId, msg: Message) {
        if let Message::Txn(TxnMsg::Outcome { txn, committed }) = msg {
            let result = if committed {
                Ok(())
            } else {
                Err(Cause::Aborted)
            };
            self.end(ctx, txn, result);
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
            _ => self.end(ctx, tag, Err(Cause::Timeout)),
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        // The users are gone with the client: their transactions are abandoned, not ended.
        self.lost_in_crash += self.pending.len() as u64;
        self.pending.clear();
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        // One message per transaction that reached the network: its `Begin`.
        let begins = self.issued - self.unreachable;
        lock(&self.checker).sent(begins);
        let series = vec![
            self.committed
                .finish("txn_committed", "Transactions committed", "txn/s", now),
            self.aborted
                .finish("txn_aborted", "Transactions aborted", "txn/s", now),
        ];
        let mut stats = NodeStats::counters([
            ("issued", self.issued as f64),
            ("late_outcomes", self.late as f64),
            ("lost_in_crash", self.lost_in_crash as f64),
        ]);
        stats.series = series;
        Some(stats)
    }
}
