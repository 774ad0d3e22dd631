//! Read replicas and session guarantees: read-your-writes routing never violates its
//! guarantee whatever the replication delay, and any-replica routing is stale exactly as often
//! as a hand calculation predicts.

use super::run_text;
use std::collections::BTreeMap;

/// Three sessions (clients) reading and writing 50 keys through a primary with `replicas`
/// replicas whose delay is `delay`, routed by `routing`; the store's counters.
fn run(routing: &str, delay: &str, seed: u64) -> BTreeMap<String, f64> {
    let clients: String = (0..3)
        .map(|i| {
            format!(
                r#""session-{i}": Client(target: "db", arrival: Poisson(rate: 300.0),
                                         write_fraction: 0.3, keys: Zipf(count: 50, exponent: 1.0)),"#
            )
        })
        .collect();
    let src = format!(
        r#"Scenario(
            name: "sessions", seed: {seed}, duration: "10s",
            network: (latency: LogNormal(median: "500us", p99: "3ms")),
            nodes: {{
                {clients}
                "db": ReadReplicas(replicas: 3, replication_delay: {delay}, routing: {routing}),
            }},
        )"#
    );
    run_text(&src).variants[0].components["db"].clone()
}

#[test]
fn read_your_writes_routing_never_violates_it_whatever_the_delay() {
    let delays = [
        r#"Constant("1ms")"#,
        r#"Constant("200ms")"#,
        r#"LogNormal(median: "20ms", p99: "2s")"#,
        r#"Pareto(scale: "5ms", shape: 1.1)"#,
    ];
    for (seed, delay) in delays.iter().enumerate() {
        let seed = seed as u64 + 1;
        let c = run("ReadYourWrites", delay, seed);
        assert_eq!(c["read_your_writes_violations"], 0.0, "{delay}: {c:?}");
        assert!(c["reads"] > 5000.0, "{c:?}");
        // Not by sending everything to the primary: replicas serve some reads.
        assert!(c["primary_read_share"] < 1.0, "{delay}: {c:?}");
        let c = run("MonotonicReads", delay, seed);
        assert_eq!(c["monotonic_read_violations"], 0.0, "{delay}: {c:?}");
        // The same sessions routed to any replica do see violations: the check can fail.
        // With a constant delay every replica has applied the same writes at any moment, so
        // no read can go back in time; with a variable one, reads do.
        let any = run("AnyReplica", delay, seed);
        assert!(any["read_your_writes_violations"] > 0.0, "{delay}: {any:?}");
        let constant = delay.starts_with("Constant");
        assert_eq!(
            any["monotonic_read_violations"] == 0.0,
            constant,
            "{delay}: {any:?}"
        );
    }
}

#[test]
fn any_replica_reads_are_stale_as_often_as_poisson_writes_predict() {
    // Reads and writes of K = 100 keys, uniformly, one Poisson stream of 2,000 requests/s of
    // which 20% write: writes to a given key form a Poisson process of rate
    // λ = 2000 × 0.2 / 100 = 4/s (thinning), independent of the reads (no network delay, so
    // the times at the store are the clients'). With a constant delay d every replica has
    // applied exactly the writes committed up to t − d when a read arrives at t, so the read
    // is stale if and only if its key was written in (t − d, t]:
    //   P(stale) = 1 − e^{−λd} = 1 − e^{−0.08} = 0.07688 for d = 20 ms.
    // Given it is stale, the version served was superseded by the first write in that window;
    // with U the first arrival after t − d, P(staleness ≤ x | U < d) =
    // (e^{−λ(d−x)} − e^{−λd}) / (1 − e^{−λd}), whose median is d + ln((1 + e^{−λd}) / 2) / λ =
    // 10.20 ms, and nothing is stale for longer than d. Versions behind are the writes in the
    // window given at least one: mean λd / (1 − e^{−λd}) = 1.0405.
    let (lambda, d) = (4.0_f64, 0.020_f64);
    let src = r#"Scenario(
        name: "stale", seed: 5, duration: "60s",
        network: (latency: Constant("0s")),
        nodes: {
            "app": Client(target: "db", arrival: Poisson(rate: 2000.0), write_fraction: 0.2,
                          keys: Uniform(count: 100)),
            "db": ReadReplicas(replicas: 2, replication_delay: Constant("20ms"),
                               routing: AnyReplica, service_time: Constant("0s")),
        },
    )"#;
    let c = run_text(src).variants[0].components["db"].clone();
    let p = 1.0 - (-lambda * d).exp();
    let n = c["reads"];
    // Reads of one key within d of each other share their verdict; at 16 reads/s per key
    // that is 0.32 other reads per window, so the variance is at most 1.64 times binomial.
    let sigma = (p * (1.0 - p) / n * 1.64).sqrt();
    let got = c["stale_read_ratio"];
    assert!(
        (got - p).abs() < 4.0 * sigma,
        "stale {got:.5}, want {p:.5} ± {:.5}",
        4.0 * sigma
    );
    let median_ms = 1e3 * (d + ((1.0 + (-lambda * d).exp()) / 2.0).ln() / lambda);
    // Sampling error of a median of ~7,000 near-uniform values on [0, 20 ms]: about 0.12 ms.
    let p50 = c["staleness_p50_ms"];
    assert!(
        (p50 - median_ms).abs() < 0.6,
        "median staleness {p50} ms, want {median_ms:.2}"
    );
    assert!(c["staleness_max_ms"] <= 20.0 + 0.02, "{c:?}");
    let behind = lambda * d / p;
    let got = c["versions_behind_mean"];
    assert!(
        (got - behind).abs() < 0.01,
        "versions behind {got}, want {behind:.4}"
    );
    // One session wrote every version: each stale read misses one of its own writes. Both
    // replicas apply the same writes at the same times, so no read goes back in time.
    assert_eq!(c["read_your_writes_violations"], c["stale_reads"], "{c:?}");
    assert_eq!(c["monotonic_read_violations"], 0.0, "{c:?}");
}

#[test]
fn bounded_staleness_sends_reads_to_the_primary_while_replicas_lag() {
    // Replicas apply each write 40 ms after it. With a 10 ms bound a replica may serve only
    // when none of the writes of the last 40 ms is older than 10 ms, which at 270 writes/s
    // happens with probability e^{-270 × 0.03} = 0.0003; with a 100 ms bound, always.
    for (bound, share) in [("10ms", 1.0), ("100ms", 0.0)] {
        let c = run(
            &format!(r#"BoundedStaleness(max_lag: "{bound}")"#),
            r#"Constant("40ms")"#,
            3,
        );
        let got = c["primary_read_share"];
        assert!(
            (got - share).abs() < 0.02,
            "bound {bound}: {got} at the primary: {c:?}"
        );
        if bound == "100ms" {
            assert!(c["staleness_max_ms"] <= 40.0 + 0.05, "{c:?}");
        }
    }
}

#[test]
fn a_semi_synchronous_write_waits_for_its_kth_replica() {
    // Writes only, no network or service time: a write is answered when its k-th replica has
    // applied it. Replica delays are drawn from {10, 30, 50} ms; with constant gaps of 100 ms
    // between writes no write waits behind another, so the answer comes after the k-th
    // smallest of three draws, and with acks: 3 after the largest.
    for (acks, median) in [(1, 10.0), (3, 50.0)] {
        let src = format!(
            r#"Scenario(
                name: "semi-sync", seed: 2, duration: "20s",
                network: (latency: Constant("0s")),
                nodes: {{
                    "app": Client(target: "db", arrival: Constant(rate: 10.0), write_fraction: 1.0),
                    "db": ReadReplicas(replicas: 3, replication: SemiSync(acks: {acks}),
                                       replication_delay: Empirical(["10ms", "30ms", "50ms"]),
                                       service_time: Constant("0s")),
                }},
            )"#
        );
        let r = run_text(&src);
        let l = &r.variants[0].latency_ms;
        // acks 1: the smallest draw is 10 ms unless all three are above (P = 8/27), so the
        // median is 10 ms; acks 3: the largest is 50 ms unless none is 50 (P = 8/27), so the
        // median is 50 ms. Latencies are read from a histogram: within 0.5%.
        let near = |got: f64, want: f64| (got - want).abs() <= 0.005 * want;
        assert!(near(l.p50, median), "acks {acks}: {l:?}");
        assert!(
            l.max <= 50.0 * 1.005,
            "no write waits behind another: {l:?}"
        );
    }
}
