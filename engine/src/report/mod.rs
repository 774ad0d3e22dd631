//! Turns a [`Results`] into the report files (tables, SVG/PNG plots, one HTML page) and the
//! terminal table; the only module that knows plotters and resvg.
//!
//! Rendering is a pure function of the results: the same `Results` gives the same bytes on
//! every run and machine, so `archsim report` can rebuild a committed report exactly. Hence no
//! clock, no hash-map order, fixed float formatting, and tick positions computed by us.
//!
//! ```text
//! Results ──table.rs──▶ Table ──▶ summary.md, index.html, terminal
//!         ──charts.rs─▶ Plot ──plot.rs──▶ SVG ──raster.rs──▶ PNG
//! ```

mod axis;
mod blocks;
mod cap;
mod charts;
mod classes;
#[cfg(test)]
mod collisions;
mod durability;
mod faults;
mod format;
mod html;
mod plot;
mod raster;
mod scaling;
mod states;
mod summary;
mod svg;
pub mod sweep;
mod table;
mod text;
mod theory;
pub use theory::FAULTS_ACTIVE;
mod sequence;
mod topology;
mod traces;

use crate::results::Results;
use rayon::prelude::*;
use std::fmt;

/// A report file: name (relative to the output directory) and contents.
pub type ReportFile = (String, Vec<u8>);

/// One kind of plot: where it goes, what it is called, how it is built.
struct PlotKind {
    /// File name without extension; the plot is written as `.svg` and `.png`.
    stem: &'static str,
    /// Caption in `summary.md` and `index.html`.
    caption: &'static str,
    /// How to read it, under the figure in `index.html`.
    hint: &'static str,
    /// Builds the plot description from the results.
    build: fn(&Results) -> plot::Plot,
}

/// The plots, in the order their files are listed.
const PLOTS: [PlotKind; 4] = [
    PlotKind {
        stem: "latency_cdf",
        hint: "Further right is slower; each step up the axis is ten times rarer (90%, 99%, 99.9%, ...).",
        caption: "Latency by percentile",
        build: charts::latency_cdf,
    },
    PlotKind {
        stem: "latency_over_time",
        hint: "Each step is one time window; shaded: the warm-up and the faults.",
        caption: "Latency over time",
        build: charts::latency_over_time,
    },
    PlotKind {
        stem: "availability",
        hint: "Successful requests over requests completed, per time window.",
        caption: "Availability over time",
        build: charts::availability,
    },
    PlotKind {
        stem: "throughput",
        hint: "Successful requests per second, per time window.",
        caption: "Throughput over time",
        build: charts::throughput,
    },
];

/// Why the report could not be rendered. Bad numbers in the results are not errors (they
/// print as `-` or break a plot's line); these are failures of the drawing libraries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportError {
    /// plotters failed while drawing a chart.
    Plot {
        /// The chart's title.
        title: String,
        /// What plotters reported.
        message: String,
    },
    /// A generated SVG could not be turned into a PNG.
    Png {
        /// The PNG file being produced.
        file: String,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Plot { title, message } => {
                write!(f, "cannot draw the plot {title:?}: {message}")
            }
            ReportError::Png { file, message } => write!(f, "cannot render {file}: {message}"),
        }
    }
}

impl std::error::Error for ReportError {}

/// A plot of this report: file stem, caption and description.
struct PlotFile {
    stem: String,
    caption: String,
    hint: &'static str,
    plot: plot::Plot,
}

/// Every plot of the report, in order: the four request plots, replicas against the load
/// where a pool is autoscaled, latency and availability by request class where there are
/// classes, then one per component time series name (`series-<name>`), sorted by name, then the CAP plot if a history measured
/// stale reads.
fn plots(results: &Results) -> Vec<PlotFile> {
    let mut out: Vec<PlotFile> = PLOTS
        .iter()
        .map(|kind| PlotFile {
            stem: kind.stem.to_string(),
            caption: kind.caption.to_string(),
            hint: kind.hint,
            plot: (kind.build)(results),
        })
        .collect();
    if scaling::applies(results) {
        let plot = scaling::plot(results);
        out.push(PlotFile {
            stem: scaling::STEM.to_string(),
            caption: plot.title.clone(),
            hint: "Above: the load offered; below: the replicas each variant ran for it, on the same time axis.",
            plot,
        });
    }
    if classes::applies(results) {
        let by_class = [
            (
                classes::CDF_STEM,
                classes::latency_cdf(results),
                PLOTS[0].hint,
            ),
            (
                classes::AVAILABILITY_STEM,
                classes::availability(results),
                PLOTS[2].hint,
            ),
        ];
        for (stem, plot, hint) in by_class {
            out.push(PlotFile {
                stem: stem.to_string(),
                caption: plot.title.clone(),
                hint,
                plot,
            });
        }
    }
    for name in charts::series_names(results) {
        let plot = charts::component_series(results, &name);
        out.push(PlotFile {
            stem: format!("series-{name}"),
            caption: plot.title.clone(),
            hint: "",
            plot,
        });
    }
    if cap::applies(results) {
        let plot = cap::cap_plot(results);
        out.push(PlotFile {
            stem: CAP_STEM.to_string(),
            caption: plot.title.clone(),
            hint: "Up is more available, left is fresher reads.",
            plot,
        });
    }
    if durability::applies(results) {
        let plot = durability::durability_plot(results);
        out.push(PlotFile {
            stem: DURABILITY_STEM.to_string(),
            caption: plot.title.clone(),
            hint: "Down is safer, left is faster.",
            plot,
        });
    }
    out
}

/// File stem of the topology diagram.
const TOPOLOGY_STEM: &str = "topology";

/// The plot that answers the scenario's question, shown under the results table: the CAP or
/// durability plot where there is one, availability where a variant lost requests, latency
/// over time where faults were injected, else the latency distribution.
fn headline(results: &Results, stems: &[&str]) -> usize {
    let lost = results.variants.iter().any(|v| v.availability < 0.999);
    let wanted = [
        (CAP_STEM, true),
        (DURABILITY_STEM, true),
        (scaling::STEM, true),
        (classes::AVAILABILITY_STEM, lost),
        ("availability", lost),
        ("latency_over_time", !results.faults.is_empty()),
    ];
    wanted
        .iter()
        .filter(|(_, applies)| *applies)
        .find_map(|(stem, _)| stems.iter().position(|s| s == stem))
        .unwrap_or(0)
}

/// File stem of the durability plot, drawn when an election checker ran with a history.
const DURABILITY_STEM: &str = "durability";

/// File stem of the CAP plot, drawn when a key-value history measured stale reads.
const CAP_STEM: &str = "cap";

/// File stems and captions of every plot, for the summary's list of plots.
fn plot_captions(results: &Results) -> Vec<(String, String)> {
    PLOTS
        .iter()
        .map(|k| (k.stem.to_string(), k.caption.to_string()))
        .chain(
            scaling::applies(results)
                .then(|| (scaling::STEM.to_string(), scaling::plot(results).title)),
        )
        .chain(
            classes::applies(results)
                .then(|| {
                    [
                        (
                            classes::CDF_STEM.to_string(),
                            classes::latency_cdf(results).title,
                        ),
                        (
                            classes::AVAILABILITY_STEM.to_string(),
                            classes::availability(results).title,
                        ),
                    ]
                })
                .into_iter()
                .flatten(),
        )
        .chain(charts::series_names(results).into_iter().map(|name| {
            let title = charts::series_title(results, &name);
            (format!("series-{name}"), title)
        }))
        .chain(cap::applies(results).then(|| (CAP_STEM.to_string(), cap::cap_plot(results).title)))
        .chain(durability::applies(results).then(|| {
            (
                DURABILITY_STEM.to_string(),
                durability::durability_plot(results).title,
            )
        }))
        .collect()
}

/// Renders every report file, in a fixed order: `summary.md`, then each plot as SVG and PNG
/// (latency by percentile, latency over time, availability, throughput, then the components'
/// time series), then `index.html`.
pub fn render(results: &Results) -> Result<Vec<ReportFile>, ReportError> {
    let mut files = vec![(
        "summary.md".to_string(),
        summary::markdown(results).into_bytes(),
    )];
    // Plots are independent: draw and rasterise them in parallel, gather them in order.
    let drawn = plots(results)
        .into_par_iter()
        .map(|p| {
            let svg = plot::to_svg(&p.plot)?;
            let png_name = format!("{}.png", p.stem);
            let png = raster::svg_to_png(&svg, &png_name)?;
            Ok((p, svg, png_name, png))
        })
        .collect::<Result<Vec<_>, ReportError>>()?;
    let mut svgs = Vec::with_capacity(drawn.len());
    for (p, svg, png_name, png) in drawn {
        files.push((format!("{}.svg", p.stem), svg.clone().into_bytes()));
        files.push((png_name, png));
        svgs.push((p, svg));
    }
    files.extend(traces::files(results)?);
    let topology = topology::svg(results);
    if let Some(svg) = &topology {
        files.push((format!("{TOPOLOGY_STEM}.svg"), svg.clone().into_bytes()));
        let png_name = format!("{TOPOLOGY_STEM}.png");
        files.push((png_name.clone(), raster::svg_to_png(svg, &png_name)?));
    }
    let figures: Vec<html::Figure<'_>> = svgs
        .iter()
        .map(|(p, svg)| html::Figure {
            id: p.stem.as_str(),
            title: p.caption.as_str(),
            hint: p.hint,
            svg,
        })
        .collect();
    let stems: Vec<&str> = svgs.iter().map(|(p, _)| p.stem.as_str()).collect();
    files.push((
        "index.html".to_string(),
        html::page(
            results,
            &figures,
            headline(results, &stems),
            topology.as_deref(),
        )
        .into_bytes(),
    ));
    Ok(files)
}

/// The table printed on the terminal after a run: one aligned row per variant.
pub fn terminal_table(results: &Results) -> String {
    table::variants(results, table::VARIANT_HEADINGS_SHORT).to_text()
}

/// The theory-beside-simulation table printed after the run's table (empty without theory).
pub fn theory_table(results: &Results) -> String {
    theory::terminal(results)
}

/// What `archsim analyze` prints: each variant's analytic model.
pub fn analysis_text(scenario: &str, variants: &[(String, crate::results::Theory)]) -> String {
    theory::analysis_text(scenario, variants)
}

#[cfg(test)]
mod tests;
