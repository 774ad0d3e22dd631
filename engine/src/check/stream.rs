//! `StreamChecker`: the run-wide observer of a partitioned log and its consumer groups. Brokers
//! report every append and every accepted commit, consumers every event they finish processing;
//! it checks per-key order and counts out-of-order, duplicate and lost events, per group.
//!
//! ```text
//!  append (partition p, offset o, key k) ──▶ seq = next number of key k (its place in the
//!                                            key's order: the order the log accepted them)
//!  processed (group g, p, o, k, seq) ── (p, o) seen by g before? ─yes─▶ duplicate delivery
//!                                        │ no                          (a second effect unless
//!                                        ▼                              the group is idempotent)
//!                     seq < newest seq of k that g has processed? ─yes─▶ out of order
//!  commit (g, p, o) ──▶ the group's position; lag(g, p) = appended(p) − committed(g, p)
//!  end of run: offsets below g's committed position that g never processed ──▶ lost
//! ```
//!
//! Memory: per (group, partition) the processed offsets as a set of intervals, which stays a
//! handful of intervals (a gap opens only where events were lost or skipped); per group and key
//! the newest sequence number processed, for at most `max_keys` keys (beyond that, keys are
//! counted as unchecked). Nothing grows with the number of events.
//!
//! The checker imports no component: groups, partitions and keys arrive as numbers.

use crate::contract::build::Observer;
use crate::contract::metrics::{EventLog, NodeStats, Series, SeriesKind};
use crate::sim::time::{SimDuration, SimTime};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// Keys whose order is checked (per run); events of further keys are counted as unchecked.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;
/// Rebalances described one by one in the report (the rest are counted).
const MAX_EVENTS: usize = 40;
/// Longest delivery latency resolved (one hour, in microseconds); longer ones count as that.
const LATENCY_HIGH_US: u64 = 3_600_000_000;

/// Offsets as disjoint half-open intervals `[start, end)`, by start.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Intervals(BTreeMap<u64, u64>);

impl Intervals {
    /// Add `offset`; `false` if it was already there.
    pub fn insert(&mut self, offset: u64) -> bool {
        let before = self.0.range(..=offset).next_back().map(|(&s, &e)| (s, e));
        if let Some((_, e)) = before
            && offset < e
        {
            return false;
        }
        let mut start = offset;
        let mut end = offset + 1;
        if let Some((s, e)) = before
            && e == offset
        {
            start = s;
        }
        if let Some(&after_end) = self.0.get(&end) {
            self.0.remove(&end);
            end = after_end;
        }
        self.0.insert(start, end);
        true
    }

    /// How many offsets below `limit` are in the set.
    pub fn count_below(&self, limit: u64) -> u64 {
        self.0.range(..limit).map(|(&s, &e)| e.min(limit) - s).sum()
    }

    /// How many offsets in the set.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|(&s, &e)| e - s).sum()
    }

    /// True when no offset is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of intervals (what the memory grows with).
    pub fn intervals(&self) -> usize {
        self.0.len()
    }
}

/// One partition as one group sees it.
struct GroupPartition {
    committed: u64,
    processed: Intervals,
    /// Offsets a consumer had taken (and committed) but not yet processed when the run ended.
    in_hand: Vec<(u64, u64)>,
    lag: Series,
    rate: Series,
}

/// What one consumer group did.
struct Group {
    name: String,
    idempotent: bool,
    partitions: Vec<GroupPartition>,
    newest_seq: BTreeMap<u64, u64>,
    processed: u64,
    out_of_order: u64,
    duplicates: u64,
    unchecked: u64,
    paused: Series,
    paused_now: u32,
    /// Since when `paused_now` holds, and partition-seconds paused before.
    paused_since: SimTime,
    paused_area_s: f64,
    pause_started: Option<SimTime>,
    rebalances: u64,
    pause_max: SimDuration,
    pause_sum: SimDuration,
    events: EventLog,
    /// From append to the end of the first processing, in microseconds.
    latency: Histogram<u64>,
    latency_series: Series,
}

/// Ground truth on a partitioned log and its consumer groups.
pub struct StreamChecker {
    window: SimDuration,
    end: SimTime,
    max_keys: usize,
    /// Per partition: events appended (the next offset).
    appended: Vec<u64>,
    /// Per key: the last sequence number given.
    seqs: BTreeMap<u64, u64>,
    keys_over_bound: u64,
    groups: Vec<Group>,
}

impl StreamChecker {
    /// A checker whose series have windows of `window` and end at `end` (arrivals' end).
    pub fn new(window: SimDuration, end: SimTime, max_keys: usize) -> StreamChecker {
        StreamChecker {
            window,
            end,
            max_keys,
            appended: Vec::new(),
            seqs: BTreeMap::new(),
            keys_over_bound: 0,
            groups: Vec::new(),
        }
    }

    /// The index of group `name` (created on first use), to report with.
    pub fn group(&mut self, name: &str, idempotent: bool) -> u32 {
        if let Some(i) = self.groups.iter().position(|g| g.name == name) {
            self.groups[i].idempotent |= idempotent;
            return i as u32;
        }
        self.groups.push(Group {
            name: name.to_string(),
            idempotent,
            partitions: Vec::new(),
            newest_seq: BTreeMap::new(),
            processed: 0,
            out_of_order: 0,
            duplicates: 0,
            unchecked: 0,
            paused: Series::new(SeriesKind::Level, self.window),
            paused_now: 0,
            paused_since: SimTime::ZERO,
            paused_area_s: 0.0,
            pause_started: None,
            rebalances: 0,
            pause_max: SimDuration::ZERO,
            pause_sum: SimDuration::ZERO,
            events: EventLog::new(MAX_EVENTS),
            latency: Histogram::new_with_bounds(1, LATENCY_HIGH_US, 3)
                .expect("valid histogram bounds"),
            latency_series: Series::new(SeriesKind::Mean, self.window),
        });
        (self.groups.len() - 1) as u32
    }

    fn partition(&mut self, p: u32) -> &mut u64 {
        if self.appended.len() <= p as usize {
            self.appended.resize(p as usize + 1, 0);
        }
        &mut self.appended[p as usize]
    }

    fn group_partition(&mut self, g: u32, p: u32) -> &mut GroupPartition {
        let window = self.window;
        let parts = &mut self.groups[g as usize].partitions;
        while parts.len() <= p as usize {
            parts.push(GroupPartition {
                committed: 0,
                processed: Intervals::default(),
                in_hand: Vec::new(),
                lag: Series::new(SeriesKind::Level, window),
                rate: Series::new(SeriesKind::Rate, window),
            });
        }
        &mut parts[p as usize]
    }

    /// Event `offset` of partition `p`, of `key`, was appended at `now`: its place in the
    /// key's order (1, 2, ...), or 0 if the key is beyond the bound and not checked.
    pub fn append(&mut self, p: u32, offset: u64, key: u64, now: SimTime) -> u64 {
        let end = self.partition(p);
        *end = (*end).max(offset + 1);
        let end = *end;
        for g in 0..self.groups.len() as u32 {
            let gp = self.group_partition(g, p);
            gp.lag.set(now, end.saturating_sub(gp.committed) as f64);
        }
        let len = self.seqs.len();
        match self.seqs.get_mut(&key) {
            Some(s) => {
                *s += 1;
                *s
            }
            None if len < self.max_keys => {
                self.seqs.insert(key, 1);
                1
            }
            None => {
                self.keys_over_bound += 1;
                0
            }
        }
    }

    /// Group `g` committed position `offset` (the next event it will process) of partition
    /// `p` at `now`.
    pub fn commit(&mut self, g: u32, p: u32, offset: u64, now: SimTime) {
        let end = *self.partition(p);
        let gp = self.group_partition(g, p);
        gp.committed = offset;
        gp.lag.set(now, end.saturating_sub(offset) as f64);
    }

    /// Group `g` finished processing event (`p`, `offset`) of `key` with sequence `seq`,
    /// appended at `appended_at`.
    #[allow(clippy::too_many_arguments)] // one event's identity and times
    pub fn processed(
        &mut self,
        g: u32,
        p: u32,
        offset: u64,
        key: u64,
        seq: u64,
        appended_at: SimTime,
        now: SimTime,
    ) {
        let gp = self.group_partition(g, p);
        let first = gp.processed.insert(offset);
        if first {
            gp.rate.add(now, 1.0);
        }
        let group = &mut self.groups[g as usize];
        if !first {
            group.duplicates += 1;
            return;
        }
        group.processed += 1;
        let took = now.since(appended_at);
        let us = (took.0 / 1000).clamp(1, LATENCY_HIGH_US);
        group
            .latency
            .record(us)
            .expect("clamped into the histogram's range");
        group.latency_series.add(now, took.as_millis_f64());
        if seq == 0 {
            group.unchecked += 1;
            return;
        }
        let newest = group.newest_seq.entry(key).or_insert(0);
        if seq < *newest {
            group.out_of_order += 1;
        } else {
            *newest = seq;
        }
    }

    /// When the run ends, a consumer of group `g` still holds offsets `from .. to` of partition
    /// `p`, taken and committed but not yet processed: they are not lost, only late.
    pub fn in_hand(&mut self, g: u32, p: u32, from: u64, to: u64) {
        if from < to {
            self.group_partition(g, p).in_hand.push((from, to));
        }
    }

    /// Group `g` now has `paused` partitions without a consumer because of a rebalance.
    pub fn paused(&mut self, g: u32, paused: u32, now: SimTime) {
        let group = &mut self.groups[g as usize];
        group.paused.set(now, f64::from(paused));
        let was = group.paused_now;
        group.paused_area_s += f64::from(was) * now.since(group.paused_since).as_secs_f64();
        group.paused_since = now;
        group.paused_now = paused;
        match (was, paused, group.pause_started) {
            (0, p, None) if p > 0 => {
                group.pause_started = Some(now);
                group.rebalances += 1;
            }
            (_, 0, Some(start)) => {
                let took = now.since(start);
                group.pause_sum = SimDuration(group.pause_sum.0 + took.0);
                group.pause_max = group.pause_max.max(took);
                group.pause_started = None;
                group
                    .events
                    .record(start, format!("rebalance: partitions paused for {took}"));
            }
            _ => {}
        }
    }

    fn group_counters(&mut self, g: usize, now: SimTime) -> BTreeMap<String, f64> {
        let appended = self.appended.clone();
        let group = &mut self.groups[g];
        let (mut lost, mut backlog) = (0, 0);
        for (p, gp) in group.partitions.iter().enumerate() {
            let end = appended.get(p).copied().unwrap_or(0);
            let committed = gp.committed.min(end);
            let unprocessed = |a: u64, b: u64| {
                (b - a) - (gp.processed.count_below(b) - gp.processed.count_below(a))
            };
            let in_hand: u64 = gp
                .in_hand
                .iter()
                .map(|&(a, b)| unprocessed(a.min(committed), b.min(committed)))
                .sum();
            lost += unprocessed(0, committed) - in_hand;
            backlog += unprocessed(committed, end) + in_hand;
        }
        let mut pause_sum = group.pause_sum;
        let mut pause_max = group.pause_max;
        if let Some(start) = group.pause_started {
            let took = now.since(start);
            pause_sum = SimDuration(pause_sum.0 + took.0);
            pause_max = pause_max.max(took);
        }
        let mean_ms = if group.rebalances == 0 {
            0.0
        } else {
            pause_sum.as_millis_f64() / group.rebalances as f64
        };
        let effects = group.processed
            + if group.idempotent {
                0
            } else {
                group.duplicates
            };
        let area = group.paused_area_s
            + f64::from(group.paused_now) * now.since(group.paused_since).as_secs_f64();
        let quantile_ms = |q: f64| group.latency.value_at_quantile(q) as f64 / 1e3;
        [
            ("processed", group.processed),
            ("out_of_order", group.out_of_order),
            ("duplicate_deliveries", group.duplicates),
            ("effects_applied", effects),
            ("lost", lost),
            ("backlog_at_end", backlog),
            ("unchecked_order", group.unchecked),
            ("rebalances", group.rebalances),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v as f64))
        .chain([
            ("rebalance_pause_mean_ms".to_string(), mean_ms),
            (
                "rebalance_pause_max_ms".to_string(),
                pause_max.as_millis_f64(),
            ),
            ("paused_partition_seconds".to_string(), area),
            ("delivery_latency_p50_ms".to_string(), quantile_ms(0.5)),
            ("delivery_latency_p99_ms".to_string(), quantile_ms(0.99)),
            (
                "delivery_latency_max_ms".to_string(),
                group.latency.max() as f64 / 1e3,
            ),
        ])
        .collect()
    }
}

impl Observer for StreamChecker {
    fn finish(&mut self, now: SimTime) -> NodeStats {
        let end = self.end.min(now);
        let mut stats = NodeStats::default();
        for g in 0..self.groups.len() {
            let name = self.groups[g].name.clone();
            for (k, v) in self.group_counters(g, now) {
                stats.counters.insert(format!("{name}.{k}"), v);
            }
            let group = &mut self.groups[g];
            for (p, gp) in group.partitions.iter_mut().enumerate() {
                let mut lag = gp.lag.finish(
                    &format!("stream_lag.{name}"),
                    &format!("Lag of group {name} per partition"),
                    "events behind the log end",
                    end,
                );
                lag.label = Some(format!("p{p}"));
                let mut rate = gp.rate.finish(
                    &format!("stream_processed.{name}"),
                    &format!("Throughput of group {name} per partition"),
                    "events/s",
                    end,
                );
                rate.label = Some(format!("p{p}"));
                stats.series.extend([lag, rate]);
            }
            stats.series.push(group.latency_series.finish(
                &format!("stream_delivery_latency.{name}"),
                &format!("Delivery latency of group {name} (mean, append to processed)"),
                "ms",
                end,
            ));
            stats.series.push(group.paused.finish(
                &format!("stream_paused.{name}"),
                &format!("Partitions of group {name} paused by a rebalance"),
                "partitions",
                end,
            ));
            stats.events.extend(group.events.take());
            if group.events.dropped() > 0 {
                stats.counters.insert(
                    format!("{name}.rebalances_not_described"),
                    group.events.dropped() as f64,
                );
            }
        }
        let total: u64 = self.appended.iter().sum();
        stats.counters.insert("appended".to_string(), total as f64);
        for (p, n) in self.appended.iter().enumerate() {
            stats.counters.insert(format!("appended.p{p}"), *n as f64);
        }
        stats
            .counters
            .insert("keys_over_bound".to_string(), self.keys_over_bound as f64);
        stats.events.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker() -> StreamChecker {
        StreamChecker::new(SimDuration::from_secs(1), SimTime(10), 10)
    }

    #[test]
    fn intervals_merge_and_count() {
        let mut s = Intervals::default();
        for o in [0, 1, 2, 5, 6, 4] {
            assert!(s.insert(o));
        }
        assert!(!s.insert(1) && !s.insert(6));
        assert_eq!(s.intervals(), 2, "{s:?}"); // [0,3) [4,7)
        assert!(s.insert(3));
        assert_eq!(s.intervals(), 1);
        assert_eq!((s.len(), s.count_below(5), s.count_below(100)), (7, 5, 7));
    }

    #[test]
    fn order_duplicates_and_losses_follow_the_definitions() {
        let mut c = checker();
        let g = c.group("g", false);
        let t = SimTime(1);
        // Key 7: three events, on two partitions.
        let s: Vec<u64> = [(0, 0), (1, 0), (0, 1)]
            .iter()
            .map(|&(p, o)| c.append(p, o, 7, t))
            .collect();
        assert_eq!(s, [1, 2, 3]);
        c.processed(g, 0, 0, 7, 1, t, t);
        c.processed(g, 0, 1, 7, 3, t, t);
        c.processed(g, 1, 0, 7, 2, t, t); // after seq 3: out of order
        c.processed(g, 0, 1, 7, 3, t, t); // again: a duplicate, not out of order
        c.commit(g, 0, 2, t);
        c.commit(g, 1, 1, t);
        let n = c.group_counters(0, t);
        assert_eq!(n["processed"], 3.0);
        assert_eq!(n["out_of_order"], 1.0);
        assert_eq!(n["duplicate_deliveries"], 1.0);
        assert_eq!(n["effects_applied"], 4.0);
        assert_eq!((n["lost"], n["backlog_at_end"]), (0.0, 0.0));
        // A committed position past an event never processed: lost; one past it: backlog.
        c.append(1, 1, 8, t);
        c.append(1, 2, 8, t);
        c.commit(g, 1, 2, t);
        let n = c.group_counters(0, t);
        assert_eq!((n["lost"], n["backlog_at_end"]), (1.0, 1.0));
    }

    #[test]
    fn events_in_hand_at_the_end_are_late_not_lost() {
        let mut c = checker();
        let g = c.group("g", false);
        for o in 0..10 {
            c.append(0, o, o, SimTime(0));
        }
        for o in 0..4 {
            c.processed(g, 0, o, o, 1, SimTime(0), SimTime(1));
        }
        c.commit(g, 0, 8, SimTime(1)); // 4..8 taken and committed
        c.in_hand(g, 0, 6, 8); // ... but only 6..8 still held at the end: 4, 5 were lost
        let n = c.group_counters(0, SimTime(2));
        assert_eq!((n["lost"], n["backlog_at_end"]), (2.0, 4.0), "{n:?}");
    }

    #[test]
    fn an_idempotent_group_applies_a_duplicate_once() {
        let mut c = checker();
        let g = c.group("g", true);
        c.append(0, 0, 1, SimTime(0));
        c.processed(g, 0, 0, 1, 1, SimTime(0), SimTime(1));
        c.processed(g, 0, 0, 1, 1, SimTime(0), SimTime(2));
        let n = c.group_counters(0, SimTime(3));
        assert_eq!(
            (n["duplicate_deliveries"], n["effects_applied"]),
            (1.0, 1.0)
        );
    }

    #[test]
    fn keys_beyond_the_bound_are_counted_not_checked() {
        let mut c = StreamChecker::new(SimDuration::from_secs(1), SimTime(10), 2);
        let seqs: Vec<u64> = (0..4).map(|k| c.append(0, k, k, SimTime(0))).collect();
        assert_eq!(seqs, [1, 1, 0, 0]);
        assert_eq!(c.keys_over_bound, 2);
    }

    #[test]
    fn rebalance_pauses_are_timed() {
        let mut c = checker();
        let g = c.group("g", false);
        c.paused(g, 3, SimTime(100));
        c.paused(g, 1, SimTime(150));
        c.paused(g, 0, SimTime(400));
        c.paused(g, 2, SimTime(1000));
        c.paused(g, 0, SimTime(1100));
        let n = c.group_counters(0, SimTime(2000));
        assert_eq!(n["rebalances"], 2.0);
        // 3 × 50 + 1 × 250 + 2 × 100 partition-nanoseconds.
        assert!(
            (n["paused_partition_seconds"] - 600e-9).abs() < 1e-15,
            "{n:?}"
        );
        assert_eq!(n["rebalance_pause_max_ms"], 300e-6);
        assert_eq!(n["rebalance_pause_mean_ms"], 200e-6);
    }
}
