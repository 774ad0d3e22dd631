//! The analytic model against closed forms computed by hand, one station at a time.

use super::analyze;
use crate::registry::Registry;
use crate::results::{Accuracy, Theory};
use crate::scenario::parse;

fn theory(nodes: &str) -> Theory {
    let src =
        format!(r#"Scenario(name: "t", duration: "100s", warmup: "10s", nodes: {{ {nodes} }})"#);
    let s = parse("t.ron", &src, &Registry::builtin()).unwrap_or_else(|e| panic!("{e}"));
    analyze(&s.variants[0].model)
}

fn single(rate: f64, server: &str) -> Theory {
    theory(&format!(
        r#""users": Client(target: "srv", arrival: Poisson(rate: {rate})), "srv": {server},"#
    ))
}

fn exact_latency(t: &Theory) -> f64 {
    assert_eq!(
        t.latency_mean_ms.accuracy,
        Accuracy::Exact,
        "{:?}",
        t.latency_mean_ms
    );
    t.latency_mean_ms.value.expect("a value")
}

fn close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs(),
        "got {got}, want {want}"
    );
}

#[test]
fn mm1_is_the_closed_form() {
    let t = single(700.0, r#"Server(service_time: Exponential(mean: "1ms"))"#);
    close(exact_latency(&t), 1.0 / (1000.0 - 700.0) * 1e3);
    let s = &t.stations[0];
    assert_eq!(s.model, "M/M/1");
    close(s.utilisation, 0.7);
    close(s.wait_ms.unwrap(), 0.7 / 0.3);
    assert_eq!(s.accuracy, Accuracy::Exact);
}

#[test]
fn mmc_is_erlang_c() {
    let t = single(
        3000.0,
        r#"Server(workers: 4, service_time: Exponential(mean: "1ms"))"#,
    );
    // Erlang C for c = 4, a = 3, by the textbook sum.
    let a: f64 = 3.0;
    let c = 4.0;
    let sum: f64 = (0..4)
        .map(|k| a.powi(k) / (1..=k).product::<i32>().max(1) as f64)
        .sum();
    let top = a.powi(4) / 24.0 * c / (c - a);
    let pw = top / (sum + top);
    let wq = pw / (4000.0 - 3000.0);
    close(exact_latency(&t), (wq + 0.001) * 1e3);
    assert_eq!(t.stations[0].model, "M/M/4");
}

#[test]
fn md1_is_pollaczek_khinchine() {
    let t = single(700.0, r#"Server(service_time: Constant("1ms"))"#);
    // Wq = ρ S / (2 (1 − ρ)).
    close(exact_latency(&t), (0.7 * 1.0 / (2.0 * 0.3)) + 1.0);
    assert_eq!(t.stations[0].model, "M/D/1");
}

#[test]
fn mmcc_is_erlang_b() {
    let t = single(
        4000.0,
        r#"Server(workers: 5, queue_limit: Some(0), service_time: Exponential(mean: "1ms"))"#,
    );
    let b = [1.0f64, 2.0, 3.0, 4.0, 5.0]
        .iter()
        .fold(1.0, |b, k| 4.0 * b / (k + 4.0 * b));
    let s = &t.stations[0];
    assert_eq!(s.model, "M/M/5/5");
    close(s.loss, b);
    close(t.availability.value.unwrap(), 1.0 - b);
    assert_eq!(t.availability.accuracy, Accuracy::Exact);
    close(s.utilisation, 4.0 * (1.0 - b) / 5.0);
    close(exact_latency(&t), 1.0);
}

#[test]
fn an_overloaded_unbounded_queue_is_named_with_its_load() {
    let t = theory(
        r#""users": Client(target: "lb", arrival: Poisson(rate: 3000.0)),
           "lb": LoadBalancer(strategy: Random, backends: ["app"]),
           "app": Server(replicas: 2, service_time: Exponential(mean: "1ms")),"#,
    );
    assert_eq!(t.notes.len(), 2, "{:?}", t.notes);
    assert!(
        t.notes[0].starts_with("app-0 cannot keep up: ρ = 1.500"),
        "{}",
        t.notes[0]
    );
    assert!(t.notes[0].contains("grows without limit"), "{}", t.notes[0]);
    assert_eq!(t.latency_mean_ms.accuracy, Accuracy::NotApplicable);
}

#[test]
fn network_and_a_load_balancer_add_their_hops() {
    let t = theory(
        r#""users": Client(target: "lb", arrival: Poisson(rate: 1200.0)),
           "lb": LoadBalancer(strategy: Random, backends: ["app"]),
           "app": Server(replicas: 2, service_time: Exponential(mean: "1ms")),"#,
    );
    close(exact_latency(&t), 1.0 / (1000.0 - 600.0) * 1e3);
    let sum: f64 = t
        .hops
        .iter()
        .map(|h| h.network_ms + h.wait_ms + h.service_ms)
        .sum();
    close(sum, t.latency_mean_ms.value.unwrap());
}
