//! Distributed transactions: clients, a coordinator and participants speaking two-phase commit
//! (2PC), three-phase commit (3PC) or a saga, and a run-wide checker of atomicity.
//!
//! ```text
//!  TxnClient ──Begin──▶ TxnCoordinator ──Prepare──▶ TxnParticipant (k of them per txn)
//!      ▲                     │  ▲                        │ lock key, prepare_time
//!      └──────Outcome────────┘  └──────────Vote──────────┘
//!
//!  2PC    Prepare ─▶ Vote ─▶ Decide(commit|abort) ─▶ Ack
//!  3PC    Prepare ─▶ Vote ─▶ PreCommit ─▶ PreCommitAck ─▶ Decide(commit) ─▶ Ack
//!  saga   Prepare (= run the local step and commit it) ─▶ Vote; on any failure
//!         Decide(abort) (= compensate) ─▶ Ack
//! ```
//!
//! Participant branch states (durable ones survive a crash):
//! ```text
//!  Preparing ──yes──▶ Prepared ──PreCommit (3PC)──▶ PreCommitted
//!   (volatile)  │      (durable, locks held,            │ (durable, blocked)
//!               │       blocked: outcome unknown)        │
//!               no          │ Decide / peer's answer     │ Decide
//!               ▼           ▼ / 3PC timeout → abort      ▼ / 3PC timeout → commit
//!            aborted     committed | aborted          committed
//! ```
//! A 2PC participant that voted yes waits for the outcome, asking the coordinator (and, with
//! `cooperative_termination`, the other participants) every `timeout`. A 3PC participant
//! applies the termination rules on its own: timed out waiting for pre-commit → abort, timed out
//! in pre-commit → commit. Under a partition that separates participants during pre-commit
//! this gives split outcomes, and the checker ([`checker::TxnChecker`]) reports them.
//!
//! Participants are the nodes of one group; a transaction names its participants by a bit mask
//! over that group's members (so at most 64 participants), which keeps [`TxnMsg`] `Copy`.

pub mod checker;
pub mod client;
pub mod coordinator;
pub mod participant;

use crate::sim::time::SimTime;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most participants a transaction system may have (the width of the participant mask).
pub const MAX_PARTICIPANTS: usize = 64;

/// Name of the run-wide checker all transaction components report to.
pub const CHECKER: &str = "txn-checker";

/// The commit protocol a coordinator runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Protocol {
    /// Two-phase commit: prepare, then commit or abort. Participants that voted yes block
    /// until they learn the outcome.
    TwoPhase,
    /// Three-phase commit: prepare, pre-commit, commit. Participants terminate on their own
    /// after a timeout (waiting for pre-commit → abort, in pre-commit → commit).
    ThreePhase,
    /// A saga: each participant commits its step at once; a failure is undone by
    /// compensating the steps already committed. No locks are held across the transaction,
    /// and other transactions can see partial effects until the compensation is done.
    Saga,
}

/// What a participant knows about a transaction's outcome, in answer to a [`TxnMsg::Query`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    /// It committed.
    Committed,
    /// It aborted (or, for a saga, was compensated).
    Aborted,
}

/// The messages of the transaction protocols. `txn` identifies the transaction run-wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnMsg {
    /// Client → coordinator: run a transaction over the participants in `parts`.
    Begin {
        /// Transaction id.
        txn: u64,
        /// Participants, a bit per member of the participant group.
        parts: u64,
        /// Random bits from which each participant derives the key it locks.
        seed: u64,
    },
    /// Coordinator → client: the outcome.
    Outcome {
        /// Transaction id.
        txn: u64,
        /// Committed (true) or aborted.
        committed: bool,
    },
    /// Coordinator → participant: prepare (2PC, 3PC) or run and commit the step (saga).
    Prepare {
        /// Transaction id.
        txn: u64,
        /// All participants of the transaction (for cooperative termination).
        parts: u64,
        /// See [`TxnMsg::Begin`].
        seed: u64,
        /// Which protocol the coordinator runs.
        protocol: Protocol,
    },
    /// Participant → coordinator: prepared (yes) or not (no); for a saga, step done or failed.
    Vote {
        /// Transaction id.
        txn: u64,
        /// Yes.
        yes: bool,
    },
    /// Coordinator → participant (3PC): everyone voted yes.
    PreCommit {
        /// Transaction id.
        txn: u64,
    },
    /// Participant → coordinator (3PC): pre-commit received.
    PreCommitAck {
        /// Transaction id.
        txn: u64,
    },
    /// Coordinator → participant: the outcome (for a saga, `commit: false` = compensate).
    Decide {
        /// Transaction id.
        txn: u64,
        /// All participants of the transaction.
        parts: u64,
        /// Commit (true) or abort.
        commit: bool,
    },
    /// Participant → coordinator: outcome applied.
    Ack {
        /// Transaction id.
        txn: u64,
    },
    /// Participant → coordinator or peer: do you know the outcome?
    Query {
        /// Transaction id.
        txn: u64,
        /// All participants of the transaction.
        parts: u64,
    },
    /// Answer to a [`TxnMsg::Query`] by a node that knows the outcome.
    State {
        /// Transaction id.
        txn: u64,
        /// The outcome.
        known: Known,
    },
}

/// Timer tags: the top two bits say what the timer is for, the rest is the transaction id.
pub(crate) const TAG_SHIFT: u32 = 62;
pub(crate) const TAG_MASK: u64 = (1 << TAG_SHIFT) - 1;

/// Transaction ids are `client node id << 40 | sequence`, unique in the run and below 2^62.
pub(crate) fn txn_id(client: u32, seq: u64) -> u64 {
    ((client as u64) << 40) | (seq & ((1 << 40) - 1))
}

/// Iterate over the participant indices set in `mask`.
pub(crate) fn members(mask: u64) -> impl Iterator<Item = usize> {
    (0..MAX_PARTICIPANTS).filter(move |i| mask & (1 << i) != 0)
}

/// Milliseconds between two times, for metrics.
pub(crate) fn ms_between(from: SimTime, to: SimTime) -> f64 {
    to.since(from).as_secs_f64() * 1e3
}
