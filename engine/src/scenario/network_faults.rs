//! The network faults of zones and messages: zone and region outages, region partitions,
//! degraded links between zones or regions, duplication and reordering. Each is checked here
//! and lowered to a kernel [`FaultAction`] over the nodes its zones hold.

use super::FaultConfig;
use super::topology::{known_zones, zones_named};
use crate::contract::topology::Topology;
use crate::contract::validate::{NameTable, Path, Validator};
use crate::sim::dist::Dist;
use crate::sim::time::SimDuration;
use crate::sim::{FaultAction, NodeId};

/// Check one of the fault kinds of this module and lower it, with its plot label; `None` for
/// the other kinds.
pub fn lower(
    f: &FaultConfig,
    names: &NameTable,
    t: &Topology,
    v: &mut Validator<'_>,
    at: &Path,
) -> Option<(FaultAction, String)> {
    let lowered = match f {
        FaultConfig::ZoneOutage { zone, .. } => {
            let nodes = if t.zones.contains(zone) {
                ids(&nodes_in(t, &[zone.as_str()], &at.field("zone"), v))
            } else {
                v.error(
                    &at.field("zone"),
                    format!("unknown zone \"{zone}\""),
                    known_zones(t),
                );
                Vec::new()
            };
            (FaultAction::Crash(nodes), format!("zone outage {zone}"))
        }
        FaultConfig::RegionOutage { region, .. } => {
            let known = t.regions.contains(region);
            if !known {
                let list: Vec<String> = t.regions.iter().map(|r| format!("\"{r}\"")).collect();
                v.error(
                    &at.field("region"),
                    format!("unknown region \"{region}\""),
                    format!(
                        "expected a region declared under `network.regions`: {}",
                        list.join(", ")
                    ),
                );
            }
            let nodes = if known {
                ids(&nodes_in(t, &[region.as_str()], &at.field("region"), v))
            } else {
                Vec::new()
            };
            (FaultAction::Crash(nodes), format!("region outage {region}"))
        }
        FaultConfig::RegionPartition {
            groups, one_way, ..
        } => region_partition(groups, *one_way, t, v, at),
        FaultConfig::DegradedLink {
            from,
            to,
            latency,
            loss,
            one_way,
            ..
        } => degraded(from, to, latency, *loss, *one_way, t, v, at),
        FaultConfig::Duplicate {
            node, probability, ..
        } => {
            check_probability(v, &at.field("probability"), *probability);
            let (nodes, who) = node_set(node.as_deref(), names, v, at);
            let action = FaultAction::Duplicate {
                nodes,
                probability: *probability,
            };
            (action, format!("duplicate {probability} {who}"))
        }
        FaultConfig::Reorder {
            node,
            probability,
            window,
            ..
        } => {
            check_probability(v, &at.field("probability"), *probability);
            if *window == SimDuration::ZERO {
                v.error(
                    &at.field("window"),
                    "a zero window reorders nothing",
                    "expected a positive duration such as \"5ms\"",
                );
            }
            let (nodes, who) = node_set(node.as_deref(), names, v, at);
            let action = FaultAction::Reorder {
                nodes,
                probability: *probability,
                window: *window,
            };
            (
                action,
                format!("reorder {probability} within {window} {who}"),
            )
        }
        FaultConfig::Crash { .. }
        | FaultConfig::Slowdown { .. }
        | FaultConfig::Partition { .. }
        | FaultConfig::LinkChange { .. }
        | FaultConfig::Restart { .. }
        | FaultConfig::Pause { .. }
        | FaultConfig::LatencySpike { .. }
        | FaultConfig::PacketLoss { .. }
        | FaultConfig::Isolate { .. }
        | FaultConfig::Split { .. }
        | FaultConfig::Random { .. } => return None,
    };
    Some(lowered)
}

/// The nodes in the zones or regions `names`, marked by `NodeId`; unknown names are reported.
fn nodes_in(t: &Topology, names: &[&str], at: &Path, v: &mut Validator<'_>) -> Vec<bool> {
    let mut member = vec![false; t.zone_of.len()];
    for name in names {
        let zones = zones_named(t, name, at, v);
        for (node, z) in t.zone_of.iter().enumerate() {
            if zones.contains(z) {
                member[node] = true;
            }
        }
    }
    member
}

fn ids(member: &[bool]) -> Vec<NodeId> {
    (0..member.len())
        .filter(|&i| member[i])
        .map(|i| NodeId(i as u32))
        .collect()
}

fn region_partition(
    groups: &[Vec<String>],
    one_way: bool,
    t: &Topology,
    v: &mut Validator<'_>,
    at: &Path,
) -> (FaultAction, String) {
    let mut side = vec![0u16; t.zone_of.len()];
    if groups.is_empty() {
        v.error(
            &at.field("groups"),
            "a partition without groups",
            "expected a list of groups, e.g. [[\"us-east\"], [\"eu-west\"]]",
        );
    }
    for (g, group) in groups.iter().enumerate() {
        let here = at.field("groups").index(g);
        if group.is_empty() {
            v.error(
                &here,
                "an empty group",
                "expected at least one zone or region",
            );
        }
        for (k, name) in group.iter().enumerate() {
            let member = nodes_in(t, &[name.as_str()], &here.index(k), v);
            for (node, inside) in member.iter().enumerate() {
                if !inside {
                    continue;
                }
                if side[node] != 0 && side[node] != g as u16 + 1 {
                    v.error(
                        &here.index(k),
                        format!("\"{name}\" overlaps another group"),
                        "expected each zone in one group at most",
                    );
                    break;
                }
                side[node] = g as u16 + 1;
            }
        }
    }
    if groups.len() == 1 {
        side.iter_mut().filter(|s| **s == 0).for_each(|s| *s = 2);
    }
    let sep = if one_way { " -> " } else { " | " };
    let label: Vec<String> = groups.iter().map(|g| g.join(",")).collect();
    let action = FaultAction::Partition { side, one_way };
    (action, format!("region partition {}", label.join(sep)))
}

#[allow(clippy::too_many_arguments)] // One fault's fields, checked together.
fn degraded(
    from: &str,
    to: &str,
    latency: &Option<Dist>,
    loss: Option<f64>,
    one_way: bool,
    t: &Topology,
    v: &mut Validator<'_>,
    at: &Path,
) -> (FaultAction, String) {
    let a = nodes_in(t, &[from], &at.field("from"), v);
    let b = nodes_in(t, &[to], &at.field("to"), v);
    if let Some(d) = latency {
        v.check_dist(&at.field("latency"), d);
    }
    if let Some(p) = loss {
        check_probability(v, &at.field("loss"), p);
    }
    if latency.is_none() && loss.is_none() {
        v.error(
            at,
            "a degraded link that changes nothing",
            "expected `latency: Some(...)` and/or `loss: Some(...)`",
        );
    }
    let what = match (latency, loss) {
        (Some(d), Some(p)) => format!("latency {} and loss {p}", super::faults::dist_label(d)),
        (Some(d), None) => format!("latency {}", super::faults::dist_label(d)),
        (None, Some(p)) => format!("loss {p}"),
        (None, None) => "nothing".to_string(),
    };
    let arrow = if one_way { "->" } else { "<->" };
    let label = format!("degraded link {from} {arrow} {to}: {what}");
    let (latency, loss) = (latency.clone(), loss);
    let action = if one_way {
        FaultAction::LinkChange {
            from: a,
            to: b,
            latency,
            loss,
        }
    } else {
        FaultAction::LinksBetween {
            a,
            b,
            latency,
            loss,
        }
    };
    (action, label)
}

fn check_probability(v: &mut Validator<'_>, at: &Path, p: f64) {
    if !(0.0..=1.0).contains(&p) {
        v.error(
            at,
            format!("probability {p} is not a probability"),
            "expected a number from 0.0 to 1.0",
        );
    }
}

/// The nodes of `node` (every node when left out: an empty set), and a label.
fn node_set(
    node: Option<&str>,
    names: &NameTable,
    v: &mut Validator<'_>,
    at: &Path,
) -> (Vec<bool>, String) {
    let Some(name) = node else {
        return (Vec::new(), "*".to_string());
    };
    let mut set = vec![false; names.nodes.len()];
    for id in v.resolve(&at.field("node"), name).unwrap_or(&[]) {
        set[id.idx()] = true;
    }
    (set, name.to_string())
}
