//! The expected failures of a deploy: the new version's traffic weight over time times its
//! error rate, integrated over the measured period (weight × error rate × exposure time).
//!
//! ```text
//!  canary:     weight steps[i] for `pause` each from ready (start + provisioning); with an
//!              analysis whose limit the error rate exceeds, rolled back after
//!              (failure_limit + 1) windows of the first step; else promoted (weight 1; the
//!              promotion's batches, while traffic follows the replicas, are not modelled)
//!  blue-green: weight 1 from ready + switch_after; rolled back after (failure_limit + 1)
//!              windows when the error rate exceeds the limit
//!  rolling:    no formula: the new replicas' share depends on the balancer's choices
//!  crash loop: no formula: what a crash loses depends on the requests in flight then, and
//!              on when the balancers route around the replicas backing off
//! ```
//! It assumes each analysis check measures the version's true error rate (a check of n
//! answers sees it within about 1/√n) and that the balancers have a replica of each version.

use crate::components::NodeConfig;
use crate::components::ops::deploy::{DeployConfig, Strategy};
use crate::results::{Accuracy, DeployTheory, Estimate};
use crate::scenario::validate::Model;

/// How the reason for a crash-looping release's missing formula starts.
pub const NO_FORMULA_CRASH_LOOP: &str = "no formula: a crash loop";

/// The expected failed fraction of issued requests for each deploy of `model`.
pub fn deploys(model: &Model) -> Vec<DeployTheory> {
    let from = model.spec.warmup.as_secs_f64();
    let to = model.spec.duration.as_secs_f64();
    model
        .spec
        .nodes
        .iter()
        .filter_map(|(name, cfg)| match cfg {
            NodeConfig::Deploy(d) => Some(DeployTheory {
                name: name.clone(),
                failed_fraction: failed_fraction(d, from, to),
            }),
            _ => None,
        })
        .collect()
}

/// The expected failed fraction of the requests issued in [from, to] (seconds).
fn failed_fraction(d: &DeployConfig, from: f64, to: f64) -> Estimate {
    if d.version.crash_loop.is_some() {
        return Estimate {
            value: None,
            accuracy: Accuracy::NotApplicable,
            why: format!(
                "{NO_FORMULA_CRASH_LOOP}'s failures are the requests in flight at each crash \
                 and those sent while no replica is in rotation"
            ),
        };
    }
    let Some(weights) = weights(d) else {
        return Estimate {
            value: None,
            accuracy: Accuracy::NotApplicable,
            why: "no formula: a rolling update's share of traffic on the new version depends \
                  on which replicas the balancer picks while batches are replaced"
                .to_string(),
        };
    };
    let span = to - from;
    let exposure: f64 = weights
        .iter()
        .map(|&(a, b, w)| w * (b.min(to) - a.max(from)).max(0.0))
        .sum();
    let value = if span > 0.0 {
        d.version.error_rate * exposure / span
    } else {
        0.0
    };
    Estimate {
        value: Some(value),
        accuracy: Accuracy::Approximate,
        why: "weight × error rate × exposure time, with each analysis check taken to measure \
              the new version's true error rate"
            .to_string(),
    }
}

/// Does the analysis roll the version back, and after how long (seconds of checks)?
fn rollback_after(d: &DeployConfig) -> Option<f64> {
    let a = d.analysis.as_ref()?;
    let bad = d.version.error_rate > a.max_error_rate;
    bad.then(|| a.window.as_secs_f64() * f64::from(a.failure_limit + 1))
}

/// The new version's traffic weight as (from, to, weight) spans in seconds; `None` for a
/// rolling update.
fn weights(d: &DeployConfig) -> Option<Vec<(f64, f64, f64)>> {
    let ready = d.start.as_secs_f64() + d.provisioning.as_secs_f64();
    let back = rollback_after(d);
    match &d.strategy {
        Strategy::Rolling { .. } => None,
        Strategy::BlueGreen {
            switch_after,
            scale_down_delay,
        } => {
            let switch = ready + switch_after.as_secs_f64();
            let end = match back {
                Some(r) if r <= scale_down_delay.as_secs_f64() => switch + r,
                _ => f64::INFINITY,
            };
            Some(vec![(switch, end, 1.0)])
        }
        Strategy::Canary { steps, pause, .. } => {
            let pause = pause.as_secs_f64();
            let total = pause * steps.len() as f64;
            let end = match back {
                Some(r) if r <= total => ready + r,
                _ => f64::INFINITY,
            };
            let mut spans: Vec<(f64, f64, f64)> = steps
                .iter()
                .enumerate()
                .map(|(i, &w)| {
                    let a = ready + pause * i as f64;
                    (a, (a + pause).min(end), w)
                })
                .filter(|&(a, b, _)| b > a)
                .collect();
            if end.is_infinite() {
                spans.push((ready + total, end, 1.0));
            }
            Some(spans)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::ops::deploy::{AnalysisConfig, VersionConfig};
    use crate::sim::time::SimDuration;

    fn deploy(strategy: Strategy, error_rate: f64) -> DeployConfig {
        DeployConfig {
            pool: "app".into(),
            replicas: 4,
            start: SimDuration::from_secs(60),
            version: VersionConfig {
                error_rate,
                latency_factor: 1.0,
                crash_loop: None,
            },
            strategy,
            provisioning: SimDuration::from_secs(20),
            analysis: Some(AnalysisConfig {
                window: SimDuration::from_secs(20),
                max_error_rate: 0.05,
                max_p99: None,
                failure_limit: 0,
                min_requests: 10,
                max_crashes: None,
            }),
        }
    }

    fn canary() -> Strategy {
        Strategy::Canary {
            steps: vec![0.05, 0.2, 0.5, 1.0],
            pause: SimDuration::from_secs(60),
            canary_replicas: None,
            max_surge: None,
            max_unavailable: None,
        }
    }

    fn close(e: Estimate, want: f64) {
        let got = e.value.expect("a formula");
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }

    #[test]
    fn a_bad_canary_fails_its_weight_times_its_error_rate_for_one_window() {
        close(
            failed_fraction(&deploy(canary(), 0.2), 0.0, 300.0),
            0.05 * 0.2 * 20.0 / 300.0,
        );
        // Two failures allowed: three windows, the third in the second step.
        let mut d = deploy(
            Strategy::Canary {
                steps: vec![0.05, 0.2],
                pause: SimDuration::from_secs(40),
                canary_replicas: None,
                max_surge: None,
                max_unavailable: None,
            },
            0.2,
        );
        d.analysis.as_mut().expect("set").failure_limit = 2;
        close(
            failed_fraction(&d, 0.0, 300.0),
            0.2 * (0.05 * 40.0 + 0.2 * 20.0) / 300.0,
        );
    }

    #[test]
    fn a_good_canary_is_exposed_through_every_step_and_promotion() {
        // Steps from 80 s, 60 s each: the last (weight 1) is cut at the end, 300 s.
        close(
            failed_fraction(&deploy(canary(), 0.01), 0.0, 300.0),
            0.01 * ((0.05 + 0.2 + 0.5) * 60.0 + 40.0) / 300.0,
        );
        // Measured from 100 s to 400 s: the first step's last 40 s, then the rest.
        close(
            failed_fraction(&deploy(canary(), 0.01), 100.0, 400.0),
            0.01 * (0.05 * 40.0 + (0.2 + 0.5 + 1.0) * 60.0 + 80.0) / 300.0,
        );
    }

    #[test]
    fn blue_green_is_exposed_whole_until_it_switches_back_and_rolling_has_no_formula() {
        let bg = Strategy::BlueGreen {
            switch_after: SimDuration::from_secs(5),
            scale_down_delay: SimDuration::from_secs(30),
        };
        close(
            failed_fraction(&deploy(bg, 0.2), 0.0, 300.0),
            0.2 * 20.0 / 300.0,
        );
        let rolling = Strategy::Rolling {
            max_surge: None,
            max_unavailable: None,
            progress_deadline: SimDuration::from_secs(600),
        };
        let e = failed_fraction(&deploy(rolling, 0.2), 0.0, 300.0);
        assert_eq!((e.value, e.accuracy), (None, Accuracy::NotApplicable));
        assert!(e.why.starts_with("no formula"), "{}", e.why);
    }
}
