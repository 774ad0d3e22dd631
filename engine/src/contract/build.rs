//! What a component may ask while it is being built ([`BuildCtx`]), and the run-wide observers
//! several nodes report ground truth to ([`Observer`]).
//!
//! Assembly (`crate::build`, above the components) fills a [`BuildEnv`] from the validated
//! scenario and hands each component a [`BuildCtx`] for its node; the component never sees the
//! scenario itself.

use crate::contract::metrics::NodeStats;
use crate::contract::topology::Topology;
use crate::contract::validate::NameTable;
use crate::results::FaultWindow;
use crate::sim::rng::SimRng;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Fault, NodeId};
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

/// What every node of one run is built against: names, timing, faults and the seed.
pub struct BuildEnv<'a> {
    /// Node names and groups.
    pub names: &'a NameTable,
    /// The run's seed.
    pub seed: u64,
    /// When clients stop issuing requests (the scenario's `duration`).
    pub arrivals_end: SimTime,
    /// When measurement starts (the scenario's `warmup`).
    pub measure_from: SimTime,
    /// Width of one time window of the time series.
    pub window: SimDuration,
    /// When the run ends: `duration` plus the drain time for requests still in flight.
    pub end: SimTime,
    /// The run's whole fault schedule (timeline and random draws).
    pub faults: &'a [Fault],
    /// Each fault's plot window (label and times), in the same order as `faults`.
    pub fault_windows: &'a [FaultWindow],
    /// Zones and regions, and which node is in which.
    pub topology: &'a Topology,
}

type ObserverEntry = (String, Arc<dyn Any + Send + Sync>, Arc<Mutex<dyn Observer>>);

/// The observers of one run, created by the first node that asks for each name.
#[derive(Default)]
pub struct Observers(RefCell<Vec<ObserverEntry>>);

impl Observers {
    /// Each observer by name, in the order nodes first asked for them.
    pub fn into_list(self) -> Vec<(String, Arc<Mutex<dyn Observer>>)> {
        self.0
            .into_inner()
            .into_iter()
            .map(|(name, _, o)| (name, o))
            .collect()
    }
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

/// What a component may ask while it is being built.
pub struct BuildCtx<'a> {
    env: &'a BuildEnv<'a>,
    me: NodeId,
    observers: &'a Observers,
}

impl<'a> BuildCtx<'a> {
    /// The context for building node `me` of the run described by `env`.
    pub fn new(env: &'a BuildEnv<'a>, me: NodeId, observers: &'a Observers) -> Self {
        BuildCtx { env, me, observers }
    }

    /// The node being built.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Its name (`app-2`).
    pub fn name(&self) -> &str {
        &self.env.names.nodes[self.me.idx()].0
    }

    /// The name it was declared under (`app` for `app-2`).
    pub fn group(&self) -> &str {
        &self.env.names.nodes[self.me.idx()].1
    }

    /// The name any node was declared under (`app` for `app-2`).
    pub fn group_of(&self, id: NodeId) -> &str {
        &self.env.names.nodes[id.idx()].1
    }

    /// The nodes a node or group name stands for (validation guarantees it exists).
    pub fn resolve(&self, name: &str) -> Vec<NodeId> {
        self.env.names.resolve(name).to_vec()
    }

    /// The name of any node.
    pub fn node_name(&self, id: NodeId) -> &str {
        &self.env.names.nodes[id.idx()].0
    }

    /// The scenario's request classes, in priority order (empty: one class).
    pub fn classes(&self) -> &'a [String] {
        &self.env.names.classes
    }

    /// A random stream for one purpose of this node, derived from (seed, node name, purpose).
    pub fn rng(&self, purpose: &str) -> SimRng {
        SimRng::derive(self.env.seed, &format!("{}/{purpose}", self.name()))
    }

    /// When clients stop issuing requests (the scenario's `duration`).
    pub fn arrivals_end(&self) -> SimTime {
        self.env.arrivals_end
    }

    /// When measurement starts (the scenario's `warmup`).
    pub fn measure_from(&self) -> SimTime {
        self.env.measure_from
    }

    /// Width of one time window of the time series (for [`crate::contract::metrics::Series`]).
    pub fn window(&self) -> SimDuration {
        self.env.window
    }

    /// When the run ends: `duration` plus the drain time for requests still in flight.
    pub fn run_end(&self) -> SimTime {
        self.env.end
    }

    /// The run's observer called `name`, created with `make` by the first node that asks.
    /// Its [`Observer::finish`] output appears in the results under `name`, like a node's.
    ///
    /// # Panics
    /// If two components ask for the same name with different types: a programming error.
    pub fn observer<T: Observer>(&self, name: &str, make: impl FnOnce() -> T) -> Arc<Mutex<T>> {
        let mut observers = self.observers.0.borrow_mut();
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

    /// The run's observer called `name` if a node built before this one created it (a
    /// controller's pool state, which the pool's servers and balancers follow), else `None`.
    ///
    /// # Panics
    /// If it exists with another type: a programming error.
    pub fn existing_observer<T: Observer>(&self, name: &str) -> Option<Arc<Mutex<T>>> {
        let observers = self.observers.0.borrow();
        let (_, any, _) = observers.iter().find(|(n, _, _)| n == name)?;
        Some(
            Arc::clone(any)
                .downcast::<Mutex<T>>()
                .unwrap_or_else(|_| panic!("observer `{name}` requested with two types")),
        )
    }

    /// Zones and regions, and which node is in which.
    pub fn topology(&self) -> &'a Topology {
        self.env.topology
    }

    /// The run's whole fault schedule (timeline and random draws), and each fault's plot
    /// window (label and times) in the same order.
    pub fn faults(&self) -> (&'a [Fault], &'a [FaultWindow]) {
        (self.env.faults, self.env.fault_windows)
    }
}
