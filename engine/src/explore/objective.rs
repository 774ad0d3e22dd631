//! The objective `archsim explore --objective` checks each run against: an availability or
//! latency bound (over the measured period or a window of it), or a checker's property.
//!
//! ```text
//!   availability >= 0.99              requests that succeed, over the measured period
//!   availability >= 0.99 during 3s..6s   pooled over the time windows starting in [3s, 6s)
//!   p99 <= 250ms                      also p50, p90, p999, mean, max
//!   p99 <= 250ms during 3s..6s        in every window starting in [3s, 6s) (p50 and p99 only)
//!   linearizable                      a checker's property: holds when no unit violates it
//! ```

use crate::results::{VariantResult, Verdict};
use crate::sim::time::{SimDuration, parse_duration};
use std::fmt;

/// Short names for the checkers' properties.
const ALIASES: [(&str, &str); 4] = [
    ("atomic", "atomic commit"),
    ("atomicity", "atomic commit"),
    ("no-lost-writes", "no lost acknowledged writes"),
    ("durable", "no lost acknowledged writes"),
];

const LATENCIES: [&str; 6] = ["p50", "p90", "p99", "p999", "mean", "max"];

/// What must hold on every run.
#[derive(Clone, Debug, PartialEq)]
pub enum Objective {
    /// At least `min` of requests succeed.
    Availability {
        /// Lowest acceptable availability (0..1).
        min: f64,
        /// Only the windows starting in [from, to).
        during: Option<(SimDuration, SimDuration)>,
    },
    /// A latency statistic of successful requests stays at or under `max`.
    Latency {
        /// One of p50, p90, p99, p999, mean, max.
        stat: String,
        /// Highest acceptable value.
        max: SimDuration,
        /// Only the windows starting in [from, to) (each of them).
        during: Option<(SimDuration, SimDuration)>,
    },
    /// A checker's property (as its verdicts name it) is violated by no unit.
    Holds {
        /// The property, e.g. `no lost acknowledged writes`.
        property: String,
    },
}

/// A bad `--objective`, with the part of the text it is about.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectiveError {
    /// The objective as given.
    pub text: String,
    /// Byte range of the offending part.
    pub at: (usize, usize),
    /// What is wrong.
    pub message: String,
    /// What was expected instead.
    pub expected: String,
}

impl fmt::Display for ObjectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (start, end) = self.at;
        let pad = self.text[..start].chars().count();
        let width = self.text[start..end].chars().count().max(1);
        writeln!(f, "error: --objective: {}", self.message)?;
        writeln!(f, "  |")?;
        writeln!(f, "  | {}", self.text)?;
        writeln!(f, "  | {}{}", " ".repeat(pad), "^".repeat(width))?;
        write!(f, "  = {}", self.expected)
    }
}

const EXPECTED: &str = "expected `availability >= 0.99`, `p99 <= 250ms` (p50, p90, p99, p999, \
                        mean, max), either with `during 3s..6s`, or a checker's property such as \
                        `linearizable`, `atomic` or `no-lost-writes`";

/// Words of `text` with their byte ranges.
fn words(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, i, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

impl Objective {
    /// Read an objective. A property is checked against the run's checkers later
    /// ([`Objective::resolve`]), since only a run says which checkers a variant has.
    pub fn parse(text: &str) -> Result<Objective, ObjectiveError> {
        let err = |at: (usize, usize), message: String, expected: &str| ObjectiveError {
            text: text.to_string(),
            at,
            message,
            expected: expected.to_string(),
        };
        let first = words(text).first().map_or("", |w| w.2);
        let measure = first.split(['<', '>']).next().unwrap_or("");
        if text.trim().is_empty() {
            return Err(err((0, text.len()), "it is empty".into(), EXPECTED));
        }
        let bound =
            text.contains(['<', '>']) || measure == "availability" || LATENCIES.contains(&measure);
        if !bound {
            if let Some(at) = text.find('=') {
                return Err(err((at, at + 1), "no such comparison".into(), EXPECTED));
            }
            return Ok(Objective::Holds {
                property: text.trim().to_string(),
            });
        }
        Self::parse_bound(text, err)
    }

    fn parse_bound(
        text: &str,
        err: impl Fn((usize, usize), String, &str) -> ObjectiveError,
    ) -> Result<Objective, ObjectiveError> {
        let w = words(text);
        // Find the measure, operator and value even when the operator touches them.
        let mut tokens: Vec<(usize, usize, &str)> = Vec::new();
        for &(s, e, word) in &w {
            let mut rest = (s, word);
            while let Some(i) = rest.1.find(['<', '>']) {
                let op_end = if rest.1[i..].starts_with(">=") || rest.1[i..].starts_with("<=") {
                    i + 2
                } else {
                    i + 1
                };
                if i > 0 {
                    tokens.push((rest.0, rest.0 + i, &rest.1[..i]));
                }
                tokens.push((rest.0 + i, rest.0 + op_end, &rest.1[i..op_end]));
                rest = (rest.0 + op_end, &rest.1[op_end..]);
            }
            if !rest.1.is_empty() {
                tokens.push((rest.0, e, rest.1));
            }
        }
        let at_end = (text.len(), text.len());
        let (ms, me, measure) = tokens[0];
        let Some(&(os, oe, op)) = tokens.get(1) else {
            return Err(err(at_end, "missing `>=` or `<=`".into(), EXPECTED));
        };
        let Some(&(vs, ve, value)) = tokens.get(2) else {
            return Err(err(
                at_end,
                "missing the bound after the comparison".into(),
                EXPECTED,
            ));
        };
        let during = Self::parse_during(&tokens[3..], text, &err)?;
        match (measure, op) {
            ("availability", ">=") => {
                let min: f64 = value
                    .parse()
                    .ok()
                    .filter(|m| (0.0..=1.0).contains(m))
                    .ok_or_else(|| {
                        err(
                            (vs, ve),
                            format!("`{value}` is not an availability"),
                            "expected a number from 0 to 1, such as 0.999",
                        )
                    })?;
                Ok(Objective::Availability { min, during })
            }
            (m, "<=") if LATENCIES.contains(&m) => {
                let max = parse_duration(value)
                    .map_err(|e| err((vs, ve), e, "expected a duration such as `250ms`"))?;
                if during.is_some() && !matches!(m, "p50" | "p99") {
                    return Err(err(
                        (ms, me),
                        format!("`{m}` is not kept per time window"),
                        "expected p50 or p99 with `during`, or no `during`",
                    ));
                }
                Ok(Objective::Latency {
                    stat: m.to_string(),
                    max,
                    during,
                })
            }
            ("availability", _) => Err(err(
                (os, oe),
                format!("availability is bounded from below, not with `{op}`"),
                "expected `availability >= 0.99`",
            )),
            (m, _) if LATENCIES.contains(&m) => Err(err(
                (os, oe),
                format!("latency is bounded from above, not with `{op}`"),
                "expected for example `p99 <= 250ms`",
            )),
            _ => Err(err(
                (ms, me),
                format!("unknown measure `{measure}`"),
                "expected availability, p50, p90, p99, p999, mean or max",
            )),
        }
    }

    fn parse_during(
        tokens: &[(usize, usize, &str)],
        text: &str,
        err: &impl Fn((usize, usize), String, &str) -> ObjectiveError,
    ) -> Result<Option<(SimDuration, SimDuration)>, ObjectiveError> {
        const RANGE: &str =
            "expected `during FROM..TO` with two durations, such as `during 3s..6s`";
        match tokens {
            [] => Ok(None),
            [(_, _, "during"), (s, e, range)] => {
                let parsed = range
                    .split_once("..")
                    .and_then(|(a, b)| Some((parse_duration(a).ok()?, parse_duration(b).ok()?)));
                match parsed {
                    Some((a, b)) if a < b => Ok(Some((a, b))),
                    _ => Err(err(
                        (*s, *e),
                        format!("`{range}` is not a time range"),
                        RANGE,
                    )),
                }
            }
            [(s, _, _), ..] => Err(err(
                (*s, text.len()),
                "unexpected text after the bound".into(),
                RANGE,
            )),
        }
    }

    /// Check a property objective against the checkers a run reported, turning an alias into
    /// the property's full name. Bounds need no run and pass through.
    pub fn resolve(self, verdicts: &[&Verdict]) -> Result<Objective, ObjectiveError> {
        let Objective::Holds { property } = &self else {
            return Ok(self);
        };
        let norm = |s: &str| s.trim().to_lowercase().replace(['-', '_'], " ");
        let wanted = ALIASES
            .iter()
            .find(|(alias, _)| norm(alias) == norm(property))
            .map_or(norm(property), |(_, full)| (*full).to_string());
        if let Some(v) = verdicts.iter().find(|v| norm(&v.property) == wanted) {
            return Ok(Objective::Holds {
                property: v.property.clone(),
            });
        }
        let mut known: Vec<String> = verdicts
            .iter()
            .map(|v| format!("`{}`", v.property))
            .collect();
        known.dedup();
        let expected = if known.is_empty() {
            format!(
                "{EXPECTED}; this variant has no checker, so only availability and latency bounds apply"
            )
        } else {
            format!(
                "expected a property this variant's checkers report: {}, or an availability or latency bound",
                known.join(", ")
            )
        };
        Err(ObjectiveError {
            text: property.clone(),
            at: (0, property.len()),
            message: format!("no checker of this variant reports `{property}`"),
            expected,
        })
    }

    /// The objective in words, as the report states it.
    pub fn describe(&self) -> String {
        let during = |d: &Option<(SimDuration, SimDuration)>| {
            d.map_or(String::new(), |(a, b)| format!(" during {a}..{b}"))
        };
        match self {
            Objective::Availability { min, during: d } => {
                format!("availability >= {min}{}", during(d))
            }
            Objective::Latency {
                stat,
                max,
                during: d,
            } => format!("{stat} <= {max}{}", during(d)),
            Objective::Holds { property } => property.clone(),
        }
    }

    /// Measure the objective on one run.
    pub fn measure(&self, r: &VariantResult) -> super::Measured {
        match self {
            Objective::Availability { min, during } => {
                let availability = match during {
                    None => Some(r.availability),
                    Some((a, b)) => {
                        let (ok, all) = windows_in(r, *a, *b)
                            .fold((0, 0), |(ok, all), w| (ok + w.ok, all + w.ok + w.errors));
                        (all > 0).then(|| ok as f64 / all as f64)
                    }
                };
                super::Measured {
                    broken: availability.is_some_and(|x| x < *min),
                    text: availability
                        .map_or("no request completed in the window".to_string(), |x| {
                            format!("availability {x:.5}")
                        }),
                }
            }
            Objective::Latency { stat, max, during } => {
                let value = latency(r, stat, *during);
                super::Measured {
                    broken: value.is_some_and(|v| v > max.as_millis_f64()),
                    text: value.map_or(format!("no {stat} (no successful request)"), |v| {
                        let worst = if during.is_some() {
                            " (worst window)"
                        } else {
                            ""
                        };
                        format!("{stat} {v:.3} ms{worst}")
                    }),
                }
            }
            Objective::Holds { property } => {
                let verdicts: Vec<&Verdict> = r
                    .verdicts
                    .values()
                    .flatten()
                    .filter(|v| &v.property == property)
                    .collect();
                let violated: u64 = verdicts.iter().map(|v| v.violated).sum();
                let checked: u64 = verdicts.iter().map(|v| v.checked).sum();
                let unit = verdicts.first().map_or("units", |v| v.unit.as_str());
                super::Measured {
                    broken: violated > 0,
                    text: format!("{property}: {violated} of {checked} {unit} violate it"),
                }
            }
        }
    }
}

fn windows_in(
    r: &VariantResult,
    from: SimDuration,
    to: SimDuration,
) -> impl Iterator<Item = &crate::results::WindowResult> {
    let (a, b) = (from.as_secs_f64(), to.as_secs_f64());
    r.windows
        .iter()
        .filter(move |w| w.start_s >= a && w.start_s < b)
}

/// The statistic in ms: over the measured period, or the worst window of `during`.
fn latency(
    r: &VariantResult,
    stat: &str,
    during: Option<(SimDuration, SimDuration)>,
) -> Option<f64> {
    if let Some((a, b)) = during {
        return windows_in(r, a, b)
            .filter_map(|w| if stat == "p50" { w.p50_ms } else { w.p99_ms })
            .reduce(f64::max);
    }
    if r.ok == 0 {
        return None;
    }
    let l = &r.latency_ms;
    Some(match stat {
        "p50" => l.p50,
        "p90" => l.p90,
        "p99" => l.p99,
        "p999" => l.p999,
        "mean" => l.mean,
        _ => l.max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(text: &str) -> ObjectiveError {
        Objective::parse(text).expect_err(text)
    }

    #[test]
    fn reads_bounds_with_or_without_spaces_and_windows() {
        assert_eq!(
            Objective::parse("availability>=0.99").unwrap(),
            Objective::Availability {
                min: 0.99,
                during: None
            }
        );
        assert_eq!(
            Objective::parse("p99 <= 250ms during 3s..6s").unwrap(),
            Objective::Latency {
                stat: "p99".into(),
                max: SimDuration::from_millis(250),
                during: Some((SimDuration::from_secs(3), SimDuration::from_secs(6))),
            }
        );
        assert_eq!(
            Objective::parse("linearizable").unwrap(),
            Objective::Holds {
                property: "linearizable".into()
            }
        );
        assert_eq!(
            Objective::parse("no lost acknowledged writes").unwrap(),
            Objective::Holds {
                property: "no lost acknowledged writes".into()
            }
        );
    }

    #[test]
    fn errors_point_at_the_bad_part() {
        let e = bad("availabilty >= 0.99");
        assert_eq!(
            (e.at, e.message.as_str()),
            ((0, 11), "unknown measure `availabilty`")
        );
        let e = bad("availability >= 1.5");
        assert_eq!(e.at, (16, 19));
        let e = bad("p99 <= 250 during 1s..2s");
        assert_eq!(e.at, (7, 10));
        let e = bad("p99 <= 250ms during 6s..3s");
        assert_eq!(e.at, (20, 26));
        let e = bad("p999 <= 1s during 1s..2s");
        assert_eq!(e.at, (0, 4));
        let e = bad("p99 >= 1s");
        assert_eq!(e.at, (4, 6));
        let shown = e.to_string();
        assert!(shown.contains("  | p99 >= 1s\n  |     ^^\n"), "{shown}");
    }

    #[test]
    fn a_property_resolves_against_the_checkers_or_names_them() {
        let lost = Verdict::new(
            "no lost acknowledged writes",
            "acknowledged writes",
            9,
            0,
            0,
        );
        let lin = Verdict::new("linearizable", "keys", 5, 0, 0);
        let got = Objective::parse("no-lost-writes")
            .unwrap()
            .resolve(&[&lin, &lost])
            .unwrap();
        assert_eq!(
            got,
            Objective::Holds {
                property: lost.property.clone()
            }
        );
        let e = Objective::parse("atomic")
            .unwrap()
            .resolve(&[&lin, &lost])
            .unwrap_err();
        assert!(
            e.expected
                .contains("`linearizable`, `no lost acknowledged writes`"),
            "{e}"
        );
    }
}
