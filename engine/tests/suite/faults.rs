//! Faults as timed changes of the world: one-way partitions and link changes (latency, loss).

use super::run_text;

fn scenario(faults: &str) -> String {
    format!(
        r#"Scenario(
            name: "faults", seed: 2, duration: "6s", window: "1s",
            network: (latency: Constant("1ms")),
            nodes: {{
                "users": Client(target: "app", arrival: Constant(rate: 100.0), timeout: "100ms"),
                "app": Server(workers: 4, service_time: Constant("1ms")),
            }},
            faults: [{faults}],
        )"#
    )
}

#[test]
fn a_one_way_partition_loses_only_one_direction() {
    // The server cannot answer, but requests still reach it: clients time out.
    let r = run_text(&scenario(
        r#"Partition(groups: [["app"], ["users"]], one_way: true, at: "2s", until: "4s")"#,
    ));
    let v = &r.variants[0];
    assert_eq!(v.errors["unreachable"], 0);
    assert!((195..=201).contains(&v.errors["timeout"]), "{:?}", v.errors);
    assert!(
        v.servers[0].served >= 595,
        "the server kept serving: {}",
        v.servers[0].served
    );
    // The other direction: the client sees the server as unreachable at once.
    let r = run_text(&scenario(
        r#"Partition(groups: [["users"], ["app"]], one_way: true, at: "2s", until: "4s")"#,
    ));
    let v = &r.variants[0];
    assert_eq!(v.errors["timeout"], 0);
    assert!(
        (199..=201).contains(&v.errors["unreachable"]),
        "{:?}",
        v.errors
    );
    assert_eq!(r.faults[0].label, "partition users -> app");
}

#[test]
fn a_latency_change_applies_while_it_lasts() {
    let r = run_text(&scenario(
        r#"LinkChange(latency: Constant("20ms"), at: "2s", until: "4s")"#,
    ));
    let p50: Vec<f64> = r.variants[0]
        .windows
        .iter()
        .map(|w| w.p50_ms.unwrap_or(f64::NAN))
        .collect();
    // 1 ms each way plus 1 ms of service, then 20 ms each way during the change.
    // Window histograms keep two significant digits, so allow 1%.
    let close = |a: f64, b: f64| (a - b).abs() / b < 0.01;
    assert!(
        close(p50[1], 3.0) && close(p50[3], 41.0) && close(p50[5], 3.0),
        "{p50:?}"
    );
}

#[test]
fn a_loss_change_on_some_links_only_hits_them() {
    let src = scenario(r#"LinkChange(to: ["app"], loss: 1.0, at: "2s", until: "4s")"#);
    let r = run_text(&src);
    let v = &r.variants[0];
    let availability: Vec<f64> = v
        .windows
        .iter()
        .map(|w| w.availability.unwrap_or(f64::NAN))
        .collect();
    assert_eq!(availability[1], 1.0);
    assert_eq!(availability[3], 0.0, "{availability:?}");
    assert_eq!(availability[5], 1.0);
    assert_eq!(r.faults[0].label, "loss 1 * -> app");
}

#[test]
fn a_link_change_that_changes_nothing_is_an_error() {
    let src = scenario(r#"LinkChange(to: ["app"], at: "2s")"#);
    let err = archsim::scenario::parse("f.ron", &src, &archsim::Registry::builtin())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("expected `latency: ...` and/or `loss: ...`"),
        "{err}"
    );
}
