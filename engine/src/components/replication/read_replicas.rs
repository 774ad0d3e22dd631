//! `ReadReplicas`: a primary with asynchronous (or semi-synchronous) read replicas, and the
//! proxy in front of them that decides where each read goes and keeps each session's token.
//!
//! ```text
//!  client ─▶ proxy ─ write ─▶ primary: commit (version = next log position) ─▶ reply
//!                              └─ ships to each replica; replica r applies it at
//!                                 max(commit + delay_r, its previous apply): in log order
//!                  ─ read ──▶ routing picks the primary or a replica; it answers with the
//!                             newest version of the key it has applied
//!  SemiSync(acks: k): the write's reply waits until k replicas have applied it.
//! ```
//! A session is one client node: the proxy knows which client sent each request, as a
//! database proxy knows its connections. Its token is a log position: the session's last write
//! (read-your-writes) or the newest state it has read (monotonic reads); a replica that has
//! applied the token may serve the read, otherwise the primary does.
//!
//! Every read is checked against the truth whatever the routing: it is stale if the primary
//! holds a newer version of its key; it violates read-your-writes if the session wrote a newer
//! version of the key before the read arrived; it violates monotonic reads if the session had
//! already read a newer version of the key. A stale read is also measured: how many versions
//! behind, and for how long the version it returned had been superseded.
//!
//! The primary and the replicas serve in parallel (no queue): each operation takes
//! `service_time`. Replica failures are not modelled; a crash of the node stops all of it.
//! Memory: the applied version of each key written, per replica, and the writes still being
//! shipped (the write rate times the replication delay).

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::replication::replicated_store::check_replica_count;
use crate::contract::build::BuildCtx;
use crate::contract::call::{Op, Reply, Request, Response};
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::validate::{Path, Validator};
use crate::sim::dist::Dist;
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// A primary with read replicas behind a routing proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "ReadReplicas", deny_unknown_fields)]
pub struct ReadReplicasConfig {
    /// Number of read replicas (count, 1 to 64; the primary is not counted). Default 2.
    #[serde(default = "two")]
    pub replicas: u32,
    /// Time from a write's commit on the primary until a replica has applied it (a
    /// distribution of durations, drawn per write and replica; a replica applies writes in
    /// commit order, so a slow one holds up those behind it). Default
    /// `LogNormal(median: "5ms", p99: "50ms")`.
    #[serde(default = "default_delay")]
    pub replication_delay: Dist,
    /// When a write is acknowledged: `Async` (at commit) or `SemiSync(acks: k)` (once k
    /// replicas have applied it). Default `Async`.
    #[serde(default)]
    pub replication: ReplicaAcks,
    /// Where reads go; see READ ROUTING in `archsim list`. Default `AnyReplica`.
    #[serde(default)]
    pub routing: ReadRouting,
    /// Time the primary or a replica takes to serve one read or write (distribution). Default
    /// `Constant("1ms")`.
    #[serde(default = "default_service")]
    pub service_time: Dist,
}

/// When the primary acknowledges a write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum ReplicaAcks {
    /// At commit; the replicas catch up later (MySQL's and PostgreSQL's default).
    #[default]
    Async,
    /// Once `acks` replicas have applied the write (PostgreSQL's `remote_apply`).
    SemiSync {
        /// Replicas that must have applied the write (count, 1 to `replicas`).
        acks: u32,
    },
}

/// Where the proxy sends a read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum ReadRouting {
    /// Every read to the primary (no replica serves: the baseline).
    Primary,
    /// Each read to a replica drawn at random.
    #[default]
    AnyReplica,
    /// Each session always to the same replica (sessions dealt out in turn).
    Sticky,
    /// To a random replica among those that have applied the session's last write (its
    /// token); to the primary if none has.
    ReadYourWrites,
    /// To a random replica among those that have applied everything the session has read so
    /// far; to the primary if none has.
    MonotonicReads,
    /// To a random replica, unless it lags the primary by more than `max_lag` (the age of
    /// the oldest write it has not applied): then to the primary.
    BoundedStaleness {
        /// Largest lag a replica may serve with (duration).
        max_lag: SimDuration,
    },
}

fn two() -> u32 {
    2
}

fn default_delay() -> Dist {
    Dist::LogNormal {
        median: SimDuration::from_millis(5),
        p99: SimDuration::from_millis(50),
    }
}

fn default_service() -> Dist {
    Dist::Constant(SimDuration::from_millis(1))
}

crate::settable!(ReadReplicasConfig {
    replicas,
    replication_delay,
    replication,
    routing,
    service_time
});

impl ReadReplicasConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        check_replica_count(self.replicas, v, at);
        v.check_dist(&at.field("replication_delay"), &self.replication_delay);
        v.check_dist(&at.field("service_time"), &self.service_time);
        if let ReplicaAcks::SemiSync { acks } = self.replication
            && (acks == 0 || acks > self.replicas)
        {
            v.error(
                &at.field("replication"),
                format!("{acks} acks from {} replicas", self.replicas),
                format!("expected from 1 to {} acks", self.replicas),
            );
        }
        if self.routing
            == (ReadRouting::BoundedStaleness {
                max_lag: SimDuration::ZERO,
            })
        {
            v.error(
                &at.field("routing"),
                "a zero `max_lag` sends every read to the primary",
                "expected a positive duration (or `Primary`)",
            );
        }
    }
}

/// A write on its way to a replica.
#[derive(Clone, Copy, Debug)]
struct Shipped {
    apply_at: SimTime,
    committed: SimTime,
    key: u64,
    version: u64,
}

/// One read replica.
#[derive(Debug, Default)]
struct Replica {
    /// Per key written: the newest version applied.
    applied: BTreeMap<u64, u64>,
    /// Log position applied up to.
    position: u64,
    /// Writes shipped but not applied, in log order.
    pending: VecDeque<Shipped>,
    /// When the last write shipped will be applied (writes apply in order).
    tail: SimTime,
    reads: u64,
}

impl Replica {
    /// Apply every write due by `now`.
    fn catch_up(&mut self, now: SimTime) {
        while let Some(w) = self.pending.front().copied().filter(|w| w.apply_at <= now) {
            self.applied.insert(w.key, w.version);
            self.position = w.version;
            self.pending.pop_front();
        }
    }

    /// How far behind the primary it is at `now`: the age of its oldest unapplied write.
    fn lag(&self, now: SimTime) -> SimDuration {
        self.pending
            .front()
            .map_or(SimDuration::ZERO, |w| now.since(w.committed))
    }
}

/// What a session has done, for its tokens and for checking its guarantees.
#[derive(Debug, Default)]
struct Session {
    /// Replica index for `Sticky`.
    home: usize,
    /// Log position of its last write (the read-your-writes token).
    last_write: u64,
    /// Newest log position it has read from (the monotonic-reads token).
    seen: u64,
    /// Per key: the newest version it wrote and the newest it read.
    wrote: BTreeMap<u64, u64>,
    read: BTreeMap<u64, u64>,
}

/// What the reads measured (from the scenario's `warmup` on).
#[derive(Debug)]
struct Measured {
    reads: u64,
    writes: u64,
    at_primary: u64,
    stale: u64,
    ryw_violations: u64,
    monotonic_violations: u64,
    versions_behind: u64,
    versions_behind_max: u64,
    /// Of stale reads: how long the version served had been superseded, microseconds.
    staleness_us: Histogram<u64>,
    stale_ratio: Series,
    primary_share: Series,
    lag_ms: Series,
}

/// The primary, its replicas and the proxy, as one node.
pub struct ReadReplicas {
    cfg: ReadReplicasConfig,
    /// Per key written: its recent versions with their commit times, oldest first (kept while
    /// some replica may still serve an older one).
    versions: BTreeMap<u64, VecDeque<(u64, SimTime)>>,
    position: u64,
    replicas: Vec<Replica>,
    sessions: BTreeMap<NodeId, Session>,
    delay_rng: SimRng,
    route_rng: SimRng,
    service_rng: SimRng,
    measure_from: SimTime,
    m: Measured,
}

impl ReadReplicas {
    /// The node built from its configuration.
    pub fn new(cfg: &ReadReplicasConfig, b: &BuildCtx<'_>) -> ReadReplicas {
        let window = b.window();
        ReadReplicas {
            cfg: cfg.clone(),
            versions: BTreeMap::new(),
            position: 0,
            replicas: (0..cfg.replicas.max(1))
                .map(|_| Replica::default())
                .collect(),
            sessions: BTreeMap::new(),
            delay_rng: b.rng("replication-delay"),
            route_rng: b.rng("routing"),
            service_rng: b.rng("service"),
            measure_from: b.measure_from(),
            m: Measured {
                reads: 0,
                writes: 0,
                at_primary: 0,
                stale: 0,
                ryw_violations: 0,
                monotonic_violations: 0,
                versions_behind: 0,
                versions_behind_max: 0,
                staleness_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("valid histogram bounds"),
                stale_ratio: Series::new(SeriesKind::Mean, window),
                primary_share: Series::new(SeriesKind::Mean, window),
                lag_ms: Series::new(SeriesKind::Mean, window),
            },
        }
    }

    fn session(&mut self, from: NodeId) -> &mut Session {
        let next = self.sessions.len() % self.replicas.len();
        self.sessions.entry(from).or_insert_with(|| Session {
            home: next,
            ..Session::default()
        })
    }

    /// Commit a write at `now`, ship it to every replica; when its reply may go.
    fn write(&mut self, now: SimTime, from: NodeId, key: u64) -> (u64, SimTime) {
        self.position += 1;
        let version = self.position;
        self.versions
            .entry(key)
            .or_default()
            .push_back((version, now));
        let mut applied_at = Vec::with_capacity(self.replicas.len());
        for r in &mut self.replicas {
            let delay = self.cfg.replication_delay.sample(&mut self.delay_rng);
            r.tail = r.tail.max(now.after(delay));
            r.pending.push_back(Shipped {
                apply_at: r.tail,
                committed: now,
                key,
                version,
            });
            applied_at.push(r.tail);
        }
        let s = self.session(from);
        s.last_write = version;
        s.wrote.insert(key, version);
        let acked = match self.cfg.replication {
            ReplicaAcks::Async => now,
            ReplicaAcks::SemiSync { acks } => {
                applied_at.sort_unstable();
                applied_at[(acks as usize).clamp(1, applied_at.len()) - 1]
            }
        };
        (version, acked)
    }

    /// Which replica serves a read of session `from` at `now`; `None`: the primary.
    fn route(&mut self, now: SimTime, from: NodeId) -> Option<usize> {
        let n = self.replicas.len() as u64;
        let pick = self.route_rng.below(n) as usize;
        let s = self.session(from);
        let (home, last_write, seen) = (s.home, s.last_write, s.seen);
        let caught_up = |token: u64, rng: &mut SimRng, rs: &[Replica]| {
            let ok: Vec<usize> = (0..rs.len()).filter(|&i| rs[i].position >= token).collect();
            (!ok.is_empty()).then(|| ok[rng.below(ok.len() as u64) as usize])
        };
        match self.cfg.routing {
            ReadRouting::Primary => None,
            ReadRouting::AnyReplica => Some(pick),
            ReadRouting::Sticky => Some(home),
            ReadRouting::ReadYourWrites => {
                caught_up(last_write, &mut self.route_rng, &self.replicas)
            }
            ReadRouting::MonotonicReads => caught_up(seen, &mut self.route_rng, &self.replicas),
            ReadRouting::BoundedStaleness { max_lag } => {
                (self.replicas[pick].lag(now) <= max_lag).then_some(pick)
            }
        }
    }

    /// Serve a read of `key` for session `from` at `now`: the version returned.
    fn read(&mut self, now: SimTime, from: NodeId, key: u64) -> u64 {
        let at = self.route(now, from);
        let newest = self
            .versions
            .get(&key)
            .and_then(|v| v.back())
            .map_or(0, |v| v.0);
        let (version, position) = match at {
            None => (newest, self.position),
            Some(i) => {
                let r = &mut self.replicas[i];
                r.reads += 1;
                (r.applied.get(&key).copied().unwrap_or(0), r.position)
            }
        };
        let s = self.session(from);
        let wrote = s.wrote.get(&key).copied().unwrap_or(0);
        let read_before = s.read.get(&key).copied().unwrap_or(0);
        s.read.insert(key, read_before.max(version));
        s.seen = s.seen.max(position);
        if now >= self.measure_from {
            self.measure(now, key, version, at.is_none(), wrote, read_before);
        }
        self.prune(key);
        version
    }

    /// Count a read that returned `version` of `key`.
    fn measure(
        &mut self,
        now: SimTime,
        key: u64,
        version: u64,
        primary: bool,
        wrote: u64,
        read_max: u64,
    ) {
        let m = &mut self.m;
        m.reads += 1;
        m.at_primary += u64::from(primary);
        m.ryw_violations += u64::from(version < wrote);
        m.monotonic_violations += u64::from(version < read_max);
        m.primary_share.add(now, if primary { 1.0 } else { 0.0 });
        let lag = self
            .replicas
            .iter()
            .map(|r| r.lag(now))
            .max()
            .unwrap_or_default();
        m.lag_ms.add(now, lag.as_millis_f64());
        let newer = self.versions.get(&key).map(|v| {
            let first = v.partition_point(|&(ver, _)| ver <= version);
            (v.len() - first, v.get(first).map(|&(_, t)| t))
        });
        match newer {
            Some((behind, Some(superseded))) if behind > 0 => {
                m.stale += 1;
                m.versions_behind += behind as u64;
                m.versions_behind_max = m.versions_behind_max.max(behind as u64);
                let us = now.since(superseded).0 / 1_000;
                m.staleness_us.saturating_record(us.max(1));
                m.stale_ratio.add(now, 100.0);
            }
            _ => m.stale_ratio.add(now, 0.0),
        }
    }

    /// Forget versions of `key` that no replica can serve an older one than (all have
    /// applied a later version), keeping the newest.
    fn prune(&mut self, key: u64) {
        let oldest = self.replicas.iter().map(|r| r.position).min().unwrap_or(0);
        if let Some(v) = self.versions.get_mut(&key) {
            while v.len() > 1 && v.get(1).is_some_and(|&(ver, _)| ver <= oldest) {
                v.pop_front();
            }
        }
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_>, from: NodeId, req: Request) {
        let now = ctx.now();
        for r in &mut self.replicas {
            r.catch_up(now);
        }
        let service = self.cfg.service_time.sample(&mut self.service_rng);
        let (version, ready) = match req.op {
            Op::Write => {
                if now >= self.measure_from {
                    self.m.writes += 1;
                }
                let (version, acked) = self.write(now, from, req.key);
                self.prune(req.key);
                (version, acked)
            }
            Op::Read => (self.read(now, from, req.key), now),
        };
        let resp = Response {
            call: req.call,
            id: req.id,
            result: Ok(Reply {
                value: version,
                version,
                ..Reply::default()
            }),
        };
        let after = SimDuration(ready.since(now).0 + service.0);
        ctx.send_after(after, from, Message::Response(resp));
    }

    fn stats(&self) -> Vec<(&'static str, f64)> {
        let m = &self.m;
        let reads = m.reads.max(1) as f64;
        let h = &m.staleness_us;
        let ms = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1e3
            }
        };
        vec![
            ("reads", m.reads as f64),
            ("writes", m.writes as f64),
            ("reads_at_primary", m.at_primary as f64),
            ("primary_read_share", m.at_primary as f64 / reads),
            ("stale_reads", m.stale as f64),
            ("stale_read_ratio", m.stale as f64 / reads),
            ("read_your_writes_violations", m.ryw_violations as f64),
            ("monotonic_read_violations", m.monotonic_violations as f64),
            (
                "versions_behind_mean",
                m.versions_behind as f64 / m.stale.max(1) as f64,
            ),
            ("versions_behind_max", m.versions_behind_max as f64),
            ("staleness_p50_ms", ms(0.5)),
            ("staleness_p99_ms", ms(0.99)),
            ("staleness_max_ms", h.max() as f64 / 1e3),
        ]
    }
}

impl Node<Builtin> for ReadReplicas {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        if let Message::Request(req) = msg {
            self.on_request(ctx, from, req);
        }
        // Responses, plug-in and protocol messages are not for this node.
    }

    fn on_timer(&mut self, _ctx: &mut Ctx<'_>, _timer: TimerId, _tag: u64) {}

    fn on_crash(&mut self, _now: SimTime) {
        // The data is durable and writes still being shipped are in the primary's log; the
        // replies in flight are lost with the node.
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let mut stats = NodeStats::counters(self.stats());
        for (i, r) in self.replicas.iter().enumerate() {
            stats
                .counters
                .insert(format!("replica_{i}_reads"), r.reads as f64);
        }
        let m = &mut self.m;
        stats.series = vec![
            m.stale_ratio
                .finish("stale_reads_percent", "Stale reads (% of reads)", "%", now),
            m.primary_share.finish(
                "primary_read_share",
                "Reads served by the primary (fraction)",
                "fraction",
                now,
            ),
            m.lag_ms.finish(
                "replica_lag_ms",
                "Replication lag of the furthest-behind replica, at reads (ms)",
                "ms",
                now,
            ),
        ];
        Some(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_applies_in_log_order_and_reports_its_lag() {
        let mut r = Replica::default();
        let t = |ms: u64| SimTime(ms * 1_000_000);
        for (version, (commit, apply)) in [(0, 50), (10, 20)].into_iter().enumerate() {
            r.tail = r.tail.max(t(apply));
            r.pending.push_back(Shipped {
                apply_at: r.tail,
                committed: t(commit),
                key: 7,
                version: version as u64 + 1,
            });
        }
        r.catch_up(t(30));
        // The second write was due at 20 ms but waits behind the first (50 ms).
        assert_eq!(
            (r.position, r.lag(t(30))),
            (0, SimDuration::from_millis(30))
        );
        r.catch_up(t(50));
        assert_eq!((r.position, r.applied[&7]), (2, 2));
        assert_eq!(r.lag(t(60)), SimDuration::ZERO);
    }
}
