//! The network model: how long a message takes, whether it is lost, and which links are cut.
//!
//! The network is not a node. Every send asks it for a transit time, drawn from the link's
//! latency distribution with the network's own random stream; a lost or partitioned message is
//! simply never delivered (the sender finds out by timing out, as in life). Messages on one
//! link may overtake each other, like datagrams: components must not rely on FIFO links.
//! Faults change the model at run time by adding and removing cuts.

use super::message::NodeId;
use super::rng::SimRng;
use super::time::SimDuration;
use crate::dist::Dist;
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

/// The network of one run.
pub struct Network {
    default: LinkModel,
    links: BTreeMap<(NodeId, NodeId), LinkModel>,
    cuts: Vec<Cut>,
    rng: SimRng,
}

impl Network {
    /// A network where every link follows `default` except the `links` given.
    pub fn new(
        default: LinkModel,
        links: BTreeMap<(NodeId, NodeId), LinkModel>,
        rng: SimRng,
    ) -> Self {
        Network {
            default,
            links,
            cuts: Vec::new(),
            rng,
        }
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
        if !self.connected(from, to) {
            return None;
        }
        let link = if self.links.is_empty() {
            &self.default
        } else {
            self.links.get(&(from, to)).unwrap_or(&self.default)
        };
        if link.loss > 0.0 && self.rng.chance(link.loss) {
            return None;
        }
        Some(link.latency.sample(&mut self.rng))
    }

    /// Install a cut (a partition fault starts).
    pub fn add_cut(&mut self, cut: Cut) {
        self.cuts.push(cut);
    }

    /// Remove the cut that `fault` installed (the partition heals).
    pub fn remove_cut(&mut self, fault: usize) {
        self.cuts.retain(|c| c.fault != fault);
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
