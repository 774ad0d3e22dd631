//! `LogConsumer`: a member of a consumer group of a `Topic` (a Kafka-like consumer). It fetches
//! the partitions it is assigned from their leaders, processes their events one at a time and
//! commits offsets before or after processing.
//!
//! ```text
//!  start ─Join─▶ coordinator ─Assign(partitions, committed offsets)─▶ fetch each from its leader
//!  Fetched batch ─▶ buffer (one batch per partition waits; the next fetch goes out when it is
//!                   taken) ─poll─▶ the batch in hand:
//!     BeforeProcessing: commit the batch's end, then process its events  (at most once)
//!     AfterProcessing:  process its events, then commit (or every commit_interval) (at least once)
//!  Revoke(partitions) ─▶ drop their buffered batches, finish the batch in hand if it is one of
//!                        them, answer Revoked(where each resumes)
//!  Heartbeat every heartbeat_interval; no answer for session_timeout ─▶ give up every
//!  partition and join again
//! ```
//! A crash loses the buffered batches and the batch in hand. Committing before processing, the
//! events of that batch not yet processed are lost (committed, never processed); committing
//! after, the processed ones not yet committed are processed again by the partition's next
//! owner. Both counts are kept at the crash (`committed_not_processed_at_crash`,
//! `processed_not_committed_at_crash`) so the checker's losses and duplicates can be traced
//! to them. An idempotent consumer applies an event's effect once even when it processes it
//! twice (it records the event with its effect, as a transactional sink would); the checker
//! counts effects accordingly.

use crate::check::stream::{DEFAULT_MAX_KEYS, StreamChecker};
use crate::components::data::stream_msg::{
    GroupSpec, LogEntry, Rebalance, StreamMsg, coordinator_of, group_id, leader_of,
};
use crate::components::data::topic::default_checker;
use crate::components::message::{Builtin, Ctx, Message};
use crate::contract::build::BuildCtx;
use crate::contract::metrics::NodeStats;
use crate::contract::validate::{Path, Validator};
use crate::sim::dist::Dist;
use crate::sim::rng::{WorkRng, stable_hash};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// When a consumer commits an event's offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CommitPoint {
    /// As soon as a batch is taken, before processing it: a crash loses the unprocessed rest
    /// of the batch (at most once).
    BeforeProcessing,
    /// After processing (each batch, or every `commit_interval`): a crash makes the next owner
    /// process the uncommitted events again (at least once).
    AfterProcessing,
}

/// A consumer in a consumer group of a `Topic`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "LogConsumer", deny_unknown_fields)]
pub struct LogConsumerConfig {
    /// The `Topic` to consume.
    pub topic: String,
    /// The consumer group (every group receives every event; within one, each partition has
    /// one consumer at a time).
    pub group: String,
    /// Number of identical consumers (count); named `name-0 ..`. Default 1.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Time to process one event (a distribution of durations; drawn from the event's own
    /// random bits, so it is the same whoever processes it).
    pub service_time: Dist,
    /// `BeforeProcessing` (at most once) or `AfterProcessing` (at least once). Default
    /// `AfterProcessing`.
    #[serde(default = "after")]
    pub commit: CommitPoint,
    /// With `AfterProcessing`: commit what was processed every this long instead of after each
    /// batch (Kafka's auto-commit, every "5s" by default there). Default `None`: after each
    /// batch.
    #[serde(default)]
    pub commit_interval: Option<SimDuration>,
    /// `Eager` (stop the world) or `Cooperative` (incremental) rebalancing. Default `Eager`.
    #[serde(default = "eager")]
    pub rebalance: Rebalance,
    /// Most events taken in one batch (count; Kafka `max.poll.records`). Default 500.
    #[serde(default = "default_max_poll")]
    pub max_poll_records: u32,
    /// The coordinator drops a member it has not heard from for this long, and a member that
    /// has not heard from it for this long gives up its partitions and joins again (duration).
    /// Default "45s" (Kafka's).
    #[serde(default = "default_session")]
    pub session_timeout: SimDuration,
    /// How often a member heartbeats (duration). Default "3s" (Kafka's).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval: SimDuration,
    /// The group's first assignment waits this long after its first member joins, so members
    /// starting together cause one rebalance (duration; Kafka
    /// `group.initial.rebalance.delay.ms`). Default "3s".
    #[serde(default = "default_initial_delay")]
    pub initial_rebalance_delay: SimDuration,
    /// A fetch not answered after this long (its broker crashed holding it) is sent again;
    /// keep it above the topic's `fetch_max_wait` (duration). Default "2s".
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout: SimDuration,
    /// The consumer applies each event's effect once, even when it is delivered twice (it
    /// stores the event id with the effect). Default false.
    #[serde(default)]
    pub idempotent: bool,
    /// Name of the run-wide checker (the topic's `checker`). Default "stream".
    #[serde(default = "default_checker")]
    pub checker: String,
}

fn one() -> u32 {
    1
}
fn after() -> CommitPoint {
    CommitPoint::AfterProcessing
}
fn eager() -> Rebalance {
    Rebalance::Eager
}
fn default_max_poll() -> u32 {
    500
}
fn default_session() -> SimDuration {
    SimDuration::from_secs(45)
}
fn default_heartbeat() -> SimDuration {
    SimDuration::from_secs(3)
}
fn default_initial_delay() -> SimDuration {
    SimDuration::from_secs(3)
}
fn default_fetch_timeout() -> SimDuration {
    SimDuration::from_secs(2)
}

crate::settable!(LogConsumerConfig {
    topic,
    group,
    replicas,
    service_time,
    commit,
    commit_interval,
    rebalance,
    max_poll_records,
    session_timeout,
    heartbeat_interval,
    initial_rebalance_delay,
    fetch_timeout,
    idempotent,
    checker
});

impl LogConsumerConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        v.resolve(&at.field("topic"), &self.topic);
        v.check_dist(&at.field("service_time"), &self.service_time);
        if self.replicas == 0 {
            v.error(
                &at.field("replicas"),
                "no consumers",
                "expected a count >= 1",
            );
        }
        if self.max_poll_records == 0 {
            v.error(
                &at.field("max_poll_records"),
                "batches of no events",
                "expected a count >= 1",
            );
        }
        if self.group.is_empty() {
            v.error(&at.field("group"), "an empty group name", "expected a name");
        }
        for (field, d) in [
            ("heartbeat_interval", self.heartbeat_interval),
            ("fetch_timeout", self.fetch_timeout),
        ] {
            if d == SimDuration::ZERO {
                v.error(
                    &at.field(field),
                    format!("a zero {field}"),
                    "expected a positive duration",
                );
            }
        }
        if self.session_timeout <= self.heartbeat_interval {
            v.error(
                &at.field("session_timeout"),
                format!(
                    "a session timeout of {} with heartbeats every {}",
                    self.session_timeout, self.heartbeat_interval
                ),
                "expected a session timeout above the heartbeat interval (Kafka: 45s and 3s)",
            );
        }
        match (self.commit, self.commit_interval) {
            (_, Some(d)) if d == SimDuration::ZERO => v.error(
                &at.field("commit_interval"),
                "a zero commit interval",
                "expected a positive duration, or `None` to commit after each batch",
            ),
            (CommitPoint::BeforeProcessing, Some(_)) => v.error(
                &at.field("commit_interval"),
                "a commit interval with `commit: BeforeProcessing`",
                "expected `None`: committing before processing commits each batch as it is taken",
            ),
            _ => {}
        }
    }
}

/// A partition this consumer owns.
#[derive(Clone, Copy, Debug)]
struct Owned {
    /// The next offset to fetch.
    next_fetch: u64,
    /// The next offset to process.
    processed: u64,
    /// The last position committed.
    committed: u64,
    /// The fetch in flight (its timeout).
    fetching: Option<TimerId>,
    /// A fetched batch waits to be taken.
    buffered: bool,
    revoking: bool,
}

/// Events of one partition, fetched together.
#[derive(Clone, Debug)]
struct Batch {
    partition: u32,
    entries: Vec<LogEntry>,
    next: usize,
}

const PROCESS: u64 = 1 << 60;
const HEARTBEAT: u64 = 2 << 60;
const FETCH: u64 = 3 << 60;
const AUTO_COMMIT: u64 = 4 << 60;
const KIND: u64 = 0xf << 60;

/// Counters the report shows.
#[derive(Clone, Debug, Default)]
struct Counts {
    fetched: u64,
    processed: u64,
    commits: u64,
    revocations: u64,
    rejoins: u64,
    committed_not_processed_at_crash: u64,
    processed_not_committed_at_crash: u64,
}

/// One consumer of a group.
pub struct LogConsumer {
    cfg: LogConsumerConfig,
    spec: GroupSpec,
    gid: u64,
    brokers: Vec<NodeId>,
    coordinator: NodeId,
    salt: u64,
    incarnation: u32,
    generation: u32,
    owned: BTreeMap<u32, Owned>,
    batches: VecDeque<Batch>,
    current: Option<Batch>,
    /// Where each partition given up last resumes, to answer a repeated `Revoke`.
    last_revoked: BTreeMap<u32, u64>,
    last_ack: SimTime,
    checker: Arc<Mutex<StreamChecker>>,
    check: u32,
    counts: Counts,
}

impl LogConsumer {
    /// A consumer built from its configuration.
    pub fn new(cfg: &LogConsumerConfig, b: &BuildCtx<'_>) -> LogConsumer {
        let brokers = b.resolve(&cfg.topic);
        let coordinator = brokers[coordinator_of(&cfg.group, brokers.len())];
        let (window, end) = (b.window(), b.arrivals_end());
        let checker = b.observer(&cfg.checker, || {
            StreamChecker::new(window, end, DEFAULT_MAX_KEYS)
        });
        let check = checker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .group(&cfg.group, cfg.idempotent);
        LogConsumer {
            spec: GroupSpec {
                name: cfg.group.clone(),
                rebalance: cfg.rebalance,
                session_timeout: cfg.session_timeout,
                heartbeat_interval: cfg.heartbeat_interval,
                initial_rebalance_delay: cfg.initial_rebalance_delay,
                idempotent: cfg.idempotent,
            },
            gid: group_id(&cfg.group),
            cfg: cfg.clone(),
            brokers,
            coordinator,
            salt: stable_hash(cfg.group.as_bytes()),
            incarnation: 0,
            generation: 0,
            owned: BTreeMap::new(),
            batches: VecDeque::new(),
            current: None,
            last_revoked: BTreeMap::new(),
            last_ack: SimTime::ZERO,
            checker,
            check,
            counts: Counts::default(),
        }
    }

    fn to_coordinator(&self, ctx: &mut Ctx<'_>, m: StreamMsg) {
        if ctx.reachable(self.coordinator) {
            ctx.send(self.coordinator, Message::Stream(m));
        }
    }

    fn join(&mut self, ctx: &mut Ctx<'_>) {
        let m = StreamMsg::Join {
            spec: Box::new(self.spec.clone()),
            incarnation: self.incarnation,
        };
        self.to_coordinator(ctx, m);
    }

    fn heartbeat(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        if now.since(self.last_ack) > self.cfg.session_timeout {
            // The coordinator has surely dropped us: give everything up and join again.
            let all: Vec<u32> = self.owned.keys().copied().collect();
            self.drop_partitions(ctx, &all);
            self.counts.rejoins += 1;
            self.last_ack = now;
            self.join(ctx);
        } else {
            let m = StreamMsg::Heartbeat {
                group: self.gid,
                incarnation: self.incarnation,
                generation: self.generation,
            };
            self.to_coordinator(ctx, m);
        }
        // Partitions whose fetch could not go out (leader unreachable) try again now.
        let idle: Vec<u32> = self
            .owned
            .iter()
            .filter(|(_, o)| o.fetching.is_none() && !o.buffered && !o.revoking)
            .map(|(&p, _)| p)
            .collect();
        for p in idle {
            self.fetch(ctx, p);
        }
        ctx.set_timer(self.cfg.heartbeat_interval, HEARTBEAT);
    }

    /// Stop consuming `partitions` at once: forget them and their buffered batches.
    fn drop_partitions(&mut self, ctx: &mut Ctx<'_>, partitions: &[u32]) {
        for p in partitions {
            if let Some(o) = self.owned.remove(p)
                && let Some(t) = o.fetching
            {
                ctx.cancel_timer(t);
            }
        }
        self.batches.retain(|b| !partitions.contains(&b.partition));
    }

    fn fetch(&mut self, ctx: &mut Ctx<'_>, p: u32) {
        let leader = self.brokers[leader_of(p, self.brokers.len())];
        let timeout = self.cfg.fetch_timeout;
        let max = self.cfg.max_poll_records;
        let Some(o) = self.owned.get_mut(&p) else {
            return;
        };
        if o.fetching.is_some() || o.buffered || o.revoking || !ctx.reachable(leader) {
            return; // an unreachable leader: the next heartbeat tries again
        }
        let m = StreamMsg::Fetch {
            partition: p,
            offset: o.next_fetch,
            max,
            replica: false,
        };
        o.fetching = Some(ctx.set_timer(timeout, FETCH | u64::from(p)));
        ctx.send(leader, Message::Stream(m));
    }

    fn on_fetched(
        &mut self,
        ctx: &mut Ctx<'_>,
        p: u32,
        asked: u64,
        next: u64,
        entries: Vec<LogEntry>,
    ) {
        let Some(o) = self
            .owned
            .get_mut(&p)
            .filter(|o| o.fetching.is_some() && o.next_fetch == asked)
        else {
            return; // no longer ours, or a late answer to an older fetch
        };
        if let Some(t) = o.fetching.take() {
            ctx.cancel_timer(t);
        }
        if entries.is_empty() {
            o.next_fetch = next.max(o.next_fetch);
            if o.processed < o.next_fetch && self.current.as_ref().is_none_or(|c| c.partition != p)
            {
                // Retention deleted what we wanted: resume at the oldest event kept.
                o.processed = o.next_fetch;
            }
            self.fetch(ctx, p);
            return;
        }
        o.next_fetch = next;
        o.buffered = true;
        self.counts.fetched += entries.len() as u64;
        self.batches.push_back(Batch {
            partition: p,
            entries,
            next: 0,
        });
        self.poll(ctx);
    }

    /// Take the next batch if none is in hand.
    fn poll(&mut self, ctx: &mut Ctx<'_>) {
        if self.current.is_some() {
            return;
        }
        let Some(batch) = self.batches.pop_front() else {
            return;
        };
        let p = batch.partition;
        let Some(o) = self.owned.get_mut(&p) else {
            return self.poll(ctx);
        };
        o.buffered = false;
        let first = batch.entries[0].offset;
        if o.processed < first {
            o.processed = first; // the events before were deleted by retention
        }
        let end = batch.entries.last().map_or(first, |e| e.offset + 1);
        self.current = Some(batch);
        self.fetch(ctx, p);
        if self.cfg.commit == CommitPoint::BeforeProcessing {
            self.commit(ctx, p, end);
        }
        self.process_next(ctx);
    }

    fn process_next(&mut self, ctx: &mut Ctx<'_>) {
        let Some(b) = self.current.as_ref() else {
            return;
        };
        let e = b.entries[b.next];
        let took = self
            .cfg
            .service_time
            .sample(&mut WorkRng::new(e.work, self.salt));
        let took = SimDuration::from_secs_f64(took.as_secs_f64() * ctx.slowdown());
        ctx.set_timer(took, PROCESS);
    }

    /// The event in hand is processed.
    fn processed(&mut self, ctx: &mut Ctx<'_>) {
        let Some(b) = self.current.as_mut() else {
            return;
        };
        let e = b.entries[b.next];
        b.next += 1;
        let p = b.partition;
        let done = b.next == b.entries.len();
        self.counts.processed += 1;
        self.checker
            .lock()
            .unwrap_or_else(|x| x.into_inner())
            .processed(
                self.check,
                p,
                e.offset,
                e.key,
                e.seq,
                e.appended_at,
                ctx.now(),
            );
        if let Some(o) = self.owned.get_mut(&p) {
            o.processed = o.processed.max(e.offset + 1);
        }
        if !done {
            self.process_next(ctx);
            return;
        }
        self.current = None;
        let revoking = self.owned.get(&p).is_some_and(|o| o.revoking);
        if self.cfg.commit == CommitPoint::AfterProcessing
            && (self.cfg.commit_interval.is_none() || revoking)
            && let Some(pos) = self.owned.get(&p).map(|o| o.processed)
        {
            self.commit(ctx, p, pos);
        }
        if revoking {
            self.finish_revoke(ctx);
        }
        self.poll(ctx);
    }

    fn commit(&mut self, ctx: &mut Ctx<'_>, p: u32, offset: u64) {
        let Some(o) = self.owned.get_mut(&p) else {
            return;
        };
        o.committed = offset;
        self.counts.commits += 1;
        let m = StreamMsg::Commit {
            group: self.gid,
            incarnation: self.incarnation,
            partition: p,
            offset,
        };
        self.to_coordinator(ctx, m);
    }

    fn auto_commit(&mut self, ctx: &mut Ctx<'_>) {
        let due: Vec<(u32, u64)> = self
            .owned
            .iter()
            .filter(|(_, o)| o.processed > o.committed)
            .map(|(&p, o)| (p, o.processed))
            .collect();
        for (p, pos) in due {
            self.commit(ctx, p, pos);
        }
        if let Some(every) = self.cfg.commit_interval {
            ctx.set_timer(every, AUTO_COMMIT);
        }
    }

    fn on_revoke(&mut self, ctx: &mut Ctx<'_>, generation: u32, partitions: Vec<u32>) {
        if generation < self.generation {
            return;
        }
        self.generation = generation;
        self.last_ack = ctx.now();
        self.counts.revocations += 1;
        let mut gone = Vec::new();
        for &p in &partitions {
            match self.owned.get_mut(&p) {
                Some(o) => {
                    o.revoking = true;
                    o.buffered = false;
                    if let Some(t) = o.fetching.take() {
                        ctx.cancel_timer(t);
                    }
                }
                // Given up already (our answer was lost): the same answer again, or
                // "unknown" (the coordinator keeps what it has).
                None => gone.push((p, self.last_revoked.get(&p).copied().unwrap_or(u64::MAX))),
            }
        }
        self.batches.retain(|b| !partitions.contains(&b.partition));
        if !gone.is_empty() {
            let m = StreamMsg::Revoked {
                group: self.gid,
                incarnation: self.incarnation,
                positions: gone,
            };
            self.to_coordinator(ctx, m);
        }
        self.finish_revoke(ctx);
    }

    /// Give up the revoked partitions not in hand; say where each resumes.
    fn finish_revoke(&mut self, ctx: &mut Ctx<'_>) {
        let in_hand = self.current.as_ref().map(|b| b.partition);
        let done: Vec<(u32, u64)> = self
            .owned
            .iter()
            .filter(|&(&p, o)| o.revoking && Some(p) != in_hand)
            .map(|(&p, o)| (p, o.processed.max(o.committed)))
            .collect();
        if done.is_empty() {
            return;
        }
        for &(p, pos) in &done {
            self.owned.remove(&p);
            self.last_revoked.insert(p, pos);
        }
        let m = StreamMsg::Revoked {
            group: self.gid,
            incarnation: self.incarnation,
            positions: done,
        };
        self.to_coordinator(ctx, m);
    }

    fn on_assign(&mut self, ctx: &mut Ctx<'_>, generation: u32, partitions: Vec<(u32, u64)>) {
        if generation < self.generation {
            return;
        }
        self.generation = generation;
        self.last_ack = ctx.now();
        let gone: Vec<u32> = self
            .owned
            .keys()
            .filter(|p| !partitions.iter().any(|(q, _)| q == *p))
            .copied()
            .collect();
        self.drop_partitions(ctx, &gone);
        for (p, offset) in partitions {
            self.owned.entry(p).or_insert(Owned {
                next_fetch: offset,
                processed: offset,
                committed: offset,
                fetching: None,
                buffered: false,
                revoking: false,
            });
            self.fetch(ctx, p);
        }
    }

    fn on_stream(&mut self, ctx: &mut Ctx<'_>, msg: StreamMsg) {
        match msg {
            StreamMsg::Fetched {
                partition,
                asked,
                next,
                entries,
            } => self.on_fetched(ctx, partition, asked, next, entries),
            StreamMsg::HeartbeatAck { group } if group == self.gid => self.last_ack = ctx.now(),
            StreamMsg::Revoke {
                group,
                generation,
                partitions,
            } if group == self.gid => self.on_revoke(ctx, generation, partitions),
            StreamMsg::Assign {
                group,
                generation,
                partitions,
            } if group == self.gid => self.on_assign(ctx, generation, partitions),
            // Another group's instructions, or what only brokers handle.
            _ => {}
        }
    }
}

impl Node<Builtin> for LogConsumer {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.last_ack = ctx.now();
        self.join(ctx);
        ctx.set_timer(self.cfg.heartbeat_interval, HEARTBEAT);
        if let Some(every) = self.cfg.commit_interval {
            ctx.set_timer(every, AUTO_COMMIT);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, _from: NodeId, msg: Message) {
        match msg {
            Message::Stream(m) => self.on_stream(ctx, m),
            // A consumer serves no calls and speaks no other protocol.
            Message::Request(_)
            | Message::Response(_)
            | Message::User(_)
            | Message::Txn(_)
            | Message::Replica(_)
            | Message::Purge(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        match tag & KIND {
            PROCESS => self.processed(ctx),
            HEARTBEAT => self.heartbeat(ctx),
            AUTO_COMMIT => self.auto_commit(ctx),
            FETCH => {
                let p = (tag & !KIND) as u32;
                if let Some(o) = self.owned.get_mut(&p) {
                    o.fetching = None;
                }
                self.fetch(ctx, p);
            }
            _ => {}
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        for o in self.owned.values() {
            self.counts.committed_not_processed_at_crash += o.committed.saturating_sub(o.processed);
            self.counts.processed_not_committed_at_crash += o.processed.saturating_sub(o.committed);
        }
        self.owned.clear();
        self.batches.clear();
        self.current = None;
        self.last_revoked.clear();
    }

    fn on_restart(&mut self, ctx: &mut Ctx<'_>) {
        self.incarnation += 1;
        self.generation = 0;
        self.on_start(ctx);
    }

    fn finish(&mut self, _now: SimTime) -> Option<NodeStats> {
        {
            let mut checker = self.checker.lock().unwrap_or_else(|x| x.into_inner());
            for (&p, o) in &self.owned {
                checker.in_hand(self.check, p, o.processed, o.committed);
            }
        }
        let c = &self.counts;
        Some(NodeStats::counters([
            ("events_fetched", c.fetched as f64),
            ("events_processed", c.processed as f64),
            ("commits", c.commits as f64),
            ("revocations", c.revocations as f64),
            ("rejoins_after_losing_the_coordinator", c.rejoins as f64),
            ("partitions_owned_at_end", self.owned.len() as f64),
            (
                "committed_not_processed_at_crash",
                c.committed_not_processed_at_crash as f64,
            ),
            (
                "processed_not_committed_at_crash",
                c.processed_not_committed_at_crash as f64,
            ),
        ]))
    }
}
