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
