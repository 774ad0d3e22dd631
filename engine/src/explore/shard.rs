//! `archsim explore --shard I/N` and its merge: a shard runs the schedules whose index is I
//! mod N, stopping at its first that breaks the objective, and writes what it found to a
//! shard file; `archsim merge` takes the lowest such index over all shards, which is the
//! schedule a single machine finds first, and shrinks and writes it exactly as one machine
//! does (same found.ron, same report, byte-identical explore.md).
//!
//! A shard that stops at index k has run all of its schedules below k, so the lowest stop
//! over the shards is the lowest index of all that breaks the objective (or stops a run),
//! whatever the shards found above it.

use super::args::ExploreArgs;
use crate::sweep::shard::Shard;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a shard stopped: the first of its schedules that broke the objective or stopped a
/// run at a limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stop {
    /// The schedule's index (draw it again with `Space::draw`).
    pub index: u64,
    /// It broke the objective (`false`: a run under it stopped at a limit).
    pub broken: bool,
    /// What the objective measured, or why the run stopped.
    pub text: String,
}

/// What one shard of a search writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardFile {
    /// The archsim that wrote it: shards of different versions do not merge.
    pub archsim_version: String,
    /// The search's options (without the shard, output and thread options).
    pub args: ExploreArgs,
    /// Hash of the scenario file's bytes, so a merge reads the file the shards read.
    pub source_hash: String,
    /// This shard, from 0.
    pub shard: usize,
    /// Number of shards.
    pub shards: usize,
    /// Schedules this shard ran.
    pub ran: u64,
    /// Where it stopped, if one of its schedules broke the objective or stopped a run.
    pub first: Option<Stop>,
}

/// The file name of shard `s`.
pub fn file_name(s: Shard) -> String {
    format!("explore-shard-{}-of-{}.json", s.index, s.count)
}

/// The options every shard of one search shares (the shard, output and threads cleared).
pub fn shared_args(a: &ExploreArgs) -> ExploreArgs {
    ExploreArgs {
        shard: None,
        shards: None,
        out: None,
        jobs: None,
        ..a.clone()
    }
}

/// The hash that names the scenario file's bytes.
pub fn source_hash(src: &str) -> String {
    format!("{:016x}", crate::sim::rng::stable_hash(src.as_bytes()))
}

/// The shard files in `dirs`, if any of them holds one.
pub fn files_in(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("explore-shard-") && n.ends_with(".json"))
            })
            .collect();
        names.sort();
        out.extend(names);
    }
    out
}

/// What the shards decided together: where the search stopped and how many schedules a single
/// machine would have run by then.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The search's options.
    pub args: ExploreArgs,
    /// The scenario file's hash the shards read.
    pub source_hash: String,
    /// The lowest stop over all shards.
    pub first: Option<Stop>,
    /// Schedules one machine runs in batches of [`super::BATCH`] up to that stop.
    pub ran: u64,
}

/// Read and check the shard files: one search, one version, every shard present (a shard
/// present twice must be identical), and every shard that did not stop ran all its schedules.
pub fn merge(files: &[PathBuf]) -> Result<Merged, String> {
    let mut shards: Vec<(PathBuf, ShardFile)> = Vec::new();
    for f in files {
        let s = read(f)?;
        if let Some((other, _)) = shards.iter().find(|(_, o)| o.shard == s.shard) {
            let same = shards.iter().any(|(_, o)| *o == s);
            if !same {
                return Err(format!(
                    "error: {} and {} are both shard {} but differ: were they run with the \
                     same options?",
                    other.display(),
                    f.display(),
                    s.shard
                ));
            }
            continue;
        }
        shards.push((f.clone(), s));
    }
    let Some((first_path, first)) = shards.first().cloned() else {
        return Err("error: no explore shard files (explore-shard-I-of-N.json) found".into());
    };
    for (path, s) in &shards {
        let same = s.archsim_version == first.archsim_version
            && s.args == first.args
            && s.source_hash == first.source_hash
            && s.shards == first.shards;
        if !same {
            return Err(format!(
                "error: {} and {} come from different searches (archsim version, options, \
                 scenario file or shard count differ)",
                first_path.display(),
                path.display()
            ));
        }
    }
    let missing: Vec<String> = (0..first.shards)
        .filter(|i| !shards.iter().any(|(_, s)| s.shard == *i))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "error: shard{} {} of {} missing: run `archsim explore ... --shard I/{}` for each",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            first.shards,
            first.shards
        ));
    }
    Ok(decide(&first, shards.into_iter().map(|(_, s)| s).collect()))
}

/// The lowest stop over the shards, and the schedules one machine runs to reach it.
fn decide(first: &ShardFile, shards: Vec<ShardFile>) -> Merged {
    let stop = shards
        .iter()
        .filter_map(|s| s.first.clone())
        .min_by_key(|s| s.index);
    let budget = first.args.budget;
    let ran = match &stop {
        Some(s) => ((s.index / super::BATCH + 1) * super::BATCH).min(budget),
        None => shards.iter().map(|s| s.ran).sum::<u64>().min(budget),
    };
    Merged {
        args: first.args.clone(),
        source_hash: first.source_hash.clone(),
        first: stop,
        ran,
    }
}

fn read(path: &Path) -> Result<ShardFile, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
    if let Some(theirs) = crate::results::written_by(&bytes)
        && theirs != env!("CARGO_PKG_VERSION")
    {
        return Err(format!(
            "error: {} was written by archsim {theirs}, this is archsim {}: merge shards with \
             the archsim that ran them",
            path.display(),
            env!("CARGO_PKG_VERSION")
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "error: {}:{}:{}: not an explore shard file: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(i: usize, n: usize, ran: u64, first: Option<u64>) -> ShardFile {
        ShardFile {
            archsim_version: "x".into(),
            args: ExploreArgs {
                budget: 100,
                ..ExploreArgs::default()
            },
            source_hash: "h".into(),
            shard: i,
            shards: n,
            ran,
            first: first.map(|index| Stop {
                index,
                broken: true,
                text: String::new(),
            }),
        }
    }

    #[test]
    fn the_lowest_stop_wins_and_ran_counts_a_single_machines_batches() {
        let all = vec![
            shard(0, 3, 10, Some(27)),
            shard(1, 3, 5, Some(13)),
            shard(2, 3, 34, None),
        ];
        let m = decide(&all[0], all.clone());
        assert_eq!(m.first.map(|s| s.index), Some(13));
        // One machine runs batches 0..8 and 8..16 and stops after the one holding 13.
        assert_eq!(m.ran, 16);
        let none = vec![shard(0, 2, 50, None), shard(1, 2, 50, None)];
        assert_eq!(decide(&none[0], none.clone()).ran, 100);
        let late = vec![shard(0, 1, 100, Some(99))];
        assert_eq!(decide(&late[0], late.clone()).ran, 100);
    }
}
