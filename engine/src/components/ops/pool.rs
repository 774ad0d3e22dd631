//! The shared state of a controlled server pool: each replica's phase, and the load its
//! replicas measure, which controllers (autoscaler, deploy) change and read and load
//! balancers route by.
//!
//! ```text
//!  stopped ─▶ provisioning ─(cold start)─▶ warming ─(warm-up)─▶ serving ─▶ draining ─▶ stopped
//!                                            └──── in rotation ────┘   (no new requests;
//!                                                                        stops when its last
//!                                                                        request is answered)
//!  a release that crash-loops:  serving ─(crash)─▶ back-off ─(restart)─▶ serving ─▶ ...
//! ```
//! A replica in back-off (Kubernetes' CrashLoopBackOff) is a replica the pool has, not ready:
//! out of rotation, waiting for the kubelet to restart it. Its crashes are counted here, with
//! the time of the last, so the replica's server learns of one at its next event and drops
//! the work it had then (see `traffic/server.rs`).
//! It is a run-wide observer (one per pool, named `<pool>-pool`), so the nodes that share it
//! need no messages for it (a controller's change is seen at once, as an endpoint update
//! is in a cluster whose control plane is fast next to its cold starts), and at the end it
//! reports the replicas in rotation over time and every replica's phase timeline.
//! Its size is fixed when it is built: nothing in it grows with requests or time.
//!
//! Each replica also runs a version (0, the pool's own configuration, or 1, the new release
//! a deploy ships, whose behaviour the pool holds), and the pool may split traffic between
//! versions by weight at the balancers (a canary or a blue-green switch), whatever the
//! replica counts; load balancers report every answer they see by version.

use crate::contract::build::Observer;
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::state_series::StateSeries;
use crate::sim::time::{SimDuration, SimTime};
use std::sync::{Mutex, MutexGuard};

/// The phases of a replica, as the timeline names them.
pub const PHASES: [&str; 5] = ["stopped", "provisioning", "warming", "serving", "draining"];

/// The phases of a replica of a pool whose new version crash-loops: one more.
pub const PHASES_CRASH_LOOP: [&str; 6] = [
    "stopped",
    "provisioning",
    "warming",
    "serving",
    "draining",
    "back-off",
];

/// Where a replica of a controlled pool is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not running; costs nothing and gets no requests.
    Stopped,
    /// Starting (scheduled, image pulled, process started): not ready yet.
    Provisioning,
    /// Ready and in rotation, at reduced capacity until its warm-up ends.
    Warming,
    /// Ready and in rotation at full capacity.
    Serving,
    /// Out of rotation, finishing the requests it has.
    Draining,
    /// Crashed, waiting to be restarted (CrashLoopBackOff): out of rotation, its work lost.
    BackOff,
}

impl Phase {
    /// Does a load balancer send new requests to it?
    pub fn in_rotation(self) -> bool {
        matches!(self, Phase::Warming | Phase::Serving)
    }

    /// Does it count as a replica the pool has (ready or on its way, or crashed and waiting
    /// to restart: a pod that exists)?
    pub fn active(self) -> bool {
        matches!(
            self,
            Phase::Provisioning | Phase::Warming | Phase::Serving | Phase::BackOff
        )
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The observer name of the pool state of the server group `group`.
pub fn pool_name(group: &str) -> String {
    format!("{group}-pool")
}

/// The pool's state for reading or changing; a run is one thread, so a poisoned lock only
/// means a panic elsewhere already ended it, and the state is still the last one written.
pub fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Time integrals of one replica's load since the controller last read them.
#[derive(Clone, Debug, Default)]
struct Load {
    last: SimTime,
    busy: f64,
    queued: f64,
    busy_area: f64,
    queue_area: f64,
}

impl Load {
    fn advance(&mut self, now: SimTime) {
        if now > self.last {
            let dt = now.since(self.last).0 as f64;
            self.busy_area += dt * self.busy;
            self.queue_area += dt * self.queued;
            self.last = now;
        }
    }
}

/// One replica of the pool.
#[derive(Clone, Debug)]
struct Replica {
    phase: Phase,
    /// Warm-up: from when, until when, and the capacity at its start (fraction).
    warm_from: SimTime,
    warm_until: SimTime,
    cold_capacity: f64,
    /// Requests load balancers have sent it and not yet seen answered.
    in_flight: u32,
    /// A stopped replica kept initialised (a warm pool): it starts quickly.
    warm: bool,
    load: Load,
    /// The version it runs: 0 the pool's own, 1 the new release.
    version: u8,
    /// How many times it crashed (a crash-looping release), and when it last did.
    crashes: u32,
    crashed_at: SimTime,
    /// How many processes it has started since the run began: one more each time it leaves
    /// `Stopped` or `BackOff` for a running phase. A caller's connections belong to one.
    lives: u32,
}

/// How the new version behaves next to the pool's own configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Behaviour {
    /// Fraction of the requests it serves that it answers with an error (0..1).
    pub error_rate: f64,
    /// Its service times are multiplied by this (> 0).
    pub latency_factor: f64,
    /// Its replicas crash and restart (a controller times the crashes: [`Pool::crash`]).
    pub crash_loop: bool,
}

/// Answers load balancers saw from one version: in all, and since the analysis last read them.
#[derive(Clone, Debug)]
pub struct VersionCounts {
    /// Requests answered (or timed out) after the warm-up.
    pub answered: u64,
    /// How many of them failed.
    pub failed: u64,
    /// Requests answered since the last [`Pool::take_analysis`].
    pub window_answered: u64,
    /// How many of those failed.
    pub window_failed: u64,
    /// When a balancer saw the first failure.
    pub first_failure: Option<SimTime>,
    /// When a balancer last sent a request to this version.
    pub last_sent: Option<SimTime>,
    /// Crashes of its replicas, in all and since the last [`Pool::take_analysis`].
    pub crashes: u64,
    /// Crashes since the last [`Pool::take_analysis`].
    pub window_crashes: u64,
    window_latency: LatencyBuckets,
}

impl VersionCounts {
    fn new() -> Self {
        VersionCounts {
            answered: 0,
            failed: 0,
            window_answered: 0,
            window_failed: 0,
            first_failure: None,
            last_sent: None,
            crashes: 0,
            window_crashes: 0,
            window_latency: LatencyBuckets::new(),
        }
    }
}

/// What one analysis period measured of the new version.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Analysis {
    /// Answers seen from the new version.
    pub answered: u64,
    /// How many of them failed.
    pub failed: u64,
    /// The 99th percentile of their round trips at the balancers, if any.
    pub p99: Option<SimDuration>,
    /// Crashes of its replicas.
    pub crashes: u64,
}

/// Latency samples of the pool since the controller last read them, in logarithmic buckets
/// (8 per power of two, so a quantile is within 9%): a fixed 512 counters.
#[derive(Clone, Debug)]
struct LatencyBuckets {
    counts: Vec<u64>,
    total: u64,
}

const SUB_BUCKETS: u32 = 8;

impl LatencyBuckets {
    fn new() -> Self {
        LatencyBuckets {
            counts: vec![0; 64 * SUB_BUCKETS as usize],
            total: 0,
        }
    }

    fn bucket(ns: u64) -> usize {
        let ns = ns.max(1);
        let exp = 63 - ns.leading_zeros();
        let sub = if exp >= 3 {
            (ns >> (exp - 3)) & 7
        } else {
            (ns << (3 - exp)) & 7
        };
        (exp * SUB_BUCKETS) as usize + sub as usize
    }

    /// The largest value that falls in bucket `i`.
    fn upper(i: usize) -> u64 {
        let exp = (i as u32) / SUB_BUCKETS;
        let sub = u64::from((i as u32) % SUB_BUCKETS);
        let base = 1u128 << exp;
        // Rounded up: below 8 ns a bucket holds one value, exactly.
        let step = (base * u128::from(sub + 1)).div_ceil(u128::from(SUB_BUCKETS));
        let upper = base + step - 1;
        u64::try_from(upper).unwrap_or(u64::MAX)
    }

    fn record(&mut self, d: SimDuration) {
        self.counts[Self::bucket(d.0)] += 1;
        self.total += 1;
    }

    /// The `q` quantile (0..1) of the samples, if any.
    fn quantile(&self, q: f64) -> Option<SimDuration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(SimDuration(Self::upper(i)));
            }
        }
        None
    }

    fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
    }
}

/// What the pool's replicas measured over a period (see [`Pool::take_load`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// Busy workers as a fraction of each replica's workers, summed over replicas and
    /// averaged over the period: 1.0 is one replica's worth of full use.
    pub busy: f64,
    /// Queued requests, summed over replicas and averaged over the period.
    pub queued: f64,
}

/// The shared state of one controlled pool.
pub struct Pool {
    names: Vec<String>,
    replicas: Vec<Replica>,
    /// Changes whenever a replica enters or leaves rotation.
    epoch: u64,
    states: Vec<StateSeries>,
    in_rotation: Series,
    /// Latency samples of the last few controller periods (a ring; `current` is filling).
    latency: Vec<LatencyBuckets>,
    current: usize,
    since: SimTime,
    window: SimDuration,
    /// The new version's behaviour (`None`: no deploy on this pool).
    behaviour: Option<Behaviour>,
    /// Fraction of the traffic sent to version 1 (`None`: to every replica in rotation).
    split: Option<f64>,
    /// Answers seen per version.
    counts: [VersionCounts; 2],
    /// Totals count answers from this time on (the end of the warm-up).
    count_from: SimTime,
    /// With a deploy: the share of requests sent to the new version, and its failures per
    /// second, per window.
    new_share: Series,
    new_failures: Series,
}

impl Pool {
    /// A pool of the replicas `names`, all serving, with time series windows of `window`.
    pub fn new(names: Vec<String>, window: SimDuration) -> Pool {
        let n = names.len();
        let mut in_rotation = Series::new(SeriesKind::Level, window);
        in_rotation.set(SimTime::ZERO, n as f64);
        Pool {
            names,
            replicas: vec![
                Replica {
                    phase: Phase::Serving,
                    warm_from: SimTime::ZERO,
                    warm_until: SimTime::ZERO,
                    cold_capacity: 1.0,
                    in_flight: 0,
                    warm: false,
                    load: Load::default(),
                    version: 0,
                    crashes: 0,
                    crashed_at: SimTime::ZERO,
                    lives: 0,
                };
                n
            ],
            epoch: 0,
            states: vec![StateSeries::starting(&PHASES, window, Phase::Serving.index()); n],
            in_rotation,
            latency: vec![LatencyBuckets::new()],
            current: 0,
            since: SimTime::ZERO,
            window,
            behaviour: None,
            split: None,
            counts: [VersionCounts::new(), VersionCounts::new()],
            count_from: SimTime::ZERO,
            new_share: Series::new(SeriesKind::Mean, window),
            new_failures: Series::new(SeriesKind::Rate, window),
        }
    }

    /// Before the run: the first `serving` replicas serve, the next `warm` are stopped but
    /// initialised (a warm pool), the rest stopped; latency is kept over `periods` controller
    /// periods.
    pub fn start_with(&mut self, serving: usize, warm: usize, periods: usize) {
        let names = self.phase_names();
        for (r, rep) in self.replicas.iter_mut().enumerate() {
            rep.phase = if r < serving {
                Phase::Serving
            } else {
                Phase::Stopped
            };
            rep.warm = r >= serving && r < serving + warm;
            self.states[r] = StateSeries::starting(names, self.window, rep.phase.index());
        }
        let n = self.count(Phase::in_rotation);
        self.in_rotation = Series::new(SeriesKind::Level, self.window);
        self.in_rotation.set(SimTime::ZERO, f64::from(n));
        self.latency = vec![LatencyBuckets::new(); periods.max(1)];
        self.current = 0;
        self.epoch += 1;
    }

    /// The phase names of its timelines.
    fn phase_names(&self) -> &'static [&'static str] {
        if self.crash_loops() {
            &PHASES_CRASH_LOOP
        } else {
            &PHASES
        }
    }

    /// Number of replicas (the pool's largest size).
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Does the pool have no replicas?
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// Replica `r`'s name.
    pub fn name(&self, r: usize) -> &str {
        &self.names[r]
    }

    /// Replica `r`'s phase.
    pub fn phase(&self, r: usize) -> Phase {
        self.replicas[r].phase
    }

    /// A number that changes whenever a replica enters or leaves rotation.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Replicas in each phase now, counted by `keep`.
    pub fn count(&self, keep: impl Fn(Phase) -> bool) -> u32 {
        self.replicas.iter().filter(|r| keep(r.phase)).count() as u32
    }

    /// Move replica `r` to `phase` at `now`.
    pub fn set_phase(&mut self, r: usize, phase: Phase, now: SimTime) {
        let was = self.replicas[r].phase;
        if was == phase {
            return;
        }
        self.replicas[r].phase = phase;
        let dead = |p: Phase| matches!(p, Phase::Stopped | Phase::BackOff);
        if dead(was) && !dead(phase) {
            self.replicas[r].lives += 1;
        }
        self.states[r].set(now, phase.index());
        if was.in_rotation() != phase.in_rotation() {
            self.epoch += 1;
            let n = self.count(Phase::in_rotation);
            self.in_rotation.set(now, f64::from(n));
        }
    }

    /// Replica `r` is ready at `now` and warms up until `until`, starting at `cold_capacity`
    /// of its capacity (serving at once when `until` is `now`).
    pub fn ready(&mut self, r: usize, now: SimTime, until: SimTime, cold_capacity: f64) {
        let rep = &mut self.replicas[r];
        rep.warm_from = now;
        rep.warm_until = until;
        rep.cold_capacity = cold_capacity;
        let phase = if until > now {
            Phase::Warming
        } else {
            Phase::Serving
        };
        self.set_phase(r, phase, now);
    }

    /// Take replica `r` out of rotation: it stops once its last request is answered.
    pub fn drain(&mut self, r: usize, now: SimTime) {
        let phase = if self.replicas[r].in_flight == 0 {
            Phase::Stopped
        } else {
            Phase::Draining
        };
        self.set_phase(r, phase, now);
    }

    /// The new version behaves as `b` (a deploy ships it); totals count from `from`.
    pub fn set_behaviour(&mut self, b: Behaviour, from: SimTime) {
        self.behaviour = Some(b);
        self.count_from = from;
        let names = self.phase_names();
        self.states.iter_mut().for_each(|s| s.widen(names));
    }

    /// Does the new version crash-loop?
    pub fn crash_loops(&self) -> bool {
        self.behaviour.is_some_and(|b| b.crash_loop)
    }

    /// Replica `r` crashed at `now`: out of rotation until it restarts ([`Pool::ready`]); its
    /// server drops the work it had when it learns of it ([`Pool::crashes`]).
    pub fn crash(&mut self, r: usize, now: SimTime) {
        let rep = &mut self.replicas[r];
        rep.crashes += 1;
        rep.crashed_at = now;
        let c = &mut self.counts[usize::from(rep.version.min(1))];
        c.crashes += 1;
        c.window_crashes += 1;
        self.set_phase(r, Phase::BackOff, now);
    }

    /// How many times replica `r` crashed, and when it last did.
    pub fn crashes(&self, r: usize) -> (u32, SimTime) {
        let rep = &self.replicas[r];
        (rep.crashes, rep.crashed_at)
    }

    /// How many processes replica `r` has started (a restart after a crash-loop crash, or a
    /// start after a stop, is a new one): connections to it are one life's (the kernel's
    /// incarnation counts only crash faults).
    pub fn lives(&self, r: usize) -> u32 {
        self.replicas[r].lives
    }

    /// Replica `r`'s version (0 the pool's own, 1 the new release).
    pub fn version(&self, r: usize) -> u8 {
        self.replicas[r].version
    }

    /// Replica `r` runs `version` from now on (balancers see the change at once).
    pub fn set_version(&mut self, r: usize, version: u8) {
        if self.replicas[r].version != version {
            self.replicas[r].version = version;
            self.epoch += 1;
        }
    }

    /// How replica `r` behaves unlike the pool's own configuration, if it does.
    pub fn behaviour(&self, r: usize) -> Option<Behaviour> {
        self.behaviour.filter(|_| self.replicas[r].version == 1)
    }

    /// The fraction of traffic sent to the new version (`None`: by replicas in rotation).
    pub fn split(&self) -> Option<f64> {
        self.split
    }

    /// Send `weight` of the traffic to the new version from now on (`None`: no split).
    pub fn set_split(&mut self, weight: Option<f64>) {
        if self.split != weight {
            self.split = weight;
            self.epoch += 1;
        }
    }

    /// A load balancer saw a request to replica `r` end at `now`, failed or not, after `rtt`.
    pub fn outcome(&mut self, r: usize, now: SimTime, failed: bool, rtt: SimDuration) {
        let c = &mut self.counts[usize::from(self.replicas[r].version.min(1))];
        if failed && c.first_failure.is_none() {
            c.first_failure = Some(now);
        }
        if failed && self.behaviour.is_some() && self.replicas[r].version == 1 {
            self.new_failures.add(now, 1.0);
        }
        if now >= self.count_from {
            c.answered += 1;
            c.failed += u64::from(failed);
        }
        c.window_answered += 1;
        c.window_failed += u64::from(failed);
        if !failed {
            c.window_latency.record(rtt);
        }
    }

    /// Answers seen from `version` so far.
    pub fn counts(&self, version: u8) -> &VersionCounts {
        &self.counts[usize::from(version.min(1))]
    }

    /// What the new version's answers measured since the last call; a new period starts.
    pub fn take_analysis(&mut self) -> Analysis {
        let c = &mut self.counts[1];
        let a = Analysis {
            answered: c.window_answered,
            failed: c.window_failed,
            p99: c.window_latency.quantile(0.99),
            crashes: c.window_crashes,
        };
        c.window_answered = 0;
        c.window_failed = 0;
        c.window_crashes = 0;
        c.window_latency.clear();
        a
    }

    /// A check's window starts now: answers seen so far are forgotten, crashes are not (a
    /// crash between two checks, as between a rolling update's gates, fails the next one).
    pub fn restart_window(&mut self) {
        let crashes = self.counts[1].window_crashes;
        self.take_analysis();
        self.counts[1].window_crashes = crashes;
    }

    /// Is the stopped replica `r` kept initialised (in a warm pool)?
    pub fn is_warm(&self, r: usize) -> bool {
        self.replicas[r].warm
    }

    /// Mark replica `r` as kept initialised, or not.
    pub fn set_warm(&mut self, r: usize, warm: bool) {
        self.replicas[r].warm = warm;
    }

    /// The fraction of its full capacity replica `r` has at `now` (below 1 while warming up:
    /// rising linearly from its cold capacity).
    pub fn capacity(&self, r: usize, now: SimTime) -> f64 {
        let rep = &self.replicas[r];
        if rep.phase != Phase::Warming || now >= rep.warm_until {
            return 1.0;
        }
        let done = now.since(rep.warm_from).0 as f64 / rep.warm_until.since(rep.warm_from).0 as f64;
        rep.cold_capacity + (1.0 - rep.cold_capacity) * done
    }

    /// A load balancer sent replica `r` a request at `now`.
    pub fn sent(&mut self, r: usize, now: SimTime) {
        self.replicas[r].in_flight += 1;
        let version = self.replicas[r].version.min(1);
        self.counts[usize::from(version)].last_sent = Some(now);
        if self.behaviour.is_some() {
            self.new_share.add(now, f64::from(version));
        }
    }

    /// A load balancer saw `n` of its requests to replica `r` end (answered, timed out or
    /// forgotten in a crash); a draining replica stops with its last one.
    pub fn ended(&mut self, r: usize, n: u32, now: SimTime) {
        let rep = &mut self.replicas[r];
        rep.in_flight = rep.in_flight.saturating_sub(n);
        if rep.phase == Phase::Draining && rep.in_flight == 0 {
            self.set_phase(r, Phase::Stopped, now);
        }
    }

    /// Replica `r` has `busy` (a fraction of its workers) busy and `queued` requests waiting
    /// from `now` on.
    pub fn load(&mut self, r: usize, now: SimTime, busy: f64, queued: f64) {
        let load = &mut self.replicas[r].load;
        load.advance(now);
        load.busy = busy;
        load.queued = queued;
    }

    /// A request spent `d` in the pool (queue and service).
    pub fn latency(&mut self, d: SimDuration) {
        self.latency[self.current].record(d);
    }

    /// What the replicas measured since the last call (averaged over that time), and the
    /// latency quantile `q` of the requests answered over the last periods kept; a new
    /// period starts.
    pub fn take_load(&mut self, now: SimTime, q: f64) -> (Measured, Option<SimDuration>) {
        let span = now.since(self.since).0.max(1) as f64;
        let mut m = Measured {
            busy: 0.0,
            queued: 0.0,
        };
        for rep in &mut self.replicas {
            rep.load.advance(now);
            m.busy += rep.load.busy_area / span;
            m.queued += rep.load.queue_area / span;
            rep.load.busy_area = 0.0;
            rep.load.queue_area = 0.0;
        }
        let mut all = LatencyBuckets::new();
        for l in &self.latency {
            all.total += l.total;
            all.counts
                .iter_mut()
                .zip(&l.counts)
                .for_each(|(a, c)| *a += c);
        }
        let quantile = all.quantile(q);
        self.current = (self.current + 1) % self.latency.len();
        self.latency[self.current].clear();
        self.since = now;
        (m, quantile)
    }
}

impl Observer for Pool {
    fn finish(&mut self, now: SimTime) -> NodeStats {
        let mut stats = NodeStats::default();
        stats.series.push(self.in_rotation.finish(
            "replicas_in_rotation",
            "Replicas in rotation (warming or serving)",
            "replicas",
            now,
        ));
        if self.behaviour.is_some() {
            stats.series.push(self.new_share.finish(
                "new_version_share",
                "Share of requests the balancers send to the new version",
                "fraction",
                now,
            ));
            stats.series.push(self.new_failures.finish(
                "new_version_failures",
                "Requests the new version failed",
                "per second",
                now,
            ));
        }
        for (s, name) in self.states.iter_mut().zip(&self.names) {
            let mut r = s.finish("replica_phase", "Replica phase", now);
            r.label = Some(name.clone());
            stats.series.push(r);
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Pool {
        let names = (0..n).map(|i| format!("app-{i}")).collect();
        Pool::new(names, SimDuration::from_secs(1))
    }

    #[test]
    fn a_draining_replica_stops_with_its_last_request() {
        let mut p = pool(2);
        p.sent(1, SimTime(0));
        p.sent(1, SimTime(0));
        p.drain(1, SimTime(10));
        assert_eq!(p.phase(1), Phase::Draining);
        p.ended(1, 1, SimTime(20));
        assert_eq!(p.phase(1), Phase::Draining);
        p.ended(1, 1, SimTime(30));
        assert_eq!(p.phase(1), Phase::Stopped);
        p.drain(0, SimTime(40));
        assert_eq!(p.phase(0), Phase::Stopped, "an idle replica stops at once");
    }

    #[test]
    fn warm_up_capacity_rises_linearly_to_one() {
        let mut p = pool(1);
        p.set_phase(0, Phase::Provisioning, SimTime(0));
        p.ready(0, SimTime(100), SimTime(300), 0.5);
        assert_eq!(p.phase(0), Phase::Warming);
        assert_eq!(p.capacity(0, SimTime(100)), 0.5);
        assert_eq!(p.capacity(0, SimTime(200)), 0.75);
        assert_eq!(p.capacity(0, SimTime(300)), 1.0);
    }

    #[test]
    fn load_is_averaged_over_the_period_and_restarts() {
        let mut p = pool(2);
        p.load(0, SimTime(0), 1.0, 2.0);
        p.load(0, SimTime(50), 0.0, 0.0);
        p.load(1, SimTime(0), 0.5, 0.0);
        let (m, _) = p.take_load(SimTime(100), 0.99);
        assert!((m.busy - 1.0).abs() < 1e-12, "{m:?}");
        assert!((m.queued - 1.0).abs() < 1e-12, "{m:?}");
        let (m, _) = p.take_load(SimTime(200), 0.99);
        assert!(
            (m.busy - 0.5).abs() < 1e-12,
            "only replica 1 still busy: {m:?}"
        );
    }

    #[test]
    fn latency_quantile_is_within_a_bucket() {
        let mut b = LatencyBuckets::new();
        for ms in 1..=100 {
            b.record(SimDuration::from_millis(ms));
        }
        let p99 = b.quantile(0.99).expect("samples").0 as f64 / 1e6;
        assert!((99.0..=99.0 * 1.13).contains(&p99), "p99 {p99} ms");
        for ns in [1u64, 2, 3, 7, 8, 9, 1000, 123_456_789] {
            let i = LatencyBuckets::bucket(ns);
            assert!(LatencyBuckets::upper(i) >= ns, "{ns} above its bucket");
            assert!(
                i == 0 || LatencyBuckets::upper(i - 1) < ns,
                "{ns} below its bucket"
            );
        }
    }
}
