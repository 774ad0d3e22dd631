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
    let results: Results =
        serde_json::from_slice(&std::fs::read(dir.join("j1/results.json")).expect("results"))
            .expect("results.json");
    let traced = results.variants[0].traces.as_ref().expect("traced");
    check_trace_events(&doc, &traced.requests);
    let summary = std::fs::read_to_string(dir.join("j1/summary.md")).expect("summary");
    assert!(summary.contains("## Where the time went (traced requests)"));
}

/// The chain with `db` paused for 150 ms in the middle of its first requests.
fn chain_with_pause() -> String {
    CHAIN.replace(
        "    nodes: {",
        "    faults: [Pause(node: \"db\", at: \"250ms\", until: \"400ms\")],\n    nodes: {",
    )
}

/// The sequence diagram of the first K requests and the messages it should draw.
fn first_k_diagram(src: &str, trace: usize, k: usize) -> (String, Vec<TracedRequest>) {
    let registry = Registry::builtin();
    let scenario = parse("test.ron", src, &registry).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        trace,
        sequence: k,
        ..RunOptions::default()
    };
    let r = run(&scenario, &registry, &opts).unwrap_or_else(|e| panic!("{e}"));
    let files = archsim::report::render(&r).expect("renders");
    let svg = files
        .iter()
        .find(|(n, _)| n == "sequence-first-base.svg")
        .map(|(_, b)| String::from_utf8(b.clone()).expect("utf-8"))
        .expect("the first-K diagram is written");
    let t = r.variants[0].traces.as_ref().expect("traced");
    (svg, t.requests.iter().take(k).cloned().collect())
}

#[test]
fn the_first_k_requests_diagram_draws_every_message_and_the_faults_that_overlap_it() {
    let (svg, first) = first_k_diagram(&chain_with_pause(), 100, 4);
    // Every request of the run is traced, so these are the run's first four.
    assert_eq!(first.len(), 4);
    assert!(first.windows(2).all(|w| w[0].issued_ns <= w[1].issued_ns));
    let messages: usize = first.iter().map(|r| r.messages.len()).sum();
    assert_eq!(svg.matches("class=\"message").count(), messages, "{svg}");
    assert!(svg.contains("The first 4 traced requests of base"), "{svg}");
    for r in &first {
        assert!(
            svg.contains(&format!("request {}: ", r.id)),
            "request {}",
            r.id
        );
    }
    for node in ["users", "lb", "app-0", "db-0"] {
        assert!(svg.contains(&format!(">{node}</text>")), "lifeline {node}");
    }
    assert_eq!(svg.matches("class=\"fault\"").count(), 1, "{svg}");
    assert!(svg.contains("fault: pause db"), "{svg}");
    assert_eq!(svg.matches("class=\"fault-hit\"").count(), 1, "db-0 marked");
    // The fault's label starts right of the last lifeline, so it crosses none.
    let x_attr = |element: &str| -> f64 {
        let rest = &element[element.find(" x=\"").or(element.find(" x1=\"")).expect("x")..];
        let rest = &rest[rest.find('"').expect("quote") + 1..];
        rest[..rest.find('"').expect("quote")]
            .parse()
            .expect("number")
    };
    let label = svg
        .lines()
        .find(|l| l.contains(">fault: pause db"))
        .expect("fault label");
    let last_lifeline = svg
        .lines()
        .filter(|l| l.contains("class=\"lifeline\""))
        .map(x_attr)
        .fold(f64::MIN, f64::max);
    assert!(label.contains("text-anchor=\"start\""), "{label}");
    assert!(x_attr(label) > last_lifeline, "{label} vs {last_lifeline}");
    // The pause delays the request that meets it: db holds it until the pause ends.
    let held = first
        .iter()
        .find(|r| r.issued_ns < 400 * MS && r.ended_ns.is_some_and(|e| e > 400 * MS));
    assert!(held.is_some(), "a request waits out the pause: {first:?}");
    // Without the fault, no band; fewer requests asked, fewer arrows.
    let (svg, first) = first_k_diagram(CHAIN, 100, 2);
    assert_eq!(svg.matches("class=\"fault").count(), 0);
    assert_eq!(svg.matches("class=\"message").count(), 6 * first.len());
}

/// One single-worker server with a constant 10 ms of work, premium requests preempting
/// standard ones in service (preemptive-resume) at 60% load: standard requests are often
/// taken off the worker and resumed later.
const PREEMPTIVE: &str = r#"Scenario(
    name: "preemption", seed: 7, duration: "20s", warmup: "0s",
    classes: ["premium", "standard"],
    network: (latency: Constant("1ms")),
    nodes: {
        "users": Client(target: "app", arrival: Poisson(rate: 60.0), timeout: "10s",
                        classes: {"premium": 0.3, "standard": 0.7}),
        "app": Server(workers: 1, scheduling: PreemptiveResume,
                      service_time: Constant("10ms")),
    },
)"#;

#[test]
fn a_preempted_request_is_served_in_pieces_that_add_up_to_its_work_and_its_latency() {
    let r = run_traced(PREEMPTIVE, 400);
    let t = r.variants[0].traces.as_ref().expect("traced");
    let mut preempted = 0;
    for q in t.requests.iter().filter(|q| q.outcome == "ok") {
        assert_path_partitions(q);
        let at_app: Vec<_> = q.spans.iter().filter(|s| s.node == "app-0").collect();
        let service: u64 = at_app
            .iter()
            .filter(|s| s.kind == "service")
            .map(|s| s.end_ns - s.start_ns)
            .sum();
        assert_eq!(
            service,
            10 * MS,
            "the pieces of service are its work: {at_app:?}"
        );
        // Queue, then service, preempted wait, service ... : contiguous, never overlapping.
        for w in at_app.windows(2) {
            assert_eq!(w[0].end_ns, w[1].start_ns, "{at_app:?}");
        }
        if at_app.iter().any(|s| s.kind == "preempted") {
            preempted += 1;
            let kinds: Vec<&str> = at_app.iter().map(|s| s.kind.as_str()).collect();
            let last = kinds.len() - 1;
            assert_eq!(kinds[last], "service", "{kinds:?}");
            assert!(kinds.windows(2).all(|k| k[0] != k[1]), "{kinds:?}");
            // The wait while preempted is queueing in the breakdown; the request's latency is
            // 2 ms of network, 10 ms of service and its queueing, exactly.
            let stage = |st: &str| -> u64 {
                q.path
                    .iter()
                    .filter(|p| p.stage == st)
                    .map(|p| p.end_ns - p.start_ns)
                    .sum()
            };
            let waited: u64 = at_app
                .iter()
                .filter(|s| s.kind != "service")
                .map(|s| s.end_ns - s.start_ns)
                .sum();
            assert_eq!(stage("service"), 10 * MS);
            assert_eq!(stage("queue"), waited);
            assert_eq!(stage("network"), 2 * MS);
            assert_eq!(q.ended_ns.unwrap() - q.issued_ns, 12 * MS + waited);
        }
    }
    assert!(
        preempted >= 10,
        "only {preempted} preempted requests traced"
    );
}

/// The trace-event format's rules, as Perfetto's and chrome://tracing's JSON importers read
/// them: every event has a name, phase, timestamp, process and thread; metadata names every
/// process and every thread an event is on; complete events on a thread nest (ours never
/// overlap) and each thread's timestamps never go back; and each request's process holds one
/// slice per thing it did (the request, spans, local work before sending, flights, path).
fn check_trace_events(doc: &serde_json::Value, requests: &[TracedRequest]) {
    use std::collections::BTreeMap;
    let events = doc["traceEvents"].as_array().expect("traceEvents array");
    let mut named: BTreeMap<(u64, u64), &str> = BTreeMap::new();
    let mut last_ts: BTreeMap<(u64, u64), f64> = BTreeMap::new();
    let mut slices: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
    let mut per_process: BTreeMap<u64, usize> = BTreeMap::new();
    for e in events {
        let ph = e["ph"].as_str().expect("every event has a phase");
        let (pid, tid) = (e["pid"].as_u64(), e["tid"].as_u64());
        let (Some(pid), Some(tid)) = (pid, tid) else {
            panic!("pid and tid are integers: {e}")
        };
        let ts = e["ts"].as_f64().unwrap_or_else(|| panic!("ts in µs: {e}"));
        assert!(e["name"].is_string() && ts >= 0.0, "{e}");
        match ph {
            "M" => {
                let name = e["name"].as_str().unwrap();
                match name {
                    "process_name" | "thread_name" => {
                        let label = e["args"]["name"].as_str().expect("a name");
                        let key = if name == "process_name" {
                            (pid, u64::MAX)
                        } else {
                            (pid, tid)
                        };
                        assert!(named.insert(key, label).is_none(), "named twice: {e}");
                    }
                    "process_sort_index" | "thread_sort_index" => {
                        assert!(e["args"]["sort_index"].is_u64(), "{e}")
                    }
                    other => panic!("unknown metadata {other}"),
                }
                continue;
            }
            "X" => {
                let dur = e["dur"].as_f64().filter(|d| *d >= 0.0).expect("dur");
                slices.entry((pid, tid)).or_default().push((ts, ts + dur));
                *per_process.entry(pid).or_default() += 1;
            }
            "i" => {
                let scope = e["s"].as_str().expect("an instant's scope");
                assert!(scope == "t" || scope == "p", "{e}");
                if scope == "p" {
                    assert!(named.contains_key(&(pid, u64::MAX)), "{e}");
                    continue;
                }
            }
            other => panic!("unexpected phase {other}"),
        }
        assert!(
            named.contains_key(&(pid, tid)),
            "thread not named before use: {e}"
        );
        let last = last_ts.entry((pid, tid)).or_insert(0.0);
        assert!(ts >= *last, "time goes back on a thread: {e}");
        *last = ts;
    }
    for (thread, spans) in &slices {
        for w in spans.windows(2) {
            // Added exactly as a viewer adds them: no tolerance for rounding.
            assert!(w[1].0 >= w[0].1, "{thread:?}: overlapping slices {w:?}");
        }
    }
    assert_eq!(per_process.len(), requests.len(), "a process per request");
    for (i, q) in requests.iter().enumerate() {
        let want = usize::from(q.ended_ns.is_some())
            + q.spans.len()
            + q.messages
                .iter()
                .filter(|m| m.departs_ns > m.sent_ns)
                .count()
            + q.messages.iter().filter(|m| m.arrives_ns.is_some()).count()
            + q.path.len();
        assert_eq!(
            per_process[&(i as u64 + 1)],
            want,
            "slices of request {}",
            q.id
        );
    }
}
