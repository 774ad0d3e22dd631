//! Assembly: turn a validated [`Model`] into a [`World`] ready to run.
//!
//! Building is separate from running: every name is resolved, every random stream derived
//! and every node constructed here, so the event loop only moves events. The network draws
//! from the stream `!network`, a name no node can have.

use crate::components::AnyNode;
use crate::metrics::NodeStats;
use crate::registry::Registry;
use crate::scenario::validate::Model;
use crate::sim::message::NodeId;
use crate::sim::network::Network;
use crate::sim::rng::SimRng;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Slot, World};
use std::any::Any;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// A run-wide observer that sees the ground truth several nodes report to it (the atomicity
/// of transactions, the history of a key-value store), and reports its verdict at the end of
/// the run under its own name, like a node.
///
/// Nodes get one with [`BuildCtx::observer`]; all nodes of a run asking for the same name share
/// one instance. The simulation is single-threaded per run, so the lock is never contended.
pub trait Observer: Send + 'static {
    /// End of the run at `now`: what the observer found.
    fn finish(&mut self, now: SimTime) -> NodeStats;
}

type ObserverEntry = (String, Arc<dyn Any + Send + Sync>, Arc<Mutex<dyn Observer>>);

/// What a component may ask while it is being built.
pub struct BuildCtx<'a> {
    model: &'a Model,
    registry: &'a Registry,
    seed: u64,
    me: NodeId,
    observers: &'a RefCell<Vec<ObserverEntry>>,
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

    /// The run's observer called `name`, created with `make` by the first node that asks.
    /// Its [`Observer::finish`] output appears in the results under `name`, like a node's.
    ///
    /// # Panics
    /// If two components ask for the same name with different types: a programming error.
    pub fn observer<T: Observer>(&self, name: &str, make: impl FnOnce() -> T) -> Arc<Mutex<T>> {
        let mut observers = self.observers.borrow_mut();
        if let Some((_, any, _)) = observers.iter().find(|(n, _, _)| n == name) {
            return Arc::clone(any)
                .downcast::<Mutex<T>>()
                .unwrap_or_else(|_| panic!("observer `{name}` requested with two types"));
        }
        let typed = Arc::new(Mutex::new(make()));
        let dynamic: Arc<Mutex<dyn Observer>> = typed.clone();
        observers.push((name.to_string(), typed.clone(), dynamic));
        typed
    }

    /// The run's whole fault schedule (timeline and random draws) with each fault's plot
    /// window (label and times), in the same order.
    pub fn faults(&self) -> (Vec<crate::sim::Fault>, Vec<crate::results::FaultWindow>) {
        self.model.fault_schedule(self.seed)
    }

    /// The registry the run was built with.
    pub fn registry(&self) -> &'a Registry {
        self.registry
    }
}

/// A world ready to run, and the observers its nodes report to.
pub struct Built {
    /// The nodes, network and fault schedule.
    pub world: World<AnyNode>,
    /// Run-wide observers by name, in the order nodes first asked for them.
    pub observers: Vec<(String, Arc<Mutex<dyn Observer>>)>,
}

/// Each observer's verdict at the end of the run, by name.
pub fn finish_observers(
    observers: &[(String, Arc<Mutex<dyn Observer>>)],
    now: SimTime,
) -> Vec<(String, NodeStats)> {
    observers
        .iter()
        .map(|(name, o)| {
            let mut o = o.lock().unwrap_or_else(|poison| poison.into_inner());
            (name.clone(), o.finish(now))
        })
        .collect()
}

/// Build the world for `model` with random streams from `seed`.
pub fn build(model: &Model, registry: &Registry, seed: u64) -> World<AnyNode> {
    build_with_observers(model, registry, seed).world
}

/// Build the world for `model` with random streams from `seed`, keeping its observers.
pub fn build_with_observers(model: &Model, registry: &Registry, seed: u64) -> Built {
    let observers = RefCell::new(Vec::new());
    let nodes = (0..model.names.nodes.len())
        .map(|i| {
            let me = NodeId(i as u32);
            let b = BuildCtx {
                model,
                registry,
                seed,
                me,
                observers: &observers,
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
    let (faults, _) = model.fault_schedule(seed);
    let world = World::new(
        nodes,
        network,
        faults,
        model.limits,
        model.measure_from,
        model.window,
    );
    Built {
        world,
        observers: observers
            .into_inner()
            .into_iter()
            .map(|(name, _, o)| (name, o))
            .collect(),
    }
}
