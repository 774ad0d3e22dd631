//! Hard bounds: a run that exceeds a limit stops with an error naming it, never hangs.

use archsim::Registry;
use archsim::runner::{RunOptions, run};
use archsim::scenario::parse;

fn run_error(src: &str) -> String {
    let reg = Registry::builtin();
    let s = parse("limits.ron", src, &reg).unwrap_or_else(|e| panic!("{e}"));
    run(&s, &reg, &RunOptions::default())
        .expect_err("the run should stop at the limit")
        .to_string()
}

#[test]
fn max_events_stops_the_run_with_a_named_error() {
    let err = run_error(
        r#"Scenario(name: "x", seed: 4, duration: "10s", limits: (max_events: 1000),
        nodes: {
            "users": Client(target: "app", arrival: Poisson(rate: 1000.0)),
            "app": Server(service_time: Constant("100us")),
        })"#,
    );
    assert!(err.contains("limits.max_events (1000) exceeded"), "{err}");
    assert!(
        err.contains("seed 4"),
        "the seed is in the message so the run can be replayed: {err}"
    );
}

#[test]
fn an_unbounded_queue_stops_at_max_pending_events() {
    // Offered load is 10x capacity and the queue is unbounded: it grows until the bound.
    let err = run_error(
        r#"Scenario(name: "x", duration: "100s", limits: (max_pending_events: 5000),
        nodes: {
            "users": Client(target: "app", arrival: Poisson(rate: 10000.0), timeout: "1000s"),
            "app": Server(service_time: Constant("1ms")),
        })"#,
    );
    assert!(
        err.contains("limits.max_pending_events (5000) exceeded"),
        "{err}"
    );
    assert!(
        err.contains("set `queue_limit`") || err.contains("pending"),
        "{err}"
    );
}
