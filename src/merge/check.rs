//! What `merge` refuses, before anything is written: run directories that are not all the
//! shards of one sharded run with one configuration. Pure: summaries in, ordered shards or a
//! message naming the directories out.

use std::path::PathBuf;

use crate::summary::{ScenarioConfig, ShardInfo, Summary};

/// One shard's run directory and summary.
#[derive(Debug, Clone)]
pub struct ShardRun {
    /// The run directory as given.
    pub dir: PathBuf,
    /// Its `summary.json`.
    pub summary: Summary,
}

impl ShardRun {
    /// The shard part (present once [`check_shards`] accepted it).
    pub fn info(&self) -> ShardInfo {
        self.summary.shard.clone().unwrap_or(ShardInfo {
            index: 0,
            count: 1,
            run_id: String::new(),
        })
    }

    /// `DIR (shard K/N)`.
    pub fn name(&self) -> String {
        let i = self.info();
        format!("{} (shard {}/{})", self.dir.display(), i.index, i.count)
    }
}

/// The configuration shards must share. `initial_policies` is left out: each shard reads the
/// pool size when its own load starts, after the others' canaries may have added to it.
fn comparable(config: &ScenarioConfig) -> ScenarioConfig {
    ScenarioConfig {
        initial_policies: 0,
        ..config.clone()
    }
}

/// Why shards cannot be merged, in one sentence naming the directories.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Accepts the runs when they are every shard of one run id, once each, with one config;
/// returns them ordered by shard index. The error names the directories at fault.
pub fn check_shards(runs: Vec<ShardRun>) -> Result<Vec<ShardRun>, Refusal> {
    let Some(first) = runs.first() else {
        return Err(Refusal(
            "give the run directories of every shard of the run".into(),
        ));
    };
    let not_shards: Vec<String> = runs
        .iter()
        .filter(|r| r.summary.shard.is_none())
        .map(|r| r.dir.display().to_string())
        .collect();
    if !not_shards.is_empty() {
        return Err(Refusal(format!(
            "not a shard of a sharded run (its summary.json has no `shard`; only runs made with \
             `run --shard K/N --run-id ID` merge): {}",
            not_shards.join(", ")
        )));
    }
    let reference = first.info();
    for run in &runs[1..] {
        let info = run.info();
        if info.run_id != reference.run_id {
            return Err(Refusal(format!(
                "different runs: {} is run `{}`, {} is run `{}`; merge only the shards of one --run-id",
                first.dir.display(),
                reference.run_id,
                run.dir.display(),
                info.run_id
            )));
        }
        if info.count != reference.count {
            return Err(Refusal(format!(
                "{} and {} disagree on the number of shards",
                first.name(),
                run.name()
            )));
        }
        let urls = |s: &Summary| s.gateways.iter().map(|g| g.url.clone()).collect::<Vec<_>>();
        if urls(&run.summary) != urls(&first.summary) {
            return Err(Refusal(format!(
                "different gateways: {} measured [{}], {} measured [{}]; merge only shards of \
                 one fleet",
                first.dir.display(),
                urls(&first.summary).join(", "),
                run.dir.display(),
                urls(&run.summary).join(", ")
            )));
        }
        if comparable(&run.summary.config) != comparable(&first.summary.config) {
            return Err(Refusal(format!(
                "different scenario configurations (rate, duration, trigger, deadline, backoff, \
                 timeouts): {} and {}",
                first.dir.display(),
                run.dir.display()
            )));
        }
    }
    let mut by_index: Vec<Option<&ShardRun>> = vec![None; reference.count as usize];
    for run in &runs {
        let index = run.info().index as usize;
        match by_index.get_mut(index) {
            Some(Some(other)) => {
                return Err(Refusal(format!(
                    "shard {}/{} given twice: {} and {}",
                    index,
                    reference.count,
                    other.dir.display(),
                    run.dir.display()
                )));
            }
            Some(slot) => *slot = Some(run),
            None => return Err(Refusal(format!("{}: shard index out of range", run.name()))),
        }
    }
    let missing: Vec<String> = by_index
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_none())
        .map(|(k, _)| format!("{k}/{}", reference.count))
        .collect();
    if !missing.is_empty() {
        return Err(Refusal(format!(
            "run `{}` is missing shard(s) {} (given: {}); give the run directory of every shard",
            reference.run_id,
            missing.join(", "),
            runs.iter()
                .map(ShardRun::name)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut ordered = runs;
    ordered.sort_by_key(|r| r.info().index);
    Ok(ordered)
}
