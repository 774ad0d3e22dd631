//! `Topic`: a partitioned, replicated log on a pool of brokers (Kafka-like). Producers send it
//! requests; consumers (`LogConsumer`) fetch from partition leaders in consumer groups that a
//! broker coordinates.
//!
//! ```text
//!  producer ─Request(key)─▶ any broker: partition = hash(key) mod P (KeyHash) or the next one
//!        (RoundRobin) ─▶ the partition's leader (broker p mod N) appends at the log end
//!           acks Leader: Ok at once
//!           acks All:    Ok once every in-sync follower holds it (the high watermark passed it)
//!  follower (the next RF-1 brokers) ─Fetch(replica)─▶ leader ─▶ entries ─▶ append, fetch again
//!  consumer ─Fetch─▶ leader ─▶ entries below the high watermark (or, after fetch_max_wait, none)
//!  in sync: a follower that held the whole log within the last replica_lag_max
//! ```
//! The logs and the groups' committed offsets are on disk: a broker crash keeps them, loses the
//! fetches it was holding and the producers it had not answered (they time out), and makes its
//! partitions unavailable until it restarts (leadership does not move to a follower). Entries
//! older than `retention` are deleted; a consumer that asks for one is moved to the oldest
//! entry kept, and the ones it skipped are lost. Every append, commit and rebalance is reported
//! to the run-wide [`StreamChecker`], which checks per-key order and counts duplicates, losses
//! and lag.

use crate::check::stream::{DEFAULT_MAX_KEYS, StreamChecker};
use crate::components::data::coordinator::GroupState;
use crate::components::data::stream_msg::{
    GroupSpec, LogEntry, StreamMsg, group_id, leader_of, replicas_of,
};
use crate::components::message::{Builtin, Ctx, Message};
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Reply, Request, RequestId, Response};
use crate::contract::metrics::NodeStats;
use crate::contract::validate::{Path, Validator};
use crate::sim::rng::mix64;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// How a broker picks the partition of a producer's event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Partitioner {
    /// hash(key) mod partitions: every event of a key goes to one partition, in order.
    KeyHash,
    /// The next partition in turn (per receiving broker): even load, no per-key order.
    RoundRobin,
}

/// When the leader answers the producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Acks {
    /// Once the leader appended it (Kafka `acks=1`).
    Leader,
    /// Once every in-sync replica holds it (Kafka `acks=all`, the default since 3.0).
    All,
}

/// A topic: partitions spread over brokers, each with a leader and followers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Topic", deny_unknown_fields)]
pub struct TopicConfig {
    /// Number of brokers (count); they are named `name-0 .. name-(N-1)`. Default 3.
    #[serde(default = "three")]
    pub brokers: u32,
    /// Number of partitions (count); partition p is led by broker p mod brokers. Default 6.
    #[serde(default = "six")]
    pub partitions: u32,
    /// Copies of each partition, leader included (count, at most `brokers`); the followers are
    /// the next brokers after the leader. Default 1.
    #[serde(default = "one")]
    pub replication_factor: u32,
    /// How an event's partition is chosen: `KeyHash` or `RoundRobin`. Default `KeyHash`.
    #[serde(default = "key_hash")]
    pub partitioner: Partitioner,
    /// When producers are answered: `Leader` or `All` (in-sync replicas). Default `All`.
    #[serde(default = "acks_all")]
    pub acks: Acks,
    /// A fetch with nothing to return waits this long for new events before answering empty
    /// (duration; Kafka `fetch.max.wait.ms`). Default "500ms".
    #[serde(default = "default_fetch_wait")]
    pub fetch_max_wait: SimDuration,
    /// A follower that has not held the whole log for this long drops out of the in-sync set
    /// (duration; Kafka `replica.lag.time.max.ms`). Default "30s".
    #[serde(default = "default_lag_max")]
    pub replica_lag_max: SimDuration,
    /// Events older than this are deleted (duration; bounds memory). Default "5min".
    #[serde(default = "default_retention")]
    pub retention: SimDuration,
    /// A follower whose leader is unreachable tries again after this long (duration). Default
    /// "100ms".
    #[serde(default = "default_backoff")]
    pub retry_backoff: SimDuration,
    /// Name of the run-wide checker of order, duplicates, losses and lag (consumers must use
    /// the same). Default "stream".
    #[serde(default = "default_checker")]
    pub checker: String,
}

fn one() -> u32 {
    1
}
fn three() -> u32 {
    3
}
fn six() -> u32 {
    6
}
fn key_hash() -> Partitioner {
    Partitioner::KeyHash
}
fn acks_all() -> Acks {
    Acks::All
}
fn default_fetch_wait() -> SimDuration {
    SimDuration::from_millis(500)
}
fn default_lag_max() -> SimDuration {
    SimDuration::from_secs(30)
}
fn default_retention() -> SimDuration {
    SimDuration::from_secs(300)
}
fn default_backoff() -> SimDuration {
    SimDuration::from_millis(100)
}
pub(crate) fn default_checker() -> String {
    "stream".to_string()
}

crate::settable!(TopicConfig {
    brokers,
    partitions,
    replication_factor,
    partitioner,
    acks,
    fetch_max_wait,
    replica_lag_max,
    retention,
    retry_backoff,
    checker
});

/// Most partitions a topic may have (a coordinator keeps a few words per partition per group).
const MAX_PARTITIONS: u32 = 10_000;

impl TopicConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        for (field, n, max) in [
            ("brokers", self.brokers, 1000),
            ("partitions", self.partitions, MAX_PARTITIONS),
        ] {
            if n == 0 || n > max {
                v.error(
                    &at.field(field),
                    format!("{n} {field}"),
                    format!("expected a count from 1 to {max}"),
                );
            }
        }
        if self.replication_factor == 0 || self.replication_factor > self.brokers {
            v.error(
                &at.field("replication_factor"),
                format!(
                    "replication factor {} with {} brokers",
                    self.replication_factor, self.brokers
                ),
                "expected a count from 1 to `brokers` (each copy on its own broker)",
            );
        }
        for (field, d) in [
            ("fetch_max_wait", self.fetch_max_wait),
            ("replica_lag_max", self.replica_lag_max),
            ("retention", self.retention),
            ("retry_backoff", self.retry_backoff),
        ] {
            if d == SimDuration::ZERO {
                v.error(
                    &at.field(field),
                    format!("a zero {field}"),
                    "expected a positive duration",
                );
            }
        }
    }
}

/// A producer waiting for its event to be replicated (acks All).
#[derive(Clone, Copy, Debug)]
struct AckWaiter {
    offset: u64,
    client: NodeId,
    call: CallId,
    id: RequestId,
}

/// A fetch held until there is something to return.
#[derive(Clone, Copy, Debug)]
struct Parked {
    id: u32,
    from: NodeId,
    offset: u64,
    max: u32,
    replica: bool,
    timer: TimerId,
}

/// A follower as its leader sees it.
#[derive(Clone, Copy, Debug)]
struct Follower {
    node: NodeId,
    /// It holds every entry below this offset.
    fetched: u64,
    /// The last time it held the whole log.
    caught_up_at: SimTime,
}

/// One partition's log on one broker (its leader or a follower).
struct PartitionLog {
    leader: NodeId,
    entries: VecDeque<LogEntry>,
    /// Offset of `entries[0]` (everything before was deleted by retention).
    start: u64,
    /// The next offset.
    end: u64,
    /// Entries below it are on every in-sync replica: consumers may see them.
    hw: u64,
    followers: Vec<Follower>,
    acks: VecDeque<AckWaiter>,
    parked: Vec<Parked>,
    next_park: u32,
    /// Leader: a timer to re-check the in-sync set is set. Follower: its fetch timer.
    timer: Option<TimerId>,
}

/// Timer tags: the kind in the top four bits, then a partition or group slot and a number.
const KIND_SHIFT: u32 = 60;
const PARK: u64 = 1 << KIND_SHIFT;
const ISR: u64 = 2 << KIND_SHIFT;
const FOLLOW: u64 = 3 << KIND_SHIFT;
const TICK: u64 = 4 << KIND_SHIFT;
const FORMED: u64 = 5 << KIND_SHIFT;
const LOW: u64 = (1 << 32) - 1;
/// Entries a follower fetches in one go.
const REPLICA_FETCH_MAX: u32 = 1024;

/// Counters the report shows.
#[derive(Clone, Debug, Default)]
struct Counts {
    produced: u64,
    forwarded: u64,
    refused: u64,
    fetched_by_consumers: u64,
    replicated: u64,
    deleted_by_retention: u64,
}

/// One broker of a topic.
pub struct Topic {
    cfg: TopicConfig,
    brokers: Vec<NodeId>,
    me: usize,
    logs: BTreeMap<u32, PartitionLog>,
    groups: Vec<GroupState>,
    next_rr: u32,
    checker: Arc<Mutex<StreamChecker>>,
    counts: Counts,
}

impl Topic {
    /// A broker built from its configuration.
    pub fn new(cfg: &TopicConfig, b: &BuildCtx<'_>) -> Topic {
        let brokers = b.resolve(b.group());
        let me = brokers.iter().position(|&n| n == b.me()).unwrap_or(0);
        let n = brokers.len();
        let mut logs = BTreeMap::new();
        for p in 0..cfg.partitions {
            let replicas: Vec<usize> = replicas_of(p, n, cfg.replication_factor).collect();
            if !replicas.contains(&me) {
                continue;
            }
            let leader = brokers[leader_of(p, n)];
            let followers = if leader == b.me() {
                replicas[1..]
                    .iter()
                    .map(|&r| Follower {
                        node: brokers[r],
                        fetched: 0,
                        caught_up_at: SimTime::ZERO,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            logs.insert(
                p,
                PartitionLog {
                    leader,
                    entries: VecDeque::new(),
                    start: 0,
                    end: 0,
                    hw: 0,
                    followers,
                    acks: VecDeque::new(),
                    parked: Vec::new(),
                    next_park: 0,
                    timer: None,
                },
            );
        }
        let (window, end) = (b.window(), b.arrivals_end());
        Topic {
            cfg: cfg.clone(),
            brokers,
            me,
            logs,
            groups: Vec::new(),
            next_rr: me as u32,
            checker: b.observer(&cfg.checker, || {
                StreamChecker::new(window, end, DEFAULT_MAX_KEYS)
            }),
            counts: Counts::default(),
        }
    }

    fn me_id(&self) -> NodeId {
        self.brokers[self.me]
    }

    fn checker(&self) -> std::sync::MutexGuard<'_, StreamChecker> {
        self.checker.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn respond(
        ctx: &mut Ctx<'_>,
        to: NodeId,
        call: CallId,
        id: RequestId,
        r: Result<Reply, Cause>,
    ) {
        let resp = Response {
            call,
            id,
            result: r,
        };
        ctx.send(to, Message::Response(resp));
    }

    /// A producer's event: pick its partition and hand it to the leader.
    fn on_produce(&mut self, ctx: &mut Ctx<'_>, from: NodeId, req: Request) {
        let parts = self.cfg.partitions;
        let p = match self.cfg.partitioner {
            Partitioner::KeyHash => (mix64(req.key) % u64::from(parts)) as u32,
            Partitioner::RoundRobin => {
                self.next_rr = (self.next_rr + 1) % parts;
                self.next_rr
            }
        };
        let leader = self.brokers[leader_of(p, self.brokers.len())];
        if leader == self.me_id() {
            self.append(ctx, p, from, req.call, req.id, req.key, req.work);
        } else if ctx.reachable(leader) {
            self.counts.forwarded += 1;
            let m = StreamMsg::Produce {
                partition: p,
                client: from,
                call: req.call,
                id: req.id,
                key: req.key,
                work: req.work,
            };
            ctx.send(leader, Message::Stream(m));
        } else {
            self.counts.refused += 1;
            Self::respond(ctx, from, req.call, req.id, Err(Cause::Unreachable));
        }
    }

    #[allow(clippy::too_many_arguments)] // the fields of one produce request
    fn append(
        &mut self,
        ctx: &mut Ctx<'_>,
        p: u32,
        client: NodeId,
        call: CallId,
        id: RequestId,
        key: u64,
        work: u64,
    ) {
        let now = ctx.now();
        let me = self.me_id();
        let Some(log) = self.logs.get_mut(&p).filter(|l| l.leader == me) else {
            self.counts.refused += 1;
            Self::respond(ctx, client, call, id, Err(Cause::Unreachable));
            return;
        };
        let offset = log.end;
        let seq = self
            .checker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(p, offset, key, now);
        // A follower waiting at the log end held the whole log until now.
        for park in log.parked.iter().filter(|k| k.replica) {
            if let Some(f) = log.followers.iter_mut().find(|f| f.node == park.from) {
                f.caught_up_at = now;
            }
        }
        log.entries.push_back(LogEntry {
            offset,
            key,
            seq,
            id,
            work,
            appended_at: now,
        });
        log.end += 1;
        self.counts.produced += 1;
        self.trim(ctx, p);
        let waiter = AckWaiter {
            offset,
            client,
            call,
            id,
        };
        match self.cfg.acks {
            Acks::Leader => Self::ack(ctx, waiter, p),
            Acks::All => {
                if let Some(log) = self.logs.get_mut(&p) {
                    log.acks.push_back(waiter);
                }
            }
        }
        self.advance(ctx, p);
    }

    fn ack(ctx: &mut Ctx<'_>, w: AckWaiter, p: u32) {
        let reply = Reply {
            value: w.offset,
            version: u64::from(p),
            ..Reply::default()
        };
        Self::respond(ctx, w.client, w.call, w.id, Ok(reply));
    }

    /// Delete entries older than the retention; check the memory bound.
    fn trim(&mut self, ctx: &mut Ctx<'_>, p: u32) {
        let now = ctx.now();
        let retention = self.cfg.retention;
        if let Some(log) = self.logs.get_mut(&p) {
            while log
                .entries
                .front()
                .is_some_and(|e| now.since(e.appended_at) > retention)
            {
                log.entries.pop_front();
                log.start += 1;
                self.counts.deleted_by_retention += 1;
            }
        }
        let held: usize = self.logs.values().map(|l| l.entries.len()).sum();
        let limit = ctx.limits().max_pending_events;
        if held > limit {
            let detail = format!(
                "broker {} holds {held} events; shorten the topic's `retention`",
                self.me
            );
            ctx.exceed_limit("limits.max_pending_events", limit as u64, detail);
        }
    }

    /// Recompute the high watermark, answer producers it covers and serve waiting fetches.
    fn advance(&mut self, ctx: &mut Ctx<'_>, p: u32) {
        let now = ctx.now();
        let lag_max = self.cfg.replica_lag_max;
        let Some(log) = self.logs.get_mut(&p) else {
            return;
        };
        let in_sync = log
            .followers
            .iter()
            .filter(|f| now.since(f.caught_up_at) <= lag_max)
            .map(|f| f.fetched);
        log.hw = log.hw.max(in_sync.fold(log.end, u64::min));
        while let Some(w) = log.acks.front().copied().filter(|w| w.offset < log.hw) {
            log.acks.pop_front();
            Self::ack(ctx, w, p);
        }
        // Followers still in sync that lag will drop out at the latest then: check again.
        if !log.acks.is_empty() && log.timer.is_none() {
            log.timer = Some(ctx.set_timer(lag_max, ISR | u64::from(p)));
        }
        let ready: Vec<Parked> = log
            .parked
            .iter()
            .filter(|k| k.offset < if k.replica { log.end } else { log.hw })
            .copied()
            .collect();
        for k in ready {
            ctx.cancel_timer(k.timer);
            self.answer_fetch(ctx, p, k.id, k.from, k.offset, k.max, k.replica);
        }
    }

    /// A fetch from a follower (`replica`) or a consumer.
    #[allow(clippy::too_many_arguments)] // the fields of one fetch request
    fn on_fetch(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        p: u32,
        offset: u64,
        max: u32,
        replica: bool,
    ) {
        let now = ctx.now();
        let me = self.me_id();
        let Some(log) = self.logs.get_mut(&p).filter(|l| l.leader == me) else {
            return; // not for this broker: the fetcher times out and asks again
        };
        if replica {
            if let Some(f) = log.followers.iter_mut().find(|f| f.node == from) {
                f.fetched = f.fetched.max(offset);
                if offset >= log.end {
                    f.caught_up_at = now;
                }
            }
            self.advance(ctx, p);
        }
        let Some(log) = self.logs.get_mut(&p) else {
            return;
        };
        let limit = if replica { log.end } else { log.hw };
        if offset < log.start || offset < limit {
            let id = log.next_park;
            log.next_park = log.next_park.wrapping_add(1);
            self.answer_fetch(ctx, p, id, from, offset, max, replica);
            return;
        }
        let id = log.next_park;
        log.next_park = log.next_park.wrapping_add(1);
        let tag = PARK | (u64::from(p) << 32) | u64::from(id);
        let timer = ctx.set_timer(self.cfg.fetch_max_wait, tag);
        log.parked.push(Parked {
            id,
            from,
            offset,
            max,
            replica,
            timer,
        });
    }

    /// Answer fetch `id` (parked or not) with what there is.
    #[allow(clippy::too_many_arguments)] // the fields of one fetch request
    fn answer_fetch(
        &mut self,
        ctx: &mut Ctx<'_>,
        p: u32,
        id: u32,
        to: NodeId,
        offset: u64,
        max: u32,
        replica: bool,
    ) {
        let Some(log) = self.logs.get_mut(&p) else {
            return;
        };
        log.parked.retain(|k| k.id != id);
        let from = offset.max(log.start);
        let limit = if replica { log.end } else { log.hw };
        let upto = limit.min(from.saturating_add(u64::from(max)));
        let entries: Vec<LogEntry> = (from..upto)
            .map(|o| log.entries[(o - log.start) as usize])
            .collect();
        let next = upto.max(from);
        match replica {
            true => self.counts.replicated += entries.len() as u64,
            false => self.counts.fetched_by_consumers += entries.len() as u64,
        }
        let m = StreamMsg::Fetched {
            partition: p,
            asked: offset,
            next,
            entries,
        };
        ctx.send(to, Message::Stream(m));
    }

    /// A follower asks its leader for what it lacks (or tries again later).
    fn follow(&mut self, ctx: &mut Ctx<'_>, p: u32) {
        let wait = self.cfg.fetch_max_wait;
        let backoff = self.cfg.retry_backoff;
        let Some(log) = self.logs.get_mut(&p) else {
            return;
        };
        if let Some(t) = log.timer.take() {
            ctx.cancel_timer(t);
        }
        let after = if ctx.reachable(log.leader) {
            let m = StreamMsg::Fetch {
                partition: p,
                offset: log.end,
                max: REPLICA_FETCH_MAX,
                replica: true,
            };
            ctx.send(log.leader, Message::Stream(m));
            // No answer by then (the leader crashed holding it): ask again.
            SimDuration(wait.0 * 2 + backoff.0)
        } else {
            backoff
        };
        log.timer = Some(ctx.set_timer(after, FOLLOW | u64::from(p)));
    }

    /// A follower received entries from its leader.
    fn on_fetched(&mut self, ctx: &mut Ctx<'_>, p: u32, asked: u64, entries: Vec<LogEntry>) {
        let me = self.me_id();
        let Some(log) = self
            .logs
            .get_mut(&p)
            .filter(|l| l.leader != me && asked == l.end)
        else {
            return; // a late answer to a fetch asked again since
        };
        if let Some(first) = entries.first()
            && first.offset > log.end
        {
            // What it lacked was deleted by retention on the leader: start over from there.
            log.entries.clear();
            log.start = first.offset;
            log.end = first.offset;
        }
        for e in entries {
            if e.offset == log.end {
                log.entries.push_back(e);
                log.end += 1;
            }
        }
        if log.entries.is_empty() {
            log.start = log.end;
        }
        self.trim(ctx, p);
        self.follow(ctx, p);
    }

    fn group_slot(&self, id: u64) -> Option<usize> {
        self.groups.iter().position(|g| g.id == id)
    }

    fn on_join(&mut self, ctx: &mut Ctx<'_>, from: NodeId, spec: GroupSpec, inc: u32) {
        let id = group_id(&spec.name);
        let slot = match self.group_slot(id) {
            Some(s) => s,
            None => {
                let check = self.checker().group(&spec.name, spec.idempotent);
                let delay = spec.initial_rebalance_delay;
                self.groups
                    .push(GroupState::new(id, spec, self.cfg.partitions, check));
                let slot = self.groups.len() - 1;
                ctx.set_timer(delay, FORMED | slot as u64);
                slot
            }
        };
        if !self.groups[slot].ticking {
            self.groups[slot].ticking = true;
            let every = self.groups[slot].spec().heartbeat_interval;
            ctx.set_timer(every, TICK | slot as u64);
        }
        let checker = Arc::clone(&self.checker);
        let mut c = checker.lock().unwrap_or_else(|e| e.into_inner());
        self.groups[slot].join(ctx, &mut c, from, inc);
    }

    fn on_group_msg(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: StreamMsg) {
        let group = match &msg {
            StreamMsg::Heartbeat { group, .. }
            | StreamMsg::Revoked { group, .. }
            | StreamMsg::Commit { group, .. } => *group,
            _ => return,
        };
        let Some(slot) = self.group_slot(group) else {
            return; // not known here yet: the member's heartbeats go unanswered and it rejoins
        };
        if !self.groups[slot].ticking {
            self.groups[slot].ticking = true;
            let every = self.groups[slot].spec().heartbeat_interval;
            ctx.set_timer(every, TICK | slot as u64);
        }
        let checker = Arc::clone(&self.checker);
        let mut c = checker.lock().unwrap_or_else(|e| e.into_inner());
        let g = &mut self.groups[slot];
        match msg {
            StreamMsg::Heartbeat {
                incarnation,
                generation,
                ..
            } => g.heartbeat(ctx, &mut c, from, incarnation, generation),
            StreamMsg::Revoked {
                incarnation,
                positions,
                ..
            } => g.revoked(ctx, &mut c, from, incarnation, &positions),
            StreamMsg::Commit {
                incarnation,
                partition,
                offset,
                ..
            } => g.commit(ctx, &mut c, from, incarnation, partition, offset),
            _ => {}
        }
    }

    fn on_stream(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: StreamMsg) {
        match msg {
            StreamMsg::Produce {
                partition,
                client,
                call,
                id,
                key,
                work,
            } => self.append(ctx, partition, client, call, id, key, work),
            StreamMsg::Fetch {
                partition,
                offset,
                max,
                replica,
            } => self.on_fetch(ctx, from, partition, offset, max, replica),
            StreamMsg::Fetched {
                partition,
                asked,
                entries,
                ..
            } => self.on_fetched(ctx, partition, asked, entries),
            StreamMsg::Join { spec, incarnation } => self.on_join(ctx, from, *spec, incarnation),
            m @ (StreamMsg::Heartbeat { .. }
            | StreamMsg::Revoked { .. }
            | StreamMsg::Commit { .. }) => self.on_group_msg(ctx, from, m),
            // What coordinators send consumers is not for a broker.
            StreamMsg::HeartbeatAck { .. }
            | StreamMsg::Revoke { .. }
            | StreamMsg::Assign { .. } => {}
        }
    }

    fn on_group_timer(&mut self, ctx: &mut Ctx<'_>, kind: u64, slot: usize) {
        let checker = Arc::clone(&self.checker);
        let mut c = checker.lock().unwrap_or_else(|e| e.into_inner());
        let Some(g) = self.groups.get_mut(slot) else {
            return;
        };
        if kind == FORMED {
            g.formed(ctx, &mut c);
            return;
        }
        g.tick(ctx, &mut c);
        let every = g.spec().heartbeat_interval;
        ctx.set_timer(every, TICK | slot as u64);
    }
}

impl Node<Builtin> for Topic {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        let me = self.me_id();
        let followed: Vec<u32> = self
            .logs
            .iter()
            .filter(|(_, l)| l.leader != me)
            .map(|(&p, _)| p)
            .collect();
        for p in followed {
            self.follow(ctx, p);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        match msg {
            Message::Request(req) => self.on_produce(ctx, from, req),
            Message::Stream(m) => self.on_stream(ctx, from, m),
            // Responses, plug-in and other protocols' messages are not for a broker.
            Message::Response(_)
            | Message::User(_)
            | Message::Txn(_)
            | Message::Replica(_)
            | Message::Purge(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        let kind = tag & !((1 << KIND_SHIFT) - 1);
        let p = ((tag >> 32) & ((1 << 28) - 1)) as u32;
        match kind {
            PARK => {
                let id = (tag & LOW) as u32;
                let found = self
                    .logs
                    .get(&p)
                    .and_then(|l| l.parked.iter().find(|k| k.id == id).copied());
                if let Some(k) = found {
                    self.answer_fetch(ctx, p, k.id, k.from, k.offset, k.max, k.replica);
                }
            }
            ISR => {
                let p = (tag & LOW) as u32;
                if let Some(log) = self.logs.get_mut(&p) {
                    log.timer = None;
                }
                self.advance(ctx, p);
            }
            FOLLOW => self.follow(ctx, (tag & LOW) as u32),
            TICK | FORMED => self.on_group_timer(ctx, kind, (tag & LOW) as usize),
            _ => {}
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        // The logs and committed offsets are on disk; what was in memory is gone.
        for log in self.logs.values_mut() {
            log.acks.clear();
            log.parked.clear();
            log.timer = None;
        }
        let checker = Arc::clone(&self.checker);
        let mut c = checker.lock().unwrap_or_else(|e| e.into_inner());
        for g in &mut self.groups {
            g.crash(now, &mut c);
        }
    }

    fn on_restart(&mut self, ctx: &mut Ctx<'_>) {
        for slot in 0..self.groups.len() {
            let g = &mut self.groups[slot];
            g.ticking = true;
            let (every, delay) = (
                g.spec().heartbeat_interval,
                g.spec().initial_rebalance_delay,
            );
            ctx.set_timer(every, TICK | slot as u64);
            if g.forming {
                ctx.set_timer(delay, FORMED | slot as u64);
            }
        }
        self.on_start(ctx);
    }

    fn finish(&mut self, _now: SimTime) -> Option<NodeStats> {
        let c = &self.counts;
        let me = self.me_id();
        let led = self.logs.values().filter(|l| l.leader == me).count();
        Some(NodeStats::counters([
            ("partitions_led", led as f64),
            ("partitions_followed", (self.logs.len() - led) as f64),
            ("appended", c.produced as f64),
            ("forwarded_to_leader", c.forwarded as f64),
            ("refused_leader_unreachable", c.refused as f64),
            ("events_fetched_by_consumers", c.fetched_by_consumers as f64),
            ("events_replicated_to_followers", c.replicated as f64),
            ("deleted_by_retention", c.deleted_by_retention as f64),
            ("groups_coordinated", self.groups.len() as f64),
        ]))
    }
}
