//! Assembly: turn a validated [`Model`] into a [`World`] ready to run.
//!
//! Building is separate from running: every name is resolved, every random stream derived
//! and every node constructed here, so the event loop only moves events. The network draws
//! from the stream `!network`, a name no node can have.

use crate::components::AnyNode;
use crate::registry::Registry;
use crate::scenario::validate::Model;
use crate::sim::message::NodeId;
use crate::sim::network::Network;
use crate::sim::rng::SimRng;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Slot, World};

/// What a component may ask while it is being built.
pub struct BuildCtx<'a> {
    model: &'a Model,
    registry: &'a Registry,
    seed: u64,
    me: NodeId,
}

impl<'a> BuildCtx<'a> {
    /// The node being built.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Its name (`app-2`).
    pub fn name(&self) -> &str {
        &self.model.names.nodes[self.me.idx()].0
    }

    /// The name it was declared under (`app` for `app-2`).
    pub fn group(&self) -> &str {
        &self.model.names.nodes[self.me.idx()].1
    }

    /// The nodes a node or group name stands for (validation guarantees it exists).
    pub fn resolve(&self, name: &str) -> Vec<NodeId> {
        self.model.names.resolve(name).to_vec()
    }

    /// The name of any node.
    pub fn node_name(&self, id: NodeId) -> &str {
        &self.model.names.nodes[id.idx()].0
    }

    /// A random stream for one purpose of this node, derived from (seed, node name, purpose).
    pub fn rng(&self, purpose: &str) -> SimRng {
        SimRng::derive(self.seed, &format!("{}/{purpose}", self.name()))
    }

    /// When clients stop issuing requests (the scenario's `duration`).
    pub fn arrivals_end(&self) -> SimTime {
        self.model.arrivals_end
    }

    /// When measurement starts (the scenario's `warmup`).
    pub fn measure_from(&self) -> SimTime {
        self.model.measure_from
    }

    /// Width of one time window of the time series (for [`crate::metrics::Series`]).
    pub fn window(&self) -> SimDuration {
        self.model.window
    }

    /// When the run ends: `duration` plus the drain time for requests still in flight.
    pub fn run_end(&self) -> SimTime {
        self.model.end
    }

    /// The registry the run was built with.
    pub fn registry(&self) -> &'a Registry {
        self.registry
    }
}

/// Build the world for `model` with random streams from `seed`.
pub fn build(model: &Model, registry: &Registry, seed: u64) -> World<AnyNode> {
    let nodes = (0..model.names.nodes.len())
        .map(|i| {
            let me = NodeId(i as u32);
            let b = BuildCtx {
                model,
                registry,
                seed,
                me,
            };
            let config = &model.spec.nodes[model.decl_of[i]];
            Slot {
                name: b.name().to_string(),
                node: config.build(&b),
                rng: SimRng::derive(seed, b.name()),
            }
        })
        .collect();
    let network = Network::new(
        model.default_link.clone(),
        model.links.clone(),
        SimRng::derive(seed, "!network"),
    );
    World::new(
        nodes,
        network,
        model.faults.clone(),
        model.limits,
        model.measure_from,
        model.window,
    )
}
