//! Service graphs and resilience components through whole runs, each against a number worked
//! out by hand: constant arrivals, constant service times and zero or constant latency make
//! the expected values exact counts and times.

use super::run_text;
use archsim::results::VariantResult;

fn counter(v: &VariantResult, node: &str, name: &str) -> f64 {
    v.components
        .get(node)
        .and_then(|c| c.get(name))
        .copied()
        .unwrap_or_else(|| panic!("no counter {node}.{name} in {:?}", v.components))
}

fn errors(v: &VariantResult, cause: &str) -> u64 {
    v.errors.get(cause).copied().unwrap_or(0)
}

/// State changes of `node` as (time in ms, rounded to 1us; text).
fn changes(v: &VariantResult, node: &str) -> Vec<(f64, String)> {
    v.state_changes
        .values()
        .flatten()
        .filter(|e| e.what.starts_with(node) || node.is_empty())
        .map(|e| ((e.at_s * 1e6).round() / 1e3, e.what.clone()))
        .collect()
}

fn assert_ms(what: &str, got: f64, want: f64) {
    // HDR histograms keep 3 significant digits.
    assert!(
        (got - want).abs() <= want * 1e-3 + 1e-6,
        "{what}: got {got} ms, want {want} ms"
    );
}

/// A client at 10 requests/s into server "a" that calls `calls`; "b", "c", "d" take 1, 3 and
/// 5 ms, with no network latency and no queueing, so every request's latency is exact.
fn graph(calls: &str) -> VariantResult {
    let src = format!(
        r#"Scenario(
            name: "graph", seed: 1, duration: "5s",
            nodes: {{
                "users": Client(target: "a", arrival: Constant(rate: 10.0)),
                "a": Server(workers: 4, service_time: Constant("1ms"), calls: {calls}),
                "b": Server(service_time: Constant("1ms")),
                "c": Server(service_time: Constant("3ms")),
                "d": Server(service_time: Constant("5ms")),
            }},
        )"#
    );
    run_text(&src).variants.remove(0)
}

#[test]
fn fan_out_waiting_for_the_first_k_takes_the_kth_fastest() {
    // a's own 1 ms, then the k-th order statistic of {1, 3, 5} ms.
    for (wait_for, want) in [("Some(1)", 2.0), ("Some(2)", 4.0), ("None", 6.0)] {
        let v = graph(&format!(r#"[(to: ["b", "c", "d"], wait_for: {wait_for})]"#));
        assert_eq!(v.ok, v.requests, "wait_for {wait_for}");
        assert_ms(&format!("p50, wait_for {wait_for}"), v.latency_ms.p50, want);
        assert_ms(&format!("max, wait_for {wait_for}"), v.latency_ms.max, want);
    }
}

#[test]
fn sequential_stages_add_up() {
    // 1 (a) + 1 (b) + 5 (d) + max(3, 1) (c and b in parallel) = 10 ms.
    let v = graph(r#"[(to: ["b"]), (to: ["d"]), (to: ["c", "b"])]"#);
    assert_eq!(v.ok, v.requests);
    assert_ms("p50", v.latency_ms.p50, 10.0);
    assert_ms("max", v.latency_ms.max, 10.0);
    // Four calls per request, all answered.
    let a = &v.components["a-0"];
    assert_eq!(a["downstream_calls"], 4.0 * v.requests as f64);
    assert_eq!(a["downstream_call_errors"], 0.0);
}

#[test]
fn a_downstream_timeout_propagates_upstream_as_a_timeout() {
    // d takes 5 ms but a waits 2 ms: every request fails after 1 + 2 ms with cause timeout,
    // long before the client's own 1 s timeout.
    let v = graph(r#"[(to: ["b", "d"], timeout: "2ms")]"#);
    assert_eq!(v.ok, 0);
    assert_eq!(errors(&v, "timeout"), v.requests);
    assert_eq!(v.components["users"]["late_responses"], 0.0);
    assert_eq!(v.components["a-0"]["failed_downstream"], v.requests as f64);
}

#[test]
fn a_downstream_rejection_propagates_with_its_cause() {
    // a → limiter (1 token/s, burst 1) → b. Requests are issued at k × 100 ms (k = 1..49) and
    // reach the limiter 1 ms later. The full bucket admits the one at 0.101 s, and a token
    // drips in exactly when the ones at 1.101, 2.101, 3.101 and 4.101 s arrive: 5 admitted,
    // the other 44 fail with cause rate_limited, end to end.
    let src = r#"Scenario(
        name: "limited", seed: 1, duration: "5s",
        nodes: {
            "users": Client(target: "a", arrival: Constant(rate: 10.0)),
            "a": Server(workers: 4, service_time: Constant("1ms"), calls: [(to: ["limiter"])]),
            "limiter": RateLimiter(target: "b", algorithm: TokenBucket(rate: 1.0, burst: 1)),
            "b": Server(service_time: Constant("1ms")),
        },
    )"#;
    let v = run_text(src).variants.remove(0);
    assert_eq!(v.requests, 49);
    assert_eq!(v.ok, 5);
    assert_eq!(errors(&v, "rate_limited"), 44);
    assert_eq!(counter(&v, "limiter", "admitted"), 5.0);
}

#[test]
fn a_breaker_opens_on_the_request_the_threshold_says_and_probes_after_cool_down() {
    // Requests every 10 ms from 10 ms; the database is down from the start, so every call fails
    // at once. Window 10, min_calls 10, rate 0.5: the 10th call (t = 100 ms) opens it. Then
    // one probe per cool-down of 1 s: at 1.1 s and 2.1 s, each failing and reopening.
    let src = r#"Scenario(
        name: "breaker", seed: 1, duration: "3s",
        nodes: {
            "users": Client(target: "breaker", arrival: Constant(rate: 100.0)),
            "breaker": CircuitBreaker(target: "db",
                breaker: (failure_rate: 0.5, window: 10, min_calls: 10, cool_down: "1s", probes: 1)),
            "db": Server(service_time: Constant("1ms")),
        },
        faults: [Crash(node: "db", at: "0s")],
    )"#;
    let v = run_text(src).variants.remove(0);
    assert_eq!(v.requests, 299);
    assert_eq!(
        changes(&v, ""),
        [
            (100.0, "open".to_string()),
            (1100.0, "half-open".to_string()),
            (1100.0, "open".to_string()),
            (2100.0, "half-open".to_string()),
            (2100.0, "open".to_string()),
        ]
    );
    assert_eq!(
        counter(&v, "breaker", "forwarded"),
        0.0,
        "db is unreachable"
    );
    assert_eq!(errors(&v, "unreachable"), 12);
    assert_eq!(errors(&v, "circuit_open"), 299 - 12);
}

#[test]
fn a_retry_budget_caps_retries_at_its_fraction_of_requests() {
    // The target is down: every attempt fails at once and wants 4 retries. A 10% budget
    // allows one retry per ten requests: 99 retries for the 999 requests, and every request
    // ends with exactly one refused retry.
    let src = r#"Scenario(
        name: "budget", seed: 1, duration: "10s",
        nodes: {
            "users": Client(target: "app", arrival: Constant(rate: 100.0),
                            retry: Some((max_attempts: 5, budget: Some(0.1)))),
            "app": Server(service_time: Constant("1ms")),
        },
        faults: [Crash(node: "app", at: "0s")],
    )"#;
    let v = run_text(src).variants.remove(0);
    assert_eq!(v.requests, 999);
    assert_eq!(counter(&v, "users", "retries"), 99.0);
    assert_eq!(counter(&v, "users", "retries_denied_by_budget"), 999.0);
    // Without a budget every request is tried 5 times.
    let v = run_text(&src.replace(", budget: Some(0.1)", ""))
        .variants
        .remove(0);
    assert_eq!(counter(&v, "users", "retries"), 4.0 * 999.0);
    assert_eq!(errors(&v, "unreachable"), 999);
}

#[test]
fn retries_wait_their_backoff() {
    // One request, issued at 100 ms to a server that is down until `until`. Attempts fail at
    // once while it is down; the exponential backoff waits 10 then 20 ms, so attempts go out
    // at 100, 110 and 130 ms, and the first one after the restart is served in 2 ms.
    for (until, want_ms, retries) in [("105ms", 12.0, 1.0), ("125ms", 32.0, 2.0)] {
        let src = format!(
            r#"Scenario(
                name: "backoff", seed: 1, duration: "1s",
                nodes: {{
                    "users": Client(target: "app", arrival: Constant(rate: 10.0), max_requests: Some(1),
                                    retry: Some((max_attempts: 3,
                                                 backoff: Exponential(base: "10ms", cap: "50ms")))),
                    "app": Server(service_time: Constant("2ms")),
                }},
                faults: [Crash(node: "app", at: "0s", until: "{until}")],
            )"#
        );
        let v = run_text(&src).variants.remove(0);
        assert_eq!((v.requests, v.ok), (1, 1), "down until {until}");
        assert_ms(&format!("down until {until}"), v.latency_ms.max, want_ms);
        assert_eq!(counter(&v, "users", "retries"), retries);
    }
}

#[test]
fn hedging_takes_the_first_answer() {
    // app-0 is 50 ms away, app-1 next door (no latency). A request that starts at app-0 is
    // hedged to app-1 after 10 ms and answered at 10 + 1 = 11 ms; one that starts at app-1
    // takes 1 ms.
    let src = r#"Scenario(
        name: "hedge", seed: 1, duration: "10s",
        network: (links: [(from: "users", to: "app-0", latency: Constant("50ms"))]),
        nodes: {
            "users": Client(target: "app", arrival: Constant(rate: 100.0),
                            hedge: Some((after: "10ms"))),
            "app": Server(replicas: 2, workers: 4, service_time: Constant("1ms")),
        },
    )"#;
    let v = run_text(src).variants.remove(0);
    assert_eq!(v.ok, v.requests);
    assert_ms("max", v.latency_ms.max, 11.0);
    assert_ms("min", v.latency_cdf[0][0], 1.0);
    let hedges = counter(&v, "users", "hedges");
    assert!(hedges > 0.3 * v.requests as f64 && hedges < 0.7 * v.requests as f64);
    assert_eq!(counter(&v, "users", "hedge_wins"), hedges);
    // The slow copies' answers arrive after the hedge won.
    assert_eq!(counter(&v, "users", "late_responses"), hedges);
    let served: u64 = v.servers.iter().map(|s| s.served).sum();
    assert_eq!(served as f64, v.requests as f64 + hedges);
}

#[test]
fn idempotency_keys_apply_a_retried_write_once_and_count_the_duplicate() {
    // A write takes 30 ms, the client gives up on an attempt after 20 ms and retries at once:
    // both attempts reach the server, the first applies the write, the second is a duplicate.
    let src = r#"Scenario(
        name: "idempotency", seed: 1, duration: "5s",
        nodes: {
            "users": Client(target: "app", arrival: Constant(rate: 10.0), timeout: "20ms",
                            write_fraction: 1.0, retry: Some((max_attempts: 2))),
            "app": Server(workers: 8, service_time: Constant("30ms"), idempotency_keys: Some(1000)),
        },
    )"#;
    let v = run_text(src).variants.remove(0);
    assert_eq!(v.requests, 49);
    assert_eq!(counter(&v, "app-0", "writes_applied"), 49.0);
    assert_eq!(counter(&v, "app-0", "duplicate_writes"), 49.0);
}

#[test]
fn health_checks_remove_and_restore_a_backend_when_the_thresholds_say() {
    // Probes every 500 ms, 100 ms timeout, 2 failures out, 2 passes in. app-1 is down from
    // 10 s to 20 s and does not refuse connections. Probes at 10.0 and 10.5 s time out at
    // 10.1 and 10.6 s: out at 10.6 s. After the restart the probes at 20.0 and 20.5 s pass,
    // the second answered 1 ms later: back at 20.501 s.
    let src = r#"Scenario(
        name: "health", seed: 1, duration: "25s",
        nodes: {
            "users": Client(target: "lb", arrival: Constant(rate: 100.0), timeout: "1s"),
            "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], timeout: "300ms",
                               skip_unreachable: false,
                               health_check: Some((interval: "500ms", timeout: "100ms",
                                                   unhealthy_threshold: 2, healthy_threshold: 2))),
            "app": Server(replicas: 3, workers: 2, service_time: Constant("1ms")),
        },
        faults: [Crash(node: "app-1", at: "10s", until: "20s")],
    )"#;
    let v = run_text(src).variants.remove(0);
    assert_eq!(
        changes(&v, "app-1"),
        [
            (10600.0, "app-1: unhealthy".to_string()),
            (20501.0, "app-1: healthy".to_string())
        ]
    );
    // Requests lost: those sent to app-1 from 10.0 s until 10.6 s (every third of 60).
    assert_eq!(errors(&v, "timeout"), 20);
    // With connection refusals seen at once, the probes at 10.0 and 10.5 s fail at once.
    let v = run_text(&src.replace("skip_unreachable: false,", ""))
        .variants
        .remove(0);
    assert_eq!(
        changes(&v, "app-1")[0],
        (10500.0, "app-1: unhealthy".to_string())
    );
    assert_eq!(v.ok, v.requests);
}

#[test]
fn load_shedding_drops_requests_that_waited_too_long() {
    // One worker, 10 ms per request, a request every 5 ms: twice the capacity. A request
    // served after waiting more than 15 ms is shed instead, so no answer takes more than
    // 15 + 10 ms and the server still serves one request per 10 ms.
    let src = r#"Scenario(
        name: "shed", seed: 1, duration: "10s",
        nodes: {
            "users": Client(target: "app", arrival: Constant(rate: 200.0), timeout: "1s"),
            "app": Server(service_time: Constant("10ms"), shed_after: Some("15ms")),
        },
    )"#;
    let v = run_text(src).variants.remove(0);
    assert!(v.latency_ms.max <= 25.0 * 1.001, "{}", v.latency_ms.max);
    assert_eq!(v.ok + errors(&v, "shed"), v.requests);
    let served = v.servers[0].served as f64;
    assert!((served - 1000.0).abs() <= 2.0, "served {served}");
    assert_eq!(counter(&v, "app-0", "shed"), errors(&v, "shed") as f64);
}

#[test]
fn a_bulkhead_admits_at_most_its_concurrency() {
    // A request every 1 ms, each taking 10.5 ms, at most 2 in flight: arrivals at k ms are
    // admitted when k mod 11 is 1 or 2 (the slots free at 11.5 and 12.5 ms, and so on):
    // 2 of every 11 of the 9999 requests, 1818 in all.
    let src = r#"Scenario(
        name: "bulkhead", seed: 1, duration: "10s",
        nodes: {
            "users": Client(target: "bulkhead", arrival: Constant(rate: 1000.0)),
            "bulkhead": Bulkhead(target: "app", max_concurrent: 2),
            "app": Server(workers: 8, service_time: Constant("10500us")),
        },
    )"#;
    let v = run_text(src).variants.remove(0);
    assert_eq!(v.requests, 9999);
    assert_eq!(v.ok, 1818);
    assert_eq!(errors(&v, "rejected"), 9999 - 1818);
}

#[test]
fn a_load_balancer_breaker_takes_a_failing_backend_out() {
    // Round robin over two backends; app-1 is down (connections not refused) and every call to
    // it times out after 50 ms. Its breaker (window 4, all 4 failing) opens when the 4th
    // timeout fires; after that app-1 gets no requests until the cool-down ends.
    let src = r#"Scenario(
        name: "lb breaker", seed: 1, duration: "2s",
        nodes: {
            "users": Client(target: "lb", arrival: Constant(rate: 100.0)),
            "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], timeout: "50ms",
                               skip_unreachable: false,
                               breaker: Some((failure_rate: 1.0, window: 4, min_calls: 4,
                                              cool_down: "10s"))),
            "app": Server(replicas: 2, service_time: Constant("1ms")),
        },
        faults: [Crash(node: "app-1", at: "0s")],
    )"#;
    let v = run_text(src).variants.remove(0);
    let c = changes(&v, "app-1");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].1, "app-1: breaker open");
    // Sent to app-1 at 20, 40, 60, 80 ms, timing out 50 ms later; the 4th at 130 ms. By then
    // app-1 had also been sent the requests at 100 and 120 ms: 6 in all, all timed out.
    assert_eq!(c[0].0, 130.0);
    assert_eq!(counter(&v, "lb", "forwarded_to.app-1"), 6.0);
    assert_eq!(errors(&v, "timeout"), 6);
    assert_eq!(v.ok, v.requests - 6);
}

/// Availability of a variant over the windows starting in `[from_s, to_s)`.
fn availability_between(v: &VariantResult, from_s: f64, to_s: f64) -> f64 {
    let (ok, all) = v
        .windows
        .iter()
        .filter(|w| w.start_s >= from_s && w.start_s < to_s)
        .fold((0, 0), |(ok, all), w| (ok + w.ok, all + w.ok + w.errors));
    ok as f64 / all.max(1) as f64
}

#[test]
fn the_retry_storm_scenario_is_metastable_without_a_budget_and_recovers_with_one() {
    let path = super::repo_root().join("scenarios/retry-storm.ron");
    let r = run_text(&std::fs::read_to_string(path).expect("retry-storm.ron"));
    let [none, storm, budget] = &r.variants[..] else {
        panic!("three variants expected");
    };
    for v in [none, storm, budget] {
        assert!(
            availability_between(v, 2.0, 10.0) > 0.999,
            "{} before",
            v.name
        );
    }
    // The slowdown ends at 12 s. Without retries and with a budget, the backlog drains within
    // seconds; without a budget the offered load stays ~4x capacity and nothing succeeds.
    assert!(availability_between(none, 15.0, 30.0) > 0.999);
    assert!(availability_between(budget, 15.0, 30.0) > 0.999);
    assert!(availability_between(storm, 15.0, 30.0) < 0.01);
    // Not vacuously: the storm's users keep arriving at 3000/s and every request ends, in
    // errors. Over the 15 s, 45,000 Poisson arrivals (4 sigma: 850), give or take those in
    // flight at either edge (a request lives at most 4 × 100 ms + 3 × 80 ms of backoff).
    let ended: u64 = storm
        .windows
        .iter()
        .filter(|w| (15.0..30.0).contains(&w.start_s))
        .map(|w| w.ok + w.errors)
        .sum();
    let tol = 4.0 * 45_000f64.sqrt() + 3000.0 * 0.64;
    assert!(
        (ended as f64 - 45_000.0).abs() < tol,
        "{ended} requests ended from 15 s to 30 s, expected 45,000 ± {tol:.0}"
    );
    let attempts = |v: &VariantResult| counter(v, "users", "retries");
    assert!(attempts(storm) > 20.0 * attempts(budget));
}

fn committed(name: &str) -> Vec<VariantResult> {
    let path = super::repo_root().join("scenarios").join(name);
    run_text(&std::fs::read_to_string(path).expect("a committed scenario")).variants
}

#[test]
fn the_circuit_breaker_scenario_keeps_the_healthy_path_available() {
    let [none, breaker] = &committed("circuit-breaker.ron")[..] else {
        panic!("two variants expected");
    };
    // Browsing never calls the database: without a breaker the checkouts' calls tie up the
    // API's workers and browsing fails with them; with one it does not notice.
    let browse = |v| counter(v, "browse", "availability");
    assert!(browse(none) < 0.9, "no breaker: {}", browse(none));
    assert!(browse(breaker) > 0.999, "breaker: {}", browse(breaker));
    assert!(counter(breaker, "breaker", "failed_fast") > 1000.0);
    assert!(errors(none, "rejected") > 1000 && errors(breaker, "rejected") == 0);
}

#[test]
fn an_event_loop_keeps_serving_the_fast_path_while_a_dependency_is_slow() {
    let [threads, event_loop] = &committed("concurrency-models.ron")[..] else {
        panic!("two variants expected");
    };
    let readers = |v| counter(v, "readers", "availability");
    assert!(
        readers(threads) < 0.9,
        "thread per request: {}",
        readers(threads)
    );
    assert!(
        readers(event_loop) > 0.999,
        "event loop: {}",
        readers(event_loop)
    );
    // Thread per request: at most a worker per call, so never more calls out than workers
    // (16) and no wait for one of the 32 connections; the event loop waits for connections.
    let waits = |v| counter(v, "api-0", "connection_waits.payments");
    assert_eq!(waits(threads), 0.0);
    assert!(waits(event_loop) > 100.0);
}
