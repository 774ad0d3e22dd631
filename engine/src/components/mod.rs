//! The built-in components, grouped by family, one file per component, and the closed lists
//! that dispatch to them.
//!
//! ```text
//!  traffic/      clients, the load balancer, servers and their calls to other services
//!  resilience/   policies (retry, breaker, rate limits, health) and the proxies built on them
//!  data/         caches and the message queue
//!  replication/  replicated stores, leader election, the key-value client, the shard router
//!  txn/          2PC, 3PC and saga: client, coordinator, participants, atomicity checker
//!  ops/          controllers that change a server pool while it runs (autoscaler)
//! ```
//! Components depend on the kernel (`sim/`), the component contract (`contract/`) and the
//! checkers (`check/`), never on assembly, the runner, the command line or the report. They
//! talk to each other only through messages ([`message::Message`]).
//!
//! Built-ins are a closed list the compiler checks ([`NodeConfig`], [`AnyNode`]); a user's own
//! component comes in through `Registry::register` and runs as [`AnyNode::Plugin`].

pub mod data;
pub mod message;
pub mod ops;
pub mod replication;
pub mod resilience;
pub mod traffic;
pub mod txn;

use crate::contract::build::BuildCtx;
use crate::contract::metrics::NodeStats;
use crate::contract::settable::{SetError, Settable};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use data::cache::{Cache, CacheConfig};
use data::log_consumer::{LogConsumer, LogConsumerConfig};
use data::queue::{Queue, QueueConfig};
use data::topic::{Topic, TopicConfig};
use message::{Builtin, Ctx, Message};
use ops::autoscaler::{Autoscaler, AutoscalerConfig};
use ops::deploy::{Deploy, DeployConfig};
use replication::kv_client::{KvClient, KvClientConfig};
use replication::read_replicas::{ReadReplicas, ReadReplicasConfig};
use replication::replicated_store::{ReplicatedStore, ReplicatedStoreConfig};
use replication::shard_router::{ShardRouter, ShardRouterConfig};
use resilience::bulkhead::{BulkheadConfig, BulkheadNode};
use resilience::circuit_breaker::{CircuitBreakerConfig, CircuitBreakerNode};
use resilience::rate_limiter::{RateLimiterConfig, RateLimiterNode};
use serde::Serialize;
use traffic::client::{Client, ClientConfig};
use traffic::gslb::{Gslb, GslbConfig};
use traffic::load_balancer::{LoadBalancer, LoadBalancerConfig};
use traffic::server::{Server, ServerConfig};
use txn::client::{TxnClient, TxnClientConfig};
use txn::coordinator::{TxnCoordinator, TxnCoordinatorConfig};
use txn::participant::{TxnParticipant, TxnParticipantConfig};

/// A plug-in node: any [`Node`] of the built-in vocabulary.
pub type PluginNode = Box<dyn Node<Builtin> + Send>;

/// Builds the nodes of plug-in kinds (the registry, which sits above the components, does).
pub trait PluginBuilder {
    /// Build the plug-in node `b.me()` from its config.
    fn build_plugin(&self, config: &PluginConfig, b: &BuildCtx<'_>) -> PluginNode;
}

/// A plug-in node's configuration, kept as RON text until its registered kind reads it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PluginConfig {
    /// The name it was registered under.
    pub kind: String,
    /// Its configuration as written, e.g. `Echo(delay: "1ms")`.
    pub ron: String,
}

/// A node's configuration, as declared under `nodes:`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum NodeConfig {
    /// See [`ClientConfig`].
    Client(ClientConfig),
    /// See [`LoadBalancerConfig`].
    LoadBalancer(LoadBalancerConfig),
    /// See [`ServerConfig`].
    Server(ServerConfig),
    /// A registered plug-in component.
    Plugin(PluginConfig),
    /// See [`CircuitBreakerConfig`].
    CircuitBreaker(CircuitBreakerConfig),
    /// See [`RateLimiterConfig`].
    RateLimiter(RateLimiterConfig),
    /// See [`BulkheadConfig`].
    Bulkhead(BulkheadConfig),
    /// See [`TxnClientConfig`].
    TxnClient(TxnClientConfig),
    /// See [`TxnCoordinatorConfig`].
    TxnCoordinator(TxnCoordinatorConfig),
    /// See [`TxnParticipantConfig`].
    TxnParticipant(TxnParticipantConfig),
    /// See [`CacheConfig`].
    Cache(CacheConfig),
    /// See [`KvClientConfig`].
    KvClient(KvClientConfig),
    /// See [`ReplicatedStoreConfig`].
    ReplicatedStore(ReplicatedStoreConfig),
    /// See [`ReadReplicasConfig`].
    ReadReplicas(ReadReplicasConfig),
    /// See [`QueueConfig`].
    Queue(QueueConfig),
    /// See [`ShardRouterConfig`].
    ShardRouter(ShardRouterConfig),
    /// See [`TopicConfig`].
    Topic(TopicConfig),
    /// See [`LogConsumerConfig`].
    LogConsumer(LogConsumerConfig),
    /// See [`AutoscalerConfig`].
    Autoscaler(AutoscalerConfig),
    /// See [`DeployConfig`].
    Deploy(DeployConfig),
    /// See [`GslbConfig`].
    Gslb(GslbConfig),
}

impl NodeConfig {
    /// For pools, how many replicas it declares (they are named `name-0 ..`).
    pub fn replicas(&self) -> Option<u32> {
        match self {
            NodeConfig::Server(s) => Some(s.replicas),
            NodeConfig::Client(_)
            | NodeConfig::LoadBalancer(_)
            | NodeConfig::Plugin(_)
            | NodeConfig::CircuitBreaker(_)
            | NodeConfig::RateLimiter(_)
            | NodeConfig::Bulkhead(_)
            | NodeConfig::TxnClient(_)
            | NodeConfig::TxnCoordinator(_)
            | NodeConfig::Cache(_)
            | NodeConfig::KvClient(_)
            | NodeConfig::Queue(_)
            | NodeConfig::ShardRouter(_)
            | NodeConfig::Autoscaler(_)
            | NodeConfig::Deploy(_)
            | NodeConfig::Gslb(_) => None,
            NodeConfig::TxnParticipant(p) => Some(p.replicas),
            NodeConfig::ReplicatedStore(s) => Some(s.replicas),
            NodeConfig::ReadReplicas(_) => None,
            NodeConfig::Topic(t) => Some(t.brokers),
            NodeConfig::LogConsumer(c) => Some(c.replicas),
        }
    }

    /// A client's timeout: the run goes on this long after `duration` so every request ends.
    pub fn client_timeout(&self) -> Option<SimDuration> {
        match self {
            NodeConfig::Client(c) => Some(c.request_deadline()),
            NodeConfig::LoadBalancer(_)
            | NodeConfig::Server(_)
            | NodeConfig::Plugin(_)
            | NodeConfig::CircuitBreaker(_)
            | NodeConfig::RateLimiter(_)
            | NodeConfig::Bulkhead(_)
            | NodeConfig::TxnCoordinator(_)
            | NodeConfig::TxnParticipant(_)
            | NodeConfig::Cache(_)
            | NodeConfig::ReplicatedStore(_)
            | NodeConfig::ReadReplicas(_)
            | NodeConfig::Queue(_)
            | NodeConfig::ShardRouter(_)
            | NodeConfig::Topic(_)
            | NodeConfig::LogConsumer(_)
            | NodeConfig::Autoscaler(_)
            | NodeConfig::Deploy(_)
            | NodeConfig::Gslb(_) => None,
            NodeConfig::TxnClient(c) => Some(c.timeout),
            NodeConfig::KvClient(c) => Some(c.timeout),
        }
    }

    /// Apply a variant override to one field.
    pub fn set(&mut self, field: &str, text: &str) -> Result<(), SetError> {
        match self {
            NodeConfig::Client(c) => c.set(field, text),
            NodeConfig::LoadBalancer(c) => c.set(field, text),
            NodeConfig::Server(c) => c.set(field, text),
            NodeConfig::CircuitBreaker(c) => c.set(field, text),
            NodeConfig::RateLimiter(c) => c.set(field, text),
            NodeConfig::Bulkhead(c) => c.set(field, text),
            NodeConfig::TxnClient(c) => c.set(field, text),
            NodeConfig::TxnCoordinator(c) => c.set(field, text),
            NodeConfig::TxnParticipant(c) => c.set(field, text),
            NodeConfig::Cache(c) => c.set(field, text),
            NodeConfig::KvClient(c) => c.set(field, text),
            NodeConfig::ReplicatedStore(c) => c.set(field, text),
            NodeConfig::ReadReplicas(c) => c.set(field, text),
            NodeConfig::Queue(c) => c.set(field, text),
            NodeConfig::ShardRouter(c) => c.set(field, text),
            NodeConfig::Topic(c) => c.set(field, text),
            NodeConfig::LogConsumer(c) => c.set(field, text),
            NodeConfig::Autoscaler(c) => c.set(field, text),
            NodeConfig::Deploy(c) => c.set(field, text),
            NodeConfig::Gslb(c) => c.set(field, text),
            // A plug-in's config is opaque text to the engine, so its fields have no names here.
            NodeConfig::Plugin(p) => Err(SetError::Unsupported(format!(
                "plug-in component `{}` cannot be overridden field by field; override the whole \
                 node in a separate scenario",
                p.kind
            ))),
        }
    }

    /// Build the node with id `b.me()`; a plug-in's through `plugins`.
    pub fn build(&self, b: &BuildCtx<'_>, plugins: &dyn PluginBuilder) -> AnyNode {
        match self {
            NodeConfig::Client(c) => AnyNode::Client(Client::new(c, b)),
            NodeConfig::LoadBalancer(c) => AnyNode::LoadBalancer(LoadBalancer::new(c, b)),
            NodeConfig::Server(c) => AnyNode::Server(Server::new(c, b)),
            NodeConfig::Plugin(p) => AnyNode::Plugin(plugins.build_plugin(p, b)),
            NodeConfig::CircuitBreaker(c) => AnyNode::CircuitBreaker(CircuitBreakerNode::new(c, b)),
            NodeConfig::RateLimiter(c) => AnyNode::RateLimiter(RateLimiterNode::new(c, b)),
            NodeConfig::Bulkhead(c) => AnyNode::Bulkhead(BulkheadNode::new(c, b)),
            NodeConfig::TxnClient(c) => AnyNode::TxnClient(TxnClient::new(c, b)),
            NodeConfig::TxnCoordinator(c) => AnyNode::TxnCoordinator(TxnCoordinator::new(c, b)),
            NodeConfig::TxnParticipant(c) => AnyNode::TxnParticipant(TxnParticipant::new(c, b)),
            NodeConfig::Cache(c) => AnyNode::Cache(Cache::new(c, b)),
            NodeConfig::KvClient(c) => AnyNode::KvClient(KvClient::new(c, b)),
            NodeConfig::ReplicatedStore(c) => AnyNode::ReplicatedStore(ReplicatedStore::new(c, b)),
            NodeConfig::ReadReplicas(c) => AnyNode::ReadReplicas(ReadReplicas::new(c, b)),
            NodeConfig::Queue(c) => AnyNode::Queue(Queue::new(c, b)),
            NodeConfig::ShardRouter(c) => AnyNode::ShardRouter(ShardRouter::new(c, b)),
            NodeConfig::Topic(c) => AnyNode::Topic(Topic::new(c, b)),
            NodeConfig::LogConsumer(c) => AnyNode::LogConsumer(LogConsumer::new(c, b)),
            NodeConfig::Autoscaler(c) => AnyNode::Autoscaler(Autoscaler::new(c, b)),
            NodeConfig::Deploy(c) => AnyNode::Deploy(Deploy::new(c, b)),
            NodeConfig::Gslb(c) => AnyNode::Gslb(Gslb::new(c, b)),
        }
    }

    /// Is it a controller of other nodes (an autoscaler, a deploy, a GSLB), which assembly builds
    /// before the rest so that the state it creates (a pool's, the GSLB's answers) is there
    /// when the nodes that follow it ask?
    pub fn builds_first(&self) -> bool {
        matches!(
            self,
            NodeConfig::Autoscaler(_) | NodeConfig::Deploy(_) | NodeConfig::Gslb(_)
        )
    }
}

/// Any node of a run. Built-ins are dispatched statically; plug-ins through a trait object.
// Nodes live inline in one Vec so an event touches one cache-friendly slot; a client's three
// random streams make its variant large, and boxing it would add a pointer chase per event.
#[allow(clippy::large_enum_variant)]
pub enum AnyNode {
    /// A client.
    Client(Client),
    /// A load balancer.
    LoadBalancer(LoadBalancer),
    /// A server replica.
    Server(Server),
    /// A plug-in node.
    Plugin(PluginNode),
    /// A circuit breaker proxy.
    CircuitBreaker(CircuitBreakerNode),
    /// A rate limiter proxy.
    RateLimiter(RateLimiterNode),
    /// A bulkhead proxy.
    Bulkhead(BulkheadNode),
    /// A transaction client.
    TxnClient(TxnClient),
    /// A transaction coordinator.
    TxnCoordinator(TxnCoordinator),
    /// A transaction participant.
    TxnParticipant(TxnParticipant),
    /// A cache.
    Cache(Cache),
    /// A key-value client.
    KvClient(KvClient),
    /// A replica of a replicated store.
    ReplicatedStore(ReplicatedStore),
    /// A primary with read replicas and a routing proxy.
    ReadReplicas(ReadReplicas),
    /// A message queue.
    Queue(Queue),
    /// A shard router.
    ShardRouter(ShardRouter),
    /// A broker of a partitioned log.
    Topic(Topic),
    /// A consumer of a partitioned log.
    LogConsumer(LogConsumer),
    /// An autoscaler of a server pool.
    Autoscaler(Autoscaler),
    /// A deploy controller of a server pool.
    Deploy(Deploy),
    /// A global traffic manager (DNS/GSLB).
    Gslb(Gslb),
}

macro_rules! dispatch {
    ($self:ident, $n:ident => $e:expr) => {
        match $self {
            AnyNode::Client($n) => $e,
            AnyNode::LoadBalancer($n) => $e,
            AnyNode::Server($n) => $e,
            AnyNode::Plugin($n) => $e,
            AnyNode::CircuitBreaker($n) => $e,
            AnyNode::RateLimiter($n) => $e,
            AnyNode::Bulkhead($n) => $e,
            AnyNode::TxnClient($n) => $e,
            AnyNode::TxnCoordinator($n) => $e,
            AnyNode::TxnParticipant($n) => $e,
            AnyNode::Cache($n) => $e,
            AnyNode::KvClient($n) => $e,
            AnyNode::ReplicatedStore($n) => $e,
            AnyNode::ReadReplicas($n) => $e,
            AnyNode::Queue($n) => $e,
            AnyNode::ShardRouter($n) => $e,
            AnyNode::Topic($n) => $e,
            AnyNode::LogConsumer($n) => $e,
            AnyNode::Autoscaler($n) => $e,
            AnyNode::Deploy($n) => $e,
            AnyNode::Gslb($n) => $e,
        }
    };
}

impl Node<Builtin> for AnyNode {
    #[inline]
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        dispatch!(self, n => n.on_start(ctx))
    }

    #[inline]
    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        dispatch!(self, n => n.on_message(ctx, from, msg))
    }

    #[inline]
    fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: TimerId, tag: u64) {
        dispatch!(self, n => n.on_timer(ctx, timer, tag))
    }

    fn on_crash(&mut self, now: SimTime) {
        dispatch!(self, n => n.on_crash(now))
    }

    fn on_crash_keep_state(&mut self, now: SimTime) {
        dispatch!(self, n => n.on_crash_keep_state(now))
    }

    fn on_restart(&mut self, ctx: &mut Ctx<'_>) {
        dispatch!(self, n => n.on_restart(ctx))
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        dispatch!(self, n => n.finish(now))
    }
}
