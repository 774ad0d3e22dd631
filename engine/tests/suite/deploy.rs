//! Deploys: a canary's failures against weight × error rate (binomial, 4σ) and its rollback
//! within one analysis window; blue-green's instant rollback; a rolling update's bounds on the
//! replicas in rotation; the exact timeline of each strategy; located configuration errors; a
//! crash-looping release (the kubelet's back-off to the nanosecond, the requests each crash
//! loses, a stalled rollout's progress deadline, blue-green waiting for a ready set); a
//! canary's promotion under the rolling limits, analysed as it goes.

use super::run_text;
use archsim::results::{Results, VariantResult};

/// 2000 requests/s on 4 replicas (ρ ≈ 0.5), a deploy at 20 s of a version failing 20% of its
/// requests, replicas ready 10 s after they start, analysis over 20 s windows.
fn scenario(strategy: &str, analysis: &str, extra: &str) -> String {
    format!(
        r#"Scenario(
    name: "deploy", seed: 5, duration: "100s", warmup: "0s",
    network: (latency: Constant("100us")),
    nodes: {{
        "users": Client(target: "lb", timeout: "1s", arrival: Poisson(rate: 2000.0)),
        "lb":    LoadBalancer(strategy: LeastConnections, backends: ["app"], timeout: "1s"),
        "app":   Server(replicas: 8, workers: 4, queue_limit: 100,
                        service_time: Constant("4ms")),
        "deploy": Deploy(pool: "app", replicas: 4, start: "20s", provisioning: "10s",
                         version: (error_rate: 0.2), strategy: {strategy},
                         analysis: {analysis}{extra}),
    }},
)"#
    )
}

const GATE: &str = r#"Some((window: "20s", max_error_rate: 0.05))"#;

/// (time, text) of the deploy's state changes.
fn events(v: &VariantResult) -> Vec<(f64, String)> {
    v.state_changes["deploy"]
        .iter()
        .map(|e| (e.at_s, e.what.clone()))
        .collect()
}

/// The time of the first state change containing `text`.
fn when(v: &VariantResult, text: &str) -> f64 {
    let e = events(v);
    e.iter()
        .find(|(_, w)| w.contains(text))
        .unwrap_or_else(|| panic!("no `{text}` in {e:#?}"))
        .0
}

/// The variant of `r` called `name`.
fn variant<'a>(r: &'a Results, name: &str) -> &'a VariantResult {
    r.variants
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("variant {name}"))
}

fn counter(v: &VariantResult, name: &str) -> f64 {
    v.components["deploy"][name]
}

/// (requests, failed) the client saw complete in windows starting in [from, to).
fn completed(v: &VariantResult, from: f64, to: f64) -> (u64, u64) {
    v.windows
        .iter()
        .filter(|w| w.start_s >= from && w.start_s < to)
        .fold((0, 0), |(n, f), w| (n + w.ok + w.errors, f + w.errors))
}

#[test]
fn a_5_percent_canary_failing_20_percent_fails_1_percent_until_its_rollback() {
    let text = scenario(
        r#"Canary(steps: [0.05, 0.2, 0.5, 1.0], pause: "40s", canary_replicas: Some(2))"#,
        GATE,
        "",
    );
    let r = run_text(&text);
    let v = &r.variants[0];
    // Ready at 30 s: 5% of the traffic from then on; the first check, one window later,
    // sees 20% errors (> 5%) and rolls back.
    let start = when(v, "step 1 of 4");
    let back = when(v, "rollback");
    assert_eq!(start, 30.0);
    assert!(
        back > start && back <= start + 20.0,
        "rollback at {back}, canary from {start}"
    );
    // Until the rollback, each request fails with probability 0.05 × 0.2 (two independent
    // draws: the balancer's split and the version's error): binomial, checked at 4σ.
    let (n, failed) = completed(v, start, back);
    let p = 0.05 * 0.2;
    let expect = n as f64 * p;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (failed as f64 - expect).abs() <= 4.0 * sigma,
        "{failed} failed of {n}: expected {expect:.1} ± {:.1}",
        4.0 * sigma
    );
    // Nothing fails before the canary or after the rollback's last answers.
    assert_eq!(completed(v, 0.0, start).1, 0);
    assert_eq!(completed(v, back + 1.0, 100.0).1, 0);
    assert_eq!(
        v.errors["server_error"],
        failed + completed(v, back, back + 1.0).1
    );
    assert_eq!(counter(v, "rolled_back"), 1.0);
    assert_eq!(counter(v, "completed"), 0.0);
    assert_eq!(
        counter(v, "new_version_failed"),
        v.errors["server_error"] as f64
    );
    // The theory's successful throughput is the offered 2000/s times its availability, the
    // deploy's failures taken out of both, and approximate as the deploy's estimate is.
    let t = v.theory.as_ref().expect("a theory");
    let (a, ok) = (
        t.availability.value.expect("availability"),
        t.throughput_rps.value.expect("throughput"),
    );
    assert!(a < 1.0, "the deploy's failures are taken out: {a}");
    assert!((ok - 2000.0 * a).abs() < 1e-6, "{ok} against 2000 × {a}");
    assert_eq!(
        t.throughput_rps.accuracy,
        archsim::results::Accuracy::Approximate
    );
}

#[test]
fn blue_green_sends_nothing_to_the_new_version_after_switching_back() {
    let text = scenario(
        r#"BlueGreen(switch_after: "5s", scale_down_delay: "60s")"#,
        GATE,
        "",
    );
    let r = run_text(&text);
    let v = &r.variants[0];
    let switch = when(v, "traffic switched");
    let back = when(v, "rollback");
    assert_eq!(switch, 35.0, "ready at 30 s, switched 5 s later");
    assert_eq!(back, 55.0, "the first check, one window after the switch");
    let last = counter(v, "new_version_last_sent_s");
    assert!(
        last <= back,
        "a request went to the new version at {last} s, after the rollback at {back} s"
    );
    // While switched, every request goes to the new version: 20% fail.
    let (n, failed) = completed(v, switch + 1.0, back);
    let share = failed as f64 / n as f64;
    let sigma = (0.2 * 0.8 / n as f64).sqrt();
    assert!((share - 0.2).abs() <= 4.0 * sigma, "{failed} of {n} failed");
    assert_eq!(completed(v, back + 1.0, 100.0).1, 0);
}

/// Replicas in rotation (warming or serving) after each instant of change, from the pool's
/// phase timelines.
fn in_rotation_over_time(v: &VariantResult) -> Vec<(f64, i64)> {
    let mut changes: Vec<(f64, i64)> = Vec::new();
    let mut start = 0;
    for s in v.series["app-pool"]
        .iter()
        .filter(|s| s.name == "replica_phase")
    {
        let track = s.states.as_ref().expect("a phase timeline");
        let serving = |state: u32| {
            let name = track.names[state as usize].as_str();
            matches!(name, "warming" | "serving")
        };
        let mut was = track.changes.first().is_some_and(|c| serving(c.state));
        start += i64::from(was);
        for c in &track.changes {
            let now = serving(c.state);
            if now != was {
                changes.push((c.at_s, if now { 1 } else { -1 }));
            }
            was = now;
        }
    }
    changes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, i64)> = vec![(0.0, start)];
    let mut n = start;
    for (t, delta) in changes {
        n += delta;
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 = n,
            _ => out.push((t, n)),
        }
    }
    out
}

#[test]
fn a_rolling_update_keeps_replicas_in_rotation_within_its_surge_and_unavailability() {
    // Four replicas, surge 2, one unavailable: between 3 and 6 in rotation, through a full
    // rollout (no gating) and through a rollout rolled back by health gating.
    for (analysis, outcome) in [
        ("None", "rolling update completed"),
        (GATE, "rollback completed"),
    ] {
        let text = scenario(
            r#"Rolling(max_surge: Some(2), max_unavailable: Some(1))"#,
            analysis,
            "",
        )
        .replace("replicas: 8,", "replicas: 6,");
        let r = run_text(&text);
        let v = &r.variants[0];
        when(v, outcome);
        let counts = in_rotation_over_time(v);
        assert!(
            counts.iter().all(|&(_, n)| (3..=6).contains(&n)),
            "{analysis}: in rotation left [3, 6]: {counts:?}"
        );
        assert!(counts.iter().any(|&(_, n)| n == 3), "{counts:?}");
        assert_eq!(counts.last().map(|c| c.1), Some(4), "{counts:?}");
    }
}

#[test]
fn each_strategy_steps_at_the_times_its_configuration_says() {
    // A version that fails nothing passes every check: the timeline is the configuration's.
    let ok = |s: &str| s.replace("error_rate: 0.2", "error_rate: 0.0");
    let canary = ok(&scenario(
        r#"Canary(steps: [0.1, 0.5], pause: "20s", canary_replicas: Some(1))"#,
        r#"Some((window: "10s"))"#,
        "",
    ));
    let v = &run_text(&canary).variants[0];
    let got: Vec<f64> = events(v).iter().map(|e| e.0).collect();
    // Promoting at 70 s under Argo's 25% limits (surge 1, one unavailable): two stable
    // replicas retire and two new ones start (3 in rotation, 5 running); at 80 s the new ones
    // are ready: as each enters rotation one more stable replica retires and, for the first,
    // a last new one starts, ready at 90 s, when all four run the new version.
    assert_eq!(
        got,
        [20.0, 30.0, 50.0, 70.0, 70.0, 80.0, 80.0, 90.0],
        "{:#?}",
        events(v)
    );
    assert!(events(v)[3].1.contains("canary promoting"));
    assert!(events(v)[7].1.contains("canary promoted"));

    let blue_green = ok(&scenario(
        r#"BlueGreen(switch_after: "5s", scale_down_delay: "30s")"#,
        r#"Some((window: "10s"))"#,
        "",
    ));
    let v = &run_text(&blue_green).variants[0];
    let got: Vec<f64> = events(v).iter().map(|e| e.0).collect();
    assert_eq!(got, [20.0, 30.0, 35.0, 65.0], "{:#?}", events(v));

    // Rolling, one at a time (surge 1, none unavailable), gated by a 5 s check: a replica
    // starts at 20 s, is ready at 30 s, passes at 35 s, when an old one retires and the next
    // starts; the fourth passes at 80 s, when the last old one retires.
    let rolling = ok(&scenario(
        r#"Rolling(max_surge: Some(1), max_unavailable: Some(0))"#,
        r#"Some((window: "5s"))"#,
        "",
    ));
    let v = &run_text(&rolling).variants[0];
    let got: Vec<f64> = events(v).iter().map(|e| e.0).collect();
    assert_eq!(
        got,
        [20.0, 20.0, 35.0, 50.0, 65.0, 80.0, 80.0],
        "{:#?}",
        events(v)
    );
    assert!(events(v)[6].1.contains("completed"));
}

#[test]
fn deploy_mistakes_are_located() {
    let src = r#"Scenario(
    name: "x",
    duration: "10s",
    nodes: {
        "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"]),
        "app": Server(replicas: 5, service_time: Exponential(mean: "1ms")),
        "a": Deploy(pool: "ghost", replicas: 2, start: "1s", strategy: BlueGreen()),
        "b": Deploy(pool: "app", replicas: 4, start: "1s",
                    strategy: Canary(steps: [0.5, 0.2, 1.5], canary_replicas: Some(1)),
                    analysis: Some((window: "0s"))),
        "c": Deploy(pool: "other", replicas: 2, start: "1s", strategy: BlueGreen()),
        "other": Server(replicas: 3, service_time: Exponential(mean: "1ms")),
    },
)"#;
    let err = archsim::scenario::parse("bad.ron", src, &archsim::Registry::builtin())
        .expect_err("the scenario should be rejected")
        .to_string();
    let expected = [
        ("bad.ron:7:27", "unknown pool \"ghost\""),
        ("bad.ron:9:51", "expected steps increasing"),
        ("bad.ron:9:56", "expected a fraction in (0, 1]"),
        ("bad.ron:10:45", "expected a positive duration"),
        (
            "bad.ron:11:72",
            "the deploy runs 4 replicas but pool \"other\" has 3 replicas",
        ),
    ];
    for (location, text) in expected {
        assert!(err.contains(location), "missing {location} in:\n{err}");
        assert!(err.contains(text), "missing `{text}` in:\n{err}");
    }
}

#[test]
fn a_canary_limits_the_blast_radius_of_a_bad_release_most() {
    // The committed scenario's claim, at another seed: failed requests, smallest first, are
    // the canary's (5% × 20% for one 20 s window at 1000/s: 200), the gated rolling update's
    // (2 of 5 replicas for a window), blue-green's (all traffic for a window: 4000) and the
    // ungated rolling update's (20% of everything after the rollout).
    let r = super::run_file_with_seed("deploy-strategies", 7);
    let failed = |name: &str| variant(&r, name).errors["server_error"] as f64;
    let (canary, gated, blue_green, ungated) = (
        failed("canary"),
        failed("rolling, gated"),
        failed("blue-green"),
        failed("rolling, no gating"),
    );
    let binomial = |n: f64, p: f64| (n * p, 4.0 * (n * p * (1.0 - p)).sqrt());
    let (expect, tol) = binomial(20_000.0, 0.05 * 0.2);
    assert!((canary - expect).abs() <= tol, "canary {canary}");
    let (expect, tol) = binomial(20_000.0, 0.2);
    assert!(
        (blue_green - expect).abs() <= tol,
        "blue-green {blue_green}"
    );
    assert!(canary < gated && gated < blue_green && blue_green < ungated);
    assert!(ungated > 0.2 * 1000.0 * 180.0, "ungated {ungated}");
}

/// A pool of three (one old replica, room for more new ones than a surge of one allows),
/// requests every 10 ms round-robin to the replicas in rotation, 40 ms of work on 8 workers
/// each: a new replica in rotation gets every other request, one each 20 ms, so exactly two
/// are in service at any instant. Its version crashes 15 s after each start.
fn crash_loop_scenario(strategy: &str, analysis: &str, duration: &str) -> String {
    format!(
        r#"Scenario(
    name: "crash loop", seed: 3, duration: "{duration}", warmup: "0s",
    network: (latency: Constant("100us")),
    nodes: {{
        "users": Client(target: "lb", timeout: "1s", arrival: Constant(rate: 100.0)),
        "lb":    LoadBalancer(strategy: RoundRobin, backends: ["app"], timeout: "1s"),
        "app":   Server(replicas: 3, workers: 8, service_time: Constant("40ms")),
        "deploy": Deploy(pool: "app", replicas: 1, start: "20s", provisioning: "10s",
                         version: (crash_loop: Some((after: Constant("15s")))),
                         strategy: {strategy}, analysis: {analysis}),
    }},
)"#
    )
}

const ONE_AT_A_TIME: &str = "Rolling(max_surge: Some(1), max_unavailable: Some(0))";

/// (time in ns, phase) of replica `name`'s timeline in the pool.
fn phases(v: &VariantResult, pool: &str, name: &str) -> Vec<(u64, String)> {
    let s = v.series[pool]
        .iter()
        .find(|s| s.name == "replica_phase" && s.label.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no timeline of {name}"));
    let track = s.states.as_ref().expect("a phase timeline");
    track
        .changes
        .iter()
        .map(|c| {
            let ns = (c.at_s * 1e9).round() as u64;
            (ns, track.names[c.state as usize].clone())
        })
        .collect()
}

const S: u64 = 1_000_000_000;

#[test]
fn a_crash_looping_replica_crashes_after_each_start_and_restarts_with_kubernetes_back_off() {
    // Health-gated (a 20 s error-rate check the few lost requests pass), crashing 7 s after
    // each start: the replica is never up for a whole window, so the rollout stalls.
    let text = crash_loop_scenario(ONE_AT_A_TIME, GATE, "1100s")
        .replace(r#"Constant("15s")"#, r#"Constant("7s")"#);
    let v = &run_text(&text).variants[0];
    // The timeline the kubelet's rule gives: ready at 30 s, a crash 7 s after each start,
    // restarted at once after the first, then after 10 s × 2^(k − 1), at most 300 s.
    let mut expected = vec![(0, "stopped".to_string()), (20 * S, "provisioning".into())];
    let (mut up, mut k) = (30 * S, 0u32);
    let mut crashes = 0;
    while up < 1100 * S {
        expected.push((up, "serving".into()));
        let crash = up + 7 * S;
        if crash > 1100 * S {
            break;
        }
        expected.push((crash, "back-off".into()));
        crashes += 1;
        up = crash
            + if k == 0 {
                0
            } else {
                ((10 * S) << (k - 1)).min(300 * S)
            };
        k += 1;
    }
    assert_eq!(phases(v, "app-pool", "app-1"), expected);
    // Back-offs 0, 10, 20, 40, 80, 160, 300 and 300 s: eight restarts, nine crashes.
    assert_eq!(crashes, 9);
    assert_eq!(counter(v, "new_version_crashes"), 9.0);
    assert_eq!(counter(v, "new_version_restarts"), 8.0);
    // Each crash loses the two requests in service (no answer: they time out), no more.
    assert_eq!(v.errors.get("timeout").copied(), Some(2 * crashes));
    assert_eq!(v.requests - v.ok, 2 * crashes);
    // The old replica never leaves rotation (replicas − max_unavailable = 1), and no second
    // new replica starts (max_surge = 1): the rollout stalls, and its progress deadline
    // (600 s after the new replica was first ready) marks it failed, as Kubernetes does.
    assert_eq!(phases(v, "app-pool", "app-0"), [(0, "serving".to_string())]);
    assert_eq!(phases(v, "app-pool", "app-2"), [(0, "stopped".to_string())]);
    assert_eq!(when(v, "progress deadline exceeded"), 630.0);
    assert_eq!(counter(v, "progress_deadline_exceeded"), 1.0);
    assert_eq!(counter(v, "completed"), 0.0);
    assert_eq!(counter(v, "rolled_back"), 0.0);
    let state = v.series["deploy"]
        .iter()
        .find(|s| s.name == "deploy_state")
        .and_then(|s| s.states.as_ref())
        .expect("a deploy timeline");
    let last = state.changes.last().expect("changes");
    assert_eq!(
        (last.at_s, state.names[last.state as usize].as_str()),
        (630.0, "failed")
    );
}

#[test]
fn the_back_off_starts_again_after_ten_minutes_up() {
    // Up 600 s before each crash: every crash is a first one, restarted at once.
    let text = crash_loop_scenario(ONE_AT_A_TIME, "None", "1900s")
        .replace(r#"Constant("15s")"#, r#"Constant("600s")"#);
    let v = &run_text(&text).variants[0];
    let crashes: Vec<(u64, String)> = phases(v, "app-pool", "app-1").into_iter().skip(2).collect();
    let serving = |t: u64| (t * S, "serving".to_string());
    let back_off = |t: u64| (t * S, "back-off".to_string());
    assert_eq!(
        crashes,
        [
            serving(30),
            back_off(630),
            serving(630),
            back_off(1230),
            serving(1230),
            back_off(1830),
            serving(1830)
        ]
    );
}

#[test]
fn a_crash_check_rolls_back_a_gated_rollout_and_no_gating_replaces_every_old_replica() {
    // With a check of crashes, the first check after the crash (at 45 s, restarted at once)
    // rolls back at 50 s: the new replica drains what it holds and stops.
    let gate = r#"Some((window: "20s", max_crashes: Some(0)))"#;
    let v = &run_text(&crash_loop_scenario(ONE_AT_A_TIME, gate, "120s")).variants[0];
    assert_eq!(when(v, "analysis failed"), 50.0);
    assert_eq!(when(v, "rollback completed"), 50.0);
    assert_eq!(counter(v, "rollback_after_first_crash_s"), 5.0);
    let app1 = phases(v, "app-pool", "app-1");
    let n = app1.len();
    assert_eq!(app1[n - 2], (50 * S, "draining".to_string()), "{app1:?}");
    assert!(
        app1[n - 1].1 == "stopped" && app1[n - 1].0 < 51 * S,
        "{app1:?}"
    );
    assert_eq!(phases(v, "app-pool", "app-0"), [(0, "serving".to_string())]);
    // Without gating the update goes on as replicas become ready, crash loop or not: the
    // old replica is retired once the new one is ready, and the pool is left crash-looping.
    let v = &run_text(&crash_loop_scenario(ONE_AT_A_TIME, "None", "120s")).variants[0];
    assert_eq!(when(v, "rolling update completed"), 30.0);
    let app0 = phases(v, "app-pool", "app-0");
    assert_eq!(
        app0.last().map(|p| p.1.as_str()),
        Some("stopped"),
        "{app0:?}"
    );
    assert!(
        v.errors.get("unreachable").copied().unwrap_or(0) > 0,
        "{:?}",
        v.errors
    );
}

#[test]
fn blue_green_switches_only_to_a_set_that_is_all_ready() {
    // Due at 65 s (ready at 30 s + 35 s), when the new replica is in back-off (crashed at
    // 45 s and restarted at once, crashed again at 60 s): the switch waits for its restart
    // at 70 s.
    let text = crash_loop_scenario(
        r#"BlueGreen(switch_after: "35s", scale_down_delay: "30s")"#,
        "None",
        "120s",
    );
    let v = &run_text(&text).variants[0];
    assert_eq!(when(v, "the switch waits"), 65.0);
    assert_eq!(when(v, "traffic switched"), 70.0);
    let app1 = phases(v, "app-pool", "app-1");
    assert!(
        app1.contains(&(70 * S, "serving".to_string())),
        "switched to a replica not in rotation: {app1:?}"
    );
}

/// Per replica, whether it is new (started after the deploy began, so at the new version)
/// and its phase, after each instant of change, from the pool's timelines.
fn fleet_over_time(v: &VariantResult, names: &[&str]) -> Vec<(u64, Vec<(bool, String)>)> {
    let timelines: Vec<Vec<(u64, String)>> =
        names.iter().map(|n| phases(v, "app-pool", n)).collect();
    let mut instants: Vec<u64> = timelines.iter().flatten().map(|c| c.0).collect();
    instants.sort_unstable();
    instants.dedup();
    instants
        .into_iter()
        .map(|t| {
            let fleet = timelines
                .iter()
                .map(|tl| {
                    let upto: Vec<&(u64, String)> = tl.iter().filter(|c| c.0 <= t).collect();
                    let new = upto.iter().any(|c| c.1 == "provisioning");
                    (new, upto.last().map_or(String::new(), |c| c.1.clone()))
                })
                .collect();
            (t, fleet)
        })
        .collect()
}

#[test]
fn a_canary_promotion_replaces_the_stable_replicas_within_surge_and_unavailability() {
    // Four stable replicas, one canary, Argo's 25% limits: surge 1, one unavailable.
    let text = scenario(
        r#"Canary(steps: [0.2], pause: "20s", canary_replicas: Some(1))"#,
        r#"Some((window: "10s"))"#,
        "",
    )
    .replace("error_rate: 0.2", "error_rate: 0.0");
    let v = &run_text(&text).variants[0];
    let promoting = when(v, "canary promoting");
    let promoted = when(v, "canary promoted");
    assert_eq!(promoting, 50.0, "ready at 30 s, one 20 s step");
    let names: Vec<String> = (0..8).map(|i| format!("app-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let in_rotation = |p: &str| matches!(p, "warming" | "serving");
    let active = |p: &str| in_rotation(p) || matches!(p, "provisioning" | "back-off");
    let (mut fewest, mut most) = (usize::MAX, 0);
    for (t, fleet) in fleet_over_time(v, &names) {
        let count =
            |keep: &dyn Fn(&(bool, String)) -> bool| fleet.iter().filter(|r| keep(r)).count();
        let ready = count(&|r| in_rotation(&r.1));
        let running = count(&|r| active(&r.1));
        let old_ready = count(&|r| !r.0 && in_rotation(&r.1));
        if t >= promoting as u64 * S {
            // replicas − max_unavailable in rotation, replicas + max_surge running, at least
            // and at most.
            assert!(ready >= 3, "{ready} in rotation at {t} ns: {fleet:?}");
            assert!(running <= 5, "{running} running at {t} ns: {fleet:?}");
            fewest = fewest.min(ready);
            most = most.max(running);
        }
        if t >= (promoted * 1e9) as u64 {
            assert_eq!((ready, old_ready), (4, 0), "at {t} ns: {fleet:?}");
        }
    }
    // Replaced in batches, not at once: both limits were reached on the way.
    assert_eq!((fewest, most), (3, 5));
    assert!(
        promoted > promoting && promoted <= promoting + 30.0,
        "{promoted}"
    );
    assert_eq!(counter(v, "completed"), 1.0);
    assert_eq!(v.errors.values().sum::<u64>(), 0, "{:?}", v.errors);
}

#[test]
fn the_analysis_goes_on_during_a_canary_promotion() {
    // The canary is ready at 30 s and passes its step (at 40 s and 50 s, no crash yet); it
    // crashes 25 s after it is ready, at 55 s, during the promotion: the check at 60 s fails
    // and rolls the promotion back, replica by replica.
    let text = scenario(
        r#"Canary(steps: [0.2], pause: "20s", canary_replicas: Some(1))"#,
        r#"Some((window: "10s", max_crashes: Some(0)))"#,
        "",
    )
    .replace(
        "version: (error_rate: 0.2)",
        r#"version: (crash_loop: Some((after: Constant("25s"))))"#,
    );
    let v = &run_text(&text).variants[0];
    assert_eq!(when(v, "canary promoting"), 50.0);
    assert_eq!(when(v, "crashed"), 55.0);
    assert_eq!(when(v, "analysis failed"), 60.0);
    assert!(when(v, "rollback completed") >= 60.0);
    assert_eq!(counter(v, "rolled_back"), 1.0);
    assert_eq!(counter(v, "completed"), 0.0);
}

#[test]
fn crash_loop_and_deadline_mistakes_are_located() {
    let src = r#"Scenario(
    name: "x",
    duration: "10s",
    nodes: {
        "lb": LoadBalancer(strategy: RoundRobin, backends: ["app"]),
        "app": Server(replicas: 5, service_time: Exponential(mean: "1ms")),
        "d": Deploy(pool: "app", replicas: 4, start: "1s",
                    version: (crash_loop: Some((after: Constant("0s")))),
                    strategy: Rolling(progress_deadline: "0s")),
    },
)"#;
    let err = archsim::scenario::parse("bad.ron", src, &archsim::Registry::builtin())
        .expect_err("the scenario should be rejected")
        .to_string();
    for (location, text) in [
        (
            "bad.ron:8:56",
            "a replica that crashes the instant it is ready",
        ),
        ("bad.ron:9:58", "a zero progress deadline"),
    ] {
        assert!(err.contains(location), "missing {location} in:\n{err}");
        assert!(err.contains(text), "missing `{text}` in:\n{err}");
    }
}

#[test]
fn a_crash_check_catches_a_crash_loop_that_error_rates_miss() {
    // The committed crash-loop scenario's claims, at another seed: error-rate gates pass while
    // the first crashes restart at once, so the gated rolling update and blue-green complete
    // and fail a large share afterwards; a crash check rolls the canary back within one window
    // of the first crash, with the fewest requests failed; failures, fewest first: canary +
    // crash check, canary, then the rolling updates (with the crash check, rolled back at a
    // gate; without, completed).
    let r = super::run_file_with_seed("deploy-crashloop", 7);
    let v = |name: &str| variant(&r, name);
    let failed = |name: &str| v(name).errors.values().sum::<u64>();
    for (name, done) in [
        ("rolling, gated", "rolling update completed"),
        ("blue-green", "old set scaled down"),
    ] {
        let v = v(name);
        assert_eq!(counter(v, "completed"), 1.0, "{name}");
        let done = when(v, done);
        let (n, f) = completed(v, done + 20.0, 300.0);
        assert!(
            f as f64 > 0.1 * n as f64,
            "{name}: {f} of {n} failed after the rollout"
        );
    }
    let checked = v("canary + crash check");
    assert_eq!(counter(checked, "rolled_back"), 1.0);
    assert!(counter(checked, "rollback_after_first_crash_s") <= 20.0);
    for name in ["rolling, gated + crash check", "canary"] {
        assert_eq!(counter(v(name), "rolled_back"), 1.0, "{name}");
    }
    let order = [
        failed("canary + crash check"),
        failed("canary"),
        failed("rolling, gated + crash check"),
        failed("rolling, gated"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(failed("blue-green") > failed("rolling, gated + crash check"));
}

#[test]
fn a_balancer_handshakes_again_with_a_replica_its_controller_restarted() {
    // The crash loop above, with the balancer on kept-alive TCP connections: a restart after
    // a crash is a new process, so the connections to the old one are gone (the kernel's
    // incarnation does not see a crash the controller times).
    let text = crash_loop_scenario(ONE_AT_A_TIME, "None", "200s").replace(
        r#"backends: ["app"], timeout: "1s")"#,
        r#"backends: ["app"], timeout: "1s",
                         connections: Some((protocol: Tcp, max_connections: 64)))"#,
    );
    let r = run_text(&text);
    let v = &r.variants[0];
    let lb = &v.components["lb"];
    let handshakes = v.series["lb"]
        .iter()
        .find(|s| s.name == "handshakes")
        .expect("the balancer's handshakes");
    let windows: Vec<(usize, f64)> = handshakes
        .values
        .iter()
        .enumerate()
        .filter_map(|(i, x)| x.filter(|x| *x > 0.0).map(|x| (i, x)))
        .collect();
    // Opened to app-0 at the start and to app-1 when it is ready (30 s), then again at each
    // of its restarts: 45, 70, 105 and 160 s (crashes at 45, 60, 85 and 120 s; back-off 0,
    // 10, 20 and 40 s).
    let at: Vec<usize> = windows.iter().map(|(i, _)| *i).collect();
    assert_eq!(at, vec![0, 30, 45, 70, 105, 160], "{windows:?}");
    let reopened: f64 = windows.iter().skip(2).map(|(_, x)| x).sum();
    assert!(reopened > 0.0);
    assert_eq!(lb["connections_dropped_by_restart"], reopened, "{lb:?}");
}

#[test]
fn a_canary_step_waits_for_its_canary_replicas_to_be_in_rotation() {
    // The canary crashes 7 s after each start: ready at 30 s, crashes at 37 (restarted at
    // once), 44 (back 54), 61 (back 81), 88 (back 128). Its 20 s pauses end at 50, 70, 90 and
    // 110 s with it in back-off each time, so, as Argo Rollouts waits for the canary to be
    // available, the second step waits until the check at 130 s finds it up.
    let text = crash_loop_scenario(
        r#"Canary(steps: [0.5, 1.0], pause: "20s", canary_replicas: Some(1))"#,
        "None",
        "140s",
    )
    .replace(r#"Constant("15s")"#, r#"Constant("7s")"#);
    let v = &run_text(&text).variants[0];
    assert_eq!(when(v, "step 1 of 2"), 30.0);
    assert_eq!(when(v, "the next step waits"), 50.0);
    assert_eq!(when(v, "step 2 of 2"), 130.0);
    let waits = events(v)
        .iter()
        .filter(|(_, w)| w.contains("the next step waits"))
        .count();
    assert_eq!(waits, 1, "one event per step, however long it waits");
}
