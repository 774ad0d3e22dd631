//! `ReplicatedStore`: a key-value store replicated over `replicas` nodes, leaderless with
//! quorums (N, R, W), last writer wins on logical timestamps, read repair and anti-entropy.
//!
//! ```text
//!  client ─▶ store-i (coordinator for this op), two phases (ABD):
//!   query: own (stamp, value), Read ─▶ every peer ◀─ ReadReply ... until R replicas answered
//!   write: stamp = (max(Lamport counter, newest stamp seen) + 1, i), store locally,
//!          Write ─▶ every peer ◀─ WriteAck ... once W replicas (itself included) hold it
//!          ─▶ client Ok
//!   read:  if the R answers agree and W replicas hold the newest: ─▶ client Ok(newest);
//!          else (read repair) Write(newest) ─▶ every replica not known to hold it, and once
//!          W hold it ─▶ client Ok(newest)
//!   strict: fewer than W (R) replicas reachable ─▶ client Err(Unreachable) at once (CP)
//!   sloppy: the quorum shrinks to the replicas reachable, down to the coordinator alone (AP)
//!   no quorum within `timeout` ─▶ client Err(Timeout) (a write may have reached some replicas)
//!  anti-entropy: every `anti_entropy_interval`, push every key held to one random reachable
//!  peer, which keeps the newer stamp: replicas converge once a partition heals.
//! ```
//! The data and the Lamport counter are durable (they survive a crash); operations being
//! coordinated are lost in a crash and their clients time out. Replicas answer at once: the
//! latencies are the network's.
//!
//! At the end of the run each replica reports what it holds to the run-wide history, which
//! takes the newest version per key as the converged value to count lost writes against.

use crate::check::convergence::{self, Convergence};
use crate::check::history::{DEFAULT_MAX_OPS, History};
use crate::components::message::{Builtin, Ctx, Message};
use crate::components::replication::kv_client::default_history;
use crate::components::replication::leader_store::{
    LeaderFollowerConfig, LeaderStore, ReadFrom, Replication,
};
use crate::components::replication::msg::{ReplicaMsg, Stamp};
use crate::components::traffic::calls::CallTable;
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Op, Reply, Request, Response};
use crate::contract::metrics::NodeStats;
use crate::contract::validate::{Path, Validator};
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Replicas a store may have: per-operation bookkeeping keeps one bit per replica.
const MAX_REPLICAS: u32 = 64;

/// A replicated key-value store. `replicas: N` declares `name-0 .. name-(N-1)`; clients send
/// each operation to one replica, which coordinates it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "ReplicatedStore", deny_unknown_fields)]
pub struct ReplicatedStoreConfig {
    /// Number of replicas N (count, at most 64). Default 3.
    #[serde(default = "three")]
    pub replicas: u32,
    /// Replicas that must answer a read, R (count, coordinator included). Default 2.
    #[serde(default = "two")]
    pub read_quorum: u32,
    /// Replicas that must hold a write before it is acknowledged, W (count, coordinator
    /// included). Default 2.
    #[serde(default = "two")]
    pub write_quorum: u32,
    /// `false` (strict, CP): refuse an operation when fewer than max(R, W) replicas are
    /// reachable. `true` (sloppy,
    /// AP): shrink the quorum to the replicas reachable and serve anyway. Default false.
    #[serde(default)]
    pub sloppy: bool,
    /// A coordinator gives up on an operation whose quorum has not answered after this long
    /// (duration). Default "100ms".
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// Before answering a read whose quorum disagreed, write the newest value back to a write
    /// quorum (read repair; what makes reads linearizable). `false`: answer with the newest
    /// value at once and leave stale replicas to anti-entropy. Default true.
    #[serde(default = "yes")]
    pub read_repair: bool,
    /// Every this long each replica pushes all it holds to one random reachable peer
    /// (duration); `None` turns anti-entropy off. Default "500ms".
    #[serde(default = "default_anti_entropy")]
    pub anti_entropy_interval: Option<SimDuration>,
    /// The run-wide history the replicas report their final state to (the clients' `history`).
    /// Default "history".
    #[serde(default = "default_history")]
    pub history: String,
    /// `Leaderless` (the quorum store above; default) or `LeaderFollower(replication: Sync |
    /// SemiSync(acks: K) | Async(batch_interval: D) (default Sync), reads: Leader | Follower
    /// (default Leader), election_timeout_min: D (default "150ms"), election_timeout_max: D
    /// (default "300ms"), heartbeat_interval: D (default "50ms"), election: NAME (default
    /// "election"))`: one leader, elected Raft-style, orders the writes; `replicas`, `timeout`
    /// and `history` apply to both modes, the quorum options only to `Leaderless`.
    #[serde(default, skip_serializing_if = "StoreMode::is_leaderless")]
    pub mode: StoreMode,
}

/// How the replicas of a `ReplicatedStore` agree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum StoreMode {
    /// Every replica coordinates operations with quorums (N, R, W).
    #[default]
    Leaderless,
    /// One leader, elected Raft-style, orders every write; see `components::replication::leader_store`.
    LeaderFollower {
        /// When a write is acknowledged: `Sync` (every follower holds it), `SemiSync(acks: k)`
        /// (k followers hold it), `Async(batch_interval: "20ms")` (at once; the log ships to
        /// the followers in batches every interval). Default `Sync`.
        #[serde(default)]
        replication: Replication,
        /// `Leader` (the leader answers with the newest acknowledged value) or `Follower`
        /// (any replica answers from what it holds, possibly stale). Default `Leader`.
        #[serde(default)]
        reads: ReadFrom,
        /// Shortest election timeout: a follower that hears no leader for a random time in
        /// [min, max] stands for election (duration). Default "150ms".
        #[serde(default = "election_min")]
        election_timeout_min: SimDuration,
        /// Longest election timeout (duration). Default "300ms".
        #[serde(default = "election_max")]
        election_timeout_max: SimDuration,
        /// The leader's heartbeat period, below `election_timeout_min` (duration). Default
        /// "50ms".
        #[serde(default = "heartbeat")]
        heartbeat_interval: SimDuration,
        /// Name of the run-wide election checker (at most one leader per term, time without
        /// a leader). Default "election".
        #[serde(default = "election_name")]
        election: String,
    },
}

impl StoreMode {
    fn is_leaderless(&self) -> bool {
        *self == StoreMode::Leaderless
    }

    /// The leader/follower options, if this is that mode.
    pub fn leader_follower(&self) -> Option<LeaderFollowerConfig> {
        match self {
            StoreMode::Leaderless => None,
            StoreMode::LeaderFollower {
                replication,
                reads,
                election_timeout_min,
                election_timeout_max,
                heartbeat_interval,
                election,
            } => Some(LeaderFollowerConfig {
                replication: *replication,
                reads: *reads,
                election_timeout_min: *election_timeout_min,
                election_timeout_max: *election_timeout_max,
                heartbeat_interval: *heartbeat_interval,
                election: election.clone(),
            }),
        }
    }
}

fn election_min() -> SimDuration {
    SimDuration::from_millis(150)
}

fn election_max() -> SimDuration {
    SimDuration::from_millis(300)
}

fn heartbeat() -> SimDuration {
    SimDuration::from_millis(50)
}

fn election_name() -> String {
    "election".to_string()
}

fn three() -> u32 {
    3
}

fn two() -> u32 {
    2
}

fn yes() -> bool {
    true
}

fn default_timeout() -> SimDuration {
    SimDuration::from_millis(100)
}

fn default_anti_entropy() -> Option<SimDuration> {
    Some(SimDuration::from_millis(500))
}

crate::settable!(ReplicatedStoreConfig {
    replicas,
    read_quorum,
    write_quorum,
    sloppy,
    timeout,
    read_repair,
    anti_entropy_interval,
    history,
    mode
});

/// A problem unless `replicas` (the field at `at`) is from 1 to [`MAX_REPLICAS`].
pub(crate) fn check_replica_count(replicas: u32, v: &mut Validator, at: &Path) {
    if replicas == 0 || replicas > MAX_REPLICAS {
        v.error(
            &at.field("replicas"),
            format!("{replicas} replicas"),
            "expected a count from 1 to 64",
        );
    }
}

impl ReplicatedStoreConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        check_replica_count(self.replicas, v, at);
        for (field, q) in [
            ("read_quorum", self.read_quorum),
            ("write_quorum", self.write_quorum),
        ] {
            if q == 0 || q > self.replicas {
                v.error(
                    &at.field(field),
                    format!("a quorum of {q} out of {} replicas", self.replicas),
                    format!("expected a count from 1 to {}", self.replicas),
                );
            }
        }
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout fails every operation",
                "expected a positive duration",
            );
        }
        if let Some(lf) = self.mode.leader_follower() {
            lf.validate(self.replicas, v, &at.field("mode"));
        }
        if self.anti_entropy_interval == Some(SimDuration::ZERO) {
            v.error(
                &at.field("anti_entropy_interval"),
                "anti-entropy without pause",
                "expected a positive duration, or None",
            );
        }
    }
}

/// An operation this replica coordinates.
#[derive(Clone, Copy, Debug)]
struct Coord {
    client: NodeId,
    request: Request,
    /// In the second phase: storing the value on a write quorum.
    storing: bool,
    needed: u32,
    write_needed: u32,
    answers: u32,
    /// The newest (stamp, value) seen (reads) or written (writes).
    best: (Stamp, u64),
    /// Replicas (by index) that answered the query with something older than `best`.
    stale: u64,
    /// Replicas (by index) that answered the current phase.
    answered: u64,
    timer: Option<TimerId>,
}

/// Timer tags: anti-entropy, or the timeout of an operation (its `CallId`).
const TAG_ANTI_ENTROPY: u64 = 1 << 63;

/// One replica of a replicated store.
pub struct ReplicatedStore {
    cfg: ReplicatedStoreConfig,
    /// All replicas, by index; `me` is one of them.
    group: Vec<NodeId>,
    me: usize,
    data: BTreeMap<u64, (Stamp, u64)>,
    clock: u64,
    coords: CallTable<Coord>,
    rng: SimRng,
    history: Arc<Mutex<History>>,
    counters: [u64; 6],
    /// Ground truth for the time to converge after a heal (see `check/convergence.rs`).
    /// (Leaderless mode only: a leader/follower store keeps its replicas' logs in step.)
    convergence: Option<Arc<Mutex<Convergence>>>,
    /// The time of the event being handled, for the convergence hook in `apply`.
    now: SimTime,
    /// In `LeaderFollower` mode, the replica that does all the work.
    leader: Option<Box<LeaderStore>>,
}

const C_WRITES: usize = 0;
const C_READS: usize = 1;
const C_REFUSED: usize = 2;
const C_TIMED_OUT: usize = 3;
const C_REPAIRS: usize = 4;
const C_SYNCED: usize = 5;

impl ReplicatedStore {
    /// A replica built from its configuration.
    pub fn new(cfg: &ReplicatedStoreConfig, b: &BuildCtx<'_>) -> ReplicatedStore {
        let group = b.resolve(b.group());
        let me = group.iter().position(|&n| n == b.me()).unwrap_or(0);
        let history = b.observer(&cfg.history, || History::new(DEFAULT_MAX_OPS));
        let leader = cfg
            .mode
            .leader_follower()
            .map(|lf| Box::new(LeaderStore::new(lf, cfg.timeout, Arc::clone(&history), b)));
        ReplicatedStore {
            cfg: cfg.clone(),
            group: group.clone(),
            me,
            data: BTreeMap::new(),
            clock: 0,
            coords: CallTable::default(),
            rng: b.rng("anti-entropy"),
            history,
            counters: [0; 6],
            convergence: leader.is_none().then(|| convergence::observer(b, &group)),
            now: SimTime::ZERO,
            leader,
        }
    }

    fn index_of(&self, node: NodeId) -> Option<usize> {
        self.group.iter().position(|&n| n == node)
    }

    /// Keep `(stamp, value)` under `key` if it is newer than what is held.
    fn apply(&mut self, key: u64, stamp: Stamp, value: u64) -> bool {
        self.clock = self.clock.max(stamp.counter);
        let (held, old) = self.data.get(&key).copied().unwrap_or_default();
        if stamp > held {
            self.data.insert(key, (stamp, value));
            if let Some(c) = &self.convergence {
                let mut c = c.lock().expect("one thread per run");
                c.applied(self.now, self.me, key, (stamp.counter, stamp.node));
            }
            if old != 0 {
                let mut history = self.history.lock().expect("one thread per run");
                history.overwritten(old, value);
            }
            true
        } else {
            false
        }
    }

    fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        let me = self.group[self.me];
        self.group.iter().copied().filter(move |&n| n != me)
    }

    fn reply(ctx: &mut Ctx<'_>, to: NodeId, req: &Request, result: Result<Reply, Cause>) {
        let resp = Response {
            call: req.call,
            id: req.id,
            result,
        };
        ctx.send(to, Message::Response(resp));
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_>, from: NodeId, req: Request) {
        let reachable = 1 + self.peers().filter(|&p| ctx.reachable(p)).count() as u32;
        let quorum = |q: u32| if self.cfg.sloppy { q.min(reachable) } else { q };
        let (read_needed, write_needed) =
            (quorum(self.cfg.read_quorum), quorum(self.cfg.write_quorum));
        if reachable < read_needed.max(write_needed) {
            // Strict: both phases need their quorum, so refuse before changing anything.
            self.counters[C_REFUSED] += 1;
            Self::reply(ctx, from, &req, Err(Cause::Unreachable));
            return;
        }
        self.counters[match req.op {
            Op::Read => C_READS,
            Op::Write => C_WRITES,
        }] += 1;
        let mut coord = Coord {
            client: from,
            request: req,
            storing: false,
            needed: read_needed,
            write_needed,
            answers: 1,
            best: self.data.get(&req.key).copied().unwrap_or_default(),
            stale: 0,
            answered: 1 << self.me,
            timer: None,
        };
        if coord.answers >= coord.needed {
            self.queried(ctx, None, coord);
            return;
        }
        let timeout = self.cfg.timeout;
        let op = self.coords.open(ctx, |ctx, op| {
            coord.timer = Some(ctx.set_timer(timeout, op.0));
            coord
        });
        let msg = ReplicaMsg::Read { op, key: req.key };
        let peers: Vec<NodeId> = self.peers().collect();
        for p in peers {
            ctx.send(p, Message::Replica(msg));
        }
    }

    /// The query phase has its quorum: a write stamps its value above everything the quorum
    /// holds; a read whose quorum disagreed writes the newest value back. Either way the value
    /// is on a write quorum before the client hears back, which makes the store linearizable
    /// when R + W > N (the ABD algorithm).
    fn queried(&mut self, ctx: &mut Ctx<'_>, op: Option<CallId>, mut c: Coord) {
        let key = c.request.key;
        if c.request.op == Op::Write {
            self.clock = self.clock.max(c.best.0.counter) + 1;
            let stamp = Stamp {
                counter: self.clock,
                node: self.group[self.me].0,
            };
            self.apply(key, stamp, c.request.value);
            c.best = (stamp, c.request.value);
            c.answered = 1 << self.me;
        } else if !self.cfg.read_repair {
            // No write-back: answer with the newest value the read quorum holds.
            if let Some(op) = op {
                self.coords.close(op);
            }
            if let Some(t) = c.timer {
                ctx.cancel_timer(t);
            }
            self.complete(ctx, &c);
            return;
        } else {
            self.apply(key, c.best.0, c.best.1);
            c.answered &= !c.stale | 1 << self.me;
        }
        c.answers = c.answered.count_ones();
        c.needed = c.write_needed;
        c.storing = true;
        if c.answers >= c.needed {
            if let Some(op) = op {
                self.coords.close(op);
            }
            if let Some(t) = c.timer {
                ctx.cancel_timer(t);
            }
            self.complete(ctx, &c);
            return;
        }
        let op = match op {
            Some(op) => {
                *self.coords.get_mut(op).expect("the operation is open") = c;
                op
            }
            None => {
                let timeout = self.cfg.timeout;
                self.coords.open(ctx, |ctx, op| {
                    c.timer = Some(ctx.set_timer(timeout, op.0));
                    c
                })
            }
        };
        let (stamp, value) = c.best;
        let msg = ReplicaMsg::Write {
            op,
            key,
            value,
            stamp,
        };
        for i in (0..self.group.len()).filter(|i| c.answered >> i & 1 == 0) {
            if c.request.op == Op::Read {
                self.counters[C_REPAIRS] += 1;
            }
            ctx.send(self.group[i], Message::Replica(msg));
        }
    }

    /// The value is on a write quorum: answer the client.
    fn complete(&mut self, ctx: &mut Ctx<'_>, c: &Coord) {
        let (stamp, value) = c.best;
        let reply = Reply {
            value,
            version: stamp.counter,
            ..Reply::default()
        };
        Self::reply(ctx, c.client, &c.request, Ok(reply));
    }

    fn on_answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        op: CallId,
        held: Option<(Stamp, u64)>,
    ) {
        let Some(i) = self.index_of(from) else {
            return;
        };
        let Some(c) = self.coords.get_mut(op) else {
            return; // Late: the operation completed or timed out.
        };
        match (c.storing, held) {
            (false, Some(held)) => {
                if held.0 > c.best.0 {
                    c.stale |= c.answered;
                    c.best = held;
                } else if held.0 < c.best.0 {
                    c.stale |= 1 << i;
                }
            }
            (true, None) => {}
            // An answer from the other phase (a late read reply, an early ack): not counted.
            (false, None) | (true, Some(_)) => return,
        }
        if c.answered >> i & 1 == 1 {
            return;
        }
        c.answered |= 1 << i;
        c.answers += 1;
        if c.answers < c.needed {
            return;
        }
        let c = *c;
        if c.storing {
            self.coords.close(op);
            if let Some(t) = c.timer {
                ctx.cancel_timer(t);
            }
            self.complete(ctx, &c);
        } else {
            self.queried(ctx, Some(op), c);
        }
    }

    fn on_replica(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: ReplicaMsg) {
        match msg {
            ReplicaMsg::Write {
                op,
                key,
                value,
                stamp,
            } => {
                self.apply(key, stamp, value);
                ctx.send(from, Message::Replica(ReplicaMsg::WriteAck { op }));
            }
            ReplicaMsg::WriteAck { op } => self.on_answer(ctx, from, op, None),
            ReplicaMsg::Read { op, key } => {
                let (stamp, value) = self.data.get(&key).copied().unwrap_or_default();
                let msg = ReplicaMsg::ReadReply { op, value, stamp };
                ctx.send(from, Message::Replica(msg));
            }
            ReplicaMsg::ReadReply { op, value, stamp } => {
                self.on_answer(ctx, from, op, Some((stamp, value)))
            }
            // Leader/follower messages: not for a leaderless replica.
            ReplicaMsg::Raft(_) => {}
            ReplicaMsg::Repair { key, value, stamp } => {
                if self.apply(key, stamp, value) {
                    self.counters[C_SYNCED] += 1;
                }
            }
        }
    }

    fn anti_entropy(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(every) = self.cfg.anti_entropy_interval {
            ctx.set_timer(every, TAG_ANTI_ENTROPY);
        }
        let reachable: Vec<NodeId> = self.peers().filter(|&p| ctx.reachable(p)).collect();
        if reachable.is_empty() {
            return;
        }
        let to = reachable[self.rng.below(reachable.len() as u64) as usize];
        for (&key, &(stamp, value)) in &self.data {
            ctx.send(
                to,
                Message::Replica(ReplicaMsg::Repair { key, value, stamp }),
            );
        }
    }
}

impl Node<Builtin> for ReplicatedStore {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(l) = &mut self.leader {
            return l.on_start(ctx);
        }
        if let Some(every) = self.cfg.anti_entropy_interval {
            // Spread the replicas' rounds over the interval so they do not all push at once.
            let offset = SimDuration(self.rng.below(every.0.max(1)));
            ctx.set_timer(offset, TAG_ANTI_ENTROPY);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        self.now = ctx.now();
        if let Some(l) = &mut self.leader {
            match msg {
                Message::Request(req) => l.on_request(ctx, from, req),
                Message::Replica(ReplicaMsg::Raft(m)) => l.on_raft(ctx, from, m),
                _ => {}
            }
            return;
        }
        match msg {
            Message::Request(req) => self.on_request(ctx, from, req),
            Message::Replica(m) => self.on_replica(ctx, from, m),
            Message::Response(_)
            | Message::User(_)
            | Message::Txn(_)
            | Message::Stream(_)
            | Message::Purge(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: TimerId, tag: u64) {
        self.now = ctx.now();
        if let Some(l) = &mut self.leader {
            return l.on_timer(ctx, timer, tag);
        }
        if tag == TAG_ANTI_ENTROPY {
            self.anti_entropy(ctx);
        } else if let Some(c) = self.coords.close(CallId(tag)) {
            self.counters[C_TIMED_OUT] += 1;
            Self::reply(ctx, c.client, &c.request, Err(Cause::Timeout));
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        if let Some(l) = &mut self.leader {
            return l.on_crash(now);
        }
        // Data and clock are durable; operations being coordinated are lost.
        self.coords.clear();
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        if let Some(l) = &mut self.leader {
            return Some(l.finish(now));
        }
        let mut history = self.history.lock().expect("one thread per run");
        for (&key, &(stamp, value)) in &self.data {
            history.final_value(key, value, (stamp.counter, stamp.node as u64));
        }
        let names = [
            "writes_coordinated",
            "reads_coordinated",
            "refused_no_quorum",
            "timed_out_no_quorum",
            "read_repairs_sent",
            "updates_from_repair",
        ];
        Some(NodeStats::counters(
            names.iter().zip(self.counters).map(|(n, c)| (*n, c as f64)),
        ))
    }
}
