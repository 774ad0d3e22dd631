//! Global traffic management between regions (DNS/GSLB): failover after a region's entry
//! point fails takes the health checks' detection time plus the client's remaining TTL, to
//! the nanosecond with constant latencies; no request goes to an unhealthy region once every
//! cached answer has expired; lost requests match rate × (detection + mean remaining TTL).

use crate::run_text;
use archsim::results::VariantResult;

/// Two regions, one zone each, 1 ms one way between any two nodes (the GSLB is in no zone:
/// its probes take the default 1 ms too). Entry "a" in east (the primary), "b" in west.
fn scenario(policy: &str, ttl: &str, clients: &str, faults: &str) -> String {
    format!(
        r#"Scenario(name: "gslb", seed: 11, duration: "20s",
        network: (latency: Constant("1ms"), regions: {{"east": ["e1"], "west": ["w1"]}}),
        nodes: {{
            {clients}
            "dns": Gslb(entries: [(target: "a"), (target: "b")], policy: {policy}, ttl: "{ttl}",
                        health_check: (interval: "1s", timeout: "450500us",
                                       unhealthy_threshold: 3, healthy_threshold: 2)),
            "a": Server(workers: 64, service_time: Constant("1ms"), zone: "e1"),
            "b": Server(workers: 64, service_time: Constant("1ms"), zone: "w1"),
        }},
        faults: [{faults}],
    )"#
    )
}

const OUTAGE_S: f64 = 10.2;
const INTERVAL_S: f64 = 1.0;
const TIMEOUT_S: f64 = 0.4505;
const THRESHOLD: f64 = 3.0;
const ONE_WAY_S: f64 = 0.001;

/// When the GSLB marks "a" unhealthy: the first probe that arrives after the outage (probes
/// leave at k × interval and take one one-way latency) and the threshold − 1 after it fail,
/// the last at its timeout.
fn detection_at() -> f64 {
    let first_failed = ((OUTAGE_S - ONE_WAY_S) / INTERVAL_S).ceil() * INTERVAL_S;
    first_failed + (THRESHOLD - 1.0) * INTERVAL_S + TIMEOUT_S
}

fn counter(v: &VariantResult, node: &str, name: &str) -> f64 {
    *v.components[node]
        .get(name)
        .unwrap_or_else(|| panic!("{node} has no counter {name}: {:?}", v.components[node]))
}

fn one_client(ttl: &str) -> VariantResult {
    let client = r#""users": Client(target: "dns", arrival: Constant(rate: 1000.0), zone: "e1",
                                   dns: (caches: 1, synchronised: true)),"#;
    let fault = format!(r#"Crash(node: "a", at: "{OUTAGE_S}s")"#);
    run_text(&scenario("Failover", ttl, client, &fault))
        .variants
        .remove(0)
}

/// Within a nanosecond, as counters hold seconds in an f64.
fn same_ns(got: f64, want: f64) -> bool {
    (got - want).abs() < 1e-9
}

#[test]
fn failover_comes_after_detection_plus_the_remaining_ttl_to_the_nanosecond() {
    let v = one_client("5s");
    let detected = detection_at();
    let got = counter(&v, "dns", "first_unhealthy_at_s.east");
    assert!(
        same_ns(got, detected),
        "detected at {got}, expected {detected}"
    );
    // One cache, resolved at the first request (1 ms) and then every TTL: the answer that
    // names "b" is the first resolution after detection.
    let (first, ttl) = (0.001, 5.0);
    let expiry = first + ((detected - first) / ttl).ceil() * ttl;
    let remaining = expiry - detected;
    let switch = OUTAGE_S + (detected - OUTAGE_S) + remaining;
    let got = counter(&v, "users", "first_switch_at_s");
    assert!(same_ns(got, switch), "switched at {got}, expected {switch}");
    assert!(same_ns(switch, 15.001), "the arithmetic above: {switch}");
    // It reaches "b" one one-way latency later; nothing went to "a" after the switch.
    let last_a = counter(&v, "users", "last_routed_at_s.east");
    assert!(
        same_ns(last_a, switch - 0.001),
        "last request to east at {last_a}"
    );
    // Every request from the outage to the switch failed (routed to east, found it down):
    // one per millisecond.
    let failed = counter(&v, "users", "routed_to.east") - OUTAGE_S * 1000.0 + 1.0;
    let want = ((switch - OUTAGE_S) * 1000.0).round();
    assert!(
        (failed - want).abs() <= 1.0,
        "{failed} failed, expected {want}"
    );
}

#[test]
fn with_ttl_zero_failover_takes_the_detection_time() {
    let v = one_client("0s");
    let detected = detection_at();
    // Every request resolves: the first after detection (arrivals every 1 ms) goes to "b".
    let want = (detected * 1000.0).ceil() / 1000.0;
    let got = counter(&v, "users", "first_switch_at_s");
    assert!(same_ns(got, want), "switched at {got}, expected {want}");
    assert!(counter(&v, "users", "dns_resolutions") > 19_000.0);
}

/// Clients in both regions, 100 caches each expiring at spread times, nearest-region answers.
fn spread(extra_dns: &str) -> VariantResult {
    let clients = format!(
        r#""east-users": Client(target: "dns", arrival: Poisson(rate: 2000.0), zone: "e1",
                                dns: (caches: 100{extra_dns})),
           "west-users": Client(target: "dns", arrival: Poisson(rate: 2000.0), zone: "w1"),"#
    );
    let fault = format!(r#"Crash(node: "a", at: "{OUTAGE_S}s")"#);
    run_text(&scenario("Nearest", "2s", &clients, &fault))
        .variants
        .remove(0)
}

#[test]
fn no_request_goes_to_an_unhealthy_region_once_every_ttl_has_expired() {
    let detected = detection_at();
    for (extra, hold) in [("", 2.0), (r#", cache_for: Some("5s")"#, 5.0)] {
        let v = spread(extra);
        let last = counter(&v, "east-users", "last_routed_at_s.east");
        assert!(
            last <= detected + hold,
            "{extra}: sent to east at {last}, after detection {detected} + {hold}"
        );
        // The caches expire at spread times: the last ones hold on to nearly a whole TTL.
        assert!(
            last >= detected + 0.9 * hold,
            "{extra}: last sent at {last}"
        );
        // West's users are served at home all along.
        assert_eq!(counter(&v, "west-users", "failed"), 0.0);
        assert!(v.components["west-users"].get("routed_to.east").copied() == Some(0.0));
        // Lost requests: rate × (detection + mean remaining hold, half of it).
        let lost = counter(&v, "east-users", "failed");
        let want = 2000.0 * (detected - OUTAGE_S + hold / 2.0);
        // Poisson noise (√want) and the spread of 100 uniform expiry phases (hold × √(1/12)/10).
        let sd = (want + (2000.0 * hold * (1.0f64 / 12.0).sqrt() / 10.0).powi(2)).sqrt();
        assert!(
            (lost - want).abs() <= 4.0 * sd,
            "{extra}: lost {lost}, expected {want} ± {}",
            4.0 * sd
        );
    }
}

#[test]
fn each_region_is_served_locally_until_its_own_entry_fails() {
    let v = spread("");
    // Before the outage, east's users went to east only; after it, to west.
    let to_east = counter(&v, "east-users", "routed_to.east");
    let to_west = counter(&v, "east-users", "routed_to.west");
    assert!(to_east > 0.5 * 2000.0 * OUTAGE_S, "{to_east}");
    assert!(
        to_west > 0.5 * 2000.0 * (20.0 - detection_at() - 2.0),
        "{to_west}"
    );
    let p50 = counter(&v, "west-users", "latency_p50_ms");
    assert!(
        (p50 - 3.0).abs() < 0.01,
        "1 ms each way and 1 ms service: {p50}"
    );
}

#[test]
fn gslb_options_are_validated_with_their_locations() {
    let src = r#"Scenario(name: "bad", seed: 1, duration: "5s",
    network: (latency: Constant("1ms"), regions: {"east": ["e1"], "west": ["w1"]}),
    nodes: {
        "users": Client(target: "dns", arrival: Poisson(rate: 10.0), zone: "e1", dns: (caches: 0)),
        "other": Client(target: "a", arrival: Poisson(rate: 10.0), dns: (synchronised: true)),
        "dns": Gslb(entries: [(target: "a", region: Some("mars")), (target: "nope"), (target: "c")],
                    health_check: (interval: "1s", unhealthy_threshold: 0)),
        "a": Server(service_time: Constant("1ms"), zone: "e1"),
        "c": Server(service_time: Constant("1ms")),
    },
)"#;
    let err = archsim::scenario::parse("bad.ron", src, &archsim::Registry::builtin())
        .expect_err("rejected")
        .to_string();
    for (at, text) in [
        ("bad.ron:4:", "expected a count from 1 to 1000000"),
        ("bad.ron:5:", "\"a\" is not a Gslb"),
        ("bad.ron:6:", "unknown region \"mars\""),
        ("bad.ron:6:", "unknown node \"nope\""),
        ("bad.ron:6:", "entry point \"c\" is in no zone"),
        ("bad.ron:7:", "a threshold of zero"),
    ] {
        assert!(
            err.contains(at) && err.contains(text),
            "missing {at} {text} in:\n{err}"
        );
    }
    let negative = src.replace("health_check:", r#"ttl: "-1s", health_check:"#);
    let err = archsim::scenario::parse("bad.ron", &negative, &archsim::Registry::builtin())
        .expect_err("rejected")
        .to_string();
    assert!(err.contains("a duration cannot be negative"), "{err}");
}
