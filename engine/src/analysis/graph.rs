//! The scenario as the analytic model sees it: sources of requests, stations that queue them,
//! relays that route them, caches that absorb some, stores that need a quorum; and the calls
//! between them, with the probability of each route.
//!
//! ```text
//!  Client ──pool──▶ LoadBalancer ──weights──▶ Server replica (station: c workers, S, queue)
//!                                                 └─ stages: k of n calls, each to a pool
//!  Cache: hits answered after hit_time; misses and writes go to the backend replica key mod n
//!  ShardRouter: shard by key mass, then a reachable member of the shard
//! ```
//! Built once from a validated [`Model`]; everything the formulas need is a plain number here.

use super::keys::KeyDist;
use super::queueing::{Moments, moments};
use crate::components::NodeConfig;
use crate::components::data::cache::{CacheConfig, CacheStrategy};
use crate::components::replication::leader_store::{ReadFrom, Replication};
use crate::components::replication::replicated_store::{ReplicatedStoreConfig, StoreMode};
use crate::components::replication::shard_router::{KeyMap, ShardRouterConfig};
use crate::components::resilience::policy::{Backoff, RateLimit};
use crate::components::traffic::client::{Arrival, ClientConfig};
use crate::components::traffic::load_balancer::{LoadBalancerConfig, Strategy};
use crate::components::traffic::server::ServerConfig;
use crate::scenario::validate::Model;

/// How a caller picks a member of a pool.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pick {
    /// Among the members it can reach, by the pool's weights (a refused connection is skipped).
    Reachable,
    /// By the weights alone: a member that is down swallows the call, which fails.
    Fixed,
}

/// A set of nodes one call goes to, one member per call.
#[derive(Clone, Debug)]
pub struct Pool {
    /// (node index, share of the calls), shares summing to 1.
    pub members: Vec<(usize, f64)>,
    /// How the member is picked.
    pub pick: Pick,
}

impl Pool {
    /// Equal shares over `ids`.
    fn even(ids: &[usize], pick: Pick) -> Pool {
        let w = 1.0 / ids.len().max(1) as f64;
        Pool {
            members: ids.iter().map(|&i| (i, w)).collect(),
            pick,
        }
    }
}

/// One stage of a server's downstream calls: every call at once, done when `need` succeed.
#[derive(Clone, Debug)]
pub struct Stage {
    /// One pool per call.
    pub calls: Vec<Pool>,
    /// Successful answers the stage waits for.
    pub need: usize,
}

/// Where a request that arrives at a node goes next: one pool chosen with its probability.
#[derive(Clone, Debug, Default)]
pub struct Route {
    /// (probability, pool); probabilities sum to 1 (or to less, for a cache's misses).
    pub pools: Vec<(f64, Pool)>,
}

/// A node that issues requests.
#[derive(Clone, Debug)]
pub struct Source {
    /// Open loop: the mean arrival rate (requests/s); `None` for a closed loop.
    pub rate: Option<f64>,
    /// Closed loop: (users, mean think time in seconds).
    pub closed: Option<(u32, f64)>,
    /// Whether arrivals form a Poisson process.
    pub poisson: bool,
    /// Why they do not, if they do not.
    pub arrival_note: Option<String>,
    /// Where requests go.
    pub target: Pool,
    /// Fraction of writes.
    pub writes: f64,
    /// Which keys requests touch.
    pub keys: KeyDist,
    /// Attempts per request at most (1 without retries).
    pub attempts: u32,
    /// Retry budget: retries per request at most.
    pub budget: Option<f64>,
    /// Mean pause before a retry (seconds).
    pub backoff_s: f64,
    /// Hedge delay (seconds).
    pub hedge_after: Option<f64>,
    /// Per-attempt timeout (seconds).
    pub timeout: f64,
    /// Requests issued at most (`max_requests`), after which the source falls silent.
    pub max_requests: Option<u64>,
}

/// A server replica: `c` workers, a FIFO queue, and calls made while a worker is held.
#[derive(Clone, Debug)]
pub struct Station {
    /// Workers.
    pub c: u32,
    /// Local service time.
    pub service: Moments,
    /// Whether the service time is exponential.
    pub exponential: bool,
    /// Waiting room (`None`: unbounded).
    pub queue: Option<u64>,
    /// Downstream calls, stage by stage.
    pub stages: Vec<Stage>,
    /// Whether it sheds requests that waited too long.
    pub sheds: bool,
    /// Caller timeout seen by this station's calls (seconds), for the note on timeouts.
    pub call_timeout: f64,
    /// Whether an autoscaler resizes its pool while it runs (the formula takes it whole).
    pub resized: bool,
    /// Whether a deploy changes its pool's replicas and versions while it runs.
    pub deployed: bool,
}

/// A node that forwards each request once: a load balancer or a proxy.
#[derive(Clone, Debug)]
pub struct Relay {
    /// What it is, for messages (`load balancer`, `circuit breaker`, ...).
    pub what: &'static str,
    /// Where requests go.
    pub route: Route,
    /// Whether the split keeps Poisson arrivals Poisson (random or by key).
    pub poisson_split: bool,
    /// Whether each backend's share of the rate is exact (not only by symmetry or a guess).
    pub exact_shares: bool,
    /// Why the waiting-time formulas are approximate behind it, if they are.
    pub routing_note: Option<String>,
    /// A bulkhead's concurrency limit.
    pub bulkhead: Option<u32>,
    /// A rate limiter's long-run admitted rate (requests/s).
    pub rate_limit: Option<f64>,
    /// A shard router's map from key to shard.
    pub key_map: Option<KeyMap>,
    /// A load balancer with health checks or breakers (which take backends out over time).
    pub guarded: bool,
}

/// A cache in front of its backend.
#[derive(Clone, Debug)]
pub struct CacheNode {
    /// The configuration.
    pub cfg: CacheConfig,
    /// Backend calls: the replica `key mod n`, no other (shares by key mass, set by the flow).
    pub backend: Pool,
}

/// What a replicated store needs to answer.
#[derive(Clone, Debug)]
pub enum StoreRule {
    /// Leaderless: `read` replicas for a read, `write` for a write; sloppy quorums shrink.
    Quorum {
        /// R.
        read: usize,
        /// W.
        write: usize,
        /// Whether quorums shrink to what is reachable.
        sloppy: bool,
    },
    /// Leader/follower: a majority to have a leader, `write` replicas up to acknowledge a
    /// write; reads from any replica or only from the leader.
    Leader {
        /// Replicas up for a write (leader included).
        write: usize,
        /// Reads answered by any replica.
        reads_any: bool,
    },
}

/// A replica of a replicated store.
#[derive(Clone, Debug)]
pub struct StoreNode {
    /// Every replica of its group (node indices).
    pub group: Vec<usize>,
    /// Its quorum rule.
    pub rule: StoreRule,
}

/// What the model knows about one node.
#[derive(Clone, Debug)]
pub enum NodeModel {
    /// Issues requests.
    Source(Source),
    /// Queues and serves requests.
    Station(Station),
    /// Forwards each request once.
    Relay(Relay),
    /// A cache.
    Cache(CacheNode),
    /// A store replica (availability only).
    Store(StoreNode),
    /// No formula: why.
    Opaque(String),
}

/// Every node's model, by node index, with names.
pub struct Graph {
    /// Per node.
    pub nodes: Vec<NodeModel>,
    /// Per node: (name, group).
    pub names: Vec<(String, String)>,
}

impl Graph {
    /// The model of every node of `model`.
    pub fn new(model: &Model) -> Graph {
        let ids = |name: &str| -> Vec<usize> {
            model
                .names
                .resolve(name)
                .iter()
                .map(|id| id.idx())
                .collect()
        };
        let resized: Vec<&str> = model
            .spec
            .nodes
            .values()
            .filter_map(|c| match c {
                NodeConfig::Autoscaler(a) => Some(a.pool.as_str()),
                _ => None,
            })
            .collect();
        let deployed: Vec<&str> = model
            .spec
            .nodes
            .values()
            .filter_map(|c| match c {
                NodeConfig::Deploy(d) => Some(d.pool.as_str()),
                _ => None,
            })
            .collect();
        let nodes = (0..model.names.nodes.len())
            .map(|i| {
                let group = &model.names.nodes[i].1;
                let mut m = node_model(&model.spec.nodes[model.decl_of[i]], group, &ids);
                if let NodeModel::Station(s) = &mut m {
                    s.resized = resized.contains(&group.as_str());
                    s.deployed = deployed.contains(&group.as_str());
                }
                m
            })
            .collect();
        Graph {
            nodes,
            names: model.names.nodes.clone(),
        }
    }

    /// The nodes a request arriving at `i` may call, every route and stage together.
    pub fn callees(&self, i: usize) -> Vec<usize> {
        let pools: Vec<&Pool> = match &self.nodes[i] {
            NodeModel::Source(s) => vec![&s.target],
            NodeModel::Relay(r) => r.route.pools.iter().map(|(_, p)| p).collect(),
            NodeModel::Station(s) => s.stages.iter().flat_map(|st| &st.calls).collect(),
            NodeModel::Cache(c) => vec![&c.backend],
            NodeModel::Store(_) | NodeModel::Opaque(_) => Vec::new(),
        };
        pools
            .iter()
            .flat_map(|p| p.members.iter().map(|(m, _)| *m))
            .collect()
    }

    /// A node's name.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i].0
    }
}

fn node_model(cfg: &NodeConfig, group: &str, ids: &dyn Fn(&str) -> Vec<usize>) -> NodeModel {
    match cfg {
        NodeConfig::Client(c) => match &c.arrival {
            Arrival::Shaped { .. } => NodeModel::Opaque(
                "its rate changes over time (a workload shape): no steady state to compute".into(),
            ),
            Arrival::Trace { .. } => {
                NodeModel::Opaque("it replays a trace: no steady-state rate to compute".into())
            }
            _ => NodeModel::Source(client(c, ids)),
        },
        NodeConfig::KvClient(c) => {
            let (rate, poisson, note) = arrival_rate(&c.arrival);
            let keys = KeyDist {
                keys: c.keys.clone(),
                hot: c.hot_key_fraction,
            };
            NodeModel::Source(Source {
                rate,
                closed: None,
                poisson,
                arrival_note: note,
                target: Pool::even(&ids(&c.target), Pick::Reachable),
                writes: c.write_fraction,
                keys,
                attempts: 1,
                budget: None,
                backoff_s: 0.0,
                hedge_after: None,
                timeout: c.timeout.as_secs_f64(),
                max_requests: None,
            })
        }
        NodeConfig::LoadBalancer(c) => NodeModel::Relay(load_balancer(c, ids)),
        NodeConfig::Server(c) => NodeModel::Station(station(c, ids)),
        NodeConfig::CircuitBreaker(c) => NodeModel::Relay(proxy("circuit breaker", &c.target, ids)),
        NodeConfig::Bulkhead(c) => NodeModel::Relay(Relay {
            bulkhead: Some(c.max_concurrent),
            ..proxy("bulkhead", &c.target, ids)
        }),
        NodeConfig::RateLimiter(c) => NodeModel::Relay(Relay {
            rate_limit: long_run_rate(&c.algorithm),
            ..proxy("rate limiter", &c.target, ids)
        }),
        NodeConfig::Cache(c) => NodeModel::Cache(CacheNode {
            cfg: c.clone(),
            backend: Pool::even(&ids(&c.backend), Pick::Fixed),
        }),
        NodeConfig::ShardRouter(c) => NodeModel::Relay(shard_router(c, ids)),
        NodeConfig::ReplicatedStore(c) => NodeModel::Store(store(c, ids(group))),
        NodeConfig::TxnClient(_)
        | NodeConfig::TxnCoordinator(_)
        | NodeConfig::TxnParticipant(_) => {
            NodeModel::Opaque("transactions (2PC, 3PC, saga) have no closed form here".into())
        }
        NodeConfig::ReadReplicas(_) => NodeModel::Opaque(
            "read replicas serve without a queue; their staleness has no formula here".into(),
        ),
        NodeConfig::Topic(_) | NodeConfig::LogConsumer(_) => NodeModel::Opaque(
            "a partitioned log's consumers pull at their own pace; no formula here".into(),
        ),
        NodeConfig::Queue(_) => NodeModel::Opaque(
            "a message queue's consumers pull at their own pace; no formula here".into(),
        ),
        NodeConfig::Plugin(p) => NodeModel::Opaque(format!(
            "plug-in component `{}` has no analytic model",
            p.kind
        )),
        NodeConfig::Autoscaler(_) => NodeModel::Opaque(
            "an autoscaler changes its pool's size while it runs; the pool is taken at its \
             full size"
                .into(),
        ),
        NodeConfig::Deploy(_) => NodeModel::Opaque(
            "a deploy changes its pool's replicas and versions while it runs; its expected \
             failures are in the deploy figures"
                .into(),
        ),
        NodeConfig::Gslb(_) => NodeModel::Opaque(
            "no formula here for routing through a GSLB (its answers follow health checks and \
             each client's cached TTL); by hand: a client loses about rate × (detection + TTL/2) \
             requests per outage of its region, detection ≈ (unhealthy_threshold − ½) × \
             interval + timeout on average (see the clients' failover counters)"
                .into(),
        ),
    }
}

/// The mean rate of an arrival process, whether it is Poisson, and why not.
fn arrival_rate(a: &Arrival) -> (Option<f64>, bool, Option<String>) {
    match a {
        Arrival::Poisson { rate } => (Some(*rate), true, None),
        Arrival::Constant { rate } => (
            Some(*rate),
            false,
            Some(
                "evenly spaced arrivals (the formulas assume Poisson: they overestimate waiting)"
                    .into(),
            ),
        ),
        Arrival::Bursts {
            rate,
            burst_rate,
            every,
            length,
        } => {
            let share = length.as_secs_f64() / every.as_secs_f64();
            let mean = burst_rate * share + rate * (1.0 - share);
            let note = "bursty arrivals, taken at their mean rate (queues build in bursts)";
            (Some(mean), false, Some(note.into()))
        }
        Arrival::Closed { .. } => (None, false, None),
        // Shaped and trace arrivals make the client opaque (see `node`).
        Arrival::Shaped { .. } | Arrival::Trace { .. } => (None, false, None),
    }
}

fn client(c: &ClientConfig, ids: &dyn Fn(&str) -> Vec<usize>) -> Source {
    let (rate, poisson, mut note) = arrival_rate(&c.arrival);
    let closed = match &c.arrival {
        Arrival::Closed { users, think_time } => {
            note = Some(
                "closed loop: throughput solved from N = X (Z + R), queues taken as open".into(),
            );
            Some((*users, moments(think_time).mean))
        }
        _ => None,
    };
    let (attempts, budget, backoff_s) = c.retry.as_ref().map_or((1, None, 0.0), |r| {
        (r.max_attempts.max(1), r.budget, mean_backoff(&r.backoff))
    });
    Source {
        rate,
        closed,
        poisson,
        arrival_note: note,
        target: Pool::even(&ids(&c.target), Pick::Reachable),
        writes: c.write_fraction,
        keys: KeyDist {
            keys: c.keys.clone(),
            hot: 0.0,
        },
        attempts,
        budget,
        backoff_s,
        hedge_after: c.hedge.as_ref().map(|h| h.after.as_secs_f64()),
        timeout: c.timeout.as_secs_f64(),
        max_requests: c.max_requests,
    }
}

fn load_balancer(c: &LoadBalancerConfig, ids: &dyn Fn(&str) -> Vec<usize>) -> Relay {
    let backends: Vec<usize> = c.backends.iter().flat_map(|b| ids(b)).collect();
    let one_group = c.backends.len() == 1;
    let pick = if c.skip_unreachable {
        Pick::Reachable
    } else {
        Pick::Fixed
    };
    let mut pool = Pool::even(&backends, pick);
    let (poisson_split, exact_shares, note) = match &c.strategy {
        Strategy::Random => (true, true, None),
        Strategy::RoundRobin => (
            false,
            true,
            Some(
                "round robin spaces each backend's arrivals evenly (the Poisson formulas overestimate waiting)",
            ),
        ),
        Strategy::WeightedRoundRobin { weights } => {
            let total: f64 = weights.iter().map(|&w| f64::from(w)).sum();
            for ((_, share), w) in pool.members.iter_mut().zip(weights) {
                *share = f64::from(*w) / total;
            }
            (
                false,
                true,
                Some(
                    "weighted round robin spaces arrivals evenly (the Poisson formulas overestimate waiting)",
                ),
            )
        }
        Strategy::LeastConnections => (
            false,
            one_group,
            Some(
                "least connections routes by queue length, which independent queues ignore (the formulas overestimate waiting)",
            ),
        ),
        Strategy::PowerOfTwoChoices => (
            false,
            one_group,
            Some(
                "power of two choices routes by queue length, which independent queues ignore (the formulas overestimate waiting)",
            ),
        ),
        Strategy::PeakEwma { .. } | Strategy::LeastResponseTime { .. } => (
            false,
            one_group,
            Some(
                "latency-aware balancing routes by queue length and measured latency, which independent queues ignore (the formulas overestimate waiting)",
            ),
        ),
        Strategy::ConsistentHash { .. } => (
            true,
            false,
            Some("consistent hashing's shares depend on the ring; taken as equal"),
        ),
    };
    Relay {
        what: "load balancer",
        route: Route {
            pools: vec![(1.0, pool)],
        },
        poisson_split,
        exact_shares,
        routing_note: note.map(str::to_string),
        bulkhead: None,
        rate_limit: None,
        key_map: None,
        guarded: c.health_check.is_some() || c.breaker.is_some(),
    }
}

fn proxy(what: &'static str, target: &str, ids: &dyn Fn(&str) -> Vec<usize>) -> Relay {
    Relay {
        what,
        route: Route {
            pools: vec![(1.0, Pool::even(&ids(target), Pick::Reachable))],
        },
        poisson_split: true,
        exact_shares: true,
        routing_note: None,
        bulkhead: None,
        rate_limit: None,
        key_map: None,
        guarded: false,
    }
}

/// The long-run rate a rate limiter admits at most (requests/s); per key or per caller it
/// depends on the keys, so none.
fn long_run_rate(a: &RateLimit) -> Option<f64> {
    Some(match a {
        RateLimit::TokenBucket { rate, .. } | RateLimit::LeakyBucket { rate, .. } => *rate,
        RateLimit::FixedWindow { limit, window }
        | RateLimit::SlidingLog { limit, window }
        | RateLimit::SlidingWindowCounter { limit, window } => {
            f64::from(*limit) / window.as_secs_f64()
        }
    })
}

/// The mean pause before a first retry (seconds): later ones are longer, but rare when
/// failures are.
fn mean_backoff(b: &Backoff) -> f64 {
    match *b {
        Backoff::Constant(d) => d.as_secs_f64(),
        Backoff::Exponential { base, .. } => base.as_secs_f64(),
        Backoff::FullJitter { base, .. } => base.as_secs_f64() / 2.0,
        Backoff::DecorrelatedJitter { base, cap } => {
            (base.as_secs_f64() * 2.0).min(cap.as_secs_f64())
        }
    }
}

fn shard_router(c: &ShardRouterConfig, ids: &dyn Fn(&str) -> Vec<usize>) -> Relay {
    // Shares by key mass are filled in once the keys reaching the router are known.
    let pools = c
        .shards
        .iter()
        .map(|s| {
            (
                1.0 / c.shards.len() as f64,
                Pool::even(&ids(s), Pick::Reachable),
            )
        })
        .collect();
    Relay {
        what: "shard router",
        route: Route { pools },
        poisson_split: true,
        exact_shares: true,
        routing_note: None,
        bulkhead: None,
        rate_limit: None,
        key_map: Some(KeyMap::new(&c.strategy, &c.shards)),
        guarded: false,
    }
}

fn station(c: &ServerConfig, ids: &dyn Fn(&str) -> Vec<usize>) -> Station {
    let stages = c
        .calls
        .iter()
        .map(|st| Stage {
            calls: st
                .to
                .iter()
                .map(|t| Pool::even(&ids(t), Pick::Reachable))
                .collect(),
            need: st.wait_for.map_or(st.to.len(), |k| k as usize),
        })
        .collect();
    Station {
        c: c.workers,
        service: moments(&c.service_time),
        exponential: matches!(c.service_time, crate::sim::dist::Dist::Exponential { .. }),
        queue: c.queue_limit.map(u64::from),
        stages,
        sheds: c.shed_after.is_some(),
        call_timeout: c
            .calls
            .iter()
            .map(|s| s.timeout.as_secs_f64())
            .fold(f64::INFINITY, f64::min),
        resized: false,
        deployed: false,
    }
}

fn store(c: &ReplicatedStoreConfig, group: Vec<usize>) -> StoreNode {
    let n = c.replicas as usize;
    let rule = match &c.mode {
        StoreMode::Leaderless => StoreRule::Quorum {
            read: c.read_quorum as usize,
            write: c.write_quorum as usize,
            sloppy: c.sloppy,
        },
        StoreMode::LeaderFollower {
            replication, reads, ..
        } => StoreRule::Leader {
            write: match replication {
                Replication::Sync => n,
                Replication::SemiSync { acks } => *acks as usize + 1,
                Replication::Async { .. } => 1,
            },
            reads_any: *reads == ReadFrom::Follower,
        },
    };
    StoreNode { group, rule }
}

/// Whether a cache's writes go through to the backend one for one.
pub fn writes_through(strategy: CacheStrategy) -> bool {
    strategy != CacheStrategy::WriteBehind
}
