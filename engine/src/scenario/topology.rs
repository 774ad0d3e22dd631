//! Zones, regions and link capacities: from the `network:` block and the nodes' `zone:` to
//! the components' [`Topology`] and the kernel's [`ZoneLinks`] and [`Capacities`].
//!
//! ```text
//!  network.regions { region: [zone, ..] } ─┐
//!  nodes."app".zones [zone, ..]  ──────────┼─▶ Topology (zone of every node, region of every zone)
//!  latency / cross_zone / cross_region ────┼─▶ ZoneLinks (link of every ordered zone pair)
//!  zone_links [(from, to, ..)] ────────────┘      (later entries win)
//!  bandwidth, links[].bandwidth ─────────────▶ Capacities
//! ```

use super::{NetworkConfig, Placement, Spec, ZoneLinkConfig};
use crate::components::NodeConfig;
use crate::contract::size::Bandwidth;
use crate::contract::topology::Topology;
use crate::contract::validate::{NameTable, Path, Validator};
use crate::sim::network::LinkModel;
use crate::sim::shaping::Capacities;
use crate::sim::zones::{NO_ZONE, ZoneLinks};
use std::collections::BTreeMap;

/// What zones and capacities resolve to.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// Zones and regions, for the components.
    pub topology: Topology,
    /// Zone pairs' links, for the kernel; `None` when the scenario declares no zones.
    pub zone_links: Option<ZoneLinks>,
    /// Link capacities, for the kernel.
    pub capacities: Capacities,
}

/// Check and resolve the zones, the nodes' placement and the capacities of `spec`.
pub fn resolve(spec: &Spec, names: &NameTable, v: &mut Validator<'_>) -> Resolved {
    let net = &spec.network;
    let mut topology = declare(net, v);
    topology.zone_of = place(spec, names, &topology, v);
    let zone_links = (!topology.zones.is_empty()).then(|| pair_links(net, &topology, v));
    check_locality(spec, &topology, v);
    if topology.zones.is_empty() {
        let at = Path::root().field("network");
        for (field, set) in [
            ("cross_zone", net.cross_zone.is_some()),
            ("cross_region", net.cross_region.is_some()),
            ("zone_links", !net.zone_links.is_empty()),
        ] {
            if set {
                v.error(
                    &at.field(field),
                    format!("`{field}` is set but no zones are declared"),
                    "expected zones declared under `network.regions`, e.g. {\"us-east\": [\"use-1a\", \"use-1b\"]}",
                );
            }
        }
    }
    Resolved {
        topology,
        zone_links,
        capacities: capacities(net, names, v),
    }
}

/// Regions and zones as declared, with names checked.
fn declare(net: &NetworkConfig, v: &mut Validator<'_>) -> Topology {
    let mut t = Topology::default();
    let at = Path::root().field("network").field("regions");
    for (r, (region, zones)) in net.regions.iter().enumerate() {
        if zones.is_empty() {
            v.error(
                &at.key(region),
                format!("region \"{region}\" has no zones"),
                "expected a list of zone names, e.g. [\"use-1a\", \"use-1b\"]",
            );
        }
        for (i, zone) in zones.iter().enumerate() {
            let clash = t.zones.contains(zone) || net.regions.contains_key(zone);
            if clash {
                v.error(
                    &at.key(region).index(i),
                    format!("\"{zone}\" is declared twice as a zone or region"),
                    "expected every zone and region name once",
                );
            }
            t.zones.push(zone.clone());
            t.region_of_zone.push(r as u16);
        }
        t.regions.push(region.clone());
    }
    if t.zones.len() >= NO_ZONE as usize {
        v.error(&at, "too many zones", "expected fewer than 65535 zones");
    }
    t
}

/// The zone of every node: a pool's replicas spread over its zones in turn.
fn place(spec: &Spec, names: &NameTable, t: &Topology, v: &mut Validator<'_>) -> Vec<u16> {
    let mut zone_of = vec![NO_ZONE; names.nodes.len()];
    for (node, placement) in &spec.placement {
        let at = Path::root().field("nodes").key(node);
        let (list, field) = match placement {
            Placement::Zone(z) => (std::slice::from_ref(z), "zone"),
            Placement::Zones(zs) => (zs.as_slice(), "zones"),
        };
        let members = names.resolve(node);
        let pool = spec.nodes.get(node).and_then(|c| c.replicas()).is_some();
        if !pool && list.len() > 1 {
            v.error(
                &at.field(field),
                format!("a single node in {} zones", list.len()),
                "expected one zone (`zone: \"use-1a\"`); only a pool's replicas spread over zones",
            );
        }
        if list.is_empty() {
            v.error(
                &at.field(field),
                "an empty list of zones",
                "expected at least one zone",
            );
            continue;
        }
        let mut ids = Vec::new();
        for (i, zone) in list.iter().enumerate() {
            let here = if field == "zone" {
                at.field(field)
            } else {
                at.field(field).index(i)
            };
            match t.zones.iter().position(|z| z == zone) {
                Some(z) => ids.push(z as u16),
                None => {
                    v.error(&here, format!("unknown zone \"{zone}\""), known_zones(t));
                    ids.push(NO_ZONE);
                }
            }
        }
        for (k, id) in members.iter().enumerate() {
            zone_of[id.idx()] = ids[k % ids.len()];
        }
    }
    zone_of
}

/// Components that route by zone must be in one.
fn check_locality(spec: &Spec, t: &Topology, v: &mut Validator<'_>) {
    for (name, cfg) in &spec.nodes {
        let routes_by_zone = matches!(cfg, NodeConfig::LoadBalancer(lb) if lb.locality.is_some());
        let placed = spec.placement.contains_key(name);
        if routes_by_zone && !placed {
            let at = Path::root().field("nodes").key(name).field("locality");
            let zones = if t.zones.is_empty() {
                "declare zones under `network.regions` and ".to_string()
            } else {
                String::new()
            };
            v.error(
                &at,
                format!("\"{name}\" prefers its own zone but is in none"),
                format!(
                    "expected the load balancer to be in a zone: {zones}add `zone: \"...\"` to it"
                ),
            );
        }
    }
}

/// "expected one of the zones ..." for an unknown zone.
pub fn known_zones(t: &Topology) -> String {
    if t.zones.is_empty() {
        return "expected a zone declared under `network.regions`; none is declared".to_string();
    }
    let list: Vec<String> = t.zones.iter().map(|z| format!("\"{z}\"")).collect();
    format!(
        "expected a zone declared under `network.regions`: {}",
        list.join(", ")
    )
}

/// "expected a zone or region ..." for an unknown name.
pub fn known_places(t: &Topology) -> String {
    let list: Vec<String> = t
        .regions
        .iter()
        .chain(&t.zones)
        .map(|z| format!("\"{z}\""))
        .collect();
    format!(
        "expected a zone or region declared under `network.regions`: {}",
        list.join(", ")
    )
}

/// The zones `name` stands for (a zone, or every zone of a region); reports an unknown name.
pub fn zones_named(t: &Topology, name: &str, at: &Path, v: &mut Validator<'_>) -> Vec<u16> {
    if let Some(z) = t.zones.iter().position(|z| z == name) {
        return vec![z as u16];
    }
    if let Some(r) = t.regions.iter().position(|x| x == name) {
        return (0..t.zones.len() as u16)
            .filter(|&z| t.region_of_zone[z as usize] == r as u16)
            .collect();
    }
    v.error(
        at,
        format!("unknown zone or region \"{name}\""),
        known_places(t),
    );
    Vec::new()
}

/// The link of every ordered zone pair: the default within a zone, `cross_zone` within a
/// region, `cross_region` between regions, then the `zone_links` overrides in order.
fn pair_links(net: &NetworkConfig, t: &Topology, v: &mut Validator<'_>) -> ZoneLinks {
    let at = Path::root().field("network");
    for (field, d) in [
        ("cross_zone", &net.cross_zone),
        ("cross_region", &net.cross_region),
    ] {
        if let Some(d) = d {
            v.check_dist(&at.field(field), d);
        }
    }
    let n = t.zones.len();
    let model = |d: &crate::sim::dist::Dist| LinkModel {
        latency: d.clone(),
        loss: net.loss,
    };
    let mut pairs = vec![None; n * n];
    for a in 0..n {
        for b in (0..n).filter(|&b| b != a) {
            let same_region = t.region_of_zone[a] == t.region_of_zone[b];
            let d = if same_region {
                net.cross_zone.as_ref()
            } else {
                net.cross_region.as_ref().or(net.cross_zone.as_ref())
            };
            pairs[a * n + b] = d.map(model);
        }
    }
    let mut capacity = vec![None; n * n];
    for (i, l) in net.zone_links.iter().enumerate() {
        let at = at.field("zone_links").index(i);
        override_pairs(net, t, l, &at, v, &mut pairs, &mut capacity);
    }
    if capacity.iter().all(Option::is_none) {
        capacity.clear();
    }
    ZoneLinks {
        zone_of: t.zone_of.clone(),
        zones: n,
        pairs,
        capacity,
    }
}

/// Apply one `zone_links` entry to the pairs it covers.
fn override_pairs(
    net: &NetworkConfig,
    t: &Topology,
    l: &ZoneLinkConfig,
    at: &Path,
    v: &mut Validator<'_>,
    pairs: &mut [Option<LinkModel>],
    capacity: &mut [Option<f64>],
) {
    let from = zones_named(t, &l.from, &at.field("from"), v);
    let to = zones_named(t, &l.to, &at.field("to"), v);
    if let Some(d) = &l.latency {
        v.check_dist(&at.field("latency"), d);
    }
    if let Some(p) = l.loss {
        super::validate::check_loss(v, &at.field("loss"), p);
    }
    if let Some(b) = l.bandwidth {
        check_bandwidth(v, &at.field("bandwidth"), b);
    }
    if l.latency.is_none() && l.loss.is_none() && l.bandwidth.is_none() {
        v.error(
            at,
            "a zone link that changes nothing",
            "expected `latency`, `loss` and/or `bandwidth`",
        );
    }
    let n = t.zones.len();
    let mut set = |a: u16, b: u16| {
        let i = a as usize * n + b as usize;
        let old = pairs[i].take().unwrap_or(LinkModel {
            latency: net.latency.clone(),
            loss: net.loss,
        });
        pairs[i] = Some(LinkModel {
            latency: l.latency.clone().unwrap_or(old.latency),
            loss: l.loss.unwrap_or(old.loss),
        });
        if let Some(b) = l.bandwidth {
            capacity[i] = Some(b.0);
        }
    };
    for &a in &from {
        for &b in &to {
            set(a, b);
            if !l.one_way {
                set(b, a);
            }
        }
    }
}

/// A capacity must be a positive, finite number of bytes per second.
pub fn check_bandwidth(v: &mut Validator<'_>, at: &Path, b: Bandwidth) {
    if !(b.0.is_finite() && b.0 > 0.0) {
        v.error(
            at,
            format!("a link capacity of {b}: zero capacity carries nothing"),
            "expected a positive bandwidth such as \"1Gbps\"",
        );
    }
}

/// The default capacity and the per-link ones (`links` with a `bandwidth`; names were checked
/// with the links' latencies).
fn capacities(net: &NetworkConfig, names: &NameTable, v: &mut Validator<'_>) -> Capacities {
    let at = Path::root().field("network");
    if let Some(b) = net.bandwidth {
        check_bandwidth(v, &at.field("bandwidth"), b);
    }
    let mut links = BTreeMap::new();
    for (i, l) in net.links.iter().enumerate() {
        let Some(b) = l.bandwidth else {
            continue;
        };
        check_bandwidth(v, &at.field("links").index(i).field("bandwidth"), b);
        for &a in names.resolve(&l.from) {
            for &c in names.resolve(&l.to) {
                links.insert((a, c), b.0);
                if l.both_ways {
                    links.insert((c, a), b.0);
                }
            }
        }
    }
    Capacities {
        default: net.bandwidth.map(|b| b.0),
        links,
    }
}
