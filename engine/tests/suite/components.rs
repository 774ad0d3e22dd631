//! Behaviour of the built-in components (client, load balancer, server) through whole runs:
//! each test states a property, computes its expected value by hand, and reads it back from
//! `Results`.
//!
//! Most scenarios use constant arrivals, service and latency, so the expected numbers are exact
//! counts; the statistical ones (loss, strategies under a slow replica) say how their
//! tolerance was chosen.

use super::run_text;
use archsim::results::VariantResult;

/// Counter `name` of node `node`, e.g. `counter(v, "lb", "forwarded_to.app-0")`.
fn counter(v: &VariantResult, node: &str, name: &str) -> f64 {
    v.components
        .get(node)
        .and_then(|c| c.get(name))
        .copied()
        .unwrap_or_else(|| panic!("no counter {node}.{name} in {:?}", v.components))
}

/// Requests the load balancer `lb` forwarded to each backend, in backend order.
fn forwarded(v: &VariantResult, lb: &str) -> Vec<u64> {
    let counters = &v.components[lb];
    let mut out: Vec<(usize, u64)> = counters
        .iter()
        .filter_map(|(k, &n)| {
            let name = k.strip_prefix("forwarded_to.")?;
            let idx = name.rsplit('-').next()?.parse().ok()?;
            Some((idx, n as u64))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, n)| n).collect()
}

fn error_sum(v: &VariantResult) -> u64 {
    v.errors.values().sum()
}

fn assert_close(what: &str, got: f64, want: f64, tolerance: f64) {
    let err = (got - want).abs() / want;
    assert!(
        err <= tolerance,
        "{what}: got {got}, want {want} (error {:.3}%, allowed {:.3}%)",
        err * 100.0,
        tolerance * 100.0
    );
}

/// A client at a constant rate through "lb" to a pool "app" of `replicas`, with a strategy, no
/// faults and no latency: the balancing decisions are all that varies.
fn balanced(strategy: &str, replicas: u32, rate: f64, keys: &str) -> String {
    format!(
        r#"Scenario(
            name: "balance", seed: 7, duration: "10s",
            nodes: {{
                "users": Client(target: "lb", arrival: Constant(rate: {rate}), keys: {keys}),
                "lb": LoadBalancer(strategy: {strategy}, backends: ["app"]),
                "app": Server(replicas: {replicas}, workers: 4, service_time: Constant("1ms")),
            }},
        )"#
    )
}

// ---------------------------------------------------------------------------------------------
// Load-balancing strategies

#[test]
fn round_robin_spreads_exactly_evenly() {
    for replicas in [2, 3, 7] {
        let r = run_text(&balanced(
            "RoundRobin",
            replicas,
            1000.0,
            "Uniform(count: 1000)",
        ));
        let v = &r.variants[0];
        let counts = forwarded(v, "lb");
        assert_eq!(counts.len(), replicas as usize);
        assert_eq!(counts.iter().sum::<u64>(), v.requests, "{counts:?}");
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(hi - lo <= 1, "{replicas} replicas: {counts:?}");
    }
}

#[test]
fn weighted_round_robin_forwards_in_proportion_to_the_weights() {
    let weights = [3u64, 1, 1];
    let r = run_text(&balanced(
        "WeightedRoundRobin(weights: [3, 1, 1])",
        3,
        1000.0,
        "Uniform(count: 1000)",
    ));
    let v = &r.variants[0];
    let counts = forwarded(v, "lb");
    let total: u64 = counts.iter().sum();
    assert_eq!(total, v.requests);
    let weight_sum: u64 = weights.iter().sum();
    for (i, (&n, &w)) in counts.iter().zip(&weights).enumerate() {
        // Smooth WRR is exact after each full cycle of 5 and off by less than one inside one.
        let off = (n * weight_sum).abs_diff(total * w);
        assert!(
            off < weight_sum,
            "app-{i}: {n} of {total}, want {w}/{weight_sum} ± 1 ({counts:?})"
        );
    }
}

#[test]
fn consistent_hash_sends_one_key_to_one_backend() {
    let r = run_text(&balanced(
        "ConsistentHash(vnodes: 100)",
        4,
        1000.0,
        "Uniform(count: 1)",
    ));
    let v = &r.variants[0];
    let counts = forwarded(v, "lb");
    assert_eq!(counts.iter().filter(|&&n| n > 0).count(), 1, "{counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), v.requests);
}

#[test]
fn consistent_hash_spreads_many_keys_over_every_backend() {
    let n = 4;
    let r = run_text(&balanced(
        "ConsistentHash(vnodes: 100)",
        n,
        1000.0,
        "Uniform(count: 100000)",
    ));
    let v = &r.variants[0];
    let counts = forwarded(v, "lb");
    let fair = v.requests as f64 / n as f64;
    for (i, &c) in counts.iter().enumerate() {
        // With 100 points per backend a share has a standard deviation of about 10% of fair
        // (the arcs a backend owns), so ±50% only fails if the ring itself is broken.
        assert_close(&format!("app-{i} share"), c as f64, fair, 0.5);
    }
}

/// One hot key through a consistent-hash ring of three at 100 requests/s, with `faults`.
fn hot_key(faults: &str) -> String {
    format!(
        r#"Scenario(
            name: "hot key", seed: 3, duration: "5s",
            nodes: {{
                "users": Client(target: "lb", arrival: Constant(rate: 100.0), keys: Uniform(count: 1),
                                timeout: "100ms"),
                "lb": LoadBalancer(strategy: ConsistentHash(vnodes: 100), backends: ["app"]),
                "app": Server(replicas: 3, service_time: Constant("1ms")),
            }},
            faults: [{faults}],
        )"#
    )
}

#[test]
fn consistent_hash_moves_a_key_only_while_its_backend_is_down() {
    let probe = run_text(&hot_key(""));
    let counts = forwarded(&probe.variants[0], "lb");
    let home = counts.iter().position(|&n| n > 0).expect("some backend");
    assert_eq!(
        counts[home], 499,
        "arrivals at 10 ms, 20 ms, .., 4.99 s: {counts:?}"
    );

    let r = run_text(&hot_key(&format!(
        r#"Crash(node: "app-{home}", at: "2s", until: "3s")"#
    )));
    let v = &r.variants[0];
    let counts = forwarded(v, "lb");
    // Arrivals at 2.00 .. 2.99 s (100 of them) go to one other backend; the rest stay home.
    assert_eq!(counts[home], 399, "{counts:?}");
    assert_eq!(
        counts.iter().filter(|&&n| n == 100).count(),
        1,
        "{counts:?}"
    );
    assert_eq!(counts.iter().filter(|&&n| n == 0).count(), 1, "{counts:?}");
    // Service is instant next to the arrival gap, so nothing is in flight at the crash.
    assert_eq!(v.availability, 1.0, "{:?}", v.errors);
}

#[test]
fn consistent_hash_survives_a_crash_and_rebalances_after_the_restart() {
    let src = r#"Scenario(
        name: "ring crash", seed: 5, duration: "6s",
        nodes: {
            "users": Client(target: "lb", arrival: Poisson(rate: 2000.0), timeout: "100ms",
                            keys: Uniform(count: 100000)),
            "lb": LoadBalancer(strategy: ConsistentHash(vnodes: 100), backends: ["app"]),
            "app": Server(replicas: 4, workers: 4, service_time: Exponential(mean: "1ms")),
        },
        faults: [Crash(node: "app-1", at: "2s", until: "4s")],
        variants: {
            "restarts": {},
            "stays down": { "faults": [Crash(node: "app-1", at: "2s")] },
        },
    )"#;
    let r = run_text(src);
    let (restarts, down) = (&r.variants[0], &r.variants[1]);
    for v in [restarts, down] {
        // Only the requests in service at app-1 when it crashes fail.
        assert!(v.availability > 0.999, "{}: {:?}", v.name, v.errors);
        assert_eq!(v.errors["unreachable"], 0, "{}", v.name);
    }
    // Both variants see the same requests, so the difference is what app-1 got after its
    // restart at 4 s; its keys come back to it, so that is about what it got before the crash
    // in as long (0 to 2 s, all it ever got when it stays down). Each count is Poisson with
    // ~900 expected: 15% is over 3σ of the difference.
    let before_crash = forwarded(down, "lb")[1];
    let after_restart = forwarded(restarts, "lb")[1] - before_crash;
    assert_close(
        "app-1 after restart vs before crash",
        after_restart as f64,
        before_crash as f64,
        0.15,
    );
}

#[test]
fn zipf_keys_concentrate_load_on_one_backend_of_a_hash_ring() {
    let n = 4u32;
    let busiest_share = |keys: &str| {
        let r = run_text(&balanced("ConsistentHash(vnodes: 100)", n, 2000.0, keys));
        let v = &r.variants[0];
        let counts = forwarded(v, "lb");
        *counts.iter().max().unwrap() as f64 / v.requests as f64
    };
    // Key 0 alone draws 1 / Σ k^-1.2 ≈ 23% of requests, and its backend also gets its ring
    // share (~1/4) of the rest: ≈ 0.42. Uniform keys leave the busiest at its ring share, which
    // with 100 points per backend stays within a few 10% standard deviations of 1/4.
    let p0 = 1.0 / (1..=1000).map(|k| (k as f64).powf(-1.2)).sum::<f64>();
    assert!((0.22..0.24).contains(&p0), "{p0}");
    let threshold = 1.4 / n as f64;
    let uniform = busiest_share("Uniform(count: 1000)");
    let zipf = busiest_share("Zipf(count: 1000, exponent: 1.2)");
    assert!(
        zipf > threshold && uniform < threshold,
        "busiest backend's share: zipf {zipf:.3}, uniform {uniform:.3}, threshold {threshold:.3}"
    );
}

/// Four replicas at half load, app-0 slowed 1.8× for the whole run (so at 90% load under an
/// even split); variants for the three strategies, all seeing the same requests.
///
/// Under RoundRobin each replica gets every fourth Poisson arrival, so it is exactly an
/// E4/M/1 queue, whose time in system is exponential with rate μ(1 − σ), σ the root of
/// σ = (4λ / (4λ + μ(1 − σ)))⁴. With λ = 500/s: the slow replica (μ = 555.6/s) has σ = 0.8433
/// and mean 11.49 ms, the others (μ = 1000/s) σ = 0.3019 and mean 1.43 ms; the p99 of the
/// mixture, 0.25·e^(−t/11.49) + 0.75·e^(−t/1.43) = 0.01, is t = 36.98 ms.
fn slow_replica(seed: u64) -> String {
    format!(
        r#"Scenario(
            name: "slow replica", seed: {seed}, duration: "20s", warmup: "2s",
            nodes: {{
                "users": Client(target: "lb", arrival: Poisson(rate: 2000.0), timeout: "10s"),
                "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], timeout: "10s"),
                "app": Server(replicas: 4, service_time: Exponential(mean: "1ms")),
            }},
            faults: [Slowdown(node: "app-0", factor: 1.8, at: "0s")],
            variants: {{
                "rr": {{}},
                "lc": {{ "lb.strategy": LeastConnections }},
                "p2c": {{ "lb.strategy": PowerOfTwoChoices }},
            }},
        )"#
    )
}

#[test]
fn load_aware_strategies_beat_round_robin_on_p99_with_a_slow_replica() {
    let seeds = [1, 2, 3];
    let mut rr_sum = 0.0;
    for seed in seeds {
        let r = run_text(&slow_replica(seed));
        let p99 = |i: usize| r.variants[i].latency_ms.p99;
        let (rr, lc, p2c) = (p99(0), p99(1), p99(2));
        eprintln!("seed {seed}: p99 rr {rr:.2} ms, lc {lc:.2} ms, p2c {p2c:.2} ms");
        rr_sum += rr;
        // Load-aware strategies keep the slow replica's queue short: a few ms.
        assert!(
            lc * 3.0 < rr && p2c * 3.0 < rr,
            "seed {seed}: p99 rr {rr:.2} ms, lc {lc:.2} ms, p2c {p2c:.2} ms"
        );
    }
    // Sojourn times at ρ = 0.9 are strongly correlated, so a p99 over 36k requests moves by
    // tens of percent between seeds: 33 to 52 ms in an independent simulation, a standard
    // deviation of about 5 ms. The mean of the seeds' p99s, two-sided at 4 of its standard
    // errors: a slow replica too slow or not slowed at all both fail.
    let mean = rr_sum / seeds.len() as f64;
    let tol = 4.0 * 5.0 / (seeds.len() as f64).sqrt();
    assert!(
        (mean - 36.98).abs() < tol,
        "RR p99 {mean:.2} ms on average, E4/M/1 theory 36.98 ± {tol:.1} ms"
    );
}

// ---------------------------------------------------------------------------------------------
// Faults

#[test]
fn a_crash_times_out_in_flight_requests_and_the_lb_skips_the_crashed_backend() {
    // 600 requests/s of 50 ms each over 3 replicas: ~10 in service at app-0 when it crashes.
    let src = r#"Scenario(
        name: "crash", seed: 9, duration: "6s",
        nodes: {
            "users": Client(target: "lb", arrival: Constant(rate: 600.0), timeout: "200ms"),
            "lb": LoadBalancer(strategy: LeastConnections, backends: ["app"]),
            "app": Server(replicas: 3, workers: 100, service_time: Constant("50ms")),
        },
        faults: [Crash(node: "app-0", at: "2.5s", until: "4.5s")],
    )"#;
    let r = run_text(src);
    let v = &r.variants[0];
    let timeouts = v.errors["timeout"];
    assert!((5..=15).contains(&timeouts), "{:?}", v.errors);
    assert_eq!(error_sum(v), timeouts, "{:?}", v.errors);
    // Timeouts end by 2.55 s + 200 ms: every failure is in the crash's own window.
    for w in &r.variants[0].windows {
        let want = if w.start_s == 2.0 { timeouts } else { 0 };
        assert_eq!(w.errors, want, "window at {} s", w.start_s);
    }
    // The LB sends nothing to app-0 while it is down, and its share again afterwards.
    let counts = forwarded(v, "lb");
    let expected_app0 = (2.5 + 1.5) * 600.0 / 3.0;
    assert_close("app-0 forwarded", counts[0] as f64, expected_app0, 0.02);
}

#[test]
fn a_partition_between_client_and_lb_fails_requests_as_unreachable_until_it_heals() {
    let src = r#"Scenario(
        name: "partition", seed: 1, duration: "5s",
        nodes: {
            "users": Client(target: "lb", arrival: Constant(rate: 100.0), timeout: "100ms"),
            "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"]),
            "app": Server(replicas: 2, service_time: Constant("1ms")),
        },
        faults: [Partition(groups: [["users"], ["lb"]], at: "2s", until: "3s")],
    )"#;
    let r = run_text(src);
    let v = &r.variants[0];
    // Arrivals every 10 ms; those at 2.00, 2.01, .., 2.99 s find the LB unreachable. Faults
    // at an instant act before arrivals at that instant.
    assert_eq!(v.requests, 499);
    assert_eq!(v.errors["unreachable"], 100, "{:?}", v.errors);
    assert_eq!(v.errors["timeout"], 0, "nothing was in flight at 2 s");
    let availability: Vec<Option<f64>> = v.windows.iter().map(|w| w.availability).collect();
    assert_eq!(
        availability,
        [Some(1.0), Some(1.0), Some(0.0), Some(1.0), Some(1.0)]
    );
}

// ---------------------------------------------------------------------------------------------
// Servers

#[test]
fn a_server_without_a_queue_rejects_and_never_queues() {
    let src = r#"Scenario(
        name: "no queue", seed: 4, duration: "10s",
        nodes: {
            "users": Client(target: "app", arrival: Poisson(rate: 3000.0)),
            "app": Server(workers: 1, queue_limit: 0, service_time: Exponential(mean: "1ms")),
        },
    )"#;
    let r = run_text(src);
    let v = &r.variants[0];
    let s = &v.servers[0];
    assert!(v.errors["rejected"] > 0, "{:?}", v.errors);
    assert_eq!(s.rejected, v.errors["rejected"]);
    assert_eq!(s.mean_queue_len, 0.0);
    // Erlang B with one server: blocking = a / (1 + a) = 3/4 at a = 3.
    assert_close(
        "blocking",
        v.errors["rejected"] as f64 / v.requests as f64,
        0.75,
        0.02,
    );
}

// ---------------------------------------------------------------------------------------------
// Clients

#[test]
fn closed_loop_throughput_is_users_over_cycle_time() {
    // Each user: think 9 ms, then a 1 ms request, over and over: a 10 ms cycle.
    let src = r#"Scenario(
        name: "closed", seed: 2, duration: "10s",
        nodes: {
            "users": Client(target: "app", arrival: Closed(users: 10, think_time: Constant("9ms"))),
            "app": Server(workers: 10, service_time: Constant("1ms")),
        },
    )"#;
    let r = run_text(src);
    let v = &r.variants[0];
    // Issues at 9 ms, 19 ms, .., 9.999 s: 1000 per user.
    assert_eq!(v.requests, 10_000);
    assert_close("throughput (req/s)", v.throughput_rps, 1000.0, 0.01);
    assert_close("p50 (ms)", v.latency_ms.p50, 1.0, 0.001);
    assert_close("max (ms)", v.latency_ms.max, 1.0, 0.001);
}

#[test]
fn constant_arrivals_start_one_gap_after_time_zero() {
    let src = r#"Scenario(
        name: "constant", seed: 1, duration: "10s",
        nodes: {
            "users": Client(target: "app", arrival: Constant(rate: 100.0)),
            "app": Server(service_time: Constant("1ms")),
        },
    )"#;
    let v = &run_text(src).variants[0];
    // Arrivals at 10 ms, 20 ms, .., 9.99 s; one at 10 s would be outside [0, duration).
    assert_eq!(v.requests, 999);
    assert_eq!(counter(v, "users", "issued"), 999.0);
}

#[test]
fn max_requests_stops_the_client() {
    let src = r#"Scenario(
        name: "max", seed: 1, duration: "10s",
        nodes: {
            "users": Client(target: "app", arrival: Poisson(rate: 1000.0), max_requests: 500),
            "app": Server(workers: 4, service_time: Exponential(mean: "1ms")),
        },
    )"#;
    let v = &run_text(src).variants[0];
    assert_eq!(v.requests, 500);
    assert_eq!(counter(v, "users", "issued"), 500.0);
}

#[test]
fn answers_slower_than_the_timeout_all_fail_and_arrive_late() {
    let src = r#"Scenario(
        name: "too slow", seed: 1, duration: "1s",
        nodes: {
            "users": Client(target: "app", arrival: Constant(rate: 100.0), timeout: "20ms"),
            "app": Server(workers: 100, service_time: Constant("50ms")),
        },
    )"#;
    let v = &run_text(src).variants[0];
    assert_eq!(v.requests, 99);
    assert_eq!(v.errors["timeout"], 99);
    assert_eq!(v.availability, 0.0);
    // The run drains until 1 s + 20 ms, so answers to requests issued up to 970 ms (at 50 ms
    // after their issue) arrive in time to be counted late: 97 of them.
    assert_eq!(counter(v, "users", "late_responses"), 97.0);
}

// ---------------------------------------------------------------------------------------------
// Network

#[test]
fn latency_is_four_hops_plus_service() {
    let src = r#"Scenario(
        name: "latency", seed: 1, duration: "5s",
        network: (latency: Constant("5ms")),
        nodes: {
            "users": Client(target: "lb", arrival: Poisson(rate: 200.0)),
            "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"]),
            "app": Server(replicas: 2, workers: 100, service_time: Constant("1ms")),
        },
    )"#;
    let v = &run_text(src).variants[0];
    // users → lb → app (5 + 5), service 1, app → lb → users (5 + 5); the LB adds nothing.
    // The histogram keeps 3 significant digits.
    for (what, got) in [("p50", v.latency_ms.p50), ("max", v.latency_ms.max)] {
        assert_close(what, got, 21.0, 0.001);
    }
    assert_eq!(v.availability, 1.0);
}

#[test]
fn loss_on_each_of_four_messages_compounds() {
    // 100k requests: the standard error of availability is sqrt(p(1-p)/n) = 0.0015, 0.23% of
    // 0.656, so the 1% tolerance is over 4σ.
    let src = r#"Scenario(
        name: "loss", seed: 8, duration: "10s",
        network: (loss: 0.1),
        nodes: {
            "users": Client(target: "lb", arrival: Poisson(rate: 10000.0), timeout: "50ms"),
            "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], timeout: "50ms"),
            "app": Server(replicas: 4, workers: 4, service_time: Exponential(mean: "100us")),
        },
    )"#;
    let v = &run_text(src).variants[0];
    assert_close("availability", v.availability, 0.9f64.powi(4), 0.01);
    assert_eq!(error_sum(v), v.errors["timeout"], "{:?}", v.errors);
}

// ---------------------------------------------------------------------------------------------
// Accounting

#[test]
fn every_issued_request_ends_exactly_once() {
    let cases = [
        // Crash of a backend and of the client itself, partition, loss, rejections.
        r#"Scenario(name: "mixed", seed: 12, duration: "4s",
            network: (latency: Exponential(mean: "1ms"), loss: 0.02),
            nodes: {
                "users": Client(target: "lb", arrival: Poisson(rate: 3000.0), timeout: "30ms"),
                "lb": LoadBalancer(strategy: PowerOfTwoChoices, backends: ["app"], timeout: "20ms"),
                "app": Server(replicas: 3, workers: 2, queue_limit: 3,
                              service_time: Exponential(mean: "1ms")),
            },
            faults: [
                Crash(node: "app-1", at: "1s", until: "2s"),
                Partition(groups: [["lb"], ["app-2"]], at: "1.5s", until: "2.5s"),
                Crash(node: "users", at: "3s", until: "3.2s"),
            ])"#,
        // Closed loop behind an LB that loses every backend for a while.
        r#"Scenario(name: "closed", seed: 13, duration: "3s",
            nodes: {
                "users": Client(target: "lb", arrival: Closed(users: 20, think_time: Exponential(mean: "20ms")),
                                timeout: "10ms"),
                "lb": LoadBalancer(strategy: LeastConnections, backends: ["app"]),
                "app": Server(replicas: 2, workers: 4, service_time: Uniform(low: "1ms", high: "15ms")),
            },
            faults: [Crash(node: "app", at: "1s", until: "2s")])"#,
    ];
    for src in cases {
        let r = run_text(src);
        let v = &r.variants[0];
        let issued = counter(v, "users", "issued") as u64;
        let lost = counter(v, "users", "lost_in_crash") as u64;
        // No warm-up, so every issued request is counted unless its client crashed under it.
        assert_eq!(issued, v.requests + lost, "{}", r.scenario.name);
        assert_eq!(v.requests, v.ok + error_sum(v), "{}", r.scenario.name);
        assert!(
            v.ok > 0 && error_sum(v) > 0,
            "{}: the case should exercise both outcomes: {:?}",
            r.scenario.name,
            v.errors
        );
    }
}
