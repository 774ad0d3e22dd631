//! The `sweep:` block: parameters by path with lists or ranges of values, crossed (cartesian),
//! replications per point, an optional warm-up override and an optional latency objective.
//!
//! ```text
//!  sweep: (parameters: {"users.arrival.rate": (range: (from: 0.5, to: 0.95, step: 0.05),
//!                                              scale: 4000.0)},
//!          replications: 10, objective: (metric: P99, limit_ms: 20.0))
//!
//!  variant spec ──warm-up override──▶ ──point's values (file order)──▶ validate ──▶ Cell
//! ```
//! A value goes through the same override machinery as a variant's (`node.field`,
//! `network.*`, `duration`, ...). A deeper path (`users.arrival.rate`) names a number inside a
//! field: the field's current value is rewritten with that number and set as a whole.

use super::validate::Model;
use super::{Errors, OverrideError, Spec, apply_override};
use crate::contract::validate::Path;
use crate::registry::Registry;
use crate::sim::time::SimDuration;
use indexmap::IndexMap;
use ron::value::RawValue;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most runs one sweep may expand to, so a typo in a range cannot ask for billions.
pub const MAX_RUNS: usize = 1_000_000;

/// Parameters to sweep and replications per point, for `archsim sweep` (`archsim run` ignores
/// it): `sweep: (parameters: {"users.arrival.rate": (values: [1000.0, 2000.0])},
/// replications: 10)`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename = "Sweep", deny_unknown_fields)]
pub(crate) struct SweepRepr<'a> {
    /// Override path (`node.field`, `network.latency`, `duration`, ..., or a number inside a
    /// field such as `users.arrival.rate`) to its values; crossed (cartesian), the last
    /// varying fastest.
    #[serde(borrow)]
    #[schemars(with = "std::collections::BTreeMap<String, ParamRepr<'a>>")]
    parameters: IndexMap<String, ParamRepr<'a>>,
    /// Runs per (variant, point), each with its own seed (count, >= 1). Default 1.
    #[serde(default = "one")]
    replications: u32,
    /// Warm-up of every sweep run (duration). Default: the scenario's `warmup`.
    #[serde(default)]
    warmup: Option<SimDuration>,
    /// A latency objective; the report says where each variant's mean crosses it.
    #[serde(default)]
    objective: Option<Objective>,
}

/// `archsim list`'s names for the parameter and range types.
pub(crate) type ParamDoc<'a> = ParamRepr<'a>;
/// See [`ParamDoc`].
pub(crate) type RangeDoc = RangeRepr;

fn one() -> u32 {
    1
}

/// One swept parameter: `(values: [...])` or `(range: (from: .., to: .., step: ..))`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename = "Parameter", deny_unknown_fields)]
pub(crate) struct ParamRepr<'a> {
    /// The values, RON as in the file (exactly one of `values` and `range`).
    #[serde(default, borrow)]
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    values: Option<Vec<&'a RawValue>>,
    /// Numbers from `from` to `to` (included when on the grid) by `step`.
    #[serde(default)]
    range: Option<RangeRepr>,
    /// The value set is the number times `scale`; tables and axes show the number. Default 1.
    #[serde(default)]
    scale: Option<f64>,
    /// Axis and column title. Default: the path.
    #[serde(default)]
    label: Option<String>,
}

/// Evenly spaced numbers.
#[derive(Deserialize, JsonSchema)]
#[serde(rename = "Range", deny_unknown_fields)]
pub(crate) struct RangeRepr {
    /// First value.
    from: f64,
    /// Last value, if `from + k × step` reaches it.
    to: f64,
    /// Distance between values (> 0).
    step: f64,
}

/// Which latency statistic an objective bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ObjectiveMetric {
    /// Mean latency.
    Mean,
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
}

impl ObjectiveMetric {
    /// The summary metric's name in results (`latency_p99_ms`).
    pub fn metric_name(self) -> &'static str {
        match self {
            ObjectiveMetric::Mean => "latency_mean_ms",
            ObjectiveMetric::P50 => "latency_p50_ms",
            ObjectiveMetric::P90 => "latency_p90_ms",
            ObjectiveMetric::P99 => "latency_p99_ms",
            ObjectiveMetric::P999 => "latency_p999_ms",
        }
    }

    /// Short name for tables and legends (`p99`).
    pub fn short(self) -> &'static str {
        match self {
            ObjectiveMetric::Mean => "mean",
            ObjectiveMetric::P50 => "p50",
            ObjectiveMetric::P90 => "p90",
            ObjectiveMetric::P99 => "p99",
            ObjectiveMetric::P999 => "p99.9",
        }
    }
}

/// A latency objective: the report shows where each variant's mean crosses it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "Objective", deny_unknown_fields)]
pub struct Objective {
    /// The statistic bounded. Default `P99`.
    #[serde(default = "p99")]
    pub metric: ObjectiveMetric,
    /// The bound, milliseconds (> 0).
    pub limit_ms: f64,
}

fn p99() -> ObjectiveMetric {
    ObjectiveMetric::P99
}

/// One swept parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// Override path, e.g. `lb.strategy` or `users.arrival.rate`.
    pub path: String,
    /// Axis and column label (the path unless the file gives one).
    pub label: String,
    /// Each value as shown in tables (RON text, or the number before `scale`).
    pub values: Vec<String>,
    /// Each value as a number for plot axes: the number itself, or its position (0, 1, ...)
    /// when the values are not numbers.
    pub x: Vec<f64>,
    /// Whether `x` holds the values themselves (false: positions of non-numeric values).
    pub numeric: bool,
}

/// The expanded sweep: parameters, points, and one validated model per (variant, point).
#[derive(Clone, Debug)]
pub struct SweepPlan {
    /// The parameters in file order.
    pub parameters: Vec<Parameter>,
    /// Runs per (variant, point), each with its own seed.
    pub replications: u32,
    /// The warm-up every sweep run uses, if the block overrides it.
    pub warmup: Option<SimDuration>,
    /// Optional latency objective.
    pub objective: Option<Objective>,
    /// Every point: one value index per parameter; the last parameter varies fastest.
    pub points: Vec<Vec<usize>>,
    /// Models, variant-major: `cells[variant * points.len() + point]`.
    pub cells: Vec<Model>,
}

/// A parameter's values as text to set at the override path, and as shown.
struct Values {
    /// RON text written to the path.
    written: Vec<String>,
    shown: Vec<String>,
    x: Vec<f64>,
    numeric: bool,
}

impl Errors<'_> {
    /// Expand the sweep block over the variants' specs; `None` after reporting errors.
    pub(super) fn sweep(
        &mut self,
        repr: &SweepRepr<'_>,
        variants: &[&Spec],
        registry: &Registry,
    ) -> Option<SweepPlan> {
        let at = Path::root().field("sweep");
        let before = self.diags.len();
        if repr.parameters.is_empty() {
            self.at_path(
                &at.field("parameters"),
                "a sweep needs at least one parameter".into(),
                "expected e.g. `parameters: {\"lb.strategy\": (values: [RoundRobin, Random])}`"
                    .into(),
                Vec::new(),
            );
        }
        if repr.replications == 0 {
            self.at_path(
                &at.field("replications"),
                "replications must be at least 1".into(),
                "expected a whole number >= 1 (2 or more to get confidence intervals)".into(),
                Vec::new(),
            );
        }
        if let Some(o) = &repr.objective
            && !(o.limit_ms.is_finite() && o.limit_ms > 0.0)
        {
            self.at_path(
                &at.field("objective").field("limit_ms"),
                format!("objective limit {} ms is not a positive number", o.limit_ms),
                "expected milliseconds > 0, e.g. `limit_ms: 20.0`".into(),
                Vec::new(),
            );
        }
        let mut parameters = Vec::new();
        let mut written = Vec::new();
        for (path, p) in &repr.parameters {
            if let Some(v) = self.param_values(&at.field("parameters").key(path), path, p) {
                parameters.push(Parameter {
                    path: path.clone(),
                    label: p.label.clone().unwrap_or_else(|| path.clone()),
                    values: v.shown,
                    x: v.x,
                    numeric: v.numeric,
                });
                written.push(v.written);
            }
        }
        if self.diags.len() > before {
            return None;
        }
        let points = cartesian(&written.iter().map(Vec::len).collect::<Vec<_>>());
        let runs = points.len() * variants.len() * repr.replications as usize;
        if runs > MAX_RUNS {
            self.at_path(
                &at,
                format!("this sweep expands to {runs} runs"),
                format!("expected at most {MAX_RUNS}; use fewer values or replications"),
                Vec::new(),
            );
            return None;
        }
        let mut cells = Vec::new();
        for spec in variants {
            for point in &points {
                // One report per problem is enough: stop at the first bad cell.
                cells.push(self.cell(spec, &parameters, &written, point, repr.warmup, registry)?);
            }
        }
        Some(SweepPlan {
            parameters,
            replications: repr.replications,
            warmup: repr.warmup,
            objective: repr.objective.clone(),
            points,
            cells,
        })
    }

    fn param_values(&mut self, at: &Path, path: &str, p: &ParamRepr<'_>) -> Option<Values> {
        let scale = p.scale.unwrap_or(1.0);
        if !(scale.is_finite() && scale != 0.0) {
            self.at_path(
                &at.field("scale"),
                format!("scale {scale} is not a usable multiplier"),
                "expected a finite number other than 0".into(),
                Vec::new(),
            );
            return None;
        }
        let numbers = match (&p.values, &p.range) {
            (Some(_), Some(_)) | (None, None) => {
                self.at_path(
                    at,
                    format!("parameter `{path}` needs exactly one of `values` and `range`"),
                    "expected `(values: [a, b, ...])` or `(range: (from: 1.0, to: 2.0, step: 0.5))`"
                        .into(),
                    Vec::new(),
                );
                return None;
            }
            (Some(values), None) => {
                if values.is_empty() {
                    self.at_path(
                        &at.field("values"),
                        format!("parameter `{path}` has no values"),
                        "expected at least one value".into(),
                        Vec::new(),
                    );
                    return None;
                }
                let texts: Vec<String> = values.iter().map(|r| r.get_ron().trim().into()).collect();
                let parsed: Option<Vec<f64>> = texts.iter().map(|t| t.parse().ok()).collect();
                match parsed {
                    Some(n) => n,
                    None if p.scale.is_some() => {
                        self.at_path(
                            &at.field("scale"),
                            format!("parameter `{path}`: `scale` needs numeric values"),
                            "expected numbers in `values`, or no `scale`".into(),
                            Vec::new(),
                        );
                        return None;
                    }
                    None => {
                        return Some(Values {
                            x: (0..texts.len()).map(|i| i as f64).collect(),
                            written: texts.clone(),
                            shown: texts,
                            numeric: false,
                        });
                    }
                }
            }
            (None, Some(r)) => self.range(&at.field("range"), r)?,
        };
        // `{:?}` keeps `.0` on whole numbers, which float fields need; integer fields get the
        // text without it (see `set_path`).
        let written = numbers
            .iter()
            .map(|x| format!("{:?}", round9(x * scale)))
            .collect();
        Some(Values {
            written,
            shown: numbers.iter().map(|x| number_text(*x)).collect(),
            x: numbers,
            numeric: true,
        })
    }

    fn range(&mut self, at: &Path, r: &RangeRepr) -> Option<Vec<f64>> {
        let finite = r.from.is_finite() && r.to.is_finite() && r.step.is_finite();
        let steps = (r.to - r.from) / r.step;
        if !finite || r.step <= 0.0 || !(-1e-9..=100_000.0).contains(&steps) {
            self.at_path(
                at,
                format!(
                    "range from {} to {} by {} is empty or too long",
                    r.from, r.to, r.step
                ),
                "expected finite numbers with `from <= to` and `step > 0` (at most 100000 steps)"
                    .into(),
                Vec::new(),
            );
            return None;
        }
        // `to` is included when it lies on the grid, up to rounding of the decimal inputs.
        let n = libm::floor(steps + 1e-9) as usize;
        Some(
            (0..=n)
                .map(|i| round9(r.from + i as f64 * r.step))
                .collect(),
        )
    }

    fn cell(
        &mut self,
        variant: &Spec,
        parameters: &[Parameter],
        written: &[Vec<String>],
        point: &[usize],
        warmup: Option<SimDuration>,
        registry: &Registry,
    ) -> Option<Model> {
        let mut spec = variant.clone();
        if let Some(w) = warmup {
            spec.warmup = w;
        }
        for ((p, texts), &vi) in parameters.iter().zip(written).zip(point) {
            let at = Path::root().field("sweep").field("parameters").key(&p.path);
            if let Err(why) = set_path(&mut spec, &p.path, &texts[vi]) {
                self.at_path(
                    &at,
                    format!("cannot set `{}` to {}", p.path, texts[vi]),
                    why,
                    Vec::new(),
                );
                return None;
            }
        }
        match super::validate::validate(&spec, registry) {
            Ok(m) => Some(m),
            Err(problems) => {
                let values: Vec<String> = parameters
                    .iter()
                    .zip(written)
                    .zip(point)
                    .map(|((p, t), &i)| format!("{} = {}", p.path, t[i]))
                    .collect();
                for p in problems {
                    let mut notes = vec![format!(
                        "at {} in the sweep point {}",
                        super::locate::path_to_string(&p.path.0),
                        values.join(", ")
                    )];
                    notes.push("the point's values are set at the parameters' paths".into());
                    let span = super::locate::locate(self.src, &p.path.0);
                    self.diags.push(super::diag::Diagnostic {
                        message: p.message,
                        span,
                        label: p.expected,
                        notes,
                    });
                }
                None
            }
        }
    }
}

/// Every combination of `sizes[i]` choices, the last index varying fastest.
fn cartesian(sizes: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    for &n in sizes {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                (0..n).map(move |i| {
                    let mut p = prefix.clone();
                    p.push(i);
                    p
                })
            })
            .collect();
    }
    out
}

/// Rounded to 9 decimals, so `0.5 + 3 * 0.05` is 0.65 and not 0.6500000000000001.
fn round9(x: f64) -> f64 {
    format!("{x:.9}").parse().unwrap_or(x)
}

/// RON text of a number: shortest round-trip form, integers without a fraction.
fn number_text(x: f64) -> String {
    format!("{x}")
}

/// Set `path` to RON `text` in `spec`; a path deeper than `node.field` rewrites a number inside
/// the field's current value.
fn set_path(spec: &mut Spec, path: &str, text: &str) -> Result<(), String> {
    let segs: Vec<&str> = path.split('.').collect();
    let direct = |spec: &mut Spec, path: &str, text: &str| {
        apply_override(spec, path, text).map_err(|e| match e {
            OverrideError::Path(expected) => expected,
            OverrideError::Value(e) => format!("the value does not fit: {}", e.code),
        })
    };
    if segs.len() <= 2 {
        // Integer fields take `4` but not `4.0`; floats take either.
        let first = direct(spec, path, text);
        return match first {
            Err(_) if text.ends_with(".0") => direct(spec, path, text.trim_end_matches(".0")),
            other => other,
        };
    }
    let top = format!("{}.{}", segs[0], segs[1]);
    let Ok(number) = text.parse::<f64>() else {
        return Err(format!(
            "a path below `{top}` takes numbers; set `{top}` itself to sweep other values"
        ));
    };
    let mut field = field_json(spec, segs[0], segs[1]).ok_or_else(|| {
        format!("`{top}` is not a field that can be overridden; expected `node.field.sub`")
    })?;
    let current = json_to_ron(&field);
    let leaf = descend(&mut field, &segs[2..]).ok_or_else(|| {
        format!(
            "`{top}` has no number at `{}` in its current value {current}",
            segs[2..].join(".")
        )
    })?;
    *leaf = match leaf {
        serde_json::Value::Number(n) if n.is_f64() => serde_json::json!(number),
        serde_json::Value::Number(_) if number.fract() == 0.0 && number >= 0.0 => {
            serde_json::json!(number as u64)
        }
        _ => return Err(format!("`{path}` is not a number of the right kind")),
    };
    direct(spec, &top, &json_to_ron(&field))
}

/// The JSON form of `spec`'s `owner.field` (`users.arrival`, `network.latency`).
fn field_json(spec: &Spec, owner: &str, field: &str) -> Option<serde_json::Value> {
    let whole = if owner == "network" {
        serde_json::to_value(&spec.network).ok()?
    } else {
        let node = serde_json::to_value(spec.nodes.get(owner)?).ok()?;
        untag(&node).clone()
    };
    whole.get(field).cloned()
}

/// The contents of an enum's JSON form `{"Variant": contents}`, or the value itself.
fn untag(v: &serde_json::Value) -> &serde_json::Value {
    match v.as_object() {
        Some(o) if o.len() == 1 && o.keys().all(|k| is_variant_name(k)) => {
            o.values().next().unwrap_or(v)
        }
        _ => v,
    }
}

fn is_variant_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The number at `segs` below `v`, looking through enum variant wrappers.
fn descend<'v>(v: &'v mut serde_json::Value, segs: &[&str]) -> Option<&'v mut serde_json::Value> {
    let Some((first, rest)) = segs.split_first() else {
        return v.is_number().then_some(v);
    };
    let obj = v.as_object_mut()?;
    if obj.len() == 1 && !obj.contains_key(*first) && obj.keys().all(|k| is_variant_name(k)) {
        let inner = obj.values_mut().next()?;
        return descend(inner, segs);
    }
    descend(obj.get_mut(*first)?, rest)
}

/// RON text for a config value serde_json produced (enums are `{"Variant": ...}`).
fn json_to_ron(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "None".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) if is_variant_name(s) => s.clone(),
        J::String(s) => serde_json::to_string(s).unwrap_or_default(),
        J::Array(items) => format!("[{}]", join(items.iter().map(json_to_ron))),
        J::Object(o) if o.len() == 1 && o.keys().all(|k| is_variant_name(k)) => {
            let (tag, inner) = o.iter().next().expect("one entry");
            match inner {
                J::Object(fields) => format!("{tag}({})", fields_ron(fields)),
                J::Array(items) => format!("{tag}({})", join(items.iter().map(json_to_ron))),
                other => format!("{tag}({})", json_to_ron(other)),
            }
        }
        J::Object(fields) => format!("({})", fields_ron(fields)),
    }
}

fn fields_ron(fields: &serde_json::Map<String, serde_json::Value>) -> String {
    join(
        fields
            .iter()
            .map(|(k, v)| format!("{k}: {}", json_to_ron(v))),
    )
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cartesian_varies_the_last_parameter_fastest() {
        assert_eq!(
            cartesian(&[2, 3]),
            vec![
                vec![0, 0],
                vec![0, 1],
                vec![0, 2],
                vec![1, 0],
                vec![1, 1],
                vec![1, 2]
            ]
        );
        assert_eq!(cartesian(&[]), vec![Vec::<usize>::new()]);
    }

    #[test]
    fn ranges_land_on_decimal_values() {
        let xs: Vec<f64> = (0..=9).map(|i| round9(0.5 + i as f64 * 0.05)).collect();
        assert_eq!(xs[3], 0.65);
        assert_eq!(xs[9], 0.95);
        assert_eq!(number_text(4000.0), "4000");
        assert_eq!(number_text(0.65), "0.65");
    }

    #[test]
    fn json_enums_become_ron() {
        let v = serde_json::json!({"Poisson": {"rate": 3.5}});
        assert_eq!(json_to_ron(&v), "Poisson(rate: 3.5)");
        let v = serde_json::json!({"Constant": "2ms"});
        assert_eq!(json_to_ron(&v), "Constant(\"2ms\")");
    }
}
