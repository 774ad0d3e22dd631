//! `Deploy`: ships a new version to a server pool while it runs, rolling (as a Kubernetes
//! Deployment), blue-green or canary (as Argo Rollouts and Flagger), with an analysis that
//! rolls a bad release back.
//!
//! ```text
//!  rolling:    start ─▶ new replicas start (at most `max_surge` above `replicas`), old ones
//!              drain (at most `max_unavailable` below) ─▶ each batch ready ─(analysis passed,
//!              when set)─▶ next batch ... ─▶ completed; a failed analysis rolls back the same way
//!  blue-green: start ─▶ a full new set starts ─▶ ready + `switch_after` ─▶ all traffic to it
//!              ─▶ analysis over `scale_down_delay` ─▶ old set drained: completed
//!              (a failed analysis switches back at once, while the old set still runs)
//!  canary:     start ─▶ canary replicas start ─▶ ready ─▶ weight steps[0] for `pause`
//!              ─▶ steps[1] ... ─▶ promoting: the stable replicas are replaced by the
//!              rolling rules (`max_surge`, `max_unavailable`), analysed meanwhile ─▶ promoted
//!              (a failed analysis sends all traffic back to the stable replicas at once)
//!  analysis:   every `window`: the new version's answers at the balancers in that window;
//!              a check fails when their error rate > `max_error_rate` or their p99 >
//!              `max_p99`; more than `failure_limit` failed checks roll back
//! ```
//! The old version is the pool's own configuration; the new one fails `error_rate` of the
//! executions it serves (answered as `server_error`) and its service times are multiplied by
//! `latency_factor`. A canary's and a blue-green switch's weight is a traffic fraction at the
//! balancers (as with a traffic router), whatever the replica counts.
//!
//! A new version may crash-loop (`crash_loop`): this controller then also plays the kubelet.
//! ```text
//!  ready ─(after)─▶ crash: restarted at once, ready ─(after)─▶ crash: back-off, out of
//!  rotation ─(10 s)─▶ restarted ─(after)─▶ crash ─(20 s)─▶ ... 40 s, 80 s, 160 s, 300 s ...
//!  (after 10 min up, the next crash is a first one again: restarted at once)
//! ```
//! A rolling update counts only first readiness and retirements as progress: a stalled one
//! (its new replicas in back-off) is marked failed after `progress_deadline`; blue-green
//! switches only to a set whose replicas are all in rotation.

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::ops::pool::{Behaviour, Phase, Pool, lock, pool_name};
use crate::contract::build::BuildCtx;
use crate::contract::metrics::{EventLog, NodeStats, Series, SeriesKind};
use crate::contract::state_series::StateSeries;
use crate::contract::validate::{Path, Validator};
use crate::sim::dist::Dist;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How the new version behaves next to the pool's own configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionConfig {
    /// Fraction of the executions it serves that it answers with an error, `server_error`
    /// (fraction, [0, 1]). Default 0.
    #[serde(default)]
    pub error_rate: f64,
    /// Its service times are multiplied by this (factor, > 0). Default 1.
    #[serde(default = "one_f")]
    pub latency_factor: f64,
    /// Its replicas crash and are restarted with Kubernetes' CrashLoopBackOff:
    /// `Some((after: Constant("20s")))`. Default `None`: they never crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_loop: Option<CrashLoopConfig>,
}

impl Default for VersionConfig {
    fn default() -> Self {
        VersionConfig {
            error_rate: 0.0,
            latency_factor: 1.0,
            crash_loop: None,
        }
    }
}

/// A release whose process crashes a while after it starts serving, over and over.
///
/// A crash loses the replica's queued and in-service requests (their callers time out, as on
/// any crash) and takes it out of rotation; the kubelet restarts it at once after its first
/// crash, then after a back-off of 10 s doubled at each restart up to 5 min, and treats a
/// crash after 10 min without one as a first crash again (Kubernetes' pod lifecycle: "Initial
/// crash: Kubernetes attempts an immediate restart"; then an "exponential back-off delay (10s,
/// 20s, 40s, …), that is capped at five minutes. Once a container has executed for 10 minutes
/// without any problems, the kubelet resets the restart backoff timer"; kubelet's `doBackOff`
/// finds no back-off entry at the first crash, kubernetes/kubernetes#133472). A restarted replica is ready at once (its image
/// is on the node; a readiness probe's delay is not modelled).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrashLoopConfig {
    /// How long a replica of the new version serves before it crashes, counted from when it
    /// became ready or was restarted (a distribution of durations, drawn per start from the
    /// deploy's own random stream: `Constant("20s")`, `Exponential(mean: "30s")`). Required.
    pub after: Dist,
}

/// The kubelet's first restart back-off (after the second crash: the first restarts at once),
/// its cap, and how long a container must run without a crash for the streak to start again
/// (Kubernetes' pod lifecycle docs).
pub const BACKOFF_FIRST: SimDuration = SimDuration::from_secs(10);
/// The longest restart back-off (5 min).
pub const BACKOFF_CAP: SimDuration = SimDuration::from_secs(300);
/// Running this long (10 min) without a crash resets the back-off.
pub const BACKOFF_RESET: SimDuration = SimDuration::from_secs(600);

/// The back-off before the restart after crash number `k` (from 0) of a streak: none after
/// the first, then 10 s × 2^(k − 1), at most 5 min.
pub fn backoff(k: u32) -> SimDuration {
    if k == 0 {
        return SimDuration::ZERO;
    }
    let doubled = BACKOFF_FIRST.0.saturating_mul(1u64 << (k - 1).min(20));
    SimDuration(doubled.min(BACKOFF_CAP.0))
}

/// How the new version replaces the old one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum Strategy {
    /// Replace replicas a few at a time, as a Kubernetes Deployment's RollingUpdate:
    /// `Rolling(max_surge: Some(1), max_unavailable: Some(0))`. With `analysis`, each batch
    /// waits until the previous one is ready and one analysis window has passed (health gating).
    Rolling {
        /// Replicas started above `replicas` at once (count). Default `None`: 25% of
        /// `replicas`, rounded up, as Kubernetes.
        #[serde(default)]
        max_surge: Option<u32>,
        /// Replicas in rotation allowed below `replicas` (count). Default `None`: 25% of
        /// `replicas`, rounded down, as Kubernetes.
        #[serde(default)]
        max_unavailable: Option<u32>,
        /// A rollout that makes no progress (no new replica ready for the first time, no old
        /// one retired) for this long is marked failed, as Kubernetes' ProgressDeadlineExceeded;
        /// it goes on trying, and a failed analysis still rolls it back (duration, > 0).
        /// Default "600s", Kubernetes' progressDeadlineSeconds.
        #[serde(
            default = "default_progress_deadline",
            skip_serializing_if = "is_default_progress_deadline"
        )]
        progress_deadline: SimDuration,
    },
    /// A full second set at the new version; all traffic switched to it at once:
    /// `BlueGreen(switch_after: "0s", scale_down_delay: "30s")`.
    BlueGreen {
        /// After the new set is ready, traffic switches this much later (duration). Default "0s".
        #[serde(default)]
        switch_after: SimDuration,
        /// The old set keeps running this long after the switch, so a rollback is a switch
        /// back (duration). Default "30s", Argo Rollouts' scaleDownDelaySeconds.
        #[serde(default = "default_scale_down_delay")]
        scale_down_delay: SimDuration,
    },
    /// Canary replicas get a growing fraction of the traffic:
    /// `Canary(steps: [0.05, 0.2, 0.5, 1.0], pause: "60s")`.
    Canary {
        /// Traffic fractions to the new version, one per step (fractions in (0, 1],
        /// increasing). Default [0.05, 0.2, 0.5, 1.0].
        #[serde(default = "default_steps")]
        steps: Vec<f64>,
        /// How long each step lasts (duration, a multiple of the analysis `window`). Default "60s".
        #[serde(default = "default_pause")]
        pause: SimDuration,
        /// Canary replicas (count). Default `None`: `replicas`, as Flagger runs the canary at
        /// the primary's size.
        #[serde(default)]
        canary_replicas: Option<u32>,
        /// At promotion, replicas started above `replicas` at once while the stable replicas
        /// are replaced (count). Default `None`: 25% of `replicas`, rounded up, as Argo Rollouts'
        /// canary `maxSurge`. The pool's spare replicas also bound it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_surge: Option<u32>,
        /// At promotion, replicas in rotation allowed below `replicas` (count). Default `None`:
        /// 25% of `replicas`, rounded down, as Argo Rollouts' canary `maxUnavailable`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_unavailable: Option<u32>,
    },
}

/// Checks of the new version's answers that roll a bad release back, as an Argo Rollouts
/// AnalysisRun or Flagger's metric checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Each check measures the new version's answers over this long (duration, > 0). Default "10s".
    #[serde(default = "default_window")]
    pub window: SimDuration,
    /// A check fails above this error rate (fraction, [0, 1)). Default 0.05.
    #[serde(default = "default_max_error_rate")]
    pub max_error_rate: f64,
    /// A check also fails above this p99 round trip at the balancers (duration). Default
    /// `None`: latency not checked.
    #[serde(default)]
    pub max_p99: Option<SimDuration>,
    /// Failed checks tolerated; one more rolls back (count). Default 0, Argo's failureLimit.
    #[serde(default)]
    pub failure_limit: u32,
    /// A check with fewer answers is inconclusive: neither passes nor fails (count). Default 10.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// A check also fails when the new version's replicas crashed more than this many times
    /// since the last check (or the deploy's start), as a restart-count query in an Argo
    /// AnalysisTemplate (count); a crash fails a check even with too few answers to judge
    /// their errors. Default `None`: crashes not checked (only the requests they lose count,
    /// as errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_crashes: Option<u64>,
}

/// Ships a new version to a `Server` pool: rolling, blue-green or canary, with an analysis
/// that rolls a bad release back (see DEPLOY STRATEGIES and DEPLOY VERSION AND ANALYSIS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Deploy", deny_unknown_fields)]
pub struct DeployConfig {
    /// The `Server` pool it deploys to, by its declared name. The pool's `replicas` is its
    /// largest size, and must hold what the strategy runs at once: `replicas` plus the surge,
    /// the canary replicas, or a second full set for blue-green. Only load balancers may name it.
    pub pool: String,
    /// Replicas serving the old version before the deploy (count, >= 1).
    pub replicas: u32,
    /// When the deploy starts (duration from the start of the run).
    pub start: SimDuration,
    /// How the new version behaves: `(error_rate: 0.2, latency_factor: 1.0)`. Default: as the old.
    #[serde(default)]
    pub version: VersionConfig,
    /// `Rolling(..)`, `BlueGreen(..)` or `Canary(..)`.
    pub strategy: Strategy,
    /// From starting a new replica until it is ready (duration). Default "10s".
    #[serde(default = "default_provisioning")]
    pub provisioning: SimDuration,
    /// The checks that roll back a bad release: `Some((window: "10s", max_error_rate: 0.05))`.
    /// Default `None`: no checks (a rolling update proceeds as replicas become ready, a
    /// blue-green or canary deploy as its times say).
    #[serde(default)]
    pub analysis: Option<AnalysisConfig>,
}

fn one_f() -> f64 {
    1.0
}
fn default_scale_down_delay() -> SimDuration {
    SimDuration::from_secs(30)
}
fn default_steps() -> Vec<f64> {
    vec![0.05, 0.2, 0.5, 1.0]
}
fn default_pause() -> SimDuration {
    SimDuration::from_secs(60)
}
fn default_window() -> SimDuration {
    SimDuration::from_secs(10)
}
fn default_max_error_rate() -> f64 {
    0.05
}
fn default_min_requests() -> u64 {
    10
}
fn default_provisioning() -> SimDuration {
    SimDuration::from_secs(10)
}
fn default_progress_deadline() -> SimDuration {
    SimDuration::from_secs(600)
}
fn is_default_progress_deadline(d: &SimDuration) -> bool {
    *d == default_progress_deadline()
}

crate::settable!(DeployConfig {
    pool,
    replicas,
    start,
    version,
    strategy,
    provisioning,
    analysis
});

/// State changes kept per deploy.
const EVENT_CAP: usize = 10_000;

impl DeployConfig {
    /// Check values the types cannot express (the pool itself is checked in the wiring).
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.replicas == 0 {
            v.error(
                &at.field("replicas"),
                "a deploy to no replicas",
                "expected a count >= 1",
            );
        }
        let version = at.field("version");
        let e = self.version.error_rate;
        if !(0.0..=1.0).contains(&e) {
            v.error(
                &version.field("error_rate"),
                format!("an error rate of {e}"),
                "expected a fraction in [0, 1]",
            );
        }
        let f = self.version.latency_factor;
        if !(f > 0.0 && f.is_finite()) {
            v.error(
                &version.field("latency_factor"),
                format!("a latency factor of {f}"),
                "expected a positive factor",
            );
        }
        if let Some(c) = &self.version.crash_loop {
            let after = version.field("crash_loop").field("after");
            v.check_dist(&after, &c.after);
            if c.after == Dist::Constant(SimDuration::ZERO) {
                v.error(
                    &after,
                    "a replica that crashes the instant it is ready",
                    "expected a positive duration",
                );
            }
        }
        self.validate_strategy(v, &at.field("strategy"));
        if let Some(a) = &self.analysis {
            validate_analysis(a, v, &at.field("analysis"));
        }
    }

    fn validate_strategy(&self, v: &mut Validator, at: &Path) {
        match &self.strategy {
            Strategy::Rolling {
                progress_deadline, ..
            } => {
                self.validate_limits(v, at);
                if *progress_deadline == SimDuration::ZERO {
                    v.error(
                        &at.field("progress_deadline"),
                        "a zero progress deadline",
                        "expected a positive duration",
                    );
                }
            }
            Strategy::BlueGreen { .. } => {}
            Strategy::Canary {
                steps,
                pause,
                canary_replicas,
                ..
            } => {
                self.validate_canary(v, at, steps, *pause, *canary_replicas);
                self.validate_limits(v, at);
            }
        }
    }

    fn validate_limits(&self, v: &mut Validator, at: &Path) {
        let (surge, unavailable) = self.rolling_limits();
        if surge == 0 && unavailable == 0 {
            v.error(
                at,
                "max_surge and max_unavailable both 0: no replica can ever be replaced",
                "expected at least one of them >= 1",
            );
        }
    }

    fn validate_canary(
        &self,
        v: &mut Validator,
        at: &Path,
        steps: &[f64],
        pause: SimDuration,
        canary_replicas: Option<u32>,
    ) {
        if steps.is_empty() {
            v.error(
                &at.field("steps"),
                "no steps",
                "expected at least one traffic fraction",
            );
        }
        for (i, w) in steps.iter().enumerate() {
            if !(*w > 0.0 && *w <= 1.0) {
                v.error(
                    &at.field("steps").index(i),
                    format!("a traffic fraction of {w}"),
                    "expected a fraction in (0, 1]",
                );
            } else if i > 0 && *w <= steps[i - 1] {
                v.error(
                    &at.field("steps").index(i),
                    format!("{w} after {}", steps[i - 1]),
                    "expected steps increasing",
                );
            }
        }
        if pause == SimDuration::ZERO {
            v.error(
                &at.field("pause"),
                "a zero pause",
                "expected a positive duration",
            );
        } else if let Some(a) = &self.analysis
            && a.window > SimDuration::ZERO
            && !pause.0.is_multiple_of(a.window.0)
        {
            v.error(
                &at.field("pause"),
                format!("{pause} with an analysis window of {}", a.window),
                "expected a multiple of the analysis `window`",
            );
        }
        if canary_replicas == Some(0) {
            v.error(
                &at.field("canary_replicas"),
                "no canary replicas",
                "expected a count >= 1",
            );
        }
    }

    /// (max surge, max unavailable) of a rolling update or a canary's promotion, with
    /// Kubernetes' (and Argo Rollouts') 25% defaults.
    pub fn rolling_limits(&self) -> (u32, u32) {
        let (max_surge, max_unavailable) = match &self.strategy {
            Strategy::Rolling {
                max_surge,
                max_unavailable,
                ..
            }
            | Strategy::Canary {
                max_surge,
                max_unavailable,
                ..
            } => (max_surge, max_unavailable),
            Strategy::BlueGreen { .. } => return (0, 0),
        };
        let n = self.replicas;
        (
            max_surge.unwrap_or(n.div_ceil(4)),
            max_unavailable.unwrap_or(n / 4),
        )
    }

    /// Replicas the strategy runs at once, at most: what the pool must hold.
    pub fn needs(&self) -> u64 {
        let n = u64::from(self.replicas);
        match &self.strategy {
            Strategy::Rolling { .. } => n + u64::from(self.rolling_limits().0),
            Strategy::BlueGreen { .. } => 2 * n,
            Strategy::Canary {
                canary_replicas, ..
            } => n + u64::from(canary_replicas.unwrap_or(self.replicas)),
        }
    }
}

fn validate_analysis(a: &AnalysisConfig, v: &mut Validator, at: &Path) {
    if a.window == SimDuration::ZERO {
        v.error(
            &at.field("window"),
            "a zero analysis window",
            "expected a positive duration",
        );
    }
    if !(0.0..1.0).contains(&a.max_error_rate) {
        v.error(
            &at.field("max_error_rate"),
            format!("an error rate of {}", a.max_error_rate),
            "expected a fraction in [0, 1)",
        );
    }
    if a.max_p99 == Some(SimDuration::ZERO) {
        v.error(
            &at.field("max_p99"),
            "a zero latency bound",
            "expected a positive duration",
        );
    }
}

/// The states of a deploy, as its timeline names them.
pub const STATES: [&str; 5] = [
    "not started",
    "progressing",
    "rolling back",
    "completed",
    "rolled back",
];
const NOT_STARTED: usize = 0;
const PROGRESSING: usize = 1;
const ROLLING_BACK: usize = 2;
const COMPLETED: usize = 3;
const ROLLED_BACK: usize = 4;
const FAILED: usize = 5;

/// The states of a deploy whose rollout passed its progress deadline: one more.
pub const STATES_FAILED: [&str; 6] = [
    "not started",
    "progressing",
    "rolling back",
    "completed",
    "rolled back",
    "failed",
];

/// Timer tags: the start, the analysis or step tick, a retry of a stalled rolling step, and
/// per replica (low bits) its cold start's end.
const TAG_START: u64 = 1 << 60;
const TAG_TICK: u64 = 2 << 60;
const TAG_RECONCILE: u64 = 3 << 60;
const TAG_READY: u64 = 4 << 60;
const TAG_CRASH: u64 = 5 << 60;
const TAG_RESTART: u64 = 6 << 60;
const TAG_DEADLINE: u64 = 7 << 60;
const TAG_KIND: u64 = 15 << 60;

/// How long a rolling step waits for a draining replica to stop before it looks again (a
/// pool of exactly `replicas + max_surge` reuses a retired replica once its last request is
/// answered; a larger one starts a new replica at once, as Kubernetes starts pods while others
/// terminate).
const STALL_RETRY: SimDuration = SimDuration(10_000_000);

/// Where a strategy is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stage {
    /// Waiting for the new replicas to be ready.
    Starting,
    /// Canary step `i` (from 0), since when.
    Step(usize, SimTime),
    /// Blue-green: ready, switching at a set time.
    Waiting,
    /// Blue-green: switched, since when.
    Switched(SimTime),
    /// Rolling: replacing replicas towards `version`; `gated` while a check is pending;
    /// `promoting` when it is a canary's promotion (analysed every window, not gated).
    Rolling {
        version: u8,
        gated: bool,
        promoting: bool,
    },
    /// Nothing left to do.
    Done,
}

/// One deploy controller.
pub struct Deploy {
    cfg: DeployConfig,
    pool: Arc<Mutex<Pool>>,
    stage: Stage,
    /// Per replica: when its cold start ends.
    ready_at: Vec<Option<SimTime>>,
    /// Per replica of a crash-looping version: when it crashes next, when it restarts, the
    /// crashes in its current streak and since when it has been up.
    crash_at: Vec<Option<SimTime>>,
    restart_at: Vec<Option<SimTime>>,
    streak: Vec<u32>,
    up_since: Vec<SimTime>,
    restarts: u64,
    first_crash: Option<SimTime>,
    /// The progress deadline's timer, while a rollout runs.
    deadline: Option<TimerId>,
    deadline_passed: bool,
    /// Blue-green: the switch is due, waiting for the whole new set to be in rotation.
    switch_due: bool,
    /// Canary: this step's pause is over, waiting for the canary replicas to be in rotation.
    step_waits: bool,
    /// Replicas of the new set (canary or green), by index.
    new_set: Vec<usize>,
    failed_checks: u32,
    started_at: Option<SimTime>,
    rolled_back_at: Option<SimTime>,
    state: StateSeries,
    weight: Series,
    new_in_rotation: Series,
    events: EventLog,
}

impl Deploy {
    /// A deploy built from its configuration; it sets the pool's starting size.
    pub fn new(cfg: &DeployConfig, b: &BuildCtx<'_>) -> Deploy {
        let ids = b.resolve(&cfg.pool);
        let names: Vec<String> = ids.iter().map(|&id| b.node_name(id).to_string()).collect();
        let n = names.len();
        let window = b.window();
        let pool = b.observer(&pool_name(&cfg.pool), || Pool::new(names, window));
        {
            let mut p = lock(&pool);
            p.start_with((cfg.replicas as usize).min(n), 0, 1);
            let version = Behaviour {
                error_rate: cfg.version.error_rate,
                latency_factor: cfg.version.latency_factor,
                crash_loop: cfg.version.crash_loop.is_some(),
            };
            p.set_behaviour(version, b.measure_from());
        }
        let mut weight = Series::new(SeriesKind::Level, window);
        weight.set(SimTime::ZERO, 0.0);
        let mut new_in_rotation = Series::new(SeriesKind::Level, window);
        new_in_rotation.set(SimTime::ZERO, 0.0);
        Deploy {
            cfg: cfg.clone(),
            pool,
            stage: Stage::Starting,
            ready_at: vec![None; n],
            crash_at: vec![None; n],
            restart_at: vec![None; n],
            streak: vec![0; n],
            up_since: vec![SimTime::ZERO; n],
            restarts: 0,
            first_crash: None,
            deadline: None,
            deadline_passed: false,
            switch_due: false,
            step_waits: false,
            new_set: Vec::new(),
            failed_checks: 0,
            started_at: None,
            rolled_back_at: None,
            state: StateSeries::starting(&STATES, window, NOT_STARTED),
            weight,
            new_in_rotation,
            events: EventLog::new(EVENT_CAP),
        }
    }

    fn replicas(&self) -> usize {
        self.cfg.replicas as usize
    }

    /// The deploy starts: the new replicas start.
    fn begin(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        self.started_at = Some(now);
        self.state.set(now, PROGRESSING);
        let n = self.replicas();
        let len = lock(&self.pool).len();
        match self.cfg.strategy.clone() {
            Strategy::Rolling { .. } => {
                self.events.record(now, "rolling update started");
                self.stage = Stage::Rolling {
                    version: 1,
                    gated: false,
                    promoting: false,
                };
                self.progressed(ctx);
                self.reconcile(ctx);
            }
            Strategy::BlueGreen { .. } => {
                self.events
                    .record(now, format!("blue-green: {n} new replicas starting"));
                self.launch_set(ctx, (n..(2 * n).min(len)).collect());
            }
            Strategy::Canary {
                canary_replicas, ..
            } => {
                let c = canary_replicas.map_or(n, |c| c as usize);
                self.events
                    .record(now, format!("canary: {c} canary replicas starting"));
                self.launch_set(ctx, (n..(n + c).min(len)).collect());
            }
        }
    }

    /// Start the new set (canary or green) with no traffic until the strategy sends it some.
    fn launch_set(&mut self, ctx: &mut Ctx<'_>, set: Vec<usize>) {
        self.set_weight(ctx.now(), Some(0.0));
        for &r in &set {
            self.launch(ctx, r, 1);
        }
        self.new_set = set;
    }

    /// Start replica `r` at `version`: ready after the cold start.
    fn launch(&mut self, ctx: &mut Ctx<'_>, r: usize, version: u8) {
        let now = ctx.now();
        let mut p = lock(&self.pool);
        p.set_version(r, version);
        p.set_phase(r, Phase::Provisioning, now);
        self.ready_at[r] = Some(now.after(self.cfg.provisioning));
        ctx.set_timer(self.cfg.provisioning, TAG_READY | r as u64);
    }

    /// Take replica `r` out: a replica not ready yet stops, one in rotation drains.
    fn retire(&mut self, r: usize, now: SimTime) {
        self.ready_at[r] = None;
        self.crash_at[r] = None;
        self.restart_at[r] = None;
        let mut p = lock(&self.pool);
        if matches!(p.phase(r), Phase::Provisioning | Phase::BackOff) {
            p.set_phase(r, Phase::Stopped, now);
        } else if p.phase(r).in_rotation() {
            p.drain(r, now);
        }
    }

    fn set_weight(&mut self, now: SimTime, w: Option<f64>) {
        lock(&self.pool).set_split(w);
        self.weight.set(now, w.unwrap_or(0.0));
    }

    /// Count the new version's replicas in rotation, for the series.
    fn count_new(&mut self, now: SimTime) {
        let p = lock(&self.pool);
        let n = (0..p.len())
            .filter(|&r| p.version(r) == 1 && p.phase(r).in_rotation())
            .count();
        drop(p);
        self.new_in_rotation.set(now, n as f64);
    }

    /// Replica `r`'s cold start ended.
    fn ready(&mut self, ctx: &mut Ctx<'_>, r: usize) {
        let now = ctx.now();
        if self.ready_at[r] != Some(now) {
            return;
        }
        self.ready_at[r] = None;
        lock(&self.pool).ready(r, now, now, 1.0);
        self.up(ctx, r);
        self.count_new(now);
        self.progressed(ctx);
        self.went_in_rotation(ctx);
    }

    /// A replica entered rotation (ready, or restarted after a crash): the strategy moves on.
    fn went_in_rotation(&mut self, ctx: &mut Ctx<'_>) {
        match self.stage {
            Stage::Starting if self.new_set.iter().all(|&r| self.ready_at[r].is_none()) => {
                self.set_ready(ctx)
            }
            Stage::Waiting if self.switch_due && self.new_set_in_rotation() => self.switch(ctx),
            Stage::Rolling {
                version, promoting, ..
            } => {
                if version == 1 && self.cfg.analysis.is_some() && !self.gated() && !promoting {
                    // Health gating: the next batch waits for one check of this one.
                    self.stage = Stage::Rolling {
                        version,
                        gated: true,
                        promoting,
                    };
                    lock(&self.pool).restart_window();
                    let w = self.window();
                    ctx.set_timer(w, TAG_TICK);
                } else {
                    self.reconcile(ctx);
                }
            }
            _ => {}
        }
    }

    /// Is every replica of the new set in rotation?
    fn new_set_in_rotation(&self) -> bool {
        let p = lock(&self.pool);
        self.new_set.iter().all(|&r| p.phase(r).in_rotation())
    }

    /// Replica `r` is up (ready or restarted) at `now`: a crash-looping version's replica
    /// will crash `after` from now.
    fn up(&mut self, ctx: &mut Ctx<'_>, r: usize) {
        let Some(c) = &self.cfg.version.crash_loop else {
            return;
        };
        if lock(&self.pool).version(r) != 1 {
            return;
        }
        let after = c.after.sample(ctx.rng());
        let now = ctx.now();
        self.up_since[r] = now;
        self.crash_at[r] = Some(now.after(after));
        ctx.set_timer(after, TAG_CRASH | r as u64);
    }

    /// Replica `r` crashes (if it is still due to): out of rotation, restarted after the
    /// back-off (none after a streak's first crash, then 10 s doubling to 5 min; a streak
    /// starts again after 10 min up).
    fn crash(&mut self, ctx: &mut Ctx<'_>, r: usize) {
        let now = ctx.now();
        if self.crash_at[r] != Some(now) {
            return;
        }
        self.crash_at[r] = None;
        let mut p = lock(&self.pool);
        if !p.phase(r).in_rotation() {
            return;
        }
        p.crash(r, now);
        let name = p.name(r).to_string();
        drop(p);
        if now.since(self.up_since[r]) >= BACKOFF_RESET {
            self.streak[r] = 0;
        }
        let delay = backoff(self.streak[r]);
        self.streak[r] += 1;
        self.first_crash.get_or_insert(now);
        self.restart_at[r] = Some(now.after(delay));
        ctx.set_timer(delay, TAG_RESTART | r as u64);
        self.events.record(
            now,
            if delay == SimDuration::ZERO {
                format!(
                    "{name} crashed (crash {} in a row): restarted at once",
                    self.streak[r]
                )
            } else {
                format!(
                    "{name} crashed (crash {} in a row): back-off {} s",
                    self.streak[r],
                    delay.as_secs_f64()
                )
            },
        );
        self.count_new(now);
    }

    /// Replica `r`'s back-off ended: the kubelet restarts it, ready at once.
    fn restart(&mut self, ctx: &mut Ctx<'_>, r: usize) {
        let now = ctx.now();
        if self.restart_at[r] != Some(now) {
            return;
        }
        self.restart_at[r] = None;
        let mut p = lock(&self.pool);
        if p.phase(r) != Phase::BackOff {
            return;
        }
        p.ready(r, now, now, 1.0);
        drop(p);
        self.restarts += 1;
        self.up(ctx, r);
        self.count_new(now);
        self.went_in_rotation(ctx);
    }

    /// A rollout made progress (started, a new replica ready for the first time, replicas
    /// retired): its progress deadline starts again.
    fn progressed(&mut self, ctx: &mut Ctx<'_>) {
        let Strategy::Rolling {
            progress_deadline, ..
        } = self.cfg.strategy
        else {
            return;
        };
        if let Some(t) = self.deadline.take() {
            ctx.cancel_timer(t);
        }
        if matches!(self.stage, Stage::Rolling { .. }) {
            self.deadline = Some(ctx.set_timer(progress_deadline, TAG_DEADLINE));
        }
    }

    /// No progress for the whole deadline: the rollout is marked failed, and goes on trying.
    fn deadline_passed(&mut self, now: SimTime) {
        self.deadline = None;
        if !matches!(self.stage, Stage::Rolling { .. }) {
            return;
        }
        self.deadline_passed = true;
        self.state.widen(&STATES_FAILED);
        self.state.set(now, FAILED);
        self.events.record(
            now,
            "progress deadline exceeded: the rollout is marked failed (it keeps trying)",
        );
    }

    /// Is a rolling update waiting for a health check?
    fn gated(&self) -> bool {
        matches!(self.stage, Stage::Rolling { gated: true, .. })
    }

    /// The analysis window, or for a canary without analysis its pause.
    fn window(&self) -> SimDuration {
        match (&self.cfg.analysis, &self.cfg.strategy) {
            (Some(a), _) => a.window,
            (None, Strategy::Canary { pause, .. }) => *pause,
            (
                None,
                Strategy::BlueGreen {
                    scale_down_delay, ..
                },
            ) => *scale_down_delay,
            (None, Strategy::Rolling { .. }) => SimDuration::from_secs(1),
        }
    }

    /// The new set is ready: a canary takes its first step, blue-green waits to switch.
    fn set_ready(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        match self.cfg.strategy.clone() {
            Strategy::Canary { .. } => self.step(ctx, 0),
            Strategy::BlueGreen { switch_after, .. } => {
                self.events.record(now, "blue-green: new set ready");
                self.stage = Stage::Waiting;
                ctx.set_timer(switch_after, TAG_TICK);
            }
            Strategy::Rolling { .. } => {}
        }
    }

    /// Canary step `i`: its weight from now on, checked every window.
    fn step(&mut self, ctx: &mut Ctx<'_>, i: usize) {
        let now = ctx.now();
        let Strategy::Canary { steps, .. } = &self.cfg.strategy else {
            return;
        };
        let (w, count) = (steps[i], steps.len());
        self.set_weight(now, Some(w));
        self.events.record(
            now,
            format!(
                "canary step {} of {}: {:.0}% of traffic to the new version",
                i + 1,
                count,
                w * 100.0
            ),
        );
        self.stage = Stage::Step(i, now);
        self.step_waits = false;
        lock(&self.pool).restart_window();
        let tick = self.window();
        ctx.set_timer(tick, TAG_TICK);
    }

    /// The periodic tick: check the analysis, then move on if it is time.
    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        match self.stage {
            Stage::Waiting if self.new_set_in_rotation() => return self.switch(ctx),
            Stage::Waiting => {
                // Not every new replica is in rotation (one crashed): switch when they are.
                self.switch_due = true;
                self.events.record(
                    now,
                    "blue-green: the new set is not all ready; the switch waits",
                );
                return;
            }
            Stage::Done | Stage::Starting => return,
            _ => {}
        }
        if !self.check(now) {
            return self.rollback(ctx);
        }
        match (self.stage, self.cfg.strategy.clone()) {
            (Stage::Step(i, since), Strategy::Canary { steps, pause, .. }) => {
                if now.since(since) < pause {
                    ctx.set_timer(self.window(), TAG_TICK);
                } else if !self.new_set_in_rotation() {
                    // As Argo Rollouts: a step completes only once the canary replicas are
                    // available; checked again every window.
                    if !self.step_waits {
                        self.step_waits = true;
                        self.events.record(
                            now,
                            "canary: not every canary replica is in rotation; the next step waits",
                        );
                    }
                    ctx.set_timer(self.window(), TAG_TICK);
                } else if i + 1 < steps.len() {
                    self.step(ctx, i + 1);
                } else {
                    self.promote(ctx);
                }
            }
            (
                Stage::Switched(since),
                Strategy::BlueGreen {
                    scale_down_delay, ..
                },
            ) => {
                if now.since(since) < scale_down_delay {
                    ctx.set_timer(self.window(), TAG_TICK);
                } else {
                    self.finish_blue_green(now);
                }
            }
            (
                Stage::Rolling {
                    version: 1,
                    promoting: true,
                    ..
                },
                _,
            ) => {
                // A promotion is analysed every window until it ends; replicas becoming
                // ready drive it.
                ctx.set_timer(self.window(), TAG_TICK);
            }
            (
                Stage::Rolling {
                    promoting: true, ..
                },
                _,
            ) => {
                // Rolling a promotion back: nothing left to analyse.
            }
            (Stage::Rolling { version, .. }, _) => {
                self.stage = Stage::Rolling {
                    version,
                    gated: false,
                    promoting: false,
                };
                self.reconcile(ctx);
            }
            _ => {}
        }
    }

    /// One analysis check of the window that just ended; false when it rolls back.
    fn check(&mut self, now: SimTime) -> bool {
        let a = lock(&self.pool).take_analysis();
        if let Some(go_on) = self.check_crashes(now, a.crashes) {
            return go_on;
        }
        self.check_answers(now, a)
    }

    /// A check of the new version's crashes in the window (with `max_crashes`): `None` when
    /// it passes, else whether the rollout goes on.
    fn check_crashes(&mut self, now: SimTime, crashes: u64) -> Option<bool> {
        let cfg = self.cfg.analysis.as_ref()?;
        let max = cfg.max_crashes?;
        if crashes <= max {
            return None;
        }
        self.failed_checks += 1;
        self.events.record(
            now,
            format!(
                "analysis failed (failed checks {}, limit {}): {crashes} crashes of the new \
                 version (at most {max})",
                self.failed_checks, cfg.failure_limit
            ),
        );
        Some(self.failed_checks <= cfg.failure_limit)
    }

    /// The answers part of a check (see [`Deploy::check`]).
    fn check_answers(&mut self, now: SimTime, a: crate::components::ops::pool::Analysis) -> bool {
        let Some(cfg) = &self.cfg.analysis else {
            return true;
        };
        if a.answered < cfg.min_requests.max(1) {
            self.events.record(
                now,
                format!("analysis inconclusive: {} answers", a.answered),
            );
            return true;
        }
        let rate = a.failed as f64 / a.answered as f64;
        let slow = cfg.max_p99.zip(a.p99).is_some_and(|(max, p99)| p99 > max);
        if rate <= cfg.max_error_rate && !slow {
            return true;
        }
        self.failed_checks += 1;
        let p99 = a.p99.map_or("-".to_string(), |p| {
            format!("{:.1} ms", p.as_secs_f64() * 1e3)
        });
        self.events.record(
            now,
            format!(
                "analysis failed (failed checks {}, limit {}): error rate {:.3} of {} answers, \
                 p99 {p99}",
                self.failed_checks, cfg.failure_limit, rate, a.answered
            ),
        );
        self.failed_checks <= cfg.failure_limit
    }

    /// Blue-green: all traffic to the new set.
    fn switch(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        self.set_weight(now, Some(1.0));
        self.events
            .record(now, "blue-green: traffic switched to the new version");
        self.switch_due = false;
        self.stage = Stage::Switched(now);
        lock(&self.pool).restart_window();
        ctx.set_timer(self.window(), TAG_TICK);
    }

    /// Blue-green passed: the old set drains; the new one serves without a split.
    fn finish_blue_green(&mut self, now: SimTime) {
        let old: Vec<usize> = (0..self.replicas()).collect();
        for r in old {
            self.retire(r, now);
        }
        self.set_weight(now, None);
        self.weight.set(now, 1.0);
        self.complete(now, "blue-green: old set scaled down");
    }

    /// Canary passed its last step: the stable replicas are replaced by new ones under the
    /// rolling rules (Argo Rollouts scales the stable ReplicaSet down as a rolling update),
    /// the canary replicas counting as new ones. The split ends: traffic follows the replicas
    /// in rotation, as in a rolling update, so no replica gets more than its share (a weight
    /// kept on a few new replicas would overload them). The analysis goes on until every
    /// replica runs the new version.
    fn promote(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        // The weight series keeps the last step's weight until the promotion ends.
        lock(&self.pool).set_split(None);
        let (surge, unavailable) = self.cfg.rolling_limits();
        self.events.record(
            now,
            format!(
                "canary promoting: stable replicas replaced (max surge {surge}, max \
                 unavailable {unavailable})"
            ),
        );
        self.stage = Stage::Rolling {
            version: 1,
            gated: false,
            promoting: true,
        };
        ctx.set_timer(self.window(), TAG_TICK);
        self.reconcile(ctx);
    }

    fn complete(&mut self, now: SimTime, what: &str) {
        self.stage = Stage::Done;
        self.state.set(now, COMPLETED);
        self.events.record(now, what.to_string());
        self.count_new(now);
    }

    /// Roll back: a split goes back to the stable version at once; a rolling update
    /// replaces the new replicas again, under the same limits.
    fn rollback(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        self.rolled_back_at = Some(now);
        if let Stage::Rolling { promoting, .. } = self.stage {
            self.events
                .record(now, "rollback: rolling back to the old version");
            self.state.set(now, ROLLING_BACK);
            self.stage = Stage::Rolling {
                version: 0,
                gated: false,
                promoting,
            };
            self.progressed(ctx);
            self.reconcile(ctx);
            return;
        }
        for r in self.new_set.clone() {
            self.retire(r, now);
        }
        self.set_weight(now, None);
        self.stage = Stage::Done;
        self.state.set(now, ROLLED_BACK);
        self.events
            .record(now, "rollback: all traffic back to the old version");
        self.count_new(now);
    }

    /// A rolling step: retire replicas of the other version while enough stay in rotation,
    /// then start replicas of the target version while the surge allows (Kubernetes' rule).
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let Stage::Rolling {
            version,
            gated: false,
            promoting,
        } = self.stage
        else {
            return;
        };
        let now = ctx.now();
        let (surge, unavailable) = self.cfg.rolling_limits();
        let n = self.cfg.replicas;
        let retire = self.to_retire(version, n.saturating_sub(unavailable));
        for &r in &retire {
            self.retire(r, now);
        }
        let (launch, stalled) = self.to_launch(version, n + surge);
        for &r in &launch {
            self.launch(ctx, r, version);
        }
        self.log_batch(now, version, &launch, &retire);
        if !retire.is_empty() {
            self.progressed(ctx);
        }
        self.count_new(now);
        let p = lock(&self.pool);
        let done = (0..p.len()).all(|r| !p.phase(r).active() || p.version(r) == version)
            && p.count(Phase::in_rotation) >= n;
        drop(p);
        if done {
            self.rollout_done(ctx, version, promoting);
        } else if stalled {
            ctx.set_timer(STALL_RETRY, TAG_RECONCILE);
        }
    }

    /// Every replica runs `version`: the rollout (or a canary's promotion) is over.
    fn rollout_done(&mut self, ctx: &mut Ctx<'_>, version: u8, promoting: bool) {
        let now = ctx.now();
        self.stage = Stage::Done;
        if let Some(t) = self.deadline.take() {
            ctx.cancel_timer(t);
        }
        if promoting {
            self.set_weight(now, None);
            self.weight.set(now, f64::from(version));
        }
        let (state, what) = match (version, promoting) {
            (1, false) => (COMPLETED, "rolling update completed"),
            (1, true) => (
                COMPLETED,
                "canary promoted: every replica runs the new version",
            ),
            _ => (
                ROLLED_BACK,
                "rollback completed: every replica runs the old version",
            ),
        };
        self.state.set(now, state);
        self.events.record(now, what);
    }

    /// Name the replicas a rolling step starts and retires.
    fn log_batch(&mut self, now: SimTime, version: u8, launch: &[usize], retire: &[usize]) {
        if launch.is_empty() && retire.is_empty() {
            return;
        }
        let p = lock(&self.pool);
        let names = |list: &[usize]| {
            list.iter()
                .map(|&r| p.name(r).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let what = if version == 1 { "new" } else { "old" };
        let mut parts = Vec::new();
        if !launch.is_empty() {
            parts.push(format!("starting {} at the {what} version", names(launch)));
        }
        if !retire.is_empty() {
            parts.push(format!("retiring {}", names(retire)));
        }
        drop(p);
        self.events.record(now, parts.join("; "));
    }

    /// Replicas of the other version to retire now: those still starting (they serve no
    /// one), then those in rotation, newest first, while more than `fewest` stay in rotation.
    fn to_retire(&self, version: u8, fewest: u32) -> Vec<usize> {
        let p = lock(&self.pool);
        let other = |r: usize| p.version(r) != version;
        let mut retire: Vec<usize> = (0..p.len())
            .filter(|&r| matches!(p.phase(r), Phase::Provisioning | Phase::BackOff) && other(r))
            .collect();
        let mut in_rotation = p.count(Phase::in_rotation);
        for r in (0..p.len()).rev() {
            if in_rotation <= fewest {
                break;
            }
            if p.phase(r).in_rotation() && other(r) {
                retire.push(r);
                in_rotation -= 1;
            }
        }
        retire
    }

    /// Stopped replicas to start at `version` now, with at most `most` active in all; and
    /// whether the surge allowed more than there were stopped replicas (some still drain).
    fn to_launch(&self, version: u8, most: u32) -> (Vec<usize>, bool) {
        let p = lock(&self.pool);
        let active = p.count(Phase::active);
        let have = (0..p.len())
            .filter(|&r| p.phase(r).active() && p.version(r) == version)
            .count() as u32;
        let room = most
            .saturating_sub(active)
            .min(self.cfg.replicas.saturating_sub(have)) as usize;
        let launch: Vec<usize> = (0..p.len())
            .filter(|&r| p.phase(r) == Phase::Stopped)
            .take(room)
            .collect();
        let stalled = launch.len() < room;
        (launch, stalled)
    }
}

impl Node<Builtin> for Deploy {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer(self.cfg.start, TAG_START);
    }

    fn on_message(&mut self, _ctx: &mut Ctx<'_>, _from: NodeId, _msg: Message) {}

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        match tag & TAG_KIND {
            TAG_START => self.begin(ctx),
            TAG_TICK => self.tick(ctx),
            TAG_RECONCILE => self.reconcile(ctx),
            TAG_READY => self.ready(ctx, (tag & !TAG_KIND) as usize),
            TAG_CRASH => self.crash(ctx, (tag & !TAG_KIND) as usize),
            TAG_RESTART => self.restart(ctx, (tag & !TAG_KIND) as usize),
            TAG_DEADLINE => self.deadline_passed(ctx.now()),
            _ => {}
        }
    }

    fn on_restart(&mut self, ctx: &mut Ctx<'_>) {
        // The rollout's state is durable (kept in the cluster's store): a restarted
        // controller re-arms what was due, late if it is past.
        let now = ctx.now();
        if self.started_at.is_none() {
            let start = SimTime(self.cfg.start.0).max(now);
            ctx.set_timer(start.since(now), TAG_START);
        }
        for r in 0..self.ready_at.len() {
            for (due, tag) in [
                (&mut self.ready_at[r], TAG_READY),
                (&mut self.crash_at[r], TAG_CRASH),
                (&mut self.restart_at[r], TAG_RESTART),
            ] {
                if let Some(at) = *due {
                    let at = at.max(now);
                    *due = Some(at);
                    ctx.set_timer(at.since(now), tag | r as u64);
                }
            }
        }
        if self.deadline.take().is_some() {
            self.progressed(ctx);
        }
        if !matches!(self.stage, Stage::Done | Stage::Starting) {
            ctx.set_timer(self.window(), TAG_TICK);
        }
    }

    fn on_crash(&mut self, now: SimTime) {
        self.events.record(
            now,
            "deploy controller crashed: the rollout waits until it restarts",
        );
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let p = lock(&self.pool);
        let new = p.counts(1);
        let mut counters = BTreeMap::new();
        counters.insert("new_version_requests".to_string(), new.answered as f64);
        counters.insert("new_version_failed".to_string(), new.failed as f64);
        counters.insert(
            "old_version_requests".to_string(),
            p.counts(0).answered as f64,
        );
        counters.insert("old_version_failed".to_string(), p.counts(0).failed as f64);
        if let Some(last) = new.last_sent {
            counters.insert("new_version_last_sent_s".to_string(), last.as_secs_f64());
        }
        if let (Some(back), Some(start)) = (self.rolled_back_at, self.started_at) {
            counters.insert("rollback_at_s".to_string(), back.as_secs_f64());
            let secs = |t: SimTime, from: SimTime| t.since(from).as_secs_f64();
            counters.insert("rollback_after_start_s".to_string(), secs(back, start));
            if let Some(first) = new.first_failure {
                counters.insert(
                    "rollback_after_first_failure_s".to_string(),
                    secs(back, first),
                );
            }
        }
        let state = self.state.state().unwrap_or(NOT_STARTED);
        counters.insert("completed".to_string(), f64::from(state == COMPLETED));
        counters.insert(
            "rolled_back".to_string(),
            f64::from(self.rolled_back_at.is_some()),
        );
        counters.insert(
            "state_changes_dropped".to_string(),
            self.events.dropped() as f64,
        );
        if self.cfg.version.crash_loop.is_some() || self.deadline_passed {
            counters.insert(
                "progress_deadline_exceeded".to_string(),
                f64::from(u8::from(self.deadline_passed)),
            );
        }
        if self.cfg.version.crash_loop.is_some() {
            counters.insert("new_version_crashes".to_string(), new.crashes as f64);
            counters.insert("new_version_restarts".to_string(), self.restarts as f64);
            if let Some(first) = self.first_crash {
                counters.insert("first_crash_at_s".to_string(), first.as_secs_f64());
                if let Some(back) = self.rolled_back_at {
                    let after = back.since(first).as_secs_f64();
                    counters.insert("rollback_after_first_crash_s".to_string(), after);
                }
            }
        }
        drop(p);
        let series = vec![
            self.weight.finish(
                "traffic_to_new_version",
                "Traffic weight the deploy sets for the new version (canary, blue-green)",
                "fraction",
                now,
            ),
            self.new_in_rotation.finish(
                "new_version_replicas",
                "Replicas of the new version in rotation",
                "replicas",
                now,
            ),
            self.state.finish("deploy_state", "Deploy state", now),
        ];
        Some(NodeStats {
            counters,
            series,
            events: self.events.take(),
            ..NodeStats::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::validate::NameTable;

    fn deploy(strategy: Strategy) -> DeployConfig {
        DeployConfig {
            pool: "app".into(),
            replicas: 4,
            start: SimDuration::from_secs(10),
            version: VersionConfig::default(),
            strategy,
            provisioning: default_provisioning(),
            analysis: None,
        }
    }

    fn problems(d: &DeployConfig) -> usize {
        let names = NameTable::default();
        let mut v = Validator::new(&names);
        d.validate(&mut v, &Path::root());
        v.into_problems().len()
    }

    #[test]
    fn rolling_defaults_are_kubernetes_quarters() {
        let rolling = |n| {
            let mut d = deploy(Strategy::Rolling {
                max_surge: None,
                max_unavailable: None,
                progress_deadline: default_progress_deadline(),
            });
            d.replicas = n;
            (d.rolling_limits(), d.needs())
        };
        assert_eq!(rolling(4), ((1, 1), 5));
        assert_eq!(rolling(10), ((3, 2), 13));
        assert_eq!(rolling(1), ((1, 0), 2));
    }

    #[test]
    fn each_strategy_needs_room_for_what_it_runs_at_once() {
        let bg = deploy(Strategy::BlueGreen {
            switch_after: SimDuration::ZERO,
            scale_down_delay: default_scale_down_delay(),
        });
        assert_eq!(bg.needs(), 8);
        let canary = deploy(Strategy::Canary {
            steps: default_steps(),
            pause: default_pause(),
            canary_replicas: Some(1),
            max_surge: None,
            max_unavailable: None,
        });
        assert_eq!(canary.needs(), 5);
        assert_eq!(canary.rolling_limits(), (1, 1), "Argo's 25% at promotion");
    }

    #[test]
    fn bad_steps_windows_and_limits_are_each_an_error() {
        let mut d = deploy(Strategy::Canary {
            steps: vec![0.5, 0.5, 1.2, 0.0],
            pause: SimDuration::from_secs(25),
            canary_replicas: Some(0),
            max_surge: None,
            max_unavailable: None,
        });
        d.analysis = Some(AnalysisConfig {
            window: SimDuration::from_secs(10),
            max_error_rate: 1.0,
            max_p99: None,
            failure_limit: 0,
            min_requests: 10,
            max_crashes: None,
        });
        // Not increasing, above 1, zero; pause not a multiple; no replicas; error rate 1.
        assert_eq!(problems(&d), 6);
        let mut r = deploy(Strategy::Rolling {
            max_surge: Some(0),
            max_unavailable: Some(0),
            progress_deadline: SimDuration::ZERO,
        });
        r.version.latency_factor = 0.0;
        r.version.crash_loop = Some(CrashLoopConfig {
            after: Dist::Constant(SimDuration::ZERO),
        });
        // Both limits 0, a zero deadline, a zero factor, a crash at once.
        assert_eq!(problems(&r), 4);
        assert_eq!(
            problems(&deploy(Strategy::Canary {
                steps: default_steps(),
                pause: default_pause(),
                canary_replicas: None,
                max_surge: None,
                max_unavailable: None,
            })),
            0
        );
    }

    #[test]
    fn the_first_restart_is_at_once_then_the_back_off_doubles_from_10_s_to_5_min() {
        let secs: Vec<u64> = (0..9).map(|k| backoff(k).0 / 1_000_000_000).collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(
            backoff(u32::MAX),
            BACKOFF_CAP,
            "no overflow however long the streak"
        );
    }
}
