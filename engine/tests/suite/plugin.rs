//! The plug-in door: a component defined outside the engine is usable from RON by name.

#[path = "../../examples/custom_node.rs"]
mod custom_node;

use archsim::Registry;
use archsim::runner::{RunOptions, run};
use archsim::scenario::parse;
use custom_node::Flaky;

fn registry() -> Registry {
    Registry::builtin().register::<Flaky>()
}

#[test]
fn a_registered_component_runs_from_ron() {
    let src =
        std::fs::read_to_string(super::repo_root().join("engine/examples/flaky.ron")).unwrap();
    let reg = registry();
    let s = parse("flaky.ron", &src, &reg).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&s, &reg, &RunOptions::default()).unwrap();
    let v = &r.variants[0];
    assert!(
        (v.availability - 0.9).abs() < 0.01,
        "availability {}",
        v.availability
    );
    assert!(
        (v.latency_ms.p50 - 2.0).abs() < 0.01,
        "p50 {}",
        v.latency_ms.p50
    );
    assert_eq!(v.errors["rejected"], v.requests - v.ok);
}

#[test]
fn plugin_config_errors_are_located() {
    let src = r#"Scenario(name: "x", duration: "1s",
    nodes: {
        "users": Client(target: "dep", arrival: Poisson(rate: 10.0)),
        "dep": Flaky(delay: "2ms", failure_rate: 1.5),
    })"#;
    let err = parse("p.ron", src, &registry()).unwrap_err().to_string();
    assert!(err.contains("p.ron:4:"), "{err}");
    assert!(err.contains("expected a number from 0.0 to 1.0"), "{err}");
}

#[test]
fn an_unregistered_component_is_an_error_naming_the_known_ones() {
    let src = r#"Scenario(name: "x", duration: "1s",
    nodes: { "dep": Flaky(delay: "2ms") })"#;
    let err = parse("p.ron", src, &Registry::builtin())
        .unwrap_err()
        .to_string();
    assert!(err.contains("p.ron:2:21"), "{err}");
    assert!(err.contains("`Flaky` is not a known component"), "{err}");
    assert!(err.contains("Client, LoadBalancer, Server"), "{err}");
}

/// A plug-in whose replicas all report to one run-wide observer.
mod counted {
    use archsim::components::message::{Builtin, Ctx, Message};
    use archsim::contract::build::{BuildCtx, Observer};
    use archsim::contract::call::{Reply, Response};
    use archsim::contract::metrics::NodeStats;
    use archsim::registry::Component;
    use archsim::sim::NodeId;
    use archsim::sim::time::SimTime;
    use archsim::sim::{Node, TimerId};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    pub struct Tally {
        pub calls: u64,
        pub nodes: u64,
    }

    impl Observer for Tally {
        fn finish(&mut self, _now: SimTime) -> NodeStats {
            NodeStats::counters([("calls", self.calls as f64), ("nodes", self.nodes as f64)])
        }
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(rename = "Counted")]
    pub struct Config {}

    pub struct Counted(Arc<Mutex<Tally>>);

    impl Node<Builtin> for Counted {
        fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}
        fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
            if let Message::Request(r) = msg {
                self.0.lock().unwrap().calls += 1;
                ctx.send(
                    from,
                    Message::Response(Response {
                        call: r.call,
                        id: r.id,
                        result: Ok(Reply::default()),
                    }),
                );
            }
        }
        fn on_timer(&mut self, _ctx: &mut Ctx<'_>, _timer: TimerId, _tag: u64) {}
        fn on_crash(&mut self, _now: SimTime) {}
    }

    impl Component for Counted {
        const KIND: &'static str = "Counted";
        type Config = Config;
        fn build(_cfg: &Config, b: &BuildCtx<'_>) -> Self {
            let tally = b.observer("tally", Tally::default);
            tally.lock().unwrap().nodes += 1;
            Counted(tally)
        }
    }
}

#[test]
fn nodes_share_one_observer_that_reports_under_its_name() {
    let src = r#"Scenario(name: "x", duration: "2s",
    nodes: {
        "users": Client(target: "lb", arrival: Constant(rate: 100.0)),
        "lb": LoadBalancer(strategy: RoundRobin, backends: ["a", "b", "c"]),
        "a": Counted(), "b": Counted(), "c": Counted(),
    })"#;
    let reg = Registry::builtin().register::<counted::Counted>();
    let s = parse("o.ron", src, &reg).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&s, &reg, &RunOptions::default()).unwrap();
    let v = &r.variants[0];
    let tally = &v.components["tally"];
    assert_eq!(tally["nodes"], 3.0);
    // Every request the client issued (warm-up included) reached one of the three nodes.
    assert_eq!(tally["calls"], v.components["users"]["issued"]);
    assert!(tally["calls"] > 150.0);
}
