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
