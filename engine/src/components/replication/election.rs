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
use crate::sim::time::{SimDuration, SimTime};
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

/// How the cluster lost the leader of a leaderless period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lost {
    /// The leader crashed.
    Crash,
    /// The leader was alive but a majority stopped hearing it (a partition, lost messages).
    CutOff,
    /// The leader, still heard by a majority, stepped down on hearing a higher term: a
    /// disruptive election, typically by a replica that had been cut off and kept
    /// incrementing its term.
    StepDown,
}

/// The run-wide election checker: every replica reports candidacies, elections, leader crashes,
/// step-downs and each message it hears from its leader; it counts terms with two leaders
/// (must be 0) and measures each period without a leader, from when the cluster lost its
/// leader to the next leader being elected. The cluster loses its leader when it crashes,
/// when it steps down, or when a majority stops hearing it (measured from the last time the
/// majority heard it), whichever comes first; a leader that a majority had not heard for two
/// heartbeat intervals before it crashed or stepped down had been cut off already.
#[derive(Debug)]
pub struct ElectionChecker {
    /// Leader of each term (the first one elected), by term.
    leaders: BTreeMap<u32, u32>,
    names: BTreeMap<u32, String>,
    /// Replicas in the group (a majority of them elects a leader).
    members: u32,
    heartbeat: SimDuration,
    candidacies: u64,
    elected: u64,
    two_leaders: u64,
    /// Terms in which a second leader was elected.
    terms_violated: BTreeSet<u32>,
    /// The current leader as far as the ground truth knows: (term, node), and when elected.
    current: Option<(u32, u32, SimTime)>,
    /// When and how the current leader stopped leading, if it did (crash or step-down).
    lost: Option<(SimTime, Lost)>,
    /// When each follower last heard the current leader.
    heard: BTreeMap<u32, SimTime>,
    first_leader_at: Option<SimTime>,
    /// Each leaderless period: its length in ms and how it began.
    gaps: Vec<(f64, Lost)>,
    log: EventLog,
}

impl Default for ElectionChecker {
    fn default() -> Self {
        ElectionChecker {
            leaders: BTreeMap::new(),
            names: BTreeMap::new(),
            members: 0,
            heartbeat: SimDuration::ZERO,
            candidacies: 0,
            elected: 0,
            two_leaders: 0,
            terms_violated: BTreeSet::new(),
            current: None,
            lost: None,
            heard: BTreeMap::new(),
            first_leader_at: None,
            gaps: Vec::new(),
            log: EventLog::new(MAX_EVENTS),
        }
    }
}

impl ElectionChecker {
    /// `node`, called `name`, is a replica of the group; its leader sends a heartbeat every
    /// `heartbeat`.
    pub fn member(&mut self, node: u32, name: &str, heartbeat: SimDuration) {
        self.names.insert(node, name.to_string());
        self.members += 1;
        self.heartbeat = self.heartbeat.max(heartbeat);
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

    /// `follower` heard from `leader`, the leader of `term`, at `now`.
    pub fn heard(&mut self, now: SimTime, term: u32, leader: u32, follower: u32) {
        if self
            .current
            .is_some_and(|(t, l, _)| (t, l) == (term, leader))
        {
            self.heard.insert(follower, now);
        }
    }

    /// When and how the cluster lost its current leader, as seen when a new one is elected.
    fn loss(&self) -> Option<(SimTime, Lost)> {
        let (_, _, since) = self.current?;
        // Followers a leader needs to hear it besides itself to be heard by a majority.
        let needed = (self.members / 2) as usize;
        if needed == 0 {
            return self.lost;
        }
        // The last time a majority heard the leader: its contact with a majority ended then.
        let mut times: Vec<SimTime> = self.heard.values().copied().collect();
        times.sort_unstable_by(|a, b| b.cmp(a));
        let heard = times.get(needed - 1).copied().unwrap_or(since);
        match self.lost {
            // Nothing reached a majority for two heartbeats before: it was cut off already.
            Some((at, _)) if heard.after(self.heartbeat).after(self.heartbeat) < at => {
                Some((heard, Lost::CutOff))
            }
            Some(lost) => Some(lost),
            None => Some((heard, Lost::CutOff)),
        }
    }

    /// `node` won the election of `term` at `now`.
    pub fn elected(&mut self, now: SimTime, term: u32, node: u32) {
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
        let newer = self.current.is_none_or(|(t, _, _)| term > t);
        let mut what = format!("{} elected leader of term {term}", self.who(node));
        if self.first_leader_at.is_none() {
            self.first_leader_at = Some(now);
            what.push_str(" (first leader)");
        } else if let Some((from, how)) = self.loss().filter(|_| newer) {
            let gap = now.0.saturating_sub(from.0) as f64 / 1e6;
            self.gaps.push((gap, how));
            let why = match how {
                Lost::Crash => "the leader crashed",
                Lost::CutOff => "a majority lost contact with the leader",
                Lost::StepDown => "disruptive: the leader stepped down",
            };
            what.push_str(&format!(" after {gap:.1} ms without a leader ({why})"));
        }
        if newer {
            self.current = Some((term, node, now));
            self.lost = None;
            self.heard.clear();
        }
        self.log.record(now, what);
    }

    /// The leader `node` of `term` crashed at `now`.
    pub fn leader_crashed(&mut self, now: SimTime, term: u32, node: u32) {
        self.stopped(now, term, node, Lost::Crash);
        let what = format!("{} (leader of term {term}) crashed", self.who(node));
        self.log.record(now, what);
    }

    /// The leader `node` of `term` stepped down on hearing `new_term`.
    pub fn stepped_down(&mut self, now: SimTime, term: u32, node: u32, new_term: u32) {
        self.stopped(now, term, node, Lost::StepDown);
        let what = format!(
            "{} (leader of term {term}) stepped down on hearing term {new_term}",
            self.who(node)
        );
        self.log.record(now, what);
    }

    fn stopped(&mut self, now: SimTime, term: u32, node: u32, how: Lost) {
        let current = self.current.is_some_and(|(t, l, _)| (t, l) == (term, node));
        if current && self.lost.is_none() {
            self.lost = Some((now, how));
        }
    }
}

/// (count, mean, max) of the gaps in `ms`.
fn stats(ms: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let (n, sum, max) = ms.fold((0.0, 0.0, 0.0f64), |(n, s, m), x| {
        (n + 1.0, s + x, m.max(x))
    });
    (n, if n > 0.0 { sum / n } else { 0.0 }, max)
}

impl Observer for ElectionChecker {
    fn finish(&mut self, _now: SimTime) -> NodeStats {
        let (n, mean, max) = stats(self.gaps.iter().map(|g| g.0));
        let of = |how: Lost| stats(self.gaps.iter().filter(|g| g.1 == how).map(|g| g.0));
        let (crashes, _, _) = of(Lost::Crash);
        let (cut_off, _, _) = of(Lost::CutOff);
        let (disruptive, disruptive_mean, disruptive_max) = of(Lost::StepDown);
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
            ("leaderless_periods".to_string(), n),
            ("leaderless_mean_ms".to_string(), mean),
            ("leaderless_max_ms".to_string(), max),
            ("leaderless_after_crash".to_string(), crashes),
            ("leaderless_after_cut_off".to_string(), cut_off),
            ("disruptive_elections".to_string(), disruptive),
            ("disruptive_leaderless_mean_ms".to_string(), disruptive_mean),
            ("disruptive_leaderless_max_ms".to_string(), disruptive_max),
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

    fn ms(t: u64) -> SimTime {
        SimTime(t * 1_000_000)
    }

    /// Three replicas 0, 1, 2 with heartbeats every 50 ms.
    fn checker() -> ElectionChecker {
        let mut c = ElectionChecker::default();
        for i in 0..3 {
            c.member(i, &format!("r{i}"), SimDuration::from_millis(50));
        }
        c
    }

    /// Followers 1 and 2 hear leader 0 of `term` every 50 ms up to `until` ms.
    fn heartbeats(c: &mut ElectionChecker, term: u32, from: u64, until: u64) {
        for t in (from..=until).step_by(50) {
            c.heard(ms(t), term, 0, 1);
            c.heard(ms(t), term, 0, 2);
        }
    }

    #[test]
    fn two_leaders_in_one_term_are_counted_and_gaps_measured_from_the_crash() {
        let mut c = checker();
        c.elected(SimTime(100), 1, 0);
        heartbeats(&mut c, 1, 0, 950);
        c.leader_crashed(ms(1), 1, 0);
        c.elected(ms(251), 2, 1);
        c.elected(ms(252), 2, 1); // the same leader reported twice: fine
        c.elected(ms(253), 2, 2);
        let s = c.finish(ms(300));
        assert_eq!(s.counters["terms_with_two_leaders"], 1.0);
        let v = &s.verdicts[0];
        assert_eq!((v.checked, v.violated, v.unchecked), (2, 1, 0));
        assert_eq!(s.counters["leaderless_periods"], 1.0);
        assert_eq!(s.counters["leaderless_max_ms"], 250.0);
        assert_eq!(s.counters["leaderless_after_crash"], 1.0);
        assert_eq!(s.counters["highest_term"], 2.0);
        assert!(s.events.iter().any(|e| e.what.starts_with("VIOLATION")));
    }

    #[test]
    fn a_leader_cut_off_alive_counts_from_when_a_majority_last_heard_it() {
        // Five replicas; a partition at 120 ms leaves leader 0 with follower 1, and 2, 3, 4
        // (a majority) last heard it at 100 ms.
        let mut c = ElectionChecker::default();
        for i in 0..5 {
            c.member(i, &format!("r{i}"), SimDuration::from_millis(50));
        }
        c.elected(ms(0), 1, 0);
        for t in (0..=400).step_by(50) {
            for f in 1..5 {
                if f == 1 || t <= 100 {
                    c.heard(ms(t), 1, 0, f);
                }
            }
        }
        c.elected(ms(400), 2, 2);
        // The old leader learns of term 2 much later: not the start of anything.
        c.stepped_down(ms(900), 1, 0, 2);
        let s = c.finish(ms(1000));
        assert_eq!(s.counters["leaderless_max_ms"], 300.0);
        assert_eq!(s.counters["leaderless_after_cut_off"], 1.0);
        assert_eq!(s.counters["disruptive_elections"], 0.0);
        assert_eq!(s.counters["terms_with_two_leaders"], 0.0);
    }

    #[test]
    fn a_disruptive_election_counts_from_the_step_down() {
        // Replica 1 was cut off from 0 ms; the leader kept a majority through replica 2 and
        // stepped down at 652.8 ms on hearing replica 1's higher term; replica 1 (which last
        // heard a leader 652.8 ms earlier) won at 855.6 ms: 202.8 ms without a leader.
        let mut c = checker();
        c.elected(ms(0), 1, 0);
        for t in (0..=650).step_by(50) {
            c.heard(ms(t), 1, 0, 2);
        }
        c.stepped_down(SimTime(652_800_000), 1, 0, 7);
        c.elected(SimTime(855_600_000), 7, 1);
        let s = c.finish(ms(1000));
        assert_eq!(s.counters["leaderless_periods"], 1.0);
        assert!((s.counters["leaderless_max_ms"] - 202.8).abs() < 1e-9);
        assert_eq!(s.counters["disruptive_elections"], 1.0);
        assert!((s.counters["disruptive_leaderless_mean_ms"] - 202.8).abs() < 1e-9);
        assert!(s.events.iter().any(|e| e.what.contains("disruptive")));
    }

    #[test]
    fn a_leader_cut_off_before_it_crashed_counts_from_the_cut_off() {
        let mut c = checker();
        c.elected(ms(0), 1, 0);
        heartbeats(&mut c, 1, 0, 200);
        // Nothing reaches the followers after 200 ms; the leader crashes at 500 ms.
        c.leader_crashed(ms(500), 1, 0);
        c.elected(ms(520), 2, 2);
        let s = c.finish(ms(1000));
        assert_eq!(s.counters["leaderless_max_ms"], 320.0);
        assert_eq!(s.counters["leaderless_after_cut_off"], 1.0);
    }
}
