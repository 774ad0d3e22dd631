//! Fidelity against queueing theory: M/M/1, M/M/c (Erlang C) and M/M/c/c (Erlang B).
//!
//! Run lengths are chosen so the statistical error is well inside the 3% tolerance: the
//! asymptotic variance of the mean sojourn time of M/M/1 is ρ(2+5ρ−4ρ²+ρ³)/(μ²(1−ρ)⁴), which at
//! ρ = 0.7 and 600k requests gives a standard error of 0.75% of the mean (4σ < 3%).

use super::run_text;

/// Erlang C: probability that an arrival waits, for c servers at offered load a = λ/μ.
fn erlang_c(c: u32, a: f64) -> f64 {
    let rho = a / c as f64;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..c {
        term *= a / k as f64;
        sum += term;
    }
    let last = term * a / c as f64 / (1.0 - rho);
    last / (sum + last)
}

/// Erlang B: blocking probability of c servers, no waiting room, offered load a.
fn erlang_b(c: u32, a: f64) -> f64 {
    (1..=c).fold(1.0, |b, k| a * b / (k as f64 + a * b))
}

fn queue_scenario(rate: f64, workers: u32, queue: &str, duration: &str) -> String {
    format!(
        r#"Scenario(
            name: "theory", seed: 11, duration: "{duration}", warmup: "20s",
            nodes: {{
                "users": Client(target: "srv", arrival: Poisson(rate: {rate}), timeout: "1000s"),
                "srv": Server(workers: {workers}, queue_limit: {queue}, service_time: Exponential(mean: "1ms")),
            }},
        )"#
    )
}

fn assert_close(what: &str, got: f64, want: f64, tolerance: f64) {
    let err = (got - want).abs() / want;
    eprintln!(
        "{what}: simulated {got:.5}, theory {want:.5}, error {:.3}%",
        err * 100.0
    );
    assert!(
        err < tolerance,
        "{what}: simulated {got:.5}, theory {want:.5}, error {:.2}%",
        err * 100.0
    );
}

#[test]
fn mm1_mean_time_in_system() {
    let r = run_text(&queue_scenario(700.0, 1, "None", "900s"));
    let v = &r.variants[0];
    // W = 1 / (μ − λ) with μ = 1000/s.
    assert_close(
        "M/M/1 W (ms)",
        v.latency_ms.mean,
        1000.0 / (1000.0 - 700.0),
        0.03,
    );
    assert_close("M/M/1 utilisation", v.servers[0].utilisation, 0.7, 0.01);
    // Lq = ρ² / (1 − ρ).
    assert_close("M/M/1 Lq", v.servers[0].mean_queue_len, 0.49 / 0.3, 0.05);
}

#[test]
fn mmc_mean_time_in_system_matches_erlang_c() {
    let (c, lambda, mu) = (4u32, 3000.0, 1000.0);
    let r = run_text(&queue_scenario(lambda, c, "None", "300s"));
    let a = lambda / mu;
    let wq = erlang_c(c, a) / (c as f64 * mu - lambda);
    let w_ms = (wq + 1.0 / mu) * 1000.0;
    assert_close("M/M/4 W (ms)", r.variants[0].latency_ms.mean, w_ms, 0.03);
}

#[test]
fn mmcc_loss_matches_erlang_b() {
    let (c, a) = (5u32, 4.0);
    let r = run_text(&queue_scenario(a * 1000.0, c, "0", "300s"));
    let v = &r.variants[0];
    let blocked = v.errors["rejected"] as f64 / v.requests as f64;
    assert_close("M/M/5/5 blocking", blocked, erlang_b(c, a), 0.03);
    // Carried load per server is a(1 − B)/c.
    assert_close(
        "M/M/5/5 utilisation",
        v.servers[0].utilisation,
        a * (1.0 - erlang_b(c, a)) / c as f64,
        0.02,
    );
}

#[test]
fn random_balancing_gives_independent_mm1_queues() {
    // Random splitting of a Poisson stream gives Poisson streams: 4 × M/M/1 at λ/4 each.
    let src = r#"Scenario(
        name: "random lb", seed: 3, duration: "300s", warmup: "20s",
        nodes: {
            "users": Client(target: "lb", arrival: Poisson(rate: 2400.0), timeout: "1000s"),
            "lb": LoadBalancer(strategy: Random, backends: ["srv"], timeout: "1000s"),
            "srv": Server(replicas: 4, service_time: Exponential(mean: "1ms")),
        },
    )"#;
    let r = run_text(src);
    assert_close(
        "4 × M/M/1 W (ms)",
        r.variants[0].latency_ms.mean,
        1000.0 / (1000.0 - 600.0),
        0.03,
    );
}

#[test]
fn erlang_formulas_are_right() {
    // Textbook values, so the theory side of these tests is itself checked.
    assert!((erlang_b(5, 4.0) - 0.1991).abs() < 1e-4);
    assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
}

/// `n` Bernoulli(p) trials gave `k` successes: is k/n within 4 standard errors of p?
fn assert_proportion(what: &str, k: f64, n: f64, p: f64) {
    let se = (p * (1.0 - p) / n).sqrt();
    let got = k / n;
    eprintln!(
        "{what}: simulated {got:.5}, theory {p:.5}, {:.2} se",
        (got - p) / se
    );
    assert!(
        (got - p).abs() < 4.0 * se,
        "{what}: simulated {got:.5}, theory {p:.5} (se {se:.5})"
    );
}

fn counter(v: &archsim::results::VariantResult, node: &str, name: &str) -> f64 {
    v.components[node][name]
}

/// Retries against an idle server with Exp(1 ms) service and a 2 ms per-attempt timeout, made
/// by the client, by a load balancer or by a service's outgoing call: every attempt is an
/// execution of its own, so each fails with probability p = e^-2 independently. With the cost
/// in the request itself (`per: Request`) a request that timed out once always does again.
fn retry_scenario() -> &'static str {
    r#"Scenario(
        name: "retries", seed: 5, duration: "100s",
        nodes: {
            "users": Client(target: "app", arrival: Poisson(rate: 2000.0), timeout: "2ms",
                            retry: Some((max_attempts: 3))),
            "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], timeout: "2ms",
                               retry: Some((max_attempts: 3))),
            "caller": Server(workers: 1000, service_time: Constant("0"),
                             calls: [(to: ["app"], timeout: "2ms", retry: Some((max_attempts: 3)))]),
            "app": Server(replicas: 2, workers: 1000, service_time: Exponential(mean: "1ms")),
        },
        variants: {
            "client": {},
            "client, per request": { "app.per": Request },
            "load balancer": { "users.target": "lb", "users.timeout": "1s", "users.retry": None },
            "service call": { "users.target": "caller", "users.timeout": "1s", "users.retry": None },
        },
    )"#
}

#[test]
fn timeout_driven_retries_draw_a_fresh_service_time_each_attempt() {
    let r = run_text(retry_scenario());
    let p = (-2.0f64).exp();
    for (variant, node, retries, per_request) in [
        ("client", "users", "retries", false),
        ("client, per request", "users", "retries", true),
        ("load balancer", "lb", "retries", false),
        ("service call", "caller-0", "downstream_retries", false),
    ] {
        let v = r
            .variants
            .iter()
            .find(|v| v.name == variant)
            .expect("variant");
        let n = v.requests as f64;
        let attempts = 1.0 + counter(v, node, retries) / n;
        // E[attempts] = 1 + p + p² (fresh draws) or 1 + 2p (the same draw every time).
        let (want, var) = if per_request {
            (1.0 + 2.0 * p, 4.0 * p * (1.0 - p))
        } else {
            let mean = 1.0 + p + p * p;
            let second = (1.0 - p) + 4.0 * p * (1.0 - p) + 9.0 * p * p;
            (mean, second - mean * mean)
        };
        let se = (var / n).sqrt();
        eprintln!("{variant}: E[attempts] {attempts:.5}, theory {want:.5}, se {se:.5}");
        assert!(
            (attempts - want).abs() < 4.0 * se,
            "{variant}: {attempts} vs {want}"
        );
        // All three attempts fail: p³ = e^-6, or p for the same draw.
        let failed = (v.requests - v.ok) as f64;
        let p_all = if per_request { p } else { p * p * p };
        assert_proportion(&format!("{variant}: P(all fail)"), failed, n, p_all);
    }
}

#[test]
fn a_hedge_sent_at_once_to_an_idle_replica_takes_the_faster_of_two_draws() {
    let src = r#"Scenario(
        name: "hedge at once", seed: 9, duration: "100s",
        nodes: {
            "users": Client(target: "app", arrival: Poisson(rate: 1000.0), timeout: "1s",
                            hedge: Some((after: "0s"))),
            "app": Server(replicas: 2, workers: 1000, service_time: Exponential(mean: "1ms")),
        },
        variants: {
            "per execution": {},
            "per request": { "app.per": Request },
        },
    )"#;
    let r = run_text(src);
    // The minimum of two independent Exp(1 ms) draws is Exp(0.5 ms); 100k of them have a
    // standard error of 0.5/sqrt(100k) = 0.0016 ms (0.3%).
    assert_close(
        "hedged mean (ms)",
        r.variants[0].latency_ms.mean,
        0.5,
        0.015,
    );
    // With the cost in the request, both copies take the same time: no gain.
    assert_close("same draw (ms)", r.variants[1].latency_ms.mean, 1.0, 0.015);
    let v = &r.variants[0];
    assert_eq!(counter(v, "users", "hedges"), counter(v, "users", "issued"));
}

/// Two single-worker stations in tandem: `front` (Exp, rate μ1) releases its worker while its
/// call to `back` (Exp, rate μ2) is out. By Burke's theorem each is an M/M/1 queue fed by a
/// Poisson stream, so W = 1/(μ1 − λ) + 1/(μ2 − λ). Holding the worker instead makes `front`
/// serve for the whole round, and W grows.
#[test]
fn a_tandem_of_non_blocking_services_is_two_mm1_queues() {
    let src = r#"Scenario(
        name: "tandem", seed: 13, duration: "500s", warmup: "20s",
        nodes: {
            "users": Client(target: "front", arrival: Poisson(rate: 500.0), timeout: "1000s"),
            "front": Server(service_time: Exponential(mean: "1ms"), while_calling: Release,
                            calls: [(to: ["back"], timeout: "1000s")]),
            "back": Server(service_time: Exponential(mean: "0.8ms")),
        },
        variants: {
            "release": {},
            "hold": { "front.while_calling": Hold },
        },
    )"#;
    let r = run_text(src);
    let w_ms = 1000.0 / (1000.0 - 500.0) + 1000.0 / (1250.0 - 500.0);
    // Asymptotic standard errors of the two stations' means, 0.0108 ms and 0.0052 ms: 4σ of
    // their sum is 1.4% of W.
    assert_close("tandem W (ms)", r.variants[0].latency_ms.mean, w_ms, 0.02);
    let front = r.variants[0].servers.iter().find(|s| s.name == "front-0");
    assert_close(
        "front utilisation",
        front.expect("front").utilisation,
        0.5,
        0.02,
    );
    assert!(
        r.variants[1].latency_ms.mean > 1.5 * w_ms,
        "holding the worker through the call: {} ms",
        r.variants[1].latency_ms.mean
    );
}

/// A connection pool of one in front of an idle dependency is a single server: calls wait for
/// the connection in FIFO order, an M/M/1 queue with the dependency's service rate.
#[test]
fn a_pool_of_one_connection_queues_calls_as_an_mm1() {
    let src = r#"Scenario(
        name: "pool", seed: 17, duration: "400s", warmup: "20s",
        nodes: {
            "users": Client(target: "api", arrival: Poisson(rate: 600.0), timeout: "1000s"),
            "api": Server(workers: 1000, service_time: Constant("0"), while_calling: Release,
                          calls: [(to: ["db"], timeout: "1000s")], max_in_flight: {"db": 1}),
            "db": Server(workers: 1000, service_time: Exponential(mean: "1ms")),
        },
    )"#;
    let r = run_text(src);
    let v = &r.variants[0];
    assert_close(
        "pooled W (ms)",
        v.latency_ms.mean,
        1000.0 / (1000.0 - 600.0),
        0.03,
    );
    // Lq = ρ²/(1 − ρ): the calls waiting for the connection, averaged over the windows after
    // the warm-up.
    let waiting = &v.series["api-0"]
        .iter()
        .find(|s| s.name == "calls_waiting_for_connection")
        .expect("the pool's series")
        .values;
    let after: Vec<f64> = waiting
        .iter()
        .skip(20)
        .take(380)
        .flatten()
        .copied()
        .collect();
    let lq = after.iter().sum::<f64>() / after.len() as f64;
    assert_close("pool Lq", lq, 0.36 / 0.4, 0.06);
}
