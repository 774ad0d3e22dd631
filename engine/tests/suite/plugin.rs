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
