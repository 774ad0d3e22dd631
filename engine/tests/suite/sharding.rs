//! Sharding: the router's per-shard counts against the key distribution, a celebrity key as one
//! hot shard, routing to replicated stores, and rebalancing; errors name file:line:col.

use super::{assert_holds, run_text};
use archsim::Registry;
use archsim::results::VariantResult;
use archsim::scenario::parse;

fn router(v: &VariantResult, counter: &str) -> f64 {
    v.components["router"][counter]
}

/// Four single-node shards behind a router, `rate` requests/s for 10 s.
fn four_shards(keys: &str, hot: f64, strategy: &str) -> String {
    format!(
        r#"Scenario(name: "shards", seed: 3, duration: "10s",
    nodes: {{
        "users": KvClient(target: "router", arrival: Poisson(rate: 2000.0), keys: {keys},
                          hot_key_fraction: {hot}, write_fraction: 0.0, timeout: "1s"),
        "router": ShardRouter(shards: ["db-0", "db-1", "db-2", "db-3"], strategy: {strategy}),
        "db": Server(replicas: 4, workers: 4, service_time: Exponential(mean: "1ms")),
    }})"#
    )
}

#[test]
fn uniform_keys_give_each_shard_a_quarter_within_a_few_sigma() {
    for strategy in [
        "Hash",
        "ConsistentHash(vnodes: 1000)",
        "Range(key_count: 100000)",
    ] {
        let r = run_text(&four_shards("Uniform(count: 100000)", 0.0, strategy));
        let v = &r.variants[0];
        let n = router(v, "requests");
        assert!(n > 19_000.0, "{strategy}: {n} requests");
        // Two sources of spread: which keys a shard owns (100,000 keys; a ring of 1000 vnodes
        // per shard adds ~3% of arc-length spread), and which keys the requests draw.
        let p = 0.25;
        let sigma = (p * (1.0 - p) / n + p * (1.0 - p) / 100_000.0).sqrt();
        let arcs = if strategy.starts_with("Consistent") {
            0.03 * p
        } else {
            0.0
        };
        let mut total = 0.0;
        for s in 0..4 {
            let share = router(v, &format!("shard{s}_share"));
            total += router(v, &format!("shard{s}_requests"));
            assert!(
                (share - p).abs() < 5.0 * sigma + 2.0 * arcs,
                "{strategy}: shard {s} share {share} (sigma {sigma})"
            );
        }
        assert_eq!(total, n, "every request routed once");
        assert_eq!(v.components["users"]["ok"], v.components["users"]["issued"]);
    }
}

#[test]
fn a_celebrity_key_makes_its_shard_the_hot_one_under_every_strategy() {
    use archsim::components::replication::shard_router::{KeyMap, ShardStrategy};
    let f = 0.3;
    let names: Vec<String> = (0..4).map(|i| format!("db-{i}")).collect();
    for strategy in [
        "Hash",
        "ConsistentHash(vnodes: 100)",
        "Range(key_count: 100000)",
    ] {
        let r = run_text(&four_shards("Uniform(count: 100000)", f, strategy));
        let v = &r.variants[0];
        let n = router(v, "requests");
        // Each request goes to the celebrity (key 0) with probability f, else to a uniform key
        // of 100,000: shard s gets f·[s owns key 0] + (1 − f)·(its fraction of the keys),
        // the fraction counted on the router's own key map (a ring's arcs are uneven: ±10% with
        // 100 vnodes), so what is left is binomial spread, checked at 4 sigma.
        let map = KeyMap::new(
            &archsim::contract::settable::parse_value::<ShardStrategy>(strategy).expect("parses"),
            &names,
        );
        let mut owned = [0u64; 4];
        for k in 0..100_000 {
            owned[map.shard(k)] += 1;
        }
        let hot = map.shard(0);
        for (s, &keys) in owned.iter().enumerate() {
            let p = f * f64::from(u8::from(s == hot)) + (1.0 - f) * keys as f64 / 100_000.0;
            let share = router(v, &format!("shard{s}_share"));
            let tol = 4.0 * (p * (1.0 - p) / n).sqrt();
            assert!(
                (share - p).abs() < tol,
                "{strategy}: shard {s} share {share} vs {p} ± {tol}"
            );
        }
        let imbalance = router(v, "imbalance_max_over_mean");
        let max = (0..4)
            .map(|s| router(v, &format!("shard{s}_share")))
            .fold(0.0, f64::max);
        assert!((imbalance - max * 4.0).abs() < 1e-9, "{strategy}");
        assert!(
            router(v, &format!("shard{hot}_share")) == max,
            "{strategy}: the celebrity's shard is the hot one"
        );
    }
}

#[test]
fn range_puts_the_zipf_head_on_shard_0() {
    let zipf = "Zipf(count: 10000, exponent: 1.0)";
    let range = run_text(&four_shards(zipf, 0.0, "Range(key_count: 10000)"));
    let hash = run_text(&four_shards(zipf, 0.0, "Hash"));
    // Zipf(1) over 10,000 keys: keys 0..2499 carry H(2500) / H(10000) of the requests.
    let h = |n: u64| (1..=n).map(|k| 1.0 / k as f64).sum::<f64>();
    let head = h(2500) / h(10000);
    let share0 = router(&range.variants[0], "shard0_share");
    assert!((share0 - head).abs() < 0.02, "{share0} vs {head}");
    assert!(
        router(&range.variants[0], "imbalance_max_over_mean")
            > router(&hash.variants[0], "imbalance_max_over_mean") + 1.0
    );
}

#[test]
fn the_router_reports_how_many_keys_a_new_shard_would_move() {
    let moved = |strategy: &str| {
        let r = run_text(&four_shards("Uniform(count: 1000)", 0.0, strategy));
        router(&r.variants[0], "keys_moved_if_shard_added")
    };
    assert!((moved("Hash") - 0.8).abs() < 0.02, "mod N: 4/5 move");
    let ring = moved("ConsistentHash(vnodes: 1000)");
    assert!(
        (ring - 0.2).abs() < 0.05,
        "ring: about 1/5 move, got {ring}"
    );
    assert!((moved("Range(key_count: 10000)") - 0.5).abs() < 1e-9);
}

#[test]
fn shards_may_be_replicated_stores_and_stay_linearizable() {
    let src = r#"Scenario(name: "sharded store", seed: 4, duration: "5s",
    nodes: {
        "users": KvClient(target: "router", arrival: Poisson(rate: 1000.0),
                          keys: Uniform(count: 50), write_fraction: 0.5, timeout: "500ms"),
        "router": ShardRouter(shards: ["a", "b"], strategy: Range(splits: [25]),
                              timeout: "400ms"),
        "a": ReplicatedStore(replicas: 3),
        "b": ReplicatedStore(replicas: 3),
    },
    faults: [Crash(node: "a-1", at: "1s", until: "2s")],
)"#;
    let r = run_text(src);
    let v = &r.variants[0];
    assert_holds(v, "history", "linearizable", "sharded replicated stores");
    assert_eq!(v.components["users"]["ok"], v.components["users"]["issued"]);
    assert!(v.components["history"]["reads_ok"] > 1000.0);
    // Every request a shard's replicas coordinated was routed to that shard.
    let coordinated = |group: &str| -> f64 {
        (0..3)
            .map(|i| {
                let c = &v.components[&format!("{group}-{i}")];
                c["reads_coordinated"] + c["writes_coordinated"]
            })
            .sum()
    };
    assert_eq!(coordinated("a"), router(v, "shard0_requests"));
    assert_eq!(coordinated("b"), router(v, "shard1_requests"));
}

#[test]
fn an_unreachable_shard_fails_fast_and_the_others_still_serve() {
    let src = r#"Scenario(name: "down shard", seed: 4, duration: "4s",
    nodes: {
        "users": KvClient(target: "router", arrival: Poisson(rate: 1000.0),
                          keys: Uniform(count: 1000), write_fraction: 0.0, timeout: "500ms"),
        "router": ShardRouter(shards: ["db-0", "db-1"], strategy: Range(splits: [500])),
        "db": Server(replicas: 2, workers: 4, service_time: Exponential(mean: "1ms")),
    },
    faults: [Crash(node: "db-1", at: "1s", until: "3s")],
)"#;
    let r = run_text(src);
    let v = &r.variants[0];
    let unreachable = router(v, "shard_unreachable");
    // db-1 owns half the keys and is down for half the run.
    assert!((unreachable / router(v, "requests") - 0.25).abs() < 0.03);
    assert_eq!(v.components["users"]["failed"], unreachable);
    // Only the few requests in service at db-1 when it crashed go unanswered (about one:
    // 500 req/s on the shard, ~1 ms each).
    assert!(v.components["users"]["indeterminate"] <= 3.0);
}

fn rejected(nodes: &str) -> String {
    let src = format!("Scenario(name: \"x\", duration: \"1s\", nodes: {{\n{nodes}\n}})");
    parse("bad.ron", &src, &Registry::builtin())
        .expect_err("the scenario should be rejected")
        .to_string()
}

#[test]
fn bad_router_configs_name_the_place() {
    let db = r#"  "db": Server(replicas: 2, service_time: Constant("1ms")),"#;
    // (node line, the text the error must point at, what it must say)
    let cases = [
        (
            r#"  "r": ShardRouter(shards: ["db-0", "nope"]),"#,
            r#""nope""#,
            "unknown node \"nope\"",
        ),
        (r#"  "r": ShardRouter(shards: []),"#, "[]", "0 shards"),
        (
            r#"  "r": ShardRouter(shards: ["db-0", "db-1"], strategy: Range(splits: [5, 9])),"#,
            "[5, 9]",
            "2 split points for 2 shards",
        ),
        (
            r#"  "r": ShardRouter(shards: ["db-0", "db-1", "db"], strategy: Range(splits: [9, 5])),"#,
            "5]",
            "5 does not come after 9",
        ),
        (
            r#"  "r": ShardRouter(shards: ["db"], strategy: Range()),"#,
            "Range()",
            "expected exactly one of `splits: [..]` or `key_count: ..`",
        ),
        (
            r#"  "r": ShardRouter(shards: ["db"], strategy: ConsistentHash(vnodes: 0)),"#,
            "0)",
            "0 virtual nodes",
        ),
    ];
    for (node, token, text) in cases {
        let err = rejected(&format!("{node}\n{db}"));
        let at = format!("bad.ron:2:{}", node.find(token).expect("token in line") + 1);
        assert!(err.contains(&at), "{at} in:\n{err}");
        assert!(err.contains(text), "`{text}` in:\n{err}");
    }
}

#[test]
fn sharding_hotspot_range_is_worst_and_the_celebrity_shard_is_hot_everywhere() {
    let file = super::repo_root().join("scenarios/sharding-hotspot.ron");
    let src = std::fs::read_to_string(file).expect("scenario exists");
    let r = run_text(&src);
    let [hash, ring, range] = &r.variants[..] else {
        panic!("three variants")
    };
    for v in [hash, ring, range] {
        // 20% of requests on key 0 plus its Zipf share: its shard carries at least that much.
        let max_share = (0..4)
            .map(|s| router(v, &format!("shard{s}_share")))
            .fold(0.0, f64::max);
        assert!(max_share > 0.25, "{}: {max_share}", v.name);
    }
    let imbalance = |v: &VariantResult| router(v, "imbalance_max_over_mean");
    assert!(imbalance(range) > imbalance(hash) + 1.0);
    assert!(imbalance(range) > imbalance(ring) + 1.0);
    // Range overloads shard 0 (its queue fills and rejects); hashing keeps every shard up.
    assert!(range.availability < 0.95, "{}", range.availability);
    assert_eq!(hash.availability, 1.0);
    assert_eq!(ring.availability, 1.0);
}
