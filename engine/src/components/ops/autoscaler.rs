//! `Autoscaler`: resizes a server pool by a metric, as Kubernetes' HorizontalPodAutoscaler
//! does, or by a schedule, with cold starts, warm-up, a warm pool and draining scale-in.
//!
//! ```text
//!  every `sync`: metric over the last `window` ─▶ desired = ceil(current × metric / target)
//!                (no change within ±tolerance) ─▶ scale-down: highest desired in the last
//!                `scale_down_stabilization` ─▶ at most `step` per decision (default: double
//!                or +4 up, any down) ─▶ within [min, max]
//!  scale up:   stopped ─▶ provisioning (`provisioning`, or `warm_start` from the warm pool)
//!              ─▶ warming (capacity from `cold_capacity` up to 1 over `warmup`) ─▶ serving
//!  scale down: not-yet-ready replicas first, then the newest: out of rotation at once,
//!              stopped when their last request is answered (draining)
//! ```
//! The pool's `replicas` is its largest size; `max` may not exceed it. Utilisation is the
//! busy share of the workers summed over replicas, so `ceil(sum / target)` is HPA's
//! `ceil(current × average / target)`; a replica not ready yet counts as idle, as HPA counts
//! a pod that is not ready when it scales up.

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::ops::pool::{Phase, Pool, lock, pool_name};
use crate::contract::build::BuildCtx;
use crate::contract::metrics::{EventLog, NodeStats, Series, SeriesKind};
use crate::contract::validate::{Path, Validator};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// What an autoscaler scales on, and its target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Metric {
    /// Busy share of the workers, averaged over the replicas: `Utilization(target: 0.6)`
    /// (0..1], like HPA's CPU utilisation target.
    Utilization {
        /// Target average utilisation per replica (fraction, 0..1].
        target: f64,
    },
    /// Requests waiting per replica: `QueueLength(target: 4.0)` (requests, > 0), like an HPA
    /// external metric with an average value target.
    QueueLength {
        /// Target average queue length per replica (requests).
        target: f64,
    },
    /// The 99th percentile of the time requests spend in the pool (queue and service):
    /// `P99(target: "200ms")`.
    P99 {
        /// Target 99th percentile (duration).
        target: SimDuration,
    },
}

/// A scheduled change of the bounds, as a scheduled scaling action sets them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scheduled {
    /// When (duration from the start).
    pub at: SimDuration,
    /// The new `min` from then on (count). Default `None`: unchanged.
    #[serde(default)]
    pub min: Option<u32>,
    /// The new `max` from then on (count). Default `None`: unchanged.
    #[serde(default)]
    pub max: Option<u32>,
}

/// Resizes a `Server` pool while it runs, on a measured metric or a schedule, with cold
/// starts and warm-up (the rules: "Autoscaler" in docs/scenario-format.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Autoscaler", deny_unknown_fields)]
pub struct AutoscalerConfig {
    /// The `Server` pool it resizes, by its declared name. The pool's `replicas` is its largest
    /// size: replicas beyond the current count are built stopped. Load balancers send requests
    /// only to replicas in rotation; only load balancers may name an autoscaled pool.
    pub pool: String,
    /// What it scales on: `Some(Utilization(target: 0.6))`, `Some(QueueLength(target: 4.0))`
    /// or `Some(P99(target: "200ms"))`. Default `None`: no metric; the pool keeps its size
    /// within the bounds, and a scheduled change moves it to the new `min` (scheduled scaling).
    #[serde(default)]
    pub metric: Option<Metric>,
    /// Fewest replicas (count, >= 1). Default 1.
    #[serde(default = "one")]
    pub min: u32,
    /// Most replicas (count, at most the pool's `replicas`).
    pub max: u32,
    /// Replicas serving at the start (count, within [min, max]). Default `None`: `min`.
    #[serde(default)]
    pub initial: Option<u32>,
    /// Time between two evaluations (duration). Default "15s", HPA's sync period.
    #[serde(default = "default_sync")]
    pub sync: SimDuration,
    /// The metric is averaged over this much time before each evaluation (duration, a
    /// multiple of `sync`, at most 100 of them). Default `None`: one `sync` period.
    #[serde(default)]
    pub window: Option<SimDuration>,
    /// No change while metric / target is within 1 ± this (fraction). Default 0.1, HPA's.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Most replicas added or removed by one decision (count). Default `None`: HPA's
    /// default behaviour (up to double or +4, whichever is more; down without limit).
    #[serde(default)]
    pub step: Option<u32>,
    /// After a change, no other change for this long (duration). Default "0s".
    #[serde(default)]
    pub cooldown: SimDuration,
    /// A scale-down goes only to the highest count recommended over this much time
    /// (duration), so a dip does not shrink the pool. Default "300s", HPA's.
    #[serde(default = "default_stabilization")]
    pub scale_down_stabilization: SimDuration,
    /// Cold start: from the decision until a new replica is ready (duration). Default "30s".
    #[serde(default = "default_provisioning")]
    pub provisioning: SimDuration,
    /// After it is ready, a replica warms up for this long (caches, JIT, connection pools),
    /// its capacity rising linearly from `cold_capacity` to full (duration). Default "0s".
    #[serde(default)]
    pub warmup: SimDuration,
    /// Capacity of a replica when its warm-up starts (fraction of full, (0, 1]); its service
    /// times are divided by it. Default 0.5.
    #[serde(default = "default_cold_capacity")]
    pub cold_capacity: f64,
    /// Stopped replicas kept initialised (a warm pool, as AWS warm pools keep), which start
    /// in `warm_start` instead of `provisioning`; one taken is refilled over `provisioning`
    /// (count). Default 0.
    #[serde(default)]
    pub warm_pool: u32,
    /// Start time of a replica from the warm pool (duration). Default "5s".
    #[serde(default = "default_warm_start")]
    pub warm_start: SimDuration,
    /// Changes of `min` and `max` at set times: `[(at: "60s", min: Some(8))]`. Default `[]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<Scheduled>,
}

fn one() -> u32 {
    1
}
fn default_sync() -> SimDuration {
    SimDuration::from_secs(15)
}
fn default_tolerance() -> f64 {
    0.1
}
fn default_stabilization() -> SimDuration {
    SimDuration::from_secs(300)
}
fn default_provisioning() -> SimDuration {
    SimDuration::from_secs(30)
}
fn default_cold_capacity() -> f64 {
    0.5
}
fn default_warm_start() -> SimDuration {
    SimDuration::from_secs(5)
}

crate::settable!(AutoscalerConfig {
    pool,
    metric,
    min,
    max,
    initial,
    sync,
    window,
    tolerance,
    step,
    cooldown,
    scale_down_stabilization,
    provisioning,
    warmup,
    cold_capacity,
    warm_pool,
    warm_start,
    schedule
});

/// Most sync periods in the evaluation window, and in the scale-down stabilisation window.
const MAX_WINDOW_PERIODS: u64 = 100;
const MAX_STABILIZATION_PERIODS: u64 = 100_000;
/// State changes kept per autoscaler.
const EVENT_CAP: usize = 10_000;

impl AutoscalerConfig {
    /// Check values the types cannot express (the pool itself is checked in the wiring).
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.min == 0 {
            v.error(
                &at.field("min"),
                "a pool scaled to zero has no utilisation to scale on",
                "expected a count >= 1",
            );
        }
        if self.min > self.max {
            v.error(
                &at.field("min"),
                format!("min {} > max {}", self.min, self.max),
                "expected min <= max",
            );
        }
        if let Some(i) = self.initial
            && (i < self.min || i > self.max)
        {
            v.error(
                &at.field("initial"),
                format!("{i} replicas outside [{}, {}]", self.min, self.max),
                "expected a count within [min, max]",
            );
        }
        self.validate_metric(v, at);
        self.validate_times(v, at);
        if !(self.cold_capacity > 0.0 && self.cold_capacity <= 1.0) {
            v.error(
                &at.field("cold_capacity"),
                format!("a cold capacity of {}", self.cold_capacity),
                "expected a fraction in (0, 1]",
            );
        }
        if !(self.tolerance >= 0.0 && self.tolerance < 1.0) {
            v.error(
                &at.field("tolerance"),
                format!("a tolerance of {}", self.tolerance),
                "expected a fraction in [0, 1)",
            );
        }
        if self.step == Some(0) {
            v.error(
                &at.field("step"),
                "a step of 0 never scales",
                "expected a count >= 1",
            );
        }
        for (i, s) in self.schedule.iter().enumerate() {
            let (min, max) = (s.min.unwrap_or(1), s.max.unwrap_or(u32::MAX));
            if min == 0 || min > max {
                v.error(
                    &at.field("schedule").index(i),
                    format!("min {:?}, max {:?}", s.min, s.max),
                    "expected min >= 1 and min <= max",
                );
            }
        }
    }

    fn validate_metric(&self, v: &mut Validator, at: &Path) {
        let at = at.field("metric");
        match &self.metric {
            Some(Metric::Utilization { target }) if !(*target > 0.0 && *target <= 1.0) => v.error(
                &at,
                format!("target {target}"),
                "expected a fraction in (0, 1]",
            ),
            Some(Metric::QueueLength { target }) if !(*target > 0.0 && target.is_finite()) => v
                .error(
                    &at,
                    format!("target {target}"),
                    "expected a positive number of requests",
                ),
            Some(Metric::P99 { target }) if *target == SimDuration::ZERO => {
                v.error(&at, "a zero latency target", "expected a positive duration")
            }
            _ => {}
        }
    }

    fn validate_times(&self, v: &mut Validator, at: &Path) {
        if self.sync == SimDuration::ZERO {
            v.error(
                &at.field("sync"),
                "a zero sync period",
                "expected a positive duration",
            );
            return;
        }
        if let Some(w) = self.window
            && (w.0 == 0 || w.0 % self.sync.0 != 0 || w.0 / self.sync.0 > MAX_WINDOW_PERIODS)
        {
            v.error(
                &at.field("window"),
                format!("{w} with sync {}", self.sync),
                "expected a multiple of `sync`, at most 100 of them",
            );
        }
        if self.scale_down_stabilization.0 / self.sync.0 > MAX_STABILIZATION_PERIODS {
            v.error(
                &at.field("scale_down_stabilization"),
                format!("{} with sync {}", self.scale_down_stabilization, self.sync),
                "expected at most 100000 sync periods",
            );
        }
    }

    fn periods(&self) -> usize {
        self.window
            .map_or(1, |w| (w.0 / self.sync.0.max(1)) as usize)
    }
}

/// Timer tags: the sync tick, and per replica or schedule entry (low bits) its kind.
const TAG_SYNC: u64 = u64::MAX;
const TAG_READY: u64 = 1 << 60;
const TAG_WARM: u64 = 2 << 60;
const TAG_REFILL: u64 = 3 << 60;
const TAG_SCHEDULE: u64 = 4 << 60;
const TAG_KIND: u64 = 15 << 60;

/// One autoscaler node.
pub struct Autoscaler {
    cfg: AutoscalerConfig,
    pool: Arc<Mutex<Pool>>,
    min: u32,
    max: u32,
    /// Per replica: when its cold start ends, its warm-up ends, its warm-pool refill ends.
    ready_at: Vec<Option<SimTime>>,
    warm_at: Vec<Option<SimTime>>,
    refill_at: Vec<Option<SimTime>>,
    /// The last `window / sync` measurements (busy, queued).
    recent: VecDeque<(f64, f64)>,
    /// Recommendations (time, count) within the scale-down stabilisation window.
    recommendations: VecDeque<(SimTime, u32)>,
    last_change: Option<SimTime>,
    events: EventLog,
    desired: Series,
    active: Series,
    measured: Series,
    decisions: u64,
}

impl Autoscaler {
    /// An autoscaler built from its configuration; it sets the pool's starting size.
    pub fn new(cfg: &AutoscalerConfig, b: &BuildCtx<'_>) -> Autoscaler {
        let ids = b.resolve(&cfg.pool);
        let names: Vec<String> = ids.iter().map(|&id| b.node_name(id).to_string()).collect();
        let n = names.len();
        let window = b.window();
        let pool = b.observer(&pool_name(&cfg.pool), || Pool::new(names, window));
        let initial = cfg.initial.unwrap_or(cfg.min).min(n as u32);
        {
            let mut p = lock(&pool);
            p.start_with(initial as usize, cfg.warm_pool as usize, cfg.periods());
        }
        let mut desired = Series::new(SeriesKind::Level, window);
        desired.set(SimTime::ZERO, f64::from(initial));
        let mut active = Series::new(SeriesKind::Level, window);
        active.set(SimTime::ZERO, f64::from(initial));
        Autoscaler {
            min: cfg.min,
            max: cfg.max,
            cfg: cfg.clone(),
            pool,
            ready_at: vec![None; n],
            warm_at: vec![None; n],
            refill_at: vec![None; n],
            recent: VecDeque::new(),
            recommendations: VecDeque::new(),
            last_change: None,
            events: EventLog::new(EVENT_CAP),
            desired,
            active,
            measured: Series::new(SeriesKind::Mean, window),
            decisions: 0,
        }
    }

    /// The metric over the window, and the count it recommends (before bounds and limits).
    fn recommend(&mut self, now: SimTime, current: u32) -> Option<(f64, u32)> {
        let (m, p99) = lock(&self.pool).take_load(now, 0.99);
        self.recent.push_back((m.busy, m.queued));
        if self.recent.len() > self.cfg.periods() {
            self.recent.pop_front();
        }
        let k = self.recent.len() as f64;
        let busy = self.recent.iter().map(|r| r.0).sum::<f64>() / k;
        let queued = self.recent.iter().map(|r| r.1).sum::<f64>() / k;
        let current_f = f64::from(current.max(1));
        // (metric value, its ratio to the target for the whole pool, desired count)
        let (value, ratio, want) = match self.cfg.metric.as_ref()? {
            Metric::Utilization { target } => (
                busy / current_f,
                busy / (target * current_f),
                (busy / target).ceil(),
            ),
            Metric::QueueLength { target } => (
                queued / current_f,
                queued / (target * current_f),
                (queued / target).ceil(),
            ),
            Metric::P99 { target } => {
                let p99 = p99?.as_secs_f64();
                let ratio = p99 / target.as_secs_f64();
                (p99, ratio, (current_f * ratio).ceil())
            }
        };
        self.measured.add(now, value);
        let want = if (ratio - 1.0).abs() <= self.cfg.tolerance {
            current
        } else {
            want.clamp(0.0, f64::from(u32::MAX)) as u32
        };
        Some((value, want))
    }

    /// A sync tick: measure, decide, act.
    fn evaluate(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let current = lock(&self.pool).count(Phase::active);
        let Some((value, want)) = self.recommend(now, current) else {
            // No metric (or no latency sample yet): hold the bounds only.
            self.apply(ctx, current.clamp(self.min, self.max), "bounds".to_string());
            return;
        };
        let stabilized = self.stabilize(now, want, current);
        let limited = self.limit(stabilized, current);
        let target = limited.clamp(self.min, self.max);
        let why = format!(
            "{} {value:.3}, recommends {want}",
            self.metric_name().unwrap_or("metric")
        );
        self.apply(ctx, target, why);
    }

    /// HPA's scale-down stabilisation: the highest recommendation within the window.
    fn stabilize(&mut self, now: SimTime, want: u32, current: u32) -> u32 {
        let horizon = self.cfg.scale_down_stabilization;
        while let Some(&(t, _)) = self.recommendations.front()
            && now.since(t) >= horizon
        {
            self.recommendations.pop_front();
        }
        self.recommendations.push_back((now, want));
        if want >= current {
            return want;
        }
        let highest = self
            .recommendations
            .iter()
            .map(|r| r.1)
            .max()
            .unwrap_or(want);
        highest.min(current)
    }

    /// The step limit (or HPA's default rates) on one decision.
    fn limit(&self, want: u32, current: u32) -> u32 {
        match self.cfg.step {
            Some(s) if want > current => want.min(current.saturating_add(s)),
            Some(s) => want.max(current.saturating_sub(s)),
            None if want > current => want.min((current * 2).max(current + 4)),
            None => want,
        }
    }

    fn metric_name(&self) -> Option<&'static str> {
        Some(match self.cfg.metric.as_ref()? {
            Metric::Utilization { .. } => "utilisation",
            Metric::QueueLength { .. } => "queue length",
            Metric::P99 { .. } => "p99 (s)",
        })
    }

    /// Move the pool to `target` active replicas, unless it is there or cooling down.
    fn apply(&mut self, ctx: &mut Ctx<'_>, target: u32, why: String) {
        let now = ctx.now();
        let current = lock(&self.pool).count(Phase::active);
        self.desired.set(now, f64::from(target));
        self.refill(ctx);
        if target == current {
            return;
        }
        if self
            .last_change
            .is_some_and(|t| now < t.after(self.cfg.cooldown))
        {
            return;
        }
        let got = if target > current {
            self.scale_up(ctx, target - current)
        } else {
            self.scale_down(now, current - target)
        };
        if got == 0 {
            return;
        }
        let after = if target > current {
            current + got
        } else {
            current - got
        };
        self.last_change = Some(now);
        self.decisions += 1;
        self.active.set(now, f64::from(after));
        self.events
            .record(now, format!("scale {current} → {after} replicas ({why})"));
    }

    /// Start `n` stopped replicas, from the warm pool first; how many started.
    fn scale_up(&mut self, ctx: &mut Ctx<'_>, n: u32) -> u32 {
        let now = ctx.now();
        let mut p = lock(&self.pool);
        let mut stopped: Vec<usize> = (0..p.len())
            .filter(|&r| p.phase(r) == Phase::Stopped)
            .collect();
        // Warm replicas first, then by index.
        stopped.sort_by_key(|&r| (!p.is_warm(r), r));
        let chosen: Vec<usize> = stopped.into_iter().take(n as usize).collect();
        for &r in &chosen {
            let delay = if p.is_warm(r) {
                self.cfg.warm_start
            } else {
                self.cfg.provisioning
            };
            p.set_warm(r, false);
            self.refill_at[r] = None;
            p.set_phase(r, Phase::Provisioning, now);
            let at = now.after(delay);
            self.ready_at[r] = Some(at);
            ctx.set_timer(delay, TAG_READY | r as u64);
        }
        chosen.len() as u32
    }

    /// Take `n` replicas out: those not ready yet first, then the newest; how many.
    fn scale_down(&mut self, now: SimTime, n: u32) -> u32 {
        let mut p = lock(&self.pool);
        let rank = |phase: Phase| match phase {
            Phase::Provisioning => 0,
            Phase::Warming => 1,
            _ => 2,
        };
        let mut active: Vec<usize> = (0..p.len()).filter(|&r| p.phase(r).active()).collect();
        active.sort_by_key(|&r| (rank(p.phase(r)), std::cmp::Reverse(r)));
        let chosen: Vec<usize> = active.into_iter().take(n as usize).collect();
        for &r in &chosen {
            self.ready_at[r] = None;
            self.warm_at[r] = None;
            if p.phase(r) == Phase::Provisioning {
                p.set_phase(r, Phase::Stopped, now);
            } else {
                p.drain(r, now);
            }
        }
        chosen.len() as u32
    }

    /// Keep the warm pool full: initialise stopped replicas until it is.
    fn refill(&mut self, ctx: &mut Ctx<'_>) {
        let want = self.cfg.warm_pool as usize;
        if want == 0 {
            return;
        }
        let p = lock(&self.pool);
        let stopped = |r: &usize| p.phase(*r) == Phase::Stopped;
        let warm = (0..p.len())
            .filter(|r| stopped(r) && (p.is_warm(*r) || self.refill_at[*r].is_some()))
            .count();
        let cold: Vec<usize> = (0..p.len())
            .filter(|r| stopped(r) && !p.is_warm(*r) && self.refill_at[*r].is_none())
            .take(want.saturating_sub(warm))
            .collect();
        drop(p);
        for r in cold {
            self.refill_at[r] = Some(ctx.now().after(self.cfg.provisioning));
            ctx.set_timer(self.cfg.provisioning, TAG_REFILL | r as u64);
        }
    }

    /// A replica's cold start, warm-up or warm-pool refill ended (if it is still due now).
    fn replica_timer(&mut self, ctx: &mut Ctx<'_>, kind: u64, r: usize) {
        let now = ctx.now();
        let mut p = lock(&self.pool);
        match kind {
            TAG_READY if self.ready_at[r] == Some(now) => {
                self.ready_at[r] = None;
                let until = now.after(self.cfg.warmup);
                p.ready(r, now, until, self.cfg.cold_capacity);
                if until > now {
                    self.warm_at[r] = Some(until);
                    ctx.set_timer(self.cfg.warmup, TAG_WARM | r as u64);
                }
            }
            TAG_WARM if self.warm_at[r] == Some(now) => {
                self.warm_at[r] = None;
                p.set_phase(r, Phase::Serving, now);
            }
            TAG_REFILL if self.refill_at[r] == Some(now) => {
                self.refill_at[r] = None;
                if p.phase(r) == Phase::Stopped {
                    p.set_warm(r, true);
                }
            }
            _ => {}
        }
    }

    /// A scheduled change of the bounds: apply it now.
    fn scheduled(&mut self, ctx: &mut Ctx<'_>, i: usize) {
        let Some(s) = self.cfg.schedule.get(i).cloned() else {
            return;
        };
        // Never beyond the pool's size or the configured bounds' reach.
        let size = lock(&self.pool).len() as u32;
        if let Some(max) = s.max {
            self.max = max.min(size).max(1);
        }
        if let Some(min) = s.min {
            self.min = min.min(size).max(1);
        }
        self.min = self.min.min(self.max);
        let current = lock(&self.pool).count(Phase::active);
        let target = if self.cfg.metric.is_none() {
            self.min
        } else {
            current.clamp(self.min, self.max)
        };
        let why = format!("schedule: min {}, max {}", self.min, self.max);
        self.events.record(ctx.now(), why.clone());
        self.last_change = None;
        self.apply(ctx, target, why);
    }
}

impl Node<Builtin> for Autoscaler {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer(self.cfg.sync, TAG_SYNC);
        for (i, s) in self.cfg.schedule.iter().enumerate() {
            ctx.set_timer(s.at, TAG_SCHEDULE | i as u64);
        }
        self.refill(ctx);
    }

    fn on_message(&mut self, _ctx: &mut Ctx<'_>, _from: NodeId, _msg: Message) {}

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        if tag == TAG_SYNC {
            self.evaluate(ctx);
            ctx.set_timer(self.cfg.sync, TAG_SYNC);
            return;
        }
        let index = (tag & !TAG_KIND) as usize;
        match tag & TAG_KIND {
            TAG_SCHEDULE => self.scheduled(ctx, index),
            kind => self.replica_timer(ctx, kind, index),
        }
    }

    fn on_restart(&mut self, ctx: &mut Ctx<'_>) {
        // The control plane's state is durable (kept in the cluster's store) and replicas
        // start without it: a restarted autoscaler re-arms what was due, late if it is past.
        let now = ctx.now();
        ctx.set_timer(self.cfg.sync, TAG_SYNC);
        for (i, s) in self.cfg.schedule.iter().enumerate() {
            if SimTime(s.at.0) > now {
                ctx.set_timer(SimTime(s.at.0).since(now), TAG_SCHEDULE | i as u64);
            }
        }
        let due = [
            (TAG_READY, &mut self.ready_at),
            (TAG_WARM, &mut self.warm_at),
            (TAG_REFILL, &mut self.refill_at),
        ];
        for (kind, times) in due {
            for (r, t) in times.iter_mut().enumerate() {
                if let Some(at) = t {
                    *at = (*at).max(now);
                    ctx.set_timer(at.since(now), kind | r as u64);
                }
            }
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        self.events
            .record(now, "autoscaler crashed: no decisions until it restarts");
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let mut counters = BTreeMap::new();
        counters.insert("scaling_decisions".to_string(), self.decisions as f64);
        counters.insert(
            "state_changes_dropped".to_string(),
            self.events.dropped() as f64,
        );
        let mut series = vec![
            self.active.finish(
                "replicas_active",
                "Replicas the autoscaler runs (starting or ready)",
                "replicas",
                now,
            ),
            self.desired.finish(
                "replicas_desired",
                "Replicas the autoscaler wants",
                "replicas",
                now,
            ),
        ];
        if let Some(name) = self.metric_name() {
            series.push(self.measured.finish(
                "scaling_metric",
                &format!("Scaling metric ({name}) at each evaluation"),
                "value",
                now,
            ));
        }
        Some(NodeStats {
            counters,
            series,
            events: self.events.take(),
            ..NodeStats::default()
        })
    }
}
