//! `TxnCoordinator`: runs 2PC, 3PC or a saga for each transaction a client begins, with a
//! durable decision log that survives crashes.
//!
//! ```text
//!  Begin ─▶ log begin ─▶ Prepare all ─▶ votes ─all yes─▶ 2PC:  log commit ─▶ Decide(commit)
//!                           │                        ├─▶ 3PC:  log pre-commit ─▶ PreCommit all
//!                           │                        │         ─▶ acks (or ack_timeout)
//!                           │                        │         ─▶ log commit ─▶ Decide(commit)
//!                           │                        └─▶ saga: committed (steps are done)
//!                           └─ a no, or vote_timeout ─▶ log abort ─▶ Decide(abort) all
//!  Decide is resent every ack_timeout (doubling, up to 1s) until every participant acked;
//!  then the log entry is dropped.
//! ```
//! The log is the coordinator's only durable state. On restart it finishes every logged
//! transaction: no decision yet → abort; pre-commit logged (3PC) → commit; decided → resend.
//! A participant's `Query` is answered from the log; a transaction the log does not know was
//! either never begun or finished with every participant acked, so the answer is abort
//! (presumed abort).

use super::checker::TxnChecker;
use super::{CHECKER, Known, Protocol, TAG_MASK, TAG_SHIFT, TxnMsg, members};
use crate::components::message::{Builtin, Ctx, Message};
use crate::contract::build::BuildCtx;
use crate::contract::metrics::NodeStats;
use crate::contract::validate::{Path, Validator};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Coordinates the transactions clients begin over a group of `TxnParticipant`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "TxnCoordinator", deny_unknown_fields)]
pub struct TxnCoordinatorConfig {
    /// `TwoPhase`, `ThreePhase` or `Saga`. Default `TwoPhase`.
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
    /// The `TxnParticipant` group (at most 64 nodes); must be the group the clients name.
    pub participants: String,
    /// Abort a transaction whose votes (saga: step results) are not all in after this long
    /// (duration). Default "100ms".
    #[serde(default = "default_timeout")]
    pub vote_timeout: SimDuration,
    /// 3PC: commit after this long in pre-commit even if not every participant acknowledged;
    /// also the first interval for resending a decision that was not acknowledged (duration).
    /// Default "100ms".
    #[serde(default = "default_timeout")]
    pub ack_timeout: SimDuration,
}

fn default_protocol() -> Protocol {
    Protocol::TwoPhase
}

fn default_timeout() -> SimDuration {
    SimDuration::from_millis(100)
}

crate::settable!(TxnCoordinatorConfig {
    protocol,
    participants,
    vote_timeout,
    ack_timeout
});

impl TxnCoordinatorConfig {
    /// Check the participant group and the timeouts.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        check_participants(v, &at.field("participants"), &self.participants);
        for (field, d) in [
            ("vote_timeout", self.vote_timeout),
            ("ack_timeout", self.ack_timeout),
        ] {
            if d == SimDuration::ZERO {
                v.error(
                    &at.field(field),
                    "a zero timeout",
                    "expected a positive duration",
                );
            }
        }
    }
}

/// Check that `name` resolves to 1..=64 nodes.
pub(crate) fn check_participants(v: &mut Validator, at: &Path, name: &str) {
    if let Some(ids) = v.resolve(at, name)
        && ids.len() > super::MAX_PARTICIPANTS
    {
        let n = ids.len();
        v.error(
            at,
            format!("{n} participants"),
            "expected at most 64 participants",
        );
    }
}

/// What the durable log holds about a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    /// Begun, votes being collected.
    Undecided,
    /// 3PC: every participant voted yes; pre-commit sent.
    PreCommit,
    /// Decided.
    Final(bool),
}

#[derive(Clone, Copy, Debug)]
struct LogEntry {
    parts: u64,
    client: NodeId,
    decision: Decision,
    acked: u64,
    resend_after: SimDuration,
}

/// Volatile state of a transaction whose votes or pre-commit acks are being collected.
#[derive(Clone, Copy, Debug)]
struct Active {
    yes: u64,
    acked: u64,
    timer: TimerId,
}

const TAG_PHASE: u64 = 1 << TAG_SHIFT;
const TAG_RESEND: u64 = 2 << TAG_SHIFT;
const MAX_RESEND: SimDuration = SimDuration::from_secs(1);

/// The coordinator node.
pub struct TxnCoordinator {
    cfg: TxnCoordinatorConfig,
    participants: Vec<NodeId>,
    /// Participant index of each node id (`usize::MAX` for other nodes).
    index_of: Vec<usize>,
    log: BTreeMap<u64, LogEntry>,
    active: BTreeMap<u64, Active>,
    checker: Arc<Mutex<TxnChecker>>,
    sent: u64,
    begun: u64,
    committed: u64,
    aborted: u64,
    recovered: u64,
}

impl TxnCoordinator {
    /// A coordinator built from its configuration.
    pub fn new(cfg: &TxnCoordinatorConfig, b: &BuildCtx<'_>) -> Self {
        let participants = b.resolve(&cfg.participants);
        let mut index_of = Vec::new();
        for (i, p) in participants.iter().enumerate() {
            if index_of.len() <= p.idx() {
                index_of.resize(p.idx() + 1, usize::MAX);
            }
            index_of[p.idx()] = i;
        }
        let checker = checker(b, &participants);
        lock(&checker).coordinator(cfg.vote_timeout, cfg.ack_timeout);
        TxnCoordinator {
            cfg: cfg.clone(),
            checker,
            participants,
            index_of,
            log: BTreeMap::new(),
            active: BTreeMap::new(),
            sent: 0,
            begun: 0,
            committed: 0,
            aborted: 0,
            recovered: 0,
        }
    }

    fn send(&mut self, ctx: &mut Ctx<'_>, to: NodeId, msg: TxnMsg) {
        self.sent += 1;
        ctx.send(to, Message::Txn(msg));
    }

    fn index(&self, from: NodeId) -> Option<usize> {
        self.index_of
            .get(from.idx())
            .copied()
            .filter(|&i| i != usize::MAX)
    }

    fn begin(&mut self, ctx: &mut Ctx<'_>, client: NodeId, txn: u64, parts: u64, seed: u64) {
        if self.log.contains_key(&txn) {
            return;
        }
        self.begun += 1;
        lock(&self.checker).begun();
        self.log.insert(
            txn,
            LogEntry {
                parts,
                client,
                decision: Decision::Undecided,
                acked: 0,
                resend_after: self.cfg.ack_timeout,
            },
        );
        let protocol = self.cfg.protocol;
        for i in members(parts) {
            let to = self.participants[i];
            let msg = TxnMsg::Prepare {
                txn,
                parts,
                seed,
                protocol,
            };
            self.send(ctx, to, msg);
        }
        let timer = ctx.set_timer(self.cfg.vote_timeout, TAG_PHASE | txn);
        let a = Active {
            yes: 0,
            acked: 0,
            timer,
        };
        self.active.insert(txn, a);
    }

    fn on_vote(&mut self, ctx: &mut Ctx<'_>, idx: usize, txn: u64, yes: bool) {
        let Some(entry) = self.log.get(&txn).copied() else {
            return;
        };
        if entry.decision != Decision::Undecided {
            return;
        }
        let Some(a) = self.active.get_mut(&txn) else {
            return;
        };
        if !yes {
            self.decide(ctx, txn, false);
            return;
        }
        a.yes |= 1 << idx;
        if a.yes != entry.parts {
            return;
        }
        match self.cfg.protocol {
            Protocol::TwoPhase | Protocol::Saga => self.decide(ctx, txn, true),
            Protocol::ThreePhase => self.pre_commit(ctx, txn, entry.parts),
        }
    }

    fn pre_commit(&mut self, ctx: &mut Ctx<'_>, txn: u64, parts: u64) {
        if let Some(e) = self.log.get_mut(&txn) {
            e.decision = Decision::PreCommit;
        }
        for i in members(parts) {
            let to = self.participants[i];
            self.send(ctx, to, TxnMsg::PreCommit { txn });
        }
        let timer = ctx.set_timer(self.cfg.ack_timeout, TAG_PHASE | txn);
        if let Some(a) = self.active.get_mut(&txn) {
            ctx.cancel_timer(a.timer);
            a.timer = timer;
        }
    }

    fn on_pre_commit_ack(&mut self, ctx: &mut Ctx<'_>, idx: usize, txn: u64) {
        let Some(entry) = self.log.get(&txn).copied() else {
            return;
        };
        let Some(a) = self.active.get_mut(&txn) else {
            return;
        };
        a.acked |= 1 << idx;
        if entry.decision == Decision::PreCommit && a.acked == entry.parts {
            self.decide(ctx, txn, true);
        }
    }

    /// Log the outcome, tell the participants and the client.
    fn decide(&mut self, ctx: &mut Ctx<'_>, txn: u64, commit: bool) {
        if let Some(a) = self.active.remove(&txn) {
            ctx.cancel_timer(a.timer);
        }
        let Some(e) = self.log.get_mut(&txn) else {
            return;
        };
        e.decision = Decision::Final(commit);
        let entry = *e;
        if commit {
            self.committed += 1;
        } else {
            self.aborted += 1;
        }
        self.send(
            ctx,
            entry.client,
            TxnMsg::Outcome {
                txn,
                committed: commit,
            },
        );
        if commit && self.cfg.protocol == Protocol::Saga {
            // Every step is committed already: nothing to tell the participants.
            self.log.remove(&txn);
            lock(&self.checker).saga_committed(ctx.now(), txn);
            return;
        }
        self.send_decision(ctx, txn, entry);
    }

    fn send_decision(&mut self, ctx: &mut Ctx<'_>, txn: u64, entry: LogEntry) {
        let Decision::Final(commit) = entry.decision else {
            return;
        };
        for i in members(entry.parts & !entry.acked) {
            let to = self.participants[i];
            let parts = entry.parts;
            self.send(ctx, to, TxnMsg::Decide { txn, parts, commit });
        }
        ctx.set_timer(entry.resend_after, TAG_RESEND | txn);
    }

    fn on_ack(&mut self, idx: usize, txn: u64) {
        if let Some(e) = self.log.get_mut(&txn)
            && matches!(e.decision, Decision::Final(_))
        {
            e.acked |= 1 << idx;
            if e.acked == e.parts {
                self.log.remove(&txn);
            }
        }
    }

    fn on_query(&mut self, ctx: &mut Ctx<'_>, from: NodeId, txn: u64) {
        let known = match self.log.get(&txn).map(|e| e.decision) {
            Some(Decision::Final(true)) => Known::Committed,
            Some(Decision::Final(false)) | None => Known::Aborted,
            // Still deciding: the answer comes with the decision.
            Some(Decision::Undecided | Decision::PreCommit) => return,
        };
        self.send(ctx, from, TxnMsg::State { txn, known });
    }

    fn on_phase_timeout(&mut self, ctx: &mut Ctx<'_>, txn: u64) {
        match self.log.get(&txn).map(|e| e.decision) {
            Some(Decision::Undecided) => self.decide(ctx, txn, false),
            // 3PC: everyone voted yes, so the outcome is commit even without every ack.
            Some(Decision::PreCommit) => self.decide(ctx, txn, true),
            Some(Decision::Final(_)) | None => {}
        }
    }

    fn on_resend(&mut self, ctx: &mut Ctx<'_>, txn: u64) {
        let Some(e) = self.log.get_mut(&txn) else {
            return;
        };
        e.resend_after = SimDuration(e.resend_after.0.saturating_mul(2)).min(MAX_RESEND);
        let entry = *e;
        self.send_decision(ctx, txn, entry);
    }
}

/// The run's transaction checker, created by the first transaction component built.
pub(crate) fn checker(b: &BuildCtx<'_>, participants: &[NodeId]) -> Arc<Mutex<TxnChecker>> {
    let names = participants
        .iter()
        .map(|&p| b.node_name(p).to_string())
        .collect();
    let window = b.window();
    b.observer(CHECKER, || TxnChecker::new(names, window))
}

/// The checker's lock; a poisoned lock only means another thread panicked already.
pub(crate) fn lock(c: &Mutex<TxnChecker>) -> std::sync::MutexGuard<'_, TxnChecker> {
    c.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Node<Builtin> for TxnCoordinator {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        let Message::Txn(m) = msg else {
            return;
        };
        let idx = self.index(from);
        match (m, idx) {
            (TxnMsg::Begin { txn, parts, seed }, _) => self.begin(ctx, from, txn, parts, seed),
            (TxnMsg::Vote { txn, yes }, Some(i)) => self.on_vote(ctx, i, txn, yes),
            (TxnMsg::PreCommitAck { txn }, Some(i)) => self.on_pre_commit_ack(ctx, i, txn),
            (TxnMsg::Ack { txn }, Some(i)) => self.on_ack(i, txn),
            (TxnMsg::Query { txn, .. }, _) => self.on_query(ctx, from, txn),
            // Coordinators receive nothing else; votes from non-participants are ignored.
            (
                TxnMsg::Vote { .. }
                | TxnMsg::PreCommitAck { .. }
                | TxnMsg::Ack { .. }
                | TxnMsg::Outcome { .. }
                | TxnMsg::Prepare { .. }
                | TxnMsg::PreCommit { .. }
                | TxnMsg::Decide { .. }
                | TxnMsg::State { .. },
                _,
            ) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        let txn = tag & TAG_MASK;
        match tag & !TAG_MASK {
            TAG_PHASE => self.on_phase_timeout(ctx, txn),
            _ => self.on_resend(ctx, txn),
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        // Votes and acks being collected are volatile; the log is durable.
        self.active.clear();
    }

    fn on_restart(&mut self, ctx: &mut Ctx<'_>) {
        let pending: Vec<(u64, Decision)> =
            self.log.iter().map(|(&t, e)| (t, e.decision)).collect();
        for (txn, decision) in pending {
            self.recovered += 1;
            match decision {
                Decision::Undecided => self.decide(ctx, txn, false),
                Decision::PreCommit => self.decide(ctx, txn, true),
                Decision::Final(_) => {
                    let entry = self.log[&txn];
                    self.send_decision(ctx, txn, entry);
                }
            }
        }
    }

    fn finish(&mut self, _now: SimTime) -> Option<NodeStats> {
        lock(&self.checker).sent(self.sent);
        Some(NodeStats::counters([
            ("begun", self.begun as f64),
            ("committed", self.committed as f64),
            ("aborted", self.aborted as f64),
            ("recovered_after_restart", self.recovered as f64),
            ("log_entries_at_end", self.log.len() as f64),
            ("messages_sent", self.sent as f64),
        ]))
    }
}
