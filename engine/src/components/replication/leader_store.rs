//! The leader/follower mode of `ReplicatedStore` (`mode: LeaderFollower(..)`): one leader,
//! elected Raft-style (see [`super::election`]), orders every write in its log and ships it to
//! the followers; the replication mode decides when the client hears back.
//!
//! ```text
//!  client ─write─▶ follower ──Forward──▶ leader (no leader known: Err(Unreachable) at once)
//!  client ─write─▶ leader: append (term, index, key, value) to its log, apply it
//!     Sync:          Append ─▶ every follower; Ok to the client once all followers hold it
//!     SemiSync(k):   Append ─▶ every follower; Ok once k followers hold it
//!     Async(batch):  Ok at once; the log ships every `batch_interval` (followers lag behind)
//!  follower: accepts entry i only after the entry (i-1, prev_term) it holds; an entry of
//!            another term at a position the leader fills differently is divergent: it is
//!            undone (the log keeps each entry's previous value of its key) and replaced.
//!  reads: Leader — the leader answers with the newest value its replication mode has
//!         acknowledged (after its term's no-op is acknowledged; before, Err(Rejected));
//!         Follower — any replica answers from what it holds (possibly stale).
//! ```
//! Durable (survive a crash): current term, vote, log and data. Volatile: leadership, votes,
//! what the leader knows of its followers, writes awaiting acknowledgement (their clients time
//! out). A write not acknowledged within `timeout` gets Err(Timeout): it may still take
//! effect. Entries every replica holds are compacted away, so the log holds only what some
//! replica still lacks.
//!
//! At the end of the run every replica offers its state to the run-wide history, which keeps
//! the most up-to-date one (highest last term, then last index: the one a next leader would
//! have) as the final state that lost acknowledged writes are counted against.

use crate::check::history::{History, term_at};
use crate::components::message::{Ctx, Message};
use crate::components::replication::election::{ElectionChecker, RaftMsg};
use crate::components::replication::msg::ReplicaMsg;
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Op, Reply, Request, RequestId, Response};
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::state_series::StateSeries;
use crate::contract::validate::{Path, Validator};
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// A replica's roles for the role timeline; a crashed replica is `down` until it restarts.
const ROLES: [&str; 3] = ["follower", "leader", "down"];

/// The key of the no-op entry a new leader appends (clients never use it).
pub const NOOP_KEY: u64 = u64::MAX;
/// Entries sent to one follower in one go when it catches up.
const MAX_BATCH: u64 = 256;
/// Out-of-order entries a follower holds until the gap before them fills.
const MAX_BUFFERED: usize = 1024;

/// When the leader acknowledges a write to its client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum Replication {
    /// Once every follower holds it (no acknowledged write is ever lost, but one unreachable
    /// follower blocks every write).
    #[default]
    Sync,
    /// Once `acks` followers hold it (1 to replicas - 1).
    SemiSync {
        /// Followers that must hold a write before it is acknowledged (count).
        acks: u32,
    },
    /// At once; the leader ships its log to the followers every `batch_interval` (duration).
    Async {
        /// How often the leader ships new entries to its followers (duration).
        batch_interval: SimDuration,
    },
}

/// Which replicas answer reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum ReadFrom {
    /// Only the leader, with the newest acknowledged value; a follower forwards nothing and
    /// refuses the read (Err(Unreachable)) so the client can try again.
    #[default]
    Leader,
    /// Any replica, from what it holds (may be stale, or not yet acknowledged).
    Follower,
}

/// The options of `mode: LeaderFollower(..)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderFollowerConfig {
    /// See [`Replication`].
    pub replication: Replication,
    /// See [`ReadFrom`].
    pub reads: ReadFrom,
    /// Shortest election timeout.
    pub election_timeout_min: SimDuration,
    /// Longest election timeout.
    pub election_timeout_max: SimDuration,
    /// Leader heartbeat period.
    pub heartbeat_interval: SimDuration,
    /// Name of the run-wide election checker.
    pub election: String,
}

impl LeaderFollowerConfig {
    /// Check values the types cannot express, for a store of `replicas` replicas.
    pub fn validate(&self, replicas: u32, v: &mut Validator, at: &Path) {
        match self.replication {
            Replication::SemiSync { acks } if acks == 0 || acks + 1 > replicas => v.error(
                &at.field("replication").field("acks"),
                format!("{acks} acks with {} followers", replicas.saturating_sub(1)),
                format!(
                    "expected a count from 1 to {} (replicas - 1); use Async for no acks",
                    replicas.saturating_sub(1)
                ),
            ),
            Replication::Async { batch_interval } if batch_interval == SimDuration::ZERO => v
                .error(
                    &at.field("replication").field("batch_interval"),
                    "a zero batch interval",
                    "expected a positive duration",
                ),
            _ => {}
        }
        if self.election_timeout_min == SimDuration::ZERO {
            v.error(
                &at.field("election_timeout_min"),
                "a zero election timeout",
                "expected a positive duration",
            );
        }
        if self.election_timeout_min > self.election_timeout_max {
            v.error(
                &at.field("election_timeout_min"),
                format!(
                    "election_timeout_min {} is above election_timeout_max {}",
                    self.election_timeout_min, self.election_timeout_max
                ),
                "expected min <= max",
            );
        }
        if self.heartbeat_interval == SimDuration::ZERO
            || self.heartbeat_interval >= self.election_timeout_min
        {
            v.error(
                &at.field("heartbeat_interval"),
                format!(
                    "a heartbeat every {} with elections after {}",
                    self.heartbeat_interval, self.election_timeout_min
                ),
                "expected a positive duration below election_timeout_min",
            );
        }
    }

    fn acks_needed(&self, followers: usize) -> usize {
        match self.replication {
            Replication::Sync => followers,
            Replication::SemiSync { acks } => (acks as usize).min(followers),
            Replication::Async { .. } => 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Follower,
    Candidate,
    Leader,
}

/// One log entry: the write and, to undo it, what its key held before.
#[derive(Clone, Copy, Debug)]
struct Entry {
    term: u32,
    key: u64,
    value: u64,
    /// (value, index) the key held before this entry; None: absent.
    prev: Option<(u64, u64)>,
    /// This replica acknowledged it to a client as leader.
    acked: bool,
}

/// A write waiting for its acknowledgements.
#[derive(Clone, Copy, Debug)]
struct Waiter {
    index: u64,
    client: NodeId,
    call: CallId,
    id: RequestId,
    value: u64,
    timer: TimerId,
}

const TAG_ELECTION: u64 = 1 << 62;
const TAG_HEARTBEAT: u64 = (1 << 62) + 1;
const TAG_FLUSH: u64 = (1 << 62) + 2;

const COUNTERS: [&str; 12] = [
    "writes_appended",
    "forwarded_to_leader",
    "refused_no_leader",
    "writes_timed_out",
    "reads_served",
    "reads_refused",
    "elections_started",
    "terms_led",
    "entries_discarded",
    "acknowledged_writes_discarded",
    "steps_down",
    "replication_lag_max_entries",
];
const C_APPENDED: usize = 0;
const C_FORWARDED: usize = 1;
const C_NO_LEADER: usize = 2;
const C_TIMED_OUT: usize = 3;
const C_READS: usize = 4;
const C_READS_REFUSED: usize = 5;
const C_ELECTIONS: usize = 6;
const C_TERMS_LED: usize = 7;
const C_DISCARDED: usize = 8;
const C_ACKED_DISCARDED: usize = 9;
const C_STEPS_DOWN: usize = 10;
const C_LAG_MAX: usize = 11;

/// One replica of a leader/follower store.
pub struct LeaderStore {
    cfg: LeaderFollowerConfig,
    timeout: SimDuration,
    group: Vec<NodeId>,
    me: usize,
    // Durable.
    term: u32,
    voted_for: Option<NodeId>,
    log: VecDeque<Entry>,
    /// Index of the entry just before `log[0]` (compacted away).
    base: u64,
    /// (first index, term) of each run of entries of one term, over the whole log, compacted
    /// part included (memory grows with the terms, not the entries).
    term_starts: Vec<(u64, u32)>,
    data: BTreeMap<u64, (u64, u64)>,
    // Volatile.
    role: Role,
    leader: Option<NodeId>,
    votes: u64,
    election_timer: Option<TimerId>,
    leader_timers: Vec<TimerId>,
    next: Vec<u64>,
    matched: Vec<u64>,
    ack_index: u64,
    term_start: u64,
    waiters: VecDeque<Waiter>,
    buffered: BTreeMap<u64, (u32, u32, u64, u64)>,
    newest_seen: u64,
    rng: SimRng,
    history: Arc<Mutex<History>>,
    checker: Arc<Mutex<ElectionChecker>>,
    lag: Series,
    leading: StateSeries,
    counters: [u64; 12],
}

impl LeaderStore {
    /// A replica built from its configuration; `timeout` bounds a write's wait for acks.
    pub fn new(
        cfg: LeaderFollowerConfig,
        timeout: SimDuration,
        history: Arc<Mutex<History>>,
        b: &BuildCtx<'_>,
    ) -> LeaderStore {
        let group = b.resolve(b.group());
        let me = group.iter().position(|&n| n == b.me()).unwrap_or(0);
        let checker = b.observer(&cfg.election, ElectionChecker::default);
        checker.lock().expect("one thread per run").member(
            b.me().0,
            b.name(),
            cfg.heartbeat_interval,
        );
        let n = group.len();
        LeaderStore {
            cfg,
            timeout,
            group,
            me,
            term: 0,
            voted_for: None,
            log: VecDeque::new(),
            base: 0,
            term_starts: Vec::new(),
            data: BTreeMap::new(),
            role: Role::Follower,
            leader: None,
            votes: 0,
            election_timer: None,
            leader_timers: Vec::new(),
            next: vec![1; n],
            matched: vec![0; n],
            ack_index: 0,
            term_start: u64::MAX,
            waiters: VecDeque::new(),
            buffered: BTreeMap::new(),
            newest_seen: 0,
            rng: b.rng("election"),
            history,
            checker,
            lag: Series::new(SeriesKind::Level, b.window()),
            leading: StateSeries::new(&ROLES, b.window()),
            counters: [0; 12],
        }
    }

    fn me_id(&self) -> NodeId {
        self.group[self.me]
    }

    fn last_index(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    fn last_term(&self) -> u32 {
        self.term_starts.last().map_or(0, |&(_, t)| t)
    }

    /// The term of the entry at `index` (0 before the first); `None` beyond the log.
    fn term_at(&self, index: u64) -> Option<u32> {
        term_at(&self.term_starts, self.last_index(), index)
    }

    fn entry(&self, index: u64) -> &Entry {
        &self.log[(index - self.base - 1) as usize]
    }

    fn majority(&self) -> u32 {
        self.group.len() as u32 / 2 + 1
    }

    fn send(&self, ctx: &mut Ctx<'_>, to: NodeId, m: RaftMsg) {
        ctx.send(to, Message::Replica(ReplicaMsg::Raft(m)));
    }

    fn peers(&self) -> Vec<(usize, NodeId)> {
        let me = self.me;
        self.group
            .iter()
            .copied()
            .enumerate()
            .filter(|&(i, _)| i != me)
            .collect()
    }

    fn arm_election(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(t) = self.election_timer.take() {
            ctx.cancel_timer(t);
        }
        let (lo, hi) = (
            self.cfg.election_timeout_min.0,
            self.cfg.election_timeout_max.0,
        );
        let after = SimDuration(lo + self.rng.below(hi - lo + 1));
        self.election_timer = Some(ctx.set_timer(after, TAG_ELECTION));
    }

    /// Append a write to the local log and apply it; returns its index.
    fn append(&mut self, term: u32, key: u64, value: u64) -> u64 {
        let index = self.last_index() + 1;
        if self.last_term() != term {
            self.term_starts.push((index, term));
        }
        let prev = if key == NOOP_KEY {
            None
        } else {
            self.data.insert(key, (value, index))
        };
        self.log.push_back(Entry {
            term,
            key,
            value,
            prev,
            acked: false,
        });
        index
    }

    /// Undo every entry from `index` on (divergent: the leader's log differs there).
    fn truncate_from(&mut self, index: u64) {
        let index = index.max(self.base + 1);
        while self.last_index() >= index {
            let e = self.log.pop_back().expect("the log reaches index");
            self.counters[C_DISCARDED] += 1;
            if e.acked {
                self.counters[C_ACKED_DISCARDED] += 1;
            }
            if e.key != NOOP_KEY {
                match e.prev {
                    Some(p) => self.data.insert(e.key, p),
                    None => self.data.remove(&e.key),
                };
            }
        }
        self.buffered.retain(|&i, _| i < index);
        self.term_starts.retain(|&(start, _)| start < index);
    }

    /// Drop entries up to `index` that every replica holds.
    fn compact_to(&mut self, index: u64) {
        while self.base < index && !self.log.is_empty() {
            self.log.pop_front();
            self.base += 1;
        }
    }

    fn set_lag(&mut self, now: SimTime) {
        let lag = self.newest_seen.saturating_sub(self.last_index());
        self.counters[C_LAG_MAX] = self.counters[C_LAG_MAX].max(lag);
        self.lag.set(now, lag as f64);
    }

    fn reply(ctx: &mut Ctx<'_>, to: NodeId, call: CallId, id: RequestId, r: Result<Reply, Cause>) {
        ctx.send(
            to,
            Message::Response(Response {
                call,
                id,
                result: r,
            }),
        );
    }

    /// A client request.
    pub fn on_request(&mut self, ctx: &mut Ctx<'_>, client: NodeId, req: Request) {
        let forward_read = self.cfg.reads == ReadFrom::Leader && req.op == Op::Read;
        if self.role != Role::Leader && (req.op == Op::Write || forward_read) {
            match self.leader.filter(|&l| ctx.reachable(l)) {
                Some(l) => {
                    self.counters[C_FORWARDED] += 1;
                    let m = RaftMsg::Forward {
                        op: req.op,
                        client: client.0,
                        call: req.call,
                        id: req.id,
                        key: req.key,
                        value: req.value,
                    };
                    self.send(ctx, l, m);
                }
                None => {
                    self.counters[C_NO_LEADER] += 1;
                    Self::reply(ctx, client, req.call, req.id, Err(Cause::Unreachable));
                }
            }
            return;
        }
        self.serve(ctx, client, req);
    }

    fn serve(&mut self, ctx: &mut Ctx<'_>, client: NodeId, req: Request) {
        match req.op {
            Op::Read => self.on_read(ctx, client, req),
            Op::Write => self.on_write(ctx, client, req.call, req.id, req.key, req.value),
        }
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, client: NodeId, req: Request) {
        let answer = match (self.cfg.reads, self.role) {
            (ReadFrom::Follower, _) => self.data.get(&req.key).copied(),
            (ReadFrom::Leader, Role::Leader) if self.ack_index >= self.term_start => {
                // The newest value of the key whose entry the replication mode acknowledged.
                let mut held = self.data.get(&req.key).copied();
                while let Some((_, index)) = held
                    && index > self.ack_index
                {
                    held = self.entry(index).prev;
                }
                held
            }
            _ => {
                self.counters[C_READS_REFUSED] += 1;
                let cause = if self.role == Role::Leader {
                    Cause::Rejected
                } else {
                    Cause::Unreachable
                };
                Self::reply(ctx, client, req.call, req.id, Err(cause));
                return;
            }
        };
        self.counters[C_READS] += 1;
        let (value, version) = answer.unwrap_or_default();
        Self::reply(
            ctx,
            client,
            req.call,
            req.id,
            Ok(Reply {
                value,
                version,
                ..Reply::default()
            }),
        );
    }

    fn on_write(
        &mut self,
        ctx: &mut Ctx<'_>,
        client: NodeId,
        call: CallId,
        id: RequestId,
        key: u64,
        value: u64,
    ) {
        self.counters[C_APPENDED] += 1;
        let index = self.append(self.term, key, value);
        let timer = ctx.set_timer(self.timeout, index);
        self.waiters.push_back(Waiter {
            index,
            client,
            call,
            id,
            value,
            timer,
        });
        self.stream(ctx, index);
        self.advance(ctx);
    }

    /// Send the new entry `index` to every follower that is caught up (Sync, SemiSync).
    fn stream(&mut self, ctx: &mut Ctx<'_>, index: u64) {
        if matches!(self.cfg.replication, Replication::Async { .. }) {
            return;
        }
        for (i, p) in self.peers() {
            if self.next[i] == index {
                self.send_entry(ctx, p, index);
                self.next[i] = index + 1;
            }
        }
    }

    fn send_entry(&self, ctx: &mut Ctx<'_>, to: NodeId, index: u64) {
        let e = *self.entry(index);
        let m = RaftMsg::Append {
            term: self.term,
            prev_term: self.term_at(index - 1).unwrap_or(0),
            entry_term: e.term,
            prev_index: index - 1,
            key: e.key,
            value: e.value,
            all: self.all_index(),
        };
        self.send(ctx, to, m);
    }

    /// Send follower `i` up to `MAX_BATCH` entries from its next index.
    fn send_batch(&mut self, ctx: &mut Ctx<'_>, i: usize) {
        let last = self.last_index();
        let from = self.next[i].max(self.base + 1);
        let to = last.min(from + MAX_BATCH - 1);
        for index in from..=to {
            self.send_entry(ctx, self.group[i], index);
        }
        self.next[i] = self.next[i].max(to + 1);
    }

    /// Entries every replica holds (as far as the leader knows).
    fn all_index(&self) -> u64 {
        if self.role != Role::Leader {
            return 0;
        }
        let me = self.me;
        (0..self.group.len())
            .filter(|&i| i != me)
            .map(|i| self.matched[i])
            .min()
            .unwrap_or_else(|| self.last_index())
    }

    /// Recompute what the replication mode has acknowledged; answer the writes it covers.
    fn advance(&mut self, ctx: &mut Ctx<'_>) {
        let me = self.me;
        let mut m: Vec<u64> = (0..self.group.len())
            .filter(|&i| i != me)
            .map(|i| self.matched[i])
            .collect();
        m.sort_unstable_by(|a, b| b.cmp(a));
        let k = self.cfg.acks_needed(m.len());
        let acked = if k == 0 {
            self.last_index()
        } else {
            m[k - 1].min(self.last_index())
        };
        self.ack_index = self.ack_index.max(acked);
        while let Some(w) = self.waiters.front().copied() {
            if w.index > self.ack_index {
                break;
            }
            self.waiters.pop_front();
            ctx.cancel_timer(w.timer);
            if let Some(i) = w.index.checked_sub(self.base + 1)
                && let Some(e) = self.log.get_mut(i as usize)
            {
                e.acked = true;
            }
            self.history
                .lock()
                .expect("one thread per run")
                .leader_acked(w.value, w.index, self.term);
            let reply = Reply {
                value: w.value,
                version: w.index,
                ..Reply::default()
            };
            Self::reply(ctx, w.client, w.call, w.id, Ok(reply));
        }
        let all = self.all_index();
        self.compact_to(all);
    }

    fn become_leader(&mut self, ctx: &mut Ctx<'_>) {
        self.role = Role::Leader;
        self.leader = Some(self.me_id());
        self.counters[C_TERMS_LED] += 1;
        if let Some(t) = self.election_timer.take() {
            ctx.cancel_timer(t);
        }
        self.checker.lock().expect("one thread per run").elected(
            ctx.now(),
            self.term,
            self.me_id().0,
        );
        let last = self.last_index();
        self.next.iter_mut().for_each(|n| *n = last + 1);
        self.matched.iter_mut().for_each(|m| *m = 0);
        self.ack_index = 0;
        self.newest_seen = last + 1;
        self.term_start = self.append(self.term, NOOP_KEY, 0);
        self.lag.set(ctx.now(), 0.0);
        self.leading.set(ctx.now(), 1);
        self.heartbeat(ctx);
        let hb = self.cfg.heartbeat_interval;
        self.leader_timers.push(ctx.set_timer(hb, TAG_HEARTBEAT));
        if let Replication::Async { batch_interval } = self.cfg.replication {
            self.leader_timers
                .push(ctx.set_timer(batch_interval, TAG_FLUSH));
        } else {
            self.stream(ctx, self.term_start);
        }
        self.advance(ctx);
    }

    fn heartbeat(&mut self, ctx: &mut Ctx<'_>) {
        let m = RaftMsg::Heartbeat {
            term: self.term,
            last_term: self.last_term(),
            last_index: self.last_index(),
            all: self.all_index(),
        };
        for (_, p) in self.peers() {
            self.send(ctx, p, m);
        }
    }

    /// Hearing `term` above ours: follow, and forget leadership and vote.
    fn step_down(&mut self, ctx: &mut Ctx<'_>, term: u32) {
        if self.role == Role::Leader {
            self.counters[C_STEPS_DOWN] += 1;
            self.checker
                .lock()
                .expect("one thread per run")
                .stepped_down(ctx.now(), self.term, self.me_id().0, term);
            for t in self.leader_timers.drain(..) {
                ctx.cancel_timer(t);
            }
            // Their fate is unknown: they may or may not survive the new leader.
            while let Some(w) = self.waiters.pop_front() {
                ctx.cancel_timer(w.timer);
                Self::reply(ctx, w.client, w.call, w.id, Err(Cause::Timeout));
            }
            self.leading.set(ctx.now(), 0);
            self.arm_election(ctx);
        }
        self.term = term;
        self.voted_for = None;
        self.role = Role::Follower;
        self.leader = None;
        self.buffered.clear();
        self.term_start = u64::MAX;
    }

    /// A replica-to-replica message.
    pub fn on_raft(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: RaftMsg) {
        let term = match msg {
            RaftMsg::RequestVote { term, .. }
            | RaftMsg::Vote { term, .. }
            | RaftMsg::Append { term, .. }
            | RaftMsg::Heartbeat { term, .. }
            | RaftMsg::Appended { term, .. } => term,
            RaftMsg::Forward {
                op,
                client,
                call,
                id,
                key,
                value,
            } => {
                let client = NodeId(client);
                if self.role == Role::Leader {
                    let req = Request {
                        call,
                        id,
                        op,
                        key,
                        value,
                        work: 0,
                        attempt: 0,
                        issued_at: ctx.now(),
                        ..Request::default()
                    };
                    self.serve(ctx, client, req);
                } else {
                    // One hop only: the leader moved on; the client may try again.
                    self.counters[C_NO_LEADER] += 1;
                    Self::reply(ctx, client, call, id, Err(Cause::Unreachable));
                }
                return;
            }
        };
        if term > self.term {
            self.step_down(ctx, term);
        }
        let Some(i) = self.group.iter().position(|&n| n == from) else {
            return;
        };
        match msg {
            RaftMsg::RequestVote {
                term,
                last_term,
                last_index,
            } => {
                let up_to_date = (last_term, last_index) >= (self.last_term(), self.last_index());
                let granted =
                    term == self.term && self.voted_for.is_none_or(|v| v == from) && up_to_date;
                if granted {
                    self.voted_for = Some(from);
                    self.arm_election(ctx);
                }
                self.send(
                    ctx,
                    from,
                    RaftMsg::Vote {
                        term: self.term,
                        granted,
                    },
                );
            }
            RaftMsg::Vote { term, granted } => {
                if term == self.term && granted && self.role == Role::Candidate {
                    self.votes |= 1 << i;
                    if self.votes.count_ones() >= self.majority() {
                        self.become_leader(ctx);
                    }
                }
            }
            RaftMsg::Append { term, .. } | RaftMsg::Heartbeat { term, .. } if term < self.term => {
                // A deposed leader: tell it the newer term.
                let m = RaftMsg::Appended {
                    term: self.term,
                    ok: false,
                    index: 0,
                };
                self.send(ctx, from, m);
            }
            RaftMsg::Append { .. } | RaftMsg::Heartbeat { .. } if self.role == Role::Leader => {}
            RaftMsg::Append {
                prev_term,
                entry_term,
                prev_index,
                key,
                value,
                all,
                ..
            } => {
                self.heard_leader(ctx, from);
                let entry = (entry_term, key, value);
                self.on_append(ctx, from, prev_index, prev_term, Some(entry), all);
            }
            RaftMsg::Heartbeat {
                last_term,
                last_index,
                all,
                ..
            } => {
                self.heard_leader(ctx, from);
                self.on_append(ctx, from, last_index, last_term, None, all);
            }
            RaftMsg::Appended { term, ok, index } => {
                if term != self.term || self.role != Role::Leader {
                    return;
                }
                if ok {
                    self.matched[i] = self.matched[i].max(index);
                    self.next[i] = self.next[i].max(index + 1);
                    self.advance(ctx);
                    // Sync and semi-sync catch a follower up as soon as it answers; async
                    // ships only on its batch timer, so writes acknowledged since the last
                    // batch are at risk for up to `batch_interval`.
                    let nothing_in_flight = self.matched[i] + 1 >= self.next[i];
                    let behind = self.next[i] <= self.last_index();
                    let batched = matches!(self.cfg.replication, Replication::Async { .. });
                    if nothing_in_flight && behind && !batched {
                        self.send_batch(ctx, i);
                    }
                } else {
                    self.next[i] = self.matched[i].max(index) + 1;
                    self.send_batch(ctx, i);
                }
            }
            RaftMsg::Forward { .. } => {}
        }
    }

    fn heard_leader(&mut self, ctx: &mut Ctx<'_>, from: NodeId) {
        if self.role == Role::Candidate {
            self.role = Role::Follower;
        }
        self.leader = Some(from);
        self.checker.lock().expect("one thread per run").heard(
            ctx.now(),
            self.term,
            from.0,
            self.me_id().0,
        );
        self.arm_election(ctx);
    }

    /// The leader's entry after (`prev_index`, `prev_term`) (`None`: a heartbeat, whose
    /// `prev` is the leader's last entry).
    fn on_append(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        prev_index: u64,
        prev_term: u32,
        entry: Option<(u32, u64, u64)>,
        all: u64,
    ) {
        self.newest_seen = self
            .newest_seen
            .max(prev_index + u64::from(entry.is_some()));
        let answer = self.accept(prev_index, prev_term, entry);
        if let Some((true, matched)) = answer {
            self.compact_to(all.min(matched));
        }
        self.set_lag(ctx.now());
        if let Some((ok, index)) = answer {
            let m = RaftMsg::Appended {
                term: self.term,
                ok,
                index,
            };
            self.send(ctx, from, m);
        }
    }

    /// Apply what the leader sent; the answer (ok, index) to send back, if any.
    fn accept(
        &mut self,
        prev_index: u64,
        prev_term: u32,
        entry: Option<(u32, u64, u64)>,
    ) -> Option<(bool, u64)> {
        if prev_index > self.last_index() {
            return match entry {
                // Overtook an earlier entry: hold it until the gap fills.
                Some((t, k, v)) => {
                    if self.buffered.len() < MAX_BUFFERED {
                        self.buffered.insert(prev_index + 1, (prev_term, t, k, v));
                    }
                    None
                }
                None => Some((false, self.last_index())),
            };
        }
        if let Some(mine) = self.term_at(prev_index)
            && mine != prev_term
        {
            // Divergent from prev_index on; the leader backs up to before that term.
            let mut first = prev_index;
            while first > self.base + 1 && self.term_at(first - 1) == Some(mine) {
                first -= 1;
            }
            self.truncate_from(prev_index);
            return Some((false, first - 1));
        }
        let Some((t, k, v)) = entry else {
            // Everything after the leader's last entry is divergent unless it is of this term
            // (an entry that overtook this heartbeat).
            if self.term_at(prev_index + 1).is_some_and(|t| t != self.term) {
                self.truncate_from(prev_index + 1);
            }
            return Some((true, prev_index));
        };
        let index = prev_index + 1;
        if index <= self.last_index() {
            if self.term_at(index) == Some(t) {
                return Some((true, index));
            }
            self.truncate_from(index);
        }
        self.append(t, k, v);
        // Entries that arrived early and now follow on.
        loop {
            let next = self.last_index() + 1;
            let Some((pt, t, k, v)) = self.buffered.remove(&next) else {
                break;
            };
            if self.term_at(next - 1) != Some(pt) {
                break;
            }
            self.append(t, k, v);
        }
        let last = self.last_index();
        self.buffered.retain(|&i, _| i > last);
        Some((true, last))
    }

    fn start_election(&mut self, ctx: &mut Ctx<'_>) {
        self.term += 1;
        self.role = Role::Candidate;
        self.leader = None;
        self.voted_for = Some(self.me_id());
        self.votes = 1 << self.me;
        self.counters[C_ELECTIONS] += 1;
        self.checker.lock().expect("one thread per run").candidacy();
        self.arm_election(ctx);
        if self.votes.count_ones() >= self.majority() {
            self.become_leader(ctx);
            return;
        }
        let m = RaftMsg::RequestVote {
            term: self.term,
            last_term: self.last_term(),
            last_index: self.last_index(),
        };
        for (_, p) in self.peers() {
            self.send(ctx, p, m);
        }
    }

    /// Start (or restart after a crash) as a follower.
    pub fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.leading.set(ctx.now(), 0);
        self.arm_election(ctx);
    }

    /// A timer fired.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: TimerId, tag: u64) {
        match tag {
            TAG_ELECTION => {
                if self.election_timer == Some(timer) {
                    self.election_timer = None;
                    if self.role != Role::Leader {
                        self.start_election(ctx);
                    }
                }
            }
            TAG_HEARTBEAT | TAG_FLUSH => {
                self.leader_timers.retain(|&t| t != timer);
                if self.role != Role::Leader {
                    return;
                }
                if tag == TAG_HEARTBEAT {
                    self.heartbeat(ctx);
                    let hb = self.cfg.heartbeat_interval;
                    self.leader_timers.push(ctx.set_timer(hb, TAG_HEARTBEAT));
                } else if let Replication::Async { batch_interval } = self.cfg.replication {
                    for (i, _) in self.peers() {
                        self.send_batch(ctx, i);
                    }
                    self.leader_timers
                        .push(ctx.set_timer(batch_interval, TAG_FLUSH));
                }
            }
            index => {
                if let Ok(at) = self.waiters.binary_search_by_key(&index, |w| w.index) {
                    let w = self.waiters.remove(at).expect("found");
                    self.counters[C_TIMED_OUT] += 1;
                    Self::reply(ctx, w.client, w.call, w.id, Err(Cause::Timeout));
                }
            }
        }
    }

    /// A crash: leadership, votes being counted and waiting writes are lost.
    pub fn on_crash(&mut self, now: SimTime) {
        if self.role == Role::Leader {
            self.checker
                .lock()
                .expect("one thread per run")
                .leader_crashed(now, self.term, self.me_id().0);
        }
        self.role = Role::Follower;
        self.leader = None;
        self.votes = 0;
        self.election_timer = None;
        self.leader_timers.clear();
        self.waiters.clear();
        self.buffered.clear();
        self.term_start = u64::MAX;
        self.leading.set(now, 2);
    }

    /// End of the run: offer the final state to the history; counters and series.
    pub fn finish(&mut self, now: SimTime) -> NodeStats {
        let version = (u64::from(self.last_term()), self.last_index());
        self.history
            .lock()
            .expect("one thread per run")
            .replica_state(version, self.data.iter().map(|(&k, &(v, _))| (k, v)));
        self.history
            .lock()
            .expect("one thread per run")
            .replica_log(version, &self.term_starts);
        let mut counters: BTreeMap<String, f64> = COUNTERS
            .iter()
            .zip(self.counters)
            .map(|(n, c)| (n.to_string(), c as f64))
            .collect();
        counters.insert("term".to_string(), f64::from(self.term));
        counters.insert("log_entries_held".to_string(), self.log.len() as f64);
        let series = vec![
            self.lag.finish(
                "replication_lag",
                "Replication lag: log entries behind the leader",
                "entries",
                now,
            ),
            self.leading.finish("leader", "Replica roles", now),
        ];
        NodeStats {
            counters,
            series,
            ..NodeStats::default()
        }
    }
}
