//! Calls a server makes to other services while it handles a request: stages run in order,
//! the calls of one stage run in parallel, and a stage succeeds once `wait_for` of them have.
//!
//! ```text
//!  stage s: one call to each service in `to` (a pool: one reachable replica at random)
//!           [connection pool full? wait in FIFO order for a free connection]
//!           a call fails ─▶ retry? (stage `retry`) ─▶ backoff ─▶ the call again, elsewhere
//!           ok ≥ wait_for ─────────────▶ abandon the rest ─▶ stage s+1 (or done: Ok)
//!           failed > len − wait_for ───▶ abandon the rest ─▶ done: Err(cause of that failure)
//! ```
//! The calls carry the request's id, op, key and work bits, so a downstream server draws its
//! own service time for the request, and idempotency keys see the same id. Each call is an
//! execution of its own downstream: its attempt tag is derived from the request's tag, the
//! stage, the service's place in the stage and the try, so a retry (here or by any caller
//! upstream) draws afresh, while a first call keeps the request's tag.
//!
//! Work is kept per *slot*, a number the server chooses for each request that calls out (its
//! worker, or a place of its own when the server releases its workers while calling), so this
//! file knows nothing of workers.
//!
//! A connection pool (`max_in_flight` of the server, per service called) bounds the calls in
//! flight from one replica to one service; a call beyond it waits for a connection, within its
//! stage's timeout, and the calls waiting are a time series.
//!
//! With the server's `connections`, each call also goes out on a kept-alive connection of the
//! replica's pool to the replica it picked (the same [`Pools`] a client and a balancer use):
//! ```text
//!  send ─▶ pick a replica ─▶ Pools::acquire: reuse (send now) or open (send after the
//!          handshake round trips and the caller's CPU; the callee pays its side first)
//!          pool at max_connections ─▶ the try fails with `rejected` (a retry may follow)
//! ```
//! The timeout runs through the handshake. A restart of the callee drops the connections to
//! it (the next calls handshake again); a crash of this server drops all of its own.

use crate::components::message::{Ctx, Message};
use crate::components::resilience::policy::{RetryBudget, RetryConfig};
use crate::components::traffic::calls::CallTable;
use crate::components::traffic::connections::{ConnectionConfig, Pools};
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Handshake, Op, Request};
use crate::contract::metrics::{Series, SeriesKind};
use crate::contract::validate::{Path, Validator};
use crate::results::SeriesResult;
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// One stage of a server's downstream calls: `(to: ["b", "c", "d"], wait_for: Some(2),
/// timeout: "100ms")`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallStage {
    /// Services called at once, one call each (a pool name: one reachable replica at random).
    pub to: Vec<String>,
    /// Successful answers the stage waits for (count); the first ones win, the rest are
    /// abandoned. Default `None`: all of them.
    #[serde(default)]
    pub wait_for: Option<u32>,
    /// A call not answered within this long fails with cause `timeout` (duration); with
    /// `retry`, per try, and time spent waiting for a connection counts. Default "1s".
    #[serde(default = "one_s")]
    pub timeout: SimDuration,
    /// Retry a failed call (an error answer, a timeout, or no replica reachable) on another
    /// replica after a backoff, like a client library would: `Some((max_attempts: 2))`. Each
    /// try draws a fresh service time. Default `None`: one try.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// Which requests make this stage's calls: `All`, `Reads` or `Writes` (say, a write path
    /// that updates a database while reads are answered from local state). A request the stage
    /// does not apply to passes it at once. Default `All`.
    #[serde(default, skip_serializing_if = "Ops::is_all")]
    pub ops: Ops,
}

/// Which requests a call stage applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Ops {
    /// Every request.
    #[default]
    All,
    /// Reads only.
    Reads,
    /// Writes only.
    Writes,
}

impl Ops {
    fn is_all(&self) -> bool {
        *self == Ops::All
    }

    fn applies(self, op: Op) -> bool {
        match self {
            Ops::All => true,
            Ops::Reads => op == Op::Read,
            Ops::Writes => op == Op::Write,
        }
    }
}

fn one_s() -> SimDuration {
    SimDuration::from_secs(1)
}

impl CallStage {
    /// Check the services exist and `wait_for` fits them.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        for (i, name) in self.to.iter().enumerate() {
            v.resolve(&at.field("to").index(i), name);
        }
        if self.to.is_empty() {
            v.error(
                &at.field("to"),
                "a stage that calls no one",
                "expected a list of node or group names",
            );
        }
        if let Some(k) = self.wait_for
            && (k == 0 || k as usize > self.to.len())
        {
            v.error(
                &at.field("wait_for"),
                format!("waiting for {k} of {} calls", self.to.len()),
                format!("expected a count from 1 to {}", self.to.len()),
            );
        }
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout fails every call",
                "expected a positive duration",
            );
        }
        if let Some(r) = &self.retry {
            r.validate(v, &at.field("retry"));
        }
    }
}

/// Check a server's connection pools: every service named is called, every limit positive.
pub fn validate_pools(
    pools: &BTreeMap<String, u32>,
    calls: &[CallStage],
    v: &mut Validator,
    at: &Path,
) {
    for (name, &limit) in pools {
        let at = at.key(name);
        if !calls.iter().any(|c| c.to.contains(name)) {
            let called: Vec<&str> = calls
                .iter()
                .flat_map(|c| c.to.iter().map(String::as_str))
                .collect();
            v.error(
                &at,
                format!("\"{name}\" is not called by this server"),
                format!(
                    "expected one of the services in `calls`: {}",
                    if called.is_empty() {
                        "(none)".to_string()
                    } else {
                        called.join(", ")
                    }
                ),
            );
        }
        if limit == 0 {
            v.error(&at, "a pool of no connections", "expected a count >= 1");
        }
    }
}

struct Target {
    replicas: Vec<NodeId>,
    /// Index of the connection pool its calls take a connection from, if limited.
    pool: Option<usize>,
}

struct Stage {
    targets: Vec<Target>,
    need: u32,
    timeout: SimDuration,
    retry: Option<RetryConfig>,
    budget: Option<RetryBudget>,
    ops: Ops,
}

/// Where one call stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting in its pool's queue for a connection (its timeout runs).
    Queued,
    /// Sent (holding a connection of its pool, if any).
    InFlight,
    /// Failed; waiting out the backoff before its next try.
    Backoff,
}

#[derive(Clone, Copy, Debug)]
struct Call {
    slot: u32,
    /// The service's place in its stage.
    target: u32,
    /// Tries made so far (the first included).
    tries: u32,
    state: State,
    /// The timeout, or in `Backoff` the backoff timer (`None` only before the first try).
    timer: Option<TimerId>,
    /// The replica of the last try (a retry avoids it).
    to: Option<NodeId>,
    /// The kept-alive connection the try went out on (with `connections`).
    conn: Option<u32>,
    previous_pause: SimDuration,
}

#[derive(Clone, Debug)]
struct Progress {
    stage: usize,
    ok: u32,
    failed: u32,
    last_error: Option<Cause>,
    open: Vec<CallId>,
    req: Request,
}

/// A connection pool to one service: at most `limit` calls in flight, the rest wait.
struct Pool {
    name: String,
    limit: u32,
    in_use: u32,
    queue: VecDeque<CallId>,
    /// Calls in `queue` still waiting (closed ones are skipped when they come up).
    waiting: u32,
    waited: u64,
    waiting_series: Series,
}

/// What a server's downstream calls did, for its counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct CallCounts {
    /// Calls sent (tries included).
    pub sent: u64,
    /// Calls that failed (error answer, timeout, unreachable, or no connection in time).
    pub errors: u64,
    /// Retries made.
    pub retries: u64,
    /// Retries the budget refused.
    pub retries_denied: u64,
}

/// A server's downstream calls in flight, per slot.
pub struct Downstream {
    stages: Vec<Stage>,
    calls: CallTable<Call>,
    progress: Vec<Option<Progress>>,
    pools: Vec<Pool>,
    rng: SimRng,
    retry_rng: SimRng,
    candidates: Vec<NodeId>,
    /// Kept-alive connections to the replicas called (with the server's `connections`).
    conns: Option<Box<Pools>>,
    /// Slots whose stage may have moved since the server last looked (see `next_decided`).
    moved: Vec<u32>,
    /// What the calls did.
    pub counts: CallCounts,
}

fn cancel(ctx: &mut Ctx<'_>, timer: Option<TimerId>) {
    if let Some(t) = timer {
        ctx.cancel_timer(t);
    }
}

/// Timer tags of calls have the top bit set (a server's other timers are small numbers). A
/// `CallId`'s generation would need 2^31 reuses of one slot to reach that bit.
const CALL_TIMER: u64 = 1 << 63;

impl Downstream {
    /// The stages of `calls`, with names resolved, `pools` (service name to limit) set up,
    /// and calls made over kept-alive connections if `connections` says how.
    pub fn new(
        calls: &[CallStage],
        pools: &BTreeMap<String, u32>,
        connections: Option<&ConnectionConfig>,
        b: &BuildCtx<'_>,
    ) -> Self {
        let pool_names: Vec<&String> = pools.keys().collect();
        let stages = calls
            .iter()
            .map(|c| Stage {
                targets: c
                    .to
                    .iter()
                    .map(|name| Target {
                        replicas: b.resolve(name),
                        pool: pool_names.iter().position(|p| *p == name),
                    })
                    .collect(),
                need: c.wait_for.unwrap_or(c.to.len() as u32),
                timeout: c.timeout,
                retry: c.retry.clone(),
                budget: c.retry.as_ref().and_then(RetryBudget::new),
                ops: c.ops,
            })
            .collect();
        let pools = pools
            .iter()
            .map(|(name, &limit)| Pool {
                name: name.clone(),
                limit,
                in_use: 0,
                queue: VecDeque::new(),
                waiting: 0,
                waited: 0,
                waiting_series: Series::new(SeriesKind::Level, b.window()),
            })
            .collect();
        Downstream {
            stages,
            calls: CallTable::default(),
            progress: Vec::new(),
            pools,
            rng: b.rng("downstream"),
            retry_rng: b.rng("downstream/retry"),
            candidates: Vec::new(),
            conns: connections.map(|c| Box::new(Pools::new(c, b.window()))),
            moved: Vec::new(),
            counts: CallCounts::default(),
        }
    }

    /// The call whose timer has `tag`, if it is one of ours.
    pub fn call_of_timer(tag: u64) -> Option<CallId> {
        (tag & CALL_TIMER != 0).then_some(CallId(tag & !CALL_TIMER))
    }

    /// Does request `req` make any call? (Stages for other ops pass it at once.)
    pub fn calls_for(&self, req: &Request) -> bool {
        self.stages.iter().any(|s| s.ops.applies(req.op))
    }

    /// Start the calls of request `req` in `slot` (see `next_decided` for its outcome).
    pub fn begin(&mut self, ctx: &mut Ctx<'_>, slot: u32, req: Request) {
        let i = slot as usize;
        if self.progress.len() <= i {
            self.progress.resize_with(i + 1, || None);
        }
        self.progress[i] = Some(Progress {
            stage: 0,
            ok: 0,
            failed: 0,
            last_error: None,
            open: Vec::new(),
            req,
        });
        self.moved.push(slot);
        self.send_stage(ctx, slot, 0);
    }

    /// An answer to `call` came.
    pub fn answered(&mut self, ctx: &mut Ctx<'_>, call: CallId, result: Result<(), Cause>) {
        let Some(&mut c) = self.calls.get_mut(call) else {
            return;
        };
        if c.state != State::InFlight {
            return;
        }
        cancel(ctx, c.timer);
        self.release_connection(ctx, c);
        match result {
            Ok(()) => self.settle(call, c.slot, Ok(())),
            Err(cause) => self.failed(ctx, call, cause),
        }
    }

    /// The timer of `call` fired: its timeout, or the end of its backoff.
    pub fn timer(&mut self, ctx: &mut Ctx<'_>, call: CallId) {
        let Some(&mut c) = self.calls.get_mut(call) else {
            return;
        };
        match c.state {
            State::Backoff => {
                self.calls.close(call);
                self.try_call(ctx, c, Some(call));
            }
            State::Queued => {
                self.pool_dequeued(ctx.now(), c);
                self.failed(ctx, call, Cause::Timeout);
            }
            State::InFlight => {
                self.release_connection(ctx, c);
                self.failed(ctx, call, Cause::Timeout);
            }
        }
    }

    /// A request whose calls are decided, with its slot and outcome, if there is one: the
    /// server asks after every event it passed on, until `None`.
    pub fn next_decided(&mut self, ctx: &mut Ctx<'_>) -> Option<(u32, Result<(), Cause>)> {
        while let Some(slot) = self.moved.pop() {
            let open = self
                .progress
                .get(slot as usize)
                .is_some_and(Option::is_some);
            if let Some(outcome) = open.then(|| self.advance(ctx, slot)).flatten() {
                return Some((slot, outcome));
            }
        }
        None
    }

    /// `call` failed with `cause`: retry it if the stage allows, else count the failure.
    fn failed(&mut self, ctx: &mut Ctx<'_>, call: CallId, cause: Cause) {
        self.counts.errors += 1;
        let Some(&mut c) = self.calls.get_mut(call) else {
            return;
        };
        let stage = self.progress_of(c.slot).stage;
        let s = &mut self.stages[stage];
        let may_retry = s.retry.as_ref().is_some_and(|r| c.tries < r.max_attempts);
        if may_retry {
            if s.budget.as_mut().is_none_or(RetryBudget::withdraw) {
                let r = s.retry.as_ref().expect("may_retry");
                let pause = r
                    .backoff
                    .delay(c.tries, c.previous_pause, &mut self.retry_rng);
                self.counts.retries += 1;
                let entry = self.calls.get_mut(call).expect("open above");
                entry.previous_pause = pause;
                entry.state = State::Backoff;
                entry.timer = Some(ctx.set_timer(pause, CALL_TIMER | call.0));
                return;
            }
            self.counts.retries_denied += 1;
        }
        self.settle(call, c.slot, Err(cause))
    }

    /// `call` ended for good: count it for its stage.
    fn settle(&mut self, call: CallId, slot: u32, result: Result<(), Cause>) {
        if self.calls.close(call).is_none() {
            return;
        }
        self.moved.push(slot);
        let p = self.progress_mut(slot);
        p.open.retain(|&c| c != call);
        match result {
            Ok(()) => p.ok += 1,
            Err(cause) => {
                p.failed += 1;
                p.last_error = Some(cause);
            }
        }
    }

    /// Move the request in `slot` on through its stages as far as the answers so far allow;
    /// returns its outcome once decided (and forgets it).
    fn advance(&mut self, ctx: &mut Ctx<'_>, slot: u32) -> Option<Result<(), Cause>> {
        loop {
            let p = self.progress_of(slot);
            let stage = &self.stages[p.stage];
            let n = stage.targets.len() as u32;
            let outcome = if p.ok >= stage.need {
                Ok(())
            } else if p.failed > n - stage.need {
                Err(p.last_error.unwrap_or(Cause::Unreachable))
            } else {
                return None;
            };
            self.abandon(ctx, slot);
            let next = self.progress_of(slot).stage + 1;
            if outcome.is_err() || next == self.stages.len() {
                self.progress[slot as usize] = None;
                return Some(outcome);
            }
            self.send_stage(ctx, slot, next);
        }
    }

    fn progress_of(&self, slot: u32) -> &Progress {
        self.progress[slot as usize]
            .as_ref()
            .expect("a slot with calls has its progress")
    }

    fn progress_mut(&mut self, slot: u32) -> &mut Progress {
        self.progress[slot as usize]
            .as_mut()
            .expect("a slot with calls has its progress")
    }

    fn send_stage(&mut self, ctx: &mut Ctx<'_>, slot: u32, stage: usize) {
        let op = {
            let p = self.progress_mut(slot);
            p.stage = stage;
            p.ok = 0;
            p.failed = 0;
            p.last_error = None;
            p.req.op
        };
        let s = &mut self.stages[stage];
        if !s.ops.applies(op) {
            // Not for this request: the stage passes at once.
            let need = s.need;
            self.progress_mut(slot).ok = need;
            return;
        }
        if let Some(b) = s.budget.as_mut() {
            b.deposit();
        }
        for t in 0..s.targets.len() as u32 {
            let first = Call {
                slot,
                target: t,
                tries: 0,
                state: State::Backoff,
                timer: None,
                to: None,
                conn: None,
                previous_pause: SimDuration::ZERO,
            };
            self.try_call(ctx, first, None);
        }
    }

    /// Make the next try of `call`: take a connection (or queue for one), pick a replica and
    /// send. An unreachable service fails the try at once.
    ///
    /// Every try is a call of its own (`replaces` is the previous try's), so a late answer to
    /// an earlier try is recognised as late, not taken for this one's.
    fn try_call(&mut self, ctx: &mut Ctx<'_>, c: Call, replaces: Option<CallId>) {
        let stage = self.progress_of(c.slot).stage;
        let timeout = self.stages[stage].timeout;
        let call = self.calls.open(ctx, |ctx, call| Call {
            timer: Some(ctx.set_timer(timeout, CALL_TIMER | call.0)),
            tries: c.tries + 1,
            state: State::Queued,
            conn: None,
            ..c
        });
        let open = &mut self.progress_mut(c.slot).open;
        match replaces.and_then(|old| open.iter_mut().find(|x| **x == old)) {
            Some(x) => *x = call,
            None => open.push(call),
        }
        match self.stages[stage].targets[c.target as usize].pool {
            Some(p) if self.pools[p].in_use >= self.pools[p].limit => {
                self.queue_for(ctx, p, call);
            }
            Some(p) => {
                self.pools[p].in_use += 1;
                self.send(ctx, call);
            }
            None => self.send(ctx, call),
        }
    }

    fn queue_for(&mut self, ctx: &mut Ctx<'_>, p: usize, call: CallId) {
        let now = ctx.now();
        let pool = &mut self.pools[p];
        pool.queue.push_back(call);
        pool.waiting += 1;
        pool.waited += 1;
        pool.waiting_series.set(now, f64::from(pool.waiting));
        let bound = ctx.limits().max_pending_events;
        if pool.queue.len() > bound {
            ctx.exceed_limit(
                "limits.max_pending_events",
                bound as u64,
                format!(
                    "calls waiting for a connection to \"{}\" grew past it; lower the stage timeout",
                    pool.name
                ),
            );
        }
    }

    /// Send `call` (it holds its connection, if pooled) to a reachable replica.
    fn send(&mut self, ctx: &mut Ctx<'_>, call: CallId) {
        let c = *self.calls.get_mut(call).expect("sent calls are open");
        let (stage, req) = {
            let p = self.progress_of(c.slot);
            (p.stage, p.req)
        };
        let Some(to) = self.pick(ctx, stage, c.target, c.to) else {
            let entry = self.calls.get_mut(call).expect("open");
            entry.state = State::InFlight;
            cancel(ctx, entry.timer);
            let entry = *entry;
            self.release_connection(ctx, entry);
            self.failed(ctx, call, Cause::Unreachable);
            return;
        };
        let lease = match self.conns.as_mut().map(|p| p.acquire(ctx, to, 0, 0)) {
            None => None,
            Some(Ok(lease)) => Some(lease),
            Some(Err(e)) => {
                let entry = self.calls.get_mut(call).expect("open");
                entry.state = State::InFlight;
                cancel(ctx, entry.timer);
                let entry = *entry;
                self.release_connection(ctx, entry);
                self.failed(ctx, call, e.cause());
                return;
            }
        };
        let entry = self.calls.get_mut(call).expect("open");
        entry.state = State::InFlight;
        entry.to = Some(to);
        entry.conn = lease.map(|l| l.conn);
        self.counts.sent += 1;
        // The call's own execution: the first try of the first service of the first stage
        // keeps the request's tag.
        let copy = (stage as u64) << 40 | u64::from(c.target) << 20 | u64::from(entry.tries - 1);
        let attempt = req.copy(copy);
        // A call of this service's own: the handshake its caller opened was paid here, and
        // the callee pays the side of one this call opens.
        let (delay, handshake) = lease.map_or((SimDuration::ZERO, Handshake::NONE), |l| {
            (l.delay, l.handshake)
        });
        let msg = Message::Request(Request {
            call,
            attempt,
            handshake,
            ..req
        });
        if delay > SimDuration::ZERO {
            ctx.send_after(delay, to, msg);
        } else {
            ctx.send(to, msg);
        }
    }

    /// A reachable replica of service `t` of `stage`, other than `avoid` if there is another.
    fn pick(
        &mut self,
        ctx: &Ctx<'_>,
        stage: usize,
        t: u32,
        avoid: Option<NodeId>,
    ) -> Option<NodeId> {
        let replicas = &self.stages[stage].targets[t as usize].replicas;
        if let [only] = replicas[..] {
            return ctx.reachable(only).then_some(only);
        }
        self.candidates.clear();
        self.candidates
            .extend(replicas.iter().copied().filter(|&r| ctx.reachable(r)));
        if let Some(a) = avoid
            && self.candidates.len() > 1
        {
            self.candidates.retain(|&r| r != a);
        }
        match self.candidates.len() {
            0 => None,
            n => Some(self.candidates[self.rng.below(n as u64) as usize]),
        }
    }

    /// `c` no longer holds its connection: hand it to the next call waiting, if any.
    fn release_connection(&mut self, ctx: &mut Ctx<'_>, c: Call) {
        if c.state != State::InFlight {
            return;
        }
        if let (Some(pools), Some(to), Some(conn)) = (self.conns.as_mut(), c.to, c.conn) {
            pools.release(ctx.now(), to, 0, conn);
        }
        let stage = self.progress_of(c.slot).stage;
        let Some(p) = self.stages[stage].targets[c.target as usize].pool else {
            return;
        };
        self.pools[p].in_use -= 1;
        while let Some(next) = self.pools[p].queue.pop_front() {
            let waiting = self
                .calls
                .get_mut(next)
                .is_some_and(|n| n.state == State::Queued);
            if waiting {
                let n = *self.calls.get_mut(next).expect("checked");
                self.pool_dequeued(ctx.now(), n);
                self.pools[p].in_use += 1;
                self.send(ctx, next);
                return;
            }
        }
    }

    /// A call left its pool's queue (it got a connection, timed out or was abandoned).
    fn pool_dequeued(&mut self, now: SimTime, c: Call) {
        let stage = self.progress_of(c.slot).stage;
        if let Some(p) = self.stages[stage].targets[c.target as usize].pool {
            let pool = &mut self.pools[p];
            pool.waiting -= 1;
            pool.waiting_series.set(now, f64::from(pool.waiting));
        }
    }

    /// Close the calls still open for `slot` (their answers will be ignored).
    fn abandon(&mut self, ctx: &mut Ctx<'_>, slot: u32) {
        let open = std::mem::take(&mut self.progress_mut(slot).open);
        for &call in &open {
            let Some(&mut c) = self.calls.get_mut(call) else {
                continue;
            };
            cancel(ctx, c.timer);
            match c.state {
                State::InFlight => self.release_connection(ctx, c),
                State::Queued => self.pool_dequeued(ctx.now(), c),
                State::Backoff => {}
            }
            self.calls.close(call);
        }
    }

    /// A crash: every call in flight or waiting is forgotten.
    pub fn clear(&mut self, now: SimTime) {
        self.calls.clear();
        self.progress.iter_mut().for_each(|p| *p = None);
        if let Some(p) = self.conns.as_mut() {
            p.crashed(now);
        }
        for pool in &mut self.pools {
            pool.in_use = 0;
            pool.queue.clear();
            pool.waiting = 0;
            pool.waiting_series.set(now, 0.0);
        }
    }

    /// The pools' counters (`connection_waits.<service>`) and series.
    pub fn report(
        &mut self,
        now: SimTime,
        counters: &mut BTreeMap<String, f64>,
    ) -> Vec<SeriesResult> {
        let mut series = Vec::new();
        if let Some(p) = self.conns.as_mut() {
            series.extend(p.report(now, counters));
        }
        for pool in &mut self.pools {
            counters.insert(
                format!("connection_waits.{}", pool.name),
                pool.waited as f64,
            );
            let mut s = pool.waiting_series.finish(
                "calls_waiting_for_connection",
                "Calls waiting for a connection",
                "calls",
                now,
            );
            s.label = Some(format!("to {}", pool.name));
            series.push(s);
        }
        series
    }
}
