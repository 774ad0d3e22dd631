//! Error messages: each malformed file names file:line:col, shows the line and says what was
//! expected; validation reports every problem at once.

use archsim::Registry;
use archsim::scenario::parse;

/// Parse `src` as `bad.ron`; every (location, text) pair must appear in the message.
fn check(src: &str, expected: &[(&str, &str)]) -> String {
    let err = parse("bad.ron", src, &Registry::builtin())
        .expect_err("the scenario should be rejected")
        .to_string();
    for (location, text) in expected {
        assert!(
            err.contains(&format!("bad.ron:{location}")),
            "missing location {location} in:\n{err}"
        );
        assert!(err.contains(text), "missing `{text}` in:\n{err}");
    }
    err
}

const GOOD_NODES: &str = r#"
        "users": Client(target: "lb", arrival: Poisson(rate: 100.0)),
        "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"]),
        "app": Server(replicas: 2, service_time: Exponential(mean: "1ms")),"#;

#[test]
fn syntax_error_names_the_position() {
    check(
        "Scenario(\n    name: \"x\",\n    duration: \"1s\"\n    nodes: {},\n)",
        &[("4:5", "Expected comma")],
    );
}

#[test]
fn unknown_field_lists_the_known_ones() {
    let src = "Scenario(name: \"x\", duration: \"1s\", nodes: {\n  \"app\": Server(workers: 2, service_tme: Constant(\"1ms\")),\n})";
    check(
        src,
        &[
            ("2:29", "unknown field `service_tme`"),
            ("2:29", "`service_time`"),
        ],
    );
}

#[test]
fn unknown_top_level_field_is_an_error() {
    check(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {}, seeed: 3)",
        &[("1:48", "unknown field `seeed`")],
    );
}

#[test]
fn bad_duration_says_what_a_duration_looks_like() {
    let src = format!(
        "Scenario(\n  name: \"x\",\n  duration: \"60 parsecs\",\n  nodes: {{{GOOD_NODES}}})"
    );
    check(
        &src,
        &[
            ("3:14", "` parsecs` is not a time unit"),
            ("3:14", "expected a duration string such as"),
        ],
    );
}

#[test]
fn unknown_variant_of_an_enum_lists_the_variants() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {{{GOOD_NODES}\n  \"lb2\": LoadBalancer(strategy: LeastConnection, backends: [\"app\"]),\n}})"
    );
    check(
        &src,
        &[
            ("5:33", "unknown variant `LeastConnection`"),
            ("5:33", "`LeastConnections`"),
        ],
    );
}

#[test]
fn validation_reports_every_problem_at_once() {
    let src = r#"Scenario(
    name: "x",
    duration: "10s",
    warmup: "20s",
    nodes: {
        "users": Client(target: "lbb", arrival: Poisson(rate: NaN)),
        "lb": LoadBalancer(strategy: RoundRobin, backends: ["app", "ghost"]),
        "app": Server(workers: 0, service_time: Exponential(mean: "1ms")),
    },
    faults: [
        Crash(node: "app-0", at: "5s", until: "2s"),
        Partition(groups: [[], ["app-0"]], at: "1s", until: "2s"),
        Slowdown(node: "app", factor: 0.0, at: "1s"),
    ],
)"#;
    let err = check(
        src,
        &[
            ("4:13", "expected a warm-up shorter than `duration`"),
            ("6:33", "unknown node \"lbb\""),
            (
                "6:33",
                "expected a declared node or group: \"app\", \"app-0\", \"lb\", \"users\"",
            ),
            ("6:63", "expected a positive, finite number"),
            ("7:68", "unknown node \"ghost\""),
            ("8:32", "expected a count >= 1"),
            ("11:47", "expected `until` later than `at`"),
            ("12:28", "expected at least one node name in each group"),
            ("13:39", "expected a positive, finite number"),
        ],
    );
    assert!(err.contains("8 errors found"), "{err}");
}

#[test]
fn a_problem_set_by_a_variant_points_at_the_override() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {{{GOOD_NODES}}},\n  variants: {{\n    \"a\": {{ \"app.workers\": 0 }},\n    \"b\": {{ \"lb.stratgy\": Random }},\n  }})"
    );
    check(
        &src,
        &[
            ("6:27", "expected a count >= 1"),
            ("6:27", "after variant \"a\" applies its overrides"),
            (
                "7:26",
                "`lb` has no field `stratgy`; expected one of: strategy, backends, timeout",
            ),
        ],
    );
}

#[test]
fn an_override_value_of_the_wrong_type_is_located_inside_the_override() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {{{GOOD_NODES}}},\n  variants: {{ \"a\": {{ \"lb.timeout\": 5 }} }})"
    );
    check(
        &src,
        &[
            ("5:36", "override `lb.timeout`"),
            ("5:36", "expected a string, e.g. a duration"),
        ],
    );
}

#[test]
fn weights_must_match_the_backends() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {{{GOOD_NODES}\n  \"lb2\": LoadBalancer(strategy: WeightedRoundRobin(weights: [1, 2, 3]), backends: [\"app\"]),\n}})"
    );
    check(&src, &[("5:61", "expected exactly 2 weights")]);
}

#[test]
fn the_rendered_error_shows_the_source_line_and_a_caret() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {{{GOOD_NODES}\n  \"u2\": Client(target: \"nope\", arrival: Poisson(rate: 1.0)),\n}})"
    );
    let err = check(&src, &[("5:24", "unknown node \"nope\"")]);
    assert!(
        err.contains("5 |   \"u2\": Client(target: \"nope\""),
        "{err}"
    );
    assert!(err.contains("^^^^^^"), "{err}");
}

#[test]
fn regression_a_misspelt_field_inside_a_fault_is_an_error_not_a_crash_that_never_ends() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"10s\", nodes: {{{GOOD_NODES}}},\n  faults: [Crash(node: \"app-0\", at: \"1s\", untill: \"6s\")])"
    );
    check(
        &src,
        &[("5:43", "unknown field `untill`"), ("5:43", "`until`")],
    );
}

#[test]
fn regression_a_misspelt_field_inside_a_strategy_is_an_error() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {{{GOOD_NODES}\n  \"lb2\": LoadBalancer(strategy: ConsistentHash(vnode: 5), backends: [\"app\"]),\n}})"
    );
    check(&src, &[("5:48", "unknown field `vnode`")]);
}

#[test]
fn regression_a_node_named_like_another_pools_replica_is_an_error() {
    let src = "Scenario(name: \"x\", duration: \"1s\", nodes: {\n  \"app\": Server(replicas: 2, service_time: Constant(\"1ms\")),\n  \"app-1\": Server(service_time: Constant(\"1ms\")),\n})";
    check(src, &[("3:12", "\"app-1\" is already the name of a node")]);
}

#[test]
fn regression_closed_loop_users_must_think() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {{{GOOD_NODES}\n  \"u2\": Client(target: \"lb\", arrival: Closed(users: 3, think_time: Constant(\"0s\"))),\n}})"
    );
    check(
        &src,
        &[("5:68", "expected a think time with a positive mean")],
    );
}

#[test]
fn no_mangled_scenario_makes_the_parser_panic() {
    // Deterministic mutations of a real scenario: cut a range, or insert a troublesome
    // character. Every result must parse or be rejected with a message; none may panic.
    use archsim::sim::rng::{RandomSource, SimRng};
    let src =
        std::fs::read_to_string(super::repo_root().join("scenarios/lb-strategies.ron")).unwrap();
    let boundaries: Vec<usize> = src
        .char_indices()
        .map(|(i, _)| i)
        .chain([src.len()])
        .collect();
    let inserts = [
        "(", ")", "{", "}", "\"", ",", ":", "é", "\n", "-1", "NaN", "//", "/*", "r#\"", "Some(",
    ];
    let mut rng = SimRng::derive(99, "mangle");
    for round in 0..1500 {
        let a = boundaries[rng.below(boundaries.len() as u64) as usize];
        let mangled = if round % 2 == 0 {
            let len = 1 + rng.below(40) as usize;
            let b = boundaries
                .iter()
                .copied()
                .find(|&b| b >= a + len)
                .unwrap_or(src.len());
            format!("{}{}", &src[..a], &src[b..])
        } else {
            let ins = inserts[rng.below(inserts.len() as u64) as usize];
            format!("{}{ins}{}", &src[..a], &src[a..])
        };
        if let Err(e) = parse("mangled.ron", &mangled, &Registry::builtin()) {
            let text = e.to_string();
            assert!(
                text.contains("mangled.ron:"),
                "round {round}: no location in\n{text}"
            );
        }
    }
}

#[test]
fn resilience_options_are_validated_with_their_locations() {
    let src = r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 10.0),
                  retry: Some((max_attempts: 0, backoff: Exponential(base: "10ms", cap: "1ms")))),
  "app": Server(service_time: Constant("1ms"), calls: [(to: ["db", "nope"], wait_for: Some(3))]),
  "db": Server(service_time: Constant("1ms")),
  "cb": CircuitBreaker(target: "db", breaker: (failure_rate: 1.5, min_calls: 30)),
  "rl": RateLimiter(target: "db", algorithm: FixedWindow(limit: 0, window: "1s")),
})"#;
    check(
        src,
        &[
            ("3:46", "zero attempts"),
            ("3:89", "the cap is below the base"),
            ("4:68", "unknown node \"nope\""),
            ("4:87", "waiting for 3 of 2 calls"),
            ("6:62", "failure rate 1.5"),
            ("6:78", "30 calls never fit a window of 20"),
            ("7:65", "a limit of zero admits nothing"),
        ],
    );
}

#[test]
fn regression_a_client_targeting_a_client_is_refused() {
    let src = r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "others", arrival: Poisson(rate: 1.0)),
  "others": Client(target: "app", arrival: Poisson(rate: 1.0)),
  "app": Server(service_time: Constant("1ms")),
})"#;
    check(
        src,
        &[
            ("2:27", "\"others\" is a Client"),
            ("2:27", "expected a node that answers requests"),
        ],
    );
}

#[test]
fn regression_the_transaction_parts_must_name_each_other() {
    let src = r#"Scenario(name: "x", duration: "1s", nodes: {
  "c": TxnClient(coordinator: "shard", participants: "coord", k: 1, arrival: Poisson(rate: 1.0)),
  "coord": TxnCoordinator(participants: "shard"),
  "coord2": TxnCoordinator(participants: "shard"),
  "shard": TxnParticipant(replicas: 2, coordinator: "coord2"),
})"#;
    check(
        src,
        &[
            ("2:31", "\"shard\" is a TxnParticipant"),
            ("2:54", "\"coord\" is a TxnCoordinator"),
            ("4:13", "a second TxnCoordinator"),
            ("5:53", "but \"coord\" runs this group's transactions"),
        ],
    );
}

#[test]
fn regression_a_loop_of_server_calls_is_named_with_every_hop() {
    let src = r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "lb", arrival: Poisson(rate: 1.0)),
  "lb": LoadBalancer(strategy: RoundRobin, backends: ["a"]),
  "a": Server(service_time: Constant("1ms"), calls: [(to: ["b"])]),
  "b": Server(service_time: Constant("1ms"), calls: [(to: ["lb"])]),
  "self": Bulkhead(target: "self", max_concurrent: 1),
})"#;
    check(
        src,
        &[
            (
                "5:60",
                "requests go round a loop: \"lb\" -> \"a\" -> \"b\" -> \"lb\"",
            ),
            ("6:28", "requests go round a loop: \"self\" -> \"self\""),
        ],
    );
}

#[test]
fn regression_observer_names_must_not_clash() {
    let src = r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": KvClient(target: "store", arrival: Poisson(rate: 1.0), history: "store-convergence"),
  "store": ReplicatedStore(),
  "kv2": KvClient(target: "store", arrival: Poisson(rate: 1.0), history: "users"),
})"#;
    check(
        src,
        &[
            (
                "3:12",
                "\"store-convergence\" already names the run's history",
            ),
            ("4:74", "\"users\" is also a node's name"),
        ],
    );
}

#[test]
fn regression_duplicate_keys_are_errors_with_both_locations() {
    let src = r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 1.0)),
  "users": Client(target: "app", arrival: Poisson(rate: 2.0)),
  "app": Server(service_time: Constant("1ms")),
}, variants: {
  "a": { "app.workers": 2, "app.workers": 3 },
  "a": {},
}, sweep: (parameters: {
  "users.arrival.rate": (values: [1.0]),
  "users.arrival.rate": (values: [2.0]),
}))"#;
    let err = check(
        src,
        &[
            ("3:3", "key \"users\" appears twice in `nodes`"),
            ("3:3", "first written at 2:3"),
            (
                "6:28",
                "key \"app.workers\" appears twice in `variants.\"a\"`",
            ),
            ("7:3", "key \"a\" appears twice in `variants`"),
            ("10:3", "key \"users.arrival.rate\" appears twice"),
        ],
    );
    assert!(err.contains("4 errors found"), "{err}");
}

#[test]
fn regression_a_file_that_ends_inside_a_bracket_says_so() {
    check(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {\n  \"a\": Server(service_time: Constant(\"1ms\"))\n",
        &[(
            "2:45",
            "the file ended before the `{` opened at 1:44 was closed",
        )],
    );
    check(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {}, faults: [",
        &[("1:56", "the file ended before the `[` opened at 1:56")],
    );
}

#[test]
fn regression_single_quotes_are_located_at_the_quote() {
    check(
        "Scenario(name: 'x', duration: \"1s\", nodes: {})",
        &[
            ("1:16", "a string in single quotes"),
            ("1:16", "expected double quotes"),
        ],
    );
}

#[test]
fn regression_a_byte_order_mark_is_named() {
    check(
        "\u{feff}Scenario(name: \"x\", duration: \"1s\", nodes: {})",
        &[("1:1", "byte-order mark")],
    );
}

#[test]
fn regression_deep_nesting_says_how_deep_and_echoes_no_huge_line() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {{\"a\": {}{}}})",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = check(&src, &[("1:", "nested deeper than 128 levels")]);
    assert!(!err.contains("recursion_limit"), "{err}");
    assert!(err.len() < 2_000, "{} bytes:\n{err}", err.len());
}

#[test]
fn regression_negative_and_huge_durations_say_what_is_wrong() {
    check(
        "Scenario(name: \"x\", duration: \"-5s\", nodes: {})",
        &[("1:32", "a duration cannot be negative")],
    );
    let digits = format!(
        "Scenario(name: \"x\", duration: \"{}s\", nodes: {{}})",
        "9".repeat(401)
    );
    let err = check(
        &digits,
        &[("1:32", "is too long (the limit is about 584 years)")],
    );
    assert!(err.len() < 2_000, "{} bytes:\n{err}", err.len());
    check(
        "Scenario(name: \"x\", duration: \"99999999999999999999999999h\", nodes: {})",
        &[("1:32", "is too long")],
    );
}

#[test]
fn regression_a_pool_of_zero_replicas_is_not_also_an_unknown_name() {
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\", nodes: {{{GOOD_NODES}\n  \"db\": Server(replicas: 0, service_time: Constant(\"1ms\")),\n  \"u2\": Client(target: \"db\", arrival: Poisson(rate: 1.0)),\n}})"
    );
    let err = check(
        &src,
        &[("5:26", "a server pool needs at least one replica")],
    );
    assert!(!err.contains("unknown node"), "{err}");
    assert!(err.contains("1 error found"), "{err}");
}

#[test]
fn regression_node_names_say_they_must_be_ascii() {
    let src = "Scenario(name: \"x\", duration: \"1s\", nodes: {\"usérs\": Server(service_time: Constant(\"1ms\"))})";
    check(
        src,
        &[("1:", "expected ASCII letters, digits, '-' and '_' only")],
    );
}

#[test]
fn regression_a_late_error_on_a_huge_line_shows_an_excerpt() {
    let pad = " ".repeat(5_000_000);
    let src = format!(
        "Scenario(name: \"x\", duration: \"1s\",{pad} nodes: {{\"a\": Server(workers: 0, service_time: Constant(\"1ms\"))}})"
    );
    let col = src.find("0, service").map_or(0, |i| i + 1);
    let err = check(
        &src,
        &[(&format!("1:{col}"), "a server needs at least one worker")],
    );
    assert!(err.len() < 2_000, "{} bytes:\n{err}", err.len());
    assert!(err.contains("...") && err.contains("workers: 0"), "{err}");
}

#[test]
fn regression_huge_pools_and_allocations_are_refused_before_anything_is_built() {
    let src = r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 1.0)),
  "app": Server(replicas: 1000000000, service_time: Constant("1ms")),
  "w": Server(workers: 1000000000, service_time: Constant("1ms")),
  "lb": LoadBalancer(strategy: ConsistentHash(vnodes: 4000000000), backends: ["w"]),
  "cb": CircuitBreaker(target: "w", breaker: (window: 4000000000, min_calls: 1)),
})"#;
    check(
        src,
        &[
            ("3:27", "more than 100000 nodes"),
            ("4:24", "expected at most 10000 workers per replica"),
            ("5:55", "expected a count from 1 to 10000"),
            ("6:55", "a window of 4000000000 calls"),
        ],
    );
}

#[test]
fn a_quoted_enum_value_is_named_as_such() {
    // `archsim list` once printed defaults as `"RoundRobin"`; a user copying one got only
    // "Expected identifier".
    let src = "Scenario(name: \"x\", duration: \"1s\", nodes: {\n  \"lb\": LoadBalancer(strategy: \"RoundRobin\", backends: [\"lb\"]),\n})";
    check(
        src,
        &[
            ("2:32", "is quoted"),
            ("2:32", "without quotes: `RoundRobin`"),
        ],
    );
}

#[test]
fn a_decimal_point_in_a_whole_number_field_is_named_as_such() {
    let src = "Scenario(name: \"x\", duration: \"1s\", nodes: {\n  \"app\": Server(queue_limit: 50.0),\n})";
    check(
        src,
        &[
            ("2:", "takes a whole number"),
            ("2:", "expected `50`, without a decimal point"),
        ],
    );
}

#[test]
fn a_space_between_number_and_unit_is_allowed_as_documented() {
    let src = format!("Scenario(name: \"x\", duration: \"2 s\", nodes: {{{GOOD_NODES}\n}})");
    let s = parse("ok.ron", &src, &Registry::builtin()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.base.duration.to_string(), "2s");
}

#[test]
fn data_path_options_are_validated_with_their_locations() {
    let src = r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "edge", arrival: Poisson(rate: 10.0),
                  keys: HotSet(count: 10, hot_keys: 0, hot_fraction: 1.5, first: 10)),
  "edge": Cache(backend: "app", purge_to: ["app"], early_refresh: Some(-1.0)),
  "app": Server(service_time: Constant("1ms")),
  "db": ReadReplicas(replicas: 2, replication: SemiSync(acks: 3), routing: BoundedStaleness(max_lag: "0s")),
})"#;
    check(
        src,
        &[
            ("3:53", "expected 1 to `count` (10) hot keys, found 0"),
            ("3:70", "expected a fraction from 0.0 to 1.0, found 1.5"),
            ("3:82", "expected a key below `count` (10), found 10"),
            ("4:44", "\"app\" is a Server"),
            ("4:44", "expected a Cache"),
            ("4:67", "β = -1"),
            ("4:67", "early refresh without a `ttl`"),
            ("6:48", "3 acks from 2 replicas"),
            ("6:76", "a zero `max_lag` sends every read to the primary"),
        ],
    );
}
