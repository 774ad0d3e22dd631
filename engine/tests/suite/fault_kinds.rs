//! The fault kinds of `scenario::faults`: pause, restart, latency spike, packet loss,
//! isolation, majority/minority split and random faults.

use super::run_text;
use archsim::Registry;
use archsim::scenario::parse;
use archsim::sim::network::{Cut, LinkModel, Network};
use archsim::sim::rng::SimRng;
use archsim::sim::time::{SimDuration, SimTime};
use archsim::sim::{FaultAction, NodeId};
use std::collections::BTreeMap;

fn scenario(faults: &str) -> String {
    format!(
        r#"Scenario(
            name: "fault kinds", seed: 2, duration: "6s", window: "1s",
            network: (latency: Constant("1ms")),
            nodes: {{
                "users": Client(target: "app", arrival: Constant(rate: 100.0), timeout: "1s"),
                "app": Server(workers: 4, service_time: Constant("1ms")),
            }},
            faults: [{faults}],
        )"#
    )
}

#[test]
fn a_pause_delays_messages_and_timers_but_loses_nothing() {
    let r = run_text(&scenario(r#"Pause(node: "app", at: "2s", until: "2.5s")"#));
    let v = &r.variants[0];
    let calm = run_text(&scenario(""));
    assert_eq!(v.requests, calm.variants[0].requests);
    assert_eq!(v.ok, v.requests, "nothing lost: {:?}", v.errors);
    // The request sent at 2.0 s arrives at 2.001 s and waits for the end of the pause at
    // 2.5 s; the 50 held requests are then served by 4 workers in 13 ms (1 ms each), and
    // the answer takes 1 ms back. So the slowest request waits at most 0.5 + 0.013 + 0.002 s.
    let max = v.latency_ms.max;
    assert!((499.0..=516.0).contains(&max), "max latency {max} ms");
    assert_eq!(r.faults[0].label, "pause app");
    // Without the pause, every request takes 3 ms.
    assert!((calm.variants[0].latency_ms.max - 3.0).abs() < 0.05);
}

#[test]
fn a_pause_makes_a_timer_fire_late() {
    // One request a second, 100 ms of service. The request issued at 2 s starts service at
    // 2.001 s; its completion timer (due at 2.101 s) fires only when the pause ends at 2.5 s,
    // and the answer arrives at 2.501 s: 501 ms.
    let src = scenario(r#"Pause(node: "app", at: "2.05s", until: "2.5s")"#)
        .replace("rate: 100.0", "rate: 1.0")
        .replace(
            r#"service_time: Constant("1ms")"#,
            r#"service_time: Constant("100ms")"#,
        );
    let r = run_text(&src);
    let v = &r.variants[0];
    assert_eq!(v.ok, v.requests);
    assert!((v.latency_ms.max - 501.0).abs() < 3.0, "{:?}", v.latency_ms);
    assert!((v.latency_ms.p50 - 102.0).abs() < 1.5, "{:?}", v.latency_ms);
}

#[test]
fn a_pause_then_a_crash_drops_what_waited() {
    // Requests held by the pause die with the crash: the clients time out on them.
    let r = run_text(&scenario(
        r#"Pause(node: "app", at: "2s", until: "3s"), Crash(node: "app", at: "2.5s", until: "2.6s")"#,
    ));
    let v = &r.variants[0];
    assert_eq!(v.ok + v.errors.values().sum::<u64>(), v.requests);
    // Sent in [2.0, 2.5): held then dropped (timeouts); sent in [2.5, 2.6): refused
    // (unreachable); sent in [2.6, 3.0): held, served at 3.0 s.
    assert_eq!(v.errors["timeout"], 50, "{:?}", v.errors);
    assert_eq!(v.errors["unreachable"], 10, "{:?}", v.errors);
}

#[test]
fn a_restart_is_a_crash_for_its_downtime() {
    let r = run_text(&scenario(
        r#"Restart(node: "app", at: "2s", downtime: "500ms")"#,
    ));
    let v = &r.variants[0];
    assert_eq!(v.errors["unreachable"], 50, "{:?}", v.errors);
    assert_eq!(r.faults[0].label, "restart app");
    assert_eq!((r.faults[0].start_s, r.faults[0].end_s), (2.0, 2.5));
    let r = run_text(&scenario(
        r#"Restart(node: "app", at: "2s", keep_state: true)"#,
    ));
    assert_eq!(r.faults[0].label, "restart app (state kept)");
    assert_eq!(r.faults[0].end_s, 2.0, "zero downtime by default");
}

#[test]
fn a_latency_spike_on_a_node_slows_its_links_both_ways() {
    let r = run_text(&scenario(
        r#"LatencySpike(node: "app", latency: Constant("20ms"), at: "2s", until: "4s")"#,
    ));
    let p50: Vec<f64> = r.variants[0]
        .windows
        .iter()
        .map(|w| w.p50_ms.unwrap_or(f64::NAN))
        .collect();
    // 20 ms each way plus 1 ms of service while it lasts; window histograms keep 1%.
    let close = |a: f64, b: f64| (a - b).abs() / b < 0.01;
    assert!(close(p50[1], 3.0) && close(p50[3], 41.0) && close(p50[5], 3.0));
    assert_eq!(r.faults[0].label, "latency spike 20ms app");
}

#[test]
fn a_packet_loss_window_on_all_links() {
    let r = run_text(&scenario(r#"PacketLoss(loss: 1.0, at: "2s", until: "3s")"#));
    let v = &r.variants[0];
    assert_eq!(v.errors["timeout"], 100, "{:?}", v.errors);
    assert_eq!(r.faults[0].label, "packet loss 1 *");
}

/// The partition sides of the first fault of a scenario with a 5-replica cluster.
fn sides(fault: &str) -> (Vec<u16>, Vec<String>) {
    let src = format!(
        r#"Scenario(
            name: "split", duration: "1s",
            nodes: {{
                "users": Client(target: "db", arrival: Constant(rate: 10.0)),
                "db": Server(replicas: 5, service_time: Constant("1ms")),
                "admin": Client(target: "db", arrival: Constant(rate: 10.0)),
            }},
            faults: [{fault}],
        )"#
    );
    let s = parse("split.ron", &src, &Registry::builtin()).unwrap_or_else(|e| panic!("{e}"));
    let m = &s.variants[0].model;
    let FaultAction::Partition { side, one_way } = &m.faults[0].action else {
        panic!("not a partition: {:?}", m.faults[0].action)
    };
    assert!(!one_way);
    let labels = m.fault_windows.iter().map(|w| w.label.clone()).collect();
    (side.clone(), labels)
}

/// Which ordered pairs of nodes can talk under a partition with these sides.
fn connected_pairs(side: &[u16]) -> Vec<(u32, u32)> {
    let link = LinkModel {
        latency: archsim::sim::dist::Dist::Constant(SimDuration(1)),
        loss: 0.0,
    };
    let mut net = Network::new(link, BTreeMap::new(), SimRng::derive(1, "n"));
    net.add_cut(Cut {
        fault: 0,
        side: side.to_vec(),
        one_way: false,
    });
    let n = side.len() as u32;
    let mut out = Vec::new();
    for a in 0..n {
        for b in 0..n {
            if a != b && net.connected(NodeId(a), NodeId(b)) {
                out.push((a, b));
            }
        }
    }
    out
}

#[test]
fn isolate_cuts_every_link_of_the_node_and_no_other() {
    // Nodes: users=0, db-0..db-4 = 1..5, admin=6.
    let (side, labels) = sides(r#"Isolate(node: "db-2", at: "0.5s")"#);
    let pairs = connected_pairs(&side);
    let touches = |(a, b): &(u32, u32)| *a == 3 || *b == 3;
    assert!(!pairs.iter().any(touches), "db-2 still talks: {pairs:?}");
    assert_eq!(
        pairs.len(),
        6 * 5,
        "all 30 links among the other six nodes stay"
    );
    assert_eq!(labels[0], "isolate db-2");
}

#[test]
fn a_split_cuts_the_minority_off_from_everyone_else() {
    let (side, labels) = sides(r#"Split(nodes: ["db"], at: "0.5s")"#);
    assert_eq!(side, vec![2, 2, 2, 2, 1, 1, 2]);
    assert_eq!(labels[0], "split db: minority db-3,db-4");
    let pairs = connected_pairs(&side);
    // Majority side: users, db-0..2, admin (5 nodes, 20 links); minority: db-3, db-4 (2).
    assert_eq!(pairs.len(), 20 + 2);
    assert!(pairs.contains(&(4, 5)) && pairs.contains(&(5, 4)));
    assert!(!pairs.contains(&(0, 4)) && !pairs.contains(&(4, 3)));
    // A client on the minority side, and a minority of one.
    let (side, _) =
        sides(r#"Split(nodes: ["db"], minority: 1, with_minority: ["admin"], at: "0.5s")"#);
    assert_eq!(side, vec![2, 2, 2, 2, 2, 1, 1]);
}

#[test]
fn a_split_without_a_minority_is_an_error() {
    let src = scenario(r#"Split(nodes: ["app", "users"], minority: 1, at: "1s")"#);
    let err = parse("f.ron", &src, &Registry::builtin())
        .unwrap_err()
        .to_string();
    assert!(err.contains("a minority of 1 in a cluster of 2"), "{err}");
    assert!(err.contains("f.ron:"), "{err}");
}

fn random_model(entry: &str) -> archsim::scenario::validate::Model {
    let src = scenario(entry)
        .replace("\"6s\"", "\"2000s\"")
        .replace("100.0", "1.0");
    let s = parse("r.ron", &src, &Registry::builtin()).unwrap_or_else(|e| panic!("{e}"));
    s.variants[0].model.clone()
}

#[test]
fn random_faults_are_a_poisson_timeline_fixed_by_the_seed() {
    let m = random_model(
        r#"Random(kind: Pause, node: "app", mean_interval: "2s", duration: "100ms", start: "100s", stop: "2000s")"#,
    );
    let (a, wa) = m.fault_schedule(7);
    let (b, _) = m.fault_schedule(7);
    let (c, _) = m.fault_schedule(8);
    assert_eq!(a, b, "same seed, same timeline");
    assert_ne!(a, c, "another seed, another timeline");
    // 1900 s / 2 s = 950 faults expected; Poisson, so sigma = sqrt(950) = 31: allow 4 sigma.
    let n = a.len() as f64;
    assert!((826.0..=1074.0).contains(&n), "{n} faults");
    assert!(
        a.iter()
            .all(|f| f.at >= SimTime(100_000_000_000) && f.at < SimTime(2_000_000_000_000))
    );
    let gaps: Vec<f64> = a
        .windows(2)
        .map(|w| w[1].at.since(w[0].at).as_secs_f64())
        .collect();
    let mean_gap = gaps.iter().sum::<f64>() / gaps.len() as f64;
    // The mean of ~950 exponential gaps has a relative sigma of 1/sqrt(950) = 3.2%.
    assert!((mean_gap - 2.0).abs() < 0.2, "mean gap {mean_gap}");
    for f in &a {
        assert_eq!(f.until, Some(f.at.after(SimDuration::from_millis(100))));
        assert_eq!(f.action, FaultAction::Pause(vec![NodeId(1)]));
    }
    assert_eq!(wa.len(), a.len());
    assert_eq!(wa[0].label, "random pause app-0");
}

#[test]
fn random_faults_run_and_are_shaded() {
    let src = scenario(
        r#"Random(kind: Crash, node: "app", mean_interval: "1s", duration: "200ms", start: "1s")"#,
    );
    let r1 = run_text(&src);
    let r2 = run_text(&src);
    assert_eq!(r1, r2);
    assert!(!r1.faults.is_empty());
    assert!(
        r1.faults
            .iter()
            .all(|f| f.label == "random crash app-0" || f.label == "random crash app")
    );
    assert!(r1.variants[0].errors["unreachable"] > 0);
}

/// A node that sets two timers at start (and again at each restart) and logs the ones that
/// fire; with `cancel_old`, after a restart it cancels the timer it set before the crash.
struct Ticker {
    me: u64,
    log: std::rc::Rc<std::cell::RefCell<Vec<(u64, u64, u64)>>>,
    cancel_old: bool,
    before_crash: Option<archsim::sim::TimerId>,
    starts: u64,
}

impl archsim::sim::Node<archsim::components::message::Builtin> for Ticker {
    fn on_start(&mut self, ctx: &mut archsim::components::message::Ctx<'_>) {
        self.starts += 1;
        let tag = 10 * self.starts;
        ctx.set_timer(SimDuration::from_millis(10), tag + 1);
        let late = ctx.set_timer(SimDuration::from_millis(30), tag + 2);
        if self.starts == 1 {
            self.before_crash = Some(late);
        } else if let Some(old) = self.before_crash.take().filter(|_| self.cancel_old) {
            // Its entry is still queued: cancelling it must not touch the new timers.
            ctx.cancel_timer(old);
        }
    }

    fn on_message(
        &mut self,
        _: &mut archsim::components::message::Ctx<'_>,
        _: NodeId,
        _: archsim::components::message::Message,
    ) {
    }

    fn on_timer(
        &mut self,
        ctx: &mut archsim::components::message::Ctx<'_>,
        _: archsim::sim::TimerId,
        tag: u64,
    ) {
        let ms = ctx.now().0 / 1_000_000;
        self.log.borrow_mut().push((self.me, tag, ms));
    }

    fn on_crash(&mut self, _: SimTime) {}
}

/// Two tickers, node 0 crashed from 20 to 25 ms: the timers that fired, sorted, and the
/// event count.
fn tickers_with_a_crash(crash: &FaultAction, cancel_old: bool) -> (Vec<(u64, u64, u64)>, u64) {
    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let slots = (0..2)
        .map(|i| archsim::sim::Slot {
            name: format!("n{i}"),
            rng: SimRng::derive(1, &format!("n{i}")),
            node: Ticker {
                me: i,
                log: log.clone(),
                cancel_old,
                before_crash: None,
                starts: 0,
            },
        })
        .collect();
    let link = LinkModel {
        latency: archsim::sim::dist::Dist::Constant(SimDuration::ZERO),
        loss: 0.0,
    };
    let network = Network::new(link, BTreeMap::new(), SimRng::derive(1, "!network"));
    let fault = archsim::sim::Fault {
        action: crash.clone(),
        at: SimTime(20_000_000),
        until: Some(SimTime(25_000_000)),
    };
    let world = archsim::sim::World::new(
        slots,
        network,
        vec![fault],
        archsim::sim::Limits::default(),
        archsim::contract::metrics::RequestMetrics::new(SimTime::ZERO, SimDuration::from_secs(1)),
    );
    let outcome = world.run(SimTime(100_000_000)).expect("runs");
    let mut fired = log.borrow().clone();
    fired.sort();
    (fired, outcome.events)
}

/// Timers die with their node's crash, also when the crash keeps the node's data, and no
/// other node's timers do; those set after the restart fire. A dead timer still reaches the
/// front and counts as an event, unless its node cancelled it after the restart (harmlessly).
#[test]
fn timers_set_before_a_crash_never_fire() {
    for crash in [
        FaultAction::Crash(vec![NodeId(0)]),
        FaultAction::CrashKeepState(vec![NodeId(0)]),
    ] {
        let (fired, events) = tickers_with_a_crash(&crash, false);
        // Node 0's 30 ms timer (tag 12) is gone; it restarted at 25 ms and set timers for 35
        // and 55 ms. Node 1 was never touched.
        let expected = vec![
            (0, 11, 10),
            (0, 21, 35),
            (0, 22, 55),
            (1, 11, 10),
            (1, 12, 30),
        ];
        assert_eq!(fired, expected, "{crash:?}");
        let (fired, events_cancelled) = tickers_with_a_crash(&crash, true);
        assert_eq!(fired, expected, "{crash:?}, dead timer cancelled");
        assert_eq!(events, events_cancelled + 1, "{crash:?}");
    }
}
