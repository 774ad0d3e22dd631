//! Tests of the whole report: file list, plot content, determinism, PNGs, edge cases.

use super::*;
use crate::results::{
    FaultWindow, LatencySummary, ScenarioEcho, ServerResult, Timing, VariantResult, WindowResult,
};
use resvg::tiny_skia::Pixmap;
use std::collections::BTreeMap;

const FILES: [&str; 10] = [
    "summary.md",
    "latency_cdf.svg",
    "latency_cdf.png",
    "latency_over_time.svg",
    "latency_over_time.png",
    "availability.svg",
    "availability.png",
    "throughput.svg",
    "throughput.png",
    "index.html",
];

/// A run of 60 s with a slowdown, a crash and a partition, and three variants that react
/// differently; `partitioned` completes nothing during the partition (windows of `None`).
pub(super) fn fixture() -> Results {
    let variants = vec![
        variant("round-robin", 0, 1.0),
        variant("least-connections", 1, 0.6),
        variant("p2c", 2, 0.4),
    ];
    Results {
        warnings: Vec::new(),
        archsim_version: "0.1.0".to_string(),
        scenario: ScenarioEcho {
            name: "Load balancer strategies under a slow replica".to_string(),
            description: Some("Which strategy copes best when one replica slows down?".into()),
            file: "scenarios/lb_strategies.ron".to_string(),
            resolved: serde_json::Value::Null,
        },
        seed: 7,
        digest: "9f86d081884c7d65".to_string(),
        timing: Timing {
            duration_s: 60.0,
            warmup_s: 5.0,
            window_s: 1.0,
        },
        faults: vec![
            fault("slowdown app-2 x10", 20.0, 35.0),
            fault("crash app-3", 40.0, 45.0),
            fault("partition lb | app-1", 50.0, 53.0),
        ],
        variants,
    }
}

fn fault(label: &str, start_s: f64, end_s: f64) -> FaultWindow {
    FaultWindow {
        label: label.to_string(),
        start_s,
        end_s,
        random: false,
    }
}

/// A variant whose tail grows by `sensitivity` during the slowdown.
fn variant(name: &str, index: u64, sensitivity: f64) -> VariantResult {
    let windows: Vec<WindowResult> = (0..60).map(|s| window(s, index, sensitivity)).collect();
    let mut errors = BTreeMap::new();
    errors.insert("rejected".to_string(), 120 * index);
    errors.insert("timeout".to_string(), 240 - 50 * index);
    errors.insert("unreachable".to_string(), 900);
    let requests = 440_000 + index;
    let failed: u64 = errors.values().sum();
    let ok = requests - failed;
    let mut overrides = indexmap::IndexMap::new();
    overrides.insert("lb.strategy".to_string(), name.to_string());
    let mut components = BTreeMap::new();
    let mut lb = BTreeMap::new();
    lb.insert("retries".to_string(), 312.0 + index as f64);
    components.insert("lb".to_string(), lb);
    VariantResult {
        name: name.to_string(),
        overrides,
        digest: format!("abc{index}"),
        events: 3_000_000,
        requests,
        ok,
        errors,
        availability: ok as f64 / requests as f64,
        throughput_rps: ok as f64 / 55.0,
        latency_ms: LatencySummary {
            mean: 1.1,
            p50: 0.81 + 0.01 * index as f64,
            p90: 2.2,
            p99: 4.1 + 10.0 * sensitivity,
            p999: 38.25 * sensitivity,
            max: 212.0,
        },
        latency_cdf: cdf(sensitivity),
        windows,
        servers: (0..4).map(|r| server(r, index)).collect(),
        clients_down_s: 0.0,
        classes: Vec::new(),
        unfinished: 0,
        components,
        series: BTreeMap::new(),
        state_changes: BTreeMap::new(),
        recovery: Vec::new(),
        verdicts: BTreeMap::new(),
        theory: None,
        traces: None,
    }
}

fn window(second: u64, index: u64, sensitivity: f64) -> WindowResult {
    let t = second as f64;
    let slow = (20.0..35.0).contains(&t);
    let crashed = (40.0..45.0).contains(&t);
    let partitioned = (50.0..53.0).contains(&t);
    if partitioned && index == 2 {
        return WindowResult {
            start_s: t,
            ok: 0,
            errors: 800,
            availability: Some(0.0),
            throughput_rps: 0.0,
            p50_ms: None,
            p99_ms: None,
        };
    }
    let errors = if crashed { 400 - 100 * index } else { index };
    let ok = 8000 - errors - if slow { 300 } else { 0 };
    let wobble = ((second * 7 + index * 3) % 5) as f64 * 0.05;
    let p99 = 3.0 + wobble + if slow { 40.0 * sensitivity } else { 0.0 };
    WindowResult {
        start_s: t,
        ok,
        errors,
        availability: Some(ok as f64 / (ok + errors) as f64),
        throughput_rps: ok as f64,
        p50_ms: Some(0.8 + wobble / 5.0 + if slow { 0.5 * sensitivity } else { 0.0 }),
        p99_ms: Some(p99),
    }
}

/// A lognormal-looking CDF from 0.1 ms to some hundreds of ms.
fn cdf(sensitivity: f64) -> Vec<[f64; 2]> {
    let mut points = Vec::new();
    let mut latency = 0.1;
    for k in 0..60 {
        let fraction = 1.0 - 1.0 / (1.0 + (k as f64 / 12.0).powi(4) * 40.0 / sensitivity);
        points.push([latency, fraction]);
        latency *= 1.13;
    }
    points
}

fn server(replica: u64, index: u64) -> ServerResult {
    ServerResult {
        name: format!("app-{replica}"),
        utilisation: 0.5 + 0.07 * replica as f64 + 0.01 * index as f64,
        mean_queue_len: 0.25 * replica as f64,
        served: 110_000 - replica * 10,
        rejected: replica * index,
    }
}

fn file<'a>(files: &'a [ReportFile], name: &str) -> &'a [u8] {
    files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, bytes)| bytes.as_slice())
        .unwrap_or_else(|| panic!("{name} missing"))
}

fn text(files: &[ReportFile], name: &str) -> String {
    String::from_utf8(file(files, name).to_vec()).expect("utf-8")
}

#[test]
fn renders_all_files_in_order() {
    let files = render(&fixture()).expect("renders");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, FILES);
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let results = fixture();
    assert_eq!(
        render(&results).expect("1st"),
        render(&results).expect("2nd")
    );
}

#[test]
fn svgs_have_labels_legend_and_fault_shading() {
    let files = render(&fixture()).expect("renders");
    let expectations = [
        (
            "latency_cdf.svg",
            ["latency (ms)", "percentile (log scale of 1 − q)"],
        ),
        ("latency_over_time.svg", ["time (s)", "latency (ms)"]),
        ("availability.svg", ["time (s)", "availability (%)"]),
        ("throughput.svg", ["time (s)", "throughput (req/s)"]),
    ];
    for (name, labels) in expectations {
        let svg = text(&files, name);
        for expected in labels
            .iter()
            .chain(&["round-robin", "least-connections", "p2c"])
        {
            assert!(svg.contains(expected), "{name} lacks {expected:?}");
        }
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{name}");
        if name != "latency_cdf.svg" {
            assert!(
                svg.contains(r##"opacity="0.13" fill="#D62728""##),
                "{name}: no crash shading"
            );
            assert!(
                svg.contains(r##"opacity="0.13" fill="#E07B00""##),
                "{name}: no slowdown shading in its own colour"
            );
            assert!(svg.contains("crash app-3"), "{name}: no fault label");
            assert!(
                svg.contains(">\nwarm-up\n<") || svg.contains("warm-up"),
                "{name}"
            );
        }
    }
}

#[test]
fn cdf_spanning_three_decades_uses_a_log_axis() {
    let svg = plot::to_svg(&charts::latency_cdf(&fixture())).expect("draws");
    for tick in [">\n0.1\n<", ">\n1\n<", ">\n10\n<", ">\n100\n<"] {
        assert!(svg.contains(tick), "no tick {tick:?}");
    }
}

#[test]
fn percentile_plot_gives_each_nine_the_same_height() {
    let mut results = fixture();
    let cdf = vec![
        [1.0, 0.0],
        [2.0, 0.9],
        [3.0, 0.99],
        [4.0, 0.999],
        [5.0, 1.0],
        [6.0, f64::NAN],
    ];
    results.variants[0].latency_cdf = cdf.clone();
    results.variants.truncate(1);
    let plot = charts::latency_cdf(&results);
    let heights: Vec<f64> = plot.panels[0].lines[0].segments[0]
        .iter()
        .map(|p| p.1)
        .collect();
    assert_eq!(heights.len(), 5, "the NaN fraction is dropped: {heights:?}");
    for (nines, height) in heights[..4].iter().enumerate() {
        assert!((height - nines as f64).abs() < 1e-9, "{heights:?}");
    }
    // The maximum (fraction 1.0) sits on the top edge, not beyond it.
    assert_eq!(heights[4], plot.y.hi);
    let svg = plot::to_svg(&plot).expect("draws");
    for tick in ["0%", "90%", "99%", "99.9%"] {
        assert!(svg.contains(&format!(">\n{tick}\n<")), "no tick {tick:?}");
    }
    assert!(!svg.contains("99.99%"), "the data stops at 99.9%");
}

#[test]
fn percentile_axis_reaches_as_far_as_the_deepest_tail() {
    // The fixture's deepest tail is past 99.99%, whichever variant it belongs to.
    let plot = charts::latency_cdf(&fixture());
    let labels: Vec<&str> = plot.y.ticks.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    let svg = plot::to_svg(&plot).expect("draws");
    assert!(svg.contains("Latency by percentile"));
}

#[test]
fn pngs_decode_and_are_not_blank() {
    let files = render(&fixture()).expect("renders");
    for name in FILES.iter().filter(|n| n.ends_with(".png")) {
        let png = file(&files, name);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}");
        let pixmap = Pixmap::decode_png(png).expect("decodes");
        assert_eq!((pixmap.width(), pixmap.height()), (1920, 1080), "{name}");
        let coloured = pixmap
            .pixels()
            .iter()
            .filter(|p| p.red() != p.green() || p.green() != p.blue())
            .count();
        let dark = pixmap.pixels().iter().filter(|p| p.red() < 80).count();
        assert!(coloured > 5_000, "{name}: {coloured} coloured pixels");
        assert!(dark > 5_000, "{name}: {dark} dark pixels (text, axes)");
    }
}

#[test]
fn summary_has_the_tables_and_links() {
    let md = text(&render(&fixture()).expect("renders"), "summary.md");
    assert!(md.starts_with("# Load balancer strategies under a slow replica\n"));
    assert!(md.contains("| variant | requests | availability | throughput (req/s) |"));
    assert!(md.contains("| rejected | timeout | unreachable |"));
    assert!(md.contains("| round-robin | 440,000 | 99.741% | 7,979.3 |"));
    assert!(md.contains("![Latency by percentile](latency_cdf.svg)"));
    assert!(md.contains("| app-3 | 72.00% | 0.75 | 109,970 | 3 |"));
    assert!(md.contains("| crash app-3 | 40.000 | 45.000 |"));
    assert!(md.contains("Seed: 7"));
}

#[test]
fn verdicts_show_what_was_checked_violated_and_left_unchecked() {
    let mut r = fixture();
    assert!(!text(&render(&r).expect("renders"), "summary.md").contains("## Checks"));
    r.variants[0].verdicts.insert(
        "history".to_string(),
        vec![
            crate::results::Verdict::new("linearizable", "keys", 48, 0, 2),
            crate::results::Verdict::new("no stale reads", "reads", 2585, 0, 0),
        ],
    );
    r.variants[1].verdicts.insert(
        "history".to_string(),
        vec![crate::results::Verdict::new(
            "linearizable",
            "keys",
            20,
            3,
            0,
        )],
    );
    let files = render(&r).expect("renders");
    let md = text(&files, "summary.md");
    assert!(md.contains("## Checks"));
    assert!(md.contains("| round-robin | history | linearizable | 48 keys | 0 | 2 | undecided |"));
    assert!(
        md.contains("| round-robin | history | no stale reads | 2,585 reads | 0 | 0 | holds |")
    );
    assert!(
        md.contains("| least-connections | history | linearizable | 20 keys | 3 | 0 | violated |")
    );
    let html = text(&files, "index.html");
    assert!(
        html.contains("<h2 id=\"checks\">Checks</h2>") && html.contains("<a href=\"#checks\">")
    );
    assert!(html.contains("<td>undecided</td>"));
}

#[test]
fn html_is_self_contained() {
    let html = text(&render(&fixture()).expect("renders"), "index.html");
    assert_eq!(html.matches("<svg ").count(), 4);
    for banned in ["<script", "src=", "<link", "@import", "url("] {
        assert!(!html.contains(banned), "index.html contains {banned}");
    }
    // Links only within the page: the table of contents.
    assert_eq!(
        html.matches("href=\"").count(),
        html.matches("href=\"#").count()
    );
    assert!(html.contains("<a href=\"#latency_cdf\">"));
    assert!(html.contains("<td class=\"num\">99.741%</td>"));
}

#[test]
fn terminal_table_lines_up() {
    let table = terminal_table(&fixture());
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5);
    let width = lines[0].chars().count();
    assert!(lines.iter().all(|l| l.chars().count() == width), "{table}");
    assert!(lines[2].starts_with("round-robin  "));
}

fn empty() -> Results {
    let mut results = fixture();
    results.variants.clear();
    results.faults.clear();
    results
}

#[test]
fn no_variants_still_renders() {
    let files = render(&empty()).expect("renders");
    assert_eq!(files.len(), 10);
    assert_eq!(terminal_table(&empty()).lines().count(), 2);
}

#[test]
fn empty_and_missing_data_does_not_panic() {
    let mut results = fixture();
    results.timing = Timing {
        duration_s: 0.0,
        warmup_s: 0.0,
        window_s: 0.0,
    };
    results.variants[0].windows.clear();
    results.variants[0].latency_cdf.clear();
    for w in &mut results.variants[1].windows {
        (w.p50_ms, w.p99_ms, w.availability) = (None, None, None);
    }
    results.variants[2].windows.truncate(1);
    results.variants[2].latency_cdf.truncate(1);
    render(&results).expect("renders");
}

#[test]
fn identical_values_and_non_finite_numbers_do_not_panic() {
    let mut results = fixture();
    results.faults.push(fault("instant", 10.0, 10.0));
    results.faults.push(fault("after the end", 100.0, 120.0));
    results.faults.push(fault("nan", f64::NAN, f64::INFINITY));
    for variant in &mut results.variants {
        variant.availability = f64::NAN;
        variant.latency_ms.p99 = f64::INFINITY;
        variant.latency_cdf = vec![[5.0, 0.5], [5.0, 0.5], [f64::NAN, 1.0]];
        for w in &mut variant.windows {
            w.throughput_rps = 100.0;
            w.p50_ms = Some(5.0);
            w.p99_ms = Some(f64::NAN);
            w.availability = Some(1.0);
        }
    }
    results.variants[0].windows[3].throughput_rps = f64::NAN;
    results.timing.duration_s = f64::INFINITY;
    let files = render(&results).expect("renders");
    for (name, bytes) in files.iter().filter(|(n, _)| n.ends_with(".svg")) {
        let svg = String::from_utf8_lossy(bytes);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{name}");
    }
    let md = text(&files, "summary.md");
    assert!(md.contains("| - |"), "non-finite numbers print as -");
}

#[test]
fn many_variants_become_small_multiples_with_distinct_looks() {
    let mut results = fixture();
    let base = results.variants[0].clone();
    results.variants = (0..12)
        .map(|i| VariantResult {
            name: format!("variant number {i}"),
            ..base.clone()
        })
        .collect();
    let plot = charts::throughput(&results);
    assert_eq!(
        plot.panels.len(),
        12,
        "a panel per variant beyond six lines"
    );
    assert!(plot.panels.iter().all(|p| p.lines.len() == 1));
    let looks: Vec<_> = plot.panels.iter().map(|p| p.lines[0].look).collect();
    for (i, a) in looks.iter().enumerate() {
        assert!(
            looks[i + 1..].iter().all(|b| b != a),
            "variant {i} shares a look"
        );
    }
    // Identical data: every later variant's legend entry names the first.
    assert_eq!(
        plot.legend[11].label,
        "variant number 11 (= variant number 0)"
    );
    let files = render(&results).expect("renders");
    assert!(text(&files, "throughput.svg").contains("variant number 11"));
}

#[test]
fn window_values_are_steps_over_their_whole_window() {
    let results = fixture();
    let plot = charts::availability(&results);
    let first = &plot.panels[0].lines[0].segments[0];
    // Window 0 covers [0, 1): a step from 0 to 1 at one height, then window 1 from 1 to 2.
    assert_eq!((first[0].0, first[1].0, first[2].0), (0.0, 1.0, 1.0));
    assert_eq!(first[0].1, first[1].1);
    let latency = charts::latency_over_time(&results);
    let p2c = &latency.panels[0].lines[2].segments;
    // p2c completes nothing during the partition from 50 s: its line breaks exactly there.
    assert_eq!(p2c[0].last().expect("points").0, 50.0);
    assert_eq!(p2c[1][0].0, 53.0);
}

#[test]
fn a_fault_repeated_three_times_is_labelled_once() {
    let mut results = fixture();
    results.faults = vec![
        fault("partition a | b", 20.0, 21.0),
        fault("partition a | b", 23.0, 24.0),
        fault("partition a | b", 26.0, 27.0),
    ];
    let plot = charts::throughput(&results);
    let labels: Vec<&str> = plot.shades.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(
        labels,
        ["warm-up", "partition a | b ×3 at 20, 23, 26 s", "", ""]
    );
    let svg = text(&render(&results).expect("renders"), "throughput.svg");
    assert_eq!(svg.matches("partition a | b").count(), 1);
}

#[test]
#[ignore = "writes the fixture's report to $REPORT_DUMP_DIR for looking at"]
fn dump() {
    let dir = std::env::var("REPORT_DUMP_DIR").expect("set REPORT_DUMP_DIR");
    let files = render(&fixture()).expect("renders");
    crate::output::write_files_atomically(std::path::Path::new(&dir), &files).expect("writes");
}

#[test]
fn component_series_get_a_plot_each_and_state_changes_a_table() {
    use crate::results::{EventRecord, SeriesResult};
    let mut results = fixture();
    for (i, v) in results.variants.iter_mut().enumerate() {
        let values = (0..60)
            .map(|s| (s != 7).then_some(0.5 + 0.01 * (s as f64) + i as f64 * 0.1))
            .collect();
        v.series.insert(
            "cache".to_string(),
            vec![SeriesResult {
                name: "hit_ratio".to_string(),
                title: "Cache hit ratio".to_string(),
                unit: "fraction of reads".to_string(),
                values,
                label: None,
                states: None,
            }],
        );
        v.state_changes.insert(
            "breaker".to_string(),
            vec![
                EventRecord {
                    at_s: 21.5,
                    what: "closed -> open".to_string(),
                },
                EventRecord {
                    at_s: 26.5,
                    what: "open -> half-open".to_string(),
                },
            ],
        );
    }
    let files = render(&results).expect("renders");
    let svg = text(&files, "series-hit_ratio.svg");
    for expected in [
        "Cache hit ratio",
        "% of reads",
        "time (s)",
        "p2c",
        "crash app-3",
    ] {
        assert!(svg.contains(expected), "series plot lacks {expected:?}");
    }
    assert!(file(&files, "series-hit_ratio.png").starts_with(b"\x89PNG"));
    let summary = text(&files, "summary.md");
    assert!(summary.contains("![Cache hit ratio](series-hit_ratio.svg)"));
    assert!(summary.contains("## State changes"));
    assert!(
        summary.contains(r"| 21.500 | breaker | closed -\> open |"),
        "{summary}"
    );
    let html = text(&files, "index.html");
    assert!(html.contains("aria-label=\"Cache hit ratio\""));
    assert!(html.contains("open -&gt; half-open"));
}

/// Every SVG of `files` checked for colliding text and text over data lines.
fn collisions_in(report: &str, files: &[ReportFile]) -> Vec<String> {
    let colours: Vec<(u8, u8, u8)> = plot::PALETTE.iter().map(|c| (c.0, c.1, c.2)).collect();
    files
        .iter()
        .filter(|(name, _)| name.ends_with(".svg"))
        .flat_map(|(name, bytes)| {
            let svg = String::from_utf8_lossy(bytes);
            super::collisions::problems(&svg, &colours)
                .into_iter()
                .map(move |p| format!("{report}/{name}: {p}"))
        })
        .collect()
}

#[test]
fn committed_reports_have_no_text_collisions() {
    // Rendered afresh from each committed results.json, so this checks the code, not files.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports");
    let mut reports: Vec<_> = std::fs::read_dir(&dir)
        .expect("reports/")
        .map(|e| e.expect("entry").path())
        .collect();
    reports.sort();
    let mut problems = Vec::new();
    for report in &reports {
        let json = std::fs::read_to_string(report.join("results.json")).expect("results.json");
        let name = report
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let files = match serde_json::from_str::<Results>(&json) {
            Ok(results) => render(&results).expect("renders"),
            Err(_) => {
                let sweep = serde_json::from_str(&json).expect("a run's or a sweep's results");
                sweep::render(&sweep).expect("renders")
            }
        };
        problems.extend(collisions_in(&name, &files));
    }
    assert!(reports.len() >= 14, "{} reports", reports.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_collision_check_sees_overlapping_text_and_text_over_data() {
    let svg = r##"<svg width="200" height="100" xmlns="http://www.w3.org/2000/svg">
        <polyline fill="none" stroke="#0072B2" points="0,50 200,50"/>
        <text x="10" y="20" font-family="sans-serif" font-size="16">99.99%</text>
        <text x="30" y="24" font-family="sans-serif" font-size="16">percentile</text>
        <text x="60" y="56" font-family="sans-serif" font-size="16">legend</text>
        </svg>"##;
    let found = super::collisions::problems(svg, &[(0x00, 0x72, 0xB2)]);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("overlaps") && found[1].contains("covers data"));
    let clean = r##"<svg width="200" height="100" xmlns="http://www.w3.org/2000/svg">
        <text x="10" y="20" font-family="sans-serif" font-size="16">a</text>
        <text x="10" y="60" font-family="sans-serif" font-size="16">b</text></svg>"##;
    assert!(super::collisions::problems(clean, &[]).is_empty());
}

#[test]
fn several_clients_get_a_row_each_in_the_summary() {
    let mut r = fixture();
    r.scenario.resolved = serde_json::json!({"nodes": {
        "browse": {"Client": {"target": "api"}},
        "checkout": {"Client": {"target": "api"}},
        "api": {"Server": {}},
    }});
    let own = |ok: f64, failed: f64| {
        BTreeMap::from([
            ("ok".to_string(), ok),
            ("failed".to_string(), failed),
            ("availability".to_string(), ok / (ok + failed)),
        ])
    };
    let v = &mut r.variants[0];
    v.components.insert("browse".into(), own(7_890.0, 2_110.0));
    v.components.insert("checkout".into(), own(1_000.0, 0.0));
    // A server's counters of the same names are not a client's.
    v.components.insert("api".into(), own(5.0, 5.0));
    let md = summary::markdown(&r);
    assert!(md.contains("### By client\n"));
    assert!(md.contains("| round-robin | browse | 10,000 | 2,110 | 78.900% |"));
    assert!(md.contains("| round-robin | checkout | 1,000 | 0 | 100.000% |"));
    assert!(!md.contains("| round-robin | api |"));
    assert!(!summary::markdown(&fixture()).contains("By client"));
}

#[test]
fn an_autoscaled_pool_gets_its_replicas_under_the_load_and_its_cost() {
    let mut r = fixture();
    // Variant 1 runs 2 replicas, then 6 from 30 s; the last window is cut by the run's end
    // (59.5 s), so it counts half. Variant 0 has no autoscaler: no row.
    r.timing.duration_s = 59.5;
    let values: Vec<Option<f64>> = (0..60)
        .map(|s| Some(if s < 30 { 2.0 } else { 6.0 }))
        .collect();
    let series = crate::results::SeriesResult {
        name: "replicas_active".to_string(),
        title: "Replicas".to_string(),
        unit: "replicas".to_string(),
        values,
        label: None,
        states: None,
    };
    r.variants[1]
        .series
        .insert("scaler".to_string(), vec![series]);
    let table = scaling::cost_table(&r);
    assert_eq!(table.rows.len(), 1, "{table:?}");
    // 30 × 2 + 29 × 6 + 0.5 × 6 = 237 replica-seconds.
    assert_eq!(table.rows[0][0], "least-connections");
    assert_eq!(table.rows[0][5], "237");
    assert_eq!(table.rows[0][4], "6");
    let files = render(&r).expect("renders");
    let md = text(&files, "summary.md");
    assert!(md.contains("### Replicas and cost"), "{md}");
    let svg = text(&files, "replicas_and_load.svg");
    assert!(svg.contains("Offered load"), "the load panel is drawn");
    assert!(
        svg.contains("least-connections"),
        "the pool's variant is in the legend"
    );
}
