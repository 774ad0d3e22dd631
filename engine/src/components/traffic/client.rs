//! `Client`: the users. Issues requests open-loop (at a rate) or closed-loop (N users who
//! think between requests), times them out, and records every request's outcome.
//!
//! ```text
//!  arrival timer ─▶ issue ─▶ target reachable? ─no─▶ ends: Unreachable
//!                              │ yes
//!                              ▼
//!                     send + timeout timer ─▶ response ─▶ ends: Ok or the callee's cause
//!                                       └──▶ timer fires ─▶ ends: Timeout
//! ```
//! Every issued request ends exactly once; a late answer to a timed-out request is ignored.
//!
//! With `retry`, a failed attempt (error answer, timeout, nothing reachable) is tried again
//! after a backoff, up to `max_attempts`, within the retry budget; the request ends with the
//! last attempt's cause. With `hedge`, a second copy goes out if the first has not been
//! answered after `after` (at once with `after: "0s"`), and the first answer wins. All
//! attempts carry the same request id; each carries its own attempt tag, so each draws its
//! own service time wherever it is served.
//! Arrivals, keys, per-request work bits, read/write choices and replica choices come from
//! separate random streams of the client, so variants that share a seed see the same requests
//! at the same times even when they change one of the others.

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::resilience::policy::{HedgeConfig, RetryBudget, RetryConfig};
use crate::components::traffic::calls::{CallTable, pick_reachable};
use crate::components::traffic::connections::{self, ConnectionConfig, Pools};
use crate::components::traffic::dns::{DnsConfig, Resolver};
use crate::components::traffic::keys::{KeySampler, Keys};
use crate::components::traffic::workload::{Shape, Trace, TraceCursor};
use crate::contract::build::{BuildCtx, Observer};
use crate::contract::call::{CallId, Cause, Op, Request, RequestId};
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::size::{SizeDist, SizeSampler};
use crate::contract::trace::{Mark, SpanKind};
use crate::contract::validate::{Path, Validator};
use crate::sim::dist::Dist;
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How requests arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Arrival {
    /// Open loop, exponential gaps: `Poisson(rate: 8000.0)` (requests/s).
    Poisson {
        /// Mean arrival rate (requests/s).
        rate: f64,
    },
    /// Open loop, evenly spaced: `Constant(rate: 100.0)` (requests/s).
    Constant {
        /// Arrival rate (requests/s).
        rate: f64,
    },
    /// Open loop in bursts: Poisson at `burst_rate` during the first `length` of every
    /// `every`, at `rate` the rest of the time:
    /// `Bursts(rate: 500.0, burst_rate: 5000.0, every: "2s", length: "200ms")`.
    Bursts {
        /// Mean arrival rate between bursts (requests/s, may be 0).
        rate: f64,
        /// Mean arrival rate during a burst (requests/s).
        burst_rate: f64,
        /// Time from the start of one burst to the start of the next (duration).
        every: SimDuration,
        /// How long each burst lasts (duration).
        length: SimDuration,
    },
    /// Closed loop: `Closed(users: 50, think_time: Exponential(mean: "100ms"))`. Each user
    /// waits for its answer (or timeout), thinks, then sends the next request.
    Closed {
        /// Number of concurrent users (count, at most 1000000).
        users: u32,
        /// Pause between an answer and the user's next request (distribution of durations).
        think_time: Dist,
    },
    /// Open loop, Poisson at a rate that changes over time, `rate × shape(t)`:
    /// `Shaped(rate: 1000.0, shape: Step(at: "60s", factor: 10.0))`. Shapes: `Step`, `Ramp`,
    /// `Diurnal`, `FlashCrowd`, and `Product`/`Sum` of shapes (see WORKLOAD SHAPES).
    Shaped {
        /// Base arrival rate (requests/s).
        rate: f64,
        /// How the rate changes over time.
        shape: Shape,
    },
    /// Replay a CSV trace: one request per row, at its time, with its key, operation and
    /// class: `Trace(file: "traces/example.csv")`. The file has a header naming the columns
    /// `time` (seconds, or a duration such as "12ms"), `key` (a number, or text that is
    /// hashed), `op` (read or write) and optionally `class`; it is read when the scenario is
    /// validated, and a bad row stops the run before it starts.
    Trace {
        /// The CSV file, relative to the scenario file.
        file: String,
        /// Multiply every time by this (0.5 replays twice as fast). Default 1.
        #[serde(default = "one_f64")]
        time_scale: f64,
        /// Shift times so the first row comes at time 0 (for absolute timestamps). Default
        /// false: times are offsets from the start of the run.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rebase: bool,
        /// Play the trace again every this long (duration, after `time_scale`; longer than
        /// the last row's time). Default `None`: play it once.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repeat_every: Option<SimDuration>,
        /// The rows, read when the scenario is validated.
        #[serde(skip)]
        #[schemars(skip)]
        loaded: Option<Arc<Trace>>,
    },
}

fn one_f64() -> f64 {
    1.0
}

/// Users that send requests to a node or group and measure what comes back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Client", deny_unknown_fields)]
pub struct ClientConfig {
    /// Node or group the requests go to; with several nodes, each request picks a reachable
    /// one at random.
    pub target: String,
    /// How requests arrive (open or closed loop).
    pub arrival: Arrival,
    /// Give up on a request after this long (duration). Default "1s".
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// Which key each request touches. Default `Uniform(count: 1000000)`.
    #[serde(default)]
    pub keys: Keys,
    /// Fraction of requests that are writes (0..1). Default 0.
    #[serde(default)]
    pub write_fraction: f64,
    /// Stop after issuing this many requests (count). Default `None`: issue until `duration`.
    #[serde(default)]
    pub max_requests: Option<u64>,
    /// Retry failed attempts (`timeout` is then per attempt):
    /// `Some((max_attempts: 3, backoff: FullJitter(base: "5ms", cap: "200ms"), budget: Some(0.1)))`.
    /// Default `None`: one attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// Hedged requests: `Some((after: "20ms"))`; `after: "0s"` sends both copies at once.
    /// Default `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeConfig>,
    /// Bytes each request puts on the wire (a distribution of sizes: `Constant("4KB")`,
    /// `LogNormal(median: "2KB", p99: "64KB")`); it costs time only on links with a
    /// `bandwidth`. Default `Constant("0B")`.
    #[serde(default, skip_serializing_if = "SizeDist::is_zero")]
    pub request_size: SizeDist,
    /// Shares of the traffic by request class (names from the scenario's `classes`), as
    /// relative weights: `{"premium": 0.2, "standard": 0.8}`. Default `{}`: every request in
    /// the first class (a trace's `class` column, where filled, takes precedence).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<String, f64>,
    /// Talk over connections that cost handshakes to open and are kept alive between
    /// requests: `Some((protocol: Tls13, resumption: Ticket, max_connections: 100))` (see
    /// `ConnectionConfig`). Default `None`: no connection model (every request costs only
    /// its own trip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionConfig>,
    /// When `target` is a `Gslb`: how the client caches its answers,
    /// `(caches: 100, cache_for: None, synchronised: false)` (see DNS AND GSLB). Default: 100
    /// caches expiring at spread times, each holding an answer for the GSLB's TTL.
    #[serde(default, skip_serializing_if = "DnsConfig::is_default")]
    pub dns: DnsConfig,
}

fn default_timeout() -> SimDuration {
    SimDuration::from_secs(1)
}

crate::settable!(ClientConfig {
    target,
    arrival,
    timeout,
    keys,
    write_fraction,
    max_requests,
    retry,
    hedge,
    request_size,
    classes,
    connections,
    dns
});

/// The most users one closed loop may have: each holds a pending event and its state.
const MAX_USERS: u32 = 1_000_000;

/// A problem unless `rate` is positive and at most one per nanosecond.
fn check_rate(v: &mut Validator, at: &Path, rate: f64, unit: &str) {
    v.check_positive(at, rate, unit);
    if rate > MAX_RATE_PER_S {
        // Time has nanosecond resolution: faster arrivals would all land at once.
        v.error(
            at,
            format!("{rate} requests/s is faster than one per nanosecond"),
            "expected a rate of at most 1e9 requests/s",
        );
    }
}

impl Arrival {
    /// Check the rates, burst shape and think time; `at` is the `arrival` field's path and
    /// `unit` what one arrival is (`requests/s`, `transactions/s`).
    pub fn validate(&self, v: &mut Validator, at: &Path, unit: &str) {
        match self {
            Arrival::Poisson { rate } | Arrival::Constant { rate } => {
                check_rate(v, &at.field("rate"), *rate, unit);
            }
            Arrival::Bursts {
                rate,
                burst_rate,
                every,
                length,
            } => {
                if !(*rate >= 0.0 && *rate <= MAX_RATE_PER_S) {
                    v.error(
                        &at.field("rate"),
                        format!("rate {rate}"),
                        "expected a rate from 0 to 1e9 requests/s",
                    );
                }
                if !(*burst_rate > 0.0 && *burst_rate <= MAX_RATE_PER_S) {
                    v.error(
                        &at.field("burst_rate"),
                        format!("rate {burst_rate}"),
                        "expected a rate above 0 and at most 1e9 requests/s",
                    );
                }
                if *length == SimDuration::ZERO || length > every {
                    v.error(
                        &at.field("length"),
                        "a burst must last a positive time within its period",
                        "expected 0 < length <= every",
                    );
                }
            }
            Arrival::Shaped { rate, shape } => {
                check_rate(v, &at.field("rate"), *rate, unit);
                for (below, message, expected) in shape.problems() {
                    let mut p = at.field("shape");
                    for seg in below {
                        p = match seg.strip_prefix('[').and_then(|i| i.strip_suffix(']')) {
                            Some(i) => p.index(0).index(i.parse().unwrap_or(0)),
                            None => p.field(&seg),
                        };
                    }
                    v.error(&p, message, expected);
                }
            }
            Arrival::Trace {
                time_scale,
                repeat_every,
                loaded,
                ..
            } => {
                if !(time_scale.is_finite() && *time_scale > 0.0) {
                    v.error(
                        &at.field("time_scale"),
                        format!("time scale {time_scale}"),
                        "expected a positive number (0.5 replays twice as fast)",
                    );
                }
                let last = loaded.as_ref().and_then(|t| t.rows.last()).map(|r| r.at.0);
                if let (Some(p), Some(last)) = (repeat_every, last)
                    && p.0 <= last
                {
                    v.error(
                        &at.field("repeat_every"),
                        format!("the trace repeats every {p}, before its last row"),
                        format!(
                            "expected a period longer than the last row's time ({})",
                            SimDuration(last)
                        ),
                    );
                }
            }
            Arrival::Closed { users, think_time } => {
                if *users == 0 {
                    v.error(&at.field("users"), "no users", "expected a count >= 1");
                } else if *users > MAX_USERS {
                    // Every user holds a pending event from the start, before any budget
                    // check could stop the run (a billion users asked for 40 GB).
                    v.error(
                        &at.field("users"),
                        format!("{users} users"),
                        "expected at most 1000000 users in one closed loop",
                    );
                }
                v.check_dist(&at.field("think_time"), think_time);
                if think_time.mean_secs() <= 0.0 {
                    // Zero think time against an unreachable target would loop at one instant.
                    v.error(
                        &at.field("think_time"),
                        "users that never think send without pause",
                        "expected a think time with a positive mean",
                    );
                }
            }
        }
    }

    /// The gap from `now` to the next arrival, drawn from `rng` (for `Closed`, a think time).
    /// Arrivals at or after `stop_at` do not happen, so a bursty gap stops at it.
    pub fn gap(&self, rng: &mut SimRng, now: SimTime, stop_at: SimTime) -> SimDuration {
        match *self {
            Arrival::Poisson { rate } => {
                SimDuration::from_secs_f64(crate::sim::dist::standard_exponential(rng) / rate)
            }
            Arrival::Constant { rate } => SimDuration::from_secs_f64(1.0 / rate),
            Arrival::Closed { ref think_time, .. } => think_time.sample(rng),
            Arrival::Shaped { rate, ref shape } => shape.gap(rate, rng, now, stop_at),
            // A trace's times come from its rows (the client keeps a cursor), never from here.
            Arrival::Trace { .. } => stop_at.since(now),
            Arrival::Bursts {
                rate,
                burst_rate,
                every,
                length,
            } => {
                // A Poisson process whose rate changes at burst boundaries: draw at the current
                // rate, and if the draw crosses a boundary, start again from the boundary
                // (exact, since the exponential distribution is memoryless).
                let mut t = now;
                loop {
                    let into = t.0 % every.0;
                    let (r, boundary) = if into < length.0 {
                        (burst_rate, SimTime(t.0 - into + length.0))
                    } else {
                        (rate, SimTime(t.0 - into + every.0))
                    };
                    if r > 0.0 {
                        let gap = SimDuration::from_secs_f64(
                            crate::sim::dist::standard_exponential(rng) / r,
                        );
                        if t.after(gap) < boundary {
                            return t.after(gap).since(now);
                        }
                    }
                    if boundary >= stop_at {
                        return boundary.since(now);
                    }
                    t = boundary;
                }
            }
        }
    }
}

impl ClientConfig {
    /// The longest a request can take: every attempt timing out after its longest backoff,
    /// plus the hedge delay (the run drains this long after `duration`).
    pub fn request_deadline(&self) -> SimDuration {
        let (attempts, pause) = self.retry.as_ref().map_or((1, SimDuration::ZERO), |r| {
            (r.max_attempts.max(1) as u64, r.backoff.max_delay())
        });
        let hedge = self.hedge.as_ref().map_or(SimDuration::ZERO, |h| h.after);
        SimDuration(
            self.timeout
                .0
                .saturating_mul(attempts)
                .saturating_add(pause.0.saturating_mul(attempts - 1))
                .saturating_add(hedge.0),
        )
    }
}

impl ClientConfig {
    /// Check values the types cannot express, and that the target exists.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        v.resolve(&at.field("target"), &self.target);
        self.arrival.validate(v, &at.field("arrival"), "requests/s");
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout fails every request",
                "expected a positive duration",
            );
        }
        if let Some(r) = &self.retry {
            r.validate(v, &at.field("retry"));
        }
        for (field, expected) in self.keys.problems() {
            v.error(
                &at.field("keys").field(field),
                "invalid key distribution",
                expected,
            );
        }
        if !(0.0..=1.0).contains(&self.write_fraction) {
            v.error(
                &at.field("write_fraction"),
                format!("write fraction {} is not a fraction", self.write_fraction),
                "expected a number from 0.0 to 1.0",
            );
        }
        self.request_size.validate(v, &at.field("request_size"));
        connections::validate_option(&self.connections, v, &at.field("connections"));
        self.dns.validate(v, &at.field("dns"));
        if matches!(self.arrival, Arrival::Trace { .. }) && self.write_fraction > 0.0 {
            v.error(
                &at.field("write_fraction"),
                "a trace gives each request's operation",
                "expected no `write_fraction` with a `Trace` arrival (its `op` column decides)",
            );
        }
        for (name, share) in &self.classes {
            let at = at.field("classes").key(name);
            v.resolve_class(&at, name);
            if !(share.is_finite() && *share >= 0.0) {
                v.error(&at, format!("share {share}"), "expected a weight >= 0");
            }
        }
        if !self.classes.is_empty() && self.classes.values().all(|w| *w <= 0.0) {
            v.error(
                &at.field("classes"),
                "every class has a zero share",
                "expected at least one positive weight",
            );
        }
    }
}

/// How a client gives each request its class: one class, or a draw by shares.
#[derive(Clone, Debug)]
enum ClassPick {
    One(u8),
    /// Cumulative shares by class index, ending at 1, and the stream they draw from.
    Shares(Box<(Vec<f64>, SimRng)>),
}

impl ClassPick {
    fn new(cfg: &ClientConfig, b: &BuildCtx<'_>) -> ClassPick {
        let classes = b.classes();
        let weights: Vec<f64> = classes
            .iter()
            .map(|c| cfg.classes.get(c).copied().unwrap_or(0.0))
            .collect();
        let total: f64 = weights.iter().sum();
        let positive: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0.0).collect();
        match positive[..] {
            [] => ClassPick::One(0),
            [only] => ClassPick::One(only as u8),
            _ => {
                let mut acc = 0.0;
                let cumulative = weights
                    .iter()
                    .map(|w| {
                        acc += w / total;
                        acc
                    })
                    .collect();
                ClassPick::Shares(Box::new((cumulative, b.rng("classes"))))
            }
        }
    }

    fn draw(&mut self) -> u8 {
        match self {
            ClassPick::One(c) => *c,
            ClassPick::Shares(shares) => {
                let (cumulative, rng) = &mut **shares;
                let u = rng.uniform();
                let last = cumulative.len() - 1;
                cumulative.iter().position(|&c| u < c).unwrap_or(last) as u8
            }
        }
    }
}

/// Simulated time counts nanoseconds, so no faster arrival rate can be represented.
const MAX_RATE_PER_S: f64 = 1e9;

/// Timer tags: the top two bits say what the timer is for.
const TAG_KIND_SHIFT: u32 = 62;
const TAG_ARRIVAL: u64 = 1 << TAG_KIND_SHIFT;
const TAG_THINK: u64 = 2 << TAG_KIND_SHIFT;
/// Retry and hedge timers: kind 3, and bit 61 tells them apart; the rest is the request slot.
const TAG_AGAIN: u64 = 3 << TAG_KIND_SHIFT;
const TAG_HEDGE_BIT: u64 = 1 << 61;
const TAG_MASK: u64 = (1 << TAG_KIND_SHIFT) - 1;

/// One attempt in flight (a call).
#[derive(Clone, Copy, Debug)]
struct Pending {
    request: CallId,
    timer: TimerId,
    /// The connection the call went out on, with its user (with a connection model).
    conn: Option<(NodeId, u32, u32)>,
}

/// One request not yet ended: its attempts in flight, or the backoff before the next.
#[derive(Clone, Copy, Debug)]
struct Open {
    issued_at: SimTime,
    user: u32,
    req: Request,
    attempt: u32,
    /// Attempts in flight: at most two (the first and its hedge).
    calls: [Option<CallId>; 2],
    last_target: Option<NodeId>,
    previous_pause: SimDuration,
    hedge_timer: Option<TimerId>,
    hedged: bool,
    hedge_call: Option<CallId>,
    /// Copies sent so far (first try, retries, hedges): the next copy's attempt tag.
    copies: u32,
}

impl Open {
    fn in_flight(&self) -> usize {
        self.calls.iter().flatten().count()
    }
}

/// One client node.
pub struct Client {
    cfg: ClientConfig,
    targets: Vec<NodeId>,
    candidates: Vec<NodeId>,
    keys: KeySampler,
    arrivals: SimRng,
    key_rng: SimRng,
    work_rng: SimRng,
    /// Request sizes (draws nothing for the default, zero).
    request_size: SizeSampler,
    size_rng: SimRng,
    op_rng: SimRng,
    route_rng: SimRng,
    stop_at: SimTime,
    id_base: u64,
    issued: u64,
    pending: CallTable<Pending>,
    open: CallTable<Open>,
    late: u64,
    lost_in_crash: u64,
    budget: Option<RetryBudget>,
    retry_rng: SimRng,
    retries: u64,
    retries_denied: u64,
    hedges: u64,
    hedge_wins: u64,
    attempts: Series,
    roster: Arc<Mutex<Roster>>,
    own: Option<Box<OwnOutcomes>>,
    measure_from: SimTime,
    window: SimDuration,
    class_pick: ClassPick,
    /// With a `Trace` arrival: the next row to replay.
    trace: Option<Box<TraceCursor>>,
    /// Connection pools per target (with `connections`).
    pools: Option<Box<Pools>>,
    /// Resolver caches, when the target is a GSLB.
    dns: Option<Box<Resolver>>,
}

/// The run's clients, counted while they are built: with two or more, each reports its own
/// availability (two paths of one service, say, or two tenants), which the run-wide numbers
/// mix.
#[derive(Debug, Default)]
pub struct Roster(u32);

impl Observer for Roster {
    fn finish(&mut self, _now: SimTime) -> NodeStats {
        NodeStats::default()
    }
}

/// An observer's name no node can have (node names are letters, digits, `-` and `_`).
const ROSTER: &str = "!clients";

/// A client's own outcomes, kept when the run has several clients.
struct OwnOutcomes {
    /// Requests issued after the warm-up that succeeded, and that failed.
    ok: u64,
    failed: u64,
    /// Per window, by completion time: the fraction that succeeded.
    availability: Series,
}

impl Client {
    /// A client built from its configuration.
    pub fn new(cfg: &ClientConfig, b: &BuildCtx<'_>) -> Client {
        Client {
            cfg: cfg.clone(),
            targets: b.resolve(&cfg.target),
            candidates: Vec::new(),
            keys: cfg.keys.sampler(),
            arrivals: b.rng("arrivals"),
            key_rng: b.rng("keys"),
            work_rng: b.rng("work"),
            request_size: SizeSampler::new(&cfg.request_size),
            size_rng: b.rng("request_size"),
            op_rng: b.rng("ops"),
            route_rng: b.rng("route"),
            stop_at: b.arrivals_end(),
            id_base: (b.me().0 as u64) << 40,
            issued: 0,
            pending: CallTable::default(),
            open: CallTable::default(),
            late: 0,
            lost_in_crash: 0,
            budget: cfg.retry.as_ref().and_then(RetryBudget::new),
            retry_rng: b.rng("retry"),
            retries: 0,
            retries_denied: 0,
            hedges: 0,
            hedge_wins: 0,
            attempts: Series::new(SeriesKind::Rate, b.window()),
            roster: {
                let roster = b.observer(ROSTER, Roster::default);
                roster.lock().expect("one thread per run").0 += 1;
                roster
            },
            own: None,
            measure_from: b.measure_from(),
            window: b.window(),
            class_pick: ClassPick::new(cfg, b),
            trace: match &cfg.arrival {
                Arrival::Trace {
                    loaded: Some(trace),
                    repeat_every,
                    ..
                } => Some(Box::new(TraceCursor::new(Arc::clone(trace), *repeat_every))),
                _ => None,
            },
            pools: cfg
                .connections
                .as_ref()
                .map(|c| Box::new(Pools::new(c, b.window()))),
            dns: Resolver::new(&cfg.target, &cfg.dns, b),
        }
    }

    fn may_issue(&self, now: SimTime) -> bool {
        now < self.stop_at && self.cfg.max_requests.is_none_or(|m| self.issued < m)
    }

    fn schedule_arrival(&mut self, ctx: &mut Ctx<'_>, tag: u64) {
        if let Some(cursor) = self.trace.as_mut() {
            // Rows due while the client was down (crashed) are never issued.
            while cursor.next_at().is_some_and(|at| at < ctx.now()) {
                cursor.take();
            }
            let stop_at = self.stop_at;
            let left = self.cfg.max_requests.is_none_or(|m| self.issued < m);
            if let Some(at) = cursor.next_at().filter(|&at| at < stop_at && left) {
                ctx.set_timer(at.since(ctx.now()), tag);
            }
            return;
        }
        let gap = self
            .cfg
            .arrival
            .gap(&mut self.arrivals, ctx.now(), self.stop_at);
        if self.may_issue(ctx.now().after(gap)) {
            ctx.set_timer(gap, tag);
        }
    }

    /// A reachable target at random, other than `avoid` if there is another.
    fn pick_target(&mut self, ctx: &Ctx<'_>, avoid: Option<NodeId>) -> Option<NodeId> {
        if let [only] = self.targets[..] {
            return ctx.reachable(only).then_some(only);
        }
        self.candidates.clear();
        self.candidates
            .extend(self.targets.iter().copied().filter(|&t| ctx.reachable(t)));
        if let Some(a) = avoid
            && self.candidates.len() > 1
        {
            self.candidates.retain(|&t| t != a);
        }
        match self.candidates.len() {
            0 => None,
            n => Some(self.candidates[self.route_rng.below(n as u64) as usize]),
        }
    }

    /// The node this attempt of `request` goes to: through the GSLB's cached answer (its
    /// entry's nodes) or among the targets; `None` if none is reachable.
    fn route(&mut self, ctx: &Ctx<'_>, request: CallId, avoid: Option<NodeId>) -> Option<NodeId> {
        let Some(dns) = self.dns.as_mut() else {
            return self.pick_target(ctx, avoid);
        };
        let o = self.open.get_mut(request)?;
        // A closed-loop user keeps its own cache; open-loop requests take them in turn.
        let key = match self.cfg.arrival {
            Arrival::Closed { .. } => u64::from(o.user),
            _ => o.req.id.0 & ((1 << 40) - 1),
        };
        let nodes = dns.entry_nodes(ctx.now(), key);
        let picked = pick_reachable(ctx, nodes, &mut self.candidates, &mut self.route_rng);
        if picked.is_none() {
            // The failure is charged to the entry the cache pointed at.
            o.last_target = nodes.first().copied();
        }
        picked
    }

    fn issue(&mut self, ctx: &mut Ctx<'_>, user: u32) {
        self.issued += 1;
        ctx.request_started();
        let now = ctx.now();
        let (key, write, class) = match self.trace.as_mut().and_then(|t| t.take()) {
            Some(row) => {
                let class = row.class.unwrap_or_else(|| self.class_pick.draw());
                (row.key, row.write, class)
            }
            None => {
                let key = self.keys.sample_at(&mut self.key_rng, now);
                let write = self.cfg.write_fraction > 0.0
                    && self.op_rng.uniform() < self.cfg.write_fraction;
                (key, write, self.class_pick.draw())
            }
        };
        let work = self.work_rng.next_u64();
        if let Some(b) = self.budget.as_mut() {
            b.deposit();
        }
        let req = Request {
            call: CallId::default(),
            id: RequestId(self.id_base | self.issued),
            op: if write { Op::Write } else { Op::Read },
            key,
            value: self.issued,
            work,
            attempt: 0,
            issued_at: now,
            size: self.request_size.sample(&mut self.size_rng),
            class,
            ..Request::default()
        };
        ctx.trace_start(req.id);
        let request = self.open.open(ctx, |_, _| Open {
            issued_at: now,
            user,
            req,
            attempt: 1,
            calls: [None; 2],
            last_target: None,
            previous_pause: SimDuration::ZERO,
            hedge_timer: None,
            hedged: false,
            hedge_call: None,
            copies: 0,
        });
        self.send_attempt(ctx, request);
    }

    /// Send one copy of the open request `request` (a first attempt, a retry or a hedge).
    fn send_attempt(&mut self, ctx: &mut Ctx<'_>, request: CallId) {
        // Only what is needed before the target is picked, not a copy of the whole entry.
        let Some((hedge, avoid, attempt, user)) = self.open.get_mut(request).map(|o| {
            let hedge = o.in_flight() > 0;
            (
                hedge,
                if hedge { o.last_target } else { None },
                o.attempt,
                o.user,
            )
        }) else {
            return;
        };
        let Some(target) = self.route(ctx, request, avoid) else {
            self.attempt_failed(ctx, request, Cause::Unreachable);
            return;
        };
        let lease = match self.pools.as_mut().map(|p| p.acquire(ctx, target, user, 0)) {
            None => None,
            Some(Ok(lease)) => Some(lease),
            Some(Err(e)) => {
                self.attempt_failed(ctx, request, e.cause());
                return;
            }
        };
        let timeout = self.cfg.timeout;
        let call = self.pending.open(ctx, |ctx, call| Pending {
            request,
            timer: ctx.set_timer(timeout, call.0),
            conn: lease.map(|l| (target, user, l.conn)),
        });
        let first_try = attempt == 1 && !hedge;
        let hedge_after = self.cfg.hedge.as_ref().map(|h| h.after);
        let o = self.open.get_mut(request).expect("checked open above");
        let slot = o.calls.iter().position(Option::is_none).unwrap_or(0);
        o.calls[slot] = Some(call);
        o.last_target = Some(target);
        if hedge {
            o.hedge_call = Some(call);
        }
        if let Some(after) = hedge_after
            && first_try
        {
            o.hedge_timer = Some(ctx.set_timer(after, TAG_AGAIN | TAG_HEDGE_BIT | request.0));
        }
        if self.cfg.retry.is_some() || hedge_after.is_some() {
            self.attempts.add(ctx.now(), 1.0);
        }
        // Each copy is an execution of its own: a retry or hedge draws a fresh service time.
        let attempt = o.req.copy(u64::from(o.copies));
        o.copies += 1;
        let mut req = Request {
            call,
            attempt,
            ..o.req
        };
        match lease {
            Some(l) if l.delay > SimDuration::ZERO => {
                req.handshake = l.handshake;
                ctx.send_after(l.delay, target, Message::Request(req));
            }
            Some(l) => {
                req.handshake = l.handshake;
                ctx.send(target, Message::Request(req));
            }
            None => ctx.send(target, Message::Request(req)),
        }
    }

    /// Close pending call `call`, giving its connection back.
    fn close_call(&mut self, ctx: &mut Ctx<'_>, call: CallId) -> Option<Pending> {
        let p = self.pending.close(call)?;
        if let (Some((to, user, conn)), Some(pools)) = (p.conn, self.pools.as_mut()) {
            pools.release(ctx.now(), to, user, conn);
        }
        Some(p)
    }

    /// An attempt failed with `cause`: wait for its hedge twin, retry, or end the request.
    fn attempt_failed(&mut self, ctx: &mut Ctx<'_>, request: CallId, cause: Cause) {
        let Some(o) = self.open.get_mut(request) else {
            return;
        };
        if o.in_flight() > 0 {
            return;
        }
        let may_retry = self
            .cfg
            .retry
            .as_ref()
            .is_some_and(|r| o.attempt < r.max_attempts);
        if may_retry {
            if self.budget.as_mut().is_none_or(|b| b.withdraw()) {
                let r = self.cfg.retry.as_ref().expect("may_retry");
                let pause = r
                    .backoff
                    .delay(o.attempt, o.previous_pause, &mut self.retry_rng);
                o.previous_pause = pause;
                o.attempt += 1;
                self.retries += 1;
                let (id, now) = (o.req.id, ctx.now());
                ctx.trace_mark(id, Mark::Retry);
                ctx.trace_span(id, SpanKind::Backoff, now, now.after(pause));
                ctx.set_timer(pause, TAG_AGAIN | request.0);
                return;
            }
            self.retries_denied += 1;
        }
        self.finish(ctx, request, Err(cause));
    }

    /// End the open request `request` with `result`, abandoning any attempt still in flight.
    fn finish(&mut self, ctx: &mut Ctx<'_>, request: CallId, result: Result<(), Cause>) {
        let Some(o) = self.open.close(request) else {
            return;
        };
        for call in o.calls.into_iter().flatten() {
            if let Some(p) = self.close_call(ctx, call) {
                ctx.cancel_timer(p.timer);
            }
        }
        if let Some(t) = o.hedge_timer {
            ctx.cancel_timer(t);
        }
        ctx.request_ended_in(o.req.class, o.issued_at, result);
        if let Some(d) = self.dns.as_mut() {
            d.ended(ctx.now(), o.issued_at, o.last_target, result);
        }
        ctx.trace_end(o.req.id, result);
        if let Some(own) = self.own.as_mut() {
            if o.issued_at >= self.measure_from {
                match result {
                    Ok(()) => own.ok += 1,
                    Err(_) => own.failed += 1,
                }
            }
            own.availability
                .add(ctx.now(), f64::from(u8::from(result.is_ok())));
        }
        self.after_end(ctx, o.user);
    }

    /// The attempt `call` ended with `result` (an answer, or its timeout).
    fn attempt_ended(&mut self, ctx: &mut Ctx<'_>, call: CallId, result: Result<(), Cause>) {
        let Some(p) = self.close_call(ctx, call) else {
            self.late += 1;
            return;
        };
        // After a timeout this timer has already fired, and cancelling it does nothing.
        ctx.cancel_timer(p.timer);
        let Some(o) = self.open.get_mut(p.request) else {
            return;
        };
        for c in o.calls.iter_mut().filter(|c| **c == Some(call)) {
            *c = None;
        }
        match result {
            Ok(()) => {
                if o.hedge_call == Some(call) {
                    self.hedge_wins += 1;
                }
                self.finish(ctx, p.request, Ok(()))
            }
            Err(cause) => self.attempt_failed(ctx, p.request, cause),
        }
    }

    /// The hedge delay passed: send a second copy if the first is still unanswered.
    fn hedge(&mut self, ctx: &mut Ctx<'_>, request: CallId) {
        let Some(o) = self.open.get_mut(request) else {
            return;
        };
        o.hedge_timer = None;
        if o.in_flight() != 1 || o.hedged {
            return;
        }
        o.hedged = true;
        self.hedges += 1;
        ctx.trace_mark(o.req.id, Mark::Hedge);
        self.send_attempt(ctx, request);
    }

    /// A closed-loop user thinks before its next request.
    fn after_end(&mut self, ctx: &mut Ctx<'_>, user: u32) {
        if matches!(self.cfg.arrival, Arrival::Closed { .. }) {
            self.schedule_arrival(ctx, TAG_THINK | user as u64);
        }
    }
}

impl Node<Builtin> for Client {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        // Every node is built by now: the roster is complete.
        if self.roster.lock().expect("one thread per run").0 >= 2 && self.own.is_none() {
            self.own = Some(Box::new(OwnOutcomes {
                ok: 0,
                failed: 0,
                availability: Series::new(SeriesKind::Mean, self.window),
            }));
        }
        match self.cfg.arrival {
            Arrival::Closed { users, .. } => {
                for user in 0..users {
                    self.schedule_arrival(ctx, TAG_THINK | user as u64);
                }
            }
            Arrival::Poisson { .. }
            | Arrival::Constant { .. }
            | Arrival::Bursts { .. }
            | Arrival::Shaped { .. }
            | Arrival::Trace { .. } => self.schedule_arrival(ctx, TAG_ARRIVAL),
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, _from: NodeId, msg: Message) {
        match msg {
            Message::Response(resp) => self.attempt_ended(ctx, resp.call, resp.result.map(|_| ())),
            // Clients serve no one.
            Message::Request(_)
            | Message::User(_)
            | Message::Txn(_)
            | Message::Replica(_)
            | Message::Stream(_)
            | Message::Purge(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        match tag & !TAG_MASK {
            TAG_ARRIVAL => {
                self.issue(ctx, 0);
                self.schedule_arrival(ctx, TAG_ARRIVAL);
            }
            TAG_THINK => {
                if self.may_issue(ctx.now()) {
                    self.issue(ctx, (tag & TAG_MASK) as u32);
                }
            }
            TAG_AGAIN if tag & TAG_HEDGE_BIT != 0 => {
                self.hedge(ctx, CallId(tag & TAG_MASK & !TAG_HEDGE_BIT))
            }
            TAG_AGAIN => self.send_attempt(ctx, CallId(tag & TAG_MASK)),
            _ => {
                // The timer of a pending call: it timed out. (Its `late` count is not
                // increased when the timed-out attempt was already abandoned.)
                if let Some(p) = self.pending.get_mut(CallId(tag)) {
                    let request = p.request;
                    if let Some(o) = self.open.get_mut(request) {
                        ctx.trace_mark(o.req.id, Mark::Timeout);
                    }
                    self.attempt_ended(ctx, CallId(tag), Err(Cause::Timeout));
                }
            }
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        // The users behind a crashed client are gone with it: their pending requests are
        // abandoned (reported as `lost_in_crash`), and arrivals stop until the restart.
        self.pending.clear();
        if let Some(p) = self.pools.as_mut() {
            p.crashed(now);
        }
        self.lost_in_crash += self.open.clear() as u64;
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let mut counters = BTreeMap::from([
            ("issued".to_string(), self.issued as f64),
            ("late_responses".to_string(), self.late as f64),
            ("lost_in_crash".to_string(), self.lost_in_crash as f64),
        ]);
        let mut series = Vec::new();
        if self.cfg.retry.is_some() {
            counters.insert("retries".to_string(), self.retries as f64);
            counters.insert(
                "retries_denied_by_budget".to_string(),
                self.retries_denied as f64,
            );
        }
        if self.cfg.hedge.is_some() {
            counters.insert("hedges".to_string(), self.hedges as f64);
            counters.insert("hedge_wins".to_string(), self.hedge_wins as f64);
        }
        if let Some(own) = self.own.as_mut() {
            let total = own.ok + own.failed;
            counters.insert("ok".to_string(), own.ok as f64);
            counters.insert("failed".to_string(), own.failed as f64);
            let availability = if total == 0 {
                1.0
            } else {
                own.ok as f64 / total as f64
            };
            counters.insert("availability".to_string(), availability);
            series.push(own.availability.finish(
                "client_availability",
                "Availability by client (successes over requests ended)",
                "fraction",
                now,
            ));
        }
        if self.cfg.retry.is_some() || self.cfg.hedge.is_some() {
            series.push(self.attempts.finish(
                "attempts",
                "Attempts sent (first tries, retries, hedges)",
                "attempts/s",
                now,
            ));
        }
        if let Some(p) = self.pools.as_mut() {
            series.extend(p.report(now, &mut counters));
        }
        if let Some(d) = self.dns.as_mut() {
            series.extend(d.report(now, &mut counters));
        }
        Some(NodeStats {
            counters,
            series,
            ..NodeStats::default()
        })
    }
}
