//! `summary.md`: the run's tables in Markdown, ready to paste into a design document.
//!
//! One sentence per line, as in the rest of the project's Markdown, so diffs of a committed
//! report read well when a scenario changes.

use super::format::{self, markdown_cell};
use super::{plot_captions, table};
use crate::results::Results;

/// The whole `summary.md`.
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    header(&mut out, results);
    out.push_str("\n## Results\n\n");
    out.push_str(&table::variants(results, table::VARIANT_HEADINGS).to_markdown());
    out.push('\n');
    out.push_str(MEASUREMENT_NOTE);
    if results.variants.iter().any(|v| v.clients_down_s > 0.0) {
        out.push_str(CLIENTS_DOWN_NOTE);
    }
    let classes = table::classes(results);
    if !classes.rows.is_empty() {
        out.push_str("\n### By request class\n\n");
        out.push_str(&classes.to_markdown());
    }
    let clients = table::clients(results);
    if !clients.rows.is_empty() {
        out.push_str("\n### By client\n\n");
        out.push_str(&clients.to_markdown());
    }
    let cost = super::scaling::cost_table(results);
    if !cost.rows.is_empty() {
        out.push_str("\n### Replicas and cost\n\n");
        out.push_str(&cost.to_markdown());
        out.push('\n');
        out.push_str(super::scaling::COST_NOTE);
    }
    if !results.warnings.is_empty() {
        out.push_str("\n## Warnings\n\n");
        for w in &results.warnings {
            out.push_str(&format!("- {}\n", markdown_cell(w)));
        }
    }
    let overrides = table::overrides(results);
    if !overrides.rows.is_empty() {
        out.push_str("\n### Variants\n\n");
        out.push_str(&overrides.to_markdown());
    }
    out.push('\n');
    out.push_str(&super::blocks::markdown(&super::theory::blocks(results)));
    out.push_str(&super::blocks::markdown(&super::traces::blocks(results)));
    for f in super::traces::figures(results) {
        out.push_str(&format!(
            "![{}]({}.svg)\n\n",
            markdown_cell(&f.caption),
            f.stem
        ));
    }
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    let verdicts = table::verdicts(results);
    if !verdicts.rows.is_empty() {
        out.push_str("## Checks\n\n");
        out.push_str(&verdicts.to_markdown());
        out.push('\n');
        out.push_str(table::VERDICTS_NOTE);
    }
    while !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str("## Plots\n\n");
    for (stem, caption) in plot_captions(results) {
        out.push_str(&format!("![{}]({stem}.svg)\n\n", markdown_cell(&caption)));
    }
    if !super::topology::graph(results).0.is_empty() {
        out.push_str("![Topology](topology.svg)\n\n");
    }
    servers(&mut out, results);
    counters(&mut out, results);
    state_changes(&mut out, results);
    out.push_str("## Faults\n\n");
    if results.faults.is_empty() {
        out.push_str("No faults were injected.\n");
    } else {
        out.push_str(&table::faults(&results.faults).to_markdown());
    }
    let recovery = table::recovery(results);
    if !recovery.rows.is_empty() {
        out.push_str("\n## Time to recover\n\n");
        out.push_str(&recovery.to_markdown());
        out.push('\n');
        out.push_str(RECOVERY_NOTE);
    }
    out
}

/// How time to recover is measured; shared with `index.html`.
pub const RECOVERY_NOTE: &str = "Time from a fault's end to the start of the first time window \
that, together with the next one, has availability at least 90% and p99 at most 110% of the \
baseline: the windows after the warm-up and before the fault that overlap no fault and are not \
still recovering from an earlier one.\n";

/// What the `*` after an availability means.
pub const CLIENTS_DOWN_NOTE: &str = "\\* Clients were down for part of the measured time: \
requests they would have issued then were never issued, so this availability counts only the \
time they were up (see Warnings).\n";

/// How the summary numbers were measured; shared with `index.html`.
pub const MEASUREMENT_NOTE: &str = "Requests issued during the warm-up are left out.\n\
Availability is successful requests over requests issued; throughput counts successful requests.\n\
Latency is that of successful requests, from the client's first send to its answer.\n";

fn header(out: &mut String, results: &Results) {
    out.push_str(&format!("# {}\n\n", results.scenario.name.trim()));
    if let Some(description) = &results.scenario.description {
        // The description is the scenario author's prose, meant for readers: keep it as written.
        out.push_str(description.trim());
        out.push_str("\n\n");
    }
    for line in facts(results) {
        out.push_str(&format!("- {}\n", markdown_cell(&line)));
    }
}

/// The run's settings as short lines, shared with `index.html`.
pub fn facts(results: &Results) -> Vec<String> {
    let timing = &results.timing;
    vec![
        format!("Scenario file: {}", results.scenario.file),
        format!("Seed: {}", results.seed),
        format!(
            "Duration: {} (warm-up {}, time windows of {})",
            format::seconds(timing.duration_s),
            format::seconds(timing.warmup_s),
            format::seconds(timing.window_s),
        ),
        format!(
            "archsim {}, run digest {}",
            results.archsim_version, results.digest
        ),
    ]
}

fn servers(out: &mut String, results: &Results) {
    if results.variants.iter().all(|v| v.servers.is_empty()) {
        return;
    }
    out.push_str("## Servers\n\n");
    for variant in &results.variants {
        out.push_str(&format!("### {}\n\n", markdown_cell(&variant.name)));
        if variant.servers.is_empty() {
            out.push_str("No servers.\n\n");
        } else {
            out.push_str(&table::servers(&variant.servers).to_markdown());
            out.push('\n');
        }
    }
}

fn counters(out: &mut String, results: &Results) {
    if results.variants.iter().all(|v| v.components.is_empty()) {
        return;
    }
    out.push_str("## Component counters\n\n");
    for variant in &results.variants {
        let table = table::counters(variant);
        if !table.rows.is_empty() {
            out.push_str(&format!("### {}\n\n", markdown_cell(&variant.name)));
            out.push_str(&table.to_markdown());
            out.push('\n');
        }
    }
}

fn state_changes(out: &mut String, results: &Results) {
    if results.variants.iter().all(|v| v.state_changes.is_empty()) {
        return;
    }
    out.push_str("## State changes\n\n");
    for variant in &results.variants {
        let table = table::state_changes(variant, &table::node_names(results));
        if !table.rows.is_empty() {
            out.push_str(&format!("### {}\n\n", markdown_cell(&variant.name)));
            out.push_str(&table.to_markdown());
            out.push('\n');
        }
    }
}
