//! The partitioned log (`Topic`, `LogConsumer`) end to end: per-key order under consumer
//! crashes, exactly which events are lost or duplicated by each commit point, rebalancing
//! pauses, and what replication costs producers.

use super::run_text;
use archsim::results::VariantResult;
use std::collections::BTreeMap;

fn counters<'a>(v: &'a VariantResult, node: &str) -> &'a BTreeMap<String, f64> {
    v.components
        .get(node)
        .unwrap_or_else(|| panic!("no node {node} in {:?}", v.components.keys()))
}

/// Sum of counter `name` over the nodes whose name starts with `prefix`.
fn sum(v: &VariantResult, prefix: &str, name: &str) -> f64 {
    v.components
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(_, c)| c[name])
        .sum()
}

/// One producer, one broker, one partition and one consumer that takes 10 ms an event, with
/// no network delay: every step of the timeline below is exact.
fn one_consumer(commit: &str, idempotent: bool) -> BTreeMap<String, f64> {
    let src = format!(
        r#"Scenario(
            name: "delivery", seed: 1, duration: "1s",
            network: (latency: Constant("0s")),
            nodes: {{
                "producer": Client(target: "events", arrival: Constant(rate: 1000.0),
                                   max_requests: Some(100), keys: Uniform(count: 10)),
                "events": Topic(brokers: 1, partitions: 1),
                "consumer": LogConsumer(topic: "events", group: "g", service_time: Constant("10ms"),
                                        max_poll_records: 20, commit: {commit}, idempotent: {idempotent},
                                        initial_rebalance_delay: "200ms", heartbeat_interval: "100ms",
                                        session_timeout: "1s"),
            }},
            faults: [Crash(node: "consumer", at: "455ms", until: "500ms")],
        )"#
    );
    let r = run_text(&src);
    let v = &r.variants[0];
    let mut c = counters(v, "stream").clone();
    c.extend(counters(v, "consumer-0").clone());
    c
}

#[test]
fn committing_before_loses_and_after_duplicates_exactly_the_batch_in_hand() {
    // Events are produced at 1, 2, .., 100 ms. The group forms at 200 ms: the consumer takes
    // events 0-19 and processes them until 400 ms, then takes 20-39. At the crash (455 ms)
    // events 20-24 are processed and 25 is in service.
    let c = one_consumer("BeforeProcessing", false);
    // Batch 20-39 was committed when it was taken: the 15 events 25-39 are lost.
    assert_eq!(c["committed_not_processed_at_crash"], 15.0, "{c:?}");
    assert_eq!(
        (c["g.lost"], c["g.duplicate_deliveries"]),
        (15.0, 0.0),
        "{c:?}"
    );
    assert_eq!(c["g.processed"], 85.0);
    let c = one_consumer("AfterProcessing", false);
    // Batch 0-19 was committed at 400 ms; 20-24 are processed again after the restart.
    assert_eq!(c["processed_not_committed_at_crash"], 5.0, "{c:?}");
    assert_eq!(
        (c["g.lost"], c["g.duplicate_deliveries"]),
        (0.0, 5.0),
        "{c:?}"
    );
    assert_eq!((c["g.processed"], c["g.effects_applied"]), (100.0, 105.0));
    // An idempotent consumer receives them twice too, but applies them once.
    let c = one_consumer("AfterProcessing", true);
    assert_eq!(c["g.duplicate_deliveries"], 5.0, "{c:?}");
    assert_eq!((c["g.processed"], c["g.effects_applied"]), (100.0, 100.0));
    assert_eq!((c["g.out_of_order"], c["g.backlog_at_end"]), (0.0, 0.0));
}

/// Four partitions, four consumers crashing at random (seeded), Zipf keys, jittery network.
fn crashing_group(seed: u64, partitioner: &str, commit: &str) -> VariantResult {
    let src = format!(
        r#"Scenario(
            name: "swarm", seed: {seed}, duration: "8s",
            network: (latency: LogNormal(median: "300us", p99: "2ms")),
            nodes: {{
                "producer": Client(target: "events", arrival: Poisson(rate: 800.0),
                                   keys: Zipf(count: 200, exponent: 1.0)),
                "events": Topic(brokers: 2, partitions: 4, replication_factor: 2,
                                partitioner: {partitioner}, fetch_max_wait: "100ms"),
                "workers": LogConsumer(topic: "events", group: "g", replicas: 4,
                                       service_time: Exponential(mean: "2ms"), commit: {commit},
                                       max_poll_records: 50, initial_rebalance_delay: "100ms",
                                       heartbeat_interval: "100ms", session_timeout: "600ms"),
            }},
            faults: [Random(kind: Crash, node: "workers", mean_interval: "1s", duration: "700ms",
                            start: "500ms", stop: "7s")],
        )"#
    );
    run_text(&src).variants.remove(0)
}

#[test]
fn keyed_partitioning_keeps_per_key_order_under_any_crash_schedule() {
    for seed in 1..=8 {
        for commit in ["BeforeProcessing", "AfterProcessing"] {
            let v = crashing_group(seed, "KeyHash", commit);
            let c = counters(&v, "stream");
            assert_eq!(c["g.out_of_order"], 0.0, "seed {seed} {commit}: {c:?}");
            assert!(
                c["g.rebalances"] >= 2.0,
                "seed {seed}: the crashes moved partitions: {c:?}"
            );
            assert_eq!(
                c["g.processed"] + c["g.lost"] + c["g.backlog_at_end"],
                c["appended"],
                "seed {seed} {commit}: every event processed, lost or waiting: {c:?}"
            );
        }
        let v = crashing_group(seed, "RoundRobin", "AfterProcessing");
        let c = counters(&v, "stream");
        assert!(
            c["g.out_of_order"] > 0.0,
            "seed {seed}: round robin spreads a key over partitions: {c:?}"
        );
    }
}

#[test]
fn losses_and_duplicates_are_the_events_in_flight_at_each_crash() {
    // Whatever the crash schedule, what the checker counts as lost (committing before) or
    // processed twice (committing after) is what the crashed consumers held at their crashes.
    for seed in 11..=16 {
        let v = crashing_group(seed, "KeyHash", "BeforeProcessing");
        let c = counters(&v, "stream");
        let in_flight = sum(&v, "workers-", "committed_not_processed_at_crash");
        assert_eq!(c["g.lost"], in_flight, "seed {seed}: {c:?}");
        assert_eq!(c["g.duplicate_deliveries"], 0.0, "seed {seed}: {c:?}");
        let v = crashing_group(seed, "KeyHash", "AfterProcessing");
        let c = counters(&v, "stream");
        let in_flight = sum(&v, "workers-", "processed_not_committed_at_crash");
        assert_eq!(c["g.duplicate_deliveries"], in_flight, "seed {seed}: {c:?}");
        assert_eq!(c["g.lost"], 0.0, "seed {seed}: {c:?}");
        assert!(
            in_flight > 0.0 || seed != 11,
            "seed {seed}: no crash mid-batch: {c:?}"
        );
    }
}

/// Two partitions per consumer; `workers-2` is cut off until 2 s and joins then (a late
/// member): every member must give up partitions for it.
fn late_member(rebalance: &str) -> BTreeMap<String, f64> {
    let src = format!(
        r#"Scenario(
            name: "late member", seed: 3, duration: "4s",
            network: (latency: Constant("1ms")),
            nodes: {{
                "producer": Client(target: "events", arrival: Poisson(rate: 2000.0),
                                   keys: Uniform(count: 1000)),
                "events": Topic(brokers: 3, partitions: 6, fetch_max_wait: "100ms"),
                "workers": LogConsumer(topic: "events", group: "g", replicas: 3,
                                       service_time: Constant("1ms"), max_poll_records: 100,
                                       rebalance: {rebalance}, initial_rebalance_delay: "100ms",
                                       heartbeat_interval: "100ms", session_timeout: "1s"),
            }},
            faults: [Isolate(node: "workers-2", at: "0s", until: "2s")],
        )"#
    );
    counters(&run_text(&src).variants[0], "stream").clone()
}

#[test]
fn cooperative_rebalancing_pauses_only_the_partitions_that_move() {
    // Two members consume 6 partitions at 2000 events/s, 1 ms each: busy. When the third
    // joins, eager rebalancing stops all six partitions until both members have finished the
    // batch in hand; cooperative moves two (one from each) and the other four keep going.
    let eager = late_member("Eager");
    let coop = late_member("Cooperative");
    for c in [&eager, &coop] {
        assert_eq!(c["g.rebalances"], 1.0, "{c:?}");
        assert_eq!(
            (c["g.lost"], c["g.duplicate_deliveries"]),
            (0.0, 0.0),
            "{c:?}"
        );
        assert_eq!(c["g.out_of_order"], 0.0);
    }
    let (e, k) = (
        eager["g.paused_partition_seconds"],
        coop["g.paused_partition_seconds"],
    );
    // Six partitions against two for about as long: a third (the batches in hand differ).
    assert!(k < 0.6 * e && k > 0.0, "eager {e} s, cooperative {k} s");
}

/// A producer at a constant rate into one partition with two replicas, 1 ms links.
fn replicated(acks: &str, faults: &str) -> VariantResult {
    let src = format!(
        r#"Scenario(
            name: "acks", seed: 5, duration: "6s",
            network: (latency: Constant("1ms")),
            nodes: {{
                "producer": Client(target: "events-0", arrival: Constant(rate: 200.0), timeout: "2s"),
                "events": Topic(brokers: 2, partitions: 1, replication_factor: 2, acks: {acks},
                                replica_lag_max: "500ms"),
            }},
            faults: [{faults}],
        )"#
    );
    run_text(&src).variants.remove(0)
}

#[test]
fn acks_all_waits_one_follower_round_trip_and_the_in_sync_timeout() {
    // acks Leader: producer → leader → producer, 2 ms. acks All: the follower's fetch waits at
    // the leader; the append answers it (1 ms), the follower fetches again (1 ms), which moves
    // the high watermark: 4 ms.
    let leader = replicated("Leader", "");
    let all = replicated("All", "");
    // (Latencies are read back from a histogram with three significant digits.)
    let close = |got: f64, want: f64| (got - want).abs() < want * 1e-3;
    for q in [leader.latency_ms.p50, leader.latency_ms.p99] {
        assert!(close(q, 2.0), "acks Leader: {:?}", leader.latency_ms);
    }
    for q in [all.latency_ms.p50, all.latency_ms.p99] {
        assert!(close(q, 4.0), "acks All: {:?}", all.latency_ms);
    }
    // The follower crashes at 2 s: writes wait until it drops out of the in-sync set 500 ms
    // after it last held the whole log, then go on with the leader alone.
    let v = replicated("All", r#"Crash(node: "events-1", at: "2s", until: "3s")"#);
    assert_eq!(v.ok, v.requests, "none failed");
    let p999 = v.latency_ms.p999;
    assert!((450.0..=505.0).contains(&p999), "p99.9 {p999} ms");
    let v = replicated(
        "Leader",
        r#"Crash(node: "events-1", at: "2s", until: "3s")"#,
    );
    assert!(close(v.latency_ms.max, 2.0), "{:?}", v.latency_ms);
}

#[test]
fn delivery_latency_runs_from_append_to_processed() {
    // No network delay, one event every 10 ms, 2 ms to process each: every event waits for
    // nothing but its own processing.
    let src = r#"Scenario(
        name: "latency", seed: 1, duration: "2s",
        network: (latency: Constant("0s")),
        nodes: {
            "producer": Client(target: "events", arrival: Constant(rate: 100.0)),
            "events": Topic(brokers: 1, partitions: 1),
            "consumer": LogConsumer(topic: "events", group: "g", service_time: Constant("2ms"),
                                    initial_rebalance_delay: "0s", heartbeat_interval: "100ms",
                                    session_timeout: "1s"),
        },
    )"#;
    let r = run_text(src);
    let c = counters(&r.variants[0], "stream");
    assert_eq!(c["g.processed"], 199.0, "{c:?}");
    for q in ["p50", "p99", "max"] {
        assert_eq!(c[&format!("g.delivery_latency_{q}_ms")], 2.0, "{c:?}");
    }
}

#[test]
fn the_event_stream_scenario_keeps_order_only_when_keyed_and_shows_each_guarantee() {
    for seed in [6, 7, 8] {
        let r = super::run_file_with_seed("event-stream", seed);
        let [least, most, idem, rr] = &r.variants[..] else {
            panic!("four variants expected");
        };
        let c = |v: &VariantResult, k: &str| counters(v, "stream")[&format!("orders.{k}")];
        for v in [least, most, idem] {
            assert_eq!(c(v, "out_of_order"), 0.0, "seed {seed} {}", v.name);
        }
        assert!(c(rr, "out_of_order") > 10_000.0, "seed {seed}");
        // The crash of the hot consumer: duplicates at least once, losses at most once.
        assert!(
            c(least, "duplicate_deliveries") > 0.0 && c(least, "lost") == 0.0,
            "seed {seed}"
        );
        assert!(
            c(most, "lost") > 0.0 && c(most, "duplicate_deliveries") == 0.0,
            "seed {seed}"
        );
        assert_eq!(
            c(idem, "effects_applied"),
            c(idem, "processed"),
            "seed {seed}"
        );
        assert!(c(idem, "duplicate_deliveries") > 0.0, "seed {seed}");
        // The hot partition: events wait far longer with keyed partitioning, and it falls
        // behind for good.
        let (keyed, spread) = (
            c(least, "delivery_latency_p99_ms"),
            c(rr, "delivery_latency_p99_ms"),
        );
        assert!(
            keyed > 2.0 * spread,
            "seed {seed}: keyed p99 {keyed} ms, round robin {spread} ms"
        );
        assert!(
            c(least, "backlog_at_end") > 1000.0 && c(rr, "backlog_at_end") == 0.0,
            "seed {seed}"
        );
    }
}
