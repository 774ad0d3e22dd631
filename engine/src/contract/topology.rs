//! Where nodes are: the zones and regions of a scenario, as components see them while they
//! are built (a load balancer that prefers its own zone, a global balancer that answers with
//! the asker's region).
//!
//! ```text
//!   region "us-east" ─┬─ zone "use-1a" ─ nodes ...
//!                     └─ zone "use-1b" ─ nodes ...
//!   region "eu-west" ─── zone "euw-1a" ─ nodes ...
//! ```
//! Zones and regions are dense numbers here, in declaration order; a node may be in no zone.

use crate::sim::NodeId;
use crate::sim::zones::NO_ZONE;

/// How far apart two nodes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Distance {
    /// In the same zone.
    SameZone,
    /// In different zones of one region.
    CrossZone,
    /// In different regions.
    CrossRegion,
    /// One of them is in no zone.
    Unknown,
}

/// The zones and regions of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Topology {
    /// Zone of each node, indexed by `NodeId` ([`NO_ZONE`]: none). Empty when the scenario
    /// declares no zones.
    pub zone_of: Vec<u16>,
    /// Zone names, by zone number.
    pub zones: Vec<String>,
    /// Region of each zone, by zone number.
    pub region_of_zone: Vec<u16>,
    /// Region names, by region number.
    pub regions: Vec<String>,
}

impl Topology {
    /// The zone `node` is in, if any.
    pub fn zone(&self, node: NodeId) -> Option<u16> {
        self.zone_of
            .get(node.idx())
            .copied()
            .filter(|&z| z != NO_ZONE)
    }

    /// The region `node` is in, if any.
    pub fn region(&self, node: NodeId) -> Option<u16> {
        self.zone(node).map(|z| self.region_of_zone[z as usize])
    }

    /// How far apart `a` and `b` are.
    pub fn distance(&self, a: NodeId, b: NodeId) -> Distance {
        match (self.zone(a), self.zone(b)) {
            (Some(x), Some(y)) if x == y => Distance::SameZone,
            (Some(x), Some(y))
                if self.region_of_zone[x as usize] == self.region_of_zone[y as usize] =>
            {
                Distance::CrossZone
            }
            (Some(_), Some(_)) => Distance::CrossRegion,
            _ => Distance::Unknown,
        }
    }

    /// The nodes in zone or region `name` (a region: all its zones), marked by `NodeId`;
    /// `None` if no zone or region has that name.
    pub fn members(&self, name: &str) -> Option<Vec<bool>> {
        let zone = self.zones.iter().position(|z| z == name);
        let region = self.regions.iter().position(|r| r == name);
        if zone.is_none() && region.is_none() {
            return None;
        }
        let inside = |z: u16| {
            zone == Some(z as usize) || region == Some(self.region_of_zone[z as usize] as usize)
        };
        Some(
            self.zone_of
                .iter()
                .map(|&z| z != NO_ZONE && inside(z))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_members_follow_zones_and_regions() {
        let t = Topology {
            zone_of: vec![0, 1, 2, NO_ZONE, 0],
            zones: vec!["a1".into(), "a2".into(), "b1".into()],
            region_of_zone: vec![0, 0, 1],
            regions: vec!["a".into(), "b".into()],
        };
        let d = |x, y| t.distance(NodeId(x), NodeId(y));
        assert_eq!(d(0, 4), Distance::SameZone);
        assert_eq!(d(0, 1), Distance::CrossZone);
        assert_eq!(d(1, 2), Distance::CrossRegion);
        assert_eq!(d(3, 0), Distance::Unknown);
        assert_eq!(t.members("a"), Some(vec![true, true, false, false, true]));
        assert_eq!(
            t.members("b1"),
            Some(vec![false, false, true, false, false])
        );
        assert_eq!(t.members("c"), None);
        assert_eq!(t.region(NodeId(2)), Some(1));
    }
}
