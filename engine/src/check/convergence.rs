//! Time to converge after a heal: a run-wide observer of one replica group's stamps.
//!
//! ```text
//!  fault touching a replica ───────────┤ heal at T
//!                                      │ snapshot: keys whose replicas disagree, each with the
//!                                      │ newest stamp any replica holds at T
//!   replicas apply stamps (writes, read repair, anti-entropy) ... each apply ticks off who
//!   holds >= the snapshot's stamp ──▶ converged at C when every live replica holds it for
//!   every key: time to converge = C - T  (or "not converged" when the run ends first)
//! ```
//! Ground truth, not a protocol's opinion: every replica reports each stamp it adopts
//! ([`Convergence::applied`]), so the observer knows, per key, the newest stamp and which
//! replicas hold it. It keeps only the keys whose replicas currently disagree (a key all
//! replicas agree on is forgotten; the next stamp any replica adopts for it is newer than what
//! all hold), at most `max_keys` of them, and per heal not yet converged the keys diverged at
//! that heal. A replica crashed at a moment is not live then (its data waits for its restart).
//! Time is advanced lazily: heals and crash starts up to `now` are handled when a replica
//! next reports, or at the end of the run.
//!
//! Any store can feed it: the leaderless store reports from its `apply`; a leader/follower
//! store reports where a follower adopts an entry, and gets the same measure.

use crate::contract::build::{BuildCtx, Observer};
use crate::contract::metrics::{EventLog, NodeStats};
use crate::sim::time::SimTime;
use crate::sim::{Fault, FaultAction, NodeId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Most disagreeing keys tracked per group; beyond it keys are counted, not tracked.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Heals reported per group (events beyond it are counted).
const MAX_HEALS: usize = 1_000;

/// A stamp as the checker sees it: any version a store orders its writes by, compared
/// lexicographically, newest last (the replicated store's (Lamport counter, writer node)).
pub type Stamp = (u64, u32);

/// Keys whose replicas disagree: key → (newest stamp, replicas holding at least it).
type Divergent = BTreeMap<u64, (Stamp, u64)>;

/// A heal not yet converged.
struct Pending {
    heal: usize,
    at: SimTime,
    keys: Divergent,
    divergent: usize,
}

/// What became of one heal.
#[derive(Clone, Debug, PartialEq)]
pub struct HealOutcome {
    /// When the fault(s) ended.
    pub at: SimTime,
    /// Keys whose replicas disagreed at that moment.
    pub divergent_keys: usize,
    /// When every live replica held the newest stamp of every such key, if it happened.
    pub converged_at: Option<SimTime>,
}

/// The convergence observer of one replica group.
pub struct Convergence {
    all: u64,
    heals: Vec<(SimTime, String)>,
    next_heal: usize,
    down: Vec<(u32, SimTime, SimTime)>,
    next_down: usize,
    divergent: Divergent,
    max_keys: usize,
    untracked: u64,
    pending: Vec<Pending>,
    outcomes: Vec<HealOutcome>,
    events: EventLog,
}

/// The observer of `group`'s convergence, shared by its replicas (named `<group>-convergence`).
pub fn observer(b: &BuildCtx<'_>, group: &[NodeId]) -> Arc<Mutex<Convergence>> {
    let name = format!("{}-convergence", b.group());
    let (faults, windows) = b.faults();
    let labels: Vec<String> = windows.iter().map(|w| w.label.clone()).collect();
    b.observer(&name, || {
        Convergence::new(group, faults, &labels, DEFAULT_MAX_KEYS)
    })
}

/// Whether `action` touches a node of `group` (and so can leave its replicas disagreeing).
/// Slowdowns do not: replicas answer at once.
fn touches(action: &FaultAction, group: &[NodeId]) -> bool {
    let marked = |m: &[bool]| m.is_empty() || group.iter().any(|g| m.get(g.idx()) == Some(&true));
    match action {
        FaultAction::Crash(n) | FaultAction::CrashKeepState(n) | FaultAction::Pause(n) => {
            n.iter().any(|x| group.contains(x))
        }
        FaultAction::Slowdown(..) => false,
        FaultAction::Partition { side, .. } => group
            .iter()
            .any(|g| side.get(g.idx()).is_some_and(|&s| s != 0)),
        FaultAction::LinkChange { from, to, .. } => marked(from) || marked(to),
        FaultAction::NodeLinks { nodes, .. }
        | FaultAction::Duplicate { nodes, .. }
        | FaultAction::Reorder { nodes, .. } => marked(nodes),
        FaultAction::LinksBetween { a, b, .. } => marked(a) || marked(b),
    }
}

impl Convergence {
    /// An observer of the replicas `group` (in order: replica i is `group[i]`) under the fault
    /// schedule `faults` (with their labels), tracking at most `max_keys` disagreeing keys.
    pub fn new(group: &[NodeId], faults: &[Fault], labels: &[String], max_keys: usize) -> Self {
        let mut heals: BTreeMap<SimTime, Vec<String>> = BTreeMap::new();
        let mut down = Vec::new();
        for (i, f) in faults.iter().enumerate() {
            if !touches(&f.action, group) {
                continue;
            }
            let label = labels.get(i).cloned().unwrap_or_else(|| "fault".into());
            if let Some(until) = f.until {
                heals.entry(until).or_default().push(label);
            }
            if let FaultAction::Crash(n) | FaultAction::CrashKeepState(n) = &f.action {
                for (r, _) in group.iter().enumerate().filter(|(_, g)| n.contains(g)) {
                    down.push((r as u32, f.at, f.until.unwrap_or(SimTime(u64::MAX))));
                }
            }
        }
        down.sort_by_key(|&(r, from, _)| (from, r));
        let n = group.len().min(64);
        Convergence {
            all: if n == 64 { u64::MAX } else { (1 << n) - 1 },
            heals: heals.into_iter().map(|(t, l)| (t, l.join(", "))).collect(),
            next_heal: 0,
            down,
            next_down: 0,
            divergent: BTreeMap::new(),
            max_keys,
            untracked: 0,
            pending: Vec::new(),
            outcomes: Vec::new(),
            events: EventLog::new(2 * MAX_HEALS),
        }
    }

    /// Replica `replica` adopted `stamp` for `key` at `now` (it held an older one).
    pub fn applied(&mut self, now: SimTime, replica: usize, key: u64, stamp: Stamp) {
        self.advance(now);
        let bit = 1u64 << replica;
        let room = self.divergent.len() < self.max_keys;
        match self.divergent.get_mut(&key) {
            Some((newest, holders)) if stamp > *newest => (*newest, *holders) = (stamp, bit),
            Some((newest, holders)) if stamp == *newest => *holders |= bit,
            Some(_) => {}
            // All replicas agreed on an older stamp (or none had the key).
            None if room => {
                self.divergent.insert(key, (stamp, bit));
            }
            None => self.untracked += 1,
        }
        if self.divergent.get(&key).is_some_and(|e| e.1 == self.all) {
            self.divergent.remove(&key);
        }
        let mut touched = false;
        for p in &mut self.pending {
            if let Some((target, holders)) = p.keys.get_mut(&key)
                && stamp >= *target
            {
                *holders |= bit;
                if *holders == self.all {
                    p.keys.remove(&key);
                }
                touched = true;
            }
        }
        if touched {
            self.check(now);
        }
    }

    /// Replicas up at `now`, as a mask.
    fn live(&self, now: SimTime) -> u64 {
        self.down
            .iter()
            .filter(|&&(_, from, until)| from <= now && now < until)
            .fold(self.all, |m, &(r, _, _)| m & !(1 << r))
    }

    /// Close the pending heals whose keys every live replica now holds.
    fn check(&mut self, now: SimTime) {
        let live = self.live(now);
        let (done, rest): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.keys.values().all(|&(_, h)| h & live == live));
        self.pending = rest;
        for p in done {
            self.converged(p, now);
        }
    }

    fn converged(&mut self, p: Pending, now: SimTime) {
        let took = SimTime(now.0 - p.at.0).as_secs_f64();
        self.events.record(
            now,
            format!(
                "heal at {:.3} s converged: {} divergent keys in {took:.3} s",
                p.at.as_secs_f64(),
                p.divergent
            ),
        );
        self.outcomes[p.heal].converged_at = Some(now);
    }

    /// Handle the heals and crash starts up to `now`, in time order.
    fn advance(&mut self, now: SimTime) {
        loop {
            let heal = self.heals.get(self.next_heal).map(|h| h.0);
            let crash = self.down.get(self.next_down).map(|d| d.1);
            match (heal, crash) {
                (Some(h), c) if h <= now && c.is_none_or(|c| h <= c) => self.heal(h),
                (_, Some(c)) if c <= now => {
                    // A lagging replica going down may leave the live ones converged.
                    self.next_down += 1;
                    self.check(c);
                }
                _ => return,
            }
        }
    }

    fn heal(&mut self, at: SimTime) {
        let label = self.heals[self.next_heal].1.clone();
        self.next_heal += 1;
        let heal = self.outcomes.len();
        let divergent = self.divergent.len();
        self.outcomes.push(HealOutcome {
            at,
            divergent_keys: divergent,
            converged_at: None,
        });
        self.events.record(
            at,
            format!("{label} healed: {divergent} keys whose replicas disagree"),
        );
        self.pending.push(Pending {
            heal,
            at,
            keys: self.divergent.clone(),
            divergent,
        });
        self.check(at);
    }

    /// Each heal so far and what became of it.
    pub fn outcomes(&self) -> &[HealOutcome] {
        &self.outcomes
    }
}

impl Observer for Convergence {
    fn finish(&mut self, now: SimTime) -> NodeStats {
        self.advance(now);
        for p in std::mem::take(&mut self.pending) {
            self.events.record(
                now,
                format!(
                    "heal at {:.3} s not converged by the end: {} of {} keys still behind",
                    p.at.as_secs_f64(),
                    p.keys.len(),
                    p.divergent
                ),
            );
        }
        let mut c = BTreeMap::new();
        let converged: Vec<f64> = self
            .outcomes
            .iter()
            .filter_map(|o| o.converged_at.map(|t| SimTime(t.0 - o.at.0).as_secs_f64()))
            .collect();
        c.insert("heals".to_string(), self.outcomes.len() as f64);
        c.insert("heals_converged".to_string(), converged.len() as f64);
        let not = self.outcomes.len() - converged.len();
        c.insert("heals_not_converged".to_string(), not as f64);
        if let Some(max) = converged.iter().copied().reduce(f64::max) {
            c.insert("converge_max_s".to_string(), max);
        }
        c.insert("keys_untracked".to_string(), self.untracked as f64);
        for (i, o) in self.outcomes.iter().enumerate().take(MAX_HEALS) {
            let i = i + 1;
            c.insert(format!("heal{i}_at_s"), o.at.as_secs_f64());
            c.insert(format!("heal{i}_divergent_keys"), o.divergent_keys as f64);
            if let Some(t) = o.converged_at {
                c.insert(
                    format!("heal{i}_converge_s"),
                    SimTime(t.0 - o.at.0).as_secs_f64(),
                );
            }
        }
        NodeStats {
            counters: c,
            events: self.events.take(),
            ..NodeStats::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(counter: u64) -> Stamp {
        (counter, 0)
    }

    fn partition(group: &[NodeId], at: u64, until: u64) -> Fault {
        let mut side = vec![0u16; 4];
        side[group[0].idx()] = 1;
        side[group[1].idx()] = 2;
        Fault {
            action: FaultAction::Partition {
                side,
                one_way: false,
            },
            at: SimTime(at),
            until: Some(SimTime(until)),
        }
    }

    #[test]
    fn converges_when_every_replica_holds_the_newest_stamp_of_every_divergent_key() {
        let g = [NodeId(0), NodeId(1), NodeId(2)];
        let mut c = Convergence::new(&g, &[partition(&g, 10, 100)], &["p".into()], 10);
        // Key 1: everyone at stamp 1, then replica 0 alone at 2. Key 2: replicas 0, 1 at 5.
        for r in 0..3 {
            c.applied(SimTime(5), r, 1, stamp(1));
        }
        c.applied(SimTime(20), 0, 1, stamp(2));
        c.applied(SimTime(30), 0, 2, stamp(5));
        c.applied(SimTime(30), 1, 2, stamp(5));
        // After the heal at 100: key 1 reaches 1 and 2 (2 with a newer stamp), key 2 reaches 2.
        c.applied(SimTime(110), 1, 1, stamp(2));
        c.applied(SimTime(120), 2, 1, stamp(7));
        assert_eq!(c.outcomes()[0].converged_at, None);
        c.applied(SimTime(150), 2, 2, stamp(5));
        let o = &c.outcomes()[0];
        assert_eq!((o.at, o.divergent_keys), (SimTime(100), 2));
        assert_eq!(o.converged_at, Some(SimTime(150)));
    }

    #[test]
    fn a_crashed_replica_is_not_waited_for_and_a_quiet_store_never_converges() {
        let g = [NodeId(0), NodeId(1)];
        let crash = Fault {
            action: FaultAction::Crash(vec![NodeId(1)]),
            at: SimTime(200),
            until: Some(SimTime(300)),
        };
        let faults = [partition(&g, 10, 100), crash];
        let labels = ["p".to_string(), "c".to_string()];
        let mut c = Convergence::new(&g, &faults, &labels, 10);
        c.applied(SimTime(50), 0, 9, stamp(3));
        // Replica 1 never catches up, but it is down from 200: converged then.
        c.applied(SimTime(250), 0, 8, stamp(4));
        assert_eq!(c.outcomes()[0].converged_at, Some(SimTime(200)));
        // The crash's own heal at 300 finds keys 8 and 9 behind on replica 1; nothing follows.
        let stats = c.finish(SimTime(1000));
        assert_eq!(stats.counters["heals"], 2.0);
        assert_eq!(stats.counters["heal2_divergent_keys"], 2.0);
        assert_eq!(stats.counters["heals_not_converged"], 1.0);
        assert!(stats.events.last().unwrap().what.contains("not converged"));
    }

    #[test]
    fn keys_over_the_cap_are_counted_not_tracked() {
        let g = [NodeId(0), NodeId(1)];
        let mut c = Convergence::new(&g, &[], &[], 2);
        for k in 0..5 {
            c.applied(SimTime(1), 0, k, stamp(1));
        }
        let stats = c.finish(SimTime(2));
        assert_eq!(stats.counters["keys_untracked"], 3.0);
        assert_eq!(stats.counters["heals"], 0.0);
    }
}
