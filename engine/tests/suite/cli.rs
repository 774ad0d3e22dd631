//! The command line, as a user drives it: exit codes, files written, `report` reproducing `run`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn archsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_archsim"))
        .args(args)
        .current_dir(super::repo_root())
        .output()
        .expect("archsim runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("archsim-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("output dir exists")
        .map(|e| {
            let p = e.expect("entry").path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn run_writes_the_report_and_report_reproduces_it_byte_for_byte() {
    let out = temp_dir("run");
    let o = archsim(&[
        "run",
        "scenarios/quickstart.ron",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("p99"),
        "the terminal table has latency columns:\n{stdout}"
    );
    let written = files_in(&out);
    let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "results.json",
        "summary.md",
        "index.html",
        "latency_cdf.svg",
        "latency_cdf.png",
        "latency_over_time.svg",
        "availability.png",
        "throughput.svg",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "temp files left behind: {names:?}"
    );
    let again = temp_dir("report");
    let results = out.join("results.json");
    let o = archsim(&[
        "report",
        results.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let regenerated = files_in(&again);
    for (name, bytes) in &regenerated {
        let original = &written
            .iter()
            .find(|(n, _)| n == name)
            .expect("same file set")
            .1;
        assert!(original == bytes, "{name} differs between run and report");
    }
    assert_eq!(
        regenerated.len() + 1,
        written.len(),
        "report writes every file but results.json"
    );
}

#[test]
fn a_bad_scenario_exits_2_and_writes_nothing() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.ron");
    std::fs::write(
        &file,
        "Scenario(name: \"x\", duration: \"1s\", nodes: { \"a\": Server(workers: 0) })",
    )
    .unwrap();
    let out = dir.join("out");
    let o = archsim(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("broken.ron:1:"), "{stderr}");
    assert!(stderr.contains("missing field `service_time`"), "{stderr}");
    assert!(!out.exists(), "nothing may be written for a bad scenario");
    let o = archsim(&["validate", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_missing_file_and_a_bad_results_file_are_clear_errors() {
    let o = archsim(&["run", "scenarios/no-such-file.ron"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read scenarios/no-such-file.ron"));
    let dir = temp_dir("badjson");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("results.json"), "{\"archsim_version\": 3}").unwrap();
    let o = archsim(&["report", dir.join("results.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a results.json written by archsim"));
}

#[test]
fn validate_accepts_every_committed_scenario() {
    let mut args = vec!["validate"];
    let files: Vec<String> = std::fs::read_dir(super::repo_root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        // scenarios/traces/ holds the CSV traces scenarios replay, not scenarios.
        .filter(|n| n.ends_with(".ron"))
        .map(|n| format!("scenarios/{n}"))
        .collect();
    args.extend(files.iter().map(String::as_str));
    let o = archsim(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn list_and_variant_selection_and_determinism_check() {
    let o = archsim(&["list"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("PowerOfTwoChoices"));
    let out = temp_dir("variant");
    let o = archsim(&[
        "run",
        "scenarios/lb-strategies.ron",
        "--variant",
        "p2c",
        "--check-determinism",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("determinism: ok"));
    let json = std::fs::read_to_string(out.join("results.json")).unwrap();
    assert!(json.contains("\"name\": \"p2c\"") && !json.contains("\"name\": \"random\""));
    assert!(json.contains("\"seed\": 3"));
    let o = archsim(&["run", "scenarios/lb-strategies.ron", "--variant", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected one of: round-robin"));
}
