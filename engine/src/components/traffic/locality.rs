//! Locality-aware routing, a layer in front of a load balancer's strategy: prefer backends in
//! the balancer's own zone, and spill to the rest of its region, then to other regions, by
//! rule. The strategy (round robin, P2C, ...) then picks among the backends of the chosen tier.
//!
//! ```text
//!  tiers (prefer: SameZone):  0 own zone ─▶ 1 rest of the region ─▶ 2 other regions (and
//!                                                                    backends in no zone)
//!  share of tier i = min(what is left, overprovisioning × healthy fraction of tier i)
//!  a request draws its tier by the shares; if that tier is loaded (mean outstanding calls per
//!  usable backend ≥ max_load), it goes one tier further.
//! ```
//! The shares are Envoy's priority levels: with the default overprovisioning factor 1.4 a tier
//! keeps all its traffic while at least 1/1.4 ≈ 71.4% of its backends are usable; below that the
//! shortfall spills. When the tiers together fall short of the whole, the shares are scaled up
//! to it (Envoy's normalisation), so traffic still goes wherever a backend is usable.

use crate::contract::build::BuildCtx;
use crate::contract::metrics::{Series, SeriesKind};
use crate::contract::topology::Distance;
use crate::contract::validate::{Path, Validator};
use crate::sim::NodeId;
use crate::sim::rng::{RandomSource, SimRng};
use crate::sim::time::SimTime;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which backends count as local.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Prefer {
    /// The balancer's own zone first, then the rest of its region, then other regions.
    #[default]
    SameZone,
    /// The balancer's own region first, then other regions.
    SameRegion,
}

/// Locality-aware routing: `Some((prefer: SameZone, overprovisioning: 1.4, max_load: Some(8.0)))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalityConfig {
    /// Which backends count as local: `SameZone` or `SameRegion`. Default `SameZone`.
    #[serde(default)]
    pub prefer: Prefer,
    /// A tier keeps all the traffic while (usable fraction of its backends) × this ≥ 1; below,
    /// the shortfall spills to the next tier (Envoy's overprovisioning factor; number ≥ 1).
    /// Default 1.4.
    #[serde(default = "default_overprovisioning")]
    pub overprovisioning: f64,
    /// Spill a request to the next tier when the chosen tier's usable backends have this many
    /// outstanding calls each on average (count). Default `None`: never on load alone.
    #[serde(default)]
    pub max_load: Option<f64>,
}

fn default_overprovisioning() -> f64 {
    1.4
}

impl LocalityConfig {
    /// Check values the types cannot express.
    pub fn validate(&self, v: &mut Validator, at: &Path) {
        if !(self.overprovisioning.is_finite() && self.overprovisioning >= 1.0) {
            v.error(
                &at.field("overprovisioning"),
                format!("overprovisioning factor {}", self.overprovisioning),
                "expected a number >= 1.0 (Envoy's default is 1.4)",
            );
        }
        if let Some(m) = self.max_load
            && !(m.is_finite() && m > 0.0)
        {
            v.error(
                &at.field("max_load"),
                format!("a load threshold of {m}"),
                "expected a positive number of outstanding calls per backend",
            );
        }
    }
}

/// Number of tiers: local, near, far.
const TIERS: usize = 3;

/// The locality layer of one load balancer.
pub struct Locality {
    cfg: LocalityConfig,
    /// Tier of each backend.
    tier: Vec<u8>,
    /// How far each backend is, for the counters.
    distance: Vec<Distance>,
    /// Which backends the strategy may pick for the current request.
    mask: Vec<bool>,
    rng: SimRng,
    /// Requests forwarded, by distance (same zone, cross zone, cross region, unknown).
    forwarded: [u64; 4],
    spilled: Series,
}

impl Locality {
    /// The layer for the balancer being built, over `backends`.
    pub fn new(cfg: &LocalityConfig, backends: &[NodeId], b: &BuildCtx<'_>) -> Locality {
        let topology = b.topology();
        let me = b.me();
        let distance: Vec<Distance> = backends.iter().map(|&n| topology.distance(me, n)).collect();
        let tier = distance
            .iter()
            .map(|d| match (d, cfg.prefer) {
                (Distance::SameZone, _) => 0,
                (Distance::CrossZone, Prefer::SameRegion) => 0,
                (Distance::CrossZone, Prefer::SameZone) => 1,
                (Distance::CrossRegion | Distance::Unknown, _) => 2,
            })
            .collect();
        Locality {
            cfg: cfg.clone(),
            tier,
            distance,
            mask: vec![false; backends.len()],
            rng: b.rng("locality"),
            forwarded: [0; 4],
            spilled: Series::new(SeriesKind::Mean, b.window()),
        }
    }

    /// Choose the tier of this request from which backends are `usable` and how many calls
    /// each has `outstanding`, and mark its backends for the strategy; false if none is usable.
    pub fn choose(&mut self, usable: impl Fn(usize) -> bool, outstanding: &[u32]) -> bool {
        let mut total = [0u32; TIERS];
        let mut up = [0u32; TIERS];
        let mut load = [0u64; TIERS];
        for (i, &t) in self.tier.iter().enumerate() {
            total[t as usize] += 1;
            if usable(i) {
                up[t as usize] += 1;
                load[t as usize] += u64::from(outstanding[i]);
            }
        }
        let shares = shares(&total, &up, self.cfg.overprovisioning);
        let draw = self.rng.uniform();
        let mut tier = pick_tier(&shares, draw);
        if let Some(max) = self.cfg.max_load {
            // Spill on load: go one tier further while this one is loaded and a further one
            // has a usable backend.
            while let Some(t) = tier {
                let loaded = up[t] > 0 && load[t] as f64 / up[t] as f64 >= max;
                match (t + 1..TIERS).find(|&n| up[n] > 0) {
                    Some(next) if loaded => tier = Some(next),
                    _ => break,
                }
            }
        }
        let Some(tier) = tier else {
            self.mask.iter_mut().for_each(|m| *m = false);
            return false;
        };
        for (i, m) in self.mask.iter_mut().enumerate() {
            *m = self.tier[i] as usize == tier && usable(i);
        }
        true
    }

    /// Whether the strategy may pick backend `i` for the current request.
    #[inline]
    pub fn allows(&self, i: usize) -> bool {
        self.mask[i]
    }

    /// The request went to backend `i`.
    pub fn forwarded(&mut self, now: SimTime, i: usize) {
        let d = self.distance[i];
        self.forwarded[d as usize] += 1;
        let away = matches!(d, Distance::CrossZone | Distance::CrossRegion);
        self.spilled.add(now, if away { 1.0 } else { 0.0 });
    }

    /// Counters and the series of the share of requests sent out of the zone.
    pub fn report(
        &mut self,
        now: SimTime,
        counters: &mut BTreeMap<String, f64>,
    ) -> crate::results::SeriesResult {
        let names = [
            "forwarded_same_zone",
            "forwarded_cross_zone",
            "forwarded_cross_region",
            "forwarded_no_zone",
        ];
        for (name, n) in names.iter().zip(self.forwarded) {
            counters.insert(name.to_string(), n as f64);
        }
        self.spilled.finish(
            "forwarded_out_of_zone",
            "Share of requests a load balancer sent out of its zone",
            "share",
            now,
        )
    }
}

/// Each tier's share of the traffic: Envoy's priority-level loads with overprovisioning
/// `factor`, normalised to the whole when the tiers fall short.
fn shares(total: &[u32; TIERS], up: &[u32; TIERS], factor: f64) -> [f64; TIERS] {
    let mut out = [0.0; TIERS];
    let mut left = 1.0f64;
    for t in 0..TIERS {
        if total[t] == 0 {
            continue;
        }
        let health = (factor * up[t] as f64 / total[t] as f64).min(1.0);
        out[t] = health.min(left);
        left -= out[t];
    }
    let sum: f64 = out.iter().sum();
    if sum > 0.0 && sum < 1.0 {
        out.iter_mut().for_each(|s| *s /= sum);
    }
    out
}

/// The tier a uniform draw in [0, 1) falls in, by the shares; `None` when every share is 0.
fn pick_tier(shares: &[f64; TIERS], draw: f64) -> Option<usize> {
    let mut acc = 0.0;
    let mut last = None;
    for (t, &s) in shares.iter().enumerate() {
        if s <= 0.0 {
            continue;
        }
        acc += s;
        last = Some(t);
        if draw < acc {
            return Some(t);
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tier_keeps_its_traffic_until_overprovisioning_runs_out() {
        // 4 local backends, 4 in the rest of the region.
        let s = |up0| shares(&[4, 4, 0], &[up0, 4, 0], 1.4);
        assert_eq!(s(4), [1.0, 0.0, 0.0]);
        assert_eq!(s(3), [1.0, 0.0, 0.0], "75% healthy × 1.4 ≥ 100%");
        let half = s(2);
        assert!((half[0] - 0.7).abs() < 1e-12 && (half[1] - 0.3).abs() < 1e-12);
        assert_eq!(s(0), [0.0, 1.0, 0.0]);
    }

    #[test]
    fn shares_are_scaled_up_when_every_tier_is_short() {
        // Local 1 of 4 (0.35), near 1 of 4 (0.35): 0.7 in all, scaled to 0.5 each.
        let got = shares(&[4, 4, 0], &[1, 1, 0], 1.4);
        assert!((got[0] - 0.5).abs() < 1e-12 && (got[1] - 0.5).abs() < 1e-12);
        assert_eq!(shares(&[4, 4, 0], &[0, 0, 0], 1.4), [0.0; 3]);
        assert_eq!(pick_tier(&[0.0; 3], 0.3), None);
        assert_eq!(pick_tier(&[0.7, 0.3, 0.0], 0.69), Some(0));
        assert_eq!(pick_tier(&[0.7, 0.3, 0.0], 0.71), Some(1));
    }
}
