//! `index.html`: one self-contained page with the tables and the plots inlined as SVG.
//!
//! Self-contained means it can be mailed or attached to a ticket and still show everything:
//! no scripts, no external stylesheets, fonts or images.

use super::format::html_escape;
use super::summary::{MEASUREMENT_NOTE, facts};
use super::table;
use crate::results::Results;

pub(super) const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
max-width:1040px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:0.2em}
h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:0.2em}
table{border-collapse:collapse;margin:1em 0;font-size:0.92em}
th,td{padding:0.3em 0.8em;border-bottom:1px solid #e4e4e4;text-align:left}
th{border-bottom:2px solid #999}
.num{text-align:right;font-variant-numeric:tabular-nums}
.facts,.note{color:#555}
figure{margin:1.5em 0}
figure svg{max-width:100%;height:auto;display:block}
figcaption{color:#555;font-size:0.9em;text-align:center}
";

/// An SVG plot to inline: its caption and document.
pub struct Figure<'a> {
    /// Short description, also the SVG's accessible name.
    pub caption: &'a str,
    /// The SVG document as plotters wrote it.
    pub svg: &'a str,
}

/// The whole page.
pub fn page(results: &Results, figures: &[Figure<'_>]) -> String {
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
    out.push_str("<ul class=\"facts\">\n");
    for line in facts(results) {
        out.push_str(&format!("<li>{}</li>\n", html_escape(&line)));
    }
    out.push_str("</ul>\n<h2>Results</h2>\n");
    out.push_str(&table::variants(results, table::VARIANT_HEADINGS).to_html());
    out.push_str(&format!(
        "<p class=\"note\">{}</p>\n",
        html_escape(MEASUREMENT_NOTE.trim()).replace('\n', "<br>\n")
    ));
    let overrides = table::overrides(results);
    if !overrides.rows.is_empty() {
        out.push_str("<h3>Variants</h3>\n");
        out.push_str(&overrides.to_html());
    }
    out.push_str(&super::blocks::html(&super::theory::blocks(results)));
    out.push_str("<h2>Plots</h2>\n");
    for figure in figures {
        out.push_str(&inline_figure(figure));
    }
    details(&mut out, results);
    out.push_str("</body>\n</html>\n");
    out
}

/// Server, counter, state-change and fault tables.
fn details(out: &mut String, results: &Results) {
    if results.variants.iter().any(|v| !v.servers.is_empty()) {
        out.push_str("<h2>Servers</h2>\n");
        for variant in results.variants.iter().filter(|v| !v.servers.is_empty()) {
            out.push_str(&format!("<h3>{}</h3>\n", html_escape(&variant.name)));
            out.push_str(&table::servers(&variant.servers).to_html());
        }
    }
    if results.variants.iter().any(|v| !v.components.is_empty()) {
        out.push_str("<h2>Component counters</h2>\n");
        for variant in results.variants.iter().filter(|v| !v.components.is_empty()) {
            out.push_str(&format!("<h3>{}</h3>\n", html_escape(&variant.name)));
            out.push_str(&table::counters(variant).to_html());
        }
    }
    if results.variants.iter().any(|v| !v.state_changes.is_empty()) {
        out.push_str("<h2>State changes</h2>\n");
        for variant in results
            .variants
            .iter()
            .filter(|v| !v.state_changes.is_empty())
        {
            out.push_str(&format!("<h3>{}</h3>\n", html_escape(&variant.name)));
            out.push_str(&table::state_changes(variant).to_html());
        }
    }
    out.push_str("<h2>Faults</h2>\n");
    if results.faults.is_empty() {
        out.push_str("<p>No faults were injected.</p>\n");
    } else {
        out.push_str(&table::faults(&results.faults).to_html());
    }
    let recovery = table::recovery(results);
    if !recovery.rows.is_empty() {
        out.push_str("<h2>Time to recover</h2>\n");
        out.push_str(&recovery.to_html());
        out.push_str(&format!(
            "<p>{}</p>\n",
            html_escape(super::summary::RECOVERY_NOTE.trim())
        ));
    }
}

fn inline_figure(figure: &Figure<'_>) -> String {
    let caption = html_escape(figure.caption);
    // Give the drawing an accessible name; plotters writes a bare `<svg ` opening tag.
    let svg = figure.svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{caption}\" "),
        1,
    );
    format!("<figure>\n{svg}<figcaption>{caption}</figcaption>\n</figure>\n")
}
