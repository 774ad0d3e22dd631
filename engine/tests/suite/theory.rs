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
