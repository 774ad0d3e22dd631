//! Latency-aware balancing and slow start through whole runs: peak EWMA against power of two
//! choices (the same with identical backends, fewer requests to a slow one), and Envoy's slow
//! start against the integral of its weight.

use super::run_text;
use archsim::results::VariantResult;

/// Requests `lb` forwarded to backend `name` (a pool of one is its replica `name-0`).
fn forwarded_to(v: &VariantResult, name: &str) -> f64 {
    let lb = &v.components["lb"];
    let key = format!("forwarded_to.{name}");
    lb.get(&key)
        .or_else(|| lb.get(&format!("{key}-0")))
        .copied()
        .unwrap_or_else(|| panic!("no {key} in {lb:?}"))
}

/// Four single-worker backends, `odd` and app-0..2, with exponential 1 ms service (`slow_x`
/// times longer at `odd`) behind `strategy`, fed 3000 requests/s for 10 s.
fn four_backends(strategy: &str, slow_x: f64, seed: u64) -> VariantResult {
    let src = format!(
        r#"Scenario(name: "balancing", seed: {seed}, duration: "10s", warmup: "1s",
        nodes: {{
            "users": Client(target: "lb", arrival: Poisson(rate: 3000.0), timeout: "10s"),
            "lb": LoadBalancer(strategy: {strategy}, backends: ["odd", "app"], timeout: "10s"),
            "odd": Server(service_time: Exponential(mean: "{slow}us")),
            "app": Server(replicas: 3, service_time: Exponential(mean: "1ms")),
        }})"#,
        slow = 1000.0 * slow_x
    );
    run_text(&src).variants.remove(0)
}

#[test]
fn peak_ewma_with_identical_backends_matches_power_of_two_choices() {
    // Same requests (common random numbers), paired by seed: the mean latency of peak EWMA
    // minus that of P2C, over 6 seeds, within 4 standard errors of zero.
    let diffs: Vec<f64> = (1..=6)
        .map(|seed| {
            let ewma = four_backends("PeakEwma()", 1.0, seed).latency_ms.mean;
            let p2c = four_backends("PowerOfTwoChoices", 1.0, seed)
                .latency_ms
                .mean;
            ewma - p2c
        })
        .collect();
    let n = diffs.len() as f64;
    let mean = diffs.iter().sum::<f64>() / n;
    let se = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
    eprintln!("peak EWMA - P2C mean latency: {mean:.4} ms ± {se:.4}");
    assert!(mean.abs() < 4.0 * se, "{mean} ms ± {se}");
}

#[test]
fn peak_ewma_sends_a_slow_backend_less_than_power_of_two_choices() {
    // `odd` serves 3x slower (μ = 333/s). P2C already sends it less than a quarter, by its
    // longer queue; peak EWMA also weighs its latency, so it sends it less again.
    let share = |strategy: &str| {
        let v = four_backends(strategy, 3.0, 1);
        let names = ["odd", "app-0", "app-1", "app-2"];
        let total: f64 = names.iter().map(|n| forwarded_to(&v, n)).sum();
        (forwarded_to(&v, "odd") / total, v.latency_ms.mean)
    };
    let (p2c, p2c_ms) = share("PowerOfTwoChoices");
    let (ewma, ewma_ms) = share("PeakEwma()");
    let (lrt, lrt_ms) = share("LeastResponseTime()");
    eprintln!(
        "slow backend's share: P2C {p2c:.4} ({p2c_ms:.3} ms), peak EWMA {ewma:.4} \
         ({ewma_ms:.3} ms), least response time {lrt:.4} ({lrt_ms:.3} ms)"
    );
    assert!(p2c < 0.25 && ewma < p2c && lrt < p2c, "{p2c} {ewma} {lrt}");
    assert!(
        ewma_ms < p2c_ms,
        "avoiding the slow backend lowers the mean latency"
    );
}

#[test]
fn slow_start_sends_a_returning_backend_the_integral_of_its_weight() {
    // Round robin over 4 backends at 2000 requests/s; app-3 is down until 10 s and then in
    // slow start for 10 s (aggression 1, floor 10%): it keeps each of its turns with
    // probability w = max(0.1, τ/10s), and a turn it gives up goes to the next backend, so
    // a cycle is 4 requests when it keeps its turn and 3 when not: it gets the share
    // w / (3 + w) of a weight w among weights 1 (as Envoy's weighted round robin), that is
    // 2000/s × ∫0^10s w/(3+w) dτ ≈ 2771 requests over the window, and a full quarter after.
    let src = r#"Scenario(name: "slow start", seed: 2, duration: "25s", warmup: "0s",
        nodes: {
            "users": Client(target: "lb", arrival: Poisson(rate: 2000.0), timeout: "10s"),
            "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], timeout: "10s",
                               slow_start: Some((window: "10s"))),
            "app": Server(replicas: 4, workers: 4, service_time: Exponential(mean: "1ms")),
        },
        faults: [Crash(node: "app-3", at: "0s", until: "10s")])"#;
    let v = &run_text(src).variants[0];
    let lb = &v.components["lb"];
    assert_eq!(lb["slow_starts"], 1.0);
    // Standard deviations: the Poisson arrivals, about 25 in each part; the keep draws,
    // about 30; about 45 in all.
    let got = forwarded_to(v, "app-3");
    let steps = 100_000;
    let dt = 10.0 / f64::from(steps);
    let window: f64 = (0..steps)
        .map(|k| {
            let w = ((f64::from(k) + 0.5) * dt / 10.0).max(0.1);
            2000.0 * w / (3.0 + w) * dt
        })
        .sum();
    let want = window + 2500.0;
    eprintln!("slow start: app-3 got {got} requests, theory {want}");
    assert!((got - want).abs() < 4.0 * 45.0, "{got} vs {want}");
}
