//! Shrinking a failing fault schedule to a minimal one that still fails.
//!
//! First delta debugging over the list of faults (Zeller's ddmin: try halves, then complements,
//! then finer pieces), then, fault by fault until nothing changes: halve its duration, drop
//! targets from a partition, and move its start to a rounder time (whole seconds, then tenths,
//! then hundredths, earlier first). A candidate is kept only if it still breaks the objective.
//! Candidates are tried one after another in a fixed order, so the result is a pure function of
//! the failing schedule and the oracle, and each run costs one simulation.
//!
//! Hand-written rather than borrowed: proptest's shrinking (`ValueTree::simplify`/`complicate`)
//! is tied to values it generated itself through its own strategies and random source, walks
//! one binary-search path per value, and knows nothing of "drop a subset of the list" as one
//! step; quickcheck shrinks by `Arbitrary::shrink`, with the same limits. Each test here costs a
//! whole simulation, so the order of candidates (fewest faults first) matters more than generic
//! machinery, and the whole of it is these few functions.

use super::{Kind, Pick};
use crate::sim::time::SimDuration;

/// A shrunk schedule and how it was reached.
#[derive(Clone, Debug, PartialEq)]
pub struct Shrunk {
    /// The smallest failing schedule found.
    pub picks: Vec<Pick>,
    /// Simulations run while shrinking.
    pub runs: u64,
    /// What each accepted step did, for the report.
    pub steps: Vec<String>,
    /// The run limit stopped the shrink: the schedule fails, but may not be minimal.
    pub exhausted: bool,
}

/// The oracle with a run limit: `Ok(true)` when a candidate still fails.
struct Oracle<'a, E> {
    test: &'a mut dyn FnMut(&[Pick]) -> Result<bool, E>,
    runs: u64,
    limit: u64,
}

impl<E> Oracle<'_, E> {
    /// `None` when the limit is reached (the candidate is not run).
    fn fails(&mut self, candidate: &[Pick]) -> Result<Option<bool>, E> {
        if self.runs >= self.limit {
            return Ok(None);
        }
        self.runs += 1;
        (self.test)(candidate).map(Some)
    }
}

/// Shrink `failing` (which breaks the objective) with at most `limit` runs of `test`.
pub fn shrink<E>(
    failing: Vec<Pick>,
    limit: u64,
    test: &mut dyn FnMut(&[Pick]) -> Result<bool, E>,
) -> Result<Shrunk, E> {
    let mut o = Oracle {
        test,
        runs: 0,
        limit,
    };
    let mut steps = Vec::new();
    let before = failing.len();
    let (mut picks, mut exhausted) = ddmin(failing, &mut o)?;
    if picks.len() < before {
        steps.push(format!(
            "kept {} of {before} faults (delta debugging, {} run{})",
            picks.len(),
            o.runs,
            if o.runs == 1 { "" } else { "s" }
        ));
    }
    let mut changed = true;
    while changed && !exhausted {
        changed = false;
        for i in 0..picks.len() {
            for candidate in simpler(&picks[i]) {
                let mut trial = picks.clone();
                trial[i] = candidate;
                match o.fails(&trial)? {
                    None => exhausted = true,
                    Some(true) => {
                        steps.push(format!("{} → {}", picks[i].describe(), trial[i].describe()));
                        picks = trial;
                        changed = true;
                        break;
                    }
                    Some(false) => {}
                }
            }
        }
    }
    Ok(Shrunk {
        picks,
        runs: o.runs,
        steps,
        exhausted,
    })
}

/// Simpler versions of one fault, most promising first: half as long, a partition with one
/// target fewer, a rounder start.
fn simpler(p: &Pick) -> Vec<Pick> {
    let mut out = Vec::new();
    const MS: u64 = 1_000_000;
    if p.duration.0 > MS {
        let half = (p.duration.0 / 2 / MS).max(1) * MS;
        out.push(Pick {
            duration: SimDuration(half),
            ..p.clone()
        });
    }
    if p.kind == Kind::Partition && p.targets.len() > 1 {
        for drop in 0..p.targets.len() {
            let mut q = p.clone();
            q.targets.remove(drop);
            out.push(q);
        }
    }
    for grid in [1_000 * MS, 100 * MS, 10 * MS] {
        let down = p.at.0 / grid * grid;
        let up = p.at.0.div_ceil(grid) * grid;
        for at in [down, up] {
            if at != p.at.0 && out.iter().all(|q| q.at.0 != at) {
                out.push(Pick {
                    at: SimDuration(at),
                    ..p.clone()
                });
            }
        }
        if down == p.at.0 {
            break; // Already round at this grid: finer grids give nothing rounder.
        }
    }
    out
}

/// Zeller's ddmin over the list: the result fails and removing any one fault from it passes
/// (unless the limit stopped it, the second value).
fn ddmin<E>(mut items: Vec<Pick>, o: &mut Oracle<'_, E>) -> Result<(Vec<Pick>, bool), E> {
    let mut n = 2;
    while items.len() >= 2 {
        let chunks = split(&items, n);
        let mut reduced = None;
        // Subsets first (a big cut), then complements.
        for chunk in &chunks {
            match o.fails(chunk)? {
                None => return Ok((items, true)),
                Some(true) => {
                    reduced = Some((chunk.clone(), 2));
                    break;
                }
                Some(false) => {}
            }
        }
        if reduced.is_none() && n > 2 {
            for i in 0..chunks.len() {
                let rest: Vec<Pick> = chunks
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, c)| c.iter().cloned())
                    .collect();
                match o.fails(&rest)? {
                    None => return Ok((items, true)),
                    Some(true) => {
                        reduced = Some((rest, (n - 1).max(2)));
                        break;
                    }
                    Some(false) => {}
                }
            }
        }
        match reduced {
            Some((smaller, next_n)) => {
                items = smaller;
                n = next_n;
            }
            None if n >= items.len() => break,
            None => n = (2 * n).min(items.len()),
        }
    }
    Ok((items, false))
}

/// `items` in `n` contiguous pieces as even as can be.
fn split(items: &[Pick], n: usize) -> Vec<Vec<Pick>> {
    let n = n.min(items.len());
    (0..n)
        .map(|i| items[i * items.len() / n..(i + 1) * items.len() / n].to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(kind: Kind, targets: &[&str], at_ms: u64, dur_ms: u64) -> Pick {
        Pick {
            kind,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            at: SimDuration::from_millis(at_ms),
            duration: SimDuration::from_millis(dur_ms),
        }
    }

    /// Fails when some crash of `b` lasting at least 40 ms and some partition cutting off `d`
    /// are both present: the minimum is those two faults, the crash 40..79 ms long, the
    /// partition of `d` alone.
    fn two_culprits(s: &[Pick]) -> Result<bool, ()> {
        let crash = s
            .iter()
            .any(|p| p.kind == Kind::Crash && p.targets == ["b"] && p.duration.0 >= 40_000_000);
        let cut = s
            .iter()
            .any(|p| p.kind == Kind::Partition && p.targets.iter().any(|t| t == "d"));
        Ok(crash && cut)
    }

    fn schedule() -> Vec<Pick> {
        vec![
            pick(Kind::Pause, &["a"], 1_234, 300),
            pick(Kind::Crash, &["b"], 2_345, 1_500),
            pick(Kind::Isolate, &["c"], 3_001, 20),
            pick(Kind::Slowdown, &["a"], 3_500, 700),
            pick(Kind::Partition, &["c", "d", "e"], 4_567, 900),
            pick(Kind::Loss, &["e"], 6_000, 50),
        ]
    }

    #[test]
    fn shrinks_to_the_faults_that_matter_shorter_narrower_rounder() {
        let got = shrink(schedule(), 1_000, &mut two_culprits).unwrap();
        assert!(!got.exhausted);
        assert_eq!(
            got.picks,
            vec![
                pick(Kind::Crash, &["b"], 2_000, 46),
                pick(Kind::Partition, &["d"], 4_000, 1)
            ]
        );
        assert!(two_culprits(&got.picks).unwrap());
        // Deterministic: the same input shrinks the same way, in the same number of runs.
        assert_eq!(shrink(schedule(), 1_000, &mut two_culprits).unwrap(), got);
    }

    #[test]
    fn ddmin_leaves_a_one_minimal_list() {
        let mut o = Oracle {
            test: &mut two_culprits,
            runs: 0,
            limit: 1_000,
        };
        let (kept, exhausted) = ddmin(schedule(), &mut o).unwrap();
        assert!(!exhausted);
        assert_eq!(kept.len(), 2);
        for i in 0..kept.len() {
            let mut less = kept.clone();
            less.remove(i);
            assert!(!two_culprits(&less).unwrap());
        }
    }

    #[test]
    fn the_run_limit_stops_the_shrink_with_a_failing_schedule() {
        let got = shrink(schedule(), 3, &mut two_culprits).unwrap();
        assert!(got.exhausted);
        assert_eq!(got.runs, 3);
        assert!(two_culprits(&got.picks).unwrap());
    }
}
