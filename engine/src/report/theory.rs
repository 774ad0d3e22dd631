//! Theory beside simulation: the analytic model's figures next to the simulated ones, with how
//! far each can be trusted; and `archsim analyze`, the model alone.
//!
//! ```text
//!  variant  measure              simulated   theory   accuracy
//!  p2c      mean latency (ms)        3.712    3.421   approximate [1]
//!  p2c      app utilisation         70.12%   70.00%   exact (M/M/2)
//!  [1] power of two choices routes by queue length, which independent queues ignore ...
//! ```
//! Reasons are footnotes, numbered once per report, so a long reason does not widen the table.

use super::blocks::Block;
use super::format;
use super::table::{Align, Table};
use crate::results::{Accuracy, Estimate, Results, StationTheory, Theory, VariantResult};

/// The accuracy cell of a fault-free figure in a variant with faults.
pub const FAULTS_ACTIVE: &str = "faults active: theory is fault-free";

/// How the availability and throughput of a variant with faults are modelled.
const OVER_FAULTS: &str = "over the fault timeline";

/// Footnotes: reasons numbered in order of first use.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    /// `exact`, `approximate [n]` or `no formula [n]`, numbering `why` if needed.
    fn cell(&mut self, accuracy: Accuracy, why: &str, model: Option<&str>) -> String {
        let base = match accuracy {
            Accuracy::Exact => "exact",
            Accuracy::Approximate => "approximate",
            Accuracy::NotApplicable => "no formula",
        };
        self.labelled(base, why, model)
    }

    /// A figure of the fault-free model beside a simulation with faults: the gap is the
    /// faults' effect, so the cell says so rather than reading as a model error.
    fn fault_free(&mut self, accuracy: Accuracy, why: &str, model: Option<&str>) -> String {
        match accuracy {
            Accuracy::NotApplicable => self.cell(accuracy, why, model),
            _ => self.labelled(FAULTS_ACTIVE, why, model),
        }
    }

    fn labelled(&mut self, base: &str, why: &str, model: Option<&str>) -> String {
        let base = match model {
            Some(m) => format!("{base} ({m})"),
            None => base.to_string(),
        };
        if why.is_empty() {
            return base;
        }
        let n = match self.0.iter().position(|w| w == why) {
            Some(i) => i + 1,
            None => {
                self.0.push(why.to_string());
                self.0.len()
            }
        };
        format!("{base} [{n}]")
    }

    fn lines(&self) -> Vec<String> {
        self.0
            .iter()
            .enumerate()
            .map(|(i, w)| format!("[{}] {w}", i + 1))
            .collect()
    }
}

fn comparison_table(results: &Results, notes: &mut Notes) -> Table {
    let mut table = Table {
        columns: [
            ("variant", Align::Left),
            ("measure", Align::Left),
            ("simulated", Align::Right),
            ("theory", Align::Right),
            ("accuracy", Align::Left),
        ]
        .iter()
        .map(|(h, a)| (h.to_string(), *a))
        .collect(),
        rows: Vec::new(),
    };
    for v in &results.variants {
        let Some(t) = &v.theory else {
            continue;
        };
        for row in variant_rows(v, t, notes) {
            let mut cells = vec![v.name.clone()];
            cells.extend(row);
            table.rows.push(cells);
        }
    }
    table
}

/// The fault-timeline label belongs to a figure the model gave, not to "no formula".
fn with_value<'a>(e: &Estimate, label: Option<&'a str>) -> Option<&'a str> {
    label.filter(|_| e.value.is_some())
}

fn estimate_cell(e: &Estimate, show: impl Fn(f64) -> String) -> String {
    e.value.map_or(format::MISSING.to_string(), show)
}

/// measure, simulated, theory, accuracy: the headline figures, then each pool's.
/// In a variant with faults, latency and the stations' figures are labelled as the fault-free
/// model, availability and throughput as averaged over the fault timeline.
fn variant_rows(v: &VariantResult, t: &Theory, notes: &mut Notes) -> Vec<Vec<String>> {
    let faults = t.under_faults();
    let over = faults.then_some(OVER_FAULTS);
    let latency = &t.latency_mean_ms;
    let mut rows = vec![
        vec![
            "mean latency (ms)".to_string(),
            format::ms(v.latency_ms.mean),
            estimate_cell(latency, format::ms),
            if faults {
                notes.fault_free(latency.accuracy, &latency.why, None)
            } else {
                notes.cell(latency.accuracy, &latency.why, None)
            },
        ],
        vec![
            "availability".to_string(),
            format::percent(v.availability, 3),
            estimate_cell(&t.availability, |a| format::percent(a, 3)),
            notes.cell(
                t.availability.accuracy,
                &t.availability.why,
                with_value(&t.availability, over),
            ),
        ],
        vec![
            "throughput (req/s)".to_string(),
            format::grouped(v.throughput_rps, 1),
            estimate_cell(&t.throughput_rps, |x| format::grouped(x, 1)),
            notes.cell(
                t.throughput_rps.accuracy,
                &t.throughput_rps.why,
                with_value(&t.throughput_rps, over),
            ),
        ],
    ];
    for (group, stations) in pools(&t.stations) {
        rows.extend(pool_rows(v, &group, &stations, faults, notes));
    }
    for d in &t.deploys {
        // The balancers' count of the new version's failures, over the requests issued.
        let failed = v
            .components
            .get(&d.name)
            .and_then(|c| c.get("new_version_failed"))
            .copied()
            .unwrap_or(0.0);
        let simulated = if v.requests > 0 {
            failed / v.requests as f64
        } else {
            f64::NAN
        };
        let e = &d.failed_fraction;
        rows.push(vec![
            format!("{} failed on the new version (of requests)", d.name),
            format::percent(simulated, 3),
            estimate_cell(e, |x| format::percent(x, 3)),
            notes.cell(e.accuracy, &e.why, None),
        ]);
    }
    rows
}

/// Stations grouped by pool, in order.
fn pools(stations: &[StationTheory]) -> Vec<(String, Vec<&StationTheory>)> {
    let mut out: Vec<(String, Vec<&StationTheory>)> = Vec::new();
    for s in stations {
        match out.iter_mut().find(|(g, _)| *g == s.group) {
            Some((_, list)) => list.push(s),
            None => out.push((s.group.clone(), vec![s])),
        }
    }
    out
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

/// A pool's utilisation, wait and loss (means over its replicas), simulated and by theory.
fn pool_rows(
    v: &VariantResult,
    group: &str,
    stations: &[&StationTheory],
    faults: bool,
    notes: &mut Notes,
) -> Vec<Vec<String>> {
    let sims: Vec<_> = stations
        .iter()
        .filter_map(|s| v.servers.iter().find(|r| r.name == s.name))
        .collect();
    let first = stations[0];
    let model = Some(first.model.as_str());
    let label = |what: &str| {
        if stations.len() > 1 {
            format!("{group} {what}, mean of {}", stations.len())
        } else {
            format!("{group} {what}")
        }
    };
    let util_why = if first.utilisation_accuracy == Accuracy::Exact {
        ""
    } else {
        first.why.as_str()
    };
    let unknown = first.accuracy == Accuracy::NotApplicable;
    let theory = |x: f64| if unknown { f64::NAN } else { x };
    let mut accuracy = |accuracy: Accuracy, why: &str| {
        if faults {
            notes.fault_free(accuracy, why, model)
        } else {
            notes.cell(accuracy, why, model)
        }
    };
    let mut rows = vec![vec![
        label("utilisation"),
        format::percent(mean(sims.iter().map(|s| s.utilisation)), 2),
        format::percent(theory(mean(stations.iter().map(|s| s.utilisation))), 2),
        accuracy(first.utilisation_accuracy, util_why),
    ]];
    // Little's law, Wq = Lq / λ, with the admitted rate from the busy workers over the same
    // window (λ = U c / E[S]).
    let sim_wait = mean(sims.iter().map(|s| {
        let rate = s.utilisation * f64::from(first.servers) / first.service_ms;
        if rate > 0.0 {
            s.mean_queue_len / rate
        } else {
            0.0
        }
    }));
    let theory_wait = if unknown || stations.iter().any(|s| s.wait_ms.is_none()) {
        f64::NAN
    } else {
        mean(stations.iter().filter_map(|s| s.wait_ms))
    };
    rows.push(vec![
        label("wait in queue (ms)"),
        format::ms(sim_wait),
        format::ms(theory_wait),
        accuracy(first.accuracy, &first.why),
    ]);
    if stations.iter().any(|s| s.loss > 1e-6) {
        let sim_loss = mean(sims.iter().map(|s| {
            let total = (s.served + s.rejected) as f64;
            if total > 0.0 {
                s.rejected as f64 / total
            } else {
                0.0
            }
        }));
        rows.push(vec![
            label("turned away"),
            format::percent(sim_loss, 3),
            format::percent(theory(mean(stations.iter().map(|s| s.loss))), 3),
            accuracy(first.accuracy, &first.why),
        ]);
    }
    rows
}

/// The section's heading, when some variant has an analytic model.
pub fn heading(results: &Results) -> Option<&'static str> {
    let any = results.variants.iter().any(|v| v.theory.is_some());
    any.then_some("Theory beside simulation")
}

fn any_faults(results: &Results) -> bool {
    results
        .variants
        .iter()
        .any(|v| v.theory.as_ref().is_some_and(Theory::under_faults))
}

/// The section of `summary.md` and `index.html`: comparison, footnotes, model notes.
pub fn blocks(results: &Results) -> Vec<Block> {
    let Some(heading) = heading(results) else {
        return Vec::new();
    };
    let mut notes = Notes::default();
    let table = comparison_table(results, &mut notes);
    let mut out = vec![
        Block::Heading(2, heading.to_string()),
        Block::Para(THEORY_NOTE.to_string()),
    ];
    if any_faults(results) {
        out.push(Block::Para(FAULTS_NOTE.to_string()));
    }
    out.push(Block::Table(table));
    if !notes.0.is_empty() {
        out.push(Block::List(notes.lines()));
    }
    for v in &results.variants {
        let Some(t) = &v.theory else {
            continue;
        };
        if !t.notes.is_empty() {
            out.push(Block::Heading(3, format!("Model notes: {}", v.name)));
            out.push(Block::List(t.notes.clone()));
        }
    }
    out
}

/// What the theory column is; shared by the report and `archsim analyze`.
pub const THEORY_NOTE: &str = "The theory column comes from the scenario alone, without simulating: \
flows through the call graph, a queueing formula per station, latency as a sum over hops, \
availability by series, parallel and quorum formulas over the fault timeline.\n\
Exact means a closed form whose assumptions all hold, so the simulation should agree within its \
sampling error; approximate means an assumption does not hold, and the note says which.";

/// What the theory column means where a variant has faults.
pub const FAULTS_NOTE: &str = "In a variant with faults, latency and the stations' figures are \
the fault-free model, marked \"faults active: theory is fault-free\": a gap there is what the \
faults cost, not a model error.\n\
Availability and throughput are averaged over the fault timeline (series, parallel and quorum \
formulas in each interval between fault boundaries).";

/// The table printed after a run: theory beside simulation, with footnotes.
pub fn terminal(results: &Results) -> String {
    if results.variants.iter().all(|v| v.theory.is_none()) {
        return String::new();
    }
    let mut notes = Notes::default();
    let mut out =
        String::from("\ntheory beside simulation (`archsim analyze` prints the model alone)\n");
    out.push_str(&comparison_table(results, &mut notes).to_text());
    for line in notes.lines() {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `archsim analyze`: the analytic model of each variant, in milliseconds.
pub fn analysis_text(scenario: &str, variants: &[(String, Theory)]) -> String {
    let mut out = format!("analytic model of \"{scenario}\" (no simulation)\n");
    for (name, t) in variants {
        out.push_str(&format!("\nvariant {name}\n"));
        let mut notes = Notes::default();
        let headline = |label: &str, e: &Estimate, show: &dyn Fn(f64) -> String, n: &mut Notes| {
            format!(
                "  {label:<20} {:>12}  {}\n",
                estimate_cell(e, show),
                n.cell(e.accuracy, &e.why, None)
            )
        };
        out.push_str(&headline(
            "mean latency (ms)",
            &t.latency_mean_ms,
            &format::ms,
            &mut notes,
        ));
        out.push_str(&headline(
            "availability",
            &t.availability,
            &|a| format::percent(a, 3),
            &mut notes,
        ));
        out.push_str(&headline(
            "throughput (req/s)",
            &t.throughput_rps,
            &|x| format::grouped(x, 1),
            &mut notes,
        ));
        if !t.stations.is_empty() {
            out.push('\n');
            out.push_str(&indent(&station_table(&t.stations, &mut notes).to_text()));
        }
        if !t.hops.is_empty() {
            out.push('\n');
            out.push_str(&indent(&hop_table(t).to_text()));
        }
        for line in notes.lines().iter().chain(&t.notes) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// One row per station: its formula and figures.
fn station_table(stations: &[StationTheory], notes: &mut Notes) -> Table {
    let mut table = Table {
        columns: [
            ("station", Align::Left),
            ("model", Align::Left),
            ("arrivals/s", Align::Right),
            ("workers", Align::Right),
            ("service ms", Align::Right),
            ("load ρ", Align::Right),
            ("utilisation", Align::Right),
            ("wait ms", Align::Right),
            ("turned away", Align::Right),
            ("accuracy", Align::Left),
        ]
        .iter()
        .map(|(h, a)| (h.to_string(), *a))
        .collect(),
        rows: Vec::new(),
    };
    for s in stations {
        let unknown = s.accuracy == Accuracy::NotApplicable;
        let num = |text: String| {
            if unknown {
                format::MISSING.to_string()
            } else {
                text
            }
        };
        table.rows.push(vec![
            s.name.clone(),
            s.model.clone(),
            num(format::grouped(s.arrival_rps, 1)),
            s.servers.to_string(),
            format::ms(s.service_ms),
            num(format::fixed(s.offered_load, 3)),
            num(format::percent(s.utilisation, 2)),
            num(s.wait_ms.map_or("unbounded".to_string(), format::ms)),
            num(format::percent(s.loss, 3)),
            notes.cell(s.accuracy, &s.why, None),
        ]);
    }
    table
}

/// Where the mean latency goes: one row per hop, and the total.
fn hop_table(t: &Theory) -> Table {
    let mut table = Table {
        columns: [
            ("hop", Align::Left),
            ("visits", Align::Right),
            ("network ms", Align::Right),
            ("wait ms", Align::Right),
            ("service ms", Align::Right),
            ("total ms", Align::Right),
        ]
        .iter()
        .map(|(h, a)| (h.to_string(), *a))
        .collect(),
        rows: Vec::new(),
    };
    let mut sum = 0.0;
    for h in &t.hops {
        let total = h.network_ms + h.wait_ms + h.service_ms;
        sum += total;
        table.rows.push(vec![
            h.hop.clone(),
            format::fixed(h.visits, 3),
            format::ms(h.network_ms),
            format::ms(h.wait_ms),
            format::ms(h.service_ms),
            format::ms(total),
        ]);
    }
    table.rows.push(vec![
        "sum over hops".to_string(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        format::ms(sum),
    ]);
    table
}
