//! Connections and TLS, checked exactly with constant latencies: handshake round trips per
//! protocol, resumption, handshake CPU on both ends, termination at a balancer, pools bounded
//! by `max_connections`, and the reconnect storm after a restart.

use crate::run_text;
use archsim::results::VariantResult;

/// One-way latency 1 ms, so one round trip is 2 ms; service 1 ms.
const RTT_MS: f64 = 2.0;
const SERVICE_MS: f64 = 1.0;

/// A client sending one request every 100 ms (`count` of them) straight to one server, over
/// connections `conn`; `server` adds fields to the server.
fn direct(conn: &str, server: &str, count: u32) -> VariantResult {
    let src = format!(
        r#"Scenario(name: "conn", seed: 3, duration: "20s",
        network: (latency: Constant("1ms")),
        nodes: {{
            "users": Client(target: "app", arrival: Constant(rate: 10.0), max_requests: Some({count}),
                            connections: Some({conn})),
            "app": Server(service_time: Constant("1ms"), {server}),
        }},
    )"#
    );
    run_text(&src).variants.remove(0)
}

/// No handshake CPU on either end: latencies are round trips and service only.
const NO_CPU: &str = r#"cpu: (full: "0s", resumed: "0s", mutual: "0s")"#;
const SERVER_NO_CPU: &str = r#"handshake_cpu: (full: "0s", resumed: "0s", mutual: "0s")"#;

/// Equal up to the latency histogram's resolution (3 significant digits).
fn exact(got: f64, want: f64) -> bool {
    (got - want).abs() <= want * 1e-3
}

/// The first request pays `(handshake round trips + 1) × RTT + service`, every later one on
/// the kept-alive connection `1 × RTT + service`; TLS 1.2 costs exactly one round trip more
/// than TLS 1.3, which costs one more than plain TCP.
#[test]
fn first_request_pays_the_handshake_round_trips_and_the_rest_one() {
    let mut firsts = Vec::new();
    for (protocol, handshake_rtts) in [("Tcp", 1.0), ("Tls13", 2.0), ("Tls12", 3.0)] {
        let v = direct(
            &format!("(protocol: {protocol}, {NO_CPU})"),
            SERVER_NO_CPU,
            20,
        );
        let first = (handshake_rtts + 1.0) * RTT_MS + SERVICE_MS;
        let rest = RTT_MS + SERVICE_MS;
        let l = &v.latency_ms;
        assert_eq!(v.ok, 20, "{protocol}");
        assert!(exact(l.max, first), "{protocol}: first {} ≠ {first}", l.max);
        assert!(exact(l.p50, rest), "{protocol}: later {} ≠ {rest}", l.p50);
        // One first request, nineteen on the same connection.
        let want_mean = (first + 19.0 * rest) / 20.0;
        assert!(exact(l.mean, want_mean), "{protocol}: mean {}", l.mean);
        assert_eq!(v.components["users"]["connections_opened"], 1.0);
        assert_eq!(v.components["users"]["connections_reused"], 19.0);
        firsts.push(l.max);
    }
    // Each first is exact to the histogram's 0.1%, so their difference to the sum of both.
    let close = |a: f64, b: f64| (a - b - RTT_MS).abs() <= (a + b) * 1e-3;
    assert!(close(firsts[2], firsts[1]), "TLS 1.2 vs 1.3: {firsts:?}");
    assert!(close(firsts[1], firsts[0]), "TLS 1.3 vs TCP: {firsts:?}");
}

/// With an idle timeout shorter than the gap between requests every request opens a
/// connection: the first does a full handshake, the others resume. TLS 1.2's abbreviated
/// handshake saves one round trip, TLS 1.3's ticket none, its 0-RTT one.
#[test]
fn resumption_saves_what_the_protocol_says() {
    for (protocol, resumption, full_rtts, resumed_rtts) in [
        ("Tls12", "Ticket", 3.0, 2.0),
        ("Tls13", "Ticket", 2.0, 2.0),
        ("Tls13", "ZeroRtt", 2.0, 1.0),
        ("Tls12", "None", 3.0, 3.0),
    ] {
        let v = direct(
            &format!(
                r#"(protocol: {protocol}, resumption: {resumption}, idle_timeout: "50ms", {NO_CPU})"#
            ),
            SERVER_NO_CPU,
            10,
        );
        let first = (full_rtts + 1.0) * RTT_MS + SERVICE_MS;
        let later = (resumed_rtts + 1.0) * RTT_MS + SERVICE_MS;
        let l = &v.latency_ms;
        let what = format!("{protocol} {resumption}");
        assert!(exact(l.max, first), "{what}: first {} ≠ {first}", l.max);
        assert!(exact(l.p50, later), "{what}: resumed {} ≠ {later}", l.p50);
        let c = &v.components["users"];
        assert_eq!(c["connections_opened"], 10.0, "{what}");
        assert_eq!(c["connections_closed_idle"], 9.0, "{what}");
        let resumed = if resumption == "None" { 0.0 } else { 9.0 };
        assert_eq!(c["connections_resumed"], resumed, "{what}");
    }
}

/// Handshake CPU adds exactly: the caller's before its request goes out, the server's before
/// it serves the request that opened the connection. mTLS adds the certificate work on both
/// ends; a resumed TLS 1.3 session costs only the key exchange (no round trip saved).
#[test]
fn handshake_cpu_is_paid_on_both_ends() {
    let client_cpu = r#"cpu: (full: "300us", resumed: "50us", mutual: "2ms")"#;
    let server_cpu = r#"handshake_cpu: (full: "1500us", resumed: "70us", mutual: "400us")"#;
    let base = 3.0 * RTT_MS + SERVICE_MS;
    for (mutual, first_cpu_ms) in [("false", 0.3 + 1.5), ("true", 0.3 + 2.0 + 1.5 + 0.4)] {
        let v = direct(
            &format!(
                r#"(mutual: {mutual}, resumption: Ticket, idle_timeout: "50ms", {client_cpu})"#
            ),
            server_cpu,
            10,
        );
        let l = &v.latency_ms;
        let first = base + first_cpu_ms;
        let resumed = base + 0.05 + 0.07;
        assert!(exact(l.max, first), "mutual {mutual}: {} ≠ {first}", l.max);
        assert!(
            exact(l.p50, resumed),
            "mutual {mutual}: {} ≠ {resumed}",
            l.p50
        );
        let s = &v.components["app-0"];
        assert_eq!(s["tls_handshakes"], 10.0);
        let cpu_s = (first_cpu_ms - if mutual == "true" { 2.3 } else { 0.3 }) / 1e3 + 9.0 * 70e-6;
        assert!(
            (s["tls_handshake_cpu_s"] - cpu_s).abs() < 1e-9,
            "{}",
            s["tls_handshake_cpu_s"]
        );
    }
    // Defaults: an RSA-2048 server (1 ms) and a client verifying (0.2 ms).
    let v = direct("(protocol: Tls13)", "", 2);
    assert!(
        exact(v.latency_ms.max, base + 0.2 + 1.0),
        "{}",
        v.latency_ms.max
    );
}

/// Users → balancer → one backend, each hop 1 ms one way. The balancer terminates the users'
/// TLS on its cores; its own connections to the backend are `backend_conn`.
fn through_balancer(backend_conn: &str, faults: &str, rate: f64, count: u32) -> VariantResult {
    let src = format!(
        r#"Scenario(name: "tls", seed: 3, duration: "20s",
        network: (latency: Constant("1ms")),
        nodes: {{
            "users": Client(target: "lb", arrival: Constant(rate: {rate}), max_requests: Some({count}),
                            connections: Some((protocol: Tls13, {NO_CPU}))),
            "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], tls_cores: 1,
                               handshake_cpu: (full: "2ms", resumed: "0s", mutual: "0s"),
                               connections: {backend_conn}),
            "app": Server(service_time: Constant("1ms"), workers: 100,
                          handshake_cpu: (full: "3ms", resumed: "0s", mutual: "0s")),
        }},
        faults: [{faults}],
    )"#
    );
    run_text(&src).variants.remove(0)
}

/// Termination at the balancer: the users' first request pays their two handshake round
/// trips and the balancer's CPU; behind it, plain TCP costs one more round trip on the
/// backend hop and re-encryption two plus the backend's CPU. Later requests pay two hops.
#[test]
fn termination_at_the_balancer_vs_re_encryption() {
    let hops = 2.0 * RTT_MS + SERVICE_MS;
    for (conn, first) in [
        ("None", 2.0 * RTT_MS + 2.0 + hops),
        (
            &format!("Some((protocol: Tcp, {NO_CPU}))")[..],
            2.0 * RTT_MS + 2.0 + RTT_MS + hops,
        ),
        (
            &format!("Some((protocol: Tls13, {NO_CPU}))")[..],
            2.0 * RTT_MS + 2.0 + 2.0 * RTT_MS + 3.0 + hops,
        ),
    ] {
        let v = through_balancer(conn, "", 10.0, 10);
        assert_eq!(v.ok, 10);
        assert!(
            exact(v.latency_ms.max, first),
            "{conn}: {} ≠ {first}",
            v.latency_ms.max
        );
        assert!(
            exact(v.latency_ms.p50, hops),
            "{conn}: {} ≠ {hops}",
            v.latency_ms.p50
        );
        assert_eq!(v.components["lb"]["tls_handshakes"], 1.0, "{conn}");
    }
}

/// A restart of the balancer drops every connection to it: the users' next requests all
/// handshake again, and the balancer's one core does the handshakes in turn (a reconnect
/// storm), so the k-th waits k × 2 ms of handshake CPU.
#[test]
fn a_restart_drops_connections_and_reconnecting_storms_the_handshake_cores() {
    // 1000 requests/s, each held ~5 ms: about five connections in use in steady state.
    let v = through_balancer(
        "None",
        r#"Crash(node: "lb", at: "2s", until: "2.5s")"#,
        1000.0,
        4000,
    );
    let users = &v.components["users"];
    let dropped = users["connections_dropped_by_restart"];
    assert!(dropped >= 1.0, "dropped {dropped}");
    let opened = users["connections_opened"];
    // Before the crash, a pool of a few connections; after it, a new pool.
    assert!(opened > 2.0 * dropped.min(3.0), "opened {opened}");
    assert!(
        opened <= 200.0,
        "opened {opened}: connections must be reused"
    );
    assert_eq!(v.components["lb"]["tls_handshakes"], opened);
    // The storm: handshakes queue on one core, so the slowest first request waits more than
    // its own handshake.
    let own = 2.0 * RTT_MS + 2.0 + 2.0 * RTT_MS + SERVICE_MS;
    assert!(v.latency_ms.max > own + 2.0, "max {}", v.latency_ms.max);
}

/// Connection state is bounded by `max_connections`: past it, calls fail as rejected (pool
/// overflow) instead of opening more.
#[test]
fn pools_never_exceed_max_connections() {
    // 2000 requests/s with 2 ms of service on one connection each: ~6 wanted, 2 allowed.
    let src = format!(
        r#"Scenario(name: "conn", seed: 3, duration: "2s",
        network: (latency: Constant("1ms")),
        nodes: {{
            "users": Client(target: "app", arrival: Poisson(rate: 2000.0),
                            connections: Some((max_connections: 2, {NO_CPU}))),
            "app": Server(service_time: Constant("2ms"), workers: 50),
        }},
    )"#
    );
    let v = run_text(&src).variants.remove(0);
    let users = &v.components["users"];
    assert_eq!(users["connections_opened"], 2.0);
    assert!(users["connection_pool_overflows"] > 1000.0);
    assert_eq!(
        v.errors.get("rejected").copied().unwrap_or(0) as f64,
        users["connection_pool_overflows"]
    );
    let open = v.series["users"]
        .iter()
        .find(|s| s.name == "connections_open")
        .expect("a series of open connections");
    assert!(open.values.iter().flatten().all(|&n| n <= 2.0));
}

#[test]
fn connection_options_are_validated_with_their_locations() {
    let src = r#"Scenario(name: "x", duration: "1s",
  nodes: {
    "users": Client(target: "lb", arrival: Poisson(rate: 10.0),
                    connections: Some((protocol: Tls12, resumption: ZeroRtt, max_connections: 0))),
    "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"], tls_cores: 0,
                       connections: Some((max_streams: 0, idle_timeout: "0s"))),
    "app": Server(service_time: Constant("1ms")),
  },
)"#;
    crate::network::rejected(
        src,
        &[
            ("4:69", "0-RTT with Tls12"),
            ("4:95", "expected a count from 1 to 100000"),
            ("5:76", "expected a count from 1 to 10000"),
            ("6:56", "a connection that carries no call"),
            ("6:73", "a zero idle timeout"),
        ],
    );
}

/// With `per_user`, each closed-loop user keeps its own connection: five users, five
/// handshakes, every later request reuses its user's connection.
#[test]
fn per_user_connections_open_one_per_user() {
    let src = format!(
        r#"Scenario(name: "conn", seed: 3, duration: "5s",
        network: (latency: Constant("1ms")),
        nodes: {{
            "users": Client(target: "app", arrival: Closed(users: 5, think_time: Constant("100ms")),
                            connections: Some((per_user: true, max_connections: 1, {NO_CPU}))),
            "app": Server(service_time: Constant("1ms"), workers: 5),
        }},
    )"#
    );
    let v = run_text(&src).variants.remove(0);
    let users = &v.components["users"];
    assert_eq!(users["connections_opened"], 5.0);
    assert_eq!(users["connection_pool_overflows"], 0.0);
    assert_eq!(users["connections_reused"] + 5.0, v.requests as f64);
}

/// A client sending one request every 100 ms (`count` of them, no connection model of its
/// own) to `app`, which after 1 ms of work calls `svc` over connections `conn`; `svc` adds
/// `svc_fields`. Every link is 1 ms one way.
fn service_to_service(conn: &str, svc_fields: &str, faults: &str, count: u32) -> VariantResult {
    two_tiers(
        &format!("connections: Some({conn})"),
        svc_fields,
        faults,
        count,
    )
}

/// As `service_to_service`, with `app_fields` added to `app`.
fn two_tiers(app_fields: &str, svc_fields: &str, faults: &str, count: u32) -> VariantResult {
    let src = format!(
        r#"Scenario(name: "s2s", seed: 3, duration: "20s",
        network: (latency: Constant("1ms")),
        nodes: {{
            "users": Client(target: "app", arrival: Constant(rate: 10.0), max_requests: Some({count})),
            "app": Server(service_time: Constant("1ms"), workers: 100, calls: [(to: ["svc"])],
                          {app_fields}),
            "svc": Server(service_time: Constant("1ms"), {svc_fields}),
        }},
        faults: [{faults}],
    )"#
    );
    run_text(&src).variants.remove(0)
}

/// Users → app (1 RTT + service) and app → svc (1 RTT + service), before any handshake.
const TWO_HOPS_MS: f64 = 2.0 * (RTT_MS + SERVICE_MS);

/// A server's first call to another service on a new connection costs its handshake round
/// trips on top of the call's own, every later call on the kept-alive connection only its
/// own: TLS 1.2 exactly one round trip more than TLS 1.3, one more than TCP.
#[test]
fn a_servers_first_call_pays_the_handshake_round_trips_and_the_rest_one() {
    let mut firsts = Vec::new();
    for (protocol, handshake_rtts) in [("Tcp", 1.0), ("Tls13", 2.0), ("Tls12", 3.0)] {
        let v = service_to_service(
            &format!("(protocol: {protocol}, {NO_CPU})"),
            SERVER_NO_CPU,
            "",
            20,
        );
        let first = TWO_HOPS_MS + handshake_rtts * RTT_MS;
        let l = &v.latency_ms;
        assert_eq!(v.ok, 20, "{protocol}");
        assert!(exact(l.max, first), "{protocol}: first {} ≠ {first}", l.max);
        assert!(exact(l.p50, TWO_HOPS_MS), "{protocol}: later {}", l.p50);
        let want_mean = (first + 19.0 * TWO_HOPS_MS) / 20.0;
        assert!(exact(l.mean, want_mean), "{protocol}: mean {}", l.mean);
        let app = &v.components["app-0"];
        assert_eq!(app["connections_opened"], 1.0, "{protocol}");
        assert_eq!(app["connections_reused"], 19.0, "{protocol}");
        let tls = if protocol == "Tcp" { None } else { Some(1.0) };
        let svc = v.components.get("svc-0");
        assert_eq!(svc.and_then(|c| c.get("tls_handshakes")).copied(), tls);
        firsts.push(l.max);
    }
    let close = |a: f64, b: f64| (a - b - RTT_MS).abs() <= (a + b) * 1e-3;
    assert!(close(firsts[2], firsts[1]), "TLS 1.2 vs 1.3: {firsts:?}");
    assert!(close(firsts[1], firsts[0]), "TLS 1.3 vs TCP: {firsts:?}");
}

/// The calling server's handshake CPU delays its call and the callee's worker does its side
/// before serving it; mTLS adds exactly the certificate work of both ends, `mutual` of each.
#[test]
fn mtls_between_services_adds_the_mutual_cpu_on_both_ends() {
    let caller = r#"cpu: (full: "300us", resumed: "50us", mutual: "2ms")"#;
    let callee = r#"handshake_cpu: (full: "1500us", resumed: "70us", mutual: "400us")"#;
    let mut firsts = Vec::new();
    for (mutual, cpu_ms, callee_cpu_ms) in [("false", 0.3 + 1.5, 1.5), ("true", 2.3 + 1.9, 1.9)] {
        let v = service_to_service(
            &format!("(protocol: Tls13, mutual: {mutual}, {caller})"),
            callee,
            "",
            10,
        );
        let first = TWO_HOPS_MS + 2.0 * RTT_MS + cpu_ms;
        let l = &v.latency_ms;
        assert!(exact(l.max, first), "mutual {mutual}: {} ≠ {first}", l.max);
        assert!(exact(l.p50, TWO_HOPS_MS), "mutual {mutual}: {}", l.p50);
        let svc = &v.components["svc-0"];
        assert_eq!(svc["tls_handshakes"], 1.0);
        assert!(
            (svc["tls_handshake_cpu_s"] - callee_cpu_ms / 1e3).abs() < 1e-9,
            "{}",
            svc["tls_handshake_cpu_s"]
        );
        firsts.push(l.max);
    }
    let mutual_ms = 2.0 + 0.4;
    assert!(
        (firsts[1] - firsts[0] - mutual_ms).abs() <= (firsts[0] + firsts[1]) * 1e-3,
        "{firsts:?}"
    );
}

/// A restart of the callee drops the caller's connections to it, and a restart of the caller
/// drops its own pools: either way the next call handshakes again, and pays for it.
#[test]
fn after_a_restart_of_either_end_the_next_call_handshakes_again() {
    // Requests leave at 0, 100, ... ms; the one at 600 ms finds the crashed node down.
    for node in ["svc", "app"] {
        let crash = format!(r#"Crash(node: "{node}-0", at: "550ms", until: "650ms")"#);
        let v = service_to_service(
            &format!("(protocol: Tls13, {NO_CPU})"),
            SERVER_NO_CPU,
            &crash,
            10,
        );
        let first = TWO_HOPS_MS + 2.0 * RTT_MS;
        assert_eq!(v.ok, 9, "{node}: {:?}", v.errors);
        let app = &v.components["app-0"];
        assert_eq!(app["connections_opened"], 2.0, "{node}");
        let dropped = if node == "svc" { 1.0 } else { 0.0 };
        assert_eq!(app["connections_dropped_by_restart"], dropped, "{node}");
        assert_eq!(v.components["svc-0"]["tls_handshakes"], 2.0, "{node}");
        // Two first calls (at 0 and 700 ms) among nine answered requests.
        let want_mean = (2.0 * first + 7.0 * TWO_HOPS_MS) / 9.0;
        let l = &v.latency_ms;
        assert!(exact(l.max, first), "{node}: {}", l.max);
        assert!(
            exact(l.mean, want_mean),
            "{node}: mean {} ≠ {want_mean}",
            l.mean
        );
    }
}

/// A server's pool at `max_connections` fails the call as `rejected` (and the request with
/// it) instead of opening more connections.
#[test]
fn a_servers_pool_never_exceeds_max_connections() {
    let src = format!(
        r#"Scenario(name: "conn", seed: 3, duration: "2s",
        network: (latency: Constant("1ms")),
        nodes: {{
            "users": Client(target: "app", arrival: Poisson(rate: 2000.0)),
            "app": Server(service_time: Constant("100us"), workers: 50, calls: [(to: ["svc"])],
                          connections: Some((max_connections: 2, {NO_CPU}))),
            "svc": Server(service_time: Constant("2ms"), workers: 50),
        }},
    )"#
    );
    let v = run_text(&src).variants.remove(0);
    let app = &v.components["app-0"];
    assert_eq!(app["connections_opened"], 2.0);
    assert!(app["connection_pool_overflows"] > 1000.0);
    assert_eq!(
        v.errors.get("rejected").copied().unwrap_or(0) as f64,
        app["connection_pool_overflows"]
    );
}

#[test]
fn server_connections_are_validated_with_their_locations() {
    let src = r#"Scenario(name: "x", duration: "1s",
  nodes: {
    "users": Client(target: "app", arrival: Poisson(rate: 10.0)),
    "app": Server(service_time: Constant("1ms"), calls: [(to: ["db"])],
                  connections: Some((per_user: true, max_streams: 0))),
    "db": Server(service_time: Constant("1ms"), connections: Some(())),
  },
)"#;
    crate::network::rejected(
        src,
        &[
            ("5:48", "per-user connections on a server"),
            ("5:67", "a connection that carries no call"),
            ("6:62", "connections for a server that calls no one"),
        ],
    );
}

/// The theory's mean latency (ms) of a run's only variant.
fn theory_mean_ms(v: &VariantResult) -> f64 {
    let t = v.theory.as_ref().expect("a theory");
    t.latency_mean_ms.value.expect("a latency figure")
}

/// Keep-alive pools that never expire open one connection per pool: with no warm-up, the
/// theory adds the handshake (round trips and both ends' CPU) to that share of the calls,
/// and its mean matches the simulated one (which is exact: constant latencies) within the
/// latency histogram's 0.1%.
#[test]
fn theory_adds_the_first_calls_handshakes_to_the_mean() {
    let caller = r#"cpu: (full: "300us", resumed: "50us", mutual: "2ms")"#;
    let callee =
        r#"workers: 100, handshake_cpu: (full: "1500us", resumed: "70us", mutual: "400us")"#;
    for (conn, open_ms) in [
        (format!("(protocol: Tls12, {caller})"), 3.0 * RTT_MS + 1.8),
        (
            format!("(protocol: Tls13, mutual: true, {caller})"),
            2.0 * RTT_MS + 4.2,
        ),
    ] {
        let v = service_to_service(&conn, callee, "", 20);
        let want = TWO_HOPS_MS + open_ms / 20.0;
        let (sim, theory) = (v.latency_ms.mean, theory_mean_ms(&v));
        assert!(exact(sim, want), "{conn}: simulated {sim} ≠ {want}");
        assert!(
            (theory - sim).abs() <= sim * 1e-3,
            "{conn}: theory {theory} vs simulated {sim}"
        );
    }
    // Without connections the theory has no setup to add: the same design is 1.9 ms faster.
    let plain = service_to_service(
        &format!("(protocol: Tcp, {NO_CPU})"),
        "workers: 100",
        "",
        20,
    );
    assert!((theory_mean_ms(&plain) - (TWO_HOPS_MS + RTT_MS / 20.0)).abs() < 1e-3);
}

/// Closed-loop users with connections of their own that expire before the next request
/// (idle timeout = the mean think time): a share e^(−1) of the requests open a connection,
/// resuming a TLS 1.2 session (two round trips) after the first. The theory's mean, and the
/// share of requests that opened one, match the simulation within 4 standard errors.
#[test]
fn theory_matches_churning_per_user_pools() {
    let src = r#"Scenario(name: "churn", seed: 5, duration: "30s", warmup: "2s",
        network: (latency: Constant("1ms")),
        nodes: {
            "users": Client(target: "app", arrival: Closed(users: 50, think_time: Exponential(mean: "100ms")),
                            connections: Some((protocol: Tls12, resumption: Ticket, per_user: true,
                                               max_connections: 1, idle_timeout: "100ms",
                                               cpu: (full: "300us", resumed: "100us", mutual: "0s")))),
            "app": Server(service_time: Constant("1ms"), workers: 100,
                          handshake_cpu: (full: "1ms", resumed: "200us", mutual: "0s")),
        },
    )"#;
    let v = run_text(src).variants.remove(0);
    let p = (-1.0f64).exp();
    let resumed_ms = 2.0 * RTT_MS + 0.1 + 0.2;
    let want = RTT_MS + SERVICE_MS + p * resumed_ms;
    let theory = theory_mean_ms(&v);
    assert!((theory - want).abs() < 1e-6, "theory {theory} ≠ {want}");
    // Each request opens with probability p, independently (its think time): a Bernoulli
    // share of the requests measured, each adding `resumed_ms`.
    let n = v.ok as f64;
    let se = (p * (1.0 - p) / n).sqrt();
    let sim = v.latency_ms.mean;
    assert!(
        (sim - want).abs() <= 4.0 * se * resumed_ms + want * 1e-3,
        "simulated {sim} vs theory {want} (se {:.4} ms)",
        se * resumed_ms
    );
    // Every request, warm-up included, opened a connection with probability p (the first
    // one of each user aside), and all but those fifty resumed.
    let users = &v.components["users"];
    let (opened, reused) = (users["connections_opened"], users["connections_reused"]);
    let share = opened / (opened + reused);
    let se = (p * (1.0 - p) / (opened + reused)).sqrt();
    assert!(
        (share - p).abs() <= 4.0 * se + 50.0 / (opened + reused),
        "{share} vs {p}"
    );
    assert_eq!(users["connections_resumed"], opened - 50.0);
}

/// Which core pays the caller's handshake CPU: with `Hold` the worker waits through the
/// opening (its busy time grows by the handshake's round trips and CPU), with `Release` it
/// serves other requests meanwhile (its busy time does not grow). Busy time is utilisation ×
/// the measured span × workers; the span is the same in all four runs, so ratios are exact.
#[test]
fn a_held_worker_pays_the_callers_handshake_and_a_released_one_does_not() {
    let caller_cpu = r#"cpu: (full: "500us", resumed: "0s", mutual: "0s")"#;
    let util = |mode: &str, conn: &str| {
        let fields = format!("while_calling: {mode}, {conn}");
        let v = two_tiers(&fields, SERVER_NO_CPU, "", 20);
        assert_eq!(v.ok, 20, "{mode} {conn}");
        v.servers
            .iter()
            .find(|s| s.name == "app-0")
            .expect("app-0")
            .utilisation
    };
    let conn = format!("connections: Some((protocol: Tls13, {caller_cpu}))");
    let (hold, hold_plain) = (util("Hold", &conn), util("Hold", ""));
    let (release, release_plain) = (util("Release", &conn), util("Release", ""));
    // Twenty calls each hold a worker 3 ms longer (a 2 ms round trip and 1 ms at svc) ...
    let calls_ms = 20.0 * (RTT_MS + SERVICE_MS);
    // ... and the one that opens the connection 4.5 ms more (two round trips, 0.5 ms CPU).
    let opening_ms = 2.0 * RTT_MS + 0.5;
    let ratio = (hold - hold_plain) / (hold_plain - release_plain);
    assert!((ratio - opening_ms / calls_ms).abs() < 1e-9, "{ratio}");
    assert!(
        (release - release_plain).abs() < 1e-12,
        "{release} vs {release_plain}"
    );
}
