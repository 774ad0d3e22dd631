//! What a sweep's `results.json` holds: per (variant, point), every summary metric as mean and
//! 95% confidence interval across replications, the mean time series with its interval, and
//! where each variant crosses the objective. `report::sweep` renders it; nothing else is needed.

use super::stats::{CONFIDENCE, Estimate};
use super::{Manifest, RunRecord, VariantEcho};
use crate::results::{FaultWindow, ScenarioEcho, Timing, VariantResult};
use crate::scenario::sweep::{Objective, Parameter};
use crate::sim::rng::mix64;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The whole sweep, aggregated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepResults {
    /// Version of archsim that wrote the file.
    pub archsim_version: String,
    /// Math fingerprint shared by every run.
    pub math_fingerprint: String,
    /// The scenario as run.
    pub scenario: ScenarioEcho,
    /// Base seed.
    pub seed: u64,
    /// Digest over every run's event trace, in run order.
    pub digest: String,
    /// Runs per (variant, point).
    pub replications: u32,
    /// Confidence level of every interval (0.95).
    pub confidence: f64,
    /// Measurement settings.
    pub timing: Timing,
    /// Fault windows, for shading time series.
    pub faults: Vec<FaultWindow>,
    /// The variants.
    pub variants: Vec<VariantEcho>,
    /// The swept parameters.
    pub parameters: Vec<Parameter>,
    /// The latency objective, if any.
    pub objective: Option<Objective>,
    /// One entry per (variant, point), variant-major.
    pub cells: Vec<CellResult>,
    /// Where each variant's mean crosses the objective (with an objective and numeric first
    /// parameter).
    pub crossings: Vec<Crossing>,
}

/// One (variant, point) across its replications.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellResult {
    /// Variant index.
    pub variant: usize,
    /// Point index.
    pub point: usize,
    /// Every summary metric (requests, availability, throughput, latencies, errors by
    /// cause, events), in a fixed order.
    pub metrics: IndexMap<String, Estimate>,
    /// Per time window, the mean across replications.
    pub windows: Vec<WindowEstimate>,
}

/// One time window across replications; a field is `null` when no replication had a value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowEstimate {
    /// Window start, seconds.
    pub start_s: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<Estimate>,
    /// Median latency, ms.
    pub p50_ms: Option<Estimate>,
    /// Availability, 0..1.
    pub availability: Option<Estimate>,
    /// Successful requests per second.
    pub throughput_rps: Option<Estimate>,
}

/// Where a variant's mean crosses the objective along the first parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crossing {
    /// Variant index.
    pub variant: usize,
    /// Values of the other parameters, `path = value`, empty with one parameter.
    pub others: Vec<String>,
    /// The first parameter's value where the mean reaches the limit (linear interpolation
    /// between the last point below and the first point at or above); `null` if it never does.
    pub at: Option<f64>,
    /// The same in words.
    pub note: String,
}

/// The summary metrics of one run, by name, in the fixed order of results.json and runs.csv.
pub fn run_metrics(r: &VariantResult) -> Vec<(String, f64)> {
    let l = &r.latency_ms;
    let mut m = vec![
        ("requests".to_string(), r.requests as f64),
        ("ok".to_string(), r.ok as f64),
        ("availability".to_string(), r.availability),
        ("throughput_rps".to_string(), r.throughput_rps),
        ("latency_mean_ms".to_string(), l.mean),
        ("latency_p50_ms".to_string(), l.p50),
        ("latency_p90_ms".to_string(), l.p90),
        ("latency_p99_ms".to_string(), l.p99),
        ("latency_p999_ms".to_string(), l.p999),
        ("latency_max_ms".to_string(), l.max),
    ];
    for (cause, n) in &r.errors {
        m.push((format!("errors_{cause}"), *n as f64));
    }
    m.push(("events".to_string(), r.events as f64));
    m
}

/// Aggregate every run (indexed like `manifest.runs`) into the sweep's results.
pub fn aggregate(manifest: &Manifest, runs: &[RunRecord]) -> SweepResults {
    let n_points = manifest.points.len();
    let reps = manifest.replications as usize;
    let mut cells = Vec::new();
    for variant in 0..manifest.variants.len() {
        for point in 0..n_points {
            let first = (variant * n_points + point) * reps;
            let group: Vec<&VariantResult> = runs[first..first + reps]
                .iter()
                .map(|r| &r.result)
                .collect();
            cells.push(cell(variant, point, &group));
        }
    }
    let digest = runs.iter().fold(mix64(manifest.seed), |h, r| {
        mix64(h ^ u64::from_str_radix(&r.result.digest, 16).unwrap_or(0))
    });
    let crossings = crossings(manifest, &cells);
    SweepResults {
        archsim_version: manifest.archsim_version.clone(),
        math_fingerprint: manifest.math_fingerprint.clone(),
        scenario: manifest.scenario.clone(),
        seed: manifest.seed,
        digest: format!("{digest:016x}"),
        replications: manifest.replications,
        confidence: CONFIDENCE,
        timing: manifest.timing.clone(),
        faults: manifest.faults.clone(),
        variants: manifest.variants.clone(),
        parameters: manifest.parameters.clone(),
        objective: manifest.objective.clone(),
        cells,
        crossings,
    }
}

fn cell(variant: usize, point: usize, runs: &[&VariantResult]) -> CellResult {
    let per_run: Vec<Vec<(String, f64)>> = runs.iter().map(|r| run_metrics(r)).collect();
    let mut metrics = IndexMap::new();
    for (name, _) in &per_run[0] {
        let values: Vec<f64> = per_run
            .iter()
            .filter_map(|m| m.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
            .filter(|v| v.is_finite())
            .collect();
        if let Some(e) = Estimate::of(&values) {
            metrics.insert(name.clone(), e);
        }
    }
    let n_windows = runs.iter().map(|r| r.windows.len()).max().unwrap_or(0);
    let windows = (0..n_windows)
        .map(|w| {
            let at = |f: fn(&crate::results::WindowResult) -> Option<f64>| {
                let v: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.windows.get(w).and_then(f))
                    .filter(|v| v.is_finite())
                    .collect();
                Estimate::of(&v)
            };
            WindowEstimate {
                start_s: runs
                    .iter()
                    .find_map(|r| r.windows.get(w).map(|x| x.start_s))
                    .unwrap_or(0.0),
                p99_ms: at(|x| x.p99_ms),
                p50_ms: at(|x| x.p50_ms),
                availability: at(|x| x.availability),
                throughput_rps: at(|x| Some(x.throughput_rps)),
            }
        })
        .collect();
    CellResult {
        variant,
        point,
        metrics,
        windows,
    }
}

/// Groups of points that differ only in the first parameter: (other values, points in order).
pub fn series(manifest_points: &[Vec<usize>]) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut out: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for (i, p) in manifest_points.iter().enumerate() {
        let rest = p[1..].to_vec();
        match out.iter_mut().find(|(r, _)| *r == rest) {
            Some((_, pts)) => pts.push(i),
            None => out.push((rest, vec![i])),
        }
    }
    for (_, pts) in &mut out {
        pts.sort_by_key(|&i| manifest_points[i][0]);
    }
    out
}

/// `path = value` for the parameters after the first.
pub fn others_text(parameters: &[Parameter], rest: &[usize]) -> Vec<String> {
    parameters[1..]
        .iter()
        .zip(rest)
        .map(|(p, &i)| format!("{} = {}", p.label, p.values[i]))
        .collect()
}

/// Where each variant's mean crosses the objective, from the cells (see [`Crossing`]).
pub fn crossings(manifest: &Manifest, cells: &[CellResult]) -> Vec<Crossing> {
    let Some(objective) = &manifest.objective else {
        return Vec::new();
    };
    let first = &manifest.parameters[0];
    if !first.numeric {
        return Vec::new();
    }
    let n_points = manifest.points.len();
    let metric = objective.metric.metric_name();
    let mut out = Vec::new();
    for variant in 0..manifest.variants.len() {
        for (rest, pts) in series(&manifest.points) {
            let curve: Vec<(f64, f64)> = pts
                .iter()
                .filter_map(|&p| {
                    let e = cells[variant * n_points + p].metrics.get(metric)?;
                    Some((first.x[manifest.points[p][0]], e.mean))
                })
                .collect();
            let (at, note) = crossing(&curve, objective.limit_ms, &first.label);
            out.push(Crossing {
                variant,
                others: others_text(&manifest.parameters, &rest),
                at,
                note,
            });
        }
    }
    out
}

/// The first x where the curve reaches `limit`, interpolated, and a sentence saying so.
fn crossing(curve: &[(f64, f64)], limit: f64, label: &str) -> (Option<f64>, String) {
    let Some(first_over) = curve.iter().position(|&(_, y)| y >= limit) else {
        return (None, "stays below the objective at every point".to_string());
    };
    if first_over == 0 {
        let x = curve[0].0;
        return (
            Some(x),
            format!("already above the objective at the first point ({label} = {x})"),
        );
    }
    let (x0, y0) = curve[first_over - 1];
    let (x1, y1) = curve[first_over];
    let x = x0 + (x1 - x0) * (limit - y0) / (y1 - y0);
    let x = format!("{x:.4}").parse().unwrap_or(x);
    (
        Some(x),
        format!("crosses the objective at {label} ≈ {x} (between {x0} and {x1})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_interpolates_between_the_points_around_the_limit() {
        let curve = [(0.5, 1.0), (0.6, 2.0), (0.7, 6.0)];
        assert_eq!(crossing(&curve, 4.0, "load").0, Some(0.65));
        assert_eq!(crossing(&curve, 10.0, "load").0, None);
        assert_eq!(crossing(&curve, 0.5, "load").0, Some(0.5));
    }

    #[test]
    fn series_group_points_by_the_other_parameters() {
        let points = vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]];
        assert_eq!(
            series(&points),
            vec![(vec![0], vec![0, 2]), (vec![1], vec![1, 3])]
        );
    }
}
