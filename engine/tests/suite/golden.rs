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
    // All digests changed once on purpose, when normal and exponential draws moved from
    // Box–Muller and inversion to the ziggurat method and the log-normal to a table `exp`.
    // The results hashes of scenarios with component series or link faults changed on purpose
    // (issue 19): one series value per window, states kept as timelines, fault labels with
    // their magnitude; the event digests did not.
    ("2pc-vs-3pc.ron", "160a203e6ffcfc65", 0x27fd48ebdd4116ab),
    ("bench-p2c.ron", "a73634ab57ef2544", 0xd56e68defc877fb1),
    (
        "cache-strategies.ron",
        "822eca7fc6aeb44c",
        0xe5281c63c521e5b5,
    ),
    ("cap-partition.ron", "9a2aaa30b5aa4638", 0x1b2f6622cb16e881),
    (
        "circuit-breaker.ron",
        "cd5e673f52e7aed5",
        0xcd7daed20431d095,
    ),
    ("diurnal.ron", "cfa262bd30442275", 0xa50c6f1104042895),
    (
        "health-check-failover.ron",
        "d56201d926357293",
        0x2233e19a23ebbce4,
    ),
    ("lb-strategies.ron", "9f026c7f4f2db736", 0xb490808fcdff44bb),
    (
        "priority-overload.ron",
        "15a8863a97169540",
        0xbdb3afb3b3fda5e9,
    ),
    (
        "queue-consumers.ron",
        "2ab9d93d78e8ad2c",
        0x189df4af7eebd1aa,
    ),
    ("quickstart.ron", "7499c2e343a95698", 0xa2c19b8b9ce1eafd),
    ("random-faults.ron", "087a9255eb3027cc", 0x6de1b87fce9d85e6),
    ("rate-limiters.ron", "e828a34e20ae1c9c", 0x6859e620cc4f7501),
    (
        "replication-modes.ron",
        "70a38b0a55881965",
        0x9ffab95eac7f92ab,
    ),
    ("retry-storm.ron", "d0ceb0b496dd4218", 0x5616e34dd1151257),
    (
        "sharding-hotspot.ron",
        "6cf51d189a223d2d",
        0x03cbe29e2ada1ebf,
    ),
];

/// (synthetic run, digest of the event traces, hash of results.json).
const SYNTHETIC: &[(&str, &str, u64)] = &[
    ("timeouts", "feb4943b55893d87", 0x2f8f8ae22b2754ec),
    ("faults", "897f289a5d13d785", 0x2772a5d46624ec77),
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
