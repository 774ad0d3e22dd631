//! `TxnParticipant`: one shard of a transaction system. It locks a key per transaction,
//! prepares (or, in a saga, runs and commits its step), votes, and applies the outcome.
//!
//! See the state diagram in [`super`]. Locking is no-wait: a transaction that finds its key
//! locked by another votes no at once, so there are no deadlocks, and a branch blocked with its
//! lock held makes every other transaction on that key abort until it is resolved.
//!
//! Durable across a crash: branches that voted yes (prepared, pre-committed), their locks and
//! the outcomes of recent transactions. A branch still preparing is lost in a crash, which
//! aborts it locally. After a restart a participant asks the coordinator (and, with
//! `cooperative_termination`, its peers) about every branch it holds; a 3PC participant that
//! recovers does not apply the timeout rules, since it may have missed a pre-commit.

use super::checker::TxnChecker;
use super::coordinator::{checker, lock};
use super::{Known, Protocol, TAG_MASK, TAG_SHIFT, TxnMsg, members};
use crate::components::message::{Builtin, Ctx, Message};
use crate::components::traffic::keys::{KeySampler, Keys};
use crate::contract::build::BuildCtx;
use crate::contract::metrics::NodeStats;
use crate::contract::validate::{Path, Validator};
use crate::sim::dist::Dist;
use crate::sim::rng::WorkRng;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// A shard that takes part in transactions; `replicas: 4` declares four (`name-0` ..).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "TxnParticipant", deny_unknown_fields)]
pub struct TxnParticipantConfig {
    /// Number of participants in the group (count, at most 64). Default 1.
    #[serde(default = "one")]
    pub replicas: u32,
    /// The `TxnCoordinator` it answers to and asks about outcomes.
    pub coordinator: String,
    /// Time to prepare (2PC, 3PC) or to run a saga step (distribution of durations).
    /// Default `Constant("1ms")`.
    #[serde(default = "default_prepare_time")]
    pub prepare_time: Dist,
    /// Probability of voting no (saga: of the step failing) after preparing (0..1). Default 0.
    #[serde(default)]
    pub vote_no: f64,
    /// How long a participant that voted yes waits before acting (duration): a 2PC participant
    /// then asks for the outcome (again every `timeout`); a 3PC participant terminates on its
    /// own (waiting for pre-commit → abort, in pre-commit → commit). Must exceed the
    /// coordinator's `vote_timeout` and `ack_timeout` plus network delays, or 3PC splits even
    /// without faults. Default "500ms".
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// 2PC: a blocked participant also asks the other participants of the transaction; one
    /// that knows the outcome, or has not voted yet (it then aborts), answers. Default false.
    #[serde(default)]
    pub cooperative_termination: bool,
    /// The keys a transaction may lock here (one per transaction). Default
    /// `Uniform(count: 10000)`.
    #[serde(default = "default_keys")]
    pub keys: Keys,
    /// List every blocked episode at least this long in the report, with its transaction and
    /// start (duration; up to 1000 are listed). Default `None`.
    #[serde(default)]
    pub log_blocked_over: Option<SimDuration>,
}

fn one() -> u32 {
    1
}

fn default_prepare_time() -> Dist {
    Dist::Constant(SimDuration::from_millis(1))
}

fn default_timeout() -> SimDuration {
    SimDuration::from_millis(500)
}

fn default_keys() -> Keys {
    Keys::Uniform { count: 10_000 }
}

crate::settable!(TxnParticipantConfig {
    replicas,
    coordinator,
    prepare_time,
    vote_no,
    timeout,
    cooperative_termination,
    keys,
    log_blocked_over
});

impl TxnParticipantConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        v.resolve(&at.field("coordinator"), &self.coordinator);
        if self.replicas == 0 || self.replicas as usize > super::MAX_PARTICIPANTS {
            v.error(
                &at.field("replicas"),
                format!("{} participants", self.replicas),
                "expected 1 to 64",
            );
        }
        v.check_dist(&at.field("prepare_time"), &self.prepare_time);
        if !(0.0..=1.0).contains(&self.vote_no) {
            v.error(
                &at.field("vote_no"),
                format!("{} is not a probability", self.vote_no),
                "expected a number from 0.0 to 1.0",
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Preparing (2PC, 3PC): lock held, not voted yet. Volatile.
    Preparing,
    /// Running a saga step: lock held until it commits locally. Volatile.
    Executing,
    /// Voted yes, outcome unknown: blocked. Durable.
    Prepared,
    /// 3PC: pre-commit received. Durable.
    PreCommitted,
}

#[derive(Clone, Copy, Debug)]
struct Branch {
    parts: u64,
    phase: Phase,
    protocol: Protocol,
    key: u64,
    locked_at: SimTime,
    blocked_since: Option<SimTime>,
    timer: Option<TimerId>,
    /// Restarted while holding this branch: ask, never apply the 3PC timeout rules.
    recovered: bool,
}

const TAG_PREPARED: u64 = 1 << TAG_SHIFT;
const TAG_UNCERTAIN: u64 = 2 << TAG_SHIFT;
/// Outcomes remembered for duplicate decisions and peers' questions.
const RECENT_CAP: usize = 1 << 16;

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    prepared: u64,
    committed: u64,
    aborted: u64,
    lock_conflicts: u64,
    voted_no: u64,
    commit_by_timeout: u64,
    abort_by_timeout: u64,
    resolved_by_answer: u64,
    compensated: u64,
    lost_in_crash: u64,
}

/// One participant node.
pub struct TxnParticipant {
    cfg: TxnParticipantConfig,
    coordinator: NodeId,
    peers: Vec<NodeId>,
    idx: usize,
    keys: KeySampler,
    branches: BTreeMap<u64, Branch>,
    locks: BTreeMap<u64, u64>,
    recent: BTreeMap<u64, Known>,
    recent_order: VecDeque<u64>,
    /// Per client (txn id >> 40), the highest transaction id evicted from `recent`: below it,
    /// "not known here" no longer means "never voted", so no one is told abort on that basis.
    forgotten_upto: BTreeMap<u64, u64>,
    checker: Arc<Mutex<TxnChecker>>,
    counts: Counts,
    sent: u64,
}

impl TxnParticipant {
    /// A participant built from its configuration.
    pub fn new(cfg: &TxnParticipantConfig, b: &BuildCtx<'_>) -> Self {
        let peers = b.resolve(b.group());
        let idx = peers.iter().position(|&p| p == b.me()).unwrap_or(0);
        let checker = checker(b, &peers);
        lock(&checker).log_blocked_over(cfg.log_blocked_over);
        TxnParticipant {
            cfg: cfg.clone(),
            coordinator: b.resolve(&cfg.coordinator)[0],
            peers,
            idx,
            keys: cfg.keys.sampler(),
            branches: BTreeMap::new(),
            locks: BTreeMap::new(),
            recent: BTreeMap::new(),
            recent_order: VecDeque::new(),
            forgotten_upto: BTreeMap::new(),
            checker,
            counts: Counts::default(),
            sent: 0,
        }
    }

    fn send(&mut self, ctx: &mut Ctx<'_>, to: NodeId, msg: TxnMsg) {
        self.sent += 1;
        ctx.send(to, Message::Txn(msg));
    }

    fn tell_coordinator(&mut self, ctx: &mut Ctx<'_>, msg: TxnMsg) {
        let c = self.coordinator;
        self.send(ctx, c, msg);
    }

    fn remember(&mut self, txn: u64, known: Known) {
        if self.recent.insert(txn, known).is_none() {
            self.recent_order.push_back(txn);
            if self.recent_order.len() > RECENT_CAP
                && let Some(old) = self.recent_order.pop_front()
            {
                self.recent.remove(&old);
                let upto = self.forgotten_upto.entry(old >> 40).or_insert(old);
                *upto = (*upto).max(old);
            }
        }
    }

    /// Whether `txn` may have been settled here and forgotten since.
    fn forgotten(&self, txn: u64) -> bool {
        self.forgotten_upto
            .get(&(txn >> 40))
            .is_some_and(|&upto| txn <= upto)
    }

    fn on_prepare(&mut self, ctx: &mut Ctx<'_>, txn: u64, parts: u64, seed: u64, p: Protocol) {
        if self.branches.contains_key(&txn) {
            return;
        }
        if let Some(&known) = self.recent.get(&txn) {
            let yes = known == Known::Committed;
            self.tell_coordinator(ctx, TxnMsg::Vote { txn, yes });
            return;
        }
        let key = self.keys.sample(&mut WorkRng::new(seed, self.idx as u64));
        if self.locks.contains_key(&key) {
            self.counts.lock_conflicts += 1;
            self.settle_unseen(ctx.now(), txn, parts);
            self.tell_coordinator(ctx, TxnMsg::Vote { txn, yes: false });
            return;
        }
        self.locks.insert(key, txn);
        let work = self
            .cfg
            .prepare_time
            .sample(ctx.rng())
            .scaled(ctx.slowdown());
        let timer = ctx.set_timer(work, TAG_PREPARED | txn);
        let phase = match p {
            Protocol::Saga => Phase::Executing,
            Protocol::TwoPhase | Protocol::ThreePhase => Phase::Preparing,
        };
        let branch = Branch {
            parts,
            phase,
            protocol: p,
            key,
            locked_at: ctx.now(),
            blocked_since: None,
            timer: Some(timer),
            recovered: false,
        };
        self.branches.insert(txn, branch);
    }

    /// This participant's branch of `txn` aborted without taking effect.
    fn settle_unseen(&mut self, now: SimTime, txn: u64, parts: u64) {
        self.counts.aborted += 1;
        self.remember(txn, Known::Aborted);
        lock(&self.checker).decided(now, txn, parts, self.idx, false);
    }

    fn release(&mut self, now: SimTime, b: &Branch) {
        self.locks.remove(&b.key);
        lock(&self.checker).lock_released(now, b.locked_at);
    }

    /// The prepare work (or saga step) is done: vote.
    fn on_prepared(&mut self, ctx: &mut Ctx<'_>, txn: u64) {
        let Some(mut b) = self.branches.get(&txn).copied() else {
            return;
        };
        let now = ctx.now();
        let no = ctx.rng().chance(self.cfg.vote_no);
        if no || b.phase == Phase::Executing {
            self.branches.remove(&txn);
            self.release(now, &b);
            if no {
                self.counts.voted_no += 1;
                self.settle_unseen(now, txn, b.parts);
            } else {
                // The saga step commits locally: its effect is visible from now on.
                self.counts.committed += 1;
                self.remember(txn, Known::Committed);
                lock(&self.checker).applied(now, txn, b.parts, self.idx);
            }
            self.tell_coordinator(ctx, TxnMsg::Vote { txn, yes: !no });
            return;
        }
        self.counts.prepared += 1;
        b.phase = Phase::Prepared;
        b.blocked_since = Some(now);
        b.timer = Some(ctx.set_timer(self.cfg.timeout, TAG_UNCERTAIN | txn));
        self.branches.insert(txn, b);
        lock(&self.checker).voted_yes(now, txn, b.parts, self.idx, b.protocol);
        self.tell_coordinator(ctx, TxnMsg::Vote { txn, yes: true });
    }

    fn on_pre_commit(&mut self, ctx: &mut Ctx<'_>, txn: u64) {
        let timeout = self.cfg.timeout;
        if let Some(b) = self.branches.get_mut(&txn) {
            if !matches!(b.phase, Phase::Prepared | Phase::PreCommitted) {
                return;
            }
            b.phase = Phase::PreCommitted;
            if let Some(t) = b.timer {
                ctx.cancel_timer(t);
            }
            b.timer = Some(ctx.set_timer(timeout, TAG_UNCERTAIN | txn));
        } else if self.recent.get(&txn) != Some(&Known::Committed) {
            return;
        }
        self.tell_coordinator(ctx, TxnMsg::PreCommitAck { txn });
    }

    /// Apply the outcome to a held branch.
    fn finalize(&mut self, ctx: &mut Ctx<'_>, txn: u64, commit: bool) {
        let Some(b) = self.branches.remove(&txn) else {
            return;
        };
        let now = ctx.now();
        if let Some(t) = b.timer {
            ctx.cancel_timer(t);
        }
        self.release(now, &b);
        let mut c = lock(&self.checker);
        if b.blocked_since.is_some() {
            c.doubt_ended(now, txn, b.parts, self.idx);
        }
        if b.phase == Phase::Executing {
            // A compensation overtook the saga step: the step never takes effect.
            c.refused(now, txn, b.parts, self.idx);
        } else {
            c.decided(now, txn, b.parts, self.idx, commit);
        }
        drop(c);
        if commit {
            self.counts.committed += 1;
        } else {
            self.counts.aborted += 1;
        }
        self.remember(
            txn,
            if commit {
                Known::Committed
            } else {
                Known::Aborted
            },
        );
    }

    fn on_decide(&mut self, ctx: &mut Ctx<'_>, txn: u64, parts: u64, commit: bool) {
        if self.branches.contains_key(&txn) {
            self.finalize(ctx, txn, commit);
        } else if let Some(&known) = self.recent.get(&txn) {
            if known == Known::Committed && !commit {
                // A saga step committed earlier is compensated now.
                self.counts.compensated += 1;
                self.recent.insert(txn, Known::Aborted);
                lock(&self.checker).compensated(ctx.now(), txn, parts, self.idx);
            }
        } else if !commit && !self.forgotten(txn) {
            // The prepare never arrived (or was lost in a crash): refuse it from now on.
            self.settle_unseen(ctx.now(), txn, parts);
        }
        self.tell_coordinator(ctx, TxnMsg::Ack { txn });
    }

    /// Ask the coordinator, and with cooperative termination the peers, about `txn`.
    fn ask(&mut self, ctx: &mut Ctx<'_>, txn: u64, parts: u64) {
        self.tell_coordinator(ctx, TxnMsg::Query { txn, parts });
        if self.cfg.cooperative_termination {
            for i in members(parts) {
                if i != self.idx && i < self.peers.len() {
                    let to = self.peers[i];
                    self.send(ctx, to, TxnMsg::Query { txn, parts });
                }
            }
        }
    }

    fn on_uncertain(&mut self, ctx: &mut Ctx<'_>, txn: u64) {
        let Some(b) = self.branches.get(&txn).copied() else {
            return;
        };
        if b.protocol == Protocol::ThreePhase && !b.recovered {
            let commit = b.phase == Phase::PreCommitted;
            if commit {
                self.counts.commit_by_timeout += 1;
            } else {
                self.counts.abort_by_timeout += 1;
            }
            self.finalize(ctx, txn, commit);
            return;
        }
        self.ask(ctx, txn, b.parts);
        let timer = ctx.set_timer(self.cfg.timeout, TAG_UNCERTAIN | txn);
        if let Some(b) = self.branches.get_mut(&txn) {
            b.timer = Some(timer);
        }
    }

    fn on_query(&mut self, ctx: &mut Ctx<'_>, from: NodeId, txn: u64, parts: u64) {
        let known = if let Some(&k) = self.recent.get(&txn) {
            k
        } else {
            match self.branches.get(&txn).map(|b| b.phase) {
                // Not voted yet: it may still abort, and does, so that the asker can.
                Some(Phase::Preparing) => {
                    self.finalize(ctx, txn, false);
                    Known::Aborted
                }
                Some(Phase::Executing | Phase::Prepared | Phase::PreCommitted) => return,
                None if self.forgotten(txn) => return,
                None => {
                    self.settle_unseen(ctx.now(), txn, parts);
                    Known::Aborted
                }
            }
        };
        self.send(ctx, from, TxnMsg::State { txn, known });
    }

    fn on_state(&mut self, ctx: &mut Ctx<'_>, txn: u64, known: Known) {
        let held = self.branches.get(&txn).map(|b| b.phase);
        if matches!(held, Some(Phase::Prepared | Phase::PreCommitted)) {
            self.counts.resolved_by_answer += 1;
            self.finalize(ctx, txn, known == Known::Committed);
        }
    }
}

impl Node<Builtin> for TxnParticipant {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        let Message::Txn(m) = msg else {
            return;
        };
        match m {
            TxnMsg::Prepare {
                txn,
                parts,
                seed,
                protocol,
            } => self.on_prepare(ctx, txn, parts, seed, protocol),
            TxnMsg::PreCommit { txn } => self.on_pre_commit(ctx, txn),
            TxnMsg::Decide { txn, parts, commit } => self.on_decide(ctx, txn, parts, commit),
            TxnMsg::Query { txn, parts } => self.on_query(ctx, from, txn, parts),
            TxnMsg::State { txn, known } => self.on_state(ctx, txn, known),
            // Participants are not asked to begin transactions and receive no votes or acks.
            TxnMsg::Begin { .. }
            | TxnMsg::Outcome { .. }
            | TxnMsg::Vote { .. }
            | TxnMsg::PreCommitAck { .. }
            | TxnMsg::Ack { .. } => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        let txn = tag & TAG_MASK;
        match tag & !TAG_MASK {
            TAG_PREPARED => self.on_prepared(ctx, txn),
            _ => self.on_uncertain(ctx, txn),
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        // Branches that have not voted are volatile: the crash aborts them locally. Prepared
        // ones are durable and keep their locks; their timers died with the crash.
        let lost: Vec<(u64, Branch)> = self
            .branches
            .iter()
            .filter(|(_, b)| matches!(b.phase, Phase::Preparing | Phase::Executing))
            .map(|(&t, &b)| (t, b))
            .collect();
        for (txn, b) in lost {
            self.branches.remove(&txn);
            self.release(now, &b);
            self.counts.lost_in_crash += 1;
            self.settle_unseen(now, txn, b.parts);
        }
        for b in self.branches.values_mut() {
            b.timer = None;
            b.recovered = true;
        }
    }

    fn on_restart(&mut self, ctx: &mut Ctx<'_>) {
        let held: Vec<(u64, u64)> = self.branches.iter().map(|(&t, b)| (t, b.parts)).collect();
        for (txn, parts) in held {
            self.ask(ctx, txn, parts);
            let timer = ctx.set_timer(self.cfg.timeout, TAG_UNCERTAIN | txn);
            if let Some(b) = self.branches.get_mut(&txn) {
                b.timer = Some(timer);
            }
        }
    }

    fn finish(&mut self, _now: SimTime) -> Option<NodeStats> {
        // Branches still in doubt at the end are counted by the checker itself.
        lock(&self.checker).sent(self.sent);
        let n = self.counts;
        Some(NodeStats::counters([
            ("prepared", n.prepared as f64),
            ("committed", n.committed as f64),
            ("aborted", n.aborted as f64),
            ("lock_conflicts", n.lock_conflicts as f64),
            ("voted_no", n.voted_no as f64),
            ("commit_by_timeout", n.commit_by_timeout as f64),
            ("abort_by_timeout", n.abort_by_timeout as f64),
            ("resolved_by_answer", n.resolved_by_answer as f64),
            ("compensated", n.compensated as f64),
            ("aborted_in_crash", n.lost_in_crash as f64),
            ("blocked_at_end", self.branches.len() as f64),
            ("messages_sent", self.sent as f64),
        ]))
    }
}

#[cfg(test)]
mod tests {
    //! The participant's state machine is exercised end to end in `tests/suite/txn.rs`; here,
    //! the pieces that need no world.
    use super::*;

    #[test]
    fn each_participant_derives_its_own_key_from_the_txn_seed() {
        let keys = Keys::Uniform { count: 1 << 40 }.sampler();
        let a = keys.sample(&mut WorkRng::new(42, 0));
        let b = keys.sample(&mut WorkRng::new(42, 1));
        assert_ne!(a, b);
        assert_eq!(a, keys.sample(&mut WorkRng::new(42, 0)));
    }
}
