//! `index.html`: one self-contained page, the headline first (the results table and the plot
//! that answers the scenario's question), then the topology, the other plots, and the details
//! (servers, counters, state changes) folded away.
//!
//! Self-contained means it can be mailed or attached to a ticket and still show everything:
//! no scripts, no external stylesheets, fonts or images; links only within the page.

use super::format::html_escape;
use super::summary::{MEASUREMENT_NOTE, facts};
use super::table::{self, Table};
use crate::results::Results;

pub(super) const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
max-width:1040px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:0.2em}
h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:0.2em}
table{border-collapse:collapse;margin:1em 0;font-size:0.92em}
th,td{padding:0.3em 0.6em;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
th{border-bottom:2px solid #999}
.num{text-align:right;font-variant-numeric:tabular-nums}
td.num{white-space:nowrap}
.wide{overflow-x:auto;max-width:100%}
.facts,.note{color:#555}
nav.toc{background:#f6f6f6;padding:0.5em 1em;border-radius:6px}
nav.toc ol{margin:0.3em 0;padding-left:1.4em;columns:2}
figure{margin:1.5em 0}
figure svg{max-width:100%;height:auto;display:block}
figcaption{color:#555;font-size:0.9em}
details{margin:0.8em 0}
summary{cursor:pointer;font-weight:600}
@media print{body{max-width:none;margin:0}nav.toc{display:none}\
details::details-content{content-visibility:visible;display:contents}\
figure,table{break-inside:avoid}h2,h3{break-after:avoid}summary{list-style:none}}
";

/// An SVG figure to inline: its id, title, reading hint and document.
pub struct Figure<'a> {
    /// Anchor id (the file stem).
    pub id: &'a str,
    /// Short description, the SVG's accessible name and the contents entry.
    pub title: &'a str,
    /// How to read the figure, under it; empty for none.
    pub hint: &'a str,
    /// The SVG document.
    pub svg: &'a str,
}

/// The whole page; `headline` indexes the figure that answers the scenario's question.
pub fn page(
    results: &Results,
    figures: &[Figure<'_>],
    headline: usize,
    topology: Option<&str>,
) -> String {
    let name = html_escape(results.scenario.name.trim());
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{name} - archsim report</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n\
         <h1>{name}</h1>\n"
    );
    if let Some(description) = &results.scenario.description {
        out.push_str(&format!("<p>{}</p>\n", html_escape(description.trim())));
    }
    out.push_str(&contents(results, figures, headline, topology.is_some()));
    out.push_str("<h2 id=\"results\">Results</h2>\n");
    out.push_str(&wide(&table::variants(results, table::VARIANT_HEADINGS)));
    out.push_str(&format!(
        "<p class=\"note\">{}</p>\n",
        html_escape(MEASUREMENT_NOTE.trim()).replace('\n', "<br>\n")
    ));
    let classes = table::classes(results);
    if !classes.rows.is_empty() {
        out.push_str("<h3 id=\"classes\">By request class</h3>\n");
        out.push_str(&wide(&classes));
    }
    let clients = table::clients(results);
    if !clients.rows.is_empty() {
        out.push_str("<h3>By client</h3>\n");
        out.push_str(&wide(&clients));
    }
    let cost = super::scaling::cost_table(results);
    if !cost.rows.is_empty() {
        out.push_str("<h3 id=\"cost\">Replicas and cost</h3>\n");
        out.push_str(&wide(&cost));
        out.push_str(&format!(
            "<p class=\"note\">{}</p>\n",
            html_escape(super::scaling::COST_NOTE.trim())
        ));
    }
    if let Some(figure) = figures.get(headline) {
        out.push_str(&inline_figure(figure));
    }
    out.push_str(&super::blocks::html(&super::theory::blocks(results)));
    out.push_str(&super::blocks::html(&super::traces::blocks(results)));
    for f in super::traces::figures(results) {
        out.push_str(&inline_figure(&Figure {
            id: &f.stem,
            title: &f.caption,
            hint: "",
            svg: &f.svg,
        }));
    }
    let verdicts = table::verdicts(results);
    if !verdicts.rows.is_empty() {
        out.push_str("<h2 id=\"checks\">Checks</h2>\n");
        out.push_str(&wide(&verdicts));
        out.push_str(&format!(
            "<p class=\"note\">{}</p>\n",
            html_escape(table::VERDICTS_NOTE.trim())
        ));
    }
    if let Some(svg) = topology {
        out.push_str("<h2 id=\"topology\">Topology</h2>\n");
        out.push_str(&inline_figure(&Figure {
            id: "topology-diagram",
            title: "Topology: nodes by layer, calls as arrows",
            hint: "A pool of replicas is one box (×N); a box with a coloured border is a fault's target.",
            svg,
        }));
    }
    out.push_str("<h2 id=\"plots\">Plots</h2>\n");
    for (_, figure) in figures.iter().enumerate().filter(|(i, _)| *i != headline) {
        out.push_str(&inline_figure(figure));
    }
    details(&mut out, results);
    out.push_str("</body>\n</html>\n");
    out
}

/// The table of contents: sections, and each plot under Plots.
fn contents(results: &Results, figures: &[Figure<'_>], headline: usize, topology: bool) -> String {
    let mut items = vec![("results".to_string(), "Results".to_string())];
    if let Some(f) = figures.get(headline) {
        items.push((f.id.to_string(), format!("Results: {}", f.title)));
    }
    if let Some(heading) = super::theory::heading(results) {
        items.push((super::blocks::anchor(heading), heading.to_string()));
    }
    if !table::verdicts(results).rows.is_empty() {
        items.push(("checks".to_string(), "Checks".to_string()));
    }
    if topology {
        items.push(("topology".to_string(), "Topology".to_string()));
    }
    for (i, f) in figures.iter().enumerate() {
        if i != headline {
            items.push((f.id.to_string(), f.title.to_string()));
        }
    }
    for (id, title, present) in detail_sections(results) {
        if present {
            items.push((id.to_string(), title.to_string()));
        }
    }
    let mut out = String::from(
        "<nav class=\"toc\" aria-label=\"Contents\"><strong>Contents</strong>\n<ol>\n",
    );
    for (id, title) in items {
        out.push_str(&format!(
            "<li><a href=\"#{id}\">{}</a></li>\n",
            html_escape(&title)
        ));
    }
    out.push_str("</ol>\n</nav>\n");
    out
}

/// (anchor, title, whether the results have it) of each section under the plots.
fn detail_sections(results: &Results) -> [(&'static str, &'static str, bool); 6] {
    let any = |f: fn(&crate::results::VariantResult) -> bool| results.variants.iter().any(f);
    [
        ("faults", "Faults", true),
        (
            "recovery",
            "Time to recover",
            !table::recovery(results).rows.is_empty(),
        ),
        ("servers", "Servers", any(|v| !v.servers.is_empty())),
        (
            "counters",
            "Component counters",
            any(|v| !v.components.is_empty()),
        ),
        (
            "state-changes",
            "State changes",
            any(|v| !v.state_changes.is_empty()),
        ),
        ("run", "Run and variants", true),
    ]
}

/// A table in a box that scrolls sideways rather than widening the page.
fn wide(table: &Table) -> String {
    format!("<div class=\"wide\">\n{}</div>\n", table.to_html())
}

/// A folded section per variant: `<details>` with the row count in its summary.
fn folded(
    out: &mut String,
    results: &Results,
    build: impl Fn(&crate::results::VariantResult) -> Table,
) {
    for variant in &results.variants {
        let table = build(variant);
        if table.rows.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "<details>\n<summary>{} ({} rows)</summary>\n{}</details>\n",
            html_escape(&variant.name),
            super::format::count(table.rows.len() as u64),
            wide(&table)
        ));
    }
}

/// Faults and recovery in view; servers, counters and state changes folded; run facts last.
fn details(out: &mut String, results: &Results) {
    let [faults, recovery, servers, counters, changes, run] = detail_sections(results);
    out.push_str(&format!("<h2 id=\"{}\">{}</h2>\n", faults.0, faults.1));
    if results.faults.is_empty() {
        out.push_str("<p>No faults were injected.</p>\n");
    } else {
        out.push_str(&wide(&table::faults(&results.faults)));
    }
    if recovery.2 {
        out.push_str(&format!("<h2 id=\"{}\">{}</h2>\n", recovery.0, recovery.1));
        out.push_str(&wide(&table::recovery(results)));
        out.push_str(&format!(
            "<p class=\"note\">{}</p>\n",
            html_escape(super::summary::RECOVERY_NOTE.trim())
        ));
    }
    if servers.2 {
        out.push_str(&format!("<h2 id=\"{}\">{}</h2>\n", servers.0, servers.1));
        folded(out, results, |v| table::servers(&v.servers));
    }
    if counters.2 {
        out.push_str(&format!("<h2 id=\"{}\">{}</h2>\n", counters.0, counters.1));
        folded(out, results, table::counters);
    }
    if changes.2 {
        out.push_str(&format!("<h2 id=\"{}\">{}</h2>\n", changes.0, changes.1));
        let names = table::node_names(results);
        folded(out, results, |v| table::state_changes(v, &names));
    }
    out.push_str(&format!(
        "<h2 id=\"{}\">{}</h2>\n<ul class=\"facts\">\n",
        run.0, run.1
    ));
    for line in facts(results) {
        out.push_str(&format!("<li>{}</li>\n", html_escape(&line)));
    }
    out.push_str("</ul>\n");
    let overrides = table::overrides(results);
    if !overrides.rows.is_empty() {
        out.push_str(&wide(&overrides));
    }
}

/// A figure with an anchor, the SVG named for screen readers, and the reading hint (the
/// title is in the drawing already; repeating it under it says nothing new).
pub fn inline_figure(figure: &Figure<'_>) -> String {
    let title = html_escape(figure.title);
    let svg = figure.svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{title}\" "),
        1,
    );
    let caption = if figure.hint.is_empty() {
        String::new()
    } else {
        format!("<figcaption>{}</figcaption>\n", html_escape(figure.hint))
    };
    format!("<figure id=\"{}\">\n{svg}{caption}</figure>\n", figure.id)
}
