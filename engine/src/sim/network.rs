//! The network model: how long a message takes, whether it is lost, and which links are cut.
//!
//! The network is not a node. Every send asks it for a transit time, drawn from the link's
//! latency distribution with the network's own random stream; a lost or partitioned message is
//! simply never delivered (the sender finds out by timing out, as in life). A link's model is
//! its own override, else its zone pair's ([`super::zones`]), else the default. Messages on one
//! link may overtake each other, like datagrams, unless the link has a capacity
//! ([`super::shaping`]): components must not rely on FIFO links.
//! Faults change the model at run time by adding and removing cuts.

use super::dist::{Dist, Sampler};
use super::node_id::NodeId;
use super::rng::SimRng;
use super::shaping::{Capacities, Mangle, Shaping};
use super::time::{SimDuration, SimTime};
use super::zones::{ZoneLinks, Zones};
use std::collections::BTreeMap;

/// Latency and loss of one directed link.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkModel {
    /// One-way transit time.
    pub latency: Dist,
    /// Probability in [0, 1] that a message is lost.
    pub loss: f64,
}

/// A set of cut links, active while its fault lasts.
///
/// Nodes carry a side number (0 = not involved). Two involved nodes on different sides cannot
/// talk; with `one_way`, only messages from side 1 to other sides are dropped.
#[derive(Clone, Debug)]
pub struct Cut {
    /// Which fault installed this cut (so its end removes exactly it).
    pub fault: usize,
    /// Side of each node, indexed by `NodeId`.
    pub side: Vec<u16>,
    /// Drop only side 1 → others.
    pub one_way: bool,
}

impl Cut {
    #[inline]
    fn blocks(&self, from: NodeId, to: NodeId) -> bool {
        let (a, b) = (self.side[from.idx()], self.side[to.idx()]);
        a != 0 && b != 0 && a != b && (!self.one_way || a == 1)
    }
}

/// A temporary change of latency and/or loss on some links, active while its fault lasts.
#[derive(Clone, Debug)]
pub struct LinkChange {
    /// Which fault installed it.
    pub fault: usize,
    /// Senders it applies to, indexed by `NodeId` (empty: every node).
    pub from: Vec<bool>,
    /// Receivers it applies to, indexed by `NodeId` (empty: every node).
    pub to: Vec<bool>,
    /// Latency to use instead of the link's own.
    pub latency: Option<Dist>,
    /// Loss probability to use instead of the link's own.
    pub loss: Option<f64>,
}

/// A link as the network draws from it.
struct Link {
    latency: Sampler,
    loss: f64,
    /// The latency when it is a constant and nothing is lost: no draw needed.
    fixed: Option<SimDuration>,
}

impl From<LinkModel> for Link {
    fn from(m: LinkModel) -> Link {
        let fixed = match m.latency {
            Dist::Constant(d) if m.loss == 0.0 => Some(d),
            _ => None,
        };
        Link {
            latency: Sampler::new(m.latency),
            loss: m.loss,
            fixed,
        }
    }
}

/// A [`LinkChange`] as the network draws from it.
struct ActiveChange {
    fault: usize,
    from: Vec<bool>,
    to: Vec<bool>,
    latency: Option<Sampler>,
    loss: Option<f64>,
}

impl ActiveChange {
    #[inline]
    fn applies(&self, from: NodeId, to: NodeId) -> bool {
        (self.from.is_empty() || self.from[from.idx()]) && (self.to.is_empty() || self.to[to.idx()])
    }
}

/// How many draws of the default link [`Ahead`] makes at a time.
const AHEAD: usize = 64;

/// Transit times of the default link drawn ahead of use, in the order the network's stream
/// would have given them one by one. Drawing a batch in one loop lets the processor overlap
/// the draws' long floating-point chains, where a single draw makes the send that needs it
/// wait. Only used while every message takes the default link and nothing is lost, so nothing
/// else reads the stream in between; when that stops (a fault changes the network), the
/// stream is rewound to just after the last draw used ([`Network::rewind`]), and the results
/// are exactly those of drawing one at a time.
struct Ahead {
    draws: Box<[SimDuration; AHEAD]>,
    /// The first draw not yet used; `AHEAD` when all are (or none was made).
    next: usize,
    /// Word position of the network's stream where this batch started.
    start: u128,
}

/// The network of one run.
pub struct Network {
    default: Link,
    /// Whether the default link's draws can be made ahead: it has a random latency and no loss.
    draw_ahead: bool,
    ahead: Ahead,
    links: BTreeMap<(NodeId, NodeId), Link>,
    cuts: Vec<Cut>,
    changes: Vec<ActiveChange>,
    /// No per-link overrides, zones, cuts, changes or message faults: every message takes the
    /// default link.
    plain: bool,
    rng: SimRng,
    zones: Option<Box<Zones>>,
    shaping: Box<Shaping>,
    /// Some link has a capacity or a message fault is active: sends go through
    /// [`Network::deliveries`].
    shaped: bool,
}

/// The latency and loss of `from → to` before faults: its own override, else its zone pair's,
/// else the default.
#[inline]
fn link_of<'n>(
    links: &'n BTreeMap<(NodeId, NodeId), Link>,
    zones: Option<&'n Zones>,
    default: &'n Link,
    from: NodeId,
    to: NodeId,
) -> (&'n Sampler, f64) {
    if let Some(l) = links.get(&(from, to)) {
        return (&l.latency, l.loss);
    }
    if let Some(l) = zones.and_then(|z| z.link(from, to)) {
        return (&l.latency, l.loss);
    }
    (&default.latency, default.loss)
}

impl Network {
    /// A network where every link follows `default` except the `links` given.
    pub fn new(
        default: LinkModel,
        links: BTreeMap<(NodeId, NodeId), LinkModel>,
        rng: SimRng,
    ) -> Self {
        let default: Link = default.into();
        Network {
            draw_ahead: default.fixed.is_none() && default.loss == 0.0,
            ahead: Ahead {
                draws: Box::new([SimDuration::ZERO; AHEAD]),
                next: AHEAD,
                start: 0,
            },
            default,
            plain: links.is_empty(),
            links: links.into_iter().map(|(k, v)| (k, v.into())).collect(),
            cuts: Vec::new(),
            changes: Vec::new(),
            rng,
            zones: None,
            shaping: Box::default(),
            shaped: false,
        }
    }

    /// The same network with nodes in zones, and links between zones as `zones` gives them.
    pub fn with_zones(mut self, zones: ZoneLinks) -> Self {
        self.zones = Some(Box::new(Zones::new(zones)));
        self.update_plain();
        self
    }

    /// The same network with link capacities.
    pub fn with_capacities(mut self, capacities: Capacities) -> Self {
        self.shaping.capacities = capacities;
        self.update_plain();
        self
    }

    /// Whether every message takes the default link (recomputed when faults change it), and
    /// whether sends need [`Network::deliveries`].
    fn update_plain(&mut self) {
        self.plain = self.links.is_empty()
            && self.cuts.is_empty()
            && self.changes.is_empty()
            && self.zones.is_none()
            && !self.shaping.mangling();
        let zone_capacity = self
            .zones
            .as_ref()
            .is_some_and(|z| z.table.capacity.iter().any(Option::is_some));
        self.shaped = self.shaping.capacities.any() || zone_capacity || self.shaping.mangling();
        if !self.plain {
            self.rewind();
        }
    }

    /// Put the stream back where drawing one at a time would have left it, and drop the draws
    /// made ahead that were not used.
    fn rewind(&mut self) {
        let ahead = &mut self.ahead;
        if ahead.next < AHEAD {
            self.rng.set_word_pos(ahead.start);
            for _ in 0..ahead.next {
                self.default.latency.sample(&mut self.rng);
            }
            ahead.next = AHEAD;
        }
    }

    /// The next transit time of the default link, from the draws made ahead.
    #[inline]
    fn next_default(&mut self) -> SimDuration {
        if self.ahead.next == AHEAD {
            self.draw_batch();
        }
        let d = self.ahead.draws[self.ahead.next];
        self.ahead.next += 1;
        d
    }

    /// Draw the next [`AHEAD`] transit times of the default link, noting where the stream was.
    #[inline(never)]
    fn draw_batch(&mut self) {
        let ahead = &mut self.ahead;
        ahead.start = self.rng.word_pos();
        self.default
            .latency
            .fill(&mut self.rng, &mut ahead.draws[..]);
        ahead.next = 0;
    }

    /// False while a partition separates `from` and `to`.
    #[inline]
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        self.cuts.is_empty() || !self.cuts.iter().any(|c| c.blocks(from, to))
    }

    /// Transit time of one message, or `None` if it is lost or the link is cut.
    #[inline]
    pub fn transit(&mut self, from: NodeId, to: NodeId) -> Option<SimDuration> {
        if from == to {
            return Some(SimDuration::ZERO);
        }
        let (latency, loss) = if self.plain {
            // The common case: no fault is changing the network.
            if let Some(d) = self.default.fixed {
                return Some(d);
            }
            if self.draw_ahead {
                return Some(self.next_default());
            }
            (&self.default.latency, self.default.loss)
        } else {
            if !self.connected(from, to) {
                return None;
            }
            let (mut latency, mut loss) =
                link_of(&self.links, self.zones.as_deref(), &self.default, from, to);
            // Later changes win over earlier ones where several apply.
            for c in self.changes.iter().filter(|c| c.applies(from, to)) {
                if let Some(l) = &c.latency {
                    latency = l;
                }
                if let Some(p) = c.loss {
                    loss = p;
                }
            }
            (latency, loss)
        };
        let rng = &mut self.rng;
        if loss > 0.0 && rng.chance(loss) {
            return None;
        }
        Some(latency.sample(rng))
    }

    /// Whether sends must go through [`Network::deliveries`] (a link has a capacity, or a
    /// message fault is active); otherwise [`Network::transit`] is all there is.
    #[inline]
    pub fn shaped(&self) -> bool {
        self.shaped
    }

    /// When a message of `size` bytes that leaves `from` at `sent` reaches `to` (`None`: lost or
    /// cut), and when its duplicate does if a duplication fault copies it (only asked when
    /// `copyable`).
    pub fn deliveries(
        &mut self,
        from: NodeId,
        to: NodeId,
        sent: SimTime,
        size: u64,
        copyable: bool,
    ) -> (Option<SimTime>, Option<SimTime>) {
        let first = self.arrival(from, to, sent, size);
        let copy = copyable
            && from != to
            && first.is_some()
            && self.shaping.duplicated(from, to, &mut self.rng);
        let second = if copy {
            self.arrival(from, to, sent, size)
        } else {
            None
        };
        (first, second)
    }

    /// One message's arrival: transit time, then the link's capacity, then reordering.
    fn arrival(&mut self, from: NodeId, to: NodeId, sent: SimTime, size: u64) -> Option<SimTime> {
        let latency = self.transit(from, to)?;
        if from == to {
            return Some(sent.after(latency));
        }
        let at = match self.capacity(from, to) {
            Some(c) => self.shaping.fifo((from, to), sent, size, c, latency),
            None => sent.after(latency),
        };
        Some(at.after(self.shaping.held_back(from, to, &mut self.rng)))
    }

    /// Capacity of `from → to` in bytes/s: its own, else its zone pair's, else the default.
    fn capacity(&self, from: NodeId, to: NodeId) -> Option<f64> {
        let caps = &self.shaping.capacities;
        if let Some(&c) = caps.links.get(&(from, to)) {
            return Some(c);
        }
        let zone = self.zones.as_ref().and_then(|z| {
            let i = z.table.pair(from, to)?;
            z.table.capacity.get(i).copied().flatten()
        });
        zone.or(caps.default)
    }

    /// A round trip `a → b → a` of two small messages (a handshake's), or `None` if either
    /// is lost or cut. They take their links' transit times and are not queued behind other
    /// messages on capacity links.
    pub fn round_trip(&mut self, a: NodeId, b: NodeId) -> Option<SimDuration> {
        let there = self.transit(a, b)?;
        let back = self.transit(b, a)?;
        Some(SimDuration(there.0 + back.0))
    }

    /// A duplication (`reorder` false) or reordering fault starts.
    pub fn add_mangle(&mut self, m: Mangle, reorder: bool) {
        self.shaping.add(m, reorder);
        self.update_plain();
    }

    /// The message faults `fault` installed end.
    pub fn remove_mangle(&mut self, fault: usize) {
        self.shaping.remove(fault);
        self.update_plain();
    }

    /// Install a cut (a partition fault starts).
    pub fn add_cut(&mut self, cut: Cut) {
        self.cuts.push(cut);
        self.update_plain();
    }

    /// Remove the cut that `fault` installed (the partition heals).
    pub fn remove_cut(&mut self, fault: usize) {
        self.cuts.retain(|c| c.fault != fault);
        self.update_plain();
    }

    /// Change latency or loss on some links until [`Network::remove_change`].
    pub fn add_change(&mut self, change: LinkChange) {
        self.changes.push(ActiveChange {
            fault: change.fault,
            from: change.from,
            to: change.to,
            latency: change.latency.map(Sampler::new),
            loss: change.loss,
        });
        self.update_plain();
    }

    /// Undo the change that `fault` installed.
    pub fn remove_change(&mut self, fault: usize) {
        self.changes.retain(|c| c.fault != fault);
        self.update_plain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Network {
        let default = LinkModel {
            latency: Dist::Constant(SimDuration(100)),
            loss: 0.0,
        };
        let mut links = BTreeMap::new();
        links.insert(
            (NodeId(0), NodeId(1)),
            LinkModel {
                latency: Dist::Constant(SimDuration(7)),
                loss: 0.0,
            },
        );
        Network::new(default, links, SimRng::derive(1, "network"))
    }

    #[test]
    fn link_overrides_are_directed() {
        let mut n = net();
        assert_eq!(n.transit(NodeId(0), NodeId(1)), Some(SimDuration(7)));
        assert_eq!(n.transit(NodeId(1), NodeId(0)), Some(SimDuration(100)));
    }

    #[test]
    fn symmetric_and_one_way_cuts() {
        let mut n = net();
        n.add_cut(Cut {
            fault: 3,
            side: vec![1, 2, 0],
            one_way: false,
        });
        assert!(!n.connected(NodeId(0), NodeId(1)));
        assert!(!n.connected(NodeId(1), NodeId(0)));
        assert!(
            n.connected(NodeId(0), NodeId(2)),
            "uninvolved nodes keep their links"
        );
        n.add_cut(Cut {
            fault: 4,
            side: vec![0, 1, 2],
            one_way: true,
        });
        n.remove_cut(3);
        assert!(n.connected(NodeId(0), NodeId(1)));
        assert!(!n.connected(NodeId(1), NodeId(2)));
        assert!(
            n.connected(NodeId(2), NodeId(1)),
            "one-way cut lets the reverse through"
        );
    }

    #[test]
    fn link_changes_apply_to_their_links_while_active() {
        let mut n = net();
        n.add_change(LinkChange {
            fault: 1,
            from: vec![],
            to: vec![false, true, false],
            latency: Some(Dist::Constant(SimDuration(50))),
            loss: None,
        });
        assert_eq!(
            n.transit(NodeId(0), NodeId(1)),
            Some(SimDuration(50)),
            "overrides the link's own"
        );
        assert_eq!(n.transit(NodeId(2), NodeId(1)), Some(SimDuration(50)));
        assert_eq!(
            n.transit(NodeId(1), NodeId(0)),
            Some(SimDuration(100)),
            "other links keep theirs"
        );
        n.add_change(LinkChange {
            fault: 2,
            from: vec![],
            to: vec![],
            latency: None,
            loss: Some(1.0),
        });
        assert_eq!(
            n.transit(NodeId(1), NodeId(0)),
            None,
            "the later change adds total loss everywhere"
        );
        n.remove_change(2);
        n.remove_change(1);
        assert_eq!(n.transit(NodeId(0), NodeId(1)), Some(SimDuration(7)));
    }

    /// The default link's draws made ahead give the same transit times as drawing one at a
    /// time, also when faults come and go mid-batch and other links draw from the same stream
    /// in between.
    #[test]
    fn draws_made_ahead_match_drawing_one_at_a_time() {
        let latency = Dist::LogNormal {
            median: SimDuration(200_000),
            p99: SimDuration(1_000_000),
        };
        let changed = Dist::Exponential {
            mean: SimDuration(50_000),
        };
        let default = LinkModel {
            latency: latency.clone(),
            loss: 0.0,
        };
        let mut n = Network::new(default, BTreeMap::new(), SimRng::derive(5, "network"));
        let mut reference = SimRng::derive(5, "network");
        let (plain, other) = (Sampler::new(latency), Sampler::new(changed.clone()));
        // Which fault is active: none, a cut between nodes 2 and 3, or a latency change on
        // the links into node 3. Nodes 0 and 1 keep the default link throughout.
        let mut fault = 0;
        for i in 0..3_000u32 {
            if i % 97 == 13 || i % 211 == 150 {
                match fault {
                    1 => n.remove_cut(1),
                    2 => n.remove_change(2),
                    _ => {}
                }
                fault = (fault + 1) % 3;
                match fault {
                    1 => n.add_cut(Cut {
                        fault: 1,
                        side: vec![0, 0, 1, 2],
                        one_way: false,
                    }),
                    2 => n.add_change(LinkChange {
                        fault: 2,
                        from: vec![],
                        to: vec![false, false, false, true],
                        latency: Some(changed.clone()),
                        loss: None,
                    }),
                    _ => {}
                }
            }
            assert_eq!(
                n.transit(NodeId(0), NodeId(1)),
                Some(plain.sample(&mut reference)),
                "draw {i}"
            );
            if i % 5 == 0 {
                let expected = match fault {
                    0 => Some(plain.sample(&mut reference)),
                    1 => None,
                    _ => Some(other.sample(&mut reference)),
                };
                assert_eq!(n.transit(NodeId(2), NodeId(3)), expected, "draw {i} into 3");
            }
        }
    }

    #[test]
    fn loss_drops_the_given_fraction() {
        let default = LinkModel {
            latency: Dist::Constant(SimDuration(1)),
            loss: 0.25,
        };
        let mut n = Network::new(default, BTreeMap::new(), SimRng::derive(9, "network"));
        let lost = (0..40_000)
            .filter(|_| n.transit(NodeId(0), NodeId(1)).is_none())
            .count();
        assert!((9_500..10_500).contains(&lost), "{lost}");
    }
}
