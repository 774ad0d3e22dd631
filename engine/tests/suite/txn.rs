//! Distributed transactions: exact costs without faults, atomicity of 2PC under a swarm of
//! random crash, partition and loss schedules, of 3PC under crashes alone, the 3PC split under
//! a partition, and 2PC blocking for at least as long as its coordinator is down.

use super::{assert_holds, assert_violated, repo_root, run_text, verdict};
use archsim::results::{Results, VariantResult};

fn counter(v: &VariantResult, node: &str, name: &str) -> f64 {
    v.components[node][name]
}

fn violations(v: &VariantResult) -> f64 {
    let atomic = verdict(v, "txn-checker", "atomic commit");
    assert_eq!(
        atomic.violated as f64,
        counter(v, "txn-checker", "atomicity_violations"),
        "the verdict and the counter agree"
    );
    atomic.violated as f64
}

/// Transactions the atomicity checker decided, and those it could not (still unsettled when
/// the run ended).
fn decided(v: &VariantResult) -> (u64, u64) {
    let atomic = verdict(v, "txn-checker", "atomic commit");
    (atomic.checked, atomic.unchecked)
}

/// Participant parameters of the fault tests: some no-votes and lock conflicts.
const SHARD: &str =
    r#"prepare_time: Exponential(mean: "2ms"), vote_no: 0.02, keys: Uniform(count: 300)"#;

/// A small transaction system: `clients`, `coord`, four shards.
fn system(protocol: &str, seed: u64, shard_extra: &str, network: &str, faults: &str) -> String {
    let shard = if shard_extra.starts_with(',') {
        format!("{SHARD}{shard_extra}")
    } else {
        shard_extra.to_string()
    };
    format!(
        r#"Scenario(
            name: "txn", seed: {seed}, duration: "4s", window: "250ms",
            network: ({network}),
            nodes: {{
                "clients": TxnClient(coordinator: "coord", participants: "shard", k: 3,
                                     arrival: Poisson(rate: 300.0), timeout: "1s"),
                "coord": TxnCoordinator(protocol: {protocol}, participants: "shard"),
                "shard": TxnParticipant(replicas: 4, coordinator: "coord", {shard}),
            }},
            faults: [{faults}],
        )"#
    )
}

#[test]
fn without_faults_messages_lock_hold_and_latency_match_hand_counts() {
    // Constant 1 ms links and 2 ms prepares, no conflicts, no no-votes: every number is exact.
    // 2PC: Begin, k Prepare, k Vote, k Decide, k Ack, Outcome = 4k + 2 messages; a lock is held
    // from prepare start to the decision: 2 ms + vote 1 ms + decide 1 ms = 4 ms; the client
    // sees Begin + Prepare + 2 ms + Vote + Outcome = 6 ms. 3PC adds PreCommit and its ack (2k
    // messages, 2 ms); a saga holds its lock only for the step and sends no decision.
    let k = 3.0;
    for (protocol, messages, hold_ms, latency_ms) in [
        ("TwoPhase", 4.0 * k + 2.0, 4.0, 6.0),
        ("ThreePhase", 6.0 * k + 2.0, 6.0, 8.0),
        ("Saga", 2.0 * k + 2.0, 2.0, 6.0),
    ] {
        let text = system(
            protocol,
            5,
            r#"prepare_time: Constant("2ms"), vote_no: 0.0, keys: Uniform(count: 1000000000)"#,
            r#"latency: Constant("1ms")"#,
            "",
        );
        let r = run_text(&text);
        let v = &r.variants[0];
        assert_eq!(
            v.errors.get("aborted").copied().unwrap_or(0),
            0,
            "{protocol}"
        );
        assert_eq!(violations(v), 0.0);
        let c = &v.components["txn-checker"];
        assert!(
            (c["messages_per_txn"] - messages).abs() < 1e-9,
            "{protocol}: {} messages per txn, expected {messages}",
            c["messages_per_txn"]
        );
        assert!(
            (c["lock_hold_mean_ms"] - hold_ms).abs() < 1e-6,
            "{protocol}: lock hold {} ms, expected {hold_ms}",
            c["lock_hold_mean_ms"]
        );
        let p50 = v.latency_ms.p50;
        assert!(
            (p50 - latency_ms).abs() / latency_ms < 0.01,
            "{protocol}: p50 {p50} ms, expected {latency_ms}"
        );
        assert_eq!(c["unsettled_at_end"], 0.0);
    }
}

/// Deterministic pseudo-random numbers for generating fault schedules (SplitMix64).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A window inside [0.2 s, 3.8 s): "at" and "until" in milliseconds.
    fn window(&mut self) -> (u64, u64) {
        let at = 200 + self.below(3000);
        (at, (at + 50 + self.below(1500)).min(3800))
    }
}

const NODES: [&str; 5] = ["coord", "shard-0", "shard-1", "shard-2", "shard-3"];

fn random_crash(g: &mut Gen) -> String {
    let (at, until) = g.window();
    let node = NODES[g.below(5) as usize];
    format!(r#"Crash(node: "{node}", at: "{at}ms", until: "{until}ms"),"#)
}

fn random_network_fault(g: &mut Gen) -> String {
    let (at, until) = g.window();
    match g.below(3) {
        0 | 1 => {
            // Split the five nodes into two non-empty sides.
            let mask = 1 + g.below(30);
            let side = |bit: u64| -> String {
                (0..5)
                    .filter(|i| (mask >> i) & 1 == bit)
                    .map(|i| format!("\"{}\"", NODES[i]))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let one_way = g.below(2) == 0;
            format!(
                r#"Partition(groups: [[{}], [{}]], one_way: {one_way}, at: "{at}ms", until: "{until}ms"),"#,
                side(1),
                side(0)
            )
        }
        _ => {
            let loss = 0.05 + g.below(40) as f64 / 100.0;
            format!(r#"LinkChange(loss: {loss}, at: "{at}ms", until: "{until}ms"),"#)
        }
    }
}

#[test]
fn two_pc_never_violates_atomicity_under_random_crashes_partitions_and_loss() {
    let mut g = Gen(2026);
    let (mut blocked_s, mut committed, mut faults_run) = (0.0, 0u64, 0);
    let mut decided_all = 0;
    for case in 0..24 {
        let mut faults = String::new();
        for _ in 0..1 + g.below(4) {
            faults += &if g.below(2) == 0 {
                random_crash(&mut g)
            } else {
                random_network_fault(&mut g)
            };
            faults_run += 1;
        }
        let coop = if case % 2 == 0 {
            ", cooperative_termination: true"
        } else {
            ","
        };
        let seed = g.below(1000);
        let text = system(
            "TwoPhase",
            seed,
            coop,
            r#"latency: LogNormal(median: "2ms", p99: "20ms")"#,
            &faults,
        );
        let r = run_text(&text);
        let v = &r.variants[0];
        assert_eq!(
            violations(v),
            0.0,
            "2PC violated atomicity, seed {seed}, faults {faults}: {:?}",
            v.state_changes.get("txn-checker")
        );
        // Every transaction settled before the run ended, so every one was decided.
        let (checked, unchecked) = decided(v);
        assert!(
            checked > 0 && unchecked == 0,
            "seed {seed}: {checked} decided, {unchecked} not"
        );
        decided_all += checked;
        blocked_s += counter(v, "txn-checker", "blocked_participant_s");
        committed += v.ok;
    }
    // The swarm did exercise the protocol and its blocking.
    assert!(
        faults_run >= 24 && committed > 24 * 500,
        "{committed} commits"
    );
    assert!(blocked_s > 1.0, "{blocked_s} s blocked over the swarm");
    assert!(decided_all > 24 * 500, "{decided_all} transactions decided");
}

#[test]
fn three_pc_never_violates_atomicity_under_crashes_alone() {
    let mut g = Gen(7);
    let mut by_timeout = 0.0;
    for _ in 0..16 {
        let mut faults = String::new();
        for _ in 0..1 + g.below(4) {
            faults += &random_crash(&mut g);
        }
        let seed = g.below(1000);
        let text = system(
            "ThreePhase",
            seed,
            ",",
            r#"latency: LogNormal(median: "2ms", p99: "20ms")"#,
            &faults,
        );
        let r = run_text(&text);
        let v = &r.variants[0];
        assert_eq!(
            violations(v),
            0.0,
            "3PC violated atomicity under crashes alone, seed {seed}, faults {faults}: {:?}",
            v.state_changes.get("txn-checker")
        );
        let (checked, unchecked) = decided(v);
        assert!(
            checked > 500 && unchecked == 0,
            "seed {seed}: {checked} decided, {unchecked} not"
        );
        for s in 0..4 {
            let shard = format!("shard-{s}");
            by_timeout += counter(v, &shard, "commit_by_timeout");
            by_timeout += counter(v, &shard, "abort_by_timeout");
        }
    }
    assert!(
        by_timeout > 0.0,
        "the crashes made 3PC participants terminate on their own"
    );
}

fn committed_scenario() -> Results {
    let path = repo_root().join("scenarios/2pc-vs-3pc.ron");
    run_text(&std::fs::read_to_string(path).expect("the scenario is committed"))
}

#[test]
fn a_partition_during_pre_commit_splits_3pc_and_the_checker_lists_each_violation() {
    let r = committed_scenario();
    let by_name = |n: &str| r.variants.iter().find(|v| v.name == n).expect("variant");
    let (two, three, saga) = (by_name("2PC"), by_name("3PC"), by_name("saga"));
    assert_eq!(violations(two), 0.0, "2PC stays atomic");
    assert_holds(two, "txn-checker", "atomic commit", "2pc-vs-3pc");
    assert_violated(three, "txn-checker", "atomic commit", "2pc-vs-3pc");
    assert_eq!(
        violations(saga),
        0.0,
        "every saga ends all applied or all compensated"
    );
    let n = violations(three);
    assert!(n >= 5.0, "3PC split {n} transactions");
    let listed: Vec<_> = three.state_changes["txn-checker"]
        .iter()
        .filter(|e| e.what.starts_with("atomicity violation: txn "))
        .collect();
    assert_eq!(listed.len() as f64, n, "each violation is listed");
    for e in &listed {
        // Each split happens while a partition lasts or within one participant timeout after.
        let in_partition = [20.0, 23.0, 26.0]
            .iter()
            .any(|&start| (start..start + 1.6).contains(&e.at_s));
        assert!(in_partition, "violation outside the partitions: {e:?}");
        assert!(e.what.contains(" committed at shard-") && e.what.contains(" aborted at shard-"));
    }
    // 2PC stays in doubt through the whole 4 s coordinator crash, blocked for all of it but
    // the 100 ms vote timeout a working coordinator would have taken; 3PC gives up after its
    // 500 ms timeout, 200 ms past its coordinator's vote and ack timeouts.
    let c = |v, name| counter(v, "txn-checker", name);
    assert!(c(two, "in_doubt_max_ms") >= 4000.0);
    assert!(c(two, "blocked_max_ms") >= 3900.0);
    assert!(c(three, "blocked_max_ms") < 400.0);
    // Ordinary voting keeps 3PC participants in doubt longer (an extra round), but it is 2PC
    // that blocks.
    assert!(c(three, "in_doubt_participant_s") > c(two, "in_doubt_participant_s"));
    assert!(c(two, "blocked_participant_s") > 2.0 * c(three, "blocked_participant_s"));
    // Sagas hold no locks across the transaction but show partial effects for a while.
    assert_eq!(counter(saga, "txn-checker", "blocked_participant_s"), 0.0);
    assert!(counter(saga, "txn-checker", "partial_window_mean_ms") > 0.0);
}

/// Episodes in doubt listed by the checker: (start s, length s).
fn blocked_episodes(v: &VariantResult) -> Vec<(f64, f64)> {
    v.state_changes
        .get("txn-checker")
        .map(|events| {
            events
                .iter()
                .filter_map(|e| {
                    let rest = e.what.split(" in doubt ").nth(1)?;
                    let (len, rest) = rest.split_once("s from ")?;
                    let (from, _) = rest.split_once("s, blocked ")?;
                    Some((from.parse().ok()?, len.parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn under_a_coordinator_crash_of_length_d_2pc_blocks_at_least_d_for_every_prepared_txn() {
    let (crash_s, d_s) = (1.5, 0.8);
    let faults = format!(
        r#"Crash(node: "coord", at: "{crash_s}s", until: "{}s"),"#,
        crash_s + d_s
    );
    for (protocol, blocks) in [("TwoPhase", true), ("ThreePhase", false)] {
        let text = system(
            protocol,
            3,
            r#", log_blocked_over: "0s""#,
            r#"latency: Constant("2ms")"#,
            &faults,
        )
        .replace("rate: 300.0", "rate: 100.0");
        let r = run_text(&text);
        let v = &r.variants[0];
        assert_eq!(counter(v, "txn-checker", "blocked_episodes_unlisted"), 0.0);
        let episodes = blocked_episodes(v);
        // Every branch prepared (voted yes, outcome unknown) when the coordinator crashed,
        // except those whose decision was already on its way (sent before the crash, so it
        // arrives within one 2 ms link delay).
        let in_flight_s = 0.002 + 1e-9;
        let at_crash: Vec<_> = episodes
            .iter()
            .filter(|&&(from, len)| from <= crash_s && from + len > crash_s + in_flight_s)
            .collect();
        assert!(
            at_crash.len() >= 2,
            "{protocol}: {} prepared at the crash",
            at_crash.len()
        );
        for &&(from, len) in &at_crash {
            if blocks {
                assert!(
                    len >= d_s,
                    "2PC branch prepared at {from}s blocked only {len}s"
                );
            } else {
                assert!(len < d_s, "3PC branch prepared at {from}s blocked {len}s");
            }
        }
    }
}

#[test]
fn cooperative_termination_unblocks_2pc_participants_whose_peer_has_not_voted() {
    // Slow prepares: at the crash some participants of a transaction have voted and others
    // not; asking the latter makes them abort, which the blocked ones may then do too.
    let shard = r#"prepare_time: Exponential(mean: "40ms"), timeout: "100ms""#;
    let faults = r#"Crash(node: "coord", at: "1s", until: "3s"),"#;
    let run = |extra: &str| {
        let text = system(
            "TwoPhase",
            4,
            &format!("{shard}{extra}"),
            r#"latency: Constant("2ms")"#,
            faults,
        );
        let r = run_text(&text);
        let v = &r.variants[0];
        assert_eq!(violations(v), 0.0);
        let answered: f64 = (0..4)
            .map(|s| counter(v, &format!("shard-{s}"), "resolved_by_answer"))
            .sum();
        (counter(v, "txn-checker", "blocked_participant_s"), answered)
    };
    let (blocked_alone, _) = run(",");
    let (blocked_coop, answered) = run(", cooperative_termination: true");
    assert!(answered > 0.0, "peers answered");
    assert!(
        blocked_coop + 5.0 < blocked_alone,
        "cooperative termination: {blocked_coop} s blocked, without: {blocked_alone} s"
    );
}

#[test]
fn a_saga_compensates_failed_steps_and_never_leaves_partial_effects() {
    let text = system(
        "Saga",
        9,
        r#"prepare_time: Exponential(mean: "2ms"), vote_no: 0.1"#,
        r#"latency: Constant("1ms")"#,
        r#"Crash(node: "coord", at: "1s", until: "1500ms"), Crash(node: "shard-1", at: "2s", until: "2200ms"),"#,
    );
    let r = run_text(&text);
    let v = &r.variants[0];
    let c = &v.components["txn-checker"];
    let compensated: f64 = (0..4)
        .map(|s| counter(v, &format!("shard-{s}"), "compensated"))
        .sum();
    assert!(compensated > 100.0, "{compensated} steps compensated");
    assert_eq!(
        c["unsettled_at_end"], 0.0,
        "every saga ends all applied or all undone"
    );
    assert_eq!(c["blocked_participant_s"], 0.0);
    // A window lasts at least the step, and a failed saga's lasts until its compensation.
    assert!(c["partial_window_mean_ms"] >= 1.0 && c["partial_window_max_ms"] > 4.0);
    assert!(v.errors["aborted"] > 0);
}

#[test]
fn more_participants_per_txn_than_the_group_has_is_an_error_at_the_field() {
    let text =
        system("TwoPhase", 1, ",", r#"latency: Constant("1ms")"#, "").replace("k: 3", "k: 5");
    let registry = archsim::Registry::builtin();
    let err = archsim::scenario::parse("txn.ron", &text, &registry)
        .expect_err("k = 5 of 4 participants")
        .to_string();
    assert!(err.contains("k = 5 with 4 participants"), "{err}");
    assert!(
        err.contains("txn.ron:5:86") && err.contains("expected 1 to 4"),
        "{err}"
    );
}

#[test]
fn two_pc_stays_atomic_in_the_committed_scenario_over_a_range_of_seeds() {
    let text = std::fs::read_to_string(repo_root().join("scenarios/2pc-vs-3pc.ron"))
        .expect("the scenario is committed");
    // The base scenario alone (2PC), with its variants cut off.
    let base = format!("{})", text.split("    variants:").next().expect("text"));
    for seed in 1..=4 {
        let r = run_text(&base.replace("seed: 11", &format!("seed: {seed}")));
        let v = &r.variants[0];
        assert_eq!(violations(v), 0.0, "seed {seed}");
        let (checked, unchecked) = decided(v);
        assert!(
            checked > 20_000 && unchecked == 0,
            "seed {seed}: {checked} decided, {unchecked} not"
        );
        assert!(
            counter(v, "txn-checker", "in_doubt_max_ms") >= 4000.0,
            "seed {seed}"
        );
    }
}

/// One transaction at t = 1 s over shards 0..k with 1 ms links and 2 ms prepares: Begin
/// arrives at 1.001 s, Prepare at 1.002, votes at 1.005, PreCommit (3PC) at 1.006, acks at
/// 1.007. `crash` is a fault text run against that timeline.
fn one_txn(protocol: &str, crash: &str) -> VariantResult {
    let text = format!(
        r#"Scenario(
            name: "one", seed: 1, duration: "5s",
            network: (latency: Constant("1ms")),
            nodes: {{
                "clients": TxnClient(coordinator: "coord", participants: "shard", k: 2,
                                     arrival: Constant(rate: 1.0), max_requests: 1, timeout: "4s"),
                "coord": TxnCoordinator(protocol: {protocol}, participants: "shard"),
                "shard": TxnParticipant(replicas: 2, coordinator: "coord",
                                        prepare_time: Constant("2ms")),
            }},
            faults: [{crash}],
        )"#
    );
    run_text(&text).variants.remove(0)
}

fn both(v: &VariantResult, name: &str) -> f64 {
    counter(v, "shard-0", name) + counter(v, "shard-1", name)
}

#[test]
fn state_machines_follow_their_diagrams_around_a_coordinator_crash() {
    let crash = |at: &str| format!(r#"Crash(node: "coord", at: "{at}", until: "2s"),"#);
    // 3PC, crash after pre-commit went out: both participants commit on their own after the
    // 500 ms timeout, and the restarted coordinator, finding pre-commit logged, commits too.
    let v = one_txn("ThreePhase", &crash("1005500us"));
    assert_eq!(both(&v, "commit_by_timeout"), 2.0);
    assert_eq!(counter(&v, "coord", "recovered_after_restart"), 1.0);
    assert_eq!(counter(&v, "coord", "committed"), 1.0);
    assert_eq!((v.ok, violations(&v)), (1, 0.0));
    // 3PC, crash before the votes arrive: both abort on their own, and so does the coordinator.
    let v = one_txn("ThreePhase", &crash("1004500us"));
    assert_eq!(both(&v, "abort_by_timeout"), 2.0);
    assert_eq!(counter(&v, "coord", "aborted"), 1.0);
    assert_eq!((v.errors["aborted"], violations(&v)), (1, 0.0));
    // 2PC, same crash: both participants stay blocked until the restart at 2 s, ask every
    // 500 ms, and learn the abort from the recovered coordinator; nothing is decided alone.
    let v = one_txn("TwoPhase", &crash("1004500us"));
    assert_eq!(
        both(&v, "abort_by_timeout") + both(&v, "commit_by_timeout"),
        0.0
    );
    assert_eq!(both(&v, "aborted"), 2.0);
    let in_doubt_ms = counter(&v, "txn-checker", "in_doubt_max_ms");
    // In doubt from the vote at 1.004 s until the abort arrives at 2.001 s; blocked from
    // 100 ms (the default vote timeout) after the vote.
    assert!((in_doubt_ms - 997.0).abs() < 1e-6, "{in_doubt_ms} ms");
    let blocked_ms = counter(&v, "txn-checker", "blocked_max_ms");
    assert!((blocked_ms - 897.0).abs() < 1e-6, "{blocked_ms} ms");
    // A saga whose coordinator crashes after both steps committed compensates both on restart.
    let v = one_txn("Saga", &crash("1004500us"));
    assert_eq!(both(&v, "compensated"), 2.0);
    assert_eq!(counter(&v, "txn-checker", "partial_window_max_ms"), 997.0);
}

#[test]
fn a_participant_that_restarts_prepared_asks_instead_of_deciding_alone() {
    // shard-1 crashes right after voting yes (1.004 s) and misses the pre-commit; the others
    // commit. On restart it asks the coordinator, which still has the commit logged (shard-1
    // never acknowledged it), so it commits too, even under 3PC.
    let v = one_txn(
        "ThreePhase",
        r#"Crash(node: "shard-1", at: "1004500us", until: "3s"),"#,
    );
    assert_eq!(both(&v, "committed"), 2.0);
    assert_eq!(counter(&v, "shard-1", "resolved_by_answer"), 1.0);
    assert_eq!(both(&v, "abort_by_timeout"), 0.0);
    assert_eq!(violations(&v), 0.0);
    assert_eq!(counter(&v, "coord", "log_entries_at_end"), 0.0);
}
