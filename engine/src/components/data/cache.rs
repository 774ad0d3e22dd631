//! `Cache`: a cache in front of a backing store (a `Server` or a load balancer), with four
//! strategies, LRU/LFU/TTL eviction under a capacity, and optional request coalescing.
//!
//! ```text
//!  client ──read──▶ cache ── hit ──────────────────────────────────────▶ reply (after hit_time)
//!                     └─ miss ─▶ backend read ─▶ fill the entry ──────▶ reply
//!  client ──write─▶ cache ─┬ write-through: backend write ─▶ update entry ─▶ reply
//!                          ├ cache-aside:   backend write ─▶ drop entry ───▶ reply
//!                          └ write-behind:  update entry (dirty) ─▶ reply; every
//!                                           flush_interval the dirty entries go to the backend
//! ```
//!
//! The cache stands for the application's cache layer: a client sends it its reads and writes
//! and it talks to the backend itself. Read-through and cache-aside reads cost the same here
//! (a lookup, then on a miss one backend call); the strategies differ in what a write does to
//! the entry and in how a miss fills it: a read-through cache never overwrites an entry that
//! a newer write has filled meanwhile, while cache-aside (the application sets the entry after
//! its database read) does, which is how the classic cache-aside stale-read race arises.
//!
//! Staleness is checked against ground truth shared by every cache of the run (the observer
//! `cache-truth`): every write gets a version; the truth knows the newest version acknowledged
//! to a client and the newest one the backend has acknowledged. An entry filled from the
//! backend carries the backend's version when the read was sent; a hit on an entry older than
//! the newest acknowledged write is a stale read. A write-behind cache that crashes (losing its
//! state) before flushing loses the writes it had acknowledged: they are counted in
//! `writes_lost`, and later reads of those keys read stale data.
//!
//! Caches stack: a cache's backend may be another cache (edge caches per zone in front of a
//! regional tier in front of the origin). An entry filled from a parent cache carries the
//! version the parent served, so a stale parent makes stale children. A purge (scheduled with
//! `purges`, or a write passing through) drops the key here and is passed on to the caches in
//! `purge_to` (the next tier toward the users), each after `purge_delay`; the truth times how
//! long each purge takes to reach every cache it was passed to. A load that was in flight when
//! its key was purged answers its readers but fills nothing (it may carry the old value).
//!
//! ```text
//!  purge at the origin side ─▶ regional: drop ─(purge_delay)─▶ edge-1: drop
//!                                          └──(purge_delay)─▶ edge-2: drop   ─▶ seen everywhere
//! ```
//!
//! Against stampedes at expiry: `coalesce` (one backend read per key at a time) and
//! `early_refresh` (XFetch, Vattani et al. 2015: a hit refreshes the entry in the background
//! when now − δ·β·ln(U) ≥ expiry, δ being the time its last fill took, U uniform in (0, 1]).
//!
//! Eviction is O(log n): entries in a `BTreeMap` by key and an ordered set of
//! (priority, key) for the victim: LRU by last use, LFU by (use count, last use), TTL by the time
//! the entry was filled (the one nearest to expiry goes first). With `ttl`, an entry expires
//! that long after it was filled, whatever the policy (dirty write-behind entries wait for
//! their flush).

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::traffic::calls::CallTable;
use crate::contract::build::{BuildCtx, Observer};
use crate::contract::call::{CallId, Cause, Op, Reply, Request, RequestId, Response};
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::trace::Mark;
use crate::contract::validate::{Path, Validator};
use crate::sim::dist::Dist;
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// How reads and writes use the cache and the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CacheStrategy {
    /// The application reads the cache, on a miss reads the backend and sets the entry; it
    /// writes the backend and then deletes the entry.
    CacheAside,
    /// The cache reads the backend on a miss; writes go to the backend and the cache drops
    /// the entry (as cache-aside), so only reads fill it.
    ReadThrough,
    /// Writes go to the backend, then update the entry; reads as read-through.
    WriteThrough,
    /// Writes update the entry and are acknowledged at once; dirty entries are written to the
    /// backend every `flush_interval` (and when evicted). A crash loses unflushed writes.
    WriteBehind,
}

/// Which entry goes when the cache is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Eviction {
    /// Least recently used.
    Lru,
    /// Least frequently used (ties: least recently used).
    Lfu,
    /// Filled longest ago (nearest to expiry).
    Ttl,
}

/// A cache node in front of a backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Cache", deny_unknown_fields)]
pub struct CacheConfig {
    /// The backing store: a node, a group (addressed by key: key mod replicas) or a load
    /// balancer.
    pub backend: String,
    /// How reads and writes use the cache. Default `ReadThrough`.
    #[serde(default = "default_strategy")]
    pub strategy: CacheStrategy,
    /// Which entry is evicted when the cache is full. Default `Lru`.
    #[serde(default = "default_eviction")]
    pub eviction: Eviction,
    /// Most entries held (count). Default 1000.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Entries expire this long after they were filled. Default: never (required with
    /// `eviction: Ttl`).
    #[serde(default)]
    pub ttl: Option<SimDuration>,
    /// Time to look up or update an entry, added to every answer. Default "100us".
    #[serde(default = "default_hit_time")]
    pub hit_time: SimDuration,
    /// A backend call not answered after this long fails with `timeout`. Default "1s".
    #[serde(default = "default_timeout")]
    pub timeout: SimDuration,
    /// Misses on a key whose backend read is in flight wait for it instead of sending their
    /// own (against stampedes). Default false.
    #[serde(default)]
    pub coalesce: bool,
    /// Write-behind: how often dirty entries are written to the backend. Default "100ms".
    #[serde(default = "default_flush_interval")]
    pub flush_interval: SimDuration,
    /// Caches a purge is passed on to (the next tier toward the users, whose `backend` is
    /// this cache), e.g. `["edge-eu", "edge-us"]`. A purge scheduled here, or a write that
    /// passes through, goes on to them. Default `[]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purge_to: Vec<String>,
    /// Time for a purge to go from this cache to each cache in `purge_to` (a distribution of
    /// durations, drawn per hop). Default `Constant("0s")`.
    #[serde(default = "default_purge_delay", skip_serializing_if = "is_no_delay")]
    pub purge_delay: Dist,
    /// Content changes published here: `[(at: "20s", key: Some(0))]`: at `at`, `key` gets a
    /// new version at the origin and a purge of it starts at this cache; `key: None` purges
    /// every entry (nothing changes at the origin). Default `[]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purges: Vec<ScheduledPurge>,
    /// Early probabilistic refresh (XFetch) with this β (> 0; 1 is the paper's default): a hit
    /// on an entry near its expiry refreshes it in the background with a probability that
    /// grows as expiry nears and with how long its last fill took. Needs `ttl`. Default
    /// `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_refresh: Option<f64>,
}

/// A purge published at a cache at a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduledPurge {
    /// When (time since the run began).
    pub at: SimDuration,
    /// The key whose content changed, or `None` for every entry. Default `None`.
    #[serde(default)]
    pub key: Option<u64>,
}

/// A purge on its way from tier to tier: drop `key` (or everything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurgeMsg {
    /// Which purge (for timing it).
    pub id: u64,
    /// The key, or `None` for every entry.
    pub key: Option<u64>,
}

fn default_strategy() -> CacheStrategy {
    CacheStrategy::ReadThrough
}
fn default_eviction() -> Eviction {
    Eviction::Lru
}
fn default_capacity() -> u32 {
    1000
}
fn default_hit_time() -> SimDuration {
    SimDuration(100_000)
}
fn default_timeout() -> SimDuration {
    SimDuration::from_secs(1)
}
fn default_flush_interval() -> SimDuration {
    SimDuration::from_millis(100)
}
fn default_purge_delay() -> Dist {
    Dist::Constant(SimDuration::ZERO)
}
fn is_no_delay(d: &Dist) -> bool {
    *d == default_purge_delay()
}

crate::settable!(CacheConfig {
    backend,
    strategy,
    eviction,
    capacity,
    ttl,
    hit_time,
    timeout,
    coalesce,
    flush_interval,
    purge_to,
    purge_delay,
    purges,
    early_refresh
});

impl CacheConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        v.resolve(&at.field("backend"), &self.backend);
        if self.capacity == 0 {
            v.error(
                &at.field("capacity"),
                "a cache that holds nothing",
                "expected a capacity >= 1",
            );
        }
        if self.eviction == Eviction::Ttl && self.ttl.is_none() {
            v.error(
                &at.field("eviction"),
                "TTL eviction without a `ttl`",
                "expected `ttl: \"...\"` with `eviction: Ttl`",
            );
        }
        if self.ttl == Some(SimDuration::ZERO) {
            v.error(
                &at.field("ttl"),
                "a zero TTL",
                "expected a positive duration",
            );
        }
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout fails every backend call",
                "expected a positive duration",
            );
        }
        for (i, name) in self.purge_to.iter().enumerate() {
            v.resolve(&at.field("purge_to").index(i), name);
        }
        v.check_dist(&at.field("purge_delay"), &self.purge_delay);
        if let Some(beta) = self.early_refresh {
            if !(beta.is_finite() && beta > 0.0) {
                v.error(
                    &at.field("early_refresh"),
                    format!("β = {beta}"),
                    "expected a positive number such as 1.0",
                );
            }
            if self.ttl.is_none() {
                v.error(
                    &at.field("early_refresh"),
                    "early refresh without a `ttl`: entries never expire",
                    "expected `ttl: \"...\"` with `early_refresh`",
                );
            }
        }
        if self.strategy == CacheStrategy::WriteBehind && self.flush_interval == SimDuration::ZERO {
            v.error(
                &at.field("flush_interval"),
                "a zero flush interval",
                "expected a positive duration such as \"100ms\"",
            );
        }
    }
}

/// Ground truth on versions, shared by every cache of a run, and the timing of purges.
#[derive(Debug, Default)]
pub struct CacheTruth {
    next: u64,
    /// Per key: newest version acknowledged to a client.
    acked: BTreeMap<u64, u64>,
    /// Per key: newest version the backend acknowledged.
    stored: BTreeMap<u64, u64>,
    /// Purges not yet seen everywhere: id → (started, caches still to apply it).
    purges: BTreeMap<u64, (SimTime, u64)>,
    next_purge: u64,
    /// Purges seen everywhere: how many, total and longest time.
    purges_done: u64,
    purge_time_sum: SimDuration,
    purge_time_max: SimDuration,
    purges_untracked: u64,
}

/// Purges followed at once; beyond it (a purge tree with an unreachable cache, under many
/// writes) new ones are counted but not timed.
const MAX_PURGES_TRACKED: usize = 100_000;

impl CacheTruth {
    fn new_version(&mut self) -> u64 {
        self.next += 1;
        self.next
    }
    fn ack(&mut self, key: u64, version: u64) {
        let v = self.acked.entry(key).or_default();
        *v = (*v).max(version);
    }
    fn store(&mut self, key: u64, version: u64) {
        let v = self.stored.entry(key).or_default();
        *v = (*v).max(version);
    }
    fn stored(&self, key: u64) -> u64 {
        self.stored.get(&key).copied().unwrap_or(0)
    }
    fn is_stale(&self, key: u64, version: u64) -> bool {
        self.acked.get(&key).is_some_and(|&a| a > version)
    }

    /// The content of `key` changed at the origin (a publication): its new version.
    fn publish(&mut self, key: u64) -> u64 {
        let v = self.new_version();
        self.store(key, v);
        self.ack(key, v);
        v
    }

    /// A purge starts at one cache at `now`: its id.
    fn start_purge(&mut self, now: SimTime) -> u64 {
        self.next_purge += 1;
        if self.purges.len() < MAX_PURGES_TRACKED {
            self.purges.insert(self.next_purge, (now, 1));
        } else {
            self.purges_untracked += 1;
        }
        self.next_purge
    }

    /// A cache applied purge `id` at `now` and passed it on to `passed_on` caches.
    fn purge_applied(&mut self, id: u64, now: SimTime, passed_on: u64) {
        let Some(p) = self.purges.get_mut(&id) else {
            return;
        };
        p.1 = p.1 + passed_on - 1;
        if p.1 == 0 {
            let took = now.since(p.0);
            self.purges.remove(&id);
            self.purges_done += 1;
            self.purge_time_sum = SimDuration(self.purge_time_sum.0 + took.0);
            self.purge_time_max = self.purge_time_max.max(took);
        }
    }
}

impl Observer for CacheTruth {
    fn finish(&mut self, _now: SimTime) -> NodeStats {
        if self.next_purge == 0 {
            return NodeStats::default();
        }
        let mean_ms = if self.purges_done == 0 {
            0.0
        } else {
            self.purge_time_sum.as_millis_f64() / self.purges_done as f64
        };
        NodeStats::counters([
            ("purges", self.next_purge as f64),
            ("purges_seen_everywhere", self.purges_done as f64),
            ("purges_not_seen_everywhere", self.purges.len() as f64),
            ("purges_untracked", self.purges_untracked as f64),
            ("purge_time_mean_ms", mean_ms),
            ("purge_time_max_ms", self.purge_time_max.as_millis_f64()),
        ])
    }
}

/// One cached entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    /// Version of the value held.
    pub version: u64,
    uses: u64,
    last_use: u64,
    filled: SimTime,
    /// How long the fill took (the δ of early refresh).
    cost: SimDuration,
    /// Writes acknowledged but not yet flushed (write-behind).
    pub dirty: u32,
}

/// The entries and the eviction order: O(log n) per operation.
#[derive(Debug)]
pub struct Store {
    eviction: Eviction,
    capacity: usize,
    ttl: Option<SimDuration>,
    entries: BTreeMap<u64, Entry>,
    order: BTreeSet<(u64, u64, u64)>,
    tick: u64,
    /// Entries evicted for room.
    pub evictions: u64,
    /// Entries found expired.
    pub expirations: u64,
}

impl Store {
    /// An empty store.
    pub fn new(eviction: Eviction, capacity: u32, ttl: Option<SimDuration>) -> Store {
        Store {
            eviction,
            capacity: capacity as usize,
            ttl,
            entries: BTreeMap::new(),
            order: BTreeSet::new(),
            tick: 0,
            evictions: 0,
            expirations: 0,
        }
    }

    fn rank(&self, key: u64, e: &Entry) -> (u64, u64, u64) {
        match self.eviction {
            Eviction::Lru => (e.last_use, 0, key),
            Eviction::Lfu => (e.uses, e.last_use, key),
            Eviction::Ttl => (e.filled.0, e.last_use, key),
        }
    }

    fn expired(&self, e: &Entry, now: SimTime) -> bool {
        e.dirty == 0 && self.ttl.is_some_and(|ttl| now >= e.filled.after(ttl))
    }

    /// Look `key` up at `now`, counting a use; an expired entry is dropped and not found.
    pub fn get(&mut self, key: u64, now: SimTime) -> Option<Entry> {
        let e = *self.entries.get(&key)?;
        self.order.remove(&self.rank(key, &e));
        if self.expired(&e, now) {
            self.entries.remove(&key);
            self.expirations += 1;
            return None;
        }
        self.tick += 1;
        let e = Entry {
            uses: e.uses + 1,
            last_use: self.tick,
            ..e
        };
        self.order.insert(self.rank(key, &e));
        self.entries.insert(key, e);
        Some(e)
    }

    /// The entry for `key` without counting a use (and without expiring it).
    pub fn peek(&self, key: u64) -> Option<&Entry> {
        self.entries.get(&key)
    }

    /// Set `key` to `version` at `now` (adding `dirty` unflushed writes); returns the entry
    /// evicted to make room, if any.
    pub fn put(
        &mut self,
        key: u64,
        version: u64,
        dirty: u32,
        now: SimTime,
    ) -> Option<(u64, Entry)> {
        self.tick += 1;
        let old = self.entries.remove(&key);
        if let Some(o) = &old {
            self.order.remove(&self.rank(key, o));
        }
        let mut evicted = None;
        if old.is_none() && self.entries.len() >= self.capacity {
            evicted = self.evict();
        }
        let e = Entry {
            version,
            uses: old.map_or(1, |o| o.uses + 1),
            last_use: self.tick,
            filled: now,
            cost: SimDuration::ZERO,
            dirty: old.map_or(0, |o| o.dirty) + dirty,
        };
        self.order.insert(self.rank(key, &e));
        self.entries.insert(key, e);
        evicted
    }

    fn evict(&mut self) -> Option<(u64, Entry)> {
        let victim = self.order.pop_first()?;
        let e = self.entries.remove(&victim.2)?;
        self.evictions += 1;
        Some((victim.2, e))
    }

    /// Drop `key` (an invalidation).
    pub fn remove(&mut self, key: u64) -> Option<Entry> {
        let e = self.entries.remove(&key)?;
        self.order.remove(&self.rank(key, &e));
        Some(e)
    }

    /// Record how long the fill of `key` took.
    fn set_cost(&mut self, key: u64, cost: SimDuration) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.cost = cost;
        }
    }

    /// Drop every entry that has no unflushed writes (a purge of everything); how many went.
    fn purge_all(&mut self) -> usize {
        let gone: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| e.dirty == 0)
            .map(|(&k, _)| k)
            .collect();
        for &k in &gone {
            self.remove(k);
        }
        gone.len()
    }

    /// Mark `key` flushed up to `version`: its unflushed writes are now in flight.
    fn clean(&mut self, key: u64) {
        if let Some(e) = self.entries.get_mut(&key) {
            e.dirty = 0;
        }
    }

    /// Forget everything (a crash); returns the unflushed writes that were lost.
    fn clear(&mut self) -> u64 {
        let lost = self.entries.values().map(|e| e.dirty as u64).sum();
        self.entries.clear();
        self.order.clear();
        lost
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A client request waiting for the cache's answer.
#[derive(Clone, Copy, Debug)]
struct Waiter {
    from: NodeId,
    call: CallId,
    id: RequestId,
    /// The caller's attempt tag: a retry that misses again fetches as a new execution.
    attempt: u32,
}

#[derive(Clone, Copy, Debug)]
enum Purpose {
    /// A read miss; `version` is the backend's version when the read was sent at `sent`.
    Load {
        version: u64,
        sent: SimTime,
        waiter: Waiter,
    },
    /// An early refresh of an entry still served (no one waits for it).
    Refresh { version: u64, sent: SimTime },
    /// A client write sent on to the backend (write-through, cache-aside, read-through).
    Write { version: u64, waiter: Waiter },
    /// A write-behind flush of `writes` acknowledged writes.
    Flush { version: u64, writes: u32 },
}

#[derive(Clone, Copy, Debug)]
struct BackendCall {
    key: u64,
    timer: TimerId,
    purpose: Purpose,
}

/// Timer tag of the write-behind flush (call timeouts use their `CallId`, whose generation
/// never gets near these).
const TAG_FLUSH: u64 = u64::MAX;
/// Timer tags of scheduled purges: this plus the purge's index.
const TAG_PURGE: u64 = u64::MAX - (1 << 24);

/// Counters the report shows.
#[derive(Clone, Debug, Default)]
struct Counts {
    reads: u64,
    writes: u64,
    hits: u64,
    stale_reads: u64,
    backend_reads: u64,
    backend_writes: u64,
    coalesced: u64,
    writes_lost: u64,
    failed: u64,
    purges_applied: u64,
    fills_dropped_after_purge: u64,
    early_refreshes: u64,
}

/// One cache node.
pub struct Cache {
    cfg: CacheConfig,
    backends: Vec<NodeId>,
    store: Store,
    calls: CallTable<BackendCall>,
    /// Coalescing: per key with a read in flight, the extra readers waiting for it.
    waiting: BTreeMap<u64, Vec<Waiter>>,
    truth: Arc<Mutex<CacheTruth>>,
    purge_to: Vec<NodeId>,
    purge_rng: SimRng,
    refresh_rng: SimRng,
    /// Keys with an early refresh in flight.
    refreshing: BTreeSet<u64>,
    /// When each key was last purged (kept as long as a load sent before may still answer).
    purged_at: BTreeMap<u64, SimTime>,
    purged_all_at: Option<SimTime>,
    counts: Counts,
    hit_ratio: Series,
    stale: Series,
    /// The series end with the arrivals (later windows only drain).
    series_end: SimTime,
}

impl Cache {
    /// A cache built from its configuration.
    pub fn new(cfg: &CacheConfig, b: &BuildCtx<'_>) -> Cache {
        Cache {
            cfg: cfg.clone(),
            backends: b.resolve(&cfg.backend),
            store: Store::new(cfg.eviction, cfg.capacity, cfg.ttl),
            calls: CallTable::default(),
            waiting: BTreeMap::new(),
            truth: b.observer("cache-truth", CacheTruth::default),
            purge_to: cfg.purge_to.iter().flat_map(|n| b.resolve(n)).collect(),
            purge_rng: b.rng("purge"),
            refresh_rng: b.rng("early-refresh"),
            refreshing: BTreeSet::new(),
            purged_at: BTreeMap::new(),
            purged_all_at: None,
            counts: Counts::default(),
            hit_ratio: Series::new(SeriesKind::Mean, b.window()),
            stale: Series::new(SeriesKind::Sum, b.window()),
            series_end: b.arrivals_end(),
        }
    }

    fn truth(&self) -> std::sync::MutexGuard<'_, CacheTruth> {
        self.truth.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reply(&self, ctx: &mut Ctx<'_>, w: Waiter, result: Result<Reply, Cause>) {
        let resp = Response {
            call: w.call,
            id: w.id,
            result,
        };
        ctx.send_after(self.cfg.hit_time, w.from, Message::Response(resp));
    }

    /// Send a call to the backend for `key` after the lookup time; `false` if it cannot be
    /// reached (the caller answers with `unreachable`).
    fn call(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: u64,
        op: Op,
        (id, attempt): (RequestId, u32),
        purpose: Purpose,
    ) -> bool {
        let to = self.backends[(key % self.backends.len() as u64) as usize];
        if !ctx.reachable(to) {
            return false;
        }
        let timeout = SimDuration(self.cfg.hit_time.0 + self.cfg.timeout.0);
        let call = self.calls.open(ctx, |ctx, call| BackendCall {
            key,
            timer: ctx.set_timer(timeout, call.0),
            purpose,
        });
        let now = ctx.now();
        let req = Request {
            call,
            id,
            op,
            key,
            value: 0,
            work: crate::sim::rng::mix64(id.0 ^ key.rotate_left(29)),
            attempt,
            issued_at: now,
            ..Request::default()
        };
        ctx.send_after(self.cfg.hit_time, to, Message::Request(req));
        match op {
            Op::Read => self.counts.backend_reads += 1,
            Op::Write => self.counts.backend_writes += 1,
        }
        true
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, w: Waiter, key: u64) {
        self.counts.reads += 1;
        let now = ctx.now();
        if let Some(e) = self.store.get(key, now) {
            self.counts.hits += 1;
            self.hit_ratio.add(now, 1.0);
            ctx.trace_mark(w.id, Mark::CacheHit);
            if self.truth().is_stale(key, e.version) {
                self.counts.stale_reads += 1;
                self.stale.add(now, 1.0);
            }
            let reply = Reply {
                value: e.version,
                version: e.version,
                ..Reply::default()
            };
            self.reply(ctx, w, Ok(reply));
            self.maybe_refresh_early(ctx, key, &e, w.id);
            return;
        }
        self.hit_ratio.add(now, 0.0);
        ctx.trace_mark(w.id, Mark::CacheMiss);
        if self.cfg.coalesce
            && let Some(list) = self.waiting.get_mut(&key)
        {
            list.push(w);
            self.counts.coalesced += 1;
            return;
        }
        let version = self.truth().stored(key);
        let load = Purpose::Load {
            version,
            sent: now,
            waiter: w,
        };
        if self.call(ctx, key, Op::Read, (w.id, w.attempt), load) {
            if self.cfg.coalesce {
                self.waiting.insert(key, Vec::new());
            }
        } else {
            self.counts.failed += 1;
            self.reply(ctx, w, Err(Cause::Unreachable));
        }
    }

    /// XFetch: refresh a hit entry in the background when now − δ·β·ln(U) ≥ its expiry.
    fn maybe_refresh_early(&mut self, ctx: &mut Ctx<'_>, key: u64, e: &Entry, id: RequestId) {
        let (Some(beta), Some(ttl)) = (self.cfg.early_refresh, self.cfg.ttl) else {
            return;
        };
        if self.refreshing.contains(&key) || self.waiting.contains_key(&key) {
            return;
        }
        let now = ctx.now();
        let expiry = e.filled.after(ttl);
        let ahead = e.cost.as_secs_f64() * beta * -libm::log(self.refresh_rng.uniform_open0());
        if now.after(SimDuration::from_secs_f64(ahead)) < expiry {
            return;
        }
        let version = self.truth().stored(key);
        let refresh = Purpose::Refresh { version, sent: now };
        if self.call(ctx, key, Op::Read, (id, 0), refresh) {
            self.refreshing.insert(key);
            self.counts.early_refreshes += 1;
        }
    }

    /// Drop `key` (or everything) here as purge `id`, and pass the purge on to the next tier.
    fn apply_purge(&mut self, ctx: &mut Ctx<'_>, id: u64, key: Option<u64>) {
        let now = ctx.now();
        self.counts.purges_applied += 1;
        match key {
            Some(k) => {
                if self.store.peek(k).is_some_and(|e| e.dirty == 0) {
                    self.store.remove(k);
                }
                // Loads still in flight may carry the old value: they must not fill. A load
                // lives at most hit_time + timeout, so older marks can go.
                let horizon = SimDuration(self.cfg.hit_time.0 + self.cfg.timeout.0);
                self.purged_at.retain(|_, t| now.since(*t) <= horizon);
                self.purged_at.insert(k, now);
            }
            None => {
                self.store.purge_all();
                self.purged_all_at = Some(now);
            }
        }
        self.pass_on_purge(ctx, id, key);
    }

    /// Send purge `id` on to the next tier, each after its own delay.
    fn pass_on_purge(&mut self, ctx: &mut Ctx<'_>, id: u64, key: Option<u64>) {
        let now = ctx.now();
        let mut passed_on = 0;
        for i in 0..self.purge_to.len() {
            let to = self.purge_to[i];
            if ctx.reachable(to) {
                let delay = self.cfg.purge_delay.sample(&mut self.purge_rng);
                ctx.send_after(delay, to, Message::Purge(PurgeMsg { id, key }));
                passed_on += 1;
            }
        }
        self.truth().purge_applied(id, now, passed_on);
    }

    /// A purge starts here: a scheduled publication, or a write that went through.
    fn start_purge(&mut self, ctx: &mut Ctx<'_>, key: Option<u64>) {
        let id = self.truth().start_purge(ctx.now());
        self.apply_purge(ctx, id, key);
    }

    /// A load sent at `sent` for `key` answered: may it fill the entry (no purge since)?
    fn fill_allowed(&self, key: u64, sent: SimTime) -> bool {
        let after = |t: Option<SimTime>| t.is_some_and(|t| t >= sent);
        !(after(self.purged_at.get(&key).copied()) || after(self.purged_all_at))
    }

    fn on_write(&mut self, ctx: &mut Ctx<'_>, w: Waiter, key: u64) {
        self.counts.writes += 1;
        let version = self.truth().new_version();
        if self.cfg.strategy == CacheStrategy::WriteBehind {
            let now = ctx.now();
            let evicted = self.store.put(key, version, 1, now);
            self.truth().ack(key, version);
            self.flush_evicted(ctx, evicted);
            self.reply(
                ctx,
                w,
                Ok(Reply {
                    value: version,
                    version,
                    ..Reply::default()
                }),
            );
            return;
        }
        if !self.call(
            ctx,
            key,
            Op::Write,
            (w.id, w.attempt),
            Purpose::Write { version, waiter: w },
        ) {
            self.counts.failed += 1;
            self.reply(ctx, w, Err(Cause::Unreachable));
        }
    }

    /// A dirty entry evicted from a write-behind cache is written back at once.
    fn flush_evicted(&mut self, ctx: &mut Ctx<'_>, evicted: Option<(u64, Entry)>) {
        if let Some((key, e)) = evicted.filter(|(_, e)| e.dirty > 0) {
            self.flush_one(ctx, key, e.version, e.dirty);
        }
    }

    fn flush_one(&mut self, ctx: &mut Ctx<'_>, key: u64, version: u64, writes: u32) {
        let purpose = Purpose::Flush { version, writes };
        if !self.call(ctx, key, Op::Write, (RequestId(version), 0), purpose) {
            self.counts.writes_lost += writes as u64;
        }
    }

    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        let dirty: Vec<(u64, Entry)> = self
            .store
            .entries
            .iter()
            .filter(|(_, e)| e.dirty > 0)
            .map(|(k, e)| (*k, *e))
            .collect();
        for (key, e) in dirty {
            self.store.clean(key);
            self.flush_one(ctx, key, e.version, e.dirty);
        }
        ctx.set_timer(self.cfg.flush_interval, TAG_FLUSH);
    }

    fn on_backend(&mut self, ctx: &mut Ctx<'_>, call: CallId, result: Result<Reply, Cause>) {
        let Some(c) = self.calls.close(call) else {
            return; // Late: it timed out, or the cache crashed meanwhile.
        };
        ctx.cancel_timer(c.timer);
        self.complete(ctx, c, result);
    }

    /// Fill `key` with `version` from a load sent at `sent`, unless a newer entry or a purge
    /// since forbids it. A `renew`al (an early refresh) also refills an entry of the same
    /// version, so its time to live starts again.
    fn fill(&mut self, ctx: &mut Ctx<'_>, key: u64, version: u64, sent: SimTime, renew: bool) {
        if !self.fill_allowed(key, sent) {
            self.counts.fills_dropped_after_purge += 1;
            return;
        }
        // Read-through never overwrites a newer entry; cache-aside sets blindly.
        let keep = self.cfg.strategy != CacheStrategy::CacheAside
            && self
                .store
                .peek(key)
                .is_some_and(|e| e.version > version || (e.version == version && !renew));
        if !keep {
            let now = ctx.now();
            let evicted = self.store.put(key, version, 0, now);
            self.store.set_cost(key, now.since(sent));
            self.flush_evicted(ctx, evicted);
        }
    }

    fn complete(&mut self, ctx: &mut Ctx<'_>, c: BackendCall, result: Result<Reply, Cause>) {
        let now = ctx.now();
        let key = c.key;
        match c.purpose {
            Purpose::Load {
                version,
                sent,
                waiter,
            } => {
                let extra = self.waiting.remove(&key).unwrap_or_default();
                let reply = result.map(|r| {
                    let version = served_version(&r).unwrap_or(version);
                    Reply {
                        value: version,
                        version,
                        ..Reply::default()
                    }
                });
                match reply {
                    Ok(r) => self.fill(ctx, key, r.version, sent, false),
                    Err(_) => self.counts.failed += 1 + extra.len() as u64,
                }
                for w in std::iter::once(waiter).chain(extra) {
                    self.reply(ctx, w, reply);
                }
            }
            Purpose::Refresh { version, sent } => {
                self.refreshing.remove(&key);
                if let Ok(r) = result {
                    self.fill(ctx, key, served_version(&r).unwrap_or(version), sent, true);
                }
            }
            Purpose::Write { version, waiter } => {
                if result.is_ok() {
                    {
                        let mut t = self.truth();
                        t.store(key, version);
                        t.ack(key, version);
                    }
                    if self.cfg.strategy == CacheStrategy::WriteThrough {
                        let evicted = self.store.put(key, version, 0, now);
                        self.flush_evicted(ctx, evicted);
                    } else {
                        self.store.remove(key);
                    }
                    if !self.purge_to.is_empty() {
                        // The caches in front of this one still hold the old value.
                        let id = self.truth().start_purge(now);
                        self.counts.purges_applied += 1;
                        self.pass_on_purge(ctx, id, Some(key));
                    }
                } else {
                    self.counts.failed += 1;
                }
                self.reply(
                    ctx,
                    waiter,
                    result.map(|_| Reply {
                        value: version,
                        version,
                        ..Reply::default()
                    }),
                );
            }
            Purpose::Flush { version, writes } => {
                if result.is_ok() {
                    self.truth().store(key, version);
                } else if let Some(e) = self.store.peek(key).copied() {
                    // Dirty again: the next flush tries once more.
                    let evicted = self.store.put(key, e.version.max(version), writes, now);
                    self.flush_evicted(ctx, evicted);
                } else {
                    self.counts.writes_lost += writes as u64;
                }
            }
        }
    }
}

/// The version a backend's reply carries if it came from a cache, which answers with its
/// entry's version as both value and version; `None` otherwise (a server's reply carries none,
/// and a replicated store's versions are its own).
fn served_version(r: &Reply) -> Option<u64> {
    (r.version != 0 && r.value == r.version).then_some(r.version)
}

impl Node<Builtin> for Cache {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        if self.cfg.strategy == CacheStrategy::WriteBehind {
            ctx.set_timer(self.cfg.flush_interval, TAG_FLUSH);
        }
        let now = ctx.now();
        for (i, p) in self.cfg.purges.iter().enumerate() {
            let at = SimTime(p.at.0);
            if at >= now {
                ctx.set_timer(at.since(now), TAG_PURGE + i as u64);
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        match msg {
            Message::Request(req) => {
                let w = Waiter {
                    from,
                    call: req.call,
                    id: req.id,
                    attempt: req.attempt,
                };
                match req.op {
                    Op::Read => self.on_read(ctx, w, req.key),
                    Op::Write => self.on_write(ctx, w, req.key),
                }
            }
            Message::Response(resp) => self.on_backend(ctx, resp.call, resp.result),
            Message::Purge(p) => self.apply_purge(ctx, p.id, p.key),
            // Plug-in and protocol messages are not for a cache.
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        if tag == TAG_FLUSH {
            self.flush(ctx);
        } else if let Some(i) = tag
            .checked_sub(TAG_PURGE)
            .filter(|&i| (i as usize) < self.cfg.purges.len())
        {
            let key = self.cfg.purges[i as usize].key;
            if let Some(k) = key {
                self.truth().publish(k);
            }
            self.start_purge(ctx, key);
        } else if let Some(c) = self.calls.close(CallId(tag)) {
            self.complete(ctx, c, Err(Cause::Timeout));
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        self.counts.writes_lost += self.store.clear();
        self.calls.clear();
        self.waiting.clear();
        self.refreshing.clear();
        self.purged_at.clear();
        self.purged_all_at = None;
    }

    fn on_crash_keep_state(&mut self, _now: SimTime) {
        // The entries (and the write-behind buffer) survive; calls in flight do not.
        self.calls.clear();
        self.waiting.clear();
        self.refreshing.clear();
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let end = self.series_end.min(now);
        let c = &self.counts;
        let ratio = if c.reads == 0 {
            0.0
        } else {
            c.hits as f64 / c.reads as f64
        };
        let mut stats = NodeStats::counters([
            ("reads", c.reads as f64),
            ("writes", c.writes as f64),
            ("hits", c.hits as f64),
            ("misses", (c.reads - c.hits) as f64),
            ("hit_ratio", ratio),
            ("evictions", self.store.evictions as f64),
            ("expirations", self.store.expirations as f64),
            ("stale_reads", c.stale_reads as f64),
            ("backend_reads", c.backend_reads as f64),
            ("backend_writes", c.backend_writes as f64),
            ("coalesced", c.coalesced as f64),
            ("writes_lost", c.writes_lost as f64),
            ("failed", c.failed as f64),
        ]);
        // Only where used, so the tables of caches that never purge or refresh stay short.
        if !self.cfg.purge_to.is_empty() || !self.cfg.purges.is_empty() || c.purges_applied > 0 {
            stats
                .counters
                .insert("purges_applied".to_string(), c.purges_applied as f64);
            stats.counters.insert(
                "fills_dropped_after_purge".to_string(),
                c.fills_dropped_after_purge as f64,
            );
        }
        if self.cfg.early_refresh.is_some() {
            stats
                .counters
                .insert("early_refreshes".to_string(), c.early_refreshes as f64);
        }
        stats.series = vec![
            self.hit_ratio.finish(
                "cache_hit_ratio",
                "Cache hit ratio",
                "fraction of reads",
                end,
            ),
            self.stale.finish(
                "cache_stale_reads",
                "Stale reads served by the cache",
                "reads per window",
                end,
            ),
        ];
        Some(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hits of a store of capacity 2 over a key trace, one use per time unit.
    fn hits(eviction: Eviction, ttl: Option<u64>, trace: &[u64]) -> (u64, Store) {
        let mut s = Store::new(eviction, 2, ttl.map(SimDuration));
        let mut hits = 0;
        for (t, &k) in trace.iter().enumerate() {
            let now = SimTime(t as u64);
            if s.get(k, now).is_some() {
                hits += 1;
            } else {
                s.put(k, 0, 0, now);
            }
        }
        (hits, s)
    }

    #[test]
    fn under_uniform_keys_every_eviction_order_hits_capacity_over_keys() {
        // Independent uniform references over N keys: whichever C keys the cache holds, the
        // next key is one of them with probability C/N (the independent reference model), so
        // the hit ratio is C/N for LRU, LFU and fill order alike. Counted after the cache
        // filled; hits are nearly independent draws, so 4 binomial sigmas.
        use crate::sim::rng::{RandomSource, SimRng};
        let (c, n_keys, refs) = (10u32, 100u64, 200_000u64);
        for eviction in [Eviction::Lru, Eviction::Lfu, Eviction::Ttl] {
            let mut s = Store::new(eviction, c, None);
            let mut rng = SimRng::derive(8, "uniform-keys");
            let mut hits = 0;
            for t in 0..refs + 1000 {
                let (k, now) = (rng.below(n_keys), SimTime(t));
                let hit = s.get(k, now).is_some();
                if !hit {
                    s.put(k, 0, 0, now);
                }
                hits += u64::from(hit && t >= 1000);
            }
            let p = f64::from(c) / n_keys as f64;
            let got = hits as f64 / refs as f64;
            let tol = 4.0 * (p * (1.0 - p) / refs as f64).sqrt();
            assert!(
                (got - p).abs() < tol,
                "{eviction:?}: hit ratio {got} vs C/N = {p} ± {tol}"
            );
        }
    }

    #[test]
    fn lru_and_lfu_hit_counts_on_a_fixed_trace() {
        // Capacity 2. Trace: a a b c a b a c a.
        let trace = [1, 1, 2, 3, 1, 2, 1, 3, 1];
        // LRU by hand: a(miss) a(hit) b(miss) c(miss, evicts a) a(miss, evicts b)
        // b(miss, evicts c) a(hit) c(miss, evicts b) a(hit): 3 hits, 4 evictions.
        let (h, s) = hits(Eviction::Lru, None, &trace);
        assert_eq!((h, s.evictions), (3, 4));
        // LFU by hand (uses, then last use): a(miss,1) a(hit,2) b(miss,1) c(miss, evicts b)
        // a(hit,3) b(miss, evicts c) a(hit,4) c(miss, evicts b) a(hit,5): 4 hits, 3 evictions.
        let (h, s) = hits(Eviction::Lfu, None, &trace);
        assert_eq!((h, s.evictions), (4, 3));
    }

    #[test]
    fn ttl_expires_entries_and_evicts_the_oldest_fill() {
        // TTL 3 time units: a at 0, hit at 1 and 2, expired at 3 (refilled), hit at 4.
        let (h, s) = hits(Eviction::Ttl, Some(3), &[1, 1, 1, 1, 1]);
        assert_eq!((h, s.expirations), (3, 1));
        // Capacity 2 with TTL order: a(0) b(1) a(hit, 2) c(3, evicts a: filled first).
        let (h, s) = hits(Eviction::Ttl, Some(100), &[1, 2, 1, 3, 2, 1]);
        // b at 4 hits; a at 5 misses (evicted).
        assert_eq!((h, s.evictions), (2, 2));
        assert!(s.peek(1).is_some() && s.peek(3).is_some() && s.peek(2).is_none());
    }

    #[test]
    fn clearing_counts_unflushed_writes() {
        let mut s = Store::new(Eviction::Lru, 10, None);
        s.put(1, 1, 1, SimTime(0));
        s.put(1, 2, 1, SimTime(1));
        s.put(2, 3, 1, SimTime(2));
        s.put(3, 0, 0, SimTime(3));
        s.clean(2);
        assert_eq!(s.clear(), 2, "two writes to key 1 were never flushed");
        assert!(s.is_empty());
    }
}
