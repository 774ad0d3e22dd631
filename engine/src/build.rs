//! Assembly: turn a validated [`Model`] into a [`World`] ready to run.
//!
//! Building is separate from running: every name is resolved, every random stream derived
//! and every node constructed here, so the event loop only moves events. The network draws
//! from the stream `!network`, a name no node can have.

use crate::components::AnyNode;
use crate::components::message::Builtin;
use crate::contract::build::{BuildCtx, BuildEnv, Observer, Observers};
use crate::contract::metrics::RequestMetrics;
use crate::registry::Registry;
use crate::scenario::validate::Model;
use crate::sim::network::Network;
use crate::sim::rng::SimRng;
use crate::sim::time::SimDuration;
use crate::sim::{NodeId, Slot, World};
use std::sync::{Arc, Mutex};

/// The drain after `duration` lasts the longest client timeout, so that every request ends;
/// past this much of it, the run ends as soon as no request is in flight (periodic timers
/// would otherwise tick through a drain of hours for nothing).
pub const LONG_DRAIN: SimDuration = SimDuration::from_secs(60);

/// A world of the built-in components (and plug-ins), as a scenario builds it.
pub type BuiltinWorld = World<Builtin, AnyNode>;

/// A world ready to run, and the observers its nodes report to.
pub struct Built {
    /// The nodes, network and fault schedule.
    pub world: BuiltinWorld,
    /// Run-wide observers by name, in the order nodes first asked for them.
    pub observers: Vec<(String, Arc<Mutex<dyn Observer>>)>,
}

/// Build the world for `model` with random streams from `seed`.
pub fn build(model: &Model, registry: &Registry, seed: u64) -> BuiltinWorld {
    build_with_observers(model, registry, seed).world
}

/// Build the world for `model` with random streams from `seed`, keeping its observers.
pub fn build_with_observers(model: &Model, registry: &Registry, seed: u64) -> Built {
    let (faults, fault_windows) = model.fault_schedule(seed);
    let env = BuildEnv {
        names: &model.names,
        seed,
        arrivals_end: model.arrivals_end,
        measure_from: model.measure_from,
        window: model.window,
        end: model.end,
        faults: &faults,
        fault_windows: &fault_windows,
        topology: &model.zones.topology,
    };
    let observers = Observers::default();
    let config = |i: usize| &model.spec.nodes[model.decl_of[i]];
    // Controllers first: the pool state they create is there when the pool is built.
    let n = model.names.nodes.len();
    let order = (0..n)
        .filter(|&i| config(i).builds_first())
        .chain((0..n).filter(|&i| !config(i).builds_first()));
    let mut built: Vec<Option<Slot<AnyNode>>> = (0..n).map(|_| None).collect();
    for i in order {
        let b = BuildCtx::new(&env, NodeId(i as u32), &observers);
        built[i] = Some(Slot {
            name: b.name().to_string(),
            node: config(i).build(&b, registry),
            rng: SimRng::derive(seed, b.name()),
        });
    }
    let nodes = built
        .into_iter()
        .map(|s| s.expect("every node is built once"))
        .collect();
    let mut network = Network::new(
        model.default_link.clone(),
        model.links.clone(),
        SimRng::derive(seed, "!network"),
    );
    if let Some(zones) = &model.zones.zone_links {
        network = network.with_zones(zones.clone());
    }
    if model.zones.capacities.any() {
        network = network.with_capacities(model.zones.capacities.clone());
    }
    let mut world = World::new(
        nodes,
        network,
        faults,
        model.limits,
        RequestMetrics::new(model.measure_from, model.window)
            .with_classes(model.names.classes.len()),
    );
    world.end_drain_when_idle(model.arrivals_end.after(LONG_DRAIN));
    Built {
        world,
        observers: observers.into_list(),
    }
}
