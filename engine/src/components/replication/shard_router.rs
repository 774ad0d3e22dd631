//! `ShardRouter`: sends each request to the shard that owns its key, and relays the answer.
//!
//! ```text
//!  caller ──req(key)──▶ router ── shard = strategy(key) ──▶ shards[shard] (a node, or a group:
//!        ◀──resp──────         │                            a reachable member at random)
//!                              ├─ no member reachable ──▶ Err(Unreachable) at once
//!                              └─ no answer in `timeout` ──▶ Err(Timeout)
//!
//!  Hash:            shard = mix64(key) mod N
//!  Range:           shard i owns keys [split(i-1), split(i)); the last shard owns the rest
//!  ConsistentHash:  ring ─○──●──○────●──○─●──▶ (2^64 points)  each shard puts `vnodes` points
//!                   on it (hashes of its name and the point's number); a key goes to the owner
//!                   of the first point clockwise from mix64(key)
//! ```
//! The router counts the requests each shard gets (a rate series per shard, counters with each
//! shard's share and the max/mean imbalance), and reports which fraction of a sample of keys
//! would change shard if one shard were added: about N/(N+1) with `Hash` (mod N), about
//! 1/(N+1) with `ConsistentHash`. Its memory is the ring and one counter per shard, whatever
//! the number of requests.

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::traffic::calls::{CallTable, Forwarded, answer, pick_reachable};
use crate::contract::build::BuildCtx;
use crate::contract::call::{CallId, Cause, Request, Response};
use crate::contract::metrics::{NodeStats, Series, SeriesKind};
use crate::contract::validate::{Path, Validator};
use crate::sim::rng::{SimRng, mix64, stable_hash};
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How keys are assigned to shards.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub enum ShardStrategy {
    /// `Hash`: shard = mix64(key) mod N (a fixed 64-bit mixer, so neighbouring keys scatter).
    Hash,
    /// `Range(splits: [100, 1000])`: shard 0 owns keys below 100, shard 1 keys 100..1000,
    /// shard 2 the rest (N - 1 increasing split points); or `Range(key_count: 10000)`: N equal
    /// ranges over keys 0..10000 (keys beyond go to the last shard). Give exactly one of them.
    Range {
        /// Key boundaries between consecutive shards (N - 1 strictly increasing keys).
        #[serde(default)]
        splits: Option<Vec<u64>>,
        /// Size of the key space to split into N equal ranges (count).
        #[serde(default)]
        key_count: Option<u64>,
    },
    /// `ConsistentHash(vnodes: 100)`: a hash ring with `vnodes` points per shard; a key goes to
    /// the first point clockwise from its hash.
    ConsistentHash {
        /// Virtual nodes per shard (count). Default 100.
        #[serde(default = "hundred")]
        vnodes: u32,
    },
}

fn hundred() -> u32 {
    100
}

fn hash_strategy() -> ShardStrategy {
    ShardStrategy::Hash
}

fn one_s() -> SimDuration {
    SimDuration::from_secs(1)
}

fn sample_keys() -> u64 {
    10_000
}

/// Most shards a router may have.
const MAX_SHARDS: usize = 4096;

/// Most virtual nodes per shard: the ring holds shards × vnodes points.
const MAX_VNODES: u32 = 10_000;

/// A router in front of shards: `ShardRouter(shards: ["s0", "s1", "s2"], strategy:
/// ConsistentHash(vnodes: 100))`. Each request goes to the shard owning its key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "ShardRouter", deny_unknown_fields)]
pub struct ShardRouterConfig {
    /// The shards, in order (shard 0 first): each a node or a group (a `Server` pool or a
    /// `ReplicatedStore`'s replicas: a reachable member is picked at random per request).
    pub shards: Vec<String>,
    /// How keys map to shards: `Hash`, `Range(..)` or `ConsistentHash(vnodes: ..)`.
    /// Default `Hash`.
    #[serde(default = "hash_strategy")]
    pub strategy: ShardStrategy,
    /// A forwarded request not answered within this long fails with `timeout` (duration).
    /// Default "1s".
    #[serde(default = "one_s")]
    pub timeout: SimDuration,
    /// Keys 0..this sampled to measure how many would move to another shard if one shard
    /// were added (count; 0 turns the measurement off). Default 10000.
    #[serde(default = "sample_keys")]
    pub rebalance_sample: u64,
}

crate::settable!(ShardRouterConfig {
    shards,
    strategy,
    timeout,
    rebalance_sample
});

impl ShardRouterConfig {
    /// Check the shards exist and the strategy fits their number.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        let n = self.shards.len();
        if n == 0 || n > MAX_SHARDS {
            v.error(
                &at.field("shards"),
                format!("{n} shards"),
                "expected from 1 to 4096 node or group names",
            );
        }
        for (i, s) in self.shards.iter().enumerate() {
            v.resolve(&at.field("shards").index(i), s);
        }
        if self.timeout == SimDuration::ZERO {
            v.error(
                &at.field("timeout"),
                "a zero timeout fails every request",
                "expected a positive duration",
            );
        }
        self.validate_strategy(v, &at.field("strategy"));
    }

    fn validate_strategy(&self, v: &mut Validator, at: &Path) {
        let n = self.shards.len();
        match &self.strategy {
            ShardStrategy::Hash => {}
            ShardStrategy::ConsistentHash { vnodes } => {
                if *vnodes == 0 || *vnodes > MAX_VNODES {
                    v.error(
                        &at.field("vnodes"),
                        format!("{vnodes} virtual nodes"),
                        "expected a count from 1 to 10000",
                    );
                }
            }
            ShardStrategy::Range { splits, key_count } => match (splits, key_count) {
                (Some(s), None) => validate_splits(s, n, v, &at.field("splits")),
                (None, Some(count)) if (*count as usize) < n.max(1) => v.error(
                    &at.field("key_count"),
                    format!("{count} keys for {n} shards"),
                    "expected at least one key per shard",
                ),
                (None, Some(_)) => {}
                (Some(_), Some(_)) | (None, None) => v.error(
                    at,
                    "a range strategy needs its boundaries",
                    "expected exactly one of `splits: [..]` or `key_count: ..`",
                ),
            },
        }
    }
}

fn validate_splits(splits: &[u64], shards: usize, v: &mut Validator, at: &Path) {
    if splits.len() + 1 != shards {
        v.error(
            at,
            format!("{} split points for {shards} shards", splits.len()),
            format!(
                "expected {} split points (one between each pair of shards)",
                shards.max(1) - 1
            ),
        );
    }
    for (i, w) in splits.windows(2).enumerate() {
        if w[1] <= w[0] {
            v.error(
                &at.index(i + 1),
                format!("{} does not come after {}", w[1], w[0]),
                "expected strictly increasing split points",
            );
        }
    }
    if splits.first() == Some(&0) {
        v.error(
            &at.index(0),
            "split point 0 leaves shard 0 no keys",
            "expected a split point >= 1",
        );
    }
}

/// Where keys go: a pure function of the key, built once per router.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyMap {
    /// mix64(key) mod n.
    Hash(u64),
    /// Shard i owns keys below `bounds[i]` and at or above `bounds[i - 1]`.
    Range(Vec<u64>),
    /// Ring points `(point, shard)`, sorted by point.
    Ring(Vec<(u64, u32)>),
}

impl KeyMap {
    /// The map for `names.len()` shards under `strategy` (names place consistent-hash points).
    pub fn new(strategy: &ShardStrategy, names: &[String]) -> KeyMap {
        let n = names.len().max(1) as u64;
        match strategy {
            ShardStrategy::Hash => KeyMap::Hash(n),
            ShardStrategy::Range { splits, key_count } => {
                KeyMap::Range(match (splits, key_count) {
                    (Some(s), _) => s.clone(),
                    (None, count) => equal_splits(count.unwrap_or(n), n),
                })
            }
            ShardStrategy::ConsistentHash { vnodes } => KeyMap::Ring(ring(names, *vnodes)),
        }
    }

    /// The shard (index into the shard list) that owns `key`.
    #[inline]
    pub fn shard(&self, key: u64) -> usize {
        match self {
            KeyMap::Hash(n) => (mix64(key) % n) as usize,
            KeyMap::Range(bounds) => bounds.partition_point(|&b| b <= key),
            KeyMap::Ring(points) => {
                let h = mix64(key);
                let i = points.partition_point(|&(p, _)| p < h);
                points.get(i).unwrap_or(&points[0]).1 as usize
            }
        }
    }
}

/// The n - 1 boundaries splitting keys 0..count into n ranges of (nearly) equal size.
fn equal_splits(count: u64, n: u64) -> Vec<u64> {
    (1..n)
        .map(|i| (count as u128 * i as u128 / n as u128) as u64)
        .collect()
}

/// `vnodes` ring points per shard, placed by hashing the shard's name with the point's number,
/// so a shard's points do not depend on the other shards (adding one moves only its keys).
fn ring(names: &[String], vnodes: u32) -> Vec<(u64, u32)> {
    let mut points: Vec<(u64, u32)> = names
        .iter()
        .enumerate()
        .flat_map(|(i, name)| {
            let base = stable_hash(name.as_bytes());
            (0..vnodes.max(1) as u64).map(move |j| (mix64(base ^ mix64(j + 1)), i as u32))
        })
        .collect();
    points.sort_unstable();
    points
}

/// The fraction of keys 0..sample that change shard when a shard named `added` joins `names`
/// (for `Range`: N + 1 equal ranges over the same key space, or the last range halved).
pub fn moved_fraction(strategy: &ShardStrategy, names: &[String], added: &str, sample: u64) -> f64 {
    if sample == 0 {
        return 0.0;
    }
    let before = KeyMap::new(strategy, names);
    let mut grown = names.to_vec();
    grown.push(added.to_string());
    let after = match strategy {
        ShardStrategy::Range {
            splits: Some(s), ..
        } => {
            // Explicit boundaries: the new shard takes the top half of the keys the last shard
            // owned in the sample.
            let mut s = s.clone();
            let from = s.last().copied().unwrap_or(0);
            s.push(from + sample.saturating_sub(from) / 2);
            KeyMap::Range(s)
        }
        ShardStrategy::Range {
            splits: None,
            key_count,
        } => KeyMap::Range(equal_splits(
            key_count.unwrap_or(sample),
            grown.len() as u64,
        )),
        ShardStrategy::Hash | ShardStrategy::ConsistentHash { .. } => KeyMap::new(strategy, &grown),
    };
    let moved = (0..sample)
        .filter(|&k| before.shard(k) != after.shard(k))
        .count();
    moved as f64 / sample as f64
}

/// One shard router node.
pub struct ShardRouter {
    map: KeyMap,
    shards: Vec<Vec<NodeId>>,
    names: Vec<String>,
    timeout: SimDuration,
    pending: CallTable<Forwarded>,
    rng: SimRng,
    candidates: Vec<NodeId>,
    routed: Vec<u64>,
    load: Vec<Series>,
    unreachable: u64,
    timeouts: u64,
    moved_if_added: Option<f64>,
}

impl ShardRouter {
    /// A router built from its configuration.
    pub fn new(cfg: &ShardRouterConfig, b: &BuildCtx<'_>) -> ShardRouter {
        let n = cfg.shards.len();
        let added = format!("{}-added-shard", b.name());
        ShardRouter {
            map: KeyMap::new(&cfg.strategy, &cfg.shards),
            shards: cfg.shards.iter().map(|s| b.resolve(s)).collect(),
            names: cfg.shards.clone(),
            timeout: cfg.timeout,
            pending: CallTable::default(),
            rng: b.rng("route"),
            candidates: Vec::new(),
            routed: vec![0; n],
            load: (0..n)
                .map(|_| Series::new(SeriesKind::Rate, b.window()))
                .collect(),
            unreachable: 0,
            timeouts: 0,
            moved_if_added: (cfg.rebalance_sample > 0)
                .then(|| moved_fraction(&cfg.strategy, &cfg.shards, &added, cfg.rebalance_sample)),
        }
    }

    /// A reachable member of shard `s`, at random.
    fn pick(&mut self, ctx: &Ctx<'_>, s: usize) -> Option<NodeId> {
        pick_reachable(ctx, &self.shards[s], &mut self.candidates, &mut self.rng)
    }

    fn on_request(&mut self, ctx: &mut Ctx<'_>, from: NodeId, req: Request) {
        let s = self.map.shard(req.key);
        self.routed[s] += 1;
        self.load[s].add(ctx.now(), 1.0);
        let Some(to) = self.pick(ctx, s) else {
            self.unreachable += 1;
            answer(ctx, from, req.call, req.id, Err(Cause::Unreachable));
            return;
        };
        let timeout = self.timeout;
        let call = self.pending.open(ctx, |ctx, call| Forwarded {
            from,
            call: req.call,
            id: req.id,
            timer: ctx.set_timer(timeout, call.0),
        });
        ctx.send(to, Message::Request(Request { call, ..req }));
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_>, resp: Response) {
        let Some(f) = self.pending.close(resp.call) else {
            return; // Late: the call timed out.
        };
        ctx.cancel_timer(f.timer);
        let relayed = Response {
            call: f.call,
            id: f.id,
            result: resp.result,
        };
        ctx.send(f.from, Message::Response(relayed));
    }

    fn counters(&self) -> BTreeMap<String, f64> {
        let total: u64 = self.routed.iter().sum();
        let n = self.routed.len().max(1) as f64;
        let max = self.routed.iter().copied().max().unwrap_or(0);
        let mut c = BTreeMap::from([
            ("requests".to_string(), total as f64),
            ("shard_unreachable".to_string(), self.unreachable as f64),
            ("shard_timeouts".to_string(), self.timeouts as f64),
        ]);
        if total > 0 {
            c.insert(
                "imbalance_max_over_mean".to_string(),
                max as f64 * n / total as f64,
            );
        }
        if let Some(f) = self.moved_if_added {
            c.insert("keys_moved_if_shard_added".to_string(), f);
        }
        for (i, &r) in self.routed.iter().enumerate() {
            c.insert(format!("shard{i}_requests"), r as f64);
            let share = if total > 0 {
                r as f64 / total as f64
            } else {
                0.0
            };
            c.insert(format!("shard{i}_share"), share);
        }
        c
    }
}

impl Node<Builtin> for ShardRouter {
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
        match msg {
            Message::Request(req) => self.on_request(ctx, from, req),
            Message::Response(resp) => self.on_response(ctx, resp),
            // Plug-in and protocol messages are not for a router.
            Message::User(_)
            | Message::Txn(_)
            | Message::Replica(_)
            | Message::Stream(_)
            | Message::Purge(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        if let Some(f) = self.pending.close(CallId(tag)) {
            self.timeouts += 1;
            answer(ctx, f.from, f.call, f.id, Err(Cause::Timeout));
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        // Forwarded calls are forgotten; their callers time out.
        self.pending.clear();
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let series = self
            .load
            .iter_mut()
            .zip(&self.names)
            .enumerate()
            .map(|(i, (s, name))| {
                let mut r = s.finish(
                    "shard_load",
                    "Requests routed to each shard",
                    "requests/s",
                    now,
                );
                r.label = Some(format!("shard{i} {name}"));
                r
            })
            .collect();
        Some(NodeStats {
            counters: self.counters(),
            series,
            ..NodeStats::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("shard-{i}")).collect()
    }

    #[test]
    fn range_boundaries_by_hand() {
        let splits = ShardStrategy::Range {
            splits: Some(vec![100, 1000]),
            key_count: None,
        };
        let m = KeyMap::new(&splits, &names(3));
        let got: Vec<usize> = [0, 99, 100, 999, 1000, u64::MAX]
            .iter()
            .map(|&k| m.shard(k))
            .collect();
        assert_eq!(got, [0, 0, 1, 1, 2, 2]);
        let equal = ShardStrategy::Range {
            splits: None,
            key_count: Some(10),
        };
        let m = KeyMap::new(&equal, &names(4));
        assert_eq!(m, KeyMap::Range(vec![2, 5, 7]));
        let got: Vec<usize> = (0..12).map(|k| m.shard(k)).collect();
        assert_eq!(got, [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3, 3]);
    }

    #[test]
    fn hash_is_mix64_mod_n() {
        let m = KeyMap::new(&ShardStrategy::Hash, &names(7));
        for k in [0, 1, 2, 12345, u64::MAX] {
            assert_eq!(m.shard(k), (mix64(k) % 7) as usize);
        }
        // Pinned: changing the mixer moves every key, a deliberate act.
        assert_eq!(mix64(0), 0);
        assert_eq!(m.shard(1), (0x5692_161d_100b_05e5_u64 % 7) as usize);
    }

    fn shares(m: &KeyMap, n: usize, keys: u64) -> Vec<f64> {
        let mut counts = vec![0u64; n];
        for k in 0..keys {
            counts[m.shard(k)] += 1;
        }
        counts.iter().map(|&c| c as f64 / keys as f64).collect()
    }

    #[test]
    fn hash_spreads_uniform_keys_within_a_few_sigma() {
        let (n, keys) = (8, 200_000u64);
        let m = KeyMap::new(&ShardStrategy::Hash, &names(n));
        let p = 1.0 / n as f64;
        let sigma = (p * (1.0 - p) / keys as f64).sqrt();
        for s in shares(&m, n, keys) {
            assert!((s - p).abs() < 5.0 * sigma, "{s} vs {p} (sigma {sigma})");
        }
    }

    #[test]
    fn consistent_hash_balances_within_tolerance_with_many_vnodes() {
        // Each shard owns the sum of `vnodes` arcs; the relative spread of that sum shrinks
        // like 1/sqrt(vnodes): about 10% with 100 vnodes, 3% with 1000.
        let n = 8;
        for (vnodes, tolerance) in [(100, 0.30), (1000, 0.10)] {
            let m = KeyMap::new(&ShardStrategy::ConsistentHash { vnodes }, &names(n));
            let p = 1.0 / n as f64;
            for s in shares(&m, n, 200_000) {
                assert!((s - p).abs() < tolerance * p, "vnodes {vnodes}: {s} vs {p}");
            }
        }
        // One vnode per shard is the unbalanced ring consistent hashing is known for.
        let m = KeyMap::new(&ShardStrategy::ConsistentHash { vnodes: 1 }, &names(n));
        let s = shares(&m, n, 200_000);
        let max = s.iter().copied().fold(0.0, f64::max);
        assert!(max > 1.5 / n as f64, "max share {max}");
    }

    #[test]
    fn adding_a_shard_moves_n_over_n_plus_1_with_mod_n_and_1_over_n_plus_1_with_a_ring() {
        let sample = 100_000;
        for n in [4usize, 9] {
            let expected_ring = 1.0 / (n + 1) as f64;
            let expected_mod = n as f64 / (n + 1) as f64;
            let h = moved_fraction(&ShardStrategy::Hash, &names(n), "new", sample);
            assert!((h - expected_mod).abs() < 0.01, "n={n}: mod N moved {h}");
            let ring = ShardStrategy::ConsistentHash { vnodes: 1000 };
            let c = moved_fraction(&ring, &names(n), "new", sample);
            assert!(
                (c - expected_ring).abs() < 0.25 * expected_ring,
                "n={n}: ring moved {c} vs {expected_ring}"
            );
            // Every key that moves on the ring moves to the new shard.
            let before = KeyMap::new(&ring, &names(n));
            let mut grown = names(n);
            grown.push("new".into());
            let after = KeyMap::new(&ring, &grown);
            for k in 0..10_000 {
                let (a, b) = (before.shard(k), after.shard(k));
                assert!(a == b || b == n, "key {k} moved {a} -> {b}");
            }
        }
    }

    #[test]
    fn equal_ranges_move_about_half_the_keys_when_a_shard_is_added() {
        // Boundaries i/N -> i/(N+1): shard i keeps the overlap of [i/N, (i+1)/N) and
        // [i/(N+1), (i+1)/(N+1)), which sums to 1/2 for every N: half the keys move.
        let s = ShardStrategy::Range {
            splits: None,
            key_count: Some(1000),
        };
        let got = moved_fraction(&s, &names(4), "new", 1000);
        let stays = (0..1000u64)
            .filter(|&k| k * 4 / 1000 == k * 5 / 1000)
            .count();
        assert_eq!(got, 1.0 - stays as f64 / 1000.0);
        assert!((got - 0.5).abs() < 1e-9, "{got}");
    }
}
