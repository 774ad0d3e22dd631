//! Workload shapes and trace replay: shaped rates against their integral, a trace issuing
//! exactly its rows at their times, and bad traces stopped before the run with file:line errors.

use archsim::Registry;
use archsim::runner::{RunOptions, run};
use archsim::scenario::parse;

/// A plug-in that answers at once and reports every request it got, in order, as
/// `"<ns> <key> <read|write> <class>"`.
mod recorder {
    use archsim::components::message::{Builtin, Ctx, Message};
    use archsim::contract::build::BuildCtx;
    use archsim::contract::call::{Op, Reply, Response};
    use archsim::contract::metrics::NodeStats;
    use archsim::registry::Component;
    use archsim::results::EventRecord;
    use archsim::sim::time::SimTime;
    use archsim::sim::{Node, NodeId, TimerId};

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(rename = "Recorder")]
    pub struct Config {}

    pub struct Recorder(Vec<String>);

    impl Node<Builtin> for Recorder {
        fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}
        fn on_message(&mut self, ctx: &mut Ctx<'_>, from: NodeId, msg: Message) {
            if let Message::Request(r) = msg {
                let op = if r.op == Op::Write { "write" } else { "read" };
                self.0
                    .push(format!("{} {} {op} {}", ctx.now().0, r.key, r.class));
                let result = Ok(Reply::default());
                let resp = Response {
                    call: r.call,
                    id: r.id,
                    result,
                };
                ctx.send(from, Message::Response(resp));
            }
        }
        fn on_timer(&mut self, _ctx: &mut Ctx<'_>, _timer: TimerId, _tag: u64) {}
        fn on_crash(&mut self, _now: SimTime) {}
        fn finish(&mut self, _now: SimTime) -> Option<NodeStats> {
            let events = self
                .0
                .drain(..)
                .map(|what| EventRecord { at_s: 0.0, what })
                .collect();
            Some(NodeStats {
                events,
                ..NodeStats::default()
            })
        }
    }

    impl Component for Recorder {
        const KIND: &'static str = "Recorder";
        type Config = Config;
        fn build(_cfg: &Config, _b: &BuildCtx<'_>) -> Self {
            Recorder(Vec::new())
        }
    }
}

/// A fresh folder for this test's files.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("archsim-workload-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn trace_scenario(file: &str, options: &str) -> String {
    format!(
        r#"Scenario(name: "trace", duration: "10s", classes: ["gold", "bronze"],
        nodes: {{
            "users": Client(target: "rec", arrival: Trace(file: "{file}"{options}), classes: {{"bronze": 1.0}}),
            "rec": Recorder(),
        }})"#
    )
}

#[test]
fn a_trace_issues_exactly_its_rows_at_their_times_to_the_nanosecond() {
    let dir = scratch("exact");
    // Times in seconds with nanosecond digits and with units, text and numeric keys, a class
    // column partly empty (those rows take the client's share: bronze), two rows at one instant.
    let csv = "time,op,key,class\n\
               0.000000001,read,17,gold\n\
               0.25,write,user:42,\n\
               0.25,get,18446744073709551615,bronze\n\
               1.999999999,put,3,gold\n\
               3s,r,0,\n\
               4500ms,w,9,\n";
    std::fs::write(dir.join("t.csv"), csv).unwrap();
    let reg = Registry::builtin().register::<recorder::Recorder>();
    let src = trace_scenario("t.csv", "");
    let file = dir.join("trace.ron").display().to_string();
    let s = parse(&file, &src, &reg).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&s, &reg, &RunOptions::default()).unwrap();
    let got: Vec<&str> = r.variants[0].state_changes["rec"]
        .iter()
        .map(|e| e.what.as_str())
        .collect();
    let user42 = archsim::sim::rng::stable_hash(b"user:42");
    let want = [
        "1 17 read 0".to_string(),
        format!("250000000 {user42} write 1"),
        "250000000 18446744073709551615 read 1".to_string(),
        "1999999999 3 write 0".to_string(),
        "3000000000 0 read 1".to_string(),
        "4500000000 9 write 1".to_string(),
    ];
    assert_eq!(got, want);
    assert_eq!(r.variants[0].components["users"]["issued"], 6.0);
    // Scaled by 2 and repeated every 5 s (after scaling): 0.000000002, 0.5, ..., then +5 s.
    let src = trace_scenario("t.csv", ", time_scale: 2.0, repeat_every: \"9.5s\"");
    let s = parse(&file, &src, &reg).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&s, &reg, &RunOptions::default()).unwrap();
    let times: Vec<u64> = r.variants[0].state_changes["rec"]
        .iter()
        .map(|e| e.what.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        times,
        vec![
            2,
            500_000_000,
            500_000_000,
            3_999_999_998,
            6_000_000_000,
            9_000_000_000,
            9_500_000_002
        ]
    );
}

#[test]
fn a_trace_with_bad_rows_is_refused_with_the_file_and_line_of_each() {
    let dir = scratch("bad");
    let csv = "time,key,op\n1,5,read\n0.5,6,read\n2,7,fly\n2.5,,read\n3,8,read,extra\n";
    std::fs::write(dir.join("bad.csv"), csv).unwrap();
    let reg = Registry::builtin().register::<recorder::Recorder>();
    let file = dir.join("bad.ron").display().to_string();
    let err = parse(&file, &trace_scenario("bad.csv", ""), &reg)
        .expect_err("bad rows")
        .to_string();
    let csv_path = dir.join("bad.csv").display().to_string();
    for (line, what) in [
        (3, "before the previous row"),
        (4, "operation `fly`"),
        (5, "no key"),
    ] {
        assert!(
            err.contains(&format!("{csv_path}:{line}: ")),
            "line {line} in\n{err}"
        );
        assert!(err.contains(what), "{what} in\n{err}");
    }
    assert!(!err.contains(":6:"), "an extra column is ignored:\n{err}");
    assert!(err.contains("3 errors found; nothing was run"), "{err}");
    // The scenario's own location is shown too: the `file` field of the arrival.
    assert!(err.contains("bad.ron:3:"), "{err}");
    let missing = parse(&file, &trace_scenario("nowhere.csv", ""), &reg)
        .expect_err("no file")
        .to_string();
    assert!(
        missing.contains("cannot read trace") && missing.contains("nowhere.csv"),
        "{missing}"
    );
}

#[test]
fn the_shipped_example_trace_replays() {
    let example = super::repo_root().join("scenarios/traces/example.csv");
    let text = std::fs::read_to_string(&example).unwrap();
    let rows = text.lines().filter(|l| !l.starts_with('#')).count() - 1;
    let src = format!(
        r#"Scenario(name: "example", duration: "120s", classes: ["premium", "standard"],
        nodes: {{
            "users": Client(target: "app", arrival: Trace(file: "{}")),
            "app": Server(replicas: 2, workers: 4, service_time: Exponential(mean: "2ms")),
        }})"#,
        example.display()
    );
    let r = super::run_text(&src);
    let v = &r.variants[0];
    assert_eq!(v.components["users"]["issued"], rows as f64);
    assert_eq!(v.classes.len(), 2);
    assert_eq!(
        v.classes.iter().map(|c| c.requests).sum::<u64>(),
        v.requests
    );
}

#[test]
fn shaped_arrivals_follow_their_rate_window_by_window() {
    // Base 400/s; ×5 from 4 s to 6 s; a flash crowd at 8 s (peak ×6, decay 1 s).
    let src = r#"Scenario(name: "shape", duration: "12s", window: "1s",
        nodes: {
            "users": Client(target: "app", arrival: Shaped(rate: 400.0, shape: Sum([
                Step(at: "4s", factor: 5.0, until: "6s"),
                FlashCrowd(at: "8s", peak: 6.0, decay: "1s"),
                Step(at: "0s", factor: -1.0),
            ]))),
            "app": Server(workers: 100, service_time: Constant("1us")),
        })"#;
    let err = parse("s.ron", src, &Registry::builtin())
        .expect_err("negative factor")
        .to_string();
    assert!(
        err.contains("s.ron:6:") && err.contains("expected a finite multiplier >= 0"),
        "{err}"
    );
    let src = src.replace(
        "Step(at: \"0s\", factor: -1.0)",
        "Step(at: \"0s\", factor: 0.0, until: \"1s\")",
    );
    let r = super::run_text(&src);
    // Sum of multipliers: 1 (step off) + 1 (crowd off) + 0 in the first second, else 1.
    let per_second = |t: f64| {
        let step = if (4.0..6.0).contains(&t) { 5.0 } else { 1.0 };
        let crowd = if t < 8.0 {
            1.0
        } else {
            1.0 + 5.0 * (-(t - 8.0)).exp()
        };
        let third = if t < 1.0 { 0.0 } else { 1.0 };
        400.0 * (step + crowd + third)
    };
    for w in &r.variants[0].windows {
        // Expected count: the rate integrated over the window (midpoint rule on 1000 steps).
        let want: f64 = (0..1000)
            .map(|i| per_second(w.start_s + (i as f64 + 0.5) / 1000.0) / 1000.0)
            .sum();
        let got = (w.ok + w.errors) as f64;
        assert!(
            (got - want).abs() < 4.0 * want.sqrt(),
            "window at {}s: {got} requests, expected {want:.0}",
            w.start_s
        );
    }
}
