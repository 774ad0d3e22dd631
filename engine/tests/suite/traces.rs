//! Per-request traces (`run --trace N`): exact spans through a chain with constant latencies,
//! critical paths that add up to each latency, determinism across thread counts, and a
//! Chrome trace-event file that parses back with the events the format requires.

use super::harness::{archsim, file, scratch};
use archsim::Registry;
use archsim::results::{Results, TracedRequest};
use archsim::runner::{RunOptions, run};
use archsim::scenario::parse;

fn run_traced(src: &str, trace: usize) -> Results {
    let registry = Registry::builtin();
    let scenario = parse("test.ron", src, &registry).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        trace,
        ..RunOptions::default()
    };
    run(&scenario, &registry, &opts).unwrap_or_else(|e| panic!("{e}"))
}

/// users -> lb -> app -> db, 1 ms per network hop, app 2 ms and db 3 ms of constant service,
/// one request every 100 ms: nothing queues, so every request takes 6 hops + 5 ms = 11 ms.
const CHAIN: &str = r#"Scenario(
    name: "chain", seed: 3, duration: "2s",
    network: (latency: Constant("1ms")),
    nodes: {
        "users": Client(target: "lb", arrival: Constant(rate: 10.0)),
        "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"]),
        "app": Server(service_time: Constant("2ms"), calls: [(to: ["db"])]),
        "db": Server(service_time: Constant("3ms")),
    },
)"#;

const MS: u64 = 1_000_000;

#[test]
fn a_request_through_a_constant_chain_has_exactly_the_expected_spans_and_times() {
    let r = run_traced(CHAIN, 5);
    let t = r.variants[0].traces.as_ref().expect("traced");
    assert_eq!(t.requests.len(), 5);
    for q in &t.requests {
        let i = q.issued_ns;
        assert_eq!(
            (q.outcome.as_str(), q.ended_ns),
            ("ok", Some(i + 11 * MS)),
            "{q:?}"
        );
        let msgs: Vec<(&str, &str, u64, Option<u64>)> = q
            .messages
            .iter()
            .map(|m| {
                (
                    m.from.as_str(),
                    m.to.as_str(),
                    m.sent_ns - i,
                    m.arrives_ns.map(|a| a - i),
                )
            })
            .collect();
        let want = [
            ("users", "lb", 0, Some(MS)),
            ("lb", "app-0", MS, Some(2 * MS)),
            ("app-0", "db-0", 4 * MS, Some(5 * MS)),
            ("db-0", "app-0", 8 * MS, Some(9 * MS)),
            ("app-0", "lb", 9 * MS, Some(10 * MS)),
            ("lb", "users", 10 * MS, Some(11 * MS)),
        ];
        assert_eq!(msgs, want);
        let spans: Vec<(&str, &str, u64, u64)> = q
            .spans
            .iter()
            .map(|s| {
                (
                    s.node.as_str(),
                    s.kind.as_str(),
                    s.start_ns - i,
                    s.end_ns - i,
                )
            })
            .collect();
        assert_eq!(
            spans,
            [
                ("app-0", "service", 2 * MS, 4 * MS),
                ("db-0", "service", 5 * MS, 8 * MS)
            ]
        );
        let path: Vec<(&str, &str, u64)> = q
            .path
            .iter()
            .map(|s| (s.hop.as_str(), s.stage.as_str(), s.end_ns - s.start_ns))
            .collect();
        let want = [
            ("users -> lb", "network", MS),
            ("lb -> app-0", "network", MS),
            ("app-0", "service", 2 * MS),
            ("app-0 -> db-0", "network", MS),
            ("db-0", "service", 3 * MS),
            ("db-0 -> app-0", "network", MS),
            ("app-0 -> lb", "network", MS),
            ("lb -> users", "network", MS),
        ];
        assert_eq!(path, want);
        assert_path_partitions(q);
    }
    // Every sampled request is alike: the p50 and p99 groups are 6/11 network, 5/11 service.
    let all: Vec<(&str, &str, f64)> = t
        .breakdown
        .iter()
        .filter(|b| b.hop == "all")
        .map(|b| (b.group.as_str(), b.stage.as_str(), b.share_pct))
        .collect();
    for group in ["p50", "p99"] {
        let share = |stage: &str| {
            all.iter()
                .find(|a| a.0 == group && a.1 == stage)
                .expect("row")
                .2
        };
        assert!((share("network") - 600.0 / 11.0).abs() < 1e-9);
        assert!((share("service") - 500.0 / 11.0).abs() < 1e-9);
        assert_eq!(
            (share("queue"), share("retry"), share("other")),
            (0.0, 0.0, 0.0)
        );
    }
}

/// The segments of a request's path are contiguous from its issue to its end.
fn assert_path_partitions(q: &TracedRequest) {
    let Some(end) = q.ended_ns else { return };
    let mut at = q.issued_ns;
    for s in &q.path {
        assert_eq!(s.start_ns, at, "gap or overlap in {:?}", q.path);
        assert!(s.end_ns > s.start_ns);
        at = s.end_ns;
    }
    assert_eq!(at, end, "path of request {} ends before it does", q.id);
}

/// Queueing, retries after rejections, timeouts and random latencies: every path still adds
/// up to its request's latency, and each group's shares to 100%.
const BUSY: &str = r#"Scenario(
    name: "busy", seed: 11, duration: "3s",
    network: (latency: LogNormal(median: "1ms", p99: "5ms")),
    nodes: {
        "users": Client(target: "lb", arrival: Poisson(rate: 900.0), timeout: "40ms",
            retry: Some((max_attempts: 3, backoff: FullJitter(base: "2ms", cap: "20ms")))),
        "lb": LoadBalancer(backends: ["app"], strategy: LeastConnections,
            retry: Some((max_attempts: 2))),
        "app": Server(replicas: 2, workers: 2, queue_limit: Some(8),
            service_time: Exponential(mean: "2ms")),
    },
    variants: { "calm": {}, "tight": { "app.queue_limit": Some(2) } },
)"#;

#[test]
fn paths_add_up_to_latencies_and_shares_to_a_hundred_under_queueing_and_retries() {
    let r = run_traced(BUSY, 300);
    for v in &r.variants {
        let t = v.traces.as_ref().expect("traced");
        assert_eq!(t.requests.len(), 300, "{}", v.name);
        for q in &t.requests {
            assert_path_partitions(q);
        }
        for group in ["p50", "p99"] {
            let sum: f64 = t
                .breakdown
                .iter()
                .filter(|b| b.group == group && b.hop == "all")
                .map(|b| b.share_pct)
                .sum();
            assert!((sum - 100.0).abs() < 1e-9, "{} {group}: {sum}", v.name);
        }
        let stage = |s: &str| {
            t.requests
                .iter()
                .flat_map(|q| &q.path)
                .any(|p| p.stage == s)
        };
        assert!(stage("queue"), "{}: queueing seen", v.name);
        // Two places in a queue turn requests away, and the balancer retries them elsewhere.
        assert!(v.name != "tight" || stage("retry"), "tight: retries seen");
    }
    // The same request ids are sampled in both variants (common random numbers).
    let ids = |i: usize| -> Vec<u64> {
        let t = r.variants[i].traces.as_ref().expect("traced");
        t.requests.iter().map(|q| q.id).collect()
    };
    assert_eq!(ids(0), ids(1));
}

#[test]
fn traces_are_the_same_at_any_thread_count_and_the_chrome_file_parses() {
    let dir = scratch("traces");
    let scenario = file(&dir, "busy.ron", BUSY);
    for jobs in ["1", "2"] {
        let out = dir.join(format!("j{jobs}"));
        archsim(
            &dir,
            &[
                "run",
                &scenario,
                "--trace",
                "50",
                "-j",
                jobs,
                "--out",
                out.to_str().unwrap(),
            ],
        )
        .expect_code(0);
    }
    for f in [
        "trace-calm.json",
        "trace-tight.json",
        "results.json",
        "summary.md",
        "sequence-calm.svg",
        "latency_breakdown.svg",
    ] {
        let a = std::fs::read(dir.join("j1").join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let b = std::fs::read(dir.join("j2").join(f)).expect("written at -j 2");
        assert!(a == b, "{f} differs between -j 1 and -j 2");
    }
    let text = std::fs::read_to_string(dir.join("j1/trace-calm.json")).expect("trace");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let events = doc["traceEvents"].as_array().expect("traceEvents array");
    let processes = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name")
        .count();
    assert_eq!(processes, 50, "one process per sampled request");
    for e in events {
        let ph = e["ph"].as_str().expect("every event has a phase");
        assert!(
            e["pid"].is_u64() && e["tid"].is_u64() && e["name"].is_string(),
            "{e}"
        );
        match ph {
            "X" => assert!(
                e["ts"].as_f64().is_some() && e["dur"].as_f64().is_some_and(|d| d >= 0.0),
                "{e}"
            ),
            "i" => assert!(e["ts"].as_f64().is_some() && e["s"].is_string(), "{e}"),
            "M" => assert!(
                e["args"]["name"].is_string() || e["args"]["sort_index"].is_u64(),
                "{e}"
            ),
            other => panic!("unexpected phase {other}"),
        }
    }
    // Complete events on one thread never overlap without nesting (viewers need that).
    let mut by_thread: std::collections::BTreeMap<(u64, u64), Vec<(f64, f64)>> = Default::default();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        let ts = e["ts"].as_f64().unwrap();
        by_thread
            .entry(key)
            .or_default()
            .push((ts, ts + e["dur"].as_f64().unwrap()));
    }
    for slices in by_thread.values_mut() {
        slices.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for w in slices.windows(2) {
            assert!(w[1].0 >= w[0].1 - 1e-9, "overlapping slices {w:?}");
        }
    }
    let summary = std::fs::read_to_string(dir.join("j1/summary.md")).expect("summary");
    assert!(summary.contains("## Where the time went (traced requests)"));
}
