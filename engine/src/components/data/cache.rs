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
use crate::contract::validate::{Path, Validator};
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

crate::settable!(CacheConfig {
    backend,
    strategy,
    eviction,
    capacity,
    ttl,
    hit_time,
    timeout,
    coalesce,
    flush_interval
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
        if self.strategy == CacheStrategy::WriteBehind && self.flush_interval == SimDuration::ZERO {
            v.error(
                &at.field("flush_interval"),
                "a zero flush interval",
                "expected a positive duration such as \"100ms\"",
            );
        }
    }
}

/// Ground truth on versions, shared by every cache of a run.
#[derive(Debug, Default)]
pub struct CacheTruth {
    next: u64,
    /// Per key: newest version acknowledged to a client.
    acked: BTreeMap<u64, u64>,
    /// Per key: newest version the backend acknowledged.
    stored: BTreeMap<u64, u64>,
}

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
}

impl Observer for CacheTruth {
    fn finish(&mut self, _now: SimTime) -> NodeStats {
        NodeStats::default()
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
}

#[derive(Clone, Copy, Debug)]
enum Purpose {
    /// A read miss; `version` is the backend's version when the read was sent.
    Load { version: u64, waiter: Waiter },
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

/// Timer tag of the write-behind flush (call timeouts use their `CallId`).
const TAG_FLUSH: u64 = u64::MAX;

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
        id: RequestId,
        purpose: Purpose,
    ) -> bool {
        let to = self.backends[(key % self.backends.len() as u64) as usize];
        if !ctx.reachable(to) {
            return false;
        }
        let timeout = SimDuration(self.cfg.hit_time.0 + self.cfg.timeout.0);
        let call = self.calls.open(|call| BackendCall {
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
            issued_at: now,
            class: 0,
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
            if self.truth().is_stale(key, e.version) {
                self.counts.stale_reads += 1;
                self.stale.add(now, 1.0);
            }
            let reply = Reply {
                value: e.version,
                version: e.version,
            };
            self.reply(ctx, w, Ok(reply));
            return;
        }
        self.hit_ratio.add(now, 0.0);
        if self.cfg.coalesce
            && let Some(list) = self.waiting.get_mut(&key)
        {
            list.push(w);
            self.counts.coalesced += 1;
            return;
        }
        let version = self.truth().stored(key);
        if self.call(
            ctx,
            key,
            Op::Read,
            w.id,
            Purpose::Load { version, waiter: w },
        ) {
            if self.cfg.coalesce {
                self.waiting.insert(key, Vec::new());
            }
        } else {
            self.counts.failed += 1;
            self.reply(ctx, w, Err(Cause::Unreachable));
        }
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
                }),
            );
            return;
        }
        if !self.call(
            ctx,
            key,
            Op::Write,
            w.id,
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
        if !self.call(ctx, key, Op::Write, RequestId(version), purpose) {
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

    fn complete(&mut self, ctx: &mut Ctx<'_>, c: BackendCall, result: Result<Reply, Cause>) {
        let now = ctx.now();
        let key = c.key;
        match c.purpose {
            Purpose::Load { version, waiter } => {
                let extra = self.waiting.remove(&key).unwrap_or_default();
                let reply = result.map(|_| Reply {
                    value: version,
                    version,
                });
                if reply.is_ok() {
                    // Read-through never overwrites a newer entry; cache-aside sets blindly.
                    let keep = self.cfg.strategy != CacheStrategy::CacheAside
                        && self.store.peek(key).is_some_and(|e| e.version >= version);
                    if !keep {
                        let evicted = self.store.put(key, version, 0, now);
                        self.flush_evicted(ctx, evicted);
                    }
                } else {
                    self.counts.failed += 1 + extra.len() as u64;
                }
                for w in std::iter::once(waiter).chain(extra) {
                    self.reply(ctx, w, reply);
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
                } else {
                    self.counts.failed += 1;
                }
                self.reply(
                    ctx,
                    waiter,
                    result.map(|_| Reply {
                        value: version,
                        version,
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

impl Node<Builtin> for Cache {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        if self.cfg.strategy == CacheStrategy::WriteBehind {
            ctx.set_timer(self.cfg.flush_interval, TAG_FLUSH);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        match msg {
            Message::Request(req) => {
                let w = Waiter {
                    from,
                    call: req.call,
                    id: req.id,
                };
                match req.op {
                    Op::Read => self.on_read(ctx, w, req.key),
                    Op::Write => self.on_write(ctx, w, req.key),
                }
            }
            Message::Response(resp) => self.on_backend(ctx, resp.call, resp.result),
            // Plug-in and protocol messages are not for a cache.
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        if tag == TAG_FLUSH {
            self.flush(ctx);
        } else if let Some(c) = self.calls.close(CallId(tag)) {
            self.complete(ctx, c, Err(Cause::Timeout));
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        self.counts.writes_lost += self.store.clear();
        self.calls.clear();
        self.waiting.clear();
    }

    fn on_crash_keep_state(&mut self, _now: SimTime) {
        // The entries (and the write-behind buffer) survive; calls in flight do not.
        self.calls.clear();
        self.waiting.clear();
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
