//! Golden digests: the event order and every output of the committed scenarios and of a few
//! synthetic runs, pinned. The event queue's representation may change (it did, for speed);
//! its (time, sequence) order may not, and these digests catch any change in it. Update them
//! only for a change of behaviour made on purpose, and say so in the commit.

use archsim::Registry;
use archsim::cli::results_json;
use archsim::runner::{RunOptions, run};
use archsim::scenario::{load, parse};
use archsim::sim::rng::stable_hash;

/// (scenario file, digest of the event traces, hash of results.json).
const COMMITTED: &[(&str, &str, u64)] = &[
    // Trace digests of bench-p2c, lb-strategies and quickstart are those of the binary-heap
    // build; results.json hashes changed when results gained `recovery` and causes became
    // listed only when they occur. The other scenarios were added with the radix-heap queue.
    ("2pc-vs-3pc.ron", "40e40a34e4fa2a75", 0xc2d095634932b3a4),
    ("bench-p2c.ron", "aa5070d5ea4406cb", 0x4242d68a1d21f569),
    (
        "cache-strategies.ron",
        "7a1dde9594817b4c",
        0x90a6f4d6bfdecb79,
    ),
    ("cap-partition.ron", "61b680671cac6b68", 0xed12b81cb9110df7),
    (
        "circuit-breaker.ron",
        "601952609081c9be",
        0x7c1ddd518aa47f47,
    ),
    (
        "health-check-failover.ron",
        "9f51489b4ddf1a31",
        0xa1fa6048ceec68eb,
    ),
    ("lb-strategies.ron", "2e0b04e00879596c", 0xfd2b64feeffbaa39),
    (
        "queue-consumers.ron",
        "42bda75c9466fa48",
        0x0a284177bac214e5,
    ),
    ("quickstart.ron", "bf46cb443b3eefdb", 0x2fed50ead4648317),
    ("random-faults.ron", "382b41aaa535e551", 0x81f5d20cbe0fceac),
    ("rate-limiters.ron", "248430e9f4ff7af1", 0xa760411d4efc82ad),
    (
        "replication-modes.ron",
        "1320d7019fbd00f3",
        0x92c13194b13e1077,
    ),
    ("retry-storm.ron", "fa4f62ccbfd2abf1", 0x180086607c295602),
];

/// (synthetic run, digest of the event traces, hash of results.json).
const SYNTHETIC: &[(&str, &str, u64)] = &[
    ("timeouts", "97d34e699489e91b", 0x41394369c30efa99),
    ("faults", "55b98b949eb2af36", 0xee193288851388d4),
    ("closed-constant", "3367a98990b3036f", 0x0955f9ff73780c8a),
];

/// Synthetic runs that stress the queue: overload with short timeouts behind long ones (many
/// cancelled timers in the queue, so purges), faults of every kind, a closed loop, and ties at one instant.
fn synthetic(name: &str) -> String {
    let body = match name {
        "timeouts" => {
            r#"duration: "20s", warmup: "1s",
            network: (latency: Exponential(mean: "300us")),
            nodes: {
                "users": Client(target: "lb", arrival: Poisson(rate: 9000.0), timeout: "800ms"),
                "lb": LoadBalancer(strategy: LeastConnections, backends: ["app"], timeout: "2ms"),
                "app": Server(replicas: 3, workers: 2, service_time: Exponential(mean: "700us")),
            },"#
        }
        "faults" => {
            r#"duration: "12s", warmup: "1s",
            network: (latency: LogNormal(median: "300us", p99: "4ms")),
            nodes: {
                "users": Client(target: "lb", arrival: Poisson(rate: 3000.0), timeout: "50ms"),
                "lb": LoadBalancer(strategy: PowerOfTwoChoices, backends: ["app"], timeout: "20ms"),
                "app": Server(replicas: 4, workers: 1, queue_limit: 20, service_time: Exponential(mean: "1ms")),
            },
            faults: [
                Crash(node: "app-0", at: "2s", until: "3s"),
                Crash(node: "app-0", at: "2500ms", until: "4s"),
                Slowdown(node: "app-1", factor: 4.0, at: "3s", until: "6s"),
                Partition(groups: [["lb"], ["app-2"]], at: "5s", until: "6s"),
                LinkChange(to: ["app-3"], latency: Constant("5ms"), loss: 0.1, at: "7s", until: "9s"),
            ],"#
        }
        "closed-constant" => {
            // Constant latencies and service times: many events share an instant, so the
            // sequence number decides their order.
            r#"duration: "5s",
            network: (latency: Constant("100us")),
            nodes: {
                "users": Client(target: "lb", arrival: Closed(users: 64, think_time: Constant("1ms"))),
                "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"]),
                "app": Server(replicas: 8, workers: 2, service_time: Constant("500us")),
            },"#
        }
        other => panic!("no synthetic run named {other}"),
    };
    format!("Scenario(name: \"golden {name}\", seed: 11, {body})")
}

fn fingerprint(results: &archsim::results::Results) -> (String, u64) {
    (results.digest.clone(), stable_hash(&results_json(results)))
}

#[test]
fn committed_scenarios_keep_their_golden_digests() {
    let registry = Registry::builtin();
    let mut seen = Vec::new();
    for (file, digest, json) in COMMITTED {
        let path = super::repo_root().join("scenarios").join(file);
        let mut s = load(&path, &registry).unwrap_or_else(|e| panic!("{e}"));
        s.file = format!("scenarios/{file}");
        let r = run(&s, &registry, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let got = fingerprint(&r);
        eprintln!("(\"{file}\", \"{}\", 0x{:016x}),", got.0, got.1);
        seen.push((file.to_string(), got == (digest.to_string(), *json)));
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(super::repo_root().join("scenarios"))
        .expect("scenarios/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ron"))
        // A sweep's runs are pinned by its own committed report (see sweep.rs).
        .filter(|n| {
            let path = super::repo_root().join("scenarios").join(n);
            load(&path, &registry).map_or(true, |s| s.sweep.is_none())
        })
        .collect();
    on_disk.sort();
    let pinned: Vec<String> = seen.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(
        pinned, on_disk,
        "every committed scenario has a golden digest"
    );
    for (file, same) in seen {
        assert!(
            same,
            "scenarios/{file}: outputs changed (see the printed digests)"
        );
    }
}

#[test]
fn synthetic_runs_keep_their_golden_digests() {
    let registry = Registry::builtin();
    let names = ["timeouts", "faults", "closed-constant"];
    let pinned: Vec<&str> = SYNTHETIC.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(pinned, names, "every synthetic run has a golden digest");
    for (name, digest, json) in SYNTHETIC {
        let s = parse("golden.ron", &synthetic(name), &registry).unwrap_or_else(|e| panic!("{e}"));
        let r = run(&s, &registry, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let got = fingerprint(&r);
        eprintln!("(\"{name}\", \"{}\", 0x{:016x}),", got.0, got.1);
        assert_eq!(got, (digest.to_string(), *json), "{name}: outputs changed");
    }
}
