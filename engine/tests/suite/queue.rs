//! The `Queue` component: at-least-once delivery, redelivery after the visibility timeout,
//! backpressure.

use super::run_text;
use std::collections::BTreeMap;

fn queue_run(queue: &str, consumer: &str, faults: &str) -> (BTreeMap<String, f64>, Vec<f64>, u64) {
    let src = format!(
        r#"Scenario(
            name: "queue", seed: 9, duration: "2s", window: "100ms",
            network: (latency: Constant("1ms")),
            nodes: {{
                "producers": Client(target: "broker", arrival: Constant(rate: 100.0), timeout: "2s"),
                "broker": Queue({queue}),
                "workers": Server({consumer}),
            }},
            faults: [{faults}],
        )"#
    );
    let r = run_text(&src);
    let v = &r.variants[0];
    let lag: Vec<f64> = v.series["broker"]
        .iter()
        .find(|s| s.name == "consumer_lag.main")
        .expect("lag series")
        .values
        .iter()
        .map(|x| x.unwrap_or(0.0))
        .collect();
    (v.components["broker"].clone(), lag, v.ok)
}

#[test]
fn a_consumer_crash_delays_but_loses_no_message() {
    // The delivery of the message produced at 0.99 s is in service at 0.9925 s when the only
    // consumer crashes: no answer, so after the 100 ms visibility timeout it goes back to the
    // queue, and with everything produced during the crash it is delivered after the restart
    // at 1.2 s. Exactly one redelivery, no message lost.
    let (c, _, _) = queue_run(
        r#"groups: [(name: "main", consumers: "workers")], visibility_timeout: "100ms""#,
        r#"service_time: Constant("1ms")"#,
        r#"Crash(node: "workers", at: "0.9925s", until: "1.2s")"#,
    );
    assert_eq!(c["main.redelivered"], 1.0, "{c:?}");
    assert_eq!(c["main.acked"], c["accepted"], "at least once: {c:?}");
    assert_eq!(c["main.backlog_at_end"], 0.0);
    assert_eq!(c["main.duplicates"], 0.0);
    assert_eq!(c["rejected"], 0.0);
    // The slowest message waited from about 0.991 s to about 1.2 s.
    let max = c["main.delivery_latency_max_ms"];
    assert!((205.0..=215.0).contains(&max), "{max}");
}

#[test]
fn every_group_gets_every_message_and_a_late_ack_is_a_duplicate() {
    // Two groups share the consumers. A 148.5 ms pause of the consumers holds the deliveries
    // in flight past the 100 ms visibility timeout: they are redelivered, and the first
    // answers, sent when the pause ends, arrive late as duplicates.
    let (c, _, _) = queue_run(
        r#"groups: [(name: "main", consumers: "workers"), (name: "audit", consumers: "workers", prefetch: 4)], visibility_timeout: "100ms""#,
        r#"workers: 8, service_time: Constant("1ms")"#,
        r#"Pause(node: "workers", at: "1.0015s", until: "1.15s")"#,
    );
    for g in ["main", "audit"] {
        assert_eq!(c[&format!("{g}.acked")], c["accepted"], "{g}: {c:?}");
        assert_eq!(c[&format!("{g}.backlog_at_end")], 0.0, "{g}");
    }
    assert!(
        c["main.redelivered"] >= 1.0 && c["main.duplicates"] >= 1.0,
        "{c:?}"
    );
    assert_eq!(
        c["main.redelivered"] + c["audit.redelivered"],
        c["main.duplicates"] + c["audit.duplicates"],
        "each timed-out delivery was answered late once the pause ended: {c:?}"
    );
}

#[test]
fn a_bounded_queue_pushes_back_on_producers() {
    // One consumer at 10 messages/s against 100 produced/s: the queue fills to its capacity
    // and rejects the rest, and the lag never exceeds the capacity.
    let (c, lag, ok) = queue_run(
        r#"groups: [(name: "main", consumers: "workers")], capacity: 5, visibility_timeout: "1s""#,
        r#"service_time: Constant("100ms")"#,
        "",
    );
    assert!(c["rejected"] > 100.0, "{c:?}");
    assert_eq!(ok as f64, c["accepted"]);
    assert!(lag.iter().all(|&l| l <= 5.0), "{lag:?}");
    assert!(lag.iter().any(|&l| l > 4.0), "{lag:?}");
}
