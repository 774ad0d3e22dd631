//! The network a design runs on: zones and regions (latency per zone pair, zone and region
//! faults), locality-aware routing, link capacities (serialization, FIFO, M/D/1) and the
//! message faults duplication and reordering, checked exactly or against theory.

use crate::run_text;
use archsim::Registry;
use archsim::results::VariantResult;
use archsim::scenario::parse;

/// Two regions: "east" with zones e1 and e2, "west" with w1. Constant latencies: 1 ms within
/// a zone, 5 ms across zones, 35 ms across regions.
const REGIONS: &str = r#"network: (
        latency: Constant("1ms"),
        regions: {"east": ["e1", "e2"], "west": ["w1"]},
        cross_zone: Some(Constant("5ms")),
        cross_region: Some(Constant("35ms")),
        ZONE_LINKS
    ),"#;

fn scenario(network_extra: &str, nodes: &str, faults: &str, duration: &str) -> String {
    let network = REGIONS.replace("ZONE_LINKS", network_extra);
    format!(
        r#"Scenario(name: "net", seed: 5, duration: "{duration}", {network}
        nodes: {{ {nodes} }},
        faults: [{faults}],
    )"#
    )
}

/// Equal up to the latency histogram's resolution (3 significant digits): latencies are exact
/// in the simulation, and recorded with at most 0.1% error.
fn exact(got: f64, want: f64) -> bool {
    (got - want).abs() <= want * 1e-3
}

fn counter(v: &VariantResult, node: &str, name: &str) -> f64 {
    v.components[node][name]
}

/// A client in e1 calls one server with a constant 1 ms service: the round trip is exactly
/// twice the one-way latency of the zone pair, plus the service.
#[test]
fn latency_follows_the_zone_pair() {
    for (zone, extra, one_way_ms) in [
        ("e1", "", 1.0),
        ("e2", "", 5.0),
        ("w1", "", 35.0),
        (
            "w1",
            r#"zone_links: [(from: "east", to: "west", latency: Some(Constant("70ms")))],"#,
            70.0,
        ),
        (
            "e2",
            r#"links: [(from: "users", to: "app", latency: Constant("2ms"), both_ways: true)],"#,
            2.0,
        ),
    ] {
        let nodes = format!(
            r#""users": Client(target: "app", arrival: Constant(rate: 10.0), zone: "e1"),
               "app": Server(service_time: Constant("1ms"), zone: "{zone}"),"#
        );
        let r = run_text(&scenario(extra, &nodes, "", "5s"));
        let l = &r.variants[0].latency_ms;
        let want = 2.0 * one_way_ms + 1.0;
        assert!(r.variants[0].ok > 40, "{zone}: {}", r.variants[0].ok);
        assert!(
            exact(l.mean, want) && exact(l.max, want),
            "{zone} {extra}: mean {} max {}, expected exactly {want} ms",
            l.mean,
            l.max
        );
    }
}

/// A balancer in e1 over six replicas, three in e1 and three in e2 (`zones` spreads them in
/// turn), routing local-first.
fn locality(faults: &str) -> VariantResult {
    let nodes = r#"
        "users": Client(target: "lb", arrival: Poisson(rate: 2000.0), zone: "e1"),
        "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], zone: "e1",
                           locality: Some((prefer: SameZone))),
        "app": Server(replicas: 6, workers: 8, service_time: Exponential(mean: "1ms"),
                      zones: ["e1", "e2"]),"#;
    run_text(&scenario("", nodes, faults, "10s"))
        .variants
        .remove(0)
}

#[test]
fn local_first_routing_sends_nothing_across_zones_without_faults() {
    let v = locality("");
    let same = counter(&v, "lb", "forwarded_same_zone");
    assert!(same > 15_000.0, "{same}");
    assert_eq!(counter(&v, "lb", "forwarded_cross_zone"), 0.0);
    assert_eq!(counter(&v, "lb", "forwarded_cross_region"), 0.0);
}

#[test]
fn after_a_local_outage_cross_zone_traffic_is_the_spilled_fraction() {
    // Two of the three local replicas (app-0, app-2) are down for the whole run: the local
    // tier is 1/3 healthy, so it keeps 1.4 × 1/3 of the traffic (Envoy's overprovisioning)
    // and 1 − 1.4/3 spills to e2.
    let faults = r#"Crash(node: "app-0", at: "0s"), Crash(node: "app-2", at: "0s")"#;
    let v = locality(faults);
    let same = counter(&v, "lb", "forwarded_same_zone");
    let cross = counter(&v, "lb", "forwarded_cross_zone");
    let n = same + cross;
    let spilled = 1.0 - 1.4 / 3.0;
    let sigma = (spilled * (1.0 - spilled) / n).sqrt();
    let got = cross / n;
    eprintln!("spilled: simulated {got:.4}, theory {spilled:.4} (sigma {sigma:.4}, n {n})");
    assert!((got - spilled).abs() < 4.0 * sigma, "{got} vs {spilled}");
    assert_eq!(v.errors.values().sum::<u64>(), 0, "{:?}", v.errors);

    // An outage of the other zone changes nothing for a local-first balancer.
    let v = locality(r#"ZoneOutage(zone: "e2", at: "0s")"#);
    assert_eq!(counter(&v, "lb", "forwarded_cross_zone"), 0.0);
    assert_eq!(v.errors.values().sum::<u64>(), 0, "{:?}", v.errors);
}

/// A balancer in e1 preferring its region over six replicas spread over e1, e2 and w1 (two
/// each): e1 and e2 are one tier, w1 the next.
fn same_region(faults: &str) -> VariantResult {
    let nodes = r#"
        "users": Client(target: "lb", arrival: Poisson(rate: 2000.0), zone: "e1"),
        "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], zone: "e1",
                           locality: Some((prefer: SameRegion))),
        "app": Server(replicas: 6, workers: 8, service_time: Exponential(mean: "1ms"),
                      zones: ["e1", "e2", "w1"]),"#;
    run_text(&scenario("", nodes, faults, "10s"))
        .variants
        .remove(0)
}

#[test]
fn same_region_routing_treats_the_other_zones_of_the_region_as_local() {
    // No faults: round robin over the four replicas of the east region, none to the west.
    let v = same_region("");
    let same = counter(&v, "lb", "forwarded_same_zone");
    let cross_zone = counter(&v, "lb", "forwarded_cross_zone");
    assert_eq!(counter(&v, "lb", "forwarded_cross_region"), 0.0);
    assert!((same - cross_zone).abs() <= 2.0, "{same} vs {cross_zone}");
    assert!(same > 7_000.0, "{same}");

    // Three of the four east replicas down (app-0 in e1, app-1 and app-4 in e2): the region
    // keeps 1.4 × 1/4 of the traffic and 1 − 0.35 spills to the west.
    let faults = r#"Crash(node: "app-0", at: "0s"), Crash(node: "app-1", at: "0s"),
                    Crash(node: "app-4", at: "0s")"#;
    let v = same_region(faults);
    let local =
        counter(&v, "lb", "forwarded_same_zone") + counter(&v, "lb", "forwarded_cross_zone");
    let west = counter(&v, "lb", "forwarded_cross_region");
    let n = local + west;
    let spilled = 1.0 - 1.4 / 4.0;
    let sigma = (spilled * (1.0 - spilled) / n).sqrt();
    let got = west / n;
    eprintln!("spilled: simulated {got:.4}, theory {spilled:.4} (sigma {sigma:.4}, n {n})");
    assert!((got - spilled).abs() < 4.0 * sigma, "{got} vs {spilled}");
    assert_eq!(v.errors.values().sum::<u64>(), 0, "{:?}", v.errors);
}

#[test]
fn spill_on_load_sends_the_overflow_to_the_next_zone() {
    // One slow local replica with a load threshold: once it holds 2 calls on average, requests
    // go to e2; without the threshold everything would queue locally.
    let nodes = r#"
        "users": Client(target: "lb", arrival: Poisson(rate: 800.0), zone: "e1"),
        "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], zone: "e1",
                           locality: Some((prefer: SameZone, max_load: Some(2.0)))),
        "app": Server(replicas: 2, service_time: Exponential(mean: "2ms"), zones: ["e1", "e2"]),"#;
    let v = run_text(&scenario("", nodes, "", "10s")).variants.remove(0);
    let cross = counter(&v, "lb", "forwarded_cross_zone");
    let same = counter(&v, "lb", "forwarded_same_zone");
    // Offered 1.6 Erlang to one local server: it cannot take it all.
    assert!(cross > 0.2 * (same + cross), "same {same}, cross {cross}");
    assert!(same > 0.3 * (same + cross), "same {same}, cross {cross}");
}

#[test]
fn region_faults_cut_and_degrade_the_links_between_regions() {
    let nodes = r#"
        "users": Client(target: "app", arrival: Constant(rate: 100.0), timeout: "1s", zone: "e1"),
        "app": Server(service_time: Constant("1ms"), zone: "w1"),"#;
    // Partition east | west from 2 s to 4 s: the 200 requests sent then find the server
    // unreachable, and the 7 sent in the 70 ms round trip before it lose their answers.
    let part = r#"RegionPartition(groups: [["east"], ["west"]], at: "2s", until: "4s")"#;
    let v = run_text(&scenario("", nodes, part, "6s"))
        .variants
        .remove(0);
    let (unreachable, timeout) = (v.errors["unreachable"], v.errors["timeout"]);
    assert!((199..=201).contains(&unreachable), "{:?}", v.errors);
    assert!((6..=8).contains(&timeout), "{:?}", v.errors);
    // Degrade the link to 100 ms each way for the whole run: 201 ms per request.
    let slow =
        r#"DegradedLink(from: "east", to: "west", latency: Some(Constant("100ms")), at: "0s")"#;
    let v = run_text(&scenario("", nodes, slow, "3s"))
        .variants
        .remove(0);
    assert!(exact(v.latency_ms.mean, 201.0), "{}", v.latency_ms.mean);
    // A region outage of west: nothing is served while it lasts.
    let out = r#"RegionOutage(region: "west", at: "1s", until: "2s")"#;
    let v = run_text(&scenario("", nodes, out, "3s")).variants.remove(0);
    let failed: u64 = v.errors.values().sum();
    assert!((95..=105).contains(&failed), "{failed}: {:?}", v.errors);
}

/// Parse `src` as `bad.ron`; every (location, text) pair must appear in the error.
pub(crate) fn rejected(src: &str, expected: &[(&str, &str)]) {
    let err = parse("bad.ron", src, &Registry::builtin())
        .expect_err("the scenario should be rejected")
        .to_string();
    for (location, text) in expected {
        assert!(
            err.contains(&format!("bad.ron:{location}")) && err.contains(text),
            "missing `{text}` at {location} in:\n{err}"
        );
    }
}

#[test]
fn zones_are_validated_with_their_locations() {
    let src = r#"Scenario(name: "x", duration: "1s",
  network: (regions: {"east": ["e1"]}, zone_links: [(from: "east", to: "mars", loss: Some(0.1))]),
  nodes: {
    "users": Client(target: "app", arrival: Poisson(rate: 10.0), zone: "e9"),
    "app": Server(service_time: Constant("1ms"), zones: ["e1", "e1"]),
    "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], locality: Some(())),
  },
  faults: [ZoneOutage(zone: "nowhere", at: "0s")],
)"#;
    rejected(
        src,
        &[
            ("2:72", "unknown zone or region \"mars\""),
            ("4:72", "unknown zone \"e9\""),
            ("6:75", "prefers its own zone but is in none"),
            ("8:29", "unknown zone \"nowhere\""),
        ],
    );
}

/// One client and one server, 1 ms each way and a 1 ms service; `extra` goes into `network`.
fn sized(network: &str, client: &str, server: &str, faults: &str, duration: &str) -> String {
    format!(
        r#"Scenario(name: "bw", seed: 9, duration: "{duration}",
        network: (latency: Constant("1ms"), {network}),
        nodes: {{
            "users": Client(target: "app", timeout: "100s", {client}),
            "app": Server(workers: 1000, service_time: Constant("1ms"), {server}),
        }},
        faults: [{faults}],
    )"#
    )
}

#[test]
fn serialization_adds_size_over_capacity_exactly() {
    // 125 kB requests and 250 kB replies on 1 Gbps (125 MB/s): 1 ms and 2 ms on the wire, on
    // top of 1 ms each way and 1 ms of service; 10 requests/s never queue.
    let src = sized(
        r#"bandwidth: Some("1Gbps")"#,
        r#"arrival: Constant(rate: 10.0), request_size: Constant("125KB")"#,
        r#"response_size: Constant("250KB")"#,
        "",
        "5s",
    );
    let v = run_text(&src).variants.remove(0);
    let want = 1.0 + 1.0 + 1.0 + 1.0 + 2.0;
    assert!(v.ok > 40);
    assert!(
        exact(v.latency_ms.mean, want) && exact(v.latency_ms.max, want),
        "mean {} max {}, expected exactly {want} ms",
        v.latency_ms.mean,
        v.latency_ms.max
    );
    // A per-link capacity overrides the default, in one direction only.
    let src = sized(
        r#"bandwidth: Some("1Gbps"), links: [(from: "users", to: "app", bandwidth: Some("500Mbps"))]"#,
        r#"arrival: Constant(rate: 10.0), request_size: Constant("125KB")"#,
        r#"response_size: Constant("250KB")"#,
        "",
        "5s",
    );
    let v = run_text(&src).variants.remove(0);
    assert!(exact(v.latency_ms.mean, 7.0), "{}", v.latency_ms.mean);
}

#[test]
fn queueing_for_the_wire_matches_m_d_1() {
    // Poisson requests of 125 kB on 1 Gbps: D = 1 ms on the wire, ρ = 0.7. The wait for the
    // wire is M/D/1's Wq = ρ D / (2 (1 − ρ)); replies are empty and never wait.
    let (rate, d_ms) = (700.0, 1.0);
    let rho: f64 = rate * d_ms / 1000.0;
    let src = sized(
        r#"bandwidth: Some("1Gbps")"#,
        &format!(r#"arrival: Poisson(rate: {rate}), request_size: Constant("125KB")"#),
        "",
        "",
        "300s",
    );
    let v = run_text(&src).variants.remove(0);
    let wq = rho * d_ms / (2.0 * (1.0 - rho));
    let got = v.latency_ms.mean - (1.0 + d_ms + 1.0 + 1.0);
    eprintln!("M/D/1 wait for the wire: simulated {got:.4} ms, theory {wq:.4} ms");
    // M/G/1: E[Wq^2] = 2 Wq^2 + λ E[D^3] / (3 (1 − ρ)) = 3.5 ms², so sd(Wq) = 1.46 ms; over
    // 210 000 requests whose waits are correlated over about 30 arrivals at ρ = 0.7, the
    // mean's sigma is about 1.46 × sqrt(30 / 210 000) = 0.018 ms: 4 sigma is 0.07 ms.
    assert!((got - wq).abs() < 0.07, "{got} vs {wq}");
}

#[test]
fn a_bulk_transfer_delays_the_small_calls_behind_it() {
    // Small calls every 10 ms and a 5 MB transfer every second go through one balancer to
    // one server, so they share the 100 Mbps (12.5 MB/s) link lb -> app, where the transfer
    // is on the wire for 0.4 s a second. The 40% of small calls sent then wait for it (up to
    // 0.4 s); the others take the idle time: 4 hops of 1 ms, 1 ms of service, 1 kB twice on
    // the wire (80 us each).
    let scenario = |bulk: &str| {
        format!(
            r#"Scenario(name: "bulk", seed: 3, duration: "20s",
            network: (latency: Constant("1ms"), bandwidth: Some("100Mbps")),
            nodes: {{
                "rpc": Client(target: "lb", arrival: Constant(rate: 100.0), timeout: "10s", request_size: Constant("1KB")),
                {bulk}
                "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], timeout: "10s"),
                "app": Server(workers: 100, service_time: Constant("1ms")),
            }},
        )"#
        )
    };
    let idle = 4.0 + 1.0 + 0.16;
    let alone = run_text(&scenario("")).variants.remove(0);
    assert!(
        exact(alone.latency_ms.max, idle),
        "{}",
        alone.latency_ms.max
    );
    let bulk = r#""bulk": Client(target: "lb", arrival: Constant(rate: 1.0), timeout: "10s", request_size: Constant("5MB")),"#;
    let shared = run_text(&scenario(bulk)).variants.remove(0);
    let l = &shared.latency_ms;
    eprintln!("rpc + bulk: p50 {} p90 {} max {}", l.p50, l.p90, l.max);
    assert!(
        (l.p50 - idle).abs() < 0.5,
        "the median call does not wait: {}",
        l.p50
    );
    // P(wait > x) = 0.4 − x (s) for a call: p90 waits about 0.3 s.
    assert!((200.0..400.0).contains(&l.p90), "p90 {}", l.p90);
}

#[test]
fn duplication_and_reordering_faults_are_seen_by_the_server_and_in_latency() {
    // Every request to the server is duplicated with probability 0.3: the server serves
    // about 1.3 requests per request sent.
    let src = sized(
        "",
        r#"arrival: Poisson(rate: 1000.0)"#,
        "",
        r#"Duplicate(node: "users", probability: 0.3, at: "0s")"#,
        "10s",
    );
    let v = run_text(&src).variants.remove(0);
    let served = v.servers[0].served as f64;
    let n = v.requests as f64;
    let sigma = (0.3 * 0.7 / n).sqrt();
    assert!(
        ((served / n - 1.0) - 0.3).abs() < 4.0 * sigma + 1e-3,
        "served {served} of {n}"
    );
    // Reordering holds half the messages back by U(0, 4 ms]: each direction adds 1 ms on
    // average, so the mean latency is 3 + 2 ms.
    let src = sized(
        "",
        r#"arrival: Poisson(rate: 1000.0)"#,
        "",
        r#"Reorder(probability: 0.5, window: "4ms", at: "0s")"#,
        "10s",
    );
    let v = run_text(&src).variants.remove(0);
    // Per direction: variance of the hold = 0.5 × 16/3 − 1 = 1.67 ms²; two of them.
    let sigma = (2.0 * (0.5 * 16.0 / 3.0 - 1.0) / v.ok as f64).sqrt();
    assert!(
        (v.latency_ms.mean - 5.0).abs() < 4.0 * sigma,
        "{} (sigma {sigma})",
        v.latency_ms.mean
    );
}

#[test]
fn sizes_and_capacities_are_validated_with_their_locations() {
    rejected(
        r#"Scenario(name: "x", duration: "1s", nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 10.0), request_size: Constant("-4KB")),
  "app": Server(service_time: Constant("1ms")),
})"#,
        &[("2:88", "`-4KB` is negative")],
    );
    rejected(
        r#"Scenario(name: "x", duration: "1s",
  network: (bandwidth: Some("0Gbps"), links: [(from: "users", to: "app", bandwidth: Some("0B/s"))]),
  nodes: {
  "users": Client(target: "app", arrival: Poisson(rate: 10.0)),
  "app": Server(service_time: Constant("1ms"), response_size: LogNormal(median: "2KB", p99: "1KB")),
})"#,
        &[
            ("2:24", "zero capacity carries nothing"),
            ("2:85", "zero capacity carries nothing"),
            ("5:", "expected `p99` >= `median` (2KB)"),
        ],
    );
}
