//! Zones as the network sees them: which zone each node is in, and the link model and
//! capacity of every ordered pair of zones (within a zone, across zones, across regions).
//!
//! The kernel knows zones only as dense numbers; their names, their regions and which latency
//! applies to which pair are resolved by the scenario before the run. A node in no zone (and
//! any pair of zones the table leaves out) takes the network's default link.
//!
//! ```text
//!   transit(from, to):  per-link override ─▶ zone pair (zone_of[from], zone_of[to]) ─▶ default
//! ```

use super::dist::Sampler;
use super::network::LinkModel;
use super::node_id::NodeId;

/// A node in no zone.
pub const NO_ZONE: u16 = u16::MAX;

/// Zones and their links, as validation resolved them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZoneLinks {
    /// Zone of each node, indexed by `NodeId` ([`NO_ZONE`] for a node in no zone).
    pub zone_of: Vec<u16>,
    /// Number of zones.
    pub zones: usize,
    /// Link of each ordered zone pair, at `from * zones + to`; `None`: the default link.
    pub pairs: Vec<Option<LinkModel>>,
    /// Capacity of each ordered zone pair's links in bytes/s, at `from * zones + to`; `None`:
    /// the network's default capacity. Empty when no pair has one.
    pub capacity: Vec<Option<f64>>,
}

impl ZoneLinks {
    /// Index of the ordered pair of the zones of `from` and `to`, if both are in a zone.
    #[inline]
    pub fn pair(&self, from: NodeId, to: NodeId) -> Option<usize> {
        let (a, b) = (self.zone_of[from.idx()], self.zone_of[to.idx()]);
        (a != NO_ZONE && b != NO_ZONE).then(|| a as usize * self.zones + b as usize)
    }
}

/// A zone pair's link as the network draws from it.
pub(super) struct ZoneLink {
    pub latency: Sampler,
    pub loss: f64,
}

/// [`ZoneLinks`] ready to draw from.
pub(super) struct Zones {
    pub table: ZoneLinks,
    links: Vec<Option<ZoneLink>>,
}

impl Zones {
    pub fn new(table: ZoneLinks) -> Zones {
        let links = table
            .pairs
            .iter()
            .map(|m| {
                m.as_ref().map(|m| ZoneLink {
                    latency: Sampler::new(m.latency.clone()),
                    loss: m.loss,
                })
            })
            .collect();
        Zones { table, links }
    }

    /// The link between the zones of `from` and `to`, if the table gives one.
    #[inline]
    pub fn link(&self, from: NodeId, to: NodeId) -> Option<&ZoneLink> {
        self.links[self.table.pair(from, to)?].as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::dist::Dist;
    use crate::sim::time::SimDuration;

    #[test]
    fn pairs_are_ordered_and_nodes_without_a_zone_have_none() {
        let m = |ns| {
            Some(LinkModel {
                latency: Dist::Constant(SimDuration(ns)),
                loss: 0.0,
            })
        };
        let table = ZoneLinks {
            zone_of: vec![0, 1, NO_ZONE],
            zones: 2,
            pairs: vec![m(1), m(2), m(3), None],
            capacity: Vec::new(),
        };
        assert_eq!(table.pair(NodeId(0), NodeId(1)), Some(1));
        assert_eq!(table.pair(NodeId(1), NodeId(0)), Some(2));
        assert_eq!(table.pair(NodeId(1), NodeId(1)), Some(3));
        assert_eq!(table.pair(NodeId(2), NodeId(0)), None);
        let zones = Zones::new(table);
        assert!(
            zones.link(NodeId(1), NodeId(1)).is_none(),
            "left to the default"
        );
        assert_eq!(zones.link(NodeId(0), NodeId(0)).map(|l| l.loss), Some(0.0));
    }
}
