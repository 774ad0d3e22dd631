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

/// A node that answers every message with another to itself, with no delay: time never moves.
struct Spinner;

impl archsim::sim::Node<archsim::components::message::Builtin> for Spinner {
    fn on_start(&mut self, ctx: &mut archsim::components::message::Ctx<'_>) {
        ctx.send(
            ctx.me(),
            archsim::components::message::Message::User(archsim::components::message::UserMsg(
                Box::new(()),
            )),
        );
    }
    fn on_message(
        &mut self,
        ctx: &mut archsim::components::message::Ctx<'_>,
        _from: archsim::sim::NodeId,
        msg: archsim::components::message::Message,
    ) {
        ctx.send(ctx.me(), msg);
    }
    fn on_timer(
        &mut self,
        _: &mut archsim::components::message::Ctx<'_>,
        _: archsim::sim::TimerId,
        _: u64,
    ) {
    }
    fn on_crash(&mut self, _: archsim::sim::time::SimTime) {}
}

#[test]
fn an_unbounded_queue_stops_at_the_memory_budget_naming_its_server() {
    // 10x overload into an unbounded queue: the queue holds most of what grows, and the
    // error names it, its server and the fix.
    let err = run_error(
        r#"Scenario(name: "x", duration: "100s", limits: (max_memory: "4MiB"),
        nodes: {
            "users": Client(target: "app", arrival: Poisson(rate: 10000.0), timeout: "1000s"),
            "app": Server(service_time: Constant("1ms")),
        })"#,
    );
    assert!(
        err.contains("limits.max_memory (4194304) exceeded"),
        "{err}"
    );
    assert!(err.contains("queue_limit"), "{err}");
    assert!(
        err.contains("node \"app\": its queued requests")
            || err.contains("node \"users\": its calls in flight")
            || err.contains("the event queue"),
        "{err}"
    );
}

#[test]
fn calls_in_flight_stop_at_the_memory_budget_naming_their_client() {
    // A server that never answers within the run: only the client's table of calls (and
    // their timers in the event queue) grow.
    let err = run_error(
        r#"Scenario(name: "x", duration: "100s", limits: (max_memory: "2MiB"),
        nodes: {
            "users": Client(target: "app", arrival: Poisson(rate: 10000.0), timeout: "1000s"),
            "app": Server(workers: 10000, service_time: Constant("500s")),
        })"#,
    );
    assert!(
        err.contains("limits.max_memory (2097152) exceeded"),
        "{err}"
    );
    assert!(
        err.contains("node \"users\": its calls in flight") || err.contains("the event queue"),
        "{err}"
    );
    assert!(err.contains("timeout"), "{err}");
}

#[test]
fn a_budget_without_a_unit_is_refused_with_the_units() {
    let reg = Registry::builtin();
    let src = r#"Scenario(name: "x", duration: "1s", limits: (max_memory: "512"),
        nodes: {
            "users": Client(target: "app", arrival: Poisson(rate: 10.0)),
            "app": Server(service_time: Constant("1ms")),
        })"#;
    let err = parse("limits.ron", src, &reg).unwrap_err().to_string();
    assert!(err.contains("has no unit"), "{err}");
    assert!(err.contains("MiB"), "{err}");
}

#[test]
fn a_zero_delay_loop_stops_at_max_events_per_instant() {
    use archsim::sim::dist::Dist;
    use archsim::sim::network::{LinkModel, Network};
    use archsim::sim::rng::SimRng;
    use archsim::sim::time::{SimDuration, SimTime};
    use archsim::sim::{Limits, Slot, World};
    let link = LinkModel {
        latency: Dist::Constant(SimDuration::ZERO),
        loss: 0.0,
    };
    let network = Network::new(link, Default::default(), SimRng::derive(1, "!network"));
    let limits = Limits {
        max_events_per_instant: 10_000,
        ..Limits::default()
    };
    let nodes = vec![Slot {
        name: "spin".into(),
        node: Spinner,
        rng: SimRng::derive(1, "spin"),
    }];
    let world = World::new(
        nodes,
        network,
        Vec::new(),
        limits,
        archsim::contract::metrics::RequestMetrics::new(SimTime::ZERO, SimDuration::from_secs(1)),
    );
    let err = world
        .run(SimTime(1_000_000_000))
        .err()
        .expect("the loop is stopped")
        .to_string();
    assert!(
        err.contains("limits.max_events_per_instant (10000) exceeded"),
        "{err}"
    );
    assert!(err.contains("zero-delay"), "{err}");
}

#[test]
fn an_arrival_rate_finer_than_the_clock_is_rejected() {
    let src = r#"Scenario(name: "x", duration: "1s",
        nodes: {
            "users": Client(target: "app", arrival: Poisson(rate: 1e12)),
            "app": Server(service_time: Constant("1ms")),
        })"#;
    let err = parse("limits.ron", src, &Registry::builtin())
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.ron:3:67"), "{err}");
    assert!(
        err.contains("expected a rate of at most 1e9 requests/s"),
        "{err}"
    );
}
