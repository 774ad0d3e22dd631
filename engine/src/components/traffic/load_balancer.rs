//! `LoadBalancer`: a proxy that spreads requests over backends by a chosen strategy.
//!
//! ```text
//!  client ──req──▶ LB ── pick a reachable backend ──req'──▶ backend
//!        ◀─resp──     ◀──────────────── resp' ───────────
//!                  no reachable backend ─▶ Err(Unreachable)
//!                  no answer in `timeout` ─▶ Err(Timeout)
//! ```
//! The LB keeps a table from its own outgoing call to the client's call, and counts the calls
//! outstanding at each backend (what LeastConnections and PowerOfTwoChoices compare). It skips
//! backends it cannot reach (crashed or partitioned away), as a proxy whose connections are
//! refused would (unless `skip_unreachable: false`: then a dead backend swallows requests
//! until they time out, as a host that vanished without refusing connections does).
//!
//! Options that take backends out of the rotation:
//! - `health_check`: every `interval` the LB sends each backend a probe (an ordinary read);
//!   `unhealthy_threshold` failures in a row (error or no answer within the check's `timeout`)
//!   take it out, `healthy_threshold` passes in a row bring it back.
//! - `breaker`: a circuit breaker per backend, fed by the outcomes of the requests forwarded
//!   to it; an open breaker takes the backend out until its cool-down ends, then probes.
//!
//! Latency-aware strategies (`PeakEwma`, `LeastResponseTime`) and `slow_start` are in
//! `balancing.rs`: the balancer feeds them each answer's round-trip time and each backend that
//! becomes available again.
//!
//! When every backend is out, the request fails at once: `circuit_open` if a breaker is open,
//! `unreachable` otherwise. Every change of health or breaker state is recorded with its time.

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::ops::pool::{Pool, lock, pool_name};
use crate::components::resilience::policy::{
    Breaker, BreakerConfig, BreakerState, Health, HealthCheckConfig, RetryBudget, RetryConfig,
};
use crate::components::traffic::balancing::{
    Averaging, RttEstimates, SlowStart, SlowStartConfig, ten_s, thirty_ms,
};
use crate::components::traffic::calls::CallTable;
use crate::components::traffic::connections::{
    self, ConnectionConfig, HandshakeCpu, Pools, Terminator,
};
use crate::components::traffic::locality::{Locality, LocalityConfig};
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Handshake, Op, Reply, Request, RequestId, Response};
use crate::contract::metrics::{EventLog, NodeStats, Series, SeriesKind};
use crate::contract::state_series::StateSeries;
use crate::contract::trace::{Mark, SpanKind};
use crate::contract::validate::{Path, Validator};
use crate::sim::rng::{RandomSource, SimRng, mix64, stable_hash};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A backend's health states, as the load balancer sees it.
const HEALTH_STATES: [&str; 3] = ["in rotation", "unhealthy", "breaker open"];

/// How a load balancer picks a backend for each request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Strategy {
    /// Each backend in turn.
    RoundRobin,
    /// In turn, in proportion to the weights (smooth weighted round robin, as nginx does):
    /// `WeightedRoundRobin(weights: [3, 1, 1])`, one weight per backend replica.
    WeightedRoundRobin {
        /// One positive weight per backend replica, in order.
        weights: Vec<u32>,
    },
    /// A backend chosen uniformly at random.
    Random,
    /// The backend with the fewest outstanding calls (ties go round-robin).
    LeastConnections,
    /// Two distinct backends at random; the one with fewer outstanding calls wins.
    PowerOfTwoChoices,
    /// Peak EWMA, as Finagle and Linkerd balance: each backend's round-trip time is averaged
    /// with a decay time (a slower answer than the average replaces it at once), and of two
    /// backends chosen at random the one with the lower average × (outstanding calls + 1)
    /// wins: `PeakEwma(decay: "10s", default_rtt: "30ms")`. With equal latencies it is
    /// power of two choices; a slow backend gets fewer requests.
    PeakEwma {
        /// Time constant of the average (duration). Default "10s", as Finagle and Linkerd.
        #[serde(default = "ten_s")]
        decay: SimDuration,
        /// Round-trip time assumed before a backend's first answer (duration). Default
        /// "30ms", as Linkerd (tower: 1 s).
        #[serde(default = "thirty_ms")]
        default_rtt: SimDuration,
    },
    /// Least response time, as NGINX's `least_time`: the backend with the lowest average
    /// round-trip time × (outstanding calls + 1) among all of them (ties in turn), with a
    /// plain moving average: `LeastResponseTime(decay: "10s")`.
    LeastResponseTime {
        /// Time constant of the average (duration). Default "10s".
        #[serde(default = "ten_s")]
        decay: SimDuration,
        /// Round-trip time assumed before a backend's first answer (duration). Default "30ms".
        #[serde(default = "thirty_ms")]
        default_rtt: SimDuration,
    },
    /// A hash ring over the request key with `vnodes` points per backend:
    /// `ConsistentHash(vnodes: 100)`. A key keeps its backend while that backend is reachable.
    ConsistentHash {
        /// Points on the ring per backend (count, at most 10000). Default 100.
        #[serde(default = "default_vnodes")]
        vnodes: u32,
    },
}

fn default_vnodes() -> u32 {
    100
}

/// A proxy that spreads requests over backends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "LoadBalancer", deny_unknown_fields)]
pub struct LoadBalancerConfig {
    /// How a backend is chosen for each request.
    pub strategy: Strategy,
    /// Nodes or groups to balance over; a group contributes all its replicas, in order.
    pub backends: Vec<String>,
    /// Answer the client with a timeout error if the backend has not answered after this long
    /// (duration). Default "1s".
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// Skip backends that refuse connections (crashed or partitioned away) at once. With
    /// `false`, requests sent to a dead backend are lost and time out. Default true.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub skip_unreachable: bool,
    /// Active health checks: `Some((interval: "1s", timeout: "200ms", unhealthy_threshold: 2,
    /// healthy_threshold: 2))`. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    /// A circuit breaker per backend: `Some((failure_rate: 0.5, window: 20, min_calls: 10,
    /// cool_down: "5s", probes: 3))`. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerConfig>,
    /// Retry a failed forwarded call (an error answer, or no answer within `timeout`, which
    /// is then per try) on another backend after a backoff, as Envoy's retry policy does:
    /// `Some((max_attempts: 2, backoff: FullJitter(base: "25ms", cap: "250ms")))`. Each try
    /// draws a fresh service time. Default `None`: one try.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// Prefer backends in the balancer's own zone and spill by rule:
    /// `Some((prefer: SameZone, overprovisioning: 1.4, max_load: Some(8.0)))` (the balancer
    /// must be in a zone). Default `None`: every backend alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<LocalityConfig>,
    /// Slow start, as Envoy's: a backend that becomes available again (restarted, healthy
    /// again, breaker closed) gets a growing fraction of the requests the strategy would
    /// send it for `window`: `Some((window: "30s", aggression: 1.0, min_weight_percent:
    /// 10))`. Backends present at the start are not slowed. Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start: Option<SlowStartConfig>,
    /// The balancer's connections to its backends (see `ConnectionConfig`): `Tcp` behind a
    /// balancer that terminates TLS, `Tls13` to re-encrypt, `mutual: true` for mTLS.
    /// Default `None`: no connection model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionConfig>,
    /// CPU the balancer spends on its side of a TLS handshake from a caller with
    /// `connections` (it terminates TLS): `(full: "1ms", resumed: "100us", mutual: "200us")`,
    /// `mutual` added to `full` under mTLS. Default those values.
    #[serde(
        default = "HandshakeCpu::server",
        skip_serializing_if = "HandshakeCpu::is_server_default"
    )]
    pub handshake_cpu: HandshakeCpu,
    /// Cores doing those handshakes (count): a request that opened a connection waits, in
    /// order, for a core to finish its handshake. Default 4.
    #[serde(
        default = "default_tls_cores",
        skip_serializing_if = "is_default_tls_cores"
    )]
    pub tls_cores: u32,
}

fn default_tls_cores() -> u32 {
    4
}

fn is_default_tls_cores(n: &u32) -> bool {
    *n == default_tls_cores()
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn default_timeout() -> SimDuration {
    SimDuration::from_secs(1)
}

crate::settable!(LoadBalancerConfig {
    strategy,
    backends,
    timeout,
    skip_unreachable,
    health_check,
    breaker,
    retry,
    locality,
    slow_start,
    connections,
    handshake_cpu,
    tls_cores
});

impl LoadBalancerConfig {
    /// Check backends exist and strategy parameters fit them.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        let mut n_backends = 0;
        for (i, b) in self.backends.iter().enumerate() {
            n_backends += v
                .resolve(&at.field("backends").index(i), b)
                .map_or(0, |ids| ids.len());
        }
        if self.backends.is_empty() {
            v.error(
                &at.field("backends"),
                "a load balancer needs backends",
                "expected a list of node or group names",
            );
        }
        match &self.strategy {
            Strategy::WeightedRoundRobin { weights } => {
                let at = at.field("strategy").field("weights");
                if weights.len() != n_backends && n_backends > 0 {
                    v.error(
                        &at,
                        format!(
                            "{} weights for {n_backends} backend replicas",
                            weights.len()
                        ),
                        format!("expected exactly {n_backends} weights, one per backend replica"),
                    );
                }
                if weights.contains(&0) {
                    v.error(&at, "a zero weight", "expected positive weights");
                }
            }
            Strategy::PeakEwma { decay, .. } | Strategy::LeastResponseTime { decay, .. }
                if *decay == SimDuration::ZERO =>
            {
                v.error(
                    &at.field("strategy").field("decay"),
                    "a zero decay time keeps only the last answer",
                    "expected a positive duration (Finagle and Linkerd use 10s)",
                )
            }
            Strategy::ConsistentHash { vnodes: 0 } => v.error(
                &at.field("strategy").field("vnodes"),
                "no points on the ring",
                "expected a count >= 1",
            ),
            // The ring holds backends × vnodes points, built before the run starts.
            Strategy::ConsistentHash { vnodes } if *vnodes > 10_000 => v.error(
                &at.field("strategy").field("vnodes"),
                format!("{vnodes} virtual nodes"),
                "expected a count from 1 to 10000",
            ),
            _ => {}
        }
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout fails every request",
                "expected a positive duration",
            );
        }
        if let Some(h) = &self.health_check {
            h.validate(v, &at.field("health_check"));
        }
        if let Some(b) = &self.breaker {
            b.validate(v, &at.field("breaker"));
        }
        if let Some(r) = &self.retry {
            r.validate(v, &at.field("retry"));
        }
        if let Some(l) = &self.locality {
            l.validate(v, &at.field("locality"));
        }
        if let Some(s) = &self.slow_start {
            s.validate(v, &at.field("slow_start"));
        }
        connections::validate_option(&self.connections, v, &at.field("connections"));
        if self.tls_cores == 0 || self.tls_cores > 10_000 {
            v.error(
                &at.field("tls_cores"),
                format!("{} cores", self.tls_cores),
                "expected a count from 1 to 10000",
            );
        }
    }
}

/// Health probes: their call ids and timeout tags have the top bit set, so they cannot be
/// mistaken for forwarded calls (a `CallId` generation would need 2^31 reuses to reach it).
const PROBE_BIT: u64 = 1 << 63;
/// Timer tag of the periodic health-check round.
const TAG_CHECK_ROUND: u64 = u64::MAX;
/// Backoff timers before a retry: the top two bits set (the rest is the slot in
/// `Retries::waiting`); a probe's timer has only the top bit (a probe's `CallId` would need
/// 2^30 reuses of one slot to reach bit 62).
const RETRY_TAG: u64 = 3 << 62;
/// Timers of requests waiting for their TLS handshake: bit 62 alone (the rest is the slot in
/// the terminator's table; a forwarded call would need 2^30 reuses of a slot to reach it).
const HANDSHAKE_TAG: u64 = 1 << 62;
/// State changes kept per load balancer.
const EVENT_CAP: usize = 10_000;

/// What only a load balancer with health checks or breakers keeps.
struct Guards {
    skip_unreachable: bool,
    health_check: Option<HealthCheckConfig>,
    health: Vec<Health>,
    breakers: Vec<Breaker>,
    usable: Vec<bool>,
    probes: CallTable<(u32, TimerId)>,
    events: EventLog,
    in_rotation: Series,
    /// Per backend: in rotation, unhealthy or breaker open, for the health timeline.
    health_states: Vec<StateSeries>,
    circuit_open: u64,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    client: NodeId,
    /// The request as the client sent it (its `call` is the client's).
    req: Request,
    backend: u32,
    timer: TimerId,
    /// Tries made so far, this one included.
    tries: u32,
    /// The connection the try went out on (with `connections`).
    conn: Option<u32>,
    /// The backoff before this try (decorrelated jitter grows from it).
    pause: SimDuration,
    /// When this try was sent (its round-trip time feeds latency-aware strategies).
    sent_at: SimTime,
}

/// What only a load balancer with `retry` keeps: the requests waiting out a backoff.
struct Retries {
    cfg: RetryConfig,
    budget: Option<RetryBudget>,
    rng: SimRng,
    /// Requests between tries, as they were when their last try failed.
    waiting: CallTable<Pending>,
    retries: u64,
    denied: u64,
}

/// One load balancer node.
pub struct LoadBalancer {
    strategy: Strategy,
    timeout: SimDuration,
    backends: Vec<NodeId>,
    names: Vec<String>,
    outstanding: Vec<u32>,
    forwarded: Vec<u64>,
    next: usize,
    wrr_current: Vec<i64>,
    ring: Vec<(u64, u32)>,
    rng: SimRng,
    pending: CallTable<Pending>,
    candidates: Vec<u32>,
    /// The topology epoch `candidates` was computed at (`None`: recompute).
    candidates_epoch: Option<u64>,
    unreachable: u64,
    timeouts: u64,
    guards: Option<Box<Guards>>,
    retries: Option<Box<Retries>>,
    /// The locality layer, which narrows the backends the strategy picks from.
    locality: Option<Box<Locality>>,
    /// Round-trip estimates, for the latency-aware strategies.
    rtt: Option<Box<RttEstimates>>,
    /// Slow start of backends that became available, and the topology epoch last looked at.
    slow_start: Option<Box<SlowStart>>,
    seen_epoch: Option<u64>,
    /// Backends in pools a controller resizes: only replicas in rotation get requests.
    pools: Option<Box<PoolRoutes>>,
    /// Connection pools to the backends (with `connections`).
    conns: Option<Box<Pools>>,
    /// The TLS handshakes of callers' new connections, on the balancer's cores.
    terminator: Terminator,
}

/// Which backends belong to controlled pools, and which of them are in rotation.
struct PoolRoutes {
    pools: Vec<Arc<Mutex<Pool>>>,
    /// Per pool, the epoch `in_rotation` was computed at.
    seen: Vec<Option<u64>>,
    /// Per backend: (pool, replica) if it is in a controlled pool.
    seats: Vec<Option<(usize, usize)>>,
    in_rotation: Vec<bool>,
    /// Per backend: the version its replica runs.
    versions: Vec<u8>,
    /// Per backend: its replica's lives (`Pool::lives`), which its connections belong to.
    lives: Vec<u32>,
    /// Per pool: the fraction of traffic its new version gets (`None`: no split).
    splits: Vec<Option<f64>>,
    /// Per pool: the version this request goes to (`None`: any), drawn per request.
    wanted: Vec<Option<u8>>,
    /// The stream of those draws, used only while a pool splits traffic.
    split_rng: SimRng,
}

impl PoolRoutes {
    /// The controlled pools among `backends`, if any.
    fn find(backends: &[NodeId], b: &BuildCtx<'_>) -> Option<Box<PoolRoutes>> {
        let mut routes = PoolRoutes {
            pools: Vec::new(),
            seen: Vec::new(),
            seats: vec![None; backends.len()],
            in_rotation: vec![true; backends.len()],
            versions: vec![0; backends.len()],
            lives: vec![0; backends.len()],
            splits: Vec::new(),
            wanted: Vec::new(),
            split_rng: b.rng("traffic_split"),
        };
        // Each group once: (name, its index in `pools` if a controller resizes it).
        let mut groups: Vec<(String, Option<usize>)> = Vec::new();
        for (i, &id) in backends.iter().enumerate() {
            let group = b.group_of(id);
            let k = match groups.iter().find(|(g, _)| g == group) {
                Some((_, k)) => *k,
                None => {
                    let pool = b.existing_observer::<Pool>(&pool_name(group));
                    let k = pool.map(|p| {
                        routes.pools.push(p);
                        routes.seen.push(None);
                        routes.splits.push(None);
                        routes.wanted.push(None);
                        routes.pools.len() - 1
                    });
                    groups.push((group.to_string(), k));
                    k
                }
            };
            let replica = b.resolve(group).iter().position(|&r| r == id);
            routes.seats[i] = k.zip(replica);
        }
        (!routes.pools.is_empty()).then(|| Box::new(routes))
    }

    /// Bring `in_rotation` up to date with the pools' phases; `joined` hears of every backend
    /// that entered the rotation (for slow start).
    fn refresh(&mut self, mut joined: impl FnMut(usize)) {
        for (k, pool) in self.pools.iter().enumerate() {
            let p = lock(pool);
            if self.seen[k] == Some(p.epoch()) {
                continue;
            }
            self.seen[k] = Some(p.epoch());
            self.splits[k] = p.split();
            for (i, seat) in self.seats.iter().enumerate() {
                if let Some((pk, r)) = *seat
                    && pk == k
                {
                    let now_in = p.phase(r).in_rotation();
                    if now_in && !self.in_rotation[i] {
                        joined(i);
                    }
                    self.in_rotation[i] = now_in;
                    self.versions[i] = p.version(r);
                    self.lives[i] = p.lives(r);
                }
            }
        }
    }

    /// Draw which version of each splitting pool the next request goes to: one draw per
    /// request, compared with each pool's weight (no draw while no pool splits).
    fn draw_versions(&mut self) {
        if self.splits.iter().all(Option::is_none) {
            self.wanted.iter_mut().for_each(|w| *w = None);
            return;
        }
        let u = self.split_rng.uniform();
        for (w, split) in self.wanted.iter_mut().zip(&self.splits) {
            *w = split.map(|weight| u8::from(u < weight));
        }
    }

    /// Forget the drawn versions: any replica in rotation will do (the drawn version has
    /// none in rotation).
    fn any_version(&mut self) -> bool {
        let drawn = self.wanted.iter().any(Option::is_some);
        self.wanted.iter_mut().for_each(|w| *w = None);
        drawn
    }

    /// May this request go to backend `i` (in rotation, and of the drawn version)?
    fn routable(&self, i: usize) -> bool {
        self.in_rotation[i]
            && self.seats[i]
                .is_none_or(|(k, _)| self.wanted[k].is_none_or(|v| v == self.versions[i]))
    }

    /// A request to backend `i` ended after `rtt`, failed or not: the pool counts it for
    /// its version.
    fn outcome(&self, i: usize, now: SimTime, failed: bool, rtt: SimDuration) {
        if let Some((k, r)) = self.seats[i] {
            lock(&self.pools[k]).outcome(r, now, failed, rtt);
        }
    }

    /// A request to backend `i` was sent (`ended` false), or `n` of them ended.
    fn count(&self, i: usize, n: u32, ended: bool, now: SimTime) {
        if let Some((k, r)) = self.seats[i] {
            let mut p = lock(&self.pools[k]);
            if ended {
                p.ended(r, n, now);
            } else {
                p.sent(r, now);
            }
        }
    }
}

impl LoadBalancer {
    /// A load balancer built from its configuration.
    pub fn new(cfg: &LoadBalancerConfig, b: &BuildCtx<'_>) -> LoadBalancer {
        let backends: Vec<NodeId> = cfg.backends.iter().flat_map(|n| b.resolve(n)).collect();
        let names: Vec<String> = backends
            .iter()
            .map(|&id| b.node_name(id).to_string())
            .collect();
        let ring = match cfg.strategy {
            Strategy::ConsistentHash { vnodes } => hash_ring(&names, vnodes),
            _ => Vec::new(),
        };
        LoadBalancer {
            strategy: cfg.strategy.clone(),
            timeout: cfg.timeout,
            outstanding: vec![0; backends.len()],
            forwarded: vec![0; backends.len()],
            wrr_current: vec![0; backends.len()],
            backends,
            names,
            next: 0,
            ring,
            rng: b.rng("choices"),
            pending: CallTable::default(),
            candidates: Vec::new(),
            candidates_epoch: None,
            unreachable: 0,
            timeouts: 0,
            guards: None,
            retries: cfg.retry.as_ref().map(|r| {
                Box::new(Retries {
                    cfg: r.clone(),
                    budget: RetryBudget::new(r),
                    rng: b.rng("retry"),
                    waiting: CallTable::default(),
                    retries: 0,
                    denied: 0,
                })
            }),
            locality: None,
            rtt: None,
            slow_start: None,
            seen_epoch: None,
            pools: None,
            conns: cfg
                .connections
                .as_ref()
                .map(|c| Box::new(Pools::new(c, b.window()))),
            terminator: Terminator::new(cfg.handshake_cpu, cfg.tls_cores, b.window()),
        }
        .with_guards(cfg, b)
        .with_locality(cfg, b)
        .with_latency(cfg, b)
        .with_pools(b)
    }

    fn with_pools(mut self, b: &BuildCtx<'_>) -> LoadBalancer {
        self.pools = PoolRoutes::find(&self.backends, b);
        self
    }

    /// Round-trip estimates for the latency-aware strategies, and slow start.
    fn with_latency(mut self, cfg: &LoadBalancerConfig, b: &BuildCtx<'_>) -> LoadBalancer {
        let n = self.backends.len();
        self.rtt = match cfg.strategy {
            Strategy::PeakEwma { decay, default_rtt } => {
                Some((Averaging::Peak, decay, default_rtt))
            }
            Strategy::LeastResponseTime { decay, default_rtt } => {
                Some((Averaging::Plain, decay, default_rtt))
            }
            _ => None,
        }
        .map(|(avg, decay, default)| Box::new(RttEstimates::new(n, avg, decay, default)));
        self.slow_start = cfg
            .slow_start
            .as_ref()
            .map(|s| Box::new(SlowStart::new(s, n, b.rng("slow_start"))));
        self
    }

    /// The hook for "backend `i` became available at `now`" (a replica added to the pool
    /// or brought back by a controller): it enters slow start, if the balancer has one.
    pub fn backend_available(&mut self, i: usize, now: SimTime) {
        if let Some(s) = self.slow_start.as_mut() {
            s.joined(i, now);
        }
    }

    /// Look for backends that became available since the last look (the topology changed,
    /// or health and breakers, which can change with any request), for slow start.
    fn watch_availability(&mut self, ctx: &Ctx<'_>) {
        let Some(s) = self.slow_start.as_mut() else {
            return;
        };
        let epoch = ctx.topology_epoch();
        if self.guards.is_none() && self.seen_epoch == Some(epoch) {
            return;
        }
        self.seen_epoch = Some(epoch);
        for i in 0..self.backends.len() {
            let up = match self.guards.as_ref() {
                Some(g) => g.usable[i],
                None => ctx.reachable(self.backends[i]),
            };
            if s.seen(i, up, ctx.now())
                && let Some(g) = self.guards.as_mut()
            {
                g.events
                    .record(ctx.now(), format!("{}: slow start", self.names[i]));
            }
        }
    }

    /// Of two distinct candidates drawn uniformly, the one `better` prefers (power of two
    /// choices); the only candidate if there is one.
    fn better_of_two(&mut self, better: impl Fn(&LoadBalancer, u32, u32) -> u32) -> Option<u32> {
        let c = self.candidates.len() as u64;
        match c {
            0 => None,
            1 => Some(self.candidates[0]),
            _ => {
                let a = self.rng.below(c);
                let b = (a + 1 + self.rng.below(c - 1)) % c;
                let (a, b) = (self.candidates[a as usize], self.candidates[b as usize]);
                Some(better(self, a, b))
            }
        }
    }

    /// Of two candidates, the one a latency-aware cost prefers (the first on a tie).
    fn cheaper(&self, a: u32, b: u32) -> u32 {
        let cost = |i: u32| {
            let o = self.outstanding[i as usize];
            self.rtt
                .as_ref()
                .map_or(f64::from(o), |r| r.cost(i as usize, o))
        };
        if cost(b) < cost(a) { b } else { a }
    }

    fn with_guards(mut self, cfg: &LoadBalancerConfig, b: &BuildCtx<'_>) -> LoadBalancer {
        if cfg.skip_unreachable && cfg.health_check.is_none() && cfg.breaker.is_none() {
            return self;
        }
        let n = self.backends.len();
        let mut in_rotation = Series::new(SeriesKind::Level, b.window());
        in_rotation.set(SimTime::ZERO, n as f64);
        self.guards = Some(Box::new(Guards {
            skip_unreachable: cfg.skip_unreachable,
            health_check: cfg.health_check.clone(),
            health: vec![Health::default(); n],
            breakers: cfg
                .breaker
                .as_ref()
                .map(|c| vec![Breaker::new(c); n])
                .unwrap_or_default(),
            usable: vec![true; n],
            probes: CallTable::default(),
            events: EventLog::new(EVENT_CAP),
            in_rotation,
            health_states: vec![StateSeries::starting(&HEALTH_STATES, b.window(), 0); n],
            circuit_open: 0,
        }));
        self
    }

    fn with_locality(mut self, cfg: &LoadBalancerConfig, b: &BuildCtx<'_>) -> LoadBalancer {
        self.locality = cfg
            .locality
            .as_ref()
            .map(|l| Box::new(Locality::new(l, &self.backends, b)));
        self
    }

    /// The locality layer chooses this request's tier; false if no backend is usable.
    fn choose_tier(&mut self, ctx: &Ctx<'_>) -> bool {
        let Some(l) = self.locality.as_mut() else {
            return true;
        };
        let usable = self.guards.as_ref().map(|g| &g.usable);
        let routes = self.pools.as_deref();
        let backends = &self.backends;
        l.choose(
            |i| {
                routes.is_none_or(|p| p.routable(i))
                    && usable.map_or_else(|| ctx.reachable(backends[i]), |u| u[i])
            },
            &self.outstanding,
        )
    }

    /// Work out which backends may be picked now (guarded load balancers only).
    fn fill_usable(&mut self, ctx: &Ctx<'_>) {
        let Some(g) = self.guards.as_mut() else {
            return;
        };
        let now = ctx.now();
        let mut changed = false;
        for i in 0..self.backends.len() {
            let mut ok = !g.skip_unreachable || ctx.reachable(self.backends[i]);
            ok &= g.health[i].healthy;
            if let Some(br) = g.breakers.get_mut(i) {
                if let Some(state) = br.poll(now) {
                    g.events
                        .record(now, format!("{}: breaker {}", self.names[i], state.name()));
                    changed = true;
                }
                ok &= br.allows();
            }
            g.usable[i] = ok;
        }
        if changed {
            self.update_rotation(now);
        }
    }

    /// Backends in rotation (healthy, breaker not open), for the time series.
    fn update_rotation(&mut self, now: SimTime) {
        if let Some(g) = self.guards.as_mut() {
            for i in 0..self.backends.len() {
                let open = g.breakers.get(i).map(Breaker::state) == Some(BreakerState::Open);
                let state = [g.health[i].healthy && !open, !g.health[i].healthy, true];
                g.health_states[i].set(now, state.iter().position(|&s| s).unwrap_or(2));
            }
            let n = g
                .health_states
                .iter()
                .filter(|s| s.state() == Some(0))
                .count();
            g.in_rotation.set(now, n as f64);
        }
    }

    /// A forwarded call to backend `b` ended; feed its breaker.
    fn record_outcome(&mut self, now: SimTime, b: u32, failed: bool) {
        let Some(g) = self.guards.as_mut() else {
            return;
        };
        let Some(br) = g.breakers.get_mut(b as usize) else {
            return;
        };
        if let Some(state) = br.record(now, failed) {
            g.events.record(
                now,
                format!("{}: breaker {}", self.names[b as usize], state.name()),
            );
            self.update_rotation(now);
        }
    }

    /// A health-check round: probe every backend.
    fn check_round(&mut self, ctx: &mut Ctx<'_>) {
        let Some(g) = self.guards.as_ref() else {
            return;
        };
        let Some(h) = g.health_check.clone() else {
            return;
        };
        let skip_unreachable = g.skip_unreachable;
        for i in 0..self.backends.len() {
            let to = self.backends[i];
            if skip_unreachable && !ctx.reachable(to) {
                // A refused connection fails the probe at once.
                self.probe_ended(ctx.now(), i as u32, false);
                continue;
            }
            let g = self.guards.as_mut().expect("checked above");
            let call = g.probes.open(ctx, |ctx, call| {
                (i as u32, ctx.set_timer(h.timeout, PROBE_BIT | call.0))
            });
            let probe = Request {
                call: CallId(PROBE_BIT | call.0),
                id: RequestId(0),
                op: Op::Read,
                key: 0,
                value: 0,
                work: self.rng.next_u64(),
                attempt: 0,
                issued_at: ctx.now(),
                ..Request::default()
            };
            ctx.send(to, Message::Request(probe));
        }
        ctx.set_timer(h.interval, TAG_CHECK_ROUND);
    }

    fn probe_ended(&mut self, now: SimTime, backend: u32, passed: bool) {
        let Some(g) = self.guards.as_mut() else {
            return;
        };
        let Some(h) = g.health_check.as_ref() else {
            return;
        };
        if let Some(healthy) = g.health[backend as usize].record(h, passed) {
            let what = if healthy { "healthy" } else { "unhealthy" };
            g.events
                .record(now, format!("{}: {what}", self.names[backend as usize]));
            self.update_rotation(now);
        }
    }

    /// A probe answer or timeout (call without its `PROBE_BIT`).
    fn probe_closed(&mut self, ctx: &mut Ctx<'_>, call: CallId, passed: bool) {
        let Some(g) = self.guards.as_mut() else {
            return;
        };
        let Some((backend, timer)) = g.probes.close(call) else {
            return;
        };
        ctx.cancel_timer(timer);
        self.probe_ended(ctx.now(), backend, passed);
    }

    /// Index of the chosen backend among those reachable now, if any; a retry avoids the
    /// backend that just failed (`avoid`) unless it is the only one left.
    #[inline]
    fn pick(&mut self, ctx: &Ctx<'_>, key: u64, avoid: Option<u32>) -> Option<u32> {
        if self.pools.is_some() {
            self.refresh_pools(ctx.now());
            self.pools.as_mut().expect("checked above").draw_versions();
        }
        let b = match self.pick_avoiding(ctx, key, avoid) {
            Some(b) => b,
            // The drawn version has no replica in rotation: the other one serves.
            None if self.pools.as_mut().is_some_and(|p| p.any_version()) => {
                self.pick_avoiding(ctx, key, avoid)?
            }
            None => return None,
        };
        if self.slow_start.is_none() {
            return Some(b);
        }
        self.watch_availability(ctx);
        let s = self.slow_start.as_mut().expect("checked above");
        if s.keep(b as usize, ctx.now()) {
            return Some(b);
        }
        // Turned away by slow start: the strategy's choice among the others, if any.
        Some(self.pick_among(ctx, key, Some(b)).unwrap_or(b))
    }

    fn pick_avoiding(&mut self, ctx: &Ctx<'_>, key: u64, avoid: Option<u32>) -> Option<u32> {
        if avoid.is_some()
            && let Some(b) = self.pick_among(ctx, key, avoid)
        {
            return Some(b);
        }
        self.pick_among(ctx, key, None)
    }

    /// Follow the controlled pools' phases and versions (slow start hears who joined).
    fn refresh_pools(&mut self, now: SimTime) {
        if let Some(p) = self.pools.as_mut() {
            let slow_start = &mut self.slow_start;
            p.refresh(|i| {
                if let Some(s) = slow_start.as_mut() {
                    s.joined(i, now);
                }
            });
        }
    }

    /// The strategy's choice among the backends reachable now, `avoid` left out.
    fn pick_among(&mut self, ctx: &Ctx<'_>, key: u64, avoid: Option<u32>) -> Option<u32> {
        let n = self.backends.len();
        self.fill_usable(ctx);
        self.refresh_pools(ctx.now());
        if !self.choose_tier(ctx) {
            return None;
        }
        let usable = self.guards.as_ref().map(|g| &g.usable);
        let local = self.locality.as_deref();
        let routes = self.pools.as_deref();
        let reachable = |i: usize| {
            avoid != Some(i as u32)
                && local.is_none_or(|l| l.allows(i))
                && routes.is_none_or(|p| p.routable(i))
                && match usable {
                    None => ctx.reachable(self.backends[i]),
                    Some(u) => u[i],
                }
        };
        match &self.strategy {
            Strategy::RoundRobin => {
                let i = (0..n)
                    .map(|k| (self.next + k) % n)
                    .find(|&i| reachable(i))?;
                self.next = (i + 1) % n;
                Some(i as u32)
            }
            Strategy::WeightedRoundRobin { weights } => {
                let mut total = 0i64;
                let mut best: Option<usize> = None;
                for i in (0..n).filter(|&i| reachable(i)) {
                    let w = weights.get(i).copied().unwrap_or(1) as i64;
                    self.wrr_current[i] += w;
                    total += w;
                    if best.is_none_or(|b| self.wrr_current[i] > self.wrr_current[b]) {
                        best = Some(i);
                    }
                }
                let b = best?;
                self.wrr_current[b] -= total;
                Some(b as u32)
            }
            Strategy::Random => {
                self.collect_reachable(ctx, avoid);
                let c = self.candidates.len() as u64;
                (c > 0).then(|| self.candidates[self.rng.below(c) as usize])
            }
            Strategy::LeastConnections => {
                let start = self.next;
                let i = (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&i| reachable(i))
                    .min_by_key(|&i| self.outstanding[i])?;
                self.next = (i + 1) % n;
                Some(i as u32)
            }
            Strategy::PowerOfTwoChoices => {
                self.collect_reachable(ctx, avoid);
                self.better_of_two(|lb, a, b| {
                    if lb.outstanding[b as usize] < lb.outstanding[a as usize] {
                        b
                    } else {
                        a
                    }
                })
            }
            Strategy::PeakEwma { .. } => {
                self.collect_reachable(ctx, avoid);
                self.better_of_two(LoadBalancer::cheaper)
            }
            Strategy::LeastResponseTime { .. } => {
                let start = self.next;
                let i = (0..n)
                    .map(|k| ((start + k) % n) as u32)
                    .filter(|&i| reachable(i as usize))
                    .reduce(|a, b| self.cheaper(a, b))?;
                self.next = (i as usize + 1) % n;
                Some(i)
            }
            Strategy::ConsistentHash { .. } => {
                let h = mix64(key ^ 0x5bd1_e995);
                let start = self.ring.partition_point(|&(p, _)| p < h);
                let len = self.ring.len();
                (0..len)
                    .map(|k| self.ring[(start + k) % len].1)
                    .find(|&i| reachable(i as usize))
            }
        }
    }

    /// The backends a request may go to, in `candidates`. Without health checks or breakers
    /// the list only changes with the topology, so it is kept until a fault starts or ends
    /// (a large pool would otherwise be scanned for every request).
    #[inline]
    fn collect_reachable(&mut self, ctx: &Ctx<'_>, avoid: Option<u32>) {
        let epoch = ctx.topology_epoch();
        let cacheable = self.guards.is_none() && self.locality.is_none() && self.pools.is_none();
        if cacheable && self.candidates_epoch == Some(epoch) && avoid.is_none() {
            return;
        }
        self.fill_candidates(ctx, epoch);
        if avoid.is_some() {
            // A list without one backend is not the list to keep for the next request.
            self.candidates.retain(|&c| Some(c) != avoid);
            self.candidates_epoch = None;
        }
    }

    /// Recompute `candidates` (the topology changed, or the LB has guards).
    #[inline(never)]
    fn fill_candidates(&mut self, ctx: &Ctx<'_>, epoch: u64) {
        self.candidates_epoch =
            (self.guards.is_none() && self.locality.is_none() && self.pools.is_none())
                .then_some(epoch);
        self.candidates.clear();
        let usable = self.guards.as_ref().map(|g| &g.usable);
        let local = self.locality.as_deref();
        let routes = self.pools.as_deref();
        for (i, &b) in self.backends.iter().enumerate() {
            if local.is_none_or(|l| l.allows(i))
                && routes.is_none_or(|p| p.routable(i))
                && usable.map_or_else(|| ctx.reachable(b), |u| u[i])
            {
                self.candidates.push(i as u32);
            }
        }
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_>, from: NodeId, req: Request) {
        let Some((from, req)) = self.terminator.admit(ctx, from, req, HANDSHAKE_TAG) else {
            return; // back when its handshake is done
        };
        if let Some(b) = self.retries.as_mut().and_then(|r| r.budget.as_mut()) {
            b.deposit();
        }
        self.forward(ctx, from, req, 0, None, SimDuration::ZERO);
    }

    /// Send try `tries + 1` of the client's request `req` to a backend other than `avoid`
    /// when there is one; answer the client at once if there is none.
    fn forward(
        &mut self,
        ctx: &mut Ctx<'_>,
        client: NodeId,
        req: Request,
        tries: u32,
        avoid: Option<u32>,
        pause: SimDuration,
    ) {
        let Some(b) = self.pick(ctx, req.key, avoid) else {
            let breaker_open = self
                .guards
                .as_ref()
                .is_some_and(|g| g.breakers.iter().any(|b| b.state() != BreakerState::Closed));
            let cause = if breaker_open {
                self.guards.as_mut().expect("breaker_open").circuit_open += 1;
                Cause::CircuitOpen
            } else {
                self.unreachable += 1;
                Cause::Unreachable
            };
            answer(ctx, client, &req, Err(cause));
            return;
        };
        let to = self.backends[b as usize];
        // A replica its controller restarted is a new process: connections to it are new.
        let routes = self.pools.as_deref();
        let lease = match self.conns.as_mut().map(|p| {
            let life = routes.map_or(0, |r| r.lives[b as usize]);
            p.acquire(ctx, to, 0, life)
        }) {
            None => None,
            Some(Ok(lease)) => Some(lease),
            Some(Err(e)) => {
                answer(ctx, client, &req, Err(e.cause()));
                return;
            }
        };
        let timeout = self.timeout;
        let call = self.pending.open(ctx, |ctx, call| Pending {
            client,
            req,
            backend: b,
            timer: ctx.set_timer(timeout, call.0),
            tries: tries + 1,
            pause,
            sent_at: ctx.now(),
            conn: lease.map(|l| l.conn),
        });
        self.outstanding[b as usize] += 1;
        self.forwarded[b as usize] += 1;
        if let Some(p) = &self.pools {
            p.count(b as usize, 1, false, ctx.now());
        }
        if let Some(l) = self.locality.as_mut() {
            l.forwarded(ctx.now(), b as usize);
        }
        if let Some(br) = self
            .guards
            .as_mut()
            .and_then(|g| g.breakers.get_mut(b as usize))
        {
            br.on_send();
        }
        // Each try is an execution of its own; the first keeps the client's tag.
        let attempt = req.copy(u64::from(tries));
        let (delay, handshake) = lease.map_or((SimDuration::ZERO, Handshake::NONE), |l| {
            (l.delay, l.handshake)
        });
        let req = Request {
            call,
            attempt,
            handshake,
            ..req
        };
        if delay > SimDuration::ZERO {
            ctx.send_after(delay, to, Message::Request(req));
        } else {
            ctx.send(to, Message::Request(req));
        }
    }

    /// Close the pending call, whose backend failed or not.
    fn close(&mut self, ctx: &mut Ctx<'_>, call: CallId, failed: bool) -> Option<Pending> {
        let p = self.pending.close(call)?;
        // After a timeout this timer has already fired, and cancelling it does nothing.
        ctx.cancel_timer(p.timer);
        if let (Some(conn), Some(pools)) = (p.conn, self.conns.as_mut()) {
            pools.release(ctx.now(), self.backends[p.backend as usize], 0, conn);
        }
        self.outstanding[p.backend as usize] -= 1;
        if let Some(routes) = &self.pools {
            routes.count(p.backend as usize, 1, true, ctx.now());
            routes.outcome(
                p.backend as usize,
                ctx.now(),
                failed,
                ctx.now().since(p.sent_at),
            );
        }
        if let Some(r) = self.rtt.as_mut() {
            r.observe(p.backend as usize, ctx.now(), ctx.now().since(p.sent_at));
        }
        self.record_outcome(ctx.now(), p.backend, failed);
        Some(p)
    }

    /// The try `p` ended with `result`: relay it to the client, or retry a failure.
    fn try_ended(&mut self, ctx: &mut Ctx<'_>, p: Pending, result: Result<Reply, Cause>) {
        if result.is_err() && self.retry(ctx, &p) {
            return;
        }
        answer(ctx, p.client, &p.req, result);
    }

    /// Retry the failed try `p` if the policy and budget allow; `false` if not.
    fn retry(&mut self, ctx: &mut Ctx<'_>, p: &Pending) -> bool {
        let Some(r) = self.retries.as_mut() else {
            return false;
        };
        if p.tries >= r.cfg.max_attempts {
            return false;
        }
        if !r.budget.as_mut().is_none_or(RetryBudget::withdraw) {
            r.denied += 1;
            return false;
        }
        r.retries += 1;
        let pause = r.cfg.backoff.delay(p.tries, p.pause, &mut r.rng);
        let now = ctx.now();
        ctx.trace_mark(p.req.id, Mark::Retry);
        if pause > SimDuration::ZERO {
            ctx.trace_span(p.req.id, SpanKind::Backoff, now, now.after(pause));
        }
        if pause == SimDuration::ZERO {
            self.forward(ctx, p.client, p.req, p.tries, Some(p.backend), pause);
        } else {
            r.waiting.open(ctx, |ctx, slot| {
                ctx.set_timer(pause, RETRY_TAG | slot.0);
                Pending { pause, ..*p }
            });
        }
        true
    }
}

/// Answer the client's request `req` with `result`.
fn answer(ctx: &mut Ctx<'_>, client: NodeId, req: &Request, result: Result<Reply, Cause>) {
    let resp = Response {
        call: req.call,
        id: req.id,
        result,
    };
    ctx.send(client, Message::Response(resp));
}

/// Ring points for each backend, sorted; ties broken by backend index so the ring is the same
/// on every machine.
fn hash_ring(names: &[String], vnodes: u32) -> Vec<(u64, u32)> {
    let mut ring: Vec<(u64, u32)> = names
        .iter()
        .enumerate()
        .flat_map(|(i, name)| {
            (0..vnodes).map(move |v| (stable_hash(format!("{name}#{v}").as_bytes()), i as u32))
        })
        .collect();
    ring.sort_unstable();
    ring
}

impl Node<Builtin> for LoadBalancer {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(h) = self.guards.as_ref().and_then(|g| g.health_check.as_ref()) {
            ctx.set_timer(h.interval, TAG_CHECK_ROUND);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        match msg {
            Message::Request(req) => self.on_request(ctx, from, req),
            Message::Response(resp) if resp.call.0 & PROBE_BIT != 0 => {
                self.probe_closed(ctx, CallId(resp.call.0 & !PROBE_BIT), resp.result.is_ok())
            }
            Message::Response(resp) => {
                if let Some(p) = self.close(ctx, resp.call, resp.result.is_err()) {
                    self.try_ended(ctx, p, resp.result);
                }
            }
            Message::User(_)
            | Message::Txn(_)
            | Message::Replica(_)
            | Message::Stream(_)
            | Message::Purge(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        if tag == TAG_CHECK_ROUND {
            self.check_round(ctx);
            return;
        }
        if tag & RETRY_TAG == RETRY_TAG {
            let p = self
                .retries
                .as_mut()
                .and_then(|r| r.waiting.close(CallId(tag & !RETRY_TAG)));
            if let Some(p) = p {
                self.forward(ctx, p.client, p.req, p.tries, Some(p.backend), p.pause);
            }
            return;
        }
        if tag & PROBE_BIT != 0 {
            self.probe_closed(ctx, CallId(tag & !PROBE_BIT), false);
            return;
        }
        if tag & HANDSHAKE_TAG != 0 {
            if let Some((from, req)) = self.terminator.resume(ctx.now(), tag & !HANDSHAKE_TAG) {
                if let Some(b) = self.retries.as_mut().and_then(|r| r.budget.as_mut()) {
                    b.deposit();
                }
                self.forward(ctx, from, req, 0, None, SimDuration::ZERO);
            }
            return;
        }
        if let Some(p) = self.close(ctx, CallId(tag), true) {
            self.timeouts += 1;
            ctx.trace_mark(p.req.id, Mark::Timeout);
            self.try_ended(ctx, p, Err(Cause::Timeout));
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        if let Some(g) = self.guards.as_mut() {
            // Health and breaker states are volatile: a restarted LB trusts every backend.
            g.probes.clear();
            g.health.iter_mut().for_each(|h| *h = Health::default());
            let fresh: Vec<Breaker> = g.breakers.iter().map(Breaker::reset).collect();
            g.breakers = fresh;
            g.events
                .record(now, "load balancer crashed: health and breakers reset");
        }
        self.update_rotation(now);
        self.pending.clear();
        if let Some(r) = self.retries.as_mut() {
            r.waiting.clear();
        }
        if let Some(routes) = &self.pools {
            // Its calls are forgotten: a draining replica no longer waits for them.
            for (i, &n) in self.outstanding.iter().enumerate() {
                routes.count(i, n, true, now);
            }
        }
        self.outstanding.iter_mut().for_each(|o| *o = 0);
        self.wrr_current.iter_mut().for_each(|w| *w = 0);
        if let Some(r) = self.rtt.as_mut() {
            r.clear();
        }
        self.terminator.crashed(now);
        if let Some(p) = self.conns.as_mut() {
            p.crashed(now);
        }
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let mut counters: BTreeMap<String, f64> = self
            .names
            .iter()
            .zip(&self.forwarded)
            .map(|(name, &n)| (format!("forwarded_to.{name}"), n as f64))
            .collect();
        counters.insert("no_backend_reachable".to_string(), self.unreachable as f64);
        counters.insert("backend_timeouts".to_string(), self.timeouts as f64);
        if let Some(r) = &self.retries {
            counters.insert("retries".to_string(), r.retries as f64);
            counters.insert("retries_denied_by_budget".to_string(), r.denied as f64);
        }
        if let Some(r) = &self.rtt {
            for (i, name) in self.names.iter().enumerate() {
                counters.insert(format!("rtt_estimate_ms.{name}"), r.estimate(i) * 1e3);
            }
        }
        if let Some(s) = &self.slow_start {
            counters.insert("slow_starts".to_string(), s.started as f64);
            counters.insert("slow_start_deferred".to_string(), s.deferred as f64);
        }
        let mut stats = NodeStats::default();
        if let Some(l) = self.locality.as_mut() {
            stats.series.push(l.report(now, &mut counters));
        }
        if let Some(p) = self.conns.as_mut() {
            stats.series.extend(p.report(now, &mut counters));
        }
        if self.terminator.handshakes() > 0 {
            stats
                .series
                .push(self.terminator.report(now, &mut counters));
        }
        if let Some(g) = self.guards.as_mut() {
            counters.insert("circuit_open".to_string(), g.circuit_open as f64);
            counters.insert(
                "state_changes_dropped".to_string(),
                g.events.dropped() as f64,
            );
            stats.events = g.events.take();
            stats.series.push(g.in_rotation.finish(
                "backends_in_rotation",
                "Backends in rotation (healthy, breaker not open)",
                "backends",
                now,
            ));
            for (s, name) in g.health_states.iter_mut().zip(&self.names) {
                let mut r = s.finish("backend_health", "Backend health", now);
                r.label = Some(name.clone());
                stats.series.push(r);
            }
        }
        stats.counters = counters;
        Some(stats)
    }
}
