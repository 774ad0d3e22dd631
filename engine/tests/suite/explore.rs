//! `archsim explore` end to end: the three must-show cases (async replication loses
//! acknowledged writes to one leader crash; 2PC stays atomic; 3PC breaks atomicity under one
//! partition), byte-identical output at any thread count, and its errors and limits.

use super::harness::{archsim, scratch};
use std::path::Path;

const REPLICATION: &[&str] = &[
    "explore",
    "scenarios/replication-modes.ron",
    "--variant",
    "async (20ms batches)",
    "--kinds",
    "crash",
];

/// The replication case with this objective and budget, and `extra` options.
fn replication<'a>(objective: &'a str, budget: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = REPLICATION.to_vec();
    args.extend(["--objective", objective, "--budget", budget]);
    args.extend(extra);
    args
}

fn explore(args: &[&str], out: &Path, jobs: &str) -> super::harness::Ended {
    let out = out.display().to_string();
    let mut all = args.to_vec();
    all.extend(["--out", &out, "-j", jobs]);
    archsim(&super::repo_root(), &all)
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The `faults:` entries of a scenario text, one per line.
fn faults(scenario: &str) -> Vec<&str> {
    let start = scenario.find("    faults: [").expect("a faults block");
    let block = &scenario[start..];
    let end = block.find("\n    ],").expect("the block ends");
    block[..end].lines().skip(1).map(str::trim).collect()
}

fn violated(results: &str, property: &str) -> u64 {
    let r: archsim::results::Results = serde_json::from_str(results).expect("results.json");
    r.variants[0]
        .verdicts
        .values()
        .flatten()
        .filter(|v| v.property == property)
        .map(|v| v.violated)
        .sum()
}

#[test]
fn async_replication_loses_acknowledged_writes_to_one_leader_crash_at_any_thread_count() {
    let (a, b) = (scratch("explore-j2"), scratch("explore-j1"));
    let args = replication("no-lost-writes", "16", &[]);
    explore(&args, &a, "2").expect_code(3);
    explore(&args, &b, "1").expect_code(3);
    let files = super::files_in(&a);
    assert_eq!(files, super::files_in(&b));
    for f in &files {
        let same = std::fs::read(a.join(f)).ok() == std::fs::read(b.join(f)).ok();
        assert!(same, "{f} differs between -j 2 and -j 1");
    }
    let found = read(&a, "found.ron");
    assert_eq!(
        faults(&found),
        ["Crash(node: \"store-0\", at: \"3s\", until: \"3.001s\"),"],
        "shrunk to one crash of the leader:\n{found}"
    );
    let results = read(&a, "results.json");
    assert!(violated(&results, "no lost acknowledged writes") > 0);
    assert!(
        results.contains("store-0 (leader of term 1) crashed"),
        "the crashed node was the leader"
    );
    let md = read(&a, "explore.md");
    assert!(
        md.contains("## Broken") && md.contains("from 2 faults to 1"),
        "{md}"
    );
    let committed = super::repo_root().join("scenarios/explore-replication-async.ron");
    assert_eq!(
        found,
        std::fs::read_to_string(committed).expect("committed"),
        "scenarios/explore-replication-async.ron is what explore writes: regenerate it"
    );
}

#[test]
fn two_phase_commit_stays_atomic_under_every_schedule_tried() {
    let out = scratch("explore-2pc");
    let args = [
        "explore",
        "scenarios/2pc-vs-3pc.ron",
        "--variant",
        "2PC",
        "--objective",
        "atomic",
        "--budget",
        "8",
    ];
    explore(&args, &out, "2").expect_code(0);
    let md = read(&out, "explore.md");
    assert!(
        md.contains("## Not broken") && md.contains("Ran 8 of a budget of 8"),
        "{md}"
    );
    assert_eq!(super::files_in(&out), ["explore.md"]);
}

#[test]
fn three_phase_commit_breaks_atomicity_under_a_single_partition() {
    let out = scratch("explore-3pc");
    let args = [
        "explore",
        "scenarios/2pc-vs-3pc.ron",
        "--variant",
        "3PC",
        "--objective",
        "atomic",
        "--budget",
        "16",
        "--kinds",
        "partition",
    ];
    explore(&args, &out, "2").expect_code(3);
    let found = read(&out, "found.ron");
    let kept = faults(&found);
    assert_eq!(kept.len(), 1, "{found}");
    assert!(
        kept[0].starts_with("Partition(groups: [[\"shard-"),
        "{found}"
    );
    assert!(violated(&read(&out, "results.json"), "atomic commit") > 0);
    let committed = super::repo_root().join("scenarios/explore-3pc-partition.ron");
    assert_eq!(
        found,
        std::fs::read_to_string(committed).expect("committed"),
        "scenarios/explore-3pc-partition.ron is what explore writes: regenerate it"
    );
}

#[test]
fn bad_objectives_budgets_and_options_are_located_and_the_shrink_limit_is_named() {
    let out = scratch("explore-errors");
    let with = |extra: &[&'static str]| replication("no-lost-writes", "16", extra);
    explore(&replication("availabilty >= 0.99", "4", &[]), &out, "1")
        .expect_code(2)
        .expect_stderr("unknown measure `availabilty`")
        .expect_stderr("  | availabilty >= 0.99\n  | ^^^^^^^^^^^\n");
    explore(&replication("atomic", "4", &[]), &out, "1")
        .expect_code(2)
        .expect_stderr("no checker of this variant reports `atomic`")
        .expect_stderr("`no lost acknowledged writes`");
    explore(&replication("no-lost-writes", "0", &[]), &out, "1")
        .expect_code(2)
        .expect_stderr("--budget");
    explore(&with(&["--targets", "nope"]), &out, "1")
        .expect_code(2)
        .expect_stderr("--targets: no node or group named \"nope\"");
    explore(&with(&["--window", "5s..2s"]), &out, "1")
        .expect_code(2)
        .expect_stderr("--window `5s..2s`: the range is empty");
    let args = [
        "explore",
        "scenarios/replication-modes.ron",
        "--objective",
        "linearizable",
    ];
    explore(&args, &out, "1")
        .expect_code(2)
        .expect_stderr("name the one to explore with --variant");
    explore(&with(&["--shrink-budget", "2"]), &out, "1")
        .expect_code(1)
        .expect_stderr("the shrink stopped at its limit of 2 runs (--shrink-budget)");
    assert!(read(&out, "found.ron").contains("Crash(node: \"store-0\""));
}

#[test]
fn three_shards_merged_write_byte_for_byte_what_one_machine_writes() {
    let (one, parts, two, merged) = (
        scratch("explore-one"),
        scratch("explore-shards"),
        scratch("explore-shard-2"),
        scratch("explore-merged"),
    );
    let args = replication("no-lost-writes", "16", &[]);
    explore(&args, &one, "2").expect_code(3);
    // Shards 0 and 1 share a directory, shard 2 has its own: merge takes any number of them.
    for (i, dir) in [(0, &parts), (1, &parts), (2, &two)] {
        let shard = format!("{i}/3");
        let mut a = args.clone();
        a.extend(["--shard", &shard]);
        explore(&a, dir, "1")
            .expect_code(0)
            .expect_stderr(&format!("shard {i}/3: ran"));
    }
    assert_eq!(
        super::files_in(&parts),
        ["explore-shard-0-of-3.json", "explore-shard-1-of-3.json"]
    );
    let root = super::repo_root();
    let m = merged.display().to_string();
    let (p, t) = (parts.display().to_string(), two.display().to_string());
    archsim(&root, &["merge", &p, &t, "--out", &m]).expect_code(3);
    let files = super::files_in(&one);
    assert_eq!(files, super::files_in(&merged));
    for f in &files {
        let same = std::fs::read(one.join(f)).ok() == std::fs::read(merged.join(f)).ok();
        assert!(
            same,
            "{f} differs between one machine and three merged shards"
        );
    }
    assert!(read(&merged, "explore.md").contains("from 2 faults to 1"));
    // A missing shard is named, and nothing is written.
    let lonely = scratch("explore-merge-missing");
    archsim(
        &root,
        &["merge", &p, "--out", &lonely.display().to_string()],
    )
    .expect_code(2)
    .expect_stderr("shard 2 of 3 missing");
    assert!(super::files_in(&lonely).is_empty());
}
