//! Which runs a shard takes: `--shard I/N` (0-based; run r belongs to shard r mod N), or
//! `--shard auto`, read from the array-job environment of Slurm, Kubernetes Indexed Jobs, AWS
//! Batch or Google Cloud Batch.

use std::fmt;

/// Shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Does run `r` belong to this shard?
    pub fn owns(self, r: usize) -> bool {
        r % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Parse `I/N`.
pub fn parse(text: &str) -> Result<Shard, String> {
    let expected = "expected `I/N` with 0 <= I < N (e.g. `--shard 2/8`), or `auto`";
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("--shard {text:?}: {expected}"))?;
    let index: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("--shard {text:?}: shard index {i:?} is not a number; {expected}"))?;
    let count: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("--shard {text:?}: shard count {n:?} is not a number; {expected}"))?;
    check(index, count).map_err(|e| format!("--shard {text:?}: {e}"))
}

fn check(index: usize, count: usize) -> Result<Shard, String> {
    if count == 0 {
        return Err("the shard count must be at least 1".to_string());
    }
    if index >= count {
        return Err(format!(
            "shard index {index} is out of range for {count} shard{}: shards are numbered \
             0 to {} (0-based)",
            if count == 1 { "" } else { "s" },
            count - 1
        ));
    }
    Ok(Shard { index, count })
}

/// `--shard auto`: the shard from the environment (`get` reads a variable), with a sentence
/// naming the scheduler and variables used. `shards` is `--shards N`, needed where the
/// environment has no count (Kubernetes) and otherwise checked against it.
pub fn from_env(
    get: &dyn Fn(&str) -> Option<String>,
    shards: Option<usize>,
) -> Result<(Shard, String), String> {
    // (scheduler, index variable, count variable)
    const SOURCES: [(&str, &str, Option<&str>); 4] = [
        (
            "Slurm",
            "SLURM_ARRAY_TASK_ID",
            Some("SLURM_ARRAY_TASK_COUNT"),
        ),
        ("Kubernetes Indexed Job", "JOB_COMPLETION_INDEX", None),
        (
            "AWS Batch",
            "AWS_BATCH_JOB_ARRAY_INDEX",
            Some("AWS_BATCH_JOB_ARRAY_SIZE"),
        ),
        (
            "Google Cloud Batch",
            "BATCH_TASK_INDEX",
            Some("BATCH_TASK_COUNT"),
        ),
    ];
    for (name, index_var, count_var) in SOURCES {
        let Some(index_text) = get(index_var) else {
            continue;
        };
        let index: usize = index_text.trim().parse().map_err(|_| {
            format!("--shard auto: {index_var}={index_text:?} is not a shard index ({name})")
        })?;
        let count = match (count_var, shards) {
            (Some(var), given) => {
                let text = get(var).ok_or_else(|| {
                    format!("--shard auto: {index_var} is set but {var} is not ({name})")
                })?;
                let count: usize = text.trim().parse().map_err(|_| {
                    format!("--shard auto: {var}={text:?} is not a shard count ({name})")
                })?;
                if let Some(n) = given.filter(|&n| n != count) {
                    return Err(format!(
                        "--shard auto: --shards {n} disagrees with {var}={count} ({name})"
                    ));
                }
                count
            }
            (None, Some(n)) => n,
            (None, None) => {
                return Err(format!(
                    "--shard auto: {index_var} is set ({name}) but the number of shards is not \
                     in the environment; give it with --shards N (the Job's `completions`)"
                ));
            }
        };
        let shard = check(index, count).map_err(|e| format!("--shard auto ({name}): {e}"))?;
        let vars = match count_var {
            Some(var) => format!("{index_var}={index}, {var}={count}"),
            None => format!("{index_var}={index}, --shards {count}"),
        };
        return Ok((shard, format!("shard {shard} from {name} ({vars})")));
    }
    Err(
        "--shard auto: no array-job environment found; expected SLURM_ARRAY_TASK_ID (Slurm), \
         JOB_COMPLETION_INDEX with --shards N (Kubernetes Indexed Job), \
         AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch) or BATCH_TASK_INDEX (Google Cloud Batch)"
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn parses_and_checks_i_of_n() {
        assert_eq!(parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert!(parse("4/4").unwrap_err().contains("out of range"));
        assert!(parse("0/0").unwrap_err().contains("at least 1"));
        assert!(parse("x/4").unwrap_err().contains("not a number"));
        assert!(parse("3").unwrap_err().contains("expected `I/N`"));
        let s = Shard { index: 1, count: 3 };
        let mine: Vec<usize> = (0..10).filter(|&r| s.owns(r)).collect();
        assert_eq!(mine, [1, 4, 7]);
    }

    #[test]
    fn reads_each_scheduler() {
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        let (s, how) = from_env(&env(&slurm), None).unwrap();
        assert_eq!(s, Shard { index: 3, count: 4 });
        assert!(how.contains("Slurm"), "{how}");
        let k8s = [("JOB_COMPLETION_INDEX", "1")];
        assert!(from_env(&env(&k8s), None).unwrap_err().contains("--shards"));
        let (s, how) = from_env(&env(&k8s), Some(5)).unwrap();
        assert_eq!(s, Shard { index: 1, count: 5 });
        assert!(how.contains("Kubernetes"), "{how}");
        let aws = [
            ("AWS_BATCH_JOB_ARRAY_INDEX", "0"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "2"),
        ];
        assert!(from_env(&env(&aws), None).unwrap().1.contains("AWS Batch"));
        let gcp = [("BATCH_TASK_INDEX", "2"), ("BATCH_TASK_COUNT", "2")];
        assert!(
            from_env(&env(&gcp), None)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            from_env(&env(&[]), None)
                .unwrap_err()
                .contains("no array-job")
        );
        assert!(
            from_env(&env(&slurm), Some(8))
                .unwrap_err()
                .contains("disagrees")
        );
    }
}
