//! The options of `archsim explore`, apart from the command, so a shard file can carry them
//! and the command can read them without the two importing each other.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The options of `archsim explore`: the one definition `--help` prints.
#[derive(Clone, Debug, Default, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct ExploreArgs {
    /// Scenario file (RON); its `faults:` are replaced by the searched schedules.
    pub file: PathBuf,
    /// What must hold: `availability >= 0.99`, `p99 <= 250ms` (p50, p90, p99, p999, mean,
    /// max), either with `during 3s..6s`, or a checker's property (`linearizable`,
    /// `atomic`, `no-lost-writes`, or any property the report's Checks table names).
    #[arg(long, value_name = "OBJECTIVE")]
    pub objective: String,
    /// The variant to explore (required when the file has several).
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,
    /// Fault schedules to try, at most 10000.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=super::MAX_BUDGET))]
    pub budget: u64,
    /// Simulations the shrink may run, at most 10000; past it the schedule written still
    /// fails but may not be minimal (exit 1).
    #[arg(long, value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=super::MAX_SHRINK_BUDGET))]
    pub shrink_budget: u64,
    /// Search seed. Default: the scenario's `seed` (each run uses the scenario's seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Fault kinds to draw: crash, pause, isolate, partition, slowdown (10x), loss (50%).
    /// Default: crash,pause,isolate,partition.
    #[arg(long, value_delimiter = ',', value_name = "KIND,...")]
    pub kinds: Vec<String>,
    /// Nodes or groups faults may hit. Default: every node but the clients.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub targets: Vec<String>,
    /// When faults may start, FROM..TO. Default: warmup..duration.
    #[arg(long, value_name = "FROM..TO")]
    pub window: Option<String>,
    /// How long faults last, MIN..MAX (drawn log-uniformly). Default: duration/1000..duration/4.
    #[arg(long, value_name = "MIN..MAX")]
    pub durations: Option<String>,
    /// Most faults in one schedule (1 to 20).
    #[arg(long, value_name = "K", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=super::MAX_FAULTS as u64))]
    pub max_faults: u64,
    /// Output directory. Default: explore/<scenario file name without .ron>/
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads for the search. Default: one per core. The output does not depend on it.
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Run shard I of N of the search (0-based: the schedules i with i mod N = I) and write
    /// explore-shard-I-of-N.json to --out; `archsim merge` of every shard's directory then
    /// shrinks and writes what one machine would. `auto` reads Slurm, Kubernetes Indexed Job,
    /// AWS Batch or Google Cloud Batch array variables.
    #[arg(long, value_name = "I/N|auto")]
    pub shard: Option<String>,
    /// Number of shards for `--shard auto` where the environment has no count
    /// (Kubernetes: the Job's `completions`).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
}
