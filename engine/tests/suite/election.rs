//! Leader/follower replication and its Raft-style election: at most one leader per term under
//! random crashes and partitions, step-down, split votes, failover time against the timeouts,
//! and what each replication mode loses, checked by the run-wide history.

use super::{assert_holds, assert_violated, run_text};
use archsim::Registry;
use archsim::results::{Results, VariantResult};
use archsim::scenario::parse;

/// A 3- (or `replicas`-) replica leader/follower store under `faults`, with one client.
fn store(replicas: u32, mode: &str, faults: &str, duration: &str, rate: f64, seed: u64) -> String {
    format!(
        r#"Scenario(
    name: "election test", seed: {seed}, duration: "{duration}", warmup: "0s", window: "250ms",
    network: (latency: LogNormal(median: "500us", p99: "3ms")),
    nodes: {{
        "users": KvClient(target: "store", arrival: Poisson(rate: {rate}), timeout: "300ms",
                          keys: Uniform(count: 20), write_fraction: 0.5),
        "store": ReplicatedStore(replicas: {replicas}, timeout: "200ms", mode: LeaderFollower({mode})),
    }},
    faults: [{faults}],
)"#
    )
}

fn c(v: &VariantResult, node: &str, counter: &str) -> f64 {
    v.components[node][counter]
}

fn one(r: &Results) -> &VariantResult {
    &r.variants[0]
}

/// The name of the first leader elected (same seed, same timeline up to the first fault).
fn first_leader(v: &VariantResult) -> String {
    let e = v.state_changes["election"]
        .iter()
        .find(|e| e.what.contains("(first leader)"))
        .expect("a first leader");
    e.what.split(' ').next().expect("a name").to_string()
}

#[test]
fn never_two_leaders_in_one_term_under_random_crashes_and_partitions() {
    let faults = r#"
        Random(kind: Crash, node: "store", mean_interval: "700ms", duration: "400ms"),
        Random(kind: Isolate, node: "store", mean_interval: "900ms", duration: "500ms"),
        Random(kind: PacketLoss(loss: 0.3), node: "store", mean_interval: "1s", duration: "300ms"),
    "#;
    let mut elections = 0.0;
    for seed in 1..=30 {
        let r = run_text(&store(
            5,
            "replication: SemiSync(acks: 2)",
            faults,
            "4s",
            50.0,
            seed,
        ));
        let v = one(&r);
        assert_eq!(
            c(v, "election", "terms_with_two_leaders"),
            0.0,
            "seed {seed}"
        );
        assert!(c(v, "election", "leaders_elected") >= 1.0, "seed {seed}");
        // A majority-acknowledged write survives any leader change.
        assert_eq!(
            c(v, "history", "lost_acknowledged_writes"),
            0.0,
            "seed {seed}"
        );
        elections += c(v, "election", "leaders_elected");
    }
    // The faults did force failovers.
    assert!(
        elections > 60.0,
        "{elections} leaders elected over 30 seeds"
    );
}

#[test]
fn a_partitioned_leader_keeps_leading_until_it_hears_a_higher_term() {
    for (mode, lost) in [
        ("replication: Async(batch_interval: \"20ms\")", true),
        ("replication: Sync", false),
    ] {
        let clean = run_text(&store(3, mode, "", "1s", 100.0, 3));
        let leader = first_leader(one(&clean));
        // The leader and one client side are cut off from 1 s to 2 s; another client reaches
        // the majority.
        let src = store(3, mode, "", "3s", 100.0, 3).replace(
            r#""users": KvClient"#,
            r#""other": KvClient(target: "store", arrival: Poisson(rate: 100.0), timeout: "300ms", keys: Uniform(count: 20)),
        "users": KvClient"#,
        );
        let fault = format!(r#"Partition(groups: [["users", "{leader}"]], at: "1s", until: "2s")"#);
        let r = run_text(&src.replace("faults: []", &format!("faults: [{fault}]")));
        let v = one(&r);
        let events = &v.state_changes["election"];
        assert!(
            events
                .iter()
                .any(|e| e.what.contains("elected leader of term 2")
                    && e.at_s > 1.0
                    && e.at_s < 1.5),
            "{mode}: {events:?}"
        );
        // The old leader learns of term 2 only when the partition heals.
        let down = events
            .iter()
            .find(|e| {
                e.what
                    .starts_with(&format!("{leader} (leader of term 1) stepped down"))
            })
            .unwrap_or_else(|| panic!("{mode}: {events:?}"));
        assert!(down.at_s >= 2.0 && down.at_s < 2.1, "{mode}: {down:?}");
        assert_eq!(c(v, &leader, "steps_down"), 1.0);
        assert_eq!(c(v, "election", "terms_with_two_leaders"), 0.0);
        let lost_writes = c(v, "history", "lost_acknowledged_writes");
        if lost {
            // Async: the isolated leader acknowledged writes no one else has: all lost, and it
            // discarded them when it rejoined.
            assert!(lost_writes > 10.0, "{mode}: {lost_writes}");
            assert!(c(v, &leader, "acknowledged_writes_discarded") >= lost_writes);
        } else {
            // Sync: it could acknowledge nothing while cut off.
            assert_eq!(lost_writes, 0.0, "{mode}");
        }
    }
}

#[test]
fn split_votes_are_retried_until_one_candidate_wins() {
    let mut started = 0.0;
    let mut elected = 0.0;
    for seed in 1..=10 {
        // Five replicas whose timeouts nearly coincide: candidacies collide often.
        let mode = r#"election_timeout_min: "150ms", election_timeout_max: "152ms", heartbeat_interval: "50ms""#;
        let r = run_text(&store(5, mode, "", "2s", 10.0, seed));
        let v = one(&r);
        let first = c(v, "election", "first_leader_s");
        assert!(
            first > 0.0 && first < 1.5,
            "seed {seed}: first leader at {first}s"
        );
        assert_eq!(c(v, "election", "terms_with_two_leaders"), 0.0);
        started += c(v, "election", "elections_started");
        elected += c(v, "election", "leaders_elected");
    }
    assert!(
        started > elected,
        "no split vote: {started} candidacies, {elected} leaders"
    );
}

#[test]
fn time_without_a_leader_after_a_crash_is_within_the_election_timeouts() {
    for seed in 1..=6 {
        let clean = run_text(&store(3, "", "", "1s", 100.0, seed));
        let leader = first_leader(one(&clean));
        let fault = format!(r#"Crash(node: "{leader}", at: "1s", until: "3s")"#);
        let r = run_text(&store(3, "", &fault, "2s", 100.0, seed));
        let v = one(&r);
        assert_eq!(c(v, "election", "leaderless_periods"), 1.0, "seed {seed}");
        let gap = c(v, "election", "leaderless_max_ms");
        // A follower's timer, in [150, 300] ms, runs from the last heartbeat it heard (at most
        // 50 ms before the crash), then one vote round trip (a few ms).
        assert!((100.0..=310.0).contains(&gap), "seed {seed}: {gap} ms");
    }
}

#[test]
fn a_disruptive_election_is_measured_from_the_step_down_not_from_the_cut_off() {
    for seed in 1..=4 {
        let clean = run_text(&store(3, "", "", "1s", 20.0, seed));
        let leader = first_leader(one(&clean));
        let follower = ["store-0", "store-1", "store-2"]
            .into_iter()
            .find(|r| *r != leader)
            .expect("a follower");
        // The follower is cut off for a second and keeps starting elections; when it is back,
        // its higher term deposes a leader that never lost its majority.
        let fault = format!(r#"Isolate(node: "{follower}", at: "1s", until: "2s")"#);
        let r = run_text(&store(3, "", &fault, "3s", 20.0, seed));
        let v = one(&r);
        assert_eq!(c(v, "election", "disruptive_elections"), 1.0, "seed {seed}");
        assert_eq!(c(v, "election", "leaderless_periods"), 1.0, "seed {seed}");
        // From the step-down: one election timeout at most (in [150, 300] ms) and a vote
        // round trip, not the second the follower spent cut off.
        let gap = c(v, "election", "leaderless_max_ms");
        assert!(gap < 320.0, "seed {seed}: {gap} ms");
        assert_eq!(c(v, "election", "leaderless_mean_ms"), gap);
        assert_eq!(c(v, "election", "terms_with_two_leaders"), 0.0);
    }
}

/// Every replica crashes in turn, so the leader does too, whoever it is.
const ROLLING_CRASHES: &str = r#"
    Crash(node: "store-0", at: "1s", until: "1.6s"),
    Crash(node: "store-1", at: "2s", until: "2.6s"),
    Crash(node: "store-2", at: "3s", until: "3.6s"),
"#;

#[test]
fn sync_loses_no_acknowledged_write_and_stays_linearizable_async_loses_some() {
    let mut async_lost = 0.0;
    for seed in 1..=5 {
        let sync = run_text(&store(
            3,
            "replication: Sync",
            ROLLING_CRASHES,
            "4s",
            300.0,
            seed,
        ));
        let v = one(&sync);
        assert!(c(v, "election", "leaders_elected") >= 2.0, "seed {seed}");
        assert_eq!(
            c(v, "history", "lost_acknowledged_writes"),
            0.0,
            "seed {seed}"
        );
        // Leader reads of acknowledged values, crash faults only: linearizable.
        let at = format!("seed {seed}");
        assert_holds(v, "history", "linearizable", &at);
        assert_holds(v, "history", "no stale reads", &at);
        assert_holds(v, "election", "one leader per term", &at);
        let mode = r#"replication: Async(batch_interval: "20ms")"#;
        let r = run_text(&store(3, mode, ROLLING_CRASHES, "4s", 300.0, seed));
        async_lost += c(one(&r), "history", "lost_acknowledged_writes");
    }
    assert!(async_lost > 0.0);
}

#[test]
fn follower_reads_are_stale_and_leader_reads_are_not() {
    let follower = r#"replication: Async(batch_interval: "20ms"), reads: Follower"#;
    let r = run_text(&store(3, follower, "", "3s", 400.0, 1));
    let v = one(&r);
    assert!(c(v, "history", "stale_reads") > 0.0);
    assert_violated(v, "history", "linearizable", "follower reads");
    // Heartbeats between batches show the followers behind.
    let lag = (0..3)
        .map(|i| c(v, &format!("store-{i}"), "replication_lag_max_entries"))
        .fold(0.0, f64::max);
    assert!(lag >= 1.0, "{lag}");
    let leader = r#"replication: Async(batch_interval: "20ms"), reads: Leader"#;
    let r = run_text(&store(3, leader, "", "3s", 400.0, 1));
    assert_eq!(c(one(&r), "history", "stale_reads"), 0.0);
    assert_holds(one(&r), "history", "linearizable", "leader reads");
}

#[test]
fn bad_leader_follower_options_are_reported_with_their_place() {
    let registry = Registry::builtin();
    for (mode, expected) in [
        (
            "replication: SemiSync(acks: 3)",
            "expected a count from 1 to 2",
        ),
        (
            r#"election_timeout_min: "400ms", election_timeout_max: "300ms""#,
            "expected min <= max",
        ),
        (
            r#"heartbeat_interval: "200ms""#,
            "below election_timeout_min",
        ),
    ] {
        let src = store(3, mode, "", "1s", 10.0, 1);
        let err = parse("test.ron", &src, &registry)
            .err()
            .unwrap_or_else(|| panic!("{mode} accepted"))
            .to_string();
        assert!(err.contains("test.ron:7:"), "{mode}: {err}");
        assert!(err.contains(expected), "{mode}: {err}");
    }
}
