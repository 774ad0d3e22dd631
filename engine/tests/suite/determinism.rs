//! Determinism: the same scenario and seed give byte-identical results.json and plots, on one
//! thread or several, run after run; and the committed reports are what the code produces.

use archsim::cli::results_json;
use archsim::results::Results;
use archsim::runner::{RunOptions, run};
use archsim::scenario::{Scenario, load};
use archsim::{Registry, report};
use std::path::{Path, PathBuf};

fn scenario_files() -> Vec<PathBuf> {
    let dir = super::repo_root().join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected the committed scenarios in {}",
        dir.display()
    );
    files
}

/// Load a scenario under the name the README's command gives it (`scenarios/x.ron`).
fn load_as_cli_would(path: &Path) -> Scenario {
    let rel = Path::new("scenarios").join(path.file_name().expect("file name"));
    let mut s = load(path, &Registry::builtin()).unwrap_or_else(|e| panic!("{e}"));
    s.file = rel.display().to_string();
    s
}

fn run_on(threads: usize, s: &Scenario) -> Results {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| run(s, &Registry::builtin(), &RunOptions::default()))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn svgs(r: &Results) -> Vec<(String, Vec<u8>)> {
    report::render(r)
        .expect("report renders")
        .into_iter()
        .filter(|(name, _)| name.ends_with(".svg"))
        .collect()
}

#[test]
fn every_scenario_is_byte_identical_across_runs_and_thread_counts() {
    for path in scenario_files() {
        let s = load_as_cli_would(&path);
        if s.sweep.is_some() {
            continue; // `archsim sweep` writes its report; sweep.rs checks it.
        }
        let one = run_on(1, &s);
        let two = run_on(2, &s);
        let again = run_on(2, &s);
        let name = path.display();
        assert_eq!(
            results_json(&one),
            results_json(&two),
            "{name}: 1 thread vs 2 threads"
        );
        assert_eq!(
            results_json(&two),
            results_json(&again),
            "{name}: run twice"
        );
        let (a, b) = (svgs(&one), svgs(&again));
        assert!(!a.is_empty(), "{name}: no SVG plots");
        assert_eq!(a, b, "{name}: SVG plots differ between runs");
    }
}

#[test]
fn committed_reports_match_what_the_code_produces() {
    // reports/ is committed for readers; if this fails, regenerate with the README's command
    // (cargo run --release -- run scenarios/<name>.ron) and commit the new reports on purpose.
    for path in scenario_files() {
        let s = load_as_cli_would(&path);
        if s.sweep.is_some() {
            continue; // `archsim sweep` writes its report; sweep.rs checks it.
        }
        let stem = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let dir = super::repo_root().join("reports").join(&stem);
        let committed = std::fs::read(dir.join("results.json")).unwrap_or_else(|e| {
            panic!("reports/{stem}/results.json: {e}; run the scenario and commit its report")
        });
        let fresh = results_json(&run_on(2, &s));
        assert!(
            committed == fresh,
            "reports/{stem}/results.json is stale: rerun the scenario and commit"
        );
        let mut expected = vec!["results.json".to_string()];
        for (name, bytes) in
            report::render(&serde_json::from_slice(&fresh).expect("parses")).expect("renders")
        {
            let on_disk = std::fs::read(dir.join(&name)).unwrap_or_default();
            if name.ends_with(".png") {
                // The README shows PNGs: compared too, by pixels if not by bytes.
                if let Err(e) = super::same_png(&on_disk, &bytes) {
                    panic!("reports/{stem}/{name} is stale ({e}): rerun the scenario and commit");
                }
            } else {
                assert!(
                    on_disk == bytes,
                    "reports/{stem}/{name} is stale: rerun the scenario and commit"
                );
            }
            expected.push(name);
        }
        expected.sort();
        assert_eq!(
            super::files_in(&dir),
            expected,
            "reports/{stem}/ holds files the scenario does not produce (or lacks some)"
        );
    }
}

#[test]
fn every_report_directory_belongs_to_a_committed_scenario() {
    // What is inside each directory is checked against what its scenario produces (above, and
    // in sweep.rs for sweeps); here, directories and files no scenario produces at all.
    let root = super::repo_root();
    for name in super::files_in(&root.join("reports")) {
        assert!(
            root.join("reports").join(&name).is_dir(),
            "reports/{name}: a stray file (reports/ holds one directory per scenario)"
        );
        assert!(
            root.join("scenarios").join(format!("{name}.ron")).is_file(),
            "reports/{name}/: no scenarios/{name}.ron produces it; delete it or commit its scenario"
        );
    }
}

#[test]
fn a_different_seed_gives_a_different_run() {
    let src = std::fs::read_to_string(super::repo_root().join("scenarios/quickstart.ron")).unwrap();
    let reg = Registry::builtin();
    let s = archsim::scenario::parse("q.ron", &src, &reg).unwrap();
    let a = run(
        &s,
        &reg,
        &RunOptions {
            seed: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let b = run(
        &s,
        &reg,
        &RunOptions {
            seed: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(a.digest, b.digest);
    assert_ne!(a.variants[0].latency_ms, b.variants[0].latency_ms);
}

#[test]
fn variants_share_arrivals_common_random_numbers() {
    // Every variant of lb-strategies sees the same requests: same count issued after warm-up.
    let s = load_as_cli_would(&super::repo_root().join("scenarios/lb-strategies.ron"));
    let r = run_on(2, &s);
    let counts: Vec<u64> = r.variants.iter().map(|v| v.requests).collect();
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "requests per variant differ: {counts:?}"
    );
    let digests: Vec<&str> = r.variants.iter().map(|v| v.digest.as_str()).collect();
    assert!(
        digests.windows(2).all(|w| w[0] != w[1]),
        "variants should differ in their event traces"
    );
}
