//! `Server`: a pool of identical replicas, each with workers and a FIFO queue.
//!
//! ```text
//!             ┌──────────── app-0 ────────────┐
//!  request ──▶│ queue (≤ queue_limit) ─▶ workers│──▶ response (Ok)
//!             │ full? ──────────────────────────│──▶ response (Err Rejected)
//!             └─────────────────────────────────┘
//! ```
//! A request that finds a free worker starts service at once; otherwise it waits in FIFO
//! order. Service time is drawn from `service_time` with the request's own `work` bits and
//! its attempt tag (or the `work` bits alone with `per: Request`), salted by the pool's name,
//! so the same execution costs the same on every replica and in every variant while a retry
//! or hedge draws afresh; it is multiplied by the slowdown factor in force when service starts. A crash loses the queue and the requests in
//! service (their callers time out); nothing is durable.
//!
//! A server may also call other services while it handles a request (`calls`), after its own
//! work and holding its worker meanwhile (a thread per request):
//! ```text
//!  worker: service_time ─▶ stage 1: call every service in `to` at once, wait for `wait_for`
//!                          of them (default all) ─▶ stage 2 ... ─▶ respond Ok
//!          a stage can no longer get `wait_for` answers ─▶ respond Err(cause of that failure)
//! ```
//! A sequence app → cache → db is two stages of one service each; a fan-out A → {B, C, D} is
//! one stage of three. Calls still pending when their stage is decided are abandoned (their
//! late answers are ignored). With `connections`, the calls go out on each replica's
//! kept-alive pools (see `connections.rs`): a call that opens one pays its handshakes.
//!
//! A replica of a pool whose new release crash-loops (a `Deploy`'s `version.crash_loop`) crashes
//! when its controller says so: the controller marks the crash in the pool at its exact time,
//! and the replica learns of it at its next event (a request, an answer or one of its timers),
//! before handling that event. It then drops what it had at the crash (the queue, the requests
//! in service, their timers and calls), as a kernel crash would, and ignores requests that
//! reach it while it waits to restart: their callers time out. Nothing it sends after the crash
//! instant belongs to the crashed process, so it is as if it had crashed then.

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::ops::pool::{Phase, Pool, pool_name};
use crate::components::traffic::connections::{self, ConnectionConfig, HandshakeCpu};
use crate::components::traffic::downstream::{CallStage, Downstream, validate_pools};
use crate::components::traffic::priority::{ClassQueues, Scheduling};
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Op, Reply, Request, RequestId, Response};
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::size::{SizeDist, SizeSampler};
use crate::contract::trace::SpanKind;
use crate::contract::validate::{Path, Validator};
use crate::results::ServerResult;
use crate::sim::dist::Dist;
use crate::sim::rng::{RandomSource, WorkRng, stable_hash};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// A pool of identical servers. `replicas: N` declares `name-0 .. name-(N-1)`; a client or load
/// balancer that names the pool reaches all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Server", deny_unknown_fields)]
pub struct ServerConfig {
    /// Number of identical replicas (count). Default 1.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Requests each replica serves in parallel (count, at most 10000; replicas × workers at
    /// most 1000000). Default 1.
    #[serde(default = "one")]
    pub workers: u32,
    /// Requests that may wait for a worker (count); when full, new requests are rejected.
    /// Default `None`: unbounded, still subject to `limits.max_memory` and
    /// `limits.max_pending_events`.
    #[serde(default)]
    pub queue_limit: Option<u32>,
    /// Time one request occupies a worker (a distribution of durations).
    pub service_time: Dist,
    /// What one `service_time` draw belongs to. `Execution`: every execution draws afresh,
    /// so a retry, a hedge or a redelivery of the same request costs a new draw (time spent
    /// on CPU, locks, garbage collection or a cold cache varies from run to run). `Request`:
    /// the cost is in the request itself (its size, the work it asks for), so every execution
    /// of it, on any replica, costs the same and a retry that timed out will time out again.
    /// Either way the same execution costs the same in every variant. Default `Execution`.
    #[serde(default, skip_serializing_if = "Per::is_execution")]
    pub per: Per,
    /// Calls to other services made after the local work, stage by stage:
    /// `[(to: ["cache"]), (to: ["db"], timeout: "200ms")]` (a sequence) or
    /// `[(to: ["b", "c", "d"], wait_for: Some(2))]` (a fan-out waiting for the first two).
    /// Default `[]`: no calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallStage>,
    /// What a request's worker does while its calls are out. `Hold`: it waits for them (a
    /// thread per request), so a slow dependency ties up workers and every request queues
    /// behind it. `Release`: it goes on to the next request and the answer is sent when the
    /// calls end (an event loop, async I/O), so only `max_in_flight` bounds the calls out.
    /// Default `Hold`.
    #[serde(default, skip_serializing_if = "WhileCalling::is_hold")]
    pub while_calling: WhileCalling,
    /// Connection pools: most calls in flight from one replica to each named service at once,
    /// `{"db": 20}` (count); a call beyond it waits, in order, for a connection, within its
    /// stage's timeout. The calls waiting are a time series. Default `{}`: no limit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub max_in_flight: BTreeMap<String, u32>,
    /// Load shedding: a request that has waited longer than this in the queue is dropped
    /// with cause `shed` when its turn comes, instead of being served late (duration).
    /// Default `None`: never shed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shed_after: Option<SimDuration>,
    /// Idempotency keys: remember the request ids of the last this many writes applied, and
    /// apply a write that comes again (a retry or hedge of one already applied) only once,
    /// counting it as `duplicate_writes` (count). Default `None`: every write is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_keys: Option<u32>,
    /// Bytes each successful reply puts on the wire (a distribution of sizes:
    /// `Constant("64KB")`, `Pareto(scale: "1KB", shape: 1.5)`); it costs time only on links
    /// with a `bandwidth`. Default `Constant("0B")`.
    #[serde(default, skip_serializing_if = "SizeDist::is_zero")]
    pub response_size: SizeDist,
    /// How the next waiting request is picked: `Fifo`, `Priority` (by request class,
    /// non-preemptive; when full, a request pushes out the newest of a lower class) or
    /// `PreemptiveResume`. Default `Fifo`.
    #[serde(default, skip_serializing_if = "Scheduling::is_fifo")]
    pub scheduling: Scheduling,
    /// Quotas: the most workers of each replica a request class may hold at once, by class
    /// name: `{"batch": 2}` (count). A class at its quota waits even when workers are free.
    /// Default `{}`: no quotas.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_workers: BTreeMap<String, u32>,
    /// How this server connects to the services in `calls` (see `ConnectionConfig`, as for a
    /// client): `Some((protocol: Tls13, mutual: true))` for mTLS between services. Each
    /// replica keeps its own kept-alive pools, one per replica it calls; a call that opens a
    /// connection goes out after the handshake's round trips and this server's handshake CPU
    /// (`cpu`, spent on the calling request's held worker with `Hold`, off the workers with
    /// `Release`), and the callee's worker does its side (`handshake_cpu`) before serving it.
    /// A callee's restart drops the connections to it; every call to it then handshakes
    /// again. Default `None`: calls cost only their trips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionConfig>,
    /// CPU a worker spends on its side of a TLS handshake, before serving the request that
    /// opened the connection (callers with `connections` open them):
    /// `(full: "1ms", resumed: "100us", mutual: "200us")`, `mutual` added to `full` when the
    /// caller presents a certificate. Default those values (an RSA-2048 certificate).
    #[serde(
        default = "HandshakeCpu::server",
        skip_serializing_if = "HandshakeCpu::is_server_default"
    )]
    pub handshake_cpu: HandshakeCpu,
}

fn one() -> u32 {
    1
}

/// What a worker does while its request's calls are out (see `ServerConfig::while_calling`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WhileCalling {
    /// The worker waits for the calls (thread per request).
    #[default]
    Hold,
    /// The worker serves other requests meanwhile (event loop).
    Release,
}

impl WhileCalling {
    fn is_hold(&self) -> bool {
        *self == WhileCalling::Hold
    }
}

/// What a service-time draw belongs to (see `ServerConfig::per`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Per {
    /// Each execution of a request draws its own service time (a retry or hedge draws afresh).
    #[default]
    Execution,
    /// A request's service time is intrinsic: every execution of it draws the same.
    Request,
}

impl Per {
    fn is_execution(&self) -> bool {
        *self == Per::Execution
    }
}

crate::settable!(ServerConfig {
    replicas,
    workers,
    queue_limit,
    service_time,
    per,
    calls,
    while_calling,
    max_in_flight,
    shed_after,
    idempotency_keys,
    response_size,
    scheduling,
    class_workers,
    connections,
    handshake_cpu
});

/// Keeps reply-size draws apart from service-time draws of the same request.
const REPLY_SIZE_SALT: u64 = 0x5157_e5e1_2e5a_17ed;

/// Keeps a new version's error draws apart from the other draws of the same execution.
const VERSION_ERROR_SALT: u64 = 0x7e45_10e2_a11b_ad05;

/// Most workers per replica, and per pool (replicas × workers).
const MAX_WORKERS: u32 = 10_000;
const MAX_POOL_WORKERS: u64 = 1_000_000;

impl ServerConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.replicas == 0 {
            v.error(
                &at.field("replicas"),
                "a server pool needs at least one replica",
                "expected a count >= 1",
            );
        }
        if self.workers == 0 {
            v.error(
                &at.field("workers"),
                "a server needs at least one worker",
                "expected a count >= 1",
            );
        }
        // Every worker has its slot from the start: bound what construction allocates.
        let pool = u64::from(self.workers) * u64::from(self.replicas);
        if self.workers > MAX_WORKERS || (self.workers > 1 && pool > MAX_POOL_WORKERS) {
            v.error(
                &at.field("workers"),
                format!("{} workers × {} replicas", self.workers, self.replicas),
                "expected at most 10000 workers per replica and 1000000 in the pool",
            );
        }
        v.check_dist(&at.field("service_time"), &self.service_time);
        self.response_size.validate(v, &at.field("response_size"));
        for (i, stage) in self.calls.iter().enumerate() {
            stage.validate(v, &at.field("calls").index(i));
        }
        self.validate_connections(v, &at.field("connections"));
        validate_pools(
            &self.max_in_flight,
            &self.calls,
            v,
            &at.field("max_in_flight"),
        );
        if self.shed_after == Some(SimDuration::ZERO) {
            v.error(
                &at.field("shed_after"),
                "a zero queue time sheds every request that waits",
                "expected a positive duration",
            );
        }
        if self.idempotency_keys == Some(0) {
            v.error(
                &at.field("idempotency_keys"),
                "remembering no keys deduplicates nothing",
                "expected a count >= 1",
            );
        }
        if !self.scheduling.is_fifo() && v.classes().len() < 2 {
            v.error(
                &at.field("scheduling"),
                "priority scheduling with fewer than two request classes",
                "expected the scenario to declare `classes: [...]` (highest priority first)",
            );
        }
        for (name, quota) in &self.class_workers {
            let at = at.field("class_workers").key(name);
            v.resolve_class(&at, name);
            if *quota == 0 {
                v.error(&at, "a class with no workers", "expected a count >= 1");
            }
        }
    }
}

impl ServerConfig {
    /// A server's connections: valid, for a server that calls out, shared by its requests.
    fn validate_connections(&self, v: &mut Validator, at: &Path) {
        let Some(c) = &self.connections else {
            return;
        };
        connections::validate_option(&self.connections, v, at);
        if self.calls.is_empty() {
            v.error(
                at,
                "connections for a server that calls no one",
                "expected `calls` to name the services these connections go to",
            );
        }
        if c.per_user {
            v.error(
                &at.field("per_user"),
                "per-user connections on a server",
                "expected `per_user` only on a client's connections (a server's requests share its pools)",
            );
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Job {
    from: NodeId,
    queued_at: SimTime,
    /// The request as received (its `call` is the caller's).
    req: Request,
}

/// One replica of a `Server` pool.
pub struct Server {
    cfg: ServerConfig,
    /// Its replica name, for the error when its unbounded queue outgrows the limit.
    name: String,
    salt: u64,
    queue: VecDeque<Job>,
    in_service: Vec<Option<Job>>,
    free_workers: Vec<u32>,
    busy: u32,
    served: u64,
    rejected: u64,
    accounting: Accounting,
    calling: Option<Box<Calling>>,
    shed: u64,
    failed: u64,
    idempotency: Option<Box<Idempotency>>,
    writes_applied: u64,
    /// Reply sizes (draws nothing for the default, zero).
    response_size: SizeSampler,
    /// Per-class queues, with priority scheduling or quotas (`None`: the FIFO `queue`).
    classes: Option<Box<ClassQueues<Job, TimerId>>>,
    /// Per request class (when the scenario declares classes): served, rejected, shed.
    by_class: Vec<[u64; 3]>,
    class_names: Vec<String>,
    /// Its place in a pool a controller resizes (an autoscaler): where it reports its load
    /// and learns its warm-up capacity.
    seat: Option<Box<Seat>>,
    /// TLS handshakes served (full and resumed) and the CPU they took.
    handshakes: u64,
    handshake_cpu: SimDuration,
    /// In a pool whose new release crash-loops: the crashes it has handled and the timers of
    /// its workers, to cancel at a crash.
    crash: Option<Box<CrashWatch>>,
}

/// A replica's place in a controlled pool.
struct Seat {
    pool: Arc<Mutex<Pool>>,
    replica: usize,
}

/// What a replica of a crash-looping pool keeps to drop its work at a crash.
struct CrashWatch {
    /// Crashes of this replica handled so far.
    seen: u32,
    /// Per worker, the timer of its request in service.
    timers: Vec<Option<TimerId>>,
}

impl Seat {
    /// The controlled pool of the replica `b` builds, if a controller created one.
    fn find(b: &BuildCtx<'_>) -> Option<Box<Seat>> {
        let pool = b.existing_observer::<Pool>(&pool_name(b.group()))?;
        let replica = b.resolve(b.group()).iter().position(|&id| id == b.me())?;
        Some(Box::new(Seat { pool, replica }))
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        crate::components::ops::pool::lock(&self.pool)
    }

    /// What to watch for crashes, if the pool's new release crash-loops.
    fn crash_watch(&self, workers: u32) -> Option<Box<CrashWatch>> {
        self.lock().crash_loops().then(|| {
            Box::new(CrashWatch {
                seen: 0,
                timers: vec![None; workers as usize],
            })
        })
    }
}

const SERVED: usize = 0;
const REJECTED: usize = 1;
const SHED: usize = 2;

/// What only a server with `calls` keeps: the calls, and the requests waiting on them.
///
/// A request calling out has a slot: with `Hold`, its worker's index; with `Release`, a place
/// in `parked` (slot `workers + i`), its worker already serving the next request.
struct Calling {
    downstream: Downstream,
    release: bool,
    parked: Vec<Option<Job>>,
    free_parked: Vec<u32>,
    /// Requests waiting on their calls now, and as a series.
    waiting: u32,
    waiting_series: Series,
}

/// The request ids of the last writes applied, to apply a repeated write once.
struct Idempotency {
    cap: usize,
    order: VecDeque<RequestId>,
    applied: BTreeMap<RequestId, ()>,
    duplicates: u64,
}

impl Idempotency {
    /// Is this write new? If so, remember it (forgetting the oldest beyond the cap).
    fn first_time(&mut self, id: RequestId) -> bool {
        if self.applied.contains_key(&id) {
            self.duplicates += 1;
            return false;
        }
        if self.order.len() == self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.applied.remove(&old);
        }
        self.order.push_back(id);
        self.applied.insert(id, ());
        true
    }
}

/// Time integrals of busy workers and queue length over the measured interval.
#[derive(Clone, Debug)]
struct Accounting {
    from: SimTime,
    to: SimTime,
    last: SimTime,
    busy_area: f64,
    queue_area: f64,
}

impl Accounting {
    /// Add the area since the last change, clipped to [from, to].
    fn advance(&mut self, now: SimTime, busy: u32, queued: usize) {
        let start = self.last.max(self.from);
        let end = now.min(self.to);
        if end > start {
            let dt = end.since(start).0 as f64;
            self.busy_area += dt * busy as f64;
            self.queue_area += dt * queued as f64;
        }
        self.last = now;
    }
}

impl Server {
    /// A replica built from its pool's configuration.
    pub fn new(cfg: &ServerConfig, b: &BuildCtx<'_>) -> Server {
        let workers = cfg.workers as usize;
        Server {
            cfg: cfg.clone(),
            name: b.name().to_string(),
            // Salted by pool name, not replica name: every replica draws the same work.
            salt: stable_hash(b.group().as_bytes()),
            queue: VecDeque::new(),
            in_service: vec![None; workers],
            free_workers: (0..cfg.workers).rev().collect(),
            busy: 0,
            served: 0,
            rejected: 0,
            calling: (!cfg.calls.is_empty()).then(|| {
                Box::new(Calling {
                    downstream: Downstream::new(
                        &cfg.calls,
                        &cfg.max_in_flight,
                        cfg.connections.as_ref(),
                        b,
                    ),
                    release: cfg.while_calling == WhileCalling::Release,
                    parked: Vec::new(),
                    free_parked: Vec::new(),
                    waiting: 0,
                    waiting_series: Series::new(SeriesKind::Level, b.window()),
                })
            }),
            shed: 0,
            failed: 0,
            idempotency: cfg.idempotency_keys.map(|cap| {
                Box::new(Idempotency {
                    cap: cap as usize,
                    order: VecDeque::new(),
                    applied: BTreeMap::new(),
                    duplicates: 0,
                })
            }),
            writes_applied: 0,
            response_size: SizeSampler::new(&cfg.response_size),
            seat: None,
            classes: (!cfg.scheduling.is_fifo() || !cfg.class_workers.is_empty()).then(|| {
                let quota = b
                    .classes()
                    .iter()
                    .map(|c| cfg.class_workers.get(c).copied().unwrap_or(u32::MAX))
                    .collect();
                Box::new(ClassQueues::new(
                    cfg.scheduling,
                    b.classes().len(),
                    cfg.workers,
                    quota,
                ))
            }),
            by_class: vec![[0; 3]; b.classes().len()],
            class_names: b.classes().to_vec(),
            handshakes: 0,
            handshake_cpu: SimDuration::ZERO,
            accounting: Accounting {
                from: b.measure_from(),
                to: b.arrivals_end(),
                last: SimTime::ZERO,
                busy_area: 0.0,
                queue_area: 0.0,
            },
            crash: None,
        }
        .seated(b)
    }

    /// Take its place in a controlled pool, if a controller created one.
    fn seated(mut self, b: &BuildCtx<'_>) -> Server {
        self.seat = Seat::find(b);
        self.crash = self
            .seat
            .as_ref()
            .and_then(|s| s.crash_watch(self.cfg.workers));
        self
    }

    /// Has the controller crashed this replica since its last event? Then drop what it had
    /// at the crash. Whether it is down now (crashed, not restarted yet).
    fn crashed(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let (Some(watch), Some(seat)) = (self.crash.as_deref_mut(), self.seat.as_deref()) else {
            return false;
        };
        let p = seat.lock();
        let (crashes, at) = p.crashes(seat.replica);
        let down = p.phase(seat.replica) == Phase::BackOff;
        drop(p);
        if crashes != watch.seen {
            watch.seen = crashes;
            for t in watch.timers.iter_mut().filter_map(Option::take) {
                ctx.cancel_timer(t);
            }
            self.on_crash(at);
        }
        down
    }

    fn account(&mut self, now: SimTime) {
        let waiting = self.queue.len() + self.classes.as_ref().map_or(0, |q| q.len());
        self.accounting.advance(now, self.busy, waiting);
    }

    /// Count one request of `class` as served, rejected or shed (with classes only).
    #[inline]
    fn count(&mut self, class: u8, what: usize) {
        if let Some(c) = self.by_class.get_mut(class as usize) {
            c[what] += 1;
        }
    }

    /// Tell a controlled pool the load from `now` on (after a change of it).
    fn report_load(&self, now: SimTime) {
        if let Some(s) = &self.seat {
            let busy = f64::from(self.busy) / f64::from(self.cfg.workers);
            s.lock().load(s.replica, now, busy, self.queue.len() as f64);
        }
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_>, from: NodeId, req: Request) {
        self.accept(ctx, from, req);
        self.report_load(ctx.now());
    }

    /// Serve, queue or reject a request.
    fn accept(&mut self, ctx: &mut Ctx<'_>, from: NodeId, req: Request) {
        self.account(ctx.now());
        let job = Job {
            from,
            queued_at: ctx.now(),
            req,
        };
        if self.classes.is_some() {
            self.on_request_by_class(ctx, job);
            return;
        }
        if !self.free_workers.is_empty() {
            self.start(ctx, job);
            return;
        }
        let full = self
            .cfg
            .queue_limit
            .is_some_and(|limit| self.queue.len() >= limit as usize);
        if full {
            self.reject(ctx, job);
            return;
        }
        let before = self.queue.capacity();
        self.queue.push_back(job);
        let grown = (self.queue.capacity() - before) * std::mem::size_of::<Job>();
        self.check_queue_bound(ctx, self.queue.len(), grown);
    }

    fn reject(&mut self, ctx: &mut Ctx<'_>, job: Job) {
        self.rejected += 1;
        self.count(job.req.class, REJECTED);
        let resp = Response {
            call: job.req.call,
            id: job.req.id,
            result: Err(Cause::Rejected),
        };
        ctx.send(job.from, Message::Response(resp));
    }

    /// Charge the memory budget for `grown` bytes of new queue room, and stop the run when
    /// an unbounded queue of `waiting` requests outgrew the event bound.
    fn check_queue_bound(&mut self, ctx: &mut Ctx<'_>, waiting: usize, grown: usize) {
        if grown > 0 {
            let fix = "set `queue_limit` on it, or lower the load";
            ctx.charge_memory(grown, "queued requests", waiting, fix);
        }
        let bound = ctx.limits().max_pending_events;
        if waiting > bound {
            ctx.exceed_limit(
                "limits.max_pending_events",
                bound as u64,
                format!(
                    "{}'s unbounded queue grew past it: requests arrive faster than it serves \
                     them (`archsim validate` names each station with ρ ≥ 1); add capacity or \
                     set `queue_limit`",
                    self.name
                ),
            );
        }
    }

    /// A request arrives at a server with per-class queues (see `priority.rs`).
    fn on_request_by_class(&mut self, ctx: &mut Ctx<'_>, job: Job) {
        let class = job.req.class;
        let q = self.classes.as_deref_mut().expect("called with classes");
        if !self.free_workers.is_empty() && q.may_start(class) {
            self.start(ctx, job);
            return;
        }
        if let Some(p) = q.preempt_for(class, ctx.now()) {
            ctx.cancel_timer(p.timer);
            q.freed(p.worker);
            if let Some(victim) = self.in_service[p.worker as usize].take() {
                ctx.trace_preempted(victim.req.id);
                q.requeue_front(victim.req.class, victim, p.remaining);
            }
            self.busy -= 1;
            self.free_workers.push(p.worker);
            self.start(ctx, job);
            return;
        }
        let full = self.cfg.queue_limit.is_some_and(|l| q.len() >= l as usize);
        if full {
            match q.push_out_for(class) {
                Some(out) => self.answer_shed(ctx, out),
                None => {
                    self.reject(ctx, job);
                    return;
                }
            }
        }
        let q = self.classes.as_deref_mut().expect("called with classes");
        let before = q.bytes();
        q.push(class, job);
        let (waiting, grown) = (q.len(), q.bytes() - before);
        self.check_queue_bound(ctx, waiting, grown);
    }

    fn answer_shed(&mut self, ctx: &mut Ctx<'_>, job: Job) {
        self.shed += 1;
        self.count(job.req.class, SHED);
        let resp = Response {
            call: job.req.call,
            id: job.req.id,
            result: Err(Cause::Shed),
        };
        ctx.send(job.from, Message::Response(resp));
    }

    fn take_worker(&mut self, job: Job) -> u32 {
        let worker = self
            .free_workers
            .pop()
            .expect("start is called only with a free worker");
        self.in_service[worker as usize] = Some(job);
        self.busy += 1;
        worker
    }

    fn start(&mut self, ctx: &mut Ctx<'_>, job: Job) {
        let worker = self.take_worker(job);
        let req = &job.req;
        let mut bits = match self.cfg.per {
            Per::Execution => WorkRng::execution(req.work, req.attempt, self.salt),
            Per::Request => WorkRng::new(req.work, self.salt),
        };
        let mut base = self.cfg.service_time.sample(&mut bits);
        if req.handshake.tls() {
            // The worker does its side of the connection's handshake first.
            let tls = self.cfg.handshake_cpu.cost(req.handshake);
            self.handshakes += 1;
            self.handshake_cpu = SimDuration(self.handshake_cpu.0 + tls.0);
            base = SimDuration(base.0 + tls.0);
        }
        let slowdown = match &self.seat {
            // A replica warming up has a fraction of its capacity: its work takes longer; a
            // new version may be slower.
            Some(s) => {
                let p = s.lock();
                let factor = p.behaviour(s.replica).map_or(1.0, |b| b.latency_factor);
                ctx.slowdown() * factor / p.capacity(s.replica, ctx.now())
            }
            None => ctx.slowdown(),
        };
        let service = base.scaled(slowdown);
        let timer = ctx.set_timer(service, worker as u64);
        if let Some(w) = self.crash.as_deref_mut() {
            w.timers[worker as usize] = Some(timer);
        }
        let now = ctx.now();
        if job.queued_at < now {
            ctx.trace_span(job.req.id, SpanKind::Queue, job.queued_at, now);
        }
        ctx.trace_span(job.req.id, SpanKind::Service, now, now.after(service));
        if let Some(q) = self.classes.as_deref_mut() {
            q.started(worker, job.req.class, timer, now.after(service));
        }
    }

    /// Start a preempted request again with the work it has left (no new draw).
    fn resume(&mut self, ctx: &mut Ctx<'_>, job: Job, left: SimDuration) {
        ctx.trace_resumed(job.req.id, left);
        let worker = self.take_worker(job);
        let timer = ctx.set_timer(left, worker as u64);
        if let Some(w) = self.crash.as_deref_mut() {
            w.timers[worker as usize] = Some(timer);
        }
        if let Some(q) = self.classes.as_deref_mut() {
            q.started(worker, job.req.class, timer, ctx.now().after(left));
        }
    }

    /// The local work of `worker`'s request is done: call downstream or respond.
    fn complete(&mut self, ctx: &mut Ctx<'_>, worker: u32) {
        if let Some(q) = self.classes.as_deref_mut() {
            q.local_work_done(worker);
        }
        let Some(job) = self.in_service[worker as usize] else {
            return;
        };
        let workers = self.cfg.workers;
        let Some(c) = self
            .calling
            .as_mut()
            .filter(|c| c.downstream.calls_for(&job.req))
        else {
            self.respond(ctx, worker, Ok(()));
            return;
        };
        let slot = if c.release {
            // The worker moves on; the request waits for its calls in a slot of its own.
            let i = c.free_parked.pop().unwrap_or_else(|| {
                c.parked.push(None);
                (c.parked.len() - 1) as u32
            });
            c.parked[i as usize] = Some(job);
            workers + i
        } else {
            worker
        };
        c.waiting += 1;
        c.waiting_series.set(ctx.now(), f64::from(c.waiting));
        if slot != worker {
            self.free_worker(ctx, worker);
        }
        let c = self.calling.as_mut().expect("checked above");
        c.downstream.begin(ctx, slot, job.req);
        self.answer_decided(ctx);
    }

    /// Answer every request whose calls the last event decided.
    fn answer_decided(&mut self, ctx: &mut Ctx<'_>) {
        while let Some((slot, result)) = self
            .calling
            .as_mut()
            .and_then(|c| c.downstream.next_decided(ctx))
        {
            self.calls_done(ctx, slot, result);
        }
    }

    /// The calls of the request in `slot` ended with `result`: answer it.
    fn calls_done(&mut self, ctx: &mut Ctx<'_>, slot: u32, result: Result<(), Cause>) {
        let workers = self.cfg.workers;
        let c = self
            .calling
            .as_mut()
            .expect("only servers with calls have slots");
        c.waiting -= 1;
        c.waiting_series.set(ctx.now(), f64::from(c.waiting));
        if slot < workers {
            self.respond(ctx, slot, result);
            return;
        }
        let i = slot - workers;
        let Some(job) = c.parked[i as usize].take() else {
            return;
        };
        c.free_parked.push(i);
        self.answer(ctx, job, result);
    }

    /// The size of the reply to `req`: drawn from the request's own work bits, so every
    /// replica and variant sends the same size for the same request (common random numbers).
    #[inline]
    fn reply_size(&self, req: &Request) -> u32 {
        let salt = self.salt ^ REPLY_SIZE_SALT;
        self.response_size.sample(&mut WorkRng::new(req.work, salt))
    }

    /// Free `worker` and answer its request with `result`.
    fn respond(&mut self, ctx: &mut Ctx<'_>, worker: u32, result: Result<(), Cause>) {
        let Some(job) = self.in_service[worker as usize] else {
            return;
        };
        self.free_worker(ctx, worker);
        self.answer(ctx, job, result);
    }

    /// `worker` is done with its request: take the next one.
    fn free_worker(&mut self, ctx: &mut Ctx<'_>, worker: u32) {
        self.account(ctx.now());
        self.in_service[worker as usize] = None;
        self.busy -= 1;
        self.free_workers.push(worker);
        if let Some(q) = self.classes.as_deref_mut() {
            q.freed(worker);
        }
        self.start_next(ctx);
        self.report_load(ctx.now());
    }

    /// Count `job`'s outcome, apply its write, and send the answer.
    fn answer(&mut self, ctx: &mut Ctx<'_>, job: Job, mut result: Result<(), Cause>) {
        if let Some(s) = &self.seat {
            let mut p = s.lock();
            p.latency(ctx.now().since(job.queued_at));
            // A new version fails its share of executions, drawn from the execution's own
            // bits: the same executions fail whichever replica or strategy serves them.
            if let Some(b) = p.behaviour(s.replica)
                && result.is_ok()
            {
                let salt = self.salt ^ VERSION_ERROR_SALT;
                let mut bits = WorkRng::execution(job.req.work, job.req.attempt, salt);
                if bits.uniform() < b.error_rate {
                    result = Err(Cause::ServerError);
                }
            }
        }
        self.count(job.req.class, SERVED);
        if ctx.now() >= self.accounting.from {
            match result {
                Ok(()) => self.served += 1,
                Err(_) => self.failed += 1,
            }
        }
        if result.is_ok() && job.req.op == Op::Write {
            let apply = self
                .idempotency
                .as_mut()
                .is_none_or(|i| i.first_time(job.req.id));
            self.writes_applied += apply as u64;
        }
        let resp = Response {
            call: job.req.call,
            id: job.req.id,
            result: result.map(|()| Reply {
                size: self.reply_size(&job.req),
                ..Reply::default()
            }),
        };
        ctx.send(job.from, Message::Response(resp));
    }

    /// Start the next queued request, shedding those that waited too long.
    fn start_next(&mut self, ctx: &mut Ctx<'_>) {
        if self.classes.is_some() {
            self.start_next_by_class(ctx);
            return;
        }
        while let Some(next) = self.queue.pop_front() {
            if self.waited_too_long(ctx, &next) {
                self.answer_shed(ctx, next);
                continue;
            }
            self.start(ctx, next);
            return;
        }
    }

    fn waited_too_long(&self, ctx: &Ctx<'_>, job: &Job) -> bool {
        self.cfg
            .shed_after
            .is_some_and(|limit| ctx.now().since(job.queued_at) > limit)
    }

    /// The per-class version of `start_next`: a preempted request resumes where it stopped.
    fn start_next_by_class(&mut self, ctx: &mut Ctx<'_>) {
        while let Some((next, left)) = self.classes.as_deref_mut().and_then(|q| q.pop()) {
            match left {
                Some(left) => self.resume(ctx, next, left),
                None if self.waited_too_long(ctx, &next) => {
                    self.answer_shed(ctx, next);
                    continue;
                }
                None => self.start(ctx, next),
            }
            return;
        }
    }

    /// A downstream call's answer (`Some`) or timer (`None`); answer the request it decided.
    fn downstream_event(
        &mut self,
        ctx: &mut Ctx<'_>,
        call: CallId,
        answer: Option<Result<(), Cause>>,
    ) {
        let Some(c) = self.calling.as_mut() else {
            return;
        };
        match answer {
            Some(result) => c.downstream.answered(ctx, call, result),
            None => c.downstream.timer(ctx, call),
        }
        self.answer_decided(ctx);
    }
}

impl Node<Builtin> for Server {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        if self.crash.is_some() && self.crashed(ctx) {
            // The process is down: what reaches it is lost.
            return;
        }
        match msg {
            Message::Request(req) => self.on_request(ctx, from, req),
            Message::Response(resp) => {
                self.downstream_event(ctx, resp.call, Some(resp.result.map(|_| ())))
            }
            Message::User(_)
            | Message::Txn(_)
            | Message::Replica(_)
            | Message::Stream(_)
            | Message::Purge(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        if self.crash.is_some() && self.crashed(ctx) {
            return;
        }
        match Downstream::call_of_timer(tag) {
            Some(call) => self.downstream_event(ctx, call, None),
            None => self.complete(ctx, tag as u32),
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        self.account(now);
        self.queue.clear();
        self.in_service.iter_mut().for_each(|j| *j = None);
        self.free_workers = (0..self.cfg.workers).rev().collect();
        self.busy = 0;
        self.report_load(now);
        if let Some(q) = self.classes.as_deref_mut() {
            q.clear();
        }
        if let Some(c) = self.calling.as_mut() {
            c.downstream.clear(now);
            c.parked.clear();
            c.free_parked.clear();
            c.waiting = 0;
            c.waiting_series.set(now, 0.0);
        }
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        self.account(now);
        let a = &self.accounting;
        let measured = a.to.since(a.from).0.max(1) as f64;
        // Counters only for the options in use, so plain servers report as before.
        let mut counters = BTreeMap::new();
        let mut series = Vec::new();
        if let Some(c) = self.calling.as_mut() {
            let n = c.downstream.counts;
            counters.insert("failed_downstream".to_string(), self.failed as f64);
            counters.insert("downstream_calls".to_string(), n.sent as f64);
            counters.insert("downstream_call_errors".to_string(), n.errors as f64);
            if self.cfg.calls.iter().any(|s| s.retry.is_some()) {
                counters.insert("downstream_retries".to_string(), n.retries as f64);
                counters.insert(
                    "downstream_retries_denied_by_budget".to_string(),
                    n.retries_denied as f64,
                );
            }
            series.push(c.waiting_series.finish(
                "waiting_on_calls",
                "Requests waiting on their downstream calls",
                "requests",
                now,
            ));
            series.extend(c.downstream.report(now, &mut counters));
        }
        if self.cfg.shed_after.is_some() {
            counters.insert("shed".to_string(), self.shed as f64);
        }
        if let Some(i) = &self.idempotency {
            counters.insert("duplicate_writes".to_string(), i.duplicates as f64);
        }
        if self.idempotency.is_some() {
            counters.insert("writes_applied".to_string(), self.writes_applied as f64);
        }
        for (class, [served, rejected, shed]) in self.class_names.iter().zip(&self.by_class) {
            counters.insert(format!("served.{class}"), *served as f64);
            counters.insert(format!("rejected.{class}"), *rejected as f64);
            counters.insert(format!("shed.{class}"), *shed as f64);
        }
        if self.handshakes > 0 {
            counters.insert("tls_handshakes".to_string(), self.handshakes as f64);
            counters.insert(
                "tls_handshake_cpu_s".to_string(),
                self.handshake_cpu.as_secs_f64(),
            );
        }
        Some(NodeStats {
            server: Some(ServerResult {
                name: String::new(),
                utilisation: a.busy_area / (measured * self.cfg.workers as f64),
                mean_queue_len: a.queue_area / measured,
                served: self.served,
                rejected: self.rejected,
            }),
            counters,
            series,
            ..NodeStats::default()
        })
    }
}
