//! Issue 17's reproducers, each run through the real binary under the memory cap of
//! [`super::harness`]: bad input exits 2 at validation, a run that hits a limit exits 1 naming
//! it, and nothing panics, is killed by a signal or hangs. A test passing under the cap also
//! bounds the run's peak memory by it.

use super::harness::{archsim, file, scratch};

/// Writes `src` and checks that `validate` and `run` both refuse it with exit 2 and `message`.
fn refused(test: &str, src: &str, message: &str) {
    let dir = scratch(test);
    let f = file(&dir, "s.ron", src);
    archsim(&dir, &["validate", &f])
        .expect_code(2)
        .expect_stderr(message);
    archsim(&dir, &["run", &f, "--out", "out"])
        .expect_code(2)
        .expect_stderr(message);
    assert!(
        !dir.join("out").exists(),
        "nothing is written for bad input"
    );
}

/// Writes `src`, runs it, and returns stderr after checking the exit code.
fn ran(test: &str, src: &str, code: i32) -> String {
    let dir = scratch(test);
    let f = file(&dir, "s.ron", src);
    archsim(&dir, &["run", &f, "--out", "out"])
        .expect_code(code)
        .stderr
        .clone()
}

#[test]
fn regression_a_coordinator_naming_one_replica_of_the_clients_group_is_refused() {
    refused(
        "txn-one-replica",
        r#"Scenario(name: "x", duration: "1s", nodes: {
  "clients": TxnClient(coordinator: "coord", participants: "shard", k: 2, arrival: Poisson(rate: 100.0)),
  "coord": TxnCoordinator(participants: "shard-1"),
  "shard": TxnParticipant(replicas: 2, coordinator: "coord"),
})"#,
        "s.ron:3:41",
    );
}

#[test]
fn regression_a_kv_client_crashing_with_requests_in_flight_ends_them_as_lost() {
    let stderr = ran(
        "kv-crash",
        r#"Scenario(name: "x", duration: "2s", network: (latency: Constant("1ms")), nodes: {
  "users": KvClient(target: "store", arrival: Poisson(rate: 600.0)),
  "store": ReplicatedStore(),
}, faults: [Crash(node: "users", at: "1s")])"#,
        0,
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn regression_a_zero_delay_loop_through_a_rate_limiter_and_a_bulkhead_is_named() {
    refused(
        "zero-delay-loop",
        r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "rl", arrival: Poisson(rate: 100.0)),
  "rl": RateLimiter(target: "bh", algorithm: TokenBucket(rate: 1000.0, burst: 10)),
  "bh": Bulkhead(target: "rl", max_concurrent: 10),
})"#,
        "requests go round a loop: \"rl\" -> \"bh\" -> \"rl\"",
    );
}

const CLIENT_AND_SERVER: &str = r#"
  "users": Client(target: "app", arrival: Poisson(rate: 200.0)),
  "app": Server(service_time: Constant("1ms")),"#;

#[test]
fn regression_clients_that_were_down_do_not_pass_for_full_availability() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"2s\", nodes: {{{CLIENT_AND_SERVER}\n}}, \
         faults: [Crash(node: \"users\", at: \"1s\"), Crash(node: \"app\", at: \"1s\")])"
    );
    let dir = scratch("clients-down");
    let f = file(&dir, "s.ron", src);
    archsim(&dir, &["run", &f, "--out", "out"])
        .expect_code(0)
        .expect_stderr("warning: clients were down during the measured 2s: \"users\" 1s")
        .expect_stderr("availability (100.000%) counts only the time they were up");
    let summary = std::fs::read_to_string(dir.join("out/summary.md")).expect("summary.md");
    assert!(
        summary.contains("| 100.000%\\* |"),
        "the table marks it:\n{summary}"
    );
    assert!(
        summary.contains("Clients were down for part of the measured time"),
        "{summary}"
    );
}

#[test]
fn regression_no_client_a_late_fault_and_a_silent_client_are_warned_about() {
    let dir = scratch("warnings");
    let src = r#"Scenario(name: "x", duration: "1s", nodes: {
  "app": Server(service_time: Constant("1ms")),
}, faults: [Crash(node: "app", at: "5s")])"#;
    let f = file(&dir, "s.ron", src);
    let e = archsim(&dir, &["run", &f, "--out", "out"]);
    e.expect_code(0)
        .expect_stderr("warning: the scenario declares no client")
        .expect_stderr("warning: faults[0] starts at 5s, not before the end of `duration` (1s)");
    let summary = std::fs::read_to_string(dir.join("out/summary.md")).expect("summary.md");
    assert!(
        summary.contains("## Warnings\n\n- the scenario declares no client"),
        "{summary}"
    );
    let json = std::fs::read_to_string(dir.join("out/results.json")).expect("results.json");
    assert!(
        json.contains("\"warnings\": [\n    \"the scenario declares no client"),
        "{json}"
    );
    let silent = r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Bursts(rate: 0.0, burst_rate: 10.0, every: "10s", length: "1ms"), timeout: "1ms"),
  "app": Server(service_time: Constant("1ms")),
}, faults: [Crash(node: "users", at: "0s")])"#;
    let f = file(&dir, "silent.ron", silent);
    archsim(&dir, &["run", &f, "--out", "out2"])
        .expect_code(0)
        .expect_stderr("warning: client \"users\" issued no request in the run");
}

#[test]
fn regression_report_refuses_another_versions_results() {
    let dir = scratch("report-version");
    let f = file(
        &dir,
        "s.ron",
        format!("Scenario(name: \"x\", duration: \"1s\", nodes: {{{CLIENT_AND_SERVER}\n}})"),
    );
    archsim(&dir, &["run", &f, "--out", "out"]).expect_code(0);
    let json = std::fs::read_to_string(dir.join("out/results.json")).expect("results.json");
    let ours = format!("\"archsim_version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    std::fs::write(
        dir.join("old.json"),
        json.replace(&ours, "\"archsim_version\": \"0.0.1\""),
    )
    .expect("write");
    archsim(&dir, &["report", "old.json", "--out", "again"])
        .expect_code(2)
        .expect_stderr("old.json was written by archsim 0.0.1");
    assert!(!dir.join("again").exists());
}

const SWEEP: &str = r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 100.0)),
  "app": Server(service_time: Constant("1ms")),
}, sweep: (parameters: {"app.workers": (values: [1, 2])}))"#;

#[test]
fn regression_merge_refuses_other_versions_fifos_and_unreadable_files() {
    let dir = scratch("merge");
    let f = file(&dir, "s.ron", SWEEP);
    archsim(&dir, &["sweep", &f, "--shard", "0/1", "--out", "shard"]).expect_code(0);
    let run = dir.join("shard/runs/000001.json");
    let bytes = std::fs::read_to_string(&run).expect("run file");
    let ours = format!("\"archsim_version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    std::fs::write(&run, bytes.replace(&ours, "\"archsim_version\": \"0.0.1\"")).expect("w");
    archsim(&dir, &["merge", "shard", "--out", "merged"])
        .expect_code(2)
        .expect_stderr("000001.json was written by archsim 0.0.1");
    std::fs::write(&run, &bytes).expect("restore");
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.join("shard/runs/000007.json"))
        .status()
        .expect("mkfifo runs");
    assert!(fifo.success());
    archsim(&dir, &["merge", "shard", "--out", "merged"])
        .expect_code(2)
        .expect_stderr("000007.json: not a regular file");
    assert!(!dir.join("merged").exists(), "nothing is written");
}

#[test]
fn regression_an_output_name_that_is_a_directory_writes_nothing_and_is_named() {
    let dir = scratch("out-dir");
    let f = file(
        &dir,
        "s.ron",
        format!("Scenario(name: \"x\", duration: \"1s\", nodes: {{{CLIENT_AND_SERVER}\n}})"),
    );
    std::fs::create_dir_all(dir.join("out/results.json")).expect("a directory in the way");
    archsim(&dir, &["run", &f, "--out", "out"])
        .expect_code(1)
        .expect_stderr("out/results.json: is a directory");
    let names: Vec<_> = std::fs::read_dir(dir.join("out")).expect("out").collect();
    assert_eq!(
        names.len(),
        1,
        "only the directory that was there: {names:?}"
    );
}

#[test]
fn regression_invalid_utf8_is_located() {
    let dir = scratch("utf8");
    let f = file(
        &dir,
        "s.ron",
        b"Scenario(name: \"x\",\n duration: \"1s\xff\", nodes: {})",
    );
    archsim(&dir, &["validate", &f])
        .expect_code(2)
        .expect_stderr("s.ron:2:15: not UTF-8 text: byte 0xff at offset 34");
}

#[test]
fn regression_a_50_mb_line_with_a_late_error_writes_a_short_message() {
    let dir = scratch("huge-line");
    let pad = " ".repeat(50 << 20);
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\",{pad} nodes: {{\"a\": Server(workers: 0, service_time: Constant(\"1ms\"))}})"
    );
    let f = file(&dir, "s.ron", src);
    let e = archsim(&dir, &["validate", &f]);
    e.expect_code(2)
        .expect_stderr("a server needs at least one worker");
    assert!(e.stderr_len < 4_000, "{} bytes on stderr", e.stderr_len);
}

#[test]
fn regression_a_billion_replicas_or_workers_is_refused_not_allocated() {
    refused(
        "billion-replicas",
        r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 100.0)),
  "app": Server(replicas: 1000000000, service_time: Constant("1ms")),
})"#,
        "more than 100000 nodes",
    );
    refused(
        "billion-workers",
        r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 100.0)),
  "app": Server(workers: 1000000000, service_time: Constant("1ms")),
})"#,
        "expected at most 10000 workers per replica",
    );
}

#[test]
fn regression_duplicate_node_names_are_refused_not_run_with_zero_requests() {
    refused(
        "duplicate-nodes",
        r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 100.0)),
  "users": Client(target: "app", arrival: Poisson(rate: 100.0)),
  "app": Server(service_time: Constant("1ms")),
})"#,
        "key \"users\" appears twice in `nodes`",
    );
}

// Phase 2 of issue 17: each of these ran out of memory under the cap instead of stopping with
// exit 1 and a named limit. The memory budget (`limits.max_memory`, charged by the structures
// that grow with load) stops the first four; series capped at the run's windows and a drain
// that ends once no request is in flight let the last three finish.

/// Runs `src` under the default cap and checks it stops with exit 1 at the memory budget,
/// naming what grew and how to bound it.
fn stops_at_a_limit(test: &str, src: &str) {
    let stderr = ran(test, src, 1);
    assert!(stderr.contains("limits.max_memory"), "{stderr}");
    // The node whose structure grew, or the one the event queue's entries are for.
    assert!(
        stderr.contains("node \"") || stderr.contains("of them for \""),
        "{stderr}"
    );
}

#[test]
fn open_a_client_at_a_billion_requests_per_second_stops_at_a_limit() {
    stops_at_a_limit(
        "open-1e9-direct",
        r#"Scenario(name: "x", duration: "10s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 1e9), timeout: "10s"),
  "app": Server(workers: 4, service_time: Constant("1ms")),
})"#,
    );
}

#[test]
fn open_a_client_at_a_billion_requests_per_second_behind_a_balancer_stops_at_a_limit() {
    stops_at_a_limit(
        "open-1e9-lb",
        r#"Scenario(name: "x", duration: "10s", nodes: {
  "users": Client(target: "lb", arrival: Poisson(rate: 1e9), timeout: "10s"),
  "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], timeout: "10s"),
  "app": Server(replicas: 2, workers: 4, service_time: Constant("1ms")),
})"#,
    );
}

#[test]
fn open_an_overloaded_unbounded_queue_stops_at_a_limit() {
    stops_at_a_limit(
        "open-unbounded-queue",
        r#"Scenario(name: "x", duration: "600s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 1000000.0), timeout: "1000s"),
  "app": Server(workers: 4, service_time: Constant("1ms")),
})"#,
    );
}

#[test]
fn open_a_health_check_every_nanosecond_stops_at_a_limit() {
    stops_at_a_limit(
        "open-health-1ns",
        r#"Scenario(name: "x", duration: "60s", nodes: {
  "users": Client(target: "lb", arrival: Poisson(rate: 100.0)),
  "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"],
                     health_check: (interval: "1ns", timeout: "1s")),
  "app": Server(replicas: 4, service_time: Constant("1ms")),
})"#,
    );
}

/// Runs `src` under the cap and checks it ends normally: its series stop at the drain.
fn series_stay_bounded(test: &str, src: &str) {
    let stderr = ran(test, src, 0);
    assert!(!stderr.contains("memory allocation"), "{stderr}");
}

#[test]
fn open_a_100000h_retry_backoff_keeps_series_bounded() {
    series_stay_bounded(
        "open-backoff",
        r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 100.0), timeout: "10ms",
                  retry: (max_attempts: 3, backoff: Constant("100000h"))),
  "app": Server(service_time: Constant("100ms")),
})"#,
    );
}

#[test]
fn open_a_16h_service_time_with_a_million_hour_timeout_keeps_series_bounded() {
    series_stay_bounded(
        "open-16h",
        r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 10.0), timeout: "1000000h"),
  "app": Server(service_time: Constant("16h")),
})"#,
    );
}

#[test]
fn open_a_client_timeout_of_five_million_hours_keeps_series_bounded() {
    // Found by the fuzzer (seed 100532: cache-strategies.ron with `timeout: "5124095h"`).
    let src = std::fs::read_to_string(super::repo_root().join("scenarios/cache-strategies.ron"))
        .expect("scenario")
        .replacen("timeout: \"500ms\"", "timeout: \"5124095h\"", 1);
    series_stay_bounded("open-timeout", &src);
}
