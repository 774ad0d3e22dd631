//! The report's tables, built once as plain cells and written as Markdown, HTML or text.
//!
//! Keeping the content apart from the syntax means `summary.md`, `index.html` and the terminal
//! show the same numbers with the same formatting: they cannot drift apart.

use super::format::{self, html_escape, markdown_cell};
use crate::results::{
    FaultWindow, Results, ServerResult, VariantResult, fault_groups, recovery_groups,
};
use std::collections::BTreeSet;

/// How a column's cells line up: names left, numbers right (so digits align).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text columns.
    Left,
    /// Number columns.
    Right,
}

/// A table of already formatted cells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Column headings with their alignment.
    pub columns: Vec<(String, Align)>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(columns: &[(&str, Align)]) -> Self {
        let columns = columns.iter().map(|(h, a)| (h.to_string(), *a)).collect();
        Table {
            columns,
            rows: Vec::new(),
        }
    }

    /// A GitHub-flavoured Markdown table, ending with a newline.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let headings: Vec<String> = self.columns.iter().map(|(h, _)| markdown_cell(h)).collect();
        out.push_str(&markdown_row(&headings));
        let rules: Vec<String> = self
            .columns
            .iter()
            .map(|(_, align)| match align {
                Align::Left => ":---".to_string(),
                Align::Right => "---:".to_string(),
            })
            .collect();
        out.push_str(&markdown_row(&rules));
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|c| markdown_cell(c)).collect();
            out.push_str(&markdown_row(&cells));
        }
        out
    }

    /// An HTML `<table>`, numbers right-aligned through the `num` class.
    pub fn to_html(&self) -> String {
        let mut out = String::from("<table>\n<thead><tr>");
        for (heading, align) in &self.columns {
            out.push_str(&format!(
                "<th{}>{}</th>",
                class(*align),
                html_escape(heading)
            ));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (cell, (_, align)) in row.iter().zip(&self.columns) {
                out.push_str(&format!("<td{}>{}</td>", class(*align), html_escape(cell)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }

    /// Plain text with columns padded to line up in a monospace terminal.
    pub fn to_text(&self) -> String {
        let widths = self.column_widths();
        let mut out = String::new();
        let headings: Vec<&str> = self.columns.iter().map(|(h, _)| h.as_str()).collect();
        out.push_str(&self.text_row(&headings, &widths));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        let rule: Vec<&str> = rule.iter().map(String::as_str).collect();
        out.push_str(&self.text_row(&rule, &widths));
        for row in &self.rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            out.push_str(&self.text_row(&cells, &widths));
        }
        out
    }

    fn column_widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .map(|(h, _)| h.chars().count())
            .collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        widths
    }

    fn text_row(&self, cells: &[&str], widths: &[usize]) -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .zip(&self.columns)
            .map(|((cell, width), (_, align))| match align {
                Align::Left => format!("{cell:<width$}"),
                Align::Right => format!("{cell:>width$}"),
            })
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    }
}

fn markdown_row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

fn class(align: Align) -> &'static str {
    match align {
        Align::Left => "",
        Align::Right => " class=\"num\"",
    }
}

/// Every error cause any variant reports, sorted, so all variants share the same columns.
fn error_causes(results: &Results) -> Vec<String> {
    let causes: BTreeSet<&String> = results
        .variants
        .iter()
        .flat_map(|v| v.errors.keys())
        .collect();
    causes.into_iter().cloned().collect()
}

/// Headings of the variant table's fixed columns, for documents.
pub const VARIANT_HEADINGS: [&str; 7] = [
    "variant",
    "requests",
    "availability",
    "throughput (req/s)",
    "p50 (ms)",
    "p99 (ms)",
    "p99.9 (ms)",
];

/// The same, short enough for the table to fit a terminal.
pub const VARIANT_HEADINGS_SHORT: [&str; 7] = [
    "variant", "requests", "avail", "req/s", "p50 ms", "p99 ms", "p99.9 ms",
];

/// One row per variant: requests, availability, throughput, latency percentiles, errors.
pub fn variants(results: &Results, headings: [&str; 7]) -> Table {
    let causes = error_causes(results);
    let mut columns: Vec<(&str, Align)> = headings
        .iter()
        .enumerate()
        .map(|(i, h)| (*h, if i == 0 { Align::Left } else { Align::Right }))
        .collect();
    columns.extend(causes.iter().map(|c| (c.as_str(), Align::Right)));
    let mut table = Table::new(&columns);
    table.rows = results
        .variants
        .iter()
        .map(|v| variant_row(v, &causes))
        .collect();
    table
}

fn variant_row(variant: &VariantResult, causes: &[String]) -> Vec<String> {
    let mut row = vec![
        variant.name.clone(),
        format::count(variant.requests),
        // Availability that leaves out time the clients were down is not the whole story.
        format!(
            "{}{}",
            format::percent(variant.availability, 3),
            if variant.clients_down_s > 0.0 {
                "*"
            } else {
                ""
            }
        ),
        format::grouped(variant.throughput_rps, 1),
        format::ms(variant.latency_ms.p50),
        format::ms(variant.latency_ms.p99),
        format::ms(variant.latency_ms.p999),
    ];
    // A cause another variant reports but this one does not is a zero, not a gap.
    row.extend(
        causes
            .iter()
            .map(|c| format::count(variant.errors.get(c).copied().unwrap_or(0))),
    );
    row
}

/// One row per (variant, request class): the variant table's numbers for that class alone;
/// empty when the scenario declares no classes.
pub fn classes(results: &Results) -> Table {
    let causes: Vec<String> = results
        .variants
        .iter()
        .flat_map(|v| v.classes.iter().flat_map(|c| c.errors.keys()))
        .collect::<BTreeSet<&String>>()
        .into_iter()
        .cloned()
        .collect();
    let mut columns = vec![("variant", Align::Left), ("class", Align::Left)];
    columns.extend(VARIANT_HEADINGS[1..].iter().map(|h| (*h, Align::Right)));
    columns.extend(causes.iter().map(|c| (c.as_str(), Align::Right)));
    let mut table = Table::new(&columns);
    for v in &results.variants {
        for c in &v.classes {
            let mut row = vec![
                v.name.clone(),
                c.name.clone(),
                format::count(c.requests),
                format::percent(c.availability, 3),
                format::grouped(c.throughput_rps, 1),
                format::ms(c.latency_ms.p50),
                format::ms(c.latency_ms.p99),
                format::ms(c.latency_ms.p999),
            ];
            row.extend(
                causes
                    .iter()
                    .map(|k| format::count(c.errors.get(k).copied().unwrap_or(0))),
            );
            table.rows.push(row);
        }
    }
    table
}

/// One row per server replica of a variant.
pub fn servers(servers: &[ServerResult]) -> Table {
    let mut table = Table::new(&[
        ("server", Align::Left),
        ("utilisation", Align::Right),
        ("mean queue length", Align::Right),
        ("served", Align::Right),
        ("rejected", Align::Right),
    ]);
    table.rows = servers
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                format::percent(s.utilisation, 2),
                format::fixed(s.mean_queue_len, 2),
                format::count(s.served),
                format::count(s.rejected),
            ]
        })
        .collect();
    table
}

/// One row per fault window, in schedule order; random faults one row per kind and node,
/// with their count, the first start and the last end.
pub fn faults(faults: &[FaultWindow]) -> Table {
    let mut table = Table::new(&[
        ("fault", Align::Left),
        ("start (s)", Align::Right),
        ("end (s)", Align::Right),
    ]);
    table.rows = fault_groups(faults)
        .into_iter()
        .map(|g| {
            let label = match g.count {
                1 => g.label,
                n => format!(
                    "{} ×{}, {} s in all",
                    g.label,
                    format::count(n),
                    format::grouped(g.total_s, 3)
                ),
            };
            vec![
                label,
                format::grouped(g.first_start_s, 3),
                format::grouped(g.last_end_s, 3),
            ]
        })
        .collect();
    table
}

/// One row per component counter of a variant: node, counter, value.
pub fn counters(variant: &VariantResult) -> Table {
    let mut table = Table::new(&[
        ("node", Align::Left),
        ("counter", Align::Left),
        ("value", Align::Right),
    ]);
    for (node, counters) in &variant.components {
        for (name, value) in counters {
            table
                .rows
                .push(vec![node.clone(), name.clone(), counter_value(*value)]);
        }
    }
    table
}

/// One row per recorded state change of a variant, in time order: time, node, what; node
/// ids in the text are written as node names, value ids as `#sequence by writer`.
pub fn state_changes(variant: &VariantResult, names: &[String]) -> Table {
    let mut table = Table::new(&[
        ("time (s)", Align::Right),
        ("node", Align::Left),
        ("change", Align::Left),
    ]);
    let mut rows: Vec<(f64, &str, &str)> = variant
        .state_changes
        .iter()
        .flat_map(|(node, events)| {
            events
                .iter()
                .map(move |e| (e.at_s, node.as_str(), e.what.as_str()))
        })
        .collect();
    // Stable sort on time keeps node order (alphabetical) among simultaneous changes.
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (at_s, node, what) in rows {
        table.rows.push(vec![
            format::grouped(at_s, 3),
            node.to_string(),
            readable(what, names),
        ]);
    }
    table
}

/// Every node's name by node id: the scenario's nodes in order, a pool (a node declared with
/// `replicas`) expanded to `name-0`, `name-1`, ..., as the scenario's validation numbers them.
pub fn node_names(results: &Results) -> Vec<String> {
    let Some(nodes) = results
        .scenario
        .resolved
        .get("nodes")
        .and_then(serde_json::Value::as_object)
    else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for (name, config) in nodes {
        let replicas = config
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(|fields| fields.get("replicas"))
            .and_then(serde_json::Value::as_u64);
        match replicas {
            Some(n) => names.extend((0..n).map(|i| format!("{name}-{i}"))),
            None => names.push(name.clone()),
        }
    }
    names
}

/// A value id written by a key-value client: `(writer id + 1) << 40 | sequence`.
const VALUE_ID_SHIFT: u32 = 40;

/// `what` with `node 3` written as the node's name and a value id after `read`/`write` as
/// `#646 by users`, so a reader need not decode 13-digit numbers.
pub fn readable(what: &str, names: &[String]) -> String {
    let words: Vec<&str> = what.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        let next = words.get(i + 1).copied().unwrap_or("");
        let id = next.trim_end_matches([';', ',']);
        let name = id.parse::<usize>().ok().and_then(|n| names.get(n));
        match (word, name) {
            ("node", Some(name)) => {
                out.push(format!("{name}{}", &next[id.len()..]));
                i += 2;
                continue;
            }
            ("read" | "write", _) if value_name(id, names).is_some() => {
                let value = value_name(id, names).unwrap_or_default();
                out.push(format!("{word} {value}{}", &next[id.len()..]));
                i += 2;
                continue;
            }
            _ => out.push(word.to_string()),
        }
        i += 1;
    }
    out.join(" ")
}

fn value_name(id: &str, names: &[String]) -> Option<String> {
    let v: u64 = id.parse().ok()?;
    let writer = (v >> VALUE_ID_SHIFT).checked_sub(1)?;
    let sequence = v & ((1 << VALUE_ID_SHIFT) - 1);
    let name = names.get(usize::try_from(writer).ok()?)?;
    Some(format!("#{} by {name}", format::count(sequence)))
}

/// Counters are mostly whole numbers; print those without a fraction.
fn counter_value(value: f64) -> String {
    if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
        format::grouped(value, 0)
    } else {
        format::grouped(value, 3)
    }
}

/// With several clients (two paths of one service, two tenants), one row per variant and
/// client: its own requests after the warm-up and their availability, which the run-wide
/// numbers mix. Empty when the run has one client (clients report their own numbers only then).
pub fn clients(results: &Results) -> Table {
    let mut table = Table::new(&[
        ("variant", Align::Left),
        ("client", Align::Left),
        ("requests", Align::Right),
        ("failed", Align::Right),
        ("availability", Align::Right),
    ]);
    let nodes = results.scenario.resolved.get("nodes");
    let is_client = |name: &str| {
        nodes
            .and_then(|n| n.get(name))
            .and_then(|c| c.get("Client"))
            .is_some()
    };
    for v in &results.variants {
        for (node, counters) in &v.components {
            let (Some(ok), Some(failed)) = (counters.get("ok"), counters.get("failed")) else {
                continue;
            };
            if !is_client(node) || !counters.contains_key("availability") {
                continue;
            }
            let total = ok + failed;
            table.rows.push(vec![
                v.name.clone(),
                node.clone(),
                format::count(total as u64),
                format::count(*failed as u64),
                format::percent(if total > 0.0 { ok / total } else { 1.0 }, 3),
            ]);
        }
    }
    table
}

/// One row per variant that overrides anything: the override paths and values.
pub fn overrides(results: &Results) -> Table {
    let mut table = Table::new(&[
        ("variant", Align::Left),
        ("setting", Align::Left),
        ("value", Align::Left),
    ]);
    for variant in &results.variants {
        for (path, value) in &variant.overrides {
            table
                .rows
                .push(vec![variant.name.clone(), path.clone(), value.clone()]);
        }
    }
    table
}

/// One row per checker verdict of each variant: what was checked, violated and left
/// unchecked, and the outcome (a property holds only when nothing was left unchecked).
pub fn verdicts(results: &Results) -> Table {
    let mut table = Table::new(&[
        ("variant", Align::Left),
        ("checker", Align::Left),
        ("property", Align::Left),
        ("checked", Align::Right),
        ("violated", Align::Right),
        ("unchecked", Align::Right),
        ("verdict", Align::Left),
    ]);
    for v in &results.variants {
        for (node, verdicts) in &v.verdicts {
            for verdict in verdicts {
                table.rows.push(vec![
                    v.name.clone(),
                    node.clone(),
                    verdict.property.clone(),
                    format!("{} {}", format::count(verdict.checked), verdict.unit),
                    format::count(verdict.violated),
                    format::count(verdict.unchecked),
                    verdict.outcome().to_string(),
                ]);
            }
        }
    }
    table
}

/// What the verdict table's outcomes mean; shared by `summary.md` and `index.html`.
pub const VERDICTS_NOTE: &str = "A property holds only when every unit was checked and none violates it; it is undecided when some were left unchecked (over the checker's search bound or the history's size bound) and none of those checked violates it.\n";

/// Time to recover, one row per variant and fault (see `crate::recovery`).
pub fn recovery(results: &Results) -> Table {
    let mut table = Table::new(&[
        ("variant", Align::Left),
        ("fault", Align::Left),
        ("end (s)", Align::Right),
        ("baseline availability", Align::Right),
        ("baseline p99 (ms)", Align::Right),
        ("time to recover (s)", Align::Right),
    ]);
    for v in &results.variants {
        // Random faults one row per kind and node: their count, means and the worst case.
        for g in recovery_groups(&v.recovery) {
            let recovered = match (g.with_baseline, g.recovered_after_s) {
                (0, _) => "no baseline".to_string(),
                (_, None) => "not recovered".to_string(),
                (_, Some((s, _))) if g.count == 1 => format::fixed(s, 3),
                (_, Some((mean, max))) => {
                    format!(
                        "mean {}, max {}",
                        format::fixed(mean, 3),
                        format::fixed(max, 3)
                    )
                }
            };
            let (fault, recovered) = match g.count {
                1 => (g.label, recovered),
                n => {
                    let missing = n - g.with_baseline;
                    let mut notes = Vec::new();
                    if g.not_recovered > 0 && g.not_recovered < g.with_baseline {
                        notes.push(format!("{} not recovered", g.not_recovered));
                    }
                    if missing > 0 && missing < n {
                        notes.push(format!("{missing} without baseline"));
                    }
                    let recovered = match notes.is_empty() {
                        true => recovered,
                        false => format!("{recovered} ({})", notes.join(", ")),
                    };
                    (format!("{} ×{n}", g.label), recovered)
                }
            };
            let mean = if g.count == 1 { "" } else { "mean " };
            table.rows.push(vec![
                v.name.clone(),
                fault,
                format::fixed(g.last_end_s, 3),
                g.baseline_availability.map_or("-".to_string(), |a| {
                    format!("{mean}{}", format::percent(a, 2))
                }),
                g.baseline_p99_ms
                    .map_or("-".to_string(), |p| format!("{mean}{}", format::ms(p))),
                recovered,
            ]);
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut table = Table::new(&[("name", Align::Left), ("n", Align::Right)]);
        table.rows = vec![
            vec!["a|b".to_string(), "1".to_string()],
            vec!["long name".to_string(), "1,000".to_string()],
        ];
        table
    }

    #[test]
    fn markdown_escapes_pipes_and_aligns_numbers_right() {
        let md = sample().to_markdown();
        assert_eq!(
            md,
            "| name | n |\n| :--- | ---: |\n| a\\|b | 1 |\n| long name | 1,000 |\n"
        );
    }

    #[test]
    fn text_columns_line_up() {
        let text = sample().to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "name           n");
        assert_eq!(lines[2], "a|b            1");
        assert_eq!(lines[3], "long name  1,000");
    }

    #[test]
    fn html_escapes_cells() {
        let html = sample().to_html();
        assert!(html.contains("<td>a|b</td><td class=\"num\">1</td>"));
    }

    #[test]
    fn ids_in_state_changes_read_as_names() {
        let names: Vec<String> = ["users", "store-0", "store-1"].map(String::from).to_vec();
        let what = "key 1: node 0 write 1099511628678 [4.1ms, 4.2ms] via node 2; node 9 read 5";
        assert_eq!(
            readable(what, &names),
            "key 1: users write #902 by users [4.1ms, 4.2ms] via store-1; node 9 read 5"
        );
    }

    #[test]
    fn counters_print_whole_numbers_without_fraction() {
        assert_eq!(counter_value(42.0), "42");
        assert_eq!(counter_value(12345.0), "12,345");
        assert_eq!(counter_value(0.25), "0.250");
        assert_eq!(counter_value(f64::NAN), "-");
    }
}
