//! `Gslb`: global traffic management between regions, DNS-style. Clients that name a GSLB as
//! their `target` resolve it to one regional entry point (a region's balancer) by policy, and
//! cache the answer for its TTL; the GSLB health-checks every entry point and leaves unhealthy
//! ones out of its answers.
//!
//! ```text
//!  every interval ─▶ probe each entry (an ordinary read) ─▶ answer within timeout? ─▶ pass / fail
//!                    unhealthy_threshold fails in a row: out of the answers; healthy_threshold
//!                    passes in a row: back in
//!  client request ─▶ its cache expired? ─yes─▶ ask the GSLB: an entry by policy among healthy
//!                         │ no                 ones (all, if none is healthy), kept for the TTL
//!                         ▼
//!                    send to the cached entry (even if it has failed since)
//! ```
//! Failover time ≈ detection (≈ unhealthy_threshold × interval + timeout) + the remaining TTL
//! of each client's cached answer. The lookup itself costs no time: the resolver is assumed
//! near the client (as a stub resolver's cache is), and the GSLB itself never fails (as Route
//! 53's answering servers are meant not to). The answers are the GSLB's view at the moment of
//! the lookup, shared with the clients through a run-wide observer (one thread per run).

use crate::components::message::{Builtin, Ctx, Message};
use crate::components::resilience::policy::{Health, HealthCheckConfig};
use crate::components::traffic::calls::CallTable;
use crate::contract::build::{BuildCtx, Observer};
use crate::contract::call::{CallId, Op, Request, RequestId};
use crate::contract::metrics::{EventLog, NodeStats};
use crate::contract::state_series::StateSeries;
use crate::contract::validate::{Path, Validator};
use crate::sim::rng::SimRng;
use crate::sim::time::{SimDuration, SimTime};
use crate::sim::{Node, NodeId, TimerId};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How the GSLB picks the entry point a client gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GslbPolicy {
    /// Active-passive (Route 53 failover routing): every client gets the first healthy entry
    /// in list order, the primary, then the secondary, ...
    Failover,
    /// Active-active by geography (Route 53 geoproximity/latency routing): a client gets a
    /// healthy entry of its own region (by weight among them); when its region has none, a
    /// healthy entry of another region, by weight.
    #[default]
    Nearest,
    /// Active-active spread (Route 53 weighted routing): any healthy entry, by weight,
    /// wherever the client is.
    Weighted,
}

/// One regional entry point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GslbEntry {
    /// Node or group that receives the region's traffic (its balancer); a group is healthy
    /// while any of its nodes is.
    pub target: String,
    /// Region it serves (declared under `network.regions`). Default `None`: the region of the
    /// target's zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Relative share of the answers among the entries answered together (number >= 0).
    /// Default 1.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// A global traffic manager (DNS/GSLB) in front of regional entry points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Gslb", deny_unknown_fields)]
pub struct GslbConfig {
    /// The regional entry points, in priority order for `Failover`:
    /// `[(target: "lb-us"), (target: "lb-eu")]`.
    pub entries: Vec<GslbEntry>,
    /// `Failover` (active-passive), `Nearest` (active-active, own region first) or `Weighted`.
    /// Default `Nearest`.
    #[serde(default)]
    pub policy: GslbPolicy,
    /// How long a client caches an answer (duration, may be "0s": every request resolves).
    /// Default "60s" (a common TTL for health-checked records).
    #[serde(default = "default_ttl")]
    pub ttl: SimDuration,
    /// Health checks of each entry: `(interval: "10s", timeout: "2s", unhealthy_threshold: 3,
    /// healthy_threshold: 3)`. Default: Route 53's, every 30 s, 4 s timeout, 3 failures out,
    /// 3 passes back in.
    #[serde(default = "route53_checks")]
    pub health_check: HealthCheckConfig,
}

fn default_ttl() -> SimDuration {
    SimDuration::from_secs(60)
}

fn route53_checks() -> HealthCheckConfig {
    HealthCheckConfig {
        interval: SimDuration::from_secs(30),
        timeout: SimDuration::from_secs(4),
        unhealthy_threshold: 3,
        healthy_threshold: 3,
    }
}

crate::settable!(GslbConfig {
    entries,
    policy,
    ttl,
    health_check
});

impl GslbConfig {
    /// Check values the types cannot express and that every entry point exists; regions are
    /// checked against the topology by `check_regions`.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if self.entries.is_empty() {
            v.error(
                &at.field("entries"),
                "no entry points",
                "expected at least one entry, e.g. [(target: \"lb-us\"), (target: \"lb-eu\")]",
            );
        }
        for (i, e) in self.entries.iter().enumerate() {
            let at = at.field("entries").index(i);
            v.resolve(&at.field("target"), &e.target);
            if !(e.weight.is_finite() && e.weight >= 0.0) {
                v.error(
                    &at.field("weight"),
                    format!("weight {}", e.weight),
                    "expected a number >= 0",
                );
            }
        }
        self.health_check.validate(v, &at.field("health_check"));
    }

    /// A problem for each entry's region: a named region must be declared, and under
    /// `Nearest` an entry without one needs a target in a zone.
    pub fn check_regions(
        &self,
        topology: &crate::contract::topology::Topology,
        nodes: impl Fn(&str) -> Vec<NodeId>,
        v: &mut Validator,
        at: &Path,
    ) {
        for (i, e) in self.entries.iter().enumerate() {
            let at = at.field("entries").index(i);
            match &e.region {
                Some(r) if !topology.regions.contains(r) => {
                    let list: Vec<String> = topology
                        .regions
                        .iter()
                        .map(|r| format!("\"{r}\""))
                        .collect();
                    v.error(
                        &at.field("region"),
                        format!("unknown region \"{r}\""),
                        format!(
                            "expected a region declared under `network.regions`: {}",
                            list.join(", ")
                        ),
                    );
                }
                Some(_) => {}
                None if self.policy == GslbPolicy::Nearest => {
                    let ids = nodes(&e.target);
                    if !ids.is_empty() && ids.iter().any(|&n| topology.region(n).is_none()) {
                        v.error(
                            &at.field("target"),
                            format!("entry point \"{}\" is in no zone, so in no region", e.target),
                            "expected a `region: Some(\"...\")` for this entry, or a `zone` on its node \
                             (`Nearest` answers by region)",
                        );
                    }
                }
                None => {}
            }
        }
    }
}

/// The name of the run-wide observer through which a GSLB's clients read its answers.
pub fn view_name(gslb: &str) -> String {
    format!("!gslb/{gslb}")
}

/// One entry point as the answers see it.
#[derive(Clone, Debug)]
pub struct EntryView {
    /// The nodes of the entry's target.
    pub nodes: Vec<NodeId>,
    /// The region it serves (`None`: unknown).
    pub region: Option<u16>,
    /// Its name in reports: the region's name, else the target's.
    pub name: String,
    weight: f64,
    /// In the answers (health checks pass)?
    pub healthy: bool,
}

/// A GSLB's current view of its entries, shared with the clients that resolve through it.
#[derive(Debug, Default)]
pub struct GslbView {
    /// The entry points, in declaration order.
    pub entries: Vec<EntryView>,
    policy: GslbPolicy,
    /// How long an answer may be cached.
    pub ttl: SimDuration,
}

impl Observer for GslbView {
    fn finish(&mut self, _now: SimTime) -> NodeStats {
        NodeStats::default()
    }
}

impl GslbView {
    /// The entry answered to a client in region `region`, given a uniform draw in [0, 1).
    /// When no entry is healthy, every entry counts as healthy (Route 53's rule: better a
    /// possibly failed answer than none).
    pub fn answer(&self, region: Option<u16>, draw: f64) -> u32 {
        let any_healthy = self.entries.iter().any(|e| e.healthy);
        let up = |i: usize| !any_healthy || self.entries[i].healthy;
        let all = 0..self.entries.len();
        let chosen = match self.policy {
            GslbPolicy::Failover => all.clone().find(|&i| up(i)),
            GslbPolicy::Weighted => self.weighted(all.clone().filter(|&i| up(i)), draw),
            GslbPolicy::Nearest => {
                let own = all
                    .clone()
                    .filter(|&i| up(i) && region.is_some() && self.entries[i].region == region);
                self.weighted(own, draw)
                    .or_else(|| self.weighted(all.clone().filter(|&i| up(i)), draw))
            }
        };
        chosen.unwrap_or(0) as u32
    }

    /// One of `candidates` by weight (the first when all weigh 0); `None` if there are none.
    fn weighted(
        &self,
        candidates: impl Iterator<Item = usize> + Clone,
        draw: f64,
    ) -> Option<usize> {
        let total: f64 = candidates.clone().map(|i| self.entries[i].weight).sum();
        let mut acc = 0.0;
        let mut first = None;
        for i in candidates {
            first = first.or(Some(i));
            acc += self.entries[i].weight;
            if total > 0.0 && draw * total < acc {
                return Some(i);
            }
        }
        first
    }
}

/// Health states of an entry point, for its timeline.
const ENTRY_STATES: [&str; 2] = ["healthy", "unhealthy"];

/// Timer tag of the periodic health-check round (probe timers carry their call id).
const TAG_ROUND: u64 = u64::MAX;

/// The GSLB node: health checks, and the view its clients read.
pub struct Gslb {
    view: Arc<Mutex<GslbView>>,
    checks: HealthCheckConfig,
    /// Every node probed, with its entry.
    members: Vec<(u32, NodeId)>,
    health: Vec<Health>,
    probes: CallTable<(u32, TimerId)>,
    rng: SimRng,
    events: EventLog,
    states: Vec<StateSeries>,
    /// When each entry was first found unhealthy.
    first_unhealthy: Vec<Option<SimTime>>,
    probes_sent: u64,
    probes_failed: u64,
}

impl Gslb {
    /// The GSLB node built from its configuration; it creates the view its clients read.
    pub fn new(cfg: &GslbConfig, b: &BuildCtx<'_>) -> Gslb {
        let topology = b.topology();
        let entries: Vec<EntryView> = cfg
            .entries
            .iter()
            .map(|e| {
                let nodes = b.resolve(&e.target);
                let region = match &e.region {
                    Some(r) => topology
                        .regions
                        .iter()
                        .position(|x| x == r)
                        .map(|r| r as u16),
                    None => nodes.first().and_then(|&n| topology.region(n)),
                };
                let name = region
                    .map(|r| topology.regions[r as usize].clone())
                    .unwrap_or_else(|| e.target.clone());
                EntryView {
                    nodes,
                    region,
                    name,
                    weight: e.weight,
                    healthy: true,
                }
            })
            .collect();
        let members: Vec<(u32, NodeId)> = entries
            .iter()
            .enumerate()
            .flat_map(|(i, e)| e.nodes.iter().map(move |&n| (i as u32, n)))
            .collect();
        let n = entries.len();
        let view = b.observer(&view_name(b.name()), GslbView::default);
        *view.lock().expect("one thread per run") = GslbView {
            entries,
            policy: cfg.policy,
            ttl: cfg.ttl,
        };
        Gslb {
            view,
            checks: cfg.health_check.clone(),
            health: vec![Health::default(); members.len()],
            members,
            probes: CallTable::default(),
            rng: b.rng("probes"),
            events: EventLog::new(1000),
            states: vec![StateSeries::starting(&ENTRY_STATES, b.window(), 0); n],
            first_unhealthy: vec![None; n],
            probes_sent: 0,
            probes_failed: 0,
        }
    }

    /// A health-check round: probe every member of every entry.
    fn round(&mut self, ctx: &mut Ctx<'_>) {
        let timeout = self.checks.timeout;
        for m in 0..self.members.len() {
            let to = self.members[m].1;
            let call = self
                .probes
                .open(ctx, |ctx, call| (m as u32, ctx.set_timer(timeout, call.0)));
            let probe = Request {
                call,
                id: RequestId(0),
                op: Op::Read,
                work: self.rng.next_u64(),
                issued_at: ctx.now(),
                ..Request::default()
            };
            self.probes_sent += 1;
            ctx.send(to, Message::Request(probe));
        }
        ctx.set_timer(self.checks.interval, TAG_ROUND);
    }

    /// Probe `call` ended: answered (`passed` if without error) or timed out.
    fn probe_ended(&mut self, ctx: &mut Ctx<'_>, call: CallId, passed: bool) {
        let Some((m, timer)) = self.probes.close(call) else {
            return;
        };
        ctx.cancel_timer(timer);
        if !passed {
            self.probes_failed += 1;
        }
        if self.health[m as usize]
            .record(&self.checks, passed)
            .is_none()
        {
            return;
        }
        let now = ctx.now();
        let entry = self.members[m as usize].0 as usize;
        let healthy = self
            .members
            .iter()
            .zip(&self.health)
            .any(|((e, _), h)| *e as usize == entry && h.healthy);
        let mut view = self.view.lock().expect("one thread per run");
        let e = &mut view.entries[entry];
        if e.healthy != healthy {
            e.healthy = healthy;
            let what = if healthy { "healthy" } else { "unhealthy" };
            self.events.record(now, format!("{}: {what}", e.name));
            self.states[entry].set(now, usize::from(!healthy));
            if !healthy {
                self.first_unhealthy[entry].get_or_insert(now);
            }
        }
    }
}

impl Node<Builtin> for Gslb {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        ctx.set_timer(self.checks.interval, TAG_ROUND);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, _from: NodeId, msg: Message) {
        match msg {
            Message::Response(r) => self.probe_ended(ctx, r.call, r.result.is_ok()),
            // A GSLB answers lookups through its view, not messages.
            Message::Request(_)
            | Message::User(_)
            | Message::Txn(_)
            | Message::Replica(_)
            | Message::Stream(_)
            | Message::Purge(_) => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, _timer: TimerId, tag: u64) {
        if tag == TAG_ROUND {
            self.round(ctx);
        } else {
            self.probe_ended(ctx, CallId(tag), false);
        }
    }

    fn on_crash(&mut self, _now: SimTime) {
        // Its answers stay as they were (the view is the last it knew); probes in flight are
        // forgotten, and the rounds resume when it restarts.
        self.probes.clear();
    }

    fn finish(&mut self, now: SimTime) -> Option<NodeStats> {
        let view = self.view.lock().expect("one thread per run");
        let mut counters = BTreeMap::from([
            ("probes_sent".to_string(), self.probes_sent as f64),
            ("probes_failed".to_string(), self.probes_failed as f64),
        ]);
        let mut series = Vec::new();
        for (i, e) in view.entries.iter().enumerate() {
            if let Some(t) = self.first_unhealthy[i] {
                counters.insert(format!("first_unhealthy_at_s.{}", e.name), t.as_secs_f64());
            }
            let mut s = self.states[i].finish("entry_health", "Entry point health (GSLB)", now);
            s.label = Some(e.name.clone());
            series.push(s);
        }
        Some(NodeStats {
            counters,
            series,
            events: self.events.take(),
            ..NodeStats::default()
        })
    }
}

/// The expected detection time of an outage starting at a uniformly random moment: the first
/// failed probe is sent on average half an interval after it, then `threshold − 1` intervals
/// and a timeout pass (the probes' own latency aside).
pub fn mean_detection(checks: &HealthCheckConfig) -> SimDuration {
    let i = checks.interval.0 as f64;
    let n = f64::from(checks.unhealthy_threshold.max(1));
    SimDuration((i * (n - 0.5)) as u64 + checks.timeout.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(policy: GslbPolicy, healthy: [bool; 3]) -> GslbView {
        let e = |region, healthy, weight| EntryView {
            nodes: vec![],
            region: Some(region),
            name: String::new(),
            weight,
            healthy,
        };
        GslbView {
            entries: vec![
                e(0, healthy[0], 1.0),
                e(1, healthy[1], 3.0),
                e(1, healthy[2], 1.0),
            ],
            policy,
            ttl: SimDuration::ZERO,
        }
    }

    #[test]
    fn failover_answers_the_first_healthy_entry() {
        let v = view(GslbPolicy::Failover, [true, true, true]);
        assert_eq!(v.answer(Some(1), 0.9), 0);
        let v = view(GslbPolicy::Failover, [false, true, true]);
        assert_eq!(v.answer(Some(0), 0.0), 1);
        let v = view(GslbPolicy::Failover, [false, false, false]);
        assert_eq!(
            v.answer(Some(0), 0.5),
            0,
            "none healthy: all count as healthy"
        );
    }

    #[test]
    fn nearest_prefers_the_clients_region_by_weight_then_any() {
        let v = view(GslbPolicy::Nearest, [true, true, true]);
        assert_eq!(v.answer(Some(0), 0.99), 0);
        assert_eq!(v.answer(Some(1), 0.74), 1, "weights 3:1 within region 1");
        assert_eq!(v.answer(Some(1), 0.76), 2);
        let v = view(GslbPolicy::Nearest, [false, true, true]);
        assert_eq!(
            v.answer(Some(0), 0.1),
            1,
            "own region down: any healthy by weight"
        );
        assert_eq!(v.answer(None, 0.0), 1, "no region: any healthy");
    }

    #[test]
    fn weighted_ignores_regions() {
        let v = view(GslbPolicy::Weighted, [true, true, true]);
        assert_eq!(v.answer(Some(0), 0.1), 0);
        assert_eq!(v.answer(Some(0), 0.5), 1);
        assert_eq!(v.answer(Some(0), 0.9), 2);
    }

    #[test]
    fn mean_detection_is_threshold_less_half_intervals_plus_timeout() {
        let d = mean_detection(&route53_checks());
        assert_eq!(d, SimDuration::from_secs(79));
    }
}
