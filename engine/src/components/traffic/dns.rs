//! A client's side of DNS-based global traffic management: the resolver caches that hold a
//! GSLB's answers for their TTL, and what the client measures through them (traffic by
//! region, latency, failover time).
//!
//! ```text
//!  request ─▶ cache (closed loop: the user's, user mod caches; open loop: the next in turn)
//!              expired? ─yes─▶ GSLB answer (its view now) ─▶ cached until now + TTL
//!              └─▶ send to the cached entry point (a failed one too, until the cache expires)
//! ```
//! With `synchronised: false` (the default) each cache's first answer expires at a uniformly
//! drawn moment within one TTL, so the caches re-resolve at spread times, as a population of
//! clients does; with `true` they all resolve at their first request and expire together.

use crate::components::traffic::gslb::{GslbView, view_name};
use crate::contract::build::BuildCtx;
use crate::contract::call::Cause;
use crate::contract::metrics::{Series, SeriesKind};
use crate::contract::validate::{Path, Validator};
use crate::results::SeriesResult;
use crate::sim::NodeId;
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::{SimDuration, SimTime};
use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How a client that targets a GSLB caches its answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Independent resolver caches behind this client (count >= 1): a closed-loop user uses
    /// cache `user mod caches`, open-loop requests take them in turn. Default 100.
    #[serde(default = "default_caches")]
    pub caches: u32,
    /// Keep answers this long instead of their TTL (duration; a JVM's fixed
    /// `networkaddress.cache.ttl`). Default `None`: the GSLB's TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_for: Option<SimDuration>,
    /// All caches resolve at their first request and expire together. Default false: each
    /// cache's first answer expires at a uniform random moment within one TTL.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synchronised: bool,
}

fn default_caches() -> u32 {
    100
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            caches: default_caches(),
            cache_for: None,
            synchronised: false,
        }
    }
}

impl DnsConfig {
    /// Whether it is the default (left out when the client is written back).
    pub fn is_default(&self) -> bool {
        *self == DnsConfig::default()
    }

    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.caches == 0 || self.caches > 1_000_000 {
            v.error(
                &at.field("caches"),
                format!("{} caches", self.caches),
                "expected a count from 1 to 1000000",
            );
        }
    }
}

/// A cache that has never resolved.
const EMPTY: u32 = u32::MAX;

/// A client's resolver caches and what it measures through them.
pub struct Resolver {
    view: Arc<Mutex<GslbView>>,
    ttl: SimDuration,
    region: Option<u16>,
    /// Per cache: the entry answered and when the answer expires.
    caches: Vec<(u32, SimTime)>,
    rng: SimRng,
    resolutions: u64,
    /// Per entry: request attempts routed to it, and their share over time.
    sent: Vec<u64>,
    share: Vec<Series>,
    last_sent: Vec<Option<SimTime>>,
    names: Vec<String>,
    /// Per entry: the nodes of its target.
    nodes: Vec<Vec<NodeId>>,
    /// Latency of successful requests issued after the warm-up (µs).
    latency: Histogram<u64>,
    measure_from: SimTime,
    failover: Failover,
}

/// A client's failover as it saw it: from its first failed request to the first request sent
/// to another region, and to its last failed request.
#[derive(Default)]
struct Failover {
    /// Issue time of the first failed request since the last success, and its entry.
    since: Option<(SimTime, u32)>,
    /// The first failure ever, the first switch away from its entry, the last failure.
    first_failure: Option<SimTime>,
    first_switch: Option<SimTime>,
    last_failure: Option<SimTime>,
    switches: u64,
}

impl Resolver {
    /// The resolver of a client whose `target` is a GSLB, or `None` for any other target.
    pub fn new(target: &str, cfg: &DnsConfig, b: &BuildCtx<'_>) -> Option<Box<Resolver>> {
        let view = b.existing_observer::<GslbView>(&view_name(target))?;
        let (ttl, names, nodes) = {
            let v = view.lock().expect("one thread per run");
            let names: Vec<String> = v.entries.iter().map(|e| e.name.clone()).collect();
            let nodes: Vec<Vec<NodeId>> = v.entries.iter().map(|e| e.nodes.clone()).collect();
            (cfg.cache_for.unwrap_or(v.ttl), names, nodes)
        };
        let n = nodes.len();
        let mut rng = b.rng("dns");
        let region = b.topology().region(b.me());
        let caches = {
            // The GSLB is built first, and sees every entry healthy until the run starts.
            let v = view.lock().expect("one thread per run");
            (0..cfg.caches.max(1))
                .map(|_| {
                    if cfg.synchronised {
                        (EMPTY, SimTime(0))
                    } else {
                        // Answered a uniform moment within one TTL before the start.
                        let entry = v.answer(region, rng.uniform());
                        (entry, SimTime((rng.uniform() * ttl.0 as f64) as u64))
                    }
                })
                .collect()
        };
        Some(Box::new(Resolver {
            view,
            ttl,
            region,
            caches,
            rng,
            resolutions: 0,
            sent: vec![0; n],
            share: vec![Series::new(SeriesKind::Mean, b.window()); n],
            last_sent: vec![None; n],
            names,
            nodes,
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            measure_from: b.measure_from(),
            failover: Failover::default(),
        }))
    }

    /// The nodes of the entry cache `key` holds at `now`, resolving it again if it expired;
    /// the attempt is counted as routed to that entry (even if it then finds it down).
    pub fn entry_nodes(&mut self, now: SimTime, key: u64) -> &[NodeId] {
        let slot = (key % self.caches.len() as u64) as usize;
        let (entry, expires) = self.caches[slot];
        let view = self.view.lock().expect("one thread per run");
        let entry = if entry == EMPTY || now >= expires {
            self.resolutions += 1;
            let e = view.answer(self.region, self.rng.uniform());
            self.caches[slot] = (e, now.after(self.ttl));
            e
        } else {
            entry
        };
        drop(view);
        self.routed(now, entry);
        &self.nodes[entry as usize]
    }

    /// A request attempt is routed to `entry` at `now`.
    fn routed(&mut self, now: SimTime, entry: u32) {
        self.sent[entry as usize] += 1;
        self.last_sent[entry as usize] = Some(now);
        for (i, s) in self.share.iter_mut().enumerate() {
            s.add(now, f64::from(u8::from(i as u32 == entry)));
        }
        let f = &mut self.failover;
        if let Some((_, failed)) = f.since
            && failed != entry
            && f.first_switch.is_none()
        {
            f.first_switch = Some(now);
            f.switches += 1;
        }
    }

    fn entry_of(&self, node: NodeId) -> Option<u32> {
        self.nodes
            .iter()
            .position(|n| n.contains(&node))
            .map(|i| i as u32)
    }

    /// A request issued at `issued_at` whose last attempt went to `node` ended at `now`.
    pub fn ended(
        &mut self,
        now: SimTime,
        issued_at: SimTime,
        node: Option<NodeId>,
        result: Result<(), Cause>,
    ) {
        let entry = node.and_then(|n| self.entry_of(n));
        let f = &mut self.failover;
        match result {
            Ok(()) => {
                if issued_at >= self.measure_from {
                    let us = now.since(issued_at).0.div_ceil(1000).max(1);
                    self.latency.saturating_record(us);
                }
                if f.since.is_some_and(|(_, e)| Some(e) == entry) {
                    // The failed entry answers again: the episode is over.
                    f.since = None;
                }
            }
            Err(_) => {
                f.first_failure.get_or_insert(issued_at);
                f.last_failure = Some(issued_at);
                if f.since.is_none()
                    && let Some(e) = entry
                {
                    f.since = Some((issued_at, e));
                }
            }
        }
    }

    /// Counters and series: traffic by region, latency, failover times.
    pub fn report(
        &mut self,
        now: SimTime,
        counters: &mut BTreeMap<String, f64>,
    ) -> Vec<SeriesResult> {
        counters.insert("dns_resolutions".to_string(), self.resolutions as f64);
        for (i, name) in self.names.iter().enumerate() {
            counters.insert(format!("routed_to.{name}"), self.sent[i] as f64);
            if let Some(t) = self.last_sent[i] {
                counters.insert(format!("last_routed_at_s.{name}"), t.as_secs_f64());
            }
        }
        if !self.latency.is_empty() {
            let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1e3;
            counters.insert("latency_p50_ms".to_string(), ms(0.5));
            counters.insert("latency_p99_ms".to_string(), ms(0.99));
            counters.insert("latency_mean_ms".to_string(), self.latency.mean() / 1e3);
        }
        let f = &self.failover;
        if let (Some(first), Some(switch)) = (f.first_failure, f.first_switch) {
            counters.insert("first_failure_at_s".to_string(), first.as_secs_f64());
            counters.insert("first_switch_at_s".to_string(), switch.as_secs_f64());
            counters.insert(
                "failover_first_switch_s".to_string(),
                switch.since(first).as_secs_f64(),
            );
        }
        if let (Some(first), Some(last)) = (f.first_failure, f.last_failure) {
            counters.insert(
                "failover_last_failure_s".to_string(),
                last.since(first).as_secs_f64(),
            );
        }
        self.share
            .iter_mut()
            .zip(&self.names)
            .map(|(s, name)| {
                let mut r = s.finish(
                    "traffic_to_region",
                    "Share of a client's requests sent to each region (DNS answers)",
                    "share",
                    now,
                );
                r.label = Some(name.clone());
                r
            })
            .collect()
    }
}
