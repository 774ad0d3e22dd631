//! Replicated store and consistency checks: CAP measured against the checker and theory.

use super::{assert_holds, assert_violated, repo_root, run_text};
use archsim::Registry;
use archsim::results::{Results, VariantResult};
use archsim::runner::{RunOptions, run};
use archsim::scenario::parse;
use archsim::sim::rng::{RandomSource, SimRng};

/// Run committed scenario `scenarios/<stem>.ron` under another seed.
pub fn run_file_with_seed(stem: &str, seed: u64) -> Results {
    let file = repo_root().join("scenarios").join(format!("{stem}.ron"));
    let src = std::fs::read_to_string(&file).expect("scenario exists");
    let registry = Registry::builtin();
    let scenario = parse(stem, &src, &registry).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        seed: Some(seed),
        ..RunOptions::default()
    };
    run(&scenario, &registry, &opts).unwrap_or_else(|e| panic!("{e}"))
}

fn history(v: &VariantResult, counter: &str) -> f64 {
    v.components["history"][counter]
}

#[test]
fn the_cp_store_stays_linearizable_and_the_ap_store_does_not_over_seeds() {
    for seed in 1..=8 {
        let r = run_file_with_seed("cap-partition", seed);
        let cp = &r.variants[0];
        let ap = &r.variants[1];
        assert!(cp.name.starts_with("CP") && ap.name.starts_with("AP"));
        // CP: every key decided and linearizable, no stale read, no lost write; the minority
        // side pays in refusals.
        let at = format!("seed {seed}");
        assert_holds(cp, "history", "linearizable", &at);
        assert_holds(cp, "history", "no stale reads", &at);
        assert_holds(cp, "history", "no lost acknowledged writes", &at);
        assert_eq!(history(cp, "linearizable"), 1.0, "seed {seed}");
        assert!(
            cp.components["minority-side"]["failed"] > 100.0,
            "seed {seed}"
        );
        assert_eq!(cp.components["majority-side"]["failed"], 0.0, "seed {seed}");
        // AP: both sides served, and the checker shows the price, with a violation window.
        assert!(ap.availability > 0.99, "seed {seed}");
        assert_violated(ap, "history", "linearizable", &at);
        assert_violated(ap, "history", "no stale reads", &at);
        assert_eq!(history(ap, "linearizable"), 0.0, "seed {seed}");
        let windows = &ap.state_changes["history"];
        assert!(
            windows[0].what.contains("not linearizable"),
            "seed {seed}: {windows:?}"
        );
        // Stale reads only come from the partition: a violation starts with an operation
        // still in flight when it began at 4 s, so at most one client timeout (200 ms) before
        // (seed 2 has one from a write issued at 3.998 s, acknowledged at 4.002 s).
        assert!(windows.iter().all(|w| w.at_s >= 3.8), "seed {seed}");
    }
}

/// A 3-replica strict quorum store whose replicas are each down in independent 100 ms slots
/// with probability 1 - `a`; clients reach any replica that is up.
fn independent_failures(quorum: u32, a: f64, seed: u64) -> f64 {
    const SLOTS: u64 = 1000;
    let mut rng = SimRng::derive(seed, "slots");
    let mut faults = String::new();
    for replica in 0..3 {
        let up: Vec<bool> = (0..SLOTS).map(|_| rng.uniform() < a).collect();
        // One crash per maximal run of down slots.
        let mut slot = 0;
        while slot < up.len() {
            if up[slot] {
                slot += 1;
                continue;
            }
            let start = slot;
            while slot < up.len() && !up[slot] {
                slot += 1;
            }
            faults.push_str(&format!(
                "Crash(node: \"store-{replica}\", at: \"{}ms\", until: \"{}ms\"),\n",
                start * 100,
                slot * 100
            ));
        }
    }
    let src = format!(
        r#"Scenario(
            name: "independent failures",
            seed: {seed},
            duration: "{}s",
            network: (latency: Constant("200us")),
            nodes: {{
                "users": KvClient(target: "store", arrival: Poisson(rate: 200.0), timeout: "50ms",
                                  keys: Uniform(count: 50), write_fraction: 0.5),
                "store": ReplicatedStore(replicas: 3, read_quorum: {quorum}, write_quorum: {quorum},
                                         timeout: "20ms", anti_entropy_interval: None),
            }},
            faults: [{faults}],
        )"#,
        SLOTS / 10
    );
    run_text(&src).variants[0].availability
}

#[test]
fn quorum_availability_under_independent_failures_matches_the_binomial_formula() {
    // Each replica is up with probability a; a strict q-of-3 quorum is available when at least
    // q replicas are up: 2-of-3 w.p. 3a² - 2a³, 1-of-3 w.p. 1 - (1 - a)³. 1000 independent
    // slots give a standard error near 0.01; operations cut by a crash add a little loss.
    for (quorum, a, seed) in [(2, 0.8, 1), (2, 0.6, 2), (1, 0.5, 3)] {
        let want = match quorum {
            2 => 3.0 * a * a - 2.0 * a * a * a,
            _ => 1.0 - (1.0 - a) * (1.0 - a) * (1.0 - a),
        };
        let got = independent_failures(quorum, a, seed);
        assert!(
            (got - want).abs() < 0.035,
            "{quorum}-of-3 with a = {a}: measured {got}, binomial {want}"
        );
    }
}

#[test]
fn bad_quorums_and_fractions_are_errors_with_their_position() {
    let src = "Scenario(name: \"x\", duration: \"1s\", nodes: {\n  \"users\": KvClient(target: \"store\", arrival: Poisson(rate: 10.0), write_fraction: 1.5),\n  \"store\": ReplicatedStore(replicas: 3, write_quorum: 4),\n})";
    let err = parse("bad.ron", src, &Registry::builtin())
        .expect_err("the scenario should be rejected")
        .to_string();
    for needle in [
        "bad.ron:2:",
        "expected a number from 0.0 to 1.0",
        "bad.ron:3:",
        "a quorum of 4 out of 3 replicas",
        "expected a count from 1 to 3",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
}

#[test]
fn the_committed_replication_modes_keep_their_guarantees_over_seeds() {
    // Sync and semi-sync acknowledge only what a follower holds, and the vote rule elects a
    // replica holding every acknowledged write: no seed may lose one, and with crash faults
    // only, leader reads stay linearizable. The election never has two leaders in a term.
    for seed in 1..=4 {
        let r = run_file_with_seed("replication-modes", seed);
        for v in &r.variants {
            let election = &v.components["election"];
            assert_eq!(election["terms_with_two_leaders"], 0.0, "seed {seed}");
            assert!(election["leaders_elected"] >= 1.0, "seed {seed}");
            if v.name.starts_with("async") {
                continue;
            }
            // Sync's writes time out while a follower is down: keys with many indeterminate
            // writes, each of which may or may not have taken effect. Every key must still be
            // decided, and all 50 keys were used.
            let at = format!("seed {seed}");
            assert_holds(v, "history", "no lost acknowledged writes", &at);
            assert_holds(v, "history", "linearizable", &at);
            assert_eq!(history(v, "keys_linearizable"), 50.0, "{at}, {}", v.name);
        }
    }
}
