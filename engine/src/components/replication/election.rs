//! Raft-style leader election for the leader/follower mode of `ReplicatedStore`: the messages
//! the replicas exchange ([`RaftMsg`]) and the run-wide [`ElectionChecker`] that sees every
//! leader elected and checks that no term ever has two.
//!
//! ```text
//!  follower ──election timeout (random in [min, max])──▶ candidate: term + 1, vote for itself,
//!     ▲                                                   RequestVote ─▶ every peer
//!     │ hears a higher term                               majority of votes ─▶ leader
//!     │ (any message)                                     timeout again (split vote) ─▶
//!     │                                                   new term, new random timeout
//!  leader: Heartbeat every `heartbeat_interval`, appends entries; no timeout of its own, so a
//!          partitioned leader keeps believing until it hears a higher term.
//!  vote rule: one vote per term (durable), only for a candidate whose log is at least as up
//!             to date: (last term, last index) >= mine.
//! ```

use crate::contract::build::Observer;
use crate::contract::call::{CallId, Op, RequestId};
use crate::contract::metrics::{EventLog, NodeStats};
use crate::results::Verdict;
use crate::sim::time::SimTime;
use std::collections::{BTreeMap, BTreeSet};

/// What the replicas of a leader/follower store say to each other (inside
/// `ReplicaMsg::Raft`). Terms are `u32` to keep the message small.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RaftMsg {
    /// A candidate asks for a vote in `term`.
    RequestVote {
        /// The candidate's term.
        term: u32,
        /// Term of the candidate's last log entry.
        last_term: u32,
        /// Index of the candidate's last log entry.
        last_index: u64,
    },
    /// The answer to a `RequestVote`.
    Vote {
        /// The voter's term.
        term: u32,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// The leader's log entry at `prev_index + 1`, after the entry (`prev_index`, `prev_term`).
    Append {
        /// The leader's term.
        term: u32,
        /// Term of the entry before this one.
        prev_term: u32,
        /// Term of this entry.
        entry_term: u32,
        /// Index of the entry before this one.
        prev_index: u64,
        /// The key written (`NOOP_KEY`: the no-op a new leader appends).
        key: u64,
        /// The value written.
        value: u64,
        /// Entries up to this index are on every replica: they may be compacted.
        all: u64,
    },
    /// The leader is alive and its log ends with (`last_index`, `last_term`).
    Heartbeat {
        /// The leader's term.
        term: u32,
        /// Term of the leader's last entry.
        last_term: u32,
        /// Index of the leader's last entry.
        last_index: u64,
        /// Entries up to this index are on every replica.
        all: u64,
    },
    /// A follower's answer to `Append` / `Heartbeat`.
    Appended {
        /// The follower's term.
        term: u32,
        /// `true`: the follower's log matches the leader's through `index`; `false`: it does
        /// not go that far, send again from `index + 1`.
        ok: bool,
        /// See `ok`.
        index: u64,
    },
    /// An operation a follower received from `client`, for the leader to serve (it answers
    /// the client directly).
    Forward {
        /// Read or write.
        op: Op,
        /// The client that sent the write.
        client: u32,
        /// The client's call.
        call: CallId,
        /// The client's request.
        id: RequestId,
        /// The key.
        key: u64,
        /// The value.
        value: u64,
    },
}

/// State changes kept in the checker's table.
const MAX_EVENTS: usize = 200;

/// The run-wide election checker: every replica reports candidacies, elections, leader crashes
/// and step-downs; it counts terms with two leaders (must be 0) and measures each period
/// without a leader, from the leader's crash (or, for a leader cut off while alive, from the
/// last time the new leader heard from it) to the next leader being elected.
#[derive(Debug)]
pub struct ElectionChecker {
    /// Leader of each term (the first one elected), by term.
    leaders: BTreeMap<u32, u32>,
    names: BTreeMap<u32, String>,
    candidacies: u64,
    elected: u64,
    two_leaders: u64,
    /// Terms in which a second leader was elected.
    terms_violated: BTreeSet<u32>,
    /// The current leader as far as the ground truth knows: (term, node).
    current: Option<(u32, u32)>,
    /// When the current leader crashed, if it did.
    down_since: Option<SimTime>,
    first_leader_at: Option<SimTime>,
    gaps: Vec<f64>,
    log: EventLog,
}

impl Default for ElectionChecker {
    fn default() -> Self {
        ElectionChecker {
            leaders: BTreeMap::new(),
            names: BTreeMap::new(),
            candidacies: 0,
            elected: 0,
            two_leaders: 0,
            terms_violated: BTreeSet::new(),
            current: None,
            down_since: None,
            first_leader_at: None,
            gaps: Vec::new(),
            log: EventLog::new(MAX_EVENTS),
        }
    }
}

impl ElectionChecker {
    /// Name `node` in the state-change table.
    pub fn name(&mut self, node: u32, name: &str) {
        self.names.insert(node, name.to_string());
    }

    fn who(&self, node: u32) -> String {
        self.names
            .get(&node)
            .cloned()
            .unwrap_or_else(|| format!("node {node}"))
    }

    /// A replica started an election.
    pub fn candidacy(&mut self) {
        self.candidacies += 1;
    }

    /// `node` won the election of `term` at `now`; it last heard from a leader at
    /// `last_heard` (if ever).
    pub fn elected(&mut self, now: SimTime, term: u32, node: u32, last_heard: Option<SimTime>) {
        self.elected += 1;
        if let Some(&other) = self.leaders.get(&term) {
            if other != node {
                self.two_leaders += 1;
                self.terms_violated.insert(term);
                let what = format!(
                    "VIOLATION: term {term} has two leaders, {} and {}",
                    self.who(other),
                    self.who(node)
                );
                self.log.record(now, what);
            }
            return;
        }
        self.leaders.insert(term, node);
        let newer = self.current.is_none_or(|(t, _)| term > t);
        let gap_from = match (self.first_leader_at, self.down_since) {
            (None, _) => None,
            (Some(_), Some(t)) => Some(t),
            (Some(_), None) => last_heard,
        };
        let mut what = format!("{} elected leader of term {term}", self.who(node));
        if self.first_leader_at.is_none() {
            self.first_leader_at = Some(now);
            what.push_str(" (first leader)");
        } else if let Some(from) = gap_from.filter(|_| newer) {
            let gap = now.0.saturating_sub(from.0) as f64 / 1e6;
            self.gaps.push(gap);
            what.push_str(&format!(" after {gap:.1} ms without a leader"));
        }
        if newer {
            self.current = Some((term, node));
            self.down_since = None;
        }
        self.log.record(now, what);
    }

    /// The leader `node` of `term` crashed at `now`.
    pub fn leader_crashed(&mut self, now: SimTime, term: u32, node: u32) {
        if self.current == Some((term, node)) {
            self.down_since = Some(now);
        }
        let what = format!("{} (leader of term {term}) crashed", self.who(node));
        self.log.record(now, what);
    }

    /// The leader `node` of `term` stepped down on hearing `new_term`.
    pub fn stepped_down(&mut self, now: SimTime, term: u32, node: u32, new_term: u32) {
        let what = format!(
            "{} (leader of term {term}) stepped down on hearing term {new_term}",
            self.who(node)
        );
        self.log.record(now, what);
    }
}

impl Observer for ElectionChecker {
    fn finish(&mut self, _now: SimTime) -> NodeStats {
        let n = self.gaps.len();
        let mean = if n == 0 {
            0.0
        } else {
            self.gaps.iter().sum::<f64>() / n as f64
        };
        let max = self.gaps.iter().copied().fold(0.0, f64::max);
        let counters = BTreeMap::from([
            ("elections_started".to_string(), self.candidacies as f64),
            ("leaders_elected".to_string(), self.elected as f64),
            (
                "highest_term".to_string(),
                self.leaders.keys().next_back().copied().unwrap_or(0) as f64,
            ),
            (
                "terms_with_two_leaders".to_string(),
                self.two_leaders as f64,
            ),
            (
                "first_leader_s".to_string(),
                self.first_leader_at.map_or(-1.0, |t| t.as_secs_f64()),
            ),
            ("leaderless_periods".to_string(), n as f64),
            ("leaderless_mean_ms".to_string(), mean),
            ("leaderless_max_ms".to_string(), max),
            (
                "events_over_table_cap".to_string(),
                self.log.dropped() as f64,
            ),
        ]);
        // Every term with a leader is decided: the checker sees every election.
        let violated = self.terms_violated.len() as u64;
        let verdict = Verdict::new(
            "one leader per term",
            "terms",
            self.leaders.len() as u64,
            violated,
            0,
        );
        NodeStats {
            counters,
            events: self.log.take(),
            verdicts: vec![verdict],
            ..NodeStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_leaders_in_one_term_are_counted_and_gaps_measured_from_the_crash() {
        let mut c = ElectionChecker::default();
        c.elected(SimTime(100), 1, 0, None);
        c.leader_crashed(SimTime(1_000_000), 1, 0);
        c.elected(SimTime(251_000_000), 2, 1, Some(SimTime(900_000)));
        c.elected(SimTime(252_000_000), 2, 1, None); // the same leader reported twice: fine
        c.elected(SimTime(253_000_000), 2, 2, None);
        let s = c.finish(SimTime(300_000_000));
        assert_eq!(s.counters["terms_with_two_leaders"], 1.0);
        let v = &s.verdicts[0];
        assert_eq!((v.checked, v.violated, v.unchecked), (2, 1, 0));
        assert_eq!(s.counters["leaderless_periods"], 1.0);
        assert_eq!(s.counters["leaderless_max_ms"], 250.0);
        assert_eq!(s.counters["highest_term"], 2.0);
        assert!(s.events.iter().any(|e| e.what.starts_with("VIOLATION")));
    }

    #[test]
    fn a_leader_cut_off_alive_counts_from_when_the_new_leader_last_heard_it() {
        let mut c = ElectionChecker::default();
        c.elected(SimTime(0), 1, 0, None);
        c.elected(SimTime(400_000_000), 2, 1, Some(SimTime(100_000_000)));
        let s = c.finish(SimTime(500_000_000));
        assert_eq!(s.counters["leaderless_max_ms"], 300.0);
        assert_eq!(s.counters["terms_with_two_leaders"], 0.0);
    }
}
