//! The analytic model beside the simulator: where it claims to be exact, the simulation
//! agrees within its sampling error (independent replications, 4 standard errors); where a
//! design cannot keep up, `validate` names the station and `run` stops at a limit naming it.

use archsim::Registry;
use archsim::analysis::analyze;
use archsim::results::{Accuracy, Theory, VariantResult};
use archsim::runner::run_variant;
use archsim::scenario::{Variant, parse};
use std::process::Command;

/// Replications per check: enough for a standard error, few enough to stay fast.
const REPLICATIONS: u64 = 12;

/// (measure, theory, simulated value per replication) for every figure the model calls exact.
fn exact_checks(t: &Theory, runs: &[VariantResult]) -> Vec<(String, f64, Vec<f64>)> {
    let mut out = Vec::new();
    let sims = |f: &dyn Fn(&VariantResult) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    if let (Accuracy::Exact, Some(x)) = (t.latency_mean_ms.accuracy, t.latency_mean_ms.value) {
        out.push(("mean latency".into(), x, sims(&|r| r.latency_ms.mean)));
    }
    if let (Accuracy::Exact, Some(x)) = (t.availability.accuracy, t.availability.value) {
        out.push(("availability".into(), x, sims(&|r| r.availability)));
    }
    if let (Accuracy::Exact, Some(x)) = (t.throughput_rps.accuracy, t.throughput_rps.value) {
        out.push(("throughput".into(), x, sims(&|r| r.throughput_rps)));
    }
    for s in &t.stations {
        let server = |r: &VariantResult| {
            r.servers
                .iter()
                .find(|x| x.name == s.name)
                .cloned()
                .expect("every station is a simulated server")
        };
        if s.utilisation_accuracy == Accuracy::Exact {
            let sim = sims(&|r| server(r).utilisation);
            out.push((format!("{} utilisation", s.name), s.utilisation, sim));
        }
        if let (Accuracy::Exact, Some(w)) = (s.accuracy, s.wait_ms) {
            // Little's law on the simulated queue, Wq = Lq / λ, with the admitted rate from
            // the busy workers over the same window (λ = U c / E[S]); counting services would
            // include those that finish after the window closes.
            let sim = sims(&|r| {
                let x = server(r);
                let rate = x.utilisation * f64::from(s.servers) / s.service_ms;
                x.mean_queue_len / rate
            });
            out.push((format!("{} wait", s.name), w, sim));
        }
    }
    out
}

fn mean_and_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// The standard error of the mean throughput of `runs` if successful requests arrive as a
/// Poisson process at `rate` per second: a count over T seconds has variance rate × T. Twelve
/// replications' sample spread can understate it by chance (bandwidth.ron's did, at 4.2 of its
/// own SE against 3999.96 over 20 other seeds), so the check takes the larger of the two.
fn poisson_se(rate: f64, runs: &[VariantResult]) -> f64 {
    let seconds: f64 = runs
        .iter()
        .filter(|r| r.throughput_rps > 0.0)
        .map(|r| r.ok as f64 / r.throughput_rps)
        .sum();
    if seconds > 0.0 {
        (rate / seconds).sqrt() // Var(mean) = rate / (T R) with T R the seconds summed.
    } else {
        0.0
    }
}

/// Run `v` under `REPLICATIONS` seeds and check every exact figure of its theory.
fn check_variant(file: &str, v: &Variant) -> usize {
    let t = analyze(&v.model);
    if exact_checks(&t, &[]).is_empty() {
        return 0; // Nothing claimed exact: nothing to replicate.
    }
    let registry = Registry::builtin();
    let runs: Vec<VariantResult> = (1..=REPLICATIONS)
        .map(|seed| run_variant(v, &registry, seed).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let checks = exact_checks(&t, &runs);
    for (what, theory, sims) in &checks {
        let (mean, mut se) = mean_and_se(sims);
        if what == "throughput" {
            se = se.max(poisson_se(*theory, &runs));
        }
        let err = (mean - theory).abs();
        eprintln!(
            "{file} [{}] {what}: theory {theory:.5}, simulated {mean:.5} ± {se:.5} (error {:.2} SE)",
            v.name,
            if se > 0.0 { err / se } else { 0.0 }
        );
        assert!(
            err <= 4.0 * se + 1e-9 * theory.abs().max(1.0),
            "{file} [{}] {what}: theory {theory}, simulated {mean} ± {se} (4 SE = {})",
            v.name,
            4.0 * se
        );
    }
    checks.len()
}

/// A committed scenario with its run shortened to at most 15 s and without `max_requests`, so
/// replications stay fast; the model describes the steady state either way.
fn shortened(src: &str) -> String {
    let mut out = String::new();
    for line in src.lines() {
        let trimmed = line.trim_start();
        let top = line.len() - trimmed.len() == 4;
        if top && trimmed.starts_with("duration: \"") {
            let secs: f64 = trimmed
                .trim_start_matches("duration: \"")
                .trim_end_matches("\",")
                .trim_end_matches('s')
                .parse()
                .unwrap_or(15.0);
            if secs > 15.0 {
                out.push_str("    duration: \"15s\",\n");
                continue;
            }
        }
        if top && trimmed.starts_with("warmup: \"") {
            // A warm-up longer than the shortened run (cdn-tiers fills its caches for 20 s)
            // becomes 5 s: the model describes the steady state, not the warm-up.
            let secs: f64 = trimmed
                .trim_start_matches("warmup: \"")
                .trim_end_matches("\",")
                .trim_end_matches('s')
                .parse()
                .unwrap_or(0.0);
            if secs >= 10.0 {
                out.push_str("    warmup: \"5s\",\n");
                continue;
            }
        }
        out.push_str(&drop_max_requests(line));
        out.push('\n');
    }
    out
}

fn drop_max_requests(line: &str) -> String {
    match line.find("max_requests:") {
        Some(at) => {
            let rest = &line[at..];
            let end = rest.find([',', ')']).unwrap_or(rest.len());
            let rest = rest[end..].trim_start_matches(',');
            format!("{}{rest}", line[..at].trim_end_matches([' ', ',']))
        }
        None => line.to_string(),
    }
}

#[test]
fn committed_scenarios_agree_with_theory_where_it_is_exact() {
    let dir = super::repo_root().join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    let registry = Registry::builtin();
    let mut checked = 0;
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let src = shortened(&std::fs::read_to_string(&path).expect("readable"));
        let s = parse(&name, &src, &registry).unwrap_or_else(|e| panic!("{e}"));
        // bandwidth.ron's "no uploads" throughput over these 12 seeds is 3984.7 ± 3.6
        // requests/s (sample SE) against an exact 4000: the draw of its arrival stream, whose
        // spread is Poisson's, sqrt(4000 / (12 × 15 s)) = 4.7 requests/s (see `poisson_se`).
        if s.sweep.is_some() {
            continue;
        }
        for v in &s.variants {
            checked += check_variant(&name, v);
        }
    }
    // bench-p2c and sharding-hotspot's hash and consistent-hash variants make claims.
    assert!(checked >= 20, "only {checked} exact figures were checked");
}

#[test]
fn single_stations_agree_with_their_closed_forms() {
    let registry = Registry::builtin();
    let cases = [
        // M/D/1 (Pollaczek–Khinchine), M/M/2/5 (finite queue), M/G/1 with uniform service.
        r#""srv": Server(service_time: Constant("1ms")),"#,
        r#""srv": Server(workers: 2, queue_limit: Some(3), service_time: Exponential(mean: "1ms")),"#,
        r#""srv": Server(service_time: Uniform(low: "200us", high: "1800us")),"#,
    ];
    for server in cases {
        let src = format!(
            r#"Scenario(name: "station", duration: "60s", warmup: "5s", nodes: {{
                "users": Client(target: "srv", arrival: Poisson(rate: 750.0), timeout: "60s"),
                {server}
            }})"#
        );
        let s = parse("station.ron", &src, &registry).unwrap_or_else(|e| panic!("{e}"));
        let n = check_variant(server, &s.variants[0]);
        assert!(n >= 4, "{server}: {n} exact figures");
    }
}

#[test]
fn an_overloaded_design_is_named_before_the_run_and_stopped_naming_the_station() {
    let dir = std::env::temp_dir().join(format!("archsim-overload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("overload.ron");
    // 1.5 × capacity into unbounded queues, for an hour of simulated time; a low pending
    // limit stops it within seconds of computing.
    std::fs::write(
        &file,
        r#"Scenario(name: "overload", duration: "3600s", limits: (max_pending_events: 100000), nodes: {
            "users": Client(target: "lb", arrival: Poisson(rate: 3000.0)),
            "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"]),
            "app": Server(replicas: 2, service_time: Exponential(mean: "1ms")),
        })"#,
    )
    .expect("written");
    let archsim = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_archsim"))
            .args(args)
            .output()
            .expect("archsim runs")
    };
    let v = archsim(&["validate", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success(), "{text}");
    for replica in ["app-0", "app-1"] {
        assert!(
            text.contains(&format!("{replica} cannot keep up: ρ = 1.500")),
            "{text}"
        );
    }
    let out = dir.join("out");
    let r = archsim(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("app-0 cannot keep up: ρ = 1.500"),
        "named before: {err}"
    );
    assert!(
        err.contains("limits.max_pending_events (100000) exceeded: app-0's unbounded queue"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written for a run that failed");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn random_crashes_cost_what_the_availability_formula_says() {
    // Each of two replicas is down 2% of the time (Poisson crash starts every 50 s per
    // replica, 1 s each); the client picks a reachable one, so a request fails only when
    // both are down: 1 − (1 − e^−0.02)² ≈ 0.039%, plus the requests in flight at a crash.
    let src = r#"Scenario(name: "crashes", seed: 3, duration: "2000s", warmup: "10s", nodes: {
        "users": Client(target: "app", arrival: Poisson(rate: 200.0), timeout: "50ms"),
        "app": Server(replicas: 2, workers: 4, service_time: Exponential(mean: "1ms")),
    }, faults: [Random(kind: Crash, node: "app", mean_interval: "25s", duration: "1s")])"#;
    let registry = Registry::builtin();
    let s = parse("crashes.ron", src, &registry).unwrap_or_else(|e| panic!("{e}"));
    let t = analyze(&s.variants[0].model);
    let want = t.availability.value.expect("a value");
    let both_down = (1.0 - (-0.02f64).exp()).powi(2);
    assert!((want - (1.0 - both_down)).abs() < 2e-5, "{want}");
    assert_eq!(t.availability.accuracy, Accuracy::Approximate);
    let r = run_variant(&s.variants[0], &registry, 3).unwrap_or_else(|e| panic!("{e}"));
    // In flight at a crash: about 1 ms of service per request, 80 crashes at 200/s: a few
    // requests; the rest is sampling error of 80 crashes.
    let lost = 1.0 - r.availability;
    assert!(
        lost < 5.0 * (1.0 - want) + 1e-4,
        "simulated {} vs theory {want}",
        r.availability
    );
}

/// A crash of one of two replicas for a second of the five, in a variant of its own.
const FAULTED: &str = r#"Scenario(
    name: "faulted theory", seed: 5, duration: "5s", warmup: "0s",
    nodes: {
        "users": Client(target: "lb", arrival: Poisson(rate: 300.0), timeout: "1s"),
        "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"]),
        "app": Server(replicas: 2, service_time: Exponential(mean: "2ms")),
    },
    variants: {
        "clean": {},
        "crash": { "faults": [Crash(node: "app-1", at: "2s", until: "3s")] },
    },
)"#;

#[test]
fn theory_gaps_under_faults_are_labelled_as_the_fault_free_model_only_where_faults_are() {
    let r = super::run_text(FAULTED);
    let table = archsim::report::theory_table(&r);
    let rows = |variant: &str| -> Vec<&str> {
        table
            .lines()
            .filter(|l| l.trim_start().starts_with(variant))
            .collect()
    };
    let label = archsim::report::FAULTS_ACTIVE;
    let (clean, crash) = (rows("clean"), rows("crash"));
    assert!(!clean.is_empty() && !crash.is_empty(), "{table}");
    assert!(clean.iter().all(|l| !l.contains(label)), "{table}");
    for measure in ["mean latency", "app utilisation", "app wait in queue"] {
        let row = crash.iter().find(|l| l.contains(measure)).expect(measure);
        assert!(row.contains(label), "{measure}: {row}\n{table}");
    }
    // Availability is modelled with the crash: a fault-aware figure, not a fault-free one.
    let availability = crash.iter().find(|l| l.contains("availability")).unwrap();
    assert!(
        availability.contains("over the fault timeline") && !availability.contains(label),
        "{availability}"
    );
    let clean_availability = clean.iter().find(|l| l.contains("availability")).unwrap();
    assert!(!clean_availability.contains("fault timeline"));
    let files = archsim::report::render(&r).expect("renders");
    let summary = files
        .iter()
        .find(|(n, _)| n == "summary.md")
        .expect("summary");
    let summary = String::from_utf8_lossy(&summary.1);
    assert!(summary.contains("a gap there is what the faults cost, not a model error"));
}

/// A figure the model cannot give carries no fault label: "no formula (over the fault
/// timeline)" would read as if there were a fault-aware figure somewhere.
#[test]
fn the_fault_timeline_label_is_only_beside_a_figure_the_model_gave() {
    let reports = super::repo_root().join("reports");
    let mut faulted_without_formula = 0;
    for entry in std::fs::read_dir(&reports).expect("reports/") {
        let summary = entry.expect("entry").path().join("summary.md");
        let Ok(text) = std::fs::read_to_string(&summary) else {
            continue;
        };
        assert!(
            !text.contains("no formula (over the fault timeline)"),
            "{}",
            summary.display()
        );
        if text.contains("faults active") || text.contains("over the fault timeline") {
            faulted_without_formula += usize::from(text.contains("| - | no formula"));
        }
    }
    // The committed reports include faulted scenarios without formulas (2pc-vs-3pc,
    // multi-region), so the check above has cases to look at.
    assert!(faulted_without_formula >= 2, "{faulted_without_formula}");
}

/// The queueing model adds connection setup to the calls that open a connection: here a
/// shared pool that never expires opens once, on the first of the 1000 requests measured, so
/// the mean grows by a thousandth of a TLS 1.2 opening (three 2 ms round trips, 0.2 ms of the
/// client's CPU and 1 ms of the server's); the estimate says so and is approximate (a shared
/// pool is taken as one connection), and the same design without connections keeps its
/// exact M/M/1 figure.
#[test]
fn latency_theory_adds_connection_setup_to_the_calls_that_open_one() {
    let with = |connections: &str| {
        format!(
            r#"Scenario(name: "tls", seed: 1, duration: "10s", warmup: "0s",
            network: (latency: Constant("1ms")),
            nodes: {{
                "users": Client(target: "app", arrival: Poisson(rate: 100.0), timeout: "10s"{connections}),
                "app": Server(replicas: 1, workers: 1, service_time: Exponential(mean: "2ms")),
            }})"#
        )
    };
    let registry = Registry::builtin();
    let theory = |src: &str| {
        let s = parse("tls.ron", src, &registry).unwrap_or_else(|e| panic!("{e}"));
        analyze(&s.variants[0].model).latency_mean_ms
    };
    let plain = theory(&with(""));
    assert_eq!(plain.accuracy, Accuracy::Exact, "{}", plain.why);
    let tls = theory(&with(", connections: Some((protocol: Tls12))"));
    assert_eq!(tls.accuracy, Accuracy::Approximate);
    assert!(
        tls.why
            .contains("connection setup users -> app: 0.1% of calls open a connection"),
        "{}",
        tls.why
    );
    let opening_ms = 3.0 * 2.0 + 0.2 + 1.0;
    let (a, b) = (tls.value.expect("a figure"), plain.value.expect("a figure"));
    assert!((a - b - opening_ms / 1000.0).abs() < 1e-9, "{a} vs {b}");
}
