//! Sweeps: byte-identical output at any thread count and any split into shards, merge refusing
//! what does not fit, confidence intervals that shrink as 1/√N, sweep-block errors with their
//! location, and the committed lb-sweep report being current.

use archsim::Registry;
use archsim::scenario::parse;
use archsim::sweep::merge::{Collector, assemble};
use archsim::sweep::stats::{Estimate, t_quantile_975};
use archsim::sweep::{execute, json_bytes, plan};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// 2 variants × 3 points × 3 replications of a small load balancer, a couple of seconds each.
pub const TINY: &str = r#"Scenario(
    name: "Tiny sweep",
    seed: 3,
    duration: "2s",
    warmup: "200ms",
    nodes: {
        "users": Client(target: "lb", arrival: Poisson(rate: 500.0), timeout: "1s"),
        "lb":    LoadBalancer(strategy: RoundRobin, backends: ["app"]),
        "app":   Server(replicas: 2, workers: 1, queue_limit: 100,
                        service_time: Exponential(mean: "1ms")),
    },
    variants: {
        "rr":  { "lb.strategy": RoundRobin },
        "p2c": { "lb.strategy": PowerOfTwoChoices },
    },
    sweep: (
        parameters: { "users.arrival.rate": (values: [400.0, 800.0, 1200.0]) },
        replications: 3,
        objective: (metric: P99, limit_ms: 4.0),
    ),
)
"#;

pub fn archsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_archsim"))
        .args(args)
        .current_dir(super::repo_root())
        .env("CI", "1")
        .output()
        .expect("archsim runs")
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("archsim-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Every file under `dir` (recursively), relative name and bytes, sorted.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).expect("readable dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "archsim failed ({:?}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fail(o: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(code), "expected exit {code}:\n{err}");
    err
}

fn tiny_file(dir: &Path) -> String {
    let f = dir.join("tiny.ron");
    std::fs::write(&f, TINY).unwrap();
    f.display().to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn serial_and_parallel_sweeps_write_identical_bytes() {
    let dir = temp_dir("jobs");
    let file = tiny_file(&dir);
    let (one, two) = (dir.join("j1"), dir.join("j2"));
    ok(&archsim(&["sweep", &file, "--out", s(&one), "-j", "1"]));
    ok(&archsim(&["sweep", &file, "--out", s(&two), "-j", "2"]));
    let (a, b) = (tree(&one), tree(&two));
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "results.json",
        "runs.csv",
        "summary.md",
        "index.html",
        "sweep_p99.svg",
        "sweep_p99.png",
        "p99_over_time_02.svg",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(a == b, "-j1 and -j2 outputs differ");
    // runs.csv: a header and one row per run.
    let csv = String::from_utf8(std::fs::read(one.join("runs.csv")).unwrap()).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 3 * 3);
    assert!(csv.starts_with("index,id,variant,point,replication,seed,users.arrival.rate,"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shards_merged_in_any_order_give_the_unsharded_bytes() {
    let dir = temp_dir("shards");
    let file = tiny_file(&dir);
    let whole = dir.join("whole");
    ok(&archsim(&["sweep", &file, "--out", s(&whole)]));
    let shards: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("shard{i}"))).collect();
    for (i, d) in shards.iter().enumerate() {
        let err = ok(&archsim(&[
            "sweep",
            &file,
            "--shard",
            &format!("{i}/3"),
            "--out",
            s(d),
        ]));
        assert!(err.contains(&format!("shard {i}/3: 6 of them")), "{err}");
    }
    for order in [[2, 0, 1], [1, 2, 0]] {
        let merged = dir.join(format!("merged{}", order[0]));
        let mut args = vec!["merge"];
        args.extend(order.iter().map(|&i| s(&shards[i])));
        args.extend(["--out", s(&merged)]);
        ok(&archsim(&args));
        assert!(tree(&merged) == tree(&whole), "merge {order:?} differs");
    }
    // A run seen twice with the same bytes is fine: merge a shard with itself and the rest.
    let again = dir.join("again");
    ok(&archsim(&[
        "merge",
        s(&shards[0]),
        s(&shards[0]),
        s(&shards[1]),
        s(&shards[2]),
        "--out",
        s(&again),
    ]));
    assert!(tree(&again) == tree(&whole));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn runs_by_name_match_the_same_runs_of_the_whole_sweep() {
    let dir = temp_dir("byname");
    let file = tiny_file(&dir);
    let listed = archsim(&["sweep", &file, "--list"]);
    ok(&listed);
    let list = String::from_utf8_lossy(&listed.stdout);
    assert!(list.contains("p2c:2:1"), "{list}");
    assert_eq!(list.lines().count(), 1 + 18);
    let (a, b) = (dir.join("a"), dir.join("b"));
    ok(&archsim(&[
        "sweep",
        &file,
        "--runs",
        "p2c:2:1,4",
        "--out",
        s(&a),
    ]));
    ok(&archsim(&[
        "sweep",
        &file,
        "--shard",
        "0/1",
        "--out",
        s(&b),
    ]));
    let picked = tree(&a.join("runs"));
    let names: Vec<&str> = picked.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["000004.json", "000016.json"]);
    for (name, bytes) in &picked {
        let all = std::fs::read(b.join("runs").join(name)).unwrap();
        assert!(*bytes == all, "{name} differs when run alone");
    }
    let err = fail(&archsim(&["sweep", &file, "--runs", "nope:0:0"]), 2);
    assert!(err.contains("no run named \"nope:0:0\""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_shard_and_a_corrupted_run_file_are_reported_not_merged() {
    let dir = temp_dir("bad");
    let file = tiny_file(&dir);
    let shards: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("s{i}"))).collect();
    for (i, d) in shards.iter().enumerate() {
        ok(&archsim(&[
            "sweep",
            &file,
            "--shard",
            &format!("{i}/2"),
            "--out",
            s(d),
        ]));
    }
    let out = dir.join("out");
    // Shard 1 missing: the odd runs are named.
    let err = fail(&archsim(&["merge", s(&shards[0]), "--out", s(&out)]), 2);
    assert!(err.contains("9 of 18 runs missing"), "{err}");
    assert!(
        err.contains("1 (rr:0:1)") && err.contains("17 (p2c:2:2)"),
        "{err}"
    );
    assert!(!out.exists(), "nothing may be written");
    // A truncated run file.
    let victim = shards[1].join("runs").join("000003.json");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    let err = fail(
        &archsim(&["merge", s(&shards[0]), s(&shards[1]), "--out", s(&out)]),
        2,
    );
    assert!(
        err.contains("000003.json") && err.contains("corrupted run file"),
        "{err}"
    );
    assert!(err.contains("1 of 18 runs missing: 3 (rr:1:0)"), "{err}");
    assert!(!out.exists(), "nothing may be written");
    // A run whose numbers were edited: same index, different bytes than another copy.
    std::fs::write(&victim, &bytes).unwrap();
    let copy = dir.join("copy");
    std::fs::create_dir_all(copy.join("runs")).unwrap();
    std::fs::copy(shards[1].join("sweep.json"), copy.join("sweep.json")).unwrap();
    let edited =
        String::from_utf8(bytes.clone())
            .unwrap()
            .replacen("\"events\": ", "\"events\": 1", 1);
    std::fs::write(copy.join("runs").join("000003.json"), edited).unwrap();
    let err = fail(
        &archsim(&[
            "merge",
            s(&shards[0]),
            s(&shards[1]),
            s(&copy),
            "--out",
            s(&out),
        ]),
        2,
    );
    assert!(err.contains("appears twice with different bytes"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_refuses_shards_with_a_different_math_fingerprint() {
    let dir = temp_dir("fingerprint");
    let file = tiny_file(&dir);
    let shards: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("s{i}"))).collect();
    for (i, d) in shards.iter().enumerate() {
        ok(&archsim(&[
            "sweep",
            &file,
            "--shard",
            &format!("{i}/2"),
            "--out",
            s(d),
        ]));
    }
    // Shard 1 as a build with other floating-point math would have written it.
    let manifest = shards[1].join("sweep.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let fp = archsim::sweep::math_fingerprint();
    std::fs::write(&manifest, text.replace(&fp, "libm-00000000deadbeef")).unwrap();
    let out = dir.join("out");
    let err = fail(
        &archsim(&["merge", s(&shards[0]), s(&shards[1]), "--out", s(&out)]),
        2,
    );
    assert!(
        err.contains("math fingerprint libm-00000000deadbeef") && err.contains("cannot be merged"),
        "{err}"
    );
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shard_arguments_and_environments() {
    let dir = temp_dir("shardargs");
    let file = tiny_file(&dir);
    let err = fail(&archsim(&["sweep", &file, "--shard", "4/4"]), 2);
    assert!(
        err.contains("shard index 4 is out of range for 4 shards"),
        "{err}"
    );
    let err = fail(&archsim(&["sweep", &file, "--shard", "auto"]), 2);
    assert!(err.contains("no array-job environment"), "{err}");
    let out = dir.join("k8s");
    let o = Command::new(env!("CARGO_BIN_EXE_archsim"))
        .args(["sweep", &file, "--shard", "auto", "--shards", "6"])
        .args(["--out", s(&out)])
        .env("JOB_COMPLETION_INDEX", "5")
        .output()
        .unwrap();
    let err = ok(&o);
    assert!(
        err.contains("shard 5/6 from Kubernetes Indexed Job (JOB_COMPLETION_INDEX=5, --shards 6)"),
        "{err}"
    );
    let names: Vec<String> = tree(&out.join("runs"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["000005.json", "000011.json", "000017.json"]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn sweep_bytes(src: &str, threads: usize) -> Vec<(String, Vec<u8>)> {
    let reg = Registry::builtin();
    let s = parse("t.ron", src, &reg).unwrap_or_else(|e| panic!("{e}"));
    let plan_ = s.sweep.as_ref().expect("sweep block");
    let m = plan(&s, plan_, s.base.seed);
    let all: Vec<usize> = (0..m.runs.len()).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let runs = pool
        .install(|| execute(&s, plan_, &m, &all, &reg, &|| {}))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut c = Collector::new();
    c.manifest("m", json_bytes(&m));
    for (i, b) in runs {
        c.run("r", Some(i), b);
    }
    let (m, runs) = c.finish().unwrap_or_else(|e| panic!("{e}"));
    assemble(&m, &runs).expect("renders").1
}

fn mm1(replications: u32) -> String {
    // M/M/1, λ = 500/s, μ = 1000/s: mean time in system 1/(μ − λ) = 2 ms.
    format!(
        r#"Scenario(
    name: "M/M/1 replicated",
    seed: 5,
    duration: "5s",
    warmup: "500ms",
    nodes: {{
        "users": Client(target: "app", arrival: Poisson(rate: 500.0), timeout: "10s"),
        "app":   Server(replicas: 1, workers: 1, service_time: Exponential(mean: "1ms")),
    }},
    sweep: (parameters: {{ "users.timeout": (values: ["10s"]) }}, replications: {replications}),
)"#
    )
}

fn mean_latency(files: &[(String, Vec<u8>)]) -> Estimate {
    let (_, json) = files.iter().find(|(n, _)| n == "results.json").unwrap();
    let r: archsim::sweep::results::SweepResults = serde_json::from_slice(json).unwrap();
    r.cells[0].metrics["latency_mean_ms"].clone()
}

#[test]
fn ci_half_width_shrinks_as_one_over_root_n_on_replicated_mm1() {
    let small = mean_latency(&sweep_bytes(&mm1(10), 2));
    let large = mean_latency(&sweep_bytes(&mm1(40), 2));
    // The intervals cover the theory: 2 ms.
    for e in [&small, &large] {
        assert!(
            (e.lo()..=e.hi()).contains(&2.0),
            "2 ms outside {}..{}",
            e.lo(),
            e.hi()
        );
    }
    // Half-width = t(N−1)·s/√N; with the t factor taken out, 4× the replications should halve
    // it, up to the noise in the two standard deviations.
    let per_t = |e: &Estimate| e.ci95_half_width.unwrap() / t_quantile_975(e.n - 1);
    let ratio = per_t(&small) / per_t(&large);
    assert!((1.3..=3.0).contains(&ratio), "ratio {ratio}, expected ≈ 2");
}

#[test]
fn ci_half_width_of_iid_values_tracks_sigma_over_root_n() {
    // Synthetic and exact: uniform(0,1) values (σ = 1/√12) from a fixed stream.
    let mut rng = archsim::sim::rng::SimRng::derive(9, "ci");
    let values: Vec<f64> = (0..640)
        .map(|_| archsim::sim::rng::RandomSource::uniform(&mut rng))
        .collect();
    let sigma = 1.0 / 12.0_f64.sqrt();
    for n in [10, 40, 160, 640] {
        let e = Estimate::of(&values[..n]).unwrap();
        let scaled = e.ci95_half_width.unwrap() * (n as f64).sqrt() / t_quantile_975(n as u32 - 1);
        assert!(
            (scaled / sigma - 1.0).abs() < 0.25,
            "n {n}: half-width·√n/t = {scaled}, σ = {sigma}"
        );
    }
}

fn errors_of(src: &str) -> String {
    match parse("bad.ron", src, &Registry::builtin()) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_sweep_blocks_are_reported_with_their_location() {
    let bad_path = TINY.replace(
        r#""users.arrival.rate": (values: [400.0, 800.0, 1200.0])"#,
        r#""userz.rate": (values: [1.0])"#,
    );
    let e = errors_of(&bad_path);
    assert!(e.contains("bad.ron:17:37"), "{e}");
    assert!(e.contains("`userz` is not a declared node"), "{e}");

    let both = TINY.replace(
        "(values: [400.0, 800.0, 1200.0])",
        "(values: [1.0], range: (from: 1.0, to: 2.0, step: 1.0))",
    );
    let e = errors_of(&both);
    assert!(
        e.contains("needs exactly one of `values` and `range`"),
        "{e}"
    );

    let zero = TINY.replace("replications: 3", "replications: 0");
    let e = errors_of(&zero);
    assert!(
        e.contains("replications must be at least 1") && e.contains("bad.ron:18:23"),
        "{e}"
    );

    let backwards = TINY.replace(
        "(values: [400.0, 800.0, 1200.0])",
        "(range: (from: 5.0, to: 1.0, step: 1.0))",
    );
    assert!(errors_of(&backwards).contains("is empty or too long"));

    let bad_value = TINY.replace("[400.0, 800.0, 1200.0]", "[400.0, -5.0]");
    let e = errors_of(&bad_value);
    assert!(e.contains("users.arrival.rate = -5.0"), "{e}");

    let typo = TINY.replace("replications: 3", "replication: 3");
    let e = errors_of(&typo);
    assert!(e.contains("unknown field `replication`"), "{e}");
    assert!(e.contains("bad.ron:18:9"), "{e}");
}

#[test]
fn committed_lb_sweep_report_is_current() {
    // The whole sweep takes most of a minute; here the report is rebuilt from the committed
    // results.json (every plot, PNGs included, and table), its per-cell statistics and
    // crossings are recomputed from the committed runs.csv, and one run of every variant is
    // re-simulated and compared with its row. Regenerate with
    // `cargo run --release -- sweep scenarios/lb-sweep.ron` and commit on purpose.
    let dir = super::repo_root().join("reports/lb-sweep");
    let json = std::fs::read(dir.join("results.json")).expect("committed results.json");
    let results: archsim::sweep::results::SweepResults =
        serde_json::from_slice(&json).expect("parses");
    assert!(
        json_bytes(&results) == json,
        "results.json does not round-trip"
    );
    let mut expected = vec!["results.json".to_string(), "runs.csv".to_string()];
    for (name, bytes) in archsim::report::sweep::render(&results).expect("renders") {
        let on_disk = std::fs::read(dir.join(&name)).unwrap_or_default();
        if name.ends_with(".png") {
            if let Err(e) = super::same_png(&on_disk, &bytes) {
                panic!("reports/lb-sweep/{name} is stale ({e})");
            }
        } else {
            assert!(on_disk == bytes, "reports/lb-sweep/{name} is stale");
        }
        expected.push(name);
    }
    expected.sort();
    assert_eq!(
        super::files_in(&dir),
        expected,
        "reports/lb-sweep/ holds files the sweep does not produce (or lacks some)"
    );
    let reg = Registry::builtin();
    let path = super::repo_root().join("scenarios/lb-sweep.ron");
    let mut scenario = archsim::scenario::load(&path, &reg).unwrap_or_else(|e| panic!("{e}"));
    scenario.file = "scenarios/lb-sweep.ron".into();
    let sweep = scenario.sweep.as_ref().unwrap();
    let m = plan(&scenario, sweep, scenario.base.seed);
    assert_eq!(
        serde_json::to_value(&m.scenario).unwrap(),
        serde_json::to_value(&results.scenario).unwrap()
    );
    let csv = String::from_utf8(std::fs::read(dir.join("runs.csv")).unwrap()).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), m.runs.len());
    aggregates_match_the_runs(&m, &results, &csv);
    // One run of each variant, at different points and replications, and the first and last.
    let (points, reps) = (m.points.len(), m.replications as usize);
    let mut picks: Vec<usize> = (0..m.variants.len())
        .map(|v| (v * points + (3 * v + 1) % points) * reps + (7 * v + 3) % reps)
        .chain([0, m.runs.len() - 1])
        .collect();
    picks.sort();
    picks.dedup();
    let fresh = execute(&scenario, sweep, &m, &picks, &reg, &|| {}).unwrap();
    let mut variants_seen = std::collections::BTreeSet::new();
    for (index, bytes) in fresh {
        // Through the run file's bytes, as `sweep` does, so float parsing is covered too.
        let record: archsim::sweep::RunRecord = serde_json::from_slice(&bytes).unwrap();
        let row = archsim::sweep::merge::runs_csv(&m, std::slice::from_ref(&record));
        assert_eq!(
            row.lines().nth(1),
            Some(rows[index]),
            "run {index} ({}) differs from the committed runs.csv",
            record.run.id
        );
        variants_seen.insert(record.run.variant);
    }
    assert_eq!(
        variants_seen.len(),
        m.variants.len(),
        "every variant re-simulated"
    );
}

/// Every cell's statistics (mean, standard deviation, interval of each summary metric), the
/// crossings and the digest, recomputed from the per-run rows of runs.csv: a change to the
/// statistics that left results.json behind fails here. (The per-window means need the run
/// files, which are not committed; the re-simulated runs cover the model.)
fn aggregates_match_the_runs(
    m: &archsim::sweep::Manifest,
    results: &archsim::sweep::results::SweepResults,
    csv: &str,
) {
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().expect("header").split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let col = |name: &str| head.iter().position(|h| *h == name).expect(name);
    let (variant, point) = (col("variant"), col("point"));
    let metrics_from = col("users.arrival.rate") + 1;
    let metric_names = &head[metrics_from..head.len() - 1];
    assert_eq!(results.cells.len(), m.variants.len() * m.points.len());
    for cell in &results.cells {
        let name = &m.variants[cell.variant].name;
        let group: Vec<&Vec<&str>> = rows
            .iter()
            .filter(|r| r[variant] == name && r[point] == cell.point.to_string())
            .collect();
        assert_eq!(
            group.len(),
            m.replications as usize,
            "{name} point {}",
            cell.point
        );
        for (i, metric) in metric_names.iter().enumerate() {
            let values: Vec<f64> = group
                .iter()
                .filter_map(|r| r[metrics_from + i].parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .collect();
            assert_eq!(
                cell.metrics.get(*metric),
                Estimate::of(&values).as_ref(),
                "{name} point {}: {metric} does not follow from runs.csv",
                cell.point
            );
        }
        assert_eq!(cell.metrics.len(), metric_names.len(), "{name}: metrics");
    }
    assert_eq!(
        archsim::sweep::results::crossings(m, &results.cells),
        results.crossings,
        "crossings"
    );
    let digest = rows.iter().fold(archsim::sim::rng::mix64(m.seed), |h, r| {
        let d = u64::from_str_radix(r[head.len() - 1], 16).expect("hex digest");
        archsim::sim::rng::mix64(h ^ d)
    });
    assert_eq!(results.digest, format!("{digest:016x}"), "digest");
}

#[test]
fn the_sweep_warmup_replaces_the_scenarios_in_every_run() {
    let src = TINY.replace(
        "replications: 3,",
        "replications: 3,\n        warmup: \"700ms\",",
    );
    let reg = Registry::builtin();
    let s = parse("t.ron", &src, &reg).unwrap_or_else(|e| panic!("{e}"));
    let sweep = s.sweep.as_ref().unwrap();
    assert_eq!(sweep.cells.len(), 2 * 3);
    for model in &sweep.cells {
        assert_eq!(model.spec.warmup.as_secs_f64(), 0.7);
    }
    assert_eq!(plan(&s, sweep, 3).timing.warmup_s, 0.7);
    // The variants outside the sweep keep the file's warm-up.
    assert_eq!(s.variants[0].model.spec.warmup.as_secs_f64(), 0.2);
}
