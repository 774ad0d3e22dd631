//! What happens to a message on its link beyond its transit time: the link's capacity
//! (serialization and FIFO delivery), and the message faults duplication and reordering.
//!
//! A link with a capacity `C` (bytes/s) is a FIFO pipe per direction:
//! ```text
//!   sent at t, S bytes ─▶ starts when the link is free:   start   = max(t, free_at)
//!                         is on the wire for S / C:       free_at = start + S/C
//!                         arrives after the transit time, never before the message ahead:
//!                                                         arrival = max(free_at + latency, last)
//! ```
//! so a large transfer delays the small messages behind it, and messages on such a link never
//! overtake each other. Messages enter a link in the order they are sent. A link without a
//! capacity is as before: no serialization, and messages may overtake each other.
//!
//! Duplication delivers a second copy of a message (with its own transit time, as a
//! retransmitted packet would have); reordering holds a message back by up to a window, so
//! those sent after it may overtake it, on capacity links too (that is the fault).

use super::node_id::NodeId;
use super::rng::{RandomSource, SimRng};
use super::time::{SimDuration, SimTime};
use std::collections::BTreeMap;

/// A message fault active on every link to or from some nodes: duplication, or reordering
/// within `window`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mangle {
    /// Which fault installed it.
    pub fault: usize,
    /// Nodes whose links it applies to, indexed by `NodeId` (empty: every link).
    pub nodes: Vec<bool>,
    /// Probability that one message is affected.
    pub probability: f64,
    /// For reordering: the longest a message is held back (zero for duplication).
    pub window: SimDuration,
}

impl Mangle {
    #[inline]
    fn applies(&self, from: NodeId, to: NodeId) -> bool {
        self.nodes.is_empty() || self.nodes[from.idx()] || self.nodes[to.idx()]
    }
}

/// Capacities of links in bytes/s, as validation resolved them (zone pairs' are in
/// [`super::zones::ZoneLinks`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capacities {
    /// Capacity of every link without one of its own. `None`: unlimited.
    pub default: Option<f64>,
    /// Per-link capacities, by (sender, receiver).
    pub links: BTreeMap<(NodeId, NodeId), f64>,
}

impl Capacities {
    /// Whether any link has a capacity.
    pub fn any(&self) -> bool {
        self.default.is_some() || !self.links.is_empty()
    }
}

/// The state of one capacity link.
#[derive(Clone, Copy, Debug, Default)]
struct Fifo {
    /// When the last message sent on it is off the wire.
    free_at: SimTime,
    /// When the last message sent on it arrives.
    last_arrival: SimTime,
}

/// Capacities, link states and active message faults of one run.
#[derive(Default)]
pub(super) struct Shaping {
    pub capacities: Capacities,
    /// States of the capacity links messages have been sent on: memory grows with the links
    /// in use, never with the number of messages.
    fifo: BTreeMap<(NodeId, NodeId), Fifo>,
    duplicates: Vec<Mangle>,
    reorders: Vec<Mangle>,
}

/// Time `size` bytes take on a link of `capacity` bytes/s.
#[inline]
pub fn serialization(size: u64, capacity: f64) -> SimDuration {
    SimDuration::from_nanos_f64(size as f64 * 1e9 / capacity)
}

impl Shaping {
    /// Whether a message fault is active.
    pub fn mangling(&self) -> bool {
        !self.duplicates.is_empty() || !self.reorders.is_empty()
    }

    /// When a message of `size` bytes sent at `sent` on the link `from → to` of `capacity`,
    /// with transit time `latency`, arrives.
    pub fn fifo(
        &mut self,
        link: (NodeId, NodeId),
        sent: SimTime,
        size: u64,
        capacity: f64,
        latency: SimDuration,
    ) -> SimTime {
        let f = self.fifo.entry(link).or_default();
        let start = sent.max(f.free_at);
        f.free_at = start.after(serialization(size, capacity));
        let arrival = f.free_at.after(latency).max(f.last_arrival);
        f.last_arrival = arrival;
        arrival
    }

    /// Whether this message on `from → to` is delivered twice (draws only while a
    /// duplication fault applies to the link).
    pub fn duplicated(&self, from: NodeId, to: NodeId, rng: &mut SimRng) -> bool {
        let p = last_applying(&self.duplicates, from, to).map_or(0.0, |m| m.probability);
        rng.chance(p)
    }

    /// How long this message on `from → to` is held back by a reordering fault (zero while
    /// none applies, or when it is not picked).
    pub fn held_back(&self, from: NodeId, to: NodeId, rng: &mut SimRng) -> SimDuration {
        match last_applying(&self.reorders, from, to) {
            Some(m) if rng.chance(m.probability) => {
                SimDuration::from_nanos_f64(m.window.0 as f64 * rng.uniform_open0())
            }
            _ => SimDuration::ZERO,
        }
    }

    /// Start a duplication (`window` zero) or reordering fault.
    pub fn add(&mut self, m: Mangle, reorder: bool) {
        if reorder {
            self.reorders.push(m);
        } else {
            self.duplicates.push(m);
        }
    }

    /// End the message faults `fault` installed.
    pub fn remove(&mut self, fault: usize) {
        self.duplicates.retain(|m| m.fault != fault);
        self.reorders.retain(|m| m.fault != fault);
    }
}

/// Where several faults of a kind apply to a link, the one that started last wins.
fn last_applying(list: &[Mangle], from: NodeId, to: NodeId) -> Option<&Mangle> {
    list.iter().rev().find(|m| m.applies(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: (NodeId, NodeId) = (NodeId(0), NodeId(1));

    #[test]
    fn a_large_message_delays_the_small_one_behind_it() {
        let mut s = Shaping::default();
        // 1 MB/s: 500 kB take 0.5 s, 1 kB takes 1 ms; latency 10 ms.
        let lat = SimDuration::from_millis(10);
        let big = s.fifo(LINK, SimTime::ZERO, 500_000, 1e6, lat);
        assert_eq!(big, SimTime(510_000_000));
        let small = s.fifo(LINK, SimTime(1_000_000), 1_000, 1e6, lat);
        assert_eq!(
            small,
            SimTime(511_000_000),
            "waits for the big one to leave"
        );
        let later = s.fifo(LINK, SimTime(2_000_000_000), 1_000, 1e6, lat);
        assert_eq!(later, SimTime(2_011_000_000), "an idle link adds only S/C");
        let other = s.fifo((NodeId(1), NodeId(0)), SimTime::ZERO, 1_000, 1e6, lat);
        assert_eq!(other, SimTime(11_000_000), "each direction is its own pipe");
    }

    #[test]
    fn a_capacity_link_never_lets_a_message_overtake() {
        let mut s = Shaping::default();
        let first = s.fifo(LINK, SimTime::ZERO, 0, 1e9, SimDuration(900));
        let second = s.fifo(LINK, SimTime(10), 0, 1e9, SimDuration(100));
        assert_eq!((first, second), (SimTime(900), SimTime(900)));
    }

    #[test]
    fn message_faults_apply_to_their_nodes_links_and_the_latest_wins() {
        let mut s = Shaping::default();
        let mut rng = SimRng::derive(3, "t");
        let m = |fault, nodes: Vec<bool>, probability| Mangle {
            fault,
            nodes,
            probability,
            window: SimDuration(1_000),
        };
        s.add(m(1, vec![false, true, false], 1.0), true);
        assert!(s.mangling());
        assert!(s.held_back(NodeId(0), NodeId(1), &mut rng) > SimDuration::ZERO);
        assert_eq!(
            s.held_back(NodeId(0), NodeId(2), &mut rng),
            SimDuration::ZERO
        );
        s.add(m(2, vec![], 0.0), true);
        assert_eq!(
            s.held_back(NodeId(0), NodeId(1), &mut rng),
            SimDuration::ZERO
        );
        s.add(m(3, vec![], 1.0), false);
        assert!(s.duplicated(NodeId(2), NodeId(0), &mut rng));
        for f in 1..=3 {
            s.remove(f);
        }
        assert!(!s.mangling());
    }
}
